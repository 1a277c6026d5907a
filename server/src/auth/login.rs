//! The two-step login of the contract: password, then a TOTP code (or a
//! recovery code); first login enrolls the authenticator.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{
    openapi::{RefOr, Schema},
    ToSchema,
};
use uuid::Uuid;

use super::{new_token, password, session::UserView, token_hash, totp};
use crate::{
    access::Caller,
    db::db_error,
    error::{ApiError, ApiResult, Code},
    request::RequestMeta,
    state::AppState,
    text::TextRule,
};

/// How long the `mfa_token` of step one lives.
pub const MFA_TOKEN_TTL_S: i64 = 300;
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Longer than any username can be, with room for stray spaces and case.
pub static LOGIN_USERNAME: TextRule = TextRule::new(crate::text::FREE_TEXT, 0, 256);
const MAX_MFA_TOKEN_CHARS: usize = 128;
const MAX_CODE_CHARS: usize = 64;

fn login_username_schema() -> RefOr<Schema> {
    LOGIN_USERNAME.schema()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(schema_with = login_username_schema)]
    pub username: String,
    #[schema(schema_with = password::password_schema)]
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Enrollment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_png_base64: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub mfa_token: String,
    /// "totp" or "enroll".
    pub next: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrollment: Option<Enrollment>,
}

/// `{"mfa_token","code"}` or `{"mfa_token","recovery_code"}`: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaRequest {
    pub mfa_token: String,
    pub code: Option<String>,
    pub recovery_code: Option<String>,
}

impl utoipa::PartialSchema for MfaRequest {
    fn schema() -> RefOr<Schema> {
        crate::text::from_json(serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["mfa_token"],
            "properties": {
                "mfa_token": {"type": "string", "maxLength": MAX_MFA_TOKEN_CHARS, "description": "From POST /v1/auth/login."},
                "code": {"type": "string", "maxLength": MAX_CODE_CHARS, "description": "The authenticator's 6-digit code."},
                "recovery_code": {"type": "string", "maxLength": MAX_CODE_CHARS, "description": "One of the recovery codes, each usable once."},
            },
            "oneOf": [{"required": ["code"]}, {"required": ["recovery_code"]}],
        }))
    }
}

impl ToSchema for MfaRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "MfaRequest".into()
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(Code::InvalidCredentials, "wrong username or password")
}

fn normalize_username(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Refuses a username that this address is locked out of, or that is in its
/// global backoff (sql/V15).
async fn refuse_if_locked(state: &AppState, meta: &RequestMeta, username: &str) -> ApiResult<()> {
    let client = state.db.writer().await?;
    let client_addr = meta.client_ip.to_string();
    let row = client
        .query_one(
            "SELECT ceil(extract(epoch FROM greatest(
                        (SELECT locked_until FROM login_throttle_by_source
                          WHERE username = $1 AND client_addr = $2 AND locked_until > now()),
                        (SELECT locked_until FROM login_throttle WHERE username = $1 AND locked_until > now()))
                    - now()))::int8",
            &[&username, &client_addr],
        )
        .await
        .map_err(db_error)?;
    match row.get::<_, Option<i64>>(0) {
        Some(seconds) => Err(ApiError::new(Code::LockedOut, format!("too many failed attempts; try again in {seconds} s"))
            .with_retry_after(seconds.max(1) as u64)),
        None => Ok(()),
    }
}

async fn record_failure(
    state: &AppState,
    meta: &RequestMeta,
    username: &str,
    user_id: Option<Uuid>,
    step: &str,
    reason: &str,
) -> ApiResult<()> {
    let security = &state.config.security;
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let client = state.db.writer().await?;
            client
                .execute(
                    "SELECT record_login_failure($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        &username,
                        &user_id,
                        &step,
                        &reason,
                        &meta.request_id,
                        &client_addr,
                        &(security.max_failed_logins as i32),
                        &(security.lockout_seconds as i32),
                        &(security.global_failed_logins as i32),
                        &(security.global_backoff_seconds as i32),
                    ],
                )
                .await
                .map_err(db_error)
        })
        .await?;
    Ok(())
}

