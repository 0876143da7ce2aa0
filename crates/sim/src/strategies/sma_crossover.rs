use std::cmp::Ordering;

use tradelab_core::{Action, BarSeries};
use tradelab_data::features::Sma;

use crate::strategy::{BarContext, Strategy};

/// Long on a golden cross (fast SMA crosses above slow), out (or short, if
/// allowed) on a death cross. A cross at bar t needs both averages valid at
/// t and t-1: golden when `fast[t] > slow[t]` and `fast[t-1] <= slow[t-1]`.
///
/// The averages are compared as their correctly rounded values (what
/// backtrader and backtesting.py compute), so exact ties decide the same way
/// as in those tools: the cheap running averages settle every comparison
/// except those within their error bounds, which fall back to exact means.
pub struct SmaCrossover {
    fast: usize,
    slow: usize,
    allow_short: bool,
    state: Vec<CrossState>,
}

struct CrossState {
    fast: Sma,
    slow: Sma,
    /// How fast compared with slow at the previous bar.
    prev: Option<Ordering>,
}

impl SmaCrossover {
    /// Crosses a `fast`-bar SMA with a `slow`-bar one; with `allow_short`,
    /// a death cross goes short instead of closing the long.
    pub fn new(fast: usize, slow: usize, allow_short: bool) -> Self {
        SmaCrossover {
            fast,
            slow,
            allow_short,
            state: Vec::new(),
        }
    }
}

/// `fast` against `slow` as exact means, using the running values when
/// their error bounds cannot change the answer.
#[inline]
fn compare(fast: &Sma, f: f64, slow: &Sma, s: f64) -> Option<Ordering> {
    let gap = (f - s).abs();
    // Tight values are within ~1e-10 relative of exact, so a gap of 1e-9
    // relative settles the order without computing the bounds (the common
    // case); twice the bounds also covers the rounding of the subtraction.
    let settled = (fast.is_tight() && slow.is_tight() && gap > 1e-9 * f.abs().max(s.abs()))
        || gap > 2.0 * (fast.error_bound() + slow.error_bound());
    if settled {
        f.partial_cmp(&s)
    } else {
        fast.exact().partial_cmp(&slow.exact())
    }
}

impl Strategy for SmaCrossover {
    fn name(&self) -> String {
        format!("sma_crossover({},{})", self.fast, self.slow)
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        self.state = feeds
            .iter()
            .map(|_| CrossState {
                fast: Sma::new(self.fast),
                slow: Sma::new(self.slow),
                prev: None,
            })
            .collect();
    }

    #[inline(always)]
    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let s = &mut self.state[ctx.instrument];
        let f = s.fast.update(ctx.bar.close);
        let sl = s.slow.update(ctx.bar.close);
        if !(f.is_finite() && sl.is_finite()) {
            return;
        }
        let now = compare(&s.fast, f, &s.slow, sl);
        match (s.prev, now) {
            (Some(Ordering::Less | Ordering::Equal), Some(Ordering::Greater)) => ctx.act(Action::BuyLong),
            (Some(Ordering::Greater | Ordering::Equal), Some(Ordering::Less)) => ctx.act(if self.allow_short {
                Action::SellShort
            } else {
                Action::CloseLong
            }),
            _ => {}
        }
        s.prev = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::testing;

    /// The bars at which a long-only crossover acts, for a series of closes.
    fn signals(closes: &[f64], fast: usize, slow: usize) -> Vec<(usize, Action)> {
        testing::signals(&mut SmaCrossover::new(fast, slow, false), closes)
    }

    #[test]
    fn an_exact_tie_is_not_a_cross_even_where_running_sums_drift() {
        // At bar 2 the slow running total has lost the 1.0 added beside 1e16
        // and reads 0.5 < fast = 1.0, but the exact means are equal (1.0 and
        // 1.0): no cross there. Bar 3 then crosses for real.
        assert_eq!(signals(&[1e16, 1.0, 1.0, 2.0], 1, 2), vec![(3, Action::BuyLong)]);
    }

    #[test]
    fn golden_and_death_crosses_on_a_simple_series() {
        let closes = [5.0, 4.0, 3.0, 4.0, 6.0, 5.0, 3.0, 2.0];
        // fast(1) vs slow(3): slow valid from bar 2.
        assert_eq!(
            signals(&closes, 1, 3),
            vec![(3, Action::BuyLong), (6, Action::CloseLong)]
        );
    }

    #[test]
    fn with_shorts_a_death_cross_goes_short_and_a_golden_cross_comes_back_long() {
        let closes = [5.0, 4.0, 3.0, 4.0, 6.0, 5.0, 3.0, 2.0, 4.0, 7.0];
        let mut both_ways = SmaCrossover::new(1, 3, true);
        assert_eq!(both_ways.name(), "sma_crossover(1,3)");
        assert_eq!(
            testing::signals(&mut both_ways, &closes),
            vec![(3, Action::BuyLong), (6, Action::SellShort), (8, Action::BuyLong)]
        );
    }
}
