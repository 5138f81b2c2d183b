//! Reports end to end: a phase run through the real binary and recorded in the store, `gonogo report` in every
//! format, the HTML opened in headless Chromium (the verdict and every check row must render; a screenshot is
//! kept under target/test-artifacts/), and the API's report endpoint and status page over HTTPS with tokens.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gonogo_testkit::http::HttpServer;
use gonogo_testkit::tcp::{closed_port, open_listener};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::daemon::{Daemon, NOC_TOKEN, Pki, VIEWER_TOKEN, serve_config};
use crate::support::{gonogo, stderr, stdout, write_config};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Check names of [`plan`], in config order.
const CHECKS: [&str; 5] = ["gateway-ping", "app-port", "legacy-port", "portal", "intranet"];

/// A plan (the same checks in pre-migration and post-migration) that ends NO-GO: ICMP and TCP that pass, a
/// required TCP check to a closed port, an HTTP check that passes and an advisory one that gets a 503.
fn plan(open: std::net::SocketAddr, closed: std::net::SocketAddr, web: &HttpServer) -> String {
    format!(
        r#"
[site]
name = "Leeds Test Surgery"
ods_code = "B86001"

[[check]]
name = "gateway-ping"
kind = "icmp"
target = "127.0.0.1"
count = 10
interval = "10ms"
timeout = "2s"
phases = ["pre-migration", "post-migration"]
expect = {{ loss_max = 0.0 }}

[[check]]
name = "app-port"
kind = "tcp"
target = "{open}"
count = 5
timeout = "2s"
phases = ["pre-migration", "post-migration"]

[[check]]
name = "legacy-port"
kind = "tcp"
target = "{closed}"
timeout = "2s"
phases = ["pre-migration", "post-migration"]

[[check]]
name = "portal"
kind = "http"
url = "{portal}"
timeout = "2s"
phases = ["pre-migration", "post-migration"]

[[check]]
name = "intranet"
kind = "http"
url = "{intranet}"
required = false
timeout = "2s"
phases = ["pre-migration", "post-migration"]
"#,
        portal = web.url("/health"),
        intranet = web.url("/down"),
    )
}

