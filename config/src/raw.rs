//! The file as written: serde structs mirroring the TOML one to one, nothing checked beyond types.
//!
//! Every struct has `deny_unknown_fields`, every value keeps its span. A check is one flat [`RawCheck`] holding
//! every key any kind may use (and one flat [`RawExpect`]); [`crate::validate`] then says which keys do not apply
//! to the check's kind. This sidesteps internally tagged enums, which lose `deny_unknown_fields` (serde #2294).
//!
//! `load` does not deserialize the whole document in one go, because serde stops at the first error. It parses
//! the document into spanned TOML values, then deserializes each section, each phase, each `[[check]]` and each
//! `expect` table on its own; when a table fails it drops the offending key, records the problem and tries again.
//! So an unknown key in one check, a wrong type in another and a typo in `[defaults]` are reported together.
//! The [`KeyInfo`] tables list the keys each table accepts, with the kinds they apply to.
//!
//! The tables of `gonogo serve` (`[api]`, `[[token]]`, `[storage]`, `[metrics]`) and of the migration workflow
//! (`[gate.NAME]`, `[evidence]`, a check's `compare`) are read the same way; `[api]`, `[metrics]`, each
//! `[[token]]`, each phase, each gate and each `compare` keep a [`TableMeta`] so that validation can tell a
//! missing key from one whose value was rejected (and already reported).

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::Report;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[site]`.
    pub site: Option<Spanned<RawSite>>,
    /// `[defaults]`.
    pub defaults: Option<Spanned<RawDefaults>>,
    /// `[phase.NAME]` tables, by name (the key keeps the name's span).
    #[serde(default)]
    pub phase: BTreeMap<Spanned<String>, Spanned<RawPhase>>,
    /// `[[check]]` tables in file order.
    #[serde(default)]
    pub check: Vec<Spanned<RawCheck>>,
    /// `[api]`.
    pub api: Option<Spanned<RawApi>>,
    /// `[[token]]` tables in file order.
    #[serde(default)]
    pub token: Vec<Spanned<RawToken>>,
    /// `[storage]`.
    pub storage: Option<Spanned<RawStorage>>,
    /// `[metrics]`.
    pub metrics: Option<Spanned<RawMetrics>>,
    /// `[gate.NAME]` tables, by name (the key keeps the name's span).
    #[serde(default)]
    pub gate: BTreeMap<Spanned<String>, Spanned<RawGate>>,
    /// `[evidence]`.
    pub evidence: Option<Spanned<RawEvidence>>,
}

/// `[site]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    /// Free-text site name.
    pub name: Option<Spanned<String>>,
    /// NHS ODS code.
    pub ods_code: Option<Spanned<String>>,
}

/// `[defaults]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Default per-check timeout (a duration string).
    pub timeout: Option<Spanned<String>>,
    /// Checks run at once.
    pub concurrency: Option<Spanned<i64>>,
}

/// `[phase.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    /// Shown in reports.
    pub description: Option<Spanned<String>>,
    /// Run the phase periodically under `gonogo serve` (duration string).
    pub every: Option<Spanned<String>>,
    /// Wait before the phase's first check (duration string).
    pub settle: Option<Spanned<String>>,
    /// The phase a run of this one is compared with.
    pub baseline: Option<Spanned<String>>,
    /// Filled by `load`, not read from the file.
    #[serde(skip)]
    pub meta: TableMeta,
}

/// `[gate.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGate {
    /// Shown in reports.
    pub description: Option<Spanned<String>>,
    /// Phases whose latest runs the gate relies on.
    pub requires: Option<Spanned<Vec<Spanned<String>>>>,
    /// Oldest run that still counts (duration string).
    pub max_age: Option<Spanned<String>>,
    /// Filled by `load`, not read from the file.
    #[serde(skip)]
    pub meta: TableMeta,
}

/// `[evidence]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvidence {
    /// PEM Ed25519 private key signing the journal.
    pub signing_key: Option<Spanned<String>>,
}

/// `[api]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// `address:port` to listen on.
    pub listen: Option<Spanned<String>>,
    /// PEM certificate (chain) file.
    pub tls_cert: Option<Spanned<String>>,
    /// PEM private key file.
    pub tls_key: Option<Spanned<String>>,
    /// PEM file of CA certificates client certificates must chain to.
    pub client_ca: Option<Spanned<String>>,
    /// Allow plain HTTP on a non-loopback address.
    pub insecure: Option<Spanned<bool>>,
    /// Filled by `load`, not read from the file.
    #[serde(skip)]
    pub meta: TableMeta,
}

/// One `[[token]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// Unique token name.
    pub name: Option<Spanned<String>>,
    /// SHA-256 of the token text, hex.
    pub sha256: Option<Spanned<String>>,
    /// What the token may do.
    pub roles: Option<Spanned<Vec<Spanned<String>>>>,
    /// Filled by `load`, not read from the file.
    #[serde(skip)]
    pub meta: TableMeta,
}

/// `[storage]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// Absolute path of the state directory.
    pub state_dir: Option<Spanned<String>>,
    /// Runs kept.
    pub keep_runs: Option<Spanned<i64>>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `address:port` of the plain-HTTP `/metrics` listener.
    pub listen: Option<Spanned<String>>,
    /// Filled by `load`, not read from the file.
    #[serde(skip)]
    pub meta: TableMeta,
}

