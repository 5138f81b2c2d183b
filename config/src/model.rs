//! Validated configuration: what the agent runs from. Every value here has been checked; defaults applied.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The phases every plan knows without declaring them, in migration order.
pub const STANDARD_PHASES: [&str; 5] =
    ["commissioning", "pre-migration", "post-migration", "regression", "rollback-verify"];

/// Default per-check timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// 1-based line of the `[[check]]` header, for messages.
    pub line: usize,
    pub spec: CheckSpec,
}

/// Kind-specific parameters and expectations. Closed; matched exhaustively by the agent's plan.
#[derive(Debug, Clone)]
pub enum CheckSpec {
    Icmp(IcmpCheck),
    Tcp(TcpCheck),
    Dns(DnsCheck),
    Tls(TlsCheck),
    Http(HttpCheck),
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
    pub expect: IcmpExpect,
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
    pub expect: TcpExpect,
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
    /// `None`: the system resolver.
    pub server: Option<SocketAddr>,
    /// `"udp"` or `"tcp"`.
    pub transport: String,
    pub expect: DnsExpect,
}

#[derive(Debug, Clone)]
pub struct DnsExpect {
    /// Upper-case mnemonic; default `NOERROR`.
    pub rcode: String,
    /// Default: 1 when `rcode` is NOERROR, else 0.
    pub min_answers: usize,
    /// Each must be among the answers (compared case-insensitively, trailing dots ignored).
    pub answers_include: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TlsCheck {
    pub host: String,
    pub port: u16,
    /// SNI and name to verify; default `host`.
    pub server_name: String,
    pub ca_file: Option<PathBuf>,
    pub verify: bool,
    pub expect: TlsExpect,
}

/// A TLS check passes when the handshake completes, the chain verifies (unless `verify = false`) and the
/// expectations hold.
#[derive(Debug, Clone, Default)]
pub struct TlsExpect {
    /// The leaf must stay valid at least this many more days.
    pub valid_days_min: Option<u32>,
    /// Each must be covered by the leaf's names (wildcards honoured).
    pub names_include: Vec<String>,
    /// `"1.2"` or `"1.3"`.
    pub min_version: Option<String>,
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
    /// Proxy URL (http, https or socks5).
    pub proxy: Option<String>,
    /// Default true.
    pub follow_redirects: bool,
    pub body_limit: usize,
    pub expect: HttpExpect,
}

#[derive(Debug, Clone, Default)]
pub struct HttpExpect {
    /// Accepted status codes; empty: any 2xx.
    pub status: Vec<u16>,
    pub body_matches: Option<regex::Regex>,
    /// Bound on the total time of the exchange.
    pub latency_max: Option<Duration>,
}
