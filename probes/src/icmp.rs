//! ICMP echo: loss, RTT statistics and jitter, IPv4 and IPv6, with surge-ping.
//!
//! One [`IcmpClients`] is shared by every ICMP check of a run: one socket per address family, replies matched
//! by identifier and sequence. A raw socket is used where permitted (root or CAP_NET_RAW), otherwise an
//! unprivileged datagram ICMP socket (net.ipv4.ping_group_range); with neither, the probe returns
//! [`ProbeError::Permission`](crate::ProbeError::Permission) naming both fixes.
//!
//! How replies find their probe: surge-ping's receive task matches each reply to a waiter keyed by
//! (address pinged, identifier, sequence). On a raw socket the identifier is ours, so every probe takes its own
//! identifier from a per-socket counter and numbers its echoes 0, 1, 2 … On a datagram ICMP socket the kernel
//! overwrites the identifier with the socket's "port" and surge-ping then matches on (address, sequence) only,
//! so two probes of the same address would collide on sequence 0; there every probe takes a fresh block of
//! sequence numbers from a per-socket counter instead.
//!
//! Echoes go out on schedule, `interval` apart, without waiting for earlier replies (as `ping` does); each
//! reply is awaited for up to `timeout`. Sends on one socket are paced ([`SEND_GAP`]) so that many checks
//! starting together do not overflow its receive buffer. On a raw socket an ICMP error quoting one of our echoes (destination
//! unreachable, time exceeded) is reported as [`Failure::Unreachable`]; a datagram socket does not deliver
//! those, so there such an echo simply times out.

use std::fmt;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};
use tokio::sync::OnceCell;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::stats::{self, RttStats};
use crate::tcp::{ip_literal, resolve};
use crate::{Failure, Kind, Observations, Probe, ProbeError, ProbeFuture};

/// The least time between two echoes sent on one socket. Replies to a burst of echoes arrive as a burst, and a
/// socket's default receive buffer (about 200 KiB, some 150 small packets; a raw socket on loopback also sees its
/// own requests) overflows when hundreds of probes start at once. Pacing the sends keeps the bursts small: at
/// most about ten echoes per millisecond per address family, so 200 targets' first echoes go out within 20 ms.
const SEND_GAP: Duration = Duration::from_micros(100);

/// Where the kernel keeps the group range allowed to open unprivileged ICMP sockets (IPv4 and IPv6 alike).
const PING_GROUP_RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

/// Parameters of one ICMP check.
#[derive(Debug, Clone, Default)]
pub struct IcmpParams {
    /// IP address or host name.
    pub target: String,
    /// Echo requests to send.
    pub count: u32,
    /// Time between two echo requests.
    pub interval: Duration,
    /// ICMP payload size in bytes.
    pub size: usize,
    /// How long to wait for each reply; the check takes at most `(count - 1) × interval + timeout`.
    pub timeout: Duration,
}

/// What an ICMP check saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IcmpObservations {
    /// The address pinged (after resolving a name).
    pub address: Option<IpAddr>,
    pub sent: u32,
    pub received: u32,
    /// Lost / sent, 0.0–1.0.
    pub loss: f64,
    /// Statistics over the replies; `None` when none came back.
    pub rtt: Option<RttStats>,
    /// Per echo, in send order: RTT in milliseconds, or `null` when lost.
    pub samples_ms: Vec<Option<f64>>,
    /// Set when no reply came back at all (timeout, unreachable, name did not resolve).
    pub failure: Option<Failure>,
    /// With `fallback_tcp`: the TCP connect tried when no echo was answered (ICMP is often filtered on health
    /// networks; a connect that succeeds makes the check inconclusive rather than failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_tcp: Option<crate::tcp::TcpObservations>,
    /// Human detail for the failure ("destination host unreachable from 10.0.0.254").
    pub detail: Option<String>,
}

