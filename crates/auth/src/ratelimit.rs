//! A sliding-window rate limiter keyed by string (an address, a user name,
//! a client id). In memory: each server process limits what reaches it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
        if hits.len() > 10_000 {
            hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.window));
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

#[cfg(test)]
mod tests {
    use super::*;

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
