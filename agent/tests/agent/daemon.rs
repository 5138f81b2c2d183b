//! A real `gonogo serve` process for end-to-end tests: TLS from a generated CA, tokens, its own state dir.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gonogo_testkit::certs::{Leaf, TestCa};

use crate::support::gonogo_bin;

/// Token with the read and trigger roles.
pub const NOC_TOKEN: &str = "noc-token-for-tests-0123456789";
/// Token with the read role only.
pub const VIEWER_TOKEN: &str = "viewer-token-for-tests-9876543210";

/// Hex SHA-256 of a token, as the config stores it.
pub fn token_hash(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A test CA, the agent's certificate for 127.0.0.1, and a client certificate.
pub struct Pki {
    pub ca: TestCa,
    pub server: Leaf,
    pub client: Leaf,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = TestCa::new("gonogo test CA");
        let server = ca.leaf(&["127.0.0.1", "localhost"]);
        let client = ca.client_cert("cnsp-noc");
        Pki { ca, server, client }
    }

    /// An HTTPS client trusting the test CA, with the client certificate when `with_client_cert`.
    pub fn client(&self, with_client_cert: bool) -> reqwest::Client {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.cert_der().clone()).expect("CA cert");
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = if with_client_cert {
            builder.with_client_auth_cert(self.client.chain_der(), self.client.key_der()).expect("client cert")
        } else {
            builder.with_no_client_auth()
        };
        reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    }
}

/// A running `gonogo serve`, killed (by its PID, SIGKILL) when dropped.
pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub base: String,
}

/// The `[api]`, `[[token]]` and `[storage]` part of a test config for `dir`.
pub fn serve_config(dir: &Path, pki: &Pki, client_ca: bool) -> String {
    std::fs::write(dir.join("agent.crt"), pki.server.chain_pem()).expect("write cert");
    std::fs::write(dir.join("agent.key"), pki.server.key_pem()).expect("write key");
    std::fs::write(dir.join("ca.crt"), pki.ca.cert_pem()).expect("write ca");
    let client_ca = if client_ca { format!("client_ca = \"{}/ca.crt\"\n", dir.display()) } else { String::new() };
    format!(
        r#"[api]
listen = "127.0.0.1:0"
tls_cert = "{d}/agent.crt"
tls_key = "{d}/agent.key"
{client_ca}
[[token]]
name = "noc"
sha256 = "{noc}"
roles = ["read", "trigger"]

[[token]]
name = "viewer"
sha256 = "{viewer}"
roles = ["read"]

[storage]
state_dir = "{d}/state"
"#,
        d = dir.display(),
        noc = token_hash(NOC_TOKEN),
        viewer = token_hash(VIEWER_TOKEN),
    )
}

impl Daemon {
    /// Write `config` to `dir/gonogo.toml` and start `gonogo serve` on it; wait until it listens.
    pub fn start(dir: &Path, config: &str) -> Result<Daemon, String> {
        let config_path = dir.join("gonogo.toml");
        std::fs::write(&config_path, config).expect("write config");
        Daemon::start_existing(dir, &config_path)
    }

    /// Start `gonogo serve` on an existing config (a restart); logs go to `dir/serve.log`.
    pub fn start_existing(dir: &Path, config_path: &Path) -> Result<Daemon, String> {
        Daemon::start_with_env(dir, config_path, &[])
    }

    /// The same, with extra environment variables (NOTIFY_SOCKET, WATCHDOG_USEC …).
    pub fn start_with_env(dir: &Path, config_path: &Path, env: &[(&str, String)]) -> Result<Daemon, String> {
        let addr_file = dir.join("state").join("api.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = File::options().create(true).append(true).open(dir.join("serve.log")).expect("log file");
        let mut child = Command::new(gonogo_bin())
            .arg("--config")
            .arg(config_path)
            .arg("serve")
            .env_remove("NOTIFY_SOCKET")
            .env("GONOGO_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn gonogo serve");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("gonogo serve exited with {status}: {}", Daemon::log_of(dir)));
            }
            if let Some(addr) =
                std::fs::read_to_string(&addr_file).ok().and_then(|s| s.trim().parse::<SocketAddr>().ok())
            {
                return Ok(Daemon {
                    child,
                    dir: dir.to_owned(),
                    config_path: config_path.to_owned(),
                    base: format!("https://{addr}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("gonogo serve did not listen within 20s: {}", Daemon::log_of(dir)))
    }

    fn log_of(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        Daemon::log_of(&self.dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Send a signal to the daemon (by its PID).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{sig}");
    }

    /// Wait (bounded) for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
