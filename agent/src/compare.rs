//! Baseline comparison: a run of post-migration (or regression, rollback-verify) against the latest finished
//! run of its baseline phase. Per check: `ok`, `regression` (pass → fail, or drift beyond a tolerance),
//! `pre-existing` (fail → fail), `fixed` (fail → pass), `new` (no such check in the baseline).
//!
//! Invariant: pure, like the verdict engine. No I/O, no clock; the caller finds the baseline run.

use std::fmt;

use gonogo_config::{Compare, Increase};
use gonogo_probes::Observations;
use serde::{Deserialize, Serialize};

use crate::run::{CheckResult, RunRecord};
use crate::verdict::{Outcome, fmt_duration, fmt_ratio};

/// What became of a check since the baseline run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompareStatus {
    /// As in the baseline (passing, or undecided), no tolerance exceeded.
    Ok,
    /// Broken by the change: passed (or was undecided) in the baseline and fails now, or drifted beyond a
    /// tolerance. Roll back.
    Regression,
    /// Failed in the baseline and fails now: not caused by the change. Investigate, do not roll back.
    PreExisting,
    /// Failed in the baseline and passes now.
    Fixed,
    /// Not in the baseline run.
    New,
}

impl CompareStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareStatus::Ok => "ok",
            CompareStatus::Regression => "regression",
            CompareStatus::PreExisting => "pre-existing",
            CompareStatus::Fixed => "fixed",
            CompareStatus::New => "new",
        }
    }
}

impl fmt::Display for CompareStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measured difference between the baseline and now, against its configured tolerance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// `rtt_p95`, `loss`, `answers`, `cert` or `status`.
    pub what: String,
    pub baseline: String,
    pub now: String,
    /// `+20ms`, `+25%`, `unchanged`.
    pub tolerance: String,
    pub exceeded: bool,
}

/// One check compared with the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckComparison {
    pub name: String,
    pub status: CompareStatus,
    pub baseline_outcome: Option<Outcome>,
    pub outcome: Outcome,
    /// Every tolerance the check configures, exceeded or not.
    pub drift: Vec<Drift>,
}

impl CheckComparison {
    /// "rtt_p95 3.1ms → 45.0ms (tolerance +20ms)" for each exceeded drift.
    pub fn exceeded(&self) -> Vec<String> {
        self.drift
            .iter()
            .filter(|d| d.exceeded)
            .map(|d| format!("{} {} → {} (tolerance {})", d.what, d.baseline, d.now, d.tolerance))
            .collect()
    }
}

/// A run compared with its baseline run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline_id: String,
    pub baseline_phase: String,
    pub baseline_finished_at: Option<String>,
    pub checks: Vec<CheckComparison>,
    pub regressions: usize,
    pub preexisting: usize,
    pub fixed: usize,
    pub new: usize,
}

