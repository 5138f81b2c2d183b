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
    /// What the probe measured; absent when it could not measure.
    pub observations: Option<Observations>,
    #[serde(rename = "duration_ms", with = "gonogo_probes::ms")]
    pub duration: Duration,
}

/// Who or what started a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// `cli`, `api` or `schedule`.
    pub source: String,
    /// The user or token name, where known.
    pub by: Option<String>,
}

/// One execution of a phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique, sortable by start time: `20261124T101500Z-pre-migration-3fa2`.
    pub id: String,
    pub phase: String,
    pub site: Option<String>,
    pub ods_code: Option<String>,
    pub trigger: Trigger,
    /// The change reference (RFC number) this run belongs to, when given.
    pub change_ref: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    #[serde(rename = "duration_ms", with = "gonogo_probes::ms")]
    pub duration: Duration,
    pub agent_version: String,
    pub host: String,
    pub config_path: String,
    /// True when only some of the phase's checks were run (`--check`).
    pub partial: bool,
    pub verdict: Verdict,
    /// Why the verdict is not GO.
    pub blocking: Vec<String>,
    /// Advisory checks that did not pass.
    pub warnings: Vec<String>,
    pub checks: Vec<CheckResult>,
}

impl RunRecord {
    /// Assemble the record of a finished phase run and decide its verdict.
    pub fn finish(
        config: &Config,
        phase: &str,
        trigger: Trigger,
        partial: bool,
        started: SystemTime,
        checks: Vec<CheckResult>,
    ) -> RunRecord {
        let finished = SystemTime::now();
        let summaries: Vec<CheckSummary<'_>> =
            checks.iter().map(|c| CheckSummary { name: &c.name, required: c.required, outcome: c.outcome }).collect();
        let pv = verdict::phase_verdict(&summaries);
        RunRecord {
            id: new_id(started, phase),
            phase: phase.to_owned(),
            site: config.site.name.clone(),
            ods_code: config.site.ods_code.clone(),
            trigger,
            change_ref: None,
            started_at: humantime::format_rfc3339_millis(started).to_string(),
            finished_at: humantime::format_rfc3339_millis(finished).to_string(),
            duration: finished.duration_since(started).unwrap_or_default(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: hostname(),
            config_path: config.path.display().to_string(),
            partial,
            verdict: pv.verdict,
            blocking: pv.blocking,
            warnings: pv.warnings,
            checks,
        }
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

/// `20261124T101500Z-pre-migration-3fa2`: start time to the second, phase, 16 random bits against collisions.
fn new_id(started: SystemTime, phase: &str) -> String {
    let stamp: String =
        humantime::format_rfc3339_seconds(started).to_string().chars().filter(|c| !matches!(c, '-' | ':')).collect();
    let nanos = started.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let salt = RandomState::new().hash_one((nanos, std::process::id())) as u16;
    format!("{stamp}-{phase}-{salt:04x}")
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
        assert!(id.starts_with("20270115T080000Z-pre-migration-"), "{id}");
        assert_eq!(id.len(), "20270115T080000Z-pre-migration-".len() + 4);
    }
}
