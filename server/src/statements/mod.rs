//! Monthly statements (issue 18): `GET /v1/accounts/{id}/statements/{yyyy-mm}`,
//! one PDF per account and month (rendered in `pdf.rs`).
//!
//! Decisions:
//! - **Months are counted in UTC**: a statement covers `[yyyy-mm-01 00:00 UTC,
//!   first of the next month 00:00 UTC)`, and says so; every time on it is UTC.
//! - **Which months have a statement**: from the month the account opened to
//!   the current one. The current month is a *statement to date* (its period
//!   ends when it was made). A month before the account opened, or one that has
//!   not begun, has none: 404 `not_found`, with a detail that says why (only
//!   after the caller is known to see the account, so it tells a stranger
//!   nothing). A month in which nothing moved is a statement with no entries.
//! - **Bound**: at most `MAX_ENTRIES` entries on one statement (about 1,000
//!   pages); a month with more is refused with 400 `validation_failed`, never
//!   truncated: a statement is all of the month or nothing.
//! - **Reads** come from one REPEATABLE READ snapshot on a read connection (a
//!   replica that has replayed the caller's last write, else the primary), so
//!   the opening balance, the entries and the header agree. The opening balance
//!   is the `balance_after` of the last entry before the month (0.00 if none),
//!   each row's running balance is its entry's `balance_after`, and the closing
//!   balance the last one's. Amounts stay exact decimals throughout.
//! - **Audit**: each download writes one `statement.download` row on the
//!   primary (one INSERT, in the account's branch trail), while the PDF is
//!   being rendered; without it there is no statement.

pub mod pdf;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    access::AccountActor,
    db::db_error,
    error::{ApiError, ApiResult},
    request::RequestMeta,
    state::AppState,
    text::TextRule,
};

/// The most entries one statement holds; a month with more is refused.
pub const MAX_ENTRIES: usize = 50_000;

/// The month's path segment, exactly as the document publishes it: `yyyy-mm`, from 2000-01.
pub const MONTH_PATTERN: &str = "^[2-9][0-9]{3}-(0[1-9]|1[0-2])$";
pub static MONTH: TextRule = TextRule::new(MONTH_PATTERN, 7, 7);

