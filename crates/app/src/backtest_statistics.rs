//! What a backtest's figures mean: buy-and-hold on the same instruments
//! under the same settings beside it, and the strategy's Sharpe ratio with
//! a stationary-bootstrap interval, its difference from buy-and-hold's
//! (paired resampling, with a p-value) and the probability that its true
//! Sharpe ratio is above zero. Stored with the backtest, so the dashboard's
//! report shows a strategy against the simplest thing it must beat.

use anyhow::Result;
use serde::Serialize;
use tradelab_core::BarSeries;
use tradelab_sim::engine::BacktestResult;
use tradelab_sim::metrics::Metrics;
use tradelab_sim::stats::sharpe::{
    probabilistic_sharpe, sharpe_difference, sharpe_interval, BootstrapSettings, ReturnMoments,
};
use tradelab_sim::stats::{equity_returns, Comparison};

use crate::markets::{backtest, build_report};
use crate::Settings;

/// The benchmark every backtest is compared with.
pub const BENCHMARK: &str = "buy_and_hold";

/// A baseline's metrics on the same instruments and settings.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    /// The baseline strategy's name.
    pub name: String,
    /// Its metrics.
    pub metrics: Metrics,
}

/// The strategy's Sharpe ratio with its uncertainty, from the equity
/// curve's bar-to-bar returns (annualised as the metrics are).
#[derive(Debug, Clone, Serialize)]
pub struct BacktestStatistics {
    /// Returns the figures come from.
    pub bars: usize,
    /// Two-sided coverage of the intervals.
    pub confidence: f64,
    /// Bootstrap resamples drawn.
    pub resamples: usize,
    /// The Sharpe ratio of the equity curve's returns.
    pub sharpe: f64,
    /// Its interval's lower end.
    pub sharpe_low: f64,
    /// Its interval's upper end.
    pub sharpe_high: f64,
    /// The probability that the true Sharpe ratio is above 0 (Bailey and
    /// López de Prado's probabilistic Sharpe ratio; the deflated Sharpe
    /// ratio of a single trial).
    pub probability_sharpe_above_zero: f64,
    /// The strategy's Sharpe ratio minus buy-and-hold's; `None` when the
    /// strategy is buy-and-hold.
    pub sharpe_minus_benchmark: Option<f64>,
    /// That difference's interval, lower end.
    pub difference_low: Option<f64>,
    /// That difference's interval, upper end.
    pub difference_high: Option<f64>,
    /// The p-value of "no difference from buy-and-hold".
    pub difference_p_value: Option<f64>,
    /// The deflated Sharpe ratio: the probability that the true Sharpe
    /// ratio beats the best of `trials` unskilled ones (evaluations of a
    /// model; absent for a rule backtest, which is one trial).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deflated_sharpe: Option<f64>,
    /// The trials the deflated Sharpe ratio accounts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trials: Option<usize>,
}

impl BacktestStatistics {
    /// A model evaluation's comparison with buy-and-hold in the form a
    /// stored backtest carries; `equity` is the model's curve (for the
    /// probability that its Sharpe ratio is above zero).
    pub fn of_comparison(c: &Comparison, equity: &[f64], boot: &BootstrapSettings) -> BacktestStatistics {
        let m = ReturnMoments::of(&equity_returns(equity));
        BacktestStatistics {
            bars: c.observations,
            confidence: boot.confidence,
            resamples: boot.resamples,
            sharpe: c.sharpe.sharpe,
            sharpe_low: c.sharpe.low,
            sharpe_high: c.sharpe.high,
            probability_sharpe_above_zero: probabilistic_sharpe(m.sharpe(), 0.0, m.n, m.skew, m.kurtosis),
            sharpe_minus_benchmark: c.difference.map(|d| d.difference),
            difference_low: c.difference.map(|d| d.low),
            difference_high: c.difference.map(|d| d.high),
            difference_p_value: c.difference.map(|d| d.p_value),
            deflated_sharpe: Some(c.deflated_sharpe),
            trials: Some(c.trials),
        }
    }
}

