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
    // The seed's money messages, written before there was an SMS channel, are
    // not what these tests look at: taken as sent, so that every lane starts
    // with its whole allowance (notify/pace.rs).
    let db = stack.superuser(&stack.primary_name()).await;
    db.execute("UPDATE notification_deliveries SET status = 'sent', sent_at = now() WHERE status = 'pending' AND NOT critical", &[]).await.unwrap();
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
        // The seed's own money messages are ahead in these lanes, paced (notify/pace.rs).
        let sms = eventually(Duration::from_secs(60), "the SMS", || async { receiver.state.for_event(&id).into_iter().find(|m| m.status == 201) }).await;
        assert!(sms.body.contains("12.50 INR") && sms.body.contains(verb), "{}", sms.body);
        assert!(sms.body.starts_with("FlexiBank: "), "a bank outside a consortium signs with the product's name: {}", sms.body);
        assert!(sms.body.contains("••••"), "masked account in {}", sms.body);
        assert_eq!(sms.from, "+15550001111");
        assert!(!sms.to.is_empty());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.state.for_event(&id).len(), 1, "sent once");
    }

    // In order per recipient: five quick debits reach the receiver in the
    // order of their events (uuid v7 ids sort by creation).
    let mut ids = Vec::new();
    for _ in 0..5 {
        let moved = transfer(&stack, &alice, "alice", "bob", "1.00").await;
        ids.push(notification_for(&alice, moved["id"].as_str().unwrap(), "money.debit").await["id"].as_str().unwrap().to_string());
    }
    // Those that find the lane out of its allowance (the seed's messages went
    // first) go as one digest, which carries the last event's id.
    let arrivals = eventually(Duration::from_secs(60), "the five SMS", || async {
        let received = receiver.state.received.lock().unwrap().clone();
        let order: Vec<String> = received.iter().filter(|m| m.status == 201 && ids.contains(&m.event_id)).map(|m| m.event_id.clone()).collect();
        order.contains(&ids[ids.len() - 1]).then_some(order)
    })
    .await;
    let positions: Vec<usize> = arrivals.iter().map(|id| ids.iter().position(|i| i == id).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "SMS of one recipient arrive in event order, each once: {positions:?}");

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
    // `{}` marks nothing and answers the count.
    let nothing = alice.post("/v1/notifications/read", json!({}), None).await;
    assert_eq!((nothing.status, nothing.body["unread_count"].as_i64()), (200, Some(before - 1)), "{}", nothing.body);
    alice.post("/v1/notifications/read", json!([]), None).await.assert_problem(400, "validation_failed");
    alice.post("/v1/notifications/read", json!({"ids": ["nope"]}), None).await.assert_problem(400, "validation_failed");
    alice.post("/v1/notifications/read", json!({"ids": debit["id"]}), None).await.assert_problem(400, "validation_failed");
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

    // 500 three times, then accepted: four sends with growing gaps. Armed before
    // the transfer: the dispatcher may deliver before the test sees the event.
    *receiver.state.fail_new_matching.lock().unwrap() = Some(("3.00 INR debited".into(), 3));
    let moved = transfer(&stack, &alice, "alice", "bob", "3.00").await;
    let debit = notification_for(&alice, moved["id"].as_str().unwrap(), "money.debit").await;
    let id = debit["id"].as_str().unwrap().to_string();
    let sends = eventually(Duration::from_secs(20), "the SMS accepted after failures", || async {
        let sends = receiver.state.for_event(&id);
        sends.iter().any(|m| m.status == 201).then_some(sends)
    })
    .await;
    let failures = sends.iter().filter(|m| m.status == 500).count();
    assert_eq!(failures, 3, "retried after 500s: {sends:?}");
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

