//! Rate of change in percent, `ROC_t = (c_t / c_{t-n} - 1) * 100`, and the
//! one-bar log return `r_t = ln(c_t / c_{t-1})`.
//!
//! TA-Lib convention (`TA_ROC`): lookback `n`; a zero reference price gives 0
//! rather than a division by zero. The log return is TA-Lib's
//! `LN(ROCR(c, 1))`: NaN at the first bar, then `ln` of the price ratio.

/// Streaming rate of change over `period` bars, in percent.
#[derive(Debug, Clone)]
pub struct Roc {
    period: usize,
    buf: Vec<f64>,
    head: usize,
    count: usize,
}

impl Roc {
    /// A rate of change against the close `period` bars back (a period of 0
    /// is treated as 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Roc {
            period,
            buf: vec![0.0; period],
            head: 0,
            count: 0,
        }
    }

    /// How many bars back the reference close is (at least 1).
    pub fn period(&self) -> usize {
        self.period
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        self.period
    }

    /// Adds a close and returns the percent change from `period` bars back,
    /// or NaN during the warm-up.
    #[inline]
    pub fn update(&mut self, x: f64) -> f64 {
        let then = self.buf[self.head];
        self.buf[self.head] = x;
        self.head += 1;
        if self.head == self.period {
            self.head = 0;
        }
        if self.count < self.period {
            self.count += 1;
            return f64::NAN;
        }
        if then != 0.0 {
            ((x / then) - 1.0) * 100.0
        } else {
            0.0
        }
    }

    /// Forgets every close seen, keeping the period.
    pub fn reset(&mut self) {
        self.buf.fill(0.0);
        self.head = 0;
        self.count = 0;
    }
}

/// Streaming one-bar log return `ln(c_t / c_{t-1})`.
#[derive(Debug, Clone)]
pub struct LogReturn {
    prev: f64,
    has_prev: bool,
}

impl Default for LogReturn {
    fn default() -> Self {
        Self::new()
    }
}

impl LogReturn {
    /// A log return that has seen no close yet.
    pub fn new() -> Self {
        LogReturn {
            prev: f64::NAN,
            has_prev: false,
        }
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        1
    }

    /// True once a close has been seen (the next update returns a value).
    pub fn has_previous(&self) -> bool {
        self.has_prev
    }

    /// Adds a close and returns the log return from the previous close (NaN
    /// at the first bar).
    #[inline]
    pub fn update(&mut self, x: f64) -> f64 {
        let r = if self.has_prev { (x / self.prev).ln() } else { f64::NAN };
        self.prev = x;
        self.has_prev = true;
        r
    }

    /// Forgets the previous close.
    pub fn reset(&mut self) {
        self.prev = f64::NAN;
        self.has_prev = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_change_over_two_bars() {
        let mut r = Roc::new(2);
        let out: Vec<f64> = [100.0, 50.0, 110.0, 75.0].iter().map(|&x| r.update(x)).collect();
        assert!(out[0].is_nan() && out[1].is_nan());
        assert!((out[2] - 10.0).abs() < 1e-12);
        assert!((out[3] - 50.0).abs() < 1e-12);
    }

    #[test]
    fn zero_reference_gives_zero() {
        let mut r = Roc::new(1);
        r.update(0.0);
        assert_eq!(r.update(5.0), 0.0);
        assert_eq!(r.update(10.0), 100.0);
    }

    #[test]
    fn log_returns() {
        let mut l = LogReturn::new();
        assert!(l.update(100.0).is_nan());
        assert!((l.update(100.0 * 2f64.exp()) - 2.0).abs() < 1e-14);
        l.reset();
        assert!(l.update(1.0).is_nan());
        assert_eq!(l.update(1.0), 0.0);
    }
}
