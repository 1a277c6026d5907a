//! Each step of a payment at this bank as a `grouped::Group`: the payer's
//! hold (step 1), the payee's vote (step 4), either side's posting of the
//! decision (step 6) and the acknowledgement to the switch, each in a shared
//! transaction (sql/functions/interbank_*_many.sql) with its single-payment
//! path for a group that failed. `payments` decides when each step runs.

use std::sync::atomic::Ordering;

use flexibank_consortium::{
    pipeline::{Pipelined, Query},
    protocol::{self, Prepare, Status, Vote, CURRENCY},
};
use rust_decimal::Decimal;
use tokio_postgres::{types::ToSql, IsolationLevel, Row};
use uuid::Uuid;

use super::{
    grouped::{Context, Group},
    record::{payment_of, InterbankPayment, PAYMENT_COLUMNS},
};
use crate::{
    db::db_error,
    error::{ApiError, ApiResult, Code},
};

/// Step 1 for one payment: the hold and the payment's row, or a refusal
/// that leaves nothing; `Err(existing)` is a replay (same customer, key and body).
#[derive(Debug, Clone)]
pub struct Place {
    pub user_id: Uuid,
    pub account_id: Uuid,
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub e2e_id: String,
    pub amount: Decimal,
    pub key_type: &'static str,
    pub key_value: String,
    pub memo: String,
    pub request_id: String,
    pub client_addr: String,
}

/// Holds placed in groups (`grouped`, sql/functions/interbank_place_many.sql), at
/// READ COMMITTED with the payers' accounts locked first (the rows every other
/// movement of those accounts locks too), so that each check of `balance - held`
/// and its hold see one figure.
pub struct PlaceGroup;

impl Group for PlaceGroup {
    type Item = Place;
    type Out = Result<InterbankPayment, InterbankPayment>;
    const MAX_ITEMS: usize = 256;
    const NAME: &'static str = "place";

    async fn apply(context: &Context, items: &[Place]) -> ApiResult<Vec<ApiResult<Self::Out>>> {
        let client = context.db.writer().await?;
        let columns = PlaceColumns::of(items);
        let place = client.prepare_cached(PLACE_MANY).await.map_err(db_error)?;
        let read = client.prepare_cached(&read_placed()).await.map_err(db_error)?;
        let (tx, mut answers) = Pipelined::begin(
            client,
            BEGIN_READ_COMMITTED,
            &[(&place, &columns.params()), (&read, &[&columns.user_ids, &columns.idempotency_keys])],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let rows = answers.pop().expect("two answers");
        let outcomes: Vec<serde_json::Value> = returned(&answers[0], "interbank_place_many")?;
        placed(items, &outcomes, &rows)
    }

    async fn alone(context: &Context, item: &Place) -> ApiResult<Self::Out> {
        Self::apply(context, std::slice::from_ref(item)).await?.pop().expect("one answer")
    }
}

const PLACE_MANY: &str = "SELECT interbank_place_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// The payments a group of holds placed or replayed, by their payers' idempotency keys
/// (known before the holds' answers, so it is sent with them).
fn read_placed() -> String {
    format!(
        "SELECT {PAYMENT_COLUMNS} FROM interbank_payments
          WHERE (created_by, idempotency_key) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
    )
}

/// `interbank_place_many`'s arguments, one array per column.
struct PlaceColumns<'a> {
    user_ids: Vec<Uuid>,
    account_ids: Vec<Uuid>,
    idempotency_keys: Vec<&'a str>,
    hashes: Vec<&'a [u8]>,
    e2e_ids: Vec<&'a str>,
    amounts: Vec<Decimal>,
    key_types: Vec<&'a str>,
    key_values: Vec<&'a str>,
    memos: Vec<&'a str>,
    request_ids: Vec<&'a str>,
    client_addrs: Vec<&'a str>,
}

