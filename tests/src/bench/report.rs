//! The report: a table on stdout, a `BENCH {json}` line, a JSON file and a
//! PNG chart of latency over time.

use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use super::load::ShapeResult;

#[derive(Debug, Serialize)]
pub struct PgbenchResult {
    pub clients: usize,
    pub duration_s: u64,
    pub scale: u32,
    pub tps: f64,
    pub latency_avg_ms: Option<f64>,
    /// PostgreSQL CPU (primary and replica) per transaction, µs.
    pub postgres_cpu_us_per_tx: f64,
    pub wal_bytes_per_tx: Option<f64>,
    pub wal_fpi_per_tx: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub started_at: String,
    pub machine: String,
    pub build_profile: String,
    pub pgbench: Option<PgbenchResult>,
    pub shapes: Vec<ShapeResult>,
    /// API uniform transfers/s ÷ pgbench tpcb-like TPS.
    pub ratio_uniform_to_pgbench: Option<f64>,
    /// The `hot` shape's deliveries to its busy recipient and to everybody else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hot: Option<super::hot::HotResult>,
    pub invariants_ok: bool,
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    format!("{cores} cores ({cpu}), {mem_gib:.0} GiB")
}

pub fn print_table(report: &Report) {
    println!();
    if let Some(pg) = &report.pgbench {
        println!(
            "pgbench -M prepared -b tpcb-like, scale {}, {} clients, {} s: {:.0} TPS; per transaction {:.0} µs postgres CPU, {:.0} WAL bytes, {:.2} FPI",
            pg.scale, pg.clients, pg.duration_s, pg.tps, pg.postgres_cpu_us_per_tx,
            pg.wal_bytes_per_tx.unwrap_or(f64::NAN), pg.wal_fpi_per_tx.unwrap_or(f64::NAN)
        );
    }
    println!(
        "{:<8} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>6} {:>9} {:>9} {:>8}",
        "shape", "xfers/s", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "retry/xf", "4xx", "5xx", "srv cpu", "pg cpu", "replica"
    );
    for s in &report.shapes {
        println!(
            "{:<8} {:>10.0} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>9.3} {:>6} {:>6} {:>8.1}s {:>8.1}s {:>8}",
            s.shape,
            s.transfers_per_s,
            s.requests_per_s,
            s.p50_ms,
            s.p95_ms,
            s.p99_ms,
            s.max_ms,
            s.retries_per_transfer,
            s.status_4xx,
            s.status_5xx,
            s.server_cpu_s,
            s.postgres_cpu_s,
            s.replica_share.map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_else(|| "-".into())
        );
    }
    for s in report.shapes.iter().filter(|s| s.transfers > 0) {
        println!(
            "{:<8} per transfer: {:.0} µs postgres CPU, {:.0} WAL bytes, {:.2} FPI{}",
            s.shape,
            s.postgres_cpu_us_per_transfer.unwrap_or(f64::NAN),
            s.wal_bytes_per_transfer.unwrap_or(f64::NAN),
            s.wal_fpi_per_transfer.unwrap_or(f64::NAN),
            // The local Twilio-shaped receiver shares these two cores; a real provider would not.
            s.sms_receiver_cpu_s
                .map(|cpu_s| format!("; the SMS receiver {cpu_s:.2} s CPU ({:.1} µs per transfer)", cpu_s * 1e6 / s.transfers as f64))
                .unwrap_or_default()
        );
    }
    if let Some(ratio) = report.ratio_uniform_to_pgbench {
        println!("API uniform transfers/s ÷ pgbench TPS = {ratio:.2}");
    }
    println!("BENCH {}", serde_json::to_string(report).expect("report serializes"));
}

pub fn write_files(report: &Report, dir: &Path, stamp: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("{stamp}.json")), serde_json::to_vec_pretty(report)?)?;
    chart(report, &dir.join(format!("{stamp}.png")))?;
    println!("wrote {}/{stamp}.json and .png", dir.display());
    Ok(())
}

const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn chart(report: &Report, path: &Path) -> anyhow::Result<()> {
    // ab_glyph needs a font registered once; Debian's fonts-dejavu-core has one.
    let font: &'static [u8] = Box::leak(std::fs::read(FONT_PATH)?.into_boxed_slice());
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, font);
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_s = report.shapes.iter().flat_map(|s| s.timeline.iter().map(|t| t.0)).max().unwrap_or(1) + 1;
    let max_ms = report.shapes.iter().flat_map(|s| s.timeline.iter().map(|t| t.2)).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("FlexiBank API latency over time (p50 solid, p99 thin)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0u32..max_s, 0f64..max_ms)?;
    chart.configure_mesh().x_desc("seconds into the run").y_desc("latency (ms)").label_style(("sans-serif", 14)).draw()?;
    let colors = [RED, BLUE, GREEN, MAGENTA];
    for (i, shape) in report.shapes.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(shape.timeline.iter().map(|t| (t.0, t.1)), color.stroke_width(3)))?
            .label(format!("{} p50", shape.shape))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        chart.draw_series(LineSeries::new(shape.timeline.iter().map(|t| (t.0, t.2)), color.stroke_width(1)))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 14)).draw()?;
    root.present()?;
    Ok(())
}

