//! TLS probe against the test kit's HTTPS server on 127.0.0.1 with generated certificates: valid, expired, not
//! yet valid, wrong name, untrusted CA; a TLS 1.2-only server; SNI; a closed port and a silent listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonogo_probes::tls::{TlsObservations, TlsParams, TlsProbe};
use gonogo_probes::{Failure, Kind, Observations, Probe, ProbeError};
use gonogo_testkit::certs::{Leaf, TestCa, temp_file};
use gonogo_testkit::http::HttpServer;
use gonogo_testkit::tcp;

const TIMEOUT: Duration = Duration::from_secs(3);
/// Short timeout for the tests that must wait it out.
const SHORT: Duration = Duration::from_millis(300);

fn params(addr: SocketAddr, server_name: &str, ca_file: Option<&Path>, verify: bool) -> TlsParams {
    TlsParams {
        host: addr.ip().to_string(),
        port: addr.port(),
        server_name: server_name.to_owned(),
        ca_file: ca_file.map(Path::to_path_buf),
        verify,
        timeout: TIMEOUT,
    }
}

async fn run(params: TlsParams) -> TlsObservations {
    match TlsProbe::new(params).run().await {
        Ok(Observations::Tls(o)) => o,
        other => panic!("expected TLS observations, got {other:?}"),
    }
}

/// An HTTPS server presenting `leaf`.
fn server(leaf: &Leaf) -> HttpServer {
    HttpServer::builder().start_https(leaf)
}

#[tokio::test]
async fn valid_certificate_verifies_and_reports_the_chain() {
    let ca = TestCa::new("gonogo test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    let https = server(&leaf);

    let o = run(params(https.addr(), "localhost", Some(ca.ca_file()), true)).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.detail, None);
    assert_eq!(o.address, Some(https.addr()));
    assert_eq!(o.chain_verified, Some(true));
    assert_eq!(o.verify_error, None);
    assert_eq!(o.version.as_deref(), Some("1.3"));
    let cipher = o.cipher.as_deref().unwrap_or_default();
    assert!(cipher.starts_with("TLS13_"), "cipher {cipher}");
    assert_eq!(o.alpn.as_deref(), Some("http/1.1"));
    assert!(o.handshake_time.is_some_and(|t| t < TIMEOUT));

    assert_eq!(o.chain.len(), 2, "leaf and CA");
    let cert = o.leaf().expect("a leaf certificate");
    assert_eq!(cert.names, vec!["localhost".to_owned(), "127.0.0.1".to_owned()]);
    assert_eq!(cert.subject, "CN=localhost,O=gonogo test");
    assert_eq!(cert.issuer, "CN=gonogo test CA,O=gonogo test");
    assert_eq!(cert.not_after, leaf.not_after());
    assert_eq!(cert.not_before, leaf.not_before());
    assert_eq!(cert.sha256.len(), 64);
    assert!(cert.sha256.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert!(!cert.serial.is_empty());
    assert_eq!(o.chain[1].subject, cert.issuer, "the second certificate is the issuer");
    assert_ne!(o.chain[1].sha256, cert.sha256);
}

#[tokio::test]
async fn host_name_is_resolved_and_each_address_tried() {
    let ca = TestCa::new("gonogo test CA");
    let https = server(&ca.leaf(&["localhost"]));
    // localhost may resolve to ::1 first, where nothing listens: the probe goes on to 127.0.0.1.
    let params =
        TlsParams { host: "localhost".to_owned(), ..params(https.addr(), "localhost", Some(ca.ca_file()), true) };
    let probe = TlsProbe::new(params);
    assert_eq!(probe.target(), format!("localhost:{}", https.addr().port()));

    let Ok(Observations::Tls(o)) = probe.run().await else { panic!("expected TLS observations") };

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.address, Some(https.addr()));
    assert_eq!(o.chain_verified, Some(true));
}

