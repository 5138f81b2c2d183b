//! Path MTU: the largest IP packet that crosses the path to a target unfragmented, found by a sweep of ICMP
//! echoes with DF set.
//!
//! The sweep sends through the shared [`IcmpClients`], on a socket with DF set (`IP_PMTUDISC_PROBE`, see
//! [`icmp`](crate::icmp): every echo leaves with DF whatever path MTU the kernel has cached, so earlier runs and
//! earlier ICMP errors do not colour the result). Sizes are IP packet sizes (IPv4: 28 bytes of headers plus the
//! payload, IPv6: 48).
//!
//! 1. `min` first (raised to 68 bytes for IPv4 and 1280 for IPv6, the least MTU each allows): a reply shows the
//!    target answers at all. Silence there is [`Failure::Timeout`], an ICMP error [`Failure::Unreachable`], and
//!    the sweep stops without a path MTU.
//! 2. `max` next (default: the MTU of the interface the route to the target leaves by). A reply ends the sweep.
//! 3. Then a binary search between the largest size answered and the smallest one that was not. A "fragmentation
//!    needed" / "packet too big" error names the MTU of the hop that refused; this host's kernel refuses
//!    (EMSGSIZE) a packet larger than the interface MTU. Either way every larger size is known too big and the
//!    reported MTU is tried next, so a path with one narrow hop takes three steps.
//!
//! Each step sends one echo and, when it goes unanswered, one more. Silence after both counts as too big: a
//! router that drops a DF packet it cannot forward without sending the ICMP error (a "PMTU black hole", or an
//! unprivileged datagram socket, which never sees ICMP errors) looks exactly like that; the target answered at
//! `min`, so plain loss is the less likely reading. The search takes at most `2 + ⌈log2(max − min + 1)⌉` steps.
//!
//! The interface and its MTU come from the kernel's routing socket (rtnetlink, as `ip route get` and `ip link`
//! ask, no subprocess), so policy routing by source address is followed; where a sandbox forbids netlink, from
//! `/proc/net/route` / `/proc/net/ipv6_route` (main table) and `/sys/class/net/<interface>/mtu` (see
//! `route_to`).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::icmp::{Echo, IPV4_ECHO_OVERHEAD, IPV6_ECHO_OVERHEAD, IcmpClients, SocketOptions, Target, too_big_text};
use crate::tcp::{Resolved, ip_literal, resolve_for};
use crate::{Failure, Kind, Observations, Probe, ProbeError, ProbeFuture};

/// The least MTU IPv4 allows (RFC 791): `min` is raised to it.
pub const IPV4_MIN_MTU: u32 = 68;

/// The least MTU IPv6 allows (RFC 8200): `min` is raised to it.
pub const IPV6_MIN_MTU: u32 = 1280;

/// The largest IP packet (the 16-bit total length of IPv4; IPv6 without jumbograms): `max` is capped to it.
const MAX_PACKET: u32 = 65535;

/// Parameters of one path MTU check.
#[derive(Debug, Clone, Default)]
pub struct MtuParams {
    /// IP address or host name.
    pub target: String,
    /// Send from this local address (a test port's address); it must belong to this host. For a name, the first
    /// resolved address of the source's family is used.
    pub source: Option<IpAddr>,
    /// The smallest IP packet size to try, in bytes; raised to 68 (IPv4) or 1280 (IPv6), so 0 means "the least the
    /// protocol allows". A path that does not pass even this is a failure.
    pub min: u16,
    /// The largest IP packet size to try, in bytes; `None`: the MTU of the interface the route to the target
    /// uses.
    pub max: Option<u16>,
    /// How long to wait for each reply.
    pub timeout: Duration,
}

