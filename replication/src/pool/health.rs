//! Health checks: one long-lived superuser connection per node, one query
//! per check, every `health_interval_ms`, each bounded by a timeout.

use std::{
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use tokio::sync::Mutex;
use tokio_postgres::NoTls;

use super::{manage, Inner};
use crate::status::parse_lsn;

#[derive(Debug, Clone, Default)]
pub struct Standby {
    pub name: String,
    pub state: String,
    pub sync_state: String,
    pub flush_lsn: u64,
    pub replay_lsn: u64,
    /// PostgreSQL's own measure (NULL, here 0, once caught up and idle).
    pub replay_lag_s: f64,
}

/// What the last good check of a node said.
#[derive(Debug, Clone, Default)]
pub struct NodeHealth {
    pub last_ok: Option<Instant>,
    pub in_recovery: bool,
    pub timeline: u32,
    /// Primary: the current WAL position. Replica: the replayed position.
    pub lsn: u64,
    pub replay_lsn: u64,
    pub receive_lsn: u64,
    /// Replica: its WAL receiver streams from a primary now.
    pub receiver_streaming: bool,
    /// Replica: seconds since its WAL receiver last heard from the primary.
    pub receiver_silence_s: Option<f64>,
    /// Replica: age of the last replayed transaction.
    pub replay_age_s: Option<f64>,
    /// Primary: its standbys as `pg_stat_replication` shows them.
    pub standbys: Vec<Standby>,
    /// Primary: `synchronous_standby_names`.
    pub sync_names: String,
}

impl NodeHealth {
    /// Replica lag in seconds, for a replica this far behind in bytes.
    /// Prefer the primary's own measure (`standby_lag`, from
    /// `pg_stat_replication.replay_lag`); without it, a replica within a few
    /// kilobytes is current (the two LSNs are read a moment apart), and one
    /// further behind is as old as its last replayed transaction.
    pub fn lag_seconds(&self, lag_bytes: u64, standby_lag: Option<f64>) -> f64 {
        if let Some(seconds) = standby_lag {
            return seconds.max(0.0);
        }
        if lag_bytes <= NEGLIGIBLE_LAG_BYTES {
            0.0
        } else {
            self.replay_age_s.unwrap_or(f64::INFINITY).max(0.0)
        }
    }

    pub fn standby_lag(&self, name: &str) -> Option<f64> {
        self.standbys.iter().find(|s| s.name == name).map(|s| s.replay_lag_s)
    }

    pub fn standby_sync_state(&self, name: &str) -> Option<String> {
        self.standbys.iter().find(|s| s.name == name).map(|s| s.sync_state.clone())
    }
}

/// WAL written between two health checks taken a moment apart.
const NEGLIGIBLE_LAG_BYTES: u64 = 64 * 1024;

const HEALTH_SQL: &str = "
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
       coalesce(pg_last_wal_replay_lsn(), '0/0')::text AS replay_lsn,
       coalesce(pg_last_wal_receive_lsn(), '0/0')::text AS receive_lsn,
       CASE WHEN pg_is_in_recovery()
            -- A replica's timeline: what its receiver streams, else the newest
            -- timeline whose history it holds (it follows that one), else its
            -- last restartpoint's.
            THEN greatest(coalesce((SELECT received_tli FROM pg_stat_wal_receiver WHERE received_tli > 0), 0),
                          (SELECT timeline_id FROM pg_control_checkpoint()),
                          coalesce((SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) FROM pg_ls_waldir()
                                    WHERE name ~ '^[0-9A-F]{8}[.]history$'), 0))
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline,
       coalesce((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false) AS receiver_streaming,
       (SELECT extract(epoch FROM now() - last_msg_receipt_time)::float8 FROM pg_stat_wal_receiver) AS receiver_silence_s,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age_s,
       coalesce((SELECT json_agg(json_build_object(
                   'name', application_name, 'state', state, 'sync_state', sync_state,
                   'flush', coalesce(flush_lsn, '0/0')::text, 'replay', coalesce(replay_lsn, '0/0')::text,
                   'replay_lag', coalesce(extract(epoch FROM replay_lag), 0)))::text
                 FROM pg_stat_replication), '[]') AS standbys,
       current_setting('synchronous_standby_names') AS sync_names";

/// One admin connection per node, reopened after any failure.
pub(crate) struct Checkers {
    connections: Vec<Mutex<Option<tokio_postgres::Client>>>,
}

impl Checkers {
    pub(crate) fn new(inner: &Arc<Inner>) -> Checkers {
        Checkers { connections: inner.nodes.iter().map(|_| Mutex::new(None)).collect() }
    }

    pub(crate) async fn check_all(&self, inner: &Arc<Inner>) {
        let checks = (0..inner.nodes.len()).map(|i| self.check(inner, i));
        futures_join_all(checks).await;
    }

    async fn check(&self, inner: &Arc<Inner>, index: usize) {
        let timeout = Duration::from_millis((inner.config.health_interval_ms * 2).clamp(200, 1_000));
        let mut slot = self.connections[index].lock().await;
        let outcome = tokio::time::timeout(timeout, async {
            if slot.is_none() {
                *slot = Some(admin_connect(inner, index, timeout).await?);
            }
            let client = slot.as_ref().expect("connected above");
            let row = client.query_one(HEALTH_SQL, &[]).await?;
            anyhow::Ok(parse_health(&row))
        })
        .await;
        match outcome {
            Ok(Ok(health)) => *inner.nodes[index].health.write().expect("health lock") = health,
            Ok(Err(e)) => {
                tracing::debug!(node = %inner.nodes[index].address.name, error = %e, "health check failed");
                *slot = None;
            }
            Err(_) => {
                tracing::debug!(node = %inner.nodes[index].address.name, "health check timed out");
                *slot = None;
            }
        }
    }
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futures {
        set.push(f);
    }
    // Poll all checks concurrently: a hung node must not delay the others.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = set.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pinned.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pinned.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

pub(crate) async fn admin_connect(inner: &Inner, index: usize, timeout: Duration) -> anyhow::Result<tokio_postgres::Client> {
    let address = &inner.nodes[index].address;
    let mut pg = tokio_postgres::Config::new();
    pg.host(&address.host)
        .port(address.port)
        .dbname(&inner.config.dbname)
        .user(&inner.config.admin_user)
        .password(&inner.config.admin_password)
        .application_name("flexibank-pool")
        .connect_timeout(timeout);
    let (client, connection) = pg.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn parse_health(row: &tokio_postgres::Row) -> NodeHealth {
    let lsn = |column: &str| row.get::<_, Option<String>>(column).and_then(|t| parse_lsn(&t)).unwrap_or(0);
    let in_recovery: bool = row.get("in_recovery");
    let standbys: Vec<serde_json::Value> = serde_json::from_str(&row.get::<_, String>("standbys")).unwrap_or_default();
    let replay_lsn = lsn("replay_lsn");
    NodeHealth {
        last_ok: Some(Instant::now()),
        in_recovery,
        timeline: row.get::<_, Option<i32>>("timeline").unwrap_or(0) as u32,
        lsn: if in_recovery { replay_lsn } else { lsn("current_lsn") },
        replay_lsn,
        receive_lsn: lsn("receive_lsn"),
        receiver_streaming: row.get("receiver_streaming"),
        receiver_silence_s: row.get("receiver_silence_s"),
        replay_age_s: row.get("replay_age_s"),
        standbys: standbys
            .iter()
            .map(|s| Standby {
                name: s["name"].as_str().unwrap_or_default().to_string(),
                state: s["state"].as_str().unwrap_or_default().to_string(),
                sync_state: s["sync_state"].as_str().unwrap_or_default().to_string(),
                flush_lsn: s["flush"].as_str().and_then(parse_lsn).unwrap_or(0),
                replay_lsn: s["replay"].as_str().and_then(parse_lsn).unwrap_or(0),
                replay_lag_s: s["replay_lag"].as_f64().unwrap_or(0.0),
            })
            .collect(),
        sync_names: row.get("sync_names"),
    }
}

/// The health loop: check, route, manage; until the pool is dropped.
pub(crate) async fn run(inner: Weak<Inner>, checkers: Checkers) {
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let interval = Duration::from_millis(strong.config.health_interval_ms);
        let wake = strong.wake.clone();
        drop(strong);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
        }
        let Some(strong) = inner.upgrade() else { return };
        checkers.check_all(&strong).await;
        strong.update_routing();
        manage::tick(&strong).await;
        strong.publish_metrics();
    }
}
