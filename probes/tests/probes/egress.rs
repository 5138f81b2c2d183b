//! Egress ("what is my public address") against loopback services: the test kit's HTTP(S) server answering in the
//! shapes of real address-echo services (plain text, ipify/httpbin/ip-api JSON, a Cloudflare trace), garbage and
//! a 500; the test kit's forward proxy; and a small "who am I" service here that answers with the peer address it
//! sees, for the source and pin parameters. The addresses in the bodies are only data: nothing dials them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use gonogo_probes::egress::{EgressObservations, EgressParams, EgressProbe, RAW_CHARS};
use gonogo_probes::{Failure, Kind, Observations, Probe, ProbeError};
use gonogo_testkit::certs::TestCa;
use gonogo_testkit::http::{HttpProxy, HttpServer};
use gonogo_testkit::tcp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Short timeout for the tests that must wait it out.
const SHORT: Duration = Duration::from_millis(300);

fn params(url: &str) -> EgressParams {
    EgressParams { url: url.to_owned(), verify: true, timeout: TIMEOUT, ..Default::default() }
}

async fn try_run(params: EgressParams) -> Result<EgressObservations, ProbeError> {
    let probe = EgressProbe::new(params);
    let limit = probe.budget() + Duration::from_secs(2);
    match tokio::time::timeout(limit, probe.run()).await.expect("probe finishes within its budget")? {
        Observations::Egress(o) => Ok(o),
        other => panic!("expected egress observations, got {other:?}"),
    }
}

