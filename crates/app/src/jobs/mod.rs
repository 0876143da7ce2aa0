//! Background jobs: training runs and backtests queued by the API (or
//! anyone with the database) and run by `tradelab worker` or the server's
//! own workers, on any machine that reaches the database.
//!
//! - [`spec`]: what a job is, checked before it is queued, and the command
//!   line that runs it;
//! - [`queue`]: apalis's SQL queue in the store's database;
//! - [`worker`]: claiming, running, heartbeats, cancel, and recovery from a
//!   dead worker;
//! - [`log`]: what a job's process prints, stored line by line as its log;
//! - [`batch`]: several jobs queued together and waited for (`train
//!   --seeds`).

pub mod batch;
pub mod log;
pub mod queue;
pub mod spec;
pub mod worker;
