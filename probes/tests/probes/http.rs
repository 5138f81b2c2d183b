//! HTTP probe against the test kit's HTTP(S) servers and forward proxy on 127.0.0.1: status, redirects, body
//! limit, method and headers, HTTPS with a CA file, certificate errors, a hanging server, a closed port, raw
//! sockets that answer junk or hang up, and requests through the proxy.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use gonogo_probes::http::{HttpObservations, HttpParams, HttpProbe};
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
    assert!(!o.headers.contains_key("date"), "only the selected headers are kept");
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
