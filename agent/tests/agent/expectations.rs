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

// ==== probe depth (issue 3): the expectations and parameters added beyond v1 ================================

/// The reason for `key`, for assertions beyond [`failed_on`].
#[track_caller]
fn reason_for<'a>(r: &'a CheckResult, key: &str) -> &'a str {
    r.reasons
        .iter()
        .find(|s| s.starts_with(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no reason for {key} in {:?}", r.reasons))
}

// ---- tcp: send and expect_banner -----------------------------------------------------------------------------

fn tcp_banner_check(addr: std::net::SocketAddr, extra: &str) -> String {
    format!("name = \"svc\"\nkind = \"tcp\"\ntarget = \"{addr}\"\ntimeout = \"1s\"\n{extra}")
}

#[tokio::test]
async fn tcp_expect_banner_on_a_greeting_service() {
    let (addr, _l) = gonogo_testkit::tcp::greeting_listener(b"220 smtp ready\r\n");
    passed(&run_one(&tcp_banner_check(addr, "expect_banner = '^220 smtp'")).await);
    failed_on(
        &run_one(&tcp_banner_check(addr, "expect_banner = '^554 '")).await,
        "expect_banner",
        "a banner matching /^554 /",
        "\"220 smtp ready\"",
    );
}

#[tokio::test]
async fn tcp_send_then_expect_banner_on_an_echo_service() {
    let (addr, l) = gonogo_testkit::tcp::echo_listener();
    // TOML escapes in `send` are sent as the bytes they stand for; the final line end is not part of the banner.
    passed(&run_one(&tcp_banner_check(addr, "send = \"PING 42\\r\\n\"\nexpect_banner = '^PING 42$'")).await);
    failed_on(
        &run_one(&tcp_banner_check(addr, "send = \"PING 42\\r\\n\"\nexpect_banner = '^PONG'")).await,
        "expect_banner",
        "a banner matching /^PONG/",
        "\"PING 42\"",
    );
    assert_eq!(l.wait_accepted(2, Duration::from_secs(2)), 2);
}

#[tokio::test]
async fn tcp_expect_banner_on_a_silent_service_fails_with_no_banner() {
    // The listener accepts and reads but never writes: the connect succeeds, the banner never comes.
    let (addr, _l) = open_listener();
    let r = run_one(
        &tcp_banner_check(addr, "timeout = \"500ms\"\nexpect_banner = '^220'").replace("timeout = \"1s\"\n", ""),
    )
    .await;
    failed_on(&r, "expect_banner", "a banner matching /^220/", "no banner (timeout");
    assert!(r.expectations.iter().any(|e| e.expectation == "connect" && e.met), "the connect itself worked: {r:?}");
}

// ---- dns: answers_exactly, answers_match, answers_exclude, answers_in; v1 keys with `servers` -----------------

#[tokio::test]
async fn dns_answers_exactly_ignores_order_and_fails_on_a_superset() {
    let s = dns_server().await;
    let exactly = |list: &str| dns_check(&s, "app.test", "udp", &format!("expect = {{ answers_exactly = [{list}] }}"));
    passed(&run_one(&exactly("\"10.0.0.2\", \"10.0.0.1\"")).await);
    // The server answers more than expected.
    failed_on(&run_one(&exactly("\"10.0.0.1\"")).await, "answers_exactly", "exactly 10.0.0.1", "10.0.0.1, 10.0.0.2");
    // Or less.
    failed_on(
        &run_one(&exactly("\"10.0.0.1\", \"10.0.0.2\", \"10.0.0.3\"")).await,
        "answers_exactly",
        "exactly 10.0.0.1, 10.0.0.2, 10.0.0.3",
        "10.0.0.1, 10.0.0.2",
    );
}

#[tokio::test]
async fn dns_answers_match_every_answer() {
    let s = dns_server().await;
    let matching = |re: &str| dns_check(&s, "app.test", "tcp", &format!("expect = {{ answers_match = '{re}' }}"));
    passed(&run_one(&matching("^10\\.0\\.0\\.[12]$")).await);
    failed_on(
        &run_one(&matching("^10\\.0\\.0\\.1$")).await,
        "answers_match",
        "every answer matching /^10\\.0\\.0\\.1$/",
        "10.0.0.1, 10.0.0.2 (10.0.0.2 does not match)",
    );
}

#[tokio::test]
async fn dns_answers_exclude() {
    let s = dns_server().await;
    let exclude = |list: &str| dns_check(&s, "app.test", "udp", &format!("expect = {{ answers_exclude = [{list}] }}"));
    passed(&run_one(&exclude("\"192.0.2.1\", \"10.0.0.3\"")).await);
    failed_on(
        &run_one(&exclude("\"192.0.2.1\", \"10.0.0.2\"")).await,
        "answers_exclude",
        "none of 192.0.2.1, 10.0.0.2",
        "10.0.0.1, 10.0.0.2 (has 10.0.0.2)",
    );
}

#[tokio::test]
async fn dns_answers_in_split_horizon() {
    let s =
        DnsServer::builder().a("app.test.", "10.0.0.1").a("mixed.test.", "10.0.0.1").a("mixed.test.", "192.168.7.7");
    let s = s.start().await;
    let within =
        |query: &str, nets: &str| dns_check(&s, query, "udp", &format!("expect = {{ answers_in = [{nets}] }}"));
    passed(&run_one(&within("app.test", "\"10.0.0.0/8\"")).await);
    failed_on(
        &run_one(&within("app.test", "\"192.168.0.0/16\"")).await,
        "answers_in",
        "every answer in 192.168.0.0/16",
        "10.0.0.1 (10.0.0.1 outside)",
    );
    // One answer of two leaks outside the internal ranges: it is the one named.
    passed(&run_one(&within("mixed.test", "\"10.0.0.0/8\", \"192.168.0.0/16\"")).await);
    failed_on(
        &run_one(&within("mixed.test", "\"192.168.0.0/16\"")).await,
        "answers_in",
        "every answer in 192.168.0.0/16",
        "10.0.0.1, 192.168.7.7 (10.0.0.1 outside)",
    );
}

#[tokio::test]
async fn dns_v1_expectations_with_a_one_server_list() {
    let s = dns_server().await;
    let check = |query: &str, expect: &str| {
        format!(
            "name = \"dns\"\nkind = \"dns\"\nservers = [\"{}\"]\nquery = \"{query}\"\ntimeout = \"2s\"\n{expect}",
            s.addr()
        )
    };
    let r = run_one(&check(
        "app.test",
        "expect = { rcode = \"NOERROR\", min_answers = 2, answers_include = [\"10.0.0.1\"] }",
    ))
    .await;
    passed(&r);
    assert!(r.parts.is_empty(), "one server is one unit, not parts: {r:?}");
    failed_on(&run_one(&check("gone.test", "")).await, "rcode", "NOERROR", "NXDOMAIN");
    failed_on(&run_one(&check("app.test", "expect = { min_answers = 3 }")).await, "min_answers", "≥ 3", "2 (");
    failed_on(
        &run_one(&check("app.test", "expect = { answers_include = [\"10.0.0.9\"] }")).await,
        "answers_include",
        "answers include 10.0.0.9",
        "10.0.0.1, 10.0.0.2 (missing 10.0.0.9)",
    );
}

// ---- tls: issuer, chain expiry, fingerprint, offered versions, client certificates ---------------------------

#[tokio::test]
async fn tls_issuer_matches() {
    let ca = TestCa::new("gonogo test CA");
    let server = tls_server(&ca.leaf(&["127.0.0.1"]));
    let issuer = |re: &str| tls_check(server.addr(), &ca, &format!("expect = {{ issuer_matches = '{re}' }}"));
    passed(&run_one(&issuer("^CN=gonogo test CA,O=gonogo test$")).await);
    failed_on(
        &run_one(&issuer("CN=HSCN Issuing CA")).await,
        "issuer_matches",
        "an issuer matching /CN=HSCN Issuing CA/",
        "CN=gonogo test CA,O=gonogo test",
    );
}

#[tokio::test]
async fn tls_chain_valid_days_min_sees_a_ca_that_expires_before_its_leaf() {
    // Half a day past whole days, so the day counts cannot change while the test runs.
    let now = std::time::SystemTime::now();
    let hour = Duration::from_secs(3600);
    let ca = TestCa::valid_between("short-lived CA", now - hour, now + Duration::from_secs(20 * 86_400 + 43_200));
    let leaf = ca.leaf_valid_between(&["127.0.0.1"], now - hour, now + Duration::from_secs(300 * 86_400 + 43_200));
    assert_eq!(days_left(leaf.not_after()), 300);
    let server = tls_server(&leaf);
    let expect = |e: &str| tls_check(server.addr(), &ca, &format!("expect = {{ {e} }}"));
    // The leaf alone has plenty of time left; the chain does not.
    passed(&run_one(&expect("valid_days_min = 100")).await);
    passed(&run_one(&expect("chain_valid_days_min = 20")).await);
    failed_on(
        &run_one(&expect("chain_valid_days_min = 100")).await,
        "chain_valid_days_min",
        "every certificate of the chain valid ≥ 100 more days",
        "CN=short-lived CA,O=gonogo test expires first, in 20 days",
    );
    // With a long-lived CA the leaf is what expires first.
    let ca = TestCa::new("gonogo test CA");
    let leaf = ca.leaf_valid_between(&["127.0.0.1"], now - hour, now + Duration::from_secs(30 * 86_400 + 43_200));
    let server = tls_server(&leaf);
    let expect = |e: &str| tls_check(server.addr(), &ca, &format!("expect = {{ {e} }}"));
    passed(&run_one(&expect("chain_valid_days_min = 30")).await);
    failed_on(
        &run_one(&expect("chain_valid_days_min = 31")).await,
        "chain_valid_days_min",
        "every certificate of the chain valid ≥ 31 more days",
        "CN=127.0.0.1,O=gonogo test expires first, in 30 days",
    );
}

/// The SHA-256 of `der`, 64 lowercase hex digits.
fn sha256_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn tls_fingerprint_sha256() {
    let ca = TestCa::new("gonogo test CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let server = tls_server(&leaf);
    let want = sha256_hex(leaf.cert_der());
    let pin = |fp: &str| tls_check(server.addr(), &ca, &format!("expect = {{ fingerprint_sha256 = \"{fp}\" }}"));
    passed(&run_one(&pin(&want)).await);
    // As `openssl x509 -fingerprint -sha256` prints it: upper case with ':' separators.
    let openssl_style = want
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p))
        .collect::<Vec<_>>()
        .join(":");
    passed(&run_one(&pin(&openssl_style)).await);
    // Another certificate's fingerprint (the CA's) does not match the leaf's.
    let other = sha256_hex(ca.cert_der());
    failed_on(&run_one(&pin(&other)).await, "fingerprint_sha256", &format!("leaf SHA-256 {other}"), &want);
}