impl<'a> PlaceColumns<'a> {
    fn of(items: &'a [Place]) -> Self {
        let text = |f: fn(&'a Place) -> &'a str| items.iter().map(f).collect::<Vec<&str>>();
        PlaceColumns {
            user_ids: items.iter().map(|i| i.user_id).collect(),
            account_ids: items.iter().map(|i| i.account_id).collect(),
            idempotency_keys: text(|i| &i.idempotency_key),
            hashes: items.iter().map(|i| i.request_hash.as_slice()).collect(),
            e2e_ids: text(|i| &i.e2e_id),
            amounts: items.iter().map(|i| i.amount).collect(),
            key_types: text(|i| i.key_type),
            key_values: text(|i| &i.key_value),
            memos: text(|i| &i.memo),
            request_ids: text(|i| &i.request_id),
            client_addrs: text(|i| &i.client_addr),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.user_ids,
            &self.account_ids,
            &self.idempotency_keys,
            &self.hashes,
            &self.e2e_ids,
            &self.amounts,
            &CURRENCY,
            &self.key_types,
            &self.key_values,
            &self.memos,
            &self.request_ids,
            &self.client_addrs,
        ]
    }
}

/// Step 1 for these payments inside the caller's transaction (a review's approval).
pub(super) async fn place_in(tx: &deadpool_postgres::Transaction<'_>, items: &[Place]) -> ApiResult<Vec<ApiResult<Result<InterbankPayment, InterbankPayment>>>> {
    let columns = PlaceColumns::of(items);
    let statement = tx.prepare_cached(PLACE_MANY).await.map_err(db_error)?;
    let outcomes: Vec<serde_json::Value> = tx.query_one(&statement, &columns.params()).await.map_err(db_error)?.get(0);
    let statement = tx.prepare_cached(&read_placed()).await.map_err(db_error)?;
    let rows = tx.query(&statement, &[&columns.user_ids, &columns.idempotency_keys]).await.map_err(db_error)?;
    placed(items, &outcomes, &rows)
}

/// Each hold's answer (`interbank_place_many`'s outcome) with its payment's row.
fn placed(items: &[Place], outcomes: &[serde_json::Value], rows: &[Row]) -> ApiResult<Vec<ApiResult<Result<InterbankPayment, InterbankPayment>>>> {
    assert_eq!(outcomes.len(), items.len(), "one answer per payment");
    let payments: std::collections::HashMap<Uuid, InterbankPayment> = rows.iter().map(payment_of).map(|p| (p.id, p)).collect();
    Ok(outcomes
        .iter()
        .map(|answer| {
            let payment = || {
                let id: Option<Uuid> = answer["id"].as_str().and_then(|id| id.parse().ok());
                id.and_then(|id| payments.get(&id).cloned())
                    .ok_or_else(|| ApiError::internal(format!("a hold's answer without its payment: {answer}")))
            };
            match answer["outcome"].as_str() {
                Some("placed") => Ok(Ok(payment()?)),
                Some("replay") => Ok(Err(payment()?)),
                _ => Err(refusal(answer)),
            }
        })
        .collect())
}

/// A hold's refusal as its problem.
fn refusal(answer: &serde_json::Value) -> ApiError {
    let detail = answer["detail"].as_str().unwrap_or_default().to_string();
    let code = match answer["code"].as_str() {
        Some("not_found") => Code::NotFound,
        Some("currency_mismatch") => Code::CurrencyMismatch,
        Some("account_inactive") => Code::AccountInactive,
        Some("insufficient_funds") => Code::InsufficientFunds,
        Some("idempotency_key_reused") => Code::IdempotencyKeyReused,
        _ => return ApiError::internal(format!("a hold's answer: {answer}")),
    };
    ApiError::new(code, detail)
}

/// Where an outgoing payment went, as the switch said: the payee's bank, masked name and account.
#[derive(Debug, Clone)]
pub struct PayeeSeen {
    pub bank_id: String,
    pub bank_name: Option<String>,
    pub holder_name_masked: Option<String>,
    pub account_number_masked: String,
}

/// Records each outgoing payment's payee, once (the first answer's), where no decision is applied
/// with it (a group's decisions carry their payees into `interbank_settle_many`).
pub(super) async fn record_payee(tx: &deadpool_postgres::Transaction<'_>, e2e_ids: &[&str], payees: &[&PayeeSeen]) -> ApiResult<()> {
    let statement = tx
        .prepare_cached(
            "UPDATE interbank_payments p SET counterparty_bank_id = u.bank_id, counterparty_bank_name = coalesce(u.bank_name, p.counterparty_bank_name),
                    holder_name_masked = coalesce(u.holder_name_masked, p.holder_name_masked), account_number_masked = u.account_number_masked
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(e2e_id, bank_id, bank_name, holder_name_masked, account_number_masked)
              WHERE p.e2e_id = u.e2e_id AND p.direction = 'out' AND p.counterparty_bank_id IS NULL",
        )
        .await
        .map_err(db_error)?;
    let bank_ids: Vec<&str> = payees.iter().map(|p| p.bank_id.as_str()).collect();
    let bank_names: Vec<Option<&str>> = payees.iter().map(|p| p.bank_name.as_deref()).collect();
    let holders: Vec<Option<&str>> = payees.iter().map(|p| p.holder_name_masked.as_deref()).collect();
    let accounts: Vec<&str> = payees.iter().map(|p| p.account_number_masked.as_str()).collect();
    tx.execute(&statement, &[&e2e_ids, &bank_ids, &bank_names, &holders, &accounts])
        .await
        .map_err(db_error)?;
    Ok(())
}

/// A decision to apply at this bank (step 6), and for an outgoing payment what the switch said of its payee.
#[derive(Debug, Clone)]
pub struct Settle {
    pub e2e_id: String,
    pub status: Status,
    pub reason: Option<String>,
    pub payee: Option<PayeeSeen>,
}

/// Decisions applied in groups (`grouped`, sql/functions/interbank_settle_many.sql).
pub struct SettleGroup;

impl Group for SettleGroup {
    type Item = Settle;
    type Out = Option<InterbankPayment>;
    const MAX_ITEMS: usize = 256;
    const NAME: &'static str = "settle";

