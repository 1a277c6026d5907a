//! Inter-bank payments and keys for customers, the bank's position for its
//! admins (the contract's "Inter-bank payments"); thin over `interbank`.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use flexibank_consortium::{keys::DirectoryEntry, protocol::Position};

use crate::{
    access::{BranchAdmin, Customer},
    error::{ApiError, ApiResult, Code, Problem},
    interbank::{
        keys::{self, DirectoryQuery, Key, KeyList, NewKey, VerifyKey},
        payments::{self, InterbankPayment, PageQuery, PayAnswer, PayRequest, PaymentOrReview, PaymentPage},
        switch_link,
    },
    money,
    request::{ApiJson, ApiQuery, IdPath, IdempotencyKey, RequestMeta},
    state::AppState,
};

const PAYMENTS_ROUTE: &str = "/v1/interbank/payments";

/// Pays the account a key names at another bank of the consortium: 201 once
/// committed at both banks, 202 `pending` when not decided within
/// `interbank.timeout_ms` (the outcome is still decided; GET it), 202 `held_for_review` (a Review:
/// the bank's rules hold it for a reviewer; nothing was sent), or the refusal.
#[utoipa::path(post, path = "/v1/interbank/payments", tag = "interbank", security(("bearer" = ["customer"])),
    request_body = PayRequest, params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = InterbankPayment), (status = 202, body = PaymentOrReview), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 503, body = Problem)))]
pub async fn pay(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdempotencyKey(key): IdempotencyKey, body: ApiJson<PayRequest>) -> ApiResult<Response> {
    let hash = money::request_hash(PAYMENTS_ROUTE, &body.canonical);
    Ok(match payments::pay(&state, &caller, &meta, &key, &hash, body.value).await? {
        PayAnswer::Committed(payment) => (StatusCode::CREATED, Json(payment)).into_response(),
        PayAnswer::Pending(payment) => (StatusCode::ACCEPTED, Json(payment)).into_response(),
        // 202 with the review (and `idempotent-replayed` on a repeat), as a held transfer is answered.
        PayAnswer::Held(review) => review.into_response(),
    })
}

#[utoipa::path(get, path = "/v1/interbank/payments/{id}", tag = "interbank", security(("bearer" = ["customer"])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = InterbankPayment), (status = 404, body = Problem)))]
pub async fn payment(State(state): State<AppState>, Customer(caller): Customer, IdPath(id): IdPath) -> ApiResult<Json<InterbankPayment>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(payments::get(&client, &caller, id).await?))
}

#[utoipa::path(get, path = "/v1/interbank/payments", tag = "interbank", security(("bearer" = ["customer"])),
    params(PageQuery), responses((status = 200, body = PaymentPage)))]
pub async fn payments(State(state): State<AppState>, Customer(caller): Customer, ApiQuery(query): ApiQuery<PageQuery>) -> ApiResult<Json<PaymentPage>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(payments::list(&client, Some(caller.user_id), &query).await?))
}

/// Registers a key for one of the caller's accounts: 201 active (national id,
/// random), or 202 `pending_verification` with a one-time code sent to the phone or address.
#[utoipa::path(post, path = "/v1/keys", tag = "interbank", security(("bearer" = ["customer"])), request_body = NewKey,
    responses((status = 201, body = Key), (status = 202, body = Key), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn register_key(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, body: ApiJson<NewKey>) -> ApiResult<Response> {
    let (active, key) = keys::register(&state, &caller, &meta, body.value).await?;
    let status = if active { StatusCode::CREATED } else { StatusCode::ACCEPTED };
    Ok((status, Json(key)).into_response())
}

#[utoipa::path(post, path = "/v1/keys/{id}/verify", tag = "interbank", security(("bearer" = ["customer"])), request_body = VerifyKey,
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = Key), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn verify_key(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdPath(id): IdPath, body: ApiJson<VerifyKey>) -> ApiResult<Json<Key>> {
    Ok(Json(keys::verify(&state, &caller, &meta, id, body.value).await?))
}

#[utoipa::path(get, path = "/v1/keys", tag = "interbank", security(("bearer" = ["customer"])), responses((status = 200, body = KeyList)))]
pub async fn list_keys(State(state): State<AppState>, Customer(caller): Customer) -> ApiResult<Json<KeyList>> {
    Ok(Json(keys::list(&state, &caller).await?))
}

#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "interbank", security(("bearer" = ["customer"])),
    params(("id" = uuid::Uuid, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_key(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    keys::delete(&state, &caller, &meta, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whom a key pays, masked, before paying it. Limited per customer.
#[utoipa::path(get, path = "/v1/directory", tag = "interbank", security(("bearer" = ["customer"])), params(DirectoryQuery),
    responses((status = 200, body = DirectoryEntry), (status = 404, body = Problem)))]
pub async fn directory(State(state): State<AppState>, Customer(caller): Customer, ApiQuery(query): ApiQuery<DirectoryQuery>) -> ApiResult<Json<DirectoryEntry>> {
    Ok(Json(keys::lookup(&state, &caller, query).await?))
}

/// This bank's position at the switch (its liquidity for inter-bank payments).
#[utoipa::path(get, path = "/v1/admin/interbank/position", tag = "admin", security(("bearer" = ["branch_admin"])),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn position(State(state): State<AppState>, _admin: BranchAdmin) -> ApiResult<Json<Position>> {
    let interbank = state.interbank.as_ref().ok_or_else(|| ApiError::new(Code::NotFound, "this bank is not a member of a consortium"))?;
    Ok(Json(interbank.link.position().await.map_err(switch_link::api_error)?))
}

/// Every inter-bank payment of this bank, both directions, newest first.
#[utoipa::path(get, path = "/v1/admin/interbank/payments", tag = "admin", security(("bearer" = ["branch_admin"])),
    params(PageQuery), responses((status = 200, body = PaymentPage)))]
pub async fn admin_payments(State(state): State<AppState>, _admin: BranchAdmin, ApiQuery(query): ApiQuery<PageQuery>) -> ApiResult<Json<PaymentPage>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(payments::list(&client, None, &query).await?))
}
