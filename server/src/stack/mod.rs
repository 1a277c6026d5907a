//! The local stack behind `make run`, `make up` and `make down`: a primary
//! and synchronous replicas (flexibank-replication), TLS material, server
//! configuration, migrations, the demo bank, and the server itself; and the
//! consortium around it (`consortium.rs`: a second bank, the switch, keys).
//! Everything lives under `var/` of the project root; `var/stack.json`
//! tells scripts and tests where things are (see shared/API.md).

mod consortium;

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
    /// The consortium's banks (this one first) and its switch.
    #[serde(default)]
    pub banks: Vec<consortium::StackBank>,
    #[serde(default)]
    pub switch: Option<consortium::StackSwitch>,
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

/// A 32-byte key kept in `path` (0600), made the first time.
fn ensure_secret_key(path: &Path) -> anyhow::Result<String> {
    if let Ok(hex_key) = std::fs::read_to_string(path) {
        return Ok(hex_key.trim().to_string());
    }
    std::fs::create_dir_all(path.parent().expect("has parent"))?;
    let key: [u8; 32] = rand::random();
    let hex_key = hex::encode(key);
    tls::write_private(path, hex_key.as_bytes())?;
    Ok(hex_key)
}

/// A demo bank's configuration at `config_path`: its cluster, its port, the
/// local SMS/e-mail receivers (served by the first bank only; the second sends
/// to the same ones) and `member` (its `[interbank]` section).
fn write_config(
    paths: &Paths,
    cluster: &Cluster,
    totp_key_hex: &str,
    config_path: &Path,
    port: u16,
    serves_receivers: bool,
    member: &str,
) -> anyhow::Result<Config> {
    let c = &cluster.config;
    let nodes: Vec<String> = c.nodes.iter().map(|n| format!("{}@{}:{}", n.name, n.host, n.port)).collect();
    let text = format!(
        r#"# Written by `flexibank-server stack`; edit the stack code, not this file.
[server]
listen = "127.0.0.1:{port}"
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
{receivers}sms_base_url = "https://127.0.0.1:8025"
sms_account_sid = "AC0000000000000000000000000000local"
sms_auth_token = "local-receiver-token"
sms_from = "+15550000000"
smtp_host = "127.0.0.1"
smtp_port = 2525
smtp_from = "FlexiBank <notifications@flexibank.example>"
extra_ca_pem = "{ca}"
{member}"#,
        receivers = if serves_receivers { format!("local_receivers_dir = \"{}\"\n", paths.root.join("var/outbox").display()) } else { String::new() },
        ca = paths.tls().join("ca.pem").display(),
        cert = paths.tls().join(tls::SERVER_CERT_FILE).display(),
        key = paths.tls().join(tls::SERVER_KEY_FILE).display(),
        db = c.database,
        app_user = c.app_user,
        app_password = c.app_password,
        su = c.superuser,
        su_password = c.superuser_password,
    );
    tls::write_private(config_path, text.as_bytes())?;
    Config::load(config_path)
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
    consortium::ensure_pki(paths)?;
    let totp_key = ensure_secret_key(&paths.totp_key())?;
    let member = consortium::interbank_toml(paths, consortium::BANK_A_ID, consortium::BANK_A_NAME, consortium::BANK_A_INTERBANK_PORT);
    let config = write_config(paths, cluster, &totp_key, &paths.config(), SERVER_PORT, true, &member)?;
    crate::db::Db::migrate(&config.database).await?;
    let db = crate::db::Db::connect(&config.database, config.notifications.enabled).await?;
    let state = crate::AppState::new(config.clone(), db, crate::metrics_handle())?;
    if let Some(credentials) = seed::seed_demo(&state).await? {
        seed::seed_demo_rates(&state).await?;
        add_credentials(paths, credentials, consortium::BANK_A_ID)?;
    }
    Ok(config)
}

