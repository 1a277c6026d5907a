//! The switch calling banks (docs/consortium.md, steps 4 and 6, and
//! `reconcile`): endpoint registration, the payee's prepare inside the payer's
//! initiate, the driver's deadline sweep and re-sends, the operator's routes.
//! A real PostgreSQL, the switch in-process, real mutual TLS both ways; the
//! banks' listeners are `FakeBank`s (the real one is the server's, tested with it).

use std::time::{Duration, Instant};

use flexibank_switch::{
    payments::{self, Payment, Position, Status},
    Limits,
};
use flexibank_tests::switch::{as_payment, assert_problem, refused_addr, send, FakeBank, SwitchUnderTest};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const BANK1: &str = "00000001";
const BANK2: &str = "00000002";
const BANK3: &str = "00000003";
const TO_BANK2: &str = "ravi@harbour.example";

async fn setup(label: &str, limits: Limits) -> SwitchUnderTest {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let members = [(BANK1, "FlexiBank North"), (BANK2, "Harbour Bank"), (BANK3, "Quiet Bank")];
    let env = SwitchUnderTest::start(label, &members, limits).await;
    payments::fund(&env.pool(), BANK1, money("1000"), Decimal::ZERO).await.unwrap();
    let key = json!({"type": "email", "value": TO_BANK2, "account_number": "200000000001", "account_kind": "savings", "holder_name": "Ravi Rao"});
    let answer = send(env.bank(BANK2).post(env.url(&format!("/switch/v1/banks/{BANK2}/keys"))).json(&key)).await;
    assert_eq!(answer.0, StatusCode::CREATED, "{}", answer.1);
    env
}

