//! SMS through Twilio's REST API (`POST /2010-04-01/Accounts/{sid}/Messages.json`,
//! form body, basic auth), or any receiver speaking that shape.

use serde_json::Value;

use super::dispatch::{Outbound, SendError};

pub struct Sms {
    pub http: reqwest::Client,
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
}

/// The text a customer reads: amounts with currency, masked account numbers
/// (the payload holds only masked ones), never a secret.
pub fn text_of(kind: &str, payload: &Value) -> String {
    let field = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let money = |k: &str| format!("{} {}", field(k), field("currency"));
    match kind {
        "money.debit" => format!(
            "FlexiBank: {} debited from a/c {}{}. Balance {}.",
            money("amount"),
            field("account"),
            payload.get("counterparty").and_then(Value::as_str).map(|c| format!(" to {c}")).unwrap_or_default(),
            money("balance_after")
        ),
        "money.credit" => format!(
            "FlexiBank: {} credited to a/c {}{}. Balance {}.",
            money("amount"),
            field("account"),
            payload.get("counterparty").and_then(Value::as_str).map(|c| format!(" from {c}")).unwrap_or_default(),
            money("balance_after")
        ),
        "balance.low" => format!(
            "FlexiBank: a/c {} balance {} is below your alert of {}.",
            field("account"),
            money("balance_after"),
            money("threshold")
        ),
        "security.new_device" => "FlexiBank: a new sign-in to your account. Not you? Call us now.".into(),
        "security.mfa_reset" => "FlexiBank: your two-step sign-in was reset by the bank. Not expected? Call us now.".into(),
        "security.mfa_enrolled" => "FlexiBank: a new authenticator was set up for your account.".into(),
        "account.status" => format!("FlexiBank: a/c {} is now {}.", field("account"), field("to")),
        other => format!("FlexiBank: {other}"),
    }
}

impl Sms {
    pub async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url.trim_end_matches('/'), self.account_sid);
        let body = text_of(&message.kind, &message.payload);
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            // The event id lets a receiver drop a repeat; Twilio ignores unknown headers.
            .header("X-FlexiBank-Event-Id", message.event_id.to_string())
            .form(&[("To", message.destination.as_str()), ("From", self.from.as_str()), ("Body", body.as_str())])
            .send()
            .await
            .map_err(|e| SendError::retry(super::dispatch::describe("SMS", &e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // 4xx other than 429 will not get better by sending again.
        let text = format!("SMS: {status}");
        if status.is_client_error() && status.as_u16() != 429 {
            Err(SendError::fatal(text))
        } else {
            Err(SendError::retry(text))
        }
    }
}
