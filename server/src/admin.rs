//! A branch admin's work: customers, accounts, the branch's transactions and
//! audit trail. Every query is bound to the admin's branch; objects of other
//! branches answer 404. Every change writes an audit row in its transaction.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;
use utoipa::{
    openapi::{RefOr, Schema},
    IntoParams, ToSchema,
};
use uuid::Uuid;

use crate::{
    access::Caller,
    accounts::{Account, AccountKind, AccountStatus, Currency, ACCOUNT_SELECT},
    audit::{record_tx, AuditEntry, AuditRow},
    auth::password,
    db::{db_error, Client},
    error::{ApiError, ApiResult, Code},
    page,
    request::RequestMeta,
    text::{self, TextRule},
    state::AppState,
};

pub const MAX_OWNERS: usize = 8;
pub const CURRENCIES: [&str; 3] = ["INR", "USD", "EUR"];
pub const ACCOUNT_KINDS: [&str; 3] = ["savings", "current", "business"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    #[schema(schema_with = username_schema)]
    pub username: String,
    #[schema(schema_with = full_name_schema)]
    pub full_name: String,
    #[schema(schema_with = national_id_schema)]
    pub national_id: String,
    #[schema(schema_with = phone_schema)]
    pub phone: String,
    #[schema(schema_with = email_schema)]
    pub email: String,
    #[schema(schema_with = password::new_password_schema)]
    pub password: String,
}

pub static USERNAME: TextRule = TextRule::new(r"^[a-z0-9._-]+$", 3, 64);
pub static FULL_NAME: TextRule = TextRule::new(text::NAME, 1, 200);
pub static NATIONAL_ID: TextRule = TextRule::new(text::NAME, 1, 64);
/// Digits, spaces, `+`, `-`, `(` and `)`, not starting or ending with a space.
pub static PHONE: TextRule = TextRule::new(r"^[0-9+()-]([0-9 +()-]*[0-9+()-])?$", 1, 32);
/// Printable ASCII without spaces, one `@` with something on each side.
pub static EMAIL: TextRule = TextRule::new(r"^[!-?A-~]+@[!-?A-~]+$", 3, 254);
/// Free-text search in the admin listings.
pub static SEARCH: TextRule = TextRule::new(text::FREE_TEXT, 0, 200);

