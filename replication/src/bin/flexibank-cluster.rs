//! `flexibank-cluster`: manage the local PostgreSQL primary + replicas.

use anyhow::Result;
use clap::{Parser, Subcommand};
use flexibank_replication::{Cluster, InitOptions, NodeStatus};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "flexibank-cluster",
    about = "Local PostgreSQL primary + synchronous streaming replicas"
)]
struct Cli {
    /// Cluster directory (holds cluster.json, data dirs and logs).
    #[arg(long, global = true, default_value = "var/pg")]
    dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create and start a new cluster.
    Init {
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// Ports base-port, base-port+1, ...; default: free ports.
        #[arg(long)]
        base_port: Option<u16>,
        /// Asynchronous replication (no synchronous_standby_names).
        #[arg(long = "async")]
        async_: bool,
    },
    /// Start every node that is not running.
    Up,
    /// Fast shutdown of every node.
    Down,
    /// Show role, timeline, LSN and lag of each node.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Promote a replica (default: the one with the highest replayed LSN).
    Promote {
        #[arg(long)]
        node: Option<String>,
    },
    /// Open psql as the superuser on a node, by its name; arguments after
    /// `--` go to psql (e.g. `-- -Atc "SELECT pg_is_in_recovery()"`).
    Psql {
        #[arg(long)]
        node: String,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Turn a former primary into a replica of the current primary.
    Rejoin {
        #[arg(long)]
        node: String,
        /// Rewind a node that has diverged (WAL past the fork that exists
        /// nowhere else). A copy of its data directory is kept first, and the
        /// transfers that disappear are listed.
        #[arg(long)]
        discard_diverged: bool,
    },
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()).await {
        // First line is the error chain; a node's log tail may follow.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Init {
            replicas,
            base_port,
            async_,
        } => {
            let cluster = Cluster::init(InitOptions {
                dir: cli.dir,
                replicas,
                base_port,
                sync: !async_,
                extra_conf: Vec::new(),
            })
            .await?;
            print_table(&cluster.status().await?);
        }
        Cmd::Up => {
            let cluster = Cluster::load(&cli.dir)?;
            cluster.up().await?;
            print_table(&cluster.status().await?);
        }
        Cmd::Down => Cluster::load(&cli.dir)?.down().await?,
        Cmd::Status { json } => {
            let nodes = Cluster::load(&cli.dir)?.status().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "nodes": nodes }))?
                );
            } else {
                print_table(&nodes);
            }
        }
        Cmd::Promote { node } => {
            let promoted = Cluster::load(&cli.dir)?.promote(node.as_deref()).await?;
            println!("promoted {promoted}");
        }
        Cmd::Psql { node, args } => {
            use std::os::unix::process::CommandExt;
            let cluster = Cluster::load(&cli.dir)?;
            let target = cluster.node(&node)?.clone();
            let pgpass = cluster.write_pgpass()?;
            let psql = flexibank_replication::pg_bin::PgBin::discover()
                .map(|pg| pg.bindir.join("psql"))
                .ok()
                .filter(|p| p.exists())
                .unwrap_or_else(|| "psql".into());
            let error = std::process::Command::new(&psql)
                .env("PGPASSFILE", &pgpass)
                .args(["-h", &target.host, "-p", &target.port.to_string(), "-U", &cluster.config.superuser])
                .arg(&cluster.config.database)
                .args(&args)
                .exec();
            anyhow::bail!("running {}: {error}", psql.display());
        }
        Cmd::Rejoin { node, discard_diverged } => {
            let discarded = Cluster::load(&cli.dir)?.rejoin(&node, discard_diverged).await?;
            if let Some(d) = discarded {
                println!(
                    "discarded {} bytes of {node}'s WAL past {} on timeline {}: {} committed transactions, {} transfers",
                    d.diverged_bytes,
                    d.fork_lsn,
                    d.timeline,
                    d.committed_xids.len(),
                    d.transfers.len()
                );
                for t in &d.transfers {
                    println!("  {t}");
                }
                println!("a copy of {node}'s data directory is kept in {}", d.backup_dir.display());
            }
            println!("{node} rejoined as a replica");
        }
    }
    Ok(())
}

fn print_table(nodes: &[NodeStatus]) {
    let dash = || "-".to_string();
    println!(
        "{:<10} {:<11} {:>5} {:>8} {:>3} {:<12} {:>10} {:>8} {:<8} {:>13}",
        "NODE", "ROLE", "PORT", "PID", "TLI", "LSN", "LAG_BYTES", "LAG_S", "SYNC", "DIVERGED_BYTES"
    );
    for n in nodes {
        println!(
            "{:<10} {:<11} {:>5} {:>8} {:>3} {:<12} {:>10} {:>8} {:<8} {:>13}",
            n.name,
            n.role,
            n.port,
            n.pid.map(|p| p.to_string()).unwrap_or_else(dash),
            n.timeline.map(|t| t.to_string()).unwrap_or_else(dash),
            n.lsn.clone().unwrap_or_else(dash),
            n.replay_lag_bytes
                .map(|b| b.to_string())
                .unwrap_or_else(dash),
            n.replay_lag_seconds
                .map(|s| format!("{s:.3}"))
                .unwrap_or_else(dash),
            n.sync_state.clone().unwrap_or_else(dash),
            n.diverged_bytes.map(|b| b.to_string()).unwrap_or_else(dash),
        );
    }
}
