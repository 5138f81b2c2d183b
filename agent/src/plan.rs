//! The plan: where config meets probes. Selects the checks of a phase and builds their probes.
//!
//! The one place that matches [`CheckSpec`] exhaustively: a new probe kind is added here, in the config
//! model and in the verdict engine, and the compiler finds every spot.
//!
//! A check becomes one or more *units* at run time: one probe normally; one per address family
//! (`ip = "both"`) or per resolved address (`ip = "all"`), each pinned to its address; one per DNS server
//! (`servers = […]`). Names are resolved when the check runs, not when it is planned, so a retry sees DNS
//! changes.
//!
//! Probes are built once per config, not per run: [`Probes`] keeps each check's probe (its HTTP client, TLS
//! roots and client identity, parsed URL) for every later run and `GET /probe`, and rebuilds it only when a
//! file it names (`ca_file`, `client_cert`, `client_key`) has changed on disk, so a rotated certificate is
//! picked up as before, without a reload.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use gonogo_config::{Check, CheckSpec, Config, IpMode, Proxy};
use gonogo_probes::dns::{DnsParams, DnsProbe, RecordType, Transport};
use gonogo_probes::egress::{EgressParams, EgressProbe};
use gonogo_probes::http::{HttpParams, HttpProbe};
use gonogo_probes::icmp::{IcmpClients, IcmpParams, IcmpProbe};
use gonogo_probes::mtu::{MtuParams, MtuProbe};
use gonogo_probes::tcp::{TcpParams, TcpProbe};
use gonogo_probes::tls::{TlsParams, TlsProbe};
use gonogo_probes::{Probe, ProbeError};

/// Why a phase cannot be planned: a usage error (exit code 3), never a verdict.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown phase {phase:?}; phases in {file}: {known}")]
    UnknownPhase { phase: String, file: String, known: String },
    #[error("phase {phase:?} has no checks in {file}; phases with checks: {with_checks}")]
    EmptyPhase { phase: String, file: String, with_checks: String },
    #[error("no check named {name:?} in phase {phase:?}; its checks: {available}")]
    UnknownCheck { name: String, phase: String, available: String },
}

/// The checks of one phase run, and what their probes share.
#[derive(Debug)]
pub struct Plan {
    pub checks: Vec<Arc<Check>>,
    /// The probes of the config the checks come from.
    pub probes: Arc<Probes>,
    /// The phase's settle window: failing checks are re-run until they pass or it ends.
    pub settle: Option<Duration>,
}

