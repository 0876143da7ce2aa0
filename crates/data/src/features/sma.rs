//! Simple moving average: `SMA_t = (x_{t-n+1} + ... + x_t) / n`.
//!
//! TA-Lib convention (`TA_SMA`): lookback `n - 1`, so the first value is at
//! index `n - 1`, and the window sum is one running total (add the new value,
//! divide by `n`, then subtract the value leaving the window), as TA-Lib's
//! loop does. That is two additions per bar, which the engine's hot loop
//! needs.
//!
//! A running total accumulates rounding error, so alongside it the average
//! keeps a rigorous bound on that error ([`Sma::error_bound`]) and, every
//! [`RESYNC_EVERY`] updates, resets the total to the exactly rounded window
//! sum so the bound stays near one ulp. [`Sma::exact`] gives the correctly
//! rounded mean (`math.fsum(window) / n`, what backtrader and backtesting.py
//! compute) in O(n). Together they let a caller decide comparisons exactly
//! at the cost of a running total: compare the fast values, and only when two
//! averages are within their bounds of each other, compare the exact ones.
//! That is how the SMA crossover reproduces the peers on exact ties such as
//! ORCL's SMA(10) == SMA(30) on 2004-06-29 (`crates/sim/tests/peers.rs`).

/// Updates between resets of the running total to the exact window sum.
pub const RESYNC_EVERY: usize = 1024;

/// Relative error below which an output counts as tight ([`Sma::is_tight`]).
pub const TIGHT: f64 = 1e-10;

/// Half the distance from 1.0 to the next double: the unit roundoff.
const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;

/// Streaming simple moving average over the last `period` values.
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    /// `period` as a float, converted once rather than on every update.
    divisor: f64,
    /// `1 / period`, for the error bound (a multiply instead of a divide).
    reciprocal: f64,
    buf: Vec<f64>,
    head: usize,
    count: usize,
    sum: f64,
    /// Bound on |sum - exact sum of the values it holds|.
    sum_err: f64,
    /// The last output and the bound on its running total's error, kept so
    /// that [`Sma::error_bound`] costs nothing unless someone asks.
    out: f64,
    out_sum_err: f64,
    /// Whether the last output's error is within [`TIGHT`] of its value.
    out_tight: bool,
    since_resync: usize,
}

/// Knuth's two-sum: `a + b == s + err` exactly.
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// The sum of `xs`, correctly rounded (a double-double accumulation).
fn exact_sum<'a>(xs: impl Iterator<Item = &'a f64>) -> f64 {
    let (mut hi, mut lo) = (0.0f64, 0.0f64);
    for &x in xs {
        let (s, e) = two_sum(hi, x);
        let e = e + lo;
        hi = s + e;
        lo = e - (hi - s);
    }
    hi
}

impl Sma {
    /// A moving average over `period` values (a period of 0 is treated as 1).
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Sma {
            period,
            divisor: period as f64,
            reciprocal: 1.0 / period as f64,
            buf: vec![0.0; period],
            head: 0,
            count: 0,
            sum: 0.0,
            sum_err: 0.0,
            out: f64::NAN,
            out_sum_err: 0.0,
            out_tight: false,
            since_resync: 0,
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

    /// True once a full window has been seen (the last `update` was finite
    /// for finite inputs).
    pub fn is_ready(&self) -> bool {
        self.count >= self.period
    }

    /// Adds `x` and returns the average of the last `period` values, or NaN
    /// during the warm-up.
    #[inline(always)]
    pub fn update(&mut self, x: f64) -> f64 {
        self.sum += x;
        self.sum_err += UNIT_ROUNDOFF * self.sum.abs();
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
        }
        let out = self.sum / self.divisor;
        self.out = out;
        self.out_sum_err = self.sum_err;
        self.out_tight = self.sum_err <= TIGHT * self.sum.abs();
        // buf[head] is the oldest value of the window just averaged; it
        // leaves the running total before the next bar, as in TA-Lib.
        self.sum -= self.buf[self.head];
        self.sum_err += UNIT_ROUNDOFF * self.sum.abs();
        self.since_resync += 1;
        if self.since_resync >= RESYNC_EVERY {
            self.resync();
        }
        out
    }

    /// Resets the running total to the correctly rounded sum of the values
    /// it holds (the window minus the value about to leave).
    #[cold]
    fn resync(&mut self) {
        let leaving = self.head;
        let kept = self
            .buf
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != leaving)
            .map(|(_, x)| x);
        self.sum = exact_sum(kept);
        self.sum_err = UNIT_ROUNDOFF * self.sum.abs();
        self.since_resync = 0;
    }

    /// A bound on how far the last `update`'s output can be from the exact
    /// mean of its window.
    #[inline]
    pub fn error_bound(&self) -> f64 {
        // The total's error shrinks by the division, which rounds once more;
        // the factor covers the rounding of the reciprocal and of this bound.
        (self.out_sum_err * self.reciprocal + UNIT_ROUNDOFF * self.out.abs()) * (1.0 + 8.0 * UNIT_ROUNDOFF)
    }

    /// True when the last output is within `TIGHT` (1e-10) relative of the
    /// exact mean, up to one more rounding: a one-multiply check that lets
    /// callers skip [`Sma::error_bound`] for values that differ by more.
    #[inline]
    pub fn is_tight(&self) -> bool {
        self.out_tight
    }

    /// The correctly rounded mean of the last `update`'s window:
    /// `fsum(window) / period`. NaN during the warm-up. O(period).
    pub fn exact(&self) -> f64 {
        if self.count < self.period {
            return f64::NAN;
        }
        exact_sum(self.buf.iter()) / self.divisor
    }

    /// Forgets every value seen, keeping the period.
    pub fn reset(&mut self) {
        self.buf.fill(0.0);
        self.head = 0;
        self.count = 0;
        self.sum = 0.0;
        self.sum_err = 0.0;
        self.out = f64::NAN;
        self.out_sum_err = 0.0;
        self.out_tight = false;
        self.since_resync = 0;
    }
}

