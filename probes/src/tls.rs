//! TLS handshake with rustls: SNI, chain verification (system roots or a CA file) and why it failed, version,
//! cipher, ALPN, leaf and chain certificate details, handshake time; optionally a client certificate (mutual
//! TLS), limits on the versions offered and a source address.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ProtocolVersion;
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{self, TcpSocket, TcpStream};
use tokio::time::{self, Instant};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use x509_parser::asn1_rs::{Any, Tag, ToDer as _};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::X509Name;

use crate::tlsconf::{ClientOptions, ClientTls, HandshakeWatch, OnInvalid, TlsVersion, describe_error, failure_of};
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
    /// PEM file with a client certificate chain (leaf first) for mutual TLS; it may hold the key too. `None`:
    /// no client certificate (a server that requires one fails the check with
    /// [`Failure::TlsHandshake`], "certificate required").
    pub client_cert: Option<PathBuf>,
    /// PEM file with the client certificate's private key (unencrypted PKCS#8, PKCS#1 or SEC1); `None`: read
    /// from `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Lowest TLS version offered; `None`: 1.2.
    pub min_version: Option<TlsVersion>,
    /// Highest TLS version offered; `None`: 1.3.
    pub max_version: Option<TlsVersion>,
    /// Local address to connect from (bound before connecting); only addresses of the host's name in its
    /// family are tried. `None`: the kernel chooses. An address this host does not have is a
    /// [`ProbeError::Local`].
    pub source: Option<IpAddr>,
}

/// One certificate, as far as a check needs it.
///
/// # Distinguished names
///
/// `subject` and `issuer` are RFC 4514 strings, stable across releases so that expectations can match them
/// with a regular expression:
///
/// - RDNs in reverse order of their encoding, so the most specific comes first, separated by `,` with no
///   spaces: `CN=app.example,OU=Web,O=Trust,C=GB`; attributes of one multi-valued RDN joined by `+`.
/// - Attribute types as the RFC 4514 keywords `CN`, `L`, `ST`, `O`, `OU`, `C`, `STREET`, `DC`, `UID`, plus
///   `serialNumber` and `emailAddress` as OpenSSL names them; any other type as its dotted OID (`2.5.4.97`).
/// - Values as text (UTF-8, BMP, universal and Teletex strings decoded; Teletex as Latin-1), with `,` `+` `"`
///   `\` `<` `>` `;` escaped by a backslash, as are a leading `#` or space and a trailing space; a NUL is
///   `\00`. A value that is not a string is `#` followed by the lowercase hex of its DER encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Distinguished name in RFC 4514 style, most specific first: `CN=app.example,O=Trust,C=GB` (see the
    /// type's documentation for the exact format).
    pub subject: String,
    /// The issuer's distinguished name, in the same format.
    pub issuer: String,
    /// Subject alternative names: DNS names and IP addresses (IPv6 in canonical RFC 5952 form).
    pub names: Vec<String>,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds. The earliest expiry of a chain is the least `not_after` of its
    /// certificates.
    pub not_after: i64,
    /// Serial number, lowercase hex, no separators, no leading zero bytes.
    pub serial: String,
    /// SHA-256 fingerprint of the DER encoding: 64 lowercase hex digits, no separators (what
    /// `openssl x509 -fingerprint -sha256` prints, lowercased and without colons).
    pub sha256: String,
}

/// What a TLS check saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsObservations {
    /// The address connected to (the last one tried when none accepted).
    pub address: Option<SocketAddr>,
    /// TCP connect plus handshake; `None` when the handshake failed, also when the server refused the client
    /// certificate (or its absence) right after a TLS 1.3 handshake.
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

/// How long, at most, to wait after a TLS 1.3 handshake in which the server asked for a client certificate for
/// the server's verdict on it (an alert, or a session ticket, data or a close that says it was accepted). A
/// TLS 1.3 client finishes its handshake before the server has judged its certificate.
pub const CLIENT_AUTH_GRACE: Duration = Duration::from_millis(500);

/// A TLS check of one `host:port`: resolve, TCP connect, handshake, then report the session and the chain.
///
/// The chain is always verified and the result recorded; the handshake goes on when it does not verify, so
/// the chain can be reported. With `verify` set, an invalid chain is the failure
/// [`Failure::CertificateInvalid`].
///
/// When the server asks for a client certificate in TLS 1.3, the probe waits up to [`CLIENT_AUTH_GRACE`]
/// (within the timeout) after the handshake for the server's verdict, so that a refused client certificate
/// (or none) is the failure [`Failure::TlsHandshake`] naming the server's alert.
#[derive(Debug)]
pub struct TlsProbe {
    params: TlsParams,
    /// Roots and provider, built once; a CA file problem is kept and returned by every run.
    tls: Result<ClientTls, ProbeError>,
}

