//! The evidence journal: `state_dir/journal.jsonl`, an append-only, hash-chained (optionally Ed25519-signed)
//! record of what the agent did: starts and stops, config reloads, every run that ended (with the SHA-256 of its
//! stored document) and every sign-off decision.
//!
//! # Format
//!
//! One JSON object per line, compact, in this key order:
//!
//! ```text
//! {"seq":1,"at":"2026-11-24T10:15:00.123Z","kind":"start","data":{…},"prev":"000…0","hash":"9f2c…","sig":"4a1b…"}
//! ```
//!
//! - `seq` counts from 1 with no gap; `kind` is `start`, `stop`, `reload`, `run_finished` or `decision`.
//! - `prev` is the previous entry's `hash` (64 zeros for the first entry).
//! - `hash` is the lowercase hex SHA-256 of the entry's *canonical form*: the compact JSON of
//!   `{"seq","at","kind","data","prev"}` in that order, exactly as the line starts. Editing any of these
//!   changes the hash; recomputing the hash breaks the next entry's `prev`.
//! - `sig` (present when a signing key is configured) is the Ed25519 signature, lowercase hex, of the 64 ASCII
//!   characters of `hash`. A public key is 32 bytes written as 64 lowercase hex characters.
//! - `run_finished` data: `{"run_id","phase","status","verdict","run_sha256"}`, where `run_sha256` is
//!   [`run_sha256`] of the run document as *stored* (read back from `runs/ID.json`), so a verifier reading the
//!   same file computes the same bytes.
//!
//! # Writing
//!
//! [`Journal::append`] holds a mutex (threads) and an exclusive `flock` on the file (processes: `gonogo run` and
//! `gonogo serve` may share a state directory), reads the last entry back from the file, writes one line with
//! `O_APPEND` and fsyncs it. The chain therefore always continues from what is on disk.
//!
//! A crash during a write can leave an unterminated last line. That entry was never acknowledged, so on the next
//! open or append it is **set aside, not chained to**: its bytes are copied to `journal.jsonl.torn-UNIXMS` and
//! the file is truncated back to the last complete line, with a warning in the log (if the unterminated line is a
//! complete, correctly chained entry that only lacks its line end, the line end is added instead). A *complete*
//! last line that is not a valid entry is not a crash but damage: the journal then refuses every append, saying
//! how to proceed ([`JournalError::Damaged`]).
//!
//! # Verifying
//!
//! [`verify`] (`gonogo journal verify`) only reads files. It checks every entry's canonical form and hash, the
//! `seq` sequence and `prev` links, the signatures (with a public key), and that each journaled run document
//! still hashes to its `run_sha256`; it names the first bad entry by seq and line. Removing entries from the end
//! of the file cannot be detected from the file alone: compare the last seq with a copy (the API's
//! `/api/v1/journal`, a log collector) for that.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use ring::signature::{Ed25519KeyPair, KeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::run::RunRecord;

/// The journal's file name in the state directory.
pub const FILE_NAME: &str = "journal.jsonl";
/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest line read back; anything longer is damage, not an entry.
const MAX_LINE: u64 = 4 * 1024 * 1024;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The daemon started.
    Start,
    /// The daemon stopped.
    Stop,
    /// A config reload was attempted (`data.ok`, `data.problems`).
    Reload,
    /// A run ended and its document was stored.
    RunFinished,
    /// A sign-off decision at a gate.
    Decision,
}

impl Kind {
    /// The name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::Stop => "stop",
            Kind::Reload => "reload",
            Kind::RunFinished => "run_finished",
            Kind::Decision => "decision",
        }
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 1, 2, 3 … without gaps.
    pub seq: u64,
    /// When it was written, RFC 3339 UTC with milliseconds.
    pub at: String,
    pub kind: Kind,
    /// What happened; the shape depends on `kind`.
    pub data: Value,
    /// The previous entry's `hash` ([`GENESIS`] for the first).
    pub prev: String,
    /// Hex SHA-256 of the canonical form ([`Entry::canonical`]).
    pub hash: String,
    /// Hex Ed25519 signature of the ASCII `hash`, when the journal is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// The hashed part of an entry, in its fixed key order.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    at: &'a str,
    kind: Kind,
    data: &'a Value,
    prev: &'a str,
}

impl Entry {
    /// The canonical form: compact JSON of `seq`, `at`, `kind`, `data`, `prev`, in that order.
    pub fn canonical(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&Canonical {
            seq: self.seq,
            at: &self.at,
            kind: self.kind,
            data: &self.data,
            prev: &self.prev,
        })
    }

    /// The hash this entry should carry.
    pub fn computed_hash(&self) -> Result<String, serde_json::Error> {
        Ok(sha256_hex(&self.canonical()?))
    }
}

