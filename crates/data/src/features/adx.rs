//! Average directional index (Wilder).
//!
//! `+DM_t = high_t - high_{t-1}` when that exceeds both 0 and
//! `low_{t-1} - low_t` (which is then `-DM_t`, symmetrically), else 0;
//! `+DM_n`, `-DM_n` and `TR_n` are Wilder-smoothed *sums*
//! (`S_t = S_{t-1} - S_{t-1} / n + x_t`); `±DI = 100 * ±DM_n / TR_n`;
//! `DX = 100 * |+DI - -DI| / (+DI + -DI)`; `ADX_t = ((n - 1) * ADX_{t-1} + DX_t) / n`.
//!
//! TA-Lib convention (`TA_ADX`): the smoothed sums start as plain sums of the
//! first `n - 1` one-bar values (bars `1 ..= n - 1`); the next `n` bars apply
//! the Wilder step and their DX values are averaged into the first ADX, at
//! index `2n - 1` (lookback `2n - 1`, 27 for 14). A bar whose `TR_n` is
//! exactly 0, or whose `+DI + -DI` is within 1e-14 of 0, contributes no DX and
//! leaves the ADX unchanged, so flat prices give an ADX of 0, not NaN.

use super::atr::true_range;

/// Streaming ADX.
#[derive(Debug, Clone)]
pub struct Adx {
    period: usize,
    count: usize,
    prev_high: f64,
    prev_low: f64,
    prev_close: f64,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    sum_dx: f64,
    adx: f64,
}

impl Adx {
    /// An ADX over `period` bars (a period of 0 is treated as 1).
    pub fn new(period: usize) -> Self {
        Adx {
            period: period.max(1),
            count: 0,
            prev_high: f64::NAN,
            prev_low: f64::NAN,
            prev_close: f64::NAN,
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            sum_dx: 0.0,
            adx: f64::NAN,
        }
    }

    /// The smoothing period `n` (at least 1).
    pub fn period(&self) -> usize {
        self.period
    }

    /// Number of leading NaN outputs.
    pub fn lookback(&self) -> usize {
        2 * self.period - 1
    }

    /// Adds a bar and returns the ADX in [0, 100], or NaN during the warm-up.
    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> f64 {
        let n = self.period;
        let nf = n as f64;
        let i = self.count;
        if i == 0 {
            self.prev_high = high;
            self.prev_low = low;
            self.prev_close = close;
            self.count = 1;
            return f64::NAN;
        }
        let diff_p = high - self.prev_high;
        let diff_m = self.prev_low - low;
        self.prev_high = high;
        self.prev_low = low;
        let (plus1, minus1) = if diff_m > 0.0 && diff_p < diff_m {
            (0.0, diff_m)
        } else if diff_p > 0.0 && diff_p > diff_m {
            (diff_p, 0.0)
        } else {
            (0.0, 0.0)
        };
        let tr = true_range(high, low, self.prev_close);
        self.prev_close = close;

        if i < n {
            self.plus_dm += plus1;
            self.minus_dm += minus1;
            self.tr += tr;
            self.count += 1;
            return f64::NAN;
        }
        self.minus_dm -= self.minus_dm / nf;
        self.plus_dm -= self.plus_dm / nf;
        self.minus_dm += minus1;
        self.plus_dm += plus1;
        self.tr = self.tr - (self.tr / nf) + tr;
        let dx = self.dx();

        if i < 2 * n - 1 {
            self.sum_dx += dx.unwrap_or(0.0);
            self.count += 1;
            return f64::NAN;
        }
        if i == 2 * n - 1 {
            self.sum_dx += dx.unwrap_or(0.0);
            self.count += 1;
            self.adx = self.sum_dx / nf;
        } else if let Some(dx) = dx {
            self.adx = ((self.adx * (n - 1) as f64) + dx) / nf;
        }
        self.adx
    }

    /// Today's DX, or None when it is undefined (no range, no direction).
    #[inline]
    fn dx(&self) -> Option<f64> {
        // TR_n is a sum of ranges: exactly 0 only when nothing moved.
        if self.tr <= 0.0 || self.tr.is_nan() {
            return None;
        }
        let minus_di = 100.0 * (self.minus_dm / self.tr);
        let plus_di = 100.0 * (self.plus_dm / self.tr);
        let sum = minus_di + plus_di;
        // The DI legs are ratios, so TA-Lib's fixed 1e-14 band is scale-free.
        if -1e-14 < sum && sum < 1e-14 {
            return None;
        }
        Some(100.0 * ((minus_di - plus_di).abs() / sum))
    }

    /// Forgets every bar seen, keeping the period.
    pub fn reset(&mut self) {
        *self = Adx::new(self.period);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_uptrend_is_100() {
        // Every bar: high +1, low +1, so +DM = 1, -DM = 0 -> DX = 100.
        let mut a = Adx::new(3);
        let out: Vec<f64> = (0..12)
            .map(|i| {
                let m = i as f64;
                a.update(m + 1.0, m, m + 0.5)
            })
            .collect();
        assert!(out[..5].iter().all(|v| v.is_nan()));
        assert!(out[5..].iter().all(|&v| (v - 100.0).abs() < 1e-12), "{out:?}");
        assert_eq!(a.lookback(), 5);
    }

    #[test]
    fn hand_computed_first_adx() {
        // Period 2: bar1 accumulates, bars 2..=3 give two DX values.
        // bar1: +DM 1, -DM 0, TR 2.    sums: +1, -0, TR 2
        // bar2: +DM 0, -DM 2, TR 3.    +0.5, -2, TR 4 -> DI 12.5 / 50 -> DX 60
        // bar3: +DM 0, -DM 0, TR 2.    +0.25, -1, TR 4 -> DI 6.25 / 25 -> DX 60
        let bars = [(10.0, 9.0, 9.5), (11.0, 9.0, 10.0), (10.0, 7.0, 8.0), (9.0, 7.0, 8.0)];
        let mut a = Adx::new(2);
        let out: Vec<f64> = bars.iter().map(|&(h, l, c)| a.update(h, l, c)).collect();
        assert!(out[2].is_nan());
        assert!((out[3] - 60.0).abs() < 1e-12, "{out:?}");
    }

    #[test]
    fn flat_prices_give_zero_and_period_one_does_not_panic() {
        let mut a = Adx::new(14);
        let out: Vec<f64> = (0..40).map(|_| a.update(5.0, 5.0, 5.0)).collect();
        assert!(out[27..].iter().all(|&v| v == 0.0));
        let mut a = Adx::new(1);
        assert!(a.update(2.0, 1.0, 1.5).is_nan());
        assert_eq!(a.update(3.0, 2.0, 2.5), 100.0);
    }
}
