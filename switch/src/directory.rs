//! The key directory: which account, at which bank, a key (phone, email,
//! national id, random) belongs to. One key belongs to one account in the
//! whole consortium (the primary key of `keys`), an account holds at most
//! `AccountKind::max_keys` keys (counted under its `key_accounts` row lock),
//! and a bank changes only its own keys: every function takes the bank the
//! caller's certificate was checked against.

use flexibank_consortium::keys::{
    mask_account_number, mask_name, new_random_key, normalize_and_check, AccountKind, DirectoryEntry, KeyType, RegisterKey, StoredKey,
    MAX_ACCOUNT_NUMBER_CHARS, MAX_HOLDER_NAME_CHARS,
};

use crate::{
    db::{self, db_error},
    error::{Code, SwitchError, SwitchResult},
};

/// Whether a key was stored now or was there already (for the same account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    Existing,
}

/// Registers a bank (`add-bank`): true when added; false when it is a member
/// under that name already (nothing changes, so running it again is safe); an
/// error when the id is taken under another name (nothing changes either).
pub async fn add_bank(client: &tokio_postgres::Client, bank_id: &str, name: &str) -> anyhow::Result<bool> {
    anyhow::ensure!(flexibank_consortium::pki::is_bank_id(bank_id), "a bank id is 8 digits, not {bank_id:?}");
    let name = name.trim();
    anyhow::ensure!((1..=140).contains(&name.chars().count()), "a bank's name has 1 to 140 characters");
    let inserted = client.execute("INSERT INTO banks (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", &[&bank_id, &name]).await?;
    if inserted == 1 {
        return Ok(true);
    }
    let registered: String = client.query_one("SELECT name FROM banks WHERE id = $1", &[&bank_id]).await?.get(0);
    anyhow::ensure!(registered == name, "bank {bank_id} is a member already as {registered:?}, not {name:?}; nothing changed");
    Ok(false)
}

fn check_text(field: &str, value: &str, max_chars: usize) -> SwitchResult<()> {
    let chars = value.chars().count();
    if chars == 0 || chars > max_chars || value.trim() != value || value.chars().any(char::is_control) {
        return Err(SwitchError::validation(format!("{field} has 1 to {max_chars} characters, no control characters and no surrounding spaces")));
    }
    Ok(())
}

/// The key's stored value: checked and normalized, or made (a `random` key sent without one).
pub fn key_value(key_type: KeyType, value: Option<&str>) -> SwitchResult<String> {
    match (key_type, value) {
        (KeyType::Random, None) => Ok(new_random_key()),
        (_, None) => Err(SwitchError::validation(format!("a {} key needs a value", key_type.as_str()))),
        (_, Some(value)) => normalize_and_check(key_type, value).map_err(SwitchError::validation),
    }
}

