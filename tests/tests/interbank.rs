//! Inter-bank payments end to end (issue 16): two real FlexiBank servers,
//! each on its own PostgreSQL cluster, and the switch on its own database,
//! all over mutual TLS. Keys, look-ups, payments in both directions, their
//! replays and refusals, and concurrent payers; after each, the consortium's
//! invariants (tests/src/consortium.rs).

use std::{sync::Arc, time::Duration};

use flexibank_tests::{
    consortium::{pay, register_key, Consortium, BANK_A, BANK_B},
    eventually, Session, StackOptions,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};

async fn account(session: &Session, id: &str) -> Value {
    let r = session.get(&format!("/v1/accounts/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn money(value: &Value) -> Decimal {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_payments_both_ways_refusals_and_concurrent_payers() {
    let consortium = Consortium::start("interbank", Default::default()).await;
    let (a, b) = (&consortium.a, &consortium.b);
    let alice_a = a.login("alice").await;
    let bob_a = a.login("bob").await;
    let alice_b = b.login("alice").await;
    let alice_a_inr = a.account_id(&a.user("alice").account_numbers[0]).await.to_string();
    let alice_a_usd = a.account_id(&a.user("alice").account_numbers[1]).await.to_string();
    let bob_a_inr = a.account_id(&a.user("bob").account_numbers[0]).await.to_string();
    let alice_b_inr = b.account_id(&b.user("alice").account_numbers[0]).await.to_string();

    // Keys: alice's national id lives at bank B (the same person banks at both: the same id), bob's random key at A.
    let national = register_key(&alice_b, &alice_b_inr, "national_id", Some("DEMO-alice")).await;
    assert_eq!(national["status"], "active");
    let random = register_key(&bob_a, &bob_a_inr, "random", None).await;
    let bob_key = random["value"].as_str().unwrap().to_string();
    assert_eq!(bob_a.get("/v1/keys").await.body["items"].as_array().unwrap().len(), 1);
    // One account per key in the whole consortium.
    alice_a.post("/v1/keys", json!({"account_id": alice_a_inr, "type": "national_id", "value": "DEMO-alice"}), None).await.assert_problem(409, "key_taken");
    // Only one's own national id; a random key takes no value; formats are checked.
    bob_a.post("/v1/keys", json!({"account_id": bob_a_inr, "type": "national_id", "value": "DEMO-alice"}), None).await.assert_problem(403, "forbidden");
    bob_a.post("/v1/keys", json!({"account_id": bob_a_inr, "type": "random", "value": "x"}), None).await.assert_problem(400, "validation_failed");
    bob_a.post("/v1/keys", json!({"account_id": bob_a_inr, "type": "phone", "value": "12345"}), None).await.assert_problem(400, "validation_failed");
    bob_a.post("/v1/keys", json!({"account_id": alice_a_inr, "type": "random"}), None).await.assert_problem(404, "not_found");

    // A look-up shows masks only.
    let entry = alice_a.get("/v1/directory?type=national_id&value=DEMO-alice").await;
    assert_eq!(entry.status, 200, "{}", entry.body);
    assert_eq!(entry.body["bank_id"], BANK_B);
    assert_eq!(entry.body["bank_name"], "Beta Bank");
    let masked = entry.body["holder_name_masked"].as_str().unwrap();
    assert!(!masked.contains("Fernandes") && masked.starts_with('A'), "{masked}");
    assert!(!entry.body.to_string().contains(&b.user("alice").account_numbers[0]), "the number is masked: {}", entry.body);
    alice_a.get("/v1/directory?type=random&value=0b7e4a8e-7d5b-4a3e-9c1d-2f3e4a5b6c7d").await.assert_problem(404, "not_found");

    // A payee by key (issue 18): what the directory showed, kept; a bad or unknown key saves nothing.
    let payee = alice_a.post("/v1/payees", json!({"key": {"type": "national_id", "value": "DEMO-alice"}, "nickname": "Me at Beta"}), None).await;
    assert_eq!(payee.status, 201, "{}", payee.body);
    assert_eq!((&payee.body["bank_id"], &payee.body["bank_name"]), (&json!(BANK_B), &json!("Beta Bank")));
    assert_eq!(payee.body["holder_name_masked"], entry.body["holder_name_masked"]);
    assert_eq!(payee.body["account_number_masked"], entry.body["account_number_masked"]);
    assert_eq!(payee.body["key"], json!({"type": "national_id", "value": "DEMO-alice"}));
    assert_eq!(payee.body["account_number"], Value::Null);
    alice_a.post("/v1/payees", json!({"key": {"type": "phone", "value": "12345"}, "nickname": "Bad"}), None).await.assert_problem(400, "validation_failed");
    alice_a
        .post("/v1/payees", json!({"key": {"type": "random", "value": "0b7e4a8e-7d5b-4a3e-9c1d-2f3e4a5b6c7d"}, "nickname": "Nobody"}), None)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(alice_a.get("/v1/payees").await.body["items"].as_array().map(Vec::len), Some(1));
    // A payee saved days ago, as a bank's customers' payees mostly are: the review rules' "new payee"
    // (a_flagged_payment_by_key_… below) holds none of the large payments this test sends to it.
    let db_a = a.superuser(&a.primary_name()).await;
    db_a.execute("UPDATE payees SET created_at = now() - interval '2 days'", &[]).await.unwrap();

    // A → B by national id.
    let before_a = account(&alice_a, &alice_a_inr).await;
    let before_b = account(&alice_b, &alice_b_inr).await;
    let first = pay(&alice_a, &alice_a_inr, "national_id", "DEMO-alice", "100.00", "pay-1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["status"], "committed");
    assert_eq!(first.body["payee"]["bank_id"], BANK_B);
    assert_eq!(first.body["payee"]["bank_name"], "Beta Bank");
    assert_eq!(first.body["payee"]["holder_name_masked"], entry.body["holder_name_masked"], "the payer sees whom they paid, masked");
    let e2e_id = first.body["e2e_id"].as_str().unwrap().to_string();
    assert!(e2e_id.starts_with(&format!("E{BANK_A}")) && e2e_id.len() == 32, "{e2e_id}");
    let after_a = account(&alice_a, &alice_a_inr).await;
    assert_eq!(money(&after_a["balance"]), money(&before_a["balance"]) - Decimal::new(100_00, 2));
    assert_eq!(after_a["available_balance"], after_a["balance"], "no hold is left");
    let after_b = flexibank_tests::eventually(Duration::from_secs(10), "the credit at bank B", || async {
        let now = account(&alice_b, &alice_b_inr).await;
        (money(&now["balance"]) == money(&before_b["balance"]) + Decimal::new(100_00, 2)).then_some(now)
    })
    .await;
    assert_eq!(after_b["available_balance"], after_b["balance"]);
    // Histories on both sides name the kind; the payee's notification fired.
    let history_a = alice_a.get(&format!("/v1/accounts/{alice_a_inr}/transactions?limit=1")).await;
    assert_eq!(history_a.body["items"][0]["kind"], "interbank_out", "{}", history_a.body);
    assert_eq!(history_a.body["items"][0]["counterparty_bank_id"], BANK_B, "{}", history_a.body);
    let history_b = alice_b.get(&format!("/v1/accounts/{alice_b_inr}/transactions?limit=1")).await;
    assert_eq!(history_b.body["items"][0]["kind"], "interbank_in", "{}", history_b.body);
    assert_eq!(history_b.body["items"][0]["counterparty_bank_id"], BANK_A, "{}", history_b.body);
    assert_eq!(history_b.body["items"][0]["memo"], "by key", "the payer's memo reaches the payee: {}", history_b.body);
    let notices = alice_b.get("/v1/notifications").await;
    assert!(
        notices.body["items"].as_array().unwrap().iter().any(|n| n["kind"] == "money.credit" && n["payload"]["entry_kind"] == "interbank_in"),
        "{}",
        notices.body
    );

    // A replay is the same payment; the same key for another body is 422.
    let replay = pay(&alice_a, &alice_a_inr, "national_id", "DEMO-alice", "100.00", "pay-1").await;
    assert_eq!((replay.status, &replay.body["id"]), (201, &first.body["id"]));
    pay(&alice_a, &alice_a_inr, "national_id", "DEMO-alice", "101.00", "pay-1").await.assert_problem(422, "idempotency_key_reused");
    let fetched = alice_a.get(&format!("/v1/interbank/payments/{}", first.body["id"].as_str().unwrap())).await;
    assert_eq!(fetched.body["status"], "committed");
    assert_eq!(alice_a.get("/v1/interbank/payments").await.body["items"].as_array().unwrap().len(), 1);

    // B → A, back, by bob's random key.
    let back = pay(&alice_b, &alice_b_inr, "random", &bob_key, "40.00", "back-1").await;
    assert_eq!(back.status, 201, "{}", back.body);
    consortium.assert_agree(back.body["e2e_id"].as_str().unwrap()).await;

    // Refusals move nothing and leave no hold.
    let refused_before = account(&alice_a, &alice_a_inr).await;
    pay(&alice_a, &alice_a_inr, "national_id", "DEMO-alice", "99999999.00", "r-funds").await.assert_problem(409, "insufficient_funds");
    pay(&alice_a, &alice_a_inr, "random", "0b7e4a8e-7d5b-4a3e-9c1d-2f3e4a5b6c7d", "1.00", "r-unknown").await.assert_problem(404, "not_found");
    pay(&alice_a, &alice_a_usd, "national_id", "DEMO-alice", "1.00", "r-currency").await.assert_problem(409, "currency_mismatch");
    pay(&alice_a, &alice_a_inr, "random", &bob_key, "1.00", "r-same-bank").await.assert_problem(409, "same_bank");
    pay(&alice_a, &alice_a_inr, "national_id", "DEMO-alice", "100001.00", "r-liquidity").await.assert_problem(409, "insufficient_funds");
    // The liquidity cap: more than A prefunded (its customer has the money).
    let admin_a = a.login("admin").await;
    let deposit = admin_a.post_money("/v1/admin/deposits", json!({"account_id": alice_a_inr, "amount": "200000.00"})).await;
    assert_eq!(deposit.status, 201, "{}", deposit.body);
    let refused_before = json!({"balance": (money(&refused_before["balance"]) + Decimal::new(200000_00, 2)).to_string()});
    let limits_path = format!("/v1/accounts/{alice_a_inr}/limits");
    let used_before = money(&alice_a.get(&limits_path).await.body["used_today"]);
    pay(&alice_a, &alice_a_inr, "national_id", "DEMO-alice", "150000.00", "r-liquidity-2").await.assert_problem(409, "liquidity_exhausted");
    // A frozen payee account votes no.
    let admin_b = b.login("admin").await;
    assert_eq!(admin_b.post(&format!("/v1/admin/accounts/{alice_b_inr}/freeze"), json!({"reason": "test"}), None).await.status, 200);
    pay(&alice_a, &alice_a_inr, "national_id", "DEMO-alice", "5.00", "r-frozen").await.assert_problem(409, "account_inactive");
    assert_eq!(admin_b.post(&format!("/v1/admin/accounts/{alice_b_inr}/unfreeze"), json!({"reason": "test"}), None).await.status, 200);
    let refused_after = account(&alice_a, &alice_a_inr).await;
    assert_eq!(money(&refused_after["balance"]), money(&refused_before["balance"]), "refusals moved nothing");
    assert_eq!(refused_after["available_balance"], refused_after["balance"], "refusals left no hold");
    assert_eq!(money(&alice_a.get(&limits_path).await.body["used_today"]), used_before, "aborted payments gave their share of the daily limit back");
    pay(&alice_a, &alice_a_inr, "national_id", "DEMO-alice", "-1", "bad-1").await.assert_problem(400, "validation_failed");
    let no_key = alice_a.post("/v1/interbank/payments", json!({"from_account_id": alice_a_inr, "key": {"type": "random", "value": bob_key}, "amount": "1.00"}), None).await;
    no_key.assert_problem(428, "idempotency_key_required");
    consortium.assert_invariants().await;

    // 16 payers at once, in both directions.
    let payers: Vec<(Session, String, &str, String)> = vec![
        (alice_a.clone(), alice_a_inr.clone(), "national_id", "DEMO-alice".to_string()),
        (alice_b.clone(), alice_b_inr.clone(), "random", bob_key.clone()),
    ];
    let payers = Arc::new(payers);
    let mut tasks = Vec::new();
    for client in 0..16 {
        let payers = payers.clone();
        tasks.push(tokio::spawn(async move {
            let (session, from, key_type, value) = &payers[client % 2];
            let mut committed = Vec::new();
            for n in 0..6 {
                let r = pay(session, from, key_type, value, "1.25", &format!("load-{client}-{n}")).await;
                assert!(r.status == 201 || r.status == 202, "payment {client}/{n}: {} {}", r.status, r.body);
                if r.status == 201 {
                    committed.push(r.body["e2e_id"].as_str().unwrap().to_string());
                }
            }
            committed
        }));
    }
    let mut committed = Vec::new();
    for task in tasks {
        committed.extend(task.await.unwrap());
    }
    assert!(committed.len() >= 90, "most of the 96 payments commit within the wait: {}", committed.len());
    consortium.assert_invariants().await;
    for e2e_id in &committed {
        consortium.assert_agree(e2e_id).await;
    }
    // Where a payment's time goes, for operators: the switch's /metrics (any consortium certificate)
    // and the payer bank's. One test process holds one recorder, so the counts include the other
    // tests' payments: at least this test's.
    let scraped = consortium.switch.bank(BANK_A).get(consortium.switch.url("/metrics")).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    let committed_at_switch = metric_value(&text, "flexibank_switch_decisions_total{status=\"committed\"}");
    assert!(committed_at_switch >= committed.len() as f64, "{committed_at_switch} < {}", committed.len());
    for series in ["flexibank_switch_open_payments{bank=\"00000001\"}", "flexibank_switch_batch_commands_count"] {
        assert!(text.lines().any(|l| l.starts_with(series)), "{series} missing from the switch's /metrics");
    }
    for step in ["initiate", "payee_vote", "decide"] {
        let count = metric_value(&text, &format!("flexibank_switch_step_seconds_count{{step=\"{step}\"}}"));
        assert!(count >= committed.len() as f64, "switch step {step}: {count}");
    }
    let bank_text = a.anon().get("/metrics").await.body.as_str().unwrap().to_string();
    for step in ["hold", "switch", "posting"] {
        let count = metric_value(&bank_text, &format!("flexibank_interbank_step_seconds_count{{step=\"{step}\"}}"));
        assert!(count >= committed.len() as f64, "bank step {step}: {count}");
    }
    assert!(bank_text.contains("flexibank_interbank_group_seconds_count{group=\"settle\"}"), "group timings missing");
    a.anon();
    let position = admin_a.get("/v1/admin/interbank/position").await;
    assert_eq!(position.status, 200, "{}", position.body);
    assert_eq!(position.body["bank_id"], BANK_A);
    let all = admin_a.get("/v1/admin/interbank/payments?limit=200").await;
    assert!(all.body["items"].as_array().unwrap().len() > 50, "{}", all.body);
    // Customers cannot see the bank's position.
    alice_a.get("/v1/admin/interbank/position").await.assert_problem(403, "forbidden");
    // Deleting a key frees it for anyone.
    let national_id = national["id"].as_str().unwrap();
    assert_eq!(alice_b.delete(&format!("/v1/keys/{national_id}")).await.status, 204);
    let moved = register_key(&alice_a, &alice_a_inr, "national_id", Some("DEMO-alice")).await;
    assert_eq!(moved["status"], "active");
    let entry = bob_a.get("/v1/directory?type=national_id&value=DEMO-alice").await;
    assert_eq!(entry.body["bank_id"], BANK_A);
}

/// The bank's switch-only listener admits the switch only; a phone key is
/// registered only with the code sent to that phone (read from a real
/// Twilio-shaped receiver); look-ups through the bank are limited per customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_switch_only_listener_phone_keys_and_lookup_limits() {
    use flexibank_consortium::pki;
    use flexibank_tests::{
        consortium::{listener_client, listener_url, BankProcess},
        receivers::{TwilioReceiver, TWILIO_SID, TWILIO_TOKEN},
    };
    let consortium = Consortium::start("interbank-edges", Default::default()).await;
    let (a, b) = (&consortium.a, &consortium.b);
    let tls = &consortium.switch.tls;
    let ca = tls.join(pki::CA_CERT_FILE);
    let b_addr = b.server().interbank_addr.expect("bank B is a member");

    // mTLS: only the switch's certificate gets in; nothing changes otherwise.
    let settlement = listener_url(BANK_B, b_addr, "/interbank/v1/settlement");
    let prepare = listener_url(BANK_B, b_addr, "/interbank/v1/prepare");
    let switch_identity = pki::client_identity(&tls.join(pki::SWITCH_CERT_FILE), &tls.join(pki::SWITCH_KEY_FILE)).unwrap();
    let as_switch = listener_client(&ca, Some(switch_identity), BANK_B, b_addr);
    let r = as_switch.get(&settlement).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["bank_id"], BANK_B);
    let bank_a_identity = pki::client_identity(&tls.join(pki::bank_cert_file(BANK_A)), &tls.join(pki::bank_key_file(BANK_A))).unwrap();
    let as_bank_a = listener_client(&ca, Some(bank_a_identity), BANK_B, b_addr);
    let forged = json!({"e2e_id": format!("E{BANK_A}202611300500AAAAAAAAAAA"), "payer_bank": BANK_A, "payer_bank_name": "Alpha Bank",
                        "account_number": b.user("alice").account_numbers[0], "amount": "5.00", "currency": "INR"});
    let r = as_bank_a.post(&prepare).json(&forged).send().await.unwrap();
    assert_eq!(r.status(), 403, "a member bank cannot speak as the switch");
    assert!(listener_client(&ca, None, BANK_B, b_addr).get(&settlement).send().await.is_err(), "no certificate: no TLS session");
    let foreign = consortium.switch.dir.join("foreign-ca");
    assert!(pki::init_ca(&foreign).unwrap());
    pki::issue_switch_cert(&foreign, &[]).unwrap();
    let foreign_identity = pki::client_identity(&foreign.join(pki::SWITCH_CERT_FILE), &foreign.join(pki::SWITCH_KEY_FILE)).unwrap();
    assert!(listener_client(&ca, Some(foreign_identity), BANK_B, b_addr).get(&settlement).send().await.is_err(), "another CA's switch is refused");
    let db_b = b.superuser(&b.primary_name()).await;
    let rows: i64 = db_b.query_one("SELECT count(*) FROM interbank_payments", &[]).await.unwrap().get(0);
    assert_eq!(rows, 0, "the refused prepare recorded nothing");
    let prepares = listener_url(BANK_B, b_addr, "/interbank/v1/prepares");
    let decisions = listener_url(BANK_B, b_addr, "/interbank/v1/decisions");
    let r = as_bank_a.post(&prepares).json(&json!({"items": [forged.clone()]})).send().await.unwrap();
    assert_eq!(r.status(), 403, "nor in a batch");

    // Batches (as the switch sends them): bounded, each item answered on its own, a repeat answered the same.
    for bad in [json!({"items": []}), json!({"items": vec![forged.clone(); 33]}), json!({"items": [forged.clone()], "extra": 1}), json!({"items": [{"e2e_id": 5}]})] {
        let r = as_switch.post(&prepares).json(&bad).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "validation_failed");
    }
    let (yes_id, unknown_id) = (format!("E{BANK_A}202611300500BBBBBBBBBBB"), format!("E{BANK_A}202611300500CCCCCCCCCCC"));
    let items = json!({"items": [
        {"e2e_id": yes_id, "payer_bank": BANK_A, "payer_bank_name": "Alpha Bank", "account_number": b.user("alice").account_numbers[0], "amount": "5.00", "currency": "INR"},
        {"e2e_id": unknown_id, "payer_bank": BANK_A, "payer_bank_name": "Alpha Bank", "account_number": "0000000000", "amount": "5.00", "currency": "INR"},
    ]});
    for _ in 0..2 {
        let r = as_switch.post(&prepares).json(&items).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let votes = r.json::<Value>().await.unwrap();
        assert_eq!(votes, json!({"answers": [{"yes": true}, {"yes": false, "reason": "payee_refused"}]}));
    }
    // A decision the bank cannot apply (a commit it never prepared) is `null`; the other is applied.
    let pushed = json!({"items": [{"e2e_id": yes_id, "status": "aborted", "reason": "timeout"}, {"e2e_id": unknown_id, "status": "committed"}]});
    let r = as_switch.post(&decisions).json(&pushed).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"answers": [{"e2e_id": yes_id, "status": "aborted"}, null]}));
    let rows = db_b.query("SELECT e2e_id, status FROM interbank_payments", &[]).await.unwrap();
    let rows: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(rows, vec![(yes_id.clone(), "aborted".to_string())], "one pending credit, voided; nothing for the refused one");

    // A phone key: 202 pending, the code by SMS to that phone only, a wrong code refused, the right one activates it.
    let receiver = TwilioReceiver::start(&a.dir().join("tls")).await;
    let (sms_url, ca_pem) = (receiver.base_url.clone(), a.ca_cert.clone());
    let _dispatcher = BankProcess::start_with(a, "bank-a-sms", move |config| {
        let n = &mut config.notifications;
        n.sms_base_url = Some(sms_url);
        n.sms_account_sid = Some(TWILIO_SID.into());
        n.sms_auth_token = Some(TWILIO_TOKEN.into());
        n.sms_from = Some("+15550001111".into());
        n.extra_ca_pem = Some(ca_pem);
        n.poll_interval_ms = 50;
    })
    .await;
    let alice_a = a.login("alice").await;
    let alice_a_inr = a.account_id(&a.user("alice").account_numbers[0]).await.to_string();
    let phone = "+919876500001";
    let pending = alice_a.post("/v1/keys", json!({"account_id": alice_a_inr, "type": "phone", "value": phone}), None).await;
    assert_eq!(pending.status, 202, "{}", pending.body);
    assert_eq!(pending.body["status"], "pending_verification");
    let key_id = pending.body["id"].as_str().unwrap().to_string();
    let sms = flexibank_tests::eventually(Duration::from_secs(20), "the code by SMS", || async {
        receiver.state.received.lock().unwrap().iter().find(|m| m.to == phone).cloned()
    })
    .await;
    assert!(sms.body.starts_with("Alpha Bank: "), "signed with the name its customers know the bank by: {}", sms.body);
    let code: String = {
        let digits: Vec<&str> = sms.body.split(|c: char| !c.is_ascii_digit()).filter(|run| run.len() == 6).collect();
        digits.first().unwrap_or_else(|| panic!("a 6-digit code in {:?}", sms.body)).to_string()
    };
    let in_app = alice_a.get("/v1/notifications").await;
    assert!(!in_app.body.to_string().contains(&code), "the code is never shown in-app: {}", in_app.body);
    let unverified = b.login("bob").await.get(&format!("/v1/directory?type=phone&value=%2B919876500001")).await;
    unverified.assert_problem(404, "not_found");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    alice_a.post(&format!("/v1/keys/{key_id}/verify"), json!({"code": wrong}), None).await.assert_problem(400, "validation_failed");
    let verified = alice_a.post(&format!("/v1/keys/{key_id}/verify"), json!({"code": code}), None).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["status"], "active");
    let db_a = a.superuser(&a.primary_name()).await;
    let kept: i64 = db_a
        .query_one("SELECT count(*) FROM notification_events WHERE kind = 'key.verification' AND payload ? 'code'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 0, "a used code is not kept");

    // Look-ups through the bank: the switch's limit per customer (10 a minute) answers 429 with Retry-After.
    let bob_b = b.login("bob").await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = bob_b.get("/v1/directory?type=phone&value=%2B919876500001").await;
        if r.status == 200 {
            assert_eq!(r.body["bank_id"], BANK_A);
        }
        statuses.push(r.status);
        if r.status == 429 {
            r.assert_problem(429, "rate_limited");
            assert!(r.header("retry-after").is_some());
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 200).count() >= 8, "{statuses:?}");
    consortium.assert_invariants().await;
}

