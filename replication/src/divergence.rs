//! Divergence: WAL a node holds past the point where the current primary's
//! history left the node's timeline. `pg_rewind` discards it, and with it
//! any transaction it committed there (whose customers may have been told).
//! `rejoin` refuses such a node unless told to discard, and then first keeps
//! a copy of its data directory and lists the transfers that go.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cluster::{Cluster, NodeConfig, LOCALHOST};
use crate::pg_bin::PgBin;
use crate::pool::parse_history;

/// A timeline history: the primary's timeline, and where each older one was left.
pub(crate) struct History {
    pub timeline: u32,
    pub forks: Vec<(u32, u64)>,
}

impl History {
    /// Bytes past the fork for a node on `timeline` whose WAL ends at `end`.
    pub fn diverged_bytes(&self, timeline: u32, end: u64) -> Option<u64> {
        if timeline >= self.timeline {
            return None;
        }
        let (_, left_at) = self.forks.iter().find(|(tli, _)| *tli == timeline)?;
        end.checked_sub(*left_at).filter(|&b| b > 0)
    }

    fn fork_of(&self, timeline: u32) -> Option<u64> {
        self.forks
            .iter()
            .find(|(tli, _)| *tli == timeline)
            .map(|(_, lsn)| *lsn)
    }
}

/// What a rejoin with `--discard-diverged` threw away, and where the copy is.
#[derive(Debug, Clone, Serialize)]
pub struct Discarded {
    pub node: String,
    pub timeline: u32,
    pub fork_lsn: String,
    pub diverged_bytes: u64,
    /// Transactions committed past the fork (their xids).
    pub committed_xids: Vec<u32>,
    /// The transfers those transactions wrote, read from the kept copy.
    pub transfers: Vec<serde_json::Value>,
    /// The copy of the node's data directory taken before the rewind.
    pub backup_dir: PathBuf,
}

/// WAL found past the fork by reading the node's files (the node stopped).
struct OfflineDivergence {
    timeline: u32,
    fork_lsn: u64,
    bytes: u64,
    committed_xids: Vec<u32>,
}

impl Cluster {
    /// The timeline history of `primary` (a running primary).
    pub(crate) async fn history(&self, primary: &str) -> Result<History> {
        let client = self.connect_admin(primary).await?;
        let timeline: i32 = client
            .query_one(
                "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int",
                &[],
            )
            .await?
            .get(0);
        let forks = if timeline <= 1 {
            Vec::new()
        } else {
            let text: String = client
                .query_one("SELECT pg_read_file('pg_wal/' || lpad(upper(to_hex($1::int)), 8, '0') || '.history')", &[&timeline])
                .await
                .with_context(|| format!("reading the timeline history of {primary}"))?
                .get(0);
            parse_history(&text)
        };
        Ok(History {
            timeline: timeline as u32,
            forks,
        })
    }

    /// Reads a stopped node's WAL past the fork with pg_waldump.
    async fn offline_divergence(
        &self,
        pg: &PgBin,
        node: &NodeConfig,
        history: &History,
    ) -> Result<Option<OfflineDivergence>> {
        let wal_dir = node.data_dir.join("pg_wal");
        let known_timeline =
            newest_history_file(&wal_dir)?.max(self.control_timeline(pg, node).await?);
        if known_timeline >= history.timeline {
            return Ok(None);
        }
        let Some(fork) = history.fork_of(known_timeline) else {
            return Ok(None);
        };
        // Name the segment holding the fork: left to itself, pg_waldump reads
        // the segment size from whichever file it finds first, and a
        // preallocated one (all zeros) makes it give up.
        let segment_bytes = self
            .control_value(pg, node, "Bytes per WAL segment:")
            .await?
            .parse::<u64>()
            .unwrap_or(16 << 20);
        let segments_per_id = 0x1_0000_0000 / segment_bytes;
        let segment = fork / segment_bytes;
        let start_file = format!(
            "{known_timeline:08X}{:08X}{:08X}",
            segment / segments_per_id,
            segment % segments_per_id
        );
        let mut cmd = pg.command("pg_waldump", &self.dir);
        cmd.arg(format!("--path={}", wal_dir.display()))
            .arg(format!("--timeline={known_timeline}"))
            .arg(format!("--start={}", crate::pool::format_lsn(fork)))
            .arg(start_file);
        let out = cmd.output().await.context("running pg_waldump")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let records: Vec<WalRecord> = stdout.lines().filter_map(WalRecord::parse).collect();
        if records.is_empty() {
            // pg_waldump ends every run at the end of WAL with an error; with
            // no record at all, only these mean "nothing past the fork".
            if stderr.contains("could not find a valid record")
                || stderr.contains("invalid record length")
                || out.status.success()
            {
                return Ok(None);
            }
            bail!(
                "reading the WAL of {} past {}: {}",
                node.name,
                crate::pool::format_lsn(fork),
                stderr.trim()
            );
        }
        let end = records.iter().map(|r| r.lsn + r.len).max().unwrap_or(fork);
        let committed_xids = records.iter().filter(|r| r.commit).map(|r| r.xid).collect();
        Ok(Some(OfflineDivergence {
            timeline: known_timeline,
            fork_lsn: fork,
            bytes: end.saturating_sub(fork),
            committed_xids,
        })
        .filter(|d| d.bytes > 0))
    }

