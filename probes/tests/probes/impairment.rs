//! Accuracy under impairment: `tc netem` delay 20 ms and loss 10 % on the veth towards a test host the test
//! creates; gonogo's loss and RTT statistics must land within statistical tolerance of what was configured.
//!
//! Needs root, network namespaces and the kernel's `sch_netem`; skipped, saying which is missing, without them.
//! netem in the iproute2 of Debian 12 takes no seed, so the tolerance is statistical: 600 echoes, 10 % loss on the
//! requests only (netem is on our egress), σ = √(0.1 × 0.9 / 600) ≈ 1.2 %, and the bound is ±5 % (over 4σ).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

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