/// What a path MTU check saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MtuObservations {
    /// The address probed (after resolving a name).
    pub address: Option<IpAddr>,
    /// The interface the route to the target leaves by (`lo` for this host's own addresses), when found.
    pub interface: Option<String>,
    /// That interface's MTU in bytes.
    pub interface_mtu: Option<u32>,
    /// The largest IP packet, in bytes, that reached the target and was answered with DF set: the path MTU within
    /// `min..=max`. `None` when not even `min` passed.
    pub path_mtu: Option<u32>,
    /// Every step of the sweep, in order.
    pub probes: Vec<MtuStep>,
    /// Set when no path MTU could be found (name did not resolve, no reply, unreachable, too big even at `min`).
    pub failure: Option<Failure>,
    /// Human detail for the failure.
    pub detail: Option<String>,
}

/// One step of the sweep: one packet size, tried once or, when unanswered, twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtuStep {
    /// IP packet size in bytes (headers included).
    pub size: u32,
    /// What became of it.
    pub outcome: MtuOutcome,
    /// With `too_big`: the MTU reported, by a router's ICMP error or (without `reported_by`) by this host, whose
    /// interface MTU it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_mtu: Option<u32>,
    /// With `too_big`: the router (or host) whose ICMP error said so; absent when this host refused to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<IpAddr>,
}

/// What became of one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MtuOutcome {
    /// Answered: packets of this size pass.
    Ok,
    /// Unanswered twice (or an ICMP error other than "too big"): counted as too big.
    Lost,
    /// Refused as too big, by a router's ICMP error or by this host (larger than the interface MTU).
    TooBig,
}

/// A path MTU check of one target.
#[derive(Debug)]
pub struct MtuProbe {
    params: MtuParams,
    clients: Arc<IcmpClients>,
}

/// The most steps a sweep between `min` and `max` takes: `min`, `max`, then a binary search over the sizes in
/// between (a reported MTU only shortens it).
fn step_limit(min: u32, max: u32) -> u32 {
    2 + (32 - max.saturating_sub(min).leading_zeros())
}

/// One step's result, with the text of a non-"too big" ICMP error when there was one.
struct Stepped {
    step: MtuStep,
    unreachable: Option<String>,
}

impl MtuProbe {
    /// A probe for `params` sending through `clients`; nothing is resolved or opened until [`Probe::run`].
    pub fn new(params: MtuParams, clients: Arc<IcmpClients>) -> MtuProbe {
        MtuProbe { params, clients }
    }

    /// The smallest size the sweep starts from, before the family's floor is known.
    fn min_floor(&self) -> u32 {
        u32::from(self.params.min).max(IPV4_MIN_MTU)
    }

    /// Send one size, once more when unanswered.
    async fn step(&self, to: Target, size: u32, route: &RouteInfo) -> Result<Stepped, ProbeError> {
        let p = &self.params;
        let header = if to.ip.is_ipv6() { IPV6_ECHO_OVERHEAD } else { IPV4_ECHO_OVERHEAD };
        let payload = usize::try_from(size).unwrap_or(usize::MAX).saturating_sub(header);
        let options = SocketOptions { dont_fragment: true, ttl: None, source: p.source };
        let mut unreachable = None;
        for _try in 0..2 {
            let (outcome, reported_mtu, reported_by) =
                match self.clients.echo_once(to, options, payload, p.timeout).await? {
                    Echo::Reply(_) => (MtuOutcome::Ok, None, None),
                    Echo::TooBig { mtu, from: Some(router) } => (MtuOutcome::TooBig, mtu, Some(router)),
                    // This host refused: larger than the interface MTU (DF is set without the cached path MTU).
                    Echo::TooBig { mtu, from: None } => {
                        (MtuOutcome::TooBig, mtu.or(route.interface_mtu).or(route.kernel_mtu), None)
                    }
                    Echo::Unreachable(text) => {
                        unreachable = Some(text);
                        continue;
                    }
                    Echo::Lost => continue,
                };
            return Ok(Stepped { step: MtuStep { size, outcome, reported_mtu, reported_by }, unreachable: None });
        }
        let step = MtuStep { size, outcome: MtuOutcome::Lost, reported_mtu: None, reported_by: None };
        Ok(Stepped { step, unreachable })
    }

