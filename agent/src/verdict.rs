//! The verdict engine: observations + expectations → a check outcome with reasons; outcomes → a phase verdict.
//!
//! Invariant: pure. No I/O, no clock (the caller passes `now`), no randomness; everything here is decided by
//! its arguments, and tested exhaustively below.

use std::fmt;
use std::time::Duration;

use gonogo_config::{
    Check, CheckSpec, DnsExpect, EgressExpect, HttpExpect, IcmpExpect, MtuExpect, TcpCheck, TlsExpect,
};
use gonogo_probes::egress::EgressObservations;
use gonogo_probes::mtu::MtuObservations;
use gonogo_probes::{Observations, dns::DnsObservations, http::HttpObservations, icmp::IcmpObservations};
use gonogo_probes::{tcp::TcpObservations, tls::TlsObservations};
use serde::{Deserialize, Serialize};

/// What became of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Measured, and every expectation held.
    Pass,
    /// Measured, and an expectation did not hold (a target that is down is a measurement).
    Fail,
    /// Could not be decided from what was measured.
    Inconclusive,
    /// The agent could not run it (missing capability, unreadable CA file).
    Error,
    /// Not run.
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Pass, Outcome::Fail, Outcome::Inconclusive, Outcome::Error, Outcome::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision for one phase run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "GO")]
    Go,
    #[serde(rename = "NO-GO")]
    NoGo,
    #[serde(rename = "INCONCLUSIVE")]
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Go => "GO",
            Verdict::NoGo => "NO-GO",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }

    /// The `gonogo run` exit code: 0 GO, 1 NO-GO, 2 INCONCLUSIVE.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Go => 0,
            Verdict::NoGo => 1,
            Verdict::Inconclusive => 2,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One evaluated expectation: what was wanted, what was seen, and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The expectation's config key (`loss_max`, `status` …) or an implicit one (`reply`, `connect`,
    /// `response`, `handshake`, `chain`).
    pub expectation: String,
    pub expected: String,
    pub observed: String,
    pub met: bool,
}

impl Evaluation {
    fn new(expectation: &str, expected: impl Into<String>, observed: impl Into<String>, met: bool) -> Self {
        Evaluation { expectation: expectation.to_owned(), expected: expected.into(), observed: observed.into(), met }
    }

    /// `loss_max: expected ≤ 0%, observed 20% (1 of 5 lost)`.
    pub fn sentence(&self) -> String {
        format!("{}: expected {}, observed {}", self.expectation, self.expected, self.observed)
    }
}

/// What the run engine got for a check.
#[derive(Debug, Clone, Copy)]
pub enum Measured<'a> {
    /// The probe measured (the target may still have been down).
    Observed(&'a Observations),
    /// The probe could not measure; the message says why and how to fix it.
    Error(&'a str),
    /// The probe overran its budget and was stopped.
    Overran(Duration),
}

/// A check's outcome with everything that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub outcome: Outcome,
    /// Every expectation evaluated, met or not.
    pub evaluations: Vec<Evaluation>,
    /// Why the outcome is not `pass`, one sentence each; empty on pass.
    pub reasons: Vec<String>,
}

impl Judgement {
    fn from_evaluations(evaluations: Vec<Evaluation>) -> Judgement {
        let reasons: Vec<String> = evaluations.iter().filter(|e| !e.met).map(Evaluation::sentence).collect();
        let outcome = if reasons.is_empty() { Outcome::Pass } else { Outcome::Fail };
        Judgement { outcome, evaluations, reasons }
    }

    /// The agent could not run the check, for this reason.
    pub fn error(reason: String) -> Judgement {
        Judgement { outcome: Outcome::Error, evaluations: Vec::new(), reasons: vec![reason] }
    }
}

/// Judge one check. `now_unix` is the current time in Unix seconds (certificate validity is judged against it).
pub fn judge(spec: &CheckSpec, measured: Measured<'_>, now_unix: i64) -> Judgement {
    let obs = match measured {
        Measured::Observed(obs) => obs,
        Measured::Error(msg) => return Judgement::error(msg.to_owned()),
        Measured::Overran(budget) => {
            return Judgement::from_evaluations(vec![Evaluation::new(
                "timeout",
                format!("a result within {}", fmt_duration(budget)),
                "none: the probe was stopped (timeout)",
                false,
            )]);
        }
    };
    let evaluations = match (spec, obs) {
        (CheckSpec::Icmp(c), Observations::Icmp(o)) => icmp(&c.expect, o),
        (CheckSpec::Tcp(c), Observations::Tcp(o)) => tcp(c, o),
        (CheckSpec::Dns(c), Observations::Dns(o)) => dns(&c.expect, o),
        (CheckSpec::Tls(c), Observations::Tls(o)) => tls(&c.expect, c.verify, o, now_unix),
        (CheckSpec::Http(c), Observations::Http(o)) => http(&c.expect, o),
        (CheckSpec::Mtu(c), Observations::Mtu(o)) => mtu(&c.expect, o),
        (CheckSpec::Egress(c), Observations::Egress(o)) => egress(&c.expect, o),
        (spec, obs) => {
            return Judgement::error(format!(
                "internal error: a {} check got {} observations",
                spec.kind(),
                kind_of(obs)
            ));
        }
    };
    Judgement::from_evaluations(evaluations)
}

/// Judge a check with everything its config asks beyond its kind's expectations: an ICMP check whose echoes
/// were lost but whose `fallback_tcp` connected is `inconclusive` (ICMP is often filtered on health networks);
/// `expect_failure` turns "unreachable" into the pass condition.
pub fn judge_check(check: &Check, measured: Measured<'_>, now_unix: i64) -> Judgement {
    let mut j = judge(&check.spec, measured, now_unix);
    if let Measured::Observed(Observations::Icmp(o)) = measured
        && o.received == 0
        && let Some(t) = &o.fallback_tcp
        && j.outcome == Outcome::Fail
        && !check.expect_failure
    {
        let to = t.address.map_or_else(|| "the fallback".to_owned(), |a| a.to_string());
        if t.connected > 0 {
            j.evaluations.push(Evaluation::new("fallback_tcp", format!("a TCP connect to {to}"), "connected", true));
            j.outcome = Outcome::Inconclusive;
            j.reasons = vec![format!(
                "no echo reply, but a TCP connect to {to} succeeded: ICMP is probably filtered on the path, so \
                 reachability cannot be decided from ICMP"
            )];
        } else {
            let ev = Evaluation::new(
                "fallback_tcp",
                format!("a TCP connect to {to}"),
                failure_text(t.failure, t.detail.as_deref()),
                false,
            );
            j.reasons.push(ev.sentence());
            j.evaluations.push(ev);
        }
    }
    if check.expect_failure { expect_unreachable(j, measured) } else { j }
}

/// `expect_failure = true`: pass only when the target could not be reached (the old path is down, the port is
/// closed by policy); the observation is kept either way. A check the agent could not run stays `error`.
fn expect_unreachable(j: Judgement, measured: Measured<'_>) -> Judgement {
    let expected = "the target unreachable";
    let (unreachable, observed) = match measured {
        Measured::Error(_) => return j,
        Measured::Overran(budget) => (true, format!("no answer within {}", fmt_duration(budget))),
        Measured::Observed(obs) => match obs {
            Observations::Icmp(o) => match &o.fallback_tcp {
                // The echoes were lost but the host answers on TCP: it is not unreachable.
                Some(t) if o.received == 0 && t.connected > 0 => (
                    false,
                    format!(
                        "no echo reply, but a TCP connect to {} succeeded",
                        t.address.map_or_else(|| "the fallback".to_owned(), |a| a.to_string())
                    ),
                ),
                _ => (o.received == 0, format!("{} of {} echoes answered", o.received, o.sent)),
            },
            Observations::Tcp(o) => (o.connected == 0, format!("{} of {} connects succeeded", o.connected, o.attempts)),
            Observations::Dns(o) => match &o.rcode {
                Some(rcode) => (false, format!("{} answered {rcode}", o.server)),
                None => (true, failure_text(o.failure, o.detail.as_deref())),
            },
            // A server that sent its certificates answered, whatever happened after.
            Observations::Tls(o) => match (o.chain.is_empty(), o.failure) {
                (true, _) => (true, failure_text(o.failure, o.detail.as_deref())),
                (false, None) => (false, "a TLS handshake completed".to_owned()),
                (false, Some(f)) => (
                    false,
                    format!("the server answered the TLS handshake ({})", failure_text(Some(f), o.detail.as_deref())),
                ),
            },
            Observations::Http(o) => match o.status {
                Some(s) => (false, format!("HTTP {s}")),
                None => (true, failure_text(o.failure, o.detail.as_deref())),
            },
            Observations::Mtu(o) => match o.path_mtu {
                Some(m) => (false, format!("path MTU {m}")),
                None => (true, failure_text(o.failure, o.detail.as_deref())),
            },
            Observations::Egress(o) => match o.status {
                Some(s) => (false, format!("HTTP {s}")),
                None => (true, failure_text(o.failure, o.detail.as_deref())),
            },
        },
    };
    let observed = if unreachable { format!("unreachable: {observed}") } else { format!("reachable: {observed}") };
    let ev = Evaluation::new("expect_failure", expected, observed, unreachable);
    if unreachable {
        Judgement { outcome: Outcome::Pass, evaluations: vec![ev], reasons: Vec::new() }
    } else {
        Judgement { outcome: Outcome::Fail, reasons: vec![ev.sentence()], evaluations: vec![ev] }
    }
}

fn kind_of(obs: &Observations) -> &'static str {
    match obs {
        Observations::Icmp(_) => "icmp",
        Observations::Tcp(_) => "tcp",
        Observations::Dns(_) => "dns",
        Observations::Tls(_) => "tls",
        Observations::Http(_) => "http",
        Observations::Egress(_) => "egress",
        Observations::Mtu(_) => "mtu",
    }
}

/// "timeout: no reply …" from a probe's failure and detail.
fn failure_text(failure: Option<gonogo_probes::Failure>, detail: Option<&str>) -> String {
    match (failure, detail) {
        (Some(f), Some(d)) => format!("{f}: {d}"),
        (Some(f), None) => f.to_string(),
        (None, Some(d)) => d.to_owned(),
        (None, None) => "no answer".to_owned(),
    }
}

fn at_most(key: &str, limit: Duration, observed: Duration) -> Evaluation {
    Evaluation::new(key, format!("≤ {}", fmt_duration(limit)), fmt_duration(observed), observed <= limit)
}

