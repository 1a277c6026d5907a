//! Money movement: request types, amount validation, and the single round
//! trip to `move_money` / `move_money_batch` (sql/V2) inside the
//! serializable-retry loop.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::Caller,
    db::db_error,
    error::{ApiError, ApiResult, Code},
    group_commit::{GroupItem, Outcome},
    request::RequestMeta,
    state::AppState,
    text::TextRule,
};

pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
pub const MAX_FRACTION_DIGITS: u32 = 2;
pub const MAX_MEMO_CHARS: usize = 140;
pub const MAX_BATCH_ITEMS: usize = 1000;
pub const MAX_ACCOUNT_NUMBER_LEN: usize = 34;

/// A positive amount of money, from a JSON string such as "1250.50": at most
/// two fraction digits, at most 1,000,000,000,000. Never a JSON number, never
/// a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Amount(#[serde(with = "rust_decimal::serde::str")] pub Decimal);

/// Exactly the strings `Amount::parse` accepts (a unit test holds the two
/// together): digits, at most two decimals, more than 0, at most 10^12.
pub const AMOUNT_PATTERN: &str =
    r"^(0*[1-9][0-9]{0,11}(\.[0-9]{1,2})?|0+\.(0[1-9]|[1-9][0-9]?)|0*1000000000000(\.0{1,2})?)$";

impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        crate::text::from_json(serde_json::json!({
            "type": "string", "pattern": AMOUNT_PATTERN, "examples": ["1250.50"],
            "description": "A positive decimal string with at most two decimals, at most 1000000000000; never a JSON number.",
        }))
    }
}

impl ToSchema for Amount {
    fn name() -> std::borrow::Cow<'static, str> {
        "Amount".into()
    }
}

impl Amount {
    pub fn parse(text: &str) -> Result<Amount, String> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || (text.contains('.') && fraction.is_empty()) {
            return Err(format!("amount {text:?} is not a decimal string like \"1250.50\""));
        }
        if fraction.len() > MAX_FRACTION_DIGITS as usize {
            return Err(format!("amount {text:?} has more than {MAX_FRACTION_DIGITS} decimals"));
        }
        if whole.trim_start_matches('0').len() > 13 {
            return Err(format!("amount {text:?} is larger than {MAX_AMOUNT}"));
        }
        let value: Decimal = text.parse().map_err(|_| format!("amount {text:?} is not a number"))?;
        if value <= Decimal::ZERO {
            return Err("amount must be greater than zero".into());
        }
        if value > Decimal::from(MAX_AMOUNT) {
            return Err(format!("amount must be at most {MAX_AMOUNT}"));
        }
        Ok(Amount(value))
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        match value {
            serde_json::Value::String(text) => Amount::parse(&text).map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "amount must be a decimal string such as \"12.50\", not {other}"
            ))),
        }
    }
}

pub static MEMO: TextRule = TextRule::new(crate::text::FREE_TEXT, 0, MAX_MEMO_CHARS);
pub static ACCOUNT_NUMBER: TextRule = TextRule::new(r"^[A-Za-z0-9]+$", 1, MAX_ACCOUNT_NUMBER_LEN);

fn memo_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    MEMO.nullable_schema()
}

fn account_number_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    ACCOUNT_NUMBER.schema()
}

pub fn check_memo(memo: &Option<String>) -> ApiResult<String> {
    let memo = memo.clone().unwrap_or_default();
    if !MEMO.accepts(&memo) {
        return Err(ApiError::validation(format!("memo must be at most {MAX_MEMO_CHARS} characters, without control characters")));
    }
    Ok(memo)
}

fn check_account_number(number: &str) -> ApiResult<()> {
    if !ACCOUNT_NUMBER.accepts(number) {
        return Err(ApiError::validation("to_account_number must be 1 to 34 letters or digits"));
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashRequest {
    pub account_id: Uuid,
    pub amount: Amount,
    #[schema(schema_with = memo_schema)]
    pub memo: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub from_account_id: Uuid,
    #[schema(schema_with = account_number_schema)]
    pub to_account_number: String,
    pub amount: Amount,
    #[schema(schema_with = memo_schema)]
    pub memo: Option<String>,
    /// Between currencies: the quote (POST /v1/fx/quotes) this transfer spends; from, to and amount must be its own.
    pub quote_id: Option<Uuid>,
}

/// One transfer of a batch (same currency; no quotes).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub from_account_id: Uuid,
    #[schema(schema_with = account_number_schema)]
    pub to_account_number: String,
    pub amount: Amount,
    #[schema(schema_with = memo_schema)]
    pub memo: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 1000 transfers, applied all or nothing.
    #[schema(value_type = Vec<BatchItem>, min_items = 1, max_items = 1000)]
    pub items: Vec<serde_json::Value>,
}

/// A committed movement, as the caller sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Transfer {
    pub id: Uuid,
    /// deposit, withdrawal or transfer.
    pub kind: String,
    pub from_account_id: Uuid,
    pub to_account_id: Uuid,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    pub memo: String,
    pub status: String,
    pub created_at: String,
    /// Balance of the caller's account (debited or credited) after the movement.
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub balance_after: Decimal,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub transfers: Vec<Transfer>,
}

