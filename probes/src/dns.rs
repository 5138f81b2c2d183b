//! DNS lookup: one query to a named server or to the system resolver's name servers, over UDP or TCP; rcode,
//! answers, time.
//!
//! The exchange is done here with tokio sockets and hickory-proto's message codec rather than a hickory
//! resolver: a resolver retries, caches, applies search domains and turns NXDOMAIN/SERVFAIL into errors, and a
//! go/no-go check needs the one response the server actually gave.
//!
//! - UDP: a connected socket (ICMP port unreachable comes back as ECONNREFUSED), a random 16-bit id and an
//!   EDNS(0) OPT of 1232 bytes. A response with our id that does not parse fails at once as `protocol`.
//!   Packets that are not ours (another id or question, too short for a header) are ignored; if the deadline
//!   passes after such packets, the failure is `protocol` (the server sent nonsense), otherwise `timeout`.
//! - TCP: the 2-byte length prefix, one query per connection; the lookup time includes the connect.
//! - Source address: when set, the socket is bound to it before the query is sent, so the query leaves by the
//!   interface (and policy route) of that address; an address this host does not own is a [`ProbeError::Local`].

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType as HRecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::time::{Instant, timeout_at};

use crate::tcp::source_error;
use crate::{Failure, Kind, Observations, Probe, ProbeError, ProbeFuture};

/// Record types a check may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    #[default]
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
    Soa,
    Ptr,
    Srv,
}

impl RecordType {
    /// Every supported type, in the order shown to users.
    pub const ALL: [RecordType; 9] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::Mx,
        RecordType::Txt,
        RecordType::Ns,
        RecordType::Soa,
        RecordType::Ptr,
        RecordType::Srv,
    ];

    /// Upper-case mnemonic, as in zone files and `dig`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Mx => "MX",
            RecordType::Txt => "TXT",
            RecordType::Ns => "NS",
            RecordType::Soa => "SOA",
            RecordType::Ptr => "PTR",
            RecordType::Srv => "SRV",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordType::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            format!("unknown record type {s:?}; expected one of A, AAAA, CNAME, MX, TXT, NS, SOA, PTR, SRV")
        })
    }
}

/// Transport for the query: UDP, or TCP with the 2-byte length prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

impl Transport {
    /// Lower-case name, as in config files and the `server` observation.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// Parameters of one DNS check.
#[derive(Debug, Clone, Default)]
pub struct DnsParams {
    /// The name to look up (for PTR, an IP address is accepted and turned into its reverse name).
    pub query: String,
    /// The record type to ask for.
    pub record: RecordType,
    /// `None`: the system resolver (the name servers of /etc/resolv.conf, asked in order).
    pub server: Option<SocketAddr>,
    /// UDP (the default) or TCP.
    pub transport: Transport,
    /// Bound on the whole lookup.
    pub timeout: Duration,
    /// Local address to send the query from (the UDP or TCP socket is bound to it, port 0); `None`: the kernel
    /// chooses. It must be an address of this host, of the server's family, or the probe returns
    /// [`ProbeError::Local`]. With the system resolver, only its name servers of the source's family are asked.
    pub source: Option<IpAddr>,
}

/// What a DNS check saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnsObservations {
    /// The server that answered or was asked, `ip:port/udp`; `system` if the system resolver had none.
    pub server: String,
    /// Response code as its mnemonic (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED` …); `None` without a
    /// response.
    pub rcode: Option<String>,
    /// Answer records of the asked type, as text: addresses for A/AAAA, names without the trailing dot for
    /// CNAME/NS/PTR, `preference exchange` for MX, the joined strings for TXT, `priority weight port target`
    /// for SRV, the SOA fields for SOA.
    pub answers: Vec<String>,
    /// Time from sending the query to the response (or to giving up).
    #[serde(rename = "lookup_ms", with = "crate::ms")]
    pub lookup_time: Duration,
    /// Set when no response came back (timeout, refused TCP, unreachable) or it could not be parsed.
    pub failure: Option<Failure>,
    /// Human text: the rcode and answers, CNAMEs followed, truncation; or what went wrong.
    pub detail: Option<String>,
}

