//! Real PostgreSQL processes: init, sync replication, failover, rejoin,
//! down/up. Each cluster lives in a unique dir under <workspace>/var/test/
//! and is destroyed by a Drop guard, even when an assertion panics.

use flexibank_replication::{Cluster, InitOptions, NodeStatus};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Destroys the cluster on drop; on panic first prints each node's log tail.
struct Guard(Cluster, PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in &self.0.config.nodes {
                let log = std::fs::read_to_string(self.0.log_path(&n.name)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                eprintln!("--- {} log (tail) ---", n.name);
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        self.0.destroy_now();
        // The requested dir may be a link to the real one (see init's fallback).
        let _ = std::fs::remove_file(&self.1);
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

impl std::ops::Deref for Guard {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.0
    }
}

fn unique_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../var/test")
        .join(format!("cluster-{}-{nanos}", std::process::id()))
}

async fn init(opts: InitOptions) -> Guard {
    let dir = opts.dir.clone();
    let started = Instant::now();
    match Cluster::init(opts).await {
        Ok(c) => {
            eprintln!("init took {} ms", started.elapsed().as_millis());
            Guard(c, dir)
        }
        Err(e) => {
            // Half-initialised: cluster.json is written early, so clean up.
            if let Ok(c) = Cluster::load(&dir) {
                c.destroy_now();
            }
            panic!("init failed: {e:#}");
        }
    }
}

fn node<'a>(st: &'a [NodeStatus], name: &str) -> &'a NodeStatus {
    st.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} missing from {st:#?}"))
}