/// The checks of `phase` (all, or only those named in `only`), in file order; `probes` must be those of
/// `config` (see [`Probes`]).
pub fn plan(config: &Config, phase: &str, only: &[String], probes: &Arc<Probes>) -> Result<Plan, PlanError> {
    let file = config.path.display().to_string();
    let Some(phase_cfg) = config.phases.get(phase) else {
        return Err(PlanError::UnknownPhase {
            phase: phase.to_owned(),
            file,
            known: config.phases.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    };
    let in_phase: Vec<&Check> = config.checks_in(phase).collect();
    if in_phase.is_empty() {
        let with_checks: Vec<&str> =
            config.phases.keys().filter(|p| config.checks_in(p).next().is_some()).map(String::as_str).collect();
        return Err(PlanError::EmptyPhase {
            phase: phase.to_owned(),
            file,
            with_checks: if with_checks.is_empty() { "none".to_owned() } else { with_checks.join(", ") },
        });
    }
    for name in only {
        if !in_phase.iter().any(|c| &c.name == name) {
            return Err(PlanError::UnknownCheck {
                name: name.clone(),
                phase: phase.to_owned(),
                available: in_phase.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
    }
    Ok(Plan {
        checks: in_phase
            .into_iter()
            .filter(|c| only.is_empty() || only.contains(&c.name))
            .map(|c| Arc::new(c.clone()))
            .collect(),
        probes: Arc::clone(probes),
        settle: phase_cfg.settle,
    })
}

/// One probe of a check, or the reason it could not be built (no address of a family).
#[derive(Debug)]
pub struct Unit {
    /// `None` for a check that is a single unit; `IPv6 ::1`, `server 10.0.0.53:53` otherwise.
    pub label: Option<String>,
    pub work: Work,
}

#[derive(Debug)]
pub enum Work {
    Probe(Arc<dyn Probe>),
    /// The check must cover something that is not there (`ip = "both"` and the name has no IPv6 address).
    Missing {
        target: String,
        expected: String,
        observed: String,
    },
}

/// The name a check resolves, for `ip` modes; `None` for kinds that resolve nothing themselves (dns).
fn host_of(check: &Check) -> Option<String> {
    match &check.spec {
        CheckSpec::Icmp(c) => Some(c.target.clone()),
        CheckSpec::Mtu(c) => Some(c.target.clone()),
        CheckSpec::Tcp(c) => Some(c.host.clone()),
        CheckSpec::Tls(c) => Some(c.host.clone()),
        CheckSpec::Http(c) => url_host(&c.url),
        CheckSpec::Egress(c) => url_host(&c.url),
        CheckSpec::Dns(_) => None,
    }
}

fn url_host(url: &str) -> Option<String> {
    let after = url.split_once("://")?.1;
    let authority = after.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    Some(host.to_owned())
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Resolve `host` (an IP literal resolves to itself), all addresses in resolver order, without duplicates.
async fn resolve_all(host: &str, limit: Duration) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    match tokio::time::timeout(limit, tokio::net::lookup_host((host, 0))).await {
        Ok(Ok(addrs)) => {
            let mut out: Vec<IpAddr> = Vec::new();
            for a in addrs {
                if !out.contains(&a.ip()) {
                    out.push(a.ip());
                }
            }
            Ok(out)
        }
        Ok(Err(e)) => Err(format!("{host} did not resolve: {e}")),
        Err(_) => Err(format!("{host} did not resolve within {}", crate::verdict::fmt_duration(limit))),
    }
}

/// The DNS server of each unit of `check` (`None`: the check's own, for a check of one unit) when its units do
/// not depend on what a name resolves to; `None` when they do (`ip` other than `any` on a check with a host).
fn fixed_units(check: &Check) -> Option<Vec<Option<SocketAddr>>> {
    if let CheckSpec::Dns(d) = &check.spec
        && d.servers.len() > 1
    {
        return Some(d.servers.iter().copied().map(Some).collect());
    }
    (check.ip == IpMode::Any || host_of(check).is_none()).then(|| vec![None])
}

/// The units of `check` for one attempt.
pub async fn units(check: &Check, probes: &Probes) -> Vec<Unit> {
    if let Some(servers) = fixed_units(check) {
        let labelled = servers.len() > 1;
        return servers
            .into_iter()
            .map(|s| Unit {
                label: s.filter(|_| labelled).map(|s| format!("server {s}")),
                work: Work::Probe(probes.probe(check, None, s)),
            })
            .collect();
    }
    let single = || vec![Unit { label: None, work: Work::Probe(probes.probe(check, None, None)) }];
    let Some(host) = host_of(check) else { return single() };
    let wanted: &[&str] = match check.ip {
        IpMode::Any => return single(),
        IpMode::V4 => &["IPv4"],
        IpMode::V6 => &["IPv6"],
        IpMode::Both => &["IPv4", "IPv6"],
        IpMode::All => &[],
    };
    let addrs = match resolve_all(&host, check.timeout).await {
        Ok(a) => a,
        // Let the probe itself report the resolution failure as it always does.
        Err(_) => return single(),
    };
    let pinned = |ip: IpAddr, labelled: bool| Unit {
        label: labelled.then(|| format!("{} {ip}", family(&ip))),
        work: Work::Probe(probes.probe(check, Some(ip), None)),
    };
    match check.ip {
        IpMode::All => addrs.into_iter().map(|ip| pinned(ip, true)).collect(),
        _ => wanted
            .iter()
            .map(|fam| match addrs.iter().find(|ip| family(ip) == *fam) {
                Some(ip) => pinned(*ip, wanted.len() > 1),
                None => Unit {
                    label: (wanted.len() > 1).then(|| (*fam).to_owned()),
                    work: Work::Missing {
                        target: host.clone(),
                        expected: format!("an {fam} address for {host}"),
                        observed: if addrs.is_empty() {
                            "no address".to_owned()
                        } else {
                            format!("only {}", addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", "))
                        },
                    },
                },
            })
            .collect(),
    }
}

fn proxy_parts(p: &Proxy) -> (Option<String>, bool) {
    match p {
        Proxy::None => (None, false),
        Proxy::Url(u) => (Some(u.clone()), false),
        Proxy::Env => (None, true),
    }
}

/// The probes of one config, built on first use and then shared by every run and `GET /probe` until the
/// config is replaced (a new `Probes` goes with each loaded config), and the ICMP sockets they share.
///
/// Why: a probe's construction (an HTTP client with its connector and TLS configuration, the trusted roots read
/// from a CA file, a client certificate parsed and checked against its key) cost as much per run as the small
/// part of a probe that is the agent's own work. A probe is rebuilt when a file its check names has changed
/// (modification or status-change time, size or inode: one `stat` per file per use), and a probe whose files
/// are missing or unreadable is not kept at all, so replacing a certificate or fixing its permissions needs no
/// reload, as before the cache. Probes are stateless between runs (`Probe::run` takes `&self`); concurrent
/// runs of one probe are safe.
#[derive(Debug, Default)]
pub struct Probes {
    icmp: Arc<IcmpClients>,
    /// By check name: the probes built for it, by pinned address and DNS server, least recently used first.
    built: Mutex<HashMap<String, Vec<Built>>>,
}

/// Most probes kept per check: one per pinned address or DNS server. A name that keeps resolving to new
/// addresses (`ip = "all"`) replaces its least recently used instead of growing the cache.
const KEPT_PER_CHECK: usize = 64;

/// The files a probe was built from, as they were then.
type Stamps = Arc<[(PathBuf, Option<FileStamp>)]>;

#[derive(Debug)]
struct Built {
    pin: Option<IpAddr>,
    server: Option<SocketAddr>,
    files: Stamps,
    probe: Arc<dyn Probe>,
}

/// What tells that a file was replaced, rewritten or had its permissions changed; `None`: it did not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    changed: (i64, i64),
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok(),
        changed: (meta.ctime(), meta.ctime_nsec()),
        len: meta.len(),
        inode: meta.ino(),
    })
}

impl Probes {
    /// No probe built yet; ICMP sockets are opened on first use.
    pub fn new() -> Probes {
        Probes::default()
    }

    /// The probe of `check` (pinned to `pin`, asking DNS `server`) kept from an earlier use, if any, with the
    /// files it was built from; marks it most recently used.
    fn cached(
        &self,
        check: &Check,
        pin: Option<IpAddr>,
        server: Option<SocketAddr>,
    ) -> Option<(Arc<dyn Probe>, Stamps)> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        let list = built.get_mut(&check.name)?;
        let i = list.iter().position(|b| b.pin == pin && b.server == server)?;
        if i + 1 != list.len() {
            let b = list.remove(i);
            list.push(b);
        }
        list.last().map(|b| (Arc::clone(&b.probe), Arc::clone(&b.files)))
    }

    /// The probe of `check` (pinned to `pin`, asking DNS `server`), built now if it was not built before or a
    /// file it names has changed since.
    pub fn probe(&self, check: &Check, pin: Option<IpAddr>, server: Option<SocketAddr>) -> Arc<dyn Probe> {
        // Files are looked at outside the lock: a `stat` on a slow file system must not hold up other checks.
        if let Some((probe, files)) = self.cached(check, pin, server)
            && files.iter().all(|(path, was)| stamp(path) == *was)
        {
            return probe;
        }
        // Built outside the lock too: building reads files and may take a while; two callers may both build the
        // same probe once, the later one is kept.
        let files: Stamps = files_of(check).into_iter().flatten().map(|p| (p.to_owned(), stamp(p))).collect();
        let probe = probe_for(check, pin, server, &self.icmp);
        // A missing or unreadable file makes the probe fail at every run: not kept, so that the next run
        // reads the file again once it is fixed (the fix may not change the file's stamp: a directory's
        // permissions, a new group of the agent's user).
        if !files.iter().all(|(path, s)| s.is_some() && std::fs::File::open(path).is_ok()) {
            return probe;
        }
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        // Capacity for one: most checks have exactly one probe (a growing Vec would reserve four).
        let list = built.entry(check.name.clone()).or_insert_with(|| Vec::with_capacity(1));
        list.retain(|b| !(b.pin == pin && b.server == server));
        if list.len() >= KEPT_PER_CHECK {
            list.remove(0);
        }
        list.push(Built { pin, server, files, probe: Arc::clone(&probe) });
        probe
    }

    /// Build now the probes of `checks` that do not depend on a name's addresses at run time (see
    /// [`fixed_units`]; the others are pinned to what the name resolves to).
    ///
    /// A run calls this before its checks start, so that probes, which live as long as the config, are
    /// allocated together and not scattered among a large run's short-lived allocations, where they would
    /// keep the allocator from returning that memory after the run.
    pub fn warm(&self, checks: &[Arc<Check>]) {
        for check in checks {
            for server in fixed_units(check).unwrap_or_default() {
                self.probe(check, None, server);
            }
        }
    }

    /// The target of `check` as a person reads it: its unpinned probe's, from the cache when that probe is
    /// kept, otherwise from a probe built for the purpose and dropped (not cached: a check whose runs use
    /// pinned probes would keep a client it never uses).
    pub fn target(&self, check: &Check) -> String {
        match self.cached(check, None, None) {
            Some((probe, _)) => probe.target(),
            None => probe_for(check, None, None, &self.icmp).target(),
        }
    }
}

