//! SMS through Twilio's REST API (`POST /2010-04-01/Accounts/{sid}/Messages.json`,
//! form body, basic auth), or any receiver speaking that shape.

use super::{
    channels::{Outbound, SendError},
    text_of,
};

pub struct Sms {
    pub http: reqwest::Client,
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    /// Signs every message (`Config::bank_name`).
    pub bank_name: String,
}

impl Sms {
    pub async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url.trim_end_matches('/'), self.account_sid);
        let body = text_of(&self.bank_name, &message.kind, &message.payload);
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            // The event id lets a receiver drop a repeat; Twilio ignores unknown headers.
            .header("X-FlexiBank-Event-Id", message.event_id.to_string())
            .form(&[("To", message.destination.as_str()), ("From", self.from.as_str()), ("Body", body.as_str())])
            .send()
            .await
            .map_err(|e| SendError::retry(super::channels::describe("SMS", &e)))?;
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