    async fn apply(context: &Context, items: &[Settle]) -> ApiResult<Vec<ApiResult<Option<InterbankPayment>>>> {
        assert!(items.iter().all(|i| i.status.is_decided()), "only a decision is applied");
        let client = context.db.writer().await?;
        let ids: Vec<&str> = items.iter().map(|i| i.e2e_id.as_str()).collect();
        let statuses: Vec<&str> = items.iter().map(|i| i.status.as_str()).collect();
        let reasons: Vec<Option<&str>> = items.iter().map(|i| i.reason.as_deref()).collect();
        let payee = |f: fn(&PayeeSeen) -> Option<&str>| items.iter().map(|i| i.payee.as_ref().and_then(f)).collect::<Vec<Option<&str>>>();
        let (banks, names, holders, accounts) = (
            payee(|p| Some(p.bank_id.as_str())),
            payee(|p| p.bank_name.as_deref()),
            payee(|p| p.holder_name_masked.as_deref()),
            payee(|p| Some(p.account_number_masked.as_str())),
        );
        // The shards exist from the first posting on (accounts are never deleted): asked for until a group committed.
        let ensure_first = !context.settlement_ready.load(Ordering::Relaxed);
        let ensure = client.prepare_cached(ENSURE_SETTLEMENT_ACCOUNT).await.map_err(db_error)?;
        let settle = client.prepare_cached("SELECT interbank_settle_many($1, $2, $3, $4, $5, $6, $7)").await.map_err(db_error)?;
        let read = client
            .prepare_cached(&format!("SELECT {PAYMENT_COLUMNS} FROM interbank_payments WHERE e2e_id = ANY($1)"))
            .await
            .map_err(db_error)?;
        let (ensure_params, settle_params, read_params): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 7], [&(dyn ToSql + Sync); 1]) =
            ([&CURRENCY], [&ids, &statuses, &reasons, &banks, &names, &holders, &accounts], [&ids]);
        let mut queries: Vec<Query> = Vec::with_capacity(3);
        if ensure_first {
            queries.push((&ensure, &ensure_params));
        }
        queries.push((&settle, &settle_params));
        queries.push((&read, &read_params));
        let (tx, mut answers) = Pipelined::begin(client, BEGIN_READ_COMMITTED, &queries).await.map_err(db_error)?;
        let position = tx.commit_at_position().await.map_err(db_error)?;
        context.settlement_ready.store(true, Ordering::Relaxed);
        // Before any answer goes out: a payer told "posted" finds a position at or after its posting.
        context.posted_at(&position);
        let rows = answers.pop().expect("the payments' rows");
        let known: Vec<bool> = returned(&answers.pop().expect("the settlement's answer"), "interbank_settle_many")?;
        let by_id: std::collections::HashMap<String, &Row> = rows.iter().map(|r| (r.get::<_, String>(1), r)).collect();
        assert_eq!(known.len(), items.len(), "one flag per payment");
        Ok(items
            .iter()
            .zip(known)
            .map(|(item, known)| {
                // Known here: its row exists (this transaction just settled it).
                let row = if known { by_id.get(&item.e2e_id).copied() } else { None };
                Ok(row.map(|row| {
                    count_decision(item.status, row);
                    payment_of(row)
                }))
            })
            .collect())
    }

    async fn alone(context: &Context, item: &Settle) -> ApiResult<Option<InterbankPayment>> {
        let mut client = context.db.writer().await?;
        let tx = read_committed(&mut client).await?;
        if let Some(payee) = &item.payee {
            record_payee(&tx, &[&item.e2e_id], &[payee]).await?;
        }
        let settled = settle_in(&tx, &item.e2e_id, item.status, item.reason.as_deref()).await?;
        tx.commit().await.map_err(db_error)?;
        // As a group does: the position behind this commit, before the answer goes out. A failure is
        // answered like a failed commit; every step is idempotent, so a retry finds the posting as it stands.
        let position: String = client.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.map_err(db_error)?.get(0);
        context.posted_at(&position);
        Ok(settled)
    }
}

