//! The run store: one JSON document per run under `state_dir/runs/`, the evidence a migration is signed off on.
//!
//! Every write goes to a temporary file that is fsynced, renamed over the document and followed by an fsync
//! of the directory, so a crash leaves either the old or the new document, never half of one. At start-up
//! [`Store::recover`] marks runs left `queued` or `running` by a dead process as `interrupted`: a run is never
//! lost and never stuck. Retention keeps the newest `keep` runs.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::run::{RunRecord, RunStatus};

/// A problem with the state directory or a document in it; the message names the path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid run document: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("{0:?} is not a run id (letters, digits, '-', '_' and '.' only)")]
    BadId(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_owned(), source }
}

/// The runs directory of a state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    keep: usize,
}

impl Store {
    /// Open (creating if needed, mode 0750) `state_dir/runs`, keeping at most `keep` runs.
    pub fn open(state_dir: &Path, keep: usize) -> Result<Store, StoreError> {
        let dir = state_dir.join("runs");
        fs::DirBuilder::new().recursive(true).mode(0o750).create(&dir).map_err(io(&dir))?;
        // Creating the directory proves little on a read-only mount that already has it: prove we can write.
        let probe = dir.join(".write-test");
        File::create(&probe).map_err(io(&dir))?;
        let _ = fs::remove_file(&probe);
        Ok(Store { dir, keep: keep.max(1) })
    }

