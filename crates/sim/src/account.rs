//! The shared cash account: cash, positions, marks, realised P&L, fills and
//! round-trip trades. This is where "execute a trade given action, price and
//! quantity" happens; the engine and (later) the RL environment both use it.

use serde::Serialize;
use tradelab_core::{Action, Side};

use crate::costs::CostModel;

/// A holding in one instrument. `qty` is signed: negative for shorts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Position {
    /// Units held: positive long, negative short, 0 flat.
    pub qty: f64,
    /// Volume-weighted average entry price of the open quantity; partial
    /// exits leave it unchanged, and it is 0 when flat.
    pub avg_price: f64,
}

/// One execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fill {
    /// Timestamp of the bar it filled on, in UTC milliseconds.
    pub ts: i64,
    /// Index of the instrument in the account (the engine's feed order).
    pub instrument: usize,
    /// The action that caused it; both halves of an order that crosses zero
    /// carry the same action.
    pub action: Action,
    /// Whether units were bought or sold.
    pub side: Side,
    /// Units traded, always positive.
    pub qty: f64,
    /// Price per unit, slippage included.
    pub price: f64,
    /// Commission charged for this fill.
    pub fee: f64,
    /// True when the fill opened or added to a position (entry fee applies).
    pub is_entry: bool,
}

/// Which way a round trip was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Opened by buying: gains when the price rises.
    Long,
    /// Opened by selling short: gains when the price falls.
    Short,
}

/// A round trip: from flat to flat in one instrument.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trade {
    /// Index of the instrument in the account (the engine's feed order).
    pub instrument: usize,
    /// Set by the fill that opened it.
    pub direction: Direction,
    /// Timestamp of the first entry fill, in UTC milliseconds.
    pub entry_ts: i64,
    /// Timestamp of the fill that brought the position back to flat.
    pub exit_ts: i64,
    /// Total units opened over the trade's life.
    pub quantity: f64,
    /// Volume-weighted average entry price.
    pub entry_price: f64,
    /// Volume-weighted average exit price.
    pub exit_price: f64,
    /// Net of every fee paid on the way in and out.
    pub pnl: f64,
    /// Every fee paid on the trade's entry and exit fills.
    pub fees: f64,
    /// `pnl` as a percentage of the entry notional.
    pub return_pct: f64,
}

#[derive(Debug, Clone, Copy)]
struct OpenTrade {
    direction: Direction,
    entry_ts: i64,
    opened_qty: f64,
    entry_notional: f64,
    closed_qty: f64,
    exit_notional: f64,
    gross_pnl: f64,
    fees: f64,
}

/// Why an action could not be executed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// The quantity was zero, negative, NaN or infinite.
    #[error("{action} needs a positive, finite quantity, got {qty}")]
    BadQuantity {
        /// The action refused.
        action: Action,
        /// The quantity it was given.
        qty: f64,
    },
    /// The price was zero, negative, NaN or infinite.
    #[error("{action} needs a positive, finite price, got {price}")]
    BadPrice {
        /// The action refused.
        action: Action,
        /// The price it was given.
        price: f64,
    },
    /// The action does not fit the position: opening one side while the
    /// other is held, or closing a side that is not held.
    #[error("{action} is not valid with position {position}: close it first")]
    WrongPosition {
        /// The action refused.
        action: Action,
        /// Units held at the time (negative for shorts).
        position: f64,
    },
    /// The instrument index is not below the account's instrument count.
    #[error("instrument index {0} is out of range")]
    UnknownInstrument(usize),
}

/// Cash, positions and the trade log of one backtest or episode.
#[derive(Debug, Clone)]
pub struct Account {
    /// Cash at the start, and again after [`reset`](Account::reset).
    pub initial_cash: f64,
    cash: f64,
    positions: Vec<Position>,
    marks: Vec<f64>,
    /// Sum of `qty * mark` over instruments, kept incrementally.
    market_value: f64,
    realized_pnl: f64,
    fees_paid: f64,
    traded_notional: f64,
    open_trades: Vec<Option<OpenTrade>>,
    /// Instruments with a non-zero position, kept so the engine's per-bar
    /// exposure check is O(1).
    open_count: usize,
    /// Commissions charged on every fill.
    pub costs: CostModel,
    /// Every execution so far, in order.
    pub fills: Vec<Fill>,
    /// Closed round trips so far, in the order they closed.
    pub trades: Vec<Trade>,
}