#[tokio::test]
async fn expired_certificate_is_invalid_and_still_reported() {
    let ca = TestCa::new("gonogo test CA");
    let leaf = ca.expired_leaf(&["localhost"]);
    let https = server(&leaf);

    let o = run(params(https.addr(), "localhost", Some(ca.ca_file()), true)).await;

    assert_eq!(o.failure, Some(Failure::CertificateInvalid), "{o:?}");
    assert_eq!(o.chain_verified, Some(false));
    let why = o.verify_error.as_deref().unwrap_or_default();
    assert!(why.contains("expired"), "verify_error {why}");
    assert!(o.detail.as_deref().unwrap_or_default().contains("expired"));
    assert_eq!(o.leaf().map(|c| c.not_after), Some(leaf.not_after()));
    assert!(o.version.is_some(), "the handshake went on so the session is reported");
}

#[tokio::test]
async fn not_yet_valid_certificate_is_invalid() {
    let ca = TestCa::new("gonogo test CA");
    let https = server(&ca.not_yet_valid_leaf(&["localhost"]));

    let o = run(params(https.addr(), "localhost", Some(ca.ca_file()), true)).await;

    assert_eq!(o.failure, Some(Failure::CertificateInvalid), "{o:?}");
    assert!(o.verify_error.as_deref().unwrap_or_default().contains("not yet valid"), "{o:?}");
}

#[tokio::test]
async fn wrong_name_is_a_name_mismatch() {
    let ca = TestCa::new("gonogo test CA");
    let https = server(&ca.leaf(&["a.example", "b.example"]));

    let o = run(params(https.addr(), "localhost", Some(ca.ca_file()), true)).await;

    assert_eq!(o.failure, Some(Failure::CertificateInvalid), "{o:?}");
    assert_eq!(
        o.verify_error.as_deref(),
        Some("name mismatch: certificate is for a.example, b.example, not localhost")
    );
    assert_eq!(o.leaf().map(|c| c.names.clone()), Some(vec!["a.example".to_owned(), "b.example".to_owned()]));
}

#[tokio::test]
async fn ip_address_mismatch_names_the_addresses() {
    let ca = TestCa::new("gonogo test CA");
    let https = server(&ca.leaf(&["192.0.2.10"]));

    let o = run(params(https.addr(), "127.0.0.1", Some(ca.ca_file()), true)).await;

    assert_eq!(o.failure, Some(Failure::CertificateInvalid), "{o:?}");
    assert_eq!(o.verify_error.as_deref(), Some("name mismatch: certificate is for 192.0.2.10, not 127.0.0.1"));
}

#[tokio::test]
async fn untrusted_ca_is_an_unknown_issuer() {
    let trusted = TestCa::new("gonogo test CA");
    let untrusted = TestCa::new("untrusted CA");
    let https = server(&untrusted.leaf(&["localhost"]));

    let o = run(params(https.addr(), "localhost", Some(trusted.ca_file()), true)).await;

    assert_eq!(o.failure, Some(Failure::CertificateInvalid), "{o:?}");
    assert_eq!(o.verify_error.as_deref(), Some("unknown issuer (not signed by a trusted CA)"));
    assert_eq!(o.leaf().map(|c| c.issuer.as_str()), Some("CN=untrusted CA,O=gonogo test"));
}

#[tokio::test]
async fn without_verify_an_invalid_chain_is_recorded_not_failed() {
    let trusted = TestCa::new("gonogo test CA");
    let untrusted = TestCa::new("untrusted CA");
    let https = server(&untrusted.leaf(&["localhost"]));

    let o = run(params(https.addr(), "localhost", Some(trusted.ca_file()), false)).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.chain_verified, Some(false));
    assert!(o.verify_error.as_deref().unwrap_or_default().contains("unknown issuer"));
    assert_eq!(o.chain.len(), 2);
}

#[tokio::test]
async fn tls12_only_server_negotiates_1_2() {
    let ca = TestCa::new("gonogo test CA");
    let leaf = ca.leaf(&["localhost"]);
    let https = HttpServer::builder().start_tls(leaf.server_config_with_versions(&[&rustls::version::TLS12]));

    let o = run(params(https.addr(), "localhost", Some(ca.ca_file()), true)).await;

    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.version.as_deref(), Some("1.2"));
    let cipher = o.cipher.as_deref().unwrap_or_default();
    assert!(cipher.starts_with("TLS_ECDHE_"), "cipher {cipher}");
}

