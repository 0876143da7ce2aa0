//! Where a session writes what it does, so a restarted one can resume:
//! orders before they are sent, events, and checkpoints of its state.
//! [`MemoryJournal`] keeps it in memory (tests, benchmarks); the
//! application's store journal writes it to SQLite or PostgreSQL.

use serde_json::Value;
use tradelab_store::trading::{TradingEventRecord, TradingOrderRecord};
use tradelab_store::StoreError;

/// Why the journal could not write: the session stops, since it can no
/// longer promise not to send an order twice.
#[derive(Debug, thiserror::Error)]
#[error("the trading journal could not be written: {0}")]
pub struct JournalError(pub String);

impl From<StoreError> for JournalError {
    fn from(e: StoreError) -> Self {
        JournalError(e.to_string())
    }
}

/// A session's record.
pub trait Journal {
    /// Writes `order` before it is sent; false when its client order id
    /// was written before (by this session before a restart).
    fn intend(&mut self, order: &TradingOrderRecord) -> Result<bool, JournalError>;

    /// Records what became of an order (a journal may hold it until the
    /// next checkpoint: only the order itself must be written before it is
    /// sent, and a resumed session asks the broker about the rest).
    fn order_status(&mut self, client_order_id: &str, status: &str, detail: Option<&str>) -> Result<(), JournalError>;

    /// Queues an event; it is written with the next checkpoint.
    fn event(&mut self, event: TradingEventRecord);

    /// Writes the queued events and the session's state.
    fn checkpoint(&mut self, state: &Value) -> Result<(), JournalError>;
}

/// A journal in memory.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    /// Orders written, in order.
    pub orders: Vec<TradingOrderRecord>,
    /// Events written.
    pub events: Vec<TradingEventRecord>,
    /// The last checkpoint.
    pub state: Option<Value>,
    /// Checkpoints written.
    pub checkpoints: usize,
}

impl Journal for MemoryJournal {
    fn intend(&mut self, order: &TradingOrderRecord) -> Result<bool, JournalError> {
        if self.orders.iter().any(|o| o.client_order_id == order.client_order_id) {
            return Ok(false);
        }
        self.orders.push(order.clone());
        Ok(true)
    }

    fn order_status(&mut self, client_order_id: &str, status: &str, detail: Option<&str>) -> Result<(), JournalError> {
        if let Some(o) = self.orders.iter_mut().find(|o| o.client_order_id == client_order_id) {
            o.status = status.to_string();
            o.detail = detail.map(str::to_string);
        }
        Ok(())
    }

    fn event(&mut self, event: TradingEventRecord) {
        self.events.push(event);
    }

    fn checkpoint(&mut self, state: &Value) -> Result<(), JournalError> {
        self.state = Some(state.clone());
        self.checkpoints += 1;
        Ok(())
    }
}
