//! Market data prepared for the environment: features turned into a
//! normalised observation matrix, and the chronological splits.

use std::ops::Range;

use tradelab_core::BarSeries;
use tradelab_data::settings::FeatureSettings;
use tradelab_data::FeatureEngine;
use tradelab_regime::RegimeSettings;

use crate::env::EnvError;
use crate::settings::EnvSettings;

/// Account values appended to every observation.
pub const ACCOUNT_FEATURES: usize = 3;

/// Features in price units: observed relative to the close so that their
/// scale does not depend on the price level (which would leak the era).
const RELATIVE_TO_CLOSE: [&str; 7] = [
    "sma_fast",
    "sma_slow",
    "ema_fast",
    "ema_slow",
    "bb_upper",
    "bb_middle",
    "bb_lower",
];
/// Price-unit differences: divided by the close.
const SCALED_BY_CLOSE: [&str; 4] = ["macd", "macd_signal", "macd_hist", "atr"];
/// Cumulative features: observed as their change per bar.
const DIFFERENCED: [&str; 1] = ["obv"];
/// Z-scores are clipped so one outlier bar cannot dominate an input.
const CLIP: f64 = 10.0;

/// A chronological part of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The leading `env.train_fraction` of the bars; normalisation and the
    /// regime model are fitted on it and nothing else.
    Train,
    /// The `env.validation_fraction` of the bars after the training split.
    Validation,
    /// The bars after the validation split.
    Test,
}

