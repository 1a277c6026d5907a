//! The HTTP surface: routes, middleware, and the thin handlers that turn
//! requests into calls of the domain modules.

mod admin;
mod auth;
mod customer;
mod dba;
mod interbank;
mod limits;
mod notifications;
mod openapi;
mod ops;
mod everyday;
mod extract;
mod statements;
mod switch_facing;

use std::time::{Duration, Instant};

use axum::{
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Serialize;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    db::ServedBy,
    error::{ApiError, Code},
    money::Moved,
    state::AppState,
};

pub use limits::ConnectionGate;
pub use switch_facing::router as switch_facing_router;
pub use openapi::{document as openapi_document, ApiDoc};

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let max_body_bytes = state.config.server.max_body_bytes;
    let shedder = std::sync::Arc::new(limits::Shedder::new(&state.config.server.limits));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/mfa", post(auth::mfa))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/session", get(auth::session))
        .route("/v1/me", get(customer::me))
        .route("/v1/accounts/lookup", get(everyday::lookup))
        .route("/v1/accounts/{id}", get(customer::account))
        .route("/v1/accounts/{id}/transactions", get(customer::transactions))
        .route("/v1/accounts/{id}/limits", get(everyday::get_limits).put(everyday::put_limits))
        .route("/v1/accounts/{id}/statements/{month}", get(statements::statement))
        .route("/v1/deposits", post(customer::deposit))
        .route("/v1/withdrawals", post(customer::withdraw))
        .route("/v1/transfers", post(customer::transfer))
        .route("/v1/transfers/batch", post(customer::batch))
        .route("/v1/payees", post(everyday::add).get(everyday::list))
        .route("/v1/payees/{id}", axum::routing::delete(everyday::delete))
        .route("/v1/reviews", get(everyday::own_reviews))
        .route("/v1/reviews/{id}/cancel", post(everyday::cancel_review))
        .route("/v1/admin/reviews", get(everyday::branch_reviews))
        .route("/v1/admin/reviews/{id}/approve", post(everyday::approve_review))
        .route("/v1/admin/reviews/{id}/reject", post(everyday::reject_review))
        .route("/v1/fx/rates", get(everyday::fx_rates))
        .route("/v1/fx/quotes", post(everyday::fx_quote))
        .route("/v1/admin/fx/rates", axum::routing::put(everyday::set_fx_rates))
        .route("/v1/standing-orders", post(everyday::create_order).get(everyday::list_orders))
        .route("/v1/standing-orders/{id}", axum::routing::patch(everyday::change_order).delete(everyday::cancel_order))
        .route("/v1/standing-orders/{id}/runs", get(everyday::order_runs))
        .route("/v1/admin/customers", post(admin::create_customer).get(admin::list_customers))
        .route("/v1/admin/accounts", post(admin::open_account).get(admin::list_accounts))
        .route("/v1/admin/accounts/{id}/owners", post(admin::add_owner))
        .route("/v1/admin/accounts/{id}/freeze", post(admin::freeze))
        .route("/v1/admin/accounts/{id}/unfreeze", post(admin::unfreeze))
        .route("/v1/admin/accounts/{id}/close", post(admin::close))
        .route("/v1/admin/deposits", post(admin::deposit))
        .route("/v1/admin/withdrawals", post(admin::withdraw))
        .route("/v1/admin/transactions", get(admin::transactions))
        .route("/v1/admin/audit", get(admin::audit))
        .route("/v1/admin/users/{id}/reset-mfa", post(admin::reset_mfa))
        .route("/v1/dba/audit", get(admin::dba_audit))
        .route("/v1/dba/cluster", get(dba::cluster))
        .route("/v1/notifications", get(notifications::list))
        .route("/v1/notifications/read", post(notifications::mark_read))
        .route("/v1/me/webhooks", post(notifications::register_webhook).get(notifications::list_webhooks))
        .route("/v1/me/webhooks/{id}", axum::routing::delete(notifications::delete_webhook))
        .route("/v1/me/notification-settings", get(notifications::get_settings).put(notifications::put_settings))
        .route("/v1/admin/notifications/dead", get(notifications::dead))
        .route("/v1/admin/notifications/redrive", post(notifications::redrive))
        .route("/v1/dba/promote", post(dba::promote))
        .route("/v1/keys", post(interbank::register_key).get(interbank::list_keys))
        .route("/v1/keys/{id}", axum::routing::delete(interbank::delete_key))
        .route("/v1/keys/{id}/verify", post(interbank::verify_key))
        .route("/v1/directory", get(interbank::directory))
        .route("/v1/interbank/payments", post(interbank::pay).get(interbank::payments))
        .route("/v1/interbank/payments/{id}", get(interbank::payment))
        .route("/v1/admin/interbank/position", get(interbank::position))
        .route("/v1/admin/interbank/payments", get(interbank::admin_payments))
        .fallback(|| async { ApiError::new(Code::NotFound, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(Code::MethodNotAllowed, "this endpoint does not take that method")
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(max_body_bytes, limits::buffer_body))
        .layer(middleware::from_fn_with_state(state.clone(), request_timeout))
        // Outside the timeout: a shed request is answered at once.
        .layer(middleware::from_fn_with_state(shedder, limits::shed))
        .layer(middleware::from_fn(record_metrics))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// No request runs past `server.request_timeout_ms`. A money movement cut off
/// here may still commit: the client retries with the same Idempotency-Key.
async fn request_timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = Duration::from_millis(state.config.server.request_timeout_ms);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("flexibank_request_timeouts_total").increment(1);
            ApiError::new(
                Code::NoPrimary,
                "the database did not answer in time; retry with the same Idempotency-Key",
            )
            .with_retry_after(1)
            .into_response()
        }
    }
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("flexibank_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("flexibank_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A read, with the node that served it in `X-Served-By`.
pub struct Served<T>(pub ServedBy, pub T);

impl<T: Serialize> IntoResponse for Served<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.1).into_response();
        response
            .headers_mut()
            .insert("x-served-by", HeaderValue::from_static(self.0.as_str()));
        response
    }
}

/// 201 with the movement's body; a replay says so in `Idempotent-Replayed`.
impl IntoResponse for Moved {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::CREATED);
        let mut response = (status, Json(self.body)).into_response();
        if self.replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}
