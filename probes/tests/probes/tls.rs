//! TLS probe against the test kit's HTTPS server on 127.0.0.1 with generated certificates: valid, expired, not
//! yet valid, wrong name, untrusted CA; a TLS 1.2-only server; SNI; a closed port and a silent listener; mutual
//! TLS (a server that requires a client certificate, over 1.3 and 1.2); version limits; a source address;
//! distinguished names and fingerprints as the agent matches them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonogo_probes::tls::{TlsObservations, TlsParams, TlsProbe};
use gonogo_probes::tlsconf::TlsVersion;
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
        ..Default::default()
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

// ---- mutual TLS -------------------------------------------------------------------------------------------------

/// A server CA, a client CA, a leaf for localhost and a client certificate from the client CA.
struct Mtls {
    ca: TestCa,
    client_ca: TestCa,
    leaf: Leaf,
    client: Leaf,
}

fn mtls() -> Mtls {
    let ca = TestCa::new("gonogo test CA");
    let client_ca = TestCa::new("gonogo client CA");
    let leaf = ca.leaf(&["localhost"]);
    let client = client_ca.client_cert("gonogo-agent");
    Mtls { ca, client_ca, leaf, client }
}

fn with_client_cert(params: TlsParams, cert: &Path, key: Option<&Path>) -> TlsParams {
    TlsParams { client_cert: Some(cert.to_path_buf()), client_key: key.map(Path::to_path_buf), ..params }
}

#[tokio::test]
async fn client_certificate_required_over_tls13() {
    let m = mtls();
    let https = HttpServer::builder().require_client_cert(&m.client_ca).start_https(&m.leaf);
    let base = params(https.addr(), "localhost", Some(m.ca.ca_file()), true);

    // Without a client certificate: the TLS 1.3 handshake ends on the client's side, then the server's alert.
    let started = Instant::now();
    let o = run(base.clone()).await;
    assert_eq!(o.failure, Some(Failure::TlsHandshake), "{o:?}");
    let detail = o.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("certificate_required") && detail.contains("certificate required"), "{detail}");
    assert!(detail.contains("no client certificate was presented"), "{detail}");
    assert_eq!(o.version.as_deref(), Some("1.3"));
    assert_eq!(o.handshake_time, None, "the handshake did not succeed");
    assert_eq!(o.chain_verified, Some(true), "the server's chain is still reported");
    assert!(started.elapsed() < TIMEOUT, "took {:?}", started.elapsed());

    // With one from the CA the server trusts: accepted, without waiting out the grace (the server's ticket).
    let (cert, key) = (m.client.chain_file(), m.client.key_file());
    let started = Instant::now();
    let o = run(with_client_cert(base.clone(), cert.path(), Some(key.path()))).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.version.as_deref(), Some("1.3"));
    assert!(o.handshake_time.is_some());
    assert!(started.elapsed() < gonogo_probes::tls::CLIENT_AUTH_GRACE, "took {:?}", started.elapsed());

    // Certificate and key in one file.
    let both = temp_file(format!("{}{}", m.client.chain_pem(), m.client.key_pem()).as_bytes());
    let o = run(with_client_cert(base.clone(), both.path(), None)).await;
    assert_eq!(o.failure, None, "{o:?}");

    // A client certificate from a CA the server does not trust.
    let stranger = TestCa::new("stranger CA").client_cert("gonogo-agent");
    let (cert, key) = (stranger.chain_file(), stranger.key_file());
    let o = run(with_client_cert(base, cert.path(), Some(key.path()))).await;
    assert_eq!(o.failure, Some(Failure::TlsHandshake), "{o:?}");
    let detail = o.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("unknown_ca") && detail.contains("a client certificate was presented"), "{detail}");
}

