//! Confirmation of payee and saved payees (issue 18, the contract's "Everyday
//! banking"), and the account-opening notices: against the real server and
//! database. A look-up shows only a masked name, answers the same for every
//! kind of "no", is audited, and is limited per customer across every server
//! process (checked with two processes and concurrent callers).

use std::{collections::BTreeMap, sync::Arc};

use flexibank_tests::{consortium::BankProcess, json, masked_name, Session, StackOptions, TestStack};
use uuid::Uuid;

async fn audit_outcomes(stack: &TestStack, actor: Uuid, action: &str) -> BTreeMap<String, i64> {
    let db = stack.superuser(&stack.primary_name()).await;
    db.query(
        "SELECT outcome, count(*) FROM audit_log WHERE actor_id = $1 AND action = $2 GROUP BY outcome",
        &[&actor, &action],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

async fn user_id(session: &Session) -> Uuid {
    session.get("/v1/auth/session").await.body["id"].as_str().unwrap().parse().unwrap()
}

async fn notices(session: &Session, kind: &str) -> Vec<serde_json::Value> {
    let page = session.get("/v1/notifications?limit=100").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body["items"].as_array().unwrap().iter().filter(|n| n["kind"] == kind).cloned().collect()
}

const LIMITED: StackOptions = StackOptions {
    replicas: 1,
    sync: true,
    configure: |config| {
        config.security.lookups_per_window = 6;
        config.security.lookup_window_s = 3600;
    },
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lookup_shows_a_masked_holder_is_audited_and_limited_across_processes() {
    let stack = TestStack::start_with("payees-lookup", LIMITED).await;
    let alice = stack.login("alice").await;
    let alice_id = user_id(&alice).await;
    let bob_number = stack.user("bob").account_numbers[0].clone();
    let joint_number = stack.user("bob").account_numbers[1].clone();

    let found = alice.get(&format!("/v1/accounts/lookup?number={bob_number}")).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["holder_name_masked"], masked_name("Bob Mehta"));
    assert_eq!(found.body["account_number_masked"], format!("••••{}", &bob_number[bob_number.len() - 4..]));
    assert!(
        !found.body.to_string().contains("Mehta") && !found.body.to_string().contains(&bob_number),
        "nothing unmasked: {}",
        found.body
    );
    let joint = alice.get(&format!("/v1/accounts/lookup?number={joint_number}")).await;
    assert_eq!(
        joint.body["holder_name_masked"],
        format!("{} & {}", masked_name("Alice Fernandes"), masked_name("Bob Mehta")),
        "joint holders, both masked"
    );

    // Every kind of "no" is the same 404: a vault, an unknown number; a malformed one is a 400.
    let db = stack.superuser(&stack.primary_name()).await;
    let vault: String = db
        .query_one("SELECT number FROM accounts WHERE kind = 'vault' LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    alice.get(&format!("/v1/accounts/lookup?number={vault}")).await.assert_problem(404, "not_found");
    alice.get("/v1/accounts/lookup?number=99999999999").await.assert_problem(404, "not_found");
    alice.get("/v1/accounts/lookup?number=12%2034").await.assert_problem(400, "validation_failed");
    alice.get("/v1/accounts/lookup").await.assert_problem(400, "validation_failed");
    alice
        .get(&format!("/v1/accounts/lookup?number={bob_number}&extra=1"))
        .await
        .assert_problem(400, "validation_failed");
    stack
        .anon()
        .get(&format!("/v1/accounts/lookup?number={bob_number}"))
        .await
        .assert_problem(401, "unauthenticated");
    let admin = stack.login("admin").await;
    admin
        .get(&format!("/v1/accounts/lookup?number={bob_number}"))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        audit_outcomes(&stack, alice_id, "account.lookup").await,
        BTreeMap::from([("success".into(), 2), ("failure".into(), 2)]),
        "each look-up that reached the bank is audited (malformed ones never did)"
    );

    // 4 of alice's 6 are spent. 16 more at once, half through a second server process on the same
    // database: exactly 2 more are answered, the rest refused with Retry-After, each refusal audited.
    let second = BankProcess::start(&stack, "payees-second").await;
    let alice = Arc::new(alice);
    let through_second = Arc::new(second.session(&alice));
    let calls = (0..16).map(|i| {
        let session = if i % 2 == 0 { alice.clone() } else { through_second.clone() };
        let path = format!("/v1/accounts/lookup?number={bob_number}");
        tokio::spawn(async move { session.get(&path).await })
    });
    let mut statuses = BTreeMap::new();
    for call in calls {
        let r = call.await.unwrap();
        if r.status == 429 {
            r.assert_problem(429, "rate_limited");
            assert!(
                r.header("retry-after")
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|s| (1..=3600).contains(&s)),
                "{:?}",
                r.headers
            );
        }
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(200, 2), (429, 14)]), "one allowance across both processes");
    let audited = audit_outcomes(&stack, alice_id, "account.lookup").await;
    assert_eq!((audited["success"], audited["denied"]), (4, 14), "{audited:?}");

    // Saving a payee reveals a name too: it shares the allowance. Bob's is his own.
    let refused = alice.post("/v1/payees", json!({"account_number": bob_number, "nickname": "Bob"}), None).await;
    refused.assert_problem(429, "rate_limited");
    assert_eq!(alice.get("/v1/payees").await.body["items"], json!([]), "a refused payee is not saved");
    let bob = stack.login("bob").await;
    let alice_number = stack.user("alice").account_numbers[0].clone();
    assert_eq!(bob.get(&format!("/v1/accounts/lookup?number={alice_number}")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payees_are_saved_once_listed_deleted_and_announced() {
    let stack = TestStack::start("payees").await;
    let alice = Arc::new(stack.login("alice").await);
    let alice_id = user_id(&alice).await;
    let bob = stack.login("bob").await;
    let bob_number = stack.user("bob").account_numbers[0].clone();

    // Bad input: a clear 400, nothing saved.
    for bad in [
        json!({"nickname": "Nobody"}),
        json!({"account_number": bob_number, "key": {"type": "random", "value": "x"}, "nickname": "Both"}),
        json!({"account_number": bob_number, "nickname": ""}),
        json!({"account_number": bob_number, "nickname": " Bob"}),
        json!({"account_number": bob_number, "nickname": "x".repeat(65)}),
        json!({"account_number": bob_number, "nickname": "Bob\u{7}"}),
        json!({"account_number": "12-34", "nickname": "Bob"}),
        json!({"account_number": bob_number, "nickname": "Bob", "extra": true}),
    ] {
        alice.post("/v1/payees", bad.clone(), None).await.assert_problem(400, "validation_failed");
    }
    alice
        .post("/v1/payees", json!({"account_number": "99999999999", "nickname": "Ghost"}), None)
        .await
        .assert_problem(404, "not_found");
    // A key payee needs a consortium: this bank is in none.
    alice
        .post(
            "/v1/payees",
            json!({"key": {"type": "random", "value": Uuid::new_v4()}, "nickname": "Key"}),
            None,
        )
        .await
        .assert_problem(404, "not_found");
    assert_eq!(alice.get("/v1/payees").await.body["items"], json!([]));

    // 12 concurrent saves of the same payee: one 201, the rest 200 with that payee; one row, one notice.
    let saves = (0..12).map(|_| {
        let alice = alice.clone();
        let body = json!({"account_number": bob_number, "nickname": "Bob rent"});
        tokio::spawn(async move { alice.post("/v1/payees", body, None).await })
    });
    let mut created = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for save in saves {
        let r = save.await.unwrap();
        assert!(r.status == 201 || r.status == 200, "{} {}", r.status, r.body);
        if r.status == 201 {
            created.push(r.body.clone());
        }
        ids.insert(r.body["id"].as_str().unwrap().to_string());
    }
    assert_eq!((created.len(), ids.len()), (1, 1), "saved once: {created:?} {ids:?}");
    let payee = &created[0];
    assert_eq!(payee["nickname"], "Bob rent");
    assert_eq!(payee["holder_name_masked"], masked_name("Bob Mehta"));
    assert_eq!(payee["account_number_masked"], format!("••••{}", &bob_number[bob_number.len() - 4..]));
    assert_eq!(payee["account_number"], bob_number.as_str());
    assert_eq!(payee["key"], serde_json::Value::Null);
    let notices = notices(&alice, "payee.added").await;
    assert_eq!(notices.len(), 1, "one security notice: {notices:?}");
    assert_eq!(
        (notices[0]["critical"].as_bool(), notices[0]["payload"]["nickname"].as_str()),
        (Some(true), Some("Bob rent"))
    );
    assert_eq!(audit_outcomes(&stack, alice_id, "payee.add").await, BTreeMap::from([("success".into(), 1)]));

    let listed = alice.get("/v1/payees").await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1), "{}", listed.body);
    assert_eq!(listed.body["items"][0]["id"], payee["id"]);
    assert_eq!(bob.get("/v1/payees").await.body["items"], json!([]), "payees are per customer");

    // Only its owner deletes it; the second delete is a 404.
    let path = format!("/v1/payees/{}", payee["id"].as_str().unwrap());
    bob.delete(&path).await.assert_problem(404, "not_found");
    assert_eq!(alice.delete(&path).await.status, 204);
    alice.delete(&path).await.assert_problem(404, "not_found");
    alice.delete("/v1/payees/not-a-uuid").await.assert_problem(400, "validation_failed");
    assert_eq!(alice.get("/v1/payees").await.body["items"], json!([]));
    assert_eq!(audit_outcomes(&stack, alice_id, "payee.delete").await, BTreeMap::from([("success".into(), 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_hear_of_an_account_opened_in_their_name_and_of_every_owner_added() {
    let stack = TestStack::start("account-notices").await;
    let admin = stack.login("admin").await;
    let (alice, bob) = (stack.login("alice").await, stack.login("bob").await);
    let (alice_id, bob_id) = (user_id(&alice).await, user_id(&bob).await);

    let opened = admin
        .post(
            "/v1/admin/accounts",
            json!({"owner_ids": [alice_id], "kind": "savings", "currency": "INR"}),
            None,
        )
        .await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let number = opened.body["number"].as_str().unwrap().to_string();
    let account_id = opened.body["id"].as_str().unwrap().to_string();
    let last4 = format!("••••{}", &number[number.len() - 4..]);
    stack.replicas_caught_up().await;
    let alice_opened = notices(&alice, "account.opened").await;
    assert_eq!(alice_opened.len(), 1, "{alice_opened:?}");
    assert_eq!(
        alice_opened[0]["payload"],
        json!({"account": last4, "kind": "savings", "currency": "INR", "joint": false})
    );
    assert!(notices(&bob, "account.opened").await.is_empty());

    // Bob added: he hears he owns it, alice that someone was added; both in the audit.
    let added = admin
        .post(&format!("/v1/admin/accounts/{account_id}/owners"), json!({"user_id": bob_id}), None)
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["owners"].as_array().map(Vec::len), Some(2));
    stack.replicas_caught_up().await;
    let bob_opened = notices(&bob, "account.opened").await;
    assert_eq!(bob_opened.len(), 1);
    assert_eq!(bob_opened[0]["payload"]["joint"], true);
    let alice_added = notices(&alice, "account.owner_added").await;
    assert_eq!(alice_added.len(), 1);
    assert_eq!(alice_added[0]["payload"], json!({"account": last4, "owner": "Bob Mehta"}));
    // Bob can use it now.
    assert_eq!(bob.get(&format!("/v1/accounts/{account_id}")).await.status, 200);

    // Again: nothing changes, nobody is told twice. Bad input and strangers: refused, nothing changes.
    let again = admin
        .post(&format!("/v1/admin/accounts/{account_id}/owners"), json!({"user_id": bob_id}), None)
        .await;
    assert_eq!(again.status, 200);
    admin
        .post(&format!("/v1/admin/accounts/{account_id}/owners"), json!({"user_id": Uuid::new_v4()}), None)
        .await
        .assert_problem(404, "not_found");
    admin
        .post(&format!("/v1/admin/accounts/{}/owners", Uuid::new_v4()), json!({"user_id": bob_id}), None)
        .await
        .assert_problem(404, "not_found");
    admin
        .post(&format!("/v1/admin/accounts/{account_id}/owners"), json!({"user": bob_id}), None)
        .await
        .assert_problem(400, "validation_failed");
    alice
        .post(&format!("/v1/admin/accounts/{account_id}/owners"), json!({"user_id": bob_id}), None)
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        (notices(&bob, "account.opened").await.len(), notices(&alice, "account.owner_added").await.len()),
        (1, 1)
    );
    let admin_id = user_id(&admin).await;
    assert_eq!(
        audit_outcomes(&stack, admin_id, "admin.account_owner_added").await,
        BTreeMap::from([("success".into(), 1)])
    );

    // A joint account opened for both: each is told it is joint.
    let joint = admin
        .post(
            "/v1/admin/accounts",
            json!({"owner_ids": [alice_id, bob_id], "kind": "current", "currency": "USD"}),
            None,
        )
        .await;
    assert_eq!(joint.status, 201);
    stack.replicas_caught_up().await;
    for session in [&alice, &bob] {
        let opened = notices(session, "account.opened").await;
        assert!(
            opened.iter().any(|n| n["payload"]["joint"] == true && n["payload"]["currency"] == "USD"),
            "{opened:?}"
        );
    }
}
