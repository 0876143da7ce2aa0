//! Monte Carlo stress tests of a backtest's equity curve.
//!
//! The per-bar returns are resampled with a circular block bootstrap (blocks
//! keep short-range dependence such as volatility clustering) and optionally
//! scaled around their mean to stress volatility; each resampled path is
//! compounded from the starting equity. The report gives the distribution of
//! final equity and of maximum drawdown, and the probability of a loss.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Parameters of [`stress`] (`monte_carlo:` in settings, plus a seed).
#[derive(Debug, Clone, PartialEq)]
pub struct StressConfig {
    /// Resampled paths per volatility scale.
    pub paths: usize,
    /// Returns per bootstrap block, clamped to the number of returns.
    pub block_size: usize,
    /// Multipliers of each return's deviation from the mean; one result per
    /// scale (1.0 keeps the historical volatility).
    pub vol_scales: Vec<f64>,
    /// Seed of the generator; scale `k` uses `seed + k`, so runs repeat.
    pub seed: u64,
}

/// 5th, 25th, 50th, 75th and 95th percentiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percentiles {
    /// Value 5% of paths fall below.
    pub p05: f64,
    /// Value 25% of paths fall below.
    pub p25: f64,
    /// The median.
    pub p50: f64,
    /// Value 75% of paths fall below.
    pub p75: f64,
    /// Value 95% of paths fall below.
    pub p95: f64,
}

impl Percentiles {
    fn of(mut xs: Vec<f64>) -> Percentiles {
        xs.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| {
            // Linear interpolation between order statistics (numpy's default).
            let pos = p * (xs.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
        };
        Percentiles {
            p05: q(0.05),
            p25: q(0.25),
            p50: q(0.5),
            p75: q(0.75),
            p95: q(0.95),
        }
    }
}

/// The paths run under one volatility scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StressResult {
    /// The volatility multiplier these paths ran under.
    pub vol_scale: f64,
    /// Number of resampled paths.
    pub paths: usize,
    /// Distribution of final equity, in account currency.
    pub final_equity: Percentiles,
    /// Negative fractions.
    pub max_drawdown: Percentiles,
    /// Share of paths that end below the starting equity.
    pub probability_of_loss: f64,
}

/// Runs the stress test; `None` when the curve has fewer than 2 returns.
pub fn stress(equity: &[f64], cfg: &StressConfig) -> Option<Vec<StressResult>> {
    let returns: Vec<f64> = equity
        .windows(2)
        .filter(|w| w[0] > 0.0)
        .map(|w| w[1] / w[0] - 1.0)
        .collect();
    if returns.len() < 2 || cfg.paths == 0 {
        return None;
    }
    let n = returns.len();
    let mean = returns.iter().sum::<f64>() / n as f64;
    let start = equity[0];
    let block = cfg.block_size.clamp(1, n);
    let mut results = Vec::with_capacity(cfg.vol_scales.len());
    for (k, &scale) in cfg.vol_scales.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(k as u64));
        let mut finals = Vec::with_capacity(cfg.paths);
        let mut drawdowns = Vec::with_capacity(cfg.paths);
        for _ in 0..cfg.paths {
            let (mut e, mut peak, mut dd) = (start, start, 0.0f64);
            let mut produced = 0;
            while produced < n {
                let b0 = rng.random_range(0..n);
                for j in 0..block.min(n - produced) {
                    let r = returns[(b0 + j) % n];
                    // Floor at -100%: a scaled return cannot lose more than everything.
                    e *= 1.0 + (mean + scale * (r - mean)).max(-1.0);
                    peak = peak.max(e);
                    dd = dd.min(if peak > 0.0 { e / peak - 1.0 } else { -1.0 });
                }
                produced += block;
            }
            finals.push(e);
            drawdowns.push(dd);
        }
        let losses = finals.iter().filter(|&&f| f < start).count();
        results.push(StressResult {
            vol_scale: scale,
            paths: cfg.paths,
            probability_of_loss: losses as f64 / cfg.paths as f64,
            final_equity: Percentiles::of(finals),
            max_drawdown: Percentiles::of(drawdowns),
        });
    }
    Some(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve() -> Vec<f64> {
        let mut e = vec![100_000.0];
        for i in 0..500 {
            let r = if i % 7 == 0 { -0.02 } else { 0.005 };
            e.push(e[i] * (1.0 + r));
        }
        e
    }

    fn cfg(scales: Vec<f64>) -> StressConfig {
        StressConfig {
            paths: 400,
            block_size: 10,
            vol_scales: scales,
            seed: 9,
        }
    }

    #[test]
    fn seeded_and_higher_volatility_widens_the_distribution() {
        let a = stress(&curve(), &cfg(vec![1.0, 2.0])).unwrap();
        assert_eq!(a, stress(&curve(), &cfg(vec![1.0, 2.0])).unwrap());
        let spread = |r: &StressResult| r.final_equity.p95 - r.final_equity.p05;
        assert!(spread(&a[1]) > spread(&a[0]));
        assert!(a[1].max_drawdown.p50 < a[0].max_drawdown.p50);
        for r in &a {
            assert!(r.final_equity.p05 <= r.final_equity.p50 && r.final_equity.p50 <= r.final_equity.p95);
            assert!(r.max_drawdown.p95 <= 0.0);
        }
    }

    #[test]
    fn resampling_keeps_the_return_multiset_when_blocks_cover_everything() {
        // One block as long as the series, starting anywhere: a rotation of
        // the same returns, so the final equity is always the original one.
        let e = curve();
        let r = stress(
            &e,
            &StressConfig {
                paths: 20,
                block_size: 500,
                vol_scales: vec![1.0],
                seed: 1,
            },
        )
        .unwrap();
        let last = *e.last().unwrap();
        assert!((r[0].final_equity.p05 / last - 1.0).abs() < 1e-9);
        assert!((r[0].final_equity.p95 / last - 1.0).abs() < 1e-9);
    }

    #[test]
    fn too_short_curves_are_refused() {
        assert!(stress(&[1.0, 2.0], &cfg(vec![1.0])).is_none());
    }
}
