//! TCP connect: connect-time statistics over one or more attempts; refused vs timed out vs unreachable.
//!
//! Each attempt is a plain `connect()` bounded by the check's timeout, closed as soon as it succeeds. A target that
//! refuses, stays silent or is unreachable is an observation; only a local problem (no file descriptors left, a
//! local firewall rule, no usable source address) is a [`ProbeError::Local`].
//!
//! This module also holds the name resolution shared by the ICMP and TCP probes ([`resolve`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::stats::RttStats;
use crate::{Failure, Kind, Observations, Probe, ProbeError, ProbeFuture};

/// Parameters of one TCP check.
#[derive(Debug, Clone, Default)]
pub struct TcpParams {
    /// Host name or IP address.
    pub host: String,
    pub port: u16,
    /// Connect attempts, made one after the other.
    pub count: u32,
    /// Bound on each attempt; the check takes at most `count × timeout`.
    pub timeout: Duration,
}

/// What a TCP check saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TcpObservations {
    /// The address connected to (after resolving a name).
    pub address: Option<SocketAddr>,
    pub attempts: u32,
    pub connected: u32,
    /// Connect-time statistics over the successful attempts.
    pub connect: Option<RttStats>,
    /// Per attempt: connect time in milliseconds, or `null` when it failed.
    pub samples_ms: Vec<Option<f64>>,
    /// The failure of the last failed attempt, if any attempt failed.
    pub failure: Option<Failure>,
    pub detail: Option<String>,
}

/// A TCP connect check against one host and port.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    params: TcpParams,
}

impl TcpProbe {
    /// A probe for `params`; nothing is resolved or opened until [`Probe::run`].
    pub fn new(params: TcpParams) -> TcpProbe {
        TcpProbe { params }
    }

    async fn measure(&self) -> Result<TcpObservations, ProbeError> {
        let p = &self.params;
        let mut obs = TcpObservations {
            address: None,
            attempts: 0,
            connected: 0,
            connect: None,
            samples_ms: Vec::new(),
            failure: None,
            detail: None,
        };
        let addr = match resolve(&p.host, p.port, p.timeout).await {
            Ok(addr) => addr,
            Err(detail) => {
                obs.failure = Some(Failure::ResolveFailed);
                obs.detail = Some(detail);
                return Ok(obs);
            }
        };
        obs.address = Some(addr);

        let mut times = Vec::new();
        let mut failed = 0u32;
        let mut last_failure = None;
        for _ in 0..p.count {
            obs.attempts += 1;
            let start = Instant::now();
            let outcome = tokio::time::timeout(p.timeout, TcpStream::connect(addr)).await;
            let elapsed = start.elapsed();
            match outcome {
                Ok(Ok(stream)) => {
                    // Closed at once: the check measures the handshake, not the service.
                    drop(stream);
                    obs.connected += 1;
                    times.push(elapsed);
                    obs.samples_ms.push(Some(elapsed.as_secs_f64() * 1e3));
                }
                Ok(Err(e)) => {
                    let failure = classify_connect_error(&e).ok_or_else(|| {
                        ProbeError::Local(format!("cannot connect to {addr}: {e} (a local problem, not the target)"))
                    })?;
                    failed += 1;
                    last_failure = Some((failure, format!("{e}")));
                    obs.samples_ms.push(None);
                }
                Err(_elapsed) => {
                    failed += 1;
                    last_failure = Some((Failure::Timeout, format!("no answer within {:?}", p.timeout)));
                    obs.samples_ms.push(None);
                }
            }
        }
        obs.connect = RttStats::from_samples(&times);
        if let Some((failure, text)) = last_failure {
            obs.failure = Some(failure);
            obs.detail = Some(format!("{failed} of {} connects to {addr} failed; last: {text}", obs.attempts));
        }
        Ok(obs)
    }
}

impl Probe for TcpProbe {
    fn kind(&self) -> Kind {
        Kind::Tcp
    }

    fn target(&self) -> String {
        match ip_literal(&self.params.host) {
            Some(ip) => SocketAddr::new(ip, self.params.port).to_string(),
            None => format!("{}:{}", self.params.host, self.params.port),
        }
    }

    fn budget(&self) -> Duration {
        let p = &self.params;
        let connects = p.timeout.saturating_mul(p.count);
        if ip_literal(&p.host).is_some() { connects } else { connects.saturating_add(p.timeout) }
    }

    fn run(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.measure().await.map(Observations::Tcp) })
    }
}

/// The failure a connect error means for the target, or `None` when the error is local (no file descriptors,
/// no buffer space, a local firewall rule, no usable source address) and says nothing about the target.
fn classify_connect_error(e: &io::Error) -> Option<Failure> {
    /// EHOSTDOWN on Linux: ARP/ND found nobody; io::ErrorKind has no stable variant for it.
    const EHOSTDOWN: i32 = 112;
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Some(Failure::ConnectionRefused),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => Some(Failure::Unreachable),
        io::ErrorKind::TimedOut => Some(Failure::Timeout),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => Some(Failure::ConnectionReset),
        _ if e.raw_os_error() == Some(EHOSTDOWN) => Some(Failure::Unreachable),
        _ => None,
    }
}

/// The IP address `host` spells, if it is a literal (`10.0.0.1`, `::1`, `[::1]`) rather than a name.
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse().ok()
}

/// Resolve `host` to one socket address: an IP literal as is, otherwise the first address the system resolver
/// returns (its order is kept, so `/etc/gai.conf` preferences apply), within `limit`. The error is the human
/// detail for a [`Failure::ResolveFailed`] observation.
pub(crate) async fn resolve(host: &str, port: u16, limit: Duration) -> Result<SocketAddr, String> {
    if let Some(ip) = ip_literal(host) {
        return Ok(SocketAddr::new(ip, port));
    }
    match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| format!("{host:?} resolved to no address")),
        Ok(Err(e)) => Err(format!("cannot resolve {host:?}: {e}")),
        Err(_elapsed) => Err(format!("resolving {host:?} took longer than {limit:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn connect_errors_map_to_failures_or_local() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(classify_connect_error(&os(111)), Some(Failure::ConnectionRefused)); // ECONNREFUSED
        assert_eq!(classify_connect_error(&os(113)), Some(Failure::Unreachable)); // EHOSTUNREACH
        assert_eq!(classify_connect_error(&os(101)), Some(Failure::Unreachable)); // ENETUNREACH
        assert_eq!(classify_connect_error(&os(112)), Some(Failure::Unreachable)); // EHOSTDOWN
        assert_eq!(classify_connect_error(&os(110)), Some(Failure::Timeout)); // ETIMEDOUT
        assert_eq!(classify_connect_error(&os(104)), Some(Failure::ConnectionReset)); // ECONNRESET
        assert_eq!(classify_connect_error(&os(24)), None); // EMFILE
        assert_eq!(classify_connect_error(&os(1)), None); // EPERM: a local firewall rule
        assert_eq!(classify_connect_error(&os(99)), None); // EADDRNOTAVAIL
    }

    #[test]
    fn literals_and_names() {
        assert_eq!(ip_literal("10.0.0.1"), Some(IpAddr::from([10, 0, 0, 1])));
        assert_eq!(ip_literal("[::1]"), Some(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)));
        assert_eq!(ip_literal("::1"), Some(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)));
        assert_eq!(ip_literal("app.example"), None);
        assert_eq!(ip_literal("[app.example]"), None);
    }
}
