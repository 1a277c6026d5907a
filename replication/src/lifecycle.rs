//! Starting and stopping the whole cluster: `up`, `down`, and the
//! synchronous emergency stops used by Drop guards.

use crate::cluster::{Cluster, NodeConfig};
use crate::pg_bin::PgBin;
use crate::process;
use anyhow::{anyhow, bail, Result};
use std::time::{Duration, Instant};

/// Fast shutdown grace period before escalating to SIGQUIT.
const FAST_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;
/// Grace period after SIGQUIT (immediate shutdown) before SIGKILL / giving up.
const IMMEDIATE_SHUTDOWN_TIMEOUT_MS: u64 = 5_000;

impl Cluster {
    /// Start nodes that are not running (primary first), wait until replicas
    /// stream, then re-apply synchronous_standby_names on the primary.
    pub async fn up(&self) -> Result<()> {
        let pg = PgBin::discover()?;
        let primary = self.choose_primary_to_start(&pg).await?;
        if self.postmaster_pid(&primary.name).is_none() {
            self.pg_ctl_start(&pg, primary).await?;
        }
        let replicas: Vec<&NodeConfig> = self
            .config
            .nodes
            .iter()
            .filter(|n| self.is_standby(n))
            .collect();
        for r in &replicas {
            if self.postmaster_pid(&r.name).is_none() {
                self.pg_ctl_start(&pg, r).await?;
            }
        }
        for r in &replicas {
            self.wait_streaming(primary, &r.name).await?;
        }
        let names: Vec<String> = replicas.iter().map(|r| r.name.clone()).collect();
        self.apply_sync_standbys(primary, &names).await
    }

    /// The node `up` starts as primary: the one without standby.signal. After
    /// a failover without rejoin there can be several; then prefer a running
    /// one, else the highest timeline, and leave the stale ones stopped.
    async fn choose_primary_to_start(&self, pg: &PgBin) -> Result<&NodeConfig> {
        let candidates: Vec<&NodeConfig> = self
            .config
            .nodes
            .iter()
            .filter(|n| !self.is_standby(n))
            .collect();
        let chosen = match candidates.as_slice() {
            [] => {
                bail!("no node is configured as primary (all have standby.signal); run `promote`")
            }
            [one] => *one,
            many => match many.iter().find(|n| self.postmaster_pid(&n.name).is_some()) {
                Some(running) => *running,
                None => {
                    let mut best = (many[0], 0u32);
                    for n in many {
                        let tli = self.control_timeline(pg, n).await.unwrap_or(0);
                        if tli > best.1 {
                            best = (*n, tli);
                        }
                    }
                    best.0
                }
            },
        };
        for n in candidates.iter().filter(|n| n.name != chosen.name) {
            tracing::warn!(node = %n.name, primary = %chosen.name,
                "former primary left stopped; run `flexibank-cluster rejoin --node {}`", n.name);
        }
        Ok(chosen)
    }

    /// "Latest checkpoint's TimeLineID" from pg_controldata.
    pub(crate) async fn control_timeline(&self, pg: &PgBin, node: &NodeConfig) -> Result<u32> {
        self.control_value(pg, node, "Latest checkpoint's TimeLineID:")
            .await?
            .parse()
            .map_err(|_| anyhow!("no timeline in pg_controldata output for {}", node.name))
    }

    /// One field of pg_controldata's output, by its label.
    pub(crate) async fn control_value(&self, pg: &PgBin, node: &NodeConfig, label: &str) -> Result<String> {
        let mut cmd = pg.command("pg_controldata", &self.dir);
        cmd.arg(&node.data_dir);
        let out = pg
            .run(cmd, &format!("pg_controldata for {}", node.name))
            .await?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| anyhow!("no {label:?} in pg_controldata output for {}", node.name))
    }

    /// Fast shutdown of every node, primary first (its walsenders then hand
    /// the final WAL to the still-running replicas).
    pub async fn down(&self) -> Result<()> {
        let mut order: Vec<&NodeConfig> = self.config.nodes.iter().collect();
        order.sort_by_key(|n| self.is_standby(n)); // false (primary) first
        let mut errors = Vec::new();
        for n in order {
            if let Err(e) = self.stop_node(&n.name).await {
                errors.push(e.to_string());
            }
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(())
    }

    /// SIGINT (fast shutdown), wait, then SIGQUIT (immediate) if needed.
    pub(crate) async fn stop_node(&self, name: &str) -> Result<()> {
        let Some(pid) = self.postmaster_pid(name) else {
            return Ok(());
        };
        process::signal(pid, libc::SIGINT);
        if process::wait_exit(pid, FAST_SHUTDOWN_TIMEOUT_MS).await {
            return Ok(());
        }
        tracing::warn!(node = name, pid, "fast shutdown timed out; sending SIGQUIT");
        process::signal(pid, libc::SIGQUIT);
        if process::wait_exit(pid, IMMEDIATE_SHUTDOWN_TIMEOUT_MS).await {
            return Ok(());
        }
        Err(self.node_error(
            name,
            format!("postmaster {pid} did not exit after SIGINT and SIGQUIT"),
        ))
    }

    /// Synchronous emergency stop for Drop guards: SIGQUIT everything, wait
    /// up to 5 s, then SIGKILL. Never panics.
    pub fn kill_all_now(&self) {
        let pids: Vec<i32> = self
            .config
            .nodes
            .iter()
            .filter_map(|n| self.postmaster_pid(&n.name))
            .collect();
        for &pid in &pids {
            process::signal(pid, libc::SIGQUIT);
        }
        let deadline = Instant::now() + Duration::from_millis(IMMEDIATE_SHUTDOWN_TIMEOUT_MS);
        for &pid in &pids {
            let left_ms = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
            if !process::wait_exit_blocking(pid, left_ms) {
                process::signal(pid, libc::SIGKILL);
            }
        }
    }

    /// [`kill_all_now`](Self::kill_all_now), then delete the cluster dir. Never panics.
    pub fn destroy_now(&self) {
        self.kill_all_now();
        // A linked cluster dir (see init's fallback): remove the real one too.
        if self.dir.symlink_metadata().map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            if let Ok(real) = std::fs::canonicalize(&self.dir) {
                let _ = std::fs::remove_dir_all(real);
            }
            let _ = std::fs::remove_file(&self.dir);
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove cluster dir");
            }
        }
    }
}
