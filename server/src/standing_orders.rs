//! Standing orders (issue 18; the contract's "Standing orders"): what a
//! customer sets up, sees and changes. The runs are the database's
//! (sql/functions/run_standing_order.sql: each due date at most once, in the
//! transaction of its transfer) driven by `scheduler`.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use flexibank_consortium::{
    keys::{normalize_and_check, KeyType},
    protocol::CURRENCY,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::Caller,
    audit::{record_tx, AuditEntry},
    db::db_error,
    error::{ApiError, ApiResult, Code},
    money::{check_memo, store_answer, stored_answer, Amount, Moved, ACCOUNT_NUMBER},
    interbank::switch_link::api_error,
    payees::PayeeKey,
    request::RequestMeta,
    state::AppState,
};

/// Live (active or paused) orders one customer may keep.
pub const MAX_LIVE_ORDERS: i64 = 50;
/// How far ahead an order may start.
pub const MAX_START_DAYS_AHEAD: i64 = 366;
/// Runs one page of `GET /v1/standing-orders/{id}/runs` shows, newest first.
pub const MAX_RUNS_SHOWN: i64 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    Day,
    Week,
    Month,
    /// Tests only (`standing_orders.allow_seconds`).
    Second,
}

/// By hand, so that a wrong unit is told the published ones: serde's own
/// message would list `second`, which only a test configuration accepts.
impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Every, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "day" | "week" | "month" | "second" => Ok(Every::parse(&text)),
            other => Err(serde::de::Error::custom(format!("schedule.every must be day, week or month, not {other:?}"))),
        }
    }
}

impl Every {
    fn as_str(self) -> &'static str {
        match self {
            Every::Day => "day",
            Every::Week => "week",
            Every::Month => "month",
            Every::Second => "second",
        }
    }
    fn parse(text: &str) -> Every {
        match text {
            "day" => Every::Day,
            "week" => Every::Week,
            "month" => Every::Month,
            _ => Every::Second,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[schema(schema_with = every_schema)]
    pub every: Every,
    #[schema(minimum = 1, maximum = 366)]
    pub interval: i32,
    /// Local time "HH:MM" in the customer's time zone.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub time: String,
}

/// Whom an order pays: an account of this bank, or a key at another bank of the consortium
/// (each run an inter-bank payment). Exactly one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderTarget {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PayeeKey>,
}

impl utoipa::PartialSchema for OrderTarget {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        crate::text::from_json(serde_json::json!({
            "oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["account_number"],
                 "properties": {"account_number": ACCOUNT_NUMBER.json()}},
                {"type": "object", "additionalProperties": false, "required": ["key"],
                 "properties": {"key": crate::payees::key_schema()}},
            ],
        }))
    }
}