fn kinds(page: &Value, kind: &str) -> usize {
    page["items"].as_array().unwrap().iter().filter(|n| n["kind"] == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_quiet_hours_and_a_low_balance_alert_that_fires_once() {
    let stack = TestStack::start("notify-settings").await;
    let (alice, admin) = (stack.login("alice").await, stack.login("admin").await);
    let account = stack.account_id(&stack.user("alice").account_numbers[0]).await;
    let defaults = alice.get("/v1/me/notification-settings").await;
    assert_eq!(defaults.status, 200, "{}", defaults.body);
    assert_eq!((defaults.body["sms_money"].as_bool(), defaults.body["quiet_hours"].is_null()), (Some(true), true));
    admin.get("/v1/me/notification-settings").await.assert_problem(403, "forbidden");

    // Bad settings change nothing.
    let good = |alerts: Value| json!({"sms_money": true, "sms_security": true, "email_money": false, "email_security": true,
                                       "quiet_hours": null, "time_zone": "Asia/Kolkata", "low_balance_alerts": alerts});
    let bob_account = stack.account_id(&stack.user("bob").account_numbers[0]).await;
    let mut bad = vec![
        (json!({"quiet_hours": ["22:00", "07:00"]}), 400, "validation_failed"),
        (json!({"quiet_hours": {"start": "25:00", "end": "07:00"}}), 400, "validation_failed"),
        (json!({"time_zone": "Mars/Olympus"}), 400, "validation_failed"),
        (json!({"low_balance_alerts": [{"account_id": bob_account, "threshold": "10.00"}]}), 404, "not_found"),
        (json!({"low_balance_alerts": [{"account_id": account, "threshold": "1.234"}]}), 400, "validation_failed"),
        (json!({"low_balance_alerts": [[account, "5"]]}), 400, "validation_failed"),
        (json!({"surprise": 1}), 400, "validation_failed"),
    ];
    for (patch, status, code) in bad.drain(..) {
        let mut body = good(json!([]));
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = alice.put("/v1/me/notification-settings", body).await;
        r.assert_problem(status, code);
    }
    assert_eq!(alice.get("/v1/me/notification-settings").await.body, defaults.body, "refused settings changed nothing");
    // A window that ends where it starts is empty: no quiet hours. An
    // account listed twice keeps its last threshold.
    let mut edge = good(json!([{"account_id": account, "threshold": "5"}, {"account_id": account, "threshold": "6"}]));
    edge["quiet_hours"] = json!({"start": "22:00", "end": "22:00"});
    let stored = alice.put("/v1/me/notification-settings", edge).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert!(stored.body["quiet_hours"].is_null(), "{}", stored.body);
    assert_eq!(stored.body["low_balance_alerts"], json!([{"account_id": account, "threshold": "6.00"}]));
    assert_eq!(alice.put("/v1/me/notification-settings", good(json!([]))).await.status, 200);

    // An alert 10.00 under the balance: fires once when a debit crosses it.
    let balance: rust_decimal::Decimal = alice.get(&format!("/v1/accounts/{account}")).await.body["balance"].as_str().unwrap().parse().unwrap();
    let threshold = (balance - rust_decimal::Decimal::from(10)).to_string();
    let saved = alice.put("/v1/me/notification-settings", good(json!([{"account_id": account, "threshold": threshold}]))).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.body["low_balance_alerts"][0]["account_id"], account.to_string());
    let withdraw = |amount: &'static str| {
        let alice = alice.clone();
        async move {
            let r = alice.post_money("/v1/withdrawals", json!({"account_id": account, "amount": amount})).await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
    };
    let deposit = |amount: &'static str| {
        let alice = alice.clone();
        async move {
            let r = alice.post_money("/v1/deposits", json!({"account_id": account, "amount": amount})).await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
    };
    withdraw("5.00").await;
    assert_eq!(kinds(&alice.get("/v1/notifications?limit=200").await.body, "balance.low"), 0, "not below yet");
    withdraw("6.00").await;
    withdraw("1.00").await;
    let page = alice.get("/v1/notifications?limit=200").await.body;
    assert_eq!(kinds(&page, "balance.low"), 1, "once, not on every later debit");
    let low = page["items"].as_array().unwrap().iter().find(|n| n["kind"] == "balance.low").unwrap().clone();
    assert_eq!(low["payload"]["threshold"], format!("{threshold}"));
    deposit("20.00").await; // back above: re-armed
    withdraw("20.00").await;
    assert_eq!(kinds(&alice.get("/v1/notifications?limit=200").await.body, "balance.low"), 2);

    // Quiet hours around now: the SMS of a movement waits for their end, the
    // in-app notification does not; a security notice ignores them.
    let now_min = (flexibank_tests::unix_now() / 60 % 1440) as i64;
    let at = |m: i64| format!("{:02}:{:02}", m.rem_euclid(1440) / 60, m.rem_euclid(1440) % 60);
    let mut quiet = good(json!([]));
    quiet["time_zone"] = json!("UTC");
    quiet["quiet_hours"] = json!({"start": at(now_min - 60), "end": at(now_min + 60)});
    let saved = alice.put("/v1/me/notification-settings", quiet).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    withdraw("1.00").await;
    let db = stack.superuser(&stack.primary_name()).await;
    let wait_s: f64 = db
        .query_one(
            "SELECT extract(epoch FROM d.next_attempt_at - now())::float8 FROM notification_deliveries d
               JOIN notification_events e ON e.id = d.event_id JOIN users u ON u.id = d.user_id
              WHERE u.username = 'alice' AND e.kind = 'money.debit' ORDER BY d.id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(wait_s > 50.0 * 60.0, "SMS held until quiet hours end, {wait_s} s from now");
    let alice_id = stack.user("alice").clone();
    let user_id: uuid::Uuid = db.query_one("SELECT id FROM users WHERE username = $1", &[&alice_id.username]).await.unwrap().get(0);
    let reset = admin.post(&format!("/v1/admin/users/{user_id}/reset-mfa"), json!({}), None).await;
    assert!(reset.status == 200 || reset.status == 204, "{}", reset.body);
    let due_s: f64 = db
        .query_one(
            "SELECT extract(epoch FROM d.next_attempt_at - now())::float8 FROM notification_deliveries d
               JOIN notification_events e ON e.id = d.event_id
              WHERE d.user_id = $1 AND e.kind = 'security.mfa_reset' AND d.channel = 'sms'",
            &[&user_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(due_s <= 1.0, "a security notice goes at once: due in {due_s} s");
    stack.assert_ledger_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_for_business_customers() {
    use flexibank_server::notify::webhook::{secret_bytes, verify, SIGNATURE_TOLERANCE_S};
    let (stack, _sms) = stack_with_sms("notify-webhook", |_| {}).await;
    let receiver = flexibank_tests::receivers::WebhookReceiver::start(&stack.dir().join("tls")).await;
    let (alice, bob, admin) = (stack.login("alice").await, stack.login("bob").await, stack.login("admin").await);

    // Only customers with a business account; only https URLs.
    alice.post("/v1/me/webhooks", json!({"url": receiver.url}), None).await.assert_problem(403, "forbidden");
    let db = stack.superuser(&stack.primary_name()).await;
    let alice_id: uuid::Uuid = db.query_one("SELECT id FROM users WHERE username = 'alice'", &[]).await.unwrap().get(0);
    let opened = admin.post("/v1/admin/accounts", json!({"owner_ids": [alice_id], "kind": "business", "currency": "INR"}), None).await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    alice.post("/v1/me/webhooks", json!({"url": receiver.url.replace("https", "http")}), None).await.assert_problem(400, "validation_failed");
    alice.post("/v1/me/webhooks", json!({"url": 42}), None).await.assert_problem(400, "validation_failed");
    let registered = alice.post("/v1/me/webhooks", json!({"url": receiver.url}), None).await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let secret = secret_bytes(registered.body["secret"].as_str().unwrap()).expect("whsec_ secret");
    let listed = alice.get("/v1/me/webhooks").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert!(listed.body[0].get("secret").is_none(), "the secret is shown once only: {}", listed.body);
    bob.get("/v1/me/webhooks").await.body.as_array().map(|a| assert!(a.is_empty())).unwrap();
    bob.send(bob.http.delete(format!("{}/v1/me/webhooks/{}", stack.base_url, registered.body["id"].as_str().unwrap())).bearer_auth(bob.token.clone().unwrap()))
        .await
        .assert_problem(404, "not_found");

    // A movement of Alice's reaches her endpoint, signed; the signature checks
    // out with her secret only, and not once it is old.
    let moved = transfer(&stack, &alice, "alice", "bob", "2.25").await;
    let debit = notification_for(&alice, moved["id"].as_str().unwrap(), "money.debit").await;
    let id = debit["id"].as_str().unwrap().to_string();
    let hook = eventually(Duration::from_secs(10), "the webhook", || async { receiver.received.lock().unwrap().iter().find(|h| h.event_id == id).cloned() }).await;
    let body: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!((body["id"].as_str(), body["kind"].as_str()), (Some(id.as_str()), Some("money.debit")));
    assert_eq!(body["data"]["amount"], "2.25");
    let now = flexibank_tests::unix_now();
    assert_eq!(verify(&secret, &hook.signature, &hook.body, now), Ok(()));
    assert!(verify(b"not the secret", &hook.signature, &hook.body, now).is_err());
    assert!(verify(&secret, &hook.signature, &hook.body, now + SIGNATURE_TOLERANCE_S + 5).is_err(), "a replay later is refused");
    let audit = admin.get("/v1/admin/audit?action=notifications.webhook_registered").await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 1, "{}", audit.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_arrives_at_a_local_smtp_server_over_starttls() {
    use flexibank_server::notify::receivers::{start_smtp_sink, Inbox};
    let mut stack = TestStack::start("notify-email").await;
    let tls_dir = stack.dir().join("tls");
    let tls = flexibank_server::tls::server_config(&tls_dir.join("server.pem"), &tls_dir.join("server-key.pem")).unwrap();
    let inbox = Inbox::new(None);
    let sink = start_smtp_sink("127.0.0.1:0".parse().unwrap(), tls, inbox.clone()).await.unwrap();
    stack.stop_server().await;
    let n = &mut stack.config.notifications;
    n.smtp_host = Some("127.0.0.1".into());
    n.smtp_port = sink.port();
    n.smtp_from = Some("FlexiBank <notifications@flexibank.example>".into());
    n.extra_ca_pem = Some(stack.ca_cert.clone());
    n.poll_interval_ms = 50;
    stack.start_server().await;

    let alice = stack.login("alice").await;
    let mut settings = alice.get("/v1/me/notification-settings").await.body;
    settings["email_money"] = json!(true);
    assert_eq!(alice.put("/v1/me/notification-settings", settings).await.status, 200);
    let moved = transfer(&stack, &alice, "alice", "bob", "5.00").await;
    let debit = notification_for(&alice, moved["id"].as_str().unwrap(), "money.debit").await;
    let id = debit["id"].as_str().unwrap().to_string();
    let mail = eventually(Duration::from_secs(15), "the e-mail", || async {
        inbox.received.lock().unwrap().iter().find(|m| m.event_id == id).cloned()
    })
    .await;
    assert!(mail.to.contains('@'), "{mail:?}");
    assert!(mail.body.contains("5.00 INR debited"), "{}", mail.body);
    assert!(mail.body.contains("Subject: Money left your account"), "{}", mail.body);
    assert!(!mail.body.contains(&stack.user("alice").account_numbers[0]), "no full account number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_ends_in_the_dead_letter_state() {
    let (stack, receiver) = stack_with_sms("notify-hang", |c| {
        c.notifications.send_timeout_ms = 300;
        c.notifications.backoff_first_ms = 100;
        c.notifications.backoff_max_ms = 400;
        c.notifications.max_attempts = 3;
    })
    .await;
    // Longer than the send timeout: every send times out unanswered.
    receiver.state.delay_ms.store(5_000, std::sync::atomic::Ordering::SeqCst);
    let (alice, admin) = (stack.login("alice").await, stack.login("admin").await);
    let moved = transfer(&stack, &alice, "alice", "bob", "6.00").await;
    let debit = notification_for(&alice, moved["id"].as_str().unwrap(), "money.debit").await;
    let dead = eventually(Duration::from_secs(60), "the dead letter", || async {
        let page = admin.get("/v1/admin/notifications/dead").await;
        page.body.as_array().unwrap().iter().find(|d| d["event_id"] == debit["id"]).cloned()
    })
    .await;
    assert_eq!(dead["attempts"], 3);
    assert!(dead["last_error"].as_str().unwrap().to_lowercase().contains("time"), "a timeout: {}", dead["last_error"]);
    // The in-app notification is there regardless of the SMS.
    assert_eq!(debit["payload"]["amount"], "6.00");
}

/// The SMS channel pointed at `receiver`, or at nothing (deliveries then wait, pending), restarting the server.
async fn sms_channel(stack: &mut TestStack, receiver: Option<&TwilioReceiver>) {
    stack.stop_server().await;
    stack.config.notifications.sms_base_url = receiver.map(|r| r.base_url.clone());
    stack.start_server().await;
}

/// Gives the user a phone number of their own (the demo users share one), for messages created from now on.
async fn own_phone(stack: &TestStack, username: &str, phone: &str) -> String {
    let db = stack.superuser(&stack.primary_name()).await;
    db.execute("UPDATE users SET phone = $2 WHERE username = $1", &[&username, &phone]).await.unwrap();
    phone.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_recipient_gets_security_notices_first_and_a_digest_of_the_money_messages() {
    let (mut stack, receiver) = stack_with_sms("notify-busy", |_| {}).await;
    let alice = stack.login("alice").await;
    let bob_phone = own_phone(&stack, "bob", "+15550002222").await;
    let alice_phone = own_phone(&stack, "alice", "+15550003333").await;
    let bob_sms = |text: &str| -> Vec<String> {
        let received = receiver.state.received.lock().unwrap().clone();
        received.iter().filter(|m| m.to == bob_phone && m.status == 201 && m.body.contains(text)).map(|m| m.body.clone()).collect()
    };

    // Eight credits queue for Bob while no SMS can go out, then his first
    // sign-in (a new device: a security notice), created after them.
    sms_channel(&mut stack, None).await;
    for _ in 0..8 {
        transfer(&stack, &alice, "alice", "bob", "1.00").await;
    }
    let bob = stack.login("bob").await;
    // A slow provider: Bob's money messages take 0.7 s each, one after another.
    receiver.state.delay_ms.store(700, std::sync::atomic::Ordering::SeqCst);
    sms_channel(&mut stack, Some(&receiver)).await;
    eventually(Duration::from_secs(20), "Bob's security notice", || async { (!bob_sms("a new sign-in").is_empty()).then_some(()) }).await;
    let credits_before = bob_sms("credited").len();
    assert!(credits_before < 4, "the security notice did not wait for the money messages ({credits_before} of 8 came first)");
    // Eight queued, five the lane's allowance (notify/pace.rs): five go one by
    // one, and the other three as one digest once the lane may send again.
    eventually(Duration::from_secs(30), "Bob's last three credits in one digest", || async { bob_sms("3 credits totalling 3.00 INR since").into_iter().next() }).await;
    assert_eq!(bob_sms("1.00 INR credited").len(), flexibank_server::notify::pace::BURST as usize, "the first five one by one");
    receiver.state.delay_ms.store(0, std::sync::atomic::Ordering::SeqCst);
    // Recorded as sent too (a send is recorded after the receiver's answer; a
    // stop before that sends it again: at least once).
    let db = stack.superuser(&stack.primary_name()).await;
    eventually(Duration::from_secs(20), "the first messages recorded as sent", || async {
        let pending: i64 = db
            .query_one("SELECT count(*) FROM notification_deliveries WHERE destination = ANY($1) AND status = 'pending'", &[&vec![bob_phone.clone(), alice_phone.clone()]])
            .await
            .unwrap()
            .get(0);
        (pending == 0).then_some(())
    })
    .await;

    // Thirty more queue up: past the bound they go as one digest each way.
    sms_channel(&mut stack, None).await;
    let mut transfer_ids = Vec::new();
    for _ in 0..30 {
        transfer_ids.push(transfer(&stack, &alice, "alice", "bob", "0.10").await["id"].as_str().unwrap().to_string());
    }
    sms_channel(&mut stack, Some(&receiver)).await;
    let digest = eventually(Duration::from_secs(20), "Bob's digest", || async { bob_sms("30 credits totalling").into_iter().next() }).await;
    assert!(digest.contains("30 credits totalling 3.00 INR since"), "{digest}");
    eventually(Duration::from_secs(20), "Alice's digest", || async {
        let received = receiver.state.received.lock().unwrap().clone();
        received.iter().any(|m| m.to == alice_phone && m.body.contains("30 debits totalling 3.00 INR since")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bob_sms("0.10 INR credited"), Vec::<String>::new(), "no message one by one besides the digest");
    assert_eq!(bob_sms("30 credits totalling").len(), 1, "one digest of them for Bob");
    assert_eq!(bob_sms("totalling").len(), 2, "and the one before");

    // Every delivery is accounted for: the one that carried the digest sent,
    // the others coalesced into it; none left pending; each event in-app.
    let states: Vec<(String, i64)> = db
        .query(
            "SELECT d.status, count(*) FROM notification_deliveries d JOIN notification_events e ON e.id = d.event_id
              WHERE e.payload->>'transfer_id' = ANY($1) AND d.channel = 'sms' GROUP BY d.status ORDER BY d.status",
            &[&transfer_ids],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(states, vec![("coalesced".to_string(), 58), ("sent".to_string(), 2)], "30 transfers x 2 parties");
    let uncarried: i64 = db
        .query_one(
            "SELECT count(*) FROM notification_deliveries d
              WHERE d.status = 'coalesced' AND NOT EXISTS (SELECT 1 FROM notification_deliveries c
                                                            WHERE c.id = d.carried_by AND c.status = 'sent' AND c.user_id = d.user_id)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(uncarried, 0, "each coalesced delivery names the sent one that carried it");
    let page = bob.get("/v1/notifications?limit=200").await;
    let shown = page.body["items"].as_array().unwrap().iter().filter(|n| transfer_ids.iter().any(|t| n["payload"]["transfer_id"] == t.as_str())).count();
    assert_eq!(shown, 30, "in-app keeps every event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_is_sent_no_more_than_the_provider_allows_and_the_rest_as_a_digest() {
    use flexibank_server::notify::pace::{BURST, REFILL_EVERY};
    let (stack, receiver) = stack_with_sms("notify-pace", |_| {}).await;
    let alice = stack.login("alice").await;
    let bob_phone = own_phone(&stack, "bob", "+15550004444").await;
    let bob_sms = || -> Vec<(std::time::Instant, String)> {
        let received = receiver.state.received.lock().unwrap().clone();
        received.iter().filter(|m| m.to == bob_phone && m.status == 201).map(|m| (m.at, m.body.clone())).collect()
    };
    // Nine credits in one batch (one commit, the channel live): fewer than a
    // digest's bound, more than the lane's allowance.
    let from_id = stack.account_id(&stack.user("alice").account_numbers[0]).await;
    let to_number = stack.user("bob").account_numbers[0].clone();
    let amounts = ["0.01", "0.02", "0.03", "0.04", "0.05", "0.06", "0.07", "0.08", "0.09"];
    let items: Vec<Value> = amounts.iter().map(|a| json!({"from_account_id": from_id, "to_account_number": to_number, "amount": a, "memo": "pace"})).collect();
    let batch = alice.post("/v1/transfers/batch", json!({ "items": items }), Some(&uuid::Uuid::new_v4().to_string())).await;
    assert_eq!(batch.status, 201, "{}", batch.body);
    let got = eventually(Duration::from_secs(30), "Bob's digest of the last four", || async {
        let got = bob_sms();
        got.iter().any(|(_, body)| body.contains("totalling")).then_some(got)
    })
    .await;
    // The first five at once, one message each, in order; then, once the lane earned another, the
    // other four as one digest (0.06 + 0.07 + 0.08 + 0.09).
    assert_eq!(got.len(), BURST as usize + 1, "{got:?}");
    for (i, ((_, body), amount)) in got.iter().zip(amounts).take(BURST as usize).enumerate() {
        assert!(body.contains(&format!("{amount} INR credited")), "message {i} out of order: {body}");
    }
    assert!(got[BURST as usize].1.contains("4 credits totalling 0.30 INR since"), "{}", got[BURST as usize].1);
    let waited = got[BURST as usize].0.duration_since(got[0].0);
    assert!(waited >= REFILL_EVERY / 2, "the digest waited for the pace: {waited:?} after the first message");
    tokio::time::sleep(REFILL_EVERY * 2).await;
    assert_eq!(bob_sms().len(), BURST as usize + 1, "nothing more: every credit went once");
}
