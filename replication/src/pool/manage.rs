//! Decisions the pool takes on the cluster: automatic failover, promotion,
//! and `synchronous_standby_names` (sync mode).

use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use anyhow::Context;

use super::{health::admin_connect, Inner, Role, SyncMode};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
const PROMOTE_WAIT_S: i32 = 30;
/// A replica this close to the primary counts as caught up (for leaving degraded mode).
const CAUGHT_UP_BYTES: u64 = 1024 * 1024;
/// The setting the pool gives a primary: any one standby must confirm each commit.
const ANY_ONE_STANDBY: &str = "ANY 1 (*)";

pub(crate) async fn tick(inner: &Arc<Inner>) {
    if let Err(e) = auto_failover(inner).await {
        tracing::error!(error = format!("{e:#}"), "automatic failover failed");
    }
    if let Err(e) = manage_sync(inner).await {
        tracing::warn!(error = format!("{e:#}"), "managing synchronous replication failed");
    }
}

/// The primary we last saw alive on the newest timeline, and how long ago.
fn lost_primary(inner: &Inner) -> Option<(usize, Duration)> {
    let newest = inner.newest_timeline.load(Ordering::Acquire);
    (0..inner.nodes.len())
        .filter_map(|i| {
            let h = inner.health(i);
            (h.last_ok.is_some() && !h.in_recovery && h.timeline as u64 == newest).then(|| (i, h.last_ok.unwrap().elapsed()))
        })
        .min_by_key(|(_, age)| *age)
}

/// Promote only on two witnesses: we cannot reach the primary, and the
/// replica's own WAL receiver has lost it too. Among the replicas that were
/// in sync, the one with the most WAL wins.
async fn auto_failover(inner: &Arc<Inner>) -> anyhow::Result<()> {
    if !inner.config.auto_failover || inner.primary_index().is_some() {
        return Ok(());
    }
    let Some((old_primary, silent_for)) = lost_primary(inner) else { return Ok(()) };
    let failover_after = Duration::from_millis(inner.config.failover_after_ms);
    if silent_for < failover_after {
        return Ok(());
    }
    let old = inner.health(old_primary);
    let candidate = (0..inner.nodes.len())
        .filter(|&i| i != old_primary && inner.role_of(i) == Role::Replica)
        .filter(|&i| {
            let h = inner.health(i);
            let receiver_lost_it = !h.receiver_streaming
                || h.receiver_silence_s.map(|s| s >= failover_after.as_secs_f64()).unwrap_or(true);
            let was_in_sync = old
                .standby_sync_state(&inner.nodes[i].address.name)
                .map(|s| s == "sync" || s == "quorum")
                .unwrap_or(old.standbys.is_empty() && old.sync_names.is_empty());
            receiver_lost_it && was_in_sync
        })
        .max_by_key(|&i| {
            let h = inner.health(i);
            h.receive_lsn.max(h.replay_lsn)
        });
    let Some(candidate) = candidate else {
        tracing::warn!(silent_ms = silent_for.as_millis() as u64, "primary lost, but no replica qualifies for promotion yet");
        return Ok(());
    };
    tracing::warn!(
        old = %inner.nodes[old_primary].address.name,
        new = %inner.nodes[candidate].address.name,
        silent_ms = silent_for.as_millis() as u64,
        "primary lost: promoting"
    );
    promote(inner, candidate, "auto").await
}

fn with_endpoint(conninfo: &str, host: &str, port: u16) -> String {
    let mut parts: Vec<String> = conninfo
        .split_whitespace()
        .filter(|kv| !kv.starts_with("host=") && !kv.starts_with("port=") && !kv.starts_with("hostaddr="))
        .map(str::to_string)
        .collect();
    parts.push(format!("host={host}"));
    parts.push(format!("port={port}"));
    parts.join(" ")
}