/// The kind of ICMP socket a family's client ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpSocket {
    /// A raw socket (root or CAP_NET_RAW): our identifiers, and ICMP errors are seen.
    Raw,
    /// An unprivileged datagram ICMP socket (net.ipv4.ping_group_range): the kernel owns the identifier and
    /// keeps ICMP errors to itself.
    Datagram,
}

/// The ICMP clients of one run, shared by every ICMP check: at most one surge-ping client (one socket, one
/// receive task) per address family, opened on first use. The outcome of opening, failure included, is kept, so
/// a missing privilege costs one attempt and every check reports the same error.
///
/// Use it within one tokio runtime: a client's receive task runs on the runtime that opened it.
#[derive(Default)]
pub struct IcmpClients {
    v4: OnceCell<Result<Arc<Shared>, ProbeError>>,
    v6: OnceCell<Result<Arc<Shared>, ProbeError>>,
}

/// One family's client and the counters that keep concurrent probes' echoes apart.
struct Shared {
    client: Client,
    socket: IcmpSocket,
    /// Next identifier to hand out (raw sockets).
    next_ident: AtomicU16,
    /// Next sequence number to hand out (datagram sockets).
    next_seq: AtomicU16,
    /// Earliest time the next echo may be sent (see [`SEND_GAP`]).
    next_send: Mutex<Instant>,
}

impl Shared {
    /// Reserve a send slot: `now` or, if another echo took that, the next free one `SEND_GAP` later.
    fn reserve_send_slot(&self, now: Instant) -> Instant {
        // A poisoned lock only means another echo task panicked while holding it; the instant inside is intact.
        let mut next = self.next_send.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = now.max(*next);
        *next = slot + SEND_GAP;
        slot
    }
}

impl IcmpClients {
    /// No socket is opened until a probe needs one.
    pub fn new() -> IcmpClients {
        IcmpClients::default()
    }

    /// The socket kind used for `ip`'s family, opening it if needed; the error is the one the probes return.
    pub async fn socket(&self, ip: IpAddr) -> Result<IcmpSocket, ProbeError> {
        self.client(ip).await.map(|shared| shared.socket)
    }

    async fn client(&self, ip: IpAddr) -> Result<Arc<Shared>, ProbeError> {
        let (cell, kind) = match ip {
            IpAddr::V4(_) => (&self.v4, ICMP::V4),
            IpAddr::V6(_) => (&self.v6, ICMP::V6),
        };
        cell.get_or_init(|| async move { open(kind).map(Arc::new) }).await.clone()
    }
}

impl fmt::Debug for IcmpClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = |cell: &OnceCell<Result<Arc<Shared>, ProbeError>>| match cell.get() {
            None => "not opened".to_string(),
            Some(Ok(shared)) => format!("{:?}", shared.socket),
            Some(Err(e)) => format!("failed: {e}"),
        };
        f.debug_struct("IcmpClients").field("v4", &state(&self.v4)).field("v6", &state(&self.v6)).finish()
    }
}

