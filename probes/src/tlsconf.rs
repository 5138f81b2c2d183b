//! Shared rustls client configuration for the tls and http probes: the ring crypto provider, trusted roots
//! from the system or a CA file, and a verifier that records why a chain failed instead of aborting the
//! handshake, so a check can report the certificate it was shown.
