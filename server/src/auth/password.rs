//! argon2id password hashing. Verification runs on the blocking pool: it is
//! deliberately slow and must not stall the async workers.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};

use crate::error::{ApiError, ApiResult};

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer inputs are refused before hashing, so nobody can make us hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
}

fn hasher(params: Argon2Params) -> Argon2<'static> {
    let params = Params::new(params.memory_kib, params.iterations, 1, None)
        .expect("argon2 parameters are validated at start-up");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn check_new_password(password: &str) -> ApiResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::validation(format!(
            "password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::validation(format!("password must be at most {MAX_PASSWORD_BYTES} bytes")));
    }
    Ok(())
}

pub fn hash_blocking(password: &str, params: Argon2Params) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher(params)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing cannot fail with valid parameters")
        .to_string()
}

pub async fn hash(password: String, params: Argon2Params) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password, params))
        .await
        .map_err(ApiError::internal)
}

/// Verifies against `stored`, or against a dummy hash of the same cost when
/// the user does not exist, so both cases take the same time.
pub async fn verify(password: String, stored: Option<String>, params: Argon2Params) -> ApiResult<bool> {
    let user_exists = stored.is_some();
    tokio::task::spawn_blocking(move || {
        let dummy;
        let stored = match &stored {
            Some(hash) => hash.as_str(),
            None => {
                dummy = dummy_hash(params);
                dummy.as_str()
            }
        };
        let parsed = PasswordHash::new(stored).map_err(ApiError::internal)?;
        // Verify with the parameters embedded in the stored hash.
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(ok && user_exists)
    })
    .await
    .map_err(ApiError::internal)?
}

fn dummy_hash(params: Argon2Params) -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking("not a password anyone has", params)).clone()
}
