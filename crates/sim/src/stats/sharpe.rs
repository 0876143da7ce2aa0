//! The Sharpe ratio and how far to trust it.
//!
//! Ratios here are of simple per-bar returns; the `per_year` argument
//! annualises by `sqrt(per_year)`. A series without variation (a flat
//! policy) has a Sharpe ratio of 0, never "undefined", so a flat policy is
//! reported as flat rather than dropped.

use serde::Serialize;

use super::bootstrap::{default_block_length, quantile_sorted, StationaryBootstrap};
use super::normal;

/// How intervals are bootstrapped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapSettings {
    /// Resamples drawn.
    pub resamples: usize,
    /// Mean block length; `None` uses `T^(1/3)`.
    pub mean_block: Option<f64>,
    /// Two-sided coverage of the interval (0.95 for a 95% interval).
    pub confidence: f64,
    /// Seeds the resampling, so a report is reproducible.
    pub seed: u64,
}

impl Default for BootstrapSettings {
    /// 2,000 resamples, `T^(1/3)` blocks, 95%, seed 0.
    fn default() -> Self {
        BootstrapSettings {
            resamples: 2000,
            mean_block: None,
            confidence: 0.95,
            seed: 0,
        }
    }
}

/// A Sharpe ratio with its bootstrap percentile interval (annualised).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SharpeInterval {
    /// The estimate on the series itself.
    pub sharpe: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

/// A strategy's Sharpe ratio minus a benchmark's over the same bars, with
/// a paired-bootstrap interval and a two-sided p-value for "no difference".
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SharpeDifference {
    /// Strategy minus benchmark, annualised.
    pub difference: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// Share of centred resampled differences at least as far from 0 as
    /// the estimate (with the usual +1 correction).
    pub p_value: f64,
}

/// Sample moments of a return series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReturnMoments {
    /// Observations.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Standard deviation (n - 1 denominator).
    pub std: f64,
    /// Skewness (third standardised moment, population form).
    pub skew: f64,
    /// Kurtosis (fourth standardised moment, population form; 3 for a
    /// normal distribution).
    pub kurtosis: f64,
}

impl ReturnMoments {
    /// The moments of `returns`; skew 0 and kurtosis 3 when there is no
    /// variation.
    pub fn of(returns: &[f64]) -> Self {
        let n = returns.len();
        let nf = n.max(1) as f64;
        let mean = returns.iter().sum::<f64>() / nf;
        let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
        for r in returns {
            let d = r - mean;
            m2 += d * d;
            m3 += d * d * d;
            m4 += d * d * d * d;
        }
        let std = if n > 1 { (m2 / (nf - 1.0)).sqrt() } else { 0.0 };
        let pop_var = m2 / nf;
        let (skew, kurtosis) = if pop_var > 0.0 {
            (m3 / nf / pop_var.powf(1.5), m4 / nf / (pop_var * pop_var))
        } else {
            (0.0, 3.0)
        };
        ReturnMoments {
            n,
            mean,
            std,
            skew,
            kurtosis,
        }
    }

    /// The per-bar Sharpe ratio (mean over std; 0 without variation).
    pub fn sharpe(&self) -> f64 {
        if self.std > 1e-15 {
            self.mean / self.std
        } else {
            0.0
        }
    }
}

/// The annualised Sharpe ratio of `returns` (0 without variation).
pub fn sharpe(returns: &[f64], per_year: f64) -> f64 {
    ReturnMoments::of(returns).sharpe() * per_year.sqrt()
}

/// Per-bar Sharpe ratio of `returns` taken at `indices`, without copying.
fn sharpe_at(returns: &[f64], indices: &[usize]) -> f64 {
    let n = indices.len() as f64;
    if indices.len() < 2 {
        return 0.0;
    }
    let mean = indices.iter().map(|&i| returns[i]).sum::<f64>() / n;
    let var = indices.iter().map(|&i| (returns[i] - mean).powi(2)).sum::<f64>() / (n - 1.0);
    if var.sqrt() > 1e-15 {
        mean / var.sqrt()
    } else {
        0.0
    }
}

fn bootstrap(n: usize, cfg: &BootstrapSettings) -> StationaryBootstrap {
    StationaryBootstrap::new(n, cfg.mean_block.unwrap_or_else(|| default_block_length(n)), cfg.seed)
}

