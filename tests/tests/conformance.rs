//! OpenAPI conformance: Schemathesis (`st`) against the document the server
//! publishes at `GET /v1/openapi.json`, once per role with a session of that
//! role, restricted to the operations the role may use (by tag). Every phase
//! (examples, coverage, fuzzing, stateful) and every check runs; a failure
//! fails the test with the tail of st's output. Money is moved for real, so
//! the ledger's invariants are checked afterwards.
//!
//! `make test` installs st into var/venv/schemathesis and names it in
//! `FLEXIBANK_SCHEMATHESIS`. Knobs (environment):
//! - `FLEXIBANK_SCHEMATHESIS_SECONDS`: st's time budget per role (50);
//! - `FLEXIBANK_SCHEMATHESIS_SEED`: the seed (20261130), or `random` for one
//!   from the clock, printed so a failure can be replayed (`make fuzz`);
//! - `FLEXIBANK_SCHEMATHESIS_ROLES`: only these roles, comma-separated
//!   (customer, branch-admin, dba), and `FLEXIBANK_SCHEMATHESIS_ARGS`: more
//!   st arguments, split on spaces, to look into one failure (e.g.
//!   `--exclude-path-regex ^/v1/(me|notifications)`; an `--include-*` adds
//!   to the role's tags rather than narrowing them).
//!
//! Reports (JUnit XML, and st's output when it failed) are kept in
//! var/test/schemathesis/<role>/.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use flexibank_tests::{workspace_root, TestStack};

const DEFAULT_SEED: u64 = 20261130;
const DEFAULT_SECONDS: u64 = 50;
/// How much of st's output (its failures list and summary) a failure shows.
const TAIL_LINES: usize = 150;

struct Role {
    name: &'static str,
    username: &'static str,
    tags: &'static [&'static str],
}

/// In this order: the branch admin's run may reset a customer's MFA or
/// freeze accounts, which the customer's run has finished with by then.
const ROLES: &[Role] = &[
    Role {
        name: "customer",
        username: "alice",
        tags: &["customer", "notifications", "auth", "ops"],
    },
    Role {
        name: "dba",
        username: "dba",
        tags: &["dba", "auth"],
    },
    Role {
        name: "branch-admin",
        username: "admin",
        tags: &["admin", "notifications", "auth"],
    },
];

fn schemathesis_bin() -> PathBuf {
    let st = match std::env::var_os("FLEXIBANK_SCHEMATHESIS") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => workspace_root().join("var/venv/schemathesis/bin/st"),
    };
    assert!(
        st.is_file(),
        "Schemathesis not found at {} (FLEXIBANK_SCHEMATHESIS): run `make test`, which installs it \
         into var/venv/schemathesis from tests/schemathesis/requirements.txt",
        st.display()
    );
    st
}

fn seed() -> u64 {
    match std::env::var("FLEXIBANK_SCHEMATHESIS_SEED") {
        Ok(v) if v.trim() == "random" => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let seed = (nanos % 1_000_000_000_000) as u64;
            println!("schemathesis seed: {seed} (replay with FLEXIBANK_SCHEMATHESIS_SEED={seed})");
            seed
        }
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| {
            panic!("FLEXIBANK_SCHEMATHESIS_SEED={v:?}: expected an integer or `random`")
        }),
        _ => DEFAULT_SEED,
    }
}

