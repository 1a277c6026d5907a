//! The switch's one error type, and its mapping to RFC 9457 problem+json.
//! Handlers and the directory return `SwitchError`; nothing else builds an
//! error response.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

/// The contract's error codes for the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ValidationFailed,
    /// The client certificate does not name the bank of the path.
    Forbidden,
    NotFound,
    MethodNotAllowed,
    KeyTaken,
    KeyLimitReached,
    PayloadTooLarge,
    RateLimited,
    /// No database connection (or the request ran out of time): retry.
    Unavailable,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ValidationFailed => "validation_failed",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::KeyTaken => "key_taken",
            Code::KeyLimitReached => "key_limit_reached",
            Code::PayloadTooLarge => "payload_too_large",
            Code::RateLimited => "rate_limited",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal_error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::ValidationFailed => StatusCode::BAD_REQUEST,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::KeyTaken | Code::KeyLimitReached => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug)]
pub struct SwitchError {
    pub code: Code,
    pub detail: String,
    pub retry_after_s: Option<u64>,
}

pub type SwitchResult<T> = Result<T, SwitchError>;

impl SwitchError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        SwitchError { code, detail: detail.into(), retry_after_s: None }
    }
    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(Code::ValidationFailed, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(Code::NotFound, detail)
    }
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds.max(1));
        self
    }
    /// An unexpected failure. The cause goes to the log, never to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(Code::Internal, "an internal error occurred; it has been logged")
    }
}

/// The problem+json body (RFC 9457) with the contract's `code`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
}

impl IntoResponse for SwitchError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let problem = Problem {
            type_uri: format!("https://flexibank.example/problems/{}", self.code.as_str()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: self.detail,
            code: self.code.as_str().to_string(),
        };
        let body = serde_json::to_vec(&problem).expect("problem serializes");
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        // Every 429 and 503 says when to come back.
        let retry_after_s = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Some(self.retry_after_s.unwrap_or(1)),
            _ => self.retry_after_s,
        };
        if let Some(seconds) = retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
