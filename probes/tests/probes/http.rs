//! HTTP probe against the test kit's HTTP(S) servers and forward proxy on 127.0.0.1: status, redirects, body
//! limit, method and headers, HTTPS with a CA file, certificate errors, a hanging server, a closed port, raw
//! sockets that answer junk or hang up, and requests through the proxy; a request body, the redirect limit,
//! the proxy environment (in a child process of this test binary: environment variables are process-wide),
//! mutual TLS, a source address, a pinned address, and all response headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use gonogo_probes::http::{HttpObservations, HttpParams, HttpProbe, MAX_HEADER_VALUE, MAX_KEPT_HEADERS, MAX_REDIRECTS};
use gonogo_probes::{Failure, Kind, Observations, Probe, ProbeError};
use gonogo_testkit::certs::TestCa;
use gonogo_testkit::http::{HttpProxy, HttpServer};
use gonogo_testkit::tcp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Short timeout for the tests that must wait it out.
const SHORT: Duration = Duration::from_millis(300);

fn params(url: &str) -> HttpParams {
    HttpParams {
        url: url.to_owned(),
        method: "GET".to_owned(),
        headers: Vec::new(),
        ca_file: None,
        verify: true,
        proxy: None,
        follow_redirects: true,
        body_limit: 1 << 20,
        timeout: TIMEOUT,
        max_redirects: MAX_REDIRECTS,
        ..Default::default()
    }
}

fn with_ca(url: &str, ca_file: &Path) -> HttpParams {
    HttpParams { ca_file: Some(ca_file.to_path_buf()), ..params(url) }
}

async fn run(params: HttpParams) -> HttpObservations {
    match HttpProbe::new(params).run().await {
        Ok(Observations::Http(o)) => o,
        other => panic!("expected HTTP observations, got {other:?}"),
    }
}

#[tokio::test]
async fn ok_status_headers_and_body() {
    let server = HttpServer::builder().status("/health", 200, "ok").start();
    let url = server.url("/health");

    let o = run(params(&url)).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.status, Some(200));
    assert_eq!(o.final_url.as_deref(), Some(url.as_str()));
    assert_eq!(o.redirects, 0);
    assert_eq!(o.body, "ok");
    assert_eq!(o.body_bytes, 2);
    assert!(!o.body_truncated);
    assert_eq!(o.headers.get("content-type").map(String::as_str), Some("text/plain"));
    assert_eq!(o.headers.get("server").map(String::as_str), Some("gonogo-testkit"));
    assert_eq!(o.headers.get("content-length").map(String::as_str), Some("2"));
    assert!(o.headers.contains_key("date"), "every header is kept: {:?}", o.headers);
    assert!(!o.headers_truncated);
    let (Some(headers), Some(total)) = (o.time_to_headers, o.total_time) else { panic!("timings missing: {o:?}") };
    assert!(headers <= total, "{headers:?} > {total:?}");
}

#[tokio::test]
async fn not_found_is_recorded_not_a_failure() {
    let server = HttpServer::builder().start();
    let o = run(params(&server.url("/nowhere"))).await;
    assert_eq!(o.status, Some(404));
    assert_eq!(o.failure, None);
    assert_eq!(o.detail, None);
}

#[tokio::test]
async fn redirect_is_followed_and_counted() {
    let server = HttpServer::builder()
        .redirect("/old", "/middle")
        .redirect("/middle", "/new")
        .status("/new", 200, "new")
        .start();

    let o = run(params(&server.url("/old"))).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.status, Some(200));
    assert_eq!(o.redirects, 2);
    assert_eq!(o.final_url, Some(server.url("/new")));
    assert_eq!(o.body, "new");
}

