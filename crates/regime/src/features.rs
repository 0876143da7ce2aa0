//! The observations the regime model sees, each from bars up to t only:
//!
//! 0. the bar's log return;
//! 1. the log of realised volatility over the last `vol_window` returns;
//! 2. trend strength: the sum of the last `trend_window` returns divided
//!    by their realised volatility times √window (a t-statistic of drift).
//!
//! A [`Standardizer`] fitted on the training window turns them into
//! z-scores; applied later it uses only those (past) statistics.

// Row-major matrices indexed by state and feature read clearer as index loops.
#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

/// The number of features per bar.
pub const FEATURES: usize = 3;
/// Index of the volatility feature (states are ordered by it).
pub const VOLATILITY: usize = 1;

/// Bars before the first complete feature row.
pub fn warm_up(vol_window: usize, trend_window: usize) -> usize {
    vol_window.max(trend_window)
}

/// Causal features for every bar; `None` while the windows fill.
pub fn causal_features(close: &[f64], vol_window: usize, trend_window: usize) -> Vec<Option<[f64; FEATURES]>> {
    let mut out = Vec::with_capacity(close.len());
    let mut returns = Vec::with_capacity(close.len());
    out.push(None);
    for t in 1..close.len() {
        returns.push((close[t] / close[t - 1]).ln());
        let n = returns.len();
        if n < warm_up(vol_window, trend_window) {
            out.push(None);
            continue;
        }
        let vol = realised(&returns[n - vol_window..]);
        let trend_slice = &returns[n - trend_window..];
        let trend_vol = realised(trend_slice).max(1e-12);
        let trend = trend_slice.iter().sum::<f64>() / (trend_vol * (trend_window as f64).sqrt());
        out.push(Some([returns[n - 1], vol.max(1e-12).ln(), trend]));
    }
    out
}

/// Root mean square: volatility around zero drift, the usual estimator
/// for short windows of daily or intraday returns.
fn realised(r: &[f64]) -> f64 {
    (r.iter().map(|x| x * x).sum::<f64>() / r.len() as f64).sqrt()
}

/// Z-scores with statistics from the fitting window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Mean of each feature over the fitting rows.
    pub mean: [f64; FEATURES],
    /// Population standard deviation of each feature, at least 1e-12.
    pub std: [f64; FEATURES],
}

impl Standardizer {
    /// Means and population standard deviations of `rows` (all zeros, with
    /// a std of 1e-12, when there are none).
    pub fn fit(rows: &[[f64; FEATURES]]) -> Standardizer {
        let n = rows.len().max(1) as f64;
        let mut mean = [0.0; FEATURES];
        let mut std = [0.0; FEATURES];
        for r in rows {
            for f in 0..FEATURES {
                mean[f] += r[f] / n;
            }
        }
        for r in rows {
            for f in 0..FEATURES {
                std[f] += (r[f] - mean[f]).powi(2) / n;
            }
        }
        for s in &mut std {
            *s = s.sqrt().max(1e-12);
        }
        Standardizer { mean, std }
    }

    /// `(row - mean) / std`, feature by feature.
    pub fn apply(&self, row: &[f64; FEATURES]) -> [f64; FEATURES] {
        let mut out = [0.0; FEATURES];
        for f in 0..FEATURES {
            out[f] = (row[f] - self.mean[f]) / self.std[f];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_use_only_the_past() {
        let close: Vec<f64> = (0..60)
            .map(|i| 100.0 * (1.0 + 0.01 * ((i * 7 % 11) as f64 - 5.0) / 5.0))
            .collect();
        let a = causal_features(&close, 5, 10);
        let mut changed = close.clone();
        for c in &mut changed[40..] {
            *c *= 1.5;
        }
        let b = causal_features(&changed, 5, 10);
        assert_eq!(a[..40], b[..40]);
        assert_ne!(a[40], b[40]);
        assert!(a[..10].iter().all(Option::is_none));
        assert!(a[10].is_some());
        // Trend of a steady rise is large and positive.
        let mut rising = vec![100.0f64];
        for i in 1..30 {
            rising.push(rising[i - 1] * (0.01 + 0.002 * (i % 2) as f64).exp());
        }
        // Steady gains: the t-statistic nears its ceiling √10.
        let trend = causal_features(&rising, 5, 10)[29].unwrap()[2];
        assert!(trend > 3.0 && trend <= 10f64.sqrt(), "{trend}");
    }

    #[test]
    fn standardizer_makes_z_scores() {
        let rows = vec![[1.0, 2.0, 3.0], [3.0, 2.0, 5.0]];
        let s = Standardizer::fit(&rows);
        assert_eq!(s.apply(&rows[0]), [-1.0, 0.0, -1.0]);
        assert_eq!(s.apply(&rows[1]), [1.0, 0.0, 1.0]);
    }
}
