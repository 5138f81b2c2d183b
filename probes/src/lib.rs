//! gonogo-probes: the code that measures.
//!
//! Code map, in reading order:
//! - this file: the [`Probe`] trait every kind implements, the [`Observations`] a probe returns, the closed
//!   [`Failure`] taxonomy (one-to-one with a metric label) and [`ProbeError`] ("could not measure").
//! - [`stats`]: sample statistics shared by the sampling probes (loss, min/mean/p50/p95/max, jitter).
//! - one module per kind: [`icmp`], [`tcp`], [`dns`], [`tls`], [`http`], [`egress`] (on top of `http`),
//!   [`mtu`] (on top of `icmp`).
//!
//! Invariant: probes know nothing of config files, metrics, HTTP serving or disk. A target that is down is an
//! *observation* (`Ok` with a [`Failure`]); `Err` means the agent could not measure at all (no permission to
//! open an ICMP socket, an unreadable CA file, a bad local address). Nothing here panics on network input.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

// Shared pieces.
pub mod stats;
pub mod tlsconf;
mod together;

// One module per probe kind.
pub mod dns;
pub mod egress;
pub mod http;
pub mod icmp;
pub mod mtu;
pub mod tcp;
pub mod tls;

pub use stats::RttStats;

/// The future a probe returns.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<Observations, ProbeError>> + Send + 'a>>;

/// One measurement kind, configured for one target.
///
/// Implementations hold their parameters (built once per config by the agent's `plan::Probes`, and run
/// concurrently by several runs: no per-run state in the probe) and any shared client they
/// need (the ICMP client of their address family, a TLS client configuration).
pub trait Probe: Send + Sync + fmt::Debug {
    /// Which kind of probe this is.
    fn kind(&self) -> Kind;
    /// The target as a person reads it: `10.0.0.1`, `app.example:443`, `https://app.example/health`,
    /// `nww.nhs.uk A @155.231.231.1:53/udp`.
    fn target(&self) -> String;
    /// The longest this probe may take (its timeouts, sample count and interval). The run engine enforces it
    /// with a small margin, so a probe that overruns is cut off and reported as timed out.
    fn budget(&self) -> Duration;
    /// Measure once.
    fn run(&self) -> ProbeFuture<'_>;
}

/// The probe kinds. Closed: the agent matches on it exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Icmp,
    Tcp,
    Dns,
    Tls,
    Http,
    /// "What is my public address": an HTTP(S) address-echo service.
    Egress,
    /// Path MTU: a sweep of ICMP echoes with DF set.
    Mtu,
}

impl Kind {
    /// Lowercase name, as in config files and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Icmp => "icmp",
            Kind::Tcp => "tcp",
            Kind::Dns => "dns",
            Kind::Tls => "tls",
            Kind::Http => "http",
            Kind::Egress => "egress",
            Kind::Mtu => "mtu",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a target did not answer as asked. A closed taxonomy that maps one to one to a metric label value, so it
/// must stay small and stable; the human detail goes in the observation's `detail` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Failure {
    /// No answer within the timeout (lost echoes, a SYN never answered, a server that accepts and stays
    /// silent).
    Timeout,
    /// The peer refused the connection (TCP RST).
    ConnectionRefused,
    /// The network said the host or network is unreachable (ICMP error, EHOSTUNREACH, ENETUNREACH).
    Unreachable,
    /// The target's name did not resolve.
    ResolveFailed,
    /// The connection was reset or closed before the exchange finished.
    ConnectionReset,
    /// The TLS handshake failed (alert, no common version or cipher).
    TlsHandshake,
    /// The certificate chain did not verify (expired, unknown issuer, name mismatch).
    CertificateInvalid,
    /// The peer answered with something that is not the protocol expected (bad HTTP, bad DNS message).
    Protocol,
}

impl Failure {
    /// Snake-case name, as used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::ConnectionRefused => "connection_refused",
            Failure::Unreachable => "unreachable",
            Failure::ResolveFailed => "resolve_failed",
            Failure::ConnectionReset => "connection_reset",
            Failure::TlsHandshake => "tls_handshake",
            Failure::CertificateInvalid => "certificate_invalid",
            Failure::Protocol => "protocol",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The agent could not measure. Distinct from a target that is down, which is an observation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The process lacks a privilege the probe needs; the message says what to grant.
    #[error("{0}")]
    Permission(String),
    /// Local state stops the probe: an unreadable or invalid CA/certificate file, a source address this host
    /// does not own, a socket that cannot be opened. The message names the thing and the fix.
    #[error("{0}")]
    Local(String),
}

/// What a probe saw. One variant per kind; every variant serialises with durations in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Observations {
    Icmp(icmp::IcmpObservations),
    Tcp(tcp::TcpObservations),
    Dns(dns::DnsObservations),
    Tls(tls::TlsObservations),
    Http(http::HttpObservations),
    Egress(egress::EgressObservations),
    Mtu(mtu::MtuObservations),
}

impl Observations {
    /// The failure the probe saw, if any.
    pub fn failure(&self) -> Option<Failure> {
        match self {
            Observations::Icmp(o) => o.failure,
            Observations::Tcp(o) => o.failure,
            Observations::Dns(o) => o.failure,
            Observations::Tls(o) => o.failure,
            Observations::Http(o) => o.failure,
            Observations::Egress(o) => o.failure,
            Observations::Mtu(o) => o.failure,
        }
    }
}

/// Serde helpers: `Duration` as floating-point milliseconds, the unit people read RTTs in.
pub mod ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialise a duration as milliseconds (f64).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e3)
    }

    /// Deserialise milliseconds (f64) into a duration; negative or non-finite values are rejected.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v / 1e3).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Duration>`.
    pub mod opt {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.serialize_some(&(d.as_secs_f64() * 1e3)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            match Option::<f64>::deserialize(d)? {
                Some(v) => Duration::try_from_secs_f64(v / 1e3).map(Some).map_err(serde::de::Error::custom),
                None => Ok(None),
            }
        }
    }
}
