//! Observations built by hand for the unit tests of the pure engines (verdict, metrics).

use std::time::Duration;

use gonogo_probes::icmp::IcmpObservations;
use gonogo_probes::{Failure, RttStats};

/// ICMP observations of echoes to 127.0.0.1: one entry per echo, its RTT in milliseconds or `None` when lost.
pub fn icmp(rtts: &[Option<u64>]) -> IcmpObservations {
    let got: Vec<Duration> = rtts.iter().flatten().map(|&v| Duration::from_millis(v)).collect();
    let sent = rtts.len() as u32;
    let received = got.len() as u32;
    IcmpObservations {
        address: Some("127.0.0.1".parse().expect("ip")),
        sent,
        received,
        loss: gonogo_probes::stats::loss_ratio(sent, received),
        rtt: RttStats::from_samples(&got),
        samples_ms: rtts.iter().map(|r| r.map(|v| v as f64)).collect(),
        failure: if received == 0 { Some(Failure::Timeout) } else { None },
        detail: if received == 0 { Some("no reply within 2s".into()) } else { None },
        fallback_tcp: None,
        too_big: None,
    }
}
