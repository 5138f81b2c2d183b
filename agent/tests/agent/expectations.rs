//! Every expectation of every kind, in both directions, against real servers on loopback, through the whole
//! path: config text → validation → plan → probe → engine → verdict. A failing direction must name the
//! expectation, what was expected and what was observed.

use gonogo::run::CheckResult;
use gonogo::verdict::Outcome;
use gonogo_testkit::dns::DnsServer;
use gonogo_testkit::tcp::{closed_port, open_listener};

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
