//! Features, standardisation, model selection and filtering together: fit
//! on a training series, then filter any series bar by bar.

use serde::{Deserialize, Serialize};

use crate::features::{causal_features, warm_up, Standardizer, FEATURES, VOLATILITY};
use crate::filter::RegimeFilter;
use crate::hmm::GaussianHmm;
use crate::RegimeError;

/// How a [`RegimeDetector`] is fitted and filters; see
/// [`RegimeSettings::detector_config`](crate::RegimeSettings::detector_config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeConfig {
    /// The fewest states BIC may choose (at least 1).
    pub min_states: usize,
    /// The most states BIC may choose (at most 8).
    pub max_states: usize,
    /// Returns in the realised-volatility window (at least 2).
    pub vol_window: usize,
    /// Returns in the trend-strength window (at least 2).
    pub trend_window: usize,
    /// The most Baum-Welch passes per state count.
    pub max_iter: usize,
    /// Baum-Welch stops when the log-likelihood gains less than this per
    /// observation.
    pub tolerance: f64,
    /// The filter's probability floor.
    pub floor: f64,
}

impl Default for RegimeConfig {
    fn default() -> Self {
        RegimeConfig {
            min_states: 2,
            max_states: 4,
            vol_window: 10,
            trend_window: 20,
            max_iter: 200,
            tolerance: 1e-7,
            floor: 1e-6,
        }
    }
}

impl RegimeConfig {
    /// Checks the ranges: `1 <= min_states <= max_states <= 8`, both windows
    /// at least 2, `floor` in `[0, 0.1)`; [`RegimeError::Config`] otherwise.
    pub fn check(&self) -> Result<(), RegimeError> {
        let bad = |m: String| Err(RegimeError::Config(m));
        if self.min_states < 1 || self.min_states > self.max_states || self.max_states > 8 {
            return bad(format!(
                "states {}..={} (use 1 <= min <= max <= 8)",
                self.min_states, self.max_states
            ));
        }
        if self.vol_window < 2 || self.trend_window < 2 {
            return bad("vol_window and trend_window must be at least 2".into());
        }
        if !(0.0..0.1).contains(&self.floor) {
            return bad(format!("floor {} (use a small probability such as 1e-6)", self.floor));
        }
        Ok(())
    }
}

/// A fitted regime model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegimeDetector {
    /// The configuration it was fitted with; filtering uses its windows and
    /// floor.
    pub config: RegimeConfig,
    /// Feature z-scoring, with statistics of the training window only.
    pub standardizer: Standardizer,
    /// States ordered by volatility: 0 is the calmest.
    pub model: GaussianHmm,
    /// BIC of each state count tried.
    pub bic: Vec<(usize, f64)>,
}

impl RegimeDetector {
    /// Fits on the closes of a training window (only those bars are seen).
    pub fn fit(close: &[f64], config: &RegimeConfig) -> Result<RegimeDetector, RegimeError> {
        config.check()?;
        let rows: Vec<[f64; FEATURES]> = causal_features(close, config.vol_window, config.trend_window)
            .into_iter()
            .flatten()
            .collect();
        let standardizer = Standardizer::fit(&rows);
        let data: Vec<f64> = rows.iter().flat_map(|r| standardizer.apply(r)).collect();
        let (model, bic) = GaussianHmm::select(
            &data,
            FEATURES,
            config.min_states..=config.max_states,
            VOLATILITY,
            config.max_iter,
            config.tolerance,
        )?;
        Ok(RegimeDetector {
            config: config.clone(),
            standardizer,
            model,
            bic,
        })
    }

    /// The number of states BIC chose.
    pub fn states(&self) -> usize {
        self.model.states
    }

    /// p(regime | bars up to t) for every bar of `close`, row-major
    /// `bars × states`. Bars before the feature windows fill get the
    /// model's start distribution.
    pub fn filter(&self, close: &[f64]) -> Vec<f64> {
        let k = self.model.states;
        let mut out = Vec::with_capacity(close.len() * k);
        let mut filter = RegimeFilter::new(self.model.clone(), self.config.floor);
        for row in causal_features(close, self.config.vol_window, self.config.trend_window) {
            match row {
                Some(r) => out.extend_from_slice(filter.update(&self.standardizer.apply(&r))),
                None => out.extend_from_slice(&self.model.start),
            }
        }
        out
    }

    /// Bars before the first filtered probability.
    pub fn warm_up(&self) -> usize {
        warm_up(self.config.vol_window, self.config.trend_window)
    }
}
