//! Correlation tracking: each instrument's log returns over a rolling
//! window (a ring buffer filled once per timestamp, nothing allocated per
//! bar), and on demand the correlation matrix and each position's
//! contribution to the portfolio's volatility.
//!
//! With weights `w` (position value over equity) and the window's sample
//! covariance `S`, the portfolio's volatility per bar is
//! `sigma = sqrt(w' S w)` and instrument `i` contributes
//! `w_i (S w)_i / sigma`; the contributions add up to `sigma`.

use serde::{Deserialize, Serialize};

/// The portfolio's risk at one timestamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskSnapshot {
    /// Timestamps of returns behind it.
    pub returns: usize,
    /// Pearson correlations of the instruments' returns (NaN where an
    /// instrument did not move).
    pub correlation: Vec<Vec<f64>>,
    /// Each instrument's position value over equity.
    pub weights: Vec<f64>,
    /// Each instrument's share of the portfolio's volatility per bar.
    pub contributions: Vec<f64>,
    /// The portfolio's volatility per bar (the contributions' sum).
    pub volatility: f64,
}

/// Rolling returns of several instruments.
#[derive(Debug, Clone)]
pub struct CorrelationTracker {
    window: usize,
    n: usize,
    /// `returns[t * n + i]`, ring over `t`.
    returns: Vec<f64>,
    next: usize,
    filled: usize,
    last_close: Vec<f64>,
    prev_close: Vec<f64>,
}

impl CorrelationTracker {
    /// Tracks `n` instruments over `window` timestamps.
    pub fn new(n: usize, window: usize) -> Self {
        let window = window.max(2);
        CorrelationTracker {
            window,
            n,
            returns: vec![0.0; window * n],
            next: 0,
            filled: 0,
            last_close: vec![f64::NAN; n],
            prev_close: vec![f64::NAN; n],
        }
    }

    /// Instrument `i` closed at `close`.
    pub fn on_close(&mut self, i: usize, close: f64) {
        self.last_close[i] = close;
    }

    /// The timestamp is over: one return per instrument (0 for one with no
    /// new bar or no earlier close).
    pub fn end_timestamp(&mut self) {
        let row = self.next * self.n;
        for i in 0..self.n {
            let (p, c) = (self.prev_close[i], self.last_close[i]);
            self.returns[row + i] = if p > 0.0 && c > 0.0 { (c / p).ln() } else { 0.0 };
            self.prev_close[i] = c;
        }
        self.next = (self.next + 1) % self.window;
        self.filled = (self.filled + 1).min(self.window);
    }

    /// The last close seen per instrument.
    pub fn closes(&self) -> &[f64] {
        &self.last_close
    }

    /// The snapshot for positions `qty` at the last closes and `equity`;
    /// `None` before two returns are in.
    pub fn snapshot(&self, qty: &[f64], equity: f64) -> Option<RiskSnapshot> {
        let (n, m) = (self.n, self.filled);
        if m < 2 || equity <= 0.0 {
            return None;
        }
        let rows = || (0..m).map(|t| &self.returns[t * n..(t + 1) * n]);
        let mut mean = vec![0.0; n];
        for r in rows() {
            for i in 0..n {
                mean[i] += r[i] / m as f64;
            }
        }
        let mut cov = vec![vec![0.0; n]; n];
        for r in rows() {
            for i in 0..n {
                let di = r[i] - mean[i];
                for j in i..n {
                    cov[i][j] += di * (r[j] - mean[j]) / (m - 1) as f64;
                }
            }
        }
        // Mirror the upper triangle.
        for i in 1..n {
            let (upper, lower) = cov.split_at_mut(i);
            for (j, row) in upper.iter().enumerate() {
                lower[0][j] = row[i];
            }
        }
        let correlation = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        let d = (cov[i][i] * cov[j][j]).sqrt();
                        if d > 0.0 {
                            cov[i][j] / d
                        } else {
                            f64::NAN
                        }
                    })
                    .collect()
            })
            .collect();
        let weights: Vec<f64> = (0..n)
            .map(|i| {
                let c = self.last_close[i];
                if c.is_finite() {
                    qty.get(i).copied().unwrap_or(0.0) * c / equity
                } else {
                    0.0
                }
            })
            .collect();
        let sw: Vec<f64> = (0..n).map(|i| (0..n).map(|j| cov[i][j] * weights[j]).sum()).collect();
        let variance: f64 = (0..n).map(|i| weights[i] * sw[i]).sum();
        let volatility = variance.max(0.0).sqrt();
        let contributions = (0..n)
            .map(|i| {
                if volatility > 0.0 {
                    weights[i] * sw[i] / volatility
                } else {
                    0.0
                }
            })
            .collect();
        Some(RiskSnapshot {
            returns: m,
            correlation,
            weights,
            contributions,
            volatility,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two instruments moving together and one moving against them.
    fn tracked() -> CorrelationTracker {
        let mut t = CorrelationTracker::new(3, 50);
        let mut p = [100.0, 50.0, 80.0];
        for k in 0..80 {
            let r = if k % 3 == 0 { 0.02 } else { -0.01 } * (1.0 + (k % 5) as f64 / 10.0);
            p[0] *= 1.0 + r;
            p[1] *= 1.0 + 2.0 * r;
            p[2] *= 1.0 - r;
            for (i, c) in p.iter().enumerate() {
                t.on_close(i, *c);
            }
            t.end_timestamp();
        }
        t
    }

    #[test]
    fn correlations_and_contributions_follow_their_definitions() {
        let t = tracked();
        let s = t.snapshot(&[10.0, 0.0, 5.0], 10_000.0).unwrap();
        assert_eq!(s.returns, 50);
        assert!((s.correlation[0][1] - 1.0).abs() < 1e-3, "{:?}", s.correlation);
        assert!((s.correlation[0][2] + 1.0).abs() < 1e-3);
        assert!((s.correlation[1][1] - 1.0).abs() < 1e-12);
        // The contributions add up to the volatility; a flat position adds 0.
        let sum: f64 = s.contributions.iter().sum();
        assert!((sum - s.volatility).abs() < 1e-12 * s.volatility.max(1.0));
        assert_eq!(s.contributions[1], 0.0);
        // Long the first and long its mirror image: the hedge lowers the
        // volatility below the first position's alone.
        let alone = t.snapshot(&[10.0, 0.0, 0.0], 10_000.0).unwrap();
        assert!(s.volatility < alone.volatility);
        assert!(s.contributions[2] < 0.0, "the hedge's contribution is negative");
    }

    #[test]
    fn nothing_before_two_returns() {
        let mut t = CorrelationTracker::new(2, 10);
        assert!(t.snapshot(&[1.0, 1.0], 100.0).is_none());
        t.on_close(0, 1.0);
        t.on_close(1, 1.0);
        t.end_timestamp();
        assert!(t.snapshot(&[1.0, 1.0], 100.0).is_none());
    }
}
