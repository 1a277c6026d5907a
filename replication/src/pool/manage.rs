//! Decisions the pool takes on the cluster: automatic failover, promotion,
//! and `synchronous_standby_names` (sync mode).

use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use anyhow::Context;

use super::{
    health::{admin_connect, NodeHealth},
    lease,
    quorum::{self, Member, SyncRule, Verdict},
    BlockReason, Inner, Role, SyncMode,
};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
const PROMOTE_WAIT_S: i32 = 30;
/// A replica this close to the primary counts as caught up (for leaving degraded mode).
const CAUGHT_UP_BYTES: u64 = 1024 * 1024;

pub(crate) async fn tick(inner: &Arc<Inner>) {
    if let Err(e) = refresh_history(inner).await {
        tracing::warn!(error = format!("{e:#}"), "reading the primary's timeline history failed");
    }
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

/// What the pool can prove about promoting now, from what it has seen.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// The node the rule proves up to date, if any.
    pub provable: Option<usize>,
    /// Standbys that may hold acknowledged commits the pool cannot see,
    /// each with why (`replica1 unreachable`).
    pub unseen: Vec<String>,
    /// The furthest WAL position the pool saw on the lost timeline: the
    /// lost primary's last position, or a standby's if further.
    pub last_seen_lsn: u64,
    /// Why nothing is provable, for people (empty when provable).
    pub reason: String,
}

impl Assessment {
    /// How far `candidate` is behind the furthest position the pool saw: a
    /// lower bound on what promoting it may lose.
    pub fn behind_bytes(&self, inner: &Inner, candidate: usize) -> u64 {
        self.last_seen_lsn.saturating_sub(position(&inner.health(candidate)))
    }

    /// Promoting `candidate` loses no acknowledged commit.
    pub fn is_safe(&self, inner: &Inner, candidate: usize) -> bool {
        self.provable.is_some_and(|best| position(&inner.health(candidate)) >= position(&inner.health(best)))
            && inner.role_of(candidate) == Role::Replica
    }
}

/// A standby's final WAL position: what it flushed, whether replayed or not
/// (promotion replays all of it).
fn position(h: &NodeHealth) -> u64 {
    h.receive_lsn.max(h.replay_lsn)
}

/// The promotion rule (see `quorum.rs`) applied to what the pool saw of
/// the lost primary: its `synchronous_standby_names` and its standbys.
pub(crate) fn assess(inner: &Inner) -> Assessment {
    let blocked = |reason: String, unseen: Vec<String>, last_seen_lsn: u64| Assessment { provable: None, unseen, last_seen_lsn, reason };
    let Some((old_index, _)) = lost_primary(inner) else {
        return blocked("no primary has been seen since this server started, so the quorum it kept is unknown".into(), vec![], 0);
    };
    let old = inner.health(old_index);
    let old_name = inner.nodes[old_index].address.name.clone();
    let rule = match SyncRule::parse(&old.sync_names) {
        Ok(rule) => rule,
        Err(e) => return blocked(format!("cannot read the lost primary's synchronous_standby_names: {e}"), vec![], old.lsn),
    };
    let known = |name: &str| inner.nodes.iter().position(|n| n.address.name == name);
    let names: Vec<String> = match &rule {
        SyncRule::Standbys { names: Some(names), .. } => names.clone(),
        // `*`: every node the pool knows, and any standby it does not.
        SyncRule::Standbys { names: None, .. } => inner
            .nodes
            .iter()
            .map(|n| n.address.name.clone())
            .chain(old.standbys.iter().map(|s| s.name.clone()))
            .collect(),
        SyncRule::Async => old.standbys.iter().filter(|s| s.state == "streaming").map(|s| s.name.clone()).collect(),
    };
    let mut names: Vec<String> = names.into_iter().filter(|n| *n != old_name).collect();
    names.sort();
    names.dedup();
    let failover_after = Duration::from_millis(inner.config.failover_after_ms);
    let mut why_unseen = Vec::new();
    let members: Vec<Member> = names
        .iter()
        .map(|name| {
            let node = known(name);
            let final_lsn = match node {
                None => {
                    why_unseen.push(format!("{name} is not a node this pool knows"));
                    None
                }
                Some(i) => {
                    let h = inner.health(i);
                    let receiver_lost_it =
                        !h.receiver_streaming || h.receiver_silence_s.map(|s| s >= failover_after.as_secs_f64()).unwrap_or(true);
                    match inner.role_of(i) {
                        Role::Replica if h.timeline != old.timeline => {
                            why_unseen.push(format!("{name} is on timeline {}, not {}", h.timeline, old.timeline));
                            None
                        }
                        Role::Replica if !receiver_lost_it => {
                            why_unseen.push(format!("{name} still streams from the primary"));
                            None
                        }
                        Role::Replica => Some(position(&h)),
                        other => {
                            why_unseen.push(format!("{name} {}", other.as_str()));
                            None
                        }
                    }
                }
            };
            Member { name: name.clone(), node, final_lsn }
        })
        .collect();
    let last_seen_lsn = members.iter().filter_map(|m| m.final_lsn).max().unwrap_or(0).max(old.lsn);
    match quorum::decide(&rule, &members) {
        Verdict::Promote { node } => Assessment { provable: Some(node), unseen: why_unseen, last_seen_lsn, reason: String::new() },
        Verdict::Blocked { seen, needed, .. } => {
            let reason = if why_unseen.is_empty() {
                format!("no standby of {old_name} can be promoted")
            } else {
                format!(
                    "{}, it may hold acknowledged commits ({seen} of the {needed} standbys needed to prove a candidate up to date are in sight)",
                    why_unseen.join(", ")
                )
            };
            blocked(reason, why_unseen, last_seen_lsn)
        }
    }
}

