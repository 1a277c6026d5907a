//! Authentication: passwords (argon2id), TOTP (RFC 6238) with encrypted
//! secrets and replay protection, the two-step login, and bearer sessions
//! stored only as hashes. Who may do what is decided in `crate::access`.

pub mod login;
pub mod password;
pub mod session;
pub mod throttle;
pub mod totp;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh 256-bit random token, URL-safe base64, and the hash we store.
pub fn new_token() -> (String, Vec<u8>) {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// Tokens are high-entropy, so a plain SHA-256 is enough to make a stolen
/// table useless; no salt or slow hash is needed.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
