//! What a policy sees of its account, and which actions it may take: one
//! definition for the environment (training) and the decision endpoint
//! (serving), so the two cannot drift apart.

use crate::market_data::ACCOUNT_FEATURES;

/// The account inputs of an observation: equity relative to the start,
/// signed exposure (position value over equity) and unrealised P&L over
/// equity. With no positive equity, exposure and P&L read 0.
#[inline]
pub fn account_features(
    equity: f64,
    initial_equity: f64,
    position_value: f64,
    unrealized_pnl: f64,
) -> [f32; ACCOUNT_FEATURES] {
    let (exposure, unrealized) = if equity > 0.0 {
        (position_value / equity, unrealized_pnl / equity)
    } else {
        (0.0, 0.0)
    };
    [
        (equity / initial_equity - 1.0) as f32,
        exposure as f32,
        unrealized as f32,
    ]
}

/// Actions valid for a position of `units` (signed), indexed by
/// [`Action::index`](tradelab_core::Action::index): flat may open either
/// way, a position may only be closed, and HOLD is always valid.
#[inline]
pub fn action_mask(units: f64) -> [bool; 5] {
    [units == 0.0, units == 0.0, units > 0.0, units < 0.0, true]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradelab_core::Action;

    #[test]
    fn flat_opens_either_way_and_a_position_only_closes() {
        let flat = action_mask(0.0);
        assert!(flat[Action::BuyLong.index()] && flat[Action::SellShort.index()]);
        assert!(!flat[Action::CloseLong.index()] && !flat[Action::CloseShort.index()]);
        let long = action_mask(3.0);
        assert!(long[Action::CloseLong.index()] && !long[Action::CloseShort.index()] && !long[Action::BuyLong.index()]);
        let short = action_mask(-3.0);
        assert!(short[Action::CloseShort.index()] && !short[Action::CloseLong.index()]);
        for m in [flat, long, short] {
            assert!(m[Action::Hold.index()]);
        }
    }

    #[test]
    fn account_inputs_are_fractions_of_equity() {
        // 10 units at 110 bought at 100, 9,000 cash: equity 10,100 from 10,000.
        let f = account_features(10_100.0, 10_000.0, 1_100.0, 100.0);
        assert!((f[0] - 0.01).abs() < 1e-6);
        assert!((f[1] - 1_100.0 / 10_100.0).abs() < 1e-6);
        assert!((f[2] - 100.0 / 10_100.0).abs() < 1e-6);
        // Ruined: no exposure or P&L ratio from a non-positive equity.
        assert_eq!(account_features(-5.0, 10_000.0, 50.0, -20.0)[1..], [0.0, 0.0]);
    }
}
