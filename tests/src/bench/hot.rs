//! The `hot` shape (issue 17, "a busy recipient"): 8 clients pay one account as
//! fast as they can while, half-way through, its owner signs in from a new
//! address. What it reports: how long the owner's security notice took to reach
//! the phone, how long after the run's end their latest money SMS arrived, how
//! their backlog went out (digests), and the other customers' commit-to-SMS
//! delays in the same run (they must not slow down).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rand::{seq::SliceRandom, Rng};
use uuid::Uuid;

use super::{load::ShapeResult, stack::BenchStack};

/// Payers, as the issue has it.
pub const CLIENTS: usize = 8;
/// Targets (in `HotResult`'s lines).
const SECURITY_ALERT_MS: f64 = 2_000.0;
const LATEST_MONEY_AFTER_END_MS: f64 = 10_000.0;
/// How long after the run the receiver is watched for the owner's messages.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, serde::Serialize)]
pub struct HotResult {
    pub owner_money_events: i64,
    /// Of those, delivered one by one and inside digests.
    pub owner_sent_alone: i64,
    pub owner_coalesced: i64,
    pub owner_digests: i64,
    pub security_alert_ms: Option<f64>,
    pub latest_money_after_end_ms: Option<f64>,
    /// Everybody else's money SMS in the same run, commit to receiver.
    pub others_events: usize,
    pub others_delivered: usize,
    pub others_p50_ms: Option<f64>,
    pub others_p99_ms: Option<f64>,
}

impl HotResult {
    pub fn lines(&self) -> Vec<String> {
        let met = |ok: bool| if ok { "met" } else { "NOT MET" };
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.0} ms")).unwrap_or_else(|| "never".into());
        vec![
            format!(
                "hot: security notice {} after the sign-in (bar ≤ {SECURITY_ALERT_MS:.0} ms: {})",
                ms(self.security_alert_ms),
                met(self.security_alert_ms.is_some_and(|v| v <= SECURITY_ALERT_MS))
            ),
            format!(
                "hot: latest money SMS {} after the run's end (bar ≤ {LATEST_MONEY_AFTER_END_MS:.0} ms: {})",
                ms(self.latest_money_after_end_ms),
                met(self.latest_money_after_end_ms.is_some_and(|v| v <= LATEST_MONEY_AFTER_END_MS))
            ),
            format!(
                "hot: the owner's {} money events went as {} SMS alone + {} in {} digests; others' SMS p50 {} p99 {} ({} of {} delivered)",
                self.owner_money_events,
                self.owner_sent_alone,
                self.owner_coalesced,
                self.owner_digests,
                ms(self.others_p50_ms),
                ms(self.others_p99_ms),
                self.others_delivered,
                self.others_events
            ),
        ]
    }
}

