//! Rule baselines: what every learned agent must beat after costs.
//!
//! Each keeps per-instrument state allocated in `start`, so `on_bar` does
//! constant work and no allocation.

mod buy_and_hold;
mod momentum;
mod rsi_reversion;
mod sma_crossover;
#[cfg(test)]
mod testing;
mod vol_target;

pub use buy_and_hold::BuyAndHold;
pub use momentum::Momentum;
pub use rsi_reversion::{rsi_track, RsiMeanReversion, SharedRsiMeanReversion};
pub use sma_crossover::{SharedAverages, SharedSmaCrossover, SmaCrossover};
pub use vol_target::{volatility_track, Side as VolatilityTargetSide, VolatilityTargeted};

use crate::settings::StrategySettings;
use crate::strategy::Strategy;

/// Names accepted by `tradelab backtest --strategy`.
pub const BASELINES: [&str; 6] = [
    "buy_and_hold",
    "sma_crossover",
    "rsi_mean_reversion",
    "momentum",
    "buy_and_hold_vol_target",
    "momentum_vol_target",
];

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
        "buy_and_hold_vol_target" => Box::new(VolatilityTargeted::new(
            &st.volatility_target,
            VolatilityTargetSide::Long,
        )),
        "momentum_vol_target" => Box::new(VolatilityTargeted::new(
            &st.volatility_target,
            VolatilityTargetSide::Momentum,
        )),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_baseline_builds_by_name_and_unknown_names_do_not() {
        let st = StrategySettings::default();
        for name in BASELINES {
            let built = baseline(name, &st).unwrap_or_else(|| panic!("{name} does not build"));
            assert!(built.name().starts_with(name), "{name}: {}", built.name());
        }
        // The command line may write names with hyphens.
        assert_eq!(baseline("sma-crossover", &st).unwrap().name(), "sma_crossover(10,30)");
        assert!(baseline("martingale", &st).is_none());
    }
}
