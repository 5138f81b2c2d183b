//! Shared rustls client configuration for the tls and http probes: the ring crypto provider, trusted roots
//! from the system or a CA file, an optional client certificate (mutual TLS), the TLS versions offered, and a
//! verifier that records why a chain failed instead of aborting the handshake, so a check can report the
//! certificate it was shown.
//!
//! - [`ClientTls`]: built once per probe from its `ca_file` and [`ClientOptions`]; hands out a [`ClientConfig`]
//!   per use.
//! - [`TlsVersion`]: a version a client may offer (`"1.2"`, `"1.3"`).
//! - [`RecordingVerifier`]: wraps rustls's [`WebPkiServerVerifier`], keeps the presented chain and the
//!   verification result (in words a network engineer reads), and either aborts ([`OnInvalid::Abort`]) or lets
//!   the handshake go on ([`OnInvalid::Continue`]). Handshake signatures are always checked for real.
//! - [`HandshakeWatch`]: whether the server asked for a client certificate, and (TLS 1.3) whether it has sent a
//!   session ticket since, its sign that it accepted the client.
//! - [`describe_error`], [`describe_cert_error`]: rustls errors as human text.
//!
//! Invariant: only the `ring` provider is used; nothing here installs a process-wide default provider. Sessions
//! are never resumed: every connection makes a full handshake, so every measurement includes it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionStore, ResolvesClientCert, Resumption, Tls12ClientSessionValue, Tls12Resumption,
    Tls13ClientSessionValue, WebPkiServerVerifier,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, NamedGroup, RootCertStore,
    SignatureScheme, SupportedProtocolVersion,
};
use tokio::sync::Notify;

use crate::{Failure, ProbeError};

/// ALPN protocols offered, in order of preference.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The crypto provider every probe uses: rustls's `ring` provider, built once per process and shared.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// A TLS protocol version a client may offer. Ordered: `V1_2 < V1_3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246).
    V1_2,
    /// TLS 1.3 (RFC 8446).
    V1_3,
}

impl TlsVersion {
    /// `"1.2"` or `"1.3"`, as in config files and in [`crate::tls::TlsObservations::version`].
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        }
    }

    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::V1_2 => &rustls::version::TLS12,
            TlsVersion::V1_3 => &rustls::version::TLS13,
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not `"1.2"` or `"1.3"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TLS version {0:?}: expected \"1.2\" or \"1.3\"")]
pub struct ParseTlsVersionError(String);

impl FromStr for TlsVersion {
    type Err = ParseTlsVersionError;

    /// `"1.2"` or `"1.3"` (surrounding white space ignored).
    fn from_str(s: &str) -> Result<TlsVersion, ParseTlsVersionError> {
        match s.trim() {
            "1.2" => Ok(TlsVersion::V1_2),
            "1.3" => Ok(TlsVersion::V1_3),
            _ => Err(ParseTlsVersionError(s.to_owned())),
        }
    }
}

/// How a probe's TLS client is set up beyond its trusted roots. The default: no client certificate, TLS 1.2
/// and 1.3 offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// PEM file with the client certificate chain (leaf first) for mutual TLS; it may hold the key too.
    pub client_cert: Option<PathBuf>,
    /// PEM file with the client certificate's private key (PKCS#8, PKCS#1 or SEC1, unencrypted); `None`: the
    /// key is read from `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Lowest version offered; `None`: 1.2.
    pub min_version: Option<TlsVersion>,
    /// Highest version offered; `None`: 1.3.
    pub max_version: Option<TlsVersion>,
}

/// Trusted roots, the provider, the client identity and the versions offered, built once per probe; hands out
/// client configurations.
#[derive(Debug, Clone)]
pub struct ClientTls {
    provider: Arc<CryptoProvider>,
    /// The chain verifier over the trusted roots, or why there are no roots (system store empty or
    /// unreadable). A CA file problem is reported by [`ClientTls::new`] instead.
    webpki: Result<Arc<WebPkiServerVerifier>, ProbeError>,
    /// The client certificate and key, when mutual TLS is configured.
    identity: Option<Arc<CertifiedKey>>,
    /// Versions offered, newest first.
    versions: Vec<&'static SupportedProtocolVersion>,
}

