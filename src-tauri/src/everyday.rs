//! Standing orders, exchange rates and statements, checked here before
//! anything is sent (the server checks again): schedules, dates, months,
//! rates, and where a downloaded statement is saved.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use chrono::{Datelike, NaiveDate, NaiveTime};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    money::{check_amount, check_memo, CURRENCIES},
    payees::{check_account_number, check_key_type, check_key_value, PayeeKey},
};

/// What the app offers; the server also knows `second`, for its tests only.
pub const EVERY: [&str; 3] = ["day", "week", "month"];
pub const MAX_INTERVAL: i64 = 366;
/// A rate's decimals, and its ceiling (exclusive), as the server takes them.
pub const RATE_DECIMALS: usize = 8;
pub const MAX_RATE: i64 = 1_000_000;
/// Rates one request sets: every ordered pair of the three currencies.
pub const MAX_RATES: usize = 6;

pub fn check_every(every: &str) -> Result<&'static str, String> {
    EVERY
        .iter()
        .copied()
        .find(|e| *e == every)
        .ok_or_else(|| format!("a standing order runs every day, week or month, not {every:?}"))
}

pub fn check_interval(interval: i64) -> Result<i64, String> {
    if (1..=MAX_INTERVAL).contains(&interval) {
        Ok(interval)
    } else {
        Err(format!("the interval is 1 to {MAX_INTERVAL}"))
    }
}

/// A local time "HH:MM" (24 hours), exactly so.
pub fn check_time(text: &str) -> Result<String, String> {
    let time = text.trim();
    let shaped = time.len() == 5 && time.as_bytes()[2] == b':' && time.bytes().enumerate().all(|(i, b)| i == 2 || b.is_ascii_digit());
    if shaped && NaiveTime::parse_from_str(time, "%H:%M").is_ok() {
        Ok(time.to_string())
    } else {
        Err("the time is HH:MM, from 00:00 to 23:59".into())
    }
}

/// A calendar date "YYYY-MM-DD" that exists.
pub fn check_date(text: &str, what: &str) -> Result<NaiveDate, String> {
    let date = text.trim();
    let shaped = date.len() == 10
        && date
            .bytes()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    shaped
        .then(|| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("{what} must be a date such as 2026-05-31"))
}

