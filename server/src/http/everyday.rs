//! The contract's "Everyday banking": saved payees and confirmation of payee
//! (thin over `payees`), daily limits (over `daily_limits`).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

use crate::{
    access::{AccountActor, Customer},
    daily_limits::{self, Limits, SetLimit},
    error::{ApiResult, Problem},
    payees::{self, Holder, LookupQuery, NewPayee, Payee, PayeeList},
    request::{ApiJson, ApiQuery, IdPath, RequestMeta},
    state::AppState,
};

/// Whose account a number is, masked, before anything is sent to it. Limited
/// per customer (`security.lookups_per_window`) and audited.
#[utoipa::path(get, path = "/v1/accounts/lookup", tag = "customer", security(("bearer" = ["customer"])), params(LookupQuery),
    responses((status = 200, body = Holder), (status = 404, body = Problem), (status = 429, body = Problem)))]
pub async fn lookup(
    State(state): State<AppState>,
    Customer(caller): Customer,
    meta: RequestMeta,
    ApiQuery(query): ApiQuery<LookupQuery>,
) -> ApiResult<Json<Holder>> {
    Ok(Json(payees::lookup(&state, &caller, &meta, &query.number).await?))
}

/// Saves a payee: 201, or 200 with the payee already saved for that account or key.
#[utoipa::path(post, path = "/v1/payees", tag = "customer", security(("bearer" = ["customer"])), request_body = NewPayee,
    responses((status = 201, body = Payee), (status = 200, body = Payee), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 429, body = Problem)))]
pub async fn add(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, body: ApiJson<NewPayee>) -> ApiResult<Response> {
    let (created, payee) = payees::add(&state, &caller, &meta, body.value).await?;
    state.db.remember_write_now(&caller.session_hash).await;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(payee)).into_response())
}

#[utoipa::path(get, path = "/v1/payees", tag = "customer", security(("bearer" = ["customer"])), responses((status = 200, body = PayeeList)))]
pub async fn list(State(state): State<AppState>, Customer(caller): Customer) -> ApiResult<super::Served<PayeeList>> {
    let (client, served_by) = state.db.reader_for(&caller.session_hash).await?;
    Ok(super::Served(served_by, payees::list(&**client, &caller).await?))
}

#[utoipa::path(delete, path = "/v1/payees/{id}", tag = "customer", security(("bearer" = ["customer"])),
    params(("id" = uuid::Uuid, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    payees::delete(&state, &caller, &meta, id).await?;
    state.db.remember_write_now(&caller.session_hash).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's daily outgoing limit and what was sent today (its holders' time zone).
#[utoipa::path(get, path = "/v1/accounts/{id}/limits", tag = "customer", security(("bearer" = ["customer", "branch_admin"])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = Limits), (status = 404, body = Problem)))]
pub async fn get_limits(State(state): State<AppState>, actor: AccountActor, IdPath(id): IdPath) -> ApiResult<super::Served<Limits>> {
    let (client, served_by) = state.db.reader_for(&actor.caller().session_hash).await?;
    Ok(super::Served(served_by, daily_limits::get(&client, &actor, id).await?))
}

/// A customer lowers the limit at once (200) or raises it up to the bank's default after 24 h
/// (202, `pending_raise`); a branch admin sets it at once. A raise notifies every owner.
#[utoipa::path(put, path = "/v1/accounts/{id}/limits", tag = "customer", security(("bearer" = ["customer", "branch_admin"])),
    params(("id" = uuid::Uuid, Path)), request_body = SetLimit,
    responses((status = 200, body = Limits), (status = 202, body = Limits), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn put_limits(State(state): State<AppState>, actor: AccountActor, meta: RequestMeta, IdPath(id): IdPath, body: ApiJson<SetLimit>) -> ApiResult<Response> {
    let (waits, limits) = daily_limits::set(&state, &actor, &meta, id, body.value).await?;
    state.db.remember_write_now(&actor.caller().session_hash).await;
    let status = if waits { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(limits)).into_response())
}
