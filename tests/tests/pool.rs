//! The failover pool under real trouble: a replica killed with `kill -9`
//! (strict mode refuses to acknowledge, degrade mode goes asynchronous and
//! back), a stalled primary postmaster (no reason to fail over), replica
//! reads that never go behind the caller's own writes, and the DBA view.
//!
//! The tests here run one at a time (`SERIAL`): they measure timings of
//! health checks and timeouts, which two stacks sharing two cores would blur.

use std::{
    str::FromStr,
    time::{Duration, Instant},
};

use flexibank_tests::{eventually, is_success, json, Resp, Session, StackOptions, TestStack};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn signal(pid: i32, sig: i32) {
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

/// SIGKILLs a node's postmaster and waits until it is gone.
async fn kill_postmaster(stack: &TestStack, node: &str) {
    let pid = stack.cluster.0.postmaster_pid(node).expect("postmaster running");
    signal(pid, libc::SIGKILL);
    eventually(Duration::from_secs(5), "the postmaster to die", || async {
        stack.cluster.0.postmaster_pid(node).is_none().then_some(())
    })
    .await;
}

/// Starts a killed node again. Its orphaned children may still hold the
/// shared memory for a moment after the postmaster died, so retry briefly.
async fn restart(cluster: &flexibank_replication::Cluster, node: &str) {
    let started = Instant::now();
    loop {
        match cluster.start_node(node).await {
            Ok(()) => return,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                eprintln!("start of {node} failed, retrying: {e:#}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("could not start {node} again: {e:#}"),
        }
    }
}

/// Sends SIGCONT when dropped: a failing test never leaves a process stopped.
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

async fn cluster_view(dba: &Session) -> Value {
    let view = dba.get("/v1/dba/cluster").await;
    assert_eq!(view.status, 200, "{}", view.body);
    view.body
}

fn node<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {view}"))
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}"))).unwrap()
}

async fn balance_sql(db: &tokio_postgres::Client, id: Uuid) -> Decimal {
    let text: String = db.query_one("SELECT balance::text FROM accounts WHERE id = $1", &[&id]).await.unwrap().get(0);
    Decimal::from_str(&text).unwrap()
}

async fn transfers_with_memo(db: &tokio_postgres::Client, memo: &str) -> i64 {
    db.query_one("SELECT count(*) FROM transfers WHERE memo = $1", &[&memo]).await.unwrap().get(0)
}

async fn sync_state_of(primary: &tokio_postgres::Client, standby: &str) -> Option<(String, String)> {
    primary
        .query_opt("SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1", &[&standby])
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)))
}

/// Alice's first account id and Bob's first account number.
async fn alice_to_bob(stack: &TestStack) -> (Uuid, String) {
    (stack.account_id(&stack.user("alice").account_numbers[0]).await, stack.user("bob").account_numbers[0].clone())
}

fn transfer_body(from: Uuid, to: &str, amount: &str, memo: &str) -> Value {
    json!({"from_account_id": from, "to_account_number": to, "amount": amount, "memo": memo})
}

fn assert_no_primary(resp: &Resp) {
    resp.assert_problem(503, "no_primary");
    let retry_after: u64 = resp
        .header("retry-after")
        .unwrap_or_else(|| panic!("503 without Retry-After: {:?}", resp.headers))
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1);
}