    /// Where the runs live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &str) -> Result<PathBuf, StoreError> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && !id.starts_with('.')
            && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok { Ok(self.dir.join(format!("{id}.json"))) } else { Err(StoreError::BadId(id.to_owned())) }
    }

    /// Write `run` durably (temp file, fsync, rename, fsync of the directory).
    pub fn save(&self, run: &RunRecord) -> Result<(), StoreError> {
        let path = self.path_of(&run.id)?;
        let tmp = self.dir.join(format!(".{}.json.tmp", run.id));
        let body =
            serde_json::to_vec_pretty(run).map_err(|source| StoreError::Corrupt { path: path.clone(), source })?;
        let mut f =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o640).open(&tmp).map_err(io(&tmp))?;
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(io(&tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io(&self.dir))?;
        Ok(())
    }

    /// The run with this id, if stored.
    pub fn load(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let path = self.path_of(id)?;
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map(Some).map_err(|source| StoreError::Corrupt { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    /// Stored run ids, newest first (ids sort by creation time).
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = fs::read_dir(&self.dir)
            .map_err(io(&self.dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_owned))
            .filter(|id| !id.starts_with('.'))
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    /// Up to `limit` runs, newest first, of `phase` if given. Unreadable documents are skipped with a warning.
    pub fn list(&self, phase: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            if out.len() >= limit {
                break;
            }
            match self.load(&id) {
                Ok(Some(run)) if phase.is_none_or(|p| run.phase == p) => out.push(run),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "skipping unreadable run document"),
            }
        }
        Ok(out)
    }

    /// The newest finished run of `phase` that ran every check (not a `--check` selection): what baselines and
    /// gates rely on.
    pub fn latest_finished(&self, phase: &str) -> Result<Option<RunRecord>, StoreError> {
        self.newest(phase, |r| r.status == RunStatus::Finished && !r.partial)
    }

    /// The newest run of `phase` for which `matches` holds. Documents are loaded one at a time and dropped unless
    /// they match: a run of 1,000 checks is about 1 MB, and collecting every candidate first held up to
    /// `keep` of them in memory at once.
    pub fn newest(&self, phase: &str, matches: impl Fn(&RunRecord) -> bool) -> Result<Option<RunRecord>, StoreError> {
        for id in self.ids()? {
            match self.load(&id) {
                Ok(Some(run)) if run.phase == phase && matches(&run) => return Ok(Some(run)),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "skipping unreadable run document"),
            }
        }
        Ok(None)
    }

    /// Mark every run a dead process left `queued` or `running` as `interrupted`; returns their ids.
    pub fn recover(&self) -> Result<Vec<String>, StoreError> {
        let mut recovered = Vec::new();
        for id in self.ids()? {
            match self.load(&id) {
                Ok(Some(mut run)) if !run.status.is_final() => {
                    run.abandon(
                        RunStatus::Interrupted,
                        "the agent stopped before this run finished (crash, kill or power loss)".to_owned(),
                    );
                    self.save(&run)?;
                    recovered.push(id);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "skipping unreadable run document"),
            }
        }
        // Temporary files of writes that never completed.
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.filter_map(|e| e.ok()) {
                if e.file_name().to_str().is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp")) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(recovered)
    }

    /// Delete the oldest finished runs beyond the retention count; returns how many were deleted. Runs still
    /// in progress are never deleted.
    pub fn prune(&self) -> Result<usize, StoreError> {
        let ids = self.ids()?;
        let mut deleted = 0;
        for id in ids.iter().skip(self.keep) {
            let path = self.path_of(id)?;
            let in_progress = matches!(self.load(id), Ok(Some(r)) if !r.status.is_final());
            if !in_progress {
                fs::remove_file(&path).map_err(io(&path))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::run::Trigger;

    fn config() -> gonogo_config::Config {
        let text = "[[check]]\nname = \"p\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nphases = [\"regression\"]\n";
        gonogo_config::parse(text, Path::new("t.toml")).expect("config")
    }

    fn record(phase: &str) -> RunRecord {
        RunRecord::new(&config(), phase, Trigger { source: "cli".into(), by: None }, Some("CHG-1".into()), false)
    }

    #[test]
    fn save_load_roundtrip_and_no_temp_files_left() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 10).expect("open");
        let mut run = record("regression");
        run.start();
        run.finish(vec![]);
        store.save(&run).expect("save");
        let back = store.load(&run.id).expect("load").expect("present");
        assert_eq!(back.id, run.id);
        assert_eq!(back.status, RunStatus::Finished);
        assert_eq!(back.change_ref.as_deref(), Some("CHG-1"));
        let names: Vec<_> = fs::read_dir(store.dir()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(store.load("20990101T000000000Z-none-0000").expect("load").is_none());
    }

    #[test]
    fn ids_that_could_escape_the_directory_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 10).expect("open");
        for bad in ["../etc/passwd", "a/b", "", ".hidden", "a b"] {
            assert!(matches!(store.load(bad), Err(StoreError::BadId(_))), "{bad:?}");
        }
    }

    #[test]
    fn recover_marks_unfinished_runs_interrupted_and_keeps_finished_ones() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 10).expect("open");
        let mut running = record("regression");
        running.start();
        store.save(&running).expect("save");
        let mut done = record("pre-migration");
        done.start();
        done.finish(vec![]);
        store.save(&done).expect("save");
        fs::write(store.dir().join(".x.json.tmp"), b"{").expect("tmp file");
        assert_eq!(store.recover().expect("recover"), vec![running.id.clone()]);
        let back = store.load(&running.id).expect("load").expect("present");
        assert_eq!(back.status, RunStatus::Interrupted);
        assert!(back.blocking[0].contains("stopped before this run finished"));
        assert_eq!(store.load(&done.id).expect("load").expect("present").status, RunStatus::Finished);
        assert!(!store.dir().join(".x.json.tmp").exists());
        assert!(store.recover().expect("again").is_empty());
    }

    #[test]
    fn newest_skips_other_phases_and_runs_that_do_not_match() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 10).expect("open");
        let save = |i: u32, phase: &str, finish: bool, partial: bool| {
            let mut r = record(phase);
            r.id = format!("2026010{i}T000000000Z-{phase}-0000");
            r.partial = partial;
            r.start();
            if finish {
                r.finish(vec![]);
            }
            store.save(&r).expect("save");
            r.id
        };
        let full = save(1, "regression", true, false);
        let _partial = save(2, "regression", true, true);
        let _running = save(3, "regression", false, false);
        let _other = save(4, "pre-migration", true, false);
        let latest = store.latest_finished("regression").expect("read").expect("found");
        assert_eq!(latest.id, full);
        let newest_any = store.newest("regression", |_| true).expect("read").expect("found");
        assert_eq!(newest_any.status, RunStatus::Running);
        assert!(store.newest("rollback-verify", |_| true).expect("read").is_none());
    }

    #[test]
    fn prune_keeps_the_newest_and_list_filters_by_phase() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 3).expect("open");
        let mut ids = Vec::new();
        for i in 0..5 {
            let mut r = record(if i % 2 == 0 { "regression" } else { "pre-migration" });
            r.id = format!("2026010{i}T000000000Z-{}-0000", r.phase);
            r.start();
            r.finish(vec![]);
            store.save(&r).expect("save");
            ids.push(r.id);
        }
        assert_eq!(store.prune().expect("prune"), 2);
        let left = store.ids().expect("ids");
        assert_eq!(left, vec![ids[4].clone(), ids[3].clone(), ids[2].clone()]);
        let reg = store.list(Some("regression"), 10).expect("list");
        assert_eq!(reg.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [ids[4].as_str(), ids[2].as_str()]);
        assert_eq!(store.list(None, 1).expect("list").len(), 1);
    }

    #[test]
    fn a_corrupt_document_is_reported_with_its_path_and_skipped_in_lists() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path(), 10).expect("open");
        fs::write(store.dir().join("20260101T000000000Z-x-0000.json"), b"{not json").expect("write");
        let err = store.load("20260101T000000000Z-x-0000").expect_err("corrupt");
        assert!(err.to_string().contains("20260101T000000000Z-x-0000.json"), "{err}");
        assert!(store.list(None, 10).expect("list").is_empty());
    }
}