#[tokio::test]
async fn client_certificate_required_over_tls12() {
    let m = mtls();
    let config = m.leaf.server_config_requiring_client_cert_with_versions(&m.client_ca, &[&rustls::version::TLS12]);
    let https = HttpServer::builder().start_tls(config);
    let base = params(https.addr(), "localhost", Some(m.ca.ca_file()), true);

    let o = run(base.clone()).await;
    assert_eq!(o.failure, Some(Failure::TlsHandshake), "{o:?}");
    assert!(o.detail.as_deref().unwrap_or_default().contains("certificate required"), "{o:?}");

    let (cert, key) = (m.client.chain_file(), m.client.key_file());
    let o = run(with_client_cert(base, cert.path(), Some(key.path()))).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.version.as_deref(), Some("1.2"));
}

#[tokio::test]
async fn client_certificate_to_a_server_that_does_not_ask_is_unused() {
    let m = mtls();
    let https = server(&m.leaf);
    let (cert, key) = (m.client.chain_file(), m.client.key_file());
    let o = run(with_client_cert(
        params(https.addr(), "localhost", Some(m.ca.ca_file()), true),
        cert.path(),
        Some(key.path()),
    ))
    .await;
    assert_eq!(o.failure, None, "{o:?}");
}

#[tokio::test]
async fn bad_client_certificate_files_are_local_errors_naming_them() {
    let m = mtls();
    let other = m.client_ca.client_cert("someone-else");
    let cert = m.client.chain_file();
    let key = m.client.key_file();
    let wrong_key = other.key_file();
    let missing = std::env::temp_dir().join("gonogo-no-such-dir").join("client.pem");
    let not_pem = temp_file(b"not a certificate\n");
    let addr = tcp::closed_port();
    let base = params(addr, "localhost", Some(m.ca.ca_file()), true);
    let cases: Vec<(TlsParams, &Path, &str)> = vec![
        (with_client_cert(base.clone(), &missing, Some(key.path())), &missing, "cannot read client_cert"),
        (with_client_cert(base.clone(), not_pem.path(), Some(key.path())), not_pem.path(), "holds no certificates"),
        (with_client_cert(base.clone(), cert.path(), Some(&missing)), &missing, "cannot read client_key"),
        (with_client_cert(base.clone(), cert.path(), Some(not_pem.path())), not_pem.path(), "holds no private key"),
        (with_client_cert(base.clone(), cert.path(), None), cert.path(), "holds no private key"),
        (with_client_cert(base.clone(), cert.path(), Some(wrong_key.path())), wrong_key.path(), "does not match"),
        (TlsParams { client_key: Some(key.path().to_path_buf()), ..base.clone() }, key.path(), "without client_cert"),
    ];
    for (params, path, words) in cases {
        match TlsProbe::new(params).run().await {
            Err(ProbeError::Local(message)) => {
                assert!(message.contains(&path.display().to_string()), "{message}");
                assert!(message.contains(words), "{message}");
            }
            other => panic!("expected a local error for {}, got {other:?}", path.display()),
        }
    }
}

// ---- versions ---------------------------------------------------------------------------------------------------

