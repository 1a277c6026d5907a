//! The contract's "Everyday banking": saved payees and confirmation of payee
//! (thin over `payees`), daily limits (over `daily_limits`).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

use crate::{
    access::{AccountActor, BranchAdmin, Caller, Customer},
    daily_limits::{self, Limits, SetLimit},
    fx::{self, NewQuote, Quote, RateList, SetRates},
    approvals::{self, Decision},
    review::{self, Review, ReviewList, ReviewQuery},
    money::{self, Moved},
    standing_orders::{self, NewStandingOrder, OrderChange, RunList, StandingOrder, StandingOrderList},
    error::{ApiResult, Problem},
    payees::{self, Holder, LookupQuery, NewPayee, Payee, PayeeList},
    request::{ApiJson, ApiQuery, IdPath, IdempotencyKey, RequestMeta},
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

const STANDING_ORDERS_ROUTE: &str = "/v1/standing-orders";

/// Sets up a standing order: 201, or the first answer again for a repeated Idempotency-Key.
#[utoipa::path(post, path = "/v1/standing-orders", tag = "customer", security(("bearer" = ["customer"])),
    request_body = NewStandingOrder, params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = StandingOrder), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn create_order(
    State(state): State<AppState>,
    Customer(caller): Customer,
    meta: RequestMeta,
    IdempotencyKey(key): IdempotencyKey,
    body: ApiJson<NewStandingOrder>,
) -> ApiResult<Moved> {
    let hash = money::request_hash(STANDING_ORDERS_ROUTE, &body.canonical);
    let created = standing_orders::create(&state, &caller, &meta, &key, &hash, body.value).await?;
    state.db.remember_write_now(&caller.session_hash).await;
    Ok(created)
}

#[utoipa::path(get, path = "/v1/standing-orders", tag = "customer", security(("bearer" = ["customer"])),
    responses((status = 200, body = StandingOrderList)))]
pub async fn list_orders(State(state): State<AppState>, Customer(caller): Customer) -> ApiResult<super::Served<StandingOrderList>> {
    let (client, served_by) = state.db.reader_for(&caller.session_hash).await?;
    Ok(super::Served(served_by, standing_orders::list(&client, &caller).await?))
}

