//! The local stack's consortium (issue 16): a second bank with its own
//! replicated cluster (`var/pg-b`), the switch with its own one-node cluster
//! (`var/pg-switch`), the consortium CA and certificates (`var/consortium`),
//! both banks prefunded, and demo keys. No component reads another's database:
//! each has its own cluster, roles and credentials.
//!
//! The switch runs as its own binary (`flexibank-switch`, next to this one):
//! the bank's crate does not link the switch's.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::Context;
use flexibank_consortium::pki;
use flexibank_replication::{Cluster, InitOptions};
use serde::{Deserialize, Serialize};

use super::Paths;
use crate::{access::Caller, config::Config, interbank::keys, request::RequestMeta, seed, tls};

pub const BANK_A_ID: &str = "00000001";
pub const BANK_A_NAME: &str = "FlexiBank";
pub const BANK_B_ID: &str = "00000002";
pub const BANK_B_NAME: &str = "Harbour Bank";
pub const BANK_B_PORT: u16 = 8444;
pub const SWITCH_PORT: u16 = 9443;
pub const BANK_A_INTERBANK_PORT: u16 = 9444;
pub const BANK_B_INTERBANK_PORT: u16 = 9445;
/// What each demo bank prefunds at the switch (INR), with no net debit cap.
const PREFUNDED: &str = "10000000.00";
const SWITCH_DATABASE: &str = "flexibank_switch";
/// Bank B's cluster: a primary and one synchronous replica (the first bank has two).
const BANK_B_REPLICAS: usize = 1;
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackBank {
    pub bank_id: String,
    pub name: String,
    pub server_url: String,
    pub ca_cert: String,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackSwitch {
    pub url: String,
    /// The consortium CA (banks and the switch authenticate each other with it).
    pub ca_cert: String,
    pub pid: u32,
}

impl Paths {
    pub fn consortium_tls(&self) -> PathBuf {
        self.root.join("var/consortium")
    }
    pub fn cluster_b(&self) -> PathBuf {
        self.root.join("var/pg-b")
    }
    pub fn cluster_switch(&self) -> PathBuf {
        self.root.join("var/pg-switch")
    }
    pub fn config_b(&self) -> PathBuf {
        self.root.join("var/server-b.toml")
    }
    pub fn server_b_log(&self) -> PathBuf {
        self.root.join("var/log/server-b.log")
    }
    pub fn switch_log(&self) -> PathBuf {
        self.root.join("var/log/switch.log")
    }
}

/// The `[interbank]` section of a demo bank's configuration.
pub fn interbank_toml(paths: &Paths, bank_id: &str, name: &str, interbank_port: u16) -> String {
    format!(
        r#"
[interbank]
bank_id = "{bank_id}"
bank_name = "{name}"
switch_url = "https://127.0.0.1:{SWITCH_PORT}"
tls_dir = "{tls}"
listen = "127.0.0.1:{interbank_port}"
"#,
        tls = paths.consortium_tls().display()
    )
}

/// The consortium CA, the switch's certificate and both banks' (kept when they exist).
pub fn ensure_pki(paths: &Paths) -> anyhow::Result<()> {
    let dir = paths.consortium_tls();
    pki::init_ca(&dir)?;
    if !dir.join(pki::SWITCH_CERT_FILE).exists() {
        pki::issue_switch_cert(&dir, &[])?;
    }
    for bank in [BANK_A_ID, BANK_B_ID] {
        if !dir.join(pki::bank_cert_file(bank)).exists() {
            pki::issue_bank_cert(&dir, bank)?;
        }
    }
    Ok(())
}

async fn ensure_cluster(dir: PathBuf, replicas: usize) -> anyhow::Result<Cluster> {
    if dir.join("cluster.json").exists() {
        let cluster = Cluster::load(&dir)?;
        cluster.up().await?;
        return Ok(cluster);
    }
    println!("creating a PostgreSQL cluster with {replicas} replica(s) under {}", dir.display());
    Cluster::init(InitOptions { dir, replicas, base_port: None, sync: replicas > 0, extra_conf: vec![] }).await
}

pub async fn ensure_bank_b_cluster(paths: &Paths) -> anyhow::Result<Cluster> {
    ensure_cluster(paths.cluster_b(), BANK_B_REPLICAS).await
}

/// The switch's one-node cluster and its database; the libpq URL of it.
pub async fn ensure_switch_database(paths: &Paths) -> anyhow::Result<(Cluster, String)> {
    let cluster = ensure_cluster(paths.cluster_switch(), 0).await?;
    let c = &cluster.config;
    let node = &c.nodes[0];
    let client = cluster.connect_superuser(&node.name).await?;
    if client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&SWITCH_DATABASE]).await?.is_none() {
        client.batch_execute(&format!("CREATE DATABASE {SWITCH_DATABASE}")).await?;
    }
    let url = format!("host={} port={} user={} password={} dbname={SWITCH_DATABASE}", node.host, node.port, c.superuser, c.superuser_password);
    Ok((cluster, url))
}

