//! ICMP echo through one shared `IcmpClients`, on loopback only (127.0.0.0/8 and ::1).
//!
//! Needs a raw ICMP socket (root or CAP_NET_RAW, as in CI) or an unprivileged one (net.ipv4.ping_group_range).
//! Without either, a test prints why and skips, unless the process has CAP_NET_RAW, where that is a failure.
//!
//! Lost echoes, ICMP errors and the unprivileged datagram socket need a network of their own: those tests re-run
//! this test binary inside a fresh network namespace (`unshare --net`, root only; skipped with a message
//! otherwise) where loopback can be told to stay silent, with a test host in a second namespace of the test's own
//! and an unreachable route; all of it vanishes with them. Nothing is sent anywhere but to loopback and that test
//! host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use gonogo_probes::icmp::{IcmpClients, IcmpObservations, IcmpParams, IcmpProbe, IcmpSocket, permission_message};
use gonogo_probes::{Failure, Kind, Observations, Probe, ProbeError};

fn params(target: &str, count: u32) -> IcmpParams {
    IcmpParams {
        target: target.to_string(),
        count,
        interval: Duration::from_millis(50),
        size: 56,
        timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Whether this process holds CAP_NET_RAW (bit 13 of the effective set).
fn has_cap_net_raw() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 13) != 0)
}

