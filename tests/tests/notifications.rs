//! Notifications from the transactional outbox: events written with the
//! movement, the in-app list, SMS through a local receiver that speaks
//! Twilio's API over HTTPS, retries with growing delays, dead letters.

use std::time::Duration;

use flexibank_tests::{
    eventually, json,
    receivers::{TwilioReceiver, TWILIO_SID, TWILIO_TOKEN},
    Session, StackOptions, TestStack,
};
use serde_json::Value;

/// The stack's server restarted with SMS pointed at a local receiver.
async fn stack_with_sms(label: &str, configure: fn(&mut flexibank_server::config::Config)) -> (TestStack, TwilioReceiver) {
    let mut stack = TestStack::start_with(label, StackOptions { configure, ..StackOptions::default() }).await;
    let receiver = TwilioReceiver::start(&stack.dir().join("tls")).await;
    stack.stop_server().await;
    let n = &mut stack.config.notifications;
    n.sms_base_url = Some(receiver.base_url.clone());
    n.sms_account_sid = Some(TWILIO_SID.into());
    n.sms_auth_token = Some(TWILIO_TOKEN.into());
    n.sms_from = Some("+15550001111".into());
    n.extra_ca_pem = Some(stack.ca_cert.clone());
    n.poll_interval_ms = 50;
    stack.start_server().await;
    (stack, receiver)
}

fn fast_retries(c: &mut flexibank_server::config::Config) {
    c.notifications.backoff_first_ms = 200;
    c.notifications.backoff_max_ms = 2_000;
    c.notifications.max_attempts = 4;
}

/// The caller's notification for `transfer_id` of `kind`, waited for.
async fn notification_for(session: &Session, transfer_id: &str, kind: &str) -> Value {
    eventually(Duration::from_secs(10), "the in-app notification", || async {
        let page = session.get("/v1/notifications?limit=200").await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.body["items"].as_array().unwrap().iter().find(|n| n["payload"]["transfer_id"] == transfer_id && n["kind"] == kind).cloned()
    })
    .await
}