#[tokio::test]
async fn strict_mode_refuses_writes_without_a_replica() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with(
        "pool-strict",
        StackOptions {
            replicas: 1,
            sync: true,
            configure: |c| {
                c.server.request_timeout_ms = 3000;
                // Sessions record `last_seen_at` every idle/4 = 3 s (instead of 30 s).
                c.security.session_idle_timeout_s = 12;
            },
        },
    )
    .await;
    // Log in first: a login writes, and writes cannot commit without the replica.
    let (alice, dba) = (stack.login("alice").await, stack.login("dba").await);
    let (from, to) = alice_to_bob(&stack).await;
    let primary = stack.superuser("primary").await;
    let before = balance_sql(&primary, from).await;
    assert_eq!(node(&cluster_view(&dba).await, "replica1")["role"], "replica");
    let dba_last_seen = Instant::now();

    kill_postmaster(&stack, "replica1").await;
    let key = Uuid::now_v7().to_string();
    let memo = format!("strict {key}");
    let body = transfer_body(from, &to, "12.34", &memo);
    let started = Instant::now();
    let refused = alice.post("/v1/transfers", body.clone(), Some(&key)).await;
    let took = started.elapsed();
    eprintln!("strict: refused after {took:?}");
    assert!(!is_success(refused.status), "a commit without a synchronous replica was acknowledged: {}", refused.body);
    assert_no_primary(&refused);
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(8),
        "the refusal came after {took:?}, not at the 3 s request timeout"
    );
    // The commit waits on the primary: nobody sees it while it is unacknowledged.
    assert_eq!(transfers_with_memo(&primary, &memo).await, 0, "an unacknowledged transfer is visible");
    assert_eq!(balance_sql(&primary, from).await, before);

    // The DBA has been idle for longer than the touch interval: their session
    // is due for a `last_seen_at` write. Looking must not wait for a replica.
    tokio::time::sleep(Duration::from_millis(3500).saturating_sub(dba_last_seen.elapsed())).await;
    let view = eventually(Duration::from_secs(5), "replica1 reported unreachable", || async {
        let view = cluster_view(&dba).await;
        (node(&view, "replica1")["role"] == "unreachable").then_some(view)
    })
    .await;
    assert_eq!(node(&view, "primary")["role"], "primary", "{view}");
    assert_eq!(view["sync_mode"], "sync", "strict mode must keep commits synchronous: {view}");
    let names: String = primary.query_one("SHOW synchronous_standby_names", &[]).await.unwrap().get(0);
    assert!(!names.trim().is_empty(), "strict mode cleared synchronous_standby_names");

    restart(&stack.cluster.0, "replica1").await;
    let replica = stack.superuser("replica1").await;
    eventually(Duration::from_secs(15), "replica1 to stream synchronously again", || async {
        matches!(sync_state_of(&primary, "replica1").await, Some((s, sync)) if s == "streaming" && (sync == "sync" || sync == "quorum"))
            .then_some(())
    })
    .await;
    // The waiting commit is released once the replica confirms it, and replayed there.
    eventually(Duration::from_secs(10), "the transfer on the caught-up replica", || async {
        (transfers_with_memo(&replica, &memo).await == 1).then_some(())
    })
    .await;

    let retried = eventually(Duration::from_secs(10), "the retry to be answered 201", || async {
        let r = alice.post("/v1/transfers", body.clone(), Some(&key)).await;
        if r.status == 503 {
            return None;
        }
        Some(r)
    })
    .await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(retried.header("idempotent-replayed"), Some("true"), "the first attempt committed; the retry must replay it");
    assert_eq!(transfers_with_memo(&primary, &memo).await, 1, "the money moved more than once");
    assert_eq!(balance_sql(&primary, from).await, before - Decimal::from_str("12.34").unwrap());
    assert_eq!(dec(&retried.body["balance_after"]), before - Decimal::from_str("12.34").unwrap());

    // And new writes are acknowledged again.
    let fresh = alice.post_money("/v1/transfers", transfer_body(from, &to, "1.00", "after strict")).await;
    assert_eq!(fresh.status, 201, "{}", fresh.body);
    stack.assert_ledger_invariants().await;
}

