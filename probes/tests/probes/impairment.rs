//! Accuracy under impairment: delay 20 ms and loss 10 % between gonogo and a target; its loss and RTT statistics
//! must land within tolerance of what was configured. Two impairments, each in a network namespace the test
//! creates:
//!
//! - `tc netem` on the veth towards a test host. Needs root, namespaces and the kernel's `sch_netem` (skipped,
//!   saying which is missing, without them). netem in the iproute2 of Debian 12 takes no seed, so the tolerance is
//!   statistical: 600 echoes, 10 % loss on the requests only (netem is on our egress), σ = √(0.1 × 0.9 / 600) ≈
//!   1.2 %, and the bound is ±5 % (over 4σ).
//! - A responder the test runs itself, for kernels without netem and to pin the statistics exactly: the kernel's
//!   echo replies are off in the namespace (`icmp_echo_ignore_all`), and a raw socket answers each echo request to
//!   127.0.0.2 20 ms late, or not at all for the sequence numbers a seeded generator picks (10 %). The loss is then
//!   known exactly, echo by echo, and every RTT must be 20 ms plus the responder's own lateness.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use gonogo_probes::icmp::{IcmpClients, IcmpParams, IcmpProbe};
use gonogo_probes::{Observations, Probe};

use crate::icmp::{TEST_HOST_AND_UNREACHABLE_ROUTE, in_netns, run_in_fresh_netns, warm_up};

/// Whether this kernel has netem: try it on a throw-away veth in a throw-away namespace.
fn netem_available() -> bool {
    Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link add v0 type veth peer name v1 && tc qdisc add dev v0 root netem delay 1ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn netem_delay_and_loss_are_measured_within_tolerance() {
    if !netem_available() {
        eprintln!(
            "SKIPPED: tc netem is not available here (no root, no namespaces, or a kernel without sch_netem): the \
             impairment accuracy test cannot run"
        );
        return;
    }
    let setup = format!("{TEST_HOST_AND_UNREACHABLE_ROUTE} && tc qdisc add dev veth0 root netem delay 20ms loss 10%");
    run_in_fresh_netns("impairment::netns_netem_statistics", &setup, "");
}

#[tokio::test]
#[ignore = "runs inside a fresh network namespace, through `netem_delay_and_loss_are_measured_within_tolerance`"]
async fn netns_netem_statistics() {
    if !in_netns() {
        return;
    }
    let clients = Arc::new(IcmpClients::new());
    warm_up(&clients, &["10.7.0.2"]).await;
    let params = IcmpParams {
        target: "10.7.0.2".to_owned(),
        count: 600,
        interval: Duration::from_millis(5),
        size: 56,
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let probe = IcmpProbe::new(params, clients);
    let Ok(Observations::Icmp(o)) = probe.run().await else { panic!("the ICMP probe could not measure") };
    assert!((0.05..0.15).contains(&o.loss), "loss {:.3} is not within 10 % ± 5 % of 600 echoes", o.loss);
    let rtt = o.rtt.expect("replies");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    assert!(rtt.min >= Duration::from_millis(20), "min {:.3} ms is below the 20 ms netem delay", ms(rtt.min));
    assert!(
        rtt.p50 < Duration::from_millis(25),
        "median {:.3} ms is more than 5 ms above the 20 ms delay",
        ms(rtt.p50)
    );
}

// ---- A delaying, dropping responder of the test's own --------------------------------------------------------

/// The address the responder answers for (the kernel's own echo replies are off in the namespace).
const RESPONDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// How late the responder answers.
const DELAY: Duration = Duration::from_millis(20);
/// Echoes the probe sends.
const ECHOES: u16 = 600;

/// Whether the responder drops the echo with sequence `seq`: a fixed, seeded choice of about 10 % (splitmix64).
fn dropped(seq: u16) -> bool {
    let mut z = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(seq).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % 10 == 0
}

/// The RFC 1071 checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|p| u32::from(u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Answer echo requests to [`RESPONDER`] [`DELAY`] late, dropping those [`dropped`] picks, until `stop` is set
/// or 30 s have passed. Returns how many requests it saw.
fn respond(socket: &UdpSocket, stop: &AtomicBool) -> usize {
    let mut due: VecDeque<(Instant, Vec<u8>, SocketAddr)> = VecDeque::new();
    let mut buf = [0u8; 2048];
    let mut seen = 0;
    let give_up = Instant::now() + Duration::from_secs(30);
    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
        while let Some((at, _, _)) = due.front()
            && *at <= Instant::now()
        {
            let Some((_, reply, to)) = due.pop_front() else { break };
            socket.send_to(&reply, to).expect("send an echo reply");
        }
        // Socket timeouts tick in jiffies (4 ms at HZ 250): poll a non-blocking socket and sleep (hrtimer) instead.
        let (packet, from) = match socket.recv_from(&mut buf) {
            Ok((len, from)) => (&buf[..len], from),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let next = due
                    .front()
                    .map_or(Duration::from_millis(1), |(at, _, _)| at.saturating_duration_since(Instant::now()));
                std::thread::sleep(next.min(Duration::from_micros(200)));
                continue;
            }
            Err(e) => panic!("responder: {e}"),
        };
        // A raw IPv4 socket reads the IP header too.
        let header = usize::from(packet.first().copied().unwrap_or(0) & 0x0f) * 4;
        let (Some(dst), Some(icmp)) = (packet.get(16..20), packet.get(header..)) else { continue };
        if dst != RESPONDER.octets() || icmp.len() < 8 || icmp[0] != 8 {
            continue;
        }
        seen += 1;
        let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
        if dropped(seq) {
            continue;
        }
        let mut reply = icmp.to_vec();
        reply[0] = 0;
        reply[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum(&reply);
        reply[2..4].copy_from_slice(&sum.to_be_bytes());
        due.push_back((Instant::now() + DELAY, reply, from));
    }
    seen
}

/// A raw ICMP socket sending from [`RESPONDER`].
fn responder_socket() -> UdpSocket {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).expect("raw ICMP socket (root)");
    socket.bind(&SocketAddr::new(RESPONDER.into(), 0).into()).expect("bind 127.0.0.2");
    socket.set_nonblocking(true).expect("non-blocking");
    UdpSocket::from(OwnedFd::from(socket))
}

