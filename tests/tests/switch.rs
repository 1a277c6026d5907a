//! The consortium switch through its public interface: a real PostgreSQL
//! (one node, its own cluster under var/test/), the switch in-process on an
//! ephemeral port, and banks speaking real mutual TLS with certificates from
//! the consortium CA (and one from a foreign CA).

use std::{path::PathBuf, time::Duration};

use flexibank_consortium::pki;
use flexibank_switch::Limits;
use flexibank_tests::switch::{assert_problem, send, SwitchUnderTest};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

const BANK1: &str = "00000001";
const BANK2: &str = "00000002";
/// Has a certificate from the consortium CA but is not a member.
const STRANGER: &str = "00000009";
const PER_USER_LOOKUPS_PER_MINUTE: u32 = 10;

struct Env {
    switch: SwitchUnderTest,
    /// A second CA, with a certificate for bank 1 the switch must refuse.
    foreign: PathBuf,
}

impl std::ops::Deref for Env {
    type Target = SwitchUnderTest;
    fn deref(&self) -> &SwitchUnderTest {
        &self.switch
    }
}

impl std::ops::DerefMut for Env {
    fn deref_mut(&mut self) -> &mut SwitchUnderTest {
        &mut self.switch
    }
}

impl Env {
    async fn count_keys(&self) -> i64 {
        self.db.query_one("SELECT count(*) FROM keys", &[]).await.unwrap().get(0)
    }
}

async fn setup() -> Env {
    let limits = Limits { lookups_per_minute_per_user: PER_USER_LOOKUPS_PER_MINUTE, ..Default::default() };
    let switch = SwitchUnderTest::start("switch", &[(BANK1, "FlexiBank North"), (BANK2, "Harbour Bank")], limits).await;
    assert!(!flexibank_switch::add_bank(&switch.database, BANK2, "Harbour Bank").await.unwrap(), "an id is registered once");
    let renamed = flexibank_switch::add_bank(&switch.database, BANK2, "Not Harbour Bank").await.unwrap_err().to_string();
    assert!(renamed.contains("a member already as \"Harbour Bank\""), "{renamed}");
    // A certificate from the consortium CA for a bank that is not a member.
    pki::issue_bank_cert(&switch.tls, STRANGER).unwrap();
    let foreign = switch.dir.join("foreign-ca");
    assert!(pki::init_ca(&foreign).unwrap());
    pki::issue_bank_cert(&foreign, BANK1).unwrap();
    Env { switch, foreign }
}

fn key(key_type: &str, value: Option<&str>, account: &str) -> Value {
    let mut body = json!({"type": key_type, "account_number": account, "account_kind": "savings", "holder_name": "Bina Mehta"});
    if let Some(value) = value {
        body["value"] = json!(value);
    }
    body
}