fn icmp(expect: &IcmpExpect, o: &IcmpObservations) -> Vec<Evaluation> {
    let lost = o.sent.saturating_sub(o.received);
    let mut ev = vec![Evaluation::new(
        "reply",
        "at least one echo reply",
        if o.received > 0 {
            format!("{} of {} answered", o.received, o.sent)
        } else {
            format!("no reply ({})", failure_text(o.failure, o.detail.as_deref()))
        },
        o.received > 0,
    )];
    if let Some(max) = expect.loss_max {
        ev.push(Evaluation::new(
            "loss_max",
            format!("≤ {}", fmt_ratio(max)),
            format!("{} ({lost} of {} lost)", fmt_ratio(o.loss), o.sent),
            o.loss <= max + f64::EPSILON,
        ));
    }
    let rtt_checks = [
        ("rtt_mean_max", expect.rtt_mean_max, o.rtt.map(|r| r.mean)),
        ("rtt_p95_max", expect.rtt_p95_max, o.rtt.map(|r| r.p95)),
        ("jitter_max", expect.jitter_max, o.rtt.map(|r| r.jitter)),
    ];
    for (key, limit, observed) in rtt_checks {
        if let Some(limit) = limit {
            ev.push(match observed {
                Some(v) => at_most(key, limit, v),
                None => Evaluation::new(key, format!("≤ {}", fmt_duration(limit)), "no replies to measure", false),
            });
        }
    }
    ev
}

fn tcp(check: &TcpCheck, o: &TcpObservations) -> Vec<Evaluation> {
    let expect = &check.expect;
    let all = o.attempts > 0 && o.connected == o.attempts;
    let observed = if all {
        format!("{} of {} connected", o.connected, o.attempts)
    } else {
        format!("{} of {} connected; {}", o.connected, o.attempts, failure_text(o.failure, o.detail.as_deref()))
    };
    let mut ev = vec![Evaluation::new("connect", "every connect attempt succeeds", observed, all)];
    if let Some(limit) = expect.connect_max {
        ev.push(match o.connect {
            Some(stats) => at_most("connect_max", limit, stats.max),
            None => Evaluation::new("connect_max", format!("≤ {}", fmt_duration(limit)), "no connection", false),
        });
    }
    if let Some(re) = &check.expect_banner {
        let expected = format!("a banner matching /{}/", re.as_str());
        ev.push(match &o.banner {
            Some(b) => Evaluation::new("expect_banner", expected, format!("{b:?}"), re.is_match(b)),
            None => Evaluation::new(
                "expect_banner",
                expected,
                format!("no banner ({})", failure_text(o.failure, o.detail.as_deref())),
                false,
            ),
        });
    }
    ev
}

/// Case-insensitive, trailing dot ignored: DNS names compare that way.
fn dns_norm(s: &str) -> String {
    s.trim_end_matches('.').to_ascii_lowercase()
}

fn dns(expect: &DnsExpect, o: &DnsObservations) -> Vec<Evaluation> {
    let Some(rcode) = o.rcode.as_deref() else {
        return vec![Evaluation::new(
            "response",
            format!("a response from {}", o.server),
            failure_text(o.failure, o.detail.as_deref()),
            false,
        )];
    };
    let mut ev = vec![Evaluation::new("rcode", expect.rcode.clone(), rcode, rcode.eq_ignore_ascii_case(&expect.rcode))];
    if expect.min_answers > 0 {
        ev.push(Evaluation::new(
            "min_answers",
            format!("≥ {}", expect.min_answers),
            format!("{} ({})", o.answers.len(), list_or_none(&o.answers)),
            o.answers.len() >= expect.min_answers,
        ));
    }
    if !expect.answers_include.is_empty() {
        let have: Vec<String> = o.answers.iter().map(|a| dns_norm(a)).collect();
        let missing: Vec<&String> =
            expect.answers_include.iter().filter(|want| !have.contains(&dns_norm(want))).collect();
        ev.push(Evaluation::new(
            "answers_include",
            format!("answers include {}", expect.answers_include.join(", ")),
            if missing.is_empty() {
                list_or_none(&o.answers)
            } else {
                format!(
                    "{} (missing {})",
                    list_or_none(&o.answers),
                    missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )
            },
            missing.is_empty(),
        ));
    }
    let answers = list_or_none(&o.answers);
    if !expect.answers_exactly.is_empty() {
        let mut want: Vec<String> = expect.answers_exactly.iter().map(|a| dns_norm(a)).collect();
        let mut have: Vec<String> = o.answers.iter().map(|a| dns_norm(a)).collect();
        want.sort();
        want.dedup();
        have.sort();
        have.dedup();
        ev.push(Evaluation::new(
            "answers_exactly",
            format!("exactly {}", expect.answers_exactly.join(", ")),
            answers.clone(),
            want == have,
        ));
    }
    if let Some(re) = &expect.answers_match {
        let bad: Vec<&str> = o.answers.iter().filter(|a| !re.is_match(a)).map(String::as_str).collect();
        ev.push(Evaluation::new(
            "answers_match",
            format!("every answer matching /{}/", re.as_str()),
            if o.answers.is_empty() {
                "no answers".to_owned()
            } else if bad.is_empty() {
                answers.clone()
            } else {
                format!("{answers} ({} does not match)", bad.join(", "))
            },
            !o.answers.is_empty() && bad.is_empty(),
        ));
    }
    if !expect.answers_exclude.is_empty() {
        let excluded: Vec<String> = expect.answers_exclude.iter().map(|a| dns_norm(a)).collect();
        let present: Vec<&str> =
            o.answers.iter().filter(|a| excluded.contains(&dns_norm(a))).map(String::as_str).collect();
        ev.push(Evaluation::new(
            "answers_exclude",
            format!("none of {}", expect.answers_exclude.join(", ")),
            if present.is_empty() { answers.clone() } else { format!("{answers} (has {})", present.join(", ")) },
            present.is_empty(),
        ));
    }
    if !expect.answers_in.is_empty() {
        let nets: Vec<String> = expect.answers_in.iter().map(|n| n.to_string()).collect();
        let outside: Vec<&str> = o
            .answers
            .iter()
            .filter(|a| {
                !a.parse::<std::net::IpAddr>().is_ok_and(|ip| expect.answers_in.iter().any(|n| n.contains(&ip)))
            })
            .map(String::as_str)
            .collect();
        ev.push(Evaluation::new(
            "answers_in",
            format!("every answer in {}", nets.join(", ")),
            if o.answers.is_empty() {
                "no answers".to_owned()
            } else if outside.is_empty() {
                answers.clone()
            } else {
                format!("{answers} ({} outside)", outside.join(", "))
            },
            !o.answers.is_empty() && outside.is_empty(),
        ));
    }
    ev
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "no answers".to_owned() } else { items.join(", ") }
}

/// Does a certificate name (possibly `*.example.org`) cover `host`? Wildcards cover exactly one left-most label.
pub fn name_covers(cert_name: &str, host: &str) -> bool {
    let cert = dns_norm(cert_name);
    let host = dns_norm(host);
    match cert.strip_prefix("*.") {
        Some(suffix) => match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix,
            None => false,
        },
        None => cert == host,
    }
}

fn tls(expect: &TlsExpect, verify: bool, o: &TlsObservations, now_unix: i64) -> Vec<Evaluation> {
    let Some(leaf) = o.leaf() else {
        return vec![Evaluation::new(
            "handshake",
            "a completed TLS handshake",
            failure_text(o.failure, o.detail.as_deref()),
            false,
        )];
    };
    let mut ev = Vec::new();
    match o.failure {
        // The chain was presented but did not verify: a finding about the certificate, not the connection.
        None | Some(gonogo_probes::Failure::CertificateInvalid) => {
            if verify {
                let ok = o.chain_verified == Some(true);
                ev.push(Evaluation::new(
                    "chain",
                    "a chain that verifies against the trusted roots",
                    if ok {
                        "verified".to_owned()
                    } else {
                        o.verify_error.clone().unwrap_or_else(|| "did not verify".to_owned())
                    },
                    ok,
                ));
            }
        }
        Some(f) => {
            ev.push(Evaluation::new(
                "handshake",
                "a completed TLS handshake",
                failure_text(Some(f), o.detail.as_deref()),
                false,
            ));
        }
    }
    if let Some(days) = expect.valid_days_min {
        let left_secs = leaf.not_after.saturating_sub(now_unix);
        let left_days = left_secs.div_euclid(86_400);
        ev.push(Evaluation::new(
            "valid_days_min",
            format!("≥ {days} days of validity left"),
            if left_secs < 0 {
                match (-left_secs).div_euclid(86_400) {
                    0 => "expired less than a day ago".to_owned(),
                    1 => "expired 1 day ago".to_owned(),
                    n => format!("expired {n} days ago"),
                }
            } else if left_days == 1 {
                "1 day left".to_owned()
            } else {
                format!("{left_days} days left")
            },
            left_days >= i64::from(days),
        ));
    }
    if !expect.names_include.is_empty() {
        let missing: Vec<&str> = expect
            .names_include
            .iter()
            .filter(|want| !leaf.names.iter().any(|n| name_covers(n, want)))
            .map(String::as_str)
            .collect();
        ev.push(Evaluation::new(
            "names_include",
            format!("certificate covers {}", expect.names_include.join(", ")),
            if missing.is_empty() {
                leaf.names.join(", ")
            } else {
                format!("certificate names {} (missing {})", list_or_none(&leaf.names), missing.join(", "))
            },
            missing.is_empty(),
        ));
    }
    if let Some(min) = expect.min_version.as_deref() {
        let seen = o.version.as_deref().unwrap_or("unknown");
        ev.push(Evaluation::new(
            "min_version",
            format!("TLS ≥ {min}"),
            format!("TLS {seen}"),
            version_rank(seen).is_some_and(|v| Some(v) >= version_rank(min)),
        ));
    }
    if let Some(re) = &expect.issuer_matches {
        ev.push(Evaluation::new(
            "issuer_matches",
            format!("an issuer matching /{}/", re.as_str()),
            leaf.issuer.clone(),
            re.is_match(&leaf.issuer),
        ));
    }
    if let Some(days) = expect.chain_valid_days_min
        && let Some(first) = o.chain.iter().min_by_key(|c| c.not_after)
    {
        let left_days = first.not_after.saturating_sub(now_unix).div_euclid(86_400);
        ev.push(Evaluation::new(
            "chain_valid_days_min",
            format!("every certificate of the chain valid ≥ {days} more days"),
            if left_days < 0 {
                format!("{} expired {} days ago", first.subject, -left_days)
            } else {
                format!("{} expires first, in {left_days} days", first.subject)
            },
            left_days >= i64::from(days),
        ));
    }
    if let Some(want) = &expect.fingerprint_sha256 {
        ev.push(Evaluation::new(
            "fingerprint_sha256",
            format!("leaf SHA-256 {want}"),
            leaf.sha256.clone(),
            leaf.sha256.eq_ignore_ascii_case(want),
        ));
    }
    ev
}

fn version_rank(v: &str) -> Option<u8> {
    match v {
        "1.0" => Some(10),
        "1.1" => Some(11),
        "1.2" => Some(12),
        "1.3" => Some(13),
        _ => None,
    }
}

