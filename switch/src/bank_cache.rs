//! The member banks' names and endpoints, kept in memory for a short while:
//! every payment needs both banks' names and the payee's endpoint, and every
//! request checks that its bank is a member. They change rarely (`add-bank`,
//! a bank registering a new endpoint, which this process applies at once),
//! so a figure at most `TTL` old is good enough; a bank not found is asked
//! again every time, so a bank added a moment ago is found.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use deadpool_postgres::Pool;

use crate::{
    db::{self, db_error},
    error::{SwitchError, SwitchResult},
};

const TTL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// Where its switch-only listener is; `None` before it registered one.
    pub interbank_addr: Option<String>,
}

#[derive(Default)]
pub struct BankCache {
    // Bounded by the consortium's banks: only members are kept.
    members: Mutex<HashMap<String, (Instant, Member)>>,
}

impl BankCache {
    /// The member `bank_id`, or 404.
    pub async fn get(&self, pool: &Pool, bank_id: &str) -> SwitchResult<Member> {
        if let Some((at, member)) = self.members.lock().expect("bank cache lock").get(bank_id) {
            if at.elapsed() < TTL {
                return Ok(member.clone());
            }
        }
        let client = db::client(pool).await?;
        let row = client
            .query_opt(
                &client
                    .prepare_cached("SELECT name, interbank_addr FROM banks WHERE id = $1")
                    .await
                    .map_err(db_error)?,
                &[&bank_id],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| SwitchError::not_found(format!("no bank {bank_id} in the consortium")))?;
        let member = Member {
            name: row.get(0),
            interbank_addr: row.get(1),
        };
        self.members
            .lock()
            .expect("bank cache lock")
            .insert(bank_id.to_string(), (Instant::now(), member.clone()));
        Ok(member)
    }

    /// Forgets `bank_id`, after this process changed it.
    pub fn forget(&self, bank_id: &str) {
        self.members.lock().expect("bank cache lock").remove(bank_id);
    }
}
