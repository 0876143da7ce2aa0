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
            ActionSpace::Exposure => EXPOSURE_MASK,
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
        if self != ActionSpace::Target || !self.mask(units)[choice.index()] {
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

/// The mask of `env.actions: exposure`: BUY_LONG alone carries the
/// quantity (the target), so the categorical decides nothing.
pub const EXPOSURE_MASK: [bool; 5] = [true, false, false, false, false];

/// A decision carried out as one of the seed's orders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedOrder {
    /// The seed's action.
    pub action: Action,
    /// Entries: the fraction of the risk budget to commit. Closes: the
    /// fraction of the position to close (1: all of it). HOLD: 0.
    pub quantity: f64,
}

impl SeedOrder {
    /// No order.
    pub const HOLD: SeedOrder = SeedOrder {
        action: Action::Hold,
        quantity: 0.0,
    };

    /// The order for the rest of a close (all of the position).
    fn close_all(units: f64) -> SeedOrder {
        SeedOrder {
            action: if units > 0.0 {
                Action::CloseLong
            } else {
                Action::CloseShort
            },
            quantity: 1.0,
        }
    }
}

/// The position a decision is carried out from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holding {
    /// Signed units held (negative: short).
    pub units: f64,
    /// Signed position value over the risk budget's share of equity:
    /// 1 is long the whole single-asset cap (0 with no positive equity).
    pub exposure: f64,
}

impl Holding {
    /// `units` at `price` in an account of `equity` whose risk budget is
    /// `risk_budget` of equity.
    pub fn new(units: f64, price: f64, equity: f64, risk_budget: f64) -> Holding {
        let scale = equity * risk_budget;
        let exposure = if scale > 0.0 { units * price / scale } else { 0.0 };
        Holding { units, exposure }
    }
}

impl ActionSpace {
    /// The seed's order that carries out a decision (`choice` with its
    /// `quantity`) from `held`. Trade and target read the choice as
    /// [`order`](Self::order) does (closes close everything). Exposure
    /// reads `2 quantity - 1` as the target exposure and holds within
    /// `band` of it; otherwise it enters or adds the difference, closes
    /// part of the position, or closes it all when the target is flat
    /// (within the band of 0) or on the other side (the reversal's entry
    /// follows on the next bar, as with targets). A non-finite quantity
    /// holds.
    #[inline]
    pub fn carry_out(self, choice: Action, quantity: f64, held: Holding, band: f64) -> SeedOrder {
        if self != ActionSpace::Exposure {
            let action = self.order(choice, held.units);
            let quantity = match action {
                Action::BuyLong | Action::SellShort => quantity,
                Action::CloseLong | Action::CloseShort => 1.0,
                Action::Hold => 0.0,
            };
            return SeedOrder { action, quantity };
        }
        if choice != Action::BuyLong || !quantity.is_finite() {
            return SeedOrder::HOLD;
        }
        let target = 2.0 * quantity.clamp(0.0, 1.0) - 1.0;
        let now = if held.units == 0.0 { 0.0 } else { held.exposure };
        if (target - now).abs() <= band {
            return SeedOrder::HOLD;
        }
        let target = if target.abs() <= band { 0.0 } else { target };
        if held.units != 0.0 && (target == 0.0 || target.signum() != held.units.signum()) {
            return SeedOrder::close_all(held.units);
        }
        if held.units == 0.0 {
            return SeedOrder {
                action: if target > 0.0 {
                    Action::BuyLong
                } else {
                    Action::SellShort
                },
                quantity: target.abs(),
            };
        }
        // Same side: add to it or trim it.
        let (want, have) = (target.abs(), now.abs());
        if want > have {
            SeedOrder {
                action: if held.units > 0.0 {
                    Action::BuyLong
                } else {
                    Action::SellShort
                },
                quantity: want - have,
            }
        } else {
            SeedOrder {
                action: if held.units > 0.0 {
                    Action::CloseLong
                } else {
                    Action::CloseShort
                },
                quantity: 1.0 - want / have,
            }
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

    /// The exposure an order leaves, with exact fills at the same price.
    fn after(order: SeedOrder, held: Holding) -> f64 {
        match order.action {
            Action::Hold => held.exposure,
            Action::BuyLong => held.exposure + order.quantity,
            Action::SellShort => held.exposure - order.quantity,
            Action::CloseLong | Action::CloseShort => held.exposure * (1.0 - order.quantity),
        }
    }

    #[test]
    fn every_exposure_target_maps_to_a_valid_seed_order_and_the_no_trade_band_holds() {
        let band = 0.1;
        let space = ActionSpace::Exposure;
        let mut orders = [0usize; 5];
        for held_exposure in [-1.0, -0.6, -0.05, 0.0, 0.05, 0.3, 0.75, 1.0] {
            let held = Holding {
                units: held_exposure * 40.0,
                exposure: held_exposure,
            };
            assert_eq!(space.mask(held.units), EXPOSURE_MASK);
            for step in 0..=1000 {
                let q = step as f64 / 1000.0;
                let target = 2.0 * q - 1.0;
                let order = space.carry_out(Action::BuyLong, q, held, band);
                orders[order.action.index()] += 1;
                let at = format!("target {target:.3} from {held_exposure}: {order:?}");
                // Valid for the broker: entries from flat or on the held
                // side, closes of the held side, for a fraction in (0, 1].
                match order.action {
                    Action::BuyLong => assert!(held.units >= 0.0, "{at}"),
                    Action::SellShort => assert!(held.units <= 0.0, "{at}"),
                    Action::CloseLong => assert!(held.units > 0.0, "{at}"),
                    Action::CloseShort => assert!(held.units < 0.0, "{at}"),
                    Action::Hold => {}
                }
                if order.action != Action::Hold {
                    assert!(order.quantity > 0.0 && order.quantity <= 1.0 + 1e-12, "{at}");
                }
                // The band: nothing within it, always something outside it.
                let gap = (target - held_exposure).abs();
                assert_eq!(order.action == Action::Hold, gap <= band, "{at}");
                if order.action == Action::Hold {
                    continue;
                }
                // Where the order leaves the position: at the target (flat
                // for one within the band of 0), or flat on the way to the
                // other side.
                let snapped = if target.abs() <= band { 0.0 } else { target };
                let reverses = held.units != 0.0 && snapped * held.units < 0.0;
                let want = if reverses { 0.0 } else { snapped };
                assert!(
                    (after(order, held) - want).abs() < 1e-9,
                    "{at}: ends at {}",
                    after(order, held)
                );
            }
        }
        assert!(orders.iter().all(|&n| n > 0), "every seed action is used: {orders:?}");
        // Anything but the carrier, or a non-finite quantity, holds.
        let held = Holding::new(10.0, 100.0, 10_000.0, 0.25);
        assert!((held.exposure - 0.4).abs() < 1e-12);
        assert_eq!(space.carry_out(Action::Hold, 0.9, held, band).action, Action::Hold);
        assert_eq!(
            space.carry_out(Action::BuyLong, f64::NAN, held, band).action,
            Action::Hold
        );
        // The other spaces close everything and pass entry quantities on.
        let close = ActionSpace::Target.carry_out(Action::Hold, 0.3, held, band);
        assert_eq!((close.action, close.quantity), (Action::CloseLong, 1.0));
        let entry = ActionSpace::Trade.carry_out(Action::SellShort, 0.3, Holding::new(0.0, 1.0, 1.0, 0.25), band);
        assert_eq!((entry.action, entry.quantity), (Action::SellShort, 0.3));
        assert_eq!(Holding::new(5.0, 100.0, -1.0, 0.25).exposure, 0.0);
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