#[tokio::test]
async fn redirect_is_not_followed_when_asked() {
    let server = HttpServer::builder().redirect("/old", "/new").status("/new", 200, "new").start();

    let o = run(HttpParams { follow_redirects: false, ..params(&server.url("/old")) }).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.status, Some(302));
    assert_eq!(o.redirects, 0);
    assert_eq!(o.final_url, Some(server.url("/old")));
    assert_eq!(o.headers.get("location").map(String::as_str), Some("/new"));
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn redirect_loop_stops_after_ten() {
    let server = HttpServer::builder().redirect("/loop", "/loop").start();

    let o = run(params(&server.url("/loop"))).await;

    assert_eq!(o.failure, Some(Failure::Protocol), "{o:?}");
    assert_eq!(o.redirects, 10);
    assert!(o.detail.as_deref().unwrap_or_default().contains("more than 10 redirects"), "{o:?}");
    assert_eq!(server.requests(), 11);
}

#[tokio::test]
async fn body_is_read_up_to_the_limit() {
    let server = HttpServer::builder().large_body("/big", 100_000).start();
    let url = server.url("/big");

    let o = run(HttpParams { body_limit: 1000, ..params(&url) }).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.body_bytes, 1000);
    assert_eq!(o.body.len(), 1000);
    assert!(o.body_truncated);
    assert_eq!(o.headers.get("content-length").map(String::as_str), Some("100000"));

    let exact = run(HttpParams { body_limit: 100_000, ..params(&url) }).await;
    assert_eq!((exact.body_bytes, exact.body_truncated), (100_000, false));

    let roomy = run(HttpParams { body_limit: 200_000, ..params(&url) }).await;
    assert_eq!((roomy.body_bytes, roomy.body_truncated), (100_000, false));
}

#[tokio::test]
async fn method_and_headers_reach_the_server() {
    let server = HttpServer::builder().echo("/echo").start();

    let o = run(HttpParams {
        method: "PUT".to_owned(),
        headers: vec![("X-Gonogo-Test".to_owned(), "yes".to_owned())],
        ..params(&server.url("/echo"))
    })
    .await;

    assert_eq!(o.failure, None, "{o:?}");
    assert!(o.body.starts_with("PUT /echo\n"), "{}", o.body);
    assert!(o.body.contains("\nx-gonogo-test: yes\n"), "{}", o.body);
    assert!(o.body.contains("\nuser-agent: gonogo/"), "{}", o.body);
    assert!(o.body.contains("\naccept: */*\n"), "{}", o.body);
    assert_eq!(o.headers.get("x-http-version").map(String::as_str), Some("HTTP/1.1"), "{o:?}");
}

#[tokio::test]
async fn https_with_a_ca_file() {
    let ca = TestCa::new("gonogo test CA");
    let server = HttpServer::builder().status("/", 200, "secure").start_https(&ca.leaf(&["localhost", "127.0.0.1"]));

    let o = run(with_ca(&server.url("/"), ca.ca_file())).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.status, Some(200));
    assert_eq!(o.body, "secure");
}

#[tokio::test]
async fn https_speaks_http2_when_the_server_offers_it() {
    let ca = TestCa::new("gonogo test CA");
    let server = HttpServer::builder()
        .echo("/echo")
        .redirect("/old", "/echo")
        .start_https_h2(&ca.leaf(&["localhost", "127.0.0.1"]));

    let o = run(HttpParams {
        method: "POST".to_owned(),
        headers: vec![("X-Gonogo-Test".to_owned(), "yes".to_owned())],
        body: Some(b"ping".to_vec()),
        ..with_ca(&server.url("/echo"), ca.ca_file())
    })
    .await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.headers.get("x-http-version").map(String::as_str), Some("HTTP/2.0"), "{o:?}");
    assert!(o.body.starts_with(&format!("POST {}\n", server.url("/echo"))), "{}", o.body);
    assert!(o.body.contains("\nx-gonogo-test: yes\n"), "{}", o.body);
    assert!(o.body.ends_with("\n\nping"), "{}", o.body);

    // A redirect on HTTP/2 is followed like one on HTTP/1.1.
    let o = run(with_ca(&server.url("/old"), ca.ca_file())).await;
    assert_eq!((o.failure, o.status, o.redirects), (None, Some(200), 1), "{o:?}");
    assert_eq!(o.final_url.as_deref(), Some(server.url("/echo").as_str()));
    assert!(o.body.starts_with(&format!("GET {}\n", server.url("/echo"))), "{}", o.body);
}

