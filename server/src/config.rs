//! Server configuration: a TOML file, then environment overrides.
//!
//! Any key can be overridden with `FLEXIBANK__<SECTION>__<KEY>` (for example
//! `FLEXIBANK__DATABASE__PASSWORD`), so secrets need not live in the file.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub security: SecurityConfig,
    #[serde(default)]
    pub notifications: NotificationsConfig,
    #[serde(default)]
    pub standing_orders: StandingOrdersConfig,
    #[serde(default)]
    pub fx: FxConfig,
    #[serde(default)]
    pub review: ReviewConfig,
    /// Membership of a consortium (issue 16); absent: this bank makes no inter-bank payments.
    #[serde(default)]
    pub interbank: Option<InterbankConfig>,
}

/// The rules that hold a transfer for review (server/src/review.rs), per currency where amounts are meant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// A payee saved less than this long ago is new.
    #[serde(default = "defaults::review_new_payee_window_h")]
    pub new_payee_window_h: u32,
    /// More than this to a new payee is reviewed.
    #[serde(default = "defaults::review_new_payee_amounts")]
    pub new_payee_amounts: std::collections::BTreeMap<String, rust_decimal::Decimal>,
    /// At least `burst_min_amounts` after `burst_count` transfers out in `burst_window_s` is reviewed.
    #[serde(default = "defaults::review_burst_count")]
    pub burst_count: u32,
    #[serde(default = "defaults::review_burst_window_s")]
    pub burst_window_s: u32,
    #[serde(default = "defaults::review_burst_min_amounts")]
    pub burst_min_amounts: std::collections::BTreeMap<String, rust_decimal::Decimal>,
    /// Undecided this long, a review is rejected ("expired") and its hold released.
    #[serde(default = "defaults::review_expire_after_h")]
    pub expire_after_h: u32,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            new_payee_window_h: defaults::review_new_payee_window_h(),
            new_payee_amounts: defaults::review_new_payee_amounts(),
            burst_count: defaults::review_burst_count(),
            burst_window_s: defaults::review_burst_window_s(),
            burst_min_amounts: defaults::review_burst_min_amounts(),
            expire_after_h: defaults::review_expire_after_h(),
        }
    }
}

/// Transfers between currencies (server/src/fx.rs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxConfig {
    /// How long a quote's rate holds.
    #[serde(default = "defaults::fx_quote_ttl_s")]
    pub quote_ttl_s: u32,
}

impl Default for FxConfig {
    fn default() -> Self {
        FxConfig { quote_ttl_s: defaults::fx_quote_ttl_s() }
    }
}

/// The scheduler of standing orders (server/src/scheduler.rs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandingOrdersConfig {
    /// How often each server process looks for due runs.
    #[serde(default = "defaults::standing_orders_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// A run refused for funds is tried once more this much later, if that is still the same local day.
    #[serde(default = "defaults::standing_orders_retry_after_s")]
    pub retry_after_s: u32,
    /// Accept `"every":"second"` schedules: for tests only.
    #[serde(default)]
    pub allow_seconds: bool,
}

impl Default for StandingOrdersConfig {
    fn default() -> Self {
        StandingOrdersConfig {
            poll_interval_ms: defaults::standing_orders_poll_interval_ms(),
            retry_after_s: defaults::standing_orders_retry_after_s(),
            allow_seconds: false,
        }
    }
}

/// `interbank.group_linger_ms` unless configured (measured: docs/benchmarks.md, sessions 12 and 24).
pub const DEFAULT_GROUP_LINGER_MS: u64 = 25;