/// With pg_stat_statements loaded (`--pg-conf shared_preload_libraries=pg_stat_statements
/// --pg-conf pg_stat_statements.track=all`): the statements of `db`'s database by time, per
/// `count` (transfers, payments), under `title`; then resets them. Without it, nothing.
/// `FLEXIBANK_BENCH_STATEMENTS` sets how many (25).
pub async fn print_statements(db: &tokio_postgres::Client, title: &str, count: u64) -> anyhow::Result<()> {
    let shown: i64 = std::env::var("FLEXIBANK_BENCH_STATEMENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(25);
    if !statements_loaded(db).await {
        return Ok(());
    }
    let Ok(rows) = db
        .query(
            "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), calls::float8, total_exec_time, total_plan_time, plans::float8
               FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT $1",
            &[&shown],
        )
        .await
    else {
        return Ok(());
    };
    let per = count.max(1) as f64;
    println!("{title}:");
    for row in rows {
        let (query, calls, exec_ms, plan_ms, plans): (String, f64, f64, f64, f64) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        println!(
            "  {:>6.2} calls {:>8.1} µs exec {:>6.1} µs plan {:>6.2} plans  {query}",
            calls / per,
            exec_ms * 1000.0 / per,
            plan_ms * 1000.0 / per,
            plans / per
        );
    }
    db.batch_execute("SELECT pg_stat_statements_reset()").await?;
    Ok(())
}

/// Whether pg_stat_statements can be read: its extension is created where it
/// is preloaded. Without the preload the extension can still be created, and
/// then every read of it fails.
pub async fn statements_loaded(db: &tokio_postgres::Client) -> bool {
    let preloaded = db
        .query_one("SELECT current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'", &[])
        .await
        .is_ok_and(|row| row.get::<_, bool>(0));
    preloaded && db.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").await.is_ok()
}

/// Forgets the statements seen so far (the set-up's), where pg_stat_statements is loaded.
pub async fn reset_statements(db: &tokio_postgres::Client) -> anyhow::Result<()> {
    if statements_loaded(db).await {
        db.batch_execute("SELECT pg_stat_statements_reset()").await?;
    }
    Ok(())
}

/// Issue 17's targets, each with met / NOT MET, so that later work that adds
/// cost to every movement shows at once what it took. `notify`: the uniform
/// shape's commit-to-SMS delays (None with notifications off).
pub fn print_targets(report: &Report, notifications: bool, notify: Option<&serde_json::Value>) {
    let met = |ok: bool| if ok { "met" } else { "NOT MET" };
    let shape = |name: &str| report.shapes.iter().find(|s| s.shape == name);
    let pgbench = report.pgbench.as_ref().map(|p| p.tps).filter(|tps| *tps > 0.0);
    println!("targets (issue 17):");
    if let (Some(u), Some(pg)) = (shape("uniform"), pgbench) {
        let ratio = u.transfers_per_s / pg;
        let (bar, aim) = if notifications { (1.2, 1.5) } else { (2.0, 2.0) };
        let mode = if notifications { "on" } else { "off" };
        println!(
            "  uniform, notifications {mode}: {ratio:.2}× pgbench (bar ≥ {bar}: {}; aim ≥ {aim}: {}), p99 {:.1} ms (bar ≤ 25: {})",
            met(ratio >= bar),
            met(ratio >= aim),
            u.p99_ms,
            met(u.p99_ms <= 25.0)
        );
    }
    if let Some(n) = notify {
        let p99 = n["p99_ms"].as_f64();
        let left = n["events"].as_u64().unwrap_or(0).saturating_sub(n["delivered"].as_u64().unwrap_or(0));
        println!(
            "  commit → SMS p99 {} (bar ≤ 500 ms: {}), not delivered at the end: {left} (bar 0: {})",
            p99.map(|v| format!("{v:.0} ms")).unwrap_or_else(|| "-".into()),
            met(p99.is_some_and(|v| v <= 500.0)),
            met(left == 0)
        );
    }
    match (shape("uniform"), shape("uniform-off"), pgbench) {
        (Some(on), Some(off), Some(pg)) => {
            let ratio = on.transfers_per_s / off.transfers_per_s.max(f64::MIN_POSITIVE);
            let off_ratio = off.transfers_per_s / pg;
            println!(
                "  notifications on ÷ off: {ratio:.2} (bar ≥ 0.75: {}; aim ≥ 0.85: {}); uniform, notifications off: {off_ratio:.2}× pgbench (bar ≥ 2.0: {}), p99 {:.1} ms",
                met(ratio >= 0.75),
                met(ratio >= 0.85),
                met(off_ratio >= 2.0),
                off.p99_ms
            );
        }
        _ => println!("  notifications on ÷ off: needs uniform with notifications on (it is then run off too, last)"),
    }
    if let (Some(r), Some(pg)) = (shape("reads"), pgbench) {
        let ratio = r.requests_per_s / pg;
        let share = r.replica_share.unwrap_or(0.0);
        println!(
            "  reads: {ratio:.2}× pgbench (bar ≥ 3: {}), {:.1}% on replicas (bar ≥ 90%: {})",
            met(ratio >= 3.0),
            share * 100.0,
            met(share >= 0.9)
        );
    }
    if let (Some(z), Some(u)) = (shape("zipf"), shape("uniform")) {
        let ratio = z.transfers_per_s / u.transfers_per_s.max(f64::MIN_POSITIVE);
        println!("  zipf: {ratio:.2}× uniform (bar ≥ 0.8: {})", met(ratio >= 0.8));
    }
    if let (Some(b), Some(pg)) = (shape("batch"), pgbench) {
        let ratio = b.transfers_per_s / pg;
        println!("  batch items: {ratio:.2}× pgbench (bar ≥ 2.5: {})", met(ratio >= 2.5));
    }
    if let Some(hot) = &report.hot {
        for line in hot.lines() {
            println!("  {line}");
        }
    }
}
