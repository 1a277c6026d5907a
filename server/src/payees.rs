//! Saved payees and confirmation of payee (issue 18; the contract's "Everyday
//! banking"). Before money goes to an account the customer sees whose it is,
//! masked ("B••• M••••, account ••••0027"); a look-up reveals that much about a
//! stranger, so every look-up is audited and limited per customer across
//! every server process (`rate_window`).

use chrono::{DateTime, Utc};
use flexibank_consortium::keys::{mask_account_number, mask_name, normalize_and_check, KeyType};
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    access::Caller,
    audit::{record_tx, AuditEntry},
    db::{db_error, durable_read_committed},
    error::{ApiError, ApiResult, Code},
    interbank::switch_link::api_error,
    money::ACCOUNT_NUMBER,
    rate_window,
    request::RequestMeta,
    state::AppState,
    text::{TextRule, NAME},
};

/// Payees one customer may keep: a list, not an address book of the bank.
pub const MAX_PAYEES: i64 = 200;
pub static NICKNAME: TextRule = TextRule::new(NAME, 1, 64);
const LOOKUP_ACTION: &str = "account.lookup";

/// Whose account a number or key is, as much as a payer may see.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Holder {
    /// The consortium bank id; null when this bank is not in a consortium.
    pub bank_id: Option<String>,
    pub bank_name: Option<String>,
    /// Each word's first letter, then one `•` per other character; joint holders joined by " & ".
    pub holder_name_masked: String,
    pub account_number_masked: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// The account number to be paid.
    #[param(min_length = 1, max_length = 34, pattern = "^[A-Za-z0-9]+$")]
    pub number: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayeeKey {
    #[serde(rename = "type")]
    pub key_type: KeyType,
    pub value: String,
}

/// An account of this bank by number, or a key at any bank of the consortium: exactly one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPayee {
    pub account_number: Option<String>,
    pub key: Option<PayeeKey>,
    pub nickname: String,
}

/// A key at any bank of the consortium, as request bodies name one (payees, standing orders).
pub fn key_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object", "additionalProperties": false, "required": ["type", "value"],
        "description": "A key at any bank of the consortium (a bank outside one answers 404).",
        "properties": {
            "type": {"type": "string", "enum": ["phone", "email", "national_id", "random"]},
            "value": {"type": "string", "minLength": 1, "maxLength": 254},
        },
    })
}

impl utoipa::PartialSchema for NewPayee {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        let key = key_schema();
        // Two closed shapes: a body naming both an account and a key is neither.
        crate::text::from_json(serde_json::json!({
            "oneOf": [
                {"type": "object", "additionalProperties": false, "required": ["account_number", "nickname"],
                 "properties": {"account_number": ACCOUNT_NUMBER.json(), "nickname": NICKNAME.json()}},
                {"type": "object", "additionalProperties": false, "required": ["key", "nickname"],
                 "properties": {"key": key, "nickname": NICKNAME.json()}},
            ],
        }))
    }
}

