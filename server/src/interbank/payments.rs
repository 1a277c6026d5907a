//! An inter-bank payment at this bank, both sides (docs/consortium.md):
//! the payer's hold and its sending (steps 1–2), the payee's vote (step 4),
//! and either side's application of the switch's decision (step 6).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use flexibank_consortium::{
    keys::{mask_account_number, normalize_and_check, KeyType},
    protocol::{self, Applied, Decision, Payment as SwitchPayment, PaymentRequest, Prepare, Status, Vote, CURRENCY},
};
use rand::{distributions::Alphanumeric, Rng};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use super::record::{InterbankPayment, Payee};
use super::{
    record::{not_a_member, payment_of, PAYMENT_COLUMNS},
    steps::{read_committed, record_payee, PayeeSeen, Place, Settle},
    switch_link::LinkError,
    Interbank,
};
use crate::{
    access::Caller,
    db::db_error,
    error::{ApiError, ApiResult, Code},
    money::{self, Amount, Moved, MAX_MEMO_CHARS},
    page,
    request::RequestMeta,
    review,
    state::AppState,
};

/// The key the payer pays, as typed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRef {
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(phone|email|national_id|random)$")]
    pub key_type: KeyType,
    #[schema(min_length = 1, max_length = 254)]
    pub value: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub from_account_id: Uuid,
    #[serde(deserialize_with = "crate::request::object")]
    pub key: KeyRef,
    pub amount: Amount,
    #[schema(max_length = 140)]
    pub memo: Option<String>,
}

/// A 202's body (for the API document): the payment still pending, or the review holding it.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PaymentOrReview {
    Payment(InterbankPayment),
    Review(review::Review),
}

/// What the customer's request is answered: 201 committed, 202 pending, 202 held for review, or the refusal.
pub enum PayAnswer {
    Committed(InterbankPayment),
    Pending(InterbankPayment),
    /// The bank's rules hold it for a reviewer (its `review::Review`, or the stored one replayed): nothing was sent to the switch.
    Held(Moved),
}

/// A new end-to-end id: `E` + bank id + yyyyMMddHHmm (UTC) + 11 alphanumerics.
pub fn new_e2e_id(bank_id: &str) -> String {
    let suffix: String = rand::thread_rng().sample_iter(&Alphanumeric).take(11).map(char::from).collect();
    format!("E{bank_id}{}{suffix}", Utc::now().format("%Y%m%d%H%M"))
}

/// The answer a decided or undecided payment gets, first time or replayed.
fn answer(payment: InterbankPayment) -> ApiResult<PayAnswer> {
    match payment.status.as_str() {
        "committed" => Ok(PayAnswer::Committed(payment)),
        "aborted" => {
            let reason = payment.reason.clone().unwrap_or_default();
            let code = match reason.as_str() {
                "insufficient_funds" => Code::InsufficientFunds,
                "account_inactive" => Code::AccountInactive,
                "currency_mismatch" => Code::CurrencyMismatch,
                "liquidity_exhausted" => Code::LiquidityExhausted,
                "bank_unavailable" => Code::BankUnavailable,
                "unknown_key" => Code::NotFound,
                "same_bank" => Code::SameBank,
                _ => Code::PayeeRefused,
            };
            let mut error = ApiError::new(code, format!("payment {} ({}) was aborted: {reason}; nothing moved", payment.id, payment.e2e_id));
            if code == Code::BankUnavailable {
                error = error.with_retry_after(1);
            }
            Err(error)
        }
        _ => Ok(PayAnswer::Pending(payment)),
    }
}

