//! Losing the primary under load: `kill -9` its postmaster while 16 clients
//! move money, promote a replica (by the DBA endpoint, or automatically),
//! and check that nothing acknowledged was lost or applied twice; then the
//! old primary comes back fenced and is rewound into a replica.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flexibank_server::seed;
use flexibank_tests::{eventually, json, Session, StackOptions, TestStack};
use rand::{seq::SliceRandom, Rng};
use uuid::Uuid;

const CLIENTS: usize = 16;

#[derive(Default)]
struct Load {
    /// Idempotency key → transfer id, for every acknowledged (201) transfer.
    acknowledged: Mutex<HashMap<String, Uuid>>,
    /// Keys whose outcome no client ever learned (still failing at the end).
    unknown: Mutex<Vec<String>>,
    first_write_after_kill: Mutex<Option<Duration>>,
    killed_at: Mutex<Option<Instant>>,
    unavailable: std::sync::atomic::AtomicUsize,
}

async fn setup(stack: &TestStack) -> Vec<(Session, Vec<(Uuid, String)>)> {
    let state = &stack.server().state;
    let admin = stack.login("admin").await;
    let admin_id: Uuid = admin.get("/v1/auth/session").await.body["id"].as_str().unwrap().parse().unwrap();
    let branch = stack.user("admin").branch_id.unwrap();
    let mut customers = Vec::new();
    for c in 0..4 {
        let username = format!("fo{c}");
        let (user_id, secret) = seed::create_enrolled_user(state, &username, "Failover Client", "customer", Some(branch), "failover password").await.unwrap();
        let mut accounts = Vec::new();
        for _ in 0..4 {
            let (id, number) = seed::open_account(state, branch, &[user_id], "savings", "INR").await.unwrap();
            seed::seed_movement(state, admin_id, "branch_admin", "deposit", id, None, "100000.00", "float").await.unwrap();
            accounts.push((id, number));
        }
        customers.push((stack.login_with(&username, "failover password", &secret).await, accounts));
    }
    customers
}

/// Each load client's session and accounts (id, number).
type Customers = Arc<Vec<(Session, Vec<(Uuid, String)>)>>;

