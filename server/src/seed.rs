//! The demo bank: one branch with its vaults, a branch admin, a DBA, two
//! customers with accounts (one joint) and some history. TOTP is already
//! enrolled for each demo user and the secrets are handed back, so scripts,
//! benchmarks and the desktop tests can log in.

use rand::{distributions::Alphanumeric, Rng};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    access::{Caller, Role},
    auth::totp,
    db::db_error,
    error::ApiError,
    fx,
    request::RequestMeta,
    state::AppState,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoUser {
    pub username: String,
    pub password: String,
    pub role: String,
    pub branch_id: Option<Uuid>,
    pub totp_secret: String,
    pub account_numbers: Vec<String>,
    /// The bank of the consortium the user banks at (the local stack has two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoCredentials {
    pub users: Vec<DemoUser>,
}

fn random_password() -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(20).map(char::from).collect()
}

/// Creates a user with an enrolled authenticator; returns its id and TOTP secret (base32).
pub async fn create_enrolled_user(
    state: &AppState,
    username: &str,
    full_name: &str,
    role: &str,
    branch_id: Option<Uuid>,
    password_text: &str,
) -> anyhow::Result<(Uuid, String)> {
    let hash = state.hasher.hash(password_text.to_string()).await.map_err(|e| anyhow::anyhow!(e.detail))?;
    let id = Uuid::now_v7();
    let secret = totp::new_secret();
    let sealed = state.secrets.seal(id, &secret);
    let client = state.db.writer().await.map_err(|e| anyhow::anyhow!(e.detail))?;
    client
        .execute(
            "INSERT INTO users (id, username, full_name, role, branch_id, password_hash, totp_secret_enc, totp_enrolled_at,
                                national_id, phone, email)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, '+91 98000 00000', $2 || '@demo.flexibank.example')",
            &[&id, &username, &full_name, &role, &branch_id, &hash, &sealed, &format!("DEMO-{username}")],
        )
        .await?;
    Ok((id, totp::secret_base32(&secret)))
}

pub async fn open_account(state: &AppState, branch_id: Uuid, owners: &[Uuid], kind: &str, currency: &str) -> anyhow::Result<(Uuid, String)> {
    let client = state.db.writer().await.map_err(|e| anyhow::anyhow!(e.detail))?;
    client
        .execute(
            "SELECT ensure_vaults($1, $2)",
            &[&branch_id, &currency],
        )
        .await?;
    let row = client
        .query_one("INSERT INTO accounts (branch_id, kind, currency) VALUES ($1, $2, $3) RETURNING id, number", &[&branch_id, &kind, &currency])
        .await?;
    let id: Uuid = row.get(0);
    for owner in owners {
        client.execute("INSERT INTO account_owners (account_id, user_id) VALUES ($1, $2)", &[&id, owner]).await?;
    }
    Ok((id, row.get(1)))
}

pub async fn create_branch(state: &AppState, code: &str, name: &str) -> anyhow::Result<Uuid> {
    let client = state.db.writer().await.map_err(|e| anyhow::anyhow!(e.detail))?;
    Ok(client
        .query_one("INSERT INTO branches (code, name) VALUES ($1, $2) RETURNING id", &[&code, &name])
        .await?
        .get(0))
}

/// Moves money as `actor` through the same SQL function the API uses.
#[allow(clippy::too_many_arguments)]
pub async fn seed_movement(
    state: &AppState,
    actor: Uuid,
    actor_role: &str,
    kind: &str,
    account: Uuid,
    to_number: Option<&str>,
    amount: &str,
    memo: &str,
) -> anyhow::Result<()> {
    let amount: rust_decimal::Decimal = amount.parse()?;
    let key = format!("seed-{}", Uuid::now_v7());
    state
        .db
        .retry_serializable(|| async {
            let client = state.db.writer().await?;
            client
                .execute(
                    "SELECT move_money($1, $2, NULL, NULL, $3, '\\x00'::bytea, $4, $5, $6, $7::numeric, $8, 'seed', '127.0.0.1')",
                    &[&actor, &actor_role, &key, &kind, &account, &to_number, &amount, &memo],
                )
                .await
                .map_err(db_error)
        })
        .await
        .map_err(|e: ApiError| anyhow::anyhow!("{}: {}", e.code.as_str(), e.detail))?;
    Ok(())
}

