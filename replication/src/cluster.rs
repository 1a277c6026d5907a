//! The cluster: its persisted configuration and per-node operations.
//!
//! Creation is in `init.rs`, up/down in `lifecycle.rs`, status in
//! `status.rs`, promotion and rejoin in `failover.rs`.

use crate::conf;
use crate::pg_bin::PgBin;
use crate::process;
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// Seconds `pg_ctl start -w` waits for a node to accept connections.
const PG_CTL_START_TIMEOUT_S: u32 = 60;
/// Client connect timeout (also put into conninfo strings).
pub(crate) const CONNECT_TIMEOUT_MS: u64 = 2_000;
/// How long a (re)started replica may take to appear as streaming.
pub(crate) const STREAMING_TIMEOUT_MS: u64 = 30_000;
/// How long walsenders may take to report the new sync_state after a reload.
const SYNC_STATE_TIMEOUT_MS: u64 = 10_000;
/// Poll interval for all "wait until" loops.
pub(crate) const POLL_MS: u64 = 100;
/// Lines of a node's log quoted in error messages.
const LOG_TAIL_LINES: usize = 20;

pub(crate) const LOCALHOST: &str = "127.0.0.1";

/// Options for [`Cluster::init`].
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Cluster root; created; holds cluster.json, one data dir per node, logs.
    pub dir: PathBuf,
    pub replicas: usize,
    /// `Some(p)`: ports p, p+1, ...; `None`: pick free ports.
    pub base_port: Option<u16>,
    /// Make the replicas synchronous (set once they stream).
    pub sync: bool,
    /// Extra postgresql.conf settings, values in conf syntax (e.g. `'32MB'`).
    pub extra_conf: Vec<(String, String)>,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            dir: PathBuf::from("var/pg"),
            replicas: 1,
            base_port: None,
            sync: true,
            extra_conf: Vec::new(),
        }
    }
}

/// Persisted as `<dir>/cluster.json` (mode 0600: it holds passwords).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ClusterConfig {
    pub superuser: String,
    pub superuser_password: String,
    pub replication_user: String,
    pub replication_password: String,
    pub app_user: String,
    pub app_password: String,
    pub database: String,
    pub sync: bool,
    pub nodes: Vec<NodeConfig>,
}

/// One node. Names are fixed ("primary", "replica1", ...), not roles: after a
/// failover "replica1" may be the primary.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
}

/// A local primary + streaming replicas, driven through the PG binaries.
pub struct Cluster {
    pub dir: PathBuf,
    pub config: ClusterConfig,
}

