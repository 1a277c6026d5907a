//! Notifications survive crashes: a server SIGKILLed between the commit of
//! the movement and the delivery of its messages, and a primary SIGKILLed
//! while the dispatcher works. Every event is delivered at least once after,
//! and shows once in the in-app list.

use std::{
    collections::HashSet,
    os::unix::process::CommandExt,
    process::{Child, Command, Stdio},
    sync::atomic::Ordering,
    time::Duration,
};

use flexibank_tests::{
    eventually, json,
    receivers::{TwilioReceiver, TWILIO_SID, TWILIO_TOKEN},
    workspace_root, Session, StackOptions, TestStack,
};
use uuid::Uuid;

fn sms_to(config: &mut flexibank_server::config::Config, receiver: &TwilioReceiver, ca: &std::path::Path) {
    let n = &mut config.notifications;
    n.sms_base_url = Some(receiver.base_url.clone());
    n.sms_account_sid = Some(TWILIO_SID.into());
    n.sms_auth_token = Some(TWILIO_TOKEN.into());
    n.sms_from = Some("+15550001111".into());
    n.extra_ca_pem = Some(ca.to_path_buf());
    n.poll_interval_ms = 50;
}

/// A second server, a real process: the one that dispatches SMS here.
struct ServerProcess(Child);

