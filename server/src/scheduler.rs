//! Runs standing orders when they are due, in every server process at once:
//! each order is run by one process at a time (`FOR UPDATE SKIP LOCKED` in
//! sql/functions/run_standing_order.sql) and each due date at most once (the
//! run's row, keyed by order and date, commits with its transfer). A process
//! killed mid-run commits nothing, and the next tick of any process runs the
//! date; a failover loses only runs never committed, which run again on the
//! new primary. Dates missed while no process ran are run when one comes back.

use std::time::Duration;

use uuid::Uuid;

use crate::{db::db_error, error::ApiResult, state::AppState};

/// Orders and retries looked at per tick, and dates one order runs per call: bounded work per tick.
const ORDERS_PER_TICK: i64 = 64;
const RUNS_PER_ORDER_CALL: i32 = 100;

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_millis(state.config.standing_orders.poll_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = tick_once(&state).await {
            // No primary right now, say: the next tick tries again; nothing was half done.
            tracing::debug!(error = %e.detail, "standing orders: tick failed");
        }
    }
}

/// One pass: every order due, then every retry due. Returns the runs made.
pub async fn tick_once(state: &AppState) -> ApiResult<usize> {
    let retry_after_s = i32::try_from(state.config.standing_orders.retry_after_s).expect("validated: at most 24 h");
    // In each run's audit row (client_addr): which process ran it.
    let runner = format!("scheduler@{}", std::process::id());
    let (due, retries) = {
        let client = state.db.primary_read_committed().await?;
        let due: Vec<Uuid> = client
            .query(
                "SELECT id FROM standing_orders WHERE status = 'active' AND next_due_at <= now() ORDER BY next_due_at LIMIT $1",
                &[&ORDERS_PER_TICK],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let retries: Vec<(Uuid, String)> = client
            .query(
                "SELECT order_id, due_key FROM standing_order_runs WHERE status = 'retry' AND retry_at <= now() ORDER BY retry_at LIMIT $1",
                &[&ORDERS_PER_TICK],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        (due, retries)
    };
    let mut made = crate::review::expire_due(state).await?;
    // Each run is screened by the same rules as a transfer the customer sends (sql/functions/review_reason.sql);
    // a run of an order paying a key makes an end-to-end id with this bank's consortium id.
    let context = serde_json::json!({
        "review": crate::review::rules_json(&state.config.review),
        "bank_id": state.interbank.as_ref().map(|interbank| interbank.config.bank_id.clone()),
    });
    for order_id in due {
        let runs: i32 = state
            .db
            .retry_serializable(|| async {
                let client = state.db.writer().await?;
                let row = client
                    .query_one("SELECT run_standing_order($1, $2, $3, $4, $5)",
                        &[&order_id, &retry_after_s, &RUNS_PER_ORDER_CALL, &runner, &context],
                    )
                    .await
                    .map_err(db_error)?;
                Ok(row.get(0))
            })
            .await?;
        metrics::counter!("flexibank_standing_order_runs_total").increment(runs as u64);
        made += runs as usize;
        if runs > 0 {
            send_placed_payments(state, order_id).await?;
        }
    }
    for (order_id, due_key) in retries {
        let outcome: Option<String> = state
            .db
            .retry_serializable(|| async {
                let client = state.db.writer().await?;
                let row = client
                    .query_one("SELECT retry_standing_order_run($1, $2, $3, $4, $5)",
                        &[&order_id, &due_key, &retry_after_s, &runner, &context],
                    )
                    .await
                    .map_err(db_error)?;
                Ok(row.get(0))
            })
            .await?;
        if outcome.is_some() {
            metrics::counter!("flexibank_standing_order_retries_total").increment(1);
            made += 1;
            send_placed_payments(state, order_id).await?;
        }
    }
    Ok(made)
}

/// The inter-bank payments this order's runs just placed (an order paying a key), sent to the switch now
/// that they are committed. One that is not is the resolver's: it sends again what the switch never got.
async fn send_placed_payments(state: &AppState, order_id: Uuid) -> ApiResult<()> {
    if state.interbank.is_none() {
        return Ok(());
    }
    let placed: Vec<String> = {
        let client = state.db.primary_read_committed().await?;
        client
            .query(
                "SELECT p.e2e_id FROM standing_order_runs r JOIN interbank_payments p ON p.id = r.interbank_payment_id
                  WHERE r.order_id = $1 AND r.ran_at > now() - interval '1 minute' AND p.status = 'sent'",
                &[&order_id],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    for e2e_id in placed {
        crate::interbank::payments::send_placed(state, e2e_id);
    }
    Ok(())
}
