//! Every expectation of every kind, in both directions, against real servers on loopback, through the whole
//! path: config text → validation → plan → probe → engine → verdict. A failing direction must name the
//! expectation, what was expected and what was observed.

use gonogo::run::CheckResult;
use gonogo::verdict::Outcome;
use std::time::Duration;

use gonogo_testkit::certs::{Leaf, TestCa};
use gonogo_testkit::dns::DnsServer;
use gonogo_testkit::http::{HttpProxy, HttpServer};
use gonogo_testkit::tcp::{closed_port, hanging_listener, open_listener};

use crate::support::run_one;

/// Assert `r` passed.
#[track_caller]
fn passed(r: &CheckResult) {
    assert_eq!(r.outcome, Outcome::Pass, "{} should pass: {:?}", r.name, r.reasons);
}

/// Assert `r` failed on exactly the expectation `key`, and the reason names expected and observed.
#[track_caller]
fn failed_on(r: &CheckResult, key: &str, expected: &str, observed: &str) {
    assert_eq!(r.outcome, Outcome::Fail, "{} should fail: {r:?}", r.name);
    let reason = r.reasons.iter().find(|s| s.starts_with(&format!("{key}: "))).unwrap_or_else(|| {
        panic!("no reason for {key} in {:?}", r.reasons);
    });
    assert!(reason.contains(&format!("expected {expected}")), "{reason:?} does not name expected {expected:?}");
    assert!(reason.contains(&format!("observed {observed}")), "{reason:?} does not name observed {observed:?}");
}

// ---- icmp ---------------------------------------------------------------------------------------------------

const PING: &str = "name = \"ping\"\nkind = \"icmp\"\ntarget = \"127.0.0.1\"\ncount = 3\ninterval = \"10ms\"\n";

#[tokio::test]
async fn icmp_loss_max() {
    passed(&run_one(&format!("{PING}expect = {{ loss_max = 0.0 }}")).await);
}

