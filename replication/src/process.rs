//! Postmaster pids: reading postmaster.pid, liveness, signals.
//!
//! Postmasters started by `pg_ctl` are not our children (pg_ctl exits), so we
//! cannot `wait()` for them; we poll `kill(pid, 0)` instead. Whoever adopts
//! them may not reap promptly, so a zombie counts as dead.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Poll interval while waiting for a process to exit.
const POLL_MS: u64 = 50;
/// How long orphaned backends of a dead postmaster may keep its shared
/// memory attached before we give up on clearing its lock file.
const SHM_DETACH_TIMEOUT_MS: u64 = 5_000;

/// First line of `<data_dir>/postmaster.pid`, if the file exists and parses.
pub fn read_pid_file(data_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines()
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|p: &i32| *p > 0)
}

/// True if `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence/permission.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    // /proc/<pid>/stat: "pid (comm) S ..." — comm may contain spaces, so split after ')'.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Send `sig` to `pid`; errors (e.g. already gone) are ignored on purpose.
pub fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Block the thread until `pid` is gone or `timeout_ms` elapses; true if gone.
pub fn wait_exit_blocking(pid: i32, timeout_ms: u64) -> bool {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
    true
}

/// Async version of [`wait_exit_blocking`].
pub async fn wait_exit(pid: i32, timeout_ms: u64) -> bool {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    true
}

/// Remove `postmaster.pid` if its postmaster is dead or a zombie and no
/// process is still attached to its shared memory.
///
/// Postmasters are orphans adopted by pid 1, which may reap them late (seen:
/// ~1.5 s). Until then `kill(pid, 0)` succeeds, so postgres (and pg_rewind's
/// single-user recovery) refuse to start: "lock file postmaster.pid already
/// exists". Removing the file is what postgres does for a dead pid, provided
/// we do its other check ourselves: the SysV segment must have no attachments
/// (orphaned backends exit soon after their postmaster dies).
pub fn clear_stale_pid_file(data_dir: &Path) -> Result<()> {
    let path = data_dir.join("postmaster.pid");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        return Ok(()); // empty/partial file: postgres handles that itself
    };
    if is_alive(pid) {
        return Ok(()); // really running; callers check this first
    }
    // Line 7: "<shm key> <shm id>".
    let shmid = text
        .lines()
        .nth(6)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<i32>().ok());
    let deadline = Instant::now() + Duration::from_millis(SHM_DETACH_TIMEOUT_MS);
    while shmid.is_some_and(shm_in_use) {
        if Instant::now() >= deadline {
            bail!(
                "postmaster {pid} of {} is dead but its shared memory is still in use (orphaned backends?)",
                data_dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
    tracing::info!(pid, path = %path.display(), "removing stale postmaster.pid of a dead postmaster");
    std::fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))
}

fn shm_in_use(shmid: i32) -> bool {
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT only fills `ds`.
    let rc = unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) };
    // EINVAL/EIDRM: segment gone. Anything else: assume in use (be safe).
    if rc != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        return !matches!(errno, Some(libc::EINVAL) | Some(libc::EIDRM));
    }
    ds.shm_nattch > 0
}