/// Changes the amount, memo, schedule or end, or pauses (`"paused":true`) or resumes it.
#[utoipa::path(patch, path = "/v1/standing-orders/{id}", tag = "customer", security(("bearer" = ["customer"])),
    params(("id" = uuid::Uuid, Path)), request_body = OrderChange,
    responses((status = 200, body = StandingOrder), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn change_order(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdPath(id): IdPath, body: ApiJson<OrderChange>) -> ApiResult<Json<StandingOrder>> {
    let order = standing_orders::change(&state, &caller, &meta, id, Some(body.value)).await?;
    state.db.remember_write_now(&caller.session_hash).await;
    Ok(Json(order))
}

/// Cancels it: no date runs after this (a retry waiting for funds is skipped).
#[utoipa::path(delete, path = "/v1/standing-orders/{id}", tag = "customer", security(("bearer" = ["customer"])),
    params(("id" = uuid::Uuid, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn cancel_order(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    standing_orders::change(&state, &caller, &meta, id, None).await?;
    state.db.remember_write_now(&caller.session_hash).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Its runs, newest first (at most 200): the transfer each made, or why it did not.
#[utoipa::path(get, path = "/v1/standing-orders/{id}/runs", tag = "customer", security(("bearer" = ["customer"])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = RunList), (status = 404, body = Problem)))]
pub async fn order_runs(State(state): State<AppState>, Customer(caller): Customer, IdPath(id): IdPath) -> ApiResult<super::Served<RunList>> {
    let (client, served_by) = state.db.reader_for(&caller.session_hash).await?;
    Ok(super::Served(served_by, standing_orders::runs(&client, &caller, id).await?))
}

/// The bank's exchange rates.
#[utoipa::path(get, path = "/v1/fx/rates", tag = "customer", security(("bearer" = [])), responses((status = 200, body = RateList)))]
pub async fn fx_rates(State(state): State<AppState>, caller: Caller) -> ApiResult<super::Served<RateList>> {
    let (client, served_by) = state.db.reader_for(&caller.session_hash).await?;
    Ok(super::Served(served_by, fx::rates(&**client).await?))
}

/// Sets exchange rates (each given pair; the others stay), audited.
#[utoipa::path(put, path = "/v1/admin/fx/rates", tag = "admin", security(("bearer" = ["branch_admin"])), request_body = SetRates,
    responses((status = 200, body = RateList)))]
pub async fn set_fx_rates(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, body: ApiJson<SetRates>) -> ApiResult<Json<RateList>> {
    let rates = fx::set_rates(&state, &admin.0, &meta, body.value).await?;
    state.db.remember_write_now(&admin.0.session_hash).await;
    Ok(Json(rates))
}

/// A quote for a transfer between currencies: the rate and the target amount (half-even to the
/// cent), good until `expires_at`; spend it with `POST /v1/transfers` and its `quote_id`.
#[utoipa::path(post, path = "/v1/fx/quotes", tag = "customer", security(("bearer" = ["customer"])), request_body = NewQuote,
    responses((status = 201, body = Quote), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn fx_quote(State(state): State<AppState>, Customer(caller): Customer, body: ApiJson<NewQuote>) -> ApiResult<(StatusCode, Json<Quote>)> {
    let quote = fx::quote(&state, &caller, body.value).await?;
    state.db.remember_write_now(&caller.session_hash).await;
    Ok((StatusCode::CREATED, Json(quote)))
}

/// The caller's own reviews (held, and how each ended), newest first.
#[utoipa::path(get, path = "/v1/reviews", tag = "customer", security(("bearer" = ["customer"])), responses((status = 200, body = ReviewList)))]
pub async fn own_reviews(State(state): State<AppState>, Customer(caller): Customer) -> ApiResult<Json<ReviewList>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(review::list_own(&client, &caller).await?))
}

/// The customer withdraws a held transfer: the hold is released, nothing moves.
#[utoipa::path(post, path = "/v1/reviews/{id}/cancel", tag = "customer", security(("bearer" = ["customer"])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = Review), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel_review(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<Json<Review>> {
    let review = approvals::decide(&state, &caller, None, &meta, id, Decision::Cancel).await?;
    state.db.remember_write_now(&caller.session_hash).await;
    Ok(Json(review))
}

/// The branch's reviews by status (pending by default), newest first.
#[utoipa::path(get, path = "/v1/admin/reviews", tag = "admin", security(("bearer" = ["branch_admin"])), params(ReviewQuery),
    responses((status = 200, body = ReviewList)))]
pub async fn branch_reviews(State(state): State<AppState>, admin: BranchAdmin, ApiQuery(query): ApiQuery<ReviewQuery>) -> ApiResult<Json<ReviewList>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(review::list_branch(&client, admin.branch_id(), &query).await?))
}

/// Approves a held transfer: it happens now, once. Not by an admin who created the customer,
/// opened the account, changed its limit in the last 24 h or added the payee (403).
#[utoipa::path(post, path = "/v1/admin/reviews/{id}/approve", tag = "admin", security(("bearer" = ["branch_admin"])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = Review), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn approve_review(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<Json<Review>> {
    let review = approvals::decide(&state, &admin.0, Some(admin.branch_id()), &meta, id, Decision::Approve).await?;
    state.db.remember_write_now(&admin.0.session_hash).await;
    Ok(Json(review))
}

/// Rejects a held transfer: the hold is released, nothing moves.
#[utoipa::path(post, path = "/v1/admin/reviews/{id}/reject", tag = "admin", security(("bearer" = ["branch_admin"])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = Review), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn reject_review(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, IdPath(id): IdPath) -> ApiResult<Json<Review>> {
    let review = approvals::decide(&state, &admin.0, Some(admin.branch_id()), &meta, id, Decision::Reject).await?;
    state.db.remember_write_now(&admin.0.session_hash).await;
    Ok(Json(review))
}
