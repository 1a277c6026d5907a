//! Database access: the failover pool (flexibank-replication), the
//! serializable-retry loop, read-your-writes bookkeeping, and the mapping of
//! database errors to API errors.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use flexibank_replication::pool::{ClusterPool, NodeAddress, PoolConfig, PoolError, Role, SyncMode};
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
    pub pool: ClusterPool,
    max_serialization_attempts: u32,
    /// The commit LSN of each session's last write: its reads go to a
    /// replica only once that replica has replayed it.
    last_writes: Arc<Mutex<HashMap<Vec<u8>, u64>>>,
}

pub type Client = deadpool_postgres::Object;

/// A READ COMMITTED transaction on a write connection: its commit waits for
/// the synchronous standby like every write (a read connection commits
/// locally), without SERIALIZABLE's retries, for writes whose only contention
/// is an atomic upsert or a unique index (payees, look-up counters).
pub async fn durable_read_committed(client: &mut Client) -> Result<deadpool_postgres::Transaction<'_>, ApiError> {
    client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::ReadCommitted).start().await.map_err(db_error)
}

/// SQLSTATE of the business errors raised by `fb_fail()` in sql/V2.
const BUSINESS_ERROR_SQLSTATE: &str = "FB000";
/// Full-jitter backoff between serialization retries is drawn below this cap.
const RETRY_BACKOFF_CAP_MS: u64 = 64;
/// Bound on remembered sessions for read-your-writes; past it the map is
/// cleared (those sessions read from the primary until their next write).
const MAX_TRACKED_SESSIONS: usize = 200_000;

/// Every statement on a write connection is its own SERIALIZABLE transaction
/// unless it says otherwise: a money movement is one `SELECT move_money(...)`,
/// so this saves the BEGIN/COMMIT round trips. Reads are READ COMMITTED: a
/// SERIALIZABLE reader takes predicate locks and can make concurrent money
/// movements abort, and hot standbys do not offer SERIALIZABLE at all.
/// The only write on a read connection is the session's `last_seen_at` touch:
/// it commits locally, so that while no synchronous replica answers (strict
/// mode) authenticating, and with it every read and the DBA's view, does not
/// hang on it. Losing a touch in a failover only makes that session idle sooner.
const WRITE_OPTIONS: &str = "-c default_transaction_isolation=serializable -c TimeZone=UTC";
const READ_OPTIONS: &str = "-c default_transaction_isolation=read\\ committed -c TimeZone=UTC -c synchronous_commit=local";

/// `events`: whether movements, logins and status changes write notification
/// events (sql/V5 reads the `flexibank.notifications` setting).
pub fn pool_config(cfg: &DatabaseConfig, events: bool) -> anyhow::Result<PoolConfig> {
    Ok(PoolConfig {
        nodes: cfg.nodes.iter().map(|n| NodeAddress::parse(n)).collect::<anyhow::Result<_>>()?,
        dbname: cfg.dbname.clone(),
        user: cfg.user.clone(),
        password: cfg.password.clone(),
        admin_user: cfg.migration_user.clone(),
        admin_password: cfg.migration_password.clone(),
        pool_size: cfg.pool_size,
        connect_timeout_ms: cfg.connect_timeout_ms,
        health_interval_ms: cfg.health_interval_ms,
        unreachable_after_ms: cfg.unreachable_after_ms,
        max_replica_lag_ms: cfg.max_replica_lag_ms,
        max_replica_lag_bytes: cfg.max_replica_lag_bytes,
        sync_mode: if cfg.sync_mode == "degrade" { SyncMode::Degrade } else { SyncMode::Strict },
        degrade_after_ms: cfg.degrade_after_ms,
        auto_failover: cfg.auto_failover,
        failover_after_ms: cfg.failover_after_ms,
        write_options: if events { WRITE_OPTIONS.into() } else { format!("{WRITE_OPTIONS} -c flexibank.notifications=off") },
        read_options: READ_OPTIONS.into(),
    })
}

/// Asks each node whether it is in recovery; the first that is not is the primary.
async fn find_primary(cfg: &DatabaseConfig, user: &str, password: &str) -> anyhow::Result<NodeAddress> {
    let mut seen = Vec::new();
    for spec in &cfg.nodes {
        let node = NodeAddress::parse(spec)?;
        let mut pg = tokio_postgres::Config::new();
        pg.host(&node.host)
            .port(node.port)
            .dbname(&cfg.dbname)
            .user(user)
            .password(password)
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms));
        match pg.connect(NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                let in_recovery: bool = client.query_one("SELECT pg_is_in_recovery()", &[]).await?.get(0);
                if !in_recovery {
                    return Ok(node);
                }
                seen.push(format!("{spec}: replica"));
            }
            Err(e) => seen.push(format!("{spec}: {e}")),
        }
    }
    anyhow::bail!("no primary among database.nodes ({})", seen.join("; "))
}