impl ClientTls {
    /// Roots from the PEM `ca_file`, or from the system store when `None`; no client certificate; TLS 1.2 and
    /// 1.3 offered.
    ///
    /// A CA file that cannot be read, is not PEM, or holds no usable certificate is an error naming the file.
    /// System roots are loaded once per process and shared; if there are none the error is kept and reported
    /// by [`ClientTls::roots_error`] (and as the verification failure of every chain), so that plain-HTTP
    /// checks still work on a host without a CA bundle.
    pub fn new(ca_file: Option<&Path>) -> Result<ClientTls, ProbeError> {
        ClientTls::with_options(ca_file, &ClientOptions::default())
    }

    /// As [`ClientTls::new`], with a client certificate and version limits.
    ///
    /// A client certificate or key file that cannot be read, is not PEM, holds no certificate or no private
    /// key, or whose key does not match the certificate, is an error naming the file; so is a key without a
    /// certificate, and a `min_version` above `max_version`.
    pub fn with_options(ca_file: Option<&Path>, options: &ClientOptions) -> Result<ClientTls, ProbeError> {
        let provider = provider();
        let versions = versions(options.min_version, options.max_version)?;
        let identity = match (&options.client_cert, &options.client_key) {
            (Some(cert), key) => Some(Arc::new(load_identity(cert, key.as_deref(), &provider)?)),
            (None, Some(key)) => {
                return Err(ProbeError::Local(format!(
                    "client_key {} is set without client_cert: set client_cert to the certificate file as well",
                    key.display()
                )));
            }
            (None, None) => None,
        };
        let roots = match ca_file {
            Some(path) => Ok(Arc::new(roots_from_file(path)?)),
            None => system_roots(),
        };
        let webpki = roots.and_then(|roots| {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| ProbeError::Local(format!("cannot build the certificate verifier: {e}")))
        });
        Ok(ClientTls { provider, webpki, identity, versions })
    }

    /// Why no chain can be verified (no trusted roots), if that is so.
    pub fn roots_error(&self) -> Option<&ProbeError> {
        self.webpki.as_ref().err()
    }

    /// Whether a client certificate is configured.
    pub fn has_client_cert(&self) -> bool {
        self.identity.is_some()
    }

    /// A fresh verifier over these roots. Use one per handshake to read back what it saw.
    pub fn verifier(&self, on_invalid: OnInvalid) -> Arc<RecordingVerifier> {
        self.new_verifier(on_invalid, true)
    }

    /// A verifier over these roots that records nothing, for a configuration shared by many connections whose
    /// verifications nobody reads back (it would keep the last chain it saw for as long as it lives).
    pub fn shared_verifier(&self, on_invalid: OnInvalid) -> Arc<RecordingVerifier> {
        self.new_verifier(on_invalid, false)
    }

    fn new_verifier(&self, on_invalid: OnInvalid, records: bool) -> Arc<RecordingVerifier> {
        Arc::new(RecordingVerifier {
            inner: self.webpki.as_ref().map(Arc::clone).map_err(|e| e.to_string()),
            provider: self.provider.clone(),
            on_invalid,
            records,
            record: Mutex::new(None),
        })
    }

    /// A client configuration (the versions asked, ALPN h2 and http/1.1, the client certificate if any, no
    /// session resumption) using `verifier`.
    pub fn client_config(&self, verifier: Arc<RecordingVerifier>) -> Result<ClientConfig, ProbeError> {
        self.watched_client_config(verifier).map(|(config, _)| config)
    }

    /// The same, with a [`HandshakeWatch`] that tells what the server did about client authentication. Use one
    /// configuration per connection to read it back.
    pub fn watched_client_config(
        &self,
        verifier: Arc<RecordingVerifier>,
    ) -> Result<(ClientConfig, Arc<HandshakeWatch>), ProbeError> {
        let watch = Arc::new(HandshakeWatch::default());
        let resolver = Arc::new(ClientCertResolver { identity: self.identity.clone(), watch: watch.clone() });
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| ProbeError::Local(format!("cannot set up TLS versions {:?}: {e}", self.versions)))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(resolver);
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        config.resumption = Resumption::store(Arc::new(TicketWatch { watch: watch.clone() }))
            .tls12_resumption(Tls12Resumption::Disabled);
        Ok((config, watch))
    }
}

