//! Hindsight-optimal action labels for supervised pre-training
//! (algorithms.md 2, "Variants"): dynamic programming over the future
//! prices of a split, net of costs. The future is used for the labels
//! only; the observations the model learns from stay causal.
//!
//! The model of a trade follows the environment's timing: an action taken
//! at bar t's close fills at bar t+1's open. Holding position p in {-1, 0,
//! +1} of a constant notional N (the cash the risk layer lets one asset
//! take: `initial_cash x max_asset_fraction`) earns
//!
//! ```text
//! N (p_old (open[t+1] / close[t] - 1) + p_new (close[t+1] / open[t+1] - 1))
//! ```
//!
//! over bar t+1, less fixed entry and exit fees and proportional costs
//! (fee percent plus fixed-bps slippage) on N when a position opens or
//! closes. Positions still open at the end pay their exit. Value-maximising
//! actions are found backwards; ties go to HOLD, then to closing, so the
//! labels do not churn. ATR- and volume-based slippage are not modelled:
//! the labels are targets to imitate, not a backtest.

use tradelab_core::{Action, BarSeries};
use tradelab_sim::settings::{BacktestSettings, RiskSettings, SlippageModel};

/// Position states: short, flat, long (index = sign + 1).
const STATES: usize = 3;

/// The actions valid in each state, with the state each leads to.
fn moves(state: usize) -> &'static [(Action, usize)] {
    match state {
        0 => &[(Action::Hold, 0), (Action::CloseShort, 1)],
        1 => &[(Action::Hold, 1), (Action::BuyLong, 2), (Action::SellShort, 0)],
        _ => &[(Action::Hold, 2), (Action::CloseLong, 1)],
    }
}

/// Costs and size of the labelling model.
#[derive(Debug, Clone, Copy)]
pub struct LabelCosts {
    /// Cash held in a position, constant over the range (account currency).
    pub notional: f64,
    /// Fixed fee paid on every entry (account currency).
    pub entry_fixed: f64,
    /// Fixed fee paid on every exit (account currency).
    pub exit_fixed: f64,
    /// Fraction of notional paid on every entry and exit.
    pub proportional: f64,
}

impl LabelCosts {
    /// The costs `backtest:` charges, on the notional the single-asset cap
    /// in `risk:` allows.
    pub fn new(backtest: &BacktestSettings, risk: &RiskSettings) -> Self {
        let slippage = match backtest.slippage.model {
            SlippageModel::FixedBps => backtest.slippage.bps / 1e4,
            _ => 0.0,
        };
        LabelCosts {
            notional: backtest.initial_cash * risk.max_asset_fraction.min(1.0),
            entry_fixed: backtest.costs.entry_fixed,
            exit_fixed: backtest.costs.exit_fixed,
            proportional: backtest.costs.percent + slippage,
        }
    }
}

/// The best action at every bar of a range for every position state.
#[derive(Debug, Clone)]
pub struct HindsightLabels {
    start: usize,
    /// `[bar - start][state]`.
    best: Vec<[Action; STATES]>,
}

impl HindsightLabels {
    /// Labels for decisions at bars `start..end` (each decision's outcome
    /// is known from the bars up to `end`, the range's last bar).
    pub fn new(series: &BarSeries, start: usize, end: usize, costs: LabelCosts) -> Self {
        let end = end.min(series.len().saturating_sub(1));
        let n = end.saturating_sub(start);
        let mut best = vec![[Action::Hold; STATES]; n];
        let exit = costs.exit_fixed + costs.proportional * costs.notional;
        let entry = costs.entry_fixed + costs.proportional * costs.notional;
        // Value of ending in each state after the last bar: open positions exit.
        let mut next = [-exit, 0.0, -exit];
        for t in (start..end).rev() {
            let gap = series.open[t + 1] / series.close[t] - 1.0;
            let intra = series.close[t + 1] / series.open[t + 1] - 1.0;
            let mut value = [f64::NEG_INFINITY; STATES];
            for state in 0..STATES {
                let old = state as f64 - 1.0;
                for &(action, to) in moves(state) {
                    let new = to as f64 - 1.0;
                    let fee = match action {
                        Action::BuyLong | Action::SellShort => entry,
                        Action::CloseLong | Action::CloseShort => exit,
                        Action::Hold => 0.0,
                    };
                    let v = costs.notional * (old * gap + new * intra) - fee + next[to];
                    // Strictly better only: HOLD (listed first) wins ties.
                    if v > value[state] + 1e-9 {
                        value[state] = v;
                        best[t - start][state] = action;
                    }
                }
            }
            next = value;
        }
        HindsightLabels { start, best }
    }

