//! `gonogo demo`: the whole migration workflow in a few seconds, with no config and no network beyond
//! loopback. It starts its own DNS, HTTP and HTTPS responders on 127.0.0.1, runs commissioning and
//! pre-migration, signs off the go-live gate, simulates a bad change (an application starts failing, a DNS
//! answer changes, latency rises), runs post-migration against the pre-migration baseline, shows the NO-GO with
//! what the change broke and what was already broken, records a rollback decision, and writes the HTML report.

use std::io::{IsTerminal, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::engine;
use crate::gates::{self, DecisionKind, DecisionRequest};
use crate::journal::{Journal, Kind};
use crate::output::{self, Format};
use crate::plan;
use crate::report::{self, ReportFormat};
use crate::run::{RunRecord, Trigger};
use crate::store::Store;

/// What the simulated change flips.
#[derive(Debug)]
struct World {
    dns_answer: Mutex<Ipv4Addr>,
    portal_up: AtomicBool,
    api_delay_ms: AtomicU32,
}

/// Run the demo; returns the path of the HTML report.
pub async fn demo(report_path: &Path) -> anyhow::Result<PathBuf> {
    let work = tempfile::Builder::new().prefix("gonogo-demo-").tempdir().context("creating a temporary directory")?;
    let dir = work.path();
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let say = |s: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", if color { format!("\x1b[1m{s}\x1b[0m") } else { s.to_owned() });
    };

    let world = Arc::new(World {
        dns_answer: Mutex::new(Ipv4Addr::new(127, 0, 0, 10)),
        portal_up: AtomicBool::new(true),
        api_delay_ms: AtomicU32::new(5),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let dns = start_dns(Arc::clone(&world), stop_rx.clone()).await?;
    let (http, https, ca_file) = start_web(dir, Arc::clone(&world), stop_rx.clone()).await?;

    let config_path = dir.join("gonogo.toml");
    std::fs::write(&config_path, demo_config(dir, dns, http, https, &ca_file)).context("writing the demo config")?;
    let config = gonogo_config::load(&config_path).map_err(|p| anyhow!("the demo's own config is invalid: {p}"))?;
    let store = Store::open(&config.storage.state_dir, config.storage.keep_runs)?;
    let journal = Journal::open(&config.storage.state_dir, None)?;

    say("gonogo demo — a site migration, simulated on loopback (DNS, HTTP and HTTPS responders started)");
    println!("  DNS {dns} · HTTP {http} · HTTPS {https} · state in {}\n", dir.display());

    let probes = Arc::new(plan::Probes::new());
    let run_phase = |phase: &'static str| {
        let (config, store, journal, probes) = (&config, &store, &journal, &probes);
        async move {
            let planned = plan::plan(config, phase, &[], probes)?;
            let trigger = Trigger { source: "demo".to_owned(), by: None };
            let mut run = RunRecord::new(config, phase, trigger, Some("CHG0001 (demo)".to_owned()), false);
            run.start();
            let checks = engine::execute(planned, config.defaults.concurrency, |_, _, _| {}).await;
            run.finish(checks);
            run.compare_with_baseline(config, store, None);
            store.save(&run)?;
            journal.record_run(store, &run.id)?;
            print!("{}", output::render(&run, Format::Table, color, engine::unix_now()));
            println!();
            anyhow::Ok(run)
        }
    };

    say("1. Commissioning: the new circuit is tested before it carries production traffic.");
    run_phase("commissioning").await?;
    say("2. Pre-migration: production applications are reachable before the change (this run is the baseline).");
    say("   legacy-app is already broken: it will show as pre-existing, not as caused by the change.");
    run_phase("pre-migration").await?;

    let decide = |gate: &str, decision: DecisionKind, override_reason: Option<&str>, note: &str| {
        let eval = gates::evaluate_in(&config, &store, gate, engine::unix_now()).map_err(|e| anyhow!(e))?;
        let req = DecisionRequest {
            gate: gate.to_owned(),
            decision,
            name: "Alex Lead (demo)".to_owned(),
            role: "Change manager".to_owned(),
            organisation: "Demo Trust".to_owned(),
            note: Some(note.to_owned()),
            runs: None,
            override_reason: override_reason.map(str::to_owned),
        };
        let at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let d = gates::decide(&req, &eval, at, "demo".to_owned())?;
        journal.append(Kind::Decision, serde_json::to_value(&d)?)?;
        println!(
            "   gate {gate}: {} — decision {} recorded by {} ({}){}",
            eval.verdict,
            d.decision.as_str(),
            d.name,
            d.role,
            d.override_reason.as_deref().map(|r| format!(", override: {r}")).unwrap_or_default()
        );
        anyhow::Ok(())
    };
    say("3. Go/no-go before the change: the go-live gate relies on commissioning and pre-migration.");
    decide(
        "go-live",
        DecisionKind::Go,
        Some("legacy-app is known broken (INC0042) and out of scope for this migration"),
        "proceed with the cut-over",
    )?;
    println!();

    say("4. The network change happens — and goes wrong:");
    *world.dns_answer.lock().unwrap_or_else(|p| p.into_inner()) = Ipv4Addr::new(127, 0, 0, 20);
    world.portal_up.store(false, Ordering::SeqCst);
    world.api_delay_ms.store(400, Ordering::SeqCst);
    println!("   app.demo now resolves to 127.0.0.20, the patient portal answers 503, the API takes 400 ms.\n");

    say("5. Post-migration, compared with the pre-migration baseline:");
    let post = run_phase("post-migration").await?;

    say("6. The go/no-go point: what the change broke means roll back; what was already broken means investigate.");
    decide(
        "post-change",
        DecisionKind::Rollback,
        None,
        "regressions in DNS, the patient portal and API latency: roll back",
    )?;

    let decisions = gates::decisions_at(&config.storage.state_dir, None);
    let html = report::render(&post, ReportFormat::Html, &decisions, engine::unix_now());
    std::fs::write(report_path, html).with_context(|| format!("writing the report to {}", report_path.display()))?;
    let cmp = post.comparison.as_ref();
    println!(
        "\nThe simulated change was caught: post-migration is {} with {} regression(s) and {} pre-existing failure(s).",
        post.verdict.map_or("undecided", |v| v.as_str()),
        cmp.map_or(0, |c| c.regressions),
        cmp.map_or(0, |c| c.preexisting)
    );
    println!("HTML report: {}", report_path.display());
    let _ = stop_tx.send(true);
    Ok(report_path.to_owned())
}

/// The demo's plan, pointing at its own responders.
fn demo_config(dir: &Path, dns: SocketAddr, http: SocketAddr, https: SocketAddr, ca: &Path) -> String {
    format!(
        r#"[site]
name = "Demo Trust — Example Site (simulated)"
ods_code = "DEMO1"

[storage]
state_dir = "{state}"

[gate.go-live]
description = "Ready to cut over: the new circuit and the applications are tested"
requires = ["commissioning", "pre-migration"]
max_age = "1h"

[gate.post-change]
description = "Carry on, or roll back"
requires = ["post-migration"]
max_age = "1h"

[[check]]
name = "loopback-ping"
kind = "icmp"
target = "127.0.0.1"
count = 5
interval = "20ms"
required = false   # advisory: the demo must also work without ICMP privilege
phases = ["commissioning", "pre-migration", "post-migration"]

[[check]]
name = "dns-app"
kind = "dns"
server = "{dns}"
query = "app.demo"
phases = ["commissioning", "pre-migration", "post-migration"]
expect = {{ answers_include = ["127.0.0.10"] }}
compare = {{ answers_unchanged = true }}

[[check]]
name = "web-port"
kind = "tcp"
target = "{http}"
phases = ["commissioning"]

[[check]]
name = "patient-portal"
kind = "http"
url = "https://localhost:{https_port}/portal"
ca_file = "{ca}"
phases = ["pre-migration", "post-migration"]
expect = {{ status = [200], body_matches = "welcome" }}
compare = {{ status_unchanged = true }}

[[check]]
name = "api-latency"
kind = "http"
url = "http://{http}/api"
phases = ["pre-migration", "post-migration"]
expect = {{ latency_max = "200ms" }}

[[check]]
name = "legacy-app"
kind = "http"
url = "http://{http}/legacy"
phases = ["pre-migration", "post-migration"]
"#,
        state = dir.join("state").display(),
        https_port = https.port(),
        ca = ca.display(),
    )
}

/// A one-name authoritative DNS responder: `app.demo` A → the world's current answer; anything else NXDOMAIN.
async fn start_dns(world: Arc<World>, mut stop: watch::Receiver<bool>) -> anyhow::Result<SocketAddr> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.context("binding the demo DNS responder")?;
    let addr = sock.local_addr()?;
    let app = Name::from_ascii("app.demo.").context("demo name")?;
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let (n, peer) = tokio::select! {
                r = sock.recv_from(&mut buf) => match r { Ok(x) => x, Err(_) => continue },
                _ = stop.wait_for(|s| *s) => return,
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            if query.metadata.message_type != MessageType::Query {
                continue;
            }
            let mut resp = Message::response(query.metadata.id, OpCode::Query);
            resp.metadata.recursion_desired = query.metadata.recursion_desired;
            resp.metadata.authoritative = true;
            for q in query.queries.iter() {
                resp.add_query(q.clone());
                if q.name() == &app && q.query_type() == RecordType::A {
                    let ip = *world.dns_answer.lock().unwrap_or_else(|p| p.into_inner());
                    resp.add_answer(Record::from_rdata(app.clone(), 60, RData::A(A(ip))));
                } else if q.name() != &app {
                    resp.metadata.response_code = ResponseCode::NXDomain;
                }
            }
            if let Ok(bytes) = resp.to_vec() {
                let _ = sock.send_to(&bytes, peer).await;
            }
        }
    });
    Ok(addr)
}

