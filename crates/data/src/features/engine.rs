//! The feature engine: every indicator of this module at the lengths in
//! [`FeatureSettings`], updated together one bar at a time.
//!
//! Batch computation ([`FeatureEngine::compute`]) is defined as resetting and
//! then streaming the series through [`FeatureEngine::update`], so the two
//! give identical numbers and every value at row `t` depends only on bars
//! `0 ..= t`.

use crate::settings::FeatureSettings;
use tradelab_core::{Bar, BarSeries};

use super::{Adx, Atr, Bollinger, Ema, Macd, Obv, RealizedVolatility, Roc, Rsi, Sma, Stochastic};

/// The engine's output columns, in order.
pub const FEATURE_NAMES: [&str; 19] = [
    "sma_fast",
    "sma_slow",
    "ema_fast",
    "ema_slow",
    "rsi",
    "macd",
    "macd_signal",
    "macd_hist",
    "atr",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "roc",
    "log_return",
    "realized_vol",
    "stoch_k",
    "stoch_d",
    "adx",
    "obv",
];

/// Streaming computation of all features at the configured lengths.
#[derive(Debug, Clone)]
pub struct FeatureEngine {
    names: Vec<String>,
    sma_fast: Sma,
    sma_slow: Sma,
    ema_fast: Ema,
    ema_slow: Ema,
    rsi: Rsi,
    macd: Macd,
    atr: Atr,
    bollinger: Bollinger,
    roc: Roc,
    volatility: RealizedVolatility,
    stochastic: Stochastic,
    adx: Adx,
    obv: Obv,
}

impl FeatureEngine {
    /// An engine with every indicator at the lengths in `s`, columns named
    /// as in [`FEATURE_NAMES`].
    pub fn new(s: &FeatureSettings) -> Self {
        FeatureEngine {
            names: FEATURE_NAMES.iter().map(|n| n.to_string()).collect(),
            sma_fast: Sma::new(s.sma_fast),
            sma_slow: Sma::new(s.sma_slow),
            ema_fast: Ema::new(s.ema_fast),
            ema_slow: Ema::new(s.ema_slow),
            rsi: Rsi::new(s.rsi_period),
            macd: Macd::new(s.macd_fast, s.macd_slow, s.macd_signal),
            atr: Atr::new(s.atr_period),
            bollinger: Bollinger::new(s.bollinger_period, s.bollinger_width),
            roc: Roc::new(s.roc_period),
            volatility: RealizedVolatility::new(s.volatility_window),
            stochastic: Stochastic::new(s.stoch_k, s.stoch_slow_k, s.stoch_d),
            adx: Adx::new(s.adx_period),
            obv: Obv::new(),
        }
    }