fn username_schema() -> RefOr<Schema> {
    USERNAME.schema()
}
fn full_name_schema() -> RefOr<Schema> {
    FULL_NAME.schema()
}
fn national_id_schema() -> RefOr<Schema> {
    NATIONAL_ID.schema()
}
fn phone_schema() -> RefOr<Schema> {
    PHONE.schema()
}
fn email_schema() -> RefOr<Schema> {
    EMAIL.schema()
}
fn search_schema() -> RefOr<Schema> {
    SEARCH.schema()
}
fn owner_ids_schema() -> RefOr<Schema> {
    text::from_json(serde_json::json!({"type": "array", "items": {"type": "string", "format": "uuid"},
        "minItems": 1, "maxItems": MAX_OWNERS, "uniqueItems": true}))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    pub id: Uuid,
    pub username: String,
    pub full_name: String,
    pub role: String,
    pub branch_id: Option<Uuid>,
    pub national_id: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub accounts: Vec<Account>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerPage {
    pub items: Vec<Customer>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// Part of a name, username, national id, phone or e-mail.
    #[param(schema_with = search_schema)]
    pub query: Option<String>,
    #[param(schema_with = page::limit_schema)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = page::username_schema)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// 1 to 8 distinct customers of the branch; two or more make a joint account.
    #[schema(schema_with = owner_ids_schema)]
    pub owner_ids: Vec<Uuid>,
    #[schema(value_type = AccountKind)]
    pub kind: String,
    #[schema(value_type = Currency)]
    pub currency: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    /// Part of the number or of an owner's name or username.
    #[param(schema_with = search_schema)]
    pub query: Option<String>,
    #[param(inline)]
    pub status: Option<AccountStatus>,
    #[param(schema_with = page::limit_schema)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = page::account_number_schema)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountPage {
    pub items: Vec<Account>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TransactionQuery {
    /// Only this account's movements (an account of the branch).
    pub account_id: Option<Uuid>,
    /// Movements at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Movements before this instant.
    pub to: Option<DateTime<Utc>>,
    #[param(schema_with = page::limit_schema)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = page::time_id_schema)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BranchTransfer {
    pub id: Uuid,
    pub kind: String,
    pub from_account_id: Uuid,
    pub from_account_number: String,
    pub to_account_id: Uuid,
    pub to_account_number: String,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    pub memo: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferPage {
    pub items: Vec<BranchTransfer>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only what this user did.
    pub actor: Option<Uuid>,
    /// Only this action, e.g. `admin.account_frozen`.
    #[param(schema_with = action_schema)]
    pub action: Option<String>,
    /// Rows at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Rows before this instant.
    pub to: Option<DateTime<Utc>>,
    #[param(schema_with = page::limit_schema)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = page::row_id_schema)]
    pub cursor: Option<String>,
}

/// Audit actions are dotted snake_case names.
pub static ACTION: TextRule = TextRule::new(r"^[a-z0-9._]*$", 0, 64);

fn action_schema() -> RefOr<Schema> {
    ACTION.schema()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditRow>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub enum StatusChange {
    Freeze,
    Unfreeze,
    Close,
}


fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

fn check(field: &str, rule: &TextRule, value: &str, what: &str) -> ApiResult<()> {
    if !rule.accepts(value) {
        return Err(ApiError::validation(format!("{field} must be {} to {} {what}", rule.min_chars, rule.max_chars)));
    }
    Ok(())
}

fn check_search(query: &Option<String>) -> ApiResult<()> {
    match query {
        Some(text) => check("query", &SEARCH, text, "characters without control characters"),
        None => Ok(()),
    }
}

pub async fn create_customer(state: &AppState, admin: &Caller, branch_id: Uuid, meta: &RequestMeta, req: NewCustomer) -> ApiResult<Customer> {
    let username = req.username.clone();
    check("username", &USERNAME, &username, "of a-z, 0-9, '.', '_', '-'")?;
    check("full_name", &FULL_NAME, &req.full_name, "characters, without control characters or surrounding spaces")?;
    check("national_id", &NATIONAL_ID, &req.national_id, "characters, without control characters or surrounding spaces")?;
    check("phone", &PHONE, &req.phone, "of digits, spaces, +, -, ( and ), not starting or ending with a space")?;
    check("email", &EMAIL, &req.email, "characters like name@example.com, without spaces")?;
    password::check_new_password(&req.password)?;
    let password_hash = state.hasher.hash(req.password.clone()).await?;
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let row = tx
                .query_opt(
                    "INSERT INTO users (username, full_name, role, branch_id, national_id, phone, email, password_hash, created_by)
                     VALUES ($1, $2, 'customer', $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (username) DO NOTHING
                     RETURNING id, username, full_name, role, branch_id, national_id, phone, email, created_at",
                    &[&username, &req.full_name.trim(), &branch_id, &req.national_id.trim(), &req.phone.trim(), &req.email.trim(), &password_hash, &admin.user_id],
                )
                .await
                .map_err(db_error)?
                .ok_or_else(|| ApiError::new(Code::UsernameTaken, format!("username {username} is taken")))?;
            let customer = customer_from_row(&row, Vec::new());
            record_tx(&tx, &AuditEntry::success_by(admin, meta, &client_addr, "admin.customer_created", format!("user:{}", customer.id), serde_json::json!({ "username": username }))).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(customer)
        })
        .await
}

fn customer_from_row(row: &tokio_postgres::Row, accounts: Vec<Account>) -> Customer {
    Customer {
        id: row.get("id"),
        username: row.get("username"),
        full_name: row.get("full_name"),
        role: row.get("role"),
        branch_id: row.get("branch_id"),
        national_id: row.get("national_id"),
        phone: row.get("phone"),
        email: row.get("email"),
        created_at: row.get("created_at"),
        accounts,
    }
}

pub async fn list_customers(client: &Client, branch_id: Uuid, query: CustomerQuery) -> ApiResult<CustomerPage> {
    let limit = page::limit(query.limit)?;
    check_search(&query.query)?;
    let after = page::cursor(&page::USERNAME, &query.cursor)?;
    let pattern = query.query.as_deref().map(like_pattern);
    let fetch = limit + 1;
    let rows = client
        .query(
            "SELECT id, username, full_name, role, branch_id, national_id, phone, email, created_at FROM users
              WHERE branch_id = $1 AND role = 'customer'
                AND ($2::text IS NULL OR username ILIKE $2 OR full_name ILIKE $2 OR national_id ILIKE $2 OR email ILIKE $2 OR phone ILIKE $2)
                AND ($3::text IS NULL OR username > $3)
              ORDER BY username LIMIT $4",
            &[&branch_id, &pattern, &after, &fetch],
        )
        .await
        .map_err(db_error)?;
    let more = rows.len() as i64 > limit;
    let mut items = Vec::new();
    for row in rows.iter().take(limit as usize) {
        let id: Uuid = row.get("id");
        let accounts = crate::accounts::accounts_of_user(client, id).await?;
        items.push(customer_from_row(row, accounts));
    }
    let next_cursor = more
        .then(|| items.last().map(|c| c.username.clone()))
        .flatten();
    Ok(CustomerPage { items, next_cursor })
}

pub async fn open_account(state: &AppState, admin: &Caller, branch_id: Uuid, meta: &RequestMeta, req: NewAccount) -> ApiResult<Account> {
    if !ACCOUNT_KINDS.contains(&req.kind.as_str()) {
        return Err(ApiError::validation("kind must be savings, current or business"));
    }
    if !CURRENCIES.contains(&req.currency.as_str()) {
        return Err(ApiError::validation("currency must be INR, USD or EUR"));
    }
    let mut owners = req.owner_ids.clone();
    owners.sort();
    owners.dedup();
    if owners.is_empty() || owners.len() > MAX_OWNERS || owners.len() != req.owner_ids.len() {
        return Err(ApiError::validation(format!("owner_ids must hold 1 to {MAX_OWNERS} distinct customers")));
    }
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let found: i64 = tx
                .query_one(
                    "SELECT count(*) FROM users WHERE id = ANY($1) AND role = 'customer' AND branch_id = $2",
                    &[&owners, &branch_id],
                )
                .await
                .map_err(db_error)?
                .get(0);
            if found != owners.len() as i64 {
                return Err(ApiError::new(Code::NotFound, "no such customer in this branch"));
            }
            tx.execute(
                "SELECT ensure_vaults($1, $2)",
                &[&branch_id, &req.currency],
            )
            .await
            .map_err(db_error)?;
            let id: Uuid = tx
                .query_one(
                    // Its daily limit counts days in its (first) holder's time zone.
                    "INSERT INTO accounts (branch_id, kind, currency, limit_time_zone)
                     VALUES ($1, $2, $3, coalesce((SELECT s.time_zone FROM notification_settings s WHERE s.user_id = $4), 'UTC')) RETURNING id",
                    &[&branch_id, &req.kind, &req.currency, &owners[0]],
                )
                .await
                .map_err(db_error)?
                .get(0);
            tx.execute(
                "INSERT INTO account_owners (account_id, user_id) SELECT $1, unnest($2::uuid[])",
                &[&id, &owners],
            )
            .await
            .map_err(db_error)?;
            let row = tx
                .query_one(&format!("{ACCOUNT_SELECT} WHERE a.id = $1"), &[&id])
                .await
                .map_err(db_error)?;
            let account = Account::try_from(&row)?;
            // Every owner hears of an account opened in their name (a security notice: it may not be theirs).
            tx.execute(
                "SELECT notify_user(owner_id, 'account.opened', true,
                        jsonb_build_object('account', mask_account_number($2), 'kind', $3::text, 'currency', $4::text, 'joint', $5::boolean))
                   FROM unnest($1::uuid[]) AS owner_id",
                &[&owners, &account.number, &account.kind, &account.currency, &(owners.len() > 1)],
            )
            .await
            .map_err(db_error)?;
            record_tx(&tx, &AuditEntry::success_by(admin, meta, &client_addr, "admin.account_opened", format!("account:{}", account.number),
                serde_json::json!({ "kind": account.kind, "currency": account.currency, "owners": owners }))).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(account)
        })
        .await
}

