//! Per-client-address rate limit for the login endpoints (in memory, per
//! server process). Username lockout lives in the database (`login_throttle`)
//! because it must hold across processes.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::error::{ApiError, ApiResult, Code};

const WINDOW: Duration = Duration::from_secs(60);
/// Bound on tracked addresses; past it, expired windows are dropped first.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

pub struct RateLimiter {
    per_window: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter { per_window: per_minute, windows: Mutex::new(HashMap::new()) }
    }

    pub fn check(&self, addr: IpAddr) -> ApiResult<()> {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("rate limiter lock");
        if windows.len() >= MAX_TRACKED_ADDRESSES {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= MAX_TRACKED_ADDRESSES {
                windows.clear();
            }
        }
        let (start, count) = windows.entry(addr).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        *count += 1;
        if *count > self.per_window {
            let retry_after = WINDOW.saturating_sub(now.duration_since(*start)).as_secs();
            return Err(ApiError::new(Code::RateLimited, "too many login attempts from this address")
                .with_retry_after(retry_after));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_address_separately() {
        let limiter = RateLimiter::new(3);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        for _ in 0..3 {
            limiter.check(a).unwrap();
        }
        let refused = limiter.check(a).unwrap_err();
        assert_eq!(refused.code, Code::RateLimited);
        assert!(refused.retry_after_s.unwrap() >= 1);
        limiter.check(b).unwrap();
    }
}
