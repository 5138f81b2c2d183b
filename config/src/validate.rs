//! Raw → model: every value parsed and range-checked, cross-field rules applied, defaults filled in.
//!
//! Nothing stops at the first problem: each rule records its problem in a `Report` and validation carries on
//! with the next key, so the operator sees every mistake in one run. Rules across checks (`depends_on`: names,
//! phases, cycles) run after every check has been read, on what each check's table holds. Phases are read
//! first (their `baseline`s once every phase is known), then checks (a check's `compare` needs one of its phases
//! to have a baseline), then gates. A problem about a value points at the value; one about a key (unknown, not
//! for this kind) points at the key; a missing key points at the table header (`[[check]]`, `[api]`,
//! `[gate.NAME]`).
//!
//! Paths in `[api]` (`tls_cert`, `tls_key`, `client_ca`), a check's `client_cert` and `client_key`, and
//! `[evidence] signing_key` are resolved against the config file's directory when relative (a check's `ca_file`
//! is kept as written, as in v1). Whether those files exist and hold PEM is not checked here (this crate does no
//! I/O beyond reading the config): the agent reports an unreadable file, with its path, when it starts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::error::{Problems, Report};
use crate::model::{
    Api, ApiTls, COMPARED_PHASES, Check, CheckSpec, Compare, Config, DEFAULT_BASELINE, DEFAULT_BODY_LIMIT,
    DEFAULT_CONCURRENCY, DEFAULT_GATE_MAX_AGE, DEFAULT_ICMP_COUNT, DEFAULT_ICMP_INTERVAL, DEFAULT_ICMP_SIZE,
    DEFAULT_KEEP_RUNS, DEFAULT_MAX_REDIRECTS, DEFAULT_MTU_MIN_V4, DEFAULT_MTU_MIN_V6, DEFAULT_RETRY_INTERVAL,
    DEFAULT_TIMEOUT, Defaults, DnsCheck, DnsExpect, EgressCheck, EgressExpect, Evidence, Gate, HttpCheck, HttpExpect,
    IcmpCheck, IcmpExpect, Increase, IpMode, MetricsListener, MtuCheck, MtuExpect, Phase, Proxy, Role, STANDARD_PHASES,
    Site, Storage, TcpCheck, TcpExpect, TlsCheck, TlsExpect, Token,
};
use crate::raw::{
    self, CHECK_KEYS, COMPARE_KEYS, COMPARED_KINDS, EXPECT_KEYS, KINDS, RawApi, RawCheck, RawCompare, RawConfig,
    RawEvidence, RawExpect, RawGate, RawMetrics, RawPhase, RawStatus, RawStorage, RawToken, TableMeta,
};

/// DNS record types a dns check may ask for.
pub const RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "PTR", "SRV"];
/// DNS response codes an expectation may name.
pub const RCODES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
    "NOTZONE",
];

/// Longest timeout accepted (a sanity bound: a check that needs longer is not a go/no-go check).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Largest `concurrency`.
pub const MAX_CONCURRENCY: i64 = 4096;
/// Largest ICMP or TCP `count`.
pub const MAX_COUNT: i64 = 10_000;
/// Smallest ICMP `interval`.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// Largest ICMP payload.
pub const MAX_ICMP_SIZE: i64 = 65_000;
/// Largest HTTP `body_limit` (1 GiB).
pub const MAX_BODY_LIMIT: i64 = 1024 * 1024 * 1024;
/// Shortest phase `every`.
pub const MIN_EVERY: Duration = Duration::from_secs(10);
/// Longest phase `every` (7 days).
pub const MAX_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Largest `[storage] keep_runs`.
pub const MAX_KEEP_RUNS: i64 = 100_000;
/// Largest `retries`.
pub const MAX_RETRIES: i64 = 100;
/// Shortest `retry_interval`.
pub const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(10);
/// Longest `retry_interval`.
pub const MAX_RETRY_INTERVAL: Duration = Duration::from_secs(600);
/// Largest `max_redirects`.
pub const MAX_REDIRECTS: i64 = 50;
/// Shortest phase `settle`.
pub const MIN_SETTLE: Duration = Duration::from_secs(1);
/// Longest phase `settle`.
pub const MAX_SETTLE: Duration = Duration::from_secs(3600);
/// Smallest mtu `min`, `max` and `path_mtu_min`: the IPv4 minimum MTU (RFC 791).
pub const MIN_MTU: i64 = 68;
/// Largest mtu `min`, `max` and `path_mtu_min`.
pub const MAX_MTU: i64 = 65_535;
/// Shortest gate `max_age`.
pub const MIN_GATE_MAX_AGE: Duration = Duration::from_secs(60);
/// Longest gate `max_age` (30 days).
pub const MAX_GATE_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Largest `compare.rtt_p95_max_increase` as a percentage.
pub const MAX_INCREASE_PERCENT: f64 = 1000.0;

/// The hint given with any `sha256` that is not a hex SHA-256 digest.
const SHA256_HINT: &str = "store the SHA-256 of the token, not the token: printf %s \"$TOKEN\" | sha256sum";

const DURATION_HINT: &str = "write a duration such as \"200ms\", \"2s\" or \"1m30s\"";

/// Validate `text`, the contents of `path` (used in messages and kept in [`Config::path`]).
pub fn validate(text: &str, path: &Path) -> Result<Config, Problems> {
    let mut report = Report::new(path, text);
    let config = raw::load(text, &mut report).map(|raw| build(raw, path, &mut report));
    report.finish(config)
}

/// True for a check or phase name: `^[a-z0-9][a-z0-9_-]*$`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn build(raw: RawConfig, path: &Path, report: &mut Report<'_>) -> Config {
    let site = raw.site.map(|s| site(s.into_inner(), report)).unwrap_or_default();
    let defaults = raw.defaults.map(|d| defaults(d.into_inner(), report)).unwrap_or_default();

    let (phases, compared) = phases(raw.phase, report);
    // Relative paths in the file are relative to the file's directory, not to the agent's working directory.
    let dir = path.parent().unwrap_or(Path::new(""));

    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut checks = Vec::with_capacity(raw.check.len());
    let mut nodes = Vec::with_capacity(raw.check.len());
    for check in raw.check {
        let span = check.span();
        let line = report.position(span.start).0;
        if let Some(name) = &check.get_ref().name {
            let value = name.get_ref();
            if let Some(first) = names.get(value) {
                report.at(
                    name.span(),
                    format!("{}.name", check.get_ref().meta.path),
                    format!(
                        "duplicate check name {value:?}, first used by the check at line {first}; names must be unique"
                    ),
                );
            } else {
                names.insert(value.clone(), line);
            }
        }
        nodes.push(DependencyNode::of(check.get_ref()));
        let mut validator =
            CheckValidator { report: &mut *report, defaults: &defaults, phases: &phases, compared: &compared, dir };
        if let Some(check) = validator.check(check.into_inner(), span, line) {
            checks.push(check);
        }
    }
    dependencies(&nodes, &phases, report);

    let (api_listen, api) = raw.api.map(|a| api(a, dir, report)).unwrap_or_default();
    let tokens = tokens(raw.token, report);
    let storage = raw.storage.map(|s| storage(s.into_inner(), report)).unwrap_or_default();
    let metrics = raw.metrics.and_then(|m| metrics(m, api_listen, report));
    let gates = gates(raw.gate, &phases, report);
    let evidence = raw.evidence.map(|e| evidence(e.into_inner(), dir, report)).unwrap_or_default();

    Config { path: path.to_path_buf(), site, defaults, phases, checks, api, tokens, storage, metrics, gates, evidence }
}

/// The standard phases and the declared ones, by name, and the names of the phases compared with a baseline:
/// those with a [`Phase::baseline`], and those whose `baseline` was rejected (already reported), so that a
/// check's `compare` gets no second, misleading problem.
fn phases(
    raw: BTreeMap<Spanned<String>, Spanned<RawPhase>>,
    report: &mut Report<'_>,
) -> (BTreeMap<String, Phase>, BTreeSet<String>) {
    let default_baseline = |name: &str| COMPARED_PHASES.contains(&name).then(|| DEFAULT_BASELINE.to_owned());
    let mut phases: BTreeMap<String, Phase> = STANDARD_PHASES
        .iter()
        .map(|&name| {
            let phase = Phase {
                name: name.to_owned(),
                description: None,
                standard: true,
                every: None,
                settle: None,
                baseline: default_baseline(name),
            };
            (name.to_owned(), phase)
        })
        .collect();
    let mut compared = BTreeSet::new();
    // Checked once every phase is known: a baseline may name a phase declared further down.
    let mut baselines: Vec<(String, Spanned<String>)> = Vec::new();
    for (name, phase) in raw {
        let name_span = name.span();
        let name = name.into_inner();
        if !is_valid_name(&name) {
            report.at(
                name_span,
                format!("phase.{name}"),
                "phase names use lowercase letters, digits, '-' and '_', starting with a letter or digit",
            );
        }
        let phase = phase.into_inner();
        let every = phase.every.and_then(|e| every(&e, &format!("phase.{name}.every"), report));
        let settle = phase.settle.and_then(|s| settle(&s, &format!("phase.{name}.settle"), report));
        let description = phase.description.map(Spanned::into_inner);
        let standard = STANDARD_PHASES.contains(&name.as_str());
        let baseline = match phase.baseline {
            Some(b) => {
                baselines.push((name.clone(), b));
                None
            }
            None if phase.meta.was_rejected("baseline") => {
                compared.insert(name.clone());
                None
            }
            None => default_baseline(&name),
        };
        phases.insert(name.clone(), Phase { name, description, standard, every, settle, baseline });
    }
    for (name, baseline) in baselines {
        let key = format!("phase.{name}.baseline");
        let wanted = baseline.get_ref();
        if *wanted == name {
            let other = if name == DEFAULT_BASELINE { "commissioning" } else { DEFAULT_BASELINE };
            report.at(
                baseline.span(),
                key,
                format!(
                    "a phase cannot be its own baseline; name the phase whose runs {name:?} is compared with, such \
                     as {other:?}, or remove baseline"
                ),
            );
            compared.insert(name);
        } else if !phases.contains_key(wanted) {
            report.at(baseline.span(), key, unknown_phase(wanted, &phases));
            compared.insert(name);
        } else if let Some(phase) = phases.get_mut(&name) {
            phase.baseline = Some(baseline.into_inner());
        }
    }
    compared.extend(phases.values().filter(|p| p.baseline.is_some()).map(|p| p.name.clone()));
    (phases, compared)
}

/// "unknown phase "x"; did you mean "y"?; standard phases: …; declared: …; declare new phases as [phase.x]".
fn unknown_phase(name: &str, phases: &BTreeMap<String, Phase>) -> String {
    let mut message = format!("unknown phase {name:?}");
    if let Some(best) = closest(name, phases.keys().map(String::as_str)) {
        message.push_str(&format!("; did you mean {best:?}?"));
    }
    let declared: Vec<&str> = phases.values().filter(|p| !p.standard).map(|p| p.name.as_str()).collect();
    let declared = if declared.is_empty() { "none".to_owned() } else { declared.join(", ") };
    message.push_str(&format!(
        "; standard phases: {}; declared: {declared}; declare new phases as [phase.{name}]",
        STANDARD_PHASES.join(", ")
    ));
    message
}