/// A problem opening, appending to or reading the journal, or with a signing key; the message names the file
/// and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The last complete line is not a valid entry: the journal refuses to continue the chain from it.
    #[error(
        "{path}: {detail}; the journal is not appended to while it is damaged. Run `gonogo journal verify` to \
         find the first bad entry; to start a new journal, move {path} aside (keep it as evidence) and restart"
    )]
    Damaged { path: PathBuf, detail: String },
    /// A line read for the API is not a valid entry.
    #[error("{path} line {line}: not a valid journal entry ({detail}); run `gonogo journal verify`")]
    BadLine { path: PathBuf, line: usize, detail: String },
    /// The signing key cannot be used.
    #[error("signing key {path}: {detail}")]
    Key { path: PathBuf, detail: String },
    /// `keygen` would overwrite a file.
    #[error(
        "{path} already exists; refusing to overwrite a key (move it aside first: entries signed with the old key \
         still need its public key to verify)"
    )]
    Exists { path: PathBuf },
    /// There is no journal to verify.
    #[error("no journal at {path} (the agent writes it once it has started, run or decided something)")]
    Missing { path: PathBuf },
    /// The data does not read back as written (a float that keeps changing across JSON round trips).
    #[error("the data of a {kind} entry does not read back from JSON as written; not journaled (use strings)")]
    Unstable { kind: &'static str },
    /// The run document to journal could not be read back from the store.
    #[error("cannot journal the run: {0}")]
    Run(String),
    /// A value could not be encoded as JSON.
    #[error("cannot encode a journal entry: {0}")]
    Encode(#[from] serde_json::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io { path: path.to_owned(), source }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex (either case); `None` unless every character pair is a hex byte.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok())).collect()
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// SHA-256 (hex) of the canonical run document, `serde_json::to_vec(run)`. Hash the record as loaded from the
/// store, not an in-memory copy: a verifier reads the stored file, and only that parse is reproducible.
pub fn run_sha256(run: &RunRecord) -> Result<String, serde_json::Error> {
    Ok(sha256_hex(&serde_json::to_vec(run)?))
}

/// An exclusive or shared `flock` on the journal, released when dropped.
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    fn take(file: &'a File, path: &Path, op: rustix::fs::FlockOperation) -> Result<Flock<'a>, JournalError> {
        rustix::fs::flock(file, op).map_err(|e| JournalError::Io { path: path.to_owned(), source: e.into() })?;
        Ok(Flock(file))
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(self.0, rustix::fs::FlockOperation::Unlock);
    }
}

/// The end of the file: its last complete line and any unterminated bytes after it.
#[derive(Debug, Default)]
struct Tail {
    /// Offset and bytes (without the line end) of the last complete line.
    last: Option<(u64, Vec<u8>)>,
    /// Offset and bytes of an unterminated last line.
    torn: Option<(u64, Vec<u8>)>,
}

fn read_tail(file: &File, path: &Path) -> Result<Tail, JournalError> {
    let len = file.metadata().map_err(io(path))?.len();
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    // Read backwards until the buffer holds the line end before the last complete line (two line ends), or all.
    while start > 0 && buf.iter().filter(|&&b| b == b'\n').count() < 2 {
        if buf.len() as u64 > 2 * MAX_LINE {
            return Err(JournalError::Damaged {
                path: path.to_owned(),
                detail: format!("the last line is longer than {MAX_LINE} bytes, so it is not an entry"),
            });
        }
        let n = start.min(64 * 1024);
        start -= n;
        let mut chunk = vec![0u8; n as usize];
        file.read_exact_at(&mut chunk, start).map_err(io(path))?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
    let mut tail = Tail::default();
    match buf.iter().rposition(|&b| b == b'\n') {
        None => {
            if !buf.is_empty() {
                tail.torn = Some((start, buf));
            }
        }
        Some(end) => {
            if end + 1 < buf.len() {
                tail.torn = Some((start + end as u64 + 1, buf[end + 1..].to_vec()));
            }
            let begin = buf[..end].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            tail.last = Some((start + begin as u64, buf[begin..end].to_vec()));
        }
    }
    Ok(tail)
}

/// Parse a line as an entry and check that it is in canonical form and carries its own hash.
fn parse_checked(line: &[u8]) -> Result<Entry, String> {
    let entry: Entry = serde_json::from_slice(line).map_err(|e| format!("not a journal entry: {e}"))?;
    let computed = entry.computed_hash().map_err(|e| e.to_string())?;
    if entry.hash != computed {
        return Err(format!("its content does not match its hash (recorded {}, computed {computed})", entry.hash));
    }
    let written = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
    if written != line {
        return Err(
            "the line is not in the form the agent writes (bytes were changed around the hashed content)".to_owned()
        );
    }
    Ok(entry)
}

/// The last entry on disk: where the chain continues.
#[derive(Debug)]
struct Head {
    seq: u64,
    hash: String,
}

/// The append-only journal of one state directory.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    key: Option<Ed25519KeyPair>,
}

impl Journal {
    /// Open (creating, mode 0640) `state_dir/journal.jsonl`, signing every entry with the PKCS#8 Ed25519 key at
    /// `signing_key` when given. Sets aside a torn last line left by a crash; refuses a damaged journal.
    pub fn open(state_dir: &Path, signing_key: Option<&Path>) -> Result<Journal, JournalError> {
        let key = signing_key.map(load_signing_key).transpose()?;
        let path = state_dir.join(FILE_NAME);
        let existed = path.exists();
        let file =
            OpenOptions::new().read(true).append(true).create(true).mode(0o640).open(&path).map_err(io(&path))?;
        if !existed {
            File::open(state_dir).and_then(|d| d.sync_all()).map_err(io(state_dir))?;
        }
        let journal = Journal { path, file: Mutex::new(file), key };
        {
            let file = journal.lock();
            let _flock = Flock::take(&file, &journal.path, rustix::fs::FlockOperation::LockExclusive)?;
            journal.head(&file)?;
        }
        Ok(journal)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, File> {
        // The guarded file handle holds no state a panic could leave half-changed.
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key entries are signed with (hex), if signed.
    pub fn public_key_hex(&self) -> Option<String> {
        self.key.as_ref().map(|k| hex(k.public_key().as_ref()))
    }

    /// Read the last entry back from the file, repairing a torn tail first. Call with the flock held.
    fn head(&self, file: &File) -> Result<Head, JournalError> {
        let tail = read_tail(file, &self.path)?;
        let last = match &tail.last {
            None => None,
            Some((offset, line)) => Some(parse_checked(line).map_err(|detail| JournalError::Damaged {
                path: self.path.clone(),
                detail: format!("the last complete line (at byte {offset}) is damaged: {detail}"),
            })?),
        };
        let mut head =
            last.map_or_else(|| Head { seq: 0, hash: GENESIS.to_owned() }, |e| Head { seq: e.seq, hash: e.hash });
        if let Some((offset, bytes)) = tail.torn {
            match parse_checked(&bytes) {
                Ok(e) if e.seq == head.seq + 1 && e.prev == head.hash => {
                    let mut f: &File = file;
                    f.write_all(b"\n").and_then(|_| file.sync_data()).map_err(io(&self.path))?;
                    tracing::warn!(
                        path = %self.path.display(),
                        seq = e.seq,
                        "journal: the last entry lacked its line end (the agent stopped while writing it); \
                         completed it"
                    );
                    head = Head { seq: e.seq, hash: e.hash };
                }
                _ => {
                    let millis =
                        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis();
                    let aside = self.path.with_file_name(format!("{FILE_NAME}.torn-{millis}"));
                    let mut out =
                        OpenOptions::new().write(true).create_new(true).mode(0o640).open(&aside).map_err(io(&aside))?;
                    out.write_all(&bytes).and_then(|_| out.sync_all()).map_err(io(&aside))?;
                    file.set_len(offset).and_then(|_| file.sync_all()).map_err(io(&self.path))?;
                    tracing::warn!(
                        path = %self.path.display(),
                        bytes = bytes.len(),
                        kept_in = %aside.display(),
                        continues_from = head.seq,
                        "journal: an incomplete last line (the agent stopped while writing it) was set aside"
                    );
                }
            }
        }
        Ok(head)
    }

    /// Append an entry of `kind` with `data`, signed if the journal has a key, and fsync it. Safe to call from
    /// several threads and processes at once.
    pub fn append(&self, kind: Kind, data: Value) -> Result<Entry, JournalError> {
        let file = self.lock();
        let _flock = Flock::take(&file, &self.path, rustix::fs::FlockOperation::LockExclusive)?;
        let head = self.head(&file)?;
        let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut entry = Entry { seq: head.seq + 1, at, kind, data, prev: head.hash, hash: String::new(), sig: None };
        // Hash exactly what a reader parses back from the line. serde_json's float parsing is not always exact,
        // so a float may change on its first round trip or two: settle it, and never write a line that would
        // not verify (it would stop every later append).
        let mut line = Vec::new();
        for _ in 0..4 {
            entry.data = serde_json::from_slice(&serde_json::to_vec(&entry.data)?)?;
            entry.hash = entry.computed_hash()?;
            line = serde_json::to_vec(&entry)?;
            if parse_checked(&line).is_ok() {
                break;
            }
            line.clear();
        }
        if line.is_empty() {
            return Err(JournalError::Unstable { kind: kind.as_str() });
        }
        entry.sig = self.key.as_ref().map(|k| hex(k.sign(entry.hash.as_bytes()).as_ref()));
        line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        let len = file.metadata().map_err(io(&self.path))?.len();
        let mut f: &File = &file;
        if let Err(e) = f.write_all(&line).and_then(|_| file.sync_data()) {
            // Take back a partial line now rather than leave it for the next append to set aside.
            let _ = file.set_len(len);
            return Err(JournalError::Io { path: self.path.clone(), source: e });
        }
        Ok(entry)
    }

    /// Record that run `run_id` ended: loads it back from `state_dir/runs/` (the canonical copy) and appends a
    /// `run_finished` entry with its SHA-256.
    pub fn record_run(&self, store: &crate::store::Store, run_id: &str) -> Result<Entry, JournalError> {
        let run = store
            .load(run_id)
            .map_err(|e| JournalError::Run(e.to_string()))?
            .ok_or_else(|| JournalError::Run(format!("no run {run_id:?} in {}", store.dir().display())))?;
        let data = serde_json::json!({
            "run_id": run.id,
            "phase": run.phase,
            "status": run.status.as_str(),
            "verdict": run.verdict.map(|v| v.as_str()),
            "run_sha256": run_sha256(&run)?,
        });
        self.append(Kind::RunFinished, data)
    }

    /// Entries with `seq > after`, oldest first, at most `limit`; without `after`, the newest `limit`. The bool is
    /// true when more entries follow the last one returned. An unterminated last line (a write in progress) is
    /// not returned.
    pub fn entries(&self, after: Option<u64>, limit: usize) -> Result<(Vec<Entry>, bool), JournalError> {
        read_entries(&self.path, after, limit)
    }
}

/// Read complete lines of the journal at `path`: see [`Journal::entries`].
pub fn read_entries(path: &Path, after: Option<u64>, limit: usize) -> Result<(Vec<Entry>, bool), JournalError> {
    let limit = limit.max(1);
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(JournalError::Io { path: path.to_owned(), source: e }),
    };
    let mut out: VecDeque<Entry> = VecDeque::new();
    let mut more = false;
    let mut lines = Lines::new(file, path);
    while let Some((n, line)) = lines.next_line()? {
        let bytes = match line {
            Line::Complete(bytes) => bytes,
            // A write in progress (or torn by a crash): not an entry yet.
            Line::Unterminated(_) => break,
            Line::TooLong => {
                let detail = format!("longer than {MAX_LINE} bytes");
                return Err(JournalError::BadLine { path: path.to_owned(), line: n, detail });
            }
        };
        let seq_only: SeqOnly = serde_json::from_slice(&bytes).map_err(|e| JournalError::BadLine {
            path: path.to_owned(),
            line: n,
            detail: e.to_string(),
        })?;
        if after.is_some_and(|a| seq_only.seq <= a) {
            continue;
        }
        if after.is_some() && out.len() == limit {
            more = true;
            break;
        }
        let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| JournalError::BadLine {
            path: path.to_owned(),
            line: n,
            detail: e.to_string(),
        })?;
        out.push_back(entry);
        if after.is_none() && out.len() > limit {
            out.pop_front();
        }
    }
    Ok((out.into(), more))
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

enum Line {
    Complete(Vec<u8>),
    /// The last bytes of the file, without a line end.
    Unterminated(Vec<u8>),
    /// Longer than [`MAX_LINE`].
    TooLong,
}

/// Bounded line reader with line numbers (from 1).
struct Lines<'a> {
    reader: BufReader<File>,
    path: &'a Path,
    n: usize,
}

impl<'a> Lines<'a> {
    fn new(file: File, path: &'a Path) -> Lines<'a> {
        Lines { reader: BufReader::new(file), path, n: 0 }
    }

    fn next_line(&mut self) -> Result<Option<(usize, Line)>, JournalError> {
        let mut buf = Vec::new();
        let read = (&mut self.reader).take(MAX_LINE + 1).read_until(b'\n', &mut buf).map_err(io(self.path))?;
        if read == 0 {
            return Ok(None);
        }
        self.n += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            Ok(Some((self.n, Line::Complete(buf))))
        } else if buf.len() as u64 > MAX_LINE {
            Ok(Some((self.n, Line::TooLong)))
        } else {
            Ok(Some((self.n, Line::Unterminated(buf))))
        }
    }
}

/// Read an Ed25519 private key: PKCS#8, PEM (`-----BEGIN PRIVATE KEY-----`, as `gonogo keygen` and
/// `openssl genpkey -algorithm ed25519` write) or DER.
pub fn load_signing_key(path: &Path) -> Result<Ed25519KeyPair, JournalError> {
    let key_err = |detail: String| JournalError::Key { path: path.to_owned(), detail };
    let bytes = fs::read(path)
        .map_err(|e| key_err(format!("cannot read it: {e} (create a key with `gonogo keygen --out FILE`)")))?;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the signing key is readable by other users; chmod 600 it");
    }
    let der = if bytes.starts_with(b"-----BEGIN") {
        PrivatePkcs8KeyDer::from_pem_slice(&bytes)
            .map_err(|e| key_err(format!("not a PEM PKCS#8 private key: {e}")))?
            .secret_pkcs8_der()
            .to_vec()
    } else {
        bytes
    };
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map_err(|e| key_err(format!("not an Ed25519 PKCS#8 private key ({e}); create one with `gonogo keygen`")))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// DER header of ring's PKCS#8 v2 Ed25519 document, before the 32-byte seed.
const RING_V2_PREFIX: [u8; 16] = [0x30, 0x51, 2, 1, 1, 0x30, 5, 6, 3, 0x2b, 0x65, 0x70, 4, 0x22, 4, 0x20];
/// DER header of a PKCS#8 v1 Ed25519 private key (RFC 8410 §7), before the 32-byte seed.
const PKCS8_V1_PREFIX: [u8; 16] = [0x30, 0x2e, 2, 1, 0, 0x30, 5, 6, 3, 0x2b, 0x65, 0x70, 4, 0x22, 4, 0x20];

/// The public key file beside a private key: `FILE.pub`.
pub fn public_key_path(private: &Path) -> PathBuf {
    let mut p = private.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `gonogo keygen`: write a new Ed25519 private key to `out` (PEM PKCS#8, mode 0600) and its public key (64 hex
/// characters and a line end) to `out.pub`; refuses to overwrite either. Returns the public key in hex.
pub fn keygen(out: &Path) -> Result<String, JournalError> {
    let pub_path = public_key_path(out);
    for p in [out, pub_path.as_path()] {
        if p.symlink_metadata().is_ok() {
            return Err(JournalError::Exists { path: p.to_owned() });
        }
    }
    let rng = ring::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| JournalError::Key { path: out.to_owned(), detail: "the system random source failed".into() })?;
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
        .map_err(|e| JournalError::Key { path: out.to_owned(), detail: e.to_string() })?;
    let public = hex(pair.public_key().as_ref());
    // Write the widely read PKCS#8 v1 form (RFC 8410; what `openssl genpkey -algorithm ed25519` writes) rather
    // than ring's v2 document, which OpenSSL does not read: the same seed after a fixed header.
    let der: Vec<u8> = match doc.as_ref().strip_prefix(RING_V2_PREFIX.as_slice()) {
        Some(rest) if rest.len() >= 32 => [PKCS8_V1_PREFIX.as_slice(), &rest[..32]].concat(),
        _ => doc.as_ref().to_vec(),
    };
    let encoded = base64(&der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let write = |path: &Path, mode: u32, body: &[u8]| -> Result<(), JournalError> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                JournalError::Exists { path: path.to_owned() }
            } else {
                JournalError::Io { path: path.to_owned(), source: e }
            }
        })?;
        f.write_all(body).and_then(|_| f.sync_all()).map_err(io(path))
    };
    write(out, 0o600, pem.as_bytes())?;
    write(&pub_path, 0o644, format!("{public}\n").as_bytes())?;
    Ok(public)
}

