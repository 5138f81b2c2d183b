//! ICMP echo: loss, RTT statistics and jitter, IPv4 and IPv6.
//!
//! One [`IcmpClients`] is shared by every ICMP check: one socket per address family (and per
//! combination of socket options, below), one receive task per socket, replies matched by identifier and
//! sequence. A raw socket is used where permitted (root or CAP_NET_RAW), otherwise an unprivileged datagram ICMP
//! socket (net.ipv4.ping_group_range); with neither, the probe returns [`ProbeError::Permission`] naming both
//! fixes.
//!
//! How replies find their probe: the socket's receive task hands each reply to the echo waiting for (address
//! pinged, identifier, sequence). On a raw socket the identifier is ours, so every probe takes its own
//! identifier from a counter shared by all the raw sockets and numbers its echoes 0, 1, 2 … On a
//! datagram ICMP socket the kernel overwrites the identifier with the socket's "port", so replies are matched on
//! (address, sequence) only and two probes of the same address would collide on sequence 0; there every probe
//! takes a fresh block of sequence numbers from a per-socket counter instead.
//!
//! Round-trip times come from the kernel: every socket asks for `SO_TIMESTAMPNS`, so each reply carries the time
//! the kernel received it, and the RTT is that minus the time read just before `sendto`. Waking the receive task
//! and handing the reply over cost microseconds that are therefore not counted (`ping` and `fping` measure the
//! same way). The kernel stamp is wall-clock time: when it is missing, or lands outside the send-to-read interval
//! the monotonic clock saw (the wall clock stepped in between), the RTT falls back to the monotonic clock read
//! when the reply was read. A step back smaller than the RTT itself cannot be told apart and shortens that RTT.
//!
//! Socket options: DF ([`IcmpParams::dont_fragment`]), TTL ([`IcmpParams::ttl`]) and the source address
//! ([`IcmpParams::source`]) belong to a socket, not to a packet. Checks that ask for none of them share their
//! family's plain socket; every other combination gets a socket of its own (opened on first use, kept in
//! [`IcmpClients`] under the combination and shared by every check asking for the same one). Sockets are
//! gonogo's own (socket2, rustix and nix, no `unsafe` here): errors quoting our echoes are parsed too, with the
//! MTU that a "fragmentation needed" or "packet too big" error carries. The [`mtu`](crate::mtu) probe sends
//! through them. (surge-ping served the plain sockets until gonogo needed kernel receive timestamps, which it
//! cannot give: it reads the clock in its own task after `recv_from`.)
//!
//! DF is set with `IP_PMTUDISC_PROBE` / `IPV6_PMTUDISC_PROBE` (as `tracepath` does) rather than `…_DO`: the
//! packet leaves with DF whatever path MTU the kernel has cached from an earlier ICMP error, so every check
//! measures the path as it is now (a fixed path passes at once, not after the cache expires, ten minutes by
//! default). The kernel still refuses to send (EMSGSIZE) a packet larger than the outgoing interface's MTU.
//!
//! Echoes go out on schedule, `interval` apart, without waiting for earlier replies (as `ping` does); each
//! reply is awaited for up to `timeout`. Sends on one socket are paced (`SEND_GAP` after a burst of
//! `SEND_BURST`) so that many checks starting together do not overflow its receive buffer. On a raw socket an ICMP error quoting one of our echoes
//! (destination unreachable, time exceeded, packet too big) is reported as [`Failure::Unreachable`]; a datagram
//! socket does not deliver those, so there such an echo simply times out.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg, setsockopt, sockopt};
use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::sync::{OnceCell, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::stats::{self, RttStats};
use crate::tcp::{Resolved, ip_literal, resolve_for};
use crate::{Failure, Kind, Observations, Probe, ProbeError, ProbeFuture};

/// The least time between two echoes sent on one socket, once a burst of [`SEND_BURST`] is spent. Replies to a
/// burst of echoes arrive as a burst, and a socket's default receive buffer (about 200 KiB, some 150 small
/// packets; a raw socket on loopback also sees its own requests) overflows when hundreds of probes start at once.
/// Pacing the sends keeps the bursts small: at most about ten echoes per millisecond per socket after the first
/// burst, so 200 targets' first echoes go out within 20 ms.
const SEND_GAP: Duration = Duration::from_micros(100);

/// Echoes a socket may send at once, without waiting for [`SEND_GAP`]: an echo on a quiet socket (a single check,
/// `GET /probe`) goes out without delay (tokio's timer would round any wait up to a millisecond).
const SEND_BURST: u32 = 32;

/// Where the kernel keeps the group range allowed to open unprivileged ICMP sockets (IPv4 and IPv6 alike).
const PING_GROUP_RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

/// Bytes of IPv4 header (without options) and ICMP echo header in front of the payload: an echo of `size`
/// payload bytes is a `28 + size`-byte IPv4 packet.
pub const IPV4_ECHO_OVERHEAD: usize = 20 + 8;

/// Bytes of IPv6 header and ICMPv6 echo header in front of the payload: an echo of `size` payload bytes is a
/// `48 + size`-byte IPv6 packet.
pub const IPV6_ECHO_OVERHEAD: usize = 40 + 8;

/// Parameters of one ICMP check.
#[derive(Debug, Clone, Default)]
pub struct IcmpParams {
    /// IP address or host name.
    pub target: String,
    /// Echo requests to send.
    pub count: u32,
    /// Time between two echo requests.
    pub interval: Duration,
    /// ICMP payload size in bytes (after the 8-byte echo header). The IP packet is
    /// [`IPV4_ECHO_OVERHEAD`]` + size` bytes over IPv4 (56 → 84, 1472 → 1500) and [`IPV6_ECHO_OVERHEAD`]` + size`
    /// over IPv6 (1452 → 1500).
    pub size: usize,
    /// How long to wait for each reply; the check takes at most `(count - 1) × interval + timeout`.
    pub timeout: Duration,
    /// Send with DF set (IPv6: never fragment locally), so that an echo larger than the path MTU does not pass:
    /// the kernel refuses one larger than the outgoing interface's MTU (EMSGSIZE), a router answers one larger
    /// than its next hop with "fragmentation needed" / "packet too big". Such echoes are reported in
    /// [`IcmpObservations::too_big`] and, when none is answered, as [`Failure::Unreachable`] with the packet size
    /// and the MTU in the detail. Without DF (the default) the kernel fragments as it sees fit.
    pub dont_fragment: bool,
    /// IP TTL (IPv6: hop limit) of the echo requests, 1–255; `None` keeps the system default (64 on Linux). An echo
    /// that runs out of hops before the target comes back as "time to live exceeded" from the router where it
    /// expired (seen on a raw socket only).
    pub ttl: Option<u8>,
    /// Send from this local address (a test port's address) instead of the one the routing table picks. It must
    /// be an address of this host, of the target's family; otherwise the check cannot measure
    /// ([`ProbeError::Local`]). For a name, the first resolved address of the source's family is pinged.
    pub source: Option<IpAddr>,
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
    /// With `dont_fragment`: the path MTU in bytes reported for echoes that were too big to pass unfragmented,
    /// by a router ("fragmentation needed" / "packet too big") or by this host's kernel (the outgoing interface's
    /// MTU). Absent when every echo fitted, or when the router did not say (the detail then says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub too_big: Option<u32>,
    /// Human detail for the failure ("destination host unreachable from 10.0.0.254", "packet too big for the
    /// path: 1500-byte packets with DF set; path MTU 1400 (reported by 10.7.0.254); 3 of 3 echo requests").
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

/// Socket options an echo may ask for. All unset is the plain socket of the family; each other combination has a
/// socket of its own (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct SocketOptions {
    /// DF set (`IP_PMTUDISC_PROBE` / `IPV6_PMTUDISC_PROBE`).
    pub(crate) dont_fragment: bool,
    /// TTL / hop limit.
    pub(crate) ttl: Option<u8>,
    /// Local address bound.
    pub(crate) source: Option<IpAddr>,
}

/// One socket, opened on first use and kept as long as the [`IcmpClients`].
type Cell = OnceCell<Arc<EchoSocket>>;

/// The ICMP sockets shared by every ICMP check (the agent keeps one set per loaded config): one socket per
/// address family and combination of options ([`IcmpParams::dont_fragment`], [`IcmpParams::ttl`],
/// [`IcmpParams::source`]) asked for, each opened on first use with its receive task and kept open. A socket
/// that cannot be opened (no privilege, a foreign source address) is tried again by the next probe.
///
/// Use it within one tokio runtime: a socket's receive task runs on the runtime that opened it.
pub struct IcmpClients {
    /// Sockets by (IPv6?, options); the plain socket of a family is the one with default options.
    sockets: Mutex<HashMap<(bool, SocketOptions), Arc<Cell>>>,
    /// Next identifier to hand out on a raw socket. One counter for all raw sockets: a raw socket sees
    /// every ICMP message of its family, so identifiers must differ across sockets too.
    next_ident: AtomicU16,
}

impl Default for IcmpClients {
    fn default() -> IcmpClients {
        IcmpClients { sockets: Mutex::new(HashMap::new()), next_ident: AtomicU16::new(random_u16()) }
    }
}

/// The slot of an echo asked for at `now` on a socket whose paced schedule is at `schedule` (advanced by one
/// [`SEND_GAP`]): `now` while the socket has sent fewer than [`SEND_BURST`] echoes in the last `SEND_BURST` ×
/// `SEND_GAP`, otherwise the next free slot of the schedule.
fn send_slot(schedule: &mut Instant, now: Instant) -> Instant {
    let scheduled = now.max(*schedule);
    *schedule = scheduled + SEND_GAP;
    scheduled.checked_sub(SEND_GAP * (SEND_BURST - 1)).map_or(now, |early| early.max(now))
}

/// An address to ping, with the IPv6 scope (interface index) of a link-local address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub(crate) ip: IpAddr,
    pub(crate) scope_id: Option<u32>,
}

