//! Moving average convergence/divergence: `MACD = EMA_fast - EMA_slow`,
//! `signal = EMA_signal(MACD)`, `hist = MACD - signal`.
//!
//! TA-Lib convention (`TA_MACD`): if `fast > slow` the two are swapped. The
//! fast EMA is *not* started at bar 0: TA-Lib seeds it with the SMA of the
//! `fast` closes ending on the slow EMA's first bar (index `slow - 1`), so
//! both EMAs begin on the same bar. The signal EMA is seeded with the SMA of
//! the first `signal` MACD values. All three outputs start together at index
//! `(slow - 1) + (signal - 1)` (33 for 12/26/9); the MACD line is not reported
//! before the signal exists.

use super::ema::Ema;

/// One MACD output row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdOutput {
    /// The MACD line: fast EMA minus slow EMA.
    pub macd: f64,
    /// The signal line: EMA of the MACD line.
    pub signal: f64,
    /// The histogram: MACD line minus signal line.
    pub hist: f64,
}

impl MacdOutput {
    /// All three values NaN: the output during the warm-up.
    pub const NAN: MacdOutput = MacdOutput {
        macd: f64::NAN,
        signal: f64::NAN,
        hist: f64::NAN,
    };
}

/// Streaming MACD with TA-Lib's seeding.
#[derive(Debug, Clone)]
pub struct Macd {
    fast: Ema,
    slow: Ema,
    signal: Ema,
    /// Bars before the fast EMA starts: `slow - fast`.
    fast_delay: usize,
    count: usize,
}

impl Macd {
    /// MACD(fast, slow, signal); periods of 0 are treated as 1.
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        let (fast, slow) = if slow < fast { (slow, fast) } else { (fast, slow) };
        let (fast, slow) = (fast.max(1), slow.max(1));
        Macd {
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            signal: Ema::new(signal),
            fast_delay: slow - fast,
            count: 0,
        }
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        self.slow.lookback() + self.signal.lookback()
    }

    /// Adds a close and returns the MACD line, signal and histogram, all NaN
    /// during the warm-up.
    #[inline]
    pub fn update(&mut self, x: f64) -> MacdOutput {
        let slow = self.slow.update(x);
        let fast = if self.count >= self.fast_delay {
            self.fast.update(x)
        } else {
            f64::NAN
        };
        if self.count < self.slow.lookback() {
            self.count += 1;
            return MacdOutput::NAN;
        }
        let macd = fast - slow;
        let signal = self.signal.update(macd);
        if self.count < self.lookback() {
            self.count += 1;
            return MacdOutput::NAN;
        }
        MacdOutput {
            macd,
            signal,
            hist: macd - signal,
        }
    }

    /// Forgets every close seen, keeping the periods.
    pub fn reset(&mut self) {
        self.fast.reset();
        self.slow.reset();
        self.signal.reset();
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_ema_is_seeded_on_the_slow_emas_first_bar() {
        // MACD(2, 3, 1): slow EMA seeds at index 2 with mean(x0..x2); the fast
        // EMA seeds at the same bar with mean(x1, x2), not from x0.
        let xs = [1.0, 2.0, 4.0, 8.0];
        let mut m = Macd::new(2, 3, 1);
        let out: Vec<MacdOutput> = xs.iter().map(|&x| m.update(x)).collect();
        assert!(out[1].macd.is_nan());
        let slow = 7.0 / 3.0;
        let fast = 3.0;
        assert!((out[2].macd - (fast - slow)).abs() < 1e-15);
        assert_eq!(out[2].signal, out[2].macd);
        assert_eq!(out[2].hist, 0.0);
        // Next bar: fast k = 2/3, slow k = 1/2.
        let fast = fast + (8.0 - fast) * (2.0 / 3.0);
        let slow = slow + (8.0 - slow) * 0.5;
        assert!((out[3].macd - (fast - slow)).abs() < 1e-12);
    }

    #[test]
    fn lookback_and_swap() {
        let mut m = Macd::new(26, 12, 9);
        assert_eq!(m.lookback(), 33);
        let out: Vec<MacdOutput> = (0..40).map(|i| m.update(100.0 + i as f64)).collect();
        assert!(out[32].macd.is_nan() && out[32].signal.is_nan());
        assert!(out[33].macd > 0.0 && out[33].signal.is_finite());
    }

    #[test]
    fn constant_prices_give_zero() {
        let mut m = Macd::new(3, 5, 2);
        let last = (0..30).map(|_| m.update(42.0)).last().unwrap();
        assert_eq!(
            last,
            MacdOutput {
                macd: 0.0,
                signal: 0.0,
                hist: 0.0
            }
        );
    }
}