/// A public key given as 64 hex characters, or as a file holding them (`FILE.pub` from `gonogo keygen`).
pub fn parse_public_key(arg: &str) -> Result<Vec<u8>, String> {
    let path = Path::new(arg);
    let text = if path.is_file() {
        fs::read_to_string(path).map_err(|e| format!("public key file {arg}: {e}"))?
    } else {
        arg.to_owned()
    };
    let text = text.trim();
    match unhex(text) {
        Some(bytes) if bytes.len() == 32 => Ok(bytes),
        _ if path.is_file() => {
            Err(format!("public key file {arg}: expected 64 hex characters (the .pub file `gonogo keygen` wrote)"))
        }
        _ => Err(format!("--pubkey {arg:?}: neither a file nor 64 hex characters (an Ed25519 public key)")),
    }
}

/// What `journal verify` checks beyond the chain.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Ed25519 public key (32 bytes): every entry must be signed and its signature verify.
    pub public_key: Option<Vec<u8>>,
    /// A journaled run document that no longer exists is not a failure (retention deleted it).
    pub allow_pruned: bool,
}

/// What was wrong with the first bad entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The last line is unterminated: the agent stopped while writing it.
    Incomplete,
    /// The line is not a journal entry at all.
    NotAnEntry,
    /// The content does not match its hash, or the line's bytes were changed.
    Edited,
    /// Entries are missing from the sequence.
    Removed,
    /// Entries are out of order.
    Reordered,
    /// An entry that is not part of the chain (duplicate or out-of-range seq).
    Inserted,
    /// `prev` does not match the previous entry's hash: inserted, or replaced with a recomputed one.
    BrokenLink,
    /// No signature although a public key was given.
    Unsigned,
    /// The signature does not verify with the public key.
    Signature,
    /// The run document no longer hashes to `run_sha256`.
    RunChanged,
    /// The run document is gone (retention, or removed).
    RunDeleted,
}