impl ServerProcess {
    fn start(stack: &TestStack, receiver: &TwilioReceiver, name: &str) -> ServerProcess {
        let mut config = stack.config.clone();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        sms_to(&mut config, receiver, &stack.ca_cert);
        let path = stack.dir().join(format!("{name}.toml"));
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        let log = std::fs::File::create(stack.dir().join(format!("{name}.log"))).unwrap();
        let child = Command::new(workspace_root().join("target/debug/flexibank-server"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("target/debug/flexibank-server (make test builds it first)");
        ServerProcess(child)
    }

    fn kill(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.kill();
        }
    }
}

async fn transfers(stack: &TestStack, alice: &Session, count: usize) -> Vec<String> {
    let from = stack.account_id(&stack.user("alice").account_numbers[0]).await;
    let to = stack.user("bob").account_numbers[0].clone();
    let mut ids = Vec::new();
    for i in 0..count {
        let r = alice.post_money("/v1/transfers", json!({"from_account_id": from, "to_account_number": to, "amount": "1.00", "memo": format!("crash {i}")})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    ids
}

/// The events of these transfers (one per party), from the database.
async fn events_of(stack: &TestStack, transfer_ids: &[String]) -> Vec<Uuid> {
    let db = stack.superuser(&stack.primary_name()).await;
    let rows = db
        .query("SELECT id FROM notification_events WHERE payload->>'transfer_id' = ANY($1) ORDER BY id", &[&transfer_ids])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// Every SMS delivery of these events recorded as sent, on its own or inside a
/// digest ('coalesced': the demo users' messages queued while nothing was
/// sending can pass the digest bound).
async fn all_sent(stack: &TestStack, events: &[Uuid]) -> bool {
    let db = stack.superuser(&stack.primary_name()).await;
    let unsent: i64 = db
        .query_one("SELECT count(*) FROM notification_deliveries WHERE event_id = ANY($1) AND channel = 'sms' AND status NOT IN ('sent', 'coalesced')", &[&events])
        .await
        .unwrap()
        .get(0);
    unsent == 0
}

/// The events the receiver got (by event id), plus those it got inside a digest.
async fn received_events(stack: &TestStack, receiver: &TwilioReceiver) -> HashSet<String> {
    let received = receiver.state.received.lock().unwrap().clone();
    let mut seen: HashSet<String> = received.iter().filter(|m| m.status == 201).map(|m| m.event_id.clone()).collect();
    let db = stack.superuser(&stack.primary_name()).await;
    let coalesced = db.query("SELECT event_id FROM notification_deliveries WHERE status = 'coalesced' AND channel = 'sms'", &[]).await.unwrap();
    if !coalesced.is_empty() {
        assert!(received.iter().any(|m| m.status == 201 && m.body.contains("totalling")), "coalesced messages went out in a digest");
    }
    seen.extend(coalesced.iter().map(|r| r.get::<_, Uuid>(0).to_string()));
    seen
}

async fn in_app_once(alice: &Session, transfer_ids: &[String]) {
    let page = alice.get("/v1/notifications?limit=200").await;
    for id in transfer_ids {
        let shown = page.body["items"].as_array().unwrap().iter().filter(|n| n["payload"]["transfer_id"] == id.as_str()).count();
        assert_eq!(shown, 1, "transfer {id} shows once in the in-app list");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_between_commit_and_delivery_delivers_everything_after_restart() {
    // The in-process server takes the API calls and has no SMS channel; the
    // process below dispatches, slowly, and is killed mid-send.
    let stack = TestStack::start("notify-kill-server").await;
    let receiver = TwilioReceiver::start(&stack.dir().join("tls")).await;
    receiver.state.delay_ms.store(1_500, Ordering::SeqCst);
    let alice = stack.login("alice").await;
    let transfer_ids = transfers(&stack, &alice, 5).await;
    let events = events_of(&stack, &transfer_ids).await;
    assert_eq!(events.len(), 10, "one event per party per transfer");

    let mut dispatcher = ServerProcess::start(&stack, &receiver, "dispatcher");
    let ours: HashSet<String> = events.iter().map(Uuid::to_string).collect();
    eventually(Duration::from_secs(30), "a send in flight", || async {
        receiver.state.received.lock().unwrap().iter().any(|m| ours.contains(&m.event_id)).then_some(())
    })
    .await;
    dispatcher.kill();
    assert!(!all_sent(&stack, &events).await, "the kill came before every delivery was recorded");

    receiver.state.delay_ms.store(0, Ordering::SeqCst);
    let _restarted = ServerProcess::start(&stack, &receiver, "dispatcher-again");
    eventually(Duration::from_secs(60), "every delivery sent after the restart", || async { all_sent(&stack, &events).await.then_some(()) }).await;
    let seen = received_events(&stack, &receiver).await;
    for event in &ours {
        assert!(seen.contains(event), "event {event} reached the receiver");
    }
    in_app_once(&alice, &transfer_ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_mid_dispatch_loses_no_notification() {
    let mut stack = TestStack::start_with(
        "notify-kill-primary",
        StackOptions {
            replicas: 2,
            configure: |c| {
                c.database.auto_failover = true;
                c.server.request_timeout_ms = 5_000;
            },
            ..StackOptions::default()
        },
    )
    .await;
    let receiver = TwilioReceiver::start(&stack.dir().join("tls")).await;
    stack.stop_server().await;
    let ca = stack.ca_cert.clone();
    sms_to(&mut stack.config, &receiver, &ca);
    stack.start_server().await;
    receiver.state.delay_ms.store(300, Ordering::SeqCst);
    let alice = stack.login("alice").await;
    let transfer_ids = transfers(&stack, &alice, 8).await;
    let events = events_of(&stack, &transfer_ids).await;
    assert_eq!(events.len(), 16);

    let old_primary = stack.primary_name();
    let pid = stack.cluster.0.postmaster_pid(&old_primary).expect("primary running");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    eventually(Duration::from_secs(30), "a new primary", || async {
        let primary = stack.server().state.db.pool.view().primary;
        (primary.is_some() && primary.as_deref() != Some(old_primary.as_str())).then_some(())
    })
    .await;
    receiver.state.delay_ms.store(0, Ordering::SeqCst);
    eventually(Duration::from_secs(60), "every delivery sent from the new primary", || async { all_sent(&stack, &events).await.then_some(()) }).await;
    let seen = received_events(&stack, &receiver).await;
    for event in &events {
        assert!(seen.contains(&event.to_string()), "event {event} reached the receiver");
    }
    in_app_once(&alice, &transfer_ids).await;
    stack.assert_ledger_invariants().await;
}
