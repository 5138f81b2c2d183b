//! Budgets, not sums: hanging targets end at about one timeout however many there are.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use gonogo::verdict::Outcome;
use gonogo_testkit::tcp::{hanging_listener, open_listener};

use crate::support::run_phase;

/// 50 checks of which 10 hang (HTTP to a listener that accepts and never answers) finish in under twice the
/// timeout. A behavioural bound, not a benchmark: run one after the other, the hanging checks alone would take
/// ten timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_checks_with_ten_hanging_finish_within_twice_the_timeout() {
    let timeout = Duration::from_secs(2);
    let (open, _open) = open_listener();
    let (hang, _hang) = hanging_listener();
    let mut text = String::from("[defaults]\ntimeout = \"2s\"\n");
    for i in 0..50 {
        let (kind, key, target) =
            if i % 5 == 0 { ("http", "url", format!("http://{hang}/")) } else { ("tcp", "target", open.to_string()) };
        let _ = write!(
            text,
            "\n[[check]]\nname = \"c{i}\"\nkind = \"{kind}\"\n{key} = \"{target}\"\nphases = [\"regression\"]\n"
        );
    }
    let started = Instant::now();
    let results = run_phase(&text, "regression").await;
    let elapsed = started.elapsed();
    assert_eq!(results.len(), 50);
    let hung: Vec<_> = results.iter().filter(|r| r.kind == "http").collect();
    assert_eq!(hung.len(), 10);
    for r in &hung {
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        assert!(r.reasons.iter().any(|s| s.contains("timeout")), "{:?}", r.reasons);
    }
    assert!(results.iter().filter(|r| r.kind == "tcp").all(|r| r.outcome == Outcome::Pass));
    assert!(elapsed < 2 * timeout, "phase took {elapsed:?}, more than twice the {timeout:?} timeout");
}