    /// Refuses a diverged node unless `discard`; with it, keeps a copy of
    /// the data directory and lists the transfers that will disappear.
    /// The node must be stopped.
    /// `seen_online` is what `status` measured while the node ran
    /// (timeline, bytes past the fork): when the stopped node's files say
    /// less, that still counts, and the transfers are then found by what the
    /// primary lacks rather than by transaction id.
    pub(crate) async fn check_divergence(
        &self,
        pg: &PgBin,
        node: &NodeConfig,
        primary: &str,
        discard: bool,
        seen_online: Option<(u32, u64)>,
    ) -> Result<Option<Discarded>> {
        let history = self.history(primary).await?;
        let d = match (self.offline_divergence(pg, node, &history).await?, seen_online) {
            (Some(d), _) => d,
            (None, Some((timeline, bytes))) => match history.fork_of(timeline) {
                Some(fork_lsn) => {
                    tracing::warn!(node = %node.name, bytes, "the stopped node's WAL files show nothing past the fork that status measured; using status");
                    OfflineDivergence { timeline, fork_lsn, bytes, committed_xids: Vec::new() }
                }
                None => return Ok(None),
            },
            (None, None) => return Ok(None),
        };
        let summary = format!(
            "{} has diverged: {} bytes of WAL past {} on timeline {} ({} committed transactions) exist nowhere else",
            node.name,
            d.bytes,
            crate::pool::format_lsn(d.fork_lsn),
            d.timeline,
            d.committed_xids.len()
        );
        if !discard {
            bail!("{summary}; rejoin refuses to discard them without --discard-diverged (which keeps a copy of the data directory first)");
        }
        tracing::warn!("{summary}; keeping a copy and discarding them");
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let backup_dir = self
            .dir
            .join("diverged")
            .join(format!("{}-{stamp}", node.name));
        std::fs::create_dir_all(backup_dir.parent().expect("has a parent"))?;
        let copied = tokio::process::Command::new("cp")
            .arg("-a")
            .arg(&node.data_dir)
            .arg(&backup_dir)
            .status()
            .await?;
        anyhow::ensure!(
            copied.success(),
            "copying {} to {} failed",
            node.data_dir.display(),
            backup_dir.display()
        );
        let listing = if d.committed_xids.is_empty() && seen_online.is_some() {
            Listing::MissingOn(primary.to_string())
        } else {
            Listing::Xids(d.committed_xids.clone())
        };
        let transfers = match self.transfers_in_copy(pg, &backup_dir, &listing).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "could not list the discarded transfers; the copy is kept"
                );
                vec![serde_json::json!({"error": format!("{e:#}")})]
            }
        };
        let discarded = Discarded {
            node: node.name.clone(),
            timeline: d.timeline,
            fork_lsn: crate::pool::format_lsn(d.fork_lsn),
            diverged_bytes: d.bytes,
            committed_xids: d.committed_xids,
            transfers,
            backup_dir: backup_dir.clone(),
        };
        let report = backup_dir.with_extension("discarded.json");
        std::fs::write(&report, serde_json::to_string_pretty(&discarded)?)?;
        Ok(Some(discarded))
    }

    /// Starts the kept copy alone on a free port, read-only and following
    /// no one, reads the transfers that will disappear, and stops it.
    async fn transfers_in_copy(&self, pg: &PgBin, copy: &Path, listing: &Listing) -> Result<Vec<serde_json::Value>> {
        if matches!(listing, Listing::Xids(xids) if xids.is_empty()) {
            return Ok(Vec::new());
        }
        for signal in ["standby.signal", "recovery.signal", "postmaster.pid"] {
            let _ = std::fs::remove_file(copy.join(signal));
        }
        let port = std::net::TcpListener::bind((LOCALHOST, 0))?
            .local_addr()?
            .port();
        let log = copy.with_extension("log");
        std::fs::write(&log, "")?;
        pg.chown_file(&log)?;
        let options = format!(
            "-c port={port} -c listen_addresses={LOCALHOST} -c synchronous_standby_names='' -c primary_conninfo='' \
             -c default_transaction_read_only=on -c archive_mode=off"
        );
        let mut start = pg.command("pg_ctl", &self.dir);
        start
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(copy)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(&options);
        pg.run(start, "starting the kept copy").await?;
        let read = async {
            let c = &self.config;
            let conninfo = format!(
                "host={LOCALHOST} port={port} user={} password={} dbname={}",
                c.superuser,
                crate::conf::quote_conninfo(&c.superuser_password),
                c.database
            );
            let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            const AS_JSON: &str = "json_build_object('id', id, 'kind', kind, 'from_account_id', from_account_id,
                    'to_account_id', to_account_id, 'amount', amount::text, 'currency', currency,
                    'memo', memo, 'created_at', created_at, 'xid', xmin::text::bigint)::text";
            let rows = match listing {
                Listing::Xids(xids) => {
                    let xids: Vec<i64> = xids.iter().map(|&x| x as i64).collect();
                    let sql = format!("SELECT {AS_JSON} FROM transfers WHERE xmin::text::bigint = ANY($1) ORDER BY created_at");
                    client.query(&sql, &[&xids]).await?
                }
                Listing::MissingOn(primary) => {
                    // The newest transfers of the copy that the primary does not have.
                    let sql = format!("SELECT id::text, {AS_JSON} FROM transfers ORDER BY created_at DESC LIMIT {MAX_COMPARED_TRANSFERS}");
                    let recent = client.query(&sql, &[]).await?;
                    let ids: Vec<String> = recent.iter().map(|r| r.get(0)).collect();
                    let on_primary: std::collections::HashSet<String> = self
                        .connect_superuser(primary)
                        .await?
                        .query("SELECT id::text FROM transfers WHERE id::text = ANY($1)", &[&ids])
                        .await?
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                    return recent
                        .iter()
                        .filter(|r| !on_primary.contains(&r.get::<_, String>(0)))
                        .map(|r| Ok(serde_json::from_str(&r.get::<_, String>(1))?))
                        .collect::<Result<Vec<_>>>();
                }
            };
            rows.iter().map(|r| Ok(serde_json::from_str(&r.get::<_, String>(0))?)).collect::<Result<Vec<_>>>()
        }
        .await;
        let mut stop = pg.command("pg_ctl", &self.dir);
        stop.args(["stop", "-m", "fast", "-w", "-D"]).arg(copy);
        if let Err(e) = pg.run(stop, "stopping the kept copy").await {
            tracing::error!(error = format!("{e:#}"), "stopping the kept copy failed");
        }
        read
    }
}

