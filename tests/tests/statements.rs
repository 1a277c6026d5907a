//! Monthly statements (issue 18): `GET /v1/accounts/{id}/statements/{yyyy-mm}`
//! against the real server and database. The PDF's text is read back with
//! `pdftotext -layout` (poppler-utils, installed by the Makefile) and checked
//! against the ledger as the API shows it: the opening and closing balances,
//! every entry of the month in order with its signed amount and running
//! balance, money in and out, the bank and the holders; who may download one;
//! bad months; months before the account or not begun; audit rows; many pages.

use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use flexibank_server::seed;
use flexibank_tests::{eventually, json, pdftotext, Session, TestStack};
use rust_decimal::Decimal;
use serde_json::Value;

/// `yyyy-mm` of the UTC month `offset` months from the current one.
fn month_at(offset: i32) -> String {
    let now = Utc::now();
    let index = now.year() * 12 + now.month0() as i32 + offset;
    format!("{:04}-{:02}", index.div_euclid(12), index.rem_euclid(12) + 1)
}

fn dec(value: &Value) -> Decimal {
    value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}")).parse().unwrap()
}

struct Pdf {
    text: String,
    file_name: String,
}

/// Downloads a statement (200 expected) and reads its text.
async fn statement(stack: &TestStack, session: &Session, account_id: &str, month: &str, label: &str) -> Pdf {
    let response = session
        .http
        .get(format!("{}/v1/accounts/{account_id}/statements/{month}", session.base_url))
        .bearer_auth(session.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(status, 200, "{label}: {}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers.get("content-type").unwrap(), "application/pdf", "{label}");
    assert!(headers.get("x-served-by").is_some(), "{label}: X-Served-By");
    assert_eq!(headers.get("cache-control").unwrap(), "private, no-store");
    let disposition = headers.get("content-disposition").unwrap().to_str().unwrap().to_string();
    let file_name = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{label}: Content-Disposition {disposition:?}"))
        .to_string();
    assert!(bytes.starts_with(b"%PDF-"), "{label}: not a PDF");
    let path = stack.dir().join(format!("{label}.pdf"));
    std::fs::write(&path, &bytes).unwrap();
    Pdf {
        text: pdftotext(&path),
        file_name,
    }
}

/// The tokens of the text's first line that contains `label`.
fn line_with<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    text.lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        .split_whitespace()
        .collect()
}

/// Asserts that `label`'s line shows `amount` (with two decimals).
#[track_caller]
fn shows(text: &str, label: &str, amount: Decimal) {
    let tokens = line_with(text, label);
    assert!(tokens.contains(&amount.to_string().as_str()), "{label}: expected {amount} in {tokens:?}");
}

struct Entry {
    at: DateTime<Utc>,
    signed: String,
    amount: Decimal,
    balance_after: String,
}

/// The account's entries of `month`, oldest first, and the running balance before it, from the API.
async fn ledger(session: &Session, account_id: &str, month: &str) -> (Decimal, Vec<Entry>) {
    let mut items: Vec<Value> = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = session.get(&format!("/v1/accounts/{account_id}/transactions?limit=200&cursor={cursor}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        items.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let mut opening = Decimal::new(0, 2);
    let mut entries = Vec::new();
    for item in items.iter().rev() {
        let at: DateTime<Utc> = item["created_at"].as_str().unwrap().parse().unwrap();
        let credit = matches!(item["kind"].as_str().unwrap(), "deposit" | "transfer_in" | "interbank_in");
        let amount = dec(&item["amount"]);
        let month_of = at.format("%Y-%m").to_string();
        if month_of.as_str() < month {
            opening = dec(&item["balance_after"]);
        } else if month_of == month {
            entries.push(Entry {
                at,
                signed: if credit { format!("+{amount}") } else { format!("-{amount}") },
                amount: if credit { amount } else { -amount },
                balance_after: item["balance_after"].as_str().unwrap().to_string(),
            });
        }
    }
    (opening, entries)
}

/// Every entry appears, in order, on a line of its own with its time, signed amount and running balance.
#[track_caller]
fn shows_entries_in_order(text: &str, entries: &[Entry]) {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    for entry in entries {
        let at = entry.at.format("%Y-%m-%d %H:%M:%S").to_string();
        let found = (from..lines.len()).find(|&i| {
            let tokens: Vec<&str> = lines[i].split_whitespace().collect();
            lines[i].trim_start().starts_with(&at) && tokens.contains(&entry.signed.as_str()) && tokens.last() == Some(&entry.balance_after.as_str())
        });
        let i = found.unwrap_or_else(|| panic!("entry {at} {} {} not found (in order) in:\n{text}", entry.signed, entry.balance_after));
        from = i + 1;
    }
}

async fn audit_rows(stack: &TestStack, number: &str) -> Vec<(String, String)> {
    let db = stack.superuser(&stack.primary_name()).await;
    db.query(
        "SELECT actor_role, details->>'month' FROM audit_log WHERE action = 'statement.download' AND target = $1 AND outcome = 'success' ORDER BY id",
        &[&format!("account:{number}")],
    )
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_is_the_month_as_the_ledger_has_it_for_those_who_may_see_it() {
    let stack = TestStack::start("statements").await;
    let (admin, alice, bob) = (stack.login("admin").await, stack.login("alice").await, stack.login("bob").await);
    let [alice_inr_no, _, joint_no] = <[String; 3]>::try_from(stack.user("alice").account_numbers.clone()).unwrap();
    let alice_inr = stack.account_id(&alice_inr_no).await.to_string();
    let joint = stack.account_id(&joint_no).await.to_string();
    let bob_no = stack.user("bob").account_numbers[0].clone();

    // Money moves this month, on top of the seed's movements.
    let moved = [
        admin
            .post_money("/v1/admin/deposits", json!({"account_id": alice_inr, "amount": "321.09", "memo": "salary"}))
            .await,
        alice
            .post_money(
                "/v1/transfers",
                json!({"from_account_id": alice_inr, "to_account_number": bob_no, "amount": "12.34", "memo": "coffee & cake"}),
            )
            .await,
        alice
            .post_money("/v1/withdrawals", json!({"account_id": alice_inr, "amount": "100.00", "memo": "cash"}))
            .await,
    ];
    for r in &moved {
        assert_eq!(r.status, 201, "{}", r.body);
    }

    let month = month_at(0);
    let pdf = statement(&stack, &alice, &alice_inr, &month, "alice-inr").await;
    assert_eq!(pdf.file_name, format!("statement-{alice_inr_no}-{month}.pdf"));
    let text = &pdf.text;
    for expected in [
        "FlexiBank",
        "Alice Fernandes",
        alice_inr_no.as_str(),
        "Savings, INR",
        "statement to date",
        "counted in UTC",
        "Page 1 of 1",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(!text.contains("Bob Mehta"), "only the account's holders are named");
    let (opening, entries) = ledger(&alice, &alice_inr, &month).await;
    assert!(entries.len() >= 7, "the seed's four movements and these three: {}", entries.len());
    shows(text, "Opening balance", opening);
    shows_entries_in_order(text, &entries);
    let money_in: Decimal = entries.iter().map(|e| e.amount).filter(|a| a.is_sign_positive()).sum();
    let money_out: Decimal = -entries.iter().map(|e| e.amount).filter(|a| a.is_sign_negative()).sum::<Decimal>();
    shows(text, "Money in", money_in);
    shows(text, "Money out", money_out);
    // Nothing moved since: the closing balance is the account's balance.
    let account = alice.get(&format!("/v1/accounts/{alice_inr}")).await;
    let balance = dec(&account.body["balance"]);
    assert_eq!(opening + money_in - money_out, balance);
    shows(text, "Closing balance", balance);
    assert!(
        text.contains(&format!("Closing balance {balance} INR after {} entries. End of statement.", entries.len())),
        "{text}"
    );

    // A joint account names every holder, and either may download it.
    let joint_pdf = statement(&stack, &bob, &joint, &month, "joint").await;
    assert!(
        joint_pdf.text.contains("Alice Fernandes, Bob Mehta") && joint_pdf.text.contains("Holders"),
        "{}",
        joint_pdf.text
    );
    let (joint_opening, joint_entries) = ledger(&bob, &joint, &month).await;
    shows(&joint_pdf.text, "Opening balance", joint_opening);
    shows_entries_in_order(&joint_pdf.text, &joint_entries);

    // The branch's admin may; another branch's admin, another customer, a DBA and nobody may not.
    // The admin reads from a replica: it has alice's movements once it caught up.
    stack.replicas_caught_up().await;
    let by_branch = statement(&stack, &admin, &alice_inr, &month, "alice-inr-by-branch").await;
    shows(&by_branch.text, "Closing balance", balance);
    let state = &stack.server().state;
    let north = seed::create_branch(state, "NORTH", "FlexiBank North").await.unwrap();
    let (_, nina_secret) = seed::create_enrolled_user(state, "nina", "Nina North", "branch_admin", Some(north), "nina's password!")
        .await
        .unwrap();
    let nina = stack.login_with("nina", "nina's password!", &nina_secret).await;
    let path = format!("/v1/accounts/{alice_inr}/statements/{month}");
    nina.get(&path).await.assert_problem(404, "not_found");
    bob.get(&path).await.assert_problem(404, "not_found");
    alice
        .get(&format!("/v1/accounts/{}/statements/{month}", uuid::Uuid::now_v7()))
        .await
        .assert_problem(404, "not_found");
    stack.login("dba").await.get(&path).await.assert_problem(403, "forbidden");
    stack.anon().get(&path).await.assert_problem(401, "unauthenticated");

    // Malformed months and ids are 400; a month not begun, or before the account opened, has no statement.
    for bad in [
        "2026-13",
        "2026-00",
        "1999-12",
        "0000-01",
        "26-04",
        "2026-4",
        "2026-04-01",
        "abcd-ef",
        "2026_04",
        "%20",
    ] {
        alice
            .get(&format!("/v1/accounts/{alice_inr}/statements/{bad}"))
            .await
            .assert_problem(400, "validation_failed");
    }
    alice
        .get(&format!("/v1/accounts/not-a-uuid/statements/{month}"))
        .await
        .assert_problem(400, "validation_failed");
    let future = alice.get(&format!("/v1/accounts/{alice_inr}/statements/{}", month_at(1))).await;
    future.assert_problem(404, "not_found");
    assert!(future.body["detail"].as_str().unwrap().contains("has not begun"), "{}", future.body);
    let before = alice.get(&format!("/v1/accounts/{alice_inr}/statements/{}", month_at(-1))).await;
    before.assert_problem(404, "not_found");
    assert!(
        before.body["detail"].as_str().unwrap().contains(&format!("the account opened in {month}")),
        "{}",
        before.body
    );

    // Each download is audited in the account's branch trail; refusals are not downloads.
    assert_eq!(
        audit_rows(&stack, &alice_inr_no).await,
        vec![("customer".to_string(), month.clone()), ("branch_admin".to_string(), month.clone())]
    );
    assert_eq!(audit_rows(&stack, &joint_no).await, vec![("customer".to_string(), month.clone())]);
    stack.assert_ledger_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_months_empty_months_and_many_pages() {
    let stack = TestStack::start("statements-past").await;
    let (admin, alice) = (stack.login("admin").await, stack.login("alice").await);
    let db = stack.superuser(&stack.primary_name()).await;
    let alice_id: uuid::Uuid = db.query_one("SELECT id FROM users WHERE username = 'alice'", &[]).await.unwrap().get(0);
    let alice_inr = stack.account_id(&stack.user("alice").account_numbers[0]).await.to_string();

    // A dedicated account whose three movements are moved back into the previous month
    // (entries only: their running balances stay as they were), and its opening two months back.
    let opened = admin
        .post(
            "/v1/admin/accounts",
            json!({"owner_ids": [alice_id], "kind": "current", "currency": "INR"}),
            None,
        )
        .await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let (account, number) = (
        opened.body["id"].as_str().unwrap().to_string(),
        opened.body["number"].as_str().unwrap().to_string(),
    );
    for (path, amount, memo) in [
        ("/v1/admin/deposits", "100.00", "first"),
        ("/v1/admin/deposits", "200.00", "second"),
        ("/v1/admin/withdrawals", "50.00", "third"),
    ] {
        let r = admin.post_money(path, json!({"account_id": account, "amount": amount, "memo": memo})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let account_uuid: uuid::Uuid = account.parse().unwrap();
    let (current, previous, two_back, three_back) = (month_at(0), month_at(-1), month_at(-2), month_at(-3));
    let mut db = db;
    let tx = db.transaction().await.unwrap();
    let shifted = tx
        .execute(
            "UPDATE entries SET created_at = created_at - interval '1 month' WHERE account_id = $1",
            &[&account_uuid],
        )
        .await
        .unwrap();
    assert_eq!(shifted, 3);
    tx.execute(
        "UPDATE accounts SET opened_at = opened_at - interval '2 months' WHERE id = $1",
        &[&account_uuid],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // (Reads are a replica's: it sees the change a moment later.)
    eventually(Duration::from_secs(10), "the shift on the replica", || async {
        let r = alice.get(&format!("/v1/accounts/{account}")).await;
        let opened: DateTime<Utc> = r.body["opened_at"].as_str()?.parse().ok()?;
        (opened.format("%Y-%m").to_string() == two_back).then_some(())
    })
    .await;

    let last = statement(&stack, &alice, &account, &previous, "previous").await;
    let text = &last.text;
    assert!(!text.contains("to date"), "a past month is whole: {text}");
    shows(text, "Opening balance", Decimal::new(0, 2));
    shows(text, "Money in", Decimal::new(30000, 2));
    shows(text, "Money out", Decimal::new(5000, 2));
    shows(text, "Closing balance", Decimal::new(25000, 2));
    let (opening, entries) = ledger(&alice, &account, &previous).await;
    assert_eq!((opening, entries.len()), (Decimal::new(0, 2), 3));
    shows_entries_in_order(text, &entries);
    assert_eq!(
        entries.iter().map(|e| e.balance_after.as_str()).collect::<Vec<_>>(),
        ["100.00", "300.00", "250.00"]
    );

    // This month: nothing moved yet, so the opening balance is last month's closing one.
    let now = statement(&stack, &alice, &account, &current, "current-empty").await;
    shows(&now.text, "Opening balance", Decimal::new(25000, 2));
    shows(&now.text, "Closing balance", Decimal::new(25000, 2));
    assert!(now.text.contains("No entries in this period."), "{}", now.text);
    let balance = dec(&alice.get(&format!("/v1/accounts/{account}")).await.body["balance"]);
    assert_eq!(balance, Decimal::new(25000, 2));
    // The month it opened, before anything moved: an empty statement at zero; before that, none.
    let empty = statement(&stack, &alice, &account, &two_back, "opened-empty").await;
    shows(&empty.text, "Opening balance", Decimal::new(0, 2));
    shows(&empty.text, "Closing balance", Decimal::new(0, 2));
    alice
        .get(&format!("/v1/accounts/{account}/statements/{three_back}"))
        .await
        .assert_problem(404, "not_found");

    // 150 entries this month, some with long memos: several pages, each with the header and its number.
    let items: Vec<Value> = (0..150)
        .map(|i| {
            let memo = if i % 10 == 0 {
                format!("payment {i} with a memo long enough to wrap onto a second and even a third line of the statement's memo column")
            } else {
                format!("payment {i}")
            };
            json!({"from_account_id": alice_inr, "to_account_number": number, "amount": format!("1.{:02}", i % 100), "memo": memo})
        })
        .collect();
    let batch = alice.post_money("/v1/transfers/batch", json!({"items": items})).await;
    assert_eq!(batch.status, 201, "{}", batch.body);
    let long = statement(&stack, &alice, &account, &current, "many-pages").await;
    let pages: Vec<&str> = long.text.split('\u{c}').filter(|p| !p.trim().is_empty()).collect();
    assert!(pages.len() >= 3, "{} pages", pages.len());
    for (i, page) in pages.iter().enumerate() {
        assert!(page.contains("FlexiBank"), "page {}", i + 1);
        assert!(page.contains("Date (UTC)") && page.contains("Balance"), "page {} lacks the column heads", i + 1);
        assert!(page.contains(&format!("Page {} of {}", i + 1, pages.len())), "page {}", i + 1);
        if i > 0 {
            assert!(page.contains(&format!("Account {number}")) && page.contains("continued"), "page {}", i + 1);
        }
    }
    let (opening, entries) = ledger(&alice, &account, &current).await;
    assert_eq!((opening, entries.len()), (Decimal::new(25000, 2), 150));
    shows_entries_in_order(&long.text, &entries);
    let balance = dec(&alice.get(&format!("/v1/accounts/{account}")).await.body["balance"]);
    shows(&long.text, "Closing balance", balance);
    stack.assert_ledger_invariants().await;
}
