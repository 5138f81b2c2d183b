//! End-to-end tests of the agent (one test binary for the crate).
//!
//! - `support`: writing configs to temp dirs, running the real `gonogo` binary.
//! - `cli`: exit codes, config errors with lines, table / JSON / JUnit output, `check-config`, `list`.
//! - `expectations`: every expectation of every kind, both ways, against real servers on loopback, through
//!   config → plan → engine → verdict.
//! - `phase`: concurrency and budgets: hanging targets do not add up.
//! - `privilege`: ICMP without CAP_NET_RAW and without ping_group_range gives `error` with the fix.
//! - `daemon`: a real `gonogo serve` process with TLS from a generated CA, tokens and its own state dir.
//! - `serve`: the API end to end: trigger, long-poll, show, metrics (promtool), auth, mTLS, bad input,
//!   concurrent triggers, idempotency, kill -9 and restart, SIGHUP reload, SIGTERM.

mod daemon;
mod support;

mod cli;
mod expectations;
mod phase;
mod privilege;
mod serve;
