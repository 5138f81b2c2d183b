//! The migration workflow end to end: baseline comparison at the post-migration go/no-go point, gates over
//! the latest runs, and sign-off decisions refused on stale or failing evidence — through the real binary.

use std::net::SocketAddr;

use gonogo_testkit::tcp::{closed_port, open_listener};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::daemon::{Daemon, NOC_TOKEN, Pki, VIEWER_TOKEN, serve_config, token_hash};
use crate::support::{gonogo, stderr, stdout, write_config};

/// Two applications in pre- and post-migration; `[gate.go-live]` over commissioning and pre-migration.
fn plan(app_a: SocketAddr, app_b: SocketAddr) -> String {
    format!(
        r#"
[gate.go-live]
requires = ["commissioning", "pre-migration"]
max_age = "1h"

[[check]]
name = "app-a"
kind = "tcp"
target = "{app_a}"
timeout = "1s"
phases = ["commissioning", "pre-migration", "post-migration"]

[[check]]
name = "app-b"
kind = "tcp"
target = "{app_b}"
timeout = "1s"
phases = ["pre-migration", "post-migration"]
"#
    )
}

fn run_json(cfg: &std::path::Path, phase: &str) -> Value {
    let out = gonogo(cfg, &["run", phase, "--format", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)))
}

