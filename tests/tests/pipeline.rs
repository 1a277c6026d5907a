//! `flexibank_consortium::pipeline`, which the banks' grouped steps and the
//! switch's batches send their transactions through, against a real
//! PostgreSQL: statements run in order in one transaction, a failure or an
//! early drop leaves nothing of it, and the pool never hands out a connection
//! with a transaction left open on it.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use flexibank_consortium::pipeline::Pipelined;
use tokio_postgres::NoTls;

/// One connection only: every test step gets the connection the step before left.
fn pool(url: &str) -> Pool {
    let manager = Manager::from_config(url.parse().unwrap(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager).max_size(1).build().unwrap()
}

async fn values(pool: &Pool) -> Vec<i32> {
    let client = pool.get().await.unwrap();
    client.query("SELECT v FROM t ORDER BY v", &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

/// Whether the pool's connection is idle outside any transaction, and its backend.
async fn clean(pool: &Pool) -> (bool, i32) {
    let client = pool.get().await.unwrap();
    // A savepoint is refused outside a transaction block, and taken inside one.
    let outside = client.batch_execute("SAVEPOINT probe").await.is_err();
    let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    (outside, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_transactions_are_all_or_nothing_and_never_leak_into_the_pool() {
    let (_guard, _dir, url) = flexibank_tests::single_node_database("pipeline", "pipeline").await;
    let pool = pool(&url);
    pool.get().await.unwrap().batch_execute("CREATE TABLE t (v int PRIMARY KEY CHECK (v >= 0))").await.unwrap();
    const BEGIN: &str = "START TRANSACTION ISOLATION LEVEL READ COMMITTED";

    // In order, in one transaction: the count sees the inserts before it, and the second flight the first.
    let client = pool.get().await.unwrap();
    let insert = client.prepare_cached("INSERT INTO t VALUES ($1)").await.unwrap();
    let count = client.prepare_cached("SELECT count(*)::int, txid_current() FROM t").await.unwrap();
    let (mut tx, rows) = Pipelined::begin(client, BEGIN, &[(&insert, &[&1i32]), (&insert, &[&2i32]), (&count, &[])]).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2][0].get::<_, i32>(0), 2);
    let txid: i64 = rows[2][0].get(1);
    let rows = tx.run(&[(&insert, &[&3i32]), (&count, &[])]).await.unwrap();
    assert_eq!((rows[1][0].get::<_, i32>(0), rows[1][0].get::<_, i64>(1)), (3, txid), "one transaction");
    tx.commit().await.unwrap();
    assert_eq!(values(&pool).await, vec![1, 2, 3]);
    let (idle, backend) = clean(&pool).await;
    assert!(idle, "committed: the connection is back outside any transaction");

    // A failing statement between two good ones: nothing of the flight stays, and the connection is reused.
    let client = pool.get().await.unwrap();
    let error = Pipelined::begin(client, BEGIN, &[(&insert, &[&4i32]), (&insert, &[&-1i32]), (&insert, &[&5i32])]).await.err().expect("the CHECK fails");
    assert_eq!(error.code(), Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION), "the first error is reported: {error}");
    assert_eq!(values(&pool).await, vec![1, 2, 3]);
    assert_eq!(clean(&pool).await, (true, backend), "rolled back on the same connection");

    // A second flight that fails takes the first one's changes with it.
    let client = pool.get().await.unwrap();
    let (mut tx, _) = Pipelined::begin(client, BEGIN, &[(&insert, &[&6i32])]).await.unwrap();
    assert!(tx.run(&[(&insert, &[&1i32])]).await.is_err(), "a duplicate key");
    drop(tx);
    assert_eq!(values(&pool).await, vec![1, 2, 3]);
    assert_eq!(clean(&pool).await, (true, backend));

    // Dropped before it ended (an early return): its connection is closed, not pooled with the transaction open.
    let client = pool.get().await.unwrap();
    let (tx, _) = Pipelined::begin(client, BEGIN, &[(&insert, &[&7i32])]).await.unwrap();
    drop(tx);
    assert_eq!(values(&pool).await, vec![1, 2, 3]);
    let (idle, new_backend) = clean(&pool).await;
    assert!(idle && new_backend != backend, "a new connection replaced the one dropped mid-transaction");

    // Cancelled mid-flight (a request's timeout): the same.
    let client = pool.get().await.unwrap();
    // A new connection (the last one was closed): statements are prepared on it again.
    let insert = client.prepare_cached("INSERT INTO t VALUES ($1)").await.unwrap();
    let sleep = client.prepare_cached("SELECT pg_sleep(2)").await.unwrap();
    let cancelled = tokio::time::timeout(Duration::from_millis(300), Pipelined::begin(client, BEGIN, &[(&insert, &[&8i32]), (&sleep, &[])])).await;
    assert!(cancelled.is_err(), "the flight was still waiting: {:?}", cancelled.map(|r| r.map(|(_, rows)| rows.len())));
    assert_eq!(values(&pool).await, vec![1, 2, 3]);
    let (idle, last_backend) = clean(&pool).await;
    assert!(idle && last_backend != new_backend, "the cancelled flight's connection was closed");

    // A commit that answers its WAL position: past everything the transaction wrote (its commit record
    // included), at most where the primary is afterwards, and the connection back outside any transaction.
    let client = pool.get().await.unwrap();
    let insert = client.prepare_cached("INSERT INTO t VALUES ($1)").await.unwrap();
    let written = client.prepare_cached("SELECT pg_current_wal_insert_lsn()::text").await.unwrap();
    let (tx, rows) = Pipelined::begin(client, BEGIN, &[(&insert, &[&9i32]), (&written, &[])]).await.unwrap();
    let inside = flexibank_replication::status::parse_lsn(rows[1][0].get(0)).unwrap();
    let position = flexibank_replication::status::parse_lsn(&tx.commit_at_position().await.unwrap()).unwrap();
    assert!(position > inside, "{position:X} is past the transaction's own writes ({inside:X})");
    let after: String = pool.get().await.unwrap().query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
    assert!(position <= flexibank_replication::status::parse_lsn(&after).unwrap());
    assert_eq!(values(&pool).await, vec![1, 2, 3, 9]);
    assert_eq!(clean(&pool).await, (true, last_backend), "committed on the same connection, which went back to the pool");
}
