//! Shared rustls client configuration for the tls and http probes: the ring crypto provider, trusted roots
//! from the system or a CA file, and a verifier that records why a chain failed instead of aborting the
//! handshake, so a check can report the certificate it was shown.
//!
//! - [`ClientTls`]: built once per probe from its `ca_file`; hands out a [`ClientConfig`] per use.
//! - [`RecordingVerifier`]: wraps rustls's [`WebPkiServerVerifier`], keeps the presented chain and the
//!   verification result (in words a network engineer reads), and either aborts ([`OnInvalid::Abort`]) or lets
//!   the handshake go on ([`OnInvalid::Continue`]). Handshake signatures are always checked for real.
//! - [`describe_error`], [`describe_cert_error`]: rustls errors as human text.
//!
//! Invariant: only the `ring` provider is used; nothing here installs a process-wide default provider.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{Failure, ProbeError};

/// ALPN protocols offered, in order of preference.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The crypto provider every probe uses: rustls's `ring` provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Trusted roots and the provider, built once per probe; hands out client configurations.
#[derive(Debug, Clone)]
pub struct ClientTls {
    provider: Arc<CryptoProvider>,
    /// The chain verifier over the trusted roots, or why there are no roots (system store empty or
    /// unreadable). A CA file problem is reported by [`ClientTls::new`] instead.
    webpki: Result<Arc<WebPkiServerVerifier>, ProbeError>,
}

impl ClientTls {
    /// Roots from the PEM `ca_file`, or from the system store when `None`.
    ///
    /// A CA file that cannot be read, is not PEM, or holds no usable certificate is an error naming the file.
    /// System roots are loaded once per process and shared; if there are none the error is kept and reported
    /// by [`ClientTls::roots_error`] (and as the verification failure of every chain), so that plain-HTTP
    /// checks still work on a host without a CA bundle.
    pub fn new(ca_file: Option<&Path>) -> Result<ClientTls, ProbeError> {
        let provider = provider();
        let roots = match ca_file {
            Some(path) => Ok(Arc::new(roots_from_file(path)?)),
            None => system_roots(),
        };
        let webpki = roots.and_then(|roots| {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| ProbeError::Local(format!("cannot build the certificate verifier: {e}")))
        });
        Ok(ClientTls { provider, webpki })
    }

    /// Why no chain can be verified (no trusted roots), if that is so.
    pub fn roots_error(&self) -> Option<&ProbeError> {
        self.webpki.as_ref().err()
    }

    /// A fresh verifier over these roots. Use one per handshake to read back what it saw.
    pub fn verifier(&self, on_invalid: OnInvalid) -> Arc<RecordingVerifier> {
        Arc::new(RecordingVerifier {
            inner: self.webpki.as_ref().map(Arc::clone).map_err(|e| e.to_string()),
            provider: self.provider.clone(),
            on_invalid,
            record: Mutex::new(None),
        })
    }

    /// A client configuration (TLS 1.2 and 1.3, ALPN h2 and http/1.1, no client certificate) using `verifier`.
    pub fn client_config(&self, verifier: Arc<RecordingVerifier>) -> Result<ClientConfig, ProbeError> {
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| ProbeError::Local(format!("cannot set up TLS 1.2 and 1.3: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        Ok(config)
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
        AlertDescription::CertificateRequired => " (the server requires a client certificate)",
        _ => "",
    };
    format!("the server sent TLS alert {}{hint}", snake_case(&format!("{alert:?}")))
}

/// `HandshakeFailure` → `handshake_failure`, as alerts are named in RFC 8446.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
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
    }
}
