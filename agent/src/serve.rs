//! `gonogo serve`: the daemon. Loads the config, recovers interrupted runs, listens on the API (rustls, or
//! plain HTTP on loopback / with `insecure = true`) and the optional metrics listener, runs phases on their
//! schedules, reloads on SIGHUP or the API, and shuts down cleanly on SIGTERM / SIGINT (or the `shutdown`
//! future, for tests).

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use axum::Router;
use gonogo_config::{ApiTls, Config};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::api;
use crate::journal::{Journal, Kind};
use crate::manager::{Manager, TriggerError};
use crate::metrics::Metrics;
use crate::notify;
use crate::run::{RunStatus, Trigger};
use crate::store::Store;

/// How long running checks may go on after a stop is asked for, before their runs are recorded `interrupted`.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Longest TLS handshake accepted from a client.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Run the daemon until `shutdown` resolves (or SIGTERM / SIGINT arrives).
pub async fn serve(config_path: &Path, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = gonogo_config::load(config_path).map_err(|p| anyhow!("{p}\ninvalid config; nothing started"))?;
    let api_cfg = config.api.clone().ok_or_else(|| {
        anyhow!(
            "{}: no [api] table; `gonogo serve` needs one, e.g.\n[api]\nlisten = \"127.0.0.1:9443\"",
            config_path.display()
        )
    })?;
    if api_cfg.tls.is_none() && !api_cfg.listen.ip().is_loopback() && !api_cfg.insecure {
        bail!(
            "refusing to serve plain HTTP on non-loopback address {}: set tls_cert and tls_key in [api], or \
             insecure = true to accept unencrypted access",
            api_cfg.listen
        );
    }
    let state_dir = config.storage.state_dir.clone();
    let store = Store::open(&state_dir, config.storage.keep_runs).with_context(|| {
        format!("state directory {} must be writable (systemd: StateDirectory=gonogo)", state_dir.display())
    })?;
    let recovered = store.recover().context("recovering interrupted runs")?;
    for id in &recovered {
        tracing::warn!(id = %id, "run was in progress when the agent stopped; recorded as interrupted");
    }
    let journal = Arc::new(
        Journal::open(&state_dir, config.evidence.signing_key.as_deref()).context("opening the evidence journal")?,
    );
    let started = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"), "pid": std::process::id(), "host": crate::run::hostname(),
        "recovered": recovered, "public_key": journal.public_key_hex(),
    });
    if let Err(e) = journal.append(Kind::Start, started) {
        tracing::error!(error = %e, "cannot journal the start");
    }
    let metrics = Arc::new(Metrics::new().context("setting up metrics")?);
    metrics.reload(true, crate::engine::unix_now() as f64);
    metrics.set_schedules(&config);
    // Show the last finished run of every phase from the start, so a restart does not blank the dashboards.
    for phase in config.phases.keys() {
        if let Some(run) = store.newest(phase, |r| r.status == RunStatus::Finished)? {
            // Shown, not counted again: the counters belong to this process.
            metrics.show_run(&run);
        }
    }
    let tls = match &api_cfg.tls {
        Some(t) => Some(tls_acceptor(t)?),
        None => None,
    };
    // Restoring read whole run documents; the parsed config and plan are built: give the transient heap back.
    crate::memory::release_free_heap();
    let manager = Manager::new(config_path, config, store, Arc::clone(&metrics), Some(Arc::clone(&journal)));
    // The manager's config, shared rather than cloned (a config of 1,000 checks is about 0.5 MB).
    let schedule_config = manager.config();

    let listener = TcpListener::bind(api_cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} ([api] listen)", api_cfg.listen))?;
    let api_addr = listener.local_addr()?;
    write_addr_file(&state_dir.join("api.addr"), api_addr)?;
    tracing::info!(
        address = %api_addr,
        tls = tls.is_some(),
        client_certificates = api_cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        "API listening"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = vec![tokio::spawn(accept_loop(listener, tls, api::router(manager.clone()), stop_rx.clone()))];
    if let Some(m) = schedule_config.metrics.as_ref() {
        let l = TcpListener::bind(m.listen)
            .await
            .with_context(|| format!("cannot listen on {} ([metrics] listen)", m.listen))?;
        let metrics_addr = l.local_addr()?;
        write_addr_file(&state_dir.join("metrics.addr"), metrics_addr)?;
        tracing::info!(address = %metrics_addr, "metrics listening (plain HTTP, /metrics only)");
        servers.push(tokio::spawn(accept_loop(l, None, api::metrics_router(manager.clone()), stop_rx.clone())));
    }
    let mut scheduler = start_schedules(&manager, &schedule_config);
    // Not kept: after a reload the manager holds the new config and this one can go.
    drop(schedule_config);

    notify::notify("READY=1");
    let watchdog = notify::watchdog_interval().map(|every| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                notify::notify("WATCHDOG=1");
            }
        })
    });

    let mut hup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading config");
                if manager.reload().is_ok() {
                    for task in scheduler.drain(..) {
                        task.abort();
                    }
                    scheduler = start_schedules(&manager, &manager.config());
                }
            }
        }
    }

    notify::notify("STOPPING=1");
    let _ = stop_tx.send(true);
    for task in scheduler {
        task.abort();
    }
    manager.shutdown(SHUTDOWN_GRACE).await;
    let stopped = serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "pid": std::process::id() });
    if let Err(e) = journal.append(Kind::Stop, stopped) {
        tracing::error!(error = %e, "cannot journal the stop");
    }
    for s in servers {
        let _ = s.await;
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).context("cannot install signal handler")
}

