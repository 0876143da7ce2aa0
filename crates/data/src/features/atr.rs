//! Average true range: Wilder's smoothing of the true range
//! `TR_t = max(high_t - low_t, |high_t - close_{t-1}|, |low_t - close_{t-1}|)`,
//! `ATR_t = ((n - 1) * ATR_{t-1} + TR_t) / n`.
//!
//! TA-Lib convention (`TA_ATR`): the first true range is at index 1 (it needs
//! a previous close); the first ATR, at index `n` (lookback `n`), is the mean
//! of `TR_1 ..= TR_n`. A period of 1 gives the true range itself.

/// `max(high - low, |high - prev_close|, |low - prev_close|)`, compared in
/// TA-Lib's order.
#[inline]
pub fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    let mut greatest = high - low;
    let to_high = (prev_close - high).abs();
    if to_high > greatest {
        greatest = to_high;
    }
    let to_low = (prev_close - low).abs();
    if to_low > greatest {
        greatest = to_low;
    }
    greatest
}

/// Streaming Wilder ATR.
#[derive(Debug, Clone)]
pub struct Atr {
    period: usize,
    /// Weights of the Wilder step: `beta = (n - 1) / n`, `alpha = 1 - beta`.
    alpha: f64,
    beta: f64,
    count: usize,
    prev_close: f64,
    sum: f64,
    atr: f64,
}

impl Atr {
    /// An ATR over `period` true ranges (a period of 0 is treated as 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        // TA-Lib derives alpha from beta so that alpha + beta is exactly 1.
        let beta = (period - 1) as f64 / period as f64;
        Atr {
            period,
            alpha: 1.0 - beta,
            beta,
            count: 0,
            prev_close: f64::NAN,
            sum: 0.0,
            atr: f64::NAN,
        }
    }

    /// The number of true ranges averaged (at least 1).
    pub fn period(&self) -> usize {
        self.period
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        self.period
    }

    /// Adds a bar and returns the ATR, or NaN during the warm-up.
    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> f64 {
        let i = self.count;
        if i == 0 {
            self.prev_close = close;
            self.count = 1;
            return f64::NAN;
        }
        let tr = true_range(high, low, self.prev_close);
        self.prev_close = close;
        if i <= self.period {
            self.sum += tr;
            self.count += 1;
            if i < self.period {
                return f64::NAN;
            }
            self.atr = self.sum / self.period as f64;
        } else {
            // One fused multiply-add, as TA-Lib's contracted build computes
            // `alpha * tr + beta * atr`: bit-identical values.
            self.atr = self.beta.mul_add(self.atr, self.alpha * tr);
        }
        self.atr
    }

    /// Forgets every bar seen, keeping the period.
    pub fn reset(&mut self) {
        self.count = 0;
        self.prev_close = f64::NAN;
        self.sum = 0.0;
        self.atr = f64::NAN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_range_uses_the_previous_close() {
        assert_eq!(true_range(12.0, 10.0, 11.0), 2.0);
        assert_eq!(true_range(12.0, 10.0, 7.0), 5.0); // gap up
        assert_eq!(true_range(12.0, 10.0, 15.0), 5.0); // gap down
    }

    #[test]
    fn seed_is_the_mean_then_wilder() {
        // Ranges: bar1 TR = 2, bar2 TR = 4 (gap), bar3 TR = 1.
        let bars = [
            (11.0, 9.0, 10.0),
            (12.0, 10.0, 11.0),
            (15.0, 13.0, 14.0),
            (14.5, 13.5, 14.0),
        ];
        let mut a = Atr::new(2);
        let out: Vec<f64> = bars.iter().map(|&(h, l, c)| a.update(h, l, c)).collect();
        assert!(out[0].is_nan() && out[1].is_nan());
        assert_eq!(out[2], 3.0);
        assert_eq!(out[3], (3.0 + 1.0) / 2.0);
        assert_eq!(a.lookback(), 2);
    }

    #[test]
    fn period_one_is_the_true_range() {
        let mut a = Atr::new(1);
        assert!(a.update(11.0, 9.0, 10.0).is_nan());
        assert_eq!(a.update(12.0, 10.0, 11.0), 2.0);
        assert_eq!(a.update(20.0, 19.0, 19.5), 9.0);
    }
}
