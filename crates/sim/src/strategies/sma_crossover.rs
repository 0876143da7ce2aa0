use tradelab_core::{Action, BarSeries};
use tradelab_data::features::Sma;

use crate::strategy::{BarContext, Strategy};

/// Long on a golden cross (fast SMA crosses above slow), out (or short, if
/// allowed) on a death cross. A cross at bar t needs both averages valid at
/// t and t-1: golden when `fast[t] > slow[t]` and `fast[t-1] <= slow[t-1]`.
pub struct SmaCrossover {
    fast: usize,
    slow: usize,
    allow_short: bool,
    state: Vec<CrossState>,
}

struct CrossState {
    fast: Sma,
    slow: Sma,
    prev: Option<(f64, f64)>,
}

impl SmaCrossover {
    pub fn new(fast: usize, slow: usize, allow_short: bool) -> Self {
        SmaCrossover {
            fast,
            slow,
            allow_short,
            state: Vec::new(),
        }
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

    #[inline]
    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let s = &mut self.state[ctx.instrument];
        let f = s.fast.update(ctx.bar.close);
        let sl = s.slow.update(ctx.bar.close);
        if !(f.is_finite() && sl.is_finite()) {
            return;
        }
        if let Some((pf, ps)) = s.prev {
            if f > sl && pf <= ps {
                ctx.act(Action::BuyLong);
            } else if f < sl && pf >= ps {
                ctx.act(if self.allow_short {
                    Action::SellShort
                } else {
                    Action::CloseLong
                });
            }
        }
        s.prev = Some((f, sl));
    }
}
