//! The switch's state changes, applied in batches (docs/consortium.md, "Speed").
//!
//! Every payment moves its banks' liquidity: initiating reserves the payer's,
//! a vote moves both positions. Done one payment per transaction, every
//! payment waited for the bank rows that every other payment of those banks
//! locks, through each commit's flush: measured, the vote waited 79 ms and the
//! initiation 39 ms per payment on two banks' rows. So requests queue here and
//! one worker applies whatever is queued (up to `MAX_BATCH`) in one READ
//! COMMITTED transaction: the bank rows locked once, each read and write one
//! set-based statement, the reads sent together and the writes together
//! (`flexibank_consortium::pipeline`), one commit. Under light load a batch is
//! one command and nothing waits; under load batches grow by themselves.
//!
//! `apply` is the only implementation of initiate, vote and acknowledge:
//! `payments::{initiate_once, record_vote, acknowledge}` are `apply` of one
//! command. Each command keeps its single-payment answer, and a batch that
//! fails as a whole (a lost connection) is re-run one command at a time, so no
//! request fails because of another. Locks are taken in the order of every
//! function in `payments`: payment rows (sorted by id), then bank rows (by id).

use std::collections::HashMap;

use deadpool_postgres::Pool;
use flexibank_consortium::{keys::mask_name, pipeline::{self, Pipelined}};
use rust_decimal::Decimal;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

use crate::{
    db::{self, db_error},
    error::{Code, SwitchError, SwitchResult},
    payments::{self, payment, Payment, Status, COLUMNS, COLUMN_COUNT, REASON_LIQUIDITY, REASON_TIMEOUT},
};

/// Commands one batch applies at most (its arrays' length).
pub const MAX_BATCH: usize = 256;
/// Commands waiting for the worker; beyond this a request applies its own command.
const MAX_QUEUED: usize = 4096;

/// An initiation, checked (`payments::check_request`).
#[derive(Debug, Clone)]
pub struct Initiation {
    pub payer_bank: String,
    pub e2e_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub key_type: String,
    pub key_value: String,
    pub memo: String,
    pub timeout_ms: i64,
}

#[derive(Debug, Clone)]
pub enum Command {
    Initiate(Initiation),
    /// `no_reason`: the reason stored if this vote aborts (checked).
    Vote {
        e2e_id: String,
        payee_bank: String,
        yes: bool,
        no_reason: String,
    },
    Ack {
        bank: String,
        e2e_id: String,
    },
}

#[derive(Debug)]
pub enum Answer {
    /// The payment, and whether this command recorded it (only that request drives it).
    Initiated(Payment, bool),
    Payment(Payment),
}

/// What a command will be answered once the batch's writes return their rows.
enum Pending {
    Done(SwitchResult<Answer>),
    /// Recorded by this batch (the index of its new row); `true`: by this command.
    New(usize, bool),
    Decided(String),
    Acked,
}

struct NewRow {
    init: Initiation,
    payee_bank: String,
    account_number: String,
    holder_name: Option<String>,
    status: Status,
    reason: Option<&'static str>,
}

/// The answer to a repeat of an initiation: the stored payment if it is the same one.
fn same(stored: Payment, init: &Initiation) -> SwitchResult<Payment> {
    let same = stored.payer_bank == init.payer_bank
        && stored.amount == init.amount
        && stored.currency == init.currency
        && stored.payee_key_type.as_str() == init.key_type
        && stored.payee_key_value == init.key_value
        && stored.memo == init.memo;
    if !same {
        return Err(SwitchError::new(Code::E2eIdReused, format!("e2e_id {} names another payment", stored.e2e_id)));
    }
    Ok(stored)
}

