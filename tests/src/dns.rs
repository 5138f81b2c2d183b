//! An in-process authoritative DNS server on 127.0.0.1 (hickory-server, UDP and TCP on the same random port),
//! plus two broken servers: one that never answers and one that answers with junk.
//!
//! ```ignore
//! let dns = DnsServer::builder()
//!     .a("app.test.", "10.0.0.1")
//!     .cname("www.test.", "app.test.")
//!     .servfail("broken.test.")
//!     .start()
//!     .await;
//! // probe dns.addr() …
//! dns.set_a("app.test.", &["10.9.9.9"]); // "the answer changed after the migration"
//! ```
//!
//! Answering rules: a name on the SERVFAIL or REFUSED list gets that rcode; a name with records of the asked
//! type gets them (NOERROR, authoritative); a name with a CNAME (and a non-CNAME question) gets the CNAME and
//! whatever the chain leads to inside this server; a name with other records gets NOERROR and no answers
//! (NODATA); any other name gets NXDOMAIN. Builder methods panic on malformed names or addresses: they are test
//! fixtures.
//!
//! The server counts requests ([`DnsServer::queries`]) and records the source address of each
//! ([`DnsServer::peers`]), so tests can check retries and a client's source address.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// TTL of every record served.
const TTL: u32 = 300;
/// Longest CNAME chain followed inside the server.
const MAX_CNAME_HOPS: usize = 8;

/// Parse a name for the zone data; relative names are made absolute.
///
/// # Panics
/// On a malformed name (test fixture input).
fn name(s: &str) -> Name {
    let mut n = Name::from_str_relaxed(s).unwrap_or_else(|e| panic!("bad DNS name {s:?} in test fixture: {e}"));
    n.set_fqdn(true);
    n
}

/// The zone data behind a running server; shared with the request handler.
#[derive(Debug, Default, Clone)]
struct Zone {
    records: HashMap<(Name, RecordType), Vec<RData>>,
    servfail: HashSet<Name>,
    refuse: HashSet<Name>,
}

impl Zone {
    fn add(&mut self, owner: &str, data: RData) {
        self.records.entry((name(owner), data.record_type())).or_default().push(data);
    }

    fn set(&mut self, owner: &str, rtype: RecordType, data: Vec<RData>) {
        let key = (name(owner), rtype);
        if data.is_empty() {
            self.records.remove(&key);
        } else {
            self.records.insert(key, data);
        }
    }

    fn has_name(&self, owner: &Name) -> bool {
        self.records.keys().any(|(n, _)| n == owner)
    }

    /// The rcode and answer records for one question.
    fn answer(&self, qname: &Name, qtype: RecordType) -> (ResponseCode, Vec<Record>) {
        if self.servfail.contains(qname) {
            return (ResponseCode::ServFail, Vec::new());
        }
        if self.refuse.contains(qname) {
            return (ResponseCode::Refused, Vec::new());
        }
        if !self.has_name(qname) {
            return (ResponseCode::NXDomain, Vec::new());
        }
        let mut answers = Vec::new();
        let mut owner = qname.clone();
        for _ in 0..MAX_CNAME_HOPS {
            if let Some(data) = self.records.get(&(owner.clone(), qtype)) {
                answers.extend(data.iter().map(|d| Record::from_rdata(owner.clone(), TTL, d.clone())));
                break;
            }
            let cname = match self.records.get(&(owner.clone(), RecordType::CNAME)).and_then(|d| d.first()) {
                Some(RData::CNAME(target)) if qtype != RecordType::CNAME => target.0.clone(),
                _ => break,
            };
            answers.push(Record::from_rdata(owner.clone(), TTL, RData::CNAME(CNAME(cname.clone()))));
            owner = cname;
        }
        (ResponseCode::NoError, answers)
    }
}

/// Builds a [`DnsServer`]: add records, then [`start`](DnsServerBuilder::start).
#[derive(Debug, Default)]
pub struct DnsServerBuilder {
    zone: Zone,
}

impl DnsServerBuilder {
    /// An A record.
    pub fn a(mut self, owner: &str, addr: &str) -> Self {
        self.zone.add(owner, RData::A(A(parse_ip(addr))));
        self
    }

    /// An AAAA record.
    pub fn aaaa(mut self, owner: &str, addr: &str) -> Self {
        self.zone.add(owner, RData::AAAA(AAAA(parse_ip(addr))));
        self
    }

