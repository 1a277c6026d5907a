//! Promotion only of what the quorum proves (issue 13), with real processes
//! and real signals: a replica's WAL receiver held back with SIGSTOP so the
//! other replica alone acknowledges; the pool cut off from a replica (its
//! postmaster and client backends stopped) while its WAL receiver streams
//! on; the primary SIGKILLed. Afterwards every acknowledged transfer is in
//! the ledger exactly once and the ledger's invariants hold.
//!
//! The tests run one at a time: each has three or four PostgreSQL nodes
//! under load, and they time how fast writes come back.

use std::{
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use flexibank_replication::pool::Role;
use flexibank_tests::{
    eventually,
    failover_load::{
        assert_nothing_lost, customers, cut_off_clients, failover_options, hold_wal_receiver,
        kill_postmaster, start_load, Load,
    },
    json, Session, TestStack,
};

const CLIENTS: usize = 16;
/// After a SIGKILL of the postmaster its backends may finish a commit for
/// a few milliseconds more; writes are counted only after that.
const DYING_PRIMARY_GRACE: Duration = Duration::from_millis(500);
/// The bound: writes resume within 3 s of the missing standby's return.
const RETURN_TO_WRITES: Duration = Duration::from_secs(3);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn role(stack: &TestStack, node: &str) -> Role {
    stack
        .server()
        .state
        .db
        .pool
        .view()
        .nodes
        .iter()
        .find(|n| n.name == node)
        .unwrap()
        .role
}

async fn until_role(stack: &TestStack, node: &str, wanted: Role) {
    eventually(
        Duration::from_secs(10),
        &format!("{node} to be {}", wanted.as_str()),
        || async { (role(stack, node) == wanted).then_some(()) },
    )
    .await;
}

fn acknowledged(load: &Load) -> usize {
    load.acknowledged.lock().unwrap().len()
}

/// Kills the primary, then asserts for `for_how_long` that nothing is
/// promoted, no write is accepted and the pool says why (naming `unseen`).
async fn assert_blocked(stack: &TestStack, load: &Load, unseen: &str, for_how_long: Duration) {
    let pool = &stack.server().state.db.pool;
    let view = eventually(
        Duration::from_secs(10),
        "automatic promotion to be reported blocked",
        || async {
            let view = pool.view();
            (view.failover.state == "blocked").then_some(view)
        },
    )
    .await;
    let reason = view.failover.reason.unwrap();
    assert!(
        reason.starts_with("primary lost; automatic promotion blocked: "),
        "{reason}"
    );
    assert!(
        reason.contains(&format!(
            "{unseen} unreachable, it may hold acknowledged commits"
        )),
        "{reason}"
    );
    let acknowledged_at_start = acknowledged(load);
    let until = Instant::now() + for_how_long;
    while Instant::now() < until {
        let view = pool.view();
        assert_eq!(
            view.primary, None,
            "a node was promoted while {unseen} was out of sight"
        );
        assert_eq!(pool.failovers(), 0);
        assert_eq!(view.failover.state, "blocked");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        acknowledged(load),
        acknowledged_at_start,
        "writes were accepted with no primary"
    );
    assert!(
        load.unavailable.load(Ordering::Relaxed) > 0,
        "writes were refused meanwhile (503)"
    );
    let metrics = stack
        .anon()
        .get("/metrics")
        .await
        .body
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        metrics.contains("flexibank_failover_blocked_total{reason=\"standbys_out_of_sight\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flexibank_failover_blocked{reason=\"standbys_out_of_sight\"} 1"),
        "{metrics}"
    );
}

/// Waits for the first write accepted after `load.mark()` and returns how long it took.
async fn writes_resume(load: &Load, within: Duration) -> Duration {
    eventually(
        within + Duration::from_secs(10),
        "writes to be accepted again",
        || async { *load.first_write_after_mark.lock().unwrap() },
    )
    .await
}

/// `returning` comes back into the pool's sight (`bring_back`): writes
/// resume within the bound, and replica1, the most advanced, is the
/// one promotion.
async fn back_in_sight_then_promoted(
    stack: &TestStack,
    load: &Load,
    clients: Vec<tokio::task::JoinHandle<()>>,
    returning: &str,
    bring_back: impl FnOnce(),
) {
    load.mark();
    bring_back();
    let returned_to_write = writes_resume(load, RETURN_TO_WRITES).await;
    println!(
        "{returning} back: first accepted write after {:.2} s",
        returned_to_write.as_secs_f64()
    );
    assert!(
        returned_to_write <= RETURN_TO_WRITES,
        "writes resumed {returned_to_write:?} after {returning} returned"
    );
    for task in clients {
        task.await.unwrap();
    }
    assert_eq!(
        stack.primary_name(),
        "replica1",
        "the most advanced node is promoted"
    );
    assert_eq!(stack.server().state.db.pool.failovers(), 1);
}

