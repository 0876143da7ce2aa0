//! tradelab's store: everything a run, a model, a backtest or a decision
//! leaves behind, in one SQL database.
//!
//! - [`Store::open`] connects to SQLite (the embedded default: a file, WAL
//!   mode so several local processes can write) or PostgreSQL (a
//!   `postgres://` URL, e.g. Neon), refusing a URL that asks for something
//!   the driver cannot do, and runs the migrations;
//! - [`migrate`]: the shared, portable migrations (`migrations/*.sql`),
//!   recorded in `tradelab_migrations`;
//! - [`tracking`]: experiments, runs (parameters, tags, status) and metric
//!   time series;
//! - [`registry`]: models (name, version, checksum, framework, metadata,
//!   artefact location, stage);
//! - [`audit`]: backtests and decisions;
//! - [`audit_events`]: trading sessions' audit trail (every event the bus
//!   carried, hash-chained per session), filtered and paged;
//! - [`jobs`]: background jobs and their progress; [`job_logs`]: the
//!   lines they printed;
//! - [`oauth`]: the authorization server's users, clients, grants, codes,
//!   refresh tokens, signing keys and device codes.
//! - [`trading`]: trading sessions (the account lease, the checkpoint they
//!   resume from), the orders they meant to send and their events.
//!
//! One code path serves both databases (sqlx's `Any` driver and `$n`
//! bind parameters, which SQLite also accepts); the tests run every operation
//! against SQLite always and against PostgreSQL when
//! `TRADELAB_TEST_POSTGRES_URL` is set.

#![warn(missing_docs)]

pub mod audit;
pub mod audit_events;
mod connect;
mod error;
pub mod explanations;
pub mod job_logs;
pub mod jobs;
pub mod migrate;
pub mod oauth;
pub mod registry;
pub mod settings;
pub mod tracking;
pub mod trading;

pub use connect::{redact, secure_sqlite_file, sqlite_file, Backend, Durability, Store};
pub use error::StoreError;
pub use settings::{AuditSettings, StoreSettings, DATABASE_URL_ENV};

pub(crate) use tradelab_core::time::now_ms;

/// A random 128-bit id as hex.
pub(crate) fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(any(test, feature = "testing"))]
pub mod test_databases;

#[cfg(test)]
mod tests;
