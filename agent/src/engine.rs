//! The run engine: runs the planned checks of a phase concurrently (bounded by `concurrency`), each under its
//! budget, judges each with the verdict engine, and assembles the run record.
//!
//! A phase whose targets hang finishes in about one timeout: every check starts at once (up to the
//! concurrency bound) and each probe is cut off shortly after its own budget.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::plan::PlannedCheck;
use crate::run::CheckResult;
use crate::verdict::{self, Measured, Outcome};

/// Slack given to a probe beyond its own budget before the engine stops it: probes enforce their timeouts
/// themselves and return partial observations; this only catches one that does not.
pub fn overrun_margin(budget: Duration) -> Duration {
    Duration::from_millis(500) + budget / 10
}

/// Run every planned check; results come back in plan order. `progress` is called as each check finishes,
/// with the result, how many are done and how many there are.
pub async fn execute(
    planned: Vec<PlannedCheck>,
    concurrency: usize,
    mut progress: impl FnMut(&CheckResult, usize, usize),
) -> Vec<CheckResult> {
    let total = planned.len();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    // What is needed to report a check whose task died (a panicking probe is a bug, but it must surface as an
    // `error` outcome, never make a required check vanish from the verdict).
    let mut by_task = HashMap::new();
    for (index, PlannedCheck { check, probe }) in planned.into_iter().enumerate() {
        let permits = Arc::clone(&permits);
        let meta = (index, Arc::clone(&check), probe.target());
        let handle = tasks.spawn(async move {
            // The semaphore is never closed, so acquiring only fails if it were; run unbounded then.
            let _permit = permits.acquire_owned().await.ok();
            let started = Instant::now();
            let budget = probe.budget();
            let result = tokio::time::timeout(budget + overrun_margin(budget), probe.run()).await;
            let elapsed = started.elapsed();
            let now = unix_now();
            let (judgement, observations) = match &result {
                Ok(Ok(obs)) => (verdict::judge(&check.spec, Measured::Observed(obs), now), Some(obs.clone())),
                Ok(Err(e)) => (verdict::judge(&check.spec, Measured::Error(&e.to_string()), now), None),
                Err(_) => (verdict::judge(&check.spec, Measured::Overran(budget), now), None),
            };
            let result = CheckResult {
                name: check.name.clone(),
                kind: check.spec.kind().to_owned(),
                target: probe.target(),
                required: check.required,
                outcome: judgement.outcome,
                reasons: judgement.reasons,
                expectations: judgement.evaluations,
                observations,
                duration: elapsed,
                attempts: 1,
                time_to_pass: None,
                parts: Vec::new(),
            };
            (index, result)
        });
        by_task.insert(handle.id(), meta);
    }
    let mut results: Vec<Option<CheckResult>> = (0..total).map(|_| None).collect();
    let mut done = 0;
    while let Some(joined) = tasks.join_next_with_id().await {
        let (index, result) = match joined {
            Ok((_, (index, result))) => (index, result),
            Err(e) => {
                let Some((index, check, target)) = by_task.remove(&e.id()) else { continue };
                tracing::error!(check = %check.name, error = %e, "check task failed");
                let result = CheckResult {
                    name: check.name.clone(),
                    kind: check.spec.kind().to_owned(),
                    target,
                    required: check.required,
                    outcome: Outcome::Error,
                    reasons: vec![format!("internal error: the probe task failed ({e}); please report this bug")],
                    expectations: Vec::new(),
                    observations: None,
                    duration: Duration::ZERO,
                    attempts: 1,
                    time_to_pass: None,
                    parts: Vec::new(),
                };
                (index, result)
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

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