/// The failing direction needs real loss: the real binary in a fresh network namespace whose loopback is down,
/// so every echo to 127.0.0.1 is lost (nothing leaves the namespace).
#[test]
fn icmp_loss_max_fails_when_echoes_are_lost() {
    let Some(doc) = crate::support::run_in_fresh_netns(
        &format!("[[check]]\nphases = [\"commissioning\"]\n{PING}timeout = \"300ms\"\nexpect = {{ loss_max = 0.5 }}\n"),
        "commissioning",
        "",
    ) else {
        return;
    };
    let check = &doc["checks"][0];
    assert_eq!(check["outcome"], "fail", "{check}");
    let reasons: Vec<&str> = check["reasons"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
    assert!(reasons.contains(&"loss_max: expected ≤ 50%, observed 100% (3 of 3 lost)"), "{reasons:?}");
}

#[tokio::test]
async fn icmp_rtt_mean_p95_and_jitter() {
    for key in ["rtt_mean_max", "rtt_p95_max", "jitter_max"] {
        passed(&run_one(&format!("{PING}expect = {{ {key} = \"1s\" }}")).await);
        // Loopback RTTs and their differences are some microseconds: never within one nanosecond.
        let r = run_one(&format!("{PING}expect = {{ {key} = \"1ns\" }}")).await;
        failed_on(&r, key, "≤ 0.000ms", "");
    }
}

// ---- tcp ----------------------------------------------------------------------------------------------------

#[tokio::test]
async fn tcp_connect_and_connect_max() {
    let (addr, _l) = open_listener();
    let check = format!("name = \"port\"\nkind = \"tcp\"\ntarget = \"{addr}\"\ncount = 3\n");
    passed(&run_one(&check).await);
    passed(&run_one(&format!("{check}expect = {{ connect_max = \"1s\" }}")).await);
    failed_on(&run_one(&format!("{check}expect = {{ connect_max = \"1ns\" }}")).await, "connect_max", "≤ 0.000ms", "");
    let closed = format!("name = \"port\"\nkind = \"tcp\"\ntarget = \"{}\"\n", closed_port());
    failed_on(
        &run_one(&closed).await,
        "connect",
        "every connect attempt succeeds",
        "0 of 1 connected; connection_refused",
    );
}

// ---- dns ----------------------------------------------------------------------------------------------------

async fn dns_server() -> DnsServer {
    DnsServer::builder().a("app.test.", "10.0.0.1").a("app.test.", "10.0.0.2").servfail("broken.test.").start().await
}

fn dns_check(server: &DnsServer, query: &str, transport: &str, expect: &str) -> String {
    format!(
        "name = \"dns\"\nkind = \"dns\"\nserver = \"{}\"\nquery = \"{query}\"\ntransport = \"{transport}\"\ntimeout = \"2s\"\n{expect}",
        server.addr()
    )
}

#[tokio::test]
async fn dns_rcode() {
    let s = dns_server().await;
    for transport in ["udp", "tcp"] {
        passed(&run_one(&dns_check(&s, "app.test", transport, "")).await);
        passed(&run_one(&dns_check(&s, "gone.test", transport, "expect = { rcode = \"NXDOMAIN\" }")).await);
        failed_on(&run_one(&dns_check(&s, "gone.test", transport, "")).await, "rcode", "NOERROR", "NXDOMAIN");
        failed_on(&run_one(&dns_check(&s, "broken.test", transport, "")).await, "rcode", "NOERROR", "SERVFAIL");
    }
}

#[tokio::test]
async fn dns_min_answers() {
    let s = dns_server().await;
    passed(&run_one(&dns_check(&s, "app.test", "udp", "expect = { min_answers = 2 }")).await);
    failed_on(
        &run_one(&dns_check(&s, "app.test", "udp", "expect = { min_answers = 3 }")).await,
        "min_answers",
        "≥ 3",
        "2 (",
    );
}

#[tokio::test]
async fn dns_answers_include_and_a_changed_answer() {
    let s = dns_server().await;
    let check = dns_check(&s, "app.test", "udp", "expect = { answers_include = [\"10.0.0.2\"] }");
    passed(&run_one(&check).await);
    // The answer changes (as after a migration): the same check now fails and says what it saw.
    s.set_a("app.test.", &["10.9.9.9"]);
    failed_on(&run_one(&check).await, "answers_include", "answers include 10.0.0.2", "10.9.9.9 (missing 10.0.0.2)");
}

#[tokio::test]
async fn dns_dead_server_fails_with_the_server_named() {
    let dead = gonogo_testkit::dns::silent_udp();
    let check = format!(
        "name = \"dns\"\nkind = \"dns\"\nserver = \"{}\"\nquery = \"app.test\"\ntimeout = \"300ms\"\n",
        dead.addr()
    );
    let r = run_one(&check).await;
    failed_on(&r, "response", &format!("a response from {}/udp", dead.addr()), "timeout");
}

// ---- tls ----------------------------------------------------------------------------------------------------

/// Whole days from now until `not_after` (Unix seconds), as the verdict counts them.
fn days_left(not_after: i64) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs();
    (not_after - i64::try_from(now).expect("seconds fit in i64")).div_euclid(86_400)
}

/// A TLS server on 127.0.0.1 presenting `leaf` (the kit's HTTPS server: the TLS check only shakes hands).
fn tls_server(leaf: &Leaf) -> HttpServer {
    HttpServer::builder().status("/", 200, "ok").start_https(leaf)
}

fn tls_check(target: impl std::fmt::Display, ca: &TestCa, extra: &str) -> String {
    format!(
        "name = \"tls\"\nkind = \"tls\"\ntarget = \"{target}\"\nca_file = \"{}\"\ntimeout = \"2s\"\n{extra}",
        ca.ca_file().display()
    )
}

const CHAIN: &str = "a chain that verifies against the trusted roots";

#[tokio::test]
async fn tls_chain_verifies_against_the_ca_file() {
    let ca = TestCa::new("gonogo test CA");
    let server = tls_server(&ca.leaf(&["localhost", "127.0.0.1"]));
    passed(&run_one(&tls_check(server.addr(), &ca, "")).await);
    passed(&run_one(&tls_check(format!("localhost:{}", server.addr().port()), &ca, "")).await);
}

#[tokio::test]
async fn tls_chain_fails_on_an_expired_certificate() {
    let ca = TestCa::new("gonogo test CA");
    let server = tls_server(&ca.expired_leaf(&["127.0.0.1"]));
    failed_on(&run_one(&tls_check(server.addr(), &ca, "")).await, "chain", CHAIN, "certificate expired");
}

#[tokio::test]
async fn tls_chain_fails_on_a_name_mismatch() {
    let ca = TestCa::new("gonogo test CA");
    let server = tls_server(&ca.leaf(&["other.test"]));
    failed_on(
        &run_one(&tls_check(server.addr(), &ca, "")).await,
        "chain",
        CHAIN,
        "name mismatch: certificate is for other.test, not 127.0.0.1",
    );
}