impl Comparison {
    /// The comparison of the check named `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckComparison> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Compare `run` with `baseline`; `rules` gives each check's tolerances (by name; `None`: none configured).
pub fn compare(baseline: &RunRecord, run: &RunRecord, rules: &dyn Fn(&str) -> Option<Compare>) -> Comparison {
    let checks: Vec<CheckComparison> = run
        .checks
        .iter()
        .map(|now| {
            let before = baseline.checks.iter().find(|b| b.name == now.name);
            let drift = match (before, rules(&now.name)) {
                (Some(b), Some(rules)) => drift(b, now, &rules),
                _ => Vec::new(),
            };
            let status = match (before.map(|b| b.outcome), now.outcome) {
                (None, _) => CompareStatus::New,
                (Some(Outcome::Fail), Outcome::Fail) => CompareStatus::PreExisting,
                (Some(_), Outcome::Fail) => CompareStatus::Regression,
                (Some(Outcome::Fail), Outcome::Pass) => CompareStatus::Fixed,
                (Some(_), _) if drift.iter().any(|d| d.exceeded) => CompareStatus::Regression,
                (Some(_), _) => CompareStatus::Ok,
            };
            CheckComparison {
                name: now.name.clone(),
                status,
                baseline_outcome: before.map(|b| b.outcome),
                outcome: now.outcome,
                drift,
            }
        })
        .collect();
    let count = |s: CompareStatus| checks.iter().filter(|c| c.status == s).count();
    Comparison {
        baseline_id: baseline.id.clone(),
        baseline_phase: baseline.phase.clone(),
        baseline_finished_at: baseline.finished_at.clone(),
        regressions: count(CompareStatus::Regression),
        preexisting: count(CompareStatus::PreExisting),
        fixed: count(CompareStatus::Fixed),
        new: count(CompareStatus::New),
        checks,
    }
}

fn p95(obs: Option<&Observations>) -> Option<std::time::Duration> {
    match obs? {
        Observations::Icmp(o) => o.rtt.map(|r| r.p95),
        Observations::Tcp(o) => o.connect.map(|r| r.p95),
        _ => None,
    }
}

fn normalised_answers(obs: Option<&Observations>) -> Option<Vec<String>> {
    match obs? {
        Observations::Dns(o) if o.rcode.is_some() => {
            let mut a: Vec<String> = o.answers.iter().map(|s| s.trim_end_matches('.').to_ascii_lowercase()).collect();
            a.sort();
            a.dedup();
            Some(a)
        }
        _ => None,
    }
}

/// Every tolerance `rules` sets, measured between the two results (when both measured it).
fn drift(before: &CheckResult, now: &CheckResult, rules: &Compare) -> Vec<Drift> {
    let (b, n) = (before.main_observations(), now.main_observations());
    let mut out = Vec::new();
    if let (Some(limit), Some(bp), Some(np)) = (rules.rtt_p95_max_increase, p95(b), p95(n)) {
        let (tolerance, exceeded) = match limit {
            Increase::Absolute(d) => (format!("+{}", fmt_duration(d)), np > bp + d),
            Increase::Percent(p) => (format!("+{p}%"), np.as_secs_f64() > bp.as_secs_f64() * (1.0 + p / 100.0)),
        };
        out.push(Drift {
            what: "rtt_p95".into(),
            baseline: fmt_duration(bp),
            now: fmt_duration(np),
            tolerance,
            exceeded,
        });
    }
    if let (Some(limit), Some(Observations::Icmp(bo)), Some(Observations::Icmp(no))) = (rules.loss_max_increase, b, n) {
        out.push(Drift {
            what: "loss".into(),
            baseline: fmt_ratio(bo.loss),
            now: fmt_ratio(no.loss),
            tolerance: format!("+{}", fmt_ratio(limit)),
            exceeded: no.loss > bo.loss + limit + f64::EPSILON,
        });
    }
    if rules.answers_unchanged
        && let (Some(ba), Some(na)) = (normalised_answers(b), normalised_answers(n))
    {
        out.push(Drift {
            what: "answers".into(),
            baseline: ba.join(" "),
            now: na.join(" "),
            tolerance: "unchanged".into(),
            exceeded: ba != na,
        });
    }
    if rules.cert_unchanged
        && let (Some(Observations::Tls(bt)), Some(Observations::Tls(nt))) = (b, n)
        && let (Some(bl), Some(nl)) = (bt.leaf(), nt.leaf())
    {
        let short = |s: &str| s.chars().take(16).collect::<String>();
        out.push(Drift {
            what: "cert".into(),
            baseline: format!("sha256 {}… ({})", short(&bl.sha256), bl.subject),
            now: format!("sha256 {}… ({})", short(&nl.sha256), nl.subject),
            tolerance: "unchanged".into(),
            exceeded: bl.sha256 != nl.sha256,
        });
    }
    if rules.status_unchanged
        && let (Some(Observations::Http(bh)), Some(Observations::Http(nh))) = (b, n)
        && let (Some(bs), Some(ns)) = (bh.status, nh.status)
    {
        out.push(Drift {
            what: "status".into(),
            baseline: bs.to_string(),
            now: ns.to_string(),
            tolerance: "unchanged".into(),
            exceeded: bs != ns,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use gonogo_probes::RttStats;
    use gonogo_probes::icmp::IcmpObservations;

    use super::*;
    use crate::run::{CheckResult, Trigger};
    use crate::verdict::{self, Baseline, CheckSummary, Verdict};

    fn config() -> gonogo_config::Config {
        let text = "[[check]]\nname = \"x\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"pre-migration\"]\n";
        gonogo_config::parse(text, Path::new("t.toml")).expect("config")
    }

    fn icmp_result(name: &str, outcome: Outcome, p95_ms: u64, loss: f64) -> CheckResult {
        let rtt = Duration::from_millis(p95_ms);
        CheckResult {
            name: name.into(),
            kind: "icmp".into(),
            target: "10.0.0.1".into(),
            required: true,
            outcome,
            reasons: vec![],
            expectations: vec![],
            observations: Some(Observations::Icmp(IcmpObservations {
                address: None,
                sent: 10,
                received: 10,
                loss,
                rtt: Some(RttStats { min: rtt, mean: rtt, p50: rtt, p95: rtt, max: rtt, jitter: Duration::ZERO }),
                samples_ms: vec![],
                failure: None,
                fallback_tcp: None,
                too_big: None,
                detail: None,
            })),
            duration: Duration::ZERO,
            attempts: 1,
            time_to_pass: None,
            parts: vec![],
        }
    }

    fn run_of(phase: &str, checks: Vec<CheckResult>) -> RunRecord {
        let mut r = RunRecord::new(&config(), phase, Trigger { source: "cli".into(), by: None }, None, false);
        r.start();
        r.finish(checks);
        r
    }

    fn status_of(before: Option<Outcome>, now: Outcome) -> CompareStatus {
        let base = run_of("pre-migration", before.map(|o| icmp_result("c", o, 5, 0.0)).into_iter().collect());
        let run = run_of("post-migration", vec![icmp_result("c", now, 5, 0.0)]);
        compare(&base, &run, &|_| None).checks[0].status
    }

    #[test]
    fn every_transition() {
        use CompareStatus::*;
        use Outcome::*;
        let table = [
            (Some(Pass), Pass, Ok),
            (Some(Pass), Fail, Regression),
            (Some(Fail), Fail, PreExisting),
            (Some(Fail), Pass, Fixed),
            (Some(Inconclusive), Fail, Regression),
            (Some(Error), Fail, Regression),
            (Some(Pass), Inconclusive, Ok),
            (Some(Fail), Error, Ok),
            (None, Pass, New),
            (None, Fail, New),
        ];
        for (before, now, want) in table {
            assert_eq!(status_of(before, now), want, "{before:?} → {now:?}");
        }
    }

    fn drift_of(rules: Compare, before: (u64, f64), now: (u64, f64)) -> CheckComparison {
        let base = run_of("pre-migration", vec![icmp_result("c", Outcome::Pass, before.0, before.1)]);
        let run = run_of("post-migration", vec![icmp_result("c", Outcome::Pass, now.0, now.1)]);
        compare(&base, &run, &|_| Some(rules.clone())).checks.remove(0)
    }

    #[test]
    fn rtt_tolerance_absolute_and_percent_both_ways() {
        let abs =
            Compare { rtt_p95_max_increase: Some(Increase::Absolute(Duration::from_millis(20))), ..Default::default() };
        let within = drift_of(abs.clone(), (10, 0.0), (30, 0.0));
        assert_eq!((within.status, within.drift[0].exceeded), (CompareStatus::Ok, false));
        let beyond = drift_of(abs, (10, 0.0), (31, 0.0));
        assert_eq!(beyond.status, CompareStatus::Regression);
        assert_eq!(beyond.exceeded(), ["rtt_p95 10.0ms → 31.0ms (tolerance +20.0ms)"]);
        let pct = Compare { rtt_p95_max_increase: Some(Increase::Percent(25.0)), ..Default::default() };
        assert_eq!(drift_of(pct.clone(), (20, 0.0), (25, 0.0)).status, CompareStatus::Ok);
        assert_eq!(drift_of(pct, (20, 0.0), (26, 0.0)).status, CompareStatus::Regression);
    }

    #[test]
    fn loss_tolerance_both_ways() {
        let rules = Compare { loss_max_increase: Some(0.1), ..Default::default() };
        assert_eq!(drift_of(rules.clone(), (5, 0.0), (5, 0.1)).status, CompareStatus::Ok);
        let d = drift_of(rules, (5, 0.0), (5, 0.2));
        assert_eq!(d.status, CompareStatus::Regression);
        assert_eq!(d.exceeded(), ["loss 0% → 20% (tolerance +10%)"]);
    }

    #[test]
    fn no_tolerance_no_drift_and_failures_are_not_drift() {
        assert!(drift_of(Compare::default(), (5, 0.0), (500, 0.9)).drift.is_empty());
        assert_eq!(drift_of(Compare::default(), (5, 0.0), (500, 0.9)).status, CompareStatus::Ok);
    }

    fn verdict_with(before: &[(&str, Outcome)], now: &[(&str, Outcome, bool)], blocks: bool) -> verdict::PhaseVerdict {
        let base = run_of("pre-migration", before.iter().map(|(n, o)| icmp_result(n, *o, 5, 0.0)).collect());
        let mut checks: Vec<CheckResult> = now.iter().map(|(n, o, _)| icmp_result(n, *o, 5, 0.0)).collect();
        for (c, (_, _, required)) in checks.iter_mut().zip(now) {
            c.required = *required;
        }
        let run = run_of("post-migration", checks);
        let cmp = compare(&base, &run, &|_| None);
        let summaries: Vec<CheckSummary<'_>> = run
            .checks
            .iter()
            .map(|c| CheckSummary { name: &c.name, required: c.required, outcome: c.outcome })
            .collect();
        verdict::phase_verdict_with(&summaries, Some(Baseline { comparison: &cmp, blocks_preexisting: &|_| blocks }))
    }

    #[test]
    fn a_regression_blocks_and_a_preexisting_failure_warns() {
        use Outcome::*;
        let v = verdict_with(&[("a", Pass), ("b", Fail)], &[("a", Fail, true), ("b", Fail, true)], false);
        assert_eq!(v.verdict, Verdict::NoGo);
        assert_eq!(v.blocking.len(), 1, "{v:?}");
        assert!(v.blocking[0].starts_with("required check a regressed"), "{v:?}");
        assert_eq!(v.warnings.len(), 1, "{v:?}");
        assert!(v.warnings[0].contains("required check b fails as it did in baseline run"), "{v:?}");
        // Only the pre-existing failure: GO with a warning.
        let v = verdict_with(&[("a", Pass), ("b", Fail)], &[("a", Pass, true), ("b", Fail, true)], false);
        assert_eq!((v.verdict, v.warnings.len()), (Verdict::Go, 1), "{v:?}");
        // block_preexisting: it blocks after all.
        let v = verdict_with(&[("b", Fail)], &[("b", Fail, true)], true);
        assert_eq!(v.verdict, Verdict::NoGo);
        assert!(v.blocking[0].contains("block_preexisting"), "{v:?}");
        // A new failing check is an ordinary failure.
        let v = verdict_with(&[], &[("n", Fail, true)], false);
        assert_eq!(v.blocking, ["required check n failed"]);
        // Advisory regressions warn.
        let v = verdict_with(&[("a", Pass)], &[("a", Fail, false)], false);
        assert_eq!(v.verdict, Verdict::Go);
        assert!(v.warnings[0].contains("regression since baseline"), "{v:?}");
    }

    #[test]
    fn drift_beyond_tolerance_on_a_passing_required_check_is_no_go() {
        let rules =
            Compare { rtt_p95_max_increase: Some(Increase::Absolute(Duration::from_millis(20))), ..Default::default() };
        let base = run_of("pre-migration", vec![icmp_result("gw", Outcome::Pass, 3, 0.0)]);
        let mut run = run_of("post-migration", vec![icmp_result("gw", Outcome::Pass, 45, 0.0)]);
        run.compare_with(&base, &|_| Some(rules.clone()), &|_| false);
        assert_eq!(run.verdict, Some(Verdict::NoGo));
        assert_eq!(
            run.blocking,
            ["required check gw regressed beyond tolerance: rtt_p95 3.0ms → 45.0ms (tolerance +20.0ms)"]
        );
        let cmp = run.comparison.as_ref().expect("comparison");
        assert_eq!((cmp.regressions, cmp.baseline_id.as_str()), (1, base.id.as_str()));
    }
}
