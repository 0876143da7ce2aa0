//! Commissions and slippage: what a fill costs beyond the quoted price.

use crate::settings::{CostSettings, SlippageModel, SlippageSettings};
use tradelab_core::Side;

/// Commission per order: `max(minimum, fixed + percent * notional + per_unit * qty)`,
/// where `fixed` is the entry fee for orders that open or add to a position
/// and the exit fee for orders that reduce or close one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostModel {
    /// Fixed fee per order that opens or adds to a position.
    pub entry_fixed: f64,
    /// Fixed fee per order that reduces or closes a position.
    pub exit_fixed: f64,
    /// Fee as a fraction of traded notional (0.0005 = 5 bps).
    pub percent: f64,
    /// Fee per unit traded.
    pub per_unit: f64,
    /// Floor on each order's total fee.
    pub minimum: f64,
}

impl CostModel {
    /// The model `backtest.costs:` describes.
    pub fn from_settings(s: &CostSettings) -> Self {
        CostModel {
            entry_fixed: s.entry_fixed,
            exit_fixed: s.exit_fixed,
            percent: s.percent,
            per_unit: s.per_unit,
            minimum: s.minimum,
        }
    }

    /// No costs at all (for tests and frictionless comparisons).
    pub fn free() -> Self {
        CostModel {
            entry_fixed: 0.0,
            exit_fixed: 0.0,
            percent: 0.0,
            per_unit: 0.0,
            minimum: 0.0,
        }
    }

    /// The fee for one fill of `qty` units (sign ignored) at `price`;
    /// `is_entry` picks the entry or the exit fixed fee.
    #[inline]
    pub fn commission(&self, is_entry: bool, qty: f64, price: f64) -> f64 {
        let fixed = if is_entry { self.entry_fixed } else { self.exit_fixed };
        let fee = fixed + self.percent * qty.abs() * price + self.per_unit * qty.abs();
        fee.max(self.minimum)
    }

    /// The largest quantity whose cost plus entry commission fits in `budget`
    /// at `price`, before rounding to lots. Zero when even the fee does not fit.
    #[inline]
    pub fn affordable_quantity(&self, budget: f64, price: f64) -> f64 {
        let q = (budget - self.entry_fixed) / (price * (1.0 + self.percent) + self.per_unit);
        if q <= 0.0 {
            return 0.0;
        }
        // The minimum fee binds for small orders: re-solve with it.
        if self.commission(true, q, price) > self.entry_fixed + self.percent * q * price + self.per_unit * q {
            return ((budget - self.minimum) / price).max(0.0);
        }
        q
    }
}

/// Moves a fill price against the order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slippage {
    /// Fills at the quoted price.
    None,
    /// A fixed number of basis points.
    FixedBps(f64),
    /// A fraction of the latest average true range.
    AtrFraction(f64),
    /// `impact * quantity / bar volume` as a fraction of price (no impact on
    /// bars without volume, as on index data).
    VolumeParticipation(f64),
}

impl Slippage {
    /// The model `backtest.slippage:` selects, with its parameter.
    pub fn from_settings(s: &SlippageSettings) -> Self {
        match s.model {
            SlippageModel::None => Slippage::None,
            SlippageModel::FixedBps => Slippage::FixedBps(s.bps),
            SlippageModel::AtrFraction => Slippage::AtrFraction(s.atr_fraction),
            SlippageModel::VolumeParticipation => Slippage::VolumeParticipation(s.impact),
        }
    }

    /// True for ATR-based slippage: the broker then keeps an average true
    /// range per instrument.
    pub fn needs_atr(&self) -> bool {
        matches!(self, Slippage::AtrFraction(_))
    }

    /// The price actually paid (buys) or received (sells).
    #[inline]
    pub fn apply(&self, price: f64, side: Side, qty: f64, bar_volume: f64, atr: f64) -> f64 {
        let adverse = match *self {
            Slippage::None => 0.0,
            Slippage::FixedBps(bps) => price * bps * 1e-4,
            Slippage::AtrFraction(f) if atr.is_finite() => f * atr,
            Slippage::AtrFraction(_) => 0.0,
            Slippage::VolumeParticipation(k) if bar_volume > 0.0 => price * k * (qty.abs() / bar_volume),
            Slippage::VolumeParticipation(_) => 0.0,
        };
        match side {
            Side::Buy => price + adverse,
            Side::Sell => (price - adverse).max(price * 1e-6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_fees_are_fixed_per_entry_and_exit() {
        let c = CostModel::from_settings(&crate::settings::BacktestSettings::default().costs);
        assert_eq!(c.commission(true, 100.0, 50.0), 25.0);
        assert_eq!(c.commission(false, 100.0, 50.0), 35.0);
    }

    #[test]
    fn percentage_per_unit_and_minimum_combine() {
        let c = CostModel {
            entry_fixed: 1.0,
            exit_fixed: 2.0,
            percent: 0.001,
            per_unit: 0.01,
            minimum: 5.0,
        };
        assert_eq!(c.commission(true, 10.0, 10.0), 5.0, "minimum binds");
        let fee = c.commission(false, 1000.0, 100.0);
        assert!((fee - (2.0 + 100.0 + 10.0)).abs() < 1e-9);
    }

    #[test]
    fn affordable_quantity_spends_the_budget_exactly() {
        let c = CostModel {
            entry_fixed: 25.0,
            exit_fixed: 35.0,
            percent: 0.001,
            per_unit: 0.0,
            minimum: 0.0,
        };
        let q = c.affordable_quantity(100_000.0, 50.0);
        assert!((q * 50.0 + c.commission(true, q, 50.0) - 100_000.0).abs() < 1e-6);
        assert_eq!(c.affordable_quantity(20.0, 50.0), 0.0);
    }

    #[test]
    fn slippage_moves_prices_against_the_trader() {
        let s = Slippage::FixedBps(10.0);
        assert!((s.apply(100.0, Side::Buy, 1.0, 0.0, 0.0) - 100.1).abs() < 1e-12);
        assert!((s.apply(100.0, Side::Sell, 1.0, 0.0, 0.0) - 99.9).abs() < 1e-12);
        assert_eq!(Slippage::AtrFraction(0.5).apply(100.0, Side::Buy, 1.0, 0.0, 2.0), 101.0);
        let v = Slippage::VolumeParticipation(0.1);
        assert!((v.apply(100.0, Side::Buy, 100.0, 1000.0, 0.0) - 101.0).abs() < 1e-12);
        assert_eq!(
            v.apply(100.0, Side::Buy, 100.0, 0.0, 0.0),
            100.0,
            "no volume, no impact"
        );
    }
}