impl Account {
    /// An account holding `initial_cash` and no position in each of
    /// `instruments` instruments; marks are NaN until first set.
    pub fn new(initial_cash: f64, instruments: usize, costs: CostModel) -> Self {
        Account {
            initial_cash,
            cash: initial_cash,
            positions: vec![Position::default(); instruments],
            marks: vec![f64::NAN; instruments],
            market_value: 0.0,
            realized_pnl: 0.0,
            fees_paid: 0.0,
            traded_notional: 0.0,
            open_trades: vec![None; instruments],
            open_count: 0,
            costs,
            fills: Vec::new(),
            trades: Vec::new(),
        }
    }

    /// Back to the starting cash with no positions, keeping allocations.
    pub fn reset(&mut self) {
        self.cash = self.initial_cash;
        self.positions.fill(Position::default());
        self.marks.fill(f64::NAN);
        self.market_value = 0.0;
        self.realized_pnl = 0.0;
        self.fees_paid = 0.0;
        self.traded_notional = 0.0;
        self.open_trades.fill(None);
        self.open_count = 0;
        self.fills.clear();
        self.trades.clear();
    }

    /// Cash on hand (the seed's "current capital").
    pub fn cash(&self) -> f64 {
        self.cash
    }

    /// Cash plus positions marked at their latest prices.
    #[inline]
    pub fn equity(&self) -> f64 {
        self.cash + self.market_value
    }

    /// The holding in `instrument`. Panics if the index is out of range.
    #[inline]
    pub fn position(&self, instrument: usize) -> Position {
        self.positions[instrument]
    }

    /// Holdings of every instrument, by index.
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// Latest price `instrument` is marked at; NaN before the first mark.
    pub fn mark(&self, instrument: usize) -> f64 {
        self.marks[instrument]
    }

    /// Realised P&L net of fees, over closed quantities.
    pub fn realized_pnl(&self) -> f64 {
        self.realized_pnl
    }

    /// Mark-to-market P&L of the open position in `instrument`.
    pub fn unrealized_pnl(&self, instrument: usize) -> f64 {
        let p = self.positions[instrument];
        if p.qty == 0.0 {
            0.0
        } else {
            p.qty * (self.marks[instrument] - p.avg_price)
        }
    }

    /// Commissions paid since the start (or the last reset).
    pub fn fees_paid(&self) -> f64 {
        self.fees_paid
    }

    /// Sum of `|qty| * price` over every fill since the start (or the last
    /// reset).
    pub fn traded_notional(&self) -> f64 {
        self.traded_notional
    }

    /// Sum of |position value| over instruments.
    pub fn gross_exposure(&self) -> f64 {
        self.positions
            .iter()
            .zip(&self.marks)
            .map(|(p, m)| if p.qty == 0.0 { 0.0 } else { (p.qty * m).abs() })
            .sum()
    }

    /// True when any instrument has a non-zero position (O(1)).
    #[inline]
    pub fn has_positions(&self) -> bool {
        self.open_count > 0
    }

    /// Updates the price an instrument is marked at.
    #[inline]
    pub fn set_mark(&mut self, instrument: usize, price: f64) {
        let q = self.positions[instrument].qty;
        if q != 0.0 {
            self.market_value += q * (price - self.marks[instrument]);
        }
        self.marks[instrument] = price;
    }

    /// The seed's operation: executes `action` for `qty` units at `price`
    /// (already including slippage), charging commissions. `CLOSE_*` actions
    /// close at most the open quantity; `HOLD` does nothing. Returns the fee.
    ///
    /// No risk checks happen here: the engine and environment apply the risk
    /// layer before calling this.
    pub fn execute(
        &mut self,
        ts: i64,
        instrument: usize,
        action: Action,
        price: f64,
        qty: f64,
    ) -> Result<f64, ActionError> {
        if instrument >= self.positions.len() {
            return Err(ActionError::UnknownInstrument(instrument));
        }
        if action == Action::Hold {
            return Ok(0.0);
        }
        if !(price.is_finite() && price > 0.0) {
            return Err(ActionError::BadPrice { action, price });
        }
        if !(qty.is_finite() && qty > 0.0) {
            return Err(ActionError::BadQuantity { action, qty });
        }
        let pos = self.positions[instrument].qty;
        let signed = match action {
            Action::BuyLong if pos >= 0.0 => qty,
            Action::SellShort if pos <= 0.0 => -qty,
            Action::CloseLong if pos > 0.0 => -qty.min(pos),
            Action::CloseShort if pos < 0.0 => qty.min(-pos),
            _ => return Err(ActionError::WrongPosition { action, position: pos }),
        };
        Ok(self.fill(ts, instrument, action, signed, price))
    }