    /// The column names, one per value written by [`update`](Self::update).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The longest warm-up of any feature: from this row on every feature
    /// is defined (for finite inputs).
    pub fn warmup_bars(&self) -> usize {
        [
            self.sma_fast.lookback(),
            self.sma_slow.lookback(),
            self.ema_fast.lookback(),
            self.ema_slow.lookback(),
            self.rsi.lookback(),
            self.macd.lookback(),
            self.atr.lookback(),
            self.bollinger.lookback(),
            self.roc.lookback(),
            self.volatility.lookback(),
            self.stochastic.lookback(),
            self.adx.lookback(),
            self.obv.lookback(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// Feeds one bar and writes one value per name into `out` (NaN where a
    /// feature is still warming up). Does not allocate.
    ///
    /// Panics if `out` is shorter than [`names`](Self::names).
    #[inline]
    pub fn update(&mut self, bar: &Bar, out: &mut [f64]) {
        let out = &mut out[..FEATURE_NAMES.len()];
        let c = bar.close;
        out[0] = self.sma_fast.update(c);
        out[1] = self.sma_slow.update(c);
        out[2] = self.ema_fast.update(c);
        out[3] = self.ema_slow.update(c);
        out[4] = self.rsi.update(c);
        let m = self.macd.update(c);
        out[5] = m.macd;
        out[6] = m.signal;
        out[7] = m.hist;
        out[8] = self.atr.update(bar.high, bar.low, c);
        let b = self.bollinger.update(c);
        out[9] = b.upper;
        out[10] = b.middle;
        out[11] = b.lower;
        out[12] = self.roc.update(c);
        out[14] = self.volatility.update(c);
        out[13] = self.volatility.last_return();
        let s = self.stochastic.update(bar.high, bar.low, c);
        out[15] = s.k;
        out[16] = s.d;
        out[17] = self.adx.update(bar.high, bar.low, c);
        out[18] = self.obv.update(c, bar.volume);
    }

    /// Forgets every bar seen, keeping the settings.
    pub fn reset(&mut self) {
        self.sma_fast.reset();
        self.sma_slow.reset();
        self.ema_fast.reset();
        self.ema_slow.reset();
        self.rsi.reset();
        self.macd.reset();
        self.atr.reset();
        self.bollinger.reset();
        self.roc.reset();
        self.volatility.reset();
        self.stochastic.reset();
        self.adx.reset();
        self.obv.reset();
    }

    /// Resets, then streams `series` through [`update`](Self::update): one
    /// column per name, one row per bar.
    pub fn compute(&mut self, series: &BarSeries) -> FeatureMatrix {
        self.reset();
        let n = series.len();
        let mut columns = vec![Vec::with_capacity(n); self.names.len()];
        let mut row = [0.0; FEATURE_NAMES.len()];
        for i in 0..n {
            self.update(&series.bar(i), &mut row);
            for (col, &v) in columns.iter_mut().zip(&row) {
                col.push(v);
            }
        }
        FeatureMatrix {
            names: self.names.clone(),
            columns,
        }
    }
}

/// Features by column: `columns[j][i]` is feature `names[j]` at bar `i`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureMatrix {
    /// Column names, one per entry of `columns`.
    pub names: Vec<String>,
    /// One column per name, each one value per bar; NaN during warm-up.
    pub columns: Vec<Vec<f64>>,
}

impl FeatureMatrix {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        let j = self.names.iter().position(|n| n == name)?;
        self.columns.get(j).map(Vec::as_slice)
    }

    /// Number of rows (bars).
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first row where every column is finite, or [`len`](Self::len) if
    /// there is none.
    pub fn warmup(&self) -> usize {
        (0..self.len())
            .find(|&i| self.columns.iter().all(|c| c[i].is_finite()))
            .unwrap_or(self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> BarSeries {
        (0..n)
            .map(|i| {
                let c = 50.0 + (i as f64 * 0.37).sin() * 3.0 + i as f64 * 0.05;
                Bar {
                    ts: i as i64 * 86_400_000,
                    open: c - 0.1,
                    high: c + 0.8,
                    low: c - 0.7,
                    close: c,
                    volume: 1000.0 + (i % 7) as f64 * 10.0,
                }
            })
            .collect()
    }

    #[test]
    fn names_and_warmup_at_default_settings() {
        let e = FeatureEngine::new(&FeatureSettings::default());
        assert_eq!(e.names().len(), 19);
        assert_eq!(e.names()[0], "sma_fast");
        assert_eq!(e.names()[18], "obv");
        assert_eq!(e.warmup_bars(), 33); // MACD 12/26/9
        let m = FeatureEngine::new(&FeatureSettings::default()).compute(&series(200));
        assert_eq!(m.len(), 200);
        assert_eq!(m.warmup(), 33);
        assert_eq!(m.column("obv").unwrap()[0], 1000.0);
        assert!(m.column("nope").is_none());
    }

    #[test]
    fn compute_resets_first() {
        let mut e = FeatureEngine::new(&FeatureSettings::default());
        let s = series(80);
        let a = e.compute(&s);
        let b = e.compute(&s);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn empty_matrix() {
        let m = FeatureEngine::new(&FeatureSettings::default()).compute(&BarSeries::default());
        assert!(m.is_empty());
        assert_eq!(m.warmup(), 0);
        assert_eq!(m.columns.len(), 19);
    }
}