impl Target {
    /// The address to ping from a resolved socket address.
    pub(crate) fn from_resolved(addr: SocketAddr) -> Target {
        let ip = addr.ip().to_canonical();
        let scope_id = match addr {
            SocketAddr::V6(a) if a.scope_id() != 0 && ip.is_ipv6() => Some(a.scope_id()),
            _ => None,
        };
        Target { ip, scope_id }
    }

    fn socket_addr(self) -> SocketAddr {
        match self.ip {
            IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, 0, 0, self.scope_id.unwrap_or(0))),
            IpAddr::V4(_) => SocketAddr::new(self.ip, 0),
        }
    }
}

impl IcmpClients {
    /// No socket is opened until a probe needs one.
    pub fn new() -> IcmpClients {
        IcmpClients::default()
    }

    /// The socket kind used for `ip`'s family (echoes without socket options), opening it if needed; the error is
    /// the one the probes return.
    pub async fn socket(&self, ip: IpAddr) -> Result<IcmpSocket, ProbeError> {
        self.client(ip, SocketOptions::default()).await.map(|shared| shared.kind)
    }

    async fn client(&self, ip: IpAddr, options: SocketOptions) -> Result<Arc<EchoSocket>, ProbeError> {
        if let Some(source) = options.source
            && source.is_ipv4() != ip.is_ipv4()
        {
            let family = if source.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(ProbeError::Local(format!(
                "source address {source} is {family} but the target {ip} is not; use a source address of the \
                 target's family"
            )));
        }
        if options.ttl == Some(0) {
            return Err(ProbeError::Local("ICMP ttl 0 would expire at once: use 1–255, or leave it unset".into()));
        }
        let v6 = ip.is_ipv6();
        let cell = {
            let mut map = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry((v6, options)).or_default())
        };
        // A failure is not kept: the next probe tries again, so that a privilege granted or a source address
        // that came up (after the error told the operator how) takes effect without a reload.
        cell.get_or_try_init(|| async move { open_socket(v6, options).map(Arc::new) }).await.cloned()
    }

    /// Open the socket `options` ask for on `ip`'s family, if not yet opened; its error is the one echoes on it
    /// would return.
    pub(crate) async fn open(&self, ip: IpAddr, options: SocketOptions) -> Result<(), ProbeError> {
        self.client(ip, options).await.map(|_| ())
    }

    /// Send one echo with `payload_len` payload bytes to `to` through the socket with `options`, and wait up to
    /// `timeout` for what becomes of it. For the probes built on echoes (the MTU sweep).
    pub(crate) async fn echo_once(
        &self,
        to: Target,
        options: SocketOptions,
        payload_len: usize,
        timeout: Duration,
    ) -> Result<Echo, ProbeError> {
        let shared = self.client(to.ip, options).await?;
        let (ident, seq) = shared.numbers(&self.next_ident, 1);
        let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
        shared.echo(to, ident, seq, &payload, timeout).await
    }
}