#[test]
fn tls_versions_parse_and_order() {
    assert_eq!("1.2".parse::<TlsVersion>(), Ok(TlsVersion::V1_2));
    assert_eq!("1.3".parse::<TlsVersion>(), Ok(TlsVersion::V1_3));
    assert!(TlsVersion::V1_2 < TlsVersion::V1_3);
    assert_eq!(TlsVersion::V1_3.to_string(), "1.3");
    let e = "1.1".parse::<TlsVersion>().expect_err("1.1 is not offered");
    assert_eq!(e.to_string(), r#"unknown TLS version "1.1": expected "1.2" or "1.3""#);
}

#[tokio::test]
async fn version_limits_are_what_is_offered() {
    let ca = TestCa::new("gonogo test CA");
    let leaf = ca.leaf(&["localhost"]);
    let both = server(&leaf);
    let only12 = HttpServer::builder().start_tls(leaf.server_config_with_versions(&[&rustls::version::TLS12]));
    let only13 = HttpServer::builder().start_tls(leaf.server_config_with_versions(&[&rustls::version::TLS13]));
    let limited = |addr: SocketAddr, min: Option<TlsVersion>, max: Option<TlsVersion>| TlsParams {
        min_version: min,
        max_version: max,
        ..params(addr, "localhost", Some(ca.ca_file()), true)
    };
    let (v12, v13) = (Some(TlsVersion::V1_2), Some(TlsVersion::V1_3));

    // Within the limits: the version the limits leave.
    let o = run(limited(both.addr(), None, v12)).await;
    assert_eq!((o.failure, o.version.as_deref()), (None, Some("1.2")), "{o:?}");
    let o = run(limited(both.addr(), v13, None)).await;
    assert_eq!((o.failure, o.version.as_deref()), (None, Some("1.3")), "{o:?}");
    let o = run(limited(only12.addr(), v12, v12)).await;
    assert_eq!((o.failure, o.version.as_deref()), (None, Some("1.2")), "{o:?}");

    // No common version: the server's alert, named.
    for (addr, min, max) in [(only12.addr(), v13, None), (only13.addr(), None, v12)] {
        let o = run(limited(addr, min, max)).await;
        assert_eq!(o.failure, Some(Failure::TlsHandshake), "{o:?}");
        let detail = o.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("protocol_version") && detail.contains("no common TLS version"), "{detail}");
    }

    // Nothing left to offer.
    match TlsProbe::new(limited(both.addr(), v13, v12)).run().await {
        Err(ProbeError::Local(message)) => assert!(message.contains("min_version 1.3 is above max_version 1.2")),
        other => panic!("expected a local error, got {other:?}"),
    }
}

// ---- source address ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn source_address_is_used_and_must_be_ours() {
    let ca = TestCa::new("gonogo test CA");
    let https = server(&ca.leaf(&["localhost"]));
    let base = params(https.addr(), "localhost", Some(ca.ca_file()), true);
    let from = |ip: IpAddr| TlsParams { source: Some(ip), ..base.clone() };

    let o = run(base.clone()).await;
    assert_eq!(o.failure, None, "{o:?}");
    let o = run(from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))).await;
    assert_eq!(o.failure, None, "{o:?}");
    let peers: Vec<IpAddr> = https.peers().iter().map(SocketAddr::ip).collect();
    assert_eq!(peers, [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))]);

    // 192.0.2.1 (TEST-NET-1) is not on this host: binding fails, nothing is sent.
    match TlsProbe::new(from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))).run().await {
        Err(ProbeError::Local(message)) => {
            assert!(message.contains("192.0.2.1 is not an address of this host"), "{message}");
        }
        other => panic!("expected a local error, got {other:?}"),
    }
    // An IPv6 source for an IPv4-only target.
    match TlsProbe::new(from(IpAddr::V6(Ipv6Addr::LOCALHOST))).run().await {
        Err(ProbeError::Local(message)) => assert!(message.contains("has no IPv6 address"), "{message}"),
        other => panic!("expected a local error, got {other:?}"),
    }
    assert_eq!(https.peers().len(), 2, "nothing reached the server from the refused sources");
}

// ---- certificate details ----------------------------------------------------------------------------------------

#[tokio::test]
async fn names_are_rfc4514_and_fingerprints_lowercase_sha256() {
    // A CA name that needs escaping.
    let ca = TestCa::new("Trust, Inc. <Root>");
    let leaf = ca.leaf(&["localhost"]);
    let https = server(&leaf);

    let o = run(params(https.addr(), "localhost", Some(ca.ca_file()), true)).await;

    assert_eq!(o.failure, None, "{o:?}");
    let cert = o.leaf().expect("a leaf certificate");
    assert_eq!(cert.issuer, r"CN=Trust\, Inc. \<Root\>,O=gonogo test");
    assert_eq!(o.chain[1].subject, cert.issuer);
    let fingerprint = |der: &[u8]| {
        ring::digest::digest(&ring::digest::SHA256, der).as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(cert.sha256, fingerprint(leaf.cert_der()));
    assert_eq!(o.chain[1].sha256, fingerprint(ca.cert_der()));
    assert!(o.chain.iter().all(|c| c.not_after > c.not_before));
    assert_eq!(o.chain.iter().map(|c| c.not_after).min(), Some(leaf.not_after()), "the leaf expires first");
}
