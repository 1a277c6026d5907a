//! Notifications from the transactional outbox (sql/V5): the in-app list a
//! user reads, and the dispatcher that delivers the external channels.
//! Events are written by triggers in the transaction of the change itself;
//! nothing here creates them.

pub mod channels;
pub mod digest;
pub mod dispatch;
pub mod pace;
pub mod email;
pub mod receivers;
pub mod settings;
pub mod sms;
pub mod webhook;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    db::{db_error, Client},
    error::{ApiError, ApiResult},
};

/// The text a customer reads (SMS, and the body of the e-mail), signed with
/// the name they know their bank by (`Config::bank_name`: in a consortium every
/// member runs this software): amounts with currency, masked account numbers
/// (the payload holds only masked ones), never a secret.
pub fn text_of(bank_name: &str, kind: &str, payload: &serde_json::Value) -> String {
    format!("{bank_name}: {}", sentence_of(kind, payload))
}

fn sentence_of(kind: &str, payload: &serde_json::Value) -> String {
    let field = |k: &str| payload.get(k).and_then(serde_json::Value::as_str).unwrap_or("").to_string();
    let money = |k: &str| format!("{} {}", field(k), field("currency"));
    match kind {
        "money.debit" => format!(
            "{} debited from a/c {}{}. Balance {}.",
            money("amount"),
            field("account"),
            payload.get("counterparty").and_then(serde_json::Value::as_str).map(|c| format!(" to {c}")).unwrap_or_default(),
            money("balance_after")
        ),
        "money.credit" => format!(
            "{} credited to a/c {}{}. Balance {}.",
            money("amount"),
            field("account"),
            payload.get("counterparty").and_then(serde_json::Value::as_str).map(|c| format!(" from {c}")).unwrap_or_default(),
            money("balance_after")
        ),
        "money.digest" => digest::text(payload),
        "balance.low" => format!(
            "a/c {} balance {} is below your alert of {}.",
            field("account"),
            money("balance_after"),
            money("threshold")
        ),
        "security.new_device" => "a new sign-in to your account. Not you? Call us now.".into(),
        "security.mfa_reset" => "your two-step sign-in was reset by the bank. Not expected? Call us now.".into(),
        "security.mfa_enrolled" => "a new authenticator was set up for your account.".into(),
        "account.status" => format!("a/c {} is now {}.", field("account"), field("to")),
        "key.verification" => format!(
            "{} is your code to receive payments to this {} at a/c {}. It expires in 10 minutes. Never share it.",
            field("code"),
            if field("key_type") == "email" { "address" } else { "number" },
            field("account")
        ),
        "payee.added" => format!(
            "payee {} ({}, a/c {}) was added to your account. Not you? Call us now.",
            field("nickname"),
            field("holder"),
            field("account")
        ),
        "account.opened" => format!(
            "your new {}{} account {} ({}) is open.",
            if payload.get("joint").and_then(serde_json::Value::as_bool) == Some(true) { "joint " } else { "" },
            field("kind"),
            field("account"),
            field("currency")
        ),
        "limit.raised" => format!(
            "the daily limit of a/c {} rises to {} {} from {}. Not you? Call us now.",
            field("account"),
            field("limit"),
            field("currency"),
            field("effective_at")
        ),
        "standing_order.refused" => format!(
            "your standing order of {} was refused ({}); we try once more at {}.",
            money("amount"),
            field("code"),
            field("retry_at")
        ),
        "standing_order.skipped" => format!("your standing order of {} due {} did not run ({}).", money("amount"), field("due"), field("code")),
        "interbank.aborted" => format!(
            "your payment of {} to a {} at another bank was not made ({}); nothing left your account.",
            money("amount"),
            field("to"),
            field("reason")
        ),
        "review.held" => format!("your payment of {} to {} is held for a check by the bank. See it in the app.", money("amount"), field("to")),
        "review.approved" => format!("your held payment of {} was approved and sent.", money("amount")),
        "review.rejected" => format!("your held payment of {} was not sent ({}); the money is available again.", money("amount"), field("status")),
        "account.owner_added" => format!("{} is now an owner of a/c {}. Not expected? Call us now.", field("owner"), field("account")),
        "key.registered" => format!("the {} key {} now receives payments to a/c {}. Not you? Call us now.", field("key_type"), field("key"), field("account")),
        other => other.to_string(),
    }
}

/// Ids marked read in one request.
pub const MAX_MARK: usize = 500;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// Stable: every channel carries it, so receivers can de-duplicate.
    pub id: Uuid,
    pub kind: String,
    pub critical: bool,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub next_cursor: Option<String>,
    pub unread_count: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    #[param(schema_with = crate::page::limit_schema)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::page::uuid_schema)]
    pub cursor: Option<String>,
    /// Only the ones not yet read.
    pub unread_only: Option<bool>,
}