/// `[gate.NAME]` tables, by name; `phases` are every known phase.
fn gates(
    raw: BTreeMap<Spanned<String>, Spanned<RawGate>>,
    phases: &BTreeMap<String, Phase>,
    report: &mut Report<'_>,
) -> BTreeMap<String, Gate> {
    let mut out = BTreeMap::new();
    for (name, gate) in raw {
        let name_span = name.span();
        let name = name.into_inner();
        let header = gate.span().start..gate.span().start;
        let gate = gate.into_inner();
        let meta = &gate.meta;
        let p = |key: &str| format!("{}.{key}", meta.path);
        let valid_name = is_valid_name(&name);
        if !valid_name {
            report.at(
                name_span,
                meta.path.clone(),
                format!(
                    "{name:?} is not a valid gate name; use lowercase letters, digits, '-' and '_', starting with a \
                     letter or digit, such as \"go-live\""
                ),
            );
        }
        let requires = match &gate.requires {
            Some(list) if list.get_ref().is_empty() => {
                report.at(
                    list.span(),
                    p("requires"),
                    "must name at least one phase, such as [\"commissioning\", \"pre-migration\"]",
                );
                None
            }
            Some(list) => {
                let before = report.count();
                let mut out: Vec<String> = Vec::with_capacity(list.get_ref().len());
                for phase in list.get_ref() {
                    let wanted = phase.get_ref();
                    if out.contains(wanted) {
                        report.at(phase.span(), p("requires"), format!("phase {wanted:?} is listed twice"));
                    } else if !phases.contains_key(wanted) {
                        report.at(phase.span(), p("requires"), unknown_phase(wanted, phases));
                    }
                    out.push(wanted.clone());
                }
                (report.count() == before).then_some(out)
            }
            None => {
                if !meta.was_rejected("requires") {
                    report.at(
                        header,
                        meta.path.clone(),
                        "missing `requires`; add requires = [\"pre-migration\"] naming the phases whose latest runs \
                         must be GO",
                    );
                }
                None
            }
        };
        let max_age = match &gate.max_age {
            Some(age) => duration(age, &p("max_age"), report).and_then(|d| {
                if d < MIN_GATE_MAX_AGE {
                    report.at(
                        age.span(),
                        p("max_age"),
                        format!("{:?} is too short; max_age is at least 1m", age.get_ref()),
                    );
                    None
                } else if d > MAX_GATE_MAX_AGE {
                    report.at(
                        age.span(),
                        p("max_age"),
                        format!("{:?} is too long; max_age may be at most 30d", age.get_ref()),
                    );
                    None
                } else {
                    Some(d)
                }
            }),
            None => Some(DEFAULT_GATE_MAX_AGE),
        };
        if let (true, Some(requires), Some(max_age)) = (valid_name, requires, max_age) {
            let description = gate.description.map(Spanned::into_inner);
            out.insert(name.clone(), Gate { name, description, requires, max_age });
        }
    }
    out
}

/// `[evidence]`.
fn evidence(raw: RawEvidence, dir: &Path, report: &mut Report<'_>) -> Evidence {
    let signing_key = pem_path(
        &raw.signing_key,
        "evidence.signing_key",
        "the PEM (PKCS#8) Ed25519 private key that signs the journal, made by `gonogo keygen`",
        dir,
        report,
    );
    Evidence { signing_key: signing_key.flatten() }
}

/// What the dependency rules need of one `[[check]]`, taken before it is validated (a check with other problems
/// still has a name and phases that its dependants refer to).
struct DependencyNode {
    /// The name, when valid.
    name: Option<String>,
    /// Key path prefix, e.g. `check "app-tls"`.
    path: String,
    /// The phases as written; `None` when missing or rejected (already reported).
    phases: Option<Vec<String>>,
    /// The `depends_on` entries as written.
    depends_on: Vec<Spanned<String>>,
}

impl DependencyNode {
    fn of(raw: &RawCheck) -> Self {
        DependencyNode {
            name: raw.name.as_ref().map(|n| n.get_ref().clone()).filter(|n| is_valid_name(n)),
            path: raw.meta.path.clone(),
            phases: raw.phases.as_ref().map(|p| p.get_ref().iter().map(|s| s.get_ref().clone()).collect()),
            depends_on: raw.depends_on.as_ref().map(|d| d.get_ref().clone()).unwrap_or_default(),
        }
    }

    /// `"name"`, or the key path when the check has no valid name.
    fn display(&self) -> String {
        self.name.as_ref().map_or_else(|| self.path.clone(), |n| format!("{n:?}"))
    }
}

/// `depends_on` across checks: each entry names another existing check (not the check itself, not twice) that
/// runs in every phase the dependant runs in, and the dependencies form no cycle.
fn dependencies(nodes: &[DependencyNode], phases: &BTreeMap<String, Phase>, report: &mut Report<'_>) {
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        if let Some(name) = &node.name {
            index.entry(name.as_str()).or_insert(i);
        }
    }
    let all_names: Vec<&str> = nodes.iter().filter_map(|n| n.name.as_deref()).collect();
    // edges[i]: (dependency index, the entry naming it), file order, without self-references and repeats.
    let mut edges: Vec<Vec<(usize, &Spanned<String>)>> = vec![Vec::new(); nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        let key = format!("{}.depends_on", node.path);
        let mut seen = BTreeSet::new();
        for entry in &node.depends_on {
            let wanted = entry.get_ref().as_str();
            if node.name.as_deref() == Some(wanted) {
                report.at(
                    entry.span(),
                    &key,
                    format!("a check cannot depend on itself; remove {wanted:?} from depends_on"),
                );
                continue;
            }
            if !seen.insert(wanted) {
                report.at(entry.span(), &key, format!("check {wanted:?} is listed twice"));
                continue;
            }
            let Some(&j) = index.get(wanted) else {
                let mut message = format!("no check named {wanted:?}");
                if let Some(best) = closest(wanted, all_names.iter().copied()) {
                    message.push_str(&format!("; did you mean {best:?}?"));
                }
                let list = if all_names.is_empty() { "none".to_owned() } else { all_names.join(", ") };
                message.push_str(&format!("; checks: {list}"));
                report.at(entry.span(), &key, message);
                continue;
            };
            edges[i].push((j, entry));
            // Only phases that exist: an unknown phase is reported once, by the phases rule.
            if let (Some(own), Some(theirs)) = (&node.phases, &nodes[j].phases) {
                let mut reported = BTreeSet::new();
                for phase in own.iter().filter(|p| phases.contains_key(*p) && !theirs.contains(p)) {
                    if !reported.insert(phase) {
                        continue;
                    }
                    report.at(
                        entry.span(),
                        &key,
                        format!(
                            "check {} runs in phase {phase:?} but its dependency {wanted:?} does not; add {phase:?} \
                             to the phases of {wanted:?}, or remove {wanted:?} from depends_on",
                            node.display()
                        ),
                    );
                }
            }
        }
    }
    cycles(nodes, &edges, report);
}

/// Report each dependency cycle once, at the `depends_on` entry that closes it (depth-first, in file order).
fn cycles(nodes: &[DependencyNode], edges: &[Vec<(usize, &Spanned<String>)>], report: &mut Report<'_>) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Active,
        Done,
    }
    struct Walk<'n, 'e, 'r, 'a> {
        nodes: &'n [DependencyNode],
        edges: &'e [Vec<(usize, &'e Spanned<String>)>],
        state: Vec<State>,
        stack: Vec<usize>,
        report: &'r mut Report<'a>,
    }
    impl Walk<'_, '_, '_, '_> {
        fn visit(&mut self, i: usize) {
            self.state[i] = State::Active;
            self.stack.push(i);
            for &(j, entry) in &self.edges[i] {
                match self.state[j] {
                    State::New => self.visit(j),
                    State::Active => {
                        let from = self.stack.iter().position(|&k| k == j).unwrap_or(0);
                        let mut names: Vec<String> =
                            self.stack[from..].iter().map(|&k| self.nodes[k].display()).collect();
                        names.push(self.nodes[j].display());
                        self.report.at(
                            entry.span(),
                            format!("{}.depends_on", self.nodes[i].path),
                            format!(
                                "dependency cycle: {} (each waits for the next, so none would ever run); remove one \
                                 of these depends_on entries",
                                names.join(" → ")
                            ),
                        );
                    }
                    State::Done => {}
                }
            }
            self.stack.pop();
            self.state[i] = State::Done;
        }
    }
    let mut walk = Walk { nodes, edges, state: vec![State::New; nodes.len()], stack: Vec::new(), report };
    for i in 0..nodes.len() {
        if walk.state[i] == State::New {
            walk.visit(i);
        }
    }
}

/// The candidate closest to `name` by edit distance, when close enough to be a likely typo; a difference of
/// case only counts least.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .map(|c| (typo_distance(&lower, &c.to_lowercase()), typo_distance(name, c), c))
        .filter(|&(_, d, c)| d <= 2.max(c.len() / 4))
        .min_by_key(|&(folded, d, _)| (folded, d))
        .map(|(_, _, c)| c)
}

/// Edit distance counting a swap of two neighbouring characters as one edit (optimal string alignment), so
/// "app-tsl" is closer to "app-tls" than to "app-tcp".
fn typo_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// A phase's `settle`: a duration from [`MIN_SETTLE`] to [`MAX_SETTLE`].
fn settle(value: &Spanned<String>, key: &str, report: &mut Report<'_>) -> Option<Duration> {
    let d = duration(value, key, report)?;
    if d < MIN_SETTLE {
        report.at(
            value.span(),
            key,
            format!("{:?} is too short; settle is at least 1s (leave it out to start at once)", value.get_ref()),
        );
        None
    } else if d > MAX_SETTLE {
        report.at(value.span(), key, format!("{:?} is too long; settle may be at most 1h", value.get_ref()));
        None
    } else {
        Some(d)
    }
}

/// A phase's `every`: a duration from [`MIN_EVERY`] to [`MAX_EVERY`].
fn every(value: &Spanned<String>, key: &str, report: &mut Report<'_>) -> Option<Duration> {
    let d = duration(value, key, report)?;
    if d < MIN_EVERY {
        report.at(value.span(), key, format!("{:?} is too short; a phase may run at most every 10s", value.get_ref()));
        None
    } else if d > MAX_EVERY {
        report.at(
            value.span(),
            key,
            format!(
                "{:?} is too long; every may be at most 7d (leave it out to run the phase only on demand)",
                value.get_ref()
            ),
        );
        None
    } else {
        Some(d)
    }
}

/// `[api]`: its listen address (when valid, for comparing with `[metrics]`) and the whole table when valid.
fn api(raw: Spanned<RawApi>, dir: &Path, report: &mut Report<'_>) -> (Option<SocketAddr>, Option<Api>) {
    let before = report.count();
    let header = raw.span().start..raw.span().start;
    let raw = raw.into_inner();
    let meta = &raw.meta;
    let listen = match &raw.listen {
        Some(l) => listen_addr(l.get_ref().trim()).map_err(|e| report.at(l.span(), "api.listen", e)).ok(),
        None => {
            if !meta.was_rejected("listen") {
                report.at(
                    header.clone(),
                    "api",
                    "missing `listen`; add listen = \"127.0.0.1:9443\", the address and port the API listens on",
                );
            }
            None
        }
    };
    let cert = pem_path(&raw.tls_cert, "api.tls_cert", "the PEM certificate (chain) of the API", dir, report);
    let key = pem_path(&raw.tls_key, "api.tls_key", "the PEM private key of tls_cert", dir, report);
    let client_ca = pem_path(
        &raw.client_ca,
        "api.client_ca",
        "a PEM file of the CA certificates clients must present",
        dir,
        report,
    );
    let given = |key: &str| meta.key_span(key).is_some() || meta.was_rejected(key);
    let (has_cert, has_key) = (given("tls_cert"), given("tls_key"));
    if has_cert && !has_key {
        report.at(
            header.clone(),
            "api",
            "missing `tls_key`, which tls_cert needs; add tls_key = \"/etc/gonogo/tls/agent.key\" (the certificate's \
             PEM private key), or remove tls_cert to serve plain HTTP",
        );
    } else if has_key && !has_cert {
        report.at(
            header.clone(),
            "api",
            "missing `tls_cert`, which tls_key needs; add tls_cert = \"/etc/gonogo/tls/agent.crt\" (the PEM \
             certificate for the key), or remove tls_key to serve plain HTTP",
        );
    } else if !has_cert && !has_key {
        if let Some(span) = meta.key_span("client_ca") {
            report.at(
                span,
                "api.client_ca",
                "client certificates need TLS: set tls_cert and tls_key too, or remove client_ca",
            );
        }
        let insecure = raw.insecure.as_ref().is_some_and(|i| *i.get_ref()) || meta.was_rejected("insecure");
        if let (Some(addr), Some(l)) = (listen, &raw.listen)
            && !insecure
            && !addr.ip().to_canonical().is_loopback()
        {
            report.at(
                l.span(),
                "api.listen",
                format!(
                    "plain HTTP on non-loopback address {} would expose the API unencrypted: set tls_cert and \
                     tls_key, or insecure = true to accept that",
                    addr.ip()
                ),
            );
        }
    }
    if report.count() > before {
        return (listen, None);
    }
    let tls = match (cert, key, client_ca) {
        (Some(Some(cert)), Some(Some(key)), Some(client_ca)) => Some(ApiTls { cert, key, client_ca }),
        _ => None,
    };
    let insecure = raw.insecure.as_ref().is_some_and(|i| *i.get_ref());
    (listen, listen.map(|listen| Api { listen, tls, insecure }))
}

