//! Per-user allowances that hold across every server process: a fixed window
//! per (user, action) in `rate_windows`, counted by one atomic upsert.

use uuid::Uuid;

use crate::{db::db_error, error::ApiResult};

/// Counts one use of `action` by `user_id`. `Err(seconds)` when the window's
/// `allowed` uses are spent: the seconds until it starts afresh.
pub async fn take(client: &impl tokio_postgres::GenericClient, user_id: Uuid, action: &str, allowed: u32, window_s: u32) -> ApiResult<Result<(), u64>> {
    assert!(window_s > 0, "a rate window has a length");
    let window_s = f64::from(window_s);
    let row = client
        .query_one(
            "INSERT INTO rate_windows AS w (user_id, action, started_at, used) VALUES ($1, $2, now(), 1)
             ON CONFLICT (user_id, action) DO UPDATE SET
                 started_at = CASE WHEN w.started_at <= now() - make_interval(secs => $3) THEN now() ELSE w.started_at END,
                 used = CASE WHEN w.started_at <= now() - make_interval(secs => $3) THEN 1 ELSE least(w.used, 2147483646) + 1 END
             RETURNING used, ceil(extract(epoch FROM w.started_at + make_interval(secs => $3) - now()))::bigint",
            &[&user_id, &action, &window_s],
        )
        .await
        .map_err(db_error)?;
    let used: i32 = row.get(0);
    if used as i64 <= i64::from(allowed) {
        Ok(Ok(()))
    } else {
        let retry_after_s: i64 = row.get(1);
        Ok(Err(retry_after_s.max(1) as u64))
    }
}
