//! Risk budgets that follow the market: hierarchical risk parity weights
//! over a Ledoit-Wolf covariance of the last `window` bars' returns,
//! recomputed every `rebalance` bars. Causal: a bar's return enters after
//! its close, so the weights an entry is sized with never saw its bar.

use super::{hrp, ledoit_wolf};

/// Rolling HRP weights for a fixed set of instruments.
#[derive(Debug, Clone)]
pub struct RiskBudgets {
    window: usize,
    rebalance: usize,
    /// Each instrument's latest close, and at the previous timestamp.
    close: Vec<f64>,
    previous: Vec<f64>,
    /// The last `window` rows of returns, a ring of `window x n`.
    ring: Vec<f64>,
    /// Rows written so far (the ring's head is `rows % window`).
    rows: usize,
    /// The weights in force; NaN until the window first fills.
    weights: Vec<f64>,
}

impl RiskBudgets {
    /// Budgets for `instruments` instruments.
    pub fn new(instruments: usize, window: usize, rebalance: usize) -> Self {
        let window = window.max(2);
        RiskBudgets {
            window,
            rebalance: rebalance.max(1),
            close: vec![f64::NAN; instruments],
            previous: vec![f64::NAN; instruments],
            ring: vec![0.0; window * instruments],
            rows: 0,
            weights: vec![if instruments == 1 { 1.0 } else { f64::NAN }; instruments],
        }
    }

    /// Forgets everything (a new episode or run).
    pub fn reset(&mut self) {
        *self = RiskBudgets::new(self.close.len(), self.window, self.rebalance);
    }

    /// Instrument `i` closed at `price`.
    #[inline]
    pub fn close(&mut self, i: usize, price: f64) {
        self.close[i] = price;
    }

    /// Every instrument at this timestamp has closed: records the row of
    /// returns since the previous timestamp (an instrument without a new
    /// bar returns 0) and recomputes the weights when due.
    pub fn end_timestamp(&mut self) {
        let n = self.close.len();
        if n < 2 {
            return;
        }
        let ready = self
            .previous
            .iter()
            .chain(&self.close)
            .all(|p| p.is_finite() && *p > 0.0);
        if ready {
            let head = (self.rows % self.window) * n;
            for i in 0..n {
                self.ring[head + i] = self.close[i] / self.previous[i] - 1.0;
            }
            self.rows += 1;
            let full = self.rows >= self.window;
            if full && (self.rows - self.window).is_multiple_of(self.rebalance) {
                self.recompute();
            }
        }
        self.previous.copy_from_slice(&self.close);
    }

    fn recompute(&mut self) {
        let n = self.close.len();
        // Oldest row first; the order does not change the covariance, but
        // keeps it the same as a reader's window.
        let head = self.rows % self.window;
        let mut rows = Vec::with_capacity(self.ring.len());
        rows.extend_from_slice(&self.ring[head * n..]);
        rows.extend_from_slice(&self.ring[..head * n]);
        // A flat instrument (no variance) keeps the previous weights.
        if let Some(allocation) = ledoit_wolf(&rows, n).and_then(|s| hrp(&s.covariance).ok()) {
            self.weights = allocation.weights;
        }
    }

    /// Instrument `i`'s weight (its share of the budget), NaN until known.
    #[inline]
    pub fn weight(&self, i: usize) -> f64 {
        self.weights[i]
    }

    /// Every weight, in instrument order.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_appear_when_the_window_fills_and_match_a_direct_computation() {
        let closes = |t: usize| {
            [
                100.0 + (t as f64 * 0.7).sin(),
                50.0 + 3.0 * (t as f64 * 1.3).cos(),
                20.0 + (t as f64).sqrt(),
            ]
        };
        let mut b = RiskBudgets::new(3, 10, 5);
        let mut returns = Vec::new();
        for t in 0..16 {
            for (i, p) in closes(t).iter().enumerate() {
                b.close(i, *p);
            }
            b.end_timestamp();
            if t > 0 {
                let (now, before) = (closes(t), closes(t - 1));
                returns.extend((0..3).map(|i| now[i] / before[i] - 1.0));
            }
            // Ten returns need eleven closes.
            assert_eq!(b.weight(0).is_nan(), t < 10, "t = {t}");
        }
        // Recomputed at rows 10 and 15: the last ten returns.
        let window = &returns[returns.len() - 30..];
        let want = hrp(&ledoit_wolf(window, 3).unwrap().covariance).unwrap().weights;
        for (a, w) in b.weights().iter().zip(&want) {
            assert!((a - w).abs() < 1e-15, "{:?} vs {want:?}", b.weights());
        }
        b.reset();
        assert!(b.weight(1).is_nan());
        assert_eq!(RiskBudgets::new(1, 10, 5).weight(0), 1.0, "one instrument takes it all");
    }
}