/// The versions offered, newest first.
fn versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
) -> Result<Vec<&'static SupportedProtocolVersion>, ProbeError> {
    let min = min.unwrap_or(TlsVersion::V1_2);
    let max = max.unwrap_or(TlsVersion::V1_3);
    if min > max {
        return Err(ProbeError::Local(format!(
            "min_version {min} is above max_version {max}: no TLS version is left to offer"
        )));
    }
    Ok([TlsVersion::V1_3, TlsVersion::V1_2]
        .into_iter()
        .filter(|v| (min..=max).contains(v))
        .map(|v| v.rustls())
        .collect())
}

/// Read the client certificate chain from `cert` and its key from `key` (or from `cert` when `None`), and
/// check that they belong together.
fn load_identity(cert: &Path, key: Option<&Path>, provider: &CryptoProvider) -> Result<CertifiedKey, ProbeError> {
    let shown = cert.display();
    let bytes = std::fs::read(cert).map_err(|e| ProbeError::Local(format!("cannot read client_cert {shown}: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProbeError::Local(format!("client_cert {shown} is not valid PEM: {}", pem_error(&e))))?;
    if chain.is_empty() {
        return Err(ProbeError::Local(format!(
            "client_cert {shown} holds no certificates (expected PEM blocks \"-----BEGIN CERTIFICATE-----\")"
        )));
    }
    let (key_der, key_shown) = match key {
        Some(path) => {
            let key_bytes = std::fs::read(path)
                .map_err(|e| ProbeError::Local(format!("cannot read client_key {}: {e}", path.display())))?;
            (PrivateKeyDer::from_pem_slice(&key_bytes), format!("client_key {}", path.display()))
        }
        None => (PrivateKeyDer::from_pem_slice(&bytes), format!("client_cert {shown} (no client_key given)")),
    };
    let key_der = key_der.map_err(|e| match e {
        pem::Error::NoItemsFound => ProbeError::Local(format!(
            "{key_shown} holds no private key (expected an unencrypted PEM block \"-----BEGIN PRIVATE KEY-----\", \
             \"-----BEGIN RSA PRIVATE KEY-----\" or \"-----BEGIN EC PRIVATE KEY-----\"; decrypt an encrypted key \
             with `openssl pkey`)"
        )),
        other => ProbeError::Local(format!("{key_shown} is not valid PEM: {}", pem_error(&other))),
    })?;
    CertifiedKey::from_der(chain, key_der, provider).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => "the key does not match the certificate".to_owned(),
            other => other.to_string(),
        };
        ProbeError::Local(format!("{key_shown} cannot be used with client_cert {shown}: {why}"))
    })
}

fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("a section has no end line {:?}", String::from_utf8_lossy(end_marker))
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed section start {:?}", String::from_utf8_lossy(line))
        }
        pem::Error::Base64Decode(why) => format!("bad base64 ({why})"),
        other => format!("{other:?}"),
    }
}

/// What the server did about client authentication on one connection, seen by the client certificate resolver
/// and the session store of a configuration from [`ClientTls::watched_client_config`].
#[derive(Debug, Default)]
pub struct HandshakeWatch {
    requested: AtomicBool,
    presented: AtomicBool,
    ticketed: AtomicBool,
    ticket: Notify,
}

