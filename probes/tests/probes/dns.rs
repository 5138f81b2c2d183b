//! DNS probe against the test kit's in-process server on 127.0.0.1 (UDP and TCP), a silent and a junk-answering
//! UDP socket, and closed ports; a source address (127.0.0.3, seen by the server; a foreign one is a local error).
//! Nothing here leaves loopback; the system resolver path is tested on text only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use gonogo_probes::dns::{DnsObservations, DnsParams, DnsProbe, RecordType, Transport, nameservers_from_resolv_conf};
use gonogo_probes::{Failure, Kind, Observations, Probe, ProbeError};
use gonogo_testkit::dns::{DnsServer, garbage_udp, silent_udp};

const TIMEOUT: Duration = Duration::from_secs(2);
/// Short timeout for the tests that must wait it out.
const SHORT: Duration = Duration::from_millis(300);

fn params(query: &str, record: RecordType, server: SocketAddr, transport: Transport) -> DnsParams {
    DnsParams {
        query: query.to_string(),
        record,
        server: Some(server),
        transport,
        timeout: TIMEOUT,
        ..Default::default()
    }
}

async fn run(params: DnsParams) -> DnsObservations {
    match DnsProbe::new(params).run().await {
        Ok(Observations::Dns(o)) => o,
        other => panic!("expected DNS observations, got {other:?}"),
    }
}

async fn ask(server: &DnsServer, query: &str, record: RecordType) -> DnsObservations {
    run(params(query, record, server.addr(), Transport::Udp)).await
}

