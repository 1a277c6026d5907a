//! Batch transfers from CSV: every row checked here and shown to the user
//! before the batch is sent all or nothing.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::{check_amount, check_memo};

/// The contract's limit for one batch.
pub const MAX_ROWS: usize = 1000;
pub const MAX_CSV_BYTES: usize = 256 * 1024;

/// The fields of the user's own account the checks need (as `me` returns them).
#[derive(Debug, Clone, Deserialize)]
pub struct OwnAccount {
    pub id: Uuid,
    pub number: String,
    pub currency: String,
    pub balance: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRow {
    pub line: u64,
    pub from_account_id: Option<Uuid>,
    pub from_account_number: String,
    pub to_account_number: String,
    pub amount: String,
    pub currency: Option<String>,
    pub memo: String,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Total {
    pub currency: String,
    pub amount: String,
}

#[derive(Debug, Serialize)]
pub struct Preview {
    pub rows: Vec<BatchRow>,
    pub valid: bool,
    pub totals: Vec<Total>,
}

/// Rows as `from_account,to_account,amount,memo`; a first line starting with
/// "from" is a header. A row whose running total would take its account below
/// zero is marked, as the server would refuse the whole batch for it.
pub fn preview(csv_text: &str, accounts: &[OwnAccount]) -> Result<Preview, String> {
    if csv_text.len() > MAX_CSV_BYTES {
        return Err(format!(
            "the file is larger than {} KiB",
            MAX_CSV_BYTES / 1024
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let mut rows = Vec::new();
    let mut spent: BTreeMap<Uuid, Decimal> = BTreeMap::new();
    let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("CSV: {e}"))?;
        let line = record.position().map_or(index as u64 + 1, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("").to_string();
        if record.iter().all(str::is_empty)
            || (index == 0 && field(0).to_ascii_lowercase().starts_with("from"))
        {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(format!("at most {MAX_ROWS} transfers per batch"));
        }
        let mut row = BatchRow {
            line,
            from_account_id: None,
            from_account_number: field(0),
            to_account_number: field(1),
            amount: field(2),
            currency: None,
            memo: field(3),
            error: None,
        };
        row.error = check_row(&mut row, record.len(), accounts, &mut spent, &mut totals).err();
        rows.push(row);
    }
    let valid = !rows.is_empty() && rows.iter().all(|r| r.error.is_none());
    let totals = totals
        .into_iter()
        .map(|(currency, amount)| Total {
            currency,
            amount: amount.to_string(),
        })
        .collect();
    Ok(Preview {
        rows,
        valid,
        totals,
    })
}

fn check_row(
    row: &mut BatchRow,
    fields: usize,
    accounts: &[OwnAccount],
    spent: &mut BTreeMap<Uuid, Decimal>,
    totals: &mut BTreeMap<String, Decimal>,
) -> Result<(), String> {
    if !(3..=4).contains(&fields) {
        return Err(format!(
            "expected 3 or 4 columns (from_account,to_account,amount,memo), found {fields}"
        ));
    }
    let from = accounts
        .iter()
        .find(|a| a.number == row.from_account_number)
        .ok_or("from_account is not one of your accounts")?;
    row.from_account_id = Some(from.id);
    row.currency = Some(from.currency.clone());
    if from.status != "active" {
        return Err(format!("account {} is {}", from.number, from.status));
    }
    if row.to_account_number.is_empty() || row.to_account_number.len() > 34 {
        return Err("to_account must be an account number".into());
    }
    if row.to_account_number == row.from_account_number {
        return Err("cannot transfer to the same account".into());
    }
    let amount = check_amount(&row.amount, Some(&from.currency))?;
    check_memo(&row.memo)?;
    let balance: Decimal = from
        .balance
        .parse()
        .map_err(|_| "account balance unreadable")?;
    let running = spent.entry(from.id).or_default();
    *running += amount;
    if *running > balance {
        return Err(format!(
            "insufficient funds: rows so far take {running} from {} holding {balance} {}",
            from.number, from.currency
        ));
    }
    *totals.entry(from.currency.clone()).or_default() += amount;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Vec<OwnAccount> {
        vec![
            OwnAccount {
                id: Uuid::from_u128(1),
                number: "1000000001".into(),
                currency: "INR".into(),
                balance: "100.00".into(),
                status: "active".into(),
            },
            OwnAccount {
                id: Uuid::from_u128(2),
                number: "1000000002".into(),
                currency: "USD".into(),
                balance: "5.00".into(),
                status: "frozen".into(),
            },
        ]
    }

    #[test]
    fn good_rows_with_header_and_quotes() {
        let csv = "from_account,to_account,amount,memo\n1000000001,1000000009,10.50,\"rent, May\"\n1000000001, 1000000008 ,20\n";
        let p = preview(csv, &accounts()).unwrap();
        assert!(p.valid, "{:?}", p.rows);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].memo, "rent, May");
        assert_eq!(p.rows[0].line, 2);
        assert_eq!(p.rows[1].to_account_number, "1000000008");
        assert_eq!(p.rows[1].from_account_id, Some(Uuid::from_u128(1)));
        assert_eq!(p.totals[0].currency, "INR");
        assert_eq!(p.totals[0].amount, "30.50");
    }

    #[test]
    fn every_bad_row_is_named() {
        let csv = "1000000009,1000000001,1\n1000000002,1000000001,1\n1000000001,1000000001,1\n1000000001,1000000005,1.234\n1000000001,1000000005\n";
        let p = preview(csv, &accounts()).unwrap();
        assert!(!p.valid);
        let errors: Vec<_> = p
            .rows
            .iter()
            .map(|r| r.error.clone().unwrap_or_default())
            .collect();
        assert!(errors[0].contains("not one of your accounts"), "{errors:?}");
        assert!(errors[1].contains("frozen"), "{errors:?}");
        assert!(errors[2].contains("same account"), "{errors:?}");
        assert!(errors[3].contains("2 decimal"), "{errors:?}");
        assert!(errors[4].contains("columns"), "{errors:?}");
    }

    #[test]
    fn running_total_beyond_balance_is_refused() {
        let csv =
            "1000000001,1000000005,60\n1000000001,1000000006,40\n1000000001,1000000007,0.01\n";
        let p = preview(csv, &accounts()).unwrap();
        assert!(p.rows[0].error.is_none() && p.rows[1].error.is_none());
        assert!(p.rows[2]
            .error
            .as_deref()
            .unwrap()
            .contains("insufficient funds"));
        assert!(!p.valid);
    }

    #[test]
    fn limits() {
        assert!(
            !preview("", &accounts()).unwrap().valid,
            "an empty batch is not valid"
        );
        let many = "1000000001,1000000005,0.01\n".repeat(MAX_ROWS + 1);
        assert!(preview(&many, &accounts())
            .unwrap_err()
            .contains("at most 1000"));
    }
}