/// Whose accounts a movement may touch.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// A customer: only accounts they own.
    Owner(Uuid),
    /// A branch admin at the teller: any customer account of the branch.
    Branch(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deposit,
    Withdrawal,
    Transfer,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Deposit => "deposit",
            Kind::Withdrawal => "withdrawal",
            Kind::Transfer => "transfer",
        }
    }
}

/// The stored (or first) response of a movement.
pub struct Moved {
    /// 201 for a movement made, 202 for one held for review; a replay answers what was stored.
    pub status: u16,
    pub replayed: bool,
    pub body: serde_json::Value,
}

/// SHA-256 over the route and the canonical JSON body: a repeat must be the
/// same operation with the same fields to be replayed.
pub fn request_hash(route: &str, canonical_body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_body);
    hasher.finalize().to_vec()
}

fn scope_params(scope: Scope) -> (Option<Uuid>, Option<Uuid>) {
    match scope {
        Scope::Owner(user) => (Some(user), None),
        Scope::Branch(branch) => (None, Some(branch)),
    }
}

const MOVE_MONEY_SQL: &str =
    "SELECT move_money($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11, $12, $13)";
const CURRENT_LSN_SQL: &str = "SELECT pg_current_wal_lsn()::text";
const LOOKUP_SQL: &str = "SELECT idempotency_lookup($1, $2, $3)";
const MOVE_MONEY_BATCH_SQL: &str = "SELECT move_money_batch($1, $2, $3, $4, $5, $6, $7, $8)";

pub struct Movement<'a> {
    pub kind: Kind,
    pub account_id: Uuid,
    pub to_account_number: Option<&'a str>,
    pub amount: Amount,
    pub memo: &'a Option<String>,
}

pub async fn move_money(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    meta: &RequestMeta,
    idempotency_key: &str,
    request_hash: &[u8],
    movement: Movement<'_>,
) -> ApiResult<Moved> {
    let memo = check_memo(movement.memo)?;
    if let Some(number) = movement.to_account_number {
        check_account_number(number)?;
    }
    let _inflight = state.inflight.claim(caller.user_id, idempotency_key)?;
    let mut touched = vec![movement.account_id];
    if let Some(number) = movement.to_account_number {
        touched.extend(state.account_locks.resolve(&state.db, number).await?);
    }
    let client_addr = meta.client_ip.to_string();
    // A customer's transfer joins the next group (sql/V9), whose worker
    // admits the whole group's accounts; deposits, withdrawals and the
    // teller's movements take the single path.
    if let (Kind::Transfer, Scope::Owner(_), Some(number)) = (movement.kind, scope, movement.to_account_number) {
        let item = GroupItem {
            accounts: touched.clone(),
            actor_id: caller.user_id,
            actor_role: caller.role.as_str().to_string(),
            idempotency_key: idempotency_key.to_string(),
            request_hash: request_hash.to_vec(),
            from_account_id: movement.account_id,
            to_account_number: number.to_string(),
            amount: movement.amount.0,
            memo: memo.clone(),
            request_id: meta.request_id.clone(),
            client_addr: client_addr.clone(),
        };
        match state.groups.submit(item).await {
            Outcome::Moved { body, lsn } => {
                state.db.remember_write(&caller.session_hash, &lsn);
                return Ok(Moved { status: 201, replayed: false, body });
            }
            Outcome::Refused(refused) => return answer_refusal(state, caller, idempotency_key, request_hash, refused).await,
            Outcome::Alone => {}
        }
    }
    let _admission = state.account_locks.admit(touched).await;
    let (scope_owner, scope_branch) = scope_params(scope);
    let (role, kind) = (caller.role.as_str(), movement.kind.as_str());
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
        &caller.user_id,
        &role,
        &scope_owner,
        &scope_branch,
        &idempotency_key,
        &request_hash,
        &kind,
        &movement.account_id,
        &movement.to_account_number,
        &movement.amount.0,
        &memo,
        &meta.request_id,
        &client_addr,
    ];
    execute_movement(state, caller, idempotency_key, request_hash, MOVE_MONEY_SQL, &params).await
}

