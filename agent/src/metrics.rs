//! Prometheus metrics: what the last finished run of each phase measured, run counters, build and config
//! state, and process metrics, in the text exposition format (version 0.0.4).
//!
//! The agent owns one [`Metrics`] (its own [`Registry`], no global statics) and passes it to the code that
//! starts runs, reloads the config and serves `/metrics`.
//!
//! Per-check and per-phase gauges show the phase's **last finished run** only: each finished run replaces what
//! was shown for its phase, and a series whose check (or statistic, or failure kind) is not in the new run is
//! removed rather than left stale. Runs that end `cancelled` or `interrupted` only count.
//!
//! Storage: those gauges are pre-rendered as exposition text per phase, one block per gauge, replaced wholesale
//! by each finished run, so a scrape is a concatenation and no series can go stale; the [`Registry`] keeps only
//! counters, build and config gauges and process metrics (few series, whatever the number of checks).
//!
//! Invariant: label values are bounded. They are config names (phase, check, kind) or closed sets (outcome,
//! failure kind, verdict, status, statistic, step); never run ids, targets or error text.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use gonogo_probes::Observations;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::run::{CheckResult, RunRecord, RunStatus};
use crate::verdict::{Outcome, Verdict};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metric names: one `pub const` each, reused by tests, dashboards and rules tests.
pub mod names {
    /// Gauge `{phase,check,kind}`: 1 if the check passed, 0 for any other outcome.
    pub const CHECK_SUCCESS: &str = "gonogo_check_success";
    /// Gauge `{phase,check,outcome}`: one series per outcome, 1 for the current one.
    pub const CHECK_OUTCOME: &str = "gonogo_check_outcome";
    /// Gauge `{phase,check}`: how long the check took.
    pub const CHECK_DURATION_SECONDS: &str = "gonogo_check_duration_seconds";
    /// Gauge `{phase,check,failure}`: 1 for the probe's failure kind; only while the check does not pass.
    pub const CHECK_FAILURE: &str = "gonogo_check_failure";
    /// Gauge `{phase,check,stat}`, stat = min|mean|p50|p95|max.
    pub const ICMP_RTT_SECONDS: &str = "gonogo_icmp_rtt_seconds";
    /// Gauge `{phase,check}`: lost / sent.
    pub const ICMP_LOSS_RATIO: &str = "gonogo_icmp_loss_ratio";
    /// Gauge `{phase,check}`.
    pub const ICMP_JITTER_SECONDS: &str = "gonogo_icmp_jitter_seconds";
    /// Gauge `{phase,check}`: echo requests sent in the run.
    pub const ICMP_SENT: &str = "gonogo_icmp_sent";
    /// Gauge `{phase,check}`: echo replies received in the run.
    pub const ICMP_RECEIVED: &str = "gonogo_icmp_received";
    /// Gauge `{phase,check,stat}`, stat = min|mean|max.
    pub const TCP_CONNECT_SECONDS: &str = "gonogo_tcp_connect_seconds";
    /// Gauge `{phase,check}`.
    pub const DNS_LOOKUP_SECONDS: &str = "gonogo_dns_lookup_seconds";
    /// Gauge `{phase,check}`: answer records of the asked type.
    pub const DNS_ANSWERS: &str = "gonogo_dns_answers";
    /// Gauge `{phase,check}`: the leaf certificate's notAfter, Unix seconds.
    pub const TLS_CERT_NOT_AFTER_TIMESTAMP_SECONDS: &str = "gonogo_tls_cert_not_after_timestamp_seconds";
    /// Gauge `{phase,check}`: TCP connect plus TLS handshake.
    pub const TLS_HANDSHAKE_SECONDS: &str = "gonogo_tls_handshake_seconds";
    /// Gauge `{phase,check}`: status code of the final response.
    pub const HTTP_STATUS_CODE: &str = "gonogo_http_status_code";
    /// Gauge `{phase,check,step}`, step = headers|total.
    pub const HTTP_DURATION_SECONDS: &str = "gonogo_http_duration_seconds";
    /// Gauge `{phase,check}`: redirects followed.
    pub const HTTP_REDIRECTS: &str = "gonogo_http_redirects";
    /// Gauge `{phase,check}`: path MTU found by an mtu check, bytes (IP packet size).
    pub const MTU_PATH_BYTES: &str = "gonogo_mtu_path_bytes";
    /// Gauge `{phase,check}`: MTU of the outgoing interface, bytes.
    pub const MTU_INTERFACE_BYTES: &str = "gonogo_mtu_interface_bytes";
    /// Gauge `{phase,verdict}`: one series per verdict, 1 for the current one.
    pub const PHASE_VERDICT: &str = "gonogo_phase_verdict";
    /// Gauge `{phase}`: when the last finished run ended, Unix seconds.
    pub const PHASE_LAST_RUN_TIMESTAMP_SECONDS: &str = "gonogo_phase_last_run_timestamp_seconds";
    /// Gauge `{phase}`: how long the last finished run took.
    pub const PHASE_LAST_RUN_DURATION_SECONDS: &str = "gonogo_phase_last_run_duration_seconds";
    /// Counter `{phase,status}`: runs that ended, by final status.
    pub const RUNS_TOTAL: &str = "gonogo_runs_total";
    /// Counter `{phase,verdict}`: finished runs by verdict.
    pub const PHASE_VERDICTS_TOTAL: &str = "gonogo_phase_verdicts_total";
    /// Gauge `{phase}`: 1 while a run of the phase is in progress.
    pub const RUN_IN_PROGRESS: &str = "gonogo_run_in_progress";
    /// Gauge `{phase}`: the phase's `every` in seconds; only for phases that run on a schedule.
    pub const PHASE_SCHEDULE_SECONDS: &str = "gonogo_phase_schedule_seconds";
    /// Gauge `{version}`: always 1.
    pub const BUILD_INFO: &str = "gonogo_build_info";
    /// Gauge: 1 if the last config (re)load succeeded, 0 if it failed.
    pub const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "gonogo_config_last_reload_successful";
    /// Gauge: when the config was last loaded successfully, Unix seconds.
    pub const CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS: &str =
        "gonogo_config_last_reload_success_timestamp_seconds";
    /// Counter from the process collector (Linux), one of the standard `process_*` metrics.
    pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";

    /// Every `gonogo_*` name above, for tests that check dashboards and alert rules use only exported metrics.
    /// Add each new name here too.
    pub const ALL: &[&str] = &[
        CHECK_SUCCESS,
        CHECK_OUTCOME,
        CHECK_DURATION_SECONDS,
        CHECK_FAILURE,
        ICMP_RTT_SECONDS,
        ICMP_LOSS_RATIO,
        ICMP_JITTER_SECONDS,
        ICMP_SENT,
        ICMP_RECEIVED,
        TCP_CONNECT_SECONDS,
        DNS_LOOKUP_SECONDS,
        DNS_ANSWERS,
        TLS_CERT_NOT_AFTER_TIMESTAMP_SECONDS,
        TLS_HANDSHAKE_SECONDS,
        HTTP_STATUS_CODE,
        HTTP_DURATION_SECONDS,
        HTTP_REDIRECTS,
        MTU_PATH_BYTES,
        MTU_INTERFACE_BYTES,
        PHASE_VERDICT,
        PHASE_LAST_RUN_TIMESTAMP_SECONDS,
        PHASE_LAST_RUN_DURATION_SECONDS,
        RUNS_TOTAL,
        PHASE_VERDICTS_TOTAL,
        RUN_IN_PROGRESS,
        PHASE_SCHEDULE_SECONDS,
        BUILD_INFO,
        CONFIG_LAST_RELOAD_SUCCESSFUL,
        CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
    ];
}

/// Label names, reused by tests and rules.
pub mod labels {
    /// Phase name from the config.
    pub const PHASE: &str = "phase";
    /// Check name from the config.
    pub const CHECK: &str = "check";
    /// Probe kind: icmp, tcp, dns, tls, http.
    pub const KIND: &str = "kind";
    /// Check outcome: pass, fail, inconclusive, error, skipped.
    pub const OUTCOME: &str = "outcome";
    /// Probe failure kind (`gonogo_probes::Failure::as_str`).
    pub const FAILURE: &str = "failure";
    /// Sample statistic: min, mean, p50, p95, max.
    pub const STAT: &str = "stat";
    /// HTTP timing step: headers, total.
    pub const STEP: &str = "step";
    /// Phase verdict: GO, NO-GO, INCONCLUSIVE.
    pub const VERDICT: &str = "verdict";
    /// Final run status: finished, cancelled, interrupted.
    pub const STATUS: &str = "status";
    /// Agent version.
    pub const VERSION: &str = "version";
}

use labels::{CHECK, FAILURE, KIND, OUTCOME, PHASE, STAT, STATUS, STEP, VERDICT, VERSION};

/// Every verdict (the verdict series are written sorted by label value).
const VERDICTS: [Verdict; 3] = [Verdict::Go, Verdict::NoGo, Verdict::Inconclusive];
/// Every status a run can end with.
const FINAL_STATUSES: [RunStatus; 3] = [RunStatus::Finished, RunStatus::Cancelled, RunStatus::Interrupted];

/// The gauges that show one phase's last finished run, rendered per phase by [`PhaseText`] rather than kept in
/// the registry. A new variant goes in [`G::ALL`] too, at the index of its discriminant (tested).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum G {
    CheckSuccess,
    CheckOutcome,
    CheckDuration,
    CheckFailure,
    IcmpRtt,
    IcmpLoss,
    IcmpJitter,
    IcmpSent,
    IcmpReceived,
    TcpConnect,
    DnsLookup,
    DnsAnswers,
    TlsNotAfter,
    TlsHandshake,
    HttpStatus,
    HttpDuration,
    HttpRedirects,
    MtuPath,
    MtuInterface,
    PhaseVerdict,
    PhaseLastRunTimestamp,
    PhaseLastRunDuration,
}

