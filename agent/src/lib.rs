//! gonogo: the agent. CLI, plan, run engine, verdict engine, output.
//!
//! Code map, in reading order:
//! - [`verdict`]: pure: observations + expectations → check outcome with reasons; outcomes → phase verdict.
//! - [`compare`]: pure: a run against its baseline run (regression, pre-existing, fixed, drift).
//! - [`gates`]: go/no-go points over the latest runs, and sign-off decisions (evaluation is pure).
//! - [`plan`]: config meets probes; the one exhaustive match over check kinds.
//! - [`engine`]: runs a plan concurrently under budgets and judges each check.
//! - [`run`]: the run record (what `--format json` prints).
//! - [`store`]: runs on disk, written atomically; interrupted runs recovered at start-up.
//! - [`journal`]: the append-only, hash-chained (optionally Ed25519-signed) evidence journal and its verifier.
//! - [`output`]: table, JSON and JUnit rendering.
//! - [`report`]: reports of a run (self-contained HTML, Markdown, readiness-sheet CSV) and the status page.
//! - [`cli`]: argument parsing, exit codes, commands; [`demo`] is the self-contained walk-through.
//! - [`serve`]: the daemon; [`manager`] starts, cancels and records runs; [`api`] is the HTTPS API;
//!   [`metrics`] the Prometheus registry; [`notify`] talks to systemd; [`memory`] keeps the heap small.
//!
//! Invariants: the verdict engine does no I/O and reads no clock; only this crate knows JSON and the terminal.

// The decision core.
pub mod compare;
pub mod gates;
pub mod verdict;

// Running a phase.
pub mod engine;
pub mod plan;
pub mod run;
pub mod store;

// Showing it.
pub mod cli;
pub mod demo;
pub mod output;
pub mod report;

// Serving: the daemon, its API, run manager and metrics.
pub mod api;
pub mod journal;
pub mod manager;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod probe_endpoint;
pub mod serve;

// Shared test fixtures.
#[cfg(test)]
mod fixtures;