pub async fn change_status(state: &AppState, admin: &Caller, branch_id: Uuid, meta: &RequestMeta, account_id: Uuid, change: StatusChange) -> ApiResult<Account> {
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let row = tx
                .query_opt(
                    "SELECT status, balance, number FROM accounts WHERE id = $1 AND branch_id = $2 AND kind NOT IN ('vault', 'settlement', 'fx') FOR UPDATE",
                    &[&account_id, &branch_id],
                )
                .await
                .map_err(db_error)?
                .ok_or_else(ApiError::not_found)?;
            let status: String = row.get("status");
            let balance: Decimal = row.get("balance");
            let number: String = row.get("number");
            if status == "closed" {
                return Err(ApiError::new(Code::AccountInactive, format!("account {number} is closed")));
            }
            let (new_status, action) = match change {
                StatusChange::Freeze => ("frozen", "admin.account_frozen"),
                StatusChange::Unfreeze => ("active", "admin.account_unfrozen"),
                StatusChange::Close if !balance.is_zero() => {
                    return Err(ApiError::new(Code::BalanceNotZero, format!("account {number} still holds {balance}")));
                }
                StatusChange::Close => ("closed", "admin.account_closed"),
            };
            tx.execute(
                "UPDATE accounts SET status = $2, closed_at = CASE WHEN $2 = 'closed' THEN now() ELSE closed_at END WHERE id = $1",
                &[&account_id, &new_status],
            )
            .await
            .map_err(db_error)?;
            record_tx(&tx, &AuditEntry::success_by(admin, meta, &client_addr, action, format!("account:{number}"),
                serde_json::json!({ "from": status, "to": new_status }))).await?;
            let row = tx.query_one(&format!("{ACCOUNT_SELECT} WHERE a.id = $1"), &[&account_id]).await.map_err(db_error)?;
            let account = Account::try_from(&row)?;
            tx.commit().await.map_err(db_error)?;
            Ok(account)
        })
        .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOwner {
    /// A customer of the same branch.
    pub user_id: Uuid,
}

