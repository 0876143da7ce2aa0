//! Wilder's relative strength index: `RSI = 100 * G / (G + L)`, where `G`
//! and `L` are Wilder-smoothed average gains and losses of close-to-close
//! changes (`A_t = (A_{t-1} * (n - 1) + x_t) / n`).
//!
//! TA-Lib convention (`TA_RSI`, default compatibility): lookback `n`; the
//! first averages, at index `n`, are the plain means of the first `n`
//! changes. When there has been no movement at all (`G + L == 0`, tested
//! exactly, not against a fixed epsilon) the RSI is 0.

/// Streaming Wilder RSI.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    inv_period: f64,
    count: usize,
    prev: f64,
    gain: f64,
    loss: f64,
}

impl Rsi {
    /// An RSI over `period` changes (a period of 0 is treated as 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Rsi {
            period,
            inv_period: 1.0 / period as f64,
            count: 0,
            prev: f64::NAN,
            gain: 0.0,
            loss: 0.0,
        }
    }

    /// The number of changes averaged (at least 1).
    pub fn period(&self) -> usize {
        self.period
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        self.period
    }

    /// Adds a close and returns the RSI in [0, 100], or NaN during the warm-up.
    #[inline]
    pub fn update(&mut self, x: f64) -> f64 {
        let i = self.count;
        if i == 0 {
            self.prev = x;
            self.count = 1;
            return f64::NAN;
        }
        let change = x - self.prev;
        self.prev = x;
        let up = if change > 0.0 { change } else { 0.0 };
        if i <= self.period {
            self.gain += up;
            self.loss += up - change;
            self.count += 1;
            if i < self.period {
                return f64::NAN;
            }
            // TA-Lib scales by a precomputed 1/n rather than dividing; the
            // same operations keep the values bit-identical.
            self.gain *= self.inv_period;
            self.loss *= self.inv_period;
        } else {
            let keep = (self.period - 1) as f64;
            self.gain *= keep;
            self.loss *= keep;
            self.gain += up;
            self.loss += up - change;
            self.gain *= self.inv_period;
            self.loss *= self.inv_period;
        }
        let total = self.gain + self.loss;
        if total > 0.0 {
            100.0 * (self.gain / total)
        } else {
            0.0
        }
    }

    /// Forgets every close seen, keeping the period.
    pub fn reset(&mut self) {
        self.count = 0;
        self.prev = f64::NAN;
        self.gain = 0.0;
        self.loss = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        // Changes +1, -1, +2 over period 2: seed G = 0.5, L = 0.5 -> 50;
        // then G = (0.5 + 2) / 2 = 1.25, L = 0.25 -> 100 * 1.25 / 1.5.
        let mut r = Rsi::new(2);
        let out: Vec<f64> = [10.0, 11.0, 10.0, 12.0].iter().map(|&x| r.update(x)).collect();
        assert!(out[0].is_nan() && out[1].is_nan());
        assert_eq!(out[2], 50.0);
        assert!((out[3] - 100.0 * 1.25 / 1.5).abs() < 1e-12);
    }

    #[test]
    fn only_gains_is_100_no_movement_is_0() {
        let mut r = Rsi::new(3);
        let last = (0..10).map(|i| r.update(i as f64)).last().unwrap();
        assert_eq!(last, 100.0);
        let mut r = Rsi::new(3);
        let out: Vec<f64> = (0..10).map(|_| r.update(5.0)).collect();
        assert!(out[3..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn period_one_does_not_panic() {
        let mut r = Rsi::new(1);
        assert!(r.update(1.0).is_nan());
        assert_eq!(r.update(2.0), 100.0);
        assert_eq!(r.update(1.0), 0.0);
        assert_eq!(r.update(1.0), 0.0);
    }
}
