//! How fast one recipient is sent ordinary messages on one channel: a token
//! bucket per (recipient, channel) lane, `BURST` messages at once and one more
//! every `REFILL_EVERY`, so never more than 15 in any 30 s. That is a real
//! provider's rule: Twilio's "messages cannot be sent more than 15 times in a
//! 30 second window between your Twilio phone number and another number"
//! (carriers filter the rest as spam); and a person cannot read faster
//! anyway. A lane out of tokens rests: its messages wait, in order; when a
//! lane holds more than it may be sent now (more than `digest::DIGEST_AFTER`
//! for a lane with its whole allowance), its money messages go as one digest,
//! which spends one token. So a recipient credited 200 times a second gets a
//! digest every 3 s, and one credited twice a minute gets every message at
//! once. Critical notices (security, key codes) are their own lane and never
//! wait for this; webhooks are not paced (a business's endpoint,
//! not a phone).
//!
//! Kept in memory by each dispatcher loop: with several server processes a
//! lane may get each one's allowance. Keeping it in the database would cost a
//! write per message sent.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use uuid::Uuid;

/// Messages a lane may be sent at once after a quiet spell.
pub const BURST: u32 = 5;
/// A lane earns one more message this often.
pub const REFILL_EVERY: Duration = Duration::from_secs(3);
/// The provider's rule: no more than this many messages to one number in any `WINDOW`.
pub const PER_WINDOW: u64 = 15;
pub const WINDOW: Duration = Duration::from_secs(30);
// A token bucket sends at most BURST + WINDOW / REFILL_EVERY in any WINDOW.
const _: () = assert!(BURST as u64 + WINDOW.as_secs() / REFILL_EVERY.as_secs() <= PER_WINDOW);

/// The channels a person reads, which are paced (and digested).
pub fn paced(channel: &str) -> bool {
    channel == "sms" || channel == "email"
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() / REFILL_EVERY.as_secs_f64();
        self.tokens = (self.tokens + earned).min(f64::from(BURST));
        self.at = now;
    }
}

/// The lanes that sent something lately; a lane whose bucket is full again is
/// forgotten, so this holds only lanes active in the last 30 s.
#[derive(Default)]
pub struct Pace {
    lanes: HashMap<(Uuid, String), Bucket>,
}

// Every method takes the round's `now`: a round decides its digests and its
// one-by-one sends at one instant, or a token earned in between would send a
// lane one message that the digest had just left for later.
impl Pace {
    /// The lanes that may send nothing now, as two arrays for SQL.
    pub fn resting(&mut self, now: Instant) -> (Vec<Uuid>, Vec<String>) {
        self.refill_all(now);
        self.lanes.iter().filter(|(_, bucket)| bucket.tokens < 1.0).map(|((user, channel), _)| (*user, channel.clone())).unzip()
    }

    /// Every lane's tokens brought up to `now`; a lane full again is forgotten.
    fn refill_all(&mut self, now: Instant) {
        self.lanes.retain(|_, bucket| {
            bucket.refill(now);
            bucket.tokens < f64::from(BURST)
        });
    }

    /// The lanes that spent some of their allowance lately, each with the
    /// whole messages it may be sent now (0: resting), as three arrays for
    /// SQL. A lane not listed may be sent `BURST`.
    pub fn allowances(&mut self, now: Instant) -> (Vec<Uuid>, Vec<String>, Vec<i64>) {
        self.refill_all(now);
        let (mut users, mut channels, mut allowances) = (Vec::new(), Vec::new(), Vec::new());
        for ((user, channel), bucket) in &self.lanes {
            users.push(*user);
            channels.push(channel.clone());
            allowances.push(bucket.tokens.floor() as i64);
        }
        (users, channels, allowances)
    }

    /// Gives back what `take` allowed but was not sent (a failed send, and
    /// the lane's messages after it): retries are paced by their back-off,
    /// and only messages that reached the provider count against the lane.
    pub fn give_back(&mut self, user: Uuid, channel: &str, unsent: usize) {
        if let Some(bucket) = self.lanes.get_mut(&(user, channel.to_string())) {
            bucket.tokens = (bucket.tokens + unsent as f64).min(f64::from(BURST));
        }
    }

    /// Spends up to `wanted` of the lane's tokens; returns how many messages it may send now.
    pub fn take(&mut self, now: Instant, user: Uuid, channel: &str, wanted: usize) -> usize {
        if !paced(channel) {
            return wanted;
        }
        let bucket = self.lanes.entry((user, channel.to_string())).or_insert(Bucket { tokens: f64::from(BURST), at: now });
        bucket.refill(now);
        let allowed = (bucket.tokens.floor() as usize).min(wanted);
        bucket.tokens -= allowed as f64;
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_gets_a_burst_then_one_message_every_refill_and_never_more_than_the_window_allows() {
        let (mut pace, start, bob) = (Pace::default(), Instant::now(), Uuid::from_u128(7));
        assert_eq!(pace.take(start, bob, "sms", 3), 3);
        assert_eq!(pace.take(start, bob, "sms", 10), 2, "five in all at once");
        assert_eq!(pace.resting(start).0, vec![bob], "out of tokens: the lane rests");
        assert_eq!(pace.take(start + REFILL_EVERY - Duration::from_millis(100), bob, "sms", 10), 0);
        assert_eq!(pace.take(start + REFILL_EVERY, bob, "sms", 10), 1, "one more after a refill");
        assert_eq!(pace.take(start + REFILL_EVERY, bob, "email", 20), 5, "each channel is its own lane");
        assert_eq!(pace.take(start + REFILL_EVERY, bob, "webhook", 500), 500, "webhooks are not paced");
        pace.give_back(bob, "email", 2);
        assert_eq!(pace.take(start + REFILL_EVERY, bob, "email", 20), 2, "two not sent come back");
        assert!(pace.resting(start + Duration::from_secs(100)).0.is_empty());
        assert!(pace.lanes.is_empty(), "lanes full again are forgotten");
        // A lane that asks all the time: in any WINDOW, at most PER_WINDOW.
        let mut sent: Vec<Duration> = Vec::new();
        for tick_ms in (0..120_000).step_by(100) {
            let at = Duration::from_millis(200_000 + tick_ms);
            for _ in 0..pace.take(start + at, bob, "sms", 50) {
                sent.push(at);
            }
        }
        for (i, first) in sent.iter().enumerate() {
            let within = sent[i..].iter().take_while(|t| **t - *first < WINDOW).count() as u64;
            assert!(within <= PER_WINDOW, "{within} messages in the {WINDOW:?} from {first:?}");
        }
        assert!(sent.len() >= 40, "and it does get its share: {} in 120 s", sent.len());
    }
}