/// Open one family's client: a raw socket first, an unprivileged datagram socket if that is refused.
fn open(kind: ICMP) -> Result<Shared, ProbeError> {
    // surge-ping tries the hinted type, then the other one, and returns the first error if both fail.
    let config = Config::builder().kind(kind).sock_type_hint(socket2::Type::RAW).build();
    let family = if kind == ICMP::V4 { "ICMP" } else { "ICMPv6" };
    match Client::new(&config) {
        Ok(client) => {
            let socket = if client.get_socket().get_type() == socket2::Type::RAW {
                IcmpSocket::Raw
            } else {
                IcmpSocket::Datagram
            };
            tracing::debug!(family, ?socket, "opened ICMP socket");
            Ok(Shared {
                client,
                socket,
                next_ident: AtomicU16::new(random_u16()),
                next_seq: AtomicU16::new(random_u16()),
                next_send: Mutex::new(Instant::now()),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let range = fs::read_to_string(PING_GROUP_RANGE).ok();
            let exe = std::env::current_exe().ok();
            Err(ProbeError::Permission(permission_message(exe.as_deref(), range.as_deref(), effective_gid())))
        }
        Err(e) => Err(ProbeError::Local(format!("cannot open an {family} socket: {e}"))),
    }
}

/// The message of [`ProbeError::Permission`] when neither kind of ICMP socket could be opened: both fixes, made
/// concrete with this executable's path, the text of `/proc/sys/net/ipv4/ping_group_range` and the process's
/// effective group id (each `None` when unknown).
pub fn permission_message(exe: Option<&Path>, ping_group_range: Option<&str>, gid: Option<u32>) -> String {
    let exe = exe.map_or_else(|| "/path/to/gonogo".to_string(), |p| p.display().to_string());
    let group = gid.map_or_else(|| "this process's group".to_string(), |g| format!("group {g} of this process"));
    let example = gid.map_or_else(|| "<gid> <gid>".to_string(), |g| format!("{g} {g}"));
    let current = match ping_group_range {
        None => format!("it could not be read from {PING_GROUP_RANGE}"),
        Some(text) => {
            let words: Vec<&str> = text.split_whitespace().collect();
            let shown = words.join(" ");
            let bounds = match words.as_slice() {
                [lo, hi] => lo.parse::<u64>().ok().zip(hi.parse::<u64>().ok()),
                _ => None,
            };
            match (bounds, gid) {
                (Some((lo, hi)), _) if lo > hi => format!("it is currently \"{shown}\", which allows no group"),
                (Some((lo, hi)), Some(g)) if (lo..=hi).contains(&u64::from(g)) => format!(
                    "it is currently \"{shown}\", which includes group {g}, so a sandbox or seccomp filter must be \
                     refusing the socket"
                ),
                _ => format!("it is currently \"{shown}\""),
            }
        }
    };
    format!(
        "ICMP needs a raw socket (CAP_NET_RAW: run as root, `setcap cap_net_raw+ep {exe}`, or systemd \
         AmbientCapabilities=CAP_NET_RAW) or an unprivileged ICMP socket (sysctl net.ipv4.ping_group_range, which \
         also governs ICMPv6, must include {group}, e.g. `sysctl -w net.ipv4.ping_group_range=\"{example}\"`; \
         {current})"
    )
}

/// The effective group id, from `/proc/self/status` (`Gid: real effective saved fs`).
fn effective_gid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Gid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A random 16-bit start for the identifier and sequence counters, so two agents (or two runs) on one host
/// do not start from the same numbers.
fn random_u16() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish() as u16
}

/// An ICMP echo check of one target, on the shared client of its address family.
#[derive(Debug)]
pub struct IcmpProbe {
    params: IcmpParams,
    clients: Arc<IcmpClients>,
}

/// What became of one echo request.
#[derive(Debug, Clone)]
enum Echo {
    /// An echo reply, after this round trip.
    Reply(Duration),
    /// An ICMP error about the echo, or the local stack said there is no route; the text says which.
    Unreachable(String),
    /// No answer within the timeout.
    Lost,
}

impl IcmpProbe {
    /// A probe for `params` using `clients`; nothing is resolved or opened until [`Probe::run`].
    pub fn new(params: IcmpParams, clients: Arc<IcmpClients>) -> IcmpProbe {
        IcmpProbe { params, clients }
    }

    async fn measure(&self) -> Result<IcmpObservations, ProbeError> {
        let p = &self.params;
        let mut obs = IcmpObservations {
            address: None,
            sent: 0,
            received: 0,
            loss: 0.0,
            rtt: None,
            samples_ms: Vec::new(),
            failure: None,
            fallback_tcp: None,
            detail: None,
        };
        if p.count == 0 {
            return Err(ProbeError::Local(format!("ICMP check of {} has count 0: nothing to send", p.target)));
        }
        let addr = match resolve(&p.target, 0, p.timeout).await {
            Ok(addr) => addr,
            Err(detail) => {
                obs.failure = Some(Failure::ResolveFailed);
                obs.detail = Some(detail);
                return Ok(obs);
            }
        };
        let ip = addr.ip().to_canonical();
        let scope_id = match addr {
            SocketAddr::V6(a) if a.scope_id() != 0 && ip.is_ipv6() => Some(a.scope_id()),
            _ => None,
        };
        obs.address = Some(ip);
        let shared = self.clients.client(ip).await?;
        let echoes = self.send_all(shared, ip, scope_id).await?;

        let mut rtts = Vec::new();
        let mut unreachable = None;
        for echo in &echoes {
            match echo {
                Echo::Reply(rtt) => {
                    rtts.push(*rtt);
                    obs.samples_ms.push(Some(rtt.as_secs_f64() * 1e3));
                }
                Echo::Unreachable(text) => {
                    unreachable.get_or_insert(text.as_str());
                    obs.samples_ms.push(None);
                }
                Echo::Lost => obs.samples_ms.push(None),
            }
        }
        obs.sent = p.count;
        obs.received = u32::try_from(rtts.len()).unwrap_or(u32::MAX);
        obs.loss = stats::loss_ratio(obs.sent, obs.received);
        obs.rtt = RttStats::from_samples(&rtts);
        if obs.received == 0 {
            let errors = echoes.iter().filter(|e| matches!(e, Echo::Unreachable(_))).count();
            match unreachable {
                Some(text) => {
                    obs.failure = Some(Failure::Unreachable);
                    obs.detail = Some(format!("{text} ({errors} of {} echo requests)", p.count));
                }
                None => {
                    obs.failure = Some(Failure::Timeout);
                    obs.detail = Some(format!(
                        "no reply from {ip} to {} echo request{} within {:?} each",
                        p.count,
                        if p.count == 1 { "" } else { "s" },
                        p.timeout
                    ));
                }
            }
        }
        Ok(obs)
    }

    /// Send `count` echoes `interval` apart, each awaited for up to `timeout` concurrently with the later ones.
    /// Returns what became of each, in send order.
    async fn send_all(&self, shared: Arc<Shared>, ip: IpAddr, scope_id: Option<u32>) -> Result<Vec<Echo>, ProbeError> {
        let p = &self.params;
        let count = usize::try_from(p.count).map_err(|_| ProbeError::Local("ICMP count too large".into()))?;
        // Raw socket: our own identifier, sequences from 0. Datagram socket: the kernel's identifier, so a block of
        // sequence numbers no concurrent probe of this socket uses (see the module documentation).
        let (ident, first_seq) = match shared.socket {
            IcmpSocket::Raw => (shared.next_ident.fetch_add(1, Ordering::Relaxed), 0),
            IcmpSocket::Datagram => (0, shared.next_seq.fetch_add(p.count as u16, Ordering::Relaxed)),
        };
        let payload: Arc<[u8]> = (0..p.size).map(|i| i as u8).collect();
        let start = Instant::now();
        let mut tasks = JoinSet::new();
        for i in 0..p.count {
            let at = start.checked_add(p.interval.saturating_mul(i)).ok_or_else(|| {
                ProbeError::Local(format!("ICMP interval {:?} × count {} is too long", p.interval, p.count))
            })?;
            let shared = Arc::clone(&shared);
            let payload = Arc::clone(&payload);
            let seq = PingSequence(first_seq.wrapping_add(i as u16));
            let timeout = p.timeout;
            tasks.spawn(async move {
                tokio::time::sleep_until(at).await;
                tokio::time::sleep_until(shared.reserve_send_slot(Instant::now())).await;
                let mut pinger = shared.client.pinger(ip, PingIdentifier(ident)).await;
                pinger.timeout(timeout);
                if let Some(scope_id) = scope_id {
                    pinger.scope_id(scope_id);
                }
                (i as usize, pinger.ping(seq, &payload).await)
            });
        }
        let mut echoes = vec![Echo::Lost; count];
        // Dropping `tasks` on an early return (or when the engine cuts this probe off) aborts the echoes in flight.
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.map_err(|e| ProbeError::Local(format!("ICMP echo task failed: {e}")))?;
            if let Some(slot) = echoes.get_mut(i) {
                *slot = classify(ip, result)?;
            }
        }
        Ok(echoes)
    }
}