    async fn measure(&self) -> Result<MtuObservations, ProbeError> {
        let p = &self.params;
        let mut obs = MtuObservations::default();
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
        let options = SocketOptions { dont_fragment: true, ttl: None, source: p.source };
        // Open the socket first: no privilege, or a source address this host does not own, cannot measure.
        self.clients.open(to.ip, options).await?;
        let route = route_to(to, p.source);
        obs.interface = route.interface.clone();
        obs.interface_mtu = route.interface_mtu;

        let v6 = to.ip.is_ipv6();
        let min = u32::from(p.min).max(if v6 { IPV6_MIN_MTU } else { IPV4_MIN_MTU });
        let max = match (p.max, route.interface_mtu.or(route.kernel_mtu)) {
            (Some(max), _) => u32::from(max),
            (None, Some(mtu)) => mtu.min(MAX_PACKET),
            (None, None) => {
                if let Some(text) = route.unreachable {
                    obs.failure = Some(Failure::Unreachable);
                    obs.detail = Some(format!("no route to {}: {text}", to.ip));
                    return Ok(obs);
                }
                return Err(ProbeError::Local(format!(
                    "cannot tell the MTU of the interface towards {}: set `max` for this check",
                    to.ip
                )));
            }
        };
        if max < min {
            let whence = match (p.max, &route.interface) {
                (Some(_), _) => "`max`".to_string(),
                (None, Some(interface)) => format!("the MTU of interface {interface} (the default `max`)"),
                (None, None) => "the route's MTU (the default `max`)".to_string(),
            };
            return Err(ProbeError::Local(format!(
                "MTU check of {}: {whence} is {max} bytes, below `min` {min}; lower `min` or raise `max`",
                p.target
            )));
        }

        // 1. The smallest size: does the target answer at all?
        let first = self.step(to, min, &route).await?;
        let first_step = first.step.clone();
        obs.probes.push(first.step);
        match first_step.outcome {
            MtuOutcome::Ok => {}
            MtuOutcome::TooBig => {
                obs.failure = Some(Failure::Unreachable);
                let text = too_big_text(
                    min as usize,
                    first_step.reported_mtu,
                    first_step.reported_by,
                    route.interface.as_deref(),
                );
                obs.detail = Some(format!("{text}: below `min` ({min} bytes)"));
                return Ok(obs);
            }
            MtuOutcome::Lost => {
                obs.detail = Some(match first.unreachable {
                    Some(text) => {
                        obs.failure = Some(Failure::Unreachable);
                        format!("{text}: the path MTU cannot be measured")
                    }
                    None => {
                        obs.failure = Some(Failure::Timeout);
                        format!(
                            "no reply from {} to two {min}-byte echo requests with DF set within {:?} each: the path \
                             MTU cannot be measured",
                            to.ip, p.timeout
                        )
                    }
                });
                return Ok(obs);
            }
        }

        // 2. `max`, then 3. a binary search over (good, bad): sizes ≤ good pass, sizes ≥ bad do not.
        let mut good = min;
        let mut bad = max.saturating_add(1);
        let mut next = (max > min).then_some(max);
        let mut steps = 1;
        while let Some(size) = next
            && steps < step_limit(min, max)
        {
            steps += 1;
            let stepped = self.step(to, size, &route).await?;
            let mut hint = None;
            match stepped.step.outcome {
                MtuOutcome::Ok => good = good.max(size),
                MtuOutcome::Lost => bad = bad.min(size),
                MtuOutcome::TooBig => {
                    bad = bad.min(size);
                    // Everything above the reported MTU is too big as well; try the MTU itself next.
                    if let Some(mtu) = stepped.step.reported_mtu.filter(|&m| m > good && m < size) {
                        bad = bad.min(mtu + 1);
                        hint = Some(mtu);
                    }
                }
            }
            obs.probes.push(stepped.step);
            next = match (good + 1, bad - 1) {
                (low, high) if low > high => None,
                (_, high) if hint == Some(high) => hint,
                (low, high) => Some(low + (high - low).div_ceil(2)),
            };
        }
        obs.path_mtu = Some(good);
        Ok(obs)
    }
}

