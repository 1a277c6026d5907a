//! The happy path of every endpoint, over HTTPS with the stack's CA verified.

use flexibank_tests::{json, TestStack};
use rust_decimal::Decimal;
use std::str::FromStr;
use uuid::Uuid;

fn dec(v: &serde_json::Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}"))).unwrap()
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let stack = TestStack::start("ops").await;
    let anon = stack.anon();
    let health = anon.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert!(health.header("x-request-id").is_some(), "every response carries X-Request-Id");
    assert_eq!(anon.get("/readyz").await.status, 200);

    let echoed = anon
        .send(anon.http.get(format!("{}/healthz", stack.base_url)).header("x-request-id", "trace-me-42"))
        .await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-me-42"));

    let openapi = anon.get("/v1/openapi.json").await;
    assert_eq!(openapi.status, 200);
    assert!(openapi.body["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/v1/auth/login", "/v1/auth/mfa", "/v1/transfers", "/v1/transfers/batch", "/v1/admin/accounts/{id}/freeze", "/v1/dba/audit"] {
        assert!(openapi.body["paths"].get(path).is_some(), "openapi lacks {path}");
    }

    // Make some traffic, then the metrics must show it.
    let alice = stack.login("alice").await;
    let me = alice.get("/v1/me").await;
    let account = me.body["accounts"][0]["id"].clone();
    assert_eq!(alice.post_money("/v1/deposits", json!({"account_id": account, "amount": "1.00"})).await.status, 201);
    let metrics = anon.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body.as_str().unwrap();
    assert!(text.contains("flexibank_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/v1/deposits\""));
    assert!(text.contains("flexibank_http_request_duration_seconds"));
    assert!(text.contains("flexibank_pool_size"));

    // Plain HTTP is not served at all.
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{}/healthz", stack.server().addr.port())).send().await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
}