#[test]
fn delay_and_loss_from_a_responder_of_our_own_are_measured_exactly() {
    run_in_fresh_netns(
        "impairment::netns_responder_statistics",
        "ip link set lo up && sysctl -qw net.ipv4.icmp_echo_ignore_all=1",
        "",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs inside a fresh network namespace, through `delay_and_loss_from_a_responder_of_our_own_are_measured_exactly`"]
async fn netns_responder_statistics() {
    if !in_netns() {
        return;
    }
    let socket = responder_socket();
    let stop = Arc::new(AtomicBool::new(false));
    let responder = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || respond(&socket, &stop)
    });
    let params = IcmpParams {
        target: RESPONDER.to_string(),
        count: u32::from(ECHOES),
        interval: Duration::from_millis(5),
        size: 56,
        timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let result = IcmpProbe::new(params, Arc::new(IcmpClients::new())).run().await;
    stop.store(true, Ordering::Relaxed);
    let seen = responder.join().expect("responder thread");
    let Ok(Observations::Icmp(o)) = result else { panic!("the ICMP probe could not measure: {result:?}") };
    assert_eq!(seen, usize::from(ECHOES), "the responder saw every echo request");

    // Loss: exactly the echoes the responder dropped, and exactly those.
    let expected: Vec<bool> = (0..ECHOES).map(dropped).collect();
    let lost: Vec<bool> = o.samples_ms.iter().map(Option::is_none).collect();
    assert_eq!(lost, expected, "lost echoes, in send order");
    let n_dropped = expected.iter().filter(|d| **d).count();
    assert!((40..=80).contains(&n_dropped), "the seeded choice drops about 10 %: {n_dropped}");
    assert_eq!((o.sent, o.received), (u32::from(ECHOES), u32::from(ECHOES) - n_dropped as u32));
    assert!((o.loss - n_dropped as f64 / f64::from(ECHOES)).abs() < 1e-12, "loss {}", o.loss);

    // RTT: the 20 ms delay, plus the responder's own lateness (a thread waking from a timed read).
    let rtt = o.rtt.expect("replies");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!(
        "responder: {n_dropped} of {ECHOES} dropped, loss {:.4}; rtt min {:.3} p50 {:.3} p95 {:.3} max {:.3} ms",
        o.loss,
        ms(rtt.min),
        ms(rtt.p50),
        ms(rtt.p95),
        ms(rtt.max)
    );
    assert!(rtt.min >= DELAY, "min {:.3} ms is below the responder's 20 ms", ms(rtt.min));
    assert!(rtt.p50 < DELAY + Duration::from_millis(3), "median {:.3} ms is over 3 ms late", ms(rtt.p50));
    for (i, sample) in o.samples_ms.iter().enumerate() {
        if let Some(ms) = sample {
            assert!((20.0..1000.0).contains(ms), "echo {i}: {ms:.3} ms");
        }
    }
}