impl Probe for MtuProbe {
    fn kind(&self) -> Kind {
        Kind::Mtu
    }

    fn target(&self) -> String {
        self.params.target.clone()
    }

    /// Two echoes per step at most, each waited for up to `timeout`; without `max` the interface MTU is unknown
    /// until the probe runs, so the bound assumes the largest packet.
    fn budget(&self) -> Duration {
        let p = &self.params;
        let max = p.max.map_or(MAX_PACKET, u32::from);
        let sweep = p.timeout.saturating_mul(2 * step_limit(self.min_floor(), max));
        if ip_literal(&p.target).is_some() { sweep } else { sweep.saturating_add(p.timeout) }
    }

    fn run(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.measure().await.map(Observations::Mtu) })
    }
}

// ---- The route to a target -----------------------------------------------------------------------------------

/// What this host knows of the route to a target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RouteInfo {
    /// The interface the route leaves by.
    pub(crate) interface: Option<String>,
    /// Its MTU.
    pub(crate) interface_mtu: Option<u32>,
    /// The MTU the kernel uses towards the target (`IP_MTU` of a connected UDP socket): the interface's, a route's
    /// `mtu` attribute, or a path MTU cached from an ICMP error.
    pub(crate) kernel_mtu: Option<u32>,
    /// Why the kernel has no route, when it has none.
    pub(crate) unreachable: Option<String>,
}

