//! The offline queue: transfers made while the server cannot be reached (or
//! has no primary during a failover) wait on disk with their Idempotency-Key
//! and are sent again, oldest first, until the server answers. The key makes
//! a transfer apply once however many times it is sent, so a send whose
//! answer was lost is simply sent again.
//!
//! A transfer sent now (the `transfer` command) and one sent from the queue
//! go through one function, `send_transfer`, and come back the same way: moved
//! (201, a Transfer) or held for a check by the bank (202, a Review with
//! `status: "held_for_review"`: nothing moved yet, the amount is held). A held
//! item is done: it is never sent again, and the customer can cancel the
//! review itself.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use crate::api::{ApiClient, CommandError};

/// Pending transfers kept at most; more is refused rather than grow without bound.
pub const MAX_PENDING: usize = 100;
/// Finished items kept for the user to see; the oldest go first.
pub const MAX_FINISHED: usize = 200;
pub const BACKOFF_FIRST_MS: u64 = 1_000;
pub const BACKOFF_MAX_MS: u64 = 60_000;
/// The server keeps idempotency keys 24 h. A transfer still queued near then
/// can no longer be sent safely (an earlier send may have landed unseen), so
/// it fails and the user checks the history instead.
pub const MAX_AGE_S: i64 = 23 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    pub from_account_id: Uuid,
    pub to_account_number: String,
    pub amount: String,
    pub currency: String,
    pub memo: String,
}

impl TransferRequest {
    /// The body exactly as the server gets it, the same on every send (the
    /// server compares a repeated key's body).
    pub fn body(&self) -> Value {
        serde_json::json!({
            "from_account_id": self.from_account_id,
            "to_account_number": self.to_account_number,
            "amount": self.amount,
            "memo": self.memo,
        })
    }
}

/// The `status` of the server's answer to a transfer it held for review.
pub const HELD_FOR_REVIEW: &str = "held_for_review";

/// What the server did with a transfer it took: moved it, or held it for a
/// check by the bank. The server answers any 2xx with the body alone (see
/// `ApiClient::send`); the body says which, as the server itself decides
/// between 201 and 202 from it.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// 201: the Transfer.
    Committed(Value),
    /// 202: the Review (`review_id`, `reason`, `expires_at` …); nothing moved yet.
    Held(Value),
}

impl Accepted {
    pub fn of(body: Value) -> Accepted {
        if body.get("status").and_then(Value::as_str) == Some(HELD_FOR_REVIEW) {
            Accepted::Held(body)
        } else {
            Accepted::Committed(body)
        }
    }

    /// The `transfer` command's answer: `{outcome: "committed", transfer}` or `{outcome: "held", review}`.
    pub fn answer(self) -> Value {
        match self {
            Accepted::Committed(transfer) => serde_json::json!({"outcome": "committed", "transfer": transfer}),
            Accepted::Held(review) => serde_json::json!({"outcome": "held", "review": review}),
        }
    }
}

/// Sends a transfer with its Idempotency-Key: the one way both the
/// `transfer` command and the queue's worker send one.
pub async fn send_transfer(api: &ApiClient, request: &TransferRequest, idempotency_key: &str) -> Result<Accepted, CommandError> {
    api.post("/v1/transfers", &request.body(), Some(idempotency_key))
        .await
        .map(Accepted::of)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Applied,
    /// Taken by the server and held for a check by the bank (`review`): done
    /// here, never sent again.
    Held,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    pub id: Uuid,
    /// Whose session may send it: another user logging in on this computer
    /// never sends someone else's transfer.
    pub username: String,
    pub idempotency_key: String,
    pub request: TransferRequest,
    pub status: Status,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub transfer: Option<Value>,
    /// The Review when the server held it (`Held`). Absent from queue files
    /// written before reviews.
    #[serde(default)]
    pub review: Option<Value>,
    pub created_at: DateTime<Utc>,
}

/// What one send of the head item came to.
#[derive(Debug)]
pub enum Outcome {
    Applied(Value),
    /// Held for review (the Review): done, not sent again.
    Held(Value),
    /// Try again later with the same key.
    Retry(String),
    /// The server refused it for good (insufficient funds, frozen account …).
    Failed(String),
}

