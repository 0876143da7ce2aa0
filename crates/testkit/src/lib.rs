//! Fixtures shared by tradelab's tests, so each is written once: a counting
//! allocator for the "allocates nothing per bar" checks, and seeded
//! synthetic markets ready for the environment.
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

use std::sync::Arc;

use tradelab_core::{BarSeries, Settings};
use tradelab_data::synthetic::{generate, SyntheticConfig};
use tradelab_env::MarketData;

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
/// normalisation and splits under `settings`).
pub fn synthetic_market(bars: usize, seed: u64, settings: &Settings) -> Arc<MarketData> {
    Arc::new(MarketData::new(synthetic_series(bars, seed), settings).expect("a synthetic market prepares"))
}
