//! Webhooks: the event as JSON, POSTed over HTTPS to each endpoint a business
//! customer registered, signed so the receiver can tell it came from the bank
//! and is not a replay.
//!
//! Header `FlexiBank-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` where
//! the MAC is keyed with the endpoint's secret over `"<t>." + body`. A
//! receiver recomputes it (see `verify`), compares in constant time, and
//! refuses a `t` more than `SIGNATURE_TOLERANCE_S` away from its clock; the
//! body's `id` (also in `FlexiBank-Event-Id`) de-duplicates a redelivery.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

use super::channels::{Outbound, SendError};
use crate::{
    auth::totp::SecretBox,
    db::{db_error, Client},
    error::{ApiError, ApiResult, Code},
    text::TextRule,
};

pub const SIGNATURE_HEADER: &str = "FlexiBank-Signature";
pub const SIGNATURE_TOLERANCE_S: u64 = 300;
pub const MAX_ENDPOINTS: i64 = 5;
const SECRET_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The receiver's check, documented for integrators: right MAC, fresh timestamp.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now_unix_s: u64) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<u64>().ok(),
            Some(("v1", v)) => signature = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (timestamp, signature) = (timestamp.ok_or("no timestamp")?, signature.ok_or("no v1 signature")?);
    if now_unix_s.abs_diff(timestamp) > SIGNATURE_TOLERANCE_S {
        return Err("timestamp outside the tolerance: a replay or a wrong clock");
    }
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| "signature does not match")
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    #[schema(schema_with = url_schema)]
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Only in the answer to the registration: it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// An https URL with a domain name (whose last label starts with a letter)
/// or an IPv4 address, an optional port, path and query; no credentials, no fragment, at most
/// 2048 characters. Every such string is one `Url::parse` reads as written.
pub static URL: TextRule = TextRule::new(
    concat!(
        r"^https://(([A-Za-z0-9]+(-[A-Za-z0-9]+)*\.)*[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*",
        r"|(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})",
        r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0))?",
        r"(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$"
    ),
    9,
    2048,
);

fn url_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    URL.schema()
}

fn check_url(url: &str) -> ApiResult<()> {
    let parsed = URL.accepts(url).then(|| reqwest::Url::parse(url).ok()).flatten();
    if parsed.is_none() {
        return Err(ApiError::validation(
            "url must be an https:// URL with a domain name, without credentials or fragment, of at most 2048 characters",
        ));
    }
    Ok(())
}

/// Registers an endpoint for a customer who owns a business account; the
/// answer carries the secret, once.
pub async fn register(tx: &tokio_postgres::Transaction<'_>, secrets: &SecretBox, user_id: Uuid, request: &NewWebhook) -> ApiResult<Webhook> {
    check_url(&request.url)?;
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM account_owners o JOIN accounts a ON a.id = o.account_id
                             WHERE o.user_id = $1 AND a.kind = 'business' AND a.status <> 'closed'),
                    (SELECT count(*) FROM webhook_endpoints WHERE user_id = $1 AND active)",
            &[&user_id],
        )
        .await
        .map_err(db_error)?;
    let (business, count): (bool, i64) = (row.get(0), row.get(1));
    if !business {
        return Err(ApiError::forbidden());
    }
    if count >= MAX_ENDPOINTS {
        return Err(ApiError::new(Code::LimitReached, format!("at most {MAX_ENDPOINTS} webhook endpoints; delete one first")));
    }
    let secret: [u8; SECRET_BYTES] = rand::random();
    let sealed = secrets.seal(user_id, &secret);
    let row = tx
        .query_one(
            "INSERT INTO webhook_endpoints (user_id, url, secret_enc) VALUES ($1, $2, $3) RETURNING id, created_at",
            &[&user_id, &request.url, &sealed],
        )
        .await
        .map_err(db_error)?;
    Ok(Webhook { id: row.get(0), url: request.url.clone(), created_at: row.get(1), secret: Some(format!("whsec_{}", hex::encode(secret))) })
}

pub async fn list(client: &Client, user_id: Uuid) -> ApiResult<Vec<Webhook>> {
    let rows = client
        .query("SELECT id, url, created_at FROM webhook_endpoints WHERE user_id = $1 AND active ORDER BY id", &[&user_id])
        .await
        .map_err(db_error)?;
    Ok(rows.iter().map(|r| Webhook { id: r.get(0), url: r.get(1), created_at: r.get(2), secret: None }).collect())
}

