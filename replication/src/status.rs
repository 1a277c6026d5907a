//! `Cluster::status`: role, timeline, LSN and replication lag of each node.

use crate::cluster::{Cluster, NodeConfig};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct NodeStatus {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub data_dir: std::path::PathBuf,
    pub pid: Option<i32>,
    /// "primary" | "replica" | "unreachable" | "fenced" | "diverged"
    pub role: String,
    pub timeline: Option<u32>,
    pub lsn: Option<String>,
    pub replay_lag_bytes: Option<i64>,
    pub replay_lag_seconds: Option<f64>,
    pub sync_state: Option<String>,
    /// Bytes of WAL past the point where the primary's history left this
    /// node's timeline (role "diverged"): `rejoin` would discard them.
    #[serde(default)]
    pub diverged_bytes: Option<u64>,
    /// Where this node's WAL ends (replicas: received or replayed).
    #[serde(skip)]
    end_lsn: u64,
}

pub const ROLE_PRIMARY: &str = "primary";
pub const ROLE_REPLICA: &str = "replica";
pub const ROLE_UNREACHABLE: &str = "unreachable";
pub const ROLE_FENCED: &str = "fenced";
pub const ROLE_DIVERGED: &str = "diverged";

/// One row of the primary's pg_stat_replication.
struct ReplicationRow {
    application_name: String,
    lag_bytes: Option<i64>,
    lag_seconds: f64,
    sync_state: Option<String>,
}

/// Parse an LSN like "0/3000148" into a comparable number.
pub fn parse_lsn(lsn: &str) -> Option<u64> {
    let (hi, lo) = lsn.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

impl Cluster {
    pub async fn status(&self) -> Result<Vec<NodeStatus>> {
        let mut nodes = Vec::new();
        for n in &self.config.nodes {
            nodes.push(self.probe_node(n).await);
        }

        // Split brain (a killed primary restarted without rejoin): the real
        // primary is the one on the highest timeline; the others are fenced.
        let max_primary_tli = nodes
            .iter()
            .filter(|s| s.role == ROLE_PRIMARY)
            .filter_map(|s| s.timeline)
            .max();
        for s in nodes.iter_mut().filter(|s| s.role == ROLE_PRIMARY) {
            if s.timeline.unwrap_or(0) < max_primary_tli.unwrap_or(0) {
                s.role = ROLE_FENCED.into();
            }
        }

        let Some(primary) = nodes
            .iter()
            .find(|s| s.role == ROLE_PRIMARY)
            .map(|s| s.name.clone())
        else {
            return Ok(nodes);
        };
        match self.history(&primary).await {
            Ok(history) => {
                for s in nodes.iter_mut().filter(|s| s.role == ROLE_FENCED || s.role == ROLE_REPLICA) {
                    if let Some(bytes) = history.diverged_bytes(s.timeline.unwrap_or(0), s.end_lsn) {
                        s.role = ROLE_DIVERGED.into();
                        s.diverged_bytes = Some(bytes);
                    }
                }
            }
            Err(e) => tracing::warn!(node = %primary, error = %format!("{e:#}"), "reading the timeline history failed"),
        }
        let rows = match self.replication_rows(&primary).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(node = %primary, error = %format!("{e:#}"), "reading pg_stat_replication failed");
                Vec::new()
            }
        };
        for s in nodes.iter_mut().filter(|s| s.role == ROLE_REPLICA) {
            if let Some(r) = rows.iter().find(|r| r.application_name == s.name) {
                s.replay_lag_bytes = r.lag_bytes;
                s.replay_lag_seconds = Some(r.lag_seconds);
                s.sync_state = r.sync_state.clone();
            }
        }
        Ok(nodes)
    }

    /// Connect to one node and read its role, timeline and LSN; any failure
    /// makes it "unreachable".
    async fn probe_node(&self, n: &NodeConfig) -> NodeStatus {
        let mut s = NodeStatus {
            name: n.name.clone(),
            host: n.host.clone(),
            port: n.port,
            data_dir: n.data_dir.clone(),
            pid: self.postmaster_pid(&n.name),
            role: ROLE_UNREACHABLE.into(),
            timeline: None,
            lsn: None,
            replay_lag_bytes: None,
            replay_lag_seconds: None,
            sync_state: None,
            diverged_bytes: None,
            end_lsn: 0,
        };
        let probed = async {
            let client = self.connect_superuser(&n.name).await?;
            query_role(&client).await
        }
        .await;
        match probed {
            Ok((role, timeline, lsn, end_lsn)) => {
                s.role = role.into();
                s.timeline = timeline;
                s.lsn = lsn;
                s.end_lsn = end_lsn;
            }
            Err(e) => {
                tracing::debug!(node = %n.name, error = %format!("{e:#}"), "node unreachable")
            }
        }
        s
    }

    async fn replication_rows(&self, primary: &str) -> Result<Vec<ReplicationRow>> {
        let client = self.connect_superuser(primary).await?;
        let rows = client
            .query(
                "SELECT application_name, \
                        pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, \
                        COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float8, \
                        sync_state \
                 FROM pg_stat_replication",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ReplicationRow {
                application_name: r.get(0),
                lag_bytes: r.get(1),
                lag_seconds: r.get(2),
                sync_state: r.get(3),
            })
            .collect())
    }
}

/// (role, timeline, lsn, where its WAL ends) of the connected node.
async fn query_role(client: &Client) -> Result<(&'static str, Option<u32>, Option<String>, u64)> {
    let in_recovery: bool = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await?
        .get(0);
    if !in_recovery {
        // pg_control_checkpoint() still shows the old timeline until the
        // first checkpoint after promotion; the current WAL file name doesn't.
        let row = client
            .query_one(
                "SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn())",
                &[],
            )
            .await?;
        let walfile: String = row.get(1);
        let tli = walfile
            .get(..8)
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        let lsn: String = row.get(0);
        let end = parse_lsn(&lsn).unwrap_or(0);
        return Ok((ROLE_PRIMARY, tli, Some(lsn), end));
    }
    // A replica's timeline: what its receiver streams, else the newest
    // timeline whose history it holds (it follows that one), else its last
    // restartpoint's (as the pool reads it).
    let row = client
        .query_one(
            "SELECT pg_last_wal_replay_lsn()::text, \
                    greatest(coalesce((SELECT received_tli FROM pg_stat_wal_receiver WHERE received_tli > 0), 0), \
                             (pg_control_checkpoint()).timeline_id, \
                             coalesce((SELECT max(('x' || substr(name, 1, 8))::bit(32)::int) FROM pg_ls_waldir() \
                                       WHERE name ~ '^[0-9A-F]{8}[.]history$'), 0)), \
                    greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), coalesce(pg_last_wal_replay_lsn(), '0/0'))::text",
            &[],
        )
        .await?;
    let tli: Option<i32> = row.get(1);
    let end = parse_lsn(&row.get::<_, String>(2)).unwrap_or(0);
    Ok((ROLE_REPLICA, tli.map(|t| t as u32), row.get(0), end))
}

#[cfg(test)]
mod tests {
    #[test]
    fn lsn_order() {
        let a = super::parse_lsn("0/3000148").unwrap();
        let b = super::parse_lsn("1/0").unwrap();
        assert!(a < b);
        assert_eq!(super::parse_lsn("bogus"), None);
    }
}