impl DnsParams {
    /// The absolute name the probe asks for, with its trailing dot: the query as written, or for PTR the
    /// reverse name of an IP address (`10.0.0.1` → `1.0.0.10.in-addr.arpa.`). The config layer can call this to
    /// validate a check before the first run.
    pub fn query_name(&self) -> Result<String, String> {
        query_name(&self.query, self.record).map(|n| n.to_ascii())
    }
}

/// The name to put in the question: absolute (no search domains), a reverse name for an IP address with PTR.
fn query_name(query: &str, record: RecordType) -> Result<Name, String> {
    if record == RecordType::Ptr
        && let Ok(ip) = query.parse::<IpAddr>()
    {
        let mut name = Name::from(ip);
        name.set_fqdn(true);
        return Ok(name);
    }
    let trimmed = query.trim();
    if trimmed.is_empty() {
        return Err("the DNS query name is empty".to_string());
    }
    let mut name = Name::from_str_relaxed(trimmed).map_err(|e| format!("{trimmed:?} is not a valid DNS name: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

impl RecordType {
    fn to_hickory(self) -> HRecordType {
        match self {
            RecordType::A => HRecordType::A,
            RecordType::Aaaa => HRecordType::AAAA,
            RecordType::Cname => HRecordType::CNAME,
            RecordType::Mx => HRecordType::MX,
            RecordType::Txt => HRecordType::TXT,
            RecordType::Ns => HRecordType::NS,
            RecordType::Soa => HRecordType::SOA,
            RecordType::Ptr => HRecordType::PTR,
            RecordType::Srv => HRecordType::SRV,
        }
    }
}

/// Where the system resolver's configuration lives.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The error when the system resolver has no name server to ask.
const NO_NAME_SERVER: &str = "no name server in /etc/resolv.conf; set `server = \"ip:port\"` on the check";

/// Extra time the run engine grants beyond the lookup timeout (task scheduling, reading resolv.conf).
const BUDGET_MARGIN: Duration = Duration::from_millis(250);

/// EDNS(0) UDP payload size advertised in queries (the DNS flag day 2020 value), so answers larger than 512
/// bytes are not truncated by servers that honour EDNS.
const EDNS_PAYLOAD: u16 = 1232;

/// The name servers of a resolv.conf text, in file order, on port 53.
///
/// Reads `nameserver <ip>` lines; comments (`#`, `;`) and other directives are ignored, as are entries that are
/// not an IP address. An IPv6 zone index is kept when numeric (`fe80::1%2`); an interface name (`fe80::1%eth0`)
/// cannot be resolved without libc, so such an entry is skipped.
pub fn nameservers_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut servers = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        let parsed = match addr.split_once('%') {
            None => addr.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)),
            Some((ip, zone)) => match (ip.parse::<Ipv6Addr>(), zone.parse::<u32>()) {
                (Ok(ip), Ok(zone)) => Some(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, zone))),
                _ => None,
            },
        };
        servers.extend(parsed);
    }
    servers
}

/// A DNS lookup: one query to one server (or to the system resolver's servers in turn), no retries, no cache.
///
/// Answers hold only records of the asked type: asking A for a name that is a CNAME to another name gives the
/// A records at the end of the chain, and the CNAMEs appear in `detail`. A truncated UDP answer (TC bit) is
/// reported as it came, with a note in `detail`; the probe does not retry over TCP.
#[derive(Debug, Clone)]
pub struct DnsProbe {
    params: DnsParams,
}

impl DnsProbe {
    /// A probe for these parameters. Never fails: a bad query name is reported by `run` as
    /// [`ProbeError::Local`] (and by [`DnsParams::query_name`] for early validation).
    pub fn new(params: DnsParams) -> DnsProbe {
        DnsProbe { params }
    }

    /// The parameters the probe was built with.
    pub fn params(&self) -> &DnsParams {
        &self.params
    }

