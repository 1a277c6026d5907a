//! The desktop app, built and run in a real window under Xvfb, driven through
//! tauri-driver and WebKitWebDriver against a real stack (primary, synchronous
//! replica, the server over HTTPS with its own CA). Each test saves a
//! screenshot when it fails (var/test/screenshots/).

use std::time::Duration;

use flexibank_tests::{desktop::DesktopApp, TestStack};
use rust_decimal::Decimal;

fn dec(text: &str) -> Decimal {
    text.parse()
        .unwrap_or_else(|_| panic!("not a decimal: {text:?}"))
}

async fn balance_via_api(stack: &TestStack, username: &str, number: &str) -> Decimal {
    let session = stack.login(username).await;
    let me = session.get("/v1/me").await;
    let account = me.body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["number"] == number)
        .expect("own account");
    dec(account["balance"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_logs_in_with_mfa_transfers_and_sees_it_in_history() {
    let stack = TestStack::start("desktop-customer").await;
    let data_dir = stack.dir().join("app");
    let app = DesktopApp::launch(&stack, "customer", &data_dir).await;
    let alice = stack.user("alice").clone();
    let (from_number, to_number) = (
        alice.account_numbers[0].clone(),
        stack.user("bob").account_numbers[0].clone(),
    );
    let from_id = stack.account_id(&from_number).await.to_string();

    app.showcase("login");
    app.login(&stack, "alice").await;
    let card = format!("[data-test=account][data-number='{from_number}'] [data-test=balance]");
    let shown_before = dec(&app.attr(&card, "data-balance").await.expect("data-balance"));
    assert_eq!(
        shown_before,
        balance_via_api(&stack, "alice", &from_number).await,
        "the window shows the server's balance"
    );
    app.wait_for("svg#balance-chart").await;
    app.showcase("customer");

    // A bad amount is refused in the form: nothing reaches the ledger.
    let ledger_before = stack.ledger_snapshot().await;
    app.click("#nav-move").await;
    app.select("#transfer-from", &from_id).await;
    app.fill("#transfer-to", &to_number).await;
    for bad in ["12.345", "0", "-5", "abc"] {
        app.fill("#transfer-amount", bad).await;
        app.click("#transfer-submit").await;
        app.wait_text("#transfer-error", &format!("an error for {bad:?}"), |t| {
            !t.trim().is_empty()
        })
        .await;
    }
    assert_eq!(
        stack.ledger_snapshot().await,
        ledger_before,
        "refused amounts change nothing"
    );

    // A good transfer: first whom it pays (bob, masked), sent only once
    // confirmed; committed, the new balance shown, the history updated.
    app.fill("#transfer-amount", "12.50").await;
    app.fill("#transfer-memo", "desktop e2e").await;
    app.click("#transfer-submit").await;
    app.wait_for("#transfer-confirm-panel").await;
    let sentence = format!(
        "You are paying {}, account ••••{}",
        mask_name(&full_name(&stack, "bob").await),
        &to_number[to_number.len() - 4..]
    );
    app.wait_text("#transfer-payee-confirm", &sentence, |t| t.trim() == sentence).await;
    assert_eq!(
        stack.ledger_snapshot().await,
        ledger_before,
        "nothing is sent before it is confirmed"
    );
    app.click("#transfer-confirm").await;
    app.wait_for("#transfer-result[data-state=committed]").await;
    let expected = shown_before - dec("12.50");
    let expected_text = format!("{:.2}", expected);
    let grouped = group_thousands(&expected_text);
    app.wait_text("#transfer-result", "the new balance", |t| {
        t.contains(&expected_text) || t.contains(&grouped)
    })
    .await;
    assert_eq!(
        balance_via_api(&stack, "alice", &from_number).await,
        expected
    );

    app.click("#nav-history").await;
    app.select("#history-account", &from_id).await;
    let row = "#history-list [data-test=history-row]";
    app.wait_for(row).await;
    let started = std::time::Instant::now();
    loop {
        let first = app
            .all(row)
            .await
            .into_iter()
            .next()
            .expect("a history row");
        let kind = first.attr("data-kind").await.unwrap().unwrap_or_default();
        let amount = first.attr("data-amount").await.unwrap().unwrap_or_default();
        let after = first
            .attr("data-balance-after")
            .await
            .unwrap()
            .unwrap_or_default();
        if kind == "transfer_out" && dec(&amount) == dec("12.50") && dec(&after) == expected {
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            app.fail(&format!("newest history row is {kind} {amount} → {after}, expected transfer_out 12.50 → {expected}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.showcase("history");

    // The bell: the transfer's notification arrives (polled), shown unread.
    app.click("#nav-notifications").await;
    app.wait_for("[data-test=notification][data-kind='money.debit'][data-read=false]").await;
    app.wait_text("[data-test=notification][data-kind='money.debit'] [data-test=notification-text]", "the debit's sentence", |t| t.contains("12.50 INR")).await;
    app.showcase("notifications");
    app.click("#notifications-mark-all").await;
    app.wait_count("[data-test=notification][data-read=false]", 0, Duration::from_secs(20)).await;

    // A batch from CSV: a bad row is named in the preview and nothing can be
    // sent; fixed, all rows go in one all-or-nothing request.
    let bob_number = stack.user("bob").account_numbers[0].clone();
    let bad = format!("from_account,to_account,amount,memo\n{from_number},{bob_number},1.00,one\n{from_number},{bob_number},2.005,two\n");
    app.click("#nav-batch").await;
    app.fill("#batch-csv", &typed_lines(&bad)).await;
    app.click("#batch-preview").await;
    app.wait_for("[data-test=batch-row][data-valid=false]").await;
    assert_eq!(app.attr("#batch-submit", "disabled").await.as_deref(), Some("true"), "an invalid batch cannot be sent");
    let good = format!("from_account,to_account,amount,memo\n{from_number},{bob_number},1.00,one\n{from_number},{bob_number},2.00,two\n{from_number},{bob_number},3.00,\"three, with a comma\"\n");
    app.fill("#batch-csv", &typed_lines(&good)).await;
    app.click("#batch-preview").await;
    app.wait_count("[data-test=batch-row][data-valid=true]", 3, Duration::from_secs(20)).await;
    app.click("#batch-submit").await;
    app.wait_for("#batch-result[data-count='3']").await;
    assert_eq!(balance_via_api(&stack, "alice", &from_number).await, expected - dec("6.00"), "the batch moved 6.00 once");
    stack.assert_ledger_invariants().await;
    app.quit().await;
}

async fn full_name(stack: &TestStack, username: &str) -> String {
    let me = stack.login(username).await.get("/v1/me").await;
    me.body["user"]["full_name"].as_str().expect("full name").to_string()
}

/// The contract's masking of a holder's name: each word's first letter,
/// then one • per other character.
fn mask_name(name: &str) -> String {
    name.split_whitespace()
        .map(|word| {
            let mut chars = word.chars();
            let first = chars.next().unwrap();
            std::iter::once(first).chain(chars.map(|_| '•')).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text as typed with the keyboard: WebDriver sends a line break as the Enter key.
fn typed_lines(text: &str) -> String {
    text.replace('\n', "\u{E007}")
}

fn group_thousands(text: &str) -> String {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}.{fraction}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_opens_a_joint_account_and_dba_sees_both_nodes() {
    let stack = TestStack::start("desktop-admin").await;
    let data_dir = stack.dir().join("app");
    let app = DesktopApp::launch(&stack, "admin", &data_dir).await;
    app.login(&stack, "admin").await;

    app.click("#nav-customers").await;
    // Search for each owner, then tick them: the picks outlive a new search.
    for (username, name) in [("alice", "Fernandes"), ("bob", "Mehta")] {
        app.fill("#customer-search", name).await;
        app.click("#customer-search-submit").await;
        let started = std::time::Instant::now();
        loop {
            let rows = app.all("[data-test=customer-row]").await;
            let only = match rows.as_slice() {
                [row] => row.attr("data-username").await.ok().flatten(),
                _ => None,
            };
            if only.as_deref() == Some(username) {
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                app.fail(&format!("searching {name:?} did not narrow the list to {username}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        app.click(&format!("[data-test=customer-row][data-username={username}] [data-test=owner-pick]")).await;
    }
    app.wait_count("[data-test=picked-owner]", 2, Duration::from_secs(20)).await;
    app.select("#open-account-kind", "savings").await;
    app.select("#open-account-currency", "EUR").await;
    app.click("#open-account-submit").await;
    let number = app
        .attr("#open-account-result[data-number]", "data-number")
        .await
        .expect("new account number");
    app.showcase("admin");

    // The server agrees: a new joint EUR account of this branch, both owners on it.
    let admin = stack.login("admin").await;
    let page = admin
        .get(&format!("/v1/admin/accounts?query={number}"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let account = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["number"] == number.as_str())
        .expect("the new account")
        .clone();
    assert_eq!(account["currency"], "EUR");
    assert_eq!(account["kind"], "savings");
    let mut owners: Vec<&str> = account["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["full_name"].as_str().unwrap())
        .collect();
    owners.sort();
    assert_eq!(owners, ["Alice Fernandes", "Bob Mehta"]);
    let audit = admin
        .get("/v1/admin/audit?action=admin.account_opened")
        .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let target = format!("account:{number}");
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["target"] == target.as_str()),
        "audited: {}",
        audit.body
    );

    // Freezing asks for confirmation first; cancelling changes nothing.
    app.click("#nav-admin-accounts").await;
    app.fill("#admin-account-query", &number).await;
    app.click("#admin-account-search").await;
    let row = format!("[data-test=admin-account-row][data-number='{number}']");
    app.click(&format!(
        "{row} [data-test=account-action][data-action=freeze]"
    ))
    .await;
    app.click("#confirm-cancel").await;
    app.wait_for(&format!("{row}[data-status=active]")).await;
    app.click(&format!(
        "{row} [data-test=account-action][data-action=freeze]"
    ))
    .await;
    app.click("#confirm-ok").await;
    app.wait_for(&format!("{row}[data-status=frozen]")).await;
    let frozen = admin
        .get(&format!("/v1/admin/accounts?query={number}"))
        .await;
    assert_eq!(frozen.body["items"][0]["status"], "frozen");

    // The branch's audit trail in the window shows both actions.
    app.click("#nav-audit").await;
    app.fill("#audit-action", "admin.account_opened").await;
    app.click("#audit-search").await;
    app.wait_text("[data-test=audit-row]", "the account opening", |t| {
        t.contains(&number)
    })
    .await;

    // A new customer, created in the window, enrolls at first login: the QR
    // code and secret, a code from that secret, then the recovery codes once.
    let username = format!("carol{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let password = "carol's long password";
    app.click("#nav-customers").await;
    for (field, value) in [
        ("username", username.as_str()),
        ("full-name", "Carol Dsouza"),
        ("national-id", "NAT-123456"),
        ("phone", "+91 98000 11111"),
        ("email", "carol@example.test"),
        ("password", "too short"),
    ] {
        app.fill(&format!("#new-customer-{field}"), value).await;
    }
    app.click("#new-customer-submit").await;
    app.wait_text("#new-customer-error", "a refused short password", |t| t.contains("12")).await;
    app.fill("#new-customer-password", password).await;
    app.click("#new-customer-submit").await;
    app.wait_text("#new-customer-result", "the new customer", |t| t.contains(&username)).await;
    app.click("#logout").await;

    app.fill("#login-username", &username).await;
    app.fill("#login-password", password).await;
    app.click("#login-submit").await;
    let qr = app.attr("#enroll-qr", "src").await.unwrap_or_default();
    assert!(qr.starts_with("data:image/png;base64,"), "the QR code is an inline PNG: {qr:.40}");
    let secret = app.text("#enroll-secret").await.replace(' ', "");
    app.showcase("enroll");
    let code = stack.fresh_code(&username, &secret).await;
    app.fill("#mfa-code", &code).await;
    app.click("#mfa-submit").await;
    app.wait_for("#recovery-codes").await;
    assert_eq!(app.all("#recovery-codes li").await.len(), 10, "ten recovery codes, shown once");
    app.click("#recovery-continue").await;
    app.wait_text("#whoami", "the new customer logged in", |t| t.contains("Carol")).await;

    // The DBA, in the same window after logging out.
    app.click("#logout").await;
    app.login(&stack, "dba").await;
    app.click("#nav-cluster").await;
    app.wait_for("[data-test=node-row][data-node=primary][data-role=primary]")
        .await;
    app.wait_for("[data-test=node-row][data-node=replica1][data-role=replica]")
        .await;
    let role = app
        .text("[data-test=node-row][data-node=replica1] [data-test=node-role]")
        .await;
    assert!(
        role.to_lowercase().contains("replica"),
        "replica1's role shows {role:?}"
    );
    app.wait_for("svg#lag-chart").await;
    tokio::time::sleep(Duration::from_secs(5)).await; // a few points on the live chart
    app.showcase("dba");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_made_while_the_server_is_down_is_queued_then_applied_once() {
    let mut stack = TestStack::start("desktop-offline").await;
    let data_dir = stack.dir().join("app");
    let app = DesktopApp::launch(&stack, "offline", &data_dir).await;
    let bob = stack.user("bob").clone();
    let (from_number, to_number) = (
        bob.account_numbers[0].clone(),
        stack.user("alice").account_numbers[0].clone(),
    );
    let from_id = stack.account_id(&from_number).await.to_string();
    let before = balance_via_api(&stack, "bob", &from_number).await;
    app.login(&stack, "bob").await;

    // While the server is up, bob saves alice's account as a payee.
    app.click("#nav-payees").await;
    app.fill("#payee-number", &to_number).await;
    app.fill("#payee-nickname", "Alice").await;
    app.click("#payee-add").await;
    app.wait_for("#payee-result[data-state=saved]").await;
    let row = "[data-test=payee][data-nickname='Alice']";
    let payee_id = app.attr(row, "data-payee-id").await.expect("the payee's id");
    let alice_masked = app.attr(row, "data-holder-masked").await.expect("masked name");
    assert_eq!(alice_masked, mask_name(&full_name(&stack, "alice").await));

    let ledger_before = stack.ledger_snapshot().await;
    stack.stop_server().await;
    let memo = format!("offline {}", uuid::Uuid::new_v4().simple());
    app.click("#nav-move").await;
    app.select("#transfer-from", &from_id).await;
    // A new account number cannot be confirmed offline: nothing is queued.
    let new_number = stack.user("alice").account_numbers[1].clone();
    app.select("#transfer-payee", "new").await;
    app.fill("#transfer-to", &new_number).await;
    app.fill("#transfer-amount", "7.25").await;
    app.fill("#transfer-memo", &memo).await;
    app.click("#transfer-submit").await;
    app.wait_text("#transfer-error", "cannot confirm a new payee offline", |t| {
        t.contains("cannot be confirmed") && t.contains("Saved payees can still be paid offline")
    })
    .await;
    let panel = app.all("#transfer-confirm-panel").await;
    assert!(
        !panel[0].is_displayed().await.unwrap_or(true),
        "nothing to confirm for a payee that could not be looked up"
    );
    let queued = flexibank_tests::desktop::read_json(&data_dir.join("offline-queue.json"));
    assert!(
        queued.as_array().is_none_or(|items| items.is_empty()),
        "nothing queued: {queued}"
    );
    // The saved payee is confirmed from what was shown when it was saved, and queued.
    app.select("#transfer-payee", &payee_id).await;
    app.click("#transfer-submit").await;
    app.wait_for("#transfer-confirm-panel[data-saved=true]").await;
    let sentence = format!(
        "You are paying {alice_masked}, account ••••{}",
        &to_number[to_number.len() - 4..]
    );
    app.wait_text("#transfer-payee-confirm", &sentence, |t| t.trim() == sentence).await;
    app.click("#transfer-confirm").await;
    app.wait_for("#transfer-result[data-state=queued]").await;
    app.click("#nav-queue").await;
    app.wait_for("[data-test=queue-item][data-status=pending]")
        .await;
    app.showcase("offline-queue");
    // On disk, with its key, before the server is back.
    let queued = flexibank_tests::desktop::read_json(&data_dir.join("offline-queue.json"));
    let item = &queued.as_array().expect("queue file")[0];
    assert_eq!(item["status"], "pending");
    assert_eq!(item["request"]["memo"], memo.as_str());
    assert!(item["idempotency_key"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
    tokio::time::sleep(Duration::from_secs(3)).await; // a few failed sends, with backoff
    assert_eq!(
        stack.ledger_snapshot().await,
        ledger_before,
        "nothing applied while the server is down"
    );

    stack.start_server().await;
    let applied = "[data-test=queue-item][data-status=applied]";
    // Within the backoff's one-minute cap of the server's return.
    app.wait_count(applied, 1, Duration::from_secs(90)).await;
    // Exactly once: one entry with this memo, the balance down by 7.25 once.
    let session = stack.login("bob").await;
    let history = session
        .get(&format!("/v1/accounts/{from_id}/transactions?limit=200"))
        .await;
    let matching = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["memo"] == memo.as_str())
        .count();
    assert_eq!(matching, 1, "the queued transfer applied exactly once");
    assert_eq!(
        balance_via_api(&stack, "bob", &from_number).await,
        before - dec("7.25")
    );
    let queued = flexibank_tests::desktop::read_json(&data_dir.join("offline-queue.json"));
    assert_eq!(queued[0]["status"], "applied");
    assert!(
        queued[0]["attempts"].as_u64().unwrap() >= 2,
        "it was tried while the server was down: {}",
        queued[0]
    );
    stack.assert_ledger_invariants().await;
    app.quit().await;
}

/// The DBA in the window when the primary is lost and replica1, the one
/// that alone acknowledged the last transfers, is out of the pool's sight:
/// the view says promotion is blocked and why; promoting replica2 is refused
/// as unsafe and needs a second, typed confirmation; afterwards replica1 is
/// shown `diverged` with its byte count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dba_sees_promotion_blocked_and_forces_it_with_a_typed_confirmation() {
    use flexibank_tests::failover_load::{cut_off_clients, hold_wal_receiver, kill_postmaster};
    let stack = TestStack::start_with(
        "desktop-dba-blocked",
        flexibank_tests::StackOptions {
            replicas: 2,
            ..Default::default()
        },
    )
    .await;
    let data_dir = stack.dir().join("app");
    let app = DesktopApp::launch(&stack, "dba-blocked", &data_dir).await;
    app.login(&stack, "dba").await;
    app.click("#nav-cluster").await;
    app.wait_for("[data-test=node-row][data-node=replica2][data-role=replica]")
        .await;

    // replica1 alone acknowledges two transfers, then drops out of sight.
    // The WAL before them fills the socket buffers between the primary and
    // the held receiver, so replica2 cannot get them later from its buffer.
    let held = hold_wal_receiver(&stack, "replica2");
    let primary = stack.superuser("primary").await;
    for _ in 0..4 {
        primary
            .batch_execute("SELECT pg_logical_emit_message(false, 'filler', repeat('x', 8000000))")
            .await
            .unwrap();
    }
    let alice = stack.login("alice").await;
    let from = stack
        .account_id(&stack.user("alice").account_numbers[0])
        .await;
    for memo in ["acked by replica1 alone", "and this one"] {
        let body = flexibank_tests::json!({"from_account_id": from, "to_account_number": stack.user("bob").account_numbers[0], "amount": "2.00", "memo": memo});
        assert_eq!(alice.post_money("/v1/transfers", body).await.status, 201);
    }
    let cut = cut_off_clients(&stack, "replica1");
    kill_postmaster(&stack, "primary");
    held.resume();

    app.wait_text("#failover-state", "the blocked promotion and why", |t| {
        t.contains("automatic promotion blocked")
            && t.contains("replica1 unreachable, it may hold acknowledged commits")
    })
    .await;
    app.showcase("dba-failover-blocked");

    app.click("[data-test=promote][data-node=replica2]").await;
    app.fill("#promote-confirm-input", "replica2").await;
    app.click("#promote-confirm-ok").await;
    let detail = app
        .wait_text("#promote-unsafe-detail", "what may be lost", |t| {
            t.contains("bytes behind")
        })
        .await;
    assert!(detail.contains("replica1"), "{detail}");
    // The node's name alone no longer confirms: the phrase is "force replica2".
    app.fill("#promote-confirm-input", "replica2").await;
    assert_eq!(
        app.attr("#promote-confirm-ok", "disabled").await.as_deref(),
        Some("true")
    );
    app.showcase("dba-force-promotion");
    app.fill("#promote-confirm-input", "force replica2").await;
    app.click("#promote-confirm-ok").await;
    app.wait_for("#promote-result[data-state=committed]").await;
    app.wait_for("[data-test=node-row][data-node=replica2][data-role=primary]")
        .await;

    cut.resume();
    app.wait_for("[data-test=node-row][data-node=replica1][data-role=diverged]")
        .await;
    let bytes = app
        .text("[data-test=node-row][data-node=replica1] [data-test=node-diverged-bytes]")
        .await;
    assert!(
        bytes.trim().parse::<u64>().is_ok_and(|b| b > 0),
        "diverged bytes shown: {bytes:?}"
    );
    app.showcase("dba-diverged");
    app.quit().await;
}
