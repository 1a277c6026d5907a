//! Digests for a busy recipient. A recipient may be sent 15 ordinary
//! messages in any 30 s on a channel (`pace.rs`, a real provider's rule); one
//! credited 200 times a second would otherwise build a backlog that takes
//! minutes to drain and that every later message queues behind. So when a
//! recipient's ordinary SMS or e-mail lane holds more than `DIGEST_AFTER`
//! messages, or more than the lane may be sent now after spending some of its
//! allowance lately, its leading run of due money messages goes out as one
//! ("37 credits totalling 12400.00 INR since 14:02 UTC"), spending one of the
//! lane's messages, so that a busy lane gets a digest every 3 s. In-app
//! notifications and webhooks keep every event: only the SMS / e-mail
//! deliveries are coalesced, each marked `coalesced` (the last one of the
//! run, which carried the digest, `sent`). Critical notices are another lane
//! (`dispatch::Lane`) and never wait for this.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::{
    channels::{record_failure, Channels, Outbound, CLAIM_WINDOW},
    pace::Pace,
};
use crate::config::NotificationsConfig;

/// Queued ordinary messages of one recipient and channel past which they go as a digest.
pub const DIGEST_AFTER: i64 = 10;
/// Messages one digest covers at most; a longer backlog takes several.
pub const DIGEST_MAX: i64 = 10_000;
/// Lanes digested in one round at most.
const DIGESTS_PER_ROUND: i64 = 32;
/// The oldest pending deliveries a round looks at for busy lanes: a paced
/// backlog (every busy lane holds up to 3 s of its messages) is larger than
/// the one-by-one claim's window, and a lane past the window would wait.
const BUSY_WINDOW: i64 = 4 * CLAIM_WINDOW;

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

/// Sends a digest to each busy lane (in `tx`, the round's transaction; paced as at `now`). Returns how many digests it sent.
pub async fn send_due(tx: &tokio_postgres::Transaction<'_>, channels: &Channels, config: &NotificationsConfig, pace: &mut Pace, now: std::time::Instant) -> anyhow::Result<usize> {
    let digest_channels: Vec<String> = channels.names().into_iter().filter(|c| super::pace::paced(c)).collect();
    if digest_channels.is_empty() {
        return Ok(0);
    }
    // A lane goes as a digest when more waits than it may be sent now: past
    // DIGEST_AFTER for a lane with its whole allowance, past what is left of
    // it for a lane that spent some lately (one at 0 rests: not at all).
    let (paced_users, paced_channels, allowances) = pace.allowances(now);
    let busy = tx
        .query(
            "SELECT w.user_id, w.channel FROM (
                 SELECT user_id, channel, next_attempt_at FROM notification_deliveries
                  WHERE status = 'pending' AND NOT critical AND channel = ANY($1)
                  ORDER BY id LIMIT $2) w
               LEFT JOIN unnest($5::uuid[], $6::text[], $7::bigint[]) AS p(user_id, channel, allowance)
                 ON p.user_id = w.user_id AND p.channel = w.channel
              WHERE coalesce(p.allowance, 1) > 0
              GROUP BY w.user_id, w.channel, p.allowance
             HAVING count(*) > least(coalesce(p.allowance, $3), $3) AND count(*) >= 2 AND bool_and(w.next_attempt_at <= statement_timestamp())
              ORDER BY count(*) DESC
              LIMIT $4",
            &[&digest_channels, &BUSY_WINDOW, &DIGEST_AFTER, &DIGESTS_PER_ROUND, &paced_users, &paced_channels, &allowances],
        )
        .await?;
    // The same lock as the lane's one-by-one claim: one dispatcher owns the lane this round.
    let (busy_users, busy_channels): (Vec<Uuid>, Vec<String>) = busy.iter().map(|lane| (lane.get::<_, Uuid>(0), lane.get::<_, String>(1))).unzip();
    let (owned_users, owned_channels): (Vec<Uuid>, Vec<String>) = tx
        .query(
            "SELECT l.user_id, l.channel FROM unnest($1::uuid[], $2::text[]) AS l(user_id, channel)
              WHERE pg_try_advisory_xact_lock(7272, hashtext(l.user_id::text || l.channel))",
            &[&busy_users, &busy_channels],
        )
        .await?
        .iter()
        .map(|row| (row.get::<_, Uuid>(0), row.get::<_, String>(1)))
        .unzip();
    let mut digests: Vec<(Outbound, Vec<i64>)> = Vec::new();
    for ((user_id, channel), run) in leading_money_runs(tx, &owned_users, &owned_channels).await? {
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
            channel,
            destination: last.destination.clone(),
            kind: "money.digest".into(),
            payload: payload(&run),
            attempts: first.attempts,
        };
        digests.push((message, run.iter().map(|c| c.delivery_id).collect()));
    }
    let outcomes = futures::future::join_all(digests.iter().map(|(message, _)| channels.send(message))).await;
    // Every digest that went out recorded in one statement: each covered
    // delivery `coalesced` with the one that carried it, the carrier `sent`.
    let (mut covered_ids, mut carriers): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    let mut sent = 0;
    for ((message, covered), outcome) in digests.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                let carrier = *covered.last().expect("a digest covers at least two");
                covered_ids.extend(covered);
                carriers.extend(std::iter::repeat(carrier).take(covered.len()));
                pace.take(now, message.user_id, &message.channel, 1);
                sent += 1;
                metrics::counter!("flexibank_notifications_digests_total", "channel" => message.channel.clone()).increment(1);
                metrics::counter!("flexibank_notifications_coalesced_total", "channel" => message.channel.clone()).increment(covered.len() as u64);
            }
            Err(e) => record_failure(tx, config, message, &e).await?,
        }
    }
    if !covered_ids.is_empty() {
        tx.execute(
            "UPDATE notification_deliveries d
                SET status = CASE WHEN d.id = c.carrier THEN 'sent' ELSE 'coalesced' END,
                    carried_by = CASE WHEN d.id = c.carrier THEN NULL ELSE c.carrier END,
                    attempts = d.attempts + 1, sent_at = now(), last_error = NULL
               FROM unnest($1::bigint[], $2::bigint[]) AS c(id, carrier)
              WHERE d.id = c.id AND d.status = 'pending'",
            &[&covered_ids, &carriers],
        )
        .await?;
    }
    Ok(sent)
}