/// The case: replica2's WAL receiver held back, so replica1 alone
/// acknowledges; the pool loses sight of replica1 (its receiver streams on);
/// the primary dies. Promoting replica2 would lose what replica1 acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promotion_waits_for_the_unseen_replica_that_alone_acknowledged() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with("quorum-ahead-unseen", failover_options(2, true)).await;
    let customers = customers(&stack, "qa").await;
    let load = Arc::new(Load::default());
    let clients = start_load(
        customers,
        CLIENTS,
        load.clone(),
        Instant::now() + Duration::from_secs(24),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    let held = hold_wal_receiver(&stack, "replica2");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cut = cut_off_clients(&stack, "replica1");
    until_role(&stack, "replica1", Role::Unreachable).await;
    let before = acknowledged(&load);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        acknowledged(&load) > before,
        "replica1 alone acknowledges commits while out of the pool's sight"
    );

    kill_postmaster(&stack, "primary");
    held.resume();
    tokio::time::sleep(DYING_PRIMARY_GRACE).await;
    assert_blocked(&stack, &load, "replica1", Duration::from_secs(4)).await;

    back_in_sight_then_promoted(&stack, &load, clients, "replica1", || cut.resume()).await;
    assert_nothing_lost(&stack, &load, "qa").await;
    // The new primary names its standbys: N stays known for the next loss.
    let db = stack.superuser("replica1").await;
    let names: String = db
        .query_one("SHOW synchronous_standby_names", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(names, "ANY 1 (\"primary\", \"replica2\")");
}

/// The lagging replica out of sight instead: with ANY 1 of two the pool
/// cannot know which one is behind, so it blocks too; once it is back, the
/// most advanced node is promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promotion_waits_for_the_unseen_lagging_replica_then_picks_the_most_advanced() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with("quorum-behind-unseen", failover_options(2, true)).await;
    let customers = customers(&stack, "qb").await;
    let load = Arc::new(Load::default());
    let clients = start_load(
        customers,
        CLIENTS,
        load.clone(),
        Instant::now() + Duration::from_secs(22),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    let held = hold_wal_receiver(&stack, "replica2");
    let cut = cut_off_clients(&stack, "replica2");
    until_role(&stack, "replica2", Role::Unreachable).await;
    kill_postmaster(&stack, "primary");
    tokio::time::sleep(DYING_PRIMARY_GRACE).await;
    assert_blocked(&stack, &load, "replica2", Duration::from_secs(4)).await;

    back_in_sight_then_promoted(&stack, &load, clients, "replica2", || {
        cut.resume();
        held.resume();
    })
    .await;
    assert_nothing_lost(&stack, &load, "qb").await;
}

/// ANY 2 of three replicas tolerates one out of sight: promotion happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_two_of_three_promotes_with_one_replica_out_of_sight() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with("quorum-any2", failover_options(3, true)).await;
    let primary = stack.superuser("primary").await;
    primary
        .batch_execute(
            "ALTER SYSTEM SET synchronous_standby_names = 'ANY 2 (replica1, replica2, replica3)'",
        )
        .await
        .unwrap();
    primary
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the pool to see ANY 2", || async {
        let quorum: i64 = primary
            .query_one(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (quorum == 3).then_some(())
    })
    .await;
    let customers = customers(&stack, "qc").await;
    let load = Arc::new(Load::default());
    let clients = start_load(
        customers,
        CLIENTS,
        load.clone(),
        Instant::now() + Duration::from_secs(8),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    let cut = cut_off_clients(&stack, "replica3");
    until_role(&stack, "replica3", Role::Unreachable).await;
    kill_postmaster(&stack, "primary");
    load.mark();
    let new_primary = eventually(
        Duration::from_secs(10),
        "a promotion with replica3 out of sight",
        || async {
            stack
                .server()
                .state
                .db
                .pool
                .view()
                .primary
                .filter(|p| p != "primary")
        },
    )
    .await;
    assert!(
        new_primary == "replica1" || new_primary == "replica2",
        "{new_primary}"
    );
    assert_eq!(stack.server().state.db.pool.view().failover.state, "ok");
    let db = stack.superuser(&new_primary).await;
    let names: String = db
        .query_one("SHOW synchronous_standby_names", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        names.starts_with("ANY 2 (")
            && names.contains("\"replica3\"")
            && names.contains("\"primary\""),
        "{names}"
    );
    for task in clients {
        task.await.unwrap();
    }
    // The new primary's commits need two of (primary, the other, replica3):
    // bring replica3 back and make it follow (rewinding whatever it streamed
    // past the fork, which no quorum acknowledged).
    cut.resume();
    let discarded = stack.cluster.0.rejoin("replica3", true).await.unwrap();
    let acknowledged = load.acknowledged_ids();
    for transfer in discarded.iter().flat_map(|d| d.transfers.iter()) {
        let id: uuid::Uuid = transfer["id"].as_str().unwrap().parse().unwrap();
        assert!(
            !acknowledged.contains(&id),
            "an acknowledged transfer was on replica3 alone: {transfer}"
        );
    }
    assert_nothing_lost(&stack, &load, "qc").await;
}

