//! Phase-one votes and phase-two postings of concurrent payments, grouped
//! into shared transactions (docs/benchmarks.md, `interbank`).
//!
//! Like `group_commit` for transfers: a payment's step at a bank costs mostly
//! per transaction (the flush, the synchronous replica's round trip) and, for
//! postings, a settlement shard held through that commit. So steps that
//! arrive while earlier ones are in the database queue here, and one worker
//! per kind applies what is queued in one transaction. Under light load a
//! group is one payment and nothing waits.
//!
//! Every step is idempotent by `e2e_id`, so a group that fails as a whole is
//! re-run one payment at a time by the single path (`Group::alone`): no
//! payment fails because of another, and one whose worker went away is simply
//! applied again.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, AtomicU64},
        Arc, Mutex,
    },
    time::Duration,
};

use tokio::sync::{mpsc, oneshot, watch};

use super::switch_link::SwitchLink;
use crate::{db::Db, error::ApiResult};

/// Steps waiting for a worker; beyond this a request applies its own step.
const MAX_QUEUED: usize = 4096;
/// How long no group of this bank must be in progress before a lingering group stops waiting.
const IDLE_GRACE: Duration = Duration::from_millis(2);

/// What a step needs: the bank's database, its link to the switch, how
/// long a group waits for company (`interbank.group_linger_ms`), whether
/// a posting group has found the settlement account's shards in place, and
/// the primary's WAL position after the latest posting group's commit (0: none
/// yet; it only grows), for the payers' read-your-writes, and how many groups
/// (of every kind) are being applied now.
pub struct Context {
    pub db: Db,
    pub link: Arc<SwitchLink>,
    pub linger: Duration,
    pub settlement_ready: AtomicBool,
    pub posted_lsn: AtomicU64,
    pub applying: watch::Sender<usize>,
}

impl Context {
    /// A posting group committed with the primary at `position` (`pg_current_wal_lsn()` text).
    pub fn posted_at(&self, position: &str) {
        if let Some(lsn) = flexibank_replication::status::parse_lsn(position) {
            self.posted_lsn.fetch_max(lsn, std::sync::atomic::Ordering::Release);
        }
    }
}

pub trait Group: Send + Sync + 'static {
    type Item: Clone + Send + Sync + 'static;
    type Out: Send + 'static;
    /// What one transaction applies at most (the SQL function's own limit).
    const MAX_ITEMS: usize;
    /// Names the group in logs.
    const NAME: &'static str;
    /// All of `items` in one transaction: one answer per item, in order; `Err` changed nothing.
    fn apply(context: &Context, items: &[Self::Item]) -> impl Future<Output = ApiResult<Vec<ApiResult<Self::Out>>>> + Send;
    /// One item in its own transaction.
    fn alone(context: &Context, item: &Self::Item) -> impl Future<Output = ApiResult<Self::Out>> + Send;
}

type Queued<G> = (<G as Group>::Item, oneshot::Sender<ApiResult<<G as Group>::Out>>);

pub struct Grouper<G: Group> {
    context: Arc<Context>,
    sender: mpsc::Sender<Queued<G>>,
    /// Taken by the worker, started on first use (inside the runtime).
    receiver: Mutex<Option<mpsc::Receiver<Queued<G>>>>,
}

impl<G: Group> Grouper<G> {
    pub fn new(context: Arc<Context>) -> Self {
        let (sender, receiver) = mpsc::channel(MAX_QUEUED);
        Grouper { context, sender, receiver: Mutex::new(Some(receiver)) }
    }

    pub async fn submit(&self, item: G::Item) -> ApiResult<G::Out> {
        if let Some(receiver) = self.receiver.lock().expect("grouper lock").take() {
            tokio::spawn(worker::<G>(self.context.clone(), receiver));
        }
        let (reply, answer) = oneshot::channel();
        match self.sender.try_send((item.clone(), reply)) {
            // A worker that went away (a panic) may or may not have applied it: applying again is safe.
            Ok(()) => match answer.await {
                Ok(answer) => answer,
                Err(_) => G::alone(&self.context, &item).await,
            },
            Err(_) => G::alone(&self.context, &item).await,
        }
    }
}