/// What one `ping` result means: a reply, an ICMP error, a loss, or a local problem (`Err`).
fn classify(ip: IpAddr, result: Result<(IcmpPacket, Duration), SurgeError>) -> Result<Echo, ProbeError> {
    /// EHOSTDOWN on Linux: ARP/ND found nobody; io::ErrorKind has no stable variant for it.
    const EHOSTDOWN: i32 = 112;
    match result {
        Ok((packet, rtt)) => Ok(match describe_error(&packet) {
            None if is_echo_reply(&packet) => Echo::Reply(rtt),
            None => Echo::Lost,
            Some(text) => Echo::Unreachable(text),
        }),
        Err(SurgeError::Timeout { .. }) => Ok(Echo::Lost),
        Err(SurgeError::IOError(e))
            if matches!(e.kind(), std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable)
                || e.raw_os_error() == Some(EHOSTDOWN) =>
        {
            Ok(Echo::Unreachable(format!("cannot send to {ip}: {e}")))
        }
        Err(SurgeError::IOError(e)) => Err(ProbeError::Local(format!("sending an ICMP echo to {ip} failed: {e}"))),
        Err(e) => Err(ProbeError::Local(format!("ICMP echo to {ip} failed: {e}"))),
    }
}

fn is_echo_reply(packet: &IcmpPacket) -> bool {
    match packet {
        IcmpPacket::V4(p) => p.get_icmp_type().0 == 0,
        IcmpPacket::V6(p) => p.get_icmpv6_type().0 == 129,
    }
}

