//! `GET /probe?check=NAME` on a real `gonogo serve`: blackbox_exporter-compatible metrics for tcp (open and
//! closed), http, dns, tls (earliest expiry of leaf and of CA) and icmp against loopback targets; auth, unknown
//! check, `target=` refused, missing `check`; a slow probe does not hold up another; `promtool check metrics`.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use gonogo_testkit::certs::TestCa;
use gonogo_testkit::dns::DnsServer;
use gonogo_testkit::http::HttpServer;
use gonogo_testkit::tcp::{closed_port, hanging_listener, open_listener};
use reqwest::StatusCode;
use serde_json::Value;

use crate::daemon::{Daemon, NOC_TOKEN, Pki, VIEWER_TOKEN, serve_config};
use crate::support::sample;

const DAY: u64 = 86_400;

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

struct Targets {
    open: SocketAddr,
    closed: SocketAddr,
    hang: SocketAddr,
    http: HttpServer,
    dns: DnsServer,
    tls_ca: TestCa,
    tls_leaf_not_after: i64,
    tls: HttpServer,
    short_ca: TestCa,
    short_ca_not_after: i64,
    tls_short_ca: HttpServer,
    _guards: Vec<gonogo_testkit::tcp::Listener>,
}

async fn targets() -> Targets {
    let (open, open_guard) = open_listener();
    let (hang, hang_guard) = hanging_listener();
    let http = HttpServer::builder().status("/health", 200, "all good").start();
    let dns = DnsServer::builder().a("app.test.", "10.0.0.1").a("app.test.", "10.0.0.2").start().await;
    // The leaf (30 days) expires before its CA (ten years).
    let tls_ca = TestCa::new("probe test CA");
    let leaf = tls_ca.leaf(&["127.0.0.1"]);
    let tls_leaf_not_after = leaf.not_after();
    let tls = HttpServer::builder().status("/", 200, "ok").start_https(&leaf);
    // The CA (5 days) expires before its leaf (30 days).
    let now = SystemTime::now();
    let ca_end = now + Duration::from_secs(5 * DAY);
    let short_ca = TestCa::valid_between("short CA", now - Duration::from_secs(DAY), ca_end);
    let tls_short_ca = HttpServer::builder().status("/", 200, "ok").start_https(&short_ca.leaf(&["127.0.0.1"]));
    Targets {
        open,
        closed: closed_port(),
        hang,
        http,
        dns,
        tls_ca,
        tls_leaf_not_after,
        tls,
        short_ca,
        short_ca_not_after: unix(ca_end),
        tls_short_ca,
        _guards: vec![open_guard, hang_guard],
    }
}

fn checks(t: &Targets) -> String {
    format!(
        r#"
[[check]]
name = "app-port"
kind = "tcp"
target = "{open}"
phases = ["pre-migration"]

[[check]]
name = "closed-port"
kind = "tcp"
target = "{closed}"
timeout = "2s"
phases = ["pre-migration"]

[[check]]
name = "health"
kind = "http"
url = "{health}"
phases = ["post-migration"]

[[check]]
name = "slow-app"
kind = "http"
url = "http://{hang}/"
timeout = "4s"
phases = ["regression"]

[[check]]
name = "app-dns"
kind = "dns"
servers = ["{dns}"]
query = "app.test"
timeout = "2s"
phases = ["pre-migration"]

[[check]]
name = "app-tls"
kind = "tls"
target = "{tls}"
ca_file = "{tls_ca}"
timeout = "2s"
phases = ["pre-migration"]

[[check]]
name = "short-ca-tls"
kind = "tls"
target = "{tls_short}"
ca_file = "{short_ca}"
timeout = "2s"
phases = ["pre-migration"]

[[check]]
name = "loopback-ping"
kind = "icmp"
target = "127.0.0.1"
count = 3
interval = "10ms"
timeout = "1s"
phases = ["pre-migration"]
"#,
        open = t.open,
        closed = t.closed,
        health = t.http.url("/health"),
        hang = t.hang,
        dns = t.dns.addr(),
        tls = t.tls.addr(),
        tls_ca = t.tls_ca.ca_file().display(),
        tls_short = t.tls_short_ca.addr(),
        short_ca = t.short_ca.ca_file().display(),
    )
}

struct Setup {
    dir: tempfile::TempDir,
    daemon: Daemon,
    client: reqwest::Client,
    targets: Targets,
}

async fn setup() -> Setup {
    setup_with(|targets, _| checks(targets)).await
}

