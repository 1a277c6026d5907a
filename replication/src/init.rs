//! `Cluster::init`: create every node from scratch and start it.

use crate::cluster::{Cluster, ClusterConfig, InitOptions, NodeConfig, LOCALHOST};
use crate::conf;
use crate::pg_bin::PgBin;
use anyhow::{anyhow, bail, Context, Result};
use rand::Rng;
use std::time::Instant;

const SUPERUSER: &str = "flexibank";
const REPLICATION_USER: &str = "replicator";
const APP_USER: &str = "flexibank_app";
const DATABASE: &str = "flexibank";
const PASSWORD_LEN: usize = 32;

fn random_password() -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(PASSWORD_LEN)
        .map(char::from)
        .collect()
}

/// `count` ports: consecutive from `base`, or free ones chosen by the kernel.
fn pick_ports(base: Option<u16>, count: usize) -> Result<Vec<u16>> {
    if let Some(base) = base {
        // Check up front: a taken port otherwise surfaces as a pg_ctl failure.
        return (0..count)
            .map(|i| {
                let port = u16::try_from(base as usize + i)
                    .map_err(|_| anyhow!("port {base}+{i} out of range"))?;
                std::net::TcpListener::bind((LOCALHOST, port))
                    .with_context(|| format!("port {port} on {LOCALHOST} is not free"))?;
                Ok(port)
            })
            .collect();
    }
    // Hold every listener until all are chosen so we never get duplicates.
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind((LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("picking free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Where unprivileged PostgreSQL can reach when the requested directory
/// cannot be (e.g. a checkout under root's 0700 home).
const FALLBACK_ROOT: &str = "/tmp/flexibank-pg";

/// Creates the cluster directory. When the user that runs PostgreSQL cannot
/// traverse its ancestors, the real directory goes under `FALLBACK_ROOT` and
/// the requested path becomes a symlink to it, so callers keep their path.
fn place_cluster_dir(pg: &PgBin, requested: &std::path::Path) -> Result<std::path::PathBuf> {
    let parent = requested.parent().context("cluster dir has no parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    if pg.check_traversable(requested).is_ok() {
        std::fs::create_dir_all(requested).with_context(|| format!("creating {}", requested.display()))?;
        return Ok(requested.to_path_buf());
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    requested.hash(&mut hasher);
    let real = std::path::Path::new(FALLBACK_ROOT).join(format!("{:016x}", hasher.finish()));
    std::fs::create_dir_all(FALLBACK_ROOT)?;
    std::fs::set_permissions(FALLBACK_ROOT, std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
    if real.exists() {
        std::fs::remove_dir_all(&real).with_context(|| format!("removing stale {}", real.display()))?;
    }
    std::fs::create_dir_all(&real)?;
    if requested.symlink_metadata().is_ok() {
        std::fs::remove_file(requested).with_context(|| format!("{} is in the way", requested.display()))?;
    }
    std::os::unix::fs::symlink(&real, requested)
        .with_context(|| format!("linking {} to {}", requested.display(), real.display()))?;
    tracing::info!(requested = %requested.display(), real = %real.display(),
        "cluster dir is not reachable by the PostgreSQL user; using a linked dir");
    pg.check_traversable(&real)?;
    Ok(real)
}

impl Cluster {
    /// Create and start the whole cluster; it is left running.
    pub async fn init(opts: InitOptions) -> Result<Cluster> {
        let requested = std::path::absolute(&opts.dir)?;
        if requested.join("cluster.json").exists() {
            bail!(
                "{} already holds a cluster (cluster.json exists)",
                requested.display()
            );
        }
        // Everything that can fail cheaply comes before creating anything.
        let pg = PgBin::discover()?;
        let ports = pick_ports(opts.base_port, 1 + opts.replicas)?;
        let dir = place_cluster_dir(&pg, &requested)?;

        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, &port)| {
                let name = if i == 0 {
                    "primary".to_string()
                } else {
                    format!("replica{i}")
                };
                NodeConfig {
                    data_dir: dir.join(&name),
                    name,
                    host: LOCALHOST.into(),
                    port,
                }
            })
            .collect();
        let cluster = Cluster {
            dir: dir.clone(),
            config: ClusterConfig {
                superuser: SUPERUSER.into(),
                superuser_password: random_password(),
                replication_user: REPLICATION_USER.into(),
                replication_password: random_password(),
                app_user: APP_USER.into(),
                app_password: random_password(),
                database: DATABASE.into(),
                sync: opts.sync,
                nodes,
            },
        };
        // Written before anything starts so destroy_now() can clean up a
        // half-initialised cluster.
        cluster.save_config(&pg)?;
        cluster.write_pgpass()?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        pg.chown_tree(&dir)?;

        let started = Instant::now();
        if let Err(e) = cluster.init_nodes(&pg, &opts).await {
            // Don't leave orphan postmasters behind; keep the dir for the logs.
            cluster.kill_all_now();
            return Err(e.context(format!(
                "initialising cluster in {} failed (its servers were stopped; remove the directory before retrying)",
                dir.display()
            )));
        }
        tracing::info!(dir = %dir.display(), elapsed_ms = started.elapsed().as_millis() as u64, "cluster initialised");
        Ok(cluster)
    }

    async fn init_nodes(&self, pg: &PgBin, opts: &InitOptions) -> Result<()> {
        let primary = &self.config.nodes[0];
        self.initdb(pg, primary, &opts.extra_conf).await?;
        self.write_node_auto_conf(pg, primary, None)?;
        self.pg_ctl_start(pg, primary).await?;
        self.create_roles_and_database(primary).await?;

        let mut replicas = Vec::new();
        for replica in &self.config.nodes[1..] {
            self.base_backup(pg, primary, replica).await?;
            self.write_node_auto_conf(pg, replica, Some(primary))?;
            self.pg_ctl_start(pg, replica).await?;
            self.wait_streaming(primary, &replica.name).await?;
            replicas.push(replica.name.clone());
        }
        // Only now: with synchronous_standby_names set before a standby
        // streams, every commit on the primary would block.
        self.apply_sync_standbys(primary, &replicas).await
    }

    async fn initdb(
        &self,
        pg: &PgBin,
        node: &NodeConfig,
        extra_conf: &[(String, String)],
    ) -> Result<()> {
        // The superuser password goes through a file, never argv.
        let pwfile = self.dir.join(format!(".pwfile-{}", node.name));
        conf::write_file(
            &pwfile,
            &format!("{}\n", self.config.superuser_password),
            0o600,
        )?;
        pg.chown_file(&pwfile)?;
        let mut cmd = pg.command("initdb", &self.dir);
        cmd.arg("-D")
            .arg(&node.data_dir)
            .args(["-U", &self.config.superuser, "--auth=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--data-checksums", "-E", "UTF8", "--locale=C", "-N"]);
        let result = pg.run(cmd, &format!("initdb for node {}", node.name)).await;
        let _ = std::fs::remove_file(&pwfile);
        result?;

        conf::append_file(
            &node.data_dir.join("postgresql.conf"),
            &conf::base_conf(extra_conf),
        )?;
        let hba = node.data_dir.join("pg_hba.conf");
        conf::write_file(&hba, conf::PG_HBA, 0o600)?;
        pg.chown_file(&hba)
    }

    async fn create_roles_and_database(&self, primary: &NodeConfig) -> Result<()> {
        let c = &self.config;
        let client = self
            .connect_as(
                &primary.name,
                &c.superuser,
                &c.superuser_password,
                "postgres",
            )
            .await?;
        let stmts = [
            format!(
                "CREATE ROLE {} WITH REPLICATION LOGIN PASSWORD {}",
                c.replication_user,
                conf::quote_literal(&c.replication_password)
            ),
            format!(
                "CREATE ROLE {} WITH LOGIN PASSWORD {}",
                c.app_user,
                conf::quote_literal(&c.app_password)
            ),
            // Separate statements: CREATE DATABASE cannot run in a transaction block.
            format!("CREATE DATABASE {} OWNER {}", c.database, c.superuser),
        ];
        for sql in &stmts {
            client.batch_execute(sql).await.with_context(|| {
                // Don't echo passwords into errors.
                format!("creating roles/database on {}", primary.name)
            })?;
        }
        Ok(())
    }

    async fn base_backup(
        &self,
        pg: &PgBin,
        primary: &NodeConfig,
        replica: &NodeConfig,
    ) -> Result<()> {
        let mut cmd = pg.command("pg_basebackup", &self.dir);
        cmd.args(["-h", &primary.host, "-p", &primary.port.to_string()])
            .args(["-U", &self.config.replication_user, "-D"])
            .arg(&replica.data_dir)
            .args(["-X", "stream", "-c", "fast"])
            .env("PGPASSWORD", &self.config.replication_password);
        pg.run(
            cmd,
            &format!("pg_basebackup of {} from {}", replica.name, primary.name),
        )
        .await
        .map(|_| ())
        .map_err(|e| self.node_error(&primary.name, e))
    }
}