/// The route to `to` as this host sees it (from `source` when given). Best effort: what cannot be found is `None`.
///
/// The interface and its MTU come from the kernel's routing socket (rtnetlink: the route lookup `ip route get`
/// does, so policy routing by source address is followed, and the link's MTU), read in this process's network
/// namespace. Where netlink is not allowed (a systemd unit whose `RestrictAddressFamilies=` lacks `AF_NETLINK`),
/// from `/proc/net/route` or `/proc/net/ipv6_route` (main table, longest prefix) and `/sys/class/net/<if>/mtu`,
/// the latter used only when its interface index matches this namespace's interface of that name.
pub(crate) fn route_to(to: Target, source: Option<IpAddr>) -> RouteInfo {
    let mut info = RouteInfo::default();
    // Connecting a UDP socket sends nothing; it makes the kernel pick the route, the source and the MTU.
    let unspecified =
        if to.ip.is_ipv6() { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
    let mut remote = SocketAddr::new(to.ip, 9);
    if let (SocketAddr::V6(a), Some(scope_id)) = (&mut remote, to.scope_id) {
        a.set_scope_id(scope_id);
    }
    // A source that cannot be bound is the ICMP socket's error to report, not a missing route.
    let bound = std::net::UdpSocket::bind(SocketAddr::new(source.unwrap_or(unspecified), 0));
    let connected = bound.map(|socket| socket.connect(remote).map(|()| socket));
    let mut local = None;
    match &connected {
        Ok(Ok(socket)) => {
            local = socket.local_addr().ok().map(|a| a.ip().to_canonical());
            let mtu = if to.ip.is_ipv6() {
                rustix::net::sockopt::ipv6_mtu(socket)
            } else {
                rustix::net::sockopt::ip_mtu(socket)
            };
            info.kernel_mtu = mtu.ok();
        }
        Ok(Err(e)) => info.unreachable = Some(e.to_string()),
        Err(_) => {}
    }
    let connected = connected.ok().and_then(Result::ok);
    match netlink::route_interface(to, source) {
        Ok(index) => {
            if let Some((name, mtu)) = index.and_then(|index| netlink::link(index).ok()) {
                info.interface = Some(name);
                info.interface_mtu = mtu;
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "no rtnetlink; reading the route from /proc and /sys");
            (info.interface, info.interface_mtu) = route_from_proc(to, local, connected.as_ref());
        }
    }
    info
}

/// Without rtnetlink: the interface towards `to` from `/proc` (`lo` for loopback and for `local`, the source
/// address the kernel picked, when that is `to` itself) and its MTU from `/sys`. `socket` is any socket of this
/// network namespace, for asking interface indexes.
fn route_from_proc(
    to: Target,
    local: Option<IpAddr>,
    socket: Option<&std::net::UdpSocket>,
) -> (Option<String>, Option<u32>) {
    let interface = if to.ip.is_loopback() || local == Some(to.ip) {
        Some("lo".to_string())
    } else if let Some(scope_id) = to.scope_id {
        socket.and_then(|s| rustix::net::netdevice::index_to_name(s, scope_id).ok())
    } else {
        match to.ip {
            IpAddr::V4(ip) => fs::read_to_string("/proc/net/route").ok().and_then(|t| route_v4(&t, ip)),
            IpAddr::V6(ip) => fs::read_to_string("/proc/net/ipv6_route").ok().and_then(|t| route_v6(&t, ip)),
        }
    };
    let mtu = interface.as_deref().and_then(|name| {
        // /sys shows the network namespace it was mounted in, which need not be this process's.
        let index = rustix::net::netdevice::name_to_index(socket?, name).ok()?;
        (read_u32(&format!("/sys/class/net/{name}/ifindex"))? == index)
            .then(|| read_u32(&format!("/sys/class/net/{name}/mtu")))?
    });
    (interface, mtu)
}

fn read_u32(path: &str) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Two questions to the kernel's routing socket (rtnetlink), in the style of `ip route get` and `ip link show`.
mod netlink {
    use std::io;
    use std::net::IpAddr;
    use std::time::Duration;

    use rustix::net::netlink::SocketAddrNetlink;
    use rustix::net::sockopt::Timeout;
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

    use crate::icmp::Target;

    // From include/uapi/linux/netlink.h, rtnetlink.h and if_link.h.
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 1;
    const RTM_NEWLINK: u16 = 16;
    const RTM_GETLINK: u16 = 18;
    const RTM_NEWROUTE: u16 = 24;
    const RTM_GETROUTE: u16 = 26;
    const RTA_DST: u16 = 1;
    const RTA_SRC: u16 = 2;
    const RTA_OIF: u16 = 4;
    const IFLA_IFNAME: u16 = 3;
    const IFLA_MTU: u16 = 4;
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;
    /// Header lengths: `nlmsghdr`, `rtmsg`, `ifinfomsg`.
    const NLMSG_HDR: usize = 16;
    const RTMSG: usize = 12;
    const IFINFOMSG: usize = 16;

    /// The index of the interface the kernel routes `to` by (from `source`), `Ok(None)` when it has no route;
    /// `Err` when rtnetlink cannot be used here.
    pub(super) fn route_interface(to: Target, source: Option<IpAddr>) -> io::Result<Option<u32>> {
        let (family, bits) = if to.ip.is_ipv6() { (AF_INET6, 128) } else { (AF_INET, 32) };
        let mut body = vec![family, bits, if source.is_some() { bits } else { 0 }, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        attribute(&mut body, RTA_DST, &octets(to.ip));
        if let Some(source) = source {
            attribute(&mut body, RTA_SRC, &octets(source));
        }
        if let Some(scope_id) = to.scope_id {
            attribute(&mut body, RTA_OIF, &scope_id.to_ne_bytes());
        }
        match request(RTM_GETROUTE, &body)? {
            Answer::Message(RTM_NEWROUTE, payload) => Ok(attributes(payload.get(RTMSG..).unwrap_or_default())
                .find(|(kind, _)| *kind == RTA_OIF)
                .and_then(|(_, v)| u32_ne(v))),
            // The kernel's answer to a lookup with no route (ENETUNREACH, EHOSTUNREACH, EACCES for prohibit …).
            Answer::Error(_) => Ok(None),
            Answer::Message(..) => Err(io::Error::other("unexpected rtnetlink answer to a route lookup")),
        }
    }

    /// The name and MTU of the interface with index `index`.
    pub(super) fn link(index: u32) -> io::Result<(String, Option<u32>)> {
        let mut body = vec![0u8; IFINFOMSG];
        body[4..8].copy_from_slice(&index.to_ne_bytes());
        match request(RTM_GETLINK, &body)? {
            Answer::Message(RTM_NEWLINK, payload) => {
                let (mut name, mut mtu) = (None, None);
                for (kind, value) in attributes(payload.get(IFINFOMSG..).unwrap_or_default()) {
                    match kind {
                        IFLA_IFNAME => {
                            let text = value.split(|&b| b == 0).next().unwrap_or_default();
                            name = Some(String::from_utf8_lossy(text).into_owned());
                        }
                        IFLA_MTU => mtu = u32_ne(value),
                        _ => {}
                    }
                }
                name.map(|name| (name, mtu)).ok_or_else(|| io::Error::other("rtnetlink link without a name"))
            }
            Answer::Error(e) => Err(e),
            Answer::Message(..) => Err(io::Error::other("unexpected rtnetlink answer to a link query")),
        }
    }

    fn octets(ip: IpAddr) -> Vec<u8> {
        match ip {
            IpAddr::V4(ip) => ip.octets().to_vec(),
            IpAddr::V6(ip) => ip.octets().to_vec(),
        }
    }

    fn u32_ne(bytes: &[u8]) -> Option<u32> {
        Some(u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?))
    }

    /// Append a route attribute (`rtattr`: length, type, value, padding to 4 bytes).
    fn attribute(body: &mut Vec<u8>, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        body.extend_from_slice(&(len as u16).to_ne_bytes());
        body.extend_from_slice(&kind.to_ne_bytes());
        body.extend_from_slice(value);
        body.resize(body.len() + (4 - len % 4) % 4, 0);
    }

    /// The attributes in `bytes`, as (type, value); stops at the first malformed one.
    fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
        std::iter::from_fn(move || {
            let len = usize::from(u16::from_ne_bytes(bytes.get(..2)?.try_into().ok()?));
            let kind = u16::from_ne_bytes(bytes.get(2..4)?.try_into().ok()?) & 0x3fff;
            let value = bytes.get(4..len)?;
            bytes = bytes.get(len.next_multiple_of(4)..).unwrap_or_default();
            Some((kind, value))
        })
    }

    /// The kernel's answer: a message (type, payload after the netlink header) or an error.
    enum Answer {
        Message(u16, Vec<u8>),
        Error(io::Error),
    }

    /// Send one request to the kernel (not a dump: the answer is one message) and read the answer.
    fn request(kind: u16, body: &[u8]) -> io::Result<Answer> {
        let socket = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)?;
        rustix::net::sockopt::set_socket_timeout(&socket, Timeout::Recv, Some(Duration::from_secs(1)))?;
        let mut message = Vec::with_capacity(NLMSG_HDR + body.len());
        message.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        message.extend_from_slice(&kind.to_ne_bytes());
        message.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        message.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel assigns ours
        message.extend_from_slice(body);
        rustix::net::sendto(&socket, &message, SendFlags::empty(), &SocketAddrNetlink::new(0, 0))?;
        // A link message carries statistics and more; 64 KiB holds any single answer.
        let mut buf = vec![0u8; 65536];
        let (len, _) = rustix::net::recv(&socket, &mut buf[..], RecvFlags::empty())?;
        let answer = buf.get(..len).unwrap_or_default();
        let short = || io::Error::other("short rtnetlink answer");
        let total =
            usize::try_from(u32::from_ne_bytes(answer.get(..4).ok_or_else(short)?.try_into().map_err(|_| short())?))
                .map_err(|_| short())?;
        let kind = u16::from_ne_bytes(answer.get(4..6).ok_or_else(short)?.try_into().map_err(|_| short())?);
        let payload = answer.get(NLMSG_HDR..total.min(answer.len())).ok_or_else(short)?;
        if kind == NLMSG_ERROR {
            let code = i32::from_ne_bytes(payload.get(..4).ok_or_else(short)?.try_into().map_err(|_| short())?);
            return Ok(Answer::Error(io::Error::from_raw_os_error(code.saturating_neg())));
        }
        Ok(Answer::Message(kind, payload.to_vec()))
    }
}

