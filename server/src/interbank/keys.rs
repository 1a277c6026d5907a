//! A customer's alias keys (docs/consortium.md; the contract's "Keys"). The
//! switch's directory decides who holds a key consortium-wide; this bank keeps
//! which of its accounts registered which key. A phone or an e-mail is
//! registered only after its owner proves possession with a one-time code
//! sent to it through the outbox; otherwise anyone could register a victim's
//! phone and receive their payments.

use chrono::{DateTime, Utc};
use flexibank_consortium::keys::{normalize_and_check, AccountKind, DirectoryEntry, KeyType, RegisterKey};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{switch_link::api_error, Interbank};
use crate::{
    access::Caller,
    db::db_error,
    error::{ApiError, ApiResult, Code},
    request::RequestMeta,
    state::AppState,
};

/// How long a one-time code is good for, and how many wrong tries it takes.
const CODE_TTL_MINUTES: i32 = 10;
const MAX_CODE_ATTEMPTS: i32 = 5;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub account_id: Uuid,
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(phone|email|national_id|random)$")]
    pub key_type: KeyType,
    /// Absent for `random` (the directory makes one).
    #[schema(min_length = 1, max_length = 254)]
    pub value: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyKey {
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Key {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub key_type: String,
    pub value: String,
    pub account_id: Uuid,
    /// active, or pending_verification until the one-time code comes back.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<Key>,
}

const KEY_COLUMNS: &str = "id, type, value, account_id, status, created_at";

fn key_of(row: &tokio_postgres::Row) -> Key {
    Key { id: row.get(0), key_type: row.get(1), value: row.get(2), account_id: row.get(3), status: row.get(4), created_at: row.get(5) }
}

fn code_hash(key_id: Uuid, code: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(key_id.as_bytes());
    hasher.update(code.as_bytes());
    hasher.finalize().to_vec()
}

fn member(state: &AppState) -> ApiResult<&Interbank> {
    state.interbank.as_deref().ok_or_else(|| ApiError::new(Code::NotFound, "this bank is not a member of a consortium"))
}

/// The caller's own customer account, with what the directory records of it.
struct Holding {
    number: String,
    kind: AccountKind,
    holder_name: String,
    national_id: Option<String>,
    max_keys: i64,
    keys: i64,
}

async fn holding(client: &tokio_postgres::Client, caller: &Caller, account_id: Uuid) -> ApiResult<Holding> {
    let row = client
        .query_opt(
            "SELECT a.number, a.kind, a.status, u.full_name, u.national_id, (SELECT count(*) FROM payment_keys k WHERE k.account_id = a.id)
               FROM accounts a JOIN account_owners o ON o.account_id = a.id AND o.user_id = $2 JOIN users u ON u.id = $2
              WHERE a.id = $1 AND a.kind NOT IN ('vault', 'settlement', 'fx')",
            &[&account_id, &caller.user_id],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::new(Code::NotFound, "no such account"))?;
    let status: String = row.get(2);
    if status != "active" {
        return Err(ApiError::new(Code::AccountInactive, format!("account is {status}")));
    }
    let kind_text: String = row.get(1);
    let kind = AccountKind::parse(&kind_text).ok_or_else(|| ApiError::internal(format!("account kind {kind_text}")))?;
    Ok(Holding { number: row.get(0), kind, holder_name: row.get(3), national_id: row.get(4), max_keys: kind.max_keys(), keys: row.get(5) })
}

/// `POST /v1/keys`: 201 an active key, or 202 one awaiting its one-time code.
pub async fn register(state: &AppState, caller: &Caller, meta: &RequestMeta, request: NewKey) -> ApiResult<(bool, Key)> {
    let interbank = member(state)?;
    let value = match (request.key_type, &request.value) {
        (KeyType::Random, None) => None,
        (KeyType::Random, Some(_)) => return Err(ApiError::validation("a random key is made by the directory: send no value")),
        (_, None) => return Err(ApiError::validation("value is required for this key type")),
        (key_type, Some(value)) => Some(normalize_and_check(key_type, value).map_err(ApiError::validation)?),
    };
    let client = state.db.primary_read_committed().await?;
    let holding = holding(&client, caller, request.account_id).await?;
    if holding.keys >= holding.max_keys {
        return Err(ApiError::new(Code::LimitReached, format!("an account of this kind holds at most {} keys", holding.max_keys)));
    }
    if request.key_type == KeyType::NationalId && value.as_deref() != holding.national_id.as_deref() {
        return Err(ApiError::new(Code::Forbidden, "a national id key must be your own national id"));
    }
    if let Some(value) = &value {
        if client.query_opt("SELECT 1 FROM payment_keys WHERE type = $1 AND value = $2", &[&request.key_type.as_str(), value]).await.map_err(db_error)?.is_some() {
            return Err(ApiError::new(Code::KeyTaken, "this key is registered already"));
        }
    }
    if matches!(request.key_type, KeyType::Phone | KeyType::Email) {
        let value = value.expect("phone and e-mail keys have values");
        let key = start_verification(&client, caller, request.account_id, request.key_type, &value, &holding.number).await?;
        return Ok((false, key));
    }
    let stored = interbank
        .link
        .register_key(&RegisterKey {
            key_type: request.key_type,
            value,
            account_number: holding.number.clone(),
            account_kind: holding.kind,
            holder_name: holding.holder_name.clone(),
        })
        .await
        .map_err(api_error)?;
    let row = client
        .query_one(
            &format!(
                "INSERT INTO payment_keys (user_id, account_id, type, value, status) VALUES ($1, $2, $3, $4, 'active')
                 ON CONFLICT (type, value) DO UPDATE SET status = 'active' RETURNING {KEY_COLUMNS}"
            ),
            &[&caller.user_id, &request.account_id, &request.key_type.as_str(), &stored.value],
        )
        .await
        .map_err(db_error)?;
    let key = key_of(&row);
    registered(&client, caller, meta, &key, &holding.number).await?;
    Ok((true, key))
}

/// A pending key and its code, sent to the phone or address only.
async fn start_verification(client: &tokio_postgres::Client, caller: &Caller, account_id: Uuid, key_type: KeyType, value: &str, number: &str) -> ApiResult<Key> {
    let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000));
    let key_id = Uuid::now_v7();
    let row = client
        .query_one(
            &format!(
                "WITH key AS (
                     INSERT INTO payment_keys (id, user_id, account_id, type, value, status, code_hash, code_expires_at)
                     VALUES ($1, $2, $3, $4, $5, 'pending_verification', $6, now() + $7::int * interval '1 minute') RETURNING {KEY_COLUMNS}
                 ), event AS (
                     INSERT INTO notification_events (user_id, kind, critical, payload)
                     VALUES ($2, 'key.verification', true, jsonb_build_object('code', $8::text, 'key_type', $4::text, 'account', mask_account_number($9), 'key_id', $1))
                     RETURNING id
                 ), delivery AS (
                     INSERT INTO notification_deliveries (event_id, user_id, channel, destination, critical)
                     SELECT id, $2, $10, $5, true FROM event
                 )
                 SELECT {KEY_COLUMNS} FROM key"
            ),
            &[
                &key_id,
                &caller.user_id,
                &account_id,
                &key_type.as_str(),
                &value,
                &code_hash(key_id, &code),
                &CODE_TTL_MINUTES,
                &code,
                &number,
                &if key_type == KeyType::Phone { "sms" } else { "email" },
            ],
        )
        .await
        .map_err(|e| {
            if e.as_db_error().and_then(|d| d.constraint()) == Some("payment_keys_type_value_key") {
                ApiError::new(Code::KeyTaken, "this key is registered already")
            } else {
                db_error(e)
            }
        })?;
    Ok(key_of(&row))
}