fn switch_binary() -> anyhow::Result<PathBuf> {
    let binary = std::env::current_exe()?.with_file_name("flexibank-switch");
    anyhow::ensure!(binary.exists(), "{} is not built (make build)", binary.display());
    Ok(binary)
}

/// Registers both banks at the switch and prefunds them (`flexibank-switch add-bank`, `fund`).
pub fn register_banks(database_url: &str) -> anyhow::Result<()> {
    let binary = switch_binary()?;
    for (bank, name) in [(BANK_A_ID, BANK_A_NAME), (BANK_B_ID, BANK_B_NAME)] {
        // Safe to repeat: a member already under this name is left as it is.
        let added = std::process::Command::new(&binary)
            .args(["add-bank", "--id", bank, "--name", name])
            .env("FLEXIBANK_SWITCH_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(added.success(), "registering bank {bank} at the switch failed");
        let funded = std::process::Command::new(&binary)
            .args(["fund", "--id", bank, "--prefunded", PREFUNDED, "--net-debit-cap", "0.00"])
            .env("FLEXIBANK_SWITCH_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(funded.success(), "funding bank {bank} at the switch failed");
    }
    Ok(())
}

/// The switch, in the background, in its own process group; its pid once it answers.
pub async fn spawn_switch(paths: &Paths, database_url: &str) -> anyhow::Result<u32> {
    std::fs::create_dir_all(paths.switch_log().parent().expect("has parent"))?;
    let log = std::fs::File::create(paths.switch_log())?;
    let child = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(switch_binary()?)
            .args(["serve", "--listen", &format!("127.0.0.1:{SWITCH_PORT}")])
            .arg("--tls-dir")
            .arg(paths.consortium_tls())
            .env("FLEXIBANK_SWITCH_DATABASE_URL", database_url)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting the switch")?
    };
    let pid = child.id();
    let dir = paths.consortium_tls();
    let client = pki::bank_client(&dir, &dir.join(pki::CA_CERT_FILE), BANK_A_ID, Duration::from_secs(2))?;
    let url = format!("https://127.0.0.1:{SWITCH_PORT}/readyz");
    let started = std::time::Instant::now();
    while started.elapsed() < READY_TIMEOUT {
        anyhow::ensure!(super::process_alive(pid as i32), "the switch exited; see {}", paths.switch_log().display());
        if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(pid);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("the switch was not ready within {READY_TIMEOUT:?}; see {}", paths.switch_log().display())
}

/// Bank B's configuration, migrations and demo customers (the same people as
/// bank A's: alice banks at both, with the same national id). Its SMS and
/// e-mail go to the receivers bank A's server runs.
pub async fn prepare_bank_b(paths: &Paths, cluster: &Cluster) -> anyhow::Result<(Config, Option<seed::DemoCredentials>)> {
    let totp_key = super::ensure_secret_key(&paths.root.join("var/secrets/totp-b.key"))?;
    let member = interbank_toml(paths, BANK_B_ID, BANK_B_NAME, BANK_B_INTERBANK_PORT);
    let config = super::write_config(paths, cluster, &totp_key, &paths.config_b(), BANK_B_PORT, false, &member)?;
    crate::db::Db::migrate(&config.database).await?;
    let db = crate::db::Db::connect(&config.database, config.notifications.enabled).await?;
    let state = crate::AppState::new(config.clone(), db, crate::metrics_handle())?;
    let seeded = seed::seed_demo(&state).await?;
    if seeded.is_some() {
        seed::seed_demo_rates(&state).await?;
    }
    Ok((config, seeded))
}

/// Demo keys, once (the switch must be up): alice's national id at bank B,
/// bob's at bank A; so alice at A can pay herself at B by "DEMO-alice", and
/// bob at B himself at A by "DEMO-bob".
pub async fn seed_keys(config: &Config, username: &str) -> anyhow::Result<()> {
    let db = crate::db::Db::connect(&config.database, config.notifications.enabled).await?;
    let state = crate::AppState::new(config.clone(), db, crate::metrics_handle())?;
    let client = state.db.writer().await.map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    let row = client
        .query_one(
            "SELECT u.id, u.full_name, u.branch_id, u.national_id,
                    (SELECT a.id FROM accounts a JOIN account_owners o ON o.account_id = a.id
                      WHERE o.user_id = u.id AND a.currency = 'INR' ORDER BY a.number LIMIT 1),
                    EXISTS (SELECT 1 FROM payment_keys k WHERE k.user_id = u.id AND k.type = 'national_id')
               FROM users u WHERE u.username = $1",
            &[&username],
        )
        .await?;
    if row.get::<_, bool>(5) {
        return Ok(());
    }
    let caller = Caller {
        user_id: row.get(0),
        username: username.to_string(),
        full_name: row.get(1),
        role: crate::access::Role::Customer,
        branch_id: row.get(2),
        session_hash: Vec::new(),
    };
    let meta = RequestMeta { request_id: "stack-seed".into(), client_ip: [127, 0, 0, 1].into() };
    let request = keys::NewKey { account_id: row.get(4), key_type: flexibank_consortium::keys::KeyType::NationalId, value: row.get(3) };
    keys::register(&state, &caller, &meta, request).await.map_err(|e| anyhow::anyhow!("registering {username}'s key: {}", e.detail))?;
    Ok(())
}

/// Bank B's server in the background, like bank A's.
pub async fn spawn_bank_b(paths: &Paths) -> anyhow::Result<u32> {
    let pid = super::spawn_server(&paths.config_b(), &paths.server_b_log())?;
    super::wait_ready(paths, pid, BANK_B_PORT, &paths.server_b_log()).await?;
    Ok(pid)
}

pub fn stack_entries(paths: &Paths, bank_a_pid: u32, bank_b_pid: u32, switch_pid: u32) -> (Vec<StackBank>, StackSwitch) {
    let relative = |p: &Path| p.strip_prefix(&paths.root).unwrap_or(p).display().to_string();
    let ca = relative(&paths.tls().join(tls::CA_CERT_FILE));
    let banks = vec![
        StackBank {
            bank_id: BANK_A_ID.into(),
            name: BANK_A_NAME.into(),
            server_url: format!("https://127.0.0.1:{}", super::SERVER_PORT),
            ca_cert: ca.clone(),
            pid: bank_a_pid,
        },
        StackBank { bank_id: BANK_B_ID.into(), name: BANK_B_NAME.into(), server_url: format!("https://127.0.0.1:{BANK_B_PORT}"), ca_cert: ca, pid: bank_b_pid },
    ];
    let switch = StackSwitch {
        url: format!("https://127.0.0.1:{SWITCH_PORT}"),
        ca_cert: relative(&paths.consortium_tls().join(pki::CA_CERT_FILE)),
        pid: switch_pid,
    };
    (banks, switch)
}