/// A route that matched, for choosing the longest prefix (then the lowest metric).
struct Candidate<'a> {
    prefix_len: u32,
    metric: u32,
    flags: u32,
    interface: &'a str,
}

/// Flags of `/proc/net/route` and `/proc/net/ipv6_route` (`include/uapi/linux/route.h`).
const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// Keep the better of `best` and `next`.
fn prefer<'a>(best: Option<Candidate<'a>>, next: Candidate<'a>) -> Option<Candidate<'a>> {
    match best {
        Some(b) if (b.prefix_len, std::cmp::Reverse(b.metric)) >= (next.prefix_len, std::cmp::Reverse(next.metric)) => {
            Some(b)
        }
        _ => Some(next),
    }
}

/// The interface of the most specific usable route to `ip` in `/proc/net/route` (text `table`); `None` when no
/// route matches or the best one rejects (unreachable, prohibit, blackhole).
fn route_v4(table: &str, ip: Ipv4Addr) -> Option<String> {
    let target = u32::from(ip);
    let mut best = None;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [interface, dest, _gateway, flags, _refcnt, _use, metric, mask, ..] = fields.as_slice() else { continue };
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let (Some(dest), Some(flags), Some(metric), Some(mask)) =
            (hex(dest), hex(flags), metric.parse().ok(), hex(mask))
        else {
            continue;
        };
        // The kernel prints the network-order address as a host-order integer.
        let (dest, mask) = (u32::from_be_bytes(dest.to_ne_bytes()), u32::from_be_bytes(mask.to_ne_bytes()));
        if flags & RTF_UP == 0 || target & mask != dest {
            continue;
        }
        best = prefer(best, Candidate { prefix_len: mask.count_ones(), metric, flags, interface });
    }
    best.filter(|b| b.flags & RTF_REJECT == 0 && b.interface != "*").map(|b| b.interface.to_string())
}