impl fmt::Debug for IcmpClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut list = f.debug_list();
        for ((v6, options), cell) in map.iter() {
            let state = match cell.get() {
                None => "not open".to_string(),
                Some(shared) => format!("{:?}", shared.kind),
            };
            list.entry(&(if *v6 { "ICMPv6" } else { "ICMP" }, options, state));
        }
        list.finish()
    }
}

/// The [`ProbeError::Permission`] when neither kind of ICMP socket may be opened.
fn permission_error() -> ProbeError {
    let range = fs::read_to_string(PING_GROUP_RANGE).ok();
    let exe = std::env::current_exe().ok();
    ProbeError::Permission(permission_message(exe.as_deref(), range.as_deref(), effective_gid()))
}

/// Open a socket with `options`: raw first, datagram if that is refused, then kernel receive timestamps, TTL, DF
/// and the source address, and its receive task.
fn open_socket(v6: bool, options: SocketOptions) -> Result<EchoSocket, ProbeError> {
    let (domain, protocol, family) =
        if v6 { (Domain::IPV6, Protocol::ICMPV6, "ICMPv6") } else { (Domain::IPV4, Protocol::ICMPV4, "ICMP") };
    let (socket, kind) = match Socket::new(domain, Type::RAW, Some(protocol)) {
        Ok(socket) => (socket, IcmpSocket::Raw),
        Err(raw_error) => match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(socket) => (socket, IcmpSocket::Datagram),
            Err(_) if raw_error.kind() == std::io::ErrorKind::PermissionDenied => return Err(permission_error()),
            Err(_) => return Err(ProbeError::Local(format!("cannot open an {family} socket: {raw_error}"))),
        },
    };
    let option_error = |what: String, e: std::io::Error| {
        ProbeError::Local(format!("cannot set {what} on an {family} socket: {e} (a local problem, not the target)"))
    };
    // Where the kernel cannot stamp (not Linux-like), RTTs fall back to the monotonic clock: still a measurement.
    if let Err(e) = setsockopt(&socket, sockopt::ReceiveTimestampns, &true) {
        tracing::debug!(family, error = %e, "no kernel receive timestamps (SO_TIMESTAMPNS); RTTs from the clock");
    }
    if let Some(ttl) = options.ttl {
        let set = if v6 { socket.set_unicast_hops_v6(ttl.into()) } else { socket.set_ttl_v4(ttl.into()) };
        set.map_err(|e| option_error(format!("TTL {ttl}"), e))?;
    }
    if options.dont_fragment {
        use rustix::net::sockopt::{Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery};
        let set = if v6 {
            rustix::net::sockopt::set_ipv6_mtu_discover(&socket, Ipv6PathMtuDiscovery::PROBE)
        } else {
            rustix::net::sockopt::set_ip_mtu_discover(&socket, Ipv4PathMtuDiscovery::PROBE)
        };
        set.map_err(|e| option_error("DF (path MTU discovery \"probe\")".into(), e.into()))?;
    }
    if let Some(source) = options.source {
        socket.bind(&SocketAddr::new(source, 0).into()).map_err(|e| source_error(source, &e))?;
    }
    socket.set_nonblocking(true).map_err(|e| option_error("non-blocking mode".into(), e))?;
    let socket = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(OwnedFd::from(socket)))
        .map_err(|e| ProbeError::Local(format!("cannot register an {family} socket with the runtime: {e}")))?;
    let socket = Arc::new(socket);
    let waiters = Arc::new(Waiters::default());
    let receiver = tokio::spawn(receive(Arc::clone(&socket), v6, kind, Arc::clone(&waiters)));
    tracing::debug!(family, ?kind, ?options, "opened ICMP socket");
    Ok(EchoSocket {
        socket,
        v6,
        kind,
        waiters,
        receiver,
        next_seq: AtomicU16::new(random_u16()),
        next_send: Mutex::new(Instant::now()),
    })
}

