//! Fixtures shared by tradelab's tests, so each is written once: a counting
//! allocator for the "allocates nothing per bar" checks, seeded synthetic
//! markets ready for the environment, [`EnvSections`], the settings
//! sections the environment layer reads, for tests to change and build from,
//! a real MLflow server for the mirror's tests ([`mlflow`]), and local
//! fakes of Alpaca's trading and market-data APIs and of its bar stream
//! ([`fake_alpaca`], [`fake_alpaca_stream`]).
//!
//! A test binary installs the allocator itself (one global allocator per
//! binary):
//!
//! ```
//! use tradelab_testkit::alloc::{allocations, CountingAlloc};
//!
//! #[global_allocator]
//! static GLOBAL: CountingAlloc = CountingAlloc;
//!
//! let before = allocations();
//! let v = vec![1u8; 16];
//! assert!(allocations() > before);
//! drop(v);
//! ```

#![warn(missing_docs)]

pub mod alloc;
pub mod fake_alpaca;
pub mod fake_alpaca_stream;
pub mod mlflow;

use std::sync::Arc;

use tradelab_core::BarSeries;
use tradelab_data::settings::{DataSettings, FeatureSettings};
use tradelab_data::synthetic::{generate, SyntheticConfig};
use tradelab_env::settings::EnvSettings;
use tradelab_env::{EnvConfig, EnvError, MarketData};
use tradelab_regime::RegimeSettings;
use tradelab_sim::engine::EngineConfig;
use tradelab_sim::settings::{BacktestSettings, RiskSettings};

/// How many cases each property-based fuzz test runs: `default` (sized
/// for CI's time budget), or `TRADELAB_FUZZ_CASES` for a longer run
/// (`TRADELAB_FUZZ_CASES=20000 cargo test fuzz_`; BENCHMARKS.md records one).
pub fn fuzz_cases(default: u32) -> u32 {
    std::env::var("TRADELAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The synthetic generator's default seed, for tests that never chose one.
pub fn default_seed() -> u64 {
    SyntheticConfig::default().seed
}

/// `bars` bars of the seeded regime-switching synthetic market.
pub fn synthetic_series(bars: usize, seed: u64) -> BarSeries {
    generate(&SyntheticConfig {
        bars,
        seed,
        ..Default::default()
    })
    .series
}

/// The synthetic market as the environment reads it (features,
/// normalisation and splits under `sections`).
pub fn synthetic_market(bars: usize, seed: u64, sections: &EnvSections) -> Arc<MarketData> {
    Arc::new(
        sections
            .market_data(synthetic_series(bars, seed))
            .expect("a synthetic market prepares"),
    )
}

/// The settings sections the environment layer reads, at the compiled-in
/// defaults, under the keys `settings.yaml` gives them. A test changes a
/// field (`s.env.window = 8`, `s.backtest.fill = ...`) and builds markets
/// and environments from the result, as the application does from the
/// whole file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvSections {
    /// `data:` (lot rules).
    pub data: DataSettings,
    /// `features:`.
    pub features: FeatureSettings,
    /// `backtest:`.
    pub backtest: BacktestSettings,
    /// `risk:`.
    pub risk: RiskSettings,
    /// `env:`.
    pub env: EnvSettings,
    /// `regime:`.
    pub regime: RegimeSettings,
}

impl EnvSections {
    /// The broker these sections describe.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig::new(&self.backtest, &self.risk, &self.data)
    }

    /// The environment these sections describe.
    pub fn env_config(&self) -> EnvConfig {
        EnvConfig::new(&self.env, self.engine_config())
    }

    /// `series` prepared as the environment reads it.
    pub fn market_data(&self, series: BarSeries) -> Result<MarketData, EnvError> {
        MarketData::new(series, &self.features, &self.env, &self.regime)
    }
}