#[tokio::test]
async fn tls_offered_versions_versus_the_negotiated_expectation() {
    let ca = TestCa::new("gonogo test CA");
    let leaf = ca.leaf(&["127.0.0.1"]);
    let tls12 = HttpServer::builder().start_tls(leaf.server_config_with_versions(&[&rustls::version::TLS12]));
    let tls13 = HttpServer::builder().start_tls(leaf.server_config_with_versions(&[&rustls::version::TLS13]));
    let both = tls_server(&leaf);
    let check = |addr, extra: &str| tls_check(addr, &ca, extra);
    // Offering only 1.3 (check-level min_version) to a 1.2-only server: no handshake at all.
    passed(&run_one(&check(tls12.addr(), "min_version = \"1.2\"")).await);
    failed_on(
        &run_one(&check(tls12.addr(), "min_version = \"1.3\"")).await,
        "handshake",
        "a completed TLS handshake",
        "tls_handshake",
    );
    // Offering at most 1.2 to a 1.3-only server: no handshake either.
    failed_on(
        &run_one(&check(tls13.addr(), "max_version = \"1.2\"")).await,
        "handshake",
        "a completed TLS handshake",
        "tls_handshake",
    );
    // Offering at most 1.2 to a server that speaks both: 1.2 is negotiated, which the expectation then judges.
    let r = run_one(&check(both.addr(), "max_version = \"1.2\"\nexpect = { min_version = \"1.2\" }")).await;
    passed(&r);
    let Some(gonogo_probes::Observations::Tls(o)) = &r.observations else { panic!("tls observations: {r:?}") };
    assert_eq!(o.version.as_deref(), Some("1.2"));
    // The expectation is about what was negotiated, not offered: offering both to a 1.2-only server shakes hands,
    // then fails expect.min_version.
    failed_on(
        &run_one(&check(tls12.addr(), "expect = { min_version = \"1.3\" }")).await,
        "min_version",
        "TLS ≥ 1.3",
        "TLS 1.2",
    );
    passed(&run_one(&check(tls13.addr(), "min_version = \"1.3\"\nexpect = { min_version = \"1.3\" }")).await);
}