/// `{"ids":[…]}` marks those; `{"all":true}` marks every one; `{}` marks
/// none and answers the unread count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    #[serde(default)]
    #[schema(max_items = 500)]
    pub ids: Vec<Uuid>,
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    #[serde(deserialize_with = "crate::request::integer")]
    pub delivery_id: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnreadCount {
    pub unread_count: i64,
}

async fn unread_count(client: &Client, user_id: Uuid) -> ApiResult<i64> {
    let row = client
        .query_one("SELECT count(*) FROM notification_events WHERE user_id = $1 AND read_at IS NULL AND kind <> 'key.verification'", &[&user_id])
        .await
        .map_err(db_error)?;
    Ok(row.get(0))
}

/// The user's own notifications, newest first. Nobody else's are reachable:
/// the user id comes from the session, never from the request.
pub async fn list(client: &Client, user_id: Uuid, query: NotificationQuery) -> ApiResult<NotificationPage> {
    let limit = crate::page::limit(query.limit)?;
    let cursor = crate::page::decode_uuid(&query.cursor)?;
    let rows = client
        .query(
            "SELECT id, kind, critical, payload, created_at, read_at FROM notification_events
              WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2) AND (NOT $3 OR read_at IS NULL)
                AND kind <> 'key.verification' -- a one-time code is for the phone or address it proves
              ORDER BY id DESC LIMIT $4",
            &[&user_id, &cursor, &query.unread_only.unwrap_or(false), &(limit + 1)],
        )
        .await
        .map_err(db_error)?;
    let mut items: Vec<Notification> = rows
        .iter()
        .map(|r| Notification {
            id: r.get(0),
            kind: r.get(1),
            critical: r.get(2),
            payload: r.get(3),
            created_at: r.get(4),
            read_at: r.get(5),
        })
        .collect();
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|n| n.id.to_string())
    } else {
        None
    };
    Ok(NotificationPage { items, next_cursor, unread_count: unread_count(client, user_id).await? })
}

pub async fn mark_read(client: &Client, user_id: Uuid, request: MarkRead) -> ApiResult<UnreadCount> {
    if request.ids.len() > MAX_MARK {
        return Err(ApiError::validation(format!("at most {MAX_MARK} ids at once")));
    }
    client
        .execute(
            "UPDATE notification_events SET read_at = now()
              WHERE user_id = $1 AND read_at IS NULL AND ($2 OR id = ANY($3))",
            &[&user_id, &request.all, &request.ids],
        )
        .await
        .map_err(db_error)?;
    Ok(UnreadCount { unread_count: unread_count(client, user_id).await? })
}

/// Dead deliveries of the branch's customers, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadDelivery {
    pub id: i64,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub channel: String,
    pub kind: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn dead_letters(client: &Client, branch_id: Uuid) -> ApiResult<Vec<DeadDelivery>> {
    let rows = client
        .query(
            "SELECT d.id, d.event_id, d.user_id, u.username, d.channel, e.kind, d.attempts, d.last_error, d.created_at
               FROM notification_deliveries d
               JOIN notification_events e ON e.id = d.event_id
               JOIN users u ON u.id = d.user_id
              WHERE d.status = 'dead' AND u.branch_id = $1
              ORDER BY d.id DESC LIMIT 200",
            &[&branch_id],
        )
        .await
        .map_err(db_error)?;
    Ok(rows
        .iter()
        .map(|r| DeadDelivery {
            id: r.get(0),
            event_id: r.get(1),
            user_id: r.get(2),
            username: r.get(3),
            channel: r.get(4),
            kind: r.get(5),
            attempts: r.get(6),
            last_error: r.get(7),
            created_at: r.get(8),
        })
        .collect())
}

/// Sends a dead delivery again from the start: pending, no attempts, due now.
/// Returns false when the branch has no such dead delivery.
pub async fn redrive(tx: &tokio_postgres::Transaction<'_>, branch_id: Uuid, delivery_id: i64) -> ApiResult<bool> {
    let changed = tx
        .execute(
            "UPDATE notification_deliveries d SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
               FROM users u
              WHERE d.id = $1 AND d.status = 'dead' AND u.id = d.user_id AND u.branch_id = $2",
            &[&delivery_id, &branch_id],
        )
        .await
        .map_err(db_error)?;
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_signed_with_the_bank_its_customer_knows() {
        let payload = serde_json::json!({"amount": "5.00", "currency": "INR", "account": "••••0009", "balance_after": "41754.50"});
        assert_eq!(
            text_of("Harbour Bank", "money.credit", &payload),
            "Harbour Bank: 5.00 INR credited to a/c ••••0009. Balance 41754.50 INR."
        );
        assert_eq!(text_of("FlexiBank", "security.new_device", &payload), "FlexiBank: a new sign-in to your account. Not you? Call us now.");
        assert_eq!(text_of("Harbour Bank", "something.new", &payload), "Harbour Bank: something.new");
    }
}
