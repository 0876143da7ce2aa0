//! Store errors: each names the problem and what to do.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL or a setting is unusable.
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration {name}: {source}")]
    Migration { name: String, source: sqlx::Error },
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}
