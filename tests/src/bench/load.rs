//! The API load generator: each virtual client logs in once (MFA), keeps its
//! TLS connection, and sends requests back to back for the duration.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rand::{seq::SliceRandom, Rng};
use serde::Serialize;

use super::stack::BenchStack;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Uniform,
    Zipf,
    Batch,
    Reads,
    /// Uniform transfers while 200 addresses storm the login endpoint.
    LoginStorm,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Uniform => "uniform",
            Shape::Zipf => "zipf",
            Shape::Batch => "batch",
            Shape::Reads => "reads",
            Shape::LoginStorm => "login-storm",
        }
    }
    pub fn parse(s: &str) -> Option<Shape> {
        [Shape::Uniform, Shape::Zipf, Shape::Batch, Shape::Reads, Shape::LoginStorm].into_iter().find(|x| x.name() == s)
    }
}

/// What one client saw.
#[derive(Default)]
struct ClientTally {
    /// (seconds since start, latency µs) per request.
    samples: Vec<(u32, u32)>,
    transfers: u64,
    status_4xx: u64,
    status_5xx: u64,
    from_replica: u64,
    reads: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShapeResult {
    pub shape: String,
    pub clients: usize,
    pub duration_s: f64,
    pub requests: u64,
    pub transfers: u64,
    pub transfers_per_s: f64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub retries_per_transfer: f64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    pub server_cpu_s: f64,
    pub postgres_cpu_s: f64,
    pub replica_share: Option<f64>,
    /// PostgreSQL CPU (primary and replica) per committed transfer, µs.
    pub postgres_cpu_us_per_transfer: Option<f64>,
    /// WAL bytes and full-page images per committed transfer.
    pub wal_bytes_per_transfer: Option<f64>,
    pub wal_fpi_per_transfer: Option<f64>,
    /// p50 and p99 (ms) per second of the run, for the chart.
    pub timeline: Vec<(u32, f64, f64)>,
    /// CPU seconds of the local SMS receiver during the shape (notifications on): a real provider's, not ours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_receiver_cpu_s: Option<f64>,
    /// `login-storm`: what the storm got, and the server's memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StormResult {
    pub addresses: usize,
    pub logins: u64,
    /// Answered 429/503 (shed or rate-limited), with Retry-After.
    pub shed: u64,
    pub slowest_login_ms: f64,
    pub server_rss_before_mb: f64,
    pub server_peak_rss_mb: f64,
    /// 5 s after the storm.
    pub server_rss_after_mb: f64,
}

/// Loopback addresses the storm comes from (127.2.x.y).
const STORM_ADDRESSES: usize = 200;

/// The server process's resident memory (VmRSS), in MB.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())).flatten())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Logins for unknown usernames from each address, one a second (what the
/// per-address limit of 60 a minute lets through, as in the storm),
/// until `deadline`; returns (answers, shed, slowest µs).
fn start_storm(stack: &BenchStack, deadline: Instant) -> Vec<tokio::task::JoinHandle<(u64, u64, u64)>> {
    let ca = std::fs::read(stack.dir.join("tls/ca.pem")).expect("the stack's CA");
    (0..STORM_ADDRESSES)
        .map(|i| {
            let address = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 2, (i / 250) as u8, (i % 250 + 2) as u8));
            let http = reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
                .tls_built_in_root_certs(false)
                .local_address(address)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("storm client");
            let base = stack.base_url.clone();
            tokio::spawn(async move {
                let (mut answers, mut shed, mut slowest_us) = (0u64, 0u64, 0u64);
                // Spread the addresses over the first second, then one a second each.
                let mut next = Instant::now() + Duration::from_millis((i as u64 * 1000) / STORM_ADDRESSES as u64);
                while next < deadline {
                    tokio::time::sleep_until(next.into()).await;
                    next += Duration::from_secs(1);
                    let sent = Instant::now();
                    let body = serde_json::json!({"username": format!("stranger-{i}-{answers}"), "password": "not anybody's password"});
                    let Ok(response) = http.post(format!("{base}/v1/auth/login")).json(&body).send().await else { continue };
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    slowest_us = slowest_us.max(sent.elapsed().as_micros() as u64);
                    answers += 1;
                    shed += matches!(status, 429 | 503) as u64;
                }
                (answers, shed, slowest_us)
            })
        })
        .collect()
}