/// This bank as a member of a consortium: who it is, where the switch is, and
/// the switch-only listener the switch calls back on (docs/consortium.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterbankConfig {
    /// 8 digits, named by this bank's certificate.
    pub bank_id: String,
    pub bank_name: String,
    /// e.g. `https://switch.example:9443`; its certificate must chain to `ca.pem` in `tls_dir`.
    pub switch_url: String,
    /// Holds `ca.pem`, `bank-<id>.pem` and `bank-<id>-key.pem`.
    pub tls_dir: PathBuf,
    /// The switch-only listener (mutual TLS; only the switch's certificate is served).
    pub listen: SocketAddr,
    /// `host:port` the switch reaches `listen` at; default: the bound address.
    #[serde(default)]
    pub advertise: Option<String>,
    /// How long a customer's payment request waits for the decision before answering 202 `pending`.
    #[serde(default = "defaults::interbank_timeout_ms")]
    pub timeout_ms: u64,
    /// Bound on one call to the switch.
    #[serde(default = "defaults::interbank_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// A payment undecided here this long is asked about at the switch.
    #[serde(default = "defaults::interbank_in_doubt_after_ms")]
    pub in_doubt_after_ms: u64,
    /// Undecided this long: counted in `flexibank_interbank_in_doubt` and logged as an alert.
    #[serde(default = "defaults::interbank_alert_after_ms")]
    pub alert_after_ms: u64,
    #[serde(default = "defaults::interbank_resolver_interval_ms")]
    pub resolver_interval_ms: u64,
    /// While payments arrive together, a group waits up to this long for as
    /// many as the previous group had (`interbank/grouped.rs`); 0: never waits.
    #[serde(default = "defaults::interbank_group_linger_ms")]
    pub group_linger_ms: u64,
}

/// The outbox dispatcher and its channels. A channel without settings is not
/// used: its deliveries wait until it is configured.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// Off: movements, logins and status changes write no events (the
    /// benchmark's comparison); the dispatcher still drains what exists.
    pub enabled: bool,
    pub poll_interval_ms: u64,
    /// Deliveries claimed per round.
    pub batch_size: i64,
    /// After this many failed sends a delivery is dead (visible to admins, re-drivable).
    pub max_attempts: i32,
    pub backoff_first_ms: u64,
    pub backoff_max_ms: u64,
    pub send_timeout_ms: u64,
    /// Twilio's REST API (or a receiver speaking its shape): base URL such as
    /// `https://api.twilio.com`, account SID, auth token and sender number.
    pub sms_base_url: Option<String>,
    pub sms_account_sid: Option<String>,
    pub sms_auth_token: Option<String>,
    pub sms_from: Option<String>,
    /// An SMTP relay reached with STARTTLS; unset = no e-mail.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub smtp_from: Option<String>,
    /// `make run`: serve a local SMTP sink and a Twilio-shaped receiver that
    /// write what they get into this directory (e.g. "var/outbox").
    pub local_receivers_dir: Option<PathBuf>,
    pub local_sms_port: u16,
    pub local_smtp_port: u16,
    /// PEM file of extra CAs the channels trust (a local receiver's), beside the system roots.
    pub extra_ca_pem: Option<PathBuf>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            enabled: true,
            poll_interval_ms: 200,
            batch_size: 256,
            max_attempts: 8,
            backoff_first_ms: 1_000,
            backoff_max_ms: 300_000,
            send_timeout_ms: 5_000,
            sms_base_url: None,
            sms_account_sid: None,
            sms_auth_token: None,
            sms_from: None,
            smtp_host: None,
            smtp_port: 587,
            smtp_username: None,
            smtp_password: None,
            smtp_from: None,
            local_receivers_dir: None,
            local_sms_port: 8025,
            local_smtp_port: 2525,
            extra_ca_pem: None,
        }
    }
}

impl std::fmt::Debug for NotificationsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationsConfig")
            .field("enabled", &self.enabled)
            .field("max_attempts", &self.max_attempts)
            .field("sms_base_url", &self.sms_base_url)
            .field("sms_account_sid", &self.sms_account_sid)
            .field("sms_auth_token", &self.sms_auth_token.as_ref().map(|_| REDACTED))
            .field("sms_from", &self.sms_from)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &self.smtp_password.as_ref().map(|_| REDACTED))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Log format: "pretty" or "json".
    #[serde(default = "defaults::log_format")]
    pub log_format: String,
    /// Bounds on connections and on requests in flight (see `ServerLimits`).
    #[serde(default)]
    pub limits: ServerLimits,
}

