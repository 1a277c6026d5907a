//! Promotion of a replica and rejoining a former primary (via pg_rewind).

use crate::cluster::{Cluster, CONNECT_TIMEOUT_MS};
use crate::conf;
use crate::pg_bin::PgBin;
use crate::status::{parse_lsn, NodeStatus, ROLE_PRIMARY, ROLE_REPLICA};
use anyhow::{anyhow, bail, Context, Result};

/// Seconds pg_promote() waits for the promotion to finish.
const PROMOTE_WAIT_S: i32 = 60;

impl Cluster {
    /// Promote `node`, or (None) the reachable replica with the highest
    /// replayed LSN. Other reachable replicas are repointed to it. The old
    /// primary is not touched (it may be dead). Returns the promoted name.
    pub async fn promote(&self, node: Option<&str>) -> Result<String> {
        let statuses = self.status().await?;
        let target = match node {
            Some(name) => {
                let s = find(&statuses, name)?;
                if s.role != ROLE_REPLICA {
                    bail!(
                        "cannot promote {name}: it is {}, not a reachable replica",
                        s.role
                    );
                }
                s.name.clone()
            }
            None => statuses
                .iter()
                .filter(|s| s.role == ROLE_REPLICA)
                .max_by_key(|s| s.lsn.as_deref().and_then(parse_lsn).unwrap_or(0))
                .map(|s| s.name.clone())
                .ok_or_else(|| anyhow!("no reachable replica to promote"))?,
        };

        let client = self.connect_admin(&target).await?;
        let promoted: bool = client
            .query_one("SELECT pg_promote(true, $1)", &[&PROMOTE_WAIT_S])
            .await
            .map_err(|e| self.node_error(&target, format!("pg_promote on {target}: {e}")))?
            .get(0);
        if !promoted {
            return Err(self.node_error(
                &target,
                format!("{target} did not finish promotion within {PROMOTE_WAIT_S} s"),
            ));
        }
        // Put the new timeline into the control file: pg_rewind (rejoin)
        // compares control-file timelines and would otherwise see no divergence.
        client
            .batch_execute("CHECKPOINT")
            .await
            .context("CHECKPOINT after promotion")?;

        let new_primary = self.node(&target)?;
        let mut followers = Vec::new();
        for s in statuses
            .iter()
            .filter(|s| s.role == ROLE_REPLICA && s.name != target)
        {
            let repointed = async {
                let c = self.connect_admin(&s.name).await?;
                let ci = self.replication_conninfo(new_primary, &s.name);
                // PG15 re-reads primary_conninfo on reload and restarts the
                // walreceiver; recovery_target_timeline defaults to 'latest'.
                c.batch_execute(&format!(
                    "ALTER SYSTEM SET primary_conninfo = {}",
                    conf::quote_literal(&ci)
                ))
                .await?;
                c.batch_execute("SELECT pg_reload_conf()").await?;
                anyhow::Ok(())
            }
            .await;
            match repointed {
                Ok(()) => followers.push(s.name.clone()),
                Err(e) => {
                    tracing::warn!(node = %s.name, error = %format!("{e:#}"), "could not repoint replica")
                }
            }
        }
        // Only replicas that actually follow become sync candidates; a
        // promoted replica may also carry a stale setting, so this always
        // (re)sets or resets synchronous_standby_names.
        let mut streaming = Vec::new();
        for f in followers {
            match self.wait_streaming(new_primary, &f).await {
                Ok(()) => streaming.push(f),
                Err(e) => {
                    tracing::warn!(node = %f, error = %format!("{e:#}"), "replica does not follow the new primary; run rejoin")
                }
            }
        }
        self.apply_sync_standbys(new_primary, &streaming).await?;
        Ok(target)
    }

    /// Make `node` (typically a failed former primary) a replica of the
    /// current primary: stop it, pg_rewind it, reconfigure, start, and add it
    /// to synchronous_standby_names. A node that has diverged (WAL past the
    /// fork, which the rewind discards) is refused unless `discard_diverged`;
    /// then a copy of its data directory is kept first and the transfers that
    /// disappear are listed (returned, and written beside the copy).
    pub async fn rejoin(&self, node: &str, discard_diverged: bool) -> Result<Option<crate::Discarded>> {
        let target = self.node(node)?.clone();
        let statuses = self.status().await?;
        let primaries: Vec<&NodeStatus> =
            statuses.iter().filter(|s| s.role == ROLE_PRIMARY).collect();
        let primary = match primaries.as_slice() {
            [p] if p.name == node => bail!("{node} is the current primary; nothing to rejoin"),
            [p] => self.node(&p.name)?.clone(),
            [] => bail!("no reachable primary to rejoin {node} to"),
            many => bail!(
                "several primaries on the same timeline ({}); promote/fence manually first",
                many.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };

        if let Some(s) = statuses.iter().find(|s| s.name == node && s.role == crate::status::ROLE_DIVERGED) {
            if !discard_diverged {
                bail!(
                    "{node} has diverged: {} bytes of WAL past the fork exist nowhere else; rejoin refuses to discard them \
                     without --discard-diverged (which keeps a copy of the data directory first)",
                    s.diverged_bytes.unwrap_or(0)
                );
            }
        }
        self.stop_node(node).await?;
        crate::process::clear_stale_pid_file(&target.data_dir)
            .map_err(|e| self.node_error(node, e))?;
        let pg = PgBin::discover()?;
        let seen_online = statuses
            .iter()
            .find(|s| s.name == node && s.role == crate::status::ROLE_DIVERGED)
            .and_then(|s| Some((s.timeline?, s.diverged_bytes?)));
        let discarded = self.check_divergence(&pg, &target, &primary.name, discard_diverged, seen_online).await?;
        // pg_rewind (PG13+) runs crash recovery itself when the target was
        // killed rather than shut down cleanly.
        let source = format!(
            "host={} port={} user={} dbname=postgres connect_timeout={}",
            primary.host,
            primary.port,
            self.config.superuser,
            CONNECT_TIMEOUT_MS / 1000
        );
        let mut cmd = pg.command("pg_rewind", &self.dir);
        cmd.arg(format!("--target-pgdata={}", target.data_dir.display()))
            .arg(format!("--source-server={source}"))
            .env("PGPASSWORD", &self.config.superuser_password);
        pg.run(cmd, &format!("pg_rewind of {node} from {}", primary.name))
            .await
            .map_err(|e| self.node_error(node, e))?;

        // pg_rewind copied the source's config files, auto.conf included.
        self.write_node_auto_conf(&pg, &target, Some(&primary))?;
        self.pg_ctl_start(&pg, &target).await?;
        self.wait_streaming(&primary, node).await?;

        let candidates = self.streaming_standbys(&primary.name).await?;
        self.apply_sync_standbys(&primary, &candidates).await?;
        Ok(discarded)
    }

    /// Names of configured nodes currently streaming from `primary`.
    async fn streaming_standbys(&self, primary: &str) -> Result<Vec<String>> {
        let client = self.connect_admin(primary).await?;
        let rows = client
            .query(
                "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
                &[],
            )
            .await?;
        let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(self
            .config
            .nodes
            .iter()
            .filter(|n| names.contains(&n.name))
            .map(|n| n.name.clone())
            .collect())
    }
}

fn find<'a>(statuses: &'a [NodeStatus], name: &str) -> Result<&'a NodeStatus> {
    statuses
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| anyhow!("no node named {name:?}"))
}
