//! The switch-only listener (docs/consortium.md): mutual TLS where the peer's
//! certificate must name the switch; a bank's certificate, though issued by
//! the same CA, is refused (403) before anything is read. The customer
//! listener never serves these routes, and this one serves nothing else.

use axum::{
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use flexibank_consortium::{
    peer::PeerCert,
    pki::cert_names_switch,
    protocol::{Applied, Decision, Prepare, Settlement, Vote, DECISION_PATH, PREPARE_PATH, SETTLEMENT_PATH},
};

use crate::{
    error::{ApiError, ApiResult, Code},
    interbank::payments,
    request::ApiJson,
    state::AppState,
};

pub fn router(state: AppState) -> Router {
    let max_body_bytes = state.config.server.max_body_bytes;
    Router::new()
        .route(PREPARE_PATH, post(prepare))
        .route(DECISION_PATH, post(decision))
        .route(SETTLEMENT_PATH, get(settlement))
        .fallback(|| async { ApiError::new(Code::NotFound, "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(only_the_switch))
        .with_state(state)
}

async fn only_the_switch(request: Request, next: Next) -> Response {
    let is_switch = request.extensions().get::<PeerCert>().is_some_and(|peer| cert_names_switch(peer.0.as_ref()));
    if !is_switch {
        return ApiError::new(Code::Forbidden, "only the switch may call this listener").into_response();
    }
    next.run(request).await
}

async fn prepare(State(state): State<AppState>, body: ApiJson<Prepare>) -> ApiResult<Json<Vote>> {
    let vote = payments::prepare(&state, &body.value).await?;
    tracing::info!(e2e_id = %body.value.e2e_id, yes = vote.yes, reason = ?vote.reason, "voted");
    Ok(Json(vote))
}

async fn decision(State(state): State<AppState>, body: ApiJson<Decision>) -> ApiResult<Json<Applied>> {
    Ok(Json(payments::decide(&state, &body.value).await?))
}

async fn settlement(State(state): State<AppState>) -> ApiResult<Json<Settlement>> {
    let interbank = state.interbank.as_ref().ok_or_else(|| ApiError::internal("the switch-only listener runs only for members"))?;
    Ok(Json(payments::settlement(&state, &interbank.config.bank_id).await?))
}