#[tokio::test]
async fn customer_login_reads_and_moves_money() {
    let stack = TestStack::start("customer").await;
    let alice = stack.login("alice").await;

    let session = alice.get("/v1/auth/session").await;
    assert_eq!(session.status, 200);
    assert_eq!(session.body["username"], "alice");
    assert_eq!(session.body["role"], "customer");

    let me = alice.get("/v1/me").await;
    assert_eq!(me.status, 200);
    assert!(matches!(me.header("x-served-by"), Some("primary" | "replica")), "X-Served-By on reads");
    let accounts = me.body["accounts"].as_array().unwrap().clone();
    assert_eq!(accounts.len(), 3, "{}", me.body);
    let inr = accounts.iter().find(|a| a["kind"] == "savings").unwrap().clone();
    let joint = accounts.iter().find(|a| a["owners"].as_array().unwrap().len() == 2).unwrap().clone();
    let bob_number = stack.user("bob").account_numbers[0].clone();
    let start_balance = dec(&inr["balance"]);

    let account = alice.get(&format!("/v1/accounts/{}", inr["id"].as_str().unwrap())).await;
    assert_eq!(account.status, 200);
    assert_eq!(account.body["number"], inr["number"]);
    assert_eq!(account.body["currency"], "INR");
    assert_eq!(account.body["status"], "active");

    // Deposit, withdraw, transfer.
    let deposit = alice.post_money("/v1/deposits", json!({"account_id": inr["id"], "amount": "100.25", "memo": "salary"})).await;
    assert_eq!(deposit.status, 201, "{}", deposit.body);
    assert_eq!(deposit.body["kind"], "deposit");
    assert_eq!(deposit.body["amount"], "100.25");
    assert_eq!(deposit.body["status"], "committed");
    assert_eq!(dec(&deposit.body["balance_after"]), start_balance + Decimal::from_str("100.25").unwrap());

    let withdrawal = alice.post_money("/v1/withdrawals", json!({"account_id": inr["id"], "amount": "50"})).await;
    assert_eq!(withdrawal.status, 201, "{}", withdrawal.body);
    assert_eq!(withdrawal.body["amount"], "50.00");

    let key = uuid::Uuid::now_v7().to_string();
    let body = json!({"from_account_id": inr["id"], "to_account_number": bob_number, "amount": "10.10", "memo": "coffee"});
    let transfer = alice.post("/v1/transfers", body.clone(), Some(&key)).await;
    assert_eq!(transfer.status, 201, "{}", transfer.body);
    assert_eq!(transfer.body["kind"], "transfer");
    assert_eq!(transfer.body["from_account_id"], inr["id"]);
    assert_eq!(transfer.body["currency"], "INR");
    let expected_after = start_balance + Decimal::from_str("100.25").unwrap() - Decimal::from(50) - Decimal::from_str("10.10").unwrap();
    assert_eq!(dec(&transfer.body["balance_after"]), expected_after);

    // The same request again is a replay, not a second transfer.
    let replay = alice.post("/v1/transfers", body, Some(&key)).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, transfer.body);
    let after = alice.get(&format!("/v1/accounts/{}", inr["id"].as_str().unwrap())).await;
    assert_eq!(dec(&after.body["balance"]), expected_after);

    // Batch: all applied, in order.
    let batch = alice
        .post_money(
            "/v1/transfers/batch",
            json!({"items": [
                {"from_account_id": inr["id"], "to_account_number": bob_number, "amount": "1.00"},
                {"from_account_id": inr["id"], "to_account_number": joint["number"], "amount": "2.00", "memo": "b"},
                {"from_account_id": joint["id"], "to_account_number": bob_number, "amount": "3.00"}
            ]}),
        )
        .await;
    assert_eq!(batch.status, 201, "{}", batch.body);
    let transfers = batch.body["transfers"].as_array().unwrap();
    assert_eq!(transfers.len(), 3);
    assert_eq!(dec(&transfers[1]["balance_after"]), expected_after - Decimal::from(3));
    assert_eq!((transfers[0]["memo"].as_str(), transfers[1]["memo"].as_str()), (Some(""), Some("b")));
    // One batch in the ledger and in the audit trail: every item's transfer row and
    // audit row name the same batch, one audit row per item.
    let ids: Vec<Uuid> = transfers.iter().map(|t| t["id"].as_str().unwrap().parse().unwrap()).collect();
    let targets: Vec<String> = ids.iter().map(|id| format!("transfer:{id}")).collect();
    let ledger = stack.superuser(&stack.primary_name()).await;
    let row = ledger
        .query_one(
            "SELECT count(DISTINCT t.batch_id), count(t.batch_id), count(*),
                    (SELECT count(*) FROM audit_log a WHERE a.target = ANY($2) AND a.action = 'money.transfer'
                        AND a.details ->> 'batch_id' = (SELECT min(batch_id::text) FROM transfers WHERE id = ANY($1)))
               FROM transfers t WHERE t.id = ANY($1)",
            &[&ids, &targets],
        )
        .await
        .unwrap();
    let counts: (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(counts, (1, 3, 3, 3), "(batches, items with a batch, transfers, audit rows naming the batch)");

    // History: newest first, balance_after per entry, counterparty numbers, filters and paging.
    let history = alice.get(&format!("/v1/accounts/{}/transactions?limit=3", inr["id"].as_str().unwrap())).await;
    assert_eq!(history.status, 200, "{}", history.body);
    assert!(matches!(history.header("x-served-by"), Some("primary" | "replica")));
    let items = history.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["kind"], "transfer_out");
    assert_eq!(items[0]["amount"], "2.00");
    assert_eq!(items[0]["counterparty_account_number"], joint["number"]);
    assert_eq!(dec(&items[0]["balance_after"]), expected_after - Decimal::from(3));
    let cursor = history.body["next_cursor"].as_str().expect("more pages").to_string();
    let page2 = alice.get(&format!("/v1/accounts/{}/transactions?limit=3&cursor={cursor}", inr["id"].as_str().unwrap())).await;
    let page2_items = page2.body["items"].as_array().unwrap();
    // Page 1 held the two batch debits and the 10.10 transfer; page 2 goes on with the withdrawal.
    assert_eq!(items[2]["amount"], "10.10");
    assert_eq!(page2_items[0]["amount"], "50.00", "page 2 continues where page 1 ended: {}", page2.body);
    assert_eq!(page2_items[0]["kind"], "withdrawal");
    let deposits = alice.get(&format!("/v1/accounts/{}/transactions?kind=deposit", inr["id"].as_str().unwrap())).await;
    let deposit_items = deposits.body["items"].as_array().unwrap();
    assert!(deposit_items.iter().all(|e| e["kind"] == "deposit"));
    assert!(deposit_items.iter().all(|e| e["counterparty_account_number"].is_null()), "cash has no counterparty");
    let future = alice
        .get(&format!("/v1/accounts/{}/transactions?from=2999-01-01T00:00:00Z", inr["id"].as_str().unwrap()))
        .await;
    assert_eq!(future.body["items"].as_array().unwrap().len(), 0);

    // Bob sees the incoming transfer; the joint account works for both owners.
    let bob = stack.login("bob").await;
    let bob_me = bob.get("/v1/me").await;
    let bob_savings = bob_me.body["accounts"].as_array().unwrap().iter().find(|a| a["number"] == bob_number).unwrap().clone();
    let bob_history = bob.get(&format!("/v1/accounts/{}/transactions?kind=transfer_in&limit=1", bob_savings["id"].as_str().unwrap())).await;
    assert_eq!(bob_history.body["items"][0]["kind"], "transfer_in");
    assert_eq!(bob.get(&format!("/v1/accounts/{}", joint["id"].as_str().unwrap())).await.status, 200);

    // Logout revokes the session.
    assert_eq!(alice.post("/v1/auth/logout", json!({}), None).await.status, 204);
    alice.get("/v1/me").await.assert_problem(401, "unauthenticated");
    stack.assert_ledger_invariants().await;

    // Accounts are never deleted (the ledger has no per-row foreign keys to
    // them, sql/V8), not even by the superuser...
    let db = stack.superuser(&stack.primary_name()).await;
    let refused = db.execute("DELETE FROM accounts WHERE id = $1", &[&inr["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()]).await;
    let refused = refused.unwrap_err();
    assert!(refused.as_db_error().is_some_and(|e| e.message().contains("never deleted")), "{refused:?}");
    assert!(db.batch_execute("TRUNCATE accounts CASCADE").await.is_err());
    // ...and the invariant check catches an entry pair naming a missing
    // account (balanced, so only that check can see it).
    db.batch_execute(
        "INSERT INTO transfers (id, kind, from_account_id, to_account_id, amount, currency, created_by, created_at)
         SELECT '00000000-0000-7000-8000-00000000dead', 'transfer', a.id, gen_random_uuid(), 1, 'INR', a.id, now() FROM accounts a LIMIT 1;
         INSERT INTO entries (id, transfer_id, account_id, kind, amount, balance_after, counterparty_account_id, created_at)
         SELECT gen_random_uuid(), t.id, t.to_account_id, 'transfer_in', 1, 1, t.from_account_id, now() FROM transfers t WHERE t.id = '00000000-0000-7000-8000-00000000dead'
         UNION ALL
         SELECT gen_random_uuid(), t.id, t.to_account_id, 'transfer_out', -1, 0, t.from_account_id, now() FROM transfers t WHERE t.id = '00000000-0000-7000-8000-00000000dead'",
    )
    .await
    .unwrap();
    let broken = flexibank_server::ledger::check_invariants(&db).await.unwrap_err().to_string();
    assert!(broken.contains("name an account that does not exist"), "{broken}");
    db.batch_execute(
        "DELETE FROM entries WHERE transfer_id = '00000000-0000-7000-8000-00000000dead';
         DELETE FROM transfers WHERE id = '00000000-0000-7000-8000-00000000dead'",
    )
    .await
    .unwrap();
    stack.assert_ledger_invariants().await;
}

#[tokio::test]
async fn branch_admin_and_dba_work() {
    let stack = TestStack::start("admin").await;
    let admin = stack.login("admin").await;

    // A new customer, who then logs in for the first time and enrolls TOTP.
    let created = admin
        .post(
            "/v1/admin/customers",
            json!({"username": "carol", "full_name": "Carol Dsouza", "national_id": "CAR-123", "phone": "+91 99999 00000",
                   "email": "carol@example.com", "password": "a long enough password"}),
            None,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let carol_id = created.body["id"].clone();
    assert_eq!(created.body["role"], "customer");

    let step1 = stack.anon().post("/v1/auth/login", json!({"username": "carol", "password": "a long enough password"}), None).await;
    assert_eq!(step1.status, 200);
    assert_eq!(step1.body["next"], "enroll");
    let enrollment = &step1.body["enrollment"];
    let secret = enrollment["secret_base32"].as_str().unwrap().to_string();
    assert!(enrollment["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(enrollment["qr_png_base64"].as_str().unwrap().len() > 100);
    let code = stack.fresh_code("carol", &secret).await;
    let step2 = stack.anon().post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": code}), None).await;
    assert_eq!(step2.status, 200, "{}", step2.body);
    assert_eq!(step2.body["recovery_codes"].as_array().unwrap().len(), 10);
    let carol = stack.anon().with_token(step2.body["session_token"].as_str().unwrap());
    assert_eq!(carol.get("/v1/me").await.body["accounts"].as_array().unwrap().len(), 0);
    // The second login asks for a code, not enrollment.
    let again = stack.anon().post("/v1/auth/login", json!({"username": "carol", "password": "a long enough password"}), None).await;
    assert_eq!(again.body["next"], "totp");

    // Search finds her; accounts: a joint one with alice.
    let search = admin.get("/v1/admin/customers?query=dsouza").await;
    assert_eq!(search.status, 200);
    assert_eq!(search.body["items"].as_array().unwrap().len(), 1);
    let alice_id = stack.anon().with_token(&stack.login("alice").await.token.unwrap()).get("/v1/me").await.body["user"]["id"].clone();
    let opened = admin.post("/v1/admin/accounts", json!({"owner_ids": [carol_id, alice_id], "kind": "current", "currency": "EUR"}), None).await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    assert_eq!(opened.body["owners"].as_array().unwrap().len(), 2);
    assert_eq!(opened.body["balance"], "0.00");
    assert_eq!(opened.body["currency"], "EUR");
    let account_id = opened.body["id"].as_str().unwrap().to_string();

    // Teller work, then freeze / unfreeze / close.
    let teller_in = admin.post_money("/v1/admin/deposits", json!({"account_id": account_id, "amount": "500.00", "memo": "cash in"})).await;
    assert_eq!(teller_in.status, 201, "{}", teller_in.body);
    assert_eq!(teller_in.body["balance_after"], "500.00");
    let frozen = admin.post(&format!("/v1/admin/accounts/{account_id}/freeze"), json!({}), None).await;
    assert_eq!((frozen.status, frozen.body["status"].as_str()), (200, Some("frozen")));
    assert_eq!(admin.get("/v1/admin/accounts?status=frozen").await.body["items"][0]["id"], account_id.as_str());
    let unfrozen = admin.post(&format!("/v1/admin/accounts/{account_id}/unfreeze"), json!({}), None).await;
    assert_eq!(unfrozen.body["status"], "active");
    let teller_out = admin.post_money("/v1/admin/withdrawals", json!({"account_id": account_id, "amount": "500.00"})).await;
    assert_eq!(teller_out.status, 201, "{}", teller_out.body);
    let closed = admin.post(&format!("/v1/admin/accounts/{account_id}/close"), json!({}), None).await;
    assert_eq!((closed.status, closed.body["status"].as_str()), (200, Some("closed")), "{}", closed.body);

    // The branch's transactions and audit trail.
    let transactions = admin.get(&format!("/v1/admin/transactions?account_id={account_id}")).await;
    assert_eq!(transactions.status, 200);
    assert_eq!(transactions.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(transactions.body["items"][0]["kind"], "withdrawal");
    let all = admin.get("/v1/admin/transactions?limit=200").await;
    assert!(all.body["items"].as_array().unwrap().len() >= 9, "seeded history plus teller work");
    let audit = admin.get("/v1/admin/audit?limit=200").await;
    assert_eq!(audit.status, 200);
    let actions: Vec<&str> = audit.body["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    for expected in ["admin.customer_created", "admin.account_opened", "admin.account_frozen", "admin.account_unfrozen", "admin.account_closed", "money.deposit", "money.withdrawal", "auth.login", "auth.mfa_enrolled"] {
        assert!(actions.contains(&expected), "audit lacks {expected}: {actions:?}");
    }
    let only_freezes = admin.get("/v1/admin/audit?action=admin.account_frozen").await;
    assert_eq!(only_freezes.body["items"].as_array().unwrap().len(), 1);

    // The DBA sees the bank-wide trail.
    let dba = stack.login("dba").await;
    let global = dba.get("/v1/dba/audit?limit=5").await;
    assert_eq!(global.status, 200, "{}", global.body);
    assert_eq!(global.body["items"].as_array().unwrap().len(), 5);
    assert!(global.body["next_cursor"].is_string());
    stack.assert_ledger_invariants().await;
}
