//! What moves payments forward when no request does: every
//! `driver_interval_ms` the driver aborts payments past their deadline and
//! pushes each decision again to every bank (payer and payee) that has not
//! acknowledged it. Pushes happen the moment a decision exists (see `http`);
//! this only recovers what a crash, a restart or a bank outage interrupted,
//! so it waits `resend_after_ms` before pushing a decision again.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use deadpool_postgres::Pool;
use flexibank_consortium::protocol::Decision;
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    batch::Batcher,
    calls::{BankAddr, CallError, Calls},
    config::Limits,
    payments::{self, DueDecision},
};

/// Bounds on the configuration: the loop neither spins nor sleeps for minutes.
const MIN_INTERVAL_MS: u64 = 10;
const MAX_INTERVAL_MS: u64 = 60_000;
const MAX_CONCURRENT_RESENDS: usize = 256;
/// (payment, bank) pairs one round pushes at most.
const MAX_RESENDS_PER_ROUND: i64 = 1_000;
/// A bank that keeps failing is named at warn at most this often; the failures in between are counted.
const WARN_EVERY: Duration = Duration::from_secs(10);

pub struct Driver {
    pool: Pool,
    batcher: Arc<Batcher>,
    calls: Arc<Calls>,
    interval: Duration,
    resend_after_ms: u64,
    max_concurrent: usize,
    warnings: Arc<Warnings>,
}

impl Driver {
    pub fn new(pool: Pool, batcher: Arc<Batcher>, calls: Arc<Calls>, warnings: Arc<Warnings>, limits: &Limits) -> Driver {
        Driver {
            pool,
            batcher,
            calls,
            interval: Duration::from_millis(limits.driver_interval_ms.clamp(MIN_INTERVAL_MS, MAX_INTERVAL_MS)),
            resend_after_ms: limits.resend_after_ms,
            max_concurrent: limits.max_concurrent_resends.clamp(1, MAX_CONCURRENT_RESENDS),
            warnings,
        }
    }

    /// Runs rounds until `stop` turns true (or its sender goes).
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            // A round in progress finishes unless stopped: each push is bounded by the call timeout.
            tokio::select! {
                _ = self.round() => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn round(&self) {
        self.abort_expired().await;
        match payments::due_decisions(&self.pool, self.resend_after_ms, MAX_RESENDS_PER_ROUND).await {
            Ok(due) => self.resend(due).await,
            Err(e) => self.warnings.step_failed("listing unacknowledged decisions", &e.detail),
        }
    }

    async fn abort_expired(&self) {
        loop {
            match payments::abort_expired(&self.pool, chrono::Utc::now()).await {
                Ok(aborted) if aborted >= payments::MAX_EXPIRED_PER_CALL as u64 => continue,
                Ok(_) => return,
                Err(e) => {
                    self.warnings.step_failed("aborting expired payments", &e.detail);
                    return;
                }
            }
        }
    }

    /// Pushes each due decision, `max_concurrent` at once. After a bank fails
    /// once in a round its other pushes wait for the next round: a bank that
    /// is down costs one timeout per round, not one per payment.
    async fn resend(&self, due: Vec<DueDecision>) {
        let permits = Arc::new(Semaphore::new(self.max_concurrent));
        let failed: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut tasks = JoinSet::new();
        for item in due {
            let permit = permits.clone().acquire_owned().await.expect("never closed");
            if failed.lock().expect("failed lock").contains(&item.bank_id) {
                continue;
            }
            let (batcher, calls, warnings, failed) = (self.batcher.clone(), self.calls.clone(), self.warnings.clone(), failed.clone());
            tasks.spawn(async move {
                let bank = BankAddr { bank_id: item.bank_id.clone(), addr: item.interbank_addr.clone() };
                let decision = Decision { e2e_id: item.e2e_id.clone(), status: item.status, reason: item.reason.clone() };
                if let Err(e) = push_decision(&batcher, &calls, &bank, &decision).await {
                    failed.lock().expect("failed lock").insert(bank.bank_id.clone());
                    warnings.call_failed(&decision.e2e_id, &bank.bank_id, "pushing the decision (pushed again next round)", &e);
                }
                drop(permit);
            });
            // Reap finished tasks as we go: the set stays bounded by the permits.
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Why a push did not end in an acknowledgement.
#[derive(Debug)]
pub enum PushError {
    Call(CallError),
    /// The bank applied it but the acknowledgement was not recorded (the next round pushes again; the bank answers the same).
    Record(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Call(e) => write!(f, "{e}"),
            PushError::Record(e) => write!(f, "recording the acknowledgement: {e}"),
        }
    }
}

/// Step 6 for one bank: the decision, and on its 200 the bank's acknowledgement.
pub async fn push_decision(batcher: &Batcher, calls: &Calls, bank: &BankAddr, decision: &Decision) -> Result<(), PushError> {
    calls.send_decision(bank, decision).await.map_err(PushError::Call)?;
    let ack = payments::Command::Ack { bank: bank.bank_id.clone(), e2e_id: decision.e2e_id.clone() };
    batcher.submit(ack).await.and_then(payments::answered).map_err(|e| PushError::Record(e.detail))?;
    tracing::debug!(e2e_id = %decision.e2e_id, bank = %bank.bank_id, "decision acknowledged");
    Ok(())
}

/// Per subject (a bank, or one of the driver's own steps): when it was last
/// logged at warn, and the failures since. A bank that is down for an hour
/// must not write a line per payment per round.
#[derive(Default)]
pub struct Warnings {
    subjects: Mutex<HashMap<String, (Option<Instant>, u64)>>,
}

impl Warnings {
    /// `Some(failures suppressed since the last warn)` when this one may be logged at warn.
    fn allow(&self, subject: &str) -> Option<u64> {
        let now = Instant::now();
        let mut subjects = self.subjects.lock().expect("warnings lock");
        // Subjects are banks (registered by hand) and a few fixed steps: this map stays small.
        let entry = subjects.entry(subject.to_string()).or_insert((None, 0));
        if entry.0.is_none_or(|last| now.duration_since(last) >= WARN_EVERY) {
            let suppressed = entry.1;
            *entry = (Some(now), 0);
            Some(suppressed)
        } else {
            entry.1 += 1;
            None
        }
    }

    /// A call to `bank` about `e2e_id` failed (`what`: the message).
    pub fn call_failed(&self, e2e_id: &str, bank: &str, what: &str, error: &dyn std::fmt::Display) {
        match self.allow(&format!("bank {bank}")) {
            Some(suppressed) => tracing::warn!(e2e_id, bank, error = %error, suppressed, "{what} failed"),
            None => tracing::debug!(e2e_id, bank, error = %error, "{what} failed"),
        }
    }

    /// One of the driver's own steps failed (the database, mostly).
    pub fn step_failed(&self, what: &str, error: &dyn std::fmt::Display) {
        match self.allow(what) {
            Some(suppressed) => tracing::warn!(error = %error, suppressed, "driver: {what} failed"),
            None => tracing::debug!(error = %error, "driver: {what} failed"),
        }
    }
}
