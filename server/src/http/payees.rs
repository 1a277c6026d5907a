//! Saved payees and confirmation of payee (the contract's "Everyday banking"); thin over `payees`.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

use crate::{
    access::Customer,
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
