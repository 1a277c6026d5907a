//! Database access: the connection pool, the serializable-retry loop, and the
//! mapping of database errors to API errors.
//!
//! Today the pool talks to the primary only (found among `database.nodes` by
//! asking each node `pg_is_in_recovery()`); reads say `X-Served-By: primary`.
//! The health-checking failover pool of `flexibank-replication` replaces
//! `Db::connect` without changing its callers: they ask for a writer or a
//! reader and get a client plus the node that serves it.

use std::{future::Future, time::Duration};

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rand::Rng;
use tokio_postgres::{error::SqlState, NoTls};

use crate::{
    config::DatabaseConfig,
    error::{ApiError, Code},
};

mod embedded {
    refinery::embed_migrations!("../sql");
}

/// Which node served a read (the `X-Served-By` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedBy {
    Primary,
    Replica,
}

impl ServedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ServedBy::Primary => "primary",
            ServedBy::Replica => "replica",
        }
    }
}

#[derive(Clone)]
pub struct Db {
    /// Connections whose every statement is SERIALIZABLE: money and other writes.
    primary: Pool,
    /// READ COMMITTED connections to the same node, for reads and session
    /// checks: a SERIALIZABLE reader takes predicate locks and can make
    /// concurrent money movements abort, for no gain on single-statement reads.
    primary_read_committed: Pool,
    max_serialization_attempts: u32,
    pub primary_node: String,
}

pub type Client = deadpool_postgres::Object;

/// SQLSTATE of the business errors raised by `fb_fail()` in sql/V2.
const BUSINESS_ERROR_SQLSTATE: &str = "FB000";
/// Full-jitter backoff between serialization retries is drawn below this cap.
const RETRY_BACKOFF_CAP_MS: u64 = 64;

fn node_config(cfg: &DatabaseConfig, node: &str, user: &str, password: &str) -> anyhow::Result<tokio_postgres::Config> {
    let (host, port) = node
        .rsplit_once(':')
        .with_context(|| format!("database node {node:?} is not host:port"))?;
    let port: u16 = port.parse().with_context(|| format!("bad port in {node:?}"))?;
    let mut pg = tokio_postgres::Config::new();
    pg.host(host)
        .port(port)
        .dbname(&cfg.dbname)
        .user(user)
        .password(password)
        .application_name("flexibank-server")
        .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
        .keepalives_idle(Duration::from_secs(5));
    Ok(pg)
}

fn build_pool(cfg: &DatabaseConfig, node: &str, options: &str, size: usize) -> anyhow::Result<Pool> {
    let mut pg = node_config(cfg, node, &cfg.user, &cfg.password)?;
    pg.options(options);
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_millis(cfg.connect_timeout_ms * 2)))
        .create_timeout(Some(Duration::from_millis(cfg.connect_timeout_ms)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("building a connection pool")
}

/// Asks each node whether it is in recovery; the first that is not is the primary.
async fn find_primary(cfg: &DatabaseConfig) -> anyhow::Result<String> {
    let mut seen = Vec::new();
    for node in &cfg.nodes {
        let pg = node_config(cfg, node, &cfg.user, &cfg.password)?;
        match pg.connect(NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                let in_recovery: bool =
                    client.query_one("SELECT pg_is_in_recovery()", &[]).await?.get(0);
                if !in_recovery {
                    return Ok(node.clone());
                }
                seen.push(format!("{node}: replica"));
            }
            Err(e) => seen.push(format!("{node}: {e}")),
        }
    }
    anyhow::bail!("no primary among database.nodes ({})", seen.join("; "))
}

impl Db {
    pub async fn connect(cfg: &DatabaseConfig) -> anyhow::Result<Db> {
        let primary_node = find_primary(cfg).await?;
        let serializable = "-c default_transaction_isolation=serializable -c TimeZone=UTC";
        let read_committed = "-c default_transaction_isolation=read\\ committed -c TimeZone=UTC";
        // Every statement on `primary` is its own SERIALIZABLE transaction
        // unless it says otherwise: a money movement is one
        // `SELECT move_money(...)`, so this saves the BEGIN/COMMIT round trips.
        let primary = build_pool(cfg, &primary_node, serializable, cfg.pool_size)?;
        let primary_read_committed = build_pool(cfg, &primary_node, read_committed, (cfg.pool_size / 2).max(2))?;
        Ok(Db { primary, primary_read_committed, max_serialization_attempts: cfg.max_serialization_attempts, primary_node })
    }