/// How the transfers that disappear are found in the kept copy.
enum Listing {
    /// Written by these transactions (committed past the fork).
    Xids(Vec<u32>),
    /// Not on this node (the current primary), among the copy's newest.
    MissingOn(String),
}

/// Transfers of the copy compared with the primary when the WAL could not
/// name them (the newest, by creation time).
const MAX_COMPARED_TRANSFERS: usize = 10_000;

/// The newest timeline whose `.history` file is in `wal_dir` (1 if none).
fn newest_history_file(wal_dir: &Path) -> Result<u32> {
    let mut newest = 1;
    for entry in
        std::fs::read_dir(wal_dir).with_context(|| format!("listing {}", wal_dir.display()))?
    {
        let name = entry?.file_name().to_string_lossy().to_string();
        if let Some(tli) = name
            .strip_suffix(".history")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
        {
            newest = newest.max(tli);
        }
    }
    Ok(newest)
}

/// One line of pg_waldump's output.
struct WalRecord {
    lsn: u64,
    len: u64,
    xid: u32,
    commit: bool,
}

impl WalRecord {
    /// `rmgr: Transaction len (rec/tot): 34/ 34, tx: 735, lsn: 0/03000098, prev 0/03000060, desc: COMMIT …`
    fn parse(line: &str) -> Option<WalRecord> {
        let field = |key: &str| -> Option<&str> {
            let start = line.find(key)? + key.len();
            let rest = line[start..].trim_start();
            Some(&rest[..rest.find(',').unwrap_or(rest.len())])
        };
        let len = field("len (rec/tot):")?
            .split('/')
            .nth(1)?
            .trim()
            .parse()
            .ok()?;
        let xid = field("tx:")?.trim().parse().ok()?;
        let lsn = crate::status::parse_lsn(field("lsn:")?.trim())?;
        let commit = line.starts_with("rmgr: Transaction") && line.contains("desc: COMMIT");
        Some(WalRecord {
            lsn,
            len,
            xid,
            commit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pg_waldump_lines() {
        let commit = WalRecord::parse(
            "rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/03000098, prev 0/03000060, desc: COMMIT 2026-11-29 10:00:00.1 UTC",
        )
        .unwrap();
        assert_eq!(
            (commit.lsn, commit.len, commit.xid, commit.commit),
            (0x0300_0098, 34, 735, true)
        );
        let insert = WalRecord::parse(
            "rmgr: Heap        len (rec/tot):     54/   254, tx:        735, lsn: 0/03000060, prev 0/03000028, desc: INSERT off 2",
        )
        .unwrap();
        assert_eq!((insert.len, insert.commit), (254, false));
        assert!(WalRecord::parse("pg_waldump: error: error in WAL record").is_none());
    }

    #[test]
    fn bytes_past_the_fork() {
        let history = History {
            timeline: 3,
            forks: vec![(1, 100), (2, 500)],
        };
        assert_eq!(history.diverged_bytes(1, 160), Some(60));
        assert_eq!(history.diverged_bytes(1, 100), None);
        assert_eq!(history.diverged_bytes(2, 400), None);
        assert_eq!(history.diverged_bytes(3, 900), None);
    }
}
