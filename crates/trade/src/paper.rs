//! The paper broker: the backtesting engine stepped bar by bar, so a paper
//! session fills, charges and slips exactly as a backtest of the same
//! decisions, and its risk layer (position limits, the single-asset cap,
//! risk-parity budgets, the drawdown breaker) is the backtest's.

use std::collections::HashMap;

use tradelab_core::{Bar, BarSeries};
use tradelab_sim::account::Fill;
use tradelab_sim::engine::{BacktestResult, EngineConfig, Stepper};
use tradelab_sim::order::Order;

use crate::broker::{AccountView, Broker, BrokerError, OrderState};

/// A simulated account on the engine's fill, cost and slippage models.
pub struct PaperBroker {
    name: String,
    stepper: Stepper,
    orders: HashMap<String, (Order, OrderState)>,
    /// Fills already handed out by `poll_fills`.
    fills_seen: usize,
}

impl PaperBroker {
    /// A paper account called `name` for the instruments `feeds`
    /// describe (names, lots, timeframe), under `cfg`.
    pub fn new(name: &str, cfg: EngineConfig, feeds: &[&BarSeries]) -> Self {
        PaperBroker {
            name: name.to_string(),
            stepper: Stepper::new(cfg, feeds, &mut NoStart),
            orders: HashMap::new(),
            fills_seen: 0,
        }
    }

    /// The engine under it: account, fills, risk events, curve.
    pub fn stepper(&self) -> &Stepper {
        &self.stepper
    }

    /// The session as a backtest reports it, under `strategy`'s name.
    pub fn into_result(self, strategy: String, feeds: &[&BarSeries]) -> BacktestResult<'static> {
        self.stepper.into_result(strategy, feeds)
    }
}

/// `Stepper::new` starts a strategy; the paper broker has none.
struct NoStart;

impl tradelab_sim::strategy::Strategy for NoStart {
    fn name(&self) -> String {
        "paper".into()
    }

    fn on_bar(&mut self, _: &mut tradelab_sim::strategy::BarContext<'_>) {}
}

impl Broker for PaperBroker {
    fn account_id(&self) -> String {
        format!("paper:{}", self.name)
    }

    fn fills_from_session_bars(&self) -> bool {
        true
    }

    fn on_bar(&mut self, instrument: usize, bar: Bar) {
        self.stepper.on_market_bar(instrument, bar);
    }

    fn end_timestamp(&mut self, ts: i64) -> bool {
        self.stepper.end_timestamp(ts);
        self.stepper.broker().risk().halted()
    }

    fn view(&self, instrument: usize) -> AccountView {
        let b = self.stepper.broker();
        let a = b.account();
        AccountView {
            position: a.position(instrument).qty,
            equity: a.equity(),
            cash: a.cash(),
            unrealized_pnl: a.unrealized_pnl(instrument),
            halted: b.risk().halted(),
        }
    }

    fn submit(&mut self, client_order_id: &str, order: Order) -> Result<OrderState, BrokerError> {
        if let Some((_, state)) = self.orders.get(client_order_id) {
            return Ok(state.clone());
        }
        let state = if self.stepper.submit(order) {
            OrderState::Accepted
        } else {
            OrderState::Rejected("no bar of this instrument yet: nothing to price the order on".into())
        };
        self.orders.insert(client_order_id.to_string(), (order, state.clone()));
        match state {
            OrderState::Rejected(reason) => Err(BrokerError::Rejected {
                client_order_id: client_order_id.to_string(),
                reason,
            }),
            s => Ok(s),
        }
    }

    fn cancel(&mut self, client_order_id: &str) -> Result<bool, BrokerError> {
        let Some((order, state)) = self.orders.get_mut(client_order_id) else {
            return Ok(false);
        };
        if *state == OrderState::Accepted && self.stepper.cancel(order) {
            *state = OrderState::Cancelled;
            return Ok(true);
        }
        Ok(false)
    }

    fn order_state(&mut self, client_order_id: &str) -> Result<Option<OrderState>, BrokerError> {
        Ok(self.orders.get(client_order_id).map(|(_, s)| s.clone()))
    }

    fn positions(&mut self) -> Result<Vec<f64>, BrokerError> {
        Ok(self
            .stepper
            .broker()
            .account()
            .positions()
            .iter()
            .map(|p| p.qty)
            .collect())
    }

    fn balances(&mut self) -> Result<(f64, f64), BrokerError> {
        let a = self.stepper.broker().account();
        Ok((a.cash(), a.equity()))
    }

    fn poll_fills(&mut self, out: &mut Vec<Fill>) -> Result<(), BrokerError> {
        let fills = &self.stepper.broker().account().fills;
        out.extend_from_slice(&fills[self.fills_seen..]);
        self.fills_seen = fills.len();
        Ok(())
    }
}
