//! Review of unusual movements (issue 18, the contract's "Review") against the
//! real server and database: a flagged transfer is held (the available balance
//! drops, the balance does not); approved by an admin with no hand in it, it
//! moves once, however many approve at once; rejected, cancelled or expired,
//! nothing moves; the admin who created the customer or opened the account
//! cannot approve.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use flexibank_server::seed;
use flexibank_tests::{eventually, json, StackOptions, TestStack};
use rust_decimal::Decimal;
use uuid::Uuid;

fn strict_rules(config: &mut flexibank_server::Config) {
    let inr = |v: i64| [("INR".to_string(), Decimal::from(v))].into_iter().collect();
    config.review.new_payee_amounts = inr(100);
    config.review.burst_min_amounts = inr(50);
    config.review.burst_count = 3;
    config.standing_orders.poll_interval_ms = 200;
}

/// Balance and available balance where they were written: a customer's own reads go to a
/// replica, which may not have applied another's write (an approval) yet.
async fn primary_money(db: &tokio_postgres::Client, account_id: &str) -> (Decimal, Decimal) {
    let id: Uuid = account_id.parse().unwrap();
    let row = db.query_one("SELECT balance, balance - held FROM accounts WHERE id = $1", &[&id]).await.unwrap();
    (row.get(0), row.get(1))
}