/// The issue's acceptance: one application broken by the change and one already broken before → NO-GO naming
/// exactly one regression and one pre-existing failure; only the pre-existing one → GO with a warning.
#[test]
fn post_migration_tells_broken_by_the_change_from_already_broken() {
    let (a_addr, a) = open_listener();
    let b_addr = closed_port(); // app-b is already broken before the change
    let cfg = write_config(&plan(a_addr, b_addr));
    let pre = run_json(&cfg.path, "pre-migration");
    assert_eq!(pre["checks"][1]["outcome"], "fail");

    // Only the pre-existing failure: GO, with a warning that says so.
    let post = run_json(&cfg.path, "post-migration");
    assert_eq!(post["verdict"], "GO", "{post}");
    assert_eq!(post["comparison"]["baseline_id"], pre["id"]);
    assert_eq!(
        (post["comparison"]["regressions"].as_u64(), post["comparison"]["preexisting"].as_u64()),
        (Some(0), Some(1))
    );
    let warnings = post["warnings"].to_string();
    assert!(warnings.contains("required check app-b fails as it did in baseline run"), "{warnings}");

    // The change breaks app-a.
    drop(a);
    let out = gonogo(&cfg.path, &["run", "post-migration"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("REGRESSION: broken by the change") && text.contains("pre-existing: already failing"),
        "{text}"
    );
    let post = run_json(&cfg.path, "post-migration");
    assert_eq!(post["verdict"], "NO-GO");
    let cmp = &post["comparison"];
    assert_eq!((cmp["regressions"].as_u64(), cmp["preexisting"].as_u64()), (Some(1), Some(1)), "{cmp}");
    let statuses: Vec<(&str, &str)> = cmp["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["name"].as_str().unwrap_or(""), c["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(statuses, [("app-a", "regression"), ("app-b", "pre-existing")]);
    assert_eq!(post["blocking"].as_array().map(Vec::len), Some(1), "only the regression blocks: {post}");
    assert!(post["blocking"][0].as_str().is_some_and(|b| b.starts_with("required check app-a regressed")));

    // `gonogo diff` says the same offline, and exits 1 for the regression.
    let out = gonogo(&cfg.path, &["diff", pre["id"].as_str().unwrap_or(""), post["id"].as_str().unwrap_or("")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("1 regression(s), 1 pre-existing, 0 fixed, 0 new"), "{}", stdout(&out));
}

#[test]
fn gates_and_signoff_from_the_cli() {
    let (a_addr, a) = open_listener();
    let (b_addr, _b) = open_listener();
    let cfg = write_config(&plan(a_addr, b_addr));
    let signoff = |decision: &str, extra: &[&str]| {
        let mut args = vec!["signoff", "--gate", "go-live", "--decision", decision, "--name", "A. Lead"];
        args.extend(["--role", "Change manager", "--organisation", "Example Trust"]);
        args.extend(extra);
        gonogo(&cfg.path, &args)
    };
    // Missing phases.
    let out = gonogo(&cfg.path, &["gate", "go-live"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("no finished run of phase commissioning"), "{}", stdout(&out));
    assert_eq!(signoff("go", &[]).status.code(), Some(1), "no go on a NO-GO gate");
    // Fresh GO runs: GO, and a go decision is recorded in the journal with the runs it relied on.
    run_json(&cfg.path, "commissioning");
    let pre = run_json(&cfg.path, "pre-migration");
    let out = gonogo(&cfg.path, &["gate", "go-live", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let eval: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(eval["verdict"], "GO");
    assert_eq!(eval["phases"][1]["run_id"], pre["id"]);
    let out = signoff("go", &["--note", "all green"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("recorded"), "{}", stdout(&out));
    // A failing phase: NO-GO naming it; go refused, go with an override recorded.
    drop(a);
    run_json(&cfg.path, "pre-migration");
    let out = gonogo(&cfg.path, &["gate", "go-live"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("is NO-GO"), "{}", stdout(&out));
    let out = signoff("go", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs an override reason"), "{}", stderr(&out));
    assert_eq!(signoff("go", &["--override", "app-a is being decommissioned (CHG42)"]).status.code(), Some(0));
    assert_eq!(signoff("rollback", &[]).status.code(), Some(0));
    let journal = std::fs::read_to_string(cfg.path.with_file_name("state").join("journal.jsonl")).expect("journal");
    let decisions: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 3, "{journal}");
    assert_eq!(decisions[1]["data"]["override_reason"], "app-a is being decommissioned (CHG42)");
    assert!(decisions[0]["data"]["evidence"][1]["run_sha256"].as_str().is_some_and(|h| h.len() == 64));
}

const SIGNOFF_TOKEN: &str = "signoff-token-for-tests-55555";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_over_the_api_are_refused_on_stale_evidence() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (a_addr, _a) = open_listener();
    let (b_addr, _b) = open_listener();
    let config = format!(
        "{}\n[[token]]\nname = \"lead\"\nsha256 = \"{}\"\nroles = [\"read\", \"signoff\"]\n{}",
        serve_config(dir.path(), &pki, false),
        token_hash(SIGNOFF_TOKEN),
        plan(a_addr, b_addr)
    );
    let daemon = Daemon::start(dir.path(), &config).unwrap_or_else(|e| panic!("{e}"));
    let client = pki.client(false);
    let run = |phase: &'static str| {
        let (client, url) = (client.clone(), daemon.url(""));
        async move {
            let r: Value = client
                .post(format!("{url}/api/v1/runs"))
                .bearer_auth(NOC_TOKEN)
                .json(&json!({"phase": phase}))
                .send()
                .await
                .expect("trigger")
                .json()
                .await
                .expect("JSON");
            let id = r["id"].as_str().expect("id").to_owned();
            let _ = client.get(format!("{url}/api/v1/runs/{id}?wait=30s")).bearer_auth(VIEWER_TOKEN).send().await;
            id
        }
    };
    run("commissioning").await;
    let first = run("pre-migration").await;
    let gate: Value = client
        .get(daemon.url("/api/v1/gates/go-live"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .expect("gate")
        .json()
        .await
        .expect("JSON");
    assert_eq!(gate["verdict"], "GO", "{gate}");
    let decide = |runs: Vec<String>, token: &'static str| {
        let body = json!({"gate": "go-live", "decision": "go", "name": "A. Lead", "role": "Change manager",
                          "organisation": "Example Trust", "runs": runs});
        client.post(daemon.url("/api/v1/decisions")).bearer_auth(token).json(&body).send()
    };
    assert_eq!(decide(vec![first.clone()], NOC_TOKEN).await.expect("POST").status(), StatusCode::FORBIDDEN);
    // A newer pre-migration run appears after the signer looked: their evidence is stale.
    run("pre-migration").await;
    let resp = decide(vec![first.clone()], SIGNOFF_TOKEN).await.expect("POST");
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let body: Value = resp.json().await.expect("JSON");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("stale") && e.contains("newer run")), "{body}");
    // Looking at the current evidence, the decision is recorded with the runs and hashes it relied on.
    let latest: Vec<String> = body["gate"]["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["run_id"].as_str().map(str::to_owned))
        .collect();
    let resp = decide(latest, SIGNOFF_TOKEN).await.expect("POST");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["decision"]["gate_verdict"], "GO");
    assert!(body["journal_seq"].as_u64().is_some());
    assert_eq!(
        client.get(daemon.url("/api/v1/gates/nope")).bearer_auth(VIEWER_TOKEN).send().await.expect("GET").status(),
        StatusCode::NOT_FOUND
    );
}

/// `gonogo demo`: no config, loopback only; it shows the NO-GO it simulated, writes the report and exits 0.
#[test]
fn the_demo_shows_the_no_go_it_simulated_and_writes_the_report() {
    let dir = tempfile::tempdir().expect("tmp");
    let report = dir.path().join("demo.html");
    let out = std::process::Command::new(crate::support::gonogo_bin())
        .args(["demo", "--out"])
        .arg(&report)
        .env("NO_COLOR", "1")
        .env_remove("GONOGO_CONFIG")
        .output()
        .expect("run gonogo demo");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("VERDICT: NO-GO — required check dns-app regressed"), "{text}");
    assert!(text.contains("3 regression(s), 1 pre-existing"), "{text}");
    assert!(text.contains("decision rollback recorded"), "{text}");
    let html = std::fs::read_to_string(&report).expect("report written");
    assert!(html.contains("NO-GO") && html.contains("patient-portal") && html.contains("legacy-app"));
}
