//! Transfers between currencies (issue 18, the contract's "Multi-currency")
//! against the real server and database: rates set by a branch admin and
//! audited; a quote rounds half-even, is spent once, and expires; each
//! currency's ledger still sums to zero.

use std::{sync::Arc, time::Duration};

use flexibank_tests::{json, Session, StackOptions, TestStack};
use rust_decimal::Decimal;
use uuid::Uuid;

fn short_quotes(config: &mut flexibank_server::Config) {
    config.fx.quote_ttl_s = 2;
}

fn dec(value: &serde_json::Value) -> Decimal {
    value.as_str().unwrap_or_else(|| panic!("not a decimal string: {value}")).parse().unwrap()
}

async fn balance(session: &Session, account_id: &str) -> Decimal {
    let r = session.get(&format!("/v1/accounts/{account_id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    dec(&r.body["balance"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quote_moves_money_between_currencies_once_and_every_currency_still_sums_to_zero() {
    let stack = TestStack::start_with(
        "fx",
        StackOptions {
            replicas: 1,
            sync: true,
            configure: short_quotes,
        },
    )
    .await;
    let admin = stack.login("admin").await;
    let alice = Arc::new(stack.login("alice").await);
    let bob = stack.login("bob").await;
    let (alice_inr, alice_usd) = (
        stack.account_id(&stack.user("alice").account_numbers[0]).await.to_string(),
        stack.account_id(&stack.user("alice").account_numbers[1]).await.to_string(),
    );
    let alice_usd_number = stack.user("alice").account_numbers[1].clone();
    let bob_inr_number = stack.user("bob").account_numbers[0].clone();

    // Rates: bad ones refused and nothing set; customers may not set them; good ones audited.
    for bad in [
        json!({"rates": []}),
        json!({"rates": [{"from": "INR", "to": "INR", "rate": "1"}]}),
        json!({"rates": [{"from": "INR", "to": "GBP", "rate": "0.01"}]}),
        json!({"rates": [{"from": "INR", "to": "USD", "rate": "0"}]}),
        json!({"rates": [{"from": "INR", "to": "USD", "rate": "-0.01"}]}),
        json!({"rates": [{"from": "INR", "to": "USD", "rate": 0.012}]}),
        json!({"rates": [{"from": "INR", "to": "USD", "rate": "0.123456789"}]}),
        json!({"rates": [{"from": "INR", "to": "USD", "rate": "0.012"}, {"from": "INR", "to": "USD", "rate": "0.013"}]}),
    ] {
        admin.put("/v1/admin/fx/rates", bad.clone()).await.assert_problem(400, "validation_failed");
    }
    alice
        .put("/v1/admin/fx/rates", json!({"rates": [{"from": "INR", "to": "USD", "rate": "1"}]}))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(alice.get("/v1/fx/rates").await.body["rates"], json!([]));
    let set = admin
        .put(
            "/v1/admin/fx/rates",
            json!({"rates": [{"from": "INR", "to": "USD", "rate": "0.025"}, {"from": "USD", "to": "INR", "rate": "83.5"}]}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    // Alice reads from a replica: it has the admin's rates once it caught up.
    stack.replicas_caught_up().await;
    let rates = alice.get("/v1/fx/rates").await.body["rates"].clone();
    assert_eq!(rates.as_array().map(Vec::len), Some(2), "{rates}");
    assert_eq!((rates[0]["from"].as_str(), rates[0]["rate"].as_str()), (Some("INR"), Some("0.02500000")));
    let db = stack.superuser(&stack.primary_name()).await;
    let audited: i64 = db
        .query_one("SELECT count(*) FROM audit_log WHERE action = 'admin.fx_rate_set'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 2);

    // A quote: 1.00 INR at 0.025 is 0.025 USD, a tie, which goes to the even cent: 0.02.
    let tie = alice
        .post(
            "/v1/fx/quotes",
            json!({"from_account_id": alice_inr, "to_account_number": alice_usd_number, "amount": "1.00"}),
            None,
        )
        .await;
    assert_eq!(tie.status, 201, "{}", tie.body);
    assert_eq!((tie.body["to_amount"].as_str(), tie.body["to_currency"].as_str()), (Some("0.02"), Some("USD")));
    // Quotes that cannot be: same currency, someone else's account, no such account, no rate (USD→EUR).
    let quote = |from: &str, to: &str, amount: &str| json!({"from_account_id": from, "to_account_number": to, "amount": amount});
    alice
        .post("/v1/fx/quotes", quote(&alice_inr, &bob_inr_number, "1.00"), None)
        .await
        .assert_problem(409, "currency_mismatch");
    bob.post("/v1/fx/quotes", quote(&alice_inr, &alice_usd_number, "1.00"), None)
        .await
        .assert_problem(404, "not_found");
    alice
        .post("/v1/fx/quotes", quote(&alice_inr, "99999999999", "1.00"), None)
        .await
        .assert_problem(404, "not_found");
    alice
        .post("/v1/fx/quotes", quote(&alice_inr, &alice_usd_number, "0"), None)
        .await
        .assert_problem(400, "validation_failed");
    alice
        .post("/v1/fx/quotes", quote(&alice_inr, &alice_usd_number, "0.10"), None)
        .await
        .assert_problem(400, "validation_failed");

    // 1,000.00 INR → 25.00 USD; 8 concurrent tries with one quote (each its own key): exactly one moves money.
    let q = alice.post("/v1/fx/quotes", quote(&alice_inr, &alice_usd_number, "1000.00"), None).await;
    assert_eq!(q.status, 201, "{}", q.body);
    assert_eq!(q.body["to_amount"], "25.00");
    let (inr_before, usd_before) = (balance(&alice, &alice_inr).await, balance(&alice, &alice_usd).await);
    let body =
        json!({"from_account_id": alice_inr, "to_account_number": alice_usd_number, "amount": "1000.00", "quote_id": q.body["id"], "memo": "to dollars"});
    let tries = (0..8).map(|_| {
        let alice = alice.clone();
        let body = body.clone();
        tokio::spawn(async move { alice.post_money("/v1/transfers", body).await })
    });
    let mut moved = Vec::new();
    for attempt in tries {
        let r = attempt.await.unwrap();
        match r.status {
            201 => moved.push(r.body),
            _ => r.assert_problem(409, "quote_used"),
        }
    }
    assert_eq!(moved.len(), 1, "a quote moves money once");
    assert_eq!(
        (moved[0]["kind"].as_str(), moved[0]["to_amount"].as_str(), moved[0]["rate"].as_str()),
        (Some("fx"), Some("25.00"), Some("0.02500000"))
    );
    assert_eq!(balance(&alice, &alice_inr).await, inr_before - Decimal::new(100000, 2));
    assert_eq!(balance(&alice, &alice_usd).await, usd_before + Decimal::new(2500, 2));
    // A replay with the first key answers the first result; the history shows both legs.
    let history = alice.get(&format!("/v1/accounts/{alice_usd}/transactions")).await;
    assert_eq!(history.body["items"][0]["amount"], "25.00", "{}", history.body);

    // A transfer must be the quote's; a stale quote is refused; nothing moves.
    let other = alice.post("/v1/fx/quotes", quote(&alice_inr, &alice_usd_number, "10.00"), None).await;
    let mut wrong = body.clone();
    wrong["quote_id"] = other.body["id"].clone();
    alice.post_money("/v1/transfers", wrong.clone()).await.assert_problem(400, "validation_failed");
    wrong["amount"] = json!("10.00");
    wrong["quote_id"] = json!(Uuid::new_v4());
    alice.post_money("/v1/transfers", wrong.clone()).await.assert_problem(404, "not_found");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    wrong["quote_id"] = other.body["id"].clone();
    alice.post_money("/v1/transfers", wrong).await.assert_problem(409, "quote_expired");
    assert_eq!(balance(&alice, &alice_usd).await, usd_before + Decimal::new(2500, 2), "refusals move nothing");

    // Each currency's ledger sums to zero, through the branch's FX positions.
    let positions: Vec<(String, Decimal)> = db
        .query("SELECT currency, balance FROM accounts WHERE kind = 'fx' ORDER BY currency", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        positions,
        [("INR".to_string(), Decimal::new(100000, 2)), ("USD".to_string(), Decimal::new(-2500, 2))]
    );
    stack.assert_ledger_invariants().await;
}
