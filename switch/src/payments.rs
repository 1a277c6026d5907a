//! The switch's side of a payment (docs/consortium.md, steps 3 and 5): the
//! state machine INITIATED -> COMMITTED | ABORTED and the liquidity it moves,
//! in the switch's database only (`http` and `driver` talk to the banks).
//!
//! Initiations, votes and acknowledgements are applied by `batch` (one
//! command alone here, many at once from the HTTP API's queue).
//!
//! Every function is one READ COMMITTED transaction with explicit row locks,
//! always taken in one order, so that no two can deadlock: the payment's row
//! first, then the bank rows it touches in id order. Every function is
//! idempotent by `e2e_id`: a repeat answers the first result and moves nothing.
//! Bank rows are locked FOR NO KEY UPDATE, never FOR UPDATE: inserting a
//! payment takes KEY SHARE on both its banks (the foreign keys), and a FOR
//! UPDATE on the payee's row would deadlock two banks paying each other.
//!
//! This version goes INITIATED -> COMMITTED on the payee's yes, in one
//! transaction; PREPARED (allowed by the table, written by nothing yet) is
//! for the networked version and is treated as undecided wherever it matters.

use chrono::{DateTime, Utc};
use flexibank_consortium::keys::{normalize_and_check, KeyType};
use rust_decimal::Decimal;

use crate::{
    batch::{self, Answer, Initiation},
    db::{self, db_error},
    error::{SwitchError, SwitchResult},
};

/// numeric(20,2): 18 digits before the point, 2 after.
const MAX_INTEGER_DIGITS: usize = 18;
const MAX_FRACTION_DIGITS: u32 = 2;
/// Longest prepare timeout a configuration may ask for: a payment's money is held at the payer meanwhile.
pub const MAX_PREPARE_TIMEOUT_MS: u64 = 60_000;
/// Payments one `abort_expired` call aborts at most (one transaction); call again while it returns this many.
pub const MAX_EXPIRED_PER_CALL: i64 = 1_000;
/// Payments one `unacknowledged` call lists at most.
pub const MAX_UNACKNOWLEDGED_PER_CALL: i64 = 1_000;
/// Why the switch aborted a payment whose payee it could not ask (no connection, an error answer).
/// Not in `protocol` yet: banks see it only as an abort's reason.
pub const REASON_PAYEE_UNAVAILABLE: &str = "payee_unavailable";
/// Longest memo, as at the banks.
const MAX_MEMO_CHARS: usize = 140;
/// Longest reason a payee bank may give for a no.
const MAX_REASON_CHARS: usize = 64;


pub use crate::batch::Command;
pub use flexibank_consortium::protocol::{Payment, PaymentRequest, Position, Status, CURRENCY, REASON_LIQUIDITY, REASON_PAYEE_REFUSED, REASON_TIMEOUT};

pub(crate) const COLUMNS: &str = "e2e_id, payer_bank, payee_bank, payee_key_type, payee_key_value, payee_account_number, amount, currency, status, reason,
    deadline, created_at, decided_at, payer_acked_at, payee_acked_at, memo";

pub(crate) fn payment(row: &tokio_postgres::Row) -> SwitchResult<Payment> {
    let key_type: String = row.get(3);
    let status: String = row.get(8);
    Ok(Payment {
        e2e_id: row.get(0),
        payer_bank: row.get(1),
        payee_bank: row.get(2),
        payee_key_type: KeyType::parse(&key_type).ok_or_else(|| SwitchError::internal(format!("stored key type {key_type:?}")))?,
        payee_key_value: row.get(4),
        payee_account_number: row.get(5),
        amount: row.get(6),
        currency: row.get(7),
        status: Status::parse(&status).ok_or_else(|| SwitchError::internal(format!("stored payment status {status:?}")))?,
        reason: row.get(9),
        deadline: row.get(10),
        created_at: row.get(11),
        decided_at: row.get(12),
        payer_acked_at: row.get(13),
        payee_acked_at: row.get(14),
        memo: row.get(15),
        payee_bank_name: None,
        payee_holder_name_masked: None,
    })
}

