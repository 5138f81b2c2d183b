//! gonogo-testkit: real servers on loopback for gonogo's tests. Nothing here dials anything but 127.0.0.0/8
//! and ::1.
//!
//! - [`certs`]: a test CA and certificates (valid, expired, wrong name, untrusted CA) generated with rcgen.
//! - [`dns`]: an in-process authoritative DNS server (hickory-server) on UDP and TCP.
//! - [`http`]: in-process HTTP and HTTPS servers with scripted routes.
//! - [`tcp`]: an open port, a closed port, a listener that accepts and never answers, and one whose full accept
//!   queue drops new connections (connect timeouts on loopback).

pub mod certs;
pub mod dns;
pub mod http;
pub mod tcp;