/// The [`ProbeError`] for a source address that cannot be bound.
fn source_error(source: IpAddr, e: &std::io::Error) -> ProbeError {
    if e.kind() == std::io::ErrorKind::AddrNotAvailable {
        ProbeError::Local(format!(
            "source address {source} is not an address of this host ({e}); set `source` to one of its addresses \
             (the test port's, see `ip -brief address`) or leave it unset"
        ))
    } else {
        ProbeError::Local(format!("cannot send ICMP from source address {source}: {e}"))
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

// ---- Sockets ------------------------------------------------------------------------------------------------

/// An ICMP socket (see the module documentation), the task that receives on it, and the counters that keep
/// concurrent probes' echoes apart.
struct EchoSocket {
    socket: Arc<tokio::net::UdpSocket>,
    v6: bool,
    kind: IcmpSocket,
    waiters: Arc<Waiters>,
    receiver: JoinHandle<()>,
    /// Next sequence number to hand out (datagram sockets).
    next_seq: AtomicU16,
    /// The pacing schedule (see [`SEND_GAP`]): the time the next echo would go out if echoes were sent strictly
    /// `SEND_GAP` apart. An echo may go up to `SEND_BURST` gaps ahead of it.
    next_send: Mutex<Instant>,
}

impl Drop for EchoSocket {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

/// Which echo a message answers: the address pinged, our identifier (raw sockets only: on a datagram socket the
/// kernel owns it) and the sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Token {
    addr: IpAddr,
    ident: Option<u16>,
    seq: u16,
}

/// What came back for an echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// An echo reply.
    Reply,
    /// An ICMP error quoting the echo: type, code, the router (or host) that sent it, and the MTU it carries
    /// ("fragmentation needed" / "packet too big" only).
    Error { icmp_type: u8, code: u8, from: IpAddr, mtu: Option<u32> },
}

/// An answer as received: when it was read, when the kernel received it (`SO_TIMESTAMPNS`, wall clock), what it
/// says.
#[derive(Debug, Clone, Copy)]
struct Received {
    read_at: Instant,
    kernel_at: Option<SystemTime>,
    answer: Answer,
}

/// Where an answer goes: to the echo waiting for it.
type AnswerSender = oneshot::Sender<Received>;

/// The echoes awaiting an answer on one socket, each with the id of its registration.
#[derive(Default)]
struct Waiters {
    map: Mutex<HashMap<Token, (u64, AnswerSender)>>,
    next_id: AtomicU64,
}

impl Waiters {
    /// Wait for `token`; `None` when an echo with the same token is already waiting.
    fn register(self: &Arc<Self>, token: Token) -> Option<(WaiterGuard, oneshot::Receiver<Received>)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.contains_key(&token) {
            return None;
        }
        map.insert(token, (id, tx));
        Some((WaiterGuard { waiters: Arc::clone(self), token, id }, rx))
    }

    /// Hand `received` to whoever waits for `token`.
    fn deliver(&self, token: Token, received: Received) {
        let waiter = self.map.lock().unwrap_or_else(PoisonError::into_inner).remove(&token);
        if let Some((_, tx)) = waiter {
            // The echo may have timed out meanwhile; then nobody listens, which is fine.
            let _ = tx.send(received);
        }
    }
}

/// Removes its registration when the echo is done (answered, timed out or cancelled).
struct WaiterGuard {
    waiters: Arc<Waiters>,
    token: Token,
    id: u64,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        let mut map = self.waiters.map.lock().unwrap_or_else(PoisonError::into_inner);
        // Only our own registration: a later echo may have taken the same token after ours was answered.
        if map.get(&self.token).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.token);
        }
    }
}

impl EchoSocket {
    /// Reserve a send slot at or after `now` (see [`send_slot`]).
    fn reserve_send_slot(&self, now: Instant) -> Instant {
        // A poisoned lock only means another echo task panicked while holding it; the instant inside is intact.
        send_slot(&mut self.next_send.lock().unwrap_or_else(PoisonError::into_inner), now)
    }

    /// Identifier and first sequence number for `count` echoes of one probe (see the module documentation).
    fn numbers(&self, next_ident: &AtomicU16, count: u16) -> (u16, u16) {
        match self.kind {
            IcmpSocket::Raw => (next_ident.fetch_add(1, Ordering::Relaxed), 0),
            IcmpSocket::Datagram => (0, self.next_seq.fetch_add(count, Ordering::Relaxed)),
        }
    }

    /// Send one echo (at the next free send slot) and wait up to `timeout` for what becomes of it.
    async fn echo(
        &self,
        to: Target,
        ident: u16,
        seq: u16,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Echo, ProbeError> {
        let now = Instant::now();
        let slot = self.reserve_send_slot(now);
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
        let raw = self.kind == IcmpSocket::Raw;
        let token = Token { addr: to.ip, ident: raw.then_some(ident), seq };
        let Some((_guard, rx)) = self.waiters.register(token) else {
            return Err(ProbeError::Local(format!("an ICMP echo to {} with sequence {seq} is already waiting", to.ip)));
        };
        let packet = echo_request(self.v6, ident, seq, payload);
        // Both clocks just before the send: the kernel's receive stamp is wall-clock time (see `round_trip`).
        let sent = Instant::now();
        let sent_wall = SystemTime::now();
        if let Err(e) = self.socket.send_to(&packet, to.socket_addr()).await {
            return send_error(to.ip, &e);
        }
        let deadline = sent + timeout;
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Received { read_at, kernel_at, answer: Answer::Reply })) => {
                Ok(Echo::Reply(round_trip(sent, sent_wall, read_at, kernel_at)))
            }
            Ok(Ok(Received { answer: Answer::Error { icmp_type, code, from, mtu }, .. })) => {
                let too_big = if self.v6 { icmp_type == 2 } else { icmp_type == 3 && code == 4 };
                Ok(if too_big {
                    Echo::TooBig { mtu: mtu.filter(|&m| m > 0), from: Some(from) }
                } else {
                    let what = describe(self.v6, icmp_type, code)
                        .unwrap_or_else(|| format!("ICMP error type {icmp_type} code {code}"));
                    Echo::Unreachable(format!("{what} from {from}"))
                })
            }
            // The receive task is gone (the socket is being dropped) or the wait timed out.
            Ok(Err(_)) | Err(_) => Ok(Echo::Lost),
        }
    }
}

/// The round trip of an echo sent at `sent` (monotonic) / `sent_wall` (wall clock, read just after `sent`) whose
/// answer the receive task read at `read_at` and the kernel stamped `kernel_at`.
///
/// The kernel stamp when it is usable: the reply's arrival without the wake-up and hand-over in user space. It is
/// wall-clock time, so it is trusted only when it lands between the send and the read as the monotonic clock
/// saw them; a wall-clock step in between (NTP, an operator) or a missing stamp gives the monotonic measure.
fn round_trip(sent: Instant, sent_wall: SystemTime, read_at: Instant, kernel_at: Option<SystemTime>) -> Duration {
    let monotonic = read_at.saturating_duration_since(sent);
    match kernel_at.map(|at| at.duration_since(sent_wall)) {
        Some(Ok(kernel)) if kernel <= monotonic => kernel,
        _ => monotonic,
    }
}

