//! The run engine: runs the checks of a plan concurrently (bounded by `concurrency`), each under its budget,
//! judges each with the verdict engine, and assembles the results.
//!
//! - A phase whose targets hang finishes in about one timeout: every check starts at once (up to the
//!   concurrency bound) and each probe is cut off shortly after its own budget.
//! - `retries` and the phase's `settle` window re-run a check that did not pass (after `retry_interval`);
//!   the permit is released while it waits.
//! - `depends_on`: a check waits for the checks it depends on (before taking a permit, so waiting never blocks
//!   others) and is `inconclusive`, not run, when one of them did not pass.
//! - A check that covers several addresses or servers runs them concurrently as parts; its outcome is the
//!   worst part's.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use gonogo_config::{Check, CheckSpec};
use gonogo_probes::tcp::{TcpParams, TcpProbe};
use gonogo_probes::{Observations, Probe};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::plan::{self, Plan, Probes, Unit, Work};
use crate::run::{CheckResult, PartResult};
use crate::verdict::{self, Evaluation, Judgement, Measured, Outcome};

/// Slack given to a probe beyond its own budget before the engine stops it: probes enforce their timeouts
/// themselves and return partial observations; this only catches one that does not.
pub fn overrun_margin(budget: Duration) -> Duration {
    Duration::from_millis(500) + budget / 10
}

/// Run every check of the plan; results come back in plan order. `progress` is called as each check finishes,
/// with the result, how many are done and how many there are.
pub async fn execute(
    plan: Plan,
    concurrency: usize,
    mut progress: impl FnMut(&CheckResult, usize, usize),
) -> Vec<CheckResult> {
    let total = plan.checks.len();
    // A probe that panics while being built is reported by its check's own task (it is built again there).
    if std::panic::catch_unwind(AssertUnwindSafe(|| plan.probes.warm(&plan.checks))).is_err() {
        tracing::error!("building the probes of the run panicked; each check reports its own");
    }
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let settle_until = plan.settle.map(|s| Instant::now() + s);
    // Each check publishes its final outcome for the checks that depend on it.
    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for c in &plan.checks {
        let (tx, rx) = watch::channel(None::<Outcome>);
        senders.insert(c.name.clone(), tx);
        receivers.insert(c.name.clone(), rx);
    }
    let mut tasks = JoinSet::new();
    let mut by_task = HashMap::new();
    for (index, check) in plan.checks.iter().enumerate() {
        // Dependencies outside this run (not selected with --check) are not waited for.
        let deps: Vec<(String, watch::Receiver<Option<Outcome>>)> =
            check.depends_on.iter().filter_map(|d| receivers.get(d).map(|rx| (d.clone(), rx.clone()))).collect();
        let done = senders.remove(&check.name);
        let (check, probes, permits) = (Arc::clone(check), Arc::clone(&plan.probes), Arc::clone(&permits));
        let meta = Arc::clone(&check);
        let handle = tasks.spawn(async move {
            let result = run_check(&check, &probes, &permits, deps, settle_until).await;
            if let Some(done) = done {
                let _ = done.send(Some(result.outcome));
            }
            (index, result)
        });
        by_task.insert(handle.id(), (index, meta));
    }
    drop(receivers);
    let mut results: Vec<Option<CheckResult>> = (0..total).map(|_| None).collect();
    let mut done = 0;
    while let Some(joined) = tasks.join_next_with_id().await {
        let (index, result) = match joined {
            Ok((_, (index, result))) => (index, result),
            Err(e) => {
                // A panicking probe is a bug, but it must surface as `error`, never make a required check
                // vanish from the verdict.
                let Some((index, check)) = by_task.remove(&e.id()) else { continue };
                tracing::error!(check = %check.name, error = %e, "check task failed");
                (index, probe_panicked(&check, &plan.probes, &e.to_string()))
            }
        };
        done += 1;
        progress(&result, done, total);
        if let Some(slot) = results.get_mut(index) {
            *slot = Some(result);
        }
    }
    results.into_iter().flatten().collect()
}

fn result_of(check: &Check, target: String, j: Judgement, observations: Option<Observations>) -> CheckResult {
    CheckResult {
        name: check.name.clone(),
        kind: check.spec.kind().to_owned(),
        target,
        required: check.required,
        outcome: j.outcome,
        reasons: j.reasons,
        expectations: j.evaluations,
        observations,
        duration: Duration::ZERO,
        attempts: 1,
        time_to_pass: None,
        parts: Vec::new(),
    }
}