/// Stops deliveries to the endpoint; false when the user has no such endpoint.
pub async fn deactivate(client: &Client, user_id: Uuid, id: Uuid) -> ApiResult<bool> {
    let changed = client
        .execute("UPDATE webhook_endpoints SET active = false WHERE id = $1 AND user_id = $2 AND active", &[&id, &user_id])
        .await
        .map_err(db_error)?;
    Ok(changed == 1)
}

/// The bytes a receiver's secret is made of, from the string shown once.
pub fn secret_bytes(shown: &str) -> Option<Vec<u8>> {
    hex::decode(shown.strip_prefix("whsec_")?).ok()
}

pub struct Webhooks {
    pub http: reqwest::Client,
    pub secrets: SecretBox,
}

impl Webhooks {
    /// The endpoint comes with the claimed delivery (it may have been
    /// deactivated since the event).
    pub async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        let endpoint = message.webhook.as_ref().ok_or_else(|| SendError::fatal("webhook endpoint is gone"))?;
        if !endpoint.active {
            return Err(SendError::fatal("webhook endpoint was removed"));
        }
        let (user_id, url, sealed) = (message.user_id, endpoint.url.clone(), &endpoint.secret_enc);
        let secret = self.secrets.open(user_id, sealed).ok_or_else(|| SendError::fatal("webhook secret cannot be opened"))?;
        let body = serde_json::to_vec(&serde_json::json!({
            "id": message.event_id,
            "kind": message.kind,
            "created_at": message.created_at,
            "data": message.payload,
        }))
        .expect("JSON");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("FlexiBank-Event-Id", message.event_id.to_string())
            .header(SIGNATURE_HEADER, sign(&secret, now, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::retry(super::channels::describe("webhook", &e)))?;
        if response.status().is_success() {
            Ok(())
        } else {
            // A receiver's 4xx may be a deploy in progress: webhooks always retry.
            Err(SendError::retry(format!("webhook: {}", response.status())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_secret_only_and_only_while_fresh() {
        let secret = b"a shared secret of the receiver";
        let body = br#"{"id":"e1","kind":"money.debit"}"#;
        let header = sign(secret, 1_700_000_000, body);
        assert_eq!(verify(secret, &header, body, 1_700_000_010), Ok(()));
        assert!(verify(b"another secret", &header, body, 1_700_000_010).is_err(), "wrong secret");
        assert!(verify(secret, &header, br#"{"id":"e1","kind":"money.credit"}"#, 1_700_000_010).is_err(), "changed body");
        assert!(verify(secret, &header, body, 1_700_000_000 + SIGNATURE_TOLERANCE_S + 1).is_err(), "replayed later");
        assert!(verify(secret, "t=1700000000", body, 1_700_000_000).is_err(), "no signature");
        assert!(verify(secret, "garbage", body, 1_700_000_000).is_err());
    }

    #[test]
    fn only_https_urls_without_credentials() {
        assert!(check_url("https://hooks.example.com/flexibank").is_ok());
        for bad in ["http://hooks.example.com/", "ftp://x", "https://user:pw@hooks.example.com/", "not a url", "https://"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    /// What the published pattern admits, `Url::parse` reads as an https URL
    /// of the same host: the edges of each part.
    #[test]
    fn the_url_pattern_admits_only_parseable_urls() {
        for good in [
            "https://a", "https://a.b-c.d1", "https://xn.example", "https://255.255.255.255:65535/",
            "https://0.0.0.0:0", "https://h.example/%zz?%?/", "https://h.example?q=1&r=(2)", "https://A.EXAMPLE:1/@:",
        ] {
            assert!(URL.accepts(good), "{good}");
            let parsed = reqwest::Url::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(parsed.scheme(), "https");
        }
        for bad in [
            "https://a.1", "https://256.1.1.1", "https://1.2.3", "https://a..b", "https://-a.b", "https://a-.b",
            "https://xn--a.b", "https://a:65536", "https://a:01", "https://a/#f", "https://a/ b", "https://a\\b",
        ] {
            assert!(!URL.accepts(bad), "{bad}");
        }
    }
}
