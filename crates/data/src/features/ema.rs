//! Exponential moving average: `EMA_t = EMA_{t-1} + k * (x_t - EMA_{t-1})`
//! with `k = 2 / (n + 1)`.
//!
//! TA-Lib convention (`TA_EMA`, default compatibility): the first EMA, at
//! index `n - 1` (lookback `n - 1`), is the simple average of the first `n`
//! values; every later value applies the recursion. A period of 1 copies the
//! input (TA-Lib's explicit no-smoothing case).

/// Streaming exponential moving average seeded with an SMA.
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    k: f64,
    count: usize,
    sum: f64,
    prev: f64,
}

impl Ema {
    /// An EMA over `period` values (a period of 0 is treated as 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Ema {
            period,
            k: 2.0 / (period + 1) as f64,
            count: 0,
            sum: 0.0,
            prev: f64::NAN,
        }
    }

    /// The period `n` (at least 1); the smoothing factor is `2 / (n + 1)`.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        self.period - 1
    }

    /// Adds `x` and returns the EMA, or NaN during the warm-up.
    #[inline]
    pub fn update(&mut self, x: f64) -> f64 {
        if self.period == 1 {
            // k = 1 would give (x - prev) + prev, which is not always x.
            return x;
        }
        if self.count < self.period {
            self.sum += x;
            self.count += 1;
            if self.count < self.period {
                return f64::NAN;
            }
            self.prev = self.sum / self.period as f64;
            return self.prev;
        }
        // TA-Lib's library is built with floating-point contraction, so its
        // `(x - prev) * k + prev` is one fused multiply-add; mul_add rounds
        // the same way and keeps the two bit-identical.
        self.prev = (x - self.prev).mul_add(self.k, self.prev);
        self.prev
    }

    /// Forgets every value seen, keeping the period.
    pub fn reset(&mut self) {
        self.count = 0;
        self.sum = 0.0;
        self.prev = f64::NAN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_with_the_sma_then_recursive() {
        let mut e = Ema::new(3); // k = 0.5
        let out: Vec<f64> = [1.0, 2.0, 3.0, 4.0, 6.0].iter().map(|&x| e.update(x)).collect();
        assert!(out[0].is_nan() && out[1].is_nan());
        assert_eq!(out[2], 2.0);
        assert_eq!(out[3], 3.0);
        assert_eq!(out[4], 4.5);
        assert_eq!(e.lookback(), 2);
    }

    #[test]
    fn period_one_copies_the_input() {
        let mut e = Ema::new(1);
        for x in [1.0, 3.0, 0.7, 123.456] {
            assert_eq!(e.update(x), x);
        }
    }

    #[test]
    fn constant_input_stays_constant() {
        let mut e = Ema::new(5);
        let last = (0..50).map(|_| e.update(7.25)).last().unwrap();
        assert_eq!(last, 7.25);
        e.reset();
        assert!(e.update(1.0).is_nan());
    }
}
