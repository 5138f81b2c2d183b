//! TCP connect against the test kit's loopback listeners: open port, closed port (refused), a silent listener, a
//! listener whose full accept queue drops SYNs (timeout), names and IPv6; a source address (127.0.0.2, seen by
//! the listener; a foreign one is a local error); `send` and `read_banner` against a greeting, an echoing, a
//! silent and a closing service. Unreachable hosts and routes run in a fresh network namespace with a test host of
//! its own (see `icmp`); nothing is sent anywhere but to loopback and that test host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::icmp::{TEST_HOST_AND_UNREACHABLE_ROUTE, in_netns, run_in_fresh_netns};
use gonogo_probes::tcp::{BANNER_LIMIT, BANNER_QUIET};
use gonogo_probes::tcp::{TcpObservations, TcpParams, TcpProbe};
use gonogo_probes::{Failure, Kind, Observations, Probe, ProbeError};
use gonogo_testkit::tcp::{
    closed_port, closing_listener, echo_listener, full_backlog_listener, greeting_listener, hanging_listener,
    hanging_listener_v6, open_listener, open_listener_v6,
};

fn params(host: &str, port: u16, count: u32) -> TcpParams {
    TcpParams { host: host.to_string(), port, count, timeout: Duration::from_secs(2), ..Default::default() }
}

/// A second loopback address: Linux answers for all of 127.0.0.0/8 on `lo`.
const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// An address this host does not own (TEST-NET-1): binding to it fails before any packet is sent.
const FOREIGN: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

/// Run one probe within its budget (plus a margin).
async fn connect(p: TcpParams) -> TcpObservations {
    match try_connect(p).await {
        Ok(o) => o,
        Err(e) => panic!("TCP probe could not measure: {e}"),
    }
}

/// Run one probe within its budget (plus a margin), keeping a [`ProbeError`].
async fn try_connect(p: TcpParams) -> Result<TcpObservations, ProbeError> {
    let probe = TcpProbe::new(p);
    let limit = probe.budget() + Duration::from_secs(2);
    match tokio::time::timeout(limit, probe.run()).await.expect("probe finishes within its budget")? {
        Observations::Tcp(o) => Ok(o),
        other => panic!("TCP probe returned {other:?}"),
    }
}

fn assert_all_connected(o: &TcpObservations, count: u32) {
    assert_eq!((o.attempts, o.connected), (count, count), "{o:?}");
    assert_eq!((o.failure, &o.detail), (None, &None));
    assert_eq!(o.samples_ms.len(), count as usize);
    assert!(o.samples_ms.iter().all(|s| s.is_some_and(|ms| ms >= 0.0)), "{:?}", o.samples_ms);
    let c = o.connect.expect("connect statistics");
    assert!(c.min <= c.p50 && c.p50 <= c.p95 && c.p95 <= c.max, "{c:?}");
}

#[tokio::test]
async fn open_port_connects_on_every_attempt() {
    let (addr, listener) = open_listener();
    let o = connect(params("127.0.0.1", addr.port(), 3)).await;
    assert_eq!(o.address, Some(addr));
    assert_all_connected(&o, 3);
    assert_eq!(listener.wait_accepted(3, Duration::from_secs(2)), 3);
}

#[tokio::test]
async fn closed_port_is_refused() {
    let addr = closed_port();
    let o = connect(params("127.0.0.1", addr.port(), 2)).await;
    assert_eq!(o.address, Some(addr));
    assert_eq!((o.attempts, o.connected), (2, 0));
    assert_eq!(o.failure, Some(Failure::ConnectionRefused));
    assert_eq!(o.samples_ms, vec![None, None]);
    assert_eq!(o.connect, None);
    let detail = o.detail.expect("detail");
    assert!(detail.contains("2 of 2") && detail.contains("refused"), "{detail}");
}

#[tokio::test]
async fn a_dropped_listener_closes_its_port() {
    let (addr, listener) = open_listener();
    assert_all_connected(&connect(params("127.0.0.1", addr.port(), 1)).await, 1);
    drop(listener);
    let o = connect(params("127.0.0.1", addr.port(), 1)).await;
    assert_eq!(o.failure, Some(Failure::ConnectionRefused));
}

