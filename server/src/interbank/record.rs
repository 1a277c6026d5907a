//! An inter-bank payment as this bank stores it (`interbank_payments`) and
//! as its payer sees it in the API; read by the steps and the payments alike.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, Code};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Payee {
    pub bank_id: Option<String>,
    pub bank_name: Option<String>,
    pub holder_name_masked: Option<String>,
    pub account_number_masked: Option<String>,
}

/// A payment as its payer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InterbankPayment {
    pub id: Uuid,
    pub e2e_id: String,
    /// pending, committed or aborted.
    #[schema(pattern = "^(pending|committed|aborted)$")]
    pub status: String,
    pub from_account_id: Uuid,
    #[schema(value_type = String)]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    pub payee: Payee,
    pub memo: String,
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Option<String>)]
    #[serde(with = "rust_decimal::serde::str_option")]
    pub balance_after: Option<Decimal>,
    /// Why it was aborted.
    pub reason: Option<String>,
}

pub(super) const PAYMENT_COLUMNS: &str = "id, e2e_id, status, account_id, amount, currency, counterparty_bank_id, counterparty_bank_name,
    holder_name_masked, account_number_masked, memo, created_at, balance_after, reason, request_hash, direction";

pub(super) fn payment_of(row: &Row) -> InterbankPayment {
    let status: String = row.get(2);
    InterbankPayment {
        id: row.get(0),
        e2e_id: row.get(1),
        status: if status == "committed" || status == "aborted" { status } else { "pending".into() },
        from_account_id: row.get(3),
        amount: row.get(4),
        currency: row.get(5),
        payee: Payee { bank_id: row.get(6), bank_name: row.get(7), holder_name_masked: row.get(8), account_number_masked: row.get(9) },
        memo: row.get(10),
        created_at: row.get(11),
        balance_after: row.get(12),
        reason: row.get(13),
    }
}

/// What a bank outside any consortium answers.
pub(super) fn not_a_member() -> ApiError {
    ApiError::new(Code::NotFound, "this bank is not a member of a consortium")
}
