//! A run: one execution of a phase, with every check's outcome, observations and the verdict. This is the
//! document `gonogo run --format json` prints (and, later, what the run store keeps as evidence).

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime};

use gonogo_config::Config;
use gonogo_probes::Observations;
use serde::{Deserialize, Serialize};

use crate::verdict::{self, CheckSummary, Evaluation, Outcome, Verdict};

/// The outcome of one check in a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: String,
    pub target: String,
    pub required: bool,
    pub outcome: Outcome,
    /// Why the outcome is not `pass`, one sentence each.
    pub reasons: Vec<String>,
    /// Every expectation evaluated, met or not: expected vs observed.
    pub expectations: Vec<Evaluation>,
    /// What the probe measured; absent when it could not measure, or when the check has `parts`.
    pub observations: Option<Observations>,
    /// Time of the last attempt.
    #[serde(rename = "duration_ms", with = "gonogo_probes::ms")]
    pub duration: Duration,
    /// How many times the check ran (1, or more with `retries` or a phase's `settle` window).
    #[serde(default = "one")]
    pub attempts: u32,
    /// When it passed after more than one attempt: from the start of the first to the end of the passing one.
    #[serde(
        rename = "time_to_pass_ms",
        default,
        with = "gonogo_probes::ms::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_to_pass: Option<Duration>,
    /// One per address or server when the check covers several (`ip = "both"` or `"all"`, `servers = […]`);
    /// the check's outcome is the worst of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartResult>,
}

fn one() -> u32 {
    1
}

/// One address or server of a check that covers several.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartResult {
    /// `IPv4 127.0.0.1`, `IPv6 ::1`, `server 155.231.231.1:53`.
    pub label: String,
    pub target: String,
    pub outcome: Outcome,
    pub reasons: Vec<String>,
    pub expectations: Vec<Evaluation>,
    pub observations: Option<Observations>,
}

impl CheckResult {
    /// The observations to show for the check as a whole: its own, else those of its first part that did not
    /// pass, else of its first part.
    pub fn main_observations(&self) -> Option<&Observations> {
        self.observations.as_ref().or_else(|| {
            self.parts
                .iter()
                .find(|p| p.outcome != Outcome::Pass)
                .or(self.parts.first())
                .and_then(|p| p.observations.as_ref())
        })
    }
}

/// Who or what started a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// `cli`, `api` or `schedule`.
    pub source: String,
    /// The user or token name, where known.
    pub by: Option<String>,
}

/// Where a run is in its life. Every run ends `finished`, `cancelled` or `interrupted`; none stays `running`
/// across a restart (the store marks those `interrupted` at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Finished,
    Cancelled,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// True once nothing more will happen to the run.
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Finished | RunStatus::Cancelled | RunStatus::Interrupted)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One execution of a phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique, sortable by creation time: `20261124T101500123Z-pre-migration-3fa2`.
    pub id: String,
    pub phase: String,
    pub status: RunStatus,
    pub site: Option<String>,
    pub ods_code: Option<String>,
    pub trigger: Trigger,
    /// The change reference (RFC number) this run belongs to, when given.
    pub change_ref: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// From start to end; zero until then.
    #[serde(rename = "duration_ms", with = "gonogo_probes::ms")]
    pub duration: Duration,
    pub agent_version: String,
    pub host: String,
    pub config_path: String,
    /// True when only some of the phase's checks were run (`--check`).
    pub partial: bool,
    /// Decided when the run finishes; `null` for a run that did not finish.
    pub verdict: Option<Verdict>,
    /// Why the verdict is not GO, or why the run did not finish.
    pub blocking: Vec<String>,
    /// Advisory checks that did not pass.
    pub warnings: Vec<String>,
    pub checks: Vec<CheckResult>,
    /// The comparison with the baseline run, for phases that have one (`[phase.X] baseline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<crate::compare::Comparison>,
    /// When the run started, for its duration; not stored.
    #[serde(skip)]
    started: Option<SystemTime>,
}

impl RunRecord {
    /// A new, queued run of `phase`.
    pub fn new(config: &Config, phase: &str, trigger: Trigger, change_ref: Option<String>, partial: bool) -> RunRecord {
        let now = SystemTime::now();
        RunRecord {
            id: new_id(now, phase),
            phase: phase.to_owned(),
            status: RunStatus::Queued,
            site: config.site.name.clone(),
            ods_code: config.site.ods_code.clone(),
            trigger,
            change_ref,
            created_at: rfc3339(now),
            started_at: None,
            finished_at: None,
            duration: Duration::ZERO,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: hostname(),
            config_path: config.path.display().to_string(),
            partial,
            verdict: None,
            blocking: Vec::new(),
            warnings: Vec::new(),
            checks: Vec::new(),
            comparison: None,
            started: None,
        }
    }

    /// The run starts now.
    pub fn start(&mut self) {
        let now = SystemTime::now();
        self.status = RunStatus::Running;
        self.started_at = Some(rfc3339(now));
        self.started = Some(now);
    }