fn count_decision(status: Status, row: &Row) {
    metrics::counter!("flexibank_interbank_decisions_total", "status" => status.as_str(), "direction" => row.get::<_, String>(15)).increment(1);
}

/// Acknowledgements to the switch, many per call (`grouped`).
pub struct AckGroup;

impl Group for AckGroup {
    type Item = String;
    /// Whether the switch recorded it.
    type Out = bool;
    const MAX_ITEMS: usize = protocol::MAX_ACKS;
    const NAME: &'static str = "ack";

    async fn apply(context: &Context, e2e_ids: &[String]) -> ApiResult<Vec<ApiResult<bool>>> {
        // A switch out of reach is not retried here payment by payment: it re-sends the decisions.
        let recorded = match context.link.acknowledge_many(e2e_ids).await {
            Ok(recorded) => recorded.into_iter().collect::<std::collections::HashSet<String>>(),
            Err(e) => {
                tracing::debug!(payments = e2e_ids.len(), error = %e, "acknowledgements not delivered; the switch will re-send the decisions");
                Default::default()
            }
        };
        Ok(e2e_ids.iter().map(|id| Ok(recorded.contains(id))).collect())
    }

    async fn alone(context: &Context, e2e_id: &String) -> ApiResult<bool> {
        Ok(context.link.acknowledge(e2e_id).await.is_ok())
    }
}