/// Backoff after `attempts` failed sends: 1, 2, 4 … 60 s.
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    Duration::from_millis((BACKOFF_FIRST_MS << doublings).min(BACKOFF_MAX_MS))
}

/// The queue as a file: every change is written (to a temporary file, synced,
/// renamed over the old one) before it is acknowledged, so a crash loses
/// nothing that was shown as queued.
pub struct OfflineQueue {
    path: PathBuf,
    items: Vec<QueueItem>,
    /// The item being sent right now; it cannot be cancelled mid-send.
    in_flight: Option<Uuid>,
}

impl OfflineQueue {
    pub fn open(path: &Path) -> Result<OfflineQueue, String> {
        let items = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(OfflineQueue {
            path: path.to_path_buf(),
            items,
            in_flight: None,
        })
    }

    pub fn items(&self) -> &[QueueItem] {
        &self.items
    }

    pub fn pending_for(&self, username: &str) -> usize {
        self.items
            .iter()
            .filter(|i| i.status == Status::Pending && i.username == username)
            .count()
    }

    pub fn enqueue(
        &mut self,
        username: &str,
        idempotency_key: &str,
        request: TransferRequest,
        now: DateTime<Utc>,
    ) -> Result<QueueItem, String> {
        if self
            .items
            .iter()
            .filter(|i| i.status == Status::Pending)
            .count()
            >= MAX_PENDING
        {
            return Err(format!("the offline queue is full ({MAX_PENDING} transfers); wait until the server is back"));
        }
        let item = QueueItem {
            id: Uuid::now_v7(),
            username: username.to_string(),
            idempotency_key: idempotency_key.to_string(),
            request,
            status: Status::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            last_error: None,
            transfer: None,
            review: None,
            created_at: now,
        };
        self.items.push(item.clone());
        self.save()?;
        Ok(item)
    }

    /// The oldest pending item of `username` when it is due. Only the oldest:
    /// a later transfer never overtakes an earlier one (it may depend on it).
    pub fn due(&self, username: &str, now: DateTime<Utc>) -> Option<QueueItem> {
        let head = self
            .items
            .iter()
            .find(|i| i.status == Status::Pending && i.username == username)?;
        (head.next_attempt_at.is_none_or(|at| at <= now)).then(|| head.clone())
    }

    /// When the oldest pending item of `username` is next due.
    pub fn next_due_at(&self, username: &str) -> Option<DateTime<Utc>> {
        let head = self
            .items
            .iter()
            .find(|i| i.status == Status::Pending && i.username == username)?;
        Some(head.next_attempt_at.unwrap_or(head.created_at))
    }

    pub fn begin_send(&mut self, id: Uuid) {
        self.in_flight = Some(id);
    }

    pub fn record(&mut self, id: Uuid, outcome: Outcome, now: DateTime<Utc>) -> Result<(), String> {
        self.in_flight = None;
        let item = self
            .items
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or("no such queued transfer")?;
        assert_eq!(
            item.status,
            Status::Pending,
            "only pending transfers are sent"
        );
        item.attempts += 1;
        match outcome {
            Outcome::Applied(transfer) => {
                item.status = Status::Applied;
                item.transfer = Some(transfer);
                item.next_attempt_at = None;
                item.last_error = None;
            }
            Outcome::Held(review) => {
                item.status = Status::Held;
                item.review = Some(review);
                item.next_attempt_at = None;
                item.last_error = None;
            }
            Outcome::Retry(error) if (now - item.created_at).num_seconds() < MAX_AGE_S => {
                let delay =
                    chrono::Duration::from_std(backoff(item.attempts)).expect("backoff fits");
                item.next_attempt_at = Some(now + delay);
                item.last_error = Some(error);
            }
            Outcome::Retry(error) => {
                item.status = Status::Failed;
                item.next_attempt_at = None;
                item.last_error = Some(format!(
                    "not sent within 23 hours ({error}); check the history before trying again"
                ));
            }
            Outcome::Failed(error) => {
                item.status = Status::Failed;
                item.next_attempt_at = None;
                item.last_error = Some(error);
            }
        }
        self.trim_finished();
        self.save()
    }

