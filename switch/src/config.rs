//! The switch's configuration: command-line flags, each with an environment
//! fallback (`FLEXIBANK_SWITCH_*`), and defaults for every limit.

use std::{net::SocketAddr, path::PathBuf};

/// `serve`'s configuration.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    /// Address to serve HTTPS on; port 0 picks a free port (the bound address is logged).
    #[arg(long, env = "FLEXIBANK_SWITCH_LISTEN", default_value = "127.0.0.1:9443")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Holds ca.pem, switch.pem and switch-key.pem (see `pki`).
    #[arg(long, env = "FLEXIBANK_SWITCH_TLS_DIR", default_value = "var/switch/tls")]
    pub tls_dir: PathBuf,
    #[command(flatten)]
    pub limits: Limits,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DatabaseConfig {
    /// PostgreSQL connection string (key=value or postgres:// URL) of the switch's own database.
    #[arg(long = "database-url", env = "FLEXIBANK_SWITCH_DATABASE_URL", hide_env_values = true)]
    pub url: String,
    #[arg(long, env = "FLEXIBANK_SWITCH_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,
    #[arg(long, env = "FLEXIBANK_SWITCH_CONNECT_TIMEOUT_MS", default_value_t = 2_000)]
    pub connect_timeout_ms: u64,
}

impl DatabaseConfig {
    pub fn new(url: impl Into<String>) -> DatabaseConfig {
        DatabaseConfig { url: url.into(), pool_size: 16, connect_timeout_ms: 2_000 }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct Limits {
    #[arg(long, env = "FLEXIBANK_SWITCH_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    #[arg(long, env = "FLEXIBANK_SWITCH_TLS_HANDSHAKE_TIMEOUT_MS", default_value_t = 5_000)]
    pub tls_handshake_timeout_ms: u64,
    #[arg(long, env = "FLEXIBANK_SWITCH_HEADER_READ_TIMEOUT_MS", default_value_t = 5_000)]
    pub header_read_timeout_ms: u64,
    /// Open connections (handshakes included); past it a connection is closed at once.
    #[arg(long, env = "FLEXIBANK_SWITCH_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    #[arg(long, env = "FLEXIBANK_SWITCH_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,
    /// Directory look-ups per second a bank may make on average ...
    #[arg(long, env = "FLEXIBANK_SWITCH_LOOKUPS_PER_SECOND_PER_BANK", default_value_t = 50)]
    pub lookups_per_second_per_bank: u32,
    /// ... and at once.
    #[arg(long, env = "FLEXIBANK_SWITCH_LOOKUP_BURST_PER_BANK", default_value_t = 100)]
    pub lookup_burst_per_bank: u32,
    /// Look-ups per minute for one customer of one bank (also its burst): key enumeration is slow.
    #[arg(long, env = "FLEXIBANK_SWITCH_LOOKUPS_PER_MINUTE_PER_USER", default_value_t = 10)]
    pub lookups_per_minute_per_user: u32,
    /// Customers whose look-ups are remembered at once (bounded memory).
    #[arg(long, env = "FLEXIBANK_SWITCH_MAX_TRACKED_USERS", default_value_t = 100_000)]
    pub max_tracked_users: usize,
    /// How long a payment may wait for the payee bank's vote before the switch aborts it.
    #[arg(long, env = "FLEXIBANK_SWITCH_PREPARE_TIMEOUT_MS", default_value_t = 3_000)]
    pub prepare_timeout_ms: u64,
    /// Longest any call to a bank's switch-only listener may take (a prepare takes at most what is left of its deadline).
    #[arg(long, env = "FLEXIBANK_SWITCH_CALL_TIMEOUT_MS", default_value_t = 2_000)]
    pub call_timeout_ms: u64,
    /// How often the driver aborts expired payments and re-sends unacknowledged decisions.
    #[arg(long, env = "FLEXIBANK_SWITCH_DRIVER_INTERVAL_MS", default_value_t = 200)]
    pub driver_interval_ms: u64,
    /// How long after its decision a bank's missing acknowledgement makes the driver push the decision again.
    #[arg(long, env = "FLEXIBANK_SWITCH_RESEND_AFTER_MS", default_value_t = 1_000)]
    pub resend_after_ms: u64,
    /// Decision pushes the driver has in flight at once.
    #[arg(long, env = "FLEXIBANK_SWITCH_MAX_CONCURRENT_RESENDS", default_value_t = 16)]
    pub max_concurrent_resends: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout_ms: 10_000,
            tls_handshake_timeout_ms: 5_000,
            header_read_timeout_ms: 5_000,
            max_connections: 512,
            max_body_bytes: 16 * 1024,
            lookups_per_second_per_bank: 50,
            lookup_burst_per_bank: 100,
            lookups_per_minute_per_user: 10,
            max_tracked_users: 100_000,
            prepare_timeout_ms: 3_000,
            call_timeout_ms: 2_000,
            driver_interval_ms: 200,
            resend_after_ms: 1_000,
            max_concurrent_resends: 16,
        }
    }
}

/// `reconcile`'s configuration: the switch's database, its certificates, and how long a bank may take to answer.
#[derive(clap::Args, Debug, Clone)]
pub struct ReconcileConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[arg(long, env = "FLEXIBANK_SWITCH_TLS_DIR", default_value = "var/switch/tls")]
    pub tls_dir: PathBuf,
    #[arg(long, env = "FLEXIBANK_SWITCH_CALL_TIMEOUT_MS", default_value_t = 2_000)]
    pub call_timeout_ms: u64,
}
