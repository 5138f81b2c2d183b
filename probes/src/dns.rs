//! DNS lookup with hickory: a named server or the system resolver, over UDP or TCP; rcode, answers, time.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Failure;

/// Record types a check may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
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

/// Transport for the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// Parameters of one DNS check.
#[derive(Debug, Clone)]
pub struct DnsParams {
    /// The name to look up (for PTR, an IP address is accepted and turned into its reverse name).
    pub query: String,
    pub record: RecordType,
    /// `None`: the system resolver (the name servers of /etc/resolv.conf, asked in order).
    pub server: Option<SocketAddr>,
    pub transport: Transport,
    /// Bound on the whole lookup.
    pub timeout: Duration,
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
    pub detail: Option<String>,
}