/// Each lane's oldest pending deliveries while they are due money messages,
/// all lanes in one statement (one pass over the backlog, not one per lane).
/// Not locked row by row: the caller owns the lanes for the round (their
/// advisory locks, taken before this statement's snapshot), and the covering
/// UPDATE re-checks `status`. Read lane by lane with row locks, this was
/// 95 µs of database time per transfer in `uniform` (a WAL record per
/// message locked, and a scan of the backlog per lane). "Due" is against the
/// statement's start, as in the one-by-one claim (`dispatch::round` says why).
async fn leading_money_runs(
    tx: &tokio_postgres::Transaction<'_>,
    users: &[Uuid],
    channels: &[String],
) -> anyhow::Result<BTreeMap<(Uuid, String), Vec<Covered>>> {
    let mut runs: BTreeMap<(Uuid, String), Vec<Covered>> = BTreeMap::new();
    if users.is_empty() {
        return Ok(runs);
    }
    let rows = tx
        .query(
            "SELECT q.user_id, q.channel, q.id, q.event_id, q.destination, q.attempts, e.created_at, e.kind,
                    e.payload ->> 'amount', e.payload ->> 'currency', q.due
               FROM (SELECT d.user_id, d.channel, d.id, d.event_id, d.destination, d.attempts,
                            d.next_attempt_at <= statement_timestamp() AS due,
                            row_number() OVER (PARTITION BY d.user_id, d.channel ORDER BY d.id) AS position
                       FROM notification_deliveries d
                      WHERE d.status = 'pending' AND NOT d.critical
                        AND (d.user_id, d.channel) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))) q
               JOIN notification_events e ON e.id = q.event_id
              WHERE q.position <= $3
              ORDER BY q.id",
            &[&users, &channels, &DIGEST_MAX],
        )
        .await?;
    // A lane's run ends at its first message that is not a due money message.
    let mut ended: std::collections::HashSet<(Uuid, String)> = std::collections::HashSet::new();
    for row in &rows {
        let lane: (Uuid, String) = (row.get(0), row.get(1));
        if ended.contains(&lane) {
            continue;
        }
        let (kind, amount, currency, due): (String, Option<String>, Option<String>, bool) = (row.get(7), row.get(8), row.get(9), row.get(10));
        let money = due && (kind == "money.credit" || kind == "money.debit");
        let (true, Some(amount), Some(currency)) = (money, amount.and_then(|a| a.parse::<Decimal>().ok()), currency) else {
            ended.insert(lane);
            continue;
        };
        runs.entry(lane).or_default().push(Covered {
            delivery_id: row.get(2),
            event_id: row.get(3),
            destination: row.get(4),
            attempts: row.get(5),
            created_at: row.get(6),
            credit: kind == "money.credit",
            amount,
            currency,
        });
    }
    Ok(runs)
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

/// "37 credits totalling 12400.00 INR and 2 debits totalling 50.00 INR since 14:02 UTC. Each one is in the app."
/// (`text_of` signs it with the bank's name).
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
    format!("{}{since}. Each one is in the app.", parts.join(" and "))
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
            "3 credits totalling 1000.35 INR and 1 debit totalling 50.00 INR since 14:02 UTC. Each one is in the app."
        );
    }
}
