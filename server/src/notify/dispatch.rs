//! The dispatcher: claims due deliveries on the primary, sends them, and
//! records the outcome in the same transaction. Several servers may run it at
//! once: a recipient's queue (per channel) is owned for a round through an
//! advisory transaction lock, and of it only the oldest deliveries, up to the
//! first one not yet due, are claimed and sent in order (stopping at a
//! failure), so messages arrive in the order of their events. A delivery is
//! sent at least once: a crash between the send and the commit sends it
//! again, with the same event id.
//! After a failover the new primary holds the same rows (synchronous
//! replication), and the dispatcher simply goes on there.
//!
//! Two lanes per recipient and channel, each in order, each its own loop:
//! critical deliveries (security notices, key codes) and the ordinary ones.
//! A round sends a recipient's messages one after another, so a round that
//! holds a busy recipient's money messages takes as long as they do; the
//! critical lane never waits for it. An ordinary SMS / e-mail lane is sent
//! no faster than a provider allows to one number (`pace.rs`); one whose queue
//! grows past a bound gets one digest instead (`digest.rs`).

use std::time::Duration;

use uuid::Uuid;

use super::channels::{record_failure, Channels, Endpoint, Outbound, SendError, CLAIM_WINDOW};
use crate::{config::NotificationsConfig, state::AppState};

/// Deliveries of one recipient and channel claimed in one round.
pub const PER_RECIPIENT: i64 = 16;

/// Which deliveries a loop claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Security notices and key codes: few, and they must not wait.
    Critical,
    /// Everything else (money messages, alerts, webhooks of them).
    Ordinary,
}

impl Lane {
    fn critical(self) -> bool {
        self == Lane::Critical
    }
}

pub async fn run(state: AppState) {
    let config = state.config.notifications.clone();
    let channels = match Channels::from_config(&config, state.config.bank_name(), state.secrets.clone()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("notification channels: {e:#}; nothing will be delivered");
            return;
        }
    };
    // One task: aborting it (shutdown) stops both loops.
    tokio::join!(run_lane(&state, &channels, &config, Lane::Critical), run_lane(&state, &channels, &config, Lane::Ordinary));
}

