//! Rendering a run for people and tools: the terminal table, JSON, JUnit XML.

use std::fmt::Write as _;

use gonogo_probes::Observations;

use crate::compare::{CompareStatus, Comparison};
use crate::run::{CheckResult, RunRecord};
use crate::verdict::{Outcome, Verdict, fmt_duration, fmt_ratio};

/// Output format of `gonogo run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people, with the verdict last.
    Table,
    /// The run record as JSON.
    Json,
    /// JUnit XML, one testcase per check.
    Junit,
}

/// Render `run` in `format`. `color` adds ANSI colours to the table.
pub fn render(run: &RunRecord, format: Format, color: bool, now_unix: i64) -> String {
    match format {
        Format::Table => table(run, color, now_unix),
        // Serialising plain data with string keys cannot fail; fall back to an error document if it ever does.
        Format::Json => serde_json::to_string_pretty(run)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the run: {e}\"}}\n")),
        Format::Junit => junit(run, now_unix),
    }
}

/// The key figures of a check, one short line: what an engineer glances at.
pub fn figures(check: &CheckResult, now_unix: i64) -> String {
    let Some(obs) = check.main_observations() else { return "-".to_owned() };
    match obs {
        Observations::Icmp(o) => match o.rtt {
            Some(r) => format!(
                "{}/{} replies, loss {}, p95 {}, jitter {}",
                o.received,
                o.sent,
                fmt_ratio(o.loss),
                fmt_duration(r.p95),
                fmt_duration(r.jitter)
            ),
            None => format!("0/{} replies", o.sent),
        },
        Observations::Tcp(o) => match o.connect {
            Some(r) => format!("{}/{} connected, max {}", o.connected, o.attempts, fmt_duration(r.max)),
            None => format!("0/{} connected", o.attempts),
        },
        Observations::Dns(o) => match &o.rcode {
            Some(rcode) => {
                let shown: Vec<&str> = o.answers.iter().take(3).map(String::as_str).collect();
                let more = if o.answers.len() > 3 { format!(" +{}", o.answers.len() - 3) } else { String::new() };
                format!("{rcode} [{}{more}] in {}", shown.join(" "), fmt_duration(o.lookup_time))
            }
            None => format!("no response in {}", fmt_duration(o.lookup_time)),
        },
        Observations::Tls(o) => match (o.leaf(), &o.version) {
            (Some(leaf), Some(v)) => {
                let days = leaf.not_after.saturating_sub(now_unix).div_euclid(86_400);
                let hs = o.handshake_time.map(fmt_duration).unwrap_or_default();
                format!("TLS {v}, cert {days}d left, {hs}")
            }
            _ => "no handshake".to_owned(),
        },
        Observations::Http(o) => match o.status {
            Some(status) => {
                let total = o.total_time.map(fmt_duration).unwrap_or_default();
                let redirects = if o.redirects > 0 { format!(", {} redirects", o.redirects) } else { String::new() };
                format!("{status} in {total}, {} B{redirects}", o.body_bytes)
            }
            None => "no response".to_owned(),
        },
        Observations::Mtu(o) => match (o.path_mtu, o.interface_mtu) {
            (Some(p), Some(i)) => format!("path MTU {p}, interface {i}"),
            (Some(p), None) => format!("path MTU {p}"),
            (None, _) => "no path MTU".to_owned(),
        },
        Observations::Egress(o) => match o.address {
            Some(a) => format!("egress address {a}"),
            None => "no address reported".to_owned(),
        },
    }
}

fn paint(s: &str, code: &str, color: bool) -> String {
    if color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() }
}

fn outcome_cell(c: &CheckResult, color: bool) -> (String, usize) {
    let text = match (c.outcome, c.required) {
        (Outcome::Pass, _) => "pass".to_owned(),
        (o, true) => o.as_str().to_uppercase(),
        (o, false) => format!("{o} (advisory)"),
    };
    let width = text.chars().count();
    let code = match (c.outcome, c.required) {
        (Outcome::Pass, _) => "32",
        (Outcome::Skipped, _) => "2",
        (_, false) => "33",
        (Outcome::Fail, true) => "1;31",
        (_, true) => "1;35",
    };
    (paint(&text, code, color), width)
}

/// Cut a long target to `max` characters with an ellipsis.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { format!("{}…", s.chars().take(max - 1).collect::<String>()) }
}