/// `POST /v1/interbank/payments`: steps 1, 2 and the customer's answer.
pub async fn pay(state: &AppState, caller: &Caller, meta: &RequestMeta, idempotency_key: &str, request_hash: &[u8], request: PayRequest) -> ApiResult<PayAnswer> {
    let interbank = state.interbank.as_ref().ok_or_else(not_a_member)?;
    let memo = money::check_memo(&request.memo)?;
    let key_value = normalize_and_check(request.key.key_type, &request.key.value).map_err(ApiError::validation)?;
    let _inflight = state.inflight.claim(caller.user_id, idempotency_key)?;
    let amount = request.amount.0;
    // The bank's rules look at a payment by key as at a transfer (review.rs); a held one is answered as it was.
    if let Some(held) = review::answered_before(state, caller, idempotency_key, request_hash, amount).await? {
        return Ok(PayAnswer::Held(held));
    }
    let to = review::Target::Key { key_type: request.key.key_type.as_str(), value: &key_value };
    if let Some(reason) = review::screen(state, caller, request.from_account_id, to, amount).await? {
        let held = review::hold(state, caller, meta, idempotency_key, request_hash, request.from_account_id, to, request.amount, &request.memo, reason).await?;
        state.db.remember_write_now(&caller.session_hash).await;
        return Ok(PayAnswer::Held(held));
    }

    let e2e_id = new_e2e_id(&interbank.config.bank_id);
    let place = Place {
        user_id: caller.user_id,
        account_id: request.from_account_id,
        idempotency_key: idempotency_key.to_string(),
        request_hash: request_hash.to_vec(),
        e2e_id: e2e_id.clone(),
        amount,
        key_type: request.key.key_type.as_str(),
        key_value: key_value.clone(),
        memo: memo.clone(),
        request_id: meta.request_id.clone(),
        client_addr: meta.client_ip.to_string(),
    };
    let started = Instant::now();
    let placed = {
        // One payer account's holds queue here, in this process, rather than in row locks; not across the call to the switch.
        let _admission = state.account_locks.admit(vec![request.from_account_id]).await;
        interbank.places.submit(place).await?
    };
    step_done("hold", started);
    let payment = match placed {
        Ok(new) => new,
        // A replay: the same payment, as it stands now.
        Err(existing) => return answer(existing),
    };
    let switch_request =
        PaymentRequest { e2e_id: e2e_id.clone(), key_type: request.key.key_type, key_value, amount, currency: payment.currency.clone(), memo: payment.memo.clone() };
    let wait = Duration::from_millis(interbank.config.timeout_ms);
    let decided = async {
        let started = Instant::now();
        let initiated = interbank.link.initiate(&switch_request, wait).await;
        step_done("switch", started);
        Ok(match initiated {
            Ok(switch_payment) => {
                let started = Instant::now();
                let applied = apply_switch_answer(state, interbank, &switch_payment).await?;
                step_done("posting", started);
                applied
            }
            Err(LinkError::NotSent(e)) => {
                tracing::warn!(%e2e_id, error = %e, "switch unreachable; the payment is aborted here, nothing was sent");
                settle(state, &e2e_id, Status::Aborted, Some("bank_unavailable")).await?
            }
            Err(LinkError::Refused { code, detail, retry_after_s, .. }) => match refusal_reason(&code) {
                // The switch did nothing with it: the hold goes.
                Some(reason) => settle(state, &e2e_id, Status::Aborted, Some(reason)).await?,
                None if code == "rate_limited" => {
                    settle(state, &e2e_id, Status::Aborted, Some("bank_unavailable")).await?;
                    return Err(ApiError::new(Code::RateLimited, "the switch is busy; retry later").with_retry_after(retry_after_s.unwrap_or(1)));
                }
                None => {
                    tracing::error!(%e2e_id, %code, %detail, "the switch refused a payment unexpectedly; it stays in doubt");
                    None
                }
            },
            Err(LinkError::NoAnswer(e)) => {
                tracing::warn!(%e2e_id, error = %e, "no answer from the switch in time; the payment is pending");
                None
            }
        })
    }
    .await;
    // One position for the hold and for whatever settled it since, whatever the outcome: the
    // caller's next read sees both. A payment posted here has its group's position (taken behind
    // that group's commit, after the hold's); otherwise the primary is asked.
    let decided = decided?;
    match &decided {
        Some(_) => state.db.remember_write_at(&caller.session_hash, interbank.context.posted_lsn.load(std::sync::atomic::Ordering::Acquire)),
        None => state.db.remember_write_now(&caller.session_hash).await,
    }
    answer(decided.unwrap_or(payment))
}