impl TlsProbe {
    /// Prepare the check; reading the CA file and the client certificate and key happens here, and a problem
    /// with them (or `min_version` above `max_version`) is returned by `run`.
    pub fn new(params: TlsParams) -> TlsProbe {
        let options = ClientOptions {
            client_cert: params.client_cert.clone(),
            client_key: params.client_key.clone(),
            min_version: params.min_version,
            max_version: params.max_version,
        };
        let tls = ClientTls::with_options(params.ca_file.as_deref(), &options);
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
        let (config, watch) = tls.watched_client_config(verifier.clone())?;
        let connector = TlsConnector::from(Arc::new(config));
        let source = self.params.source;
        if let Some(source) = source {
            check_source(source)?;
        }

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
        let addrs = match source {
            Some(source) => same_family(host, addrs, source)?,
            None => addrs,
        };

        // Connect to the addresses in the resolver's order; the first that accepts is used.
        let mut connected = None;
        for addr in addrs {
            obs.address = Some(addr);
            match time::timeout_at(deadline, connect(addr, source)).await {
                Err(_) => {
                    let detail = format!("no TCP connection to {addr} within {timeout:?}");
                    return Ok(done(obs.failed(Failure::Timeout, detail)));
                }
                Ok(Err(Connect::Bind(e))) => return Err(e),
                Ok(Err(Connect::Io(e))) => {
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
                let (failure, detail) = tls_io_failure(&e, "during the TLS handshake");
                obs = obs.failed(failure, format!("{detail} ({addr})"));
            }
            Ok(Ok(mut stream)) => {
                let handshake_time = start.elapsed();
                let (_, conn) = stream.get_ref();
                obs.version = conn.protocol_version().map(version_name);
                obs.cipher = conn.negotiated_cipher_suite().map(|s| {
                    let suite = s.suite();
                    suite.as_str().map_or_else(|| format!("{suite:?}"), str::to_owned)
                });
                obs.alpn = conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
                obs.chain = conn.peer_certificates().unwrap_or_default().iter().map(|c| cert_info(c)).collect();
                let tls13 = conn.protocol_version() == Some(ProtocolVersion::TLSv1_3);
                match client_auth_verdict(&mut stream, &watch, tls13, deadline).await {
                    Ok(()) => obs.handshake_time = Some(handshake_time),
                    Err((failure, detail)) => obs = obs.failed(failure, format!("{detail} ({addr})")),
                }
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

/// The failure and its words for an I/O error of a TLS stream, looking for the rustls error inside. `when`
/// completes "the server closed the connection …".
fn tls_io_failure(e: &io::Error, when: &str) -> (Failure, String) {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls_error) => (failure_of(tls_error), describe_error(tls_error)),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            (Failure::ConnectionReset, format!("the server closed the connection {when}"))
        }
        None => (io_failure(e, false), format!("TLS {when}: {e}")),
    }
}

/// After a TLS 1.3 handshake in which the server asked for a client certificate, wait for the server's verdict
/// on it: an alert (or a close) is the failure; a session ticket, application data, a clean close, or silence
/// for [`CLIENT_AUTH_GRACE`] (or until the deadline) is acceptance. Nothing to wait for otherwise: in TLS 1.2
/// the server's Finished already said it.
async fn client_auth_verdict(
    stream: &mut TlsStream<TcpStream>,
    watch: &HandshakeWatch,
    tls13: bool,
    deadline: Instant,
) -> Result<(), (Failure, String)> {
    if !tls13 || !watch.client_cert_requested() {
        return Ok(());
    }
    let until = deadline.min(Instant::now() + CLIENT_AUTH_GRACE);
    let mut byte = [0u8; 1];
    let read = tokio::select! {
        read = stream.read(&mut byte) => read,
        () = watch.ticket() => return Ok(()),
        () = time::sleep_until(until) => return Ok(()),
    };
    match read {
        Ok(_) => Ok(()),
        Err(e) => {
            let (failure, detail) = tls_io_failure(&e, "right after the TLS handshake");
            let presented = if watch.client_cert_presented() {
                "a client certificate was presented"
            } else {
                "no client certificate was presented"
            };
            Err((failure, format!("{detail}; the server asked for a client certificate and {presented}")))
        }
    }
}

/// A TCP connect that failed before reaching the network (the source address) or on it.
#[derive(Debug)]
pub(crate) enum Connect {
    /// Binding the source address failed: the agent cannot measure.
    Bind(ProbeError),
    /// The connect itself failed: an observation.
    Io(io::Error),
}

/// Connect to `addr`, from `source` when given.
pub(crate) async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream, Connect> {
    let Some(source) = source else { return TcpStream::connect(addr).await.map_err(Connect::Io) };
    let socket = bound_socket(source).map_err(Connect::Bind)?;
    socket.connect(addr).await.map_err(Connect::Io)
}

/// A TCP socket bound to `source` (any port).
fn bound_socket(source: IpAddr) -> Result<TcpSocket, ProbeError> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| ProbeError::Local(format!("cannot open a TCP socket: {e}")))?;
    socket.bind(SocketAddr::new(source, 0)).map_err(|e| source_error(source, &e))?;
    Ok(socket)
}