/// Adds a freshly seeded bank's demo users to `var/demo/credentials.json`, marked with the bank.
fn add_credentials(paths: &Paths, mut seeded: seed::DemoCredentials, bank_id: &str) -> anyhow::Result<()> {
    let path = paths.credentials();
    let mut all = match std::fs::read_to_string(&path) {
        // The first bank's seeding starts the file afresh; a later bank's adds to it.
        Ok(text) if bank_id != consortium::BANK_A_ID => serde_json::from_str::<seed::DemoCredentials>(&text)?.users,
        _ => Vec::new(),
    };
    all.retain(|u| u.bank_id.as_deref() != Some(bank_id));
    for user in &mut seeded.users {
        user.bank_id = Some(bank_id.to_string());
    }
    all.extend(seeded.users);
    std::fs::create_dir_all(path.parent().expect("has parent"))?;
    tls::write_private(&path, &serde_json::to_vec_pretty(&seed::DemoCredentials { users: all })?)?;
    println!("seeded demo bank {bank_id}; credentials in {}", path.display());
    Ok(())
}

/// The consortium around the first bank: what runs besides it, stopped by pid.
struct Members {
    clusters: Vec<Cluster>,
    bank_b_config: Config,
    switch_pid: u32,
    bank_b_pid: u32,
}

/// The switch and bank B, started (both in the background), with demo keys.
/// On failure what it started is stopped again.
async fn start_members(paths: &Paths, bank_a_config: &Config) -> anyhow::Result<Members> {
    let (switch_cluster, switch_url) = consortium::ensure_switch_database(paths).await?;
    let bank_b_cluster = match consortium::ensure_bank_b_cluster(paths).await {
        Ok(cluster) => cluster,
        Err(e) => {
            let _ = switch_cluster.down().await;
            return Err(e);
        }
    };
    let mut members = Members { clusters: vec![switch_cluster, bank_b_cluster], bank_b_config: bank_a_config.clone(), switch_pid: 0, bank_b_pid: 0 };
    let started = async {
        let (config, seeded) = consortium::prepare_bank_b(paths, &members.clusters[1]).await?;
        if let Some(seeded) = seeded {
            add_credentials(paths, seeded, consortium::BANK_B_ID)?;
        }
        members.bank_b_config = config;
        consortium::register_banks(&switch_url)?;
        members.switch_pid = consortium::spawn_switch(paths, &switch_url).await?;
        members.bank_b_pid = consortium::spawn_bank_b(paths).await?;
        consortium::seed_keys(&members.bank_b_config, "alice").await?;
        consortium::seed_keys(bank_a_config, "bob").await?;
        anyhow::Ok(())
    };
    if let Err(e) = started.await {
        stop_members(&members).await;
        return Err(e.context("starting the consortium (the switch and the second bank)"));
    }
    Ok(members)
}

async fn stop_members(members: &Members) {
    for pid in [members.bank_b_pid, members.switch_pid] {
        stop_pid(pid).await;
    }
    for cluster in &members.clusters {
        let _ = cluster.down().await;
    }
}

