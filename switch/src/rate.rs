//! Look-up rate limits: a token bucket per bank and one per (bank, customer),
//! in memory. A directory answers "who is behind this phone number?", so
//! one customer trying many keys must be slowed down, and one bank too.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use crate::config::Limits;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Rule {
    per_second: f64,
    burst: f64,
}

impl Rule {
    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
    }

    /// Seconds until one token is there again (at least 1: `Retry-After` counts whole seconds).
    fn wait_s(&self, bucket: &Bucket) -> u64 {
        (((1.0 - bucket.tokens) / self.per_second).ceil() as u64).max(1)
    }
}

/// A bucket per bank id, and one per (bank id, customer id).
type Buckets = (HashMap<String, Bucket>, HashMap<(String, String), Bucket>);

pub struct LookupLimits {
    per_bank: Rule,
    per_user: Rule,
    max_tracked_users: usize,
    state: Mutex<Buckets>,
}

impl LookupLimits {
    pub fn new(limits: &Limits) -> LookupLimits {
        let per_minute = f64::from(limits.lookups_per_minute_per_user.max(1));
        LookupLimits {
            per_bank: Rule { per_second: f64::from(limits.lookups_per_second_per_bank.max(1)), burst: f64::from(limits.lookup_burst_per_bank.max(1)) },
            per_user: Rule { per_second: per_minute / 60.0, burst: per_minute },
            max_tracked_users: limits.max_tracked_users.max(1),
            state: Mutex::new((HashMap::new(), HashMap::new())),
        }
    }

    /// Takes one look-up from the bank's and the customer's buckets, or
    /// neither: `Err(seconds)` to wait.
    pub fn take(&self, bank_id: &str, user: &str) -> Result<(), u64> {
        self.take_at(bank_id, user, Instant::now())
    }

    fn take_at(&self, bank_id: &str, user: &str, now: Instant) -> Result<(), u64> {
        let mut state = self.state.lock().expect("rate limit lock");
        let (banks, users) = &mut *state;
        let fresh = |rule: &Rule| Bucket { tokens: rule.burst, updated: now };
        // Banks are few (registered ones only reach here); customers are bounded.
        let bank = banks.entry(bank_id.to_string()).or_insert_with(|| fresh(&self.per_bank));
        self.per_bank.refill(bank, now);
        if bank.tokens < 1.0 {
            return Err(self.per_bank.wait_s(bank));
        }
        let key = (bank_id.to_string(), user.to_string());
        if !users.contains_key(&key) && users.len() >= self.max_tracked_users {
            // Forget the customers whose buckets are full again: they lose nothing.
            let per_user = self.per_user;
            users.retain(|_, b| {
                per_user.refill(b, now);
                b.tokens < per_user.burst
            });
            if users.len() >= self.max_tracked_users {
                tracing::warn!(tracked = users.len(), "look-up rate limits: too many customers at once; forgetting them");
                users.clear();
            }
        }
        let mine = users.entry(key).or_insert_with(|| fresh(&self.per_user));
        self.per_user.refill(mine, now);
        if mine.tokens < 1.0 {
            return Err(self.per_user.wait_s(mine));
        }
        mine.tokens -= 1.0;
        bank.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Limits {
        Limits { lookups_per_second_per_bank: 2, lookup_burst_per_bank: 4, lookups_per_minute_per_user: 3, max_tracked_users: 2, ..Default::default() }
    }

    #[test]
    fn a_customer_gets_its_burst_then_waits() {
        let limits = LookupLimits::new(&limits());
        let now = Instant::now();
        for _ in 0..3 {
            limits.take_at("00000001", "u1", now).unwrap();
        }
        assert_eq!(limits.take_at("00000001", "u1", now), Err(20), "one token in 60/3 s");
        limits.take_at("00000001", "u2", now).unwrap();
        limits.take_at("00000002", "u1", now).unwrap();
        limits.take_at("00000001", "u1", now + Duration::from_secs(20)).unwrap();
    }

    #[test]
    fn a_bank_gets_its_burst_then_its_rate() {
        let limits = LookupLimits::new(&Limits { lookups_per_minute_per_user: 1000, max_tracked_users: 100, ..limits() });
        let now = Instant::now();
        for user in 0..4 {
            limits.take_at("00000001", &format!("u{user}"), now).unwrap();
        }
        assert_eq!(limits.take_at("00000001", "u9", now), Err(1));
        limits.take_at("00000001", "u9", now + Duration::from_millis(500)).unwrap();
    }

    #[test]
    fn a_refused_customer_costs_the_bank_nothing_and_memory_is_bounded() {
        let limits = LookupLimits::new(&Limits { lookups_per_minute_per_user: 1, ..limits() });
        let now = Instant::now();
        limits.take_at("00000001", "u1", now).unwrap();
        for _ in 0..10 {
            assert!(limits.take_at("00000001", "u1", now).is_err());
        }
        limits.take_at("00000001", "u2", now).unwrap();
        limits.take_at("00000001", "u3", now).unwrap();
        assert!(limits.state.lock().unwrap().1.len() <= 2);
    }
}