/// What a "too big" echo means for a check that did not ask for DF: a router's "fragmentation needed" / "packet
/// too big" is an unreachable hop like any other ICMP error (as it was reported before DF existed), and this
/// host refusing to send (EMSGSIZE without DF) is a packet larger than IP can carry at all: a local problem.
fn without_df(echo: Echo, ip: IpAddr) -> Result<Echo, ProbeError> {
    match echo {
        Echo::TooBig { from: Some(from), mtu } => {
            let what = if ip.is_ipv6() { "packet too big" } else { "fragmentation needed" };
            let mtu = mtu.map_or(String::new(), |m| format!(", next-hop MTU {m}"));
            Ok(Echo::Unreachable(format!("{what} from {from}{mtu}")))
        }
        Echo::TooBig { from: None, .. } => Err(ProbeError::Local(format!(
            "sending an ICMP echo to {ip} failed: the packet is larger than this host can send (EMSGSIZE); use a \
             smaller `size`"
        ))),
        echo => Ok(echo),
    }
}

/// What a failed send means: too big (EMSGSIZE: larger than the interface MTU with DF set), unreachable (no
/// route, no neighbour), or a local problem.
fn send_error(ip: IpAddr, e: &std::io::Error) -> Result<Echo, ProbeError> {
    /// EHOSTDOWN on Linux: ARP/ND found nobody; io::ErrorKind has no stable variant for it.
    const EHOSTDOWN: i32 = 112;
    if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) {
        return Ok(Echo::TooBig { mtu: None, from: None });
    }
    if matches!(e.kind(), std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable)
        || e.raw_os_error() == Some(EHOSTDOWN)
    {
        return Ok(Echo::Unreachable(format!("cannot send to {ip}: {e}")));
    }
    Err(ProbeError::Local(format!("sending an ICMP echo to {ip} failed: {e}")))
}