/// `POST /v1/admin/accounts/{id}/owners`: one more owner of an open account
/// (it becomes joint). The new owner is told they own it; the others that
/// someone was added, since a stranger added to an account can spend from it.
pub async fn add_owner(state: &AppState, admin: &Caller, branch_id: Uuid, meta: &RequestMeta, account_id: Uuid, req: NewOwner) -> ApiResult<Account> {
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let row = tx
                .query_opt(
                    "SELECT a.status, a.number, a.kind, a.currency, (SELECT count(*) FROM account_owners o WHERE o.account_id = a.id)
                       FROM accounts a WHERE a.id = $1 AND a.branch_id = $2 AND a.kind NOT IN ('vault', 'settlement', 'fx') FOR UPDATE",
                    &[&account_id, &branch_id],
                )
                .await
                .map_err(db_error)?
                .ok_or_else(ApiError::not_found)?;
            let (status, number, kind, currency, owner_count): (String, String, String, String, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            if status == "closed" {
                return Err(ApiError::new(Code::AccountInactive, format!("account {number} is closed")));
            }
            let owner = tx
                .query_opt("SELECT full_name FROM users WHERE id = $1 AND role = 'customer' AND branch_id = $2", &[&req.user_id, &branch_id])
                .await
                .map_err(db_error)?
                .ok_or_else(|| ApiError::new(Code::NotFound, "no such customer in this branch"))?;
            let full_name: String = owner.get(0);
            let added = tx
                .execute("INSERT INTO account_owners (account_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&account_id, &req.user_id])
                .await
                .map_err(db_error)?;
            if added == 1 {
                if owner_count as usize >= MAX_OWNERS {
                    return Err(ApiError::new(Code::LimitReached, format!("an account has at most {MAX_OWNERS} owners")));
                }
                tx.execute(
                    "SELECT CASE WHEN o.user_id = $2
                                 THEN notify_user(o.user_id, 'account.opened', true,
                                      jsonb_build_object('account', mask_account_number($3), 'kind', $4::text, 'currency', $5::text, 'joint', true))
                                 ELSE notify_user(o.user_id, 'account.owner_added', true,
                                      jsonb_build_object('account', mask_account_number($3), 'owner', $6::text)) END
                       FROM account_owners o WHERE o.account_id = $1",
                    &[&account_id, &req.user_id, &number, &kind, &currency, &full_name],
                )
                .await
                .map_err(db_error)?;
                record_tx(&tx, &AuditEntry::success_by(admin, meta, &client_addr, "admin.account_owner_added", format!("account:{number}"),
                    serde_json::json!({ "user_id": req.user_id }))).await?;
            }
            let row = tx.query_one(&format!("{ACCOUNT_SELECT} WHERE a.id = $1"), &[&account_id]).await.map_err(db_error)?;
            let account = Account::try_from(&row)?;
            tx.commit().await.map_err(db_error)?;
            Ok(account)
        })
        .await
}

