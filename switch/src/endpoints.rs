//! Where the switch reaches each bank: the `host:port` of its switch-only
//! listener, registered by the bank itself at start-up. The address is only
//! a route: `calls` still requires the listener's certificate to name the
//! bank, so a wrong or hostile address can fail calls but never receive them.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{
    db::{self, db_error},
    error::{SwitchError, SwitchResult},
};

/// The column's bound (V3__endpoints.sql).
pub const MAX_ADDR_CHARS: usize = 255;
const MAX_DNS_NAME_CHARS: usize = 253;
const MAX_LABEL_CHARS: usize = 63;

/// Checks `host:port`: a port 1-65535, and a host that is a DNS name, an
/// IPv4 address or a bracketed IPv6 address (`[::1]:8443`).
pub fn check_addr(addr: &str) -> SwitchResult<()> {
    let shape = "interbank_addr is host:port (a DNS name, an IPv4 address or [IPv6], and a port 1-65535)";
    if addr.len() > MAX_ADDR_CHARS {
        return Err(SwitchError::validation(format!("interbank_addr has at most {MAX_ADDR_CHARS} characters")));
    }
    let Some((host, port)) = addr.rsplit_once(':') else { return Err(SwitchError::validation(shape)) };
    let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => host.parse::<Ipv4Addr>().is_ok() || is_dns_name(host),
    };
    if port_ok && host_ok {
        Ok(())
    } else {
        Err(SwitchError::validation(shape))
    }
}

/// Letters, digits and inner hyphens per label; not all digits at the top
/// (that would be a malformed IPv4 address, not a name).
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        (1..=MAX_LABEL_CHARS).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-') && !l.ends_with('-')
    };
    (1..=MAX_DNS_NAME_CHARS).contains(&host.len())
        && host.split('.').all(label_ok)
        && !host.rsplit('.').next().is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit()))
}

/// Stores the bank's address (replacing any earlier one).
pub async fn register(pool: &deadpool_postgres::Pool, bank_id: &str, addr: &str) -> SwitchResult<()> {
    check_addr(addr)?;
    let client = db::client(pool).await?;
    let updated = client.execute("UPDATE banks SET interbank_addr = $2 WHERE id = $1", &[&bank_id, &addr]).await.map_err(db_error)?;
    if updated != 1 {
        return Err(SwitchError::not_found(format!("no bank {bank_id} in the consortium")));
    }
    Ok(())
}

/// The bank's address, `None` when it never registered one.
pub async fn get(pool: &deadpool_postgres::Pool, bank_id: &str) -> SwitchResult<Option<String>> {
    let client = db::client(pool).await?;
    let row = client.query_opt("SELECT interbank_addr FROM banks WHERE id = $1", &[&bank_id]).await.map_err(db_error)?;
    Ok(row.and_then(|r| r.get(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_and_port() {
        for good in ["127.0.0.1:9444", "[::1]:9444", "bank-a.example:443", "localhost:1", "b00000001.banks.flexibank.internal:65535"] {
            assert!(check_addr(good).is_ok(), "{good}");
        }
        let long = format!("{}.example:443", "a".repeat(250));
        for bad in
            ["", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "host:-1", ":443", "::1:443", "[::1]", "ho st:1", "-a.example:1", "1.2.3:1", "a..b:1", &long]
        {
            assert!(check_addr(bad).is_err(), "{bad}");
        }
    }
}
