//! Paging: page sizes and keyset cursors.
//!
//! A cursor is the keyset position of the last item of the previous page,
//! written plainly (`<unix micros>_<uuid>`, a username, an account number, an
//! id) and published with its exact pattern: any well-formed cursor is a
//! valid position, so a client can neither be surprised by a 400 for a value
//! the document allows nor see anything a page of its own would not show.
//! An empty cursor is the first page.

use chrono::{DateTime, Utc};
use serde_json::json;
use utoipa::openapi::{RefOr, Schema};
use uuid::Uuid;

use crate::{
    error::{ApiError, ApiResult},
    text::{from_json, TextRule},
};

pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 200;

pub fn limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    Ok(limit)
}

pub fn limit_schema() -> RefOr<Schema> {
    from_json(json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}))
}

/// (created_at, id) of an entry or a transfer.
pub static TIME_ID: TextRule = TextRule::new(
    r"^([0-9]{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$",
    0,
    53,
);
/// A username (customers are listed by it).
pub static USERNAME: TextRule = TextRule::new(r"^([a-z0-9._-]{1,64})?$", 0, 64);
/// An account number (accounts are listed by it).
pub static ACCOUNT_NUMBER: TextRule = TextRule::new(r"^([A-Za-z0-9]{1,34})?$", 0, 34);
/// A row id (the audit trail).
pub static ROW_ID: TextRule = TextRule::new(r"^([0-9]{1,18})?$", 0, 18);
/// A UUID in its hyphenated form (notifications).
pub static UUID: TextRule =
    TextRule::new(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$", 0, 36);

pub fn time_id_schema() -> RefOr<Schema> {
    TIME_ID.schema()
}
pub fn username_schema() -> RefOr<Schema> {
    USERNAME.schema()
}
pub fn account_number_schema() -> RefOr<Schema> {
    ACCOUNT_NUMBER.schema()
}
pub fn row_id_schema() -> RefOr<Schema> {
    ROW_ID.schema()
}
pub fn uuid_schema() -> RefOr<Schema> {
    UUID.schema()
}

/// The cursor's text when it is well formed; `None` for the first page.
pub fn cursor<'a>(rule: &TextRule, cursor: &'a Option<String>) -> ApiResult<Option<&'a str>> {
    match cursor.as_deref() {
        None | Some("") => Ok(None),
        Some(text) if rule.accepts(text) => Ok(Some(text)),
        Some(_) => Err(ApiError::validation(format!("cursor must match {}", rule.pattern))),
    }
}

pub fn encode_time_id(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{id}", at.timestamp_micros())
}

pub fn decode_time_id(text: &Option<String>) -> ApiResult<Option<(DateTime<Utc>, Uuid)>> {
    let Some(text) = cursor(&TIME_ID, text)? else { return Ok(None) };
    let (micros, id) = text.split_once('_').expect("the pattern has an underscore");
    let at = micros.parse().ok().and_then(DateTime::from_timestamp_micros);
    let id = Uuid::parse_str(id).ok();
    match at.zip(id) {
        Some(position) => Ok(Some(position)),
        None => Err(ApiError::validation("cursor is out of range")),
    }
}

pub fn decode_row_id(text: &Option<String>) -> ApiResult<Option<i64>> {
    Ok(cursor(&ROW_ID, text)?.map(|t| t.parse().expect("18 digits fit an i64")))
}

pub fn decode_uuid(text: &Option<String>) -> ApiResult<Option<Uuid>> {
    Ok(cursor(&UUID, text)?.map(|t| Uuid::parse_str(t).expect("the pattern is a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_id_cursor_round_trips() {
        let at = DateTime::from_timestamp_micros(1_764_460_800_123_456).unwrap();
        let id = Uuid::now_v7();
        let text = encode_time_id(at, id);
        assert_eq!(decode_time_id(&Some(text)).unwrap(), Some((at, id)));
        assert_eq!(decode_time_id(&Some(String::new())).unwrap(), None);
        assert_eq!(decode_time_id(&Some("9999999999999999_".to_string() + &id.to_string())).unwrap().unwrap().1, id);
        assert!(decode_time_id(&Some("abc".into())).is_err());
    }
}
