//! A history export: every entry matching the filters, fetched page by page,
//! as CSV a spreadsheet opens (amounts as the server's decimal strings).

use uuid::Uuid;

use crate::api::{ApiClient, CmdResult, CommandError};

/// Entries fetched per page (the server's maximum).
pub const PAGE: u32 = 200;
/// An export stops here rather than hold an unbounded history in memory.
pub const MAX_ROWS: usize = 100_000;
/// `counterparty_bank_id`: the other bank of an inter-bank entry (`interbank_out`/`interbank_in`), else empty.
pub const HEADER: [&str; 9] = ["created_at", "kind", "amount", "currency", "balance_after", "counterparty_account_number", "memo", "transfer_id", "counterparty_bank_id"];

#[derive(Debug, Default)]
pub struct Filters {
    pub from: Option<String>,
    pub to: Option<String>,
    pub kind: Option<String>,
}

pub struct Export {
    pub account_number: String,
    pub csv: Vec<u8>,
    pub rows: usize,
}

pub async fn transactions_csv(api: &ApiClient, account_id: Uuid, filters: &Filters) -> CmdResult<Export> {
    let csv_error = |e: csv::Error| CommandError::invalid(format!("writing CSV: {e}"));
    let account = api.get(&format!("/v1/accounts/{account_id}"), &[]).await?;
    let account_number = account["number"].as_str().unwrap_or("account").to_string();
    let currency = account["currency"].as_str().unwrap_or("").to_string();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(HEADER).map_err(csv_error)?;
    let (mut rows, mut cursor) = (0usize, None::<String>);
    loop {
        let query = [
            ("limit", Some(PAGE.to_string())),
            ("cursor", cursor.clone()),
            ("from", filters.from.clone()),
            ("to", filters.to.clone()),
            ("kind", filters.kind.clone()),
        ];
        let page = api.get(&format!("/v1/accounts/{account_id}/transactions"), &query).await?;
        for entry in page["items"].as_array().into_iter().flatten() {
            let text = |k: &str| entry[k].as_str().unwrap_or("").to_string();
            let record = [text("created_at"), text("kind"), text("amount"), currency.clone(), text("balance_after"), text("counterparty_account_number"), text("memo"), text("transfer_id"), text("counterparty_bank_id")];
            writer.write_record(&record).map_err(csv_error)?;
            rows += 1;
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() || rows >= MAX_ROWS {
            break;
        }
    }
    let csv = writer.into_inner().map_err(|e| CommandError::invalid(format!("writing CSV: {e}")))?;
    Ok(Export { account_number, csv, rows })
}
