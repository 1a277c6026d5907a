//! MFA login under attack: replayed and wrong codes, recovery codes,
//! single-use login tokens, lockout and its release, the per-address rate
//! limit, and an admin's MFA reset.

use std::time::Duration;

use flexibank_server::auth::totp;
use flexibank_tests::{json, unix_now, StackOptions, TestStack};

const PASSWORD: &str = "correct horse battery";

/// Creates a customer through the admin API and enrolls them; returns (secret, recovery codes).
async fn enrolled_customer(stack: &TestStack, username: &str) -> (String, Vec<String>) {
    let admin = stack.login("admin").await;
    let created = admin
        .post(
            "/v1/admin/customers",
            json!({"username": username, "full_name": "Test Person", "national_id": "X-1", "phone": "+1 555 0100",
                   "email": "t@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let step1 = stack.anon().post("/v1/auth/login", json!({"username": username, "password": PASSWORD}), None).await;
    assert_eq!(step1.body["next"], "enroll");
    let secret = step1.body["enrollment"]["secret_base32"].as_str().unwrap().to_string();
    let code = stack.fresh_code(username, &secret).await;
    let step2 = stack.anon().post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": code}), None).await;
    assert_eq!(step2.status, 200, "{}", step2.body);
    let codes = step2.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    (secret, codes)
}

async fn password_step(stack: &TestStack, username: &str, password: &str) -> flexibank_tests::Resp {
    stack.anon().post("/v1/auth/login", json!({"username": username, "password": password}), None).await
}

/// A six-digit code that is valid at no step within the ±1 window.
fn wrong_code(secret_base32: &str) -> String {
    let secret = totp_rs::Secret::Encoded(secret_base32.to_string()).to_bytes().unwrap();
    let step = totp::current_step(unix_now());
    let valid: Vec<String> = (step - 2..=step + 2).map(|s| totp::code_at_step(&secret, s)).collect();
    (0..1_000_000).map(|n| format!("{n:06}")).find(|c| !valid.contains(c)).unwrap()
}

#[tokio::test]
async fn codes_are_single_use_and_wrong_codes_fail() {
    let stack = TestStack::start("mfa-codes").await;
    let (secret, recovery) = enrolled_customer(&stack, "dave").await;
    assert_eq!(recovery.len(), 10);
    let anon = stack.anon();

    // The enrollment code's step was accepted; the same code again is a replay.
    let secret_bytes = totp_rs::Secret::Encoded(secret.clone()).to_bytes().unwrap();
    let last_used = stack.last_used_step("dave").unwrap();
    let step1 = password_step(&stack, "dave", PASSWORD).await;
    assert_eq!(step1.body["next"], "totp");
    let replayed = anon
        .post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": totp::code_at_step(&secret_bytes, last_used)}), None)
        .await;
    replayed.assert_problem(401, "totp_replayed");

    let wrong = anon.post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": wrong_code(&secret)}), None).await;
    wrong.assert_problem(401, "invalid_totp");
    let malformed = anon.post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": "12ab56"}), None).await;
    malformed.assert_problem(401, "invalid_totp");
    let both = anon
        .post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": "123456", "recovery_code": recovery[0]}), None)
        .await;
    both.assert_problem(400, "validation_failed");

    // A recovery code works once; the login token works once.
    let by_recovery = anon.post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "recovery_code": recovery[0]}), None).await;
    assert_eq!(by_recovery.status, 200, "{}", by_recovery.body);
    let token_again = anon.post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "recovery_code": recovery[1]}), None).await;
    token_again.assert_problem(401, "unauthenticated");
    let step1b = password_step(&stack, "dave", PASSWORD).await;
    let reused = anon.post("/v1/auth/mfa", json!({"mfa_token": step1b.body["mfa_token"], "recovery_code": recovery[0]}), None).await;
    reused.assert_problem(401, "invalid_totp");
    let other_code = anon.post("/v1/auth/mfa", json!({"mfa_token": step1b.body["mfa_token"], "recovery_code": recovery[1].to_lowercase()}), None).await;
    assert_eq!(other_code.status, 200, "recovery codes are case-insensitive: {}", other_code.body);

    // A forged mfa_token.
    anon.post("/v1/auth/mfa", json!({"mfa_token": "forged", "code": "123456"}), None).await.assert_problem(401, "unauthenticated");

    // Every failure above is in the audit trail.
    let db = stack.superuser("primary").await;
    let failures: i64 = db
        .query_one("SELECT count(*) FROM audit_log WHERE action = 'auth.login' AND outcome = 'failure' AND target = 'user:dave'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(failures >= 3, "replay, wrong code and reused recovery code are audited: {failures}");
}

