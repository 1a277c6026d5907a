//! The switch's payment state machine and liquidity positions, against a
//! real PostgreSQL (one node, its own cluster under var/test/), through
//! `flexibank_switch::payments` directly: no bank talks to the switch yet.
//! After every step the table-wide invariants are checked
//! (`payments::check_invariants`).

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use chrono::Utc;
use flexibank_consortium::keys::{AccountKind, KeyType, RegisterKey};
use flexibank_tests::ClusterGuard;
use flexibank_switch::{
    db::{self, Pool},
    directory,
    error::Code,
    payments::{self, Payment, PaymentRequest, Position, Status},
    DatabaseConfig,
};
use rust_decimal::Decimal;

const BANK1: &str = "00000001";
const BANK2: &str = "00000002";
const BANK3: &str = "00000003";
const PREPARE_TIMEOUT_MS: u64 = 30_000;

struct Env {
    pool: Pool,
    database: DatabaseConfig,
    db: tokio_postgres::Client,
    // Declared last: dropped after everything that talks to the database.
    _guard: ClusterGuard,
}

async fn setup() -> Env {
    // The switch logs an internal error's cause only: show it with the failure.
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let (guard, _dir, url) = flexibank_tests::single_node_database("switch-payments", "flexibank_switch").await;
    // Room for every task of the concurrency step at once, and patience for a loaded machine.
    let database = DatabaseConfig { pool_size: 40, connect_timeout_ms: 20_000, ..DatabaseConfig::new(url.clone()) };
    for (bank, name) in [(BANK1, "FlexiBank North"), (BANK2, "Harbour Bank"), (BANK3, "Quiet Bank")] {
        assert!(flexibank_switch::add_bank(&database, bank, name).await.unwrap());
    }
    let pool = db::pool(&database).unwrap();
    for (bank, account, email) in
        [(BANK1, "100000000001", "asha@north.example"), (BANK2, "200000000001", "ravi@harbour.example"), (BANK1, "100000000002", "own@north.example")]
    {
        let request = RegisterKey {
            key_type: KeyType::Email,
            value: Some(email.into()),
            account_number: account.into(),
            account_kind: AccountKind::Savings,
            holder_name: "Bina Mehta".into(),
        };
        directory::register(&pool, bank, &request).await.unwrap();
    }
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    Env { pool, database, db, _guard: guard }
}

