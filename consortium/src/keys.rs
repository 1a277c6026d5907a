//! The key directory's rules, shared by the switch (which enforces them) and
//! the banks (which check before they send): the key types and their formats,
//! normalization, per-account limits and the masks of a look-up.

use serde::{Deserialize, Serialize};

/// Keys one account may hold in the whole consortium.
pub const MAX_KEYS_PER_ACCOUNT: i64 = 5;
pub const MAX_KEYS_PER_BUSINESS_ACCOUNT: i64 = 20;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NATIONAL_ID_CHARS: usize = 64;
/// Bounds on what a bank sends along with a key (characters).
pub const MAX_ACCOUNT_NUMBER_CHARS: usize = 34;
pub const MAX_HOLDER_NAME_CHARS: usize = 140;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    Phone,
    Email,
    NationalId,
    Random,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Phone => "phone",
            KeyType::Email => "email",
            KeyType::NationalId => "national_id",
            KeyType::Random => "random",
        }
    }

    pub fn parse(text: &str) -> Option<KeyType> {
        [KeyType::Phone, KeyType::Email, KeyType::NationalId, KeyType::Random].into_iter().find(|t| t.as_str() == text)
    }
}

/// The account kinds a key may point at; a business account may hold more keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Savings,
    Current,
    Business,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Savings => "savings",
            AccountKind::Current => "current",
            AccountKind::Business => "business",
        }
    }

    pub fn parse(text: &str) -> Option<AccountKind> {
        [AccountKind::Savings, AccountKind::Current, AccountKind::Business].into_iter().find(|k| k.as_str() == text)
    }

    pub fn max_keys(self) -> i64 {
        match self {
            AccountKind::Business => MAX_KEYS_PER_BUSINESS_ACCOUNT,
            _ => MAX_KEYS_PER_ACCOUNT,
        }
    }
}

/// `POST /switch/v1/banks/{bank_id}/keys`. `value` is absent for a `random`
/// key the switch is to generate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterKey {
    #[serde(rename = "type")]
    pub key_type: KeyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub account_number: String,
    pub account_kind: AccountKind,
    pub holder_name: String,
}

/// A key as the switch holds it (answered to the bank that holds it only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredKey {
    #[serde(rename = "type")]
    pub key_type: KeyType,
    pub value: String,
    pub bank_id: String,
    pub account_number: String,
    pub account_kind: AccountKind,
    pub holder_name: String,
}

/// What any bank learns from a look-up: where the key lives, and masks only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DirectoryEntry {
    pub bank_id: String,
    pub bank_name: String,
    pub holder_name_masked: String,
    pub account_number_masked: String,
}

/// The stored form of a key, or why it is not one. Emails and random keys
/// are lowercased (so one address cannot be held twice in two spellings);
/// phones and national ids must already be in their one form.
pub fn normalize_and_check(key_type: KeyType, value: &str) -> Result<String, String> {
    match key_type {
        KeyType::Phone => {
            let digits = value.strip_prefix('+').ok_or("a phone key is E.164: '+' then 8 to 15 digits")?;
            let ok = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
            if ok {
                Ok(value.to_string())
            } else {
                Err("a phone key is E.164: '+' then 8 to 15 digits, the first 1-9".into())
            }
        }
        KeyType::Email => {
            let email = value.to_lowercase();
            if email.chars().count() > MAX_EMAIL_CHARS {
                return Err(format!("an email key has at most {MAX_EMAIL_CHARS} characters"));
            }
            if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err("an email key has no spaces".into());
            }
            let Some((local, domain)) = email.split_once('@') else {
                return Err("an email key is local@domain".into());
            };
            let domain_ok = domain.contains('.') && !domain.contains('@') && domain.split('.').all(|label| !label.is_empty());
            if local.is_empty() || !domain_ok {
                return Err("an email key is local@domain, with a dot in the domain".into());
            }
            Ok(email)
        }
        KeyType::NationalId => {
            let ok = (1..=MAX_NATIONAL_ID_CHARS).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if ok {
                Ok(value.to_string())
            } else {
                Err(format!("a national_id key is 1 to {MAX_NATIONAL_ID_CHARS} of A-Z, a-z, 0-9 and '-'"))
            }
        }
        KeyType::Random => {
            let id = value.to_ascii_lowercase();
            if is_uuid_v4(&id) {
                Ok(id)
            } else {
                Err("a random key is a UUID v4 (lowercase, hyphenated); send none to have one made".into())
            }
        }
    }
}