#[tokio::test]
async fn tls_chain_fails_on_an_untrusted_ca_unless_verify_is_off() {
    let trusted = TestCa::new("gonogo test CA");
    let untrusted = TestCa::new("gonogo untrusted CA");
    let server = tls_server(&untrusted.leaf(&["127.0.0.1"]));
    failed_on(&run_one(&tls_check(server.addr(), &trusted, "")).await, "chain", CHAIN, "unknown issuer");
    // Without verification the chain is not judged at all.
    let r = run_one(&tls_check(server.addr(), &trusted, "verify = false")).await;
    passed(&r);
    assert!(r.expectations.iter().all(|e| e.expectation != "chain"), "{r:?}");
}

#[tokio::test]
async fn tls_valid_days_min() {
    let ca = TestCa::new("gonogo test CA");
    // Half a day past a whole number of days, so the count of days left cannot change during the test.
    let now = std::time::SystemTime::now();
    let leaf = ca.leaf_valid_between(
        &["127.0.0.1"],
        now - Duration::from_secs(3600),
        now + Duration::from_secs(30 * 86_400 + 43_200),
    );
    let days = days_left(leaf.not_after());
    assert_eq!(days, 30);
    let server = tls_server(&leaf);
    passed(&run_one(&tls_check(server.addr(), &ca, &format!("expect = {{ valid_days_min = {days} }}"))).await);
    let above = days + 1;
    failed_on(
        &run_one(&tls_check(server.addr(), &ca, &format!("expect = {{ valid_days_min = {above} }}"))).await,
        "valid_days_min",
        &format!("≥ {above} days of validity left"),
        &format!("{days} days left"),
    );
}

#[tokio::test]
async fn tls_valid_days_min_on_an_expired_certificate() {
    let ca = TestCa::new("gonogo test CA");
    let server = tls_server(&ca.expired_leaf(&["127.0.0.1"]));
    let r = run_one(&tls_check(server.addr(), &ca, "verify = false\nexpect = { valid_days_min = 0 }")).await;
    failed_on(&r, "valid_days_min", "≥ 0 days of validity left", "expired ");
}

#[tokio::test]
async fn tls_names_include_with_a_wildcard() {
    let ca = TestCa::new("gonogo test CA");
    let server = tls_server(&ca.leaf(&["*.app.test", "127.0.0.1"]));
    let names = |list: &str| tls_check(server.addr(), &ca, &format!("expect = {{ names_include = [{list}] }}"));
    passed(&run_one(&names("\"www.app.test\", \"API.app.test\", \"127.0.0.1\"")).await);
    // A wildcard covers exactly one label: neither the bare domain nor two labels down.
    failed_on(
        &run_one(&names("\"www.app.test\", \"app.test\", \"a.b.app.test\"")).await,
        "names_include",
        "certificate covers www.app.test, app.test, a.b.app.test",
        "certificate names *.app.test, 127.0.0.1 (missing app.test, a.b.app.test)",
    );
}

#[tokio::test]
async fn tls_names_include_plain_names() {
    let ca = TestCa::new("gonogo test CA");
    let server = tls_server(&ca.leaf(&["127.0.0.1", "app.test", "portal.test"]));
    let names = |list: &str| tls_check(server.addr(), &ca, &format!("expect = {{ names_include = [{list}] }}"));
    passed(&run_one(&names("\"portal.test\", \"app.test\"")).await);
    failed_on(
        &run_one(&names("\"app.test\", \"pacs.test\"")).await,
        "names_include",
        "certificate covers app.test, pacs.test",
        "certificate names 127.0.0.1, app.test, portal.test (missing pacs.test)",
    );
}

