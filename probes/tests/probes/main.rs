//! Probe tests against real servers on loopback (one test binary for the crate). Tests that need root and a
//! network namespace (`unshare --net`, veth to a test host the test creates) say so and skip without them.
//!
//! - `icmp`: echo to 127.0.0.1 and ::1 through the shared client; in a namespace: lost echoes
//!   (icmp_echo_ignore_all), a test host, ICMP host-unreachable, an unreachable route, no privilege.
//! - `tcp`: open port, closed port (refused), a full accept queue (timeout), unreachable hosts and routes.
//! - `dns`: in-process hickory server over UDP and TCP; NOERROR, NXDOMAIN, record types, dead server.
//! - `tls`: generated certificates: valid, expired, wrong name, untrusted CA; version and chain details.
//! - `http`: status, redirects, body limit, headers, hanging server, HTTPS with a CA file, proxy.

mod dns;
mod http;
mod icmp;
mod tcp;
mod tls;
