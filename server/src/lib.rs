//! FlexiBank's ledger server: an HTTPS API (axum over rustls) that moves
//! money in single SERIALIZABLE PostgreSQL transactions.
//!
//! `start` is the whole server: migrations, pool, TLS, router. The binary
//! (`main.rs`) and the end-to-end tests both call it.

pub mod access;
pub mod accounts;
pub mod admin;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod config;
pub mod contention;
pub mod daily_limits;
pub mod db;
pub mod error;
pub mod fx;
pub mod group_commit;
pub mod http;
pub mod interbank;
pub mod ledger;
pub mod money;
pub mod notify;
pub mod page;
pub mod payees;
pub mod rate_window;
pub mod request;
pub mod review;
pub mod scheduler;
pub mod seed;
pub mod stack;
pub mod standing_orders;
pub mod state;
pub mod statements;
pub mod stored_functions;
pub mod text;
pub mod tls;

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;

pub use config::Config;
pub use state::AppState;

/// How often expired idempotency keys, login challenges and sessions are purged.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(600);
/// In-flight requests get this long to finish at shutdown.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);

/// The process-wide Prometheus recorder (installed once, shared by every
/// server and switch started in this process, e.g. by tests).
pub use flexibank_consortium::telemetry::metrics_handle;

pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    handle: axum_server::Handle,
    serve_task: tokio::task::JoinHandle<std::io::Result<()>>,
    maintenance_task: tokio::task::JoinHandle<()>,
    dispatch_task: tokio::task::JoinHandle<()>,
    scheduler_task: tokio::task::JoinHandle<()>,
    /// The switch-only listener's address, when this bank is in a consortium.
    pub interbank_addr: Option<SocketAddr>,
    interbank_tasks: Vec<tokio::task::JoinHandle<()>>,
    interbank_handle: Option<axum_server::Handle>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, then returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(GRACEFUL_SHUTDOWN));
        self.maintenance_task.abort();
        self.dispatch_task.abort();
        self.scheduler_task.abort();
        for task in &self.interbank_tasks {
            task.abort();
        }
        if let Some(handle) = &self.interbank_handle {
            handle.graceful_shutdown(Some(GRACEFUL_SHUTDOWN));
        }
        self.serve_task.await.context("server task")?.context("server")?;
        Ok(())
    }
}

/// Migrates the schema, connects the pool and serves HTTPS on
/// `config.server.listen` (port 0 picks a free port; see `RunningServer::addr`).
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    db::Db::migrate(&config.database).await?;
    let database = db::Db::connect(&config.database, config.notifications.enabled).await?;
    {
        let client = database.writer().await.map_err(|e| anyhow::anyhow!("reading the time zones: {}", e.detail))?;
        notify::settings::load_time_zones(&client).await.map_err(|e| anyhow::anyhow!("reading the time zones: {}", e.detail))?;
    }
    let tls = tls::server_config(&config.server.tls_cert, &config.server.tls_key)?;
    if let Err(e) = notify::receivers::start_local(&config.notifications, tls.clone()).await {
        // The bank runs without them; only the demo's messages go unseen.
        tracing::error!("local notification receivers: {e:#}");
    }
    let listener = std::net::TcpListener::bind(config.server.listen)
        .with_context(|| format!("binding {}", config.server.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let state = AppState::new(config, database, metrics_handle())?;
    let app = http::router(state.clone());
    let handle = axum_server::Handle::new();
    let limits = &state.config.server.limits;
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(RustlsConfig::from_config(tls))
        .handshake_timeout(Duration::from_millis(limits.tls_handshake_timeout_ms))
        .acceptor(http::ConnectionGate::new(limits));
    let mut server = axum_server::from_tcp(listener).acceptor(acceptor).handle(handle.clone());
    // A request's headers must arrive in time: half-sent requests do not
    // hold a connection forever.
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    let server = server.serve(app.into_make_service_with_connect_info::<SocketAddr>());
    let serve_task = tokio::spawn(server);
    let maintenance_task = tokio::spawn(maintenance(state.clone()));
    let dispatch_task = tokio::spawn(notify::dispatch::run(state.clone()));
    let scheduler_task = tokio::spawn(scheduler::run(state.clone()));
    let (interbank_addr, interbank_tasks, interbank_handle) = match start_interbank(&state)? {
        Some((addr, tasks, handle)) => (Some(addr), tasks, Some(handle)),
        None => (None, Vec::new(), None),
    };
    tracing::info!(%addr, primary = ?state.db.pool.view().primary, "serving https");
    Ok(RunningServer { addr, state, handle, serve_task, maintenance_task, dispatch_task, scheduler_task, interbank_addr, interbank_tasks, interbank_handle })
}

type InterbankRunning = (SocketAddr, Vec<tokio::task::JoinHandle<()>>, axum_server::Handle);

/// A member bank's switch-only listener (mutual TLS with the consortium's
/// CA; `http::switch_facing_router` admits only the switch), its resolver of
/// in-doubt payments, and the announcement of its address to the switch.
fn start_interbank(state: &AppState) -> anyhow::Result<Option<InterbankRunning>> {
    let Some(interbank) = state.interbank.clone() else { return Ok(None) };
    let config = &interbank.config;
    let dir = &config.tls_dir;
    let tls = flexibank_consortium::pki::server_config_mtls(
        &dir.join(flexibank_consortium::pki::CA_CERT_FILE),
        &dir.join(flexibank_consortium::pki::bank_cert_file(&config.bank_id)),
        &dir.join(flexibank_consortium::pki::bank_key_file(&config.bank_id)),
    )?;
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding interbank.listen {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let limits = &state.config.server.limits;
    let tls = axum_server::tls_rustls::RustlsAcceptor::new(RustlsConfig::from_config(tls)).handshake_timeout(Duration::from_millis(limits.tls_handshake_timeout_ms));
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp(listener).acceptor(flexibank_consortium::peer::PeerAcceptor::new(tls, limits.max_connections)).handle(handle.clone());
    let app = http::switch_facing_router(state.clone());
    let serve = tokio::spawn(async move {
        if let Err(e) = server.serve(app.into_make_service()).await {
            tracing::error!(error = %e, "the switch-only listener stopped");
        }
    });
    let announce = tokio::spawn(interbank::announce_endpoint(interbank.clone(), addr));
    let resolver = tokio::spawn(interbank::resolver::run(state.clone()));
    tracing::info!(%addr, bank_id = %config.bank_id, "serving the switch-only listener (mutual TLS)");
    Ok(Some((addr, vec![serve, announce, resolver], handle)))
}

async fn maintenance(state: AppState) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    loop {
        tick.tick().await;
        let purge = async {
            let client = state.db.writer().await?;
            client
                .batch_execute(
                    "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours';
                     DELETE FROM mfa_challenges WHERE expires_at < now() - interval '1 hour';
                     DELETE FROM sessions WHERE expires_at < now() - interval '1 day';
                     DELETE FROM login_throttle_by_source WHERE updated_at < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now());",
                )
                .await
                .map_err(db::db_error)
        };
        if let Err(e) = purge.await {
            tracing::warn!(error = ?e, "maintenance purge failed; will retry");
        }
    }
}