    async fn lookup(&self) -> Result<DnsObservations, ProbeError> {
        let p = &self.params;
        let name = query_name(&p.query, p.record).map_err(ProbeError::Local)?;
        let servers = match p.server {
            Some(server) => {
                if let Some(source) = p.source
                    && source.is_ipv4() != server.is_ipv4()
                {
                    return Err(ProbeError::Local(format!(
                        "source address {source} and DNS server {server} are of different IP families; use a \
                         source address of the server's family"
                    )));
                }
                vec![server]
            }
            None => {
                let text = tokio::fs::read_to_string(RESOLV_CONF).await.map_err(|e| {
                    ProbeError::Local(format!(
                        "cannot read {RESOLV_CONF}: {e}; set `server = \"ip:port\"` on the check"
                    ))
                })?;
                let mut servers = nameservers_from_resolv_conf(&text);
                if servers.is_empty() {
                    return Err(ProbeError::Local(NO_NAME_SERVER.to_string()));
                }
                if let Some(source) = p.source {
                    servers.retain(|s| s.is_ipv4() == source.is_ipv4());
                    if servers.is_empty() {
                        return Err(ProbeError::Local(format!(
                            "no name server in {RESOLV_CONF} has the IP family of source address {source}; set \
                             `server = \"ip:port\"` on the check"
                        )));
                    }
                }
                servers
            }
        };

        ask_in_turn(&servers, p.transport, p.source, &name, p.record, p.timeout).await
    }
}

/// Ask `servers` in order until one responds, within `timeout` in all. Each server gets an equal share of the
/// time left, so a silent first server leaves time for the next (a refusing one leaves its share to the rest).
/// Any DNS response, whatever its rcode, ends the search. Without any, the last server's failure is reported;
/// `detail` lists the earlier ones.
async fn ask_in_turn(
    servers: &[SocketAddr],
    transport: Transport,
    source: Option<IpAddr>,
    name: &Name,
    record: RecordType,
    timeout: Duration,
) -> Result<DnsObservations, ProbeError> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut tried = Vec::new();
    for (i, &server) in servers.iter().enumerate() {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        let slot_end = now + left / u32::try_from(servers.len() - i).unwrap_or(u32::MAX);
        let exchange = exchange(server, transport, source, name, record, slot_end).await?;
        let mut obs = observe(server, transport, record, exchange);
        if obs.failure.is_some() && i + 1 < servers.len() {
            tried.push(format!("{}: {}", obs.server, obs.detail.as_deref().unwrap_or("no response")));
            continue;
        }
        if !tried.is_empty() {
            obs.lookup_time = start.elapsed();
            let earlier = format!("earlier servers failed: {}", tried.join("; "));
            obs.detail = Some(match obs.detail {
                Some(d) => format!("{d}; {earlier}"),
                None => earlier,
            });
        }
        return Ok(obs);
    }
    Err(ProbeError::Local(NO_NAME_SERVER.to_string()))
}

impl Probe for DnsProbe {
    fn kind(&self) -> Kind {
        Kind::Dns
    }

    fn target(&self) -> String {
        let p = &self.params;
        match (p.server, p.transport) {
            (Some(server), t) => format!("{} {} @{}/{}", p.query, p.record, server, t.as_str()),
            (None, Transport::Udp) => format!("{} {} @system", p.query, p.record),
            (None, Transport::Tcp) => format!("{} {} @system/tcp", p.query, p.record),
        }
    }

    fn budget(&self) -> Duration {
        self.params.timeout + BUDGET_MARGIN
    }

    fn run(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.lookup().await.map(Observations::Dns) })
    }
}

/// How one exchange with one server ended.
#[derive(Debug)]
struct Exchange {
    /// From sending the query (TCP: from starting to connect) to the response or giving up.
    elapsed: Duration,
    outcome: Result<Message, (Failure, String)>,
}

