//! Validated configuration: what the agent runs from. Every value here has been checked; defaults applied.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The phases every plan knows without declaring them, in migration order.
pub const STANDARD_PHASES: [&str; 5] =
    ["commissioning", "pre-migration", "post-migration", "regression", "rollback-verify"];

/// Default per-check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The phase a standard phase of [`COMPARED_PHASES`] is compared with when its table sets no `baseline`.
pub const DEFAULT_BASELINE: &str = "pre-migration";
/// The standard phases compared with [`DEFAULT_BASELINE`] unless they set a `baseline` of their own.
pub const COMPARED_PHASES: [&str; 3] = ["post-migration", "regression", "rollback-verify"];
/// Default `max_age` of a gate.
pub const DEFAULT_GATE_MAX_AGE: Duration = Duration::from_secs(4 * 3600);
/// Default number of checks run at once.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Default ICMP echo count.
pub const DEFAULT_ICMP_COUNT: u32 = 5;
/// Default time between two ICMP echoes.
pub const DEFAULT_ICMP_INTERVAL: Duration = Duration::from_millis(200);
/// Default ICMP payload size (as iputils ping).
pub const DEFAULT_ICMP_SIZE: usize = 56;
/// Default HTTP body read limit.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default time between two attempts of a check with `retries`.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Default number of HTTP redirects followed.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;
/// Default smallest packet size an mtu check tries towards an IPv4 (or named) target: the IPv4 minimum
/// reassembly size every host accepts (RFC 791).
pub const DEFAULT_MTU_MIN_V4: u16 = 576;
/// Default smallest packet size an mtu check tries towards an IPv6 literal target: the IPv6 minimum link MTU
/// (RFC 8200).
pub const DEFAULT_MTU_MIN_V6: u16 = 1280;

/// A whole, valid configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub site: Site,
    pub defaults: Defaults,
    /// Declared and standard phases, by name.
    pub phases: BTreeMap<String, Phase>,
    /// Checks in file order.
    pub checks: Vec<Check>,
    /// The HTTPS API of `gonogo serve`; `None` when the file has no `[api]` table (serve then refuses to start).
    pub api: Option<Api>,
    /// API bearer tokens, kept as SHA-256 hashes only, in file order. Names and hashes are unique.
    pub tokens: Vec<Token>,
    /// Where runs are kept; defaults when the file has no `[storage]` table.
    pub storage: Storage,
    /// Optional extra plain-HTTP listener serving `/metrics` only, for a local Prometheus.
    pub metrics: Option<MetricsListener>,
    /// `[gate.NAME]` tables, by name: the phases whose latest runs decide a go/no-go point.
    pub gates: BTreeMap<String, Gate>,
    /// `[evidence]`: how the journal is protected; defaults when the file has no `[evidence]` table.
    pub evidence: Evidence,
}

impl Config {
    /// The checks that belong to `phase`, in file order.
    pub fn checks_in<'a>(&'a self, phase: &'a str) -> impl Iterator<Item = &'a Check> + 'a {
        self.checks.iter().filter(move |c| c.phases.iter().any(|p| p == phase))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Site {
    pub name: Option<String>,
    /// NHS ODS code of the organisation.
    pub ods_code: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Defaults {
    pub timeout: Duration,
    pub concurrency: usize,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults { timeout: DEFAULT_TIMEOUT, concurrency: DEFAULT_CONCURRENCY }
    }
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub description: Option<String>,
    /// True for the five standard phases (declared or not).
    pub standard: bool,
    /// Run this phase periodically under `gonogo serve` (jittered), so Prometheus sees fresh values.
    /// From 10s to 7 days; `None`: only on demand.
    pub every: Option<Duration>,
    /// Wait this long after the phase is started before its first check runs (`settle`), e.g. for routes to
    /// converge after a cut-over. From 1s to 1h; `None`: start at once.
    pub settle: Option<Duration>,
    /// The phase whose latest finished run a run of this phase is compared with (`baseline`): each check is
    /// then `ok`, `regression`, `pre-existing`, `fixed` or `new`, and drift beyond its [`Check::compare`]
    /// tolerances is reported. A known phase (standard or declared), never the phase itself; a baseline that
    /// has a baseline of its own is fine.
    ///
    /// Default: [`DEFAULT_BASELINE`] (`"pre-migration"`) for the standard phases of [`COMPARED_PHASES`]
    /// (post-migration, regression and rollback-verify) when their table sets none or they have no table;
    /// `None` (not compared) for every other phase.
    pub baseline: Option<String>,
}

/// `[gate.NAME]`: a go/no-go point. It is GO when the latest finished run of every required phase is GO and
/// no older than `max_age`.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Lowercase letters, digits, '-' and '_' (as check names), such as `go-live`.
    pub name: String,
    /// Shown in reports and the API.
    pub description: Option<String>,
    /// The phases whose runs the gate relies on (`requires`): at least one, each a known phase (standard or
    /// declared), no duplicates, in file order.
    pub requires: Vec<String>,
    /// A run older than this does not count (`max_age`, 1m to 30d, default [`DEFAULT_GATE_MAX_AGE`], 4h).
    pub max_age: Duration,
}