    /// Applies the numbered migrations in `sql/` as the schema owner. An
    /// advisory lock keeps two servers starting at once from racing.
    pub async fn migrate(cfg: &DatabaseConfig) -> anyhow::Result<()> {
        let primary_node = find_primary(cfg).await?;
        let pg = node_config(cfg, &primary_node, &cfg.migration_user, &cfg.migration_password)?;
        let (mut client, connection) = pg.connect(NoTls).await.context("connecting to migrate")?;
        tokio::spawn(connection);
        client.batch_execute("SELECT pg_advisory_lock(7171)").await?;
        let report = embedded::migrations::runner().run_async(&mut client).await;
        client.batch_execute("SELECT pg_advisory_unlock(7171)").await?;
        let report = report.context("applying migrations")?;
        for migration in report.applied_migrations() {
            tracing::info!(migration = %migration, "applied migration");
        }
        Ok(())
    }

    /// A connection to the node that takes writes now.
    pub async fn writer(&self) -> Result<Client, ApiError> {
        self.primary.get().await.map_err(pool_error)
    }

    /// A READ COMMITTED connection to the primary (session checks: they may write).
    pub async fn primary_read_committed(&self) -> Result<Client, ApiError> {
        self.primary_read_committed.get().await.map_err(pool_error)
    }

    /// A READ COMMITTED connection for a read, and which node it is on.
    pub async fn reader(&self) -> Result<(Client, ServedBy), ApiError> {
        Ok((self.primary_read_committed().await?, ServedBy::Primary))
    }

    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.primary.status()
    }

    /// Runs `op` (one whole transaction) until it commits or fails with
    /// something other than a serialization failure or deadlock, at most
    /// `max_serialization_attempts` times, with full-jitter backoff between.
    pub async fn retry_serializable<T, F, Fut>(&self, mut op: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.code == Code::TransientConflict
                    && attempt < self.max_serialization_attempts =>
                {
                    metrics::counter!("flexibank_serialization_retries_total").increment(1);
                    let cap_ms = (1u64 << attempt.min(6)).min(RETRY_BACKOFF_CAP_MS);
                    let sleep_us = rand::thread_rng().gen_range(0..=cap_ms * 1000);
                    tokio::time::sleep(Duration::from_micros(sleep_us)).await;
                    attempt += 1;
                }
                Err(e) if e.code == Code::TransientConflict => {
                    metrics::counter!("flexibank_serialization_give_ups_total").increment(1);
                    return Err(ApiError::new(
                        Code::RateLimited,
                        "too much contention on these accounts right now; retry with the same Idempotency-Key",
                    )
                    .with_retry_after(1));
                }
                other => return other,
            }
        }
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> ApiError {
    tracing::warn!(error = %e, "no database connection");
    ApiError::new(Code::NoPrimary, "no writable database node right now; nothing was applied")
        .with_retry_after(1)
}

/// Maps a database error to the API: business errors raised by the SQL
/// functions keep their contract code; serialization failures are marked for
/// retry; a lost connection is 503; anything else is a bug.
pub fn db_error(e: tokio_postgres::Error) -> ApiError {
    if let Some(db) = e.as_db_error() {
        if db.code().code() == BUSINESS_ERROR_SQLSTATE {
            let code = Code::from_str(db.message()).unwrap_or(Code::Internal);
            return ApiError::new(code, db.detail().unwrap_or_default());
        }
        if *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
            || *db.code() == SqlState::T_R_DEADLOCK_DETECTED
        {
            tracing::debug!(message = db.message(), detail = ?db.detail(), "serialization failure");
            return ApiError::new(Code::TransientConflict, "serialization failure").with_retry_after(1);
        }
        if *db.code() == SqlState::READ_ONLY_SQL_TRANSACTION
            || *db.code() == SqlState::ADMIN_SHUTDOWN
            || *db.code() == SqlState::CANNOT_CONNECT_NOW
        {
            return ApiError::new(Code::NoPrimary, "the database node is not writable right now")
                .with_retry_after(1);
        }
        // Text the client sent that PostgreSQL cannot hold (a NUL character in
        // a search term, username or decoded cursor): bad input, not a bug.
        if *db.code() == SqlState::CHARACTER_NOT_IN_REPERTOIRE || *db.code() == SqlState::UNTRANSLATABLE_CHARACTER {
            return ApiError::validation("text must not contain NUL characters");
        }
        return ApiError::internal(format!("database: {} ({})", db.message(), db.code().code()));
    }
    if e.is_closed() || e.to_string().contains("connection") {
        tracing::warn!(error = %e, "database connection lost");
        return ApiError::new(Code::NoPrimary, "lost the database connection; retry with the same Idempotency-Key")
            .with_retry_after(1);
    }
    ApiError::internal(format!("database: {e}"))
}