/// ALTER SYSTEM + reload. Two separate statements: ALTER SYSTEM refuses to
/// run inside the implicit transaction of a multi-statement query.
async fn alter_system(client: &tokio_postgres::Client, setting: &str, value: &str) -> anyhow::Result<()> {
    client.batch_execute(&format!("ALTER SYSTEM SET {setting} = {}", quote(value))).await?;
    client.batch_execute("SELECT pg_reload_conf()").await?;
    Ok(())
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Promotes replica `index`, gives it a synchronous partner setting, and
/// points every other reachable replica at it.
pub(crate) async fn promote(inner: &Arc<Inner>, index: usize, by: &str) -> anyhow::Result<()> {
    let _one_at_a_time = inner.promotion.lock().await;
    let name = inner.nodes[index].address.name.clone();
    anyhow::ensure!(inner.role_of(index) == Role::Replica, "{name} is not a reachable replica");
    let started = Instant::now();
    let client = admin_connect(inner, index, ADMIN_TIMEOUT).await.with_context(|| format!("connecting to {name}"))?;
    let promoted: bool = client
        .query_one("SELECT pg_promote(true, $1)", &[&PROMOTE_WAIT_S])
        .await
        .with_context(|| format!("promoting {name}"))?
        .get(0);
    anyhow::ensure!(promoted, "{name} did not finish promotion within {PROMOTE_WAIT_S} s");
    inner.failovers.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("flexibank_failovers_total", "by" => by.to_string()).increment(1);
    inner.wake.notify_one();

    // A promoted replica may carry the old primary's synchronous_standby_names.
    let others: Vec<usize> = (0..inner.nodes.len()).filter(|&i| i != index && inner.role_of(i) == Role::Replica).collect();
    let sync_names = match (inner.config.sync_mode, others.is_empty()) {
        (SyncMode::Degrade, true) => "",
        _ => ANY_ONE_STANDBY,
    };
    alter_system(&client, "synchronous_standby_names", sync_names)
        .await
        .context("setting synchronous_standby_names on the new primary")?;

    let target = inner.nodes[index].address.clone();
    for other in others {
        let other_name = inner.nodes[other].address.name.clone();
        let repoint = async {
            let replica = admin_connect(inner, other, ADMIN_TIMEOUT).await?;
            let current: String = replica.query_one("SELECT current_setting('primary_conninfo')", &[]).await?.get(0);
            let conninfo = with_endpoint(&current, &target.host, target.port);
            alter_system(&replica, "primary_conninfo", &conninfo).await?;
            anyhow::Ok(())
        };
        if let Err(e) = repoint.await {
            tracing::error!(replica = %other_name, error = %e, "could not point the replica at the new primary");
        }
    }
    // pg_rewind of the old primary later needs a checkpoint on the new timeline.
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        tracing::warn!(error = %e, "checkpoint after promotion failed");
    }
    tracing::warn!(node = %name, by, elapsed_ms = started.elapsed().as_millis() as u64, "promoted");
    Ok(())
}

async fn set_sync_names(inner: &Inner, primary: usize, names: &str) -> anyhow::Result<()> {
    let client = admin_connect(inner, primary, ADMIN_TIMEOUT).await?;
    // The view reports sync/async from this. Going asynchronous, say so before
    // the first commit can be acknowledged without a replica.
    let publish = || inner.nodes[primary].health.write().expect("health lock").sync_names = names.to_string();
    if names.trim().is_empty() {
        publish();
    }
    alter_system(&client, "synchronous_standby_names", names).await?;
    // The reload reaches backends a moment later: wait until it has, so that
    // the next health check does not read (and report) the old setting.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let seen: String = client.query_one("SELECT current_setting('synchronous_standby_names')", &[]).await?.get(0);
        if seen == names || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    publish();
    inner.wake.notify_one();
    Ok(())
}

/// `degrade`: after `degrade_after_ms` with no synchronous standby, commit
/// asynchronously (loudly); return to synchronous once a standby caught up.
/// `strict` never touches the setting: commits wait.
async fn manage_sync(inner: &Arc<Inner>) -> anyhow::Result<()> {
    if inner.config.sync_mode != SyncMode::Degrade {
        return Ok(());
    }
    let Some(primary) = inner.primary_index() else { return Ok(()) };
    let h = inner.health(primary);
    let has_sync_standby = h
        .standbys
        .iter()
        .any(|s| s.state == "streaming" && (s.sync_state == "sync" || s.sync_state == "quorum"));
    let mut degraded = inner.degraded.load(Ordering::Acquire);
    if !degraded && h.sync_names.trim().is_empty() {
        // Degrade mode wants synchronous commits whenever a replica can give
        // them. An empty setting it did not make this run (this server was
        // restarted while degraded, or a promotion left no replica) is a
        // degraded period too: restore synchronous commits once one caught up.
        inner.degraded.store(true, Ordering::Release);
        degraded = true;
    }
    if !degraded {
        if has_sync_standby {
            *inner.sync_lost_at.lock().expect("lock") = None;
            return Ok(());
        }
        let lost_at = *inner.sync_lost_at.lock().expect("lock").get_or_insert_with(Instant::now);
        if lost_at.elapsed() < Duration::from_millis(inner.config.degrade_after_ms) {
            return Ok(());
        }
        *inner.saved_sync_names.lock().expect("lock") = Some(h.sync_names.clone());
        set_sync_names(inner, primary, "").await?;
        inner.degraded.store(true, Ordering::Release);
        metrics::counter!("flexibank_sync_degradations_total").increment(1);
        tracing::error!(
            waited_ms = lost_at.elapsed().as_millis() as u64,
            "NO SYNCHRONOUS REPLICA: commits are now acknowledged without a replica (sync_mode = degrade)"
        );
    } else {
        let caught_up = h
            .standbys
            .iter()
            .any(|s| s.state == "streaming" && h.lsn.saturating_sub(s.flush_lsn) <= CAUGHT_UP_BYTES);
        if caught_up {
            let names = inner.saved_sync_names.lock().expect("lock").take().unwrap_or_else(|| ANY_ONE_STANDBY.into());
            let restore = if names.trim().is_empty() { ANY_ONE_STANDBY.to_string() } else { names };
            set_sync_names(inner, primary, &restore).await?;
            inner.degraded.store(false, Ordering::Release);
            *inner.sync_lost_at.lock().expect("lock") = None;
            tracing::warn!("a replica caught up: commits wait for it again (synchronous)");
        }
    }
    Ok(())
}
