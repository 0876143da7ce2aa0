//! Rule baselines: what every learned agent must beat after costs.
//!
//! Each keeps per-instrument state allocated in `start`, so `on_bar` does
//! constant work and no allocation.

mod buy_and_hold;
mod momentum;
mod rsi_reversion;
mod sma_crossover;

pub use buy_and_hold::BuyAndHold;
pub use momentum::Momentum;
pub use rsi_reversion::RsiMeanReversion;
pub use sma_crossover::SmaCrossover;

use crate::settings::StrategySettings;
use crate::strategy::Strategy;

/// Names accepted by `tradelab backtest --strategy`.
pub const BASELINES: [&str; 4] = ["buy_and_hold", "sma_crossover", "rsi_mean_reversion", "momentum"];

/// Builds a baseline by name with its parameters from settings.
pub fn baseline(name: &str, st: &StrategySettings) -> Option<Box<dyn Strategy>> {
    Some(match name.replace('-', "_").as_str() {
        "buy_and_hold" => Box::new(BuyAndHold::default()),
        "sma_crossover" => Box::new(SmaCrossover::new(
            st.sma_crossover.fast,
            st.sma_crossover.slow,
            st.sma_crossover.allow_short,
        )),
        "rsi_mean_reversion" => Box::new(RsiMeanReversion::new(&st.rsi_mean_reversion)),
        "momentum" => Box::new(Momentum::new(&st.momentum)),
        _ => return None,
    })
}