/// A human description of an ICMP error about one of our echoes ("host unreachable from 10.0.0.254"), or `None`
/// when the packet is not an error (an echo reply, a redirect).
fn describe_error(packet: &IcmpPacket) -> Option<String> {
    let (what, from) = match packet {
        IcmpPacket::V4(p) => {
            let code = p.get_icmp_code().0;
            let what = match (p.get_icmp_type().0, code) {
                (3, 0) => "destination network unreachable".to_string(),
                (3, 1) => "destination host unreachable".to_string(),
                (3, 2) => "destination protocol unreachable".to_string(),
                (3, 3) => "destination port unreachable".to_string(),
                (3, 4) => "fragmentation needed".to_string(),
                (3, 9 | 10 | 13) => "communication administratively prohibited".to_string(),
                (3, c) => format!("destination unreachable (code {c})"),
                (11, _) => "time to live exceeded".to_string(),
                (12, _) => "parameter problem".to_string(),
                _ => return None,
            };
            (what, IpAddr::V4(p.get_source()))
        }
        IcmpPacket::V6(p) => {
            let code = p.get_icmpv6_code().0;
            let what = match (p.get_icmpv6_type().0, code) {
                (1, 0) => "no route to destination".to_string(),
                (1, 1) => "communication administratively prohibited".to_string(),
                (1, 3) => "destination address unreachable".to_string(),
                (1, 4) => "destination port unreachable".to_string(),
                (1, 5 | 6) => "rejected by policy or reject route".to_string(),
                (1, c) => format!("destination unreachable (code {c})"),
                (2, _) => "packet too big".to_string(),
                (3, _) => "hop limit exceeded".to_string(),
                (4, _) => "parameter problem".to_string(),
                _ => return None,
            };
            (what, IpAddr::V6(p.get_source()))
        }
    };
    Some(format!("{what} from {from}"))
}

impl Probe for IcmpProbe {
    fn kind(&self) -> Kind {
        Kind::Icmp
    }

    fn target(&self) -> String {
        self.params.target.clone()
    }

    fn budget(&self) -> Duration {
        let p = &self.params;
        let echoes = p.interval.saturating_mul(p.count.saturating_sub(1)).saturating_add(p.timeout);
        if ip_literal(&p.target).is_some() { echoes } else { echoes.saturating_add(p.timeout) }
    }

    fn run(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.measure().await.map(Observations::Icmp) })
    }
}