/// Step one. Unknown users and wrong passwords get the same answer after
/// the same work (a dummy hash is verified), and both count towards lockout.
pub async fn login(state: &AppState, meta: &RequestMeta, req: LoginRequest) -> ApiResult<LoginResponse> {
    state.login_limiter.check(meta.client_ip)?;
    if req.password.chars().count() > password::MAX_PASSWORD_CHARS || !LOGIN_USERNAME.accepts(&req.username) {
        return Err(ApiError::validation("username or password is too long, or the username holds control characters"));
    }
    let username = normalize_username(&req.username);
    // The password check is the expensive part: a login that could not get
    // one is refused before it costs the database anything.
    let slot = state.hasher.reserve()?;
    refuse_if_locked(state, meta, &username).await?;

    let user = {
        let client = state.db.writer().await?;
        client
            .query_opt(
                "SELECT id, password_hash, totp_enrolled_at IS NOT NULL AS enrolled FROM users WHERE username = $1",
                &[&username],
            )
            .await
            .map_err(db_error)?
    };
    let stored_hash = user.as_ref().map(|row| row.get::<_, String>("password_hash"));
    let user_id: Option<Uuid> = user.as_ref().map(|row| row.get("id"));
    if !state.hasher.verify(&slot, req.password, stored_hash).await? {
        record_failure(state, meta, &username, user_id, "password", "wrong username or password").await?;
        return Err(invalid_credentials());
    }
    let user = user.expect("a password verified, so the user exists");
    let user_id: Uuid = user.get("id");
    let enrolled: bool = user.get("enrolled");

    let (mfa_token, mfa_hash) = new_token();
    let (purpose, pending_secret, enrollment) = if enrolled {
        ("totp", None, None)
    } else {
        let secret = totp::new_secret();
        let enrollment = Enrollment {
            secret_base32: totp::secret_base32(&secret),
            otpauth_uri: totp::otpauth_uri(&secret, &username),
            qr_png_base64: totp::qr_png_base64(&secret, &username).map_err(ApiError::internal)?,
        };
        (
            "enroll",
            Some(state.secrets.seal(user_id, &secret)),
            Some(enrollment),
        )
    };
    state
        .db
        .retry_serializable(|| async {
            let client = state.db.writer().await?;
            client
                .execute(
                    "INSERT INTO mfa_challenges (token_hash, user_id, purpose, pending_secret_enc, expires_at)
                     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8))",
                    &[&mfa_hash, &user_id, &purpose, &pending_secret, &(MFA_TOKEN_TTL_S as f64)],
                )
                .await
                .map_err(db_error)
        })
        .await?;
    Ok(LoginResponse { mfa_token, next: purpose.to_string(), enrollment })
}

/// What step two proved, checked inside the session-creating transaction.
enum Proof {
    Code { step: i64, enroll_secret: Option<Vec<u8>> },
    RecoveryCode { hash: Vec<u8> },
}

