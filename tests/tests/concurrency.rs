//! Many clients at once: money is never lost, created or moved twice.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use flexibank_server::seed;
use flexibank_tests::{json, Session, StackOptions, TestStack};
use rand::{seq::SliceRandom, Rng};
use uuid::Uuid;

const CLIENTS: usize = 32;
const CUSTOMERS: usize = 4;
const ACCOUNTS_PER_CUSTOMER: usize = 5;
const RUN_FOR: Duration = Duration::from_secs(10);

struct Customer {
    session: Session,
    accounts: Vec<(Uuid, String)>,
}

#[derive(Default, Debug)]
struct Tally {
    committed: Vec<Uuid>,
    insufficient: usize,
    throttled: usize,
    unexpected: Vec<String>,
}

async fn admin_id(stack: &TestStack) -> Uuid {
    let session = stack.anon().with_token(&stack.login("admin").await.token.unwrap()).get("/v1/auth/session").await;
    session.body["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_clients_keep_the_ledger_whole() {
    // Three group-commit workers rather than the default one: groups then run
    // side by side, on disjoint accounts, next to the single path's movements.
    let options = StackOptions { configure: |c| c.database.group_commit_workers = 3, ..Default::default() };
    let stack = TestStack::start_with("concurrency", options).await;
    let state = &stack.server().state;
    let admin_id = admin_id(&stack).await;
    let branch = stack.user("admin").branch_id.unwrap();

    let mut customers = Vec::new();
    for c in 0..CUSTOMERS {
        let username = format!("load{c}");
        let password = "load test password".to_string();
        let (user_id, secret) = seed::create_enrolled_user(state, &username, &format!("Load {c}"), "customer", Some(branch), &password).await.unwrap();
        let mut accounts = Vec::new();
        for _ in 0..ACCOUNTS_PER_CUSTOMER {
            let (id, number) = seed::open_account(state, branch, &[user_id], "savings", "INR").await.unwrap();
            seed::seed_movement(state, admin_id, "branch_admin", "deposit", id, None, "1000.00", "float").await.unwrap();
            accounts.push((id, number));
        }
        let session = stack.login_with(&username, &password, &secret).await;
        customers.push(Customer { session, accounts });
    }
    let customers = Arc::new(customers);
    let all_numbers: Arc<Vec<String>> = Arc::new(customers.iter().flat_map(|c| c.accounts.iter().map(|a| a.1.clone())).collect());
    assert_eq!(all_numbers.len(), 20);

    let deadline = Instant::now() + RUN_FOR;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let customers = customers.clone();
        let all_numbers = all_numbers.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let customer = &customers[client % CUSTOMERS];
            while Instant::now() < deadline {
                let (from_id, from_number, amount, roll) = {
                    let mut rng = rand::thread_rng();
                    let (id, number) = customer.accounts.choose(&mut rng).unwrap().clone();
                    let cents: u32 = rng.gen_range(1..=30_000);
                    (id, number, format!("{}.{:02}", cents / 100, cents % 100), rng.gen_range(0..10))
                };
                let response = match roll {
                    0 => customer.session.post_money("/v1/deposits", json!({"account_id": from_id, "amount": amount})).await,
                    1 => customer.session.post_money("/v1/withdrawals", json!({"account_id": from_id, "amount": amount})).await,
                    _ => {
                        let to = loop {
                            let candidate = all_numbers.choose(&mut rand::thread_rng()).unwrap().clone();
                            if candidate != from_number {
                                break candidate;
                            }
                        };
                        customer
                            .session
                            .post_money("/v1/transfers", json!({"from_account_id": from_id, "to_account_number": to, "amount": amount}))
                            .await
                    }
                };
                match (response.status, response.code()) {
                    (201, _) => tally.committed.push(response.body["id"].as_str().unwrap().parse().unwrap()),
                    (409, "insufficient_funds") => tally.insufficient += 1,
                    (429, "rate_limited") => tally.throttled += 1,
                    (status, _) => tally.unexpected.push(format!("{status} {}", response.body)),
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.unwrap();
        total.committed.extend(tally.committed);
        total.insufficient += tally.insufficient;
        total.throttled += tally.throttled;
        total.unexpected.extend(tally.unexpected);
    }
    println!(
        "{CLIENTS} clients, {:?}: {} committed, {} insufficient_funds, {} throttled",
        RUN_FOR, total.committed.len(), total.insufficient, total.throttled
    );
    assert!(total.unexpected.is_empty(), "unexpected answers: {:?}", &total.unexpected[..total.unexpected.len().min(5)]);
    assert!(total.committed.len() > 100, "too little got through: {}", total.committed.len());
    assert!(
        total.throttled * 20 <= total.committed.len(),
        "more than 5% gave up on contention: {} throttled, {} committed",
        total.throttled,
        total.committed.len()
    );

    // Every acknowledged movement is in the ledger exactly once.
    let unique: HashSet<Uuid> = total.committed.iter().copied().collect();
    assert_eq!(unique.len(), total.committed.len(), "one transfer id acknowledged twice");
    let db = stack.superuser("primary").await;
    let ids: Vec<Uuid> = unique.into_iter().collect();
    let found: i64 = db.query_one("SELECT count(*) FROM transfers WHERE id = ANY($1)", &[&ids]).await.unwrap().get(0);
    assert_eq!(found as usize, ids.len(), "acknowledged transfers missing from the ledger");
    let load_users: Vec<String> = (0..CUSTOMERS).map(|c| format!("load{c}")).collect();
    let made: i64 = db
        .query_one("SELECT count(*) FROM transfers t JOIN users u ON u.id = t.created_by WHERE u.username = ANY($1)", &[&load_users])
        .await
        .unwrap()
        .get(0);
    assert_eq!(made as usize, ids.len(), "the ledger holds movements nobody was told about");
    stack.assert_ledger_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_requests_with_one_key_move_money_once() {
    let stack = TestStack::start("idem-race").await;
    let alice = stack.login("alice").await;
    let from = stack.account_id(&stack.user("alice").account_numbers[0]).await;
    let to = stack.user("bob").account_numbers[0].clone();
    for round in 0..10 {
        let key = format!("race-{round}-{}", Uuid::now_v7());
        let memo = format!("race {round}");
        let body = json!({"from_account_id": from, "to_account_number": to, "amount": "7.00", "memo": memo});
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (alice, body, key) = (alice.clone(), body.clone(), key.clone());
                tokio::spawn(async move { alice.post("/v1/transfers", body, Some(&key)).await })
            })
            .collect();
        let mut created = 0;
        let mut transfer_ids = HashSet::new();
        for racer in racers {
            let response = racer.await.unwrap();
            match (response.status, response.code()) {
                (201, _) => {
                    created += 1;
                    transfer_ids.insert(response.body["id"].as_str().unwrap().to_string());
                }
                (409, "idempotency_in_progress") => {}
                other => panic!("unexpected answer to a racing request: {other:?} {}", response.body),
            }
        }
        assert!(created >= 1, "one of the racers must win");
        assert_eq!(transfer_ids.len(), 1, "all 201s describe the same transfer");
        let db = stack.superuser("primary").await;
        let moved: i64 = db.query_one("SELECT count(*) FROM transfers WHERE memo = $1", &[&memo]).await.unwrap().get(0);
        assert_eq!(moved, 1, "round {round}: money moved {moved} times");
        // After the race, the key replays.
        let replay = alice.post("/v1/transfers", body, Some(&key)).await;
        assert_eq!((replay.status, replay.header("idempotent-replayed")), (201, Some("true")));
    }
    stack.assert_ledger_invariants().await;
}

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Group commit (sql/V9): transfers that arrive together are applied in one
/// transaction, yet each gets the answer it would have got alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_transfers_each_get_their_own_answer() {
    let stack = TestStack::start("group-commit").await;
    let state = &stack.server().state;
    let admin_id = admin_id(&stack).await;
    let branch = stack.user("admin").branch_id.unwrap();
    let (payer_id, secret) = seed::create_enrolled_user(state, "grouppayer", "Group Payer", "customer", Some(branch), "group payer password").await.unwrap();
    let (source, source_number) = seed::open_account(state, branch, &[payer_id], "savings", "INR").await.unwrap();
    seed::seed_movement(state, admin_id, "branch_admin", "deposit", source, None, "100.00", "float").await.unwrap();
    let (_, sink_number) = seed::open_account(state, branch, &[payer_id], "savings", "INR").await.unwrap();
    let (frozen, frozen_number) = seed::open_account(state, branch, &[payer_id], "savings", "INR").await.unwrap();
    let (_, usd_number) = seed::open_account(state, branch, &[payer_id], "savings", "USD").await.unwrap();
    let db = stack.superuser("primary").await;
    db.execute("UPDATE accounts SET status = 'frozen' WHERE id = $1", &[&frozen]).await.unwrap();
    let payer = Arc::new(stack.login_with("grouppayer", "group payer password", &secret).await);
    let alice_account = stack.account_id(&stack.user("alice").account_numbers[0]).await;
    let metrics_before = stack.anon().get("/metrics").await.body.as_str().unwrap().to_string();

    // 40 transfers of 10.00 out of 100.00 at once, among refusals of every kind.
    let mut requests: Vec<(serde_json::Value, u16, &str)> = (0..40)
        .map(|_| (json!({"from_account_id": source, "to_account_number": sink_number, "amount": "10.00"}), 0, "funds"))
        .collect();
    requests.extend([
        (json!({"from_account_id": source, "to_account_number": "9999999999", "amount": "1.00"}), 404, "not_found"),
        (json!({"from_account_id": source, "to_account_number": source_number, "amount": "1.00"}), 409, "same_account"),
        (json!({"from_account_id": alice_account, "to_account_number": sink_number, "amount": "1.00"}), 404, "not_found"),
        (json!({"from_account_id": source, "to_account_number": frozen_number, "amount": "1.00"}), 409, "account_inactive"),
        (json!({"from_account_id": source, "to_account_number": usd_number, "amount": "1.00"}), 409, "currency_mismatch"),
    ]);
    requests.shuffle(&mut rand::thread_rng());
    let mut tasks = Vec::new();
    for (body, status, code) in requests {
        let payer = payer.clone();
        tasks.push(tokio::spawn(async move {
            let key = Uuid::now_v7().to_string();
            let answer = payer.post("/v1/transfers", body.clone(), Some(&key)).await;
            (body, key, status, code, answer)
        }));
    }
    let mut balances_after = Vec::new();
    let mut committed = Vec::new();
    for task in tasks {
        let (body, key, status, code, answer) = task.await.unwrap();
        if code == "funds" {
            match answer.status {
                201 => {
                    balances_after.push(answer.body["balance_after"].as_str().unwrap().to_string());
                    committed.push((body, key, answer.body));
                }
                _ => {
                    // Refused only once the ten before it had emptied the account.
                    answer.assert_problem(409, "insufficient_funds");
                    assert_eq!(answer.body["detail"], format!("account {source_number} holds 0.00 INR"), "{}", answer.body);
                }
            }
        } else {
            answer.assert_problem(status, code);
        }
    }
    // Exactly ten fit, each saw the balance the ones before it left.
    balances_after.sort_by_key(|b| b.parse::<rust_decimal::Decimal>().unwrap());
    let expected: Vec<String> = (0..10).map(|i| format!("{}.00", i * 10)).collect();
    assert_eq!(balances_after, expected);

    // They really went through groups.
    let metrics = stack.anon().get("/metrics").await.body.as_str().unwrap().to_string();
    let grouped = metric_sum(&metrics, "flexibank_group_commit_items_sum") - metric_sum(&metrics_before, "flexibank_group_commit_items_sum");
    let groups = metric_sum(&metrics, "flexibank_group_commit_items_count") - metric_sum(&metrics_before, "flexibank_group_commit_items_count");
    assert!(grouped >= 45.0 && groups < grouped, "{grouped} transfers in {groups} groups");

    // A repeat is answered from the first response, even while new transfers
    // are grouped around it. With money on the account again it passes every
    // check, so its group fails on the existing key and its requests go one
    // by one.
    seed::seed_movement(state, admin_id, "branch_admin", "deposit", source, None, "50.00", "float").await.unwrap();
    let mut repeats = Vec::new();
    for (body, key, first) in committed.iter().take(5).cloned() {
        let payer = payer.clone();
        repeats.push(tokio::spawn(async move { (payer.post("/v1/transfers", body, Some(&key)).await, first) }));
    }
    let sink = Uuid::now_v7().to_string();
    let fresh = payer.post("/v1/transfers", json!({"from_account_id": source, "to_account_number": sink_number, "amount": "0.01"}), Some(&sink)).await;
    assert_eq!(fresh.status, 201, "{}", fresh.body);
    for repeat in repeats {
        let (answer, first) = repeat.await.unwrap();
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.body, first, "a repeat gets the first answer");
    }
    let moved: i64 = db.query_one("SELECT count(*) FROM transfers WHERE from_account_id = $1", &[&source]).await.unwrap().get(0);
    assert_eq!(moved, 11, "eleven transfers, each once");
    let audited: i64 = db
        .query_one("SELECT count(*) FROM audit_log WHERE action = 'money.transfer' AND actor_id = $1", &[&payer_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 11, "one audit row per transfer");
    let metrics = stack.anon().get("/metrics").await.body.as_str().unwrap().to_string();
    assert!(metric_sum(&metrics, "flexibank_group_commit_fallbacks_total") >= 1.0, "the repeats' group fell back");
    stack.assert_ledger_invariants().await;
}