#[tokio::test]
async fn credentials_in_the_url_are_sent_as_basic_authorization() {
    let server = HttpServer::builder().echo("/echo").start();
    let url = server.url("/echo").replace("http://", "http://probe:p%40ss@");

    let o = run(params(&url)).await;

    assert_eq!(o.failure, None, "{o:?}");
    // base64("probe:p@ss")
    assert!(o.body.contains("\nauthorization: Basic cHJvYmU6cEBzcw==\n"), "{}", o.body);
    assert_eq!(o.final_url.as_deref(), Some(server.url("/echo").as_str()), "credentials kept in the reported URL");

    // The check's own Authorization header wins over the URL's credentials.
    let bearer = vec![("Authorization".to_owned(), "Bearer t0ken".to_owned())];
    let o = run(HttpParams { headers: bearer, ..params(&url) }).await;
    assert!(o.body.contains("\nauthorization: Bearer t0ken\n"), "{}", o.body);
    assert!(!o.body.contains("Basic"), "{}", o.body);
}

#[tokio::test]
async fn a_host_header_of_the_check_is_sent_as_given() {
    // A virtual host behind an address: the URL names the address, the header the site.
    let server = HttpServer::builder().echo("/echo").start();
    let headers = vec![("Host".to_owned(), "vhost.example".to_owned())];

    let o = run(HttpParams { headers, ..params(&server.url("/echo")) }).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert!(o.body.contains("\nhost: vhost.example\n"), "{}", o.body);
    assert_eq!(o.body.matches("\nhost: ").count(), 1, "{}", o.body);
}

#[tokio::test]
async fn https_expired_certificate_is_invalid() {
    let ca = TestCa::new("gonogo test CA");
    let server = HttpServer::builder().status("/", 200, "ok").start_https(&ca.expired_leaf(&["127.0.0.1"]));

    let o = run(with_ca(&server.url("/"), ca.ca_file())).await;

    assert_eq!(o.failure, Some(Failure::CertificateInvalid), "{o:?}");
    assert_eq!(o.status, None);
    assert!(o.detail.as_deref().unwrap_or_default().contains("certificate expired"), "{o:?}");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn https_without_verify_accepts_an_expired_certificate() {
    let ca = TestCa::new("gonogo test CA");
    let server = HttpServer::builder().status("/", 200, "ok").start_https(&ca.expired_leaf(&["127.0.0.1"]));

    let o = run(HttpParams { verify: false, ..with_ca(&server.url("/"), ca.ca_file()) }).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.status, Some(200));
}

#[tokio::test]
async fn https_untrusted_by_the_system_is_an_unknown_issuer() {
    let ca = TestCa::new("gonogo test CA");
    let server = HttpServer::builder().status("/", 200, "ok").start_https(&ca.leaf(&["127.0.0.1"]));

    let o = run(params(&server.url("/"))).await;

    assert_eq!(o.failure, Some(Failure::CertificateInvalid), "{o:?}");
    assert!(o.detail.as_deref().unwrap_or_default().contains("unknown issuer"), "{o:?}");
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_handshake_failure() {
    let server = HttpServer::builder().status("/", 200, "ok").start();
    let url = server.url("/").replacen("http://", "https://", 1);

    let o = run(params(&url)).await;

    assert_eq!(o.failure, Some(Failure::TlsHandshake), "{o:?}");
}

#[tokio::test]
async fn hanging_server_times_out() {
    let server = HttpServer::builder().hang("/slow").start();
    let probe = HttpProbe::new(HttpParams { timeout: SHORT, ..params(&server.url("/slow")) });
    assert!(probe.budget() >= SHORT);

    let started = Instant::now();
    let Ok(Observations::Http(o)) = probe.run().await else { panic!("expected HTTP observations") };

    assert_eq!(o.failure, Some(Failure::Timeout), "{o:?}");
    assert!(o.detail.as_deref().unwrap_or_default().contains("no complete response within"), "{o:?}");
    assert!(started.elapsed() < 3 * SHORT, "took {:?}", started.elapsed());
    assert_eq!(server.requests(), 1, "the request reached the server");
}

#[tokio::test]
async fn silent_listener_times_out() {
    let (addr, _listener) = tcp::hanging_listener();
    let started = Instant::now();
    let o = run(HttpParams { timeout: SHORT, ..params(&format!("http://{addr}/")) }).await;
    assert_eq!(o.failure, Some(Failure::Timeout), "{o:?}");
    assert!(started.elapsed() < 3 * SHORT, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn closed_port_is_connection_refused() {
    let o = run(params(&format!("http://{}/", tcp::closed_port()))).await;
    assert_eq!(o.failure, Some(Failure::ConnectionRefused), "{o:?}");
    assert!(o.detail.as_deref().unwrap_or_default().contains("refused"), "{o:?}");
    assert_eq!(o.status, None);
}

/// A one-shot raw server: reads the request head, writes `reply`, then closes (or, with `hold`, keeps the
/// connection open and silent).
async fn raw_server(reply: &'static [u8], hold: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        if let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(reply).await;
            if hold {
                std::future::pending::<()>().await;
            }
            let _ = stream.shutdown().await;
        }
    });
    addr
}