impl G {
    /// Name, HELP text and label names.
    fn spec(self) -> (&'static str, &'static str, &'static [&'static str]) {
        use names::*;
        match self {
            G::CheckSuccess => (
                CHECK_SUCCESS,
                "Whether the check passed in the last finished run of the phase: 1 pass, 0 any other outcome.",
                &[PHASE, CHECK, KIND],
            ),
            G::CheckOutcome => (
                CHECK_OUTCOME,
                "Outcome of the check in the last finished run of the phase: one series per outcome (pass, fail, \
                 inconclusive, error, skipped), 1 for the current outcome and 0 for the others.",
                &[PHASE, CHECK, OUTCOME],
            ),
            G::CheckDuration => (
                CHECK_DURATION_SECONDS,
                "How long the check took in the last finished run of the phase, in seconds.",
                &[PHASE, CHECK],
            ),
            G::CheckFailure => (
                CHECK_FAILURE,
                "1, labelled with the kind of failure the probe saw (timeout, connection_refused, unreachable, \
                 resolve_failed, connection_reset, tls_handshake, certificate_invalid, protocol), for a check that \
                 did not pass in the last finished run of the phase; no series when it passed or saw no failure.",
                &[PHASE, CHECK, FAILURE],
            ),
            G::IcmpRtt => (
                ICMP_RTT_SECONDS,
                "ICMP echo round-trip time over the replies in the last finished run of the phase, in seconds, by \
                 statistic (min, mean, p50, p95, max); no series when no reply came back.",
                &[PHASE, CHECK, STAT],
            ),
            G::IcmpLoss => (
                ICMP_LOSS_RATIO,
                "Fraction of ICMP echo requests that got no reply in the last finished run of the phase, 0 to 1; no \
                 series when none was sent (the target did not resolve).",
                &[PHASE, CHECK],
            ),
            G::IcmpJitter => (
                ICMP_JITTER_SECONDS,
                "ICMP jitter in the last finished run of the phase: mean absolute difference between consecutive \
                 round-trip times, in seconds; no series when no reply came back.",
                &[PHASE, CHECK],
            ),
            G::IcmpSent => {
                (ICMP_SENT, "ICMP echo requests the check sent in the last finished run of the phase.", &[PHASE, CHECK])
            }
            G::IcmpReceived => (
                ICMP_RECEIVED,
                "ICMP echo replies the check received in the last finished run of the phase.",
                &[PHASE, CHECK],
            ),
            G::TcpConnect => (
                TCP_CONNECT_SECONDS,
                "TCP connect time over the successful attempts in the last finished run of the phase, in seconds, \
                 by statistic (min, mean, max); no series when no attempt connected.",
                &[PHASE, CHECK, STAT],
            ),
            G::DnsLookup => (
                DNS_LOOKUP_SECONDS,
                "Time from sending the DNS query to the response (or to giving up) in the last finished run of the \
                 phase, in seconds.",
                &[PHASE, CHECK],
            ),
            G::DnsAnswers => (
                DNS_ANSWERS,
                "Answer records of the asked type in the DNS response in the last finished run of the phase.",
                &[PHASE, CHECK],
            ),
            G::TlsNotAfter => (
                TLS_CERT_NOT_AFTER_TIMESTAMP_SECONDS,
                "Expiry (notAfter) of the leaf certificate the TLS server presented in the last finished run of the \
                 phase, as Unix time in seconds; no series when none was presented.",
                &[PHASE, CHECK],
            ),
            G::TlsHandshake => (
                TLS_HANDSHAKE_SECONDS,
                "TCP connect plus TLS handshake time in the last finished run of the phase, in seconds; no series \
                 when the handshake did not complete.",
                &[PHASE, CHECK],
            ),
            G::HttpStatus => (
                HTTP_STATUS_CODE,
                "HTTP status code of the final response (after redirects) in the last finished run of the phase; no \
                 series when no response came.",
                &[PHASE, CHECK],
            ),
            G::HttpDuration => (
                HTTP_DURATION_SECONDS,
                "HTTP request time in the last finished run of the phase, in seconds, by step: headers (until the \
                 response headers arrived) and total (until the body was read).",
                &[PHASE, CHECK, STEP],
            ),
            G::HttpRedirects => {
                (HTTP_REDIRECTS, "HTTP redirects followed in the last finished run of the phase.", &[PHASE, CHECK])
            }
            G::MtuPath => (MTU_PATH_BYTES, "Path MTU (IP packet bytes) found by an mtu check.", &[PHASE, CHECK]),
            G::MtuInterface => (
                MTU_INTERFACE_BYTES,
                "MTU (bytes) of the interface an mtu check's target is routed through.",
                &[PHASE, CHECK],
            ),
            G::PhaseVerdict => (
                PHASE_VERDICT,
                "Verdict of the last finished run of the phase: one series per verdict (GO, NO-GO, INCONCLUSIVE), 1 \
                 for the current verdict and 0 for the others.",
                &[PHASE, VERDICT],
            ),
            G::PhaseLastRunTimestamp => (
                PHASE_LAST_RUN_TIMESTAMP_SECONDS,
                "When the last finished run of the phase ended, as Unix time in seconds.",
                &[PHASE],
            ),
            G::PhaseLastRunDuration => (
                PHASE_LAST_RUN_DURATION_SECONDS,
                "How long the last finished run of the phase took, in seconds.",
                &[PHASE],
            ),
        }
    }
}

/// How many phase gauges there are (variants of [`G`]).
const GAUGES: usize = 22;

/// The most labels a phase gauge has.
const MAX_LABELS: usize = 3;

impl G {
    /// Every phase gauge, each at its own index (`g as usize`).
    const ALL: [G; GAUGES] = [
        G::CheckSuccess,
        G::CheckOutcome,
        G::CheckDuration,
        G::CheckFailure,
        G::IcmpRtt,
        G::IcmpLoss,
        G::IcmpJitter,
        G::IcmpSent,
        G::IcmpReceived,
        G::TcpConnect,
        G::DnsLookup,
        G::DnsAnswers,
        G::TlsNotAfter,
        G::TlsHandshake,
        G::HttpStatus,
        G::HttpDuration,
        G::HttpRedirects,
        G::MtuPath,
        G::MtuInterface,
        G::PhaseVerdict,
        G::PhaseLastRunTimestamp,
        G::PhaseLastRunDuration,
    ];

    /// The `# HELP` and `# TYPE` lines, as the prometheus crate's `TextEncoder` writes them for a gauge.
    fn header(self) -> String {
        let (name, help, _) = self.spec();
        let mut out = String::with_capacity(2 * name.len() + help.len() + 24);
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        push_escaped(&mut out, help, false);
        out.push_str("\n# TYPE ");
        out.push_str(name);
        out.push_str(" gauge\n");
        out
    }
}

/// One phase's gauges, rendered: block `g as usize` holds every sample line of gauge `g` for the phase, in the
/// order the prometheus crate's `Registry::gather` sorts series (by label values, labels sorted by name); an
/// empty block means the gauge has no series in the phase.
#[derive(Debug, Default)]
struct PhaseText {
    blocks: [String; GAUGES],
}

impl PhaseText {
    /// Replace the blocks with the samples of a finished run. The blocks' buffers are reused, so a phase whose
    /// text stays within its headroom allocates nothing.
    fn render(&mut self, run: &RunRecord) {
        for b in &mut self.blocks {
            b.clear();
        }
        let phase = run.phase.as_str();
        // Series are sorted by label value: checks by name, and within a check by the third label. A repeated
        // check name (never from a valid config) keeps its first result rather than writing a duplicate series.
        let mut checks: Vec<&CheckResult> = run.checks.iter().collect();
        checks.sort_by(|a, b| a.name.cmp(&b.name));
        checks.dedup_by(|a, b| a.name == b.name);
        let mut outcomes = Outcome::ALL;
        outcomes.sort_unstable_by_key(|o| o.as_str());
        for check in checks {
            self.check(phase, check, &outcomes);
        }

        if let Some(current) = run.verdict {
            let mut verdicts = VERDICTS;
            verdicts.sort_unstable_by_key(|v| v.as_str());
            for v in verdicts {
                self.line(G::PhaseVerdict, &[phase, v.as_str()], one_if(v == current));
            }
        }
        match run.finished_at.as_deref().map(humantime::parse_rfc3339) {
            Some(Ok(t)) => {
                if let Some(unix) = unix_seconds(t) {
                    self.line(G::PhaseLastRunTimestamp, &[phase], unix);
                }
            }
            Some(Err(e)) => tracing::warn!("metrics: run {} has an unreadable finish time: {e}", run.id),
            None => {}
        }
        self.line(G::PhaseLastRunDuration, &[phase], run.duration.as_secs_f64());

        // Give back what the first render of a large phase over-allocated while growing, keeping some headroom:
        // durations change their number of digits from run to run, and an exact fit would regrow every time.
        for b in &mut self.blocks {
            if b.capacity() > b.len() + b.len() / 8 + 256 {
                b.shrink_to(b.len() + b.len() / 16);
            }
        }
    }