async fn run(params: EgressParams) -> EgressObservations {
    match try_run(params).await {
        Ok(o) => o,
        Err(e) => panic!("the egress probe could not measure: {e}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// The test kit's server with one route per answer shape.
fn echo_services() -> HttpServer {
    HttpServer::builder()
        .status("/plain", 200, "203.0.113.7\n")
        .respond("/ipify", 200, r#"{"ip": "2001:db8::7"}"#, &[("content-type", "application/json")])
        .respond(
            "/httpbin",
            200,
            "{\n  \"origin\": \"192.0.2.44, 10.0.0.1\"\n}\n",
            &[("content-type", "application/json")],
        )
        .respond(
            "/ip-api",
            200,
            r#"{"status":"success","country":"United Kingdom","query":"198.51.100.23"}"#,
            &[("content-type", "application/json")],
        )
        .status(
            "/trace",
            200,
            "fl=12f34\nh=egress.test\nip=198.51.100.9\nts=1700000000.123\nvisit_scheme=https\nuag=gonogo\ncolo=LHR\n",
        )
        .respond("/garbage", 200, "<html><body>Hello \u{1b} world</body></html>", &[("content-type", "text/html")])
        .status("/error", 500, "internal error for 203.0.113.9")
        .status("/empty", 200, "")
        .redirect("/moved", "/plain")
        .hang("/hang")
        .start()
}

#[tokio::test]
async fn plain_text_answer() {
    let server = echo_services();
    let o = run(params(&server.url("/plain"))).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.status, Some(200));
    assert_eq!(o.address, Some(ip("203.0.113.7")));
    assert_eq!(o.raw.as_deref(), Some("203.0.113.7\n"));
    assert!(o.time.is_some_and(|t| t < TIMEOUT), "{o:?}");
    assert_eq!(o.detail.as_deref(), Some("the service reported 203.0.113.7 (plain text)"));
}

#[tokio::test]
async fn json_answers() {
    let server = echo_services();
    for (path, address, field) in
        [("/ipify", "2001:db8::7", "ip"), ("/httpbin", "192.0.2.44", "origin"), ("/ip-api", "198.51.100.23", "query")]
    {
        let o = run(params(&server.url(path))).await;
        assert_eq!(o.failure, None, "{path}: {o:?}");
        assert_eq!(o.address, Some(ip(address)), "{path}");
        assert!(o.detail.unwrap_or_default().contains(&format!("JSON field \"{field}\"")), "{path}");
    }
}

#[tokio::test]
async fn cloudflare_trace_answer() {
    let server = echo_services();
    let o = run(params(&server.url("/trace"))).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.address, Some(ip("198.51.100.9")));
    assert!(o.detail.unwrap_or_default().contains("ip= line"));
    assert!(o.raw.unwrap_or_default().starts_with("fl=12f34\nh=egress.test\n"));
}

#[tokio::test]
async fn an_answer_without_an_address_is_a_protocol_failure() {
    let server = echo_services();
    for path in ["/garbage", "/empty"] {
        let o = run(params(&server.url(path))).await;
        assert_eq!(o.status, Some(200), "{path}: {o:?}");
        assert_eq!(o.failure, Some(Failure::Protocol), "{path}: {o:?}");
        assert_eq!(o.address, None);
        let detail = o.detail.unwrap_or_default();
        assert!(detail.starts_with("the service's answer holds no IP address: "), "{detail}");
    }
    let o = run(params(&server.url("/garbage"))).await;
    assert_eq!(o.raw.as_deref(), Some("<html><body>Hello \u{1b} world</body></html>"));
    assert!(o.detail.unwrap_or_default().contains(r"Hello \u{1b} world"), "control characters are escaped");
    assert_eq!(run(params(&server.url("/empty"))).await.raw, None);
}

#[tokio::test]
async fn an_error_status_is_a_protocol_failure_without_an_address() {
    let server = echo_services();
    let o = run(params(&server.url("/error"))).await;
    assert_eq!(o.status, Some(500));
    assert_eq!(o.failure, Some(Failure::Protocol), "{o:?}");
    assert_eq!(o.address, None, "an error page's address is not taken");
    assert_eq!(o.raw.as_deref(), Some("internal error for 203.0.113.9"));
    assert!(o.detail.unwrap_or_default().contains("HTTP 500"));
}

#[tokio::test]
async fn a_long_answer_keeps_only_the_start_as_evidence() {
    let body = format!("192.0.2.5 {}", "x".repeat(5000));
    let server = HttpServer::builder().status("/long", 200, &body).start();
    let o = run(params(&server.url("/long"))).await;
    assert_eq!(o.address, Some(ip("192.0.2.5")), "{o:?}");
    assert_eq!(o.raw.map(|r| r.chars().count()), Some(RAW_CHARS));
}

#[tokio::test]
async fn redirects_are_followed() {
    let server = echo_services();
    let o = run(params(&server.url("/moved"))).await;
    assert_eq!((o.status, o.address), (Some(200), Some(ip("203.0.113.7"))), "{o:?}");
}

#[tokio::test]
async fn through_the_proxy() {
    let server = echo_services();
    let proxy = HttpProxy::start();
    let url = server.url("/plain");
    let probe = EgressProbe::new(EgressParams { proxy: Some(proxy.url()), ..params(&url) });
    assert_eq!(probe.target(), format!("{url} via proxy"));
    let Ok(Observations::Egress(o)) = probe.run().await else { panic!("expected egress observations") };
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.address, Some(ip("203.0.113.7")));
    assert_eq!(proxy.targets(), vec![format!("GET {url}")]);

    // Without it, the proxy sees nothing.
    let o = run(params(&server.url("/ipify"))).await;
    assert_eq!(o.address, Some(ip("2001:db8::7")), "{o:?}");
    assert_eq!(proxy.handled(), 1);
}

#[tokio::test]
async fn https_with_a_ca_file_verify_and_the_proxy() {
    let ca = TestCa::new("gonogo egress CA");
    let server = HttpServer::builder().status("/", 200, "198.51.100.77").start_https(&ca.leaf(&["127.0.0.1"]));
    let url = server.url("/");
    let with_ca = EgressParams { ca_file: Some(ca.ca_file().to_path_buf()), ..params(&url) };

    let o = run(with_ca.clone()).await;
    assert_eq!((o.failure, o.address), (None, Some(ip("198.51.100.77"))), "{o:?}");

    // The system roots do not know the test CA …
    let o = run(params(&url)).await;
    assert_eq!(o.failure, Some(Failure::CertificateInvalid), "{o:?}");
    assert_eq!((o.status, o.address), (None, None));
    // … unless verification is off.
    let o = run(EgressParams { verify: false, ..params(&url) }).await;
    assert_eq!((o.failure, o.address), (None, Some(ip("198.51.100.77"))), "{o:?}");

    let proxy = HttpProxy::start();
    let o = run(EgressParams { proxy: Some(proxy.url()), ..with_ca }).await;
    assert_eq!((o.failure, o.address), (None, Some(ip("198.51.100.77"))), "{o:?}");
    assert_eq!(proxy.targets(), vec![format!("CONNECT {}", server.addr())]);
}

#[tokio::test]
async fn an_unreachable_service_is_an_observation() {
    let closed = tcp::closed_port();
    let o = run(params(&format!("http://{closed}/ip"))).await;
    assert_eq!(o.failure, Some(Failure::ConnectionRefused), "{o:?}");
    assert_eq!((o.status, o.address, o.raw), (None, None, None));

    let server = echo_services();
    let started = Instant::now();
    let o = run(EgressParams { timeout: SHORT, ..params(&server.url("/hang")) }).await;
    assert_eq!(o.failure, Some(Failure::Timeout), "{o:?}");
    assert_eq!(o.address, None);
    assert!(started.elapsed() < SHORT * 4, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn an_invalid_url_is_a_local_error() {
    let e = try_run(params("ftp://127.0.0.1/ip")).await.expect_err("not http(s)");
    assert!(matches!(e, ProbeError::Local(_)), "{e:?}");
}

#[test]
fn kind_target_and_budget() {
    let probe = EgressProbe::new(params("https://api.ipify.example/"));
    assert_eq!(probe.kind(), Kind::Egress);
    assert_eq!(Kind::Egress.as_str(), "egress");
    assert_eq!(probe.target(), "https://api.ipify.example/");
    assert!(probe.budget() >= TIMEOUT && probe.budget() <= TIMEOUT + Duration::from_secs(1));
    assert_eq!(probe.params().url, "https://api.ipify.example/");
}

#[test]
fn observations_serialise_with_their_kind() {
    let o = Observations::Egress(EgressObservations {
        status: Some(200),
        address: Some(ip("203.0.113.7")),
        raw: Some("203.0.113.7\n".into()),
        time: Some(Duration::from_millis(12)),
        failure: None,
        detail: None,
    });
    let json = serde_json::to_value(&o).expect("serialise");
    assert_eq!(json["kind"], "egress");
    assert_eq!(json["address"], "203.0.113.7");
    assert_eq!(json["time_ms"], 12.0);
    assert_eq!(o.failure(), None);
}

/// A "what is my address" service on `ip`: every request is answered `200` with the peer address it came from.
/// Stops when dropped.
struct WhoAmI {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for WhoAmI {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn who_am_i(ip: IpAddr) -> WhoAmI {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind the who-am-i service");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        while let Ok((mut stream, peer)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request head (bounded in size and time), then answer and close.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                let read_head = async {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return false,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    true
                };
                if !matches!(tokio::time::timeout(Duration::from_secs(5), read_head).await, Ok(true)) {
                    return;
                }
                let body = format!("{}\n", peer.ip());
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    WhoAmI { addr, task }
}

#[tokio::test]
async fn the_source_address_is_what_the_service_reports() {
    let service = who_am_i(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let url = format!("http://{}/", service.addr);
    let source = ip("127.0.0.2");
    let o = run(EgressParams { source: Some(source), ..params(&url) }).await;
    assert_eq!((o.failure, o.address), (None, Some(source)), "{o:?}");

    let o = run(params(&url)).await;
    assert_eq!((o.failure, o.address), (None, Some(ip("127.0.0.1"))), "{o:?}");
}

#[tokio::test]
async fn a_foreign_source_address_is_a_local_error() {
    let service = who_am_i(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let url = format!("http://{}/", service.addr);
    let outcome = try_run(EgressParams { source: Some(ip("192.0.2.1")), ..params(&url) }).await;
    let Err(ProbeError::Local(text)) = outcome else { panic!("expected a local error, got {outcome:?}") };
    assert!(text.contains("192.0.2.1"), "{text}");
}

#[tokio::test]
async fn a_pinned_address_is_used_instead_of_the_name() {
    // The service listens on 127.0.0.2 only; `localhost` resolves (from /etc/hosts) elsewhere.
    let service = who_am_i(ip("127.0.0.2")).await;
    let url = format!("http://localhost:{}/", service.addr.port());
    let o = run(EgressParams { pin: Some(ip("127.0.0.2")), ..params(&url) }).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert!(o.address.is_some_and(|a| a.is_loopback()), "{o:?}");

    let o = run(params(&url)).await;
    assert_eq!(o.failure, Some(Failure::ConnectionRefused), "without the pin, localhost is not 127.0.0.2: {o:?}");
}

/// Set in the child process that runs [`env_proxy_child`], with the URL it asks.
const ENV_CHILD_URL: &str = "GONOGO_TEST_EGRESS_URL";

#[tokio::test]
async fn proxy_from_env_follows_the_environment() {
    let server = echo_services();
    let proxy = HttpProxy::start();
    let url = server.url("/plain");
    let exe = std::env::current_exe().expect("path of this test binary");
    let mut command = tokio::process::Command::new(exe);
    command.args(["--exact", "egress::env_proxy_child", "--ignored", "--nocapture", "--test-threads=1"]);
    for var in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "http_proxy"] {
        command.env_remove(var);
    }
    command
        .env("HTTP_PROXY", proxy.url())
        .env(ENV_CHILD_URL, &url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the child test finished within a minute")
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child: {}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The child asked twice, with and without proxy_from_env: only the first went through the proxy.
    assert_eq!(proxy.targets(), vec![format!("GET {url}")]);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
#[ignore = "runs in a child process with HTTP_PROXY set, through `proxy_from_env_follows_the_environment`"]
async fn env_proxy_child() {
    let Ok(url) = std::env::var(ENV_CHILD_URL) else {
        eprintln!("SKIPPED: this test only runs in the child process its parent test starts");
        return;
    };
    for from_env in [true, false] {
        let o = run(EgressParams { proxy_from_env: from_env, ..params(&url) }).await;
        assert_eq!((o.failure, o.address), (None, Some(ip("203.0.113.7"))), "proxy_from_env={from_env}: {o:?}");
    }
}