/// What the HTTPS listener and the router accept at once. Past a bound a
/// request or connection is refused at once (429 `rate_limited` with
/// `Retry-After`, or the connection closed), never queued without limit.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLimits {
    /// Requests in flight per route class; a flood of one class is shed
    /// before it can starve the others.
    pub login_concurrency: usize,
    pub money_concurrency: usize,
    pub read_concurrency: usize,
    pub admin_concurrency: usize,
    /// Open connections (TLS handshakes included), in total and per address.
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// A TLS handshake, and a request's headers, must arrive within these.
    pub tls_handshake_timeout_ms: u64,
    pub header_read_timeout_ms: u64,
    /// A connection over which nothing has passed for this long is closed
    /// (longer than `request_timeout_ms`, so never under a request).
    pub idle_timeout_ms: u64,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            login_concurrency: 32,
            money_concurrency: 512,
            read_concurrency: 512,
            admin_concurrency: 64,
            max_connections: 8_192,
            max_connections_per_address: 64,
            tls_handshake_timeout_ms: 5_000,
            // Also how long an idle keep-alive connection stays open: clients
            // should let theirs go sooner (ours keep them 5 s).
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Every node as `host:port` or `name@host:port`; roles are discovered
    /// by health checks, not configured.
    pub nodes: Vec<String>,
    pub dbname: String,
    /// The application role: DML only, no ownership.
    pub user: String,
    pub password: String,
    /// The role that owns the schema and runs migrations at start-up. The
    /// failover pool also uses it (it must be a superuser for that) to read
    /// replication state, promote, and set `synchronous_standby_names`.
    pub migration_user: String,
    pub migration_password: String,
    #[serde(default = "defaults::health_interval_ms")]
    pub health_interval_ms: u64,
    #[serde(default = "defaults::unreachable_after_ms")]
    pub unreachable_after_ms: u64,
    /// Reads go to a replica only within this lag (time and bytes).
    #[serde(default = "defaults::max_replica_lag_ms")]
    pub max_replica_lag_ms: u64,
    #[serde(default = "defaults::max_replica_lag_bytes")]
    pub max_replica_lag_bytes: u64,
    /// "strict": commits always wait for a replica. "degrade": after
    /// `degrade_after_ms` without one, commit asynchronously until one is back.
    #[serde(default = "defaults::sync_mode")]
    pub sync_mode: String,
    #[serde(default = "defaults::degrade_after_ms")]
    pub degrade_after_ms: u64,
    /// Promote an in-sync replica when the primary is gone for `failover_after_ms`.
    #[serde(default)]
    pub auto_failover: bool,
    #[serde(default = "defaults::failover_after_ms")]
    pub failover_after_ms: u64,
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Attempts of one transaction on SQLSTATE 40001/40P01 before giving up.
    #[serde(default = "defaults::max_serialization_attempts")]
    pub max_serialization_attempts: u32,
    /// Workers applying queued customer transfers in groups, one transaction
    /// per group (0: every transfer in its own transaction). One by default:
    /// while its group is in the database the next one fills up, so groups
    /// grow with the load; each more worker makes groups smaller, and on two
    /// cores a commit (flush, replica round trip) cost more than the overlap
    /// bought (docs/benchmarks.md).
    #[serde(default = "defaults::group_commit_workers")]
    pub group_commit_workers: usize,
    /// At most this many transfers per group (1 to 256).
    #[serde(default = "defaults::group_commit_max_items")]
    pub group_commit_max_items: usize,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// 32 bytes, hex: encrypts TOTP secrets at rest. Never stored in the database.
    pub totp_key_hex: String,
    #[serde(default = "defaults::session_idle_timeout_s")]
    pub session_idle_timeout_s: u64,
    #[serde(default = "defaults::session_absolute_timeout_s")]
    pub session_absolute_timeout_s: u64,
    /// Login requests allowed per client address per minute.
    #[serde(default = "defaults::login_rate_per_minute")]
    pub login_rate_per_minute: u32,
    /// Failed password or code attempts from one address before that
    /// address is locked out of that username.
    #[serde(default = "defaults::max_failed_logins")]
    pub max_failed_logins: u32,
    /// How long a lock lasts, and how long failures are remembered.
    #[serde(default = "defaults::lockout_seconds")]
    pub lockout_seconds: u32,
    /// Failures from all addresses together before a username pauses for
    /// `global_backoff_seconds` (short: strangers must not lock customers out).
    #[serde(default = "defaults::global_failed_logins")]
    pub global_failed_logins: u32,
    #[serde(default = "defaults::global_backoff_seconds")]
    pub global_backoff_seconds: u32,
    /// Argon2id parameters for new password hashes.
    #[serde(default = "defaults::argon2_memory_kib")]
    pub argon2_memory_kib: u32,
    #[serde(default = "defaults::argon2_iterations")]
    pub argon2_iterations: u32,
    /// Threads that hash passwords (0: half the cores, at least one). Each
    /// holds `argon2_memory_kib` while it works: this bounds that memory.
    #[serde(default)]
    pub password_hash_threads: usize,
    /// Logins that may wait for a hashing thread; past it, 429 at once.
    #[serde(default = "defaults::password_hash_queue")]
    pub password_hash_queue: usize,
    /// Account look-ups (confirmation of payee, saving a payee) one customer
    /// may make per `lookup_window_s`, counted across every server process: a
    /// look-up shows a holder's masked name, and names must not be harvested.
    #[serde(default = "defaults::lookups_per_window")]
    pub lookups_per_window: u32,
    #[serde(default = "defaults::lookup_window_s")]
    pub lookup_window_s: u32,
}

