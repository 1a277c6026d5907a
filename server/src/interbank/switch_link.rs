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
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::{
    config::InterbankConfig,
    error::{ApiError, Code},
};

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
    base: Url,
    bank_id: String,
}

impl SwitchLink {
    pub fn new(config: &InterbankConfig) -> anyhow::Result<SwitchLink> {
        let dir = &config.tls_dir;
        let http = pki::bank_client(dir, &dir.join(pki::CA_CERT_FILE), &config.bank_id, Duration::from_millis(config.call_timeout_ms))?;
        let base = Url::parse(&config.switch_url).map_err(|e| anyhow::anyhow!("interbank.switch_url: {e}"))?;
        anyhow::ensure!(base.scheme() == "https" && base.path_segments().is_some(), "interbank.switch_url must be an https URL");
        Ok(SwitchLink { http, base, bank_id: config.bank_id.clone() })
    }

    /// `method` on this bank's `/switch/v1/banks/{bank}` + `segments` (each %-escaped by the URL itself).
    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in SwitchLink::new")
            .pop_if_empty()
            .extend(["switch", "v1", "banks", self.bank_id.as_str()])
            .extend(segments);
        self.http.request(method, url)
    }

    async fn call<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, LinkError> {
        let response = request.send().await.map_err(not_answered)?;
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
        if status == StatusCode::NO_CONTENT {
            return serde_json::from_value(serde_json::Value::Null).map_err(|e| LinkError::NoAnswer(format!("reading the answer: {e:#}")));
        }
        response.json::<T>().await.map_err(|e| LinkError::NoAnswer(format!("reading the answer: {e:#}")))
    }

    /// Step 2. Waits at most `timeout` (the customer's wait), beyond the client's own bound.
    pub async fn initiate(&self, request: &PaymentRequest, timeout: Duration) -> Result<Payment, LinkError> {
        self.call(self.request(Method::POST, &["payments"]).json(request).timeout(timeout)).await
    }

    pub async fn decision(&self, e2e_id: &str) -> Result<Payment, LinkError> {
        self.call(self.request(Method::GET, &["payments", e2e_id])).await
    }

    pub async fn acknowledge(&self, e2e_id: &str) -> Result<Payment, LinkError> {
        self.call(self.request(Method::POST, &["payments", e2e_id, "ack"])).await
    }

    /// Many acknowledgements in one call (at most `protocol::MAX_ACKS`); the ids the switch recorded.
    pub async fn acknowledge_many(&self, e2e_ids: &[String]) -> Result<Vec<String>, LinkError> {
        let body = flexibank_consortium::protocol::Acks { e2e_ids: e2e_ids.to_vec() };
        let recorded: flexibank_consortium::protocol::AcksRecorded = self.call(self.request(Method::POST, &["acks"]).json(&body)).await?;
        Ok(recorded.acknowledged)
    }

    /// `user` is this bank's opaque id of the customer asking: the switch limits look-ups per customer.
    pub async fn lookup(&self, key_type: KeyType, value: &str, user: &str) -> Result<DirectoryEntry, LinkError> {
        self.call(self.request(Method::GET, &["directory"]).query(&[("type", key_type.as_str()), ("value", value), ("user", user)])).await
    }

    pub async fn register_key(&self, request: &RegisterKey) -> Result<StoredKey, LinkError> {
        self.call(self.request(Method::POST, &["keys"]).json(request)).await
    }

    /// Gone from the directory, or never there: either way the key is not this bank's any more.
    pub async fn delete_key(&self, key_type: KeyType, value: &str) -> Result<(), LinkError> {
        match self.call::<serde_json::Value>(self.request(Method::DELETE, &["keys", key_type.as_str(), value])).await {
            Err(LinkError::Refused { status: StatusCode::NOT_FOUND, .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    pub async fn position(&self) -> Result<Position, LinkError> {
        self.call(self.request(Method::GET, &["position"])).await
    }

    pub async fn put_endpoint(&self, interbank_addr: &str) -> Result<Endpoint, LinkError> {
        let body = Endpoint { interbank_addr: interbank_addr.to_string() };
        self.call(self.request(Method::PUT, &["endpoint"]).json(&body)).await
    }
}

/// A connection that failed (TCP or TLS) never carried the request; anything later may have.
fn not_answered(e: reqwest::Error) -> LinkError {
    if e.is_connect() {
        LinkError::NotSent(format!("{e:#}"))
    } else {
        LinkError::NoAnswer(format!("{e:#}"))
    }
}

/// What a failed call to the switch means to the customer.
pub fn api_error(e: LinkError) -> ApiError {
    match e {
        LinkError::Refused { code, detail, retry_after_s, .. } => {
            let mut error = ApiError::new(Code::parse(&code).filter(|c| *c != Code::Internal).unwrap_or(Code::BankUnavailable), detail);
            if let Some(seconds) = retry_after_s {
                error = error.with_retry_after(seconds);
            }
            if (error.code == Code::BankUnavailable || error.code == Code::RateLimited) && error.retry_after_s.is_none() {
                error = error.with_retry_after(1);
            }
            error
        }
        other => {
            tracing::warn!(error = %other, "the switch did not answer");
            ApiError::new(Code::BankUnavailable, "the consortium's switch cannot be reached right now; retry").with_retry_after(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_and_escaped_by_the_url() {
        for switch_url in ["https://switch.example:9443", "https://switch.example:9443/"] {
            let config: crate::config::InterbankConfig = toml::from_str(&format!(
                "bank_id = \"00000001\"\nbank_name = \"A\"\nswitch_url = \"{switch_url}\"\ntls_dir = \"/nonexistent\"\nlisten = \"127.0.0.1:0\""
            ))
            .unwrap();
            let base = Url::parse(&config.switch_url).unwrap();
            let link = SwitchLink { http: reqwest::Client::new(), base, bank_id: config.bank_id };
            let request = link.request(Method::DELETE, &["keys", "email", "a+b@x.example/?"]).build().unwrap();
            assert_eq!(request.url().as_str(), "https://switch.example:9443/switch/v1/banks/00000001/keys/email/a+b@x.example%2F%3F");
        }
    }
}