#[tokio::test]
async fn server_name_is_sent_as_sni_and_verified() {
    let ca = TestCa::new("gonogo test CA");
    let leaf = ca.leaf(&["app.test"]);
    // A server that only answers for the SNI name app.test: the handshake proves the name was sent.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::sign::CertifiedKey::from_der(leaf.chain_der(), leaf.key_der(), &provider).expect("key");
    let mut by_name = rustls::server::ResolvesServerCertUsingSni::new();
    by_name.add("app.test", key).expect("add app.test");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(by_name));
    let https = HttpServer::builder().start_tls(Arc::new(config));

    let probe = TlsProbe::new(params(https.addr(), "app.test", Some(ca.ca_file()), true));
    assert_eq!(probe.target(), format!("127.0.0.1:{} (app.test)", https.addr().port()));
    let Ok(Observations::Tls(o)) = probe.run().await else { panic!("expected TLS observations") };
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.chain_verified, Some(true));

    // Another name: the server has no certificate for it and refuses the handshake.
    let o = run(params(https.addr(), "other.test", Some(ca.ca_file()), true)).await;
    assert_eq!(o.failure, Some(Failure::TlsHandshake), "{o:?}");
    assert!(o.detail.as_deref().unwrap_or_default().contains("alert"), "{o:?}");
}

#[tokio::test]
async fn closed_port_is_connection_refused() {
    let ca = TestCa::new("gonogo test CA");
    let o = run(params(tcp::closed_port(), "localhost", Some(ca.ca_file()), true)).await;
    assert_eq!(o.failure, Some(Failure::ConnectionRefused), "{o:?}");
    assert!(o.detail.is_some());
    assert!(o.chain.is_empty());
    assert_eq!(o.chain_verified, None);
}

#[tokio::test]
async fn silent_listener_times_out() {
    let ca = TestCa::new("gonogo test CA");
    let (addr, _listener) = tcp::hanging_listener();
    let probe = TlsProbe::new(TlsParams { timeout: SHORT, ..params(addr, "localhost", Some(ca.ca_file()), true) });
    assert!(probe.budget() >= SHORT);

    let started = Instant::now();
    let Ok(Observations::Tls(o)) = probe.run().await else { panic!("expected TLS observations") };

    assert_eq!(o.failure, Some(Failure::Timeout), "{o:?}");
    assert!(o.detail.as_deref().unwrap_or_default().contains("handshake"), "{o:?}");
    assert!(started.elapsed() < 3 * SHORT, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn plain_http_server_is_a_handshake_failure() {
    let http = HttpServer::builder().start();
    let ca = TestCa::new("gonogo test CA");
    let o = run(params(http.addr(), "localhost", Some(ca.ca_file()), true)).await;
    assert_eq!(o.failure, Some(Failure::TlsHandshake), "{o:?}");
}

#[tokio::test]
async fn unreadable_ca_file_is_a_local_error_naming_it() {
    let missing = std::env::temp_dir().join("gonogo-no-such-dir").join("ca.pem");
    let not_pem = temp_file(b"this is not a certificate\n");
    let broken_pem = temp_file(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
    let addr = tcp::closed_port();
    for path in [missing.as_path(), not_pem.path(), broken_pem.path()] {
        match TlsProbe::new(params(addr, "localhost", Some(path), true)).run().await {
            Err(ProbeError::Local(message)) => {
                assert!(message.contains(&path.display().to_string()), "{message}");
            }
            other => panic!("expected a local error for {}, got {other:?}", path.display()),
        }
    }
}

#[test]
fn target_and_kind() {
    let addr: SocketAddr = "127.0.0.1:443".parse().expect("address");
    let probe = TlsProbe::new(params(addr, "127.0.0.1", None, false));
    assert_eq!(probe.kind(), Kind::Tls);
    assert_eq!(probe.target(), "127.0.0.1:443");
    assert!(probe.budget() >= TIMEOUT && probe.budget() < TIMEOUT + Duration::from_secs(1));
}
