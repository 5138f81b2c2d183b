//! The evidence journal end to end: runs journaled by the real `gonogo run`, then tampered with in every way
//! (edit, remove, reorder, insert, forge, re-sign, change or delete a run document) and checked by the real
//! `gonogo journal verify`, which must name the first bad entry; `gonogo keygen`; `GET /api/v1/journal` on a real
//! `gonogo serve`, whose start, reload, runs and stop are journaled and verify with its public key.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use gonogo::journal::{self, Entry, Journal, Kind};
use gonogo_testkit::tcp::{Listener, open_listener};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::daemon::{Daemon, NOC_TOKEN, Pki, VIEWER_TOKEN, serve_config};
use crate::support::{TempConfig, gonogo, stderr, stdout, write_config};

/// A state directory with a six-entry journal: run_finished (by `gonogo run`), reload, run_finished,
/// decision, stop, run_finished.
struct Fixture {
    config: TempConfig,
    state: PathBuf,
    /// The signing key and its public key (hex), when signed.
    key: Option<(PathBuf, String)>,
    run_ids: Vec<String>,
    _listener: Listener,
}

impl Fixture {
    fn new(signed: bool) -> Fixture {
        let (addr, listener) = open_listener();
        let check = format!(
            "[[check]]\nname = \"app-port\"\nkind = \"tcp\"\ntarget = \"{addr}\"\nphases = [\"pre-migration\"]\n"
        );
        let config = write_config(&check);
        let key = signed.then(|| {
            let path = config.path.with_file_name("journal.key");
            let out = gonogo(&config.path, &["keygen", "--out", path.to_str().expect("utf-8")]);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let text = std::fs::read_to_string(&config.path).expect("read config");
            let text = format!("[evidence]\nsigning_key = \"{}\"\n\n{text}", path.display());
            std::fs::write(&config.path, text).expect("write config");
            (path, stdout(&out).trim().to_owned())
        });
        let state = config.path.with_file_name("state");
        let mut fx = Fixture { config, state, key, run_ids: Vec::new(), _listener: listener };
        fx.run();
        fx.append(Kind::Reload, json!({"ok": true, "problems": 0}));
        fx.run();
        fx.append(Kind::Decision, json!({"gate": "go-live", "decision": "go", "name": "A. Engineer"}));
        fx.append(Kind::Stop, json!({"pid": 1}));
        fx.run();
        assert_eq!(fx.lines().len(), 6);
        fx
    }