/// Bob's balance where it was written (his own reads go to a replica, which may lag another's write).
async fn primary_balance(db: &tokio_postgres::Client, account_id: &str) -> Decimal {
    let id: Uuid = account_id.parse().unwrap();
    db.query_one("SELECT balance FROM accounts WHERE id = $1", &[&id]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flagged_transfers_wait_for_a_reviewer_with_no_hand_in_them() {
    let stack = TestStack::start_with(
        "review",
        StackOptions {
            replicas: 1,
            sync: true,
            configure: strict_rules,
        },
    )
    .await;
    let state = &stack.server().state;
    let (admin, admin2) = (stack.login("admin").await, Arc::new(stack.login("admin2").await));
    let admin_id: Uuid = admin.get("/v1/auth/session").await.body["id"].as_str().unwrap().parse().unwrap();
    let branch = stack.user("admin").branch_id.unwrap();

    // Carol: a customer the first admin created, with an account that admin opened.
    let password = "review test password";
    let (carol_id, secret) = seed::create_enrolled_user(state, "carol", "Carol Dsouza", "customer", Some(branch), password)
        .await
        .unwrap();
    let db = stack.superuser(&stack.primary_name()).await;
    db.execute("UPDATE users SET created_by = $1 WHERE id = $2", &[&admin_id, &carol_id])
        .await
        .unwrap();
    let opened = admin
        .post(
            "/v1/admin/accounts",
            json!({"owner_ids": [carol_id], "kind": "savings", "currency": "INR"}),
            None,
        )
        .await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let carol_inr = opened.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        admin
            .post_money("/v1/admin/deposits", json!({"account_id": carol_inr, "amount": "1000.00"}))
            .await
            .status,
        201
    );
    let carol = Arc::new(stack.login_with("carol", password, &secret).await);
    let bob = stack.login("bob").await;
    let (bob_inr, bob_number) = (
        stack.account_id(&stack.user("bob").account_numbers[0]).await.to_string(),
        stack.user("bob").account_numbers[0].clone(),
    );
    let alice_number = stack.user("alice").account_numbers[0].clone();
    let bob_before = primary_balance(&db, &bob_inr).await;

    // A small transfer is never looked at; a large one to a payee saved just now is held.
    assert_eq!(
        carol
            .post("/v1/payees", json!({"account_number": bob_number, "nickname": "Bob"}), None)
            .await
            .status,
        201
    );
    assert_eq!(
        carol
            .post_money(
                "/v1/transfers",
                json!({"from_account_id": carol_inr, "to_account_number": bob_number, "amount": "10.00"})
            )
            .await
            .status,
        201
    );
    let key = Uuid::new_v4().to_string();
    let body = json!({"from_account_id": carol_inr, "to_account_number": bob_number, "amount": "150.00", "memo": "new payee"});
    let held = carol.post("/v1/transfers", body.clone(), Some(&key)).await;
    assert_eq!(held.status, 202, "{}", held.body);
    assert_eq!(held.body["status"], "held_for_review");
    assert!(
        held.body["reason"].as_str().unwrap().contains("payee added less than 24 h ago"),
        "{}",
        held.body
    );
    let review_id = held.body["review_id"].as_str().unwrap().to_string();
    let again = carol.post("/v1/transfers", body, Some(&key)).await;
    assert_eq!(
        (again.status, again.header("idempotent-replayed"), &again.body["review_id"]),
        (202, Some("true"), &held.body["review_id"]),
        "a retry is the same review"
    );
    assert_eq!(
        primary_money(&db, &carol_inr).await,
        (Decimal::from(990), Decimal::from(840)),
        "held: available drops, balance does not"
    );
    assert_eq!(primary_balance(&db, &bob_inr).await, bob_before + Decimal::from(10), "nothing reached bob yet");
    let mine = carol.get("/v1/reviews").await;
    assert_eq!(mine.body["items"][0]["id"], review_id.as_str(), "{}", mine.body);

    // Maker-checker: the admin who created carol (and opened her account) may not approve; a customer may not either.
    let path = |action: &str| format!("/v1/admin/reviews/{review_id}/{action}");
    let refused = admin.post(&path("approve"), json!({}), None).await;
    refused.assert_problem(403, "forbidden");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("you created this customer"),
        "{}",
        refused.body
    );
    carol.post(&path("approve"), json!({}), None).await.assert_problem(403, "forbidden");
    let queue = admin2.get("/v1/admin/reviews").await;
    assert_eq!(queue.body["items"].as_array().map(Vec::len), Some(1), "{}", queue.body);

    // Eight approvals at once by the second admin: one moves the money, the others are told it was decided.
    let approvals = (0..8).map(|_| {
        let admin2 = admin2.clone();
        let path = path("approve");
        tokio::spawn(async move { admin2.post(&path, json!({}), None).await })
    });
    let mut statuses = BTreeMap::new();
    for approval in approvals {
        let r = approval.await.unwrap();
        if r.status == 409 {
            r.assert_problem(409, "review_decided");
        }
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(200, 1), (409, 7)]));
    assert_eq!(primary_money(&db, &carol_inr).await, (Decimal::from(840), Decimal::from(840)), "moved once");
    assert_eq!(primary_balance(&db, &bob_inr).await, bob_before + Decimal::from(160));
    let decided = carol.get("/v1/reviews").await.body["items"][0].clone();
    assert_eq!(decided["status"], "approved");
    assert!(decided["transfer_id"].is_string());

    // Rejected by the reviewer, or cancelled by carol: the hold comes back, nothing moves.
    let flagged = |amount: &str| json!({"from_account_id": carol_inr, "to_account_number": bob_number, "amount": amount});
    let second = carol.post_money("/v1/transfers", flagged("200.00")).await;
    assert_eq!(second.status, 202, "{}", second.body);
    assert_eq!(primary_money(&db, &carol_inr).await.1, Decimal::from(640));
    let rejected = admin2
        .post(
            &format!("/v1/admin/reviews/{}/reject", second.body["review_id"].as_str().unwrap()),
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        (rejected.status, rejected.body["status"].as_str()),
        (200, Some("rejected")),
        "{}",
        rejected.body
    );
    let third = carol.post_money("/v1/transfers", flagged("120.00")).await;
    assert_eq!(third.status, 202);
    let cancelled = carol
        .post(&format!("/v1/reviews/{}/cancel", third.body["review_id"].as_str().unwrap()), json!({}), None)
        .await;
    assert_eq!(
        (cancelled.status, cancelled.body["status"].as_str()),
        (200, Some("cancelled")),
        "{}",
        cancelled.body
    );
    bob.post(&format!("/v1/reviews/{}/cancel", third.body["review_id"].as_str().unwrap()), json!({}), None)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(primary_money(&db, &carol_inr).await, (Decimal::from(840), Decimal::from(840)));
    assert_eq!(primary_balance(&db, &bob_inr).await, bob_before + Decimal::from(160));

    // Undecided past its time: expired, released.
    let fourth = carol.post_money("/v1/transfers", flagged("130.00")).await;
    assert_eq!(fourth.status, 202);
    let fourth_id: Uuid = fourth.body["review_id"].as_str().unwrap().parse().unwrap();
    db.execute("UPDATE reviews SET expires_at = now() - interval '1 second' WHERE id = $1", &[&fourth_id])
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the review to expire", || async {
        let items = carol.get("/v1/reviews").await.body["items"].clone();
        items
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == fourth_id.to_string().as_str() && r["status"] == "expired")
            .then_some(())
    })
    .await;
    assert_eq!(primary_money(&db, &carol_inr).await.1, Decimal::from(840));

    // Many transfers in a short time: past the third, a large one waits (alice is no new payee).
    let to_alice = json!({"from_account_id": carol_inr, "to_account_number": alice_number, "amount": "60.00"});
    assert_eq!(carol.post_money("/v1/transfers", to_alice.clone()).await.status, 201);
    let burst = carol.post_money("/v1/transfers", to_alice).await;
    assert_eq!(
        burst.status, 202,
        "the 10.00, the approved 150.00 and a 60.00 went out in 10 minutes: {}",
        burst.body
    );
    assert!(burst.body["reason"].as_str().unwrap().contains("transfers in 10 minutes"), "{}", burst.body);

    // The admin who changed the account's limit today may not approve it either.
    assert_eq!(
        admin2
            .put(&format!("/v1/accounts/{carol_inr}/limits"), json!({"daily_transfer_limit": "5000.00"}))
            .await
            .status,
        200
    );
    let refused = admin2
        .post(
            &format!("/v1/admin/reviews/{}/approve", burst.body["review_id"].as_str().unwrap()),
            json!({}),
            None,
        )
        .await;
    refused.assert_problem(403, "forbidden");
    assert!(refused.body["detail"].as_str().unwrap().contains("limit"), "{}", refused.body);
    let audit: i64 = db
        .query_one("SELECT count(*) FROM audit_log WHERE action IN ('review.held', 'admin.review_approved', 'admin.review_rejected', 'review.cancelled', 'review.expired')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audit, 5 + 1 + 1 + 1 + 1, "every hold and every decision is audited");
    stack.assert_ledger_invariants().await;
}