/// Whether `e2e_id` has the consortium's shape and names `payer_bank` as its issuer.
pub fn check_e2e_id(e2e_id: &str, payer_bank: &str) -> SwitchResult<()> {
    let bytes = e2e_id.as_bytes();
    let shaped = bytes.len() == 32 && bytes[0] == b'E' && bytes[1..21].iter().all(u8::is_ascii_digit) && bytes[21..].iter().all(u8::is_ascii_alphanumeric);
    if !shaped {
        return Err(SwitchError::validation("e2e_id is E, the payer bank's 8-digit id, 12 digits (yyyymmddHHMM) and 11 letters or digits"));
    }
    if &e2e_id[1..9] != payer_bank {
        return Err(SwitchError::validation(format!("e2e_id must carry the payer bank's id {payer_bank}")));
    }
    Ok(())
}

/// A money amount as `numeric(20,2)` holds it: positive, at most 2 decimals.
pub fn check_amount(amount: Decimal) -> Result<Decimal, String> {
    let amount = amount.normalize();
    if amount <= Decimal::ZERO {
        return Err("an amount is more than zero".into());
    }
    if amount.scale() > MAX_FRACTION_DIGITS {
        return Err(format!("an amount has at most {MAX_FRACTION_DIGITS} decimals"));
    }
    if amount.trunc().to_string().len() > MAX_INTEGER_DIGITS {
        return Err(format!("an amount has at most {MAX_INTEGER_DIGITS} digits before the point"));
    }
    Ok(amount)
}

/// A liquidity figure given on the command line: plain digits, at most 2
/// decimals, zero allowed ("1500000", "2500.50"); no sign, exponent or spaces.
pub fn parse_liquidity(text: &str) -> Result<Decimal, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let shaped = (1..=MAX_INTEGER_DIGITS).contains(&whole.len())
        && digits(whole)
        && digits(fraction)
        && fraction.len() <= MAX_FRACTION_DIGITS as usize
        && (!fraction.is_empty() || !text.ends_with('.'));
    if !shaped {
        return Err(format!("{text:?} is not an amount: digits, at most {MAX_INTEGER_DIGITS} before the point and {MAX_FRACTION_DIGITS} after"));
    }
    text.parse::<Decimal>().map_err(|e| format!("{text:?}: {e}"))
}

/// Step 3: the payer bank's request. Resolves the key (404 unknown; 409
/// `same_bank` when it is the payer's own), reserves the payer's liquidity
/// and records INITIATED with `deadline = now + prepare_timeout_ms`. Without
/// the liquidity the payment is recorded ABORTED `liquidity_exhausted`,
/// reserving nothing, and that is the answer (Ok). A repeat answers the
/// stored payment; the same `e2e_id` for anything else is 409 `e2e_id_reused`.
pub async fn initiate(pool: &deadpool_postgres::Pool, prepare_timeout_ms: u64, payer_bank: &str, request: &PaymentRequest) -> SwitchResult<Payment> {
    Ok(initiate_once(pool, prepare_timeout_ms, payer_bank, request).await?.0)
}

/// `initiate`, also telling whether this call recorded the payment (true) or
/// found it stored (false): only the call that recorded it drives it.
pub async fn initiate_once(pool: &deadpool_postgres::Pool, prepare_timeout_ms: u64, payer_bank: &str, request: &PaymentRequest) -> SwitchResult<(Payment, bool)> {
    let (mut payment, recorded_now) = initiated(batch::apply_one(pool, initiate_command(prepare_timeout_ms, payer_bank, request)?).await?)?;
    // The same answer first time and on a repeat: names are for the payer's API (`with_payee_names`).
    payment.payee_holder_name_masked = None;
    Ok((payment, recorded_now))
}