    /// Trades `signed_qty` units (positive buys) at `price`. An order that
    /// crosses zero is split into a closing fill and an opening fill, each
    /// paying its own fee. Returns the total fee.
    pub fn fill(&mut self, ts: i64, instrument: usize, action: Action, signed_qty: f64, price: f64) -> f64 {
        if signed_qty == 0.0 {
            return 0.0;
        }
        self.set_mark(instrument, price);
        let pos = self.positions[instrument].qty;
        if pos != 0.0 && pos.signum() != signed_qty.signum() && signed_qty.abs() > pos.abs() {
            let close = -pos;
            let fee = self.fill_one(ts, instrument, action, close, price);
            return fee + self.fill_one(ts, instrument, action, signed_qty - close, price);
        }
        self.fill_one(ts, instrument, action, signed_qty, price)
    }

    /// A fill that does not cross zero.
    fn fill_one(&mut self, ts: i64, instrument: usize, action: Action, dq: f64, price: f64) -> f64 {
        let pos = self.positions[instrument];
        let is_entry = pos.qty == 0.0 || pos.qty.signum() == dq.signum();
        let fee = self.costs.commission(is_entry, dq, price);
        self.cash -= dq * price + fee;
        self.market_value += dq * price;
        self.fees_paid += fee;
        self.traded_notional += dq.abs() * price;
        let new_qty = pos.qty + dq;
        if pos.qty == 0.0 {
            self.open_count += 1;
        }
        let mut realized = -fee;
        if is_entry {
            let avg = (pos.qty.abs() * pos.avg_price + dq.abs() * price) / new_qty.abs();
            self.positions[instrument] = Position {
                qty: new_qty,
                avg_price: avg,
            };
            let t = self.open_trades[instrument].get_or_insert(OpenTrade {
                direction: if dq > 0.0 { Direction::Long } else { Direction::Short },
                entry_ts: ts,
                opened_qty: 0.0,
                entry_notional: 0.0,
                closed_qty: 0.0,
                exit_notional: 0.0,
                gross_pnl: 0.0,
                fees: 0.0,
            });
            t.opened_qty += dq.abs();
            t.entry_notional += dq.abs() * price;
            t.fees += fee;
        } else {
            let gross = -dq * (price - pos.avg_price);
            realized += gross;
            let flat = new_qty.abs() < 1e-12 * pos.qty.abs().max(1.0);
            self.positions[instrument] = if flat {
                Position::default()
            } else {
                Position {
                    qty: new_qty,
                    avg_price: pos.avg_price,
                }
            };
            if flat {
                // Drop any rounding residue so equity stays exact.
                self.market_value -= new_qty * price;
                self.open_count -= 1;
            }
            if let Some(t) = self.open_trades[instrument].as_mut() {
                t.closed_qty += dq.abs();
                t.exit_notional += dq.abs() * price;
                t.gross_pnl += gross;
                t.fees += fee;
            }
            if flat {
                if let Some(t) = self.open_trades[instrument].take() {
                    let pnl = t.gross_pnl - t.fees;
                    self.trades.push(Trade {
                        instrument,
                        direction: t.direction,
                        entry_ts: t.entry_ts,
                        exit_ts: ts,
                        quantity: t.opened_qty,
                        entry_price: t.entry_notional / t.opened_qty,
                        exit_price: t.exit_notional / t.closed_qty,
                        pnl,
                        fees: t.fees,
                        return_pct: 100.0 * pnl / t.entry_notional,
                    });
                }
            }
        }
        self.realized_pnl += realized;
        self.fills.push(Fill {
            ts,
            instrument,
            action,
            side: if dq > 0.0 { Side::Buy } else { Side::Sell },
            qty: dq.abs(),
            price,
            fee,
            is_entry,
        });
        fee
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_costs() -> CostModel {
        CostModel {
            entry_fixed: 25.0,
            exit_fixed: 35.0,
            percent: 0.0,
            per_unit: 0.0,
            minimum: 0.0,
        }
    }

    #[test]
    fn long_round_trip_books_pnl_net_of_both_fees() {
        let mut a = Account::new(100_000.0, 1, seed_costs());
        assert_eq!(a.execute(1, 0, Action::BuyLong, 100.0, 10.0).unwrap(), 25.0);
        assert_eq!(a.cash(), 100_000.0 - 1000.0 - 25.0);
        a.set_mark(0, 110.0);
        assert_eq!(a.unrealized_pnl(0), 100.0);
        assert_eq!(a.equity(), 100_000.0 - 25.0 + 100.0);
        assert_eq!(a.execute(2, 0, Action::CloseLong, 110.0, 1e9).unwrap(), 35.0);
        assert_eq!(a.position(0).qty, 0.0);
        assert_eq!(a.equity(), 100_000.0 + 100.0 - 60.0);
        let t = &a.trades[0];
        assert_eq!((t.pnl, t.fees, t.entry_price, t.exit_price), (40.0, 60.0, 100.0, 110.0));
        assert!((t.return_pct - 4.0).abs() < 1e-12);
        assert_eq!(a.realized_pnl(), 40.0);
    }

    #[test]
    fn short_round_trip_profits_when_price_falls() {
        let mut a = Account::new(10_000.0, 1, seed_costs());
        a.execute(1, 0, Action::SellShort, 50.0, 20.0).unwrap();
        assert_eq!(a.position(0).qty, -20.0);
        a.set_mark(0, 40.0);
        assert_eq!(a.unrealized_pnl(0), 200.0);
        a.execute(2, 0, Action::CloseShort, 40.0, 20.0).unwrap();
        assert_eq!(a.trades[0].direction, Direction::Short);
        assert_eq!(a.trades[0].pnl, 200.0 - 60.0);
        assert_eq!(a.equity(), 10_000.0 + 140.0);
    }

    #[test]
    fn crossing_zero_splits_into_exit_and_entry_with_both_fees() {
        let mut a = Account::new(10_000.0, 1, seed_costs());
        a.fill(1, 0, Action::BuyLong, 10.0, 100.0);
        let fee = a.fill(2, 0, Action::SellShort, -15.0, 100.0);
        assert_eq!(fee, 60.0);
        assert_eq!(a.position(0).qty, -5.0);
        assert_eq!(a.trades.len(), 1);
        assert_eq!(a.fills.len(), 3);
    }

    #[test]
    fn partial_exits_average_into_one_trade() {
        let mut a = Account::new(10_000.0, 1, CostModel::free());
        a.execute(1, 0, Action::BuyLong, 10.0, 10.0).unwrap();
        a.execute(2, 0, Action::BuyLong, 20.0, 10.0).unwrap();
        assert_eq!(a.position(0).avg_price, 15.0);
        a.execute(3, 0, Action::CloseLong, 30.0, 10.0).unwrap();
        a.execute(4, 0, Action::CloseLong, 40.0, 100.0).unwrap();
        let t = &a.trades[0];
        assert_eq!((t.quantity, t.entry_price, t.exit_price), (20.0, 15.0, 35.0));
        assert_eq!(t.pnl, 400.0);
    }

    #[test]
    fn invalid_actions_are_refused_without_side_effects() {
        let mut a = Account::new(1000.0, 1, seed_costs());
        a.execute(1, 0, Action::BuyLong, 10.0, 1.0).unwrap();
        let before = a.equity();
        assert!(matches!(
            a.execute(2, 0, Action::SellShort, 10.0, 1.0),
            Err(ActionError::WrongPosition { .. })
        ));
        assert!(matches!(
            a.execute(2, 0, Action::CloseShort, 10.0, 1.0),
            Err(ActionError::WrongPosition { .. })
        ));
        assert!(a.execute(2, 0, Action::BuyLong, f64::NAN, 1.0).is_err());
        assert!(a.execute(2, 0, Action::BuyLong, 10.0, 0.0).is_err());
        assert!(a.execute(2, 3, Action::BuyLong, 10.0, 1.0).is_err());
        assert_eq!(a.execute(2, 0, Action::Hold, 10.0, 0.0).unwrap(), 0.0);
        assert_eq!(a.equity(), before);
    }
}
