//! `gonogo serve` end to end: the real binary over its real HTTPS API, with tokens, a generated CA, signals.

use std::time::Duration;

use gonogo_testkit::tcp::{hanging_listener, open_listener};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::daemon::{Daemon, NOC_TOKEN, Pki, VIEWER_TOKEN, serve_config};
use crate::support::{gonogo, sample, stdout};

/// A plan with a fast passing phase (`pre-migration`: TCP to a local listener) and a slow one (`regression`:
/// HTTP to a listener that never answers, 20 s timeout) for tests that need a run in progress.
fn plan(open: std::net::SocketAddr, hang: std::net::SocketAddr) -> String {
    format!(
        r#"
[[check]]
name = "app-port"
kind = "tcp"
target = "{open}"
phases = ["pre-migration"]

[[check]]
name = "slow-app"
kind = "http"
url = "http://{hang}/"
timeout = "20s"
phases = ["regression"]
"#
    )
}

struct Setup {
    pki: Pki,
    dir: tempfile::TempDir,
    daemon: Daemon,
    client: reqwest::Client,
    _open: gonogo_testkit::tcp::Listener,
    _hang: gonogo_testkit::tcp::Listener,
}

fn setup(client_ca: bool) -> Setup {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (open, open_guard) = open_listener();
    let (hang, hang_guard) = hanging_listener();
    let config = format!("{}{}", serve_config(dir.path(), &pki, client_ca), plan(open, hang));
    let daemon = Daemon::start(dir.path(), &config).unwrap_or_else(|e| panic!("{e}"));
    let client = pki.client(client_ca);
    Setup { pki, dir, daemon, client, _open: open_guard, _hang: hang_guard }
}

