//! The trading journal in the store (SQLite or PostgreSQL): a session's
//! orders, events and checkpoints, written on a runtime of its own so the
//! trading loop stays synchronous.

use serde_json::Value;
use tradelab_store::trading::{OrderStatusUpdate, TradingEventRecord, TradingOrderRecord};
use tradelab_store::{Durability, Store};
use tradelab_trade::journal::{Journal, JournalError};
use tradelab_trade::JournalDurability;

/// A journal in the store, for session `session_id` (which must exist).
pub struct StoreJournal {
    store: Store,
    runtime: tokio::runtime::Runtime,
    session_id: String,
    queued: Vec<TradingEventRecord>,
    /// Order statuses, written with the next checkpoint: only the order
    /// itself must be written before it is sent (a resumed session asks the
    /// broker about an order still `intended`).
    statuses: Vec<OrderStatusUpdate>,
}

impl StoreJournal {
    /// Writes session `session_id`'s record to the store at `url`, on a
    /// connection of its own (a pool belongs to the runtime that opened it).
    pub fn open(url: &str, session_id: &str, durability: JournalDurability) -> Result<Self, JournalError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| JournalError(format!("starting the async runtime: {e}")))?;
        // Client order ids make a lost last write harmless (a resumed
        // session re-sends under the same id), so by default commits skip
        // the disk wait that would otherwise dominate bar in to order out.
        let durability = match durability {
            JournalDurability::ProcessCrash => Durability::ProcessCrash,
            JournalDurability::PowerLoss => Durability::PowerLoss,
        };
        let store = runtime.block_on(Store::open_with(url, durability))?;
        Ok(StoreJournal {
            store,
            runtime,
            session_id: session_id.to_string(),
            queued: Vec::new(),
            statuses: Vec::new(),
        })
    }

    /// The store, for reading the session back.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a store call to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Writes queued order statuses and events now.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        let statuses = std::mem::take(&mut self.statuses);
        self.runtime
            .block_on(self.store.set_trading_order_statuses(&statuses))?;
        let events = std::mem::take(&mut self.queued);
        self.runtime
            .block_on(self.store.record_trading_events(&self.session_id, &events))?;
        Ok(())
    }
}

impl Journal for StoreJournal {
    fn intend(&mut self, order: &TradingOrderRecord) -> Result<bool, JournalError> {
        Ok(self.runtime.block_on(self.store.record_trading_order(order))?)
    }

    fn order_status(&mut self, client_order_id: &str, status: &str, detail: Option<&str>) -> Result<(), JournalError> {
        self.statuses.push(OrderStatusUpdate {
            client_order_id: client_order_id.to_string(),
            status: status.to_string(),
            detail: detail.map(str::to_string),
        });
        Ok(())
    }

    fn event(&mut self, event: TradingEventRecord) {
        self.queued.push(event);
    }

    fn checkpoint(&mut self, state: &Value) -> Result<(), JournalError> {
        self.flush()?;
        self.runtime
            .block_on(self.store.checkpoint_trading_session(&self.session_id, state))?;
        Ok(())
    }
}
