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
    protocol::{
        Answers, Applied, Batch, Decision, Prepare, Settlement, Vote, DECISIONS_PATH, DECISION_PATH, MAX_BATCH_MESSAGES, PREPARES_PATH, PREPARE_PATH,
        SETTLEMENT_PATH,
    },
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
        .route(PREPARES_PATH, post(prepares))
        .route(DECISIONS_PATH, post(decisions))
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

/// Steps 4 and 6 for many payments: each item as if it came alone, submitted together so that
/// they share the bank's groups; an item that fails is answered `null` (the switch aborts it, or
/// pushes its decision again) and never fails the others.
async fn prepares(State(state): State<AppState>, body: ApiJson<Batch<Prepare>>) -> ApiResult<Json<Answers<Vote>>> {
    let answers = each(&body.value, |item| payments::prepare(&state, item), |item| &item.e2e_id, "no vote: the switch aborts the payment").await?;
    for (item, vote) in body.value.items.iter().zip(&answers.answers) {
        if let Some(vote) = vote {
            tracing::info!(e2e_id = %item.e2e_id, yes = vote.yes, reason = ?vote.reason, "voted");
        }
    }
    Ok(Json(answers))
}

async fn decisions(State(state): State<AppState>, body: ApiJson<Batch<Decision>>) -> ApiResult<Json<Answers<Applied>>> {
    let answers = each(&body.value, |item| payments::decide(&state, item), |item| &item.e2e_id, "decision not applied: the switch pushes it again").await?;
    Ok(Json(answers))
}

/// A batch's items applied together (polled in order, so they queue for the bank's groups in
/// order), each answered on its own: an item that fails is logged with `failed` and answered `null`.
async fn each<'a, M, A, F: std::future::Future<Output = ApiResult<A>>>(
    batch: &'a Batch<M>,
    apply: impl Fn(&'a M) -> F,
    e2e_id: impl Fn(&M) -> &str,
    failed: &str,
) -> ApiResult<Answers<A>> {
    if batch.items.is_empty() || batch.items.len() > MAX_BATCH_MESSAGES {
        return Err(ApiError::validation(format!("items holds 1 to {MAX_BATCH_MESSAGES} messages")));
    }
    let answers = futures::future::join_all(batch.items.iter().map(apply)).await;
    let answers = batch.items.iter().zip(answers).map(|(item, answer)| {
        answer.map_err(|e| tracing::warn!(e2e_id = %e2e_id(item), error = %e.detail, "{failed}")).ok()
    });
    Ok(Answers { answers: answers.collect() })
}

async fn settlement(State(state): State<AppState>) -> ApiResult<Json<Settlement>> {
    let interbank = state.interbank.as_ref().ok_or_else(|| ApiError::internal("the switch-only listener runs only for members"))?;
    Ok(Json(payments::settlement(&state, &interbank.config.bank_id).await?))
}
