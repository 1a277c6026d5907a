//! Daily outgoing limits (issue 18; the contract's "Limits"). The database
//! counts and enforces them (sql/V22, `count_daily_limit()`): every movement
//! path adds what leaves an account to `limit_used` under the row lock it
//! holds, so no path and no concurrency passes a limit. Here: reading one, and
//! changing it — a customer lowers theirs at once and raises it (up to the
//! bank's default) only 24 h later, so a stolen session cannot lift it; a
//! branch admin sets it outright. Every change is audited; a raise is a
//! security notice to the owners.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::AccountActor,
    audit::{record_tx, AuditEntry},
    db::db_error,
    error::{ApiError, ApiResult, Code},
    money::Amount,
    request::RequestMeta,
    state::AppState,
};

/// How long a customer's raise waits before it counts.
pub const RAISE_DELAY_HOURS: i32 = 24;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Limits {
    pub account_id: Uuid,
    pub currency: String,
    /// What may leave the account in one local day, now.
    pub daily_transfer_limit: String,
    /// The bank's default for the currency (a customer may raise theirs up to it).
    pub bank_default: String,
    /// Sent (and held for payments not yet decided) today, in `time_zone`.
    pub used_today: String,
    pub time_zone: String,
    /// A customer's raise, counting from `effective_at`.
    pub pending_raise: Option<PendingRaise>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PendingRaise {
    pub daily_transfer_limit: String,
    pub effective_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimit {
    pub daily_transfer_limit: Amount,
}

fn text(amount: Decimal) -> String {
    crate::money::decimal_text(amount, 2)
}

/// The account's limit row as the actor may see it; 404 when it is not theirs.
const LIMIT_SELECT: &str = "
SELECT a.id, a.number, a.currency, a.branch_id,
       coalesce(CASE WHEN a.daily_limit_raise_at <= now() THEN a.daily_limit_raise ELSE a.daily_limit END, d.daily_transfer_limit) AS current_limit,
       d.daily_transfer_limit AS bank_default,
       CASE WHEN a.limit_day >= (now() AT TIME ZONE a.limit_time_zone)::date THEN a.limit_used ELSE 0 END AS used_today,
       a.limit_time_zone,
       CASE WHEN a.daily_limit_raise_at > now() THEN a.daily_limit_raise END AS pending_limit,
       CASE WHEN a.daily_limit_raise_at > now() THEN a.daily_limit_raise_at END AS pending_at
  FROM accounts a JOIN limit_defaults d ON d.currency = a.currency
 WHERE a.id = $1 AND a.kind NOT IN ('vault', 'settlement', 'fx')
   AND (($2::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM account_owners o WHERE o.account_id = a.id AND o.user_id = $2))
        OR ($3::uuid IS NOT NULL AND a.branch_id = $3))";

fn scope(actor: &AccountActor) -> (Option<Uuid>, Option<Uuid>) {
    match actor {
        AccountActor::Holder(caller) => (Some(caller.user_id), None),
        AccountActor::Branch(_, branch_id) => (None, Some(*branch_id)),
    }
}

struct Row {
    number: String,
    branch_id: Uuid,
    limits: Limits,
    current: Decimal,
    bank_default: Decimal,
}

fn row_of(row: &tokio_postgres::Row) -> Row {
    let (current, bank_default, used): (Decimal, Decimal, Decimal) = (row.get("current_limit"), row.get("bank_default"), row.get("used_today"));
    let pending_limit: Option<Decimal> = row.get("pending_limit");
    let pending_at: Option<DateTime<Utc>> = row.get("pending_at");
    Row {
        number: row.get("number"),
        branch_id: row.get("branch_id"),
        current,
        bank_default,
        limits: Limits {
            account_id: row.get("id"),
            currency: row.get("currency"),
            daily_transfer_limit: text(current),
            bank_default: text(bank_default),
            used_today: text(used),
            time_zone: row.get("limit_time_zone"),
            pending_raise: pending_limit.zip(pending_at).map(|(limit, effective_at)| PendingRaise {
                daily_transfer_limit: text(limit),
                effective_at,
            }),
        },
    }
}

pub async fn get(client: &tokio_postgres::Client, actor: &AccountActor, account_id: Uuid) -> ApiResult<Limits> {
    let (owner, branch) = scope(actor);
    let row = client
        .query_opt(LIMIT_SELECT, &[&account_id, &owner, &branch])
        .await
        .map_err(db_error)?
        .ok_or_else(ApiError::not_found)?;
    Ok(row_of(&row).limits)
}

/// What a change does.
enum Change {
    /// Counts at once (a lowering, or any change by the branch).
    Now,
    /// A customer's raise: counts after `RAISE_DELAY_HOURS`.
    Later,
}

/// `PUT /v1/accounts/{id}/limits`: (false, limits) when it counts now, (true, limits) for a raise that waits.
pub async fn set(state: &AppState, actor: &AccountActor, meta: &RequestMeta, account_id: Uuid, request: SetLimit) -> ApiResult<(bool, Limits)> {
    let new_limit = request.daily_transfer_limit.0;
    let caller = actor.caller();
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let (owner, branch) = scope(actor);
            let row = tx
                .query_opt(&format!("{LIMIT_SELECT} FOR UPDATE OF a"), &[&account_id, &owner, &branch])
                .await
                .map_err(db_error)?
                .ok_or_else(ApiError::not_found)?;
            let before = row_of(&row);
            let change = match actor {
                AccountActor::Branch(..) => Change::Now,
                AccountActor::Holder(_) if new_limit <= before.current => Change::Now,
                AccountActor::Holder(_) if new_limit <= before.bank_default => Change::Later,
                AccountActor::Holder(_) => {
                    return Err(ApiError::new(
                        Code::Forbidden,
                        format!(
                            "a customer may raise the limit up to the bank's default of {} {}; ask the branch for more",
                            text(before.bank_default),
                            before.limits.currency
                        ),
                    ));
                }
            };
            let (action, raised) = match change {
                Change::Now => {
                    tx.execute(
                        "UPDATE accounts SET daily_limit = $2, daily_limit_raise = NULL, daily_limit_raise_at = NULL,
                                limit_changed_by = $3, limit_changed_at = now() WHERE id = $1",
                        &[&account_id, &new_limit, &caller.user_id],
                    )
                    .await
                    .map_err(db_error)?;
                    let action = if matches!(actor, AccountActor::Branch(..)) {
                        "admin.limit_set"
                    } else {
                        "limit.lowered"
                    };
                    (action, new_limit > before.current)
                }
                Change::Later => {
                    tx.execute(
                        "UPDATE accounts SET daily_limit_raise = $2, daily_limit_raise_at = now() + make_interval(hours => $3),
                                limit_changed_by = $4, limit_changed_at = now() WHERE id = $1",
                        &[&account_id, &new_limit, &RAISE_DELAY_HOURS, &caller.user_id],
                    )
                    .await
                    .map_err(db_error)?;
                    ("limit.raise_requested", true)
                }
            };
            if raised {
                // Every owner hears of a raise: it is what an account taken over would need first.
                tx.execute(
                    "SELECT notify_user(o.user_id, 'limit.raised', true,
                            jsonb_build_object('account', mask_account_number($2), 'limit', $3::text, 'currency', $4::text,
                                               'effective_at', CASE WHEN $5 THEN rfc3339(now() + make_interval(hours => $6)) ELSE rfc3339(now()) END))
                       FROM account_owners o WHERE o.account_id = $1",
                    &[
                        &account_id,
                        &before.number,
                        &text(new_limit),
                        &before.limits.currency,
                        &matches!(change, Change::Later),
                        &RAISE_DELAY_HOURS,
                    ],
                )
                .await
                .map_err(db_error)?;
            }
            let mut entry = AuditEntry::success_by(
                caller,
                meta,
                &client_addr,
                action,
                format!("account:{}", before.number),
                serde_json::json!({ "from": before.limits.daily_transfer_limit, "to": text(new_limit) }),
            );
            // A customer's change belongs to the account's branch trail, like the branch's own.
            entry.branch_id = Some(before.branch_id);
            record_tx(&tx, &entry).await?;
            let after = tx.query_one(LIMIT_SELECT, &[&account_id, &owner, &branch]).await.map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            Ok((matches!(change, Change::Later), row_of(&after).limits))
        })
        .await
}
