//! Digests for a busy recipient. A real SMS provider delivers to one number at
//! about one message a second (Twilio queues the rest for hours), and a person
//! cannot read faster; a recipient credited 200 times a second would otherwise
//! build a backlog that takes minutes to drain and that every later message,
//! however urgent, queues behind. So when a recipient's ordinary SMS or e-mail
//! lane holds more than `DIGEST_AFTER` messages, its leading run of due money
//! messages goes out as one ("37 credits totalling 12400.00 INR since 14:02
//! UTC"), and the lane then rests for `REST` so that the next digest gathers
//! what arrives meanwhile. In-app notifications and webhooks keep every event:
//! only the SMS / e-mail deliveries are coalesced, each marked `coalesced`
//! (the last one of the run, which carried the digest, `sent`). Critical
//! notices are another lane (`dispatch::Lane`) and never wait for this.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::dispatch::{record_failure, Channels, Outbound, CLAIM_WINDOW};
use crate::config::NotificationsConfig;

/// Queued ordinary messages of one recipient and channel past which they go as a digest.
pub const DIGEST_AFTER: i64 = 10;
/// Messages one digest covers at most; a longer backlog takes several.
pub const DIGEST_MAX: i64 = 10_000;
/// Lanes digested in one round at most.
const DIGESTS_PER_ROUND: i64 = 32;
/// After a digest a lane sends nothing ordinary for this long (a provider's rate to one number).
pub const REST: Duration = Duration::from_secs(1);

/// The lanes this dispatcher sent a digest to lately. At most
/// `DIGESTS_PER_ROUND` are added per round and each is forgotten after `REST`.
#[derive(Default)]
pub struct Recent {
    sent_at: HashMap<(Uuid, String), Instant>,
}

impl Recent {
    /// The (recipient, channel) lanes still resting, as two arrays for SQL.
    pub fn resting(&mut self) -> (Vec<Uuid>, Vec<String>) {
        let now = Instant::now();
        self.sent_at.retain(|_, at| now.duration_since(*at) < REST);
        self.sent_at.keys().map(|(user, channel)| (*user, channel.clone())).unzip()
    }
}

/// One money message a digest may cover.
struct Covered {
    delivery_id: i64,
    event_id: Uuid,
    destination: String,
    attempts: i32,
    created_at: chrono::DateTime<chrono::Utc>,
    credit: bool,
    amount: Decimal,
    currency: String,
}

/// Sends a digest to each busy lane (in `tx`, the round's transaction). Returns how many digests it sent.
pub async fn send_due(tx: &tokio_postgres::Transaction<'_>, channels: &Channels, config: &NotificationsConfig, recent: &mut Recent) -> anyhow::Result<usize> {
    let digest_channels: Vec<String> = channels.names().into_iter().filter(|c| c == "sms" || c == "email").collect();
    if digest_channels.is_empty() {
        return Ok(0);
    }
    let (resting_users, resting_channels) = recent.resting();
    let busy = tx
        .query(
            "SELECT w.user_id, w.channel FROM (
                 SELECT user_id, channel, next_attempt_at FROM notification_deliveries
                  WHERE status = 'pending' AND NOT critical AND channel = ANY($1)
                  ORDER BY id LIMIT $2) w
              WHERE (w.user_id, w.channel) NOT IN (SELECT r.user_id, r.channel FROM unnest($5::uuid[], $6::text[]) AS r(user_id, channel))
              GROUP BY w.user_id, w.channel
             HAVING count(*) > $3 AND bool_and(w.next_attempt_at <= now())
              ORDER BY count(*) DESC
              LIMIT $4",
            &[
                &digest_channels,
                &CLAIM_WINDOW,
                &DIGEST_AFTER,
                &DIGESTS_PER_ROUND,
                &resting_users,
                &resting_channels,
            ],
        )
        .await?;
    let mut digests: Vec<(Outbound, Vec<i64>)> = Vec::new();
    for lane in &busy {
        let (user_id, channel): (Uuid, String) = (lane.get(0), lane.get(1));
        // The same lock as the lane's one-by-one claim: one dispatcher owns the lane this round.
        let owned: bool = tx
            .query_one(
                "SELECT pg_try_advisory_xact_lock(7272, hashtext($1::uuid::text || $2::text))",
                &[&user_id, &channel],
            )
            .await?
            .get(0);
        if !owned {
            continue;
        }
        let run = leading_money_run(tx, user_id, &channel).await?;
        if run.len() < 2 {
            // Something else heads the lane (an alert, a message not due yet): it goes first, one by one.
            continue;
        }
        let (first, last) = (&run[0], &run[run.len() - 1]);
        let message = Outbound {
            // A failure is recorded on the lane's head, which then waits for its retry: order holds.
            delivery_id: first.delivery_id,
            critical: false,
            // The latest event: a receiver that de-duplicates by it drops a repeat of this digest.
            event_id: last.event_id,
            user_id,
            created_at: last.created_at,
            webhook: None,
            channel: channel.clone(),
            destination: last.destination.clone(),
            kind: "money.digest".into(),
            payload: payload(&run),
            attempts: first.attempts,
        };
        digests.push((message, run.iter().map(|c| c.delivery_id).collect()));
    }
    let outcomes = futures::future::join_all(digests.iter().map(|(message, _)| channels.send(message))).await;
    let mut sent = 0;
    for ((message, covered), outcome) in digests.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                let carrier = *covered.last().expect("a digest covers at least two");
                tx.execute(
                    "UPDATE notification_deliveries
                        SET status = CASE WHEN id = $2 THEN 'sent' ELSE 'coalesced' END,
                            carried_by = CASE WHEN id = $2 THEN NULL ELSE $2 END,
                            attempts = attempts + 1, sent_at = now(), last_error = NULL
                      WHERE id = ANY($1) AND status = 'pending'",
                    &[covered, &carrier],
                )
                .await?;
                recent.sent_at.insert((message.user_id, message.channel.clone()), Instant::now());
                sent += 1;
                metrics::counter!("flexibank_notifications_digests_total", "channel" => message.channel.clone()).increment(1);
                metrics::counter!("flexibank_notifications_coalesced_total", "channel" => message.channel.clone()).increment(covered.len() as u64);
            }
            Err(e) => record_failure(tx, config, message, &e).await?,
        }
    }
    Ok(sent)
}

