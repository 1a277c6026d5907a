//! The end-to-end test harness: a real primary + synchronous replica
//! (flexibank-replication) in a directory of its own under `var/test/`, the
//! real server (flexibank-server) on an ephemeral port over HTTPS, and an
//! HTTP client that verifies the server against the stack's own CA.
//!
//! Every `TestStack` owns its cluster: dropping it (also when a test panics)
//! kills exactly the postmasters it started, by pid, and removes its files.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex,
    },
    time::Duration,
};

use flexibank_replication::{Cluster, InitOptions};
use flexibank_server::{
    auth::totp,
    config::{Config, DatabaseConfig, SecurityConfig, ServerConfig},
    seed::{DemoCredentials, DemoUser},
    RunningServer,
};
use reqwest::{header::HeaderMap, StatusCode};
use serde_json::Value;

pub use serde_json::json;

pub mod bench;
pub mod consortium;
pub mod desktop;
pub mod failover_load;
pub mod receivers;
pub mod switch;

/// Kills and removes a cluster (and the test's directory) when dropped,
/// panic or not. `FLEXIBANK_KEEP_TEST_CLUSTERS=1` keeps the files for a look.
pub struct ClusterGuard(pub Cluster, PathBuf);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        if std::env::var_os("FLEXIBANK_KEEP_TEST_CLUSTERS").is_some() {
            self.0.kill_all_now();
        } else {
            self.0.destroy_now();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
}

/// A one-node cluster of its own under var/test/ with an empty database
/// `dbname` (the switch's tests): the guard that destroys it, panic or not,
/// the test's directory (for other files of the test), and a libpq
/// connection string for the database as the superuser.
pub async fn single_node_database(label: &str, dbname: &str) -> (ClusterGuard, PathBuf, String) {
    let dir = unique_dir(label);
    let pg_dir = dir.join("pg");
    let cluster = match Cluster::init(InitOptions { dir: pg_dir.clone(), replicas: 0, base_port: None, sync: false, extra_conf: vec![] }).await {
        Ok(cluster) => cluster,
        Err(e) => {
            // Half-initialised: cluster.json is written early, so clean up.
            if let Ok(c) = Cluster::load(&pg_dir) {
                c.destroy_now();
            }
            let _ = std::fs::remove_dir_all(&dir);
            panic!("cluster init: {e:#}");
        }
    };
    let guard = ClusterGuard(cluster, dir.clone());
    let c = &guard.0.config;
    let node = &c.nodes[0];
    let superuser = guard.0.connect_superuser(&node.name).await.expect("superuser connection");
    superuser.batch_execute(&format!("CREATE DATABASE {dbname}")).await.expect("create database");
    let url = format!("host={} port={} user={} password={} dbname={dbname}", node.host, node.port, c.superuser, c.superuser_password);
    (guard, dir, url)
}

pub struct StackOptions {
    pub replicas: usize,
    pub sync: bool,
    /// Adjust the server configuration before it starts.
    pub configure: fn(&mut Config),
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions { replicas: 1, sync: true, configure: |_| {} }
    }
}

pub struct TestStack {
    /// `None` only between `stop_server` and `start_server`.
    server: Option<RunningServer>,
    /// The stack's own CA, which the server's certificate chains to.
    pub ca_cert: PathBuf,
    pub base_url: String,
    pub http: reqwest::Client,
    pub demo: DemoCredentials,
    pub config: Config,
    /// Last TOTP step used per username: a code is accepted once only.
    used_steps: Mutex<HashMap<String, u64>>,
    last_primary: Mutex<String>,
    // Declared last: dropped after the server.
    pub cluster: ClusterGuard,
}

/// A statement's text as `pdftotext -layout` reads it (Debian's poppler-utils, installed by `make deps`).
pub fn pdftotext(path: &std::path::Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (Debian's poppler-utils; `make deps` installs it)");
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn unique_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    workspace_root().join("var/test").join(format!("{label}-{}-{n}", std::process::id()))
}

pub fn ca_client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("CA PEM"))
        .tls_built_in_root_certs(false)
        .https_only(true)
        .timeout(Duration::from_secs(30))
        // Idle connections go before the server's idle limit closes them
        // under a request in flight.
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .expect("reqwest client")
}

impl TestStack {
    pub async fn start(label: &str) -> TestStack {
        Self::start_with(label, StackOptions::default()).await
    }

    pub async fn start_with(label: &str, options: StackOptions) -> TestStack {
        Self::start_member(label, options, None).await
    }

