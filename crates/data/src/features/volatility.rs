//! Realised volatility: the population standard deviation of the last `n`
//! log returns, `sqrt(mean(r^2) - mean(r)^2)` over `r_t = ln(c_t / c_{t-1})`.
//!
//! It equals TA-Lib's `STDDEV(r, n, nbdev = 1)` applied to the log-return
//! series with its leading NaN dropped, so the first value is at index `n`
//! (one bar for the first return, `n - 1` more to fill the window).
//!
//! The rolling variance is TA-Lib's cancellation-free form (`TA_VAR`): the
//! running sums are of deviations from a shift near the window rather than of
//! raw values, and they are rebuilt from the window (shift = window mean) when
//! the subtraction would lose digits, when a large outlier leaves the window,
//! and at least every `32 * n` bars. A rebuilt variance below `1e-12` of the
//! window's mean squared deviation is exactly 0. Rebuilds cost `O(n)` but are
//! rare, so an update is amortised `O(1)`.

use super::roc::LogReturn;

/// Population variance of the last `period` values, computed as TA-Lib's
/// `TA_VAR` does.
#[derive(Debug, Clone)]
pub struct RollingVariance {
    period: usize,
    inv_period: f64,
    buf: Vec<f64>,
    head: usize,
    count: usize,
    shift: f64,
    total1: f64,
    total2: f64,
    bars_to_reseed: usize,
}

impl RollingVariance {
    /// A variance over `period` values (a period of 0 is treated as 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        RollingVariance {
            period,
            inv_period: 1.0 / period as f64,
            buf: vec![0.0; period],
            head: 0,
            count: 0,
            shift: 0.0,
            total1: 0.0,
            total2: 0.0,
            bars_to_reseed: 0,
        }
    }

    /// The window length (at least 1).
    pub fn period(&self) -> usize {
        self.period
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        self.period - 1
    }

    /// Adds `x` and returns the variance of the last `period` values (never
    /// negative), or NaN during the warm-up.
    #[inline]
    pub fn update(&mut self, x: f64) -> f64 {
        if self.count == 0 {
            // TA-Lib anchors the first shift at the first value of the window.
            self.shift = x;
        }
        let d = x - self.shift;
        self.total1 += d;
        self.total2 += d * d;
        self.buf[self.head] = x;
        self.head += 1;
        if self.head == self.period {
            self.head = 0;
        }
        if self.count < self.period {
            self.count += 1;
            if self.count < self.period {
                return f64::NAN;
            }
            self.bars_to_reseed = 32 * self.period;
        }

        let mean1 = self.total1 * self.inv_period;
        let mut variance = self.total2 * self.inv_period - mean1 * mean1;

        // buf[head] is the oldest value of this window: it leaves the sums now.
        let d = self.buf[self.head] - self.shift;
        self.total1 -= d;
        let leaving = d * d;
        self.total2 -= leaving;

        self.bars_to_reseed -= 1;
        if variance < 0.000001 * (self.total2 * self.inv_period)
            || leaving > 1000000.0 * self.total2
            || self.bars_to_reseed == 0
        {
            variance = self.reseed();
        }
        variance
    }

    /// Rebuilds the sums around the current window's mean and returns the
    /// window's variance; leaves the oldest value out of the sums afterwards,
    /// as the normal path does.
    #[cold]
    fn reseed(&mut self) -> f64 {
        self.bars_to_reseed = 32 * self.period;
        // Oldest first, as TA-Lib sums the window in time order.
        let (recent, oldest) = self.buf.split_at(self.head);
        let mut sum = 0.0;
        for &v in oldest.iter().chain(recent) {
            sum += v;
        }
        self.shift = sum * self.inv_period;
        self.total1 = 0.0;
        self.total2 = 0.0;
        for &v in oldest.iter().chain(recent) {
            let d = v - self.shift;
            self.total1 += d;
            self.total2 += d * d;
        }
        let mean1 = self.total1 * self.inv_period;
        let mut variance = self.total2 * self.inv_period - mean1 * mean1;
        // Below this ratio the spread is under the rounding of the mean
        // itself: the honest answer is 0, and it also clamps any negative.
        if variance < 0.000000000001 * (self.total2 * self.inv_period) {
            variance = 0.0;
        }
        let d = self.buf[self.head] - self.shift;
        self.total1 -= d;
        self.total2 -= d * d;
        variance
    }

    /// Forgets every value seen, keeping the period.
    pub fn reset(&mut self) {
        self.buf.fill(0.0);
        self.head = 0;
        self.count = 0;
        self.shift = 0.0;
        self.total1 = 0.0;
        self.total2 = 0.0;
        self.bars_to_reseed = 0;
    }
}

