use axum::{extract::State, http::StatusCode, Json};

use super::{customer::cash, Served};
use crate::{
    access::{BranchAdmin, Dba},
    accounts::Account,
    admin::{
        self, AccountPage, AccountQuery, AuditPage, AuditQuery, Customer, CustomerPage, CustomerQuery, NewAccount,
        NewCustomer, NewOwner, StatusChange, TransactionQuery, TransferPage,
    },
    error::{ApiResult, Problem},
    money::{CashRequest, Kind, Moved, Scope, Transfer},
    request::{ApiJson, ApiQuery, IdPath, IdempotencyKey, RequestMeta},
    state::AppState,
};

#[utoipa::path(post, path = "/v1/admin/customers", tag = "admin", security(("bearer" = ["branch_admin"])), request_body = NewCustomer,
    responses((status = 201, body = Customer), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn create_customer(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, body: ApiJson<NewCustomer>) -> ApiResult<(StatusCode, Json<Customer>)> {
    let customer = admin::create_customer(&state, &admin.0, admin.branch_id(), &meta, body.value).await?;
    state.db.remember_write_now(&admin.0.session_hash).await;
    Ok((StatusCode::CREATED, Json(customer)))
}

#[utoipa::path(get, path = "/v1/admin/customers", tag = "admin", security(("bearer" = ["branch_admin"])), params(CustomerQuery),
    responses((status = 200, body = CustomerPage), (status = 403, body = Problem)))]
pub async fn list_customers(State(state): State<AppState>, admin: BranchAdmin, ApiQuery(query): ApiQuery<CustomerQuery>) -> ApiResult<Served<CustomerPage>> {
    let (client, served_by) = state.db.reader_for(&admin.0.session_hash).await?;
    Ok(Served(served_by, admin::list_customers(&client, admin.branch_id(), query).await?))
}

#[utoipa::path(post, path = "/v1/admin/accounts", tag = "admin", security(("bearer" = ["branch_admin"])), request_body = NewAccount,
    responses((status = 201, body = Account), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn open_account(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, body: ApiJson<NewAccount>) -> ApiResult<(StatusCode, Json<Account>)> {
    let account = admin::open_account(&state, &admin.0, admin.branch_id(), &meta, body.value).await?;
    state.db.remember_write_now(&admin.0.session_hash).await;
    Ok((StatusCode::CREATED, Json(account)))
}

#[utoipa::path(get, path = "/v1/admin/accounts", tag = "admin", security(("bearer" = ["branch_admin"])), params(AccountQuery),
    responses((status = 200, body = AccountPage), (status = 403, body = Problem)))]
pub async fn list_accounts(State(state): State<AppState>, admin: BranchAdmin, ApiQuery(query): ApiQuery<AccountQuery>) -> ApiResult<Served<AccountPage>> {
    let (client, served_by) = state.db.reader_for(&admin.0.session_hash).await?;
    Ok(Served(served_by, admin::list_accounts(&client, admin.branch_id(), query).await?))
}

async fn change(state: AppState, admin: BranchAdmin, meta: RequestMeta, id: uuid::Uuid, change: StatusChange) -> ApiResult<Json<Account>> {
    let account = admin::change_status(&state, &admin.0, admin.branch_id(), &meta, id, change).await?;
    state.db.remember_write_now(&admin.0.session_hash).await;
    Ok(Json(account))
}

/// Adds an owner (a customer of the branch) to an open account; adding one already there changes nothing.
#[utoipa::path(post, path = "/v1/admin/accounts/{id}/owners", tag = "admin", security(("bearer" = ["branch_admin"])),
    params(("id" = uuid::Uuid, Path)), request_body = NewOwner,
    responses((status = 200, body = Account), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn add_owner(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, IdPath(id): IdPath, body: ApiJson<NewOwner>) -> ApiResult<Json<Account>> {
    let account = admin::add_owner(&state, &admin.0, admin.branch_id(), &meta, id, body.value).await?;
    state.db.remember_write_now(&admin.0.session_hash).await;
    Ok(Json(account))
}

#[utoipa::path(post, path = "/v1/admin/accounts/{id}/freeze", tag = "admin", security(("bearer" = ["branch_admin"])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Account), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn freeze(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<Json<Account>> {
    change(state, admin, meta, id, StatusChange::Freeze).await
}

