//! ICMP echo: loss, RTT statistics and jitter, IPv4 and IPv6, with surge-ping.
//!
//! One [`IcmpClients`] is shared by every ICMP check of a run: one socket per address family, replies matched
//! by identifier and sequence. A raw socket is used where permitted (root or CAP_NET_RAW), otherwise an
//! unprivileged datagram ICMP socket (net.ipv4.ping_group_range); with neither, the probe returns
//! [`ProbeError::Permission`](crate::ProbeError::Permission) naming both fixes.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Failure, RttStats};

/// Parameters of one ICMP check.
#[derive(Debug, Clone)]
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
    /// Human detail for the failure ("destination host unreachable from 10.0.0.254").
    pub detail: Option<String>,
}
