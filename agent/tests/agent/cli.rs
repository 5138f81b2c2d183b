//! The CLI against the real binary: exit codes, config problems, output formats.

use gonogo_testkit::tcp::{closed_port, open_listener};

use crate::support::{gonogo, stderr, stdout, write_config};

/// A plan with a passing required ICMP check and a TCP check whose requirement and target vary.
fn plan(tcp_target: &str, tcp_required: bool) -> String {
    format!(
        r#"
[site]
name = "Test Site"

[[check]]
name = "loopback-ping"
kind = "icmp"
target = "127.0.0.1"
count = 3
interval = "10ms"
timeout = "2s"
phases = ["pre-migration"]
expect = {{ loss_max = 0.0 }}

[[check]]
name = "app-port"
kind = "tcp"
target = "{tcp_target}"
required = {tcp_required}
timeout = "2s"
phases = ["pre-migration"]
"#
    )
}

#[test]
fn passing_plan_exits_0_with_go() {
    let (addr, _listener) = open_listener();
    let cfg = write_config(&plan(&addr.to_string(), true));
    let out = gonogo(&cfg.path, &["run", "pre-migration"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(text.contains("VERDICT: GO"), "{text}");
    assert!(text.contains("loopback-ping") && text.contains("app-port"), "{text}");
    assert!(text.contains("3/3 replies"), "{text}");
    // Not a terminal: no progress output on stderr.
    assert!(!stderr(&out).contains("[1/2]"), "{}", stderr(&out));
}

#[test]
fn failing_required_check_exits_1_with_no_go_and_the_reason() {
    let cfg = write_config(&plan(&closed_port().to_string(), true));
    let out = gonogo(&cfg.path, &["run", "pre-migration"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("VERDICT: NO-GO — required check app-port failed"), "{text}");
    assert!(text.contains("connect: expected every connect attempt succeeds, observed 0 of 1 connected"), "{text}");
    assert!(text.contains("connection_refused"), "{text}");
}

#[test]
fn advisory_failure_alone_gives_go_with_a_warning() {
    let cfg = write_config(&plan(&closed_port().to_string(), false));
    let out = gonogo(&cfg.path, &["run", "pre-migration"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("fail (advisory)"), "{text}");
    assert!(text.contains("warning: advisory check app-port is fail"), "{text}");
    assert!(text.contains("VERDICT: GO"), "{text}");
}

#[test]
fn broken_config_exits_3_and_names_every_problem_with_its_line() {
    let text = r#"[defaults]
timeout = "5 parsecs"

[[check]]
name = "a"
kind = "icmp"
target = "127.0.0.1"
phases = ["pre-migration"]
colour = "blue"

[[check]]
name = "b"
kind = "tcp"
target = "127.0.0.1:80"
phases = ["mid-migration"]
"#;
    let cfg = write_config(text);
    let out = gonogo(&cfg.path, &["run", "pre-migration"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(stdout(&out).is_empty(), "nothing runs on a broken config");
    let file = cfg.path.display().to_string();
    for (line, word) in [(2, "timeout"), (9, "colour"), (15, "mid-migration")] {
        assert!(
            err.lines().any(|l| l.starts_with(&format!("error: {file}:{line}:")) && l.contains(word)),
            "no problem at line {line} naming {word}:\n{err}"
        );
    }
    assert!(err.contains("nothing was run"), "{err}");
    // check-config reports the same and exits 3 too.
    let out = gonogo(&cfg.path, &["check-config"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn usage_errors_exit_3_help_and_version_exit_0() {
    let cfg = write_config(&plan("127.0.0.1:9", true));
    for args in [&["run", "no-such-phase"][..], &["run", "pre-migration", "--check", "nope"], &["run"], &["frobnicate"]]
    {
        let out = gonogo(&cfg.path, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
    }
    // A standard phase with no checks in this plan is a usage error that lists the phases that have some.
    let out = gonogo(&cfg.path, &["run", "regression"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("phases with checks: pre-migration"), "{}", stderr(&out));
    for args in [&["--help"][..], &["run", "--help"], &["--version"]] {
        let out = gonogo(&cfg.path, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!stdout(&out).is_empty());
    }
    let out = gonogo(std::path::Path::new("/nonexistent/gonogo.toml"), &["check-config"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("/nonexistent/gonogo.toml"), "{}", stderr(&out));
}

#[test]
fn check_config_and_list() {
    let cfg = write_config(&plan("127.0.0.1:9", true));
    let out = gonogo(&cfg.path, &["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("OK — 2 checks in 1 phases (pre-migration)"), "{}", stdout(&out));
    let out = gonogo(&cfg.path, &["list"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("pre-migration (2 checks)"), "{text}");
    assert!(text.contains("app-port") && text.contains("127.0.0.1:9"), "{text}");
}

#[test]
fn json_output_carries_verdict_checks_observations_and_reasons() {
    let cfg = write_config(&plan(&closed_port().to_string(), true));
    let out = gonogo(&cfg.path, &["run", "pre-migration", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(doc["phase"], "pre-migration");
    assert_eq!(doc["verdict"], "NO-GO");
    assert_eq!(doc["site"], "Test Site");
    let checks = doc["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 2);
    let ping = &checks[0];
    assert_eq!((ping["name"].as_str(), ping["kind"].as_str()), (Some("loopback-ping"), Some("icmp")));
    assert_eq!((ping["required"].as_bool(), ping["outcome"].as_str()), (Some(true), Some("pass")));
    assert_eq!(ping["observations"]["received"], 3);
    assert!(ping["observations"]["rtt"]["p95_ms"].as_f64().is_some());
    assert_eq!(ping["reasons"].as_array().map(Vec::len), Some(0));
    let port = &checks[1];
    assert_eq!(port["outcome"], "fail");
    assert_eq!(port["observations"]["failure"], "connection_refused");
    assert!(port["reasons"][0].as_str().is_some_and(|r| r.starts_with("connect: expected")));
    assert_eq!(port["expectations"][0]["met"], false);
}

#[test]
fn junit_output_is_valid_xml_with_one_testcase_per_check() {
    let cfg = write_config(&plan(&closed_port().to_string(), true));
    let out = gonogo(&cfg.path, &["run", "pre-migration", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("2"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(
        cases.iter().map(|c| c.attribute("name")).collect::<Vec<_>>(),
        [Some("loopback-ping"), Some("app-port")]
    );
    assert!(!cases[0].children().any(|n| n.has_tag_name("failure")));
    let failure = cases[1].children().find(|n| n.has_tag_name("failure")).expect("failure element");
    assert!(failure.attribute("message").is_some_and(|m| m.contains("connect: expected")));
    let verdict = doc
        .descendants()
        .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("verdict"))
        .and_then(|n| n.attribute("value"));
    assert_eq!(verdict, Some("NO-GO"));
}

#[test]
fn selected_checks_only() {
    let cfg = write_config(&plan(&closed_port().to_string(), true));
    let out = gonogo(&cfg.path, &["run", "pre-migration", "--check", "loopback-ping", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["partial"], true);
    assert_eq!(doc["checks"].as_array().map(Vec::len), Some(1));
}

#[test]
fn cli_runs_are_recorded_and_shown() {
    let (addr, _listener) = open_listener();
    let cfg = write_config(&plan(&addr.to_string(), true));
    let out = gonogo(&cfg.path, &["run", "pre-migration", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not recorded"), "{}", stderr(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let id = run["id"].as_str().expect("id");
    assert_eq!(run["status"], "finished");
    assert_eq!(run["trigger"]["source"], "cli");
    let out = gonogo(&cfg.path, &["runs"]);
    assert!(stdout(&out).contains(id) && stdout(&out).contains("GO"), "{}", stdout(&out));
    let out = gonogo(&cfg.path, &["show", id, "--format", "json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(shown, run);
    let out = gonogo(&cfg.path, &["show", "no-such-run"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("gonogo runs"), "{}", stderr(&out));
}

#[test]
fn an_unwritable_state_dir_is_a_note_not_a_failure() {
    let (addr, _listener) = open_listener();
    let text = format!("{}\n[storage]\nstate_dir = \"/proc/gonogo-cannot-exist\"\n", plan(&addr.to_string(), true));
    let cfg = write_config(&text);
    let out = gonogo(&cfg.path, &["run", "pre-migration"]);
    assert_eq!(out.status.code(), Some(0), "the verdict stands");
    assert!(
        stderr(&out).contains("note: this run is not recorded") && stderr(&out).contains("/proc/gonogo-cannot-exist"),
        "{}",
        stderr(&out)
    );
}
