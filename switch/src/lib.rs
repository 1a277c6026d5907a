//! The consortium switch: an HTTPS API with mutual TLS (every bank presents
//! a client certificate from the consortium CA naming its bank id, and may
//! act only for itself) over its own PostgreSQL database, holding the key
//! directory. `start` is the whole server; `main.rs` and the tests call it.

pub mod bank_cache;
pub mod batch;
pub mod calls;
pub mod config;
pub mod db;
pub mod directory;
pub mod driver;
pub mod endpoints;
pub mod error;
pub mod http;
pub mod payments;
pub mod peer;
pub mod rate;
pub mod reconcile;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use flexibank_consortium::pki;

pub use config::{Config, DatabaseConfig, Limits, ReconcileConfig};
pub use reconcile::{reconcile, BankReconciliation, Reconciliation};

/// In-flight requests get this long to finish at shutdown.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);

pub struct RunningSwitch {
    pub addr: SocketAddr,
    pub db: deadpool_postgres::Pool,
    handle: axum_server::Handle,
    serve_task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_driver: tokio::sync::watch::Sender<bool>,
    driver_task: tokio::task::JoinHandle<()>,
}

impl RunningSwitch {
    /// Stops accepting, lets in-flight requests finish, then returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        // The driver first: nothing it leaves half done is lost (the next start re-sends and re-sweeps).
        let _ = self.stop_driver.send(true);
        self.driver_task.await.context("driver task")?;
        self.handle.graceful_shutdown(Some(GRACEFUL_SHUTDOWN));
        self.serve_task.await.context("switch task")?.context("switch")?;
        Ok(())
    }
}

/// Migrates the database and serves HTTPS with mutual TLS on `config.listen`
/// (port 0 picks a free port; see `RunningSwitch::addr`).
pub async fn start(config: Config) -> anyhow::Result<RunningSwitch> {
    db::migrate(&config.database).await?;
    let pool = db::pool(&config.database)?;
    let dir = &config.tls_dir;
    let tls = pki::server_config_mtls(&dir.join(pki::CA_CERT_FILE), &dir.join(pki::SWITCH_CERT_FILE), &dir.join(pki::SWITCH_KEY_FILE))?;
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let limits = &config.limits;
    if limits.prepare_timeout_ms >= limits.request_timeout_ms {
        // The payer's initiate waits for the payee's vote up to the deadline: past the request timeout it gets 503 instead of the decision.
        tracing::warn!(limits.prepare_timeout_ms, limits.request_timeout_ms, "prepare_timeout_ms should be below request_timeout_ms");
    }
    let calls = Arc::new(calls::Calls::new(dir.clone(), limits.call_timeout_ms));
    let warnings = Arc::new(driver::Warnings::default());
    let batcher = Arc::new(batch::Batcher::start(pool.clone()));
    let state = http::AppState {
        batcher: batcher.clone(),
        banks: Arc::new(bank_cache::BankCache::default()),
        db: pool.clone(),
        lookups: Arc::new(rate::LookupLimits::new(limits)),
        prepare_timeout_ms: limits.prepare_timeout_ms,
        calls: calls.clone(),
        warnings: warnings.clone(),
        metrics: flexibank_consortium::telemetry::metrics_handle(),
    };
    let app = http::router(state, limits);
    let tls = RustlsAcceptor::new(RustlsConfig::from_config(tls)).handshake_timeout(Duration::from_millis(limits.tls_handshake_timeout_ms));
    let handle = axum_server::Handle::new();
    let mut server = axum_server::from_tcp(listener).acceptor(peer::PeerAcceptor::new(tls, limits.max_connections)).handle(handle.clone());
    // A request's headers must arrive in time: half-sent requests do not hold a connection forever.
    server.http_builder().http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    let serve_task = tokio::spawn(server.serve(app.into_make_service()));
    let (stop_driver, stopped) = tokio::sync::watch::channel(false);
    let driver_task = tokio::spawn(driver::Driver::new(pool.clone(), batcher, calls, warnings, limits).run(stopped));
    tracing::info!(%addr, "switch serving https (mutual TLS)");
    Ok(RunningSwitch { addr, db: pool, handle, serve_task, stop_driver, driver_task })
}

/// Registers a bank in the switch's database (migrating it first): `directory::add_bank`.
pub async fn add_bank(database: &DatabaseConfig, bank_id: &str, name: &str) -> anyhow::Result<bool> {
    db::migrate(database).await?;
    let pool = db::pool(database)?;
    let client = pool.get().await.context("connecting to the database")?;
    directory::add_bank(&client, bank_id, name).await
}

/// Sets a bank's prefunded amount and net debit cap (migrating first), logging
/// both figures before and after: every change of a bank's liquidity is on record.
pub async fn fund(database: &DatabaseConfig, bank_id: &str, prefunded: &str, net_debit_cap: &str) -> anyhow::Result<payments::Position> {
    let prefunded = payments::parse_liquidity(prefunded).map_err(|e| anyhow::anyhow!("--prefunded: {e}"))?;
    let net_debit_cap = payments::parse_liquidity(net_debit_cap).map_err(|e| anyhow::anyhow!("--net-debit-cap: {e}"))?;
    db::migrate(database).await?;
    let pool = db::pool(database)?;
    let (before, after) = payments::fund(&pool, bank_id, prefunded, net_debit_cap).await?;
    tracing::info!(
        audit = true,
        bank = bank_id,
        prefunded_before = %before.prefunded,
        prefunded_after = %after.prefunded,
        net_debit_cap_before = %before.net_debit_cap,
        net_debit_cap_after = %after.net_debit_cap,
        position = %after.position,
        pending_out = %after.pending_out,
        "bank liquidity set"
    );
    Ok(after)
}
