//! TCP connect against the test kit's loopback listeners: open port, closed port (refused), a silent listener, a
//! listener whose full accept queue drops SYNs (timeout), names and IPv6. Unreachable hosts and routes run in a
//! fresh network namespace with a test host of its own (see `icmp`); nothing is sent anywhere but to loopback and
//! that test host.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::icmp::{TEST_HOST_AND_UNREACHABLE_ROUTE, in_netns, run_in_fresh_netns};
use gonogo_probes::tcp::{TcpObservations, TcpParams, TcpProbe};
use gonogo_probes::{Failure, Kind, Observations, Probe};
use gonogo_testkit::tcp::{
    closed_port, full_backlog_listener, hanging_listener, hanging_listener_v6, open_listener, open_listener_v6,
};

fn params(host: &str, port: u16, count: u32) -> TcpParams {
    TcpParams { host: host.to_string(), port, count, timeout: Duration::from_secs(2) }
}

/// Run one probe within its budget (plus a margin).
async fn connect(p: TcpParams) -> TcpObservations {
    let probe = TcpProbe::new(p);
    let limit = probe.budget() + Duration::from_secs(2);
    match tokio::time::timeout(limit, probe.run()).await.expect("probe finishes within its budget") {
        Ok(Observations::Tcp(o)) => o,
        Ok(other) => panic!("TCP probe returned {other:?}"),
        Err(e) => panic!("TCP probe could not measure: {e}"),
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
    let p = TcpParams { host: "10.0.0.1".into(), port: 443, count: 3, timeout: Duration::from_secs(2) };
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