async fn post(s: &Setup, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let resp = s.client.post(s.daemon.url(path)).bearer_auth(token).json(&body).send().await.expect("POST");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(s: &Setup, path: &str, token: &str) -> (StatusCode, Value) {
    let resp = s.client.get(s.daemon.url(path)).bearer_auth(token).send().await.expect("GET");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_long_poll_show_and_metrics() {
    let s = setup(false);
    let (status, body) =
        post(&s, "/api/v1/runs", NOC_TOKEN, json!({"phase": "pre-migration", "change_ref": "CHG0012345"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let (status, run) = get(&s, &format!("/api/v1/runs/{id}?wait=30s"), VIEWER_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(run["verdict"], "GO", "{run}");
    assert_eq!(run["change_ref"], "CHG0012345");
    assert_eq!(run["trigger"], json!({"source": "api", "by": "noc"}));
    assert_eq!(run["checks"][0]["name"], "app-port");
    assert_eq!(run["checks"][0]["outcome"], "pass");

    // The same result from the store, offline, through the CLI.
    let out = gonogo(&s.daemon.config_path, &["show", &id, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(shown, run, "gonogo show and the API disagree");
    let out = gonogo(&s.daemon.config_path, &["runs"]);
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));

    // The run list.
    let (_, list) = get(&s, "/api/v1/runs?phase=pre-migration&limit=5", VIEWER_TOKEN).await;
    assert_eq!(list["runs"][0]["id"], id.as_str());
    assert_eq!(list["runs"][0]["verdict"], "GO");

    // Metrics, read with a token and parsed.
    let resp = s.client.get(s.daemon.url("/metrics")).bearer_auth(VIEWER_TOKEN).send().await.expect("metrics");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("text");
    assert_eq!(sample(&text, "gonogo_phase_verdict", &[("phase", "pre-migration"), ("verdict", "GO")]), Some(1.0));
    assert_eq!(sample(&text, "gonogo_phase_verdict", &[("phase", "pre-migration"), ("verdict", "NO-GO")]), Some(0.0));
    assert_eq!(sample(&text, "gonogo_check_success", &[("phase", "pre-migration"), ("check", "app-port")]), Some(1.0));
    assert_eq!(sample(&text, "gonogo_config_last_reload_successful", &[]), Some(1.0));
    assert!(!text.contains(&id), "a run id leaked into a label");
    crate::support::promtool_check(&text, s.dir.path(), "metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles() {
    let s = setup(false);
    let resp = s.client.get(s.daemon.url("/healthz")).send().await.expect("healthz");
    assert_eq!(resp.status(), StatusCode::OK, "healthz needs no token");
    let resp = s.client.get(s.daemon.url("/api/v1/plan")).send().await.expect("plan");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    let body: Value = resp.json().await.expect("JSON error");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("bearer token")), "{body}");
    assert_eq!(get(&s, "/api/v1/plan", "not-a-token").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&s, "/metrics", "not-a-token").await.0, StatusCode::UNAUTHORIZED);
    let (status, plan) = get(&s, "/api/v1/plan", VIEWER_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    assert!(plan.to_string().contains("app-port"));
    let (status, body) = post(&s, "/api/v1/runs", VIEWER_TOKEN, json!({"phase": "pre-migration"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("trigger")), "{body}");
    assert_eq!(post(&s, "/api/v1/reload", VIEWER_TOKEN, json!({})).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_at_the_handshake_when_client_ca_is_set() {
    let s = setup(true);
    let without = s.pki.client(false);
    let err = without.get(s.daemon.url("/healthz")).send().await;
    assert!(err.is_err(), "a client without a certificate must be refused at the handshake");
    let (status, _) = get(&s, "/api/v1/plan", VIEWER_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "the client with a certificate is served");
}

#[test]
fn plain_http_on_a_non_loopback_address_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = format!(
        "[api]\nlisten = \"0.0.0.0:0\"\n[storage]\nstate_dir = \"{}/state\"\n{}",
        dir.path().display(),
        "[[check]]\nname = \"p\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"regression\"]\n"
    );
    let err = Daemon::start(dir.path(), &config).err().expect("must not start");
    assert!(err.contains("insecure = true") && err.contains("0.0.0.0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_right_4xx_and_the_server_keeps_serving() {
    let s = setup(false);
    let url = s.daemon.url("/api/v1/runs");
    let send = |body: String, content_type: &'static str| {
        s.client.post(&url).bearer_auth(NOC_TOKEN).header("content-type", content_type).body(body).send()
    };
    let cases = [
        (send("{not json".into(), "application/json").await.expect("send"), StatusCode::BAD_REQUEST),
        (
            send(r#"{"phase": "no-such-phase"}"#.into(), "application/json").await.expect("send"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            send(r#"{"phase": "pre-migration", "target": "10.0.0.1"}"#.into(), "application/json").await.expect("send"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            // The server answers 413 without reading the body and closes the connection: do not pool it.
            s.client
                .post(&url)
                .bearer_auth(NOC_TOKEN)
                .header("content-type", "application/json")
                .header("connection", "close")
                .body(format!(r#"{{"phase": "{}"}}"#, "x".repeat(64 * 1024)))
                .send()
                .await
                .expect("send"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            send(r#"{"phase": "pre-migration"}"#.into(), "text/plain").await.expect("send"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (i, (resp, want)) in cases.into_iter().enumerate() {
        assert_eq!(resp.status(), want, "case {i}");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(body["error"].is_string(), "case {i}: errors are JSON {{\"error\": …}}: {body}");
    }
    let (status, body) = get(&s, "/api/v1/runs/no-such-run", VIEWER_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(get(&s, "/api/v1/runs/x?wait=forever", VIEWER_TOKEN).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(get(&s, "/api/v1/nothing-here", VIEWER_TOKEN).await.0, StatusCode::NOT_FOUND);
    // Still serving.
    let (status, _) = post(&s, "/api/v1/runs", NOC_TOKEN, json!({"phase": "pre-migration"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_triggers_start_one_run_and_idempotency_keys_return_it() {
    let s = setup(false);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let req =
            s.client.post(s.daemon.url("/api/v1/runs")).bearer_auth(NOC_TOKEN).json(&json!({"phase": "regression"}));
        tasks.push(tokio::spawn(async move {
            let resp = req.send().await.expect("POST");
            (resp.status(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut created = Vec::new();
    let mut conflicts = Vec::new();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        match status {
            StatusCode::ACCEPTED => created.push(body["id"].as_str().unwrap_or_default().to_owned()),
            StatusCode::CONFLICT => conflicts.push(body["running"].as_str().unwrap_or_default().to_owned()),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one run starts");
    assert_eq!(conflicts.len(), 49);
    assert!(conflicts.iter().all(|id| id == &created[0]), "409s name the running run");
    let (_, list) = get(&s, "/api/v1/runs?phase=regression", VIEWER_TOKEN).await;
    assert_eq!(list["runs"].as_array().map(Vec::len), Some(1));
    // Cancel it; then idempotent retries of a new trigger return one id.
    let (status, _) = post(&s, &format!("/api/v1/runs/{}/cancel", created[0]), NOC_TOKEN, json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, run) = get(&s, &format!("/api/v1/runs/{}?wait=10s", created[0]), VIEWER_TOKEN).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(
        post(&s, &format!("/api/v1/runs/{}/cancel", created[0]), NOC_TOKEN, json!({})).await.0,
        StatusCode::CONFLICT
    );
    let mut ids = Vec::new();
    for _ in 0..5 {
        let resp = s
            .client
            .post(s.daemon.url("/api/v1/runs"))
            .bearer_auth(NOC_TOKEN)
            .header("Idempotency-Key", "change-CHG1-attempt")
            .json(&json!({"phase": "pre-migration"}))
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let body: Value = resp.json().await.expect("JSON");
        ids.push(body["id"].as_str().unwrap_or_default().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one id for one Idempotency-Key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_run_then_restart_reads_interrupted_and_keeps_finished_runs() {
    let mut s = setup(false);
    let (_, done) = post(&s, "/api/v1/runs", NOC_TOKEN, json!({"phase": "pre-migration"})).await;
    let done_id = done["id"].as_str().expect("id").to_owned();
    let (_, finished) = get(&s, &format!("/api/v1/runs/{done_id}?wait=30s"), VIEWER_TOKEN).await;
    assert_eq!(finished["status"], "finished");
    let (_, running) = post(&s, "/api/v1/runs", NOC_TOKEN, json!({"phase": "regression"})).await;
    let running_id = running["id"].as_str().expect("id").to_owned();
    // Wait (bounded) until it is recorded as running, then kill -9.
    for _ in 0..100 {
        if get(&s, &format!("/api/v1/runs/{running_id}"), VIEWER_TOKEN).await.1["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.daemon.signal("KILL");
    assert_eq!(s.daemon.wait_exit(Duration::from_secs(10)), None, "killed by a signal: no exit code");
    s.daemon = Daemon::start_existing(s.dir.path(), &s.daemon.config_path.clone()).unwrap_or_else(|e| panic!("{e}"));
    let (_, run) = get(&s, &format!("/api/v1/runs/{running_id}"), VIEWER_TOKEN).await;
    assert_eq!(run["status"], "interrupted", "{run}");
    assert!(run["verdict"].is_null());
    let (_, again) = get(&s, &format!("/api/v1/runs/{done_id}"), VIEWER_TOKEN).await;
    assert_eq!(again, finished, "a finished run is intact after the crash");
    let (_, list) = get(&s, "/api/v1/runs", VIEWER_TOKEN).await;
    let ids: Vec<&str> = list["runs"].as_array().into_iter().flatten().filter_map(|r| r["id"].as_str()).collect();
    assert!(ids.contains(&done_id.as_str()) && ids.contains(&running_id.as_str()), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_config_keeps_the_old_plan_then_a_fixed_one_loads() {
    let mut s = setup(false);
    let good = std::fs::read_to_string(&s.daemon.config_path).expect("config");
    let metric = |text: &str| sample(text, "gonogo_config_last_reload_successful", &[]);
    let scrape = |s: &Setup| {
        let req = s.client.get(s.daemon.url("/metrics")).bearer_auth(VIEWER_TOKEN);
        async move { req.send().await.expect("metrics").text().await.expect("text") }
    };
    std::fs::write(&s.daemon.config_path, format!("{good}\n[[check]]\nname = \"broken\"\nkind = \"nope\"\n"))
        .expect("write");
    s.daemon.signal("HUP");
    let mut reloaded = None;
    for _ in 0..100 {
        reloaded = metric(&scrape(&s).await);
        if reloaded == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reloaded, Some(0.0), "a refused reload sets the metric to 0");
    assert!(s.daemon.log().contains("config reload refused"), "{}", s.daemon.log());
    let (_, plan) = get(&s, "/api/v1/plan", VIEWER_TOKEN).await;
    assert!(plan.to_string().contains("app-port") && !plan.to_string().contains("broken"), "old plan stays");
    let (status, _) = post(&s, "/api/v1/runs", NOC_TOKEN, json!({"phase": "pre-migration"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the old plan still runs");

    // Fixed: a new check in a new phase, through SIGHUP.
    std::fs::write(
        &s.daemon.config_path,
        format!("{good}\n[[check]]\nname = \"added\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"commissioning\"]\n"),
    )
    .expect("write");
    s.daemon.signal("HUP");
    for _ in 0..100 {
        if metric(&scrape(&s).await) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&scrape(&s).await), Some(1.0));
    let (_, plan) = get(&s, "/api/v1/plan", VIEWER_TOKEN).await;
    assert!(plan.to_string().contains("added"), "{plan}");
    // The API reload refuses a broken file with its problems, and keeps the plan.
    std::fs::write(&s.daemon.config_path, "[[check]]\nname = 1\n").expect("write");
    let (status, body) = post(&s, "/api/v1/reload", NOC_TOKEN, json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let problems = body["problems"].as_array().cloned().unwrap_or_default();
    assert!(problems.iter().any(|p| p.as_str().is_some_and(|p| p.contains(":2:8: check[0].name"))), "{body}");

    // SIGTERM: clean exit 0.
    s.daemon.signal("TERM");
    assert_eq!(s.daemon.wait_exit(Duration::from_secs(20)), Some(0), "{}", s.daemon.log());
}

#[test]
fn systemd_notifications_ready_watchdog_stopping() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (open, _open) = open_listener();
    let (hang, _hang) = hanging_listener();
    let config_path = dir.path().join("gonogo.toml");
    std::fs::write(&config_path, format!("{}{}", serve_config(dir.path(), &pki, false), plan(open, hang)))
        .expect("write");
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let env = [("NOTIFY_SOCKET", socket_path.display().to_string()), ("WATCHDOG_USEC", "200000".to_owned())];
    let mut daemon = Daemon::start_with_env(dir.path(), &config_path, &env).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    let collect = |seen: &mut Vec<String>, buf: &mut [u8], until: &str| {
        for _ in 0..50 {
            if let Ok(n) = socket.recv(buf) {
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            if seen.iter().any(|m| m == until) {
                return;
            }
        }
    };
    collect(&mut seen, &mut buf, "READY=1");
    collect(&mut seen, &mut buf, "WATCHDOG=1");
    daemon.signal("TERM");
    collect(&mut seen, &mut buf, "STOPPING=1");
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
    for want in ["READY=1", "WATCHDOG=1", "STOPPING=1"] {
        assert!(seen.iter().any(|m| m == want), "no {want} in {seen:?}");
    }
}

/// `[phase.X] every`: the phase runs by itself (the shortest allowed period is 10 s, so this test waits for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_phases_run_by_themselves() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (open, _open) = open_listener();
    let (hang, _hang) = hanging_listener();
    let config = format!(
        "{}{}\n[phase.pre-migration]\nevery = \"10s\"\n",
        serve_config(dir.path(), &pki, false),
        plan(open, hang)
    );
    let daemon = Daemon::start(dir.path(), &config).unwrap_or_else(|e| panic!("{e}"));
    let client = pki.client(false);
    let mut found = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let resp = client.get(daemon.url("/api/v1/runs?phase=pre-migration")).bearer_auth(VIEWER_TOKEN).send().await;
        let list: Value = match resp {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => continue,
        };
        if let Some(run) = list["runs"].as_array().and_then(|r| r.first()).cloned() {
            found = Some(run);
            break;
        }
    }
    let run = found.expect("a scheduled run within 20 s");
    assert_eq!(run["trigger"]["source"], "schedule", "{run}");
    // The schedule is exported, for alert rules; phases without one have no series.
    let resp = client.get(daemon.url("/metrics")).bearer_auth(VIEWER_TOKEN).send().await.expect("GET /metrics");
    let text = resp.text().await.expect("metrics text");
    assert_eq!(sample(&text, "gonogo_phase_schedule_seconds", &[("phase", "pre-migration")]), Some(10.0), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("gonogo_phase_schedule_seconds{")).count(), 1, "{text}");
}

/// The optional `[metrics]` listener: plain HTTP, `/metrics` only, no token (for a Prometheus on the same host).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_serves_metrics_without_a_token_and_nothing_else() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (open, _open) = open_listener();
    let (hang, _hang) = hanging_listener();
    let config =
        format!("{}\n[metrics]\nlisten = \"127.0.0.1:0\"\n{}", serve_config(dir.path(), &pki, false), plan(open, hang));
    let _daemon = Daemon::start(dir.path(), &config).unwrap_or_else(|e| panic!("{e}"));
    let addr = std::fs::read_to_string(dir.path().join("state/metrics.addr")).expect("metrics.addr");
    let plain = pki.client(false);
    let resp = plain.get(format!("http://{}/metrics", addr.trim())).send().await.expect("GET /metrics");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = resp.text().await.expect("text");
    assert!(sample(&text, "gonogo_build_info", &[]).is_some(), "{text}");
    let resp = plain.get(format!("http://{}/api/v1/plan", addr.trim())).send().await.expect("GET");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "the metrics listener serves no API");
}
