//! The `interbank` shape: two banks and a switch, 32 clients paying by key
//! across them in both directions. The switch runs as its own process (its
//! own one-node cluster and database) next to the two bench banks; the
//! consortium's CA and certificates live under the run's directory.

use std::{
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use flexibank_consortium::pki;
use flexibank_replication::{Cluster, InitOptions};
use rand::seq::SliceRandom;

use super::{
    load::{percentile, ShapeResult},
    stack::BenchStack,
};
use crate::ClusterGuard;

pub const BANK_A: &str = "00000001";
pub const BANK_B: &str = "00000002";
/// Each bank's liquidity at the switch: far more than any run moves.
const PREFUNDED: &str = "1000000000000.00";

/// The switch and what it needs, started before the banks (which announce themselves to it).
pub struct Switch {
    pub url: String,
    pub tls: PathBuf,
    database_url: String,
    process: Child,
    // Dropped last: the database outlives the process handle.
    _cluster: ClusterGuard,
}

impl Drop for Switch {
    fn drop(&mut self) {
        unsafe { libc::kill(self.process.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Switch {
    /// `switch_bin` is the `flexibank-switch` built with the server under test.
    /// `pg_conf`: the bench's extra postgresql.conf settings, for the switch's database too.
    pub async fn start(dir: &Path, switch_bin: &Path, pg_conf: &[(String, String)], wal_segments_ahead: usize) -> anyhow::Result<Switch> {
        let dir = std::path::absolute(dir)?;
        let options = InitOptions { dir: dir.join("pg-switch"), replicas: 0, sync: false, extra_conf: pg_conf.to_vec(), ..InitOptions::default() };
        let cluster = Cluster::init(options).await?;
        let cluster = ClusterGuard(cluster, dir.join("pg-switch"));
        let c = &cluster.0.config;
        let node = &c.nodes[0];
        let superuser = cluster.0.connect_superuser(&node.name).await?;
        superuser.batch_execute("CREATE DATABASE flexibank_switch").await?;
        super::stack::fill_wal_segments(&superuser, wal_segments_ahead).await?;
        superuser.batch_execute("CHECKPOINT").await?;
        let database_url = format!("host={} port={} user={} password={} dbname=flexibank_switch", node.host, node.port, c.superuser, c.superuser_password);
        let tls = dir.join("consortium");
        pki::init_ca(&tls)?;
        pki::issue_switch_cert(&tls, &[])?;
        let database = flexibank_switch::DatabaseConfig::new(database_url.clone());
        for (bank, name) in [(BANK_A, "Alpha Bank"), (BANK_B, "Beta Bank")] {
            pki::issue_bank_cert(&tls, bank)?;
            flexibank_switch::add_bank(&database, bank, name).await?;
            flexibank_switch::fund(&database, bank, PREFUNDED, "0.00").await?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.join("switch.log"))?;
        let process = std::process::Command::new(switch_bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-dir")
            .arg(&tls)
            .env("FLEXIBANK_SWITCH_DATABASE_URL", &database_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", switch_bin.display()))?;
        let switch = Switch { url: format!("https://127.0.0.1:{port}"), tls, database_url, process, _cluster: cluster };
        let client = pki::bank_client(&switch.tls, &switch.tls.join(pki::CA_CERT_FILE), BANK_A, Duration::from_secs(2))?;
        let started = Instant::now();
        while client.get(format!("{}/readyz", switch.url)).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "the switch did not come up; see {}", dir.join("switch.log").display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(switch)
    }

    /// A bench bank's `[interbank]` section; `group_linger_ms` overrides the server's default.
    pub fn member_toml(&self, bank_id: &str, name: &str, group_linger_ms: Option<u64>) -> String {
        let linger = group_linger_ms.map(|ms| format!("group_linger_ms = {ms}\n")).unwrap_or_default();
        format!(
            "\n[interbank]\nbank_id = \"{bank_id}\"\nbank_name = \"{name}\"\nswitch_url = \"{}\"\ntls_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n{linger}",
            self.url,
            self.tls.display()
        )
    }

    /// Waits until both banks told the switch where they listen.
    pub async fn wait_for_members(&self) -> anyhow::Result<()> {
        let (client, connection) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let started = Instant::now();
        loop {
            let known: i64 = client.query_one("SELECT count(*) FROM banks WHERE interbank_addr IS NOT NULL", &[]).await?.get(0);
            if known == 2 {
                return Ok(());
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "the banks did not reach the switch");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `ANALYZE` of the switch's database, as autovacuum does in its first minute.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        let (client, connection) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute("ANALYZE").await?;
        Ok(())
    }

    /// Forgets the statements seen so far (the set-up's), when pg_stat_statements is loaded.
    pub async fn reset_statements(&self) -> anyhow::Result<()> {
        let (client, connection) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        super::report::reset_statements(&client).await
    }

    /// The switch database's statements by time (with pg_stat_statements loaded), per payment; then reset.
    pub async fn print_statements(&self, payments: u64) -> anyhow::Result<()> {
        let (client, connection) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        super::report::print_statements(&client, "Switch statements, per payment", payments).await
    }

    /// Every bank's settlement account against its position (`flexibank-switch reconcile`).
    pub async fn reconciles(&self) -> anyhow::Result<bool> {
        let config = flexibank_switch::ReconcileConfig {
            database: flexibank_switch::DatabaseConfig::new(self.database_url.clone()),
            tls_dir: self.tls.clone(),
            call_timeout_ms: 5_000,
        };
        let report = flexibank_switch::reconcile(&config).await?;
        if !report.ok() {
            eprintln!("RECONCILE\n{}", report.table());
        }
        Ok(report.ok())
    }
}

/// A random key for each bench user's first account at `bank`; the keys' values.
pub async fn register_keys(bank: &BenchStack, tokens: &[String]) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    for (user, token) in bank.users.iter().zip(tokens) {
        let response = bank
            .http
            .post(format!("{}/v1/keys", bank.base_url))
            .bearer_auth(token)
            .json(&serde_json::json!({"account_id": user.accounts[0].0, "type": "random"}))
            .send()
            .await?;
        anyhow::ensure!(response.status().as_u16() == 201, "registering a key: {}", response.status());
        let key: serde_json::Value = response.json().await?;
        keys.push(key["value"].as_str().context("a key's value")?.to_string());
    }
    Ok(keys)
}

/// One side of the run: a bank's clients and the keys they pay at the other bank.
pub struct Side<'a> {
    pub bank: &'a BenchStack,
    pub tokens: &'a [String],
    pub payee_keys: Arc<Vec<String>>,
}

/// WAL both banks' primaries have written so far: (bytes, full-page images), what their replicas replay.
async fn both_banks_wal(a: &Side<'_>, b: &Side<'_>) -> Option<(f64, f64)> {
    let (a, b) = (a.bank.wal_written().await.ok()?, b.bank.wal_written().await.ok()?);
    Some((a.0 + b.0, a.1 + b.1))
}

/// `clients` payers, alternately at bank A paying keys at bank B and the other way, for `duration`.
pub async fn run(a: Side<'_>, b: Side<'_>, clients: usize, duration: Duration) -> ShapeResult {
    let (a_cpu_before, b_cpu_before) = (a.bank.cpu_seconds(), b.bank.cpu_seconds());
    let receivers_cpu_before = (a.bank.sms_receiver_cpu_seconds(), b.bank.sms_receiver_cpu_seconds());
    let wal_before = both_banks_wal(&a, &b).await;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let side = if client % 2 == 0 { &a } else { &b };
        let user = &side.bank.users[(client / 2) % side.bank.users.len()];
        let token = side.tokens[(client / 2) % side.tokens.len()].clone();
        let own: Vec<uuid::Uuid> = user.accounts.iter().map(|a| a.0).collect();
        let (http, base, keys) = (side.bank.http.clone(), side.bank.base_url.clone(), side.payee_keys.clone());
        tasks.push(tokio::spawn(async move {
            // (latency µs, status) per payment
            let mut samples: Vec<(u32, u16)> = Vec::new();
            while Instant::now() < deadline {
                let body = {
                    let mut rng = rand::thread_rng();
                    serde_json::json!({"from_account_id": own.choose(&mut rng), "key": {"type": "random", "value": keys.choose(&mut rng)}, "amount": "1.00"})
                };
                let sent = Instant::now();
                let request = http.post(format!("{base}/v1/interbank/payments")).bearer_auth(&token).header("Idempotency-Key", uuid::Uuid::now_v7().to_string()).json(&body);
                let status = match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        status
                    }
                    Err(_) => 599,
                };
                samples.push((sent.elapsed().as_micros().min(u32::MAX as u128) as u32, status));
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (a_cpu_after, b_cpu_after) = (a.bank.cpu_seconds(), b.bank.cpu_seconds());
    let wal = both_banks_wal(&a, &b).await.zip(wal_before).map(|(after, before)| (after.0 - before.0, after.1 - before.1));
    // Each bank has its own receiver (as each would have its own provider account).
    let sms_receiver_cpu_s = [(a.bank.sms_receiver_cpu_seconds(), receivers_cpu_before.0), (b.bank.sms_receiver_cpu_seconds(), receivers_cpu_before.1)]
        .into_iter()
        .map(|(after, before)| after.zip(before).map(|(after, before)| after - before))
        .sum::<Option<f64>>();
    let committed = samples.iter().filter(|s| s.1 == 201).count() as u64;
    let mut latencies: Vec<u32> = samples.iter().map(|s| s.0).collect();
    latencies.sort_unstable();
    let postgres_cpu_s = (a_cpu_after.1 - a_cpu_before.1) + (b_cpu_after.1 - b_cpu_before.1);
    ShapeResult {
        shape: "interbank".into(),
        clients,
        duration_s: elapsed,
        requests: samples.len() as u64,
        transfers: committed,
        transfers_per_s: committed as f64 / elapsed,
        requests_per_s: samples.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().map(|l| *l as f64 / 1000.0).unwrap_or(0.0),
        retries_per_transfer: 0.0,
        // A 202 (pending past the customer's wait) counts with the refusals: not committed in time.
        status_4xx: samples.iter().filter(|s| (400..500).contains(&s.1) || s.1 == 202).count() as u64,
        status_5xx: samples.iter().filter(|s| s.1 >= 500).count() as u64,
        server_cpu_s: (a_cpu_after.0 - a_cpu_before.0) + (b_cpu_after.0 - b_cpu_before.0),
        postgres_cpu_s,
        replica_share: None,
        postgres_cpu_us_per_transfer: (committed > 0).then(|| postgres_cpu_s * 1e6 / committed as f64),
        wal_bytes_per_transfer: wal.filter(|_| committed > 0).map(|w| w.0 / committed as f64),
        wal_fpi_per_transfer: wal.filter(|_| committed > 0).map(|w| w.1 / committed as f64),
        timeline: Vec::new(),
        sms_receiver_cpu_s,
        storm: None,
    }
}