/// The files a check's probe reads when it is built.
fn files_of(check: &Check) -> [Option<&Path>; 3] {
    let (ca, cert, key) = match &check.spec {
        CheckSpec::Tls(c) => (&c.ca_file, &c.client_cert, &c.client_key),
        CheckSpec::Http(c) => (&c.ca_file, &c.client_cert, &c.client_key),
        CheckSpec::Egress(c) => (&c.ca_file, &None, &None),
        CheckSpec::Icmp(_) | CheckSpec::Mtu(_) | CheckSpec::Tcp(_) | CheckSpec::Dns(_) => (&None, &None, &None),
    };
    [ca.as_deref(), cert.as_deref(), key.as_deref()]
}

/// Build the probe for one check; `pin` replaces the resolved address of the target, `server` picks one of a
/// DNS check's servers. The one exhaustive match over check kinds. Use [`Probes::probe`], which reuses it.
fn probe_for(
    check: &Check,
    pin: Option<IpAddr>,
    server: Option<SocketAddr>,
    icmp: &Arc<IcmpClients>,
) -> Arc<dyn Probe> {
    let timeout = check.timeout;
    let source = check.source;
    let pinned = |host: &str| pin.map_or_else(|| host.to_owned(), |ip| ip.to_string());
    match &check.spec {
        CheckSpec::Icmp(c) => Arc::new(IcmpProbe::new(
            IcmpParams {
                target: pinned(&c.target),
                count: c.count,
                interval: c.interval,
                size: c.size,
                timeout,
                dont_fragment: c.dont_fragment,
                ttl: c.ttl,
                source,
            },
            Arc::clone(icmp),
        )),
        CheckSpec::Mtu(c) => Arc::new(MtuProbe::new(
            MtuParams { target: pinned(&c.target), source, min: c.min, max: c.max, timeout },
            Arc::clone(icmp),
        )),
        CheckSpec::Tcp(c) => Arc::new(TcpProbe::new(TcpParams {
            host: pinned(&c.host),
            port: c.port,
            count: c.count,
            timeout,
            source,
            send: c.send.as_ref().map(|s| s.as_bytes().to_vec()),
            read_banner: c.expect_banner.is_some(),
        })),
        CheckSpec::Dns(c) => match c.record.parse::<RecordType>() {
            Ok(record) => Arc::new(DnsProbe::new(DnsParams {
                query: c.query.clone(),
                record,
                server: server.or_else(|| c.servers.first().copied()),
                transport: if c.transport == "tcp" { Transport::Tcp } else { Transport::Udp },
                timeout,
                source,
            })),
            // The config crate validated the record type against the same list; this cannot happen, but a
            // mismatch between the two lists must surface as an error outcome, not a panic.
            Err(e) => Arc::new(Unplannable { kind: gonogo_probes::Kind::Dns, target: c.query.clone(), reason: e }),
        },
        CheckSpec::Tls(c) => Arc::new(TlsProbe::new(TlsParams {
            host: pinned(&c.host),
            port: c.port,
            server_name: c.server_name.clone(),
            ca_file: c.ca_file.clone(),
            verify: c.verify,
            timeout,
            client_cert: c.client_cert.clone(),
            client_key: c.client_key.clone(),
            min_version: c.min_version.as_deref().and_then(|v| v.parse().ok()),
            max_version: c.max_version.as_deref().and_then(|v| v.parse().ok()),
            source,
        })),
        CheckSpec::Http(c) => {
            let (proxy, proxy_from_env) = proxy_parts(&c.proxy);
            Arc::new(HttpProbe::new(HttpParams {
                url: c.url.clone(),
                method: c.method.clone(),
                headers: c.headers.clone(),
                ca_file: c.ca_file.clone(),
                verify: c.verify,
                proxy,
                proxy_from_env,
                follow_redirects: c.follow_redirects,
                max_redirects: c.max_redirects,
                body_limit: c.body_limit,
                body: c.body.as_ref().map(|b| b.as_bytes().to_vec()),
                client_cert: c.client_cert.clone(),
                client_key: c.client_key.clone(),
                source,
                pin,
                timeout,
            }))
        }
        CheckSpec::Egress(c) => {
            let (proxy, proxy_from_env) = proxy_parts(&c.proxy);
            Arc::new(EgressProbe::new(EgressParams {
                url: c.url.clone(),
                ca_file: c.ca_file.clone(),
                verify: c.verify,
                proxy,
                proxy_from_env,
                source,
                pin,
                timeout,
            }))
        }
    }
}