/// Where a payer's wait goes (`flexibank_interbank_step_seconds`): the hold, the switch's answer
/// (its initiation, the payee's vote and the decision), the posting of that answer here.
fn step_done(step: &'static str, started: Instant) {
    metrics::histogram!("flexibank_interbank_step_seconds", "step" => step).record(started.elapsed().as_secs_f64());
}

/// An approved review's payment (review.rs): its hold and row placed in the approval's transaction,
/// idempotent by the review (a retried approval places it once). Sent by `send_placed` after the commit.
#[allow(clippy::too_many_arguments)]
pub async fn place_approved(
    state: &AppState,
    tx: &deadpool_postgres::Transaction<'_>,
    review_id: Uuid,
    customer: Uuid,
    from_account_id: Uuid,
    key: &crate::payees::PayeeKeyView,
    amount: &str,
    memo: &str,
    meta: &RequestMeta,
) -> ApiResult<InterbankPayment> {
    let interbank = state.interbank.as_ref().ok_or_else(not_a_member)?;
    let key_type = KeyType::parse(&key.key_type).ok_or_else(|| ApiError::internal(format!("a review's key type {:?}", key.key_type)))?;
    let amount: Decimal = amount.parse().map_err(|e| ApiError::internal(format!("a review's amount {amount:?}: {e}")))?;
    let review_key = format!("review:{review_id}");
    let place = Place {
        user_id: customer,
        account_id: from_account_id,
        request_hash: money::request_hash(&review_key, amount.to_string().as_bytes()),
        idempotency_key: review_key,
        e2e_id: new_e2e_id(&interbank.config.bank_id),
        amount,
        key_type: key_type.as_str(),
        key_value: key.value.clone(),
        memo: memo.to_string(),
        request_id: meta.request_id.clone(),
        client_addr: meta.client_ip.to_string(),
    };
    let placed = super::steps::place_in(tx, std::slice::from_ref(&place)).await?.pop().expect("one answer")?;
    Ok(placed.unwrap_or_else(|replayed| replayed))
}

/// Sends a payment placed in another transaction (an approved review, a standing order's run) to the switch, after that commit,
/// and applies the answer. A send that fails is the resolver's: it asks the switch about every payment
/// still undecided and sends again what the switch never got.
pub fn send_placed(state: &AppState, e2e_id: String) {
    let state = state.clone();
    tokio::spawn(async move {
        let Some(interbank) = state.interbank.clone() else { return };
        let Some(request) = payment_request(&state, &e2e_id).await else { return };
        if let Err(e) = send_and_apply(&state, &interbank, &request).await {
            tracing::warn!(%e2e_id, error = ?e, "applying the switch's answer failed; the resolver will ask again");
        }
    });
}

/// Sends a payment this bank placed (again, for the resolver) and applies what the switch answers: its
/// decision, or an abort for a refusal that left nothing at the switch. `Ok(true)` when the payment got
/// its decision here; `Ok(false)` when the send failed (logged): the resolver sends it again.
pub(super) async fn send_and_apply(state: &AppState, interbank: &Arc<Interbank>, request: &PaymentRequest) -> ApiResult<bool> {
    let e2e_id = &request.e2e_id;
    match interbank.link.initiate(request, Duration::from_millis(interbank.config.timeout_ms)).await {
        Ok(answer) => Ok(apply_switch_answer(state, interbank, &answer).await?.is_some()),
        Err(LinkError::Refused { code, .. }) if refusal_reason(&code).is_some() => {
            settle(state, e2e_id, Status::Aborted, refusal_reason(&code)).await?;
            Ok(true)
        }
        Err(e) => {
            tracing::warn!(%e2e_id, error = %e, "sending a placed payment failed; the resolver sends it again");
            Ok(false)
        }
    }
}

