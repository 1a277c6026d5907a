//! Every bad input gets the contract's problem+json (status AND `code`) and
//! changes nothing: the ledger snapshot is equal before and after. No
//! response in this file may be a 5xx.


use flexibank_tests::{json, LedgerSnapshot, Resp, Session, TestStack};
use flexibank_tests::Seen;
use reqwest::header::HeaderValue;
use serde_json::Value;
use uuid::Uuid;

#[track_caller]
fn same(what: &str, before: &LedgerSnapshot, after: &LedgerSnapshot) {
    assert_eq!(before, after, "{what} changed the ledger");
}

fn key() -> String {
    Uuid::now_v7().to_string()
}

/// The ids and numbers of the demo bank that the cases use.
struct Bank {
    alice_id: Uuid,
    alice_inr: Uuid,
    alice_inr_no: String,
    alice_usd: Uuid,
    alice_usd_no: String,
    joint_no: String,
    bob_inr: Uuid,
    bob_inr_no: String,
    vault_inr: Uuid,
    vault_inr_no: String,
}

async fn bank(stack: &TestStack) -> Bank {
    let alice = stack.user("alice").account_numbers.clone();
    let bob = stack.user("bob").account_numbers.clone();
    let db = stack.superuser("primary").await;
    let alice_id: Uuid = db
        .query_one("SELECT id FROM users WHERE username = 'alice'", &[])
        .await
        .unwrap()
        .get(0);
    let vault = db
        .query_one("SELECT id, number FROM accounts WHERE kind = 'vault' AND currency = 'INR' ORDER BY number LIMIT 1", &[])
        .await
        .unwrap();
    Bank {
        alice_id,
        alice_inr: stack.account_id(&alice[0]).await,
        alice_inr_no: alice[0].clone(),
        alice_usd: stack.account_id(&alice[1]).await,
        alice_usd_no: alice[1].clone(),
        joint_no: alice[2].clone(),
        bob_inr: stack.account_id(&bob[0]).await,
        bob_inr_no: bob[0].clone(),
        vault_inr: vault.get(0),
        vault_inr_no: vault.get(1),
    }
}

/// A POST with an arbitrary Idempotency-Key header value (raw bytes).
async fn post_with_key_bytes(s: &Session, path: &str, body: Value, key: &[u8]) -> Resp {
    let request = s
        .http
        .post(format!("{}{path}", s.base_url))
        .bearer_auth(s.token.as_deref().unwrap())
        .json(&body)
        .header(
            "Idempotency-Key",
            HeaderValue::from_bytes(key).expect("a header value"),
        );
    s.send(request).await
}