pub async fn list_accounts(client: &Client, branch_id: Uuid, query: AccountQuery) -> ApiResult<AccountPage> {
    let limit = page::limit(query.limit)?;
    check_search(&query.query)?;
    let status = query.status.map(AccountStatus::as_str);
    let after = page::cursor(&page::ACCOUNT_NUMBER, &query.cursor)?;
    let pattern = query.query.as_deref().map(like_pattern);
    let fetch = limit + 1;
    let sql = format!(
        "{ACCOUNT_SELECT}
          WHERE a.branch_id = $1 AND a.kind NOT IN ('vault', 'settlement', 'fx')
            AND ($2::text IS NULL OR a.status = $2)
            AND ($3::text IS NULL OR a.number ILIKE $3 OR EXISTS (
                 SELECT 1 FROM account_owners o JOIN users u ON u.id = o.user_id
                  WHERE o.account_id = a.id AND (u.full_name ILIKE $3 OR u.username ILIKE $3)))
            AND ($4::text IS NULL OR a.number > $4)
          ORDER BY a.number LIMIT $5"
    );
    let rows = client.query(&sql, &[&branch_id, &status, &pattern, &after, &fetch]).await.map_err(db_error)?;
    let more = rows.len() as i64 > limit;
    let items: Vec<Account> = rows.iter().take(limit as usize).map(Account::try_from).collect::<ApiResult<_>>()?;
    let next_cursor = more
        .then(|| items.last().map(|a| a.number.clone()))
        .flatten();
    Ok(AccountPage { items, next_cursor })
}

pub async fn list_transactions(client: &Client, branch_id: Uuid, query: TransactionQuery) -> ApiResult<TransferPage> {
    let limit = page::limit(query.limit)?;
    let (cursor_at, cursor_id) = page::decode_time_id(&query.cursor)?.unzip();
    if let Some(account_id) = query.account_id {
        let in_branch = client
            .query_opt("SELECT 1 FROM accounts WHERE id = $1 AND branch_id = $2", &[&account_id, &branch_id])
            .await
            .map_err(db_error)?;
        if in_branch.is_none() {
            return Err(ApiError::not_found());
        }
    }
    let fetch = limit + 1;
    let params: [&(dyn ToSql + Sync); 7] = [&branch_id, &query.account_id, &query.from, &query.to, &cursor_at, &cursor_id, &fetch];
    let rows = client
        .query(
            "SELECT t.id, t.kind, t.from_account_id, f.number AS from_number, t.to_account_id, d.number AS to_number,
                    t.amount, t.currency, t.memo, t.created_by, t.created_at
               FROM transfers t
               JOIN accounts f ON f.id = t.from_account_id
               JOIN accounts d ON d.id = t.to_account_id
              WHERE (f.branch_id = $1 OR d.branch_id = $1)
                AND ($2::uuid IS NULL OR t.from_account_id = $2 OR t.to_account_id = $2)
                AND ($3::timestamptz IS NULL OR t.created_at >= $3)
                AND ($4::timestamptz IS NULL OR t.created_at < $4)
                AND ($5::timestamptz IS NULL OR (t.created_at, t.id) < ($5, $6::uuid))
              ORDER BY t.created_at DESC, t.id DESC LIMIT $7",
            &params,
        )
        .await
        .map_err(db_error)?;
    let more = rows.len() as i64 > limit;
    let items: Vec<BranchTransfer> = rows
        .iter()
        .take(limit as usize)
        .map(|r| BranchTransfer {
            id: r.get("id"),
            kind: r.get("kind"),
            from_account_id: r.get("from_account_id"),
            from_account_number: r.get("from_number"),
            to_account_id: r.get("to_account_id"),
            to_account_number: r.get("to_number"),
            amount: r.get("amount"),
            currency: r.get("currency"),
            memo: r.get("memo"),
            created_by: r.get("created_by"),
            created_at: r.get("created_at"),
        })
        .collect();
    let next_cursor = more.then(|| items.last().map(|t| page::encode_time_id(t.created_at, t.id))).flatten();
    Ok(TransferPage { items, next_cursor })
}