/// The checked command of an initiation (400 for what no payment may be).
pub fn initiate_command(prepare_timeout_ms: u64, payer_bank: &str, request: &PaymentRequest) -> SwitchResult<Command> {
    check_e2e_id(&request.e2e_id, payer_bank)?;
    let amount = check_amount(request.amount).map_err(SwitchError::validation)?;
    if request.currency != CURRENCY {
        return Err(SwitchError::validation(format!("the consortium settles {CURRENCY} only")));
    }
    let key_value = normalize_and_check(request.key_type, &request.key_value).map_err(SwitchError::validation)?;
    if request.memo.chars().count() > MAX_MEMO_CHARS || request.memo.chars().any(char::is_control) {
        return Err(SwitchError::validation(format!("a memo is at most {MAX_MEMO_CHARS} characters, without control characters")));
    }
    let timeout_ms = i64::try_from(prepare_timeout_ms.clamp(1, MAX_PREPARE_TIMEOUT_MS)).expect("bounded above");
    Ok(Command::Initiate(Initiation {
        payer_bank: payer_bank.to_string(),
        e2e_id: request.e2e_id.clone(),
        amount,
        currency: request.currency.clone(),
        key_type: request.key_type.as_str().to_string(),
        key_value,
        memo: request.memo.clone(),
        timeout_ms,
    }))
}

/// An initiation's answer.
pub fn initiated(answer: Answer) -> SwitchResult<(Payment, bool)> {
    match answer {
        Answer::Initiated(payment, recorded_now) => Ok((payment, recorded_now)),
        Answer::Payment(p) => Err(SwitchError::internal(format!("an initiation of {} answered as a payment", p.e2e_id))),
    }
}

/// A vote's or an acknowledgement's answer.
pub fn answered(answer: Answer) -> SwitchResult<Payment> {
    match answer {
        Answer::Payment(payment) => Ok(payment),
        Answer::Initiated(p, _) => Err(SwitchError::internal(format!("a vote on {} answered as an initiation", p.e2e_id))),
    }
}

/// Step 5: the payee bank's vote, and the decision in the same transaction.
/// A yes before the deadline commits (the positions move, the reservation
/// goes); a no, or any vote after the deadline, aborts (the reservation
/// goes). A vote on a decided payment answers the decision unchanged. Only
/// the payment's payee may vote (anyone else: 404, revealing nothing).
pub async fn record_vote(pool: &deadpool_postgres::Pool, e2e_id: &str, payee_bank: &str, yes: bool, reason: Option<&str>) -> SwitchResult<Payment> {
    answered(batch::apply_one(pool, vote_command(e2e_id, payee_bank, yes, reason)?).await?)
}

/// The checked command of a vote (400 for a reason that is not one).
pub fn vote_command(e2e_id: &str, payee_bank: &str, yes: bool, reason: Option<&str>) -> SwitchResult<Command> {
    let no_reason = reason.unwrap_or(REASON_PAYEE_REFUSED);
    if !is_reason(no_reason) {
        return Err(SwitchError::validation(format!("a reason is 1 to {MAX_REASON_CHARS} lower-case letters and underscores")));
    }
    Ok(Command::Vote { e2e_id: e2e_id.to_string(), payee_bank: payee_bank.to_string(), yes, no_reason: no_reason.to_string() })
}

/// Whether `reason` may be stored as an abort's reason: 1 to 64 lower-case letters and underscores.
pub fn is_reason(reason: &str) -> bool {
    (1..=MAX_REASON_CHARS).contains(&reason.len()) && reason.starts_with(|c: char| c.is_ascii_lowercase()) && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// How many columns `COLUMNS` lists (the index of anything selected after them).
pub(crate) const COLUMN_COUNT: usize = 16;

#[cfg(test)]
mod column_tests {
    #[test]
    fn column_count_counts_columns() {
        assert_eq!(super::COLUMNS.split(',').count(), super::COLUMN_COUNT);
    }
}

/// Aborts (`timeout`) undecided payments whose deadline is at or before
/// `now`, releasing their reservations; at most `MAX_EXPIRED_PER_CALL` per
/// call. Rows a vote holds are skipped: that vote decides them itself.
pub async fn abort_expired(pool: &deadpool_postgres::Pool, now: DateTime<Utc>) -> SwitchResult<u64> {
    let mut client = db::client(pool).await?;
    let tx = client.transaction().await.map_err(db_error)?;
    let released = tx
        .query(
            "WITH expired AS (
                 SELECT e2e_id FROM payments WHERE status IN ('initiated', 'prepared') AND deadline <= $1
                 ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED
             ), aborted AS (
                 UPDATE payments p SET status = 'aborted', reason = $3, decided_at = now() FROM expired e WHERE p.e2e_id = e.e2e_id
                 RETURNING p.payer_bank, p.amount
             )
             SELECT payer_bank, sum(amount), count(*) FROM aborted GROUP BY payer_bank ORDER BY payer_bank",
            &[&now, &MAX_EXPIRED_PER_CALL, &REASON_TIMEOUT],
        )
        .await
        .map_err(db_error)?;
    let mut aborted = 0;
    // In id order, like every other bank lock here.
    for row in &released {
        let (bank, amount, count): (String, Decimal, i64) = (row.get(0), row.get(1), row.get(2));
        tx.execute("UPDATE banks SET pending_out = pending_out - $2 WHERE id = $1", &[&bank, &amount]).await.map_err(db_error)?;
        aborted += u64::try_from(count).unwrap_or(0);
    }
    tx.commit().await.map_err(db_error)?;
    if aborted > 0 {
        tracing::info!(aborted, "payments aborted at their deadline");
        count_decisions(Status::Aborted, aborted);
    }
    Ok(aborted)
}

