//! Review of unusual movements (issue 18; the contract's "Review"). The rules
//! live here and in `[review]` of the configuration, nowhere else. A flagged
//! transfer answers 202 `held_for_review` and holds its amount (sql/V25); a
//! branch admin with no hand in the customer, the account, its limit or the
//! payee approves it — the transfer happens once, in the approval's
//! transaction — or rejects it; the customer may cancel it; 24 h undecided,
//! it expires. Every step is audited and the customer hears of it. The
//! decision itself (approve, reject, cancel) is `approvals.rs`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    access::Caller,
    audit::{record_tx, AuditEntry},
    config::ReviewConfig,
    db::db_error,
    error::{ApiError, ApiResult, Code},
    money::{check_memo, store_answer, stored_answer, Amount, Moved},
    payees::PayeeKeyView,
    request::RequestMeta,
    state::AppState,
};

/// Reviews one list shows, newest first.
pub const MAX_LISTED: i64 = 200;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Review {
    pub id: Uuid,
    /// transfer (to an account of this bank), interbank (to a key, through the switch) or standing_order (one run of an order).
    #[schema(pattern = "^(transfer|interbank|standing_order)$")]
    pub kind: String,
    /// held_for_review while pending; approved, rejected, cancelled or expired once decided.
    pub status: String,
    pub from_account_id: Uuid,
    pub from_account_number: String,
    /// The payee's account (transfer, standing_order).
    pub to_account_number: Option<String>,
    /// The payee's key (interbank).
    pub to_key: Option<PayeeKeyView>,
    pub amount: String,
    pub currency: String,
    pub memo: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The transfer an approval made (transfer, standing_order).
    pub transfer_id: Option<Uuid>,
    /// The inter-bank payment an approval started (interbank): its outcome is the switch's.
    pub interbank_payment_id: Option<Uuid>,
    /// The order whose run this is (standing_order).
    pub standing_order_id: Option<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewList {
    pub items: Vec<Review>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// pending (the default), approved, rejected, cancelled, expired or all.
    #[param(pattern = "^(pending|approved|rejected|cancelled|expired|all)$")]
    pub status: Option<String>,
}

pub(crate) const REVIEW_COLUMNS: &str = "r.id, r.status, r.from_account_id, r.to_account_number, r.amount::text, r.currency, r.memo, r.reason, r.created_at,
    r.expires_at, r.decided_at, r.transfer_id, r.kind, r.to_key_type, r.to_key_value, (SELECT a.number FROM accounts a WHERE a.id = r.from_account_id),
    r.interbank_payment_id, r.order_id";

pub(crate) fn review_of(row: &tokio_postgres::Row) -> Review {
    let status: String = row.get(1);
    let key_type: Option<String> = row.get(13);
    let key_value: Option<String> = row.get(14);
    Review {
        id: row.get(0),
        kind: row.get(12),
        status: if status == "pending" { "held_for_review".into() } else { status },
        from_account_id: row.get(2),
        from_account_number: row.get(15),
        to_account_number: row.get(3),
        to_key: key_type.zip(key_value).map(|(key_type, value)| PayeeKeyView { key_type, value }),
        amount: row.get(4),
        currency: row.get(5),
        memo: row.get(6),
        reason: row.get(7),
        created_at: row.get(8),
        expires_at: row.get(9),
        decided_at: row.get(10),
        transfer_id: row.get(11),
        interbank_payment_id: row.get(16),
        standing_order_id: row.get(17),
    }
}

/// Where a screened movement pays.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// An account of this bank.
    Account(&'a str),
    /// A key of the consortium's directory (an inter-bank payment).
    Key { key_type: &'a str, value: &'a str },
}

impl Target<'_> {
    /// (review kind, account number, key type, key value), as the SQL functions take them.
    fn parts(self) -> (&'static str, Option<String>, Option<String>, Option<String>) {
        match self {
            Target::Account(number) => ("transfer", Some(number.to_string()), None, None),
            Target::Key { key_type, value } => ("interbank", None, Some(key_type.to_string()), Some(value.to_string())),
        }
    }
}

/// The rules as the SQL functions read them (sql/functions/review_reason.sql): amounts as decimal strings.
pub fn rules_json(rules: &ReviewConfig) -> serde_json::Value {
    serde_json::to_value(rules).expect("the review rules are plain data")
}

/// The smallest amount any rule looks at, in any currency: below it a transfer is never screened,
/// so everyday small transfers pay nothing for the rules.
fn screened(rules: &ReviewConfig, amount: Decimal) -> bool {
    rules
        .new_payee_amounts
        .values()
        .chain(rules.burst_min_amounts.values())
        .any(|threshold| amount >= *threshold)
}