impl ToSchema for OrderTarget {
    fn name() -> std::borrow::Cow<'static, str> {
        "OrderTarget".into()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStandingOrder {
    pub from_account_id: Uuid,
    pub to: OrderTarget,
    pub amount: Amount,
    pub memo: Option<String>,
    pub schedule: Schedule,
    /// The first date ("YYYY-MM-DD", local); monthly orders run on its day of the month.
    pub start_at: NaiveDate,
    /// The last date it may run (inclusive), or none.
    pub end_at: Option<NaiveDate>,
}

/// `PATCH`: what is given changes; `paused` pauses or resumes (a resumed order
/// skips the dates that passed while it was paused).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderChange {
    pub amount: Option<Amount>,
    pub memo: Option<String>,
    pub schedule: Option<Schedule>,
    pub end_at: Option<NaiveDate>,
    pub paused: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StandingOrder {
    pub id: Uuid,
    pub from_account_id: Uuid,
    pub to: OrderTarget,
    pub amount: String,
    pub currency: String,
    pub memo: String,
    pub schedule: Schedule,
    pub start_at: NaiveDate,
    pub end_at: Option<NaiveDate>,
    pub time_zone: String,
    /// active, paused, cancelled or ended.
    pub status: String,
    pub next_run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StandingOrderList {
    pub items: Vec<StandingOrder>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// The due date ("YYYY-MM-DD"; an instant for test schedules in seconds).
    pub due: String,
    pub due_at: DateTime<Utc>,
    /// done, retry (refused for funds, tried again at `retry_at`), skipped, or held (the bank's rules hold
    /// it for a reviewer: `review_id`; approved it is done, rejected, cancelled or expired it is skipped
    /// with `review_rejected`, `review_cancelled` or `review_expired`).
    pub status: String,
    pub attempts: i32,
    pub transfer_id: Option<Uuid>,
    pub refusal_code: Option<String>,
    pub retry_at: Option<DateTime<Utc>>,
    pub ran_at: DateTime<Utc>,
    pub review_id: Option<Uuid>,
    /// The inter-bank payment a run of an order paying a key placed; the switch decides it (see its status).
    pub interbank_payment_id: Option<Uuid>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunList {
    pub items: Vec<Run>,
}

const ORDER_COLUMNS: &str = "o.id, o.from_account_id, o.to_account_number, o.amount::text, o.currency, o.memo, o.every, o.every_n,
    to_char(o.time_of_day, 'HH24:MI'), o.start_on, o.end_on, o.time_zone, o.status, o.next_due_at, o.created_at, o.to_key_type, o.to_key_value";

fn order_of(row: &tokio_postgres::Row) -> StandingOrder {
    StandingOrder {
        id: row.get(0),
        from_account_id: row.get(1),
        to: OrderTarget {
            account_number: row.get(2),
            key: row
                .get::<_, Option<&str>>(15)
                .and_then(KeyType::parse)
                .map(|key_type| PayeeKey { key_type, value: row.get(16) }),
        },
        amount: row.get(3),
        currency: row.get(4),
        memo: row.get(5),
        schedule: Schedule {
            every: Every::parse(row.get(6)),
            interval: row.get(7),
            time: row.get(8),
        },
        start_at: row.get(9),
        end_at: row.get(10),
        time_zone: row.get(11),
        status: row.get(12),
        next_run_at: row.get(13),
        created_at: row.get(14),
    }
}

/// The published units: `second` is for tests only and refused unless configured.
fn every_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::text::from_json(serde_json::json!({"type": "string", "enum": ["day", "week", "month"]}))
}

fn check_schedule(state: &AppState, schedule: &Schedule) -> ApiResult<NaiveTime> {
    if schedule.every == Every::Second && !state.config.standing_orders.allow_seconds {
        return Err(ApiError::validation("schedule.every must be day, week or month"));
    }
    if !(1..=366).contains(&schedule.interval) {
        return Err(ApiError::validation("schedule.interval must be 1 to 366"));
    }
    let valid_shape = schedule.time.len() == 5 && schedule.time.as_bytes()[2] == b':';
    NaiveTime::parse_from_str(&schedule.time, "%H:%M")
        .ok()
        .filter(|_| valid_shape)
        .ok_or_else(|| ApiError::validation("schedule.time must be a local time \"HH:MM\""))
}

/// Whom a new order pays, checked: an account number of this bank, or a key (normalized).
enum Payee {
    Account(String),
    Key { key_type: KeyType, value: String },
}

fn check_target(target: &OrderTarget) -> ApiResult<Payee> {
    match (&target.account_number, &target.key) {
        (Some(number), None) if ACCOUNT_NUMBER.accepts(number) => Ok(Payee::Account(number.clone())),
        (Some(_), None) => Err(ApiError::validation("to.account_number must be 1 to 34 letters or digits")),
        (None, Some(key)) => {
            let value = normalize_and_check(key.key_type, &key.value).map_err(ApiError::validation)?;
            Ok(Payee::Key { key_type: key.key_type, value })
        }
        _ => Err(ApiError::validation("to names exactly one of account_number and key")),
    }
}

/// An order paying a key pays through the switch: the key must exist in its directory now (the
/// customer sees whom they pay when they save it as a payee), and the order is in the consortium's
/// currency. Asked before the order's transaction, so no lock waits on the network.
async fn check_key_payee(state: &AppState, caller: &Caller, key_type: KeyType, value: &str) -> ApiResult<()> {
    let interbank = state.interbank.as_ref().ok_or_else(|| ApiError::new(Code::NotFound, "this bank is not a member of a consortium"))?;
    let entry = interbank.link.lookup(key_type, value, &caller.user_id.to_string()).await.map_err(api_error)?;
    if entry.bank_id == interbank.config.bank_id {
        return Err(ApiError::new(Code::SameBank, "this key names an account of this bank: give its account number instead"));
    }
    Ok(())
}

/// `POST /v1/standing-orders` (with an Idempotency-Key: a repeated creation must not pay twice a month).
pub async fn create(state: &AppState, caller: &Caller, meta: &RequestMeta, key: &str, request_hash: &[u8], request: NewStandingOrder) -> ApiResult<Moved> {
    let payee = check_target(&request.to)?;
    let time_of_day = check_schedule(state, &request.schedule)?;
    if let Payee::Key { key_type, value } = &payee {
        check_key_payee(state, caller, *key_type, value).await?;
    }
    let (to_number, to_key) = match &payee {
        Payee::Account(number) => (Some(number.as_str()), None),
        Payee::Key { key_type, value } => (None, Some((key_type.as_str(), value.as_str()))),
    };
    let memo = check_memo(&request.memo)?;
    if request.end_at.is_some_and(|end| end < request.start_at) {
        return Err(ApiError::validation("end_at must not be before start_at"));
    }
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            if let Some(replayed) = stored_answer(&*tx, caller.user_id, key, request_hash).await? {
                return Ok(replayed);
            }
            let from = tx
                .query_opt(
                    "SELECT a.number, a.currency, a.status, coalesce(s.time_zone, 'UTC'), (now() AT TIME ZONE coalesce(s.time_zone, 'UTC'))::date
                       FROM accounts a JOIN account_owners o ON o.account_id = a.id AND o.user_id = $2
                       LEFT JOIN notification_settings s ON s.user_id = $2
                      WHERE a.id = $1 AND a.kind NOT IN ('vault', 'settlement', 'fx')",
                    &[&request.from_account_id, &caller.user_id],
                )
                .await
                .map_err(db_error)?
                .ok_or_else(|| ApiError::new(Code::NotFound, "no such account"))?;
            let (from_number, currency, status, time_zone, today): (String, String, String, String, NaiveDate) =
                (from.get(0), from.get(1), from.get(2), from.get(3), from.get(4));
            if status != "active" {
                return Err(ApiError::new(Code::AccountInactive, format!("account {from_number} is {status}")));
            }
            if to_number == Some(from_number.as_str()) {
                return Err(ApiError::new(Code::SameAccount, "a standing order cannot pay its own account"));
            }
            let to_currency: String = match to_number {
                Some(to_number) => tx
                    .query_opt(
                        "SELECT currency FROM accounts WHERE number = $1 AND kind NOT IN ('vault', 'settlement', 'fx') AND status <> 'closed'",
                        &[&to_number],
                    )
                    .await
                    .map_err(db_error)?
                    .ok_or_else(|| ApiError::new(Code::NotFound, format!("no account with number {to_number}")))?
                    .get(0),
                // Inter-bank payments are in the consortium's one currency.
                None => CURRENCY.to_string(),
            };
            if to_currency != currency {
                return Err(ApiError::new(
                    Code::CurrencyMismatch,
                    format!("{currency} account cannot pay a {to_currency} account"),
                ));
            }
            if request.start_at < today || (request.start_at - today).num_days() > MAX_START_DAYS_AHEAD {
                return Err(ApiError::validation(format!(
                    "start_at must be from today ({today} in {time_zone}) to {MAX_START_DAYS_AHEAD} days ahead"
                )));
            }
            let live: i64 = tx
                .query_one(
                    "SELECT count(*) FROM standing_orders WHERE user_id = $1 AND status IN ('active', 'paused')",
                    &[&caller.user_id],
                )
                .await
                .map_err(db_error)?
                .get(0);
            if live >= MAX_LIVE_ORDERS {
                return Err(ApiError::new(
                    Code::LimitReached,
                    format!("at most {MAX_LIVE_ORDERS} standing orders; cancel one first"),
                ));
            }
            let id: Uuid = tx
                .query_one(
                    "INSERT INTO standing_orders (user_id, from_account_id, to_account_number, amount, currency, memo, every, every_n,
                                                  time_of_day, time_zone, start_on, anchor_at, end_on, next_due_at, to_key_type, to_key_value)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, date_trunc('second', now()), $12, now(), $13, $14) RETURNING id",
                    &[
                        &caller.user_id,
                        &request.from_account_id,
                        &to_number,
                        &request.amount.0,
                        &currency,
                        &memo,
                        &request.schedule.every.as_str(),
                        &request.schedule.interval,
                        &time_of_day,
                        &time_zone,
                        &request.start_at,
                        &request.end_at,
                        &to_key.map(|(key_type, _)| key_type),
                        &to_key.map(|(_, value)| value),
                    ],
                )
                .await
                .map_err(db_error)?
                .get(0);
            tx.execute("SELECT standing_order_reschedule($1)", &[&id]).await.map_err(db_error)?;
            let order = order_of(
                &tx.query_one(&format!("SELECT {ORDER_COLUMNS} FROM standing_orders o WHERE o.id = $1"), &[&id])
                    .await
                    .map_err(db_error)?,
            );
            let body = serde_json::to_value(&order).map_err(|e| ApiError::internal(format!("standing order body: {e}")))?;
            store_answer(&tx, caller.user_id, key, request_hash, 201, &body).await?;
            record_tx(
                &tx,
                &AuditEntry::success_by(
                    caller,
                    meta,
                    &client_addr,
                    "standing_order.create",
                    format!("standing_order:{id}"),
                    serde_json::json!({ "from": from_number, "to": to_number, "to_key": order.to.key, "amount": order.amount, "every": order.schedule.every }),
                ),
            )
            .await?;
            tx.commit().await.map_err(db_error)?;
            Ok(Moved { status: 201, replayed: false, body })
        })
        .await
}