    /// A CNAME record (`owner` is an alias of `target`).
    pub fn cname(mut self, owner: &str, target: &str) -> Self {
        self.zone.add(owner, RData::CNAME(CNAME(name(target))));
        self
    }

    /// An MX record.
    pub fn mx(mut self, owner: &str, preference: u16, exchange: &str) -> Self {
        self.zone.add(owner, RData::MX(MX::new(preference, name(exchange))));
        self
    }

    /// A TXT record with one character string.
    pub fn txt(mut self, owner: &str, text: &str) -> Self {
        self.zone.add(owner, RData::TXT(TXT::new(vec![text.to_string()])));
        self
    }

    /// A TXT record with several character strings (to check they are joined).
    pub fn txt_strings(mut self, owner: &str, strings: &[&str]) -> Self {
        self.zone.add(owner, RData::TXT(TXT::new(strings.iter().map(|s| s.to_string()).collect())));
        self
    }

    /// An NS record.
    pub fn ns(mut self, owner: &str, target: &str) -> Self {
        self.zone.add(owner, RData::NS(NS(name(target))));
        self
    }

    /// An SRV record.
    pub fn srv(mut self, owner: &str, priority: u16, weight: u16, port: u16, target: &str) -> Self {
        self.zone.add(owner, RData::SRV(SRV::new(priority, weight, port, name(target))));
        self
    }

    /// An SOA record with refresh 3600, retry 600, expire 86400, minimum 300.
    pub fn soa(mut self, zone: &str, mname: &str, rname: &str, serial: u32) -> Self {
        self.zone.add(zone, RData::SOA(SOA::new(name(mname), name(rname), serial, 3600, 600, 86400, 300)));
        self
    }

    /// A PTR record. `owner` may be an IP address (`10.0.0.1`, `::1`): it is turned into its reverse name.
    pub fn ptr(mut self, owner: &str, target: &str) -> Self {
        let owner = match owner.parse::<IpAddr>() {
            Ok(ip) => Name::from(ip).to_ascii(),
            Err(_) => owner.to_string(),
        };
        self.zone.add(&owner, RData::PTR(PTR(name(target))));
        self
    }

    /// Answer SERVFAIL for this name, whatever the type.
    pub fn servfail(mut self, owner: &str) -> Self {
        self.zone.servfail.insert(name(owner));
        self
    }

    /// Answer REFUSED for this name, whatever the type.
    pub fn refuse(mut self, owner: &str) -> Self {
        self.zone.refuse.insert(name(owner));
        self
    }

    /// Bind UDP and TCP on the same random port of 127.0.0.1 and serve until the [`DnsServer`] is dropped.
    ///
    /// # Panics
    /// If no port can be bound for both protocols (test environment problem).
    pub async fn start(self) -> DnsServer {
        let zone = Arc::new(Mutex::new(self.zone));
        let queries = Arc::new(AtomicUsize::new(0));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("a bound UDP socket has a local address");
        let handler = Handler { zone: zone.clone(), queries: queries.clone(), peers: peers.clone() };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 32);
        DnsServer { addr, zone, queries, peers, server }
    }
}

/// A TCP listener and a UDP socket on the same port of 127.0.0.1; retries when the UDP port is taken.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    let mut last_error = None;
    for _ in 0..50 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind a TCP listener on 127.0.0.1");
        let port = tcp.local_addr().expect("a bound listener has a local address").port();
        match UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(udp) => return (udp, tcp),
            Err(e) => last_error = Some(e),
        }
    }
    panic!("cannot bind UDP and TCP on the same port of 127.0.0.1: {last_error:?}");
}

fn parse_ip<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: fmt::Display,
{
    s.parse().unwrap_or_else(|e| panic!("bad IP address {s:?} in test fixture: {e}"))
}

/// A running authoritative DNS server on 127.0.0.1 (UDP and TCP on [`addr`](DnsServer::addr)). Stops when
/// dropped. Records can be changed while it runs.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicUsize>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    server: Server<Handler>,
}

