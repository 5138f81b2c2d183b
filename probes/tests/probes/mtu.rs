//! Path MTU sweeps: on loopback, and in a fresh network namespace with a routed path whose second hop has MTU
//! 1400 and a direct link with MTU 1400 ([`ROUTED_TEST_HOSTS`]); with a raw socket (ICMP errors seen) and with an
//! unprivileged datagram socket (errors unseen: silence counts as too big). Each namespace test builds its
//! namespaces afresh, so no path MTU cached by an earlier run can leak in; they vanish with the test. Needs root
//! for the namespaces (skipped with a message otherwise). Nothing is sent anywhere but to loopback and the test
//! hosts of those namespaces.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use gonogo_probes::icmp::{IcmpClients, IcmpParams, IcmpProbe};
use gonogo_probes::mtu::{MtuObservations, MtuOutcome, MtuParams, MtuProbe, MtuStep};
use gonogo_probes::{Failure, Kind, Observations, Probe, ProbeError};

use crate::icmp::{ROUTED_TEST_HOSTS, in_netns, run_in_fresh_netns, warm_up};

fn params(target: &str) -> MtuParams {
    MtuParams { target: target.to_string(), timeout: Duration::from_millis(500), ..Default::default() }
}

/// Run one sweep within its budget; `None` (after saying why) when ICMP is not permitted here and the test may
/// skip (`required` false).
async fn sweep(clients: &Arc<IcmpClients>, p: MtuParams, required: bool) -> Option<MtuObservations> {
    let probe = MtuProbe::new(p, Arc::clone(clients));
    let limit = probe.budget() + Duration::from_secs(1);
    match tokio::time::timeout(limit, probe.run()).await.expect("sweep finishes within its budget") {
        Ok(Observations::Mtu(o)) => Some(o),
        Ok(other) => panic!("MTU probe returned {other:?}"),
        Err(ProbeError::Permission(msg)) if !required => {
            eprintln!("SKIPPED: MTU test: {msg}");
            None
        }
        Err(e) => panic!("MTU probe could not measure: {e}"),
    }
}

fn step(size: u32, outcome: MtuOutcome, reported: Option<(u32, Option<&str>)>) -> MtuStep {
    MtuStep {
        size,
        outcome,
        reported_mtu: reported.map(|(mtu, _)| mtu),
        reported_by: reported.and_then(|(_, by)| by).map(|ip| ip.parse().expect("ip")),
    }
}

fn assert_measured(o: &MtuObservations, path_mtu: u32) {
    assert_eq!((o.path_mtu, o.failure, o.detail.as_deref()), (Some(path_mtu), None, None), "{o:?}");
}

#[tokio::test]
async fn loopback_passes_the_largest_packet() {
    // lo has MTU 65536; an IP packet is at most 65535 bytes: two steps, both answered.
    let clients = Arc::new(IcmpClients::new());
    let Some(o) = sweep(&clients, params("127.0.0.1"), false).await else { return };
    assert_eq!(o.address, Some(IpAddr::from([127, 0, 0, 1])));
    assert_eq!((o.interface.as_deref(), o.interface_mtu), (Some("lo"), Some(65536)), "{o:?}");
    assert_eq!(o.probes, vec![step(68, MtuOutcome::Ok, None), step(65535, MtuOutcome::Ok, None)]);
    assert_measured(&o, 65535);

    // Within bounds of our own: `min` and `max` are the sizes tried.
    let Some(o) = sweep(&clients, MtuParams { min: 1000, max: Some(1500), ..params("127.0.0.1") }, false).await else {
        return;
    };
    assert_eq!(o.probes, vec![step(1000, MtuOutcome::Ok, None), step(1500, MtuOutcome::Ok, None)]);
    assert_measured(&o, 1500);
}

#[tokio::test]
async fn bad_bounds_sources_and_names() {
    let clients = Arc::new(IcmpClients::new());
    let run = |p: MtuParams| {
        let probe = MtuProbe::new(p, Arc::clone(&clients));
        async move { probe.run().await }
    };
    // `max` below `min` cannot measure, and says which to change.
    let Err(ProbeError::Local(msg)) = run(MtuParams { min: 1500, max: Some(1400), ..params("127.0.0.1") }).await else {
        panic!("expected a local error")
    };
    assert!(msg.contains("`max` is 1400 bytes, below `min` 1500"), "{msg}");
    // A source this host does not own (nothing is sent: binding fails locally).
    match run(MtuParams { source: Some("10.9.9.9".parse().expect("ip")), ..params("127.0.0.1") }).await {
        Err(ProbeError::Local(msg)) => {
            assert!(msg.starts_with("source address 10.9.9.9 is not an address of this host"), "{msg}")
        }
        Err(ProbeError::Permission(msg)) => eprintln!("SKIPPED: source part: {msg}"),
        other => panic!("expected a local error, got {other:?}"),
    }
    // A name that cannot resolve is an observation (a NUL byte fails locally, no DNS query leaves).
    let Ok(Observations::Mtu(o)) = run(params("bad\0name")).await else { panic!("expected MTU observations") };
    assert_eq!((o.failure, o.address, o.path_mtu), (Some(Failure::ResolveFailed), None, None), "{o:?}");
    assert!(o.probes.is_empty());
}