fn table(run: &RunRecord, color: bool, now_unix: i64) -> String {
    let mut out = String::new();
    let site = run.site.as_deref().map(|s| format!(" · {s}")).unwrap_or_default();
    let partial = if run.partial { " (selected checks only)" } else { "" };
    let _ = writeln!(out, "gonogo{site} · phase {}{partial} · run {}", run.phase, run.id);
    let rows: Vec<[String; 3]> =
        run.checks.iter().map(|c| [c.name.clone(), c.kind.clone(), clip(&c.target, 48)]).collect();
    let head = ["CHECK", "KIND", "TARGET"];
    let widths: Vec<usize> =
        (0..3).map(|i| rows.iter().map(|r| r[i].chars().count()).chain([head[i].len()]).max().unwrap_or(0)).collect();
    let outcomes: Vec<(String, usize)> = run.checks.iter().map(|c| outcome_cell(c, color)).collect();
    let ow = outcomes.iter().map(|(_, w)| *w).chain(["OUTCOME".len()]).max().unwrap_or(7);
    let _ = writeln!(
        out,
        "{:<w0$}  {:<w1$}  {:<w2$}  {:<ow$}  FIGURES",
        head[0],
        head[1],
        head[2],
        "OUTCOME",
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    );
    for ((check, row), (cell, cell_width)) in run.checks.iter().zip(&rows).zip(&outcomes) {
        let pad = " ".repeat(ow.saturating_sub(*cell_width));
        let attempts = match (check.attempts, check.time_to_pass) {
            (0 | 1, _) => String::new(),
            (n, Some(t)) => format!(" · passed on attempt {n} after {}", fmt_duration(t)),
            (n, None) => format!(" · {n} attempts"),
        };
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {cell}{pad}  {}{attempts}",
            row[0],
            row[1],
            row[2],
            figures(check, now_unix),
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        for reason in &check.reasons {
            let _ = writeln!(out, "    └ {reason}");
        }
    }
    if let Some(cmp) = &run.comparison {
        let _ = writeln!(out);
        out.push_str(&comparison_table(run, cmp));
    }
    let counts: Vec<String> = run.counts().iter().map(|(o, n)| format!("{n} {o}")).collect();
    let _ = writeln!(out);
    let _ = writeln!(out, "{} checks: {} · {}", run.checks.len(), counts.join(", "), fmt_duration(run.duration));
    for w in &run.warnings {
        let _ = writeln!(out, "{} {w}", paint("warning:", "33", color));
    }
    let (verdict, verdict_code) = match run.verdict {
        Some(Verdict::Go) => ("GO", "1;32"),
        Some(Verdict::NoGo) => ("NO-GO", "1;31"),
        Some(Verdict::Inconclusive) => ("INCONCLUSIVE", "1;35"),
        None => (run.status.as_str(), "1;35"),
    };
    let why = if run.blocking.is_empty() { String::new() } else { format!(" — {}", run.blocking.join("; ")) };
    let _ = writeln!(out, "VERDICT: {}{why}", paint(verdict, verdict_code, color));
    out
}

/// The comparison with the baseline as text: one line per check that is not `ok`, drift beyond tolerance, and
/// counts.
pub fn comparison_table(run: &RunRecord, cmp: &Comparison) -> String {
    let mut out = String::new();
    let when = cmp.baseline_finished_at.as_deref().map(|t| format!(", finished {t}")).unwrap_or_default();
    let _ = writeln!(out, "Compared with baseline {} ({}{when}):", cmp.baseline_id, cmp.baseline_phase);
    let width = cmp.checks.iter().map(|c| c.name.chars().count()).max().unwrap_or(5).max(5);
    for c in &cmp.checks {
        let before = c.baseline_outcome.map_or("-", Outcome::as_str);
        let what = match c.status {
            CompareStatus::Regression => "REGRESSION: broken by the change",
            CompareStatus::PreExisting => "pre-existing: already failing before the change",
            CompareStatus::Fixed => "fixed",
            CompareStatus::New => "new: not in the baseline",
            CompareStatus::Ok => "ok",
        };
        let _ = writeln!(out, "  {:<width$}  {before:>12} → {:<12}  {what}", c.name, c.outcome.as_str());
        for d in c.exceeded() {
            let _ = writeln!(out, "  {:<width$}    └ drift beyond tolerance: {d}", "");
        }
    }
    let _ = writeln!(
        out,
        "{} regression(s), {} pre-existing, {} fixed, {} new (run {})",
        cmp.regressions, cmp.preexisting, cmp.fixed, cmp.new, run.id
    );
    out
}

/// Escape text for XML attributes and content; drop characters XML 1.0 cannot carry.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

fn junit(run: &RunRecord, now_unix: i64) -> String {
    let count = |o: Outcome| run.checks.iter().filter(|c| c.outcome == o).count();
    let failures = count(Outcome::Fail);
    let errors = count(Outcome::Error) + count(Outcome::Inconclusive);
    let skipped = count(Outcome::Skipped);
    let secs = run.duration.as_secs_f64();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"gonogo\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{secs:.3}\">",
        run.checks.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{secs:.3}\" timestamp=\"{}\" hostname=\"{}\">",
        xml(&run.phase),
        run.checks.len(),
        xml(run.started_at.as_deref().unwrap_or(&run.created_at)),
        xml(&run.host)
    );
    let _ = writeln!(out, "    <properties>");
    for (k, v) in [
        ("verdict", run.verdict.map_or(run.status.as_str(), Verdict::as_str).to_owned()),
        ("status", run.status.as_str().to_owned()),
        ("run_id", run.id.clone()),
        ("site", run.site.clone().unwrap_or_default()),
        ("blocking", run.blocking.join("; ")),
        ("warnings", run.warnings.join("; ")),
    ] {
        let _ = writeln!(out, "      <property name=\"{k}\" value=\"{}\"/>", xml(&v));
    }
    let _ = writeln!(out, "    </properties>");
    for c in &run.checks {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"gonogo.{}.{}\" time=\"{:.3}\">",
            xml(&c.name),
            xml(&run.phase),
            xml(&c.kind),
            c.duration.as_secs_f64()
        );
        let message = xml(&c.reasons.join("; "));
        let body = xml(&c.reasons.join("\n"));
        let advisory = if c.required { "" } else { "advisory " };
        match c.outcome {
            Outcome::Pass => {}
            Outcome::Fail => {
                let _ = write!(out, "\n      <failure type=\"{advisory}fail\" message=\"{message}\">{body}</failure>");
            }
            Outcome::Error | Outcome::Inconclusive => {
                let _ =
                    write!(out, "\n      <error type=\"{advisory}{}\" message=\"{message}\">{body}</error>", c.outcome);
            }
            Outcome::Skipped => {
                let _ = write!(out, "\n      <skipped message=\"{message}\"/>");
            }
        }
        let _ = write!(
            out,
            "\n      <system-out>{} {} — {}</system-out>\n    </testcase>\n",
            xml(&c.kind),
            xml(&c.target),
            xml(&figures(c, now_unix))
        );
    }
    let _ = writeln!(out, "  </testsuite>\n</testsuites>");
    out
}
