//! Saved payees and confirmation of payee in the desktop app, in a real
//! window against a real stack: a payee is saved showing only the holder's
//! masked name and number; every transfer shows whom it pays and sends
//! nothing before "Confirm transfer", exactly once after it.

use std::time::Duration;

use flexibank_tests::{dec, desktop::DesktopApp, json, masked_name, masked_number, Session, TestStack};
use rust_decimal::Decimal;

// One API session per user: every login spends a TOTP step of theirs.
async fn balance_via_api(session: &Session, number: &str) -> Decimal {
    let me = session.get("/v1/me").await;
    let account = me.body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["number"] == number)
        .expect("own account");
    dec(account["balance"].as_str().unwrap())
}

/// Entries of `account_id` with this memo.
async fn entries_with_memo(session: &Session, account_id: &str, memo: &str) -> usize {
    let history = session.get(&format!("/v1/accounts/{account_id}/transactions?limit=200")).await;
    assert_eq!(history.status, 200, "{}", history.body);
    history.body["items"].as_array().unwrap().iter().filter(|e| e["memo"] == memo).count()
}

/// Waits until the confirmation panel is hidden (nothing to confirm).
async fn panel_gone(app: &DesktopApp) {
    let started = std::time::Instant::now();
    loop {
        let shown = match app.all("#transfer-confirm-panel").await.first() {
            Some(panel) => panel.is_displayed().await.unwrap_or(false),
            None => false,
        };
        if !shown {
            return;
        }
        if started.elapsed() > Duration::from_secs(20) {
            app.fail("the confirmation panel is still shown");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_saves_a_payee_and_confirms_whom_every_transfer_pays() {
    let stack = TestStack::start("desktop-payees").await;
    let data_dir = stack.dir().join("app");
    let app = DesktopApp::launch(&stack, "payees", &data_dir).await;
    let from_number = stack.user("alice").account_numbers[0].clone();
    let from_id = stack.account_id(&from_number).await.to_string();
    let bob_number = stack.user("bob").account_numbers[0].clone();
    let bob = stack.login("bob").await;
    let bob_name = bob.get("/v1/me").await.body["user"]["full_name"].as_str().expect("bob's full name").to_string();
    let (bob_masked, bob_number_masked) = (masked_name(&bob_name), masked_number(&bob_number));

    // Carol: a customer of the bank alice has never paid, with an account of her own.
    let admin = stack.login("admin").await;
    let username = format!("carol{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let carol_name = "Carol Dsouza";
    let carol = admin
        .post(
            "/v1/admin/customers",
            json!({"username": username, "full_name": carol_name, "national_id": "NAT-778899", "phone": "+91 98000 22222",
                   "email": "carol@example.test", "password": "carol's long password"}),
            None,
        )
        .await;
    assert_eq!(carol.status, 201, "{}", carol.body);
    let account = admin
        .post(
            "/v1/admin/accounts",
            json!({"owner_ids": [carol.body["id"]], "kind": "savings", "currency": "INR"}),
            None,
        )
        .await;
    assert_eq!(account.status, 201, "{}", account.body);
    let carol_number = account.body["number"].as_str().unwrap().to_string();
    let (carol_masked, carol_number_masked) = (masked_name(carol_name), masked_number(&carol_number));

    let alice = stack.login("alice").await;
    app.login(&stack, "alice").await;

    // Payees: bob's account saved by number shows his masked name and number only.
    app.click("#nav-payees").await;
    app.wait_for("#payee-add-form").await;
    app.select("#payee-mode", "account").await;
    app.fill("#payee-number", &bob_number).await;
    app.fill("#payee-nickname", "Rent").await;
    app.click("#payee-add").await;
    let saved = format!("Saved {bob_masked}, account {bob_number_masked} as Rent");
    app.wait_text("#payee-result", &saved, |t| t.trim() == saved).await;
    app.showcase("payees");
    let row = "[data-test=payee][data-nickname='Rent']";
    let payee_id = app.attr(row, "data-payee-id").await.expect("the payee's id");
    let row = format!("[data-test=payee][data-payee-id='{payee_id}']");
    assert_eq!(app.text(&format!("{row} [data-test=payee-name]")).await, bob_masked);
    assert_eq!(app.text(&format!("{row} [data-test=payee-account]")).await, bob_number_masked);
    assert!(!app.text(&format!("{row} [data-test=payee-bank]")).await.trim().is_empty(), "the bank is named");
    let list = app.text("#payees-list").await;
    for (hidden, what) in [
        (bob_name.as_str(), "full name"),
        (&bob_name[bob_name.find(' ').unwrap() + 1..], "surname"),
        (bob_number.as_str(), "full number"),
    ] {
        assert!(!list.contains(hidden), "the list shows bob's {what}: {list:?}");
    }
    let payees = alice.get("/v1/payees").await;
    assert_eq!(payees.status, 200, "{}", payees.body);
    assert_eq!(payees.body["items"].as_array().unwrap().len(), 1, "{}", payees.body);
    assert_eq!(payees.body["items"][0]["id"], payee_id.as_str());
    assert_eq!(payees.body["items"][0]["account_number"], bob_number.as_str());
    assert_eq!(payees.body["items"][0]["holder_name_masked"], bob_masked.as_str());

    // The same number again is the payee saved before, not a second one.
    app.fill("#payee-number", &bob_number).await;
    app.fill("#payee-nickname", "Bob again").await;
    app.click("#payee-add").await;
    app.wait_for(&format!("#payee-result[data-state=existing][data-payee-id='{payee_id}']")).await;
    app.wait_count("[data-test=payee]", 1, Duration::from_secs(20)).await;
    // No such account: said so, nothing saved.
    app.fill("#payee-number", "999999999999").await;
    app.fill("#payee-nickname", "Nobody").await;
    app.click("#payee-add").await;
    app.wait_text("#payee-error", "no such account", |t| t.contains("No such account")).await;
    app.wait_count("[data-test=payee]", 1, Duration::from_secs(20)).await;

    // The security notice of the new payee, in the app.
    app.click("#nav-notifications").await;
    app.wait_text(
        "[data-test=notification][data-kind='payee.added'] [data-test=notification-text]",
        "the new payee's notice",
        |t| t.contains("Rent"),
    )
    .await;

    // A new account number: Continue shows whom it pays; nothing is sent yet.
    let before = balance_via_api(&alice, &from_number).await;
    let ledger_before = stack.ledger_snapshot().await;
    app.click("#nav-move").await;
    app.select("#transfer-from", &from_id).await;
    app.select("#transfer-payee", "new").await;
    app.fill("#transfer-to", &carol_number).await;
    app.fill("#transfer-amount", "10.00").await;
    app.fill("#transfer-memo", "to carol").await;
    app.click("#transfer-submit").await;
    app.wait_for("#transfer-confirm-panel").await;
    let sentence = format!("You are paying {carol_masked}, account {carol_number_masked}");
    app.wait_text("#transfer-payee-confirm", &sentence, |t| t.trim() == sentence).await;
    // Changing the amount takes the confirmation away: it was for 10.00.
    app.fill("#transfer-amount", "11.00").await;
    panel_gone(&app).await;
    app.click("#transfer-submit").await;
    app.wait_text("#transfer-payee-confirm", &sentence, |t| t.trim() == sentence).await;
    app.wait_text("#transfer-confirm-amount", "the amount", |t| t.contains("11.00")).await;
    app.showcase("confirm-payee");
    assert_eq!(stack.ledger_snapshot().await, ledger_before, "nothing is sent before Confirm transfer");
    assert_eq!(balance_via_api(&alice, &from_number).await, before);

    // Cancel sends nothing.
    app.click("#transfer-cancel").await;
    panel_gone(&app).await;
    app.wait_for("#transfer-result[data-state=cancelled]").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stack.ledger_snapshot().await, ledger_before, "a cancelled transfer sends nothing");

    // Confirm sends it once, and saves carol as a payee on the way.
    app.click("#transfer-submit").await;
    app.wait_text("#transfer-payee-confirm", &sentence, |t| t.trim() == sentence).await;
    app.click("#transfer-save-payee").await;
    app.fill("#transfer-save-nickname", "Carol").await;
    app.click("#transfer-confirm").await;
    app.wait_for("#transfer-result[data-state=committed]").await;
    app.wait_text("#transfer-result", "the payee saved", |t| t.contains("Saved as payee Carol"))
        .await;
    panel_gone(&app).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(balance_via_api(&alice, &from_number).await, before - dec("11.00"), "sent exactly once");
    assert_eq!(entries_with_memo(&alice, &from_id, "to carol").await, 1);
    // Carol has not signed in yet (no authenticator): her balance as the branch sees it.
    let carol_account = admin.get(&format!("/v1/admin/accounts?query={carol_number}")).await;
    assert_eq!(
        dec(carol_account.body["items"][0]["balance"].as_str().unwrap()),
        dec("11.00"),
        "{}",
        carol_account.body
    );

    // The saved payee: chosen by nickname, confirmed from what was saved.
    let bob_before = balance_via_api(&bob, &bob_number).await;
    app.select("#transfer-payee", &payee_id).await;
    app.fill("#transfer-amount", "5.00").await;
    app.fill("#transfer-memo", "rent").await;
    app.click("#transfer-submit").await;
    app.wait_for("#transfer-confirm-panel[data-saved=true]").await;
    let sentence = format!("You are paying {bob_masked}, account {bob_number_masked}");
    app.wait_text("#transfer-payee-confirm", &sentence, |t| t.trim() == sentence).await;
    let to_field = app.all("#transfer-to").await;
    assert!(!to_field[0].is_displayed().await.unwrap_or(true), "a saved payee needs no account number typed");
    app.click("#transfer-confirm").await;
    app.wait_for("#transfer-result[data-state=committed]").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(balance_via_api(&alice, &from_number).await, before - dec("16.00"));
    assert_eq!(balance_via_api(&bob, &bob_number).await, bob_before + dec("5.00"));
    assert_eq!(entries_with_memo(&alice, &from_id, "rent").await, 1);

    // Deleting asks first; cancelled, the payee stays; confirmed, it is gone everywhere.
    app.click("#nav-payees").await;
    app.wait_count("[data-test=payee]", 2, Duration::from_secs(20)).await;
    let delete = format!("[data-test=payee-delete][data-payee-id='{payee_id}']");
    app.click(&delete).await;
    app.click("#confirm-cancel").await;
    app.wait_for(&row).await;
    app.click(&delete).await;
    app.click("#confirm-ok").await;
    app.wait_count(&row, 0, Duration::from_secs(20)).await;
    app.wait_count("[data-test=payee][data-nickname='Carol']", 1, Duration::from_secs(20)).await;
    let payees = alice.get("/v1/payees").await;
    let left: Vec<&str> = payees.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nickname"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["Carol"], "{}", payees.body);
    assert_eq!(alice.delete(&format!("/v1/payees/{payee_id}")).await.status, 404, "a deleted payee is gone");
    app.wait_count(&format!("#transfer-payee option[value='{payee_id}']"), 0, Duration::from_secs(20))
        .await;
    stack.assert_ledger_invariants().await;
    app.quit().await;
}