/// One `[[check]]`: every key of every kind. Integers are `i64` so that range errors get our own messages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    // All kinds.
    /// Unique check name.
    pub name: Option<Spanned<String>>,
    /// icmp, tcp, dns, tls or http.
    pub kind: Option<Spanned<String>>,
    /// Phases the check runs in.
    pub phases: Option<Spanned<Vec<Spanned<String>>>>,
    /// False: advisory.
    pub required: Option<Spanned<bool>>,
    /// Per-check timeout (duration string).
    pub timeout: Option<Spanned<String>>,
    /// Pass when the expectations fail.
    pub expect_failure: Option<Spanned<bool>>,
    /// Further attempts after a failure.
    pub retries: Option<Spanned<i64>>,
    /// Time between attempts (duration string).
    pub retry_interval: Option<Spanned<String>>,
    /// Names of checks that must pass first.
    pub depends_on: Option<Spanned<Vec<Spanned<String>>>>,
    /// A failure already in the baseline blocks too.
    pub block_preexisting: Option<Spanned<bool>>,
    /// Expectations, read separately by `load`.
    pub expect: Option<Spanned<RawExpect>>,
    /// Tolerances against the baseline run, read separately by `load`.
    pub compare: Option<Spanned<RawCompare>>,
    // icmp, tcp, tls, mtu.
    /// icmp, mtu: host; tcp, tls: `host:port`.
    pub target: Option<Spanned<String>>,
    // icmp, tcp.
    /// icmp echoes or tcp connects.
    pub count: Option<Spanned<i64>>,
    // icmp.
    /// Time between echoes (duration string).
    pub interval: Option<Spanned<String>>,
    /// ICMP payload bytes.
    pub size: Option<Spanned<i64>>,
    /// Set the Don't Fragment bit.
    pub dont_fragment: Option<Spanned<bool>>,
    /// IP time to live.
    pub ttl: Option<Spanned<i64>>,
    /// `host:port` to connect to when no echo is answered.
    pub fallback_tcp: Option<Spanned<String>>,
    // tcp.
    /// Text written after connecting.
    pub send: Option<Spanned<String>>,
    /// Regex the first bytes read must match.
    pub expect_banner: Option<Spanned<String>>,
    // mtu.
    /// Smallest packet size tried.
    pub min: Option<Spanned<i64>>,
    /// Largest packet size tried.
    pub max: Option<Spanned<i64>>,
    // dns.
    /// Name to look up.
    pub query: Option<Spanned<String>>,
    /// Record type.
    pub record: Option<Spanned<String>>,
    /// Resolver `ip[:port]` (v1: one server).
    pub server: Option<Spanned<String>>,
    /// Resolvers `ip[:port]`.
    pub servers: Option<Spanned<Vec<Spanned<String>>>>,
    /// `udp` or `tcp`.
    pub transport: Option<Spanned<String>>,
    // tls.
    /// SNI and name to verify.
    pub server_name: Option<Spanned<String>>,
    /// Lowest TLS version offered.
    pub min_version: Option<Spanned<String>>,
    /// Highest TLS version offered.
    pub max_version: Option<Spanned<String>>,
    // tls, http, egress.
    /// PEM file of CA certificates.
    pub ca_file: Option<Spanned<String>>,
    /// Verify the certificate chain.
    pub verify: Option<Spanned<bool>>,
    // tls, http.
    /// PEM client certificate.
    pub client_cert: Option<Spanned<String>>,
    /// PEM private key of the client certificate.
    pub client_key: Option<Spanned<String>>,
    // http, egress.
    /// Absolute http(s) URL.
    pub url: Option<Spanned<String>>,
    /// HTTP method.
    pub method: Option<Spanned<String>>,
    /// Request headers (map order; the key spans give file order).
    pub headers: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    /// Proxy URL or `env`.
    pub proxy: Option<Spanned<String>>,
    // http.
    /// Follow 3xx responses.
    pub follow_redirects: Option<Spanned<bool>>,
    /// Redirects followed at most.
    pub max_redirects: Option<Spanned<i64>>,
    /// Body bytes read at most.
    pub body_limit: Option<Spanned<i64>>,
    /// Request body.
    pub body: Option<Spanned<String>>,
    // icmp, tcp, tls, http, mtu, egress.
    /// Address family: any, 4, 6, both, all.
    pub ip: Option<Spanned<String>>,
    // every kind that sends.
    /// Local IP address to send from.
    pub source: Option<Spanned<String>>,
    /// Filled by `load`, not read from the file.
    #[serde(skip)]
    pub meta: TableMeta,
}

/// A check's `expect` table: every expectation of every kind.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    // icmp.
    /// Loss ratio bound, 0.0–1.0.
    pub loss_max: Option<Spanned<f64>>,
    /// Mean RTT bound.
    pub rtt_mean_max: Option<Spanned<String>>,
    /// 95th percentile RTT bound.
    pub rtt_p95_max: Option<Spanned<String>>,
    /// Jitter bound.
    pub jitter_max: Option<Spanned<String>>,
    // tcp.
    /// Slowest connect bound.
    pub connect_max: Option<Spanned<String>>,
    // dns.
    /// Expected response code.
    pub rcode: Option<Spanned<String>>,
    /// Fewest answers.
    pub min_answers: Option<Spanned<i64>>,
    /// Answers that must be present.
    pub answers_include: Option<Spanned<Vec<Spanned<String>>>>,
    /// The exact answer set.
    pub answers_exactly: Option<Spanned<Vec<Spanned<String>>>>,
    /// Regex every answer must match.
    pub answers_match: Option<Spanned<String>>,
    /// Answers that must be absent.
    pub answers_exclude: Option<Spanned<Vec<Spanned<String>>>>,
    /// Networks every address answer must lie in.
    pub answers_in: Option<Spanned<Vec<Spanned<String>>>>,
    // tls.
    /// Fewest days of validity left.
    pub valid_days_min: Option<Spanned<i64>>,
    /// Names the certificate must cover.
    pub names_include: Option<Spanned<Vec<Spanned<String>>>>,
    /// Lowest negotiated TLS version.
    pub min_version: Option<Spanned<String>>,
    /// Regex the leaf's issuer must match.
    pub issuer_matches: Option<Spanned<String>>,
    /// Fewest days of validity left of any certificate in the chain.
    pub chain_valid_days_min: Option<Spanned<i64>>,
    /// SHA-256 fingerprint of the leaf.
    pub fingerprint_sha256: Option<Spanned<String>>,
    // http.
    /// Accepted status codes and ranges.
    pub status: Option<Spanned<Vec<Spanned<RawStatus>>>>,
    /// Regex the body must match.
    pub body_matches: Option<Spanned<String>>,
    /// Regex the body must not match.
    pub body_not_matches: Option<Spanned<String>>,
    /// Response header name → regex its value must match.
    pub header_matches: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    /// Whole-exchange bound.
    pub latency_max: Option<Spanned<String>>,
    // mtu.
    /// Smallest acceptable path MTU.
    pub path_mtu_min: Option<Spanned<i64>>,
    // egress.
    /// Networks the egress address must lie in.
    pub egress_in: Option<Spanned<Vec<Spanned<String>>>>,
    /// Filled by `load`, not read from the file.
    #[serde(skip)]
    pub meta: TableMeta,
}