/// A calendar month, counted in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl Month {
    /// `yyyy-mm` from 2000-01; anything else is 400 `validation_failed`.
    pub fn parse(text: &str) -> ApiResult<Month> {
        if !MONTH.accepts(text) {
            return Err(ApiError::validation(format!(
                "{text:?} is not a month: expected yyyy-mm (e.g. 2026-04), from 2000-01"
            )));
        }
        let year = text[..4].parse().map_err(|_| ApiError::validation("the year is not a number"))?;
        let month = text[5..].parse().map_err(|_| ApiError::validation("the month is not a number"))?;
        Ok(Month { year, month })
    }

    pub fn containing(at: DateTime<Utc>) -> Month {
        Month {
            year: at.year(),
            month: at.month(),
        }
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month { year: self.year + 1, month: 1 }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Its first instant, 00:00 UTC on the 1st.
    pub fn start(self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(self.year, self.month, 1, 0, 0, 0)
            .single()
            .expect("the 1st of a month from 2000-01 to 9999-12 exists")
    }

    /// The first instant after it.
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }

    pub fn days(self) -> u32 {
        (self.end() - self.start()).num_days() as u32
    }

    /// "April 2026".
    pub fn name(self) -> String {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .expect("a valid month")
            .format("%B %Y")
            .to_string()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One entry of the month, as printed.
#[derive(Debug, Clone)]
pub struct Line {
    pub at: DateTime<Utc>,
    pub kind: String,
    /// The other account's number, or `bank <id>` for an inter-bank payment; none for cash.
    pub counterparty: Option<String>,
    pub memo: String,
    /// Signed: a credit is positive.
    pub amount: Decimal,
    pub balance_after: Decimal,
}

/// Everything a statement shows.
#[derive(Debug, Clone)]
pub struct Statement {
    pub bank_name: String,
    pub account_number: String,
    pub kind: String,
    pub currency: String,
    pub status: String,
    /// Full names, in alphabetical order.
    pub owners: Vec<String>,
    pub month: Month,
    /// The period printed: the month, or up to `generated_at` for the current one.
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// The current month, so far.
    pub to_date: bool,
    pub generated_at: DateTime<Utc>,
    pub opening: Decimal,
    pub lines: Vec<Line>,
}

impl Statement {
    pub fn closing(&self) -> Decimal {
        self.lines.last().map(|l| l.balance_after).unwrap_or(self.opening)
    }
    /// What came in (credits), positive.
    pub fn money_in(&self) -> Decimal {
        self.lines.iter().map(|l| l.amount).filter(|a| *a > Decimal::ZERO).sum()
    }
    /// What went out (debits), positive.
    pub fn money_out(&self) -> Decimal {
        -self.lines.iter().map(|l| l.amount).filter(|a| *a < Decimal::ZERO).sum::<Decimal>()
    }
    /// `statement-<number>-<yyyy-mm>.pdf`.
    pub fn file_name(&self) -> String {
        format!("statement-{}-{}.pdf", self.account_number, self.month)
    }
}

/// The account as the actor may see it; 404 when it is not theirs.
const ACCOUNT: &str = "
SELECT a.number, a.branch_id, a.kind, a.currency, a.status, a.opened_at,
       coalesce((SELECT array_agg(u.full_name ORDER BY u.full_name, u.id)
                   FROM account_owners o JOIN users u ON u.id = o.user_id WHERE o.account_id = a.id), '{}') AS owners
  FROM accounts a
 WHERE a.id = $1 AND a.kind NOT IN ('vault', 'settlement', 'fx')
   AND (($2::uuid IS NOT NULL AND EXISTS (SELECT 1 FROM account_owners o WHERE o.account_id = a.id AND o.user_id = $2))
        OR ($3::uuid IS NOT NULL AND a.branch_id = $3))";

/// The last running balance before an instant (index `entries_account_history`, backwards).
const OPENING: &str = "
SELECT balance_after FROM entries WHERE account_id = $1 AND created_at < $2 ORDER BY created_at DESC, id DESC LIMIT 1";

/// The month's entries in ledger order, one more than the bound (to tell that it is passed).
const ENTRIES: &str = "
SELECT e.created_at, e.kind, e.amount, e.balance_after, e.memo,
       CASE WHEN c.kind IN ('vault', 'settlement', 'fx') THEN NULL ELSE c.number END AS counterparty_number,
       CASE WHEN c.kind = 'settlement'
            THEN (SELECT ip.counterparty_bank_id FROM interbank_payments ip WHERE ip.transfer_id = e.transfer_id) END AS counterparty_bank_id
  FROM entries e JOIN accounts c ON c.id = e.counterparty_account_id
 WHERE e.account_id = $1 AND e.created_at >= $2 AND e.created_at < $3
 ORDER BY e.created_at, e.id
 LIMIT $4";

fn scope(actor: &AccountActor) -> (Option<Uuid>, Option<Uuid>) {
    match actor {
        AccountActor::Holder(caller) => (Some(caller.user_id), None),
        AccountActor::Branch(_, branch_id) => (None, Some(*branch_id)),
    }
}

/// Where a statement's audit row goes, and what it says.
struct Loaded {
    statement: Statement,
    branch_id: Uuid,
}

async fn load(state: &AppState, actor: &AccountActor, account_id: Uuid, month: Month) -> ApiResult<(Loaded, crate::db::ServedBy)> {
    let (mut client, served_by) = state.db.reader_for(&actor.caller().session_hash).await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db_error)?;
    let (owner, branch) = scope(actor);
    let account = tx
        .query_opt(ACCOUNT, &[&account_id, &owner, &branch])
        .await
        .map_err(db_error)?
        .ok_or_else(ApiError::not_found)?;
    let opened_at: DateTime<Utc> = account.get("opened_at");
    let now = Utc::now();
    let current = Month::containing(now);
    if month > current {
        return Err(ApiError::new(
            crate::error::Code::NotFound,
            format!("no statement for {month} yet: that month has not begun (months are counted in UTC); this month's is {current}, to date"),
        ));
    }
    let opened = Month::containing(opened_at);
    if month < opened {
        return Err(ApiError::new(
            crate::error::Code::NotFound,
            format!("no statement for {month}: the account opened in {opened} (months are counted in UTC)"),
        ));
    }
    let opening: Decimal = tx
        .query_opt(OPENING, &[&account_id, &month.start()])
        .await
        .map_err(db_error)?
        .map(|row| row.get(0))
        .unwrap_or(Decimal::ZERO);
    let fetch = MAX_ENTRIES as i64 + 1;
    let rows = tx
        .query(ENTRIES, &[&account_id, &month.start(), &month.end(), &fetch])
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    check_bound(rows.len())?;
    let lines = rows
        .iter()
        .map(|row| {
            let bank: Option<String> = row.get("counterparty_bank_id");
            let number: Option<String> = row.get("counterparty_number");
            Line {
                at: row.get("created_at"),
                kind: row.get("kind"),
                counterparty: number.or(bank.map(|b| format!("bank {b}"))),
                memo: row.get("memo"),
                amount: row.get("amount"),
                balance_after: row.get("balance_after"),
            }
        })
        .collect();
    let to_date = month == current;
    let statement = Statement {
        bank_name: state.config.bank_name().to_string(),
        account_number: account.get("number"),
        kind: account.get("kind"),
        currency: account.get("currency"),
        status: account.get("status"),
        owners: account.get("owners"),
        month,
        period_start: month.start(),
        period_end: if to_date { now } else { month.end() },
        to_date,
        generated_at: now,
        opening,
        lines,
    };
    if statement.opening + statement.money_in() - statement.money_out() != statement.closing() {
        // The running balances disagree with the amounts: print them as the ledger has them, and say so in the log.
        tracing::warn!(account = %statement.account_number, %month, "a statement's running balances do not add up");
    }
    Ok((
        Loaded {
            statement,
            branch_id: account.get("branch_id"),
        },
        served_by,
    ))
}