/// Stores `request`'s key for `bank_id`. The same key again for the same
/// account is `Existing` (idempotent); held by any other account, at any
/// bank, it is 409 `key_taken`; an account at its limit gets 409 `key_limit_reached`.
pub async fn register(pool: &deadpool_postgres::Pool, bank_id: &str, request: &RegisterKey) -> SwitchResult<(StoredKey, Registered)> {
    check_text("account_number", &request.account_number, MAX_ACCOUNT_NUMBER_CHARS)?;
    check_text("holder_name", &request.holder_name, MAX_HOLDER_NAME_CHARS)?;
    let value = key_value(request.key_type, request.value.as_deref())?;
    let key_type = request.key_type.as_str();
    let mut client = db::client(pool).await?;
    // READ COMMITTED: each statement below sees what committed before it, so
    // the re-read after a lost insert race finds the winner's row.
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute("INSERT INTO key_accounts (bank_id, account_number) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&bank_id, &request.account_number])
        .await
        .map_err(db_error)?;
    tx.execute("SELECT 1 FROM key_accounts WHERE bank_id = $1 AND account_number = $2 FOR UPDATE", &[&bank_id, &request.account_number])
        .await
        .map_err(db_error)?;
    let holder = "SELECT bank_id, account_number, account_kind, holder_name FROM keys WHERE type = $1 AND value = $2";
    if let Some(row) = tx.query_opt(holder, &[&key_type, &value]).await.map_err(db_error)? {
        return existing(row, request.key_type, value, bank_id, &request.account_number);
    }
    let held: i64 = tx
        .query_one("SELECT count(*) FROM keys WHERE bank_id = $1 AND account_number = $2", &[&bank_id, &request.account_number])
        .await
        .map_err(db_error)?
        .get(0);
    let max_keys = request.account_kind.max_keys();
    if held >= max_keys {
        return Err(SwitchError::new(
            Code::KeyLimitReached,
            format!("account {} holds {held} keys, the most a {} account may hold", request.account_number, request.account_kind.as_str()),
        ));
    }
    // ON CONFLICT: a concurrent registration of this key for another account
    // committed between the check above and here.
    let inserted = tx
        .execute(
            "INSERT INTO keys (type, value, bank_id, account_number, account_kind, holder_name)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (type, value) DO NOTHING",
            &[&key_type, &value, &bank_id, &request.account_number, &request.account_kind.as_str(), &request.holder_name],
        )
        .await
        .map_err(db_error)?;
    if inserted == 0 {
        let row = tx.query_opt(holder, &[&key_type, &value]).await.map_err(db_error)?;
        let Some(row) = row else {
            return Err(SwitchError::new(Code::Unavailable, "the key changed hands while it was registered; retry").with_retry_after(1));
        };
        return existing(row, request.key_type, value, bank_id, &request.account_number);
    }
    tx.commit().await.map_err(db_error)?;
    let stored = StoredKey {
        key_type: request.key_type,
        value,
        bank_id: bank_id.to_string(),
        account_number: request.account_number.clone(),
        account_kind: request.account_kind,
        holder_name: request.holder_name.clone(),
    };
    Ok((stored, Registered::Created))
}

/// A key that exists already: idempotent for its own account, else `key_taken`
/// (without saying where: that is what a look-up, with its limits, is for).
fn existing(row: tokio_postgres::Row, key_type: KeyType, value: String, bank_id: &str, account_number: &str) -> SwitchResult<(StoredKey, Registered)> {
    let (holder_bank, holder_account): (String, String) = (row.get(0), row.get(1));
    if holder_bank != bank_id || holder_account != account_number {
        return Err(SwitchError::new(Code::KeyTaken, format!("this {} key belongs to another account", key_type.as_str())));
    }
    let kind: String = row.get(2);
    let stored = StoredKey {
        key_type,
        value,
        bank_id: holder_bank,
        account_number: holder_account,
        account_kind: AccountKind::parse(&kind).ok_or_else(|| SwitchError::internal(format!("stored account kind {kind:?}")))?,
        holder_name: row.get(3),
    };
    Ok((stored, Registered::Existing))
}

/// Deletes `bank_id`'s key; 404 when that bank does not hold it (whoever else does).
pub async fn delete(pool: &deadpool_postgres::Pool, bank_id: &str, key_type: KeyType, value: &str) -> SwitchResult<()> {
    let value = normalize_and_check(key_type, value).map_err(SwitchError::validation)?;
    let client = db::client(pool).await?;
    let deleted =
        client.execute("DELETE FROM keys WHERE type = $1 AND value = $2 AND bank_id = $3", &[&key_type.as_str(), &value, &bank_id]).await.map_err(db_error)?;
    if deleted == 0 {
        return Err(SwitchError::not_found(format!("bank {bank_id} holds no such {} key", key_type.as_str())));
    }
    Ok(())
}

/// Where a key lives, masked; 404 for an unknown key.
pub async fn lookup(pool: &deadpool_postgres::Pool, key_type: KeyType, value: &str) -> SwitchResult<DirectoryEntry> {
    let value = normalize_and_check(key_type, value).map_err(SwitchError::validation)?;
    let client = db::client(pool).await?;
    let row = client
        .query_opt(
            "SELECT k.bank_id, b.name, k.holder_name, k.account_number FROM keys k JOIN banks b ON b.id = k.bank_id
             WHERE k.type = $1 AND k.value = $2",
            &[&key_type.as_str(), &value],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| SwitchError::not_found("no account holds this key"))?;
    Ok(DirectoryEntry {
        bank_id: row.get(0),
        bank_name: row.get(1),
        holder_name_masked: mask_name(row.get(2)),
        account_number_masked: mask_account_number(row.get(3)),
    })
}