#[tokio::test]
async fn tls_client_certificate_for_mutual_tls() {
    let ca = TestCa::new("gonogo test CA");
    let clients = TestCa::new("gonogo client CA");
    let server = HttpServer::builder().require_client_cert(&clients).start_https(&ca.leaf(&["127.0.0.1"]));
    let client = clients.client_cert("gonogo-agent");
    let (cert, key) = (client.chain_file(), client.key_file());
    let identity = format!("client_cert = \"{}\"\nclient_key = \"{}\"\n", cert.path().display(), key.path().display());
    passed(&run_one(&tls_check(server.addr(), &ca, &identity)).await);
    for versions in ["max_version = \"1.2\"\n", "min_version = \"1.3\"\n", ""] {
        let r = run_one(&tls_check(server.addr(), &ca, versions)).await;
        failed_on(&r, "handshake", "a completed TLS handshake", "tls_handshake");
    }
    // A certificate from a CA the server does not trust is refused as well.
    let stranger = ca.client_cert("stranger");
    let (cert, key) = (stranger.chain_file(), stranger.key_file());
    let identity = format!("client_cert = \"{}\"\nclient_key = \"{}\"\n", cert.path().display(), key.path().display());
    failed_on(&run_one(&tls_check(server.addr(), &ca, &identity)).await, "handshake", "a completed TLS handshake", "");
}

