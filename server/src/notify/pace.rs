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
    /// `BURST` and the lane's part of a token (`phase`).
    capacity: f64,
}

impl Bucket {
    fn new(now: Instant, user: Uuid, channel: &str) -> Bucket {
        let capacity = f64::from(BURST) + phase(user, channel);
        Bucket { tokens: capacity, at: now, capacity }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() / REFILL_EVERY.as_secs_f64();
        self.tokens = (self.tokens + earned).min(self.capacity);
        self.at = now;
    }
}

/// A part of one token, fixed by the lane and under 0.4, that its bucket
/// holds beyond `BURST`: a lane that spends its burst earns its next token
/// sooner by that part of `REFILL_EVERY` (1.8–3 s after the burst, never at
/// once: a person still gets a pause), so lanes that got busy in the same
/// round (a salary run, every bench customer at the start) do not earn their
/// tokens in the same round every 3 s ever after. In `uniform` they did:
/// their digests, each covering hundreds of messages, were all written by one
/// large UPDATE every third second (docs/benchmarks.md, session 20). A bucket
/// of `BURST + phase` tokens still sends at most `BURST` + one per
/// `REFILL_EVERY` in any window: whole messages only, so never more than the
/// provider's rule allows (the test below checks the window).
fn phase(user: Uuid, channel: &str) -> f64 {
    // Under half a token, so a burst is followed by a pause of more than half
    // a refill even for a message that reaches the receiver a little late.
    const MAX_PHASE: f64 = 0.4;
    use std::hash::{Hash, Hasher};
    const STEPS: u64 = 1000;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (user, channel).hash(&mut hasher);
    let phase = (hasher.finish() % STEPS) as f64 * MAX_PHASE / STEPS as f64;
    assert!((0.0..MAX_PHASE).contains(&phase), "under MAX_PHASE of a token");
    phase
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
            bucket.tokens < bucket.capacity
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
            bucket.tokens = (bucket.tokens + unsent as f64).min(bucket.capacity);
        }
    }

    /// Spends up to `wanted` of the lane's tokens; returns how many messages it may send now.
    pub fn take(&mut self, now: Instant, user: Uuid, channel: &str, wanted: usize) -> usize {
        if !paced(channel) {
            return wanted;
        }
        let bucket = self.lanes.entry((user, channel.to_string())).or_insert_with(|| Bucket::new(now, user, channel));
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
        // The next token comes the lane's part of a refill early (`phase`).
        let refilled = start + REFILL_EVERY.mul_f64(1.0 - phase(bob, "sms")) + Duration::from_millis(1);
        assert_eq!(pace.take(refilled - Duration::from_millis(100), bob, "sms", 10), 0);
        assert_eq!(pace.take(refilled, bob, "sms", 10), 1, "one more after a refill");
        assert_eq!(pace.take(refilled, bob, "email", 20), 5, "each channel is its own lane");
        assert_eq!(pace.take(refilled, bob, "webhook", 500), 500, "webhooks are not paced");
        pace.give_back(bob, "email", 2);
        assert_eq!(pace.take(refilled, bob, "email", 20), 2, "two not sent come back");
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

    #[test]
    fn lanes_that_got_busy_together_earn_their_tokens_at_different_times_and_each_within_the_window() {
        let (mut pace, start) = (Pace::default(), Instant::now());
        let users: Vec<Uuid> = (0..32u128).map(Uuid::from_u128).collect();
        // Every lane asks for more than it may have, every 100 ms for 120 s, all starting together.
        let mut sent: std::collections::HashMap<Uuid, Vec<Duration>> = std::collections::HashMap::new();
        for tick_ms in (0..120_000u64).step_by(100) {
            let at = Duration::from_millis(tick_ms);
            for user in &users {
                for _ in 0..pace.take(start + at, *user, "sms", 50) {
                    sent.entry(*user).or_default().push(at);
                }
            }
        }
        for (user, times) in &sent {
            assert_eq!(times.iter().filter(|t| t.is_zero()).count(), BURST as usize, "{user}: its burst at once");
            for (i, first) in times.iter().enumerate() {
                let within = times[i..].iter().take_while(|t| **t - *first < WINDOW).count() as u64;
                assert!(within <= PER_WINDOW, "{user}: {within} messages in the {WINDOW:?} from {first:?}");
            }
        }
        // Which 100 ms tick of the first refill period each lane's next token came in.
        let first_refills: std::collections::BTreeSet<Duration> =
            sent.values().filter_map(|times| times.iter().find(|t| !t.is_zero()).copied()).collect();
        assert!(first_refills.len() >= 10, "32 lanes earned their next token in only {} different ticks: {first_refills:?}", first_refills.len());
        assert!(first_refills.iter().all(|t| *t <= REFILL_EVERY), "none later than a plain bucket: {first_refills:?}");
        assert!(first_refills.iter().all(|t| *t > REFILL_EVERY / 2), "none sooner than half a refill after the burst: {first_refills:?}");
    }
}
