//! Store errors: each names the problem and what to do.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL or a setting is unusable.
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database {url}: {source}")]
    /// The database could not be reached or refused the connection.
    Connect {
        /// The URL tried, password redacted.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    #[error("database migration {name}: {source}")]
    /// A migration, or the bookkeeping around them, failed; nothing of the
    /// run was committed.
    Migration {
        /// The migration (`0003_oauth`, say), or `tradelab_migrations` for
        /// the lock, transaction and bookkeeping table.
        name: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    #[error("database: {0}")]
    /// Any other database error from a query.
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    /// The named record does not exist; the text says which (the API
    /// answers 404).
    NotFound(String),
    #[error("{0}")]
    /// The request was refused (a duplicate name, a non-finite number, a
    /// bad status), or a stored value is damaged; the text says which.
    Invalid(String),
}
