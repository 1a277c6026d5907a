//! The one error type of the HTTP layer, and its mapping to RFC 9457
//! problem+json. Domain code returns `ApiError`; nothing else builds error
//! responses.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// The contract's stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ValidationFailed,
    Unauthenticated,
    InvalidCredentials,
    InvalidTotp,
    TotpReplayed,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    InsufficientFunds,
    AccountInactive,
    CurrencyMismatch,
    SameAccount,
    BalanceNotZero,
    UsernameTaken,
    IdempotencyInProgress,
    PayloadTooLarge,
    IdempotencyKeyReused,
    IdempotencyKeyRequired,
    RateLimited,
    LockedOut,
    NoPrimary,
    /// A DBA's promotion that the quorum rule cannot prove safe, without `force`.
    PromotionUnsafe,
    /// A per-customer count is full (webhook endpoints): delete one first.
    LimitReached,
    /// The movement would pass the account's daily limit.
    LimitExceeded,
    /// A standing order that was cancelled or ended changes no more.
    OrderEnded,
    /// An FX quote past its time, or spent already.
    QuoteExpired,
    QuoteUsed,
    /// A review that was decided already.
    ReviewDecided,
    /// A batch holding a transfer the review rules flag: a batch is all or nothing and answered at once.
    ReviewRequired,
    /// Inter-bank (issue 16): a key held by another account in the consortium.
    KeyTaken,
    /// The payee's bank refused the payment, or could not be reached in time.
    PayeeRefused,
    /// The payer bank's liquidity at the switch cannot cover the payment.
    LiquidityExhausted,
    /// The switch could not be reached and nothing was sent to it.
    BankUnavailable,
    /// A key held by an account of this very bank: pay it with a transfer.
    SameBank,
    /// A serialization failure or deadlock: retried by `Db::retry_serializable`, never sent.
    TransientConflict,
    /// The movement's Idempotency-Key exists already: the stored response is sent instead.
    IdempotencyConflict,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ValidationFailed => "validation_failed",
            Code::Unauthenticated => "unauthenticated",
            Code::InvalidCredentials => "invalid_credentials",
            Code::InvalidTotp => "invalid_totp",
            Code::TotpReplayed => "totp_replayed",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::InsufficientFunds => "insufficient_funds",
            Code::AccountInactive => "account_inactive",
            Code::CurrencyMismatch => "currency_mismatch",
            Code::SameAccount => "same_account",
            Code::BalanceNotZero => "balance_not_zero",
            Code::UsernameTaken => "username_taken",
            Code::IdempotencyInProgress => "idempotency_in_progress",
            Code::PayloadTooLarge => "payload_too_large",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::IdempotencyKeyRequired => "idempotency_key_required",
            Code::RateLimited => "rate_limited",
            Code::LockedOut => "locked_out",
            Code::NoPrimary => "no_primary",
            Code::PromotionUnsafe => "promotion_unsafe",
            Code::LimitReached => "limit_reached",
            Code::LimitExceeded => "limit_exceeded",
            Code::OrderEnded => "order_ended",
            Code::QuoteExpired => "quote_expired",
            Code::QuoteUsed => "quote_used",
            Code::ReviewDecided => "review_decided",
            Code::ReviewRequired => "review_required",
            Code::KeyTaken => "key_taken",
            Code::PayeeRefused => "payee_refused",
            Code::LiquidityExhausted => "liquidity_exhausted",
            Code::BankUnavailable => "bank_unavailable",
            Code::SameBank => "same_bank",
            Code::TransientConflict => "transient_conflict",
            Code::IdempotencyConflict => "idempotency_conflict",
            Code::Internal => "internal_error",
        }
    }

    pub fn parse(code: &str) -> Option<Code> {
        const ALL: [Code; 36] = [
            Code::ValidationFailed,
            Code::Unauthenticated,
            Code::InvalidCredentials,
            Code::InvalidTotp,
            Code::TotpReplayed,
            Code::Forbidden,
            Code::NotFound,
            Code::MethodNotAllowed,
            Code::InsufficientFunds,
            Code::AccountInactive,
            Code::CurrencyMismatch,
            Code::SameAccount,
            Code::BalanceNotZero,
            Code::UsernameTaken,
            Code::IdempotencyInProgress,
            Code::PayloadTooLarge,
            Code::IdempotencyKeyReused,
            Code::IdempotencyKeyRequired,
            Code::RateLimited,
            Code::LockedOut,
            Code::NoPrimary,
            Code::PromotionUnsafe,
            Code::LimitReached,
            Code::LimitExceeded,
            Code::OrderEnded,
            Code::QuoteExpired,
            Code::QuoteUsed,
            Code::ReviewDecided,
            Code::ReviewRequired,
            Code::KeyTaken,
            Code::PayeeRefused,
            Code::LiquidityExhausted,
            Code::BankUnavailable,
            Code::SameBank,
            Code::IdempotencyConflict,
            Code::Internal,
        ];
        ALL.into_iter().find(|c| c.as_str() == code)
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::ValidationFailed => StatusCode::BAD_REQUEST,
            Code::Unauthenticated
            | Code::InvalidCredentials
            | Code::InvalidTotp
            | Code::TotpReplayed => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::InsufficientFunds
            | Code::AccountInactive
            | Code::CurrencyMismatch
            | Code::SameAccount
            | Code::BalanceNotZero
            | Code::UsernameTaken
            | Code::IdempotencyInProgress
            | Code::PromotionUnsafe
            | Code::LimitReached
            | Code::LimitExceeded
            | Code::OrderEnded
            | Code::QuoteExpired
            | Code::QuoteUsed
            | Code::ReviewDecided
            | Code::ReviewRequired
            | Code::KeyTaken
            | Code::PayeeRefused
            | Code::LiquidityExhausted
            | Code::SameBank
            | Code::IdempotencyConflict => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Code::IdempotencyKeyRequired => StatusCode::PRECONDITION_REQUIRED,
            Code::RateLimited | Code::LockedOut => StatusCode::TOO_MANY_REQUESTS,
            Code::NoPrimary | Code::TransientConflict | Code::BankUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub detail: String,
    pub retry_after_s: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        ApiError { code, detail: detail.into(), retry_after_s: None }
    }
    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(Code::ValidationFailed, detail)
    }
    pub fn not_found() -> Self {
        Self::new(Code::NotFound, "no such resource")
    }
    pub fn unauthenticated() -> Self {
        Self::new(Code::Unauthenticated, "a valid session is required")
    }
    pub fn forbidden() -> Self {
        Self::new(Code::Forbidden, "your role may not do this")
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == Code::Internal {
            metrics::counter!("flexibank_internal_errors_total").increment(1);
        }
        flexibank_consortium::problem::response(self.code.status(), self.code.as_str(), self.detail, self.retry_after_s)
    }
}
