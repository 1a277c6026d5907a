//! The health-checking failover pool.
//!
//! One deadpool per node and use (SERIALIZABLE writes, READ COMMITTED reads),
//! a health task that asks every node its role, timeline and LSNs every
//! `health_interval_ms`, and routing on top of what it saw:
//! - writes go only to the node that is primary now, and never to a node on
//!   an older timeline than the newest primary seen (`fenced`);
//! - reads go to a replica within the lag bound that has replayed the
//!   caller's last write (read-your-writes), else to the primary;
//! - with `auto_failover`, a primary that is gone for `failover_after_ms`
//!   is replaced only by a standby the quorum proves up to date
//!   (`quorum.rs`), and only by the server that holds the cluster's
//!   promotion lease (`lease.rs`); otherwise promotion is blocked, and says
//!   why;
//! - a node on an older timeline with WAL past the point where the current
//!   primary's history forked off it is `diverged`, with that many bytes;
//! - `sync_mode` decides what happens when no synchronous replica is left.
//!
//! It knows nodes only as libpq host:port pairs and discovers everything
//! else by asking, so it works against clusters it did not create.

mod health;
mod lease;
mod manage;
pub mod quorum;

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::Serialize;
use tokio_postgres::NoTls;

pub use health::NodeHealth;
pub use manage::{PromoteError, Promotion};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Commits wait for a replica, always; writes fail (503) while none is there.
    Strict,
    /// After `degrade_after_ms` without a synchronous replica, go asynchronous
    /// (loudly), and back to synchronous once a replica has caught up.
    Degrade,
}

#[derive(Debug, Clone)]
pub struct NodeAddress {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl NodeAddress {
    /// `host:port` or `name@host:port`.
    pub fn parse(spec: &str) -> anyhow::Result<NodeAddress> {
        let (name, addr) = match spec.split_once('@') {
            Some((name, addr)) => (Some(name), addr),
            None => (None, spec),
        };
        let (host, port) = addr.rsplit_once(':').with_context(|| format!("node {spec:?} is not [name@]host:port"))?;
        let port: u16 = port.parse().with_context(|| format!("bad port in {spec:?}"))?;
        Ok(NodeAddress { name: name.unwrap_or(addr).to_string(), host: host.to_string(), port })
    }
}

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub nodes: Vec<NodeAddress>,
    pub dbname: String,
    pub user: String,
    pub password: String,
    /// A superuser: health details, promotion, `synchronous_standby_names`.
    pub admin_user: String,
    pub admin_password: String,
    pub pool_size: usize,
    pub connect_timeout_ms: u64,
    pub health_interval_ms: u64,
    /// A node whose last good health check is older than this is unreachable.
    pub unreachable_after_ms: u64,
    pub max_replica_lag_ms: u64,
    pub max_replica_lag_bytes: u64,
    pub sync_mode: SyncMode,
    pub degrade_after_ms: u64,
    pub auto_failover: bool,
    pub failover_after_ms: u64,
    /// libpq `options` for write connections (e.g. default isolation).
    pub write_options: String,
    pub read_options: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
    Unreachable,
    /// A primary on an older timeline, with nothing past the fork.
    Fenced,
    /// On an older timeline with WAL past the point where the current
    /// primary's history forked off it: a rewind would discard that WAL.
    Diverged,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Unreachable => "unreachable",
            Role::Fenced => "fenced",
            Role::Diverged => "diverged",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("no writable primary right now")]
    NoPrimary,
    #[error("database connection: {0}")]
    Connection(String),
}

pub(crate) struct Node {
    pub(crate) address: NodeAddress,
    write_pool: Pool,
    read_pool: Pool,
    pub(crate) health: RwLock<NodeHealth>,
}

