//! The messages between banks and the switch (docs/consortium.md), written
//! once for both sides. Banks call the switch at `/switch/v1/banks/{bank}/…`;
//! the switch calls each bank at its switch-only listener under `INTERBANK_PREFIX`.
//! Every message is idempotent by `e2e_id`: a repeat answers the first result.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::keys::KeyType;

/// One currency per consortium for now (docs/consortium.md, "Money").
pub const CURRENCY: &str = "INR";

pub const REASON_LIQUIDITY: &str = "liquidity_exhausted";
pub const REASON_TIMEOUT: &str = "timeout";
pub const REASON_PAYEE_REFUSED: &str = "payee_refused";

/// Where the switch reaches a bank: `https://<bank name>:<port>` + these paths.
pub const INTERBANK_PREFIX: &str = "/interbank/v1";
pub const PREPARE_PATH: &str = "/interbank/v1/prepare";
pub const DECISION_PATH: &str = "/interbank/v1/decision";
pub const SETTLEMENT_PATH: &str = "/interbank/v1/settlement";
/// Steps 4 and 6 for many payments of one bank in one call (`Batch`): the switch
/// sends what is waiting for a bank together instead of one HTTPS exchange each.
pub const PREPARES_PATH: &str = "/interbank/v1/prepares";
pub const DECISIONS_PATH: &str = "/interbank/v1/decisions";
/// The messages one `Batch` carries at most: with a memo of 140 four-byte
/// characters and a 200-character bank name a message stays under 1 KiB, so a
/// full batch fits the banks' 64 KiB request bound with room to spare.
pub const MAX_BATCH_MESSAGES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Initiated,
    Prepared,
    Committed,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initiated => "initiated",
            Status::Prepared => "prepared",
            Status::Committed => "committed",
            Status::Aborted => "aborted",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Initiated, Status::Prepared, Status::Committed, Status::Aborted].into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_decided(self) -> bool {
        matches!(self, Status::Committed | Status::Aborted)
    }
}

/// What a payer bank asks the switch to do (docs/consortium.md, step 2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub e2e_id: String,
    pub key_type: KeyType,
    pub key_value: String,
    pub amount: Decimal,
    pub currency: String,
    /// The payer's words for the payee (at most 140 characters), shown with the credit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub memo: String,
}

/// A payment as the switch holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub e2e_id: String,
    pub payer_bank: String,
    pub payee_bank: String,
    pub payee_key_type: KeyType,
    pub payee_key_value: String,
    pub payee_account_number: String,
    pub amount: Decimal,
    pub currency: String,
    #[serde(default)]
    pub memo: String,
    pub status: Status,
    /// Why it was aborted; `None` unless aborted.
    pub reason: Option<String>,
    pub deadline: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub payer_acked_at: Option<DateTime<Utc>>,
    pub payee_acked_at: Option<DateTime<Utc>>,
    /// For the payer's customer, masked only: whom the payment went to. Filled in the answers to the payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee_bank_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee_holder_name_masked: Option<String>,
}

/// A bank's liquidity at the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub bank_id: String,
    pub prefunded: Decimal,
    /// Net of committed payments: negative when the bank paid out more than it received.
    pub position: Decimal,
    pub net_debit_cap: Decimal,
    /// Reserved for its undecided outgoing payments.
    pub pending_out: Decimal,
}

impl Position {
    /// What the bank may still send: `prefunded + position + net_debit_cap - pending_out`.
    pub fn available(&self) -> Decimal {
        self.prefunded + self.position + self.net_debit_cap - self.pending_out
    }
}

/// `PUT /switch/v1/banks/{bank}/endpoint`: where the switch reaches this bank's
/// switch-only listener (`host:port`). The switch checks that the listener's
/// certificate names the bank, whatever address it was told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub interbank_addr: String,
}

/// Step 4, switch → payee bank: `POST PREPARE_PATH`. The bank answers 200 `Vote`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Prepare {
    pub e2e_id: String,
    pub payer_bank: String,
    pub payer_bank_name: String,
    pub account_number: String,
    pub amount: Decimal,
    pub currency: String,
    #[serde(default)]
    pub memo: String,
}

/// The payee bank's vote (also the body of `POST …/payments/{e2e_id}/vote`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    pub yes: bool,
    /// Why the payee refused (a no only): `payee_refused` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Step 6, switch → either bank: `POST DECISION_PATH`. The bank applies it
/// (once) and answers 200 `Applied`, which is its acknowledgement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub e2e_id: String,
    /// `Committed` or `Aborted` only.
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Applied {
    pub e2e_id: String,
    pub status: Status,
}

/// Many `Prepare`s or `Decision`s for one bank (`PREPARES_PATH`, `DECISIONS_PATH`):
/// 1 to `MAX_BATCH_MESSAGES`, each applied as if it came alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Batch<M> {
    pub items: Vec<M>,
}

/// The answer to a `Batch`: one per item, in order; `null` for an item the
/// bank could not apply (it logs why), which the switch treats as a failed call
/// for that payment alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Answers<A> {
    pub answers: Vec<Option<A>>,
}

/// Step 6 acknowledged in bulk, payer bank → switch:
/// `POST /switch/v1/banks/{bank_id}/acks`. A bank applying many decisions
/// acknowledges them in one call instead of one call each.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Acks {
    /// 1 to `MAX_ACKS` payments of which this bank is the payer or the payee.
    pub e2e_ids: Vec<String>,
}

/// The payments one `Acks` names at most.
pub const MAX_ACKS: usize = 256;

/// The answer to `Acks`: which were recorded; the others are not decided yet or not this bank's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AcksRecorded {
    pub acknowledged: Vec<String>,
}

/// `GET SETTLEMENT_PATH`: the bank's settlement account, for `reconcile`.
/// It mirrors the bank's position at the switch: `balance == -position`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settlement {
    pub bank_id: String,
    pub currency: String,
    pub balance: Decimal,
    /// Payments this bank has heard of but not yet had decided (holds and pending credits).
    pub undecided: i64,
}