/// Buy-and-hold beside `result` (the backtest of `strategy` on `feeds`),
/// and the statistics of `result`'s Sharpe ratio; resampling is seeded by
/// `settings.seed`, so the same backtest gives the same figures.
pub fn compare_with_benchmark(
    settings: &Settings,
    strategy: &str,
    feeds: &[BarSeries],
    result: &BacktestResult<'_>,
) -> Result<(Vec<Baseline>, BacktestStatistics)> {
    let cfg = BootstrapSettings {
        seed: settings.seed,
        ..BootstrapSettings::default()
    };
    let returns = equity_returns(&result.equity);
    let per_year = result.periods_per_year;
    let interval = sharpe_interval(&returns, per_year, &cfg);
    let moments = ReturnMoments::of(&returns);
    let mut stats = BacktestStatistics {
        bars: returns.len(),
        confidence: cfg.confidence,
        resamples: cfg.resamples,
        sharpe: interval.sharpe,
        sharpe_low: interval.low,
        sharpe_high: interval.high,
        probability_sharpe_above_zero: probabilistic_sharpe(
            moments.sharpe(),
            0.0,
            moments.n,
            moments.skew,
            moments.kurtosis,
        ),
        sharpe_minus_benchmark: None,
        difference_low: None,
        difference_high: None,
        difference_p_value: None,
        deflated_sharpe: None,
        trials: None,
    };
    if strategy == BENCHMARK {
        return Ok((Vec::new(), stats));
    }
    let benchmark = backtest(settings, BENCHMARK, feeds)?;
    let (metrics, _) = build_report(&benchmark, settings);
    if let Some(d) = sharpe_difference(&returns, &equity_returns(&benchmark.equity), per_year, &cfg) {
        stats.sharpe_minus_benchmark = Some(d.difference);
        stats.difference_low = Some(d.low);
        stats.difference_high = Some(d.high);
        stats.difference_p_value = Some(d.p_value);
    }
    let baselines = vec![Baseline {
        name: BENCHMARK.into(),
        metrics,
    }];
    Ok((baselines, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_data::synthetic::{generate, SyntheticConfig};

    fn feeds() -> Vec<BarSeries> {
        vec![
            generate(&SyntheticConfig {
                bars: 800,
                seed: 3,
                ..SyntheticConfig::default()
            })
            .series,
        ]
    }

    #[test]
    fn a_strategy_is_set_beside_buy_and_hold_with_its_sharpe_interval() {
        let settings = Settings::default();
        let feeds = feeds();
        let result = backtest(&settings, "sma_crossover", &feeds).unwrap();
        let (baselines, stats) = compare_with_benchmark(&settings, "sma_crossover", &feeds, &result).unwrap();
        assert_eq!(baselines.len(), 1);
        assert_eq!(baselines[0].name, "buy_and_hold");
        let hold = backtest(&settings, "buy_and_hold", &feeds).unwrap();
        assert_eq!(baselines[0].metrics.total_pnl, hold.final_equity - hold.initial_cash);
        assert_eq!(stats.bars, result.equity.len() - 1);
        assert!(
            stats.sharpe_low <= stats.sharpe && stats.sharpe <= stats.sharpe_high,
            "{stats:?}"
        );
        assert!((0.0..=1.0).contains(&stats.probability_sharpe_above_zero), "{stats:?}");
        let d = stats.sharpe_minus_benchmark.unwrap();
        assert!(
            stats.difference_low.unwrap() <= d && d <= stats.difference_high.unwrap(),
            "{stats:?}"
        );
        assert!((0.0..=1.0).contains(&stats.difference_p_value.unwrap()));
        // Seeded: the same backtest gives the same figures.
        let (_, again) = compare_with_benchmark(&settings, "sma_crossover", &feeds, &result).unwrap();
        assert_eq!(again.sharpe_low, stats.sharpe_low);
        assert_eq!(again.difference_p_value, stats.difference_p_value);
    }

    #[test]
    fn buy_and_hold_is_not_compared_with_itself() {
        let settings = Settings::default();
        let feeds = feeds();
        let result = backtest(&settings, "buy_and_hold", &feeds).unwrap();
        let (baselines, stats) = compare_with_benchmark(&settings, "buy_and_hold", &feeds, &result).unwrap();
        assert!(baselines.is_empty());
        assert!(stats.sharpe_minus_benchmark.is_none());
    }

    #[test]
    fn returns_of_a_curve_skip_a_wiped_out_start() {
        let r = equity_returns(&[100.0, 110.0, 99.0]);
        assert!((r[0] - 0.1).abs() < 1e-12 && (r[1] + 0.1).abs() < 1e-12, "{r:?}");
        assert_eq!(equity_returns(&[0.0, 5.0]), vec![0.0]);
        assert!(equity_returns(&[1.0]).is_empty());
    }
}