async fn register(env: &Env, client: &Client, bank: &str, body: &Value) -> (StatusCode, Value) {
    send(client.post(env.url(&format!("/switch/v1/banks/{bank}/keys"))).json(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_with_mutual_tls_and_the_key_directory() {
    let mut env = setup().await;
    mutual_tls(&env).await;
    acting_for_another_bank(&env).await;
    registering_and_deleting(&env).await;
    lookups(&env).await;
    concurrent_registrations(&env).await;
    env.switch.switch.take().unwrap().shutdown().await.unwrap();
}

async fn mutual_tls(env: &Env) {
    let ca = env.tls.join(pki::CA_CERT_FILE);
    let anonymous = pki::switch_client(&ca, None, Duration::from_secs(10)).unwrap();
    let refused = anonymous.get(env.url("/healthz")).send().await;
    assert!(refused.is_err(), "no client certificate, yet an answer: {refused:?}");

    let foreign_identity = pki::client_identity(&env.foreign.join(pki::bank_cert_file(BANK1)), &env.foreign.join(pki::bank_key_file(BANK1))).unwrap();
    let foreign = pki::switch_client(&ca, Some(foreign_identity), Duration::from_secs(10)).unwrap();
    let refused = foreign.get(env.url("/healthz")).send().await;
    assert!(refused.is_err(), "a certificate from another CA, yet an answer: {refused:?}");
    // Not even its own bank's paths.
    let refused = foreign.post(env.url(&format!("/switch/v1/banks/{BANK1}/keys"))).json(&key("phone", Some("+14155550100"), "X1")).send().await;
    assert!(refused.is_err(), "{refused:?}");

    let bank1 = env.bank(BANK1);
    assert_eq!(send(bank1.get(env.url("/healthz"))).await.0, StatusCode::OK);
    assert_eq!(send(bank1.get(env.url("/readyz"))).await.0, StatusCode::OK);
    assert_problem(&send(bank1.get(env.url("/nowhere"))).await, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(env.count_keys().await, 0);
}

async fn acting_for_another_bank(env: &Env) {
    let bank1 = env.bank(BANK1);
    let answer = register(env, &bank1, BANK2, &key("phone", Some("+14155550100"), "200000000001")).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    // Refused before the body is read: a malformed one is still 403.
    let answer = send(bank1.post(env.url(&format!("/switch/v1/banks/{BANK2}/keys"))).body("{not json")).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    let answer =
        send(bank1.get(env.url(&format!("/switch/v1/banks/{BANK2}/directory"))).query(&[("type", "phone"), ("value", "+14155550100"), ("user", "u")])).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    let answer = send(bank1.delete(env.url(&format!("/switch/v1/banks/{BANK2}/keys/phone/+14155550100")))).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    // A bank that is not a member (its certificate is genuine) and a path that is no bank id.
    let stranger = env.bank(STRANGER);
    let answer = register(env, &stranger, STRANGER, &key("phone", Some("+14155550100"), "900000000001")).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
    let answer = register(env, &stranger, BANK1, &key("phone", Some("+14155550100"), "900000000001")).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    let answer = register(env, &bank1, "1", &key("phone", Some("+14155550100"), "100000000001")).await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(env.count_keys().await, 0, "nothing was stored");
}

async fn registering_and_deleting(env: &Env) {
    let (bank1, bank2) = (env.bank(BANK1), env.bank(BANK2));
    let account = "100000000001";

    let (status, phone) = register(env, &bank1, BANK1, &key("phone", Some("+919876543210"), account)).await;
    assert_eq!(status, StatusCode::CREATED, "{phone}");
    assert_eq!(
        phone,
        json!({"type": "phone", "value": "+919876543210", "bank_id": BANK1, "account_number": account, "account_kind": "savings", "holder_name": "Bina Mehta"})
    );
    let (status, email) = register(env, &bank1, BANK1, &key("email", Some("Bina.Mehta@Example.COM"), account)).await;
    assert_eq!((status, email["value"].as_str().unwrap()), (StatusCode::CREATED, "bina.mehta@example.com"));
    let (status, national) = register(env, &bank1, BANK1, &key("national_id", Some("ABCDE-1234F"), account)).await;
    assert_eq!((status, national["value"].as_str().unwrap()), (StatusCode::CREATED, "ABCDE-1234F"));
    let (status, random) = register(env, &bank1, BANK1, &key("random", None, account)).await;
    assert_eq!(status, StatusCode::CREATED, "{random}");
    let made = random["value"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(made).unwrap();
    assert_eq!((uuid.get_version_num(), uuid.hyphenated().to_string()), (4, made.to_string()), "a lowercase hyphenated UUID v4");

    // The same key for the same account again: idempotent.
    let again = register(env, &bank1, BANK1, &key("email", Some("bina.mehta@example.com"), account)).await;
    assert_eq!(again, (StatusCode::OK, email.clone()));

    // Formats.
    let bad = [
        key("phone", Some("9876543210"), account),
        key("phone", Some("+0123456789"), account),
        key("phone", Some("+1234567"), account),
        key("email", Some("bina at example.com"), account),
        key("email", Some("bina@example"), account),
        key("email", Some(&format!("{}@example.com", "a".repeat(250))), account),
        key("national_id", Some("ABC 123"), account),
        key("national_id", Some(&"A".repeat(65)), account),
        key("random", Some("not-a-uuid"), account),
        key("random", Some("6f9619ff-8b86-1d01-b42d-00cf4fc964ff"), account),
        key("phone", None, account),
        key("passport", Some("X1"), account),
        key("phone", Some("+14155550101"), ""),
        json!({"type": "phone", "value": "+14155550101", "account_number": account, "account_kind": "savings", "holder_name": "B", "extra": 1}),
        json!({"type": "phone", "value": "+14155550101", "account_number": account, "account_kind": "gold", "holder_name": "B"}),
        json!({"type": "phone", "value": "+14155550101", "account_number": account, "account_kind": "savings"}),
    ];
    for body in &bad {
        assert_problem(&register(env, &bank1, BANK1, body).await, StatusCode::BAD_REQUEST, "validation_failed");
    }
    let answer = send(bank1.post(env.url(&format!("/switch/v1/banks/{BANK1}/keys"))).header("content-type", "application/json").body("{not json")).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "validation_failed");
    // Its own connection: refused unread, the body leaves the connection closed behind the answer,
    // and a next request on it could go out before the client sees the close.
    let answer = send(env.bank(BANK1).post(env.url(&format!("/switch/v1/banks/{BANK1}/keys"))).header("content-type", "application/json").body(vec![b' '; 64 * 1024]))
        .await;
    assert_problem(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // Five keys per account; the sixth is refused.
    let (status, _) = register(env, &bank1, BANK1, &key("random", None, account)).await;
    assert_eq!(status, StatusCode::CREATED);
    let answer = register(env, &bank1, BANK1, &key("email", Some("bina@example.org"), account)).await;
    assert_problem(&answer, StatusCode::CONFLICT, "key_limit_reached");
    // A business account holds more.
    for n in 0..6 {
        let mut body = key("national_id", Some(&format!("BIZ-{n}")), "100000000099");
        body["account_kind"] = json!("business");
        assert_eq!(register(env, &bank1, BANK1, &body).await.0, StatusCode::CREATED);
    }

    // One key, one account in the whole consortium.
    let answer = register(env, &bank2, BANK2, &key("phone", Some("+919876543210"), "200000000001")).await;
    assert_problem(&answer, StatusCode::CONFLICT, "key_taken");
    let answer = register(env, &bank1, BANK1, &key("phone", Some("+919876543210"), "100000000002")).await;
    assert_problem(&answer, StatusCode::CONFLICT, "key_taken");

    // Only the holder deletes it; then it is free for anyone.
    let phone_path = format!("keys/phone/{}", "+919876543210");
    let answer = send(bank2.delete(env.url(&format!("/switch/v1/banks/{BANK2}/{phone_path}")))).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
    let answer = send(bank1.delete(env.url(&format!("/switch/v1/banks/{BANK1}/{phone_path}")))).await;
    assert_eq!(answer.0, StatusCode::NO_CONTENT, "{}", answer.1);
    let answer = send(bank1.delete(env.url(&format!("/switch/v1/banks/{BANK1}/{phone_path}")))).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found");
    let (status, taken) = register(env, &bank2, BANK2, &key("phone", Some("+919876543210"), "200000000001")).await;
    assert_eq!((status, taken["bank_id"].as_str().unwrap()), (StatusCode::CREATED, BANK2));
    // The freed place on bank 1's account can take another key.
    let (status, _) = register(env, &bank1, BANK1, &key("email", Some("bina@example.org"), account)).await;
    assert_eq!(status, StatusCode::CREATED);
    let stored: i64 = env.db.query_one("SELECT count(*) FROM keys WHERE bank_id = $1 AND account_number = $2", &[&BANK1, &account]).await.unwrap().get(0);
    assert_eq!(stored, 5);
}

async fn lookups(env: &Env) {
    let bank2 = env.bank(BANK2);
    let lookup = |value: &str, user: &str| {
        bank2.get(env.url(&format!("/switch/v1/banks/{BANK2}/directory"))).query(&[("type", "email"), ("value", value), ("user", user)])
    };
    let (status, entry) = send(lookup("BINA.MEHTA@example.com", "customer-1")).await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(
        entry,
        json!({"bank_id": BANK1, "bank_name": "FlexiBank North", "holder_name_masked": "B••• M••••", "account_number_masked": "••••0001"}),
        "masked data only"
    );
    let (status, entry) = send(bank2.get(env.url(&format!("/switch/v1/banks/{BANK2}/directory"))).query(&[
        ("type", "phone"),
        ("value", "+919876543210"),
        ("user", "customer-1"),
    ]))
    .await;
    assert_eq!((status, entry["bank_id"].as_str().unwrap()), (StatusCode::OK, BANK2));
    assert_problem(&send(lookup("nobody@example.com", "customer-1")).await, StatusCode::NOT_FOUND, "not_found");
    assert_problem(&send(lookup("not an email", "customer-1")).await, StatusCode::BAD_REQUEST, "validation_failed");
    let no_user = bank2.get(env.url(&format!("/switch/v1/banks/{BANK2}/directory"))).query(&[("type", "email"), ("value", "a@b.c")]);
    assert_problem(&send(no_user).await, StatusCode::BAD_REQUEST, "validation_failed");

    // One customer: its burst, then 429 with Retry-After; another customer is not held up.
    for n in 0..PER_USER_LOOKUPS_PER_MINUTE {
        let (status, _) = send(lookup(&format!("probe{n}@example.com"), "enumerator")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let response = lookup("bina.mehta@example.com", "enumerator").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(send(lookup("bina.mehta@example.com", "customer-2")).await.0, StatusCode::OK);
    // The same customer id at another bank is another customer.
    let bank1 = env.bank(BANK1);
    let answer = send(bank1.get(env.url(&format!("/switch/v1/banks/{BANK1}/directory"))).query(&[
        ("type", "email"),
        ("value", "bina.mehta@example.com"),
        ("user", "enumerator"),
    ]))
    .await;
    assert_eq!(answer.0, StatusCode::OK);
}

async fn concurrent_registrations(env: &Env) {
    let (bank1, bank2) = (env.bank(BANK1), env.bank(BANK2));
    let requests = (0..16).map(|n| {
        let (client, bank) = if n % 2 == 0 { (bank1.clone(), BANK1) } else { (bank2.clone(), BANK2) };
        let url = env.url(&format!("/switch/v1/banks/{bank}/keys"));
        let body = key("email", Some("race@example.com"), &format!("3000000000{n:02}"));
        tokio::spawn(async move { send(client.post(url).json(&body)).await })
    });
    let answers: Vec<(StatusCode, Value)> = futures_join(requests.collect()).await;
    let created = answers.iter().filter(|a| a.0 == StatusCode::CREATED).count();
    let taken = answers.iter().filter(|a| a.0 == StatusCode::CONFLICT && a.1["code"] == "key_taken").count();
    assert_eq!((created, taken), (1, 15), "{answers:?}");
    let rows: i64 = env.db.query_one("SELECT count(*) FROM keys WHERE type = 'email' AND value = 'race@example.com'", &[]).await.unwrap().get(0);
    assert_eq!(rows, 1);
}

async fn futures_join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("request task"));
    }
    results
}
