//! The desktop app's API client and offline queue against a real stack:
//! PostgreSQL primary + synchronous replica and the server over HTTPS.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use flexibank_desktop::{
    api::{ApiClient, ErrorKind},
    queue::{self, OfflineQueue, Outcome, Status, TransferRequest},
};
use flexibank_tests::TestStack;
use serde_json::Value;

async fn client_for(stack: &TestStack) -> ApiClient {
    ApiClient::new(&stack.base_url, &std::fs::read(&stack.ca_cert).unwrap()).unwrap()
}

async fn logged_in(stack: &TestStack, username: &str) -> ApiClient {
    let api = client_for(stack).await;
    let user = stack.user(username).clone();
    let step = api
        .login(&user.username, &user.password)
        .await
        .expect("password step");
    assert_eq!(step["next"], "totp");
    assert!(
        step.get("mfa_token").is_none(),
        "the MFA token stays on the Rust side"
    );
    let code = stack.fresh_code(&user.username, &user.totp_secret).await;
    let session = api.verify_mfa(Some(&code), None).await.expect("code step");
    assert_eq!(session["user"]["username"], username);
    assert!(
        session.get("session_token").is_none(),
        "the session token stays on the Rust side"
    );
    assert!(api.has_session());
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_logs_in_maps_problems_and_forgets_a_dead_session() {
    let stack = TestStack::start("desktop-client").await;
    let api = client_for(&stack).await;

    let wrong = api
        .login("alice", "not the password at all")
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.kind, wrong.status, wrong.code.as_str()),
        (ErrorKind::Problem, 401, "invalid_credentials")
    );
    let no_token = api.verify_mfa(Some("123456"), None).await.unwrap_err();
    assert_eq!(
        no_token.kind,
        ErrorKind::Invalid,
        "no code step before the password step"
    );

    let api = logged_in(&stack, "alice").await;
    let me = api.get("/v1/me", &[]).await.unwrap();
    assert_eq!(me["accounts"].as_array().unwrap().len(), 3);
    let missing = api
        .get(&format!("/v1/accounts/{}", uuid::Uuid::now_v7()), &[])
        .await
        .unwrap_err();
    assert_eq!((missing.status, missing.code.as_str()), (404, "not_found"));

    // A refused movement: a clear problem, and the balance untouched.
    let account = &me["accounts"][0];
    let body = serde_json::json!({"account_id": account["id"], "amount": "99999999", "memo": ""});
    let refused = api
        .post("/v1/withdrawals", &body, Some("client-test-1"))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status, refused.code.as_str()),
        (409, "insufficient_funds")
    );
    assert!(!refused.is_transient());
    let again = api
        .get(
            &format!("/v1/accounts/{}", account["id"].as_str().unwrap()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(again["balance"], account["balance"]);

    // Logged out: the token is gone here and revoked on the server.
    api.logout().await.unwrap();
    assert!(!api.has_session());
    let after = api.get("/v1/me", &[]).await.unwrap_err();
    assert_eq!(
        (after.status, after.code.as_str()),
        (401, "unauthenticated")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_trusts_only_the_configured_ca_and_only_https() {
    let stack = TestStack::start("desktop-client-tls").await;
    // A CA of its own that never signed the server's certificate.
    let other = stack.dir().join("other-tls");
    flexibank_server::tls::ensure_local_tls(&other).unwrap();
    let stranger = ApiClient::new(
        &stack.base_url,
        &std::fs::read(other.join("ca.pem")).unwrap(),
    )
    .unwrap();
    let refused = stranger.get("/healthz", &[]).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Unreachable);
    assert!(
        refused.detail.to_lowercase().contains("certificate"),
        "the reason names the certificate: {}",
        refused.detail
    );

    let plain = stack.base_url.replace("https://", "http://");
    let api = ApiClient::new(&plain, &std::fs::read(&stack.ca_cert).unwrap()).unwrap();
    assert_eq!(
        api.get("/healthz", &[]).await.unwrap_err().kind,
        ErrorKind::Unreachable,
        "plain HTTP is never used"
    );
    assert!(ApiClient::new(&stack.base_url, b"not a certificate").is_err());
}

/// A send whose answer was lost, sent again from the queue with the same key,
/// applies once: the server replays the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_resend_with_the_same_key_applies_once() {
    let stack = TestStack::start("desktop-queue-once").await;
    let api = Arc::new(logged_in(&stack, "bob").await);
    let from = stack.user("bob").account_numbers[0].clone();
    let from_id = stack.account_id(&from).await;
    let to = stack.user("alice").account_numbers[0].clone();
    let balance = |v: &Value| {
        v["balance"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    let before = balance(
        &api.get(&format!("/v1/accounts/{from_id}"), &[])
            .await
            .unwrap(),
    );

    let request = TransferRequest {
        from_account_id: from_id,
        to_account_number: to,
        amount: "3.10".into(),
        currency: "INR".into(),
        memo: "lost answer".into(),
    };
    let dir = stack.dir().join("queue");
    let mut offline = OfflineQueue::open(&dir.join("offline-queue.json")).unwrap();
    let item = offline
        .enqueue("bob", "lost-answer-key", request.clone(), Utc::now())
        .unwrap();
    // The first send reached the server; its answer never reached the app.
    let first = api
        .post(
            "/v1/transfers",
            &request.body(),
            Some(&item.idempotency_key),
        )
        .await
        .unwrap();

    offline.begin_send(item.id);
    let outcome = queue::classify(queue::send_transfer(&api, &item.request, &item.idempotency_key).await);
    let Outcome::Applied(replayed) = &outcome else {
        panic!("resend: {outcome:?}")
    };
    assert_eq!(replayed["id"], first["id"], "the same transfer, replayed");
    offline.record(item.id, outcome, Utc::now()).unwrap();
    assert_eq!(offline.items()[0].status, Status::Applied);

    let after = balance(
        &api.get(&format!("/v1/accounts/{from_id}"), &[])
            .await
            .unwrap(),
    );
    assert_eq!(before - after, "3.10".parse().unwrap(), "debited once");
    stack.assert_ledger_invariants().await;
}

/// More than 100 INR to a payee saved less than 24 h ago is held for review.
fn strict_review(config: &mut flexibank_server::Config) {
    config.review.new_payee_amounts = [("INR".to_string(), rust_decimal::Decimal::from(100))].into_iter().collect();
}

/// A queued transfer the bank holds for review (202) is done, not failed: a
/// resend with the same key answers the same review, nothing moves and the
/// amount is held once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_transfer_held_for_review_is_held_once() {
    let stack = TestStack::start_with(
        "desktop-queue-held",
        flexibank_tests::StackOptions { replicas: 1, sync: true, configure: strict_review },
    )
    .await;
    let api = Arc::new(logged_in(&stack, "alice").await);
    let from = stack.user("alice").account_numbers[0].clone();
    let from_id = stack.account_id(&from).await;
    let to = stack.user("bob").account_numbers[0].clone();
    let saved = api
        .post("/v1/payees", &serde_json::json!({"account_number": to, "nickname": "Bob"}), None)
        .await
        .expect("bob saved as a payee");
    assert_eq!(saved["account_number"], to.as_str());
    let money = |v: &Value| {
        let dec = |k: &str| v[k].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap();
        (dec("balance"), dec("available_balance"))
    };
    let (balance, available) = money(&api.get(&format!("/v1/accounts/{from_id}"), &[]).await.unwrap());

    let request = TransferRequest {
        from_account_id: from_id,
        to_account_number: to,
        amount: "150.00".into(),
        currency: "INR".into(),
        memo: "held in the queue".into(),
    };
    let mut offline = OfflineQueue::open(&stack.dir().join("queue-held/offline-queue.json")).unwrap();
    let item = offline.enqueue("alice", "held-key", request.clone(), Utc::now()).unwrap();
    // The first send reached the server; its answer never reached the app.
    let first = queue::send_transfer(&api, &request, &item.idempotency_key).await.unwrap();
    let queue::Accepted::Held(first) = first else { panic!("not held: {first:?}") };
    assert_eq!(first["status"], "held_for_review");

    offline.begin_send(item.id);
    let outcome = queue::classify(queue::send_transfer(&api, &item.request, &item.idempotency_key).await);
    let Outcome::Held(review) = &outcome else { panic!("resend: {outcome:?}") };
    assert_eq!(review["review_id"], first["review_id"], "the same review, replayed");
    offline.record(item.id, outcome, Utc::now()).unwrap();
    let done = &offline.items()[0];
    assert_eq!((done.status, done.review.as_ref().map(|r| &r["review_id"])), (Status::Held, Some(&first["review_id"])));
    assert!(offline.due("alice", Utc::now()).is_none(), "a held transfer is not sent again");

    let reviews = api.get("/v1/reviews", &[]).await.unwrap();
    assert_eq!(reviews["items"].as_array().unwrap().len(), 1, "one review: {reviews}");
    let after = money(&api.get(&format!("/v1/accounts/{from_id}"), &[]).await.unwrap());
    assert_eq!(after, (balance, available - "150.00".parse::<rust_decimal::Decimal>().unwrap()), "held once, nothing moved");
    stack.assert_ledger_invariants().await;
}

/// The worker sends a user's queued transfers in the order they were made,
/// while other clients move money at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_sends_in_order_exactly_once_under_concurrent_load() {
    let stack = TestStack::start("desktop-queue-worker").await;
    let api = Arc::new(logged_in(&stack, "alice").await);
    let from = stack.user("alice").account_numbers[0].clone();
    let from_id = stack.account_id(&from).await;
    let to = stack.user("bob").account_numbers[0].clone();
    let dir = stack.dir().join("queue");
    let offline = Arc::new(tokio::sync::Mutex::new(
        OfflineQueue::open(&dir.join("offline-queue.json")).unwrap(),
    ));
    let memos: Vec<String> = (0..8).map(|i| format!("queued #{i}")).collect();
    for (i, memo) in memos.iter().enumerate() {
        let request = TransferRequest {
            from_account_id: from_id,
            to_account_number: to.clone(),
            amount: format!("1.0{i}"),
            currency: "INR".into(),
            memo: memo.clone(),
        };
        offline
            .lock()
            .await
            .enqueue("alice", &format!("worker-key-{i}"), request, Utc::now())
            .unwrap();
    }
    // Others paying into the same account meanwhile.
    let bob = stack.login("bob").await;
    let bob_account = stack.account_id(&to).await;
    let load = tokio::spawn(async move {
        let mut ok = 0;
        for _ in 0..20 {
            let body = serde_json::json!({"from_account_id": bob_account, "to_account_number": from, "amount": "0.50"});
            ok += (bob.post_money("/v1/transfers", body).await.status == 201) as usize;
        }
        ok
    });
    let user = Arc::new(std::sync::Mutex::new(Some("alice".to_string())));
    let worker = tokio::spawn(queue::run_worker(
        offline.clone(),
        api.clone(),
        user,
        Arc::default(),
    ));
    flexibank_tests::eventually(
        Duration::from_secs(30),
        "every queued transfer applied",
        || {
            let offline = offline.clone();
            async move {
                offline
                    .lock()
                    .await
                    .items()
                    .iter()
                    .all(|i| i.status == Status::Applied)
                    .then_some(())
            }
        },
    )
    .await;
    worker.abort();
    assert_eq!(load.await.unwrap(), 20);

    let history = api
        .get(
            &format!("/v1/accounts/{from_id}/transactions"),
            &[("limit", Some("200".into()))],
        )
        .await
        .unwrap();
    // Newest first: reversed, the queued ones appear in the order they were made, once each.
    let applied: Vec<String> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter_map(|e| e["memo"].as_str())
        .filter(|m| m.starts_with("queued #"))
        .map(str::to_string)
        .collect();
    assert_eq!(applied, memos);
    stack.assert_ledger_invariants().await;
}

/// The export holds every entry (more than one page), newest first, with
/// memos that need quoting intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_pages_through_the_whole_history() {
    let stack = TestStack::start("desktop-export").await;
    let api = logged_in(&stack, "bob").await;
    let account_id = stack.account_id(&stack.user("bob").account_numbers[0]).await;
    for i in 0..230 {
        let body = serde_json::json!({"account_id": account_id, "amount": "1.00", "memo": format!("cash, \"#{i}\"")});
        api.post("/v1/deposits", &body, Some(&format!("export-{i}"))).await.expect("deposit");
    }
    let filters = flexibank_desktop::export::Filters { kind: Some("deposit".into()), ..Default::default() };
    let export = flexibank_desktop::export::transactions_csv(&api, account_id, &filters).await.unwrap();
    assert_eq!(export.account_number, stack.user("bob").account_numbers[0]);
    let mut reader = csv::Reader::from_reader(export.csv.as_slice());
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), flexibank_desktop::export::HEADER);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // 230 made here and the seeded opening deposit.
    assert_eq!((export.rows, records.len()), (231, 231));
    assert_eq!(&records[0][6], "cash, \"#229\"", "newest first, quoting intact");
    assert!(records.iter().all(|r| &r[1] == "deposit" && &r[3] == "INR"));
}
