//! RFC 9457 problem+json, the one shape of every error a FlexiBank process
//! answers: the bank's server and the switch both render it here, so the two
//! cannot drift apart.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

/// The problem+json body with the contract's stable `code`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
}

/// The response for an error `code` (snake_case). Every 429 and 503 says
/// when to come back: `retry_after_s`, else one second.
pub fn response(status: StatusCode, code: &str, detail: String, retry_after_s: Option<u64>) -> Response {
    let problem = Problem {
        type_uri: format!("https://flexibank.example/problems/{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
        code: code.to_string(),
    };
    let body = serde_json::to_vec(&problem).expect("a problem serializes");
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    let retry_after_s = match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Some(retry_after_s.unwrap_or(1)),
        _ => retry_after_s,
    };
    if let Some(seconds) = retry_after_s {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}