/// The lane's oldest pending deliveries while they are due money messages, locked.
async fn leading_money_run(tx: &tokio_postgres::Transaction<'_>, user_id: Uuid, channel: &str) -> anyhow::Result<Vec<Covered>> {
    let rows = tx
        .query(
            "SELECT d.id, d.event_id, d.destination, d.attempts, e.created_at, e.kind, e.payload, d.next_attempt_at <= now()
               FROM notification_deliveries d JOIN notification_events e ON e.id = d.event_id
              WHERE d.status = 'pending' AND NOT d.critical AND d.user_id = $1 AND d.channel = $2
              ORDER BY d.id LIMIT $3
                FOR UPDATE OF d",
            &[&user_id, &channel, &DIGEST_MAX],
        )
        .await?;
    let mut run = Vec::new();
    for row in &rows {
        let (kind, payload, due): (String, serde_json::Value, bool) = (row.get(5), row.get(6), row.get(7));
        let field = |k: &str| payload.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
        let amount = field("amount").and_then(|a| a.parse::<Decimal>().ok());
        let (Some(amount), Some(currency)) = (amount, field("currency")) else {
            break;
        };
        if !due || !(kind == "money.credit" || kind == "money.debit") {
            break;
        }
        run.push(Covered {
            delivery_id: row.get(0),
            event_id: row.get(1),
            destination: row.get(2),
            attempts: row.get(3),
            created_at: row.get(4),
            credit: kind == "money.credit",
            amount,
            currency,
        });
    }
    Ok(run)
}

/// `{"count", "since", "totals": [{"currency", "credits", "credited", "debits", "debited"}]}`, amounts as decimal strings.
fn payload(run: &[Covered]) -> serde_json::Value {
    let mut totals: BTreeMap<&str, (u64, Decimal, u64, Decimal)> = BTreeMap::new();
    for c in run {
        let t = totals.entry(c.currency.as_str()).or_default();
        if c.credit {
            t.0 += 1;
            t.1 += c.amount;
        } else {
            t.2 += 1;
            t.3 += c.amount;
        }
    }
    json!({
        "count": run.len(),
        "since": run[0].created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "totals": totals.iter().map(|(currency, (credits, credited, debits, debited))| json!({
            "currency": currency, "credits": credits, "credited": credited.to_string(), "debits": debits, "debited": debited.to_string(),
        })).collect::<Vec<_>>(),
    })
}

/// "FlexiBank: 37 credits totalling 12400.00 INR and 2 debits totalling 50.00 INR since 14:02 UTC. Each one is in the app."
pub fn text(payload: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    for t in payload.get("totals").and_then(serde_json::Value::as_array).into_iter().flatten() {
        let currency = t.get("currency").and_then(serde_json::Value::as_str).unwrap_or("");
        for (count, total, one, many) in [("credits", "credited", "credit", "credits"), ("debits", "debited", "debit", "debits")] {
            let n = t.get(count).and_then(serde_json::Value::as_u64).unwrap_or(0);
            if n > 0 {
                let sum = t.get(total).and_then(serde_json::Value::as_str).unwrap_or("");
                parts.push(format!("{n} {} totalling {sum} {currency}", if n == 1 { one } else { many }));
            }
        }
    }
    let since = payload
        .get("since")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc).format(" since %H:%M UTC").to_string())
        .unwrap_or_default();
    format!("FlexiBank: {}{since}. Each one is in the app.", parts.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(credit: bool, amount: &str) -> Covered {
        Covered {
            delivery_id: 1,
            event_id: Uuid::nil(),
            destination: String::new(),
            attempts: 0,
            created_at: chrono::DateTime::parse_from_rfc3339("2026-11-30T14:02:09Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            credit,
            amount: amount.parse().unwrap(),
            currency: "INR".into(),
        }
    }

    #[test]
    fn a_digest_counts_and_sums_credits_and_debits_exactly() {
        let run = [covered(true, "0.10"), covered(true, "0.20"), covered(false, "50.00"), covered(true, "1000.05")];
        let p = payload(&run);
        assert_eq!(p["count"], 4);
        assert_eq!(p["totals"][0]["credited"], "1000.35", "decimal, not float: 0.1 + 0.2 + 1000.05");
        assert_eq!(
            text(&p),
            "FlexiBank: 3 credits totalling 1000.35 INR and 1 debit totalling 50.00 INR since 14:02 UTC. Each one is in the app."
        );
    }
}