/// A statement's month "yyyy-mm", from 2000-01 (as the server publishes it).
pub fn check_month(text: &str) -> Result<String, String> {
    let month = text.trim();
    let shaped = month.len() == 7 && month.bytes().enumerate().all(|(i, b)| if i == 4 { b == b'-' } else { b.is_ascii_digit() });
    let valid = shaped && month[..4].parse::<i32>().is_ok_and(|y| y >= 2000) && month[5..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    if valid {
        Ok(month.to_string())
    } else {
        Err(format!("{month:?} is not a month such as 2026-04"))
    }
}

/// A rate as typed, trimmed: a decimal above 0, at most 8 decimals, below 1,000,000.
pub fn check_rate(text: &str) -> Result<String, String> {
    let rate = text.trim();
    let bad = || format!("the rate {rate:?} must be a number above 0 with at most {RATE_DECIMALS} decimals, below {MAX_RATE}, such as 0.012");
    let (whole, fraction) = rate.split_once('.').unwrap_or((rate, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (rate.contains('.') && !digits(fraction)) || fraction.len() > RATE_DECIMALS || whole.trim_start_matches('0').len() > 7 {
        return Err(bad());
    }
    let value: Decimal = rate.parse().map_err(|_| bad())?;
    if value <= Decimal::ZERO || value >= Decimal::from(MAX_RATE) {
        return Err(bad());
    }
    Ok(rate.to_string())
}

#[derive(Debug, Deserialize)]
pub struct NewOrder {
    pub from_account_id: Uuid,
    /// Whom it pays: exactly one of an account number of this bank and a key at
    /// another bank of the consortium (`{"type", "value"}`).
    #[serde(default)]
    pub to_account_number: Option<String>,
    #[serde(default)]
    pub to_key: Option<PayeeKey>,
    pub amount: String,
    #[serde(default)]
    pub memo: String,
    pub every: String,
    #[serde(default = "one")]
    pub interval: i64,
    pub time: String,
    pub start_at: String,
    #[serde(default)]
    pub end_at: Option<String>,
    /// Made by the web view once per confirmed creation and sent again on a
    /// retry of it, so a retry never sets up a second order.
    pub idempotency_key: Uuid,
}

fn one() -> i64 {
    1
}

/// The order's `to`: `{"account_number"}` or `{"key": {"type", "value"}}`, exactly one.
fn order_target(req: &NewOrder) -> Result<Value, String> {
    let number = req.to_account_number.as_deref().filter(|n| !n.trim().is_empty());
    match (number, &req.to_key) {
        (Some(number), None) => Ok(json!({"account_number": check_account_number(number)?})),
        (None, Some(key)) => Ok(json!({"key": {"type": check_key_type(&key.kind)?, "value": check_key_value(&key.value)?}})),
        (Some(_), Some(_)) => Err("give either the account number or the key to pay, not both".into()),
        (None, None) => Err("enter the account number or the key to pay".into()),
    }
}

/// The body of `POST /v1/standing-orders`.
pub fn new_order_body(req: &NewOrder) -> Result<Value, String> {
    let to = order_target(req)?;
    let amount = req.amount.trim();
    check_amount(amount, None)?;
    check_memo(&req.memo)?;
    let every = check_every(&req.every)?;
    let interval = check_interval(req.interval)?;
    let time = check_time(&req.time)?;
    let start = check_date(&req.start_at, "the start date")?;
    let end = match req.end_at.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(end) => Some(check_date(end, "the end date")?),
        None => None,
    };
    if end.is_some_and(|end| end < start) {
        return Err("the end date must not be before the start date".into());
    }
    Ok(json!({
        "from_account_id": req.from_account_id,
        "to": to,
        "amount": amount,
        "memo": req.memo,
        "schedule": {"every": every, "interval": interval, "time": time},
        "start_at": start.to_string(),
        "end_at": end.map(|e| e.to_string()),
    }))
}

#[derive(Debug, Deserialize)]
pub struct ScheduleInput {
    pub every: String,
    #[serde(default = "one")]
    pub interval: i64,
    pub time: String,
}

/// A change of an order: only what is given changes (the schedule as a whole).
#[derive(Debug, Deserialize)]
pub struct OrderChange {
    pub id: Uuid,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub memo: Option<String>,
    #[serde(default)]
    pub schedule: Option<ScheduleInput>,
}

/// The body of `PATCH /v1/standing-orders/{id}` for a change: the given fields, checked; an
/// empty change is refused here rather than sent as a no-op.
pub fn order_change_body(req: &OrderChange) -> Result<Value, String> {
    let mut body = serde_json::Map::new();
    if let Some(amount) = &req.amount {
        let amount = amount.trim();
        check_amount(amount, None)?;
        body.insert("amount".into(), json!(amount));
    }
    if let Some(memo) = &req.memo {
        check_memo(memo)?;
        body.insert("memo".into(), json!(memo));
    }
    if let Some(s) = &req.schedule {
        let schedule = json!({"every": check_every(&s.every)?, "interval": check_interval(s.interval)?, "time": check_time(&s.time)?});
        body.insert("schedule".into(), schedule);
    }
    if body.is_empty() {
        return Err("nothing to change: give the amount, the memo or the schedule".into());
    }
    Ok(Value::Object(body))
}

#[derive(Debug, Deserialize)]
pub struct RateInput {
    pub from: String,
    pub to: String,
    pub rate: String,
}

/// The body of `PUT /v1/admin/fx/rates`: 1 to 6 distinct pairs of two different known currencies.
pub fn rates_body(rates: &[RateInput]) -> Result<Value, String> {
    if rates.is_empty() || rates.len() > MAX_RATES {
        return Err(format!("give 1 to {MAX_RATES} rates"));
    }
    let mut out: Vec<Value> = Vec::with_capacity(rates.len());
    for r in rates {
        for currency in [&r.from, &r.to] {
            if !CURRENCIES.contains(&currency.as_str()) {
                return Err(format!("unknown currency {currency:?}"));
            }
        }
        if r.from == r.to {
            return Err(format!("{} to {} needs no rate", r.from, r.to));
        }
        if out.iter().any(|o| o["from"] == r.from.as_str() && o["to"] == r.to.as_str()) {
            return Err(format!("{} to {} is given twice", r.from, r.to));
        }
        out.push(json!({"from": r.from, "to": r.to, "rate": check_rate(&r.rate)?}));
    }
    Ok(json!({ "rates": out }))
}

/// The file name in a Content-Disposition (`attachment; filename="statement-….pdf"`) when it
/// is a plain one (letters, digits, `.`, `-`, `_`, ending in `.pdf`); else `fallback`.
pub fn pdf_file_name(content_disposition: Option<&str>, fallback: &str) -> String {
    let name = content_disposition.and_then(|d| {
        d.split(';')
            .map(str::trim)
            .find_map(|part| part.strip_prefix("filename="))
            .map(|n| n.trim_matches('"').to_string())
    });
    let plain = |n: &str| {
        n.len() <= 120
            && !n.starts_with('.')
            && n.to_ascii_lowercase().ends_with(".pdf")
            && n.len() > 4
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    match name {
        Some(n) if plain(&n) => n,
        _ => fallback.to_string(),
    }
}

/// Writes `bytes` as a new file named `name` in `dir` (made when missing), never over another
/// file: `name-2.pdf`, `name-3.pdf` … when the name is taken. Returns the path written.
pub fn save_new_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let (stem, ext) = name.rsplit_once('.').map(|(s, e)| (s, format!(".{e}"))).unwrap_or((name, String::new()));
    for n in 1..=1000u32 {
        let candidate = if n == 1 { dir.join(name) } else { dir.join(format!("{stem}-{n}{ext}")) };
        let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&candidate) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = file.write_all(bytes).and_then(|_| file.sync_all()) {
            drop(file);
            let _ = std::fs::remove_file(&candidate);
            return Err(e);
        }
        return Ok(candidate);
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{name}: too many files of that name"),
    ))
}