/// Whether `source` can be bound: it is an address of this host. Binds a socket and drops it; sends nothing.
pub(crate) fn check_source(source: IpAddr) -> Result<(), ProbeError> {
    bound_socket(source).map(drop)
}

fn source_error(source: IpAddr, e: &io::Error) -> ProbeError {
    if e.kind() == io::ErrorKind::AddrNotAvailable {
        ProbeError::Local(format!(
            "source address {source} is not an address of this host ({e}): set source to an address of a local \
             interface (see `ip address`), or remove it"
        ))
    } else {
        ProbeError::Local(format!("cannot bind the source address {source}: {e}"))
    }
}

/// The addresses of `host` in the family of `source`; none is a local error (no route from that source).
pub(crate) fn same_family(host: &str, addrs: Vec<SocketAddr>, source: IpAddr) -> Result<Vec<SocketAddr>, ProbeError> {
    if addrs.is_empty() {
        return Ok(addrs);
    }
    let kept: Vec<SocketAddr> = addrs.iter().copied().filter(|a| a.is_ipv4() == source.is_ipv4()).collect();
    if kept.is_empty() {
        let family = if source.is_ipv4() { "IPv4" } else { "IPv6" };
        let found: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        return Err(ProbeError::Local(format!(
            "source address {source} is {family} but {host} has no {family} address (it resolved to {}): use a \
             source address of the other family",
            found.join(", ")
        )));
    }
    Ok(kept)
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

/// A distinguished name as an RFC 4514 string: see [`CertInfo`] for the exact format.
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let key = attribute_keyword(&oid).map_or(oid, str::to_owned);
                    let value = match attribute_text(attr.attr_value()) {
                        Some(text) => escape_dn_value(&text),
                        None => match attr.attr_value().to_der_vec() {
                            Ok(der) => format!("#{}", hex(&der)),
                            Err(_) => format!("#{}", hex(attr.attr_value().data)),
                        },
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The keyword for an attribute type OID: RFC 4514 section 3, plus `serialNumber` and `emailAddress`.
fn attribute_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "2.5.4.5" => "serialNumber",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// An attribute value as text, if it is one of the string types.
fn attribute_text(value: &Any<'_>) -> Option<String> {
    let data = value.data;
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString | Tag::VisibleString => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        // T.61 in theory, Latin-1 in practice (as OpenSSL shows it).
        Tag::TeletexString => Some(data.iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString if data.len() % 2 == 0 => {
            let units: Vec<u16> = data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString if data.len() % 4 == 0 => data
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect::<Option<String>>(),
        _ => None,
    }
}

/// Escape an attribute value as RFC 4514 section 2.4 asks.
fn escape_dn_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, ch) in s.chars().enumerate() {
        if ch == '\0' {
            out.push_str("\\00");
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_values_are_escaped_as_rfc4514_asks() {
        assert_eq!(escape_dn_value("Trust, Inc."), r"Trust\, Inc.");
        assert_eq!(escape_dn_value("#1 CA "), r"\#1 CA\ ");
        assert_eq!(escape_dn_value(" a+b;c<d>e\"f\\"), r#"\ a\+b\;c\<d\>e\"f\\"#);
        assert_eq!(escape_dn_value("nul\0here"), r"nul\00here");
        assert_eq!(escape_dn_value("plain"), "plain");
    }

    #[test]
    fn attribute_types_have_stable_keywords() {
        assert_eq!(attribute_keyword("2.5.4.3"), Some("CN"));
        assert_eq!(attribute_keyword("0.9.2342.19200300.100.1.25"), Some("DC"));
        assert_eq!(attribute_keyword("1.2.840.113549.1.9.1"), Some("emailAddress"));
        assert_eq!(attribute_keyword("2.5.4.97"), None);
    }
}