/// Zipf(s) over n ranks, sampled by inverse CDF.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 1..=n {
            total += 1.0 / (rank as f64).powf(s);
            cdf.push(total);
        }
        for p in &mut cdf {
            *p /= total;
        }
        Zipf { cdf }
    }
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.gen();
        self.cdf.partition_point(|p| *p < u).min(self.cdf.len() - 1)
    }
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn amount(rng: &mut impl Rng) -> String {
    format!("{}.{:02}", rng.gen_range(0..10), rng.gen_range(1..100))
}

pub async fn run(stack: &BenchStack, tokens: &[String], shape: Shape, clients: usize, duration: Duration, batch_items: usize) -> ShapeResult {
    let retries_before = stack.metric("flexibank_serialization_retries_total").await;
    let (server_cpu_before, postgres_cpu_before) = stack.cpu_seconds();
    let receiver_cpu_before = stack.sms_receiver_cpu_seconds();
    let wal_before = stack.wal_written().await.ok();
    let zipf = Arc::new(Zipf::new(stack.all_numbers.len(), 1.1));
    // Zipf ranks map onto a fixed shuffle of the accounts, so hot accounts are spread over the table.
    let mut hot_order = stack.all_numbers.clone();
    hot_order.shuffle(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7));
    let hot_order = Arc::new(hot_order);
    let all_numbers = Arc::new(stack.all_numbers.clone());
    let started = Instant::now();
    let deadline = started + duration;
    let server_pid = stack.server.id();
    let rss_before = rss_mb(server_pid);
    let storm = (shape == Shape::LoginStorm).then(|| start_storm(stack, deadline));
    let peak_rss = Arc::new(std::sync::Mutex::new(rss_before));
    let sampler = {
        let peak_rss = peak_rss.clone();
        tokio::spawn(async move {
            while Instant::now() < deadline {
                let now = rss_mb(server_pid);
                {
                    let mut peak = peak_rss.lock().unwrap();
                    *peak = peak.max(now);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut tasks = Vec::new();
    for client in 0..clients {
        let user = &stack.users[client % stack.users.len()];
        let token = tokens[client % tokens.len()].clone();
        let own = Arc::new(user.accounts.clone());
        let (http, base) = (stack.http.clone(), stack.base_url.clone());
        let (zipf, hot_order, all_numbers) = (zipf.clone(), hot_order.clone(), all_numbers.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = ClientTally::default();
            let mut read_toggle = false;
            while Instant::now() < deadline {
                let request = {
                    let mut rng = rand::thread_rng();
                    let from = own.choose(&mut rng).expect("client owns accounts");
                    let pick_to = |rng: &mut rand::rngs::ThreadRng| loop {
                        let to = match shape {
                            Shape::Zipf => &hot_order[zipf.sample(rng)],
                            _ => all_numbers.choose(rng).unwrap(),
                        };
                        if *to != from.1 {
                            break to.clone();
                        }
                    };
                    match shape {
                        Shape::Uniform | Shape::Zipf | Shape::LoginStorm => http
                            .post(format!("{base}/v1/transfers"))
                            .json(&serde_json::json!({"from_account_id": from.0, "to_account_number": pick_to(&mut rng), "amount": amount(&mut rng)})),
                        Shape::Batch => {
                            let items: Vec<_> = (0..batch_items)
                                .map(|_| {
                                    let from = own.choose(&mut rng).unwrap();
                                    let mut to = all_numbers.choose(&mut rng).unwrap().clone();
                                    while to == from.1 {
                                        to = all_numbers.choose(&mut rng).unwrap().clone();
                                    }
                                    serde_json::json!({"from_account_id": from.0, "to_account_number": to, "amount": amount(&mut rng)})
                                })
                                .collect();
                            http.post(format!("{base}/v1/transfers/batch")).json(&serde_json::json!({ "items": items }))
                        }
                        Shape::Reads => {
                            read_toggle = !read_toggle;
                            if read_toggle {
                                http.get(format!("{base}/v1/accounts/{}", from.0))
                            } else {
                                http.get(format!("{base}/v1/accounts/{}/transactions?limit=20", from.0))
                            }
                        }
                    }
                };
                let request = request.bearer_auth(&token).header("Idempotency-Key", uuid::Uuid::now_v7().to_string());
                let sent = Instant::now();
                let Ok(response) = request.send().await else {
                    tally.status_5xx += 1;
                    continue;
                };
                let status = response.status().as_u16();
                let from_replica = response.headers().get("x-served-by").map(|v| v == "replica").unwrap_or(false);
                let _ = response.bytes().await;
                let latency_us = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                tally.samples.push((sent.duration_since(started).as_secs() as u32, latency_us));
                match status {
                    200..=299 => match shape {
                        Shape::Batch => tally.transfers += batch_items as u64,
                        Shape::Reads => {
                            tally.reads += 1;
                            tally.from_replica += from_replica as u64;
                        }
                        _ => tally.transfers += 1,
                    },
                    400..=499 => tally.status_4xx += 1,
                    _ => tally.status_5xx += 1,
                }
            }
            tally
        }));
    }
    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(task.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = sampler.await;
    let storm = match storm {
        Some(tasks) => {
            let (mut logins, mut shed, mut slowest_us) = (0, 0, 0);
            for task in tasks {
                let (a, s, w) = task.await.expect("storm task");
                logins += a;
                shed += s;
                slowest_us = slowest_us.max(w);
            }
            let peak = *peak_rss.lock().unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            Some(StormResult {
                addresses: STORM_ADDRESSES,
                logins,
                shed,
                slowest_login_ms: slowest_us as f64 / 1000.0,
                server_rss_before_mb: rss_before,
                server_peak_rss_mb: peak.max(rss_mb(server_pid)),
                server_rss_after_mb: rss_mb(server_pid),
            })
        }
        None => None,
    };
    let (server_cpu_after, postgres_cpu_after) = stack.cpu_seconds();
    let sms_receiver_cpu_s = stack.sms_receiver_cpu_seconds().zip(receiver_cpu_before).map(|(after, before)| after - before);
    let retries = stack.metric("flexibank_serialization_retries_total").await - retries_before;
    let wal = match (wal_before, stack.wal_written().await.ok()) {
        (Some(before), Some(after)) => Some((after.0 - before.0, after.1 - before.1)),
        _ => None,
    };

    let mut latencies: Vec<u32> = tallies.iter().flat_map(|t| t.samples.iter().map(|s| s.1)).collect();
    latencies.sort_unstable();
    let seconds = duration.as_secs() as u32 + 1;
    let timeline = (0..seconds)
        .filter_map(|second| {
            let mut bucket: Vec<u32> = tallies
                .iter()
                .flat_map(|t| t.samples.iter().filter(|s| s.0 == second).map(|s| s.1))
                .collect();
            if bucket.is_empty() {
                return None;
            }
            bucket.sort_unstable();
            Some((second, percentile(&bucket, 0.5), percentile(&bucket, 0.99)))
        })
        .collect();
    let transfers: u64 = tallies.iter().map(|t| t.transfers).sum();
    let reads: u64 = tallies.iter().map(|t| t.reads).sum();
    ShapeResult {
        shape: shape.name().into(),
        clients,
        duration_s: elapsed,
        requests: latencies.len() as u64,
        transfers,
        transfers_per_s: transfers as f64 / elapsed,
        requests_per_s: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().map(|l| *l as f64 / 1000.0).unwrap_or(0.0),
        retries_per_transfer: if transfers > 0 { retries / transfers as f64 } else { 0.0 },
        status_4xx: tallies.iter().map(|t| t.status_4xx).sum(),
        status_5xx: tallies.iter().map(|t| t.status_5xx).sum(),
        server_cpu_s: server_cpu_after - server_cpu_before,
        postgres_cpu_s: postgres_cpu_after - postgres_cpu_before,
        postgres_cpu_us_per_transfer: (transfers > 0).then(|| (postgres_cpu_after - postgres_cpu_before) * 1e6 / transfers as f64),
        wal_bytes_per_transfer: wal.filter(|_| transfers > 0).map(|w| w.0 / transfers as f64),
        wal_fpi_per_transfer: wal.filter(|_| transfers > 0).map(|w| w.1 / transfers as f64),
        replica_share: (shape == Shape::Reads && reads > 0).then(|| tallies.iter().map(|t| t.from_replica).sum::<u64>() as f64 / reads as f64),
        timeline,
        sms_receiver_cpu_s,
        storm,
    }
}

