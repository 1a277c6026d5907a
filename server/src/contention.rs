//! Per-account admission inside one server process.
//!
//! Under SERIALIZABLE, two transactions that touch the same account at the
//! same time do not wait for each other: the later one aborts with 40001 and
//! is retried. With many clients on few accounts most of the work is then
//! thrown away. So before a movement starts its transaction it takes striped
//! in-process locks on the accounts it will touch, in ascending stripe order
//! (no deadlocks); movements on different accounts still run in parallel.
//! This is an optimisation only: correctness never depends on it (another
//! server process, or a missed lock, just means a retry in the database).
//! Likewise for idempotency keys: a key whose first request is still running
//! here is answered at once (`InflightKeys`).

use std::{
    collections::{HashMap, HashSet},
    hash::{Hash, Hasher},
    sync::{Arc, RwLock},
};

use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

use crate::{
    db::{db_error, Db},
    error::{ApiError, ApiResult, Code},
};

/// Enough stripes that unrelated accounts rarely share one (a batch of 100
/// transfers holds up to 200).
const STRIPES: usize = 16_384;
/// Account numbers never change their id, so the cache never goes stale;
/// it is only bounded.
const MAX_CACHED_NUMBERS: usize = 1_000_000;

pub struct AccountLocks {
    stripes: Vec<Mutex<()>>,
    /// One batch at a time: two batches of random accounts nearly always
    /// overlap, and batches taking their many stripes concurrently convoy
    /// (each holds some stripes while it waits for others). Single movements
    /// still interleave with the running batch on the stripes it does not hold.
    batch_gate: Mutex<()>,
    number_to_id: RwLock<HashMap<String, Uuid>>,
}

impl Default for AccountLocks {
    fn default() -> Self {
        AccountLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            batch_gate: Mutex::new(()),
            number_to_id: RwLock::new(HashMap::new()),
        }
    }
}

fn stripe_of(id: &Uuid) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    (hasher.finish() as usize) % STRIPES
}

pub struct Admission<'a> {
    _gate: Option<MutexGuard<'a, ()>>,
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl AccountLocks {
    /// The id of an account number, from the cache or the database;
    /// `None` when there is no such account (the movement will say so).
    pub async fn resolve(&self, db: &Db, number: &str) -> ApiResult<Option<Uuid>> {
        if let Some(id) = self.number_to_id.read().expect("cache lock").get(number) {
            return Ok(Some(*id));
        }
        let (client, _) = db.reader().await?;
        let row = client
            .query_opt("SELECT id FROM accounts WHERE number = $1", &[&number])
            .await
            .map_err(db_error)?;
        let id = row.map(|r| r.get::<_, Uuid>(0));
        if let Some(id) = id {
            let mut cache = self.number_to_id.write().expect("cache lock");
            if cache.len() >= MAX_CACHED_NUMBERS {
                cache.clear();
            }
            cache.insert(number.to_string(), id);
        }
        Ok(id)
    }

    /// Waits until no other movement in this process holds any of `accounts`.
    pub async fn admit(&self, accounts: impl IntoIterator<Item = Uuid>) -> Admission<'_> {
        self.admit_inner(None, accounts).await
    }

    /// The same for a batch, which first waits its turn behind other batches.
    pub async fn admit_batch(&self, accounts: impl IntoIterator<Item = Uuid>) -> Admission<'_> {
        let gate = self.batch_gate.lock().await;
        self.admit_inner(Some(gate), accounts).await
    }

    async fn admit_inner<'a>(&'a self, gate: Option<MutexGuard<'a, ()>>, accounts: impl IntoIterator<Item = Uuid>) -> Admission<'a> {
        let mut stripes: Vec<usize> = accounts.into_iter().map(|id| stripe_of(&id)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.stripes[stripe].lock().await);
        }
        Admission { _gate: gate, _guards: guards }
    }
}

/// Idempotency keys whose first request is running in this process: a second
/// request with the same key gets 409 `idempotency_in_progress` at once
/// instead of queueing behind the first. (Across processes the database's
/// primary key makes the loser retry and then replay the winner's response.)
#[derive(Default)]
pub struct InflightKeys(std::sync::Mutex<HashSet<(Uuid, String)>>);

pub struct InflightGuard {
    keys: Arc<InflightKeys>,
    entry: (Uuid, String),
}

impl InflightKeys {
    pub fn claim(self: &Arc<Self>, user_id: Uuid, key: &str) -> ApiResult<InflightGuard> {
        let entry = (user_id, key.to_string());
        if !self.0.lock().expect("inflight lock").insert(entry.clone()) {
            return Err(ApiError::new(
                Code::IdempotencyInProgress,
                "a request with this Idempotency-Key is still being processed",
            )
            .with_retry_after(1));
        }
        Ok(InflightGuard { keys: self.clone(), entry })
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.keys.0.lock().expect("inflight lock").remove(&self.entry);
    }
}
