//! Helpers shared by the agent's end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gonogo::run::CheckResult;

/// A config file in its own temporary directory (removed on drop).
pub struct TempConfig {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
}

/// Write `text` as `gonogo.toml` in a fresh temporary directory. Unless the text has its own `[storage]`, runs
/// are recorded in `state/` beside it (never in the machine's /var/lib/gonogo).
pub fn write_config(text: &str) -> TempConfig {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gonogo.toml");
    let text = if text.contains("[storage]") {
        text.to_owned()
    } else {
        format!("{text}\n[storage]\nstate_dir = \"{}\"\n", dir.path().join("state").display())
    };
    std::fs::write(&path, text).expect("write config");
    TempConfig { _dir: dir, path }
}

/// The `gonogo` binary built for these tests.
pub fn gonogo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gonogo")
}

/// Run `gonogo --config PATH ARGS…` with no terminal and a clean GONOGO_CONFIG.
pub fn gonogo(config: &Path, args: &[&str]) -> Output {
    Command::new(gonogo_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("GONOGO_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run gonogo")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parse `text`, plan `phase` and run it through the real engine; results in config order.
pub async fn run_phase(text: &str, phase: &str) -> Vec<CheckResult> {
    let config = gonogo_config::parse(text, Path::new("test.toml")).unwrap_or_else(|p| panic!("config: {p}"));
    let planned =
        gonogo::plan::plan(&config, phase, &[], &std::sync::Arc::new(gonogo::plan::Probes::new())).expect("plan");
    gonogo::engine::execute(planned, config.defaults.concurrency, |_, _, _| {}).await
}

/// Run a config holding exactly one check (in phase `t`) and return its result.
pub async fn run_one(check_toml: &str) -> CheckResult {
    let text = format!("[[check]]\nphases = [\"commissioning\"]\n{check_toml}\n");
    let mut results = run_phase(&text, "commissioning").await;
    assert_eq!(results.len(), 1);
    results.remove(0)
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Run `gonogo run PHASE --format json` on `config` inside a fresh network namespace (only `lo`, down, and
/// net.ipv4.ping_group_range at its kernel default), after the shell `prefix` (which ends by exec'ing, or is
/// empty). Returns the JSON document with the exit code added as `exit_code`, or `None` (with a SKIPPED
/// message) where namespaces cannot be made: needs root, `unshare`, `setpriv` and `ip`.
pub fn run_in_fresh_netns(config: &str, phase: &str, prefix: &str) -> Option<serde_json::Value> {
    if !is_root() || !["unshare", "setpriv", "ip"].iter().all(|t| have(t)) {
        eprintln!("SKIPPED: needs root with unshare, setpriv and ip (util-linux, iproute2)");
        return None;
    }
    let cfg = write_config(config);
    let command = format!("{} --config {} run {phase} --format json", gonogo_bin(), cfg.path.display());
    let script = if prefix.is_empty() { format!("exec {command}") } else { format!("{prefix} {command}") };
    let out = Command::new("unshare").args(["--net", "sh", "-c", &script]).output().expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim().is_empty() {
        eprintln!("SKIPPED: could not run in a network namespace here: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let mut doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    doc["exit_code"] = out.status.code().into();
    Some(doc)
}

/// Run `gonogo run PHASE --format json` on `config` in a private mount namespace whose /etc/hosts is `hosts`
/// (the machine's own file is untouched), so a test can give a name both an IPv4 and an IPv6 loopback address.
/// `None` (with a SKIPPED message) where that cannot be done: needs root, `unshare` and `mount`.
pub fn run_with_hosts(hosts: &str, config: &str, phase: &str) -> Option<serde_json::Value> {
    if !is_root() || !["unshare", "mount"].iter().all(|t| have(t)) {
        eprintln!("SKIPPED: needs root with unshare and mount (util-linux)");
        return None;
    }
    let cfg = write_config(config);
    let hosts_file = cfg.path.with_file_name("hosts");
    std::fs::write(&hosts_file, hosts).expect("write hosts");
    let script = format!(
        "mount --bind {} /etc/hosts && exec {} --config {} run {phase} --format json",
        hosts_file.display(),
        gonogo_bin(),
        cfg.path.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim().is_empty() {
        eprintln!("SKIPPED: could not run in a mount namespace here: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let mut doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    doc["exit_code"] = out.status.code().into();
    Some(doc)
}

/// `promtool check metrics` on a scraped `text` (written as `dir/NAME.txt`), when promtool is installed: CI
/// installs Debian's prometheus package; elsewhere this says SKIPPED.
pub fn promtool_check(text: &str, dir: &Path, name: &str) {
    if !have("promtool") {
        eprintln!("SKIPPED promtool check: promtool not installed (apt-get install prometheus)");
        return;
    }
    let file = dir.join(format!("{name}.txt"));
    std::fs::write(&file, text).expect("write");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", file.display()))
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed for {name}:\n{text}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Parse Prometheus text: the value of the sample `name{labels}` whose labels include all of `want`.
pub fn sample(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (n, labels) = series.split_once('{').map_or((series, ""), |(n, l)| (n, l));
        (n == name && want.iter().all(|(k, v)| labels.contains(&format!("{k}=\"{v}\"")))).then(|| value.parse().ok())?
    })
}