#[tokio::test]
async fn degrade_mode_goes_async_then_back_to_sync() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with(
        "pool-degrade",
        StackOptions {
            replicas: 1,
            sync: true,
            configure: |c| {
                c.database.sync_mode = "degrade".into();
                c.database.degrade_after_ms = 2000;
                c.server.request_timeout_ms = 10_000;
            },
        },
    )
    .await;
    let (alice, dba) = (stack.login("alice").await, stack.login("dba").await);
    let (from, to) = alice_to_bob(&stack).await;
    let primary = stack.superuser("primary").await;
    assert_eq!(cluster_view(&dba).await["sync_mode"], "sync");

    // The replica dies when the signal is sent: `kill_postmaster` returns only once the postmaster is
    // gone, and the pool may have seen its standby leave before that.
    let killed = Instant::now();
    kill_postmaster(&stack, "replica1").await;
    // Once the walsender is gone nothing can confirm a commit any more.
    eventually(Duration::from_secs(5), "replica1 to leave pg_stat_replication", || async {
        sync_state_of(&primary, "replica1").await.is_none().then_some(())
    })
    .await;
    let started = Instant::now();
    let accepted = alice.post_money("/v1/transfers", transfer_body(from, &to, "2.00", "degraded")).await;
    let took = started.elapsed();
    eprintln!("degrade: accepted after {took:?} ({:?} after the kill)", killed.elapsed());
    assert_eq!(accepted.status, 201, "degrade mode must accept writes after degrade_after_ms: {}", accepted.body);
    assert!(
        killed.elapsed() >= Duration::from_millis(2000),
        "a commit was acknowledged {:?} after the replica died, before degrade_after_ms",
        killed.elapsed()
    );
    assert!(took < Duration::from_secs(8), "the degraded commit took {took:?}");

    let view = cluster_view(&dba).await;
    assert_eq!(view["sync_mode"], "async", "{view}");
    let names: String = primary.query_one("SHOW synchronous_standby_names", &[]).await.unwrap().get(0);
    assert_eq!(names.trim(), "", "degraded, yet synchronous_standby_names is {names:?}");
    // The pool counts the degradation once the primary has taken the setting,
    // which may be a moment after the first commit it released.
    eventually(Duration::from_secs(2), "flexibank_sync_degradations_total in /metrics", || async {
        let metrics = stack.anon().get("/metrics").await;
        assert_eq!(metrics.status, 200);
        let text = metrics.body.as_str().expect("metrics text");
        text.lines().any(|l| l.starts_with("flexibank_sync_degradations_total") && !l.ends_with(" 0")).then_some(())
    })
    .await;

    restart(&stack.cluster.0, "replica1").await;
    let back = Instant::now();
    eventually(Duration::from_secs(15), "sync_mode to be sync again", || async {
        let view = cluster_view(&dba).await;
        (view["sync_mode"] == "sync").then_some(())
    })
    .await;
    eventually(Duration::from_secs(15), "replica1 synchronous in pg_stat_replication", || async {
        matches!(sync_state_of(&primary, "replica1").await, Some((s, sync)) if s == "streaming" && (sync == "sync" || sync == "quorum"))
            .then_some(())
    })
    .await;
    eprintln!("back to synchronous {:?} after the restart", back.elapsed());
    let names: String = primary.query_one("SHOW synchronous_standby_names", &[]).await.unwrap().get(0);
    assert!(!names.trim().is_empty(), "synchronous_standby_names not restored");

    let after = alice.post_money("/v1/transfers", transfer_body(from, &to, "3.00", "synchronous again")).await;
    assert_eq!(after.status, 201, "{}", after.body);
    // Acknowledged synchronously: already flushed on the replica.
    let replica = stack.superuser("replica1").await;
    eventually(Duration::from_secs(5), "the transfer on the replica", || async {
        (transfers_with_memo(&replica, "synchronous again").await == 1).then_some(())
    })
    .await;
    let view = cluster_view(&dba).await;
    assert_eq!(view["failovers"], 0, "{view}");
    assert_eq!(node(&view, "primary")["role"], "primary");
    stack.assert_ledger_invariants().await;
}