async fn zone() -> DnsServer {
    DnsServer::builder()
        .a("app.test.", "10.0.0.1")
        .a("app.test.", "10.0.0.2")
        .aaaa("app.test.", "2001:db8::1")
        .cname("www.test.", "app.test.")
        .mx("test.", 10, "mail.test.")
        .mx("test.", 20, "Backup.Test.")
        .txt("test.", "v=spf1 -all")
        .txt_strings("split.test.", &["hello ", "world"])
        .ns("test.", "ns1.test.")
        .soa("test.", "ns1.test.", "hostmaster.test.", 2024010101)
        .srv("_sip._tcp.test.", 10, 60, 5060, "sip.test.")
        .ptr("10.0.0.1", "app.test.")
        .ptr("2001:db8::1", "app.test.")
        .servfail("broken.test.")
        .refuse("refused.test.")
        .start()
        .await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn a_over_udp() {
    let dns = zone().await;
    let o = ask(&dns, "app.test", RecordType::A).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.rcode.as_deref(), Some("NOERROR"));
    assert_eq!(sorted(o.answers), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(o.server, format!("{}/udp", dns.addr()));
    assert!(o.lookup_time < TIMEOUT);
    assert_eq!(dns.queries(), 1, "one query, no retries");
}

#[tokio::test]
async fn a_over_tcp() {
    let dns = zone().await;
    let o = run(params("app.test.", RecordType::A, dns.addr(), Transport::Tcp)).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(o.rcode.as_deref(), Some("NOERROR"));
    assert_eq!(sorted(o.answers), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(o.server, format!("{}/tcp", dns.addr()));
}

#[tokio::test]
async fn aaaa() {
    let dns = zone().await;
    let o = ask(&dns, "app.test.", RecordType::Aaaa).await;
    assert_eq!(o.answers, ["2001:db8::1"]);
}

#[tokio::test]
async fn cname_asked_directly() {
    let dns = zone().await;
    let o = ask(&dns, "www.test.", RecordType::Cname).await;
    assert_eq!(o.rcode.as_deref(), Some("NOERROR"));
    assert_eq!(o.answers, ["app.test"]);
}

#[tokio::test]
async fn a_through_cname_lists_only_a_records() {
    let dns = zone().await;
    let o = ask(&dns, "WWW.test.", RecordType::A).await;
    assert_eq!(o.failure, None, "{o:?}");
    assert_eq!(sorted(o.answers), ["10.0.0.1", "10.0.0.2"]);
    let detail = o.detail.unwrap_or_default();
    assert!(detail.contains("www.test CNAME app.test"), "{detail}");
}

#[tokio::test]
async fn mx_is_preference_and_lowercase_exchange() {
    let dns = zone().await;
    let o = ask(&dns, "test.", RecordType::Mx).await;
    assert_eq!(sorted(o.answers), ["10 mail.test", "20 backup.test"]);
}

#[tokio::test]
async fn txt_strings_are_joined() {
    let dns = zone().await;
    assert_eq!(ask(&dns, "test.", RecordType::Txt).await.answers, ["v=spf1 -all"]);
    assert_eq!(ask(&dns, "split.test.", RecordType::Txt).await.answers, ["hello world"]);
}

#[tokio::test]
async fn ns_soa_srv_formats() {
    let dns = zone().await;
    assert_eq!(ask(&dns, "test.", RecordType::Ns).await.answers, ["ns1.test"]);
    assert_eq!(
        ask(&dns, "test.", RecordType::Soa).await.answers,
        ["ns1.test hostmaster.test 2024010101 3600 600 86400 300"]
    );
    assert_eq!(ask(&dns, "_sip._tcp.test.", RecordType::Srv).await.answers, ["10 60 5060 sip.test"]);
}

#[tokio::test]
async fn ptr_accepts_an_ip_address() {
    let dns = zone().await;
    let o = ask(&dns, "10.0.0.1", RecordType::Ptr).await;
    assert_eq!(o.rcode.as_deref(), Some("NOERROR"), "{o:?}");
    assert_eq!(o.answers, ["app.test"]);
    assert_eq!(ask(&dns, "2001:db8::1", RecordType::Ptr).await.answers, ["app.test"]);
    // The reverse name itself works too.
    assert_eq!(ask(&dns, "1.0.0.10.in-addr.arpa", RecordType::Ptr).await.answers, ["app.test"]);
}

#[tokio::test]
async fn nodata_is_noerror_without_answers() {
    let dns = zone().await;
    let o = ask(&dns, "www.test.", RecordType::Mx).await;
    assert_eq!(o.failure, None);
    assert_eq!(o.rcode.as_deref(), Some("NOERROR"));
    assert!(o.answers.is_empty());
}

#[tokio::test]
async fn nxdomain_is_an_observation() {
    let dns = zone().await;
    for name in ["missing.test.", "elsewhere.example."] {
        let o = ask(&dns, name, RecordType::A).await;
        assert_eq!(o.failure, None, "{o:?}");
        assert_eq!(o.rcode.as_deref(), Some("NXDOMAIN"));
        assert!(o.answers.is_empty());
    }
}

#[tokio::test]
async fn servfail_and_refused_are_observations() {
    let dns = zone().await;
    let o = ask(&dns, "broken.test.", RecordType::A).await;
    assert_eq!((o.rcode.as_deref(), o.failure), (Some("SERVFAIL"), None));
    let o = run(params("refused.test.", RecordType::A, dns.addr(), Transport::Tcp)).await;
    assert_eq!((o.rcode.as_deref(), o.failure), (Some("REFUSED"), None));
    assert_eq!(dns.queries(), 2, "no retry after SERVFAIL");
}

#[tokio::test]
async fn records_changed_at_runtime_are_seen() {
    let dns = zone().await;
    assert_eq!(sorted(ask(&dns, "app.test.", RecordType::A).await.answers), ["10.0.0.1", "10.0.0.2"]);
    dns.set_a("app.test.", &["10.9.9.9"]);
    assert_eq!(ask(&dns, "app.test.", RecordType::A).await.answers, ["10.9.9.9"]);
    dns.set_servfail("app.test.", true);
    assert_eq!(ask(&dns, "app.test.", RecordType::A).await.rcode.as_deref(), Some("SERVFAIL"));
    dns.set_servfail("app.test.", false);
    dns.remove("app.test.");
    assert_eq!(ask(&dns, "app.test.", RecordType::A).await.rcode.as_deref(), Some("NXDOMAIN"));
}

#[tokio::test]
async fn silent_server_times_out() {
    let silent = silent_udp();
    let started = Instant::now();
    let o =
        run(DnsParams { timeout: SHORT, ..params("app.test.", RecordType::A, silent.addr(), Transport::Udp) }).await;
    assert_eq!(o.failure, Some(Failure::Timeout), "{o:?}");
    assert_eq!(o.rcode, None);
    assert!(o.answers.is_empty());
    assert!(o.lookup_time >= SHORT);
    assert!(started.elapsed() < SHORT * 3, "took {:?}", started.elapsed());
}

#[tokio::test]
async fn closed_tcp_port_is_refused() {
    let o = run(params("app.test.", RecordType::A, closed_port(), Transport::Tcp)).await;
    assert_eq!(o.failure, Some(Failure::ConnectionRefused), "{o:?}");
    assert_eq!(o.rcode, None);
}

#[tokio::test]
async fn closed_udp_port_is_refused() {
    // Loopback answers with ICMP port unreachable, which a connected UDP socket reports as ECONNREFUSED.
    let port = {
        let s = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        s.local_addr().expect("addr")
    };
    let o = run(params("app.test.", RecordType::A, port, Transport::Udp)).await;
    assert_eq!(o.failure, Some(Failure::ConnectionRefused), "{o:?}");
}

#[tokio::test]
async fn junk_response_is_a_protocol_failure() {
    let junk = garbage_udp().await;
    let started = Instant::now();
    let o = run(params("app.test.", RecordType::A, junk.addr(), Transport::Udp)).await;
    assert_eq!(o.failure, Some(Failure::Protocol), "{o:?}");
    assert_eq!(o.rcode, None);
    assert!(started.elapsed() < TIMEOUT, "a response with our id fails at once, not at the deadline");
}

#[tokio::test]
async fn unidentifiable_packets_are_ignored_then_reported_as_protocol() {
    // A server that answers with a few bytes that do not even hold a DNS header: the probe cannot tell it is
    // the response, so it waits for a real one until the deadline, then reports what it saw.
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((_, peer)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(b"\x00\x01\x02", peer).await;
        }
    });
    let o = run(DnsParams { timeout: SHORT, ..params("app.test.", RecordType::A, addr, Transport::Udp) }).await;
    task.abort();
    assert_eq!(o.failure, Some(Failure::Protocol), "{o:?}");
    assert!(o.detail.unwrap_or_default().contains("ignored 1 packet"));
}