/// Streaming realised volatility of close prices (per bar, not annualised).
#[derive(Debug, Clone)]
pub struct RealizedVolatility {
    log_return: LogReturn,
    variance: RollingVariance,
    last_return: f64,
}

impl RealizedVolatility {
    /// Volatility over the last `window` log returns (a window of 0 is
    /// treated as 1).
    pub fn new(window: usize) -> Self {
        RealizedVolatility {
            log_return: LogReturn::new(),
            variance: RollingVariance::new(window),
            last_return: f64::NAN,
        }
    }

    /// The number of log returns in the window (at least 1).
    pub fn window(&self) -> usize {
        self.variance.period()
    }

    /// Number of leading NaN outputs: one bar for the first return, then the
    /// window.
    pub fn lookback(&self) -> usize {
        1 + self.variance.lookback()
    }

    /// The log return computed by the last `update` (NaN after the first bar).
    pub fn last_return(&self) -> f64 {
        self.last_return
    }

    /// Adds a close and returns the standard deviation of the last `window`
    /// log returns, or NaN during the warm-up.
    #[inline]
    pub fn update(&mut self, close: f64) -> f64 {
        let first = !self.log_return.has_previous();
        self.last_return = self.log_return.update(close);
        if first {
            return f64::NAN;
        }
        self.variance.update(self.last_return).sqrt()
    }

    /// Forgets every close seen, keeping the window.
    pub fn reset(&mut self) {
        self.log_return.reset();
        self.variance.reset();
        self.last_return = f64::NAN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_variance_of_small_windows() {
        let mut v = RollingVariance::new(4);
        let out: Vec<f64> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            .iter()
            .map(|&x| v.update(x))
            .collect();
        assert!(out[..3].iter().all(|x| x.is_nan()));
        assert!((out[3] - 0.75).abs() < 1e-15); // 2,4,4,4: mean 3.5
        assert!((out[4] - 0.1875).abs() < 1e-15); // 4,4,4,5
        assert!((out[7] - 2.75).abs() < 1e-15); // 5,5,7,9: mean 6.5
    }

    #[test]
    fn constant_window_is_exactly_zero_and_long_runs_stay_accurate() {
        let mut v = RollingVariance::new(5);
        assert!((0..100).map(|_| v.update(1234.567)).skip(4).all(|x| x == 0.0));
        // A level far from the spread, long enough to force several reseeds.
        let mut v = RollingVariance::new(3);
        for i in 0..1000 {
            let x = 1.0e6 + [0.0, 1.0, 2.0][i % 3];
            let var = v.update(x);
            if i >= 2 {
                assert!((var - 2.0 / 3.0).abs() < 1e-9, "{i}: {var}");
            }
        }
    }

    #[test]
    fn realized_volatility_of_alternating_returns() {
        // Returns alternate +r, -r: population std. dev. is r.
        let r = 0.01f64;
        let mut vol = RealizedVolatility::new(2);
        let mut c = 100.0;
        assert!(vol.update(c).is_nan());
        c *= r.exp();
        assert!(vol.update(c).is_nan());
        assert!((vol.last_return() - r).abs() < 1e-15);
        c *= (-r).exp();
        assert!((vol.update(c) - r).abs() < 1e-12);
        assert_eq!(vol.lookback(), 2);
    }

    #[test]
    fn window_one_is_zero() {
        let mut vol = RealizedVolatility::new(1);
        assert!(vol.update(10.0).is_nan());
        assert_eq!(vol.update(11.0), 0.0);
        assert_eq!(vol.update(9.0), 0.0);
    }
}
