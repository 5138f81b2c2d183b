//! Gates and decisions: a go/no-go point relies on the latest finished run of each required phase; a decision
//! (sign-off) recorded at a gate carries the run ids and run hashes it relied on.
//!
//! [`evaluate`] is pure: it takes the latest finished run of each phase and the time.

use gonogo_config::Gate;
use serde::{Deserialize, Serialize};

use crate::run::RunRecord;
use crate::verdict::{Verdict, fmt_duration};

/// What a gate relies on for one phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseEvidence {
    pub phase: String,
    /// The latest finished run of the phase (whole, not `--check` partial).
    pub run_id: Option<String>,
    /// SHA-256 of its canonical document.
    pub run_sha256: Option<String>,
    pub finished_at: Option<String>,
    pub verdict: Option<Verdict>,
    /// Seconds since it finished.
    pub age_s: Option<u64>,
    /// True when this phase lets the gate be GO.
    pub ok: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// A gate's evaluation: GO only when every required phase's latest run is GO and fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateEvaluation {
    pub gate: String,
    pub description: Option<String>,
    /// `GO` or `NO-GO`.
    pub verdict: Verdict,
    pub max_age_s: u64,
    pub phases: Vec<PhaseEvidence>,
    /// One per missing, stale or failing phase.
    pub reasons: Vec<String>,
}

fn unix_of(rfc3339: &str) -> Option<i64> {
    humantime::parse_rfc3339(rfc3339)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

/// Evaluate `gate` at `now_unix`; `latest` gives the latest finished, whole run of a phase.
pub fn evaluate(gate: &Gate, latest: &dyn Fn(&str) -> Option<RunRecord>, now_unix: i64) -> GateEvaluation {
    let max_age = gate.max_age.as_secs();
    let phases: Vec<PhaseEvidence> = gate
        .requires
        .iter()
        .map(|phase| {
            let Some(run) = latest(phase) else {
                return PhaseEvidence {
                    phase: phase.clone(),
                    run_id: None,
                    run_sha256: None,
                    finished_at: None,
                    verdict: None,
                    age_s: None,
                    ok: false,
                    reason: Some(format!("no finished run of phase {phase}: run it first")),
                };
            };
            let age = run.finished_at.as_deref().and_then(unix_of).map(|t| now_unix.saturating_sub(t).max(0) as u64);
            let reason = match (run.verdict, age) {
                (_, Some(a)) if a > max_age => Some(format!(
                    "the latest run of {phase} ({}) finished {} ago, more than max_age {}: run it again",
                    run.id,
                    fmt_duration(std::time::Duration::from_secs(a)),
                    fmt_duration(gate.max_age)
                )),
                (_, None) => Some(format!("the latest run of {phase} ({}) has no finish time", run.id)),
                (Some(Verdict::Go), _) => None,
                (v, _) => Some(format!(
                    "the latest run of {phase} ({}) is {}",
                    run.id,
                    v.map_or("not decided", Verdict::as_str)
                )),
            };
            PhaseEvidence {
                phase: phase.clone(),
                run_sha256: crate::journal::run_sha256(&run).ok(),
                finished_at: run.finished_at.clone(),
                verdict: run.verdict,
                age_s: age,
                ok: reason.is_none(),
                reason,
                run_id: Some(run.id),
            }
        })
        .collect();
    let reasons: Vec<String> = phases.iter().filter_map(|p| p.reason.clone()).collect();
    GateEvaluation {
        gate: gate.name.clone(),
        description: gate.description.clone(),
        verdict: if reasons.is_empty() { Verdict::Go } else { Verdict::NoGo },
        max_age_s: max_age,
        phases,
        reasons,
    }
}

/// What is decided at a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    Go,
    NoGo,
    Rollback,
    Investigate,
}

impl DecisionKind {
    /// As written in the API and the journal: `go`, `no-go`, `rollback`, `investigate`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Go => "go",
            DecisionKind::NoGo => "no-go",
            DecisionKind::Rollback => "rollback",
            DecisionKind::Investigate => "investigate",
        }
    }
}

/// A sign-off request (API body or CLI flags).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub gate: String,
    pub decision: DecisionKind,
    pub name: String,
    pub role: String,
    pub organisation: String,
    #[serde(default)]
    pub note: Option<String>,
    /// The run ids the signer looked at; when given, a newer run of a required phase makes the evidence stale.
    #[serde(default)]
    pub runs: Option<Vec<String>>,
    /// A `go` at a gate that is not GO needs a reason, recorded as an override.
    #[serde(default)]
    pub override_reason: Option<String>,
}

/// A recorded decision (the journal entry's data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub gate: String,
    pub decision: DecisionKind,
    pub name: String,
    pub role: String,
    pub organisation: String,
    pub note: Option<String>,
    pub at: String,
    /// The gate's verdict when the decision was made.
    pub gate_verdict: Verdict,
    /// The runs relied on: phase, id, SHA-256.
    pub evidence: Vec<PhaseEvidence>,
    pub override_reason: Option<String>,
    /// How it was recorded: `api` (and by which token) or `cli`.
    pub via: String,
}