pub(crate) struct Inner {
    pub(crate) config: PoolConfig,
    pub(crate) nodes: Vec<Node>,
    /// Index of the node writes go to, or usize::MAX.
    primary: AtomicUsize,
    /// The newest timeline any primary was seen on: an older primary is fenced.
    pub(crate) newest_timeline: AtomicU64,
    pub(crate) failovers: AtomicU64,
    pub(crate) degraded: std::sync::atomic::AtomicBool,
    round_robin: AtomicUsize,
    pub(crate) primary_lost_at: std::sync::Mutex<Option<Instant>>,
    pub(crate) sync_lost_at: std::sync::Mutex<Option<Instant>>,
    /// `synchronous_standby_names` to restore after a degraded period.
    pub(crate) saved_sync_names: std::sync::Mutex<Option<String>>,
    pub(crate) promotion: tokio::sync::Mutex<()>,
    /// The newest primary's timeline and, per older timeline, the LSN where
    /// it was left (from the `.history` file).
    pub(crate) history: RwLock<Option<(u64, Vec<(u32, u64)>)>>,
    /// Why automatic promotion is blocked right now.
    failover_block: std::sync::Mutex<Option<BlockReason>>,
    /// The write target's WAL position at each health round, newest last
    /// (a few seconds' worth): how long a replica has been behind.
    primary_lsn_history: std::sync::Mutex<std::collections::VecDeque<(Instant, u64)>>,
    /// Wakes the health loop early (after a promotion or a setting change).
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

const NO_PRIMARY: usize = usize::MAX;
/// Health rounds of primary positions kept for `behind_for` (at 200–500 ms
/// a round, well past any lag bound a read would accept).
const LSN_HISTORY_ROUNDS: usize = 64;

/// A connection plus which node it is on.
pub struct Conn {
    pub client: deadpool_postgres::Object,
    pub node: String,
    pub role: Role,
}

#[derive(Clone)]
pub struct ClusterPool {
    pub(crate) inner: Arc<Inner>,
    health_task: Arc<tokio::task::JoinHandle<()>>,
}

fn build_pool(config: &PoolConfig, node: &NodeAddress, options: &str, size: usize) -> anyhow::Result<Pool> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&node.host)
        .port(node.port)
        .dbname(&config.dbname)
        .user(&config.user)
        .password(&config.password)
        .application_name("flexibank-server")
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .keepalives_idle(Duration::from_secs(5))
        .options(options);
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_millis(config.connect_timeout_ms * 2)))
        .create_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
        .recycle_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("building a connection pool")
}