impl HandshakeWatch {
    /// Whether the server asked for a client certificate (sent a CertificateRequest).
    pub fn client_cert_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Whether a client certificate was offered in answer.
    pub fn client_cert_presented(&self) -> bool {
        self.presented.load(Ordering::SeqCst)
    }

    /// Whether the server has sent a TLS 1.3 session ticket. A server sends tickets once it has accepted the
    /// client's Finished (and its certificate); not every server sends them.
    pub fn ticket_received(&self) -> bool {
        self.ticketed.load(Ordering::SeqCst)
    }

    /// Resolves when a TLS 1.3 session ticket arrives (at once if one already has). For one waiter at a time.
    pub async fn ticket(&self) {
        if !self.ticket_received() {
            self.ticket.notified().await;
        }
    }
}

/// Offers the configured client certificate, if any, and notes that the server asked for one.
#[derive(Debug)]
struct ClientCertResolver {
    identity: Option<Arc<CertifiedKey>>,
    watch: Arc<HandshakeWatch>,
}

impl ResolvesClientCert for ClientCertResolver {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.watch.requested.store(true, Ordering::SeqCst);
        let identity = self.identity.as_ref().filter(|id| id.key.choose_scheme(sigschemes).is_some())?;
        self.watch.presented.store(true, Ordering::SeqCst);
        Some(identity.clone())
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}

/// A session store that keeps nothing (no resumption: every measurement is a full handshake) and notes the
/// TLS 1.3 tickets the server sends.
#[derive(Debug)]
struct TicketWatch {
    watch: Arc<HandshakeWatch>,
}

impl ClientSessionStore for TicketWatch {
    fn set_kx_hint(&self, _server_name: ServerName<'static>, _group: NamedGroup) {}

    fn kx_hint(&self, _server_name: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(&self, _server_name: ServerName<'static>, _value: Tls12ClientSessionValue) {}

    fn tls12_session(&self, _server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _server_name: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _server_name: ServerName<'static>, _value: Tls13ClientSessionValue) {
        if !self.watch.ticketed.swap(true, Ordering::SeqCst) {
            self.watch.ticket.notify_one();
        }
    }

    fn take_tls13_ticket(&self, _server_name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        None
    }
}

/// Read a PEM bundle of trusted CA certificates.
fn roots_from_file(path: &Path) -> Result<RootCertStore, ProbeError> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| ProbeError::Local(format!("cannot read CA file {shown}: {e}")))?;
    let mut store = RootCertStore::empty();
    for (index, item) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let der = item.map_err(|e| ProbeError::Local(format!("CA file {shown} is not valid PEM: {e}")))?;
        store.add(der).map_err(|e| {
            ProbeError::Local(format!("CA file {shown}: certificate {} is not a usable trust anchor: {e}", index + 1))
        })?;
    }
    if store.is_empty() {
        return Err(ProbeError::Local(format!(
            "CA file {shown} holds no certificates (expected PEM blocks \"-----BEGIN CERTIFICATE-----\")"
        )));
    }
    Ok(store)
}

/// The system trust store, loaded once per process.
fn system_roots() -> Result<Arc<RootCertStore>, ProbeError> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, ProbeError>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(loaded.certs);
            if store.is_empty() {
                let why = match loaded.errors.first() {
                    Some(e) => format!(" ({e})"),
                    None => String::new(),
                };
                Err(ProbeError::Local(format!(
                    "no trusted CA certificates in the system store{why}; install the ca-certificates package \
                     or set ca_file"
                )))
            } else {
                Ok(Arc::new(store))
            }
        })
        .clone()
}

/// What a [`RecordingVerifier`] does with a chain that does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    /// Fail the handshake with the verification error (a normal client).
    Abort,
    /// Record the error and let the handshake finish, so the chain, version and cipher can be reported.
    Continue,
}

/// What the verifier saw in one handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The presented chain, leaf first, as sent.
    pub chain: Vec<CertificateDer<'static>>,
    /// `Ok` when the chain verified for the server name; otherwise why not, in words
    /// (see [`describe_cert_error`]).
    pub result: Result<(), String>,
}

