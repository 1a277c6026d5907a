//! Daily limits in the desktop app, in a real window against a real stack:
//! the customer sees the same figures as the API, a lower limit counts at
//! once and stops a transfer over it (nothing moves), a raise waits 24 h,
//! above the bank's default only the branch may go; the branch admin sets a
//! limit at once and adds a joint owner from the Accounts view.

use std::time::Duration;

use flexibank_tests::{dec, desktop::DesktopApp, Session, TestStack};
use rust_decimal::Decimal;
use serde_json::Value;

/// "1,250.00 INR" as the app shows an amount.
fn shown(amount: Decimal, currency: &str) -> String {
    let text = format!("{:.2}", amount);
    let (whole, fraction) = text.split_once('.').unwrap();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{fraction} {currency}")
}

async fn limits(session: &Session, account_id: &str) -> Value {
    let r = session.get(&format!("/v1/accounts/{account_id}/limits")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Whether `css` is shown now (false when it is hidden or not there).
async fn displayed(app: &DesktopApp, css: &str) -> bool {
    match app.all(css).await.first() {
        Some(element) => element.is_displayed().await.unwrap_or(false),
        None => false,
    }
}

async fn balance(session: &Session, account_id: &str) -> Decimal {
    let r = session.get(&format!("/v1/accounts/{account_id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    dec(r.body["balance"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_lowers_and_raises_her_daily_limit_and_the_branch_sets_it() {
    let stack = TestStack::start("desktop-limits").await;
    let data_dir = stack.dir().join("app");
    let app = DesktopApp::launch(&stack, "limits", &data_dir).await;
    let number = stack.user("alice").account_numbers[0].clone();
    let account_id = stack.account_id(&number).await.to_string();
    let bob_number = stack.user("bob").account_numbers[0].clone();
    // One API session per user: every login spends a TOTP step of theirs.
    let alice = stack.login("alice").await;

    // Limits shows what the API says: the limit, what was used today (the seed's movements), the bank's default.
    let before = limits(&alice, &account_id).await;
    let currency = before["currency"].as_str().unwrap().to_string();
    assert_eq!(currency, "INR", "{before}");
    let (limit, used, bank_default) = (
        before["daily_transfer_limit"].as_str().unwrap().to_string(),
        before["used_today"].as_str().unwrap().to_string(),
        before["bank_default"].as_str().unwrap().to_string(),
    );
    assert_eq!(before["pending_raise"], Value::Null);
    app.login(&stack, "alice").await;
    app.click("#nav-limits").await;
    app.select("#limit-account", &account_id).await;
    app.wait_for(&format!("[data-view=limits][data-account-id='{account_id}']")).await;
    assert_eq!(app.attr("#limit-current", "data-limit").await.as_deref(), Some(limit.as_str()));
    assert_eq!(app.attr("#limit-used", "data-used").await.as_deref(), Some(used.as_str()));
    assert_eq!(app.attr("#limit-default", "data-default").await.as_deref(), Some(bank_default.as_str()));
    assert_eq!(app.text("#limit-current").await.trim(), shown(dec(&limit), &currency));
    assert_eq!(app.text("#limit-used").await.trim(), shown(dec(&used), &currency));
    assert_eq!(app.text("#limit-time-zone").await.trim(), before["time_zone"].as_str().unwrap());
    assert!(!displayed(&app, "#limit-pending").await, "no raise waits");

    // Lowering to 100.00 above what was used today counts at once.
    let lowered = dec(&used) + dec("100.00");
    let lowered_text = format!("{lowered:.2}");
    app.fill("#limit-new", &lowered_text).await;
    app.click("#limit-save").await;
    app.wait_for("#limit-result[data-state=now]").await;
    app.wait_for(&format!("#limit-current[data-limit='{lowered_text}']")).await;
    assert_eq!(app.attr("#limit-left", "data-left").await.as_deref(), Some("100.00"));
    let after = limits(&alice, &account_id).await;
    assert_eq!(after["daily_transfer_limit"], lowered_text.as_str(), "{after}");
    assert_eq!(after["pending_raise"], Value::Null);

    // 100.01 to bob in Move money (confirmed first): refused in plain words, nothing moves.
    let balance_before = balance(&alice, &account_id).await;
    let ledger_before = stack.ledger_snapshot().await;
    app.click("#nav-move").await;
    app.select("#transfer-from", &account_id).await;
    app.select("#transfer-payee", "new").await;
    app.fill("#transfer-to", &bob_number).await;
    app.fill("#transfer-amount", "100.01").await;
    app.fill("#transfer-memo", "over the limit").await;
    app.click("#transfer-submit").await;
    app.wait_for("#transfer-confirm-panel").await;
    app.click("#transfer-confirm").await;
    app.wait_for("#transfer-error[data-code=limit_exceeded]").await;
    let refusal = app.text("#transfer-error").await;
    for part in [
        "Over the daily limit".to_string(),
        format!("100.01 {currency}"),
        shown(lowered, &currency),
        format!("{} already sent today", shown(dec(&used), &currency)),
        format!("at most 100.00 {currency} can still go today"),
        number.clone(),
        "Nothing was moved".to_string(),
    ] {
        assert!(refusal.contains(&part), "{part:?} missing from {refusal:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(balance(&alice, &account_id).await, balance_before, "nothing left the account");
    assert_eq!(stack.ledger_snapshot().await, ledger_before, "nothing reached the ledger");
    assert_eq!(limits(&alice, &account_id).await["used_today"], used.as_str());

    // Above the bank's default: only the branch may, said so plainly; nothing changes.
    app.click("#nav-limits").await;
    app.wait_for(&format!("#limit-current[data-limit='{lowered_text}']")).await;
    let above = dec(&bank_default) + dec("1.00");
    app.fill("#limit-new", &format!("{above:.2}")).await;
    app.click("#limit-save").await;
    app.wait_for("#limit-error[data-code=forbidden]").await;
    let words = format!(
        "Only your branch can set a limit above the bank's default of {}",
        shown(dec(&bank_default), &currency)
    );
    app.wait_text("#limit-error", &words, |t| t.contains(&words)).await;
    assert_eq!(limits(&alice, &account_id).await["pending_raise"], Value::Null);

    // Raising to the bank's default waits 24 h: shown as pending with its date; the limit stays.
    app.fill("#limit-new", &bank_default).await;
    app.click("#limit-save").await;
    app.wait_for("#limit-result[data-state=pending]").await;
    app.wait_for(&format!("#limit-pending[data-limit='{bank_default}']")).await;
    assert!(displayed(&app, "#limit-pending").await, "the raise is shown");
    assert_eq!(
        app.attr("#limit-current", "data-limit").await.as_deref(),
        Some(lowered_text.as_str()),
        "not yet"
    );
    let effective_at = app.attr("#limit-pending", "data-effective-at").await.expect("the raise's date");
    let at: chrono::DateTime<chrono::Utc> = effective_at.parse().unwrap_or_else(|_| panic!("not a date: {effective_at:?}"));
    let wait = at - chrono::Utc::now();
    assert!(wait > chrono::Duration::hours(23) && wait <= chrono::Duration::hours(24), "{wait}");
    let pending_text = app.text("#limit-pending").await;
    assert!(pending_text.contains(&shown(dec(&bank_default), &currency)), "{pending_text:?}");
    let raised = limits(&alice, &account_id).await;
    assert_eq!(raised["daily_transfer_limit"], lowered_text.as_str(), "{raised}");
    assert_eq!(raised["pending_raise"]["daily_transfer_limit"], bank_default.as_str(), "{raised}");
    let api_at: chrono::DateTime<chrono::Utc> = raised["pending_raise"]["effective_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(api_at, at, "the app shows the server's date");
    // Every owner hears of a raise: the notice arrives in the window too (then dismissed for the picture).
    let raise = shown(dec(&bank_default), &currency);
    app.wait_text("#toast", "the raise's notice as a toast", |t| t.contains(&format!("rises to {raise}")))
        .await;
    for close in app.all("#toast .toast-close").await {
        let _ = close.click().await;
    }
    app.wait_count("#toast .toast", 0, Duration::from_secs(20)).await;
    app.showcase("limits");

    // The raise's security notice, in the list.
    app.click("#nav-notifications").await;
    app.wait_text(
        "[data-test=notification][data-kind='limit.raised'] [data-test=notification-text]",
        "the raise's notice",
        |t| t.contains(&format!("rises to {raise}")),
    )
    .await;

    // The branch admin, in the same window: the same figures, and a limit set at once.
    app.click("#logout").await;
    app.login(&stack, "admin").await;
    app.click("#nav-admin-accounts").await;
    app.fill("#admin-account-query", &number).await;
    app.click("#admin-account-search").await;
    let row = format!("[data-test=admin-account-row][data-number='{number}']");
    app.click(&format!("{row} [data-test=account-limit]")).await;
    app.wait_for(&format!("#admin-limit-dialog[data-account-id='{account_id}'][data-loaded=true]"))
        .await;
    assert_eq!(app.attr("#admin-limit-current", "data-limit").await.as_deref(), Some(lowered_text.as_str()));
    assert_eq!(app.attr("#admin-limit-used", "data-used").await.as_deref(), Some(used.as_str()));
    assert_eq!(app.attr("#admin-limit-pending", "data-limit").await.as_deref(), Some(bank_default.as_str()));
    let branch_limit = "750000.00";
    app.fill("#admin-limit-new", branch_limit).await;
    app.click("#admin-limit-save").await;
    app.wait_for("#admin-limit-result[data-state=now]").await;
    app.wait_for(&format!("#admin-limit-current[data-limit='{branch_limit}']")).await;
    assert!(!displayed(&app, "#admin-limit-pending").await, "the waiting raise is gone");
    let set = limits(&alice, &account_id).await;
    assert_eq!(set["daily_transfer_limit"], branch_limit, "{set}");
    assert_eq!(set["pending_raise"], Value::Null, "{set}");
    app.click("#admin-limit-close").await;
    app.wait_count("#admin-limit-dialog", 0, Duration::from_secs(20)).await;

    // Add owner: bob, found by name, becomes a joint owner of the account.
    let admin = stack.login("admin").await;
    let found = admin.get("/v1/admin/customers?query=Mehta").await;
    assert_eq!(found.status, 200, "{}", found.body);
    let bob_id = found.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["username"] == "bob")
        .expect("bob in the branch")["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.click(&format!("{row} [data-test=account-add-owner]")).await;
    app.fill("#add-owner-query", "Mehta").await;
    app.click("#add-owner-search").await;
    app.wait_for(&format!("#add-owner-customer option[value='{bob_id}']")).await;
    app.select("#add-owner-customer", &bob_id).await;
    app.click("#add-owner-submit").await;
    app.wait_for(&format!("#admin-account-result[data-state=owner-added][data-number='{number}']"))
        .await;
    app.wait_text(&row, "bob among the owners", |t| t.contains("Bob Mehta")).await;
    let account = admin.get(&format!("/v1/admin/accounts?query={number}")).await;
    let owners: Vec<&str> = account.body["items"][0]["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["full_name"].as_str().unwrap())
        .collect();
    assert!(owners.contains(&"Bob Mehta") && owners.contains(&"Alice Fernandes"), "{}", account.body);
    stack.assert_ledger_invariants().await;
    app.quit().await;
}