fn strict_rules_fast_orders(config: &mut flexibank_server::Config) {
    strict_rules(config);
    config.standing_orders.allow_seconds = true;
}

async fn runs(session: &flexibank_tests::Session, order_id: &str) -> Vec<serde_json::Value> {
    let r = session.get(&format!("/v1/standing-orders/{order_id}/runs")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// The rules see every way money leaves (not only a single transfer): a batch with a flagged item is
/// refused whole, a standing order's run is held like a transfer and finished by its review.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_and_standing_order_runs_are_screened_too() {
    let stack = TestStack::start_with(
        "review-every",
        StackOptions {
            replicas: 1,
            sync: true,
            configure: strict_rules_fast_orders,
        },
    )
    .await;
    let db = stack.superuser(&stack.primary_name()).await;
    let (alice, admin2) = (stack.login("alice").await, stack.login("admin2").await);
    let alice_inr = stack.account_id(&stack.user("alice").account_numbers[0]).await.to_string();
    let bob_inr = stack.account_id(&stack.user("bob").account_numbers[0]).await.to_string();
    let bob_number = stack.user("bob").account_numbers[0].clone();
    assert_eq!(
        alice.post("/v1/payees", json!({"account_number": bob_number, "nickname": "Bob"}), None).await.status,
        201
    );
    let (alice_before, bob_before) = (primary_money(&db, &alice_inr).await, primary_balance(&db, &bob_inr).await);

    // A batch: all or nothing, answered at once; a flagged item refuses it whole, nothing moves.
    let item = |amount: &str| json!({"from_account_id": alice_inr, "to_account_number": bob_number, "amount": amount});
    let refused = alice
        .post_money("/v1/transfers/batch", json!({"items": [item("10.00"), item("150.00")]}))
        .await;
    refused.assert_problem(409, "review_required");
    assert!(refused.body["detail"].as_str().unwrap().contains("item 1"), "{}", refused.body);
    assert_eq!(primary_money(&db, &alice_inr).await, alice_before, "nothing moved, nothing held");
    let key = Uuid::new_v4().to_string();
    let small = json!({"items": [item("10.00"), item("20.00")]});
    assert_eq!(alice.post("/v1/transfers/batch", small.clone(), Some(&key)).await.status, 201);
    let again = alice.post("/v1/transfers/batch", small, Some(&key)).await;
    assert_eq!((again.status, again.header("idempotent-replayed")), (201, Some("true")), "a repeat is its stored answer: {}", again.body);
    assert_eq!(primary_balance(&db, &bob_inr).await, bob_before + Decimal::from(30));

    // A standing order of 150.00 to the new payee every 2 s: each run is held, not paid.
    let today = chrono::Utc::now().date_naive();
    let order = alice
        .post_money(
            "/v1/standing-orders",
            json!({"from_account_id": alice_inr, "to": {"account_number": bob_number}, "amount": "150.00", "memo": "rent",
                   "schedule": {"every": "second", "interval": 2, "time": "00:00"}, "start_at": today.to_string()}),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let order_id = order.body["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(20), "two held runs", || async {
        let held = runs(&alice, &order_id).await.into_iter().filter(|r| r["status"] == "held").count();
        (held >= 2).then_some(())
    })
    .await;
    let paused = alice.patch(&format!("/v1/standing-orders/{order_id}"), json!({"paused": true})).await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    stack.replicas_caught_up().await;
    let held_runs: Vec<serde_json::Value> = runs(&alice, &order_id).await.into_iter().filter(|r| r["status"] == "held").collect();
    let reviews = admin2.get("/v1/admin/reviews").await.body["items"].as_array().unwrap().clone();
    let of_runs: Vec<&serde_json::Value> = reviews.iter().filter(|r| r["standing_order_id"] == order_id.as_str()).collect();
    assert_eq!(of_runs.len(), held_runs.len(), "one review per held run: {reviews:?}");
    for review in &of_runs {
        assert_eq!((review["kind"].as_str(), review["amount"].as_str()), (Some("standing_order"), Some("150.00")), "{review}");
        assert_eq!(review["from_account_number"], stack.user("alice").account_numbers[0].as_str());
        assert!(review["reason"].as_str().unwrap().contains("payee added less than 24 h ago"), "{review}");
    }
    let held_total = Decimal::from(150) * Decimal::from(held_runs.len() as i64);
    let (balance, available) = primary_money(&db, &alice_inr).await;
    assert_eq!((balance, available), (alice_before.0 - Decimal::from(30), alice_before.1 - Decimal::from(30) - held_total), "held, not moved");

    // The first run approved: it is done with its transfer, once; the second rejected: skipped, released.
    let review_of = |run: &serde_json::Value| run["review_id"].as_str().unwrap().to_string();
    let (first, second) = (review_of(&held_runs[held_runs.len() - 1]), review_of(&held_runs[held_runs.len() - 2]));
    let approved = admin2.post(&format!("/v1/admin/reviews/{first}/approve"), json!({}), None).await;
    assert_eq!((approved.status, approved.body["status"].as_str()), (200, Some("approved")), "{}", approved.body);
    let transfer_id = approved.body["transfer_id"].as_str().unwrap().to_string();
    let rejected = admin2.post(&format!("/v1/admin/reviews/{second}/reject"), json!({}), None).await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    stack.replicas_caught_up().await;
    let after = runs(&alice, &order_id).await;
    let run_of = |review: &str| after.iter().find(|r| r["review_id"] == review).unwrap().clone();
    assert_eq!((run_of(&first)["status"].as_str(), run_of(&first)["transfer_id"].as_str()), (Some("done"), Some(transfer_id.as_str())));
    assert_eq!((run_of(&second)["status"].as_str(), run_of(&second)["refusal_code"].as_str()), (Some("skipped"), Some("review_rejected")));
    let still_held = Decimal::from(150) * Decimal::from(held_runs.len() as i64 - 2);
    assert_eq!(
        primary_money(&db, &alice_inr).await,
        (alice_before.0 - Decimal::from(180), alice_before.1 - Decimal::from(180) - still_held),
        "one run paid once, one released"
    );
    assert_eq!(primary_balance(&db, &bob_inr).await, bob_before + Decimal::from(180));
    let runs_audited: i64 = db
        .query_one("SELECT count(*) FROM audit_log WHERE action = 'review.held' AND actor_role = 'system' AND details ->> 'order_id' = $1", &[&order_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs_audited, held_runs.len() as i64, "every held run is audited");
    stack.assert_ledger_invariants().await;
}