// ---- http: status ranges, body_not_matches, header_matches, method and body, max_redirects, proxy, mTLS -------

fn depth_server() -> HttpServer {
    HttpServer::builder()
        .status("/health", 200, "service ok v1.2")
        .status("/down", 503, "maintenance until 06:00")
        .respond("/api", 200, r#"{"status": "ok"}"#, &[("content-type", "application/json; charset=utf-8")])
        .redirect("/old", "/health")
        .redirect("/hop1", "/hop2")
        .redirect("/hop2", "/health")
        .echo("/echo")
        .start()
}

#[tokio::test]
async fn http_status_class_and_range() {
    let s = depth_server();
    let status = |path: &str, list: &str| {
        http_check(&s.url(path), &format!("follow_redirects = false\nexpect = {{ status = [{list}] }}"))
    };
    passed(&run_one(&status("/health", "\"2xx\"")).await);
    failed_on(&run_one(&status("/down", "\"2xx\"")).await, "status", "2xx", "503");
    passed(&run_one(&status("/old", "\"300-399\"")).await);
    // A range of a whole class is shown as the class.
    failed_on(&run_one(&status("/health", "\"300-399\"")).await, "status", "3xx", "200");
    failed_on(&run_one(&status("/health", "\"301-308\"")).await, "status", "301-308", "200");
    // A mixed list: a class, a range and a plain code.
    let mixed = "\"2xx\", \"301-302\", 503";
    for path in ["/health", "/old", "/down"] {
        passed(&run_one(&status(path, mixed)).await);
    }
    failed_on(&run_one(&status("/missing", mixed)).await, "status", "2xx or 301-302 or 503", "404");
}

#[tokio::test]
async fn http_body_not_matches() {
    let s = depth_server();
    let not =
        |path: &str| http_check(&s.url(path), "expect = { status = [\"2xx\", 503], body_not_matches = 'maint\\w+' }");
    passed(&run_one(&not("/health")).await);
    failed_on(
        &run_one(&not("/down")).await,
        "body_not_matches",
        "no body match for /maint\\w+/",
        "body contains \"maintenance\"",
    );
}

#[tokio::test]
async fn http_header_matches() {
    let s = depth_server();
    let header = |table: &str| http_check(&s.url("/api"), &format!("expect = {{ header_matches = {{ {table} }} }}"));
    passed(&run_one(&header("\"content-type\" = \"json\"")).await);
    // Header names are case-insensitive.
    passed(&run_one(&header("\"Content-Type\" = \"^application/json\", server = \"testkit\"")).await);
    failed_on(
        &run_one(&header("\"content-type\" = \"json\", \"x-foo\" = \"bar\"")).await,
        "header_matches",
        "header x-foo matching /bar/",
        "no x-foo header",
    );
    failed_on(
        &run_one(&header("\"content-type\" = \"^text/\"")).await,
        "header_matches",
        "header content-type matching /^text//",
        "content-type: application/json; charset=utf-8",
    );
}

#[tokio::test]
async fn http_post_with_a_body() {
    let s = depth_server();
    let post = |pattern: &str| {
        http_check(
            &s.url("/echo"),
            &format!(
                "method = \"POST\"\nbody = '{{\"ping\": true}}'\nheaders = {{ Content-Type = \"application/json\" }}\n\
                 expect = {{ body_matches = '{pattern}' }}"
            ),
        )
    };
    passed(
        &run_one(&post("(?s)\\APOST /echo\\n.*content-type: application/json\\n.*\\n\\n\\{\"ping\": true\\}\\z")).await,
    );
    failed_on(
        &run_one(&post("\\{\"ping\": false\\}")).await,
        "body_matches",
        "body matching /\\{\"ping\": false\\}/",
        "no match in ",
    );
    // Without `body` nothing is sent after the head.
    let r = run_one(&http_check(&s.url("/echo"), "method = \"POST\"\nexpect = { body_matches = 'ping' }")).await;
    failed_on(&r, "body_matches", "body matching /ping/", "no match in ");
}

#[tokio::test]
async fn http_max_redirects() {
    let s = depth_server();
    let hops = |n: u32| {
        http_check(&s.url("/hop1"), &format!("max_redirects = {n}\nexpect = {{ body_matches = 'service ok' }}"))
    };
    passed(&run_one(&hops(2)).await);
    passed(&run_one(&http_check(&s.url("/old"), "max_redirects = 1")).await);
    // One redirect allowed, two needed: the check fails, and the probe recorded why.
    let r = run_one(&hops(1)).await;
    assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
    let Some(gonogo_probes::Observations::Http(o)) = &r.observations else { panic!("http observations: {r:?}") };
    assert_eq!(o.failure, Some(gonogo_probes::Failure::Protocol), "{o:?}");
    assert!(o.detail.as_deref().is_some_and(|d| d.starts_with("more than 1 redirects")), "{o:?}");
    assert_eq!(o.redirects, 1);
}

/// The reason must say the redirect limit was hit, and the 302 that was not followed is not the final status.
#[tokio::test]
async fn http_max_redirects_exceeded_is_named_and_never_passes() {
    let s = depth_server();
    let hops = |extra: &str| http_check(&s.url("/hop1"), &format!("max_redirects = 1\n{extra}"));
    let r = run_one(&hops("")).await;
    failed_on(&r, "response", "a complete HTTP exchange", "protocol: more than 1 redirects");
    let r = run_one(&hops("expect = { status = [302] }")).await;
    assert_eq!(r.outcome, Outcome::Fail, "an unfollowed redirect is not a final 302: {r:?}");
    // The same root cause: a body cut short after a 200 is judged as a complete response.
    let cut = cut_short_server().await;
    let r = run_one(&http_check(&format!("http://{cut}/"), "")).await;
    assert_eq!(r.outcome, Outcome::Fail, "a body cut short is not a complete response: {r:?}");
}

/// A server on 127.0.0.1 that answers every request with a 200 announcing 1000 bytes, sends 5 and closes.
async fn cut_short_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nshort").await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn http_client_certificate_for_mutual_tls() {
    let ca = TestCa::new("gonogo test CA");
    let clients = TestCa::new("gonogo client CA");
    let s = HttpServer::builder()
        .status("/health", 200, "ok")
        .require_client_cert(&clients)
        .start_https(&ca.leaf(&["127.0.0.1"]));
    let client = clients.client_cert("gonogo-agent");
    let (cert, key) = (client.chain_file(), client.key_file());
    let ca_file = format!("ca_file = \"{}\"\n", ca.ca_file().display());
    let identity = format!("client_cert = \"{}\"\nclient_key = \"{}\"\n", cert.path().display(), key.path().display());
    passed(&run_one(&http_check(&s.url("/health"), &format!("{ca_file}{identity}"))).await);
    assert_eq!(s.requests(), 1);
    let r = run_one(&http_check(&s.url("/health"), &ca_file)).await;
    failed_on(&r, "response", "an HTTP response", "");
    assert_eq!(s.requests(), 1, "no request got through without a client certificate");
}