/// Degrade mode keeps its "degraded" mark in memory: a server (re)started
/// while the primary commits asynchronously must still bring synchronous
/// replication back once a replica has caught up.
#[tokio::test]
async fn degrade_mode_returns_to_sync_after_a_server_restart() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with(
        "pool-degrade-restart",
        StackOptions {
            replicas: 1,
            sync: true,
            configure: |c| {
                c.database.sync_mode = "degrade".into();
                c.database.degrade_after_ms = 1000;
            },
        },
    )
    .await;
    kill_postmaster(&stack, "replica1").await;
    // Degraded with no replica left: while the killed replica's walsender still showed it
    // streaming (its orphaned walreceiver outlives the postmaster for a moment on a busy machine),
    // the first server could degrade and then see it "caught up" and restore synchronous commits.
    // And settled: a health check taken just before the orphan vanished can still restore
    // synchronous commits a moment after the test saw it gone (then the server degrades again
    // after degrade_after_ms); the state must hold across several health checks (200 ms each).
    let primary = stack.cluster.0.connect_superuser("primary").await.unwrap();
    let degraded = || async {
        let gone = sync_state_of(&primary, "replica1").await.is_none();
        let names: String = primary.query_one("SHOW synchronous_standby_names", &[]).await.unwrap().get(0);
        gone && names.trim().is_empty() && stack.server().state.db.pool.view().sync_mode == "async"
    };
    eventually(Duration::from_secs(20), "the first server to degrade, with replica1 gone, and stay so", || async {
        if !degraded().await {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        degraded().await.then_some(())
    })
    .await;

    // Restart the server while degraded.
    let mut stack = stack;
    stack.stop_server().await;
    stack.start_server().await;
    assert_eq!(stack.server().state.db.pool.view().sync_mode, "async");

    restart(&stack.cluster.0, "replica1").await;
    eventually(Duration::from_secs(15), "synchronous replication to come back", || async {
        let names: String = primary.query_one("SHOW synchronous_standby_names", &[]).await.unwrap().get(0);
        let synced = matches!(sync_state_of(&primary, "replica1").await, Some((s, sync)) if s == "streaming" && (sync == "sync" || sync == "quorum"));
        (!names.trim().is_empty() && synced && stack.server().state.db.pool.view().sync_mode == "sync").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_stalled_primary_postmaster_is_no_reason_to_fail_over() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with(
        "pool-sigstop",
        StackOptions {
            replicas: 1,
            sync: true,
            configure: |c| {
                c.database.auto_failover = true;
                c.database.failover_after_ms = 1000;
            },
        },
    )
    .await;
    let (alice, dba) = (stack.login("alice").await, stack.login("dba").await);
    let (from, to) = alice_to_bob(&stack).await;
    let pid = stack.cluster.0.postmaster_pid("primary").expect("primary running");

    let stopped_at = Instant::now();
    let resume = Resume(pid);
    signal(pid, libc::SIGSTOP);
    // Money keeps moving over existing connections, or waits: either way no
    // answer but 201 or 503 no_primary.
    let mover = {
        let alice = alice.clone();
        let to = to.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            while stopped_at.elapsed() < Duration::from_secs(4) {
                let r = alice.post_money("/v1/transfers", transfer_body(from, &to, "0.50", "while stalled")).await;
                outcomes.push((r.status, r.code().to_string()));
            }
            outcomes
        })
    };
    let mut roles_seen = Vec::new();
    while stopped_at.elapsed() < Duration::from_secs(4) {
        let view = stack.server().state.db.pool.view();
        roles_seen.push((view.nodes[0].role.as_str(), view.nodes[1].role.as_str()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(resume);

    let outcomes = mover.await.unwrap();
    eprintln!("while stalled: {outcomes:?}");
    for (status, code) in &outcomes {
        assert!(*status == 201 || (*status == 503 && code == "no_primary"), "answer while stalled: {status} {code}");
    }
    assert!(
        roles_seen.iter().all(|(primary, replica1)| *primary != "replica" && *replica1 != "primary"),
        "the pool saw replica1 as primary while the old primary's postmaster was stopped: {roles_seen:?}"
    );

    let primary = stack.superuser("primary").await;
    let replica = stack.superuser("replica1").await;
    assert!(!primary.query_one("SELECT pg_is_in_recovery()", &[]).await.unwrap().get::<_, bool>(0), "primary is in recovery");
    assert!(replica.query_one("SELECT pg_is_in_recovery()", &[]).await.unwrap().get::<_, bool>(0), "replica1 was promoted");
    let view = eventually(Duration::from_secs(10), "the pool to see the primary again", || async {
        let view = cluster_view(&dba).await;
        (node(&view, "primary")["role"] == "primary").then_some(view)
    })
    .await;
    assert_eq!(view["failovers"], 0, "{view}");
    assert_eq!(node(&view, "replica1")["role"], "replica", "{view}");
    let after = alice.post_money("/v1/transfers", transfer_body(from, &to, "1.00", "after the stall")).await;
    assert_eq!(after.status, 201, "{}", after.body);
    assert_eq!(transfers_with_memo(&primary, "after the stall").await, 1);
    stack.assert_ledger_invariants().await;
}

#[tokio::test]
async fn reads_follow_the_replica_but_never_behind_your_own_writes() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with("pool-reads", StackOptions { replicas: 1, ..Default::default() }).await;
    let (alice, bob, dba) = (stack.login("alice").await, stack.login("bob").await, stack.login("dba").await);
    let (from, to) = alice_to_bob(&stack).await;
    let bob_account = stack.account_id(&to).await;

    eventually(Duration::from_secs(10), "replica1 caught up", || async {
        let view = cluster_view(&dba).await;
        let r = node(&view, "replica1");
        (r["role"] == "replica" && r["replay_lag_bytes"] == 0).then_some(())
    })
    .await;
    let mut from_replica = 0;
    for _ in 0..50 {
        let me = bob.get("/v1/me").await;
        assert_eq!(me.status, 200, "{}", me.body);
        match me.header("x-served-by") {
            Some("replica") => from_replica += 1,
            Some("primary") => {}
            other => panic!("X-Served-By {other:?}"),
        }
    }
    assert!(from_replica >= 45, "only {from_replica} of 50 reads with no writes went to the idle, caught-up replica");

    let replica = stack.superuser("replica1").await;
    // Two statements: ALTER SYSTEM refuses the implicit transaction of a multi-statement query.
    replica.batch_execute("ALTER SYSTEM SET recovery_min_apply_delay = '3s'").await.unwrap();
    replica.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    eventually(Duration::from_secs(5), "the apply delay to take effect", || async {
        let fresh = stack.superuser("replica1").await;
        let delay: String = fresh.query_one("SHOW recovery_min_apply_delay", &[]).await.unwrap().get(0);
        (delay == "3s").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the startup process reloads on its own

    let path = format!("/v1/accounts/{from}");
    let old = dec(&alice.get(&path).await.body["balance"]);
    let bob_old = dec(&bob.get(&format!("/v1/accounts/{bob_account}")).await.body["balance"]);
    let moved = alice.post_money("/v1/transfers", transfer_body(from, &to, "10.00", "read your writes")).await;
    assert_eq!(moved.status, 201, "{}", moved.body);
    let acked = Instant::now();
    let new = old - Decimal::from(10);
    assert_eq!(dec(&moved.body["balance_after"]), new);

    let first = alice.get(&path).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(dec(&first.body["balance"]), new, "alice does not see her own transfer right after it");
    assert_eq!(first.header("x-served-by"), Some("primary"), "served by a replica that cannot have replayed the write yet");

    let mut replica_after = None;
    while acked.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let read = alice.get(&path).await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(
            dec(&read.body["balance"]),
            new,
            "{:?} after her transfer alice read an old balance from the {:?}",
            acked.elapsed(),
            read.header("x-served-by")
        );
        // Bob did not write: a replica may serve him, but not one over the lag bound (1 s).
        let bob_read = bob.get(&format!("/v1/accounts/{bob_account}")).await;
        assert_eq!(bob_read.status, 200, "{}", bob_read.body);
        if bob_read.header("x-served-by") == Some("replica") && dec(&bob_read.body["balance"]) == bob_old {
            assert!(
                acked.elapsed() < Duration::from_millis(1500),
                "{:?} after the transfer bob read a stale balance from a replica behind by more than max_replica_lag_ms",
                acked.elapsed()
            );
        }
        if read.header("x-served-by") == Some("replica") {
            replica_after = Some(acked.elapsed());
            break;
        }
    }
    let replica_after = replica_after.expect("alice's reads never went back to the replica after it replayed her write");
    eprintln!("{from_replica}/50 idle reads from the replica; alice back on the replica {replica_after:?} after her write");
    assert!(
        replica_after >= Duration::from_millis(2500),
        "served from the replica {replica_after:?} after the write, yet it applies commits 3 s late"
    );
    let delayed: i64 = replica
        .query_one("SELECT count(*) FROM transfers WHERE memo = 'read your writes'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(delayed, 1);

    replica.batch_execute("ALTER SYSTEM RESET recovery_min_apply_delay").await.unwrap();
    replica.batch_execute("SELECT pg_reload_conf()").await.unwrap();
}

#[tokio::test]
async fn dba_cluster_view_and_promote_validation() {
    let _serial = SERIAL.lock().await;
    let stack = TestStack::start_with("pool-dba", StackOptions { replicas: 2, ..Default::default() }).await;
    let (dba, alice, admin) = (stack.login("dba").await, stack.login("alice").await, stack.login("admin").await);

    let view = eventually(Duration::from_secs(10), "both replicas streaming", || async {
        let view = cluster_view(&dba).await;
        ["replica1", "replica2"].iter().all(|r| node(&view, r)["sync_state"].is_string()).then_some(view)
    })
    .await;
    let nodes = view["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{view}");
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["primary", "replica1", "replica2"]);
    let roles: Vec<&str> = nodes.iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["primary", "replica", "replica"], "{view}");
    let timeline = node(&view, "primary")["timeline"].as_u64().expect("primary timeline");
    assert!(timeline >= 1);
    for n in nodes {
        assert_eq!(n["timeline"].as_u64(), Some(timeline), "{n}");
        let lsn = n["lsn"].as_str().unwrap_or_else(|| panic!("no lsn: {n}"));
        let parsed = flexibank_replication::status::parse_lsn(lsn);
        assert!(
            parsed.is_some() && lsn.contains('/') && lsn.chars().all(|c| c == '/' || c.is_ascii_hexdigit()),
            "lsn {lsn:?} is not X/Y hex"
        );
        assert!(n["replay_lag_bytes"].is_u64(), "{n}");
        assert!(n["replay_lag_seconds"].is_number(), "{n}");
    }
    for r in ["replica1", "replica2"] {
        let state = node(&view, r)["sync_state"].as_str().unwrap();
        assert!(["sync", "quorum", "potential"].contains(&state), "{r} sync_state {state}");
    }
    assert!(node(&view, "primary")["sync_state"].is_null());
    assert_eq!(view["sync_mode"], "sync");
    assert_eq!(view["failovers"], 0);
    let pool = &view["pool"];
    let (size, available, waiting) =
        (pool["size"].as_u64().unwrap(), pool["available"].as_u64().unwrap(), pool["waiting"].as_u64().unwrap());
    assert!((1..=40).contains(&size), "pool {pool}");
    assert!(available <= size, "pool {pool}");
    assert_eq!(waiting, 0, "pool {pool}");

    // Who may look and promote.
    for (who, session) in [("customer", &alice), ("branch admin", &admin)] {
        session.get("/v1/dba/cluster").await.assert_problem(403, "forbidden");
        let r = session.post("/v1/dba/promote", json!({"node": "replica1"}), None).await;
        assert_eq!(r.status, 403, "{who} promote: {}", r.body);
        r.assert_problem(403, "forbidden");
    }
    stack.anon().get("/v1/dba/cluster").await.assert_problem(401, "unauthenticated");
    stack.anon().post("/v1/dba/promote", json!({"node": "replica1"}), None).await.assert_problem(401, "unauthenticated");

    // What may be promoted.
    dba.post("/v1/dba/promote", json!({"node": "replica9"}), None).await.assert_problem(404, "not_found");
    dba.post("/v1/dba/promote", json!({"node": "primary"}), None).await.assert_problem(400, "validation_failed");
    dba.post_raw("/v1/dba/promote", b"{\"node\": ".to_vec(), None).await.assert_problem(400, "validation_failed");
    dba.post_raw("/v1/dba/promote", b"not json".to_vec(), None).await.assert_problem(400, "validation_failed");
    dba.post("/v1/dba/promote", json!({"node": 1}), None).await.assert_problem(400, "validation_failed");
    dba.post("/v1/dba/promote", json!({}), None).await.assert_problem(400, "validation_failed");
    // Unknown fields are refused before the node is even looked up.
    dba.post("/v1/dba/promote", json!({"node": "replica9", "forced": true}), None)
        .await
        .assert_problem(400, "validation_failed");
    dba.post("/v1/dba/promote", json!({"node": "replica1", "force": "yes"}), None)
        .await
        .assert_problem(400, "validation_failed");
    // With the primary alive, no replica's position is final: promoting one
    // could lose what the primary acknowledges next. Refused without force.
    let unsafe_promotion = dba.post("/v1/dba/promote", json!({"node": "replica1"}), None).await;
    unsafe_promotion.assert_problem(409, "promotion_unsafe");
    let detail = unsafe_promotion.body["detail"].as_str().unwrap();
    assert!(detail.contains("still streams from the primary"), "{detail}");

    // Nothing of that changed the cluster.
    let after = cluster_view(&dba).await;
    let roles: Vec<&str> = after["nodes"].as_array().unwrap().iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["primary", "replica", "replica"], "{after}");
    assert_eq!(after["failovers"], 0);
    for r in ["replica1", "replica2"] {
        let db = stack.superuser(r).await;
        assert!(db.query_one("SELECT pg_is_in_recovery()", &[]).await.unwrap().get::<_, bool>(0), "{r} was promoted");
    }
}