impl ToSchema for NewPayee {
    fn name() -> std::borrow::Cow<'static, str> {
        "NewPayee".into()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Payee {
    pub id: Uuid,
    pub nickname: String,
    #[serde(flatten)]
    pub holder: Holder,
    /// As the customer typed it (account payees only).
    pub account_number: Option<String>,
    pub key: Option<PayeeKeyView>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PayeeKeyView {
    #[serde(rename = "type")]
    pub key_type: String,
    pub value: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayeeList {
    pub items: Vec<Payee>,
}

const PAYEE_COLUMNS: &str = "id, nickname, bank_id, bank_name, holder_name_masked, account_number_masked, account_number, key_type, key_value, created_at";

fn payee_of(row: &tokio_postgres::Row) -> Payee {
    let key_type: Option<String> = row.get(7);
    Payee {
        id: row.get(0),
        nickname: row.get(1),
        holder: Holder {
            bank_id: row.get(2),
            bank_name: row.get(3),
            holder_name_masked: row.get(4),
            account_number_masked: row.get(5),
        },
        account_number: row.get(6),
        key: key_type.map(|key_type| PayeeKeyView { key_type, value: row.get(8) }),
        created_at: row.get(9),
    }
}

fn this_bank(state: &AppState) -> (Option<String>, Option<String>) {
    match &state.config.interbank {
        Some(member) => (Some(member.bank_id.clone()), Some(member.bank_name.clone())),
        None => (None, None),
    }
}

fn check_number(number: &str) -> ApiResult<()> {
    if ACCOUNT_NUMBER.accepts(number) {
        Ok(())
    } else {
        Err(ApiError::validation("an account number is 1 to 34 letters or digits"))
    }
}

/// The holder of an open customer account of this bank, masked; `None` when
/// there is none (closed, internal, or no such number: the same answer).
async fn holder_here(client: &impl GenericClient, state: &AppState, number: &str) -> ApiResult<Option<Holder>> {
    let row = client
        .query_opt(
            "SELECT array_agg(u.full_name ORDER BY u.full_name)
               FROM accounts a JOIN account_owners o ON o.account_id = a.id JOIN users u ON u.id = o.user_id
              WHERE a.number = $1 AND a.kind NOT IN ('vault', 'settlement', 'fx') AND a.status <> 'closed'
              GROUP BY a.id",
            &[&number],
        )
        .await
        .map_err(db_error)?;
    let (bank_id, bank_name) = this_bank(state);
    Ok(row.map(|row| {
        let names: Vec<String> = row.get(0);
        Holder {
            bank_id,
            bank_name,
            holder_name_masked: names.iter().map(|name| mask_name(name)).collect::<Vec<_>>().join(" & "),
            account_number_masked: mask_account_number(number),
        }
    }))
}

/// One look-up's audit row: who asked for which number, and what they learnt.
async fn audit_lookup(tx: &tokio_postgres::Transaction<'_>, caller: &Caller, meta: &RequestMeta, target: String, outcome: &'static str) -> ApiResult<()> {
    let client_addr = meta.client_ip.to_string();
    let mut entry = AuditEntry::success_by(caller, meta, &client_addr, LOOKUP_ACTION, target, serde_json::json!({}));
    entry.outcome = outcome;
    record_tx(tx, &entry).await
}

/// Counts one look-up against the caller's allowance; past it, 429 (and the refusal is audited).
async fn take_lookup(state: &AppState, tx: &tokio_postgres::Transaction<'_>, caller: &Caller, meta: &RequestMeta, target: &str) -> ApiResult<Option<ApiError>> {
    let security = &state.config.security;
    match rate_window::take(tx, caller.user_id, LOOKUP_ACTION, security.lookups_per_window, security.lookup_window_s).await? {
        Ok(()) => Ok(None),
        Err(retry_after_s) => {
            audit_lookup(tx, caller, meta, target.to_string(), "denied").await?;
            Ok(Some(
                ApiError::new(Code::RateLimited, "too many account look-ups; retry later").with_retry_after(retry_after_s),
            ))
        }
    }
}

/// `GET /v1/accounts/lookup?number=`: the masked holder, so a transfer can be confirmed before it is sent.
pub async fn lookup(state: &AppState, caller: &Caller, meta: &RequestMeta, number: &str) -> ApiResult<Holder> {
    check_number(number)?;
    let target = format!("account:{number}");
    let mut client = state.db.writer().await?;
    let tx = durable_read_committed(&mut client).await?;
    if let Some(refused) = take_lookup(state, &tx, caller, meta, &target).await? {
        tx.commit().await.map_err(db_error)?;
        return Err(refused);
    }
    let holder = holder_here(&*tx, state, number).await?;
    audit_lookup(&tx, caller, meta, target, if holder.is_some() { "success" } else { "failure" }).await?;
    tx.commit().await.map_err(db_error)?;
    holder.ok_or_else(|| ApiError::new(Code::NotFound, "no such account"))
}

enum Target {
    Account(String),
    Key(KeyType, String),
}

fn target_of(state: &AppState, request: &NewPayee) -> ApiResult<Target> {
    match (&request.account_number, &request.key) {
        (Some(number), None) => {
            check_number(number)?;
            Ok(Target::Account(number.clone()))
        }
        (None, Some(key)) => {
            // Outside a consortium there is nobody a key could name: say that first.
            if state.interbank.is_none() {
                return Err(ApiError::new(Code::NotFound, "this bank is not a member of a consortium: no key payees"));
            }
            let value = normalize_and_check(key.key_type, &key.value).map_err(ApiError::validation)?;
            Ok(Target::Key(key.key_type, value))
        }
        _ => Err(ApiError::validation("a payee is either an account_number or a key, exactly one of them")),
    }
}

async fn saved(client: &impl GenericClient, caller: &Caller, target: &Target) -> ApiResult<Option<Payee>> {
    let row = match target {
        Target::Account(number) => {
            client
                .query_opt(
                    &format!("SELECT {PAYEE_COLUMNS} FROM payees WHERE user_id = $1 AND account_number = $2"),
                    &[&caller.user_id, number],
                )
                .await
        }
        Target::Key(key_type, value) => {
            client
                .query_opt(
                    &format!("SELECT {PAYEE_COLUMNS} FROM payees WHERE user_id = $1 AND key_type = $2 AND key_value = $3"),
                    &[&caller.user_id, &key_type.as_str(), value],
                )
                .await
        }
    };
    Ok(row.map_err(db_error)?.as_ref().map(payee_of))
}

/// `POST /v1/payees`: (true, payee) when saved now, (false, the one saved before) for a repeat.
/// Saving one sends the customer a security notice: a payee added by someone
/// else is how an account taken over is emptied.
pub async fn add(state: &AppState, caller: &Caller, meta: &RequestMeta, request: NewPayee) -> ApiResult<(bool, Payee)> {
    if !NICKNAME.accepts(&request.nickname) {
        return Err(ApiError::validation(
            "nickname is 1 to 64 characters, without control characters or leading or trailing spaces",
        ));
    }
    let target = target_of(state, &request)?;
    let mut client = state.db.writer().await?;
    if let Some(payee) = saved(&**client, caller, &target).await? {
        return Ok((false, payee));
    }
    let lookup_target = match &target {
        Target::Account(number) => format!("account:{number}"),
        Target::Key(key_type, _) => format!("key:{}", key_type.as_str()),
    };
    let count: i64 = client
        .query_one("SELECT count(*) FROM payees WHERE user_id = $1", &[&caller.user_id])
        .await
        .map_err(db_error)?
        .get(0);
    if count >= MAX_PAYEES {
        return Err(ApiError::new(Code::LimitReached, format!("at most {MAX_PAYEES} payees; delete one first")));
    }
    // The look-up counts on its own, committed before the switch is asked: no lock waits on the network.
    let tx = durable_read_committed(&mut client).await?;
    let refused = take_lookup(state, &tx, caller, meta, &lookup_target).await?;
    tx.commit().await.map_err(db_error)?;
    if let Some(refused) = refused {
        return Err(refused);
    }
    let holder = match &target {
        Target::Account(number) => holder_here(&**client, state, number).await?,
        Target::Key(key_type, value) => {
            let interbank = state
                .interbank
                .as_deref()
                .ok_or_else(|| ApiError::new(Code::NotFound, "this bank is not a member of a consortium"))?;
            // The switch limits its own look-ups too; its 404 and 429 pass through.
            let entry = interbank.link.lookup(*key_type, value, &caller.user_id.to_string()).await.map_err(api_error)?;
            Some(Holder {
                bank_id: Some(entry.bank_id),
                bank_name: Some(entry.bank_name),
                holder_name_masked: entry.holder_name_masked,
                account_number_masked: entry.account_number_masked,
            })
        }
    };
    let tx = durable_read_committed(&mut client).await?;
    let Some(holder) = holder else {
        audit_lookup(&tx, caller, meta, lookup_target, "failure").await?;
        tx.commit().await.map_err(db_error)?;
        return Err(ApiError::new(Code::NotFound, "no such account"));
    };
    let (number, key_type, key_value) = match &target {
        Target::Account(number) => (Some(number.clone()), None, None),
        Target::Key(key_type, value) => (None, Some(key_type.as_str().to_string()), Some(value.clone())),
    };
    let inserted = tx
        .query_one(
            &format!(
                "INSERT INTO payees (user_id, nickname, account_number, key_type, key_value, bank_id, bank_name,
                                     holder_name_masked, account_number_masked, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $1) RETURNING {PAYEE_COLUMNS}"
            ),
            &[
                &caller.user_id,
                &request.nickname,
                &number,
                &key_type,
                &key_value,
                &holder.bank_id,
                &holder.bank_name,
                &holder.holder_name_masked,
                &holder.account_number_masked,
            ],
        )
        .await;
    let payee = match inserted {
        Ok(row) => payee_of(&row),
        // The same payee saved by a concurrent request: that one is the answer.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            drop(tx);
            let existing = saved(&**client, caller, &target).await?;
            return existing
                .map(|payee| (false, payee))
                .ok_or_else(|| ApiError::internal("a payee vanished after a conflict"));
        }
        Err(e) => return Err(db_error(e)),
    };
    tx.execute(
        "SELECT notify_user($1, 'payee.added', true, jsonb_build_object('nickname', $2::text, 'holder', $3::text, 'account', $4::text))",
        &[
            &caller.user_id,
            &payee.nickname,
            &payee.holder.holder_name_masked,
            &payee.holder.account_number_masked,
        ],
    )
    .await
    .map_err(db_error)?;
    let client_addr = meta.client_ip.to_string();
    record_tx(
        &tx,
        &AuditEntry::success_by(
            caller,
            meta,
            &client_addr,
            "payee.add",
            format!("payee:{}", payee.id),
            serde_json::json!({ "lookup": lookup_target, "bank_id": payee.holder.bank_id }),
        ),
    )
    .await?;
    tx.commit().await.map_err(db_error)?;
    Ok((true, payee))
}

pub async fn list(client: &impl GenericClient, caller: &Caller) -> ApiResult<PayeeList> {
    let rows = client
        .query(
            &format!("SELECT {PAYEE_COLUMNS} FROM payees WHERE user_id = $1 ORDER BY created_at, id"),
            &[&caller.user_id],
        )
        .await
        .map_err(db_error)?;
    Ok(PayeeList {
        items: rows.iter().map(payee_of).collect(),
    })
}

/// `DELETE /v1/payees/{id}`: 404 unless it is the caller's.
pub async fn delete(state: &AppState, caller: &Caller, meta: &RequestMeta, payee_id: Uuid) -> ApiResult<()> {
    let mut client = state.db.writer().await?;
    let tx = durable_read_committed(&mut client).await?;
    let deleted = tx
        .execute("DELETE FROM payees WHERE id = $1 AND user_id = $2", &[&payee_id, &caller.user_id])
        .await
        .map_err(db_error)?;
    if deleted == 0 {
        return Err(ApiError::not_found());
    }
    let client_addr = meta.client_ip.to_string();
    record_tx(
        &tx,
        &AuditEntry::success_by(caller, meta, &client_addr, "payee.delete", format!("payee:{payee_id}"), serde_json::json!({})),
    )
    .await?;
    tx.commit().await.map_err(db_error)?;
    Ok(())
}
