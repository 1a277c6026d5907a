//! Rules for the strings clients send. Each rule is one regular expression
//! and a length in characters; the server checks with the very pattern the
//! OpenAPI document publishes, so a value is accepted exactly when the
//! document says it is valid.
//!
//! Patterns keep to what JSON Schema (ECMA-262), Python and Rust's `regex`
//! read alike: anchors, literal classes, `\uXXXX` escapes, no `\s`/`\w`.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::json;
use utoipa::openapi::{RefOr, Schema};

/// Unicode control characters (category Cc), which no stored text may hold.
macro_rules! control {
    () => {
        r"\u0000-\u001f\u007f-\u009f"
    };
}
/// What Rust's `char::is_whitespace` adds to the control characters.
macro_rules! space {
    () => {
        r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// Text without control characters, possibly empty (a memo, a search).
pub const FREE_TEXT: &str = concat!("^[^", control!(), "]*$");
/// A name: text without control characters that neither starts nor ends
/// with whitespace (so it is never blank).
pub const NAME: &str = concat!("^[^", control!(), space!(), "]([^", control!(), "]*[^", control!(), space!(), "])?$");

pub struct TextRule {
    pub pattern: &'static str,
    pub min_chars: usize,
    pub max_chars: usize,
    compiled: OnceLock<Regex>,
}

impl TextRule {
    pub const fn new(pattern: &'static str, min_chars: usize, max_chars: usize) -> TextRule {
        TextRule { pattern, min_chars, max_chars, compiled: OnceLock::new() }
    }

    pub fn accepts(&self, value: &str) -> bool {
        let regex = self.compiled.get_or_init(|| Regex::new(self.pattern).expect("a text rule's pattern compiles"));
        let chars = value.chars().count();
        (self.min_chars..=self.max_chars).contains(&chars) && regex.is_match(value)
    }

    pub fn json(&self) -> serde_json::Value {
        let mut schema = json!({"type": "string", "pattern": self.pattern, "maxLength": self.max_chars});
        if self.min_chars > 0 {
            schema["minLength"] = json!(self.min_chars);
        }
        schema
    }

    pub fn schema(&self) -> RefOr<Schema> {
        from_json(self.json())
    }

    /// The same, where `null` (or leaving the field out) is allowed too.
    pub fn nullable_schema(&self) -> RefOr<Schema> {
        let mut schema = self.json();
        schema["type"] = json!(["string", "null"]);
        from_json(schema)
    }
}

/// A schema written as JSON, for the rules the derive cannot say.
pub fn from_json(schema: serde_json::Value) -> RefOr<Schema> {
    serde_json::from_value(schema).expect("a hand-written schema is a valid utoipa schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_the_hand_written_rule() {
        let rule = TextRule::new(NAME, 1, 200);
        let hand = |s: &str| {
            !s.is_empty()
                && s.chars().count() <= 200
                && !s.chars().any(char::is_control)
                && !s.starts_with(char::is_whitespace)
                && !s.ends_with(char::is_whitespace)
        };
        let samples = [
            "", " ", "a", " a", "a ", "a b", "Bé Müller", "\u{3000}x", "x\u{a0}", "a\u{0}b", "a\nb", "\u{85}",
            "a\u{2028}", "a\u{feff}", "\u{feff}", "x\u{9f}", "x\u{a1}", "名前", "a\tb",
        ];
        for sample in samples {
            assert_eq!(rule.accepts(sample), hand(sample), "{sample:?}");
        }
    }

    #[test]
    fn free_text_refuses_only_control_characters() {
        let rule = TextRule::new(FREE_TEXT, 0, 5);
        assert!(rule.accepts(""));
        assert!(rule.accepts("  é "));
        assert!(!rule.accepts("ab\ncd"));
        assert!(!rule.accepts("abc\n"));
        assert!(!rule.accepts("123456"));
    }
}