/// Poll `node` until row `id` of table t is visible, for at most `timeout_ms`.
async fn wait_row(c: &Cluster, node: &str, id: i32, timeout_ms: u64) -> String {
    let client = c.connect_superuser(node).await.unwrap();
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        if let Ok(Some(row)) = client
            .query_opt("SELECT v FROM t WHERE id = $1", &[&id])
            .await
        {
            return row.get(0);
        }
        assert!(
            Instant::now() < deadline,
            "row {id} not visible on {node} within {timeout_ms} ms"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_and_rejoin() {
    let test_start = Instant::now();
    let c = init(InitOptions {
        dir: unique_dir(),
        replicas: 1,
        ..Default::default()
    })
    .await;

    let st = c.status().await.unwrap();
    assert_eq!(node(&st, "primary").role, "primary", "{st:#?}");
    assert_eq!(node(&st, "replica1").role, "replica", "{st:#?}");
    assert_eq!(
        node(&st, "replica1").sync_state.as_deref(),
        Some("sync"),
        "{st:#?}"
    );
    let old_timeline = node(&st, "primary").timeline.expect("primary timeline");

    let p = c.connect_superuser("primary").await.unwrap();
    p.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'before')",
    )
    .await
    .unwrap();
    assert_eq!(wait_row(&c, "replica1", 1, 1_000).await, "before");

    // Hard crash of the primary.
    let pid = c.postmaster_pid("primary").expect("primary running");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let t = Instant::now();
    while c.postmaster_pid("primary").is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "primary survived SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let t = Instant::now();
    assert_eq!(c.promote(Some("replica1")).await.unwrap(), "replica1");
    eprintln!("promote took {} ms", t.elapsed().as_millis());

    let r1 = c.connect_superuser("replica1").await.unwrap();
    r1.batch_execute("INSERT INTO t VALUES (2, 'after')")
        .await
        .unwrap();
    let st = c.status().await.unwrap();
    assert_eq!(node(&st, "replica1").role, "primary", "{st:#?}");
    assert_eq!(node(&st, "primary").role, "unreachable", "{st:#?}");
    let new_timeline = node(&st, "replica1")
        .timeline
        .expect("new primary timeline");
    assert!(
        new_timeline > old_timeline,
        "timeline {new_timeline} !> {old_timeline}"
    );

    let t = Instant::now();
    // Killed while idle, after its last commit reached the replica: any WAL
    // it wrote past the fork holds no commit, so discarding it loses nothing.
    if let Some(d) = c.rejoin("primary", true).await.unwrap() {
        assert!(d.committed_xids.is_empty(), "{d:?}");
    }
    eprintln!("rejoin took {} ms", t.elapsed().as_millis());

    let st = c.status().await.unwrap();
    assert_eq!(node(&st, "primary").role, "replica", "{st:#?}");
    assert_eq!(
        node(&st, "primary").sync_state.as_deref(),
        Some("sync"),
        "{st:#?}"
    );
    assert_eq!(node(&st, "primary").timeline, Some(new_timeline), "{st:#?}");
    assert_eq!(wait_row(&c, "primary", 2, 5_000).await, "after");
    eprintln!(
        "failover_and_rejoin took {} ms",
        test_start.elapsed().as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_quorum_down_up() {
    let test_start = Instant::now();
    let c = init(InitOptions {
        dir: unique_dir(),
        replicas: 2,
        extra_conf: vec![("shared_buffers".into(), "'32MB'".into())],
        ..Default::default()
    })
    .await;

    let assert_healthy = |st: &[NodeStatus]| {
        assert_eq!(node(st, "primary").role, "primary", "{st:#?}");
        for r in ["replica1", "replica2"] {
            assert_eq!(node(st, r).role, "replica", "{st:#?}");
            assert_eq!(node(st, r).sync_state.as_deref(), Some("quorum"), "{st:#?}");
        }
    };
    assert_healthy(&c.status().await.unwrap());

    // extra_conf reaches the replicas too (postgresql.conf is base-backed-up).
    let r2 = c.connect_superuser("replica2").await.unwrap();
    let sb: String = r2
        .query_one("SHOW shared_buffers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sb, "32MB");
    drop(r2);

    let t = Instant::now();
    c.down().await.unwrap();
    eprintln!("down took {} ms", t.elapsed().as_millis());
    for n in ["primary", "replica1", "replica2"] {
        assert_eq!(c.postmaster_pid(n), None, "{n} still running after down");
    }
    let st = c.status().await.unwrap();
    assert!(st.iter().all(|s| s.role == "unreachable"), "{st:#?}");

    let t = Instant::now();
    c.up().await.unwrap();
    eprintln!("up took {} ms", t.elapsed().as_millis());
    assert_healthy(&c.status().await.unwrap());
    // up is idempotent.
    c.up().await.unwrap();
    eprintln!(
        "two_replicas_quorum_down_up took {} ms",
        test_start.elapsed().as_millis()
    );
}

/// A crashed primary restarted after failover must show up as "fenced"
/// (lower timeline), and rejoin must stop and rewind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_old_primary_is_fenced_then_rejoined() {
    let test_start = Instant::now();
    let c = init(InitOptions {
        dir: unique_dir(),
        replicas: 1,
        ..Default::default()
    })
    .await;
    let p = c.connect_superuser("primary").await.unwrap();
    p.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await
        .unwrap();
    drop(p);

    let pid = c.postmaster_pid("primary").expect("primary running");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert_eq!(c.promote(None).await.unwrap(), "replica1");
    let r1 = c.connect_superuser("replica1").await.unwrap();
    r1.batch_execute("INSERT INTO t VALUES (3, 'fenced-test')")
        .await
        .unwrap();

    // Restart the stale primary: split brain, resolved by timeline. Its
    // crash recovery wrote a checkpoint past the fork: it has diverged, and
    // rejoin refuses to discard that without being told.
    c.start_node("primary").await.unwrap();
    let st = c.status().await.unwrap();
    assert_eq!(node(&st, "primary").role, "diverged", "{st:#?}");
    assert!(node(&st, "primary").diverged_bytes.unwrap() > 0, "{st:#?}");
    assert_eq!(node(&st, "replica1").role, "primary", "{st:#?}");
    let refused = c.rejoin("primary", false).await.expect_err("diverged");
    assert!(format!("{refused:#}").contains("--discard-diverged"), "{refused:#}");
    assert!(c.postmaster_pid("primary").is_some(), "a refused rejoin leaves the node as it was");

    let discarded = c.rejoin("primary", true).await.unwrap().expect("divergence reported");
    assert!(discarded.diverged_bytes > 0 && discarded.committed_xids.is_empty(), "{discarded:?}");
    assert!(discarded.backup_dir.join("PG_VERSION").exists());
    let st = c.status().await.unwrap();
    assert_eq!(node(&st, "primary").role, "replica", "{st:#?}");
    assert_eq!(
        node(&st, "primary").sync_state.as_deref(),
        Some("sync"),
        "{st:#?}"
    );
    assert_eq!(wait_row(&c, "primary", 3, 5_000).await, "fenced-test");
    eprintln!(
        "restarted_old_primary_is_fenced_then_rejoined took {} ms",
        test_start.elapsed().as_millis()
    );
}