#[tokio::test]
async fn a_silent_listener_still_accepts_the_connect() {
    let (addr, listener) = hanging_listener();
    assert_eq!(listener.addr(), addr);
    let o = connect(params("127.0.0.1", addr.port(), 2)).await;
    assert_all_connected(&o, 2);
    assert_eq!(listener.wait_accepted(2, Duration::from_secs(2)), 2);

    // It really says nothing: a client waiting for a first byte gets none.
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(200), tokio::io::AsyncReadExt::read(&mut stream, &mut byte));
    assert!(read.await.is_err(), "the hanging listener sent something or closed");

    match hanging_listener_v6() {
        Some((addr6, _listener6)) => assert_all_connected(&connect(params("::1", addr6.port(), 1)).await, 1),
        None => eprintln!("skipping the IPv6 half: this machine has no IPv6 loopback (::1)"),
    }
}

#[tokio::test]
async fn a_name_is_resolved_first() {
    // Listen where "localhost" resolves first, so the test holds whatever /etc/hosts puts first.
    let first = tokio::net::lookup_host(("localhost", 0)).await.expect("resolve localhost").next();
    let listening = match first.map(|a| a.ip()) {
        Some(IpAddr::V6(_)) => open_listener_v6(),
        _ => Some(open_listener()),
    };
    let Some((addr, _listener)) = listening else {
        eprintln!("skipping: localhost resolves to ::1 but IPv6 loopback is unusable");
        return;
    };
    let o = connect(params("localhost", addr.port(), 3)).await;
    assert_eq!(o.address, Some(addr));
    assert_all_connected(&o, 3);
}

#[tokio::test]
async fn ipv6_literal_connects() {
    let Some((addr, _listener)) = open_listener_v6() else {
        eprintln!("skipping: this machine has no IPv6 loopback (::1)");
        return;
    };
    let probe = TcpProbe::new(params("::1", addr.port(), 1));
    assert_eq!(probe.target(), format!("[::1]:{}", addr.port()));
    let o = connect(params("[::1]", addr.port(), 1)).await;
    assert_eq!(o.address, Some(addr));
    assert_all_connected(&o, 1);
}

#[tokio::test]
async fn an_unresolvable_name_is_an_observation() {
    // A NUL byte makes the resolver fail locally, without a DNS query leaving the machine.
    let o = connect(params("bad\0name", 443, 3)).await;
    assert_eq!(o.failure, Some(Failure::ResolveFailed));
    assert_eq!((o.attempts, o.connected, o.address), (0, 0, None));
    assert!(o.samples_ms.is_empty());
    assert!(o.detail.is_some_and(|d| d.contains("resolve")));
}

#[test]
fn budget_is_count_timeouts_plus_resolution_for_names() {
    let p = TcpParams {
        host: "10.0.0.1".into(),
        port: 443,
        count: 3,
        timeout: Duration::from_secs(2),
        read_banner: true,
        ..Default::default()
    };
    let probe = TcpProbe::new(p.clone());
    assert_eq!(probe.kind(), Kind::Tcp);
    assert_eq!(probe.target(), "10.0.0.1:443");
    assert_eq!(probe.budget(), Duration::from_secs(6));
    let named = TcpProbe::new(TcpParams { host: "app.example".into(), ..p });
    assert_eq!(named.target(), "app.example:443");
    assert_eq!(named.budget(), Duration::from_secs(8));
}

#[test]
fn closed_port_is_on_loopback() {
    let addr: SocketAddr = closed_port();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
}

#[tokio::test]
async fn a_full_accept_queue_times_out() {
    // The SYN reaches the listener on loopback and is dropped there, unanswered.
    let (addr, listener) = full_backlog_listener();
    assert_eq!(listener.addr(), addr);
    let o = connect(TcpParams { timeout: Duration::from_millis(300), ..params("127.0.0.1", addr.port(), 2) }).await;
    assert_eq!(o.address, Some(addr));
    assert_eq!((o.attempts, o.connected), (2, 0), "{o:?}");
    assert_eq!(o.failure, Some(Failure::Timeout));
    assert_eq!(o.samples_ms, vec![None, None]);
    assert_eq!(o.connect, None);
    let detail = o.detail.expect("detail");
    assert!(detail.contains("no answer within 300ms"), "{detail}");
}

