//! Issue "probe depth", engine side: `ip` modes, retries and the settle window, `depends_on`, `fallback_tcp`,
//! `expect_failure`, several DNS servers in one check — through the real engine (and the real binary where a
//! namespace is needed).

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use gonogo::verdict::Outcome;
use gonogo_testkit::dns::{DnsServer, silent_udp};
use gonogo_testkit::tcp::{closed_port, open_listener};
use serde_json::Value;

use crate::support::{run_in_fresh_netns, run_phase, run_with_hosts};

/// Listeners on 127.0.0.1:P and [::1]:P (same port), held open; connects complete in the kernel's backlog.
fn dual_stack_listeners() -> Option<(u16, TcpListener, TcpListener)> {
    for _ in 0..20 {
        let v4 = TcpListener::bind("127.0.0.1:0").expect("bind v4");
        let port = v4.local_addr().expect("addr").port();
        if let Ok(v6) = TcpListener::bind(("::1", port)) {
            return Some((port, v4, v6));
        }
    }
    None
}

const DUAL_HOSTS: &str = "127.0.0.1 dual.test v4only.test\n::1 dual.test\n";

fn parts(doc: &Value) -> Vec<(String, String)> {
    doc["checks"][0]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["label"].as_str().unwrap_or("").to_owned(), p["outcome"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[test]
fn ip_both_reports_each_family_and_fails_naming_the_one_that_is_down() {
    let Some((port, _v4, v6)) = dual_stack_listeners() else {
        eprintln!("SKIPPED: no IPv6 loopback here");
        return;
    };
    let config = |ip: &str| {
        format!(
            "[[check]]\nname = \"app\"\nkind = \"tcp\"\ntarget = \"dual.test:{port}\"\nip = \"{ip}\"\nphases = [\"regression\"]\n"
        )
    };
    let Some(doc) = run_with_hosts(DUAL_HOSTS, &config("both"), "regression") else { return };
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(
        parts(&doc),
        [("IPv4 127.0.0.1".to_owned(), "pass".to_owned()), ("IPv6 ::1".to_owned(), "pass".to_owned())]
    );
    let Some(doc) = run_with_hosts(DUAL_HOSTS, &config("all"), "regression") else { return };
    assert_eq!(parts(&doc).len(), 2, "{doc}");

    drop(v6);
    let Some(doc) = run_with_hosts(DUAL_HOSTS, &config("both"), "regression") else { return };
    assert_eq!(doc["exit_code"], 1, "{doc}");
    let check = &doc["checks"][0];
    assert_eq!(check["outcome"], "fail");
    assert_eq!(parts(&doc)[1], ("IPv6 ::1".to_owned(), "fail".to_owned()));
    let reasons = check["reasons"].to_string();
    assert!(reasons.contains("IPv6 ::1: connect:") && reasons.contains("connection_refused"), "{reasons}");
    assert!(!reasons.contains("IPv4"), "only the family that is down is blamed: {reasons}");
}

#[test]
fn ip_6_on_a_name_without_an_ipv6_address_fails_saying_so() {
    let (addr, _l) = open_listener();
    let config = format!(
        "[[check]]\nname = \"app\"\nkind = \"tcp\"\ntarget = \"v4only.test:{}\"\nip = \"6\"\nphases = [\"regression\"]\n",
        addr.port()
    );
    let Some(doc) = run_with_hosts(DUAL_HOSTS, &config, "regression") else { return };
    let reasons = doc["checks"][0]["reasons"].to_string();
    assert_eq!(doc["checks"][0]["outcome"], "fail", "{doc}");
    assert!(reasons.contains("expected an IPv6 address for v4only.test, observed only 127.0.0.1"), "{reasons}");
}

/// A port that is free now and starts listening after `after`; the listener lives until `hold` has passed.
fn comes_up_later(after: Duration, hold: Duration) -> SocketAddr {
    let addr = closed_port();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        if let Ok(l) = TcpListener::bind(addr) {
            std::thread::sleep(hold);
            drop(l);
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_turns_a_late_target_into_a_pass_and_fails_a_dead_one_only_after_the_window() {
    let late = comes_up_later(Duration::from_secs(3), Duration::from_secs(20));
    let dead = closed_port();
    let text = format!(
        "[phase.post-migration]\nsettle = \"6s\"\n\n\
         [[check]]\nname = \"late\"\nkind = \"tcp\"\ntarget = \"{late}\"\ntimeout = \"500ms\"\nretry_interval = \"250ms\"\nretries = 1\nphases = [\"post-migration\"]\n\n\
         [[check]]\nname = \"dead\"\nkind = \"tcp\"\ntarget = \"{dead}\"\ntimeout = \"500ms\"\nretry_interval = \"250ms\"\nretries = 1\nphases = [\"post-migration\"]\n"
    );
    let started = Instant::now();
    let results = run_phase(&text, "post-migration").await;
    let elapsed = started.elapsed();
    let late = &results[0];
    assert_eq!(late.outcome, Outcome::Pass, "{late:?}");
    assert!(late.attempts > 1, "{late:?}");
    assert!(late.time_to_pass.is_some_and(|t| t >= Duration::from_secs(3)), "{late:?}");
    let dead = &results[1];
    assert_eq!(dead.outcome, Outcome::Fail);
    assert!(dead.attempts > 2, "re-run through the window: {dead:?}");
    assert!(dead.reasons.iter().any(|r| r.contains("within the phase's settle window")), "{:?}", dead.reasons);
    // Not before the window: the dead check was still being retried until about 6 s.
    assert!(elapsed >= Duration::from_millis(5500), "gave up after {elapsed:?}, before the 6 s window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_rerun_a_failing_check_and_record_attempts() {
    let text = format!(
        "[[check]]\nname = \"dead\"\nkind = \"tcp\"\ntarget = \"{}\"\nretries = 2\nretry_interval = \"50ms\"\nphases = [\"regression\"]\n",
        closed_port()
    );
    let r = &run_phase(&text, "regression").await[0];
    assert_eq!((r.outcome, r.attempts), (Outcome::Fail, 3), "{r:?}");
    assert!(r.reasons.last().is_some_and(|s| s == "still not passing after 3 attempts"), "{:?}", r.reasons);
    let (addr, _l) = open_listener();
    let text = format!(
        "[[check]]\nname = \"up\"\nkind = \"tcp\"\ntarget = \"{addr}\"\nretries = 2\nphases = [\"regression\"]\n"
    );
    let r = &run_phase(&text, "regression").await[0];
    assert_eq!((r.outcome, r.attempts, r.time_to_pass), (Outcome::Pass, 1, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependants_of_a_failed_check_are_inconclusive_naming_it() {
    let dns = DnsServer::builder().a("app.test.", "127.0.0.1").start().await;
    let (addr, _l) = open_listener();
    let text = |query: &str| {
        format!(
            "[[check]]\nname = \"dns\"\nkind = \"dns\"\nserver = \"{}\"\nquery = \"{query}\"\nphases = [\"regression\"]\n\n\
             [[check]]\nname = \"app\"\nkind = \"tcp\"\ntarget = \"{addr}\"\ndepends_on = [\"dns\"]\nphases = [\"regression\"]\n",
            dns.addr()
        )
    };
    let results = run_phase(&text("app.test"), "regression").await;
    assert_eq!((results[0].outcome, results[1].outcome), (Outcome::Pass, Outcome::Pass));
    let results = run_phase(&text("gone.test"), "regression").await;
    assert_eq!(results[0].outcome, Outcome::Fail);
    let app = &results[1];
    assert_eq!(app.outcome, Outcome::Inconclusive);
    assert_eq!(app.reasons, ["not run: it depends on dns, which is fail"]);
    assert_eq!(app.attempts, 0);
    assert!(app.observations.is_none());
    // The phase verdict: the failed DNS check is NO-GO; alone, a required inconclusive dependant is INCONCLUSIVE.
    let summaries: Vec<_> = results
        .iter()
        .map(|r| gonogo::verdict::CheckSummary { name: &r.name, required: r.required, outcome: r.outcome })
        .collect();
    assert_eq!(gonogo::verdict::phase_verdict(&summaries).verdict, gonogo::verdict::Verdict::NoGo);
    assert_eq!(gonogo::verdict::phase_verdict(&summaries[1..]).verdict, gonogo::verdict::Verdict::Inconclusive);
}

/// ICMP silently dropped (icmp_echo_ignore_all in a fresh namespace) while TCP answers: inconclusive, not fail.
#[test]
fn icmp_lost_but_tcp_fallback_connects_is_inconclusive() {
    let config = |port: u16| {
        format!(
            "[[check]]\nname = \"resolver\"\nkind = \"icmp\"\ntarget = \"127.0.0.1\"\ncount = 2\ninterval = \"50ms\"\ntimeout = \"300ms\"\n\
             fallback_tcp = \"127.0.0.1:{port}\"\nphases = [\"commissioning\"]\n"
        )
    };
    // Inside the namespace: lo up, echoes ignored, a TCP listener on 127.0.0.1:8053 for 20 s at most.
    let prefix = "ip link set lo up && sysctl -qw net.ipv4.icmp_echo_ignore_all=1 && \
        (timeout 20 python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", 8053)); s.listen(); time.sleep(20)' &) && \
        sleep 0.5 && exec";
    let Some(doc) = run_in_fresh_netns(&config(8053), "commissioning", prefix) else { return };
    let check = &doc["checks"][0];
    assert_eq!(check["outcome"], "inconclusive", "{check}");
    assert_eq!(doc["verdict"], "INCONCLUSIVE");
    assert_eq!(doc["exit_code"], 2);
    assert!(check["reasons"][0].as_str().is_some_and(|r| r.contains("ICMP is probably filtered")), "{check}");
    assert_eq!(check["observations"]["fallback_tcp"]["connected"], 1);
    // Nothing listens on 8054: the fallback fails too, and so does the check.
    let Some(doc) = run_in_fresh_netns(&config(8054), "commissioning", prefix) else { return };
    let check = &doc["checks"][0];
    assert_eq!(check["outcome"], "fail", "{check}");
    assert!(check["reasons"].to_string().contains("fallback_tcp: expected a TCP connect to"), "{check}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_failure_passes_only_when_the_target_is_unreachable() {
    let closed = closed_port();
    let (open, _l) = open_listener();
    let text = |target: SocketAddr| {
        format!(
            "[[check]]\nname = \"legacy\"\nkind = \"tcp\"\ntarget = \"{target}\"\nexpect_failure = true\nphases = [\"post-migration\"]\n"
        )
    };
    let r = &run_phase(&text(closed), "post-migration").await[0];
    assert_eq!(r.outcome, Outcome::Pass, "{r:?}");
    assert!(r.observations.is_some(), "the observation is kept");
    assert!(r.expectations[0].observed.starts_with("unreachable: 0 of 1 connects"), "{:?}", r.expectations);
    let r = &run_phase(&text(open), "post-migration").await[0];
    assert_eq!(r.outcome, Outcome::Fail);
    assert_eq!(
        r.reasons,
        ["expect_failure: expected the target unreachable, observed reachable: 1 of 1 connects succeeded"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_dns_servers_are_judged_one_by_one_and_a_dead_one_is_named() {
    let a = DnsServer::builder().a("app.test.", "10.0.0.1").start().await;
    let b = DnsServer::builder().a("app.test.", "10.0.0.1").start().await;
    let dead = silent_udp();
    let text = |servers: &[SocketAddr]| {
        let list = servers.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
        format!(
            "[[check]]\nname = \"dns\"\nkind = \"dns\"\nservers = [{list}]\nquery = \"app.test\"\ntimeout = \"400ms\"\nphases = [\"regression\"]\n"
        )
    };
    let r = &run_phase(&text(&[a.addr(), b.addr()]), "regression").await[0];
    assert_eq!(r.outcome, Outcome::Pass, "{r:?}");
    assert_eq!(r.parts.len(), 2);
    assert_eq!(r.parts[1].label, format!("server {}", b.addr()));
    let r = &run_phase(&text(&[a.addr(), dead.addr()]), "regression").await[0];
    assert_eq!(r.outcome, Outcome::Fail);
    assert_eq!(r.parts[0].outcome, Outcome::Pass);
    assert_eq!(r.reasons.len(), 1, "{:?}", r.reasons);
    assert!(r.reasons[0].starts_with(&format!("server {}: response:", dead.addr())), "{:?}", r.reasons);
}