/// One check, with its dependencies, retries and settle window.
async fn run_check(
    check: &Arc<Check>,
    probes: &Probes,
    permits: &Arc<Semaphore>,
    deps: Vec<(String, watch::Receiver<Option<Outcome>>)>,
    settle_until: Option<Instant>,
) -> CheckResult {
    for (name, mut rx) in deps {
        let outcome = match rx.wait_for(|o| o.is_some()).await {
            Ok(o) => o.unwrap_or(Outcome::Error),
            Err(_) => Outcome::Error,
        };
        if outcome != Outcome::Pass {
            let target = probes.target(check);
            let j = Judgement {
                outcome: Outcome::Inconclusive,
                evaluations: Vec::new(),
                reasons: vec![format!("not run: it depends on {name}, which is {outcome}")],
            };
            let mut r = result_of(check, target, j, None);
            r.attempts = 0;
            return r;
        }
    }
    let first = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut result = {
            // The semaphore is never closed; should acquiring fail, run unbounded rather than not at all.
            let _permit = permits.acquire().await.ok();
            // The check's own time: waiting for a permit is the phase's queue, not the target's slowness.
            let started = Instant::now();
            let mut result = run_attempt(check, probes).await;
            result.duration = started.elapsed();
            result
        };
        result.attempts = attempt;
        let passed = result.outcome == Outcome::Pass;
        if passed && attempt > 1 {
            result.time_to_pass = Some(first.elapsed());
        }
        // An `error` (no capability, bad local file) will not mend itself: no retry.
        let retryable = matches!(result.outcome, Outcome::Fail | Outcome::Inconclusive);
        let within_settle = settle_until.is_some_and(|until| Instant::now() + check.retry_interval < until);
        if passed || !retryable || (attempt > check.retries && !within_settle) {
            if !passed && attempt > 1 {
                let window = settle_until.map_or(String::new(), |_| " within the phase's settle window".to_owned());
                result.reasons.push(format!("still not passing after {attempt} attempts{window}"));
            }
            return result;
        }
        tokio::time::sleep(check.retry_interval).await;
    }
}

/// Run one check once, now, as a run would (its units, the verdict engine), without dependencies, retries or a
/// settle window: what `GET /probe` answers with.
///
/// A panicking probe is caught here (a check with one unit runs in this task, see [`run_attempt`]) and answered
/// as `error`, as a run reports it.
pub(crate) async fn run_single(check: &Arc<Check>, probes: &Probes) -> CheckResult {
    let started = Instant::now();
    let mut result = caught(check, probes, run_attempt(check, probes)).await;
    result.duration = started.elapsed();
    result
}

/// `attempt`'s result, or the `error` result of `check` if it panics.
async fn caught(check: &Arc<Check>, probes: &Probes, attempt: impl Future<Output = CheckResult>) -> CheckResult {
    match AssertUnwindSafe(attempt).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            tracing::error!(check = %check.name, panic = %what, "probe panicked");
            probe_panicked(check, probes, &what)
        }
    }
}

/// The `error` result of a check whose probe panicked (`what` says how): a bug, but the check must still show.
fn probe_panicked(check: &Arc<Check>, probes: &Probes, what: &str) -> CheckResult {
    let target = probes.target(check);
    let judgement = Judgement::error(format!("internal error: the probe task failed ({what}); please report this bug"));
    let mut r = result_of(check, target, judgement, None);
    r.duration = Duration::ZERO;
    r
}