impl Db {
    pub async fn connect(cfg: &DatabaseConfig, events: bool) -> anyhow::Result<Db> {
        let pool = ClusterPool::start(pool_config(cfg, events)?).await?;
        Ok(Db {
            pool,
            max_serialization_attempts: cfg.max_serialization_attempts,
            last_writes: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Applies the numbered migrations in `sql/` as the schema owner. An
    /// advisory lock keeps two servers starting at once from racing.
    pub async fn migrate(cfg: &DatabaseConfig) -> anyhow::Result<()> {
        let primary = find_primary(cfg, &cfg.migration_user, &cfg.migration_password).await?;
        let mut pg = tokio_postgres::Config::new();
        pg.host(&primary.host)
            .port(primary.port)
            .dbname(&cfg.dbname)
            .user(&cfg.migration_user)
            .password(&cfg.migration_password)
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms));
        let (mut client, connection) = pg.connect(NoTls).await.context("connecting to migrate")?;
        tokio::spawn(connection);
        client.batch_execute("SELECT pg_advisory_lock(7171)").await?;
        let report = embedded::migrations::runner().run_async(&mut client).await;
        let functions = match &report {
            Ok(_) => crate::stored_functions::apply(&mut client).await,
            Err(_) => Ok(Vec::new()),
        };
        client.batch_execute("SELECT pg_advisory_unlock(7171)").await?;
        let report = report.context("applying migrations")?;
        for migration in report.applied_migrations() {
            tracing::info!(migration = %migration, "applied migration");
        }
        for function in functions? {
            tracing::info!(function, "applied sql/functions/{function}.sql");
        }
        Ok(())
    }

    /// A SERIALIZABLE connection to the node that takes writes now.
    pub async fn writer(&self) -> Result<Client, ApiError> {
        Ok(self.pool.writer().await.map_err(pool_error)?.client)
    }

    /// A READ COMMITTED connection to the primary (session checks: they may write).
    pub async fn primary_read_committed(&self) -> Result<Client, ApiError> {
        Ok(self.pool.primary_reader().await.map_err(pool_error)?.client)
    }

    /// A READ COMMITTED connection for a read by no session in particular.
    pub async fn reader(&self) -> Result<(Client, ServedBy), ApiError> {
        self.read_at(None).await
    }

    /// A connection for a read by `session`: a replica only if it has
    /// replayed that session's last write.
    pub async fn reader_for(&self, session_hash: &[u8]) -> Result<(Client, ServedBy), ApiError> {
        let min_lsn = self.last_writes.lock().expect("lock").get(session_hash).copied();
        self.read_at(min_lsn).await
    }

    async fn read_at(&self, min_lsn: Option<u64>) -> Result<(Client, ServedBy), ApiError> {
        let conn = self.pool.reader(min_lsn).await.map_err(pool_error)?;
        let served_by = if conn.role == Role::Replica { ServedBy::Replica } else { ServedBy::Primary };
        Ok((conn.client, served_by))
    }

    /// Remembers that `session` wrote at `lsn` (an LSN at or after its commit).
    pub fn remember_write(&self, session_hash: &[u8], lsn_text: &str) {
        let Some(lsn) = flexibank_replication::status::parse_lsn(lsn_text) else { return };
        self.remember_write_at(session_hash, lsn);
    }

    /// As `remember_write`, with the position as a number.
    pub fn remember_write_at(&self, session_hash: &[u8], lsn: u64) {
        let mut writes = self.last_writes.lock().expect("lock");
        if writes.len() >= MAX_TRACKED_SESSIONS {
            writes.clear();
        }
        let entry = writes.entry(session_hash.to_vec()).or_insert(0);
        *entry = (*entry).max(lsn);
    }

    /// After a write that went through another connection: the primary's
    /// current LSN is at or after that commit.
    pub async fn remember_write_now(&self, session_hash: &[u8]) {
        if let Ok(client) = self.primary_read_committed().await {
            // Prepared once per connection: every write request asks this, and
            // a statement sent as text costs a second round trip and a plan.
            let Ok(statement) = client.prepare_cached("SELECT pg_current_wal_lsn()::text").await else { return };
            if let Ok(row) = client.query_one(&statement, &[]).await {
                self.remember_write(session_hash, &row.get::<_, String>(0));
            }
        }
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

fn pool_error(e: PoolError) -> ApiError {
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
            let code = Code::parse(db.message()).unwrap_or(Code::Internal);
            return ApiError::new(code, db.detail().unwrap_or_default());
        }
        if *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
            || *db.code() == SqlState::T_R_DEADLOCK_DETECTED
        {
            tracing::debug!(message = db.message(), detail = ?db.detail(), "serialization failure");
            return ApiError::new(Code::TransientConflict, "serialization failure").with_retry_after(1);
        }
        // The stored response's key exists already (sql/V8): nothing moved.
        if *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some("idempotency_keys_pkey") {
            return ApiError::new(Code::IdempotencyConflict, "this Idempotency-Key was used already");
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