/// More than `MAX_ENTRIES` is refused, never truncated.
pub fn check_bound(entries: usize) -> ApiResult<()> {
    if entries > MAX_ENTRIES {
        return Err(ApiError::validation("too many entries for one statement; ask the branch"));
    }
    Ok(())
}

/// One `statement.download` row in the account's branch trail: a single INSERT on the primary.
async fn audit(state: &AppState, actor: &AccountActor, meta: &RequestMeta, loaded: &Loaded) -> ApiResult<()> {
    let caller = actor.caller();
    let client = state.db.writer().await?;
    let statement = &loaded.statement;
    let details = serde_json::json!({
        "month": statement.month.to_string(),
        "entries": statement.lines.len(),
        "to_date": statement.to_date,
    });
    // The same row as `audit::record_tx`, without a transaction of its own: one round trip.
    client
        .execute(
            "INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
             VALUES ($1, $2, $3, 'statement.download', $4, $5, $6, 'success', $7)",
            &[
                &caller.user_id,
                &caller.role.as_str(),
                &loaded.branch_id,
                &format!("account:{}", statement.account_number),
                &meta.request_id,
                &meta.client_ip.to_string(),
                &details,
            ],
        )
        .await
        .map_err(db_error)?;
    Ok(())
}

/// At most this many statements are rendered at once (each is CPU work).
static RENDERING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A rendered statement.
pub struct Rendered {
    pub served_by: crate::db::ServedBy,
    pub file_name: String,
    pub pdf: Vec<u8>,
}

/// `GET /v1/accounts/{id}/statements/{month}`: reads, audits and renders.
pub async fn download(state: &AppState, actor: &AccountActor, meta: &RequestMeta, account_id: Uuid, month: Month) -> ApiResult<Rendered> {
    let (loaded, served_by) = load(state, actor, account_id, month).await?;
    let file_name = loaded.statement.file_name();
    let statement = loaded.statement.clone();
    let render = async move {
        let permit = RENDERING.acquire().await.map_err(ApiError::internal)?;
        // The permit goes with the work: a request that times out does not free it while rendering goes on.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            pdf::render(&statement)
        })
        .await
        .map_err(ApiError::internal)?
    };
    let (audited, rendered) = tokio::join!(audit(state, actor, meta, &loaded), render);
    audited?;
    Ok(Rendered {
        served_by,
        file_name,
        pdf: rendered?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_exactly_as_the_document_says() {
        assert_eq!(Month::parse("2026-04").unwrap(), Month { year: 2026, month: 4 });
        assert_eq!(Month::parse("2000-01").unwrap(), Month { year: 2000, month: 1 });
        assert_eq!(Month::parse("9999-12").unwrap(), Month { year: 9999, month: 12 });
        for bad in [
            "",
            "2026",
            "2026-4",
            "2026-004",
            "26-04",
            "2026-00",
            "2026-13",
            "1999-12",
            "0000-01",
            "2026/04",
            "2026-04-01",
            " 2026-04",
            "2026-04 ",
            "２０２６-04",
            "abcd-ef",
            "+2026-04",
            "2026-1a",
        ] {
            let e = Month::parse(bad).unwrap_err();
            assert_eq!(e.code, crate::error::Code::ValidationFailed, "{bad:?}");
        }
    }

    #[test]
    fn a_month_is_its_utc_days() {
        let april = Month::parse("2026-04").unwrap();
        assert_eq!(april.start().to_rfc3339(), "2026-04-01T00:00:00+00:00");
        assert_eq!(april.end().to_rfc3339(), "2026-05-01T00:00:00+00:00");
        assert_eq!(april.days(), 30);
        assert_eq!(april.name(), "April 2026");
        assert_eq!(april.to_string(), "2026-04");
        let december = Month::parse("2025-12").unwrap();
        assert_eq!(december.next(), Month { year: 2026, month: 1 });
        assert_eq!(december.end().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(Month::parse("2024-02").unwrap().days(), 29);
        assert_eq!(Month::parse("9999-12").unwrap().end().year(), 10000);
        let instant = Utc.with_ymd_and_hms(2026, 4, 30, 23, 59, 59).unwrap();
        assert_eq!(Month::containing(instant), april);
        assert!(Month::parse("2026-03").unwrap() < april && april < Month::parse("2027-01").unwrap());
    }

    #[test]
    fn the_bound_refuses_rather_than_truncates() {
        assert!(check_bound(0).is_ok());
        assert!(check_bound(MAX_ENTRIES).is_ok());
        let e = check_bound(MAX_ENTRIES + 1).unwrap_err();
        assert_eq!(
            (e.code, e.detail.as_str()),
            (crate::error::Code::ValidationFailed, "too many entries for one statement; ask the branch")
        );
    }
}
