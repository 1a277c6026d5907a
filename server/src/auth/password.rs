//! argon2id password hashing, on a bounded pool of its own threads (`HashPool`):
//! it is deliberately slow and memory-hard, so it must neither stall the async
//! workers nor grow with the number of people trying to log in.

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};

use crate::error::{ApiError, ApiResult, Code};

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer inputs are refused before hashing, so nobody can make us hash
/// megabytes (256 characters are at most 1 KiB of UTF-8).
pub const MAX_PASSWORD_CHARS: usize = 256;

pub fn new_password_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::text::from_json(serde_json::json!({"type": "string", "minLength": MIN_PASSWORD_CHARS, "maxLength": MAX_PASSWORD_CHARS}))
}

/// A password as typed at sign-in: anything up to the same length.
pub fn password_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::text::from_json(serde_json::json!({"type": "string", "maxLength": MAX_PASSWORD_CHARS}))
}

#[derive(Clone, Copy, Debug)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
}

fn hasher(params: Argon2Params) -> Argon2<'static> {
    let params = Params::new(params.memory_kib, params.iterations, 1, None)
        .expect("argon2 parameters are validated at start-up");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn check_new_password(password: &str) -> ApiResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::validation(format!(
            "password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(ApiError::validation(format!("password must be at most {MAX_PASSWORD_CHARS} characters")));
    }
    Ok(())
}

pub fn hash_blocking(password: &str, params: Argon2Params) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher(params)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing cannot fail with valid parameters")
        .to_string()
}

/// Password hashing is a bounded resource: a few dedicated threads (at a
/// lower scheduling priority than the money path), and a short queue in
/// front of them. A request that finds the queue full is refused at once
/// (429 `rate_limited`, `Retry-After`), so a login storm costs at most
/// `threads × argon2 memory` and never waits for the request timeout.
pub struct HashPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
    params: Argon2Params,
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// One per hashing thread and queue place: taken before a login does
    /// any other work, so a refused login costs next to nothing.
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

/// A place at the hashing pool, reserved before a login's database work.
pub struct HashSlot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

type Job = Box<dyn FnOnce() + Send>;

/// `nice` of the hashing threads: the scheduler gives the async workers and
/// PostgreSQL the cores first.
const HASH_THREAD_NICE: i32 = 10;

impl HashPool {
    pub fn new(threads: usize, queue: usize, params: Argon2Params) -> std::io::Result<HashPool> {
        assert!(threads >= 1, "at least one hashing thread");
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(queue);
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        let queued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for index in 0..threads {
            let (receiver, queued) = (receiver.clone(), queued.clone());
            std::thread::Builder::new().name(format!("argon2-{index}")).spawn(move || {
                lower_own_priority();
                loop {
                    let job = receiver.lock().expect("hash queue lock").recv();
                    let Ok(job) = job else { return };
                    let waiting = queued.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) - 1;
                    metrics::gauge!("flexibank_password_hash_queue").set(waiting as f64);
                    job();
                }
            })?;
        }
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(threads + queue));
        Ok(HashPool { jobs, params, queued, slots })
    }

    /// Reserves a place, or refuses at once: 429 `rate_limited` with `Retry-After`.
    pub fn reserve(&self) -> ApiResult<HashSlot> {
        self.slots.clone().try_acquire_owned().map(HashSlot).map_err(|_| {
            metrics::counter!("flexibank_password_hash_refused_total").increment(1);
            ApiError::new(Code::RateLimited, "too many logins are being checked right now; retry in a moment").with_retry_after(1)
        })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queued.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let job: Job = Box::new(move || {
            let _ = answer.send(work());
        });
        if let Err(e) = self.jobs.try_send(job) {
            self.queued.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            return Err(match e {
                std::sync::mpsc::TrySendError::Full(_) => {
                    metrics::counter!("flexibank_password_hash_refused_total").increment(1);
                    ApiError::new(Code::RateLimited, "too many logins are being checked right now; retry in a moment")
                        .with_retry_after(1)
                }
                std::sync::mpsc::TrySendError::Disconnected(_) => ApiError::internal("the password hashing threads are gone"),
            });
        }
        answered.await.map_err(ApiError::internal)
    }

    pub async fn hash(&self, password: String) -> ApiResult<String> {
        let _slot = self.reserve()?;
        let params = self.params;
        self.run(move || hash_blocking(&password, params)).await
    }

    /// Verifies against `stored`, or against a dummy hash of the same cost
    /// when the user does not exist, so both cases take the same time.
    pub async fn verify(&self, _slot: &HashSlot, password: String, stored: Option<String>) -> ApiResult<bool> {
        let params = self.params;
        self.run(move || {
            let user_exists = stored.is_some();
            let dummy;
            let stored = match &stored {
                Some(hash) => hash.as_str(),
                None => {
                    dummy = dummy_hash(params);
                    dummy.as_str()
                }
            };
            let parsed = PasswordHash::new(stored).map_err(ApiError::internal)?;
            // Verify with the parameters embedded in the stored hash.
            let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
            Ok(ok && user_exists)
        })
        .await?
    }
}

fn lower_own_priority() {
    // On Linux a nice value belongs to the thread: this one only.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, HASH_THREAD_NICE) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower the hashing thread's priority");
    }
}

fn dummy_hash(params: Argon2Params) -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking("not a password anyone has", params)).clone()
}
