//! A market's regimes: the regime model (a Gaussian HMM, its state count
//! chosen by BIC) fitted on the market's training split only, then the
//! filtered probabilities of every bar, each from that bar and the ones
//! before it. `tradelab regimes` prints it; the server charts it.

use serde::Serialize;
use tradelab_regime::features::{FEATURES, VOLATILITY};
use tradelab_regime::{RegimeDetector, RegimeError, RegimeSettings};

/// The most training bars a regime model is fitted on while someone waits
/// for it (the dashboard's chart): the latest of them. A 1M-bar file's
/// 700,000 training bars took 15 s on two cores.
pub const WAITED_FIT_BARS: usize = 100_000;

/// One state of a fitted model, in the units of a bar.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegimeState {
    /// Its index: states are ordered by volatility, 0 the calmest.
    pub state: usize,
    /// The mean log return of a bar in this state.
    pub mean_return: f64,
    /// A bar's typical volatility (the state's mean, back from log units).
    pub volatility: f64,
    /// The mean trend strength (the trend window's return over its
    /// volatility).
    pub trend_strength: f64,
    /// The probability of staying in this state from one bar to the next.
    pub stay_probability: f64,
    /// The share of training bars where it was the most likely state.
    pub share_training: f64,
    /// The share of later bars where it was the most likely state.
    pub share_after: f64,
}

/// A market's fitted regime model and its probabilities on every bar.
#[derive(Debug, Clone)]
pub struct MarketRegimes {
    /// The fitted model.
    pub detector: RegimeDetector,
    /// The training split: the first `training_bars`.
    pub training_bars: usize,
    /// The first bar of the fit: 0, or the start of the latest
    /// `max_fit_bars` of the training split when it is longer.
    pub fitted_from: usize,
    /// The states, calmest first.
    pub states: Vec<RegimeState>,
    /// p(state | bars up to t), row-major `bars × states`.
    pub probabilities: Vec<f64>,
}

impl MarketRegimes {
    /// Fits the model on the first `train_fraction` of `close` (the
    /// environment's training split, rounded as it rounds) and filters
    /// every bar.
    pub fn fit(close: &[f64], train_fraction: f64, settings: &RegimeSettings) -> Result<MarketRegimes, RegimeError> {
        Self::fit_latest(close, train_fraction, settings, usize::MAX)
    }

    /// Like [`fit`](Self::fit), on the latest `max_fit_bars` of the
    /// training split only: the EM's time grows with the bars it reads, so
    /// a chart of a million-bar file fits on a bounded recent window (and
    /// says so) rather than keep its reader waiting. Still no bar after the
    /// training split is read; every bar is filtered.
    pub fn fit_latest(
        close: &[f64],
        train_fraction: f64,
        settings: &RegimeSettings,
        max_fit_bars: usize,
    ) -> Result<MarketRegimes, RegimeError> {
        let training_bars = training_bars(close.len(), train_fraction);
        let fitted_from = training_bars.saturating_sub(max_fit_bars);
        let detector = RegimeDetector::fit(&close[fitted_from..training_bars], &settings.detector_config())?;
        let probabilities = detector.filter(close);
        let mut regimes = MarketRegimes {
            detector,
            training_bars,
            fitted_from,
            states: Vec::new(),
            probabilities,
        };
        regimes.states = regimes.describe_states(close.len());
        Ok(regimes)
    }

    /// The number of states.
    pub fn state_count(&self) -> usize {
        self.detector.states()
    }

    /// The probabilities of bar `t`, one per state.
    pub fn at(&self, t: usize) -> &[f64] {
        let k = self.state_count();
        &self.probabilities[t * k..(t + 1) * k]
    }

    /// The most likely state at bar `t`.
    pub fn most_likely(&self, t: usize) -> usize {
        let p = self.at(t);
        (0..p.len()).max_by(|&x, &y| p[x].total_cmp(&p[y])).unwrap_or(0)
    }