/// Applies `commands` in one transaction: one answer per command, in order.
/// `Err` when the batch failed as a whole and changed nothing. Its reads go
/// in one round trip and its writes in another (`pipeline`), then the commit.
pub async fn apply(pool: &Pool, commands: &[Command]) -> SwitchResult<Vec<SwitchResult<Answer>>> {
    assert!(commands.len() <= MAX_BATCH, "a batch has at most {MAX_BATCH} commands");
    let client = db::client(pool).await?;

    // 1.-3. The reads, sent at once (`pipeline`) and run in this order: the payments voted on,
    // locked (sorted: the lock order); then the bank rows this batch moves, locked in id order
    // (each initiation's payer, each undecided vote's two banks): each payer's available
    // liquidity; then the initiations already stored (read after the payer's lock: a concurrent
    // one has committed), and the keys.
    let mut vote_ids: Vec<&str> = commands
        .iter()
        .filter_map(|c| if let Command::Vote { e2e_id, .. } = c { Some(e2e_id.as_str()) } else { None })
        .collect();
    vote_ids.sort_unstable();
    vote_ids.dedup();
    let mut payer_ids: Vec<&str> = commands
        .iter()
        .filter_map(|c| if let Command::Initiate(i) = c { Some(i.payer_bank.as_str()) } else { None })
        .collect();
    payer_ids.sort_unstable();
    payer_ids.dedup();
    let inits: Vec<&Initiation> = commands
        .iter()
        .filter_map(|c| if let Command::Initiate(i) = c { Some(i) } else { None })
        .collect();
    let init_ids: Vec<&str> = inits.iter().map(|i| i.e2e_id.as_str()).collect();
    let (types, values): (Vec<&str>, Vec<&str>) = inits.iter().map(|i| (i.key_type.as_str(), i.key_value.as_str())).unzip();
    let read_voted = client
        .prepare_cached(&format!("SELECT {COLUMNS}, deadline > now() FROM payments WHERE e2e_id = ANY($1) ORDER BY e2e_id FOR UPDATE"))
        .await
        .map_err(db_error)?;
    let lock_banks = client
        .prepare_cached(
            "SELECT id, prefunded + position + net_debit_cap - pending_out FROM banks
              WHERE id = ANY($1)
                 OR id IN (SELECT unnest(ARRAY[p.payer_bank, p.payee_bank]) FROM payments p
                            WHERE p.e2e_id = ANY($2) AND p.status NOT IN ('committed', 'aborted'))
              ORDER BY id FOR NO KEY UPDATE",
        )
        .await
        .map_err(db_error)?;
    let read_stored = client.prepare_cached(&format!("SELECT {COLUMNS} FROM payments WHERE e2e_id = ANY($1)")).await.map_err(db_error)?;
    let read_keys = client
        .prepare_cached(
            "SELECT k.type, k.value, k.bank_id, k.account_number, k.holder_name
               FROM keys k JOIN unnest($1::text[], $2::text[]) AS u(key_type, key_value) ON k.type = u.key_type AND k.value = u.key_value",
        )
        .await
        .map_err(db_error)?;
    let (voted_params, banks_params): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 2]) = ([&vote_ids], [&payer_ids, &vote_ids]);
    let (stored_params, keys_params): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 2]) = ([&init_ids], [&types, &values]);
    let mut reads: Vec<pipeline::Query> = Vec::with_capacity(4);
    if !vote_ids.is_empty() {
        reads.push((&read_voted, &voted_params));
    }
    if !vote_ids.is_empty() || !payer_ids.is_empty() {
        reads.push((&lock_banks, &banks_params));
    }
    if !inits.is_empty() {
        reads.push((&read_stored, &stored_params));
        reads.push((&read_keys, &keys_params));
    }
    let (mut tx, answers) = Pipelined::begin(client, "START TRANSACTION ISOLATION LEVEL READ COMMITTED", &reads).await.map_err(db_error)?;
    drop(reads);
    let client = tx.client();
    let mut answers = answers.into_iter();

    // e2e_id -> (payment, before its deadline)
    let mut voted: HashMap<String, (Payment, bool)> = HashMap::new();
    if !vote_ids.is_empty() {
        for row in answers.next().expect("the votes' answer") {
            let p = payment(&row)?;
            voted.insert(p.e2e_id.clone(), (p, row.get(COLUMN_COUNT)));
        }
    }
    let mut available: HashMap<String, Decimal> = HashMap::new();
    if !vote_ids.is_empty() || !payer_ids.is_empty() {
        for row in answers.next().expect("the banks' answer") {
            available.insert(row.get(0), row.get(1));
        }
    }
    let mut stored: HashMap<String, Payment> = HashMap::new();
    // (type, value) -> (bank, account number, holder name)
    let mut keys: HashMap<(String, String), (String, String, String)> = HashMap::new();
    if !inits.is_empty() {
        for row in answers.next().expect("the stored initiations' answer") {
            let p = payment(&row)?;
            stored.insert(p.e2e_id.clone(), p);
        }
        for row in answers.next().expect("the keys' answer") {
            keys.insert((row.get(0), row.get(1)), (row.get(2), row.get(3), row.get(4)));
        }
    }

    // 4. Each command in order, against the figures as the earlier ones left them.
    let mut pending = Vec::with_capacity(commands.len());
    let mut new_rows: Vec<NewRow> = Vec::new();
    let mut new_by_id: HashMap<String, usize> = HashMap::new();
    // e2e_id -> (status, reason) decided by this batch
    let mut decisions: Vec<(String, Status, Option<String>)> = Vec::new();
    let mut decided_here: HashMap<String, usize> = HashMap::new();
    // bank -> (position delta, pending_out delta)
    let mut moves: HashMap<String, (Decimal, Decimal)> = HashMap::new();
    let mut acks: Vec<(&str, &str)> = Vec::new();
    for command in commands {
        pending.push(match command {
            Command::Initiate(init) => {
                if let Some(p) = stored.get(&init.e2e_id) {
                    Pending::Done(same(p.clone(), init).map(|p| Answer::Initiated(p, false)))
                } else if let Some(&index) = new_by_id.get(&init.e2e_id) {
                    Pending::New(index, false)
                } else {
                    match keys.get(&(init.key_type.clone(), init.key_value.clone())) {
                        None => Pending::Done(Err(SwitchError::not_found("no account holds this key"))),
                        Some((bank, _, _)) if *bank == init.payer_bank => Pending::Done(Err(SwitchError::new(
                            Code::SameBank,
                            "this key belongs to an account at the payer's own bank: not an inter-bank payment",
                        ))),
                        Some((bank, account, holder)) => match available.get_mut(&init.payer_bank) {
                            None => Pending::Done(Err(SwitchError::not_found(format!("no bank {} in the consortium", init.payer_bank)))),
                            Some(left) => {
                                let covered = *left >= init.amount;
                                if covered {
                                    *left -= init.amount;
                                    moves.entry(init.payer_bank.clone()).or_default().1 += init.amount;
                                }
                                // The payee of a payment refused here was never asked: it is owed no decision.
                                let (status, reason) = if covered {
                                    (Status::Initiated, None)
                                } else {
                                    (Status::Aborted, Some(REASON_LIQUIDITY))
                                };
                                new_by_id.insert(init.e2e_id.clone(), new_rows.len());
                                new_rows.push(NewRow {
                                    init: init.clone(),
                                    payee_bank: bank.clone(),
                                    account_number: account.clone(),
                                    holder_name: Some(holder.clone()),
                                    status,
                                    reason,
                                });
                                Pending::New(new_rows.len() - 1, true)
                            }
                        },
                    }
                }
            }
            Command::Vote {
                e2e_id,
                payee_bank,
                yes,
                no_reason,
            } => match voted.get(e2e_id) {
                Some((p, _)) if p.payee_bank != *payee_bank => Pending::Done(Err(not_owed(payee_bank, e2e_id))),
                None => Pending::Done(Err(not_owed(payee_bank, e2e_id))),
                Some(_) if decided_here.contains_key(e2e_id) => Pending::Decided(e2e_id.clone()),
                Some((p, _)) if p.status.is_decided() => Pending::Done(Ok(Answer::Payment(p.clone()))),
                Some((p, in_time)) => {
                    let commit = *yes && *in_time;
                    let reason = match (commit, *in_time) {
                        (true, _) => None,
                        (false, false) => Some(REASON_TIMEOUT.to_string()),
                        (false, true) => Some(no_reason.clone()),
                    };
                    let payer = moves.entry(p.payer_bank.clone()).or_default();
                    payer.1 -= p.amount;
                    if commit {
                        payer.0 -= p.amount;
                        moves.entry(p.payee_bank.clone()).or_default().0 += p.amount;
                    } else if let Some(left) = available.get_mut(&p.payer_bank) {
                        *left += p.amount;
                    }
                    decided_here.insert(e2e_id.clone(), decisions.len());
                    decisions.push((e2e_id.clone(), if commit { Status::Committed } else { Status::Aborted }, reason));
                    Pending::Decided(e2e_id.clone())
                }
            },
            Command::Ack { bank, e2e_id } => {
                acks.push((e2e_id.as_str(), bank.as_str()));
                Pending::Acked
            }
        });
    }

    // 5. The writes, sent at once: new payments, decisions, the banks' figures, acknowledgements.
    let column = |f: &dyn Fn(&NewRow) -> String| new_rows.iter().map(f).collect::<Vec<String>>();
    let (new_ids, payers, payees) = (
        column(&|r| r.init.e2e_id.clone()),
        column(&|r| r.init.payer_bank.clone()),
        column(&|r| r.payee_bank.clone()),
    );
    let (key_types, key_values, accounts) = (
        column(&|r| r.init.key_type.clone()),
        column(&|r| r.init.key_value.clone()),
        column(&|r| r.account_number.clone()),
    );
    let (currencies, statuses, memos) = (
        column(&|r| r.init.currency.clone()),
        column(&|r| r.status.as_str().to_string()),
        column(&|r| r.init.memo.clone()),
    );
    let amounts: Vec<Decimal> = new_rows.iter().map(|r| r.init.amount).collect();
    let reasons: Vec<Option<&str>> = new_rows.iter().map(|r| r.reason).collect();
    let timeouts: Vec<i64> = new_rows.iter().map(|r| r.init.timeout_ms).collect();
    let insert = client
        .prepare_cached(&format!(
            "INSERT INTO payments (e2e_id, payer_bank, payee_bank, payee_key_type, payee_key_value, payee_account_number, amount, currency, status, reason,
                                   deadline, decided_at, payee_acked_at, memo)
             SELECT n.e2e, n.payer, n.payee, n.key_type, n.key_value, n.account, n.amount, n.currency, n.status, n.reason,
                    now() + n.timeout_ms * interval '1 millisecond',
                    CASE WHEN n.status = 'aborted' THEN now() END, CASE WHEN n.status = 'aborted' THEN now() END, n.memo
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::numeric[], $8::text[], $9::text[],
                           $10::text[], $11::int8[], $12::text[])
                    AS n(e2e, payer, payee, key_type, key_value, account, amount, currency, status, reason, timeout_ms, memo)
             ON CONFLICT (e2e_id) DO NOTHING RETURNING {COLUMNS}"
        ))
        .await
        .map_err(db_error)?;

    let decided_ids: Vec<&str> = decisions.iter().map(|d| d.0.as_str()).collect();
    let decided_statuses: Vec<&str> = decisions.iter().map(|d| d.1.as_str()).collect();
    let decided_reasons: Vec<Option<&str>> = decisions.iter().map(|d| d.2.as_deref()).collect();
    let decide = client
        .prepare_cached(&format!(
            "UPDATE payments SET status = d.new_status, reason = d.new_reason, decided_at = now()
               FROM unnest($1::text[], $2::text[], $3::text[]) AS d(id, new_status, new_reason)
              WHERE e2e_id = d.id RETURNING {COLUMNS}"
        ))
        .await
        .map_err(db_error)?;

    moves.retain(|_, (position, pending_out)| !position.is_zero() || !pending_out.is_zero());
    let mut banks: Vec<(&String, &(Decimal, Decimal))> = moves.iter().collect();
    banks.sort_unstable_by_key(|(id, _)| *id);
    let moved_banks: Vec<&str> = banks.iter().map(|(id, _)| id.as_str()).collect();
    let positions: Vec<Decimal> = banks.iter().map(|(_, m)| m.0).collect();
    let reservations: Vec<Decimal> = banks.iter().map(|(_, m)| m.1).collect();
    let move_banks = client
        .prepare_cached(
            "UPDATE banks SET position = position + d.position_delta, pending_out = pending_out + d.pending_delta
               FROM unnest($1::text[], $2::numeric[], $3::numeric[]) AS d(bank, position_delta, pending_delta) WHERE id = d.bank RETURNING id",
        )
        .await
        .map_err(db_error)?;

    // One row per payment (an UPDATE applies one joined row per target): both of its banks' acknowledgements.
    let mut by_payment: Vec<(&str, &str, &str)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for &(e2e_id, bank) in &acks {
        match index.get(e2e_id) {
            Some(&i) => by_payment[i].2 = bank,
            None => {
                index.insert(e2e_id, by_payment.len());
                by_payment.push((e2e_id, bank, bank));
            }
        }
    }
    let acked_ids: Vec<&str> = by_payment.iter().map(|a| a.0).collect();
    let first: Vec<&str> = by_payment.iter().map(|a| a.1).collect();
    let second: Vec<&str> = by_payment.iter().map(|a| a.2).collect();
    let acknowledge = client
        .prepare_cached(&format!(
            "UPDATE payments SET
                 payer_acked_at = CASE WHEN payer_bank IN (a.bank1, a.bank2) THEN coalesce(payer_acked_at, now()) ELSE payer_acked_at END,
                 payee_acked_at = CASE WHEN payee_bank IN (a.bank1, a.bank2) THEN coalesce(payee_acked_at, now()) ELSE payee_acked_at END
               FROM unnest($1::text[], $2::text[], $3::text[]) AS a(id, bank1, bank2)
              WHERE e2e_id = a.id AND decided_at IS NOT NULL AND (payer_bank IN (a.bank1, a.bank2) OR payee_bank IN (a.bank1, a.bank2))
              RETURNING {COLUMNS}"
        ))
        .await
        .map_err(db_error)?;

    let insert_params: [&(dyn ToSql + Sync); 12] =
        [&new_ids, &payers, &payees, &key_types, &key_values, &accounts, &amounts, &currencies, &statuses, &reasons, &timeouts, &memos];
    let decide_params: [&(dyn ToSql + Sync); 3] = [&decided_ids, &decided_statuses, &decided_reasons];
    let banks_params: [&(dyn ToSql + Sync); 3] = [&moved_banks, &positions, &reservations];
    let ack_params: [&(dyn ToSql + Sync); 3] = [&acked_ids, &first, &second];
    let mut writes: Vec<pipeline::Query> = Vec::with_capacity(4);
    if !new_rows.is_empty() {
        writes.push((&insert, &insert_params));
    }
    if !decisions.is_empty() {
        writes.push((&decide, &decide_params));
    }
    if !moved_banks.is_empty() {
        writes.push((&move_banks, &banks_params));
    }
    if !acked_ids.is_empty() {
        writes.push((&acknowledge, &ack_params));
    }
    let mut answers = tx.run(&writes).await.map_err(db_error)?.into_iter();
    drop(writes);

    let mut inserted: HashMap<String, Payment> = HashMap::new();
    if !new_rows.is_empty() {
        let rows = answers.next().expect("the initiations' answer");
        if rows.len() != new_rows.len() {
            // Another transaction recorded one of them without the payer's lock: nothing here is sure; each runs alone.
            tx.rollback().await.map_err(db_error)?;
            return Err(SwitchError::new(Code::Unavailable, "a payment was recorded concurrently; retry"));
        }
        for row in rows {
            let p = payment(&row)?;
            inserted.insert(p.e2e_id.clone(), p);
        }
    }
    let mut decided: HashMap<String, Payment> = HashMap::new();
    if !decisions.is_empty() {
        for row in answers.next().expect("the decisions' answer") {
            let p = payment(&row)?;
            decided.insert(p.e2e_id.clone(), p);
        }
    }
    if !moved_banks.is_empty() {
        let updated = answers.next().expect("the banks' answer").len();
        assert_eq!(updated, moved_banks.len(), "every bank moved was locked above");
    }
    // e2e_id -> the payment after its acknowledgements
    let mut acked: HashMap<String, Payment> = HashMap::new();
    if !acked_ids.is_empty() {
        for row in answers.next().expect("the acknowledgements' answer") {
            let p = payment(&row)?;
            acked.insert(p.e2e_id.clone(), p);
        }
    }
    tx.commit().await.map_err(db_error)?;
    for p in inserted.values().chain(decided.values()).filter(|p| p.status.is_decided()) {
        payments::count_decisions(p.status, 1);
    }

    // 6. The answers.
    let mut answers = Vec::with_capacity(commands.len());
    for (command, pending) in commands.iter().zip(pending) {
        answers.push(match pending {
            Pending::Done(answer) => answer,
            Pending::New(index, recorded_now) => {
                let row = &new_rows[index];
                let mut p = inserted.get(&row.init.e2e_id).cloned().expect("every new row was inserted");
                p.payee_holder_name_masked = row.holder_name.as_deref().map(mask_name);
                let Command::Initiate(init) = command else { unreachable!("only initiations are new") };
                if recorded_now {
                    tracing::info!(e2e_id = %p.e2e_id, payer = %p.payer_bank, payee = %p.payee_bank, amount = %p.amount, status = p.status.as_str(), "payment initiated");
                }
                same(p, init).map(|p| Answer::Initiated(p, recorded_now))
            }
            Pending::Decided(e2e_id) => {
                let p = decided.get(&e2e_id).cloned().expect("every decision was written");
                tracing::info!(e2e_id = %p.e2e_id, payee = %p.payee_bank, status = p.status.as_str(), reason = p.reason.as_deref(), "payment decided");
                Ok(Answer::Payment(p))
            }
            Pending::Acked => {
                let Command::Ack { bank, e2e_id } = command else { unreachable!("only acknowledgements are acked") };
                match acked.get(e2e_id) {
                    Some(p) if p.payer_bank == *bank || p.payee_bank == *bank => Ok(Answer::Payment(p.clone())),
                    // Not updated for this bank: tell apart "not yours / no such payment" from "not decided yet".
                    _ => match payments::decision(pool, bank, e2e_id).await {
                        Ok(current) => Err(SwitchError::new(
                            Code::NotDecided,
                            format!("payment {} is {}: nothing to acknowledge yet", current.e2e_id, current.status.as_str()),
                        )),
                        Err(e) => Err(e),
                    },
                }
            }
        });
    }
    Ok(answers)
}

