//! Authentication and access rules: who may call what, and who may see
//! which objects. Refusals are problem+json, never 2xx, never 5xx; objects
//! outside the caller's scope are 404, exactly like objects that do not exist.


use flexibank_server::seed;
use flexibank_tests::{json, Resp, Session, StackOptions, TestStack};
use flexibank_tests::Seen;
use serde_json::Value;
use uuid::Uuid;


#[derive(Clone, Copy)]
enum M {
    Get,
    Post,
}

/// One call: method, path, JSON body, and whether it moves money (needs a key).
async fn call(s: &Session, method: M, path: &str, body: &Value, money: bool) -> Resp {
    match method {
        M::Get => s.get(path).await,
        M::Post if money => s.post_money(path, body.clone()).await,
        M::Post => s.post(path, body.clone(), None).await,
    }
}

async fn user_id(stack: &TestStack, username: &str) -> Uuid {
    let db = stack.superuser("primary").await;
    db.query_one("SELECT id FROM users WHERE username = $1", &[&username])
        .await
        .unwrap()
        .get(0)
}

/// Every endpoint that needs a session, with bodies that would succeed for
/// the right caller (so a leak would show as a 2xx, not as a 400).
fn endpoints(
    alice_id: Uuid,
    alice_inr: Uuid,
    bob_inr_no: &str,
) -> Vec<(&'static str, M, String, Value, bool)> {
    let cash = json!({"account_id": alice_inr, "amount": "1.00"});
    let transfer =
        json!({"from_account_id": alice_inr, "to_account_number": bob_inr_no, "amount": "1.00"});
    let customer = json!({"username": "mallory", "full_name": "Mallory M", "national_id": "M-1", "phone": "+91 1",
                          "email": "m@example.com", "password": "long enough password"});
    vec![
        (
            "auth",
            M::Get,
            "/v1/auth/session".into(),
            Value::Null,
            false,
        ),
        ("auth", M::Post, "/v1/auth/logout".into(), json!({}), false),
        ("customer", M::Get, "/v1/me".into(), Value::Null, false),
        (
            "customer",
            M::Get,
            format!("/v1/accounts/{alice_inr}"),
            Value::Null,
            false,
        ),
        (
            "customer",
            M::Get,
            format!("/v1/accounts/{alice_inr}/transactions"),
            Value::Null,
            false,
        ),
        (
            "customer",
            M::Post,
            "/v1/deposits".into(),
            cash.clone(),
            true,
        ),
        (
            "customer",
            M::Post,
            "/v1/withdrawals".into(),
            cash.clone(),
            true,
        ),
        (
            "customer",
            M::Post,
            "/v1/transfers".into(),
            transfer.clone(),
            true,
        ),
        (
            "customer",
            M::Post,
            "/v1/transfers/batch".into(),
            json!({"items": [transfer]}),
            true,
        ),
        (
            "admin",
            M::Post,
            "/v1/admin/customers".into(),
            customer,
            false,
        ),
        (
            "admin",
            M::Get,
            "/v1/admin/customers".into(),
            Value::Null,
            false,
        ),
        (
            "admin",
            M::Post,
            "/v1/admin/accounts".into(),
            json!({"owner_ids": [alice_id], "kind": "savings", "currency": "INR"}),
            false,
        ),
        (
            "admin",
            M::Get,
            "/v1/admin/accounts".into(),
            Value::Null,
            false,
        ),
        (
            "admin",
            M::Post,
            format!("/v1/admin/accounts/{alice_inr}/freeze"),
            json!({}),
            false,
        ),
        (
            "admin",
            M::Post,
            format!("/v1/admin/accounts/{alice_inr}/unfreeze"),
            json!({}),
            false,
        ),
        (
            "admin",
            M::Post,
            format!("/v1/admin/accounts/{alice_inr}/close"),
            json!({}),
            false,
        ),
        (
            "admin",
            M::Post,
            "/v1/admin/deposits".into(),
            cash.clone(),
            true,
        ),
        ("admin", M::Post, "/v1/admin/withdrawals".into(), cash, true),
        (
            "admin",
            M::Get,
            "/v1/admin/transactions".into(),
            Value::Null,
            false,
        ),
        (
            "admin",
            M::Get,
            "/v1/admin/audit".into(),
            Value::Null,
            false,
        ),
        (
            "admin",
            M::Post,
            format!("/v1/admin/users/{alice_id}/reset-mfa"),
            json!({}),
            false,
        ),
        ("dba", M::Get, "/v1/dba/audit".into(), Value::Null, false),
    ]
}