async fn run_lane(state: &AppState, channels: &Channels, config: &NotificationsConfig, lane: Lane) {
    let mut pace = super::pace::Pace::default();
    let mut tick = tokio::time::interval(Duration::from_millis(config.poll_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match round(state, channels, config, lane, &mut pace).await {
            // A full round: more may be due at once.
            Ok(claimed) if claimed as i64 == config.batch_size => tick.reset_immediately(),
            Ok(_) => {}
            Err(e) => tracing::warn!(?lane, "notification dispatch: {e:#}"),
        }
    }
}

/// One round of one lane: digests first (ordinary lane), then claim, send
/// concurrently, record. Returns how many deliveries it claimed one by one.
pub async fn round(
    state: &AppState,
    channels: &Channels,
    config: &NotificationsConfig,
    lane: Lane,
    pace: &mut super::pace::Pace,
) -> anyhow::Result<usize> {
    let mut client = state.db.primary_read_committed().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let tx = client.transaction().await?;
    let now = std::time::Instant::now();
    if lane == Lane::Ordinary {
        super::digest::send_due(&tx, channels, config, pace, now).await?;
    }
    // Critical notices are never held back by the pace of money messages.
    let (resting_users, resting_channels) = if lane.critical() { (Vec::new(), Vec::new()) } else { pace.resting(now) };
    // "Due" is against the statement's start, not the round's `now()` (its
    // transaction's start): a money message is due from its transfer's start,
    // and one committed after this round began (a group that started and
    // committed meanwhile) is visible here, so against `now()` it looked not
    // yet due and stopped its lane's run, leaving it and the rest for the
    // lane's next token, a refill (3 s) later. A row this statement sees was
    // committed before it started, so a message created due is due here.
    // A recipient's lane (per channel) belongs to one dispatcher for the
    // round: the advisory lock. Of it, the oldest PER_RECIPIENT deliveries are
    // claimed, only as long as every older one is due, so order holds. A
    // lane out of its allowance rests (`pace.rs`).
    let rows = tx
        .query(
            "SELECT d.id, d.event_id, d.channel, d.destination, e.kind, e.payload, d.attempts,
                    d.user_id, e.created_at, w.url, w.secret_enc, w.active, d.critical
               FROM (SELECT q.id FROM (
                        SELECT id, user_id, channel,
                               row_number() OVER queue AS position,
                               bool_and(next_attempt_at <= statement_timestamp()) OVER queue AS due_so_far
                          FROM (SELECT id, user_id, channel, next_attempt_at FROM notification_deliveries
                                 WHERE status = 'pending' AND critical = $5 AND channel = ANY($1)
                                 ORDER BY id LIMIT $4) oldest
                         WHERE (user_id, channel) NOT IN (SELECT r.user_id, r.channel FROM unnest($6::uuid[], $7::text[]) AS r(user_id, channel))
                        WINDOW queue AS (PARTITION BY user_id, channel ORDER BY id)) q
                      WHERE q.position <= $3 AND q.due_so_far
                        AND pg_try_advisory_xact_lock(7272, hashtext(q.user_id::text || q.channel || CASE WHEN $5 THEN '!' ELSE '' END))
                      ORDER BY q.id
                      LIMIT $2) claimed
               JOIN notification_deliveries d ON d.id = claimed.id
               JOIN notification_events e ON e.id = d.event_id
               LEFT JOIN webhook_endpoints w ON d.channel = 'webhook' AND w.id::text = d.destination
              ORDER BY d.id
                FOR UPDATE OF d",
            &[&channels.names(), &config.batch_size, &PER_RECIPIENT, &CLAIM_WINDOW, &lane.critical(), &resting_users, &resting_channels],
        )
        .await?;
    let messages: Vec<Outbound> = rows
        .iter()
        .map(|r| Outbound {
            delivery_id: r.get(0),
            critical: r.get(12),
            event_id: r.get(1),
            channel: r.get(2),
            destination: r.get(3),
            kind: r.get(4),
            payload: r.get(5),
            attempts: r.get(6),
            user_id: r.get(7),
            created_at: r.get(8),
            webhook: r.get::<_, Option<String>>(9).map(|url| Endpoint { url, secret_enc: r.get(10), active: r.get(11) }),
        })
        .collect();
    // Recipients concurrently; each recipient's messages in order, stopping
    // at the first failure (the rest wait for the next round, still in order).
    let mut queues: std::collections::BTreeMap<(Uuid, &str), Vec<&Outbound>> = std::collections::BTreeMap::new();
    for message in &messages {
        queues.entry((message.user_id, message.channel.as_str())).or_default().push(message);
    }
    // Of an ordinary lane, only what its pace allows now; the rest stays
    // pending, in order, for a later round or a digest.
    let mut allowed: Vec<((Uuid, &str), usize)> = Vec::new();
    if !lane.critical() {
        for ((user_id, channel), queue) in queues.iter_mut() {
            queue.truncate(pace.take(now, *user_id, channel, queue.len()));
            if !queue.is_empty() {
                allowed.push(((*user_id, *channel), queue.len()));
            }
        }
        queues.retain(|_, queue| !queue.is_empty());
    }
    let attempted: Vec<Vec<(&Outbound, Result<(), SendError>)>> = futures::future::join_all(queues.into_values().map(|queue| async move {
        let mut done = Vec::with_capacity(queue.len());
        for message in queue {
            let outcome = channels.send(message).await;
            let failed = outcome.is_err();
            done.push((message, outcome));
            if failed {
                break;
            }
        }
        done
    }))
    .await;
    // What the pace allowed but did not go out is given back to it.
    // (Each lane left to send is one list of attempts, in the map's order, as `allowed` is.)
    for (((user_id, channel), allowed), done) in allowed.into_iter().zip(&attempted) {
        let went = done.iter().filter(|(_, outcome)| outcome.is_ok()).count();
        pace.give_back(user_id, channel, allowed - went);
    }
    // The sent ones recorded in one statement (rows locked by this round).
    let mut sent: Vec<i64> = Vec::new();
    for (message, outcome) in attempted.into_iter().flatten() {
        match outcome {
            Ok(()) => {
                sent.push(message.delivery_id);
                metrics::counter!("flexibank_notifications_sent_total", "channel" => message.channel.clone()).increment(1);
            }
            Err(e) => record_failure(&tx, config, message, &e).await?,
        }
    }
    if !sent.is_empty() {
        tx.execute(
            "UPDATE notification_deliveries SET status = 'sent', attempts = attempts + 1, sent_at = now(), last_error = NULL
              WHERE id = ANY($1)",
            &[&sent],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(messages.len())
}