#[tokio::test]
async fn target_and_budget() {
    let server: SocketAddr = "155.231.231.1:53".parse().expect("addr");
    let probe = DnsProbe::new(params("nww.nhs.uk", RecordType::A, server, Transport::Udp));
    assert_eq!(probe.kind(), Kind::Dns);
    assert_eq!(probe.target(), "nww.nhs.uk A @155.231.231.1:53/udp");
    assert!(probe.budget() >= TIMEOUT && probe.budget() <= TIMEOUT + Duration::from_secs(1));
    let system =
        DnsProbe::new(DnsParams { server: None, ..params("nww.nhs.uk", RecordType::Mx, server, Transport::Udp) });
    assert_eq!(system.target(), "nww.nhs.uk MX @system");
}

#[test]
fn query_name_is_absolute_and_reversed_for_ptr() {
    let p = |query: &str, record| DnsParams {
        query: query.to_string(),
        record,
        server: None,
        transport: Transport::Udp,
        timeout: TIMEOUT,
        source: None,
    };
    assert_eq!(p("app.test", RecordType::A).query_name().as_deref(), Ok("app.test."));
    assert_eq!(p("10.0.0.1", RecordType::Ptr).query_name().as_deref(), Ok("1.0.0.10.in-addr.arpa."));
    assert!(p("", RecordType::A).query_name().is_err());
    assert!(p("a..b", RecordType::A).query_name().is_err());
}

#[test]
fn record_type_parses_any_case() {
    assert_eq!(RecordType::from_str("aaaa"), Ok(RecordType::Aaaa));
    assert_eq!(RecordType::from_str("Mx"), Ok(RecordType::Mx));
    assert_eq!(RecordType::from_str("PTR"), Ok(RecordType::Ptr));
    for t in RecordType::ALL {
        assert_eq!(RecordType::from_str(&t.as_str().to_lowercase()), Ok(t));
    }
    assert!(RecordType::from_str("AXFR").is_err());
}

#[test]
fn resolv_conf_nameservers_in_order() {
    let text = "\
# generated by NetworkManager
search trust.nhs.uk
nameserver 155.231.231.1
nameserver 155.231.231.2 # secondary
;nameserver 10.0.0.9
options edns0 timeout:2
nameserver  2001:db8::53
nameserver fe80::1%2
nameserver fe80::1%eth0
nameserver not-an-address
nameserver
";
    let servers: Vec<String> = nameservers_from_resolv_conf(text).iter().map(|s| s.to_string()).collect();
    assert_eq!(servers, ["155.231.231.1:53", "155.231.231.2:53", "[2001:db8::53]:53", "[fe80::1%2]:53"]);
    assert!(nameservers_from_resolv_conf("search example\n").is_empty());
}

#[tokio::test]
async fn a_source_address_is_what_the_server_sees() {
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let dns = zone().await;
    for transport in [Transport::Udp, Transport::Tcp] {
        let o =
            run(DnsParams { source: Some(source), ..params("app.test.", RecordType::A, dns.addr(), transport) }).await;
        assert_eq!(o.failure, None, "{transport:?}: {o:?}");
        assert_eq!(sorted(o.answers), ["10.0.0.1", "10.0.0.2"]);
    }
    // Without it, the kernel picks 127.0.0.1.
    let o = run(params("app.test.", RecordType::A, dns.addr(), Transport::Udp)).await;
    assert_eq!(o.failure, None, "{o:?}");
    let peers: Vec<IpAddr> = dns.peers().iter().map(SocketAddr::ip).collect();
    assert_eq!(peers, [source, source, IpAddr::V4(Ipv4Addr::LOCALHOST)]);
}

#[tokio::test]
async fn a_foreign_source_address_is_a_local_error() {
    let foreign = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let dns = zone().await;
    for transport in [Transport::Udp, Transport::Tcp] {
        let p = DnsParams { source: Some(foreign), ..params("app.test.", RecordType::A, dns.addr(), transport) };
        let e = DnsProbe::new(p).run().await.expect_err("a source address this host does not own cannot be used");
        let ProbeError::Local(text) = e else { panic!("expected a local error, got {e:?}") };
        assert!(text.contains("192.0.2.1") && text.contains("address of this host"), "{transport:?}: {text}");
    }
    assert_eq!(dns.queries(), 0, "nothing was sent");
}

#[tokio::test]
async fn a_source_of_the_other_family_is_a_local_error() {
    let dns = zone().await;
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let p = DnsParams { source: Some(v6), ..params("app.test.", RecordType::A, dns.addr(), Transport::Udp) };
    let e = DnsProbe::new(p).run().await.expect_err("an IPv6 source cannot reach an IPv4 server");
    let ProbeError::Local(text) = e else { panic!("expected a local error, got {e:?}") };
    assert!(text.contains("::1") && text.contains(&dns.addr().to_string()), "{text}");
}

/// A TCP port on 127.0.0.1 with nothing listening.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    listener.local_addr().expect("addr")
}