/// Forgets a customer's authenticator: the next login enrolls a new one.
/// Recovery codes, pending logins and every session of the user end now.
pub async fn reset_mfa(state: &AppState, admin: &Caller, branch_id: Uuid, meta: &RequestMeta, user_id: Uuid) -> ApiResult<()> {
    let client_addr = meta.client_ip.to_string();
    let result = state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let username: String = tx
                .query_opt(
                    "UPDATE users SET totp_secret_enc = NULL, totp_enrolled_at = NULL
                      WHERE id = $1 AND branch_id = $2 AND role = 'customer' RETURNING username",
                    &[&user_id, &branch_id],
                )
                .await
                .map_err(db_error)?
                .ok_or_else(ApiError::not_found)?
                .get(0);
            tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await.map_err(db_error)?;
            tx.execute("UPDATE mfa_challenges SET used_at = now() WHERE user_id = $1 AND used_at IS NULL", &[&user_id])
                .await
                .map_err(db_error)?;
            let revoked = tx
                .execute("UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", &[&user_id])
                .await
                .map_err(db_error)?;
            record_tx(&tx, &AuditEntry::success_by(admin, meta, &client_addr, "admin.mfa_reset", format!("user:{username}"),
                serde_json::json!({ "sessions_revoked": revoked }))).await?;
            tx.commit().await.map_err(db_error)
        })
        .await;
    // After the commit (a request racing it would otherwise re-cache the old session).
    state.sessions.evict_user(user_id);
    result
}

/// The audit trail of one branch (`Some(branch)`) or of the whole bank (`None`, DBAs).
pub async fn audit_trail(client: &Client, branch_id: Option<Uuid>, query: AuditQuery) -> ApiResult<AuditPage> {
    let limit = page::limit(query.limit)?;
    if let Some(action) = &query.action {
        check("action", &ACTION, action, "of a-z, 0-9, '.', '_'")?;
    }
    let before_id = page::decode_row_id(&query.cursor)?;
    let fetch = limit + 1;
    let params: [&(dyn ToSql + Sync); 7] = [&branch_id, &query.actor, &query.action, &query.from, &query.to, &before_id, &fetch];
    let rows = client
        .query(
            "SELECT id, at, actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details
               FROM audit_log
              WHERE ($1::uuid IS NULL OR branch_id = $1)
                AND ($2::uuid IS NULL OR actor_id = $2)
                AND ($3::text IS NULL OR action = $3)
                AND ($4::timestamptz IS NULL OR at >= $4)
                AND ($5::timestamptz IS NULL OR at < $5)
                AND ($6::int8 IS NULL OR id < $6)
              ORDER BY id DESC LIMIT $7",
            &params,
        )
        .await
        .map_err(db_error)?;
    let more = rows.len() as i64 > limit;
    let items: Vec<AuditRow> = rows.iter().take(limit as usize).map(AuditRow::from).collect();
    let next_cursor = more.then(|| items.last().map(|r| r.id.to_string())).flatten();
    Ok(AuditPage { items, next_cursor })
}