impl Cluster {
    /// Read `<dir>/cluster.json`.
    pub fn load(dir: &Path) -> Result<Cluster> {
        // Resolve a linked cluster dir (see init): PostgreSQL's user may not
        // be able to traverse the link's path, only the real one.
        let dir = std::fs::canonicalize(dir).or_else(|_| std::path::absolute(dir))?;
        let path = dir.join("cluster.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (is the cluster initialised?)", path.display()))?;
        let config =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Cluster { dir, config })
    }

    pub(crate) fn save_config(&self, pg: &PgBin) -> Result<()> {
        let path = self.dir.join("cluster.json");
        conf::write_file(&path, &serde_json::to_string_pretty(&self.config)?, 0o600)?;
        pg.chown_file(&path)
    }

    /// The node's postmaster pid, only if that process is alive.
    pub fn postmaster_pid(&self, node: &str) -> Option<i32> {
        let n = self.node(node).ok()?;
        process::read_pid_file(&n.data_dir).filter(|&pid| process::is_alive(pid))
    }

    /// The libpq password file for the superuser on every node, so that a
    /// DBA can run `PGPASSFILE=<dir>/.pgpass psql -h <host> -p <port> -U
    /// <superuser> <database>` without digging the password out of
    /// cluster.json. Mode 0600.
    pub fn pgpass_path(&self) -> PathBuf {
        self.dir.join(".pgpass")
    }

    /// (Re)writes `pgpass_path()`: one line per node, any database.
    pub fn write_pgpass(&self) -> Result<PathBuf> {
        // In .pgpass, ':' and '\\' in a field are escaped with a backslash.
        let escape = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
        let lines: String = self
            .config
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{}:{}:*:{}:{}\n",
                    escape(&n.host),
                    n.port,
                    escape(&self.config.superuser),
                    escape(&self.config.superuser_password)
                )
            })
            .collect();
        let path = self.pgpass_path();
        conf::write_file(&path, &lines, 0o600)?;
        Ok(path)
    }

    pub fn node(&self, name: &str) -> Result<&NodeConfig> {
        self.config
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| anyhow!("no node named {name:?} in {}", self.dir.display()))
    }

    /// libpq key=value string for the superuser on `node`, database flexibank.
    pub fn superuser_conninfo(&self, node: &str) -> String {
        let c = &self.config;
        self.conninfo(node, &c.superuser, &c.superuser_password, &c.database)
    }

    pub(crate) fn conninfo(&self, node: &str, user: &str, password: &str, dbname: &str) -> String {
        let (host, port) = match self.node(node) {
            Ok(n) => (n.host.clone(), n.port),
            // Unknown node: still return a string; connecting will fail clearly.
            Err(_) => (LOCALHOST.to_string(), 0),
        };
        format!(
            "host={host} port={port} user={user} password={} dbname={dbname} connect_timeout={}",
            conf::quote_conninfo(password),
            CONNECT_TIMEOUT_MS / 1000
        )
    }

    /// Connect as the superuser to database flexibank on `node`.
    pub async fn connect_superuser(&self, node: &str) -> Result<Client> {
        let c = &self.config;
        self.connect_as(node, &c.superuser, &c.superuser_password, &c.database)
            .await
    }

    /// Superuser connection to the `postgres` database (exists on every node
    /// from the start; used for administration).
    pub(crate) async fn connect_admin(&self, node: &str) -> Result<Client> {
        let c = &self.config;
        self.connect_as(node, &c.superuser, &c.superuser_password, "postgres")
            .await
    }

    pub(crate) async fn connect_as(
        &self,
        node: &str,
        user: &str,
        password: &str,
        dbname: &str,
    ) -> Result<Client> {
        let n = self.node(node)?;
        let ci = self.conninfo(node, user, password, dbname);
        // Belt and braces: connect_timeout covers TCP, this covers auth too.
        let fut = tokio_postgres::connect(&ci, NoTls);
        let (client, conn) = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), fut)
            .await
            .map_err(|_| anyhow!("connecting to {node} ({}:{}) timed out", n.host, n.port))?
            .with_context(|| format!("connecting to {node} ({}:{}) as {user}", n.host, n.port))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// `pg_ctl start -w`; no-op if the node is already running.
    pub async fn start_node(&self, node: &str) -> Result<()> {
        if self.postmaster_pid(node).is_some() {
            return Ok(());
        }
        let pg = PgBin::discover()?;
        self.pg_ctl_start(&pg, self.node(node)?).await
    }

    pub(crate) async fn pg_ctl_start(&self, pg: &PgBin, node: &NodeConfig) -> Result<()> {
        process::clear_stale_pid_file(&node.data_dir)
            .map_err(|e| self.node_error(&node.name, e))?;
        let mut cmd = pg.command("pg_ctl", &self.dir);
        cmd.args([
            "start",
            "-w",
            "-t",
            &PG_CTL_START_TIMEOUT_S.to_string(),
            "-D",
        ])
        .arg(&node.data_dir)
        .arg("-l")
        .arg(self.log_path(&node.name));
        pg.run(cmd, &format!("pg_ctl start of {}", node.name))
            .await
            .map(|_| ())
            .map_err(|e| self.node_error(&node.name, e))
    }

    /// A node is a replica iff standby.signal exists in its data dir.
    pub(crate) fn is_standby(&self, node: &NodeConfig) -> bool {
        node.data_dir.join("standby.signal").exists()
    }

    /// Overwrite the node's postgresql.auto.conf with its own settings (the
    /// copy from pg_basebackup/pg_rewind carries the source's port and
    /// synchronous_standby_names). With `primary`, also make it a standby.
    pub(crate) fn write_node_auto_conf(
        &self,
        pg: &PgBin,
        node: &NodeConfig,
        primary: Option<&NodeConfig>,
    ) -> Result<()> {
        let ci = primary.map(|p| self.replication_conninfo(p, &node.name));
        let path = node.data_dir.join("postgresql.auto.conf");
        conf::write_file(&path, &conf::auto_conf(node.port, ci.as_deref()), 0o600)?;
        pg.chown_file(&path)?;
        let signal = node.data_dir.join("standby.signal");
        if primary.is_some() {
            conf::write_file(&signal, "", 0o600)?;
            pg.chown_file(&signal)?;
        } else if signal.exists() {
            std::fs::remove_file(&signal)?;
        }
        Ok(())
    }

    /// primary_conninfo for a replica named `app_name` following `primary`.
    pub(crate) fn replication_conninfo(&self, primary: &NodeConfig, app_name: &str) -> String {
        format!(
            "host={} port={} user={} password={} application_name={app_name}",
            primary.host,
            primary.port,
            self.config.replication_user,
            conf::quote_conninfo(&self.config.replication_password)
        )
    }

    /// Wait until `primary`'s pg_stat_replication shows `replica` streaming.
    pub(crate) async fn wait_streaming(&self, primary: &NodeConfig, replica: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_millis(STREAMING_TIMEOUT_MS);
        loop {
            let last_err: String;
            match self.connect_admin(&primary.name).await {
                Ok(client) => match client
                    .query_opt(
                        "SELECT state FROM pg_stat_replication WHERE application_name = $1",
                        &[&replica],
                    )
                    .await
                {
                    Ok(Some(row))
                        if row.get::<_, Option<String>>(0).as_deref() == Some("streaming") =>
                    {
                        return Ok(())
                    }
                    Ok(Some(row)) => {
                        last_err = format!("state {:?}", row.get::<_, Option<String>>(0))
                    }
                    Ok(None) => last_err = "not in pg_stat_replication".into(),
                    Err(e) => last_err = e.to_string(),
                },
                Err(e) => last_err = format!("{e:#}"),
            }
            if Instant::now() >= deadline {
                return Err(self.node_error(
                    replica,
                    format!(
                        "{replica} not streaming from {} after {STREAMING_TIMEOUT_MS} ms ({last_err})",
                        primary.name
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    /// Set synchronous_standby_names on `primary` (or reset it when async or
    /// no candidate streams), reload, and wait until streaming candidates
    /// report a synchronous state. The setting names every other node of the
    /// cluster, streaming or not, so that the failover pool always knows how
    /// many standbys a commit may be on; a count or method (`ANY 2`, `FIRST`)
    /// an operator set is kept.
    pub(crate) async fn apply_sync_standbys(
        &self,
        primary: &NodeConfig,
        candidates: &[String],
    ) -> Result<()> {
        let client = self.connect_admin(&primary.name).await?;
        let want_sync = self.config.sync && !candidates.is_empty();
        let sql = if want_sync {
            let others: Vec<String> =
                self.config.nodes.iter().filter(|n| n.name != primary.name).map(|n| n.name.clone()).collect();
            let current: String = client.query_one("SELECT current_setting('synchronous_standby_names')", &[]).await?.get(0);
            let names = match crate::pool::quorum::SyncRule::parse(&current) {
                Ok(rule @ crate::pool::quorum::SyncRule::Standbys { k, quorum, .. }) if k > 1 || !quorum => rule.render_for(&others),
                _ => conf::sync_standby_names(&others),
            };
            format!("ALTER SYSTEM SET synchronous_standby_names = {}", conf::quote_literal(&names))
        } else {
            "ALTER SYSTEM RESET synchronous_standby_names".to_string()
        };
        client
            .batch_execute(&sql)
            .await
            .with_context(|| format!("{sql} on {}", primary.name))?;
        client.batch_execute("SELECT pg_reload_conf()").await?;
        if !want_sync {
            return Ok(());
        }
        // Walsenders pick up the new setting asynchronously after SIGHUP.
        let deadline = Instant::now() + Duration::from_millis(SYNC_STATE_TIMEOUT_MS);
        loop {
            let pending: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_replication \
                     WHERE application_name = ANY($1) AND state = 'streaming' AND sync_state = 'async'",
                    &[&candidates],
                )
                .await?
                .get(0);
            if pending == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.node_error(
                    &primary.name,
                    format!("standbys still async {SYNC_STATE_TIMEOUT_MS} ms after setting synchronous_standby_names"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    pub fn log_path(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.log"))
    }

    /// An error naming the node and its log file, quoting the log's tail.
    pub(crate) fn node_error(&self, node: &str, msg: impl Display) -> anyhow::Error {
        let log = self.log_path(node);
        let tail = std::fs::read_to_string(&log)
            .map(|t| {
                let lines: Vec<&str> = t.lines().collect();
                lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
            })
            .unwrap_or_else(|e| format!("(cannot read log: {e})"));
        anyhow!(
            "{msg:#}\n--- node {node}, last lines of {} ---\n{tail}",
            log.display()
        )
    }
}