/// Why a decision was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("{0}")]
    Invalid(String),
    #[error("the evidence is stale: {0}")]
    Stale(String),
    #[error("gate {gate} is NO-GO ({reasons}); a go decision needs an override reason, which is recorded")]
    NotGo { gate: String, reasons: String },
}

/// Check a request against the gate's evaluation now and build the decision to record.
pub fn decide(
    req: &DecisionRequest,
    eval: &GateEvaluation,
    at: String,
    via: String,
) -> Result<Decision, DecisionError> {
    for (field, value) in [("name", &req.name), ("role", &req.role), ("organisation", &req.organisation)] {
        if value.trim().is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
            return Err(DecisionError::Invalid(format!("{field}: 1 to 200 printable characters")));
        }
    }
    if req.note.as_ref().is_some_and(|n| n.len() > 4000) {
        return Err(DecisionError::Invalid("note: at most 4000 characters".to_owned()));
    }
    // Stale: a required phase's evidence is older than max_age (whatever the decision), or the signer looked at
    // other runs than the latest.
    let stale: Vec<&str> = eval
        .phases
        .iter()
        .filter(|p| p.age_s.is_some_and(|a| a > eval.max_age_s))
        .filter_map(|p| p.reason.as_deref())
        .collect();
    if !stale.is_empty() {
        return Err(DecisionError::Stale(stale.join("; ")));
    }
    if let Some(seen) = &req.runs {
        let newer: Vec<String> = eval
            .phases
            .iter()
            .filter(|p| p.run_id.as_ref().is_some_and(|id| !seen.contains(id)))
            .map(|p| format!("phase {} has a newer run {}", p.phase, p.run_id.as_deref().unwrap_or("?")))
            .collect();
        if !newer.is_empty() {
            return Err(DecisionError::Stale(format!("{}: review it and decide again", newer.join("; "))));
        }
    }
    let override_reason = req.override_reason.as_ref().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if req.decision == DecisionKind::Go && eval.verdict != Verdict::Go && override_reason.is_none() {
        return Err(DecisionError::NotGo { gate: eval.gate.clone(), reasons: eval.reasons.join("; ") });
    }
    Ok(Decision {
        gate: eval.gate.clone(),
        decision: req.decision,
        name: req.name.trim().to_owned(),
        role: req.role.trim().to_owned(),
        organisation: req.organisation.trim().to_owned(),
        note: req.note.clone(),
        at,
        gate_verdict: eval.verdict,
        evidence: eval.phases.clone(),
        override_reason: if req.decision == DecisionKind::Go && eval.verdict != Verdict::Go {
            override_reason
        } else {
            None
        },
        via,
    })
}

/// Evaluate gate `name` of `config` now against the runs in `store`.
pub fn evaluate_in(
    config: &gonogo_config::Config,
    store: &crate::store::Store,
    name: &str,
    now_unix: i64,
) -> Result<GateEvaluation, String> {
    let gate = config.gates.get(name).ok_or_else(|| {
        let known: Vec<&str> = config.gates.keys().map(String::as_str).collect();
        format!(
            "no gate {name:?} in {}; gates: {}",
            config.path.display(),
            if known.is_empty() { "none (add a [gate.NAME] table)".to_owned() } else { known.join(", ") }
        )
    })?;
    let latest = |phase: &str| store.latest_finished(phase).ok().flatten();
    Ok(evaluate(gate, &latest, now_unix))
}

/// The decisions recorded at the gates that rely on `phase` (its runs are their evidence), oldest first.
pub fn decisions_for_phase(config: &gonogo_config::Config, phase: &str) -> Vec<serde_json::Value> {
    let gates: Vec<&str> =
        config.gates.values().filter(|g| g.requires.iter().any(|p| p == phase)).map(|g| g.name.as_str()).collect();
    decisions_at(&config.storage.state_dir, None)
        .into_iter()
        .filter(|e| e.pointer("/data/gate").and_then(|g| g.as_str()).is_some_and(|g| gates.contains(&g)))
        .collect()
}

/// Every gate of `config` evaluated now, as JSON (for the status page).
pub fn evaluate_all(
    config: &gonogo_config::Config,
    store: &crate::store::Store,
    now_unix: i64,
) -> Vec<serde_json::Value> {
    config
        .gates
        .keys()
        .filter_map(|g| evaluate_in(config, store, g, now_unix).ok())
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect()
}