/// `target/test-artifacts/`, created if needed.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// Run headless Chromium on `args` plus the page, at most `limit`; its stdout, or why it failed. The process
/// is killed by its PID when it overruns.
fn chromium(args: &[String], page: &Path, limit: Duration) -> Result<String, String> {
    let profile = tempfile::tempdir().expect("profile dir");
    let out_path = profile.path().join("stdout");
    let err_path = profile.path().join("stderr");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .map_err(|e| format!("cannot start {CHROMIUM}: {e}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("chromium did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        return Err(format!(
            "chromium exited with {status}: {}",
            err.lines().rev().take(15).collect::<Vec<_>>().join("\n")
        ));
    }
    Ok(out)
}

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

/// Run `phase` through the binary; the run id. The run must be NO-GO with these outcomes, in [`CHECKS`] order.
fn recorded_run(config: &Path, phase: &str, outcomes: [&str; 5]) -> String {
    let out = gonogo(config, &["run", phase, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "expected NO-GO: {}{}", stdout(&out), stderr(&out));
    let run: Value = serde_json::from_slice(&out.stdout).expect("run JSON");
    assert_eq!(run["verdict"], "NO-GO");
    let got: Vec<&str> =
        run["checks"].as_array().expect("checks").iter().filter_map(|c| c["outcome"].as_str()).collect();
    assert_eq!(got, outcomes, "{run}");
    run["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_in_headless_chromium() {
    let (open, open_guard) = open_listener();
    let web = HttpServer::builder().status("/health", 200, "ok").status("/down", 503, "down").start();
    let cfg = write_config(&plan(open, closed_port(), &web));
    // The baseline, then the change: app-port stops listening.
    recorded_run(&cfg.path, "pre-migration", ["pass", "pass", "fail", "pass", "fail"]);
    drop(open_guard);
    let id = recorded_run(&cfg.path, "post-migration", ["pass", "fail", "fail", "pass", "fail"]);

    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("report.html");
    let out = gonogo(&cfg.path, &["report", &id, "--format", "html", "--out", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&file.display().to_string()), "{}", stderr(&out));
    let html = std::fs::read_to_string(&file).expect("report written");
    assert!(html.contains("data-verdict=\"NO-GO\""));
    assert!(html.contains("Leeds Test Surgery"));
    assert!(html.contains("<section id=\"comparison\">"), "post-migration is compared with pre-migration");
    let artifacts = artifacts_dir();
    std::fs::copy(&file, artifacts.join("report.html")).expect("keep the HTML");

    if !Path::new(CHROMIUM).exists() {
        eprintln!("SKIPPED: {CHROMIUM} is not installed (apt-get install chromium); the HTML was not rendered");
        return;
    }
    // The DOM Chromium built from the file: the verdict banner and one row per check.
    let dom = chromium(&["--dump-dom".to_owned()], &file, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    assert!(dom.contains("class=\"verdict verdict-nogo\" data-verdict=\"NO-GO\""), "verdict banner missing: {dom}");
    assert!(dom.contains("<div class=\"word\">NO-GO</div>"));
    for name in CHECKS {
        assert!(dom.contains(&format!("data-check=\"{name}\"")), "row of {name} missing");
    }
    assert_eq!(dom.matches("<tr class=\"check ").count(), CHECKS.len(), "one row per check");
    assert!(dom.contains("data-check=\"legacy-port\" data-outcome=\"fail\""));
    // The comparison: what the change broke versus what was already broken.
    assert!(dom.contains("data-compare=\"app-port\" data-status=\"regression\""), "{dom}");
    assert!(dom.contains("data-compare=\"legacy-port\" data-status=\"pre-existing\""));
    assert!(dom.contains("data-compare=\"portal\" data-status=\"ok\""));
    assert_eq!(dom.matches("<svg class=\"rtt\"").count(), 3, "a chart per ICMP and TCP check");
    assert!(dom.contains("<code class=\"sha256\">"));

    // A screenshot, kept as a test artifact.
    let png = artifacts.join("report.png");
    let _ = std::fs::remove_file(&png);
    chromium(
        &[format!("--screenshot={}", png.display()), "--window-size=1200,2000".to_owned()],
        &file,
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(png_size(&bytes), Some((1200, 2000)), "not a 1200×2000 PNG");
    assert!(bytes.len() > 20_000, "a {}-byte screenshot is too small to show the report", bytes.len());
    eprintln!("screenshot of the report: {}", png.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_report_formats_and_errors() {
    let (open, _open) = open_listener();
    let web = HttpServer::builder().status("/health", 200, "ok").status("/down", 503, "down").start();
    let cfg = write_config(&plan(open, closed_port(), &web));
    let id = recorded_run(&cfg.path, "post-migration", ["pass", "pass", "fail", "pass", "fail"]);

    // CSV: a readiness sheet, one row per check, Yes only for a pass.
    let out = gonogo(&cfg.path, &["report", &id, "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let csv = stdout(&out);
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), CHECKS.len() + 1, "{csv}");
    assert_eq!(rows[0], "check,kind,target,required,result,evidence");
    let results: Vec<(&str, &str)> = rows[1..]
        .iter()
        .map(|r| {
            let cells: Vec<&str> = r.splitn(6, ',').collect();
            (cells[0], cells[4])
        })
        .collect();
    assert_eq!(
        results,
        [("gateway-ping", "Yes"), ("app-port", "Yes"), ("legacy-port", "No"), ("portal", "Yes"), ("intranet", "No")]
    );
    assert!(rows[2].contains("5/5 connected"), "{}", rows[2]);

    // Markdown.
    let md = stdout(&gonogo(&cfg.path, &["report", &id, "--format", "md"]));
    assert!(md.contains("## Verdict: **NO-GO**"), "{md}");
    for name in CHECKS {
        assert!(md.contains(&format!("| {} |", name)), "{name} missing from the Markdown");
    }

    // JSON: the stored run document, exactly what `show` gives.
    let json: Value = serde_json::from_slice(&gonogo(&cfg.path, &["report", &id, "-f", "json"]).stdout).expect("JSON");
    let shown: Value = serde_json::from_slice(&gonogo(&cfg.path, &["show", &id, "-f", "json"]).stdout).expect("JSON");
    assert_eq!(json, shown);

    // JUnit.
    let junit = stdout(&gonogo(&cfg.path, &["report", &id, "--format", "junit"]));
    let doc = roxmltree::Document::parse(&junit).expect("JUnit XML");
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("testcase")).count(), CHECKS.len());

    // No such run: a usage error naming the store; an unwritable --out: an error naming the file.
    let out = gonogo(&cfg.path, &["report", "20990101T000000000Z-none-0000"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("no run \"20990101T000000000Z-none-0000\""), "{}", stderr(&out));
    let out = gonogo(&cfg.path, &["report", &id, "--out", "/nonexistent-dir/r.html"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot write /nonexistent-dir/r.html"), "{}", stderr(&out));
    let out = gonogo(&cfg.path, &["report", &id, "--format", "pdf"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_report_endpoint_and_status_page() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (open, _open) = open_listener();
    let config = format!(
        "[site]\nname = \"Leeds Test Surgery\"\n\n{}\n[[check]]\nname = \"app-port\"\nkind = \"tcp\"\ntarget = \"{open}\"\n\
         phases = [\"pre-migration\"]\n",
        serve_config(dir.path(), &pki, false)
    );
    let daemon = Daemon::start(dir.path(), &config).unwrap_or_else(|e| panic!("{e}"));
    let client = pki.client(false);

    // Before any run: the page says so.
    let resp = client.get(daemon.url("/")).bearer_auth(VIEWER_TOKEN).send().await.expect("GET /");
    assert_eq!(resp.status(), StatusCode::OK);
    let page = resp.text().await.expect("text");
    assert!(page.contains("data-phase=\"pre-migration\" data-verdict=\"none\""), "{page}");
    assert!(page.contains("No run recorded yet."));

    let resp = client
        .post(daemon.url("/api/v1/runs"))
        .bearer_auth(NOC_TOKEN)
        .json(&json!({"phase": "pre-migration", "change_ref": "CHG0099"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let id = resp.json::<Value>().await.expect("JSON")["id"].as_str().expect("id").to_owned();
    let run: Value = client
        .get(daemon.url(&format!("/api/v1/runs/{id}?wait=30s")))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .expect("GET run")
        .json()
        .await
        .expect("JSON");
    assert_eq!(run["verdict"], "GO", "{run}");

    // Every format, with its content type; HTML locked down by a content security policy.
    for (format, content_type, marker) in [
        ("html", "text/html; charset=utf-8", "data-verdict=\"GO\""),
        ("md", "text/markdown; charset=utf-8", "## Verdict: **GO**"),
        ("csv", "text/csv; charset=utf-8; header=present", "app-port,tcp,"),
        ("json", "application/json", "\"verdict\": \"GO\""),
        ("junit", "application/xml; charset=utf-8", "<testcase name=\"app-port\""),
    ] {
        let resp = client
            .get(daemon.url(&format!("/api/v1/runs/{id}/report?format={format}")))
            .bearer_auth(VIEWER_TOKEN)
            .send()
            .await
            .expect("GET report");
        assert_eq!(resp.status(), StatusCode::OK, "{format}");
        let headers = resp.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{format}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let disposition = headers["content-disposition"].to_str().expect("ascii");
        assert!(disposition.contains(&format!("filename=\"{id}.")), "{disposition}");
        if format == "html" {
            let csp = headers["content-security-policy"].to_str().expect("ascii");
            assert!(csp.starts_with("default-src 'none'") && !csp.contains("script"), "{csp}");
        }
        let body = resp.text().await.expect("body");
        assert!(body.contains(marker), "{format}: {marker:?} missing from {body}");
        if format == "json" {
            assert_eq!(serde_json::from_str::<Value>(&body).expect("JSON"), run);
        }
    }
    // Default format: HTML.
    let resp = client
        .get(daemon.url(&format!("/api/v1/runs/{id}/report")))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");

    // Errors: a bad format, an unknown run, no token, an unknown parameter.
    let get = |path: String, token: Option<&'static str>| {
        let mut req = client.get(daemon.url(&path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.expect("GET");
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = get(format!("/api/v1/runs/{id}/report?format=pdf"), Some(VIEWER_TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("html, md, json, junit, csv")), "{body}");
    let (status, _) = get("/api/v1/runs/20990101T000000000Z-x-0000/report".into(), Some(VIEWER_TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get("/api/v1/runs/..%2F..%2Fetc%2Fpasswd/report".into(), Some(VIEWER_TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(format!("/api/v1/runs/{id}/report"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(format!("/api/v1/runs/{id}/report?fmt=html"), Some(VIEWER_TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get("/".into(), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the status page needs a token");

    // The status page: the phase's verdict, the run in the recent list, linked to its report.
    let resp = client.get(daemon.url("/")).bearer_auth(VIEWER_TOKEN).send().await.expect("GET /");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let page = resp.text().await.expect("text");
    assert!(page.contains("<h1>gonogo · Leeds Test Surgery</h1>"), "{page}");
    assert!(page.contains("data-phase=\"pre-migration\" data-verdict=\"GO\""), "{page}");
    assert!(page.contains(&format!("<tr class=\"run\" data-run=\"{id}\">")));
    let link = format!("/api/v1/runs/{id}/report?format=html");
    assert!(page.contains(&format!("<a href=\"{link}\">{id}</a>")));
    assert!(page.contains("CHG0099"));
    assert!(page.contains("No run in progress."));
    assert!(!page.contains("<script"));
    // The link works.
    let resp = client.get(daemon.url(&link)).bearer_auth(VIEWER_TOKEN).send().await.expect("follow the link");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.expect("text").contains(&format!("gonogo run {id}")));
}
