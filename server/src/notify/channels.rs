//! What the dispatcher and the digests send through: the configured
//! channels (SMS, e-mail, webhooks), a message on its way out, a failed send,
//! and how a failure is recorded. Shared by `dispatch.rs` (one message at a
//! time) and `digest.rs` (many as one), so that neither depends on the other.

use std::time::Duration;

use rand::Rng;
use uuid::Uuid;

use super::{email::Email, sms::Sms, webhook::Webhooks};
use crate::config::NotificationsConfig;

/// A one-by-one round looks at no more than this many of the oldest pending
/// deliveries (`dispatch.rs`); the digests look at a multiple of it (`digest.rs`).
pub const CLAIM_WINDOW: i64 = 4096;

pub struct Endpoint {
    pub url: String,
    pub secret_enc: Vec<u8>,
    pub active: bool,
}

pub struct Outbound {
    pub delivery_id: i64,
    pub critical: bool,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// For the webhook channel: the endpoint the destination names.
    pub webhook: Option<Endpoint>,
    pub channel: String,
    pub destination: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
}

#[derive(Debug)]
pub struct SendError {
    /// False: sending again cannot help (the receiver refused the message).
    pub retryable: bool,
    pub message: String,
}

impl SendError {
    pub fn retry(message: impl Into<String>) -> SendError {
        SendError { retryable: true, message: message.into() }
    }
    pub fn fatal(message: impl Into<String>) -> SendError {
        SendError { retryable: false, message: message.into() }
    }
}

/// A transport failure in words an admin can act on (the dead-letter list shows it).
pub fn describe(channel: &str, error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("{channel}: the receiver did not answer in time (timeout)");
    }
    let mut text = format!("{channel}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// The configured channels; one without settings is left out, and its
/// deliveries wait.
pub struct Channels {
    sms: Option<Sms>,
    email: Option<Email>,
    webhooks: Webhooks,
}

impl Channels {
    /// `bank_name` signs every SMS and e-mail (`Config::bank_name`).
    pub fn from_config(config: &NotificationsConfig, bank_name: &str, secrets: crate::auth::totp::SecretBox) -> anyhow::Result<Channels> {
        let extra_cas = match &config.extra_ca_pem {
            Some(path) => reqwest::Certificate::from_pem_bundle(&std::fs::read(path)?)?,
            None => Vec::new(),
        };
        // Webhook URLs come from customers: HTTPS only, and no redirects to
        // somewhere else.
        let client = |https_only: bool| {
            let builder = reqwest::Client::builder()
                .timeout(Duration::from_millis(config.send_timeout_ms))
                .connect_timeout(Duration::from_millis(config.send_timeout_ms))
                .user_agent("FlexiBank-Notifications/1")
                .https_only(https_only)
                .redirect(reqwest::redirect::Policy::none());
            extra_cas.iter().cloned().fold(builder, |b, ca| b.add_root_certificate(ca)).build()
        };
        let http = client(false)?;
        let sms = match (&config.sms_base_url, &config.sms_account_sid, &config.sms_auth_token, &config.sms_from) {
            (Some(base_url), Some(sid), Some(token), Some(from)) => Some(Sms {
                http: http.clone(),
                base_url: base_url.clone(),
                account_sid: sid.clone(),
                auth_token: token.clone(),
                from: from.clone(),
                bank_name: bank_name.to_string(),
            }),
            _ => None,
        };
        Ok(Channels { sms, email: Email::from_config(config, bank_name)?, webhooks: Webhooks { http: client(true)?, secrets } })
    }

    pub fn names(&self) -> Vec<String> {
        let mut names = vec!["webhook".to_string()];
        names.extend(self.sms.iter().map(|_| "sms".to_string()));
        names.extend(self.email.iter().map(|_| "email".to_string()));
        names
    }

    pub(super) async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        match (message.channel.as_str(), &self.sms, &self.email) {
            ("sms", Some(sms), _) => sms.send(message).await,
            ("email", _, Some(email)) => email.send(message).await,
            ("webhook", _, _) => self.webhooks.send(message).await,
            (other, _, _) => Err(SendError::retry(format!("channel {other} is not configured"))),
        }
    }
}

/// The delay before the next try after `attempts` failures: exponential from
/// `backoff_first_ms`, capped at `backoff_max_ms`, with full jitter in its
/// upper half (so a crowd of failures does not come back at once).
pub fn backoff(config: &NotificationsConfig, attempts: i32) -> Duration {
    let doublings = (attempts.max(1) - 1).min(30) as u32;
    let cap = config.backoff_first_ms.saturating_mul(1u64 << doublings).min(config.backoff_max_ms);
    let ms = rand::thread_rng().gen_range(cap / 2..=cap);
    Duration::from_millis(ms.max(1))
}

/// A failed send: tried again after a growing delay (the lane waits, in
/// order), or dead once it cannot succeed or has used its attempts.
pub async fn record_failure(tx: &tokio_postgres::Transaction<'_>, config: &NotificationsConfig, message: &Outbound, e: &SendError) -> anyhow::Result<()> {
    let attempts = message.attempts + 1;
    if e.retryable && attempts < config.max_attempts {
        let delay_ms = backoff(config, attempts).as_millis() as f64;
        tx.execute(
            "UPDATE notification_deliveries
                SET attempts = $2, last_error = $3, next_attempt_at = now() + make_interval(secs => $4::float8 / 1000)
              WHERE id = $1",
            &[&message.delivery_id, &attempts, &e.message, &delay_ms],
        )
        .await?;
        metrics::counter!("flexibank_notifications_retries_total", "channel" => message.channel.clone()).increment(1);
    } else {
        tracing::warn!(delivery = message.delivery_id, event = %message.event_id, attempts, "notification dead: {}", e.message);
        tx.execute(
            "UPDATE notification_deliveries SET status = 'dead', attempts = $2, last_error = $3 WHERE id = $1",
            &[&message.delivery_id, &attempts, &e.message],
        )
        .await?;
        metrics::counter!("flexibank_notifications_dead_total", "channel" => message.channel.clone()).increment(1);
    }
    Ok(())
}