fn http(expect: &HttpExpect, o: &HttpObservations) -> Vec<Evaluation> {
    let Some(status) = o.status else {
        return vec![Evaluation::new(
            "response",
            "an HTTP response",
            failure_text(o.failure, o.detail.as_deref()),
            false,
        )];
    };
    // A status line followed by a failure (too many redirects, a body cut short, a timeout reading it) is not
    // a response to judge: the last status seen may be a redirect that was never followed.
    if o.failure.is_some() {
        return vec![Evaluation::new(
            "response",
            "a complete HTTP exchange",
            format!("{} (after HTTP {status})", failure_text(o.failure, o.detail.as_deref())),
            false,
        )];
    }
    let mut ev = Vec::new();
    if expect.status.is_empty() {
        ev.push(Evaluation::new("status", "2xx", status.to_string(), (200..300).contains(&status)));
    } else {
        let list = expect.status.iter().map(|&r| status_range(r)).collect::<Vec<_>>().join(" or ");
        let met = expect.status.iter().any(|&(lo, hi)| (lo..=hi).contains(&status));
        ev.push(Evaluation::new("status", list, status.to_string(), met));
    }
    if let Some(re) = &expect.body_matches {
        let met = re.is_match(&o.body);
        let observed = if met {
            "body matches".to_owned()
        } else if o.body_truncated {
            format!("no match in the first {} bytes read (body truncated at the limit)", o.body.len())
        } else {
            format!("no match in {} bytes", o.body_bytes)
        };
        ev.push(Evaluation::new("body_matches", format!("body matching /{}/", re.as_str()), observed, met));
    }
    if let Some(re) = &expect.body_not_matches {
        let hit = re.find(&o.body).map(|m| m.as_str().chars().take(80).collect::<String>());
        ev.push(Evaluation::new(
            "body_not_matches",
            format!("no body match for /{}/", re.as_str()),
            match &hit {
                Some(m) => format!("body contains {m:?}"),
                None => "no match".to_owned(),
            },
            hit.is_none(),
        ));
    }
    for (name, re) in &expect.header_matches {
        let seen = o.headers.get(name.as_str());
        ev.push(Evaluation::new(
            "header_matches",
            format!("header {name} matching /{}/", re.as_str()),
            match seen {
                Some(v) => format!("{name}: {v}"),
                None => format!("no {name} header"),
            },
            seen.is_some_and(|v| re.is_match(v)),
        ));
    }
    if let Some(limit) = expect.latency_max {
        ev.push(match o.total_time {
            Some(t) => at_most("latency_max", limit, t),
            None => Evaluation::new("latency_max", format!("≤ {}", fmt_duration(limit)), "not measured", false),
        });
    }
    ev
}

/// `200`, `2xx` for 200–299, `300-399`.
fn status_range((lo, hi): (u16, u16)) -> String {
    if lo == hi {
        lo.to_string()
    } else if lo % 100 == 0 && hi == lo + 99 {
        format!("{}xx", lo / 100)
    } else {
        format!("{lo}-{hi}")
    }
}

fn mtu(expect: &MtuExpect, o: &MtuObservations) -> Vec<Evaluation> {
    let Some(path) = o.path_mtu else {
        return vec![Evaluation::new(
            "path_mtu",
            "a path MTU (an echo reply at some size)",
            failure_text(o.failure, o.detail.as_deref()),
            false,
        )];
    };
    let mut ev = Vec::new();
    if let Some(min) = expect.path_mtu_min {
        let iface = o.interface_mtu.map(|i| format!(" (interface MTU {i})")).unwrap_or_default();
        ev.push(Evaluation::new(
            "path_mtu_min",
            format!("≥ {min} bytes"),
            format!("{path} bytes{iface}"),
            path >= u32::from(min),
        ));
    }
    ev
}

fn egress(expect: &EgressExpect, o: &EgressObservations) -> Vec<Evaluation> {
    let Some(addr) = o.address else {
        return vec![Evaluation::new(
            "address",
            "the service to report this site's public address",
            failure_text(o.failure, o.detail.as_deref()),
            false,
        )];
    };
    let nets: Vec<String> = expect.egress_in.iter().map(|n| n.to_string()).collect();
    vec![Evaluation::new(
        "egress_in",
        format!("an egress address in {}", nets.join(", ")),
        addr.to_string(),
        expect.egress_in.iter().any(|n| n.contains(&addr)),
    )]
}

/// The phase verdict and what led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseVerdict {
    pub verdict: Verdict,
    /// One sentence each: why the verdict is not GO (empty for GO).
    pub blocking: Vec<String>,
    /// Advisory checks that did not pass: listed, never blocking.
    pub warnings: Vec<String>,
}

/// What the phase verdict needs to know of one check.
#[derive(Debug, Clone, Copy)]
pub struct CheckSummary<'a> {
    pub name: &'a str,
    pub required: bool,
    pub outcome: Outcome,
}

/// DESIGN.md §2: GO when every required check passes; NO-GO when a required check fails; INCONCLUSIVE when a
/// required check could not be decided (inconclusive or error) and none failed. Advisory checks never block.
/// Skipped checks were not asked for and do not count. A phase with nothing run is INCONCLUSIVE, never GO.
pub fn phase_verdict(checks: &[CheckSummary<'_>]) -> PhaseVerdict {
    phase_verdict_with(checks, None)
}

/// What the phase verdict needs of a baseline comparison.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)] // holds a closure
pub struct Baseline<'a> {
    pub comparison: &'a crate::compare::Comparison,
    /// Whether a check's pre-existing failure blocks anyway (`block_preexisting = true`).
    pub blocks_preexisting: &'a dyn Fn(&str) -> bool,
}

/// The phase verdict, judged against a baseline run when there is one: a required check that fails now but
/// passed in the baseline is a *regression* (NO-GO: the change broke it); one that already failed in the
/// baseline is *pre-existing*: a warning (investigate, do not roll back) unless the check says
/// `block_preexisting`; a passing check that drifted beyond a tolerance is a regression too.
pub fn phase_verdict_with(checks: &[CheckSummary<'_>], baseline: Option<Baseline<'_>>) -> PhaseVerdict {
    use crate::compare::CompareStatus;
    let mut failed = Vec::new();
    let mut undecided = Vec::new();
    let mut warnings = Vec::new();
    let mut decided = 0usize;
    for c in checks {
        let compared = baseline.and_then(|b| b.comparison.check(c.name).map(|cc| (b, cc)));
        let status = compared.map(|(_, cc)| cc.status);
        let base_id = baseline.map_or("", |b| b.comparison.baseline_id.as_str());
        let drifted = compared.map(|(_, cc)| cc.exceeded().join("; ")).unwrap_or_default();
        match (c.required, c.outcome, status) {
            (_, Outcome::Skipped, _) => {}
            (true, Outcome::Fail, Some(CompareStatus::PreExisting))
                if compared.is_some_and(|(b, _)| !(b.blocks_preexisting)(c.name)) =>
            {
                decided += 1;
                warnings.push(format!(
                    "required check {} fails as it did in baseline run {base_id}: pre-existing, not caused by the \
                     change (investigate; no rollback needed for it)",
                    c.name
                ));
            }
            (true, Outcome::Fail, Some(CompareStatus::PreExisting)) => failed.push(format!(
                "required check {} failed (pre-existing in baseline run {base_id}, and it blocks: \
                 block_preexisting)",
                c.name
            )),
            (true, Outcome::Fail, Some(CompareStatus::Regression)) => failed.push(format!(
                "required check {} regressed: it did not fail in baseline run {base_id} and fails now (broken by \
                 the change)",
                c.name
            )),
            (true, Outcome::Fail, _) => failed.push(format!("required check {} failed", c.name)),
            (true, Outcome::Pass, Some(CompareStatus::Regression)) => {
                failed.push(format!("required check {} regressed beyond tolerance: {drifted}", c.name))
            }
            (true, Outcome::Pass, _) => decided += 1,
            (true, Outcome::Inconclusive | Outcome::Error, _) => {
                undecided.push(format!("required check {} is {}", c.name, c.outcome))
            }
            (false, Outcome::Pass, Some(CompareStatus::Regression)) => {
                decided += 1;
                warnings.push(format!("advisory check {} drifted beyond tolerance: {drifted}", c.name));
            }
            (false, Outcome::Pass, _) => decided += 1,
            (false, o, Some(CompareStatus::Regression)) => {
                warnings.push(format!("advisory check {} is {o} (regression since baseline run {base_id})", c.name))
            }
            (false, o, Some(CompareStatus::PreExisting)) => {
                warnings.push(format!("advisory check {} is {o} (pre-existing in baseline run {base_id})", c.name))
            }
            (false, o, _) => warnings.push(format!("advisory check {} is {o}", c.name)),
        }
    }
    let verdict = if !failed.is_empty() {
        Verdict::NoGo
    } else if !undecided.is_empty() {
        Verdict::Inconclusive
    } else if decided == 0 && warnings.is_empty() {
        undecided.push("no check ran".to_owned());
        Verdict::Inconclusive
    } else {
        Verdict::Go
    };
    failed.extend(undecided);
    PhaseVerdict { verdict, blocking: if verdict == Verdict::Go { Vec::new() } else { failed }, warnings }
}

/// `0.052ms`, `12.3ms`, `1.52s`: short, for tables and reasons.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{ms:.3}ms")
    } else if ms < 100.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// A ratio as a percentage: `0%`, `12.5%`.
