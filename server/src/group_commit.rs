//! Group commit of customer transfers (sql/V9).
//!
//! A transfer's cost in PostgreSQL is mostly per transaction: the WAL flush,
//! the wait for the synchronous replica, the round trip. So transfers that
//! arrive while earlier ones are in the database queue here, and a worker
//! takes whatever is queued (up to `group_commit_max_items`) and applies it
//! with one `SELECT move_money_group(...)` (sql/V9, rewritten in V13): one
//! transaction, one flush, one replica round trip for the lot. Under light
//! load a group is a single transfer and nothing waits; under heavy load
//! groups grow by themselves. One worker is the default: a group costs about
//! as much CPU as a dozen items before its first one, so a second worker
//! (smaller groups) lost more than its overlap won, even pipelined so that
//! one group executes while the other commits (docs/benchmarks.md).
//!
//! Each item keeps the single path's guarantees and answers (sql/V9). When a
//! group fails as a whole (a serialization failure after the retries, a key
//! that exists, a lost connection), every request in it is told to take the
//! single path itself, so no request fails because of another one.

use std::sync::{Arc, OnceLock};

use rust_decimal::Decimal;
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use crate::{
    contention::AccountLocks,
    db::{db_error, Db},
    error::{ApiError, Code},
};

/// Requests waiting for a worker; beyond this, transfers take the single path.
const MAX_QUEUED: usize = 4096;
/// The SQL function's own limit.
pub const MAX_GROUP_ITEMS: usize = 256;

const MOVE_MONEY_GROUP_SQL: &str = "SELECT move_money_group($1, $2, $3, $4, $5, $6, $7::numeric[], $8, $9, $10)";
/// Pipelined after the group's own statement (which commits on its own), so
/// the position includes the commit record: read-your-writes waits for it.
const CURRENT_LSN_SQL: &str = "SELECT pg_current_wal_lsn()::text";

/// One customer transfer, as move_money would get it.
pub struct GroupItem {
    /// The accounts it touches, for in-process admission (contention.rs).
    pub accounts: Vec<Uuid>,
    pub actor_id: Uuid,
    pub actor_role: String,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub from_account_id: Uuid,
    pub to_account_number: String,
    pub amount: Decimal,
    pub memo: String,
    pub request_id: String,
    pub client_addr: String,
}

pub enum Outcome {
    /// Committed: the Transfer body, and the WAL position after the commit.
    Moved { body: serde_json::Value, lsn: String },
    /// Refused by a business rule; nothing of it was written.
    Refused(ApiError),
    /// Not applied: run it through the single path.
    Alone,
}

struct Queued {
    item: GroupItem,
    reply: oneshot::Sender<Outcome>,
}

pub struct GroupCommitter {
    sender: mpsc::Sender<Queued>,
    receiver: Arc<Mutex<mpsc::Receiver<Queued>>>,
    started: OnceLock<()>,
    db: Db,
    account_locks: Arc<AccountLocks>,
    /// 0: group commit is off, every transfer takes the single path.
    workers: usize,
    max_items: usize,
}

impl GroupCommitter {
    /// `max_items` is the SQL function's limit at most; the workers start with the first transfer.
    pub fn new(db: Db, account_locks: Arc<AccountLocks>, workers: usize, max_items: usize) -> anyhow::Result<GroupCommitter> {
        anyhow::ensure!(
            (1..=MAX_GROUP_ITEMS).contains(&max_items),
            "database.group_commit_max_items must be 1 to {MAX_GROUP_ITEMS}"
        );
        let (sender, receiver) = mpsc::channel(MAX_QUEUED);
        Ok(GroupCommitter {
            sender,
            receiver: Arc::new(Mutex::new(receiver)),
            started: OnceLock::new(),
            db,
            account_locks,
            workers,
            max_items,
        })
    }

    /// Queues one transfer and waits for its group. `Outcome::Alone` when
    /// group commit is off, the queue is full, or the group failed.
    pub async fn submit(&self, item: GroupItem) -> Outcome {
        if self.workers == 0 {
            return Outcome::Alone;
        }
        self.started.get_or_init(|| {
            for _ in 0..self.workers {
                let worker = Worker { db: self.db.clone(), account_locks: self.account_locks.clone(), max_items: self.max_items };
                tokio::spawn(worker.run(self.receiver.clone()));
            }
        });
        let (reply, answer) = oneshot::channel();
        if self.sender.try_send(Queued { item, reply }).is_err() {
            return Outcome::Alone;
        }
        answer.await.unwrap_or(Outcome::Alone)
    }
}