pub async fn list(client: &tokio_postgres::Client, caller: &Caller) -> ApiResult<StandingOrderList> {
    let rows = client
        .query(
            &format!("SELECT {ORDER_COLUMNS} FROM standing_orders o WHERE o.user_id = $1 ORDER BY o.created_at, o.id"),
            &[&caller.user_id],
        )
        .await
        .map_err(db_error)?;
    Ok(StandingOrderList {
        items: rows.iter().map(order_of).collect(),
    })
}

pub async fn runs(client: &tokio_postgres::Client, caller: &Caller, order_id: Uuid) -> ApiResult<RunList> {
    let owned = client
        .query_opt("SELECT 1 FROM standing_orders WHERE id = $1 AND user_id = $2", &[&order_id, &caller.user_id])
        .await
        .map_err(db_error)?;
    if owned.is_none() {
        return Err(ApiError::not_found());
    }
    let rows = client
        .query(
            "SELECT due_key, due_at, status, attempts, transfer_id, refusal_code, retry_at, ran_at, review_id, interbank_payment_id FROM standing_order_runs
              WHERE order_id = $1 AND status <> 'running' ORDER BY due_key DESC LIMIT $2",
            &[&order_id, &MAX_RUNS_SHOWN],
        )
        .await
        .map_err(db_error)?;
    let items = rows
        .iter()
        .map(|r| Run {
            due: r.get(0),
            due_at: r.get(1),
            status: r.get(2),
            attempts: r.get(3),
            transfer_id: r.get(4),
            refusal_code: r.get(5),
            retry_at: r.get(6),
            ran_at: r.get(7),
            review_id: r.get(8),
            interbank_payment_id: r.get(9),
        })
        .collect();
    Ok(RunList { items })
}

