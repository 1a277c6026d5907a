//! Every stored function's one home: `sql/functions/<name>.sql` holds its
//! current definition (all overloads), as `CREATE OR REPLACE`. The versioned
//! migrations before it stay as history (refinery refuses edited ones) and
//! from V16 on hold only tables, indexes, grants and data; after them, in the
//! same advisory-locked step, each file whose checksum changed since it was
//! last applied is applied again and its checksum recorded.

use anyhow::Context;
use sha2::{Digest, Sha256};

/// (function name, file contents). A test checks this against `sql/functions/`.
pub const FILES: &[(&str, &str)] = &[
    ("accounts_are_never_deleted", include_str!("../../sql/functions/accounts_are_never_deleted.sql")),
    ("apply_movement", include_str!("../../sql/functions/apply_movement.sql")),
    ("audit_log_is_append_only", include_str!("../../sql/functions/audit_log_is_append_only.sql")),
    ("check_transfers", include_str!("../../sql/functions/check_transfers.sql")),
    ("count_daily_limit", include_str!("../../sql/functions/count_daily_limit.sql")),
    ("count_login_failure", include_str!("../../sql/functions/count_login_failure.sql")),
    ("ensure_vaults", include_str!("../../sql/functions/ensure_vaults.sql")),
    ("fb_fail", include_str!("../../sql/functions/fb_fail.sql")),
    ("fx_transfer", include_str!("../../sql/functions/fx_transfer.sql")),
    ("hold_for_review", include_str!("../../sql/functions/hold_for_review.sql")),
    ("idempotency_key_hash", include_str!("../../sql/functions/idempotency_key_hash.sql")),
    ("idempotency_lookup", include_str!("../../sql/functions/idempotency_lookup.sql")),
    ("interbank_place_many", include_str!("../../sql/functions/interbank_place_many.sql")),
    ("interbank_prepare_many", include_str!("../../sql/functions/interbank_prepare_many.sql")),
    ("interbank_settle", include_str!("../../sql/functions/interbank_settle.sql")),
    ("interbank_settle_many", include_str!("../../sql/functions/interbank_settle_many.sql")),
    ("local_minutes", include_str!("../../sql/functions/local_minutes.sql")),
    ("mask_account_number", include_str!("../../sql/functions/mask_account_number.sql")),
    ("move_money", include_str!("../../sql/functions/move_money.sql")),
    ("move_money_batch", include_str!("../../sql/functions/move_money_batch.sql")),
    ("move_money_group", include_str!("../../sql/functions/move_money_group.sql")),
    ("notify_account_status", include_str!("../../sql/functions/notify_account_status.sql")),
    ("notify_entries", include_str!("../../sql/functions/notify_entries.sql")),
    ("notify_mfa_change", include_str!("../../sql/functions/notify_mfa_change.sql")),
    ("notify_session", include_str!("../../sql/functions/notify_session.sql")),
    ("notify_user", include_str!("../../sql/functions/notify_user.sql")),
    ("place_hold", include_str!("../../sql/functions/place_hold.sql")),
    ("quiet_hours_send_at", include_str!("../../sql/functions/quiet_hours_send_at.sql")),
    ("record_login_failure", include_str!("../../sql/functions/record_login_failure.sql")),
    ("retry_standing_order_run", include_str!("../../sql/functions/retry_standing_order_run.sql")),
    ("review_reason", include_str!("../../sql/functions/review_reason.sql")),
    ("rfc3339", include_str!("../../sql/functions/rfc3339.sql")),
    ("run_standing_order", include_str!("../../sql/functions/run_standing_order.sql")),
    ("standing_order_attempt", include_str!("../../sql/functions/standing_order_attempt.sql")),
    ("standing_order_due", include_str!("../../sql/functions/standing_order_due.sql")),
    ("standing_order_reschedule", include_str!("../../sql/functions/standing_order_reschedule.sql")),
    ("store_idempotent_response", include_str!("../../sql/functions/store_idempotent_response.sql")),
    ("uuid_v7", include_str!("../../sql/functions/uuid_v7.sql")),
    ("vault_shard_count", include_str!("../../sql/functions/vault_shard_count.sql")),
    ("void_hold", include_str!("../../sql/functions/void_hold.sql")),
    ("write_transfers", include_str!("../../sql/functions/write_transfers.sql")),
];

/// Applies every file whose checksum differs from the one recorded; returns their names.
pub async fn apply(client: &mut tokio_postgres::Client) -> anyhow::Result<Vec<&'static str>> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS stored_function_files (
                 name       text PRIMARY KEY,
                 sha256     text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .context("creating stored_function_files")?;
    let recorded: std::collections::HashMap<String, String> = client
        .query("SELECT name, sha256 FROM stored_function_files", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut applied = Vec::new();
    for (name, sql) in FILES {
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        if recorded.get(*name) == Some(&checksum) {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await.with_context(|| format!("applying sql/functions/{name}.sql"))?;
        tx.execute(
            "INSERT INTO stored_function_files (name, sha256) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()",
            &[name, &checksum],
        )
        .await?;
        tx.commit().await?;
        applied.push(*name);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_under_sql_functions_is_applied() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql/functions");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".sql").to_string())
            .collect();
        on_disk.sort();
        let listed: Vec<String> = super::FILES.iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(listed, on_disk, "add the new file to FILES in stored_functions.rs");
    }
}
