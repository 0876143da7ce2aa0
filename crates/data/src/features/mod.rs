//! Technical indicators, streaming and batch, equal to TA-Lib's.
//!
//! Every indicator is a small struct with `new(periods...)`, an `update` that
//! takes one bar's inputs and returns the value for that bar (or a small
//! `Copy` struct for multi-line indicators), and `reset`. `update` never
//! allocates and never looks ahead; during the warm-up (TA-Lib's *lookback*,
//! given by `lookback()`) it returns NaN. Periods are expected to be at least
//! 1 (settings validation enforces that); 0 is treated as 1 rather than
//! panicking.
//!
//! The values reproduce TA-Lib's C library (as bundled in the `TA-Lib` 0.8
//! Python wheel) including its seeding conventions and the order of its
//! floating-point operations; `tests/features_talib.rs` checks them against
//! reference files written by `scripts/reference/talib_reference.py`.
//!
//! [`FeatureEngine`] runs all of them at the lengths in
//! [`FeatureSettings`](crate::settings::FeatureSettings); its batch
//! form [`FeatureEngine::compute`] is the streaming form run over a series.
//!
//! ```
//! use tradelab_core::{Bar, BarSeries};
//! use tradelab_data::settings::FeatureSettings;
//! use tradelab_data::features::{FeatureEngine, Sma};
//!
//! let mut sma = Sma::new(3);
//! let out: Vec<f64> = [1.0, 2.0, 3.0, 4.0].iter().map(|&x| sma.update(x)).collect();
//! assert!(out[0].is_nan() && out[1].is_nan());
//! assert_eq!(out[2..], [2.0, 3.0]);
//!
//! let series: BarSeries = (0..100)
//!     .map(|i| {
//!         let c = 100.0 + (i as f64 * 0.3).sin();
//!         Bar { ts: i * 60_000, open: c, high: c + 0.5, low: c - 0.5, close: c, volume: 1e3 }
//!     })
//!     .collect();
//! let mut engine = FeatureEngine::new(&FeatureSettings::default());
//! let features = engine.compute(&series);
//! assert_eq!(features.len(), 100);
//! assert_eq!(features.warmup(), engine.warmup_bars());
//! let rsi = features.column("rsi").unwrap();
//! assert!(rsi[..14].iter().all(|v| v.is_nan()));
//! assert!(rsi[14..].iter().all(|v| (0.0..=100.0).contains(v)));
//!
//! // Streaming gives the same numbers, one bar at a time.
//! engine.reset();
//! let mut row = vec![0.0; engine.names().len()];
//! for bar in series.iter() {
//!     engine.update(&bar, &mut row);
//! }
//! assert_eq!(row[4].to_bits(), rsi[99].to_bits());
//! ```

mod adx;
mod atr;
mod bollinger;
mod ema;
mod engine;
mod macd;
mod obv;
mod roc;
mod rsi;
mod sma;
mod stochastic;
mod volatility;

pub use adx::Adx;
pub use atr::{true_range, Atr};
pub use bollinger::{Bollinger, BollingerOutput};
pub use ema::Ema;
pub use engine::{FeatureEngine, FeatureMatrix, FEATURE_NAMES};
pub use macd::{Macd, MacdOutput};
pub use obv::Obv;
pub use roc::{LogReturn, Roc};
pub use rsi::Rsi;
pub use sma::{exact_mean_at, sma_track, Sma, SmaPoint};
pub use stochastic::{Stochastic, StochasticOutput};
pub use volatility::{RealizedVolatility, RollingVariance};
