//! Payments at the switch over its HTTPS API: a real PostgreSQL (one node,
//! its own cluster under var/test/), the switch in-process on an ephemeral
//! port, and banks speaking real mutual TLS. Each route acts for the bank its
//! certificate names only; after the steps the table-wide invariants hold.

use flexibank_switch::{
    payments::{self, Status},
    Limits,
};
use flexibank_tests::switch::{as_payment, assert_problem, send, SwitchUnderTest};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const BANK1: &str = "00000001";
const BANK2: &str = "00000002";
/// A member that is neither payer nor payee of the payments here.
const BANK3: &str = "00000003";
const TO_BANK2: &str = "ravi@harbour.example";

struct Env(SwitchUnderTest);

impl std::ops::Deref for Env {
    type Target = SwitchUnderTest;
    fn deref(&self) -> &SwitchUnderTest {
        &self.0
    }
}

impl std::ops::DerefMut for Env {
    fn deref_mut(&mut self) -> &mut SwitchUnderTest {
        &mut self.0
    }
}

impl Env {
    async fn assert_invariants(&self) {
        let violations = payments::check_invariants(&self.db).await.unwrap();
        assert!(violations.is_empty(), "{violations:#?}");
    }

    /// The payment as stored, read past the API.
    async fn stored_status(&self, e2e_id: &str) -> String {
        self.db.query_one("SELECT status FROM payments WHERE e2e_id = $1", &[&e2e_id]).await.unwrap().get(0)
    }
}

async fn setup() -> Env {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let members = [(BANK1, "FlexiBank North"), (BANK2, "Harbour Bank"), (BANK3, "Quiet Bank")];
    let switch = SwitchUnderTest::start("switch-http-payments", &members, Limits::default()).await;
    let pool = switch.switch.as_ref().expect("running").db.clone();
    // Bank 1 holds 1000 and no cap: a payment of more is refused for liquidity.
    payments::fund(&pool, BANK1, money("1000"), Decimal::ZERO).await.unwrap();
    payments::fund(&pool, BANK2, money("1000"), Decimal::ZERO).await.unwrap();
    Env(switch)
}