/// Step two: a TOTP code (or a recovery code) for the `mfa_token`. On
/// success the token is spent, the code's time step is remembered (no replay),
/// and a session is created, all in one transaction.
pub async fn complete_mfa(state: &AppState, meta: &RequestMeta, req: MfaRequest) -> ApiResult<SessionResponse> {
    state.login_limiter.check(meta.client_ip)?;
    let too_long = |code: &Option<String>| code.as_ref().is_some_and(|c| c.chars().count() > MAX_CODE_CHARS);
    if req.mfa_token.chars().count() > MAX_MFA_TOKEN_CHARS || too_long(&req.code) || too_long(&req.recovery_code) {
        return Err(ApiError::validation("mfa_token or code is too long"));
    }
    let challenge_hash = token_hash(&req.mfa_token);
    let challenge = {
        let client = state.db.writer().await?;
        client
            .query_opt(
                "SELECT c.user_id, c.purpose, c.pending_secret_enc, u.username, u.totp_secret_enc, u.totp_last_step
                   FROM mfa_challenges c JOIN users u ON u.id = c.user_id
                  WHERE c.token_hash = $1 AND c.used_at IS NULL AND c.expires_at > now()",
                &[&challenge_hash],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| ApiError::new(Code::Unauthenticated, "this login step expired or was used; log in again"))?
    };
    let user_id: Uuid = challenge.get("user_id");
    let username: String = challenge.get("username");
    let purpose: String = challenge.get("purpose");
    refuse_if_locked(state, meta, &username).await?;

    let proof = match (&req.code, &req.recovery_code) {
        (Some(code), None) => {
            let sealed: Option<Vec<u8>> = if purpose == "enroll" {
                challenge.get("pending_secret_enc")
            } else {
                challenge.get("totp_secret_enc")
            };
            let secret = sealed
                .and_then(|s| state.secrets.open(user_id, &s))
                .ok_or_else(|| ApiError::internal(format!("cannot open the TOTP secret of user {user_id}")))?;
            let now_step = totp::current_step(Utc::now().timestamp() as u64);
            let Some(step) = totp::matching_step(&secret, code.trim(), now_step) else {
                record_failure(state, meta, &username, Some(user_id), "totp", "wrong code").await?;
                return Err(ApiError::new(Code::InvalidTotp, "wrong or expired code"));
            };
            let last_step: i64 = challenge.get("totp_last_step");
            if step as i64 <= last_step {
                record_failure(state, meta, &username, Some(user_id), "totp", "replayed code").await?;
                return Err(ApiError::new(Code::TotpReplayed, "this code was already used; wait for the next one"));
            }
            Proof::Code { step: step as i64, enroll_secret: (purpose == "enroll").then_some(secret) }
        }
        (None, Some(recovery)) if purpose == "totp" => {
            Proof::RecoveryCode { hash: recovery_code_hash(recovery) }
        }
        (None, Some(_)) => {
            return Err(ApiError::validation("finish enrollment with a code from the authenticator"));
        }
        _ => return Err(ApiError::validation("send exactly one of code or recovery_code")),
    };

    let (session_token, session_hash) = new_token();
    let recovery_codes: Option<Vec<String>> = matches!(proof, Proof::Code { enroll_secret: Some(_), .. })
        .then(|| (0..RECOVERY_CODE_COUNT).map(|_| new_recovery_code()).collect());
    let client_addr = meta.client_ip.to_string();
    let absolute_s = state.config.security.session_absolute_timeout_s as f64;

    let outcome = state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let spent = tx
                .execute("UPDATE mfa_challenges SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL", &[&challenge_hash])
                .await
                .map_err(db_error)?;
            if spent != 1 {
                return Ok(Err(ApiError::new(Code::Unauthenticated, "this login step was already used; log in again")));
            }
            match &proof {
                Proof::Code { step, enroll_secret: Some(secret) } => {
                    let sealed = state.secrets.seal(user_id, secret);
                    tx.execute(
                        "UPDATE users SET totp_secret_enc = $2, totp_enrolled_at = now(), totp_last_step = $3 WHERE id = $1",
                        &[&user_id, &sealed, step],
                    )
                    .await
                    .map_err(db_error)?;
                    tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await.map_err(db_error)?;
                    for code in recovery_codes.iter().flatten() {
                        tx.execute(
                            "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)",
                            &[&user_id, &recovery_code_hash(code)],
                        )
                        .await
                        .map_err(db_error)?;
                    }
                }
                Proof::Code { step, enroll_secret: None } => {
                    let advanced = tx
                        .execute("UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2", &[&user_id, step])
                        .await
                        .map_err(db_error)?;
                    if advanced != 1 {
                        return Ok(Err(ApiError::new(Code::TotpReplayed, "this code was already used; wait for the next one")));
                    }
                }
                Proof::RecoveryCode { hash } => {
                    let used = tx
                        .execute(
                            "UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                            &[&user_id, hash],
                        )
                        .await
                        .map_err(db_error)?;
                    if used != 1 {
                        return Ok(Err(ApiError::new(Code::InvalidTotp, "unknown or already used recovery code")));
                    }
                }
            }
            let row = tx
                .query_one(
                    "WITH s AS (
                        INSERT INTO sessions (token_hash, user_id, expires_at, client_addr)
                        VALUES ($1, $2, now() + make_interval(secs => $3::float8), $4)
                        RETURNING expires_at)
                     SELECT s.expires_at, u.id, u.username, u.full_name, u.role, u.branch_id
                       FROM s, users u WHERE u.id = $2",
                    &[&session_hash, &user_id, &absolute_s, &client_addr],
                )
                .await
                .map_err(db_error)?;
            tx.execute("DELETE FROM login_throttle WHERE username = $1", &[&username]).await.map_err(db_error)?;
            let method = match &proof {
                Proof::Code { enroll_secret: Some(_), .. } => "totp_enrollment",
                Proof::Code { .. } => "totp",
                Proof::RecoveryCode { .. } => "recovery_code",
            };
            crate::audit::record_tx(
                &tx,
                &crate::audit::AuditEntry {
                    actor_id: Some(user_id),
                    actor_role: Some(row.get::<_, String>("role")),
                    branch_id: row.get("branch_id"),
                    action: if recovery_codes.is_some() { "auth.mfa_enrolled" } else { "auth.login" },
                    target: format!("user:{username}"),
                    request_id: &meta.request_id,
                    client_addr: &client_addr,
                    outcome: "success",
                    details: serde_json::json!({ "method": method }),
                },
            )
            .await?;
            tx.commit().await.map_err(db_error)?;
            Ok(Ok(SessionResponse {
                session_token: session_token.clone(),
                expires_at: row.get("expires_at"),
                user: UserView {
                    id: row.get("id"),
                    username: row.get("username"),
                    full_name: row.get("full_name"),
                    role: row.get("role"),
                    branch_id: row.get("branch_id"),
                },
                recovery_codes: recovery_codes.clone(),
            }))
        })
        .await?;
    match outcome {
        Ok(response) => Ok(response),
        Err(refused) => {
            if refused.code != Code::Unauthenticated {
                record_failure(state, meta, &username, Some(user_id), "totp", refused.code.as_str()).await?;
            }
            Err(refused)
        }
    }
}

