//! The run manager of `gonogo serve`: starts runs (one per phase at a time), cancels them, lets callers wait
//! for them, records every transition in the store and the metrics, and swaps the config on reload.
//!
//! Locking: one short `std::sync::Mutex` guards the table of active runs and idempotency keys; nothing awaits
//! while holding it. Each run's task owns its record; callers see it through the store and a `watch` channel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use gonogo_config::{Config, Problems};
use tokio::sync::watch;

use crate::engine;
use crate::journal::{Journal, Kind};
use crate::metrics::Metrics;
use crate::plan::{self, PlanError, Probes};
use crate::run::{RunRecord, RunStatus, Trigger};
use crate::store::{Store, StoreError};

/// How long an Idempotency-Key is remembered.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// Most idempotency keys remembered at once (oldest forgotten first beyond that).
const IDEMPOTENCY_MAX: usize = 10_000;

/// Why a trigger was refused.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The phase is unknown or has no checks.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A run of this phase is already queued or running.
    #[error("a run of phase {phase:?} is already in progress: {running}")]
    Conflict { phase: String, running: String },
    /// The `baseline_run` named in the trigger cannot serve as the baseline.
    #[error("{0}")]
    Baseline(String),
    /// The agent is shutting down.
    #[error("the agent is shutting down; no new runs are started")]
    ShuttingDown,
    /// The run could not be recorded, so it was not started (evidence first).
    #[error("cannot record the run, so it was not started: {0}")]
    Store(#[from] StoreError),
}

/// Why an active run is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    No,
    Cancel,
    Shutdown,
}

#[derive(Debug)]
struct Active {
    id: String,
    stop: watch::Sender<Stop>,
    done: watch::Receiver<bool>,
}

#[derive(Debug, Default)]
struct State {
    /// Active runs by phase.
    active: HashMap<String, Active>,
    /// Idempotency key → (run id, when first seen).
    idempotency: HashMap<String, (String, Instant)>,
    shutting_down: bool,
}

/// Shared handle to the run manager.
#[derive(Debug, Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config_path: PathBuf,
    /// The config in force and its probes, replaced together by a reload.
    loaded: RwLock<(Arc<Config>, Arc<Probes>)>,
    store: Store,
    metrics: Arc<Metrics>,
    journal: Option<Arc<Journal>>,
    state: Mutex<State>,
}

/// What a trigger produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triggered {
    pub id: String,
    /// False when an Idempotency-Key matched an earlier trigger and its run is returned instead.
    pub created: bool,
}