/// A [`ServerCertVerifier`] that delegates chain verification to [`WebPkiServerVerifier`] and records the
/// outcome. Handshake signatures (TLS 1.2 and 1.3) are always verified with the provider's algorithms.
pub struct RecordingVerifier {
    inner: Result<Arc<WebPkiServerVerifier>, String>,
    provider: Arc<CryptoProvider>,
    on_invalid: OnInvalid,
    /// Whether verifications are kept for [`RecordingVerifier::take`].
    records: bool,
    record: Mutex<Option<Verification>>,
}

impl fmt::Debug for RecordingVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingVerifier").field("on_invalid", &self.on_invalid).finish_non_exhaustive()
    }
}

impl RecordingVerifier {
    /// The last verification this verifier made, taking it out.
    pub fn take(&self) -> Option<Verification> {
        self.record.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = match &self.inner {
            Ok(inner) => inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            Err(no_roots) => Err(rustls::Error::General(no_roots.clone())),
        };
        if !self.records {
            return match (outcome, self.on_invalid) {
                (Err(_), OnInvalid::Continue) => Ok(ServerCertVerified::assertion()),
                (outcome, _) => outcome,
            };
        }
        let chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.clone().into_owned()).collect();
        let result = match &outcome {
            Ok(_) => Ok(()),
            // Name the certificate's names from our own parse: webpki's text writes IPv6 addresses its own way.
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { expected, .. })) => {
                Err(name_mismatch(&crate::tls::cert_info(end_entity.as_ref()).names, expected.to_str().as_ref()))
            }
            Err(e) => Err(describe_error(e)),
        };
        *self.record.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Verification { chain, result });
        match (outcome, self.on_invalid) {
            (Ok(verified), _) => Ok(verified),
            (Err(_), OnInvalid::Continue) => Ok(ServerCertVerified::assertion()),
            (Err(e), OnInvalid::Abort) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The failure kind of a rustls error: an invalid certificate or a failed handshake.
pub fn failure_of(e: &rustls::Error) -> Failure {
    match e {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => Failure::CertificateInvalid,
        _ => Failure::TlsHandshake,
    }
}

/// A rustls error in words.
pub fn describe_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => describe_cert_error(c),
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".to_owned(),
        rustls::Error::AlertReceived(alert) => describe_alert(*alert),
        rustls::Error::PeerIncompatible(p) => format!("no common ground with the server: {p:?}"),
        rustls::Error::InvalidMessage(m) => format!("the server's reply is not valid TLS ({m:?})"),
        rustls::Error::General(text) => text.clone(),
        other => other.to_string(),
    }
}

fn describe_alert(alert: AlertDescription) -> String {
    let hint = match alert {
        AlertDescription::HandshakeFailure => " (no common cipher suite or parameters)",
        AlertDescription::ProtocolVersion => " (no common TLS version)",
        AlertDescription::UnrecognisedName => " (the server does not serve this name)",
        AlertDescription::NoApplicationProtocol => " (no common ALPN protocol)",
        AlertDescription::CertificateRequired => {
            " (certificate required: the server asks for a client certificate; set client_cert and client_key)"
        }
        AlertDescription::UnknownCA => " (the server does not trust the issuer of the client certificate)",
        AlertDescription::BadCertificate
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateUnknown
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateRevoked => " (the server rejected the client certificate)",
        _ => "",
    };
    format!("the server sent TLS alert {}{hint}", snake_case(&format!("{alert:?}")))
}

/// `HandshakeFailure` → `handshake_failure`, `UnknownCA` → `unknown_ca`, as alerts are named in RFC 8446.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous: Option<char> = None;
    for ch in name.chars() {
        if ch.is_ascii_uppercase() {
            if previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
        previous = Some(ch);
    }
    out
}