#[test]
fn budget_bounds_the_steps() {
    let clients = Arc::new(IcmpClients::new());
    let p = MtuParams {
        target: "10.0.0.1".into(),
        min: 1200,
        max: Some(1500),
        timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let probe = MtuProbe::new(p.clone(), Arc::clone(&clients));
    assert_eq!((probe.kind(), probe.kind().as_str(), probe.target()), (Kind::Mtu, "mtu", "10.0.0.1".to_string()));
    // min, max, then a binary search over 300 sizes (9 steps); two echoes per step at most.
    assert_eq!(probe.budget(), Duration::from_secs(2 * (2 + 9)));
    // Without `max` the interface MTU is unknown beforehand: the bound assumes 65535.
    let open = MtuProbe::new(MtuParams { min: 0, max: None, ..p.clone() }, Arc::clone(&clients));
    assert_eq!(open.budget(), Duration::from_secs(2 * (2 + 16)));
    // A name adds one timeout for resolving it.
    let named = MtuProbe::new(MtuParams { target: "gw.example".into(), ..p }, clients);
    assert_eq!(named.budget(), Duration::from_secs(2 * (2 + 9) + 1));
}

// ---- In a fresh network namespace ----------------------------------------------------------------------------

#[test]
fn path_mtu_through_a_router_with_a_narrow_hop() {
    run_in_fresh_netns("mtu::netns_path_mtu_through_a_router_with_a_narrow_hop", ROUTED_TEST_HOSTS, "");
}

#[tokio::test]
#[ignore = "runs inside a fresh network namespace, through `path_mtu_through_a_router_with_a_narrow_hop`"]
async fn netns_path_mtu_through_a_router_with_a_narrow_hop() {
    if !in_netns() {
        return;
    }
    let clients = Arc::new(IcmpClients::new());
    warm_up(&clients, &["10.8.0.2", "fd00:8::2", "10.5.0.2", "10.7.0.254"]).await;

    // Host B, behind the router: this side's interface has MTU 1500, the router's next hop 1400. The 1500-byte
    // step draws "fragmentation needed" with MTU 1400, which is tried next and passes.
    let o = sweep(&clients, params("10.8.0.2"), true).await.expect("raw socket");
    assert_eq!((o.interface.as_deref(), o.interface_mtu), (Some("a0"), Some(1500)), "{o:?}");
    let router = Some((1400, Some("10.7.0.254")));
    assert_eq!(
        o.probes,
        vec![step(68, MtuOutcome::Ok, None), step(1500, MtuOutcome::TooBig, router), step(1400, MtuOutcome::Ok, None)]
    );
    assert_measured(&o, 1400);

    // Again: every step still leaves with DF, whatever the kernel cached from the last sweep's ICMP error.
    let again = sweep(&clients, params("10.8.0.2"), true).await.expect("raw socket");
    assert_eq!(again.probes, o.probes);

    // IPv6: "packet too big" carries the MTU; `min` starts at IPv6's least MTU, 1280.
    let o = sweep(&clients, params("fd00:8::2"), true).await.expect("raw socket");
    assert_eq!((o.interface.as_deref(), o.interface_mtu), (Some("a0"), Some(1500)), "{o:?}");
    let router = Some((1400, Some("fd00:7::254")));
    assert_eq!(
        o.probes,
        vec![
            step(1280, MtuOutcome::Ok, None),
            step(1500, MtuOutcome::TooBig, router),
            step(1400, MtuOutcome::Ok, None)
        ]
    );
    assert_measured(&o, 1400);

    // The router itself is on the wide link.
    let o = sweep(&clients, params("10.7.0.254"), true).await.expect("raw socket");
    assert_measured(&o, 1500);
    assert_eq!(o.probes.len(), 2, "{o:?}");

    // Host D, directly on a link with MTU 1400: the interface says so, and that is the default `max`.
    let o = sweep(&clients, params("10.5.0.2"), true).await.expect("raw socket");
    assert_eq!((o.interface.as_deref(), o.interface_mtu), (Some("d0"), Some(1400)), "{o:?}");
    assert_eq!(o.probes, vec![step(68, MtuOutcome::Ok, None), step(1400, MtuOutcome::Ok, None)]);
    assert_measured(&o, 1400);
    // Asked to try 1500 there, this host refuses to send it (EMSGSIZE) and names the interface MTU.
    let o = sweep(&clients, MtuParams { max: Some(1500), ..params("10.5.0.2") }, true).await.expect("raw socket");
    assert_eq!(
        o.probes,
        vec![
            step(68, MtuOutcome::Ok, None),
            step(1500, MtuOutcome::TooBig, Some((1400, None))),
            step(1400, MtuOutcome::Ok, None)
        ]
    );
    assert_measured(&o, 1400);

    // A path narrower than `min` is a failure naming the MTU and who reported it.
    let o = sweep(&clients, MtuParams { min: 1450, ..params("10.8.0.2") }, true).await.expect("raw socket");
    assert_eq!((o.path_mtu, o.failure), (None, Some(Failure::Unreachable)), "{o:?}");
    assert_eq!(
        o.detail.as_deref(),
        Some(
            "packet too big for the path: 1450-byte packets with DF set; path MTU 1400 (reported by 10.7.0.254): \
             below `min` (1450 bytes)"
        )
    );

    // No answer at all (host D has no route back to 10.7.0.1): a timeout after two tries of `min`.
    let silent = MtuParams { source: Some("10.7.0.1".parse().expect("ip")), ..params("10.5.0.2") };
    let o = sweep(&clients, silent, true).await.expect("raw socket");
    assert_eq!((o.path_mtu, o.failure), (None, Some(Failure::Timeout)), "{o:?}");
    assert_eq!(o.probes, vec![step(68, MtuOutcome::Lost, None)]);
    let detail = o.detail.expect("detail");
    assert!(detail.contains("no reply from 10.5.0.2 to two 68-byte echo requests with DF set"), "{detail}");
}

#[test]
fn path_mtu_without_icmp_errors() {
    run_in_fresh_netns(
        "mtu::netns_path_mtu_without_icmp_errors",
        // ping_group_range is per namespace: open it to root's group here only; drop CAP_NET_RAW for the exec.
        &format!("{ROUTED_TEST_HOSTS} && sysctl -qw net.ipv4.ping_group_range='0 0'"),
        "setpriv --bounding-set -net_raw --inh-caps -net_raw",
    );
}

#[tokio::test]
#[ignore = "runs inside a fresh network namespace, through `path_mtu_without_icmp_errors`"]
async fn netns_path_mtu_without_icmp_errors() {
    if !in_netns() {
        return;
    }
    // An unprivileged datagram socket never sees "fragmentation needed": the router's drops are silence, each
    // silent step is tried twice and counted as too big, and the binary search still lands on 1400.
    let clients = Arc::new(IcmpClients::new());
    warm_up(&clients, &["10.8.0.2", "fd00:8::2"]).await;
    for target in ["10.8.0.2", "fd00:8::2"] {
        let o = sweep(&clients, MtuParams { timeout: Duration::from_millis(200), ..params(target) }, true)
            .await
            .expect("datagram socket");
        assert_measured(&o, 1400);
        let outcome = |size| o.probes.iter().find(|s| s.size == size).map(|s| s.outcome);
        assert_eq!(outcome(1500), Some(MtuOutcome::Lost), "{o:?}");
        assert_eq!(outcome(1400), Some(MtuOutcome::Ok), "{o:?}");
        assert_eq!(outcome(1401), Some(MtuOutcome::Lost), "{o:?}");
        assert!(o.probes.iter().all(|s| s.outcome != MtuOutcome::TooBig && s.reported_mtu.is_none()), "{o:?}");
        let min = if target.contains(':') { 1280 } else { 68 };
        assert!(o.probes.len() <= 2 + (32 - (1500u32 - min).leading_zeros()) as usize, "{o:?}");
    }
    // An ICMP check with DF and 1500-byte packets times out the same way, and its detail says why that may be.
    let p = IcmpParams {
        target: "10.8.0.2".into(),
        count: 2,
        interval: Duration::from_millis(10),
        size: 1472,
        timeout: Duration::from_millis(300),
        dont_fragment: true,
        ..Default::default()
    };
    let Ok(Observations::Icmp(o)) = IcmpProbe::new(p, clients).run().await else { panic!("ICMP observations") };
    assert_eq!((o.received, o.failure, o.too_big), (0, Some(Failure::Timeout), None), "{o:?}");
    let detail = o.detail.expect("detail");
    assert!(detail.contains("DF set on an unprivileged ICMP socket") && detail.contains("CAP_NET_RAW"), "{detail}");
}