#[tokio::test]
async fn missing_forged_revoked_and_expired_sessions_are_refused() {
    let stack = TestStack::start_with(
        "access-sessions",
        StackOptions {
            configure: |c| c.security.session_idle_timeout_s = 2,
            ..Default::default()
        },
    )
    .await;
    let seen = Seen::default();
    let alice_id = user_id(&stack, "alice").await;
    let alice_inr = stack
        .account_id(&stack.user("alice").account_numbers[0])
        .await;
    let bob_inr_no = stack.user("bob").account_numbers[0].clone();
    let before = stack.ledger_snapshot().await;

    let anon = stack.anon();
    let forged = anon.with_token("Zm9yZ2VkLXRva2VuLXRoYXQtbm9ib2R5LWV2ZXItaXNzdWVk");
    let too_long = anon.with_token(&"a".repeat(300));
    // A step-one mfa_token is not a session.
    let step1 = anon
        .post(
            "/v1/auth/login",
            json!({"username": "bob", "password": stack.user("bob").password}),
            None,
        )
        .await;
    assert_eq!(step1.status, 200);
    let mfa_token = anon.with_token(step1.body["mfa_token"].as_str().unwrap());
    for (_, method, path, body, money) in endpoints(alice_id, alice_inr, &bob_inr_no) {
        for (who, s) in [
            ("anonymous", &anon),
            ("forged token", &forged),
            ("300-char token", &too_long),
            ("mfa_token", &mfa_token),
        ] {
            seen.problem(
                &format!("{who}: {path}"),
                call(s, method, &path, &body, money).await,
                401,
                "unauthenticated",
            );
        }
    }
    // Other ways of not sending a bearer token.
    for header in [
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer",
        "Bearer ",
        "bearer x",
        "Token abc",
    ] {
        let r = anon
            .send(
                anon.http
                    .get(format!("{}/v1/me", anon.base_url))
                    .header("authorization", header),
            )
            .await;
        seen.problem(
            &format!("Authorization: {header:?}"),
            r,
            401,
            "unauthenticated",
        );
    }
    assert_eq!(
        before,
        stack.ledger_snapshot().await,
        "refused calls changed the ledger"
    );

    // Logout revokes the session at once; the revoked token is refused everywhere.
    let alice = stack.login("alice").await;
    seen.ok("alice before logout", alice.get("/v1/me").await, 200);
    let r = seen.ok(
        "logout",
        alice.post("/v1/auth/logout", json!({}), None).await,
        204,
    );
    assert_eq!(r.body, Value::Null);
    for (_, method, path, body, money) in endpoints(alice_id, alice_inr, &bob_inr_no) {
        seen.problem(
            &format!("revoked: {path}"),
            call(&alice, method, &path, &body, money).await,
            401,
            "unauthenticated",
        );
    }

    // Idle timeout (2 s here): the session dies without use.
    let bob = stack.login("bob").await;
    seen.ok("bob fresh session", bob.get("/v1/auth/session").await, 200);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    seen.problem(
        "expired: session",
        bob.get("/v1/auth/session").await,
        401,
        "unauthenticated",
    );
    seen.problem(
        "expired: me",
        bob.get("/v1/me").await,
        401,
        "unauthenticated",
    );
    seen.problem(
        "expired: logout",
        bob.post("/v1/auth/logout", json!({}), None).await,
        401,
        "unauthenticated",
    );

    assert_eq!(before, stack.ledger_snapshot().await);
    seen.assert_no_5xx();
}