/// As [`route_v4`], for `/proc/net/ipv6_route` (every table; source-specific routes are skipped).
fn route_v6(table: &str, ip: Ipv6Addr) -> Option<String> {
    let target = u128::from(ip);
    let mut best = None;
    for line in table.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [dest, prefix_len, _src, src_len, _next_hop, metric, _refcnt, _use, flags, interface] = fields.as_slice()
        else {
            continue;
        };
        let (Some(dest), Ok(prefix_len), Ok(metric), Ok(flags)) = (
            u128::from_str_radix(dest, 16).ok(),
            u32::from_str_radix(prefix_len, 16),
            u32::from_str_radix(metric, 16),
            u32::from_str_radix(flags, 16),
        ) else {
            continue;
        };
        let mask = u128::MAX.checked_shl(128 - prefix_len.min(128)).unwrap_or(0);
        if *src_len != "00" || flags & RTF_UP == 0 || target & mask != dest {
            continue;
        }
        best = prefer(best, Candidate { prefix_len, metric, flags, interface });
    }
    best.filter(|b| b.flags & RTF_REJECT == 0).map(|b| b.interface.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/net/route` prints addresses as host-order integers of network-order words.
    fn word(ip: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip))
    }

    #[test]
    fn ipv4_routes_longest_prefix_then_metric() {
        let line = |dev: &str, dest: [u8; 4], flags: &str, metric: u32, mask: [u8; 4]| {
            format!("{dev}\t{}\t00000000\t{flags}\t0\t0\t{metric}\t{}\t0\t0\t0\n", word(dest), word(mask))
        };
        let mut table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n".to_string();
        table += &line("eth0", [0, 0, 0, 0], "0003", 0, [0, 0, 0, 0]);
        table += &line("veth0", [10, 7, 0, 0], "0001", 0, [255, 255, 255, 0]);
        table += &line("veth9", [10, 7, 0, 0], "0001", 5, [255, 255, 255, 0]);
        table += &line("down0", [10, 7, 0, 0], "0000", 0, [255, 255, 255, 128]);
        table += &line("*", [10, 6, 0, 0], "0201", 0, [255, 255, 0, 0]);
        let at = |ip: [u8; 4]| route_v4(&table, Ipv4Addr::from(ip));
        assert_eq!(at([10, 7, 0, 2]).as_deref(), Some("veth0"));
        assert_eq!(at([192, 0, 2, 1]).as_deref(), Some("eth0"));
        assert_eq!(at([10, 6, 1, 1]), None, "an unreachable route has no interface");
        assert_eq!(route_v4("garbage\nmore garbage here\n", Ipv4Addr::LOCALHOST), None);
    }

    #[test]
    fn ipv6_routes_longest_prefix_skipping_rejects_and_source_routes() {
        // dest, prefix length, source, source length, next hop, metric, refcnt, use, flags, interface.
        let line = |dest: &str, len: &str, src: &str, src_len: &str, metric: &str, flags: &str, dev: &str| {
            let hex = |ip: &str| format!("{:032x}", u128::from(ip.parse::<Ipv6Addr>().expect("ip")));
            format!(
                "{} {len} {} {src_len} {} {metric} 00000001 00000000 {flags} {dev:>8}\n",
                hex(dest),
                hex(src),
                hex("::")
            )
        };
        let table = [
            line("fd00::", "40", "::", "00", "00000100", "00000001", "eth0"),
            line("fd00:7::", "40", "::", "00", "00000100", "00000001", "veth0"),
            line("fd00:8::", "40", "::", "00", "00000400", "00000003", "veth0"),
            line("fd00:8::", "40", "fd00:9::", "40", "00000100", "00000001", "veth5"),
            line("fd00:6::", "20", "::", "00", "ffffffff", "00200201", "lo"),
        ]
        .concat();
        let at = |ip: &str| route_v6(&table, ip.parse().expect("ip"));
        assert_eq!(at("fd00:8::2").as_deref(), Some("veth0"));
        assert_eq!(at("fd00:7::1").as_deref(), Some("veth0"));
        assert_eq!(at("fd00::1").as_deref(), Some("eth0"));
        assert_eq!(at("fd00:6::1"), None, "an unreachable route has no interface");
        assert_eq!(at("2001:db8::1"), None);
    }

    #[test]
    fn loopback_route_by_netlink_and_by_proc() {
        let to = Target { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), scope_id: None };
        let sys_mtu = read_u32("/sys/class/net/lo/mtu");
        let info = route_to(to, None);
        assert_eq!(info.interface.as_deref(), Some("lo"), "{info:?}");
        assert_eq!((info.interface_mtu, info.unreachable.as_deref()), (sys_mtu, None), "{info:?}");
        assert!(info.kernel_mtu.is_some(), "{info:?}");
        // The index the kernel routes 127.0.0.1 by is lo's.
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("UDP socket");
        let lo = rustix::net::netdevice::name_to_index(&socket, "lo").expect("lo");
        assert_eq!(netlink::route_interface(to, None).expect("rtnetlink"), Some(lo));
        // From a source address: a route lookup with RTA_SRC.
        let from = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(netlink::route_interface(to, from).expect("rtnetlink"), Some(lo));
        // The fallback agrees (this test runs in the network namespace /sys was mounted in).
        assert_eq!(route_from_proc(to, Some(to.ip), Some(&socket)), (Some("lo".to_string()), sys_mtu));
    }

    #[test]
    fn step_limit_is_logarithmic() {
        assert_eq!(step_limit(1500, 1500), 2);
        assert_eq!(step_limit(68, 1500), 2 + 11);
        assert_eq!(step_limit(68, 65535), 2 + 16);
        assert_eq!(step_limit(1280, 9000), 2 + 13);
    }
}