#[tokio::test]
async fn tls_min_version() {
    let ca = TestCa::new("gonogo test CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let tls12 = HttpServer::builder().start_tls(leaf.server_config_with_versions(&[&rustls::version::TLS12]));
    let both = tls_server(&leaf);
    let min = |addr, v: &str| tls_check(addr, &ca, &format!("expect = {{ min_version = \"{v}\" }}"));
    passed(&run_one(&min(tls12.addr(), "1.2")).await);
    failed_on(&run_one(&min(tls12.addr(), "1.3")).await, "min_version", "TLS ≥ 1.3", "TLS 1.2");
    passed(&run_one(&min(both.addr(), "1.3")).await);
}

#[tokio::test]
async fn tls_server_name_overrides_the_name_verified() {
    let ca = TestCa::new("gonogo test CA");
    let server = tls_server(&ca.leaf(&["app.test"]));
    passed(&run_one(&tls_check(server.addr(), &ca, "server_name = \"app.test\"")).await);
    failed_on(
        &run_one(&tls_check(server.addr(), &ca, "server_name = \"other.test\"")).await,
        "chain",
        CHAIN,
        "name mismatch: certificate is for app.test, not other.test",
    );
}

#[tokio::test]
async fn tls_handshake_timeout_on_a_silent_server() {
    let ca = TestCa::new("gonogo test CA");
    let (addr, _listener) = hanging_listener();
    let check = format!(
        "name = \"tls\"\nkind = \"tls\"\ntarget = \"{addr}\"\nca_file = \"{}\"\ntimeout = \"500ms\"\n",
        ca.ca_file().display()
    );
    failed_on(&run_one(&check).await, "handshake", "a completed TLS handshake", "timeout");
}

// ---- http ---------------------------------------------------------------------------------------------------

fn http_check(url: &str, extra: &str) -> String {
    format!("name = \"web\"\nkind = \"http\"\nurl = \"{url}\"\ntimeout = \"2s\"\n{extra}")
}

fn web_server() -> HttpServer {
    HttpServer::builder()
        .status("/health", 200, "service ok v1.2")
        .status("/down", 503, "maintenance")
        .redirect("/old", "/health")
        .echo("/echo")
        .hang("/slow")
        .start()
}

#[tokio::test]
async fn http_status_default_is_any_2xx() {
    let s = web_server();
    passed(&run_one(&http_check(&s.url("/health"), "")).await);
    failed_on(&run_one(&http_check(&s.url("/down"), "")).await, "status", "2xx", "503");
}

#[tokio::test]
async fn http_status_list() {
    let s = web_server();
    passed(&run_one(&http_check(&s.url("/down"), "expect = { status = [503] }")).await);
    failed_on(
        &run_one(&http_check(&s.url("/down"), "expect = { status = [200, 204] }")).await,
        "status",
        "200 or 204",
        "503",
    );
    failed_on(&run_one(&http_check(&s.url("/health"), "expect = { status = [503] }")).await, "status", "503", "200");
}

#[tokio::test]
async fn http_redirects_followed_or_not() {
    let s = web_server();
    passed(&run_one(&http_check(&s.url("/old"), "")).await);
    passed(&run_one(&http_check(&s.url("/old"), "follow_redirects = false\nexpect = { status = [302] }")).await);
    failed_on(&run_one(&http_check(&s.url("/old"), "follow_redirects = false")).await, "status", "2xx", "302");
    // Followed, the 302 is not the final status.
    failed_on(&run_one(&http_check(&s.url("/old"), "expect = { status = [302] }")).await, "status", "302", "200");
}

#[tokio::test]
async fn http_body_matches() {
    let s = web_server();
    passed(&run_one(&http_check(&s.url("/health"), "expect = { body_matches = 'ok v1\\.\\d' }")).await);
    failed_on(
        &run_one(&http_check(&s.url("/health"), "expect = { body_matches = '^down$' }")).await,
        "body_matches",
        "body matching /^down$/",
        "no match in 15 bytes",
    );
}

#[tokio::test]
async fn http_latency_max() {
    let s = web_server();
    passed(&run_one(&http_check(&s.url("/health"), "expect = { latency_max = \"10s\" }")).await);
    failed_on(
        &run_one(&http_check(&s.url("/health"), "expect = { latency_max = \"1ns\" }")).await,
        "latency_max",
        "≤ 0.000ms",
        "",
    );
}

#[tokio::test]
async fn http_https_with_a_ca_file() {
    let ca = TestCa::new("gonogo test CA");
    let s = HttpServer::builder().status("/health", 200, "ok").start_https(&ca.leaf(&["localhost", "127.0.0.1"]));
    let ca_file = format!("ca_file = \"{}\"\n", ca.ca_file().display());
    passed(&run_one(&http_check(&s.url("/health"), &ca_file)).await);
    passed(&run_one(&http_check(&s.url_with_host("localhost", "/health"), &ca_file)).await);
    // Without the CA file the system roots do not know the test CA.
    let r = run_one(&http_check(&s.url("/health"), "")).await;
    assert_ne!(r.outcome, Outcome::Pass, "{r:?}");
}

#[tokio::test]
async fn http_https_with_an_expired_certificate_fails_unless_verify_is_off() {
    let ca = TestCa::new("gonogo test CA");
    let s = HttpServer::builder().status("/health", 200, "ok").start_https(&ca.expired_leaf(&["127.0.0.1"]));
    let ca_file = format!("ca_file = \"{}\"\n", ca.ca_file().display());
    let r = run_one(&http_check(&s.url("/health"), &ca_file)).await;
    failed_on(&r, "response", "an HTTP response", "certificate_invalid");
    assert!(r.reasons[0].contains("expired"), "{:?}", r.reasons);
    passed(&run_one(&http_check(&s.url("/health"), &format!("{ca_file}verify = false"))).await);
}

#[tokio::test]
async fn http_method_and_headers_reach_the_server() {
    let s = web_server();
    let check = |method: &str, trace: &str| {
        http_check(
            &s.url("/echo"),
            &format!(
                "method = \"{method}\"\nheaders = {{ X-Trace = \"abc123\", Accept = \"text/plain\" }}\n\
                 expect = {{ body_matches = '(?s)\\APUT /echo\\n.*x-trace: {trace}\\n' }}"
            ),
        )
    };
    // The method is sent upper case whatever the case in the file.
    passed(&run_one(&check("put", "abc123")).await);
    let r = run_one(&check("PUT", "zzz999")).await;
    failed_on(&r, "body_matches", "body matching /(?s)\\APUT /echo\\n.*x-trace: zzz999\\n/", "no match in ");
    let r = run_one(&check("GET", "abc123")).await;
    failed_on(&r, "body_matches", "body matching /", "no match in ");
}

#[tokio::test]
async fn http_through_a_proxy() {
    let s = web_server();
    let proxy = HttpProxy::start();
    let via = format!("proxy = \"{}\"\n", proxy.url());
    passed(&run_one(&http_check(&s.url("/health"), &via)).await);
    assert_eq!(proxy.handled(), 1);
    assert_eq!(proxy.targets(), vec![format!("GET {}", s.url("/health"))]);
    failed_on(&run_one(&http_check(&s.url("/down"), &via)).await, "status", "2xx", "503");
    assert_eq!(proxy.handled(), 2);
    // https goes through a CONNECT tunnel.
    let ca = TestCa::new("gonogo test CA");
    let tls = HttpServer::builder().status("/health", 200, "ok").start_https(&ca.leaf(&["127.0.0.1"]));
    let ca_file = format!("ca_file = \"{}\"\n", ca.ca_file().display());
    passed(&run_one(&http_check(&tls.url("/health"), &format!("{via}{ca_file}"))).await);
    assert_eq!(proxy.handled(), 3);
    assert_eq!(proxy.targets()[2], format!("CONNECT {}", tls.addr()));
}

#[tokio::test]
async fn http_timeout_on_a_hanging_server() {
    let s = web_server();
    let check = format!("name = \"web\"\nkind = \"http\"\nurl = \"{}\"\ntimeout = \"500ms\"\n", s.url("/slow"));
    failed_on(&run_one(&check).await, "response", "an HTTP response", "timeout");
    assert_eq!(s.requests(), 1);
}

#[tokio::test]
async fn http_body_matches_on_a_truncated_body() {
    let s = HttpServer::builder().large_body("/big", 1_000_000).start();
    passed(&run_one(&http_check(&s.url("/big"), "body_limit = 1024\nexpect = { body_matches = '^x{1024}$' }")).await);
    failed_on(
        &run_one(&http_check(&s.url("/big"), "body_limit = 1024\nexpect = { body_matches = 'x{2000}' }")).await,
        "body_matches",
        "body matching /x{2000}/",
        "no match in the first 1024 bytes read (body truncated at the limit)",
    );
}

#[tokio::test]
async fn http_redirect_turns_post_into_get_and_keeps_credentials_at_the_origin() {
    let other = HttpServer::builder().echo("/echo").start();
    let s =
        HttpServer::builder().redirect("/here", "/echo").redirect("/away", &other.url("/echo")).echo("/echo").start();
    let check = |path: &str, pattern: &str| {
        http_check(
            &s.url(path),
            &format!(
                "method = \"POST\"\nheaders = {{ Authorization = \"Bearer s3cret\" }}\n\
                 expect = {{ body_matches = '{pattern}' }}"
            ),
        )
    };
    // 302 after POST: the next request is a GET; on the same origin the credentials go along.
    passed(&run_one(&check("/here", "(?s)\\AGET /echo\\n.*authorization: Bearer s3cret")).await);
    failed_on(&run_one(&check("/here", "\\APOST ")).await, "body_matches", "body matching /\\APOST /", "no match in ");
    // To another origin (another port) they do not.
    passed(&run_one(&check("/away", "\\AGET /echo\\n")).await);
    failed_on(
        &run_one(&check("/away", "authorization")).await,
        "body_matches",
        "body matching /authorization/",
        "no match in ",
    );
}

// ---- ipv6 loopback ------------------------------------------------------------------------------------------

/// A server on `[::1]:0` answering every connection with `200 ok` (over TLS with `leaf` when given), or `None`
/// when this machine has no IPv6 loopback. Stops when the runtime does.
async fn v6_server(leaf: Option<&Leaf>) -> Option<std::net::SocketAddr> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let reply =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\nv6 ok";
        let _ = stream.write_all(reply).await;
        let _ = stream.shutdown().await;
    }

    let listener = tokio::net::TcpListener::bind("[::1]:0").await.ok()?;
    let addr = listener.local_addr().ok()?;
    let acceptor = leaf.map(|leaf| {
        let mut config = (*leaf.server_config()).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            answer(tls).await;
                        }
                    }
                    None => answer(tcp).await,
                }
            });
        }
    });
    Some(addr)
}

