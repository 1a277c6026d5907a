//! `make bench`: transfers per second through the HTTPS API, side by side
//! with pgbench on the same cluster; `--failover`: kill the primary under
//! load, five times, and time how long writes stop.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Parser;
use flexibank_tests::bench::{
    hot, interbank,
    load::{self, Shape},
    pgbench,
    report::{self, Report},
    stack::{self, BenchStack, StackSpec},
};

#[derive(Parser)]
#[command(name = "flexibank-bench")]
struct Args {
    /// Seconds per shape (and for pgbench).
    #[arg(long, default_value_t = 30)]
    duration_s: u64,
    /// The smoke run: 5 s per shape.
    #[arg(long)]
    quick: bool,
    #[arg(long, default_value_t = 32)]
    clients: usize,
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    #[arg(long, default_value = "uniform,zipf,batch,reads,login-storm,hot,interbank")]
    shapes: String,
    #[arg(long, default_value_t = 100)]
    batch_items: usize,
    #[arg(long)]
    skip_pgbench: bool,
    /// Run with notification events off (`notifications.enabled = false`), to
    /// measure what the outbox costs.
    #[arg(long)]
    no_notifications: bool,
    /// After each shape, print the WAL it wrote by record type (pg_walinspect):
    /// where the replica's work comes from.
    #[arg(long)]
    wal_stats: bool,
    /// Extra postgresql.conf setting for every node, `name=value` (repeatable).
    #[arg(long = "pg-conf", value_parser = parse_setting)]
    pg_conf: Vec<(String, String)>,
    /// Both banks' `interbank.group_linger_ms` in the interbank shape (default: the server's).
    #[arg(long)]
    group_linger_ms: Option<u64>,
    /// After each shape, print the PostgreSQL functions by time spent in
    /// them (needs `--pg-conf track_functions=all`).
    #[arg(long)]
    function_stats: bool,
    /// The server binary to benchmark (release for real numbers).
    #[arg(long, default_value = "target/release/flexibank-server")]
    server_bin: PathBuf,
    /// Where runs and results go.
    #[arg(long, default_value = "var/bench")]
    out_dir: PathBuf,
    /// Kill the primary under load instead (make bench-failover).
    #[arg(long)]
    failover: bool,
    #[arg(long, default_value_t = 5)]
    failover_rounds: usize,
    /// Synchronous replicas for the throughput shapes (the local stack runs 2).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Acknowledgements each commit waits for: `ANY k` of the replicas.
    /// `ANY 1` of two: either replica out of sight blocks automatic
    /// promotion; `ANY 2` of three tolerates one, at the price measured here.
    #[arg(long, default_value_t = 1)]
    sync_quorum: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.duration_s = 5;
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let run_dir = args.out_dir.join(format!("run-{stamp}"));
    let result = if args.failover { failover(&args, &run_dir).await } else { throughput(&args, &run_dir, &stamp).await };
    if result.is_ok() && std::env::var_os("FLEXIBANK_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    result
}

async fn throughput(args: &Args, run_dir: &std::path::Path, stamp: &str) -> anyhow::Result<()> {
    // `interbank` runs last, against a second bank and a switch started for it.
    let interbank = args.shapes.split(',').any(|s| s.trim() == "interbank");
    let hot = args.shapes.split(',').any(|s| s.trim() == "hot");
    let shapes: Vec<Shape> = args
        .shapes
        .split(',')
        .filter(|s| s.trim() != "interbank" && s.trim() != "hot")
        .map(|s| Shape::parse(s.trim()).ok_or_else(|| anyhow::anyhow!("unknown shape {s}")))
        .collect::<anyhow::Result<_>>()?;
    let duration = Duration::from_secs(args.duration_s);
    let wal_segments_ahead = stack::wal_segments_ahead(if hot { duration.max(hot_duration(args)) } else { duration });
    let switch = if interbank {
        println!("starting the consortium's switch…");
        Some(interbank::Switch::start(run_dir, &args.server_bin.with_file_name("flexibank-switch"), &args.pg_conf, wal_segments_ahead).await?)
    } else {
        None
    };
    println!("starting a primary + synchronous replica, the server ({}), {} accounts…", args.server_bin.display(), args.accounts);
    let mut stack = BenchStack::start(StackSpec {
        dir: run_dir,
        server_bin: &args.server_bin,
        replicas: args.replicas,
        auto_failover: false,
        clients: args.clients,
        accounts: args.accounts,
        notifications: !args.no_notifications,
        pg_conf: args.pg_conf.clone(),
        interbank: switch.as_ref().map(|s| s.member_toml(interbank::BANK_A, "Alpha Bank", args.group_linger_ms)),
        wal_segments_ahead,
    })
    .await?;
    set_sync_quorum(&stack, args.replicas, args.sync_quorum).await?;
    let pgbench = if args.skip_pgbench {
        None
    } else {
        println!("pgbench tpcb-like, {} clients, {} s…", args.clients, args.duration_s);
        Some(pgbench::run(&stack, args.clients, duration).await?)
    };
    let mut tokens = Vec::new();
    for user in &stack.users {
        tokens.push(stack.login(user).await?);
    }
    let mut results = Vec::new();
    let mut invariants_ok = true;
    let mut notify = None;
    if args.function_stats {
        stack.superuser("primary").await?.batch_execute("SELECT pg_stat_reset()").await?;
    }
    for shape in shapes {
        stack.settle().await?;
        println!("{} with {} clients for {} s…", shape.name(), args.clients, args.duration_s);
        let shape_started = chrono::Utc::now();
        let lsn_before = if args.wal_stats { Some(current_lsn(&stack).await?) } else { None };
        let result = load::run(&stack, &tokens, shape, args.clients, duration, args.batch_items).await;
        if result.shape == "uniform" {
            if let Some(delays) = stack.notification_delays(shape_started, Duration::from_secs(if args.quick { 5 } else { 60 })).await? {
                println!("NOTIFY {delays}");
                notify = Some(delays);
            }
        }
        if args.function_stats {
            print_function_stats(&stack, result.transfers).await?;
        }
        if let Some(lsn_before) = lsn_before {
            print_wal_stats(&stack, &lsn_before, result.transfers).await?;
        }
        if let Some(storm) = &result.storm {
            println!(
                "STORM {} addresses: {} logins, {} shed (429/503 with Retry-After), slowest login {:.0} ms; server RSS {:.0} MB before, peak {:.0} MB, {:.0} MB 5 s after",
                storm.addresses, storm.logins, storm.shed, storm.slowest_login_ms, storm.server_rss_before_mb, storm.server_peak_rss_mb, storm.server_rss_after_mb
            );
        }
        results.push(result);
        let db = stack.superuser("primary").await?;
        if let Err(broken) = flexibank_server::ledger::check_invariants(&db).await {
            eprintln!("LEDGER INVARIANT BROKEN after {}: {broken:#}", shape.name());
            invariants_ok = false;
        }
    }
    let mut hot_result = None;
    if hot {
        let hot_duration = hot_duration(args);
        stack.settle().await?;
        println!("hot: {} clients paying one account for {} s, its owner signing in from a new address half-way…", hot::CLIENTS, hot_duration.as_secs());
        let (result, deliveries) = hot::run(&stack, &tokens, hot_duration).await?;
        for line in deliveries.lines() {
            println!("{line}");
        }
        println!("HOT {}", serde_json::to_string(&deliveries)?);
        results.push(result);
        hot_result = Some(deliveries);
        let db = stack.superuser("primary").await?;
        if let Err(broken) = flexibank_server::ledger::check_invariants(&db).await {
            eprintln!("LEDGER INVARIANT BROKEN after hot: {broken:#}");
            invariants_ok = false;
        }
    }
    if let Some(switch) = &switch {
        stack.settle().await?;
        let result = interbank_shape(args, run_dir, switch, &stack, &tokens, duration).await?;
        if args.function_stats {
            // Bank A's primary: the payer's side for half the payments, the payee's for the rest.
            print_function_stats(&stack, result.transfers).await?;
            switch.print_statements(result.transfers).await?;
        }
        let ratio = pgbench.as_ref().map(|pg| result.transfers_per_s / pg.tps.max(f64::MIN_POSITIVE));
        if let Some(ratio) = ratio {
            let met = |ok: bool| if ok { "met" } else { "NOT MET" };
            println!(
                "interbank ÷ pgbench = {ratio:.2} (bar ≥ 0.25: {}; aim ≥ 0.5: {}), p99 {:.0} ms (bar ≤ 250: {}; aim ≤ 100: {})",
                met(ratio >= 0.25),
                met(ratio >= 0.5),
                result.p99_ms,
                met(result.p99_ms <= 250.0),
                met(result.p99_ms <= 100.0)
            );
        }
        let db = stack.superuser("primary").await?;
        if let Err(broken) = flexibank_server::ledger::check_invariants(&db).await {
            eprintln!("LEDGER INVARIANT BROKEN after interbank: {broken:#}");
            invariants_ok = false;
        }
        results.push(result);
    }
    // Issue 17's on ÷ off in the same run: the same server restarted with notification events off,
    // uniform again (last, so that nothing before it runs on a server that lost its caches).
    if !args.no_notifications && results.iter().any(|r| r.shape == "uniform") {
        println!("uniform with notifications off (the server restarted without them), {} clients for {} s…", args.clients, args.duration_s);
        stack.restart_without_notifications().await?;
        stack.settle().await?;
        let mut result = load::run(&stack, &tokens, Shape::parse("uniform").expect("a shape"), args.clients, duration, args.batch_items).await;
        result.shape = "uniform-off".into();
        results.push(result);
        let db = stack.superuser("primary").await?;
        if let Err(broken) = flexibank_server::ledger::check_invariants(&db).await {
            eprintln!("LEDGER INVARIANT BROKEN after uniform-off: {broken:#}");
            invariants_ok = false;
        }
    }
    let uniform = results.iter().find(|r| r.shape == "uniform").map(|r| r.transfers_per_s);
    if let (Some(u), Some(storm)) = (results.iter().find(|r| r.shape == "uniform"), results.iter().find(|r| r.shape == "login-storm")) {
        println!(
            "login-storm ÷ uniform: transfers/s {:.2}, p99 {:.2}",
            storm.transfers_per_s / u.transfers_per_s.max(f64::MIN_POSITIVE),
            storm.p99_ms / u.p99_ms.max(f64::MIN_POSITIVE)
        );
    }
    let report = Report {
        started_at: stamp.to_string(),
        machine: report::machine(),
        build_profile: build_profile(&args.server_bin).into(),
        ratio_uniform_to_pgbench: match (&pgbench, uniform) {
            (Some(pg), Some(u)) if pg.tps > 0.0 => Some(u / pg.tps),
            _ => None,
        },
        pgbench,
        shapes: results,
        hot: hot_result,
        invariants_ok,
    };
    report::print_table(&report);
    report::print_targets(&report, !args.no_notifications, notify.as_ref());
    report::write_files(&report, &args.out_dir.join("results"), stamp)?;
    anyhow::ensure!(invariants_ok, "a ledger invariant broke: this benchmark run is a failure");
    let errors: u64 = report.shapes.iter().map(|s| s.status_5xx).sum();
    anyhow::ensure!(errors == 0, "{errors} requests failed with 5xx");
    Ok(())
}

/// The second bank (its own cluster and server), keys at both, the payments
/// both ways, then bank B's ledger and the reconciliation with the switch.
async fn interbank_shape(
    args: &Args,
    run_dir: &std::path::Path,
    switch: &interbank::Switch,
    bank_a: &BenchStack,
    a_tokens: &[String],
    duration: Duration,
) -> anyhow::Result<load::ShapeResult> {
    println!("starting the second bank…");
    let bank_b = BenchStack::start(StackSpec {
        dir: &run_dir.join("bank-b"),
        server_bin: &args.server_bin,
        replicas: args.replicas,
        auto_failover: false,
        clients: args.clients,
        // Its customers only need somewhere to be paid and to pay from.
        accounts: args.clients * 4,
        notifications: !args.no_notifications,
        pg_conf: args.pg_conf.clone(),
        interbank: Some(switch.member_toml(interbank::BANK_B, "Beta Bank", args.group_linger_ms)),
        wal_segments_ahead: stack::wal_segments_ahead(duration),
    })
    .await?;
    bank_b.settle().await?;
    switch.wait_for_members().await?;
    let mut b_tokens = Vec::new();
    for user in &bank_b.users {
        b_tokens.push(bank_b.login(user).await?);
    }
    let a_keys = std::sync::Arc::new(interbank::register_keys(bank_a, a_tokens).await?);
    let b_keys = std::sync::Arc::new(interbank::register_keys(&bank_b, &b_tokens).await?);
    // A fresh bank's first payments fill empty tables, and the plans cached for them then stay until
    // autovacuum's first ANALYZE (a minute): warm up as a bank that has run for a while has, then measure.
    println!("interbank warm-up, {INTERBANK_WARM_UP_S} s, then ANALYZE…");
    interbank::run(
        interbank::Side { bank: bank_a, tokens: a_tokens, payee_keys: b_keys.clone() },
        interbank::Side { bank: &bank_b, tokens: &b_tokens, payee_keys: a_keys.clone() },
        args.clients,
        Duration::from_secs(INTERBANK_WARM_UP_S),
    )
    .await;
    for db in [bank_a.superuser("primary").await?, bank_b.superuser("primary").await?] {
        db.batch_execute("ANALYZE").await?;
    }
    switch.analyze().await?;
    if args.function_stats {
        let db = bank_a.superuser("primary").await?;
        db.batch_execute("SELECT pg_stat_reset()").await?;
        report::reset_statements(&db).await?;
        switch.reset_statements().await?;
    }
    let lsn_before = if args.wal_stats { Some(current_lsn(bank_a).await?) } else { None };
    println!("interbank with {} clients for {} s…", args.clients, duration.as_secs());
    let result = interbank::run(
        interbank::Side { bank: bank_a, tokens: a_tokens, payee_keys: b_keys },
        interbank::Side { bank: &bank_b, tokens: &b_tokens, payee_keys: a_keys },
        args.clients,
        duration,
    )
    .await;
    if let Some(since) = &lsn_before {
        // Bank A: the payer's side of half the payments, the payee's of the rest.
        print_wal_stats(bank_a, since, result.transfers).await?;
    }
    // Decisions still on their way are applied within a second or two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let db = bank_b.superuser("primary").await?;
    if let Err(broken) = flexibank_server::ledger::check_invariants(&db).await {
        anyhow::bail!("LEDGER INVARIANT BROKEN at the second bank: {broken:#}");
    }
    anyhow::ensure!(switch.reconciles().await?, "the banks' settlement accounts do not match their positions at the switch");
    Ok(result)
}

/// Seconds of payments before the measured run (not counted).
const INTERBANK_WARM_UP_S: u64 = 5;

/// 60 s as issue 17 has it (10 s with --quick): long enough for a backlog to build.
fn hot_duration(args: &Args) -> Duration {
    Duration::from_secs(if args.quick { 10 } else { 60 })
}

/// The server build's profile as its path names it (`target/release/…`,
/// `target/debug/…`); a binary copied elsewhere is `unknown`, not guessed.
fn build_profile(server_bin: &std::path::Path) -> &'static str {
    let named = |profile: &str| server_bin.components().any(|c| c.as_os_str() == profile);
    if named("release") {
        "release"
    } else if named("debug") {
        "debug"
    } else {
        "unknown"
    }
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once('=').ok_or("expected name=value")?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

/// Self time per function call and per transfer since the last reset, then reset.
async fn print_function_stats(stack: &BenchStack, transfers: u64) -> anyhow::Result<()> {
    let db = stack.superuser("primary").await?;
    let rows = db
        .query(
            "SELECT funcname, calls::float8, self_time, total_time FROM pg_stat_user_functions ORDER BY self_time DESC LIMIT 15",
            &[],
        )
        .await?;
    let per = transfers.max(1) as f64;
    println!("PostgreSQL functions, per transfer ({transfers} transfers):");
    for row in rows {
        let (name, calls, self_ms, total_ms): (String, f64, f64, f64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        println!("  {name:<28} {:>6.2} calls {:>8.1} µs self {:>8.1} µs total", calls / per, self_ms * 1000.0 / per, total_ms * 1000.0 / per);
    }
    db.batch_execute("SELECT pg_stat_reset()").await?;
    // With pg_stat_statements loaded, the statements inside them too.
    report::print_statements(&db, "Statements, per transfer", transfers).await?;
    Ok(())
}

async fn current_lsn(stack: &BenchStack) -> anyhow::Result<String> {
    let db = stack.superuser("primary").await?;
    Ok(db.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0))
}

/// The WAL written since `since`, by record type, per transfer.
async fn print_wal_stats(stack: &BenchStack, since: &str, transfers: u64) -> anyhow::Result<()> {
    let db = stack.superuser("primary").await?;
    db.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect").await?;
    let until = current_lsn(stack).await?;
    let rows = db
        .query(
            "SELECT \"resource_manager/record_type\", count::float8, combined_size::float8, fpi_size::float8
               FROM pg_get_wal_stats($1::text::pg_lsn, $2::text::pg_lsn, true)
              ORDER BY combined_size DESC LIMIT 20",
            &[&since, &until],
        )
        .await?;
    let per = transfers.max(1) as f64;
    println!("WAL by record type, per transfer ({transfers} transfers):");
    for row in rows {
        let (kind, count, bytes, fpi): (String, f64, f64, f64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        println!("  {kind:<28} {:>7.2} records {:>8.0} bytes ({:.0} in FPI)", count / per, bytes / per, fpi / per);
    }
    Ok(())
}

/// 16 clients transfer while the primary's postmaster is killed; the pool
/// promotes automatically; the old primary is rewound and rejoins; again.
async fn failover(args: &Args, run_dir: &std::path::Path) -> anyhow::Result<()> {
    const CLIENTS: usize = 16;
    let stack = Arc::new(
        BenchStack::start(StackSpec {
            dir: run_dir,
            server_bin: &args.server_bin,
            replicas: 2,
            auto_failover: true,
            clients: CLIENTS,
            accounts: 1_000,
            notifications: true,
            pg_conf: Vec::new(),
            interbank: None,
            // The failover bench measures a kill's outage, not a shape's throughput.
            wal_segments_ahead: 0,
        })
        .await?,
    );
    let mut tokens = Vec::new();
    for user in &stack.users {
        tokens.push(stack.login(user).await?);
    }
    let acknowledged: Arc<Mutex<HashMap<String, uuid::Uuid>>> = Default::default();
    let current: Arc<Mutex<Round>> = Default::default();
    let unavailable = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for (client, token) in tokens.iter().enumerate().take(CLIENTS) {
        let (stack, token) = (stack.clone(), token.clone());
        let (acknowledged, current, unavailable, stop) = (acknowledged.clone(), current.clone(), unavailable.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let user = &stack.users[client];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = uuid::Uuid::now_v7().to_string();
                let body = {
                    use rand::seq::SliceRandom;
                    let mut rng = rand::thread_rng();
                    let from = user.accounts.choose(&mut rng).unwrap();
                    let mut to = stack.all_numbers.choose(&mut rng).unwrap().clone();
                    while to == from.1 {
                        to = stack.all_numbers.choose(&mut rng).unwrap().clone();
                    }
                    serde_json::json!({"from_account_id": from.0, "to_account_number": to, "amount": "1.00"})
                };
                // Retry with the same key until it lands: exactly once, whatever happens.
                loop {
                    let sent = Instant::now();
                    let response = stack
                        .http
                        .post(format!("{}/v1/transfers", stack.base_url))
                        .bearer_auth(&token)
                        .header("Idempotency-Key", &key)
                        .json(&body)
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let v: serde_json::Value = r.json().await.unwrap_or_default();
                            if let Some(id) = v["id"].as_str().and_then(|s| s.parse().ok()) {
                                acknowledged.lock().unwrap().insert(key.clone(), id);
                            }
                            let mut current = current.lock().unwrap();
                            if current.killed_at.is_some_and(|killed| sent >= killed) && current.first_write.is_none() {
                                current.first_write = Some(sent);
                            }
                            break;
                        }
                        _ => {
                            unavailable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }
    let mut kill_to_write = Vec::new();
    let mut current_primary = "primary".to_string();
    for round in 1..=args.failover_rounds {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let pid = stack.cluster.0.postmaster_pid(&current_primary).ok_or_else(|| anyhow::anyhow!("{current_primary} not running"))?;
        let killed = Instant::now();
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // Backends of a killed postmaster may still finish a commit for a few
        // milliseconds; only writes sent after that count as "writes again".
        *current.lock().unwrap() = Round { killed_at: Some(killed + DYING_PRIMARY_GRACE), first_write: None };
        let started = Instant::now();
        let first = loop {
            if let Some(at) = current.lock().unwrap().first_write {
                break at;
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "round {round}: no write accepted within 60 s of the kill");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let seconds = first.duration_since(killed).as_secs_f64();
        kill_to_write.push(seconds);
        let new_primary = loop {
            let status = stack.cluster.0.status().await?;
            if let Some(node) = status.iter().find(|n| n.role == "primary" && n.name != current_primary) {
                break node.name.clone();
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "round {round}: no new primary within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!("round {round}: killed {current_primary}, {new_primary} took writes after {seconds:.2} s; rewinding {current_primary}…");
        stack.cluster.0.rejoin(&current_primary, true).await?;
        current_primary = new_primary;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await?;
    }
    // Every acknowledged transfer is in the ledger exactly once, and the ledger is whole.
    let ids: Vec<uuid::Uuid> = acknowledged.lock().unwrap().values().copied().collect();
    let db = stack.superuser(&current_primary).await?;
    let found: i64 = db.query_one("SELECT count(*) FROM transfers WHERE id = ANY($1)", &[&ids]).await?.get(0);
    flexibank_server::ledger::check_invariants(&db).await?;
    kill_to_write.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = kill_to_write[kill_to_write.len() / 2];
    let worst = *kill_to_write.last().unwrap();
    println!(
        "failover: {} rounds, kill to first accepted write median {median:.2} s, worst {worst:.2} s; {} retried answers (503 and the like); {} of {} acknowledged transfers found",
        kill_to_write.len(),
        unavailable.load(std::sync::atomic::Ordering::Relaxed),
        found,
        ids.len()
    );
    println!(
        "BENCH {}",
        serde_json::json!({"failover": {"rounds": kill_to_write.len(), "kill_to_write_s": kill_to_write, "median_s": median, "worst_s": worst,
            "retried_answers": unavailable.load(std::sync::atomic::Ordering::Relaxed), "acknowledged": ids.len(), "found": found}})
    );
    anyhow::ensure!(found as usize == ids.len(), "acknowledged transfers are missing from the ledger");
    Ok(())
}

/// `synchronous_standby_names = 'ANY k (replica1, …)'` on the primary, and
/// waits until every replica is a quorum member.
async fn set_sync_quorum(stack: &BenchStack, replicas: usize, k: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=replicas).contains(&k),
        "--sync-quorum must be between 1 and --replicas"
    );
    let primary = stack.superuser("primary").await?;
    if replicas > 1 || k > 1 {
        let names: Vec<String> = (1..=replicas).map(|i| format!("\"replica{i}\"")).collect();
        let setting = format!("ANY {k} ({})", names.join(", "));
        primary
            .batch_execute(&format!(
                "ALTER SYSTEM SET synchronous_standby_names = '{setting}'"
            ))
            .await?;
        primary.batch_execute("SELECT pg_reload_conf()").await?;
        let started = Instant::now();
        loop {
            let members: i64 = primary
                .query_one(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'",
                    &[],
                )
                .await?
                .get(0);
            if members as usize == replicas {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "replicas did not join the quorum {setting}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let setting: String = primary
        .query_one("SHOW synchronous_standby_names", &[])
        .await?
        .get(0);
    println!("synchronous_standby_names = '{setting}' ({replicas} replicas)");
    Ok(())
}

/// See the failover loop: how long a killed primary's backends may still commit.
const DYING_PRIMARY_GRACE: Duration = Duration::from_millis(100);

/// The current failover round: when the primary was killed, and when the
/// first write sent after that was accepted.
#[derive(Default)]
struct Round {
    killed_at: Option<Instant>,
    first_write: Option<Instant>,
}