/// A daemon whose checks `checks` writes, given the targets and the daemon's directory (for files they name).
async fn setup_with(checks: impl FnOnce(&Targets, &std::path::Path) -> String) -> Setup {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let targets = targets().await;
    let config = format!("{}{}", serve_config(dir.path(), &pki, false), checks(&targets, dir.path()));
    let daemon = Daemon::start(dir.path(), &config).unwrap_or_else(|e| panic!("{e}"));
    let client = pki.client(false);
    Setup { dir, daemon, client, targets }
}

/// `GET /probe?check=NAME` with the viewer (read-only) token: status, content type, body.
async fn probe(s: &Setup, check: &str) -> (StatusCode, String, String) {
    let resp = s
        .client
        .get(s.daemon.url(&format!("/probe?check={check}")))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .expect("GET /probe");
    let status = resp.status();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, ct, resp.text().await.unwrap_or_default())
}

/// A successful probe's text, checked by promtool.
async fn metrics(s: &Setup, check: &str) -> String {
    let (status, ct, text) = probe(s, check).await;
    assert_eq!(status, StatusCode::OK, "{check}: {text}");
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{check}: content type {ct}");
    assert!(text.contains("# TYPE probe_success gauge"), "{check}: {text}");
    crate::support::promtool_check(&text, s.dir.path(), &format!("probe-{check}"));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_answers_blackbox_metrics_for_every_kind() {
    let s = setup().await;

    let text = metrics(&s, "app-port").await;
    assert_eq!(sample(&text, "probe_success", &[]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "gonogo_probe_outcome", &[("outcome", "pass")]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "probe_ip_protocol", &[]), Some(4.0), "{text}");
    assert!(sample(&text, "probe_duration_seconds", &[]).is_some_and(|d| d > 0.0 && d < 2.0), "{text}");

    let text = metrics(&s, "closed-port").await;
    assert_eq!(sample(&text, "probe_success", &[]), Some(0.0), "{text}");
    assert_eq!(sample(&text, "gonogo_probe_outcome", &[("outcome", "fail")]), Some(1.0), "{text}");

    // A check of another phase: /probe runs any configured check.
    let text = metrics(&s, "health").await;
    assert_eq!(sample(&text, "probe_success", &[]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "probe_http_status_code", &[]), Some(200.0), "{text}");
    assert!(sample(&text, "probe_http_duration_seconds", &[("phase", "processing")]).is_some_and(|d| d > 0.0));
    assert!(sample(&text, "probe_http_duration_seconds", &[("phase", "transfer")]).is_some_and(|d| d >= 0.0));
    assert_eq!(sample(&text, "probe_http_content_length", &[]), Some("all good".len() as f64), "{text}");
    assert_eq!(sample(&text, "probe_http_redirects", &[]), Some(0.0), "{text}");
    assert_eq!(sample(&text, "probe_http_ssl", &[]), Some(0.0), "{text}");

    let text = metrics(&s, "app-dns").await;
    assert_eq!(sample(&text, "probe_success", &[]), Some(1.0), "{text}");
    assert!(sample(&text, "probe_dns_lookup_time_seconds", &[]).is_some_and(|d| d > 0.0 && d < 2.0), "{text}");
    assert_eq!(sample(&text, "probe_dns_answer_rrs", &[]), Some(2.0), "{text}");

    let text = metrics(&s, "app-tls").await;
    assert_eq!(sample(&text, "probe_success", &[]), Some(1.0), "{text}");
    let leaf_end = s.targets.tls_leaf_not_after as f64;
    assert_eq!(sample(&text, "probe_ssl_earliest_cert_expiry", &[]), Some(leaf_end), "{text}");
    assert_eq!(sample(&text, "probe_ssl_last_chain_expiry_timestamp_seconds", &[]), Some(leaf_end), "{text}");
    assert_eq!(sample(&text, "probe_tls_version_info", &[("version", "TLS 1.3")]), Some(1.0), "{text}");

    // The CA expires first: the earliest expiry is the CA's, not the leaf's.
    let text = metrics(&s, "short-ca-tls").await;
    let earliest = sample(&text, "probe_ssl_earliest_cert_expiry", &[]).expect("earliest expiry");
    assert!((earliest - s.targets.short_ca_not_after as f64).abs() <= 1.0, "{earliest} vs CA: {text}");

    // ICMP needs CAP_NET_RAW or ping_group_range; without either the check is an `error`, still answered.
    let text = metrics(&s, "loopback-ping").await;
    if sample(&text, "probe_success", &[]) == Some(1.0) {
        assert!(sample(&text, "probe_icmp_duration_seconds", &[("phase", "rtt")]).is_some_and(|d| d > 0.0), "{text}");
        assert_eq!(sample(&text, "probe_ip_protocol", &[]), Some(4.0), "{text}");
        assert_eq!(sample(&text, "gonogo_probe_icmp_loss_ratio", &[]), Some(0.0), "{text}");
    } else {
        assert_eq!(sample(&text, "gonogo_probe_outcome", &[("outcome", "error")]), Some(1.0), "{text}");
        eprintln!("SKIPPED icmp /probe metrics: no ICMP privilege here: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_refuses_what_it_must() {
    let s = setup().await;
    // No token, a bad token: 401.
    let resp = s.client.get(s.daemon.url("/probe?check=app-port")).send().await.expect("GET");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp =
        s.client.get(s.daemon.url("/probe?check=app-port")).bearer_auth("not-a-token").send().await.expect("GET");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The trigger token has the read role too.
    let resp = s.client.get(s.daemon.url("/probe?check=app-port")).bearer_auth(NOC_TOKEN).send().await.expect("GET");
    assert_eq!(resp.status(), StatusCode::OK);

    let json = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let (status, _, text) = probe(&s, "no-such-check").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(json(&text)["error"].as_str().is_some_and(|e| e.contains("no-such-check")), "{text}");

    for path in [format!("/probe?check=app-port&target={}", s.targets.open), "/probe?target=10.0.0.1".to_owned()] {
        let resp = s.client.get(s.daemon.url(&path)).bearer_auth(VIEWER_TOKEN).send().await.expect("GET");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(body["error"].as_str().is_some_and(|e| e.contains("targets come from the config")), "{body}");
    }
    for path in ["/probe", "/probe?check="] {
        let resp = s.client.get(s.daemon.url(path)).bearer_auth(VIEWER_TOKEN).send().await.expect("GET");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(body["error"].as_str().is_some_and(|e| e.contains("missing check")), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_probe_does_not_hold_up_another() {
    let s = setup().await;
    let started = Instant::now();
    let slow = probe(&s, "slow-app");
    let fast = async {
        // Let the slow probe start first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        let r = probe(&s, "app-port").await;
        (r, t.elapsed())
    };
    let ((slow_status, _, slow_text), ((fast_status, _, fast_text), fast_took)) = tokio::join!(slow, fast);
    assert_eq!(fast_status, StatusCode::OK);
    assert_eq!(sample(&fast_text, "probe_success", &[]), Some(1.0), "{fast_text}");
    assert!(fast_took < Duration::from_secs(2), "the fast probe took {fast_took:?} while the slow one ran");
    assert_eq!(slow_status, StatusCode::OK);
    assert_eq!(sample(&slow_text, "probe_success", &[]), Some(0.0), "{slow_text}");
    assert!(started.elapsed() < Duration::from_secs(15), "the slow probe was not cut off near its 4s timeout");
}

/// Probes are built once per config and reused, but a file a check names is read again when it changes: a CA
/// file replaced on disk takes effect at the next probe, without a reload, for the http and the tls probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_ca_file_takes_effect_without_a_reload() {
    let s = setup_with(|t, dir| {
        let ca = dir.join("site-ca.pem");
        // At first the file holds a CA that did not sign the server's certificate.
        std::fs::write(&ca, t.short_ca.cert_pem()).expect("write CA file");
        format!(
            r#"
[[check]]
name = "app-https"
kind = "http"
url = "https://{tls}/"
ca_file = "{ca}"
timeout = "2s"
phases = ["pre-migration"]

[[check]]
name = "app-tls"
kind = "tls"
target = "{tls}"
ca_file = "{ca}"
timeout = "2s"
phases = ["pre-migration"]
"#,
            tls = t.tls.addr(),
            ca = ca.display(),
        )
    })
    .await;
    let ca_file = s.dir.path().join("site-ca.pem");

    for check in ["app-https", "app-tls"] {
        // Twice: the second answer comes from the probe built for the first.
        for _ in 0..2 {
            let text = metrics(&s, check).await;
            assert_eq!(sample(&text, "probe_success", &[]), Some(0.0), "{check} with the wrong CA: {text}");
        }
    }
    // The operator puts the right CA in place (a new file renamed over the old, as editors and config
    // management do), and the next probes use it.
    let staged = s.dir.path().join("site-ca.pem.new");
    std::fs::write(&staged, s.targets.tls_ca.cert_pem()).expect("write CA file");
    std::fs::rename(&staged, &ca_file).expect("replace CA file");
    for check in ["app-https", "app-tls"] {
        let text = metrics(&s, check).await;
        assert_eq!(sample(&text, "probe_success", &[]), Some(1.0), "{check} with the right CA: {text}");
    }
}