/// A check whose probe could not be built: it runs as an `error` outcome with the reason.
#[derive(Debug)]
struct Unplannable {
    kind: gonogo_probes::Kind,
    target: String,
    reason: String,
}

impl Probe for Unplannable {
    fn kind(&self) -> gonogo_probes::Kind {
        self.kind
    }
    fn target(&self) -> String {
        self.target.clone()
    }
    fn budget(&self) -> Duration {
        Duration::ZERO
    }
    fn run(&self) -> gonogo_probes::ProbeFuture<'_> {
        let reason = self.reason.clone();
        Box::pin(async move { Err(ProbeError::Local(reason)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://app.example:8443/x?y").as_deref(), Some("app.example"));
        assert_eq!(url_host("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(url_host("http://user:pw@10.0.0.1/").as_deref(), Some("10.0.0.1"));
        assert_eq!(url_host("http://h").as_deref(), Some("h"));
    }

    #[test]
    fn a_probe_is_built_once_per_config_and_again_when_a_file_it_names_changes() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not yet a CA").expect("write");
        let text = format!(
            "[[check]]\nname = \"web\"\nkind = \"http\"\nurl = \"https://app.test/\"\nca_file = \"{}\"\n\
             ip = \"all\"\nphases = [\"regression\"]\n\n\
             [[check]]\nname = \"port\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"regression\"]\n",
            ca.display()
        );
        let config = gonogo_config::parse(&text, Path::new("t.toml")).expect("config");
        let (web, port) = (&config.checks[0], &config.checks[1]);
        let probes = Probes::new();

        let first = probes.probe(port, None, None);
        assert!(Arc::ptr_eq(&first, &probes.probe(port, None, None)), "a check without files is built once");
        let a = probes.probe(web, None, None);
        assert!(Arc::ptr_eq(&a, &probes.probe(web, None, None)), "unchanged files: the same probe");
        let pinned = probes.probe(web, Some("127.0.0.2".parse().expect("ip")), None);
        assert!(!Arc::ptr_eq(&a, &pinned), "another address is another probe");
        assert_eq!(pinned.target(), "https://app.test/ (@127.0.0.2)");

        std::fs::write(&ca, "still not a CA, but longer").expect("rewrite");
        let b = probes.probe(web, None, None);
        assert!(!Arc::ptr_eq(&a, &b), "a rewritten file: the probe is built again");
        assert!(Arc::ptr_eq(&b, &probes.probe(web, None, None)));
        let mode = std::fs::metadata(&ca).expect("stat").permissions();
        std::fs::set_permissions(&ca, mode).expect("chmod");
        let c = probes.probe(web, None, None);
        assert!(!Arc::ptr_eq(&b, &c), "permissions set again (status change): built again");
        std::fs::remove_file(&ca).expect("remove");
        let gone = probes.probe(web, None, None);
        assert!(!Arc::ptr_eq(&c, &gone), "a removed file: built again (and fails)");
        assert!(!Arc::ptr_eq(&gone, &probes.probe(web, None, None)), "a probe without its file is not kept");

        // A name resolving to ever new addresses does not grow the cache without bound.
        for i in 0..100u8 {
            probes.probe(port, Some(std::net::IpAddr::from([127, 0, 1, i])), None);
        }
        let kept = probes.built.lock().expect("lock").get("port").map_or(0, Vec::len);
        assert_eq!(kept, KEPT_PER_CHECK);
        let newest = Some(std::net::IpAddr::from([127, 0, 1, 99]));
        assert!(Arc::ptr_eq(&probes.probe(port, newest, None), &probes.probe(port, newest, None)));
    }
}
