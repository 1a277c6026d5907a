//! `flexibank-switch reconcile`: every bank's settlement account against its
//! position at the switch. The two ledgers mirror each other
//! (docs/consortium.md, "Money"): `balance + position` is zero for every bank
//! once every decision is applied, so a difference with nothing open on
//! either side is a lost or doubled posting.

use std::{collections::HashMap, fmt::Write, sync::Arc};

use anyhow::Context;
use rust_decimal::Decimal;

use crate::{
    calls::{BankAddr, Calls},
    config::ReconcileConfig,
    db, endpoints, payments,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankReconciliation {
    pub bank_id: String,
    pub position: Decimal,
    /// The bank's settlement balance; `None` when it could not be asked.
    pub balance: Option<Decimal>,
    /// `balance + position`: zero when the ledgers agree.
    pub difference: Option<Decimal>,
    /// Payments the bank reports undecided (holds and pending credits).
    pub bank_undecided: Option<i64>,
    /// Payments the switch holds undecided or not acknowledged by this bank.
    pub switch_open: i64,
    /// Why the bank's figures are missing.
    pub error: Option<String>,
}

impl BankReconciliation {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.difference == Some(Decimal::ZERO)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub banks: Vec<BankReconciliation>,
}

impl Reconciliation {
    /// Every bank answered and every difference is zero.
    pub fn ok(&self) -> bool {
        self.banks.iter().all(BankReconciliation::ok)
    }

    /// The report as a table, one bank a line.
    pub fn table(&self) -> String {
        let show = |d: &Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        let mut out =
            format!("{:<8}  {:>20}  {:>20}  {:>20}  {:>9}  {:>9}  {}\n", "bank", "position", "balance", "difference", "bank_open", "switch_open", "status");
        for b in &self.banks {
            let status = match (&b.error, b.ok()) {
                (Some(e), _) => format!("FAIL: {e}"),
                (None, true) => "ok".to_string(),
                (None, false) => "FAIL: ledgers differ".to_string(),
            };
            let bank_open = b.bank_undecided.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{:<8}  {:>20}  {:>20}  {:>20}  {:>9}  {:>9}  {status}",
                b.bank_id,
                b.position,
                show(&b.balance),
                show(&b.difference),
                bank_open,
                b.switch_open
            );
        }
        out
    }
}

/// Reads every bank's position and open payments from the switch's database and asks each bank for its settlement account.
pub async fn reconcile(config: &ReconcileConfig) -> anyhow::Result<Reconciliation> {
    let pool = db::pool(&config.database)?;
    let positions = payments::positions(&pool).await.map_err(|e| anyhow::anyhow!("reading positions: {}", e.detail))?;
    let open: HashMap<String, i64> =
        payments::open_counts(&pool).await.map_err(|e| anyhow::anyhow!("counting open payments: {}", e.detail))?.into_iter().collect();
    let calls = Arc::new(Calls::new(config.tls_dir.clone(), config.call_timeout_ms));
    // Banks are few (registered by hand): one at a time keeps the output in order and the load trivial.
    let mut banks = Vec::with_capacity(positions.len());
    for position in positions {
        let addr = endpoints::get(&pool, &position.bank_id).await.map_err(|e| anyhow::anyhow!("reading endpoints: {}", e.detail)).context("reconcile")?;
        let mut line = BankReconciliation {
            switch_open: open.get(&position.bank_id).copied().unwrap_or(0),
            bank_id: position.bank_id.clone(),
            position: position.position,
            balance: None,
            difference: None,
            bank_undecided: None,
            error: None,
        };
        match addr {
            None => line.error = Some("no endpoint registered".into()),
            Some(addr) => match calls.settlement(&BankAddr { bank_id: position.bank_id.clone(), addr }).await {
                Ok(s) if s.bank_id != position.bank_id || s.currency != payments::CURRENCY => {
                    line.error = Some(format!("answered for bank {} in {}", s.bank_id, s.currency));
                }
                Ok(s) => {
                    line.balance = Some(s.balance);
                    line.difference = Some(s.balance + position.position);
                    line.bank_undecided = Some(s.undecided);
                }
                Err(e) => line.error = Some(e.to_string()),
            },
        }
        banks.push(line);
    }
    Ok(Reconciliation { banks })
}