/// An echo request: type, code, checksum (IPv4; the kernel fills it for ICMPv6 and for datagram sockets),
/// identifier (a datagram socket's kernel replaces it), sequence, payload.
fn echo_request(v6: bool, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(8 + payload.len());
    packet.extend_from_slice(&[if v6 { 128 } else { 8 }, 0, 0, 0]);
    packet.extend_from_slice(&ident.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(payload);
    if !v6 {
        let sum = internet_checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The RFC 1071 checksum.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 =
        data.chunks(2).map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Receive on a socket until it is dropped, handing every answer to its echo.
async fn receive(socket: Arc<tokio::net::UdpSocket>, v6: bool, kind: IcmpSocket, waiters: Arc<Waiters>) {
    // Only headers are read: a longer datagram is cut, which is fine.
    let mut buf = vec![0u8; 2048];
    let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let fd = socket.as_raw_fd();
    loop {
        match socket.async_io(Interest::READABLE, || recv_stamped(fd, &mut buf, &mut control)).await {
            Ok((len, from, kernel_at)) => {
                let read_at = Instant::now();
                let (Some(message), Some(from)) = (buf.get(..len), from) else { continue };
                if let Some((token, answer)) = parse_answer(message, from, v6, kind) {
                    waiters.deliver(token, Received { read_at, kernel_at, answer });
                }
            }
            Err(e) => {
                // Not expected on an unconnected ICMP socket; do not spin if it keeps failing.
                tracing::debug!(error = %e, "receiving on an ICMP socket failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One `recvmsg` on `fd`: the length read into `buf`, the sender's address and the kernel's receive timestamp
/// (`SO_TIMESTAMPNS`), when given.
fn recv_stamped(
    fd: RawFd,
    buf: &mut [u8],
    control: &mut [u8],
) -> std::io::Result<(usize, Option<IpAddr>, Option<SystemTime>)> {
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(control), MsgFlags::empty())?;
    let from = msg.address.as_ref().and_then(|a| match a.family() {
        Some(nix::sys::socket::AddressFamily::Inet) => a.as_sockaddr_in().map(|a| IpAddr::V4(a.ip())),
        Some(nix::sys::socket::AddressFamily::Inet6) => a.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())),
        _ => None,
    });
    // A truncated control buffer (cmsgs() fails) only costs the kernel stamp.
    let stamp = msg.cmsgs().ok().and_then(|mut cmsgs| {
        cmsgs.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(ts) => {
                let secs = u64::try_from(ts.tv_sec()).ok()?;
                let nanos = u32::try_from(ts.tv_nsec()).ok()?;
                SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
            }
            _ => None,
        })
    });
    Ok((msg.bytes, from.map(|ip| ip.to_canonical()), stamp))
}

/// The echo a received ICMP message answers and what it says, or `None` when it answers none of ours (another
/// program's traffic, our own requests seen on loopback, neighbour discovery, a malformed message).
///
/// A raw IPv4 socket delivers the IP header too; ICMPv6 and datagram sockets deliver the ICMP message only. An
/// error quotes the IP header and the first 8 bytes of the echo request it is about: that gives the address
/// pinged, the identifier and the sequence. Our echoes carry no IP options or IPv6 extension headers.
fn parse_answer(message: &[u8], from: IpAddr, v6: bool, kind: IcmpSocket) -> Option<(Token, Answer)> {
    let icmp = if !v6 && kind == IcmpSocket::Raw {
        let header_len = usize::from(message.first()? & 0x0f) * 4;
        message.get(header_len..)?
    } else {
        message
    };
    let word =
        |bytes: &[u8], at: usize| -> Option<u16> { Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?)) };
    let ident = |id: u16| (kind == IcmpSocket::Raw).then_some(id);
    let (icmp_type, code) = (*icmp.first()?, *icmp.get(1)?);
    if icmp_type == if v6 { 129 } else { 0 } {
        let token = Token { addr: from, ident: ident(word(icmp, 4)?), seq: word(icmp, 6)? };
        return Some((token, Answer::Reply));
    }
    let is_error = if v6 { matches!(icmp_type, 1..=4) } else { matches!(icmp_type, 3 | 11 | 12) };
    if !is_error {
        return None;
    }
    let quoted = icmp.get(8..)?;
    let (addr, request) = if v6 {
        // Next header: ICMPv6, directly after the fixed header.
        if *quoted.get(6)? != 58 {
            return None;
        }
        let dst: [u8; 16] = quoted.get(24..40)?.try_into().ok()?;
        (IpAddr::from(dst), quoted.get(40..)?)
    } else {
        let first = *quoted.first()?;
        if first >> 4 != 4 || *quoted.get(9)? != 1 {
            return None;
        }
        let dst: [u8; 4] = quoted.get(16..20)?.try_into().ok()?;
        (IpAddr::from(dst), quoted.get(usize::from(first & 0x0f) * 4..)?)
    };
    if *request.first()? != if v6 { 128 } else { 8 } {
        return None;
    }
    let mtu = match (v6, icmp_type, code) {
        (false, 3, 4) => Some(u32::from(word(icmp, 6)?)),
        (true, 2, _) => Some(u32::from_be_bytes(icmp.get(4..8)?.try_into().ok()?)),
        _ => None,
    };
    let token = Token { addr, ident: ident(word(request, 4)?), seq: word(request, 6)? };
    Some((token, Answer::Error { icmp_type, code, from, mtu }))
}

// ---- The ICMP probe ------------------------------------------------------------------------------------------

/// An ICMP echo check of one target, on the shared client of its address family.
#[derive(Debug)]
pub struct IcmpProbe {
    params: IcmpParams,
    clients: Arc<IcmpClients>,
}

/// What became of one echo request.
#[derive(Debug, Clone)]
pub(crate) enum Echo {
    /// An echo reply, after this round trip.
    Reply(Duration),
    /// An ICMP error about the echo, or the local stack said there is no route; the text says which.
    Unreachable(String),
    /// Too big to pass with DF set: a "fragmentation needed" / "packet too big" error from `from` carrying `mtu`
    /// (`None` when the router gave none), or, with `from` `None`, this host refused to send it (EMSGSIZE: larger
    /// than the outgoing interface's MTU; `mtu` is then left for the caller to find).
    TooBig { mtu: Option<u32>, from: Option<IpAddr> },
    /// No answer within the timeout.
    Lost,
}

/// The detail for an echo too big for the path: "packet too big for the path: 1500-byte packets with DF set;
/// path MTU 1400 (reported by 10.7.0.254)". `from` is the router that said so, or `None` for this host (then
/// `interface` names the interface whose MTU it is, when known).
pub(crate) fn too_big_text(
    packet_size: usize,
    mtu: Option<u32>,
    from: Option<IpAddr>,
    interface: Option<&str>,
) -> String {
    let mtu = mtu.map_or_else(|| "not given".to_string(), |m| m.to_string());
    let by = match (from, interface) {
        (Some(router), _) => router.to_string(),
        (None, Some(interface)) => format!("this host: the MTU of its interface {interface}"),
        (None, None) => "this host's kernel".to_string(),
    };
    format!("packet too big for the path: {packet_size}-byte packets with DF set; path MTU {mtu} (reported by {by})")
}

impl IcmpProbe {
    /// A probe for `params` using `clients`; nothing is resolved or opened until [`Probe::run`].
    pub fn new(params: IcmpParams, clients: Arc<IcmpClients>) -> IcmpProbe {
        IcmpProbe { params, clients }
    }

    fn options(&self) -> SocketOptions {
        let p = &self.params;
        SocketOptions { dont_fragment: p.dont_fragment, ttl: p.ttl, source: p.source }
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
            too_big: None,
            detail: None,
        };
        if p.count == 0 {
            return Err(ProbeError::Local(format!("ICMP check of {} has count 0: nothing to send", p.target)));
        }
        let addr = match resolve_for(&p.target, 0, p.timeout, p.source).await {
            Ok(addr) => addr,
            Err(Resolved::Failed(detail)) => {
                obs.failure = Some(Failure::ResolveFailed);
                obs.detail = Some(detail);
                return Ok(obs);
            }
            Err(Resolved::Local(e)) => return Err(e),
        };
        let to = Target::from_resolved(addr);
        obs.address = Some(to.ip);
        let shared = self.clients.client(to.ip, self.options()).await?;
        let socket = shared.kind;
        let mut echoes = self.send_all(shared, to).await?;
        if !p.dont_fragment {
            // "Too big" is about DF, which this check did not ask for (the kernel may still set it on its own).
            echoes = echoes.into_iter().map(|e| without_df(e, to.ip)).collect::<Result<_, _>>()?;
        }

        let mut rtts = Vec::new();
        let mut unreachable = None;
        let mut too_big = None;
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
                Echo::TooBig { mtu, from } => {
                    too_big.get_or_insert((*mtu, *from));
                    obs.samples_ms.push(None);
                }
                Echo::Lost => obs.samples_ms.push(None),
            }
        }
        obs.sent = p.count;
        obs.received = u32::try_from(rtts.len()).unwrap_or(u32::MAX);
        obs.loss = stats::loss_ratio(obs.sent, obs.received);
        obs.rtt = RttStats::from_samples(&rtts);
        let mut too_big_detail = None;
        if let Some((mtu, from)) = too_big {
            // This host refused: the MTU is its outgoing interface's (DF is set without the cached path MTU).
            let route = from.is_none().then(|| crate::mtu::route_to(to, p.source));
            let mtu = mtu.or_else(|| route.as_ref().and_then(|r| r.interface_mtu.or(r.kernel_mtu)));
            obs.too_big = mtu;
            let header = if to.ip.is_ipv6() { IPV6_ECHO_OVERHEAD } else { IPV4_ECHO_OVERHEAD };
            let interface = route.as_ref().and_then(|r| r.interface.as_deref());
            too_big_detail = Some(too_big_text(header + p.size, mtu, from, interface));
        }
        if obs.received == 0 {
            let count = |f: fn(&Echo) -> bool| echoes.iter().filter(|e| f(e)).count();
            if let Some(text) = too_big_detail {
                let n = count(|e| matches!(e, Echo::TooBig { .. }));
                obs.failure = Some(Failure::Unreachable);
                obs.detail = Some(format!("{text}; {n} of {} echo requests", p.count));
            } else if let Some(text) = unreachable {
                let n = count(|e| matches!(e, Echo::Unreachable(_)));
                obs.failure = Some(Failure::Unreachable);
                obs.detail = Some(format!("{text} ({n} of {} echo requests)", p.count));
            } else {
                obs.failure = Some(Failure::Timeout);
                // A datagram socket never sees "fragmentation needed": say that silence may be the path MTU.
                let hint = if p.dont_fragment && socket == IcmpSocket::Datagram {
                    " (DF set on an unprivileged ICMP socket, which does not see \"fragmentation needed\" errors: a \
                     path MTU below the packet size looks like this; grant CAP_NET_RAW to tell them apart)"
                } else {
                    ""
                };
                obs.detail = Some(format!(
                    "no reply from {} to {} echo request{} within {:?} each{hint}",
                    to.ip,
                    p.count,
                    if p.count == 1 { "" } else { "s" },
                    p.timeout
                ));
            }
        }
        Ok(obs)
    }

    /// Send `count` echoes `interval` apart, each awaited for up to `timeout` concurrently with the later ones.
    /// Returns what became of each, in send order.
    async fn send_all(&self, shared: Arc<EchoSocket>, to: Target) -> Result<Vec<Echo>, ProbeError> {
        let p = &self.params;
        let count = usize::try_from(p.count).map_err(|_| ProbeError::Local("ICMP count too large".into()))?;
        // Raw socket: our own identifier, sequences from 0. Datagram socket: the kernel's identifier, so a block of
        // sequence numbers no concurrent probe of this socket uses (see the module documentation).
        let (ident, first_seq) = shared.numbers(&self.clients.next_ident, p.count as u16);
        let payload: Arc<[u8]> = (0..p.size).map(|i| i as u8).collect();
        let start = Instant::now();
        let mut tasks = JoinSet::new();
        for i in 0..p.count {
            let at = start.checked_add(p.interval.saturating_mul(i)).ok_or_else(|| {
                ProbeError::Local(format!("ICMP interval {:?} × count {} is too long", p.interval, p.count))
            })?;
            let shared = Arc::clone(&shared);
            let payload = Arc::clone(&payload);
            let seq = first_seq.wrapping_add(i as u16);
            let timeout = p.timeout;
            tasks.spawn(async move {
                // tokio rounds a sleep up to its next millisecond tick, even one already due: the first echo
                // goes out at once.
                if at > Instant::now() {
                    tokio::time::sleep_until(at).await;
                }
                (i as usize, shared.echo(to, ident, seq, &payload, timeout).await)
            });
        }
        let mut echoes = vec![Echo::Lost; count];
        // Dropping `tasks` on an early return (or when the engine cuts this probe off) aborts the echoes in flight.
        while let Some(joined) = tasks.join_next().await {
            let (i, echo) = joined.map_err(|e| ProbeError::Local(format!("ICMP echo task failed: {e}")))?;
            if let Some(slot) = echoes.get_mut(i) {
                *slot = echo?;
            }
        }
        Ok(echoes)
    }
}