/// What a bank asks when phase two is late: the payment as the switch holds
/// it (its status says decided or not). Only its payer and payee may ask;
/// anyone else gets 404, as for a payment that does not exist.
pub async fn decision(pool: &deadpool_postgres::Pool, bank: &str, e2e_id: &str) -> SwitchResult<Payment> {
    let client = db::client(pool).await?;
    let row = client
        .query_opt(&format!("SELECT {COLUMNS} FROM payments WHERE e2e_id = $1 AND $2 IN (payer_bank, payee_bank)"), &[&e2e_id, &bank])
        .await
        .map_err(db_error)?
        .ok_or_else(|| SwitchError::not_found(format!("bank {bank} has no payment {e2e_id}")))?;
    payment(&row)
}

/// Records that `bank` (payer or payee) has applied the decision; a repeat
/// keeps the first time. 404 for a bank not in the payment, 409
/// `not_decided` before there is a decision.
pub async fn acknowledge(pool: &deadpool_postgres::Pool, bank: &str, e2e_id: &str) -> SwitchResult<Payment> {
    answered(batch::apply_one(pool, Command::Ack { bank: bank.to_string(), e2e_id: e2e_id.to_string() }).await?)
}

/// Decided payments some bank has not acknowledged, oldest decision first,
/// at most `MAX_UNACKNOWLEDGED_PER_CALL` (for the re-sender of phase two).
pub async fn unacknowledged(pool: &deadpool_postgres::Pool) -> SwitchResult<Vec<Payment>> {
    let client = db::client(pool).await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM payments WHERE decided_at IS NOT NULL AND (payer_acked_at IS NULL OR payee_acked_at IS NULL)
                 ORDER BY decided_at, e2e_id LIMIT $1"
            ),
            &[&MAX_UNACKNOWLEDGED_PER_CALL],
        )
        .await
        .map_err(db_error)?;
    rows.iter().map(payment).collect()
}

/// Aborts the payment with `reason` unless it is decided already (then it
/// answers the decision unchanged): the payee could not be asked, or did not
/// answer in time. The payment's row, then its payer's, like `abort_expired`.
pub async fn abort_undecided(pool: &deadpool_postgres::Pool, e2e_id: &str, reason: &str) -> SwitchResult<Payment> {
    if !is_reason(reason) {
        return Err(SwitchError::internal(format!("abort reason {reason:?}")));
    }
    let mut client = db::client(pool).await?;
    let tx = client.transaction().await.map_err(db_error)?;
    let row = tx
        .query_opt(&format!("SELECT {COLUMNS} FROM payments WHERE e2e_id = $1 FOR UPDATE"), &[&e2e_id])
        .await
        .map_err(db_error)?
        .ok_or_else(|| SwitchError::not_found(format!("no payment {e2e_id}")))?;
    let current = payment(&row)?;
    if current.status.is_decided() {
        return Ok(current);
    }
    tx.execute("UPDATE banks SET pending_out = pending_out - $2 WHERE id = $1", &[&current.payer_bank, &current.amount]).await.map_err(db_error)?;
    let row = tx
        .query_one(
            &format!("UPDATE payments SET status = 'aborted', reason = $2, decided_at = now() WHERE e2e_id = $1 RETURNING {COLUMNS}"),
            &[&e2e_id, &reason],
        )
        .await
        .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    tracing::info!(e2e_id, reason, "payment aborted undecided");
    count_decisions(Status::Aborted, 1);
    payment(&row)
}

