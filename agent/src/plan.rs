//! The plan: where config meets probes. Selects the checks of a phase and builds one probe per check.
//!
//! The one place that matches [`CheckSpec`] exhaustively: a new probe kind is added here, in the config
//! model and in the verdict engine, and the compiler finds every spot.

use std::sync::Arc;

use gonogo_config::{Check, CheckSpec, Config};
use gonogo_probes::dns::{DnsParams, DnsProbe, RecordType, Transport};
use gonogo_probes::http::{HttpParams, HttpProbe};
use gonogo_probes::icmp::{IcmpClients, IcmpParams, IcmpProbe};
use gonogo_probes::tcp::{TcpParams, TcpProbe};
use gonogo_probes::tls::{TlsParams, TlsProbe};
use gonogo_probes::{Probe, ProbeError};

/// Why a phase cannot be planned: a usage error (exit code 3), never a verdict.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown phase {phase:?}; phases in {file}: {known}")]
    UnknownPhase { phase: String, file: String, known: String },
    #[error("phase {phase:?} has no checks in {file}; phases with checks: {with_checks}")]
    EmptyPhase { phase: String, file: String, with_checks: String },
    #[error("no check named {name:?} in phase {phase:?}; its checks: {available}")]
    UnknownCheck { name: String, phase: String, available: String },
}

/// One check ready to run.
#[derive(Debug)]
pub struct PlannedCheck {
    pub check: Arc<Check>,
    pub probe: Box<dyn Probe>,
}

/// The checks of `phase` (all, or only those named in `only`), in file order, each with its probe. Every ICMP
/// check of the plan shares one [`IcmpClients`].
pub fn plan(config: &Config, phase: &str, only: &[String]) -> Result<Vec<PlannedCheck>, PlanError> {
    let file = config.path.display().to_string();
    if !config.phases.contains_key(phase) {
        return Err(PlanError::UnknownPhase {
            phase: phase.to_owned(),
            file,
            known: config.phases.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    let in_phase: Vec<&Check> = config.checks_in(phase).collect();
    if in_phase.is_empty() {
        let with_checks: Vec<&str> =
            config.phases.keys().filter(|p| config.checks_in(p).next().is_some()).map(String::as_str).collect();
        return Err(PlanError::EmptyPhase {
            phase: phase.to_owned(),
            file,
            with_checks: if with_checks.is_empty() { "none".to_owned() } else { with_checks.join(", ") },
        });
    }
    for name in only {
        if !in_phase.iter().any(|c| &c.name == name) {
            return Err(PlanError::UnknownCheck {
                name: name.clone(),
                phase: phase.to_owned(),
                available: in_phase.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
    }
    let icmp = Arc::new(IcmpClients::new());
    Ok(in_phase
        .into_iter()
        .filter(|c| only.is_empty() || only.contains(&c.name))
        .map(|c| PlannedCheck { check: Arc::new(c.clone()), probe: probe_for(c, &icmp) })
        .collect())
}

/// Build the probe for one check.
pub fn probe_for(check: &Check, icmp: &Arc<IcmpClients>) -> Box<dyn Probe> {
    let timeout = check.timeout;
    match &check.spec {
        CheckSpec::Icmp(c) => Box::new(IcmpProbe::new(
            IcmpParams {
                target: c.target.clone(),
                count: c.count,
                interval: c.interval,
                size: c.size,
                timeout,
                ..Default::default()
            },
            Arc::clone(icmp),
        )),
        CheckSpec::Tcp(c) => Box::new(TcpProbe::new(TcpParams {
            host: c.host.clone(),
            port: c.port,
            count: c.count,
            timeout,
            ..Default::default()
        })),
        CheckSpec::Dns(c) => match c.record.parse::<RecordType>() {
            Ok(record) => Box::new(DnsProbe::new(DnsParams {
                query: c.query.clone(),
                record,
                server: c.server,
                transport: if c.transport == "tcp" { Transport::Tcp } else { Transport::Udp },
                timeout,
                ..Default::default()
            })),
            // The config crate validated the record type against the same list; this cannot happen, but a
            // mismatch between the two lists must surface as an error outcome, not a panic.
            Err(e) => Box::new(Unplannable { kind: gonogo_probes::Kind::Dns, target: c.query.clone(), reason: e }),
        },
        CheckSpec::Tls(c) => Box::new(TlsProbe::new(TlsParams {
            host: c.host.clone(),
            port: c.port,
            server_name: c.server_name.clone(),
            ca_file: c.ca_file.clone(),
            verify: c.verify,
            timeout,
            ..Default::default()
        })),
        CheckSpec::Http(c) => Box::new(HttpProbe::new(HttpParams {
            url: c.url.clone(),
            method: c.method.clone(),
            headers: c.headers.clone(),
            ca_file: c.ca_file.clone(),
            verify: c.verify,
            proxy: c.proxy.clone(),
            follow_redirects: c.follow_redirects,
            body_limit: c.body_limit,
            timeout,
            ..Default::default()
        })),
    }
}

/// A check whose probe could not be built: it runs as an `error` outcome with the reason.
#[derive(Debug)]
struct Unplannable {
    kind: gonogo_probes::Kind,
    target: String,
    reason: String,
}

impl Probe for Unplannable {
    fn kind(&self) -> gonogo_probes::Kind {
        self.kind
    }
    fn target(&self) -> String {
        self.target.clone()
    }
    fn budget(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    fn run(&self) -> gonogo_probes::ProbeFuture<'_> {
        let reason = self.reason.clone();
        Box::pin(async move { Err(ProbeError::Local(reason)) })
    }
}