async fn worker<G: Group>(context: Arc<Context>, mut receiver: mpsc::Receiver<Queued<G>>) {
    let mut group: Vec<Queued<G>> = Vec::with_capacity(G::MAX_ITEMS);
    let mut previous_len = 0;
    while receiver.recv_many(&mut group, G::MAX_ITEMS).await > 0 {
        linger_for_more(&mut receiver, &mut group, previous_len, context.linger, &context.applying).await;
        previous_len = group.len();
        let (items, replies): (Vec<G::Item>, Vec<_>) = group.drain(..).unzip();
        metrics::histogram!("flexibank_interbank_group_items", "group" => G::NAME).record(items.len() as f64);
        let started = std::time::Instant::now();
        let applied = {
            let _in_progress = InProgress::new(&context.applying);
            G::apply(&context, &items).await
        };
        metrics::histogram!("flexibank_interbank_group_seconds", "group" => G::NAME).record(started.elapsed().as_secs_f64());
        match applied {
            Ok(answers) => {
                assert_eq!(answers.len(), items.len(), "one answer per item");
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                tracing::warn!(group = G::NAME, items = items.len(), error = %e.detail, "a group failed as a whole; its payments run one at a time");
                for (item, reply) in items.iter().zip(replies) {
                    let _ = reply.send(G::alone(&context, item).await);
                }
            }
        }
    }
}

/// Measured (docs/benchmarks.md, session 12): a group's cost is mostly per
/// statement (executor start-up, constraints, triggers, the commit), so four
/// payments cost little more than two. With 32 payers the steps of a payment
/// arrive spread out and groups stayed at 2–5; waiting a few milliseconds
/// for as many as the previous group had halves the database's CPU per
/// payment. Only while payments arrive together: after a group of one,
/// nothing waits.
///
/// And only while another group of this bank is in progress (`applying`):
/// the company comes out of that work (a posting group's payers come back
/// with their next payments, a hold group's payments go on to the switch and
/// come back decided). Once none has been for `IDLE_GRACE`, the payments
/// still missing are stuck elsewhere, as often as not in another group's
/// linger waiting for these: measured (docs/benchmarks.md, session 24), the
/// machine sat idle ~15% of the time with the 25 ms linger alone, ~8% with
/// this rule.
async fn linger_for_more<T>(receiver: &mut mpsc::Receiver<T>, group: &mut Vec<T>, wanted: usize, linger: Duration, applying: &watch::Sender<usize>) {
    if wanted <= 1 || linger.is_zero() {
        return;
    }
    let until = tokio::time::Instant::now() + linger;
    let mut applying = applying.subscribe();
    while group.len() < wanted {
        let room = wanted - group.len();
        tokio::select! {
            received = receiver.recv_many(group, room) => if received == 0 { return },
            _ = tokio::time::sleep_until(until) => return,
            _ = nothing_applied_for(&mut applying, IDLE_GRACE) => return,
        }
    }
}

/// One group counted in `Context::applying` while it lives (also if its worker panics).
struct InProgress<'a>(&'a watch::Sender<usize>);

impl<'a> InProgress<'a> {
    fn new(applying: &'a watch::Sender<usize>) -> Self {
        applying.send_modify(|n| *n += 1);
        InProgress(applying)
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Returns once no group has been in progress for `grace` (at once if the count's sender is gone).
async fn nothing_applied_for(applying: &mut watch::Receiver<usize>, grace: Duration) {
    loop {
        if applying.wait_for(|n| *n == 0).await.is_err() {
            return;
        }
        // Busy again within the grace: wait for the next idle spell; otherwise (or sender gone) done.
        if !matches!(tokio::time::timeout(grace, applying.wait_for(|n| *n > 0)).await, Ok(Ok(_))) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    const LINGER: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_group_stops_waiting_once_nothing_else_is_in_progress() {
        let (_sender, mut receiver) = mpsc::channel::<u32>(8);
        let applying = watch::Sender::new(0);
        let mut group = vec![1];
        let started = Instant::now();
        linger_for_more(&mut receiver, &mut group, 3, LINGER, &applying).await;
        assert!(started.elapsed() < LINGER / 2, "waited {:?} with nothing in progress", started.elapsed());
        assert_eq!(group, [1]);
    }

    #[tokio::test]
    async fn a_group_waits_for_company_while_another_is_in_progress() {
        let (sender, mut receiver) = mpsc::channel::<u32>(8);
        let applying = watch::Sender::new(1);
        let mut group = vec![1];
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            sender.send(2).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            sender.send(3).await.unwrap();
        });
        let started = Instant::now();
        linger_for_more(&mut receiver, &mut group, 3, LINGER, &applying).await;
        assert_eq!(group, [1, 2, 3], "the two that came while another group was in progress joined");
        assert!(started.elapsed() < LINGER, "it went once it had as many as the previous group");

        // Another group ends: the wait ends soon after, long before the linger.
        let (_sender, mut receiver) = mpsc::channel::<u32>(8);
        let mut group = vec![1];
        let ends = applying.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            ends.send_modify(|n| *n -= 1);
        });
        let started = Instant::now();
        linger_for_more(&mut receiver, &mut group, 3, LINGER, &applying).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100) && waited < LINGER / 2, "waited {waited:?}");
    }
}
