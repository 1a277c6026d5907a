//! The commands the web view may call (docs/desktop-commands.md). Each is
//! thin: check the input, call the server, pass its JSON through.

use std::{path::PathBuf, sync::Arc};

use serde::Deserialize;
use serde_json::{json, Value};
use tauri::State;
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use crate::{
    api::{ApiClient, CmdResult, CommandError},
    banks::Banks,
    batch,
    everyday::{check_month, current_month, new_order_body, order_change_body, pdf_file_name, rates_body, save_new_file, NewOrder, OrderChange, RateInput},
    money::{check_amount, check_limit, check_memo},
    payees::{check_account_number, new_payee_body, NewPayee},
    queue::{send_transfer, OfflineQueue, QueueItem, TransferRequest},
    reviews::{check_decision, check_status},
};

pub struct Desktop {
    /// The configured banks and the one chosen at login.
    pub banks: Arc<Banks>,
    pub queue: Arc<Mutex<OfflineQueue>>,
    /// The username whose session the API client holds.
    pub user: Arc<std::sync::Mutex<Option<String>>>,
    pub wake: Arc<Notify>,
    pub data_dir: PathBuf,
    pub export_dir: PathBuf,
}

impl Desktop {
    /// The chosen bank's client.
    fn api(&self) -> CmdResult<Arc<ApiClient>> {
        self.banks.current().map_err(CommandError::unreachable)
    }

    fn username(&self) -> CmdResult<String> {
        self.user
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| CommandError {
                kind: crate::api::ErrorKind::Problem,
                status: 401,
                code: "unauthenticated".into(),
                detail: "log in first".into(),
                retry_after_s: None,
            })
    }
}

fn invalid(detail: String) -> CommandError {
    CommandError::invalid(detail)
}

fn amount_and_memo(amount: &str, currency: Option<&str>, memo: &str) -> CmdResult<()> {
    check_amount(amount, currency).map_err(invalid)?;
    check_memo(memo).map_err(invalid)
}

fn idempotency_key() -> String {
    Uuid::now_v7().to_string()
}

// ---- session ----

#[tauri::command]
pub fn app_info(state: State<'_, Desktop>) -> Value {
    let mut info = state.banks.info();
    let error = match state.banks.config() {
        Err(e) => Some(e.clone()),
        Ok(_) => state.banks.current().err(),
    };
    info["config_error"] = json!(error);
    info["data_dir"] = json!(state.data_dir.display().to_string());
    info["version"] = json!(env!("CARGO_PKG_VERSION"));
    info
}

#[derive(Deserialize)]
pub struct LoginReq {
    username: String,
    password: String,
    /// The bank picked on the login screen (several banks configured).
    #[serde(default)]
    bank_id: Option<String>,
}

#[tauri::command]
pub async fn login(state: State<'_, Desktop>, req: LoginReq) -> CmdResult<Value> {
    if req.username.trim().is_empty() || req.password.is_empty() {
        return Err(invalid("enter your username and password".into()));
    }
    *state.user.lock().unwrap() = None;
    if let Some(bank_id) = req.bank_id.as_deref().filter(|b| !b.is_empty()) {
        state.banks.select(bank_id).map_err(invalid)?;
    }
    state.api()?.login(req.username.trim(), &req.password).await
}

#[derive(Deserialize)]
pub struct MfaReq {
    code: Option<String>,
    recovery_code: Option<String>,
}

#[tauri::command]
pub async fn verify_mfa(state: State<'_, Desktop>, req: MfaReq) -> CmdResult<Value> {
    let code = req.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if let Some(code) = code {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("the code has 6 digits".into()));
        }
    }
    let recovery = req
        .recovery_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let answer = state.api()?.verify_mfa(code, recovery).await?;
    let username = answer
        .pointer("/user/username")
        .and_then(Value::as_str)
        .map(|u| state.banks.queue_user(u));
    *state.user.lock().unwrap() = username;
    state.wake.notify_one();
    Ok(answer)
}

#[tauri::command]
pub async fn current_user(state: State<'_, Desktop>) -> CmdResult<Value> {
    let api = state.api()?;
    if !api.has_session() {
        return Ok(Value::Null);
    }
    match api.get("/v1/auth/session", &[]).await {
        Ok(user) => Ok(user),
        Err(e) if e.is_unauthenticated() => {
            *state.user.lock().unwrap() = None;
            Ok(Value::Null)
        }
        Err(e) => Err(e),
    }
}

#[tauri::command]
pub async fn logout(state: State<'_, Desktop>) -> CmdResult<Value> {
    *state.user.lock().unwrap() = None;
    state.api()?.logout().await?;
    Ok(Value::Null)
}

