//! Orders a strategy can submit: market, limit and stop, with an optional
//! stop-loss and take-profit attached to the position the order opens.

use tradelab_core::{Action, Side};

/// How an order's price condition works.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OrderKind {
    /// Fills at the fill policy's price.
    Market,
    /// Buys at or below / sells at or above the price.
    Limit(f64),
    /// Becomes a market order once the price trades through the level.
    Stop(f64),
}

/// How many units an order trades.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OrderQty {
    /// Exactly this many units (rounded down to the lot size).
    Units(f64),
    /// As many as the sizing method in settings gives at fill time.
    Sized,
    /// The whole open position (for `CLOSE_*` actions).
    All,
}

/// An instruction to the engine. The action gives the intent (and so the
/// side): `BUY_LONG` and `CLOSE_SHORT` buy, `SELL_SHORT` and `CLOSE_LONG` sell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Order {
    /// Index of the instrument in the engine's feed list.
    pub instrument: usize,
    /// What the order does; it also fixes the side.
    pub action: Action,
    /// How many units it trades.
    pub qty: OrderQty,
    /// Its price condition.
    pub kind: OrderKind,
    /// Protective exit price for the position this order opens.
    pub stop_loss: Option<f64>,
    /// Profit-taking exit price for the position this order opens.
    pub take_profit: Option<f64>,
}

impl Order {
    /// A market order sized by the settings (entries) or closing everything (exits).
    pub fn market(instrument: usize, action: Action) -> Order {
        let qty = match action {
            Action::CloseLong | Action::CloseShort => OrderQty::All,
            _ => OrderQty::Sized,
        };
        Order {
            instrument,
            action,
            qty,
            kind: OrderKind::Market,
            stop_loss: None,
            take_profit: None,
        }
    }

    /// A limit order at `price`, sized like [`market`](Order::market).
    pub fn limit(instrument: usize, action: Action, price: f64) -> Order {
        Order {
            kind: OrderKind::Limit(price),
            ..Order::market(instrument, action)
        }
    }

    /// A stop order at `price`, sized like [`market`](Order::market).
    pub fn stop(instrument: usize, action: Action, price: f64) -> Order {
        Order {
            kind: OrderKind::Stop(price),
            ..Order::market(instrument, action)
        }
    }

    /// Trades exactly `units` units instead of the sized or whole quantity.
    pub fn units(mut self, units: f64) -> Order {
        self.qty = OrderQty::Units(units);
        self
    }

    /// Attaches a stop-loss at `price` to the position this order opens.
    pub fn with_stop_loss(mut self, price: f64) -> Order {
        self.stop_loss = Some(price);
        self
    }

    /// Attaches a take-profit at `price` to the position this order opens;
    /// it fills at the level, without slippage.
    pub fn with_take_profit(mut self, price: f64) -> Order {
        self.take_profit = Some(price);
        self
    }

    /// Buy or sell, from the action (`HOLD` counts as a buy).
    pub fn side(&self) -> Side {
        match self.action {
            Action::BuyLong | Action::CloseShort | Action::Hold => Side::Buy,
            Action::SellShort | Action::CloseLong => Side::Sell,
        }
    }

    /// The price this order fills at on a bar, if it fills, before slippage.
    ///
    /// Conservative rules for bar data (documented in the engine):
    /// a limit fills at the open when the bar gaps through it, else at the
    /// limit if the range reaches it; a stop fills at the open on a gap
    /// through it, else at the stop level if the range reaches it.
    pub fn trigger_price(&self, open: f64, high: f64, low: f64) -> Option<f64> {
        let buy = self.side() == Side::Buy;
        match self.kind {
            OrderKind::Market => Some(open),
            OrderKind::Limit(p) if buy => (open <= p).then_some(open).or((low <= p).then_some(p)),
            OrderKind::Limit(p) => (open >= p).then_some(open).or((high >= p).then_some(p)),
            OrderKind::Stop(p) if buy => (open >= p).then_some(open).or((high >= p).then_some(p)),
            OrderKind::Stop(p) => (open <= p).then_some(open).or((low <= p).then_some(p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_and_stop_fill_rules_on_bar_data() {
        let buy_limit = Order::limit(0, Action::BuyLong, 100.0);
        assert_eq!(
            buy_limit.trigger_price(99.0, 101.0, 98.0),
            Some(99.0),
            "gap below: fills at the open"
        );
        assert_eq!(
            buy_limit.trigger_price(102.0, 103.0, 99.5),
            Some(100.0),
            "range reaches: fills at the limit"
        );
        assert_eq!(buy_limit.trigger_price(102.0, 103.0, 100.5), None);
        let sell_limit = Order::limit(0, Action::CloseLong, 100.0);
        assert_eq!(sell_limit.trigger_price(101.0, 102.0, 99.0), Some(101.0));
        assert_eq!(sell_limit.trigger_price(98.0, 100.5, 97.0), Some(100.0));
        let buy_stop = Order::stop(0, Action::BuyLong, 100.0);
        assert_eq!(
            buy_stop.trigger_price(101.0, 102.0, 100.5),
            Some(101.0),
            "gap through the stop fills at the open"
        );
        assert_eq!(buy_stop.trigger_price(99.0, 100.5, 98.0), Some(100.0));
        assert_eq!(buy_stop.trigger_price(99.0, 99.5, 98.0), None);
        let sell_stop = Order::stop(0, Action::SellShort, 100.0);
        assert_eq!(sell_stop.trigger_price(98.0, 99.0, 97.0), Some(98.0));
        assert_eq!(sell_stop.trigger_price(101.0, 102.0, 99.9), Some(100.0));
    }

    #[test]
    fn sides_follow_the_action() {
        assert_eq!(Order::market(0, Action::BuyLong).side(), Side::Buy);
        assert_eq!(Order::market(0, Action::CloseShort).side(), Side::Buy);
        assert_eq!(Order::market(0, Action::SellShort).side(), Side::Sell);
        assert_eq!(Order::market(0, Action::CloseLong).qty, OrderQty::All);
    }
}
