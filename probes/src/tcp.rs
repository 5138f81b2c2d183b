//! TCP connect: connect-time statistics over one or more attempts; refused vs timed out vs unreachable; optionally
//! a payload sent and the service's banner read.
//!
//! Each attempt is a plain `connect()` (from a chosen source address when asked), bounded by the check's timeout.
//! Without `send` or `read_banner` the connection is closed as soon as it is made. With them, every attempt writes
//! the payload after connecting and/or reads what the service says, all within the same per-attempt timeout. A
//! target that refuses, stays silent or is unreachable is an observation; only a local problem (no file
//! descriptors left, a local firewall rule, a source address this host does not own) is a [`ProbeError::Local`].
//!
//! This module also holds the name resolution shared by the probes that take a host ([`resolve_for`]).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

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
    /// Bound on each attempt (connect, send and banner read together); the check takes at most
    /// `count × timeout`.
    pub timeout: Duration,
    /// Local address to connect from (bound with port 0 before connecting); `None`: the kernel chooses. It must
    /// be an address of this host, of the target's family; otherwise the probe returns [`ProbeError::Local`].
    /// For a name, the first resolved address of the source's family is used.
    pub source: Option<IpAddr>,
    /// Bytes written right after each successful connect (every attempt sends them, so attempts stay alike).
    /// `None` or empty: nothing is sent.
    pub send: Option<Vec<u8>>,
    /// After connecting (and sending), read what the service says: up to [`BANNER_LIMIT`] bytes, until it
    /// closes, or until the attempt's timeout; a banner that ends with a line end is complete once nothing
    /// more arrives for [`BANNER_QUIET`]. No byte at all within the timeout is a [`Failure::Timeout`].
    pub read_banner: bool,
}

/// Most bytes of a banner read per attempt.
pub const BANNER_LIMIT: usize = 4096;

/// Once a banner ends with a line end, reading stops when nothing more arrives for this long (multi-line
/// greetings sent in one go are kept whole; a server that greets and then waits does not hold the attempt to
/// its timeout).
pub const BANNER_QUIET: Duration = Duration::from_millis(200);

/// Most characters of the banner kept in the observation, after escaping.
const BANNER_TEXT_LIMIT: usize = 4096;

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
    /// The failure of the last failed attempt, if any attempt failed: a connect that failed, or (with `send` or
    /// `read_banner`) an exchange that failed after connecting (`timeout` for no banner, `connection_reset` for a
    /// service that closed without one). `connected` counts handshakes, so it can equal `attempts` while this is
    /// set by a missing banner.
    pub failure: Option<Failure>,
    pub detail: Option<String>,
    /// With `read_banner`: what the service sent on the first attempt that got anything, as text: lossy UTF-8,
    /// the final line end removed, other control characters escaped (`\r`, `\n`, `\t`, `\u{1b}`), at most
    /// 4096 characters (longer text ends with `…`). `None` when no attempt got a byte or none was asked for.
    #[serde(default)]
    pub banner: Option<String>,
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
            banner: None,
        };
        let addr = match resolve_for(&p.host, p.port, p.timeout, p.source).await {
            Ok(addr) => addr,
            Err(Resolved::Failed(detail)) => {
                obs.failure = Some(Failure::ResolveFailed);
                obs.detail = Some(detail);
                return Ok(obs);
            }
            Err(Resolved::Local(e)) => return Err(e),
        };
        obs.address = Some(addr);

        let exchanges = p.read_banner || p.send.as_ref().is_some_and(|s| !s.is_empty());
        let mut times = Vec::new();
        let mut failed = 0u32;
        let mut last_failure = None;
        for _ in 0..p.count {
            obs.attempts += 1;
            let start = Instant::now();
            let deadline = tokio::time::Instant::from_std(start) + p.timeout;
            let outcome = tokio::time::timeout_at(deadline, connect_from(addr, p.source)).await;
            let elapsed = start.elapsed();
            let stream = match outcome {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    let failure = classify_connect_error(&e).ok_or_else(|| local_connect_error(addr, p.source, &e))?;
                    failed += 1;
                    last_failure = Some((failure, format!("{e}")));
                    obs.samples_ms.push(None);
                    continue;
                }
                Err(_elapsed) => {
                    failed += 1;
                    last_failure = Some((Failure::Timeout, format!("no answer within {:?}", p.timeout)));
                    obs.samples_ms.push(None);
                    continue;
                }
            };
            obs.connected += 1;
            times.push(elapsed);
            obs.samples_ms.push(Some(elapsed.as_secs_f64() * 1e3));
            // Without an exchange the stream is closed at once: the check measures the handshake.
            if exchanges {
                match exchange(stream, p, deadline).await {
                    Ok(banner) => {
                        if obs.banner.is_none() {
                            obs.banner = banner;
                        }
                    }
                    Err((failure, text)) => {
                        failed += 1;
                        last_failure = Some((failure, text));
                    }
                }
            }
        }
        obs.connect = RttStats::from_samples(&times);
        if let Some((failure, text)) = last_failure {
            obs.failure = Some(failure);
            let what = if exchanges { "attempts on" } else { "connects to" };
            obs.detail = Some(format!("{failed} of {} {what} {addr} failed; last: {text}", obs.attempts));
        }
        Ok(obs)
    }
}