/// One attempt: every unit of the check, concurrently; the worst outcome wins.
async fn run_attempt(check: &Arc<Check>, probes: &Probes) -> CheckResult {
    let mut units = plan::units(check, probes).await;
    let single = units.len() == 1 && units[0].label.is_none();
    let mut tasks = JoinSet::new();
    if single && let Some(unit) = units.pop() {
        // One unit (most checks): run it in this task. A task of its own would cost a spawn and, on the
        // multi-thread runtime, a wake-up of another worker per probe. A panic is still caught one level up and
        // reported as `error`: by the run's task per check (`execute`) or by `run_single` (`GET /probe`).
        let p = run_unit(check, unit).await;
        let judgement = Judgement { outcome: p.outcome, evaluations: p.expectations, reasons: p.reasons };
        let mut r = result_of(check, p.target, judgement, p.observations);
        r.parts = Vec::new();
        return r;
    }
    for (i, unit) in units.into_iter().enumerate() {
        let check = Arc::clone(check);
        tasks.spawn(async move { (i, run_unit(&check, unit).await) });
    }
    let mut parts: Vec<(usize, PartResult)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(p) => parts.push(p),
            Err(e) => parts.push((
                usize::MAX,
                PartResult {
                    label: "?".to_owned(),
                    target: String::new(),
                    outcome: Outcome::Error,
                    reasons: vec![format!("internal error: a probe task failed ({e}); please report this bug")],
                    expectations: Vec::new(),
                    observations: None,
                },
            )),
        }
    }
    parts.sort_by_key(|(i, _)| *i);
    let parts: Vec<PartResult> = parts.into_iter().map(|(_, p)| p).collect();
    let outcome = worst(parts.iter().map(|p| p.outcome));
    let reasons = parts.iter().flat_map(|p| p.reasons.iter().map(move |r| format!("{}: {r}", p.label))).collect();
    let target = probes.target(check);
    let mut r = result_of(check, target, Judgement { outcome, evaluations: Vec::new(), reasons }, None);
    r.parts = parts;
    r
}

/// Fail outranks error, error outranks inconclusive, which outranks pass: a definite failure is what a
/// go/no-go point must see.
fn worst(outcomes: impl Iterator<Item = Outcome>) -> Outcome {
    let rank = |o: Outcome| match o {
        Outcome::Fail => 4,
        Outcome::Error => 3,
        Outcome::Inconclusive => 2,
        Outcome::Skipped => 1,
        Outcome::Pass => 0,
    };
    outcomes.max_by_key(|o| rank(*o)).unwrap_or(Outcome::Error)
}

/// Run one unit and judge it.
async fn run_unit(check: &Check, unit: Unit) -> PartResult {
    let label = unit.label.unwrap_or_default();
    let probe = match unit.work {
        Work::Probe(p) => p,
        Work::Missing { target, expected, observed } => {
            return PartResult {
                label,
                target,
                outcome: Outcome::Fail,
                reasons: vec![format!("address: expected {expected}, observed {observed}")],
                expectations: vec![Evaluation { expectation: "address".to_owned(), expected, observed, met: false }],
                observations: None,
            };
        }
    };
    let budget = probe.budget();
    let result = tokio::time::timeout(budget + overrun_margin(budget), probe.run()).await;
    let (mut observations, error_text) = match result {
        Ok(Ok(obs)) => (Some(obs), None),
        Ok(Err(e)) => (None, Some(e.to_string())),
        Err(_) => (None, None),
    };
    // ICMP often is filtered on health networks: when no echo came back, try the check's TCP fallback.
    if let (CheckSpec::Icmp(c), Some(Observations::Icmp(o))) = (&check.spec, observations.as_mut())
        && o.received == 0
        && let Some((host, port)) = &c.fallback_tcp
    {
        let tcp = TcpProbe::new(TcpParams {
            host: host.clone(),
            port: *port,
            count: 1,
            timeout: check.timeout,
            source: check.source,
            ..Default::default()
        });
        if let Ok(Ok(Observations::Tcp(t))) = tokio::time::timeout(tcp.budget() * 2, tcp.run()).await {
            o.fallback_tcp = Some(t);
        }
    }
    let measured = match (&observations, &error_text) {
        (Some(obs), _) => Measured::Observed(obs),
        (None, Some(e)) => Measured::Error(e),
        (None, None) => Measured::Overran(budget),
    };
    let j = verdict::judge_check(check, measured, unix_now());
    PartResult {
        label,
        target: probe.target(),
        outcome: j.outcome,
        reasons: j.reasons,
        expectations: j.evaluations,
        observations,
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[tokio::test]
    async fn a_panicking_probe_is_an_error_result_not_a_lost_answer() {
        let text = "[[check]]\nname = \"x\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"regression\"]\n";
        let config = gonogo_config::parse(text, Path::new("t.toml")).expect("config");
        let check = Arc::new(config.checks[0].clone());
        let r = caught(&check, &Probes::new(), async { panic!("boom in a probe") }).await;
        assert_eq!(r.outcome, Outcome::Error);
        assert_eq!(r.target, "127.0.0.1:9");
        assert!(
            r.reasons.iter().any(|why| why.contains("boom in a probe") && why.contains("report this bug")),
            "{r:?}"
        );
    }
}
