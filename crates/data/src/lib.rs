//! Market data for tradelab: from CSV files on disk to validated, columnar
//! [`BarSeries`](tradelab_core::BarSeries) and their features.
//!
//! - [`load`]: readers for the real-world layouts in `data/raw/` (Yahoo-style
//!   daily, backtrader's Date/Time files, lower-case ISO `datetime` files,
//!   `dd.mm.YYYY HH:MM:SS.fff` and Unix-epoch timestamps), with row validation
//!   and the repair policy from settings;
//! - [`resample`]: OHLCV aggregation to a coarser timeframe;
//! - [`downsample`]: at most N candles of a series for a chart, keeping
//!   every high and low;
//! - [`synthetic`]: a seeded regime-switching market with known regime labels;
//! - [`features`]: technical indicators (streaming and batch, equal to TA-Lib);
//! - [`cache`] and [`prepare`]: `tradelab data prepare`, which writes
//!   `data/final/` and caches features by content hash;
//! - [`table`]: the training table over everything in `data/final/`.
//!
//! ```
//! use tradelab_data::synthetic::{SyntheticConfig, generate};
//! let market = generate(&SyntheticConfig { bars: 500, seed: 7, ..Default::default() });
//! assert_eq!(market.series.len(), 500);
//! assert_eq!(market.regimes.len(), 500);
//! ```

#![warn(missing_docs)]

pub mod cache;
pub mod downsample;
pub mod error;
pub mod features;
pub mod load;
pub mod prepare;
pub mod resample;
pub mod settings;
pub mod synthetic;
pub mod table;

pub use error::DataError;
pub use features::{FeatureEngine, FeatureMatrix};
pub use load::{load_dir, load_file, load_symbol, LoadOptions, LoadReport, RowIssue};