fn money(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn e2e_id(n: u32) -> String {
    format!("E{BANK1}202611300250C{n:010}")
}

async fn initiate(env: &SwitchUnderTest, id: &str, amount: &str) -> (StatusCode, Value) {
    let body = json!({"e2e_id": id, "key_type": "email", "key_value": TO_BANK2, "amount": amount, "currency": "INR"});
    send(env.bank(BANK1).post(env.url(&format!("/switch/v1/banks/{BANK1}/payments"))).json(&body)).await
}

async fn register_endpoint(env: &SwitchUnderTest, bank: &str, addr: &str) -> (StatusCode, Value) {
    send(env.bank(bank).put(env.url(&format!("/switch/v1/banks/{bank}/endpoint"))).json(&json!({"interbank_addr": addr}))).await
}

async fn assert_invariants(env: &SwitchUnderTest) {
    let violations = payments::check_invariants(&env.db).await.unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
}

async fn stored(env: &SwitchUnderTest, id: &str) -> Payment {
    payments::get(&env.pool(), id).await.unwrap()
}

/// Polls until `done` holds for the stored payment, or fails after `within`.
async fn wait_for(env: &SwitchUnderTest, id: &str, within: Duration, done: impl Fn(&Payment) -> bool) -> Payment {
    let started = Instant::now();
    loop {
        let payment = stored(env, id).await;
        if done(&payment) {
            return payment;
        }
        assert!(started.elapsed() < within, "not reached in {within:?}: {payment:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_positions_and_operator_routes() {
    let mut env = setup("switch-calls-endpoints", Limits::default()).await;
    let (bank1, operator) = (env.bank(BANK1), env.operator());

    // A bank registers its own endpoint only; the answer is the endpoint.
    let answer = register_endpoint(&env, BANK1, "127.0.0.1:9444").await;
    assert_eq!((answer.0, &answer.1), (StatusCode::OK, &json!({"interbank_addr": "127.0.0.1:9444"})));
    let answer = send(bank1.put(env.url(&format!("/switch/v1/banks/{BANK2}/endpoint"))).json(&json!({"interbank_addr": "127.0.0.1:1"}))).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    for bad in ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "bank one:443", "[::1]", ":443", "1.2.3:443"] {
        assert_problem(&register_endpoint(&env, BANK1, bad).await, StatusCode::BAD_REQUEST, "validation_failed");
    }
    let long = format!("{}.example:443", "a".repeat(250));
    assert_problem(&register_endpoint(&env, BANK1, &long).await, StatusCode::BAD_REQUEST, "validation_failed");
    let extra = json!({"interbank_addr": "127.0.0.1:1", "tls": false});
    let answer = send(bank1.put(env.url(&format!("/switch/v1/banks/{BANK1}/endpoint"))).json(&extra)).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "validation_failed");
    let stored: Option<String> = env.db.query_one("SELECT interbank_addr FROM banks WHERE id = $1", &[&BANK1]).await.unwrap().get(0);
    assert_eq!(stored.as_deref(), Some("127.0.0.1:9444"), "refusals changed nothing");
    assert_eq!(register_endpoint(&env, BANK1, "bank-one.example:8443").await.0, StatusCode::OK, "a bank may move");
    assert_eq!(register_endpoint(&env, BANK2, "[::1]:8443").await.0, StatusCode::OK);

    // A bank reads its own position only.
    let answer = send(bank1.get(env.url(&format!("/switch/v1/banks/{BANK1}/position")))).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    let position: Position = serde_json::from_value(answer.1).unwrap();
    assert_eq!((position.bank_id.as_str(), position.prefunded, position.position), (BANK1, money("1000"), Decimal::ZERO));
    assert_problem(&send(bank1.get(env.url(&format!("/switch/v1/banks/{BANK2}/position")))).await, StatusCode::FORBIDDEN, "forbidden");

    // The operator reads every position and any payment; a bank's certificate reads neither.
    let answer = send(operator.get(env.url("/switch/v1/positions"))).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    let positions: Vec<Position> = serde_json::from_value(answer.1).unwrap();
    assert_eq!(positions.iter().map(|p| p.bank_id.as_str()).collect::<Vec<_>>(), [BANK1, BANK2, BANK3]);
    assert_problem(&send(bank1.get(env.url("/switch/v1/positions"))).await, StatusCode::FORBIDDEN, "forbidden");
    assert_problem(&send(operator.get(env.url(&format!("/switch/v1/banks/{BANK1}/position")))).await, StatusCode::FORBIDDEN, "forbidden");
    // Bank 2's endpoint has no listener here: the payment is aborted, and the operator reads it.
    let id = e2e_id(1);
    let aborted = as_payment(&initiate(&env, &id, "10").await, StatusCode::CREATED);
    let read = as_payment(&send(operator.get(env.url(&format!("/switch/v1/payments/{id}")))).await, StatusCode::OK);
    assert_eq!(read, stored_or(&env, &id, aborted).await);
    assert_problem(&send(bank1.get(env.url(&format!("/switch/v1/payments/{id}")))).await, StatusCode::FORBIDDEN, "forbidden");
    assert_problem(&send(operator.get(env.url(&format!("/switch/v1/payments/{}", e2e_id(2))))).await, StatusCode::NOT_FOUND, "not_found");
    assert_invariants(&env).await;
    env.switch.take().unwrap().shutdown().await.unwrap();
}

/// The stored payment, which may have moved on (an acknowledgement) since `answered`.
async fn stored_or(env: &SwitchUnderTest, id: &str, answered: Payment) -> Payment {
    let now = stored(env, id).await;
    assert_eq!((now.status, now.reason.clone()), (answered.status, answered.reason.clone()));
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payee_without_endpoint_waits_and_an_unreachable_one_aborts_at_once() {
    let mut env = setup("switch-calls-unreachable", Limits::default()).await;
    let pool = env.pool();

    // No endpoint: nothing is called; the payment waits for a vote (or its deadline).
    let waiting = as_payment(&initiate(&env, &e2e_id(1), "100").await, StatusCode::CREATED);
    assert_eq!(waiting.status, Status::Initiated);
    assert_eq!(payments::position(&pool, BANK1).await.unwrap().pending_out, money("100"));

    // An endpoint that refuses connections: aborted payee_unavailable in the payer's answer, at once.
    assert_eq!(register_endpoint(&env, BANK2, &refused_addr()).await.0, StatusCode::OK);
    let started = Instant::now();
    let aborted = as_payment(&initiate(&env, &e2e_id(2), "200").await, StatusCode::CREATED);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!((aborted.status, aborted.reason.as_deref()), (Status::Aborted, Some(payments::REASON_PAYEE_UNAVAILABLE)));
    assert_eq!(payments::position(&pool, BANK1).await.unwrap().pending_out, money("100"), "only the waiting payment is reserved");
    assert_invariants(&env).await;
    // A repeat answers the decision without calling again, and an abort never changes a decision.
    assert_eq!(as_payment(&initiate(&env, &e2e_id(2), "200").await, StatusCode::CREATED).status, Status::Aborted);
    let again = payments::abort_undecided(&pool, &e2e_id(2), payments::REASON_TIMEOUT).await.unwrap();
    assert_eq!(again.reason.as_deref(), Some(payments::REASON_PAYEE_UNAVAILABLE));
    // The waiting one still takes its vote.
    let vote = send(env.bank(BANK2).post(env.url(&format!("/switch/v1/banks/{BANK2}/payments/{}/vote", e2e_id(1)))).json(&json!({"yes": true})));
    assert_eq!(as_payment(&vote.await, StatusCode::OK).status, Status::Committed);
    assert_invariants(&env).await;

    // Acknowledgements in bulk: only the acting bank's decided payments are recorded; a repeat keeps the first time.
    let acks = |bank: &str, path_bank: &str, ids: Vec<String>| {
        send(env.bank(bank).post(env.url(&format!("/switch/v1/banks/{path_bank}/acks"))).json(&json!({"e2e_ids": ids})))
    };
    let answer = acks(BANK1, BANK1, vec![e2e_id(1), e2e_id(2), e2e_id(99)]).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(answer.1["acknowledged"], json!([e2e_id(1), e2e_id(2)]), "an unknown payment is not acknowledged");
    let first = stored(&env, &e2e_id(1)).await;
    assert!(first.payer_acked_at.is_some() && first.payee_acked_at.is_none(), "{first:?}");
    assert_eq!(acks(BANK3, BANK3, vec![e2e_id(1)]).await.1["acknowledged"], json!([]), "not bank 3's payment");
    assert_eq!(acks(BANK1, BANK1, vec![e2e_id(1)]).await.1["acknowledged"], json!([e2e_id(1)]));
    assert_eq!(stored(&env, &e2e_id(1)).await, first, "a repeat changes nothing");
    assert_problem(&acks(BANK1, BANK2, vec![e2e_id(1)]).await, StatusCode::FORBIDDEN, "forbidden");
    assert_problem(&acks(BANK1, BANK1, vec![]).await, StatusCode::BAD_REQUEST, "validation_failed");
    assert_problem(&acks(BANK1, BANK1, (0..257).map(e2e_id).collect()).await, StatusCode::BAD_REQUEST, "validation_failed");
    assert_eq!(stored(&env, &e2e_id(1)).await, first, "refused requests change nothing");
    assert_invariants(&env).await;

    // reconcile: neither bank 1 (no endpoint) nor bank 2 (refused) answers, and that is a failure.
    let report = flexibank_switch::reconcile(&env.reconcile_config(1_000)).await.unwrap();
    assert!(!report.ok(), "{}", report.table());
    let line = |bank: &str| report.banks.iter().find(|b| b.bank_id == bank).unwrap().clone();
    assert_eq!(line(BANK1).position, money("-100"));
    assert!(line(BANK1).error.unwrap().contains("no endpoint"));
    assert!(line(BANK2).error.is_some() && line(BANK2).balance.is_none(), "{:?}", line(BANK2));
    env.switch.take().unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_aborts_expired_payments_unasked() {
    let limits = Limits { prepare_timeout_ms: 300, driver_interval_ms: 50, ..Default::default() };
    let mut env = setup("switch-calls-driver", limits).await;
    let waiting = as_payment(&initiate(&env, &e2e_id(1), "100").await, StatusCode::CREATED);
    assert_eq!(waiting.status, Status::Initiated);
    let aborted = wait_for(&env, &e2e_id(1), Duration::from_secs(5), |p| p.status.is_decided()).await;
    assert_eq!((aborted.status, aborted.reason.as_deref()), (Status::Aborted, Some(payments::REASON_TIMEOUT)));
    assert_eq!(payments::position(&env.pool(), BANK1).await.unwrap().pending_out, Decimal::ZERO);
    assert_invariants(&env).await;

    // A payee that accepts the connection and never answers: aborted `timeout` at the deadline, in the payer's answer.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(register_endpoint(&env, BANK2, &silent.local_addr().unwrap().to_string()).await.0, StatusCode::OK);
    let started = Instant::now();
    let timed_out = as_payment(&initiate(&env, &e2e_id(2), "100").await, StatusCode::CREATED);
    assert_eq!((timed_out.status, timed_out.reason.as_deref()), (Status::Aborted, Some(payments::REASON_TIMEOUT)));
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(payments::position(&env.pool(), BANK1).await.unwrap().pending_out, Decimal::ZERO);
    assert_invariants(&env).await;
    env.switch.take().unwrap().shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_driven_through_both_banks() {
    let limits = Limits { driver_interval_ms: 50, resend_after_ms: 200, ..Default::default() };
    let mut env = setup("switch-calls-driven", limits).await;
    let (payer, payee) = (FakeBank::start(&env.tls, BANK1, BANK1).await, FakeBank::start(&env.tls, BANK2, BANK2).await);

    // A listener at bank 2's address that presents bank 3's certificate is not bank 2: unavailable.
    let impostor = FakeBank::start(&env.tls, BANK2, BANK3).await;
    assert_eq!(register_endpoint(&env, BANK2, &impostor.addr).await.0, StatusCode::OK);
    let refused = as_payment(&initiate(&env, &e2e_id(1), "10").await, StatusCode::CREATED);
    assert_eq!(refused.reason.as_deref(), Some(payments::REASON_PAYEE_UNAVAILABLE));
    assert!(impostor.state.prepares.lock().unwrap().is_empty(), "no request reached it");

    // The real bank 2: prepare, yes, committed in the payer's answer; the decision reaches bank 2 at once.
    assert_eq!(register_endpoint(&env, BANK2, &payee.addr).await.0, StatusCode::OK);
    let id = e2e_id(2);
    let committed = as_payment(&initiate(&env, &id, "250.50").await, StatusCode::CREATED);
    assert_eq!(committed.status, Status::Committed);
    let prepare = payee.state.prepares.lock().unwrap().last().cloned().unwrap();
    assert_eq!((prepare.e2e_id.as_str(), prepare.payer_bank.as_str(), prepare.payer_bank_name.as_str()), (id.as_str(), BANK1, "FlexiBank North"));
    assert_eq!((prepare.account_number.as_str(), prepare.amount, prepare.currency.as_str()), ("200000000001", money("250.50"), "INR"));
    wait_for(&env, &id, Duration::from_secs(5), |p| p.payee_acked_at.is_some()).await;

    // The payer never acknowledged; once it registers an endpoint the driver pushes the decision to it too.
    assert_eq!(payer.decisions_for(&id), 0);
    assert_eq!(register_endpoint(&env, BANK1, &payer.addr).await.0, StatusCode::OK);
    let done = wait_for(&env, &id, Duration::from_secs(5), |p| p.payer_acked_at.is_some()).await;
    assert!(done.payee_acked_at.is_some());
    let to_payer: Vec<Status> = payer.state.decisions.lock().unwrap().iter().filter(|d| d.e2e_id == id).map(|d| d.status).collect();
    assert_eq!(to_payer, [Status::Committed]);
    // So did the impostor's abort, to bank 2's real listener now: every decision gets to both banks.
    wait_for(&env, &e2e_id(1), Duration::from_secs(5), |p| p.payer_acked_at.is_some() && p.payee_acked_at.is_some()).await;
    assert!(payee.decisions_for(&e2e_id(1)) >= 1);

    // A no carries its reason, and a malformed reason is still a no.
    *payee.state.no_reason.lock().unwrap() = Some("account_closed".into());
    let no = as_payment(&initiate(&env, &e2e_id(3), "1").await, StatusCode::CREATED);
    assert_eq!((no.status, no.reason.as_deref()), (Status::Aborted, Some("account_closed")));
    *payee.state.no_reason.lock().unwrap() = Some("Not A Reason!".into());
    let no = as_payment(&initiate(&env, &e2e_id(4), "1").await, StatusCode::CREATED);
    assert_eq!((no.status, no.reason.as_deref()), (Status::Aborted, Some(payments::REASON_PAYEE_REFUSED)));
    assert_invariants(&env).await;

    // reconcile: both ledgers mirror the positions once the banks say so.
    *payer.state.balance.lock().unwrap() = money("250.50");
    *payee.state.balance.lock().unwrap() = money("-250.50");
    for id in [e2e_id(3), e2e_id(4)] {
        wait_for(&env, &id, Duration::from_secs(5), |p| p.payer_acked_at.is_some() && p.payee_acked_at.is_some()).await;
    }
    let report = flexibank_switch::reconcile(&env.reconcile_config(2_000)).await.unwrap();
    let lines: Vec<_> = report.banks.iter().filter(|b| b.bank_id != BANK3).collect();
    assert!(lines.iter().all(|b| b.ok() && b.switch_open == 0), "{}", report.table());
    assert!(!report.ok(), "bank 3 has no endpoint: {}", report.table());
    *payee.state.balance.lock().unwrap() = money("-250.49");
    let report = flexibank_switch::reconcile(&env.reconcile_config(2_000)).await.unwrap();
    let payee_line = report.banks.iter().find(|b| b.bank_id == BANK2).unwrap();
    assert_eq!((payee_line.ok(), payee_line.difference), (false, Some(money("0.01"))), "{}", report.table());
    env.switch.take().unwrap().shutdown().await.unwrap();
}
