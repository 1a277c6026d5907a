//! The local stack behind `make run`, `make up` and `make down`: a primary
//! and a synchronous replica (flexibank-replication), TLS material, server
//! configuration, migrations, the demo bank, and the server itself.
//! Everything lives under `var/` of the project root; `var/stack.json`
//! tells scripts and tests where things are (see shared/API.md).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context;
use flexibank_replication::{Cluster, InitOptions};
use serde::{Deserialize, Serialize};

use crate::{config::Config, seed, tls};

pub const SERVER_PORT: u16 = 8443;
/// Preferred first PostgreSQL port (never 5432); free ports are used when taken.
pub const PG_BASE_PORT: u16 = 55432;
/// A primary and two replicas (`ANY 1`): no acknowledged write ever lives on one node only, even right after a failover.
pub const REPLICAS: usize = 2;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Serialize, Deserialize)]
pub struct StackNode {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub data_dir: String,
    pub pid: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StackFile {
    pub server_url: String,
    pub ca_cert: String,
    pub server_pid: u32,
    pub nodes: Vec<StackNode>,
    pub db_superuser: String,
    /// libpq password file for `db_superuser` on every node (0600).
    #[serde(default)]
    pub pgpass: String,
}

pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    fn var(&self, rel: &str) -> PathBuf {
        self.root.join("var").join(rel)
    }
    pub fn cluster(&self) -> PathBuf {
        self.var("pg")
    }
    pub fn tls(&self) -> PathBuf {
        self.var("tls")
    }
    pub fn config(&self) -> PathBuf {
        self.var("server.toml")
    }
    pub fn credentials(&self) -> PathBuf {
        self.var("demo/credentials.json")
    }
    pub fn stack_file(&self) -> PathBuf {
        self.var("stack.json")
    }
    pub fn server_log(&self) -> PathBuf {
        self.var("log/server.log")
    }
    fn totp_key(&self) -> PathBuf {
        self.var("secrets/totp.key")
    }
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

async fn ensure_cluster(paths: &Paths) -> anyhow::Result<Cluster> {
    let dir = paths.cluster();
    if dir.join("cluster.json").exists() {
        let cluster = Cluster::load(&dir)?;
        cluster.up().await?;
        cluster.write_pgpass()?;
        return Ok(cluster);
    }
    let base_port = (0..=REPLICAS as u16).all(|i| port_is_free(PG_BASE_PORT + i)).then_some(PG_BASE_PORT);
    println!("creating a primary and {REPLICAS} synchronous replicas under {}", dir.display());
    Cluster::init(InitOptions { dir, replicas: REPLICAS, base_port, ..InitOptions::default() }).await
}

fn ensure_totp_key(paths: &Paths) -> anyhow::Result<String> {
    let path = paths.totp_key();
    if let Ok(hex_key) = std::fs::read_to_string(&path) {
        return Ok(hex_key.trim().to_string());
    }
    std::fs::create_dir_all(path.parent().expect("has parent"))?;
    let key: [u8; 32] = rand::random();
    let hex_key = hex::encode(key);
    tls::write_private(&path, hex_key.as_bytes())?;
    Ok(hex_key)
}

fn write_config(paths: &Paths, cluster: &Cluster, totp_key_hex: &str) -> anyhow::Result<Config> {
    let c = &cluster.config;
    let nodes: Vec<String> = c.nodes.iter().map(|n| format!("{}@{}:{}", n.name, n.host, n.port)).collect();
    let text = format!(
        r#"# Written by `flexibank-server stack`; edit the stack code, not this file.
[server]
listen = "127.0.0.1:{SERVER_PORT}"
tls_cert = "{cert}"
tls_key = "{key}"

[database]
nodes = {nodes:?}
dbname = "{db}"
user = "{app_user}"
password = "{app_password}"
migration_user = "{su}"
migration_password = "{su_password}"
# Three nodes: after a failover the new primary still has a synchronous partner.
sync_mode = "strict"
auto_failover = true

[security]
totp_key_hex = "{totp_key_hex}"

# Local receivers stand in for Twilio and an SMTP relay: what they get lands
# in var/outbox/{{sms,email}}.jsonl. For the real ones see the README.
[notifications]
local_receivers_dir = "{outbox}"
sms_base_url = "https://127.0.0.1:8025"
sms_account_sid = "AC0000000000000000000000000000local"
sms_auth_token = "local-receiver-token"
sms_from = "+15550000000"
smtp_host = "127.0.0.1"
smtp_port = 2525
smtp_from = "FlexiBank <notifications@flexibank.example>"
extra_ca_pem = "{ca}"
"#,
        outbox = paths.root.join("var/outbox").display(),
        ca = paths.tls().join("ca.pem").display(),
        cert = paths.tls().join(tls::SERVER_CERT_FILE).display(),
        key = paths.tls().join(tls::SERVER_KEY_FILE).display(),
        db = c.database,
        app_user = c.app_user,
        app_password = c.app_password,
        su = c.superuser,
        su_password = c.superuser_password,
    );
    tls::write_private(&paths.config(), text.as_bytes())?;
    Config::load(&paths.config())
}

/// Cluster up, TLS, config, migrations and the demo bank: all but the
/// server. On failure the nodes it started are stopped again.
pub async fn prepare(paths: &Paths) -> anyhow::Result<(Cluster, Config)> {
    let cluster = ensure_cluster(paths).await?;
    match prepare_database(paths, &cluster).await {
        Ok(config) => Ok((cluster, config)),
        Err(e) => {
            let _ = cluster.down().await;
            Err(e.context(format!(
                "preparing the local stack (if {} holds a database from an older FlexiBank build, `make down` and remove it to start afresh)",
                paths.root.join("var/pg").display()
            )))
        }
    }
}

async fn prepare_database(paths: &Paths, cluster: &Cluster) -> anyhow::Result<Config> {
    tls::ensure_local_tls(&paths.tls())?;
    let totp_key = ensure_totp_key(paths)?;
    let config = write_config(paths, cluster, &totp_key)?;
    crate::db::Db::migrate(&config.database).await?;
    let db = crate::db::Db::connect(&config.database, config.notifications.enabled).await?;
    let state = crate::AppState::new(config.clone(), db, crate::metrics_handle())?;
    if let Some(credentials) = seed::seed_demo(&state).await? {
        let path = paths.credentials();
        std::fs::create_dir_all(path.parent().expect("has parent"))?;
        tls::write_private(&path, &serde_json::to_vec_pretty(&credentials)?)?;
        println!("seeded the demo bank; credentials in {}", path.display());
    }
    Ok(config)
}

fn write_stack_file(paths: &Paths, cluster: &Cluster, server_pid: u32) -> anyhow::Result<()> {
    let relative = |p: &Path| p.strip_prefix(&paths.root).unwrap_or(p).display().to_string();
    let stack = StackFile {
        server_url: format!("https://127.0.0.1:{SERVER_PORT}"),
        ca_cert: relative(&paths.tls().join(tls::CA_CERT_FILE)),
        server_pid,
        nodes: cluster
            .config
            .nodes
            .iter()
            .map(|n| StackNode {
                name: n.name.clone(),
                host: n.host.clone(),
                port: n.port,
                data_dir: relative(&n.data_dir),
                pid: cluster.postmaster_pid(&n.name),
            })
            .collect(),
        db_superuser: cluster.config.superuser.clone(),
        pgpass: relative(&paths.cluster().join(".pgpass")),
    };
    std::fs::write(paths.stack_file(), serde_json::to_vec_pretty(&stack)?)?;
    Ok(())
}

fn print_welcome(paths: &Paths) {
    println!("\nFlexiBank is up at https://127.0.0.1:{SERVER_PORT} (CA: var/tls/ca.pem)");
    println!("Demo users and passwords: {}", paths.credentials().display());
    println!("A current TOTP code for a demo user: flexibank-server demo-code alice");
    println!("Try: curl --cacert var/tls/ca.pem https://127.0.0.1:{SERVER_PORT}/readyz\n");
}

/// `make run`: everything in the foreground until Ctrl-C, then all stopped.
pub async fn run(paths: &Paths, open_app: Option<&Path>) -> anyhow::Result<()> {
    let (cluster, config) = prepare(paths).await?;
    let server = match crate::start(config).await {
        Ok(server) => server,
        Err(e) => {
            let _ = cluster.down().await;
            return Err(e);
        }
    };
    write_stack_file(paths, &cluster, std::process::id())?;
    print_welcome(paths);
    let mut app = open_app.and_then(|binary| open_desktop_app(paths, binary));
    println!("Ctrl-C stops the server and the PostgreSQL nodes.");
    shutdown_signal().await;
    println!("stopping…");
    if let Some(app) = app.as_mut() {
        // Only the app this run started, by its pid, and only while it runs.
        if let Ok(None) = app.try_wait() {
            unsafe { libc::kill(app.id() as i32, libc::SIGTERM) };
            let _ = app.wait();
        }
    }
    server.shutdown().await?;
    cluster.down().await?;
    let _ = std::fs::remove_file(paths.stack_file());
    Ok(())
}

/// The desktop app, pointed at this stack through `var/stack.json`; nothing
/// when there is no display to show it on.
fn open_desktop_app(paths: &Paths, binary: &Path) -> Option<std::process::Child> {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if !has_display {
        println!("No display: the desktop app is not opened (run {} with a display).", binary.display());
        return None;
    }
    let stack_file = std::path::absolute(paths.stack_file()).ok()?;
    match std::process::Command::new(binary).env("FLEXIBANK_STACK", &stack_file).stdin(Stdio::null()).spawn() {
        Ok(child) => {
            println!("Desktop app opened (pid {}); log in with a user from {}.", child.id(), paths.credentials().display());
            Some(child)
        }
        Err(e) => {
            println!("Could not open the desktop app {}: {e}", binary.display());
            None
        }
    }
}

/// `make up`: start in the background, return once `/readyz` answers 200.
pub async fn up(paths: &Paths) -> anyhow::Result<()> {
    if let Ok(text) = std::fs::read_to_string(paths.stack_file()) {
        let stack: StackFile = serde_json::from_str(&text)?;
        if process_alive(stack.server_pid as i32) {
            println!("already up (server pid {})", stack.server_pid);
            return Ok(());
        }
    }
    let (cluster, _config) = prepare(paths).await?;
    std::fs::create_dir_all(paths.server_log().parent().expect("has parent"))?;
    let log = std::fs::File::create(paths.server_log())?;
    let child = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg("--config")
            .arg(paths.config())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: Ctrl-C in the terminal that ran `make up` must not reach it.
            .process_group(0)
            .spawn()
            .context("starting the server")?
    };
    let pid = child.id();
    wait_ready(paths, pid).await?;
    write_stack_file(paths, &cluster, pid)?;
    print_welcome(paths);
    println!("`make down` stops it. Server log: {}", paths.server_log().display());
    Ok(())
}

