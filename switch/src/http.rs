//! The switch's HTTPS API: the router, its extractors (the acting bank, and
//! JSON/path/query input whose rejections are 400 problems), and thin
//! handlers over `directory` and `payments`.
//!
//! Every route under `/switch/v1/banks/{bank_id}/` first extracts `Acting`:
//! the peer's certificate must name `bank_id` (else 403, before the body is
//! read and before anything changes), and the bank must be registered (else 404).
//! The operator routes (`/switch/v1/positions`, `/switch/v1/payments/{e2e_id}`)
//! extract `Operator` instead: only a certificate naming `pki::OPERATOR_NAME`.
//!
//! Initiating a payment also drives it when the payee registered an endpoint:
//! the switch asks the payee to prepare, decides, answers the payer with the
//! decision and pushes it to the payee (docs/consortium.md, steps 3 to 6).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State},
    http::{request::Parts, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
    Json, Router,
};
use deadpool_postgres::Pool;
use flexibank_consortium::{
    keys::{DirectoryEntry, KeyType, RegisterKey, StoredKey},
    pki::{cert_names_bank, cert_names_operator},
    protocol::{Acks, AcksRecorded, Decision, Endpoint, Prepare, Vote, MAX_ACKS},
};
use serde::{de::DeserializeOwned, Deserialize};

use crate::{
    bank_cache::BankCache,
    batch::Batcher,
    calls::{BankAddr, CallError, Calls},
    config::Limits,
    db,
    directory::{self, Registered},
    driver::{self, Warnings},
    endpoints,
    error::{Code, SwitchError, SwitchResult},
    payments::{self, Payment, PaymentRequest, Position, Status},
    peer::PeerCert,
    rate::LookupLimits,
};

/// Longest opaque customer id a bank may send with a look-up.
const MAX_USER_CHARS: usize = 128;

#[derive(Clone)]
pub struct AppState {
    pub db: Pool,
    pub lookups: Arc<LookupLimits>,
    /// How long a payment initiated here waits for its payee's vote (`Limits::prepare_timeout_ms`).
    pub prepare_timeout_ms: u64,
    pub calls: Arc<Calls>,
    /// Shared with the driver: one rate of warnings per bank.
    pub warnings: Arc<Warnings>,
    /// Initiations, votes and acknowledgements, applied in batches.
    pub batcher: Arc<Batcher>,
    pub banks: Arc<BankCache>,
    /// This process's Prometheus recorder (`GET /metrics`).
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

pub fn router(state: AppState, limits: &Limits) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/switch/v1/banks/{bank_id}/keys", post(register_key))
        .route("/switch/v1/banks/{bank_id}/keys/{key_type}/{value}", delete(delete_key))
        .route("/switch/v1/banks/{bank_id}/directory", get(lookup))
        .route("/switch/v1/banks/{bank_id}/payments", post(initiate_payment))
        .route("/switch/v1/banks/{bank_id}/payments/{e2e_id}", get(payment_decision))
        .route("/switch/v1/banks/{bank_id}/payments/{e2e_id}/vote", post(vote))
        .route("/switch/v1/banks/{bank_id}/payments/{e2e_id}/ack", post(acknowledge))
        .route("/switch/v1/banks/{bank_id}/acks", post(acknowledge_many))
        .route("/switch/v1/banks/{bank_id}/endpoint", put(register_endpoint))
        .route("/switch/v1/banks/{bank_id}/position", get(own_position))
        .route("/switch/v1/positions", get(all_positions))
        .route("/switch/v1/payments/{e2e_id}", get(any_payment))
        .fallback(|| async { SwitchError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { SwitchError::new(Code::MethodNotAllowed, "this route does not take that method") })
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(Duration::from_millis(limits.request_timeout_ms.max(1)), timeout))
        .with_state(state)
}

/// A request that runs out of time is answered 503; its transaction, dropped, rolls back.
async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => SwitchError::new(Code::Unavailable, "the request took too long; retry").with_retry_after(1).into_response(),
    }
}

/// The bank a request acts for: named by the path, the peer's certificate and the `banks` table alike.
pub struct Acting {
    pub bank_id: String,
}

impl FromRequestParts<AppState> for Acting {
    type Rejection = SwitchError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state).await.map_err(|e| SwitchError::validation(e.body_text()))?;
        let bank_id = params.get("bank_id").cloned().ok_or_else(|| SwitchError::internal("a bank route without {bank_id}"))?;
        let names_bank = parts.extensions.get::<PeerCert>().is_some_and(|peer| cert_names_bank(peer.0.as_ref(), &bank_id));
        if !names_bank {
            return Err(SwitchError::new(Code::Forbidden, format!("your certificate does not name bank {bank_id}")));
        }
        state.banks.get(&state.db, &bank_id).await?;
        Ok(Acting { bank_id })
    }
}