async fn transfer(stack: &TestStack, from: &Session, from_user: &str, to_user: &str, amount: &str) -> Value {
    let from_id = stack.account_id(&stack.user(from_user).account_numbers[0]).await;
    let to_number = stack.user(to_user).account_numbers[0].clone();
    let r = from.post_money("/v1/transfers", json!({"from_account_id": from_id, "to_account_number": to_number, "amount": amount, "memo": "note test"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_sends_one_sms_per_party_and_one_in_app_notification_each() {
    let (stack, receiver) = stack_with_sms("notify-sms", |_| {}).await;
    let (alice, bob) = (stack.login("alice").await, stack.login("bob").await);
    let moved = transfer(&stack, &alice, "alice", "bob", "12.50").await;
    let transfer_id = moved["id"].as_str().unwrap();

    let debit = notification_for(&alice, transfer_id, "money.debit").await;
    let credit = notification_for(&bob, transfer_id, "money.credit").await;
    for (n, number) in [(&debit, &stack.user("alice").account_numbers[0]), (&credit, &stack.user("bob").account_numbers[0])] {
        assert_eq!(n["payload"]["amount"], "12.50");
        assert_eq!(n["payload"]["currency"], "INR");
        assert_eq!(n["payload"]["account"], format!("••••{}", &number[number.len() - 4..]));
        assert!(!n.to_string().contains(number.as_str()), "never the full account number: {n}");
    }
    assert_eq!(debit["payload"]["balance_after"], moved["balance_after"]);

    // Exactly one SMS per party, each carrying its event id, sent with the
    // receiver's basic auth (it answers 401 otherwise).
    for (n, verb) in [(&debit, "debited"), (&credit, "credited")] {
        let id = n["id"].as_str().unwrap().to_string();
        let sms = eventually(Duration::from_secs(10), "the SMS", || async { receiver.state.for_event(&id).into_iter().find(|m| m.status == 201) }).await;
        assert!(sms.body.contains("12.50 INR") && sms.body.contains(verb), "{}", sms.body);
        assert!(sms.body.contains("••••"), "masked account in {}", sms.body);
        assert_eq!(sms.from, "+15550001111");
        assert!(!sms.to.is_empty());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.state.for_event(&id).len(), 1, "sent once");
    }

    // Nobody sees another's notifications.
    let alice_page = alice.get("/v1/notifications?limit=200").await;
    assert!(alice_page.body["items"].as_array().unwrap().iter().all(|n| n["kind"] != "money.credit" || n["payload"]["transfer_id"] != transfer_id));

    // Marking read, and bad input refused with problem+json.
    let before = alice_page.body["unread_count"].as_i64().unwrap();
    assert!(before >= 1);
    let marked = alice.post("/v1/notifications/read", json!({"ids": [debit["id"]]}), None).await;
    assert_eq!(marked.status, 200, "{}", marked.body);
    assert_eq!(marked.body["unread_count"].as_i64().unwrap(), before - 1);
    // Bob's id marks nothing of Bob's through Alice.
    let foreign = alice.post("/v1/notifications/read", json!({"ids": [credit["id"]]}), None).await;
    assert_eq!(foreign.status, 200);
    let bob_page = bob.get("/v1/notifications?limit=200").await;
    let bob_credit = bob_page.body["items"].as_array().unwrap().iter().find(|n| n["id"] == credit["id"]).unwrap().clone();
    assert!(bob_credit["read_at"].is_null(), "Alice cannot mark Bob's notification");
    alice.post("/v1/notifications/read", json!({}), None).await.assert_problem(400, "validation_failed");
    alice.post("/v1/notifications/read", json!({"ids": ["nope"]}), None).await.assert_problem(400, "validation_failed");
    alice.post("/v1/notifications/read", json!({"all": true, "ids": [debit["id"]]}), None).await.assert_problem(400, "validation_failed");
    alice.get("/v1/notifications?limit=0").await.assert_problem(400, "validation_failed");
    alice.get("/v1/notifications?cursor=garbage").await.assert_problem(400, "validation_failed");
    stack.anon().get("/v1/notifications").await.assert_problem(401, "unauthenticated");
    let all = alice.post("/v1/notifications/read", json!({"all": true}), None).await;
    assert_eq!(all.body["unread_count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_growing_retries_then_a_dead_letter_an_admin_can_redrive() {
    let (stack, receiver) = stack_with_sms("notify-retry", fast_retries).await;
    let (alice, bob, admin) = (stack.login("alice").await, stack.login("bob").await, stack.login("admin").await);

    // 500 three times, then accepted: four sends with growing gaps.
    let moved = transfer(&stack, &alice, "alice", "bob", "3.00").await;
    let debit = notification_for(&alice, moved["id"].as_str().unwrap(), "money.debit").await;
    let id = debit["id"].as_str().unwrap().to_string();
    // The first send may already be under way: fail the next three either way.
    receiver.state.fail_times.lock().unwrap().insert(id.clone(), 3);
    let sends = eventually(Duration::from_secs(20), "the SMS accepted after failures", || async {
        let sends = receiver.state.for_event(&id);
        sends.iter().any(|m| m.status == 201).then_some(sends)
    })
    .await;
    let failures = sends.iter().filter(|m| m.status == 500).count();
    assert!(failures >= 2, "retried after 500s: {sends:?}");
    let gaps: Vec<Duration> = sends.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.last().unwrap() > gaps.first().unwrap(), "delays grow: {gaps:?}");
    assert_eq!(sends.iter().filter(|m| m.status == 201).count(), 1);

    // A receiver that never accepts: after max_attempts the delivery is dead.
    receiver.state.set_failing(true);
    let moved = transfer(&stack, &bob, "bob", "alice", "4.00").await;
    let debit = notification_for(&bob, moved["id"].as_str().unwrap(), "money.debit").await;
    let event_id = debit["id"].clone();
    let dead = eventually(Duration::from_secs(30), "the dead letter", || async {
        let page = admin.get("/v1/admin/notifications/dead").await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.body.as_array().unwrap().iter().find(|d| d["event_id"] == event_id).cloned()
    })
    .await;
    assert_eq!(dead["attempts"], 4);
    assert_eq!(dead["username"], "bob");
    assert!(dead["last_error"].as_str().unwrap().contains("500"));
    bob.get("/v1/admin/notifications/dead").await.assert_problem(403, "forbidden");

    // Re-driven once the receiver is back: delivered, and audited.
    receiver.state.set_failing(false);
    let redriven = admin.post("/v1/admin/notifications/redrive", json!({"delivery_id": dead["id"]}), None).await;
    assert_eq!(redriven.status, 204, "{}", redriven.body);
    let event = event_id.as_str().unwrap().to_string();
    eventually(Duration::from_secs(10), "the re-driven SMS", || async { receiver.state.for_event(&event).iter().any(|m| m.status == 201).then_some(()) }).await;
    admin.post("/v1/admin/notifications/redrive", json!({"delivery_id": dead["id"]}), None).await.assert_problem(404, "not_found");
    admin.post("/v1/admin/notifications/redrive", json!({"delivery_id": "x"}), None).await.assert_problem(400, "validation_failed");
    let audit = admin.get("/v1/admin/audit?action=admin.notification_redriven").await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 1, "{}", audit.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_notifications_off_movements_write_no_events() {
    let stack = TestStack::start_with("notify-off", StackOptions { configure: |c| c.notifications.enabled = false, ..StackOptions::default() }).await;
    let alice = stack.login("alice").await;
    let before = alice.get("/v1/notifications?limit=200").await.body["items"].as_array().unwrap().len();
    let moved = transfer(&stack, &alice, "alice", "bob", "1.00").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let page = alice.get("/v1/notifications?limit=200").await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), before);
    assert!(page.body["items"].as_array().unwrap().iter().all(|n| n["payload"]["transfer_id"] != moved["id"]));
    stack.assert_ledger_invariants().await;
}