/// A batch's items, each checked as a transfer's fields are (memo trimmed), or the first bad one's 400.
pub fn parse_batch(raw_items: Vec<serde_json::Value>) -> ApiResult<Vec<BatchItem>> {
    if raw_items.is_empty() || raw_items.len() > MAX_BATCH_ITEMS {
        return Err(ApiError::validation(format!("items must hold 1 to {MAX_BATCH_ITEMS} transfers")));
    }
    let mut items = Vec::with_capacity(raw_items.len());
    for (index, raw) in raw_items.into_iter().enumerate() {
        let mut item: BatchItem = crate::request::object(raw)
            .map_err(|e: serde_json::Error| ApiError::validation(format!("item {index}: {e}")))?;
        item.memo = Some(check_memo(&item.memo).map_err(|e| ApiError::validation(format!("item {index}: {}", e.detail)))?);
        check_account_number(&item.to_account_number)
            .map_err(|e| ApiError::validation(format!("item {index}: {}", e.detail)))?;
        items.push(item);
    }
    Ok(items)
}

pub async fn move_money_batch(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    idempotency_key: &str,
    request_hash: &[u8],
    items: &[BatchItem],
) -> ApiResult<Moved> {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|item| {
            serde_json::json!({
                "from_account_id": item.from_account_id,
                "to_account_number": item.to_account_number,
                "amount": item.amount.0.to_string(),
                "memo": item.memo.as_deref().unwrap_or_default(),
            })
        })
        .collect();
    let _inflight = state.inflight.claim(caller.user_id, idempotency_key)?;
    let mut touched = Vec::with_capacity(items.len() * 2);
    for item in &items {
        touched.extend(item["from_account_id"].as_str().and_then(|id| id.parse::<Uuid>().ok()));
        if let Some(number) = item["to_account_number"].as_str() {
            touched.extend(state.account_locks.resolve(&state.db, number).await?);
        }
    }
    let _admission = state.account_locks.admit_batch(touched).await;
    let items = serde_json::Value::Array(items);
    let client_addr = meta.client_ip.to_string();
    let role = caller.role.as_str();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
        &caller.user_id,
        &role,
        &caller.user_id,
        &idempotency_key,
        &request_hash,
        &items,
        &meta.request_id,
        &client_addr,
    ];
    execute_movement(state, caller, idempotency_key, request_hash, MOVE_MONEY_BATCH_SQL, &params).await
}

/// One round trip: the movement and the WAL position after it, pipelined on
/// one connection. The idempotency key is only looked up when the movement
/// is refused: a key that exists makes it fail (`idempotency_conflict`,
/// nothing moved), and so may a business rule on a repeat whose first run
/// changed the balances; either way the stored response is the answer.
async fn execute_movement(
    state: &AppState,
    caller: &Caller,
    idempotency_key: &str,
    request_hash: &[u8],
    movement_sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> ApiResult<Moved> {
    state
        .db
        .retry_serializable(|| async {
            let client = state.db.writer().await?;
            let statement = client.prepare_cached(movement_sql).await.map_err(db_error)?;
            let (moved, lsn) = tokio::join!(client.query_one(&statement, params), client.query_one(CURRENT_LSN_SQL, &[]));
            match moved {
                Ok(row) => {
                    if let Ok(lsn) = lsn {
                        state.db.remember_write(&caller.session_hash, &lsn.get::<_, String>(0));
                    }
                    moved_from(row.get(0))
                }
                Err(e) => {
                    let refused = db_error(e);
                    if refused.code == Code::TransientConflict {
                        return Err(refused);
                    }
                    answer_refusal(state, caller, idempotency_key, request_hash, refused).await
                }
            }
        })
        .await
}

/// A movement was refused (a business rule, or the key exists): if this key
/// has a stored response, this is a repeat, and the first answer stands.
async fn answer_refusal(state: &AppState, caller: &Caller, idempotency_key: &str, request_hash: &[u8], refused: ApiError) -> ApiResult<Moved> {
    let lookup_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&caller.user_id, &idempotency_key, &request_hash];
    match lookup_key(state, &lookup_params).await? {
        Some(previous) => moved_from(previous),
        None if refused.code == Code::IdempotencyConflict => Err(ApiError::new(Code::TransientConflict, "idempotency key expired meanwhile")),
        None => Err(refused),
    }
}