/// Connect to `addr`, from `source` (port 0) when given.
async fn connect_from(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(source, 0)).map_err(|e| io::Error::new(e.kind(), BindError(e)))?;
    socket.connect(addr).await
}

/// A failed bind of the source address, told apart from connect errors of the same kind (EADDRNOTAVAIL).
#[derive(Debug)]
struct BindError(io::Error);

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BindError {}

/// The [`ProbeError`] for a connect error that is local, naming the source address when binding it failed.
fn local_connect_error(addr: SocketAddr, source: Option<IpAddr>, e: &io::Error) -> ProbeError {
    let bind_failed = e.get_ref().is_some_and(|inner| inner.is::<BindError>());
    match source {
        Some(source) if bind_failed => ProbeError::Local(source_error(source, e)),
        _ => ProbeError::Local(format!("cannot connect to {addr}: {e} (a local problem, not the target)")),
    }
}

/// The text for a source address that cannot be bound.
pub(crate) fn source_error(source: IpAddr, e: &io::Error) -> String {
    format!(
        "cannot use source address {source}: {e}; set `source` to an address of this host (the test port's \
         address, see `ip -brief address`)"
    )
}

/// Send the payload, then read the banner when asked, by `deadline`. `Ok(None)` when no banner was asked for.
async fn exchange(
    mut stream: TcpStream,
    p: &TcpParams,
    deadline: tokio::time::Instant,
) -> Result<Option<String>, (Failure, String)> {
    if let Some(payload) = p.send.as_deref().filter(|s| !s.is_empty()) {
        match tokio::time::timeout_at(deadline, stream.write_all(payload)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err((write_failure(&e), format!("sending {} byte(s): {e}", payload.len()))),
            Err(_) => {
                return Err((
                    Failure::Timeout,
                    format!("could not send {} byte(s) within {:?}", payload.len(), p.timeout),
                ));
            }
        }
    }
    if !p.read_banner {
        return Ok(None);
    }
    let bytes = read_banner(&mut stream, deadline).await.map_err(|e| match e {
        BannerError::Silent => (Failure::Timeout, format!("no banner within {:?}", p.timeout)),
        BannerError::Closed => {
            (Failure::ConnectionReset, "the service closed the connection without a banner".to_string())
        }
        BannerError::Io(e) => (write_failure(&e), format!("reading the banner: {e}")),
    })?;
    Ok(Some(banner_text(&bytes)))
}

/// The failure an I/O error after connecting means (reset, aborted, broken pipe; anything else as reset too:
/// the connection did not carry the exchange).
fn write_failure(e: &io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::TimedOut => Failure::Timeout,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => Failure::Unreachable,
        _ => Failure::ConnectionReset,
    }
}

/// Why no banner was read.
#[derive(Debug)]
enum BannerError {
    /// Not a byte by the deadline.
    Silent,
    /// The service closed the connection before sending a byte.
    Closed,
    /// The connection failed before a byte arrived.
    Io(io::Error),
}

