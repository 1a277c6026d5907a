//! Losing the primary under load: `kill -9` its postmaster while 16 clients
//! move money, promote a replica (by the DBA endpoint, or automatically),
//! and check that nothing acknowledged was lost or applied twice; then the
//! old primary comes back fenced and is rewound into a replica.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use flexibank_tests::{
    eventually,
    failover_load::{assert_nothing_lost, failover_options, customers, kill_postmaster, start_load, Load},
    json, TestStack,
};

const CLIENTS: usize = 16;

/// The surviving replica streams synchronously from the new primary.
async fn assert_survivor_follows(stack: &TestStack, new_primary: &str, survivor: &str) {
    let db = stack.superuser(new_primary).await;
    eventually(Duration::from_secs(15), "the surviving replica to stream synchronously from the new primary", || async {
        let row = db
            .query_opt("SELECT sync_state FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", &[&survivor])
            .await
            .unwrap()?;
        let state: String = row.get(0);
        (state == "sync" || state == "quorum").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dba_promotes_after_primary_is_killed_then_old_primary_is_fenced_and_rejoined() {
    let stack = TestStack::start_with("failover-manual", failover_options(2, false)).await;
    let customers = customers(&stack, "fo").await;
    let dba = stack.login("dba").await;
    let load = Arc::new(Load::default());
    let stop = Instant::now() + Duration::from_secs(12);
    let clients = start_load(customers.clone(), CLIENTS, load.clone(), stop);

    tokio::time::sleep(Duration::from_secs(2)).await;
    load.mark();
    kill_postmaster(&stack, "primary");

    // The DBA sees the primary go, and promotes replica1.
    eventually(Duration::from_secs(5), "the pool to see the primary gone", || async {
        let view = dba.get("/v1/dba/cluster").await;
        (view.body["nodes"][0]["role"] == "unreachable").then_some(())
    })
    .await;
    // Both replicas are in sight, so the rule proves one of them up to date:
    // the other is refused (it may lack commits the first acknowledged).
    let mut promoted = dba.post("/v1/dba/promote", json!({"node": "replica1"}), None).await;
    let (new_primary, survivor) = if promoted.status == 409 {
        promoted.assert_problem(409, "promotion_unsafe");
        assert!(promoted.body["detail"].as_str().unwrap().contains("replica2 is further ahead"), "{}", promoted.body);
        promoted = dba.post("/v1/dba/promote", json!({"node": "replica2"}), None).await;
        ("replica2", "replica1")
    } else {
        ("replica1", "replica2")
    };
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    for task in clients {
        task.await.unwrap();
    }
    let kill_to_write = load.first_write_after_mark.lock().unwrap().expect("writes resumed after the promotion");
    println!(
        "manual promotion: kill to first accepted write {:.2} s; {} acknowledged; {} 503/429 answers",
        kill_to_write.as_secs_f64(),
        load.acknowledged.lock().unwrap().len(),
        load.unavailable.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(stack.primary_name(), new_primary);
    assert_nothing_lost(&stack, &load, "fo").await;
    assert_survivor_follows(&stack, new_primary, survivor).await;
    let audit = dba.get("/v1/dba/audit?action=dba.promote").await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 1, "{}", audit.body);

    // The old primary comes back on the old timeline: fenced, never written
    // to, and diverged (its crash recovery wrote past the fork, and it may
    // hold commits that were never acknowledged).
    stack.cluster.0.start_node("primary").await.unwrap();
    eventually(Duration::from_secs(10), "the old primary to be reported diverged", || async {
        let view = dba.get("/v1/dba/cluster").await;
        (view.body["nodes"][0]["role"] == "diverged" && view.body["nodes"][0]["diverged_bytes"].as_u64() > Some(0)).then_some(())
    })
    .await;
    let (alice, from) = (stack.login("alice").await, stack.account_id(&stack.user("alice").account_numbers[0]).await);
    let after = alice
        .post_money("/v1/transfers", json!({"from_account_id": from, "to_account_number": stack.user("bob").account_numbers[0], "amount": "1.00", "memo": "after fencing"}))
        .await;
    assert_eq!(after.status, 201, "{}", after.body);
    let old = stack.superuser("primary").await;
    let on_old: i64 = old.query_one("SELECT count(*) FROM transfers WHERE memo = 'after fencing'", &[]).await.unwrap().get(0);
    assert_eq!(on_old, 0, "a write reached the fenced old primary");

    // Rewind it into a replica of the new primary; then it serves reads
    // again. What the rewind discards was never acknowledged.
    let refused = stack.cluster.0.rejoin("primary", false).await.expect_err("a diverged node is not rewound unasked");
    assert!(format!("{refused:#}").contains("--discard-diverged"), "{refused:#}");
    let discarded = stack.cluster.0.rejoin("primary", true).await.unwrap().expect("the discarded WAL is reported");
    assert!(discarded.backup_dir.join("PG_VERSION").exists(), "a copy of the data directory is kept");
    let acknowledged = load.acknowledged_ids();
    for transfer in &discarded.transfers {
        let id: uuid::Uuid = transfer["id"].as_str().unwrap().parse().unwrap();
        assert!(!acknowledged.contains(&id), "an acknowledged transfer was discarded: {transfer}");
    }
    eventually(Duration::from_secs(15), "the old primary to rejoin as a replica", || async {
        let view = dba.get("/v1/dba/cluster").await;
        (view.body["nodes"][0]["role"] == "replica").then_some(())
    })
    .await;
    assert_survivor_follows(&stack, new_primary, "primary").await;
    let rejoined = stack.superuser("primary").await;
    eventually(Duration::from_secs(5), "the post-failover write on the rejoined node", || async {
        let n: i64 = rejoined.query_one("SELECT count(*) FROM transfers WHERE memo = 'after fencing'", &[]).await.unwrap().get(0);
        (n == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn automatic_failover_after_primary_is_killed_loses_nothing() {
    let stack = TestStack::start_with("failover-auto", failover_options(2, true)).await;
    let customers = customers(&stack, "fo").await;
    let load = Arc::new(Load::default());
    let stop = Instant::now() + Duration::from_secs(10);
    let clients = start_load(customers.clone(), CLIENTS, load.clone(), stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    load.mark();
    kill_postmaster(&stack, "primary");
    for task in clients {
        task.await.unwrap();
    }
    let kill_to_write = load.first_write_after_mark.lock().unwrap().expect("writes resumed after automatic promotion");
    println!(
        "automatic promotion: kill to first accepted write {:.2} s; {} acknowledged; {} 503/429 answers",
        kill_to_write.as_secs_f64(),
        load.acknowledged.lock().unwrap().len(),
        load.unavailable.load(std::sync::atomic::Ordering::Relaxed)
    );
    let new_primary = stack.primary_name();
    assert_ne!(new_primary, "primary");
    assert_eq!(stack.server().state.db.pool.failovers(), 1, "exactly one promotion");
    assert_nothing_lost(&stack, &load, "fo").await;
    let survivor = if new_primary == "replica1" { "replica2" } else { "replica1" };
    assert_survivor_follows(&stack, &new_primary, survivor).await;
}
