//! The desktop app in a consortium: two real banks (each a FlexiBank server
//! on its own PostgreSQL cluster) and the switch, the app pointed at a
//! stack.json listing both banks. Alice picks her bank on the login screen,
//! pays herself at the other bank by her national id key (the masked payee
//! shown before anything is sent), sees the entry in her history, registers
//! and deletes a random key, sets up a standing order to bob's key at the other
//! bank (whom it pays shown masked first); the branch admin sees the bank's position and
//! the payment. Afterwards the API and the consortium's invariants agree.

use std::time::{Duration, Instant};

use flexibank_tests::{
    consortium::{register_key, Consortium, BANK_A, BANK_B},
    desktop::DesktopApp,
    Session, TestStack,
};
use fantoccini::Locator;
use rust_decimal::Decimal;

fn dec(text: &str) -> Decimal {
    text.parse().unwrap_or_else(|_| panic!("not a decimal: {text:?}"))
}

async fn balance(session: &Session, account_id: &str) -> Decimal {
    let r = session.get(&format!("/v1/accounts/{account_id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    dec(r.body["balance"].as_str().unwrap())
}

/// The value a `<select>` has chosen.
async fn selected(app: &DesktopApp, css: &str) -> String {
    app.find(css).await.prop("value").await.ok().flatten().unwrap_or_default()
}

async fn account_id(stack: &TestStack, username: &str) -> String {
    stack.account_id(&stack.user(username).account_numbers[0]).await.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_pays_by_key_across_banks_and_manages_keys_in_the_app() {
    let mut consortium = Consortium::start("desktop-interbank", Default::default()).await;
    let (a, b) = (&consortium.a, &consortium.b);

    // Alice also banks at B, where her national id is her key.
    let alice_b = b.login("alice").await;
    let alice_b_inr = account_id(b, "alice").await;
    let key = register_key(&alice_b, &alice_b_inr, "national_id", Some("DEMO-alice")).await;
    assert_eq!(key["status"], "active");
    let alice_a = a.login("alice").await;
    let alice_a_inr = account_id(a, "alice").await;
    let (before_a, before_b) = (balance(&alice_a, &alice_a_inr).await, balance(&alice_b, &alice_b_inr).await);

    // Beta Bank listed first: the default; alice picks Alpha Bank.
    let data_dir = a.dir().join("app-interbank");
    let app = DesktopApp::launch_banks(&[(BANK_B, "Beta Bank", b), (BANK_A, "Alpha Bank", a)], "interbank", &data_dir).await;
    assert_eq!(selected(&app, "#login-bank").await, BANK_B, "the first bank is the default");
    app.select("#login-bank", BANK_A).await;
    app.wait_text("#login-server", "Alpha Bank's server", |t| t.contains("Alpha Bank") && t.contains(&a.base_url)).await;
    app.showcase("login-banks");
    app.login(a, "alice").await;

    // Pay by key: look up first; the payee is shown masked, nothing is sent yet.
    app.click("#nav-paykey").await;
    app.select("#paykey-from", &alice_a_inr).await;
    app.select("#paykey-type", "national_id").await;
    app.fill("#paykey-value", "DEMO-alice").await;
    app.click("#paykey-lookup").await;
    let payee = app
        .wait_text("#paykey-payee", "the masked payee at Beta Bank", |t| t.starts_with("You are paying A") && t.contains("Beta Bank") && t.contains("account ••••"))
        .await;
    assert!(!payee.contains("Fernandes") && !payee.contains(&b.user("alice").account_numbers[0]), "masked: {payee}");
    assert_eq!(app.attr("#paykey-payee", "data-bank-id").await.as_deref(), Some(BANK_B));
    let sent = alice_a.get("/v1/interbank/payments").await;
    assert_eq!(sent.body["items"].as_array().map(Vec::len), Some(0), "nothing is sent before the confirmation: {}", sent.body);

    // A refusal is shown plainly and moves nothing.
    app.fill("#paykey-amount", "99999999.00").await;
    app.click("#paykey-confirm").await;
    app.wait_for("#paykey-result[data-state=refused][data-code=insufficient_funds]").await;
    app.wait_text("#paykey-result", "why it was not paid", |t| t.starts_with("Not paid") && t.contains("Insufficient funds")).await;
    assert_eq!(balance(&alice_a, &alice_a_inr).await, before_a, "a refused payment moves nothing");

    app.fill("#paykey-amount", "10.00").await;
    app.fill("#paykey-memo", "desktop by key").await;
    app.wait_text("#paykey-payee", "the payee still shown", |t| t.contains("Beta Bank")).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the typed text painted
    app.showcase("pay-by-key");

    // Bank A's server down: no answer is not a refusal; the attempt (and its
    // Idempotency-Key) is kept, and "Confirm payment" again sends the same one.
    consortium.a.stop_server().await;
    app.click("#paykey-confirm").await;
    app.wait_text("#paykey-error[data-retry=true]", "a retry offered", |t| t.contains("Cannot reach the server") && t.contains("again")).await;
    consortium.a.start_server().await;
    let a = &consortium.a;
    app.click("#paykey-confirm").await;
    // 201 committed, or 202 pending that the screen follows to committed by itself.
    let started = Instant::now();
    loop {
        if let Ok(result) = app.client.find(Locator::Css("#paykey-result:not([hidden])")).await {
            let state = result.attr("data-state").await.ok().flatten().unwrap_or_default();
            if state == "committed" {
                break;
            }
            if state == "refused" {
                let text = result.text().await.unwrap_or_default();
                app.fail(&format!("the payment was refused: {text}"));
            }
        }
        if started.elapsed() > Duration::from_secs(45) {
            app.fail("no committed result within 45 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expected_a = before_a - dec("10.00");
    let shown_after = app.attr("#paykey-result", "data-balance-after").await.expect("balance after shown");
    assert_eq!(dec(&shown_after), expected_a, "the balance after the payment");
    app.wait_text("#paykey-result", "what was paid to whom", |t| t.contains("Paid 10.00 INR") && t.contains("Beta Bank")).await;
    app.showcase("pay-by-key-committed");
    let payments = alice_a.get("/v1/interbank/payments").await;
    let committed = payments.body["items"].as_array().unwrap().iter().filter(|p| p["status"] == "committed").count();
    assert_eq!(committed, 1, "paid once: {}", payments.body);

    // History: the inter-bank entry names the other bank.
    app.click("#nav-history").await;
    app.select("#history-account", &alice_a_inr).await;
    let row = format!("#history-list [data-test=history-row][data-kind=interbank_out][data-counterparty-bank='{BANK_B}']");
    app.wait_for(&row).await;
    app.wait_text(&format!("{row} [data-test=counterparty]"), "the other bank", |t| t.contains(&format!("to bank {BANK_B}"))).await;
    assert_eq!(dec(&app.attr(&row, "data-amount").await.unwrap()), dec("10.00"));
    app.showcase("history-interbank");

    // My keys: a random key, listed active, then deleted after a confirmation.
    app.click("#nav-keys").await;
    app.select("#key-account", &alice_a_inr).await;
    app.select("#key-type", "random").await;
    app.click("#key-register").await;
    app.wait_for("#key-result[data-state=active]").await;
    let value = app.attr("#key-result", "data-value").await.expect("the new key's value");
    let key_row = format!("[data-test=key-row][data-value='{value}']");
    app.wait_for(&format!("{key_row}[data-status=active]")).await;
    let listed = alice_a.get("/v1/keys").await;
    assert!(listed.body["items"].as_array().unwrap().iter().any(|k| k["value"] == value.as_str() && k["status"] == "active"), "{}", listed.body);
    app.showcase("my-keys");
    app.click(&format!("{key_row} [data-action=delete]")).await;
    app.wait_text("#confirm-message", "the key named", |t| t.contains(&value)).await;
    app.click("#confirm-ok").await;
    app.wait_count(&key_row, 0, Duration::from_secs(20)).await;

    // An e-mail key waits for the code sent to that address: a wrong code is
    // refused, the right one activates it; then it is deleted too.
    app.select("#key-type", "email").await;
    app.fill("#key-value", "alice.desktop@example.com").await;
    app.click("#key-register").await;
    app.wait_for("#key-result[data-state=pending_verification]").await;
    let key_id = app.attr("#key-result", "data-id").await.expect("the pending key's id");
    let email_row = format!("[data-test=key-row][data-id='{key_id}']");
    app.wait_for(&format!("{email_row}[data-status=pending_verification]")).await;
    app.wait_for("#key-verify-form #key-code").await;
    app.showcase("my-keys-verify");
    let db = a.superuser(&a.primary_name()).await;
    let code: String = flexibank_tests::eventually(Duration::from_secs(10), "the e-mail key's code", || async {
        db.query_opt("SELECT payload->>'code' FROM notification_events WHERE kind = 'key.verification' AND payload->>'key_id' = $1", &[&key_id])
            .await
            .unwrap()
            .and_then(|row| row.get::<_, Option<String>>(0))
    })
    .await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    app.fill("#key-code", wrong).await;
    app.click("#key-verify").await;
    app.wait_text("#key-verify-error", "the wrong code refused", |t| !t.trim().is_empty()).await;
    app.fill("#key-code", &code).await;
    app.click("#key-verify").await;
    app.wait_for(&format!("{email_row}[data-status=active]")).await;
    app.wait_for(&format!("#key-result[data-state=active][data-id='{key_id}']")).await;
    app.click(&format!("{email_row} [data-action=delete]")).await;
    app.wait_text("#confirm-message", "the key named", |t| t.contains("alice.desktop@example.com")).await;
    app.click("#confirm-ok").await;
    app.wait_count(&email_row, 0, Duration::from_secs(20)).await;
    let listed = alice_a.get("/v1/keys").await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(0), "deleted at the server: {}", listed.body);

    // A standing order to a key at the other bank: bob's random key at B, looked up (masked)
    // before anything is set up. The app offers days at the least, so a daily order from a date
    // ahead (nothing runs during the test); the server keeps the key as its payee.
    let bob_b = b.login("bob").await;
    let bob_b_number = b.user("bob").account_numbers[0].clone();
    let bob_key = register_key(&bob_b, &account_id(b, "bob").await, "random", None).await;
    let bob_key = bob_key["value"].as_str().expect("the random key's value").to_string();
    let zone = alice_a.get("/v1/me/notification-settings").await.body["time_zone"].as_str().unwrap_or_default().to_string();
    assert_eq!(zone, "UTC", "alice's default time zone");
    let start = chrono::Utc::now().date_naive() + chrono::Days::new(2);
    app.click("#nav-standing-orders").await;
    app.wait_text("#so-zone", "alice's time zone", |t| t.contains("UTC")).await;
    app.select("#so-from", &alice_a_inr).await;
    app.select("#so-payee", "new-key").await;
    app.select("#so-key-type", "random").await;
    app.fill("#so-key-value", &bob_key).await;
    app.fill("#so-amount", "25.00").await;
    app.fill("#so-memo", "pocket money").await;
    app.select("#so-every", "day").await;
    // Date fields take typed digits in the display's order: set as the widget sets a picked date.
    let script = "const e = document.querySelector('#so-start'); e.value = arguments[0];
                  e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); return e.value;";
    let set = app.client.execute(script, vec![flexibank_tests::json!(start.to_string())]).await.expect("setting #so-start");
    assert_eq!(set, flexibank_tests::json!(start.to_string()));
    app.wait_text("#so-preview", "every day at 09:00", |t| t.trim() == "Every day at 09:00 (UTC)").await;
    app.click("#so-submit").await;
    let panel = "#so-confirm-panel[data-target=key]";
    app.wait_for(panel).await;
    let holder = flexibank_tests::masked_name("Bob Mehta");
    let account = flexibank_tests::masked_number(&bob_b_number);
    assert_eq!(app.attr(panel, "data-holder-masked").await.as_deref(), Some(holder.as_str()));
    assert_eq!(app.attr(panel, "data-account-masked").await.as_deref(), Some(account.as_str()));
    assert_eq!(app.attr(panel, "data-first-run").await, Some(start.to_string()));
    let whom = format!("You are paying {holder}, Beta Bank, account {account}, by random key {bob_key}");
    assert_eq!(app.text("#so-payee-confirm").await.trim(), whom);
    let none = alice_a.get("/v1/standing-orders").await;
    assert_eq!(none.body["items"].as_array().map(Vec::len), Some(0), "nothing set up before the confirmation: {}", none.body);
    for close in app.all("#toast .toast-close").await {
        let _ = close.click().await; // the notices of the payment and keys above, for a clear picture
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.showcase("standing-order-key");
    app.click("#so-confirm").await;
    app.wait_for("#so-result[data-state=created]").await;
    let order_id = app.attr("#so-result", "data-order-id").await.expect("the new order's id");
    let listed = alice_a.get("/v1/standing-orders").await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one order: {}", listed.body);
    let order = &items[0];
    assert_eq!((order["id"].as_str(), order["status"].as_str()), (Some(order_id.as_str()), Some("active")));
    assert_eq!(order["to"], flexibank_tests::json!({"key": {"type": "random", "value": bob_key}}));
    assert_eq!((order["amount"].as_str(), order["currency"].as_str(), order["memo"].as_str()), (Some("25.00"), Some("INR"), Some("pocket money")));
    assert_eq!(order["schedule"], flexibank_tests::json!({"every": "day", "interval": 1, "time": "09:00"}));
    let next_run = order["next_run_at"].as_str().expect("a next run");
    assert_eq!(next_run.parse::<chrono::DateTime<chrono::Utc>>().unwrap(), start.and_hms_opt(9, 0, 0).unwrap().and_utc());
    let row = format!("[data-test=standing-order][data-order-id='{order_id}'][data-key-type=random][data-key-value='{bob_key}']");
    assert_eq!(app.attr(&row, "data-next-run-at").await.as_deref(), Some(next_run));
    app.wait_text(&format!("{row} [data-test=so-to]"), "the key it pays", |t| t.contains(&bob_key)).await;

    // The branch admin of bank A: the position and the payment.
    app.click("#logout").await;
    app.wait_for("#login-username").await;
    assert_eq!(selected(&app, "#login-bank").await, BANK_A, "the chosen bank stays chosen");
    app.login(a, "admin").await;
    app.click("#nav-interbank").await;
    app.wait_text("[data-test=ib-bank-id]", "bank A's id", |t| t.trim() == BANK_A).await;
    app.wait_for("[data-test=ib-payment-row][data-status=committed]").await;
    let position = app.attr("[data-test=ib-position]", "data-value").await.unwrap();
    assert_eq!(dec(&position), dec("-10.00"), "A paid 10.00 out");
    app.showcase("admin-interbank");

    // The money: exactly 10.00 from alice at A to alice at B, once.
    assert_eq!(balance(&alice_a, &alice_a_inr).await, expected_a);
    let credited = flexibank_tests::eventually(Duration::from_secs(20), "the credit at bank B", || async {
        let now = balance(&alice_b, &alice_b_inr).await;
        (now != before_b).then_some(now)
    })
    .await;
    assert_eq!(credited, before_b + dec("10.00"), "alice at B got exactly +10.00");
    let history_b = alice_b.get(&format!("/v1/accounts/{alice_b_inr}/transactions?limit=5")).await;
    let incoming: Vec<_> = history_b.body["items"].as_array().unwrap().iter().filter(|e| e["kind"] == "interbank_in").collect();
    assert_eq!(incoming.len(), 1, "{}", history_b.body);
    assert_eq!(incoming[0]["counterparty_bank_id"], BANK_A);
    drop(app);
    consortium.assert_invariants().await;
}