async fn settle_in(tx: &deadpool_postgres::Transaction<'_>, e2e_id: &str, status: Status, reason: Option<&str>) -> ApiResult<Option<InterbankPayment>> {
    assert!(status.is_decided(), "only a decision is applied");
    ensure_settlement_account(tx).await?;
    let statement = tx.prepare_cached("SELECT interbank_settle($1, $2, $3)").await.map_err(db_error)?;
    let applied: Option<serde_json::Value> = tx.query_one(&statement, &[&e2e_id, &status.as_str(), &reason]).await.map_err(db_error)?.get(0);
    if applied.is_none() {
        return Ok(None);
    }
    let statement = tx
        .prepare_cached(&format!("SELECT {PAYMENT_COLUMNS} FROM interbank_payments WHERE e2e_id = $1"))
        .await
        .map_err(db_error)?;
    let row = tx.query_one(&statement, &[&e2e_id]).await.map_err(db_error)?;
    count_decision(status, &row);
    Ok(Some(payment_of(&row)))
}

/// The settlement account of the consortium's currency, in shards like the
/// vault (sql/V18), opened at the bank's first branch on first use.
async fn ensure_settlement_account(tx: &deadpool_postgres::Transaction<'_>) -> ApiResult<()> {
    let statement = tx.prepare_cached(ENSURE_SETTLEMENT_ACCOUNT).await.map_err(db_error)?;
    tx.execute(&statement, &[&CURRENCY]).await.map_err(db_error)?;
    Ok(())
}

/// The settlement account's shards in `$1`'s currency, inserted where missing (a no-op once they exist).
const ENSURE_SETTLEMENT_ACCOUNT: &str = "INSERT INTO accounts (branch_id, kind, currency, vault_shard)
     SELECT first.id, 'settlement', $1, shard
       FROM (SELECT b.id FROM branches b ORDER BY b.created_at, b.id LIMIT 1) first,
            generate_series(0, vault_shard_count() - 1) AS shard
      WHERE (SELECT count(*) FROM accounts WHERE kind = 'settlement' AND currency = $1) < vault_shard_count()
     ON CONFLICT (currency, vault_shard) WHERE kind = 'settlement' DO NOTHING";

/// Votes in groups (`grouped`, sql/functions/interbank_prepare_many.sql).
pub struct PrepareGroup;

impl Group for PrepareGroup {
    type Item = Prepare;
    type Out = Vote;
    const MAX_ITEMS: usize = 256;
    const NAME: &'static str = "prepare";

