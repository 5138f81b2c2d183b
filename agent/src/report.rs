//! Reports of a run for the change record, and the status page of `gonogo serve`.
//!
//! [`render`] gives a run as one self-contained HTML file (inline CSS, inline SVG charts, no JavaScript, nothing
//! loaded from anywhere), Markdown, a CSV in the shape of a CN-SP readiness sheet, the JSON run document or JUnit
//! XML. [`status_page`] is the server-rendered page at `GET /`.
//!
//! Everything that comes from the config or the network (names, targets, reasons, DNS answers, banners) is
//! escaped for the format it lands in: HTML entities, Markdown backslashes, CSV quoting (and a leading `'` on
//! anything a spreadsheet would take for a formula).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use gonogo_config::{Config, STANDARD_PHASES};
use gonogo_probes::Observations;
use gonogo_probes::stats::RttStats;
use serde_json::Value;

use crate::compare::{CheckComparison, CompareStatus, Comparison, Drift};
use crate::output::{self, Format};
use crate::run::{CheckResult, RunRecord, RunStatus};
use crate::store::{Store, StoreError};
use crate::verdict::{Evaluation, Outcome, Verdict, fmt_duration};

/// Format of `gonogo report` and `GET /api/v1/runs/{id}/report?format=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One self-contained HTML file (no external assets, no JavaScript), print-friendly.
    Html,
    /// Markdown, for a change ticket or a wiki.
    #[value(alias = "markdown")]
    Md,
    /// The run document as JSON.
    Json,
    /// JUnit XML, one testcase per check.
    Junit,
    /// A readiness sheet: check, kind, target, required, result (Yes/No), evidence.
    Csv,
}

impl ReportFormat {
    /// Every format, in the order help texts list them.
    pub const ALL: [ReportFormat; 5] =
        [ReportFormat::Html, ReportFormat::Md, ReportFormat::Json, ReportFormat::Junit, ReportFormat::Csv];

    /// The name used on the command line and in `?format=`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Md => "md",
            ReportFormat::Json => "json",
            ReportFormat::Junit => "junit",
            ReportFormat::Csv => "csv",
        }
    }

    /// The format named `name` (case-insensitive; `markdown` is `md`).
    pub fn parse(name: &str) -> Option<ReportFormat> {
        let name = name.to_ascii_lowercase();
        if name == "markdown" {
            return Some(ReportFormat::Md);
        }
        ReportFormat::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The HTTP Content-Type of a report in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Html => "text/html; charset=utf-8",
            ReportFormat::Md => "text/markdown; charset=utf-8",
            ReportFormat::Json => "application/json",
            ReportFormat::Junit => "application/xml; charset=utf-8",
            ReportFormat::Csv => "text/csv; charset=utf-8; header=present",
        }
    }

    /// The usual file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Md => "md",
            ReportFormat::Json => "json",
            ReportFormat::Junit => "xml",
            ReportFormat::Csv => "csv",
        }
    }
}

impl std::fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Render `run` as a report in `format`. `decisions` are the sign-off decisions taken at a gate that relied on
/// this run (JSON objects, shown in a "Decisions" section of the HTML and Markdown; may be empty). `now_unix`
/// is the time of the report (certificate days left, "generated at").
pub fn render(run: &RunRecord, format: ReportFormat, decisions: &[Value], now_unix: i64) -> String {
    match format {
        ReportFormat::Html => html(run, decisions, now_unix),
        ReportFormat::Md => markdown(run, decisions, now_unix),
        ReportFormat::Json => output::render(run, Format::Json, false, now_unix),
        ReportFormat::Junit => output::render(run, Format::Junit, false, now_unix),
        ReportFormat::Csv => csv(run, now_unix),
    }
}

pub use crate::journal::run_sha256;

// ---------------------------------------------------------------------------------------------------------------
// Escaping.

/// Escape text for HTML content and quoted attribute values; drop control characters other than tab and line
/// ends (they have no business in a report and some are not allowed in HTML).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn esc(s: &str) -> String {
    escape_html(s)
}

/// Escape text for Markdown inline content and table cells: punctuation that would format, link or end a
/// cell is backslashed, `<`, `>` and `&` become entities (no raw HTML gets through), line ends become spaces.
pub fn escape_md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '|' | '~' | '!' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn md(s: &str) -> String {
    escape_md(s)
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote, line end or outer space, quotes doubled. A
/// field a spreadsheet would read as a formula (starting `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`.
pub fn csv_field(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).collect();
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s };
    let quote = s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ');
    if quote { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// A path segment for a URL: unreserved characters kept, everything else percent-encoded.
fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// What the formats share.

fn verdict_word(run: &RunRecord) -> String {
    match run.verdict {
        Some(v) => v.as_str().to_owned(),
        None => format!("NOT FINISHED ({})", run.status),
    }
}

fn verdict_class(run: &RunRecord) -> &'static str {
    match run.verdict {
        Some(Verdict::Go) => "go",
        Some(Verdict::NoGo) => "nogo",
        Some(Verdict::Inconclusive) => "inconclusive",
        None => "none",
    }
}

fn verdict_meaning(run: &RunRecord) -> &'static str {
    match run.verdict {
        Some(Verdict::Go) => "Every required check passed.",
        Some(Verdict::NoGo) => "A required check failed, or the change broke something that worked before.",
        Some(Verdict::Inconclusive) => "No required check failed, but at least one could not be decided or run.",
        None => "The run did not finish: there is no verdict.",
    }
}

fn counts_line(run: &RunRecord) -> String {
    let counts: Vec<String> = run.counts().iter().map(|(o, n)| format!("{n} {o}")).collect();
    let counts = if counts.is_empty() { "none".to_owned() } else { counts.join(", ") };
    format!("{} checks: {counts} · {}", run.checks.len(), fmt_duration(run.duration))
}

fn required_word(c: &CheckResult) -> &'static str {
    if c.required { "required" } else { "advisory" }
}

/// Key figures of a check plus how many attempts it took.
fn check_figures(c: &CheckResult, now_unix: i64) -> String {
    let attempts = match (c.attempts, c.time_to_pass) {
        (0 | 1, _) => String::new(),
        (n, Some(t)) => format!(" · passed on attempt {n} after {}", fmt_duration(t)),
        (n, None) => format!(" · {n} attempts"),
    };
    format!("{}{attempts}", output::figures(c, now_unix))
}

/// The key figures of one part, through the same [`output::figures`] as the check's.
fn part_figures(c: &CheckResult, part: &crate::run::PartResult, now_unix: i64) -> String {
    let alone = CheckResult { observations: part.observations.clone(), parts: Vec::new(), ..c.clone() };
    output::figures(&alone, now_unix)
}

fn rfc3339(unix: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(unix.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The run's facts, label and value, for the header of every format.
fn facts(run: &RunRecord) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Site", run.site.clone().unwrap_or_else(|| "(not named)".to_owned())),
        ("ODS code", run.ods_code.clone().unwrap_or_else(|| "-".to_owned())),
        ("Phase", format!("{}{}", run.phase, if run.partial { " (selected checks only)" } else { "" })),
        ("Run", run.id.clone()),
        ("Status", run.status.to_string()),
        (
            "Trigger",
            match &run.trigger.by {
                Some(by) => format!("{} by {by}", run.trigger.source),
                None => run.trigger.source.clone(),
            },
        ),
        ("Change", run.change_ref.clone().unwrap_or_else(|| "-".to_owned())),
        ("Created", run.created_at.clone()),
        ("Started", run.started_at.clone().unwrap_or_else(|| "-".to_owned())),
        ("Finished", run.finished_at.clone().unwrap_or_else(|| "-".to_owned())),
        ("Duration", fmt_duration(run.duration)),
        ("Host", run.host.clone()),
        ("Agent", format!("gonogo {}", run.agent_version)),
        ("Config", run.config_path.clone()),
    ];
    f.retain(|(_, v)| !v.is_empty());
    f
}

/// A series of samples to chart: RTT (ICMP) or connect time (TCP) per attempt, in send order.
struct Series<'a> {
    /// The check's name, plus the part's label when the check has several parts.
    title: String,
    target: &'a str,
    what: &'static str,
    samples: &'a [Option<f64>],
    stats: Option<&'a RttStats>,
    detail: Option<&'a str>,
}

fn series_of<'a>(title: String, target: &'a str, obs: &'a Observations) -> Option<Series<'a>> {
    match obs {
        Observations::Icmp(o) => Some(Series {
            title,
            target,
            what: "round-trip time",
            samples: &o.samples_ms,
            stats: o.rtt.as_ref(),
            detail: o.detail.as_deref(),
        }),
        Observations::Tcp(o) => Some(Series {
            title,
            target,
            what: "connect time",
            samples: &o.samples_ms,
            stats: o.connect.as_ref(),
            detail: o.detail.as_deref(),
        }),
        _ => None,
    }
}

/// Every ICMP and TCP series of the run: one per check, or one per part of a check that has parts.
fn all_series(run: &RunRecord) -> Vec<Series<'_>> {
    let mut out = Vec::new();
    for c in &run.checks {
        if let Some(obs) = &c.observations {
            out.extend(series_of(c.name.clone(), &c.target, obs));
        } else {
            for p in &c.parts {
                if let Some(obs) = &p.observations {
                    out.extend(series_of(format!("{} · {}", c.name, p.label), &p.target, obs));
                }
            }
        }
    }
    out
}

fn lost(samples: &[Option<f64>]) -> usize {
    samples.iter().filter(|s| !s.is_some_and(f64::is_finite)).count()
}

/// A number of milliseconds, short: `12`, `1.5`, `0.042`.
fn fmt_ms(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * base).find(|c| *c >= v * 0.999_999).unwrap_or(10.0 * base)
}

/// Generic display of a JSON value: strings as they are, everything else as compact JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn first_str<'a>(obj: &'a serde_json::Map<String, Value>, keys: &[&str]) -> Option<(&'a str, String)> {
    keys.iter().find_map(|k| obj.get_key_value(*k)).map(|(k, v)| (k.as_str(), value_text(v)))
}