impl Manager {
    /// A manager for `config` (read from `config_path`), recording in `store` and, when given, `journal`.
    pub fn new(
        config_path: &Path,
        config: Config,
        store: Store,
        metrics: Arc<Metrics>,
        journal: Option<Arc<Journal>>,
    ) -> Manager {
        Manager {
            inner: Arc::new(Inner {
                config_path: config_path.to_owned(),
                loaded: RwLock::new((Arc::new(config), Arc::new(Probes::new()))),
                store,
                metrics,
                journal,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only maps of plain data behind; keep serving.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.inner.loaded.read().unwrap_or_else(|p| p.into_inner()).0)
    }

    /// The config in force and its probes (built on first use, shared by runs and `GET /probe`).
    pub fn loaded(&self) -> (Arc<Config>, Arc<Probes>) {
        let loaded = self.inner.loaded.read().unwrap_or_else(|p| p.into_inner());
        (Arc::clone(&loaded.0), Arc::clone(&loaded.1))
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The evidence journal, when the agent keeps one.
    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.inner.journal.as_ref()
    }

    /// Start a run of `phase` now, unless one is in progress (conflict) or `idempotency_key` names an earlier
    /// trigger (its run is returned). The run is recorded as `queued` before this returns.
    pub fn trigger(
        &self,
        phase: &str,
        change_ref: Option<String>,
        idempotency_key: Option<String>,
        trigger: Trigger,
        baseline_run: Option<String>,
    ) -> Result<Triggered, TriggerError> {
        let (config, probes) = self.loaded();
        let mut state = self.state();
        if state.shutting_down {
            return Err(TriggerError::ShuttingDown);
        }
        let now = Instant::now();
        state.idempotency.retain(|_, (_, seen)| now.duration_since(*seen) < IDEMPOTENCY_TTL);
        if let Some(key) = &idempotency_key
            && let Some((id, _)) = state.idempotency.get(key)
        {
            return Ok(Triggered { id: id.clone(), created: false });
        }
        if let Some(active) = state.active.get(phase) {
            return Err(TriggerError::Conflict { phase: phase.to_owned(), running: active.id.clone() });
        }
        let planned = plan::plan(&config, phase, &[], &probes)?;
        if let Some(id) = &baseline_run {
            let wanted = config.phases.get(phase).and_then(|p| p.baseline.clone());
            match (self.inner.store.load(id), wanted) {
                (_, None) => return Err(TriggerError::Baseline(format!("phase {phase:?} has no baseline phase"))),
                (Ok(Some(r)), Some(b)) if r.phase == b && r.status == RunStatus::Finished => {}
                (Ok(Some(r)), Some(b)) => {
                    return Err(TriggerError::Baseline(format!(
                        "baseline_run {id} is a {} run of {}; a finished run of {b} is needed",
                        r.status, r.phase
                    )));
                }
                (Ok(None) | Err(_), _) => return Err(TriggerError::Baseline(format!("no run {id:?} in the store"))),
            }
        }
        let mut run = RunRecord::new(&config, phase, trigger, change_ref, false);
        self.inner.store.save(&run)?;
        let id = run.id.clone();
        let (stop_tx, mut stop_rx) = watch::channel(Stop::No);
        let (done_tx, done_rx) = watch::channel(false);
        state.active.insert(phase.to_owned(), Active { id: id.clone(), stop: stop_tx, done: done_rx });
        if let Some(key) = idempotency_key {
            if state.idempotency.len() >= IDEMPOTENCY_MAX
                && let Some(oldest) = state.idempotency.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| k.clone())
            {
                state.idempotency.remove(&oldest);
            }
            state.idempotency.insert(key, (id.clone(), now));
        }
        drop(state);

        let manager = self.clone();
        let concurrency = config.defaults.concurrency;
        let config = Arc::clone(&config);
        tokio::spawn(async move {
            let phase = run.phase.clone();
            run.start();
            manager.save(&run);
            manager.metrics().set_in_progress(&phase, true);
            let stopped = async {
                let _ = stop_rx.wait_for(|s| *s != Stop::No).await;
                *stop_rx.borrow()
            };
            tokio::select! {
                checks = engine::execute(planned, concurrency, |_, _, _| {}) => {
                    run.finish(checks);
                    if let Some(why) = run.compare_with_baseline(&config, manager.store(), baseline_run.as_deref()) {
                        tracing::info!(id = %run.id, "no baseline comparison: {why}");
                    }
                }
                stop = stopped => match stop {
                    Stop::Shutdown => run.abandon(
                        RunStatus::Interrupted,
                        "the agent was shut down before this run finished".to_owned(),
                    ),
                    _ => run.abandon(RunStatus::Cancelled, "cancelled through the API".to_owned()),
                },
            }
            manager.save(&run);
            if let Some(journal) = manager.journal()
                && let Err(e) = journal.record_run(manager.store(), &run.id)
            {
                tracing::error!(id = %run.id, error = %e, "cannot journal the run");
            }
            manager.metrics().observe_run(&run);
            manager.metrics().set_in_progress(&phase, false);
            if let Err(e) = manager.inner.store.prune() {
                tracing::warn!(error = %e, "retention: could not delete old runs");
            }
            tracing::info!(
                phase = %run.phase,
                id = %run.id,
                status = %run.status,
                verdict = run.verdict.map_or("-", |v| v.as_str()),
                duration_ms = run.duration.as_millis() as u64,
                trigger = %run.trigger.source,
                "run ended"
            );
            {
                let mut state = manager.state();
                if state.active.get(&phase).is_some_and(|a| a.id == run.id) {
                    state.active.remove(&phase);
                }
            }
            let _ = done_tx.send(true);
            // The run's checks, observations and documents are gone now; give their heap back (see `memory`).
            drop(run);
            crate::memory::release_free_heap_soon();
        });
        Ok(Triggered { id, created: true })
    }

    /// Save a run; a failure is logged loudly (the run goes on: its result is still served from memory of the
    /// metrics and logs, and the next save may succeed).
    fn save(&self, run: &RunRecord) {
        if let Err(e) = self.inner.store.save(run) {
            tracing::error!(id = %run.id, error = %e, "cannot record run");
        }
    }

    /// Cancel the active run `id`. `Ok(true)` when it was active and is being cancelled, `Ok(false)` when it
    /// is not active (finished, or unknown).
    pub fn cancel(&self, id: &str) -> bool {
        let state = self.state();
        match state.active.values().find(|a| a.id == id) {
            Some(active) => {
                let _ = active.stop.send(Stop::Cancel);
                true
            }
            None => false,
        }
    }

    /// Wait up to `limit` for run `id` to end (returns at once if it is not active).
    pub async fn wait(&self, id: &str, limit: Duration) {
        let done = self.state().active.values().find(|a| a.id == id).map(|a| a.done.clone());
        if let Some(mut done) = done {
            let _ = tokio::time::timeout(limit, done.wait_for(|d| *d)).await;
        }
    }

    /// Ids of the runs in progress, by phase.
    pub fn active(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self.state().active.iter().map(|(p, a)| (p.clone(), a.id.clone())).collect();
        v.sort();
        v
    }

    /// Re-read the config file. A valid config takes effect for new runs; an invalid one is refused, the old one
    /// stays, and the metrics say so.
    pub fn reload(&self) -> Result<(), Problems> {
        let at = engine::unix_now() as f64;
        let result = match gonogo_config::load(&self.inner.config_path) {
            Ok(new) => {
                let old = self.config();
                for phase in old.phases.keys().filter(|p| !new.phases.contains_key(*p)) {
                    self.metrics().forget_phase(phase);
                }
                self.metrics().set_schedules(&new);
                *self.inner.loaded.write().unwrap_or_else(|p| p.into_inner()) =
                    (Arc::new(new), Arc::new(Probes::new()));
                self.metrics().reload(true, at);
                tracing::info!(path = %self.inner.config_path.display(), "config reloaded");
                Ok(())
            }
            Err(problems) => {
                self.metrics().reload(false, at);
                for p in problems.iter() {
                    tracing::error!(problem = %p, "config reload refused; the previous config stays in force");
                }
                Err(problems)
            }
        };
        crate::memory::release_free_heap_soon();
        if let Some(journal) = self.journal() {
            let data =
                serde_json::json!({ "ok": result.is_ok(), "problems": result.as_ref().err().map_or(0, |p| p.len()) });
            if let Err(e) = journal.append(Kind::Reload, data) {
                tracing::error!(error = %e, "cannot journal the config reload");
            }
        }
        result
    }

    /// Stop starting runs; give active runs `grace` to finish, then record the rest as `interrupted`.
    pub async fn shutdown(&self, grace: Duration) {
        let waiting: Vec<watch::Receiver<bool>> = {
            let mut state = self.state();
            state.shutting_down = true;
            state.active.values().map(|a| a.done.clone()).collect()
        };
        let all_done = async {
            for mut done in waiting.clone() {
                let _ = done.wait_for(|d| *d).await;
            }
        };
        if tokio::time::timeout(grace, all_done).await.is_ok() {
            return;
        }
        let remaining: Vec<watch::Receiver<bool>> = {
            let state = self.state();
            for a in state.active.values() {
                let _ = a.stop.send(Stop::Shutdown);
            }
            state.active.values().map(|a| a.done.clone()).collect()
        };
        // Recording an interrupted run is a few file writes: bounded, but do not hang shutdown on a bad disk.
        let recorded = async {
            for mut done in remaining {
                let _ = done.wait_for(|d| *d).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), recorded).await;
    }
}