    pub fn cancel(&mut self, id: Uuid) -> Result<QueueItem, String> {
        if self.in_flight == Some(id) {
            return Err("this transfer is being sent right now; it cannot be cancelled".into());
        }
        let item = self
            .items
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or("no such queued transfer")?;
        if item.status != Status::Pending {
            return Err(format!(
                "only pending transfers can be cancelled; this one is {:?}",
                item.status
            )
            .to_lowercase());
        }
        item.status = Status::Cancelled;
        item.next_attempt_at = None;
        let item = item.clone();
        self.save()?;
        Ok(item)
    }

    pub fn clear_finished(&mut self) -> Result<(), String> {
        self.items.retain(|i| i.status == Status::Pending);
        self.save()
    }

    fn trim_finished(&mut self) {
        let finished = self
            .items
            .iter()
            .filter(|i| i.status != Status::Pending)
            .count();
        let mut excess = finished.saturating_sub(MAX_FINISHED);
        self.items.retain(|i| {
            let drop = excess > 0 && i.status != Status::Pending;
            excess -= drop as usize;
            !drop
        });
    }

    fn save(&self) -> Result<(), String> {
        use std::io::Write;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self.path.with_extension("json.tmp");
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&serde_json::to_vec_pretty(&self.items)?)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| format!("saving the offline queue to {}: {e}", self.path.display()))
    }
}

/// How a send's answer counts for the queue.
pub fn classify(result: Result<Accepted, CommandError>) -> Outcome {
    match result {
        Ok(Accepted::Committed(transfer)) => Outcome::Applied(transfer),
        Ok(Accepted::Held(review)) => Outcome::Held(review),
        Err(e) if e.is_transient() || e.is_unauthenticated() => Outcome::Retry(e.detail),
        Err(e) => Outcome::Failed(format!("{}: {}", e.code, e.detail)),
    }
}

