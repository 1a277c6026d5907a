//! Each stored function has one home, `sql/functions/<name>.sql`, and the
//! database runs exactly what those files say; a database made before they
//! existed (its functions as the versioned migrations left them) upgrades.

use flexibank_tests::TestStack;

/// The function definitions of `file`, as PostgreSQL prints them back.
fn statements(file: &str) -> String {
    file.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n").trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stored_function_is_the_one_in_its_file_and_old_databases_upgrade() {
    let stack = TestStack::start("stored-functions").await;
    let db = stack.superuser("primary").await;
    let dir = flexibank_tests::workspace_root().join("sql/functions");
    let names: Vec<String> = db
        .query("SELECT DISTINCT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(names.len() >= 20, "{names:?}");
    let definition = |name: String| {
        let db = &db;
        async move {
            db.query_one(
                "SELECT string_agg(pg_get_functiondef(p.oid) || ';', E'\\n\\n' ORDER BY pg_get_function_identity_arguments(p.oid))
                   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.proname = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get::<_, String>(0)
            .trim()
            .to_string()
        }
    };
    for name in &names {
        let file = std::fs::read_to_string(dir.join(format!("{name}.sql")))
            .unwrap_or_else(|_| panic!("{name}() has no file sql/functions/{name}.sql"));
        assert_eq!(definition(name.clone()).await, statements(&file), "{name}() differs from its file");
    }

    // A database as today's main left it: no record of the files, and a
    // function as an older migration defined it.
    db.batch_execute(
        "DROP TABLE stored_function_files;
         CREATE OR REPLACE FUNCTION public.rfc3339(ts timestamptz) RETURNS text LANGUAGE sql IMMUTABLE
           AS $$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') $$;",
    )
    .await
    .unwrap();
    flexibank_server::db::Db::migrate(&stack.config.database).await.expect("the upgrade applies");
    let file = std::fs::read_to_string(dir.join("rfc3339.sql")).unwrap();
    assert_eq!(definition("rfc3339".into()).await, statements(&file), "the file's definition is back");
    let recorded: i64 = db.query_one("SELECT count(*) FROM stored_function_files", &[]).await.unwrap().get(0);
    assert_eq!(recorded as usize, flexibank_server::stored_functions::FILES.len());

    // Nothing changed: nothing is applied again.
    let before: Vec<String> = db.query("SELECT applied_at::text FROM stored_function_files ORDER BY name", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    flexibank_server::db::Db::migrate(&stack.config.database).await.unwrap();
    let after: Vec<String> = db.query("SELECT applied_at::text FROM stored_function_files ORDER BY name", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(before, after, "unchanged files are not applied again");

    // The bank works on the upgraded functions.
    let alice = stack.login("alice").await;
    let from = stack.account_id(&stack.user("alice").account_numbers[0]).await;
    let moved = alice
        .post_money("/v1/transfers", flexibank_tests::json!({"from_account_id": from, "to_account_number": stack.user("bob").account_numbers[0], "amount": "1.00"}))
        .await;
    assert_eq!(moved.status, 201, "{}", moved.body);
    stack.assert_ledger_invariants().await;
}