/// The rules (sql/functions/review_reason.sql): why this movement must wait for a reviewer, or `None`.
pub async fn screen(state: &AppState, caller: &Caller, from_account_id: Uuid, to: Target<'_>, amount: Decimal) -> ApiResult<Option<String>> {
    let rules = &state.config.review;
    if !screened(rules, amount) {
        return Ok(None);
    }
    let (_, number, key_type, key_value) = to.parts();
    let client = state.db.primary_read_committed().await?;
    let row = client
        .query_one(
            "SELECT review_reason($1, $2, $3, $4, $5, $6, $7)",
            &[&caller.user_id, &from_account_id, &number, &key_type, &key_value, &amount, &rules_json(rules)],
        )
        .await
        .map_err(db_error)?;
    Ok(row.get(0))
}

/// A batch with an item the rules flag is refused whole (409 `review_required`, nothing moved): it is
/// all or nothing and answered at once, and a reviewer may take hours. That item goes alone, where it is
/// held for review. A repeat of a batch that went through is left to its stored answer.
pub async fn refuse_flagged_batch(state: &AppState, caller: &Caller, key: &str, request_hash: &[u8], items: &[crate::money::BatchItem]) -> ApiResult<()> {
    let Some(largest) = items.iter().map(|item| item.amount.0).max() else { return Ok(()) };
    if answered_before(state, caller, key, request_hash, largest).await?.is_some() {
        return Ok(());
    }
    for (index, item) in items.iter().enumerate() {
        if let Some(reason) = screen(state, caller, item.from_account_id, Target::Account(&item.to_account_number), item.amount.0).await? {
            return Err(ApiError::new(
                Code::ReviewRequired,
                format!("item {index} needs a reviewer ({reason}); send it on its own, where it is held for review, and the rest as a batch"),
            ));
        }
    }
    Ok(())
}

/// A request that may have been answered before (held, or moved): its stored answer, whatever the rules
/// say now (a repeat after the payee's first day must not send what a reviewer is still to decide).
pub async fn answered_before(state: &AppState, caller: &Caller, key: &str, request_hash: &[u8], amount: Decimal) -> ApiResult<Option<Moved>> {
    if !screened(&state.config.review, amount) {
        return Ok(None);
    }
    // One read of the stored answers on the primary, where they are written: no transaction needed.
    let client = state.db.primary_read_committed().await?;
    stored_answer(&**client, caller.user_id, key, request_hash).await
}

/// The flagged movement: held, recorded, answered 202 (and the same 202 again for its Idempotency-Key).
#[allow(clippy::too_many_arguments)]
pub async fn hold(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    key: &str,
    request_hash: &[u8],
    from_account_id: Uuid,
    to: Target<'_>,
    amount: Amount,
    memo: &Option<String>,
    reason: String,
) -> ApiResult<Moved> {
    let memo = check_memo(memo)?;
    let client_addr = meta.client_ip.to_string();
    let expire_after_h = i32::try_from(state.config.review.expire_after_h).expect("validated: at most a week");
    let (kind, number, key_type, key_value) = to.parts();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            if let Some(replayed) = stored_answer(&*tx, caller.user_id, key, request_hash).await? {
                return Ok(replayed);
            }
            // The payer and payee checks, the hold (status, available funds, the daily limit) and the notice.
            let id: Uuid = tx
                .query_one(
                    "SELECT hold_for_review($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)",
                    &[&caller.user_id, &kind, &from_account_id, &number, &key_type, &key_value, &amount.0, &memo, &reason, &expire_after_h],
                )
                .await
                .map_err(db_error)?
                .get(0);
            let row = tx
                .query_one(&format!("SELECT {REVIEW_COLUMNS} FROM reviews r WHERE r.id = $1"), &[&id])
                .await
                .map_err(db_error)?;
            let review = review_of(&row);
            let mut body = serde_json::to_value(&review).map_err(|e| ApiError::internal(format!("review body: {e}")))?;
            body["review_id"] = serde_json::json!(id);
            store_answer(&tx, caller.user_id, key, request_hash, 202, &body).await?;
            record_tx(
                &tx,
                &AuditEntry::success_by(
                    caller,
                    meta,
                    &client_addr,
                    "review.held",
                    format!("review:{id}"),
                    serde_json::json!({ "kind": review.kind, "from": review.from_account_number, "to": review.to_account_number, "to_key": review.to_key,
                                        "amount": review.amount, "reason": review.reason }),
                ),
            )
            .await?;
            tx.commit().await.map_err(db_error)?;
            Ok(Moved { status: 202, replayed: false, body })
        })
        .await
}

fn status_filter(query: &ReviewQuery) -> ApiResult<Option<String>> {
    match query.status.as_deref() {
        None | Some("pending") => Ok(Some("pending".into())),
        Some("all") => Ok(None),
        Some(s @ ("approved" | "rejected" | "cancelled" | "expired")) => Ok(Some(s.into())),
        Some(other) => Err(ApiError::validation(format!(
            "status {other:?} is not one of pending, approved, rejected, cancelled, expired, all"
        ))),
    }
}