impl Split {
    /// The split's lower-case name, for errors and reports.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    /// The split [`name`](Split::name) names, if any.
    pub fn parse(name: &str) -> Option<Split> {
        [Split::Train, Split::Validation, Split::Test]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// Filtered regime probabilities as feature columns, `max_states` of them
/// (states ordered by volatility; a state the fitted model lacks is 0),
/// then the four specialist weights the probabilities imply
/// ([`SPECIALIST_COLUMNS`]), NaN while the regime features warm up. The
/// model sees the training split only; the filter reads no bar after t at t.
fn regime_columns(
    series: &BarSeries,
    train_end: usize,
    r: &RegimeSettings,
) -> Result<(Vec<String>, Vec<Vec<f64>>), EnvError> {
    let config = r.detector_config();
    let detector =
        tradelab_regime::RegimeDetector::fit(&series.close[..train_end], &config).map_err(|e| EnvError::Regime {
            instrument: series.instrument.clone(),
            message: e.to_string(),
        })?;
    let k = detector.states();
    let probs = detector.filter(&series.close);
    let warm = detector.warm_up();
    let mut names: Vec<String> = (0..r.max_states).map(|s| format!("regime_p{s}")).collect();
    let mut cols: Vec<Vec<f64>> = (0..r.max_states)
        .map(|s| {
            (0..series.len())
                .map(|t| {
                    if t < warm {
                        f64::NAN
                    } else if s < k {
                        probs[t * k + s]
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let affinity = tradelab_regime::specialists::state_affinity(&detector);
    let weights = tradelab_regime::specialists::specialist_weights(&affinity, &probs);
    for (j, name) in SPECIALIST_COLUMNS.iter().enumerate() {
        names.push(name.to_string());
        cols.push(
            (0..series.len())
                .map(|t| if t < warm { f64::NAN } else { weights[t * 4 + j] })
                .collect(),
        );
    }
    Ok((names, cols))
}

/// The specialist-weight columns `regime.features` adds, in the order of
/// `tradelab_regime::specialists::SPECIALISTS`.
pub const SPECIALIST_COLUMNS: [&str; 4] = [
    "specialist_trend",
    "specialist_mean_reversion",
    "specialist_volatility",
    "specialist_consolidation",
];

/// Probabilities are observed as they are: already on a unit scale, and the
/// mixture of experts reads the specialist weights as weights.
fn is_probability(name: &str) -> bool {
    name.starts_with("regime_p") || name.starts_with("specialist_")
}

/// The feature engine's columns for `series`, each turned scale-free as
/// the observation reads it (relative to the close, divided by it, or
/// differenced): the one transform training, evaluation and live decisions
/// share.
pub fn feature_columns(series: &BarSeries, settings: &FeatureSettings) -> (Vec<String>, Vec<Vec<f64>>) {
    let features = FeatureEngine::new(settings).compute(series);
    let n = series.len();
    let mut cols: Vec<Vec<f64>> = Vec::with_capacity(features.names.len());
    for (name, col) in features.names.iter().zip(&features.columns) {
        let how = Transform::of(name);
        let transformed: Vec<f64> = (0..n)
            .map(|i| how.apply(col[i], if i == 0 { f64::NAN } else { col[i - 1] }, series.close[i]))
            .collect();
        cols.push(transformed);
    }
    (features.names, cols)
}

/// How a feature engine column becomes scale-free in the observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    /// `x / close - 1` (price levels).
    RelativeToClose,
    /// `x / close` (price differences).
    ScaledByClose,
    /// `x - previous x` (cumulative sums).
    Differenced,
    /// As it is.
    Raw,
}

impl Transform {
    pub(crate) fn of(name: &str) -> Transform {
        if RELATIVE_TO_CLOSE.contains(&name) {
            Transform::RelativeToClose
        } else if SCALED_BY_CLOSE.contains(&name) {
            Transform::ScaledByClose
        } else if DIFFERENCED.contains(&name) {
            Transform::Differenced
        } else {
            Transform::Raw
        }
    }

    /// `x` at a bar closing at `close`, `previous` the column's value a bar
    /// earlier (NaN at the first bar).
    #[inline]
    pub(crate) fn apply(self, x: f64, previous: f64, close: f64) -> f64 {
        match self {
            Transform::RelativeToClose => x / close - 1.0,
            Transform::ScaledByClose => x / close,
            Transform::Differenced => x - previous,
            Transform::Raw => x,
        }
    }
}

/// A value z-scored with the training statistics and clipped, as the
/// observation holds it (0 where undefined).
#[inline]
pub(crate) fn z_score(x: f64, mean: f64, std: f64) -> f32 {
    let z = (x - mean) / std;
    if z.is_finite() {
        z.clamp(-CLIP, CLIP) as f32
    } else {
        0.0
    }
}

/// The observation window (row-major, `window x features`) for the last
/// `window` bars of `series`, from raw bars: the same features, transform
/// and training statistics (`mean`, `std`, per column, as a checkpoint
/// records them) as the environment's observation. Bars before the window
/// warm the indicators up; every feature in the window must be defined.
pub fn window_from_bars(
    series: &BarSeries,
    settings: &FeatureSettings,
    names: &[String],
    mean: &[f64],
    std: &[f64],
    window: usize,
) -> Result<Vec<f32>, String> {
    let (computed, cols) = feature_columns(series, settings);
    if computed != names {
        return Err(format!(
            "the model observes {names:?} but its feature settings give {computed:?}; a model with regime features needs the normalised window instead"
        ));
    }
    if mean.len() != names.len() || std.len() != names.len() {
        return Err("the model's normalisation statistics do not match its features; retrain it".into());
    }
    let n = series.len();
    if n < window {
        return Err(format!("{n} bars given; this model reads a window of {window}"));
    }
    let start = n - window;
    if let Some((j, _)) = cols
        .iter()
        .enumerate()
        .find(|(_, c)| c[start..].iter().any(|x| !x.is_finite()))
    {
        let first = (0..n).find(|&i| cols.iter().all(|c| c[i].is_finite())).unwrap_or(n);
        return Err(format!(
            "feature `{}` is still warming up inside the window: send at least {} bars (the indicators need {} before the window's {window})",
            names[j],
            first + window,
            first
        ));
    }
    let nf = names.len();
    let mut out = vec![0f32; window * nf];
    for (j, c) in cols.iter().enumerate() {
        for i in 0..window {
            out[i * nf + j] = z_score(c[start + i], mean[j], std[j]);
        }
    }
    Ok(out)
}

/// One instrument's bars with their normalised observation matrix.
#[derive(Debug, Clone)]
pub struct MarketData {
    /// The instrument's bars.
    pub series: BarSeries,
    /// Observation columns: the feature engine's, then any regime columns.
    pub feature_names: Vec<String>,
    /// Per-column mean of the z-scoring, fitted on the training split only
    /// (0 for probability columns).
    pub mean: Vec<f64>,
    /// Per-column standard deviation of the z-scoring, from the same rows
    /// (1 for probability columns and for constant columns).
    pub std: Vec<f64>,
    /// Rows x features, row-major; zero where a feature is still warming up.
    obs: Vec<f32>,
    /// First row whose features are all defined.
    first_valid: usize,
    splits: [Range<usize>; 3],
    window: usize,
}

impl MarketData {
    /// Computes features, fits normalisation on the training split and
    /// checks that every split leaves room for at least one step. The
    /// observation is shaped by `features:`, `env:` (window and splits) and
    /// `regime:` (whether regime probabilities are appended).
    pub fn new(
        series: BarSeries,
        feature_settings: &FeatureSettings,
        e: &EnvSettings,
        regime: &RegimeSettings,
    ) -> Result<Self, EnvError> {
        let n = series.len();
        let train_end = (n as f64 * e.train_fraction).round() as usize;
        let val_end = (n as f64 * (e.train_fraction + e.validation_fraction)).round() as usize;
        let splits = [0..train_end, train_end..val_end, val_end..n];
        let window = e.window;
        let (mut names, mut cols) = feature_columns(&series, feature_settings);
        if regime.features {
            let (regime_names, regime_cols) = regime_columns(&series, train_end, regime)?;
            names.extend(regime_names);
            cols.extend(regime_cols);
        }
        let first_valid = (0..n).find(|&i| cols.iter().all(|c| c[i].is_finite())).unwrap_or(n);

        // Fit on training rows only: nothing from validation or test leaks in.
        let fit = first_valid.min(train_end)..train_end;
        if fit.len() < 2 {
            return Err(EnvError::SplitTooShort {
                instrument: series.instrument.clone(),
                split: "train",
                bars: train_end,
                needed: first_valid + 2,
            });
        }
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for (c, name) in cols.iter().zip(&names) {
            if is_probability(name) {
                mean.push(0.0);
                std.push(1.0);
                continue;
            }
            let xs = &c[fit.clone()];
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64;
            mean.push(m);
            std.push(if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 });
        }
        let nf = cols.len();
        let mut obs = vec![0f32; n * nf];
        for (j, c) in cols.iter().enumerate() {
            for i in 0..n {
                obs[i * nf + j] = z_score(c[i], mean[j], std[j]);
            }
        }
        let data = MarketData {
            series,
            feature_names: names,
            mean,
            std,
            obs,
            first_valid,
            splits,
            window,
        };
        data.check_splits()?;
        Ok(data)
    }

    /// Every non-empty split leaves room for at least one step.
    fn check_splits(&self) -> Result<(), EnvError> {
        for split in [Split::Train, Split::Validation, Split::Test] {
            let r = &self.splits[split as usize];
            if !r.is_empty() && self.steps(split).is_empty() {
                return Err(EnvError::SplitTooShort {
                    instrument: self.series.instrument.clone(),
                    split: split.name(),
                    bars: r.len(),
                    needed: (self.first_valid + self.window + 1).saturating_sub(r.start).max(2),
                });
            }
        }
        Ok(())
    }

    /// The same observations with other splits (the normalisation and
    /// regime model stay as fitted): an online update trains on a recent
    /// window and validates on the bars after it. Each non-empty split must
    /// leave room for a step.
    pub fn with_splits(
        &self,
        train: Range<usize>,
        validation: Range<usize>,
        test: Range<usize>,
    ) -> Result<Self, EnvError> {
        let n = self.series.len();
        let clip = |r: Range<usize>| r.start.min(n)..r.end.min(n);
        let mut data = self.clone();
        data.splits = [clip(train), clip(validation), clip(test)];
        data.check_splits()?;
        Ok(data)
    }

    /// Columns per observation row.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Bars in each observation window (`env.window`).
    pub fn window_len(&self) -> usize {
        self.window
    }

    /// Values in one observation: the window of features plus the account.
    pub fn observation_len(&self) -> usize {
        self.window * self.n_features() + ACCOUNT_FEATURES
    }

    /// Bar indices of a split.
    pub fn bars(&self, split: Split) -> Range<usize> {
        self.splits[split as usize].clone()
    }

    /// Variance of the close-to-close bar returns over the train split (0
    /// with fewer than two returns): the scale of one bar's risk that the
    /// differential Sharpe reward starts from.
    pub fn train_bar_return_variance(&self) -> f64 {
        let bars = self.bars(Split::Train);
        let close = &self.series.close[bars];
        let mut m = tradelab_sim::stats::moments::RunningMoments::default();
        for w in close.windows(2).filter(|w| w[0] > 0.0) {
            m.push(w[1] / w[0] - 1.0);
        }
        m.variance()
    }

    /// Bars at which an agent can act in `split`: a full window of defined
    /// features behind it and a next bar inside the split to fill on.
    pub fn steps(&self, split: Split) -> Range<usize> {
        let r = self.bars(split);
        let start = r.start.max(self.first_valid + self.window - 1);
        start..r.end.saturating_sub(1).max(start)
    }

    /// The feature window ending at bar `t` (inclusive), oldest row first.
    #[inline]
    pub fn window(&self, t: usize) -> &[f32] {
        let nf = self.n_features();
        &self.obs[(t + 1 - self.window) * nf..(t + 1) * nf]
    }
}
