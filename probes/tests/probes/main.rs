//! Probe tests against real servers on loopback (one test binary for the crate).
//!
//! - `icmp`: echo to 127.0.0.1 and ::1 through the shared client; an address nobody answers.
//! - `tcp`: open port, closed port (refused), a listener that never accepts in time (timeout).
//! - `dns`: in-process hickory server over UDP and TCP; NOERROR, NXDOMAIN, record types, dead server.
//! - `tls`: generated certificates: valid, expired, wrong name, untrusted CA; version and chain details.
//! - `http`: status, redirects, body limit, headers, hanging server, HTTPS with a CA file, proxy.

mod dns;
mod http;
mod icmp;
mod tcp;
mod tls;
