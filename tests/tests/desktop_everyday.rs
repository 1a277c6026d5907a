//! Everyday banking in the desktop app, in a real window against a real
//! stack: a monthly standing order set up in the window (whom it pays shown,
//! nothing set up before "Create standing order", its next payment the
//! server's), paused and resumed, its amount and time changed (only what
//! changed is sent); a fast order's runs shown as they happen, then cancelled
//! from the window; an exchange between currencies at a rate the branch set
//! (a quote with its countdown, an expired one replaced, the balances moved by
//! the quote's amounts); a monthly statement saved as a PDF whose closing
//! balance is the account's, by the customer and by the branch admin.

use std::{path::Path, time::Duration};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use flexibank_tests::{dec, desktop::DesktopApp, eventually, json, masked_name, masked_number, pdftotext, Session, StackOptions, TestStack};
use rust_decimal::Decimal;
use serde_json::Value;

/// Standing orders in seconds (tests only) looked for every 200 ms; quotes that hold 15 s.
fn everyday(config: &mut flexibank_server::Config) {
    config.standing_orders.allow_seconds = true;
    config.standing_orders.poll_interval_ms = 200;
    config.fx.quote_ttl_s = 15;
}

const ZONE: &str = "Asia/Kolkata";

async fn balance(session: &Session, account_id: &str) -> Decimal {
    let r = session.get(&format!("/v1/accounts/{account_id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    dec(r.body["balance"].as_str().unwrap())
}

async fn orders(session: &Session) -> Vec<Value> {
    let r = session.get("/v1/standing-orders").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

async fn order(session: &Session, id: &str) -> Value {
    orders(session)
        .await
        .into_iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("no order {id}"))
}

/// Picks a date in a date field. WebKit's date widget takes typed digits in the order of the
/// display's locale (12/31/2026 here, 31/12/2026 elsewhere), so the date is set as the widget
/// sets it when one is picked: the value, then the input and change events.
async fn pick_date(app: &DesktopApp, css: &str, date: NaiveDate) {
    set_value(app, css, &date.to_string()).await;
}

/// Sets a date or time field as its widget does when a value is picked (typed digits follow
/// the display's locale): the value, then the input and change events.
async fn set_value(app: &DesktopApp, css: &str, value: &str) {
    app.wait_for(css).await;
    let script = "const e = document.querySelector(arguments[0]); e.value = arguments[1];
                  e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true}));
                  return e.value;";
    let set = app
        .client
        .execute(script, vec![json!(css), json!(value)])
        .await
        .expect("setting the field");
    assert_eq!(set, json!(value), "{css} takes {value}");
}

/// Closes the notices shown as toasts (money moving every 2 s has many), for a clear picture.
async fn dismiss_toasts(app: &DesktopApp) {
    for close in app.all("#toast .toast-close").await {
        let _ = close.click().await;
    }
}

/// Whether `css` is shown now (false when it is hidden or not there).
async fn displayed(app: &DesktopApp, css: &str) -> bool {
    match app.all(css).await.first() {
        Some(element) => element.is_displayed().await.unwrap_or(false),
        None => false,
    }
}