/// The stored response for a key, read at READ COMMITTED on the primary: a
/// SERIALIZABLE read here would predicate-lock the index page that
/// concurrent movements insert into.
async fn lookup_key(state: &AppState, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> ApiResult<Option<serde_json::Value>> {
    let client = state.db.primary_read_committed().await?;
    let statement = client.prepare_cached(LOOKUP_SQL).await.map_err(db_error)?;
    let row = client.query_one(&statement, params).await.map_err(db_error)?;
    Ok(row.get(0))
}

/// An exact decimal as the API writes it, with `scale` decimals ("0.00", never "0").
pub fn decimal_text(mut amount: Decimal, scale: u32) -> String {
    amount.rescale(scale);
    amount.to_string()
}

/// Inside a movement's transaction: the stored answer to this Idempotency-Key, if it was used
/// (a different request with it is refused: `idempotency_key_reused`).
pub async fn stored_answer(tx: &impl tokio_postgres::GenericClient, user_id: Uuid, key: &str, request_hash: &[u8]) -> ApiResult<Option<Moved>> {
    let replay: Option<serde_json::Value> =
        tx.query_one(LOOKUP_SQL, &[&user_id, &key, &request_hash]).await.map_err(db_error)?.get(0);
    Ok(replay.map(|replay| Moved { status: stored_status(&replay), replayed: true, body: replay["body"].clone() }))
}

/// Inside the same transaction: the answer a repeat of this key will get (201, or 202 for a held transfer).
pub async fn store_answer(tx: &tokio_postgres::Transaction<'_>, user_id: Uuid, key: &str, request_hash: &[u8], status: i32, body: &serde_json::Value) -> ApiResult<()> {
    tx.execute(
        "INSERT INTO idempotency_keys (key_hash, user_id, key, request_hash, response_status, response_body)
         VALUES (idempotency_key_hash($1, $2), $1, $2, $3, $4, $5)",
        &[&user_id, &key, &request_hash, &status, body],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The status a stored answer was given (sql/functions/idempotency_lookup.sql); a movement's own is 201.
fn stored_status(result: &serde_json::Value) -> u16 {
    result.get("status").and_then(serde_json::Value::as_u64).and_then(|s| u16::try_from(s).ok()).unwrap_or(201)
}

fn moved_from(result: serde_json::Value) -> ApiResult<Moved> {
    let replayed = result.get("replayed").and_then(|v| v.as_bool()).unwrap_or(false);
    let body = result
        .get("body")
        .cloned()
        .ok_or_else(|| ApiError::internal("move_money returned no body"))?;
    Ok(Moved { status: stored_status(&result), replayed, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_accept_only_positive_two_decimal_strings() {
        for good in ["1", "0.01", "1250.50", "1000000000000", "1000000000000.00", "007.5"] {
            assert!(Amount::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "0", "0.00", "-1", "+1", "1.001", "1e3", "1,00", " 1", "1.", ".5", "abc",
            "1000000000000.01", "99999999999999", "NaN", "١٢",
        ] {
            assert!(Amount::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// The published pattern and the parser agree, on edge cases and on
    /// every short string over the characters that matter.
    #[test]
    fn the_published_amount_pattern_is_the_parser() {
        let pattern = regex::Regex::new(AMOUNT_PATTERN).unwrap();
        let agree = |text: &str| assert_eq!(pattern.is_match(text), Amount::parse(text).is_ok(), "{text:?}");
        for edge in [
            "1000000000000", "1000000000000.0", "1000000000000.00", "1000000000000.01", "0999999999999.99",
            "999999999999.99", "00000000000001000000000000", "0.1", "0.10", "0.01", "00.00", "0.001", "1\n",
        ] {
            agree(edge);
        }
        let alphabet = ['0', '1', '9', '.', '-', ' '];
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            texts = texts.iter().flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}"))).collect();
            texts.iter().for_each(|t| agree(t));
        }
    }

    #[test]
    fn amounts_must_be_json_strings() {
        assert!(serde_json::from_str::<Amount>("\"12.50\"").is_ok());
        assert!(serde_json::from_str::<Amount>("12.5").is_err());
        assert!(serde_json::from_str::<Amount>("null").is_err());
    }
}