/// A check's `compare` table: the tolerances of every kind against the baseline run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompare {
    // icmp, tcp.
    /// Largest rise of the 95th percentile RTT: a duration or a percentage string.
    pub rtt_p95_max_increase: Option<Spanned<String>>,
    // icmp.
    /// Largest rise of the loss ratio, 0.0–1.0.
    pub loss_max_increase: Option<Spanned<f64>>,
    // dns.
    /// The answer set must stay the same.
    pub answers_unchanged: Option<Spanned<bool>>,
    // tls.
    /// The leaf certificate must stay the same.
    pub cert_unchanged: Option<Spanned<bool>>,
    // http.
    /// The status code must stay the same.
    pub status_unchanged: Option<Spanned<bool>>,
    /// Filled by `load`, not read from the file.
    #[serde(skip)]
    pub meta: TableMeta,
}

/// One element of `expect.status`: a code (`200`) or a string (`"2xx"`, `"300-399"`), checked by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawStatus {
    /// An integer.
    Code(i64),
    /// A string.
    Text(String),
}

impl<'de> Deserialize<'de> for RawStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawStatus;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a status code such as 200 or a range such as \"2xx\" or \"300-399\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawStatus, E> {
                Ok(RawStatus::Code(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawStatus, E> {
                Ok(RawStatus::Code(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawStatus, E> {
                Ok(RawStatus::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// What `load` learnt about a table besides its values.
#[derive(Debug, Default, Clone)]
pub struct TableMeta {
    /// Position of the index-th element of its array (`[[check]]`, `[[token]]`), 0-based.
    pub index: usize,
    /// Key path prefix used in messages, e.g. `check "gw-ping"`, `check[3]`, `token "noc"` or `api`.
    pub path: String,
    /// The keys that were read, with the span of the key itself, in file order.
    pub keys: Vec<(String, Range<usize>)>,
    /// Keys present in the file whose values were rejected (already reported).
    pub rejected: Vec<String>,
}

impl TableMeta {
    /// Span of `key` in the file, if it was read.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, span)| span.clone())
    }

    /// True when `key` was present but its value rejected.
    pub fn was_rejected(&self, key: &str) -> bool {
        self.rejected.iter().any(|k| k == key)
    }
}

/// The check kinds.
pub const KINDS: [&str; 7] = ["icmp", "tcp", "dns", "tls", "http", "mtu", "egress"];

/// One key a table accepts.
#[derive(Debug, Clone, Copy)]
pub struct KeyInfo {
    /// The key as written.
    pub name: &'static str,
    /// Check kinds it applies to; empty: all kinds (or the table is not a check).
    pub kinds: &'static [&'static str],
    /// What the value must be, completing "expected …".
    pub expected: &'static str,
}

impl KeyInfo {
    /// True when the key may appear in a check of `kind`.
    pub fn applies_to(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }
}

const fn key(name: &'static str, kinds: &'static [&'static str], expected: &'static str) -> KeyInfo {
    KeyInfo { name, kinds, expected }
}

const ALL: &[&str] = &[];
const DURATION: &str = "a duration string such as \"2s\", \"200ms\" or \"1m30s\"";
const WHOLE: &str = "a whole number such as 5";
const BOOL: &str = "true or false";
const STRING: &str = "a string";
const STRINGS: &str = "an array of strings such as [\"a\", \"b\"]";

/// Top-level keys.
pub const TOP_KEYS: &[KeyInfo] = &[
    key("site", ALL, "a table: [site]"),
    key("defaults", ALL, "a table: [defaults]"),
    key("phase", ALL, "a table of phases: [phase.NAME]"),
    key("check", ALL, "an array of tables: [[check]]"),
    key("api", ALL, "a table: [api]"),
    key("token", ALL, "an array of tables: [[token]]"),
    key("storage", ALL, "a table: [storage]"),
    key("metrics", ALL, "a table: [metrics]"),
    key("gate", ALL, "a table of gates: [gate.NAME]"),
    key("evidence", ALL, "a table: [evidence]"),
];

/// `[site]` keys.
pub const SITE_KEYS: &[KeyInfo] = &[key("name", ALL, STRING), key("ods_code", ALL, "a string such as \"RXX\"")];

/// `[defaults]` keys.
pub const DEFAULTS_KEYS: &[KeyInfo] = &[key("timeout", ALL, DURATION), key("concurrency", ALL, WHOLE)];

/// `[phase.NAME]` keys.
pub const PHASE_KEYS: &[KeyInfo] = &[
    key("description", ALL, STRING),
    key("every", ALL, "a duration string such as \"15m\" or \"1h\""),
    key("settle", ALL, "a duration string such as \"2m\""),
    key("baseline", ALL, "a phase name string such as \"pre-migration\""),
];

/// `[gate.NAME]` keys.
pub const GATE_KEYS: &[KeyInfo] = &[
    key("description", ALL, STRING),
    key("requires", ALL, "an array of phase names such as [\"commissioning\", \"pre-migration\"]"),
    key("max_age", ALL, "a duration string such as \"4h\""),
];

/// `[evidence]` keys.
pub const EVIDENCE_KEYS: &[KeyInfo] =
    &[key("signing_key", ALL, "a file path string such as \"/etc/gonogo/journal.key\"")];

const LISTEN: &str = "an address:port string such as \"127.0.0.1:9443\"";
const PEM_FILE: &str = "a file path string";

/// `[api]` keys.
pub const API_KEYS: &[KeyInfo] = &[
    key("listen", ALL, LISTEN),
    key("tls_cert", ALL, PEM_FILE),
    key("tls_key", ALL, PEM_FILE),
    key("client_ca", ALL, PEM_FILE),
    key("insecure", ALL, BOOL),
];

/// `[[token]]` keys.
pub const TOKEN_KEYS: &[KeyInfo] = &[
    key("name", ALL, "a string such as \"cnsp-noc\""),
    key("sha256", ALL, "a string of 64 hex characters"),
    key("roles", ALL, "an array of roles such as [\"read\", \"trigger\"]"),
];

/// `[storage]` keys.
pub const STORAGE_KEYS: &[KeyInfo] =
    &[key("state_dir", ALL, "an absolute path string such as \"/var/lib/gonogo\""), key("keep_runs", ALL, WHOLE)];

/// `[metrics]` keys.
pub const METRICS_KEYS: &[KeyInfo] = &[key("listen", ALL, LISTEN)];

/// `[[check]]` keys, common ones first, then by kind; `ip`, `source` and `compare` (several kinds) last.
pub const CHECK_KEYS: &[KeyInfo] = &[
    key("name", ALL, "a string such as \"gw-ping\""),
    key("kind", ALL, "one of \"icmp\", \"tcp\", \"dns\", \"tls\", \"http\", \"mtu\", \"egress\""),
    key("phases", ALL, "an array of phase names such as [\"commissioning\"]"),
    key("required", ALL, BOOL),
    key("timeout", ALL, DURATION),
    key("expect_failure", ALL, BOOL),
    key("retries", ALL, "a whole number of further attempts such as 2"),
    key("retry_interval", ALL, DURATION),
    key("depends_on", ALL, "an array of check names such as [\"hscn-dns-1-udp\"]"),
    key("block_preexisting", ALL, BOOL),
    key("expect", ALL, EXPECT_EXPECTED),
    key("target", &["icmp", "tcp", "tls", "mtu"], "a string such as \"10.0.0.1\" or \"host.example:443\""),
    key("count", &["icmp", "tcp"], WHOLE),
    key("interval", &["icmp"], DURATION),
    key("size", &["icmp"], "a whole number of payload bytes such as 56"),
    key("dont_fragment", &["icmp"], BOOL),
    key("ttl", &["icmp"], "a whole number of hops from 1 to 255 such as 64"),
    key("fallback_tcp", &["icmp"], "a \"host:port\" string such as \"155.231.231.1:53\""),
    key("send", &["tcp"], "a string such as \"HEAD / HTTP/1.0\\r\\n\\r\\n\""),
    key("expect_banner", &["tcp"], "a regular expression string such as \"^SSH-2\\\\.0-\""),
    key("min", &["mtu"], "a whole number of bytes such as 1280"),
    key("max", &["mtu"], "a whole number of bytes such as 1500"),
    key("query", &["dns"], "a domain name string such as \"nww.nhs.uk\""),
    key("record", &["dns"], "a record type string such as \"A\""),
    key("server", &["dns"], "a string such as \"155.231.231.1:53\""),
    key("transport", &["dns"], "\"udp\" or \"tcp\""),
    key("servers", &["dns"], "an array of strings such as [\"155.231.231.1:53\", \"155.231.231.2:53\"]"),
    key("server_name", &["tls"], "a host name string"),
    key("min_version", &["tls"], TLS_VERSION),
    key("max_version", &["tls"], TLS_VERSION),
    key("ca_file", &["tls", "http", "egress"], "a file path string"),
    key("verify", &["tls", "http", "egress"], BOOL),
    key("client_cert", &["tls", "http"], "a file path string"),
    key("client_key", &["tls", "http"], "a file path string"),
    key("url", &["http", "egress"], "a URL string such as \"https://app.example/health\""),
    key("method", &["http"], "a string such as \"GET\""),
    key("headers", &["http"], "a table of strings such as { Accept = \"application/json\" }"),
    key("body", &["http"], "a string such as '{\"ping\": true}'"),
    key("proxy", &["http", "egress"], "a URL string such as \"http://proxy.example:8080\", or \"env\""),
    key("follow_redirects", &["http"], BOOL),
    key("max_redirects", &["http"], "a whole number from 0 to 50 such as 10"),
    key("body_limit", &["http"], "a whole number of bytes such as 1048576"),
    key(
        "ip",
        &["icmp", "tcp", "tls", "http", "mtu", "egress"],
        "one of \"any\", \"4\", \"6\", \"both\", \"all\" (a string)",
    ),
    key(
        "source",
        &["icmp", "tcp", "dns", "tls", "http", "mtu", "egress"],
        "an IP address string such as \"10.120.4.2\"",
    ),
    key("compare", COMPARED_KINDS, COMPARE_EXPECTED),
];

/// The kinds that take a `compare` table.
pub const COMPARED_KINDS: &[&str] = &["icmp", "tcp", "dns", "tls", "http"];

const COMPARE_EXPECTED: &str = "a table: [check.compare] or compare = { … }";

/// `compare` keys, by kind.
pub const COMPARE_KEYS: &[KeyInfo] = &[
    key(
        "rtt_p95_max_increase",
        &["icmp", "tcp"],
        "a duration such as \"20ms\" or a percentage such as \"25%\" (a string)",
    ),
    key("loss_max_increase", &["icmp"], "a number from 0.0 to 1.0"),
    key("answers_unchanged", &["dns"], BOOL),
    key("cert_unchanged", &["tls"], BOOL),
    key("status_unchanged", &["http"], BOOL),
];

const TLS_VERSION: &str = "the string \"1.2\" or \"1.3\"";
const NETWORKS: &str = "an array of networks such as [\"10.0.0.0/8\", \"155.231.0.0/16\"]";

const EXPECT_EXPECTED: &str = "a table: [check.expect] or expect = { … }";

/// `expect` keys, by kind.
pub const EXPECT_KEYS: &[KeyInfo] = &[
    key("loss_max", &["icmp"], "a number from 0.0 to 1.0"),
    key("rtt_mean_max", &["icmp"], DURATION),
    key("rtt_p95_max", &["icmp"], DURATION),
    key("jitter_max", &["icmp"], DURATION),
    key("connect_max", &["tcp"], DURATION),
    key("rcode", &["dns"], "a string such as \"NOERROR\""),
    key("min_answers", &["dns"], WHOLE),
    key("answers_include", &["dns"], STRINGS),
    key("answers_exactly", &["dns"], STRINGS),
    key("answers_match", &["dns"], "a regular expression string"),
    key("answers_exclude", &["dns"], STRINGS),
    key("answers_in", &["dns"], NETWORKS),
    key("valid_days_min", &["tls"], "a whole number of days such as 14"),
    key("names_include", &["tls"], STRINGS),
    key("min_version", &["tls"], TLS_VERSION),
    key("issuer_matches", &["tls"], "a regular expression string"),
    key("chain_valid_days_min", &["tls"], "a whole number of days such as 14"),
    key("fingerprint_sha256", &["tls"], "a string of 64 hex digits, ':' separators allowed"),
    key("status", &["http"], "an array of status codes and ranges such as [200, 204], [\"2xx\"] or [\"300-399\"]"),
    key("body_matches", &["http"], "a regular expression string"),
    key("body_not_matches", &["http"], "a regular expression string"),
    key("header_matches", &["http"], "a table of regular expressions such as { \"content-type\" = \"json\" }"),
    key("latency_max", &["http"], DURATION),
    key("path_mtu_min", &["mtu"], "a whole number of bytes such as 1500"),
    key("egress_in", &["egress"], NETWORKS),
];

/// The names of `keys` that apply to `kind` (`None`: all), comma-separated.
pub fn key_list(keys: &[KeyInfo], kind: Option<&str>) -> String {
    keys.iter().filter(|k| kind.is_none_or(|kind| k.applies_to(kind))).map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// Read `text` into a [`RawConfig`], recording every problem found on the way.
///
/// Returns `None` only for a TOML syntax error (the single problem then). Otherwise returns what could be read:
/// keys with bad values are left out (and reported), tables that are not tables are left out (and reported).
pub(crate) fn load(text: &str, report: &mut Report<'_>) -> Option<RawConfig> {
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            report.at(span, "", format!("TOML syntax error: {}", e.message()));
            return None;
        }
    };
    let mut config = RawConfig::default();
    for (key, value) in root.into_inner() {
        let key_span = key.span();
        match key.get_ref().as_ref() {
            "site" => {
                config.site = table::<RawSite>(value, "site", "a table: [site]", SITE_KEYS, "[site] keys", report)
            }
            "defaults" => {
                config.defaults = table::<RawDefaults>(
                    value,
                    "defaults",
                    "a table: [defaults]",
                    DEFAULTS_KEYS,
                    "[defaults] keys",
                    report,
                );
            }
            "phase" => load_phases(value, &mut config, report),
            "check" => load_checks(value, &mut config, report),
            "api" => {
                config.api =
                    table_with_meta::<RawApi>(value, "api", "a table: [api]", API_KEYS, None, "[api] keys", report)
                        .map(|(api, meta)| with_meta(api, meta, "api", |a, m| a.meta = m));
            }
            "token" => load_tokens(value, &mut config, report),
            "storage" => {
                config.storage =
                    table::<RawStorage>(value, "storage", "a table: [storage]", STORAGE_KEYS, "[storage] keys", report);
            }
            "metrics" => {
                config.metrics = table_with_meta::<RawMetrics>(
                    value,
                    "metrics",
                    "a table: [metrics]",
                    METRICS_KEYS,
                    None,
                    "[metrics] keys",
                    report,
                )
                .map(|(metrics, meta)| with_meta(metrics, meta, "metrics", |m, meta| m.meta = meta));
            }
            "gate" => load_gates(value, &mut config, report),
            "evidence" => {
                config.evidence = table::<RawEvidence>(
                    value,
                    "evidence",
                    "a table: [evidence]",
                    EVIDENCE_KEYS,
                    "[evidence] keys",
                    report,
                );
            }
            other => report.at(key_span, other, unknown_key_message(other, TOP_KEYS, "top-level keys")),
        }
    }
    Some(config)
}

fn load_phases(value: Spanned<DeValue<'_>>, config: &mut RawConfig, report: &mut Report<'_>) {
    let span = value.span();
    let DeValue::Table(phases) = value.into_inner() else {
        report.at(span, "phase", "expected a table of phases; declare each as [phase.NAME] with a description");
        return;
    };
    for (name, value) in phases {
        let path = format!("phase.{}", name.get_ref());
        let value_span = value.span();
        // Keep the phase even when its table is bad, so checks naming it get no second, misleading problem.
        let phase =
            table_with_meta::<RawPhase>(value, &path, "a table: [phase.NAME]", PHASE_KEYS, None, "phase keys", report)
                .map(|(phase, meta)| with_meta(phase, meta, &path, |p, m| p.meta = m))
                .unwrap_or_else(|| {
                    let meta = TableMeta { path: path.clone(), ..TableMeta::default() };
                    Spanned::new(value_span, RawPhase { meta, ..RawPhase::default() })
                });
        config.phase.insert(Spanned::new(name.span(), name.into_inner().into_owned()), phase);
    }
}

fn load_gates(value: Spanned<DeValue<'_>>, config: &mut RawConfig, report: &mut Report<'_>) {
    let span = value.span();
    let DeValue::Table(gates) = value.into_inner() else {
        report.at(
            span,
            "gate",
            "expected a table of gates; declare each as [gate.NAME] with requires = [\"pre-migration\", …]",
        );
        return;
    };
    for (name, value) in gates {
        let path = format!("gate.{}", name.get_ref());
        if let Some((gate, meta)) =
            table_with_meta::<RawGate>(value, &path, "a table: [gate.NAME]", GATE_KEYS, None, "gate keys", report)
        {
            let gate = with_meta(gate, meta, &path, |g, m| g.meta = m);
            config.gate.insert(Spanned::new(name.span(), name.into_inner().into_owned()), gate);
        }
    }
}

fn load_checks(value: Spanned<DeValue<'_>>, config: &mut RawConfig, report: &mut Report<'_>) {
    let span = value.span();
    let DeValue::Array(checks) = value.into_inner() else {
        report.at(span, "check", "expected an array of tables; write each check under its own [[check]] header");
        return;
    };
    for (index, value) in checks.iter().enumerate() {
        if let Some(check) = load_check(index, value.clone(), report) {
            config.check.push(check);
        }
    }
}

fn load_check(index: usize, value: Spanned<DeValue<'_>>, report: &mut Report<'_>) -> Option<Spanned<RawCheck>> {
    let span = value.span();
    let DeValue::Table(mut table) = value.into_inner() else {
        report.at(span, format!("check[{index}]"), "expected a table; write each check under its own [[check]] header");
        return None;
    };
    let path = check_path(index, &table);
    let kind = table
        .get("kind")
        .and_then(|k| k.get_ref().as_str())
        .and_then(|k| KINDS.iter().copied().find(|&known| known == k));

    // `expect` and `compare` are read on their own so that their problems do not hide those of the check, and
    // vice versa.
    let expect = table.remove_entry("expect").map(|(key, value)| (key.span(), value));
    let compare = table.remove_entry("compare").map(|(key, value)| (key.span(), value));
    let what = match kind {
        Some(kind) => format!("keys for kind \"{kind}\""),
        None => "check keys".to_owned(),
    };
    let (check, mut meta) = table_with_meta::<RawCheck>(
        Spanned::new(span.clone(), DeValue::Table(table)),
        &path,
        "a table",
        CHECK_KEYS,
        kind,
        &what,
        report,
    )?;
    let mut check = check.into_inner();
    meta.path = path;
    if let Some((key_span, value)) = expect {
        let keys = (EXPECT_EXPECTED, EXPECT_KEYS, kind);
        check.expect = sub_table("expect", key_span, value, keys, &mut meta, report, |e: &mut RawExpect, m| e.meta = m);
    }
    if let Some((key_span, value)) = compare {
        // A kind without compare keys (`compare` does not apply to it, reported by validation) lists them all.
        let keys = (COMPARE_EXPECTED, COMPARE_KEYS, kind.filter(|&k| COMPARE_KEYS.iter().any(|c| c.applies_to(k))));
        check.compare =
            sub_table("compare", key_span, value, keys, &mut meta, report, |c: &mut RawCompare, m| c.meta = m);
    }
    meta.index = index;
    check.meta = meta;
    Some(Spanned::new(span, check))
}

/// Read the sub-table `name` of a check (`expect`, `compare`), whose key is at `key_span`, as `T`; `keys` are
/// what the table must be (for "expected …"), its [`KeyInfo`] table and the check's kind (filtering
/// suggestions). `meta` is the check's (path already set): it records the key as read or rejected. `set` stores
/// the table's own meta, whose path is the check's plus `.NAME`, in the table read.
fn sub_table<T: DeserializeOwned>(
    name: &str,
    key_span: Range<usize>,
    value: Spanned<DeValue<'_>>,
    keys: (&str, &[KeyInfo], Option<&str>),
    meta: &mut TableMeta,
    report: &mut Report<'_>,
    set: impl FnOnce(&mut T, TableMeta),
) -> Option<Spanned<T>> {
    let (expected, keys, kind) = keys;
    let path = format!("{}.{name}", meta.path);
    let what = match kind {
        Some(kind) => format!("{name} keys for kind \"{kind}\""),
        None => format!("{name} keys"),
    };
    match table_with_meta::<T>(value, &path, expected, keys, kind, &what, report) {
        Some((table, table_meta)) => {
            meta.keys.push((name.to_owned(), key_span));
            meta.keys.sort_by_key(|(_, span)| span.start);
            Some(with_meta(table, table_meta, &path, set))
        }
        None => {
            meta.rejected.push(name.to_owned());
            None
        }
    }
}

/// `check "NAME"` when the check has a usable name, else `check[INDEX]` (0-based).
fn check_path(index: usize, table: &DeTable<'_>) -> String {
    element_path("check", index, table)
}

/// `WHAT "NAME"` when the array element has a usable name, else `WHAT[INDEX]` (0-based).
fn element_path(what: &str, index: usize, table: &DeTable<'_>) -> String {
    match table.get("name").and_then(|n| n.get_ref().as_str()) {
        Some(name) if crate::validate::is_valid_name(name) => format!("{what} \"{name}\""),
        _ => format!("{what}[{index}]"),
    }
}

fn load_tokens(value: Spanned<DeValue<'_>>, config: &mut RawConfig, report: &mut Report<'_>) {
    let span = value.span();
    let DeValue::Array(tokens) = value.into_inner() else {
        report.at(span, "token", "expected an array of tables; write each token under its own [[token]] header");
        return;
    };
    for (index, value) in tokens.iter().enumerate() {
        let span = value.span();
        let DeValue::Table(table) = value.get_ref() else {
            report.at(
                span,
                format!("token[{index}]"),
                "expected a table; write each token under its own [[token]] header",
            );
            continue;
        };
        let path = element_path("token", index, table);
        if let Some((token, mut meta)) =
            table_with_meta::<RawToken>(value.clone(), &path, "a table", TOKEN_KEYS, None, "token keys", report)
        {
            meta.index = index;
            config.token.push(with_meta(token, meta, &path, |t, m| t.meta = m));
        }
    }
}

/// Store `meta` (with its key path set to `path`) in the table read, through `set`.
fn with_meta<T>(table: Spanned<T>, mut meta: TableMeta, path: &str, set: impl FnOnce(&mut T, TableMeta)) -> Spanned<T> {
    let span = table.span();
    let mut table = table.into_inner();
    meta.path = path.to_owned();
    set(&mut table, meta);
    Spanned::new(span, table)
}

/// Deserialize the table `value` (at key path `path`) as `T`, reporting each problem; `None` when `value` is
/// not a table at all (`expected` then says what it should be). `what` names the list of `keys` in messages.
fn table<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    path: &str,
    expected: &str,
    keys: &[KeyInfo],
    what: &str,
    report: &mut Report<'_>,
) -> Option<Spanned<T>> {
    table_with_meta(value, path, expected, keys, None, what, report).map(|(t, _)| t)
}

/// As [`table`], also returning the keys read and rejected. `kind` filters the keys suggested for a typo.
fn table_with_meta<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    path: &str,
    expected: &str,
    keys: &[KeyInfo],
    kind: Option<&str>,
    what: &str,
    report: &mut Report<'_>,
) -> Option<(Spanned<T>, TableMeta)> {
    let span = value.span();
    let mut table = match value.into_inner() {
        DeValue::Table(table) => table,
        other => {
            report.at(span, path, format!("expected {expected}, found {}", found_de(&other)));
            return None;
        }
    };
    let mut meta = TableMeta::default();
    // Each round either succeeds or removes one key, so this ends.
    loop {
        let attempt =
            T::deserialize(ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(table.clone()))));
        let error = match attempt {
            Ok(value) => {
                let mut read: Vec<(String, Range<usize>)> =
                    table.keys().map(|k| (k.get_ref().to_string(), k.span())).collect();
                read.sort_by_key(|(_, span)| span.start);
                meta.keys = read;
                return Some((Spanned::new(span, value), meta));
            }
            Err(error) => error,
        };
        let error_span = error.span();
        let culprit = error_span.as_ref().and_then(|es| {
            table.iter().find_map(|(k, v)| {
                if k.span() == *es {
                    Some((k.clone(), true))
                } else if contains(v, es) {
                    Some((k.clone(), false))
                } else {
                    None
                }
            })
        });
        let Some((culprit, is_key)) = culprit else {
            // Not attributable to one key: report what serde said and give up on this table.
            report.at(error_span.unwrap_or(span), path, error.message().to_owned());
            return None;
        };
        let name = culprit.get_ref().to_string();
        let key_path = format!("{}{name}", if path.is_empty() { String::new() } else { format!("{path}.") });
        if is_key {
            let keys: Vec<KeyInfo> =
                keys.iter().copied().filter(|k| kind.is_none_or(|kind| k.applies_to(kind))).collect();
            report.at(culprit.span(), key_path, unknown_key_message(&name, &keys, what));
        } else {
            let message = match (keys_expected(keys, &name), type_mismatch(error.message())) {
                (Some(expected), Some(found)) => format!("expected {expected}, found {found}"),
                _ => error.message().to_owned(),
            };
            report.at(error_span.unwrap_or(span.clone()), key_path, message);
        }
        table.remove(culprit.get_ref().as_ref());
        meta.rejected.push(name);
    }
}

/// True when `span` lies within `value` or anything inside it (a table from a `[header]` spans only the header).
fn contains(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> bool {
    let own = value.span();
    if own.start <= span.start && span.end <= own.end {
        return true;
    }
    match value.get_ref() {
        DeValue::Table(table) => table.iter().any(|(k, v)| k.span() == *span || contains(v, span)),
        DeValue::Array(array) => array.iter().any(|v| contains(v, span)),
        _ => false,
    }
}

fn keys_expected(keys: &[KeyInfo], name: &str) -> Option<&'static str> {
    keys.iter().find(|k| k.name == name).map(|k| k.expected)
}

/// "unknown key `x`; did you mean `y`? <what>: a, b, c".
fn unknown_key_message(name: &str, keys: &[KeyInfo], what: &str) -> String {
    let mut message = format!("unknown key `{name}`");
    let best = keys
        .iter()
        .map(|k| (edit_distance(name, k.name), k.name))
        .filter(|&(d, k)| d <= 2.max(k.len() / 4))
        .min_by_key(|&(d, _)| d);
    if let Some((_, suggestion)) = best {
        message.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    let list: Vec<&str> = keys.iter().map(|k| k.name).collect();
    message.push_str(&format!("; {what}: {}", list.join(", ")));
    message
}

/// Levenshtein distance, for typo suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// From serde's "invalid type: string \"five\", expected i64", the part saying what was found, in TOML terms.
fn type_mismatch(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: ")?;
    let found = rest.split_once(", expected").map_or(rest, |(found, _)| found);
    let found = match found {
        "map" => "a table".to_owned(),
        "sequence" => "an array".to_owned(),
        other => other.replace("floating point", "float"),
    };
    Some(found)
}

fn found_de(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer `{i}`"),
        DeValue::Float(f) => format!("float `{f}`"),
        DeValue::Boolean(b) => format!("boolean `{b}`"),
        DeValue::Datetime(d) => format!("datetime `{d}`"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("intervall", "interval"), 1);
        assert_eq!(edit_distance("taget", "target"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn type_mismatch_rewords_serde() {
        assert_eq!(type_mismatch("invalid type: string \"five\", expected i64").as_deref(), Some("string \"five\""));
        assert_eq!(type_mismatch("invalid type: map, expected a string").as_deref(), Some("a table"));
        assert_eq!(type_mismatch("invalid type: floating point `1.5`, expected i64").as_deref(), Some("float `1.5`"));
        assert_eq!(type_mismatch("something else"), None);
    }

    /// Every key listed in the tables is a field of the struct (no "unknown key" for it), and each struct field
    /// is listed (deserializing a document with every listed key reads every field).
    #[test]
    fn key_tables_match_the_structs() {
        let check_doc = r#"
            name = "a"
            kind = "icmp"
            phases = ["commissioning"]
            required = true
            timeout = "1s"
            target = "x"
            count = 1
            interval = "1s"
            size = 1
            dont_fragment = true
            ttl = 1
            fallback_tcp = "x"
            send = "x"
            expect_banner = "x"
            min = 1
            max = 1
            query = "x"
            record = "A"
            server = "x"
            transport = "udp"
            servers = ["x"]
            server_name = "x"
            min_version = "1.2"
            max_version = "1.3"
            ca_file = "x"
            verify = true
            client_cert = "x"
            client_key = "x"
            url = "x"
            method = "x"
            headers = { a = "b" }
            body = "x"
            proxy = "x"
            follow_redirects = true
            max_redirects = 1
            body_limit = 1
            ip = "4"
            source = "x"
            expect_failure = true
            retries = 1
            retry_interval = "1s"
            depends_on = ["x"]
            block_preexisting = true
            [compare]
            rtt_p95_max_increase = "1ms"
            loss_max_increase = 0.1
            answers_unchanged = true
            cert_unchanged = true
            status_unchanged = true
            [expect]
            loss_max = 0.5
            rtt_mean_max = "1s"
            rtt_p95_max = "1s"
            jitter_max = "1s"
            connect_max = "1s"
            rcode = "x"
            min_answers = 1
            answers_include = ["x"]
            answers_exactly = ["x"]
            answers_match = "x"
            answers_exclude = ["x"]
            answers_in = ["x"]
            valid_days_min = 1
            names_include = ["x"]
            min_version = "1.2"
            issuer_matches = "x"
            chain_valid_days_min = 1
            fingerprint_sha256 = "x"
            status = [200, "2xx"]
            body_matches = "x"
            body_not_matches = "x"
            header_matches = { a = "b" }
            latency_max = "1s"
            path_mtu_min = 1
            egress_in = ["x"]
        "#;
        let check: RawCheck = toml::from_str(check_doc).expect("every listed key is a RawCheck field");
        let expect = check.expect.as_ref().expect("expect read");
        // Debug output shows every field; none may be None.
        let shown = format!("{check:?}");
        let unset = shown.matches(": None").count();
        assert_eq!(
            unset, 0,
            "a RawCheck or RawExpect field is missing from the document (and so from the key table?): {shown}"
        );
        for info in CHECK_KEYS {
            assert!(
                check_doc.contains(&format!("\n            {} = ", info.name))
                    || ["expect", "compare"].contains(&info.name),
                "{}",
                info.name
            );
        }
        for info in EXPECT_KEYS {
            assert!(check_doc.contains(&format!("\n            {} = ", info.name)), "{}", info.name);
        }
        for info in COMPARE_KEYS {
            assert!(check_doc.contains(&format!("\n            {} = ", info.name)), "{}", info.name);
        }
        let compare = check.compare.as_ref().expect("compare read");
        assert_eq!(format!("{compare:?}").matches(": Some(").count(), COMPARE_KEYS.len(), "a field is not listed");
        assert!(expect.get_ref().loss_max.is_some());
    }

    /// As `key_tables_match_the_structs`, for the other tables: `doc` sets every key of `keys`, each is a field of
    /// `T`, and every field of `T` is read.
    fn assert_keys_match<T: DeserializeOwned + std::fmt::Debug>(doc: &str, keys: &[KeyInfo]) {
        let value: T = toml::from_str(doc).unwrap_or_else(|e| panic!("every listed key is a field: {e}"));
        let shown = format!("{value:?}");
        assert_eq!(shown.matches(": None").count(), 0, "a field is missing from the document: {shown}");
        for info in keys {
            assert!(doc.lines().any(|l| l.starts_with(&format!("{} = ", info.name))), "{}", info.name);
        }
        assert_eq!(doc.lines().filter(|l| !l.is_empty()).count(), keys.len(), "a key of the document is not listed");
    }

    #[test]
    fn serve_key_tables_match_the_structs() {
        assert_keys_match::<RawSite>("name = \"a\"\nods_code = \"b\"", SITE_KEYS);
        assert_keys_match::<RawDefaults>("timeout = \"1s\"\nconcurrency = 1", DEFAULTS_KEYS);
        assert_keys_match::<RawPhase>(
            "description = \"a\"\nevery = \"1m\"\nsettle = \"1s\"\nbaseline = \"b\"",
            PHASE_KEYS,
        );
        assert_keys_match::<RawGate>("description = \"a\"\nrequires = [\"b\"]\nmax_age = \"4h\"", GATE_KEYS);
        assert_keys_match::<RawEvidence>("signing_key = \"a\"", EVIDENCE_KEYS);
        assert_keys_match::<RawApi>(
            "listen = \"a\"\ntls_cert = \"b\"\ntls_key = \"c\"\nclient_ca = \"d\"\ninsecure = true",
            API_KEYS,
        );
        assert_keys_match::<RawToken>("name = \"a\"\nsha256 = \"b\"\nroles = [\"read\"]", TOKEN_KEYS);
        assert_keys_match::<RawStorage>("state_dir = \"/a\"\nkeep_runs = 1", STORAGE_KEYS);
        assert_keys_match::<RawMetrics>("listen = \"a\"", METRICS_KEYS);
    }

    #[test]
    fn top_keys_are_the_raw_config_fields() {
        let shown = format!("{:?}", RawConfig::default());
        for info in TOP_KEYS {
            assert!(shown.contains(&format!(" {}: ", info.name)), "{} is not a RawConfig field: {shown}", info.name);
        }
        assert_eq!(shown.matches(": ").count(), TOP_KEYS.len(), "a RawConfig field is not in TOP_KEYS: {shown}");
    }
}