/// `[evidence]`: protection of the journal.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// PEM (PKCS#8) Ed25519 private key that signs every journal entry (`signing_key`, made by
    /// `gonogo keygen`). A relative path in the file is resolved against the config file's directory. Not read
    /// during validation: the agent reports an unreadable or malformed key, with its path, when it starts.
    /// `None`: entries are hash-chained but not signed.
    pub signing_key: Option<PathBuf>,
}

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/gonogo";
/// Default number of runs kept.
pub const DEFAULT_KEEP_RUNS: usize = 500;

/// `[api]`: where and how `gonogo serve` listens.
#[derive(Debug, Clone)]
pub struct Api {
    /// An IP address and port (no host names). Port 0 picks a free port (the bound address is logged and written
    /// to `state_dir/api.addr`).
    pub listen: std::net::SocketAddr,
    /// `None` only with `insecure = true` or on a loopback address (plain HTTP).
    pub tls: Option<ApiTls>,
    /// Allow plain HTTP on a non-loopback address.
    pub insecure: bool,
}

/// TLS material of the API: PEM files.
///
/// A relative path in the file is resolved against the config file's directory, so these paths are absolute
/// whenever the config file's path is. The files are not read during validation: `gonogo serve` reports an
/// unreadable or malformed file, with its path, when it starts.
#[derive(Debug, Clone)]
pub struct ApiTls {
    /// The server certificate, followed by any intermediates (`tls_cert`).
    pub cert: PathBuf,
    /// The certificate's private key (`tls_key`).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Read plan, runs, metrics.
    Read,
    /// Start and cancel runs, reload the config.
    Trigger,
    /// Record sign-off decisions.
    Signoff,
}

impl Role {
    /// Every role, in the order they are listed in messages.
    pub const ALL: [Role; 3] = [Role::Read, Role::Trigger, Role::Signoff];

    /// The role's name in the file: `read`, `trigger` or `signoff`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Trigger => "trigger",
            Role::Signoff => "signoff",
        }
    }

    /// The role named `name` (exactly as [`Role::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// `[[token]]`: a bearer token, stored as the SHA-256 of its text.
#[derive(Debug, Clone)]
pub struct Token {
    /// Unique among tokens; lowercase letters, digits, '-' and '_'. Shown in logs and the journal.
    pub name: String,
    /// SHA-256 of the token text (the bearer credential itself is never in the file).
    pub sha256: [u8; 32],
    /// At least one, no duplicates, in file order.
    pub roles: Vec<Role>,
}

/// `[storage]`.
#[derive(Debug, Clone)]
pub struct Storage {
    /// Runs, journal and `api.addr` live here. Always an absolute path.
    pub state_dir: PathBuf,
    /// How many runs to keep (oldest deleted first); 1 to 100000.
    pub keep_runs: usize,
}

impl Default for Storage {
    fn default() -> Self {
        Storage { state_dir: PathBuf::from(DEFAULT_STATE_DIR), keep_runs: DEFAULT_KEEP_RUNS }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone)]
pub struct MetricsListener {
    /// An IP address and port, never the same as a non-zero `[api] listen`.
    pub listen: std::net::SocketAddr,
}