#[tokio::test]
async fn junk_reply_is_a_protocol_failure() {
    let addr = raw_server(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", false).await;
    let o = run(params(&format!("http://{addr}/"))).await;
    assert_eq!(o.failure, Some(Failure::Protocol), "{o:?}");
}

#[tokio::test]
async fn hang_up_before_the_response_is_a_reset() {
    let addr = raw_server(b"", false).await;
    let o = run(params(&format!("http://{addr}/"))).await;
    assert_eq!(o.failure, Some(Failure::ConnectionReset), "{o:?}");
}

#[tokio::test]
async fn stalled_body_times_out_keeping_what_was_read() {
    let addr = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhello", true).await;

    let o = run(HttpParams { timeout: SHORT, ..params(&format!("http://{addr}/")) }).await;

    assert_eq!(o.failure, Some(Failure::Timeout), "{o:?}");
    assert_eq!(o.status, Some(200));
    assert_eq!(o.body, "hello");
    assert!(o.detail.as_deref().unwrap_or_default().contains("reading the body"), "{o:?}");
    assert!(o.time_to_headers.is_some());
}

#[tokio::test]
async fn failure_after_a_redirect_names_the_hop() {
    let closed = tcp::closed_port();
    let server = HttpServer::builder().redirect("/away", &format!("http://{closed}/gone")).start();

    let o = run(params(&server.url("/away"))).await;

    assert_eq!(o.failure, Some(Failure::ConnectionRefused), "{o:?}");
    assert_eq!(o.redirects, 1);
    assert_eq!(o.status, None);
    assert_eq!(o.final_url, Some(format!("http://{closed}/gone")));
    assert!(o.detail.as_deref().unwrap_or_default().contains(&format!("(at http://{closed}/gone)")), "{o:?}");
}

#[tokio::test]
async fn http_goes_through_the_proxy() {
    let server = HttpServer::builder().status("/", 200, "via proxy").start();
    let proxy = HttpProxy::start();
    let url = server.url("/");
    let probe = HttpProbe::new(HttpParams { proxy: Some(proxy.url()), ..params(&url) });
    assert_eq!(probe.target(), format!("{url} via proxy"));

    let Ok(Observations::Http(o)) = probe.run().await else { panic!("expected HTTP observations") };

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.body, "via proxy");
    assert_eq!(proxy.handled(), 1);
    assert_eq!(proxy.targets(), vec![format!("GET {url}")]);
}

#[tokio::test]
async fn https_goes_through_the_proxy() {
    let ca = TestCa::new("gonogo test CA");
    let server = HttpServer::builder().status("/", 200, "tunnelled").start_https(&ca.leaf(&["127.0.0.1"]));
    let proxy = HttpProxy::start();

    let o = run(HttpParams { proxy: Some(proxy.url()), ..with_ca(&server.url("/"), ca.ca_file()) }).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.body, "tunnelled");
    assert_eq!(proxy.handled(), 1);
    assert_eq!(proxy.targets(), vec![format!("CONNECT {}", server.addr())]);
}