// ---- customer ----

#[tauri::command]
pub async fn me(state: State<'_, Desktop>) -> CmdResult<Value> {
    state.api()?.get("/v1/me", &[]).await
}

#[derive(Deserialize)]
pub struct AccountReq {
    account_id: Uuid,
}

#[tauri::command]
pub async fn account(state: State<'_, Desktop>, req: AccountReq) -> CmdResult<Value> {
    state
        .api()?
        .get(&format!("/v1/accounts/{}", req.account_id), &[])
        .await
}

#[derive(Deserialize)]
pub struct TransactionsReq {
    account_id: Uuid,
    limit: Option<u32>,
    cursor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    kind: Option<String>,
}

#[tauri::command]
pub async fn transactions(state: State<'_, Desktop>, req: TransactionsReq) -> CmdResult<Value> {
    let query = [
        ("limit", req.limit.map(|l| l.to_string())),
        ("cursor", req.cursor),
        ("from", req.from),
        ("to", req.to),
        ("kind", req.kind),
    ];
    state
        .api()?
        .get(
            &format!("/v1/accounts/{}/transactions", req.account_id),
            &query,
        )
        .await
}

#[derive(Deserialize)]
pub struct ExportReq {
    account_id: Uuid,
    from: Option<String>,
    to: Option<String>,
    kind: Option<String>,
}

/// Every matching entry, page by page, into one CSV file.
#[tauri::command]
pub async fn export_transactions(state: State<'_, Desktop>, req: ExportReq) -> CmdResult<Value> {
    let filters = crate::export::Filters { from: req.from, to: req.to, kind: req.kind };
    let export = crate::export::transactions_csv(&*state.api()?, req.account_id, &filters).await?;
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let path = state.export_dir.join(format!("flexibank-{}-{stamp}.csv", export.account_number));
    std::fs::create_dir_all(&state.export_dir)
        .and_then(|_| std::fs::write(&path, &export.csv))
        .map_err(|e| invalid(format!("saving {}: {e}", path.display())))?;
    Ok(json!({"path": path.display().to_string(), "rows": export.rows}))
}

#[derive(Deserialize)]
pub struct CashReq {
    account_id: Uuid,
    amount: String,
    #[serde(default)]
    memo: String,
}

impl CashReq {
    fn body(&self) -> Value {
        json!({"account_id": self.account_id, "amount": self.amount, "memo": self.memo})
    }
}

#[tauri::command]
pub async fn deposit(state: State<'_, Desktop>, req: CashReq) -> CmdResult<Value> {
    amount_and_memo(&req.amount, None, &req.memo)?;
    state
        .api()?
        .post("/v1/deposits", &req.body(), Some(&idempotency_key()))
        .await
}

#[tauri::command]
pub async fn withdraw(state: State<'_, Desktop>, req: CashReq) -> CmdResult<Value> {
    amount_and_memo(&req.amount, None, &req.memo)?;
    state
        .api()?
        .post("/v1/withdrawals", &req.body(), Some(&idempotency_key()))
        .await
}

