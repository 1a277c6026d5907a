//! The reference: pgbench's built-in TPC-B-like script on the same primary,
//! with the same replication settings.

use std::time::Duration;

use anyhow::Context;

use super::{report::PgbenchResult, stack::BenchStack};

pub const SCALE: u32 = 10;

pub async fn run(stack: &BenchStack, clients: usize, duration: Duration) -> anyhow::Result<PgbenchResult> {
    let db = stack.superuser("primary").await?;
    db.batch_execute("CREATE DATABASE pgbench").await?;
    let bin = flexibank_replication::pg_bin::PgBin::discover()?.bindir.join("pgbench");
    let node = stack.cluster.0.node("primary")?.clone();
    let password = stack.cluster.0.config.superuser_password.clone();
    let common = |cmd: &mut tokio::process::Command| {
        cmd.env("PGPASSWORD", &password)
            .args(["-h", &node.host, "-p", &node.port.to_string(), "-U", &stack.cluster.0.config.superuser]);
    };
    let mut init = tokio::process::Command::new(&bin);
    common(&mut init);
    let out = init.args(["-i", "-q", "-s", &SCALE.to_string(), "pgbench"]).output().await.context("pgbench -i")?;
    anyhow::ensure!(out.status.success(), "pgbench -i failed: {}", String::from_utf8_lossy(&out.stderr));
    // As every shape starts: its tables vacuumed (pgbench -i did), a checkpoint, the WAL segments ready for reuse.
    stack.settle().await?;
    let (_, postgres_cpu_before) = stack.cpu_seconds();
    let wal_before = stack.wal_written().await?;
    let mut bench = tokio::process::Command::new(&bin);
    common(&mut bench);
    let out = bench
        .args(["-M", "prepared", "-b", "tpcb-like", "-c", &clients.to_string(), "-j", "2", "-T", &duration.as_secs().to_string(), "pgbench"])
        .output()
        .await
        .context("pgbench")?;
    let (_, postgres_cpu_after) = stack.cpu_seconds();
    let wal_after = stack.wal_written().await?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(out.status.success(), "pgbench failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    let number_after = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split('=').nth(1)?.split_whitespace().next()?.parse::<f64>().ok())
    };
    // "number of transactions actually processed: 80858" (or "80858/80858").
    let transactions = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("number of transactions actually processed:"))
        .and_then(|rest| rest.trim().split('/').next()?.parse::<f64>().ok())
        .filter(|n| *n > 0.0);
    let transactions = transactions.with_context(|| format!("no transaction count in pgbench output:\n{text}"))?;
    Ok(PgbenchResult {
        postgres_cpu_us_per_tx: (postgres_cpu_after - postgres_cpu_before) * 1e6 / transactions,
        wal_bytes_per_tx: Some((wal_after.0 - wal_before.0) / transactions),
        wal_fpi_per_tx: Some((wal_after.1 - wal_before.1) / transactions),
        clients,
        duration_s: duration.as_secs(),
        scale: SCALE,
        tps: number_after("tps").with_context(|| format!("no tps in pgbench output:\n{text}"))?,
        latency_avg_ms: number_after("latency average"),
    })
}
