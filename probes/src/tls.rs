//! TLS handshake with rustls: SNI, chain verification (system roots or a CA file) and why it failed, version,
//! cipher, ALPN, leaf and chain certificate details, handshake time.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ProtocolVersion;
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{self, TcpStream};
use tokio::time::{self, Instant};
use tokio_rustls::TlsConnector;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::X509Name;

use crate::tlsconf::{ClientTls, OnInvalid, describe_error, failure_of};
use crate::{Failure, Kind, Observations, Probe, ProbeError, ProbeFuture};

/// Parameters of one TLS check.
#[derive(Debug, Clone, Default)]
pub struct TlsParams {
    /// Host name or IP address to connect to; every address it resolves to is tried in order.
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
    /// Distinguished name in RFC 4514 style, most specific first: `CN=app.example,O=Trust,C=GB`.
    pub subject: String,
    /// The issuer's distinguished name, in the same style.
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
    /// The address connected to (the last one tried when none accepted).
    pub address: Option<SocketAddr>,
    /// TCP connect plus handshake.
    #[serde(rename = "handshake_ms", with = "crate::ms::opt")]
    pub handshake_time: Option<Duration>,
    /// `"1.2"` or `"1.3"`.
    pub version: Option<String>,
    /// Cipher suite as rustls names it, e.g. `TLS13_AES_256_GCM_SHA384`, `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    pub cipher: Option<String>,
    /// Negotiated ALPN protocol (`h2` and `http/1.1` are offered).
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

impl TlsObservations {
    /// Nothing seen yet.
    fn empty() -> TlsObservations {
        TlsObservations {
            address: None,
            handshake_time: None,
            version: None,
            cipher: None,
            alpn: None,
            chain_verified: None,
            verify_error: None,
            chain: Vec::new(),
            failure: None,
            detail: None,
        }
    }

    fn failed(mut self, failure: Failure, detail: String) -> TlsObservations {
        self.failure = Some(failure);
        self.detail = Some(detail);
        self
    }
}

/// Added to the timeout to give the probe's budget: time to build the result after the deadline.
const BUDGET_MARGIN: Duration = Duration::from_millis(250);

/// A TLS check of one `host:port`: resolve, TCP connect, handshake, then report the session and the chain.
///
/// The chain is always verified and the result recorded; the handshake goes on when it does not verify, so
/// the chain can be reported. With `verify` set, an invalid chain is the failure
/// [`Failure::CertificateInvalid`].
#[derive(Debug)]
pub struct TlsProbe {
    params: TlsParams,
    /// Roots and provider, built once; a CA file problem is kept and returned by every run.
    tls: Result<ClientTls, ProbeError>,
}

impl TlsProbe {
    /// Prepare the check; reading the CA file happens here, and a problem with it is returned by `run`.
    pub fn new(params: TlsParams) -> TlsProbe {
        let tls = ClientTls::new(params.ca_file.as_deref());
        TlsProbe { params, tls }
    }

    async fn measure(&self) -> Result<Observations, ProbeError> {
        let tls = self.tls.as_ref().map_err(Clone::clone)?;
        if self.params.verify
            && let Some(e) = tls.roots_error()
        {
            return Err(e.clone());
        }
        let name = self.params.server_name.as_str();
        let server_name = ServerName::try_from(name)
            .map_err(|e| ProbeError::Local(format!("{name:?} is not a valid TLS server name: {e}")))?
            .to_owned();
        let verifier = tls.verifier(OnInvalid::Continue);
        let connector = TlsConnector::from(Arc::new(tls.client_config(verifier.clone())?));

        let timeout = self.params.timeout;
        let start = Instant::now();
        let deadline = start + timeout;
        let mut obs = TlsObservations::empty();
        let host = self.params.host.as_str();
        let port = self.params.port;

        let addrs: Vec<SocketAddr> = match time::timeout_at(deadline, net::lookup_host((host, port))).await {
            Err(_) => {
                return Ok(done(obs.failed(Failure::Timeout, format!("{host} did not resolve within {timeout:?}"))));
            }
            Ok(Err(e)) => return Ok(done(obs.failed(Failure::ResolveFailed, format!("cannot resolve {host}: {e}")))),
            Ok(Ok(addrs)) => addrs.collect(),
        };

        // Connect to the addresses in the resolver's order; the first that accepts is used.
        let mut connected = None;
        for addr in addrs {
            obs.address = Some(addr);
            match time::timeout_at(deadline, TcpStream::connect(addr)).await {
                Err(_) => {
                    let detail = format!("no TCP connection to {addr} within {timeout:?}");
                    return Ok(done(obs.failed(Failure::Timeout, detail)));
                }
                Ok(Err(e)) => {
                    obs.failure = Some(io_failure(&e, true));
                    obs.detail = Some(format!("TCP connect to {addr}: {e}"));
                }
                Ok(Ok(tcp)) => {
                    connected = Some((addr, tcp));
                    break;
                }
            }
        }
        let Some((addr, tcp)) = connected else {
            if obs.failure.is_none() {
                return Ok(done(obs.failed(Failure::ResolveFailed, format!("{host} resolved to no addresses"))));
            }
            return Ok(done(obs));
        };
        obs.failure = None;
        obs.detail = None;

        let handshake = time::timeout_at(deadline, connector.connect(server_name, tcp)).await;
        let seen = verifier.take();
        match handshake {
            Err(_) => {
                let detail = format!(
                    "TLS handshake with {addr} not finished within {timeout:?} (the server accepted the connection \
                     but did not complete the handshake)"
                );
                obs = obs.failed(Failure::Timeout, detail);
            }
            Ok(Err(e)) => {
                let (failure, detail) = match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                    Some(tls_error) => (failure_of(tls_error), describe_error(tls_error)),
                    None if e.kind() == io::ErrorKind::UnexpectedEof => {
                        (Failure::ConnectionReset, "the server closed the connection during the TLS handshake".into())
                    }
                    None => (io_failure(&e, false), format!("TLS handshake: {e}")),
                };
                obs = obs.failed(failure, format!("{detail} ({addr})"));
            }
            Ok(Ok(mut stream)) => {
                obs.handshake_time = Some(start.elapsed());
                let (_, conn) = stream.get_ref();
                obs.version = conn.protocol_version().map(version_name);
                obs.cipher = conn.negotiated_cipher_suite().map(|s| {
                    let suite = s.suite();
                    suite.as_str().map_or_else(|| format!("{suite:?}"), str::to_owned)
                });
                obs.alpn = conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
                obs.chain = conn.peer_certificates().unwrap_or_default().iter().map(|c| cert_info(c)).collect();
                // Say goodbye politely, but never past the deadline.
                let _ = time::timeout_at(deadline, stream.shutdown()).await;
            }
        }

