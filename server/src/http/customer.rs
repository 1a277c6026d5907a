use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Served;
use crate::{
    access::Customer,
    accounts::{self, Account, EntryPage, HistoryQuery},
    auth::session::UserView,
    error::{ApiResult, Problem},
    money::{self, BatchRequest, BatchResponse, CashRequest, Kind, Moved, Movement, Scope, Transfer, TransferRequest},
    request::{ApiJson, ApiQuery, IdPath, IdempotencyKey, RequestMeta},
    state::AppState,
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub user: UserView,
    pub accounts: Vec<Account>,
}

#[utoipa::path(get, path = "/v1/me", tag = "customer", security(("bearer" = ["customer"])),
    responses((status = 200, body = Me), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn me(State(state): State<AppState>, Customer(caller): Customer) -> ApiResult<Served<Me>> {
    let (client, served_by) = state.db.reader_for(&caller.session_hash).await?;
    let accounts = accounts::accounts_of_user(&client, caller.user_id).await?;
    Ok(Served(served_by, Me { user: UserView::from(&caller), accounts }))
}

#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "customer", security(("bearer" = ["customer"])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Account), (status = 404, body = Problem)))]
pub async fn account(State(state): State<AppState>, Customer(caller): Customer, IdPath(id): IdPath) -> ApiResult<Served<Account>> {
    let (client, served_by) = state.db.reader_for(&caller.session_hash).await?;
    Ok(Served(served_by, accounts::get_account(&client, Scope::Owner(caller.user_id), id).await?))
}

#[utoipa::path(get, path = "/v1/accounts/{id}/transactions", tag = "customer", security(("bearer" = ["customer"])),
    params(("id" = uuid::Uuid, Path), HistoryQuery),
    responses((status = 200, body = EntryPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn transactions(
    State(state): State<AppState>,
    Customer(caller): Customer,
    IdPath(id): IdPath,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Served<EntryPage>> {
    let (client, served_by) = state.db.reader_for(&caller.session_hash).await?;
    Ok(Served(served_by, accounts::history(&client, Scope::Owner(caller.user_id), id, query).await?))
}

#[utoipa::path(post, path = "/v1/deposits", tag = "customer", security(("bearer" = ["customer"])),
    request_body = CashRequest, params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = Transfer), (status = 400, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem), (status = 428, body = Problem)))]
pub async fn deposit(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdempotencyKey(key): IdempotencyKey, body: ApiJson<CashRequest>) -> ApiResult<Moved> {
    cash(&state, &caller, Scope::Owner(caller.user_id), &meta, &key, "/v1/deposits", Kind::Deposit, body).await
}

#[utoipa::path(post, path = "/v1/withdrawals", tag = "customer", security(("bearer" = ["customer"])),
    request_body = CashRequest, params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = Transfer), (status = 400, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem), (status = 428, body = Problem)))]
pub async fn withdraw(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdempotencyKey(key): IdempotencyKey, body: ApiJson<CashRequest>) -> ApiResult<Moved> {
    cash(&state, &caller, Scope::Owner(caller.user_id), &meta, &key, "/v1/withdrawals", Kind::Withdrawal, body).await
}

/// Deposits and withdrawals, for customers and tellers alike.
#[allow(clippy::too_many_arguments)]
pub(super) async fn cash(
    state: &AppState,
    caller: &crate::access::Caller,
    scope: Scope,
    meta: &RequestMeta,
    key: &str,
    route: &str,
    kind: Kind,
    body: ApiJson<CashRequest>,
) -> ApiResult<Moved> {
    let hash = money::request_hash(route, &body.canonical);
    let movement = Movement {
        kind,
        account_id: body.value.account_id,
        to_account_number: None,
        amount: body.value.amount,
        memo: &body.value.memo,
    };
    money::move_money(state, caller, scope, meta, key, &hash, movement).await
}

#[utoipa::path(post, path = "/v1/transfers", tag = "customer", security(("bearer" = ["customer"])),
    request_body = TransferRequest, params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = Transfer), (status = 202, body = crate::review::Review), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem), (status = 428, body = Problem)))]
pub async fn transfer(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdempotencyKey(key): IdempotencyKey, body: ApiJson<TransferRequest>) -> ApiResult<Moved> {
    let hash = money::request_hash("/v1/transfers", &body.canonical);
    if let Some(quote_id) = body.value.quote_id {
        let request = &body.value;
        let moved = crate::fx::transfer(&state, &caller, &meta, &key, &hash, quote_id, request.from_account_id, &request.to_account_number, request.amount, &request.memo).await?;
        state.db.remember_write_now(&caller.session_hash).await;
        return Ok(moved);
    }
    // The bank's rules may hold it for a reviewer (202): nothing moves yet.
    let to = crate::review::Target::Account(&body.value.to_account_number);
    if let Some(reason) = crate::review::screen(&state, &caller, body.value.from_account_id, to, body.value.amount.0).await? {
        let request = &body.value;
        let held = crate::review::hold(&state, &caller, &meta, &key, &hash, request.from_account_id, to, request.amount, &request.memo, reason).await?;
        state.db.remember_write_now(&caller.session_hash).await;
        return Ok(held);
    }
    let movement = Movement {
        kind: Kind::Transfer,
        account_id: body.value.from_account_id,
        to_account_number: Some(&body.value.to_account_number),
        amount: body.value.amount,
        memo: &body.value.memo,
    };
    money::move_money(&state, &caller, Scope::Owner(caller.user_id), &meta, &key, &hash, movement).await
}

#[utoipa::path(post, path = "/v1/transfers/batch", tag = "customer", security(("bearer" = ["customer"])),
    request_body = BatchRequest, params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = BatchResponse), (status = 400, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem), (status = 428, body = Problem)))]
pub async fn batch(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdempotencyKey(key): IdempotencyKey, body: ApiJson<BatchRequest>) -> ApiResult<Moved> {
    let hash = money::request_hash("/v1/transfers/batch", &body.canonical);
    let items = money::parse_batch(body.value.items)?;
    // All or nothing, answered at once: a transfer a reviewer must see cannot ride in a batch (review.rs).
    crate::review::refuse_flagged_batch(&state, &caller, &key, &hash, &items).await?;
    money::move_money_batch(&state, &caller, &meta, &key, &hash, &items).await
}