#[utoipa::path(post, path = "/v1/admin/accounts/{id}/unfreeze", tag = "admin", security(("bearer" = ["branch_admin"])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Account), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn unfreeze(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<Json<Account>> {
    change(state, admin, meta, id, StatusChange::Unfreeze).await
}

#[utoipa::path(post, path = "/v1/admin/accounts/{id}/close", tag = "admin", security(("bearer" = ["branch_admin"])), params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Account), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn close(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<Json<Account>> {
    change(state, admin, meta, id, StatusChange::Close).await
}

/// Teller deposit: cash in at the counter, for any customer account of the branch.
#[utoipa::path(post, path = "/v1/admin/deposits", tag = "admin", security(("bearer" = ["branch_admin"])), request_body = CashRequest,
    params(("Idempotency-Key" = String, Header)), responses((status = 201, body = Transfer), (status = 404, body = Problem)))]
pub async fn deposit(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, IdempotencyKey(key): IdempotencyKey, body: ApiJson<CashRequest>) -> ApiResult<Moved> {
    cash(&state, &admin.0, Scope::Branch(admin.branch_id()), &meta, &key, "/v1/admin/deposits", Kind::Deposit, body).await
}

/// Teller withdrawal.
#[utoipa::path(post, path = "/v1/admin/withdrawals", tag = "admin", security(("bearer" = ["branch_admin"])), request_body = CashRequest,
    params(("Idempotency-Key" = String, Header)), responses((status = 201, body = Transfer), (status = 404, body = Problem)))]
pub async fn withdraw(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, IdempotencyKey(key): IdempotencyKey, body: ApiJson<CashRequest>) -> ApiResult<Moved> {
    cash(&state, &admin.0, Scope::Branch(admin.branch_id()), &meta, &key, "/v1/admin/withdrawals", Kind::Withdrawal, body).await
}

#[utoipa::path(get, path = "/v1/admin/transactions", tag = "admin", security(("bearer" = ["branch_admin"])), params(TransactionQuery),
    responses((status = 200, body = TransferPage), (status = 404, body = Problem)))]
pub async fn transactions(State(state): State<AppState>, admin: BranchAdmin, ApiQuery(query): ApiQuery<TransactionQuery>) -> ApiResult<Served<TransferPage>> {
    let (client, served_by) = state.db.reader_for(&admin.0.session_hash).await?;
    Ok(Served(served_by, admin::list_transactions(&client, admin.branch_id(), query).await?))
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", security(("bearer" = ["branch_admin"])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem)))]
pub async fn audit(State(state): State<AppState>, admin: BranchAdmin, ApiQuery(query): ApiQuery<AuditQuery>) -> ApiResult<Served<AuditPage>> {
    let (client, served_by) = state.db.reader_for(&admin.0.session_hash).await?;
    Ok(Served(served_by, admin::audit_trail(&client, Some(admin.branch_id()), query).await?))
}

/// Forget a customer's authenticator; their sessions end and the next login enrolls anew.
#[utoipa::path(post, path = "/v1/admin/users/{id}/reset-mfa", tag = "admin", security(("bearer" = ["branch_admin"])), params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn reset_mfa(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    admin::reset_mfa(&state, &admin.0, admin.branch_id(), &meta, id).await?;
    state.db.remember_write_now(&admin.0.session_hash).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Every branch's audit trail.
#[utoipa::path(get, path = "/v1/dba/audit", tag = "dba", security(("bearer" = ["dba"])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem)))]
pub async fn dba_audit(State(state): State<AppState>, dba: Dba, ApiQuery(query): ApiQuery<AuditQuery>) -> ApiResult<Served<AuditPage>> {
    let (client, served_by) = state.db.reader_for(&dba.0.session_hash).await?;
    Ok(Served(served_by, admin::audit_trail(&client, None, query).await?))
}