/// The `attr` of every element `css` matches.
async fn attrs(app: &DesktopApp, css: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for element in app.all(css).await {
        if let Ok(Some(value)) = element.attr(attr).await {
            out.push(value);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standing_orders_an_exchange_and_a_statement_in_the_window() {
    let stack = TestStack::start_with(
        "desktop-everyday",
        StackOptions {
            replicas: 1,
            sync: true,
            configure: everyday,
        },
    )
    .await;
    let data_dir = stack.dir().join("app");
    let app = DesktopApp::launch(&stack, "everyday", &data_dir).await;
    let (inr_number, usd_number) = (stack.user("alice").account_numbers[0].clone(), stack.user("alice").account_numbers[1].clone());
    let (inr_id, usd_id) = (stack.account_id(&inr_number).await.to_string(), stack.account_id(&usd_number).await.to_string());
    let bob_number = stack.user("bob").account_numbers[0].clone();
    // One API session per user: every login spends a TOTP step of theirs.
    let alice = stack.login("alice").await;
    let admin = stack.login("admin").await;

    // Alice lives in Kolkata: her standing orders run on its clock.
    let mut settings = alice.get("/v1/me/notification-settings").await.body;
    settings["time_zone"] = json!(ZONE);
    let saved = alice.put("/v1/me/notification-settings", settings).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    app.login(&stack, "alice").await;

    // ---- (a) A monthly standing order set up in the window, on the next 31st.
    let kolkata_today = (Utc::now() + chrono::Duration::minutes(330)).date_naive();
    let mut start: NaiveDate = kolkata_today.succ_opt().unwrap();
    while start.day() != 31 {
        start = start.succ_opt().unwrap();
    }
    app.click("#nav-standing-orders").await;
    app.wait_text("#so-zone", "alice's time zone", |t| t.contains(ZONE)).await;
    app.select("#so-from", &inr_id).await;
    app.select("#so-payee", "new").await;
    app.fill("#so-to", &bob_number).await;
    app.fill("#so-amount", "2500.00").await;
    app.fill("#so-memo", "rent").await;
    app.select("#so-every", "month").await;
    app.fill("#so-interval", "1").await;
    pick_date(&app, "#so-start", start).await;
    let words = format!("Every month on the 31st at 09:00 ({ZONE})");
    app.wait_text("#so-preview", &words, |t| t.trim() == words).await;
    app.click("#so-submit").await;
    app.wait_for("#so-confirm-panel").await;
    let whom = format!("You are paying {}, account {}", masked_name("Bob Mehta"), masked_number(&bob_number));
    assert_eq!(app.text("#so-payee-confirm").await.trim(), whom);
    assert_eq!(
        app.attr("#so-confirm-panel", "data-first-run").await.as_deref(),
        Some(start.to_string().as_str())
    );
    let first = app.text("#so-confirm-first").await;
    assert!(first.contains(&format!("First payment: {start} at 09:00 ({ZONE})")), "{first:?}");
    // Whom it pays is on the screen, and nothing is set up yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(orders(&alice).await, Vec::<Value>::new(), "nothing before \"Create standing order\"");
    app.click("#so-confirm").await;
    app.wait_for("#so-result[data-state=created]").await;
    let monthly_id = app.attr("#so-result", "data-order-id").await.expect("the new order's id");
    let listed = orders(&alice).await;
    assert_eq!(listed.len(), 1, "exactly one order: {listed:?}");
    let monthly = &listed[0];
    assert_eq!(monthly["id"], monthly_id.as_str());
    assert_eq!(
        (
            monthly["status"].as_str(),
            monthly["time_zone"].as_str(),
            monthly["amount"].as_str(),
            monthly["memo"].as_str()
        ),
        (Some("active"), Some(ZONE), Some("2500.00"), Some("rent"))
    );
    assert_eq!(monthly["schedule"], json!({"every": "month", "interval": 1, "time": "09:00"}));
    assert_eq!(monthly["to"]["account_number"], bob_number.as_str());
    let next_run = monthly["next_run_at"].as_str().expect("a next run").to_string();
    let next: DateTime<Utc> = next_run.parse().unwrap();
    assert_eq!(next, start.and_hms_opt(3, 30, 0).unwrap().and_utc(), "09:00 in Kolkata on {start}");
    // The window shows the server's next payment, on Kolkata's clock.
    let row = format!("[data-test=standing-order][data-order-id='{monthly_id}']");
    assert_eq!(app.attr(&row, "data-next-run-at").await.as_deref(), Some(next_run.as_str()));
    assert_eq!(
        app.text(&format!("{row} [data-test=so-next-run]")).await.trim(),
        format!("{start} 09:00 ({ZONE})")
    );
    let schedule = app.text(&format!("{row} [data-test=so-schedule]")).await;
    assert!(schedule.starts_with(&words), "{schedule:?}");

    // Paused and resumed from the window: the server agrees each time.
    app.click(&format!("{row} [data-test=so-pause][data-action=pause]")).await;
    app.wait_for(&format!("{row}[data-status=paused]")).await;
    assert_eq!(order(&alice, &monthly_id).await["status"], "paused");
    app.click(&format!("{row} [data-test=so-pause][data-action=resume]")).await;
    app.wait_for(&format!("{row}[data-status=active]")).await;
    let resumed = order(&alice, &monthly_id).await;
    assert_eq!(
        (resumed["status"].as_str(), resumed["next_run_at"].as_str()),
        (Some("active"), Some(next_run.as_str()))
    );

    // Changed from the window: a new amount and time; the memo, the period and the first date stay.
    app.click(&format!("{row} [data-test=so-edit]")).await;
    app.wait_for(&format!("#so-edit-dialog[data-order-id='{monthly_id}']")).await;
    app.fill("#so-edit-amount", "2750.50").await;
    set_value(&app, "#so-edit-time", "10:15").await;
    let changed_words = format!("Every month on the 31st at 10:15 ({ZONE})");
    app.wait_text("#so-edit-preview", &changed_words, |t| t.trim() == changed_words).await;
    dismiss_toasts(&app).await;
    app.showcase("standing-order-edit");
    app.click("#so-edit-save").await;
    app.wait_for(&format!("#so-list-result[data-state=changed][data-order-id='{monthly_id}']")).await;
    app.wait_for(&format!("{row}[data-amount='2750.50']")).await;
    let changed = order(&alice, &monthly_id).await;
    assert_eq!(
        (changed["amount"].as_str(), changed["memo"].as_str(), changed["status"].as_str(), changed["start_at"].as_str()),
        (Some("2750.50"), Some("rent"), Some("active"), Some(start.to_string().as_str()))
    );
    assert_eq!(changed["schedule"], json!({"every": "month", "interval": 1, "time": "10:15"}));
    let next_run = changed["next_run_at"].as_str().expect("a next run").to_string();
    assert_eq!(
        next_run.parse::<DateTime<Utc>>().unwrap(),
        start.and_hms_opt(4, 45, 0).unwrap().and_utc(),
        "10:15 in Kolkata on {start}"
    );
    assert_eq!(app.attr(&row, "data-next-run-at").await.as_deref(), Some(next_run.as_str()));
    assert!(!displayed(&app, "#so-edit-dialog").await, "the dialog closed");

    // A fast order (every 2 s, only a test server takes it) set up through the API: its runs
    // appear in the window as they happen, each one paid.
    let key = uuid::Uuid::new_v4().to_string();
    let fast = alice
        .post(
            "/v1/standing-orders",
            json!({"from_account_id": inr_id, "to": {"account_number": bob_number}, "amount": "1.00", "memo": "tick",
                   "schedule": {"every": "second", "interval": 2, "time": "00:00"}, "start_at": kolkata_today.to_string()}),
            Some(&key),
        )
        .await;
    assert_eq!(fast.status, 201, "{}", fast.body);
    let fast_id = fast.body["id"].as_str().unwrap().to_string();
    let fast_row = format!("[data-test=standing-order][data-order-id='{fast_id}']");
    app.click(&format!("{fast_row} [data-test=so-runs]")).await;
    app.wait_for(&format!("#so-runs-panel[data-order-id='{fast_id}']")).await;
    let done = "#so-runs-panel [data-test=so-run][data-status=done]";
    eventually(Duration::from_secs(30), "two paid runs in the window", || async {
        (app.all(done).await.len() >= 2).then_some(())
    })
    .await;
    let statuses = attrs(&app, "#so-runs-panel [data-test=so-run]", "data-status").await;
    assert!(statuses.iter().all(|s| s == "done"), "every run paid: {statuses:?}");
    let words_shown = app.text(&format!("{done} [data-test=so-run-words]")).await;
    assert_eq!(words_shown.trim(), "Paid");
    let api_runs = alice.get(&format!("/v1/standing-orders/{fast_id}/runs")).await;
    assert_eq!(api_runs.status, 200, "{}", api_runs.body);
    let api_transfers: Vec<&str> = api_runs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["transfer_id"].as_str())
        .collect();
    for shown in attrs(&app, done, "data-transfer-id").await {
        assert!(
            api_transfers.contains(&shown.as_str()),
            "{shown} is one of the order's transfers: {api_transfers:?}"
        );
    }
    app.client.execute("document.getElementById('view').scrollTop = 0", vec![]).await.unwrap();
    dismiss_toasts(&app).await;
    app.showcase("standing-orders");

    // Cancelled from the window (after saying what it stops): the server has it cancelled, and no
    // run comes after.
    app.click(&format!("{fast_row} [data-test=so-cancel]")).await;
    app.wait_for("#confirm-dialog").await;
    let question = app.text("#confirm-message").await;
    assert!(question.contains("1.00 INR") && question.contains("cannot be undone"), "{question:?}");
    app.click("#confirm-ok").await;
    app.wait_for(&format!("{fast_row}[data-status=cancelled]")).await;
    app.wait_for("#so-list-result[data-state=cancelled]").await;
    let cancelled = order(&alice, &fast_id).await;
    assert_eq!((cancelled["status"].as_str(), &cancelled["next_run_at"]), (Some("cancelled"), &Value::Null));
    assert!(
        !displayed(&app, &format!("{fast_row} [data-test=so-cancel]")).await,
        "a cancelled order offers no cancel"
    );
    let runs_now = alice.get(&format!("/v1/standing-orders/{fast_id}/runs")).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs_later = alice.get(&format!("/v1/standing-orders/{fast_id}/runs")).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(runs_later, runs_now, "nothing runs after the cancel");
    assert_eq!(order(&alice, &monthly_id).await["status"], "active", "the other order is untouched");

    // ---- (c) An exchange at the rate the branch set.
    let set = admin
        .put("/v1/admin/fx/rates", json!({"rates": [{"from": "INR", "to": "USD", "rate": "0.012"}]}))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    app.click("#nav-exchange").await;
    app.wait_for("[data-test=fx-rate][data-from=INR][data-to=USD]").await;
    app.select("#fx-from", &inr_id).await;
    app.select("#fx-to-choice", &usd_id).await;
    app.wait_text("#fx-rate-hint", "the rate now", |t| t.contains("1 INR = 0.012 USD")).await;
    app.fill("#fx-amount", "1000.00").await;
    app.click("#fx-get-quote").await;
    let live = "#fx-quote-panel[data-state=live]";
    app.wait_for(live).await;
    assert_eq!(app.text("#fx-rate").await.trim(), "1 INR = 0.012 USD");
    assert_eq!(
        app.text("#fx-amounts").await.trim(),
        format!("You send 1,000.00 INR; 12.00 USD arrive in account {usd_number}.")
    );
    assert_eq!(app.text("#fx-payee-confirm").await.trim(), format!("To your account {usd_number} (USD)"));
    let countdown = app.text("#fx-countdown").await;
    assert!(countdown.starts_with("This rate holds for 0:"), "{countdown:?}");
    // Left alone, the quote expires: it can no longer be confirmed, a new one is offered; nothing moved.
    let (inr_before, usd_before) = (balance(&alice, &inr_id).await, balance(&alice, &usd_id).await);
    let first_quote = app.attr("#fx-quote-panel", "data-quote-id").await.expect("a quote id");
    app.wait_for("#fx-quote-panel[data-state=expired] #fx-requote").await;
    assert!(!displayed(&app, "#fx-confirm").await, "an expired quote cannot be confirmed");
    let expired = app.text("#fx-expired").await;
    assert!(expired.contains("expired") && expired.contains("nothing was exchanged"), "{expired:?}");
    assert_eq!((balance(&alice, &inr_id).await, balance(&alice, &usd_id).await), (inr_before, usd_before));
    app.click("#fx-requote").await;
    app.wait_for(live).await;
    let quote_id = app.attr("#fx-quote-panel", "data-quote-id").await.expect("a quote id");
    assert_ne!(quote_id, first_quote, "a new quote");
    let from_amount = dec(&app.attr("#fx-quote-panel", "data-from-amount").await.unwrap());
    let to_amount = dec(&app.attr("#fx-quote-panel", "data-to-amount").await.unwrap());
    assert_eq!((from_amount, to_amount), (dec("1000.00"), dec("12.00")));
    dismiss_toasts(&app).await;
    app.showcase("exchange");
    app.click("#fx-confirm").await;
    app.wait_for("#fx-result[data-state=committed]").await;
    let (inr_after, usd_after) = (balance(&alice, &inr_id).await, balance(&alice, &usd_id).await);
    assert_eq!(inr_after, inr_before - from_amount, "the quote's amount left the INR account");
    assert_eq!(usd_after, usd_before + to_amount, "the quote's amount arrived in the USD account");
    assert_eq!(app.attr("#fx-result", "data-balance-after").await.map(|b| dec(&b)), Some(inr_after));
    assert_eq!(app.attr("#fx-result", "data-to-amount").await.as_deref(), Some("12.00"));

    // ---- (b) The USD account's statement for this month, saved as a PDF.
    let month = Utc::now().format("%Y-%m").to_string();
    app.click("#nav-history").await;
    app.select("#statement-account", &usd_id).await;
    app.select("#statement-month", &month).await;
    app.click("#statement-download").await;
    app.wait_for(&format!("#statement-result[data-state=saved][data-account-id='{usd_id}']")).await;
    let path = app.attr("#statement-result", "data-path").await.expect("the saved file's path");
    assert!(Path::new(&path).starts_with(data_dir.join("exports")), "{path} is in the app's downloads");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    assert!(bytes.starts_with(b"%PDF"), "{path} is a PDF");
    assert_eq!(app.attr("#statement-result", "data-bytes").await, Some(bytes.len().to_string()));
    let shown = app.text("#statement-result").await;
    assert!(shown.contains(&path), "the path is shown: {shown:?}");
    let text = pdftotext(Path::new(&path));
    let closing: Vec<&str> = text
        .lines()
        .find(|l| l.contains("Closing balance"))
        .unwrap_or_else(|| panic!("no closing balance in:\n{text}"))
        .split_whitespace()
        .collect();
    let usd_now = balance(&alice, &usd_id).await;
    assert!(
        closing.contains(&format!("{usd_now:.2}").as_str()),
        "closing balance {usd_now:.2} in {closing:?}"
    );
    assert!(text.contains(&usd_number), "the account's number is on it");
    assert!(text.contains("+12.00"), "the exchange is one of its entries:\n{text}");
    dismiss_toasts(&app).await;
    app.showcase("statement");
    // A second download is a new file: the first is never replaced.
    app.click("#statement-download").await;
    app.wait_for(&format!("#statement-result[data-state=saved]:not([data-path='{path}'])")).await;
    let second = app.attr("#statement-result", "data-path").await.unwrap();
    assert_ne!(second, path);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the first file is untouched");

    // ---- The branch admin, in the same window: the rate set before, and one more set in the form.
    app.click("#logout").await;
    app.login(&stack, "admin").await;
    app.click("#nav-admin-fx").await;
    app.wait_for("[data-test=admin-fx-rate][data-from=INR][data-to=USD][data-rate='0.01200000']")
        .await;
    app.select("#admin-fx-from", "USD").await;
    app.select("#admin-fx-to", "INR").await;
    app.fill("#admin-fx-rate", "83.5").await;
    app.click("#admin-fx-save").await;
    app.wait_text("#confirm-message", "the new rate", |t| t.contains("1 USD = 83.5 INR")).await;
    app.click("#confirm-ok").await;
    app.wait_for("#admin-fx-result[data-state=saved]").await;
    app.wait_for("[data-test=admin-fx-rate][data-from=USD][data-to=INR][data-rate='83.50000000']")
        .await;
    let rates = alice.get("/v1/fx/rates").await.body["rates"].clone();
    let usd_inr = rates
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["from"] == "USD" && r["to"] == "INR")
        .expect("the rate set in the window");
    assert_eq!(usd_inr["rate"], "83.50000000");

    // ---- The branch admin saves the statement of alice's USD account from Accounts: the same PDF.
    app.click("#nav-admin-accounts").await;
    app.fill("#admin-account-query", &usd_number).await;
    app.click("#admin-account-search").await;
    let account_row = format!("[data-test=admin-account-row][data-number='{usd_number}']");
    app.click(&format!("{account_row} [data-test=account-statement]")).await;
    app.wait_for(&format!("#admin-statement-dialog[data-account-id='{usd_id}']")).await;
    app.select("#admin-statement-month", &month).await;
    app.click("#admin-statement-save").await;
    let saved = format!("#admin-statement-result[data-state=saved][data-account-id='{usd_id}'][data-month='{month}']");
    app.wait_for(&saved).await;
    let admin_path = app.attr(&saved, "data-path").await.expect("the saved file's path");
    assert!(admin_path != path && admin_path != second, "a new file: {admin_path}");
    let admin_text = pdftotext(Path::new(&admin_path));
    assert!(admin_text.contains(&usd_number), "the account's number is on it");
    let admin_closing = admin_text.lines().find(|l| l.contains("Closing balance")).unwrap_or_default();
    assert!(admin_closing.contains(&format!("{usd_now:.2}")), "closing balance {usd_now:.2} in {admin_closing:?}");
    app.click("#admin-statement-close").await;
    assert!(!displayed(&app, "#admin-statement-dialog").await, "the dialog closed");

    stack.assert_ledger_invariants().await;
    app.quit().await;
}
