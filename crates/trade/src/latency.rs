//! Decision latencies kept in fixed log-spaced buckets: recording is a
//! counter increment (nothing grows over a week-long session) and a
//! quantile is within 2% of the exact one.

/// Buckets from 0.1 µs, each 2% wider than the one before, to about 100 s.
const RATIO: f64 = 1.02;
const FIRST_US: f64 = 0.1;
const BUCKETS: usize = 1100;

/// Latencies in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// Empty.
    pub fn new() -> Self {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    /// Adds one latency.
    pub fn record(&mut self, us: f64) {
        let b = if us <= FIRST_US {
            0
        } else {
            ((us / FIRST_US).ln() / RATIO.ln()).ceil() as usize
        };
        self.counts[b.min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    /// Latencies recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile: the upper edge of the bucket holding it (NaN when
    /// empty).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.total == 0 {
            return f64::NAN;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return FIRST_US * RATIO.powi(b as i32);
            }
        }
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent() {
        let mut h = LatencyHistogram::new();
        assert!(h.quantile(0.5).is_nan());
        for us in 1..=1000 {
            h.record(us as f64);
        }
        for (q, exact) in [(0.5, 500.0), (0.99, 990.0), (1.0, 1000.0)] {
            let got = h.quantile(q);
            assert!(got >= exact && got <= exact * 1.0201, "q {q}: {got} vs {exact}");
        }
        h.record(1e12);
        assert_eq!(h.count(), 1001);
    }
}
