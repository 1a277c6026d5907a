//! The switch's one error type, and its mapping to RFC 9457 problem+json.
//! Handlers and the directory return `SwitchError`; nothing else builds an
//! error response.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

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
    /// The payee's key is at the payer's own bank: not an inter-bank payment.
    SameBank,
    /// An `e2e_id` already names a payment with another payer, payee key, amount or currency.
    E2eIdReused,
    /// Acknowledging a payment that is not decided yet.
    NotDecided,
    /// The payer bank's liquidity at the switch cannot cover the payment.
    LiquidityExhausted,
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
            Code::SameBank => "same_bank",
            Code::E2eIdReused => "e2e_id_reused",
            Code::NotDecided => "not_decided",
            Code::LiquidityExhausted => "liquidity_exhausted",
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
            Code::KeyTaken | Code::KeyLimitReached | Code::SameBank | Code::E2eIdReused | Code::NotDecided | Code::LiquidityExhausted => StatusCode::CONFLICT,
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

pub use flexibank_consortium::problem::Problem;

impl IntoResponse for SwitchError {
    fn into_response(self) -> Response {
        flexibank_consortium::problem::response(self.code.status(), self.code.as_str(), self.detail, self.retry_after_s)
    }
}
