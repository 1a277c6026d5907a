//! Extractors every handler shares: strict JSON bodies, the request's id and
//! client address, and the Idempotency-Key header.

use std::net::{IpAddr, SocketAddr};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

use crate::{
    error::{ApiError, ApiResult, Code},
    state::AppState,
};

/// A JSON body of at most `server.max_body_bytes`, with unknown fields
/// refused by the target type (`#[serde(deny_unknown_fields)]`). Also keeps
/// the raw bytes, for the idempotency request hash.
pub struct ApiJson<T> {
    pub value: T,
    pub canonical: Vec<u8>,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> ApiResult<Self> {
        let limit = state.config.server.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| {
            ApiError::new(Code::PayloadTooLarge, format!("request body is larger than {limit} bytes"))
        })?;
        parse_json(&bytes)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<ApiJson<T>> {
    let raw: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::validation(format!("malformed JSON: {e}")))?;
    // serde_json's map is ordered by key, so this is a canonical form: the
    // same request with its fields reordered or re-spaced hashes the same.
    let canonical = serde_json::to_vec(&raw).expect("a parsed value serializes");
    let value = serde_json::from_value(raw).map_err(|e| ApiError::validation(e.to_string()))?;
    Ok(ApiJson { value, canonical })
}

/// The request id (set or echoed by the request-id layer) and the client's address.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_ip: IpAddr,
}

impl FromRequestParts<AppState> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> ApiResult<Self> {
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let client_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(RequestMeta { request_id, client_ip })
    }
}

pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header: 1–255 printable ASCII characters, required
/// on every money-moving POST.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

impl FromRequestParts<AppState> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> ApiResult<Self> {
        let value = parts.headers.get("idempotency-key").ok_or_else(|| {
            ApiError::new(Code::IdempotencyKeyRequired, "money-moving requests need an Idempotency-Key header")
        })?;
        let key = value
            .to_str()
            .ok()
            .filter(|k| {
                (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&k.len())
                    && k.bytes().all(|b| (0x20..=0x7e).contains(&b))
            })
            .ok_or_else(|| ApiError::validation("Idempotency-Key must be 1 to 255 printable ASCII characters"))?;
        Ok(IdempotencyKey(key.to_string()))
    }
}


/// A UUID path segment; anything else is 400 `validation_failed`.
pub struct IdPath(pub uuid::Uuid);

impl FromRequestParts<AppState> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::validation("bad path"))?;
        uuid::Uuid::parse_str(&raw)
            .map(IdPath)
            .map_err(|_| ApiError::validation(format!("{raw:?} is not a UUID")))
    }
}

/// Query parameters with unknown ones refused and problem+json on errors.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> ApiResult<Self> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::validation(e.body_text()))
    }
}