/// `proxy = "env"` reads the process environment, which is global: run the real binary with the variables set
/// on the child only.
fn run_with_env(config: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let cfg = crate::support::write_config(config);
    let mut command = std::process::Command::new(crate::support::gonogo_bin());
    command.arg("--config").arg(&cfg.path).args(["run", "commissioning", "--format", "json"]);
    for var in
        ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"]
    {
        command.env_remove(var);
    }
    command.env_remove("GONOGO_CONFIG").env("NO_COLOR", "1").envs(env.iter().copied());
    let out = command.output().expect("run gonogo");
    let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON on stdout ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    doc["exit_code"] = out.status.code().into();
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_from_the_environment() {
    let s = depth_server();
    let proxy = HttpProxy::start();
    let config =
        |extra: &str| format!("[[check]]\nphases = [\"commissioning\"]\n{}", http_check(&s.url("/health"), extra));
    let run = |config: String, env: Vec<(&'static str, String)>| {
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            run_with_env(&config, &env)
        })
    };
    // proxy = "env" with HTTP_PROXY set: the request goes through the proxy.
    let doc = run(config("proxy = \"env\""), vec![("HTTP_PROXY", proxy.url())]).await.expect("join");
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(proxy.handled(), 1);
    assert_eq!(proxy.targets(), vec![format!("GET {}", s.url("/health"))]);
    // The lowercase form works too.
    let doc = run(config("proxy = \"env\""), vec![("http_proxy", proxy.url())]).await.expect("join");
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(proxy.handled(), 2);
    // NO_PROXY naming the host: direct.
    let doc = run(config("proxy = \"env\""), vec![("HTTP_PROXY", proxy.url()), ("NO_PROXY", "127.0.0.1".to_owned())])
        .await
        .expect("join");
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(proxy.handled(), 2);
    // Without `proxy` the environment is ignored: direct.
    let doc = run(config(""), vec![("HTTP_PROXY", proxy.url())]).await.expect("join");
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(proxy.handled(), 2);
    // proxy = "env" with no variable set: direct.
    let requests = s.requests();
    let doc = run(config("proxy = \"env\""), vec![]).await.expect("join");
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!((proxy.handled(), s.requests()), (2, requests + 1));
    // proxy = "env" pointing at a proxy that is down: the check fails, it does not quietly go direct.
    let dead = format!("http://{}", closed_port());
    let doc = run(config("proxy = \"env\""), vec![("HTTP_PROXY", dead)]).await.expect("join");
    assert_eq!(doc["exit_code"], 1, "{doc}");
    assert_eq!(doc["checks"][0]["outcome"], "fail", "{doc}");
    assert!(doc["checks"][0]["reasons"][0].as_str().is_some_and(|r| r.starts_with("response: ")), "{doc}");
    assert_eq!(s.requests(), requests + 1);
}