/// Write `state_dir/api.addr` (the bound address, for scripts and tests) atomically.
fn write_addr_file(path: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let tmp = path.with_extension("addr.tmp");
    std::fs::write(&tmp, format!("{addr}\n"))
        .and_then(|_| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The rustls acceptor for the API: certificate chain and key from PEM files; client certificates required
/// when `client_ca` is set.
pub(crate) fn tls_acceptor(t: &ApiTls) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("[api] tls_cert {}: {e}", t.cert.display()))?;
    if certs.is_empty() {
        bail!("[api] tls_cert {}: no PEM certificate in the file", t.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&t.key)
        .map_err(|e| anyhow!("[api] tls_key {}: {e} (a PEM private key is expected)", t.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS versions")?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow!("[api] client_ca {}: {e}", ca.display()))?;
            for c in cas {
                roots.add(c).map_err(|e| anyhow!("[api] client_ca {}: {e}", ca.display()))?;
            }
            if roots.is_empty() {
                bail!("[api] client_ca {}: no PEM certificate in the file", ca.display());
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| anyhow!("[api] client_ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| anyhow!("[api] tls_cert/tls_key {} / {}: {e}", t.cert.display(), t.key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accept connections until `stop`; serve each (after the TLS handshake, if any) on its own task. On stop,
/// open connections finish their requests (up to 5 s) and close.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                    Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake refused"),
                    Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                },
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections did not close within 5s of shutdown");
    }
}

/// Start the periodic runs (`[phase.X] every`), each jittered by up to a tenth of its period so a fleet of
/// agents does not run in step.
fn start_schedules(manager: &Manager, config: &Config) -> Vec<JoinHandle<()>> {
    config
        .phases
        .values()
        .filter_map(|p| p.every.map(|every| (p.name.clone(), every)))
        .map(|(phase, every)| {
            let manager = manager.clone();
            tokio::spawn(async move {
                loop {
                    let jitter_ms = (every.as_millis() / 10).max(1) as u64;
                    let jitter = Duration::from_millis(RandomState::new().hash_one(&phase) % jitter_ms);
                    tokio::time::sleep(every + jitter).await;
                    let trigger = Trigger { source: "schedule".to_owned(), by: None };
                    match manager.trigger(&phase, None, None, trigger, None) {
                        Ok(t) => tracing::debug!(phase = %phase, id = %t.id, "scheduled run started"),
                        Err(TriggerError::Conflict { .. }) => {
                            tracing::info!(phase = %phase, "scheduled run skipped: a run is in progress")
                        }
                        Err(e) => tracing::warn!(phase = %phase, error = %e, "scheduled run not started"),
                    }
                }
            })
        })
        .collect()
}

/// The bound API address written by a running `gonogo serve` in `state_dir`.
pub fn api_addr_file(state_dir: &Path) -> PathBuf {
    state_dir.join("api.addr")
}
