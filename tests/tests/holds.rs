//! Holds (sql/V16): money set aside for a movement decided elsewhere (an
//! inter-bank payment between its two phases) lowers what an account can
//! spend, by every path and under concurrency, leaves its balance alone, and
//! comes back when the hold is voided. The database itself refuses a balance
//! below what is held.

use std::sync::Arc;

use flexibank_server::seed;
use flexibank_tests::{json, TestStack};
use uuid::Uuid;

const REFERENCE: &str = "E0000000120261130120000000000001";

/// The business code a stored function refused with (`fb_fail`: SQLSTATE FB000, the code as message).
fn refusal(error: tokio_postgres::Error) -> String {
    let db_error = error.as_db_error().expect("a database error");
    assert_eq!(db_error.code().code(), "FB000", "{db_error:?}");
    db_error.message().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_money_cannot_be_spent_by_any_path() {
    let stack = TestStack::start("holds").await;
    let state = &stack.server().state;
    let admin = stack.login("admin").await;
    let admin_id: Uuid = admin.get("/v1/auth/session").await.body["id"].as_str().unwrap().parse().unwrap();
    let branch = stack.user("admin").branch_id.unwrap();
    let password = "hold test password";
    let (user_id, secret) = seed::create_enrolled_user(state, "holder", "Hold Er", "customer", Some(branch), password).await.unwrap();
    let (account, _number) = seed::open_account(state, branch, &[user_id], "savings", "INR").await.unwrap();
    let (payee, payee_number) = seed::open_account(state, branch, &[user_id], "savings", "INR").await.unwrap();
    seed::seed_movement(state, admin_id, "branch_admin", "deposit", account, None, "100.00", "float").await.unwrap();
    let customer = Arc::new(stack.login_with("holder", password, &secret).await);
    let db = stack.superuser(&stack.primary_name()).await;
    let place = "SELECT place_hold($1, $2::text::numeric, $3)";

    // 90.00 of 100.00 on hold; placing it again is a repeat, not a second hold.
    let hold: Uuid = db.query_one(place, &[&account, &"90.00", &REFERENCE]).await.unwrap().get(0);
    let again: Uuid = db.query_one(place, &[&account, &"90.00", &REFERENCE]).await.unwrap().get(0);
    assert_eq!(hold, again);
    let other = db.query_one(place, &[&account, &"10.00", &REFERENCE]).await.unwrap_err();
    assert_eq!(refusal(other), "idempotency_key_reused");
    let too_much = db.query_one(place, &[&account, &"10.01", &"E0000000120261130120000000000002"]).await.unwrap_err();
    assert_eq!(refusal(too_much), "insufficient_funds");

    let seen = customer.get(&format!("/v1/accounts/{account}")).await;
    assert_eq!((seen.body["balance"].as_str(), seen.body["available_balance"].as_str()), (Some("100.00"), Some("10.00")), "{}", seen.body);

    // Every path refuses what only the held money would cover.
    let key = || Uuid::new_v4().to_string();
    let refused = [
        ("/v1/transfers", json!({"from_account_id": account, "to_account_number": payee_number, "amount": "10.01"})),
        ("/v1/withdrawals", json!({"account_id": account, "amount": "20.00"})),
        (
            "/v1/transfers/batch",
            json!({"items": [
                {"from_account_id": account, "to_account_number": payee_number, "amount": "6.00"},
                {"from_account_id": account, "to_account_number": payee_number, "amount": "6.00"},
            ]}),
        ),
    ];
    for (path, body) in refused {
        let answer = customer.post(path, body, Some(&key())).await;
        answer.assert_problem(409, "insufficient_funds");
        assert!(answer.body["detail"].as_str().unwrap().contains("on hold"), "{path}: {}", answer.body);
    }
    admin
        .post("/v1/admin/withdrawals", json!({"account_id": account, "amount": "10.01"}), Some(&key()))
        .await
        .assert_problem(409, "insufficient_funds");

    // Eight clients at once, 2.00 each, against 10.00 available: exactly five go through.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let customer = customer.clone();
        let body = json!({"from_account_id": account, "to_account_number": payee_number, "amount": "2.00"});
        tasks.push(tokio::spawn(async move { customer.post("/v1/transfers", body, Some(&Uuid::new_v4().to_string())).await }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap();
        assert!(matches!(answer.status, 201 | 409), "{}", answer.body);
        statuses.push(answer.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 5, "{statuses:?}");
    let seen = customer.get(&format!("/v1/accounts/{account}")).await;
    assert_eq!((seen.body["balance"].as_str(), seen.body["available_balance"].as_str()), (Some("90.00"), Some("0.00")), "{}", seen.body);

    // Below the database's functions: a balance under what is held is refused by the table itself.
    let below = db.execute("UPDATE accounts SET balance = balance - 1 WHERE id = $1", &[&account]).await.unwrap_err();
    assert_eq!(below.as_db_error().map(|e| e.constraint()), Some(Some("holds_within_balance")), "{below:?}");

    // Voided: the money is spendable again; voiding again is a repeat; an unknown hold is not there.
    let void = "SELECT void_hold($1)";
    assert!(db.query_one(void, &[&REFERENCE]).await.unwrap().get::<_, bool>(0));
    assert!(db.query_one(void, &[&REFERENCE]).await.unwrap().get::<_, bool>(0));
    assert!(!db.query_one(void, &[&"E0000000120261130120000000000009"]).await.unwrap().get::<_, bool>(0));
    let (status, held): (String, rust_decimal::Decimal) = {
        let row = db.query_one("SELECT h.status, a.held FROM holds h JOIN accounts a ON a.id = h.account_id WHERE h.id = $1", &[&hold]).await.unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((status.as_str(), held), ("voided", rust_decimal::Decimal::ZERO));
    let withdrawn = customer.post("/v1/withdrawals", json!({"account_id": account, "amount": "90.00"}), Some(&key())).await;
    assert_eq!(withdrawn.status, 201, "{}", withdrawn.body);

    // A frozen account takes no new hold.
    admin.post(&format!("/v1/admin/accounts/{payee}/freeze"), json!({}), None).await;
    let frozen = db.query_one(place, &[&payee, &"1.00", &"E0000000120261130120000000000003"]).await.unwrap_err();
    assert_eq!(refusal(frozen), "account_inactive");

    stack.assert_ledger_invariants().await;
}