/// `PATCH /v1/standing-orders/{id}` and `DELETE` (`cancel`): 404 unless the caller's; a cancelled or ended order changes no more (409).
pub async fn change(state: &AppState, caller: &Caller, meta: &RequestMeta, order_id: Uuid, change: Option<OrderChange>) -> ApiResult<StandingOrder> {
    if let Some(change) = &change {
        if let Some(schedule) = &change.schedule {
            check_schedule(state, schedule)?;
        }
        check_memo(&change.memo)?;
    }
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let row = tx
                .query_opt(
                    &format!("SELECT {ORDER_COLUMNS} FROM standing_orders o WHERE o.id = $1 AND o.user_id = $2 FOR UPDATE"),
                    &[&order_id, &caller.user_id],
                )
                .await
                .map_err(db_error)?
                .ok_or_else(ApiError::not_found)?;
            let before = order_of(&row);
            match (&change, before.status.as_str()) {
                // Cancelling again changes nothing.
                (None, "cancelled") => return Ok(before),
                (_, "cancelled" | "ended") => return Err(ApiError::new(Code::OrderEnded, format!("this standing order is {}", before.status))),
                _ => {}
            }
            let action = match &change {
                None => {
                    tx.execute(
                        "UPDATE standing_orders SET status = 'cancelled', next_due_at = NULL, updated_at = now() WHERE id = $1",
                        &[&order_id],
                    )
                    .await
                    .map_err(db_error)?;
                    "standing_order.cancel"
                }
                Some(change) => {
                    if change.end_at.is_some_and(|end| end < before.start_at) {
                        return Err(ApiError::validation("end_at must not be before start_at"));
                    }
                    let time_of_day = match &change.schedule {
                        Some(schedule) => Some(check_schedule(state, schedule)?),
                        None => None,
                    };
                    let status = match change.paused {
                        Some(true) => "paused",
                        Some(false) => "active",
                        None => before.status.as_str(),
                    };
                    tx.execute(
                        "UPDATE standing_orders
                            SET amount = coalesce($2, amount), memo = coalesce($3, memo), every = coalesce($4, every),
                                every_n = coalesce($5, every_n), time_of_day = coalesce($6, time_of_day), end_on = coalesce($7, end_on),
                                status = $8, updated_at = now()
                          WHERE id = $1",
                        &[
                            &order_id,
                            &change.amount.map(|a| a.0),
                            &change.memo,
                            &change.schedule.as_ref().map(|s| s.every.as_str()),
                            &change.schedule.as_ref().map(|s| s.interval),
                            &time_of_day,
                            &change.end_at,
                            &status,
                        ],
                    )
                    .await
                    .map_err(db_error)?;
                    // A new schedule, an end or a resumption: the next date is recomputed (none that ran runs again).
                    if change.schedule.is_some() || change.end_at.is_some() || (status == "active" && before.status == "paused") {
                        tx.execute("SELECT standing_order_reschedule($1)", &[&order_id]).await.map_err(db_error)?;
                    }
                    "standing_order.change"
                }
            };
            record_tx(
                &tx,
                &AuditEntry::success_by(caller, meta, &client_addr, action, format!("standing_order:{order_id}"), serde_json::json!({})),
            )
            .await?;
            let after = order_of(
                &tx.query_one(&format!("SELECT {ORDER_COLUMNS} FROM standing_orders o WHERE o.id = $1"), &[&order_id])
                    .await
                    .map_err(db_error)?,
            );
            tx.commit().await.map_err(db_error)?;
            Ok(after)
        })
        .await
}