    /// A bank in a consortium (`interbank`), or on its own (None).
    pub async fn start_member(label: &str, options: StackOptions, interbank: Option<flexibank_server::config::InterbankConfig>) -> TestStack {
        init_tracing();
        let dir = unique_dir(label);
        let cluster = Cluster::init(InitOptions {
            dir: dir.join("pg"),
            replicas: options.replicas,
            base_port: None,
            sync: options.sync,
            extra_conf: vec![],
        })
        .await
        .expect("cluster init");
        let cluster = ClusterGuard(cluster, dir.clone());
        let tls_dir = dir.join("tls");
        flexibank_server::tls::ensure_local_tls(&tls_dir).expect("tls");
        let c = &cluster.0.config;
        let mut config = Config {
            server: ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls_cert: tls_dir.join("server.pem"),
                tls_key: tls_dir.join("server-key.pem"),
                request_timeout_ms: 10_000,
                max_body_bytes: 64 * 1024,
                log_format: "pretty".into(),
                limits: Default::default(),
            },
            database: DatabaseConfig {
                nodes: c.nodes.iter().map(|n| format!("{}@{}:{}", n.name, n.host, n.port)).collect(),
                dbname: c.database.clone(),
                user: c.app_user.clone(),
                password: c.app_password.clone(),
                migration_user: c.superuser.clone(),
                migration_password: c.superuser_password.clone(),
                pool_size: 40,
                connect_timeout_ms: 2_000,
                max_serialization_attempts: 12,
                group_commit_workers: 1,
                group_commit_max_items: 64,
                health_interval_ms: 200,
                unreachable_after_ms: 1_500,
                max_replica_lag_ms: 1_000,
                max_replica_lag_bytes: 16 * 1024 * 1024,
                sync_mode: "strict".into(),
                degrade_after_ms: 5_000,
                auto_failover: false,
                failover_after_ms: 2_000,
            },
            notifications: Default::default(),
            standing_orders: Default::default(),
            fx: Default::default(),
            review: Default::default(),
            interbank,
            security: SecurityConfig {
                totp_key_hex: hex_key(),
                session_idle_timeout_s: 900,
                session_absolute_timeout_s: 12 * 3600,
                login_rate_per_minute: 100_000,
                max_failed_logins: 5,
                lockout_seconds: 900,
                global_failed_logins: 50,
                global_backoff_seconds: 60,
                argon2_memory_kib: 19 * 1024,
                argon2_iterations: 2,
                password_hash_threads: 0,
                // Tests log in many users at once; the storm test narrows it.
                password_hash_queue: 256,
                lookups_per_window: 30,
                lookup_window_s: 600,
            },
        };
        (options.configure)(&mut config);
        let server = flexibank_server::start(config.clone()).await.expect("server start");
        let demo = flexibank_server::seed::seed_demo(&server.state)
            .await
            .expect("seed")
            .expect("fresh database");
        let ca = std::fs::read(tls_dir.join("ca.pem")).expect("ca.pem");
        TestStack {
            base_url: format!("https://127.0.0.1:{}", server.addr.port()),
            http: ca_client(&ca),
            ca_cert: tls_dir.join("ca.pem"),
            server: Some(server),
            demo,
            config,
            used_steps: Mutex::new(HashMap::new()),
            last_primary: Mutex::new("primary".into()),
            cluster,
        }
    }

    /// The test's own directory (removed with the cluster when the test passes).
    pub fn dir(&self) -> &std::path::Path {
        &self.cluster.1
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("the server is stopped")
    }

    /// Stops the server (in-flight requests finish); the cluster stays up.
    pub async fn stop_server(&mut self) {
        self.primary_name();
        let server = self.server.take().expect("the server is running");
        self.config.server.listen = server.addr;
        server.shutdown().await.expect("server shutdown");
    }

    /// Starts the server again on the port it had, as an operator would.
    pub async fn start_server(&mut self) {
        assert!(self.server.is_none(), "the server is already running");
        let started = std::time::Instant::now();
        // The old socket may linger a moment before its port can be bound again.
        let server = loop {
            match flexibank_server::start(self.config.clone()).await {
                Ok(server) => break server,
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    eprintln!("server restart: {e:#}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("server restart: {e:#}"),
            }
        };
        self.server = Some(server);
    }

    pub fn user(&self, username: &str) -> &DemoUser {
        self.demo.users.iter().find(|u| u.username == username).expect("demo user")
    }

    pub fn anon(&self) -> Session {
        Session { http: self.http.clone(), base_url: self.base_url.clone(), token: None }
    }

    /// A TOTP code for `secret_base32` that this stack has not used for
    /// `username` yet: the current step, else the next (±1 step is
    /// accepted), else wait for a fresh step.
    pub async fn fresh_code(&self, username: &str, secret_base32: &str) -> String {
        let secret = totp_rs::Secret::Encoded(secret_base32.to_string()).to_bytes().expect("base32 secret");
        loop {
            let now = unix_now();
            let step = totp::current_step(now);
            let chosen = {
                let mut used = self.used_steps.lock().unwrap();
                let last = used.get(username).copied().unwrap_or(0);
                let pick = [step, step + 1].into_iter().find(|s| *s > last);
                if let Some(s) = pick {
                    used.insert(username.to_string(), s);
                }
                pick
            };
            match chosen {
                Some(s) => return totp::code_at_step(&secret, s),
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// The TOTP time step this stack last used for `username`.
    pub fn last_used_step(&self, username: &str) -> Option<u64> {
        self.used_steps.lock().unwrap().get(username).copied()
    }

    /// Full login (password, then TOTP) as a demo user.
    pub async fn login(&self, username: &str) -> Session {
        let user = self.user(username).clone();
        self.login_with(&user.username, &user.password, &user.totp_secret).await
    }

    pub async fn login_with(&self, username: &str, password: &str, secret_base32: &str) -> Session {
        let anon = self.anon();
        let step1 = anon.post("/v1/auth/login", json!({"username": username, "password": password}), None).await;
        assert_eq!(step1.status, 200, "login {username}: {}", step1.body);
        let code = self.fresh_code(username, secret_base32).await;
        let step2 = anon
            .post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": code}), None)
            .await;
        assert_eq!(step2.status, 200, "mfa {username}: {}", step2.body);
        Session {
            http: self.http.clone(),
            base_url: self.base_url.clone(),
            token: Some(step2.body["session_token"].as_str().unwrap().to_string()),
        }
    }

    pub async fn superuser(&self, node: &str) -> tokio_postgres::Client {
        self.cluster.0.connect_superuser(node).await.expect("superuser connection")
    }

    /// The node the server writes to now (it changes after a failover).
    /// While the server is stopped, the node it last wrote to.
    pub fn primary_name(&self) -> String {
        match &self.server {
            Some(server) => {
                let primary = server.state.db.pool.view().primary.expect("a primary");
                *self.last_primary.lock().unwrap() = primary.clone();
                primary
            }
            None => self.last_primary.lock().unwrap().clone(),
        }
    }

    /// Waits until every replica has applied what the primary has written so far: after a write
    /// a session's read-your-writes does not cover (another user's, the scheduler's, a superuser's).
    pub async fn replicas_caught_up(&self) {
        let db = self.superuser(&self.primary_name()).await;
        let target: String = db.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
        eventually(Duration::from_secs(10), "the replicas to apply the primary's writes", || async {
            let behind: i64 = db
                .query_one("SELECT count(*) FROM pg_stat_replication WHERE replay_lsn IS NULL OR replay_lsn < $1::text::pg_lsn", &[&target])
                .await
                .unwrap()
                .get(0);
            (behind == 0).then_some(())
        })
        .await;
    }

    /// The ledger's invariants, checked with SQL on the primary.
    pub async fn assert_ledger_invariants(&self) {
        let db = self.superuser(&self.primary_name()).await;
        if let Err(broken) = flexibank_server::ledger::check_invariants(&db).await {
            panic!("ledger invariant broken: {broken:#}");
        }
    }

    /// Everything a refused request must leave untouched.
    pub async fn ledger_snapshot(&self) -> LedgerSnapshot {
        let db = self.superuser(&self.primary_name()).await;
        let row = db
            .query_one(
                "SELECT (SELECT md5(string_agg(id::text || ':' || balance::text || ':' || status, ',' ORDER BY id)) FROM accounts),
                        (SELECT count(*) FROM transfers), (SELECT count(*) FROM entries),
                        (SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM accounts),
                        (SELECT count(*) FROM users)",
                &[],
            )
            .await
            .unwrap();
        LedgerSnapshot {
            accounts_digest: row.get(0),
            transfers: row.get(1),
            entries: row.get(2),
            idempotency_keys: row.get(3),
            accounts: row.get(4),
            users: row.get(5),
        }
    }

    /// Ids of a demo user's accounts, by number.
    pub async fn account_id(&self, number: &str) -> uuid::Uuid {
        let db = self.superuser(&self.primary_name()).await;
        db.query_one("SELECT id FROM accounts WHERE number = $1", &[&number]).await.unwrap().get(0)
    }
}

/// Every response a test saw, so it can assert at the end that none was a 5xx.
#[derive(Default)]
pub struct Seen(Mutex<Vec<(String, u16)>>);

impl Seen {
    pub fn note(&self, what: &str, r: Resp) -> Resp {
        self.0.lock().unwrap().push((what.to_string(), r.status));
        r
    }

    /// An RFC 9457 problem with this status and code.
    #[track_caller]
    pub fn problem(&self, what: &str, r: Resp, status: u16, code: &str) -> Resp {
        let r = self.note(what, r);
        assert_eq!((r.status, r.code()), (status, code), "{what}: {}", r.body);
        r.assert_problem(status, code);
        r
    }

    /// 403 `forbidden` or 404 `not_found`, as problem+json.
    #[track_caller]
    pub fn refused(&self, what: &str, r: Resp) -> Resp {
        let r = self.note(what, r);
        match r.status {
            403 => r.assert_problem(403, "forbidden"),
            404 => r.assert_problem(404, "not_found"),
            _ => panic!("{what}: expected 403 or 404, got {}: {}", r.status, r.body),
        }
        r
    }

    #[track_caller]
    pub fn ok(&self, what: &str, r: Resp, status: u16) -> Resp {
        let r = self.note(what, r);
        assert_eq!(r.status, status, "{what}: {}", r.body);
        r
    }

    pub fn assert_no_5xx(&self) {
        let seen = self.0.lock().unwrap();
        let bad: Vec<_> = seen.iter().filter(|(_, s)| *s >= 500).collect();
        assert!(bad.is_empty(), "5xx responses: {bad:?}");
        assert!(!seen.is_empty(), "no responses were noted");
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSnapshot {
    pub accounts_digest: String,
    pub transfers: i64,
    pub entries: i64,
    pub idempotency_keys: i64,
    pub accounts: i64,
    pub users: i64,
}

/// Server logs go to the test's captured output (RUST_LOG, default warn).
fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "flexibank_replication=warn,flexibank_server=error,tower_http=off".into());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

fn hex_key() -> String {
    let key: [u8; 32] = rand::random();
    key.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[derive(Clone)]
pub struct Session {
    pub http: reqwest::Client,
    pub base_url: String,
    pub token: Option<String>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The problem's `code` (empty for successes).
    pub fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts an RFC 9457 problem with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "body: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        for field in ["type", "title", "status", "detail", "code"] {
            assert!(self.body.get(field).is_some(), "problem lacks {field}: {}", self.body);
        }
    }
}

impl Session {
    pub fn with_token(&self, token: &str) -> Session {
        Session { token: Some(token.to_string()), ..self.clone() }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        let response = request.send().await.expect("HTTPS request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp { status: status.as_u16(), headers, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::PATCH, path).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(self.request(reqwest::Method::PUT, path).json(&body)).await
    }

    pub async fn post(&self, path: &str, body: Value, idempotency_key: Option<&str>) -> Resp {
        let mut request = self.request(reqwest::Method::POST, path).json(&body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    /// POST with a raw body (for malformed input) and optional key.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>, idempotency_key: Option<&str>) -> Resp {
        let mut request = self
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    /// A money-moving POST with a fresh Idempotency-Key.
    pub async fn post_money(&self, path: &str, body: Value) -> Resp {
        self.post(path, body, Some(&uuid::Uuid::now_v7().to_string())).await
    }
}

/// The contract's masking, written out independently of the server's: each word's first letter,
/// then one `•` per other character ("Bob Mehta" → "B•• M••••").
pub fn masked_name(name: &str) -> String {
    name.split_whitespace()
        .map(|word| word.chars().enumerate().map(|(i, c)| if i == 0 { c } else { '•' }).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `••••` and an account number's last four characters.
pub fn masked_number(number: &str) -> String {
    format!("••••{}", &number[number.len() - 4..])
}

/// A decimal string from a response, or the test fails naming it.
pub fn dec(text: &str) -> rust_decimal::Decimal {
    text.parse().unwrap_or_else(|_| panic!("not a decimal: {text:?}"))
}

pub fn is_success(status: u16) -> bool {
    StatusCode::from_u16(status).map(|s| s.is_success()).unwrap_or(false)
}

/// Polls `check` every 50 ms until it returns Some, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