/// A new random key (UUID v4, lowercase hyphenated).
pub fn new_random_key() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn is_uuid_v4(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
        && bytes[14] == b'4'
        && matches!(bytes[19], b'8' | b'9' | b'a' | b'b')
}

/// Each word's first letter, then one `•` for every other character:
/// "Bina Mehta" → "B••• M••••". Whitespace between words becomes one space.
pub fn mask_name(name: &str) -> String {
    name.split_whitespace()
        .map(|word| {
            let mut chars = word.chars();
            let first = chars.next().expect("split_whitespace yields no empty word");
            std::iter::once(first).chain(chars.map(|_| '•')).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `••••` and the last 4 characters; a number of 4 or fewer shows nothing.
pub fn mask_account_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 4 {
        return "••••".into();
    }
    format!("••••{}", chars[chars.len() - 4..].iter().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert_eq!(normalize_and_check(KeyType::Phone, "+919876543210").unwrap(), "+919876543210");
        assert!(normalize_and_check(KeyType::Phone, "+12345678").is_ok(), "8 digits");
        assert!(normalize_and_check(KeyType::Phone, "+123456789012345").is_ok(), "15 digits");
        for bad in ["919876543210", "+1234567", "+1234567890123456", "+0123456789", "+91 98765 43210", "+9198765432a0", "", "+"] {
            assert!(normalize_and_check(KeyType::Phone, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(normalize_and_check(KeyType::Email, "Bina.Mehta@Example.COM").unwrap(), "bina.mehta@example.com");
        let long = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS - 12));
        assert_eq!(long.len(), MAX_EMAIL_CHARS);
        assert!(normalize_and_check(KeyType::Email, &long).is_ok());
        assert!(normalize_and_check(KeyType::Email, &format!("a{long}")).is_err());
        for bad in
            ["bina", "bina@example", "@example.com", "bina@.com", "bina@example.", "bi na@example.com", "a@b@c.com", "bina@exa..mple.com", "bina@example.com\n"]
        {
            assert!(normalize_and_check(KeyType::Email, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn national_ids() {
        assert!(normalize_and_check(KeyType::NationalId, "ABCDE-1234f").is_ok());
        assert!(normalize_and_check(KeyType::NationalId, &"9".repeat(64)).is_ok());
        for bad in ["", "AB 12", "AB_12", "ÄB12", &"9".repeat(65)] {
            assert!(normalize_and_check(KeyType::NationalId, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn random_keys() {
        let made = new_random_key();
        assert_eq!(normalize_and_check(KeyType::Random, &made).unwrap(), made);
        assert_eq!(normalize_and_check(KeyType::Random, "6F9619FF-8B86-4D01-B42D-00CF4FC964FF").unwrap(), "6f9619ff-8b86-4d01-b42d-00cf4fc964ff");
        for bad in ["6f9619ff-8b86-1d01-b42d-00cf4fc964ff", "6f9619ff-8b86-4d01-c42d-00cf4fc964ff", "6f9619ff8b864d01b42d00cf4fc964ff", "x", ""] {
            assert!(normalize_and_check(KeyType::Random, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masks() {
        assert_eq!(mask_name("Bina Mehta"), "B••• M••••");
        assert_eq!(mask_name("  Élodie   de  la Tour "), "É••••• d• l• T•••");
        assert_eq!(mask_name("X"), "X");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_account_number("100000000042"), "••••0042");
        assert_eq!(mask_account_number("1234"), "••••");
        assert_eq!(mask_account_number(""), "••••");
    }

    #[test]
    fn wire_names() {
        let body: RegisterKey =
            serde_json::from_str(r#"{"type":"national_id","value":"A-1","account_number":"1","account_kind":"business","holder_name":"B"}"#).unwrap();
        assert_eq!((body.key_type, body.account_kind), (KeyType::NationalId, AccountKind::Business));
        assert!(serde_json::from_str::<RegisterKey>(r#"{"type":"random","account_number":"1","account_kind":"savings","holder_name":"B","x":1}"#).is_err());
        assert_eq!(KeyType::parse("national_id"), Some(KeyType::NationalId));
    }
}