/// The demo's web applications on HTTP and HTTPS (certificate from a throw-away CA written to `dir`).
async fn start_web(
    dir: &Path,
    world: Arc<World>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, SocketAddr, PathBuf)> {
    let router = Router::new()
        .route(
            "/portal",
            get(|State(w): State<Arc<World>>| async move {
                match w.portal_up.load(Ordering::SeqCst) {
                    true => (StatusCode::OK, "<h1>welcome to the patient portal</h1>"),
                    false => (StatusCode::SERVICE_UNAVAILABLE, "upstream unreachable"),
                }
            }),
        )
        .route(
            "/api",
            get(|State(w): State<Arc<World>>| async move {
                tokio::time::sleep(Duration::from_millis(u64::from(w.api_delay_ms.load(Ordering::SeqCst)))).await;
                "{\"status\": \"ok\"}"
            }),
        )
        .route("/legacy", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "legacy app: database offline") }))
        .with_state(world);

    let http = TcpListener::bind("127.0.0.1:0").await.context("binding the demo HTTP server")?;
    let https = TcpListener::bind("127.0.0.1:0").await.context("binding the demo HTTPS server")?;
    let (http_addr, https_addr) = (http.local_addr()?, https.local_addr()?);

    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "gonogo demo CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate()?;
    let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    leaf_params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    let (ca_file, cert_file, key_file) = (dir.join("demo-ca.pem"), dir.join("demo-cert.pem"), dir.join("demo-key.pem"));
    std::fs::write(&ca_file, ca_cert.pem())?;
    std::fs::write(&cert_file, format!("{}{}", leaf.pem(), ca_cert.pem()))?;
    std::fs::write(&key_file, leaf_key.serialize_pem())?;
    let tls = crate::serve::tls_acceptor(&gonogo_config::ApiTls { cert: cert_file, key: key_file, client_ca: None })?;

    tokio::spawn(crate::serve::accept_loop(http, None, router.clone(), stop.clone()));
    tokio::spawn(crate::serve::accept_loop(https, Some(tls), router, stop));
    Ok((http_addr, https_addr, ca_file))
}