/// One bar of an [`Sma`]'s output as a caller comparing averages needs it:
/// the running value, its error bound and whether it is tight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmaPoint {
    /// [`Sma::update`]'s output (NaN during the warm-up).
    pub value: f64,
    /// [`Sma::error_bound`] after that update.
    pub bound: f64,
    /// [`Sma::is_tight`] after that update.
    pub tight: bool,
}

/// Every bar's [`SmaPoint`] of a `period`-bar average over `xs`, from the
/// first value: what an [`Sma`] fed `xs` in order reports, computed once so
/// that many strategies sharing a window need not each keep the average
/// (parameter searches, issue 25).
pub fn sma_track(xs: &[f64], period: usize) -> Vec<SmaPoint> {
    let mut sma = Sma::new(period);
    xs.iter()
        .map(|&x| {
            let value = sma.update(x);
            SmaPoint {
                value,
                bound: sma.error_bound(),
                tight: sma.is_tight(),
            }
        })
        .collect()
}

/// [`Sma::exact`] for an average fed `xs[0..=end]` in order: the window's
/// values summed in the order of the average's ring buffer, so the result
/// is bit for bit the one the streaming average gives. NaN during the
/// warm-up.
pub fn exact_mean_at(xs: &[f64], end: usize, period: usize) -> f64 {
    let period = period.max(1);
    if end + 1 < period || end >= xs.len() {
        return f64::NAN;
    }
    // Slot i of the ring holds the latest value whose index is i mod period.
    let slots = (0..period).map(|i| &xs[end - (end + period - i) % period]);
    exact_sum(slots) / period as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_track_and_the_exact_mean_at_a_bar_are_what_the_streaming_average_reports() {
        // Values spread over many magnitudes, long enough to pass a resync.
        let xs: Vec<f64> = (0..3000)
            .map(|i| ((i * 7919) % 1000) as f64 * 10f64.powi(i % 7 - 3) + 1e-3)
            .collect();
        for period in [1, 2, 5, 30, 1100] {
            let track = sma_track(&xs, period);
            let mut sma = Sma::new(period);
            for (k, &x) in xs.iter().enumerate() {
                let value = sma.update(x);
                let p = track[k];
                assert_eq!(p.value.to_bits(), value.to_bits(), "period {period}, bar {k}");
                assert_eq!(p.bound.to_bits(), sma.error_bound().to_bits());
                assert_eq!(p.tight, sma.is_tight());
                let exact = exact_mean_at(&xs, k, period);
                assert_eq!(exact.to_bits(), sma.exact().to_bits(), "period {period}, bar {k}");
            }
        }
        assert!(exact_mean_at(&xs, 3000, 5).is_nan());
    }

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
            assert_eq!(s.exact(), x);
        }
    }

    #[test]
    fn exact_mean_is_correct_where_the_running_total_drifts_and_the_bound_covers_it() {
        // The running total loses the 1.0 added beside 1e16 (doubles are 2
        // apart there) and, once 1e16 leaves, reports 0.5; the exact mean is
        // 1.0 and the error bound admits the difference.
        let mut t = Sma::new(2);
        t.update(1e16);
        t.update(1.0);
        let fast = t.update(1.0);
        assert_eq!(fast, 0.5);
        assert_eq!(t.exact(), 1.0);
        assert!((fast - t.exact()).abs() <= t.error_bound());
    }

    #[test]
    fn bound_always_covers_the_running_error_and_resync_keeps_it_small() {
        let mut s = Sma::new(30);
        let mut x = 100.0f64;
        for i in 0..20_000u64 {
            // A deterministic rough walk with inexact decimals.
            x *= 1.0 + ((i.wrapping_mul(2_654_435_761) % 1000) as f64 - 499.5) * 1e-5;
            let v = s.update(x);
            if v.is_finite() {
                let exact = s.exact();
                assert!((v - exact).abs() <= s.error_bound(), "bar {i}: {v} vs {exact}");
                assert!(s.error_bound() <= 1e-12 * exact.abs(), "resync keeps the bound tight");
                assert!(s.is_tight());
            }
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut s = Sma::new(2);
        s.update(10.0);
        s.update(20.0);
        s.reset();
        assert!(s.update(1.0).is_nan());
        assert!(s.exact().is_nan());
        assert_eq!(s.update(3.0), 2.0);
    }
}