    /// The best action at bar `t` holding a position of sign `position`
    /// (`None` outside the labelled range).
    pub fn label(&self, t: usize, position: f64) -> Option<Action> {
        let state = if position > 0.0 {
            2
        } else if position < 0.0 {
            0
        } else {
            1
        };
        t.checked_sub(self.start)
            .and_then(|i| self.best.get(i))
            .map(|row| row[state])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(closes: &[f64]) -> BarSeries {
        let mut s = BarSeries::new("T");
        for (i, c) in closes.iter().enumerate() {
            s.ts.push(i as i64 * 86_400);
            s.open.push(*c);
            s.high.push(*c);
            s.low.push(*c);
            s.close.push(*c);
            s.volume.push(1.0);
        }
        s
    }

    const COSTS: LabelCosts = LabelCosts {
        notional: 25_000.0,
        entry_fixed: 25.0,
        exit_fixed: 35.0,
        proportional: 0.0,
    };

    #[test]
    fn a_rise_worth_its_costs_is_bought_then_the_fall_shorted() {
        // Opens equal closes, so each move happens in the gap to the next
        // open. Decisions fill at the next open: to earn the +10% at bar 2
        // the position must be open by bar 1's open (buy at 0); closing at
        // bar 1 fills at bar 2's open, after the rise, keeping it; shorting
        // at bar 2 fills at 110 and earns the fall to 99.
        let s = series(&[100.0, 100.0, 110.0, 110.0, 99.0, 99.0]);
        let l = HindsightLabels::new(&s, 0, 5, COSTS);
        assert_eq!(l.label(0, 0.0), Some(Action::BuyLong));
        assert_eq!(l.label(1, 1.0), Some(Action::CloseLong));
        assert_eq!(l.label(1, 0.0), Some(Action::Hold), "too late to buy the rise");
        assert_eq!(l.label(2, 0.0), Some(Action::SellShort));
        assert_eq!(l.label(2, 1.0), Some(Action::CloseLong), "never hold into the fall");
        assert_eq!(l.label(5, 0.0), None);
    }

    #[test]
    fn moves_smaller_than_the_costs_are_not_traded() {
        // +0.1% on 25,000 is 25, less than the 60 a round trip costs.
        let s = series(&[100.0, 100.0, 100.1, 100.1, 100.0, 100.1]);
        let l = HindsightLabels::new(&s, 0, 5, COSTS);
        for t in 0..5 {
            assert_eq!(l.label(t, 0.0), Some(Action::Hold), "bar {t}");
        }
        // Holding a position into a flat market: close it (saves nothing
        // to wait, HOLD ties go first) or hold; never flip.
        assert!(matches!(l.label(0, 1.0), Some(Action::Hold | Action::CloseLong)));
    }

    #[test]
    fn labels_depend_on_the_future_only_through_the_outcome() {
        // Same past, different futures: the decision at bar 1 differs.
        let up = series(&[100.0, 100.0, 100.0, 120.0]);
        let down = series(&[100.0, 100.0, 100.0, 80.0]);
        let a = HindsightLabels::new(&up, 0, 3, COSTS).label(1, 0.0);
        let b = HindsightLabels::new(&down, 0, 3, COSTS).label(1, 0.0);
        assert_eq!((a, b), (Some(Action::BuyLong), Some(Action::SellShort)));
    }
}