pub async fn list_branch(client: &tokio_postgres::Client, branch_id: Uuid, query: &ReviewQuery) -> ApiResult<ReviewList> {
    let status = status_filter(query)?;
    let rows = client
        .query(
            &format!(
                "SELECT {REVIEW_COLUMNS} FROM reviews r WHERE r.branch_id = $1 AND ($2::text IS NULL OR r.status = $2) ORDER BY r.created_at DESC LIMIT $3"
            ),
            &[&branch_id, &status, &MAX_LISTED],
        )
        .await
        .map_err(db_error)?;
    Ok(ReviewList {
        items: rows.iter().map(review_of).collect(),
    })
}

pub async fn list_own(client: &tokio_postgres::Client, caller: &Caller) -> ApiResult<ReviewList> {
    let rows = client
        .query(
            &format!("SELECT {REVIEW_COLUMNS} FROM reviews r WHERE r.user_id = $1 ORDER BY r.created_at DESC LIMIT $2"),
            &[&caller.user_id, &MAX_LISTED],
        )
        .await
        .map_err(db_error)?;
    Ok(ReviewList {
        items: rows.iter().map(review_of).collect(),
    })
}

/// A standing order's run held by this review ends with it: done with the approved transfer (or the
/// inter-bank payment placed, for an order paying a key), or skipped (`review_rejected`,
/// `review_cancelled`, `review_expired`). Nothing for a review of no run.
pub(crate) async fn finish_run(tx: &tokio_postgres::Transaction<'_>, review_id: Uuid, transfer_id: Option<Uuid>, payment_id: Option<Uuid>, status: &str) -> ApiResult<()> {
    let done = transfer_id.is_some() || payment_id.is_some();
    let refusal = (!done).then(|| format!("review_{status}"));
    tx.execute(
        "UPDATE standing_order_runs r SET status = CASE WHEN $4 THEN 'done' ELSE 'skipped' END,
                transfer_id = $2, interbank_payment_id = $5, refusal_code = $3, ran_at = now()
          FROM reviews v WHERE v.id = $1 AND r.order_id = v.order_id AND r.due_key = v.due_key AND r.status = 'held'",
        &[&review_id, &transfer_id, &refusal, &done, &payment_id],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Reviews undecided past their time are rejected ("expired"): the hold comes back. Called by the scheduler.
pub async fn expire_due(state: &AppState) -> ApiResult<usize> {
    let due: Vec<Uuid> = {
        let client = state.db.primary_read_committed().await?;
        client
            .query(
                "SELECT id FROM reviews WHERE status = 'pending' AND expires_at <= now() ORDER BY expires_at LIMIT 64",
                &[],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let mut expired = 0;
    for review_id in due {
        let done: bool = state
            .db
            .retry_serializable(|| async {
                let mut client = state.db.writer().await?;
                let tx = client.transaction().await.map_err(db_error)?;
                let row = tx
                    .query_opt("SELECT user_id, amount::text, currency FROM reviews WHERE id = $1 AND status = 'pending' AND expires_at <= now() FOR UPDATE SKIP LOCKED", &[&review_id])
                    .await
                    .map_err(db_error)?;
                let Some(row) = row else { return Ok(false) };
                let (customer, amount, currency): (Uuid, String, String) = (row.get(0), row.get(1), row.get(2));
                tx.execute("SELECT void_hold($1)", &[&format!("review:{review_id}")]).await.map_err(db_error)?;
                tx.execute("UPDATE reviews SET status = 'expired', decided_at = now() WHERE id = $1", &[&review_id]).await.map_err(db_error)?;
                finish_run(&tx, review_id, None, None, "expired").await?;
                tx.execute(
                    "SELECT notify_user($1, 'review.rejected', false, jsonb_build_object('review_id', $2::text, 'status', 'expired', 'amount', $3::text, 'currency', $4::text))",
                    &[&customer, &review_id.to_string(), &amount, &currency],
                )
                .await
                .map_err(db_error)?;
                tx.execute(
                    "INSERT INTO audit_log (actor_role, branch_id, action, target, outcome, details)
                     SELECT 'system', branch_id, 'review.expired', 'review:' || id, 'success', '{}'::jsonb FROM reviews WHERE id = $1",
                    &[&review_id],
                )
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            })
            .await?;
        expired += usize::from(done);
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_amounts_are_never_screened() {
        let rules = ReviewConfig::default();
        assert!(!screened(&rules, Decimal::new(999, 2)), "a 9.99 transfer pays nothing for the rules");
        assert!(screened(&rules, Decimal::new(100_000_000, 2)), "a million is looked at");
    }
}
