//! A test PKI made with rcgen: a CA, and leaf certificates that are valid, expired, not yet valid or for the
//! wrong name. A second [`TestCa`] that the client is not told about plays the untrusted CA.
//!
//! Each CA writes its certificate to a temporary PEM file ([`TestCa::ca_file`]) for a probe's `ca_file`; the
//! file is removed when the CA is dropped. Each [`Leaf`] gives its chain and key as DER and PEM (and as
//! temporary files, [`Leaf::chain_file`] and [`Leaf::key_file`], for a probe's `client_cert` and `client_key`)
//! and builds a rustls [`ServerConfig`] (ring provider) for a test server, optionally one that requires a client
//! certificate from a given CA ([`Leaf::server_config_requiring_client_cert`]).
//!
//! ```no_run
//! use gonogo_testkit::certs::TestCa;
//!
//! let ca = TestCa::new("gonogo test CA");
//! let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
//! let server_config = leaf.server_config();
//! let ca_file = ca.ca_file(); // give this to the probe
//! # let _ = (server_config, ca_file);
//! ```
//!
//! Everything here panics on failure: it is test code, and a failure is a broken test environment.

use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tempfile::TempPath;
use time::OffsetDateTime;

const DAY: Duration = Duration::from_secs(86_400);

/// A certificate authority for tests.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    pem: String,
    file: TempFile,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa").field("ca_file", &self.file.path()).finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new self-signed CA whose subject is `O=gonogo test, CN=<name>`, valid from a day ago for ten years.
    pub fn new(name: &str) -> TestCa {
        let now = SystemTime::now();
        TestCa::valid_between(name, now - DAY, now + 3650 * DAY)
    }

    /// A new self-signed CA as [`TestCa::new`], valid from `not_before` to `not_after` (whole seconds): for
    /// a chain whose CA expires before its leaf.
    pub fn valid_between(name: &str, not_before: SystemTime, not_after: SystemTime) -> TestCa {
        let key = KeyPair::generate().expect("generate a CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = datetime(not_before);
        params.not_after = datetime(not_after);
        let cert = params.self_signed(&key).expect("self-sign the CA certificate");
        let pem = cert.pem();
        let file = temp_file(pem.as_bytes());
        TestCa { issuer: Issuer::new(params, key), cert: cert.der().clone(), pem, file }
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    /// A PEM file holding the CA certificate, for a probe's `ca_file`. Removed when the CA is dropped.
    pub fn ca_file(&self) -> &Path {
        self.file.path()
    }

    /// A server certificate for `names` (DNS names or IP addresses such as `"localhost"` and `"127.0.0.1"`),
    /// valid from an hour ago for 30 days.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let now = SystemTime::now();
        self.leaf_valid_between(names, now - Duration::from_secs(3600), now + 30 * DAY)
    }

    /// A server certificate for `names` that expired yesterday (valid for the 30 days before).
    pub fn expired_leaf(&self, names: &[&str]) -> Leaf {
        let now = SystemTime::now();
        self.leaf_valid_between(names, now - 31 * DAY, now - DAY)
    }

    /// A server certificate for `names` that becomes valid tomorrow.
    pub fn not_yet_valid_leaf(&self, names: &[&str]) -> Leaf {
        let now = SystemTime::now();
        self.leaf_valid_between(names, now + DAY, now + 31 * DAY)
    }

    /// A server certificate for `names` valid from `not_before` to `not_after` (whole seconds).
    pub fn leaf_valid_between(&self, names: &[&str], not_before: SystemTime, not_after: SystemTime) -> Leaf {
        self.issue(names, not_before, not_after, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for mutual TLS, `CN=<name>`, valid from an hour ago for 30 days.
    pub fn client_cert(&self, name: &str) -> Leaf {
        let now = SystemTime::now();
        self.issue(&[name], now - Duration::from_secs(3600), now + 30 * DAY, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        names: &[&str],
        not_before: SystemTime,
        not_after: SystemTime,
        eku: ExtendedKeyUsagePurpose,
    ) -> Leaf {
        let key = KeyPair::generate().expect("generate a leaf key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("valid subject alternative names");
        params.distinguished_name = dn(names.first().map_or("gonogo test leaf", String::as_str));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![eku];
        params.use_authority_key_identifier_extension = true;
        params.not_before = datetime(not_before);
        params.not_after = datetime(not_after);
        let cert = params.signed_by(&key, &self.issuer).expect("sign the leaf certificate");
        Leaf {
            names,
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            ca: self.cert.clone(),
            ca_pem: self.pem.clone(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
            not_before: unix(not_before),
            not_after: unix(not_after),
        }
    }
}

/// An issued certificate with its key and its CA.
#[derive(Clone)]
pub struct Leaf {
    names: Vec<String>,
    cert: CertificateDer<'static>,
    cert_pem: String,
    ca: CertificateDer<'static>,
    ca_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
    not_before: i64,
    not_after: i64,
}

impl fmt::Debug for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf")
            .field("names", &self.names)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Leaf {
    /// The names it was issued for.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The chain a server sends, leaf first: the leaf, then its CA.
    pub fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert.clone(), self.ca.clone()]
    }

    /// The chain as PEM, leaf first.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.ca_pem)
    }

    /// The private key (PKCS#8).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The private key, PEM (PKCS#8).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A new temporary PEM file holding the chain, leaf first (for a probe's `client_cert`).
    pub fn chain_file(&self) -> TempFile {
        temp_file(self.chain_pem().as_bytes())
    }

    /// A new temporary PEM file holding the private key (for a probe's `client_key`).
    pub fn key_file(&self) -> TempFile {
        temp_file(self.key_pem.as_bytes())
    }

    /// Start of validity, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of validity, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// A rustls server configuration presenting this certificate (TLS 1.2 and 1.3, ring provider, no ALPN,
    /// no client authentication).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config_with_versions(rustls::ALL_VERSIONS)
    }

    /// The same, limited to `versions` (for example `&[&rustls::version::TLS12]`).
    pub fn server_config_with_versions(&self, versions: &[&'static SupportedProtocolVersion]) -> Arc<ServerConfig> {
        self.server_config_for(versions, None)
    }

    /// A rustls server configuration presenting this certificate that requires a client certificate issued
    /// by `client_ca` (TLS 1.2 and 1.3). A client without one gets the alert `certificate_required`; one
    /// from another CA gets `unknown_ca`.
    pub fn server_config_requiring_client_cert(&self, client_ca: &TestCa) -> Arc<ServerConfig> {
        self.server_config_for(rustls::ALL_VERSIONS, Some(client_ca.cert_der()))
    }

    /// The same, limited to `versions`.
    pub fn server_config_requiring_client_cert_with_versions(
        &self,
        client_ca: &TestCa,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Arc<ServerConfig> {
        self.server_config_for(versions, Some(client_ca.cert_der()))
    }

    /// A server configuration for `versions`, requiring a client certificate from `client_ca` when given.
    pub(crate) fn server_config_for(
        &self,
        versions: &[&'static SupportedProtocolVersion],
        client_ca: Option<&CertificateDer<'static>>,
    ) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .expect("ring supports these TLS versions");
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.clone()).expect("the test CA is a usable trust anchor");
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .expect("build the client certificate verifier");
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(self.chain_der(), self.key_der()).expect("certificate and key match");
        Arc::new(config)
    }
}

/// A temporary file, removed on drop.
#[derive(Debug)]
pub struct TempFile {
    path: TempPath,
}

impl TempFile {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Write `contents` to a new temporary file (for a CA file that is not PEM, an empty bundle, …).
pub fn temp_file(contents: &[u8]) -> TempFile {
    let mut file =
        tempfile::Builder::new().prefix("gonogo-test-").suffix(".pem").tempfile().expect("create a temp file");
    file.write_all(contents).expect("write the temp file");
    file.flush().expect("flush the temp file");
    TempFile { path: file.into_temp_path() }
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    // Most general first, as CAs encode it; shown in RFC 4514 order as `CN=…,O=gonogo test`.
    dn.push(DnType::OrganizationName, "gonogo test");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn unix(t: SystemTime) -> i64 {
    let secs = t.duration_since(UNIX_EPOCH).expect("test times are after 1970").as_secs();
    i64::try_from(secs).expect("test times fit in i64")
}

fn datetime(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix(t)).expect("test times are representable")
}