impl ClusterPool {
    /// Builds the pools and starts health checking; returns after the first
    /// round of checks, so routing knows the roles from the start.
    pub async fn start(config: PoolConfig) -> anyhow::Result<ClusterPool> {
        anyhow::ensure!(!config.nodes.is_empty(), "no database nodes configured");
        let nodes = config
            .nodes
            .iter()
            .map(|address| {
                Ok(Node {
                    address: address.clone(),
                    write_pool: build_pool(&config, address, &config.write_options, config.pool_size)?,
                    read_pool: build_pool(&config, address, &config.read_options, config.pool_size)?,
                    health: RwLock::new(NodeHealth::default()),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let inner = Arc::new(Inner {
            config,
            nodes,
            primary: AtomicUsize::new(NO_PRIMARY),
            newest_timeline: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            degraded: std::sync::atomic::AtomicBool::new(false),
            round_robin: AtomicUsize::new(0),
            primary_lost_at: std::sync::Mutex::new(None),
            sync_lost_at: std::sync::Mutex::new(None),
            saved_sync_names: std::sync::Mutex::new(None),
            promotion: tokio::sync::Mutex::new(()),
            history: RwLock::new(None),
            failover_block: std::sync::Mutex::new(None),
            primary_lsn_history: std::sync::Mutex::new(std::collections::VecDeque::new()),
            wake: Arc::new(tokio::sync::Notify::new()),
        });
        let checkers = health::Checkers::new(&inner);
        checkers.check_all(&inner).await;
        inner.update_routing();
        let health_task = tokio::spawn(health::run(Arc::downgrade(&inner), checkers));
        Ok(ClusterPool { inner, health_task: Arc::new(health_task) })
    }

    /// A SERIALIZABLE connection to the primary.
    pub async fn writer(&self) -> Result<Conn, PoolError> {
        let index = self.inner.primary.load(Ordering::Acquire);
        let node = self.inner.nodes.get(index).ok_or(PoolError::NoPrimary)?;
        let client = node.write_pool.get().await.map_err(|e| PoolError::Connection(e.to_string()))?;
        Ok(Conn { client, node: node.address.name.clone(), role: Role::Primary })
    }

    /// A READ COMMITTED connection to the primary.
    pub async fn primary_reader(&self) -> Result<Conn, PoolError> {
        let index = self.inner.primary.load(Ordering::Acquire);
        let node = self.inner.nodes.get(index).ok_or(PoolError::NoPrimary)?;
        let client = node.read_pool.get().await.map_err(|e| PoolError::Connection(e.to_string()))?;
        Ok(Conn { client, node: node.address.name.clone(), role: Role::Primary })
    }

    /// A READ COMMITTED connection for a read: a caught-up replica that has
    /// replayed `min_lsn` (the caller's last write) if there is one, else the
    /// primary.
    pub async fn reader(&self, min_lsn: Option<u64>) -> Result<Conn, PoolError> {
        let candidates: Vec<usize> = (0..self.inner.nodes.len()).filter(|&i| self.inner.replica_within_lag(i)).collect();
        if !candidates.is_empty() {
            let start = self.inner.round_robin.fetch_add(1, Ordering::Relaxed);
            for offset in 0..candidates.len() {
                let index = candidates[(start + offset) % candidates.len()];
                let node = &self.inner.nodes[index];
                let Ok(client) = node.read_pool.get().await else { continue };
                let known = self.inner.health(index).replay_lsn;
                let replayed = match min_lsn {
                    Some(needed) if known < needed => {
                        // The health check may be up to an interval old: ask
                        // the replica itself (one short round trip, only for
                        // sessions that wrote recently).
                        match client.query_one("SELECT coalesce(pg_last_wal_replay_lsn(), '0/0')::text", &[]).await {
                            Ok(row) => crate::status::parse_lsn(&row.get::<_, String>(0)).unwrap_or(0) >= needed,
                            Err(_) => false,
                        }
                    }
                    _ => true,
                };
                if replayed {
                    return Ok(Conn { client, node: node.address.name.clone(), role: Role::Replica });
                }
            }
        }
        self.primary_reader().await
    }

    /// What the pool sees now, node by node.
    pub fn view(&self) -> ClusterView {
        self.inner.view()
    }

    /// Promotes `node` (a replica) now, as a DBA asked: only if the quorum
    /// proves it up to date, unless `force`.
    pub async fn promote(&self, node: &str, force: bool) -> Result<Promotion, PromoteError> {
        let index = self
            .inner
            .nodes
            .iter()
            .position(|n| n.address.name == node)
            .ok_or_else(|| PromoteError::NotAReplica(format!("no node named {node}")))?;
        manage::promote(&self.inner, index, "dba", force).await
    }

    pub fn failovers(&self) -> u64 {
        self.inner.failovers.load(Ordering::Relaxed)
    }
}

impl Drop for ClusterPool {
    fn drop(&mut self) {
        if Arc::strong_count(&self.health_task) == 1 {
            self.health_task.abort();
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub role: Role,
    pub timeline: Option<u64>,
    pub lsn: Option<String>,
    pub replay_lag_bytes: Option<u64>,
    pub replay_lag_seconds: Option<f64>,
    pub sync_state: Option<String>,
    /// Bytes of WAL past the fork point (role `diverged`).
    pub diverged_bytes: Option<u64>,
}

/// Whether automatic promotion could happen now, and if not, why.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverState {
    /// "ok" or "blocked".
    pub state: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct BlockReason {
    /// A metric label: `standbys_out_of_sight` or `quorum_unknown`.
    pub kind: &'static str,
    pub text: String,
}

const BLOCK_KINDS: [&str; 2] = ["standbys_out_of_sight", "quorum_unknown"];

/// Parses a timeline `.history` file: per line, a parent timeline and the
/// LSN where it was left.
pub fn parse_history(text: &str) -> Vec<(u32, u64)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let tli = fields.next()?.parse().ok()?;
            let lsn = crate::status::parse_lsn(fields.next()?)?;
            Some((tli, lsn))
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// "sync" while commits wait for a replica, "async" when degraded.
    pub sync_mode: String,
    pub configured_sync_mode: SyncMode,
    pub primary: Option<String>,
    pub failovers: u64,
    pub nodes: Vec<NodeView>,
    pub pool: PoolStatus,
    pub failover: FailoverState,
}

pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

impl Inner {
    pub(crate) fn primary_index(&self) -> Option<usize> {
        let index = self.primary.load(Ordering::Acquire);
        (index != NO_PRIMARY).then_some(index)
    }

    pub(crate) fn health(&self, index: usize) -> NodeHealth {
        self.nodes[index].health.read().expect("health lock").clone()
    }

    pub(crate) fn role_of(&self, index: usize) -> Role {
        let h = self.health(index);
        let unreachable_after = Duration::from_millis(self.config.unreachable_after_ms);
        match h.last_ok {
            Some(at) if at.elapsed() <= unreachable_after => {}
            _ => return Role::Unreachable,
        }
        if self.diverged_bytes(&h).is_some() {
            return Role::Diverged;
        }
        if h.in_recovery {
            return Role::Replica;
        }
        if (h.timeline as u64) < self.newest_timeline.load(Ordering::Acquire) {
            return Role::Fenced;
        }
        Role::Primary
    }

    /// WAL a node on an older timeline holds past the point where the
    /// newest primary's history left that timeline; `None` if nothing (or
    /// if the history is not known yet).
    pub(crate) fn diverged_bytes(&self, h: &NodeHealth) -> Option<u64> {
        let newest = self.newest_timeline.load(Ordering::Acquire);
        if h.timeline as u64 >= newest {
            return None;
        }
        let history = self.history.read().expect("history lock");
        let (tli, forks) = history.as_ref()?;
        if *tli != newest {
            return None;
        }
        let (_, left_at) = forks.iter().find(|(parent, _)| *parent == h.timeline)?;
        let end = if h.in_recovery { h.receive_lsn.max(h.replay_lsn) } else { h.lsn };
        end.checked_sub(*left_at).filter(|&bytes| bytes > 0)
    }

    /// Every configured node's name but `index`'s.
    pub(crate) fn other_node_names(&self, index: usize) -> Vec<String> {
        self.nodes.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, n)| n.address.name.clone()).collect()
    }

    /// Records whether automatic promotion is blocked: an error in the log
    /// and a count each time it becomes blocked, a gauge saying why while it is.
    pub(crate) fn set_failover_block(&self, block: Option<BlockReason>) {
        let mut current = self.failover_block.lock().expect("lock");
        match (&*current, &block) {
            (None, Some(new)) => {
                metrics::counter!("flexibank_failover_blocked_total", "reason" => new.kind).increment(1);
                tracing::error!(reason = %new.text, "automatic promotion blocked");
            }
            (Some(old), None) => tracing::warn!(was = %old.text, "automatic promotion no longer blocked"),
            (Some(old), Some(new)) if old.text != new.text => tracing::error!(reason = %new.text, "automatic promotion still blocked"),
            _ => {}
        }
        for kind in BLOCK_KINDS {
            let on = block.as_ref().is_some_and(|b| b.kind == kind);
            metrics::gauge!("flexibank_failover_blocked", "reason" => kind).set(if on { 1.0 } else { 0.0 });
        }
        *current = block;
    }

    /// Picks the write target from the latest health: the reachable primary
    /// on the newest timeline. Connections to anything else are never handed
    /// out for writes.
    pub(crate) fn update_routing(&self) {
        for (i, _) in self.nodes.iter().enumerate() {
            let h = self.health(i);
            if h.last_ok.is_some() && !h.in_recovery {
                self.newest_timeline.fetch_max(h.timeline as u64, Ordering::AcqRel);
            }
        }
        let primaries: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.role_of(i) == Role::Primary).collect();
        let chosen = match primaries.as_slice() {
            [one] => *one,
            // Two primaries on the newest timeline cannot both be right: write to neither.
            _ => NO_PRIMARY,
        };
        let previous = self.primary.swap(chosen, Ordering::AcqRel);
        if previous != chosen {
            let name = |i: usize| self.nodes.get(i).map(|n| n.address.name.clone()).unwrap_or_else(|| "none".into());
            tracing::warn!(from = %name(previous), to = %name(chosen), "write target changed");
            if let Some(old) = self.nodes.get(previous) {
                // Drop idle connections to the old primary; busy ones fail on their own.
                old.write_pool.retain(|_, _| false);
            }
        }
        {
            let mut history = self.primary_lsn_history.lock().expect("lock");
            if previous != chosen {
                history.clear();
            }
            if let Some(primary) = self.nodes.get(chosen) {
                history.push_back((Instant::now(), primary.health.read().expect("health lock").lsn));
                while history.len() > LSN_HISTORY_ROUNDS {
                    history.pop_front();
                }
            }
        }
        let mut lost = self.primary_lost_at.lock().expect("lock");
        match (chosen == NO_PRIMARY, lost.is_some()) {
            (true, false) => *lost = Some(Instant::now()),
            (false, true) => *lost = None,
            _ => {}
        }
    }

    fn replica_within_lag(&self, index: usize) -> bool {
        if self.role_of(index) != Role::Replica {
            return false;
        }
        let h = self.health(index);
        let primary = self.primary_index().map(|p| self.health(p));
        let primary_lsn = primary.as_ref().map(|p| p.lsn).unwrap_or(0);
        let standby_lag = primary.as_ref().and_then(|p| p.standby_lag(&self.nodes[index].address.name));
        let lag_bytes = primary_lsn.saturating_sub(h.replay_lsn);
        let lag_seconds = h.lag_seconds(lag_bytes, standby_lag).max(self.behind_for(h.replay_lsn).as_secs_f64());
        lag_bytes <= self.config.max_replica_lag_bytes && lag_seconds * 1000.0 <= self.config.max_replica_lag_ms as f64
    }

    /// How long a replica that has replayed up to `replay_lsn` has been
    /// behind the primary, at least: since the last health round at which
    /// the primary was no further. PostgreSQL's own `replay_lag` keeps its
    /// last value while replay stands still, so it cannot say this.
    fn behind_for(&self, replay_lsn: u64) -> Duration {
        let history = self.primary_lsn_history.lock().expect("lock");
        match history.back() {
            Some((_, latest)) if *latest > replay_lsn => history
                .iter()
                .rev()
                .find(|(_, lsn)| *lsn <= replay_lsn)
                .or(history.front())
                .map(|(at, _)| at.elapsed())
                .unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    pub(crate) fn publish_metrics(&self) {
        let view = self.view();
        for node in &view.nodes {
            for role in [Role::Primary, Role::Replica, Role::Unreachable, Role::Fenced, Role::Diverged] {
                metrics::gauge!("flexibank_node_role", "node" => node.name.clone(), "role" => role.as_str())
                    .set(if node.role == role { 1.0 } else { 0.0 });
            }
            if let Some(bytes) = node.replay_lag_bytes {
                metrics::gauge!("flexibank_replica_lag_bytes", "node" => node.name.clone()).set(bytes as f64);
            }
            if let Some(seconds) = node.replay_lag_seconds {
                metrics::gauge!("flexibank_replica_lag_seconds", "node" => node.name.clone()).set(seconds);
            }
        }
        metrics::gauge!("flexibank_pool_size").set(view.pool.size as f64);
        metrics::gauge!("flexibank_pool_available").set(view.pool.available as f64);
        metrics::gauge!("flexibank_pool_waiting").set(view.pool.waiting as f64);
        metrics::gauge!("flexibank_failovers").set(view.failovers as f64);
        metrics::gauge!("flexibank_sync_mode_synchronous").set(if view.sync_mode == "sync" { 1.0 } else { 0.0 });
    }

    pub(crate) fn view(&self) -> ClusterView {
        let primary = self.primary_index();
        let primary_health = primary.map(|p| self.health(p));
        let nodes = (0..self.nodes.len())
            .map(|i| {
                let h = self.health(i);
                let role = self.role_of(i);
                let address = &self.nodes[i].address;
                let (lsn, lag_bytes, lag_seconds, sync_state) = match role {
                    Role::Unreachable => (None, None, None, None),
                    Role::Replica => {
                        let lag = primary_health.as_ref().map(|p| p.lsn.saturating_sub(h.replay_lsn));
                        let sync_state = primary_health.as_ref().and_then(|p| p.standby_sync_state(&address.name));
                        let standby_lag = primary_health.as_ref().and_then(|p| p.standby_lag(&address.name));
                        (Some(h.replay_lsn), lag, lag.map(|l| h.lag_seconds(l, standby_lag)), sync_state)
                    }
                    Role::Diverged if h.in_recovery => (Some(h.receive_lsn.max(h.replay_lsn)), None, None, None),
                    _ => (Some(h.lsn), Some(0), Some(0.0), None),
                };
                NodeView {
                    name: address.name.clone(),
                    host: address.host.clone(),
                    port: address.port,
                    role,
                    timeline: (role != Role::Unreachable).then_some(h.timeline as u64),
                    lsn: lsn.map(format_lsn),
                    replay_lag_bytes: lag_bytes,
                    replay_lag_seconds: lag_seconds,
                    sync_state,
                    diverged_bytes: (role == Role::Diverged).then(|| self.diverged_bytes(&h)).flatten(),
                }
            })
            .collect();
        let (size, available, waiting) = match primary {
            Some(p) => {
                let s = self.nodes[p].write_pool.status();
                (s.size, s.available, s.waiting)
            }
            None => (0, 0, 0),
        };
        let sync_names = primary_health.as_ref().map(|p| p.sync_names.clone()).unwrap_or_default();
        ClusterView {
            sync_mode: if sync_names.trim().is_empty() { "async" } else { "sync" }.to_string(),
            configured_sync_mode: self.config.sync_mode,
            primary: primary.map(|p| self.nodes[p].address.name.clone()),
            failovers: self.failovers.load(Ordering::Relaxed),
            nodes,
            pool: PoolStatus { size, available, waiting },
            failover: match &*self.failover_block.lock().expect("lock") {
                Some(block) => FailoverState { state: "blocked".into(), reason: Some(block.text.clone()) },
                None => FailoverState { state: "ok".into(), reason: None },
            },
        }
    }
}