impl ProblemKind {
    /// Short name, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Incomplete => "incomplete",
            ProblemKind::NotAnEntry => "not an entry",
            ProblemKind::Edited => "edited",
            ProblemKind::Removed => "removed",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Inserted => "inserted",
            ProblemKind::BrokenLink => "inserted or replaced",
            ProblemKind::Unsigned => "unsigned",
            ProblemKind::Signature => "signature",
            ProblemKind::RunChanged => "run document changed",
            ProblemKind::RunDeleted => "run document deleted",
        }
    }
}

/// The first bad entry found by [`verify`].
#[derive(Debug, Clone)]
pub struct Problem {
    /// The entry's seq, when the line could be read as an entry.
    pub seq: Option<u64>,
    /// Line number in the file, from 1.
    pub line: usize,
    pub kind: ProblemKind,
    /// One sentence: what is wrong and what it means.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "seq {seq} (line {}): {}: {}", self.line, self.kind.as_str(), self.detail),
            None => write!(f, "line {}: {}: {}", self.line, self.kind.as_str(), self.detail),
        }
    }
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The journal file.
    pub path: PathBuf,
    /// Entries checked and found good (all of them when there is no problem).
    pub entries: u64,
    /// Of those, how many carry a signature.
    pub signed: u64,
    /// True when signatures were verified (a public key was given).
    pub signatures_checked: bool,
    /// Run documents found unchanged.
    pub runs_matched: u64,
    /// Journaled runs whose documents are gone, (seq, run id), accepted with `allow_pruned`.
    pub runs_pruned: Vec<(u64, String)>,
    /// `journal.jsonl.torn-*` files: incomplete lines set aside after a crash.
    pub torn_files: usize,
    /// The first bad entry; `None` when all is well.
    pub problem: Option<Problem>,
}