#[tauri::command]
pub async fn transfer(state: State<'_, Desktop>, req: TransferRequest) -> CmdResult<Value> {
    amount_and_memo(&req.amount, Some(&req.currency), &req.memo)?;
    let to = req.to_account_number.trim();
    if to.is_empty() || to.len() > 34 {
        return Err(invalid("enter the account number to pay".into()));
    }
    let request = TransferRequest {
        to_account_number: to.to_string(),
        ..req
    };
    let username = state.username()?;
    let key = idempotency_key();
    let enqueue = |error: Option<String>| async {
        let mut queue = state.queue.lock().await;
        let mut item = queue
            .enqueue(&username, &key, request.clone(), chrono::Utc::now())
            .map_err(invalid)?;
        drop(queue);
        item.last_error = error;
        state.wake.notify_one();
        Ok::<Value, CommandError>(json!({"outcome": "queued", "item": item}))
    };
    // Behind earlier queued transfers, never ahead of them.
    if state.queue.lock().await.pending_for(&username) > 0 {
        return enqueue(None).await;
    }
    // The queue's worker sends the same way: moved, or held for review (202).
    match send_transfer(&*state.api()?, &request, &key).await {
        Ok(accepted) => Ok(accepted.answer()),
        // Same key: if this send did land, the queued one replays it.
        Err(e) if e.is_transient() => enqueue(Some(e.detail)).await,
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct PreviewReq {
    csv: String,
    accounts: Vec<batch::OwnAccount>,
}

#[tauri::command]
pub fn preview_batch(req: PreviewReq) -> CmdResult<batch::Preview> {
    batch::preview(&req.csv, &req.accounts).map_err(invalid)
}

#[derive(Deserialize)]
pub struct BatchItem {
    from_account_id: Uuid,
    to_account_number: String,
    amount: String,
    #[serde(default)]
    memo: String,
}

#[derive(Deserialize)]
pub struct BatchReq {
    items: Vec<BatchItem>,
}

#[tauri::command]
pub async fn submit_batch(state: State<'_, Desktop>, req: BatchReq) -> CmdResult<Value> {
    if req.items.is_empty() || req.items.len() > batch::MAX_ROWS {
        return Err(invalid(format!(
            "a batch holds 1 to {} transfers",
            batch::MAX_ROWS
        )));
    }
    let mut items = Vec::with_capacity(req.items.len());
    for (index, item) in req.items.iter().enumerate() {
        amount_and_memo(&item.amount, None, &item.memo)
            .map_err(|e| invalid(format!("item {index}: {}", e.detail)))?;
        items.push(json!({"from_account_id": item.from_account_id, "to_account_number": item.to_account_number, "amount": item.amount, "memo": item.memo}));
    }
    state
        .api()?
        .post(
            "/v1/transfers/batch",
            &json!({"items": items}),
            Some(&idempotency_key()),
        )
        .await
}

// ---- offline queue ----

#[tauri::command]
pub async fn queue_list(state: State<'_, Desktop>) -> CmdResult<Vec<QueueItem>> {
    let username = state.user.lock().unwrap().clone();
    let queue = state.queue.lock().await;
    Ok(queue
        .items()
        .iter()
        .filter(|i| Some(&i.username) == username.as_ref())
        .cloned()
        .collect())
}

#[derive(Deserialize)]
pub struct QueueIdReq {
    id: Uuid,
}

#[tauri::command]
pub async fn queue_cancel(state: State<'_, Desktop>, req: QueueIdReq) -> CmdResult<QueueItem> {
    let username = state.username()?;
    let mut queue = state.queue.lock().await;
    if !queue
        .items()
        .iter()
        .any(|i| i.id == req.id && i.username == username)
    {
        return Err(invalid("no such queued transfer".into()));
    }
    queue.cancel(req.id).map_err(invalid)
}

#[tauri::command]
pub async fn queue_clear_finished(state: State<'_, Desktop>) -> CmdResult<Vec<QueueItem>> {
    let mut queue = state.queue.lock().await;
    queue.clear_finished().map_err(invalid)?;
    drop(queue);
    queue_list(state).await
}

// ---- branch admin ----

#[derive(Deserialize)]
pub struct PageReq {
    query: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[tauri::command]
pub async fn admin_customers(state: State<'_, Desktop>, req: PageReq) -> CmdResult<Value> {
    let query = [
        ("query", req.query),
        ("cursor", req.cursor),
        ("limit", req.limit.map(|l| l.to_string())),
    ];
    state.api()?.get("/v1/admin/customers", &query).await
}

#[tauri::command]
pub async fn admin_accounts(state: State<'_, Desktop>, req: PageReq) -> CmdResult<Value> {
    let query = [
        ("query", req.query),
        ("status", req.status),
        ("cursor", req.cursor),
        ("limit", req.limit.map(|l| l.to_string())),
    ];
    state.api()?.get("/v1/admin/accounts", &query).await
}

#[derive(Deserialize)]
pub struct NewCustomerReq {
    username: String,
    full_name: String,
    national_id: String,
    phone: String,
    email: String,
    password: String,
}

#[tauri::command]
pub async fn admin_create_customer(
    state: State<'_, Desktop>,
    req: NewCustomerReq,
) -> CmdResult<Value> {
    if req.password.chars().count() < 12 {
        return Err(invalid("the password needs at least 12 characters".into()));
    }
    let body = json!({
        "username": req.username.trim(), "full_name": req.full_name.trim(), "national_id": req.national_id.trim(),
        "phone": req.phone.trim(), "email": req.email.trim(), "password": req.password,
    });
    state.api()?.post("/v1/admin/customers", &body, None).await
}

#[derive(Deserialize)]
pub struct OpenAccountReq {
    owner_ids: Vec<Uuid>,
    kind: String,
    currency: String,
}

#[tauri::command]
pub async fn admin_open_account(
    state: State<'_, Desktop>,
    req: OpenAccountReq,
) -> CmdResult<Value> {
    if req.owner_ids.is_empty() {
        return Err(invalid("choose at least one owner".into()));
    }
    let body = json!({"owner_ids": req.owner_ids, "kind": req.kind, "currency": req.currency});
    state.api()?.post("/v1/admin/accounts", &body, None).await
}

#[derive(Deserialize)]
pub struct AccountActionReq {
    account_id: Uuid,
    action: String,
}

#[tauri::command]
pub async fn admin_account_action(
    state: State<'_, Desktop>,
    req: AccountActionReq,
) -> CmdResult<Value> {
    if !["freeze", "unfreeze", "close"].contains(&req.action.as_str()) {
        return Err(invalid(format!("unknown action {:?}", req.action)));
    }
    state
        .api()?
        .post(
            &format!("/v1/admin/accounts/{}/{}", req.account_id, req.action),
            &Value::Null,
            None,
        )
        .await
}

#[derive(Deserialize)]
pub struct TellerReq {
    kind: String,
    #[serde(flatten)]
    cash: CashReq,
}

#[tauri::command]
pub async fn admin_teller(state: State<'_, Desktop>, req: TellerReq) -> CmdResult<Value> {
    let path = match req.kind.as_str() {
        "deposit" => "/v1/admin/deposits",
        "withdrawal" => "/v1/admin/withdrawals",
        other => return Err(invalid(format!("unknown teller operation {other:?}"))),
    };
    amount_and_memo(&req.cash.amount, None, &req.cash.memo)?;
    state
        .api()?
        .post(path, &req.cash.body(), Some(&idempotency_key()))
        .await
}

#[derive(Deserialize)]
pub struct AdminTransactionsReq {
    account_id: Option<Uuid>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

#[tauri::command]
pub async fn admin_transactions(
    state: State<'_, Desktop>,
    req: AdminTransactionsReq,
) -> CmdResult<Value> {
    let query = [
        ("account_id", req.account_id.map(|a| a.to_string())),
        ("from", req.from),
        ("to", req.to),
        ("cursor", req.cursor),
    ];
    state.api()?.get("/v1/admin/transactions", &query).await
}

#[derive(Deserialize)]
pub struct AuditReq {
    actor: Option<Uuid>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

impl AuditReq {
    fn query(self) -> [(&'static str, Option<String>); 5] {
        [
            ("actor", self.actor.map(|a| a.to_string())),
            ("action", self.action),
            ("from", self.from),
            ("to", self.to),
            ("cursor", self.cursor),
        ]
    }
}

#[tauri::command]
pub async fn admin_audit(state: State<'_, Desktop>, req: AuditReq) -> CmdResult<Value> {
    state.api()?.get("/v1/admin/audit", &req.query()).await
}

#[derive(Deserialize)]
pub struct UserReq {
    user_id: Uuid,
}

#[tauri::command]
pub async fn admin_reset_mfa(state: State<'_, Desktop>, req: UserReq) -> CmdResult<Value> {
    state
        .api()?
        .post(
            &format!("/v1/admin/users/{}/reset-mfa", req.user_id),
            &Value::Null,
            None,
        )
        .await
}

// ---- DBA ----

#[tauri::command]
pub async fn dba_cluster(state: State<'_, Desktop>) -> CmdResult<Value> {
    state.api()?.get("/v1/dba/cluster", &[]).await
}

#[derive(Deserialize)]
pub struct PromoteReq {
    node: String,
    /// Promote a node the quorum rule cannot prove up to date.
    #[serde(default)]
    force: bool,
}

#[tauri::command]
pub async fn dba_promote(state: State<'_, Desktop>, req: PromoteReq) -> CmdResult<Value> {
    state
        .api()?
        .post("/v1/dba/promote", &json!({"node": req.node, "force": req.force}), None)
        .await
}

#[tauri::command]
pub async fn dba_audit(state: State<'_, Desktop>, req: AuditReq) -> CmdResult<Value> {
    state.api()?.get("/v1/dba/audit", &req.query()).await
}

// ---- notifications ----

#[derive(Deserialize)]
pub struct NotificationsReq {
    cursor: Option<String>,
    unread_only: Option<bool>,
    limit: Option<u32>,
}

#[tauri::command]
pub async fn notifications(state: State<'_, Desktop>, req: NotificationsReq) -> CmdResult<Value> {
    let query = [("cursor", req.cursor), ("unread_only", req.unread_only.map(|u| u.to_string())), ("limit", req.limit.map(|l| l.to_string()))];
    state.api()?.get("/v1/notifications", &query).await
}

#[derive(Deserialize)]
pub struct MarkReadReq {
    #[serde(default)]
    ids: Vec<Uuid>,
    #[serde(default)]
    all: bool,
}

#[tauri::command]
pub async fn notifications_mark_read(state: State<'_, Desktop>, req: MarkReadReq) -> CmdResult<Value> {
    let body = if req.all { json!({"all": true}) } else { json!({"ids": req.ids}) };
    state.api()?.post("/v1/notifications/read", &body, None).await
}

#[tauri::command]
pub async fn notification_settings(state: State<'_, Desktop>) -> CmdResult<Value> {
    state.api()?.get("/v1/me/notification-settings", &[]).await
}

/// The server checks everything again; thresholds are checked here first so
/// a typo never leaves the app.
#[tauri::command]
pub async fn save_notification_settings(state: State<'_, Desktop>, req: Value) -> CmdResult<Value> {
    for alert in req["low_balance_alerts"].as_array().into_iter().flatten() {
        let threshold = alert["threshold"].as_str().ok_or_else(|| invalid("threshold must be an amount such as \"1000.00\"".into()))?;
        check_amount(threshold, None).map_err(|e| invalid(format!("low-balance threshold: {e}")))?;
    }
    state.api()?.put("/v1/me/notification-settings", &req).await
}

// ---- inter-bank: keys, look-ups, payments ----

const KEY_TYPES: [&str; 4] = ["phone", "email", "national_id", "random"];

fn key_type(kind: &str) -> CmdResult<&str> {
    KEY_TYPES
        .iter()
        .copied()
        .find(|k| *k == kind)
        .ok_or_else(|| invalid(format!("unknown key type {kind:?}")))
}

/// A key's value as typed, trimmed; random keys are looked up and paid by
/// their value too, so only registration leaves it out.
fn key_value(value: &str) -> CmdResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid("enter the key".into()));
    }
    if value.chars().count() > 254 {
        return Err(invalid("the key is too long".into()));
    }
    Ok(value.to_string())
}

#[derive(Deserialize)]
pub struct LookupReq {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

/// Whom a key pays: bank and masked holder, before any money moves.
#[tauri::command]
pub async fn directory_lookup(state: State<'_, Desktop>, req: LookupReq) -> CmdResult<Value> {
    let kind = key_type(&req.kind)?.to_string();
    let value = key_value(&req.value)?;
    state
        .api()?
        .get("/v1/directory", &[("type", Some(kind)), ("value", Some(value))])
        .await
}

#[derive(Deserialize)]
pub struct PayReq {
    from_account_id: Uuid,
    key_type: String,
    key_value: String,
    amount: String,
    #[serde(default)]
    memo: String,
    /// Made by the web view once per confirmed attempt and sent again on a
    /// retry of that attempt, so a retry never pays twice.
    idempotency_key: Uuid,
}

/// The Payment as the server answered: `committed`, or `pending` (202) to be
/// polled with `interbank_payment`; refusals are errors.
#[tauri::command]
pub async fn interbank_pay(state: State<'_, Desktop>, req: PayReq) -> CmdResult<Value> {
    amount_and_memo(&req.amount, None, &req.memo)?;
    let body = json!({
        "from_account_id": req.from_account_id,
        "key": {"type": key_type(&req.key_type)?, "value": key_value(&req.key_value)?},
        "amount": req.amount.trim(),
        "memo": req.memo,
    });
    state
        .api()?
        .post("/v1/interbank/payments", &body, Some(&req.idempotency_key.to_string()))
        .await
}

#[derive(Deserialize)]
pub struct IdReq {
    id: Uuid,
}

#[tauri::command]
pub async fn interbank_payment(state: State<'_, Desktop>, req: IdReq) -> CmdResult<Value> {
    state
        .api()?
        .get(&format!("/v1/interbank/payments/{}", req.id), &[])
        .await
}

#[derive(Deserialize)]
pub struct CursorReq {
    cursor: Option<String>,
    limit: Option<u32>,
}

impl CursorReq {
    fn query(self) -> [(&'static str, Option<String>); 2] {
        [("cursor", self.cursor), ("limit", self.limit.map(|l| l.to_string()))]
    }
}

#[tauri::command]
pub async fn interbank_payments(state: State<'_, Desktop>, req: CursorReq) -> CmdResult<Value> {
    state.api()?.get("/v1/interbank/payments", &req.query()).await
}

#[tauri::command]
pub async fn keys_list(state: State<'_, Desktop>) -> CmdResult<Value> {
    state.api()?.get("/v1/keys", &[]).await
}

#[derive(Deserialize)]
pub struct KeyReq {
    account_id: Uuid,
    #[serde(rename = "type")]
    kind: String,
    value: Option<String>,
}

/// A new key: active (201), or `pending_verification` (202) for phone and
/// e-mail until `key_verify` gets the code sent there.
#[tauri::command]
pub async fn key_register(state: State<'_, Desktop>, req: KeyReq) -> CmdResult<Value> {
    let kind = key_type(&req.kind)?;
    let mut body = json!({"account_id": req.account_id, "type": kind});
    if kind != "random" {
        body["value"] = json!(key_value(req.value.as_deref().unwrap_or(""))?);
    }
    state.api()?.post("/v1/keys", &body, None).await
}

#[derive(Deserialize)]
pub struct VerifyKeyReq {
    id: Uuid,
    code: String,
}

#[tauri::command]
pub async fn key_verify(state: State<'_, Desktop>, req: VerifyKeyReq) -> CmdResult<Value> {
    let code = req.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the code has 6 digits".into()));
    }
    state
        .api()?
        .post(&format!("/v1/keys/{}/verify", req.id), &json!({"code": code}), None)
        .await
}

#[tauri::command]
pub async fn key_delete(state: State<'_, Desktop>, req: IdReq) -> CmdResult<Value> {
    state.api()?.delete(&format!("/v1/keys/{}", req.id)).await
}

// ---- payees and confirmation of payee ----

#[derive(Deserialize)]
pub struct AccountLookupReq {
    number: String,
}

/// Whom an account number of this bank pays: the holder's masked name and
/// the masked number, shown before a transfer is sent. Look-ups are limited
/// per customer and audited by the server; offline they fail `unreachable`.
#[tauri::command]
pub async fn account_lookup(state: State<'_, Desktop>, req: AccountLookupReq) -> CmdResult<Value> {
    let number = check_account_number(&req.number).map_err(invalid)?;
    state
        .api()?
        .get("/v1/accounts/lookup", &[("number", Some(number))])
        .await
}

#[tauri::command]
pub async fn payees_list(state: State<'_, Desktop>) -> CmdResult<Value> {
    state.api()?.get("/v1/payees", &[]).await
}

/// Saves a payee by account number or by key; the payee already saved under
/// that number or key comes back as it is.
#[tauri::command]
pub async fn payee_add(state: State<'_, Desktop>, req: NewPayee) -> CmdResult<Value> {
    let body = new_payee_body(&req).map_err(invalid)?;
    state.api()?.post("/v1/payees", &body, None).await
}

#[tauri::command]
pub async fn payee_delete(state: State<'_, Desktop>, req: IdReq) -> CmdResult<Value> {
    state.api()?.delete(&format!("/v1/payees/{}", req.id)).await
}

// ---- daily limits (customer: own accounts; branch admin: the branch's) ----

#[derive(Deserialize)]
pub struct LimitsReq {
    account_id: Uuid,
}

/// The account's daily limit, what was used today, the bank's default and a
/// raise still waiting.
#[tauri::command]
pub async fn limits_get(state: State<'_, Desktop>, req: LimitsReq) -> CmdResult<Value> {
    state
        .api()?
        .get(&format!("/v1/accounts/{}/limits", req.account_id), &[])
        .await
}

#[derive(Deserialize)]
pub struct SetLimitReq {
    account_id: Uuid,
    daily_transfer_limit: String,
}

/// A new daily limit: the limits after the change. A customer's raise comes
/// back with `pending_raise` set (it counts 24 h later); everything else
/// counts at once. Above the bank's default a customer gets `forbidden`.
#[tauri::command]
pub async fn limits_set(state: State<'_, Desktop>, req: SetLimitReq) -> CmdResult<Value> {
    let limit = check_limit(&req.daily_transfer_limit).map_err(invalid)?;
    state
        .api()?
        .put(
            &format!("/v1/accounts/{}/limits", req.account_id),
            &json!({"daily_transfer_limit": limit}),
        )
        .await
}

#[derive(Deserialize)]
pub struct AddOwnerReq {
    account_id: Uuid,
    user_id: Uuid,
}

/// One more owner (a customer of the branch) of an open account: the Account.
#[tauri::command]
pub async fn admin_add_owner(state: State<'_, Desktop>, req: AddOwnerReq) -> CmdResult<Value> {
    state
        .api()?
        .post(
            &format!("/v1/admin/accounts/{}/owners", req.account_id),
            &json!({"user_id": req.user_id}),
            None,
        )
        .await
}

#[tauri::command]
pub async fn admin_interbank_position(state: State<'_, Desktop>) -> CmdResult<Value> {
    state.api()?.get("/v1/admin/interbank/position", &[]).await
}

#[tauri::command]
pub async fn admin_interbank_payments(state: State<'_, Desktop>, req: CursorReq) -> CmdResult<Value> {
    state.api()?.get("/v1/admin/interbank/payments", &req.query()).await
}

// ---- standing orders (customer; issue 18) ----

#[tauri::command]
pub async fn standing_orders_list(state: State<'_, Desktop>) -> CmdResult<Value> {
    state.api()?.get("/v1/standing-orders", &[]).await
}

/// Sets up a standing order (after the web view showed whom it pays): the
/// StandingOrder with its `next_run_at`. It pays an account number of this
/// bank or a key at another bank of the consortium (`to_key`: INR only; the
/// server says `not_found`, `same_bank` or `currency_mismatch`). A retry of
/// the same creation sends the same `idempotency_key`, so it never sets up two.
#[tauri::command]
pub async fn standing_order_create(state: State<'_, Desktop>, req: NewOrder) -> CmdResult<Value> {
    let body = new_order_body(&req).map_err(invalid)?;
    state
        .api()?
        .post("/v1/standing-orders", &body, Some(&req.idempotency_key.to_string()))
        .await
}

#[derive(Deserialize)]
pub struct PauseReq {
    id: Uuid,
    paused: bool,
}

/// Pauses or resumes an order: the StandingOrder after it (a resumed order
/// skips the dates that passed while it was paused). `order_ended` once
/// cancelled or ended.
#[tauri::command]
pub async fn standing_order_pause(state: State<'_, Desktop>, req: PauseReq) -> CmdResult<Value> {
    state
        .api()?
        .patch(&format!("/v1/standing-orders/{}", req.id), &json!({"paused": req.paused}))
        .await
}

/// Changes an order's amount, memo or schedule (only what is given): the
/// StandingOrder after it, with its next date recomputed for a new schedule.
/// `order_ended` once cancelled or ended.
#[tauri::command]
pub async fn standing_order_update(state: State<'_, Desktop>, req: OrderChange) -> CmdResult<Value> {
    let body = order_change_body(&req).map_err(invalid)?;
    state
        .api()?
        .patch(&format!("/v1/standing-orders/{}", req.id), &body)
        .await
}

/// Cancels an order for good: no date runs after this.
#[tauri::command]
pub async fn standing_order_cancel(state: State<'_, Desktop>, req: IdReq) -> CmdResult<Value> {
    state.api()?.delete(&format!("/v1/standing-orders/{}", req.id)).await
}

/// An order's runs, newest first: the transfer each made, or why it did not.
#[tauri::command]
pub async fn standing_order_runs(state: State<'_, Desktop>, req: IdReq) -> CmdResult<Value> {
    state
        .api()?
        .get(&format!("/v1/standing-orders/{}/runs", req.id), &[])
        .await
}

// ---- review of unusual movements (customer; branch admin decides) ----

/// The customer's reviews, newest first: held transfers and how the others ended.
#[tauri::command]
pub async fn reviews_list(state: State<'_, Desktop>) -> CmdResult<Value> {
    state.api()?.get("/v1/reviews", &[]).await
}

/// The customer withdraws a held transfer: the Review, `cancelled`; the hold
/// is released and nothing moves. `review_decided` once decided.
#[tauri::command]
pub async fn review_cancel(state: State<'_, Desktop>, req: IdReq) -> CmdResult<Value> {
    state
        .api()?
        .post(&format!("/v1/reviews/{}/cancel", req.id), &Value::Null, None)
        .await
}

#[derive(Deserialize)]
pub struct AdminReviewsReq {
    #[serde(default)]
    status: Option<String>,
}

/// The branch's reviews by status (pending when none is given), newest first.
#[tauri::command]
pub async fn admin_reviews(state: State<'_, Desktop>, req: AdminReviewsReq) -> CmdResult<Value> {
    let status = check_status(req.status.as_deref()).map_err(invalid)?;
    state.api()?.get("/v1/admin/reviews", &[("status", status)]).await
}

#[derive(Deserialize)]
pub struct DecideReq {
    id: Uuid,
    decision: String,
}

/// Approves (the transfer happens now, once) or rejects (the hold is
/// released) a pending review: the Review after it. `forbidden` when this
/// admin had a hand in it (maker-checker: the detail says how),
/// `review_decided` once decided.
#[tauri::command]
pub async fn admin_review_decide(state: State<'_, Desktop>, req: DecideReq) -> CmdResult<Value> {
    let action = check_decision(&req.decision).map_err(invalid)?;
    state
        .api()?
        .post(&format!("/v1/admin/reviews/{}/{action}", req.id), &Value::Null, None)
        .await
}

// ---- exchange between currencies (customer; branch admin sets rates) ----

#[tauri::command]
pub async fn fx_rates(state: State<'_, Desktop>) -> CmdResult<Value> {
    state.api()?.get("/v1/fx/rates", &[]).await
}

#[derive(Deserialize)]
pub struct QuoteReq {
    from_account_id: Uuid,
    to_account_number: String,
    amount: String,
}

/// A quote: the rate and what `amount` buys in the other account's
/// currency, good until `expires_at`. `currency_mismatch` when both
/// accounts share a currency, `not_found` when the bank has no such rate.
#[tauri::command]
pub async fn fx_quote(state: State<'_, Desktop>, req: QuoteReq) -> CmdResult<Value> {
    let to = check_account_number(&req.to_account_number).map_err(invalid)?;
    let amount = req.amount.trim();
    check_amount(amount, None).map_err(invalid)?;
    let body = json!({"from_account_id": req.from_account_id, "to_account_number": to, "amount": amount});
    state.api()?.post("/v1/fx/quotes", &body, None).await
}

#[derive(Deserialize)]
pub struct ExchangeReq {
    quote_id: Uuid,
    from_account_id: Uuid,
    to_account_number: String,
    /// The quote's `from_amount`.
    amount: String,
    #[serde(default)]
    memo: String,
    /// One per quote the customer confirmed, sent again on a retry of it.
    idempotency_key: Uuid,
}

/// Spends a quote: the Transfer (`kind: "fx"`, with `to_amount`,
/// `to_currency`, `rate`). Never queued offline (a quote lasts a minute);
/// `quote_expired` or `quote_used` ask for a new quote.
#[tauri::command]
pub async fn fx_exchange(state: State<'_, Desktop>, req: ExchangeReq) -> CmdResult<Value> {
    let to = check_account_number(&req.to_account_number).map_err(invalid)?;
    let amount = req.amount.trim();
    amount_and_memo(amount, None, &req.memo)?;
    let body = json!({
        "from_account_id": req.from_account_id, "to_account_number": to, "amount": amount,
        "memo": req.memo, "quote_id": req.quote_id,
    });
    state
        .api()?
        .post("/v1/transfers", &body, Some(&req.idempotency_key.to_string()))
        .await
}

#[derive(Deserialize)]
pub struct SetRatesReq {
    rates: Vec<RateInput>,
}

/// Sets exchange rates (branch admin; the pairs given, the others stay): every rate after it.
#[tauri::command]
pub async fn admin_fx_rates_set(state: State<'_, Desktop>, req: SetRatesReq) -> CmdResult<Value> {
    let body = rates_body(&req.rates).map_err(invalid)?;
    state.api()?.put("/v1/admin/fx/rates", &body).await
}

// ---- monthly statements ----

#[derive(Deserialize)]
pub struct StatementReq {
    account_id: Uuid,
    /// "yyyy-mm", counted in UTC: from the account's opening month to now.
    month: String,
}

/// Downloads the month's statement (a PDF) into the Downloads folder as a
/// new file (never over another): `{path, file_name, bytes, month}`.
#[tauri::command]
pub async fn statement_download(state: State<'_, Desktop>, req: StatementReq) -> CmdResult<Value> {
    let month = check_month(&req.month).map_err(invalid)?;
    if month > current_month() {
        return Err(invalid(format!("{month} has not begun: it has no statement yet")));
    }
    let pdf = state
        .api()?
        .download(&format!("/v1/accounts/{}/statements/{month}", req.account_id), "application/pdf")
        .await?;
    if !pdf.bytes.starts_with(b"%PDF-") {
        return Err(CommandError {
            kind: crate::api::ErrorKind::Problem,
            status: 200,
            code: "bad_response".into(),
            detail: "the statement the server sent is not a PDF".into(),
            retry_after_s: None,
        });
    }
    let fallback = format!("statement-{}-{month}.pdf", req.account_id);
    let name = pdf_file_name(pdf.content_disposition.as_deref(), &fallback);
    let path = save_new_file(&state.export_dir, &name, &pdf.bytes)
        .map_err(|e| invalid(format!("saving {} in {}: {e}", name, state.export_dir.display())))?;
    Ok(json!({
        "path": path.display().to_string(),
        "file_name": path.file_name().map(|n| n.to_string_lossy().to_string()),
        "bytes": pdf.bytes.len(),
        "month": month,
    }))
}