fn money(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// A fresh e2e_id of `payer`'s (unique within the test run).
fn e2e_id(payer: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("E{payer}202611300250T{:010}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn request(e2e_id: &str, email: &str, amount: &str) -> PaymentRequest {
    PaymentRequest { e2e_id: e2e_id.into(), key_type: KeyType::Email, key_value: email.into(), amount: money(amount), currency: "INR".into(), memo: String::new() }
}

const TO_BANK2: &str = "ravi@harbour.example";
const TO_BANK1: &str = "asha@north.example";

impl Env {
    async fn fund(&self, bank: &str, prefunded: &str, cap: &str) {
        flexibank_switch::fund(&self.database, bank, prefunded, cap).await.unwrap();
    }

    async fn position(&self, bank: &str) -> Position {
        payments::positions(&self.pool).await.unwrap().into_iter().find(|p| p.bank_id == bank).unwrap()
    }

    async fn positions(&self) -> Vec<Position> {
        payments::positions(&self.pool).await.unwrap()
    }

    async fn assert_invariants(&self) {
        let violations = payments::check_invariants(&self.db).await.unwrap();
        assert!(violations.is_empty(), "{violations:#?}");
    }

    async fn initiate(&self, payer: &str, request: &PaymentRequest) -> Result<Payment, flexibank_switch::error::SwitchError> {
        payments::initiate(&self.pool, PREPARE_TIMEOUT_MS, payer, request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_and_liquidity_at_the_switch() {
    let env = setup().await;
    env.fund(BANK1, "1000", "500").await;
    env.fund(BANK2, "1000", "0").await;
    env.assert_invariants().await;
    happy_path(&env).await;
    refusals(&env).await;
    liquidity(&env).await;
    deadline(&env).await;
    decisions_and_acknowledgements(&env).await;
    funding(&env).await;
    concurrency(&env).await;
}

async fn happy_path(env: &Env) {
    let before = env.positions().await;
    let id = e2e_id(BANK1);
    let first = env.initiate(BANK1, &request(&id, TO_BANK2, "250.50")).await.unwrap();
    assert_eq!(first.status, Status::Initiated);
    assert_eq!((first.payee_bank.as_str(), first.payee_account_number.as_str()), (BANK2, "200000000001"));
    assert_eq!(first.amount, money("250.50"));
    assert!(first.deadline > first.created_at && first.decided_at.is_none() && first.reason.is_none());
    assert_eq!(env.position(BANK1).await.pending_out, money("250.50"), "reserved");
    env.assert_invariants().await;
    // Open for both banks: undecided (`/metrics`, `reconcile`).
    let open = |counts: Vec<(String, i64)>, bank: &str| counts.iter().find(|(b, _)| b == bank).map_or(-1, |(_, n)| *n);
    let counts = payments::open_counts(&env.pool).await.unwrap();
    assert_eq!((open(counts.clone(), BANK1), open(counts, BANK2)), (1, 1));

    // A repeat (the payer's retry) answers the first result and reserves nothing more.
    let again = env.initiate(BANK1, &request(&id, TO_BANK2, "250.50")).await.unwrap();
    assert_eq!(again, first);
    // An email key is compared case-insensitively: still the same payment.
    let again = env.initiate(BANK1, &request(&id, "Ravi@Harbour.example", "250.5")).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(env.position(BANK1).await.pending_out, money("250.50"));
    // The same e2e_id for another amount or payee is another payment: refused, nothing changes.
    for other in [request(&id, TO_BANK2, "250.51"), request(&id, "nobody@else.example", "250.50")] {
        let refused = env.initiate(BANK1, &other).await.unwrap_err();
        assert_eq!(refused.code, Code::E2eIdReused, "{refused:?}");
    }
    // Only the payee votes; anyone else learns nothing.
    assert_eq!(payments::record_vote(&env.pool, &id, BANK1, true, None).await.unwrap_err().code, Code::NotFound);
    assert_eq!(payments::record_vote(&env.pool, &id, BANK3, true, None).await.unwrap_err().code, Code::NotFound);

    let committed = payments::record_vote(&env.pool, &id, BANK2, true, None).await.unwrap();
    assert_eq!(committed.status, Status::Committed);
    assert!(committed.decided_at.is_some() && committed.reason.is_none());
    let (payer, payee) = (env.position(BANK1).await, env.position(BANK2).await);
    let was = |bank: &str| before.iter().find(|p| p.bank_id == bank).unwrap().clone();
    assert_eq!(payer.position, was(BANK1).position - money("250.50"));
    assert_eq!(payee.position, was(BANK2).position + money("250.50"));
    assert_eq!(payer.pending_out, Decimal::ZERO, "the reservation became the position");
    env.assert_invariants().await;
    // Still open for both: decided, acknowledged by neither.
    let counts = payments::open_counts(&env.pool).await.unwrap();
    assert_eq!((open(counts.clone(), BANK1), open(counts, BANK2)), (1, 1));

    // Repeats of the vote (yes or even no) and of the initiation answer the decision and move nothing.
    assert_eq!(payments::record_vote(&env.pool, &id, BANK2, true, None).await.unwrap(), committed);
    assert_eq!(payments::record_vote(&env.pool, &id, BANK2, false, Some("changed_mind")).await.unwrap(), committed);
    assert_eq!(env.initiate(BANK1, &request(&id, TO_BANK2, "250.50")).await.unwrap(), committed);
    assert_eq!(env.position(BANK1).await, payer);
    assert_eq!(env.position(BANK2).await, payee);
    env.assert_invariants().await;
}

async fn refusals(env: &Env) {
    let before = env.positions().await;
    let unknown = env.initiate(BANK1, &request(&e2e_id(BANK1), "nobody@nowhere.example", "10")).await.unwrap_err();
    assert_eq!(unknown.code, Code::NotFound);
    let on_us = env.initiate(BANK1, &request(&e2e_id(BANK1), "own@north.example", "10")).await.unwrap_err();
    assert_eq!(on_us.code, Code::SameBank);
    // An e2e_id in another bank's name, a bad amount or currency: 400 before anything is read.
    let bad = [
        (BANK2, request(&e2e_id(BANK1), TO_BANK1, "10")),
        (BANK1, request("E0000000120261130", TO_BANK2, "10")),
        (BANK1, request(&e2e_id(BANK1), TO_BANK2, "0")),
        (BANK1, request(&e2e_id(BANK1), TO_BANK2, "0.001")),
        (BANK1, PaymentRequest { currency: "USD".into(), ..request(&e2e_id(BANK1), TO_BANK2, "10") }),
    ];
    for (payer, request) in bad {
        let refused = env.initiate(payer, &request).await.unwrap_err();
        assert_eq!(refused.code, Code::ValidationFailed, "{request:?}: {refused:?}");
    }
    let no_reason = payments::record_vote(&env.pool, &e2e_id(BANK1), BANK2, false, Some("Not A Reason")).await.unwrap_err();
    assert_eq!(no_reason.code, Code::ValidationFailed);
    let recorded: i64 = env.db.query_one("SELECT count(*) FROM payments WHERE status <> 'committed'", &[]).await.unwrap().get(0);
    assert_eq!(recorded, 0, "a refusal records nothing");
    assert_eq!(env.positions().await, before);
    env.assert_invariants().await;
}

async fn liquidity(env: &Env) {
    env.fund(BANK2, "100", "0").await;
    let bank2 = env.position(BANK2).await;
    // Whatever BANK2's position is by now, 150 more than it may send.
    let too_much = (bank2.available() + money("150")).to_string();
    let id = e2e_id(BANK2);
    let aborted = env.initiate(BANK2, &request(&id, TO_BANK1, &too_much)).await.unwrap();
    assert_eq!((aborted.status, aborted.reason.as_deref()), (Status::Aborted, Some(payments::REASON_LIQUIDITY)));
    assert!(aborted.decided_at.is_some());
    assert_eq!(env.position(BANK2).await, bank2, "reserved nothing");
    assert_eq!(env.initiate(BANK2, &request(&id, TO_BANK1, &too_much)).await.unwrap(), aborted, "a repeat answers the same");
    // A yes for a payment aborted already changes nothing.
    assert_eq!(payments::record_vote(&env.pool, &id, BANK1, true, None).await.unwrap(), aborted);
    assert_eq!(env.position(BANK2).await, bank2);
    env.assert_invariants().await;

    // The exact available amount passes; then nothing more does, until it is decided.
    let exact = env.initiate(BANK2, &request(&e2e_id(BANK2), TO_BANK1, &bank2.available().to_string())).await.unwrap();
    assert_eq!(exact.status, Status::Initiated);
    let one_more = env.initiate(BANK2, &request(&e2e_id(BANK2), TO_BANK1, "0.01")).await.unwrap();
    assert_eq!(one_more.reason.as_deref(), Some(payments::REASON_LIQUIDITY));
    env.assert_invariants().await;
    // The payee's no aborts and releases the reservation.
    let refused = payments::record_vote(&env.pool, &exact.e2e_id, BANK1, false, Some("account_closed")).await.unwrap();
    assert_eq!((refused.status, refused.reason.as_deref()), (Status::Aborted, Some("account_closed")));
    assert_eq!(env.position(BANK2).await, bank2, "released, and nothing moved");
    let default_reason = env.initiate(BANK2, &request(&e2e_id(BANK2), TO_BANK1, "1")).await.unwrap();
    let refused = payments::record_vote(&env.pool, &default_reason.e2e_id, BANK1, false, None).await.unwrap();
    assert_eq!(refused.reason.as_deref(), Some(payments::REASON_PAYEE_REFUSED));
    assert_eq!(env.position(BANK2).await, bank2);
    env.assert_invariants().await;

    // With prefunded 100 and cap 0 from a zero position, 150 is too much and reserves nothing.
    flexibank_switch::add_bank(&env.database, "00000004", "Fresh Bank").await.unwrap();
    env.fund("00000004", "100", "0").await;
    let id = e2e_id("00000004");
    let aborted = env.initiate("00000004", &request(&id, TO_BANK1, "150")).await.unwrap();
    assert_eq!((aborted.status, aborted.reason.as_deref()), (Status::Aborted, Some(payments::REASON_LIQUIDITY)));
    assert_eq!(env.position("00000004").await.pending_out, Decimal::ZERO);
    env.fund(BANK2, "1000", "0").await;
    env.assert_invariants().await;
}

async fn deadline(env: &Env) {
    let before = env.positions().await;
    let late = env.initiate(BANK1, &request(&e2e_id(BANK1), TO_BANK2, "40")).await.unwrap();
    let on_time = env.initiate(BANK1, &request(&e2e_id(BANK1), TO_BANK2, "41")).await.unwrap();
    let committed = env.initiate(BANK1, &request(&e2e_id(BANK1), TO_BANK2, "42")).await.unwrap();
    payments::record_vote(&env.pool, &committed.e2e_id, BANK2, true, None).await.unwrap();
    // Past its deadline (and the committed one too: a decided payment is never touched).
    env.db
        .execute("UPDATE payments SET deadline = created_at + interval '1 millisecond' WHERE e2e_id IN ($1, $2)", &[&late.e2e_id, &committed.e2e_id])
        .await
        .unwrap();
    assert_eq!(payments::abort_expired(&env.pool, Utc::now()).await.unwrap(), 1);
    assert_eq!(payments::abort_expired(&env.pool, Utc::now()).await.unwrap(), 0, "nothing twice");
    let aborted = payments::decision(&env.pool, BANK1, &late.e2e_id).await.unwrap();
    assert_eq!((aborted.status, aborted.reason.as_deref()), (Status::Aborted, Some(payments::REASON_TIMEOUT)));
    assert_eq!(payments::decision(&env.pool, BANK1, &committed.e2e_id).await.unwrap().status, Status::Committed);
    assert_eq!(env.position(BANK1).await.pending_out, money("41"), "only the one still in time is reserved");
    // A late yes does not commit it.
    let positions = env.positions().await;
    assert_eq!(payments::record_vote(&env.pool, &late.e2e_id, BANK2, true, None).await.unwrap(), aborted);
    assert_eq!(env.positions().await, positions);
    env.assert_invariants().await;

    // A yes that arrives after the deadline but before the sweep decides the abort itself.
    let tiny = payments::initiate(&env.pool, 1, BANK1, &request(&e2e_id(BANK1), TO_BANK2, "43")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let vote = payments::record_vote(&env.pool, &tiny.e2e_id, BANK2, true, None).await.unwrap();
    assert_eq!((vote.status, vote.reason.as_deref()), (Status::Aborted, Some(payments::REASON_TIMEOUT)));
    // The sweep's clock comes from its caller: a time in the future expires the one left.
    assert_eq!(payments::abort_expired(&env.pool, Utc::now() + chrono::Duration::seconds(60)).await.unwrap(), 1);
    assert_eq!(payments::decision(&env.pool, BANK2, &on_time.e2e_id).await.unwrap().reason.as_deref(), Some(payments::REASON_TIMEOUT));
    let after = env.positions().await;
    let moved = |bank: &str| after.iter().find(|p| p.bank_id == bank).unwrap().position - before.iter().find(|p| p.bank_id == bank).unwrap().position;
    assert_eq!((moved(BANK1), moved(BANK2)), (money("-42"), money("42")), "only the committed one moved");
    assert_eq!(env.position(BANK1).await.pending_out, Decimal::ZERO);
    env.assert_invariants().await;
}

async fn decisions_and_acknowledgements(env: &Env) {
    let pending = env.initiate(BANK1, &request(&e2e_id(BANK1), TO_BANK2, "5")).await.unwrap();
    // The payer and the payee may ask; a third bank, or about no such payment, gets the same 404.
    assert_eq!(payments::decision(&env.pool, BANK1, &pending.e2e_id).await.unwrap().status, Status::Initiated);
    assert_eq!(payments::decision(&env.pool, BANK2, &pending.e2e_id).await.unwrap(), pending);
    for (bank, id) in [(BANK3, pending.e2e_id.clone()), ("99999999", pending.e2e_id.clone()), (BANK1, e2e_id(BANK1))] {
        let refused = payments::decision(&env.pool, bank, &id).await.unwrap_err();
        assert_eq!(refused.code, Code::NotFound, "{bank} {id}");
        assert_eq!(payments::acknowledge(&env.pool, bank, &id).await.unwrap_err().code, Code::NotFound);
    }
    assert_eq!(payments::acknowledge(&env.pool, BANK1, &pending.e2e_id).await.unwrap_err().code, Code::NotDecided);
    assert!(!payments::unacknowledged(&env.pool).await.unwrap().iter().any(|p| p.e2e_id == pending.e2e_id), "undecided is not for the re-sender");

    let committed = payments::record_vote(&env.pool, &pending.e2e_id, BANK2, true, None).await.unwrap();
    assert_eq!(payments::decision(&env.pool, BANK1, &pending.e2e_id).await.unwrap(), committed);
    let listed = |list: Vec<Payment>| list.into_iter().find(|p| p.e2e_id == pending.e2e_id);
    assert!(listed(payments::unacknowledged(&env.pool).await.unwrap()).is_some());
    let acked = payments::acknowledge(&env.pool, BANK2, &pending.e2e_id).await.unwrap();
    assert!(acked.payee_acked_at.is_some() && acked.payer_acked_at.is_none());
    assert_eq!(payments::acknowledge(&env.pool, BANK2, &pending.e2e_id).await.unwrap(), acked, "a repeat keeps the first time");
    assert!(listed(payments::unacknowledged(&env.pool).await.unwrap()).is_some(), "the payer has not acknowledged yet");
    let acked = payments::acknowledge(&env.pool, BANK1, &pending.e2e_id).await.unwrap();
    assert!(acked.payer_acked_at.is_some() && acked.payee_acked_at.is_some());
    assert!(listed(payments::unacknowledged(&env.pool).await.unwrap()).is_none());
    // A payment refused for liquidity owes the payee nothing (it was never asked), the payer the answer.
    let unacked = payments::unacknowledged(&env.pool).await.unwrap();
    for p in unacked.iter().filter(|p| p.reason.as_deref() == Some(payments::REASON_LIQUIDITY)) {
        assert!(p.payee_acked_at.is_some() && p.payer_acked_at.is_none(), "{p:?}");
    }
    assert!(unacked.iter().all(|p| p.status.is_decided()));
    env.assert_invariants().await;
}

async fn funding(env: &Env) {
    let reserved = env.initiate(BANK2, &request(&e2e_id(BANK2), TO_BANK1, "600")).await.unwrap();
    assert_eq!(reserved.status, Status::Initiated);
    let before = env.position(BANK2).await;
    // Lowering the liquidity below what is reserved is refused, and so is anything but a plain amount.
    let too_low = (before.pending_out - before.position - money("0.01")).to_string();
    assert!(flexibank_switch::fund(&env.database, BANK2, &too_low, "0").await.is_err());
    for (prefunded, cap) in [("-1", "0"), ("1e3", "0"), ("10.001", "0"), ("10", ""), ("10", " 5")] {
        assert!(flexibank_switch::fund(&env.database, BANK2, prefunded, cap).await.is_err(), "{prefunded:?} {cap:?}");
    }
    assert!(flexibank_switch::fund(&env.database, "00000099", "10", "0").await.is_err(), "no such bank");
    assert_eq!(env.position(BANK2).await, before);
    payments::record_vote(&env.pool, &reserved.e2e_id, BANK1, false, None).await.unwrap();
    env.assert_invariants().await;
}

/// 32 tasks initiating and voting at once, in both directions, with more
/// sent from BANK1 than its liquidity and all it may receive can cover.
async fn concurrency(env: &Env) {
    const TASKS: usize = 32;
    const AMOUNT: &str = "40";
    // BANK1 sends 24 payments of 40 with 150 of liquidity plus what 8 payments from BANK2 bring: at most 11 commit.
    env.db.batch_execute("UPDATE payments SET payer_acked_at = decided_at, payee_acked_at = decided_at WHERE decided_at IS NOT NULL").await.unwrap();
    let start = env.positions().await;
    let net_of = |bank: &str| start.iter().find(|p| p.bank_id == bank).unwrap().position;
    let prefunded_1 = (money("100") - net_of(BANK1)).max(Decimal::ZERO);
    env.fund(BANK1, &prefunded_1.to_string(), "50").await;
    env.fund(BANK2, &(money("100") - net_of(BANK2)).max(Decimal::ZERO).to_string(), "0").await;
    let committed_before: i64 = env.db.query_one("SELECT count(*) FROM payments WHERE status = 'committed'", &[]).await.unwrap().get(0);

    // A sweeper races the votes: every eighth payment BANK1 sends has a 1 ms prepare timeout,
    // so its vote and the sweep both try to decide it, and exactly one may.
    let sweeping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sweeper = {
        let (pool, sweeping) = (env.pool.clone(), sweeping.clone());
        tokio::spawn(async move {
            let mut swept = 0;
            while sweeping.load(Ordering::Relaxed) {
                swept += payments::abort_expired(&pool, Utc::now()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            swept
        })
    };
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let pool = env.pool.clone();
            let (payer, payee, key) = if n % 4 == 3 { (BANK2, BANK1, TO_BANK1) } else { (BANK1, BANK2, TO_BANK2) };
            let timeout_ms = if n % 8 == 1 { 1 } else { PREPARE_TIMEOUT_MS };
            let request = request(&e2e_id(payer), key, AMOUNT);
            tokio::spawn(async move {
                let first = payments::initiate(&pool, timeout_ms, payer, &request).await.unwrap();
                // The payer's retry (its first answer lost) is answered the same, whatever happened since.
                let again = payments::initiate(&pool, timeout_ms, payer, &request).await.unwrap();
                assert!(again == first || (first.status == Status::Initiated && again.status.is_decided()), "{first:?} then {again:?}");
                if first.status.is_decided() {
                    return first;
                }
                if timeout_ms == 1 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let yes = n % 5 != 0;
                let decided = payments::record_vote(&pool, &first.e2e_id, payee, yes, None).await.unwrap();
                assert_eq!(payments::record_vote(&pool, &first.e2e_id, payee, !yes, None).await.unwrap(), decided, "the first decision stands");
                if timeout_ms == 1 {
                    assert_eq!((decided.status, decided.reason.as_deref()), (Status::Aborted, Some(payments::REASON_TIMEOUT)), "too late to commit");
                }
                decided
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(TASKS);
    for task in tasks {
        outcomes.push(task.await.expect("payment task"));
    }
    sweeping.store(false, Ordering::Relaxed);
    let swept = sweeper.await.expect("sweeper task");
    let timed_out = outcomes.iter().filter(|p| p.reason.as_deref() == Some(payments::REASON_TIMEOUT)).count();
    // The tiny-timeout ones the cap let through: each timed out, by its vote or by the sweep.
    let tiny = (0..TASKS).filter(|n| n % 8 == 1).count()
        - outcomes.iter().skip(1).step_by(8).filter(|p| p.reason.as_deref() == Some(payments::REASON_LIQUIDITY)).count();
    assert_eq!(timed_out, tiny, "{outcomes:#?}");
    assert!(swept <= u64::try_from(timed_out).unwrap(), "swept {swept}, timed out {timed_out}");
    let count = |f: &dyn Fn(&Payment) -> bool| outcomes.iter().filter(|p| f(p)).count();
    let exhausted = count(&|p| p.reason.as_deref() == Some(payments::REASON_LIQUIDITY));
    let committed = count(&|p| p.status == Status::Committed);
    assert!(exhausted > 0, "the cap was hit: {outcomes:#?}");
    assert!(committed > 0, "and some went through");
    assert_eq!(count(&|p| p.status.is_decided()), TASKS, "every one decided");

    env.assert_invariants().await;
    let positions = env.positions().await;
    assert_eq!(positions.iter().map(|p| p.position).sum::<Decimal>(), Decimal::ZERO);
    assert!(positions.iter().all(|p| p.pending_out == Decimal::ZERO), "no reservation left: {positions:#?}");
    assert!(positions.iter().all(|p| p.available() >= Decimal::ZERO), "no cap exceeded: {positions:#?}");
    // Every committed payment moved the positions exactly once: recompute them from the payments.
    let recomputed = env
        .db
        .query(
            "SELECT b.id, coalesce(sum(CASE WHEN p.payee_bank = b.id THEN p.amount ELSE -p.amount END), 0) FROM banks b
             LEFT JOIN payments p ON p.status = 'committed' AND b.id IN (p.payer_bank, p.payee_bank) GROUP BY b.id ORDER BY b.id",
            &[],
        )
        .await
        .unwrap();
    let recomputed: Vec<(String, Decimal)> = recomputed.iter().map(|r| (r.get(0), r.get(1))).collect();
    let held: Vec<(String, Decimal)> = positions.iter().map(|p| (p.bank_id.clone(), p.position)).collect();
    assert_eq!(recomputed, held);
    let committed_now: i64 = env.db.query_one("SELECT count(*) FROM payments WHERE status = 'committed'", &[]).await.unwrap().get(0);
    assert_eq!(committed_now - committed_before, i64::try_from(committed).unwrap());
    // Each committed payment's amount, once, on each side.
    let moved: Decimal = outcomes.iter().filter(|p| p.status == Status::Committed && p.payer_bank == BANK1).map(|p| p.amount).sum::<Decimal>()
        - outcomes.iter().filter(|p| p.status == Status::Committed && p.payer_bank == BANK2).map(|p| p.amount).sum::<Decimal>();
    assert_eq!(net_of(BANK1) - positions.iter().find(|p| p.bank_id == BANK1).unwrap().position, moved);
    // Every decision now awaits both banks' acknowledgement, except a payee never asked.
    let unacked = payments::unacknowledged(&env.pool).await.unwrap();
    assert_eq!(unacked.len(), TASKS);
}