/// The decisions recorded at `gate` in the journal of `state_dir`, oldest first (their journal entries).
pub fn decisions_at(state_dir: &std::path::Path, gate: Option<&str>) -> Vec<serde_json::Value> {
    let path = state_dir.join(crate::journal::FILE_NAME);
    let Ok((entries, _)) = crate::journal::read_entries(&path, None, usize::MAX) else { return Vec::new() };
    entries
        .into_iter()
        .filter(|e| e.kind == crate::journal::Kind::Decision)
        .filter(|e| gate.is_none_or(|g| e.data.get("gate").and_then(|v| v.as_str()) == Some(g)))
        .filter_map(|e| serde_json::to_value(&e).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::run::{RunStatus, Trigger};

    const NOW: i64 = 1_800_000_000;

    fn gate() -> Gate {
        Gate {
            name: "go-live".into(),
            description: None,
            requires: vec!["commissioning".into(), "pre-migration".into()],
            max_age: Duration::from_secs(4 * 3600),
        }
    }

    fn run(phase: &str, verdict: Verdict, finished_ago: i64) -> RunRecord {
        let text = "[[check]]\nname = \"x\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"commissioning\"]\n";
        let config = gonogo_config::parse(text, Path::new("t.toml")).expect("config");
        let mut r = RunRecord::new(&config, phase, Trigger { source: "cli".into(), by: None }, None, false);
        r.status = RunStatus::Finished;
        r.verdict = Some(verdict);
        let t = std::time::UNIX_EPOCH + Duration::from_secs((NOW - finished_ago) as u64);
        r.finished_at = Some(humantime::format_rfc3339_millis(t).to_string());
        r
    }

    fn eval(runs: &[RunRecord]) -> GateEvaluation {
        let latest = |p: &str| runs.iter().find(|r| r.phase == p).cloned();
        evaluate(&gate(), &latest, NOW)
    }

    #[test]
    fn fresh_go_runs_make_the_gate_go() {
        let e = eval(&[run("commissioning", Verdict::Go, 60), run("pre-migration", Verdict::Go, 3600)]);
        assert_eq!(e.verdict, Verdict::Go);
        assert!(e.reasons.is_empty());
        assert!(e.phases.iter().all(|p| p.ok && p.run_sha256.as_ref().is_some_and(|h| h.len() == 64)));
    }

    #[test]
    fn missing_stale_and_failing_phases_each_give_a_reason() {
        let e = eval(&[run("commissioning", Verdict::Go, 60)]);
        assert_eq!(e.verdict, Verdict::NoGo);
        assert_eq!(e.reasons, ["no finished run of phase pre-migration: run it first"]);
        let e = eval(&[run("commissioning", Verdict::Go, 5 * 3600), run("pre-migration", Verdict::NoGo, 60)]);
        assert_eq!(e.reasons.len(), 2, "{:?}", e.reasons);
        assert!(
            e.reasons[0].contains("finished 5.00h ago") || e.reasons[0].contains("more than max_age"),
            "{:?}",
            e.reasons
        );
        assert!(e.reasons[1].ends_with("is NO-GO"), "{:?}", e.reasons);
    }

    fn request(decision: DecisionKind) -> DecisionRequest {
        DecisionRequest {
            gate: "go-live".into(),
            decision,
            name: "A. Lead".into(),
            role: "Change lead".into(),
            organisation: "Example Trust".into(),
            note: None,
            runs: None,
            override_reason: None,
        }
    }

    #[test]
    fn decisions_are_refused_on_stale_evidence_and_go_needs_a_go_gate_or_an_override() {
        let fresh = eval(&[run("commissioning", Verdict::Go, 60), run("pre-migration", Verdict::Go, 60)]);
        let d = decide(&request(DecisionKind::Go), &fresh, "t".into(), "cli".into()).expect("recorded");
        assert_eq!((d.gate_verdict, d.evidence.len(), d.override_reason), (Verdict::Go, 2, None));

        let stale = eval(&[run("commissioning", Verdict::Go, 5 * 3600), run("pre-migration", Verdict::Go, 60)]);
        for kind in [DecisionKind::Go, DecisionKind::Rollback] {
            assert!(matches!(decide(&request(kind), &stale, "t".into(), "cli".into()), Err(DecisionError::Stale(_))));
        }
        // The signer looked at an older run than the latest: stale.
        let mut seen = request(DecisionKind::Go);
        seen.runs = Some(vec!["older-run".into()]);
        let err = decide(&seen, &fresh, "t".into(), "cli".into()).expect_err("stale");
        assert!(err.to_string().contains("has a newer run"), "{err}");

        let failing = eval(&[run("commissioning", Verdict::Go, 60), run("pre-migration", Verdict::NoGo, 60)]);
        let err = decide(&request(DecisionKind::Go), &failing, "t".into(), "cli".into()).expect_err("not go");
        assert!(matches!(err, DecisionError::NotGo { .. }), "{err}");
        // A no-go or rollback at a NO-GO gate is fine; a go needs an override, recorded as such.
        assert!(decide(&request(DecisionKind::NoGo), &failing, "t".into(), "cli".into()).is_ok());
        let mut overridden = request(DecisionKind::Go);
        overridden.override_reason = Some("pre-migration failure is a known test artefact (INC123)".into());
        let d = decide(&overridden, &failing, "t".into(), "cli".into()).expect("override");
        assert_eq!(d.override_reason.as_deref(), Some("pre-migration failure is a known test artefact (INC123)"));
        let mut blank = request(DecisionKind::Go);
        blank.name = " ".into();
        assert!(matches!(decide(&blank, &fresh, "t".into(), "cli".into()), Err(DecisionError::Invalid(_))));
    }
}