    /// `gonogo run pre-migration`, journaled by the CLI.
    fn run(&mut self) {
        let out = gonogo(&self.config.path, &["run", "pre-migration", "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
        assert!(!stderr(&out).contains("not journaled"), "{}", stderr(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
        self.run_ids.push(doc["id"].as_str().expect("id").to_owned());
    }

    fn append(&self, kind: Kind, data: Value) {
        let j = Journal::open(&self.state, self.key.as_ref().map(|(p, _)| p.as_path())).expect("open journal");
        j.append(kind, data).expect("append");
    }

    fn journal_path(&self) -> PathBuf {
        self.state.join(journal::FILE_NAME)
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.journal_path()).expect("read journal").lines().map(str::to_owned).collect()
    }

    fn write(&self, lines: &[String]) {
        std::fs::write(self.journal_path(), lines.iter().map(|l| format!("{l}\n")).collect::<String>())
            .expect("write journal");
    }

    fn entries(&self) -> Vec<Entry> {
        self.lines().iter().map(|l| serde_json::from_str(l).expect("entry")).collect()
    }

    fn verify(&self, args: &[&str]) -> Output {
        let mut all = vec!["journal", "verify"];
        all.extend_from_slice(args);
        gonogo(&self.config.path, &all)
    }
}

fn line_of(e: &Entry) -> String {
    serde_json::to_string(e).expect("json")
}

/// Give `e` the hash of its (changed) content.
fn rehash(e: &mut Entry) {
    e.hash = e.computed_hash().expect("hash");
}

/// `journal verify` exits 1 and names `first` (`seq S (line L): KIND`).
fn assert_fails(out: &Output, first: &str) {
    let text = stdout(out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(out));
    assert!(text.contains("FAILED"), "{text}");
    assert!(text.contains(&format!("first bad entry: {first}")), "expected {first:?} in:\n{text}");
}

fn assert_ok(out: &Output) -> String {
    let text = stdout(out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(out));
    assert!(text.contains(": OK"), "{text}");
    text
}

#[test]
fn an_intact_journal_verifies_and_names_what_it_checked() {
    let fx = Fixture::new(false);
    let entries = fx.entries();
    let kinds: Vec<Kind> = entries.iter().map(|e| e.kind).collect();
    use Kind::*;
    assert_eq!(kinds, [RunFinished, Reload, RunFinished, Decision, Stop, RunFinished]);
    assert_eq!(entries[0].prev, journal::GENESIS);
    for w in entries.windows(2) {
        assert_eq!(w[1].prev, w[0].hash);
    }
    let data = &entries[0].data;
    assert_eq!(data["run_id"], fx.run_ids[0].as_str());
    assert_eq!(
        (data["phase"].as_str(), data["status"].as_str(), data["verdict"].as_str()),
        (Some("pre-migration"), Some("finished"), Some("GO"))
    );
    assert_eq!(data["run_sha256"].as_str().map(str::len), Some(64));
    let text = assert_ok(&fx.verify(&[]));
    assert!(text.contains("6 entries"), "{text}");
    assert!(text.contains("run documents: 3 unchanged"), "{text}");
    assert!(text.contains("not signed"), "{text}");
    // The run documents may be re-saved in another layout: only their content counts.
    let doc_path = fx.state.join("runs").join(format!("{}.json", fx.run_ids[1]));
    let doc: Value = serde_json::from_slice(&std::fs::read(&doc_path).expect("read")).expect("json");
    std::fs::write(&doc_path, serde_json::to_vec(&doc).expect("json")).expect("write");
    assert_ok(&fx.verify(&[]));
}

#[test]
fn an_edited_entry_is_named() {
    let fx = Fixture::new(false);
    let mut lines = fx.lines();
    lines[1] = lines[1].replace(r#""ok":true"#, r#""ok":false"#);
    fx.write(&lines);
    assert_fails(&fx.verify(&[]), "seq 2 (line 2): edited");

    // Recomputing the edited entry's hash breaks the next entry's link instead.
    let fx = Fixture::new(false);
    let mut entries = fx.entries();
    entries[3].data["decision"] = json!("no-go");
    rehash(&mut entries[3]);
    fx.write(&entries.iter().map(line_of).collect::<Vec<_>>());
    assert_fails(&fx.verify(&[]), "seq 5 (line 5): inserted or replaced");

    // Bytes changed around the hashed content (a key added) are an edit too.
    let fx = Fixture::new(false);
    let mut lines = fx.lines();
    lines[2] = lines[2].replacen('{', r#"{"note":"x","#, 1);
    fx.write(&lines);
    assert_fails(&fx.verify(&[]), "seq 3 (line 3): not an entry");
}

#[test]
fn a_removed_entry_is_named() {
    let fx = Fixture::new(false);
    let mut lines = fx.lines();
    lines.remove(2);
    fx.write(&lines);
    let out = fx.verify(&[]);
    assert_fails(&out, "seq 4 (line 3): removed");
    assert!(stdout(&out).contains("entry seq 3 is missing"), "{}", stdout(&out));
}

#[test]
fn reordered_entries_are_named() {
    let fx = Fixture::new(false);
    let mut lines = fx.lines();
    lines.swap(2, 3);
    fx.write(&lines);
    let out = fx.verify(&[]);
    assert_fails(&out, "seq 4 (line 3): reordered");
    assert!(stdout(&out).contains("seq 3 is on line 4"), "{}", stdout(&out));
}

#[test]
fn inserted_entries_are_named() {
    // A forged entry with a correct hash but a prev that does not link.
    let fx = Fixture::new(false);
    let entries = fx.entries();
    let mut forged = entries[2].clone();
    forged.kind = Kind::Decision;
    forged.data = json!({"gate": "go-live", "decision": "go", "name": "Mallory"});
    forged.prev = entries[0].hash.clone();
    rehash(&mut forged);
    let mut lines = fx.lines();
    lines.insert(2, line_of(&forged));
    fx.write(&lines);
    assert_fails(&fx.verify(&[]), "seq 3 (line 3): inserted or replaced");

    // A forged entry out of the sequence.
    let fx = Fixture::new(false);
    let entries = fx.entries();
    let mut forged = entries[1].clone();
    forged.seq = 99;
    rehash(&mut forged);
    let mut lines = fx.lines();
    lines.insert(4, line_of(&forged));
    fx.write(&lines);
    assert_fails(&fx.verify(&[]), "seq 99 (line 5): inserted");

    // A copy of an earlier entry.
    let fx = Fixture::new(false);
    let mut lines = fx.lines();
    let copy = lines[1].clone();
    lines.insert(3, copy);
    fx.write(&lines);
    assert_fails(&fx.verify(&[]), "seq 2 (line 4): inserted");
}

#[test]
fn a_signed_journal_verifies_with_its_public_key_only() {
    let fx = Fixture::new(true);
    let (key_path, public) = fx.key.clone().expect("signed");
    assert!(fx.entries().iter().all(|e| e.sig.as_deref().map(str::len) == Some(128)));
    let text = assert_ok(&fx.verify(&["--pubkey", &public]));
    assert!(text.contains("all 6 verified"), "{text}");
    let pub_file = journal::public_key_path(&key_path);
    assert_ok(&fx.verify(&["--pubkey", pub_file.to_str().expect("utf-8")]));

    let other = key_path.with_file_name("other.key");
    let out = gonogo(&fx.config.path, &["keygen", "--out", other.to_str().expect("utf-8")]);
    let wrong = stdout(&out).trim().to_owned();
    assert_fails(&fx.verify(&["--pubkey", &wrong]), "seq 1 (line 1): signature");

    let bad = fx.verify(&["--pubkey", "not-a-key"]);
    assert_eq!(bad.status.code(), Some(3), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("64 hex characters"), "{}", stderr(&bad));
}

#[test]
fn an_unsigned_journal_fails_when_a_public_key_is_given() {
    let fx = Fixture::new(false);
    assert_fails(&fx.verify(&["--pubkey", &"ab".repeat(32)]), "seq 1 (line 1): unsigned");
}

#[test]
fn a_forged_entry_with_everything_recomputed_fails_only_on_its_signature() {
    let fx = Fixture::new(true);
    let (_, public) = fx.key.clone().expect("signed");
    let mut entries = fx.entries();
    // Insert a decision after seq 2 and rebuild the chain after it: seq, prev and hash all consistent; the
    // forger has no private key, so the signatures are copied from other entries.
    let mut forged = entries[1].clone();
    forged.kind = Kind::Decision;
    forged.data = json!({"gate": "go-live", "decision": "go", "name": "Mallory", "override": false});
    entries.insert(2, forged);
    for i in 2..entries.len() {
        entries[i].seq = i as u64 + 1;
        entries[i].prev = entries[i - 1].hash.clone();
        rehash(&mut entries[i]);
    }
    fx.write(&entries.iter().map(line_of).collect::<Vec<_>>());
    // Without the public key the chain alone looks sound: the output says the signatures were not checked.
    let text = assert_ok(&fx.verify(&[]));
    assert!(text.contains("not checked"), "{text}");
    assert_fails(&fx.verify(&["--pubkey", &public]), "seq 3 (line 3): signature");
}

#[test]
fn a_run_document_changed_or_deleted_after_it_was_journaled_is_named() {
    let fx = Fixture::new(false);
    let doc_path = fx.state.join("runs").join(format!("{}.json", fx.run_ids[1]));
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&doc_path).expect("read")).expect("json");
    doc["checks"][0]["reasons"] = json!(["nothing to see here"]);
    std::fs::write(&doc_path, serde_json::to_vec_pretty(&doc).expect("json")).expect("write");
    let out = fx.verify(&[]);
    assert_fails(&out, "seq 3 (line 3): run document changed");
    assert!(stdout(&out).contains(&fx.run_ids[1]), "{}", stdout(&out));

    std::fs::remove_file(&doc_path).expect("remove");
    let out = fx.verify(&[]);
    assert_fails(&out, "seq 3 (line 3): run document deleted");
    assert!(stdout(&out).contains("retention keep_runs, or removed"), "{}", stdout(&out));
    let text = assert_ok(&fx.verify(&["--allow-pruned"]));
    assert!(text.contains("2 unchanged, 1 deleted by retention"), "{text}");
}

#[test]
fn keygen_refuses_to_overwrite_and_verify_without_a_journal_says_so() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("k.pem");
    let args = ["keygen", "--out", key.to_str().expect("utf-8")];
    let first = gonogo(Path::new("/nonexistent.toml"), &args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let public = stdout(&first).trim().to_owned();
    assert_eq!(public.len(), 64);
    let before = std::fs::read(&key).expect("key");
    assert!(String::from_utf8_lossy(&before).starts_with("-----BEGIN PRIVATE KEY-----"));
    let again = gonogo(Path::new("/nonexistent.toml"), &args);
    assert_eq!(again.status.code(), Some(3));
    assert!(stderr(&again).contains("refusing to overwrite"), "{}", stderr(&again));
    assert_eq!(std::fs::read(&key).expect("key"), before);
    assert_eq!(std::fs::read_to_string(journal::public_key_path(&key)).expect("pub").trim(), public);
    // Only the .pub left over: still refused, the private key is not written.
    std::fs::remove_file(&key).expect("rm");
    assert_eq!(gonogo(Path::new("/nonexistent.toml"), &args).status.code(), Some(3));
    assert!(!key.exists());

    let empty = tempfile::tempdir().expect("tmp");
    let out = gonogo(
        Path::new("/nonexistent.toml"),
        &["journal", "verify", "--state-dir", empty.path().to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("no journal at"), "{}", stderr(&out));
}

/// `gonogo serve` journals its start, runs, reloads and stop, signed; the API serves the entries to a token
/// with the read role.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_journals_and_serves_its_journal() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (addr, _listener) = open_listener();
    let key = dir.path().join("journal.key");
    let public = journal::keygen(&key).expect("keygen");
    let config = format!(
        "{}\n[evidence]\nsigning_key = \"{}\"\n\n[[check]]\nname = \"app-port\"\nkind = \"tcp\"\ntarget = \"{addr}\"\n\
         phases = [\"pre-migration\"]\n",
        serve_config(dir.path(), &pki, false),
        key.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config).unwrap_or_else(|e| panic!("{e}"));
    let client = pki.client(false);
    let get = |path: &str, token: Option<&str>| {
        let mut req = client.get(daemon.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.expect("GET");
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let resp = client
        .post(daemon.url("/api/v1/runs"))
        .bearer_auth(NOC_TOKEN)
        .json(&json!({"phase": "pre-migration"}))
        .send()
        .await
        .expect("trigger");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let id = resp.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let (status, run) = get(&format!("/api/v1/runs/{id}?wait=20s"), Some(VIEWER_TOKEN)).await;
    assert_eq!((status, run["status"].as_str()), (StatusCode::OK, Some("finished")));

    // The run is journaled after it is saved: poll briefly (bounded).
    let mut entries = Vec::new();
    for _ in 0..100 {
        let (status, body) = get("/api/v1/journal", Some(VIEWER_TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        entries = body["entries"].as_array().cloned().unwrap_or_default();
        if entries.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["start", "run_finished"], "{entries:?}");
    assert_eq!(entries[0]["data"]["public_key"], public.as_str());
    assert_eq!(entries[1]["data"]["run_id"], id.as_str());
    assert!(entries.iter().all(|e| e["sig"].as_str().is_some_and(|s| s.len() == 128)));

    let (status, body) = get("/api/v1/journal?after=1", Some(VIEWER_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["entries"].as_array().map(|a| a.iter().map(|e| e["seq"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(2)])
    );
    let (_, body) = get("/api/v1/journal?after=0&limit=1", Some(VIEWER_TOKEN)).await;
    assert_eq!((body["entries"][0]["seq"].as_u64(), body["more"].as_bool()), (Some(1), Some(true)));
    let (_, body) = get("/api/v1/journal?limit=1", Some(VIEWER_TOKEN)).await;
    assert_eq!(body["entries"][0]["seq"].as_u64(), Some(2), "without after: the newest");
    let (status, _) = get("/api/v1/journal", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get("/api/v1/journal?after=x", Some(VIEWER_TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A reload through the API, then a stop.
    let resp = client.post(daemon.url("/api/v1/reload")).bearer_auth(NOC_TOKEN).send().await.expect("reload");
    assert_eq!(resp.status(), StatusCode::OK);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0), "{}", daemon.log());
    let state = dir.path().join("state");
    let lines = std::fs::read_to_string(state.join(journal::FILE_NAME)).expect("journal");
    let kinds: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json")["kind"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(kinds, ["start", "run_finished", "reload", "stop"]);
    let out = gonogo(
        &daemon.config_path,
        &["journal", "verify", "--pubkey", &public, "--state-dir", state.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("4 entries"), "{}", stdout(&out));
}