/// Today's month "yyyy-mm" in UTC, the last month with a statement.
pub fn current_month() -> String {
    let now = chrono::Utc::now();
    format!("{:04}-{:02}", now.year(), now.month())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> NewOrder {
        NewOrder {
            from_account_id: Uuid::nil(),
            to_account_number: Some(" 100000000027 ".into()),
            to_key: None,
            amount: "10.00".into(),
            memo: "rent".into(),
            every: "month".into(),
            interval: 1,
            time: "09:00".into(),
            start_at: "2026-05-31".into(),
            end_at: None,
            idempotency_key: Uuid::nil(),
        }
    }

    #[test]
    fn an_order_body_as_the_server_takes_it() {
        assert_eq!(
            new_order_body(&order()).unwrap(),
            json!({"from_account_id": Uuid::nil(), "to": {"account_number": "100000000027"}, "amount": "10.00", "memo": "rent",
                   "schedule": {"every": "month", "interval": 1, "time": "09:00"}, "start_at": "2026-05-31", "end_at": null})
        );
        let ends = NewOrder {
            end_at: Some("2026-12-31".into()),
            ..order()
        };
        assert_eq!(new_order_body(&ends).unwrap()["end_at"], "2026-12-31");
        let blank_end = NewOrder {
            end_at: Some(" ".into()),
            ..order()
        };
        assert_eq!(new_order_body(&blank_end).unwrap()["end_at"], Value::Null);
    }

    #[test]
    fn bad_orders_are_refused_here() {
        let cases: Vec<(NewOrder, &str)> = vec![
            (
                NewOrder {
                    every: "second".into(),
                    ..order()
                },
                "every day, week or month",
            ),
            (
                NewOrder {
                    every: "year".into(),
                    ..order()
                },
                "every day, week or month",
            ),
            (NewOrder { interval: 0, ..order() }, "interval"),
            (NewOrder { interval: 367, ..order() }, "interval"),
            (
                NewOrder {
                    time: "9:00".into(),
                    ..order()
                },
                "HH:MM",
            ),
            (
                NewOrder {
                    time: "24:00".into(),
                    ..order()
                },
                "HH:MM",
            ),
            (
                NewOrder {
                    time: "12:60".into(),
                    ..order()
                },
                "HH:MM",
            ),
            (
                NewOrder {
                    start_at: "2026-02-30".into(),
                    ..order()
                },
                "start date",
            ),
            (
                NewOrder {
                    start_at: "31/05/2026".into(),
                    ..order()
                },
                "start date",
            ),
            (
                NewOrder {
                    end_at: Some("2026-05-30".into()),
                    ..order()
                },
                "before the start",
            ),
            (NewOrder { amount: "0".into(), ..order() }, "amount"),
            (
                NewOrder {
                    to_account_number: Some("12-34".into()),
                    ..order()
                },
                "account number",
            ),
            (
                NewOrder {
                    to_account_number: None,
                    ..order()
                },
                "account number or the key",
            ),
            (
                NewOrder {
                    to_key: key("phone", "+919876543210"),
                    ..order()
                },
                "not both",
            ),
            (
                NewOrder {
                    memo: "x".repeat(141),
                    ..order()
                },
                "memo",
            ),
        ];
        for (req, words) in cases {
            let e = new_order_body(&req).unwrap_err();
            assert!(e.contains(words), "{e:?} lacks {words:?}");
        }
    }

    fn key(kind: &str, value: &str) -> Option<PayeeKey> {
        Some(PayeeKey {
            kind: kind.into(),
            value: value.into(),
        })
    }

    #[test]
    fn an_order_to_a_key_at_another_bank() {
        let by_key = |kind: &str, value: &str| NewOrder {
            to_account_number: None,
            to_key: key(kind, value),
            ..order()
        };
        assert_eq!(
            new_order_body(&by_key("phone", " +919876543210 ")).unwrap(),
            json!({"from_account_id": Uuid::nil(), "to": {"key": {"type": "phone", "value": "+919876543210"}}, "amount": "10.00",
                   "memo": "rent", "schedule": {"every": "month", "interval": 1, "time": "09:00"}, "start_at": "2026-05-31", "end_at": null})
        );
        for kind in ["phone", "email", "national_id", "random"] {
            assert_eq!(new_order_body(&by_key(kind, "x")).unwrap()["to"]["key"]["type"], kind);
        }
        assert_eq!(new_order_body(&by_key("email", &"é".repeat(254))).unwrap()["to"]["key"]["value"], "é".repeat(254));
        // An empty number next to a key is no number.
        let blank_number = NewOrder {
            to_account_number: Some(" ".into()),
            ..by_key("random", "8f3a")
        };
        assert_eq!(new_order_body(&blank_number).unwrap()["to"], json!({"key": {"type": "random", "value": "8f3a"}}));
        for (req, words) in [
            (by_key("iban", "x"), "unknown key type"),
            (by_key("Phone", "x"), "unknown key type"),
            (by_key("phone", "  "), "enter the key"),
            (by_key("phone", &"x".repeat(255)), "too long"),
        ] {
            let e = new_order_body(&req).unwrap_err();
            assert!(e.contains(words), "{e:?} lacks {words:?}");
        }
        // The rest is checked as for an account number.
        let e = new_order_body(&NewOrder {
            amount: "0".into(),
            ..by_key("phone", "+919876543210")
        })
        .unwrap_err();
        assert!(e.contains("amount"), "{e:?}");
    }

    #[test]
    fn an_order_arrives_from_the_web_view_as_either_target() {
        let base = json!({"from_account_id": Uuid::nil(), "amount": "10.00", "every": "month", "time": "09:00",
                          "start_at": "2026-05-31", "idempotency_key": Uuid::nil()});
        let with = |extra: Value| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<NewOrder>(v).unwrap()
        };
        let by_number = with(json!({"to_account_number": "100000000027"}));
        assert_eq!(new_order_body(&by_number).unwrap()["to"], json!({"account_number": "100000000027"}));
        let by_key = with(json!({"to_key": {"type": "email", "value": "a@b.example"}}));
        assert_eq!(new_order_body(&by_key).unwrap()["to"], json!({"key": {"type": "email", "value": "a@b.example"}}));
        assert!(new_order_body(&with(json!({}))).is_err());
    }

    #[test]
    fn a_change_sends_only_what_changes() {
        let change = |amount: Option<&str>, memo: Option<&str>, schedule: Option<(&str, i64, &str)>| OrderChange {
            id: Uuid::nil(),
            amount: amount.map(str::to_string),
            memo: memo.map(str::to_string),
            schedule: schedule.map(|(every, interval, time)| ScheduleInput {
                every: every.into(),
                interval,
                time: time.into(),
            }),
        };
        assert_eq!(order_change_body(&change(Some(" 3000.00 "), None, None)).unwrap(), json!({"amount": "3000.00"}));
        assert_eq!(order_change_body(&change(None, Some(""), None)).unwrap(), json!({"memo": ""}));
        assert_eq!(
            order_change_body(&change(Some("5"), Some("rent"), Some(("week", 2, "10:30")))).unwrap(),
            json!({"amount": "5", "memo": "rent", "schedule": {"every": "week", "interval": 2, "time": "10:30"}})
        );
        for (bad, words) in [
            (change(None, None, None), "nothing to change"),
            (change(Some("0"), None, None), "amount"),
            (change(None, Some(&"x".repeat(141)), None), "memo"),
            (change(None, None, Some(("second", 1, "09:00"))), "every day, week or month"),
            (change(None, None, Some(("day", 0, "09:00"))), "interval"),
            (change(None, None, Some(("day", 1, "9:00"))), "HH:MM"),
        ] {
            let e = order_change_body(&bad).unwrap_err();
            assert!(e.contains(words), "{e:?} lacks {words:?}");
        }
    }

    #[test]
    fn times_dates_and_months() {
        assert_eq!(check_time("00:00").unwrap(), "00:00");
        assert_eq!(check_time(" 23:59 ").unwrap(), "23:59");
        for bad in ["", "9:5", "09:5", "0900", "09:00:00", "-1:00", "+9:00", "ab:cd"] {
            assert!(check_time(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(check_date("2028-02-29", "x").unwrap().to_string(), "2028-02-29");
        for bad in ["2027-02-29", "2026-13-01", "2026-5-31", "20260531", "2026-05-31T00:00"] {
            assert!(check_date(bad, "x").is_err(), "{bad:?} accepted");
        }
        assert_eq!(check_month("2026-04").unwrap(), "2026-04");
        for bad in ["2026-4", "2026-00", "2026-13", "1999-12", "2026/04", "2026-04-01", "abcd-ef"] {
            assert!(check_month(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(current_month().len(), 7);
    }

    #[test]
    fn rates() {
        for good in ["83.12", "0.012", "1", "0.00000001", "999999.99999999", " 0.5 "] {
            assert!(check_rate(good).is_ok(), "{good:?} refused");
        }
        for bad in ["0", "0.00", "-1", "1.123456789", "1e3", "", ".5", "5.", "1000000", "1,5", "abc"] {
            assert!(check_rate(bad).is_err(), "{bad:?} accepted");
        }
        let rate = |from: &str, to: &str, rate: &str| RateInput {
            from: from.into(),
            to: to.into(),
            rate: rate.into(),
        };
        assert_eq!(
            rates_body(&[rate("INR", "USD", "0.012")]).unwrap(),
            json!({"rates": [{"from": "INR", "to": "USD", "rate": "0.012"}]})
        );
        assert!(rates_body(&[]).is_err());
        assert!(rates_body(&[rate("INR", "INR", "1")]).is_err());
        assert!(rates_body(&[rate("INR", "GBP", "1")]).is_err());
        assert!(rates_body(&[rate("INR", "USD", "0.012"), rate("INR", "USD", "0.013")]).is_err());
        assert!(rates_body(&[rate("INR", "USD", "0")]).is_err());
    }

    #[test]
    fn statement_file_names() {
        let fallback = "statement-x-2026-04.pdf";
        assert_eq!(
            pdf_file_name(Some("attachment; filename=\"statement-100000000009-2026-04.pdf\""), fallback),
            "statement-100000000009-2026-04.pdf"
        );
        for bad in [
            None,
            Some("attachment"),
            Some("attachment; filename=\"../../etc/passwd.pdf\""),
            Some("attachment; filename=\"/tmp/x.pdf\""),
            Some("attachment; filename=\".hidden.pdf\""),
            Some("attachment; filename=\"statement.exe\""),
            Some("attachment; filename=\"a b.pdf\""),
        ] {
            assert_eq!(pdf_file_name(bad, fallback), fallback, "{bad:?}");
        }
    }

    #[test]
    fn saved_files_never_replace_another() {
        let dir = std::env::temp_dir().join(format!("flexibank-save-{}", Uuid::now_v7()));
        let first = save_new_file(&dir, "statement.pdf", b"%PDF-1").unwrap();
        let second = save_new_file(&dir, "statement.pdf", b"%PDF-2").unwrap();
        let third = save_new_file(&dir, "statement.pdf", b"%PDF-3").unwrap();
        assert_eq!(first, dir.join("statement.pdf"));
        assert_eq!(second, dir.join("statement-2.pdf"));
        assert_eq!(third, dir.join("statement-3.pdf"));
        assert_eq!(std::fs::read(&first).unwrap(), b"%PDF-1");
        assert_eq!(std::fs::read(&third).unwrap(), b"%PDF-3");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
