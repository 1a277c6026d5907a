//! E-mail over SMTP with STARTTLS (lettre), verifying the relay's
//! certificate against the web roots and any extra CA configured.

use lettre::{
    message::{header::ContentType, Mailbox},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use super::{
    channels::{Outbound, SendError},
    text_of,
};
use crate::config::NotificationsConfig;

pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Signs the body and names the bank in subjects that mention it.
    bank_name: String,
}

fn subject_of(bank_name: &str, kind: &str) -> String {
    let fixed = match kind {
        "money.debit" => "Money left your account",
        "money.credit" => "Money arrived in your account",
        "money.digest" => "Your recent account activity",
        "balance.low" => "Low balance",
        "security.new_device" => return format!("New sign-in to {bank_name}"),
        "security.mfa_reset" => "Your two-step sign-in was reset",
        "security.mfa_enrolled" => "New authenticator set up",
        "account.status" => "Your account's status changed",
        "key.verification" => return format!("Your {bank_name} verification code"),
        "key.registered" => "A payment key was added to your account",
        "payee.added" => "A payee was added to your account",
        "account.opened" => "Your new account is open",
        "account.owner_added" => "An owner was added to your account",
        "limit.raised" => "Your daily limit is being raised",
        "standing_order.refused" => "A standing order was refused",
        "standing_order.skipped" => "A standing order did not run",
        "review.held" => "A payment is held for a check",
        "interbank.aborted" => "A payment to another bank was not made",
        "review.approved" => "Your held payment was sent",
        "review.rejected" => "Your held payment was not sent",
        _ => return format!("{bank_name} notice"),
    };
    fixed.to_string()
}

impl Email {
    /// None when no relay is configured.
    pub fn from_config(config: &NotificationsConfig, bank_name: &str) -> anyhow::Result<Option<Email>> {
        let (Some(host), Some(from)) = (&config.smtp_host, &config.smtp_from) else { return Ok(None) };
        let mut tls = TlsParameters::builder(host.clone());
        if let Some(path) = &config.extra_ca_pem {
            tls = tls.add_root_certificate(Certificate::from_pem(&std::fs::read(path)?)?);
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(config.smtp_port)
            .tls(Tls::Required(tls.build_rustls()?))
            .timeout(Some(std::time::Duration::from_millis(config.send_timeout_ms)));
        if let (Some(user), Some(password)) = (&config.smtp_username, &config.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Some(Email { transport: builder.build(), from: from.parse()?, bank_name: bank_name.to_string() }))
    }

    pub async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        let to: Mailbox = message.destination.parse().map_err(|e| SendError::fatal(format!("e-mail address: {e}")))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject_of(&self.bank_name, &message.kind))
            .message_id(Some(format!("<{}@flexibank.notifications>", message.event_id)))
            .header(ContentType::TEXT_PLAIN)
            .body(format!("{}\n\nEvent {}\n", text_of(&self.bank_name, &message.kind, &message.payload), message.event_id))
            .map_err(|e| SendError::fatal(format!("e-mail: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            // 5xx: the relay refused this message for good.
            Err(e) if e.is_permanent() => Err(SendError::fatal(format!("e-mail: {e}"))),
            Err(e) => Err(SendError::retry(format!("e-mail: {e}"))),
        }
    }
}
