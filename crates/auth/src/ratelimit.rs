//! Rate limits keyed by string (an address, a user name and address, a
//! client): a sliding window ([`RateLimiter`]) and a failure counter with
//! growing lockouts ([`FailureBackoff`]). In memory: each server process
//! limits what reaches it. Both bound their memory: past [`MAX_KEYS`]
//! keys idle ones are forgotten, and if that is not enough (a flood of
//! distinct keys) every key is, which fails open for a moment rather than
//! letting an attacker grow the map without end.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most keys a limiter keeps.
pub const MAX_KEYS: usize = 10_000;

/// Counts hits per key over the last `window` and refuses those beyond
/// `limit`. Shared across threads (the state is behind a mutex).
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// At most `limit` hits per key in any `window`.
    pub fn new(limit: usize, window: Duration) -> RateLimiter {
        RateLimiter {
            limit: limit.max(1),
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Records a hit at `now`; `Err(wait)` when the key is over its limit
    /// (the hit is not counted, so a client that waits gets through).
    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        // Forget idle keys now and then so memory stays bounded.
        if hits.len() >= MAX_KEYS {
            hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.window));
            if hits.len() >= MAX_KEYS {
                hits.clear();
            }
        }
        let queue = hits.entry(key.to_string()).or_default();
        while queue.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            queue.pop_front();
        }
        if queue.len() >= self.limit {
            let oldest = *queue.front().expect("a full queue has a front");
            return Err(self
                .window
                .saturating_sub(now.duration_since(oldest))
                .max(Duration::from_secs(1)));
        }
        queue.push_back(now);
        Ok(())
    }

    /// [`check_at`](Self::check_at) the current instant.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// Forgets `key`'s hits (after a successful login, say).
    pub fn reset(&self, key: &str) {
        self.hits.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// One key's failures and lockouts.
#[derive(Default)]
struct Failures {
    recent: VecDeque<Instant>,
    lockouts: u32,
    locked_until: Option<Instant>,
}

/// Locks a key out after `limit` failures within `window`, for `window`,
/// then twice as long at each further lockout (up to `max_lockout`), until
/// a success clears it. Sign-in keys it on user and address, so an
/// attacker cannot lock a user out from elsewhere (issue 19 finding 10)
/// and one address guessing gets slower and slower.
pub struct FailureBackoff {
    limit: usize,
    window: Duration,
    max_lockout: Duration,
    keys: Mutex<HashMap<String, Failures>>,
}

impl FailureBackoff {
    /// `limit` failures per `window`; lockouts double up to `max_lockout`.
    pub fn new(limit: usize, window: Duration, max_lockout: Duration) -> FailureBackoff {
        FailureBackoff {
            limit: limit.max(1),
            window,
            max_lockout: max_lockout.max(window),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `key` is locked out.
    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        match keys.get(key).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err((until - now).max(Duration::from_secs(1))),
            _ => Ok(()),
        }
    }

    /// Records a failure at `now`; the failure that reaches the limit
    /// starts a lockout.
    pub fn fail_at(&self, key: &str, now: Instant) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= MAX_KEYS {
            // Keep keys that are locked out or failed lately.
            keys.retain(|_, f| {
                f.locked_until.is_some_and(|u| u > now)
                    || f.recent.back().is_some_and(|t| now.duration_since(*t) < self.window)
            });
            if keys.len() >= MAX_KEYS {
                keys.clear();
            }
        }
        let f = keys.entry(key.to_string()).or_default();
        while f.recent.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            f.recent.pop_front();
        }
        f.recent.push_back(now);
        if f.recent.len() >= self.limit {
            f.recent.clear();
            let factor = 1u32 << f.lockouts.min(16);
            f.lockouts = f.lockouts.saturating_add(1);
            let lockout = self.window.saturating_mul(factor).min(self.max_lockout);
            f.locked_until = Some(now + lockout);
        }
    }

    /// [`check_at`](Self::check_at) the current instant.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// [`fail_at`](Self::fail_at) the current instant.
    pub fn fail(&self, key: &str) {
        self.fail_at(key, Instant::now())
    }

    /// A success: the key starts afresh.
    pub fn succeed(&self, key: &str) {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_a_key_out_for_longer_each_time_until_a_success() {
        let window = Duration::from_secs(300);
        let b = FailureBackoff::new(5, window, Duration::from_secs(3600));
        let t0 = Instant::now();
        for i in 0..4 {
            b.fail_at("ada@1", t0 + Duration::from_secs(i));
            assert!(b.check_at("ada@1", t0 + Duration::from_secs(i)).is_ok(), "failure {i}");
        }
        b.fail_at("ada@1", t0 + Duration::from_secs(4));
        let t = t0 + Duration::from_secs(4);
        assert_eq!(b.check_at("ada@1", t), Err(window));
        assert!(b.check_at("ada@2", t).is_ok(), "another address is not locked out");
        // After the first lockout, five more failures lock out twice as long.
        let t = t + window;
        assert!(b.check_at("ada@1", t).is_ok());
        for i in 0..5 {
            b.fail_at("ada@1", t + Duration::from_secs(i));
        }
        let t = t + Duration::from_secs(4);
        assert_eq!(b.check_at("ada@1", t), Err(window * 2));
        // ... then four times, capped at the maximum.
        let t = t + window * 2;
        for _ in 0..5 {
            b.fail_at("ada@1", t);
        }
        assert_eq!(b.check_at("ada@1", t), Err(window * 4));
        let mut t = t;
        for _ in 0..40 {
            t += window * 100;
            for _ in 0..5 {
                b.fail_at("ada@1", t);
            }
        }
        assert_eq!(b.check_at("ada@1", t), Err(Duration::from_secs(3600)), "capped");
        // Failures spread wider than the window never lock out.
        for i in 0..20 {
            b.fail_at("slow", t0 + window * i);
        }
        assert!(b.check_at("slow", t0 + window * 20).is_ok());
        // A success clears everything.
        b.succeed("ada@1");
        assert!(b.check_at("ada@1", t).is_ok());
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_bounded() {
        let rl = RateLimiter::new(1, Duration::from_secs(60));
        let b = FailureBackoff::new(1, Duration::from_secs(60), Duration::from_secs(60));
        let t = Instant::now();
        for i in 0..(3 * MAX_KEYS) {
            let _ = rl.check_at(&format!("k{i}"), t);
            b.fail_at(&format!("k{i}"), t);
        }
        assert!(rl.hits.lock().unwrap().len() <= MAX_KEYS);
        assert!(b.keys.lock().unwrap().len() <= MAX_KEYS);
    }

    #[test]
    fn limits_per_key_and_window() {
        let rl = RateLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(rl.check_at("a", t0 + Duration::from_secs(i)).is_ok());
        }
        let wait = rl.check_at("a", t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(rl.check_at("b", t0 + Duration::from_secs(10)).is_ok());
        // The first hit leaves the window after 60 s.
        assert!(rl.check_at("a", t0 + Duration::from_secs(60)).is_ok());
        assert!(rl.check_at("a", t0 + Duration::from_secs(60)).is_err());
        rl.reset("a");
        assert!(rl.check_at("a", t0 + Duration::from_secs(61)).is_ok());
    }
}
