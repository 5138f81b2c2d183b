//! The `gonogo` command line: argument parsing, exit codes, and the one-shot commands.
//!
//! Exit codes of `gonogo run`: 0 GO, 1 NO-GO, 2 INCONCLUSIVE, 3 config or usage error. Every other command
//! exits 0 on success and 3 on a config or usage error.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gonogo_config::Config;

use crate::engine;
use crate::output::{self, Format};
use crate::plan;
use crate::report::{self, ReportFormat};
use crate::run::{RunRecord, Trigger};
use crate::store::Store;
use crate::verdict::Outcome;

/// Exit code for a config or usage error.
pub const EXIT_USAGE: u8 = 3;

/// Default config path when neither --config nor GONOGO_CONFIG is given.
pub const DEFAULT_CONFIG: &str = "/etc/gonogo/gonogo.toml";

/// Network tests for a site migration, with a GO / NO-GO verdict per phase.
///
/// Phases: commissioning, pre-migration, post-migration, regression, rollback-verify (and any declared in
/// the config). Checks: icmp, tcp, dns, tls, http.
#[derive(Debug, Parser)]
#[command(name = "gonogo", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    /// Config file.
    #[arg(long, short = 'c', global = true, env = "GONOGO_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// Log format on stderr: text for people, json for log collectors. Level: GONOGO_LOG (e.g. debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the checks of a phase and print a verdict (exit 0 GO, 1 NO-GO, 2 INCONCLUSIVE, 3 config error).
    Run {
        /// The phase to run, e.g. pre-migration.
        phase: String,
        /// Run only this check (repeat for several). The verdict then covers only these checks.
        #[arg(long = "check", value_name = "NAME")]
        checks: Vec<String>,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Compare with this recorded run instead of the latest finished run of the phase's baseline phase.
        #[arg(long, value_name = "RUN")]
        baseline: Option<String>,
        /// The change reference (RFC number) this run belongs to, recorded with it.
        #[arg(long, value_name = "REF")]
        change_ref: Option<String>,
    },
    /// Compare two recorded runs offline: what RUN broke (regression), what was already broken in BASE
    /// (pre-existing), what it fixed (exit 0 without regressions, 1 with).
    Diff {
        /// The baseline run (e.g. the pre-migration run).
        base: String,
        /// The run to judge against it (e.g. the post-migration run).
        run: String,
        /// Output format (table or json).
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Evaluate a go/no-go gate: GO only when the latest run of every required phase is GO and fresh (exit 0
    /// GO, 1 NO-GO).
    Gate {
        /// The gate, e.g. go-live.
        name: String,
        /// Output format (table or json).
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Record a sign-off decision at a gate in the evidence journal, with the runs and hashes it relied on
    /// (refused on stale evidence, and for `go` at a gate that is not GO unless --override gives a reason).
    Signoff {
        /// The gate, e.g. go-live.
        #[arg(long)]
        gate: String,
        /// The decision.
        #[arg(long, value_enum)]
        decision: crate::gates::DecisionKind,
        /// Who decides.
        #[arg(long)]
        name: String,
        /// Their role, e.g. "Change manager".
        #[arg(long)]
        role: String,
        /// Their organisation, e.g. the trust or the CN-SP.
        #[arg(long)]
        organisation: String,
        /// A note kept with the decision.
        #[arg(long)]
        note: Option<String>,
        /// Go although the gate is not GO, for this reason (recorded as an override).
        #[arg(long = "override", value_name = "REASON")]
        override_reason: Option<String>,
    },
    /// A walk-through of a whole migration in a few seconds, with no config and no network beyond loopback:
    /// commissioning, pre-migration, a simulated bad change, post-migration's NO-GO, and the HTML report.
    Demo {
        /// Where to write the HTML report.
        #[arg(long, default_value = "gonogo-demo-report.html")]
        out: PathBuf,
    },
    /// Validate the config file and report every problem with its line and column (exit 0 valid, 3 not).
    CheckConfig {
        /// The file to check (default: --config).
        file: Option<PathBuf>,
    },
    /// List the phases and their checks.
    List {
        /// Only this phase.
        phase: Option<String>,
    },
    /// Run as a daemon: the HTTPS API for the CN-SP, /metrics for Prometheus, scheduled phases, SIGHUP reload.
    Serve,
    /// List recorded runs, newest first (from the state directory).
    Runs {
        /// Only runs of this phase.
        #[arg(long)]
        phase: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Output format (table or json).
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show one recorded run.
    Show {
        /// The run id (see `gonogo runs`).
        id: String,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Write a report of a recorded run: one self-contained HTML file, Markdown, JSON, JUnit, or a readiness
    /// sheet as CSV (check, result Yes/No, evidence).
    Report {
        /// The run id (see `gonogo runs`).
        id: String,
        /// Report format.
        #[arg(long, short = 'f', value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// Write the report to this file instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Make an Ed25519 key for signing the journal (`[evidence] signing_key`): the private key (PEM PKCS#8,
    /// mode 0600) into FILE, the public key (64 hex characters) into FILE.pub and on stdout. Never overwrites.
    Keygen {
        /// Where to write the private key, e.g. /etc/gonogo/journal.key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// The evidence journal, state_dir/journal.jsonl.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Print a shell completion script on stdout (the Debian package installs those for bash, zsh and fish).
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page gonogo(1) on stdout, or write it and one page per command into a directory (for
    /// packaging).
    #[command(hide = true)]
    Man {
        /// Write gonogo.1 and gonogo-COMMAND.1 files into this directory instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// `gonogo journal …`
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Check the journal offline (reads files only): every entry's hash, the seq sequence and prev links, the
    /// signatures (with --pubkey), and that every journaled run document is unchanged. Names the first bad entry
    /// (seq and line) and exits 1; exits 0 when all is well, 3 when the journal cannot be read.
    Verify {
        /// Ed25519 public key: 64 hex characters, or the FILE.pub `gonogo keygen` wrote. Every entry must then
        /// be signed with its private key.
        #[arg(long, value_name = "FILE|HEX")]
        pubkey: Option<String>,
        /// Accept journaled runs whose documents are gone (deleted by retention, `keep_runs`).
        #[arg(long)]
        allow_pruned: bool,
        /// Verify this state directory (e.g. a copy) instead of the config's `state_dir`.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Parse arguments and run; the whole CLI.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; everything else is a usage error (exit 3, not clap's 2,
            // which would read as INCONCLUSIVE).
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // The daemon logs its runs at info; one-shot commands only warnings, their output is the report.
    let default_level = if matches!(cli.command, Command::Serve) { "info" } else { "warn" };
    init_logging(cli.log_format, default_level);
    match cli.command {
        Command::Run { phase, checks, format, baseline, change_ref } => {
            cmd_run(&cli.config, &phase, &checks, format, baseline.as_deref(), change_ref)
        }
        Command::Diff { base, run, format } => cmd_diff(&cli.config, &base, &run, format),
        Command::Gate { name, format } => cmd_gate(&cli.config, &name, format),
        Command::Demo { out } => cmd_demo(&out),
        Command::Signoff { gate, decision, name, role, organisation, note, override_reason } => {
            let req = crate::gates::DecisionRequest {
                gate,
                decision,
                name,
                role,
                organisation,
                note,
                runs: None,
                override_reason,
            };
            cmd_signoff(&cli.config, &req)
        }
        Command::CheckConfig { file } => cmd_check_config(file.as_deref().unwrap_or(&cli.config)),
        Command::List { phase } => cmd_list(&cli.config, phase.as_deref()),
        Command::Serve => cmd_serve(&cli.config),
        Command::Runs { phase, limit, format } => cmd_runs(&cli.config, phase.as_deref(), limit, format),
        Command::Show { id, format } => cmd_show(&cli.config, &id, format),
        Command::Report { id, format, out } => cmd_report(&cli.config, &id, format, out.as_deref()),
        Command::Keygen { out } => cmd_keygen(&out),
        Command::Journal { command: JournalCommand::Verify { pubkey, allow_pruned, state_dir } } => {
            cmd_journal_verify(&cli.config, state_dir.as_deref(), pubkey.as_deref(), allow_pruned)
        }
        Command::Completions { shell } => cmd_completions(shell),
        Command::Man { out_dir } => cmd_man(out_dir.as_deref()),
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GONOGO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour only for a person at a terminal: journald and log collectors get plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Load the config or print every problem (exit 3).
fn load(path: &Path) -> Result<Config, ExitCode> {
    gonogo_config::load(path).map_err(|problems| {
        let mut err = std::io::stderr().lock();
        for p in problems.iter() {
            let _ = writeln!(err, "error: {p}");
        }
        let n = problems.len();
        let _ = writeln!(err, "{n} problem{} in {}; nothing was run.", if n == 1 { "" } else { "s" }, path.display());
        ExitCode::from(EXIT_USAGE)
    })
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_USAGE)
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| usage_error(format!("cannot start the async runtime: {e}")))
}

fn cmd_run(
    config_path: &Path,
    phase: &str,
    only: &[String],
    format: Format,
    baseline: Option<&str>,
    change_ref: Option<String>,
) -> ExitCode {
    let config = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let planned = match plan::plan(&config, phase, only, &std::sync::Arc::new(plan::Probes::new())) {
        Ok(p) => p,
        Err(e) => return usage_error(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let trigger = Trigger { source: "cli".to_owned(), by: std::env::var("USER").ok() };
    let mut run = RunRecord::new(&config, phase, trigger, change_ref, !only.is_empty());
    run.start();
    // The run is evidence: record it (as running first, so a killed run reads `interrupted` later) when the
    // state directory is writable; say so when it is not, and carry on.
    let store = match Store::open(&config.storage.state_dir, config.storage.keep_runs) {
        Ok(store) => store.save(&run).map(|_| store).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = &store {
        eprintln!("note: this run is not recorded: {e}");
    }
    let show_progress = std::io::stderr().is_terminal();
    if show_progress {
        eprint!("[0/{n}] running {n} checks of {phase}…", n = planned.checks.len());
        let _ = std::io::stderr().flush();
    }
    let checks = rt.block_on(engine::execute(planned, config.defaults.concurrency, |result, done, total| {
        if show_progress {
            let mark = if result.outcome == Outcome::Pass { "ok" } else { result.outcome.as_str() };
            eprint!("\r\x1b[2K[{done}/{total}] {} {mark}{}", result.name, if done < total { " …" } else { "" });
            if done == total {
                eprint!("\r\x1b[2K");
            }
            let _ = std::io::stderr().flush();
        }
    }));
    run.finish(checks);
    // A selection of checks (--check) is not judged against a baseline: it is not the phase.
    if let Ok(store) = &store
        && only.is_empty()
        && let Some(why) = run.compare_with_baseline(&config, store, baseline)
    {
        eprintln!("note: no baseline comparison: {why}");
    }
    tracing::info!(phase = %run.phase, id = %run.id, verdict = ?run.verdict, "run finished");
    if let Ok(store) = &store {
        if let Err(e) = store.save(&run).and_then(|_| {
            journal_run(&config, store, &run.id);
            store.prune()
        }) {
            eprintln!("note: this run is not recorded: {e}");
        }
    }
    let color = format == Format::Table && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = output::render(&run, format, color, engine::unix_now());
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).and_then(|_| out.flush()).is_err() {
        // stdout closed (a pipe that went away): the verdict still stands in the exit code.
    }
    ExitCode::from(run.exit_code())
}

fn cmd_check_config(path: &Path) -> ExitCode {
    match load(path) {
        Ok(config) => {
            let phases: Vec<&str> =
                config.phases.keys().filter(|p| config.checks_in(p).next().is_some()).map(String::as_str).collect();
            println!(
                "{}: OK — {} checks in {} phases ({})",
                path.display(),
                config.checks.len(),
                phases.len(),
                phases.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn cmd_list(path: &Path, only: Option<&str>) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(p) = only
        && !config.phases.contains_key(p)
    {
        let known = config.phases.keys().cloned().collect::<Vec<_>>().join(", ");
        return usage_error(format!("unknown phase {p:?}; phases: {known}"));
    }
    let probes = plan::Probes::new();
    let mut out = String::new();
    for (name, phase) in &config.phases {
        if only.is_some_and(|p| p != name) {
            continue;
        }
        let checks: Vec<_> = config.checks_in(name).collect();
        let desc = phase.description.as_deref().map(|d| format!(" — {d}")).unwrap_or_default();
        out.push_str(&format!("{name} ({} checks){desc}\n", checks.len()));
        for c in checks {
            let target = probes.target(c);
            let req = if c.required { "required" } else { "advisory" };
            out.push_str(&format!("  {:<24} {:<6} {req:<8} {target}\n", c.name, c.spec.kind()));
        }
    }
    print!("{out}");
    ExitCode::SUCCESS
}

fn cmd_serve(path: &Path) -> ExitCode {
    // Validate first, so config problems read exactly as for `run` and exit 3.
    if let Err(code) = load(path) {
        return code;
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(crate::serve::serve(path, std::future::pending())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The run store of the config at `path`.
fn open_store(path: &Path) -> Result<Store, ExitCode> {
    config_and_store(path).map(|(_, store)| store)
}

fn cmd_runs(path: &Path, phase: Option<&str>, limit: usize, format: Format) -> ExitCode {
    let store = match open_store(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runs = match store.list(phase, limit.max(1)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&runs).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
        return ExitCode::SUCCESS;
    }
    let mut out =
        format!("{:<44} {:<16} {:<11} {:<12} {:<24} {}\n", "ID", "PHASE", "STATUS", "VERDICT", "CREATED", "TRIGGER");
    for r in &runs {
        let by = r.trigger.by.as_deref().map(|b| format!(" ({b})")).unwrap_or_default();
        out.push_str(&format!(
            "{:<44} {:<16} {:<11} {:<12} {:<24} {}{by}\n",
            r.id,
            r.phase,
            r.status.as_str(),
            r.verdict.map_or("-", |v| v.as_str()),
            r.created_at,
            r.trigger.source
        ));
    }
    if runs.is_empty() {
        out.push_str(&format!("(no runs recorded in {})\n", store.dir().display()));
    }
    print!("{out}");
    ExitCode::SUCCESS
}

fn cmd_show(path: &Path, id: &str, format: Format) -> ExitCode {
    let store = match open_store(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.load(id) {
        Ok(Some(run)) => {
            let color =
                format == Format::Table && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!("{}", output::render(&run, format, color, engine::unix_now()));
            ExitCode::SUCCESS
        }
        Ok(None) | Err(crate::store::StoreError::BadId(_)) => {
            usage_error(format!("no run {id:?} in {}; `gonogo runs` lists them", store.dir().display()))
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `gonogo report ID`: the run from the store, rendered; on stdout or into `out`.
fn cmd_report(path: &Path, id: &str, format: ReportFormat, out: Option<&Path>) -> ExitCode {
    let (config, store) = match config_and_store(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let run = match store.load(id) {
        Ok(Some(run)) => run,
        Ok(None) | Err(crate::store::StoreError::BadId(_)) => {
            return usage_error(format!("no run {id:?} in {}; `gonogo runs` lists them", store.dir().display()));
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let decisions = crate::gates::decisions_for_phase(&config, &run.phase);
    let text = report::render(&run, format, &decisions, engine::unix_now());
    match out {
        None => write_stdout(text.as_bytes()),
        Some(file) => match std::fs::write(file, text) {
            Ok(()) => {
                eprintln!("{format} report of run {} written to {}", run.id, file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e} (is its directory there and writable?)", file.display());
                ExitCode::FAILURE
            }
        },
    }
}

/// Append a recorded run to the journal; a failure is a note, the run and its verdict stand.
fn journal_run(config: &Config, store: &Store, id: &str) {
    let result = crate::journal::Journal::open(&config.storage.state_dir, config.evidence.signing_key.as_deref())
        .and_then(|j| j.record_run(store, id));
    if let Err(e) = result {
        eprintln!("note: this run is not journaled: {e}");
    }
}

fn cmd_keygen(out: &Path) -> ExitCode {
    match crate::journal::keygen(out) {
        Ok(public) => {
            println!("{public}");
            eprintln!(
                "private key written to {} (keep it secret: set [evidence] signing_key to it); public key (hex) \
                 written to {} and above: give it to whoever verifies the journal",
                out.display(),
                crate::journal::public_key_path(out).display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(e),
    }
}

fn cmd_journal_verify(config: &Path, state_dir: Option<&Path>, pubkey: Option<&str>, allow_pruned: bool) -> ExitCode {
    use crate::journal::{VerifyOptions, parse_public_key, verify};
    let state_dir = match state_dir {
        Some(dir) => dir.to_owned(),
        None => match load(config) {
            Ok(c) => c.storage.state_dir,
            Err(code) => return code,
        },
    };
    let public_key = match pubkey.map(parse_public_key).transpose() {
        Ok(k) => k,
        Err(e) => return usage_error(e),
    };
    let report = match verify(&state_dir, &VerifyOptions { public_key, allow_pruned }) {
        Ok(r) => r,
        Err(e) => return usage_error(e),
    };
    let mut out = String::new();
    if let Some(problem) = &report.problem {
        out.push_str(&format!("journal {}: FAILED\n  first bad entry: {problem}\n", report.path.display()));
        if report.entries > 0 {
            out.push_str(&format!("  the {} entries before it are intact\n", report.entries));
        }
        print!("{out}");
        return ExitCode::FAILURE;
    }
    out.push_str(&format!("journal {}: OK\n", report.path.display()));
    out.push_str(&format!("  {} entries, hash chain intact from seq 1\n", report.entries));
    out.push_str(&match (pubkey, report.signed) {
        (Some(key), n) => format!("  signatures: all {n} verified with public key {key}\n"),
        (None, 0) => "  signatures: none (the journal is not signed)\n".to_owned(),
        (None, n) => format!("  signatures: {n} entries signed, not checked (give --pubkey FILE|HEX)\n"),
    });
    out.push_str(&format!("  run documents: {} unchanged", report.runs_matched));
    if !report.runs_pruned.is_empty() {
        out.push_str(&format!(", {} deleted by retention (accepted: --allow-pruned)", report.runs_pruned.len()));
    }
    out.push('\n');
    if report.torn_files > 0 {
        out.push_str(&format!(
            "  note: {} incomplete line(s) left by a crash were set aside (journal.jsonl.torn-*)\n",
            report.torn_files
        ));
    }
    print!("{out}");
    ExitCode::SUCCESS
}

fn cmd_completions(shell: clap_complete::Shell) -> ExitCode {
    // The same CLI without its hidden commands (`man`, for packaging): completions offer what --help lists.
    let full = <Cli as clap::CommandFactory>::command();
    let mut cmd = clap::Command::new("gonogo")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
        .subcommand_required(true);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "gonogo", &mut out);
    write_stdout(&out)
}

/// Sections of gonogo(1) that the CLI definition does not carry (roff).
const MAN_EXTRA: &str = r#".SH "EXIT STATUS"
Of \fBgonogo run\fR:
.TP
\fB0\fR
GO: every required check passed.
.TP
\fB1\fR
NO\-GO: a required check failed.
.TP
\fB2\fR
INCONCLUSIVE: no required check failed, but one could not be decided or not run.
.TP
\fB3\fR
Config or usage error; nothing was run.
.PP
Every other command exits 0 on success and 3 on a config or usage error.
.SH ENVIRONMENT
.TP
\fBGONOGO_CONFIG\fR
The config file when \fB\-\-config\fR is not given.
.TP
\fBGONOGO_LOG\fR
Log level on stderr, e.g. \fBdebug\fR.
.TP
\fBNO_COLOR\fR
No colour in table output.
.SH FILES
.TP
\fI/etc/gonogo/gonogo.toml\fR
The config file (TOML): site, checks, phases, and for \fBgonogo serve\fR the API, tokens and storage.
.TP
\fI/var/lib/gonogo\fR
The state directory: every run as a JSON document in \fIruns/\fR, and \fIapi.addr\fR.
.TP
\fI/usr/lib/systemd/system/gonogo.service\fR
The hardened systemd unit running \fBgonogo serve\fR.
.SH PRIVILEGES
ICMP checks need a raw socket (root, or \fBCAP_NET_RAW\fR, as the systemd unit grants) or an unprivileged ICMP
socket (\fBnet.ipv4.ping_group_range\fR covering the user's group). Without either, ICMP checks end as
\fBerror\fR with that advice.
.SH "SEE ALSO"
\fBsystemd.exec\fR(5), \fBcapabilities\fR(7), /usr/share/doc/gonogo/README.md
"#;

/// `gonogo man`: gonogo(1) on stdout; with `out_dir`, gonogo.1 and gonogo-COMMAND.1 for each visible command.
fn cmd_man(out_dir: Option<&Path>) -> ExitCode {
    let mut cmd = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    cmd.build();
    let mut main_page = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd.clone()).render(&mut main_page) {
        return usage_error(format!("cannot render the man page: {e}"));
    }
    main_page.extend_from_slice(MAN_EXTRA.as_bytes());
    let Some(dir) = out_dir else { return write_stdout(&main_page) };
    let write = |name: &str, page: &[u8]| {
        std::fs::write(dir.join(name), page).map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
    };
    let mut result = write("gonogo.1", &main_page);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = clap_mangen::Man::new(sub.clone());
        let mut page = Vec::new();
        result = result.and_then(|_| {
            man.render(&mut page).map_err(|e| format!("cannot render {}: {e}", man.get_filename()))?;
            write(&man.get_filename(), &page)
        });
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => usage_error(format!("{e} (is --out-dir an existing, writable directory?)")),
    }
}

fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_diff(path: &Path, base: &str, run_id: &str, format: Format) -> ExitCode {
    let (config, store) = match config_and_store(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let load_run = |id: &str| match store.load(id) {
        Ok(Some(r)) if r.status == crate::run::RunStatus::Finished => Ok(r),
        Ok(Some(r)) => Err(usage_error(format!("run {id} is {}, not finished: nothing to compare", r.status))),
        Ok(None) | Err(crate::store::StoreError::BadId(_)) => {
            Err(usage_error(format!("no run {id:?} in {}; `gonogo runs` lists them", store.dir().display())))
        }
        Err(e) => Err(usage_error(e)),
    };
    let (base, mut run) = match (load_run(base), load_run(run_id)) {
        (Ok(b), Ok(r)) => (b, r),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let rules = |name: &str| config.checks.iter().find(|c| c.name == name).map(|c| c.compare.clone());
    let blocks = |name: &str| config.checks.iter().any(|c| c.name == name && c.block_preexisting);
    run.compare_with(&base, &rules, &blocks);
    let Some(comparison) = &run.comparison else { return ExitCode::FAILURE };
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(comparison).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
    } else {
        print!("{}", output::comparison_table(&run, comparison));
    }
    ExitCode::from(if comparison.regressions > 0 { 1 } else { 0 })
}

/// The config and its run store, or the exit code that says why not.
fn config_and_store(path: &Path) -> Result<(Config, Store), ExitCode> {
    let config = load(path)?;
    match Store::open(&config.storage.state_dir, config.storage.keep_runs) {
        Ok(store) => Ok((config, store)),
        Err(e) => {
            eprintln!("error: cannot open the run store: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn cmd_gate(path: &Path, name: &str, format: Format) -> ExitCode {
    let (config, store) = match config_and_store(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let eval = match crate::gates::evaluate_in(&config, &store, name, engine::unix_now()) {
        Ok(e) => e,
        Err(msg) => return usage_error(msg),
    };
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&eval).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
    } else {
        let mut out = format!("gate {}: {}\n", eval.gate, eval.verdict);
        for p in &eval.phases {
            let run = p.run_id.as_deref().unwrap_or("-");
            let verdict = p.verdict.map_or("-", |v| v.as_str());
            let mark = if p.ok { "ok" } else { "NOT OK" };
            out.push_str(&format!("  {:<16} {mark:<6} {verdict:<12} {run}\n", p.phase));
            if let Some(r) = &p.reason {
                out.push_str(&format!("    └ {r}\n"));
            }
        }
        print!("{out}");
    }
    ExitCode::from(if eval.verdict == crate::verdict::Verdict::Go { 0 } else { 1 })
}

fn cmd_signoff(path: &Path, req: &crate::gates::DecisionRequest) -> ExitCode {
    let (config, store) = match config_and_store(path) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let eval = match crate::gates::evaluate_in(&config, &store, &req.gate, engine::unix_now()) {
        Ok(e) => e,
        Err(msg) => return usage_error(msg),
    };
    let at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let by = std::env::var("USER").map(|u| format!("cli ({u})")).unwrap_or_else(|_| "cli".to_owned());
    let decision = match crate::gates::decide(req, &eval, at, by) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("refused: {e}");
            return ExitCode::FAILURE;
        }
    };
    let journal = match crate::journal::Journal::open(&config.storage.state_dir, config.evidence.signing_key.as_deref())
    {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: cannot open the evidence journal: {e}");
            return ExitCode::FAILURE;
        }
    };
    match serde_json::to_value(&decision)
        .map_err(|e| e.to_string())
        .and_then(|v| journal.append(crate::journal::Kind::Decision, v).map_err(|e| e.to_string()))
    {
        Ok(entry) => {
            println!(
                "recorded: {} at gate {} (gate {}) by {} — journal entry {}",
                decision.decision.as_str(),
                decision.gate,
                decision.gate_verdict,
                decision.name,
                entry.seq
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the decision was not recorded: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_demo(out: &Path) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(crate::demo::demo(out)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