fn seconds() -> u64 {
    match std::env::var("FLEXIBANK_SCHEMATHESIS_SECONDS") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse() {
            Ok(s) if s >= 1 => s,
            _ => panic!("FLEXIBANK_SCHEMATHESIS_SECONDS={v:?}: expected a whole number of seconds, at least 1"),
        },
        _ => DEFAULT_SECONDS,
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// PYTHONPATH with tests/schemathesis (the hooks module) first.
fn python_path(hooks_dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![hooks_dir.to_path_buf()];
    if let Some(existing) = std::env::var_os("PYTHONPATH") {
        paths.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(paths).expect("PYTHONPATH")
}

/// One st run for `role` with its session; `Err` holds what to report.
async fn run_role(
    stack: &TestStack,
    st: &Path,
    role: &Role,
    token: &str,
    seed: u64,
    seconds: u64,
) -> Result<(), String> {

    let log_path = stack.dir().join(format!("schemathesis-{}.log", role.name));
    let log = std::fs::File::create(&log_path).expect("st log file");
    let report_dir = workspace_root()
        .join("var/test/schemathesis")
        .join(role.name);
    let _ = std::fs::remove_dir_all(&report_dir);
    std::fs::create_dir_all(&report_dir).expect("report dir");
    let hooks_dir = workspace_root().join("tests/schemathesis");

    let mut command = tokio::process::Command::new(st);
    command
        // 428 for a missing Idempotency-Key and 413 for a body over the
        // limit are the contract's refusals (st's defaults omit them).
        .arg("--config-file")
        .arg(hooks_dir.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/v1/openapi.json", stack.base_url))
        .arg("--url")
        .arg(&stack.base_url)
        .arg("--tls-verify")
        .arg(&stack.ca_cert)
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .args([
            "--seed",
            &seed.to_string(),
            "--max-time",
            &seconds.to_string(),
        ])
        .args([
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--checks",
            "all",
        ])
        // Logout would end the session the run uses; promote would turn
        // the replica into a second primary.
        .args([
            "--exclude-path",
            "/v1/auth/logout",
            "--exclude-path",
            "/v1/dba/promote",
        ]);
    for tag in role.tags {
        command.args(["--include-tag", tag]);
    }
    if let Ok(extra) = std::env::var("FLEXIBANK_SCHEMATHESIS_ARGS") {
        command.args(extra.split_whitespace());
    }
    command
        .args(["--workers", "2", "--report", "junit", "--report-dir"])
        .arg(&report_dir)
        // A fixed name (st's default carries a timestamp).
        .arg("--report-junit-path")
        .arg(report_dir.join("junit.xml"))
        .arg("--no-color")
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", python_path(&hooks_dir))
        // No __pycache__ in tests/schemathesis.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // Hypothesis keeps its example database in the working directory:
        // the stack's, removed with it.
        .current_dir(stack.dir())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("st log file"))
        .stderr(log)
        .kill_on_drop(true);

    println!(
        "schemathesis as {} ({}): tags {:?}, seed {seed}, {seconds} s",
        role.name, role.username, role.tags
    );
    let started = std::time::Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", st.display()));
    // st's --max-time bounds fuzzing and stateful testing; the limit here
    // is for a run that hangs regardless.
    let limit = Duration::from_secs(seconds * 2 + 300);
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => Some(status.expect("waiting for st")),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let output =
        String::from_utf8_lossy(&std::fs::read(&log_path).unwrap_or_default()).into_owned();
    let outcome = match status {
        Some(status) => status.to_string(),
        None => "killed, it ran too long".to_string(),
    };
    println!(
        "schemathesis as {}: {outcome} after {:.0?}",
        role.name,
        started.elapsed()
    );
    match status {
        Some(status) if status.success() => Ok(()),
        _ => {
            let kept = report_dir.join("st.log");
            let _ = std::fs::copy(&log_path, &kept);
            let what = match status {
                Some(status) => format!("exited with {status}"),
                None => format!("did not finish within {limit:?} and was killed"),
            };
            Err(format!(
                "==== schemathesis as {} ({}) {what}; full output: {}, JUnit report: {} ====\n{}",
                role.name,
                role.username,
                kept.display(),
                report_dir.join("junit.xml").display(),
                tail(&output, TAIL_LINES)
            ))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_conformance_per_role() {
    let st = schemathesis_bin();
    let seed = seed();
    let seconds = seconds();
    let only = std::env::var("FLEXIBANK_SCHEMATHESIS_ROLES").unwrap_or_default();
    let only: Vec<&str> = only
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    for name in &only {
        assert!(
            ROLES.iter().any(|r| r.name == *name),
            "FLEXIBANK_SCHEMATHESIS_ROLES: no role {name:?}"
        );
    }
    let stack = TestStack::start("conformance").await;
    let roles: Vec<&Role> = ROLES
        .iter()
        .filter(|r| only.is_empty() || only.contains(&r.name))
        .collect();
    // Every session before any run: the runs fuzz the sign-in, whose
    // failures set off the server's global login backoff (issue 14), so a
    // login between runs could be refused. Distinct users, so no TOTP code
    // is used twice.
    let mut tokens = Vec::new();
    for role in &roles {
        let session = stack.login(role.username).await;
        tokens.push(session.token.clone().expect("session token"));
    }

    let mut failures = Vec::new();
    for (role, token) in roles.iter().zip(&tokens) {
        if let Err(report) = run_role(&stack, &st, role, token, seed, seconds).await {
            failures.push((role.name, report));
        }
    }
    if !failures.is_empty() {
        let names: Vec<_> = failures.iter().map(|(name, _)| *name).collect();
        eprintln!("schemathesis failed as {names:?}; checking the ledger before reporting");
    }
    // Whatever st sent, double entry must hold.
    stack.assert_ledger_invariants().await;
    let report: Vec<_> = failures.into_iter().map(|(_, report)| report).collect();
    assert!(
        report.is_empty(),
        "Schemathesis found problems (seed {seed}):\n{}",
        report.join("\n\n")
    );
}