/// The consortium's operator: the peer's certificate names `pki::OPERATOR_NAME` (else 403).
pub struct Operator;

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = SwitchError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<PeerCert>().is_some_and(|peer| cert_names_operator(peer.0.as_ref())) {
            Ok(Operator)
        } else {
            Err(SwitchError::new(Code::Forbidden, "only the operator's certificate may read this"))
        }
    }
}

/// A JSON body; malformed JSON, a wrong type or an unknown field is 400.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = SwitchError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(SwitchError::new(Code::PayloadTooLarge, e.body_text())),
            Err(e) => Err(SwitchError::validation(e.body_text())),
        }
    }
}

/// Path parameters or a query string; what does not parse is 400.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = SwitchError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await.map_err(|e| SwitchError::validation(e.body_text()))?;
        Ok(Params(value))
    }
}

pub struct QueryOf<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryOf<T> {
    type Rejection = SwitchError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await.map_err(|e| SwitchError::validation(e.body_text()))?;
        Ok(QueryOf(value))
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> SwitchResult<&'static str> {
    let client = db::client(&state.db).await?;
    client.execute("SELECT 1", &[]).await.map_err(db::db_error)?;
    Ok("ready")
}

/// `GET /metrics` (any consortium certificate, like the health checks): Prometheus text. Each
/// bank's open payments (undecided, or decided and not yet acknowledged by it) are counted at
/// the scrape, so a payment stuck in doubt shows here as it does in `reconcile`.
async fn metrics_text(State(state): State<AppState>) -> SwitchResult<([(axum::http::HeaderName, &'static str); 1], String)> {
    for (bank, open) in payments::open_counts(&state.db).await? {
        metrics::gauge!("flexibank_switch_open_payments", "bank" => bank).set(open as f64);
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()))
}

/// `POST /switch/v1/banks/{bank_id}/keys`: 201 with the stored key, 200 when it was there already.
async fn register_key(State(state): State<AppState>, acting: Acting, Body(request): Body<RegisterKey>) -> SwitchResult<(StatusCode, Json<StoredKey>)> {
    let (stored, registered) = directory::register(&state.db, &acting.bank_id, &request).await?;
    let status = if registered == Registered::Created { StatusCode::CREATED } else { StatusCode::OK };
    if registered == Registered::Created {
        tracing::info!(bank_id = %acting.bank_id, key_type = stored.key_type.as_str(), "key registered");
    }
    Ok((status, Json(stored)))
}

/// `DELETE /switch/v1/banks/{bank_id}/keys/{type}/{value}`: 204, or 404 when this bank does not hold it.
async fn delete_key(State(state): State<AppState>, acting: Acting, Params((_, key_type, value)): Params<(String, String, String)>) -> SwitchResult<StatusCode> {
    let key_type = KeyType::parse(&key_type).ok_or_else(|| SwitchError::validation(format!("no key type {key_type:?}")))?;
    directory::delete(&state.db, &acting.bank_id, key_type, &value).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryQuery {
    #[serde(rename = "type")]
    key_type: KeyType,
    value: String,
    /// The bank's opaque id of the customer asking (for the per-customer limit).
    user: String,
}

/// `GET /switch/v1/banks/{bank_id}/directory?type=&value=&user=`: the masked entry, 404, or 429.
async fn lookup(State(state): State<AppState>, acting: Acting, QueryOf(query): QueryOf<DirectoryQuery>) -> SwitchResult<Json<DirectoryEntry>> {
    let user_chars = query.user.chars().count();
    if user_chars == 0 || user_chars > MAX_USER_CHARS || query.user.chars().any(char::is_control) {
        return Err(SwitchError::validation(format!("user is 1 to {MAX_USER_CHARS} characters, no control characters")));
    }
    state
        .lookups
        .take(&acting.bank_id, &query.user)
        .map_err(|wait_s| SwitchError::new(Code::RateLimited, "too many look-ups; retry later").with_retry_after(wait_s))?;
    Ok(Json(directory::lookup(&state.db, query.key_type, &query.value).await?))
}

/// `POST /switch/v1/banks/{bank_id}/payments` (step 2, the path's bank is the payer): 201 with
/// the payment; 409 with its reason as the code when the switch aborted it at initiation
/// (`liquidity_exhausted`). When the payee has an endpoint the answer is the decision
/// (committed or aborted); without one the payment stays INITIATED until the payee votes or
/// its deadline passes. A repeat answers the stored payment as it stands, driving nothing.
async fn initiate_payment(State(state): State<AppState>, acting: Acting, Body(request): Body<PaymentRequest>) -> SwitchResult<Response> {
    let command = payments::initiate_command(state.prepare_timeout_ms, &acting.bank_id, &request)?;
    let started = Instant::now();
    let (payment, recorded_now) = payments::initiated(state.batcher.submit(command).await?)?;
    step_done("initiate", started);
    // Only the switch's own refusal is an error to the payer; a later abort (the payee's no, a timeout) is
    // the payment's outcome, which a repeat after it must still show as the payment, not as a refusal.
    if payment.status == Status::Aborted && payment.reason.as_deref() == Some(payments::REASON_LIQUIDITY) {
        return Err(SwitchError::new(Code::LiquidityExhausted, format!("payment {}: the payer bank's liquidity at the switch cannot cover it", payment.e2e_id)));
    }
    // Only the request that recorded it drives it: a repeat must not ask the payee twice at once.
    let payment = if recorded_now && payment.status == Status::Initiated { drive(&state, payment).await? } else { payment };
    Ok((StatusCode::CREATED, Json(for_the_payer(&state, &acting, payment).await?)).into_response())
}

/// Steps 4 to 6 for a payment just initiated: prepare at the payee, decide, push the decision to the payee.
async fn drive(state: &AppState, payment: Payment) -> SwitchResult<Payment> {
    let Some(addr) = state.banks.get(&state.db, &payment.payee_bank).await?.interbank_addr else {
        return Ok(payment);
    };
    let payee = BankAddr { bank_id: payment.payee_bank.clone(), addr };
    let mut decided = prepare_and_decide(state, &payment, &payee).await?;
    // The names the initiation found, for the payer's answer.
    decided.payee_holder_name_masked = payment.payee_holder_name_masked.clone();
    if decided.status.is_decided() {
        let decision = Decision { e2e_id: decided.e2e_id.clone(), status: decided.status, reason: decided.reason.clone() };
        let (batcher, calls, warnings) = (state.batcher.clone(), state.calls.clone(), state.warnings.clone());
        // The payer is answered without waiting for the payee's acknowledgement; the driver re-sends what this misses.
        tokio::spawn(async move {
            if let Err(e) = driver::push_decision(&batcher, &calls, &payee, &decision).await {
                warnings.call_failed(&decision.e2e_id, &payee.bank_id, "pushing the decision (the driver re-sends it)", &e);
            }
        });
    }
    Ok(decided)
}

/// Where a payment's time goes at the switch: its initiation written, the payee's vote, the decision written.
fn step_done(step: &'static str, started: Instant) {
    metrics::histogram!("flexibank_switch_step_seconds", "step" => step).record(started.elapsed().as_secs_f64());
}

/// The payee's vote decides; no vote (an error, or no answer before the deadline) aborts.
async fn prepare_and_decide(state: &AppState, payment: &Payment, payee: &BankAddr) -> SwitchResult<Payment> {
    let prepare = Prepare {
        e2e_id: payment.e2e_id.clone(),
        payer_bank: payment.payer_bank.clone(),
        payer_bank_name: state.banks.get(&state.db, &payment.payer_bank).await?.name,
        account_number: payment.payee_account_number.clone(),
        amount: payment.amount,
        currency: payment.currency.clone(),
        memo: payment.memo.clone(),
    };
    let left = (payment.deadline - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let started = Instant::now();
    let called = state.calls.prepare(payee, &prepare, left).await;
    step_done("payee_vote", started);
    match called {
        Ok(vote) => {
            // A malformed reason is still a no: the payer must not get a 400 for the payee's mistake.
            let reason = vote.reason.as_deref().filter(|r| payments::is_reason(r));
            let command = payments::vote_command(&payment.e2e_id, &payee.bank_id, vote.yes, reason)?;
            let started = Instant::now();
            let decided = payments::answered(state.batcher.submit(command).await?);
            step_done("decide", started);
            decided
        }
        Err(CallError::Timeout) => {
            state.warnings.call_failed(&payment.e2e_id, &payee.bank_id, "prepare (no answer before the deadline)", &CallError::Timeout);
            payments::abort_undecided(&state.db, &payment.e2e_id, payments::REASON_TIMEOUT).await
        }
        Err(e) => {
            state.warnings.call_failed(&payment.e2e_id, &payee.bank_id, "prepare", &e);
            payments::abort_undecided(&state.db, &payment.e2e_id, payments::REASON_PAYEE_UNAVAILABLE).await
        }
    }
}

/// `POST /switch/v1/banks/{bank_id}/payments/{e2e_id}/vote` (step 5, the path's bank is the payee): the decision.
async fn vote(State(state): State<AppState>, acting: Acting, Params((_, e2e_id)): Params<(String, String)>, Body(vote): Body<Vote>) -> SwitchResult<Json<Payment>> {
    let command = payments::vote_command(&e2e_id, &acting.bank_id, vote.yes, vote.reason.as_deref())?;
    Ok(Json(payments::answered(state.batcher.submit(command).await?)?))
}

/// `GET /switch/v1/banks/{bank_id}/payments/{e2e_id}`: the payment as decided so far; 404 unless the bank is its payer or payee.
async fn payment_decision(State(state): State<AppState>, acting: Acting, Params((_, e2e_id)): Params<(String, String)>) -> SwitchResult<Json<Payment>> {
    let payment = payments::decision(&state.db, &acting.bank_id, &e2e_id).await?;
    Ok(Json(for_the_payer(&state, &acting, payment).await?))
}

/// `POST /switch/v1/banks/{bank_id}/payments/{e2e_id}/ack`: the bank has applied the decision; 409 `not_decided` before one.
async fn acknowledge(State(state): State<AppState>, acting: Acting, Params((_, e2e_id)): Params<(String, String)>) -> SwitchResult<Json<Payment>> {
    let command = payments::Command::Ack { bank: acting.bank_id.clone(), e2e_id };
    let payment = payments::answered(state.batcher.submit(command).await?)?;
    Ok(Json(for_the_payer(&state, &acting, payment).await?))
}

/// `POST /switch/v1/banks/{bank_id}/acks`: many acknowledgements at once; 200 with those recorded
/// (the others are not decided yet, or not this bank's: each is acknowledged again later).
async fn acknowledge_many(State(state): State<AppState>, acting: Acting, Body(acks): Body<Acks>) -> SwitchResult<Json<AcksRecorded>> {
    if acks.e2e_ids.is_empty() || acks.e2e_ids.len() > MAX_ACKS {
        return Err(SwitchError::validation(format!("e2e_ids names 1 to {MAX_ACKS} payments")));
    }
    let commands = acks.e2e_ids.iter().map(|e2e_id| payments::Command::Ack { bank: acting.bank_id.clone(), e2e_id: e2e_id.clone() }).collect();
    let answers = state.batcher.submit_all(commands).await;
    let acknowledged = acks.e2e_ids.into_iter().zip(answers).filter(|(_, answer)| answer.is_ok()).map(|(e2e_id, _)| e2e_id).collect();
    Ok(Json(AcksRecorded { acknowledged }))
}

/// The payer bank sees the payee's bank and masked holder in every answer about its payment; the payee bank needs neither.
async fn for_the_payer(state: &AppState, acting: &Acting, mut payment: Payment) -> SwitchResult<Payment> {
    if payment.payer_bank != acting.bank_id {
        return Ok(payment);
    }
    if payment.payee_holder_name_masked.is_none() {
        return payments::with_payee_names(&state.db, payment).await;
    }
    payment.payee_bank_name = Some(state.banks.get(&state.db, &payment.payee_bank).await?.name);
    Ok(payment)
}

/// `PUT /switch/v1/banks/{bank_id}/endpoint`: where the switch reaches this bank from now on; 200 with it.
async fn register_endpoint(State(state): State<AppState>, acting: Acting, Body(endpoint): Body<Endpoint>) -> SwitchResult<Json<Endpoint>> {
    endpoints::register(&state.db, &acting.bank_id, &endpoint.interbank_addr).await?;
    state.banks.forget(&acting.bank_id);
    tracing::info!(bank_id = %acting.bank_id, interbank_addr = %endpoint.interbank_addr, "endpoint registered");
    Ok(Json(endpoint))
}

/// `GET /switch/v1/banks/{bank_id}/position`: the bank's own liquidity at the switch.
async fn own_position(State(state): State<AppState>, acting: Acting) -> SwitchResult<Json<Position>> {
    Ok(Json(payments::position(&state.db, &acting.bank_id).await?))
}

/// `GET /switch/v1/positions` (operator): every bank's liquidity.
async fn all_positions(State(state): State<AppState>, _operator: Operator) -> SwitchResult<Json<Vec<Position>>> {
    Ok(Json(payments::positions(&state.db).await?))
}

/// `GET /switch/v1/payments/{e2e_id}` (operator): any payment.
async fn any_payment(State(state): State<AppState>, _operator: Operator, Params(e2e_id): Params<String>) -> SwitchResult<Json<Payment>> {
    Ok(Json(payments::get(&state.db, &e2e_id).await?))
}