/// One named test.
#[derive(Debug, Clone)]
pub struct Check {
    /// Unique; lowercase letters, digits, '-' and '_'.
    pub name: String,
    pub phases: Vec<String>,
    /// Required checks gate the verdict; advisory ones (false) only warn.
    pub required: bool,
    /// The check's own timeout, or the default.
    pub timeout: Duration,
    /// The check is expected to fail (`expect_failure`): it passes when its probe's expectations are NOT met,
    /// e.g. a legacy gateway that must be unreachable after migration. An `error` outcome (the agent could not
    /// measure) stays an error. Default false.
    pub expect_failure: bool,
    /// Further attempts after a failed one (`retries`, 0 to 100, default 0): the check passes when any attempt
    /// passes. Attempts stop at the first pass.
    pub retries: u32,
    /// Time between two attempts (`retry_interval`, 10ms to 10m, default 1s).
    pub retry_interval: Duration,
    /// Names of checks that must pass before this one runs (`depends_on`), in file order. Each names another
    /// existing check that belongs to every phase this check belongs to; the graph has no cycles.
    pub depends_on: Vec<String>,
    /// Which address family to use (`ip`); always [`IpMode::Any`] for kinds the key does not apply to (dns).
    pub ip: IpMode,
    /// Local address to send from (`source`), e.g. the agent's address on the commissioning test port.
    /// Matches `ip` (an IPv4 source with `ip = "4"`, …); never set with `both` or `all`.
    pub source: Option<IpAddr>,
    /// 1-based line of the `[[check]]` header, for messages.
    pub line: usize,
    pub spec: CheckSpec,
    /// Drift from the baseline run that fails the check (`[check.compare]` or `compare = { … }`). Only keys of
    /// the check's kind are accepted, and only on a check in at least one phase with a
    /// [`Phase::baseline`]. Default: none (only the pass/fail transition is compared).
    pub compare: Compare,
    /// A failure already present in the baseline run blocks the verdict too (`block_preexisting`, default
    /// false: such a pre-existing failure is a warning, not a NO-GO).
    pub block_preexisting: bool,
}

/// Tolerances of a check against the same check in the baseline run; each is `None`/false when not set.
#[derive(Debug, Clone, Default)]
pub struct Compare {
    /// The 95th percentile RTT may rise at most this much over the baseline's (`rtt_p95_max_increase`, such as
    /// `"20ms"` or `"25%"`). icmp and tcp (connect time) only.
    pub rtt_p95_max_increase: Option<Increase>,
    /// The loss ratio may rise at most this much over the baseline's (`loss_max_increase`, 0.0 to 1.0). icmp
    /// only.
    pub loss_max_increase: Option<f64>,
    /// The set of answers must equal the baseline's (`answers_unchanged`). dns only.
    pub answers_unchanged: bool,
    /// The leaf certificate's SHA-256 fingerprint must equal the baseline's (`cert_unchanged`). tls only.
    pub cert_unchanged: bool,
    /// The HTTP status code must equal the baseline's (`status_unchanged`). http only.
    pub status_unchanged: bool,
}

impl Compare {
    /// True when no tolerance is set.
    pub fn is_empty(&self) -> bool {
        self.rtt_p95_max_increase.is_none()
            && self.loss_max_increase.is_none()
            && !self.answers_unchanged
            && !self.cert_unchanged
            && !self.status_unchanged
    }
}

/// How much a value may rise over the baseline's: `"20ms"` or `"25%"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Increase {
    /// A fixed amount (more than zero).
    Absolute(Duration),
    /// A percentage of the baseline value: `"25%"` is `Percent(25.0)`; more than 0, at most 1000.
    Percent(f64),
}

impl Increase {
    /// The largest value accepted when the baseline measured `baseline` (saturating at [`Duration::MAX`]).
    pub fn ceiling(self, baseline: Duration) -> Duration {
        let increase = match self {
            Increase::Absolute(d) => d,
            Increase::Percent(p) => {
                Duration::try_from_secs_f64(baseline.as_secs_f64() * p / 100.0).unwrap_or(Duration::MAX)
            }
        };
        baseline.saturating_add(increase)
    }
}

/// As written in the file: `20ms`, `1s 500ms`, `25%`, `12.5%`.
impl std::fmt::Display for Increase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Increase::Absolute(d) => write!(f, "{}", humantime::format_duration(*d)),
            Increase::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `ip = …`: the address family a check uses when its target is a name (or has addresses of both families).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpMode {
    /// `"any"` (default): the first address the resolver returns, of either family.
    #[default]
    Any,
    /// `"4"`: IPv4 only.
    V4,
    /// `"6"`: IPv6 only.
    V6,
    /// `"both"`: once over IPv4 and once over IPv6; both must pass.
    Both,
    /// `"all"`: every address the target resolves to; each must pass.
    All,
}