/// Read a banner: until [`BANNER_LIMIT`] bytes, EOF, `deadline`, or [`BANNER_QUIET`] of silence after a line end.
/// Whatever arrived is the banner; an error after some bytes ends the read with them.
async fn read_banner<R: AsyncReadExt + Unpin>(
    stream: &mut R,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, BannerError> {
    let mut banner = Vec::new();
    let mut chunk = [0u8; BANNER_LIMIT];
    while banner.len() < BANNER_LIMIT {
        let until =
            if banner.ends_with(b"\n") { deadline.min(tokio::time::Instant::now() + BANNER_QUIET) } else { deadline };
        let room = BANNER_LIMIT - banner.len();
        match tokio::time::timeout_at(until, stream.read(&mut chunk[..room])).await {
            Err(_elapsed) if banner.is_empty() => return Err(BannerError::Silent),
            Ok(Ok(0)) if banner.is_empty() => return Err(BannerError::Closed),
            Ok(Err(e)) if banner.is_empty() => return Err(BannerError::Io(e)),
            Err(_) | Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => banner.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(banner)
}

/// A banner as text for the observation: lossy UTF-8, the final line end removed, control characters escaped,
/// capped at [`BANNER_TEXT_LIMIT`] characters.
pub(crate) fn banner_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    let mut out = String::with_capacity(text.len().min(BANNER_TEXT_LIMIT));
    let mut kept = 0usize;
    for c in text.chars() {
        let escaped = match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("\\u{{{:x}}}", u32::from(c)),
            c => c.to_string(),
        };
        let width = escaped.chars().count();
        if kept + width > BANNER_TEXT_LIMIT {
            out.push('…');
            break;
        }
        kept += width;
        out.push_str(&escaped);
    }
    out
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

/// Why [`resolve_for`] gave no address.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// The name did not resolve (an observation: [`Failure::ResolveFailed`]).
    Failed(String),
    /// The target's address family cannot be reached from the source address (a configuration problem).
    Local(ProbeError),
}

/// Resolve `host` to one socket address: an IP literal as is, otherwise the first address the system resolver
/// returns (its order is kept, so `/etc/gai.conf` preferences apply), within `limit`. With a `source` address,
/// only addresses of its family are kept: an IP literal of the other family, or a name with no address of that
/// family, is a [`ProbeError::Local`] naming both. A name that does not resolve is [`Resolved::Failed`], the
/// human detail for a [`Failure::ResolveFailed`] observation.
pub(crate) async fn resolve_for(
    host: &str,
    port: u16,
    limit: Duration,
    source: Option<IpAddr>,
) -> Result<SocketAddr, Resolved> {
    let mismatch = |what: String, source: IpAddr| {
        let family = if source.is_ipv4() { "IPv4" } else { "IPv6" };
        Resolved::Local(ProbeError::Local(format!(
            "source address {source} is {family} but {what}; use a source address of the target's family"
        )))
    };
    if let Some(ip) = ip_literal(host) {
        return match source {
            Some(source) if source.is_ipv4() != ip.is_ipv4() => {
                Err(mismatch(format!("the target {ip} is not"), source))
            }
            _ => Ok(SocketAddr::new(ip, port)),
        };
    }
    let addrs = match tokio::time::timeout(limit, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
        Ok(Err(e)) => return Err(Resolved::Failed(format!("cannot resolve {host:?}: {e}"))),
        Err(_elapsed) => return Err(Resolved::Failed(format!("resolving {host:?} took longer than {limit:?}"))),
    };
    let Some(first) = addrs.first().copied() else {
        return Err(Resolved::Failed(format!("{host:?} resolved to no address")));
    };
    match source {
        None => Ok(first),
        Some(source) => addrs.iter().copied().find(|a| a.is_ipv4() == source.is_ipv4()).ok_or_else(|| {
            let all: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            mismatch(format!("{host:?} resolved only to {}", all.join(", ")), source)
        }),
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
    fn banner_text_is_escaped_lossy_and_capped() {
        assert_eq!(banner_text(b"220 ready\r\n"), "220 ready");
        assert_eq!(banner_text(b"SSH-2.0-x\n"), "SSH-2.0-x");
        assert_eq!(banner_text(b"a\tb\r\nc\x00\x7f\r\n\r\n"), "a\\tb\\r\\nc\\u{0}\\u{7f}\\r\\n");
        assert_eq!(banner_text(b"caf\xc3\xa9 \xff"), "café \u{fffd}");
        let long = banner_text(&[b'x'; BANNER_TEXT_LIMIT + 10]);
        assert_eq!(long.chars().count(), BANNER_TEXT_LIMIT + 1);
        assert!(long.ends_with('…'));
        // An escape that would cross the limit is not cut in half.
        let mut edge = vec![b'x'; BANNER_TEXT_LIMIT - 2];
        edge.push(0x1b);
        let edge = banner_text(&edge);
        assert!(edge.ends_with("x…"), "{edge}");
        assert_eq!(banner_text(&[b'x'; BANNER_TEXT_LIMIT]).chars().count(), BANNER_TEXT_LIMIT);
    }

    #[tokio::test]
    async fn banner_read_ends_at_the_deadline_with_what_came() {
        let wait = Duration::from_millis(300);
        let (mut service, mut client) = tokio::io::duplex(64);
        service.write_all(b"no line end").await.expect("write");
        let start = tokio::time::Instant::now();
        let read = read_banner(&mut client, start + wait).await;
        assert_eq!(read.ok().as_deref(), Some(&b"no line end"[..]));
        assert!(start.elapsed() >= wait, "waited for a line end until the deadline");

        let read = read_banner(&mut client, tokio::time::Instant::now() + wait).await;
        assert!(matches!(read, Err(BannerError::Silent)), "{read:?}");
        drop(service);
        let read = read_banner(&mut client, tokio::time::Instant::now() + wait).await;
        assert!(matches!(read, Err(BannerError::Closed)), "{read:?}");
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
