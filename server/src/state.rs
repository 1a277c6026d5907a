//! The one application state every handler shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::{
    auth::{password::{Argon2Params, HashPool}, session::SessionCache, throttle::RateLimiter, totp::SecretBox},
    config::Config,
    contention::{AccountLocks, InflightKeys},
    db::Db,
    group_commit::GroupCommitter,
    interbank::Interbank,
};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub secrets: SecretBox,
    pub argon2: Argon2Params,
    pub hasher: Arc<HashPool>,
    pub login_limiter: Arc<RateLimiter>,
    pub inflight: Arc<InflightKeys>,
    pub account_locks: Arc<AccountLocks>,
    pub groups: Arc<GroupCommitter>,
    pub sessions: Arc<SessionCache>,
    pub metrics: PrometheusHandle,
    /// Membership of a consortium; None when the bank is on its own.
    pub interbank: Option<Arc<Interbank>>,
}

impl AppState {
    pub fn new(config: Config, db: Db, metrics: PrometheusHandle) -> anyhow::Result<AppState> {
        let key: [u8; 32] = hex::decode(&config.security.totp_key_hex)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("security.totp_key_hex must be 32 bytes"))?;
        let argon2 = Argon2Params {
            memory_kib: config.security.argon2_memory_kib,
            iterations: config.security.argon2_iterations,
        };
        argon2::Params::new(argon2.memory_kib, argon2.iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let security = &config.security;
        let hasher = HashPool::new(security.password_hash_threads(), security.password_hash_queue, argon2)?;
        let interbank = config.interbank.as_ref().map(|c| Interbank::new(c, db.clone())).transpose()?.map(Arc::new);
        let account_locks = Arc::new(AccountLocks::default());
        let database = &config.database;
        let groups = GroupCommitter::new(db.clone(), account_locks.clone(), database.group_commit_workers, database.group_commit_max_items)?;
        Ok(AppState {
            hasher: Arc::new(hasher),
            login_limiter: Arc::new(RateLimiter::new(config.security.login_rate_per_minute)),
            config: Arc::new(config),
            db,
            secrets: SecretBox::new(&key),
            argon2,
            inflight: Arc::new(InflightKeys::default()),
            account_locks,
            groups: Arc::new(groups),
            sessions: Arc::new(SessionCache::default()),
            metrics,
            interbank,
        })
    }
}
