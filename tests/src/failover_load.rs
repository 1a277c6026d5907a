//! Money moving while the cluster fails: customers with funded accounts,
//! clients that retry a failed transfer with the same Idempotency-Key as a
//! real client would, the record of what was acknowledged, and the checks
//! afterwards. Also the real signals the failover tests send to PostgreSQL
//! processes (by pid, only to processes of the test's own cluster).

use std::{
    collections::HashMap,
    sync::{atomic::AtomicUsize, Arc, Mutex},
    time::{Duration, Instant},
};

use flexibank_server::seed;
use rand::{seq::SliceRandom, Rng};
use uuid::Uuid;

use crate::{json, Session, StackOptions, TestStack};

/// A stack for failover tests: `replicas` synchronous replicas, automatic
/// failover on or off, and a 5 s request timeout (clients retry sooner).
pub fn failover_options(replicas: usize, auto_failover: bool) -> StackOptions {
    StackOptions {
        replicas,
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

#[derive(Default)]
pub struct Load {
    /// Idempotency key → transfer id, for every acknowledged (201) transfer.
    pub acknowledged: Mutex<HashMap<String, Uuid>>,
    /// Keys whose outcome no client ever learned (still failing at the end).
    pub unknown: Mutex<Vec<String>>,
    /// Time from `mark` to the first write sent after it and accepted.
    pub first_write_after_mark: Mutex<Option<Duration>>,
    pub marked_at: Mutex<Option<Instant>>,
    pub unavailable: AtomicUsize,
    /// Writes accepted after `mark`.
    pub accepted_after_mark: AtomicUsize,
    /// Ends the load before its deadline.
    pub stopped: std::sync::atomic::AtomicBool,
}

impl Load {
    /// Starts timing "writes again" from now (a kill, a return).
    pub fn mark(&self) {
        *self.marked_at.lock().unwrap() = Some(Instant::now());
        *self.first_write_after_mark.lock().unwrap() = None;
        self.accepted_after_mark
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn acknowledged_ids(&self) -> Vec<Uuid> {
        self.acknowledged
            .lock()
            .unwrap()
            .values()
            .copied()
            .collect()
    }
}

/// Each load client's session and accounts (id, number).
pub type Customers = Arc<Vec<(Session, Vec<(Uuid, String)>)>>;

/// Four customers (`{prefix}0`…), four funded accounts each, logged in.
pub async fn customers(stack: &TestStack, prefix: &str) -> Customers {
    let state = &stack.server().state;
    let admin = stack.login("admin").await;
    let admin_id: Uuid = admin.get("/v1/auth/session").await.body["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let branch = stack.user("admin").branch_id.unwrap();
    let mut customers = Vec::new();
    for c in 0..4 {
        let username = format!("{prefix}{c}");
        let (user_id, secret) = seed::create_enrolled_user(
            state,
            &username,
            "Failover Client",
            "customer",
            Some(branch),
            "failover password",
        )
        .await
        .unwrap();
        let mut accounts = Vec::new();
        for _ in 0..4 {
            let (id, number) = seed::open_account(state, branch, &[user_id], "savings", "INR")
                .await
                .unwrap();
            seed::seed_movement(
                state,
                admin_id,
                "branch_admin",
                "deposit",
                id,
                None,
                "100000.00",
                "float",
            )
            .await
            .unwrap();
            accounts.push((id, number));
        }
        customers.push((
            stack
                .login_with(&username, "failover password", &secret)
                .await,
            accounts,
        ));
    }
    Arc::new(customers)
}

/// `clients` clients move money until `stop`, each retrying a failed request
/// with the same Idempotency-Key; client `i` uses `sessions(i)`'s session.
pub fn start_load(
    customers: Customers,
    clients: usize,
    load: Arc<Load>,
    stop: Instant,
) -> Vec<tokio::task::JoinHandle<()>> {
    let numbers: Vec<String> = customers
        .iter()
        .flat_map(|(_, a)| a.iter().map(|x| x.1.clone()))
        .collect();
    (0..clients)
        .map(|client| {
            let (customers, load, numbers) = (customers.clone(), load.clone(), numbers.clone());
            tokio::spawn(async move {
                let (session, accounts) = &customers[client % customers.len()];
                let over = || Instant::now() >= stop || load.stopped.load(std::sync::atomic::Ordering::Relaxed);
                while !over() {
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
                                if let Some(marked) = *load.marked_at.lock().unwrap() {
                                    if sent_at > marked {
                                        load.accepted_after_mark.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                        let mut first = load.first_write_after_mark.lock().unwrap();
                                        if first.is_none() {
                                            *first = Some(marked.elapsed());
                                        }
                                    }
                                }
                                break;
                            }
                            503 | 429 | 409 if response.code() != "insufficient_funds" => {
                                load.unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                if over() {
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

/// Every acknowledged transfer is in the ledger exactly once (ids are
/// primary keys), nothing beyond those and the ones of unknown outcome was
/// applied, and the ledger's invariants hold.
pub async fn assert_nothing_lost(stack: &TestStack, load: &Load, prefix: &str) {
    let acknowledged = load.acknowledged_ids();
    let db = stack.superuser(&stack.primary_name()).await;
    let found: i64 = db
        .query_one(
            "SELECT count(*) FROM transfers WHERE id = ANY($1)",
            &[&acknowledged],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        found as usize,
        acknowledged.len(),
        "acknowledged transfers are missing after the failover"
    );
    let users: Vec<String> = (0..4).map(|c| format!("{prefix}{c}")).collect();
    let in_ledger: i64 = db
        .query_one("SELECT count(*) FROM transfers t JOIN users u ON u.id = t.created_by WHERE u.username = ANY($1)", &[&users])
        .await
        .unwrap()
        .get(0);
    let unknown = load.unknown.lock().unwrap().len();
    assert!(
        in_ledger as usize >= acknowledged.len()
            && in_ledger as usize <= acknowledged.len() + unknown,
        "ledger holds {in_ledger} transfers; {} acknowledged, {unknown} of unknown outcome",
        acknowledged.len()
    );
    stack.assert_ledger_invariants().await;
}

/// SIGKILL of a node's postmaster (its backends die with it).
pub fn kill_postmaster(stack: &TestStack, node: &str) {
    let pid = stack
        .cluster
        .0
        .postmaster_pid(node)
        .expect("postmaster running");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

/// The processes of one node: its postmaster's children, by what
/// PostgreSQL calls them in their command line.
fn children(postmaster: i32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The parent pid is the second field after the ")" closing the name.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if parent == Some(postmaster) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// Processes stopped with SIGSTOP, continued (SIGCONT) by `resume` or on drop.
pub struct Stopped(Vec<i32>);

impl Stopped {
    pub fn resume(mut self) {
        self.continue_all();
    }

    fn continue_all(&mut self) {
        for pid in self.0.drain(..).rev() {
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        self.continue_all();
    }
}

fn stop(pids: Vec<i32>) -> Stopped {
    for &pid in &pids {
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGSTOP) },
            0,
            "SIGSTOP {pid}"
        );
    }
    Stopped(pids)
}

/// Holds back a replica's WAL receiver: the primary's commits are then
/// acknowledged by the other standbys alone.
pub fn hold_wal_receiver(stack: &TestStack, node: &str) -> Stopped {
    let postmaster = stack
        .cluster
        .0
        .postmaster_pid(node)
        .expect("postmaster running");
    let receivers: Vec<i32> = children(postmaster)
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("walreceiver"))
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(receivers.len(), 1, "{node} has one WAL receiver");
    stop(receivers)
}

/// Cuts every client off a node while its WAL receiver and recovery go on:
/// the postmaster (no new connections) and each client backend (existing
/// connections hang) are stopped.
pub fn cut_off_clients(stack: &TestStack, node: &str) -> Stopped {
    let postmaster = stack
        .cluster
        .0
        .postmaster_pid(node)
        .expect("postmaster running");
    let mut pids = vec![postmaster];
    // Client backends show their client's address; background processes do not.
    pids.extend(
        children(postmaster)
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("127.0.0.1("))
            .map(|(pid, _)| pid),
    );
    stop(pids)
}

/// Cuts a node off entirely: postmaster and every child.
pub fn freeze_node(stack: &TestStack, node: &str) -> Stopped {
    let postmaster = stack
        .cluster
        .0
        .postmaster_pid(node)
        .expect("postmaster running");
    let mut pids = vec![postmaster];
    pids.extend(children(postmaster).into_iter().map(|(pid, _)| pid));
    stop(pids)
}
