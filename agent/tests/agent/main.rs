//! End-to-end tests of the agent (one test binary for the crate).
//!
//! - `support`: writing configs to temp dirs, running the real `gonogo` binary.
//! - `cli`: exit codes, config errors with lines, table / JSON / JUnit output, `check-config`, `list`.
//! - `expectations`: every expectation of every kind, both ways, against real servers on loopback, through
//!   config → plan → engine → verdict.
//! - `depth`: `ip` modes (a private /etc/hosts in a mount namespace), retries and settle, `depends_on`,
//!   `fallback_tcp` (ICMP ignored in a fresh network namespace), `expect_failure`, several DNS servers.
//! - `phase`: concurrency and budgets: hanging targets do not add up.
//! - `privilege`: ICMP without CAP_NET_RAW and without ping_group_range gives `error` with the fix.
//! - `daemon`: a real `gonogo serve` process with TLS from a generated CA, tokens and its own state dir.
//! - `workflow`: baseline comparison (regression vs pre-existing), gates, sign-off decisions (CLI and API).
//! - `serve`: the API end to end: trigger, long-poll, show, metrics (promtool), auth, mTLS, bad input,
//!   concurrent triggers, idempotency, kill -9 and restart, SIGHUP reload, SIGTERM.
//! - `probe`: `GET /probe?check=NAME` (blackbox_exporter-compatible metrics) for every kind against loopback
//!   targets, promtool, auth, unknown check, `target=` refused, a slow probe not holding up another.
//! - `report`: `gonogo report` in every format from a recorded run; the HTML opened in headless Chromium
//!   (verdict and every check row rendered, screenshot kept in target/test-artifacts/); the API report endpoint
//!   and the status page.
//! - `journal`: the evidence journal: runs journaled by `gonogo run` and `gonogo serve`, tampered with in every
//!   way and checked by `gonogo journal verify`; signing keys from `gonogo keygen`; `GET /api/v1/journal`.
//! - `deploy`: the systemd unit (systemd-analyze; its user and capabilities applied with setpriv), the packaged
//!   config, man pages and completions, Prometheus rules (promtool) and a real Prometheus scraping the agent,
//!   the Grafana dashboard's metric names.

mod daemon;
mod support;

mod cli;
mod deploy;
mod depth;
mod expectations;
mod journal;
mod phase;
mod privilege;
mod probe;
mod report;
mod serve;
mod workflow;
