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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Failed password or code attempts before a username is locked.
    #[serde(default = "defaults::max_failed_logins")]
    pub max_failed_logins: u32,
    /// How long a lock lasts, and how long failures are remembered.
    #[serde(default = "defaults::lockout_seconds")]
    pub lockout_seconds: u32,
    /// Argon2id parameters for new password hashes.
    #[serde(default = "defaults::argon2_memory_kib")]
    pub argon2_memory_kib: u32,
    #[serde(default = "defaults::argon2_iterations")]
    pub argon2_iterations: u32,
}

mod defaults {
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
}

impl Config {
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
            // Keep the type of the value being overridden: numbers stay numbers.
            let parsed = match table.get(key) {
                Some(toml::Value::String(_)) | None => toml::Value::String(value),
                Some(_) => toml::from_str::<toml::Table>(&format!("v = {value}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or(toml::Value::String(value)),
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
        let key = hex::decode(&self.security.totp_key_hex)
            .context("security.totp_key_hex is not hex")?;
        anyhow::ensure!(key.len() == 32, "security.totp_key_hex must be 32 bytes (64 hex digits)");
        Ok(())
    }
}