/// Check the journal of `state_dir` and the run documents it names; reads files only (a shared `flock` keeps a
/// concurrent append from being seen half-written). `Err` only when the journal cannot be read at all.
pub fn verify(state_dir: &Path, opts: &VerifyOptions) -> Result<Report, JournalError> {
    let path = state_dir.join(FILE_NAME);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(JournalError::Missing { path }),
        Err(e) => return Err(JournalError::Io { path, source: e }),
    };
    // Best effort: a read-only copy on a file system without locks is still verified.
    let lock_handle = file.try_clone().map_err(io(&path))?;
    let _flock = Flock::take(&lock_handle, &path, rustix::fs::FlockOperation::LockShared).ok();
    let public_key =
        opts.public_key.as_ref().map(|k| ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, k.clone()));
    let mut report = Report {
        path: path.clone(),
        signatures_checked: public_key.is_some(),
        torn_files: fs::read_dir(state_dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&format!("{FILE_NAME}.torn-"))))
                    .count()
            })
            .unwrap_or(0),
        ..Report::default()
    };
    let mut expected_seq = 1u64;
    let mut prev_hash = GENESIS.to_owned();
    let mut positions: Option<HashMap<u64, Vec<usize>>> = None;
    let mut lines = Lines::new(file, &path);
    while let Some((n, line)) = lines.next_line()? {
        let fail = |seq: Option<u64>, kind: ProblemKind, detail: String| Problem { seq, line: n, kind, detail };
        let bytes = match line {
            Line::Complete(b) => b,
            Line::Unterminated(_) => {
                report.problem = Some(fail(
                    None,
                    ProblemKind::Incomplete,
                    "the last line has no line end: the agent stopped while writing it (crash or power loss); the \
                     agent sets it aside into journal.jsonl.torn-* at its next append"
                        .to_owned(),
                ));
                break;
            }
            Line::TooLong => {
                report.problem = Some(fail(None, ProblemKind::NotAnEntry, format!("longer than {MAX_LINE} bytes")));
                break;
            }
        };
        let entry: Entry = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                let seq = serde_json::from_slice::<SeqOnly>(&bytes).ok().map(|s| s.seq);
                report.problem =
                    Some(fail(seq, ProblemKind::NotAnEntry, format!("not a journal entry ({e}): edited or corrupted")));
                break;
            }
        };
        let seq = Some(entry.seq);
        if let Err(detail) = parse_checked(&bytes) {
            report.problem = Some(fail(seq, ProblemKind::Edited, format!("changed after it was written: {detail}")));
            break;
        }
        if entry.seq != expected_seq {
            let pos = positions.get_or_insert_with(|| seq_positions(&path));
            let lines_of = |s: u64| pos.get(&s).cloned().unwrap_or_default();
            let here = lines_of(entry.seq);
            let total_lines = pos.values().map(Vec::len).sum::<usize>() as u64;
            let (kind, detail) = if here.len() > 1 {
                (
                    ProblemKind::Inserted,
                    format!(
                        "seq {} appears more than once (lines {here:?}): an entry was inserted or copied",
                        entry.seq
                    ),
                )
            } else if entry.seq > expected_seq && lines_of(expected_seq).is_empty() {
                let missing = if entry.seq - expected_seq == 1 {
                    format!("entry seq {expected_seq} is missing")
                } else {
                    format!("entries seq {expected_seq} to {} are missing", entry.seq - 1)
                };
                (ProblemKind::Removed, format!("{missing}: removed from the journal"))
            } else if entry.seq <= total_lines && entry.seq >= 1 {
                let later = lines_of(expected_seq);
                (
                    ProblemKind::Reordered,
                    format!(
                        "expected seq {expected_seq} here, found seq {}{}: entries were reordered",
                        entry.seq,
                        later.first().map(|l| format!(" (seq {expected_seq} is on line {l})")).unwrap_or_default()
                    ),
                )
            } else {
                (
                    ProblemKind::Inserted,
                    format!(
                        "expected seq {expected_seq}, found seq {}: an entry not in the sequence was inserted",
                        entry.seq
                    ),
                )
            };
            report.problem = Some(fail(seq, kind, detail));
            break;
        }
        if entry.prev != prev_hash {
            let detail = if entry.seq == 1 {
                format!(
                    "the first entry's prev should be {GENESIS}: an entry was inserted before it or it was replaced"
                )
            } else {
                format!(
                    "prev does not match the hash of seq {}: this entry was inserted, or seq {} or this one was \
                     replaced with a recomputed hash",
                    entry.seq - 1,
                    entry.seq - 1
                )
            };
            report.problem = Some(fail(seq, ProblemKind::BrokenLink, detail));
            break;
        }
        if entry.sig.is_some() {
            report.signed += 1;
        }
        if let Some(key) = &public_key {
            let Some(sig) = entry.sig.as_deref() else {
                report.problem = Some(fail(
                    seq,
                    ProblemKind::Unsigned,
                    "not signed, but a public key was given: every entry must be signed (was the key configured \
                     later, or the entry forged?)"
                        .to_owned(),
                ));
                break;
            };
            let ok = unhex(sig).is_some_and(|s| key.verify(entry.hash.as_bytes(), &s).is_ok());
            if !ok {
                report.problem = Some(fail(
                    seq,
                    ProblemKind::Signature,
                    "the signature does not verify with the given public key: the entry was forged or re-signed, \
                     or this is the wrong key"
                        .to_owned(),
                ));
                break;
            }
        }
        if entry.kind == Kind::RunFinished {
            match check_run(state_dir, &entry) {
                Ok(RunCheck::Matches) => report.runs_matched += 1,
                Ok(RunCheck::Deleted(id)) if opts.allow_pruned => report.runs_pruned.push((entry.seq, id)),
                Ok(RunCheck::Deleted(id)) => {
                    report.problem = Some(fail(
                        seq,
                        ProblemKind::RunDeleted,
                        format!(
                            "run document runs/{id}.json is deleted (retention keep_runs, or removed); pass \
                             --allow-pruned to accept runs deleted by retention"
                        ),
                    ));
                    break;
                }
                Err((kind, detail)) => {
                    report.problem = Some(fail(seq, kind, detail));
                    break;
                }
            }
        }
        report.entries += 1;
        expected_seq += 1;
        prev_hash = entry.hash;
    }
    Ok(report)
}