impl IpMode {
    /// Every mode, in the order they are listed in messages.
    pub const ALL: [IpMode; 5] = [IpMode::Any, IpMode::V4, IpMode::V6, IpMode::Both, IpMode::All];

    /// The mode's value in the file: `any`, `4`, `6`, `both` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            IpMode::Any => "any",
            IpMode::V4 => "4",
            IpMode::V6 => "6",
            IpMode::Both => "both",
            IpMode::All => "all",
        }
    }

    /// The mode written `name` (exactly as [`IpMode::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<IpMode> {
        IpMode::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// Kind-specific parameters and expectations. Closed; matched exhaustively by the agent's plan.
///
/// The `Default` of each kind's struct holds what the file's keys default to, with an empty target (for tests
/// and for building checks with `..Default::default()`).
#[derive(Debug, Clone)]
pub enum CheckSpec {
    Icmp(IcmpCheck),
    Tcp(TcpCheck),
    Dns(DnsCheck),
    Tls(TlsCheck),
    Http(HttpCheck),
    /// Path MTU discovery towards a target.
    Mtu(MtuCheck),
    /// The public (NAT) address the site's traffic leaves from, as a "what is my address" service sees it.
    Egress(EgressCheck),
}

impl CheckSpec {
    /// The `kind = "…"` string.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Icmp(_) => "icmp",
            CheckSpec::Tcp(_) => "tcp",
            CheckSpec::Dns(_) => "dns",
            CheckSpec::Tls(_) => "tls",
            CheckSpec::Http(_) => "http",
            CheckSpec::Mtu(_) => "mtu",
            CheckSpec::Egress(_) => "egress",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IcmpCheck {
    /// IP address or host name.
    pub target: String,
    pub count: u32,
    pub interval: Duration,
    /// Payload bytes.
    pub size: usize,
    /// Set the Don't Fragment bit (IPv4; IPv6 never fragments in transit), so an echo larger than the path MTU
    /// is lost instead of fragmented. Default false.
    pub dont_fragment: bool,
    /// IP time to live (hop limit for IPv6), 1 to 255; `None`: the system default.
    pub ttl: Option<u8>,
    /// When no echo is answered, try a TCP connect to this `(host, port)` instead (`fallback_tcp = "host:port"`),
    /// to tell "ICMP filtered" from "host down".
    pub fallback_tcp: Option<(String, u16)>,
    pub expect: IcmpExpect,
}

impl Default for IcmpCheck {
    fn default() -> Self {
        IcmpCheck {
            target: String::new(),
            count: DEFAULT_ICMP_COUNT,
            interval: DEFAULT_ICMP_INTERVAL,
            size: DEFAULT_ICMP_SIZE,
            dont_fragment: false,
            ttl: None,
            fallback_tcp: None,
            expect: IcmpExpect::default(),
        }
    }
}

/// Without any expectation an ICMP check passes when at least one echo is answered.
#[derive(Debug, Clone, Default)]
pub struct IcmpExpect {
    /// 0.0–1.0.
    pub loss_max: Option<f64>,
    pub rtt_mean_max: Option<Duration>,
    pub rtt_p95_max: Option<Duration>,
    pub jitter_max: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct TcpCheck {
    /// Host name or IP address (brackets removed for IPv6).
    pub host: String,
    pub port: u16,
    pub count: u32,
    /// Text written after connecting (`send`; TOML escapes such as `\r\n` work). Never empty.
    pub send: Option<String>,
    /// Regex the first bytes read after connecting (and after `send`) must match (`expect_banner`, a check-level
    /// key like blackbox_exporter's `query_response`), e.g. `^SSH-2\.0-`.
    pub expect_banner: Option<regex::Regex>,
    pub expect: TcpExpect,
}

impl Default for TcpCheck {
    fn default() -> Self {
        TcpCheck {
            host: String::new(),
            port: 0,
            count: 1,
            send: None,
            expect_banner: None,
            expect: TcpExpect::default(),
        }
    }
}

/// A TCP check passes when every connect attempt succeeds and the expectations hold.
#[derive(Debug, Clone, Default)]
pub struct TcpExpect {
    /// Bound on the slowest successful connect.
    pub connect_max: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct DnsCheck {
    pub query: String,
    /// Upper-case record type: A AAAA CNAME MX TXT NS SOA PTR SRV.
    pub record: String,
    /// Resolvers to ask, in file order, without duplicates: from `server = "ip:port"` (the v1 key, one server)
    /// or `servers = ["ip:port", …]`. Empty: the system resolver.
    pub servers: Vec<SocketAddr>,
    /// `"udp"` or `"tcp"`.
    pub transport: String,
    pub expect: DnsExpect,
}

impl Default for DnsCheck {
    fn default() -> Self {
        DnsCheck {
            query: String::new(),
            record: "A".to_owned(),
            servers: Vec::new(),
            transport: "udp".to_owned(),
            expect: DnsExpect::default(),
        }
    }
}

/// Without any expectation a DNS check passes when the response code is NOERROR with at least one answer
/// (the `Default`). Answers are compared case-insensitively, trailing dots ignored.
#[derive(Debug, Clone)]
pub struct DnsExpect {
    /// Upper-case mnemonic; default `NOERROR`.
    pub rcode: String,
    /// Default: 1 when `rcode` is NOERROR, else 0.
    pub min_answers: usize,
    /// Each must be among the answers.
    pub answers_include: Vec<String>,
    /// When not empty, the set of answers must equal this set (order ignored). No duplicates.
    pub answers_exactly: Vec<String>,
    /// Every answer must match this regex.
    pub answers_match: Option<regex::Regex>,
    /// None of these may be among the answers (e.g. a public address where a private one is expected).
    pub answers_exclude: Vec<String>,
    /// Every answer must be an address inside one of these networks. Only for record A and AAAA.
    pub answers_in: Vec<ipnet::IpNet>,
}

impl Default for DnsExpect {
    fn default() -> Self {
        DnsExpect {
            rcode: "NOERROR".to_owned(),
            min_answers: 1,
            answers_include: Vec::new(),
            answers_exactly: Vec::new(),
            answers_match: None,
            answers_exclude: Vec::new(),
            answers_in: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsCheck {
    pub host: String,
    pub port: u16,
    /// SNI and name to verify; default `host`.
    pub server_name: String,
    pub ca_file: Option<PathBuf>,
    pub verify: bool,
    /// PEM client certificate (chain) to present (`client_cert`); set together with `client_key`. A relative path
    /// in the file is resolved against the config file's directory. Not read during validation.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert` (`client_key`), resolved as `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Lowest TLS version offered (`min_version`, a check-level key): `"1.2"` or `"1.3"`; `None`: the library's.
    pub min_version: Option<String>,
    /// Highest TLS version offered (`max_version`): `"1.2"` or `"1.3"`, never below `min_version`.
    pub max_version: Option<String>,
    pub expect: TlsExpect,
}

impl Default for TlsCheck {
    fn default() -> Self {
        TlsCheck {
            host: String::new(),
            port: 0,
            server_name: String::new(),
            ca_file: None,
            verify: true,
            client_cert: None,
            client_key: None,
            min_version: None,
            max_version: None,
            expect: TlsExpect::default(),
        }
    }
}

/// A TLS check passes when the handshake completes, the chain verifies (unless `verify = false`) and the
/// expectations hold.
#[derive(Debug, Clone, Default)]
pub struct TlsExpect {
    /// The leaf must stay valid at least this many more days.
    pub valid_days_min: Option<u32>,
    /// Each must be covered by the leaf's names (wildcards honoured).
    pub names_include: Vec<String>,
    /// The NEGOTIATED version must be at least this: `"1.2"` or `"1.3"`.
    pub min_version: Option<String>,
    /// The issuer of the leaf (its distinguished name, as text such as `CN=…, O=…`) must match this regex.
    pub issuer_matches: Option<regex::Regex>,
    /// Every certificate of the presented chain must stay valid at least this many more days.
    pub chain_valid_days_min: Option<u32>,
    /// The SHA-256 of the leaf certificate (DER): 64 lowercase hex digits, no separators (the file may use ':').
    pub fingerprint_sha256: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// Absolute http or https URL.
    pub url: String,
    /// Upper-case method.
    pub method: String,
    /// In file order.
    pub headers: Vec<(String, String)>,
    pub ca_file: Option<PathBuf>,
    pub verify: bool,
    /// How to reach the server: directly, through a proxy URL, or as the environment says.
    pub proxy: Proxy,
    /// Default true.
    pub follow_redirects: bool,
    /// Redirects followed at most (`max_redirects`, 0 to 50, default 10); meaningful only with
    /// `follow_redirects`.
    pub max_redirects: u32,
    pub body_limit: usize,
    /// Request body (`body`); only with a method other than GET and HEAD.
    pub body: Option<String>,
    /// PEM client certificate (chain) to present, resolved as [`TlsCheck::client_cert`]; with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    pub expect: HttpExpect,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            url: String::new(),
            method: "GET".to_owned(),
            headers: Vec::new(),
            ca_file: None,
            verify: true,
            proxy: Proxy::None,
            follow_redirects: true,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            body_limit: DEFAULT_BODY_LIMIT,
            body: None,
            client_cert: None,
            client_key: None,
            expect: HttpExpect::default(),
        }
    }
}

/// `proxy = …` of an http or egress check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Proxy {
    /// No `proxy` key: connect directly (the environment's proxy variables are ignored).
    #[default]
    None,
    /// `proxy = "http://…"`, `"https://…"` or `"socks5://…"`.
    Url(String),
    /// `proxy = "env"`: the usual `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` environment variables (and their
    /// lowercase forms) of the agent's process.
    Env,
}

#[derive(Debug, Clone, Default)]
pub struct HttpExpect {
    /// Accepted status codes as inclusive ranges (`200` is `(200, 200)`, `"2xx"` is `(200, 299)`,
    /// `"300-399"` is `(300, 399)`), in file order; empty: any 2xx.
    pub status: Vec<(u16, u16)>,
    pub body_matches: Option<regex::Regex>,
    /// The body must NOT match this regex (e.g. a maintenance page).
    pub body_not_matches: Option<regex::Regex>,
    /// Each response header named (lowercase) must be present and its value match the regex, in file order.
    pub header_matches: Vec<(String, regex::Regex)>,
    /// Bound on the total time of the exchange.
    pub latency_max: Option<Duration>,
}

/// Path MTU discovery: the largest packet that crosses the path to `target` unfragmented, searched between
/// `min` and `max` with Don't Fragment set.
#[derive(Debug, Clone, Default)]
pub struct MtuCheck {
    /// IP address or host name (no port).
    pub target: String,
    /// Smallest packet size (bytes, IP header included) tried: 68 to 65535; default 1280 for an IPv6 literal
    /// target ([`DEFAULT_MTU_MIN_V6`]), else 576 ([`DEFAULT_MTU_MIN_V4`]).
    pub min: u16,
    /// Largest size tried, above `min`; `None`: the MTU of the outgoing interface, found at run time.
    pub max: Option<u16>,
    pub expect: MtuExpect,
}

/// Without an expectation an mtu check passes when a path MTU of at least `min` is found.
#[derive(Debug, Clone, Default)]
pub struct MtuExpect {
    /// The path MTU found must be at least this (e.g. 1500 to rule out a tunnel eating into it).
    pub path_mtu_min: Option<u16>,
}

/// The egress (NAT) address of the site, asked from a "what is my address" service over HTTP(S).
#[derive(Debug, Clone)]
pub struct EgressCheck {
    /// Absolute http or https URL of a service that answers with the caller's address as text.
    pub url: String,
    pub ca_file: Option<PathBuf>,
    /// Verify the service's certificate (default true).
    pub verify: bool,
    pub proxy: Proxy,
    pub expect: EgressExpect,
}

impl Default for EgressCheck {
    fn default() -> Self {
        EgressCheck {
            url: String::new(),
            ca_file: None,
            verify: true,
            proxy: Proxy::None,
            expect: EgressExpect::default(),
        }
    }
}

/// An egress check passes when the address the service reports lies in one of `egress_in`.
#[derive(Debug, Clone, Default)]
pub struct EgressExpect {
    /// The site's NAT range(s); required, never empty.
    pub egress_in: Vec<ipnet::IpNet>,
}