struct Worker {
    db: Db,
    account_locks: Arc<AccountLocks>,
    max_items: usize,
}

impl Worker {
    async fn run(self, receiver: Arc<Mutex<mpsc::Receiver<Queued>>>) {
        loop {
            let mut group = Vec::with_capacity(self.max_items);
            let _admission = {
                // One worker at a time takes what is queued and waits until no
                // running group or movement holds its accounts; the others wait
                // for the next lot. Groups in the database at once thus touch
                // disjoint accounts (no 40001 between them), while one group may
                // move a hot account many times: its requests hold no account
                // locks themselves, so they cannot block the worker.
                let mut queue = receiver.lock().await;
                let Some(first) = queue.recv().await else { return };
                group.push(first);
                while group.len() < self.max_items {
                    match queue.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let accounts: Vec<Uuid> = group.iter().flat_map(|q| q.item.accounts.iter().copied()).collect();
                self.account_locks.admit(accounts).await
            };
            metrics::histogram!("flexibank_group_commit_items").record(group.len() as f64);
            match apply(&self.db, &group).await {
                Ok(outcomes) => {
                    for (queued, outcome) in group.into_iter().zip(outcomes) {
                        let _ = queued.reply.send(outcome);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e.detail, items = group.len(), "group failed; its transfers go one by one");
                    metrics::counter!("flexibank_group_commit_fallbacks_total").increment(1);
                    for queued in group {
                        let _ = queued.reply.send(Outcome::Alone);
                    }
                }
            }
        }
    }
}

async fn apply(db: &Db, group: &[Queued]) -> Result<Vec<Outcome>, ApiError> {
    let items: Vec<&GroupItem> = group.iter().map(|q| &q.item).collect();
    let actor_ids: Vec<Uuid> = items.iter().map(|i| i.actor_id).collect();
    let roles: Vec<&str> = items.iter().map(|i| i.actor_role.as_str()).collect();
    let keys: Vec<&str> = items.iter().map(|i| i.idempotency_key.as_str()).collect();
    let hashes: Vec<&[u8]> = items.iter().map(|i| i.request_hash.as_slice()).collect();
    let from_ids: Vec<Uuid> = items.iter().map(|i| i.from_account_id).collect();
    let to_numbers: Vec<&str> = items.iter().map(|i| i.to_account_number.as_str()).collect();
    let amounts: Vec<Decimal> = items.iter().map(|i| i.amount).collect();
    let memos: Vec<&str> = items.iter().map(|i| i.memo.as_str()).collect();
    let request_ids: Vec<&str> = items.iter().map(|i| i.request_id.as_str()).collect();
    let addrs: Vec<&str> = items.iter().map(|i| i.client_addr.as_str()).collect();
    let (results, lsn): (serde_json::Value, String) = db
        .retry_serializable(|| async {
            let client = db.writer().await?;
            let statement = client.prepare_cached(MOVE_MONEY_GROUP_SQL).await.map_err(db_error)?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] =
                [&actor_ids, &roles, &keys, &hashes, &from_ids, &to_numbers, &amounts, &memos, &request_ids, &addrs];
            let (row, lsn) = tokio::join!(client.query_one(&statement, &params), client.query_one(CURRENT_LSN_SQL, &[]));
            let row = row.map_err(db_error)?;
            let lsn = lsn.map_err(db_error)?;
            Ok((row.get(0), lsn.get(0)))
        })
        .await?;
    let results = results.as_array().cloned().unwrap_or_default();
    // The function answers every item, in order; anything else is a bug, and
    // the requests must not be answered from it.
    if results.len() != items.len() {
        return Err(ApiError::internal(format!("move_money_group answered {} of {} items", results.len(), items.len())));
    }
    Ok(results
        .into_iter()
        .map(|result| {
            if result["ok"] == true {
                Outcome::Moved { body: result["body"].clone(), lsn: lsn.clone() }
            } else {
                let code = result["code"].as_str().and_then(Code::parse).unwrap_or(Code::Internal);
                let detail = result["detail"].as_str().unwrap_or_default().to_string();
                if code == Code::Internal {
                    Outcome::Alone
                } else {
                    Outcome::Refused(ApiError::new(code, detail))
                }
            }
        })
        .collect())
}
