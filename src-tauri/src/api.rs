//! The HTTPS client for the contract in `shared/API.md`. It alone holds the
//! session token (in memory, never in the web view) and turns every failure
//! into one `CommandError` the web view can show.

use std::{sync::Mutex, time::Duration};

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde_json::Value;

pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// A 1000-item batch is the slowest request; it finishes well inside this.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The server answered with problem+json.
    Problem,
    /// No answer: refused, reset, TLS failure, timeout.
    Unreachable,
    /// Refused here before anything was sent.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct CommandError {
    pub kind: ErrorKind,
    pub status: u16,
    pub code: String,
    pub detail: String,
    pub retry_after_s: Option<u64>,
}

impl CommandError {
    pub fn invalid(detail: impl Into<String>) -> CommandError {
        CommandError {
            kind: ErrorKind::Invalid,
            status: 0,
            code: "validation_failed".into(),
            detail: detail.into(),
            retry_after_s: None,
        }
    }

    pub fn unreachable(detail: impl Into<String>) -> CommandError {
        CommandError {
            kind: ErrorKind::Unreachable,
            status: 0,
            code: "unreachable".into(),
            detail: detail.into(),
            retry_after_s: None,
        }
    }

    /// Worth sending again later with the same Idempotency-Key: nothing
    /// answered, or the cluster had no primary for a moment.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Unreachable
            || matches!(
                self.code.as_str(),
                "no_primary" | "idempotency_in_progress" | "rate_limited"
            )
            || (self.kind == ErrorKind::Problem && self.status >= 500)
    }

    pub fn is_unauthenticated(&self) -> bool {
        self.code == "unauthenticated"
    }
}

pub type CmdResult<T> = Result<T, CommandError>;

/// A file as the server sent it.
pub struct Download {
    pub bytes: Vec<u8>,
    pub content_disposition: Option<String>,
}

pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    session_token: Mutex<Option<String>>,
    /// The single-use token between the password step and the code step.
    mfa_token: Mutex<Option<String>>,
}

