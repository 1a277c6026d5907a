//! The benchmark's own stack: a cluster, the real server binary as a child
//! process (so its CPU time can be measured apart), and a seeded bank of
//! many accounts owned by one user per virtual client.

use std::{
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use flexibank_replication::{Cluster, InitOptions};
use flexibank_server::auth::{password, totp};
use uuid::Uuid;

use crate::{ca_client, ClusterGuard};

pub const BENCH_PASSWORD: &str = "benchmark password";

pub struct BenchUser {
    pub username: String,
    pub totp_secret: Vec<u8>,
    pub accounts: Vec<(Uuid, String)>,
}

pub struct BenchStack {
    pub dir: PathBuf,
    server_bin: PathBuf,
    pub base_url: String,
    pub http: reqwest::Client,
    pub server: Child,
    pub users: Vec<BenchUser>,
    pub all_numbers: Vec<String>,
    /// With notifications on: the Twilio-shaped receiver every bench user's SMS goes to.
    pub sms: Option<crate::receivers::TwilioReceiver>,
    // Dropped last: the cluster outlives the server process handle.
    pub cluster: ClusterGuard,
}

impl Drop for BenchStack {
    fn drop(&mut self) {
        unsafe { libc::kill(self.server.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

pub struct StackSpec<'a> {
    pub dir: &'a Path,
    pub server_bin: &'a Path,
    pub replicas: usize,
    pub auto_failover: bool,
    pub clients: usize,
    pub accounts: usize,
    /// Movements write notification events (the outbox) or not.
    pub notifications: bool,
    /// Extra postgresql.conf settings (experiments, diagnostics).
    pub pg_conf: Vec<(String, String)>,
    /// The bank's `[interbank]` section, when it is a member of a consortium.
    pub interbank: Option<String>,
    /// WAL segments written at the start for the checkpoints to keep (`fill_wal_segments`).
    pub wal_segments_ahead: usize,
}

/// The server process on `dir/server.toml`, appending to `dir/server.log`.
fn spawn_server(server_bin: &Path, dir: &Path) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new().append(true).open(dir.join("server.log"))?;
    std::process::Command::new(server_bin)
        .args(["serve", "--config"])
        .arg(dir.join("server.toml"))
        .env("RUST_LOG", std::env::var("FLEXIBANK_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", server_bin.display()))
}

/// A bank that has run for a while reuses the WAL segments its checkpoints
/// finished with (`min_wal_size`, replication/src/conf.rs); a new cluster
/// has none, and every 16 MB of WAL its commits wait while a new segment is
/// written with zeroes and flushed (~120 ms at the uniform shape's ~10 MB/s).
/// So every shape, pgbench's too, runs on reused segments, as a bank's day
/// does: write them once here (each switch starts a new segment, on the
/// replicas too), and `settle`'s checkpoints, on every node, keep them.
pub async fn fill_wal_segments(db: &tokio_postgres::Client, segments: usize) -> anyhow::Result<()> {
    for _ in 0..segments {
        // A switch needs something written since the last one; txid_current() writes a commit record.
        db.batch_execute("SELECT txid_current(); SELECT pg_switch_wal();").await?;
    }
    Ok(())
}

/// Enough segments for the WAL of the longest shape between two checkpoints
/// (uniform writes 11–13 MB a second, more in a fast hour, and the
/// dispatcher's digests after it; hot runs 60 s), at most `min_wal_size`. At
/// 12 MB a second a 20 s run outran its segments in its last seconds (p99
/// 128–206 ms there, against 20–35 before).
pub fn wal_segments_ahead(longest_shape: Duration) -> usize {
    const WAL_BYTES_PER_S: u64 = 16 << 20;
    const SEGMENT_BYTES: u64 = 16 << 20;
    const MIN_WAL_SEGMENTS: u64 = 64;
    (longest_shape.as_secs() * WAL_BYTES_PER_S / SEGMENT_BYTES + 2).min(MIN_WAL_SEGMENTS) as usize
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl BenchStack {
    pub async fn start(spec: StackSpec<'_>) -> anyhow::Result<BenchStack> {
        let dir = std::path::absolute(spec.dir)?;
        std::fs::create_dir_all(&dir)?;
        let cluster = Cluster::init(InitOptions { dir: dir.join("pg"), replicas: spec.replicas, extra_conf: spec.pg_conf.clone(), ..InitOptions::default() }).await?;
        let cluster = ClusterGuard(cluster, dir.join("pg"));
        let tls_dir = dir.join("tls");
        flexibank_server::tls::ensure_local_tls(&tls_dir)?;
        let key: [u8; 32] = rand::random();
        let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let port = free_port()?;
        let sms = if spec.notifications { Some(crate::receivers::TwilioReceiver::start_on_own_thread(&tls_dir)) } else { None };
        let sms_config = match &sms {
            Some(r) => format!(
                "sms_base_url = \"{}\"\nsms_account_sid = \"{}\"\nsms_auth_token = \"{}\"\nsms_from = \"+15550001111\"\nextra_ca_pem = \"{}\"\n",
                r.base_url,
                crate::receivers::TWILIO_SID,
                crate::receivers::TWILIO_TOKEN,
                tls_dir.join("ca.pem").display()
            ),
            None => String::new(),
        };
        let c = &cluster.0.config;
        let nodes: Vec<String> = c.nodes.iter().map(|n| format!("{}@{}:{}", n.name, n.host, n.port)).collect();
        let config = format!(
            r#"[server]
listen = "127.0.0.1:{port}"
tls_cert = "{cert}"
tls_key = "{key}"
log_format = "json"

[database]
nodes = {nodes:?}
dbname = "{db}"
user = "{user}"
password = "{password}"
migration_user = "{su}"
migration_password = "{su_password}"
pool_size = 48
auto_failover = {auto_failover}

[security]
totp_key_hex = "{key_hex}"
login_rate_per_minute = 100000

[notifications]
enabled = {notifications}
{sms_config}{interbank}"#,
            interbank = spec.interbank.as_deref().unwrap_or_default(),
            notifications = spec.notifications,
            cert = tls_dir.join("server.pem").display(),
            key = tls_dir.join("server-key.pem").display(),
            db = c.database,
            user = c.app_user,
            password = c.app_password,
            su = c.superuser,
            su_password = c.superuser_password,
            auto_failover = spec.auto_failover,
        );
        let config_path = dir.join("server.toml");
        flexibank_server::tls::write_private(&config_path, config.as_bytes())?;
        std::fs::File::create(dir.join("server.log"))?;
        let server = spawn_server(spec.server_bin, &dir)?;
        let http = ca_client(&std::fs::read(tls_dir.join("ca.pem"))?);
        let base_url = format!("https://127.0.0.1:{port}");
        let phone = spec.notifications.then_some("+15550100000");
        let server_bin = spec.server_bin.to_path_buf();
        let mut stack = BenchStack { dir, server_bin, base_url, http, server, users: Vec::new(), all_numbers: Vec::new(), sms, cluster };
        stack.wait_ready().await?;
        stack.seed(spec.clients, spec.accounts, &key, phone).await?;
        fill_wal_segments(&stack.superuser("primary").await?, spec.wal_segments_ahead).await?;
        Ok(stack)
    }

    /// The same server (port, database, sessions) started again with notification events off, so
    /// that one run measures a shape with notifications on and off (issue 17's on ÷ off).
    pub async fn restart_without_notifications(&mut self) -> anyhow::Result<()> {
        unsafe { libc::kill(self.server.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.server.try_wait()?.is_none() {
            anyhow::ensure!(Instant::now() < deadline, "the server did not stop within 15 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let config_path = self.dir.join("server.toml");
        let config = std::fs::read_to_string(&config_path)?;
        anyhow::ensure!(config.contains("[notifications]\nenabled = true"), "the bench's server runs with notifications on");
        let config = config.replace("[notifications]\nenabled = true", "[notifications]\nenabled = false");
        flexibank_server::tls::write_private(&config_path, config.as_bytes())?;
        self.server = spawn_server(&self.server_bin, &self.dir)?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.server.try_wait()? {
                anyhow::bail!("the server exited ({status}); see {}", self.dir.join("server.log").display());
            }
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base_url)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "server not ready after 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn superuser(&self, node: &str) -> anyhow::Result<tokio_postgres::Client> {
        self.cluster.0.connect_superuser(node).await
    }

    /// One user per virtual client (TOTP enrolled), `accounts` INR accounts
    /// dealt out among them, each funded by a real deposit, then ANALYZE:
    /// right after ANALYZE on empty tables the planner picks sequential scans
    /// that take relation-wide predicate locks.
    async fn seed(&mut self, clients: usize, accounts: usize, totp_key: &[u8; 32], phone: Option<&str>) -> anyhow::Result<()> {
        let db = self.superuser("primary").await?;
        let branch: Uuid = db.query_one("INSERT INTO branches (code, name) VALUES ('BENCH', 'Benchmark') RETURNING id", &[]).await?.get(0);
        db.execute("SELECT ensure_vaults($1, 'INR')", &[&branch]).await?;
        let hash = password::hash_blocking(BENCH_PASSWORD, password::Argon2Params { memory_kib: 19 * 1024, iterations: 2 });
        let sealer = totp::SecretBox::new(totp_key);
        let mut user_ids = Vec::new();
        for i in 0..clients {
            let id = Uuid::now_v7();
            let secret = totp::new_secret();
            let username = format!("bench{i}");
            db.execute(
                "INSERT INTO users (id, username, full_name, role, branch_id, password_hash, totp_secret_enc, totp_enrolled_at)
                 VALUES ($1, $2, 'Bench Client', 'customer', $3, $4, $5, now())",
                &[&id, &username, &branch, &hash, &sealer.seal(id, &secret)],
            )
            .await?;
            user_ids.push(id);
            self.users.push(BenchUser { username, totp_secret: secret, accounts: Vec::new() });
        }
        db.execute(
            "WITH a AS (INSERT INTO accounts (branch_id, kind, currency)
                        SELECT $1, 'savings', 'INR' FROM generate_series(1, $2) RETURNING id, number),
                  n AS (SELECT id, row_number() OVER (ORDER BY number) AS rn FROM a)
             INSERT INTO account_owners (account_id, user_id) SELECT id, ($3::uuid[])[(rn % $4) + 1] FROM n",
            &[&branch, &(accounts as i32), &user_ids, &(clients as i64)],
        )
        .await?;
        db.batch_execute(&format!(
            "DO $$
             DECLARE a record;
             BEGIN
               FOR a IN SELECT ac.id, o.user_id FROM accounts ac JOIN account_owners o ON o.account_id = ac.id
                         WHERE ac.branch_id = '{branch}' AND ac.kind = 'savings' LOOP
                 PERFORM move_money(a.user_id, 'branch_admin', NULL, NULL, 'fund-' || a.id, '\\x00'::bytea,
                                    'deposit', a.id, NULL, 1000000.00, 'float', 'bench', '127.0.0.1');
               END LOOP;
             END $$;
             ANALYZE;"
        ))
        .await?;
        for row in db
            .query(
                "SELECT o.user_id, a.id, a.number FROM accounts a JOIN account_owners o ON o.account_id = a.id
                  WHERE a.branch_id = $1 ORDER BY a.number",
                &[&branch],
            )
            .await?
        {
            let user: Uuid = row.get(0);
            let index = user_ids.iter().position(|u| *u == user).expect("a bench user");
            self.users[index].accounts.push((row.get(1), row.get::<_, String>(2)));
            self.all_numbers.push(row.get(2));
        }
        // Phones only now: the seeding deposits' events get no SMS, so the
        // run's messages do not queue behind ten thousand of them.
        if let Some(phone) = phone {
            db.execute("UPDATE users SET phone = $1 WHERE branch_id = $2", &[&phone, &branch]).await?;
        }
        Ok(())
    }

    /// Commit-to-SMS delay of the money events created since `since`: waits
    /// up to `drain` for the backlog, then reports what the receiver got.
    pub async fn notification_delays(&self, since: chrono::DateTime<chrono::Utc>, drain: Duration) -> anyhow::Result<Option<serde_json::Value>> {
        let Some(sms) = &self.sms else { return Ok(None) };
        let db = self.superuser("primary").await?;
        // An event coalesced into a digest reached the phone with the digest, which carries the event id of its carrier.
        let query = "SELECT e.id, e.created_at, coalesce(carrier.event_id, e.id), d.status
                       FROM notification_events e JOIN notification_deliveries d ON d.event_id = e.id
                       LEFT JOIN notification_deliveries carrier ON carrier.id = d.carried_by
                      WHERE e.created_at >= $1 AND e.kind LIKE 'money.%' AND d.channel = 'sms'";
        let started = Instant::now();
        let events: Vec<(chrono::DateTime<chrono::Utc>, Uuid, String)> = loop {
            let pending: i64 = db
                .query_one("SELECT count(*) FROM notification_deliveries WHERE status = 'pending' AND channel = 'sms'", &[])
                .await?
                .get(0);
            if pending == 0 || started.elapsed() > drain {
                // Read after the count: rows read before it would show deliveries since
                // coalesced into a digest under their own id, as if never delivered.
                let rows = db.query(query, &[&since]).await?;
                break rows.iter().map(|r| (r.get(1), r.get(2), r.get(3))).collect();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let received = sms.state.accepted_at();
        let mut delays_ms: Vec<f64> = events
            .iter()
            .filter_map(|(created, delivered_as, _)| received.get(&delivered_as.to_string()).map(|at| (*at - *created).num_microseconds().unwrap_or(0) as f64 / 1000.0))
            .collect();
        // What became of the events the receiver has no message for (their delivery's status).
        let mut missing_by_status: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for (_, delivered_as, status) in &events {
            if !received.contains_key(&delivered_as.to_string()) {
                *missing_by_status.entry(status.as_str()).or_default() += 1;
            }
        }
        let digests = sms.state.received.lock().unwrap().iter().filter(|m| m.status == 201 && m.body.contains("totalling")).count();
        delays_ms.sort_by(|a, b| a.total_cmp(b));
        let pick = |q: f64| delays_ms.get(((delays_ms.len() as f64 * q) as usize).min(delays_ms.len().saturating_sub(1))).copied();
        Ok(Some(serde_json::json!({
            "events": events.len(),
            "delivered": delays_ms.len(),
            "digests": digests,
            "missing_by_status": missing_by_status,
            "p50_ms": pick(0.50),
            "p99_ms": pick(0.99),
            "max_ms": delays_ms.last(),
            "drained_within_s": started.elapsed().as_secs_f64(),
        })))
    }

    /// Logs a bench user in (password + TOTP); returns the session token.
    pub async fn login(&self, user: &BenchUser) -> anyhow::Result<String> {
        self.login_through(&self.http, user).await
    }

    /// `login` through a given client (the `hot` shape's sign-in from a new address).
    pub async fn login_through(&self, http: &reqwest::Client, user: &BenchUser) -> anyhow::Result<String> {
        let step1: serde_json::Value = http
            .post(format!("{}/v1/auth/login", self.base_url))
            .json(&serde_json::json!({"username": user.username, "password": BENCH_PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let code = totp::code_at_step(&user.totp_secret, totp::current_step(now));
        let step2: serde_json::Value = http
            .post(format!("{}/v1/auth/mfa", self.base_url))
            .json(&serde_json::json!({"mfa_token": step1["mfa_token"], "code": code}))
            .send()
            .await?
            .json()
            .await?;
        step2["session_token"].as_str().map(str::to_string).with_context(|| format!("login failed: {step2}"))
    }

    /// CPU seconds used so far by the server process and by all PostgreSQL processes.
    pub fn cpu_seconds(&self) -> (f64, f64) {
        let server = process_cpu(self.server.id() as i32, false);
        let postgres = self
            .cluster
            .0
            .config
            .nodes
            .iter()
            .filter_map(|n| self.cluster.0.postmaster_pid(&n.name))
            .map(|pid| process_cpu(pid, true) + children_cpu(pid))
            .sum();
        (server, postgres)
    }

    /// Readies the bank for the next shape as pgbench readies its tables before its own run (its
    /// VACUUM): what the earlier shapes wrote is vacuumed (ANALYZE too) and checkpointed, every
    /// replica has replayed it, and their notifications are delivered, so that a shape measures its
    /// own work and not the clean-up of the one before (a replica reading rows that no VACUUM has
    /// passed over checks each one's commit status again: docs/benchmarks.md, "Reads").
    /// Each wait is bounded; past a bound the shape starts anyway and the line says so.
    pub async fn settle(&self) -> anyhow::Result<()> {
        const BOUND: Duration = Duration::from_secs(60);
        let started = Instant::now();
        let db = self.superuser("primary").await?;
        let pending = "SELECT count(*) FROM notification_deliveries WHERE status = 'pending'";
        let mut undelivered: i64 = db.query_one(pending, &[]).await?.get(0);
        while undelivered > 0 && started.elapsed() < BOUND {
            tokio::time::sleep(Duration::from_millis(200)).await;
            undelivered = db.query_one(pending, &[]).await?.get(0);
        }
        // Two statements: VACUUM may not run in the implicit transaction of a multi-statement string.
        db.batch_execute("VACUUM (ANALYZE)").await?;
        db.batch_execute("CHECKPOINT").await?;
        let lsn: String = db.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0);
        let replicas: Vec<String> = self.cluster.0.config.nodes.iter().map(|n| n.name.clone()).filter(|name| name != "primary").collect();
        let mut behind = Vec::new();
        for replica in &replicas {
            let replica_db = self.superuser(replica).await?;
            let replayed = "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)";
            let mut caught_up: bool = replica_db.query_one(replayed, &[&lsn]).await?.get(0);
            while !caught_up && started.elapsed() < BOUND {
                tokio::time::sleep(Duration::from_millis(50)).await;
                caught_up = replica_db.query_one(replayed, &[&lsn]).await?.get(0);
            }
            if caught_up {
                // A restartpoint: the replica's finished segments are kept for reuse, as the primary's are.
                replica_db.batch_execute("CHECKPOINT").await?;
            } else {
                behind.push(replica.as_str());
            }
        }
        println!(
            "settled in {:.1} s (VACUUM, CHECKPOINT, replicas replayed{}){}",
            started.elapsed().as_secs_f64(),
            if behind.is_empty() { String::new() } else { format!(" except {}", behind.join(", ")) },
            if undelivered > 0 { format!("; {undelivered} notifications still pending") } else { String::new() }
        );
        Ok(())
    }

    /// CPU seconds used so far by the local SMS receiver (its own thread in this process), if it runs.
    pub fn sms_receiver_cpu_seconds(&self) -> Option<f64> {
        let thread_id = self.sms.as_ref()?.thread_id()?;
        Some(stat_cpu(&format!("/proc/self/task/{thread_id}/stat"), false))
    }

    /// WAL written so far by the primary: (bytes, full-page images). Per
    /// movement, this is the cost the replica must receive, flush and replay.
    pub async fn wal_written(&self) -> anyhow::Result<(f64, f64)> {
        let db = self.superuser("primary").await?;
        let row = db.query_one("SELECT wal_bytes::float8, wal_fpi::float8 FROM pg_stat_wal", &[]).await?;
        Ok((row.get(0), row.get(1)))
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let Ok(response) = self.http.get(format!("{}/metrics", self.base_url)).send().await else { return 0.0 };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

fn clock_ticks() -> f64 {
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// utime + stime (and, for a parent that reaps its children, their times too).
fn process_cpu(pid: i32, with_reaped_children: bool) -> f64 {
    stat_cpu(&format!("/proc/{pid}/stat"), with_reaped_children)
}

/// `process_cpu` of a `/proc/…/stat` file: a process's or a thread's (`/proc/self/task/{tid}/stat`).
fn stat_cpu(path: &str, with_reaped_children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else { return 0.0 };
    let Some(after_name) = stat.rsplit_once(") ").map(|(_, rest)| rest) else { return 0.0 };
    let fields: Vec<f64> = after_name.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
    // Fields after the name start at field 3 (state): utime is field 14.
    let ticks = fields[11] + fields[12] + if with_reaped_children { fields[13] + fields[14] } else { 0.0 };
    ticks / clock_ticks()
}

fn children_cpu(parent: i32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string)))
                .flatten()
                .and_then(|ppid| ppid.parse::<i32>().ok())
                == Some(parent)
        })
        .map(|pid| process_cpu(pid, false))
        .sum()
}