/// The newest primary's timeline history, which says where each older
/// timeline forked off: what a node on an older timeline would lose.
async fn refresh_history(inner: &Arc<Inner>) -> anyhow::Result<()> {
    let newest = inner.newest_timeline.load(Ordering::Acquire);
    let Some(primary) = inner.primary_index() else { return Ok(()) };
    if newest <= 1 || inner.history.read().expect("history lock").as_ref().is_some_and(|(tli, _)| *tli == newest) {
        return Ok(());
    }
    let client = admin_connect(inner, primary, ADMIN_TIMEOUT).await?;
    let text: String = client
        .query_one("SELECT pg_read_file('pg_wal/' || lpad(upper(to_hex($1::int)), 8, '0') || '.history')", &[&(newest as i32)])
        .await?
        .get(0);
    let forks = super::parse_history(&text);
    *inner.history.write().expect("history lock") = Some((newest, forks));
    Ok(())
}

/// Promote only what the quorum proves. Two witnesses still hold: the pool
/// has not reached the primary for `failover_after_ms`, and every standby
/// counted has lost it too (its position is final).
async fn auto_failover(inner: &Arc<Inner>) -> anyhow::Result<()> {
    if inner.primary_index().is_some() {
        inner.set_failover_block(None);
        return Ok(());
    }
    let silent_for = lost_primary(inner).map(|(_, age)| age);
    let failover_after = Duration::from_millis(inner.config.failover_after_ms);
    if silent_for.is_some_and(|s| s < failover_after) {
        return Ok(());
    }
    let assessment = assess(inner);
    let Some(candidate) = assessment.provable else {
        inner.set_failover_block(Some(BlockReason {
            kind: if assessment.unseen.is_empty() { "quorum_unknown" } else { "standbys_out_of_sight" },
            text: format!("primary lost; automatic promotion blocked: {}", assessment.reason),
        }));
        return Ok(());
    };
    inner.set_failover_block(None);
    if !inner.config.auto_failover {
        return Ok(());
    }
    tracing::warn!(
        new = %inner.nodes[candidate].address.name,
        silent_ms = silent_for.map(|s| s.as_millis() as u64),
        "primary lost: promoting the standby the quorum proves up to date"
    );
    promote(inner, candidate, "auto", false).await.map(|_| ()).map_err(|e| anyhow::anyhow!("{e}"))
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

/// Why a promotion did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("{0}")]
    NotAReplica(String),
    /// The rule cannot prove the node up to date, and `force` was not given.
    #[error("{detail}")]
    Unsafe { detail: String },
    /// Another server is promoting, or too few nodes answered.
    #[error("{0}")]
    Lease(String),
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

/// What a promotion did, and what the pool knew when it did it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Promotion {
    pub node: String,
    /// The rule proved the node up to date.
    pub proven: bool,
    /// Standbys the pool could not see (each with why).
    pub unseen: Vec<String>,
    /// Bytes the node was behind the furthest position the pool saw: a
    /// lower bound on what a forced promotion may have lost.
    pub behind_bytes: u64,
}