impl fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsServer").field("addr", &self.addr).field("queries", &self.queries()).finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Start building a server.
    pub fn builder() -> DnsServerBuilder {
        DnsServerBuilder::default()
    }

    /// The address to query, UDP or TCP: `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests the server has received so far (both transports), to check a probe does not retry.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// The source address of every request received so far (both transports), in order: to check a client's
    /// source address.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn zone(&self) -> MutexGuard<'_, Zone> {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        self.zone.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replace the A records of `owner` (an empty slice removes them).
    pub fn set_a(&self, owner: &str, addrs: &[&str]) {
        let data = addrs.iter().map(|a| RData::A(A(parse_ip(a)))).collect();
        self.zone().set(owner, RecordType::A, data);
    }

    /// Replace the AAAA records of `owner` (an empty slice removes them).
    pub fn set_aaaa(&self, owner: &str, addrs: &[&str]) {
        let data = addrs.iter().map(|a| RData::AAAA(AAAA(parse_ip(a)))).collect();
        self.zone().set(owner, RecordType::AAAA, data);
    }

    /// Replace the CNAME of `owner` (`None` removes it).
    pub fn set_cname(&self, owner: &str, target: Option<&str>) {
        let data = target.map(|t| RData::CNAME(CNAME(name(t)))).into_iter().collect();
        self.zone().set(owner, RecordType::CNAME, data);
    }

    /// Remove every record of `owner`, so it answers NXDOMAIN.
    pub fn remove(&self, owner: &str) {
        let owner = name(owner);
        self.zone().records.retain(|(n, _), _| *n != owner);
    }

    /// Switch SERVFAIL for `owner` on or off.
    pub fn set_servfail(&self, owner: &str, on: bool) {
        let mut zone = self.zone();
        if on {
            zone.servfail.insert(name(owner));
        } else {
            zone.servfail.remove(&name(owner));
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        // Cancel the accept loops; dropping `server` then aborts its tasks and closes the sockets.
        self.server.shutdown_token().cancel();
    }
}

/// The hickory-server request handler answering from [`Zone`].
struct Handler {
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicUsize>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).push(request.src());
        self.queries.fetch_add(1, Ordering::SeqCst);
        let (rcode, answers) = match request.request_info() {
            Err(_) => (ResponseCode::FormErr, Vec::new()),
            Ok(_) if request.metadata.op_code != OpCode::Query => (ResponseCode::NotImp, Vec::new()),
            Ok(info) => {
                let qname: Name = info.query.name().clone().into();
                let zone = self.zone.lock().unwrap_or_else(|e| e.into_inner());
                zone.answer(&qname, info.query.query_type())
            }
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.response_code = rcode;
        // RFC 6891: a query with OPT gets a response with OPT.
        let edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512));
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let message = builder.build(metadata, answers.iter(), [], [], []);
        match response.send_response(message).await {
            Ok(info) => info,
            Err(_) => ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() }),
        }
    }
}

/// A UDP socket on 127.0.0.1 that receives queries and never answers (for timeout tests). Closed when dropped.
#[derive(Debug)]
pub struct SilentUdp {
    socket: std::net::UdpSocket,
}

impl SilentUdp {
    /// Where to send queries that will never be answered.
    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("a bound UDP socket has a local address")
    }
}

/// Bind a [`SilentUdp`] on a random port of 127.0.0.1.
///
/// # Panics
/// If binding fails (test environment problem).
pub fn silent_udp() -> SilentUdp {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a UDP socket on 127.0.0.1");
    SilentUdp { socket }
}

/// A UDP server on 127.0.0.1 that answers every query with a malformed message: the query's id and a
/// response header claiming one question and five answers, then junk bytes. A client matching on the id takes
/// it as its response and must fail to parse it. Stops when dropped.
#[derive(Debug)]
pub struct GarbageUdp {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl GarbageUdp {
    /// Where to send queries that get junk back.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for GarbageUdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a [`GarbageUdp`] on a random port of 127.0.0.1.
///
/// # Panics
/// If binding fails (test environment problem).
pub async fn garbage_udp() -> GarbageUdp {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind a UDP socket on 127.0.0.1");
    let addr = socket.local_addr().expect("a bound UDP socket has a local address");
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let id = buf.get(..2.min(n)).unwrap_or_default();
            let mut reply = id.to_vec();
            reply.resize(2, 0);
            // QR=1 RD=1 RA=1, NOERROR; QDCOUNT=1, ANCOUNT=5; then bytes that are no valid question.
            reply.extend_from_slice(&[0x81, 0x80, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00]);
            reply.extend_from_slice(&[0xff, 0xc0, 0xff, 0x00, 0x17, 0x42]);
            let _ = socket.send_to(&reply, peer).await;
        }
    });
    GarbageUdp { addr, task }
}