/// A PEM file path: not empty; relative paths resolved against `dir`. `what` completes "give the path of …".
fn pem_path(
    value: &Option<Spanned<String>>,
    key: &str,
    what: &str,
    dir: &Path,
    report: &mut Report<'_>,
) -> Option<Option<PathBuf>> {
    match value {
        Some(v) if v.get_ref().trim().is_empty() => {
            report.at(v.span(), key, format!("must not be empty; give the path of {what}"));
            None
        }
        Some(v) => Some(Some(dir.join(v.get_ref()))),
        None => Some(None),
    }
}

/// `[[token]]` tables, in file order; names and hashes must be unique.
fn tokens(raw: Vec<Spanned<RawToken>>, report: &mut Report<'_>) -> Vec<Token> {
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut hashes: BTreeMap<[u8; 32], usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for token in raw {
        let span = token.span();
        let line = report.position(span.start).0;
        let token = token.into_inner();
        let path = token.meta.path.clone();
        if let Some(name) = &token.name {
            let value = name.get_ref();
            if let Some(first) = names.get(value) {
                report.at(
                    name.span(),
                    format!("{path}.name"),
                    format!(
                        "duplicate token name {value:?}, first used by the token at line {first}; names must be unique"
                    ),
                );
            } else {
                names.insert(value.clone(), line);
            }
        }
        // One secret with two role sets: which applies would depend on lookup order. (A malformed hash is
        // reported by `token`.)
        if let Some(hash) = &token.sha256
            && let Ok(digest) = sha256_hex(hash.get_ref())
        {
            if let Some(first) = hashes.get(&digest) {
                report.at(
                    hash.span(),
                    format!("{path}.sha256"),
                    format!(
                        "same hash as the token at line {first}; give each token its own secret (and one token \
                         the roles it needs)"
                    ),
                );
            } else {
                hashes.insert(digest, line);
            }
        }
        out.extend(self::token(token, span.start..span.start, report));
    }
    out
}

/// The `name` of a `[[check]]` or `[[token]]` (`what`), checked against the name rule; a missing one is reported
/// at the table's `header` unless its value was already rejected.
fn table_name(
    name: Option<&Spanned<String>>,
    what: &str,
    example: &str,
    meta: &TableMeta,
    header: &Range<usize>,
    report: &mut Report<'_>,
) -> Option<String> {
    match name {
        Some(name) if is_valid_name(name.get_ref()) => Some(name.get_ref().clone()),
        Some(name) => {
            report.at(
                name.span(),
                format!("{}.name", meta.path),
                format!(
                    "{:?} is not a valid {what} name; use lowercase letters, digits, '-' and '_', starting with a \
                     letter or digit, such as \"{example}\"",
                    name.get_ref()
                ),
            );
            None
        }
        None => {
            if !meta.was_rejected("name") {
                report.at(
                    header.clone(),
                    meta.path.clone(),
                    format!("missing `name`; add name = \"…\" (unique, such as \"{example}\")"),
                );
            }
            None
        }
    }
}

/// One `[[token]]`; `header` is its header's position.
fn token(raw: RawToken, header: Range<usize>, report: &mut Report<'_>) -> Option<Token> {
    let meta = &raw.meta;
    let p = |key: &str| format!("{}.{key}", meta.path);
    let name = table_name(raw.name.as_ref(), "token", "cnsp-noc", meta, &header, report);
    let sha256 = match &raw.sha256 {
        // The value is never quoted back: it may be a clear-text token.
        Some(h) => sha256_hex(h.get_ref()).map_err(|e| report.at(h.span(), p("sha256"), e)).ok(),
        None => {
            if !meta.was_rejected("sha256") {
                report.at(
                    header.clone(),
                    meta.path.clone(),
                    "missing `sha256`; add sha256 = \"…\", the SHA-256 of the token in hex: printf %s \"$TOKEN\" | \
                     sha256sum",
                );
            }
            None
        }
    };
    let roles = match &raw.roles {
        Some(list) if list.get_ref().is_empty() => {
            report.at(list.span(), p("roles"), format!("must name at least one role: {}", role_list()));
            None
        }
        Some(list) => {
            let mut ok = true;
            let mut roles = Vec::with_capacity(list.get_ref().len());
            for item in list.get_ref() {
                match Role::from_name(item.get_ref()) {
                    Some(role) if roles.contains(&role) => {
                        report.at(item.span(), p("roles"), format!("role {:?} is listed twice", item.get_ref()));
                        ok = false;
                    }
                    Some(role) => roles.push(role),
                    None => {
                        report.at(
                            item.span(),
                            p("roles"),
                            format!("unknown role {:?}; roles: {}", item.get_ref(), role_list()),
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(roles)
        }
        None => {
            if !meta.was_rejected("roles") {
                report.at(
                    header,
                    meta.path.clone(),
                    format!("missing `roles`; add roles = [\"read\"] naming what the token may do: {}", role_list()),
                );
            }
            None
        }
    };
    Some(Token { name: name?, sha256: sha256?, roles: roles? })
}

/// "read, trigger, signoff".
fn role_list() -> String {
    Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

/// 64 hex digits (either case) → 32 bytes. The error never quotes the value.
fn sha256_hex(value: &str) -> Result<[u8; 32], String> {
    let length = value.chars().count();
    if length != 64 {
        return Err(format!(
            "not a SHA-256 hex digest: expected 64 hex characters, found {length} characters; {SHA256_HINT}"
        ));
    }
    if !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "not a SHA-256 hex digest: 64 characters, but not all hex digits (0-9, a-f); {SHA256_HINT}"
        ));
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(value.as_bytes().chunks_exact(2)) {
        let digit = |b: u8| char::from(b).to_digit(16).unwrap_or_default() as u8;
        *byte = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Ok(out)
}

fn storage(raw: RawStorage, report: &mut Report<'_>) -> Storage {
    let default = Storage::default();
    let state_dir = raw.state_dir.and_then(|d| {
        if Path::new(d.get_ref()).is_absolute() {
            Some(PathBuf::from(d.into_inner()))
        } else {
            report.at(
                d.span(),
                "storage.state_dir",
                format!(
                    "{:?} is not an absolute path; write the state directory's full path, such as \"/var/lib/gonogo\"",
                    d.get_ref()
                ),
            );
            None
        }
    });
    let keep_runs = raw
        .keep_runs
        .and_then(|k| int_in(&k, "storage.keep_runs", 1, MAX_KEEP_RUNS, " runs", report))
        .map_or(DEFAULT_KEEP_RUNS, |k| k as usize);
    Storage { state_dir: state_dir.unwrap_or(default.state_dir), keep_runs }
}

/// `[metrics]`; `api_listen` is the `[api]` listen address, when valid.
fn metrics(
    raw: Spanned<RawMetrics>,
    api_listen: Option<SocketAddr>,
    report: &mut Report<'_>,
) -> Option<MetricsListener> {
    let header = raw.span().start..raw.span().start;
    let raw = raw.into_inner();
    let Some(l) = &raw.listen else {
        if !raw.meta.was_rejected("listen") {
            report.at(
                header,
                "metrics",
                "missing `listen`; add listen = \"127.0.0.1:9144\", the address and port of the /metrics listener, \
                 or remove [metrics]",
            );
        }
        return None;
    };
    let listen = listen_addr(l.get_ref().trim()).map_err(|e| report.at(l.span(), "metrics.listen", e)).ok()?;
    if api_listen == Some(listen) && listen.port() != 0 {
        report.at(
            l.span(),
            "metrics.listen",
            format!(
                "{listen} is the [api] listen address too; give the metrics listener a port of its own, such as {}",
                SocketAddr::new(listen.ip(), 9144)
            ),
        );
        return None;
    }
    Some(MetricsListener { listen })
}

/// An address to listen on: `ip:port`, IPv6 as `[addr]:port`; port 0 picks a free port. No host names: nothing
/// is looked up.
fn listen_addr(value: &str) -> Result<SocketAddr, String> {
    const FORM: &str = "write \"address:port\" such as \"127.0.0.1:9443\" or \"0.0.0.0:9443\", IPv6 as \"[::1]:9443\"";
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bracketed = value.strip_prefix('[').and_then(|v| v.strip_suffix(']'));
    if let Ok(ip) = bracketed.unwrap_or(value).parse::<IpAddr>() {
        return if ip.is_ipv6() && bracketed.is_none() {
            Err(format!("{value:?}: put an IPv6 address in brackets and add a port; {FORM}"))
        } else {
            Err(format!("{value:?} has no port; {FORM}"))
        };
    }
    if let Some((host, port)) = value.rsplit_once(':') {
        let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if unbracketed.parse::<IpAddr>().is_ok() {
            return Err(format!("{port:?} is not a port; ports are 0 to 65535 (0 picks a free port); {FORM}"));
        }
        if is_dns_name(host) {
            return Err(format!(
                "{value:?} is a host name; listen on an IP address (\"0.0.0.0\" for every IPv4 address, \"[::]\" \
                 for every IPv6 address); {FORM}"
            ));
        }
    } else if is_dns_name(value) {
        return Err(format!("{value:?} is a host name without a port; listen on an IP address; {FORM}"));
    }
    Err(format!("{value:?} is not an address:port; {FORM}"))
}

fn site(raw: raw::RawSite, report: &mut Report<'_>) -> Site {
    let name = raw.name.and_then(|name| {
        if name.get_ref().trim().is_empty() {
            report.at(name.span(), "site.name", "must not be empty; give the site's name or leave the key out");
            None
        } else {
            Some(name.into_inner())
        }
    });
    let ods_code = raw.ods_code.and_then(|code| {
        let value = code.get_ref();
        if value.is_empty() || value.len() > 12 || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
            report.at(
                code.span(),
                "site.ods_code",
                format!(
                    "{value:?} is not an ODS code; write the organisation's code, letters and digits such as \"RXX\""
                ),
            );
            None
        } else {
            Some(value.to_ascii_uppercase())
        }
    });
    Site { name, ods_code }
}

fn defaults(raw: raw::RawDefaults, report: &mut Report<'_>) -> Defaults {
    let timeout = raw.timeout.and_then(|t| timeout(&t, "defaults.timeout", report)).unwrap_or(DEFAULT_TIMEOUT);
    let concurrency = raw
        .concurrency
        .and_then(|c| int_in(&c, "defaults.concurrency", 1, MAX_CONCURRENCY, "", report))
        .map_or(DEFAULT_CONCURRENCY, |c| c as usize);
    Defaults { timeout, concurrency }
}

/// A duration from a string: humantime syntax, more than zero.
fn duration(value: &Spanned<String>, key: &str, report: &mut Report<'_>) -> Option<Duration> {
    match humantime::parse_duration(value.get_ref().trim()) {
        Ok(d) if d.is_zero() => {
            report.at(value.span(), key, "must be more than zero");
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            report.at(value.span(), key, format!("{:?} is not a duration ({e}); {DURATION_HINT}", value.get_ref()));
            None
        }
    }
}

/// A timeout: a duration of at most [`MAX_TIMEOUT`].
fn timeout(value: &Spanned<String>, key: &str, report: &mut Report<'_>) -> Option<Duration> {
    let d = duration(value, key, report)?;
    if d > MAX_TIMEOUT {
        report.at(value.span(), key, format!("{:?} is too long; a timeout may be at most 1h", value.get_ref()));
        return None;
    }
    Some(d)
}

/// An integer in `min..=max`; `unit` (" bytes", …) is appended to the bounds in the message.
fn int_in(value: &Spanned<i64>, key: &str, min: i64, max: i64, unit: &str, report: &mut Report<'_>) -> Option<i64> {
    let v = *value.get_ref();
    if (min..=max).contains(&v) {
        Some(v)
    } else {
        report.at(value.span(), key, format!("{v} is out of range; must be from {min} to {max}{unit}"));
        None
    }
}

/// A DNS host name: dot-separated labels of letters, digits, '-' and '_' (not starting or ending with '-'),
/// 1–63 characters each, 253 in all; one trailing dot allowed; the last label not all digits.
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    let last = name.rsplit('.').next().unwrap_or_default();
    labels_ok && !last.chars().all(|c| c.is_ascii_digit())
}

/// A host: an IP address (IPv6 possibly in brackets; returned without) or a DNS name.
fn host(value: &str) -> Result<String, String> {
    let unbracketed = value.strip_prefix('[').and_then(|v| v.strip_suffix(']'));
    if let Some(inner) = unbracketed {
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(inner.to_owned()),
            Err(_) => Err(format!("{value:?} is not an IPv6 address in brackets")),
        };
    }
    if value.parse::<IpAddr>().is_ok() || is_dns_name(value) {
        Ok(value.to_owned())
    } else if value.contains(':') && value.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
        Err(format!("{value:?} has a port; give the host alone, such as \"10.0.0.1\" or \"gw.example.nhs.uk\""))
    } else {
        Err(format!("{value:?} is not an IP address or host name"))
    }
}

