//! Probe tests against real servers on loopback (one test binary for the crate). Tests that need root and a
//! network namespace (`unshare --net`, veth to a test host the test creates) say so and skip without them.
//!
//! - `icmp`: echo to 127.0.0.1 and ::1 through the shared client; in a namespace: lost echoes
//!   (icmp_echo_ignore_all), a test host, ICMP host-unreachable, an unreachable route, no privilege; socket
//!   options (source, TTL, DF) on loopback and through a router with a 1400-byte hop (too big, time exceeded).
//! - `mtu`: path MTU sweep on loopback; in a namespace: a router with a 1400-byte hop (IPv4 and IPv6), a
//!   1400-byte local link, `min` above the path MTU, a silent target, a datagram socket that sees no ICMP errors.
//! - `impairment`: tc netem delay 20 ms and loss 10 % towards a test host; statistics within tolerance.
//! - `tcp`: open port, closed port (refused), a full accept queue (timeout), unreachable hosts and routes; source
//!   address, send and banner (greeting, echo, silent, closing services).
//! - `dns`: in-process hickory server over UDP and TCP; NOERROR, NXDOMAIN, record types, dead server, source
//!   address.
//! - `tls`: generated certificates: valid, expired, wrong name, untrusted CA; version and chain details.
//! - `http`: status, redirects, body limit, headers, hanging server, HTTPS with a CA file, proxy.
//! - `egress`: address-echo answers (plain, JSON, Cloudflare trace, garbage, 500), proxy (explicit and from the
//!   environment), HTTPS, source, pin.

mod dns;
mod egress;
mod http;
mod icmp;
mod impairment;
mod mtu;
mod tcp;
mod tls;