/// Whether this machine has an IPv6 loopback to ping.
fn has_ipv6_loopback() -> bool {
    std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Run one probe within its budget (plus a margin); `None` (after saying why) when ICMP is not permitted here.
async fn ping(clients: &Arc<IcmpClients>, p: IcmpParams) -> Option<IcmpObservations> {
    let probe = IcmpProbe::new(p, Arc::clone(clients));
    let limit = probe.budget() + Duration::from_secs(2);
    match tokio::time::timeout(limit, probe.run()).await.expect("probe finishes within its budget") {
        Ok(Observations::Icmp(o)) => Some(o),
        Ok(other) => panic!("ICMP probe returned {other:?}"),
        Err(ProbeError::Permission(msg)) if !has_cap_net_raw() => {
            eprintln!("SKIPPED: ICMP test: {msg}");
            None
        }
        Err(e) => panic!("ICMP probe could not measure: {e}"),
    }
}

fn assert_all_answered(o: &IcmpObservations, count: u32) {
    assert_eq!((o.sent, o.received), (count, count), "{o:?}");
    assert_eq!(o.loss, 0.0);
    assert_eq!(o.failure, None);
    assert_eq!(o.detail, None);
    assert_eq!(o.samples_ms.len(), count as usize);
    assert!(o.samples_ms.iter().all(|s| s.is_some_and(|ms| ms >= 0.0)), "{:?}", o.samples_ms);
    let rtt = o.rtt.expect("rtt statistics");
    assert!(rtt.min <= rtt.p50 && rtt.p50 <= rtt.p95 && rtt.p95 <= rtt.max, "{rtt:?}");
}

#[tokio::test]
async fn loopback_v4_answers_every_echo() {
    let clients = Arc::new(IcmpClients::new());
    let Some(o) = ping(&clients, params("127.0.0.1", 3)).await else { return };
    assert_eq!(o.address, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_all_answered(&o, 3);
}

#[tokio::test]
async fn loopback_v6_answers_every_echo() {
    if !has_ipv6_loopback() {
        eprintln!("SKIPPED: this machine has no IPv6 loopback (::1)");
        return;
    }
    let clients = Arc::new(IcmpClients::new());
    let Some(o) = ping(&clients, params("::1", 3)).await else { return };
    assert_eq!(o.address, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_all_answered(&o, 3);
}

#[tokio::test]
async fn a_name_is_resolved_then_pinged() {
    let clients = Arc::new(IcmpClients::new());
    let Some(o) = ping(&clients, params("localhost", 2)).await else { return };
    assert!(o.address.is_some_and(|a| a.is_loopback()), "{:?}", o.address);
    assert_all_answered(&o, 2);
}

#[tokio::test]
async fn payload_sizes_from_empty_to_large() {
    let clients = Arc::new(IcmpClients::new());
    for size in [0, 1, 1400, 8000] {
        let Some(o) = ping(&clients, IcmpParams { size, ..params("127.0.0.1", 2) }).await else { return };
        assert_all_answered(&o, 2);
    }
}

#[tokio::test]
async fn fifty_targets_share_one_client() {
    let clients = Arc::new(IcmpClients::new());
    let mut tasks = tokio::task::JoinSet::new();
    for host in 1..=50u8 {
        let clients = Arc::clone(&clients);
        tasks.spawn(async move {
            let p = IcmpParams { interval: Duration::from_millis(20), ..params(&format!("127.0.0.{host}"), 3) };
            (host, ping(&clients, p).await)
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (host, o) = joined.expect("probe task");
        let Some(o) = o else { return };
        assert_eq!(o.address, Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host))));
        assert_all_answered(&o, 3);
        done += 1;
    }
    assert_eq!(done, 50);
}

#[tokio::test]
async fn concurrent_probes_of_one_address_keep_their_replies_apart() {
    // Same address, same moment: only the identifier (raw socket) or the sequence block (datagram socket) tells
    // the replies apart.
    let clients = Arc::new(IcmpClients::new());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let clients = Arc::clone(&clients);
        tasks.spawn(async move { ping(&clients, params("127.0.0.1", 3)).await });
    }
    while let Some(joined) = tasks.join_next().await {
        let Some(o) = joined.expect("probe task") else { return };
        assert_all_answered(&o, 3);
    }
}

#[tokio::test]
async fn the_socket_kind_is_raw_with_cap_net_raw() {
    let clients = IcmpClients::new();
    match clients.socket(IpAddr::V4(Ipv4Addr::LOCALHOST)).await {
        Ok(kind) if has_cap_net_raw() => assert_eq!(kind, IcmpSocket::Raw),
        Ok(kind) => assert_eq!(kind, IcmpSocket::Datagram),
        Err(ProbeError::Permission(msg)) if !has_cap_net_raw() => eprintln!("SKIPPED: {msg}"),
        Err(e) => panic!("{e}"),
    }
    // The IPv4 outcome is kept; IPv6 was never asked for, so nothing was opened for it.
    let shown = format!("{clients:?}");
    assert!(shown.contains("(\"ICMP\",") && !shown.contains("ICMPv6"), "{shown}");
}

#[tokio::test]
async fn an_unresolvable_name_is_an_observation() {
    // A NUL byte makes the resolver fail locally, without a DNS query leaving the machine.
    let clients = Arc::new(IcmpClients::new());
    let probe = IcmpProbe::new(params("bad\0name", 3), clients);
    let Ok(Observations::Icmp(o)) = probe.run().await else { panic!("expected ICMP observations") };
    assert_eq!(o.failure, Some(Failure::ResolveFailed));
    assert_eq!((o.sent, o.received, o.address), (0, 0, None));
    assert!(o.detail.is_some_and(|d| d.contains("resolve")));
}

#[tokio::test]
async fn count_zero_cannot_measure() {
    let probe = IcmpProbe::new(params("127.0.0.1", 0), Arc::new(IcmpClients::new()));
    assert!(matches!(probe.run().await, Err(ProbeError::Local(_))));
}

// ---- Socket options on loopback -------------------------------------------------------------------------------

#[tokio::test]
async fn source_address_on_loopback() {
    // A raw (or datagram) ICMP socket bound to 127.0.0.2 only receives what is addressed to 127.0.0.2: the replies
    // arriving shows they were sent there, i.e. the requests left from 127.0.0.2.
    let clients = Arc::new(IcmpClients::new());
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let Some(o) = ping(&clients, IcmpParams { source: Some(from), ..params("127.0.0.1", 3) }).await else { return };
    assert_all_answered(&o, 3);
    // Options live on their own socket; the shared one still serves plain echoes alongside.
    let Some(o) = ping(&clients, params("127.0.0.1", 2)).await else { return };
    assert_all_answered(&o, 2);
}

#[tokio::test]
async fn a_source_address_this_host_does_not_own_cannot_measure() {
    // Binding fails locally (EADDRNOTAVAIL): nothing is sent to 127.0.0.1, let alone from 10.9.9.9.
    let clients = Arc::new(IcmpClients::new());
    let probe = IcmpProbe::new(
        IcmpParams { source: Some("10.9.9.9".parse().expect("ip")), ..params("127.0.0.1", 2) },
        Arc::clone(&clients),
    );
    match probe.run().await {
        Err(ProbeError::Local(msg)) => {
            assert!(msg.starts_with("source address 10.9.9.9 is not an address of this host ("), "{msg}");
            assert!(msg.contains("ip -brief address"), "{msg}");
        }
        Err(ProbeError::Permission(msg)) if !has_cap_net_raw() => eprintln!("SKIPPED: {msg}"),
        other => panic!("expected a local error naming the source address, got {other:?}"),
    }
    // A source of the other family is refused before any socket is opened.
    let probe =
        IcmpProbe::new(IcmpParams { source: Some("::1".parse().expect("ip")), ..params("127.0.0.1", 1) }, clients);
    let Err(ProbeError::Local(msg)) = probe.run().await else { panic!("expected a local error") };
    assert!(msg.contains("source address ::1 is IPv6 but the target 127.0.0.1 is not"), "{msg}");
}

#[tokio::test]
async fn ttl_and_dont_fragment_on_loopback() {
    let clients = Arc::new(IcmpClients::new());
    // Loopback is one hop: TTL 1 arrives.
    let Some(o) = ping(&clients, IcmpParams { ttl: Some(1), ..params("127.0.0.1", 2) }).await else { return };
    assert_all_answered(&o, 2);
    // DF with 1500-byte packets: loopback's MTU is 65536, so they pass whole.
    let df = IcmpParams { dont_fragment: true, size: 1472, ..params("127.0.0.1", 2) };
    let Some(o) = ping(&clients, df).await else { return };
    assert_all_answered(&o, 2);
    assert_eq!(o.too_big, None);
    if has_ipv6_loopback() {
        let v6 = IcmpParams { dont_fragment: true, ttl: Some(1), size: 1452, ..params("::1", 2) };
        assert_all_answered(&ping(&clients, v6).await.expect("ICMP permitted"), 2);
    }
    // TTL 0 cannot leave this host.
    let probe = IcmpProbe::new(IcmpParams { ttl: Some(0), ..params("127.0.0.1", 1) }, clients);
    assert!(matches!(probe.run().await, Err(ProbeError::Local(msg)) if msg.contains("ttl 0")));
}

#[test]
fn budget_is_schedule_plus_timeout_plus_resolution_for_names() {
    let clients = Arc::new(IcmpClients::new());
    let p = IcmpParams {
        target: "10.0.0.1".into(),
        count: 5,
        interval: Duration::from_secs(1),
        size: 56,
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let probe = IcmpProbe::new(p.clone(), Arc::clone(&clients));
    assert_eq!(probe.kind(), Kind::Icmp);
    assert_eq!(probe.target(), "10.0.0.1");
    assert_eq!(probe.budget(), Duration::from_secs(4 + 2));
    let named = IcmpProbe::new(IcmpParams { target: "gw.example".into(), ..p.clone() }, Arc::clone(&clients));
    assert_eq!(named.budget(), Duration::from_secs(4 + 2 + 2));
    let once = IcmpProbe::new(IcmpParams { count: 1, ..p }, clients);
    assert_eq!(once.budget(), Duration::from_secs(2));
}

#[test]
fn permission_message_names_both_fixes_concretely() {
    let exe = Path::new("/usr/bin/gonogo");
    let msg = permission_message(Some(exe), Some("1\t0\n"), Some(1000));
    for part in [
        "CAP_NET_RAW",
        "`setcap cap_net_raw+ep /usr/bin/gonogo`",
        "AmbientCapabilities=CAP_NET_RAW",
        "net.ipv4.ping_group_range",
        "group 1000 of this process",
        "sysctl -w net.ipv4.ping_group_range=\"1000 1000\"",
        "it is currently \"1 0\", which allows no group",
    ] {
        assert!(msg.contains(part), "{part:?} missing from {msg:?}");
    }

    let covered = permission_message(Some(exe), Some("0 2147483647"), Some(1000));
    assert!(covered.contains("\"0 2147483647\", which includes group 1000"), "{covered}");

    let other = permission_message(Some(exe), Some("100 200\n"), Some(1000));
    assert!(other.contains("it is currently \"100 200\")"), "{other}");

    let unknown = permission_message(None, None, None);
    assert!(unknown.contains("could not be read from /proc/sys/net/ipv4/ping_group_range"), "{unknown}");
    assert!(unknown.contains("this process's group"), "{unknown}");
}

// ---- In a fresh network namespace ----------------------------------------------------------------------------

/// Set in the child run by [`run_in_fresh_netns`]; the `#[ignore]`d inner tests do nothing without it, so
/// `cargo test -- --ignored` on the host cannot send anything towards the namespace's test host.
const IN_NETNS: &str = "GONOGO_PROBES_TEST_IN_NETNS";

/// Shell commands that give a fresh namespace a test host and an unreachable route.
///
/// The test host is a second network namespace, created here without a name (held by a `sleep` that is killed
/// when this shell exits or dies; the loop waits until it has its own namespace) and joined to this one by a veth
/// pair: it owns 10.7.0.2/24, which answers, and 10.7.0.3, which
/// it keeps on its `lo` and, with `arp_ignore=1`, never announces on the veth, so ARP for it fails fast (one
/// solicitation, 100ms) and the kernel reports "host unreachable" from 10.7.0.1. Only its addresses are ever
/// sent to.
///
/// The `unreachable` route for 10.6.0.0/16 names no test host, but nothing is ever sent there: the kernel refuses
/// at send time (EHOSTUNREACH) and no packet is emitted, in a namespace that has no uplink anyway. Only a route of
/// the `unreachable`/`prohibit`/`blackhole` type makes that acceptable; never route such a prefix anywhere.
pub(crate) const TEST_HOST_AND_UNREACHABLE_ROUTE: &str = "ip link set lo up \
    && ip link add veth0 type veth peer name veth1 \
    && { setpriv --pdeathsig KILL unshare --net sleep 120 & } && host=$! && trap 'kill $host' EXIT \
    && while [ \"$(readlink /proc/$host/ns/net)\" = \"$(readlink /proc/$$/ns/net)\" ]; do sleep 0.01; done \
    && ip link set veth1 netns $host \
    && nsenter --net=/proc/$host/ns/net sh -ec 'ip link set lo up; ip addr add 10.7.0.3/32 dev lo; \
        sysctl -qw net.ipv4.conf.veth1.arp_ignore=1; ip addr add 10.7.0.2/24 dev veth1; ip link set veth1 up' \
    && ip addr add 10.7.0.1/24 dev veth0 && ip link set veth0 up \
    && sysctl -qw net.ipv4.neigh.veth0.mcast_solicit=1 net.ipv4.neigh.veth0.retrans_time_ms=100 \
    && ip route add unreachable 10.6.0.0/16";

/// Shell commands that give a fresh namespace a routed path with a narrow hop, and a narrow direct link:
///
/// ```text
///  this namespace               router (forwarding)                 host B
///  a0 10.7.0.1/24  ──────────── r0 10.7.0.254/24
///     fd00:7::1/64  MTU 1500       fd00:7::254/64
///                               r1 10.8.0.254/24  ───────────────── b0 10.8.0.2/24
///                                  fd00:8::254/64  MTU 1400            fd00:8::2/64  MTU 1400
///
///  d0 10.5.0.1/24  ───────────────────────────────────────────────── host D  d1 10.5.0.2/24
///                   MTU 1400 (both ends)
/// ```
///
/// The router and the hosts are namespaces of their own, created here without names and held by `sleep`s that
/// are killed when this shell exits or dies (as in [`TEST_HOST_AND_UNREACHABLE_ROUTE`]); routes name only these
/// prefixes (no default route anywhere). The router does not rate-limit its ICMP errors, so every echo that is too
/// big or runs out of hops gets its "fragmentation needed" / "packet too big" / "time exceeded". Host D knows no
/// route beyond its own link: echoes to it from another source go unanswered.
pub(crate) const ROUTED_TEST_HOSTS: &str = "ip link set lo up \
    && sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    && ip link add a0 type veth peer name r0 \
    && ip link add r1 type veth peer name b0 \
    && ip link add d0 mtu 1400 type veth peer name d1 mtu 1400 \
    && { setpriv --pdeathsig KILL unshare --net sleep 120 & } && router=$! \
    && { setpriv --pdeathsig KILL unshare --net sleep 120 & } && hostb=$! \
    && { setpriv --pdeathsig KILL unshare --net sleep 120 & } && hostd=$! \
    && trap 'kill $router $hostb $hostd' EXIT \
    && for pid in $router $hostb $hostd; do \
         while [ \"$(readlink /proc/$pid/ns/net)\" = \"$(readlink /proc/$$/ns/net)\" ]; do sleep 0.01; done; done \
    && ip link set r0 netns $router && ip link set r1 netns $router \
    && ip link set b0 netns $hostb && ip link set d1 netns $hostd \
    && nsenter --net=/proc/$router/ns/net sh -ec 'ip link set lo up; \
        sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
            net.ipv6.conf.r0.accept_dad=0 net.ipv6.conf.r1.accept_dad=0; \
        sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
            net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0; \
        ip addr add 10.7.0.254/24 dev r0; ip -6 addr add fd00:7::254/64 dev r0 nodad; ip link set r0 up; \
        ip link set r1 mtu 1400; ip addr add 10.8.0.254/24 dev r1; ip -6 addr add fd00:8::254/64 dev r1 nodad; \
        ip link set r1 up' \
    && nsenter --net=/proc/$hostb/ns/net sh -ec 'ip link set lo up; ip link set b0 mtu 1400; \
        sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.b0.accept_dad=0; \
        ip addr add 10.8.0.2/24 dev b0; ip -6 addr add fd00:8::2/64 dev b0 nodad; ip link set b0 up; \
        ip route add 10.7.0.0/24 via 10.8.0.254; ip -6 route add fd00:7::/64 via fd00:8::254' \
    && nsenter --net=/proc/$hostd/ns/net sh -ec 'ip link set lo up; \
        ip addr add 10.5.0.2/24 dev d1; ip link set d1 up' \
    && sysctl -qw net.ipv6.conf.a0.accept_dad=0 net.ipv6.conf.d0.accept_dad=0 \
    && ip addr add 10.7.0.1/24 dev a0 && ip -6 addr add fd00:7::1/64 dev a0 nodad && ip link set a0 up \
    && ip route add 10.8.0.0/24 via 10.7.0.254 && ip -6 route add fd00:8::/64 via fd00:7::254 \
    && ip addr add 10.5.0.1/24 dev d0 && ip link set d0 up";

/// Ping each of `targets` until it answers (three tries of a second at most), so that the first echoes of a test
/// do not race ARP / neighbour discovery on links that have just come up, on a loaded machine.
pub(crate) async fn warm_up(clients: &Arc<IcmpClients>, targets: &[&str]) {
    for target in targets {
        let p = IcmpParams { timeout: Duration::from_secs(1), ..params(target, 1) };
        let mut answered = false;
        for _try in 0..3 {
            if ping(clients, p.clone()).await.expect("ICMP permitted").received == 1 {
                answered = true;
                break;
            }
        }
        assert!(answered, "test host {target} never answered: the namespace setup is broken");
    }
}

/// Whether this test runs as the inner half of [`run_in_fresh_netns`].
pub(crate) fn in_netns() -> bool {
    let inside = std::env::var_os(IN_NETNS).is_some();
    if !inside {
        eprintln!("SKIPPED: this test only runs inside the network namespace its outer test creates");
    }
    inside
}

/// Run the `#[ignore]`d test `name` (full path, e.g. `icmp::netns_…`) of this test binary in a fresh network
/// namespace after the shell commands `setup`, prefixed by `exec_prefix` (e.g. `setpriv …`, or empty). Asserts
/// that it ran and passed; returns `false` after printing why when namespaces cannot be made here (not root, no
/// `unshare`). The shell waits for the test rather than `exec` it, so an `EXIT` trap in `setup` still runs.
pub(crate) fn run_in_fresh_netns(name: &str, setup: &str, exec_prefix: &str) -> bool {
    let usable = Command::new("unshare")
        .args(["--net", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("SKIPPED: {name}: cannot create a network namespace here (needs root and unshare)");
        return false;
    }
    let exe = std::env::current_exe().expect("path of this test binary");
    // `setup` may be an `&&` chain, whose failure `set -e` alone would not stop at.
    let script = format!(
        "set -e; {{ {setup}\n}} || exit $?; {exec_prefix} \"$0\" --exact {name} --ignored --nocapture --test-threads=1"
    );
    let mut child = Command::new("unshare")
        .args(["--net", "sh", "-c", &script])
        .arg(exe)
        .env(IN_NETNS, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run unshare");
    // Bounded: the inner probes have second-scale timeouts; a minute means something hangs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait for the namespaced test").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output of the namespaced test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in a fresh network namespace: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    true
}

fn netns_params(target: &str, count: u32) -> IcmpParams {
    IcmpParams { interval: Duration::from_millis(10), timeout: Duration::from_millis(1500), ..params(target, count) }
}

#[test]
fn lost_echoes_and_icmp_errors() {
    // Echo replies are off in this namespace only (the sysctl is per network namespace): loopback stays silent.
    // The test host lives in a namespace of its own and still answers.
    let setup = format!("{TEST_HOST_AND_UNREACHABLE_ROUTE} && sysctl -qw net.ipv4.icmp_echo_ignore_all=1");
    run_in_fresh_netns("icmp::netns_lost_echoes_and_icmp_errors", &setup, "");
}

#[tokio::test]
#[ignore = "runs inside a fresh network namespace, through `lost_echoes_and_icmp_errors`"]
async fn netns_lost_echoes_and_icmp_errors() {
    if !in_netns() {
        return;
    }
    let clients = Arc::new(IcmpClients::new());
    assert_eq!(clients.socket(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.expect("raw socket as root"), IcmpSocket::Raw);

    // Sent to loopback, never answered (icmp_echo_ignore_all).
    let o = ping(&clients, IcmpParams { timeout: Duration::from_millis(300), ..netns_params("127.0.0.1", 3) })
        .await
        .expect("ICMP permitted");
    assert_eq!((o.sent, o.received, o.loss), (3, 0, 1.0), "{o:?}");
    assert_eq!(o.failure, Some(Failure::Timeout));
    assert_eq!(o.samples_ms, vec![None, None, None]);
    assert_eq!(o.rtt, None);
    let detail = o.detail.expect("detail");
    assert!(detail.contains("no reply from 127.0.0.1 to 3 echo requests within 300ms"), "{detail}");

    // ARP for the test host's unannounced address fails: the kernel answers our echo with an ICMP host
    // unreachable, which the raw socket sees.
    let o = ping(&clients, netns_params("10.7.0.3", 2)).await.expect("ICMP permitted");
    assert_eq!((o.sent, o.received), (2, 0), "{o:?}");
    assert_eq!(o.failure, Some(Failure::Unreachable), "{o:?}");
    let detail = o.detail.expect("detail");
    assert!(detail.contains("destination host unreachable from 10.7.0.1"), "{detail}");

    // The route says unreachable: sending fails at once, and no packet is emitted.
    let o = ping(&clients, netns_params("10.6.0.1", 2)).await.expect("ICMP permitted");
    assert_eq!((o.sent, o.received), (2, 0), "{o:?}");
    assert_eq!(o.failure, Some(Failure::Unreachable), "{o:?}");

    // Partial loss is not a failure: the test host answers while loopback does not, on one client.
    let (answered, silent) = tokio::join!(
        ping(&clients, netns_params("10.7.0.2", 3)),
        ping(&clients, IcmpParams { timeout: Duration::from_millis(300), ..netns_params("127.0.0.1", 3) }),
    );
    let answered = answered.expect("ICMP permitted");
    assert_eq!(answered.address, Some(IpAddr::V4(Ipv4Addr::new(10, 7, 0, 2))));
    assert_all_answered(&answered, 3);
    assert_eq!(silent.expect("ICMP permitted").received, 0);
}

#[test]
fn unprivileged_datagram_socket() {
    run_in_fresh_netns(
        "icmp::netns_unprivileged_datagram_socket",
        // ping_group_range is per namespace: open it to root's group here only; drop CAP_NET_RAW for the exec.
        "ip link set lo up && sysctl -qw net.ipv4.ping_group_range='0 0'",
        "setpriv --bounding-set -net_raw --inh-caps -net_raw",
    );
}

#[tokio::test]
#[ignore = "runs inside a fresh network namespace, through `unprivileged_datagram_socket`"]
async fn netns_unprivileged_datagram_socket() {
    if !in_netns() {
        return;
    }
    let clients = Arc::new(IcmpClients::new());
    assert_eq!(clients.socket(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.expect("datagram socket"), IcmpSocket::Datagram);
    let o = ping(&clients, netns_params("127.0.0.1", 3)).await.expect("datagram socket");
    assert_all_answered(&o, 3);
    if has_ipv6_loopback() {
        assert_all_answered(&ping(&clients, netns_params("::1", 3)).await.expect("datagram socket"), 3);
    }
    // Socket options on datagram sockets of their own: TTL, DF and a source address.
    for (target, source) in [("127.0.0.1", "127.0.0.3"), ("::1", "::1")] {
        if target == "::1" && !has_ipv6_loopback() {
            continue;
        }
        let p = IcmpParams {
            ttl: Some(3),
            dont_fragment: true,
            source: Some(source.parse().expect("ip")),
            size: 1400,
            ..netns_params(target, 3)
        };
        assert_all_answered(&ping(&clients, p).await.expect("datagram socket"), 3);
    }
    // The kernel owns the identifier, so only sequence blocks keep these apart: 20 probes of one address at once,
    // and 50 addresses at once.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..70u8 {
        let clients = Arc::clone(&clients);
        let target = if i < 20 { "127.0.0.1".to_string() } else { format!("127.0.0.{}", i - 19) };
        tasks.spawn(async move { ping(&clients, netns_params(&target, 3)).await });
    }
    while let Some(joined) = tasks.join_next().await {
        assert_all_answered(&joined.expect("probe task").expect("datagram socket"), 3);
    }
}

#[test]
fn without_any_icmp_socket_the_error_names_the_fix() {
    run_in_fresh_netns(
        "icmp::netns_without_any_icmp_socket",
        // A fresh namespace has ping_group_range "1 0"; drop CAP_NET_RAW for the exec.
        "ip link set lo up",
        "setpriv --bounding-set -net_raw --inh-caps -net_raw",
    );
}

#[tokio::test]
#[ignore = "runs inside a fresh network namespace, through `without_any_icmp_socket_the_error_names_the_fix`"]
async fn netns_without_any_icmp_socket() {
    if !in_netns() {
        return;
    }
    let clients = Arc::new(IcmpClients::new());
    for target in ["127.0.0.1", "::1"] {
        let probe = IcmpProbe::new(netns_params(target, 2), Arc::clone(&clients));
        let Err(ProbeError::Permission(msg)) = probe.run().await else { panic!("expected a permission error") };
        assert!(msg.contains("CAP_NET_RAW") && msg.contains("currently \"1 0\", which allows no group"), "{msg}");
    }
    // The failure is not kept: once the operator does what the error says (here: ping_group_range, which this
    // namespace's root may set), the same clients open a socket at the next probe, without a new IcmpClients.
    if let Err(e) = std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647") {
        eprintln!("SKIPPED the second half: cannot set ping_group_range in the test namespace: {e}");
        return;
    }
    let again = IcmpProbe::new(netns_params("127.0.0.2", 2), clients);
    match again.run().await {
        Ok(Observations::Icmp(o)) => assert_all_answered(&o, 2),
        other => panic!("expected echoes through a datagram socket now: {other:?}"),
    }
}

#[test]
fn dont_fragment_ttl_and_source_on_a_routed_path() {
    run_in_fresh_netns("icmp::netns_dont_fragment_ttl_and_source_on_a_routed_path", ROUTED_TEST_HOSTS, "");
}

#[tokio::test]
#[ignore = "runs inside a fresh network namespace, through `dont_fragment_ttl_and_source_on_a_routed_path`"]
async fn netns_dont_fragment_ttl_and_source_on_a_routed_path() {
    if !in_netns() {
        return;
    }
    let clients = Arc::new(IcmpClients::new());
    warm_up(&clients, &["10.8.0.2", "fd00:8::2", "10.5.0.2"]).await;
    let ping = |p: IcmpParams| {
        let clients = Arc::clone(&clients);
        async move { ping(&clients, p).await.expect("ICMP permitted") }
    };
    let df = |target: &str, size: usize| IcmpParams { dont_fragment: true, size, ..netns_params(target, 3) };

    // DF, 1500-byte packets (1472 bytes of payload) towards host B: the router's next hop has MTU 1400, so it
    // answers "fragmentation needed" with that MTU.
    let o = ping(df("10.8.0.2", 1472)).await;
    assert_eq!((o.sent, o.received), (3, 0), "{o:?}");
    assert_eq!(o.failure, Some(Failure::Unreachable), "{o:?}");
    assert_eq!(o.too_big, Some(1400), "{o:?}");
    let detail = o.detail.expect("detail");
    assert_eq!(
        detail,
        "packet too big for the path: 1500-byte packets with DF set; path MTU 1400 (reported by 10.7.0.254); \
         3 of 3 echo requests"
    );
    // 1400-byte packets fit.
    let o = ping(df("10.8.0.2", 1372)).await;
    assert_all_answered(&o, 3);
    assert_eq!(o.too_big, None);
    // Without DF the same 1500-byte echoes are fragmented (by this host, which has learnt the path MTU) and
    // answered.
    let o = ping(IcmpParams { size: 1472, ..netns_params("10.8.0.2", 3) }).await;
    assert!(o.received >= 2 && o.too_big.is_none(), "{o:?}");

    // The same over IPv6: "packet too big" from the router; 1500 = 40 + 8 + 1452.
    let o = ping(df("fd00:8::2", 1452)).await;
    assert_eq!((o.received, o.failure, o.too_big), (0, Some(Failure::Unreachable), Some(1400)), "{o:?}");
    let detail = o.detail.expect("detail");
    assert!(detail.contains("1500-byte packets with DF set; path MTU 1400 (reported by fd00:7::254)"), "{detail}");
    assert_all_answered(&ping(df("fd00:8::2", 1352)).await, 3);

    // Host D's link has MTU 1400 on this side too: this host refuses to send 1500-byte DF packets at all.
    let o = ping(df("10.5.0.2", 1472)).await;
    assert_eq!((o.received, o.failure, o.too_big), (0, Some(Failure::Unreachable), Some(1400)), "{o:?}");
    let detail = o.detail.expect("detail");
    assert!(
        detail.contains(
            "1500-byte packets with DF set; path MTU 1400 (reported by this host: the MTU of its interface d0)"
        ),
        "{detail}"
    );
    assert_all_answered(&ping(df("10.5.0.2", 1372)).await, 3);

    // TTL 1 reaches the router (one hop) but not host B behind it: the router says "time to live exceeded".
    let ttl = |target: &str, ttl: u8| IcmpParams { ttl: Some(ttl), ..netns_params(target, 2) };
    assert_all_answered(&ping(ttl("10.7.0.254", 1)).await, 2);
    let o = ping(ttl("10.8.0.2", 1)).await;
    assert_eq!((o.received, o.failure), (0, Some(Failure::Unreachable)), "{o:?}");
    assert!(o.detail.as_deref().is_some_and(|d| d.contains("time to live exceeded from 10.7.0.254")), "{o:?}");
    assert_all_answered(&ping(ttl("10.8.0.2", 2)).await, 2);
    let o = ping(ttl("fd00:8::2", 1)).await;
    assert!(o.detail.as_deref().is_some_and(|d| d.contains("hop limit exceeded from fd00:7::254")), "{o:?}");
    assert_all_answered(&ping(ttl("fd00:8::2", 2)).await, 2);

    // Source: from the address on host D's link it answers; from 10.7.0.1 (also ours) it cannot, having no route
    // back: the echoes did leave from the address asked for.
    let from = |source: &str| IcmpParams {
        source: Some(source.parse().expect("ip")),
        timeout: Duration::from_millis(500),
        ..netns_params("10.5.0.2", 2)
    };
    let o = ping(from("10.5.0.1")).await;
    assert_all_answered(&o, 2);
    let o = ping(from("10.7.0.1")).await;
    assert_eq!((o.received, o.failure), (0, Some(Failure::Timeout)), "{o:?}");
    // Every option together, on one more socket of its own.
    let all = IcmpParams { ttl: Some(2), source: Some("10.7.0.1".parse().expect("ip")), ..df("10.8.0.2", 1372) };
    assert_all_answered(&ping(all).await, 3);
}