/// What the switch is sent for an outgoing payment, from its row.
async fn payment_request(state: &AppState, e2e_id: &str) -> Option<PaymentRequest> {
    let read = async {
        let client = state.db.primary_read_committed().await?;
        client
            .query_opt("SELECT key_type, key_value, amount, currency, memo FROM interbank_payments WHERE e2e_id = $1 AND direction = 'out'", &[&e2e_id])
            .await
            .map_err(db_error)
    };
    match read.await {
        Ok(Some(row)) => {
            let key_type: String = row.get(0);
            Some(PaymentRequest {
                e2e_id: e2e_id.to_string(),
                key_type: KeyType::parse(&key_type)?,
                key_value: row.get(1),
                amount: row.get(2),
                currency: row.get(3),
                memo: row.get(4),
            })
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(%e2e_id, error = ?e, "reading a placed payment failed; the resolver will send it");
            None
        }
    }
}

/// The switch's refusals at initiation that mean it recorded nothing that can
/// still commit, as the reason the payment is aborted with here.
pub fn refusal_reason(code: &str) -> Option<&'static str> {
    match code {
        "not_found" => Some("unknown_key"),
        "same_bank" => Some("same_bank"),
        "liquidity_exhausted" => Some("liquidity_exhausted"),
        "validation_failed" | "forbidden" | "payload_too_large" => Some("payee_refused"),
        _ => None,
    }
}

/// Records what the switch said of an outgoing payment (the payee, and the
/// decision if there is one), then acknowledges a decision in the background.
pub async fn apply_switch_answer(state: &AppState, interbank: &Arc<Interbank>, switch_payment: &SwitchPayment) -> ApiResult<Option<InterbankPayment>> {
    let payee = PayeeSeen {
        bank_id: switch_payment.payee_bank.clone(),
        bank_name: switch_payment.payee_bank_name.clone(),
        holder_name_masked: switch_payment.payee_holder_name_masked.clone(),
        account_number_masked: mask_account_number(&switch_payment.payee_account_number),
    };
    if !switch_payment.status.is_decided() {
        let mut client = state.db.writer().await?;
        let tx = read_committed(&mut client).await?;
        record_payee(&tx, &[&switch_payment.e2e_id], &[&payee]).await?;
        tx.commit().await.map_err(db_error)?;
        return Ok(None);
    }
    let item = Settle { e2e_id: switch_payment.e2e_id.clone(), status: switch_payment.status, reason: switch_payment.reason.clone(), payee: Some(payee) };
    let settled = interbank.settles.submit(item).await?;
    acknowledge_later(interbank, &switch_payment.e2e_id);
    Ok(settled)
}

/// Tells the switch, off the customer's path, that the decision is applied
/// (acknowledgements of concurrent payments share one call). A lost
/// acknowledgement costs only a repeat: the switch re-sends the decision.
fn acknowledge_later(interbank: &Arc<Interbank>, e2e_id: &str) {
    let (interbank, e2e_id) = (interbank.clone(), e2e_id.to_string());
    tokio::spawn(async move {
        if let Ok(false) = interbank.acks.submit(e2e_id.clone()).await {
            tracing::debug!(%e2e_id, "acknowledgement not recorded; the switch will re-send the decision");
        }
    });
}

/// Step 6 at this bank: `interbank_settle` at READ COMMITTED (its rows are
/// locked first). `None` when this bank never heard of the payment.
pub async fn settle(state: &AppState, e2e_id: &str, status: Status, reason: Option<&str>) -> ApiResult<Option<InterbankPayment>> {
    let item = Settle { e2e_id: e2e_id.to_string(), status, reason: reason.map(str::to_string), payee: None };
    match &state.interbank {
        Some(interbank) => interbank.settles.submit(item).await,
        None => Err(not_a_member()),
    }
}

