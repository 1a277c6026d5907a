//! Amounts as the contract takes them, checked before anything is sent so a
//! bad amount never leaves the app (the server checks again).

use rust_decimal::Decimal;

pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
pub const CURRENCIES: [&str; 3] = ["INR", "USD", "EUR"];
pub const MAX_MEMO_CHARS: usize = 140;

/// The amount as a canonical decimal string ("12.5" stays "12.5": the server
/// compares idempotent repeats by body, so the text is sent as typed).
pub fn check_amount(text: &str, currency: Option<&str>) -> Result<Decimal, String> {
    if let Some(currency) = currency {
        if !CURRENCIES.contains(&currency) {
            return Err(format!("unknown currency {currency:?}"));
        }
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && !digits(fraction)) {
        return Err("amount must be a number such as 1250.50".into());
    }
    if fraction.len() > 2 {
        return Err("amount: at most 2 decimal places".into());
    }
    if whole.trim_start_matches('0').len() > 13 {
        return Err(format!("amount must be at most {MAX_AMOUNT}"));
    }
    let value: Decimal = text
        .parse()
        .map_err(|_| "amount must be a number such as 1250.50".to_string())?;
    if value <= Decimal::ZERO {
        return Err("amount must be greater than 0".into());
    }
    if value > Decimal::from(MAX_AMOUNT) {
        return Err(format!("amount must be at most {MAX_AMOUNT}"));
    }
    Ok(value)
}

/// A daily limit as typed, trimmed: an amount as `check_amount` takes it
/// (greater than 0, at most 2 decimals), its messages naming the limit.
pub fn check_limit(text: &str) -> Result<String, String> {
    let limit = text.trim();
    if limit.is_empty() {
        return Err("enter the new daily limit".into());
    }
    check_amount(limit, None).map_err(|e| e.replacen("amount", "the daily limit", 1))?;
    Ok(limit.to_string())
}

pub fn check_memo(memo: &str) -> Result<(), String> {
    if memo.chars().count() > MAX_MEMO_CHARS {
        return Err(format!("memo: at most {MAX_MEMO_CHARS} characters"));
    }
    if memo.chars().any(char::is_control) {
        return Err("memo must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_contract_amounts() {
        assert_eq!(
            check_amount("1250.50", Some("INR")).unwrap().to_string(),
            "1250.50"
        );
        assert_eq!(check_amount("0.01", None).unwrap().to_string(), "0.01");
        assert_eq!(
            check_amount("1000000000000", None).unwrap().to_string(),
            "1000000000000"
        );
    }

    #[test]
    fn refuses_bad_amounts() {
        for bad in [
            "",
            "0",
            "0.00",
            "-1",
            "1e5",
            "1,000",
            " 12",
            "12.",
            ".5",
            "1.234",
            "1000000000000.01",
            "99999999999999",
            "NaN",
        ] {
            assert!(check_amount(bad, None).is_err(), "{bad:?} accepted");
        }
        assert!(check_amount("10", Some("GBP")).is_err());
    }

    #[test]
    fn daily_limits() {
        assert_eq!(check_limit(" 5000.00 ").unwrap(), "5000.00");
        assert_eq!(check_limit("0.01").unwrap(), "0.01");
        assert_eq!(check_limit("").unwrap_err(), "enter the new daily limit");
        assert_eq!(
            check_limit("1.001").unwrap_err(),
            "the daily limit: at most 2 decimal places"
        );
        for bad in ["0", "-5", "abc", "1e3", "1,000", "1000000000000.01"] {
            assert!(check_limit(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn memo_limits() {
        assert!(check_memo("rent").is_ok());
        assert!(check_memo(&"x".repeat(141)).is_err());
        assert!(check_memo("a\nb").is_err());
    }
}
