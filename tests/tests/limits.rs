//! Daily outgoing limits (issue 18, the contract's "Limits"), against the real
//! server and database: no path and no concurrency passes one; a customer
//! lowers theirs at once and raises it only after 24 h; a branch admin sets it;
//! days are counted in the holder's time zone.

use std::{collections::BTreeMap, sync::Arc};

use std::time::Duration;

use flexibank_tests::{eventually, json, Session, TestStack};
use rust_decimal::Decimal;
use uuid::Uuid;

fn dec(value: &serde_json::Value) -> Decimal {
    value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}")).parse().unwrap()
}

async fn balance(session: &Session, account_id: &str) -> Decimal {
    let r = session.get(&format!("/v1/accounts/{account_id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    dec(&r.body["balance"])
}

async fn limits(session: &Session, account_id: &str) -> serde_json::Value {
    let r = session.get(&format!("/v1/accounts/{account_id}/limits")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_movements_by_every_path_never_pass_the_daily_limit() {
    let stack = TestStack::start("limits").await;
    let admin = stack.login("admin").await;
    let alice = Arc::new(stack.login("alice").await);
    let alice_inr = stack.account_id(&stack.user("alice").account_numbers[0]).await.to_string();
    let bob_number = stack.user("bob").account_numbers[0].clone();

    // The seed's movements today count already.
    let fresh = limits(&alice, &alice_inr).await;
    assert_eq!((fresh["daily_transfer_limit"].as_str(), fresh["bank_default"].as_str()), (Some("500000.00"), Some("500000.00")), "{fresh}");
    assert_eq!(fresh["time_zone"], "UTC");
    assert_eq!(fresh["pending_raise"], serde_json::Value::Null);
    let used = dec(&fresh["used_today"]);
    assert!(used > Decimal::ZERO, "{fresh}");
    let limit = |extra: i64| (used + Decimal::new(extra, 2)).to_string();

    // The branch leaves room for 1,000.00; 32 transfers of 50.00 at once: exactly 20 go, 12 are refused.
    let set = admin.put(&format!("/v1/accounts/{alice_inr}/limits"), json!({"daily_transfer_limit": limit(100000)})).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["daily_transfer_limit"], limit(100000));
    let before = balance(&alice, &alice_inr).await;
    let transfers = (0..32).map(|_| {
        let alice = alice.clone();
        let body = json!({"from_account_id": alice_inr, "to_account_number": bob_number, "amount": "50.00"});
        tokio::spawn(async move { alice.post_money("/v1/transfers", body).await })
    });
    let mut outcomes = BTreeMap::new();
    for transfer in transfers {
        let r = transfer.await.unwrap();
        if r.status == 409 {
            r.assert_problem(409, "limit_exceeded");
        }
        *outcomes.entry(r.status).or_insert(0) += 1;
    }
    assert_eq!(outcomes, BTreeMap::from([(201, 20), (409, 12)]));
    assert_eq!(
        before - balance(&alice, &alice_inr).await,
        Decimal::new(100000, 2),
        "exactly the limit left the account"
    );
    assert_eq!(limits(&alice, &alice_inr).await["used_today"], limit(100000));

    // Every other path is refused too, and refusing moves nothing: a withdrawal, a batch, a hold.
    alice
        .post_money("/v1/withdrawals", json!({"account_id": alice_inr, "amount": "0.01"}))
        .await
        .assert_problem(409, "limit_exceeded");
    let batch = json!({"items": [{"from_account_id": alice_inr, "to_account_number": bob_number, "amount": "0.01"}]});
    alice.post_money("/v1/transfers/batch", batch).await.assert_problem(409, "limit_exceeded");
    let db = stack.superuser(&stack.primary_name()).await;
    let account: Uuid = alice_inr.parse().unwrap();
    let hold = db.query_one("SELECT place_hold($1, 0.01, 'limit-test-hold-1')", &[&account]).await.unwrap_err();
    assert_eq!(hold.as_db_error().map(|e| e.message()), Some("limit_exceeded"));
    // A teller withdrawal counts as well: the limit is the account's, whoever moves the money.
    admin
        .post_money("/v1/admin/withdrawals", json!({"account_id": alice_inr, "amount": "0.01"}))
        .await
        .assert_problem(409, "limit_exceeded");
    assert_eq!(before - balance(&alice, &alice_inr).await, Decimal::new(100000, 2));
    // Money coming in is not limited.
    assert_eq!(
        admin
            .post_money("/v1/admin/deposits", json!({"account_id": alice_inr, "amount": "500.00"}))
            .await
            .status,
        201
    );

    // A hold counts when placed and gives its share back when voided.
    let set = admin
        .put(&format!("/v1/accounts/{alice_inr}/limits"), json!({"daily_transfer_limit": limit(110000)}))
        .await;
    assert_eq!(set.status, 200);
    db.query_one("SELECT place_hold($1, 100.00, 'limit-test-hold-2')", &[&account]).await.unwrap();
    stack.replicas_caught_up().await;
    assert_eq!(limits(&alice, &alice_inr).await["used_today"], limit(110000));
    alice
        .post_money("/v1/withdrawals", json!({"account_id": alice_inr, "amount": "0.01"}))
        .await
        .assert_problem(409, "limit_exceeded");
    assert!(db.query_one("SELECT void_hold('limit-test-hold-2')", &[]).await.unwrap().get::<_, bool>(0));
    stack.replicas_caught_up().await;
    assert_eq!(limits(&alice, &alice_inr).await["used_today"], limit(100000));
    assert_eq!(
        alice
            .post_money("/v1/withdrawals", json!({"account_id": alice_inr, "amount": "100.00"}))
            .await
            .status,
        201
    );

    // A new day in the holder's time zone starts afresh (yesterday's count is moved back a day here).
    db.execute("UPDATE accounts SET limit_day = limit_day - 1 WHERE id = $1", &[&account]).await.unwrap();
    // (The reads are a replica's: it sees the change a moment later.)
    eventually(Duration::from_secs(10), "the new day on the replica", || async {
        (limits(&alice, &alice_inr).await["used_today"] == "0.00").then_some(())
    })
    .await;
    let whole_day = json!({"from_account_id": alice_inr, "to_account_number": bob_number, "amount": limit(110000)});
    assert_eq!(alice.post_money("/v1/transfers", whole_day).await.status, 201);
    assert_eq!(limits(&alice, &alice_inr).await["used_today"], limit(110000));
    stack.assert_ledger_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_lowers_at_once_raises_after_a_day_and_the_branch_sets_it() {
    let stack = TestStack::start("limits-change").await;
    let (admin, alice, bob) = (stack.login("admin").await, stack.login("alice").await, stack.login("bob").await);
    let alice_inr = stack.account_id(&stack.user("alice").account_numbers[0]).await.to_string();
    let joint = stack.account_id(&stack.user("alice").account_numbers[2]).await.to_string();
    let bob_number = stack.user("bob").account_numbers[0].clone();
    let path = format!("/v1/accounts/{alice_inr}/limits");

    // Bad input changes nothing; strangers see nothing.
    for bad in [
        json!({"daily_transfer_limit": "-5"}),
        json!({"daily_transfer_limit": "abc"}),
        json!({"daily_transfer_limit": 5}),
        json!({"daily_transfer_limit": "0"}),
        json!({"daily_transfer_limit": "1.001"}),
        json!({}),
        json!({"daily_transfer_limit": "5.00", "x": 1}),
    ] {
        alice.put(&path, bad).await.assert_problem(400, "validation_failed");
    }
    bob.get(&path).await.assert_problem(404, "not_found");
    bob.put(&path, json!({"daily_transfer_limit": "1.00"})).await.assert_problem(404, "not_found");
    stack.login("dba").await.get(&path).await.assert_problem(403, "forbidden");
    assert_eq!(limits(&alice, &alice_inr).await["daily_transfer_limit"], "500000.00");

    // Start on a fresh day: the seed's movements today are yesterday's here.
    let db = stack.superuser(&stack.primary_name()).await;
    let account: Uuid = alice_inr.parse().unwrap();
    db.execute("UPDATE accounts SET limit_day = limit_day - 1 WHERE id = $1", &[&account]).await.unwrap();

    // Lowering counts at once.
    let lowered = alice.put(&path, json!({"daily_transfer_limit": "300.00"})).await;
    assert_eq!(lowered.status, 200, "{}", lowered.body);
    assert_eq!(lowered.body["daily_transfer_limit"], "300.00");
    let over = json!({"from_account_id": alice_inr, "to_account_number": bob_number, "amount": "300.01"});
    alice.post_money("/v1/transfers", over.clone()).await.assert_problem(409, "limit_exceeded");

    // Raising waits a day, and every owner hears of it; above the bank's default only the branch may.
    alice
        .put(&path, json!({"daily_transfer_limit": "600000.00"}))
        .await
        .assert_problem(403, "forbidden");
    let raised = alice.put(&path, json!({"daily_transfer_limit": "5000.00"})).await;
    assert_eq!(raised.status, 202, "{}", raised.body);
    assert_eq!(raised.body["daily_transfer_limit"], "300.00", "not yet");
    assert_eq!(raised.body["pending_raise"]["daily_transfer_limit"], "5000.00");
    let effective_at: chrono::DateTime<chrono::Utc> = raised.body["pending_raise"]["effective_at"].as_str().unwrap().parse().unwrap();
    let wait = effective_at - chrono::Utc::now();
    assert!(wait > chrono::Duration::hours(23) && wait <= chrono::Duration::hours(24), "{wait}");
    alice.post_money("/v1/transfers", over.clone()).await.assert_problem(409, "limit_exceeded");
    let notices = alice.get("/v1/notifications?limit=50").await.body["items"].as_array().unwrap().clone();
    let raise_notices: Vec<_> = notices.iter().filter(|n| n["kind"] == "limit.raised").collect();
    assert_eq!(raise_notices.len(), 1, "{notices:?}");
    assert_eq!(
        (raise_notices[0]["critical"].as_bool(), raise_notices[0]["payload"]["limit"].as_str()),
        (Some(true), Some("5000.00"))
    );

    // A day later (the raise's time moved to the past here) it counts.
    db.execute(
        "UPDATE accounts SET daily_limit_raise_at = now() - interval '1 second' WHERE id = $1",
        &[&account],
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(10), "the raise counting on the replica", || async {
        let now = limits(&alice, &alice_inr).await;
        (now["daily_transfer_limit"] == "5000.00" && now["pending_raise"].is_null()).then_some(())
    })
    .await;
    assert_eq!(alice.post_money("/v1/transfers", over).await.status, 201);

    // The branch sets it at once, above the default too; a joint account's owners both hear of a raise.
    let set = admin
        .put(&format!("/v1/accounts/{joint}/limits"), json!({"daily_transfer_limit": "750000.00"}))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["daily_transfer_limit"], "750000.00");
    stack.replicas_caught_up().await;
    for session in [&alice, &bob] {
        let items = session.get("/v1/notifications?limit=50").await.body["items"].as_array().unwrap().clone();
        assert!(
            items.iter().any(|n| n["kind"] == "limit.raised" && n["payload"]["limit"] == "750000.00"),
            "{items:?}"
        );
    }
    let audit: Vec<(String, String)> = db
        .query(
            "SELECT action, actor_role FROM audit_log WHERE action IN ('limit.lowered', 'limit.raise_requested', 'admin.limit_set') ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        audit,
        [
            ("limit.lowered", "customer"),
            ("limit.raise_requested", "customer"),
            ("admin.limit_set", "branch_admin")
        ]
        .map(|(a, r)| (a.to_string(), r.to_string()))
    );

    // The holder's time zone is the limit's: changing it in the settings moves the account's day.
    let mut settings = alice.get("/v1/me/notification-settings").await.body;
    settings["time_zone"] = json!("Asia/Kolkata");
    assert_eq!(alice.put("/v1/me/notification-settings", settings).await.status, 200);
    assert_eq!(limits(&alice, &alice_inr).await["time_zone"], "Asia/Kolkata");
}