/// The annualised Sharpe ratio of `returns` with a stationary-bootstrap
/// percentile interval.
pub fn sharpe_interval(returns: &[f64], per_year: f64, cfg: &BootstrapSettings) -> SharpeInterval {
    let scale = per_year.sqrt();
    let estimate = sharpe(returns, per_year);
    let mut boot = bootstrap(returns.len(), cfg);
    let mut indices = Vec::with_capacity(returns.len());
    let mut draws: Vec<f64> = (0..cfg.resamples)
        .map(|_| {
            boot.next_indices(&mut indices);
            sharpe_at(returns, &indices) * scale
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let tail = (1.0 - cfg.confidence) / 2.0;
    SharpeInterval {
        sharpe: estimate,
        low: quantile_sorted(&draws, tail),
        high: quantile_sorted(&draws, 1.0 - tail),
    }
}

/// `returns`' annualised Sharpe ratio minus `benchmark`'s over the same
/// bars, resampling both with the same indices (so their correlation is
/// kept). `None` when the series differ in length.
pub fn sharpe_difference(
    returns: &[f64],
    benchmark: &[f64],
    per_year: f64,
    cfg: &BootstrapSettings,
) -> Option<SharpeDifference> {
    if returns.len() != benchmark.len() {
        return None;
    }
    let scale = per_year.sqrt();
    let estimate = sharpe(returns, per_year) - sharpe(benchmark, per_year);
    let mut boot = bootstrap(returns.len(), cfg);
    let mut indices = Vec::with_capacity(returns.len());
    let mut draws: Vec<f64> = (0..cfg.resamples)
        .map(|_| {
            boot.next_indices(&mut indices);
            (sharpe_at(returns, &indices) - sharpe_at(benchmark, &indices)) * scale
        })
        .collect();
    let beyond = draws
        .iter()
        .filter(|d| (**d - estimate).abs() >= estimate.abs() - 1e-12)
        .count();
    draws.sort_by(f64::total_cmp);
    let tail = (1.0 - cfg.confidence) / 2.0;
    Some(SharpeDifference {
        difference: estimate,
        low: quantile_sorted(&draws, tail),
        high: quantile_sorted(&draws, 1.0 - tail),
        p_value: ((beyond + 1) as f64 / (draws.len() + 1) as f64).min(1.0),
    })
}

/// The probabilistic Sharpe ratio (Bailey and López de Prado, 2012): the
/// probability that the true per-bar Sharpe ratio exceeds `benchmark`
/// given an estimate `sharpe` from `n` returns with `skew` and `kurtosis`
/// (non-excess). Both ratios per bar, not annualised.
pub fn probabilistic_sharpe(sharpe: f64, benchmark: f64, n: usize, skew: f64, kurtosis: f64) -> f64 {
    if n < 2 {
        return f64::NAN;
    }
    let spread = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe;
    if spread <= 0.0 {
        return f64::NAN;
    }
    normal::cdf((sharpe - benchmark) * ((n - 1) as f64).sqrt() / spread.sqrt())
}

/// The Sharpe ratio the best of `trials` independent unskilled trials is
/// expected to reach when their estimates vary with `variance` (Bailey and
/// López de Prado, 2014, after the false strategy theorem); 0 for one trial.
pub fn expected_max_sharpe(trials: usize, variance: f64) -> f64 {
    if trials <= 1 || variance <= 0.0 {
        return 0.0;
    }
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    let n = trials as f64;
    variance.sqrt()
        * ((1.0 - EULER_GAMMA) * normal::quantile(1.0 - 1.0 / n)
            + EULER_GAMMA * normal::quantile(1.0 - 1.0 / (n * std::f64::consts::E)))
}

/// The deflated Sharpe ratio: the probabilistic Sharpe ratio against the
/// best that `trials` trials with Sharpe variance `trial_variance` would
/// reach by luck. With one trial it is the probability that the true
/// Sharpe ratio is above 0. Per-bar ratios and variance.
pub fn deflated_sharpe(sharpe: f64, n: usize, skew: f64, kurtosis: f64, trials: usize, trial_variance: f64) -> f64 {
    probabilistic_sharpe(sharpe, expected_max_sharpe(trials, trial_variance), n, skew, kurtosis)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    use super::*;

    fn normal_returns(n: usize, mean: f64, sd: f64, seed: u64) -> Vec<f64> {
        let d = Normal::new(mean, sd).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| d.sample(&mut rng)).collect()
    }

    #[test]
    fn the_deflated_sharpe_ratio_matches_the_papers_worked_example() {
        // Bailey and López de Prado (2014), section "A numerical example":
        // an annualised Sharpe ratio of 2.5 over five years of daily
        // returns (T = 1250), skew -3, kurtosis 10, the best of N = 100
        // trials whose annualised Sharpe ratios have variance 0.5, with 250
        // days a year. The paper reports DSR = 0.9004 (and E[max] about
        // 0.1132 per day).
        let day = 250f64;
        let sr = 2.5 / day.sqrt();
        let e_max = expected_max_sharpe(100, 0.5 / day);
        assert!((e_max - 0.1132).abs() < 5e-4, "{e_max}");
        let dsr = deflated_sharpe(sr, 1250, -3.0, 10.0, 100, 0.5 / day);
        assert!((dsr - 0.9004).abs() < 5e-4, "{dsr}");
        // One trial: the probability the true ratio is above 0.
        let one = deflated_sharpe(sr, 1250, -3.0, 10.0, 1, 0.5 / day);
        assert_eq!(one, probabilistic_sharpe(sr, 0.0, 1250, -3.0, 10.0));
        assert!(one > dsr);
    }

    #[test]
    fn moments_match_a_hand_computation_and_a_flat_series_has_sharpe_zero() {
        let m = ReturnMoments::of(&[1.0, 2.0, 3.0, 10.0]);
        // mean 4, deviations -3 -2 -1 6: m2 = 50, m3 = 180, m4 = 1394.
        assert_eq!(m.mean, 4.0);
        assert!((m.std - (50.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((m.skew - (180.0 / 4.0) / (12.5f64).powf(1.5)).abs() < 1e-12);
        assert!((m.kurtosis - (1394.0 / 4.0) / (12.5 * 12.5)).abs() < 1e-12);
        let flat = [0.0; 100];
        assert_eq!(sharpe(&flat, 252.0), 0.0);
        let i = sharpe_interval(&flat, 252.0, &BootstrapSettings::default());
        assert_eq!((i.sharpe, i.low, i.high), (0.0, 0.0, 0.0), "flat is reported as flat");
    }

    #[test]
    fn the_interval_covers_the_true_sharpe_about_as_often_as_it_claims() {
        // iid normal returns with a true annualised Sharpe of 1: 95%
        // intervals from 500 bars should cover it in roughly 95% of 200
        // independent samples, and be about as wide as Lo's (2002)
        // asymptotic interval, 2 x 1.96 x sqrt((1 + SR^2 / 2) / T) per bar.
        let per_bar = 1.0 / 252f64.sqrt();
        let cfg = BootstrapSettings {
            resamples: 500,
            mean_block: Some(1.0),
            ..Default::default()
        };
        let (mut covered, mut width) = (0, 0.0);
        for seed in 0..200 {
            let r = normal_returns(500, 0.01 * per_bar, 0.01, seed);
            let i = sharpe_interval(&r, 252.0, &BootstrapSettings { seed, ..cfg });
            covered += usize::from(i.low <= 1.0 && 1.0 <= i.high);
            width += (i.high - i.low) / 200.0;
        }
        let lo_width = 2.0 * 1.96 * ((1.0 + per_bar * per_bar / 2.0) / 500.0f64).sqrt() * 252f64.sqrt();
        assert!((180..=197).contains(&covered), "covered {covered} of 200");
        assert!((width / lo_width - 1.0).abs() < 0.1, "width {width} vs Lo's {lo_width}");
    }

    #[test]
    fn a_strategy_equal_to_its_benchmark_differs_by_nothing_and_a_steady_edge_is_significant() {
        let bench = normal_returns(750, 0.0002, 0.01, 1);
        let cfg = BootstrapSettings::default();
        let same = sharpe_difference(&bench, &bench, 252.0, &cfg).unwrap();
        assert_eq!(
            (same.difference, same.low, same.high, same.p_value),
            (0.0, 0.0, 0.0, 1.0)
        );
        // The benchmark plus 0.1% a bar and a little noise of its own.
        let noise = normal_returns(750, 0.0, 0.002, 2);
        let better: Vec<f64> = bench.iter().zip(&noise).map(|(b, e)| b + 0.001 + e).collect();
        let d = sharpe_difference(&better, &bench, 252.0, &cfg).unwrap();
        assert!(d.difference > 1.0 && d.low > 0.0 && d.p_value < 0.01, "{d:?}");
        // Noise around the same benchmark is not.
        let other: Vec<f64> = bench.iter().zip(&noise).map(|(b, e)| b + e).collect();
        let d = sharpe_difference(&other, &bench, 252.0, &cfg).unwrap();
        assert!(d.low < 0.0 && d.high > 0.0 && d.p_value > 0.05, "{d:?}");
        assert!(sharpe_difference(&bench, &bench[1..], 252.0, &cfg).is_none());
    }

    #[test]
    fn the_same_seed_gives_the_same_interval() {
        let r = normal_returns(300, 0.0005, 0.01, 9);
        let cfg = BootstrapSettings::default();
        assert_eq!(sharpe_interval(&r, 252.0, &cfg), sharpe_interval(&r, 252.0, &cfg));
        let other = sharpe_interval(&r, 252.0, &BootstrapSettings { seed: 1, ..cfg });
        assert_ne!(other, sharpe_interval(&r, 252.0, &cfg));
    }
}