#[tokio::test]
async fn roles_reach_only_their_endpoints_and_everything_is_audited() {
    let stack = TestStack::start("access-roles").await;
    let seen = Seen::default();
    let alice_id = user_id(&stack, "alice").await;
    let alice_inr_no = stack.user("alice").account_numbers[0].clone();
    let alice_inr = stack.account_id(&alice_inr_no).await;
    let bob_inr_no = stack.user("bob").account_numbers[0].clone();
    let alice = stack.login("alice").await;
    let admin = stack.login("admin").await;
    let dba = stack.login("dba").await;
    let before = stack.ledger_snapshot().await;

    for (area, method, path, body, money) in endpoints(alice_id, alice_inr, &bob_inr_no) {
        let callers: Vec<(&str, &Session)> = match area {
            "customer" => vec![("admin", &admin), ("dba", &dba)],
            "admin" => vec![("alice", &alice), ("dba", &dba)],
            "dba" => vec![("alice", &alice), ("admin", &admin)],
            _ => vec![],
        };
        for (who, s) in callers {
            let r = call(s, method, &path, &body, money).await;
            if area == "admin" {
                seen.refused(&format!("{who}: {path}"), r);
            } else {
                seen.problem(&format!("{who}: {path}"), r, 403, "forbidden");
            }
        }
    }
    // DBA endpoints of the contract this server may not route yet: refused all the same.
    for (who, s) in [("alice", &alice), ("admin", &admin)] {
        seen.refused(
            &format!("{who}: dba cluster"),
            s.get("/v1/dba/cluster").await,
        );
        seen.refused(
            &format!("{who}: dba promote"),
            s.post("/v1/dba/promote", json!({"node": "replica1"}), None)
                .await,
        );
    }
    assert_eq!(
        before,
        stack.ledger_snapshot().await,
        "refused calls changed the ledger"
    );
    // The sessions still work for what each role may do.
    seen.ok("alice: me", alice.get("/v1/me").await, 200);
    seen.ok(
        "admin: customers",
        admin.get("/v1/admin/customers").await,
        200,
    );
    seen.ok("dba: audit", dba.get("/v1/dba/audit").await, 200);
    for (who, s) in [("alice", &alice), ("admin", &admin), ("dba", &dba)] {
        seen.ok(
            &format!("{who}: session"),
            s.get("/v1/auth/session").await,
            200,
        );
    }

    // Wrong password and unknown username: the same answer, byte for byte.
    let anon = stack.anon();
    let wrong = anon
        .post(
            "/v1/auth/login",
            json!({"username": "alice", "password": "not her password"}),
            None,
        )
        .await;
    let unknown = anon
        .post(
            "/v1/auth/login",
            json!({"username": "nobody-by-this-name", "password": "not her password"}),
            None,
        )
        .await;
    let r1 = seen.problem("wrong password", wrong, 401, "invalid_credentials");
    let r2 = seen.problem("unknown username", unknown, 401, "invalid_credentials");
    assert_eq!(r1.body, r2.body, "the two refusals must be identical");
    assert_eq!(r1.header("content-type"), r2.header("content-type"));
    assert_eq!(r1.header("retry-after"), r2.header("retry-after"));

    // Lockout after five failures, alike for an existing and an unknown username.
    let state = &stack.server().state;
    let branch = stack.user("admin").branch_id;
    seed::create_enrolled_user(
        state,
        "victim",
        "Vic Tim",
        "customer",
        branch,
        "the right password",
    )
    .await
    .unwrap();
    for username in ["victim", "ghost-user"] {
        for attempt in 1..=5 {
            let r = anon
                .post(
                    "/v1/auth/login",
                    json!({"username": username, "password": "a wrong password"}),
                    None,
                )
                .await;
            seen.problem(
                &format!("{username}: failure {attempt}"),
                r,
                401,
                "invalid_credentials",
            );
        }
    }
    let locked_real = anon
        .post(
            "/v1/auth/login",
            json!({"username": "victim", "password": "the right password"}),
            None,
        )
        .await;
    let locked_ghost = anon
        .post(
            "/v1/auth/login",
            json!({"username": "ghost-user", "password": "the right password"}),
            None,
        )
        .await;
    let locked_real = seen.problem("victim locked", locked_real, 429, "locked_out");
    let locked_ghost = seen.problem("ghost locked", locked_ghost, 429, "locked_out");
    assert!(
        locked_real.header("retry-after").is_some() && locked_ghost.header("retry-after").is_some()
    );
    assert_eq!(
        locked_real.body["detail"]
            .as_str()
            .map(|d| d.split(';').next()),
        locked_ghost.body["detail"]
            .as_str()
            .map(|d| d.split(';').next())
    );

    // Audit rows for a login, a transfer and a freeze.
    let transfer = seen.ok(
        "alice transfers",
        alice.post_money("/v1/transfers", json!({"from_account_id": alice_inr, "to_account_number": bob_inr_no, "amount": "3.00"})).await,
        201,
    );
    let transfer_id = transfer.body["id"].as_str().unwrap().to_string();
    seen.ok(
        "admin freezes",
        admin
            .post(
                &format!("/v1/admin/accounts/{alice_inr}/freeze"),
                json!({}),
                None,
            )
            .await,
        200,
    );
    let db = stack.superuser("primary").await;
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let logins: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login' AND outcome = 'success' AND actor_id = $1 AND target = 'user:alice'",
            &[&alice_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(logins, 1, "alice's login is audited once");
    let failed: i64 = count("SELECT count(*) FROM audit_log WHERE action = 'auth.login' AND outcome = 'failure' AND target = 'user:alice'").await;
    assert_eq!(failed, 1, "the wrong password is audited");
    let transfers: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'money.transfer' AND outcome = 'success' AND actor_id = $1 AND target = $2",
            &[&alice_id, &format!("transfer:{transfer_id}")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(transfers, 1, "the transfer is audited once");
    let freezes: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'admin.account_frozen' AND outcome = 'success' AND target = $1
                AND actor_id = (SELECT id FROM users WHERE username = 'admin')",
            &[&format!("account:{alice_inr_no}")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(freezes, 1, "the freeze is audited once");

    // The application role may read and append the audit log, never change it.
    let c = &stack.cluster.0.config;
    let primary = c.nodes.iter().find(|n| n.name == "primary").unwrap();
    let (app, connection) = tokio_postgres::Config::new()
        .host(&primary.host)
        .port(primary.port)
        .user(&c.app_user)
        .password(&c.app_password)
        .dbname(&c.database)
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect as the application role");
    tokio::spawn(connection);
    let rows: i64 = app
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap()
        .get(0);
    assert!(rows > 0);
    for statement in [
        "UPDATE audit_log SET outcome = 'failure'",
        "UPDATE audit_log SET details = '{}' WHERE action = 'money.transfer'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE action = 'admin.account_frozen'",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
        "DROP TRIGGER audit_log_no_update_delete ON audit_log",
    ] {
        let error = app.batch_execute(statement).await.expect_err(statement);
        let code = error.code().map(|c| c.code().to_string());
        assert!(
            matches!(code.as_deref(), Some("42501")),
            "{statement}: {error:?}"
        );
    }
    // Even the superuser hits the append-only trigger.
    assert!(
        db.batch_execute("DELETE FROM audit_log").await.is_err(),
        "superuser DELETE"
    );
    assert!(
        db.batch_execute("UPDATE audit_log SET outcome = 'denied'")
            .await
            .is_err(),
        "superuser UPDATE"
    );
    let after: i64 = app
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap()
        .get(0);
    assert!(after >= rows);
    assert_eq!(
        count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'").await,
        0
    );

    stack.assert_ledger_invariants().await;
    seen.assert_no_5xx();
}

#[tokio::test]
async fn customers_and_branch_admins_see_only_their_own() {
    let stack = TestStack::start("access-idor").await;
    let seen = Seen::default();
    let state = &stack.server().state;
    let branch1 = stack.user("admin").branch_id.unwrap();
    let alice_id = user_id(&stack, "alice").await;
    let bob_id = user_id(&stack, "bob").await;
    let [alice_inr_no, alice_usd_no, joint_no] =
        <[String; 3]>::try_from(stack.user("alice").account_numbers.clone()).unwrap();
    let bob_inr_no = stack.user("bob").account_numbers[0].clone();
    let alice_inr = stack.account_id(&alice_inr_no).await;
    let alice_usd = stack.account_id(&alice_usd_no).await;
    let joint = stack.account_id(&joint_no).await;
    let bob_inr = stack.account_id(&bob_inr_no).await;

    // A second branch with its own admin and customer.
    let branch2 = seed::create_branch(state, "NORTH", "FlexiBank North")
        .await
        .unwrap();
    let (admin2_id, admin2_secret) = seed::create_enrolled_user(
        state,
        "nina",
        "Nina North",
        "branch_admin",
        Some(branch2),
        "nina's password!",
    )
    .await
    .unwrap();
    let (carol_id, carol_secret) = seed::create_enrolled_user(
        state,
        "carol",
        "Carol North",
        "customer",
        Some(branch2),
        "carol's password",
    )
    .await
    .unwrap();
    let (carol_inr, carol_inr_no) =
        seed::open_account(state, branch2, &[carol_id], "savings", "INR")
            .await
            .unwrap();

    let alice = stack.login("alice").await;
    let bob = stack.login("bob").await;
    let admin = stack.login("admin").await;
    let admin2 = stack
        .login_with("nina", "nina's password!", &admin2_secret)
        .await;
    let carol = stack
        .login_with("carol", "carol's password", &carol_secret)
        .await;
    seen.ok(
        "nina: teller deposit for carol",
        admin2
            .post_money(
                "/v1/admin/deposits",
                json!({"account_id": carol_inr, "amount": "500.00"}),
            )
            .await,
        201,
    );
    seen.ok(
        "carol: own account",
        carol.get(&format!("/v1/accounts/{carol_inr}")).await,
        200,
    );

    // Customers: someone else's account is not found, whatever the operation.
    let before = stack.ledger_snapshot().await;
    let nobody = Uuid::now_v7();
    let not_found_body = seen
        .problem(
            "alice: GET unknown",
            alice.get(&format!("/v1/accounts/{nobody}")).await,
            404,
            "not_found",
        )
        .body;
    let probes: Vec<(&str, &Session, Uuid, &str)> = vec![
        ("alice", &alice, bob_inr, &alice_inr_no),
        ("bob", &bob, alice_inr, &bob_inr_no),
        ("bob", &bob, alice_usd, &bob_inr_no),
        ("carol", &carol, alice_inr, &carol_inr_no),
        ("alice", &alice, carol_inr, &alice_inr_no),
    ];
    for (who, s, theirs, mine_no) in probes {
        let r = seen.problem(
            &format!("{who}: GET {theirs}"),
            s.get(&format!("/v1/accounts/{theirs}")).await,
            404,
            "not_found",
        );
        assert_eq!(
            r.body, not_found_body,
            "not yours must read exactly like not there"
        );
        seen.problem(
            &format!("{who}: history of {theirs}"),
            s.get(&format!("/v1/accounts/{theirs}/transactions")).await,
            404,
            "not_found",
        );
        seen.problem(
            &format!("{who}: withdraw {theirs}"),
            s.post_money(
                "/v1/withdrawals",
                json!({"account_id": theirs, "amount": "1"}),
            )
            .await,
            404,
            "not_found",
        );
        seen.problem(
            &format!("{who}: deposit by id {theirs}"),
            s.post_money("/v1/deposits", json!({"account_id": theirs, "amount": "1"}))
                .await,
            404,
            "not_found",
        );
        seen.problem(
            &format!("{who}: transfer from {theirs}"),
            s.post_money(
                "/v1/transfers",
                json!({"from_account_id": theirs, "to_account_number": mine_no, "amount": "1"}),
            )
            .await,
            404,
            "not_found",
        );
        seen.problem(
            &format!("{who}: batch from {theirs}"),
            s.post_money("/v1/transfers/batch", json!({"items": [{"from_account_id": theirs, "to_account_number": mine_no, "amount": "1"}]})).await,
            404,
            "not_found",
        );
    }
    assert_eq!(
        before,
        stack.ledger_snapshot().await,
        "refused customer calls changed the ledger"
    );
    let bob_me = seen.ok("bob: me", bob.get("/v1/me").await, 200);
    let bob_accounts: Vec<&str> = bob_me.body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["number"].as_str().unwrap())
        .collect();
    assert!(
        !bob_accounts.contains(&alice_inr_no.as_str()) && bob_accounts.contains(&joint_no.as_str()),
        "{bob_accounts:?}"
    );

    // The joint account works for both owners.
    for (who, s) in [("alice", &alice), ("bob", &bob)] {
        let r = seen.ok(
            &format!("{who}: GET joint"),
            s.get(&format!("/v1/accounts/{joint}")).await,
            200,
        );
        assert_eq!(r.body["owners"].as_array().unwrap().len(), 2);
        seen.ok(
            &format!("{who}: joint history"),
            s.get(&format!("/v1/accounts/{joint}/transactions")).await,
            200,
        );
    }
    seen.ok(
        "alice: withdraw from joint",
        alice
            .post_money(
                "/v1/withdrawals",
                json!({"account_id": joint, "amount": "1.00"}),
            )
            .await,
        201,
    );
    seen.ok(
        "bob: transfer from joint",
        bob.post_money(
            "/v1/transfers",
            json!({"from_account_id": joint, "to_account_number": alice_inr_no, "amount": "2.00"}),
        )
        .await,
        201,
    );
    seen.ok(
        "alice: batch from joint",
        alice.post_money("/v1/transfers/batch", json!({"items": [{"from_account_id": joint, "to_account_number": bob_inr_no, "amount": "3.00"}]})).await,
        201,
    );

    // Branch admins: the other branch's objects are absent and untouchable.
    let db = stack.superuser("primary").await;
    let accounts_of = |rows: Vec<tokio_postgres::Row>| {
        rows.iter()
            .map(|r| r.get::<_, Uuid>(0))
            .collect::<Vec<Uuid>>()
    };
    let branch1_accounts = accounts_of(
        db.query("SELECT id FROM accounts WHERE branch_id = $1", &[&branch1])
            .await
            .unwrap(),
    );
    let branch2_accounts = accounts_of(
        db.query("SELECT id FROM accounts WHERE branch_id = $1", &[&branch2])
            .await
            .unwrap(),
    );
    let branch1_users: Vec<Uuid> = accounts_of(
        db.query("SELECT id FROM users WHERE branch_id = $1", &[&branch1])
            .await
            .unwrap(),
    );
    let branch2_users: Vec<Uuid> = accounts_of(
        db.query("SELECT id FROM users WHERE branch_id = $1", &[&branch2])
            .await
            .unwrap(),
    );

    struct View<'a> {
        who: &'a str,
        session: &'a Session,
        branch: Uuid,
        own_accounts: &'a [Uuid],
        other_accounts: &'a [Uuid],
        own_users: &'a [Uuid],
        other_users: &'a [Uuid],
    }
    let views = [
        View {
            who: "nina",
            session: &admin2,
            branch: branch2,
            own_accounts: &branch2_accounts,
            other_accounts: &branch1_accounts,
            own_users: &branch2_users,
            other_users: &branch1_users,
        },
        View {
            who: "admin",
            session: &admin,
            branch: branch1,
            own_accounts: &branch1_accounts,
            other_accounts: &branch2_accounts,
            own_users: &branch1_users,
            other_users: &branch2_users,
        },
    ];
    for View {
        who,
        session: s,
        branch,
        own_accounts,
        other_accounts,
        own_users,
        other_users,
    } in views
    {
        let customers = seen.ok(
            &format!("{who}: customers"),
            s.get("/v1/admin/customers?limit=200").await,
            200,
        );
        let items = customers.body["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{who} sees their own customers");
        for c in items {
            let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
            assert!(
                own_users.contains(&id) && !other_users.contains(&id),
                "{who} sees customer {c}"
            );
            for a in c["accounts"].as_array().unwrap() {
                let id: Uuid = a["id"].as_str().unwrap().parse().unwrap();
                assert!(own_accounts.contains(&id), "{who} sees account {a}");
            }
        }
        let accounts = seen.ok(
            &format!("{who}: accounts"),
            s.get("/v1/admin/accounts?limit=200").await,
            200,
        );
        let items = accounts.body["items"].as_array().unwrap();
        assert!(!items.is_empty());
        for a in items {
            let id: Uuid = a["id"].as_str().unwrap().parse().unwrap();
            assert!(
                own_accounts.contains(&id) && !other_accounts.contains(&id),
                "{who} sees account {a}"
            );
            assert_eq!(a["branch_id"].as_str().unwrap(), branch.to_string());
        }
        let transactions = seen.ok(
            &format!("{who}: transactions"),
            s.get("/v1/admin/transactions?limit=200").await,
            200,
        );
        let items = transactions.body["items"].as_array().unwrap();
        assert!(!items.is_empty());
        for t in items {
            for side in ["from_account_id", "to_account_id"] {
                let id: Uuid = t[side].as_str().unwrap().parse().unwrap();
                assert!(!other_accounts.contains(&id), "{who} sees transfer {t}");
            }
        }
        let audit = seen.ok(
            &format!("{who}: audit"),
            s.get("/v1/admin/audit?limit=200").await,
            200,
        );
        let items = audit.body["items"].as_array().unwrap();
        assert!(!items.is_empty());
        assert!(
            audit.body["next_cursor"].is_null(),
            "one page holds the whole trail here"
        );
        for row in items {
            assert_eq!(
                row["branch_id"].as_str(),
                Some(branch.to_string().as_str()),
                "{who} sees audit row {row}"
            );
            if let Some(actor) = row["actor_id"].as_str() {
                assert!(
                    !other_users.contains(&actor.parse().unwrap()),
                    "{who} sees audit row {row}"
                );
            }
        }
        // Searching for the other branch's people finds nothing.
        let other = if who == "nina" { "alice" } else { "carol" };
        let r = seen.ok(
            &format!("{who}: search {other}"),
            s.get(&format!("/v1/admin/customers?query={other}")).await,
            200,
        );
        assert_eq!(
            r.body["items"].as_array().unwrap().len(),
            0,
            "{who} finds {other}: {}",
            r.body
        );
        let r = seen.ok(
            &format!("{who}: accounts search {other}"),
            s.get(&format!("/v1/admin/accounts?query={other}")).await,
            200,
        );
        assert_eq!(
            r.body["items"].as_array().unwrap().len(),
            0,
            "{who} finds {other}'s accounts: {}",
            r.body
        );
        let other_actor = if who == "nina" { alice_id } else { carol_id };
        let r = seen.ok(
            &format!("{who}: audit of {other}"),
            s.get(&format!("/v1/admin/audit?actor={other_actor}")).await,
            200,
        );
        assert_eq!(
            r.body["items"].as_array().unwrap().len(),
            0,
            "{who} reads {other}'s trail: {}",
            r.body
        );
    }

    // Nina cannot act on the first branch's accounts or customers, and vice versa.
    let before = stack.ledger_snapshot().await;
    let cross: [(&str, &Session, Uuid, Uuid); 3] = [
        ("nina", &admin2, alice_inr, alice_id),
        ("nina", &admin2, joint, bob_id),
        ("admin", &admin, carol_inr, carol_id),
    ];
    for (who, s, account, customer) in cross {
        for change in ["freeze", "unfreeze", "close"] {
            seen.problem(
                &format!("{who}: {change} {account}"),
                s.post(
                    &format!("/v1/admin/accounts/{account}/{change}"),
                    json!({}),
                    None,
                )
                .await,
                404,
                "not_found",
            );
        }
        for path in ["/v1/admin/deposits", "/v1/admin/withdrawals"] {
            seen.problem(
                &format!("{who}: {path} {account}"),
                s.post_money(path, json!({"account_id": account, "amount": "1.00"}))
                    .await,
                404,
                "not_found",
            );
        }
        seen.problem(
            &format!("{who}: reset-mfa of {customer}"),
            s.post(
                &format!("/v1/admin/users/{customer}/reset-mfa"),
                json!({}),
                None,
            )
            .await,
            404,
            "not_found",
        );
        seen.problem(
            &format!("{who}: open an account for {customer}"),
            s.post(
                "/v1/admin/accounts",
                json!({"owner_ids": [customer], "kind": "current", "currency": "INR"}),
                None,
            )
            .await,
            404,
            "not_found",
        );
        seen.problem(
            &format!("{who}: transactions of {account}"),
            s.get(&format!("/v1/admin/transactions?account_id={account}"))
                .await,
            404,
            "not_found",
        );
    }
    // A joint account may not span branches either.
    seen.problem(
        "nina: open a joint account with alice",
        admin2
            .post(
                "/v1/admin/accounts",
                json!({"owner_ids": [carol_id, alice_id], "kind": "current", "currency": "INR"}),
                None,
            )
            .await,
        404,
        "not_found",
    );
    assert_eq!(
        before,
        stack.ledger_snapshot().await,
        "refused admin calls changed the ledger"
    );
    let alice_account = seen.ok(
        "alice: still active",
        alice.get(&format!("/v1/accounts/{alice_inr}")).await,
        200,
    );
    assert_eq!(alice_account.body["status"], "active");

    // The DBA reads every branch's trail.
    let dba = stack.login("dba").await;
    let trail = seen.ok("dba: audit", dba.get("/v1/dba/audit?limit=200").await, 200);
    let branches: std::collections::HashSet<String> = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["branch_id"].as_str().map(String::from))
        .collect();
    assert!(
        branches.contains(&branch1.to_string()) && branches.contains(&branch2.to_string()),
        "{branches:?}"
    );
    // MFA resets are for the branch's own customers only, never for staff.
    let admin_id = user_id(&stack, "admin").await;
    let dba_id = user_id(&stack, "dba").await;
    for (who, s, target) in [
        ("admin", &admin, admin2_id),
        ("admin", &admin, dba_id),
        ("admin", &admin, admin_id),
        ("nina", &admin2, admin_id),
        ("nina", &admin2, Uuid::now_v7()),
    ] {
        seen.problem(
            &format!("{who}: reset-mfa of {target}"),
            s.post(
                &format!("/v1/admin/users/{target}/reset-mfa"),
                json!({}),
                None,
            )
            .await,
            404,
            "not_found",
        );
    }
    seen.ok(
        "dba: session survives",
        dba.get("/v1/auth/session").await,
        200,
    );
    seen.ok(
        "nina: session survives",
        admin2.get("/v1/auth/session").await,
        200,
    );

    stack.assert_ledger_invariants().await;
    seen.assert_no_5xx();
}