/// Line numbers of every seq in the file (lines that are not entries left out).
fn seq_positions(path: &Path) -> HashMap<u64, Vec<usize>> {
    let mut out: HashMap<u64, Vec<usize>> = HashMap::new();
    let Ok(file) = File::open(path) else { return out };
    let mut lines = Lines::new(file, path);
    while let Ok(Some((n, line))) = lines.next_line() {
        if let Line::Complete(b) | Line::Unterminated(b) = line
            && let Ok(s) = serde_json::from_slice::<SeqOnly>(&b)
        {
            out.entry(s.seq).or_default().push(n);
        }
    }
    out
}

enum RunCheck {
    Matches,
    Deleted(String),
}

/// Does the run document named by a `run_finished` entry still hash to its `run_sha256`?
fn check_run(state_dir: &Path, entry: &Entry) -> Result<RunCheck, (ProblemKind, String)> {
    let field = |k: &str| entry.data.get(k).and_then(Value::as_str);
    let (Some(id), Some(recorded)) = (field("run_id"), field("run_sha256")) else {
        return Err((ProblemKind::NotAnEntry, "a run_finished entry without run_id and run_sha256".to_owned()));
    };
    let valid = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err((ProblemKind::NotAnEntry, format!("run_id {id:?} is not a run id")));
    }
    let path = state_dir.join("runs").join(format!("{id}.json"));
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunCheck::Deleted(id.to_owned())),
        Err(e) => return Err((ProblemKind::RunChanged, format!("cannot read {}: {e}", path.display()))),
    };
    let now = serde_json::from_slice::<RunRecord>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|run| run_sha256(&run).map_err(|e| e.to_string()));
    match now {
        Ok(h) if h == recorded => Ok(RunCheck::Matches),
        Ok(h) => Err((
            ProblemKind::RunChanged,
            format!(
                "run document {} changed since it was journaled (SHA-256 now {h}, journaled {recorded})",
                path.display()
            ),
        )),
        Err(e) => Err((
            ProblemKind::RunChanged,
            format!(
                "run document {} is no longer a valid run document ({e}): changed since it was journaled",
                path.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(dir: &Path) -> Vec<String> {
        fs::read_to_string(dir.join(FILE_NAME)).expect("read").lines().map(str::to_owned).collect()
    }

    #[test]
    fn entries_chain_and_verify() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = Journal::open(dir.path(), None).expect("open");
        let a = j.append(Kind::Start, serde_json::json!({"pid": 1})).expect("append");
        let b = j.append(Kind::Reload, serde_json::json!({"ok": true, "problems": 0})).expect("append");
        assert_eq!((a.seq, a.prev.as_str()), (1, GENESIS));
        assert_eq!((b.seq, b.prev.as_str()), (2, a.hash.as_str()));
        assert_eq!(a.hash, sha256_hex(&a.canonical().expect("canonical")));
        let text = lines(dir.path());
        assert!(text[0].starts_with(r#"{"seq":1,"at":""#), "{}", text[0]);
        assert!(text[0].contains(r#""kind":"start","data":{"pid":1},"prev":"000"#), "{}", text[0]);
        assert!(!text[0].contains("\"sig\""));
        // A second handle (another process) continues the same chain.
        let j2 = Journal::open(dir.path(), None).expect("reopen");
        assert_eq!(j2.append(Kind::Stop, Value::Null).expect("append").seq, 3);
        let r = verify(dir.path(), &VerifyOptions::default()).expect("verify");
        assert!(r.problem.is_none(), "{:?}", r.problem);
        assert_eq!(r.entries, 3);
        let (all, more) = j.entries(None, 2).expect("entries");
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert!(!more);
        let (after, more) = j.entries(Some(1), 1).expect("entries");
        assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
        assert!(more);
    }

    #[test]
    fn signed_entries_verify_with_the_public_key_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = dir.path().join("k.pem");
        let public = keygen(&key).expect("keygen");
        assert_eq!(fs::metadata(&key).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(public_key_path(&key)).expect("pub").trim(), public);
        assert!(matches!(keygen(&key), Err(JournalError::Exists { .. })));
        let j = Journal::open(dir.path(), Some(&key)).expect("open");
        assert_eq!(j.public_key_hex().as_deref(), Some(public.as_str()));
        for _ in 0..3 {
            assert!(j.append(Kind::Start, Value::Null).expect("append").sig.is_some());
        }
        let good = VerifyOptions { public_key: Some(unhex(&public).expect("hex")), allow_pruned: false };
        let r = verify(dir.path(), &good).expect("verify");
        assert!(r.problem.is_none(), "{:?}", r.problem);
        assert_eq!((r.entries, r.signed), (3, 3));
        let other = keygen(&dir.path().join("other.pem")).expect("keygen");
        let wrong = VerifyOptions { public_key: Some(unhex(&other).expect("hex")), allow_pruned: false };
        let p = verify(dir.path(), &wrong).expect("verify").problem.expect("problem");
        assert_eq!((p.seq, p.kind), (Some(1), ProblemKind::Signature));
    }

    #[test]
    fn a_torn_tail_is_set_aside_and_a_damaged_tail_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = Journal::open(dir.path(), None).expect("open");
        j.append(Kind::Start, Value::Null).expect("append");
        let path = dir.path().join(FILE_NAME);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(br#"{"seq":2,"at":"2026"#).expect("write");
        let p = verify(dir.path(), &VerifyOptions::default()).expect("verify").problem.expect("problem");
        assert_eq!((p.line, p.kind), (2, ProblemKind::Incomplete));
        let e = j.append(Kind::Stop, Value::Null).expect("append after a torn line");
        assert_eq!(e.seq, 2);
        assert_eq!(lines(dir.path()).len(), 2);
        let r = verify(dir.path(), &VerifyOptions::default()).expect("verify");
        assert!(r.problem.is_none(), "{:?}", r.problem);
        assert_eq!(r.torn_files, 1);

        // A complete entry missing only its line end is kept.
        let text = fs::read_to_string(&path).expect("read");
        let mut more = Journal::open(dir.path(), None).expect("open");
        let third = more.append(Kind::Stop, Value::Null).expect("append");
        fs::write(&path, format!("{text}{}", serde_json::to_string(&third).expect("json"))).expect("write");
        more = Journal::open(dir.path(), None).expect("reopen completes the line");
        assert_eq!(more.append(Kind::Stop, Value::Null).expect("append").seq, 4);

        // A complete but damaged last line stops appends, with the fix in the message.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"seq\":5}\n").expect("write");
        let err = j.append(Kind::Stop, Value::Null).expect_err("damaged");
        assert!(err.to_string().contains("move"), "{err}");
        assert!(Journal::open(dir.path(), None).is_err());
    }

    #[test]
    fn floats_in_data_are_written_so_that_they_verify() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = Journal::open(dir.path(), None).expect("open");
        for i in 1..200u32 {
            let x = f64::from(i) / 7.0 * 1.1e-3 + 0.1 + 0.2;
            j.append(Kind::Decision, serde_json::json!({"x": x, "y": [x * 1e17, 1.0 / x]})).expect("append");
        }
        let r = verify(dir.path(), &VerifyOptions::default()).expect("verify");
        assert!(r.problem.is_none(), "{:?}", r.problem);
        assert_eq!(r.entries, 199);
    }

    #[test]
    fn hex_base64_and_public_keys() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert!(parse_public_key(&"ab".repeat(32)).is_ok());
        assert!(parse_public_key("nope").is_err());
    }
}
