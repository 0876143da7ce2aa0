//! The `data:` and `features:` sections: where price files live, how bad
//! rows are treated, each instrument's trading rules, and the indicator
//! periods the feature engine uses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tradelab_core::settings::{default_section, Validator};
use tradelab_core::{Calendar, Timeframe};

/// `data:`: folders, the repair policy and the default trading rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    /// Price files for backtesting (`data/raw/`).
    pub raw_dir: PathBuf,
    /// Cleaned price files for training (`data/final/`).
    pub final_dir: PathBuf,
    /// Where computed features are cached, keyed by data and settings hash.
    pub cache_dir: PathBuf,
    /// What the loaders do with a row that fails validation.
    pub repair_policy: RepairPolicy,
    /// Price files larger than this many megabytes are refused.
    pub max_file_mb: usize,
    /// A line longer than this many bytes stops a load (OHLCV rows are
    /// under a hundred).
    pub max_line_bytes: usize,
    /// Whether a `--symbol` may be a path to a file anywhere (true), or
    /// only an instrument name in the data folders (false; jobs run so, and
    /// names from a model's metadata are always resolved so).
    pub symbol_paths: bool,
    /// Units per lot: orders are rounded down to whole lots.
    pub lot_size: f64,
    /// Whether fractional units may be traded (crypto), overriding lots.
    pub fractional: bool,
    /// Whether an `Adj Close` column rescales the prices (split- and
    /// dividend-adjusted backtests) instead of being left out. Absent from
    /// settings saved before it existed (models' metadata): false.
    #[serde(default)]
    pub adjusted_close: bool,
    /// Per-instrument overrides of `lot_size` and `fractional`, and the
    /// declared timeframe and calendar, keyed by instrument name (the file
    /// stem).
    pub instruments: BTreeMap<String, InstrumentSettings>,
}

/// Trading rules of one instrument; absent keys fall back to `data.lot_size`
/// and `data.fractional`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentSettings {
    /// Units per lot for this instrument.
    #[serde(default)]
    pub lot_size: Option<f64>,
    /// Whether this instrument trades in fractional units.
    #[serde(default)]
    pub fractional: Option<bool>,
    /// Declared bar spacing (e.g. `5m`); inferred from timestamps when absent.
    #[serde(default)]
    pub timeframe: Option<Timeframe>,
    /// The days it trades on (`weekdays`: 252 a year, `every_day`: 365, as
    /// crypto), which annualises Sharpe ratios and volatility; inferred from
    /// weekend bars when absent.
    #[serde(default)]
    pub calendar: Option<Calendar>,
}

/// What the loaders do with a row that fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairPolicy {
    /// Reject the whole file.
    Refuse,
    /// Skip the bad row.
    Drop,
    /// Fix the row where the fix is unambiguous, otherwise skip it.
    Repair,
}

impl RepairPolicy {
    /// The settings spelling (`refuse`, `drop`, `repair`).
    pub fn name(self) -> &'static str {
        match self {
            RepairPolicy::Refuse => "refuse",
            RepairPolicy::Drop => "drop",
            RepairPolicy::Repair => "repair",
        }
    }
}

/// `features:`: indicator periods (bars) and widths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSettings {
    /// Period of the fast simple moving average (`sma_fast` column).
    pub sma_fast: usize,
    /// Period of the slow simple moving average (`sma_slow` column).
    pub sma_slow: usize,
    /// Period of the fast exponential moving average (`ema_fast` column).
    pub ema_fast: usize,
    /// Period of the slow exponential moving average (`ema_slow` column).
    pub ema_slow: usize,
    /// Period of Wilder's RSI, in close-to-close changes.
    pub rsi_period: usize,
    /// MACD's fast EMA period; must be below `macd_slow`.
    pub macd_fast: usize,
    /// MACD's slow EMA period.
    pub macd_slow: usize,
    /// Period of the EMA of the MACD line (the signal line).
    pub macd_signal: usize,
    /// Period of the average true range (Wilder smoothing).
    pub atr_period: usize,
    /// Bars in the Bollinger bands' moving average and deviation.
    pub bollinger_period: usize,
    /// Band half-width in standard deviations.
    pub bollinger_width: f64,
    /// Lookback of the rate of change, in bars (the value is in percent).
    pub roc_period: usize,
    /// Log returns in the realised-volatility window; at least 2.
    pub volatility_window: usize,
    /// Stochastic %K lookback: bars whose highest high and lowest low
    /// bound fast %K.
    pub stoch_k: usize,
    /// Bars in the SMA that smooths fast %K into slow %K.
    pub stoch_slow_k: usize,
    /// Bars in the SMA of slow %K that gives %D.
    pub stoch_d: usize,
    /// Period of the average directional index; at least 2.
    pub adx_period: usize,
}

impl Default for DataSettings {
    /// The compiled-in `config/settings.yaml`'s `data:`.
    fn default() -> Self {
        default_section("data")
    }
}

impl Default for FeatureSettings {
    /// The compiled-in `config/settings.yaml`'s `features:`.
    fn default() -> Self {
        default_section("features")
    }
}