/// Step 4 at the payee's bank: a yes records a pending credit; a repeat answers the first vote.
pub async fn prepare(state: &AppState, message: &Prepare) -> ApiResult<Vote> {
    if message.currency != CURRENCY || message.amount <= Decimal::ZERO || message.amount.scale() > 2 {
        return Ok(Vote { yes: false, reason: Some("payee_refused".into()) });
    }
    // The switch checks the memo; a bank keeps only what its own rule admits.
    let memo: String = message.memo.chars().filter(|c| !c.is_control()).take(MAX_MEMO_CHARS).collect();
    let item = Prepare { memo, ..message.clone() };
    match &state.interbank {
        Some(interbank) => interbank.prepares.submit(item).await,
        None => Err(not_a_member()),
    }
}

/// Step 6, pushed by the switch: apply the decision (once); the 200 is the acknowledgement.
pub async fn decide(state: &AppState, message: &Decision) -> ApiResult<Applied> {
    if !message.status.is_decided() {
        return Err(ApiError::validation("a decision is committed or aborted"));
    }
    match settle(state, &message.e2e_id, message.status, message.reason.as_deref()).await? {
        Some(_) => Ok(Applied { e2e_id: message.e2e_id.clone(), status: message.status }),
        // A payee the switch never reached has nothing to undo.
        None if message.status == Status::Aborted => Ok(Applied { e2e_id: message.e2e_id.clone(), status: message.status }),
        None => {
            tracing::error!(e2e_id = %message.e2e_id, "the switch committed a payment this bank never prepared");
            Err(ApiError::new(Code::NotFound, "this bank never prepared that payment"))
        }
    }
}

/// `GET /v1/interbank/payments/{id}`: the caller's payment.
pub async fn get(client: &tokio_postgres::Client, caller: &Caller, id: Uuid) -> ApiResult<InterbankPayment> {
    let row = client
        .query_opt(&format!("SELECT {PAYMENT_COLUMNS} FROM interbank_payments WHERE id = $1 AND created_by = $2 AND direction = 'out'"), &[&id, &caller.user_id])
        .await
        .map_err(db_error)?
        .ok_or_else(ApiError::not_found)?;
    Ok(payment_of(&row))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size.
    #[param(schema_with = page::limit_schema)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = page::time_id_schema)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentPage {
    pub items: Vec<InterbankPayment>,
    pub next_cursor: Option<String>,
}

/// Newest first; `created_by` narrows to one customer's payments (None: the whole bank's, for its admins).
pub async fn list(client: &tokio_postgres::Client, created_by: Option<Uuid>, query: &PageQuery) -> ApiResult<PaymentPage> {
    let limit = page::limit(query.limit)?;
    let (after_at, after_id) = page::decode_time_id(&query.cursor)?.unzip();
    let rows = client
        .query(
            &format!(
                "SELECT {PAYMENT_COLUMNS} FROM interbank_payments
                  WHERE ($1::uuid IS NULL OR (created_by = $1 AND direction = 'out'))
                    AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
                  ORDER BY created_at DESC, id DESC LIMIT $4"
            ),
            &[&created_by, &after_at, &after_id, &(limit + 1)],
        )
        .await
        .map_err(db_error)?;
    let mut items: Vec<InterbankPayment> = rows.iter().map(payment_of).collect();
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|p| page::encode_time_id(p.created_at, p.id))
    } else {
        None
    };
    Ok(PaymentPage { items, next_cursor })
}


pub use protocol::Settlement;

/// `GET SETTLEMENT_PATH`, for `reconcile`.
pub async fn settlement(state: &AppState, bank_id: &str) -> ApiResult<Settlement> {
    let client = state.db.primary_read_committed().await?;
    let row = client
        .query_one(
            "SELECT coalesce((SELECT sum(balance) FROM accounts WHERE kind = 'settlement' AND currency = $1), 0)::numeric(20, 2),
                    (SELECT count(*) FROM interbank_payments WHERE status IN ('sent', 'prepared'))",
            &[&CURRENCY],
        )
        .await
        .map_err(db_error)?;
    Ok(Settlement { bank_id: bank_id.to_string(), currency: CURRENCY.to_string(), balance: row.get(0), undecided: row.get(1) })
}