/// What an ICMP (`v6` false) or ICMPv6 error type and code mean, or `None` when they are not an error.
fn describe(v6: bool, icmp_type: u8, code: u8) -> Option<String> {
    let what = if v6 {
        match (icmp_type, code) {
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
        }
    } else {
        match (icmp_type, code) {
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
        }
    };
    Some(what)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header (no options) from `src` to `dst` carrying ICMP.
    fn ipv4_header(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    }

    #[test]
    fn a_quiet_socket_sends_at_once_and_a_busy_one_is_paced_after_a_burst() {
        let now = Instant::now();
        let mut schedule = now;
        let slots: Vec<Duration> = (0..40).map(|_| send_slot(&mut schedule, now) - now).collect();
        let burst = SEND_BURST as usize;
        assert!(slots[..burst].iter().all(|d| d.is_zero()), "{slots:?}");
        for (k, d) in slots.iter().enumerate().skip(burst) {
            assert_eq!(*d, SEND_GAP * (k + 1 - burst) as u32, "slot {k}");
        }
        // Once the schedule is behind us again, the next echo goes at once.
        let later = now + SEND_GAP * 100;
        assert_eq!(send_slot(&mut schedule, later), later);
    }

    #[test]
    fn the_round_trip_is_the_kernel_stamp_unless_the_wall_clock_stepped() {
        let sent = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let read_at = sent + Duration::from_micros(40);
        let us = Duration::from_micros;
        // The kernel received the reply 12 µs after the send; waking up and reading took the rest.
        assert_eq!(round_trip(sent, wall, read_at, Some(wall + us(12))), us(12));
        // No stamp, a stamp before the send (clock stepped back) or after the read (stepped forward): monotonic.
        assert_eq!(round_trip(sent, wall, read_at, None), us(40));
        assert_eq!(round_trip(sent, wall, read_at, Some(wall - us(5))), us(40));
        assert_eq!(round_trip(sent, wall, read_at, Some(wall + Duration::from_secs(3600))), us(40));
    }

    /// A real echo to 127.0.0.1 and to ::1: the reply comes with the kernel's receive stamp, between the send and
    /// the read.
    #[tokio::test]
    async fn loopback_replies_carry_a_kernel_receive_timestamp() {
        for (v6, ip) in [(false, "127.0.0.1"), (true, "::1")] {
            let shared = match open_socket(v6, SocketOptions::default()) {
                Ok(shared) => shared,
                Err(e) => {
                    eprintln!("SKIPPED: no ICMP socket for {ip} here: {e}");
                    continue;
                }
            };
            let ip: IpAddr = ip.parse().expect("ip");
            let (ident, seq) = shared.numbers(&AtomicU16::new(0x4242), 1);
            let token = Token { addr: ip, ident: (shared.kind == IcmpSocket::Raw).then_some(ident), seq };
            let (_guard, rx) = shared.waiters.register(token).expect("registered");
            let before = SystemTime::now();
            let request = echo_request(v6, ident, seq, b"stamp");
            if let Err(e) = shared.socket.send_to(&request, SocketAddr::new(ip, 0)).await {
                // A host without IPv6 on loopback: nothing to measure there.
                eprintln!("SKIPPED: cannot send to {ip}: {e}");
                continue;
            }
            let received = tokio::time::timeout(Duration::from_secs(5), rx).await.expect("a reply").expect("delivered");
            let after = SystemTime::now();
            assert_eq!(received.answer, Answer::Reply, "{ip}");
            let stamp = received.kernel_at.expect("SO_TIMESTAMPNS gave the reply a kernel timestamp");
            assert!(before <= stamp && stamp <= after, "{ip}: {before:?} <= {stamp:?} <= {after:?}");
        }
    }

    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let packet = echo_request(false, 0x1234, 7, b"abc");
        assert_eq!(&packet[..2], &[8, 0]);
        assert_eq!(&packet[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(internet_checksum(&packet), 0, "a packet with its checksum sums to zero");
        // ICMPv6: the kernel computes the checksum.
        assert_eq!(echo_request(true, 1, 2, b"")[..4], [128, 0, 0, 0]);
    }

    #[test]
    fn fragmentation_needed_names_the_echo_and_the_mtu() {
        // From router 10.7.0.254, about our echo (ident 0x0102, seq 5) to 10.8.0.2; next-hop MTU 1400.
        let mut icmp = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
        icmp.extend(ipv4_header([10, 7, 0, 1], [10, 8, 0, 2]));
        icmp.extend_from_slice(&[8, 0, 0, 0, 1, 2, 0, 5]);
        let mut message = ipv4_header([10, 7, 0, 254], [10, 7, 0, 1]);
        message.extend(&icmp);
        let router: IpAddr = "10.7.0.254".parse().expect("ip");
        let (token, answer) = parse_answer(&message, router, false, IcmpSocket::Raw).expect("parsed");
        assert_eq!(token, Token { addr: "10.8.0.2".parse().expect("ip"), ident: Some(0x0102), seq: 5 });
        assert_eq!(answer, Answer::Error { icmp_type: 3, code: 4, from: router, mtu: Some(1400) });
        // Cut short: no answer rather than a panic.
        for len in 0..message.len() - 1 {
            let _ = parse_answer(&message[..len], router, false, IcmpSocket::Raw);
        }
    }

    #[test]
    fn packet_too_big_v6_and_replies() {
        let router: IpAddr = "fd00:7::254".parse().expect("ip");
        let target: std::net::Ipv6Addr = "fd00:8::2".parse().expect("ip");
        let mut icmp = vec![2, 0, 0, 0, 0, 0, 0x05, 0x78];
        let mut quoted = vec![0x60, 0, 0, 0, 0x05, 0xb4, 58, 64];
        quoted.extend_from_slice(&"fd00:7::1".parse::<std::net::Ipv6Addr>().expect("ip").octets());
        quoted.extend_from_slice(&target.octets());
        quoted.extend_from_slice(&[128, 0, 0, 0, 0, 9, 0, 1]);
        icmp.extend(quoted);
        let (token, answer) = parse_answer(&icmp, router, true, IcmpSocket::Raw).expect("parsed");
        assert_eq!(token, Token { addr: IpAddr::V6(target), ident: Some(9), seq: 1 });
        assert_eq!(answer, Answer::Error { icmp_type: 2, code: 0, from: router, mtu: Some(1400) });

        // A reply on a datagram socket: the kernel's identifier is not ours, so it is not part of the token.
        let reply = [129, 0, 0, 0, 0xab, 0xcd, 0, 3, 1, 2, 3];
        let (token, answer) = parse_answer(&reply, IpAddr::V6(target), true, IcmpSocket::Datagram).expect("parsed");
        assert_eq!((token.ident, token.seq, answer), (None, 3, Answer::Reply));
        // Our own request seen on loopback, and neighbour solicitations, answer nothing.
        assert_eq!(parse_answer(&[128, 0, 0, 0, 0, 1, 0, 1], router, true, IcmpSocket::Raw), None);
        assert_eq!(parse_answer(&[135, 0, 0, 0, 0, 0, 0, 0], router, true, IcmpSocket::Raw), None);
    }

    #[test]
    fn without_df_too_big_is_an_unreachable_hop_or_a_local_problem() {
        let ip: IpAddr = "10.8.0.2".parse().expect("ip");
        let router = Some("10.7.0.254".parse().expect("ip"));
        match without_df(Echo::TooBig { mtu: Some(1400), from: router }, ip) {
            Ok(Echo::Unreachable(text)) => assert_eq!(text, "fragmentation needed from 10.7.0.254, next-hop MTU 1400"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(without_df(Echo::TooBig { mtu: None, from: None }, ip), Err(ProbeError::Local(_))));
        assert!(matches!(without_df(Echo::Lost, ip), Ok(Echo::Lost)));
    }

    #[test]
    fn too_big_text_names_size_mtu_and_reporter() {
        let router = Some("10.7.0.254".parse().expect("ip"));
        assert_eq!(
            too_big_text(1500, Some(1400), router, None),
            "packet too big for the path: 1500-byte packets with DF set; path MTU 1400 (reported by 10.7.0.254)"
        );
        assert!(
            too_big_text(1500, Some(1400), None, Some("eth1"))
                .ends_with("(reported by this host: the MTU of its interface eth1)")
        );
        assert!(too_big_text(1500, None, None, None).contains("path MTU not given (reported by this host's kernel)"));
    }
}