impl SecurityConfig {
    pub fn password_hash_threads(&self) -> usize {
        match self.password_hash_threads {
            0 => (std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) / 2).max(1),
            n => n,
        }
    }
}

/// Secrets never reach a log: the Debug forms show everything but them.
const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("nodes", &self.nodes)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field("password", &REDACTED)
            .field("migration_user", &self.migration_user)
            .field("migration_password", &REDACTED)
            .field("pool_size", &self.pool_size)
            .field("sync_mode", &self.sync_mode)
            .field("auto_failover", &self.auto_failover)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("totp_key_hex", &REDACTED)
            .field("session_idle_timeout_s", &self.session_idle_timeout_s)
            .field("session_absolute_timeout_s", &self.session_absolute_timeout_s)
            .field("max_failed_logins", &self.max_failed_logins)
            .field("lockout_seconds", &self.lockout_seconds)
            .field("lookups_per_window", &self.lookups_per_window)
            .field("lookup_window_s", &self.lookup_window_s)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[server]
listen = "127.0.0.1:0"
tls_cert = "c.pem"
tls_key = "k.pem"
[database]
nodes = ["127.0.0.1:5433"]
dbname = "flexibank"
user = "app"
password = "app-secret-password"
migration_user = "owner"
migration_password = "owner-secret-password"
[security]
totp_key_hex = "0000000000000000000000000000000000000000000000000000000000000000"
"#;

    #[test]
    fn environment_overrides_and_debug_redacts_secrets() {
        let env = [
            ("FLEXIBANK__DATABASE__PASSWORD".to_string(), "from-env-secret".to_string()),
            ("FLEXIBANK__DATABASE__POOL_SIZE".to_string(), "7".to_string()),
            ("FLEXIBANK__DATABASE__MIGRATION_USER".to_string(), "12345".to_string()),
            ("FLEXIBANK__DATABASE__AUTO_FAILOVER".to_string(), "true".to_string()),
        ];
        let config = Config::from_toml_with_env(TOML, env.into_iter()).unwrap();
        assert_eq!(config.database.password, "from-env-secret");
        assert_eq!(config.database.pool_size, 7);
        assert_eq!(config.database.migration_user, "12345", "a numeric-looking string stays a string");
        assert!(config.database.auto_failover);
        let debug = format!("{config:?}");
        for secret in ["from-env-secret", "owner-secret-password", "0000000000000000"] {
            assert!(!debug.contains(secret), "Debug leaks {secret}: {debug}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let bad_key = TOML.replace("0000000000000000000000000000000000000000000000000000000000000000", "abcd");
        assert!(Config::from_toml_with_env(&bad_key, std::iter::empty()).is_err());
        let bad_mode = TOML.replace("[security]", "sync_mode = \"sometimes\"\n[security]");
        assert!(Config::from_toml_with_env(&bad_mode, std::iter::empty()).is_err());
    }
}

mod defaults {
    pub fn interbank_timeout_ms() -> u64 {
        5_000
    }
    pub fn interbank_call_timeout_ms() -> u64 {
        4_000
    }
    pub fn interbank_in_doubt_after_ms() -> u64 {
        6_000
    }
    pub fn interbank_alert_after_ms() -> u64 {
        60_000
    }
    pub fn interbank_resolver_interval_ms() -> u64 {
        500
    }
    pub fn interbank_group_linger_ms() -> u64 {
        super::DEFAULT_GROUP_LINGER_MS
    }
    pub fn request_timeout_ms() -> u64 {
        10_000
    }
    pub fn max_body_bytes() -> usize {
        64 * 1024
    }
    pub fn log_format() -> String {
        "pretty".into()
    }
    pub fn pool_size() -> usize {
        48
    }
    pub fn connect_timeout_ms() -> u64 {
        2_000
    }
    pub fn health_interval_ms() -> u64 {
        500
    }
    pub fn unreachable_after_ms() -> u64 {
        1_500
    }
    pub fn max_replica_lag_ms() -> u64 {
        1_000
    }
    pub fn max_replica_lag_bytes() -> u64 {
        16 * 1024 * 1024
    }
    pub fn sync_mode() -> String {
        "strict".into()
    }
    pub fn degrade_after_ms() -> u64 {
        5_000
    }
    pub fn failover_after_ms() -> u64 {
        2_000
    }
    pub fn max_serialization_attempts() -> u32 {
        12
    }
    pub fn group_commit_workers() -> usize {
        1
    }
    pub fn group_commit_max_items() -> usize {
        64
    }
    pub fn session_idle_timeout_s() -> u64 {
        15 * 60
    }
    pub fn session_absolute_timeout_s() -> u64 {
        12 * 3600
    }
    pub fn login_rate_per_minute() -> u32 {
        60
    }
    pub fn max_failed_logins() -> u32 {
        5
    }
    pub fn lockout_seconds() -> u32 {
        15 * 60
    }
    pub fn argon2_memory_kib() -> u32 {
        19 * 1024
    }
    pub fn argon2_iterations() -> u32 {
        2
    }
    pub fn global_failed_logins() -> u32 {
        50
    }
    pub fn global_backoff_seconds() -> u32 {
        60
    }
    pub fn password_hash_queue() -> usize {
        16
    }
    pub fn lookups_per_window() -> u32 {
        30
    }
    pub fn lookup_window_s() -> u32 {
        10 * 60
    }
    fn per_currency(inr: i64, usd: i64, eur: i64) -> std::collections::BTreeMap<String, rust_decimal::Decimal> {
        [("INR", inr), ("USD", usd), ("EUR", eur)].into_iter().map(|(c, v)| (c.to_string(), rust_decimal::Decimal::from(v))).collect()
    }
    pub fn review_new_payee_window_h() -> u32 {
        24
    }
    pub fn review_new_payee_amounts() -> std::collections::BTreeMap<String, rust_decimal::Decimal> {
        per_currency(50_000, 1_000, 1_000)
    }
    pub fn review_burst_count() -> u32 {
        10
    }
    pub fn review_burst_window_s() -> u32 {
        600
    }
    pub fn review_burst_min_amounts() -> std::collections::BTreeMap<String, rust_decimal::Decimal> {
        per_currency(10_000, 200, 200)
    }
    pub fn review_expire_after_h() -> u32 {
        24
    }
    pub fn fx_quote_ttl_s() -> u32 {
        60
    }
    pub fn standing_orders_poll_interval_ms() -> u64 {
        1_000
    }
    pub fn standing_orders_retry_after_s() -> u32 {
        4 * 3600
    }
}

/// Settings whose environment override is always a plain string.
const STRING_KEYS: [&str; 21] = [
    "server.listen",
    "server.tls_cert",
    "server.tls_key",
    "server.log_format",
    "database.dbname",
    "database.user",
    "database.password",
    "database.migration_user",
    "database.migration_password",
    "database.sync_mode",
    "security.totp_key_hex",
    "notifications.sms_base_url",
    "notifications.sms_account_sid",
    "notifications.sms_auth_token",
    "notifications.sms_from",
    "notifications.extra_ca_pem",
    "notifications.smtp_host",
    "notifications.smtp_username",
    "notifications.smtp_password",
    "notifications.smtp_from",
    "notifications.local_receivers_dir",
];

impl Config {
    /// The name customers know this bank by (statements, SMS, e-mail): its
    /// name in the consortium, else the product's.
    pub fn bank_name(&self) -> &str {
        self.interbank.as_ref().map_or("FlexiBank", |c| c.bank_name.as_str())
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        Self::from_toml_with_env(&text, std::env::vars())
    }

    pub fn from_toml_with_env(
        text: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut tree: toml::Table = toml::from_str(text).context("parsing config TOML")?;
        for (name, value) in env {
            let Some(path) = name.strip_prefix("FLEXIBANK__") else { continue };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let [section, key] = parts.as_slice() else {
                anyhow::bail!("{name}: expected FLEXIBANK__<SECTION>__<KEY>");
            };
            let table = tree
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .with_context(|| format!("{name}: [{section}] is not a table"))?;
            // String settings take the value as it is (a password may look
            // like a number); the others parse it as a TOML value (7, true,
            // ["a", "b"]), falling back to the plain string.
            let parsed = if STRING_KEYS.contains(&format!("{section}.{key}").as_str()) {
                toml::Value::String(value)
            } else {
                toml::from_str::<toml::Table>(&format!("v = {value}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or(toml::Value::String(value))
            };
            table.insert(key.clone(), parsed);
        }
        let config: Config = toml::Value::Table(tree).try_into().context("invalid config")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.database.nodes.is_empty(), "database.nodes is empty");
        anyhow::ensure!(
            ["strict", "degrade"].contains(&self.database.sync_mode.as_str()),
            "database.sync_mode must be \"strict\" or \"degrade\""
        );
        anyhow::ensure!(self.database.health_interval_ms >= 50, "database.health_interval_ms must be at least 50");
        anyhow::ensure!(self.database.pool_size >= 2, "database.pool_size must be at least 2");
        anyhow::ensure!(
            self.database.max_serialization_attempts >= 1,
            "database.max_serialization_attempts must be at least 1"
        );
        anyhow::ensure!(self.database.group_commit_workers <= 64, "database.group_commit_workers must be at most 64");
        anyhow::ensure!(
            self.server.limits.idle_timeout_ms > self.server.request_timeout_ms,
            "server.limits.idle_timeout_ms must be longer than server.request_timeout_ms"
        );
        anyhow::ensure!(self.security.password_hash_threads <= 64, "security.password_hash_threads must be at most 64");
        anyhow::ensure!(
            (1..=7 * 24 * 3600).contains(&self.security.lookup_window_s),
            "security.lookup_window_s must be 1 second to 7 days"
        );
        if let Some(interbank) = &self.interbank {
            anyhow::ensure!(interbank.group_linger_ms <= 1000, "interbank.group_linger_ms must be at most 1000");
        }
        anyhow::ensure!((1..=3600).contains(&self.fx.quote_ttl_s), "fx.quote_ttl_s must be 1 to 3600");
        let review = &self.review;
        anyhow::ensure!((1..=7 * 24).contains(&review.expire_after_h), "review.expire_after_h must be 1 to 168");
        anyhow::ensure!((1..=24 * 3600).contains(&review.burst_window_s), "review.burst_window_s must be 1 s to 24 h");
        anyhow::ensure!(
            review.new_payee_amounts.values().chain(review.burst_min_amounts.values()).all(|a| *a > rust_decimal::Decimal::ZERO),
            "review amounts must be above zero"
        );
        let orders = &self.standing_orders;
        anyhow::ensure!((10..=60_000).contains(&orders.poll_interval_ms), "standing_orders.poll_interval_ms must be 10 to 60000");
        anyhow::ensure!((1..=24 * 3600).contains(&orders.retry_after_s), "standing_orders.retry_after_s must be 1 s to 24 h");
        let n = &self.notifications;
        anyhow::ensure!(n.poll_interval_ms >= 10, "notifications.poll_interval_ms must be at least 10");
        anyhow::ensure!((1..=1000).contains(&n.batch_size), "notifications.batch_size must be 1 to 1000");
        anyhow::ensure!(n.max_attempts >= 1, "notifications.max_attempts must be at least 1");
        anyhow::ensure!(n.backoff_first_ms >= 1 && n.backoff_first_ms <= n.backoff_max_ms, "notifications: backoff_first_ms must be 1..=backoff_max_ms");
        let sms = [&n.sms_base_url, &n.sms_account_sid, &n.sms_auth_token, &n.sms_from];
        anyhow::ensure!(
            sms.iter().all(|v| v.is_some()) || sms.iter().all(|v| v.is_none()),
            "notifications: set all of sms_base_url, sms_account_sid, sms_auth_token, sms_from, or none"
        );
        let key = hex::decode(&self.security.totp_key_hex)
            .context("security.totp_key_hex is not hex")?;
        anyhow::ensure!(key.len() == 32, "security.totp_key_hex must be 32 bytes (64 hex digits)");
        Ok(())
    }
}