        if let Some(seen) = seen {
            if obs.chain.is_empty() {
                obs.chain = seen.chain.iter().map(|c| cert_info(c)).collect();
            }
            obs.chain_verified = Some(seen.result.is_ok());
            obs.verify_error = seen.result.err();
        }
        if obs.failure.is_none()
            && self.params.verify
            && obs.chain_verified == Some(false)
            && let Some(why) = obs.verify_error.clone()
        {
            obs = obs.failed(Failure::CertificateInvalid, why);
        }
        Ok(done(obs))
    }
}

fn done(obs: TlsObservations) -> Observations {
    Observations::Tls(obs)
}

impl Probe for TlsProbe {
    fn kind(&self) -> Kind {
        Kind::Tls
    }

    fn target(&self) -> String {
        let p = &self.params;
        let host_port =
            if p.host.contains(':') { format!("[{}]:{}", p.host, p.port) } else { format!("{}:{}", p.host, p.port) };
        if p.server_name == p.host { host_port } else { format!("{host_port} ({})", p.server_name) }
    }

    fn budget(&self) -> Duration {
        self.params.timeout + BUDGET_MARGIN
    }

    fn run(&self) -> ProbeFuture<'_> {
        Box::pin(self.measure())
    }
}

/// `"1.2"`, `"1.3"`, or the protocol's debug name for anything older.
fn version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_3 => "1.3".to_owned(),
        ProtocolVersion::TLSv1_2 => "1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The failure an I/O error stands for. `connecting`: the error came from TCP connect, where an error that is
/// not a refusal or a reset means the network could not deliver.
pub(crate) fn io_failure(e: &io::Error, connecting: bool) -> Failure {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => Failure::ConnectionRefused,
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe | K::NotConnected => {
            Failure::ConnectionReset
        }
        K::TimedOut | K::WouldBlock => Failure::Timeout,
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable | K::NetworkDown => Failure::Unreachable,
        _ if connecting => Failure::Unreachable,
        _ => Failure::ConnectionReset,
    }
}

/// Parse one DER certificate into the details a check reports. A certificate x509-parser cannot read still
/// yields its fingerprint, with the parse error as its subject.
pub fn cert_info(der: &[u8]) -> CertInfo {
    let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => {
            let mut names = Vec::new();
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                for name in &san.value.general_names {
                    match name {
                        GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                        GeneralName::IPAddress(bytes) => names.push(ip_name(bytes)),
                        _ => {}
                    }
                }
            }
            CertInfo {
                subject: rfc4514(cert.subject()),
                issuer: rfc4514(cert.issuer()),
                names,
                not_before: cert.validity().not_before.timestamp(),
                not_after: cert.validity().not_after.timestamp(),
                serial: serial_hex(cert.raw_serial()),
                sha256,
            }
        }
        Err(e) => CertInfo {
            subject: format!("(unparseable certificate: {e})"),
            issuer: String::new(),
            names: Vec::new(),
            not_before: 0,
            not_after: 0,
            serial: String::new(),
            sha256,
        },
    }
}

/// An IP address SAN (4 or 16 bytes) as text; anything else as hex.
fn ip_name(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        IpAddr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        IpAddr::from(v6).to_string()
    } else {
        hex(bytes)
    }
}

/// A distinguished name in the style of RFC 4514: most specific first, `CN=app.example,O=Trust,C=GB`.
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let key = oid2abbrev(attr.attr_type(), oid_registry())
                        .map_or_else(|_| attr.attr_type().to_id_string(), str::to_owned);
                    let value = match attr.as_str() {
                        Ok(s) => escape_dn_value(s),
                        Err(_) => format!("#{}", hex(attr.attr_value().data)),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// Escape an attribute value as RFC 4514 section 2.4 asks.
fn escape_dn_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, ch) in s.chars().enumerate() {
        let special = matches!(ch, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (ch == '#' || ch == ' '))
            || (i == last && ch == ' ');
        if special {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// A serial number as lowercase hex without the leading zero bytes of its DER integer encoding.
fn serial_hex(raw: &[u8]) -> String {
    let first = raw.iter().position(|b| *b != 0).unwrap_or(raw.len().saturating_sub(1));
    hex(&raw[first..])
}

/// Lowercase hex, no separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
