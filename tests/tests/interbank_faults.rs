//! Inter-bank payments through faults (issue 16): 16 clients paying in both
//! directions while the switch process is SIGKILLed (until a kill lands
//! between a COMMIT record and phase two) and restarted, and while
//! the payee bank's server is down. Afterwards every acknowledged payment is
//! posted exactly once at both banks, every refused one left nothing, each
//! settlement account equals minus its bank's position, positions sum to
//! zero, and no hold stays undecided (`Consortium::assert_invariants`).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use flexibank_tests::{
    consortium::{register_key, BankProcess, Consortium, SwitchProcess},
    Session,
};
use serde_json::{json, Value};

/// What the clients were answered, by status; every 201 and 202 by e2e_id.
#[derive(Default)]
struct Answers {
    committed: Vec<String>,
    pending: Vec<String>,
    refused: Vec<(u16, String)>,
}

/// Runs `clients` payers (taking the payers in turn) until `stop`, recording
/// every answer. A 5xx other than 503 fails the test; so does a failed
/// request, unless the server is to be killed under them (`server_may_die`).
fn start_payers(
    payers: Arc<Vec<(Session, String, String, String)>>,
    clients: usize,
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Answers>>,
    tag: &'static str,
    server_may_die: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|client| {
            let (payers, stop, answers) = (payers.clone(), stop.clone(), answers.clone());
            tokio::spawn(async move {
                let (session, from, key_type, value) = &payers[client % payers.len()];
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({"from_account_id": from, "key": {"type": key_type, "value": value}, "amount": "2.50", "memo": "by key"});
                    let request = session
                        .http
                        .post(format!("{}/v1/interbank/payments", session.base_url))
                        .bearer_auth(session.token.as_deref().unwrap())
                        .header("idempotency-key", format!("{tag}-{client}-{n}"))
                        .json(&body);
                    n += 1;
                    let answered = match request.send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            response.json::<Value>().await.map(|body| (status, body))
                        }
                        Err(e) => Err(e),
                    };
                    let (status, body) = match answered {
                        Ok(answer) => answer,
                        Err(_) if server_may_die => continue,
                        Err(e) => panic!("payment {client}/{n}: {e}"),
                    };
                    {
                        let mut answers = answers.lock().unwrap();
                        match status {
                            201 => answers.committed.push(body["e2e_id"].as_str().unwrap().to_string()),
                            202 => answers.pending.push(body["e2e_id"].as_str().unwrap().to_string()),
                            409 | 503 | 429 => answers.refused.push((status, body["code"].as_str().unwrap_or_default().to_string())),
                            other => panic!("payment {client}/{n}: {other} {body}"),
                        }
                    }
                    // A client told to come back does not hammer.
                    if status == 503 || status == 429 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_switch_killed_mid_run_and_the_payee_bank_down() {
    let mut consortium = Consortium::start("interbank-faults", Default::default()).await;
    let mut switch_process = SwitchProcess::take_over(&mut consortium.switch).await;
    let (a, b) = (&consortium.a, &consortium.b);
    let alice_a = a.login("alice").await;
    let alice_b = b.login("alice").await;
    let bob_a = a.login("bob").await;
    let alice_a_inr = a.account_id(&a.user("alice").account_numbers[0]).await.to_string();
    let alice_b_inr = b.account_id(&b.user("alice").account_numbers[0]).await.to_string();
    let bob_a_inr = a.account_id(&a.user("bob").account_numbers[0]).await.to_string();
    register_key(&alice_b, &alice_b_inr, "national_id", Some("DEMO-alice")).await;
    let bob_key: Value = register_key(&bob_a, &bob_a_inr, "random", None).await;
    let payers = Arc::new(vec![
        (alice_a.clone(), alice_a_inr.clone(), "national_id".to_string(), "DEMO-alice".to_string()),
        (alice_b.clone(), alice_b_inr.clone(), "random".to_string(), bob_key["value"].as_str().unwrap().to_string()),
    ]);

    // 1. The switch SIGKILLed under load, then restarted: whatever it had decided is completed, the rest aborted.
    let answers = Arc::new(Mutex::new(Answers::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = start_payers(payers.clone(), 16, stop.clone(), answers.clone(), "kill", false);
    // Killed until a kill lands after a COMMIT record and before both banks acknowledged phase
    // two (read from the switch's database while it is down), at most five times.
    let mut caught_in_phase_two = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        switch_process.kill();
        caught_in_phase_two = consortium
            .switch
            .db
            .query_one("SELECT count(*) FROM payments WHERE status = 'committed' AND (payer_acked_at IS NULL OR payee_acked_at IS NULL)", &[])
            .await
            .unwrap()
            .get::<_, i64>(0);
        tokio::time::sleep(Duration::from_millis(500)).await;
        switch_process.start(&consortium.switch).await;
        if caught_in_phase_two > 0 {
            break;
        }
    }
    assert!(caught_in_phase_two > 0, "no kill landed between a COMMIT record and phase two");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    consortium.assert_invariants().await;
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    assert!(!answers.committed.is_empty(), "some payments committed before and after the kill");
    for e2e_id in answers.committed.iter().chain(&answers.pending) {
        consortium.assert_agree(e2e_id).await;
    }
    eprintln!(
        "switch kill: {caught_in_phase_two} committed payments caught before phase two completed; {} committed, {} pending then decided, {} refused",
        answers.committed.len(),
        answers.pending.len(),
        answers.refused.len()
    );

    // 2. The payee bank down during phase one: each payment to it aborts within the switch's timeout, its hold released.
    consortium.b.stop_server().await;
    let answers = Arc::new(Mutex::new(Answers::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let only_a = Arc::new(vec![payers[0].clone()]);
    let tasks = start_payers(only_a, 8, stop.clone(), answers.clone(), "down", false);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    {
        let answers = answers.lock().unwrap();
        assert!(answers.committed.is_empty(), "nothing commits to a bank that is down: {:?}", answers.committed);
        assert!(answers.refused.iter().any(|(status, code)| *status == 409 && code == "payee_refused"), "{:?}", answers.refused);
    }
    let account = alice_a.get(&format!("/v1/accounts/{alice_a_inr}")).await;
    assert_eq!(account.body["available_balance"], account.body["balance"], "no hold stays for a payment aborted at the switch");
    consortium.b.start_server().await;
    consortium.assert_invariants().await;

    // 3. The payer bank's server SIGKILLed between placing holds and hearing
    // decisions, then restarted: its in-doubt payments are resolved from the
    // switch's decisions (its resolver, and the switch's re-sends).
    let mut process = BankProcess::start(&consortium.a, "bank-a-process").await;
    let through_process = Arc::new(vec![(process.session(&alice_a), alice_a_inr.clone(), "national_id".to_string(), "DEMO-alice".to_string())]);
    let answers = Arc::new(Mutex::new(Answers::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = start_payers(through_process, 8, stop.clone(), answers.clone(), "crash", true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    process.kill();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    process.restart(&consortium.a).await;
    consortium.assert_invariants().await;
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    assert!(!answers.committed.is_empty(), "payments went through the process before the kill");
    for e2e_id in answers.committed.iter().chain(&answers.pending) {
        consortium.assert_agree(e2e_id).await;
    }
    let account = alice_a.get(&format!("/v1/accounts/{alice_a_inr}")).await;
    assert_eq!(account.body["available_balance"], account.body["balance"], "no hold is left in doubt");
}

/// Bank A's own PostgreSQL primary SIGKILLed while 16 clients pay both ways:
/// its pool fails over to the synchronous replica; every payment answered
/// 201 or 202 is posted once at both banks, and nothing is left in doubt.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_banks_primary_killed_mid_run() {
    use flexibank_tests::failover_load::{failover_options, kill_postmaster};
    // The customer's wait stays below the 5 s request timeout of a failover stack.
    let consortium = Consortium::start_with("interbank-failover", Default::default(), failover_options(2, true), |member| member.timeout_ms = 3_000).await;
    let (a, b) = (&consortium.a, &consortium.b);
    let alice_a = a.login("alice").await;
    let alice_b = b.login("alice").await;
    let bob_a = a.login("bob").await;
    let alice_a_inr = a.account_id(&a.user("alice").account_numbers[0]).await.to_string();
    let alice_b_inr = b.account_id(&b.user("alice").account_numbers[0]).await.to_string();
    let bob_a_inr = a.account_id(&a.user("bob").account_numbers[0]).await.to_string();
    register_key(&alice_b, &alice_b_inr, "national_id", Some("DEMO-alice")).await;
    let bob_key: Value = register_key(&bob_a, &bob_a_inr, "random", None).await;
    let payers = Arc::new(vec![
        (alice_a.clone(), alice_a_inr.clone(), "national_id".to_string(), "DEMO-alice".to_string()),
        (alice_b.clone(), alice_b_inr.clone(), "random".to_string(), bob_key["value"].as_str().unwrap().to_string()),
    ]);
    let answers = Arc::new(Mutex::new(Answers::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = start_payers(payers, 16, stop.clone(), answers.clone(), "failover", false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old_primary = a.primary_name();
    kill_postmaster(a, &old_primary);
    flexibank_tests::eventually(Duration::from_secs(30), "bank A's failover", || async {
        a.server().state.db.pool.view().primary.filter(|primary| *primary != old_primary).map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    consortium.assert_invariants().await;
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    assert!(!answers.committed.is_empty(), "payments committed around the failover");
    for e2e_id in answers.committed.iter().chain(&answers.pending) {
        consortium.assert_agree(e2e_id).await;
    }
    eprintln!("bank failover: {} committed, {} pending then decided, {} refused", answers.committed.len(), answers.pending.len(), answers.refused.len());
}