    /// Each state's means back from z-scores to a bar's units, with how
    /// often it was the most likely state in and after training.
    fn describe_states(&self, bars: usize) -> Vec<RegimeState> {
        let k = self.state_count();
        let share = |range: std::ops::Range<usize>| {
            let n = range.len().max(1) as f64;
            let mut c = vec![0.0; k];
            for t in range {
                c[self.most_likely(t)] += 1.0 / n;
            }
            c
        };
        let warm_up = self.detector.warm_up().min(self.training_bars);
        let in_training = share(warm_up..self.training_bars);
        let after = share(self.training_bars..bars);
        let st = &self.detector.standardizer;
        let m = &self.detector.model;
        (0..k)
            .map(|i| {
                let mean = |f: usize| m.means[i * FEATURES + f] * st.std[f] + st.mean[f];
                RegimeState {
                    state: i,
                    mean_return: mean(0),
                    volatility: mean(VOLATILITY).exp(),
                    trend_strength: mean(2),
                    stay_probability: m.transition[i * k + i],
                    share_training: in_training[i],
                    share_after: after[i],
                }
            })
            .collect()
    }
}

/// The environment's training split of `bars` bars (`env.train_fraction`,
/// rounded as `MarketData` rounds it).
pub fn training_bars(bars: usize, train_fraction: f64) -> usize {
    ((bars as f64 * train_fraction).round() as usize).min(bars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_data::synthetic::{generate, SyntheticConfig};

    /// 3,000 closes of the regime-switching synthetic market.
    fn closes() -> Vec<f64> {
        generate(&SyntheticConfig {
            bars: 3_000,
            seed: 7,
            ..SyntheticConfig::default()
        })
        .series
        .close
    }

    #[test]
    fn states_are_fitted_on_the_training_split_and_every_bar_is_filtered() {
        let close = &closes();
        let settings = RegimeSettings::default();
        let r = MarketRegimes::fit(close, 0.7, &settings).unwrap();
        assert_eq!(r.training_bars, 2_100);
        assert_eq!(r.probabilities.len(), close.len() * r.state_count());
        for t in 0..close.len() {
            assert!((r.at(t).iter().sum::<f64>() - 1.0).abs() < 1e-9, "bar {t}");
        }
        let vols: Vec<f64> = r.states.iter().map(|s| s.volatility).collect();
        assert!(vols.windows(2).all(|w| w[0] <= w[1]), "calmest first: {vols:?}");
        let shares: f64 = r.states.iter().map(|s| s.share_training).sum();
        assert!((shares - 1.0).abs() < 1e-9, "{shares}");

        // The fit saw the training bars only: changing a later bar leaves
        // the model as it was.
        let mut changed = close.clone();
        changed[2_500] *= 3.0;
        let again = MarketRegimes::fit(&changed, 0.7, &settings).unwrap();
        assert_eq!(again.detector, r.detector);
        // And filtering is causal: bars before the change keep their
        // probabilities.
        assert_eq!(
            again.probabilities[..2_500 * r.state_count()],
            r.probabilities[..2_500 * r.state_count()]
        );
    }

    #[test]
    fn a_bounded_fit_reads_the_latest_training_bars_only_and_still_filters_every_bar() {
        let close = &closes();
        let settings = RegimeSettings::default();
        let whole = MarketRegimes::fit(close, 0.7, &settings).unwrap();
        assert_eq!(whole.fitted_from, 0);
        let latest = MarketRegimes::fit_latest(close, 0.7, &settings, 1_000).unwrap();
        assert_eq!((latest.training_bars, latest.fitted_from), (2_100, 1_100));
        assert_eq!(latest.probabilities.len(), close.len() * latest.state_count());
        assert_ne!(latest.detector, whole.detector, "a different window, a different fit");
        // Bars before the window and after the split do not move the fit.
        let mut changed = close.clone();
        changed[500] *= 3.0;
        changed[2_500] *= 3.0;
        let again = MarketRegimes::fit_latest(&changed, 0.7, &settings, 1_000).unwrap();
        assert_eq!(again.detector, latest.detector);
        // A bound above the split is the whole split.
        let all = MarketRegimes::fit_latest(close, 0.7, &settings, 5_000).unwrap();
        assert_eq!((all.fitted_from, &all.detector), (0, &whole.detector));
    }

    #[test]
    fn too_short_a_training_split_is_an_error_that_says_so() {
        let close: Vec<f64> = (0..80).map(|i| 100.0 + i as f64).collect();
        let e = MarketRegimes::fit(&close, 0.7, &RegimeSettings::default()).unwrap_err();
        assert!(e.to_string().contains("too few observations"), "{e}");
    }
}