/// `host:port`, IPv6 as `[addr]:port`, port 1–65535.
fn host_port(value: &str) -> Result<(String, u16), String> {
    const FORM: &str = "write \"host:port\" such as \"app.example.nhs.uk:443\", IPv6 as \"[2001:db8::1]:443\"";
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(format!("{value:?} has no closing ']'; {FORM}"));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{addr:?} is not an IPv6 address; {FORM}"));
        }
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("{value:?} has no port; {FORM}"));
        };
        (addr.to_owned(), port)
    } else {
        let Some((host_part, port)) = value.rsplit_once(':') else {
            return Err(format!("{value:?} has no port; {FORM}"));
        };
        if host_part.contains(':') {
            return Err(format!("{value:?}: put an IPv6 address in brackets; {FORM}"));
        }
        (self::host(host_part).map_err(|e| format!("{e}; {FORM}"))?, port)
    };
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{port:?} is not a port; ports are 1 to 65535; {FORM}")),
        Ok(port) => Ok((host, port)),
    }
}

/// `ip:port` or a bare IP (port 53); IPv6 as `[addr]:port`, `[addr]` or bare.
fn dns_server(value: &str) -> Result<SocketAddr, String> {
    const FORM: &str =
        "write an IP address, optionally with a port: \"155.231.231.1\", \"155.231.231.1:53\" or \"[2001:db8::53]:53\"";
    if let Ok(addr) = value.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("{value:?}: port 0 is not a port; ports are 1 to 65535"));
        }
        return Ok(addr);
    }
    let bare = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let host_part = value.rsplit_once(':').map_or(value, |(h, _)| h);
    if is_dns_name(host_part) {
        Err(format!("{value:?} is a name; a DNS server must be given by IP address (it cannot be looked up); {FORM}"))
    } else {
        Err(format!("{value:?} is not an IP address or IP:port; {FORM}"))
    }
}

/// An HTTP token (method or header name), RFC 9110 `tchar`s.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// A header value `http::HeaderValue::from_str` accepts: visible ASCII, space and tab.
fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// The first line of a regex error that says what is wrong (its text spans several lines).
fn regex_error_text(error: &regex::Error) -> String {
    let text = error.to_string();
    let reason = text.lines().find_map(|l| l.trim().strip_prefix("error: ")).map(str::to_owned);
    reason.unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

struct CheckValidator<'r, 'a, 'c> {
    report: &'r mut Report<'a>,
    defaults: &'c Defaults,
    phases: &'c BTreeMap<String, Phase>,
    /// The phases compared with a baseline (see [`phases`]).
    compared: &'c BTreeSet<String>,
    /// The config file's directory: relative client certificate paths are resolved against it.
    dir: &'c Path,
}

/// The parts of a check's `expect` table besides its keys.
struct ExpectTable {
    keys: RawExpect,
    /// Where the table starts (for a missing required expectation); `None` when the check has no `expect`.
    span: Option<Range<usize>>,
}

