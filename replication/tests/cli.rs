//! `flexibank-cluster` as a DBA uses it: psql on a node by its name, and the
//! password file that lets plain psql in without typing the password.

use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::Command};

use flexibank_replication::{Cluster, InitOptions};

/// Kills and removes the cluster when dropped, also when the test fails.
struct Guard(Cluster, PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.destroy_now();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn cli(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flexibank-cluster")).arg("--dir").arg(dir).args(args).output().expect("flexibank-cluster runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dba_opens_psql_on_any_node_by_name_or_with_the_password_file() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../var/test").join(format!("cli-psql-{}", std::process::id()));
    let dir = root.join("pg");
    let cluster = Cluster::init(InitOptions { dir: dir.clone(), replicas: 1, ..Default::default() }).await.expect("cluster init");
    let guard = Guard(cluster, root);
    let cluster = &guard.0;

    let pgpass = dir.join(".pgpass");
    let mode = std::fs::metadata(&pgpass).expect(".pgpass written at init").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the password file is the owner's alone");

    for (node, in_recovery) in [("primary", "f"), ("replica1", "t")] {
        let out = cli(&dir, &["psql", "--node", node, "--", "-Atc", "SELECT pg_is_in_recovery()"]);
        assert!(out.status.success(), "{node}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), in_recovery, "{node}");

        // The README's form: plain psql with PGPASSFILE, no password typed.
        let n = cluster.node(node).unwrap();
        let psql = flexibank_replication::pg_bin::PgBin::discover().unwrap().bindir.join("psql");
        let out = Command::new(psql)
            .env("PGPASSFILE", &pgpass)
            .env_remove("PGPASSWORD")
            .args(["-w", "-h", &n.host, "-p", &n.port.to_string(), "-U", &cluster.config.superuser, &cluster.config.database])
            .args(["-Atc", "SELECT current_user"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{node}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), cluster.config.superuser);
    }

    let out = cli(&dir, &["psql", "--node", "replica9"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no node named \"replica9\""), "{}", String::from_utf8_lossy(&out.stderr));
}
