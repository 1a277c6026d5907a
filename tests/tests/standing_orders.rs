//! Standing orders (issue 18, the contract's "Standing orders") against the
//! real server and database: the schedule's calendar rules, bad input,
//! pausing, the retry of a run refused for funds; and the faults — two server
//! processes, a SIGKILL, all servers down, a primary killed and a replica
//! promoted — after which every due date ran exactly once.

use std::{collections::BTreeSet, time::Duration};

use flexibank_tests::{consortium::BankProcess, eventually, failover_load::kill_postmaster, json, Session, StackOptions, TestStack};
use rust_decimal::Decimal;
use uuid::Uuid;

fn fast_orders(config: &mut flexibank_server::Config) {
    config.standing_orders.allow_seconds = true;
    config.standing_orders.poll_interval_ms = 200;
    config.standing_orders.retry_after_s = 2;
}

const FAST: StackOptions = StackOptions {
    replicas: 1,
    sync: true,
    configure: fast_orders,
};

fn dec(value: &serde_json::Value) -> Decimal {
    value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}")).parse().unwrap()
}

async fn balance(session: &Session, account_id: &str) -> Decimal {
    let r = session.get(&format!("/v1/accounts/{account_id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    dec(&r.body["balance"])
}

fn every_seconds(from: &str, to: &str, amount: &str, seconds: i32, memo: &str) -> serde_json::Value {
    let today = chrono::Utc::now().date_naive();
    json!({"from_account_id": from, "to": {"account_number": to}, "amount": amount, "memo": memo,
           "schedule": {"every": "second", "interval": seconds, "time": "00:00"}, "start_at": today.to_string()})
}

async fn runs(session: &Session, order_id: &str) -> Vec<serde_json::Value> {
    let r = session.get(&format!("/v1/standing-orders/{order_id}/runs")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_run_on_their_calendar_pause_retry_once_and_refuse_bad_input() {
    let stack = TestStack::start_with("standing-orders", FAST).await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;
    let alice_inr = stack.account_id(&stack.user("alice").account_numbers[0]).await.to_string();
    let alice_usd = stack.account_id(&stack.user("alice").account_numbers[1]).await.to_string();
    let bob_inr = stack.account_id(&stack.user("bob").account_numbers[0]).await.to_string();
    let (alice_number, bob_number) = (stack.user("alice").account_numbers[0].clone(), stack.user("bob").account_numbers[0].clone());
    let today = chrono::Utc::now().date_naive();
    let monthly = |start: chrono::NaiveDate| {
        json!({"from_account_id": alice_inr, "to": {"account_number": bob_number}, "amount": "10.00",
               "schedule": {"every": "month", "interval": 1, "time": "09:00"}, "start_at": start.to_string()})
    };

    // Bad input: a clear error, nothing created.
    let with = |patch: serde_json::Value| {
        let mut body = monthly(today);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for bad in [
        with(json!({"schedule": {"every": "hour", "interval": 1, "time": "09:00"}})),
        with(json!({"schedule": {"every": "day", "interval": 0, "time": "09:00"}})),
        with(json!({"schedule": {"every": "day", "interval": 1, "time": "24:00"}})),
        with(json!({"schedule": {"every": "day", "interval": 1, "time": "9:00"}})),
        with(json!({"start_at": (today - chrono::Duration::days(2)).to_string()})),
        with(json!({"start_at": (today + chrono::Duration::days(400)).to_string()})),
        with(json!({"end_at": (today - chrono::Duration::days(1)).to_string()})),
        with(json!({"amount": "0"})),
        with(json!({"to": {"key": {"type": "random", "value": "not-a-uuid"}}})),
        with(json!({"to": {"account_number": bob_number, "key": {"type": "random", "value": Uuid::new_v4()}}})),
        with(json!({"start_at": "2026-02-30"})),
    ] {
        alice
            .post_money("/v1/standing-orders", bad.clone())
            .await
            .assert_problem(400, "validation_failed");
    }
    // A wrong unit is told the published ones, not the test-only `second` (which this stack allows).
    let refused = alice
        .post_money("/v1/standing-orders", with(json!({"schedule": {"every": "hour", "interval": 1, "time": "09:00"}})))
        .await;
    refused.assert_problem(400, "validation_failed");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("schedule.every must be day, week or month, not \"hour\"") && !detail.contains("second"), "{detail}");
    // A key is paid through a consortium's switch: a bank outside one has none to ask.
    alice
        .post_money("/v1/standing-orders", with(json!({"to": {"key": {"type": "random", "value": Uuid::new_v4()}}})))
        .await
        .assert_problem(404, "not_found");
    alice
        .post_money("/v1/standing-orders", with(json!({"to": {"account_number": alice_number}})))
        .await
        .assert_problem(409, "same_account");
    alice
        .post_money("/v1/standing-orders", with(json!({"from_account_id": alice_usd})))
        .await
        .assert_problem(409, "currency_mismatch");
    alice
        .post_money("/v1/standing-orders", with(json!({"from_account_id": bob_inr})))
        .await
        .assert_problem(404, "not_found");
    alice
        .post_money("/v1/standing-orders", with(json!({"to": {"account_number": "99999999999"}})))
        .await
        .assert_problem(404, "not_found");
    alice
        .post("/v1/standing-orders", monthly(today), None)
        .await
        .assert_problem(428, "idempotency_key_required");
    assert_eq!(alice.get("/v1/standing-orders").await.body["items"], json!([]));

    // A monthly order on the 31st: next run at 09:00 local; a repeat with the same key is the same order.
    let start = (1..=31)
        .map(|d| today + chrono::Duration::days(d))
        .find(|d| chrono::Datelike::day(d) == 31)
        .unwrap();
    let key = Uuid::new_v4().to_string();
    let created = alice.post("/v1/standing-orders", monthly(start), Some(&key)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["next_run_at"],
        format!("{start}T09:00:00Z"),
        "UTC is alice's time zone: {}",
        created.body
    );
    let again = alice.post("/v1/standing-orders", monthly(start), Some(&key)).await;
    assert_eq!((again.status, again.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(again.body["id"], created.body["id"]);
    alice
        .post("/v1/standing-orders", monthly(today), Some(&key))
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(alice.get("/v1/standing-orders").await.body["items"].as_array().map(Vec::len), Some(1));

    // The calendar, from the database's own rule: the 31st becomes each month's last day; wall-clock
    // 09:00 in Berlin is 08:00Z before daylight saving starts (28 March 2027) and 07:00Z after.
    let db = stack.superuser(&stack.primary_name()).await;
    let due = |every: &'static str, start: &'static str, tz: &'static str, k: i32| {
        let db = &db;
        async move {
            let row = db
                .query_one(
                    "SELECT due_key, rfc3339(due_at) FROM standing_order_due($1::text, 1, $2::text::date, time '09:00', $3::text, now(), $4::int)",
                    &[&every, &start, &tz, &k],
                )
                .await
                .unwrap();
            (row.get::<_, String>(0), row.get::<_, String>(1))
        }
    };
    let mut month_ends = Vec::new();
    for k in 0..4 {
        month_ends.push(due("month", "2027-01-31", "UTC", k).await.0);
    }
    assert_eq!(month_ends, ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]);
    assert_eq!(due("month", "2028-01-31", "UTC", 1).await.0, "2028-02-29", "a leap year");
    assert_eq!(due("week", "2027-03-21", "Europe/Berlin", 0).await.1, "2027-03-21T08:00:00.000000Z");
    assert_eq!(due("week", "2027-03-21", "Europe/Berlin", 1).await.1, "2027-03-28T07:00:00.000000Z");

    // Every 2 s (the test schedule): it runs, each date once, each run one transfer.
    let before = balance(&alice, &alice_inr).await;
    let order = alice
        .post_money("/v1/standing-orders", every_seconds(&alice_inr, &bob_number, "1.00", 2, "rent"))
        .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let order_id = order.body["id"].as_str().unwrap().to_string();
    let seen = eventually(Duration::from_secs(20), "three runs", || async {
        let items = runs(&alice, &order_id).await;
        (items.len() >= 3).then_some(items)
    })
    .await;
    assert!(seen.iter().all(|r| r["status"] == "done" && r["transfer_id"].is_string()), "{seen:?}");

    // Paused: nothing runs; resumed: it goes on from the next date (the paused ones do not run).
    let paused = alice.patch(&format!("/v1/standing-orders/{order_id}"), json!({"paused": true})).await;
    assert_eq!((paused.status, paused.body["status"].as_str()), (200, Some("paused")), "{}", paused.body);
    stack.replicas_caught_up().await;
    let at_pause = runs(&alice, &order_id).await.len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stack.replicas_caught_up().await;
    let still = runs(&alice, &order_id).await.len();
    assert!(still <= at_pause + 1, "at most a run already under way when it paused: {at_pause} → {still}");
    let resumed = alice
        .patch(&format!("/v1/standing-orders/{order_id}"), json!({"paused": false, "amount": "2.00"}))
        .await;
    assert_eq!(
        (resumed.status, resumed.body["status"].as_str(), resumed.body["amount"].as_str()),
        (200, Some("active"), Some("2.00"))
    );
    let next = chrono::DateTime::parse_from_rfc3339(resumed.body["next_run_at"].as_str().unwrap()).unwrap();
    assert!(
        next > chrono::Utc::now() - chrono::Duration::seconds(1),
        "the dates passed while paused are skipped: {next}"
    );
    eventually(Duration::from_secs(20), "a run after resuming", || async {
        (runs(&alice, &order_id).await.len() > still).then_some(())
    })
    .await;

    // Cancelled: no more runs; it changes no more; cancelling again is no error.
    assert_eq!(alice.delete(&format!("/v1/standing-orders/{order_id}")).await.status, 204);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stack.replicas_caught_up().await;
    let final_runs = runs(&alice, &order_id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.replicas_caught_up().await;
    assert_eq!(runs(&alice, &order_id).await.len(), final_runs.len(), "a cancelled order runs no more");
    alice
        .patch(&format!("/v1/standing-orders/{order_id}"), json!({"amount": "3.00"}))
        .await
        .assert_problem(409, "order_ended");
    assert_eq!(alice.delete(&format!("/v1/standing-orders/{order_id}")).await.status, 204);
    bob.get(&format!("/v1/standing-orders/{order_id}/runs")).await.assert_problem(404, "not_found");
    // The money moved is exactly the runs' transfers, one each.
    let alice_inr_id: Uuid = alice_inr.parse().unwrap();
    let row = db
        .query_one(
            "SELECT count(*), coalesce(sum(amount), 0) FROM transfers WHERE memo = 'rent' AND from_account_id = $1",
            &[&alice_inr_id],
        )
        .await
        .unwrap();
    let (transfers, paid): (i64, Decimal) = (row.get(0), row.get(1));
    assert_eq!(transfers as usize, final_runs.len(), "one transfer per run");
    assert_eq!(before - balance(&alice, &alice_inr).await, paid, "the account paid exactly its runs' transfers");

    // Short of funds: refused, retried once later that day (2 s here), then done once money came in.
    let poor = stack.account_id(&stack.user("alice").account_numbers[2]).await.to_string();
    let poor_balance = balance(&alice, &poor).await;
    let amount = (poor_balance + Decimal::new(100, 2)).to_string();
    let short = alice
        .post_money("/v1/standing-orders", every_seconds(&poor, &bob_number, &amount, 300, "short"))
        .await;
    assert_eq!(short.status, 201, "{}", short.body);
    let short_id = short.body["id"].as_str().unwrap().to_string();
    let refused = eventually(Duration::from_secs(10), "the first attempt refused", || async {
        runs(&alice, &short_id).await.into_iter().find(|r| r["status"] == "retry")
    })
    .await;
    assert_eq!(refused["refusal_code"], "insufficient_funds");
    assert_eq!(
        alice.post_money("/v1/deposits", json!({"account_id": poor, "amount": "5.00"})).await.status,
        201
    );
    let retried = eventually(Duration::from_secs(10), "the retry", || async {
        runs(&alice, &short_id).await.into_iter().find(|r| r["status"] != "retry")
    })
    .await;
    assert_eq!((retried["status"].as_str(), retried["attempts"].as_i64()), (Some("done"), Some(2)), "{retried}");
    // And when the money never comes: skipped after the retry; the customer hears of both.
    let never = alice
        .post_money("/v1/standing-orders", every_seconds(&poor, &bob_number, "99999999.00", 300, "never"))
        .await;
    let never_id = never.body["id"].as_str().unwrap().to_string();
    let skipped = eventually(Duration::from_secs(15), "the run skipped", || async {
        runs(&alice, &never_id).await.into_iter().find(|r| r["status"] == "skipped")
    })
    .await;
    assert_eq!(
        (skipped["refusal_code"].as_str(), skipped["attempts"].as_i64()),
        (Some("insufficient_funds"), Some(2))
    );
    let notices = alice.get("/v1/notifications?limit=100").await.body["items"].as_array().unwrap().clone();
    let kinds: Vec<&str> = notices
        .iter()
        .filter(|n| n["payload"]["order_id"] == never_id.as_str())
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["standing_order.skipped", "standing_order.refused"], "newest first");
    stack.assert_ledger_invariants().await;
}

async fn runs_made(stack: &TestStack, order_id: Uuid) -> i64 {
    let db = stack.superuser(&stack.primary_name()).await;
    db.query_one("SELECT count(*) FROM standing_order_runs WHERE order_id = $1", &[&order_id]).await.unwrap().get(0)
}

fn fast_failover(config: &mut flexibank_server::Config) {
    fast_orders(config);
    config.database.auto_failover = true;
    config.server.request_timeout_ms = 5_000;
}

/// Every date of the order ran exactly once: the runs are exactly occurrences 0..next_k, each
/// done with its own transfer, and the account paid exactly that many amounts.
async fn assert_every_date_ran_once(stack: &TestStack, order_id: Uuid, account: Uuid, paid_before: Decimal) -> usize {
    let db = stack.superuser(&stack.primary_name()).await;
    let next_k: i32 = db
        .query_one("SELECT next_k FROM standing_orders WHERE id = $1", &[&order_id])
        .await
        .unwrap()
        .get(0);
    let expected: BTreeSet<String> = db
        .query(
            "SELECT (standing_order_due(o.every, o.every_n, o.start_on, o.time_of_day, o.time_zone, o.anchor_at, k)).due_key
               FROM standing_orders o, generate_series(0, $2 - 1) AS k WHERE o.id = $1",
            &[&order_id, &next_k],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let rows = db
        .query("SELECT due_key, status, transfer_id FROM standing_order_runs WHERE order_id = $1", &[&order_id])
        .await
        .unwrap();
    let ran: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ran, expected, "every date from the first to the last, none missing");
    assert!(rows.iter().all(|r| r.get::<_, String>(1) == "done"), "all done (the account had the money)");
    let transfers: BTreeSet<Uuid> = rows.iter().map(|r| r.get(2)).collect();
    assert_eq!(transfers.len(), rows.len(), "one transfer per run");
    let in_ledger: i64 = db
        .query_one(
            "SELECT count(*) FROM transfers WHERE from_account_id = $1 AND memo = 'every second'",
            &[&account],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_ledger as usize, rows.len(), "no transfer without its run, none twice");
    let balance: Decimal = db.query_one("SELECT balance FROM accounts WHERE id = $1", &[&account]).await.unwrap().get(0);
    assert_eq!(paid_before - balance, Decimal::from(rows.len()), "the account paid exactly once per date");
    rows.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_date_runs_once_across_two_processes_a_sigkill_all_servers_down_and_a_failover() {
    let mut stack = TestStack::start_with(
        "standing-orders-faults",
        StackOptions {
            replicas: 2,
            sync: true,
            configure: fast_failover,
        },
    )
    .await;
    // A second server process on the same database: it runs orders too, and follows failovers.
    let mut second = BankProcess::start_with(&stack, "orders-second", |c| c.database.auto_failover = false).await;
    let alice = stack.login("alice").await;
    let alice_inr = stack.account_id(&stack.user("alice").account_numbers[0]).await;
    let bob_number = stack.user("bob").account_numbers[0].clone();
    let before = balance(&alice, &alice_inr.to_string()).await;
    let order = alice
        .post_money(
            "/v1/standing-orders",
            every_seconds(&alice_inr.to_string(), &bob_number, "1.00", 1, "every second"),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let order_id: Uuid = order.body["id"].as_str().unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The second process killed mid-tick, then back.
    second.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.restart(&stack).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The first process stopped: the second carries the order alone (which process wins a date is
    // otherwise a race, and one process could win them all).
    stack.stop_server().await;
    let alone_from = runs_made(&stack, order_id).await;
    eventually(Duration::from_secs(15), "dates run by the second process alone", || async {
        (runs_made(&stack, order_id).await >= alone_from + 2).then_some(())
    })
    .await;
    stack.start_server().await;

    // Every server down for 4 s: the dates missed run when one comes back.
    second.kill();
    stack.stop_server().await;
    let while_down = runs_made(&stack, order_id).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(runs_made(&stack, order_id).await, while_down, "nothing runs while no server does");
    stack.start_server().await;
    eventually(Duration::from_secs(15), "the missed dates run", || async {
        (runs_made(&stack, order_id).await >= while_down + 4).then_some(())
    })
    .await;
    second.restart(&stack).await;

    // The primary killed; the server promotes a replica; the second process follows.
    kill_postmaster(&stack, "primary");
    eventually(Duration::from_secs(30), "a new primary", || async {
        let primary = stack.server().state.db.pool.view().primary;
        primary.filter(|p| p != "primary").map(|_| ())
    })
    .await;
    let after_failover = runs_made(&stack, order_id).await;
    eventually(Duration::from_secs(20), "runs on the new primary", || async {
        (runs_made(&stack, order_id).await >= after_failover + 3).then_some(())
    })
    .await;

    // Stop it and check: every date from the first to the last ran once, by whichever process.
    let cancelled = alice.delete(&format!("/v1/standing-orders/{order_id}")).await;
    assert_eq!(cancelled.status, 204, "{}", cancelled.body);
    let total = assert_every_date_ran_once(&stack, order_id, alice_inr, before).await;
    let db = stack.superuser(&stack.primary_name()).await;
    let runners: i64 = db
        .query_one("SELECT count(DISTINCT client_addr) FROM audit_log WHERE request_id LIKE 'standing-order:' || $1::text || ':%'", &[&order_id.to_string()])
        .await
        .unwrap()
        .get(0);
    println!("standing order faults: {total} dates, each ran once, by {runners} server processes");
    assert!(runners >= 2, "both processes (and the restarted ones) ran dates: {runners}");
    assert!(total >= 15, "the order ran through the whole test: {total}");
    second.kill();
    stack.assert_ledger_invariants().await;
}