/// Send one query to `server` and wait for its response until `deadline`.
async fn exchange(
    server: SocketAddr,
    transport: Transport,
    source: Option<IpAddr>,
    name: &Name,
    record: RecordType,
    deadline: Instant,
) -> Result<Exchange, ProbeError> {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    let mut question = Query::query(name.clone(), record.to_hickory());
    question.set_query_class(DNSClass::IN);
    message.add_query(question.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    message.set_edns(edns);
    let id = message.metadata.id;
    let wire = message.to_vec().map_err(|e| ProbeError::Local(format!("cannot encode the DNS query: {e}")))?;
    match transport {
        Transport::Udp => exchange_udp(server, source, &wire, id, &question, deadline).await,
        Transport::Tcp => exchange_tcp(server, source, &wire, id, &question, deadline).await,
    }
}

async fn exchange_udp(
    server: SocketAddr,
    source: Option<IpAddr>,
    wire: &[u8],
    id: u16,
    question: &Query,
    deadline: Instant,
) -> Result<Exchange, ProbeError> {
    let local: SocketAddr = match (source, server) {
        (Some(source), _) => (source, 0).into(),
        (None, SocketAddr::V4(_)) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        (None, SocketAddr::V6(_)) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| match source {
        Some(source) => ProbeError::Local(source_error(source, &e)),
        None => ProbeError::Local(format!("cannot open a UDP socket on {local}: {e}")),
    })?;
    let start = Instant::now();
    let done = |outcome| Exchange { elapsed: start.elapsed(), outcome };
    // Connected, so the kernel drops datagrams from other addresses and reports ICMP errors to us.
    if let Err(e) = socket.connect(server).await {
        return io_failure("connect", &e).map(|f| done(Err(f)));
    }
    if let Err(e) = socket.send(wire).await {
        return io_failure("send", &e).map(|f| done(Err(f)));
    }
    let mut buf = vec![0u8; 65535];
    let mut ignored: Option<String> = None;
    let mut ignored_count = 0u32;
    loop {
        let received = match timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => {
                let outcome = match ignored {
                    Some(why) => Err((
                        Failure::Protocol,
                        format!("no valid response: ignored {ignored_count} packet(s) from the server ({why})"),
                    )),
                    None => Err((Failure::Timeout, format!("no response within {} ms", start.elapsed().as_millis()))),
                };
                return Ok(done(outcome));
            }
            Ok(Err(e)) => return io_failure("receive", &e).map(|f| done(Err(f))),
            Ok(Ok(n)) => n,
        };
        let packet = buf.get(..received).unwrap_or_default();
        match parse_response(packet, id, question) {
            Parsed::Response(message) => return Ok(done(Ok(message))),
            Parsed::Malformed(why) => return Ok(done(Err((Failure::Protocol, why)))),
            // Not ours (another id, another question, not a response): wait on, as resolvers do.
            Parsed::Stray(why) => {
                ignored_count += 1;
                ignored = Some(why);
            }
        }
    }
}

async fn exchange_tcp(
    server: SocketAddr,
    source: Option<IpAddr>,
    wire: &[u8],
    id: u16,
    question: &Query,
    deadline: Instant,
) -> Result<Exchange, ProbeError> {
    let start = Instant::now();
    let done = |outcome| Exchange { elapsed: start.elapsed(), outcome };
    let timed_out =
        |what: &str| Err((Failure::Timeout, format!("timed out {what} after {} ms", start.elapsed().as_millis())));
    let socket = match server {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| ProbeError::Local(format!("cannot open a TCP socket: {e}")))?;
    if let Some(source) = source {
        socket.bind((source, 0).into()).map_err(|e| ProbeError::Local(source_error(source, &e)))?;
    }
    let mut stream = match timeout_at(deadline, socket.connect(server)).await {
        Err(_) => return Ok(done(timed_out("connecting"))),
        Ok(Err(e)) => return io_failure("connect", &e).map(|f| done(Err(f))),
        Ok(Ok(s)) => s,
    };
    let Ok(len) = u16::try_from(wire.len()) else {
        return Err(ProbeError::Local("the DNS query is too long for TCP".to_string()));
    };
    let mut framed = Vec::with_capacity(wire.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(wire);
    match timeout_at(deadline, stream.write_all(&framed)).await {
        Err(_) => return Ok(done(timed_out("sending the query"))),
        Ok(Err(e)) => return io_failure("send", &e).map(|f| done(Err(f))),
        Ok(Ok(())) => {}
    }
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut body).await?;
        Ok::<_, io::Error>(body)
    };
    let body = match timeout_at(deadline, read).await {
        Err(_) => return Ok(done(timed_out("waiting for the response"))),
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Ok(done(Err((
                Failure::ConnectionReset,
                "the server closed the TCP connection before a full response".to_string(),
            ))));
        }
        Ok(Err(e)) => return io_failure("receive", &e).map(|f| done(Err(f))),
        Ok(Ok(body)) => body,
    };
    // One query per connection: whatever comes back must be its response.
    let outcome = match parse_response(&body, id, question) {
        Parsed::Response(message) => Ok(message),
        Parsed::Malformed(why) | Parsed::Stray(why) => Err((Failure::Protocol, why)),
    };
    Ok(done(outcome))
}

