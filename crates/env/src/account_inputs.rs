//! What a policy sees of its account, and which actions it may take: one
//! definition for the environment (training) and the decision endpoint
//! (serving), so the two cannot drift apart.

use tradelab_core::Action;

use crate::market_data::ACCOUNT_FEATURES;
use crate::settings::ActionSpace;

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

impl ActionSpace {
    /// What the policy may choose with a position of `units`: the trading
    /// mask, or under targets long, short and flat in every state.
    #[inline]
    pub fn mask(self, units: f64) -> [bool; 5] {
        match self {
            ActionSpace::Trade => action_mask(units),
            ActionSpace::Target => [true, true, false, false, true],
        }
    }

    /// The seed's order that carries out the policy's `choice` with a
    /// position of `units`: the choice itself when trading; under targets
    /// an entry from flat, a close when the target is flat or the other
    /// side (the reversal's entry follows on the next bar, as the seed's
    /// actions cannot reverse in one), HOLD when already there. A choice
    /// the mask does not allow comes back unchanged, for the caller's
    /// invalid-action rule.
    #[inline]
    pub fn order(self, choice: Action, units: f64) -> Action {
        if self == ActionSpace::Trade || !self.mask(units)[choice.index()] {
            return choice;
        }
        let side = if units > 0.0 {
            1
        } else if units < 0.0 {
            -1
        } else {
            0
        };
        let target = match choice {
            Action::BuyLong => 1,
            Action::SellShort => -1,
            _ => 0,
        };
        match (side, target) {
            (s, t) if s == t => Action::Hold,
            (0, 1) => Action::BuyLong,
            (0, _) => Action::SellShort,
            (1, _) => Action::CloseLong,
            _ => Action::CloseShort,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_target_in_every_state_maps_to_a_seed_order_the_trading_mask_allows() {
        use Action::*;
        let target = ActionSpace::Target;
        // (position, target) -> order
        let table = [
            (0.0, BuyLong, BuyLong),
            (0.0, SellShort, SellShort),
            (0.0, Hold, Hold),
            (5.0, BuyLong, Hold),
            (5.0, SellShort, CloseLong),
            (5.0, Hold, CloseLong),
            (-5.0, BuyLong, CloseShort),
            (-5.0, SellShort, Hold),
            (-5.0, Hold, CloseShort),
        ];
        for (units, choice, order) in table {
            assert!(
                target.mask(units)[choice.index()],
                "{choice:?} is a valid target at {units}"
            );
            assert_eq!(target.order(choice, units), order, "{choice:?} at {units}");
            assert!(
                action_mask(units)[order.index()],
                "{order:?} is a valid order at {units}"
            );
        }
        for units in [0.0, 5.0, -5.0] {
            assert_eq!(target.mask(units), [true, true, false, false, true]);
            // The closes are never targets: they come back for the invalid-action rule.
            assert_eq!(target.order(CloseLong, units), CloseLong);
            for a in Action::ALL {
                assert_eq!(ActionSpace::Trade.order(a, units), a, "trading passes choices through");
            }
            assert_eq!(ActionSpace::Trade.mask(units), action_mask(units));
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