/// A DBA forces the promotion of the replica that is behind: refused
/// without `force` (409, saying what may be lost), audited with the figures
/// with it; the up-to-date replica is then `diverged`, and rejoin refuses to
/// discard its WAL unless told, keeping a copy and listing the transfers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forced_promotion_of_the_behind_replica_leaves_the_other_diverged() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with("quorum-forced", failover_options(2, false)).await;
    let customers = customers(&stack, "qd").await;
    let dba = stack.login("dba").await;
    let load = Arc::new(Load::default());
    let clients = start_load(
        customers,
        CLIENTS,
        load.clone(),
        Instant::now() + Duration::from_secs(5),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = hold_wal_receiver(&stack, "replica2");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cut = cut_off_clients(&stack, "replica1");
    until_role(&stack, "replica1", Role::Unreachable).await;
    for task in clients {
        task.await.unwrap();
    }
    kill_postmaster(&stack, "primary");
    held.resume();

    let view = eventually(
        Duration::from_secs(10),
        "the DBA view to say promotion is unsafe",
        || async {
            let view = dba.get("/v1/dba/cluster").await;
            (view.body["failover"]["state"] == "blocked").then_some(view)
        },
    )
    .await;
    assert!(
        view.body["failover"]["reason"]
            .as_str()
            .unwrap()
            .contains("replica1 unreachable"),
        "{}",
        view.body
    );

    let refused = dba
        .post("/v1/dba/promote", json!({"node": "replica2"}), None)
        .await;
    refused.assert_problem(409, "promotion_unsafe");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("replica1 unreachable") && detail.contains("bytes behind"),
        "{detail}"
    );
    let bad = dba
        .post(
            "/v1/dba/promote",
            json!({"node": "replica2", "force": "yes"}),
            None,
        )
        .await;
    bad.assert_problem(400, "validation_failed");
    assert_eq!(
        stack.server().state.db.pool.failovers(),
        0,
        "refusals change nothing"
    );

    let forced = dba
        .post(
            "/v1/dba/promote",
            json!({"node": "replica2", "force": true}),
            None,
        )
        .await;
    assert_eq!(forced.status, 200, "{}", forced.body);
    assert_eq!(stack.primary_name(), "replica2");
    let audit = eventually(
        Duration::from_secs(10),
        "the forced promotion's audit row",
        || async {
            let audit = dba.get("/v1/dba/audit?action=dba.promote").await;
            (audit.status == 200 && !audit.body["items"].as_array().unwrap().is_empty())
                .then_some(audit)
        },
    )
    .await;
    let row = &audit.body["items"][0];
    assert_eq!(row["details"]["force"], true, "{row}");
    assert_eq!(row["details"]["proven_up_to_date"], false, "{row}");
    assert!(
        row["details"]["behind_bytes_at_least"].as_u64().unwrap() > 0,
        "{row}"
    );
    assert!(
        row["details"]["unseen_standbys"][0]
            .as_str()
            .unwrap()
            .contains("replica1"),
        "{row}"
    );

    // replica1 comes back holding what replica2 never got: diverged, in the
    // DBA view and in `flexibank-cluster status`.
    cut.resume();
    let view = eventually(
        Duration::from_secs(10),
        "replica1 to be reported diverged",
        || async {
            let view = dba.get("/v1/dba/cluster").await;
            (view.body["nodes"][1]["role"] == "diverged").then_some(view)
        },
    )
    .await;
    let diverged_bytes = view.body["nodes"][1]["diverged_bytes"].as_u64().unwrap();
    assert!(diverged_bytes > 0, "{}", view.body);
    let status = stack.cluster.0.status().await.unwrap();
    let replica1 = status.iter().find(|n| n.name == "replica1").unwrap();
    assert_eq!(
        (
            replica1.role.as_str(),
            replica1.diverged_bytes.is_some_and(|b| b > 0)
        ),
        ("diverged", true),
        "{status:#?}"
    );

    let refused = stack
        .cluster
        .0
        .rejoin("replica1", false)
        .await
        .expect_err("a diverged node is not rewound unasked");
    assert!(
        format!("{refused:#}").contains("--discard-diverged"),
        "{refused:#}"
    );
    let discarded = stack
        .cluster
        .0
        .rejoin("replica1", true)
        .await
        .unwrap()
        .expect("the discarded WAL is reported");
    assert!(
        discarded.backup_dir.join("PG_VERSION").exists(),
        "a copy of replica1's data directory is kept"
    );
    // What disappears are transfers that were acknowledged: the price of force.
    let acknowledged = load.acknowledged_ids();
    assert!(!discarded.transfers.is_empty(), "{discarded:?}");
    for transfer in &discarded.transfers {
        let id: uuid::Uuid = transfer["id"].as_str().unwrap().parse().unwrap();
        assert!(acknowledged.contains(&id), "{transfer}");
    }
    until_role(&stack, "replica1", Role::Replica).await;
    let alice = stack.login("alice").await;
    let from = stack
        .account_id(&stack.user("alice").account_numbers[0])
        .await;
    let after = alice
        .post_money("/v1/transfers", json!({"from_account_id": from, "to_account_number": stack.user("bob").account_numbers[0], "amount": "1.00"}))
        .await;
    assert_eq!(after.status, 201, "{}", after.body);
    stack.assert_ledger_invariants().await;
}

