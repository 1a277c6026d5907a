//! Reading accounts and their history. Every query takes the caller's scope
//! (owner or branch) so that anything outside it is simply not found.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    db::{db_error, Client},
    error::{ApiError, ApiResult},
    money::Scope,
    page,
};

#[derive(Debug, Serialize, Deserialize, ToSchema, Clone)]
pub struct Owner {
    pub id: Uuid,
    pub full_name: String,
}

/// The kinds of customer account (the schema of `Account.kind`; the
/// server keeps them as text, `admin::ACCOUNT_KINDS`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AccountKind {
    Savings,
    Current,
    Business,
}

/// The currencies an account may hold (`admin::CURRENCIES`).
#[derive(ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
pub enum Currency {
    INR,
    USD,
    EUR,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    Frozen,
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Frozen => "frozen",
            AccountStatus::Closed => "closed",
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Clone)]
pub struct Account {
    pub id: Uuid,
    pub number: String,
    pub branch_id: Uuid,
    #[schema(value_type = AccountKind)]
    pub kind: String,
    #[schema(value_type = Currency)]
    pub currency: String,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub balance: Decimal,
    /// The balance less the money on hold for movements not yet decided
    /// (inter-bank payments between their two phases): what can be spent.
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub available_balance: Decimal,
    #[schema(value_type = AccountStatus)]
    pub status: String,
    pub owners: Vec<Owner>,
    pub opened_at: DateTime<Utc>,
}

/// Selects `Account` columns from `accounts a`; callers add WHERE/ORDER.
pub const ACCOUNT_SELECT: &str = "
SELECT a.id, a.number, a.branch_id, a.kind, a.currency, a.balance, a.balance - a.held AS available_balance, a.status, a.opened_at,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', u.id, 'full_name', u.full_name) ORDER BY u.full_name), '[]')
          FROM account_owners o JOIN users u ON u.id = o.user_id WHERE o.account_id = a.id) AS owners
  FROM accounts a";

impl TryFrom<&tokio_postgres::Row> for Account {
    type Error = ApiError;
    fn try_from(row: &tokio_postgres::Row) -> ApiResult<Account> {
        Ok(Account {
            id: row.get("id"),
            number: row.get("number"),
            branch_id: row.get("branch_id"),
            kind: row.get("kind"),
            currency: row.get("currency"),
            balance: row.get("balance"),
            available_balance: row.get("available_balance"),
            status: row.get("status"),
            owners: serde_json::from_value(row.get("owners")).map_err(ApiError::internal)?,
            opened_at: row.get("opened_at"),
        })
    }
}

/// The condition that account `a` is in `scope`, with the scope's id as parameter `$<param>`.
fn scope_clause(scope: Scope, param: usize) -> (String, Uuid) {
    match scope {
        Scope::Owner(user) => (format!("EXISTS (SELECT 1 FROM account_owners o WHERE o.account_id = a.id AND o.user_id = ${param})"), user),
        Scope::Branch(branch) => (format!("a.branch_id = ${param}"), branch),
    }
}

pub async fn get_account(client: &Client, scope: Scope, account_id: Uuid) -> ApiResult<Account> {
    let (clause, scope_id) = scope_clause(scope, 2);
    let sql = format!("{ACCOUNT_SELECT} WHERE a.id = $1 AND a.kind NOT IN ('vault', 'settlement', 'fx') AND {clause}");
    // Prepared once per connection: a read is mostly this statement's parse and plan otherwise.
    let statement = client.prepare_cached(&sql).await.map_err(db_error)?;
    let row = client
        .query_opt(&statement, &[&account_id, &scope_id])
        .await
        .map_err(db_error)?
        .ok_or_else(ApiError::not_found)?;
    Account::try_from(&row)
}