fn not_owed(bank: &str, e2e_id: &str) -> SwitchError {
    SwitchError::not_found(format!("bank {bank} is owed no payment {e2e_id}"))
}

/// One command alone.
pub async fn apply_one(pool: &Pool, command: Command) -> SwitchResult<Answer> {
    apply(pool, std::slice::from_ref(&command)).await?.pop().expect("one answer per command")
}
struct Queued {
    command: Command,
    reply: oneshot::Sender<SwitchResult<Answer>>,
}

/// The queue in front of `apply`, and its one worker.
pub struct Batcher {
    pool: Pool,
    sender: mpsc::Sender<Queued>,
}

impl Batcher {
    /// Starts the worker (on the current runtime).
    pub fn start(pool: Pool) -> Batcher {
        let (sender, receiver) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(worker(pool.clone(), receiver));
        Batcher { pool, sender }
    }

    /// Applies `command` with whatever else is queued. Every command is
    /// idempotent, so one whose worker went away is applied again alone.
    pub async fn submit(&self, command: Command) -> SwitchResult<Answer> {
        let (reply, answer) = oneshot::channel();
        match self.sender.try_send(Queued { command, reply }) {
            Ok(()) => match answer.await {
                Ok(answer) => answer,
                Err(_) => Err(SwitchError::new(Code::Unavailable, "the switch is stopping; retry").with_retry_after(1)),
            },
            Err(mpsc::error::TrySendError::Full(queued) | mpsc::error::TrySendError::Closed(queued)) => apply_one(&self.pool, queued.command).await,
        }
    }
}