pub async fn run(stack: &BenchStack, tokens: &[String], duration: Duration) -> anyhow::Result<(ShapeResult, HotResult)> {
    anyhow::ensure!(
        stack.users.len() > CLIENTS && tokens.len() == stack.users.len(),
        "the hot shape needs {} bench users",
        CLIENTS + 1
    );
    let sms = stack
        .sms
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the hot shape needs the SMS receiver (notifications on)"))?;
    let owner = &stack.users[0];
    let hot_account = owner.accounts[0].1.clone();
    let db = stack.superuser("primary").await?;
    let owner_id: Uuid = db.query_one("SELECT id FROM users WHERE username = $1", &[&owner.username]).await?.get(0);
    let (server_cpu_before, postgres_cpu_before) = stack.cpu_seconds();
    let receiver_cpu_before = stack.sms_receiver_cpu_seconds();
    let shape_started = chrono::Utc::now();
    let started = Instant::now();
    let deadline = started + duration;

    let mut payers = Vec::new();
    for client in 1..=CLIENTS {
        let (http, base, token) = (stack.http.clone(), stack.base_url.clone(), tokens[client].clone());
        let own = Arc::new(stack.users[client].accounts.clone());
        let to = hot_account.clone();
        payers.push(tokio::spawn(async move {
            let (mut latencies_us, mut errors_4xx, mut errors_5xx) = (Vec::new(), 0u64, 0u64);
            while Instant::now() < deadline {
                let (from, amount) = {
                    let mut rng = rand::thread_rng();
                    (
                        own.choose(&mut rng).expect("payer owns accounts").0,
                        format!("{}.{:02}", rng.gen_range(0..5), rng.gen_range(1..100)),
                    )
                };
                let sent = Instant::now();
                let response = http
                    .post(format!("{base}/v1/transfers"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", Uuid::now_v7().to_string())
                    .json(&serde_json::json!({"from_account_id": from, "to_account_number": to, "amount": amount}))
                    .send()
                    .await;
                match response.map(|r| r.status().as_u16()) {
                    Ok(200..=299) => latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    Ok(400..=499) => errors_4xx += 1,
                    _ => errors_5xx += 1,
                }
            }
            (latencies_us, errors_4xx, errors_5xx)
        }));
    }

    // Half-way: the owner signs in from an address the bank has not seen for them.
    tokio::time::sleep_until((started + duration / 2).into()).await;
    let ca = std::fs::read(stack.dir.join("tls/ca.pem"))?;
    let new_device = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .tls_built_in_root_certs(false)
        .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 3, 0, 1)))
        .timeout(Duration::from_secs(30))
        .build()?;
    if stack.login_through(&new_device, owner).await.is_err() {
        // The code of this 30 s step was used already (the bench's first sign-in): the next step's.
        tokio::time::sleep(Duration::from_secs(30 - chrono::Utc::now().timestamp() as u64 % 30 + 1)).await;
        stack.login_through(&new_device, owner).await?;
    }

    let mut latencies_us = Vec::new();
    let (mut status_4xx, mut status_5xx) = (0, 0);
    for payer in payers {
        let (l, e4, e5) = payer.await?;
        latencies_us.extend(l);
        status_4xx += e4;
        status_5xx += e5;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ended_at = chrono::Utc::now();
    let (server_cpu_after, postgres_cpu_after) = stack.cpu_seconds();
    let sms_receiver_cpu_s = stack.sms_receiver_cpu_seconds().zip(receiver_cpu_before).map(|(after, before)| after - before);

    // The owner's notice and latest money message, as the receiver got them.
    let received_at = || sms.state.accepted_at();
    let security: Option<(Uuid, chrono::DateTime<chrono::Utc>)> = db
        .query_opt(
            "SELECT id, created_at FROM notification_events WHERE user_id = $1 AND kind = 'security.new_device' AND created_at >= $2 ORDER BY id DESC LIMIT 1",
            &[&owner_id, &shape_started],
        )
        .await?
        .map(|r| (r.get(0), r.get(1)));
    let latest_money = "SELECT coalesce(carrier.event_id, e.id), d.status FROM notification_events e
                          JOIN notification_deliveries d ON d.event_id = e.id AND d.channel = 'sms'
                          LEFT JOIN notification_deliveries carrier ON carrier.id = d.carried_by
                         WHERE e.user_id = $1 AND e.kind LIKE 'money.%' AND e.created_at >= $2
                         ORDER BY e.id DESC LIMIT 1";
    let watch_until = Instant::now() + DRAIN;
    let (security_alert_ms, latest_money_after_end_ms) = loop {
        let received = received_at();
        let security_ms = security.and_then(|(id, created)| received.get(&id.to_string()).map(|at| (*at - created).num_milliseconds() as f64));
        let latest = db.query_opt(latest_money, &[&owner_id, &shape_started]).await?;
        let latest_ms = latest.as_ref().filter(|r| r.get::<_, String>(1) != "pending").and_then(|r| {
            received
                .get(&r.get::<_, Uuid>(0).to_string())
                .map(|at| (*at - ended_at).num_milliseconds().max(0) as f64)
        });
        if (security_ms.is_some() && latest_ms.is_some()) || Instant::now() > watch_until {
            break (security_ms, latest_ms);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let owner_counts = db
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE d.status = 'sent' AND carried.id IS NULL),
                    count(*) FILTER (WHERE d.status = 'coalesced'),
                    count(*) FILTER (WHERE d.status = 'sent' AND carried.id IS NOT NULL)
               FROM notification_events e JOIN notification_deliveries d ON d.event_id = e.id AND d.channel = 'sms'
               LEFT JOIN (SELECT DISTINCT carried_by AS id FROM notification_deliveries WHERE carried_by IS NOT NULL) carried ON carried.id = d.id
              WHERE e.user_id = $1 AND e.kind LIKE 'money.%' AND e.created_at >= $2",
            &[&owner_id, &shape_started],
        )
        .await?;
    // Everybody's backlog out (or the drain's end) before the others' delays are taken.
    while Instant::now() < watch_until {
        let pending: i64 = db
            .query_one("SELECT count(*) FROM notification_deliveries WHERE status = 'pending' AND channel = 'sms'", &[])
            .await?
            .get(0);
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A digest's carrier is itself one of the money events it covers: "alone" excludes carriers.
    let others: Vec<(chrono::DateTime<chrono::Utc>, Uuid)> = db
        .query(
            "SELECT e.created_at, coalesce(carrier.event_id, e.id) FROM notification_events e
               JOIN notification_deliveries d ON d.event_id = e.id AND d.channel = 'sms'
               LEFT JOIN notification_deliveries carrier ON carrier.id = d.carried_by
              WHERE e.user_id <> $1 AND e.kind LIKE 'money.%' AND e.created_at >= $2 AND e.created_at <= $3",
            &[&owner_id, &shape_started, &ended_at],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let received = received_at();
    let mut others_us: Vec<u32> = others
        .iter()
        .filter_map(|(created, delivered_as)| {
            received
                .get(&delivered_as.to_string())
                .map(|at| (*at - *created).num_microseconds().unwrap_or(0).max(0) as u32)
        })
        .collect();
    others_us.sort_unstable();
    let hot = HotResult {
        owner_money_events: owner_counts.get(0),
        owner_sent_alone: owner_counts.get(1),
        owner_coalesced: owner_counts.get(2),
        owner_digests: owner_counts.get(3),
        security_alert_ms,
        latest_money_after_end_ms,
        others_events: others.len(),
        others_delivered: others_us.len(),
        others_p50_ms: (!others_us.is_empty()).then(|| super::load::percentile(&others_us, 0.5)),
        others_p99_ms: (!others_us.is_empty()).then(|| super::load::percentile(&others_us, 0.99)),
    };

    latencies_us.sort_unstable();
    let transfers = latencies_us.len() as u64;
    let result = ShapeResult {
        shape: "hot".into(),
        clients: CLIENTS,
        duration_s: elapsed,
        requests: transfers + status_4xx + status_5xx,
        transfers,
        transfers_per_s: transfers as f64 / elapsed,
        requests_per_s: (transfers + status_4xx + status_5xx) as f64 / elapsed,
        p50_ms: super::load::percentile(&latencies_us, 0.50),
        p95_ms: super::load::percentile(&latencies_us, 0.95),
        p99_ms: super::load::percentile(&latencies_us, 0.99),
        max_ms: latencies_us.last().map(|v| *v as f64 / 1000.0).unwrap_or(0.0),
        retries_per_transfer: 0.0,
        status_4xx,
        status_5xx,
        server_cpu_s: server_cpu_after - server_cpu_before,
        postgres_cpu_s: postgres_cpu_after - postgres_cpu_before,
        replica_share: None,
        postgres_cpu_us_per_transfer: (transfers > 0).then(|| (postgres_cpu_after - postgres_cpu_before) * 1e6 / transfers as f64),
        wal_bytes_per_transfer: None,
        wal_fpi_per_transfer: None,
        timeline: Vec::new(),
        sms_receiver_cpu_s,
        storm: None,
    };
    Ok((result, hot))
}
