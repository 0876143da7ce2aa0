//! Slow stochastic oscillator:
//! `fast %K = 100 * (c - LL_k) / (HH_k - LL_k)` over the last `k` bars' highs
//! and lows, `slow %K = SMA_sk(fast %K)`, `%D = SMA_sd(slow %K)`.
//!
//! TA-Lib convention (`TA_STOCH` with SMA smoothing): lookback
//! `(k - 1) + (sk - 1) + (sd - 1)` (17 for 14/3/3), both lines start on the
//! same bar. Fast %K is computed as `((c - LL) / (HH - LL)) * 100` and is 0
//! when the window is flat, i.e. when `|HH - LL| <= 1e-14 * (|HH| + |LL|)`
//! (a tolerance relative to the price level, so a machine-flat window is not
//! divided into noise).

use super::sma::Sma;

/// One stochastic output row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StochasticOutput {
    /// Slow %K: fast %K smoothed by an SMA; 0 to 100 when each close lies
    /// within its bar's range.
    pub k: f64,
    /// %D: the SMA of slow %K, on the same scale.
    pub d: f64,
}

impl StochasticOutput {
    /// Both lines NaN: the output during the warm-up.
    pub const NAN: StochasticOutput = StochasticOutput {
        k: f64::NAN,
        d: f64::NAN,
    };
}

/// Streaming slow stochastic.
#[derive(Debug, Clone)]
pub struct Stochastic {
    period: usize,
    highs: Vec<f64>,
    lows: Vec<f64>,
    head: usize,
    /// Bars seen; the bar index of the current bar is `count - 1`.
    count: usize,
    highest: f64,
    highest_at: usize,
    lowest: f64,
    lowest_at: usize,
    slow_k: Sma,
    slow_d: Sma,
}

impl Stochastic {
    /// Stochastic(%K lookback, %K smoothing, %D smoothing); periods of 0 are
    /// treated as 1.
    pub fn new(k: usize, slow_k: usize, d: usize) -> Self {
        let period = k.max(1);
        Stochastic {
            period,
            highs: vec![0.0; period],
            lows: vec![0.0; period],
            head: 0,
            count: 0,
            highest: f64::NAN,
            highest_at: 0,
            lowest: f64::NAN,
            lowest_at: 0,
            slow_k: Sma::new(slow_k),
            slow_d: Sma::new(d),
        }
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        (self.period - 1) + self.slow_k.lookback() + self.slow_d.lookback()
    }

    /// Adds a bar and returns slow %K and %D, both NaN during the warm-up.
    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> StochasticOutput {
        let n = self.period;
        self.highs[self.head] = high;
        self.lows[self.head] = low;
        self.head += 1;
        if self.head == n {
            self.head = 0;
        }
        let today = self.count;
        self.count += 1;
        if self.count < n {
            return StochasticOutput::NAN;
        }
        let first = today + 1 - n;
        // The extremes are rescanned only when the bar holding them has left
        // the window: amortised O(1), the same values as a full scan.
        if self.count == n || self.lowest_at < first {
            (self.lowest, self.lowest_at) = extreme(&self.lows, self.head, first, |a, b| a < b);
        } else if low <= self.lowest {
            self.lowest = low;
            self.lowest_at = today;
        }
        if self.count == n || self.highest_at < first {
            (self.highest, self.highest_at) = extreme(&self.highs, self.head, first, |a, b| a > b);
        } else if high >= self.highest {
            self.highest = high;
            self.highest_at = today;
        }

        let range = self.highest - self.lowest;
        let fast_k = if range.abs() <= 1e-14 * (self.highest.abs() + self.lowest.abs()) {
            0.0
        } else {
            ((close - self.lowest) / range) * 100.0
        };
        let k = self.slow_k.update(fast_k);
        if !self.slow_k.is_ready() {
            return StochasticOutput::NAN;
        }
        let d = self.slow_d.update(k);
        if !self.slow_d.is_ready() {
            return StochasticOutput::NAN;
        }
        StochasticOutput { k, d }
    }

    /// Forgets every bar seen, keeping the periods.
    pub fn reset(&mut self) {
        self.highs.fill(0.0);
        self.lows.fill(0.0);
        self.head = 0;
        self.count = 0;
        self.highest = f64::NAN;
        self.highest_at = 0;
        self.lowest = f64::NAN;
        self.lowest_at = 0;
        self.slow_k.reset();
        self.slow_d.reset();
    }
}

/// The first value of the ring `buf` (oldest at `head`) that no later value
/// beats, and its bar index, counting the oldest as bar `first`.
fn extreme(buf: &[f64], head: usize, first: usize, better: fn(f64, f64) -> bool) -> (f64, usize) {
    let (recent, oldest) = buf.split_at(head);
    let mut window = oldest.iter().chain(recent).copied().enumerate();
    let (_, mut best) = window.next().unwrap_or((0, f64::NAN));
    let mut best_at = first;
    for (j, v) in window {
        if better(v, best) {
            best = v;
            best_at = first + j;
        }
    }
    (best, best_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_k_by_hand() {
        // Stochastic(3, 1, 1) is fast %K: window highs 12, 14, 13 and lows
        // 9, 10, 8 -> HH 14, LL 8; close 11 -> 50.
        let mut s = Stochastic::new(3, 1, 1);
        assert!(s.update(12.0, 9.0, 10.0).k.is_nan());
        assert!(s.update(14.0, 10.0, 12.0).k.is_nan());
        let o = s.update(13.0, 8.0, 11.0);
        assert_eq!(o.k, 50.0);
        assert_eq!(o.d, 50.0);
        // The 12/9 bar leaves: HH 14, LL 8 still; close 14 -> 100.
        assert_eq!(s.update(13.5, 9.5, 14.0).k, 100.0);
        // The 14 high leaves: HH 13.5, LL 8; close 8 -> 0.
        assert_eq!(s.update(12.0, 9.0, 8.0).k, 0.0);
    }

    #[test]
    fn smoothing_and_lookback() {
        let mut s = Stochastic::new(14, 3, 3);
        assert_eq!(s.lookback(), 17);
        let out: Vec<StochasticOutput> = (0..30)
            .map(|i| {
                let c = 100.0 + (i as f64 * 0.7).sin() * 5.0;
                s.update(c + 1.0, c - 1.0, c)
            })
            .collect();
        assert!(out[16].k.is_nan() && out[16].d.is_nan());
        assert!(out[17..]
            .iter()
            .all(|o| (0.0..=100.0).contains(&o.k) && (0.0..=100.0).contains(&o.d)));
    }

    #[test]
    fn flat_window_is_zero() {
        let mut s = Stochastic::new(5, 3, 3);
        let last = (0..20).map(|_| s.update(50.0, 50.0, 50.0)).last().unwrap();
        assert_eq!(last, StochasticOutput { k: 0.0, d: 0.0 });
    }

    #[test]
    fn period_one_does_not_panic() {
        let mut s = Stochastic::new(1, 1, 1);
        assert_eq!(s.update(10.0, 8.0, 9.0).k, 50.0);
        assert_eq!(s.update(10.0, 10.0, 10.0).k, 0.0);
    }
}