/// Any payment by id, for the operator.
pub async fn get(pool: &deadpool_postgres::Pool, e2e_id: &str) -> SwitchResult<Payment> {
    let client = db::client(pool).await?;
    let row = client
        .query_opt(&format!("SELECT {COLUMNS} FROM payments WHERE e2e_id = $1"), &[&e2e_id])
        .await
        .map_err(db_error)?
        .ok_or_else(|| SwitchError::not_found(format!("no payment {e2e_id}")))?;
    payment(&row)
}

/// A decision a bank has not acknowledged, and where to push it.
#[derive(Debug, Clone)]
pub struct DueDecision {
    pub e2e_id: String,
    pub status: Status,
    pub reason: Option<String>,
    pub bank_id: String,
    pub interbank_addr: String,
}

/// Decisions decided at least `resend_after_ms` ago that a bank with an
/// endpoint (payer or payee) has not acknowledged: one row per (payment,
/// bank), oldest decision first, at most `limit`.
pub async fn due_decisions(pool: &deadpool_postgres::Pool, resend_after_ms: u64, limit: i64) -> SwitchResult<Vec<DueDecision>> {
    let client = db::client(pool).await?;
    let after_ms = i64::try_from(resend_after_ms).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT p.e2e_id, p.status, p.reason, b.id, b.interbank_addr FROM payments p
             JOIN banks b ON (b.id = p.payer_bank AND p.payer_acked_at IS NULL) OR (b.id = p.payee_bank AND p.payee_acked_at IS NULL)
             WHERE p.decided_at IS NOT NULL AND (p.payer_acked_at IS NULL OR p.payee_acked_at IS NULL)
               AND p.decided_at <= now() - $1::bigint * interval '1 millisecond' AND b.interbank_addr IS NOT NULL
             ORDER BY p.decided_at, p.e2e_id, b.id LIMIT $2",
            &[&after_ms, &limit.clamp(1, MAX_UNACKNOWLEDGED_PER_CALL)],
        )
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let status: String = r.get(1);
            Ok(DueDecision {
                e2e_id: r.get(0),
                status: Status::parse(&status).ok_or_else(|| SwitchError::internal(format!("stored payment status {status:?}")))?,
                reason: r.get(2),
                bank_id: r.get(3),
                interbank_addr: r.get(4),
            })
        })
        .collect()
}

/// Payments decided, `count` of them with `status`, once each, after the commit that decided them.
pub fn count_decisions(status: Status, count: u64) {
    metrics::counter!("flexibank_switch_decisions_total", "status" => status.as_str()).increment(count);
}

/// Per bank, its payments (as payer or payee) that are undecided or that it has not acknowledged.
/// Read through the partial indexes of open payments (`status` undecided ⇔ `decided_at` null, a
/// CHECK of the table), not the whole table: every `/metrics` scrape asks.
pub async fn open_counts(pool: &deadpool_postgres::Pool) -> SwitchResult<Vec<(String, i64)>> {
    let client = db::client(pool).await?;
    let rows = client
        .query(
            "WITH undecided AS (
                 SELECT payer_bank, payee_bank FROM payments WHERE status IN ('initiated', 'prepared')
             ), unacknowledged AS (
                 SELECT payer_bank, payee_bank, payer_acked_at IS NULL AS payer_owes, payee_acked_at IS NULL AS payee_owes
                   FROM payments WHERE decided_at IS NOT NULL AND (payer_acked_at IS NULL OR payee_acked_at IS NULL)
             ), open AS (
                 SELECT payer_bank AS bank FROM undecided
                 UNION ALL SELECT payee_bank FROM undecided
                 UNION ALL SELECT payer_bank FROM unacknowledged WHERE payer_owes
                 UNION ALL SELECT payee_bank FROM unacknowledged WHERE payee_owes
             )
             SELECT b.id, count(o.bank) FROM banks b LEFT JOIN open o ON o.bank = b.id GROUP BY b.id ORDER BY b.id",
            &[],
        )
        .await
        .map_err(db_error)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// One bank's liquidity; 404 for no such bank.