pub async fn logout(state: &AppState, meta: &RequestMeta, caller: &Caller) -> ApiResult<()> {
    let client_addr = meta.client_ip.to_string();
    let result = state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            tx.execute(
                "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
                &[&caller.session_hash],
            )
            .await
            .map_err(db_error)?;
            crate::audit::record_tx(
                &tx,
                &crate::audit::AuditEntry::success_by(
                    caller,
                    meta,
                    &client_addr,
                    "auth.logout",
                    format!("user:{}", caller.username),
                    serde_json::json!({}),
                ),
            )
            .await?;
            tx.commit().await.map_err(db_error)
        })
        .await;
    // After the commit, so a racing request cannot cache the session again.
    state.sessions.evict(&caller.session_hash);
    result
}

/// Recovery codes: 12 characters of Crockford-style base32 (60 bits), shown
/// as XXXX-XXXX-XXXX. Stored as SHA-256 of the normalized form.
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::rngs::OsRng;
    let chars: Vec<u8> = (0..12).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect();
    format!(
        "{}-{}-{}",
        std::str::from_utf8(&chars[0..4]).unwrap(),
        std::str::from_utf8(&chars[4..8]).unwrap(),
        std::str::from_utf8(&chars[8..12]).unwrap()
    )
}

fn recovery_code_hash(code: &str) -> Vec<u8> {
    let normalized: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    Sha256::digest(normalized.as_bytes()).to_vec()
}