#[test]
fn unreachable_hosts_and_routes() {
    run_in_fresh_netns("tcp::netns_unreachable_hosts_and_routes", TEST_HOST_AND_UNREACHABLE_ROUTE, "");
}

#[tokio::test]
#[ignore = "runs inside a fresh network namespace, through `unreachable_hosts_and_routes`"]
async fn netns_unreachable_hosts_and_routes() {
    if !in_netns() {
        return;
    }
    let quick = |host: &str, count| TcpParams { timeout: Duration::from_millis(300), ..params(host, 443, count) };

    // ARP for the test host's unannounced address fails: the kernel reports the host unreachable.
    let o = connect(TcpParams { timeout: Duration::from_secs(2), ..quick("10.7.0.3", 1) }).await;
    assert_eq!(o.failure, Some(Failure::Unreachable), "{o:?}");

    // The route says unreachable: connect fails at once, and no packet is emitted.
    let o = connect(quick("10.6.0.1", 1)).await;
    assert_eq!(o.failure, Some(Failure::Unreachable), "{o:?}");
    let detail = o.detail.expect("detail");
    assert!(detail.contains("10.6.0.1:443"), "{detail}");
}

#[tokio::test]
async fn a_source_address_is_what_the_server_sees() {
    let (addr, listener) = open_listener();
    let o = connect(TcpParams { source: Some(SOURCE), ..params("127.0.0.1", addr.port(), 2) }).await;
    assert_all_connected(&o, 2);
    assert_eq!(listener.wait_accepted(2, Duration::from_secs(2)), 2);
    let peers: Vec<IpAddr> = listener.peers().iter().map(SocketAddr::ip).collect();
    assert_eq!(peers, [SOURCE, SOURCE]);

    // Without it, the kernel picks the loopback address of the route.
    let o = connect(params("127.0.0.1", addr.port(), 1)).await;
    assert_all_connected(&o, 1);
    assert_eq!(listener.wait_accepted(3, Duration::from_secs(2)), 3);
    assert_eq!(listener.peers().last().map(SocketAddr::ip), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
}

#[tokio::test]
async fn a_name_resolves_to_the_source_family() {
    let localhost: Vec<IpAddr> =
        tokio::net::lookup_host(("localhost", 0)).await.expect("resolve localhost").map(|a| a.ip()).collect();
    if !localhost.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)) {
        eprintln!("SKIPPED: localhost does not resolve to 127.0.0.1 here ({localhost:?})");
        return;
    }
    let (addr, listener) = open_listener();
    let o = connect(TcpParams { source: Some(SOURCE), ..params("localhost", addr.port(), 1) }).await;
    assert_eq!(o.address, Some(addr), "{o:?}");
    assert_all_connected(&o, 1);
    assert_eq!(listener.wait_accepted(1, Duration::from_secs(2)), 1);
    assert_eq!(listener.peers().first().map(SocketAddr::ip), Some(SOURCE));
}

#[tokio::test]
async fn a_foreign_source_address_is_a_local_error() {
    let (addr, listener) = open_listener();
    let e = try_connect(TcpParams { source: Some(FOREIGN), ..params("127.0.0.1", addr.port(), 2) })
        .await
        .expect_err("a source address this host does not own cannot be used");
    let ProbeError::Local(text) = e else { panic!("expected a local error, got {e:?}") };
    assert!(text.contains("192.0.2.1") && text.contains("address of this host"), "{text}");
    assert_eq!(listener.accepted(), 0, "nothing connected");
}

#[tokio::test]
async fn a_source_of_the_other_family_is_a_local_error() {
    let (addr, _listener) = open_listener();
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let e = try_connect(TcpParams { source: Some(v6), ..params("127.0.0.1", addr.port(), 1) })
        .await
        .expect_err("an IPv6 source cannot reach an IPv4 target");
    let ProbeError::Local(text) = e else { panic!("expected a local error, got {e:?}") };
    assert!(text.contains("::1") && text.contains("IPv6") && text.contains("127.0.0.1"), "{text}");
}