/// Two servers with auto_failover on one cluster, 16 clients spread over
/// both, the primary killed five times (rejoined each time): one promotion
/// per kill, never two primaries, every acknowledged transfer exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_promote_once_per_kill() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with("quorum-two-servers", failover_options(2, true)).await;
    let second = flexibank_server::start(stack.config.clone())
        .await
        .expect("second server");
    let second_url = format!("https://127.0.0.1:{}", second.addr.port());
    let customers = customers(&stack, "qe").await;
    // Half the clients talk to the first server, half to the second (same sessions).
    let spread: Vec<(Session, Vec<(uuid::Uuid, String)>)> = customers
        .iter()
        .cloned()
        .chain(customers.iter().map(|(s, a)| {
            (
                Session {
                    base_url: second_url.clone(),
                    ..s.clone()
                },
                a.clone(),
            )
        }))
        .collect();
    let spread = Arc::new(spread);
    let load = Arc::new(Load::default());
    let clients = start_load(
        spread,
        CLIENTS,
        load.clone(),
        Instant::now() + Duration::from_secs(600),
    );
    let pools = [&stack.server().state.db.pool, &second.state.db.pool];
    let mut current = "primary".to_string();
    let mut kill_to_write = Vec::new();
    for round in 1..=5u64 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        load.mark();
        kill_postmaster(&stack, &current);
        let new_primary = eventually(
            Duration::from_secs(20),
            "both servers to write to one new primary",
            || async {
                let seen: Vec<Option<String>> = pools.iter().map(|p| p.view().primary).collect();
                match (&seen[0], &seen[1]) {
                    (Some(a), Some(b)) if a == b && *a != current => Some(a.clone()),
                    _ => None,
                }
            },
        )
        .await;
        kill_to_write.push(
            writes_resume(&load, Duration::from_secs(10))
                .await
                .as_secs_f64(),
        );
        let promotions: u64 = pools.iter().map(|p| p.failovers()).sum();
        assert_eq!(promotions, round, "exactly one promotion per kill");
        let status = stack.cluster.0.status().await.unwrap();
        let primaries: Vec<&str> = status
            .iter()
            .filter(|n| n.role == "primary")
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(primaries, vec![new_primary.as_str()], "{status:#?}");
        let discarded = stack.cluster.0.rejoin(&current, true).await.unwrap();
        let acknowledged = load.acknowledged_ids();
        for transfer in discarded.iter().flat_map(|d| d.transfers.iter()) {
            let id: uuid::Uuid = transfer["id"].as_str().unwrap().parse().unwrap();
            assert!(
                !acknowledged.contains(&id),
                "round {round}: an acknowledged transfer was discarded: {transfer}"
            );
        }
        for pool in pools {
            eventually(
                Duration::from_secs(15),
                "the rejoined node to be a replica for both servers",
                || async {
                    pool.view()
                        .nodes
                        .iter()
                        .find(|n| n.name == current)
                        .is_some_and(|n| n.role == Role::Replica)
                        .then_some(())
                },
            )
            .await;
        }
        current = new_primary;
    }
    load.stopped.store(true, Ordering::Relaxed);
    for task in clients {
        task.await.unwrap();
    }
    kill_to_write.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("two servers, five kills: kill to first accepted write {kill_to_write:?} s; {} acknowledged", acknowledged(&load));
    assert_nothing_lost(&stack, &load, "qe").await;
    second.shutdown().await.unwrap();
}