/// A decision as table cells: when, gate, decision, by, note, and every other field as `key: value`.
fn decision_cells(d: &Value) -> [String; 6] {
    let Some(obj) = d.as_object() else {
        return [String::new(), String::new(), String::new(), String::new(), String::new(), value_text(d)];
    };
    let mut used: Vec<&str> = Vec::new();
    let mut take = |keys: &[&str]| -> String {
        match first_str(obj, keys) {
            Some((k, v)) => {
                used.push(k);
                v
            }
            None => String::new(),
        }
    };
    let when = take(&["at", "time", "timestamp", "recorded_at", "created_at", "decided_at"]);
    let gate = take(&["gate"]);
    let decision = take(&["decision"]);
    let name = take(&["name", "by"]);
    let role = take(&["role"]);
    let org = take(&["organisation", "organization"]);
    let mut note = take(&["note"]);
    let over = take(&["override", "override_reason"]);
    if !over.is_empty() && over != "false" && over != "-" {
        note = if note.is_empty() { format!("OVERRIDE: {over}") } else { format!("{note} (OVERRIDE: {over})") };
    }
    let by = [name, role, org].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ");
    let rest: Vec<String> = obj
        .iter()
        .filter(|(k, _)| !used.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}: {}", value_text(v)))
        .collect();
    [when, gate, decision.to_uppercase(), by, note, rest.join("; ")]
}

/// A gate as cells: name, verdict, reasons, and every other field as `key: value`.
fn gate_cells(g: &Value) -> (String, String, Vec<String>, String) {
    let Some(obj) = g.as_object() else { return (value_text(g), String::new(), Vec::new(), String::new()) };
    let mut used = Vec::new();
    let name = first_str(obj, &["name", "gate"]).map(|(k, v)| {
        used.push(k);
        v
    });
    let verdict = first_str(obj, &["verdict", "status"]).map(|(k, v)| {
        used.push(k);
        v
    });
    let reasons: Vec<String> = ["reasons", "blocking"]
        .iter()
        .find_map(|k| obj.get_key_value(*k))
        .map(|(k, v)| {
            used.push(k.as_str());
            match v {
                Value::Array(items) => items.iter().map(value_text).collect(),
                other => vec![value_text(other)],
            }
        })
        .unwrap_or_default();
    let rest: Vec<String> = obj
        .iter()
        .filter(|(k, _)| !used.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}: {}", value_text(v)))
        .collect();
    (name.unwrap_or_default(), verdict.unwrap_or_default(), reasons, rest.join("; "))
}

/// Colour class of a decision: go green, no-go and rollback red, investigate amber.
fn decision_class(decision: &str) -> &'static str {
    match decision.to_ascii_uppercase().as_str() {
        "GO" => "go",
        "NO-GO" | "NOGO" | "NO_GO" | "ROLLBACK" => "nogo",
        "INVESTIGATE" => "inconclusive",
        _ => "none",
    }
}

fn verdict_class_of(word: &str) -> &'static str {
    match word.to_ascii_uppercase().as_str() {
        "GO" => "go",
        "NO-GO" | "NOGO" | "NO_GO" => "nogo",
        "INCONCLUSIVE" => "inconclusive",
        _ => "none",
    }
}

// ---------------------------------------------------------------------------------------------------------------
// HTML.

