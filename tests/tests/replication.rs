//! Synchronous replication: an acknowledged transfer is already flushed on
//! the replica, and readable there.

use std::time::Duration;

use flexibank_tests::{eventually, json, TestStack};
use uuid::Uuid;

fn lsn(text: &str) -> u64 {
    flexibank_replication::status::parse_lsn(text).unwrap_or_else(|| panic!("bad LSN {text}"))
}

#[tokio::test]
async fn acknowledged_transfers_are_flushed_on_the_replica() {
    let stack = TestStack::start("replication").await;
    let primary = stack.superuser("primary").await;
    let replica = stack.superuser("replica1").await;
    primary.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect").await.unwrap();
    let sync_state: String = primary
        .query_one("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'replica1'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sync_state, "sync");

    let alice = stack.login("alice").await;
    let from = stack.account_id(&stack.user("alice").account_numbers[0]).await;
    let to = stack.user("bob").account_numbers[0].clone();
    for round in 0..20 {
        let before: String = primary.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
        let response = alice
            .post_money("/v1/transfers", json!({"from_account_id": from, "to_account_number": to, "amount": "1.00"}))
            .await;
        assert_eq!(response.status, 201, "{}", response.body);
        // Read the replica's flush position first thing after the acknowledgement.
        let flushed: String = primary
            .query_one("SELECT flush_lsn::text FROM pg_stat_replication WHERE application_name = 'replica1'", &[])
            .await
            .unwrap()
            .get(0);
        let transfer_id: Uuid = response.body["id"].as_str().unwrap().parse().unwrap();
        // The transaction's commit record, found in the WAL by its xid.
        let xid: String = primary
            .query_one("SELECT xmin::text FROM transfers WHERE id = $1", &[&transfer_id])
            .await
            .unwrap()
            .get(0);
        let commit_end: String = primary
            .query_one(
                "SELECT end_lsn::text FROM pg_get_wal_records_info($1::text::pg_lsn, pg_current_wal_lsn())
                  WHERE xid::text = $2 AND resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%'",
                &[&before, &xid],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            lsn(&commit_end) <= lsn(&flushed),
            "round {round}: transfer acknowledged at commit LSN {commit_end} but the replica had flushed only {flushed}"
        );
        eventually(Duration::from_secs(1), "the transfer on the replica", || async {
            replica
                .query_opt("SELECT 1 FROM transfers WHERE id = $1", &[&transfer_id])
                .await
                .unwrap()
                .map(|_| ())
        })
        .await;
    }
}
