//! The interface between the engine and a trading strategy.

use tradelab_core::{Action, Bar, BarSeries};

use crate::order::Order;

/// What a strategy sees at one instrument's bar close, and where it puts orders.
pub struct BarContext<'a> {
    /// Index of the instrument in the engine's feed list.
    pub instrument: usize,
    /// Index of this bar in the instrument's series.
    pub index: usize,
    /// The bar that just closed.
    pub bar: Bar,
    /// Signed units held in this instrument.
    pub position: f64,
    /// Account equity, every instrument marked at its latest close.
    pub equity: f64,
    /// Account cash on hand.
    pub cash: f64,
    /// Unrealised P&L of this instrument's position at this close.
    pub unrealized_pnl: f64,
    /// True once the drawdown breaker has halted trading.
    pub halted: bool,
    /// Where [`submit`](BarContext::submit) puts orders (the engine's queue,
    /// or a trading session's, which sends them to its broker).
    pub orders: &'a mut Vec<Order>,
}

impl BarContext<'_> {
    /// Queues `order`: a market order fills under the fill policy, a limit
    /// or stop order waits for a bar that reaches its level.
    pub fn submit(&mut self, order: Order) {
        self.orders.push(order);
    }

    /// Acts on this instrument with a market order, as a rule strategy
    /// means it: `BUY_LONG` goes long unless already long (closing a short
    /// first), `SELL_SHORT` goes short unless already short, `CLOSE_*` exit
    /// if the position matches, `HOLD` does nothing.
    pub fn act(&mut self, action: Action) {
        let wanted = match action {
            Action::BuyLong => self.position <= 0.0,
            Action::SellShort => self.position >= 0.0,
            Action::CloseLong => self.position > 0.0,
            Action::CloseShort => self.position < 0.0,
            Action::Hold => false,
        };
        if wanted {
            self.submit(Order::market(self.instrument, action));
        }
    }
}

/// A trading strategy driven bar by bar. Implementations must be causal:
/// they see only the current and past bars.
pub trait Strategy {
    /// A label for results and reports, with the parameters, such as
    /// `sma_crossover(10,30)`.
    fn name(&self) -> String;

    /// Called once before the first bar, with every feed (so per-instrument
    /// state can be allocated here rather than in the hot loop).
    fn start(&mut self, feeds: &[&BarSeries]) {
        let _ = feeds;
    }

    /// Called at each bar's close, after that bar's fills.
    fn on_bar(&mut self, ctx: &mut BarContext<'_>);
}