#[tokio::test]
async fn malformed_requests_are_refused_and_change_nothing() {
    let stack = TestStack::start("bad-shape").await;
    let seen = Seen::default();
    let b = bank(&stack).await;
    let alice = stack.login("alice").await;
    let admin = stack.login("admin").await;
    let before = stack.ledger_snapshot().await;

    // Who posts where, and a valid body for each endpoint.
    let cash = json!({"account_id": b.alice_inr, "amount": "1.00", "memo": "m"});
    let transfer = json!({"from_account_id": b.alice_inr, "to_account_number": b.bob_inr_no, "amount": "1.00", "memo": "m"});
    let endpoints: Vec<(&Session, &str, Value)> = vec![
        (&alice, "/v1/deposits", cash.clone()),
        (&alice, "/v1/withdrawals", cash.clone()),
        (&alice, "/v1/transfers", transfer.clone()),
        (
            &alice,
            "/v1/transfers/batch",
            json!({"items": [transfer.clone()]}),
        ),
        (&admin, "/v1/admin/deposits", cash.clone()),
        (&admin, "/v1/admin/withdrawals", cash.clone()),
    ];

    // Malformed JSON, JSON that is not an object, unknown and missing fields.
    for (s, path, good) in &endpoints {
        let mut with_extra = good.clone();
        with_extra["extra"] = json!(1);
        let raw_cases: Vec<(&str, Vec<u8>)> = vec![
            ("malformed JSON", br#"{"account_id":"#.to_vec()),
            ("empty body", Vec::new()),
            ("not JSON at all", b"hello".to_vec()),
            ("array", b"[1, 2]".to_vec()),
            ("string", br#""text""#.to_vec()),
            ("number", b"42".to_vec()),
            ("null", b"null".to_vec()),
            ("empty object", b"{}".to_vec()),
            ("unknown field", serde_json::to_vec(&with_extra).unwrap()),
        ];
        for (what, raw) in raw_cases {
            let label = format!("{path}: {what}");
            seen.problem(
                &label,
                s.post_raw(path, raw, Some(&key())).await,
                400,
                "validation_failed",
            );
        }
    }

    // Wrong types and missing fields, per body shape.
    let cash_paths = [
        "/v1/deposits",
        "/v1/withdrawals",
        "/v1/admin/deposits",
        "/v1/admin/withdrawals",
    ];
    for path in cash_paths {
        let s = if path.starts_with("/v1/admin") {
            &admin
        } else {
            &alice
        };
        let cases = [
            (
                "amount as a JSON number",
                json!({"account_id": b.alice_inr, "amount": 12.5}),
            ),
            (
                "amount as an integer",
                json!({"account_id": b.alice_inr, "amount": 12}),
            ),
            (
                "amount null",
                json!({"account_id": b.alice_inr, "amount": null}),
            ),
            (
                "account_id not a UUID",
                json!({"account_id": "not-a-uuid", "amount": "1.00"}),
            ),
            (
                "account_id a number",
                json!({"account_id": 7, "amount": "1.00"}),
            ),
            (
                "memo a number",
                json!({"account_id": b.alice_inr, "amount": "1.00", "memo": 5}),
            ),
            ("missing amount", json!({"account_id": b.alice_inr})),
            ("missing account_id", json!({"amount": "1.00"})),
        ];
        for (what, body) in cases {
            seen.problem(
                &format!("{path}: {what}"),
                s.post(path, body, Some(&key())).await,
                400,
                "validation_failed",
            );
        }
    }
    let transfer_cases = [
        (
            "amount as a JSON number",
            json!({"from_account_id": b.alice_inr, "to_account_number": b.bob_inr_no, "amount": 12.5}),
        ),
        (
            "from_account_id not a UUID",
            json!({"from_account_id": "nope", "to_account_number": b.bob_inr_no, "amount": "1"}),
        ),
        (
            "to_account_number a number",
            json!({"from_account_id": b.alice_inr, "to_account_number": 1000000001, "amount": "1"}),
        ),
        (
            "to_account_number with symbols",
            json!({"from_account_id": b.alice_inr, "to_account_number": "10-00", "amount": "1"}),
        ),
        (
            "to_account_number empty",
            json!({"from_account_id": b.alice_inr, "to_account_number": "", "amount": "1"}),
        ),
        (
            "to_account_number too long",
            json!({"from_account_id": b.alice_inr, "to_account_number": "1".repeat(35), "amount": "1"}),
        ),
        (
            "missing to_account_number",
            json!({"from_account_id": b.alice_inr, "amount": "1"}),
        ),
        (
            "missing from_account_id",
            json!({"to_account_number": b.bob_inr_no, "amount": "1"}),
        ),
        (
            "missing amount",
            json!({"from_account_id": b.alice_inr, "to_account_number": b.bob_inr_no}),
        ),
    ];
    for (what, body) in &transfer_cases {
        seen.problem(
            &format!("transfer: {what}"),
            alice
                .post("/v1/transfers", body.clone(), Some(&key()))
                .await,
            400,
            "validation_failed",
        );
        seen.problem(
            &format!("batch item: {what}"),
            alice
                .post(
                    "/v1/transfers/batch",
                    json!({"items": [transfer.clone(), body.clone()]}),
                    Some(&key()),
                )
                .await,
            400,
            "validation_failed",
        );
    }
    for (what, body) in [
        ("items not an array", json!({"items": "x"})),
        ("items an object", json!({"items": {"0": transfer.clone()}})),
        ("items null", json!({"items": null})),
        ("item not an object", json!({"items": [1]})),
        ("missing items", json!({})),
        (
            "unknown field next to items",
            json!({"items": [transfer.clone()], "extra": 1}),
        ),
    ] {
        seen.problem(
            &format!("batch: {what}"),
            alice.post("/v1/transfers/batch", body, Some(&key())).await,
            400,
            "validation_failed",
        );
    }
    same("wrong shapes", &before, &stack.ledger_snapshot().await);

    // Amounts.
    let bad_amounts = [
        "0",
        "0.00",
        "-5",
        "1.001",
        "1000000000000.01",
        "99999999999999",
        "abc",
        "1e3",
        "",
        " 1",
        "1.",
        ".5",
        "+1",
        "1,00",
        "NaN",
        "0x10",
    ];
    for amount in bad_amounts {
        for path in cash_paths {
            let s = if path.starts_with("/v1/admin") {
                &admin
            } else {
                &alice
            };
            let body = json!({"account_id": b.alice_inr, "amount": amount});
            seen.problem(
                &format!("{path}: amount {amount:?}"),
                s.post(path, body, Some(&key())).await,
                400,
                "validation_failed",
            );
        }
        let body = json!({"from_account_id": b.alice_inr, "to_account_number": b.bob_inr_no, "amount": amount});
        seen.problem(
            &format!("transfer: amount {amount:?}"),
            alice
                .post("/v1/transfers", body.clone(), Some(&key()))
                .await,
            400,
            "validation_failed",
        );
        let batch = json!({"items": [transfer.clone(), transfer.clone(), transfer.clone(), body]});
        let r = seen.problem(
            &format!("batch: amount {amount:?}"),
            alice.post("/v1/transfers/batch", batch, Some(&key())).await,
            400,
            "validation_failed",
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains("item 3"),
            "batch names item 3: {}",
            r.body
        );
    }
    same("bad amounts", &before, &stack.ledger_snapshot().await);

    // Batch size: empty and over 1000 (checked before any item is parsed).
    seen.problem(
        "batch: empty",
        alice
            .post("/v1/transfers/batch", json!({"items": []}), Some(&key()))
            .await,
        400,
        "validation_failed",
    );
    let too_many: Vec<Value> = (0..1001).map(|_| json!({})).collect();
    seen.problem(
        "batch: 1001 items",
        alice
            .post(
                "/v1/transfers/batch",
                json!({"items": too_many}),
                Some(&key()),
            )
            .await,
        400,
        "validation_failed",
    );

    // Sizes: a body over 64 KiB (2 MiB for a batch, whose 1000 items may
    // need it), a memo over 140 characters or with a control character.
    for (s, path, good) in &endpoints {
        let mut body = good.clone();
        if path.ends_with("/batch") {
            body["items"][0]["memo"] = json!("x".repeat(2_100_000));
        } else {
            body["memo"] = json!("x".repeat(70_000));
        }
        seen.problem(
            &format!("{path}: a body over the limit"),
            s.post(path, body, Some(&key())).await,
            413,
            "payload_too_large",
        );
        for (what, memo) in [
            ("141-char memo", "m".repeat(141)),
            ("control character in memo", "a\u{7}b".to_string()),
        ] {
            let mut body = good.clone();
            if path.ends_with("/batch") {
                body["items"][0]["memo"] = json!(memo);
            } else {
                body["memo"] = json!(memo);
            }
            seen.problem(
                &format!("{path}: {what}"),
                s.post(path, body, Some(&key())).await,
                400,
                "validation_failed",
            );
        }
    }
    seen.problem(
        "login: 70,000-char password",
        stack
            .anon()
            .post(
                "/v1/auth/login",
                json!({"username": "alice", "password": "x".repeat(70_000)}),
                None,
            )
            .await,
        413,
        "payload_too_large",
    );
    same("oversized bodies", &before, &stack.ledger_snapshot().await);

    // Idempotency-Key: required, 1-255 printable ASCII.
    for (s, path, good) in &endpoints {
        seen.problem(
            &format!("{path}: no key"),
            s.post(path, good.clone(), None).await,
            428,
            "idempotency_key_required",
        );
        let long = "k".repeat(256);
        seen.problem(
            &format!("{path}: 256-char key"),
            s.post(path, good.clone(), Some(&long)).await,
            400,
            "validation_failed",
        );
        for (what, raw) in [
            ("tab", b"abc\tdef".to_vec()),
            ("non-ASCII", "cl\u{e9}".as_bytes().to_vec()),
            ("a high byte", vec![b'a', 0xff]),
        ] {
            seen.problem(
                &format!("{path}: key with {what}"),
                post_with_key_bytes(s, path, good.clone(), &raw).await,
                400,
                "validation_failed",
            );
        }
        seen.problem(
            &format!("{path}: empty key"),
            post_with_key_bytes(s, path, good.clone(), b"").await,
            400,
            "validation_failed",
        );
    }
    same("bad keys", &before, &stack.ledger_snapshot().await);

    // The same key with another body is refused; the first transfer applied once.
    let k = key();
    let first = seen.ok(
        "first transfer",
        alice
            .post("/v1/transfers", transfer.clone(), Some(&k))
            .await,
        201,
    );
    let after_first = stack.ledger_snapshot().await;
    assert_eq!(after_first.transfers, before.transfers + 1);
    assert_eq!(after_first.entries, before.entries + 2);
    assert_eq!(after_first.idempotency_keys, before.idempotency_keys + 1);
    let mut other = transfer.clone();
    other["amount"] = json!("2.00");
    seen.problem(
        "same key, other amount",
        alice.post("/v1/transfers", other, Some(&k)).await,
        422,
        "idempotency_key_reused",
    );
    let mut other_memo = transfer.clone();
    other_memo["memo"] = json!("another memo");
    seen.problem(
        "same key, other memo",
        alice.post("/v1/transfers", other_memo, Some(&k)).await,
        422,
        "idempotency_key_reused",
    );
    let withdrawal = json!({"account_id": b.alice_inr, "amount": "1.00", "memo": "m"});
    seen.problem(
        "same key, other route",
        alice.post("/v1/withdrawals", withdrawal, Some(&k)).await,
        422,
        "idempotency_key_reused",
    );
    same("reused key", &after_first, &stack.ledger_snapshot().await);
    // The same key and body replays the first response.
    let replay = seen.ok(
        "replay",
        alice
            .post("/v1/transfers", transfer.clone(), Some(&k))
            .await,
        201,
    );
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body);
    assert!(first.header("idempotent-replayed").is_none());
    // ... also with its fields reordered and re-spaced.
    let reordered = format!(
        r#"{{ "memo": "m",  "amount": "1.00", "to_account_number": "{}", "from_account_id": "{}" }}"#,
        b.bob_inr_no, b.alice_inr
    );
    let replay2 = seen.ok(
        "replay, reordered",
        alice
            .post_raw("/v1/transfers", reordered.into_bytes(), Some(&k))
            .await,
        201,
    );
    assert_eq!(replay2.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay2.body, first.body);
    same("replays", &after_first, &stack.ledger_snapshot().await);
    // A key is the caller's own: bob may use the same key for his own transfer.
    // (Not exercised here: it would move money; see the access tests.)

    // Routes, methods, path and query parameters.
    let inr_tx = format!("/v1/accounts/{}/transactions", b.alice_inr);
    seen.problem(
        "unknown route",
        alice.get("/v1/nope").await,
        404,
        "not_found",
    );
    seen.problem(
        "unknown route, anonymous",
        stack.anon().get("/v1/nope").await,
        404,
        "not_found",
    );
    seen.problem(
        "unknown route, POST",
        alice.post("/v1/deposit", cash.clone(), Some(&key())).await,
        404,
        "not_found",
    );
    seen.problem(
        "GET /v1/transfers",
        alice.get("/v1/transfers").await,
        405,
        "method_not_allowed",
    );
    seen.problem(
        "GET /v1/deposits",
        alice.get("/v1/deposits").await,
        405,
        "method_not_allowed",
    );
    seen.problem(
        "POST /v1/me",
        alice.post("/v1/me", json!({}), None).await,
        405,
        "method_not_allowed",
    );
    let delete = alice
        .send(
            alice
                .http
                .delete(format!("{}/v1/accounts/{}", alice.base_url, b.alice_inr))
                .bearer_auth(alice.token.as_deref().unwrap()),
        )
        .await;
    seen.problem(
        "DELETE /v1/accounts/{id}",
        delete,
        405,
        "method_not_allowed",
    );
    seen.problem(
        "bad path UUID",
        alice.get("/v1/accounts/not-a-uuid").await,
        400,
        "validation_failed",
    );
    seen.problem(
        "bad path UUID, transactions",
        alice.get("/v1/accounts/123/transactions").await,
        400,
        "validation_failed",
    );
    seen.problem(
        "admin: bad path UUID",
        admin
            .post("/v1/admin/accounts/zzz/freeze", json!({}), None)
            .await,
        400,
        "validation_failed",
    );
    // base64url of "abc|def": it decodes, but is not a cursor this server made.
    let garbage_cursor = "YWJjfGRlZg";
    for query in [
        "limit=0",
        "limit=abc",
        "limit=-1",
        "limit=201",
        "limit=",
        "kind=bogus",
        "kind=DEPOSIT",
        "color=red",
        "cursor=%%%garbage",
        "cursor=!!!",
        &format!("cursor={garbage_cursor}"),
        "from=yesterday",
        "to=2024-13-45T00:00:00Z",
    ] {
        seen.problem(
            &format!("history ?{query}"),
            alice.get(&format!("{inr_tx}?{query}")).await,
            400,
            "validation_failed",
        );
    }
    for path in [
        "/v1/admin/customers?limit=0",
        "/v1/admin/customers?cursor=%%%",
        "/v1/admin/customers?color=red",
        "/v1/admin/accounts?status=bogus",
        "/v1/admin/accounts?limit=abc",
        "/v1/admin/accounts?cursor=!!",
        "/v1/admin/transactions?account_id=nope",
        "/v1/admin/transactions?cursor=garbage",
        "/v1/admin/transactions?limit=9999",
        "/v1/admin/audit?cursor=garbage",
        "/v1/admin/audit?actor=nope",
        "/v1/admin/audit?from=yesterday",
        "/v1/admin/audit?x=1",
        // NUL characters reach no SQL text parameter (once a 500).
        "/v1/admin/customers?query=%00",
        "/v1/admin/customers?cursor=AA",
        "/v1/admin/accounts?query=a%00b",
        "/v1/admin/accounts?cursor=A%00A",
        "/v1/admin/audit?action=%00",
        // Cursors are keyset positions with a published pattern.
        "/v1/admin/customers?cursor=Alice",
        "/v1/admin/audit?cursor=-1",
        "/v1/notifications?cursor=01a2298c9d837261b03a0d73ed87a6ee",
    ] {
        seen.problem(
            &format!("admin GET {path}"),
            admin.get(path).await,
            400,
            "validation_failed",
        );
    }
    same(
        "bad routes and queries",
        &after_first,
        &stack.ledger_snapshot().await,
    );

    // Login step one: shape errors are 400, never 5xx.
    let anon = stack.anon();
    for (what, raw) in [
        ("malformed", br#"{"username":"#.to_vec()),
        ("missing password", br#"{"username":"alice"}"#.to_vec()),
        (
            "unknown field",
            br#"{"username":"alice","password":"x","otp":"1"}"#.to_vec(),
        ),
        ("wrong type", br#"{"username":1,"password":"x"}"#.to_vec()),
    ] {
        seen.problem(
            &format!("login: {what}"),
            anon.post_raw("/v1/auth/login", raw, None).await,
            400,
            "validation_failed",
        );
    }
    // A NUL in the username (once a 500).
    seen.problem(
        "login: NUL in username",
        anon.post(
            "/v1/auth/login",
            json!({"username": "ali\u{0}ce", "password": "whatever password"}),
            None,
        )
        .await,
        400,
        "validation_failed",
    );
    // JSON nested deeper than the parser allows.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    seen.problem(
        "deeply nested JSON",
        alice
            .post_raw("/v1/deposits", deep.into_bytes(), Some(&key()))
            .await,
        400,
        "validation_failed",
    );
    seen.problem(
        "mfa: neither code",
        anon.post("/v1/auth/mfa", json!({"mfa_token": "x"}), None)
            .await,
        401,
        "unauthenticated",
    );
    // A standing order by the second is for test configurations only; a wrong unit is told the published ones.
    for every in ["second", "fortnight"] {
        let order = json!({"from_account_id": b.alice_inr, "to": {"account_number": b.bob_inr_no}, "amount": "1.00",
                           "schedule": {"every": every, "interval": 1, "time": "09:00"}, "start_at": chrono::Utc::now().date_naive().to_string()});
        let refused = alice.post_money("/v1/standing-orders", order).await;
        let detail = refused.body["detail"].as_str().unwrap_or_default().to_string();
        assert!(detail.starts_with("schedule.every must be day, week or month"), "{every}: {detail}");
        seen.problem(&format!("standing order every {every}"), refused, 400, "validation_failed");
    }
    let orders = alice.get("/v1/standing-orders").await;
    assert_eq!(orders.body["items"].as_array().map(Vec::len), Some(0), "nothing was created: {}", orders.body);

    stack.assert_ledger_invariants().await;
    seen.assert_no_5xx();
}

#[tokio::test]
async fn business_rule_violations_are_refused_and_change_nothing() {
    let stack = TestStack::start("bad-rules").await;
    let seen = Seen::default();
    let b = bank(&stack).await;
    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;
    let admin = stack.login("admin").await;
    let before = stack.ledger_snapshot().await;
    let nobody = Uuid::now_v7();

    // Unknown accounts, and accounts that are not yours, are 404 alike.
    let cases: Vec<(&str, &Session, &str, Value)> = vec![
        (
            "deposit to unknown id",
            &alice,
            "/v1/deposits",
            json!({"account_id": nobody, "amount": "1"}),
        ),
        (
            "withdraw from unknown id",
            &alice,
            "/v1/withdrawals",
            json!({"account_id": nobody, "amount": "1"}),
        ),
        (
            "transfer from unknown id",
            &alice,
            "/v1/transfers",
            json!({"from_account_id": nobody, "to_account_number": b.bob_inr_no, "amount": "1"}),
        ),
        (
            "transfer to unknown number",
            &alice,
            "/v1/transfers",
            json!({"from_account_id": b.alice_inr, "to_account_number": "9999999999", "amount": "1"}),
        ),
        (
            "transfer to the vault's number",
            &alice,
            "/v1/transfers",
            json!({"from_account_id": b.alice_inr, "to_account_number": b.vault_inr_no, "amount": "1"}),
        ),
        (
            "transfer from bob's savings",
            &alice,
            "/v1/transfers",
            json!({"from_account_id": b.bob_inr, "to_account_number": b.alice_inr_no, "amount": "1"}),
        ),
        (
            "withdraw from bob's savings",
            &alice,
            "/v1/withdrawals",
            json!({"account_id": b.bob_inr, "amount": "1"}),
        ),
        (
            "deposit to bob's savings by id",
            &alice,
            "/v1/deposits",
            json!({"account_id": b.bob_inr, "amount": "1"}),
        ),
        (
            "withdraw from the vault",
            &alice,
            "/v1/withdrawals",
            json!({"account_id": b.vault_inr, "amount": "1"}),
        ),
        (
            "teller deposit to unknown id",
            &admin,
            "/v1/admin/deposits",
            json!({"account_id": nobody, "amount": "1"}),
        ),
        (
            "teller withdrawal from unknown id",
            &admin,
            "/v1/admin/withdrawals",
            json!({"account_id": nobody, "amount": "1"}),
        ),
        (
            "teller deposit to the vault",
            &admin,
            "/v1/admin/deposits",
            json!({"account_id": b.vault_inr, "amount": "1"}),
        ),
        (
            "batch from bob's savings",
            &alice,
            "/v1/transfers/batch",
            json!({"items": [
            {"from_account_id": b.alice_inr, "to_account_number": b.bob_inr_no, "amount": "1"},
            {"from_account_id": b.bob_inr, "to_account_number": b.alice_inr_no, "amount": "1"}]}),
        ),
    ];
    let mut unknown_body = None;
    for (what, s, path, body) in cases {
        let r = seen.problem(what, s.post_money(path, body).await, 404, "not_found");
        if what.starts_with("withdraw from") {
            // Not yours reads exactly like not there.
            match &unknown_body {
                None => unknown_body = Some(r.body.clone()),
                Some(first) => assert_eq!(&r.body, first, "{what}"),
            }
        }
        if what.starts_with("batch") {
            assert!(
                r.body["detail"].as_str().unwrap().contains("item 1"),
                "{}",
                r.body
            );
        }
    }
    seen.problem(
        "GET bob's account",
        alice.get(&format!("/v1/accounts/{}", b.bob_inr)).await,
        404,
        "not_found",
    );
    seen.problem(
        "GET unknown account",
        alice.get(&format!("/v1/accounts/{nobody}")).await,
        404,
        "not_found",
    );
    seen.problem(
        "GET the vault",
        alice.get(&format!("/v1/accounts/{}", b.vault_inr)).await,
        404,
        "not_found",
    );
    same("not found", &before, &stack.ledger_snapshot().await);

    // Same account, currency mismatch, insufficient funds.
    let to_self =
        json!({"from_account_id": b.alice_inr, "to_account_number": b.alice_inr_no, "amount": "1"});
    seen.problem(
        "transfer to self",
        alice.post_money("/v1/transfers", to_self).await,
        409,
        "same_account",
    );
    let inr_to_usd =
        json!({"from_account_id": b.alice_inr, "to_account_number": b.alice_usd_no, "amount": "1"});
    seen.problem(
        "INR to USD",
        alice.post_money("/v1/transfers", inr_to_usd).await,
        409,
        "currency_mismatch",
    );
    let usd_to_inr =
        json!({"from_account_id": b.alice_usd, "to_account_number": b.bob_inr_no, "amount": "1"});
    seen.problem(
        "USD to INR",
        alice.post_money("/v1/transfers", usd_to_inr).await,
        409,
        "currency_mismatch",
    );
    let balance: String = alice
        .get(&format!("/v1/accounts/{}", b.alice_inr))
        .await
        .body["balance"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(balance, "41749.50", "the seeded balance");
    for (what, s, path, body) in [
        (
            "withdraw one paisa too many",
            &alice,
            "/v1/withdrawals",
            json!({"account_id": b.alice_inr, "amount": "41749.51"}),
        ),
        (
            "withdraw the maximum",
            &alice,
            "/v1/withdrawals",
            json!({"account_id": b.alice_inr, "amount": "1000000000000"}),
        ),
        (
            "transfer too much",
            &alice,
            "/v1/transfers",
            json!({"from_account_id": b.alice_inr, "to_account_number": b.bob_inr_no, "amount": "41749.51"}),
        ),
        (
            "teller withdrawal too much",
            &admin,
            "/v1/admin/withdrawals",
            json!({"account_id": b.alice_usd, "amount": "1200.01"}),
        ),
    ] {
        seen.problem(
            what,
            s.post_money(path, body).await,
            409,
            "insufficient_funds",
        );
    }
    same(
        "same account / currency / funds",
        &before,
        &stack.ledger_snapshot().await,
    );

    // Batch: all or nothing, and the detail names the failing item.
    let item = |amount: &str, to: &str| json!({"from_account_id": b.alice_inr, "to_account_number": to, "amount": amount});
    let r = seen.problem(
        "batch, item 2 short of funds",
        alice.post_money("/v1/transfers/batch", json!({"items": [item("1.00", &b.bob_inr_no), item("2.00", &b.joint_no), item("41747.00", &b.bob_inr_no)]})).await,
        409,
        "insufficient_funds",
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains("item 2"),
        "{}",
        r.body
    );
    let r = seen.problem(
        "batch, item 1 to a USD account",
        alice
            .post_money(
                "/v1/transfers/batch",
                json!({"items": [item("1.00", &b.bob_inr_no), item("1.00", &b.alice_usd_no)]}),
            )
            .await,
        409,
        "currency_mismatch",
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains("item 1"),
        "{}",
        r.body
    );
    let r = seen.problem(
        "batch, item 2 to itself",
        alice.post_money("/v1/transfers/batch", json!({"items": [item("1.00", &b.bob_inr_no), item("1.00", &b.joint_no), item("1.00", &b.alice_inr_no)]})).await,
        409,
        "same_account",
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains("item 2"),
        "{}",
        r.body
    );
    let r = seen.problem(
        "batch, item 1 to an unknown number",
        alice
            .post_money(
                "/v1/transfers/batch",
                json!({"items": [item("1.00", &b.bob_inr_no), item("1.00", "8888888888")]}),
            )
            .await,
        404,
        "not_found",
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains("item 1"),
        "{}",
        r.body
    );
    // Each item alone would be fine; together they overdraw.
    let r = seen.problem(
        "batch, cumulative overdraft",
        alice.post_money("/v1/transfers/batch", json!({"items": [item("30000.00", &b.bob_inr_no), item("11749.50", &b.joint_no), item("0.01", &b.bob_inr_no)]})).await,
        409,
        "insufficient_funds",
    );
    // What the account would hold after the items before it.
    assert_eq!(r.body["detail"], format!("item 2: account {} holds 0.00 INR", b.alice_inr_no), "{}", r.body);
    same("failed batches", &before, &stack.ledger_snapshot().await);

    // Closing an account that holds money.
    seen.problem(
        "close with money",
        admin
            .post(
                &format!("/v1/admin/accounts/{}/close", b.alice_usd),
                json!({}),
                None,
            )
            .await,
        409,
        "balance_not_zero",
    );
    seen.problem(
        "freeze unknown",
        admin
            .post(
                &format!("/v1/admin/accounts/{nobody}/freeze"),
                json!({}),
                None,
            )
            .await,
        404,
        "not_found",
    );
    seen.problem(
        "freeze the vault",
        admin
            .post(
                &format!("/v1/admin/accounts/{}/freeze", b.vault_inr),
                json!({}),
                None,
            )
            .await,
        404,
        "not_found",
    );
    same(
        "refused status changes",
        &before,
        &stack.ledger_snapshot().await,
    );

    // A frozen account takes no debit, no credit, and is no destination.
    let frozen = seen.ok(
        "freeze",
        admin
            .post(
                &format!("/v1/admin/accounts/{}/freeze", b.alice_inr),
                json!({}),
                None,
            )
            .await,
        200,
    );
    assert_eq!(frozen.body["status"], "frozen");
    let frozen_snapshot = stack.ledger_snapshot().await;
    for (what, s, path, body) in [
        (
            "debit a frozen account",
            &alice,
            "/v1/withdrawals",
            json!({"account_id": b.alice_inr, "amount": "1"}),
        ),
        (
            "credit a frozen account",
            &alice,
            "/v1/deposits",
            json!({"account_id": b.alice_inr, "amount": "1"}),
        ),
        (
            "transfer from a frozen account",
            &alice,
            "/v1/transfers",
            json!({"from_account_id": b.alice_inr, "to_account_number": b.bob_inr_no, "amount": "1"}),
        ),
        (
            "transfer to a frozen account",
            &bob,
            "/v1/transfers",
            json!({"from_account_id": b.bob_inr, "to_account_number": b.alice_inr_no, "amount": "1"}),
        ),
        (
            "teller deposit to a frozen account",
            &admin,
            "/v1/admin/deposits",
            json!({"account_id": b.alice_inr, "amount": "1"}),
        ),
        (
            "teller withdrawal from a frozen account",
            &admin,
            "/v1/admin/withdrawals",
            json!({"account_id": b.alice_inr, "amount": "1"}),
        ),
        (
            "batch to a frozen account",
            &bob,
            "/v1/transfers/batch",
            json!({"items": [{"from_account_id": b.bob_inr, "to_account_number": b.alice_inr_no, "amount": "1"}]}),
        ),
    ] {
        seen.problem(
            what,
            s.post_money(path, body).await,
            409,
            "account_inactive",
        );
    }
    same(
        "frozen account",
        &frozen_snapshot,
        &stack.ledger_snapshot().await,
    );
    let thawed = seen.ok(
        "unfreeze",
        admin
            .post(
                &format!("/v1/admin/accounts/{}/unfreeze", b.alice_inr),
                json!({}),
                None,
            )
            .await,
        200,
    );
    assert_eq!(thawed.body["status"], "active");
    same("freeze + unfreeze", &before, &stack.ledger_snapshot().await);

    // A closed account (opened fresh, closed at zero) is inactive for everything.
    let opened = seen.ok(
        "open a fresh account",
        admin
            .post(
                "/v1/admin/accounts",
                json!({"owner_ids": [b.alice_id], "kind": "savings", "currency": "INR"}),
                None,
            )
            .await,
        201,
    );
    let fresh_id = opened.body["id"].as_str().unwrap().to_string();
    let fresh_no = opened.body["number"].as_str().unwrap().to_string();
    let closed = seen.ok(
        "close at zero",
        admin
            .post(
                &format!("/v1/admin/accounts/{fresh_id}/close"),
                json!({}),
                None,
            )
            .await,
        200,
    );
    assert_eq!(closed.body["status"], "closed");
    let closed_snapshot = stack.ledger_snapshot().await;
    for (what, s, path, body) in [
        (
            "credit a closed account",
            &alice,
            "/v1/deposits",
            json!({"account_id": fresh_id, "amount": "1"}),
        ),
        (
            "debit a closed account",
            &alice,
            "/v1/withdrawals",
            json!({"account_id": fresh_id, "amount": "1"}),
        ),
        (
            "transfer from a closed account",
            &alice,
            "/v1/transfers",
            json!({"from_account_id": fresh_id, "to_account_number": b.bob_inr_no, "amount": "1"}),
        ),
        (
            "transfer to a closed account",
            &alice,
            "/v1/transfers",
            json!({"from_account_id": b.alice_inr, "to_account_number": fresh_no, "amount": "1"}),
        ),
        (
            "transfer to a closed account, by bob",
            &bob,
            "/v1/transfers",
            json!({"from_account_id": b.bob_inr, "to_account_number": fresh_no, "amount": "1"}),
        ),
        (
            "teller deposit to a closed account",
            &admin,
            "/v1/admin/deposits",
            json!({"account_id": fresh_id, "amount": "1"}),
        ),
    ] {
        seen.problem(
            what,
            s.post_money(path, body).await,
            409,
            "account_inactive",
        );
    }
    for change in ["freeze", "unfreeze", "close"] {
        seen.problem(
            &format!("{change} a closed account"),
            admin
                .post(
                    &format!("/v1/admin/accounts/{fresh_id}/{change}"),
                    json!({}),
                    None,
                )
                .await,
            409,
            "account_inactive",
        );
    }
    same(
        "closed account",
        &closed_snapshot,
        &stack.ledger_snapshot().await,
    );
    let after = alice.get(&format!("/v1/accounts/{fresh_id}")).await;
    assert_eq!(
        (after.status, after.body["status"].as_str()),
        (200, Some("closed"))
    );

    stack.assert_ledger_invariants().await;
    seen.assert_no_5xx();
}

#[tokio::test]
async fn admin_bad_input_is_refused_and_changes_nothing() {
    let stack = TestStack::start("bad-admin").await;
    let seen = Seen::default();
    let b = bank(&stack).await;
    let admin = stack.login("admin").await;
    let before = stack.ledger_snapshot().await;
    let db = stack.superuser("primary").await;
    let admin_id: Uuid = db
        .query_one("SELECT id FROM users WHERE username = 'admin'", &[])
        .await
        .unwrap()
        .get(0);
    let dba_id: Uuid = db
        .query_one("SELECT id FROM users WHERE username = 'dba'", &[])
        .await
        .unwrap()
        .get(0);

    let good = json!({"username": "dora", "full_name": "Dora Das", "national_id": "DORA-1", "phone": "+91 90000 11111",
                      "email": "dora@example.com", "password": "twelve chars!"});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    for (what, body) in [
        (
            "password of 11 characters",
            with("password", json!("elevenchars")),
        ),
        ("empty password", with("password", json!(""))),
        (
            "password over 1024 bytes",
            with("password", json!("p".repeat(1025))),
        ),
        ("username with a space", with("username", json!("dora das"))),
        ("username with a symbol", with("username", json!("dora!"))),
        ("username too short", with("username", json!("do"))),
        ("username too long", with("username", json!("d".repeat(65)))),
        ("username non-ASCII", with("username", json!("dörä"))),
        ("empty full_name", with("full_name", json!("  "))),
        (
            "full_name with a newline",
            with("full_name", json!("Dora\nDas")),
        ),
        ("phone with letters", with("phone", json!("call me"))),
        ("email without @", with("email", json!("dora.example.com"))),
        ("username a number", with("username", json!(5))),
        ("missing password", without("password")),
        ("missing username", without("username")),
        ("unknown field", with("role", json!("branch_admin"))),
    ] {
        seen.problem(
            &format!("create customer: {what}"),
            admin.post("/v1/admin/customers", body, None).await,
            400,
            "validation_failed",
        );
    }
    seen.problem(
        "create customer: malformed",
        admin
            .post_raw("/v1/admin/customers", b"{\"username\":".to_vec(), None)
            .await,
        400,
        "validation_failed",
    );
    // The published pattern is exact: no case folding, no trimming.
    for not_a_username in ["ALICE", " bob "] {
        seen.problem(
            &format!("create customer: {not_a_username:?}"),
            admin
                .post("/v1/admin/customers", with("username", json!(not_a_username)), None)
                .await,
            400,
            "validation_failed",
        );
    }
    for taken in ["alice", "admin", "dba"] {
        seen.problem(
            &format!("create customer: duplicate {taken:?}"),
            admin
                .post("/v1/admin/customers", with("username", json!(taken)), None)
                .await,
            409,
            "username_taken",
        );
    }
    same("refused customers", &before, &stack.ledger_snapshot().await);

    let account = |owners: Value, kind: &str, currency: &str| json!({"owner_ids": owners, "kind": kind, "currency": currency});
    let alice = json!([b.alice_id]);
    for (what, body) in [
        ("unknown kind", account(alice.clone(), "checking", "INR")),
        ("kind vault", account(alice.clone(), "vault", "INR")),
        ("kind in capitals", account(alice.clone(), "SAVINGS", "INR")),
        ("unknown currency", account(alice.clone(), "savings", "GBP")),
        (
            "lower-case currency",
            account(alice.clone(), "savings", "inr"),
        ),
        ("zero owners", account(json!([]), "savings", "INR")),
        (
            "duplicate owners",
            account(json!([b.alice_id, b.alice_id]), "savings", "INR"),
        ),
        (
            "nine owners",
            account(
                json!((0..9).map(|_| Uuid::now_v7()).collect::<Vec<_>>()),
                "savings",
                "INR",
            ),
        ),
        (
            "owner not a UUID",
            account(json!(["alice"]), "savings", "INR"),
        ),
        (
            "owner_ids not an array",
            account(json!(b.alice_id), "savings", "INR"),
        ),
        (
            "missing currency",
            json!({"owner_ids": [b.alice_id], "kind": "savings"}),
        ),
        (
            "unknown field",
            json!({"owner_ids": [b.alice_id], "kind": "savings", "currency": "INR", "balance": "100"}),
        ),
    ] {
        seen.problem(
            &format!("open account: {what}"),
            admin.post("/v1/admin/accounts", body, None).await,
            400,
            "validation_failed",
        );
    }
    for (what, owners) in [
        ("unknown owner", json!([Uuid::now_v7()])),
        ("the admin as owner", json!([admin_id])),
        ("the dba as owner", json!([dba_id])),
        (
            "one good, one unknown owner",
            json!([b.alice_id, Uuid::now_v7()]),
        ),
    ] {
        seen.problem(
            &format!("open account: {what}"),
            admin
                .post(
                    "/v1/admin/accounts",
                    account(owners, "savings", "INR"),
                    None,
                )
                .await,
            404,
            "not_found",
        );
    }
    same("refused accounts", &before, &stack.ledger_snapshot().await);
    stack.assert_ledger_invariants().await;
    seen.assert_no_5xx();
}