impl DataSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        v.int_range("data.max_file_mb", self.max_file_mb, 1, 1 << 20);
        v.int_range("data.max_line_bytes", self.max_line_bytes, 64, 1 << 20);
        v.check(
            self.lot_size.is_finite() && self.lot_size > 0.0,
            "data.lot_size",
            self.lot_size,
            "must be positive",
            "a number > 0, like 1",
        );
        for (name, inst) in &self.instruments {
            if let Some(lot) = inst.lot_size {
                let key = format!("data.instruments.{name}.lot_size");
                v.check(
                    lot.is_finite() && lot > 0.0,
                    &key,
                    lot,
                    "must be positive",
                    "a number > 0, like 1",
                );
            }
        }
    }
}

impl FeatureSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let f = self;
        for (key, val) in [
            ("features.sma_fast", f.sma_fast),
            ("features.sma_slow", f.sma_slow),
            ("features.ema_fast", f.ema_fast),
            ("features.ema_slow", f.ema_slow),
            ("features.rsi_period", f.rsi_period),
            ("features.macd_fast", f.macd_fast),
            ("features.macd_slow", f.macd_slow),
            ("features.macd_signal", f.macd_signal),
            ("features.atr_period", f.atr_period),
            ("features.bollinger_period", f.bollinger_period),
            ("features.roc_period", f.roc_period),
            ("features.volatility_window", f.volatility_window),
            ("features.stoch_k", f.stoch_k),
            ("features.stoch_slow_k", f.stoch_slow_k),
            ("features.stoch_d", f.stoch_d),
            ("features.adx_period", f.adx_period),
        ] {
            v.int_range(key, val, 1, 100_000);
        }
        v.check(
            f.macd_fast < f.macd_slow,
            "features.macd_fast",
            f.macd_fast,
            "must be below features.macd_slow",
            "an integer smaller than macd_slow",
        );
        v.check(
            f.bollinger_width.is_finite() && f.bollinger_width > 0.0,
            "features.bollinger_width",
            f.bollinger_width,
            "must be positive",
            "a number > 0, like 2.0",
        );
        v.check(
            f.adx_period >= 2,
            "features.adx_period",
            f.adx_period,
            "is too short",
            "an integer >= 2",
        );
        v.check(
            f.volatility_window >= 2,
            "features.volatility_window",
            f.volatility_window,
            "is too short",
            "an integer >= 2",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::settings::first_error;

    #[test]
    fn the_files_sections_pass_their_own_checks() {
        assert_eq!(first_error(|v| DataSettings::default().validate(v)), None);
        assert_eq!(first_error(|v| FeatureSettings::default().validate(v)), None);
        assert_eq!(DataSettings::default().repair_policy, RepairPolicy::Repair);
    }

    #[test]
    fn lot_sizes_must_be_positive_and_are_named_per_instrument() {
        let d = DataSettings {
            lot_size: 0.0,
            ..Default::default()
        };
        let e = first_error(|v| d.validate(v)).unwrap();
        assert_eq!(
            e,
            "setting `data.lot_size` = 0: must be positive; allowed: a number > 0, like 1"
        );
        let mut d = DataSettings::default();
        d.instruments.insert(
            "nifty".into(),
            InstrumentSettings {
                lot_size: Some(f64::NAN),
                fractional: None,
                timeframe: None,
                calendar: None,
            },
        );
        let e = first_error(|v| d.validate(v)).unwrap();
        assert!(e.contains("`data.instruments.nifty.lot_size` = NaN"), "{e}");
        // An instrument without its own lot size falls back and is not checked.
        d.instruments.get_mut("nifty").unwrap().lot_size = None;
        assert_eq!(first_error(|v| d.validate(v)), None);
    }

    #[test]
    fn every_indicator_period_and_width_is_checked_with_its_key() {
        type Edit = fn(&mut FeatureSettings);
        let cases: [(Edit, &str); 8] = [
            (|f| f.sma_fast = 0, "features.sma_fast"),
            (|f| f.stoch_d = 100_001, "features.stoch_d"),
            (|f| f.macd_fast = f.macd_slow, "features.macd_fast"),
            (|f| f.bollinger_width = 0.0, "features.bollinger_width"),
            (|f| f.bollinger_width = f64::INFINITY, "features.bollinger_width"),
            (|f| f.adx_period = 1, "features.adx_period"),
            (|f| f.volatility_window = 1, "features.volatility_window"),
            (|f| f.roc_period = 0, "features.roc_period"),
        ];
        for (edit, key) in cases {
            let mut f = FeatureSettings::default();
            edit(&mut f);
            let e = first_error(|v| f.validate(v)).unwrap_or_default();
            assert!(e.starts_with(&format!("setting `{key}`")), "{key}: {e}");
        }
    }

    #[test]
    fn repair_policies_and_timeframes_read_as_the_file_writes_them() {
        let i: InstrumentSettings =
            serde_json::from_value(serde_json::json!({"lot_size": 50, "timeframe": "5m"})).unwrap();
        assert_eq!(i.timeframe, Some(Timeframe::from_millis(300_000)));
        assert_eq!(i.fractional, None);
        for (name, policy) in [
            ("refuse", RepairPolicy::Refuse),
            ("drop", RepairPolicy::Drop),
            ("repair", RepairPolicy::Repair),
        ] {
            let read: RepairPolicy = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(read, policy);
        }
        assert!(serde_json::from_value::<InstrumentSettings>(serde_json::json!({"lots": 5})).is_err());
    }
}