#[tokio::test]
async fn http_and_https_go_through_a_socks5_proxy() {
    let plain = HttpServer::builder().status("/", 200, "via socks").start();
    let ca = TestCa::new("gonogo test CA");
    let secure = HttpServer::builder().status("/", 200, "secure via socks").start_https(&ca.leaf(&["127.0.0.1"]));
    let proxy = HttpProxy::start();

    let o = run(HttpParams { proxy: Some(proxy.socks5_url()), ..params(&plain.url("/")) }).await;
    assert_eq!((o.failure, o.status), (None, Some(200)), "{o:?}");
    assert_eq!(o.body, "via socks");
    let o = run(HttpParams { proxy: Some(proxy.socks5_url()), ..with_ca(&secure.url("/"), ca.ca_file()) }).await;
    assert_eq!((o.failure, o.status), (None, Some(200)), "{o:?}");
    assert_eq!(o.body, "secure via socks");

    assert_eq!(proxy.targets(), vec![format!("SOCKS5 {}", plain.addr()), format!("SOCKS5 {}", secure.addr())]);
}

#[tokio::test]
async fn each_run_opens_a_fresh_connection() {
    let server = HttpServer::builder().status("/", 200, "ok").start();
    let proxy = HttpProxy::start();
    let probe = HttpProbe::new(HttpParams { proxy: Some(proxy.url()), ..params(&server.url("/")) });
    for _ in 0..2 {
        let Ok(Observations::Http(o)) = probe.run().await else { panic!("expected HTTP observations") };
        assert_eq!(o.status, Some(200), "{o:?}");
    }
    assert_eq!(proxy.handled(), 2);
}

#[tokio::test]
async fn bad_parameters_are_local_errors() {
    for bad in [
        params("not a url"),
        params("ftp://127.0.0.1/"),
        HttpParams { method: "GE T".to_owned(), ..params("http://127.0.0.1/") },
        HttpParams { headers: vec![("bad header".to_owned(), "x".to_owned())], ..params("http://127.0.0.1/") },
        HttpParams { ca_file: Some("/nonexistent/gonogo/ca.pem".into()), ..params("https://127.0.0.1/") },
    ] {
        let shown = format!("{bad:?}");
        assert!(matches!(HttpProbe::new(bad).run().await, Err(ProbeError::Local(_))), "{shown}");
    }
}

#[test]
fn target_and_kind() {
    let probe = HttpProbe::new(params("http://127.0.0.1:8080/health"));
    assert_eq!(probe.kind(), Kind::Http);
    assert_eq!(probe.target(), "http://127.0.0.1:8080/health");
    assert!(probe.budget() >= TIMEOUT && probe.budget() < TIMEOUT + Duration::from_secs(1));
}

// ---- request body and redirect limit ----------------------------------------------------------------------------

