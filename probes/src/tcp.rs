//! TCP connect: connect-time statistics over one or more attempts; refused vs timed out vs unreachable.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Failure, RttStats};

/// Parameters of one TCP check.
#[derive(Debug, Clone)]
pub struct TcpParams {
    /// Host name or IP address.
    pub host: String,
    pub port: u16,
    /// Connect attempts, made one after the other.
    pub count: u32,
    /// Bound on each attempt; the check takes at most `count × timeout`.
    pub timeout: Duration,
}

/// What a TCP check saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TcpObservations {
    /// The address connected to (after resolving a name).
    pub address: Option<SocketAddr>,
    pub attempts: u32,
    pub connected: u32,
    /// Connect-time statistics over the successful attempts.
    pub connect: Option<RttStats>,
    /// Per attempt: connect time in milliseconds, or `null` when it failed.
    pub samples_ms: Vec<Option<f64>>,
    /// The failure of the last failed attempt, if any attempt failed.
    pub failure: Option<Failure>,
    pub detail: Option<String>,
}