/// Bank A holds a payment by key of more than 100 INR to a payee saved today (issue 18's review rules).
fn strict_rules(config: &mut flexibank_server::Config) {
    config.review.new_payee_amounts = [("INR".to_string(), Decimal::from(100))].into_iter().collect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flagged_payment_by_key_waits_for_a_reviewer_then_goes_through_the_switch() {
    let options = StackOptions { replicas: 1, sync: true, configure: strict_rules };
    let consortium = Consortium::start_with("interbank-review", Default::default(), options, |_| {}).await;
    let (a, b) = (&consortium.a, &consortium.b);
    let (alice_a, admin2_a, bob_b) = (a.login("alice").await, a.login("admin2").await, b.login("bob").await);
    let alice_a_inr = a.account_id(&a.user("alice").account_numbers[0]).await.to_string();
    let bob_b_inr = b.account_id(&b.user("bob").account_numbers[0]).await.to_string();
    let key = register_key(&bob_b, &bob_b_inr, "random", None).await["value"].as_str().unwrap().to_string();
    let saved = alice_a.post("/v1/payees", json!({"key": {"type": "random", "value": key}, "nickname": "Bob at Beta"}), None).await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let alice_before = account(&alice_a, &alice_a_inr).await;
    let bob_before = money(&account(&bob_b, &bob_b_inr).await["balance"]);

    // Held: 202 with the review, nothing sent to the switch, the amount held; a repeat is the same review.
    let idempotency_key = uuid::Uuid::new_v4().to_string();
    let held = pay(&alice_a, &alice_a_inr, "random", &key, "150.00", &idempotency_key).await;
    assert_eq!((held.status, held.body["status"].as_str(), held.body["kind"].as_str()), (202, Some("held_for_review"), Some("interbank")), "{}", held.body);
    assert_eq!((held.body["to_key"]["type"].as_str(), held.body["to_key"]["value"].as_str()), (Some("random"), Some(key.as_str())));
    assert!(held.body["to_account_number"].is_null(), "{}", held.body);
    let again = pay(&alice_a, &alice_a_inr, "random", &key, "150.00", &idempotency_key).await;
    assert_eq!((again.status, again.header("idempotent-replayed"), &again.body["review_id"]), (202, Some("true"), &held.body["review_id"]));
    assert_eq!(alice_a.get("/v1/interbank/payments").await.body["items"], json!([]), "nothing was sent");
    let held_now = account(&alice_a, &alice_a_inr).await;
    assert_eq!(money(&held_now["balance"]), money(&alice_before["balance"]));
    assert_eq!(money(&held_now["available_balance"]), money(&alice_before["available_balance"]) - Decimal::from(150));

    // Approved by a second admin: the payment is placed in the approval and goes through the switch, once.
    let review_id = held.body["review_id"].as_str().unwrap();
    let approved = admin2_a.post(&format!("/v1/admin/reviews/{review_id}/approve"), json!({}), None).await;
    assert_eq!((approved.status, approved.body["status"].as_str()), (200, Some("approved")), "{}", approved.body);
    let payment_id = approved.body["interbank_payment_id"].as_str().expect("the payment the approval started").to_string();
    eventually(Duration::from_secs(20), "the approved payment committed at both banks", || async {
        let payment = alice_a.get(&format!("/v1/interbank/payments/{payment_id}")).await;
        (payment.body["status"] == "committed").then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "bob paid at bank B", || async {
        (money(&account(&bob_b, &bob_b_inr).await["balance"]) == bob_before + Decimal::from(150)).then_some(())
    })
    .await;

    // Rejected: nothing sent, the hold released.
    let second = pay(&alice_a, &alice_a_inr, "random", &key, "120.00", &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(second.status, 202, "{}", second.body);
    let rejected = admin2_a.post(&format!("/v1/admin/reviews/{}/reject", second.body["review_id"].as_str().unwrap()), json!({}), None).await;
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    eventually(Duration::from_secs(10), "alice's money as after one payment", || async {
        let now = account(&alice_a, &alice_a_inr).await;
        let expected = money(&alice_before["balance"]) - Decimal::from(150);
        (money(&now["balance"]) == expected && money(&now["available_balance"]) == money(&alice_before["available_balance"]) - Decimal::from(150)).then_some(())
    })
    .await;
    assert_eq!(alice_a.get("/v1/interbank/payments").await.body["items"].as_array().map(Vec::len), Some(1), "one payment, the approved one");
    consortium.assert_invariants().await;
}

/// Bank A runs standing orders every few seconds (test schedules) and holds more than 100 INR to a new payee.
fn fast_orders_strict_rules(config: &mut flexibank_server::Config) {
    strict_rules(config);
    config.standing_orders.allow_seconds = true;
    config.standing_orders.poll_interval_ms = 200;
}

async fn runs(session: &Session, order_id: &str) -> Vec<Value> {
    let r = session.get(&format!("/v1/standing-orders/{order_id}/runs")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

/// A standing order paying a key (the contract's `"to": {"key"}`): each date's run places one
/// inter-bank payment, which the switch commits at both banks; a run the rules flag waits for a
/// reviewer and, approved, becomes its payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standing_order_by_key_pays_through_the_switch_once_per_date() {
    let options = StackOptions { replicas: 1, sync: true, configure: fast_orders_strict_rules };
    let consortium = Consortium::start_with("interbank-orders", Default::default(), options, |_| {}).await;
    let (a, b) = (&consortium.a, &consortium.b);
    let (alice_a, admin2_a, bob_b) = (a.login("alice").await, a.login("admin2").await, b.login("bob").await);
    let alice_a_inr = a.account_id(&a.user("alice").account_numbers[0]).await.to_string();
    let alice_a_usd = a.account_id(&a.user("alice").account_numbers[1]).await.to_string();
    let bob_b_inr = b.account_id(&b.user("bob").account_numbers[0]).await.to_string();
    let key = register_key(&bob_b, &bob_b_inr, "random", None).await["value"].as_str().unwrap().to_string();
    let bob_before = money(&account(&bob_b, &bob_b_inr).await["balance"]);
    let today = chrono::Utc::now().date_naive().to_string();
    let order = |from: &str, amount: &str, key: &str| {
        json!({"from_account_id": from, "to": {"key": {"type": "random", "value": key}}, "amount": amount, "memo": "pocket money",
               "schedule": {"every": "second", "interval": 2, "time": "00:00"}, "start_at": today})
    };

    // Refused at once, nothing created: a key nobody holds, a key of this bank, a USD account.
    alice_a.post_money("/v1/standing-orders", order(&alice_a_inr, "10.00", &uuid::Uuid::new_v4().to_string())).await.assert_problem(404, "not_found");
    let own = register_key(&alice_a, &alice_a_inr, "random", None).await["value"].as_str().unwrap().to_string();
    alice_a.post_money("/v1/standing-orders", order(&alice_a_inr, "10.00", &own)).await.assert_problem(409, "same_bank");
    alice_a.post_money("/v1/standing-orders", order(&alice_a_usd, "10.00", &key)).await.assert_problem(409, "currency_mismatch");

    // 10.00 every 2 s: each run one payment, committed at both banks.
    let small = alice_a.post_money("/v1/standing-orders", order(&alice_a_inr, "10.00", &key)).await;
    assert_eq!(small.status, 201, "{}", small.body);
    assert_eq!(small.body["to"], json!({"key": {"type": "random", "value": key}}));
    let small_id = small.body["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(20), "two runs of the order by key", || async {
        (runs(&alice_a, &small_id).await.iter().filter(|r| r["status"] == "done").count() >= 2).then_some(())
    })
    .await;
    assert_eq!(alice_a.patch(&format!("/v1/standing-orders/{small_id}"), json!({"paused": true})).await.status, 200);
    a.replicas_caught_up().await;
    let done: Vec<Value> = runs(&alice_a, &small_id).await.into_iter().filter(|r| r["status"] == "done").collect();
    for run in &done {
        assert!(run["transfer_id"].is_null(), "{run}");
        let payment_id = run["interbank_payment_id"].as_str().expect("each run's payment").to_string();
        eventually(Duration::from_secs(20), "the run's payment committed", || async {
            (alice_a.get(&format!("/v1/interbank/payments/{payment_id}")).await.body["status"] == "committed").then_some(())
        })
        .await;
    }
    let paid = Decimal::from(10) * Decimal::from(done.len() as i64);
    eventually(Duration::from_secs(10), "bob paid once per run at bank B", || async {
        (money(&account(&bob_b, &bob_b_inr).await["balance"]) == bob_before + paid).then_some(())
    })
    .await;

    // 150.00 to a payee alice saved just now: the run is held (an inter-bank review of that run) until approved.
    let saved = alice_a.post("/v1/payees", json!({"key": {"type": "random", "value": key}, "nickname": "Bob at Beta"}), None).await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let large = alice_a.post_money("/v1/standing-orders", order(&alice_a_inr, "150.00", &key)).await;
    assert_eq!(large.status, 201, "{}", large.body);
    let large_id = large.body["id"].as_str().unwrap().to_string();
    let held = eventually(Duration::from_secs(20), "a held run", || async {
        runs(&alice_a, &large_id).await.into_iter().find(|r| r["status"] == "held")
    })
    .await;
    assert_eq!(alice_a.patch(&format!("/v1/standing-orders/{large_id}"), json!({"paused": true})).await.status, 200);
    let review_id = held["review_id"].as_str().unwrap().to_string();
    let approved = admin2_a.post(&format!("/v1/admin/reviews/{review_id}/approve"), json!({}), None).await;
    assert_eq!((approved.status, approved.body["kind"].as_str()), (200, Some("interbank")), "{}", approved.body);
    assert_eq!(approved.body["standing_order_id"], large_id.as_str());
    let payment_id = approved.body["interbank_payment_id"].as_str().unwrap().to_string();
    a.replicas_caught_up().await;
    let run = runs(&alice_a, &large_id).await.into_iter().find(|r| r["review_id"] == review_id.as_str()).unwrap();
    assert_eq!((run["status"].as_str(), run["interbank_payment_id"].as_str()), (Some("done"), Some(payment_id.as_str())), "{run}");
    eventually(Duration::from_secs(20), "the approved run's payment committed", || async {
        (alice_a.get(&format!("/v1/interbank/payments/{payment_id}")).await.body["status"] == "committed").then_some(())
    })
    .await;
    // The payee's key deleted at bank B: the next run's payment is aborted by the switch, and alice,
    // whom no request of hers waits on, is told.
    let second_key = register_key(&bob_b, &bob_b_inr, "random", None).await;
    let gone = second_key["value"].as_str().unwrap().to_string();
    let doomed = alice_a.post_money("/v1/standing-orders", order(&alice_a_inr, "5.00", &gone)).await;
    assert_eq!(doomed.status, 201, "{}", doomed.body);
    let doomed_id = doomed.body["id"].as_str().unwrap().to_string();
    assert_eq!(bob_b.delete(&format!("/v1/keys/{}", second_key["id"].as_str().unwrap())).await.status, 204);
    let aborted = eventually(Duration::from_secs(30), "a run's payment aborted at the switch", || async {
        for run in runs(&alice_a, &doomed_id).await {
            if let Some(id) = run["interbank_payment_id"].as_str() {
                let payment = alice_a.get(&format!("/v1/interbank/payments/{id}")).await.body;
                if payment["status"] == "aborted" {
                    return Some(payment);
                }
            }
        }
        None
    })
    .await;
    assert_eq!(alice_a.patch(&format!("/v1/standing-orders/{doomed_id}"), json!({"paused": true})).await.status, 200);
    a.replicas_caught_up().await;
    let notices = alice_a.get("/v1/notifications?limit=50").await.body["items"].as_array().unwrap().clone();
    assert!(
        notices.iter().any(|n| n["kind"] == "interbank.aborted" && n["payload"]["payment_id"] == aborted["id"]),
        "{notices:?}"
    );

    // Any other held run of the paused order: rejected, so that no hold is left when the invariants are checked.
    for other in runs(&alice_a, &large_id).await.into_iter().filter(|r| r["status"] == "held") {
        let id = other["review_id"].as_str().unwrap();
        assert_eq!(admin2_a.post(&format!("/v1/admin/reviews/{id}/reject"), json!({}), None).await.status, 200);
    }
    consortium.assert_invariants().await;
}

/// A sample's value in Prometheus text (0 when the series is absent).
fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}