#[tokio::test]
async fn post_body_is_sent_with_its_length() {
    let server = HttpServer::builder().echo("/echo").start();

    let o = run(HttpParams {
        method: "POST".to_owned(),
        headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
        body: Some(br#"{"ping":1}"#.to_vec()),
        ..params(&server.url("/echo"))
    })
    .await;

    assert_eq!(o.failure, None, "{o:?}");
    assert!(o.body.starts_with("POST /echo\n"), "{}", o.body);
    assert!(o.body.contains("\ncontent-length: 10\n"), "{}", o.body);
    assert!(o.body.ends_with("\n\n{\"ping\":1}"), "{}", o.body);

    // Without a body, nothing follows the headers.
    let o = run(HttpParams { method: "POST".to_owned(), ..params(&server.url("/echo")) }).await;
    assert!(o.body.ends_with('\n') && !o.body.contains("\n\n"), "{}", o.body);
}

#[tokio::test]
async fn body_follows_a_307_and_is_dropped_when_a_302_turns_post_into_get() {
    let server = HttpServer::builder()
        .respond("/temporary", 307, "", &[("location", "/echo")])
        .redirect("/found", "/echo")
        .echo("/echo")
        .start();
    let post = |path: &str| HttpParams {
        method: "POST".to_owned(),
        headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
        body: Some(b"payload".to_vec()),
        ..params(&server.url(path))
    };

    let o = run(post("/temporary")).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert!(o.body.starts_with("POST /echo\n") && o.body.ends_with("\n\npayload"), "{}", o.body);

    let o = run(post("/found")).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert!(o.body.starts_with("GET /echo\n"), "{}", o.body);
    assert!(!o.body.contains("payload") && !o.body.contains("content-type"), "{}", o.body);
}

#[tokio::test]
async fn redirect_limit_is_the_parameter() {
    let server =
        HttpServer::builder().redirect("/one", "/two").redirect("/two", "/end").status("/end", 200, "end").start();
    let limited = |n: u32| HttpParams { max_redirects: n, ..params(&server.url("/one")) };

    let o = run(limited(1)).await;
    assert_eq!(o.failure, Some(Failure::Protocol), "{o:?}");
    assert_eq!(o.redirects, 1);
    assert!(o.detail.as_deref().unwrap_or_default().contains("more than 1 redirects"), "{o:?}");

    let o = run(limited(2)).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!((o.redirects, o.body.as_str()), (2, "end"));

    let o = run(limited(0)).await;
    assert_eq!(o.failure, Some(Failure::Protocol), "{o:?}");
    assert!(o.detail.as_deref().unwrap_or_default().contains("more than 0 redirects"), "{o:?}");
    assert_eq!(o.status, Some(302));
}

// ---- headers ----------------------------------------------------------------------------------------------------

#[tokio::test]
async fn all_headers_are_kept_within_limits() {
    let long = "v".repeat(MAX_HEADER_VALUE + 100);
    let many: Vec<(String, String)> =
        (0..MAX_KEPT_HEADERS + 6).map(|i| (format!("x-h{i:03}"), i.to_string())).collect();
    let many_refs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let server = HttpServer::builder()
        .respond(
            "/few",
            200,
            "ok",
            &[("X-Frame-Options", "DENY"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("x-cache", "HIT")],
        )
        .respond("/long", 200, "ok", &[("x-long", long.as_str())])
        .respond("/many", 200, "ok", &many_refs)
        .start();

    let o = run(params(&server.url("/few"))).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.headers.get("x-frame-options").map(String::as_str), Some("DENY"));
    assert_eq!(o.headers.get("set-cookie").map(String::as_str), Some("<redacted, 3 bytes>, <redacted, 3 bytes>"));
    assert_eq!(o.headers.get("server").map(String::as_str), Some("gonogo-testkit"));
    assert!(!o.headers_truncated);

    let o = run(params(&server.url("/long"))).await;
    assert_eq!(o.headers.get("x-long").map(String::len), Some(MAX_HEADER_VALUE));
    assert!(o.headers_truncated);

    let o = run(params(&server.url("/many"))).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.headers.len(), MAX_KEPT_HEADERS);
    assert!(o.headers_truncated);
}

// ---- proxy from the environment ---------------------------------------------------------------------------------

/// Set in the child process that runs [`env_proxy_child`].
const ENV_CHILD: &str = "GONOGO_TEST_ENV_PROXY_CHILD";
/// URLs the child requests, passed by the parent.
const ENV_HTTP_URL: &str = "GONOGO_TEST_HTTP_URL";
const ENV_HTTPS_URL: &str = "GONOGO_TEST_HTTPS_URL";
const ENV_CA_FILE: &str = "GONOGO_TEST_CA_FILE";
const PROXY_VARS: [&str; 9] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