impl ApiClient {
    /// Trusts only `ca_pem` (the bank's CA), never the system roots, and
    /// never plain HTTP.
    pub fn new(base_url: &str, ca_pem: &[u8]) -> Result<ApiClient, String> {
        let cas = reqwest::Certificate::from_pem_bundle(ca_pem)
            .map_err(|e| format!("CA certificate: {e}"))?;
        if cas.is_empty() {
            return Err("the CA file holds no PEM certificate".into());
        }
        let http = cas
            .into_iter()
            .fold(reqwest::Client::builder(), |builder, ca| {
                builder.add_root_certificate(ca)
            })
            .tls_built_in_root_certs(false)
            .https_only(true)
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            // The server closes idle connections after its header read
            // timeout (10 s): let ours go first, never mid-request.
            .pool_idle_timeout(Duration::from_secs(5))
            .user_agent(concat!("flexibank-desktop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(ApiClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            session_token: Mutex::new(None),
            mfa_token: Mutex::new(None),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn has_session(&self) -> bool {
        self.session_token.lock().unwrap().is_some()
    }

    pub fn forget_session(&self) {
        *self.session_token.lock().unwrap() = None;
    }

    pub async fn get(&self, path: &str, query: &[(&str, Option<String>)]) -> CmdResult<Value> {
        let query: Vec<(&str, &String)> = query
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
            .collect();
        self.send(self.request(Method::GET, path).query(&query))
            .await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> CmdResult<Value> {
        let mut request = self.request(Method::POST, path);
        if !body.is_null() {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    pub async fn delete(&self, path: &str) -> CmdResult<Value> {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> CmdResult<Value> {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> CmdResult<Value> {
        self.send(self.request(Method::PATCH, path).json(body)).await
    }

    /// A file the server sends (a statement's PDF): its bytes, checked to be
    /// of `content_type`, and the file name its Content-Disposition gives.
    pub async fn download(&self, path: &str, content_type: &str) -> CmdResult<Download> {
        let (status, headers, bytes) = self.fetch(self.request(Method::GET, path).header(reqwest::header::ACCEPT, content_type)).await?;
        let header = |name: reqwest::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let got = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        if !got.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(content_type) {
            return Err(CommandError {
                kind: ErrorKind::Problem,
                status: status.as_u16(),
                code: "bad_response".into(),
                detail: format!("the server sent {got:?}, not {content_type}"),
                retry_after_s: None,
            });
        }
        Ok(Download {
            bytes,
            content_disposition: header(reqwest::header::CONTENT_DISPOSITION),
        })
    }

    /// Password step. Keeps the MFA token; the web view only learns what comes next.
    pub async fn login(&self, username: &str, password: &str) -> CmdResult<Value> {
        self.forget_session();
        let mut answer = self
            .post(
                "/v1/auth/login",
                &serde_json::json!({"username": username, "password": password}),
                None,
            )
            .await?;
        let token = answer.as_object_mut().and_then(|o| o.remove("mfa_token"));
        let token = token.and_then(|t| t.as_str().map(str::to_string));
        *self.mfa_token.lock().unwrap() = token;
        Ok(answer)
    }

    /// Code step. Keeps the session token and hands the rest to the web view.
    pub async fn verify_mfa(
        &self,
        code: Option<&str>,
        recovery_code: Option<&str>,
    ) -> CmdResult<Value> {
        let mfa_token = self
            .mfa_token
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| CommandError::invalid("log in with your password first"))?;
        let body = match (code, recovery_code) {
            (Some(code), None) => serde_json::json!({"mfa_token": mfa_token, "code": code}),
            (None, Some(recovery)) => {
                serde_json::json!({"mfa_token": mfa_token, "recovery_code": recovery})
            }
            _ => {
                return Err(CommandError::invalid(
                    "give either the 6-digit code or a recovery code",
                ))
            }
        };
        let mut answer = self
            .post("/v1/auth/mfa", &body, None)
            .await
            .inspect_err(|e| {
                // A spent or expired MFA token cannot be used again: start over.
                if e.code == "unauthenticated" {
                    *self.mfa_token.lock().unwrap() = None;
                }
            })?;
        *self.mfa_token.lock().unwrap() = None;
        let token = answer
            .as_object_mut()
            .and_then(|o| o.remove("session_token"));
        let token = token
            .and_then(|t| t.as_str().map(str::to_string))
            .ok_or_else(|| CommandError {
                kind: ErrorKind::Problem,
                status: 200,
                code: "bad_response".into(),
                detail: "the server's answer had no session token".into(),
                retry_after_s: None,
            })?;
        *self.session_token.lock().unwrap() = Some(token);
        Ok(answer)
    }

    pub async fn logout(&self) -> CmdResult<()> {
        if self.has_session() {
            let result = self.post("/v1/auth/logout", &Value::Null, None).await;
            self.forget_session();
            // Logged out locally whatever the server said; a server that
            // cannot be reached lets the session expire by itself.
            if let Err(e) = result {
                if !e.is_transient() && !e.is_unauthenticated() {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        debug_assert!(path.starts_with('/'), "paths are absolute: {path}");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = self.session_token.lock().unwrap().as_deref() {
            request = request.bearer_auth(token);
        }
        request
    }

    async fn send(&self, request: RequestBuilder) -> CmdResult<Value> {
        let (status, _, bytes) = self.fetch(request).await?;
        if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| CommandError {
            kind: ErrorKind::Problem,
            status: status.as_u16(),
            code: "bad_response".into(),
            detail: format!("the server's answer is not JSON: {e}"),
            retry_after_s: None,
        })
    }

    /// Sends the request: a success's status, headers and body, or the one
    /// `CommandError` for no answer or a problem.
    async fn fetch(&self, request: RequestBuilder) -> CmdResult<(StatusCode, reqwest::header::HeaderMap, Vec<u8>)> {
        let response = request
            .send()
            .await
            .map_err(|e| CommandError::unreachable(describe(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let retry_after_s = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CommandError::unreachable(describe(&e)))?;
        if status.is_success() {
            return Ok((status, headers, bytes.to_vec()));
        }
        let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = |key: &str| problem.get(key).and_then(Value::as_str).map(str::to_string);
        let error = CommandError {
            kind: ErrorKind::Problem,
            status: status.as_u16(),
            code: text("code").unwrap_or_else(|| format!("http_{}", status.as_u16())),
            detail: text("detail")
                .or_else(|| text("title"))
                .unwrap_or_else(|| status.to_string()),
            retry_after_s,
        };
        if error.is_unauthenticated() {
            self.forget_session();
        }
        Err(error)
    }
}

fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "the server did not answer in time".to_string()
    } else if error.is_connect() {
        "cannot connect to the server".to_string()
    } else {
        error.to_string()
    };
    // The innermost causes carry the reason, e.g. the TLS layer refusing the
    // server's certificate.
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        let reason = inner.to_string();
        if !text.contains(&reason) {
            text.push_str(": ");
            text.push_str(&reason);
        }
        source = inner.source();
    }
    text
}