impl CheckValidator<'_, '_, '_> {
    fn at(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.report.at(span, key, message);
    }

    /// A keyword of the closed set `allowed`, matched without regard to case and returned as the set writes it;
    /// `default` when the key is absent; `None` after reporting `unknown(value)` at `key` otherwise.
    fn keyword(
        &mut self,
        value: Option<&Spanned<String>>,
        key: String,
        allowed: &[&str],
        default: &str,
        unknown: impl FnOnce(&str) -> String,
    ) -> Option<String> {
        let Some(value) = value else { return Some(default.to_owned()) };
        match allowed.iter().find(|a| a.eq_ignore_ascii_case(value.get_ref())) {
            Some(a) => Some((*a).to_owned()),
            None => {
                self.at(value.span(), key, unknown(value.get_ref()));
                None
            }
        }
    }

    fn check(&mut self, mut raw: RawCheck, span: Range<usize>, line: usize) -> Option<Check> {
        let before = self.report.count();
        let meta = std::mem::take(&mut raw.meta);
        let p = |key: &str| format!("{}.{key}", meta.path);
        let header = span.start..span.start;

        let name = table_name(raw.name.take().as_ref(), "check", "gw-ping", &meta, &header, self.report);

        let kind = match raw.kind.take() {
            Some(kind) if KINDS.contains(&kind.get_ref().as_str()) => {
                KINDS.iter().copied().find(|&k| k == kind.get_ref())
            }
            Some(kind) => {
                self.at(
                    kind.span(),
                    p("kind"),
                    format!("unknown kind {:?}; kinds: {}", kind.get_ref(), KINDS.join(", ")),
                );
                None
            }
            None => {
                if !meta.was_rejected("kind") {
                    self.at(
                        header.clone(),
                        meta.path.clone(),
                        format!("missing `kind`; add kind = one of {}", quoted_list(&KINDS)),
                    );
                }
                None
            }
        };

        let phases = self.phases(raw.phases.take(), &meta, &header);
        let required = raw.required.take().is_none_or(Spanned::into_inner);
        let timeout = match raw.timeout.take() {
            Some(t) => timeout(&t, &p("timeout"), self.report),
            None => Some(self.defaults.timeout),
        };
        let expect_failure = raw.expect_failure.take().is_some_and(Spanned::into_inner);
        let block_preexisting = raw.block_preexisting.take().is_some_and(Spanned::into_inner);
        if block_preexisting && let Some(phases) = &phases {
            let lead = format!("{} has block_preexisting = true but", meta.path);
            self.needs_baseline(phases, &meta, "block_preexisting", &lead);
        }
        let compare = raw.compare.take();
        let (retries, retry_interval) = self.retries(&mut raw, &meta);
        // Checked across checks by `dependencies` (names, phases, cycles); here only the values are taken.
        let depends_on = raw
            .depends_on
            .take()
            .map_or_else(Vec::new, |d| d.into_inner().into_iter().map(Spanned::into_inner).collect::<Vec<_>>());
        let applies =
            |key: &str| kind.is_none_or(|kind| CHECK_KEYS.iter().any(|k| k.name == key && k.applies_to(kind)));
        // A key that does not apply to the kind is reported by `applicability`, not also parsed.
        let ip = match raw.ip.take() {
            Some(ip) if applies("ip") => self.ip_mode(&ip, &meta),
            _ => Some(None),
        };
        let source = match raw.source.take() {
            Some(s) if applies("source") => source_addr(s.get_ref().trim())
                .map(|a| Some((a, s.span())))
                .map_err(|e| self.at(s.span(), p("source"), e))
                .ok(),
            _ => Some(None),
        };
        if let (Some(Some(ip)), Some(Some((addr, span)))) = (&ip, &source) {
            self.source_matches_ip(ip, *addr, span.clone(), &meta);
        }

        let compare = match (kind, compare) {
            (Some(kind), Some(c)) if COMPARED_KINDS.contains(&kind) => {
                self.compare(c.into_inner(), kind, &phases, &meta)
            }
            _ => Some(Compare::default()),
        };
        let spec = kind.and_then(|kind| {
            self.applicability(&meta, CHECK_KEYS, kind, "");
            let expect = match raw.expect.take() {
                Some(e) => ExpectTable { span: Some(e.span()), keys: e.into_inner() },
                None => ExpectTable { span: None, keys: RawExpect::default() },
            };
            if !expect.keys.meta.path.is_empty() {
                self.applicability(&expect.keys.meta, EXPECT_KEYS, kind, "expect.");
            }
            match kind {
                "icmp" => self.icmp(raw, expect.keys, &meta, &header),
                "tcp" => self.tcp(raw, expect.keys, &meta, &header),
                "dns" => self.dns(raw, expect.keys, &meta, &header),
                "tls" => self.tls(raw, expect.keys, &meta, &header),
                "http" => self.http(raw, expect.keys, &meta, &header),
                "mtu" => self.mtu(raw, expect.keys, &meta, &header),
                _ => self.egress(raw, expect, &meta, &header),
            }
        });

        if self.report.count() > before {
            return None;
        }
        Some(Check {
            name: name?,
            phases: phases?,
            required,
            timeout: timeout?,
            expect_failure,
            retries: retries?,
            retry_interval: retry_interval?,
            depends_on,
            ip: ip?.map_or(IpMode::Any, |(mode, _)| mode),
            source: source?.map(|(addr, _)| addr),
            line,
            spec: spec?,
            compare: compare?,
            block_preexisting,
        })
    }

    /// A check's `compare` table for `kind` (one of [`COMPARED_KINDS`]): keys of other kinds are reported, the
    /// values of the kind's keys checked; tolerances need a phase compared with a baseline.
    fn compare(
        &mut self,
        raw: RawCompare,
        kind: &str,
        phases: &Option<Vec<String>>,
        check: &TableMeta,
    ) -> Option<Compare> {
        let meta = &raw.meta;
        self.applicability(meta, COMPARE_KEYS, kind, "compare.");
        let applies = |key: &str| COMPARE_KEYS.iter().any(|k| k.name == key && k.applies_to(kind));
        let p = |key: &str| format!("{}.{key}", meta.path);
        let rtt_p95_max_increase = match &raw.rtt_p95_max_increase {
            Some(v) if applies("rtt_p95_max_increase") => {
                increase(v.get_ref()).map(Some).map_err(|e| self.at(v.span(), p("rtt_p95_max_increase"), e)).ok()
            }
            _ => Some(None),
        };
        let loss_max_increase = match &raw.loss_max_increase {
            Some(l) if applies("loss_max_increase") => {
                let v = *l.get_ref();
                if (0.0..=1.0).contains(&v) {
                    Some(Some(v))
                } else {
                    self.at(
                        l.span(),
                        p("loss_max_increase"),
                        format!(
                            "{v} is out of range; a rise of the loss ratio is from 0.0 (no more loss than the \
                             baseline) to 1.0"
                        ),
                    );
                    None
                }
            }
            _ => Some(None),
        };
        let flag =
            |value: &Option<Spanned<bool>>, key: &str| applies(key) && value.as_ref().is_some_and(|v| *v.get_ref());
        // Only when every key read is for this kind: a key of another kind is one mistake, reported once.
        let written = meta.keys.iter().any(|(key, _)| applies(key)) || meta.rejected.iter().any(|key| applies(key));
        let wrong_kind = meta.keys.iter().any(|(key, _)| !applies(key));
        if written
            && !wrong_kind
            && let Some(phases) = phases
        {
            self.needs_baseline(phases, check, "compare", &format!("{} has compare tolerances but", check.path));
        }
        Some(Compare {
            rtt_p95_max_increase: rtt_p95_max_increase?,
            loss_max_increase: loss_max_increase?,
            answers_unchanged: flag(&raw.answers_unchanged, "answers_unchanged"),
            cert_unchanged: flag(&raw.cert_unchanged, "cert_unchanged"),
            status_unchanged: flag(&raw.status_unchanged, "status_unchanged"),
        })
    }

    /// Report at `key` of the check (`check`'s meta) when none of `phases` is compared with a baseline; `lead`
    /// starts the message. Unknown phases (already reported) skip the rule.
    fn needs_baseline(&mut self, phases: &[String], check: &TableMeta, key: &str, lead: &str) {
        if phases.iter().any(|p| !self.phases.contains_key(p) || self.compared.contains(p)) {
            return;
        }
        let Some(span) = check.key_span(key) else { return };
        let first = phases.first().map_or("…", String::as_str);
        let example = if first == DEFAULT_BASELINE { "commissioning" } else { DEFAULT_BASELINE };
        self.at(
            span,
            format!("{}.{key}", check.path),
            format!(
                "{lead} none of its phases ({}) is compared with a baseline; set baseline under [phase.{first}] to \
                 the phase to compare with, such as baseline = {example:?}, or remove {key}",
                phases.join(", ")
            ),
        );
    }

    /// `retries` (0 to [`MAX_RETRIES`]) and `retry_interval` ([`MIN_RETRY_INTERVAL`] to [`MAX_RETRY_INTERVAL`],
    /// only with retries).
    fn retries(&mut self, raw: &mut RawCheck, meta: &TableMeta) -> (Option<u32>, Option<Duration>) {
        let p = |key: &str| format!("{}.{key}", meta.path);
        let retries = match raw.retries.take() {
            Some(r) => int_in(&r, &p("retries"), 0, MAX_RETRIES, " further attempts", self.report).map(|r| r as u32),
            None => Some(0),
        };
        let interval = match raw.retry_interval.take() {
            Some(i) => duration(&i, &p("retry_interval"), self.report).and_then(|d| {
                if d < MIN_RETRY_INTERVAL {
                    self.at(i.span(), p("retry_interval"), "must be at least 10ms");
                    None
                } else if d > MAX_RETRY_INTERVAL {
                    self.at(i.span(), p("retry_interval"), "must be at most 10m");
                    None
                } else {
                    if retries == Some(0) && !meta.was_rejected("retries") {
                        self.at(
                            meta.key_span("retry_interval").unwrap_or(i.span()),
                            p("retry_interval"),
                            "retry_interval has no effect without retries; add retries = 2 (further attempts after a \
                             failure), or remove retry_interval",
                        );
                    }
                    Some(d)
                }
            }),
            None => Some(DEFAULT_RETRY_INTERVAL),
        };
        (retries, interval)
    }

    /// `ip = "any" | "4" | "6" | "both" | "all"`, with the span of its value.
    fn ip_mode(&mut self, value: &Spanned<String>, meta: &TableMeta) -> Option<Option<(IpMode, Range<usize>)>> {
        match IpMode::from_name(&value.get_ref().trim().to_ascii_lowercase()) {
            Some(mode) => Some(Some((mode, value.span()))),
            None => {
                self.at(
                    value.span(),
                    format!("{}.ip", meta.path),
                    format!(
                        "unknown ip {:?}; write \"any\" (default: the first address found), \"4\" (IPv4 only), \"6\" \
                         (IPv6 only), \"both\" (IPv4 and IPv6, each must pass) or \"all\" (every address of the \
                         target)",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// `source` must be of the family `ip` asks for, and a single address cannot serve `both` or `all`.
    fn source_matches_ip(&mut self, ip: &(IpMode, Range<usize>), addr: IpAddr, span: Range<usize>, meta: &TableMeta) {
        let key = format!("{}.source", meta.path);
        let family = |a: IpAddr| if a.is_ipv4() { "4" } else { "6" };
        match ip.0 {
            IpMode::V4 if addr.is_ipv6() => self.at(
                span,
                key,
                format!(
                    "{addr} is an IPv6 address but ip = \"4\" sends over IPv4; give an IPv4 source address, or set \
                     ip = \"6\""
                ),
            ),
            IpMode::V6 if addr.is_ipv4() => self.at(
                span,
                key,
                format!(
                    "{addr} is an IPv4 address but ip = \"6\" sends over IPv6; give an IPv6 source address, or set \
                     ip = \"4\""
                ),
            ),
            IpMode::Both | IpMode::All => self.at(
                span,
                key,
                format!(
                    "one source address cannot send over both IPv4 and IPv6 (ip = \"{}\"); remove source, or set \
                     ip = \"{}\" to match {addr}",
                    ip.0.as_str(),
                    family(addr)
                ),
            ),
            _ => {}
        }
    }

    fn phases(
        &mut self,
        raw: Option<Spanned<Vec<Spanned<String>>>>,
        meta: &TableMeta,
        header: &Range<usize>,
    ) -> Option<Vec<String>> {
        let key = format!("{}.phases", meta.path);
        let Some(raw) = raw else {
            if !meta.was_rejected("phases") {
                self.at(
                    header.clone(),
                    meta.path.clone(),
                    "missing `phases`; add phases = [\"commissioning\", …] naming the phases the check runs in",
                );
            }
            return None;
        };
        let span = raw.span();
        let list = raw.into_inner();
        if list.is_empty() {
            self.at(span, key, "must name at least one phase, such as [\"commissioning\"]");
            return None;
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(list.len());
        for phase in list {
            let name = phase.get_ref();
            if !seen.insert(name.clone()) {
                self.at(phase.span(), key.clone(), format!("phase {name:?} is listed twice"));
            } else if !self.phases.contains_key(name) {
                self.at(phase.span(), key.clone(), unknown_phase(name, self.phases));
            }
            out.push(phase.into_inner());
        }
        Some(out)
    }

    /// Report each key of the table that does not apply to `kind`.
    fn applicability(&mut self, meta: &TableMeta, keys: &[raw::KeyInfo], kind: &str, prefix: &str) {
        for (name, span) in &meta.keys {
            let Some(info) = keys.iter().find(|k| k.name == name) else { continue };
            if !info.applies_to(kind) {
                let what = format!("{}keys", prefix.replace('.', " "));
                self.at(
                    span.clone(),
                    format!("{}.{name}", meta.path),
                    format!(
                        "`{prefix}{name}` does not apply to kind \"{kind}\"; {what} for {kind}: {}",
                        specific_keys(keys, kind)
                    ),
                );
            }
        }
    }

    /// The value of a required key, or a problem at the check header.
    fn required<'v>(
        &mut self,
        value: &'v Option<Spanned<String>>,
        key: &str,
        kind: &str,
        example: &str,
        meta: &TableMeta,
        header: &Range<usize>,
    ) -> Option<&'v Spanned<String>> {
        if value.is_none() && !meta.was_rejected(key) {
            self.at(
                header.clone(),
                meta.path.clone(),
                format!("missing `{key}`, which {} {kind} check needs; add {key} = {example}", article(kind)),
            );
        }
        value.as_ref()
    }

    fn duration(&mut self, value: &Option<Spanned<String>>, key: &str) -> Option<Option<Duration>> {
        match value {
            None => Some(None),
            Some(v) => duration(v, key, self.report).map(Some),
        }
    }

    /// An optional regular expression.
    fn regex(&mut self, value: &Option<Spanned<String>>, key: &str) -> Option<Option<regex::Regex>> {
        match value {
            Some(r) => match regex::Regex::new(r.get_ref()) {
                Ok(re) => Some(Some(re)),
                Err(e) => {
                    self.at(r.span(), key, format!("not a valid regular expression: {}", regex_error_text(&e)));
                    None
                }
            },
            None => Some(None),
        }
    }

    /// An optional whole number in `min..=max`, as `T`.
    fn int<T: TryFrom<i64>>(
        &mut self,
        value: &Option<Spanned<i64>>,
        key: &str,
        min: i64,
        max: i64,
        unit: &str,
    ) -> Option<Option<T>> {
        match value {
            Some(v) => int_in(v, key, min, max, unit, self.report).and_then(|v| T::try_from(v).ok()).map(Some),
            None => Some(None),
        }
    }

    fn icmp(&mut self, raw: RawCheck, expect: RawExpect, meta: &TableMeta, header: &Range<usize>) -> Option<CheckSpec> {
        let p = |key: &str| format!("{}.{key}", meta.path);
        let target = self.required(&raw.target, "target", "icmp", "\"10.0.0.1\"", meta, header).and_then(|t| {
            host(t.get_ref())
                .map_err(|e| {
                    self.at(t.span(), p("target"), format!("{e}; an icmp target is an IP address or host name"))
                })
                .ok()
        });
        let count = match &raw.count {
            Some(c) => int_in(c, &p("count"), 1, MAX_COUNT, "", self.report).map(|c| c as u32),
            None => Some(DEFAULT_ICMP_COUNT),
        };
        let interval = match &raw.interval {
            Some(i) => duration(i, &p("interval"), self.report).and_then(|d| {
                if d < MIN_INTERVAL {
                    self.at(i.span(), p("interval"), "must be at least 1ms");
                    None
                } else if d > MAX_TIMEOUT {
                    self.at(i.span(), p("interval"), "must be at most 1h");
                    None
                } else {
                    Some(d)
                }
            }),
            None => Some(DEFAULT_ICMP_INTERVAL),
        };
        let size = match &raw.size {
            Some(s) => int_in(s, &p("size"), 0, MAX_ICMP_SIZE, " bytes", self.report).map(|s| s as usize),
            None => Some(DEFAULT_ICMP_SIZE),
        };
        let dont_fragment = raw.dont_fragment.as_ref().is_some_and(|d| *d.get_ref());
        let ttl = self.int::<u8>(&raw.ttl, &p("ttl"), 1, 255, " hops");
        let fallback_tcp = match &raw.fallback_tcp {
            Some(f) => host_port(f.get_ref().trim())
                .map(Some)
                .map_err(|e| {
                    self.at(
                        f.span(),
                        p("fallback_tcp"),
                        format!("{e}; fallback_tcp is connected to when no echo is answered"),
                    )
                })
                .ok(),
            None => Some(None),
        };
        let ep = |key: &str| format!("{}.{key}", expect.meta.path);
        let loss_max = match &expect.loss_max {
            Some(l) => {
                let v = *l.get_ref();
                if (0.0..=1.0).contains(&v) {
                    Some(Some(v))
                } else {
                    self.at(
                        l.span(),
                        ep("loss_max"),
                        format!("{v} is out of range; a loss ratio is from 0.0 (none lost) to 1.0 (all lost)"),
                    );
                    None
                }
            }
            None => Some(None),
        };
        let rtt_mean_max = self.duration(&expect.rtt_mean_max, &ep("rtt_mean_max"));
        let rtt_p95_max = self.duration(&expect.rtt_p95_max, &ep("rtt_p95_max"));
        let jitter_max = self.duration(&expect.jitter_max, &ep("jitter_max"));
        Some(CheckSpec::Icmp(IcmpCheck {
            target: target?,
            count: count?,
            interval: interval?,
            size: size?,
            dont_fragment,
            ttl: ttl?,
            fallback_tcp: fallback_tcp?,
            expect: IcmpExpect {
                loss_max: loss_max?,
                rtt_mean_max: rtt_mean_max?,
                rtt_p95_max: rtt_p95_max?,
                jitter_max: jitter_max?,
            },
        }))
    }

    fn target(&mut self, raw: &RawCheck, kind: &str, meta: &TableMeta, header: &Range<usize>) -> Option<(String, u16)> {
        let t = self.required(&raw.target, "target", kind, "\"host.example:443\"", meta, header)?;
        host_port(t.get_ref()).map_err(|e| self.at(t.span(), format!("{}.target", meta.path), e)).ok()
    }

    fn tcp(&mut self, raw: RawCheck, expect: RawExpect, meta: &TableMeta, header: &Range<usize>) -> Option<CheckSpec> {
        let p = |key: &str| format!("{}.{key}", meta.path);
        let target = self.target(&raw, "tcp", meta, header);
        let count = match &raw.count {
            Some(c) => int_in(c, &p("count"), 1, MAX_COUNT, "", self.report).map(|c| c as u32),
            None => Some(1),
        };
        let send = match &raw.send {
            Some(s) if s.get_ref().is_empty() => {
                self.at(
                    s.span(),
                    p("send"),
                    "must not be empty; give the text to write after connecting, such as \
                     \"HEAD / HTTP/1.0\\r\\n\\r\\n\", or leave the key out",
                );
                None
            }
            Some(s) => Some(Some(s.get_ref().clone())),
            None => Some(None),
        };
        let expect_banner = self.regex(&raw.expect_banner, &p("expect_banner"));
        let connect_max = self.duration(&expect.connect_max, &format!("{}.connect_max", expect.meta.path));
        let (host, port) = target?;
        Some(CheckSpec::Tcp(TcpCheck {
            host,
            port,
            count: count?,
            send: send?,
            expect_banner: expect_banner?,
            expect: TcpExpect { connect_max: connect_max? },
        }))
    }

    fn mtu(&mut self, raw: RawCheck, expect: RawExpect, meta: &TableMeta, header: &Range<usize>) -> Option<CheckSpec> {
        let p = |key: &str| format!("{}.{key}", meta.path);
        let target = self.required(&raw.target, "target", "mtu", "\"155.231.231.1\"", meta, header).and_then(|t| {
            host(t.get_ref())
                .map_err(|e| {
                    self.at(t.span(), p("target"), format!("{e}; an mtu target is an IP address or host name"))
                })
                .ok()
        });
        let min = self.int::<u16>(&raw.min, &p("min"), MIN_MTU, MAX_MTU, " bytes");
        let max = self.int::<u16>(&raw.max, &p("max"), MIN_MTU, MAX_MTU, " bytes");
        let path_mtu_min = self.int::<u16>(
            &expect.path_mtu_min,
            &format!("{}.path_mtu_min", expect.meta.path),
            MIN_MTU,
            MAX_MTU,
            " bytes",
        );
        let target = target?;
        let ipv6 = target.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6());
        let (min, max, path_mtu_min) = (min?, max?, path_mtu_min?);
        let (min, defaulted) = match min {
            Some(m) => (m, false),
            None => (if ipv6 { DEFAULT_MTU_MIN_V6 } else { DEFAULT_MTU_MIN_V4 }, true),
        };
        if let (Some(max), Some(m)) = (max, &raw.max)
            && max <= min
        {
            let why = match (defaulted, ipv6) {
                (false, _) => String::new(),
                (true, true) => " by default for an IPv6 target".to_owned(),
                (true, false) => " by default for an IPv4 or named target".to_owned(),
            };
            self.at(
                m.span(),
                p("max"),
                format!(
                    "{max} must be greater than min ({min}{why}): the search runs from min up to max; raise max or \
                     lower min"
                ),
            );
            return None;
        }
        if let (Some(want), Some(max), Some(e)) = (path_mtu_min, max, &expect.path_mtu_min)
            && want > max
        {
            self.at(
                e.span(),
                format!("{}.path_mtu_min", expect.meta.path),
                format!("{want} can never be met: the search stops at max = {max}; raise max or lower path_mtu_min"),
            );
            return None;
        }
        Some(CheckSpec::Mtu(MtuCheck { target, min, max, expect: MtuExpect { path_mtu_min } }))
    }

    fn dns(&mut self, raw: RawCheck, expect: RawExpect, meta: &TableMeta, header: &Range<usize>) -> Option<CheckSpec> {
        let p = |key: &str| format!("{}.{key}", meta.path);
        let query = self.required(&raw.query, "query", "dns", "\"nww.nhs.uk\"", meta, header).and_then(|q| {
            if is_dns_name(q.get_ref()) || q.get_ref().parse::<IpAddr>().is_ok() {
                Some(q.get_ref().clone())
            } else {
                self.at(
                    q.span(),
                    p("query"),
                    format!("{:?} is not a domain name; write a name such as \"nww.nhs.uk\"", q.get_ref()),
                );
                None
            }
        });
        let record = self.keyword(raw.record.as_ref(), p("record"), &RECORD_TYPES, "A", |r| {
            format!("unknown record type {r:?}; record types: {}", RECORD_TYPES.join(" "))
        });
        let servers = self.dns_servers(&raw, meta);
        let transport = self.keyword(raw.transport.as_ref(), p("transport"), &["udp", "tcp"], "udp", |t| {
            format!("unknown transport {t:?}; write \"udp\" or \"tcp\"")
        });
        let ep = |key: &str| format!("{}.{key}", expect.meta.path);
        let rcode = self.keyword(expect.rcode.as_ref(), ep("rcode"), &RCODES, "NOERROR", |r| {
            format!("unknown response code {r:?}; codes: {}", RCODES.join(" "))
        });
        let min_answers = match &expect.min_answers {
            Some(m) => int_in(m, &ep("min_answers"), 0, 10_000, "", self.report).map(|m| Some(m as usize)),
            None => Some(None),
        };
        const ANSWER: &str = "an answer such as \"10.0.0.1\"";
        let answers_include = self.strings(&expect.answers_include, &ep("answers_include"), ANSWER);
        let answers_exactly = self.answer_set(&expect.answers_exactly, &ep("answers_exactly"));
        let answers_match = self.regex(&expect.answers_match, &ep("answers_match"));
        let answers_exclude = self.answer_set(&expect.answers_exclude, &ep("answers_exclude"));
        if let (Some(exclude), Some(include), Some(exactly)) =
            (&expect.answers_exclude, &answers_include, &answers_exactly)
        {
            for item in exclude.get_ref() {
                let wanted = normal_answer(item.get_ref());
                let clash = if include.iter().any(|a| normal_answer(a) == wanted) {
                    Some("answers_include")
                } else if exactly.iter().any(|a| normal_answer(a) == wanted) {
                    Some("answers_exactly")
                } else {
                    None
                };
                if let Some(other) = clash {
                    self.at(
                        item.span(),
                        ep("answers_exclude"),
                        format!(
                            "{:?} is also in {other}: the check could never pass; remove it from one of the two",
                            item.get_ref()
                        ),
                    );
                }
            }
        }
        let answers_in =
            self.networks(&expect.answers_in, &ep("answers_in"), "leave answers_in out instead", "a network");
        let answers_in = match (&answers_in, &expect.answers_in, &record) {
            (Some(nets), Some(list), Some(record)) if !nets.is_empty() => {
                self.answers_in_matches_record(nets, list, record, &ep("answers_in"))
            }
            _ => answers_in,
        };
        let rcode = rcode?;
        let min_answers = min_answers?.unwrap_or(if rcode == "NOERROR" { 1 } else { 0 });
        Some(CheckSpec::Dns(DnsCheck {
            query: query?,
            record: record?,
            servers: servers?,
            transport: transport?,
            expect: DnsExpect {
                rcode,
                min_answers,
                answers_include: answers_include?,
                answers_exactly: answers_exactly?,
                answers_match: answers_match?,
                answers_exclude: answers_exclude?,
                answers_in: answers_in?,
            },
        }))
    }

    /// `server = "ip[:port]"` (v1) or `servers = [...]`, not both; no duplicates.
    fn dns_servers(&mut self, raw: &RawCheck, meta: &TableMeta) -> Option<Vec<SocketAddr>> {
        let p = |key: &str| format!("{}.{key}", meta.path);
        match (&raw.server, &raw.servers) {
            (Some(one), Some(_)) => {
                let span = meta.key_span("servers").unwrap_or(one.span());
                self.at(
                    span,
                    p("servers"),
                    format!(
                        "give either `server` (one resolver, the v1 key) or `servers` (a list), not both; move {:?} \
                         into servers = [...] and remove server",
                        one.get_ref()
                    ),
                );
                None
            }
            (Some(s), None) => {
                dns_server(s.get_ref().trim()).map(|a| vec![a]).map_err(|e| self.at(s.span(), p("server"), e)).ok()
            }
            (None, Some(list)) if list.get_ref().is_empty() => {
                self.at(
                    list.span(),
                    p("servers"),
                    "must name at least one resolver, such as [\"155.231.231.1\", \"155.231.231.2\"]; leave the key \
                     out to use the system resolver",
                );
                None
            }
            (None, Some(list)) => {
                let mut ok = true;
                let mut out: Vec<SocketAddr> = Vec::with_capacity(list.get_ref().len());
                for item in list.get_ref() {
                    match dns_server(item.get_ref().trim()) {
                        Ok(addr) if out.contains(&addr) => {
                            self.at(
                                item.span(),
                                p("servers"),
                                format!("{:?} is listed twice (as {addr}); remove one", item.get_ref()),
                            );
                            ok = false;
                        }
                        Ok(addr) => out.push(addr),
                        Err(e) => {
                            self.at(item.span(), p("servers"), e);
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
            (None, None) => Some(Vec::new()),
        }
    }

    /// A list of answers without duplicates (compared as answers are); not empty when given.
    fn answer_set(&mut self, value: &Option<Spanned<Vec<Spanned<String>>>>, key: &str) -> Option<Vec<String>> {
        let Some(list) = value else { return Some(Vec::new()) };
        if list.get_ref().is_empty() {
            self.at(
                list.span(),
                key,
                "must list at least one answer, such as [\"10.0.0.1\"]; leave the key out instead",
            );
            return None;
        }
        let all = self.strings(value, key, "an answer such as \"10.0.0.1\"")?;
        let mut seen = BTreeSet::new();
        let mut ok = true;
        for (item, answer) in list.get_ref().iter().zip(&all) {
            if !seen.insert(normal_answer(answer)) {
                self.at(item.span(), key, format!("{:?} is listed twice", item.get_ref()));
                ok = false;
            }
        }
        ok.then_some(all)
    }

    /// For record A only IPv4 networks, for AAAA only IPv6; other records have no addresses to check.
    fn answers_in_matches_record(
        &mut self,
        nets: &[ipnet::IpNet],
        list: &Spanned<Vec<Spanned<String>>>,
        record: &str,
        key: &str,
    ) -> Option<Vec<ipnet::IpNet>> {
        if record != "A" && record != "AAAA" {
            self.at(
                list.span(),
                key,
                format!(
                    "answers_in checks addresses, so it needs record = \"A\" or \"AAAA\", not {record:?}; use \
                     answers_match or answers_include for names"
                ),
            );
            return None;
        }
        let mut ok = true;
        for (net, item) in nets.iter().zip(list.get_ref()) {
            let wrong = match (record, net) {
                ("A", ipnet::IpNet::V6(_)) => Some("an IPv6 network, but record = \"A\" answers IPv4 addresses"),
                ("AAAA", ipnet::IpNet::V4(_)) => Some("an IPv4 network, but record = \"AAAA\" answers IPv6 addresses"),
                _ => None,
            };
            if let Some(wrong) = wrong {
                self.at(item.span(), key, format!("{net} is {wrong}; remove it or change record"));
                ok = false;
            }
        }
        ok.then(|| nets.to_vec())
    }

    /// A list of networks (`"10.0.0.0/8"`), not empty when given. `empty` completes the message for an empty
    /// list, `what` completes "write …" for a bad element.
    fn networks(
        &mut self,
        value: &Option<Spanned<Vec<Spanned<String>>>>,
        key: &str,
        empty: &str,
        what: &str,
    ) -> Option<Vec<ipnet::IpNet>> {
        let Some(list) = value else { return Some(Vec::new()) };
        if list.get_ref().is_empty() {
            self.at(list.span(), key, format!("must list at least one network, such as [\"10.0.0.0/8\"]; {empty}"));
            return None;
        }
        let mut ok = true;
        let mut out = Vec::with_capacity(list.get_ref().len());
        for item in list.get_ref() {
            match network(item.get_ref().trim()) {
                Ok(net) => out.push(net),
                Err(e) => {
                    self.at(
                        item.span(),
                        key,
                        format!("{e}; write {what} with its prefix length, such as \"155.231.0.0/16\""),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A list of non-empty strings (empty list allowed: nothing to include).
    fn strings(&mut self, value: &Option<Spanned<Vec<Spanned<String>>>>, key: &str, what: &str) -> Option<Vec<String>> {
        let Some(list) = value else { return Some(Vec::new()) };
        let mut ok = true;
        for item in list.get_ref() {
            if item.get_ref().trim().is_empty() {
                self.at(item.span(), key, format!("an empty string is not allowed here; write {what}"));
                ok = false;
            }
        }
        ok.then(|| list.get_ref().iter().map(|s| s.get_ref().trim().to_owned()).collect())
    }

    fn ca_file(&mut self, raw: &RawCheck, meta: &TableMeta) -> Option<Option<PathBuf>> {
        match &raw.ca_file {
            Some(f) if f.get_ref().trim().is_empty() => {
                self.at(f.span(), format!("{}.ca_file", meta.path), "must not be empty; give the path of a PEM file of CA certificates, or leave the key out to use the system's roots");
                None
            }
            Some(f) => Some(Some(PathBuf::from(f.get_ref()))),
            None => Some(None),
        }
    }

    /// `client_cert` and `client_key`: both or neither; relative paths against the config file's directory.
    fn client_identity(&mut self, raw: &RawCheck, meta: &TableMeta) -> Option<(Option<PathBuf>, Option<PathBuf>)> {
        let p = |key: &str| format!("{}.{key}", meta.path);
        let cert =
            pem_path(&raw.client_cert, &p("client_cert"), "the PEM client certificate (chain)", self.dir, self.report);
        let key =
            pem_path(&raw.client_key, &p("client_key"), "the PEM private key of client_cert", self.dir, self.report);
        let given = |key: &str| meta.key_span(key).is_some() || meta.was_rejected(key);
        match (&raw.client_cert, &raw.client_key) {
            (Some(c), None) if !given("client_key") => {
                self.at(
                    meta.key_span("client_cert").unwrap_or(c.span()),
                    p("client_cert"),
                    "client_cert needs client_key: add client_key = \"/etc/gonogo/tls/client.key\" (the certificate's \
                     PEM private key), or remove client_cert",
                );
                return None;
            }
            (None, Some(k)) if !given("client_cert") => {
                self.at(
                    meta.key_span("client_key").unwrap_or(k.span()),
                    p("client_key"),
                    "client_key needs client_cert: add client_cert = \"/etc/gonogo/tls/client.crt\" (the PEM \
                     certificate of the key), or remove client_key",
                );
                return None;
            }
            _ => {}
        }
        Some((cert?, key?))
    }

    fn tls(&mut self, raw: RawCheck, expect: RawExpect, meta: &TableMeta, header: &Range<usize>) -> Option<CheckSpec> {
        let p = |key: &str| format!("{}.{key}", meta.path);
        let target = self.target(&raw, "tls", meta, header);
        let server_name = match &raw.server_name {
            Some(n) => {
                let value = n.get_ref();
                if is_dns_name(value) || value.parse::<IpAddr>().is_ok() {
                    Some(Some(value.clone()))
                } else {
                    self.at(n.span(), p("server_name"), format!("{value:?} is not a host name; write the name to send as SNI and verify, such as \"app.example.nhs.uk\""));
                    None
                }
            }
            None => Some(None),
        };
        let ca_file = self.ca_file(&raw, meta);
        let verify = raw.verify.as_ref().is_none_or(|v| *v.get_ref());
        let identity = self.client_identity(&raw, meta);
        let offered_min = self.tls_version(&raw.min_version, &p("min_version"), "offered");
        let offered_max = self.tls_version(&raw.max_version, &p("max_version"), "offered");
        if let (Some(Some(lo)), Some(Some(hi)), Some(m)) = (&offered_min, &offered_max, &raw.max_version)
            && lo > hi
        {
            self.at(
                m.span(),
                p("max_version"),
                format!(
                    "max_version {hi:?} is below min_version {lo:?}; offer at least min_version, such as \
                     max_version = {lo:?}"
                ),
            );
        }
        let ep = |key: &str| format!("{}.{key}", expect.meta.path);
        let valid_days_min = self.int::<u32>(&expect.valid_days_min, &ep("valid_days_min"), 0, i64::from(u32::MAX), "");
        let names_include =
            self.strings(&expect.names_include, &ep("names_include"), "a host name such as \"app.example.nhs.uk\"");
        let min_version = self.tls_version(&expect.min_version, &ep("min_version"), "negotiated");
        if let (Some(Some(want)), Some(Some(hi)), Some(m)) = (&min_version, &offered_max, &expect.min_version)
            && want > hi
        {
            self.at(
                m.span(),
                ep("min_version"),
                format!(
                    "can never be met: max_version = {hi:?} offers nothing above {hi}; lower expect.min_version or \
                     raise max_version"
                ),
            );
        }
        let issuer_matches = self.regex(&expect.issuer_matches, &ep("issuer_matches"));
        let chain_valid_days_min =
            self.int::<u32>(&expect.chain_valid_days_min, &ep("chain_valid_days_min"), 0, i64::from(u32::MAX), "");
        let fingerprint_sha256 = match &expect.fingerprint_sha256 {
            Some(f) => {
                fingerprint(f.get_ref()).map(Some).map_err(|e| self.at(f.span(), ep("fingerprint_sha256"), e)).ok()
            }
            None => Some(None),
        };
        let (host, port) = target?;
        let server_name = server_name?.unwrap_or_else(|| host.clone());
        let (client_cert, client_key) = identity?;
        Some(CheckSpec::Tls(TlsCheck {
            host,
            port,
            server_name,
            ca_file: ca_file?,
            verify,
            client_cert,
            client_key,
            min_version: offered_min?,
            max_version: offered_max?,
            expect: TlsExpect {
                valid_days_min: valid_days_min?,
                names_include: names_include?,
                min_version: min_version?,
                issuer_matches: issuer_matches?,
                chain_valid_days_min: chain_valid_days_min?,
                fingerprint_sha256: fingerprint_sha256?,
            },
        }))
    }

    /// `"1.2"` or `"1.3"`; `what` is "offered" or "negotiated" (for the message).
    fn tls_version(&mut self, value: &Option<Spanned<String>>, key: &str, what: &str) -> Option<Option<String>> {
        match value {
            Some(v) if v.get_ref() == "1.2" || v.get_ref() == "1.3" => Some(Some(v.get_ref().clone())),
            Some(v) => {
                self.at(
                    v.span(),
                    key,
                    format!(
                        "unknown TLS version {:?}; write \"1.2\" or \"1.3\" (the {what} version; gonogo speaks TLS 1.2 \
                         and 1.3 only)",
                        v.get_ref()
                    ),
                );
                None
            }
            None => Some(None),
        }
    }

    /// An http(s) URL with a host (`url` of http and egress checks).
    fn url(
        &mut self,
        raw: &RawCheck,
        kind: &str,
        example: &str,
        meta: &TableMeta,
        header: &Range<usize>,
    ) -> Option<String> {
        let p = |key: &str| format!("{}.{key}", meta.path);
        let u = self.required(&raw.url, "url", kind, &format!("{example:?}"), meta, header)?;
        match url::Url::parse(u.get_ref()) {
            Ok(parsed) if (parsed.scheme() == "http" || parsed.scheme() == "https") && parsed.host().is_some() => {
                Some(u.get_ref().clone())
            }
            Ok(parsed) => {
                self.at(
                    u.span(),
                    p("url"),
                    format!(
                        "{:?} has scheme {:?}; {} {kind} check needs an http:// or https:// URL with a host",
                        u.get_ref(),
                        parsed.scheme(),
                        article(kind)
                    ),
                );
                None
            }
            Err(e) => {
                self.at(
                    u.span(),
                    p("url"),
                    format!("{:?} is not a URL ({e}); write an absolute URL such as {example:?}", u.get_ref()),
                );
                None
            }
        }
    }

    /// `proxy`: absent (direct), `"env"`, or an http, https or socks5 URL.
    fn proxy(&mut self, raw: &RawCheck, meta: &TableMeta) -> Option<Proxy> {
        const ENV: &str = "or write \"env\" to use the HTTPS_PROXY, HTTP_PROXY and NO_PROXY environment variables";
        let p = |key: &str| format!("{}.{key}", meta.path);
        let Some(px) = &raw.proxy else { return Some(Proxy::None) };
        if px.get_ref().trim().eq_ignore_ascii_case("env") {
            return Some(Proxy::Env);
        }
        match url::Url::parse(px.get_ref()) {
            Ok(parsed) if ["http", "https", "socks5"].contains(&parsed.scheme()) && parsed.host().is_some() => {
                Some(Proxy::Url(px.get_ref().clone()))
            }
            Ok(parsed) => {
                self.at(
                    px.span(),
                    p("proxy"),
                    format!(
                        "{:?} has scheme {:?}; a proxy URL starts with http://, https:// or socks5:// and names a \
                         host; {ENV}",
                        px.get_ref(),
                        parsed.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                self.at(
                    px.span(),
                    p("proxy"),
                    format!(
                        "{:?} is not a URL ({e}); write one such as \"http://proxy.example.nhs.uk:8080\", {ENV}",
                        px.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn http(&mut self, raw: RawCheck, expect: RawExpect, meta: &TableMeta, header: &Range<usize>) -> Option<CheckSpec> {
        let p = |key: &str| format!("{}.{key}", meta.path);
        let url = self.url(&raw, "http", "https://app.example.nhs.uk/health", meta, header);
        let method = match &raw.method {
            Some(m) if is_token(m.get_ref()) => Some(m.get_ref().to_ascii_uppercase()),
            Some(m) => {
                self.at(
                    m.span(),
                    p("method"),
                    format!("{:?} is not an HTTP method; write one such as \"GET\", \"HEAD\" or \"POST\"", m.get_ref()),
                );
                None
            }
            None => Some("GET".to_owned()),
        };
        let headers = match &raw.headers {
            Some(h) => {
                let mut entries: Vec<_> = h.get_ref().iter().collect();
                entries.sort_by_key(|(k, _)| k.span().start);
                let mut ok = true;
                let mut out = Vec::with_capacity(entries.len());
                for (name, value) in entries {
                    let key = format!("{}.headers.{}", meta.path, name.get_ref());
                    if !is_token(name.get_ref()) {
                        self.at(
                            name.span(),
                            key,
                            format!("{:?} is not a header name; use letters, digits and -", name.get_ref()),
                        );
                        ok = false;
                    } else if !is_header_value(value.get_ref()) {
                        self.at(
                            value.span(),
                            key,
                            "header values may hold only printable ASCII characters, spaces and tabs",
                        );
                        ok = false;
                    } else {
                        out.push((name.get_ref().clone(), value.get_ref().clone()));
                    }
                }
                ok.then_some(out)
            }
            None => Some(Vec::new()),
        };
        let ca_file = self.ca_file(&raw, meta);
        let verify = raw.verify.as_ref().is_none_or(|v| *v.get_ref());
        let proxy = self.proxy(&raw, meta);
        let follow_redirects = raw.follow_redirects.as_ref().is_none_or(|v| *v.get_ref());
        let max_redirects = match &raw.max_redirects {
            Some(m) => {
                let value =
                    int_in(m, &p("max_redirects"), 0, MAX_REDIRECTS, " redirects", self.report).map(|m| m as u32);
                if value.is_some() && !follow_redirects {
                    self.at(
                        meta.key_span("max_redirects").unwrap_or(m.span()),
                        p("max_redirects"),
                        "max_redirects has no effect with follow_redirects = false; remove it, or set \
                         follow_redirects = true",
                    );
                }
                value
            }
            None => Some(DEFAULT_MAX_REDIRECTS),
        };
        let body_limit = match &raw.body_limit {
            Some(b) => int_in(b, &p("body_limit"), 1, MAX_BODY_LIMIT, " bytes", self.report).map(|b| b as usize),
            None => Some(DEFAULT_BODY_LIMIT),
        };
        let body = match (&raw.body, &method) {
            (Some(b), Some(m)) if m == "GET" || m == "HEAD" => {
                let given = if raw.method.is_some() {
                    format!("method = {m:?}")
                } else {
                    "method GET (the default)".to_owned()
                };
                self.at(
                    meta.key_span("body").unwrap_or(b.span()),
                    p("body"),
                    format!(
                        "a request body needs a method other than GET or HEAD, not {given}; set method = \"POST\" \
                         (or PUT, PATCH, …), or remove body"
                    ),
                );
                None
            }
            (Some(b), _) => Some(Some(b.get_ref().clone())),
            (None, _) => Some(None),
        };
        let identity = self.client_identity(&raw, meta);

        let ep = |key: &str| format!("{}.{key}", expect.meta.path);
        let status = match &expect.status {
            Some(list) if list.get_ref().is_empty() => {
                self.at(
                    list.span(),
                    ep("status"),
                    "must list at least one status code; leave the key out to accept any 2xx",
                );
                None
            }
            Some(list) => {
                let mut ok = true;
                let mut out = Vec::with_capacity(list.get_ref().len());
                for code in list.get_ref() {
                    match status_range(code.get_ref()) {
                        Ok(range) => out.push(range),
                        Err(e) => {
                            self.at(code.span(), ep("status"), e);
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
            None => Some(Vec::new()),
        };
        let body_matches = self.regex(&expect.body_matches, &ep("body_matches"));
        let body_not_matches = self.regex(&expect.body_not_matches, &ep("body_not_matches"));
        let header_matches = match &expect.header_matches {
            Some(h) => {
                let mut entries: Vec<_> = h.get_ref().iter().collect();
                entries.sort_by_key(|(k, _)| k.span().start);
                let mut ok = true;
                let mut out: Vec<(String, regex::Regex)> = Vec::with_capacity(entries.len());
                for (name, value) in entries {
                    let key = format!("{}.header_matches.{}", expect.meta.path, name.get_ref());
                    let lower = name.get_ref().to_ascii_lowercase();
                    if !is_token(name.get_ref()) {
                        self.at(
                            name.span(),
                            key,
                            format!(
                                "{:?} is not a header name; use letters, digits and -, such as \"content-type\"",
                                name.get_ref()
                            ),
                        );
                        ok = false;
                    } else if out.iter().any(|(n, _)| *n == lower) {
                        self.at(
                            name.span(),
                            key,
                            format!(
                                "{:?} is listed twice (header names are compared without case); keep one",
                                name.get_ref()
                            ),
                        );
                        ok = false;
                    } else {
                        match regex::Regex::new(value.get_ref()) {
                            Ok(re) => out.push((lower, re)),
                            Err(e) => {
                                self.at(
                                    value.span(),
                                    key,
                                    format!("not a valid regular expression: {}", regex_error_text(&e)),
                                );
                                ok = false;
                            }
                        }
                    }
                }
                ok.then_some(out)
            }
            None => Some(Vec::new()),
        };
        let latency_max = self.duration(&expect.latency_max, &ep("latency_max"));
        let (client_cert, client_key) = identity?;
        Some(CheckSpec::Http(HttpCheck {
            url: url?,
            method: method?,
            headers: headers?,
            ca_file: ca_file?,
            verify,
            proxy: proxy?,
            follow_redirects,
            max_redirects: max_redirects?,
            body_limit: body_limit?,
            body: body?,
            client_cert,
            client_key,
            expect: HttpExpect {
                status: status?,
                body_matches: body_matches?,
                body_not_matches: body_not_matches?,
                header_matches: header_matches?,
                latency_max: latency_max?,
            },
        }))
    }

    fn egress(
        &mut self,
        raw: RawCheck,
        expect: ExpectTable,
        meta: &TableMeta,
        header: &Range<usize>,
    ) -> Option<CheckSpec> {
        let url = self.url(&raw, "egress", "https://whatismyip.example.nhs.uk/", meta, header);
        let ca_file = self.ca_file(&raw, meta);
        let verify = raw.verify.as_ref().is_none_or(|v| *v.get_ref());
        let proxy = self.proxy(&raw, meta);
        let keys = &expect.keys;
        let key = format!("{}.expect.egress_in", meta.path);
        let egress_in = self.networks(
            &keys.egress_in,
            &key,
            "an egress check needs the site's NAT (egress) range(s)",
            "the site's NAT range",
        );
        if keys.egress_in.is_none() && !keys.meta.was_rejected("egress_in") && !meta.was_rejected("expect") {
            const ADD: &str = "the site's NAT (egress) range(s) its traffic must leave from";
            match &expect.span {
                Some(span) => self.at(
                    span.start..span.start,
                    keys.meta.path.clone(),
                    format!(
                        "missing `egress_in`, which an egress check needs; add egress_in = [\"192.0.2.0/28\"], {ADD}"
                    ),
                ),
                None => self.at(
                    header.clone(),
                    meta.path.clone(),
                    format!(
                        "missing `expect.egress_in`, which an egress check needs; add expect = {{ egress_in = \
                         [\"192.0.2.0/28\"] }}, {ADD}"
                    ),
                ),
            }
            return None;
        }
        Some(CheckSpec::Egress(EgressCheck {
            url: url?,
            ca_file: ca_file?,
            verify,
            proxy: proxy?,
            expect: EgressExpect { egress_in: egress_in? },
        }))
    }
}

/// A rise over the baseline: a duration (`"20ms"`, more than zero) or a percentage (`"25%"`, more than 0 and at
/// most [`MAX_INCREASE_PERCENT`]).
fn increase(value: &str) -> Result<Increase, String> {
    const FORM: &str = "write a duration such as \"20ms\" or a percentage of the baseline such as \"25%\"";
    let text = value.trim();
    if let Some(number) = text.strip_suffix('%') {
        return match number.trim().parse::<f64>() {
            Ok(p) if p.is_finite() && p > 0.0 && p <= MAX_INCREASE_PERCENT => Ok(Increase::Percent(p)),
            Ok(p) if p.is_finite() => {
                Err(format!("{value:?} is out of range; a percentage is more than 0% and at most 1000%"))
            }
            _ => Err(format!("{value:?} is not a percentage; {FORM}")),
        };
    }
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!("must be more than zero; {FORM}")),
        Ok(d) => Ok(Increase::Absolute(d)),
        Err(e) => Err(format!("{value:?} is neither a duration ({e}) nor a percentage; {FORM}")),
    }
}

/// "a" or "an" before a kind name, as the name is read aloud ("an ICMP", "an MTU", "a TCP").
fn article(kind: &str) -> &'static str {
    if matches!(kind, "icmp" | "mtu" | "egress") { "an" } else { "a" }
}

/// Answers compare case-insensitively, trailing dots ignored.
fn normal_answer(answer: &str) -> String {
    let answer = answer.trim();
    answer.strip_suffix('.').unwrap_or(answer).to_ascii_lowercase()
}

/// `network/prefix`, without host bits set.
fn network(value: &str) -> Result<ipnet::IpNet, String> {
    match value.parse::<ipnet::IpNet>() {
        Ok(net) if net.trunc() != net => Err(format!("{value:?} has host bits set; did you mean \"{}\"?", net.trunc())),
        Ok(net) => Ok(net),
        Err(_) if value.parse::<IpAddr>().is_ok() => {
            let bits = if value.contains(':') { 128 } else { 32 };
            Err(format!("{value:?} has no prefix length (for this one address write \"{value}/{bits}\")"))
        }
        Err(_) => Err(format!("{value:?} is not a network")),
    }
}

/// A local address to send from: an IP address, not unspecified or multicast, without a port.
fn source_addr(value: &str) -> Result<IpAddr, String> {
    const FORM: &str = "write the agent's own address to send from, such as \"10.120.4.2\" or \"2001:db8::2\"";
    let bare = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
    match bare.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => Err(format!(
            "{value:?} is the unspecified address, which the system picks by itself; {FORM}, or leave source out"
        )),
        Ok(ip) if ip.is_multicast() => Err(format!("{value:?} is a multicast address; {FORM}")),
        Ok(ip) => Ok(ip),
        Err(_) if value.parse::<SocketAddr>().is_ok() => {
            Err(format!("{value:?} has a port; give the address alone (the system picks the port); {FORM}"))
        }
        Err(_) if is_dns_name(value) => Err(format!("{value:?} is a name; a source must be an IP address; {FORM}")),
        Err(_) => Err(format!("{value:?} is not an IP address; {FORM}")),
    }
}

/// `expect.status` element: a code (`200`, `"200"`), a class (`"2xx"`) or a range (`"300-399"`), inclusive.
fn status_range(value: &RawStatus) -> Result<(u16, u16), String> {
    const FORM: &str = "write a code such as 200, a class such as \"2xx\", or a range such as \"300-399\"";
    let code = |v: i64| -> Result<u16, String> {
        if (100..=599).contains(&v) {
            Ok(v as u16)
        } else {
            Err(format!("{v} is out of range; must be from 100 to 599"))
        }
    };
    let text = match value {
        RawStatus::Code(v) => return code(*v).map(|c| (c, c)),
        RawStatus::Text(t) => t.trim().to_ascii_lowercase(),
    };
    if let Some(class) = text.strip_suffix("xx")
        && let Ok(digit @ 1..=5) = class.parse::<u16>()
    {
        return Ok((digit * 100, digit * 100 + 99));
    }
    if let Ok(v) = text.parse::<i64>() {
        return code(v).map(|c| (c, c));
    }
    if let Some((lo, hi)) = text.split_once('-')
        && let (Ok(lo), Ok(hi)) = (lo.trim().parse::<i64>(), hi.trim().parse::<i64>())
    {
        let (lo, hi) = (code(lo)?, code(hi)?);
        if lo > hi {
            return Err(format!("{text:?} is backwards; write the lower code first, such as \"{hi}-{lo}\""));
        }
        return Ok((lo, hi));
    }
    Err(format!("{text:?} is not a status code or range; {FORM}"))
}

/// A SHA-256 certificate fingerprint: 64 hex digits, ':' separators allowed; returned lowercase without them.
fn fingerprint(value: &str) -> Result<String, String> {
    const HINT: &str = "get it with: openssl x509 -in cert.pem -noout -fingerprint -sha256";
    let hex: String = value.trim().chars().filter(|&c| c != ':').collect();
    let length = hex.chars().count();
    if length != 64 {
        return Err(format!(
            "not a SHA-256 fingerprint: expected 64 hex digits (':' separators allowed), found {length}; {HINT}"
        ));
    }
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("not a SHA-256 fingerprint: 64 characters, but not all hex digits (0-9, a-f); {HINT}"));
    }
    Ok(hex.to_ascii_lowercase())
}

/// The keys for `kind` only (not those common to all kinds).
fn specific_keys(keys: &[raw::KeyInfo], kind: &str) -> String {
    keys.iter().filter(|k| !k.kinds.is_empty() && k.applies_to(kind)).map(|k| k.name).collect::<Vec<_>>().join(", ")
}

fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_distances() {
        assert_eq!(typo_distance("app-tsl", "app-tls"), 1);
        assert_eq!(typo_distance("app-tsl", "app-tcp"), 2);
        assert_eq!(typo_distance("", "abc"), 3);
        assert_eq!(typo_distance("dsn", "dns"), 1);
        assert_eq!(closest("app-tsl", ["app-tcp", "app-tls"].into_iter()), Some("app-tls"));
        assert_eq!(closest("B", ["a", "b"].into_iter()), Some("b"));
        assert_eq!(closest("zzzz", ["a", "b"].into_iter()), None);
    }

    #[test]
    fn names() {
        for ok in ["a", "gw-ping", "0", "a_b-c9"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "_a", "A", "a b", "a.b", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn dns_names() {
        for ok in ["nww.nhs.uk", "nww.nhs.uk.", "localhost", "_sip._tcp.example", "1.0.0.10.in-addr.arpa", "a-b.c"] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in ["", ".", "a..b", "-a.b", "a-.b", "a b", "10.0.0.256", &"a".repeat(64), "a/b"] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }

    #[test]
    fn host_ports() {
        assert_eq!(host_port("app.example:443"), Ok(("app.example".to_owned(), 443)));
        assert_eq!(host_port("10.0.0.1:22"), Ok(("10.0.0.1".to_owned(), 22)));
        assert_eq!(host_port("[::1]:443"), Ok(("::1".to_owned(), 443)));
        for bad in
            ["app.example", "::1:443", "[::1]", "[::1:443", "[nope]:443", "a:0", "a:65536", "a:x", "a b:1", ":443"]
        {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_servers() {
        assert_eq!(dns_server("155.231.231.1"), Ok("155.231.231.1:53".parse().expect("addr")));
        assert_eq!(dns_server("155.231.231.1:5353"), Ok("155.231.231.1:5353".parse().expect("addr")));
        assert_eq!(dns_server("::1"), Ok("[::1]:53".parse().expect("addr")));
        assert_eq!(dns_server("[::1]"), Ok("[::1]:53".parse().expect("addr")));
        assert_eq!(dns_server("[::1]:54"), Ok("[::1]:54".parse().expect("addr")));
        assert!(dns_server("dns.example:53").is_err_and(|e| e.contains("is a name")));
        assert!(dns_server("1.2.3.4:0").is_err());
        assert!(dns_server("1.2.3:53").is_err());
    }

    #[test]
    fn listen_addrs() {
        assert_eq!(listen_addr("127.0.0.1:9443"), Ok("127.0.0.1:9443".parse().expect("addr")));
        assert_eq!(listen_addr("0.0.0.0:0"), Ok("0.0.0.0:0".parse().expect("addr")));
        assert_eq!(listen_addr("[::1]:9443"), Ok("[::1]:9443".parse().expect("addr")));
        assert_eq!(listen_addr("[::]:65535"), Ok("[::]:65535".parse().expect("addr")));
        for (bad, fragment) in [
            ("127.0.0.1", "has no port"),
            ("[::1]", "has no port"),
            ("::1", "put an IPv6 address in brackets"),
            ("2001:db8::1:443", "put an IPv6 address in brackets"),
            ("127.0.0.1:65536", "\"65536\" is not a port; ports are 0 to 65535"),
            ("[::1]:https", "\"https\" is not a port"),
            ("127.0.0.1:", "\"\" is not a port"),
            ("localhost:9443", "is a host name; listen on an IP address"),
            ("localhost", "is a host name without a port"),
            ("", "is not an address:port"),
            ("1.2.3:80", "is not an address:port"),
            ("a b:80", "is not an address:port"),
        ] {
            let e = listen_addr(bad).expect_err(bad);
            assert!(e.contains(fragment), "{bad}: {e}");
            assert!(e.contains("write \"address:port\""), "{bad}: {e}");
        }
    }

    #[test]
    fn sha256_hex_digests() {
        let lower = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let bytes = sha256_hex(lower).expect("lower case");
        assert_eq!((bytes[0], bytes[1], bytes[31]), (0x9f, 0x86, 0x08));
        assert_eq!(sha256_hex(&lower.to_ascii_uppercase()), Ok(bytes));
        for bad in ["", "secret", &lower[1..], &format!("{lower}0"), &lower.replace('f', "g"), &format!("{lower}  -")] {
            let e = sha256_hex(bad).expect_err(bad);
            assert!(e.contains(SHA256_HINT), "{e}");
            assert!(bad.is_empty() || !e.contains(bad), "the value is quoted back: {e}");
        }
        // Multi-byte characters are counted as characters and never split.
        assert!(sha256_hex(&"é".repeat(32)).is_err_and(|e| e.contains("found 32 characters")));
        assert!(sha256_hex(&format!("{}é", &lower[..63])).is_err_and(|e| e.contains("not all hex digits")));
    }

    #[test]
    fn tokens_and_header_values() {
        assert!(is_token("GET") && is_token("X-Trace-Id") && is_token("m-search"));
        assert!(!is_token("") && !is_token("GE T") && !is_token("a:b"));
        assert!(is_header_value("text/html; q=0.9\tx") && is_header_value(""));
        assert!(!is_header_value("a\r\nb") && !is_header_value("é"));
    }
}