pub async fn position(pool: &deadpool_postgres::Pool, bank_id: &str) -> SwitchResult<Position> {
    let client = db::client(pool).await?;
    let row = client
        .query_opt("SELECT id, prefunded, position, net_debit_cap, pending_out FROM banks WHERE id = $1", &[&bank_id])
        .await
        .map_err(db_error)?
        .ok_or_else(|| SwitchError::not_found(format!("no bank {bank_id} in the consortium")))?;
    Ok(Position { bank_id: row.get(0), prefunded: row.get(1), position: row.get(2), net_debit_cap: row.get(3), pending_out: row.get(4) })
}

/// Every bank's liquidity, by id. Banks are few (registered by hand).
pub async fn positions(pool: &deadpool_postgres::Pool) -> SwitchResult<Vec<Position>> {
    let client = db::client(pool).await?;
    let rows = client.query("SELECT id, prefunded, position, net_debit_cap, pending_out FROM banks ORDER BY id", &[]).await.map_err(db_error)?;
    Ok(rows.iter().map(|r| Position { bank_id: r.get(0), prefunded: r.get(1), position: r.get(2), net_debit_cap: r.get(3), pending_out: r.get(4) }).collect())
}

/// Sets a bank's prefunded amount and net debit cap (`flexibank-switch
/// fund`); returns the position before and after. Refused when the bank's
/// reservations would no longer be covered (the table refuses it too).
pub async fn fund(pool: &deadpool_postgres::Pool, bank_id: &str, prefunded: Decimal, net_debit_cap: Decimal) -> anyhow::Result<(Position, Position)> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let columns = "id, prefunded, position, net_debit_cap, pending_out";
    let to_position =
        |r: &tokio_postgres::Row| Position { bank_id: r.get(0), prefunded: r.get(1), position: r.get(2), net_debit_cap: r.get(3), pending_out: r.get(4) };
    let row = tx.query_opt(&format!("SELECT {columns} FROM banks WHERE id = $1 FOR NO KEY UPDATE"), &[&bank_id]).await?;
    let Some(row) = row else { anyhow::bail!("no bank {bank_id} in the consortium") };
    let before = to_position(&row);
    let after = Position { prefunded, net_debit_cap, ..before.clone() };
    anyhow::ensure!(
        after.available() >= Decimal::ZERO,
        "bank {bank_id} has {} reserved and a position of {}: prefunded {prefunded} with cap {net_debit_cap} would not cover them",
        before.pending_out,
        before.position
    );
    let row = tx
        .query_one(&format!("UPDATE banks SET prefunded = $2, net_debit_cap = $3 WHERE id = $1 RETURNING {columns}"), &[&bank_id, &prefunded, &net_debit_cap])
        .await?;
    tx.commit().await?;
    Ok((before, to_position(&row)))
}

