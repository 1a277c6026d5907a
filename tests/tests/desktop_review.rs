//! Review of unusual movements in the desktop app, in a real window against a
//! real stack: a large transfer to a payee saved just now is held (the window
//! says so and where to cancel it; the balance stays, the available balance
//! drops); the branch admin who created the customer is refused in plain words
//! (maker-checker) and nothing moves; a second branch admin approves it and it
//! moves once, and the queue empties; another held transfer is rejected from
//! the window (the hold released, nothing moved), a third cancelled by the
//! customer in her Reviews view. A standing order's run to the same new payee
//! is held too: its payments say so, and both review lists label it.

use std::time::Duration;

use flexibank_tests::{dec, desktop::DesktopApp, json, masked_number, StackOptions, TestStack};
use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

/// More than 100 INR to a payee saved less than 24 h ago is held (the bank's default is 50,000);
/// standing orders in seconds (tests only), looked for every 200 ms.
fn review_rules(config: &mut flexibank_server::Config) {
    config.review.new_payee_amounts = [("INR".to_string(), Decimal::from(100))].into_iter().collect();
    config.standing_orders.allow_seconds = true;
    config.standing_orders.poll_interval_ms = 200;
}

/// (balance, available balance) where they were written: a session's reads go to a replica,
/// which may not have applied another session's write (an admin's approval) yet.
async fn primary_money(db: &tokio_postgres::Client, account_id: Uuid) -> (Decimal, Decimal) {
    let row = db
        .query_one("SELECT balance, balance - held FROM accounts WHERE id = $1", &[&account_id])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Entries of the account with this memo, on the primary.
async fn entries_with_memo(db: &tokio_postgres::Client, account_id: Uuid, memo: &str) -> i64 {
    db.query_one("SELECT count(*) FROM entries WHERE account_id = $1 AND memo = $2", &[&account_id, &memo])
        .await
        .unwrap()
        .get(0)
}

/// The branch's reviews with this status, as the API lists them.
async fn branch_reviews(admin: &flexibank_tests::Session, status: &str) -> Vec<Value> {
    let r = admin.get(&format!("/v1/admin/reviews?status={status}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// Alice's review `id` as she sees it.
async fn own_review(alice: &flexibank_tests::Session, id: &str) -> Value {
    let r = alice.get("/v1/reviews").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("no review {id} in {}", r.body))
        .clone()
}

/// Closes the notices shown as toasts, for a clear picture.
async fn dismiss_toasts(app: &DesktopApp) {
    app.client
        .execute("document.getElementById('toast')?.replaceChildren()", vec![])
        .await
        .expect("clearing the toasts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_transfer_waits_for_an_admin_with_no_hand_in_it() {
    let stack = TestStack::start_with(
        "desktop-review",
        StackOptions {
            replicas: 1,
            sync: true,
            configure: review_rules,
        },
    )
    .await;
    let data_dir = stack.dir().join("app");
    let app = DesktopApp::launch(&stack, "review", &data_dir).await;
    let alice_number = stack.user("alice").account_numbers[0].clone();
    let alice_inr = stack.account_id(&alice_number).await;
    let bob_number = stack.user("bob").account_numbers[0].clone();
    let bob_inr = stack.account_id(&bob_number).await;
    let db = stack.superuser(&stack.primary_name()).await;
    // One API session per user: every login spends a TOTP step of theirs.
    let alice = stack.login("alice").await;
    let admin = stack.login("admin").await;
    let admin2 = stack.login("admin2").await;
    let admin_id: Uuid = admin.get("/v1/auth/session").await.body["id"].as_str().expect("admin's id").parse().unwrap();

    // Alice saves bob as a payee: for the next 24 h he is a new payee.
    let payee = alice.post("/v1/payees", json!({"account_number": bob_number, "nickname": "Bob"}), None).await;
    assert_eq!(payee.status, 201, "{}", payee.body);
    let payee_id = payee.body["id"].as_str().unwrap().to_string();
    let (alice_before, alice_available_before) = primary_money(&db, alice_inr).await;
    let (bob_before, _) = primary_money(&db, bob_inr).await;

    // ---- 150.00 to him from Move money, after the confirm step: held, nothing moved.
    app.login(&stack, "alice").await;
    app.click("#nav-move").await;
    app.select("#transfer-from", &alice_inr.to_string()).await;
    app.select("#transfer-payee", &payee_id).await;
    app.fill("#transfer-amount", "150.00").await;
    app.fill("#transfer-memo", "held one").await;
    app.click("#transfer-submit").await;
    app.wait_for("#transfer-confirm-panel[data-saved=true]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        alice.get("/v1/reviews").await.body["items"],
        json!([]),
        "nothing is sent before \"Confirm transfer\""
    );
    app.click("#transfer-confirm").await;
    app.wait_for("#transfer-result[data-state=held]").await;
    let review_id = app.attr("#transfer-result", "data-review-id").await.expect("the review's id");
    let held = app.text("#transfer-result").await;
    let opening = format!(
        "Held for a check by the bank: 150.00 INR to {} will be sent once approved (reason: ",
        masked_number(&bob_number)
    );
    assert!(held.starts_with(&opening), "{held:?}");
    assert!(held.contains("to a payee saved less than 24 hours ago"), "the reason in plain words: {held:?}");
    assert!(held.trim_end().ends_with("You can cancel it in Reviews."), "{held:?}");
    assert_eq!(
        primary_money(&db, alice_inr).await,
        (alice_before, alice_available_before - dec("150.00")),
        "held: the balance stays, the available balance drops"
    );
    assert_eq!(primary_money(&db, bob_inr).await.0, bob_before, "nothing reached bob");
    let mine = own_review(&alice, &review_id).await;
    assert_eq!(
        (mine["status"].as_str(), mine["amount"].as_str(), mine["to_account_number"].as_str()),
        (Some("held_for_review"), Some("150.00"), Some(bob_number.as_str()))
    );
    // The held amount shows in the accounts' available balance, and in Reviews with its reason.
    app.wait_for("#transfer-result[data-state=held]").await;
    dismiss_toasts(&app).await;
    app.showcase("held-transfer");
    app.click("#nav-reviews").await;
    let mine_row = format!("[data-test=review][data-review-id='{review_id}']");
    app.wait_for(&format!("{mine_row}[data-status=held_for_review]")).await;
    app.wait_for(&format!("[data-test=review-cancel][data-id='{review_id}']")).await;

    // ---- The admin who created alice may not approve: said in plain words, nothing moves.
    db.execute("UPDATE users SET created_by = $1 WHERE username = 'alice'", &[&admin_id])
        .await
        .unwrap();
    app.click("#logout").await;
    app.login(&stack, "admin").await;
    app.click("#nav-admin-reviews").await;
    let row = format!("[data-test=admin-review][data-review-id='{review_id}']");
    app.wait_for(&format!("{row}[data-status=held_for_review]")).await;
    app.wait_text(&format!("{row} [data-test=review-from]"), "alice's account by number", |t| {
        t.contains(&alice_number) && t.contains("Alice")
    })
    .await;
    let to = app.text(&format!("{row} [data-test=review-to]")).await;
    assert!(
        to.starts_with(&bob_number) && to.contains("held one"),
        "the admin API's full number, and the memo: {to:?}"
    );
    let reason = app.text(&format!("{row} [data-test=review-reason]")).await;
    assert!(reason.contains("payee saved less than 24 hours ago"), "{reason:?}");
    app.click(&format!("[data-test=review-approve][data-id='{review_id}']")).await;
    app.wait_text("#confirm-message", "what approving does", |t| {
        t.contains("150.00 INR") && t.contains("is sent now, once")
    })
    .await;
    app.click("#confirm-ok").await;
    app.wait_text("#admin-review-error", "the maker-checker refusal", |t| {
        t.trim() == "Another branch admin must decide this: you created this customer."
    })
    .await;
    assert_eq!(app.attr("#admin-review-error", "data-code").await.as_deref(), Some("forbidden"));
    app.wait_for(&format!("{row}[data-status=held_for_review]")).await;
    assert_eq!(
        primary_money(&db, alice_inr).await,
        (alice_before, alice_available_before - dec("150.00")),
        "refused: nothing moved"
    );
    assert_eq!(primary_money(&db, bob_inr).await.0, bob_before);
    let pending: Vec<Value> = branch_reviews(&admin2, "pending").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["id"], review_id.as_str());

    // ---- The second admin approves: it moves once, and the queue empties.
    app.click("#logout").await;
    app.login(&stack, "admin2").await;
    app.click("#nav-admin-reviews").await;
    app.wait_for(&format!("{row}[data-status=held_for_review]")).await;
    app.click(&format!("[data-test=review-approve][data-id='{review_id}']")).await;
    app.wait_text("#confirm-message", "what approving does", |t| t.contains("is sent now, once"))
        .await;
    app.click("#confirm-ok").await;
    app.wait_for(&format!("#admin-review-result[data-state=approved][data-review-id='{review_id}']"))
        .await;
    let approved = (alice_before - dec("150.00"), alice_available_before - dec("150.00"));
    assert_eq!(primary_money(&db, alice_inr).await, approved, "moved once: the hold became the debit");
    assert_eq!(primary_money(&db, bob_inr).await.0, bob_before + dec("150.00"));
    assert_eq!(entries_with_memo(&db, alice_inr, "held one").await, 1, "one transfer out");
    assert_eq!(entries_with_memo(&db, bob_inr, "held one").await, 1, "one transfer in");
    app.wait_for("#admin-reviews-empty").await;
    app.wait_count("[data-test=admin-review]", 0, Duration::from_secs(20)).await;
    assert_eq!(branch_reviews(&admin2, "pending").await, Vec::<Value>::new(), "the queue is empty");
    let decided = own_review(&alice, &review_id).await;
    assert_eq!(decided["status"], "approved");
    assert!(decided["transfer_id"].is_string(), "{decided}");

    // ---- Two more held transfers (made through the API): the queue shows them by itself.
    let flagged = |amount: &str, memo: &str| json!({"from_account_id": alice_inr, "to_account_number": bob_number, "amount": amount, "memo": memo});
    let second = alice.post_money("/v1/transfers", flagged("200.00", "second")).await;
    assert_eq!(
        (second.status, second.body["status"].as_str()),
        (202, Some("held_for_review")),
        "{}",
        second.body
    );
    let second_id = second.body["review_id"].as_str().unwrap().to_string();
    let third = alice.post_money("/v1/transfers", flagged("120.00", "third")).await;
    assert_eq!(third.status, 202, "{}", third.body);
    let third_id = third.body["review_id"].as_str().unwrap().to_string();
    app.wait_count("[data-test=admin-review][data-status=held_for_review]", 2, Duration::from_secs(20))
        .await;
    app.wait_for("#nav-admin-reviews #admin-reviews-count[data-count='2']").await;
    dismiss_toasts(&app).await;
    app.showcase("review-queue");

    // Rejected from the window: the hold is released, nothing moves.
    app.click(&format!("[data-test=review-reject][data-id='{second_id}']")).await;
    app.wait_text("#confirm-message", "what rejecting does", |t| {
        t.contains("200.00 INR") && t.contains("is not sent")
    })
    .await;
    app.click("#confirm-ok").await;
    app.wait_for(&format!("#admin-review-result[data-state=rejected][data-review-id='{second_id}']"))
        .await;
    app.wait_count("[data-test=admin-review]", 1, Duration::from_secs(20)).await;
    assert_eq!(
        primary_money(&db, alice_inr).await,
        (approved.0, approved.1 - dec("120.00")),
        "rejected: its hold is released (the third's stays), nothing moved"
    );
    assert_eq!(primary_money(&db, bob_inr).await.0, bob_before + dec("150.00"));
    assert_eq!(entries_with_memo(&db, alice_inr, "second").await, 0);
    let rejected = branch_reviews(&admin2, "rejected").await;
    assert_eq!(rejected.iter().map(|r| r["id"].as_str().unwrap()).collect::<Vec<_>>(), [second_id.as_str()]);

    // The status filter: every review of the branch, then the pending ones again.
    app.select("#admin-review-status", "all").await;
    app.wait_count("[data-test=admin-review]", 3, Duration::from_secs(20)).await;
    for (id, status) in [(&review_id, "approved"), (&second_id, "rejected"), (&third_id, "held_for_review")] {
        app.wait_for(&format!("[data-test=admin-review][data-review-id='{id}'][data-status={status}]"))
            .await;
    }
    assert!(app.all("[data-test=review-approve]").await.len() == 1, "only the pending one can be decided");
    app.select("#admin-review-status", "pending").await;
    app.wait_count("[data-test=admin-review]", 1, Duration::from_secs(20)).await;
    app.wait_for(&format!("[data-test=admin-review][data-review-id='{third_id}']")).await;

    // ---- Alice cancels the third in her Reviews view, after a confirm step.
    app.click("#logout").await;
    app.login(&stack, "alice").await;
    app.click("#nav-reviews").await;
    app.wait_for(&format!("[data-test=review][data-review-id='{review_id}'][data-status=approved]"))
        .await;
    app.wait_for(&format!("[data-test=review][data-review-id='{second_id}'][data-status=rejected]"))
        .await;
    let third_row = format!("[data-test=review][data-review-id='{third_id}']");
    app.wait_for(&format!("{third_row}[data-status=held_for_review]")).await;
    let cancel = format!("[data-test=review-cancel][data-id='{third_id}']");
    // Kept when the confirm step is declined.
    app.click(&cancel).await;
    app.click("#confirm-cancel").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(own_review(&alice, &third_id).await["status"], "held_for_review");
    app.click(&cancel).await;
    app.wait_text("#confirm-message", "what cancelling does", |t| {
        t.contains(&format!("120.00 INR to {} will not be sent", masked_number(&bob_number)))
    })
    .await;
    app.click("#confirm-ok").await;
    app.wait_for(&format!("#reviews-result[data-state=cancelled][data-review-id='{third_id}']"))
        .await;
    app.wait_for(&format!("{third_row}[data-status=cancelled]")).await;
    assert_eq!(app.all(&cancel).await.len(), 0, "a cancelled transfer offers no cancel");
    assert_eq!(own_review(&alice, &third_id).await["status"], "cancelled");
    assert_eq!(
        primary_money(&db, alice_inr).await,
        approved,
        "cancelled: every hold released; only the approved transfer moved"
    );
    assert_eq!(primary_money(&db, bob_inr).await.0, bob_before + dec("150.00"));
    assert_eq!(entries_with_memo(&db, alice_inr, "third").await, 0);

    // ---- A standing order (every 10 s, through the API) to bob, still a new payee: its run is held.
    let mut settings = alice.get("/v1/me/notification-settings").await.body;
    settings["time_zone"] = json!("UTC");
    assert_eq!(alice.put("/v1/me/notification-settings", settings).await.status, 200);
    let order = alice
        .post(
            "/v1/standing-orders",
            json!({"from_account_id": alice_inr, "to": {"account_number": bob_number}, "amount": "150.00", "memo": "held run",
                   "schedule": {"every": "second", "interval": 10, "time": "00:00"}, "start_at": chrono::Utc::now().date_naive().to_string()}),
            Some(&Uuid::new_v4().to_string()),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let order_id = order.body["id"].as_str().unwrap().to_string();
    app.click("#nav-standing-orders").await;
    app.click(&format!("[data-test=standing-order][data-order-id='{order_id}'] [data-test=so-runs]")).await;
    let held_run = "#so-runs-panel [data-test=so-run][data-status=held]";
    app.wait_text(&format!("{held_run} [data-test=so-run-words]"), "a run held for review", |t| t.starts_with("Held for review"))
        .await;
    let run_review = app.attr(held_run, "data-review-id").await.expect("the held run's review");
    app.click("#nav-reviews").await;
    let run_row = format!("[data-test=review][data-review-id='{run_review}'][data-kind=standing_order]");
    app.wait_text(&format!("{run_row} [data-test=review-kind]"), "the run labelled", |t| t.trim() == "Standing order run").await;
    let run_to = app.text(&format!("{run_row} [data-test=review-to]")).await;
    assert!(run_to.starts_with(&masked_number(&bob_number)), "{run_to:?}");
    let listed = own_review(&alice, &run_review).await;
    assert_eq!((listed["kind"].as_str(), listed["standing_order_id"].as_str()), (Some("standing_order"), Some(order_id.as_str())));
    // Plain transfers carry no label.
    let transfer_row = format!("[data-test=review][data-review-id='{third_id}'][data-kind=transfer]");
    app.wait_for(&transfer_row).await;
    assert_eq!(app.all(&format!("{transfer_row} [data-test=review-kind]")).await.len(), 0);
    app.click("#logout").await;
    app.login(&stack, "admin2").await;
    app.click("#nav-admin-reviews").await;
    let admin_row = format!("[data-test=admin-review][data-review-id='{run_review}'][data-kind=standing_order]");
    app.wait_text(&format!("{admin_row} [data-test=review-kind]"), "the run labelled", |t| t.trim() == "Standing order run").await;
    let admin_to = app.text(&format!("{admin_row} [data-test=review-to]")).await;
    assert!(admin_to.starts_with(&bob_number) && admin_to.contains("held run"), "{admin_to:?}");
    assert_eq!(alice.delete(&format!("/v1/standing-orders/{order_id}")).await.status, 204);
    stack.assert_ledger_invariants().await;
    app.quit().await;
}
