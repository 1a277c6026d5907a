//! Bearer sessions: looked up by the SHA-256 of the token, idle timeout and
//! absolute lifetime enforced in the query, revocation honoured at once.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::{Caller, Role},
    auth::token_hash,
    db::{db_error, Db},
    error::{ApiError, ApiResult},
};

/// `last_seen_at` is written at most this often per session (and at least
/// four times per idle timeout), so that a busy client does not turn every
/// request into a write; the idle timeout is exact to within this interval.
pub const MAX_TOUCH_INTERVAL_S: f64 = 30.0;

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub full_name: String,
    pub role: String,
    pub branch_id: Option<Uuid>,
}

impl From<&Caller> for UserView {
    fn from(c: &Caller) -> Self {
        UserView {
            id: c.user_id,
            username: c.username.clone(),
            full_name: c.full_name.clone(),
            role: c.role.as_str().to_string(),
            branch_id: c.branch_id,
        }
    }
}

const AUTHENTICATE_SQL: &str = "
WITH live AS (
    SELECT s.token_hash, s.last_seen_at, u.id, u.username, u.full_name, u.role, u.branch_id
      FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_hash = $1
       AND s.revoked_at IS NULL
       AND s.expires_at > now()
       AND s.last_seen_at > now() - make_interval(secs => $2::float8)
), touched AS (
    UPDATE sessions SET last_seen_at = now()
     WHERE token_hash = $1
       AND EXISTS (SELECT 1 FROM live WHERE live.last_seen_at < now() - make_interval(secs => $3::float8))
)
SELECT id, username, full_name, role, branch_id FROM live";

/// The same check without the touch, for a replica while no primary answers:
/// sessions and revocations are replicated synchronously, so a replica knows
/// them, and a DBA can still sign in to promote.
const AUTHENTICATE_READ_ONLY_SQL: &str = "
SELECT u.id, u.username, u.full_name, u.role, u.branch_id
  FROM sessions s JOIN users u ON u.id = s.user_id
 WHERE s.token_hash = $1
   AND s.revoked_at IS NULL
   AND s.expires_at > now()
   AND s.last_seen_at > now() - make_interval(secs => $2::float8)";

/// Sessions checked against the database within this long are trusted from
/// memory (at most; shorter when the idle timeout is short). Logout and MFA
/// reset in this process evict at once; another server process's revocation
/// is seen within this bound.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(5);
/// Bound on cached sessions; past it the cache starts over.
const MAX_CACHED_SESSIONS: usize = 100_000;

#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<Vec<u8>, (Caller, Instant)>>,
}

impl SessionCache {
    fn get(&self, hash: &[u8], ttl: Duration) -> Option<Caller> {
        let entries = self.entries.lock().expect("session cache");
        entries.get(hash).filter(|(_, at)| at.elapsed() < ttl).map(|(caller, _)| caller.clone())
    }

    fn put(&self, caller: &Caller) {
        let mut entries = self.entries.lock().expect("session cache");
        if entries.len() >= MAX_CACHED_SESSIONS {
            entries.clear();
        }
        entries.insert(caller.session_hash.clone(), (caller.clone(), Instant::now()));
    }

    pub fn evict(&self, hash: &[u8]) {
        self.entries.lock().expect("session cache").remove(hash);
    }

    pub fn evict_user(&self, user_id: Uuid) {
        self.entries.lock().expect("session cache").retain(|_, (caller, _)| caller.user_id != user_id);
    }
}

/// The live session behind a bearer token (cached for at most a quarter of the idle timeout).
pub async fn authenticate(db: &Db, cache: &SessionCache, idle_timeout_s: u64, token: &str) -> ApiResult<Caller> {
    let hash = token_hash(token);
    let ttl = MAX_CACHE_TTL.min(Duration::from_secs_f64(idle_timeout_s as f64 / 4.0));
    if let Some(caller) = cache.get(&hash, ttl) {
        return Ok(caller);
    }
    let caller = authenticate_in_db(db, idle_timeout_s, hash).await?;
    cache.put(&caller);
    Ok(caller)
}

async fn authenticate_in_db(db: &Db, idle_timeout_s: u64, hash: Vec<u8>) -> ApiResult<Caller> {
    let idle_s = idle_timeout_s as f64;
    let touch_interval_s = (idle_s / 4.0).min(MAX_TOUCH_INTERVAL_S);
    let on_primary = db
        .retry_serializable(|| async {
            let client = db.primary_read_committed().await?;
            let statement = client.prepare_cached(AUTHENTICATE_SQL).await.map_err(db_error)?;
            client
                .query_opt(&statement, &[&hash, &idle_s, &touch_interval_s])
                .await
                .map_err(db_error)
        })
        .await;
    let row = match on_primary {
        Err(e) if e.code == crate::error::Code::NoPrimary => {
            let (client, _) = db.reader().await?;
            client.query_opt(AUTHENTICATE_READ_ONLY_SQL, &[&hash, &idle_s]).await.map_err(db_error)?
        }
        other => other?,
    }
    .ok_or_else(ApiError::unauthenticated)?;
    let role: String = row.get("role");
    Ok(Caller {
        user_id: row.get("id"),
        username: row.get("username"),
        full_name: row.get("full_name"),
        role: Role::parse(&role).ok_or_else(|| ApiError::internal(format!("unknown role {role}")))?,
        branch_id: row.get("branch_id"),
        session_hash: hash,
    })
}
