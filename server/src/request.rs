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
    text::TextRule,
};

/// A JSON body, with unknown fields refused by the target type
/// (`#[serde(deny_unknown_fields)]`). Also keeps the raw bytes, for the
/// idempotency request hash. Its size was bounded before any handler ran
/// (`http::limits::buffer_body`: `server.max_body_bytes`, more for a batch).
pub struct ApiJson<T> {
    pub value: T,
    pub canonical: Vec<u8>,
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> ApiResult<Self> {
        let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .map_err(|_| ApiError::validation("the request body could not be read"))?;
        parse_json(&bytes)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<ApiJson<T>> {
    let raw: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::validation(format!("malformed JSON: {e}")))?;
    // serde would also read a struct from a JSON array of its fields.
    if !raw.is_object() {
        return Err(ApiError::validation("the body must be a JSON object"));
    }
    // serde_json's map is ordered by key, so this is a canonical form: the
    // same request with its fields reordered or re-spaced hashes the same.
    let canonical = serde_json::to_vec(&raw).expect("a parsed value serializes");
    let value = serde_json::from_value(raw).map_err(|e| ApiError::validation(e.to_string()))?;
    Ok(ApiJson { value, canonical })
}

/// For a struct nested in a body: serde would read a struct from a JSON
/// array of its fields too, where the document says object.
pub fn object<'de, D: serde::Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    if !value.is_object() {
        return Err(serde::de::Error::custom(format!("expected a JSON object, not {value}")));
    }
    serde_json::from_value(value).map_err(serde::de::Error::custom)
}

/// `object`, where null (or leaving the field out, with `#[serde(default)]`) is allowed.
pub fn optional_object<'de, D: serde::Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    if value.is_null() {
        return Ok(None);
    }
    object(value).map(Some).map_err(serde::de::Error::custom)
}

/// A JSON array of `object`s.
pub fn objects<'de, D: serde::Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    let values = <Vec<serde_json::Value> as serde::Deserialize>::deserialize(d)?;
    values.into_iter().map(|v| object(v).map_err(serde::de::Error::custom)).collect()
}

/// An integer as JSON Schema means it: `3` and `3.0` alike.
pub fn integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    let integral = value.as_i64().or_else(|| {
        value.as_f64().filter(|f| f.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(f)).map(|f| f as i64)
    });
    integral.ok_or_else(|| serde::de::Error::custom(format!("expected an integer, not {value}")))
}

/// The request id (set or echoed by the request-id layer) and the client's address.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub client_ip: IpAddr,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
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
/// Printable ASCII, not starting or ending with a space (HTTP would strip it).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]([ -~]*[!-~])?$";
static IDEMPOTENCY_KEY: TextRule = TextRule::new(IDEMPOTENCY_KEY_PATTERN, 1, MAX_IDEMPOTENCY_KEY_LEN);
/// A UUID path segment in the hyphenated form the document's `format: uuid` means.
static HYPHENATED_UUID: TextRule =
    TextRule::new("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", 36, 36);

/// The `Idempotency-Key` header: 1–255 printable ASCII characters, required
/// on every money-moving POST.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        let value = parts.headers.get("idempotency-key").ok_or_else(|| {
            ApiError::new(Code::IdempotencyKeyRequired, "money-moving requests need an Idempotency-Key header")
        })?;
        let key = value
            .to_str()
            .ok()
            .filter(|k| IDEMPOTENCY_KEY.accepts(k))
            .ok_or_else(|| ApiError::validation("Idempotency-Key must be 1 to 255 printable ASCII characters"))?;
        Ok(IdempotencyKey(key.to_string()))
    }
}


/// A UUID path segment; anything else is 400 `validation_failed`.
pub struct IdPath(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::validation("bad path"))?;
        HYPHENATED_UUID
            .accepts(&raw)
            .then(|| uuid::Uuid::parse_str(&raw).ok())
            .flatten()
            .map(IdPath)
            .ok_or_else(|| ApiError::validation(format!("{raw:?} is not a UUID")))
    }
}

/// Query parameters with unknown ones refused and problem+json on errors.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::validation(e.body_text()))
    }
}