#[tokio::test]
async fn five_failures_lock_the_username_until_the_window_passes() {
    let stack = TestStack::start_with(
        "mfa-lockout",
        StackOptions { configure: |c| c.security.lockout_seconds = 4, ..Default::default() },
    )
    .await;
    let alice = stack.user("alice").clone();
    for attempt in 1..=5 {
        password_step(&stack, "alice", "not her password").await.assert_problem(401, "invalid_credentials");
        let _ = attempt;
    }
    // Now even the right password is refused, with the time left.
    let locked = password_step(&stack, "alice", &alice.password).await;
    locked.assert_problem(429, "locked_out");
    let retry_after: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=4).contains(&retry_after), "Retry-After {retry_after}");

    // Unknown usernames lock the same way: lockout reveals nothing.
    for _ in 1..=5 {
        password_step(&stack, "nobody-here", "whatever password").await.assert_problem(401, "invalid_credentials");
    }
    password_step(&stack, "nobody-here", "whatever password").await.assert_problem(429, "locked_out");

    // Wrong codes count too.
    for _ in 1..=5 {
        let step1 = password_step(&stack, "bob", &stack.user("bob").password).await;
        assert_eq!(step1.status, 200, "{}", step1.body);
        let wrong = stack.anon().post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": wrong_code(&stack.user("bob").totp_secret)}), None).await;
        wrong.assert_problem(401, "invalid_totp");
    }
    password_step(&stack, "bob", &stack.user("bob").password).await.assert_problem(429, "locked_out");

    // After the window, the right credentials work again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let session = stack.login("alice").await;
    assert_eq!(session.get("/v1/me").await.status, 200);
    stack.login("bob").await;
}

#[tokio::test]
async fn login_endpoints_are_rate_limited_per_address() {
    let stack = TestStack::start_with(
        "mfa-rate",
        StackOptions { configure: |c| c.security.login_rate_per_minute = 5, ..Default::default() },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(password_step(&stack, "alice", "wrong but counted").await.status, 401);
    }
    let limited = password_step(&stack, "carol", "some password here").await;
    limited.assert_problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    stack.anon().post("/v1/auth/mfa", json!({"mfa_token": "x", "code": "123456"}), None).await.assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn admin_mfa_reset_ends_sessions_and_forces_enrollment() {
    let stack = TestStack::start("mfa-reset").await;
    let alice = stack.login("alice").await;
    let alice_id = alice.get("/v1/auth/session").await.body["id"].as_str().unwrap().to_string();
    let admin = stack.login("admin").await;

    // Only a branch admin may do it.
    let dba = stack.login("dba").await;
    dba.post(&format!("/v1/admin/users/{alice_id}/reset-mfa"), json!({}), None).await.assert_problem(403, "forbidden");
    alice.post(&format!("/v1/admin/users/{alice_id}/reset-mfa"), json!({}), None).await.assert_problem(403, "forbidden");
    admin.post(&format!("/v1/admin/users/{}/reset-mfa", uuid::Uuid::now_v7()), json!({}), None).await.assert_problem(404, "not_found");

    let reset = admin.post(&format!("/v1/admin/users/{alice_id}/reset-mfa"), json!({}), None).await;
    assert_eq!(reset.status, 204, "{}", reset.body);
    alice.get("/v1/me").await.assert_problem(401, "unauthenticated");

    let step1 = password_step(&stack, "alice", &stack.user("alice").password).await;
    assert_eq!(step1.body["next"], "enroll", "{}", step1.body);
    // The old secret no longer works: enrollment needs a code of the new one.
    let old_code = stack.fresh_code("alice", &stack.user("alice").totp_secret).await;
    let with_old = stack.anon().post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": old_code}), None).await;
    with_old.assert_problem(401, "invalid_totp");
    let new_secret = step1.body["enrollment"]["secret_base32"].as_str().unwrap();
    let new_code = stack.fresh_code("alice", new_secret).await;
    let enrolled = stack.anon().post("/v1/auth/mfa", json!({"mfa_token": step1.body["mfa_token"], "code": new_code}), None).await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    assert_eq!(enrolled.body["recovery_codes"].as_array().unwrap().len(), 10);

    let audit = admin.get("/v1/admin/audit?action=admin.mfa_reset").await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 1, "{}", audit.body);
    assert_eq!(audit.body["items"][0]["details"]["sessions_revoked"], 1);
}