/// Each client moves money until `stop`, retrying a failed request with the
/// same Idempotency-Key, as a real client would.
fn start_load(customers: Customers, load: Arc<Load>, stop: Instant) -> Vec<tokio::task::JoinHandle<()>> {
    let numbers: Vec<String> = customers.iter().flat_map(|(_, a)| a.iter().map(|x| x.1.clone())).collect();
    (0..CLIENTS)
        .map(|client| {
            let (customers, load, numbers) = (customers.clone(), load.clone(), numbers.clone());
            tokio::spawn(async move {
                let (session, accounts) = &customers[client % customers.len()];
                while Instant::now() < stop {
                    let key = Uuid::now_v7().to_string();
                    let body = {
                        let mut rng = rand::thread_rng();
                        let from = accounts.choose(&mut rng).unwrap();
                        let to = numbers.iter().filter(|n| **n != from.1).collect::<Vec<_>>().choose(&mut rng).unwrap().to_string();
                        json!({"from_account_id": from.0, "to_account_number": to, "amount": format!("{}.{:02}", rng.gen_range(1..50), rng.gen_range(0..100))})
                    };
                    loop {
                        let sent_at = Instant::now();
                        let response = session.post("/v1/transfers", body.clone(), Some(&key)).await;
                        match response.status {
                            201 => {
                                let id = response.body["id"].as_str().unwrap().parse().unwrap();
                                load.acknowledged.lock().unwrap().insert(key.clone(), id);
                                if let Some(killed) = *load.killed_at.lock().unwrap() {
                                    if sent_at > killed {
                                        let mut first = load.first_write_after_kill.lock().unwrap();
                                        if first.is_none() {
                                            *first = Some(killed.elapsed());
                                        }
                                    }
                                }
                                break;
                            }
                            503 | 429 | 409 if response.code() != "insufficient_funds" => {
                                load.unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                if Instant::now() >= stop {
                                    load.unknown.lock().unwrap().push(key.clone());
                                    break;
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            409 => break,
                            other => panic!("unexpected answer during failover: {other} {}", response.body),
                        }
                    }
                }
            })
        })
        .collect()
}

fn kill_postmaster(stack: &TestStack, node: &str) {
    let pid = stack.cluster.0.postmaster_pid(node).expect("postmaster running");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

async fn assert_nothing_lost(stack: &TestStack, load: &Load) {
    let acknowledged: Vec<Uuid> = load.acknowledged.lock().unwrap().values().copied().collect();
    let db = stack.superuser(&stack.primary_name()).await;
    let found: i64 = db.query_one("SELECT count(*) FROM transfers WHERE id = ANY($1)", &[&acknowledged]).await.unwrap().get(0);
    assert_eq!(found as usize, acknowledged.len(), "acknowledged transfers are missing after the failover");
    let users: Vec<String> = (0..4).map(|c| format!("fo{c}")).collect();
    let in_ledger: i64 = db
        .query_one("SELECT count(*) FROM transfers t JOIN users u ON u.id = t.created_by WHERE u.username = ANY($1)", &[&users])
        .await
        .unwrap()
        .get(0);
    let unknown = load.unknown.lock().unwrap().len();
    assert!(
        in_ledger as usize >= acknowledged.len() && in_ledger as usize <= acknowledged.len() + unknown,
        "ledger holds {in_ledger} transfers; {} acknowledged, {unknown} of unknown outcome",
        acknowledged.len()
    );
    stack.assert_ledger_invariants().await;
}

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

fn options(auto_failover: bool) -> StackOptions {
    StackOptions {
        replicas: 2,
        configure: if auto_failover {
            |c| {
                c.database.auto_failover = true;
                c.server.request_timeout_ms = 5_000;
            }
        } else {
            |c| c.server.request_timeout_ms = 5_000
        },
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dba_promotes_after_primary_is_killed_then_old_primary_is_fenced_and_rejoined() {
    let stack = TestStack::start_with("failover-manual", options(false)).await;
    let customers = Arc::new(setup(&stack).await);
    let dba = stack.login("dba").await;
    let load = Arc::new(Load::default());
    let stop = Instant::now() + Duration::from_secs(12);
    let clients = start_load(customers.clone(), load.clone(), stop);

    tokio::time::sleep(Duration::from_secs(2)).await;
    *load.killed_at.lock().unwrap() = Some(Instant::now());
    kill_postmaster(&stack, "primary");

    // The DBA sees the primary go, and promotes replica1.
    eventually(Duration::from_secs(5), "the pool to see the primary gone", || async {
        let view = dba.get("/v1/dba/cluster").await;
        (view.body["nodes"][0]["role"] == "unreachable").then_some(())
    })
    .await;
    let promoted = dba.post("/v1/dba/promote", json!({"node": "replica1"}), None).await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    for task in clients {
        task.await.unwrap();
    }
    let kill_to_write = load.first_write_after_kill.lock().unwrap().expect("writes resumed after the promotion");
    println!(
        "manual promotion: kill to first accepted write {:.2} s; {} acknowledged; {} 503/429 answers",
        kill_to_write.as_secs_f64(),
        load.acknowledged.lock().unwrap().len(),
        load.unavailable.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(stack.primary_name(), "replica1");
    assert_nothing_lost(&stack, &load).await;
    assert_survivor_follows(&stack, "replica1", "replica2").await;
    let audit = dba.get("/v1/dba/audit?action=dba.promote").await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 1, "{}", audit.body);

    // The old primary comes back on the old timeline: fenced, never written to.
    stack.cluster.0.start_node("primary").await.unwrap();
    eventually(Duration::from_secs(10), "the old primary to be reported fenced", || async {
        let view = dba.get("/v1/dba/cluster").await;
        (view.body["nodes"][0]["role"] == "fenced").then_some(())
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

    // Rewind it into a replica of the new primary; then it serves reads again.
    stack.cluster.0.rejoin("primary").await.unwrap();
    eventually(Duration::from_secs(15), "the old primary to rejoin as a replica", || async {
        let view = dba.get("/v1/dba/cluster").await;
        (view.body["nodes"][0]["role"] == "replica").then_some(())
    })
    .await;
    assert_survivor_follows(&stack, "replica1", "primary").await;
    let rejoined = stack.superuser("primary").await;
    eventually(Duration::from_secs(5), "the post-failover write on the rejoined node", || async {
        let n: i64 = rejoined.query_one("SELECT count(*) FROM transfers WHERE memo = 'after fencing'", &[]).await.unwrap().get(0);
        (n == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn automatic_failover_after_primary_is_killed_loses_nothing() {
    let stack = TestStack::start_with("failover-auto", options(true)).await;
    let customers = Arc::new(setup(&stack).await);
    let load = Arc::new(Load::default());
    let stop = Instant::now() + Duration::from_secs(10);
    let clients = start_load(customers.clone(), load.clone(), stop);
    tokio::time::sleep(Duration::from_secs(2)).await;
    *load.killed_at.lock().unwrap() = Some(Instant::now());
    kill_postmaster(&stack, "primary");
    for task in clients {
        task.await.unwrap();
    }
    let kill_to_write = load.first_write_after_kill.lock().unwrap().expect("writes resumed after automatic promotion");
    println!(
        "automatic promotion: kill to first accepted write {:.2} s; {} acknowledged; {} 503/429 answers",
        kill_to_write.as_secs_f64(),
        load.acknowledged.lock().unwrap().len(),
        load.unavailable.load(std::sync::atomic::Ordering::Relaxed)
    );
    let new_primary = stack.primary_name();
    assert_ne!(new_primary, "primary");
    assert_eq!(stack.server().state.db.pool.failovers(), 1, "exactly one promotion");
    assert_nothing_lost(&stack, &load).await;
    let survivor = if new_primary == "replica1" { "replica2" } else { "replica1" };
    assert_survivor_follows(&stack, &new_primary, survivor).await;
}