    fn end(&mut self, status: RunStatus) {
        let now = SystemTime::now();
        self.status = status;
        self.finished_at = Some(rfc3339(now));
        self.duration = self.started.and_then(|s| now.duration_since(s).ok()).unwrap_or_default();
    }

    /// The run finished with these results: decide its verdict.
    pub fn finish(&mut self, checks: Vec<CheckResult>) {
        let summaries: Vec<CheckSummary<'_>> =
            checks.iter().map(|c| CheckSummary { name: &c.name, required: c.required, outcome: c.outcome }).collect();
        let pv = verdict::phase_verdict(&summaries);
        self.verdict = Some(pv.verdict);
        self.blocking = pv.blocking;
        self.warnings = pv.warnings;
        self.checks = checks;
        self.end(RunStatus::Finished);
    }

    /// Compare this finished run with `baseline` (tolerances from `rules`, by check name) and decide the verdict
    /// again with the comparison: regressions block, pre-existing failures warn unless `blocks_preexisting`.
    pub fn compare_with(
        &mut self,
        baseline: &RunRecord,
        rules: &dyn Fn(&str) -> Option<gonogo_config::Compare>,
        blocks_preexisting: &dyn Fn(&str) -> bool,
    ) {
        let comparison = crate::compare::compare(baseline, self, rules);
        let summaries: Vec<CheckSummary<'_>> = self
            .checks
            .iter()
            .map(|c| CheckSummary { name: &c.name, required: c.required, outcome: c.outcome })
            .collect();
        let pv = verdict::phase_verdict_with(
            &summaries,
            Some(verdict::Baseline { comparison: &comparison, blocks_preexisting }),
        );
        self.verdict = Some(pv.verdict);
        self.blocking = pv.blocking;
        self.warnings = pv.warnings;
        self.comparison = Some(comparison);
    }

    /// Compare with the phase's baseline run, when the config gives the phase one and such a run exists:
    /// `baseline_run` names one explicitly (it must be a finished run of the baseline phase), otherwise the
    /// latest finished run of the baseline phase. Returns why no comparison was made, if none was.
    pub fn compare_with_baseline(
        &mut self,
        config: &Config,
        store: &crate::store::Store,
        baseline_run: Option<&str>,
    ) -> Option<String> {
        let baseline_phase = config.phases.get(&self.phase).and_then(|p| p.baseline.clone())?;
        let baseline = match baseline_run {
            Some(id) => match store.load(id) {
                Ok(Some(r)) if r.phase == baseline_phase && r.status == RunStatus::Finished => r,
                Ok(Some(r)) => {
                    return Some(format!(
                        "baseline run {id} is a {} run of {}; a finished run of {baseline_phase} is needed",
                        r.status, r.phase
                    ));
                }
                Ok(None) => return Some(format!("baseline run {id} is not in the store")),
                Err(e) => return Some(e.to_string()),
            },
            None => match store.latest_finished(&baseline_phase) {
                Ok(Some(r)) => r,
                Ok(None) => return Some(format!("no finished run of {baseline_phase} to compare with")),
                Err(e) => return Some(e.to_string()),
            },
        };
        let rules = |name: &str| config.checks.iter().find(|c| c.name == name).map(|c| c.compare.clone());
        let blocks = |name: &str| config.checks.iter().any(|c| c.name == name && c.block_preexisting);
        self.compare_with(&baseline, &rules, &blocks);
        None
    }

    /// The run ended without a verdict (`cancelled` or `interrupted`), for the reason given.
    pub fn abandon(&mut self, status: RunStatus, why: String) {
        self.verdict = None;
        self.blocking = vec![why];
        self.end(status);
    }

    /// The exit code `gonogo run` gives for this run: the verdict's, or 2 (not decided) without one.
    pub fn exit_code(&self) -> u8 {
        self.verdict.map(Verdict::exit_code).unwrap_or(2)
    }

    /// How many checks had each outcome, in [`Outcome::ALL`] order, zero counts left out.
    pub fn counts(&self) -> Vec<(Outcome, usize)> {
        Outcome::ALL
            .into_iter()
            .map(|o| (o, self.checks.iter().filter(|c| c.outcome == o).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `20261124T101500123Z-pre-migration-3fa2`: creation time to the millisecond (ids sort by time), the phase, and
/// 16 random bits against collisions.
fn new_id(started: SystemTime, phase: &str) -> String {
    let secs: String = humantime::format_rfc3339_seconds(started)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':' | 'Z'))
        .collect();
    let since_epoch = started.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let salt = RandomState::new().hash_one((since_epoch.subsec_nanos(), std::process::id())) as u16;
    format!("{secs}{:03}Z-{phase}-{salt:04x}", since_epoch.subsec_millis())
}

/// This host's name, from the kernel; `unknown` if unreadable.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_name_the_phase() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let id = new_id(t, "pre-migration");
        assert!(id.starts_with("20270115T080000000Z-pre-migration-"), "{id}");
        assert_eq!(id.len(), "20270115T080000000Z-pre-migration-".len() + 4);
    }
}
