//! A customer's notification preferences: which channel gets which events,
//! quiet hours, and low-balance alerts on their own accounts.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use utoipa::{
    openapi::{RefOr, Schema},
    ToSchema,
};
use uuid::Uuid;

use crate::{
    db::{db_error, Client},
    error::{ApiError, ApiResult},
    money::Amount,
    text::{from_json, TextRule},
};

/// "HH:MM", 00:00 to 23:59.
static CLOCK_TIME: TextRule = TextRule::new(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", 5, 5);
/// The IANA time zones this server's PostgreSQL knows (without the
/// `posix/` and `right/` copies), read once at start-up by `load_time_zones`:
/// the one list that validation and the published document share.
static TIME_ZONES: OnceLock<Vec<String>> = OnceLock::new();

pub async fn load_time_zones(client: &Client) -> ApiResult<()> {
    let rows = client
        .query("SELECT name FROM pg_timezone_names WHERE name !~ '^(posix|right)/' ORDER BY name", &[])
        .await
        .map_err(db_error)?;
    let mut zones: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    zones.sort();
    let _ = TIME_ZONES.set(zones);
    Ok(())
}

fn clock_time_schema() -> RefOr<Schema> {
    CLOCK_TIME.schema()
}

fn time_zone_schema() -> RefOr<Schema> {
    match TIME_ZONES.get() {
        Some(zones) => from_json(serde_json::json!({"type": "string", "enum": zones, "description": "An IANA time zone such as \"Asia/Kolkata\"."})),
        None => from_json(serde_json::json!({"type": "string", "maxLength": 64})),
    }
}

fn alerts_schema() -> RefOr<Schema> {
    let alert = serde_json::json!({"type": "object", "additionalProperties": false, "required": ["account_id", "threshold"],
        "properties": {"account_id": {"type": "string", "format": "uuid"}, "threshold": {"$ref": "#/components/schemas/Amount"}}});
    from_json(serde_json::json!({"type": "array", "items": alert,
        "maxItems": MAX_ALERTS,
        "description": "One alert per account: where an account appears more than once, its last entry counts."}))
}

/// Alerts one customer may keep.
pub const MAX_ALERTS: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Local time "HH:MM" in `time_zone`; non-critical messages wait until `end`.
    /// A window whose start is its end is empty: no quiet hours.
    #[schema(schema_with = clock_time_schema)]
    pub start: String,
    #[schema(schema_with = clock_time_schema)]
    pub end: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LowBalanceAlert {
    pub account_id: Uuid,
    pub threshold: Amount,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub sms_money: bool,
    pub sms_security: bool,
    pub email_money: bool,
    pub email_security: bool,
    #[serde(default, deserialize_with = "crate::request::optional_object")]
    pub quiet_hours: Option<QuietHours>,
    #[schema(schema_with = time_zone_schema)]
    pub time_zone: String,
    #[schema(schema_with = alerts_schema)]
    #[serde(deserialize_with = "crate::request::objects")]
    pub low_balance_alerts: Vec<LowBalanceAlert>,
}

fn minutes(text: &str) -> Result<i16, ApiError> {
    if !CLOCK_TIME.accepts(text) {
        return Err(ApiError::validation(format!("quiet_hours: {text:?} is not a time like \"22:00\"")));
    }
    let (h, m) = text.split_once(':').expect("the pattern has a colon");
    let (h, m): (i16, i16) = (h.parse().expect("two digits"), m.parse().expect("two digits"));
    Ok(h * 60 + m)
}

fn hhmm(minutes: i16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

pub async fn get(client: &Client, user_id: Uuid) -> ApiResult<Settings> {
    let row = client
        .query_opt(
            "SELECT sms_money, sms_security, email_money, email_security, quiet_start_min, quiet_end_min, time_zone
               FROM notification_settings WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .map_err(db_error)?;
    let alerts = client
        .query("SELECT account_id, threshold FROM low_balance_alerts WHERE user_id = $1 ORDER BY account_id", &[&user_id])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| LowBalanceAlert { account_id: r.get(0), threshold: Amount(r.get(1)) })
        .collect();
    Ok(match row {
        Some(r) => {
            let (start, end): (Option<i16>, Option<i16>) = (r.get(4), r.get(5));
            Settings {
                sms_money: r.get(0),
                sms_security: r.get(1),
                email_money: r.get(2),
                email_security: r.get(3),
                quiet_hours: start.zip(end).map(|(s, e)| QuietHours { start: hhmm(s), end: hhmm(e) }),
                time_zone: r.get(6),
                low_balance_alerts: alerts,
            }
        }
        // The defaults notify_user (sql/V5) applies when there is no row.
        None => Settings {
            sms_money: true,
            sms_security: true,
            email_money: false,
            email_security: true,
            quiet_hours: None,
            time_zone: "UTC".into(),
            low_balance_alerts: alerts,
        },
    })
}

/// Replaces the settings and the alert list whole. Alerts on accounts the
/// user does not own are `not_found`, like any other customer's account.
pub async fn put(tx: &tokio_postgres::Transaction<'_>, user_id: Uuid, settings: &Settings) -> ApiResult<()> {
    let quiet = match &settings.quiet_hours {
        Some(q) => {
            let (start, end) = (minutes(&q.start)?, minutes(&q.end)?);
            // An empty window: nothing is ever held back.
            (start != end).then_some((start, end))
        }
        None => None,
    };
    let zones = TIME_ZONES.get().ok_or_else(|| ApiError::internal("the time zones were not loaded at start-up"))?;
    let known = zones.binary_search(&settings.time_zone).is_ok();
    if !known {
        return Err(ApiError::validation(format!("time_zone {:?} is not a known IANA time zone", settings.time_zone)));
    }
    if settings.low_balance_alerts.len() > MAX_ALERTS {
        return Err(ApiError::validation(format!("at most {MAX_ALERTS} low-balance alerts")));
    }
    let ids: Vec<Uuid> = settings.low_balance_alerts.iter().map(|a| a.account_id).collect();
    let owned: i64 = tx
        .query_one(
            "SELECT count(DISTINCT account_id) FROM account_owners WHERE user_id = $1 AND account_id = ANY($2)",
            &[&user_id, &ids],
        )
        .await
        .map_err(db_error)?
        .get(0);
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    if owned as usize != distinct.len() {
        return Err(ApiError::not_found());
    }
    tx.execute(
        "INSERT INTO notification_settings AS s (user_id, sms_money, sms_security, email_money, email_security, quiet_start_min, quiet_end_min, time_zone)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (user_id) DO UPDATE SET sms_money = $2, sms_security = $3, email_money = $4, email_security = $5,
                quiet_start_min = $6, quiet_end_min = $7, time_zone = $8, updated_at = now()",
        &[
            &user_id,
            &settings.sms_money,
            &settings.sms_security,
            &settings.email_money,
            &settings.email_security,
            &quiet.map(|q| q.0),
            &quiet.map(|q| q.1),
            &settings.time_zone,
        ],
    )
    .await
    .map_err(db_error)?;
    // Daily limits count days in the holder's time zone (sql/V22; joint accounts: the owner who set theirs last).
    tx.execute(
        "UPDATE accounts SET limit_time_zone = $2
          WHERE id IN (SELECT account_id FROM account_owners WHERE user_id = $1) AND limit_time_zone <> $2",
        &[&user_id, &settings.time_zone],
    )
    .await
    .map_err(db_error)?;
    tx.execute("DELETE FROM low_balance_alerts WHERE user_id = $1 AND NOT (account_id = ANY($2))", &[&user_id, &ids])
        .await
        .map_err(db_error)?;
    for alert in &settings.low_balance_alerts {
        // A new or changed threshold is armed again.
        tx.execute(
            "INSERT INTO low_balance_alerts AS a (account_id, user_id, threshold) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, user_id) DO UPDATE SET threshold = $3,
                    armed = CASE WHEN a.threshold = $3 THEN a.armed ELSE true END",
            &[&alert.account_id, &user_id, &alert.threshold.0],
        )
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hour_times() {
        assert_eq!(minutes("22:00").unwrap(), 1320);
        assert_eq!(minutes("07:05").unwrap(), 425);
        assert_eq!(hhmm(425), "07:05");
        for bad in ["24:00", "7:00", "12:60", "noon", "", "12-00", "+1:00", "1:+0", "22:00\n"] {
            assert!(minutes(bad).is_err(), "{bad}");
        }
    }
}