/// Sends due items of the logged-in user, one at a time, oldest first, and
/// sleeps until the next is due or `wake` is notified (new item, login).
pub async fn run_worker(
    queue: Arc<Mutex<OfflineQueue>>,
    source: impl crate::banks::ClientSource,
    current_user: Arc<std::sync::Mutex<Option<String>>>,
    wake: Arc<Notify>,
) {
    const IDLE_POLL: Duration = Duration::from_secs(60);
    loop {
        let username = current_user.lock().unwrap().clone();
        let mut sleep_for = IDLE_POLL;
        let api = source.client().filter(|api| api.has_session());
        if let (Some(username), Some(api)) = (username, api) {
            let due = queue.lock().await.due(&username, Utc::now());
            if let Some(item) = due {
                queue.lock().await.begin_send(item.id);
                let result = send_transfer(&api, &item.request, &item.idempotency_key).await;
                let outcome = classify(result);
                tracing::info!(id = %item.id, attempt = item.attempts + 1, ?outcome, "offline queue send");
                if let Err(e) = queue.lock().await.record(item.id, outcome, Utc::now()) {
                    tracing::error!("{e}");
                }
                continue;
            }
            if let Some(at) = queue.lock().await.next_due_at(&username) {
                sleep_for = (at - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(IDLE_POLL);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(sleep_for) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(memo: &str) -> TransferRequest {
        TransferRequest {
            from_account_id: Uuid::from_u128(7),
            to_account_number: "1000000002".into(),
            amount: "1.00".into(),
            currency: "INR".into(),
            memo: memo.into(),
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("flexibank-queue-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("offline-queue.json")
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let seconds: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(seconds, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX).as_secs(), 60);
    }

    #[test]
    fn oldest_first_and_a_later_one_never_overtakes() {
        let now = Utc::now();
        let mut queue = OfflineQueue::open(&temp_path("order")).unwrap();
        let first = queue.enqueue("alice", "k1", request("first"), now).unwrap();
        let second = queue
            .enqueue("alice", "k2", request("second"), now)
            .unwrap();
        assert_eq!(queue.due("alice", now).unwrap().id, first.id);
        queue.begin_send(first.id);
        queue
            .record(first.id, Outcome::Retry("down".into()), now)
            .unwrap();
        // The head waits out its backoff, and the second waits behind it.
        assert!(queue.due("alice", now).is_none());
        assert_eq!(
            queue.next_due_at("alice"),
            Some(now + chrono::Duration::seconds(1))
        );
        let later = now + chrono::Duration::seconds(1);
        assert_eq!(queue.due("alice", later).unwrap().id, first.id);
        queue
            .record(
                first.id,
                Outcome::Applied(serde_json::json!({"id": "t1"})),
                later,
            )
            .unwrap();
        assert_eq!(queue.due("alice", later).unwrap().id, second.id);
        // A refusal ends that item and lets the next go.
        queue
            .record(
                second.id,
                Outcome::Failed("insufficient_funds".into()),
                later,
            )
            .unwrap();
        assert!(queue.due("alice", later).is_none());
        assert_eq!(queue.items()[1].status, Status::Failed);
        assert_eq!(queue.items()[0].attempts, 2);
    }

    #[test]
    fn another_users_transfers_are_not_sent_by_this_session() {
        let now = Utc::now();
        let mut queue = OfflineQueue::open(&temp_path("users")).unwrap();
        queue.enqueue("bob", "k1", request("bob's"), now).unwrap();
        assert!(queue.due("alice", now).is_none());
        assert_eq!(queue.pending_for("alice"), 0);
        assert_eq!(queue.pending_for("bob"), 1);
    }

    #[test]
    fn survives_a_restart_of_the_app() {
        let path = temp_path("restart");
        let now = Utc::now();
        let item = {
            let mut queue = OfflineQueue::open(&path).unwrap();
            let item = queue
                .enqueue("alice", "key-1", request("rent"), now)
                .unwrap();
            queue.begin_send(item.id);
            queue
                .record(item.id, Outcome::Retry("cannot connect".into()), now)
                .unwrap();
            item
        };
        let reopened = OfflineQueue::open(&path).unwrap();
        let loaded = &reopened.items()[0];
        assert_eq!(loaded.id, item.id);
        assert_eq!(
            loaded.idempotency_key, "key-1",
            "the same key after a restart: it still applies once"
        );
        assert_eq!(loaded.request, request("rent"));
        assert_eq!((loaded.status, loaded.attempts), (Status::Pending, 1));
        assert_eq!(loaded.last_error.as_deref(), Some("cannot connect"));
    }

    #[test]
    fn cancel_only_pending_and_not_mid_send() {
        let now = Utc::now();
        let mut queue = OfflineQueue::open(&temp_path("cancel")).unwrap();
        let a = queue.enqueue("alice", "k1", request("a"), now).unwrap();
        let b = queue.enqueue("alice", "k2", request("b"), now).unwrap();
        queue.begin_send(a.id);
        assert!(queue.cancel(a.id).unwrap_err().contains("being sent"));
        assert_eq!(queue.cancel(b.id).unwrap().status, Status::Cancelled);
        assert!(queue.cancel(b.id).is_err(), "cancelled twice");
        queue
            .record(a.id, Outcome::Applied(Value::Null), now)
            .unwrap();
        assert!(
            queue.cancel(a.id).is_err(),
            "an applied transfer cannot be cancelled"
        );
        queue.clear_finished().unwrap();
        assert!(queue.items().is_empty());
    }

    #[test]
    fn full_queue_refuses_more() {
        let now = Utc::now();
        let mut queue = OfflineQueue::open(&temp_path("full")).unwrap();
        for i in 0..MAX_PENDING {
            queue
                .enqueue("alice", &format!("k{i}"), request("x"), now)
                .unwrap();
        }
        assert!(queue
            .enqueue("alice", "one-more", request("x"), now)
            .unwrap_err()
            .contains("full"));
    }

    #[test]
    fn too_old_to_send_safely_fails_instead() {
        let created = Utc::now() - chrono::Duration::hours(24);
        let mut queue = OfflineQueue::open(&temp_path("old")).unwrap();
        let item = queue.enqueue("alice", "k", request("x"), created).unwrap();
        queue
            .record(item.id, Outcome::Retry("down".into()), Utc::now())
            .unwrap();
        assert_eq!(queue.items()[0].status, Status::Failed);
        assert!(queue.items()[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("23 hours"));
    }

    #[test]
    fn transient_errors_retry_and_refusals_fail() {
        let problem = |status: u16, code: &str| CommandError {
            kind: crate::api::ErrorKind::Problem,
            status,
            code: code.into(),
            detail: code.into(),
            retry_after_s: None,
        };
        assert!(matches!(
            classify(Err(CommandError::unreachable("down"))),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(Err(problem(503, "no_primary"))),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(Err(problem(409, "idempotency_in_progress"))),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(Err(problem(401, "unauthenticated"))),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            classify(Err(problem(409, "insufficient_funds"))),
            Outcome::Failed(_)
        ));
        assert!(matches!(
            classify(Err(problem(404, "not_found"))),
            Outcome::Failed(_)
        ));
        assert!(matches!(classify(Ok(Accepted::of(Value::Null))), Outcome::Applied(_)));
    }

    #[test]
    fn a_held_answer_is_told_apart_from_a_transfer() {
        let transfer = serde_json::json!({"id": "t1", "status": "committed", "balance_after": "10.00"});
        let review = serde_json::json!({"status": "held_for_review", "review_id": "r1", "id": "r1", "amount": "150.00"});
        assert_eq!(Accepted::of(transfer.clone()), Accepted::Committed(transfer.clone()));
        assert_eq!(Accepted::of(review.clone()), Accepted::Held(review.clone()));
        assert_eq!(
            Accepted::of(transfer.clone()).answer(),
            serde_json::json!({"outcome": "committed", "transfer": transfer})
        );
        assert_eq!(Accepted::of(review.clone()).answer(), serde_json::json!({"outcome": "held", "review": review}));
    }

    #[test]
    fn a_held_replay_is_done_not_failed_and_not_sent_again() {
        let now = Utc::now();
        let path = temp_path("held");
        let mut queue = OfflineQueue::open(&path).unwrap();
        let held = queue.enqueue("alice", "k1", request("large"), now).unwrap();
        let next = queue.enqueue("alice", "k2", request("next"), now).unwrap();
        queue.begin_send(held.id);
        let review = serde_json::json!({"status": "held_for_review", "review_id": "r1"});
        queue
            .record(held.id, classify(Ok(Accepted::of(review.clone()))), now)
            .unwrap();
        let item = &queue.items()[0];
        assert_eq!((item.status, item.review.as_ref(), item.last_error.as_ref()), (Status::Held, Some(&review), None));
        assert_eq!(item.next_attempt_at, None);
        assert_eq!(queue.due("alice", now).unwrap().id, next.id, "the held one is not sent again; the next goes");
        assert_eq!(queue.pending_for("alice"), 1);
        assert!(queue.cancel(held.id).is_err(), "a held transfer is cancelled in Reviews, not here");
        let reopened = OfflineQueue::open(&path).unwrap();
        assert_eq!(reopened.items()[0].status, Status::Held, "kept on disk");
    }

    #[test]
    fn queue_files_from_before_reviews_still_load() {
        let path = temp_path("old-file");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let item = serde_json::json!([{
            "id": Uuid::from_u128(1), "username": "alice", "idempotency_key": "k", "request": request("x"),
            "status": "applied", "attempts": 1, "next_attempt_at": null, "last_error": null,
            "transfer": {"id": "t1"}, "created_at": Utc::now(),
        }]);
        std::fs::write(&path, serde_json::to_vec(&item).unwrap()).unwrap();
        let queue = OfflineQueue::open(&path).unwrap();
        assert_eq!((queue.items()[0].status, &queue.items()[0].review), (Status::Applied, &None));
    }
}
