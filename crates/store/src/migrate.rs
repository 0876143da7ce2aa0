//! Migrations shared by both databases, run on every open. The SQL is
//! portable but for one token, `{{serial}}` (an auto-incrementing key). Each is applied
//! once, in a transaction, and recorded in `tradelab_migrations`; the DDL
//! is idempotent (`IF NOT EXISTS`), so two processes opening a new
//! database at once both succeed.

use sqlx::Executor;

use crate::error::StoreError;
use crate::{now_ms, Backend, Store};

/// `(version, name, SQL)`, in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "0001_initial", include_str!("../migrations/0001_initial.sql"))];

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let bookkeeping = |source| StoreError::Migration {
        name: "tradelab_migrations".into(),
        source,
    };
    store
        .pool
        .execute(
            "CREATE TABLE IF NOT EXISTS tradelab_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
        )
        .await
        .map_err(bookkeeping)?;
    for (version, name, sql) in MIGRATIONS {
        let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM tradelab_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&store.pool)
            .await
            .map_err(bookkeeping)?;
        if applied.is_some() {
            continue;
        }
        let failed = |source| StoreError::Migration {
            name: name.to_string(),
            source,
        };
        let mut tx = store.pool.begin().await.map_err(failed)?;
        let serial = match store.backend() {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        };
        let sql = sql.replace("{{serial}}", serial);
        for statement in sql.split(';').map(strip_comments).filter(|s| !s.is_empty()) {
            tx.execute(statement.as_str()).await.map_err(failed)?;
        }
        let recorded = sqlx::query(
            "INSERT INTO tradelab_migrations (version, name, applied_ms) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(*name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
        recorded.map_err(failed)?;
        tx.commit().await.map_err(failed)?;
    }
    Ok(())
}

fn strip_comments(statement: &str) -> String {
    statement
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Versions applied to this database, in order.
pub async fn applied(store: &Store) -> Result<Vec<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT version FROM tradelab_migrations ORDER BY version")
            .fetch_all(&store.pool)
            .await?,
    )
}