/// The security notice and audit row of a key that now receives payments.
async fn registered(client: &tokio_postgres::Client, caller: &Caller, meta: &RequestMeta, key: &Key, number: &str) -> ApiResult<()> {
    client
        .execute(
            "WITH notice AS (
                 SELECT notify_user($1, 'key.registered', true,
                        jsonb_build_object('key_type', $2::text, 'key', $3::text, 'account', mask_account_number($4)))
             )
             INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
             SELECT $1, 'customer', a.branch_id, 'key.register', 'key:' || $5::text, $6, $7, 'success', jsonb_build_object('type', $2::text)
               FROM accounts a, notice WHERE a.number = $4",
            &[&caller.user_id, &key.key_type, &key.value, &number, &key.id.to_string(), &meta.request_id, &meta.client_ip.to_string()],
        )
        .await
        .map_err(db_error)?;
    Ok(())
}

/// `POST /v1/keys/{id}/verify`: the code sent to the phone or address; right, the key goes to the directory.
pub async fn verify(state: &AppState, caller: &Caller, meta: &RequestMeta, key_id: Uuid, request: VerifyKey) -> ApiResult<Key> {
    let interbank = member(state)?;
    let client = state.db.primary_read_committed().await?;
    let row = client
        .query_opt(
            &format!("SELECT {KEY_COLUMNS}, code_hash, code_expires_at > now(), code_attempts FROM payment_keys WHERE id = $1 AND user_id = $2"),
            &[&key_id, &caller.user_id],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(ApiError::not_found)?;
    let key = key_of(&row);
    if key.status == "active" {
        return Ok(key);
    }
    let (stored_hash, fresh, attempts): (Vec<u8>, bool, i32) = (row.get(6), row.get(7), row.get(8));
    if !fresh || attempts >= MAX_CODE_ATTEMPTS {
        client.execute("DELETE FROM payment_keys WHERE id = $1 AND status = 'pending_verification'", &[&key_id]).await.map_err(db_error)?;
        return Err(ApiError::new(Code::NotFound, "this code expired or was tried too often; register the key again"));
    }
    if request.code.len() != 6 || code_hash(key_id, &request.code) != stored_hash {
        client.execute("UPDATE payment_keys SET code_attempts = code_attempts + 1 WHERE id = $1", &[&key_id]).await.map_err(db_error)?;
        return Err(ApiError::validation("that code is not right"));
    }
    let holding = holding(&client, caller, key.account_id).await?;
    let key_type = KeyType::parse(&key.key_type).ok_or_else(|| ApiError::internal("stored key type"))?;
    interbank
        .link
        .register_key(&RegisterKey {
            key_type,
            value: Some(key.value.clone()),
            account_number: holding.number.clone(),
            account_kind: holding.kind,
            holder_name: holding.holder_name,
        })
        .await
        .map_err(api_error)?;
    let row = client
        .query_one(
            &format!("UPDATE payment_keys SET status = 'active', code_hash = NULL, code_expires_at = NULL WHERE id = $1 RETURNING {KEY_COLUMNS}"),
            &[&key_id],
        )
        .await
        .map_err(db_error)?;
    // The code has done its work: it is not kept where it was sent from.
    client
        .execute("UPDATE notification_events SET payload = payload - 'code' WHERE user_id = $1 AND kind = 'key.verification' AND payload->>'key_id' = $2", &[&caller.user_id, &key_id.to_string()])
        .await
        .map_err(db_error)?;
    let key = key_of(&row);
    registered(&client, caller, meta, &key, &holding.number).await?;
    Ok(key)
}

pub async fn list(state: &AppState, caller: &Caller) -> ApiResult<KeyList> {
    let client = state.db.primary_read_committed().await?;
    let rows = client
        .query(&format!("SELECT {KEY_COLUMNS} FROM payment_keys WHERE user_id = $1 ORDER BY created_at, id"), &[&caller.user_id])
        .await
        .map_err(db_error)?;
    Ok(KeyList { items: rows.iter().map(key_of).collect() })
}

/// `DELETE /v1/keys/{id}`: out of the directory first, then here; the key is free for anyone at once.
pub async fn delete(state: &AppState, caller: &Caller, meta: &RequestMeta, key_id: Uuid) -> ApiResult<()> {
    let interbank = member(state)?;
    let client = state.db.primary_read_committed().await?;
    let row = client
        .query_opt(&format!("SELECT {KEY_COLUMNS} FROM payment_keys WHERE id = $1 AND user_id = $2"), &[&key_id, &caller.user_id])
        .await
        .map_err(db_error)?
        .ok_or_else(ApiError::not_found)?;
    let key = key_of(&row);
    if key.status == "active" {
        let key_type = KeyType::parse(&key.key_type).ok_or_else(|| ApiError::internal("stored key type"))?;
        interbank.link.delete_key(key_type, &key.value).await.map_err(api_error)?;
    }
    client.execute("DELETE FROM payment_keys WHERE id = $1", &[&key_id]).await.map_err(db_error)?;
    client
        .execute(
            "INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
             SELECT $1, 'customer', a.branch_id, 'key.delete', 'key:' || $2::text, $3, $4, 'success', jsonb_build_object('type', $5::text)
               FROM accounts a WHERE a.id = $6",
            &[&caller.user_id, &key_id.to_string(), &meta.request_id, &meta.client_ip.to_string(), &key.key_type, &key.account_id],
        )
        .await
        .map_err(db_error)?;
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DirectoryQuery {
    #[serde(rename = "type")]
    #[param(value_type = String, pattern = "^(phone|email|national_id|random)$")]
    pub key_type: KeyType,
    #[param(min_length = 1, max_length = 254)]
    pub value: String,
}

/// `GET /v1/directory`: whom a key pays, masked; limited per customer at the switch.
pub async fn lookup(state: &AppState, caller: &Caller, query: DirectoryQuery) -> ApiResult<DirectoryEntry> {
    let interbank = member(state)?;
    let value = normalize_and_check(query.key_type, &query.value).map_err(ApiError::validation)?;
    interbank.link.lookup(query.key_type, &value, &caller.user_id.to_string()).await.map_err(api_error)
}