const CSS: &str = r#"
:root{--go:#1a7f37;--nogo:#c62828;--amber:#9a5b00;--err:#8250df;--grey:#5f6368;--line:#d0d7de;--soft:#f6f8fa}
*{box-sizing:border-box}
body{font-family:"DejaVu Sans","Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;background:#fff;
 margin:0 auto;max-width:1180px;padding:24px;font-size:14px;line-height:1.45}
h1{font-size:22px;margin:0 0 2px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px}
p.sub{margin:0 0 12px;color:var(--grey)}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid var(--line);padding:5px 7px;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
table.facts{width:100%}table.facts th{width:8em}table.evidence th{width:14em}
code,.mono,td.target{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px;overflow-wrap:anywhere}
.verdict{border-radius:6px;padding:14px 18px;margin:18px 0;color:#fff}
.verdict .word{font-size:32px;font-weight:700;letter-spacing:.04em;line-height:1.1}
.verdict p{margin:4px 0 0}
.verdict-go{background:var(--go)}.verdict-nogo{background:var(--nogo)}.verdict-inconclusive{background:#b26a00}
.verdict-none{background:var(--grey)}
ul.blocking li{color:var(--nogo)}ul.warnings li{color:var(--amber)}
.badge{display:inline-block;padding:0 7px;border-radius:10px;font-weight:600;font-size:12px;border:1px solid currentColor;
 white-space:nowrap}
.o-pass{color:var(--go)}.o-fail{color:var(--nogo)}.o-inconclusive{color:var(--amber)}.o-error{color:var(--err)}
.o-skipped{color:var(--grey)}.o-advisory{color:var(--amber)}
.v-go{color:var(--go)}.v-nogo{color:var(--nogo)}.v-inconclusive{color:var(--amber)}.v-none{color:var(--grey)}
tr.check>td:first-child{border-left:5px solid var(--grey);font-weight:600}
tr.check.o-pass>td:first-child{border-left-color:var(--go)}tr.check.o-fail>td:first-child{border-left-color:var(--nogo)}
tr.check.o-inconclusive>td:first-child,tr.check.advisory>td:first-child{border-left-color:#b26a00}tr.check.o-error>td:first-child{border-left-color:var(--err)}
tr.check>td{color:#1f2328}
tr.part>td{background:#fbfcfd;font-size:13px;color:#1f2328}tr.part>td:first-child{padding-left:20px;font-weight:400}
td.adv{color:var(--grey)}
table.exp{margin-top:2px;font-size:12px}table.exp td,table.exp th{padding:2px 5px}
table.exp td.met{color:var(--go)}table.exp td.unmet{color:var(--nogo);font-weight:700}
ul.reasons{margin:0 0 4px;padding-left:18px}ul.reasons li{color:var(--nogo)}
.st-regression{color:var(--nogo);font-weight:700}.st-pre-existing{color:var(--amber);font-weight:600}
.st-fixed{color:var(--go);font-weight:600}.st-new{color:var(--err)}.st-ok{color:var(--go)}
.exceeded{color:var(--nogo);font-weight:700}
tr.st-row-regression>td:first-child{border-left:5px solid var(--nogo)}
tr.st-row-pre-existing>td:first-child{border-left:5px solid #b26a00}
tr.cmp>td:first-child{font-weight:600}.lost-key{color:var(--nogo);font-weight:700}
div.charts{display:flex;flex-wrap:wrap;gap:10px 2%}
figure.chart{margin:0 0 8px;width:49%;break-inside:avoid}figure.chart figcaption{font-weight:600;margin-bottom:2px}
figure.chart svg{width:100%;height:auto;border:1px solid var(--line);background:#fff}
.empty{color:var(--grey);font-style:italic}
footer{margin-top:30px;color:var(--grey);font-size:12px}
@media print{
 body{max-width:none;padding:0;font-size:10.5px}
 .verdict,.badge,tr.check>td:first-child,tr.cmp>td:first-child{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 tr,figure{break-inside:avoid}h2,h3{break-after:avoid}a{color:inherit;text-decoration:none}
}
"#;

/// The HTML document around `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"gonogo {}\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n\
         <body>\n{body}</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(title)
    )
}

/// The outcome of a check: a required one that did not pass in capitals and its colour; an advisory one amber,
/// marked advisory.
fn check_badge(o: Outcome, required: bool) -> String {
    match (o, required) {
        (Outcome::Pass | Outcome::Skipped, _) | (_, true) => outcome_badge(o),
        (o, false) => format!("<span class=\"badge o-advisory\">{} (advisory)</span>", o.as_str().to_uppercase()),
    }
}

fn outcome_badge(o: Outcome) -> String {
    format!(
        "<span class=\"badge o-{o}\">{}</span>",
        if o == Outcome::Pass { "pass".to_owned() } else { o.as_str().to_uppercase() }
    )
}

fn expectations_html(expectations: &[Evaluation]) -> String {
    if expectations.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<table class=\"exp\"><thead><tr><th>expectation</th><th>expected</th><th>observed</th><th></th></tr></thead><tbody>",
    );
    for e in expectations {
        let (class, mark) = if e.met { ("met", "✓ met") } else { ("unmet", "✗ not met") };
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{mark}</td></tr>",
            esc(&e.expectation),
            esc(&e.expected),
            esc(&e.observed)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn reasons_html(reasons: &[String]) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let items: String = reasons.iter().map(|r| format!("<li>{}</li>", esc(r))).collect();
    format!("<ul class=\"reasons\">{items}</ul>")
}

/// Comparison statuses from the most to the least urgent, for ordering rows.
fn urgency(s: CompareStatus) -> u8 {
    match s {
        CompareStatus::Regression => 0,
        CompareStatus::PreExisting => 1,
        CompareStatus::New => 2,
        CompareStatus::Fixed => 3,
        CompareStatus::Ok => 4,
    }
}

/// A comparison's checks, regressions first, otherwise in run order.
fn by_urgency(cmp: &Comparison) -> Vec<&CheckComparison> {
    let mut rows: Vec<&CheckComparison> = cmp.checks.iter().collect();
    rows.sort_by_key(|c| urgency(c.status));
    rows
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1 regression, 1 pre-existing failure, 0 fixed, 0 new`.
fn comparison_counts(cmp: &Comparison) -> String {
    format!(
        "{}, {}, {} fixed, {} new",
        plural(cmp.regressions, "regression", "regressions"),
        plural(cmp.preexisting, "pre-existing failure", "pre-existing failures"),
        cmp.fixed,
        cmp.new
    )
}

fn drift_sentence(d: &Drift) -> String {
    let mark = if d.exceeded { ", EXCEEDED" } else { "" };
    format!("{} {} → {} (tolerance {}{mark})", d.what, d.baseline, d.now, d.tolerance)
}

/// The small "vs baseline" tag after a check's outcome, when the run was compared and the check is not `ok`.
fn compare_tag(run: &RunRecord, name: &str) -> String {
    match run.comparison.as_ref().and_then(|c| c.check(name)) {
        Some(c) if c.status != CompareStatus::Ok => {
            format!(" <span class=\"badge st-{s}\" title=\"compared with the baseline run\">{s}</span>", s = c.status)
        }
        _ => String::new(),
    }
}

fn comparison_html(run: &RunRecord) -> String {
    let Some(cmp) = &run.comparison else { return String::new() };
    let mut out = String::from("<section id=\"comparison\">\n<h2>Comparison with the baseline</h2>\n");
    let _ = writeln!(
        out,
        "<p class=\"sub\">Baseline: {} run <code>{}</code>, finished {}.</p>",
        esc(&cmp.baseline_phase),
        esc(&cmp.baseline_id),
        esc(cmp.baseline_finished_at.as_deref().unwrap_or("-"))
    );
    let _ = writeln!(
        out,
        "<p class=\"cmp-summary\" data-regressions=\"{}\" data-preexisting=\"{}\">\
         <span class=\"badge st-regression\">{}</span> <span class=\"badge st-pre-existing\">{}</span> \
         <span class=\"badge st-fixed\">{} fixed</span> <span class=\"badge st-new\">{} new</span></p>\n\
         <p>A <strong>regression</strong> worked in the baseline and is broken now: the change broke it (roll back). A \
         <strong>pre-existing</strong> failure was already failing before the change (investigate; not a reason to \
         roll back on its own).</p>",
        cmp.regressions,
        cmp.preexisting,
        esc(&plural(cmp.regressions, "regression", "regressions")),
        esc(&plural(cmp.preexisting, "pre-existing failure", "pre-existing failures")),
        cmp.fixed,
        cmp.new
    );
    if cmp.checks.is_empty() {
        out.push_str("<p class=\"empty\">No check to compare.</p>\n</section>\n");
        return out;
    }
    out.push_str(
        "<table class=\"comparison\"><thead><tr><th>Check</th><th>vs baseline</th><th>Baseline</th><th>Now</th>\
         <th>Drift against tolerances</th></tr></thead><tbody>\n",
    );
    for c in by_urgency(cmp) {
        let drift = if c.drift.is_empty() {
            "<span class=\"empty\">no tolerance configured</span>".to_owned()
        } else {
            let mut t = String::from(
                "<table class=\"exp\"><thead><tr><th>what</th><th>baseline</th><th>now</th><th>tolerance</th><th></th>\
                 </tr></thead><tbody>",
            );
            for d in &c.drift {
                let (class, mark) = if d.exceeded { ("unmet", "✗ exceeded") } else { ("met", "✓ within") };
                let _ = write!(
                    t,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{mark}</td></tr>",
                    esc(&d.what),
                    esc(&d.baseline),
                    esc(&d.now),
                    esc(&d.tolerance)
                );
            }
            t.push_str("</tbody></table>");
            t
        };
        let _ = writeln!(
            out,
            "<tr class=\"cmp st-row-{s}\" data-compare=\"{name}\" data-status=\"{s}\"><td class=\"name\">{name}</td>\
             <td><span class=\"badge st-{s}\">{s}</span></td><td>{base}</td><td>{now}</td><td>{drift}</td></tr>",
            s = c.status,
            name = esc(&c.name),
            base = c
                .baseline_outcome
                .map_or_else(|| "<span class=\"empty\">not in baseline</span>".to_owned(), outcome_badge),
            now = outcome_badge(c.outcome),
        );
    }
    out.push_str("</tbody></table>\n</section>\n");
    out
}

fn checks_html(run: &RunRecord, now_unix: i64) -> String {
    let mut out = String::from("<section id=\"checks\">\n<h2>Checks</h2>\n");
    if run.checks.is_empty() {
        out.push_str("<p class=\"empty\">No check was run.</p>\n</section>\n");
        return out;
    }
    out.push_str(
        "<table class=\"checks\"><thead><tr><th>Check</th><th>Kind</th><th>Target</th><th>Required</th>\
         <th>Outcome</th><th>Key figures</th><th>Expected vs observed</th></tr></thead>\n<tbody>\n",
    );
    for c in &run.checks {
        let req_class = if c.required { "req" } else { "adv" };
        let _ = writeln!(
            out,
            "<tr class=\"check o-{o}{adv}\" data-check=\"{name}\" data-outcome=\"{o}\"><td class=\"name\">{name}</td>\
             <td>{kind}</td><td class=\"target\">{target}</td><td class=\"{req_class}\">{req}</td>\
             <td class=\"outcome\">{badge}{tag}</td><td class=\"figures\">{figures}</td><td>{reasons}{exp}</td></tr>",
            o = c.outcome,
            adv = if c.required || c.outcome == Outcome::Pass { "" } else { " advisory" },
            name = esc(&c.name),
            kind = esc(&c.kind),
            target = esc(&c.target),
            req = required_word(c),
            badge = check_badge(c.outcome, c.required),
            tag = compare_tag(run, &c.name),
            figures = esc(&check_figures(c, now_unix)),
            reasons = reasons_html(&c.reasons),
            exp = expectations_html(&c.expectations),
        );
        for p in &c.parts {
            let _ = writeln!(
                out,
                "<tr class=\"part o-{o}\" data-part=\"{label}\"><td>↳ {label}</td><td></td><td class=\"target\">{target}</td>\
                 <td></td><td class=\"outcome\">{badge}</td><td class=\"figures\">{figures}</td><td>{reasons}{exp}</td></tr>",
                o = p.outcome,
                label = esc(&p.label),
                target = esc(&p.target),
                badge = outcome_badge(p.outcome),
                figures = esc(&part_figures(c, p, now_unix)),
                reasons = reasons_html(&p.reasons),
                exp = expectations_html(&p.expectations),
            );
        }
    }
    out.push_str("</tbody></table>\n</section>\n");
    out
}

/// An inline SVG chart of one series: a point per sample in send order, lines between consecutive replies, and
/// a red cross on the axis (with a faint band) for each lost sample. `p95` is drawn dashed when known.
pub fn svg_chart(samples: &[Option<f64>], p95_ms: Option<f64>, title: &str) -> String {
    const W: f64 = 720.0;
    const H: f64 = 190.0;
    const L: f64 = 56.0;
    const R: f64 = 14.0;
    const T: f64 = 12.0;
    const B: f64 = 34.0;
    let (pw, ph) = (W - L - R, H - T - B);
    let n = samples.len().max(1);
    let values: Vec<Option<f64>> = samples.iter().map(|s| s.filter(|v| v.is_finite() && *v >= 0.0)).collect();
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max).max(p95_ms.unwrap_or(0.0));
    let top = nice_ceiling(max * 1.08);
    let x = |i: usize| L + (i as f64 + 0.5) * pw / n as f64;
    let y = |v: f64| T + ph - (v / top).clamp(0.0, 1.0) * ph;
    let lost_count = values.iter().filter(|v| v.is_none()).count();
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"rtt\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         role=\"img\" aria-label=\"{t}\" data-samples=\"{}\" data-lost=\"{lost_count}\"><title>{t}</title>",
        samples.len(),
        t = esc(title)
    );
    // Grid and y labels: 0, half, top.
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac;
        let yy = y(v);
        let _ = write!(
            s,
            "<line x1=\"{L}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#d0d7de\" stroke-width=\"1\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#57606a\">{} ms</text>",
            W - R,
            L - 6.0,
            yy + 4.0,
            fmt_ms(v)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#57606a\">sample, in send order \
         (1–{})</text>",
        L + pw / 2.0,
        H - 8.0,
        samples.len()
    );
    // Lost samples: a faint band and a cross on the axis.
    let band = (pw / n as f64).clamp(1.0, 24.0);
    for (i, v) in values.iter().enumerate() {
        if v.is_none() {
            let xx = x(i);
            let yy = T + ph;
            let _ = write!(
                s,
                "<rect class=\"lost-band\" x=\"{:.1}\" y=\"{T}\" width=\"{band:.1}\" height=\"{ph:.1}\" fill=\"#c62828\" \
                 fill-opacity=\"0.08\"/><path class=\"lost-mark\" d=\"M{:.1} {:.1}l8 8m0 -8l-8 8\" stroke=\"#c62828\" \
                 stroke-width=\"2\"><title>sample {}: lost</title></path>",
                xx - band / 2.0,
                xx - 4.0,
                yy - 4.0,
                i + 1
            );
        }
    }
    // Lines between consecutive replies; a lost sample breaks the line.
    let mut run: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => run.push(format!("{:.1},{:.1}", x(i), y(*v))),
            None => lines.push(std::mem::take(&mut run)),
        }
    }
    lines.push(run);
    for pts in lines.iter().filter(|p| p.len() > 1) {
        let _ =
            write!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\"/>", pts.join(" "));
    }
    if n <= 300 {
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    s,
                    "<circle class=\"reply\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.6\" fill=\"#0969da\"><title>sample {}: {} ms</title></circle>",
                    x(i),
                    y(*v),
                    i + 1,
                    fmt_ms(*v)
                );
            }
        }
    }
    if let Some(p95) = p95_ms.filter(|p| p.is_finite()) {
        let yy = y(p95);
        let _ = write!(
            s,
            "<line x1=\"{L}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#9a5b00\" stroke-dasharray=\"5 4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#9a5b00\">p95 {} ms</text>",
            W - R,
            W - R - 2.0,
            yy - 4.0,
            fmt_ms(p95)
        );
    }
    s.push_str("</svg>");
    s
}

fn charts_html(run: &RunRecord) -> String {
    let series = all_series(run);
    if series.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<section id=\"charts\">\n<h2>Round-trip and connect times</h2>\n<p class=\"sub\">One point per sample in send \
         order; <span class=\"lost-key\">✗</span> marks a lost sample; the dashed line is the 95th percentile.</p>\n",
    );
    let mut figures = String::new();
    let mut none = String::new();
    for s in series {
        let lost = lost(s.samples);
        let n = s.samples.len();
        let plural = if n == 1 { "" } else { "s" };
        let caption = format!("{} — {} to {}: {n} sample{plural}, {lost} lost", s.title, s.what, s.target);
        if s.samples.is_empty() {
            let why = s.detail.map(|d| format!(": {d}")).unwrap_or_default();
            let _ = writeln!(none, "<p class=\"empty chart-none\">{}: no samples{}</p>", esc(&s.title), esc(&why));
            continue;
        }
        let p95 = s.stats.map(|r| r.p95.as_secs_f64() * 1e3);
        let _ = writeln!(
            figures,
            "<figure class=\"chart\" data-check=\"{}\"><figcaption>{}</figcaption>{}</figure>",
            esc(&s.title),
            esc(&caption),
            svg_chart(s.samples, p95, &caption)
        );
    }
    if !figures.is_empty() {
        let _ = write!(out, "<div class=\"charts\">\n{figures}</div>\n");
    }
    out.push_str(&none);
    out.push_str("</section>\n");
    out
}

fn decisions_html(decisions: &[Value]) -> String {
    let mut out = String::from("<section id=\"decisions\">\n<h2>Decisions</h2>\n");
    if decisions.is_empty() {
        out.push_str("<p class=\"empty\">No decision at a gate has relied on this run.</p>\n</section>\n");
        return out;
    }
    out.push_str(
        "<table class=\"decisions\"><thead><tr><th>When</th><th>Gate</th><th>Decision</th><th>By</th><th>Note</th>\
         <th>Details</th></tr></thead><tbody>\n",
    );
    for d in decisions {
        let [when, gate, decision, by, note, rest] = decision_cells(d);
        let _ = writeln!(
            out,
            "<tr class=\"decision\"><td>{}</td><td>{}</td><td class=\"v-{}\"><strong>{}</strong></td><td>{}</td><td>{}</td>\
             <td class=\"mono\">{}</td></tr>",
            esc(&when),
            esc(&gate),
            decision_class(&decision),
            esc(&decision),
            esc(&by),
            esc(&note),
            esc(&rest)
        );
    }
    out.push_str("</tbody></table>\n</section>\n");
    out
}

fn evidence_html(run: &RunRecord, now_unix: i64) -> String {
    let hash = match run_sha256(run) {
        Ok(h) => format!("<code class=\"sha256\">{h}</code>"),
        Err(e) => format!("<span class=\"unmet\">cannot be computed: {}</span>", esc(&e.to_string())),
    };
    format!(
        "<section id=\"evidence\">\n<h2>Evidence</h2>\n<table class=\"facts evidence\"><tbody>\
         <tr><th>Run document SHA-256</th><td>{hash}</td></tr>\
         <tr><th>Computed over</th><td>the run document as compact JSON (<code>gonogo report {id} --format json</code> \
         shows it indented; the journal records the same hash)</td></tr>\
         <tr><th>Report generated</th><td>{} by gonogo {}</td></tr></tbody></table>\n</section>\n",
        rfc3339(now_unix),
        env!("CARGO_PKG_VERSION"),
        id = esc(&run.id),
    )
}

fn html(run: &RunRecord, decisions: &[Value], now_unix: i64) -> String {
    let site = run.site.as_deref().unwrap_or("site not named");
    let word = verdict_word(run);
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<header>\n<h1>Network test report: {} · {}</h1>\n<p class=\"sub\">gonogo run {}</p>",
        esc(site),
        esc(&run.phase),
        esc(&run.id)
    );
    b.push_str("<table class=\"facts\"><tbody>\n");
    for pair in facts(run).chunks(2) {
        b.push_str("<tr>");
        for (k, v) in pair {
            let _ = write!(b, "<th>{k}</th><td>{}</td>", esc(v));
        }
        if pair.len() == 1 {
            b.push_str("<th></th><td></td>");
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</tbody></table>\n</header>\n");
    let _ = writeln!(
        b,
        "<section id=\"verdict\" class=\"verdict verdict-{}\" data-verdict=\"{}\"><div class=\"word\">{}</div>\
         <p>{}</p><p>{}</p></section>",
        verdict_class(run),
        esc(&word),
        esc(&word),
        verdict_meaning(run),
        esc(&counts_line(run))
    );
    if !run.blocking.is_empty() || !run.warnings.is_empty() {
        b.push_str("<section id=\"reasons\">\n");
        if !run.blocking.is_empty() {
            let what = if run.verdict.is_some() { "Blocking" } else { "Why there is no verdict" };
            let items: String = run.blocking.iter().map(|r| format!("<li>{}</li>", esc(r))).collect();
            let _ = writeln!(b, "<h2>{what}</h2>\n<ul class=\"blocking\">{items}</ul>");
        }
        if !run.warnings.is_empty() {
            let items: String = run.warnings.iter().map(|r| format!("<li>{}</li>", esc(r))).collect();
            let _ = writeln!(b, "<h2>Warnings</h2>\n<ul class=\"warnings\">{items}</ul>");
        }
        b.push_str("</section>\n");
    }
    b.push_str(&comparison_html(run));
    b.push_str(&checks_html(run, now_unix));
    b.push_str(&charts_html(run));
    b.push_str(&decisions_html(decisions));
    b.push_str(&evidence_html(run, now_unix));
    let _ = writeln!(
        b,
        "<footer>gonogo {} · report of run {} · this file is self-contained and needs no network to view.</footer>",
        env!("CARGO_PKG_VERSION"),
        esc(&run.id)
    );
    page(&format!("gonogo · {site} · {} · {word}", run.phase), &b)
}

// ---------------------------------------------------------------------------------------------------------------
// Markdown.

fn markdown(run: &RunRecord, decisions: &[Value], now_unix: i64) -> String {
    let mut o = String::new();
    let site = run.site.as_deref().unwrap_or("site not named");
    let _ = writeln!(o, "# Network test report: {} · {}\n", md(site), md(&run.phase));
    let _ = writeln!(o, "| | |\n|---|---|");
    for (k, v) in facts(run) {
        let _ = writeln!(o, "| {k} | {} |", md(&v));
    }
    let _ = writeln!(
        o,
        "\n## Verdict: **{}**\n\n{} {}\n",
        md(&verdict_word(run)),
        verdict_meaning(run),
        md(&counts_line(run))
    );
    if !run.blocking.is_empty() {
        let what = if run.verdict.is_some() { "Blocking" } else { "Why there is no verdict" };
        let _ = writeln!(o, "{what}:\n");
        for r in &run.blocking {
            let _ = writeln!(o, "- {}", md(r));
        }
        o.push('\n');
    }
    if !run.warnings.is_empty() {
        let _ = writeln!(o, "Warnings:\n");
        for r in &run.warnings {
            let _ = writeln!(o, "- {}", md(r));
        }
        o.push('\n');
    }
    if let Some(cmp) = &run.comparison {
        let _ = writeln!(o, "## Comparison with the baseline\n");
        let _ = writeln!(
            o,
            "Baseline: {} run `{}`, finished {}. **{}**.\n",
            md(&cmp.baseline_phase),
            cmp.baseline_id.replace('`', "'"),
            md(cmp.baseline_finished_at.as_deref().unwrap_or("-")),
            md(&comparison_counts(cmp))
        );
        if !cmp.checks.is_empty() {
            let _ = writeln!(
                o,
                "| Check | vs baseline | Baseline | Now | Drift against tolerances |\n|---|---|---|---|---|"
            );
            for c in by_urgency(cmp) {
                let status = match c.status {
                    CompareStatus::Regression => "**REGRESSION**".to_owned(),
                    s => s.to_string(),
                };
                let drift: Vec<String> = c.drift.iter().map(|d| md(&drift_sentence(d))).collect();
                let _ = writeln!(
                    o,
                    "| {} | {status} | {} | {} | {} |",
                    md(&c.name),
                    c.baseline_outcome.map_or("not in baseline", Outcome::as_str),
                    c.outcome,
                    if drift.is_empty() { "-".to_owned() } else { drift.join("; ") }
                );
            }
            o.push('\n');
        }
    }
    let _ = writeln!(o, "## Checks\n");
    if run.checks.is_empty() {
        let _ = writeln!(o, "No check was run.\n");
    } else {
        let _ = writeln!(o, "| Check | Kind | Target | Required | Outcome | Key figures |\n|---|---|---|---|---|---|");
        for c in &run.checks {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                md(&c.name),
                md(&c.kind),
                md(&c.target),
                required_word(c),
                if c.outcome == Outcome::Pass {
                    "pass".to_owned()
                } else {
                    format!("**{}**", c.outcome.as_str().to_uppercase())
                },
                md(&check_figures(c, now_unix))
            );
            for p in &c.parts {
                let _ = writeln!(
                    o,
                    "| ↳ {} | | {} | | {} | {} |",
                    md(&p.label),
                    md(&p.target),
                    p.outcome,
                    md(&part_figures(c, p, now_unix))
                );
            }
        }
        let _ = writeln!(o, "\n### Expected vs observed\n");
        for c in &run.checks {
            let _ = writeln!(o, "#### {} ({})\n", md(&c.name), c.outcome);
            md_details(&mut o, &c.reasons, &c.expectations);
            for p in &c.parts {
                let _ = writeln!(o, "##### {} · {} ({})\n", md(&c.name), md(&p.label), p.outcome);
                md_details(&mut o, &p.reasons, &p.expectations);
            }
        }
    }
    let series = all_series(run);
    if !series.is_empty() {
        let _ = writeln!(o, "## Round-trip and connect times\n");
        for s in series {
            let shown: Vec<String> = s
                .samples
                .iter()
                .take(60)
                .map(|v| v.filter(|v| v.is_finite()).map_or("lost".to_owned(), fmt_ms))
                .collect();
            let more =
                if s.samples.len() > 60 { format!(", … ({} more)", s.samples.len() - 60) } else { String::new() };
            let p95 = s.stats.map(|r| format!(", p95 {}", fmt_duration(r.p95))).unwrap_or_default();
            let _ = writeln!(
                o,
                "- **{}** ({} to {}): {} samples, {} lost{p95}; ms in send order: {}{more}",
                md(&s.title),
                s.what,
                md(s.target),
                s.samples.len(),
                lost(s.samples),
                shown.join(", ")
            );
        }
        o.push('\n');
    }
    let _ = writeln!(o, "## Decisions\n");
    if decisions.is_empty() {
        let _ = writeln!(o, "No decision at a gate has relied on this run.\n");
    } else {
        let _ = writeln!(o, "| When | Gate | Decision | By | Note | Details |\n|---|---|---|---|---|---|");
        for d in decisions {
            let cells = decision_cells(d);
            let _ = writeln!(o, "| {} |", cells.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | "));
        }
        o.push('\n');
    }
    let _ = writeln!(o, "## Evidence\n");
    match run_sha256(run) {
        Ok(h) => {
            let _ = writeln!(o, "- Run document SHA-256 (compact JSON): `{h}`");
        }
        Err(e) => {
            let _ = writeln!(o, "- Run document SHA-256: cannot be computed: {}", md(&e.to_string()));
        }
    }
    let _ = writeln!(o, "- Report generated {} by gonogo {}", rfc3339(now_unix), env!("CARGO_PKG_VERSION"));
    o
}

fn md_details(o: &mut String, reasons: &[String], expectations: &[Evaluation]) {
    for r in reasons {
        let _ = writeln!(o, "- {}", md(r));
    }
    if !reasons.is_empty() {
        o.push('\n');
    }
    if expectations.is_empty() {
        if reasons.is_empty() {
            let _ = writeln!(o, "No expectation was evaluated.\n");
        }
        return;
    }
    let _ = writeln!(o, "| Expectation | Expected | Observed | Met |\n|---|---|---|---|");
    for e in expectations {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            md(&e.expectation),
            md(&e.expected),
            md(&e.observed),
            if e.met { "yes" } else { "**NO**" }
        );
    }
    o.push('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// CSV.

fn csv(run: &RunRecord, now_unix: i64) -> String {
    let mut o = String::from("check,kind,target,required,result,evidence\r\n");
    for c in &run.checks {
        let mut evidence = format!("{}: {}", c.outcome, check_figures(c, now_unix));
        for r in &c.reasons {
            let _ = write!(evidence, "; {r}");
        }
        if let Some(cmp) = &run.comparison
            && let Some(cc) = cmp.check(&c.name)
        {
            let was = cc.baseline_outcome.map_or("not in baseline", Outcome::as_str);
            let _ = write!(evidence, "; vs baseline {}: {} (was {was})", cmp.baseline_id, cc.status);
            for d in cc.drift.iter().filter(|d| d.exceeded) {
                let _ = write!(evidence, "; {}", drift_sentence(d));
            }
        }
        let fields = [
            c.name.as_str(),
            c.kind.as_str(),
            c.target.as_str(),
            if c.required { "Yes" } else { "No" },
            if c.outcome == Outcome::Pass { "Yes" } else { "No" },
            evidence.as_str(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        o.push_str(&row.join(","));
        o.push_str("\r\n");
    }
    o
}

// ---------------------------------------------------------------------------------------------------------------
// Status page.

/// One phase on the status page.
#[derive(Debug, Clone)]
pub struct PhaseStatus {
    pub name: String,
    pub description: Option<String>,
    /// The phase's latest finished run, if one is among the runs looked at.
    pub latest: Option<RunRecord>,
}

/// What the status page shows, gathered from the config, the run store and the run manager.
#[derive(Debug, Clone)]
pub struct StatusView {
    pub site: Option<String>,
    pub ods_code: Option<String>,
    /// Phases that have checks, standard ones in workflow order first.
    pub phases: Vec<PhaseStatus>,
    /// Runs queued or running, newest first.
    pub in_progress: Vec<RunRecord>,
    /// The most recent runs, newest first.
    pub recent: Vec<RunRecord>,
    /// How many stored runs were read to find the phases' latest finished runs.
    pub scanned: usize,
}

/// Most run documents read for one status page.
pub const STATUS_SCAN_LIMIT: usize = 1000;

impl StatusView {
    /// Gather the view: `recent` most recent runs, each phase's latest finished run (reading at most
    /// [`STATUS_SCAN_LIMIT`] documents, newest first), and the runs in progress (`active`: phase and id, from the
    /// run manager; runs the store holds as queued or running are added).
    pub fn collect(
        config: &Config,
        store: &Store,
        active: &[(String, String)],
        recent: usize,
    ) -> Result<StatusView, StoreError> {
        let mut names: Vec<&str> =
            STANDARD_PHASES.iter().copied().filter(|p| config.checks_in(p).next().is_some()).collect();
        names.extend(
            config
                .phases
                .keys()
                .map(String::as_str)
                .filter(|p| !STANDARD_PHASES.contains(p) && config.checks_in(p).next().is_some()),
        );
        let mut latest: BTreeMap<&str, RunRecord> = BTreeMap::new();
        let mut recent_runs = Vec::new();
        let mut in_progress: Vec<RunRecord> = Vec::new();
        let mut scanned = 0;
        for id in store.ids()?.into_iter().take(STATUS_SCAN_LIMIT) {
            if recent_runs.len() >= recent && latest.len() >= names.len() {
                break;
            }
            scanned += 1;
            let run = match store.load(&id) {
                Ok(Some(run)) => run,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "status page: skipping unreadable run document");
                    continue;
                }
            };
            if run.status == RunStatus::Finished
                && let Some(name) = names.iter().find(|n| **n == run.phase)
                && !latest.contains_key(name)
            {
                latest.insert(name, run.clone());
            }
            if !run.status.is_final() && !in_progress.iter().any(|r| r.id == run.id) {
                in_progress.push(run.clone());
            }
            if recent_runs.len() < recent {
                recent_runs.push(run);
            }
        }
        for (_, id) in active {
            if !in_progress.iter().any(|r| &r.id == id)
                && let Ok(Some(run)) = store.load(id)
            {
                in_progress.push(run);
            }
        }
        in_progress.sort_by(|a, b| b.id.cmp(&a.id));
        let phases = names
            .iter()
            .map(|n| PhaseStatus {
                name: (*n).to_owned(),
                description: config.phases.get(*n).and_then(|p| p.description.clone()),
                latest: latest.remove(n),
            })
            .collect();
        Ok(StatusView {
            site: config.site.name.clone(),
            ods_code: config.site.ods_code.clone(),
            phases,
            in_progress,
            recent: recent_runs,
            scanned,
        })
    }
}

/// Link to a run's HTML report on the API.
pub fn report_url(id: &str) -> String {
    format!("/api/v1/runs/{}/report?format=html", url_segment(id))
}

fn verdict_badge(run: &RunRecord) -> String {
    let word = verdict_word(run);
    let word = if run.verdict.is_none() { run.status.as_str().to_owned() } else { word };
    format!("<span class=\"badge v-{}\">{}</span>", verdict_class(run), esc(&word))
}

/// The status page of `gonogo serve` (`GET /`): the verdict of each phase's latest finished run, runs in
/// progress, gates (`gates`: JSON objects with a name, a verdict and reasons; may be empty) and the recent runs,
/// each linked to its HTML report. Server-rendered; needs no JavaScript.
pub fn status_page(view: &StatusView, gates: &[Value], now_unix: i64) -> String {
    let site = view.site.as_deref().unwrap_or("site not named");
    let mut b = String::new();
    let ods = view.ods_code.as_deref().map(|o| format!(" · ODS {}", esc(o))).unwrap_or_default();
    let _ = writeln!(
        b,
        "<header>\n<h1>gonogo · {}</h1>\n<p class=\"sub\">{ods}{}as of {} · gonogo {}</p>\n</header>",
        esc(site),
        if ods.is_empty() { "" } else { " · " },
        rfc3339(now_unix),
        env!("CARGO_PKG_VERSION")
    );

    b.push_str("<section id=\"phases\">\n<h2>Verdict per phase</h2>\n");
    if view.phases.is_empty() {
        b.push_str("<p class=\"empty\">No phase has checks in the config.</p>\n");
    } else {
        b.push_str(
            "<table><thead><tr><th>Phase</th><th>Verdict</th><th>Finished</th><th>Change</th><th>vs baseline</th>\
             <th>Blocking</th><th>Run</th></tr></thead><tbody>\n",
        );
        for p in &view.phases {
            let desc = p.description.as_deref().map(|d| format!("<br><small>{}</small>", esc(d))).unwrap_or_default();
            match &p.latest {
                Some(r) => {
                    let _ = writeln!(
                        b,
                        "<tr class=\"phase\" data-phase=\"{name}\" data-verdict=\"{v}\"><td><strong>{name}</strong>{desc}</td>\
                         <td>{badge}</td><td>{fin}</td><td>{chg}</td><td>{cmp}</td><td>{blk}</td><td><a href=\"{url}\">{id}</a></td></tr>",
                        name = esc(&p.name),
                        v = esc(&verdict_word(r)),
                        badge = verdict_badge(r),
                        fin = esc(r.finished_at.as_deref().unwrap_or("-")),
                        chg = esc(r.change_ref.as_deref().unwrap_or("-")),
                        cmp = esc(&r.comparison.as_ref().map_or_else(|| "-".to_owned(), comparison_counts)),
                        blk = esc(&r.blocking.join("; ")),
                        url = esc(&report_url(&r.id)),
                        id = esc(&r.id),
                    );
                }
                None => {
                    let _ = writeln!(
                        b,
                        "<tr class=\"phase\" data-phase=\"{name}\" data-verdict=\"none\"><td><strong>{name}</strong>{desc}</td>\
                         <td><span class=\"badge v-none\">no finished run</span></td><td>-</td><td>-</td><td>-</td><td></td><td></td></tr>",
                        name = esc(&p.name),
                    );
                }
            }
        }
        b.push_str("</tbody></table>\n");
    }
    b.push_str("</section>\n");

    b.push_str("<section id=\"in-progress\">\n<h2>In progress</h2>\n");
    if view.in_progress.is_empty() {
        b.push_str("<p class=\"empty\">No run in progress.</p>\n");
    } else {
        b.push_str("<ul>\n");
        for r in &view.in_progress {
            let _ = writeln!(
                b,
                "<li class=\"running\" data-run=\"{id}\"><strong>{phase}</strong> — {status} since {since} (run <code>{id}</code>)</li>",
                id = esc(&r.id),
                phase = esc(&r.phase),
                status = r.status,
                since = esc(r.started_at.as_deref().unwrap_or(&r.created_at)),
            );
        }
        b.push_str("</ul>\n");
    }
    b.push_str("</section>\n");

    b.push_str("<section id=\"gates\">\n<h2>Gates</h2>\n");
    if gates.is_empty() {
        b.push_str("<p class=\"empty\">No gate to show.</p>\n");
    } else {
        b.push_str(
            "<table><thead><tr><th>Gate</th><th>Verdict</th><th>Reasons</th><th>Details</th></tr></thead><tbody>\n",
        );
        for g in gates {
            let (name, verdict, reasons, rest) = gate_cells(g);
            let items: String = reasons.iter().map(|r| format!("<li>{}</li>", esc(r))).collect();
            let reasons = if items.is_empty() { String::new() } else { format!("<ul class=\"reasons\">{items}</ul>") };
            let _ = writeln!(
                b,
                "<tr class=\"gate\" data-gate=\"{n}\"><td><strong>{n}</strong></td><td><span class=\"badge v-{c}\">{v}</span></td>\
                 <td>{reasons}</td><td class=\"mono\">{rest}</td></tr>",
                n = esc(&name),
                c = verdict_class_of(&verdict),
                v = esc(&verdict),
                rest = esc(&rest),
            );
        }
        b.push_str("</tbody></table>\n");
    }
    b.push_str("</section>\n");

    let _ = writeln!(b, "<section id=\"recent\">\n<h2>Recent runs</h2>");
    if view.recent.is_empty() {
        b.push_str("<p class=\"empty\">No run recorded yet.</p>\n");
    } else {
        b.push_str(
            "<table><thead><tr><th>Run</th><th>Phase</th><th>Status</th><th>Verdict</th><th>Created</th>\
             <th>Trigger</th><th>Change</th></tr></thead><tbody>\n",
        );
        for r in &view.recent {
            let by = r.trigger.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
            let _ = writeln!(
                b,
                "<tr class=\"run\" data-run=\"{id}\"><td><a href=\"{url}\">{id}</a></td><td>{phase}</td><td>{status}</td>\
                 <td>{badge}</td><td>{created}</td><td>{trigger}</td><td>{chg}</td></tr>",
                id = esc(&r.id),
                url = esc(&report_url(&r.id)),
                phase = esc(&r.phase),
                status = r.status,
                badge = verdict_badge(r),
                created = esc(&r.created_at),
                trigger = esc(&format!("{}{by}", r.trigger.source)),
                chg = esc(r.change_ref.as_deref().unwrap_or("-")),
            );
        }
        b.push_str("</tbody></table>\n");
    }
    b.push_str("</section>\n");
    b.push_str(
        "<footer>The same data as JSON: <code>/api/v1/runs</code>, <code>/api/v1/runs/{id}</code>, \
         <code>/api/v1/plan</code>. Reports: <code>/api/v1/runs/{id}/report?format=html|md|json|junit|csv</code>.</footer>\n",
    );
    page(&format!("gonogo · {site} · status"), &b)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use gonogo_probes::Failure;
    use gonogo_probes::dns::DnsObservations;
    use gonogo_probes::icmp::IcmpObservations;
    use gonogo_probes::tcp::TcpObservations;
    use serde_json::json;

    use super::*;
    use crate::run::{PartResult, Trigger};

    const NOW: i64 = 1_800_000_000;
    const HOSTILE: &str = "<script>alert(\"x\")</script>";

    fn config() -> Config {
        let text = "[site]\nname = \"Leeds <GP> & Co\"\nods_code = \"B86001\"\n\
                    [[check]]\nname = \"p\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"pre-migration\"]\n\
                    [[check]]\nname = \"q\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"post-migration\"]\n";
        gonogo_config::parse(text, Path::new("t.toml")).expect("config")
    }

    fn icmp(samples: &[Option<f64>]) -> Observations {
        let got: Vec<Duration> = samples.iter().flatten().map(|v| Duration::from_secs_f64(v / 1e3)).collect();
        let sent = samples.len() as u32;
        let received = got.len() as u32;
        Observations::Icmp(IcmpObservations {
            address: Some("127.0.0.1".parse().expect("ip")),
            sent,
            received,
            loss: gonogo_probes::stats::loss_ratio(sent, received),
            rtt: RttStats::from_samples(&got),
            samples_ms: samples.to_vec(),
            failure: if received == 0 { Some(Failure::Timeout) } else { None },
            detail: None,
            fallback_tcp: None,
            too_big: None,
        })
    }

    fn tcp(samples: &[Option<f64>]) -> Observations {
        let got: Vec<Duration> = samples.iter().flatten().map(|v| Duration::from_secs_f64(v / 1e3)).collect();
        Observations::Tcp(TcpObservations {
            address: Some("127.0.0.1:443".parse().expect("addr")),
            attempts: samples.len() as u32,
            connected: got.len() as u32,
            connect: RttStats::from_samples(&got),
            samples_ms: samples.to_vec(),
            failure: None,
            detail: None,
            banner: None,
        })
    }

    fn check(name: &str, kind: &str, target: &str, outcome: Outcome, obs: Option<Observations>) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: kind.into(),
            target: target.into(),
            required: true,
            outcome,
            reasons: if outcome == Outcome::Pass { vec![] } else { vec![format!("{name} did not pass")] },
            expectations: vec![Evaluation {
                expectation: "loss_max".into(),
                expected: "≤ 0%".into(),
                observed: if outcome == Outcome::Pass { "0%".into() } else { "40%".into() },
                met: outcome == Outcome::Pass,
            }],
            observations: obs,
            duration: Duration::from_millis(120),
            attempts: 1,
            time_to_pass: None,
            parts: Vec::new(),
        }
    }

    /// A finished NO-GO run: a passing ICMP check with a lost sample, a failing TCP check with a hostile name,
    /// an advisory DNS check with a hostile answer, and a check with two parts.
    fn sample_run() -> RunRecord {
        let mut run = RunRecord::new(
            &config(),
            "post-migration",
            Trigger { source: "cli".into(), by: Some("ops, \"night\" shift".into()) },
            Some("CHG0012345".into()),
            false,
        );
        run.start();
        let mut dns = check(
            "=HYPERLINK(\"evil\")",
            "dns",
            "pas.nhs.uk A",
            Outcome::Fail,
            Some(Observations::Dns(DnsObservations {
                server: "127.0.0.1:53/udp".into(),
                rcode: Some("NOERROR".into()),
                answers: vec![HOSTILE.into()],
                lookup_time: Duration::from_millis(3),
                failure: None,
                detail: None,
            })),
        );
        dns.required = false;
        dns.reasons = vec!["answer \"a,b\" | <b>bold</b>\nsecond line".into()];
        let mut dual = check("dual-stack", "tcp", "app.example:443", Outcome::Fail, None);
        dual.parts = vec![
            PartResult {
                label: "IPv4 127.0.0.1".into(),
                target: "127.0.0.1:443".into(),
                outcome: Outcome::Pass,
                reasons: vec![],
                expectations: vec![],
                observations: Some(tcp(&[Some(0.2), Some(0.3)])),
            },
            PartResult {
                label: "IPv6 ::1".into(),
                target: "[::1]:443".into(),
                outcome: Outcome::Fail,
                reasons: vec!["refused".into()],
                expectations: vec![],
                observations: Some(tcp(&[None, None])),
            },
        ];
        run.finish(vec![
            check("gateway", "icmp", "10.0.0.1", Outcome::Pass, Some(icmp(&[Some(1.5), None, Some(2.5), Some(1.0)]))),
            check(HOSTILE, "tcp", "\"><img src=x onerror=alert(1)>", Outcome::Fail, Some(tcp(&[Some(0.4), None]))),
            dns,
            dual,
        ]);
        run
    }

    /// [`sample_run`] compared with a baseline: the hostile TCP check regressed (and drifted beyond its
    /// tolerance), the DNS check was already failing, dual-stack is new, gateway is ok within its tolerance.
    fn compared_run() -> RunRecord {
        let mut run = sample_run();
        let drift = |what: &str, baseline: &str, now: &str, tolerance: &str, exceeded: bool| Drift {
            what: what.into(),
            baseline: baseline.into(),
            now: now.into(),
            tolerance: tolerance.into(),
            exceeded,
        };
        let cc = |name: &str, status, baseline_outcome, outcome, drift| CheckComparison {
            name: name.into(),
            status,
            baseline_outcome,
            outcome,
            drift,
        };
        run.comparison = Some(Comparison {
            baseline_id: "20261124T090000000Z-pre-migration-abcd".into(),
            baseline_phase: "pre-migration".into(),
            baseline_finished_at: Some("2026-11-24T09:00:05.000Z".into()),
            checks: vec![
                cc(
                    "gateway",
                    CompareStatus::Ok,
                    Some(Outcome::Pass),
                    Outcome::Pass,
                    vec![drift("rtt_p95", "1.2ms", "2.4ms", "+20ms", false)],
                ),
                cc(
                    HOSTILE,
                    CompareStatus::Regression,
                    Some(Outcome::Pass),
                    Outcome::Fail,
                    vec![drift("rtt_p95", "0.4ms", "45.0ms", "+25%", true)],
                ),
                cc("=HYPERLINK(\"evil\")", CompareStatus::PreExisting, Some(Outcome::Fail), Outcome::Fail, vec![]),
                cc("dual-stack", CompareStatus::New, None, Outcome::Fail, vec![]),
            ],
            regressions: 1,
            preexisting: 1,
            fixed: 0,
            new: 1,
        });
        run
    }

    #[test]
    fn html_shows_the_comparison_with_the_baseline_regressions_first() {
        let plain = render(&sample_run(), ReportFormat::Html, &[], NOW);
        assert!(!plain.contains("id=\"comparison\""), "no comparison section without a baseline");
        let run = compared_run();
        let html = render(&run, ReportFormat::Html, &[], NOW);
        assert!(!html.contains("<script"));
        let section = &html[html.find("<section id=\"comparison\">").expect("comparison section")..];
        let section = &section[..section.find("</section>").expect("end")];
        assert!(section.contains("pre-migration run <code>20261124T090000000Z-pre-migration-abcd</code>"));
        assert!(section.contains("data-regressions=\"1\" data-preexisting=\"1\""));
        assert!(section.contains("1 regression</span>"));
        assert!(section.contains("1 pre-existing failure</span>"));
        let order: Vec<&str> = section.split("data-status=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
        assert_eq!(order, ["regression", "pre-existing", "new", "ok"]);
        assert!(
            section.contains(
                "data-compare=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;\" data-status=\"regression\""
            )
        );
        assert!(
            section.contains(
                "<td>rtt_p95</td><td>0.4ms</td><td>45.0ms</td><td>+25%</td><td class=\"unmet\">✗ exceeded</td>"
            )
        );
        assert!(section.contains("<td class=\"met\">✓ within</td>"));
        assert!(section.contains("not in baseline"));
        assert_eq!(html.matches("<tr class=\"cmp ").count(), 4);
        // The check table tags the checks that are not ok.
        assert!(html.contains(
            "<span class=\"badge st-regression\" title=\"compared with the baseline run\">regression</span>"
        ));
        assert!(html.contains("title=\"compared with the baseline run\">pre-existing</span>"));
        // The comparison comes before the check table: the first thing read after the verdict and reasons.
        assert!(html.find("id=\"comparison\"") < html.find("id=\"checks\""));
    }

    #[test]
    fn markdown_and_csv_carry_the_comparison() {
        let run = compared_run();
        let md = render(&run, ReportFormat::Md, &[], NOW);
        assert!(md.contains("## Comparison with the baseline"));
        assert!(md.contains("**1 regression, 1 pre-existing failure, 0 fixed, 1 new**"), "{md}");
        assert!(
            md.contains("| **REGRESSION** | pass | fail | rtt\\_p95 0.4ms → 45.0ms \\(tolerance +25%, EXCEEDED\\) |"),
            "{md}"
        );
        assert!(md.contains("| dual-stack | new | not in baseline | fail | - |"), "{md}");
        let rows = parse_csv(&render(&run, ReportFormat::Csv, &[], NOW));
        assert_eq!(rows.len(), run.checks.len() + 1);
        assert!(
            rows[2][5].ends_with(
                "; vs baseline 20261124T090000000Z-pre-migration-abcd: regression (was pass); rtt_p95 0.4ms → 45.0ms \
             (tolerance +25%, EXCEEDED)"
            ),
            "{}",
            rows[2][5]
        );
        assert!(rows[3][5].contains("pre-existing (was fail)"), "{}", rows[3][5]);
        assert!(rows[4][5].contains("new (was not in baseline)"), "{}", rows[4][5]);
    }

    /// Records of a CSV text (RFC 4180, quoted fields may hold line ends).
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') if field.is_empty() => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\r') => {}
                (false, '\n') => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => field.push(c),
            }
        }
        assert!(!quoted, "unterminated quoted field");
        if !field.is_empty() || !row.is_empty() {
            row.push(field);
            rows.push(row);
        }
        rows
    }

    #[test]
    fn formats_parse_by_name() {
        for f in ReportFormat::ALL {
            assert_eq!(ReportFormat::parse(f.as_str()), Some(f));
            assert_eq!(ReportFormat::parse(&f.as_str().to_uppercase()), Some(f));
        }
        assert_eq!(ReportFormat::parse("markdown"), Some(ReportFormat::Md));
        assert_eq!(ReportFormat::parse("pdf"), None);
    }

    #[test]
    fn html_escapes_everything_from_config_and_network() {
        let run = sample_run();
        let decisions = [json!({"gate": HOSTILE, "decision": "go", "name": "A <b>", "note": "ok & done"})];
        let html = render(&run, ReportFormat::Html, &decisions, NOW);
        assert!(!html.contains("<script"), "a script tag got through");
        assert!(!html.contains("<img"), "an img tag got through");
        assert!(!html.contains("<b>"), "markup from a reason got through");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("Leeds &lt;GP&gt; &amp; Co"));
        assert!(html.contains("ok &amp; done"));
        // Every attribute value is quoted with ", and no value holds a raw one.
        assert!(html.contains("data-check=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;\""));
        assert_eq!(escape_html("a\u{0}b\u{7}c'"), "abc&#39;");
    }

    #[test]
    fn html_has_every_section_and_one_row_per_check_and_part() {
        let run = sample_run();
        let html = render(&run, ReportFormat::Html, &[], NOW);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.trim_end().ends_with("</html>"));
        for marker in [
            "id=\"verdict\" class=\"verdict verdict-nogo\" data-verdict=\"NO-GO\"",
            "<section id=\"reasons\">",
            "<section id=\"checks\">",
            "<section id=\"charts\">",
            "<section id=\"decisions\">",
            "<section id=\"evidence\">",
            "CHG0012345",
            "post-migration",
            &run.id,
            "No decision at a gate has relied on this run.",
        ] {
            assert!(html.contains(marker), "missing {marker:?}");
        }
        assert_eq!(html.matches("<tr class=\"check ").count(), run.checks.len());
        assert_eq!(html.matches("<tr class=\"part ").count(), 2);
        for open in ["section", "table", "tr", "td", "ul", "svg", "figure"] {
            let opened = html.matches(&format!("<{open} ")).count() + html.matches(&format!("<{open}>")).count();
            assert_eq!(opened, html.matches(&format!("</{open}>")).count(), "unbalanced <{open}>");
        }
        // No external anything: no URL to fetch, no script.
        for banned in ["src=\"http", "href=\"http", "<link", "<script", "@import", "url("] {
            assert!(!html.contains(banned), "{banned:?} in a self-contained report");
        }
        assert!(html.contains("@media print"));
        // Expected vs observed, for each expectation, met or not.
        assert!(html.contains("<td>loss_max</td><td>≤ 0%</td><td>40%</td><td class=\"unmet\">✗ not met</td>"));
        assert!(html.contains("<td>loss_max</td><td>≤ 0%</td><td>0%</td><td class=\"met\">✓ met</td>"));
        // Key figures come from output::figures.
        assert!(html.contains(&escape_html(&output::figures(&run.checks[0], NOW))));
        // The hash of the canonical document.
        let hash = run_sha256(&run).expect("hash");
        assert!(html.contains(&format!("<code class=\"sha256\">{hash}</code>")));
    }

    #[test]
    fn verdict_banner_for_each_verdict_and_unfinished_runs() {
        let mut run = sample_run();
        for (v, class, word) in [
            (Some(Verdict::Go), "verdict-go", "GO"),
            (Some(Verdict::NoGo), "verdict-nogo", "NO-GO"),
            (Some(Verdict::Inconclusive), "verdict-inconclusive", "INCONCLUSIVE"),
        ] {
            run.verdict = v;
            let html = render(&run, ReportFormat::Html, &[], NOW);
            assert!(html.contains(&format!("class=\"verdict {class}\" data-verdict=\"{word}\"")), "{word}");
        }
        run.abandon(RunStatus::Cancelled, "cancelled by noc".into());
        let html = render(&run, ReportFormat::Html, &[], NOW);
        assert!(html.contains("class=\"verdict verdict-none\" data-verdict=\"NOT FINISHED (cancelled)\""));
        assert!(html.contains("Why there is no verdict"));
        let md = render(&run, ReportFormat::Md, &[], NOW);
        assert!(md.contains("## Verdict: **NOT FINISHED \\(cancelled\\)**"), "{md}");
    }

    #[test]
    fn svg_marks_lost_samples_and_breaks_the_line() {
        let svg = svg_chart(&[Some(1.0), None, Some(3.0), Some(2.0), None], Some(2.9), "t");
        assert!(svg.starts_with("<svg class=\"rtt\""));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("data-samples=\"5\" data-lost=\"2\""));
        assert_eq!(svg.matches("class=\"lost-mark\"").count(), 2);
        assert_eq!(svg.matches("class=\"reply\"").count(), 3);
        // 1 | lost | 3, 2 | lost: one line of two points, the single point before the loss has none.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("sample 2: lost"));
        assert!(svg.contains("p95 2.9 ms"));
        assert!(svg.contains(">5 ms</text>"), "axis top should be 5 ms: {svg}");
        // Every sample lost: still a chart, the axis at 1 ms, no line.
        let all_lost = svg_chart(&[None, None, None], None, "all lost");
        assert_eq!(all_lost.matches("class=\"lost-mark\"").count(), 3);
        assert!(!all_lost.contains("<polyline"));
        assert!(all_lost.contains(">1 ms</text>"));
        // A hostile title is escaped.
        assert!(!svg_chart(&[Some(1.0)], None, HOSTILE).contains("<script"));
    }

    #[test]
    fn charts_cover_icmp_and_tcp_checks_and_their_parts() {
        let run = sample_run();
        let html = render(&run, ReportFormat::Html, &[], NOW);
        // gateway (icmp), the hostile tcp check, and the two parts of dual-stack; the DNS check has none.
        assert_eq!(html.matches("<figure class=\"chart\"").count(), 4);
        assert!(html.contains("data-check=\"dual-stack · IPv6 ::1\""));
        assert_eq!(html.matches("class=\"lost-mark\"").count(), 1 + 1 + 2);
    }

    #[test]
    fn nice_ceilings_and_short_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.042), 0.05);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(21.0), 25.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(fmt_ms(0.042), "0.042");
        assert_eq!(fmt_ms(2.50), "2.5");
        assert_eq!(fmt_ms(12.0), "12");
        assert_eq!(fmt_ms(250.4), "250");
    }

    #[test]
    fn csv_is_a_readiness_sheet_with_one_row_per_check() {
        let run = sample_run();
        let text = render(&run, ReportFormat::Csv, &[], NOW);
        let rows = parse_csv(&text);
        assert_eq!(rows.len(), run.checks.len() + 1, "{text}");
        assert_eq!(rows[0], ["check", "kind", "target", "required", "result", "evidence"]);
        assert!(rows.iter().all(|r| r.len() == 6), "{rows:?}");
        assert_eq!(rows[1][0], "gateway");
        assert_eq!(rows[1][4], "Yes");
        assert!(rows[1][5].starts_with("pass: 3/4 replies"), "{}", rows[1][5]);
        assert_eq!(rows[2][0], HOSTILE, "quotes in a field survive quoting");
        assert_eq!(rows[2][4], "No");
        // A formula-looking name is defused; the advisory check is required = No; reasons with quotes, commas
        // and line ends survive.
        assert_eq!(rows[3][0], "'=HYPERLINK(\"evil\")");
        assert_eq!(rows[3][3], "No");
        assert!(rows[3][5].contains("answer \"a,b\" | <b>bold</b>\nsecond line"), "{}", rows[3][5]);
        assert!(text.contains("\"'=HYPERLINK(\"\"evil\"\")\""));
        assert!(text.ends_with("\r\n") && text.matches("\r\n").count() >= rows.len(), "CRLF record ends");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(" padded"), "\" padded\"");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    }

    #[test]
    fn markdown_has_the_same_content_and_no_raw_markup() {
        let run = sample_run();
        let decisions = [json!({"gate": "go-live", "decision": "rollback", "name": "Jo", "role": "CAB",
                               "organisation": "NHS Trust", "note": "app | broke", "run_hashes": ["ab"]})];
        let md = render(&run, ReportFormat::Md, &decisions, NOW);
        assert!(md.starts_with("# Network test report: Leeds &lt;GP&gt; &amp; Co · post-migration\n"));
        assert!(!md.contains("<script") && !md.contains("<b>") && !md.contains("<img"));
        assert!(md.contains("## Verdict: **NO-GO**"));
        for section in
            ["## Checks", "### Expected vs observed", "## Round-trip and connect times", "## Decisions", "## Evidence"]
        {
            assert!(md.contains(section), "missing {section}");
        }
        // One table row per check and part, each with 6 cells (pipes inside cells escaped).
        let rows: Vec<&str> =
            md.lines().skip_while(|l| !l.starts_with("| Check |")).skip(2).take_while(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), run.checks.len() + 2, "{rows:?}");
        for r in &rows {
            let cells = r.replace("\\|", "").matches('|').count();
            assert_eq!(cells, 7, "{r}");
        }
        assert!(md.contains("| loss\\_max | ≤ 0% | 40% | **NO** |"));
        assert!(md.contains("ms in send order: 1.5, lost, 2.5, 1"));
        assert!(
            md.contains("| go-live | ROLLBACK | Jo, CAB, NHS Trust | app \\| broke | run\\_hashes: \\[\"ab\"\\] |"),
            "{md}"
        );
        assert!(md.contains(&format!("`{}`", run_sha256(&run).expect("hash"))));
    }

    #[test]
    fn json_is_the_run_document_and_junit_is_xml() {
        let run = sample_run();
        let json = render(&run, ReportFormat::Json, &[], NOW);
        let back: Value = serde_json::from_str(&json).expect("JSON");
        // Both through the parser: serde_json's default float parsing may land one ulp off the written value
        // (0.015262999999999999 read back as 0.015263), so compare parsed with parsed.
        let document: Value = serde_json::from_str(&serde_json::to_string(&run).expect("run JSON")).expect("JSON");
        assert_eq!(back, document);
        let junit = render(&run, ReportFormat::Junit, &[], NOW);
        let doc = roxmltree::Document::parse(&junit).expect("JUnit is XML");
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("testcase")).count(), run.checks.len());
    }

    #[test]
    fn the_hash_is_sha256_of_the_compact_document() {
        let mut run = sample_run();
        let h = run_sha256(&run).expect("hash");
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let direct = ring::digest::digest(&ring::digest::SHA256, &serde_json::to_vec(&run).expect("bytes"));
        assert_eq!(h, direct.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>());
        // The stored document (pretty JSON) read back hashes the same: the form is canonical, not the bytes.
        let stored: RunRecord =
            serde_json::from_slice(&serde_json::to_vec_pretty(&run).expect("pretty")).expect("read");
        assert_eq!(run_sha256(&stored).expect("hash"), h);
        run.checks[0].reasons.push("edited".into());
        assert_ne!(run_sha256(&run).expect("hash"), h);
    }

    #[test]
    fn decisions_show_who_what_and_overrides() {
        let run = sample_run();
        let decisions = [
            json!({"at": "2026-11-24T10:00:00Z", "gate": "go-live", "decision": "go", "name": "Sam",
                   "role": "Change manager", "organisation": "CN-SP", "note": "fine", "override": "gate stale, CAB agreed"}),
            json!("free text"),
        ];
        let html = render(&run, ReportFormat::Html, &decisions, NOW);
        assert_eq!(html.matches("<tr class=\"decision\">").count(), 2);
        assert!(html.contains("<td class=\"v-go\"><strong>GO</strong></td><td>Sam, Change manager, CN-SP</td>"));
        assert!(html.contains("fine (OVERRIDE: gate stale, CAB agreed)"));
        assert!(html.contains("free text"));
        assert!(!html.contains("No decision at a gate"));
    }

    fn store_with_runs() -> (tempfile::TempDir, Store, Vec<RunRecord>) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 100).expect("open");
        let cfg = config();
        let trigger = Trigger { source: "api".into(), by: Some("noc".into()) };
        let mut runs = Vec::new();
        for (i, (phase, outcome)) in
            [("pre-migration", Outcome::Pass), ("post-migration", Outcome::Fail), ("pre-migration", Outcome::Fail)]
                .into_iter()
                .enumerate()
        {
            let mut r = RunRecord::new(&cfg, phase, trigger.clone(), None, false);
            r.id = format!("2026010{i}T000000000Z-{phase}-0000");
            r.start();
            r.finish(vec![check("p", "tcp", "127.0.0.1:9", outcome, None)]);
            store.save(&r).expect("save");
            runs.push(r);
        }
        // The newest pre-migration run is still running: the phase's verdict is that of the finished one before.
        let mut running = RunRecord::new(&cfg, "pre-migration", trigger, Some(HOSTILE.into()), false);
        running.id = "20260109T000000000Z-pre-migration-0000".into();
        running.start();
        store.save(&running).expect("save");
        runs.push(running);
        (dir, store, runs)
    }

    #[test]
    fn status_view_finds_each_phase_latest_finished_run_and_runs_in_progress() {
        let (_dir, store, runs) = store_with_runs();
        let view = StatusView::collect(&config(), &store, &[], 20).expect("collect");
        let names: Vec<&str> = view.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["pre-migration", "post-migration"], "workflow order, phases with checks only");
        assert_eq!(view.phases[0].latest.as_ref().map(|r| r.id.as_str()), Some(runs[2].id.as_str()));
        assert_eq!(view.phases[0].latest.as_ref().and_then(|r| r.verdict), Some(Verdict::NoGo));
        assert_eq!(view.phases[1].latest.as_ref().map(|r| r.id.as_str()), Some(runs[1].id.as_str()));
        assert_eq!(view.in_progress.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [runs[3].id.as_str()]);
        assert_eq!(view.recent.len(), 4);
        assert_eq!(view.recent[0].id, runs[3].id, "newest first");
        let limited = StatusView::collect(&config(), &store, &[], 2).expect("collect");
        assert_eq!(limited.recent.len(), 2);
        assert!(limited.phases.iter().all(|p| p.latest.is_some()), "latest runs are found beyond the recent ones");
    }

    #[test]
    fn status_page_shows_phases_runs_gates_and_links_to_reports() {
        let (_dir, store, runs) = store_with_runs();
        let view = StatusView::collect(&config(), &store, &[], 20).expect("collect");
        let gates = [json!({"name": "go-live", "verdict": "NO-GO", "reasons": ["phase pre-migration: <NO-GO>"],
                            "max_age": "4h"})];
        let html = status_page(&view, &gates, NOW);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script"), "nothing executable, and the hostile change ref is escaped");
        assert!(html.contains("<tr class=\"phase\" data-phase=\"pre-migration\" data-verdict=\"NO-GO\">"));
        assert!(html.contains("<tr class=\"phase\" data-phase=\"post-migration\" data-verdict=\"NO-GO\">"));
        assert!(html.contains(&format!("<li class=\"running\" data-run=\"{}\">", runs[3].id)));
        assert_eq!(html.matches("<tr class=\"run\"").count(), 4);
        for r in &runs {
            assert!(html.contains(&format!("<a href=\"/api/v1/runs/{id}/report?format=html\">{id}</a>", id = r.id)));
        }
        assert!(html.contains("<tr class=\"gate\" data-gate=\"go-live\">"));
        assert!(html.contains("<span class=\"badge v-nogo\">NO-GO</span>"));
        assert!(html.contains("phase pre-migration: &lt;NO-GO&gt;"));
        assert!(html.contains("max_age: 4h"));
        assert!(html.contains("Leeds &lt;GP&gt; &amp; Co"));
        let empty = status_page(&view, &[], NOW);
        assert!(empty.contains("No gate to show."));
        assert_eq!(report_url("a b/../c"), "/api/v1/runs/a%20b%2F..%2Fc/report?format=html");
    }
}