    async fn apply(context: &Context, items: &[Prepare]) -> ApiResult<Vec<ApiResult<Vote>>> {
        let client = context.db.writer().await?;
        let column = |f: fn(&Prepare) -> &str| items.iter().map(f).collect::<Vec<&str>>();
        let amounts: Vec<Decimal> = items.iter().map(|i| i.amount).collect();
        let (ids, accounts, currencies) = (column(|i| &i.e2e_id), column(|i| &i.account_number), column(|i| &i.currency));
        let (payers, payer_names, memos) = (column(|i| &i.payer_bank), column(|i| &i.payer_bank_name), column(|i| &i.memo));
        let statement = client.prepare_cached("SELECT interbank_prepare_many($1, $2, $3, $4, $5, $6, $7)").await.map_err(db_error)?;
        let (tx, answers) = Pipelined::begin(
            client,
            BEGIN_READ_COMMITTED,
            &[(&statement, &[&ids, &accounts, &amounts, &currencies, &payers, &payer_names, &memos])],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let votes: Vec<String> = returned(&answers[0], "interbank_prepare_many")?;
        assert_eq!(votes.len(), items.len(), "one vote per payment");
        Ok(items
            .iter()
            .zip(votes)
            .map(|(item, vote)| match vote.as_str() {
                "yes" => Ok(Vote { yes: true, reason: None }),
                "e2e_id_reused" => Err(ApiError::new(
                    Code::IdempotencyKeyReused,
                    format!("e2e_id {} names another payment here", item.e2e_id),
                )),
                reason => Ok(Vote {
                    yes: false,
                    reason: Some(reason.to_string()),
                }),
            })
            .collect())
    }

    async fn alone(context: &Context, message: &Prepare) -> ApiResult<Vote> {
        prepare_alone(context, message).await
    }
}

/// Step 4 for one payment in its own transaction (`message.memo` already as this bank keeps it).
async fn prepare_alone(context: &Context, message: &Prepare) -> ApiResult<Vote> {
    let no = |reason: &str| {
        Ok(Vote {
            yes: false,
            reason: Some(reason.to_string()),
        })
    };
    let memo = &message.memo;
    let mut client = context.db.writer().await?;
    let tx = read_committed(&mut client).await?;
    let account = tx
        .query_opt(
            "SELECT id, kind, currency, status FROM accounts WHERE number = $1 FOR SHARE",
            &[&message.account_number],
        )
        .await
        .map_err(db_error)?;
    if let Some(row) = tx
        .query_opt("SELECT status, direction, amount FROM interbank_payments WHERE e2e_id = $1", &[&message.e2e_id])
        .await
        .map_err(db_error)?
    {
        let (status, direction, amount): (String, String, Decimal) = (row.get(0), row.get(1), row.get(2));
        if direction != "in" || amount != message.amount {
            return Err(ApiError::new(
                Code::IdempotencyKeyReused,
                format!("e2e_id {} names another payment here", message.e2e_id),
            ));
        }
        return if status == "aborted" {
            no("payee_refused")
        } else {
            Ok(Vote { yes: true, reason: None })
        };
    }
    let Some(account) = account else { return no("payee_refused") };
    let (account_id, kind, currency, status): (Uuid, String, String, String) = (account.get(0), account.get(1), account.get(2), account.get(3));
    if kind == "vault" || kind == "settlement" {
        return no("payee_refused");
    }
    if status != "active" {
        return no("account_inactive");
    }
    if currency != message.currency {
        return no("currency_mismatch");
    }
    let inserted = tx
        .execute(
            "INSERT INTO interbank_payments (e2e_id, direction, account_id, amount, currency, counterparty_bank_id, counterparty_bank_name, status, memo)
             VALUES ($1, 'in', $2, $3, $4, $5, $6, 'prepared', $7) ON CONFLICT (e2e_id) DO NOTHING",
            &[
                &message.e2e_id,
                &account_id,
                &message.amount,
                &message.currency,
                &message.payer_bank,
                &message.payer_bank_name,
                &memo,
            ],
        )
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    if inserted == 0 {
        // A repeat raced us; its vote was yes unless it was decided against since.
        return Box::pin(prepare_alone(context, message)).await;
    }
    Ok(Vote { yes: true, reason: None })
}

/// The one value a grouped SQL function returns (`SELECT f(...)`), from its statement's rows.
fn returned<'a, T: tokio_postgres::types::FromSql<'a>>(rows: &'a [Row], function: &str) -> ApiResult<T> {
    let row = rows.first().ok_or_else(|| ApiError::internal(format!("{function} returned no row")))?;
    row.try_get(0).map_err(|e| ApiError::internal(format!("{function}'s answer: {e}")))
}

/// `read_committed`'s opening as one simple query, for `Pipelined::begin` (a group's
/// transaction: BEGIN and its statements in one round trip).
const BEGIN_READ_COMMITTED: &str = "START TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCAL plan_cache_mode = force_generic_plan";

/// A READ COMMITTED transaction: every step locks the rows it reads first, in one order, so
/// waiting on a lock never aborts it (SERIALIZABLE, the writer's default, would). Its statements
/// over arrays use generic plans, as the grouped SQL functions do: by default PostgreSQL planned
/// them again at every call (a custom plan for each array's length), ~5% of the banks' database
/// CPU in the inter-bank shape (docs/benchmarks.md, session 15).
pub(super) async fn read_committed(client: &mut crate::db::Client) -> ApiResult<deadpool_postgres::Transaction<'_>> {
    let tx = client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start().await.map_err(db_error)?;
    tx.batch_execute("SET LOCAL plan_cache_mode = force_generic_plan").await.map_err(db_error)?;
    Ok(tx)
}
