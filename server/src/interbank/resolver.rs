//! Payments left undecided at this bank: a hold whose decision never arrived
//! (the switch crashed, the answer was lost, this server was killed) or a
//! pending credit whose phase two is late. The switch pushes every decision
//! until acknowledged; this is the bank's own half of that promise: it asks
//! for each payment undecided longer than `in_doubt_after_ms`, and applies
//! what the switch says. A payment the switch never heard of is sent again
//! (the first send may have been lost), never voided here: only the switch
//! decides a payment that may have reached it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use flexibank_consortium::{
    keys::KeyType,
    protocol::PaymentRequest,
};
use reqwest::StatusCode;
use rust_decimal::Decimal;

use super::{payments, switch_link::LinkError};
use crate::{db::db_error, error::ApiResult, state::AppState};

/// Payments one round asks about at most.
const MAX_PER_ROUND: i64 = 100;

pub async fn run(state: AppState) {
    let Some(interbank) = state.interbank.clone() else { return };
    let mut tick = tokio::time::interval(Duration::from_millis(interbank.config.resolver_interval_ms.max(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = resolve_once(&state).await {
            tracing::warn!(error = ?e, "resolving in-doubt payments failed; will retry");
        }
    }
}

/// One round; returns how many payments got their decision applied.
pub async fn resolve_once(state: &AppState) -> ApiResult<usize> {
    let Some(interbank) = state.interbank.as_ref() else { return Ok(0) };
    let config = &interbank.config;
    let in_doubt_after_ms = i64::try_from(config.in_doubt_after_ms).unwrap_or(i64::MAX);
    let alert_after_ms = i64::try_from(config.alert_after_ms).unwrap_or(i64::MAX);
    let (rows, alerting) = {
        let client = state.db.primary_read_committed().await?;
        let rows = client
            .query(
                "SELECT e2e_id, direction, key_type, key_value, amount, currency, created_at, memo FROM interbank_payments
                  WHERE status IN ('sent', 'prepared') AND created_at < now() - $1::bigint * interval '1 millisecond'
                  ORDER BY created_at LIMIT $2",
                &[&in_doubt_after_ms, &MAX_PER_ROUND],
            )
            .await
            .map_err(db_error)?;
        let alerting: i64 = client
            .query_one(
                "SELECT count(*) FROM interbank_payments WHERE status IN ('sent', 'prepared') AND created_at < now() - $1::bigint * interval '1 millisecond'",
                &[&alert_after_ms],
            )
            .await
            .map_err(db_error)?
            .get(0);
        (rows, alerting)
    };
    metrics::gauge!("flexibank_interbank_in_doubt").set(alerting as f64);
    if alerting > 0 {
        tracing::error!(alert = true, payments = alerting, after_ms = alert_after_ms, "inter-bank payments in doubt past the alert bound");
    }
    let mut applied = 0;
    for row in rows {
        let (e2e_id, direction): (String, String) = (row.get(0), row.get(1));
        let created_at: DateTime<Utc> = row.get(6);
        match interbank.link.decision(&e2e_id).await {
            Ok(found) if found.status.is_decided() => {
                payments::apply_switch_answer(state, interbank, &found).await?;
                applied += 1;
            }
            Ok(_) => tracing::debug!(%e2e_id, "still undecided at the switch"),
            Err(LinkError::Refused { status: StatusCode::NOT_FOUND, .. }) if direction == "out" => {
                // The switch never got it: send it again (idempotent by e2e_id); the switch decides as usual.
                let (key_type, key_value, amount, currency): (String, String, Decimal, String) = (row.get(2), row.get(3), row.get(4), row.get(5));
                let Some(key_type) = KeyType::parse(&key_type) else { continue };
                let request = PaymentRequest { e2e_id: e2e_id.clone(), key_type, key_value, amount, currency, memo: row.get(7) };
                tracing::warn!(%e2e_id, %created_at, "the switch never received this payment; sending it again");
                if payments::send_and_apply(state, interbank, &request).await? {
                    applied += 1;
                }
            }
            Err(e) => tracing::debug!(%e2e_id, error = %e, "asking the switch failed; will retry"),
        }
    }
    Ok(applied)
}