async fn wait_ready(paths: &Paths, pid: u32) -> anyhow::Result<()> {
    let ca = std::fs::read(paths.tls().join(tls::CA_CERT_FILE))?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("https://127.0.0.1:{SERVER_PORT}/readyz");
    let started = Instant::now();
    while started.elapsed() < READY_TIMEOUT {
        if !process_alive(pid as i32) {
            anyhow::bail!("the server exited; see {}", paths.server_log().display());
        }
        if let Ok(response) = client.get(&url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("the server was not ready within {READY_TIMEOUT:?}; see {}", paths.server_log().display())
}

/// `make down`: stop the server (by its pid) and the cluster.
pub async fn down(paths: &Paths) -> anyhow::Result<()> {
    if let Ok(text) = std::fs::read_to_string(paths.stack_file()) {
        let stack: StackFile = serde_json::from_str(&text)?;
        let pid = stack.server_pid as i32;
        if pid as u32 != std::process::id() && process_alive(pid) {
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let started = Instant::now();
            while process_alive(pid) && started.elapsed() < STOP_TIMEOUT {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if process_alive(pid) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    if paths.cluster().join("cluster.json").exists() {
        Cluster::load(&paths.cluster())?.down().await?;
    }
    let _ = std::fs::remove_file(paths.stack_file());
    println!("stopped");
    Ok(())
}

fn process_alive(pid: i32) -> bool {
    // kill(pid, 0) succeeds for live processes; a zombie child would too, so reap first.
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
        libc::kill(pid, 0) == 0
    }
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
