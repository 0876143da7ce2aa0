//! Statistics that make a trading figure honest: how uncertain a Sharpe
//! ratio is, whether it beats a benchmark's, and how much of it a search
//! over many trials explains.
//!
//! - [`moments`]: running mean and variance, allocation-free;
//! - [`normal`]: the standard normal distribution and its quantiles;
//! - [`bootstrap`]: the stationary bootstrap (Politis and Romano, 1994),
//!   which resamples blocks of random length so the serial dependence of
//!   returns survives;
//! - [`sharpe`]: the Sharpe ratio with its bootstrap interval, its
//!   difference to a benchmark with an interval and p-value, and the
//!   probabilistic and deflated Sharpe ratios (Bailey and López de Prado,
//!   2012 and 2014);
//! - [`pbo`]: the probability of backtest overfitting by combinatorially
//!   symmetric cross-validation, for the trials of a sweep.

pub mod bootstrap;
pub mod moments;
pub mod normal;
pub mod pbo;
pub mod sharpe;

use serde::Serialize;

use sharpe::{
    deflated_sharpe, sharpe_difference, sharpe_interval, BootstrapSettings, ReturnMoments, SharpeDifference,
    SharpeInterval,
};

/// Simple per-point returns of an equity curve (`e[t] / e[t-1] - 1`; 0
/// where the previous point is not positive).
pub fn equity_returns(equity: &[f64]) -> Vec<f64> {
    equity
        .windows(2)
        .map(|w| if w[0] > 0.0 { w[1] / w[0] - 1.0 } else { 0.0 })
        .collect()
}

/// A strategy's equity curve against a benchmark's over the same bars: the
/// figures an evaluation report states with their uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// The strategy's annualised Sharpe ratio and interval.
    pub sharpe: SharpeInterval,
    /// The benchmark's.
    pub benchmark_sharpe: SharpeInterval,
    /// Strategy minus benchmark, with interval and p-value (`None` when
    /// the curves differ in length).
    pub difference: Option<SharpeDifference>,
    /// The deflated Sharpe ratio given `trials`: the probability that the
    /// true Sharpe ratio beats what the best of that many unskilled trials
    /// would show. With one trial, the probability that it is above 0.
    pub deflated_sharpe: f64,
    /// Trials the deflation accounts for.
    pub trials: usize,
    /// Returns the figures are computed from.
    pub observations: usize,
}

/// Compares `equity` with `benchmark` (curves over the same bars), with
/// `per_year` points a year, deflating for `trials` trials whose per-bar
/// Sharpe ratios varied with `trial_variance` (ignored for one trial).
pub fn compare(
    equity: &[f64],
    benchmark: &[f64],
    per_year: f64,
    trials: usize,
    trial_variance: f64,
    cfg: &BootstrapSettings,
) -> Comparison {
    let (r, b) = (equity_returns(equity), equity_returns(benchmark));
    let m = ReturnMoments::of(&r);
    Comparison {
        sharpe: sharpe_interval(&r, per_year, cfg),
        benchmark_sharpe: sharpe_interval(&b, per_year, cfg),
        difference: sharpe_difference(&r, &b, per_year, cfg),
        deflated_sharpe: deflated_sharpe(m.sharpe(), m.n, m.skew, m.kurtosis, trials.max(1), trial_variance),
        trials: trials.max(1),
        observations: r.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comparison_with_itself_differs_by_nothing_and_a_flat_curve_is_reported_flat() {
        let equity: Vec<f64> = (0..300)
            .map(|i| 100.0 * (1.0 + 0.001 * ((i * 7 % 11) as f64 - 4.0)))
            .collect();
        let cfg = BootstrapSettings {
            resamples: 200,
            ..Default::default()
        };
        let c = compare(&equity, &equity, 252.0, 1, 0.0, &cfg);
        assert_eq!(c.sharpe, c.benchmark_sharpe);
        assert_eq!(c.difference.unwrap().difference, 0.0);
        assert_eq!(c.observations, 299);
        let flat = vec![100.0; 300];
        let c = compare(&flat, &equity, 252.0, 1, 0.0, &cfg);
        assert_eq!((c.sharpe.sharpe, c.sharpe.low, c.sharpe.high), (0.0, 0.0, 0.0));
        assert!(
            (c.deflated_sharpe - 0.5).abs() < 1e-12,
            "no evidence either way: {}",
            c.deflated_sharpe
        );
        let r = equity_returns(&[100.0, 110.0, 0.0, 5.0]);
        assert!((r[0] - 0.1).abs() < 1e-12 && r[1] == -1.0 && r[2] == 0.0, "{r:?}");
    }
}