impl Batcher {
    /// Applies `commands` with whatever else is queued (they mostly share one batch); one answer each, in order.
    pub async fn submit_all(&self, commands: Vec<Command>) -> Vec<SwitchResult<Answer>> {
        let mut waiting = Vec::with_capacity(commands.len());
        for command in commands {
            let (reply, answer) = oneshot::channel();
            waiting.push(match self.sender.try_send(Queued { command, reply }) {
                Ok(()) => Ok(answer),
                Err(mpsc::error::TrySendError::Full(queued) | mpsc::error::TrySendError::Closed(queued)) => Err(queued.command),
            });
        }
        let mut answers = Vec::with_capacity(waiting.len());
        for waiting in waiting {
            answers.push(match waiting {
                Ok(answer) => answer.await.unwrap_or_else(|_| Err(SwitchError::new(Code::Unavailable, "the switch is stopping; retry").with_retry_after(1))),
                Err(command) => apply_one(&self.pool, command).await,
            });
        }
        answers
    }
}

async fn worker(pool: Pool, mut receiver: mpsc::Receiver<Queued>) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let commands: Vec<Command> = batch.iter().map(|q| q.command.clone()).collect();
        metrics::histogram!("flexibank_switch_batch_commands").record(commands.len() as f64);
        let started = std::time::Instant::now();
        let applied = apply(&pool, &commands).await;
        metrics::histogram!("flexibank_switch_batch_seconds").record(started.elapsed().as_secs_f64());
        match applied {
            Ok(answers) => {
                for (queued, answer) in batch.drain(..).zip(answers) {
                    let _ = queued.reply.send(answer);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.detail, commands = commands.len(), "a batch failed as a whole; its commands run one at a time");
                for queued in batch.drain(..) {
                    let answer = apply_one(&pool, queued.command).await;
                    let _ = queued.reply.send(answer);
                }
            }
        }
    }
}