#[tokio::test]
async fn a_greeting_is_read_as_the_banner() {
    let (addr, _listener) = greeting_listener(b"220 smtp ready\r\n");
    let started = Instant::now();
    let o = connect(TcpParams { read_banner: true, ..params("127.0.0.1", addr.port(), 2) }).await;
    assert_all_connected(&o, 2);
    assert_eq!(o.banner.as_deref(), Some("220 smtp ready"));
    // A complete line ends the read after a short quiet spell, not at the timeout.
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert!(started.elapsed() >= BANNER_QUIET, "took {:?}", started.elapsed());

    // Not asked for: the greeting is not read.
    let o = connect(params("127.0.0.1", addr.port(), 1)).await;
    assert_all_connected(&o, 1);
    assert_eq!(o.banner, None);
}

#[tokio::test]
async fn a_multi_line_greeting_is_kept_whole_with_control_characters_escaped() {
    let (addr, _listener) = greeting_listener(b"220-mail.test ESMTP\r\n220 ready\x1b\r\n");
    let o = connect(TcpParams { read_banner: true, ..params("127.0.0.1", addr.port(), 1) }).await;
    assert_all_connected(&o, 1);
    assert_eq!(o.banner.as_deref(), Some("220-mail.test ESMTP\\r\\n220 ready\\u{1b}"));
}

#[tokio::test]
async fn a_long_banner_is_cut_at_the_limit() {
    let greeting = vec![b'a'; BANNER_LIMIT * 3];
    let (addr, _listener) = greeting_listener(&greeting);
    let o = connect(TcpParams { read_banner: true, ..params("127.0.0.1", addr.port(), 1) }).await;
    assert_eq!((o.failure, o.connected), (None, 1), "{o:?}");
    assert_eq!(o.banner.map(|b| b.len()), Some(BANNER_LIMIT));
}

#[tokio::test]
async fn what_is_sent_comes_back_from_an_echo_service() {
    let (addr, _listener) = echo_listener();
    let send = Some(b"HELO gonogo.test\r\n".to_vec());
    let o = connect(TcpParams { send, read_banner: true, ..params("127.0.0.1", addr.port(), 2) }).await;
    assert_all_connected(&o, 2);
    assert_eq!(o.banner.as_deref(), Some("HELO gonogo.test"));

    // Nothing sent: the echo service stays silent, so there is no banner.
    let quick =
        TcpParams { timeout: Duration::from_millis(300), read_banner: true, ..params("127.0.0.1", addr.port(), 1) };
    let o = connect(quick).await;
    assert_eq!(o.failure, Some(Failure::Timeout), "{o:?}");
    assert_eq!(o.banner, None);
}

#[tokio::test]
async fn sending_without_reading_connects_and_closes() {
    let (addr, listener) = open_listener();
    let send = Some(b"ping\n".to_vec());
    let o = connect(TcpParams { send, ..params("127.0.0.1", addr.port(), 2) }).await;
    assert_all_connected(&o, 2);
    assert_eq!(o.banner, None);
    assert_eq!(listener.wait_accepted(2, Duration::from_secs(2)), 2);
}

#[tokio::test]
async fn a_silent_service_gives_no_banner_within_the_timeout() {
    let (addr, _listener) = hanging_listener();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let o = connect(TcpParams { timeout, read_banner: true, ..params("127.0.0.1", addr.port(), 2) }).await;
    let took = started.elapsed();
    assert_eq!((o.attempts, o.connected), (2, 2), "the handshakes succeed: {o:?}");
    assert_eq!(o.failure, Some(Failure::Timeout));
    assert_eq!(o.banner, None);
    let detail = o.detail.expect("detail");
    assert!(detail.contains("no banner within 300ms") && detail.contains("2 of 2 attempts"), "{detail}");
    // Each attempt's read stays within that attempt's timeout.
    assert!(took >= timeout * 2 && took < timeout * 2 + Duration::from_millis(500), "took {took:?}");
}

#[tokio::test]
async fn a_service_that_closes_at_once_gives_no_banner() {
    let (addr, _listener) = closing_listener();
    let o = connect(TcpParams { read_banner: true, ..params("127.0.0.1", addr.port(), 1) }).await;
    assert_eq!(o.connected, 1, "{o:?}");
    assert_eq!(o.failure, Some(Failure::ConnectionReset));
    assert!(o.detail.unwrap_or_default().contains("without a banner"));
    assert_eq!(o.banner, None);
}
