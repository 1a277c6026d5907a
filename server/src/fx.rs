//! Transfers between currencies (issue 18; the contract's "Multi-currency").
//! Branch admins set rates; a customer takes a quote that holds for
//! `fx.quote_ttl_s` and spends it once on `POST /v1/transfers` with its
//! `quote_id` (sql/functions/fx_transfer.sql: two transfers, one per currency,
//! through the branch's FX positions, so each currency still sums to zero).

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    access::Caller,
    admin::CURRENCIES,
    audit::{record_tx, AuditEntry},
    db::db_error,
    error::{ApiError, ApiResult, Code},
    money::{check_memo, store_answer, stored_answer, Amount, Moved},
    request::RequestMeta,
    state::AppState,
};

/// Rates one request sets (every ordered pair of the bank's currencies).
pub const MAX_RATES_PER_REQUEST: usize = 6;
/// A rate's decimals, and its bounds: a rate is a price, never zero, never absurd.
pub const RATE_DECIMALS: u32 = 8;
const MAX_RATE: i64 = 1_000_000;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateInput {
    #[schema(pattern = "^(INR|USD|EUR)$")]
    pub from: String,
    #[schema(pattern = "^(INR|USD|EUR)$")]
    pub to: String,
    /// A decimal string, at most 8 decimals, more than 0: how much `to` one unit of `from` buys.
    #[schema(pattern = r"^[0-9]{1,7}(\.[0-9]{1,8})?$")]
    pub rate: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRates {
    #[schema(min_items = 1, max_items = 6)]
    pub rates: Vec<RateInput>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Rate {
    pub from: String,
    pub to: String,
    pub rate: String,
    pub set_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RateList {
    pub rates: Vec<Rate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuote {
    pub from_account_id: Uuid,
    #[schema(pattern = "^[A-Za-z0-9]+$", min_length = 1, max_length = 34)]
    pub to_account_number: String,
    pub amount: Amount,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Quote {
    pub id: Uuid,
    pub rate: String,
    pub from_amount: String,
    pub from_currency: String,
    pub to_amount: String,
    pub to_currency: String,
    pub expires_at: DateTime<Utc>,
}

fn parse_rate(text: &str) -> ApiResult<Decimal> {
    let bad = || {
        ApiError::validation(format!(
            "rate {text:?} must be a decimal string above 0, at most {RATE_DECIMALS} decimals, below {MAX_RATE}"
        ))
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('.') && !digits(fraction)) || fraction.len() > RATE_DECIMALS as usize {
        return Err(bad());
    }
    let rate: Decimal = text.parse().map_err(|_| bad())?;
    if rate <= Decimal::ZERO || rate >= Decimal::from(MAX_RATE) {
        return Err(bad());
    }
    Ok(rate)
}

/// The target amount: half-even to the cent (every currency here has two decimals).
pub fn convert(amount: Decimal, rate: Decimal) -> Decimal {
    (amount * rate).round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

use crate::money::decimal_text as text;

pub async fn rates(client: &impl tokio_postgres::GenericClient) -> ApiResult<RateList> {
    let rows = client
        .query(
            "SELECT from_currency, to_currency, rate, set_at FROM fx_rates ORDER BY from_currency, to_currency",
            &[],
        )
        .await
        .map_err(db_error)?;
    Ok(RateList {
        rates: rows
            .iter()
            .map(|r| Rate {
                from: r.get(0),
                to: r.get(1),
                rate: text(r.get(2), RATE_DECIMALS),
                set_at: r.get(3),
            })
            .collect(),
    })
}

/// `PUT /v1/admin/fx/rates`: sets each given rate (others stay), audited with the old and new values.
pub async fn set_rates(state: &AppState, admin: &Caller, meta: &RequestMeta, request: SetRates) -> ApiResult<RateList> {
    if request.rates.is_empty() || request.rates.len() > MAX_RATES_PER_REQUEST {
        return Err(ApiError::validation(format!("rates holds 1 to {MAX_RATES_PER_REQUEST} rates")));
    }
    let mut parsed = Vec::with_capacity(request.rates.len());
    for input in &request.rates {
        if !CURRENCIES.contains(&input.from.as_str()) || !CURRENCIES.contains(&input.to.as_str()) {
            return Err(ApiError::validation("currencies are INR, USD or EUR"));
        }
        if input.from == input.to {
            return Err(ApiError::validation(format!("{} to {} needs no rate", input.from, input.to)));
        }
        if parsed
            .iter()
            .any(|(from, to, _): &(String, String, Decimal)| *from == input.from && *to == input.to)
        {
            return Err(ApiError::validation(format!("{} to {} is given twice", input.from, input.to)));
        }
        parsed.push((input.from.clone(), input.to.clone(), parse_rate(&input.rate)?));
    }
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            for (from, to, rate) in &parsed {
                let old: Option<Decimal> = tx
                    .query_opt(
                        "SELECT rate FROM fx_rates WHERE from_currency = $1 AND to_currency = $2 FOR UPDATE",
                        &[from, to],
                    )
                    .await
                    .map_err(db_error)?
                    .map(|r| r.get(0));
                tx.execute(
                    "INSERT INTO fx_rates (from_currency, to_currency, rate, set_by) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (from_currency, to_currency) DO UPDATE SET rate = $3, set_by = $4, set_at = now()",
                    &[from, to, rate, &admin.user_id],
                )
                .await
                .map_err(db_error)?;
                record_tx(
                    &tx,
                    &AuditEntry::success_by(
                        admin,
                        meta,
                        &client_addr,
                        "admin.fx_rate_set",
                        format!("fx:{from}/{to}"),
                        serde_json::json!({ "from": old.map(|r| text(r, RATE_DECIMALS)), "to": text(*rate, RATE_DECIMALS) }),
                    ),
                )
                .await?;
            }
            let rates = rates(&*tx).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(rates)
        })
        .await
}

/// `POST /v1/fx/quotes`: the rate now and what the amount buys, good for `fx.quote_ttl_s`.
pub async fn quote(state: &AppState, caller: &Caller, request: NewQuote) -> ApiResult<Quote> {
    let client = state.db.writer().await?;
    let from = client
        .query_opt(
            "SELECT a.currency, a.status FROM accounts a JOIN account_owners o ON o.account_id = a.id AND o.user_id = $2
              WHERE a.id = $1 AND a.kind NOT IN ('vault', 'settlement', 'fx')",
            &[&request.from_account_id, &caller.user_id],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::new(Code::NotFound, "no such account"))?;
    let (from_currency, status): (String, String) = (from.get(0), from.get(1));
    if status != "active" {
        return Err(ApiError::new(Code::AccountInactive, format!("the account is {status}")));
    }
    let to = client
        .query_opt(
            "SELECT id, currency FROM accounts WHERE number = $1 AND kind NOT IN ('vault', 'settlement', 'fx') AND status <> 'closed'",
            &[&request.to_account_number],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::new(Code::NotFound, format!("no account with number {}", request.to_account_number)))?;
    let (to_id, to_currency): (Uuid, String) = (to.get(0), to.get(1));
    if to_currency == from_currency {
        return Err(ApiError::new(
            Code::CurrencyMismatch,
            format!("both accounts are in {from_currency}: a plain transfer needs no quote"),
        ));
    }
    let rate: Decimal = client
        .query_opt(
            "SELECT rate FROM fx_rates WHERE from_currency = $1 AND to_currency = $2",
            &[&from_currency, &to_currency],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::new(Code::NotFound, format!("the bank has no {from_currency} to {to_currency} rate")))?
        .get(0);
    let to_amount = convert(request.amount.0, rate);
    if to_amount <= Decimal::ZERO {
        return Err(ApiError::validation(format!(
            "{} {from_currency} buys less than 0.01 {to_currency}",
            request.amount.0
        )));
    }
    let ttl_s = f64::from(state.config.fx.quote_ttl_s);
    let row = client
        .query_one(
            "INSERT INTO fx_quotes (user_id, from_account_id, to_account_id, from_amount, to_amount, rate, from_currency, to_currency, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9)) RETURNING id, expires_at",
            &[
                &caller.user_id,
                &request.from_account_id,
                &to_id,
                &request.amount.0,
                &to_amount,
                &rate,
                &from_currency,
                &to_currency,
                &ttl_s,
            ],
        )
        .await
        .map_err(db_error)?;
    Ok(Quote {
        id: row.get(0),
        rate: text(rate, RATE_DECIMALS),
        from_amount: text(request.amount.0, 2),
        from_currency,
        to_amount: text(to_amount, 2),
        to_currency,
        expires_at: row.get(1),
    })
}

/// `POST /v1/transfers` with a `quote_id`: once per quote, idempotent by key like every movement.
#[allow(clippy::too_many_arguments)]
pub async fn transfer(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    key: &str,
    request_hash: &[u8],
    quote_id: Uuid,
    from_account_id: Uuid,
    to_account_number: &str,
    amount: Amount,
    memo: &Option<String>,
) -> ApiResult<Moved> {
    let memo = check_memo(memo)?;
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            if let Some(replayed) = stored_answer(&*tx, caller.user_id, key, request_hash).await? {
                return Ok(replayed);
            }
            let body: serde_json::Value = tx
                .query_one(
                    "SELECT fx_transfer($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &caller.user_id,
                        &quote_id,
                        &from_account_id,
                        &to_account_number,
                        &amount.0,
                        &memo,
                        &meta.request_id,
                        &client_addr,
                    ],
                )
                .await
                .map_err(db_error)?
                .get(0);
            store_answer(&tx, caller.user_id, key, request_hash, 201, &body).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(Moved { status: 201, replayed: false, body })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_rounds_half_to_even_at_the_cent() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(convert(d("1.00"), d("0.025")), d("0.02"), "a tie goes to the even cent");
        assert_eq!(convert(d("1.00"), d("0.015")), d("0.02"));
        assert_eq!(convert(d("1.00"), d("0.0251")), d("0.03"));
        assert_eq!(convert(d("100.00"), d("0.01198765")), d("1.20"));
        assert_eq!(
            convert(d("1000000000000"), d("83.12345678")),
            d("83123456780000.00"),
            "no overflow at the largest amount"
        );
    }

    #[test]
    fn rates_are_positive_decimal_strings() {
        for good in ["83.12", "0.012", "1", "0.00000001", "999999.99999999"] {
            assert!(parse_rate(good).is_ok(), "{good}");
        }
        for bad in ["0", "0.00", "-1", "1.123456789", "1e3", "", ".5", "5.", "1000000", "abc"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