#[tokio::test]
async fn tls_and_https_over_ipv6_loopback() {
    let ca = TestCa::new("gonogo test CA");
    let Some(addr) = v6_server(Some(&ca.leaf(&["::1"]))).await else {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    };
    let target = format!("[::1]:{}", addr.port());
    passed(&run_one(&tls_check(&target, &ca, "expect = { names_include = [\"::1\"], min_version = \"1.3\" }")).await);
    failed_on(&run_one(&tls_check(&target, &ca, "server_name = \"app.test\"")).await, "chain", CHAIN, "name mismatch");
    let ca_file = format!("ca_file = \"{}\"\n", ca.ca_file().display());
    let url = format!("https://{target}/health");
    passed(&run_one(&http_check(&url, &format!("{ca_file}expect = {{ body_matches = '^v6 ok$' }}"))).await);
    failed_on(
        &run_one(&http_check(&url, &format!("{ca_file}expect = {{ status = [204] }}"))).await,
        "status",
        "204",
        "200",
    );
}

/// The name mismatch names the certificate's IPv6 addresses as written everywhere else (RFC 5952, as
/// `names_include` shows them): `::1`, not `0::1`; and `2001:db8::1:0:0:1`, not the ambiguous `2001:db8::1::1`.
#[tokio::test]
async fn tls_name_mismatch_names_ipv6_addresses_canonically() {
    let ca = TestCa::new("gonogo test CA");
    let Some(addr) = v6_server(Some(&ca.leaf(&["::1", "2001:db8:0:0:1:0:0:1"]))).await else {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    };
    let check = tls_check(format!("[::1]:{}", addr.port()), &ca, "server_name = \"app.test\"");
    failed_on(
        &run_one(&check).await,
        "chain",
        CHAIN,
        "name mismatch: certificate is for ::1, 2001:db8::1:0:0:1, not app.test",
    );
}

#[tokio::test]
async fn http_over_ipv6_loopback() {
    let Some(addr) = v6_server(None).await else {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    };
    let url = format!("http://[::1]:{}/", addr.port());
    passed(&run_one(&http_check(&url, "expect = { body_matches = 'v6' }")).await);
    failed_on(
        &run_one(&http_check(&url, "expect = { body_matches = 'v4' }")).await,
        "body_matches",
        "body matching /v4/",
        "no match in 5 bytes",
    );
}

#[test]
fn tls_and_http_time_out_on_a_silent_ipv6_server() {
    let Some((addr, _listener)) = gonogo_testkit::tcp::hanging_listener_v6() else {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let ca = TestCa::new("gonogo test CA");
        let tls = tls_check(addr, &ca, "").replace("timeout = \"2s\"", "timeout = \"500ms\"");
        failed_on(&run_one(&tls).await, "handshake", "a completed TLS handshake", "timeout");
        let http = http_check(&format!("http://{addr}/"), "").replace("timeout = \"2s\"", "timeout = \"500ms\"");
        failed_on(&run_one(&http).await, "response", "an HTTP response", "timeout");
    });
}
