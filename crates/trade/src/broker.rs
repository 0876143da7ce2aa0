//! What a trading session needs from a broker: send and cancel orders
//! (each under the session's client order id, so sending one twice is
//! harmless), its view of positions and the account, and the fills as they
//! happen.

use tradelab_core::Bar;
use tradelab_sim::account::Fill;
use tradelab_sim::order::Order;

/// The account as a decision sees it for one instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccountView {
    /// Signed units held in the instrument.
    pub position: f64,
    /// Equity, every position marked at its last price.
    pub equity: f64,
    /// Cash on hand.
    pub cash: f64,
    /// The instrument's unrealised P&L.
    pub unrealized_pnl: f64,
    /// True once the broker's risk layer halted trading (drawdown).
    pub halted: bool,
}

/// Where an order stands at the broker.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderState {
    /// Accepted; it fills under the broker's rules (the next bar's open
    /// for the paper broker's default fill policy).
    Accepted,
    /// Refused, with the broker's reason.
    Rejected(String),
    /// Cancelled before it filled.
    Cancelled,
}

/// Why a broker call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BrokerError {
    /// The broker refused the order.
    #[error("the broker rejected order {client_order_id}: {reason}")]
    Rejected {
        /// The order's client id.
        client_order_id: String,
        /// The broker's reason.
        reason: String,
    },
    /// Too many requests; the broker says when to come back.
    #[error("the broker is limiting requests; retry in {retry_after_ms} ms")]
    RateLimited {
        /// How long to wait.
        retry_after_ms: u64,
    },
    /// The connection dropped; reconnecting may help.
    #[error("the connection to the broker dropped: {0}")]
    Disconnected(String),
    /// The broker could not be reached at all.
    #[error("the broker cannot be reached: {0}; check the network and the broker's URL")]
    Unreachable(String),
    /// The credentials are missing or refused.
    #[error("the broker refused the credentials: {0}")]
    Credentials(String),
}

/// A broker a session trades through: the paper broker (the backtesting
/// engine's fills and costs) or a real one.
pub trait Broker {
    /// The account it trades, as `paper:<name>` or `<broker>:<account>`:
    /// one live session per account.
    fn account_id(&self) -> String;

    /// True when the broker fills from the session's own bars (the paper
    /// broker): after a restart the session rebuilds it by replaying the
    /// bars and the orders it recorded. A real broker keeps its own state.
    fn fills_from_session_bars(&self) -> bool;

    /// Instrument `instrument`'s bar reached the broker: a paper broker
    /// fills waiting orders against it and marks positions.
    fn on_bar(&mut self, instrument: usize, bar: Bar);

    /// Every instrument's bar at `ts` is in; true when the broker's risk
    /// layer has halted trading (its drawdown limit).
    fn end_timestamp(&mut self, ts: i64) -> bool;

    /// The account as `instrument`'s decision sees it.
    fn view(&self, instrument: usize) -> AccountView;

    /// Sends `order` under `client_order_id`.
    fn submit(&mut self, client_order_id: &str, order: Order) -> Result<OrderState, BrokerError>;

    /// Cancels a waiting order; false when there was nothing to cancel.
    fn cancel(&mut self, client_order_id: &str) -> Result<bool, BrokerError>;

    /// What the broker knows of `client_order_id`; `None`: never received.
    fn order_state(&mut self, client_order_id: &str) -> Result<Option<OrderState>, BrokerError>;

    /// Signed units per instrument, as the broker holds them.
    fn positions(&mut self) -> Result<Vec<f64>, BrokerError>;

    /// Cash and equity, as the broker has them.
    fn balances(&mut self) -> Result<(f64, f64), BrokerError>;

    /// Fills since the last call, appended to `out`.
    fn poll_fills(&mut self, out: &mut Vec<Fill>) -> Result<(), BrokerError>;

    /// Restores a dropped connection.
    fn reconnect(&mut self) -> Result<(), BrokerError> {
        Ok(())
    }
}