/// A certificate verification error in words: "certificate expired (3 days ago)", "unknown issuer (not
/// signed by a trusted CA)", "name mismatch: certificate is for a.example, b.example, not c.example".
pub fn describe_cert_error(e: &CertificateError) -> String {
    match e {
        CertificateError::Expired => "certificate expired".to_owned(),
        CertificateError::ExpiredContext { time, not_after } => {
            format!("certificate expired ({} ago)", span(time.as_secs().saturating_sub(not_after.as_secs())))
        }
        CertificateError::NotValidYet => "certificate not yet valid".to_owned(),
        CertificateError::NotValidYetContext { time, not_before } => {
            format!(
                "certificate not yet valid (valid in {})",
                span(not_before.as_secs().saturating_sub(time.as_secs()))
            )
        }
        CertificateError::UnknownIssuer => "unknown issuer (not signed by a trusted CA)".to_owned(),
        CertificateError::NotValidForName => "name mismatch: certificate is not valid for the name asked".to_owned(),
        CertificateError::NotValidForNameContext { expected, presented } => {
            let names: Vec<String> = presented.iter().map(|name| presented_name(name)).collect();
            name_mismatch(&names, expected.to_str().as_ref())
        }
        CertificateError::Revoked => "certificate revoked".to_owned(),
        CertificateError::BadSignature => "bad signature on a certificate in the chain".to_owned(),
        CertificateError::BadEncoding => "malformed certificate".to_owned(),
        CertificateError::UnhandledCriticalExtension => "certificate has an unsupported critical extension".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not for TLS server authentication (extended key usage)".to_owned()
        }
        other => other.to_string(),
    }
}

/// A name as webpki presents it (the debug form of its `GeneralName`: `DnsName("a.example")`,
/// `IpAddress(192.0.2.1)`) reduced to the name itself; anything else unchanged.
fn presented_name(name: &str) -> String {
    let unwrapped = |prefix: &str| name.strip_prefix(prefix)?.strip_suffix(')');
    match unwrapped("DnsName(").or_else(|| unwrapped("UniformResourceIdentifier(")) {
        Some(quoted) => quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')).unwrap_or(quoted).to_owned(),
        // webpki writes IPv6 its own way ("0::1"); re-print it canonically where it parses.
        None => match unwrapped("IpAddress(") {
            Some(ip) => ip.parse::<std::net::IpAddr>().map_or_else(|_| ip.to_owned(), |ip| ip.to_string()),
            None => name.to_owned(),
        },
    }
}

/// "name mismatch: certificate is for a.example, b.example, not c.example".
fn name_mismatch(names: &[String], expected: &str) -> String {
    let names = if names.is_empty() { "no names".to_owned() } else { names.join(", ") };
    format!("name mismatch: certificate is for {names}, not {expected}")
}

/// A duration in seconds as a person says it: "45 s", "12 min", "5 h", "3 days".
fn span(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_are_unwrapped() {
        assert_eq!(presented_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(presented_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(presented_name("IpAddress(2001:db8::1)"), "2001:db8::1");
        assert_eq!(presented_name("IpAddress(0::1)"), "::1");
        assert_eq!(presented_name("UniformResourceIdentifier(\"https://x\")"), "https://x");
        assert_eq!(presented_name("Unsupported(0x81)"), "Unsupported(0x81)");
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(5), "5 s");
        assert_eq!(span(600), "10 min");
        assert_eq!(span(3 * 3600), "3 h");
        assert_eq!(span(3 * 86_400), "3 days");
    }

    #[test]
    fn alerts_are_named_as_in_the_rfc() {
        assert_eq!(
            describe_error(&rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)),
            "the server sent TLS alert protocol_version (no common TLS version)"
        );
        assert_eq!(snake_case("UnknownCA"), "unknown_ca");
        assert_eq!(snake_case("CertificateRequired"), "certificate_required");
        assert_eq!(snake_case("BadRecordMac"), "bad_record_mac");
    }
}