/// The invariants the whole table set must keep (the tests check them after
/// every step; an operator may run them too). Returns the violations found, none when all hold.
pub async fn check_invariants(client: &tokio_postgres::Client) -> Result<Vec<String>, tokio_postgres::Error> {
    let mut violations = Vec::new();
    // One snapshot for every check below, so that concurrent payments cannot make them disagree.
    client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
    let checks: [(&str, &str); 5] = [
        ("positions sum to zero", "SELECT 'sum ' || sum(position) FROM banks HAVING sum(position) <> 0"),
        (
            "pending_out is the sum of the bank's undecided outgoing payments",
            "SELECT b.id || ': pending_out ' || b.pending_out || ', undecided ' || coalesce(u.total, 0) FROM banks b
             LEFT JOIN (SELECT payer_bank, sum(amount) AS total FROM payments WHERE status IN ('initiated', 'prepared') GROUP BY payer_bank) u ON u.payer_bank = b.id
             WHERE b.pending_out <> coalesce(u.total, 0)",
        ),
        (
            "a position is the net of the bank's committed payments",
            "SELECT b.id || ': position ' || b.position || ', committed net ' || coalesce(c.net, 0) FROM banks b
             LEFT JOIN (SELECT bank, sum(delta) AS net FROM (
                 SELECT payer_bank AS bank, -amount AS delta FROM payments WHERE status = 'committed'
                 UNION ALL SELECT payee_bank, amount FROM payments WHERE status = 'committed') flows GROUP BY bank) c ON c.bank = b.id
             WHERE b.position <> coalesce(c.net, 0)",
        ),
        (
            "decided exactly when committed or aborted",
            "SELECT e2e_id || ' ' || status FROM payments WHERE (status IN ('committed', 'aborted')) <> (decided_at IS NOT NULL) LIMIT 10",
        ),
        ("liquidity covers reservations", "SELECT id || ': available ' || (prefunded + position + net_debit_cap - pending_out) FROM banks WHERE prefunded + position + net_debit_cap < pending_out"),
    ];
    let mut outcome = Ok(());
    for (what, sql) in checks {
        match client.query(sql, &[]).await {
            Ok(rows) => violations.extend(rows.iter().map(|r| format!("{what}: {}", r.get::<_, String>(0)))),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    client.batch_execute("ROLLBACK").await?;
    outcome.map(|()| violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2e_ids_name_their_payer() {
        let id = "E000000012026113002501a2b3c4d5e6";
        assert!(check_e2e_id(id, "00000001").is_ok());
        assert!(check_e2e_id(id, "00000002").is_err(), "another bank's id space");
        for bad in
            ["", "e000000012026113002501a2b3c4d5e6", "E000000012026113002501a2b3c4d5e", "E00000001202611300250-a2b3c4d5e6", "E0000000120261130025é1a2b3c4d5e"]
        {
            assert!(check_e2e_id(bad, "00000001").is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_fit_numeric_20_2() {
        assert_eq!(check_amount("10.50".parse().unwrap()), Ok("10.5".parse().unwrap()));
        assert_eq!(check_amount("10.500".parse().unwrap()), Ok("10.5".parse().unwrap()), "trailing zeros are no extra precision");
        for bad in ["0", "-1", "0.001", "1000000000000000000"] {
            assert!(check_amount(bad.parse().unwrap()).is_err(), "{bad}");
        }
        assert!(check_amount("999999999999999999.99".parse().unwrap()).is_ok());
    }

    #[test]
    fn liquidity_figures_are_plain_decimals() {
        assert_eq!(parse_liquidity("0"), Ok(Decimal::ZERO));
        assert_eq!(parse_liquidity("2500.50"), Ok("2500.50".parse().unwrap()));
        for bad in ["", "-1", "+1", "1e5", "1.", ".5", "1.005", " 1", "1,000", "1234567890123456789", "NaN"] {
            assert!(parse_liquidity(bad).is_err(), "{bad}");
        }
    }
}

/// The payer's customer is shown whom they paid: the payee bank's name and
/// the key holder's masked name (masks only; the payer bank gets nothing more
/// than a look-up would show). The holder is read from the directory now: a
/// key deleted since shows no name.
pub async fn with_payee_names(pool: &deadpool_postgres::Pool, mut payment: Payment) -> SwitchResult<Payment> {
    let client = db::client(pool).await?;
    let row = client
        .query_one(
            "SELECT (SELECT name FROM banks WHERE id = $1),
                    (SELECT holder_name FROM keys WHERE type = $2 AND value = $3)",
            &[&payment.payee_bank, &payment.payee_key_type.as_str(), &payment.payee_key_value],
        )
        .await
        .map_err(db_error)?;
    payment.payee_bank_name = row.get(0);
    payment.payee_holder_name_masked = row.get::<_, Option<String>>(1).map(|name| flexibank_consortium::keys::mask_name(&name));
    Ok(payment)
}
