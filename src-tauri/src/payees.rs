//! Saved payees and confirmation of payee, checked here before anything is
//! sent (the server checks again): an account number of this bank, a
//! nickname, or a key at any bank of the consortium.

use serde::Deserialize;
use serde_json::{json, Value};

/// As the server's `to_account_number`: 1 to 34 letters or digits.
pub const MAX_ACCOUNT_NUMBER_CHARS: usize = 34;
pub const MAX_NICKNAME_CHARS: usize = 64;
pub const KEY_TYPES: [&str; 4] = ["phone", "email", "national_id", "random"];
pub const MAX_KEY_CHARS: usize = 254;

/// The account number as typed, trimmed.
pub fn check_account_number(text: &str) -> Result<String, String> {
    let number = text.trim();
    if number.is_empty() {
        return Err("enter the account number".into());
    }
    if number.chars().count() > MAX_ACCOUNT_NUMBER_CHARS || !number.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("an account number is 1 to {MAX_ACCOUNT_NUMBER_CHARS} letters or digits"));
    }
    Ok(number.to_string())
}

/// The nickname, trimmed: 1 to 64 characters, no control characters.
pub fn check_nickname(text: &str) -> Result<String, String> {
    let nickname = text.trim();
    if nickname.is_empty() {
        return Err("enter a nickname for the payee".into());
    }
    if nickname.chars().count() > MAX_NICKNAME_CHARS {
        return Err(format!("nickname: at most {MAX_NICKNAME_CHARS} characters"));
    }
    if nickname.chars().any(char::is_control) {
        return Err("nickname must not contain control characters".into());
    }
    Ok(nickname.to_string())
}

pub fn check_key_type(kind: &str) -> Result<&'static str, String> {
    KEY_TYPES
        .iter()
        .copied()
        .find(|k| *k == kind)
        .ok_or_else(|| format!("unknown key type {kind:?}"))
}

/// A key's value as typed, trimmed.
pub fn check_key_value(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("enter the key".into());
    }
    if value.chars().count() > MAX_KEY_CHARS {
        return Err("the key is too long".into());
    }
    Ok(value.to_string())
}

#[derive(Debug, Deserialize)]
pub struct PayeeKey {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub struct NewPayee {
    #[serde(default)]
    pub account_number: Option<String>,
    #[serde(default)]
    pub key: Option<PayeeKey>,
    pub nickname: String,
}

/// The body of `POST /v1/payees`: exactly one of the account number and the key.
pub fn new_payee_body(req: &NewPayee) -> Result<Value, String> {
    let nickname = check_nickname(&req.nickname)?;
    let number = req.account_number.as_deref().filter(|n| !n.trim().is_empty());
    match (number, &req.key) {
        (Some(number), None) => Ok(json!({"account_number": check_account_number(number)?, "nickname": nickname})),
        (None, Some(key)) => {
            let kind = check_key_type(&key.kind)?;
            Ok(json!({"key": {"type": kind, "value": check_key_value(&key.value)?}, "nickname": nickname}))
        }
        (Some(_), Some(_)) => Err("give either an account number or a key, not both".into()),
        (None, None) => Err("enter the account number or the key of the payee".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_numbers() {
        assert_eq!(check_account_number(" 100000000027 ").unwrap(), "100000000027");
        assert_eq!(check_account_number("FB12ab").unwrap(), "FB12ab");
        for bad in ["", "   ", "1234-5678", "12 34", "١٢٣", &"1".repeat(35)] {
            assert!(check_account_number(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_account_number(&"1".repeat(34)).is_ok());
    }

    #[test]
    fn nicknames() {
        assert_eq!(check_nickname("  Rent ").unwrap(), "Rent");
        assert_eq!(check_nickname("Mamá's café").unwrap(), "Mamá's café");
        assert!(check_nickname(&"é".repeat(64)).is_ok());
        for bad in ["", "  ", "a\tb", "a\nb", &"x".repeat(65)] {
            assert!(check_nickname(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn exactly_one_of_number_and_key() {
        let by_number = NewPayee {
            account_number: Some(" 100000000027".into()),
            key: None,
            nickname: "Rent".into(),
        };
        assert_eq!(
            new_payee_body(&by_number).unwrap(),
            json!({"account_number": "100000000027", "nickname": "Rent"})
        );
        let key = || {
            Some(PayeeKey {
                kind: "phone".into(),
                value: " +919876543210 ".into(),
            })
        };
        let by_key = NewPayee {
            account_number: None,
            key: key(),
            nickname: "Mum".into(),
        };
        assert_eq!(
            new_payee_body(&by_key).unwrap(),
            json!({"key": {"type": "phone", "value": "+919876543210"}, "nickname": "Mum"})
        );
        // An empty number is no number.
        let empty_number = NewPayee {
            account_number: Some(" ".into()),
            key: key(),
            nickname: "Mum".into(),
        };
        assert!(new_payee_body(&empty_number).is_ok());
        let both = NewPayee {
            account_number: Some("100000000027".into()),
            key: key(),
            nickname: "x".into(),
        };
        assert!(new_payee_body(&both).is_err());
        let neither = NewPayee {
            account_number: None,
            key: None,
            nickname: "x".into(),
        };
        assert!(new_payee_body(&neither).is_err());
        let bad_type = NewPayee {
            account_number: None,
            key: Some(PayeeKey {
                kind: "iban".into(),
                value: "x".into(),
            }),
            nickname: "x".into(),
        };
        assert!(new_payee_body(&bad_type).is_err());
        let bad_nickname = NewPayee {
            account_number: Some("1".into()),
            key: None,
            nickname: "".into(),
        };
        assert!(new_payee_body(&bad_nickname).is_err());
    }
}