    /// The sample lines of one check; `outcomes` is [`Outcome::ALL`] sorted by label value.
    fn check(&mut self, phase: &str, check: &CheckResult, outcomes: &[Outcome]) {
        let name = check.name.as_str();
        let pc = [phase, name];

        self.line(G::CheckSuccess, &[phase, name, &check.kind], one_if(check.outcome == Outcome::Pass));
        for &o in outcomes {
            self.line(G::CheckOutcome, &[phase, name, o.as_str()], one_if(o == check.outcome));
        }
        self.line(G::CheckDuration, &pc, check.duration.as_secs_f64());

        let Some(obs) = check.main_observations() else { return };
        if check.outcome != Outcome::Pass
            && let Some(f) = obs.failure()
        {
            self.line(G::CheckFailure, &[phase, name, f.as_str()], 1.0);
        }
        match obs {
            Observations::Icmp(o) => {
                self.line(G::IcmpSent, &pc, f64::from(o.sent));
                self.line(G::IcmpReceived, &pc, f64::from(o.received));
                if o.sent > 0 {
                    self.line(G::IcmpLoss, &pc, o.loss);
                }
                if let Some(rtt) = &o.rtt {
                    let mut stats =
                        [("min", rtt.min), ("mean", rtt.mean), ("p50", rtt.p50), ("p95", rtt.p95), ("max", rtt.max)];
                    stats.sort_unstable_by_key(|s| s.0);
                    for (stat, d) in stats {
                        self.line(G::IcmpRtt, &[phase, name, stat], d.as_secs_f64());
                    }
                    self.line(G::IcmpJitter, &pc, rtt.jitter.as_secs_f64());
                }
            }
            Observations::Tcp(o) => {
                if let Some(c) = &o.connect {
                    let mut stats = [("min", c.min), ("mean", c.mean), ("max", c.max)];
                    stats.sort_unstable_by_key(|s| s.0);
                    for (stat, d) in stats {
                        self.line(G::TcpConnect, &[phase, name, stat], d.as_secs_f64());
                    }
                }
            }
            Observations::Dns(o) => {
                self.line(G::DnsLookup, &pc, o.lookup_time.as_secs_f64());
                self.line(G::DnsAnswers, &pc, o.answers.len() as f64);
            }
            Observations::Tls(o) => {
                if let Some(leaf) = o.leaf() {
                    self.line(G::TlsNotAfter, &pc, leaf.not_after as f64);
                }
                if let Some(d) = o.handshake_time {
                    self.line(G::TlsHandshake, &pc, d.as_secs_f64());
                }
            }
            Observations::Http(o) => {
                if let Some(code) = o.status {
                    self.line(G::HttpStatus, &pc, f64::from(code));
                }
                // "headers" < "total": already in label-value order.
                for (step, d) in [("headers", o.time_to_headers), ("total", o.total_time)] {
                    if let Some(d) = d {
                        self.line(G::HttpDuration, &[phase, name, step], d.as_secs_f64());
                    }
                }
                self.line(G::HttpRedirects, &pc, f64::from(o.redirects));
            }
            Observations::Mtu(o) => {
                if let Some(v) = o.path_mtu {
                    self.line(G::MtuPath, &pc, f64::from(v));
                }
                if let Some(v) = o.interface_mtu {
                    self.line(G::MtuInterface, &pc, f64::from(v));
                }
            }
            // The egress address is judged against the configured networks; as a label it would be unbounded.
            Observations::Egress(_) => {}
        }
    }

    /// Append one sample of gauge `g`: `values` are its label values in the order of `G::spec`'s label names.
    /// Non-finite values are left out (a gauge that cannot be measured has no series).
    fn line(&mut self, g: G, values: &[&str], value: f64) {
        if !value.is_finite() {
            return;
        }
        let (name, _, label_names) = g.spec();
        debug_assert_eq!(values.len(), label_names.len(), "{name}");
        let mut pairs = [("", ""); MAX_LABELS];
        let mut n = 0;
        for (slot, pair) in pairs.iter_mut().zip(label_names.iter().copied().zip(values.iter().copied())) {
            *slot = pair;
            n += 1;
        }
        let pairs = &mut pairs[..n];
        // The prometheus crate writes labels sorted by name.
        pairs.sort_unstable_by_key(|p| p.0);
        write_sample(&mut self.blocks[g as usize], name, pairs, value);
    }
}

/// One sample line as the prometheus crate's `TextEncoder` writes it (no timestamp):
/// `name{label="value",…} value\n`, label values escaped, the value formatted by `f64`'s `Display`.
fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    let mut separator = '{';
    for (label, v) in labels {
        out.push(separator);
        out.push_str(label);
        out.push_str("=\"");
        push_escaped(out, v, true);
        out.push('"');
        separator = ',';
    }
    if !labels.is_empty() {
        out.push('}');
    }
    out.push(' ');
    // Writing to a String cannot fail.
    let _ = write!(out, "{value}");
    out.push('\n');
}

