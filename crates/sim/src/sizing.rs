//! Position sizing: how many units an entry opens.

use crate::settings::{SizingMethod, SizingSettings};

use crate::costs::CostModel;

/// How many units an entry opens (`backtest.sizing:` in settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sizing {
    /// Always this many units.
    FixedQuantity(f64),
    /// Commit this fraction of equity, commission included.
    FractionOfEquity(f64),
    /// Aim for this annualised volatility, given the instrument's realised
    /// volatility over `window` bars: `units = target / vol * equity / price`.
    VolatilityTarget {
        /// Annualised volatility aimed at (0.15 = 15%).
        target: f64,
        /// Bars of realised volatility it is measured over.
        window: usize,
    },
    /// Commit `fraction` of equity times the instrument's hierarchical
    /// risk parity weight (its risk budget), the weights computed over the
    /// last `window` bars' returns every `rebalance` bars.
    RiskParity {
        /// Share of equity across all instruments.
        fraction: f64,
        /// Bars of returns behind the covariance.
        window: usize,
        /// Bars between recomputations.
        rebalance: usize,
    },
}

/// Lot rules for an instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lots {
    /// Units per lot: unless `fractional`, quantities are rounded down to a
    /// multiple of it.
    pub size: f64,
    /// Whether any quantity may be traded, ignoring `size`.
    pub fractional: bool,
}

impl Lots {
    /// Rounds a quantity down to whole lots (or leaves it when fractional).
    #[inline]
    pub fn round(&self, qty: f64) -> f64 {
        if self.fractional || !qty.is_finite() {
            return qty.max(0.0);
        }
        // The epsilon keeps 99.99999999 (float noise) from rounding to 99.
        ((qty / self.size) + 1e-9).floor().max(0.0) * self.size
    }
}

impl Sizing {
    /// The rule `backtest.sizing:` selects, with its parameters.
    pub fn from_settings(z: &SizingSettings) -> Self {
        match z.method {
            SizingMethod::FixedQuantity => Sizing::FixedQuantity(z.quantity),
            SizingMethod::FractionOfEquity => Sizing::FractionOfEquity(z.fraction),
            SizingMethod::VolatilityTarget => Sizing::VolatilityTarget {
                target: z.target_volatility,
                window: z.volatility_window,
            },
            SizingMethod::HierarchicalRiskParity => Sizing::RiskParity {
                fraction: z.fraction,
                window: z.hrp_window,
                rebalance: z.hrp_rebalance,
            },
        }
    }

    /// Units for an entry at `price`. `annual_vol` is the instrument's
    /// annualised realised volatility and `budget` its risk-parity weight
    /// (NaN when not yet known, or not used). Returns `None` when the
    /// method cannot size yet.
    #[inline]
    pub fn units(&self, equity: f64, price: f64, annual_vol: f64, budget: f64, costs: &CostModel) -> Option<f64> {
        match *self {
            Sizing::RiskParity { fraction, .. } => budget
                .is_finite()
                .then(|| costs.affordable_quantity(fraction * budget * equity, price)),
            Sizing::FixedQuantity(q) => Some(q),
            Sizing::FractionOfEquity(f) => Some(costs.affordable_quantity(f * equity, price)),
            Sizing::VolatilityTarget { target, .. } => {
                (annual_vol.is_finite() && annual_vol > 0.0).then(|| target / annual_vol * equity / price)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lots_round_down_and_fractional_passes_through() {
        let whole = Lots {
            size: 1.0,
            fractional: false,
        };
        assert_eq!(whole.round(10.7), 10.0);
        assert_eq!(whole.round(99.999_999_999_9), 100.0);
        let lots = Lots {
            size: 25.0,
            fractional: false,
        };
        assert_eq!(lots.round(74.0), 50.0);
        assert_eq!(
            Lots {
                size: 1.0,
                fractional: true
            }
            .round(0.37),
            0.37
        );
    }

    #[test]
    fn each_method_sizes_as_documented() {
        let c = CostModel {
            entry_fixed: 25.0,
            exit_fixed: 35.0,
            percent: 0.0,
            per_unit: 0.0,
            minimum: 0.0,
        };
        assert_eq!(
            Sizing::FixedQuantity(7.0).units(1e5, 10.0, f64::NAN, f64::NAN, &c),
            Some(7.0)
        );
        assert_eq!(
            Sizing::FractionOfEquity(1.0).units(100_025.0, 10.0, f64::NAN, f64::NAN, &c),
            Some(10_000.0)
        );
        let v = Sizing::VolatilityTarget {
            target: 0.1,
            window: 20,
        };
        assert_eq!(v.units(100_000.0, 10.0, 0.2, f64::NAN, &c), Some(5_000.0));
        assert_eq!(v.units(100_000.0, 10.0, f64::NAN, f64::NAN, &c), None);
        let hrp = Sizing::RiskParity {
            fraction: 0.5,
            window: 60,
            rebalance: 20,
        };
        assert_eq!(hrp.units(100_000.0, 10.0, f64::NAN, 0.2, &c), Some(1_000.0 - 2.5));
        assert_eq!(
            hrp.units(100_000.0, 10.0, 0.2, f64::NAN, &c),
            None,
            "weights not known yet"
        );
    }
}
