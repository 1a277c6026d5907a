//! This bank's calls to the switch, over mutual TLS with its own certificate
//! (docs/consortium.md). Every failure says whether the request may have
//! reached the switch: only a request that certainly did not (`NotSent`) lets
//! the bank decide a payment alone.

use std::time::Duration;

use flexibank_consortium::{
    keys::{DirectoryEntry, KeyType, RegisterKey, StoredKey},
    pki,
    protocol::{Endpoint, Payment, PaymentRequest, Position},
    problem::Problem,
};
use reqwest::{Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};

use crate::config::InterbankConfig;

#[derive(Debug)]
pub enum LinkError {
    /// The connection (TCP or TLS) failed: the switch never saw the request.
    NotSent(String),
    /// The request may have reached the switch, but no usable answer came back.
    NoAnswer(String),
    /// The switch answered with a problem.
    Refused { status: StatusCode, code: String, detail: String, retry_after_s: Option<u64> },
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::NotSent(e) => write!(f, "switch unreachable (nothing sent): {e}"),
            LinkError::NoAnswer(e) => write!(f, "no answer from the switch: {e}"),
            LinkError::Refused { status, code, detail, .. } => write!(f, "switch answered {status} {code}: {detail}"),
        }
    }
}

pub struct SwitchLink {
    http: reqwest::Client,
    base_url: String,
    bank_id: String,
}

impl SwitchLink {
    pub fn new(config: &InterbankConfig) -> anyhow::Result<SwitchLink> {
        let dir = &config.tls_dir;
        let http = pki::bank_client(dir, &dir.join(pki::CA_CERT_FILE), &config.bank_id, Duration::from_millis(config.call_timeout_ms))?;
        Ok(SwitchLink { http, base_url: config.switch_url.trim_end_matches('/').to_string(), bank_id: config.bank_id.clone() })
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/switch/v1/banks/{}{rest}", self.base_url, self.bank_id)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(&self, method: Method, rest: &str, body: Option<&B>, timeout: Option<Duration>) -> Result<(StatusCode, T), LinkError> {
        let mut request = self.http.request(method, self.url(rest));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|e| if e.is_connect() { LinkError::NotSent(format!("{e:#}")) } else { LinkError::NoAnswer(format!("{e:#}")) })?;
        let status = response.status();
        if !status.is_success() {
            let retry_after_s = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
            let problem: Option<Problem> = response.json().await.ok();
            let (code, detail) = problem.map(|p| (p.code, p.detail)).unwrap_or_else(|| ("unknown".into(), String::new()));
            // A 5xx may come after the switch acted: to a payment it is no answer, not a refusal.
            if status.is_server_error() {
                return Err(LinkError::NoAnswer(format!("{status} {code}: {detail}")));
            }
            return Err(LinkError::Refused { status, code, detail, retry_after_s });
        }
        let value = response.json::<T>().await.map_err(|e| LinkError::NoAnswer(format!("reading the answer: {e:#}")))?;
        Ok((status, value))
    }

    /// Step 2. Waits at most `timeout` (the customer's wait), beyond the client's own bound.
    pub async fn initiate(&self, request: &PaymentRequest, timeout: Duration) -> Result<Payment, LinkError> {
        self.call(Method::POST, "/payments", Some(request), Some(timeout)).await.map(|(_, p)| p)
    }

    pub async fn decision(&self, e2e_id: &str) -> Result<Payment, LinkError> {
        self.call::<(), _>(Method::GET, &format!("/payments/{e2e_id}"), None, None).await.map(|(_, p)| p)
    }

    pub async fn acknowledge(&self, e2e_id: &str) -> Result<Payment, LinkError> {
        self.call::<(), _>(Method::POST, &format!("/payments/{e2e_id}/ack"), None, None).await.map(|(_, p)| p)
    }

    /// `user` is this bank's opaque id of the customer asking: the switch limits look-ups per customer.
    pub async fn lookup(&self, key_type: KeyType, value: &str, user: &str) -> Result<DirectoryEntry, LinkError> {
        let query = serde_urlencoded_pairs(&[("type", key_type.as_str()), ("value", value), ("user", user)]);
        self.call::<(), _>(Method::GET, &format!("/directory?{query}"), None, None).await.map(|(_, e)| e)
    }

    pub async fn register_key(&self, request: &RegisterKey) -> Result<StoredKey, LinkError> {
        self.call(Method::POST, "/keys", Some(request), None).await.map(|(_, k)| k)
    }

    pub async fn delete_key(&self, key_type: KeyType, value: &str) -> Result<(), LinkError> {
        let path = format!("/keys/{}/{}", key_type.as_str(), percent_encode(value));
        let response = self.http.delete(self.url(&path)).send().await.map_err(|e| if e.is_connect() { LinkError::NotSent(format!("{e:#}")) } else { LinkError::NoAnswer(format!("{e:#}")) })?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            status => Err(LinkError::Refused { status, code: "unexpected".into(), detail: response.text().await.unwrap_or_default(), retry_after_s: None }),
        }
    }

    pub async fn position(&self) -> Result<Position, LinkError> {
        self.call::<(), _>(Method::GET, "/position", None, None).await.map(|(_, p)| p)
    }

    pub async fn put_endpoint(&self, interbank_addr: &str) -> Result<Endpoint, LinkError> {
        let body = Endpoint { interbank_addr: interbank_addr.to_string() };
        self.call(Method::PUT, "/endpoint", Some(&body), None).await.map(|(_, e)| e)
    }
}

/// RFC 3986 unreserved characters stay; everything else is %-escaped (keys hold `@` and `+`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn serde_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_escaped_for_paths_and_queries() {
        assert_eq!(super::percent_encode("+919876543210"), "%2B919876543210");
        assert_eq!(super::percent_encode("a.b@x.example"), "a.b%40x.example");
        assert_eq!(super::percent_encode("é/ "), "%C3%A9%2F%20");
    }
}
