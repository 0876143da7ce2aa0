//! Simple moving average: `SMA_t = (x_{t-n+1} + ... + x_t) / n`.
//!
//! TA-Lib convention (`TA_SMA`): lookback `n - 1`, so the first value is at
//! index `n - 1`.
//!
//! The window sum is kept *exactly* as a double-double running total
//! (error-free `two_sum` updates), so each output is the correctly rounded
//! window sum divided by `n`: what `math.fsum(window) / n` gives, and what
//! backtrader and backtesting.py compute. TA-Lib instead carries one plain
//! running total whose rounding error accumulates over the series; the two
//! agree to ~1e-15 relative (the TA-Lib test allows 1e-9), but only the exact
//! sum reproduces the peers' decisions on exact ties, such as ORCL's
//! SMA(10) == SMA(30) on 2004-06-29 (`crates/sim/tests/peers.rs`).

/// Streaming simple moving average over the last `period` values.
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    buf: Vec<f64>,
    head: usize,
    count: usize,
    /// The exact window sum is `hi + lo`, with `hi` its rounded value.
    hi: f64,
    lo: f64,
}

/// Knuth's two-sum: `a + b == s + err` exactly.
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

impl Sma {
    /// A moving average over `period` values (a period of 0 is treated as 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Sma {
            period,
            buf: vec![0.0; period],
            head: 0,
            count: 0,
            hi: 0.0,
            lo: 0.0,
        }
    }

    pub fn period(&self) -> usize {
        self.period
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        self.period - 1
    }

    /// True once a full window has been seen (the last `update` was finite
    /// for finite inputs).
    pub fn is_ready(&self) -> bool {
        self.count >= self.period
    }

    /// Adds `x` and returns the average of the last `period` values, or NaN
    /// during the warm-up.
    #[inline]
    pub fn update(&mut self, x: f64) -> f64 {
        if self.count == self.period {
            let oldest = self.buf[self.head];
            self.add(-oldest);
        } else {
            self.count += 1;
        }
        self.add(x);
        self.buf[self.head] = x;
        self.head += 1;
        if self.head == self.period {
            self.head = 0;
        }
        if self.count < self.period {
            return f64::NAN;
        }
        self.hi / self.period as f64
    }

    /// Adds `x` to the double-double total and renormalises so that `hi` is
    /// the total rounded to nearest.
    #[inline(always)]
    fn add(&mut self, x: f64) {
        let (s, e) = two_sum(self.hi, x);
        let e = e + self.lo;
        let hi = s + e;
        self.lo = e - (hi - s);
        self.hi = hi;
    }

    pub fn reset(&mut self) {
        self.buf.fill(0.0);
        self.head = 0;
        self.count = 0;
        self.hi = 0.0;
        self.lo = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_of_one_to_five() {
        let mut s = Sma::new(3);
        let out: Vec<f64> = [1.0, 2.0, 3.0, 4.0, 5.0].iter().map(|&x| s.update(x)).collect();
        assert!(out[0].is_nan() && out[1].is_nan());
        assert_eq!(out[2..], [2.0, 3.0, 4.0]);
        assert_eq!(s.lookback(), 2);
    }

    #[test]
    fn period_one_is_the_input() {
        let mut s = Sma::new(1);
        for x in [3.5, -1.0, 1e9, 0.1] {
            assert_eq!(s.update(x), x);
        }
    }

    #[test]
    fn window_sum_stays_exact_where_a_running_total_drifts() {
        // A plain running total loses the 1.0 added beside 1e16 (the spacing
        // of doubles there is 2) and, once 1e16 leaves, reports 0.5; the
        // exact total still holds the 1.0.
        let mut t = Sma::new(2);
        t.update(1e16);
        assert_eq!(t.update(1.0), (1e16 + 1.0) / 2.0);
        assert_eq!(t.update(1.0), 1.0);
    }

    #[test]
    fn reset_starts_over() {
        let mut s = Sma::new(2);
        s.update(10.0);
        s.update(20.0);
        s.reset();
        assert!(s.update(1.0).is_nan());
        assert_eq!(s.update(3.0), 2.0);
    }
}
