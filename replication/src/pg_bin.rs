//! Finding the PostgreSQL binaries and running them as an unprivileged user.
//!
//! PostgreSQL refuses to run as root, so when we are root every server-side
//! tool (initdb, pg_ctl, pg_basebackup, pg_rewind, pg_controldata) runs as the
//! `postgres` system user, or as a `flexibank-pg` system user we create.

use anyhow::{anyhow, bail, Context, Result};
use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use tokio::process::Command;

/// Where Debian/Ubuntu install PostgreSQL 15; checked before `pg_config`/PATH.
const DEFAULT_BINDIR: &str = "/usr/lib/postgresql/15/bin";
/// Environment override for the binary directory.
const BINDIR_ENV: &str = "FLEXIBANK_PG_BINDIR";
/// System user created when we are root and no `postgres` user exists.
const FALLBACK_USER: &str = "flexibank-pg";

/// The uid/gid (and name, for messages) that PostgreSQL processes run as.
#[derive(Clone, Debug)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

/// How to run PostgreSQL tools on this machine.
#[derive(Clone, Debug)]
pub struct PgBin {
    pub bindir: PathBuf,
    /// `None` when we are not root: tools run as ourselves.
    pub run_as: Option<RunAs>,
}

impl PgBin {
    /// Discover binaries and the user to run them as (creating the fallback
    /// system user if we are root and `postgres` does not exist).
    pub fn discover() -> Result<PgBin> {
        let bindir = find_bindir()?;
        // SAFETY: geteuid has no preconditions.
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(unprivileged_user()?)
        } else {
            None
        };
        Ok(PgBin { bindir, run_as })
    }

    /// A command for `<bindir>/<tool>` running as the unprivileged user, with
    /// `cwd` as working directory (the inherited cwd may not be readable by
    /// that user) and no stray libpq environment.
    pub fn command(&self, tool: &str, cwd: &Path) -> Command {
        let mut cmd = Command::new(self.bindir.join(tool));
        cmd.current_dir(cwd)
            .env_remove("PGPASSWORD")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env_remove("PGUSER")
            .env_remove("PGDATABASE")
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(false);
        if let Some(r) = &self.run_as {
            cmd.uid(r.uid).gid(r.gid);
            // libpq looks for ~/.pgpass; root's home is not readable by the user.
            cmd.env("HOME", cwd);
        }
        cmd
    }

    /// Run a command to completion; error (with its stderr/stdout) on failure.
    pub async fn run(&self, mut cmd: Command, what: &str) -> Result<Output> {
        let out = cmd
            .output()
            .await
            .with_context(|| format!("{what}: could not execute"))?;
        if !out.status.success() {
            let output: Vec<String> = [&out.stderr, &out.stdout]
                .iter()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            bail!("{what} failed ({}): {}", out.status, output.join(" | "));
        }
        Ok(out)
    }

    /// Give `path` (and everything below it) to the unprivileged user.
    pub fn chown_tree(&self, path: &Path) -> Result<()> {
        match &self.run_as {
            Some(r) => chown_recursive(path, r.uid, r.gid),
            None => Ok(()),
        }
    }

    /// Give one file to the unprivileged user (after we wrote it as root).
    pub fn chown_file(&self, path: &Path) -> Result<()> {
        if let Some(r) = &self.run_as {
            std::os::unix::fs::lchown(path, Some(r.uid), Some(r.gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    /// Check that the unprivileged user can reach `dir` (every ancestor must be
    /// searchable by it), so we fail with a clear message rather than a
    /// confusing initdb error.
    pub fn check_traversable(&self, dir: &Path) -> Result<()> {
        let Some(r) = &self.run_as else { return Ok(()) };
        for anc in dir.ancestors().skip(1) {
            if anc.as_os_str().is_empty() {
                continue;
            }
            let md = std::fs::metadata(anc).with_context(|| format!("stat {}", anc.display()))?;
            let mode = md.mode();
            let ok = if md.uid() == r.uid {
                mode & 0o100 != 0
            } else if md.gid() == r.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !ok {
                bail!(
                    "user {} (which runs PostgreSQL) cannot traverse {} (mode {:o}); \
                     choose a cluster dir elsewhere or chmod o+x it",
                    r.user,
                    anc.display(),
                    mode & 0o7777
                );
            }
        }
        Ok(())
    }
}

fn find_bindir() -> Result<PathBuf> {
    let has_tools = |d: &Path| d.join("pg_ctl").is_file() && d.join("initdb").is_file();
    if let Some(d) = std::env::var_os(BINDIR_ENV) {
        let d = PathBuf::from(d);
        if has_tools(&d) {
            return Ok(d);
        }
        bail!(
            "{BINDIR_ENV}={} does not contain pg_ctl and initdb",
            d.display()
        );
    }
    let default = PathBuf::from(DEFAULT_BINDIR);
    if has_tools(&default) {
        return Ok(default);
    }
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&d) {
            return Ok(d);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if has_tools(&d) {
                return Ok(d);
            }
        }
    }
    bail!("PostgreSQL binaries not found: tried ${BINDIR_ENV}, {DEFAULT_BINDIR}, `pg_config --bindir` and PATH")
}

fn unprivileged_user() -> Result<RunAs> {
    if let Some(r) = lookup_user("postgres")? {
        return Ok(r);
    }
    if let Some(r) = lookup_user(FALLBACK_USER)? {
        return Ok(r);
    }
    let status = std::process::Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            FALLBACK_USER,
        ])
        .status()
        .context("running useradd")?;
    if !status.success() {
        bail!("useradd {FALLBACK_USER} failed ({status})");
    }
    lookup_user(FALLBACK_USER)?.ok_or_else(|| anyhow!("user {FALLBACK_USER} missing after useradd"))
}

fn lookup_user(name: &str) -> Result<Option<RunAs>> {
    let cname = CString::new(name)?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the duration of the call; getpwnam_r is reentrant.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Ok(None);
    }
    // SAFETY: on success pw_name points into `buf`, NUL-terminated.
    let user = unsafe { CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned();
    Ok(Some(RunAs {
        user,
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    }))
}

fn chown_recursive(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", path.display()))?;
    let md = std::fs::symlink_metadata(path)?;
    if md.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_recursive(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