fn money(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn payment_body(e2e_id: &str, amount: &str) -> Value {
    json!({"e2e_id": e2e_id, "key_type": "email", "key_value": TO_BANK2, "amount": amount, "currency": "INR"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_over_https_with_mutual_tls() {
    let mut env = setup().await;
    let (bank1, bank2, bank3) = (env.bank(BANK1), env.bank(BANK2), env.bank(BANK3));
    let key = json!({"type": "email", "value": TO_BANK2, "account_number": "200000000001", "account_kind": "savings", "holder_name": "Ravi Rao"});
    assert_eq!(send(bank2.post(env.url(&format!("/switch/v1/banks/{BANK2}/keys"))).json(&key)).await.0, StatusCode::CREATED);
    let payments1 = env.url(&format!("/switch/v1/banks/{BANK1}/payments"));

    // Bank 1 pays bank 2's key.
    let id = format!("E{BANK1}202611300250T0000000001");
    let first = as_payment(&send(bank1.post(&payments1).json(&payment_body(&id, "250.50"))).await, StatusCode::CREATED);
    assert_eq!((first.status, first.payer_bank.as_str(), first.payee_bank.as_str()), (Status::Initiated, BANK1, BANK2));
    assert_eq!((first.amount, first.payee_account_number.as_str()), (money("250.50"), "200000000001"));
    env.assert_invariants().await;
    // Initiating as bank 2 with bank 1's certificate: refused before anything changes.
    let answer = send(bank1.post(env.url(&format!("/switch/v1/banks/{BANK2}/payments"))).json(&payment_body(&format!("E{BANK2}202611300250T0000000001"), "1")));
    assert_problem(&answer.await, StatusCode::FORBIDDEN, "forbidden");
    // Unknown fields and malformed bodies are 400; an oversized one 413.
    let mut extra = payment_body(&format!("E{BANK1}202611300250T0000000002"), "1");
    extra["payer"] = json!(BANK1);
    assert_problem(&send(bank1.post(&payments1).json(&extra)).await, StatusCode::BAD_REQUEST, "validation_failed");
    let answer = send(bank1.post(&payments1).header("content-type", "application/json").body("{not json")).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "validation_failed");
    let answer = send(bank1.post(&payments1).header("content-type", "application/json").body(vec![b' '; 64 * 1024])).await;
    assert_problem(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // Only the payee votes: bank 1's certificate on bank 2's path is 403, on its own path 404 (it is not the payee).
    let vote_as = |bank: &str| env.url(&format!("/switch/v1/banks/{bank}/payments/{id}/vote"));
    assert_problem(&send(bank1.post(vote_as(BANK2)).json(&json!({"yes": true}))).await, StatusCode::FORBIDDEN, "forbidden");
    assert_problem(&send(bank1.post(vote_as(BANK1)).json(&json!({"yes": true}))).await, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(env.stored_status(&id).await, "initiated", "nothing changed");
    // Acknowledging before the decision is 409.
    assert_problem(&send(bank1.post(env.url(&format!("/switch/v1/banks/{BANK1}/payments/{id}/ack")))).await, StatusCode::CONFLICT, "not_decided");
    assert_problem(&send(bank2.post(vote_as(BANK2)).json(&json!({"yes": true, "why": "x"}))).await, StatusCode::BAD_REQUEST, "validation_failed");
    let committed = as_payment(&send(bank2.post(vote_as(BANK2)).json(&json!({"yes": true}))).await, StatusCode::OK);
    assert_eq!((committed.status, committed.reason.as_deref()), (Status::Committed, None));
    // A repeat of the vote (even a no) answers the decision unchanged.
    assert_eq!(as_payment(&send(bank2.post(vote_as(BANK2)).json(&json!({"yes": false}))).await, StatusCode::OK), committed);
    env.assert_invariants().await;

    // Both banks read the decision; a third member cannot tell it exists.
    for (client, bank) in [(&bank1, BANK1), (&bank2, BANK2)] {
        let mut read = as_payment(&send(client.get(env.url(&format!("/switch/v1/banks/{bank}/payments/{id}")))).await, StatusCode::OK);
        // Only the payer is told whom it paid (masked); the payee bank needs neither name.
        if bank == BANK1 {
            assert_eq!(read.payee_bank_name.as_deref(), Some("Harbour Bank"));
            assert!(read.payee_holder_name_masked.as_deref().is_some_and(|name| name.contains('•')), "{read:?}");
            (read.payee_bank_name, read.payee_holder_name_masked) = (None, None);
        } else {
            assert_eq!((&read.payee_bank_name, &read.payee_holder_name_masked), (&None, &None));
        }
        assert_eq!(read, committed);
    }
    assert_problem(&send(bank3.get(env.url(&format!("/switch/v1/banks/{BANK3}/payments/{id}")))).await, StatusCode::NOT_FOUND, "not_found");
    assert_problem(&send(bank3.get(env.url(&format!("/switch/v1/banks/{BANK1}/payments/{id}")))).await, StatusCode::FORBIDDEN, "forbidden");

    // Bank 1 acknowledges (a repeat keeps the first time); bank 3 cannot.
    let ack = env.url(&format!("/switch/v1/banks/{BANK1}/payments/{id}/ack"));
    let acked = as_payment(&send(bank1.post(&ack)).await, StatusCode::OK);
    assert!(acked.payer_acked_at.is_some() && acked.payee_acked_at.is_none(), "{acked:?}");
    assert_eq!(as_payment(&send(bank1.post(&ack)).await, StatusCode::OK), acked);
    assert_problem(&send(bank3.post(env.url(&format!("/switch/v1/banks/{BANK3}/payments/{id}/ack")))).await, StatusCode::NOT_FOUND, "not_found");

    // A repeat of the initiation answers the same payment (as it now stands), moving nothing.
    let again = as_payment(&send(bank1.post(&payments1).json(&payment_body(&id, "250.50"))).await, StatusCode::CREATED);
    assert_eq!(again, acked);
    assert_problem(&send(bank1.post(&payments1).json(&payment_body(&id, "250.51"))).await, StatusCode::CONFLICT, "e2e_id_reused");
    env.assert_invariants().await;

    // More than bank 1 has left: 409 liquidity_exhausted, and the same again on a repeat.
    let big = format!("E{BANK1}202611300250T0000000003");
    for _ in 0..2 {
        assert_problem(&send(bank1.post(&payments1).json(&payment_body(&big, "5000"))).await, StatusCode::CONFLICT, payments::REASON_LIQUIDITY);
    }
    assert_eq!(env.stored_status(&big).await, "aborted");
    let refused = as_payment(&send(bank1.get(env.url(&format!("/switch/v1/banks/{BANK1}/payments/{big}")))).await, StatusCode::OK);
    assert_eq!(refused.reason.as_deref(), Some(payments::REASON_LIQUIDITY));

    // A no from the payee aborts with its reason; the payer's reservation goes.
    let refused_id = format!("E{BANK1}202611300250T0000000004");
    assert_eq!(send(bank1.post(&payments1).json(&payment_body(&refused_id, "10"))).await.0, StatusCode::CREATED);
    let no = send(bank2.post(env.url(&format!("/switch/v1/banks/{BANK2}/payments/{refused_id}/vote"))).json(&json!({"yes": false, "reason": "account_closed"})));
    let aborted = as_payment(&no.await, StatusCode::OK);
    assert_eq!((aborted.status, aborted.reason.as_deref()), (Status::Aborted, Some("account_closed")));

    env.assert_invariants().await;
    env.switch.take().unwrap().shutdown().await.unwrap();
}