pub async fn accounts_of_user(client: &Client, user_id: Uuid) -> ApiResult<Vec<Account>> {
    let sql = format!(
        "{ACCOUNT_SELECT} WHERE a.id IN (SELECT account_id FROM account_owners WHERE user_id = $1) ORDER BY a.number"
    );
    let statement = client.prepare_cached(&sql).await.map_err(db_error)?;
    client.query(&statement, &[&user_id]).await.map_err(db_error)?.iter().map(Account::try_from).collect()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Entry {
    pub id: Uuid,
    pub transfer_id: Uuid,
    #[schema(value_type = EntryKind)]
    pub kind: String,
    /// Always positive; `kind` tells the direction.
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub balance_after: Decimal,
    /// The other account's number; null for cash (deposits and withdrawals).
    pub counterparty_account_number: Option<String>,
    /// The other bank of an inter-bank payment (`interbank_in`, `interbank_out`); null otherwise.
    pub counterparty_bank_id: Option<String>,
    pub memo: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntryPage {
    pub items: Vec<Entry>,
    pub next_cursor: Option<String>,
}

/// The kinds of ledger entry a history can be filtered by.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Deposit,
    Withdrawal,
    TransferIn,
    TransferOut,
    InterbankIn,
    InterbankOut,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Deposit => "deposit",
            EntryKind::Withdrawal => "withdrawal",
            EntryKind::TransferIn => "transfer_in",
            EntryKind::TransferOut => "transfer_out",
            EntryKind::InterbankIn => "interbank_in",
            EntryKind::InterbankOut => "interbank_out",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Page size.
    #[param(schema_with = page::limit_schema)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = page::time_id_schema)]
    pub cursor: Option<String>,
    /// Entries at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this instant.
    pub to: Option<DateTime<Utc>>,
    #[param(inline)]
    pub kind: Option<EntryKind>,
}

pub async fn history(client: &Client, scope: Scope, account_id: Uuid, query: HistoryQuery) -> ApiResult<EntryPage> {
    let limit = page::limit(query.limit)?;
    let kind = query.kind.map(EntryKind::as_str);
    let (cursor_at, cursor_id) = page::decode_time_id(&query.cursor)?.unzip();
    let fetch = limit + 1;
    // The scope is checked in the page's own statement (one statement per page, not two); an
    // account outside it gives no rows, and only an empty page asks which of the two it was.
    let (clause, scope_id) = scope_clause(scope, 8);
    let params: [&(dyn ToSql + Sync); 8] =
        [&account_id, &query.from, &query.to, &kind, &cursor_at, &cursor_id, &fetch, &scope_id];
    let statement = client
        .prepare_cached(&format!(
            "SELECT e.id, e.transfer_id, e.kind, abs(e.amount) AS amount, e.balance_after, e.memo, e.created_at,
                    CASE WHEN c.kind IN ('vault', 'settlement', 'fx') THEN NULL ELSE c.number END AS counterparty_account_number,
                    CASE WHEN c.kind = 'settlement'
                         THEN (SELECT ip.counterparty_bank_id FROM interbank_payments ip WHERE ip.transfer_id = e.transfer_id) END AS counterparty_bank_id
               FROM entries e JOIN accounts c ON c.id = e.counterparty_account_id
              WHERE e.account_id = $1
                AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = $1 AND a.kind NOT IN ('vault', 'settlement', 'fx') AND {clause})
                AND ($2::timestamptz IS NULL OR e.created_at >= $2)
                AND ($3::timestamptz IS NULL OR e.created_at < $3)
                AND ($4::text IS NULL OR e.kind = $4)
                AND ($5::timestamptz IS NULL OR (e.created_at, e.id) < ($5, $6::uuid))
              ORDER BY e.created_at DESC, e.id DESC
              LIMIT $7"
        ))
        .await
        .map_err(db_error)?;
    let rows = client.query(&statement, &params).await.map_err(db_error)?;
    if rows.is_empty() {
        // An account outside the scope is not found, even with no entries.
        get_account(client, scope, account_id).await?;
    }
    let mut items: Vec<Entry> = rows
        .iter()
        .map(|row| Entry {
            id: row.get("id"),
            transfer_id: row.get("transfer_id"),
            kind: row.get("kind"),
            amount: row.get("amount"),
            balance_after: row.get("balance_after"),
            counterparty_account_number: row.get("counterparty_account_number"),
            counterparty_bank_id: row.get("counterparty_bank_id"),
            memo: row.get("memo"),
            created_at: row.get("created_at"),
        })
        .collect();
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|e| page::encode_time_id(e.created_at, e.id))
    } else {
        None
    };
    Ok(EntryPage { items, next_cursor })
}