// ---- egress ---------------------------------------------------------------------------------------------------

fn egress_check(url: &str, nets: &str) -> String {
    format!(
        "name = \"egress\"\nkind = \"egress\"\nurl = \"{url}\"\ntimeout = \"2s\"\nexpect = {{ egress_in = [{nets}] }}"
    )
}

#[tokio::test]
async fn egress_in_judges_the_reported_address() {
    // The service only reports an address; the probe parses what it says (127.0.0.9 is not where we came from).
    let s = HttpServer::builder()
        .status("/text", 200, "127.0.0.9\n")
        .respond("/json", 200, r#"{"ip": "::1"}"#, &[("content-type", "application/json")])
        .status("/garbage", 200, "hello, world")
        .status("/error", 500, "10.1.2.3")
        .start();
    passed(&run_one(&egress_check(&s.url("/text"), "\"127.0.0.0/8\"")).await);
    failed_on(
        &run_one(&egress_check(&s.url("/text"), "\"10.0.0.0/8\"")).await,
        "egress_in",
        "an egress address in 10.0.0.0/8",
        "127.0.0.9",
    );
    passed(&run_one(&egress_check(&s.url("/json"), "\"10.0.0.0/8\", \"::1/128\"")).await);
    failed_on(
        &run_one(&egress_check(&s.url("/json"), "\"127.0.0.0/8\"")).await,
        "egress_in",
        "an egress address in 127.0.0.0/8",
        "::1",
    );
    let r = run_one(&egress_check(&s.url("/garbage"), "\"127.0.0.0/8\"")).await;
    failed_on(&r, "address", "the service to report this site's public address", "protocol: ");
    assert!(reason_for(&r, "address").contains("hello, world"), "{:?}", r.reasons);
    // An error page is not taken as an address, even one that holds one.
    let r = run_one(&egress_check(&s.url("/error"), "\"10.0.0.0/8\"")).await;
    failed_on(
        &r,
        "address",
        "the service to report this site's public address",
        "protocol: the service answered HTTP 500, not 2xx",
    );
}

// ---- mtu ------------------------------------------------------------------------------------------------------

fn mtu_check(min: u32) -> String {
    format!(
        "name = \"mtu\"\nkind = \"mtu\"\ntarget = \"127.0.0.1\"\ntimeout = \"300ms\"\nexpect = {{ path_mtu_min = {min} }}"
    )
}

#[tokio::test]
async fn mtu_path_mtu_min_on_loopback() {
    // lo's MTU is 65536; the largest IP packet is 65535 bytes.
    let r = run_one(&mtu_check(1500)).await;
    passed(&r);
    let Some(gonogo_probes::Observations::Mtu(o)) = &r.observations else { panic!("mtu observations: {r:?}") };
    assert_eq!(o.interface.as_deref(), Some("lo"), "{o:?}");
    let path = o.path_mtu.expect("a path MTU on loopback");
    assert!(path >= 1500, "{o:?}");
    passed(&run_one(&mtu_check(path)).await);
}

/// The failing direction needs a narrower path: the real binary in a fresh network namespace whose `lo` has an
/// MTU of 1400.
#[test]
fn mtu_path_mtu_min_in_a_namespace_with_a_narrow_loopback() {
    let config = |min: u32| format!("[[check]]\nphases = [\"commissioning\"]\n{}\n", mtu_check(min));
    let prefix = "ip link set lo up && ip link set lo mtu 1400 && exec";
    let Some(doc) = crate::support::run_in_fresh_netns(&config(1500), "commissioning", prefix) else { return };
    let check = &doc["checks"][0];
    assert_eq!(check["outcome"], "fail", "{check}");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(
        check["reasons"][0], "path_mtu_min: expected ≥ 1500 bytes, observed 1400 bytes (interface MTU 1400)",
        "{check}"
    );
    assert_eq!(check["observations"]["path_mtu"], 1400, "{check}");
    let Some(doc) = crate::support::run_in_fresh_netns(&config(1400), "commissioning", prefix) else { return };
    assert_eq!(doc["checks"][0]["outcome"], "pass", "{doc}");
    assert_eq!(doc["exit_code"], 0);
}

// ---- expect_failure ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn expect_failure_on_dns() {
    let dead = gonogo_testkit::dns::silent_udp();
    let old_resolver = |addr: std::net::SocketAddr| {
        format!(
            "name = \"old-dns\"\nkind = \"dns\"\nserver = \"{addr}\"\nquery = \"app.test\"\ntimeout = \"300ms\"\nexpect_failure = true\n"
        )
    };
    let r = run_one(&old_resolver(dead.addr())).await;
    passed(&r);
    assert!(r.expectations[0].observed.starts_with("unreachable: timeout"), "{:?}", r.expectations);
    assert!(r.observations.is_some(), "the observation is kept");
    let live = dns_server().await;
    failed_on(
        &run_one(&old_resolver(live.addr())).await,
        "expect_failure",
        "the target unreachable",
        &format!("reachable: {}/udp answered NOERROR", live.addr()),
    );
    // Any answer means reachable, NXDOMAIN included.
    let r = run_one(&old_resolver(live.addr()).replace("app.test", "gone.test")).await;
    failed_on(
        &r,
        "expect_failure",
        "the target unreachable",
        &format!("reachable: {}/udp answered NXDOMAIN", live.addr()),
    );
}

