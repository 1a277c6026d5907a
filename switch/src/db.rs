//! The switch's database: a connection pool on its own PostgreSQL database,
//! the migrations (refinery, embedded from `switch/sql/`), and the mapping of
//! database errors to `SwitchError`.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::{
    config::DatabaseConfig,
    error::{Code, SwitchError},
};

mod embedded {
    refinery::embed_migrations!("sql");
}

pub type Client = deadpool_postgres::Object;
/// Re-exported for callers (the tests) that hold the pool without depending on deadpool.
pub use deadpool_postgres::Pool;

/// The advisory lock two switches starting at once migrate under.
const MIGRATION_LOCK: i64 = 7272;

fn pg_config(cfg: &DatabaseConfig) -> anyhow::Result<tokio_postgres::Config> {
    let mut pg = tokio_postgres::Config::from_str(&cfg.url).context("parsing the database connection string")?;
    pg.application_name("flexibank-switch").connect_timeout(Duration::from_millis(cfg.connect_timeout_ms));
    // Every statement here is a batch over arrays, whose custom plans cost more
    // to make than to run: planned once per connection, not once per batch.
    let options = match pg.get_options() {
        Some(given) => format!("{given} -c plan_cache_mode=force_generic_plan"),
        None => "-c plan_cache_mode=force_generic_plan".to_string(),
    };
    pg.options(&options);
    Ok(pg)
}

pub fn pool(cfg: &DatabaseConfig) -> anyhow::Result<Pool> {
    let manager = Manager::from_config(pg_config(cfg)?, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let timeout = Some(Duration::from_millis(cfg.connect_timeout_ms));
    Pool::builder(manager)
        .max_size(cfg.pool_size.max(1))
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("building the connection pool")
}

/// Applies `switch/sql/V*.sql` that are not applied yet.
pub async fn migrate(cfg: &DatabaseConfig) -> anyhow::Result<()> {
    let (mut client, connection) = pg_config(cfg)?.connect(NoTls).await.context("connecting to migrate")?;
    tokio::spawn(connection);
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
    for migration in report.context("applying migrations")?.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    Ok(())
}

pub async fn client(pool: &Pool) -> Result<Client, SwitchError> {
    pool.get().await.map_err(|e| {
        tracing::warn!(error = %e, "no database connection");
        SwitchError::new(Code::Unavailable, "no database connection right now; nothing was changed").with_retry_after(1)
    })
}

/// A lost connection is 503 (nothing committed that the caller was told of);
/// anything else from the database is a bug.
pub fn db_error(e: tokio_postgres::Error) -> SwitchError {
    if let Some(db) = e.as_db_error() {
        return SwitchError::internal(format!("database: {} ({})", db.message(), db.code().code()));
    }
    if e.is_closed() || e.to_string().contains("connection") {
        tracing::warn!(error = %e, "database connection lost");
        return SwitchError::new(Code::Unavailable, "lost the database connection; retry").with_retry_after(1);
    }
    SwitchError::internal(format!("database: {e}"))
}
