//! TLS handshake with rustls: SNI, chain verification (system roots or a CA file) and why it failed, version,
//! cipher, ALPN, leaf and chain certificate details, handshake time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Failure;

/// Parameters of one TLS check.
#[derive(Debug, Clone)]
pub struct TlsParams {
    pub host: String,
    pub port: u16,
    /// SNI and the name verified against the certificate.
    pub server_name: String,
    /// PEM file of trusted CA certificates; `None`: the system roots.
    pub ca_file: Option<PathBuf>,
    /// When false, an invalid chain is recorded but is not a failure.
    pub verify: bool,
    /// Bound on connect plus handshake.
    pub timeout: Duration,
}

/// One certificate, as far as a check needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Subject alternative names: DNS names and IP addresses.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// Lowercase hex, no separators.
    pub serial: String,
    /// SHA-256 of the DER encoding, lowercase hex, no separators.
    pub sha256: String,
}

/// What a TLS check saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsObservations {
    pub address: Option<SocketAddr>,
    /// TCP connect plus handshake.
    #[serde(rename = "handshake_ms", with = "crate::ms::opt")]
    pub handshake_time: Option<Duration>,
    /// `"1.2"` or `"1.3"`.
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub alpn: Option<String>,
    /// Whether the presented chain verified against the trusted roots for `server_name`; `None` when no
    /// chain was presented.
    pub chain_verified: Option<bool>,
    /// Why it did not verify ("certificate expired", "unknown issuer", "name mismatch: …").
    pub verify_error: Option<String>,
    /// The presented chain, leaf first.
    pub chain: Vec<CertInfo>,
    pub failure: Option<Failure>,
    pub detail: Option<String>,
}

impl TlsObservations {
    /// The leaf certificate, if one was presented.
    pub fn leaf(&self) -> Option<&CertInfo> {
        self.chain.first()
    }
}
