//! The ledger's invariants, as SQL any superuser (or the app role) can run:
//! the tests and the benchmark check them after every concurrent run.

/// Ok when, per currency, all balances sum to zero; no customer account is
/// negative; every balance equals the sum of its entries; and every transfer
/// has exactly two entries that cancel out. Otherwise, which one broke.
pub async fn check_invariants(db: &tokio_postgres::Client) -> anyhow::Result<()> {
    let unbalanced = db
        .query("SELECT currency, sum(balance)::text FROM accounts GROUP BY currency HAVING sum(balance) <> 0", &[])
        .await?;
    if let Some(row) = unbalanced.first() {
        anyhow::bail!("currency {} sums to {}, not zero", row.get::<_, String>(0), row.get::<_, String>(1));
    }
    let negative: i64 = db
        .query_one("SELECT count(*) FROM accounts WHERE kind NOT IN ('vault', 'settlement', 'fx') AND balance < 0", &[])
        .await?
        .get(0);
    anyhow::ensure!(negative == 0, "{negative} customer accounts are below zero");
    let drifted: i64 = db
        .query_one(
            "SELECT count(*) FROM accounts a
               LEFT JOIN (SELECT account_id, sum(amount) AS total FROM entries GROUP BY account_id) e ON e.account_id = a.id
              WHERE a.balance <> coalesce(e.total, 0)",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(drifted == 0, "{drifted} accounts' balances differ from the sum of their entries");
    let misheld: i64 = db
        .query_one(
            "SELECT count(*) FROM accounts a
               LEFT JOIN (SELECT account_id, sum(amount) AS total FROM holds WHERE status = 'active' GROUP BY account_id) h ON h.account_id = a.id
              WHERE a.held <> coalesce(h.total, 0) OR (a.kind NOT IN ('vault', 'settlement', 'fx') AND a.held > a.balance)",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(misheld == 0, "{misheld} accounts hold other than the sum of their active holds, or more than their balance");
    let lopsided: i64 = db
        .query_one(
            "SELECT count(*) FROM (SELECT transfer_id FROM entries GROUP BY transfer_id
                                   HAVING count(*) <> 2 OR sum(amount) <> 0) t",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(lopsided == 0, "{lopsided} transfers lack exactly two balancing entries");
    let orphans: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM entries e WHERE NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = e.transfer_id))
                  + (SELECT count(*) FROM transfers t WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.transfer_id = t.id))",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(orphans == 0, "{orphans} entries without their transfer or transfers without entries");
    // No foreign keys on the hot path (sql/V8): accounts are never deleted,
    // and movements write only ids they locked. Checked here instead.
    let dangling: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM entries e WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = e.account_id)
                                                      OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = e.counterparty_account_id))
                  + (SELECT count(*) FROM transfers t WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = t.from_account_id)
                                                        OR NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = t.to_account_id))",
            &[],
        )
        .await?
        .get(0);
    anyhow::ensure!(dangling == 0, "{dangling} entries or transfers name an account that does not exist");
    Ok(())
}