pub fn fmt_ratio(r: f64) -> String {
    let pct = r * 100.0;
    if (pct - pct.round()).abs() < 1e-9 { format!("{pct:.0}%") } else { format!("{pct:.1}%") }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gonogo_config::{DnsCheck, HttpCheck, IcmpCheck, TcpCheck, TcpExpect, TlsCheck};
    use gonogo_probes::tls::CertInfo;
    use gonogo_probes::{Failure, RttStats};

    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn icmp_spec(expect: IcmpExpect) -> CheckSpec {
        CheckSpec::Icmp(IcmpCheck {
            target: "127.0.0.1".into(),
            count: 5,
            interval: ms(200),
            size: 56,
            expect,
            ..Default::default()
        })
    }

    fn icmp_obs(rtts: &[Option<u64>]) -> Observations {
        Observations::Icmp(crate::fixtures::icmp(rtts))
    }

    fn judge_now(spec: &CheckSpec, obs: &Observations) -> Judgement {
        judge(spec, Measured::Observed(obs), NOW)
    }

    fn failed_keys(j: &Judgement) -> Vec<&str> {
        j.evaluations.iter().filter(|e| !e.met).map(|e| e.expectation.as_str()).collect()
    }

    // ---- ICMP -------------------------------------------------------------------------------------------------

    #[test]
    fn icmp_without_expectations_passes_on_any_reply_and_fails_on_none() {
        let spec = icmp_spec(IcmpExpect::default());
        assert_eq!(judge_now(&spec, &icmp_obs(&[None, None, Some(3)])).outcome, Outcome::Pass);
        let j = judge_now(&spec, &icmp_obs(&[None, None]));
        assert_eq!(j.outcome, Outcome::Fail);
        assert_eq!(failed_keys(&j), ["reply"]);
        assert!(j.reasons[0].contains("no reply") && j.reasons[0].contains("timeout"), "{:?}", j.reasons);
    }

    #[test]
    fn icmp_loss_max_both_ways() {
        let spec = icmp_spec(IcmpExpect { loss_max: Some(0.2), ..Default::default() });
        assert_eq!(judge_now(&spec, &icmp_obs(&[Some(1), Some(1), Some(1), Some(1), None])).outcome, Outcome::Pass);
        let j = judge_now(&spec, &icmp_obs(&[Some(1), Some(1), Some(1), None, None]));
        assert_eq!(failed_keys(&j), ["loss_max"]);
        assert_eq!(j.reasons, ["loss_max: expected ≤ 20%, observed 40% (2 of 5 lost)"]);
        // Exactly zero loss allowed.
        let spec = icmp_spec(IcmpExpect { loss_max: Some(0.0), ..Default::default() });
        assert_eq!(judge_now(&spec, &icmp_obs(&[Some(1); 5])).outcome, Outcome::Pass);
        assert_eq!(judge_now(&spec, &icmp_obs(&[Some(1), None])).outcome, Outcome::Fail);
    }

    #[test]
    fn icmp_rtt_and_jitter_both_ways() {
        let obs = icmp_obs(&[Some(10), Some(20), Some(10), Some(20)]); // mean 15, p95 20, jitter 10
        for (expect, key) in [
            (IcmpExpect { rtt_mean_max: Some(ms(15)), ..Default::default() }, None),
            (IcmpExpect { rtt_mean_max: Some(ms(14)), ..Default::default() }, Some("rtt_mean_max")),
            (IcmpExpect { rtt_p95_max: Some(ms(20)), ..Default::default() }, None),
            (IcmpExpect { rtt_p95_max: Some(ms(19)), ..Default::default() }, Some("rtt_p95_max")),
            (IcmpExpect { jitter_max: Some(ms(10)), ..Default::default() }, None),
            (IcmpExpect { jitter_max: Some(ms(9)), ..Default::default() }, Some("jitter_max")),
        ] {
            let j = judge_now(&icmp_spec(expect), &obs);
            match key {
                None => assert_eq!(j.outcome, Outcome::Pass, "{j:?}"),
                Some(k) => {
                    assert_eq!(failed_keys(&j), [k]);
                    assert!(j.reasons[0].starts_with(&format!("{k}: expected ≤ ")), "{:?}", j.reasons);
                }
            }
        }
        // With no reply there is nothing to measure: the RTT expectation fails too, and says why.
        let j =
            judge_now(&icmp_spec(IcmpExpect { rtt_p95_max: Some(ms(5)), ..Default::default() }), &icmp_obs(&[None]));
        assert_eq!(failed_keys(&j), ["reply", "rtt_p95_max"]);
        assert!(j.reasons[1].contains("no replies to measure"));
    }

    // ---- TCP --------------------------------------------------------------------------------------------------

    fn tcp_obs(samples: &[Option<u64>], failure: Option<Failure>) -> Observations {
        let got: Vec<Duration> = samples.iter().flatten().map(|&v| ms(v)).collect();
        Observations::Tcp(TcpObservations {
            address: Some("127.0.0.1:80".parse().expect("addr")),
            attempts: samples.len() as u32,
            connected: got.len() as u32,
            connect: RttStats::from_samples(&got),
            samples_ms: samples.iter().map(|s| s.map(|v| v as f64)).collect(),
            failure,
            banner: None,
            detail: failure.map(|_| "Connection refused (os error 111)".into()),
        })
    }

    fn tcp_spec(connect_max: Option<Duration>) -> CheckSpec {
        CheckSpec::Tcp(TcpCheck {
            host: "127.0.0.1".into(),
            port: 80,
            count: 3,
            expect: TcpExpect { connect_max },
            ..Default::default()
        })
    }

    #[test]
    fn tcp_connect_and_connect_max_both_ways() {
        assert_eq!(judge_now(&tcp_spec(None), &tcp_obs(&[Some(1), Some(2)], None)).outcome, Outcome::Pass);
        let j = judge_now(&tcp_spec(None), &tcp_obs(&[Some(1), None], Some(Failure::ConnectionRefused)));
        assert_eq!(failed_keys(&j), ["connect"]);
        assert!(j.reasons[0].contains("1 of 2 connected; connection_refused: Connection refused"), "{:?}", j.reasons);
        assert_eq!(judge_now(&tcp_spec(Some(ms(5))), &tcp_obs(&[Some(1), Some(5)], None)).outcome, Outcome::Pass);
        let j = judge_now(&tcp_spec(Some(ms(4))), &tcp_obs(&[Some(1), Some(5)], None));
        assert_eq!(j.reasons, ["connect_max: expected ≤ 4.0ms, observed 5.0ms"]);
        let j = judge_now(&tcp_spec(Some(ms(4))), &tcp_obs(&[None], Some(Failure::Timeout)));
        assert_eq!(failed_keys(&j), ["connect", "connect_max"]);
    }

    // ---- DNS --------------------------------------------------------------------------------------------------

    fn dns_spec(rcode: &str, min_answers: usize, include: &[&str]) -> CheckSpec {
        CheckSpec::Dns(DnsCheck {
            query: "app.test".into(),
            record: "A".into(),
            servers: vec![],
            transport: "udp".into(),
            expect: DnsExpect {
                rcode: rcode.into(),
                min_answers,
                answers_include: include.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        })
    }

    fn dns_obs(rcode: Option<&str>, answers: &[&str]) -> Observations {
        Observations::Dns(DnsObservations {
            server: "127.0.0.1:53/udp".into(),
            rcode: rcode.map(str::to_owned),
            answers: answers.iter().map(|s| s.to_string()).collect(),
            lookup_time: ms(2),
            failure: if rcode.is_none() { Some(Failure::Timeout) } else { None },
            detail: None,
        })
    }

    #[test]
    fn dns_rcode_both_ways() {
        assert_eq!(
            judge_now(&dns_spec("NOERROR", 1, &[]), &dns_obs(Some("NOERROR"), &["10.0.0.1"])).outcome,
            Outcome::Pass
        );
        let j = judge_now(&dns_spec("NOERROR", 1, &[]), &dns_obs(Some("NXDOMAIN"), &[]));
        assert_eq!(failed_keys(&j), ["rcode", "min_answers"]);
        assert_eq!(j.reasons[0], "rcode: expected NOERROR, observed NXDOMAIN");
        // Expecting NXDOMAIN (a name that must not exist any more).
        assert_eq!(judge_now(&dns_spec("NXDOMAIN", 0, &[]), &dns_obs(Some("NXDOMAIN"), &[])).outcome, Outcome::Pass);
    }

    #[test]
    fn dns_min_answers_and_answers_include_both_ways() {
        let obs = dns_obs(Some("NOERROR"), &["10.0.0.1", "App.Test."]);
        assert_eq!(judge_now(&dns_spec("NOERROR", 2, &[]), &obs).outcome, Outcome::Pass);
        let j = judge_now(&dns_spec("NOERROR", 3, &[]), &obs);
        assert_eq!(j.reasons, ["min_answers: expected ≥ 3, observed 2 (10.0.0.1, App.Test.)"]);
        assert_eq!(judge_now(&dns_spec("NOERROR", 1, &["10.0.0.1", "app.test"]), &obs).outcome, Outcome::Pass);
        let j = judge_now(&dns_spec("NOERROR", 1, &["10.0.0.1", "10.0.0.9"]), &obs);
        assert_eq!(failed_keys(&j), ["answers_include"]);
        assert!(j.reasons[0].contains("missing 10.0.0.9"), "{:?}", j.reasons);
        // NOERROR with no data fails the default min_answers = 1.
        let j = judge_now(&dns_spec("NOERROR", 1, &[]), &dns_obs(Some("NOERROR"), &[]));
        assert_eq!(j.reasons, ["min_answers: expected ≥ 1, observed 0 (no answers)"]);
    }

    #[test]
    fn dns_without_response_fails_with_the_probe_failure() {
        let j = judge_now(&dns_spec("NOERROR", 1, &["10.0.0.1"]), &dns_obs(None, &[]));
        assert_eq!(failed_keys(&j), ["response"]);
        assert!(j.reasons[0].contains("127.0.0.1:53/udp") && j.reasons[0].contains("timeout"), "{:?}", j.reasons);
    }

    // ---- TLS --------------------------------------------------------------------------------------------------

    fn cert(names: &[&str], not_after: i64) -> CertInfo {
        CertInfo {
            subject: "CN=app.test".into(),
            issuer: "CN=Test CA".into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            not_before: NOW - 10 * DAY,
            not_after,
            serial: "01".into(),
            sha256: "00".repeat(32),
        }
    }

    fn tls_obs(chain: Vec<CertInfo>, verified: Option<bool>, failure: Option<Failure>, version: &str) -> Observations {
        Observations::Tls(TlsObservations {
            address: Some("127.0.0.1:443".parse().expect("addr")),
            handshake_time: Some(ms(3)),
            version: Some(version.into()),
            cipher: Some("TLS13_AES_128_GCM_SHA256".into()),
            alpn: None,
            chain_verified: verified,
            verify_error: if verified == Some(false) { Some("certificate expired".into()) } else { None },
            chain,
            failure,
            detail: failure.map(|_| "handshake failed".into()),
        })
    }

    fn tls_spec(verify: bool, expect: TlsExpect) -> CheckSpec {
        CheckSpec::Tls(TlsCheck {
            host: "app.test".into(),
            port: 443,
            server_name: "app.test".into(),
            ca_file: None,
            verify,
            expect,
            ..Default::default()
        })
    }

    #[test]
    fn tls_chain_verification_both_ways_and_verify_false() {
        let good = tls_obs(vec![cert(&["app.test"], NOW + 90 * DAY)], Some(true), None, "1.3");
        assert_eq!(judge_now(&tls_spec(true, TlsExpect::default()), &good).outcome, Outcome::Pass);
        let bad = tls_obs(vec![cert(&["app.test"], NOW - DAY)], Some(false), Some(Failure::CertificateInvalid), "1.3");
        let j = judge_now(&tls_spec(true, TlsExpect::default()), &bad);
        assert_eq!(
            j.reasons,
            ["chain: expected a chain that verifies against the trusted roots, observed certificate expired"]
        );
        let unverified = tls_obs(vec![cert(&["app.test"], NOW + 90 * DAY)], Some(false), None, "1.3");
        assert_eq!(judge_now(&tls_spec(false, TlsExpect::default()), &unverified).outcome, Outcome::Pass);
    }

    #[test]
    fn tls_handshake_failure_without_chain() {
        let obs = tls_obs(vec![], None, Some(Failure::ConnectionRefused), "1.3");
        let j = judge_now(&tls_spec(true, TlsExpect { valid_days_min: Some(30), ..Default::default() }), &obs);
        assert_eq!(failed_keys(&j), ["handshake"]);
        assert!(j.reasons[0].contains("connection_refused"));
    }

    #[test]
    fn tls_valid_days_min_both_ways() {
        let obs = tls_obs(vec![cert(&["app.test"], NOW + 30 * DAY + 5)], Some(true), None, "1.3");
        let spec = |d| tls_spec(true, TlsExpect { valid_days_min: Some(d), ..Default::default() });
        assert_eq!(judge_now(&spec(30), &obs).outcome, Outcome::Pass);
        let j = judge_now(&spec(31), &obs);
        assert_eq!(j.reasons, ["valid_days_min: expected ≥ 31 days of validity left, observed 30 days left"]);
        let expired = tls_obs(vec![cert(&["app.test"], NOW - 3 * DAY)], Some(true), None, "1.3");
        assert!(judge_now(&spec(0), &expired).reasons[0].contains("expired 3 days ago"));
        for (not_after, text) in [(NOW - DAY - 5, "expired 1 day ago"), (NOW - 5, "expired less than a day ago")] {
            let obs = tls_obs(vec![cert(&["app.test"], not_after)], Some(true), None, "1.3");
            assert!(judge_now(&spec(0), &obs).reasons[0].ends_with(text), "{text}");
        }
        let one = tls_obs(vec![cert(&["app.test"], NOW + DAY + 5)], Some(true), None, "1.3");
        assert!(judge_now(&spec(2), &one).reasons[0].ends_with("observed 1 day left"));
    }

    #[test]
    fn tls_names_include_both_ways_with_wildcards() {
        let obs = tls_obs(vec![cert(&["app.test", "*.svc.test"], NOW + 90 * DAY)], Some(true), None, "1.3");
        let spec = |names: &[&str]| {
            tls_spec(
                true,
                TlsExpect { names_include: names.iter().map(|s| s.to_string()).collect(), ..Default::default() },
            )
        };
        assert_eq!(judge_now(&spec(&["APP.test", "api.svc.test"]), &obs).outcome, Outcome::Pass);
        let j = judge_now(&spec(&["a.b.svc.test", "other.test"]), &obs);
        assert_eq!(failed_keys(&j), ["names_include"]);
        assert!(j.reasons[0].contains("missing a.b.svc.test, other.test"), "{:?}", j.reasons);
    }

    #[test]
    fn name_covers_rules() {
        assert!(name_covers("*.example.org", "a.example.org"));
        assert!(!name_covers("*.example.org", "example.org"));
        assert!(!name_covers("*.example.org", "a.b.example.org"));
        assert!(name_covers("Example.org.", "example.org"));
        assert!(!name_covers("example.org", "www.example.org"));
    }

    #[test]
    fn tls_min_version_both_ways() {
        let v12 = tls_obs(vec![cert(&["app.test"], NOW + 90 * DAY)], Some(true), None, "1.2");
        let spec = |v: &str| tls_spec(true, TlsExpect { min_version: Some(v.into()), ..Default::default() });
        assert_eq!(judge_now(&spec("1.2"), &v12).outcome, Outcome::Pass);
        let j = judge_now(&spec("1.3"), &v12);
        assert_eq!(j.reasons, ["min_version: expected TLS ≥ 1.3, observed TLS 1.2"]);
    }

    // ---- HTTP -------------------------------------------------------------------------------------------------

    fn http_spec(expect: HttpExpect) -> CheckSpec {
        CheckSpec::Http(HttpCheck {
            url: "http://127.0.0.1/".into(),
            method: "GET".into(),
            headers: vec![],
            ca_file: None,
            verify: true,
            proxy: gonogo_config::Proxy::None,
            follow_redirects: true,
            body_limit: 1024,
            expect,
            ..Default::default()
        })
    }

    fn http_obs(status: Option<u16>, body: &str, total: u64) -> Observations {
        Observations::Http(HttpObservations {
            status,
            final_url: Some("http://127.0.0.1/".into()),
            redirects: 0,
            headers: BTreeMap::new(),
            body_bytes: body.len() as u64,
            body_truncated: false,
            headers_truncated: false,
            body: body.into(),
            time_to_headers: Some(ms(total / 2)),
            total_time: Some(ms(total)),
            failure: if status.is_none() { Some(Failure::Timeout) } else { None },
            detail: None,
        })
    }

    #[test]
    fn http_status_default_2xx_and_list_both_ways() {
        let any = http_spec(HttpExpect::default());
        assert_eq!(judge_now(&any, &http_obs(Some(204), "", 5)).outcome, Outcome::Pass);
        assert_eq!(judge_now(&any, &http_obs(Some(302), "", 5)).reasons, ["status: expected 2xx, observed 302"]);
        let listed = http_spec(HttpExpect { status: vec![(200, 200), (401, 401)], ..Default::default() });
        assert_eq!(judge_now(&listed, &http_obs(Some(401), "", 5)).outcome, Outcome::Pass);
        assert_eq!(
            judge_now(&listed, &http_obs(Some(500), "", 5)).reasons,
            ["status: expected 200 or 401, observed 500"]
        );
    }

    #[test]
    fn http_body_matches_and_latency_max_both_ways() {
        let re = regex::Regex::new("status.*ok").expect("regex");
        let spec = http_spec(HttpExpect { body_matches: Some(re), latency_max: Some(ms(50)), ..Default::default() });
        assert_eq!(judge_now(&spec, &http_obs(Some(200), r#"{"status": "ok"}"#, 50)).outcome, Outcome::Pass);
        let j = judge_now(&spec, &http_obs(Some(200), "maintenance", 51));
        assert_eq!(failed_keys(&j), ["body_matches", "latency_max"]);
        assert_eq!(j.reasons[0], "body_matches: expected body matching /status.*ok/, observed no match in 11 bytes");
        assert_eq!(j.reasons[1], "latency_max: expected ≤ 50.0ms, observed 51.0ms");
    }

    #[test]
    fn http_without_response_fails_with_the_probe_failure() {
        let j = judge_now(&http_spec(HttpExpect::default()), &http_obs(None, "", 0));
        assert_eq!(failed_keys(&j), ["response"]);
    }

    // ---- measurement problems ---------------------------------------------------------------------------------

    #[test]
    fn probe_error_is_an_error_outcome_carrying_the_fix() {
        let j = judge(&icmp_spec(IcmpExpect::default()), Measured::Error("grant CAP_NET_RAW"), NOW);
        assert_eq!(j.outcome, Outcome::Error);
        assert_eq!(j.reasons, ["grant CAP_NET_RAW"]);
    }

    #[test]
    fn overrun_is_a_timeout_failure() {
        let j = judge(&icmp_spec(IcmpExpect::default()), Measured::Overran(ms(2500)), NOW);
        assert_eq!(j.outcome, Outcome::Fail);
        assert_eq!(
            j.reasons,
            ["timeout: expected a result within 2.50s, observed none: the probe was stopped (timeout)"]
        );
    }

    #[test]
    fn mismatched_kinds_are_an_internal_error_not_a_panic() {
        let j = judge_now(&icmp_spec(IcmpExpect::default()), &http_obs(Some(200), "", 1));
        assert_eq!(j.outcome, Outcome::Error);
    }

    // ---- phase verdict ----------------------------------------------------------------------------------------

    fn summary(required: bool, outcome: Outcome) -> CheckSummary<'static> {
        CheckSummary { name: "c", required, outcome }
    }

    #[test]
    fn phase_verdict_every_required_outcome() {
        use Outcome::*;
        let expected = [
            (Pass, Verdict::Go),
            (Fail, Verdict::NoGo),
            (Inconclusive, Verdict::Inconclusive),
            (Error, Verdict::Inconclusive),
        ];
        for (outcome, verdict) in expected {
            let v = phase_verdict(&[summary(true, Pass), summary(true, outcome)]);
            assert_eq!(v.verdict, verdict, "required {outcome}");
            assert_eq!(v.blocking.is_empty(), verdict == Verdict::Go);
            assert!(v.warnings.is_empty());
        }
    }

    #[test]
    fn advisory_outcomes_never_block_but_warn() {
        for outcome in Outcome::ALL {
            let v = phase_verdict(&[summary(true, Outcome::Pass), summary(false, outcome)]);
            assert_eq!(v.verdict, Verdict::Go, "advisory {outcome}");
            let warned = !matches!(outcome, Outcome::Pass | Outcome::Skipped);
            assert_eq!(v.warnings.len(), usize::from(warned), "advisory {outcome}");
        }
        // An advisory failure alone still gives GO, with its warning.
        let v = phase_verdict(&[summary(false, Outcome::Fail)]);
        assert_eq!((v.verdict, v.warnings.len()), (Verdict::Go, 1));
    }

    #[test]
    fn fail_outranks_undecided_and_both_are_listed() {
        let v = phase_verdict(&[
            CheckSummary { name: "a", required: true, outcome: Outcome::Error },
            CheckSummary { name: "b", required: true, outcome: Outcome::Fail },
        ]);
        assert_eq!(v.verdict, Verdict::NoGo);
        assert_eq!(v.blocking, ["required check b failed", "required check a is error"]);
    }

    #[test]
    fn nothing_run_is_never_go() {
        assert_eq!(phase_verdict(&[]).verdict, Verdict::Inconclusive);
        assert_eq!(phase_verdict(&[summary(true, Outcome::Skipped)]).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn exit_codes() {
        assert_eq!([Verdict::Go, Verdict::NoGo, Verdict::Inconclusive].map(Verdict::exit_code), [0, 1, 2]);
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_duration(Duration::from_micros(52)), "0.052ms");
        assert_eq!(fmt_duration(Duration::from_micros(12_340)), "12.3ms");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_millis(1520)), "1.52s");
        assert_eq!(fmt_ratio(0.0), "0%");
        assert_eq!(fmt_ratio(0.125), "12.5%");
    }

    // ==== probe depth (issue 3): the expectations added beyond v1, `judge_check` and `expect_failure` ==========

    mod depth {
        use std::net::IpAddr;

        use gonogo_config::{EgressCheck, IpMode, MtuCheck};
        use gonogo_probes::mtu::{MtuOutcome, MtuStep};

        use super::*;

        fn re(s: &str) -> regex::Regex {
            regex::Regex::new(s).expect("regex")
        }

        // ---- tcp: expect_banner -----------------------------------------------------------------------------

        fn banner_spec(pattern: &str) -> CheckSpec {
            CheckSpec::Tcp(TcpCheck {
                host: "127.0.0.1".into(),
                port: 25,
                send: Some("EHLO gonogo\r\n".into()),
                expect_banner: Some(re(pattern)),
                ..Default::default()
            })
        }

        fn banner_obs(banner: Option<&str>, failure: Option<Failure>, detail: Option<&str>) -> Observations {
            let Observations::Tcp(mut o) = tcp_obs(&[Some(1)], None) else { unreachable!() };
            o.banner = banner.map(str::to_owned);
            o.failure = failure;
            o.detail = detail.map(str::to_owned);
            Observations::Tcp(o)
        }

        #[test]
        fn tcp_expect_banner_both_ways() {
            let smtp = banner_obs(Some("220 smtp ready"), None, None);
            let j = judge_now(&banner_spec("^220 "), &smtp);
            assert_eq!(j.outcome, Outcome::Pass, "{j:?}");
            assert_eq!(j.evaluations.last().map(|e| e.observed.as_str()), Some("\"220 smtp ready\""));
            let j = judge_now(&banner_spec("^SSH-2\\.0-"), &smtp);
            assert_eq!(
                j.reasons,
                ["expect_banner: expected a banner matching /^SSH-2\\.0-/, observed \"220 smtp ready\""]
            );
            // Control characters are shown escaped (Debug), so a reason stays one line.
            let two_lines = banner_obs(Some("220-first\r\n220 second"), None, None);
            let j = judge_now(&banner_spec("^554"), &two_lines);
            assert!(j.reasons[0].ends_with("observed \"220-first\\r\\n220 second\""), "{:?}", j.reasons);
        }

        #[test]
        fn tcp_expect_banner_without_a_banner_says_why() {
            let silent = banner_obs(None, Some(Failure::Timeout), Some("no data within 1s"));
            let j = judge_now(&banner_spec("^220"), &silent);
            // The connect itself succeeded: only the banner fails.
            assert_eq!(failed_keys(&j), ["expect_banner"]);
            assert_eq!(
                j.reasons,
                ["expect_banner: expected a banner matching /^220/, observed no banner (timeout: no data within 1s)"]
            );
            let j = judge_now(&banner_spec("^220"), &banner_obs(None, None, None));
            assert_eq!(j.reasons, ["expect_banner: expected a banner matching /^220/, observed no banner (no answer)"]);
            // Without expect_banner a missing banner is not judged.
            let plain = CheckSpec::Tcp(TcpCheck { host: "127.0.0.1".into(), port: 25, ..Default::default() });
            assert_eq!(judge_now(&plain, &banner_obs(None, None, None)).outcome, Outcome::Pass);
        }

        // ---- dns: answers_exactly, answers_match, answers_exclude, answers_in --------------------------------

        fn dns_expect(expect: DnsExpect) -> CheckSpec {
            CheckSpec::Dns(DnsCheck { query: "app.test".into(), expect, ..Default::default() })
        }

        fn strings(list: &[&str]) -> Vec<String> {
            list.iter().map(|s| s.to_string()).collect()
        }

        #[test]
        fn dns_answers_exactly_both_ways() {
            let obs = dns_obs(Some("NOERROR"), &["10.0.0.1", "App.Test."]);
            let exactly =
                |list: &[&str]| dns_expect(DnsExpect { answers_exactly: strings(list), ..Default::default() });
            // Order, case and the trailing dot do not matter.
            assert_eq!(judge_now(&exactly(&["app.test", "10.0.0.1"]), &obs).outcome, Outcome::Pass);
            // A superset of the expected set fails, as does a subset.
            let j = judge_now(&exactly(&["10.0.0.1"]), &obs);
            assert_eq!(j.reasons, ["answers_exactly: expected exactly 10.0.0.1, observed 10.0.0.1, App.Test."]);
            let j = judge_now(&exactly(&["10.0.0.1", "app.test", "10.0.0.2"]), &obs);
            assert_eq!(failed_keys(&j), ["answers_exactly"]);
            let j = judge_now(&exactly(&["10.0.0.1"]), &dns_obs(Some("NOERROR"), &[]));
            assert!(j.reasons.contains(&"answers_exactly: expected exactly 10.0.0.1, observed no answers".to_owned()));
        }

        #[test]
        fn dns_answers_match_both_ways() {
            let obs = dns_obs(Some("NOERROR"), &["10.0.0.1", "10.0.0.2"]);
            let matching = |p: &str| dns_expect(DnsExpect { answers_match: Some(re(p)), ..Default::default() });
            assert_eq!(judge_now(&matching("^10\\.0\\.0\\.\\d+$"), &obs).outcome, Outcome::Pass);
            let j = judge_now(&matching("\\.1$"), &obs);
            assert_eq!(
                j.reasons,
                [
                    "answers_match: expected every answer matching /\\.1$/, observed 10.0.0.1, 10.0.0.2 (10.0.0.2 does not match)"
                ]
            );
            // No answer at all does not vacuously match.
            let none = dns_expect(DnsExpect { min_answers: 0, answers_match: Some(re(".")), ..Default::default() });
            let j = judge_now(&none, &dns_obs(Some("NOERROR"), &[]));
            assert_eq!(j.reasons, ["answers_match: expected every answer matching /./, observed no answers"]);
        }

        #[test]
        fn dns_answers_exclude_both_ways() {
            let obs = dns_obs(Some("NOERROR"), &["10.0.0.1", "203.0.113.7"]);
            let exclude =
                |list: &[&str]| dns_expect(DnsExpect { answers_exclude: strings(list), ..Default::default() });
            assert_eq!(judge_now(&exclude(&["192.0.2.1"]), &obs).outcome, Outcome::Pass);
            let j = judge_now(&exclude(&["192.0.2.1", "203.0.113.7"]), &obs);
            assert_eq!(
                j.reasons,
                [
                    "answers_exclude: expected none of 192.0.2.1, 203.0.113.7, observed 10.0.0.1, 203.0.113.7 (has 203.0.113.7)"
                ]
            );
            // Names compare case-insensitively, trailing dot ignored.
            let names = dns_obs(Some("NOERROR"), &["Old-Gw.Example."]);
            assert_eq!(failed_keys(&judge_now(&exclude(&["old-gw.example"]), &names)), ["answers_exclude"]);
            // No answers: nothing excluded is present (min_answers judges emptiness).
            let none =
                dns_expect(DnsExpect { min_answers: 0, answers_exclude: strings(&["10.0.0.1"]), ..Default::default() });
            assert_eq!(judge_now(&none, &dns_obs(Some("NOERROR"), &[])).outcome, Outcome::Pass);
        }

        #[test]
        fn dns_answers_in_both_ways() {
            let nets = |list: &[&str]| {
                dns_expect(DnsExpect {
                    answers_in: list.iter().map(|n| n.parse().expect("network")).collect(),
                    ..Default::default()
                })
            };
            let obs = dns_obs(Some("NOERROR"), &["10.0.0.1", "192.168.7.7"]);
            assert_eq!(judge_now(&nets(&["10.0.0.0/8", "192.168.0.0/16"]), &obs).outcome, Outcome::Pass);
            let j = judge_now(&nets(&["192.168.0.0/16"]), &obs);
            assert_eq!(
                j.reasons,
                [
                    "answers_in: expected every answer in 192.168.0.0/16, observed 10.0.0.1, 192.168.7.7 (10.0.0.1 outside)"
                ]
            );
            // IPv6 answers and networks.
            let v6 = dns_obs(Some("NOERROR"), &["fd00::1"]);
            assert_eq!(judge_now(&nets(&["fd00::/8"]), &v6).outcome, Outcome::Pass);
            assert_eq!(failed_keys(&judge_now(&nets(&["10.0.0.0/8"]), &v6)), ["answers_in"]);
            // An answer that is not an address is outside every network.
            let name = dns_obs(Some("NOERROR"), &["app.test"]);
            assert!(judge_now(&nets(&["10.0.0.0/8"]), &name).reasons[0].ends_with("(app.test outside)"));
            // No answer at all does not vacuously pass.
            let none = dns_expect(DnsExpect {
                min_answers: 0,
                answers_in: vec!["10.0.0.0/8".parse().expect("network")],
                ..Default::default()
            });
            let j = judge_now(&none, &dns_obs(Some("NOERROR"), &[]));
            assert_eq!(j.reasons, ["answers_in: expected every answer in 10.0.0.0/8, observed no answers"]);
        }

        #[test]
        fn dns_new_expectations_need_a_response() {
            let spec = dns_expect(DnsExpect {
                answers_exactly: strings(&["10.0.0.1"]),
                answers_match: Some(re(".")),
                answers_exclude: strings(&["10.0.0.2"]),
                answers_in: vec!["10.0.0.0/8".parse().expect("network")],
                ..Default::default()
            });
            assert_eq!(failed_keys(&judge_now(&spec, &dns_obs(None, &[]))), ["response"]);
        }

        // ---- tls: issuer_matches, chain_valid_days_min, fingerprint_sha256 -----------------------------------

        fn ca_cert(not_after: i64) -> CertInfo {
            CertInfo {
                subject: "CN=Test CA".into(),
                issuer: "CN=Test CA".into(),
                names: vec![],
                not_before: NOW - 100 * DAY,
                not_after,
                serial: "02".into(),
                sha256: "11".repeat(32),
            }
        }

        fn tls_expect(expect: TlsExpect) -> CheckSpec {
            tls_spec(true, expect)
        }

        #[test]
        fn tls_issuer_matches_both_ways() {
            let obs = tls_obs(vec![cert(&["app.test"], NOW + 90 * DAY)], Some(true), None, "1.3");
            let issuer = |p: &str| tls_expect(TlsExpect { issuer_matches: Some(re(p)), ..Default::default() });
            assert_eq!(judge_now(&issuer("^CN=Test CA$"), &obs).outcome, Outcome::Pass);
            let j = judge_now(&issuer("HSCN"), &obs);
            assert_eq!(j.reasons, ["issuer_matches: expected an issuer matching /HSCN/, observed CN=Test CA"]);
        }

        #[test]
        fn tls_chain_valid_days_min_judges_the_earliest_expiry_in_the_chain() {
            // The leaf has 300 days, the CA 20.
            let chain = vec![cert(&["app.test"], NOW + 300 * DAY + 5), ca_cert(NOW + 20 * DAY + 5)];
            let obs = tls_obs(chain, Some(true), None, "1.3");
            let spec = |days| tls_expect(TlsExpect { chain_valid_days_min: Some(days), ..Default::default() });
            assert_eq!(judge_now(&spec(20), &obs).outcome, Outcome::Pass);
            let j = judge_now(&spec(21), &obs);
            assert_eq!(
                j.reasons,
                [
                    "chain_valid_days_min: expected every certificate of the chain valid ≥ 21 more days, observed CN=Test CA expires first, in 20 days"
                ]
            );
            // valid_days_min only sees the leaf.
            let leaf_only = tls_expect(TlsExpect { valid_days_min: Some(21), ..Default::default() });
            assert_eq!(judge_now(&leaf_only, &obs).outcome, Outcome::Pass);
            // An expired certificate anywhere in the chain fails any minimum.
            let expired =
                tls_obs(vec![cert(&["app.test"], NOW + 90 * DAY), ca_cert(NOW - 3 * DAY)], Some(true), None, "1.3");
            let j = judge_now(&spec(0), &expired);
            assert_eq!(failed_keys(&j), ["chain_valid_days_min"]);
            assert!(j.reasons[0].ends_with("observed CN=Test CA expired 3 days ago"), "{:?}", j.reasons);
        }

        #[test]
        fn tls_fingerprint_sha256_both_ways() {
            let obs = tls_obs(vec![cert(&["app.test"], NOW + 90 * DAY)], Some(true), None, "1.3");
            let fp = |f: &str| tls_expect(TlsExpect { fingerprint_sha256: Some(f.into()), ..Default::default() });
            assert_eq!(judge_now(&fp(&"00".repeat(32)), &obs).outcome, Outcome::Pass);
            // The config stores it lowercase; upper case still compares equal here.
            let Observations::Tls(mut upper) = obs.clone() else { unreachable!() };
            upper.chain[0].sha256 = "ab".repeat(32);
            assert_eq!(judge_now(&fp(&"AB".repeat(32)), &Observations::Tls(upper)).outcome, Outcome::Pass);
            let want = "01".repeat(32);
            let j = judge_now(&fp(&want), &obs);
            assert_eq!(
                j.reasons,
                [format!("fingerprint_sha256: expected leaf SHA-256 {want}, observed {}", "00".repeat(32))]
            );
            // Only the leaf counts, not another certificate of the chain.
            let chain =
                tls_obs(vec![cert(&["app.test"], NOW + 90 * DAY), ca_cert(NOW + 900 * DAY)], Some(true), None, "1.3");
            assert_eq!(failed_keys(&judge_now(&fp(&"11".repeat(32)), &chain)), ["fingerprint_sha256"]);
        }

        #[test]
        fn tls_new_expectations_need_a_handshake() {
            let spec = tls_expect(TlsExpect {
                issuer_matches: Some(re(".")),
                chain_valid_days_min: Some(1),
                fingerprint_sha256: Some("00".repeat(32)),
                ..Default::default()
            });
            let j = judge_now(&spec, &tls_obs(vec![], None, Some(Failure::TlsHandshake), "1.3"));
            assert_eq!(failed_keys(&j), ["handshake"]);
        }

        // ---- http: status ranges, body_not_matches, header_matches -------------------------------------------

        #[test]
        fn status_range_formatting() {
            assert_eq!(status_range((200, 200)), "200");
            assert_eq!(status_range((200, 299)), "2xx");
            assert_eq!(status_range((300, 399)), "3xx");
            assert_eq!(status_range((500, 599)), "5xx");
            assert_eq!(status_range((301, 308)), "301-308");
            assert_eq!(status_range((200, 300)), "200-300");
            assert_eq!(status_range((250, 349)), "250-349");
            assert_eq!(status_range((200, 399)), "200-399");
        }

        #[test]
        fn http_status_ranges_both_ways() {
            let spec = http_spec(HttpExpect { status: vec![(200, 299), (301, 302), (503, 503)], ..Default::default() });
            for code in [200, 204, 299, 301, 302, 503] {
                assert_eq!(judge_now(&spec, &http_obs(Some(code), "", 5)).outcome, Outcome::Pass, "{code}");
            }
            for code in [199, 300, 303, 404, 500, 502, 504] {
                let j = judge_now(&spec, &http_obs(Some(code), "", 5));
                assert_eq!(j.reasons, [format!("status: expected 2xx or 301-302 or 503, observed {code}")]);
            }
        }

        #[test]
        fn http_body_not_matches_both_ways() {
            let spec = http_spec(HttpExpect { body_not_matches: Some(re("(?i)maintenance")), ..Default::default() });
            let j = judge_now(&spec, &http_obs(Some(200), "service ok", 5));
            assert_eq!(j.outcome, Outcome::Pass);
            assert_eq!(j.evaluations[1].observed, "no match");
            let j = judge_now(&spec, &http_obs(Some(200), "Down for Maintenance until 06:00", 5));
            assert_eq!(
                j.reasons,
                [
                    "body_not_matches: expected no body match for /(?i)maintenance/, observed body contains \"Maintenance\""
                ]
            );
            // A long match is shown cut to 80 characters.
            let long = http_spec(HttpExpect { body_not_matches: Some(re("x+")), ..Default::default() });
            let j = judge_now(&long, &http_obs(Some(200), &"x".repeat(500), 5));
            assert!(
                j.reasons[0].ends_with(&format!("observed body contains \"{}\"", "x".repeat(80))),
                "{:?}",
                j.reasons
            );
        }

        fn with_headers(obs: Observations, headers: &[(&str, &str)]) -> Observations {
            let Observations::Http(mut o) = obs else { unreachable!() };
            o.headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Observations::Http(o)
        }

        #[test]
        fn http_header_matches_both_ways() {
            let obs = with_headers(http_obs(Some(200), "{}", 5), &[("content-type", "application/json")]);
            let spec = |list: &[(&str, &str)]| {
                http_spec(HttpExpect {
                    header_matches: list.iter().map(|(n, p)| (n.to_string(), re(p))).collect(),
                    ..Default::default()
                })
            };
            assert_eq!(judge_now(&spec(&[("content-type", "json")]), &obs).outcome, Outcome::Pass);
            let j = judge_now(&spec(&[("content-type", "json"), ("x-foo", "bar")]), &obs);
            assert_eq!(j.reasons, ["header_matches: expected header x-foo matching /bar/, observed no x-foo header"]);
            let j = judge_now(&spec(&[("content-type", "^text/html")]), &obs);
            assert_eq!(
                j.reasons,
                [
                    "header_matches: expected header content-type matching /^text/html/, observed content-type: application/json"
                ]
            );
        }

        /// A probe failure after the status line (too many redirects, a body cut short, a timeout reading the
        /// body) must not be judged as a complete response.
        #[test]
        fn http_failure_after_the_status_is_not_a_pass() {
            for (status, failure) in
                [(302, Failure::Protocol), (200, Failure::ConnectionReset), (200, Failure::Timeout)]
            {
                let Observations::Http(mut o) = http_obs(Some(status), "", 5) else { unreachable!() };
                o.failure = Some(failure);
                o.detail = Some("more than 1 redirects".into());
                let spec = http_spec(HttpExpect { status: vec![(status, status)], ..Default::default() });
                let j = judge_now(&spec, &Observations::Http(o));
                assert_eq!(j.outcome, Outcome::Fail, "{status} with {failure}: {j:?}");
                assert!(j.reasons.iter().any(|r| r.contains(failure.as_str())), "{:?}", j.reasons);
            }
        }

        #[test]
        fn http_new_expectations_need_a_response() {
            let spec = http_spec(HttpExpect {
                status: vec![(200, 299)],
                body_not_matches: Some(re("x")),
                header_matches: vec![("x-foo".into(), re("."))],
                ..Default::default()
            });
            assert_eq!(failed_keys(&judge_now(&spec, &http_obs(None, "", 0))), ["response"]);
        }

        // ---- mtu and egress ----------------------------------------------------------------------------------

        fn mtu_spec(path_mtu_min: Option<u16>) -> CheckSpec {
            CheckSpec::Mtu(MtuCheck {
                target: "127.0.0.1".into(),
                min: 576,
                expect: gonogo_config::MtuExpect { path_mtu_min },
                ..Default::default()
            })
        }

        fn mtu_obs(path_mtu: Option<u32>, interface_mtu: Option<u32>) -> Observations {
            Observations::Mtu(MtuObservations {
                address: Some("127.0.0.1".parse().expect("ip")),
                interface: Some("lo".into()),
                interface_mtu,
                path_mtu,
                probes: vec![MtuStep {
                    size: 576,
                    outcome: if path_mtu.is_some() { MtuOutcome::Ok } else { MtuOutcome::Lost },
                    reported_mtu: None,
                    reported_by: None,
                }],
                failure: if path_mtu.is_none() { Some(Failure::Timeout) } else { None },
                detail: path_mtu.is_none().then(|| "no reply to two 576-byte echo requests".into()),
            })
        }

        #[test]
        fn mtu_path_mtu_min_both_ways() {
            assert_eq!(judge_now(&mtu_spec(None), &mtu_obs(Some(1400), Some(1500))).outcome, Outcome::Pass);
            assert_eq!(judge_now(&mtu_spec(Some(1400)), &mtu_obs(Some(1400), Some(1500))).outcome, Outcome::Pass);
            let j = judge_now(&mtu_spec(Some(1500)), &mtu_obs(Some(1400), Some(1500)));
            assert_eq!(j.reasons, ["path_mtu_min: expected ≥ 1500 bytes, observed 1400 bytes (interface MTU 1500)"]);
            let j = judge_now(&mtu_spec(Some(1500)), &mtu_obs(Some(1400), None));
            assert_eq!(j.reasons, ["path_mtu_min: expected ≥ 1500 bytes, observed 1400 bytes"]);
        }

        #[test]
        fn mtu_without_a_path_mtu_fails_with_the_probe_failure() {
            for spec in [mtu_spec(None), mtu_spec(Some(1500))] {
                let j = judge_now(&spec, &mtu_obs(None, Some(1500)));
                assert_eq!(
                    j.reasons,
                    [
                        "path_mtu: expected a path MTU (an echo reply at some size), observed timeout: no reply to two 576-byte echo requests"
                    ]
                );
            }
        }

        fn egress_spec(nets: &[&str]) -> CheckSpec {
            CheckSpec::Egress(EgressCheck {
                url: "http://127.0.0.1/ip".into(),
                expect: EgressExpect { egress_in: nets.iter().map(|n| n.parse().expect("network")).collect() },
                ..Default::default()
            })
        }

        fn egress_obs(status: Option<u16>, address: Option<&str>, failure: Option<Failure>) -> Observations {
            Observations::Egress(EgressObservations {
                status,
                address: address.map(|a| a.parse::<IpAddr>().expect("ip")),
                raw: address.map(str::to_owned),
                time: Some(ms(3)),
                failure,
                detail: failure.map(|_| "the service's answer holds no IP address: \"hello\"".into()),
            })
        }

        #[test]
        fn egress_in_both_ways() {
            let obs = egress_obs(Some(200), Some("127.0.0.9"), None);
            assert_eq!(judge_now(&egress_spec(&["127.0.0.0/8"]), &obs).outcome, Outcome::Pass);
            assert_eq!(judge_now(&egress_spec(&["10.0.0.0/8", "127.0.0.9/32"]), &obs).outcome, Outcome::Pass);
            let j = judge_now(&egress_spec(&["10.0.0.0/8", "155.231.0.0/16"]), &obs);
            assert_eq!(
                j.reasons,
                ["egress_in: expected an egress address in 10.0.0.0/8, 155.231.0.0/16, observed 127.0.0.9"]
            );
            let v6 = egress_obs(Some(200), Some("::1"), None);
            assert_eq!(judge_now(&egress_spec(&["::1/128"]), &v6).outcome, Outcome::Pass);
            assert_eq!(failed_keys(&judge_now(&egress_spec(&["127.0.0.0/8"]), &v6)), ["egress_in"]);
        }

        #[test]
        fn egress_without_an_address_fails_on_address() {
            let j = judge_now(&egress_spec(&["127.0.0.0/8"]), &egress_obs(Some(200), None, Some(Failure::Protocol)));
            assert_eq!(
                j.reasons,
                [
                    "address: expected the service to report this site's public address, observed protocol: the service's answer holds no IP address: \"hello\""
                ]
            );
            let j = judge_now(&egress_spec(&["127.0.0.0/8"]), &egress_obs(None, None, None));
            assert_eq!(failed_keys(&j), ["address"]);
        }

        // ---- judge_check: fallback_tcp -----------------------------------------------------------------------

        fn check(spec: CheckSpec, expect_failure: bool) -> Check {
            Check {
                name: "c".into(),
                phases: vec!["commissioning".into()],
                required: true,
                timeout: ms(500),
                expect_failure,
                retries: 0,
                retry_interval: ms(1000),
                depends_on: vec![],
                ip: IpMode::Any,
                source: None,
                line: 1,
                spec,
                compare: Default::default(),
                block_preexisting: false,
            }
        }

        fn icmp_with_fallback(rtts: &[Option<u64>], connected: Option<bool>) -> Observations {
            let Observations::Icmp(mut o) = icmp_obs(rtts) else { unreachable!() };
            o.fallback_tcp = connected.map(|ok| {
                let Observations::Tcp(t) =
                    (if ok { tcp_obs(&[Some(1)], None) } else { tcp_obs(&[None], Some(Failure::ConnectionRefused)) })
                else {
                    unreachable!()
                };
                t
            });
            Observations::Icmp(o)
        }

        fn judge_c(c: &Check, obs: &Observations) -> Judgement {
            judge_check(c, Measured::Observed(obs), NOW)
        }

        #[test]
        fn fallback_tcp_connected_makes_lost_icmp_inconclusive() {
            let c = check(icmp_spec(IcmpExpect::default()), false);
            let j = judge_c(&c, &icmp_with_fallback(&[None, None], Some(true)));
            assert_eq!(j.outcome, Outcome::Inconclusive);
            assert_eq!(
                j.reasons,
                [
                    "no echo reply, but a TCP connect to 127.0.0.1:80 succeeded: ICMP is probably filtered on the path, so \
                  reachability cannot be decided from ICMP"
                ]
            );
            let fb = j.evaluations.last().expect("fallback evaluation");
            assert_eq!((fb.expectation.as_str(), fb.met, fb.observed.as_str()), ("fallback_tcp", true, "connected"));
            // The ICMP evaluations stay for the record.
            assert!(j.evaluations.iter().any(|e| e.expectation == "reply" && !e.met));
        }

        #[test]
        fn fallback_tcp_failed_keeps_the_fail_and_adds_its_reason() {
            let c = check(icmp_spec(IcmpExpect::default()), false);
            let j = judge_c(&c, &icmp_with_fallback(&[None, None], Some(false)));
            assert_eq!(j.outcome, Outcome::Fail);
            assert_eq!(failed_keys(&j), ["reply", "fallback_tcp"]);
            assert_eq!(
                j.reasons[1],
                "fallback_tcp: expected a TCP connect to 127.0.0.1:80, observed connection_refused: Connection refused (os error 111)"
            );
        }

        #[test]
        fn fallback_tcp_is_ignored_when_echoes_were_answered_or_none_ran() {
            let c = check(icmp_spec(IcmpExpect::default()), false);
            let j = judge_c(&c, &icmp_with_fallback(&[Some(1), Some(1)], Some(false)));
            assert_eq!(j.outcome, Outcome::Pass);
            assert!(j.evaluations.iter().all(|e| e.expectation != "fallback_tcp"));
            // Echoes answered but too slow: a TCP fallback cannot rescue a measured failure.
            let slow = check(icmp_spec(IcmpExpect { rtt_p95_max: Some(ms(1)), ..Default::default() }), false);
            assert_eq!(judge_c(&slow, &icmp_with_fallback(&[Some(5)], Some(true))).outcome, Outcome::Fail);
            // No fallback configured (none ran): a plain fail.
            let j = judge_c(&c, &icmp_with_fallback(&[None], None));
            assert_eq!((j.outcome, failed_keys(&j)), (Outcome::Fail, vec!["reply"]));
        }

        #[test]
        fn judge_check_without_extras_is_judge() {
            let c = check(http_spec(HttpExpect::default()), false);
            let obs = http_obs(Some(503), "", 5);
            assert_eq!(judge_c(&c, &obs), judge_now(&c.spec, &obs));
            assert_eq!(judge_check(&c, Measured::Error("no CA file"), NOW), Judgement::error("no CA file".into()));
        }

        /// With `expect_failure` the fallback is not consulted: ICMP lost counts as unreachable even when the
        /// TCP fallback connected, so "the old path must be down" passes while the host answers on TCP.
        #[test]
        fn expect_failure_with_a_connected_tcp_fallback_is_not_a_pass() {
            let c = check(icmp_spec(IcmpExpect::default()), true);
            let j = judge_c(&c, &icmp_with_fallback(&[None, None], Some(true)));
            assert_ne!(j.outcome, Outcome::Pass, "{j:?}");
            assert!(j.reasons.iter().any(|r| r.contains("TCP")), "{:?}", j.reasons);
        }

        #[test]
        fn expect_failure_with_a_failed_tcp_fallback_passes() {
            let c = check(icmp_spec(IcmpExpect::default()), true);
            let j = judge_c(&c, &icmp_with_fallback(&[None, None], Some(false)));
            assert_eq!(j.outcome, Outcome::Pass, "{j:?}");
        }

        // ---- expect_failure: every observation kind ----------------------------------------------------------

        /// `expect_failure` on `spec` with `obs`: (outcome, the evaluation's observed text).
        fn inverted(spec: CheckSpec, obs: &Observations) -> (Outcome, String) {
            let j = judge_c(&check(spec, true), obs);
            assert_eq!(j.evaluations.len(), 1, "{j:?}");
            let ev = &j.evaluations[0];
            assert_eq!((ev.expectation.as_str(), ev.expected.as_str()), ("expect_failure", "the target unreachable"));
            assert_eq!(ev.met, j.outcome == Outcome::Pass);
            match j.outcome {
                Outcome::Pass => assert!(j.reasons.is_empty()),
                _ => assert_eq!(j.reasons, [ev.sentence()]),
            }
            (j.outcome, ev.observed.clone())
        }

        fn pass(observed: &str) -> (Outcome, String) {
            (Outcome::Pass, format!("unreachable: {observed}"))
        }

        fn fail(observed: &str) -> (Outcome, String) {
            (Outcome::Fail, format!("reachable: {observed}"))
        }

        #[test]
        fn expect_failure_icmp_and_tcp() {
            let spec = icmp_spec(IcmpExpect::default());
            assert_eq!(inverted(spec.clone(), &icmp_obs(&[None, None, None])), pass("0 of 3 echoes answered"));
            assert_eq!(inverted(spec.clone(), &icmp_obs(&[None, Some(1), None])), fail("1 of 3 echoes answered"));
            // Passing its own expectations or not does not matter: any answer is reachable.
            let strict = icmp_spec(IcmpExpect { loss_max: Some(0.0), ..Default::default() });
            assert_eq!(inverted(strict, &icmp_obs(&[None, Some(1)])), fail("1 of 2 echoes answered"));
            assert_eq!(
                inverted(tcp_spec(None), &tcp_obs(&[None, None], Some(Failure::ConnectionRefused))),
                pass("0 of 2 connects succeeded")
            );
            assert_eq!(
                inverted(tcp_spec(None), &tcp_obs(&[None, Some(1)], Some(Failure::Timeout))),
                fail("1 of 2 connects succeeded")
            );
        }

        #[test]
        fn expect_failure_dns() {
            let spec = dns_spec("NOERROR", 1, &[]);
            assert_eq!(inverted(spec.clone(), &dns_obs(None, &[])), pass("timeout"));
            assert_eq!(
                inverted(spec.clone(), &dns_obs(Some("NOERROR"), &["10.0.0.1"])),
                fail("127.0.0.1:53/udp answered NOERROR")
            );
            assert_eq!(inverted(spec, &dns_obs(Some("SERVFAIL"), &[])), fail("127.0.0.1:53/udp answered SERVFAIL"));
        }

        #[test]
        fn expect_failure_tls() {
            let spec = tls_spec(true, TlsExpect::default());
            let refused = tls_obs(vec![], None, Some(Failure::ConnectionRefused), "1.3");
            assert_eq!(inverted(spec.clone(), &refused), pass("connection_refused: handshake failed"));
            let up = tls_obs(vec![cert(&["app.test"], NOW + 90 * DAY)], Some(true), None, "1.3");
            assert_eq!(inverted(spec.clone(), &up), fail("a TLS handshake completed"));
            // A chain that does not verify still shows the service is there.
            let bad =
                tls_obs(vec![cert(&["app.test"], NOW - DAY)], Some(false), Some(Failure::CertificateInvalid), "1.3");
            assert_eq!(inverted(spec, &bad).0, Outcome::Fail);
        }

        #[test]
        fn expect_failure_http() {
            let spec = http_spec(HttpExpect::default());
            assert_eq!(inverted(spec.clone(), &http_obs(None, "", 0)), pass("timeout"));
            assert_eq!(inverted(spec.clone(), &http_obs(Some(200), "ok", 3)), fail("HTTP 200"));
            assert_eq!(inverted(spec, &http_obs(Some(503), "", 3)), fail("HTTP 503"));
        }

        #[test]
        fn expect_failure_mtu_and_egress() {
            assert_eq!(
                inverted(mtu_spec(None), &mtu_obs(None, Some(1500))),
                pass("timeout: no reply to two 576-byte echo requests")
            );
            assert_eq!(inverted(mtu_spec(None), &mtu_obs(Some(1400), Some(1500))), fail("path MTU 1400"));
            let spec = egress_spec(&["10.0.0.0/8"]);
            let down = egress_obs(None, None, Some(Failure::Protocol));
            assert_eq!(
                inverted(spec.clone(), &down),
                pass("protocol: the service's answer holds no IP address: \"hello\"")
            );
            assert_eq!(inverted(spec.clone(), &egress_obs(Some(200), Some("127.0.0.9"), None)), fail("HTTP 200"));
            assert_eq!(inverted(spec, &egress_obs(None, None, None)), pass("no answer"));
        }

        #[test]
        fn expect_failure_keeps_errors_and_counts_an_overrun_as_unreachable() {
            let c = check(tcp_spec(None), true);
            let j = judge_check(&c, Measured::Error("source 10.9.9.9 is not an address of this host"), NOW);
            assert_eq!(j.outcome, Outcome::Error);
            assert_eq!(j.reasons, ["source 10.9.9.9 is not an address of this host"]);
            let j = judge_check(&c, Measured::Overran(ms(2500)), NOW);
            assert_eq!(j.outcome, Outcome::Pass);
            assert_eq!(j.evaluations.len(), 1);
            assert_eq!(j.evaluations[0].observed, "unreachable: no answer within 2.50s");
            assert!(j.reasons.is_empty());
        }
    }
}
