//! One promotion per cluster, however many servers run on it.
//!
//! Every server's pool may decide to promote; only the holder of the
//! promotion lease may act. The lease is a session advisory lock
//! (`pg_try_advisory_lock`, which hot standbys grant too) held on a strict
//! majority of the nodes other than the lost primary. Two majorities of one
//! set always share a node, and a session lock on a node has one holder, so
//! two servers never hold the lease at once. The holder then re-reads each
//! locked node: if one is already out of recovery or on a newer timeline,
//! another server promoted first, and this one stands down. The locks are
//! held until the promotion is finished and the other replicas have been
//! pointed at the new primary; a crashed holder's locks go with its
//! connections.
//!
//! With three nodes (the local stack) the majority of the two survivors is
//! both of them, so whoever holds the lease has re-read every survivor.

use std::time::Duration;

use super::{health::admin_connect, Inner, Role};

/// "FlexiBan" in ASCII: no other advisory lock of the bank uses it.
const LEASE_KEY: i64 = 0x466c_6578_6942_616e;
const LEASE_CONNECT_TIMEOUT: Duration = Duration::from_millis(800);

/// Held while alive: dropping it closes the connections, which releases
/// the locks.
pub(crate) struct Lease {
    _holders: Vec<tokio_postgres::Client>,
}

/// Takes the lease on a majority of the nodes other than `lost_primary`
/// (all nodes when it is `None`), in node order so that two servers racing
/// meet at the same first node; then checks that no locked node has been
/// promoted meanwhile (`timeline` is the newest this pool knows). A forced
/// promotion (a DBA's, of a node the rule cannot prove) does without the
/// majority, since it is made exactly when nodes are out of sight, but
/// still stands down if another server holds the lease anywhere.
pub(crate) async fn acquire(
    inner: &Inner,
    lost_primary: Option<usize>,
    timeline: u64,
    forced: bool,
) -> Result<Lease, String> {
    let voters: Vec<usize> = (0..inner.nodes.len())
        .filter(|&i| Some(i) != lost_primary)
        .collect();
    let majority = voters.len() / 2 + 1;
    let mut holders = Vec::new();
    let mut refused = Vec::new();
    for &index in &voters {
        let name = &inner.nodes[index].address.name;
        if inner.role_of(index) == Role::Unreachable {
            refused.push(format!("{name} unreachable"));
            continue;
        }
        let locked = async {
            let client = admin_connect(inner, index, LEASE_CONNECT_TIMEOUT).await?;
            let row = client
                .query_one(
                    "SELECT pg_try_advisory_lock($1), pg_is_in_recovery(),
                            CASE WHEN pg_is_in_recovery() THEN 0
                                 ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END",
                    &[&LEASE_KEY],
                )
                .await?;
            anyhow::Ok((
                client,
                row.get::<_, bool>(0),
                row.get::<_, bool>(1),
                row.get::<_, i32>(2),
            ))
        };
        match tokio::time::timeout(LEASE_CONNECT_TIMEOUT * 2, locked).await {
            Ok(Ok((client, true, in_recovery, primary_timeline))) => {
                if !in_recovery
                    && Some(index) != lost_primary
                    && primary_timeline as u64 >= timeline
                {
                    return Err(format!("{name} is already a primary on timeline {primary_timeline}: another server promoted it"));
                }
                holders.push(client);
            }
            Ok(Ok((_, false, _, _))) => {
                // Another server holds the lease: stand down at once, so that
                // two servers never each hold a minority forever.
                return Err(format!(
                    "another server holds the promotion lease on {name}"
                ));
            }
            Ok(Err(e)) => refused.push(format!("{name}: {e}")),
            Err(_) => refused.push(format!("{name} timed out")),
        }
    }
    if holders.len() < majority && !(forced && !holders.is_empty()) {
        return Err(format!(
            "promotion lease held on {} of the {} nodes, {majority} needed ({})",
            holders.len(),
            voters.len(),
            refused.join("; ")
        ));
    }
    Ok(Lease { _holders: holders })
}