#[tokio::test]
async fn expect_failure_on_http() {
    let s = depth_server();
    let old = |url: &str| format!("{}expect_failure = true\n", http_check(url, ""));
    let r = run_one(&old(&format!("http://{}/", closed_port()))).await;
    passed(&r);
    assert!(r.expectations[0].observed.starts_with("unreachable: connection_refused"), "{:?}", r.expectations);
    failed_on(
        &run_one(&old(&s.url("/health"))).await,
        "expect_failure",
        "the target unreachable",
        "reachable: HTTP 200",
    );
    // An error status is still an answer.
    failed_on(&run_one(&old(&s.url("/down"))).await, "expect_failure", "the target unreachable", "reachable: HTTP 503");
}

#[test]
fn expect_failure_on_icmp_in_a_namespace_that_ignores_echoes() {
    let config = "[[check]]\nphases = [\"commissioning\"]\nname = \"old-gw\"\nkind = \"icmp\"\ntarget = \"127.0.0.1\"\n\
                  count = 3\ninterval = \"10ms\"\ntimeout = \"300ms\"\nexpect_failure = true\n";
    let ignore = "ip link set lo up && sysctl -qw net.ipv4.icmp_echo_ignore_all=1 && exec";
    let Some(doc) = crate::support::run_in_fresh_netns(config, "commissioning", ignore) else { return };
    let check = &doc["checks"][0];
    assert_eq!(check["outcome"], "pass", "{check}");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(check["expectations"][0]["observed"], "unreachable: 0 of 3 echoes answered", "{check}");
    assert_eq!(check["observations"]["received"], 0, "the observation is kept: {check}");
    // The same namespace answering echoes: the old gateway is still there.
    let Some(doc) = crate::support::run_in_fresh_netns(config, "commissioning", "ip link set lo up && exec") else {
        return;
    };
    let check = &doc["checks"][0];
    assert_eq!(check["outcome"], "fail", "{check}");
    assert_eq!(
        check["reasons"][0],
        "expect_failure: expected the target unreachable, observed reachable: 3 of 3 echoes answered",
        "{check}"
    );
}