/// Seeds the demo bank unless a branch exists already (then returns `None`).
pub async fn seed_demo(state: &AppState) -> anyhow::Result<Option<DemoCredentials>> {
    {
        let client = state.db.writer().await.map_err(|e| anyhow::anyhow!(e.detail))?;
        let branches: i64 = client.query_one("SELECT count(*) FROM branches", &[]).await?.get(0);
        if branches > 0 {
            return Ok(None);
        }
    }
    let branch = create_branch(state, "MAIN", "FlexiBank Main Branch").await?;
    let mut users = Vec::new();
    let mut add = |username: &str, role: &str, branch_id: Option<Uuid>, password: String, secret: String, accounts: Vec<String>| {
        users.push(DemoUser {
            username: username.into(),
            password,
            role: role.into(),
            branch_id,
            totp_secret: secret,
            account_numbers: accounts,
            bank_id: None,
        })
    };

    let admin_pw = random_password();
    let (admin, admin_secret) = create_enrolled_user(state, "admin", "Asha Admin", "branch_admin", Some(branch), &admin_pw).await?;
    // A second branch admin: reviews are decided by an admin who had no hand in the customer (maker-checker).
    let reviewer_pw = random_password();
    let (_reviewer, reviewer_secret) = create_enrolled_user(state, "admin2", "Ravi Reviewer", "branch_admin", Some(branch), &reviewer_pw).await?;
    let dba_pw = random_password();
    let (_dba, dba_secret) = create_enrolled_user(state, "dba", "Dev DBA", "dba", None, &dba_pw).await?;
    let alice_pw = random_password();
    let (alice, alice_secret) = create_enrolled_user(state, "alice", "Alice Fernandes", "customer", Some(branch), &alice_pw).await?;
    let bob_pw = random_password();
    let (bob, bob_secret) = create_enrolled_user(state, "bob", "Bob Mehta", "customer", Some(branch), &bob_pw).await?;

    let (alice_inr, alice_inr_no) = open_account(state, branch, &[alice], "savings", "INR").await?;
    let (alice_usd, alice_usd_no) = open_account(state, branch, &[alice], "current", "USD").await?;
    let (bob_inr, bob_inr_no) = open_account(state, branch, &[bob], "savings", "INR").await?;
    let (_joint, joint_no) = open_account(state, branch, &[alice, bob], "current", "INR").await?;

    seed_movement(state, admin, "branch_admin", "deposit", alice_inr, None, "50000.00", "opening deposit").await?;
    seed_movement(state, admin, "branch_admin", "deposit", alice_usd, None, "1200.00", "opening deposit").await?;
    seed_movement(state, admin, "branch_admin", "deposit", bob_inr, None, "25000.00", "opening deposit").await?;
    seed_movement(state, alice, "customer", "transfer", alice_inr, Some(&bob_inr_no), "1250.50", "dinner").await?;
    seed_movement(state, bob, "customer", "transfer", bob_inr, Some(&joint_no), "5000.00", "household").await?;
    seed_movement(state, alice, "customer", "transfer", alice_inr, Some(&joint_no), "5000.00", "household").await?;
    seed_movement(state, alice, "customer", "withdrawal", alice_inr, None, "2000.00", "cash").await?;

    add("admin", "branch_admin", Some(branch), admin_pw, admin_secret, vec![]);
    add("admin2", "branch_admin", Some(branch), reviewer_pw, reviewer_secret, vec![]);
    add("dba", "dba", None, dba_pw, dba_secret, vec![]);
    add("alice", "customer", Some(branch), alice_pw, alice_secret, vec![alice_inr_no, alice_usd_no, joint_no.clone()]);
    add("bob", "customer", Some(branch), bob_pw, bob_secret, vec![bob_inr_no, joint_no]);
    Ok(Some(DemoCredentials { users }))
}

/// Illustrative exchange rates between the bank's currencies, for `make run`
/// and `make up` only (the tests start without rates: a bank has none until
/// an admin sets them). Set as the demo's branch admin, through the same
/// path and audit (`admin.fx_rate_set`) as the admin's own screen.
const DEMO_RATES: [(&str, &str, &str); 6] = [
    ("INR", "USD", "0.01200000"),
    ("USD", "INR", "83.25000000"),
    ("INR", "EUR", "0.01100000"),
    ("EUR", "INR", "90.50000000"),
    ("USD", "EUR", "0.92000000"),
    ("EUR", "USD", "1.08700000"),
];

pub async fn seed_demo_rates(state: &AppState) -> anyhow::Result<()> {
    let client = state.db.writer().await.map_err(|e| anyhow::anyhow!(e.detail))?;
    let admin = client
        .query_one("SELECT id, username, full_name, branch_id FROM users WHERE username = 'admin' AND role = 'branch_admin'", &[])
        .await?;
    let admin = Caller {
        user_id: admin.get(0),
        username: admin.get(1),
        full_name: admin.get(2),
        role: Role::BranchAdmin,
        branch_id: admin.get(3),
        session_hash: Vec::new(),
    };
    let meta = RequestMeta { request_id: "demo-seed".into(), client_ip: std::net::IpAddr::from([127, 0, 0, 1]) };
    let rates = DEMO_RATES
        .iter()
        .map(|(from, to, rate)| fx::RateInput { from: from.to_string(), to: to.to_string(), rate: rate.to_string() })
        .collect();
    fx::set_rates(state, &admin, &meta, fx::SetRates { rates }).await.map_err(|e| anyhow::anyhow!(e.detail))?;
    Ok(())
}
