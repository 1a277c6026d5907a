//! This bank as a member of a consortium (issue 16, docs/consortium.md):
//! payments to and from other banks through the switch, with holds for
//! two-phase commit, and the customers' alias keys in the switch's directory.
//!
//! - `payments`: both sides of a payment at this bank, and the decision applied once;
//! - `grouped`: a queue and one worker per kind of step, for shared transactions;
//! - `record`: a payment's row here and its API form;
//! - `steps`: each step (hold, vote, posting, acknowledgement) as such a group;
//! - `keys`: registering, verifying and deleting keys, and look-ups;
//! - `switch_link`: this bank's calls to the switch;
//! - `resolver`: asks the switch about payments left undecided here (a crash,
//!   a lost answer) and raises the in-doubt alert.

pub mod grouped;
pub mod keys;
pub mod payments;
pub mod record;
pub mod resolver;
pub mod steps;
pub mod switch_link;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use crate::{config::InterbankConfig, db::Db};

pub struct Interbank {
    pub config: InterbankConfig,
    pub link: Arc<switch_link::SwitchLink>,
    pub places: grouped::Grouper<steps::PlaceGroup>,
    pub acks: grouped::Grouper<steps::AckGroup>,
    pub settles: grouped::Grouper<steps::SettleGroup>,
    pub prepares: grouped::Grouper<steps::PrepareGroup>,
    pub context: Arc<grouped::Context>,
}

impl Interbank {
    pub fn new(config: &InterbankConfig, db: Db) -> anyhow::Result<Interbank> {
        anyhow::ensure!(flexibank_consortium::pki::is_bank_id(&config.bank_id), "interbank.bank_id must be 8 digits");
        anyhow::ensure!(!config.bank_name.trim().is_empty() && config.bank_name.chars().count() <= 200, "interbank.bank_name must be 1 to 200 characters");
        // The customer's wait must end before the server's request timeout cuts the request off.
        anyhow::ensure!(config.timeout_ms >= 100, "interbank.timeout_ms must be at least 100");
        let link = Arc::new(switch_link::SwitchLink::new(config)?);
        let context = Arc::new(grouped::Context {
            db,
            link: link.clone(),
            linger: Duration::from_millis(config.group_linger_ms),
            settlement_ready: Default::default(),
            posted_lsn: Default::default(),
            applying: tokio::sync::watch::Sender::new(0),
        });
        Ok(Interbank {
            config: config.clone(),
            link,
            places: grouped::Grouper::new(context.clone()),
            acks: grouped::Grouper::new(context.clone()),
            settles: grouped::Grouper::new(context.clone()),
            prepares: grouped::Grouper::new(context.clone()),
            context,
        })
    }
}

/// Tells the switch where this bank's switch-only listener is, retrying until
/// it has it (the switch may start after the bank).
pub async fn announce_endpoint(interbank: Arc<Interbank>, bound: SocketAddr) {
    let addr = interbank.config.advertise.clone().unwrap_or_else(|| bound.to_string());
    let mut delay = Duration::from_millis(200);
    loop {
        match interbank.link.put_endpoint(&addr).await {
            Ok(_) => {
                tracing::info!(%addr, "the switch has this bank's endpoint");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "telling the switch this bank's endpoint failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
