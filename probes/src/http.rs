//! HTTP(S) with reqwest on rustls: status, final URL, redirects, selected headers, body size (read capped),
//! time to response headers and total time; explicit proxy or none.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Failure;

/// Parameters of one HTTP check.
#[derive(Debug, Clone)]
pub struct HttpParams {
    pub url: String,
    /// Upper-case method name.
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// PEM file of trusted CA certificates; `None`: the system roots.
    pub ca_file: Option<PathBuf>,
    /// When false, certificate errors are ignored.
    pub verify: bool,
    /// Proxy URL; `None`: connect directly (the proxy environment is not consulted in v1).
    pub proxy: Option<String>,
    pub follow_redirects: bool,
    /// Most body bytes read; the rest is not downloaded and `body_truncated` is set.
    pub body_limit: usize,
    /// Bound on the whole exchange.
    pub timeout: Duration,
}

/// What an HTTP check saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpObservations {
    pub status: Option<u16>,
    /// The URL of the last response (after redirects).
    pub final_url: Option<String>,
    pub redirects: u32,
    /// A few response headers worth keeping as evidence (content-type, server, location, content-length),
    /// names lowercased.
    pub headers: BTreeMap<String, String>,
    pub body_bytes: u64,
    pub body_truncated: bool,
    /// The body read (up to the limit), lossily decoded as UTF-8, for body expectations. Not serialised:
    /// application pages are not evidence.
    #[serde(skip)]
    pub body: String,
    #[serde(rename = "headers_ms", with = "crate::ms::opt")]
    pub time_to_headers: Option<Duration>,
    #[serde(rename = "total_ms", with = "crate::ms::opt")]
    pub total_time: Option<Duration>,
    pub failure: Option<Failure>,
    pub detail: Option<String>,
}