/// Classify a socket error: the target's answer (refused, unreachable, reset) is a failure to observe; a local
/// problem (no such local address, not permitted) is a [`ProbeError`].
fn io_failure(op: &str, e: &io::Error) -> Result<(Failure, String), ProbeError> {
    use io::ErrorKind as K;
    let failure = match e.kind() {
        K::ConnectionRefused => Failure::ConnectionRefused,
        K::HostUnreachable | K::NetworkUnreachable => Failure::Unreachable,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Failure::ConnectionReset,
        K::TimedOut => Failure::Timeout,
        K::AddrNotAvailable | K::PermissionDenied | K::AddrInUse => {
            return Err(ProbeError::Local(format!("cannot {op} DNS query: {e}")));
        }
        _ => Failure::Unreachable,
    };
    Ok((failure, format!("{op}: {e}")))
}

/// What a received packet is to the query we sent.
#[derive(Debug)]
enum Parsed {
    /// The response to our query.
    Response(Message),
    /// It claims to be our response (our id, QR set) but does not parse.
    Malformed(String),
    /// Not ours: unreadable header, another id, not a response, another question.
    Stray(String),
}

/// Decode a packet and check it answers `question` with `id`. Never panics on any input.
fn parse_response(packet: &[u8], id: u16, question: &Query) -> Parsed {
    let header = match Header::read(&mut BinDecoder::new(packet)) {
        Ok(h) => h,
        Err(e) => return Parsed::Stray(format!("{} byte(s), not a DNS message: {e}", packet.len())),
    };
    if header.metadata.id != id {
        return Parsed::Stray(format!("message id {} is not the query's {id}", header.metadata.id));
    }
    if header.metadata.message_type != MessageType::Response {
        return Parsed::Stray("a query, not a response".to_string());
    }
    let message = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(e) => {
            return Parsed::Malformed(format!(
                "malformed response ({} bytes, rcode {}): {e}",
                packet.len(),
                rcode_mnemonic(header.metadata.response_code)
            ));
        }
    };
    // Some servers leave the question out of error responses; accept that, but not another question.
    match message.queries.as_slice() {
        [] => Parsed::Response(message),
        [q] if q.name() == question.name()
            && q.query_type() == question.query_type()
            && q.query_class() == question.query_class() =>
        {
            Parsed::Response(message)
        }
        qs => Parsed::Stray(format!(
            "response for another question ({})",
            qs.iter().map(|q| format!("{} {}", q.name(), q.query_type())).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Turn an exchange into observations.
fn observe(server: SocketAddr, transport: Transport, record: RecordType, exchange: Exchange) -> DnsObservations {
    let server = format!("{server}/{}", transport.as_str());
    let message = match exchange.outcome {
        Ok(m) => m,
        Err((failure, detail)) => {
            let mut obs = failed_observation(server, failure, detail);
            obs.lookup_time = exchange.elapsed;
            return obs;
        }
    };
    let asked = record.to_hickory();
    let answers: Vec<String> =
        message.answers.iter().filter(|r| r.record_type() == asked).filter_map(|r| rdata_text(&r.data)).collect();
    let rcode = rcode_mnemonic(message.metadata.response_code);

    let mut notes = vec![match (answers.len(), message.metadata.response_code) {
        (0, ResponseCode::NoError) => format!("NOERROR, no {record} record (NODATA)"),
        (0, _) => rcode.clone(),
        (n, _) => format!("{rcode}, {n} {record} record(s): {}", answers.join(", ")),
    }];
    let cnames: Vec<String> = message
        .answers
        .iter()
        .filter(|r| r.record_type() == HRecordType::CNAME && asked != HRecordType::CNAME)
        .filter_map(|r| Some(format!("{} CNAME {}", name_text(&r.name), rdata_text(&r.data)?)))
        .collect();
    if !cnames.is_empty() {
        notes.push(format!("via {}", cnames.join(", ")));
    }
    let others = message.answers.iter().filter(|r| r.record_type() != asked && r.record_type() != HRecordType::CNAME);
    let others = others.count();
    if others > 0 {
        notes.push(format!("{others} answer record(s) of other types ignored"));
    }
    if message.metadata.truncation {
        notes.push("truncated (TC bit set): the answer is incomplete; a TCP check would get it all".to_string());
    }
    if message.metadata.authoritative {
        notes.push("authoritative".to_string());
    }
    DnsObservations {
        server,
        rcode: Some(rcode),
        answers,
        lookup_time: exchange.elapsed,
        failure: None,
        detail: Some(notes.join("; ")),
    }
}

fn failed_observation(server: String, failure: Failure, detail: String) -> DnsObservations {
    DnsObservations {
        server,
        rcode: None,
        answers: Vec::new(),
        lookup_time: Duration::ZERO,
        failure: Some(failure),
        detail: Some(detail),
    }
}

/// A record's data as text (see [`DnsObservations::answers`]); `None` for types the probe does not ask for.
fn rdata_text(data: &RData) -> Option<String> {
    Some(match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => name_text(&n.0),
        RData::NS(n) => name_text(&n.0),
        RData::PTR(n) => name_text(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, name_text(&mx.exchange)),
        RData::TXT(txt) => txt.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect::<String>(),
        RData::SRV(srv) => format!("{} {} {} {}", srv.priority, srv.weight, srv.port, name_text(&srv.target)),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            name_text(&soa.mname),
            name_text(&soa.rname),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        _ => return None,
    })
}

/// A name in lower case without the trailing dot; the root stays `.`.
fn name_text(name: &Name) -> String {
    if name.is_root() {
        return ".".to_string();
    }
    let text = name.to_ascii().to_ascii_lowercase();
    match text.strip_suffix('.') {
        Some(t) => t.to_string(),
        None => text,
    }
}

/// The response code's mnemonic, as dig prints it: `NOERROR`, `NXDOMAIN`, `SERVFAIL` …; `RCODE<n>` when
/// unassigned.
fn rcode_mnemonic(code: ResponseCode) -> String {
    let s = match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS | ResponseCode::BADSIG => "BADVERS",
        ResponseCode::BADKEY => "BADKEY",
        ResponseCode::BADTIME => "BADTIME",
        ResponseCode::BADMODE => "BADMODE",
        ResponseCode::BADNAME => "BADNAME",
        ResponseCode::BADALG => "BADALG",
        ResponseCode::BADTRUNC => "BADTRUNC",
        ResponseCode::BADCOOKIE => "BADCOOKIE",
        ResponseCode::Unknown(n) => return format!("RCODE{n}"),
    };
    s.to_string()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use gonogo_testkit::dns::{DnsServer, silent_udp};
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME};

    use super::*;

    fn question() -> Query {
        Query::query(Name::from_ascii("app.test.").expect("valid name"), HRecordType::A)
    }

    fn valid_response(id: u16) -> Vec<u8> {
        let name = Name::from_ascii("app.test.").expect("valid name");
        let mut m = Message::response(id, hickory_proto::op::OpCode::Query);
        m.add_query(question());
        m.add_answer(Record::from_rdata(name.clone(), 60, RData::CNAME(CNAME(name.clone()))));
        m.add_answer(Record::from_rdata(name, 60, RData::A(A(Ipv4Addr::new(10, 0, 0, 1)))));
        m.to_vec().expect("encodes")
    }

    #[test]
    fn valid_response_is_accepted() {
        assert!(matches!(parse_response(&valid_response(7), 7, &question()), Parsed::Response(_)));
        assert!(matches!(parse_response(&valid_response(8), 7, &question()), Parsed::Stray(_)));
        let other = Query::query(Name::from_ascii("other.test.").expect("valid name"), HRecordType::A);
        assert!(matches!(parse_response(&valid_response(7), 7, &other), Parsed::Stray(_)));
    }

    /// Every truncation, every single-byte corruption and random junk: no panic, and a cut-off response with
    /// our id is malformed, not accepted.
    #[test]
    fn malformed_packets_never_panic() {
        let good = valid_response(0x1234);
        for len in 0..good.len() {
            let parsed = parse_response(&good[..len], 0x1234, &question());
            assert!(!matches!(parsed, Parsed::Response(_)), "a {len}-byte prefix was accepted");
        }
        for i in 0..good.len() {
            for v in [0x00, 0x3f, 0x40, 0xc0, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = parse_response(&bad, 0x1234, &question());
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 300) as usize;
            let junk: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8 ^ i as u8).collect();
            let _ = parse_response(&junk, 0, &question());
        }
    }

    #[tokio::test]
    async fn system_servers_are_asked_in_turn() {
        let dns = DnsServer::builder().a("app.test.", "10.0.0.1").start().await;
        let silent = silent_udp();
        let refused = {
            let s = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
            s.local_addr().expect("addr")
        };
        let name = Name::from_ascii("app.test.").expect("valid name");
        let servers = [silent.addr(), refused, dns.addr()];
        let timeout = Duration::from_millis(900);
        let o = ask_in_turn(&servers, Transport::Udp, None, &name, RecordType::A, timeout).await.expect("measured");
        assert_eq!(o.failure, None, "{o:?}");
        assert_eq!(o.answers, ["10.0.0.1"]);
        assert_eq!(o.server, format!("{}/udp", dns.addr()));
        let detail = o.detail.unwrap_or_default();
        assert!(detail.contains(&silent.addr().to_string()) && detail.contains(&refused.to_string()), "{detail}");
        assert!(o.lookup_time >= timeout / 3, "the silent server had its third of the time");

        // None answers: the last failure is reported.
        let o = ask_in_turn(&[refused, silent.addr()], Transport::Udp, None, &name, RecordType::A, timeout)
            .await
            .expect("measured");
        assert_eq!(o.failure, Some(Failure::Timeout));
        assert_eq!(o.server, format!("{}/udp", silent.addr()));
    }

    #[tokio::test]
    async fn truncated_udp_answer_is_reported_as_is() {
        let mut builder = DnsServer::builder();
        for i in 0..120u8 {
            builder = builder.a("big.test.", &format!("10.0.{}.{}", i / 100, i % 100));
        }
        let dns = builder.start().await;
        let name = Name::from_ascii("big.test.").expect("valid name");
        let timeout = Duration::from_secs(2);
        let udp =
            ask_in_turn(&[dns.addr()], Transport::Udp, None, &name, RecordType::A, timeout).await.expect("measured");
        assert_eq!(udp.failure, None, "{udp:?}");
        assert!(udp.detail.unwrap_or_default().contains("truncated"));
        let tcp =
            ask_in_turn(&[dns.addr()], Transport::Tcp, None, &name, RecordType::A, timeout).await.expect("measured");
        assert_eq!(tcp.answers.len(), 120, "{tcp:?}");
        assert_eq!(dns.queries(), 2, "no silent retry over TCP");
    }
}