/// Promotes replica `index` if the rule proves it up to date (or `force`),
/// while holding the cluster's promotion lease; gives it the old primary's
/// quorum over the other nodes, by name, and points every other reachable
/// replica at it.
pub(crate) async fn promote(inner: &Arc<Inner>, index: usize, by: &str, force: bool) -> Result<Promotion, PromoteError> {
    let _one_at_a_time = inner.promotion.lock().await;
    let name = inner.nodes[index].address.name.clone();
    let role = inner.role_of(index);
    if role != Role::Replica {
        return Err(PromoteError::NotAReplica(format!("{name} is {}, not a reachable replica", role.as_str())));
    }
    let assessment = assess(inner);
    let proven = assessment.is_safe(inner, index);
    let behind_bytes = assessment.behind_bytes(inner, index);
    if !proven && !force {
        let mut detail = format!("{name} cannot be proven up to date: ");
        match assessment.provable {
            Some(best) if best != index => detail += &format!(
                "{} is further ahead, {name} is at least {behind_bytes} bytes behind",
                inner.nodes[best].address.name
            ),
            _ => detail += &format!("{}; it is at least {behind_bytes} bytes behind the last position seen", assessment.reason),
        }
        return Err(PromoteError::Unsafe { detail: detail + ". Promote with force to accept losing those commits." });
    }
    // The primary being replaced (dead, or alive for a forced switch) has no vote.
    let old_primary = lost_primary(inner).map(|(i, _)| i);
    let newest = inner.newest_timeline.load(Ordering::Acquire);
    let _lease = lease::acquire(inner, old_primary, newest, !proven).await.map_err(PromoteError::Lease)?;

    let started = Instant::now();
    let failed = |e: anyhow::Error| PromoteError::Failed(e);
    let client = admin_connect(inner, index, ADMIN_TIMEOUT).await.with_context(|| format!("connecting to {name}")).map_err(failed)?;
    let promoted: bool = client
        .query_one("SELECT pg_promote(true, $1)", &[&PROMOTE_WAIT_S])
        .await
        .with_context(|| format!("promoting {name}"))
        .map_err(failed)?
        .get(0);
    if !promoted {
        return Err(failed(anyhow::anyhow!("{name} did not finish promotion within {PROMOTE_WAIT_S} s")));
    }
    inner.failovers.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("flexibank_failovers_total", "by" => by.to_string()).increment(1);
    inner.wake.notify_one();

    // The new primary keeps the quorum the old one had, over every other
    // node by name (the old primary included, once it rejoins), so that N
    // is known at the next loss. A promoted replica may also carry a stale
    // setting of its own: this always replaces it.
    let others: Vec<usize> = (0..inner.nodes.len()).filter(|&i| i != index && inner.role_of(i) == Role::Replica).collect();
    let rule = old_primary.and_then(|i| SyncRule::parse(&inner.health(i).sync_names).ok()).unwrap_or(SyncRule::Async);
    let sync_names = match (inner.config.sync_mode, others.is_empty()) {
        (SyncMode::Degrade, true) => String::new(),
        _ => rule.render_for(&inner.other_node_names(index)),
    };
    alter_system(&client, "synchronous_standby_names", &sync_names)
        .await
        .context("setting synchronous_standby_names on the new primary")
        .map_err(failed)?;

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
    tracing::warn!(node = %name, by, proven, behind_bytes, unseen = ?assessment.unseen, elapsed_ms = started.elapsed().as_millis() as u64, "promoted");
    Ok(Promotion { node: name, proven, unseen: assessment.unseen, behind_bytes })
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
            let names = inner.saved_sync_names.lock().expect("lock").take().unwrap_or_default();
            let restore =
                if names.trim().is_empty() { SyncRule::Async.render_for(&inner.other_node_names(primary)) } else { names };
            set_sync_names(inner, primary, &restore).await?;
            inner.degraded.store(false, Ordering::Release);
            *inner.sync_lost_at.lock().expect("lock") = None;
            tracing::warn!("a replica caught up: commits wait for it again (synchronous)");
        }
    }
    Ok(())
}