/// Run [`env_proxy_child`] in a child process of this test binary with the proxy environment `env` (and no
/// other proxy variable), for `http_url` and `https_url`; asserts that it passed. Bounded to a minute.
async fn run_env_child(env: &[(&str, String)], http_url: &str, https_url: &str, ca_file: &Path) {
    let exe = std::env::current_exe().expect("path of this test binary");
    let mut command = tokio::process::Command::new(exe);
    command.args(["--exact", "http::env_proxy_child", "--ignored", "--nocapture", "--test-threads=1"]);
    for var in PROXY_VARS {
        command.env_remove(var);
    }
    command
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env(ENV_CHILD, "1")
        .env(ENV_HTTP_URL, http_url)
        .env(ENV_HTTPS_URL, https_url)
        .env(ENV_CA_FILE, ca_file)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the child test finished within a minute")
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child with {env:?}: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

#[tokio::test]
async fn proxy_from_env_follows_the_environment() {
    let ca = TestCa::new("gonogo test CA");
    let plain = HttpServer::builder().status("/", 200, "ok").start();
    let secure = HttpServer::builder().status("/", 200, "ok").start_https(&ca.leaf(&["127.0.0.1"]));
    let (http_url, https_url) = (plain.url("/"), secure.url("/"));

    // HTTP_PROXY and HTTPS_PROXY set: the child's probes with proxy_from_env go through the proxy (a forwarded
    // GET, a CONNECT tunnel); those without go direct.
    let proxy = HttpProxy::start();
    let env = [("HTTP_PROXY", proxy.url()), ("https_proxy", proxy.url())];
    run_env_child(&env, &http_url, &https_url, ca.ca_file()).await;
    assert_eq!(proxy.targets(), vec![format!("GET {http_url}"), format!("CONNECT {}", secure.addr())]);
    assert_eq!((plain.requests(), secure.requests()), (2, 2));

    // ALL_PROXY covers both schemes.
    let proxy = HttpProxy::start();
    run_env_child(&[("ALL_PROXY", proxy.url())], &http_url, &https_url, ca.ca_file()).await;
    assert_eq!(proxy.handled(), 2);

    // NO_PROXY exempts the servers' address: everything goes direct.
    let proxy = HttpProxy::start();
    let env = [("HTTP_PROXY", proxy.url()), ("HTTPS_PROXY", proxy.url()), ("NO_PROXY", "127.0.0.1".to_owned())];
    run_env_child(&env, &http_url, &https_url, ca.ca_file()).await;
    assert_eq!(proxy.handled(), 0);
    assert_eq!((plain.requests(), secure.requests()), (6, 6));
}

#[tokio::test]
#[ignore = "runs in a child process with a proxy environment, through `proxy_from_env_follows_the_environment`"]
async fn env_proxy_child() {
    if std::env::var_os(ENV_CHILD).is_none() {
        eprintln!("SKIPPED: this test only runs in the child process its parent test starts");
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent"));
    let ca_file = var(ENV_CA_FILE);
    for url in [var(ENV_HTTP_URL), var(ENV_HTTPS_URL)] {
        for from_env in [true, false] {
            let o = run(HttpParams { proxy_from_env: from_env, ..with_ca(&url, Path::new(&ca_file)) }).await;
            assert_eq!((o.failure, o.status), (None, Some(200)), "{url} proxy_from_env={from_env}: {o:?}");
        }
    }
}

// ---- mutual TLS -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_certificate_required_by_an_https_server() {
    let ca = TestCa::new("gonogo test CA");
    let client_ca = TestCa::new("gonogo client CA");
    let server = HttpServer::builder()
        .status("/", 200, "hello client")
        .require_client_cert(&client_ca)
        .start_https(&ca.leaf(&["127.0.0.1"]));
    let url = server.url("/");

    let o = run(with_ca(&url, ca.ca_file())).await;
    assert_eq!(o.failure, Some(Failure::TlsHandshake), "{o:?}");
    assert!(o.detail.as_deref().unwrap_or_default().contains("certificate required"), "{o:?}");
    assert_eq!(o.status, None);
    assert_eq!(server.requests(), 0);

    let client = client_ca.client_cert("gonogo-agent");
    let (cert, key) = (client.chain_file(), client.key_file());
    let o = run(HttpParams {
        client_cert: Some(cert.path().to_path_buf()),
        client_key: Some(key.path().to_path_buf()),
        ..with_ca(&url, ca.ca_file())
    })
    .await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!((o.status, o.body.as_str()), (Some(200), "hello client"));

    // An unreadable key is a local error naming the file.
    let missing = std::env::temp_dir().join("gonogo-no-such-dir").join("client.key");
    let bad = HttpParams {
        client_cert: Some(cert.path().to_path_buf()),
        client_key: Some(missing.clone()),
        ..with_ca(&url, ca.ca_file())
    };
    match HttpProbe::new(bad).run().await {
        Err(ProbeError::Local(message)) => assert!(message.contains(&missing.display().to_string()), "{message}"),
        other => panic!("expected a local error, got {other:?}"),
    }
}

// ---- source and pinned address ----------------------------------------------------------------------------------

#[tokio::test]
async fn source_address_is_used_and_must_be_ours() {
    let server = HttpServer::builder().status("/", 200, "ok").start();
    let url = server.url("/");
    let from = |ip: IpAddr| HttpParams { source: Some(ip), ..params(&url) };

    let o = run(from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))).await;
    assert_eq!(o.failure, None, "{o:?}");
    let o = run(params(&url)).await;
    assert_eq!(o.failure, None, "{o:?}");
    let peers: Vec<IpAddr> = server.peers().iter().map(SocketAddr::ip).collect();
    assert_eq!(peers, [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), IpAddr::V4(Ipv4Addr::LOCALHOST)]);

    // Resolved names keep to the source's family: localhost has 127.0.0.1 for an IPv4 source.
    let by_name = server.url_with_host("localhost", "/");
    let o = run(HttpParams { source: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))), ..params(&by_name) }).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(server.peers().last().map(SocketAddr::ip), Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))));

    // 192.0.2.1 (TEST-NET-1) is not on this host: binding fails, nothing is sent.
    match HttpProbe::new(from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))).run().await {
        Err(ProbeError::Local(message)) => {
            assert!(message.contains("192.0.2.1 is not an address of this host"), "{message}");
        }
        other => panic!("expected a local error, got {other:?}"),
    }
    match HttpProbe::new(from(IpAddr::V6(Ipv6Addr::LOCALHOST))).run().await {
        Err(ProbeError::Local(message)) => assert!(message.contains("different address families"), "{message}"),
        other => panic!("expected a local error, got {other:?}"),
    }
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn pinned_address_is_used_keeping_the_host_name() {
    let server = HttpServer::builder().echo("/echo").start();
    // app.test is never resolved: the pin stands in for DNS.
    let url = server.url_with_host("app.test", "/echo");
    let pinned = |ip: IpAddr| HttpParams { pin: Some(ip), ..params(&url) };

    let probe = HttpProbe::new(pinned(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(probe.target(), format!("{url} (@127.0.0.1)"));
    let Ok(Observations::Http(o)) = probe.run().await else { panic!("expected HTTP observations") };
    assert_eq!(o.failure, None, "{o:?}");
    assert!(o.body.contains(&format!("\nhost: app.test:{}\n", server.addr().port())), "{}", o.body);
    assert_eq!(o.final_url.as_deref(), Some(url.as_str()));

    // Another pin, another address: nothing listens on 127.0.0.2 at that port.
    let o = run(pinned(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))).await;
    assert_eq!(o.failure, Some(Failure::ConnectionRefused), "{o:?}");
    assert_eq!(server.requests(), 1);

    // A URL that names an address can only be pinned to that address.
    let literal = server.url("/echo");
    let o = run(HttpParams { pin: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), ..params(&literal) }).await;
    assert_eq!(o.failure, None, "{o:?}");
    match HttpProbe::new(HttpParams { pin: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))), ..params(&literal) })
        .run()
        .await
    {
        Err(ProbeError::Local(message)) => {
            assert!(message.contains("differs from the address in the URL"), "{message}")
        }
        other => panic!("expected a local error, got {other:?}"),
    }
}

#[tokio::test]
async fn pinned_https_keeps_sni_and_certificate_name() {
    let ca = TestCa::new("gonogo test CA");
    let server = HttpServer::builder().status("/", 200, "app").start_https(&ca.leaf(&["app.test"]));
    let url = server.url_with_host("app.test", "/");

    let o = run(HttpParams { pin: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), ..with_ca(&url, ca.ca_file()) }).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.body, "app");
}
