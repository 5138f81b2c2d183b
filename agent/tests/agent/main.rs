//! End-to-end tests of the agent (one test binary for the crate).
//!
//! - `support`: writing configs to temp dirs, running the real `gonogo` binary.
//! - `cli`: exit codes, config errors with lines, table / JSON / JUnit output, `check-config`, `list`.
//! - `expectations`: every expectation of every kind, both ways, against real servers on loopback, through
//!   config → plan → engine → verdict.
//! - `phase`: concurrency and budgets: hanging targets do not add up.
//! - `privilege`: ICMP without CAP_NET_RAW and without ping_group_range gives `error` with the fix.

mod support;

mod cli;
mod expectations;
mod phase;
mod privilege;