/// Append `v` escaped as the text format (and the prometheus crate) does: `\` as `\\`, newline as `\n`, and
/// with `quote` (label values, not HELP text) `"` as `\"`.
fn push_escaped(out: &mut String, v: &str, quote: bool) {
    let special = |c: char| c == '\\' || c == '\n' || (quote && c == '"');
    let mut rest = v;
    while let Some(i) = rest.find(special) {
        out.push_str(&rest[..i]);
        match rest.as_bytes()[i] {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            _ => out.push_str("\\\""),
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Holds the phase gauges' descriptors in the registry and collects nothing: the gauges are rendered by
/// [`Metrics`] itself, but their names stay taken, so a collector registered later under one of them is refused
/// as before instead of producing a second family with the same name.
struct ReservedNames(Vec<Desc>);

impl Collector for ReservedNames {
    fn desc(&self) -> Vec<&Desc> {
        self.0.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        Vec::new()
    }
}

/// The agent's metrics: its own registry with the counters, build info and (on Linux) process metrics, and the
/// pre-rendered gauges of each phase's last finished run.
///
/// Shareable across threads (`Arc<Metrics>`); every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    runs_total: IntCounterVec,
    verdicts_total: IntCounterVec,
    in_progress: IntGaugeVec,
    schedule: prometheus::GaugeVec,
    reload_successful: Gauge,
    reload_success_timestamp: Gauge,
    /// `# HELP` and `# TYPE` lines of each phase gauge, at index `g as usize`.
    headers: Vec<String>,
    /// The phase gauges sorted by name, to merge them with the registry's families.
    by_name: [G; GAUGES],
    /// Per phase (in name order), the rendered gauges of its last finished run. Also serialises updates of one
    /// phase against each other.
    shown: Mutex<BTreeMap<String, PhaseText>>,
}

impl Metrics {
    /// Registry with every gonogo metric, build info and process metrics (process collector on Linux).
    ///
    /// Fails only if a metric definition is invalid or registered twice (a programming error, caught by tests).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let mut descs = Vec::with_capacity(GAUGES);
        for g in G::ALL {
            let (name, help, labels) = g.spec();
            let labels = labels.iter().map(|l| (*l).to_owned()).collect();
            descs.push(Desc::new(name.to_owned(), help.to_owned(), labels, HashMap::new())?);
        }
        registry.register(Box::new(ReservedNames(descs)))?;
        let headers = G::ALL.iter().map(|g| g.header()).collect();
        let mut by_name = G::ALL;
        by_name.sort_unstable_by_key(|g| g.spec().0);

        let runs_total = IntCounterVec::new(
            Opts::new(
                names::RUNS_TOTAL,
                "Runs of the phase that ended, by final status: finished (a verdict was reached), cancelled, or \
                 interrupted (the agent stopped during the run).",
            ),
            &[PHASE, STATUS],
        )?;
        registry.register(Box::new(runs_total.clone()))?;
        let verdicts_total = IntCounterVec::new(
            Opts::new(names::PHASE_VERDICTS_TOTAL, "Finished runs of the phase, by verdict (GO, NO-GO, INCONCLUSIVE)."),
            &[PHASE, VERDICT],
        )?;
        registry.register(Box::new(verdicts_total.clone()))?;
        let in_progress = IntGaugeVec::new(
            Opts::new(names::RUN_IN_PROGRESS, "1 while a run of the phase is in progress, 0 otherwise."),
            &[PHASE],
        )?;
        registry.register(Box::new(in_progress.clone()))?;
        let schedule = prometheus::GaugeVec::new(
            Opts::new(
                names::PHASE_SCHEDULE_SECONDS,
                "How often the phase runs on its own schedule (its `every`), in seconds; no series for a phase \
                 without one. Alert rules compare a phase's last finished run with this.",
            ),
            &[PHASE],
        )?;
        registry.register(Box::new(schedule.clone()))?;

        let build_info = IntGaugeVec::new(
            Opts::new(names::BUILD_INFO, "Always 1; the version label is the version of the running gonogo agent."),
            &[VERSION],
        )?;
        registry.register(Box::new(build_info.clone()))?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

        let reload_successful = Gauge::with_opts(Opts::new(
            names::CONFIG_LAST_RELOAD_SUCCESSFUL,
            "Whether the last configuration load or reload succeeded: 1 yes, 0 no.",
        ))?;
        registry.register(Box::new(reload_successful.clone()))?;
        let reload_success_timestamp = Gauge::with_opts(Opts::new(
            names::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS,
            "When the configuration was last loaded or reloaded successfully, as Unix time in seconds; 0 until then.",
        ))?;
        registry.register(Box::new(reload_success_timestamp.clone()))?;

        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;

        Ok(Metrics {
            registry,
            runs_total,
            verdicts_total,
            in_progress,
            schedule,
            reload_successful,
            reload_success_timestamp,
            headers,
            by_name,
            shown: Mutex::new(BTreeMap::new()),
        })
    }

    /// The registry, for registering further collectors (e.g. the API server's own metrics).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Record a run that ended; call once per run end.
    ///
    /// Every run with a final status counts in `gonogo_runs_total{phase,status}`; a finished run with a verdict
    /// also counts in `gonogo_phase_verdicts_total`. A **finished** run then replaces everything shown for
    /// `run.phase`: its checks' gauges and the phase verdict, last-run time and duration. Series of checks (or
    /// statistics, failure kinds) the run did not produce are removed. Cancelled and interrupted runs leave the
    /// gauges showing the last finished run; runs not yet ended are ignored.
    ///
    /// A partial run (`--check`) replaces the phase's gauges like any other finished run.
    pub fn observe_run(&self, run: &RunRecord) {
        if !run.status.is_final() {
            return;
        }
        let mut shown = self.lock();
        self.ensure_counters(&run.phase);
        self.runs_total.with_label_values(&[run.phase.as_str(), run.status.as_str()]).inc();
        if run.status != RunStatus::Finished {
            return;
        }
        if let Some(v) = run.verdict {
            self.verdicts_total.with_label_values(&[run.phase.as_str(), v.as_str()]).inc();
        }
        self.show(&mut shown, run);
    }

    /// Show a finished run's gauges **without counting it**: for restoring the last finished run of each phase
    /// from the store at start-up (counting it again would make `gonogo_runs_total` count runs of an earlier
    /// process). Does nothing for a run that did not finish.
    pub fn show_run(&self, run: &RunRecord) {
        if run.status != RunStatus::Finished {
            return;
        }
        let mut shown = self.lock();
        self.ensure_counters(&run.phase);
        self.show(&mut shown, run);
    }

    /// Replace the gauges of `run.phase` with those of `run`: the phase's blocks are rendered again from scratch.
    fn show(&self, shown: &mut BTreeMap<String, PhaseText>, run: &RunRecord) {
        // Out of the map while rendering: should rendering panic, the phase shows nothing rather than half a run.
        let (phase, mut text) =
            shown.remove_entry(run.phase.as_str()).unwrap_or_else(|| (run.phase.clone(), PhaseText::default()));
        text.render(run);
        shown.insert(phase, text);
    }

    /// A run of `phase` started (`true`) or ended with any final status (`false`): `gonogo_run_in_progress`.
    ///
    /// Also creates the phase's run counters at 0, so that the first run's end shows as an increase.
    pub fn set_in_progress(&self, phase: &str, running: bool) {
        let _shown = self.lock();
        self.ensure_counters(phase);
        self.in_progress.with_label_values(&[phase]).set(i64::from(running));
    }

    /// A config load or reload happened at `at_unix` (Unix seconds): `gonogo_config_last_reload_successful` 1 or
    /// 0, and on success `gonogo_config_last_reload_success_timestamp_seconds`. Call it for the initial load too,
    /// or the gauge reads 0 (failed) until the first reload.
    pub fn reload(&self, ok: bool, at_unix: f64) {
        self.reload_successful.set(if ok { 1.0 } else { 0.0 });
        if ok && at_unix.is_finite() {
            self.reload_success_timestamp.set(at_unix);
        }
    }

    /// The phases' schedules from `config` (load or reload): `gonogo_phase_schedule_seconds{phase}` for each phase
    /// with an `every`, and no series for the others (a schedule removed by a reload disappears).
    pub fn set_schedules(&self, config: &gonogo_config::Config) {
        self.schedule.reset();
        for phase in config.phases.values() {
            if let Some(every) = phase.every {
                self.schedule.with_label_values(&[phase.name.as_str()]).set(every.as_secs_f64());
            }
        }
    }

    /// Forget a phase entirely (a reload removed it from the config): every series with this phase label,
    /// counters included, disappears.
    pub fn forget_phase(&self, phase: &str) {
        let mut shown = self.lock();
        shown.remove(phase);
        let _ = self.in_progress.remove_label_values(&[phase]);
        for s in FINAL_STATUSES {
            let _ = self.runs_total.remove_label_values(&[phase, s.as_str()]);
        }
        for v in VERDICTS {
            let _ = self.verdicts_total.remove_label_values(&[phase, v.as_str()]);
        }
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4), families sorted by name, each with
    /// its `# HELP` and `# TYPE` once; see [`CONTENT_TYPE`].
    ///
    /// The registry's families (counters, build and config gauges, process metrics, collectors others registered)
    /// are encoded by the prometheus crate; the phase gauges are merged in from their pre-rendered blocks, phases
    /// in name order. A family without series is left out.
    pub fn encode(&self) -> String {
        // The registry's families, encoded outside the lock, each remembered by name and span of `registry`.
        let encoder = TextEncoder::new();
        let families = self.registry.gather();
        let mut registry = String::new();
        let mut spans: Vec<(&str, Range<usize>)> = Vec::with_capacity(families.len());
        for family in &families {
            let start = registry.len();
            // The encoder refuses only families without a name or without samples; gather() drops empty ones
            // and every family here is named, so this is defensive: skip the family, keep the rest.
            match encoder.encode_utf8(std::slice::from_ref(family), &mut registry) {
                Ok(()) => spans.push((family.name(), start..registry.len())),
                Err(e) => {
                    registry.truncate(start);
                    tracing::error!("metrics: cannot encode {}: {e}", family.name());
                }
            }
        }

        let shown = self.lock();
        // Bytes of each phase gauge's family (0: no series, left out), then one exact allocation.
        let mut sizes = [0; GAUGES];
        for text in shown.values() {
            for (size, block) in sizes.iter_mut().zip(&text.blocks) {
                *size += block.len();
            }
        }
        for (size, header) in sizes.iter_mut().zip(&self.headers) {
            if *size > 0 {
                *size += header.len();
            }
        }
        let mut out = String::with_capacity(registry.len() + sizes.iter().sum::<usize>());
        let push_gauge = |out: &mut String, g: G| {
            if sizes[g as usize] == 0 {
                return;
            }
            out.push_str(&self.headers[g as usize]);
            for text in shown.values() {
                out.push_str(&text.blocks[g as usize]);
            }
        };
        // Both lists are sorted by name and share none (the registry holds the gauges' names reserved).
        let mut gauges = self.by_name.iter().copied().peekable();
        for (name, span) in spans {
            while let Some(g) = gauges.next_if(|g| g.spec().0 < name) {
                push_gauge(&mut out, g);
            }
            out.push_str(&registry[span]);
        }
        for g in gauges {
            push_gauge(&mut out, g);
        }
        out
    }

    /// Create the phase's counters at 0 for every status and verdict (a counter's first increment from an absent
    /// series is invisible to `increase()`).
    fn ensure_counters(&self, phase: &str) {
        for s in FINAL_STATUSES {
            self.runs_total.with_label_values(&[phase, s.as_str()]);
        }
        for v in VERDICTS {
            self.verdicts_total.with_label_values(&[phase, v.as_str()]);
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, PhaseText>> {
        // A phase is taken out of the map while it is rendered, so the map holds only whole phases after any
        // panic: poisoning is harmless.
        self.shown.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn one_if(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn unix_seconds(t: SystemTime) -> Option<f64> {
    t.duration_since(SystemTime::UNIX_EPOCH).ok().as_ref().map(Duration::as_secs_f64)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use gonogo_probes::dns::DnsObservations;
    use gonogo_probes::http::HttpObservations;
    use gonogo_probes::tcp::TcpObservations;
    use gonogo_probes::tls::{CertInfo, TlsObservations};
    use gonogo_probes::{Failure, RttStats};

    use super::names::*;
    use super::*;
    use crate::run::Trigger;

    const NOT_AFTER: i64 = 1_900_000_000;

    // ---- building runs ------------------------------------------------------------------------------------------

    fn config() -> gonogo_config::Config {
        let text = "[[check]]\nname = \"p\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"regression\"]\n";
        gonogo_config::parse(text, Path::new("t.toml")).expect("config")
    }

    fn new_run(phase: &str) -> RunRecord {
        let mut run =
            RunRecord::new(&config(), phase, Trigger { source: "api".into(), by: Some("noc".into()) }, None, false);
        run.start();
        run
    }

    fn finished(phase: &str, checks: Vec<CheckResult>) -> RunRecord {
        let mut run = new_run(phase);
        run.finish(checks);
        run
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn result(name: &str, kind: &str, outcome: Outcome, observations: Option<Observations>) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: kind.into(),
            target: format!("target-of-{name}.example"),
            required: true,
            outcome,
            reasons: if outcome == Outcome::Pass { vec![] } else { vec![format!("{name} did not pass")] },
            expectations: vec![],
            observations,
            duration: ms(250),
            attempts: 1,
            time_to_pass: None,
            parts: Vec::new(),
        }
    }

    fn icmp(name: &str, rtts: &[Option<u64>]) -> CheckResult {
        let obs = crate::fixtures::icmp(rtts);
        let (sent, received) = (obs.sent, obs.received);
        let outcome = if received == sent { Outcome::Pass } else { Outcome::Fail };
        result(name, "icmp", outcome, Some(Observations::Icmp(obs)))
    }

    fn tcp(name: &str, connects: &[Option<u64>], failure: Option<Failure>) -> CheckResult {
        let got: Vec<Duration> = connects.iter().flatten().map(|&v| ms(v)).collect();
        let obs = TcpObservations {
            address: Some("10.0.0.2:443".parse().expect("addr")),
            attempts: connects.len() as u32,
            connected: got.len() as u32,
            connect: RttStats::from_samples(&got),
            samples_ms: connects.iter().map(|r| r.map(|v| v as f64)).collect(),
            failure,
            banner: None,
            detail: failure.map(|f| format!("{f} talking to 10.0.0.2:443")),
        };
        let outcome = if failure.is_none() { Outcome::Pass } else { Outcome::Fail };
        result(name, "tcp", outcome, Some(Observations::Tcp(obs)))
    }

    fn dns(name: &str) -> CheckResult {
        let obs = DnsObservations {
            server: "155.231.231.1:53/udp".into(),
            rcode: Some("NOERROR".into()),
            answers: vec!["10.1.1.1".into(), "10.1.1.2".into()],
            lookup_time: ms(12),
            failure: None,
            detail: None,
        };
        result(name, "dns", Outcome::Pass, Some(Observations::Dns(obs)))
    }

    fn tls(name: &str) -> CheckResult {
        let obs = TlsObservations {
            address: Some("10.0.0.3:443".parse().expect("addr")),
            handshake_time: Some(ms(40)),
            version: Some("1.3".into()),
            cipher: Some("TLS13_AES_256_GCM_SHA384".into()),
            alpn: Some("h2".into()),
            chain_verified: Some(true),
            verify_error: None,
            chain: vec![CertInfo {
                subject: "CN=app.example".into(),
                issuer: "CN=Test CA".into(),
                names: vec!["app.example".into()],
                not_before: 1_700_000_000,
                not_after: NOT_AFTER,
                serial: "01".into(),
                sha256: "ab".repeat(32),
            }],
            failure: None,
            detail: None,
        };
        result(name, "tls", Outcome::Pass, Some(Observations::Tls(obs)))
    }

    fn mtu(name: &str) -> CheckResult {
        let obs = gonogo_probes::mtu::MtuObservations {
            address: Some("127.0.0.1".parse().expect("ip")),
            interface: Some("lo".into()),
            interface_mtu: Some(1500),
            path_mtu: Some(1400),
            probes: Vec::new(),
            failure: None,
            detail: None,
        };
        result(name, "mtu", Outcome::Pass, Some(Observations::Mtu(obs)))
    }

    fn http(name: &str, status: u16) -> CheckResult {
        let obs = HttpObservations {
            status: Some(status),
            final_url: Some("https://app.example/health".into()),
            redirects: 1,
            headers: BTreeMap::new(),
            body_bytes: 2,
            body_truncated: false,
            headers_truncated: false,
            body: "ok".into(),
            time_to_headers: Some(ms(30)),
            total_time: Some(ms(35)),
            failure: None,
            detail: None,
        };
        let outcome = if status == 200 { Outcome::Pass } else { Outcome::Fail };
        result(name, "http", outcome, Some(Observations::Http(obs)))
    }

    /// A run with one check of every kind, all passing.
    fn full_run(phase: &str) -> RunRecord {
        finished(
            phase,
            vec![
                icmp("gw", &[Some(10), Some(20), Some(30), Some(40)]),
                tcp("app-tcp", &[Some(5), Some(7), Some(9)], None),
                dns("dns"),
                tls("app-tls"),
                http("app-http", 200),
                mtu("path-mtu"),
            ],
        )
    }

    // ---- reading the exposition ---------------------------------------------------------------------------------

    #[derive(Debug, Clone, PartialEq)]
    struct Sample {
        name: String,
        labels: BTreeMap<String, String>,
        value: f64,
    }

    /// Parse one sample line: `name{k="v",…} value` (no timestamps: the agent writes none).
    fn parse_sample(line: &str) -> Result<Sample, String> {
        let name_end = line.find(['{', ' ']).ok_or("no value")?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(format!("bad metric name {name:?}"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let eq = rest.find('=').ok_or("label without =")?;
                let key = &rest[..eq];
                if !valid_label_name(key) {
                    return Err(format!("bad label name {key:?}"));
                }
                rest = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?;
                let mut value = String::new();
                let mut chars = rest.char_indices();
                let end = loop {
                    match chars.next().ok_or("unterminated label value")? {
                        (i, '"') => break i,
                        (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => return Err(format!("bad escape \\{c}")),
                        },
                        (_, c) => value.push(c),
                    }
                };
                if labels.insert(key.to_owned(), value).is_some() {
                    return Err(format!("label {key} twice"));
                }
                rest = &rest[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
        }
        let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|e| format!("bad value {v:?}: {e}"))?,
        };
        Ok(Sample { name: name.to_owned(), labels, value })
    }

    fn valid_name(n: &str) -> bool {
        let mut cs = n.chars();
        cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    fn valid_label_name(n: &str) -> bool {
        let mut cs = n.chars();
        cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !n.starts_with("__")
    }

    fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| parse_sample(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }

    fn scrape(m: &Metrics) -> Vec<Sample> {
        samples(&m.encode())
    }

    /// The value of the one sample with exactly these labels.
    fn get(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let found: Vec<f64> = s.iter().filter(|x| x.name == name && x.labels == want).map(|x| x.value).collect();
        assert!(found.len() <= 1, "{name}{want:?} appears {} times", found.len());
        found.first().copied()
    }

    /// Every sample of `name` whose labels include these.
    fn matching<'a>(s: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
        s.iter()
            .filter(|x| x.name == name && labels.iter().all(|(k, v)| x.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect()
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    // ---- tests --------------------------------------------------------------------------------------------------

    #[test]
    fn a_finished_run_shows_every_kind_of_measurement() {
        let m = Metrics::new().expect("metrics");
        let run = full_run("pre-migration");
        m.observe_run(&run);
        let s = scrape(&m);
        let pm = ("phase", "pre-migration");

        for (check, kind) in
            [("gw", "icmp"), ("app-tcp", "tcp"), ("dns", "dns"), ("app-tls", "tls"), ("app-http", "http")]
        {
            assert_eq!(get(&s, CHECK_SUCCESS, &[pm, ("check", check), ("kind", kind)]), Some(1.0), "{check}");
            assert!(close(get(&s, CHECK_DURATION_SECONDS, &[pm, ("check", check)]), 0.25), "{check}");
            for o in Outcome::ALL {
                let want = if o == Outcome::Pass { 1.0 } else { 0.0 };
                assert_eq!(get(&s, CHECK_OUTCOME, &[pm, ("check", check), ("outcome", o.as_str())]), Some(want));
            }
            assert!(matching(&s, CHECK_FAILURE, &[pm, ("check", check)]).is_empty(), "{check}");
        }

        let gw = [pm, ("check", "gw")];
        for (stat, v) in [("min", 0.010), ("mean", 0.025), ("p50", 0.020), ("p95", 0.040), ("max", 0.040)] {
            assert!(close(get(&s, ICMP_RTT_SECONDS, &[pm, ("check", "gw"), ("stat", stat)]), v), "{stat}");
        }
        assert_eq!(matching(&s, ICMP_RTT_SECONDS, &gw).len(), 5);
        assert_eq!(get(&s, ICMP_LOSS_RATIO, &gw), Some(0.0));
        assert!(close(get(&s, ICMP_JITTER_SECONDS, &gw), 0.010));
        assert_eq!(get(&s, ICMP_SENT, &gw), Some(4.0));
        assert_eq!(get(&s, ICMP_RECEIVED, &gw), Some(4.0));

        for (stat, v) in [("min", 0.005), ("mean", 0.007), ("max", 0.009)] {
            assert!(close(get(&s, TCP_CONNECT_SECONDS, &[pm, ("check", "app-tcp"), ("stat", stat)]), v), "{stat}");
        }
        assert_eq!(matching(&s, TCP_CONNECT_SECONDS, &[pm]).len(), 3);

        assert!(close(get(&s, DNS_LOOKUP_SECONDS, &[pm, ("check", "dns")]), 0.012));
        assert_eq!(get(&s, DNS_ANSWERS, &[pm, ("check", "dns")]), Some(2.0));

        assert_eq!(get(&s, TLS_CERT_NOT_AFTER_TIMESTAMP_SECONDS, &[pm, ("check", "app-tls")]), Some(NOT_AFTER as f64));
        assert!(close(get(&s, TLS_HANDSHAKE_SECONDS, &[pm, ("check", "app-tls")]), 0.040));

        assert_eq!(get(&s, HTTP_STATUS_CODE, &[pm, ("check", "app-http")]), Some(200.0));
        assert!(close(get(&s, HTTP_DURATION_SECONDS, &[pm, ("check", "app-http"), ("step", "headers")]), 0.030));
        assert!(close(get(&s, HTTP_DURATION_SECONDS, &[pm, ("check", "app-http"), ("step", "total")]), 0.035));
        assert_eq!(get(&s, HTTP_REDIRECTS, &[pm, ("check", "app-http")]), Some(1.0));

        assert_eq!(get(&s, PHASE_VERDICT, &[pm, ("verdict", "GO")]), Some(1.0));
        assert_eq!(get(&s, PHASE_VERDICT, &[pm, ("verdict", "NO-GO")]), Some(0.0));
        assert_eq!(get(&s, PHASE_VERDICT, &[pm, ("verdict", "INCONCLUSIVE")]), Some(0.0));
        let finished_at = humantime::parse_rfc3339(run.finished_at.as_deref().expect("finished")).expect("rfc3339");
        let want = finished_at.duration_since(SystemTime::UNIX_EPOCH).expect("after epoch").as_secs_f64();
        assert!(close(get(&s, PHASE_LAST_RUN_TIMESTAMP_SECONDS, &[pm]), want));
        assert!(close(get(&s, PHASE_LAST_RUN_DURATION_SECONDS, &[pm]), run.duration.as_secs_f64()));

        assert_eq!(get(&s, RUNS_TOTAL, &[pm, ("status", "finished")]), Some(1.0));
        assert_eq!(get(&s, RUNS_TOTAL, &[pm, ("status", "cancelled")]), Some(0.0));
        assert_eq!(get(&s, PHASE_VERDICTS_TOTAL, &[pm, ("verdict", "GO")]), Some(1.0));
        assert_eq!(get(&s, PHASE_VERDICTS_TOTAL, &[pm, ("verdict", "NO-GO")]), Some(0.0));
    }

    #[test]
    fn a_check_missing_from_the_next_run_loses_its_series() {
        let m = Metrics::new().expect("metrics");
        m.observe_run(&full_run("regression"));
        let before = scrape(&m);
        assert!(!matching(&before, ICMP_RTT_SECONDS, &[("check", "gw")]).is_empty());

        m.observe_run(&finished("regression", vec![tcp("app-tcp", &[Some(5)], None), dns("dns")]));
        let s = scrape(&m);
        for gone in ["gw", "app-tls", "app-http"] {
            let left: Vec<_> = s.iter().filter(|x| x.labels.get("check").map(String::as_str) == Some(gone)).collect();
            assert!(left.is_empty(), "{gone} still has {left:?}");
        }
        assert_eq!(get(&s, CHECK_SUCCESS, &[("phase", "regression"), ("check", "dns"), ("kind", "dns")]), Some(1.0));
        assert_eq!(matching(&s, CHECK_OUTCOME, &[("phase", "regression")]).len(), 2 * Outcome::ALL.len());
    }

    #[test]
    fn a_check_going_from_fail_to_pass_drops_its_failure_and_flips_its_outcome() {
        let m = Metrics::new().expect("metrics");
        let c = [("phase", "post-migration"), ("check", "app")];
        m.observe_run(&finished("post-migration", vec![tcp("app", &[None, None], Some(Failure::ConnectionRefused))]));
        let s = scrape(&m);
        assert_eq!(get(&s, CHECK_FAILURE, &[c[0], c[1], ("failure", "connection_refused")]), Some(1.0));
        assert_eq!(matching(&s, CHECK_FAILURE, &c).len(), 1);
        assert_eq!(get(&s, CHECK_OUTCOME, &[c[0], c[1], ("outcome", "fail")]), Some(1.0));
        assert_eq!(get(&s, CHECK_OUTCOME, &[c[0], c[1], ("outcome", "pass")]), Some(0.0));
        assert_eq!(get(&s, CHECK_SUCCESS, &[c[0], c[1], ("kind", "tcp")]), Some(0.0));
        assert!(matching(&s, TCP_CONNECT_SECONDS, &c).is_empty(), "no connect times without a connection");

        // Another failure kind replaces the first: only the current failure series exists.
        m.observe_run(&finished("post-migration", vec![tcp("app", &[None], Some(Failure::Timeout))]));
        let s = scrape(&m);
        assert_eq!(matching(&s, CHECK_FAILURE, &c).len(), 1);
        assert_eq!(get(&s, CHECK_FAILURE, &[c[0], c[1], ("failure", "timeout")]), Some(1.0));

        m.observe_run(&finished("post-migration", vec![tcp("app", &[Some(3)], None)]));
        let s = scrape(&m);
        assert!(matching(&s, CHECK_FAILURE, &c).is_empty());
        assert!(s.iter().all(|x| x.name != CHECK_FAILURE), "the family is empty");
        assert_eq!(get(&s, CHECK_OUTCOME, &[c[0], c[1], ("outcome", "fail")]), Some(0.0));
        assert_eq!(get(&s, CHECK_OUTCOME, &[c[0], c[1], ("outcome", "pass")]), Some(1.0));
        assert_eq!(get(&s, CHECK_SUCCESS, &[c[0], c[1], ("kind", "tcp")]), Some(1.0));
        assert_eq!(matching(&s, TCP_CONNECT_SECONDS, &c).len(), 3);
    }

    #[test]
    fn a_passing_check_with_a_failed_attempt_has_no_failure_series() {
        let m = Metrics::new().expect("metrics");
        // One of three attempts timed out, but the check passed (its expectations allow it).
        let mut c = tcp("app", &[Some(3), None, Some(4)], Some(Failure::Timeout));
        c.outcome = Outcome::Pass;
        m.observe_run(&finished("regression", vec![c]));
        assert!(matching(&scrape(&m), CHECK_FAILURE, &[]).is_empty());
    }

    #[test]
    fn icmp_series_follow_what_was_measured() {
        let m = Metrics::new().expect("metrics");
        let gw = [("phase", "commissioning"), ("check", "gw")];
        m.observe_run(&finished("commissioning", vec![icmp("gw", &[Some(1), Some(2)])]));
        assert_eq!(matching(&scrape(&m), ICMP_RTT_SECONDS, &gw).len(), 5);

        // Every echo lost: no RTT or jitter series, loss 1, the failure is shown.
        m.observe_run(&finished("commissioning", vec![icmp("gw", &[None, None, None])]));
        let s = scrape(&m);
        assert!(matching(&s, ICMP_RTT_SECONDS, &gw).is_empty());
        assert_eq!(get(&s, ICMP_JITTER_SECONDS, &gw), None);
        assert_eq!(get(&s, ICMP_LOSS_RATIO, &gw), Some(1.0));
        assert_eq!(get(&s, ICMP_SENT, &gw), Some(3.0));
        assert_eq!(get(&s, ICMP_RECEIVED, &gw), Some(0.0));
        assert_eq!(get(&s, CHECK_FAILURE, &[gw[0], gw[1], ("failure", "timeout")]), Some(1.0));

        // Nothing sent (the name did not resolve): no loss ratio rather than a misleading 0.
        let mut unresolved = icmp("gw", &[]);
        if let Some(Observations::Icmp(o)) = &mut unresolved.observations {
            o.failure = Some(Failure::ResolveFailed);
        }
        unresolved.outcome = Outcome::Fail;
        m.observe_run(&finished("commissioning", vec![unresolved]));
        let s = scrape(&m);
        assert_eq!(get(&s, ICMP_LOSS_RATIO, &gw), None);
        assert_eq!(get(&s, ICMP_SENT, &gw), Some(0.0));
        assert_eq!(get(&s, CHECK_FAILURE, &[gw[0], gw[1], ("failure", "resolve_failed")]), Some(1.0));
    }

    #[test]
    fn a_check_without_observations_shows_only_its_outcome() {
        let m = Metrics::new().expect("metrics");
        m.observe_run(&finished("regression", vec![result("raw", "icmp", Outcome::Error, None)]));
        let s = scrape(&m);
        let mine: BTreeSet<&str> =
            s.iter().filter(|x| x.labels.contains_key("check")).map(|x| x.name.as_str()).collect();
        assert_eq!(mine, BTreeSet::from([CHECK_SUCCESS, CHECK_OUTCOME, CHECK_DURATION_SECONDS]));
        let c = [("phase", "regression"), ("check", "raw")];
        assert_eq!(get(&s, CHECK_OUTCOME, &[c[0], c[1], ("outcome", "error")]), Some(1.0));
        assert_eq!(get(&s, PHASE_VERDICT, &[("phase", "regression"), ("verdict", "INCONCLUSIVE")]), Some(1.0));
    }

    #[test]
    fn verdict_series_are_one_hot() {
        let m = Metrics::new().expect("metrics");
        let runs = [
            finished("cutover", vec![tcp("a", &[Some(1)], None)]),
            finished("cutover", vec![tcp("a", &[None], Some(Failure::Timeout))]),
            finished("cutover", vec![result("a", "tcp", Outcome::Inconclusive, None)]),
            finished("cutover", vec![tcp("a", &[Some(1)], None)]),
        ];
        for run in &runs {
            m.observe_run(run);
            let s = scrape(&m);
            let series = matching(&s, PHASE_VERDICT, &[("phase", "cutover")]);
            assert_eq!(series.len(), 3);
            let hot: Vec<&str> =
                series.iter().filter(|x| x.value == 1.0).map(|x| x.labels["verdict"].as_str()).collect();
            assert_eq!(hot, [run.verdict.expect("verdict").as_str()]);
            assert!(series.iter().all(|x| x.value == 0.0 || x.value == 1.0));
        }
        let s = scrape(&m);
        assert_eq!(get(&s, PHASE_VERDICTS_TOTAL, &[("phase", "cutover"), ("verdict", "GO")]), Some(2.0));
        assert_eq!(get(&s, PHASE_VERDICTS_TOTAL, &[("phase", "cutover"), ("verdict", "NO-GO")]), Some(1.0));
        assert_eq!(get(&s, PHASE_VERDICTS_TOTAL, &[("phase", "cutover"), ("verdict", "INCONCLUSIVE")]), Some(1.0));
    }

    #[test]
    fn counters_go_up_and_unfinished_runs_leave_the_gauges_alone() {
        let m = Metrics::new().expect("metrics");
        let p = ("phase", "pre-migration");
        let runs_total = |s: &[Sample], status| get(s, RUNS_TOTAL, &[p, ("status", status)]);

        // Starting a run creates the phase's counters at 0.
        m.set_in_progress("pre-migration", true);
        let s = scrape(&m);
        assert_eq!(get(&s, RUN_IN_PROGRESS, &[p]), Some(1.0));
        for status in ["finished", "cancelled", "interrupted"] {
            assert_eq!(runs_total(&s, status), Some(0.0), "{status}");
        }
        assert_eq!(get(&s, PHASE_VERDICTS_TOTAL, &[p, ("verdict", "GO")]), Some(0.0));

        m.observe_run(&full_run("pre-migration"));
        m.set_in_progress("pre-migration", false);
        let shown = scrape(&m);
        assert_eq!(runs_total(&shown, "finished"), Some(1.0));
        assert_eq!(get(&shown, RUN_IN_PROGRESS, &[p]), Some(0.0));

        // A cancelled and an interrupted run count, and change nothing else.
        let mut cancelled = new_run("pre-migration");
        cancelled.abandon(RunStatus::Cancelled, "cancelled by noc".into());
        m.observe_run(&cancelled);
        let mut interrupted = new_run("pre-migration");
        interrupted.abandon(RunStatus::Interrupted, "agent stopped".into());
        m.observe_run(&interrupted);
        // Runs that have not ended are not counted.
        m.observe_run(&new_run("pre-migration"));
        let s = scrape(&m);
        assert_eq!(runs_total(&s, "finished"), Some(1.0));
        assert_eq!(runs_total(&s, "cancelled"), Some(1.0));
        assert_eq!(runs_total(&s, "interrupted"), Some(1.0));
        assert!(matching(&s, RUNS_TOTAL, &[("status", "running")]).is_empty());
        let gauges = |s: &[Sample]| -> Vec<Sample> {
            s.iter()
                .filter(|x| x.labels.contains_key("check") || x.name.starts_with("gonogo_phase_l"))
                .cloned()
                .collect()
        };
        assert_eq!(gauges(&s), gauges(&shown));

        m.observe_run(&full_run("pre-migration"));
        let s = scrape(&m);
        assert_eq!(runs_total(&s, "finished"), Some(2.0));
        assert_eq!(get(&s, PHASE_VERDICTS_TOTAL, &[p, ("verdict", "GO")]), Some(2.0));
    }

    #[test]
    fn show_run_restores_the_gauges_without_counting() {
        let m = Metrics::new().expect("metrics");
        m.show_run(&full_run("pre-migration"));
        let s = scrape(&m);
        assert_eq!(get(&s, PHASE_VERDICT, &[("phase", "pre-migration"), ("verdict", "GO")]), Some(1.0));
        assert_eq!(get(&s, RUNS_TOTAL, &[("phase", "pre-migration"), ("status", "finished")]), Some(0.0));
        assert_eq!(get(&s, PHASE_VERDICTS_TOTAL, &[("phase", "pre-migration"), ("verdict", "GO")]), Some(0.0));
    }

    #[test]
    fn no_label_carries_a_run_id_target_or_error_text() {
        let m = Metrics::new().expect("metrics");
        let ok = full_run("regression");
        let bad = finished(
            "regression",
            vec![tcp("app-tcp", &[None], Some(Failure::Unreachable)), icmp("gw", &[None]), http("app-http", 503)],
        );
        m.observe_run(&ok);
        m.observe_run(&bad);
        let mut forbidden: Vec<String> = vec![ok.id.clone(), bad.id.clone()];
        for c in ok.checks.iter().chain(&bad.checks) {
            forbidden.push(c.target.clone());
            forbidden.extend(c.reasons.iter().cloned());
            if let Some(o) = &c.observations {
                match o {
                    Observations::Icmp(o) => forbidden.extend(o.detail.clone()),
                    Observations::Tcp(o) => forbidden.extend(o.detail.clone()),
                    Observations::Http(o) => forbidden.extend(o.final_url.clone()),
                    _ => {}
                }
            }
        }
        for x in scrape(&m) {
            for (k, v) in &x.labels {
                assert!(!forbidden.contains(v), "{}{{{k}={v:?}}} carries an unbounded value", x.name);
                assert!(!v.contains(&ok.id) && !v.contains(&bad.id), "{}: {v:?}", x.name);
            }
        }
    }

    #[test]
    fn forget_phase_removes_every_series_of_the_phase() {
        let m = Metrics::new().expect("metrics");
        for phase in ["old-phase", "kept"] {
            m.set_in_progress(phase, true);
            m.observe_run(&full_run(phase));
            m.set_in_progress(phase, false);
        }
        m.forget_phase("old-phase");
        let s = scrape(&m);
        let left: Vec<_> =
            s.iter().filter(|x| x.labels.get("phase").map(String::as_str) == Some("old-phase")).collect();
        assert!(left.is_empty(), "{left:?}");
        let kept = s.iter().filter(|x| x.labels.get("phase").map(String::as_str) == Some("kept")).count();
        assert!(kept > 40, "the other phase keeps its {kept} series");

        // The phase can come back with a later reload, from scratch.
        m.observe_run(&finished("old-phase", vec![dns("dns")]));
        let s = scrape(&m);
        assert_eq!(get(&s, RUNS_TOTAL, &[("phase", "old-phase"), ("status", "finished")]), Some(1.0));
        assert_eq!(matching(&s, CHECK_SUCCESS, &[("phase", "old-phase")]).len(), 1);
        // Forgetting a phase never seen is harmless.
        m.forget_phase("never-seen");
    }

    #[test]
    fn schedules_follow_the_config() {
        let m = Metrics::new().expect("metrics");
        let text = "[phase.regression]\nevery = \"15m\"\n[[check]]\nname = \"x\"\nkind = \"tcp\"\n\
                    target = \"127.0.0.1:9\"\nphases = [\"regression\", \"pre-migration\"]\n";
        m.set_schedules(&gonogo_config::parse(text, Path::new("t.toml")).expect("config"));
        let s = scrape(&m);
        assert_eq!(get(&s, PHASE_SCHEDULE_SECONDS, &[("phase", "regression")]), Some(900.0));
        assert_eq!(matching(&s, PHASE_SCHEDULE_SECONDS, &[]).len(), 1, "no series for unscheduled phases");
        // A reload without the schedule removes it.
        m.set_schedules(&config());
        assert!(matching(&scrape(&m), PHASE_SCHEDULE_SECONDS, &[]).is_empty());
    }

    #[test]
    fn reload_sets_success_and_keeps_the_last_good_time_on_failure() {
        let m = Metrics::new().expect("metrics");
        let s = scrape(&m);
        assert_eq!(get(&s, CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), Some(0.0));
        assert_eq!(get(&s, CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, &[]), Some(0.0));
        m.reload(true, 1_800_000_000.5);
        let s = scrape(&m);
        assert_eq!(get(&s, CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), Some(1.0));
        assert_eq!(get(&s, CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, &[]), Some(1_800_000_000.5));
        m.reload(false, 1_800_000_100.0);
        let s = scrape(&m);
        assert_eq!(get(&s, CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), Some(0.0));
        assert_eq!(get(&s, CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP_SECONDS, &[]), Some(1_800_000_000.5));
    }

    #[test]
    fn build_info_and_process_metrics_are_there_from_the_start() {
        let m = Metrics::new().expect("metrics");
        let s = scrape(&m);
        assert_eq!(get(&s, BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
        if cfg!(target_os = "linux") {
            assert!(get(&s, PROCESS_CPU_SECONDS_TOTAL, &[]).is_some());
            assert!(s.iter().any(|x| x.name == "process_resident_memory_bytes" && x.value > 0.0));
        }
        // Two instances do not clash: each owns its registry.
        let other = Metrics::new().expect("a second registry");
        assert!(!other.encode().is_empty());
    }

    /// Every metric, with at least one series.
    fn everything() -> Metrics {
        let m = Metrics::new().expect("metrics");
        m.reload(true, 1_800_000_000.0);
        let scheduled = "[phase.pre-migration]\nevery = \"15m\"\n[[check]]\nname = \"x\"\nkind = \"tcp\"\n\
                         target = \"127.0.0.1:9\"\nphases = [\"pre-migration\"]\n";
        m.set_schedules(&gonogo_config::parse(scheduled, Path::new("t.toml")).expect("config"));
        m.set_in_progress("pre-migration", true);
        m.observe_run(&full_run("pre-migration"));
        m.observe_run(&finished("pre-migration", {
            let mut checks = full_run("x").checks;
            checks.push(tcp("down", &[None], Some(Failure::Timeout)));
            checks
        }));
        m
    }

    #[test]
    fn the_exposition_is_well_formed_and_lint_clean() {
        let text = everything().encode();
        assert!(text.ends_with('\n'));
        let mut help: BTreeMap<&str, &str> = BTreeMap::new();
        let mut types: BTreeMap<&str, &str> = BTreeMap::new();
        let mut sampled: BTreeSet<String> = BTreeSet::new();
        let mut series: BTreeSet<String> = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, h) = rest.split_once(' ').expect("HELP name text");
                assert!(!h.trim().is_empty(), "{name}: empty HELP");
                assert!(help.insert(name, h).is_none(), "{name}: HELP twice");
                assert!(!sampled.contains(name), "{name}: HELP after its samples");
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, t) = rest.split_once(' ').expect("TYPE name type");
                assert!(["counter", "gauge"].contains(&t), "{name}: type {t}");
                assert!(types.insert(name, t).is_none(), "{name}: TYPE twice");
                assert!(!sampled.contains(name), "{name}: TYPE after its samples");
            } else {
                assert!(!line.starts_with('#') && !line.is_empty(), "stray line {line:?}");
                let s = parse_sample(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
                assert!(types.contains_key(s.name.as_str()), "{}: sample before its TYPE", s.name);
                assert!(s.value.is_finite(), "{line}");
                assert!(series.insert(format!("{}{:?}", s.name, s.labels)), "duplicate series {line}");
                sampled.insert(s.name);
            }
        }
        assert_eq!(help.keys().collect::<Vec<_>>(), types.keys().collect::<Vec<_>>(), "HELP and TYPE per family");
        for name in names::ALL {
            assert!(sampled.contains(*name), "{name} has no series");
        }
        for (name, t) in &types {
            // promtool check metrics: counters end in _total and nothing else does; no reserved suffixes; units
            // spelled out in base units; snake case.
            assert_eq!(*t == "counter", name.ends_with("_total"), "{name} ({t})");
            for reserved in ["_count", "_sum", "_bucket"] {
                assert!(!name.ends_with(reserved), "{name}");
            }
            for abbreviation in ["_ms", "_msec", "_sec", "_secs", "_millis", "_milliseconds", "_percent", "_bits"] {
                assert!(!name.contains(&format!("{abbreviation}_")) && !name.ends_with(abbreviation), "{name}");
            }
            assert!(!name.contains("__") && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{name}");
            if name.starts_with("gonogo_") && !name.ends_with("_total") {
                assert!(!name.contains("total"), "{name}");
            }
        }
    }

    /// `promtool check metrics` itself, where it is installed (Debian/Ubuntu package `prometheus`); skipped
    /// otherwise.
    #[test]
    fn promtool_finds_no_problem() {
        use std::io::Write;
        use std::process::{Command, Stdio};

        let Ok(mut child) = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("promtool not installed: skipped");
            return;
        };
        let text = everything().encode();
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
        let out = child.wait_with_output().expect("promtool");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.trim().is_empty(), "promtool: {said}\n{text}");
    }

    #[test]
    fn help_texts_are_unique_and_every_gauge_is_declared_once() {
        let all = G::ALL;
        for (i, g) in all.iter().enumerate() {
            assert_eq!(*g as usize, i, "{g:?} is not at its own index in G::ALL");
        }
        let names: BTreeSet<_> = all.iter().map(|g| g.spec().0).collect();
        let helps: BTreeSet<_> = all.iter().map(|g| g.spec().1).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(helps.len(), all.len());
        for g in all {
            let (name, _, labels) = g.spec();
            assert_eq!(labels[0], PHASE, "{name}");
            assert!(labels.len() <= MAX_LABELS, "{name}: raise MAX_LABELS");
            assert_eq!(name, g.spec().0);
        }
    }

    // ---- the hand-written encoder against the prometheus crate's --------------------------------------------------

    /// Only the lines of the phase gauges' families (HELP, TYPE and samples) of an exposition.
    fn gauge_lines(text: &str) -> String {
        let gauge_names: BTreeSet<&str> = G::ALL.iter().map(|g| g.spec().0).collect();
        let mut out = String::new();
        for line in text.lines() {
            let name = match line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
                Some(rest) => rest.split(' ').next().unwrap_or(""),
                None => line.split(['{', ' ']).next().unwrap_or(""),
            };
            if gauge_names.contains(name) {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// What the prometheus crate writes for these samples: one `GaugeVec` per phase gauge in a throwaway registry,
    /// set from the parsed samples, gathered and encoded by `TextEncoder`.
    fn prometheus_text(samples: &[Sample]) -> String {
        let registry = Registry::new();
        let mut vecs = BTreeMap::new();
        for g in G::ALL {
            let (name, help, labels) = g.spec();
            let vec = prometheus::GaugeVec::new(Opts::new(name, help), labels).expect("gauge");
            registry.register(Box::new(vec.clone())).expect("register");
            vecs.insert(name, (vec, labels));
        }
        for s in samples {
            let Some((vec, labels)) = vecs.get(s.name.as_str()) else { continue };
            let values: Vec<&str> = labels.iter().map(|l| s.labels[*l].as_str()).collect();
            vec.with_label_values(&values).set(s.value);
        }
        TextEncoder::new().encode_to_string(&registry.gather()).expect("encode")
    }

    /// A run with every kind of check, a failing one, odd values and check names that need escaping (a config
    /// cannot name a check so, but a stored run is read back as it is).
    fn odd_run(phase: &str) -> RunRecord {
        let mut run = full_run(phase);
        let mut odd = tcp("odd \"quoted\" back\\slash\nnewline", &[Some(1), Some(2), Some(4)], None);
        odd.duration = Duration::from_nanos(12_345_678_901);
        let mut kind = result("zz-last", "ki\"nd\\", Outcome::Skipped, None);
        kind.duration = Duration::from_nanos(1);
        run.checks.push(odd);
        run.checks.push(kind);
        run.checks.push(tcp("aaa-down", &[None], Some(Failure::ConnectionRefused)));
        run.checks.push(http("b-http-503", 503));
        run
    }

    #[test]
    fn the_gauges_are_written_byte_for_byte_as_the_prometheus_text_encoder_writes_them() {
        let m = Metrics::new().expect("metrics");
        assert_eq!(gauge_lines(&m.encode()), "", "no gauge family before any run");

        m.observe_run(&odd_run("pre-migration"));
        let text = m.encode();
        let ours = gauge_lines(&text);
        let s = samples(&text);
        assert!(s.iter().any(|x| x.labels.get("check").is_some_and(|c| c.contains('"') && c.contains('\n'))));
        assert!(s.iter().any(|x| x.labels.get("kind").is_some_and(|k| k == "ki\"nd\\")));
        let reference = prometheus_text(&s);
        assert!(reference.contains("check=\"odd \\\"quoted\\\" back\\\\slash\\nnewline\""), "{reference}");
        assert_eq!(ours, reference);

        // A second run of the phase replaces the first exactly as the gauges would have been updated.
        m.observe_run(&full_run("pre-migration"));
        let text = m.encode();
        assert_eq!(gauge_lines(&text), prometheus_text(&samples(&text)));
    }

    #[test]
    fn two_phases_make_sorted_families_with_one_header_each_and_each_phase_contiguous() {
        let m = everything();
        m.observe_run(&odd_run("cutover"));
        m.observe_run(&finished("zulu", vec![dns("dns")]));
        let text = m.encode();

        // The same lines as the prometheus crate writes, in each family phase by phase instead of check by check.
        let reference = prometheus_text(&samples(&text));
        let mut ours: Vec<&str> = text.lines().collect();
        let mut want: Vec<&str> = reference.lines().chain(text.lines().filter(|l| gauge_lines(l).is_empty())).collect();
        ours.sort_unstable();
        want.sort_unstable();
        assert_eq!(ours, want);

        let mut families: Vec<&str> = Vec::new();
        let mut phases: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                families.push(rest.split(' ').next().expect("name"));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let x = parse_sample(line).expect("sample");
            assert_eq!(Some(&x.name.as_str()), families.last(), "{line} outside its family");
            if let Some(phase) = x.labels.get("phase") {
                phases.push((x.name.clone(), phase.clone()));
            }
        }
        let mut sorted = families.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(families, sorted, "families sorted by name, each once");
        for g in G::ALL {
            let name = g.spec().0;
            let order: Vec<&str> = phases.iter().filter(|(n, _)| n == name).map(|(_, p)| p.as_str()).collect();
            let mut runs = order.clone();
            runs.dedup();
            let mut sorted_runs = runs.clone();
            sorted_runs.sort_unstable();
            sorted_runs.dedup();
            assert_eq!(runs, sorted_runs, "{name}: phases contiguous and in name order");
        }
        let check_success = phases.iter().filter(|(n, _)| n == CHECK_SUCCESS).map(|(_, p)| p.as_str());
        assert_eq!(check_success.collect::<BTreeSet<_>>(), BTreeSet::from(["cutover", "pre-migration", "zulu"]));

        // Forgetting a phase drops its blocks; the others are untouched.
        m.forget_phase("cutover");
        let after = m.encode();
        assert!(!after.contains("phase=\"cutover\""));
        assert_eq!(gauge_lines(&after), {
            let without: String = gauge_lines(&text)
                .lines()
                .filter(|l| !l.contains("phase=\"cutover\""))
                .flat_map(|l| [l, "\n"])
                .collect();
            without
        });
    }

    #[test]
    fn label_values_and_help_texts_are_escaped_as_the_text_format_requires() {
        let escaped = |v: &str, quote: bool| {
            let mut out = String::from(">");
            push_escaped(&mut out, v, quote);
            out
        };
        assert_eq!(escaped("plain-name_1", true), ">plain-name_1");
        assert_eq!(escaped("a\\b\"c\nd", true), r#">a\\b\"c\nd"#);
        assert_eq!(escaped("a\\b\"c\nd", false), ">a\\\\b\"c\\nd");
        assert_eq!(escaped("\"\"\\\n", true), r#">\"\"\\\n"#);
        assert_eq!(escaped("é\"ü", true), ">é\\\"ü");
        assert_eq!(escaped("", true), ">");

        let mut line = String::new();
        write_sample(&mut line, "m", &[], 0.1 + 0.2);
        write_sample(&mut line, "m", &[("a", "x\"y"), ("b", "")], 1e21);
        write_sample(&mut line, "m", &[("a", "1")], -0.0);
        assert_eq!(line, "m 0.30000000000000004\nm{a=\"x\\\"y\",b=\"\"} 1000000000000000000000\nm{a=\"1\"} -0\n");
    }

    #[test]
    fn the_gauge_names_stay_reserved_in_the_registry() {
        let m = Metrics::new().expect("metrics");
        for g in G::ALL {
            let (name, help, labels) = g.spec();
            let same = prometheus::GaugeVec::new(Opts::new(name, help), labels).expect("gauge");
            assert!(m.registry().register(Box::new(same)).is_err(), "{name}");
            let other = prometheus::IntCounter::new(name, "something else").expect("counter");
            assert!(m.registry().register(Box::new(other)).is_err(), "{name}");
        }
        // Others' collectors are encoded in name order among the gauges.
        let mine = prometheus::IntCounter::new("gonogo_check_aaa_total", "Registered by a test.").expect("counter");
        m.registry().register(Box::new(mine.clone())).expect("a new name");
        mine.inc();
        m.observe_run(&full_run("regression"));
        let text = m.encode();
        let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} missing"));
        assert!(at("# HELP gonogo_check_aaa_total ") < at("# HELP gonogo_check_duration_seconds "));
        assert!(at("gonogo_check_aaa_total 1\n") < at("# HELP gonogo_check_duration_seconds "));
    }
}