/// SIGTERM, then SIGKILL after `STOP_TIMEOUT`: only the pid this stack started.
async fn stop_pid(pid: u32) {
    let pid = pid as i32;
    if pid == 0 || pid as u32 == std::process::id() || !process_alive(pid) {
        return;
    }
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let started = Instant::now();
    while process_alive(pid) && started.elapsed() < STOP_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if process_alive(pid) {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

fn write_stack_file(paths: &Paths, cluster: &Cluster, server_pid: u32, members: &Members) -> anyhow::Result<()> {
    let relative = |p: &Path| p.strip_prefix(&paths.root).unwrap_or(p).display().to_string();
    let (banks, switch) = consortium::stack_entries(paths, server_pid, members.bank_b_pid, members.switch_pid);
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
        banks,
        switch: Some(switch),
    };
    std::fs::write(paths.stack_file(), serde_json::to_vec_pretty(&stack)?)?;
    Ok(())
}

fn print_welcome(paths: &Paths) {
    println!("\nFlexiBank is up at https://127.0.0.1:{SERVER_PORT} (CA: var/tls/ca.pem)");
    println!(
        "The consortium: {} (bank {}) at https://127.0.0.1:{}, and the switch at https://127.0.0.1:{} (mutual TLS, var/consortium)",
        consortium::BANK_B_NAME,
        consortium::BANK_B_ID,
        consortium::BANK_B_PORT,
        consortium::SWITCH_PORT
    );
    println!("Demo users and passwords (both banks): {}", paths.credentials().display());
    println!("A current TOTP code for a demo user: flexibank-server demo-code alice [--bank {}]", consortium::BANK_B_ID);
    println!("Try: curl --cacert var/tls/ca.pem https://127.0.0.1:{SERVER_PORT}/readyz\n");
}

/// `make run`: everything in the foreground until Ctrl-C, then all stopped.
pub async fn run(paths: &Paths, open_app: Option<&Path>) -> anyhow::Result<()> {
    let (cluster, config) = prepare(paths).await?;
    let members = match start_members(paths, &config).await {
        Ok(members) => members,
        Err(e) => {
            let _ = cluster.down().await;
            return Err(e);
        }
    };
    let server = match crate::start(config).await {
        Ok(server) => server,
        Err(e) => {
            stop_members(&members).await;
            let _ = cluster.down().await;
            return Err(e);
        }
    };
    write_stack_file(paths, &cluster, std::process::id(), &members)?;
    print_welcome(paths);
    let mut app = open_app.and_then(|binary| open_desktop_app(paths, binary));
    println!("Ctrl-C stops the servers, the switch and the PostgreSQL nodes.");
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
    stop_members(&members).await;
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

/// `make up`: start in the background, return once every server answers `/readyz`.
pub async fn up(paths: &Paths) -> anyhow::Result<()> {
    if let Ok(text) = std::fs::read_to_string(paths.stack_file()) {
        let stack: StackFile = serde_json::from_str(&text)?;
        if process_alive(stack.server_pid as i32) {
            println!("already up (server pid {})", stack.server_pid);
            return Ok(());
        }
    }
    let (cluster, config) = prepare(paths).await?;
    let members = match start_members(paths, &config).await {
        Ok(members) => members,
        Err(e) => {
            let _ = cluster.down().await;
            return Err(e);
        }
    };
    let started = async {
        let pid = spawn_server(&paths.config(), &paths.server_log())?;
        if let Err(e) = wait_ready(paths, pid, SERVER_PORT, &paths.server_log()).await {
            stop_pid(pid).await;
            return Err(e);
        }
        anyhow::Ok(pid)
    };
    let pid = match started.await {
        Ok(pid) => pid,
        Err(e) => {
            stop_members(&members).await;
            let _ = cluster.down().await;
            return Err(e);
        }
    };
    write_stack_file(paths, &cluster, pid, &members)?;
    print_welcome(paths);
    println!("`make down` stops it. Server logs: {}, {}; the switch's: {}", paths.server_log().display(), paths.server_b_log().display(), paths.switch_log().display());
    Ok(())
}

/// A bank's server in the background, in its own process group (Ctrl-C in
/// the terminal that ran `make up` must not reach it).
fn spawn_server(config: &Path, log_path: &Path) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(log_path.parent().expect("has parent"))?;
    let log = std::fs::File::create(log_path)?;
    let child = std::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the server")?;
    Ok(child.id())
}

async fn wait_ready(paths: &Paths, pid: u32, port: u16, log: &Path) -> anyhow::Result<()> {
    let ca = std::fs::read(paths.tls().join(tls::CA_CERT_FILE))?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .timeout(Duration::from_secs(2))
        .build()?;
    let url = format!("https://127.0.0.1:{port}/readyz");
    let started = Instant::now();
    while started.elapsed() < READY_TIMEOUT {
        if !process_alive(pid as i32) {
            anyhow::bail!("the server exited; see {}", log.display());
        }
        if let Ok(response) = client.get(&url).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("the server was not ready within {READY_TIMEOUT:?}; see {}", log.display())
}

/// `make down`: stop the servers and the switch (by their pids) and every cluster.
pub async fn down(paths: &Paths) -> anyhow::Result<()> {
    if let Ok(text) = std::fs::read_to_string(paths.stack_file()) {
        let stack: StackFile = serde_json::from_str(&text)?;
        let mut pids = vec![stack.server_pid];
        pids.extend(stack.banks.iter().map(|b| b.pid));
        pids.extend(stack.switch.iter().map(|s| s.pid));
        for pid in pids {
            stop_pid(pid).await;
        }
    }
    for dir in [paths.cluster(), paths.cluster_b(), paths.cluster_switch()] {
        if dir.join("cluster.json").exists() {
            Cluster::load(&dir)?.down().await?;
        }
    }
    let _ = std::fs::remove_file(paths.stack_file());
    println!("stopped");
    Ok(())
}

pub(crate) fn process_alive(pid: i32) -> bool {
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
