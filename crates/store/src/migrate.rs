//! Migrations shared by both databases, run on every open. The SQL is
//! portable but for one token, `{{serial}}` (an auto-incrementing key).
//! All pending migrations apply in one transaction under a lock (SQLite's
//! write lock, a PostgreSQL advisory lock), each recorded in
//! `tradelab_migrations`, so processes opening a new database at once
//! apply each exactly once.

use sqlx::Executor;

use crate::error::StoreError;
use crate::{now_ms, Backend, Store};

/// `(version, name, SQL)`, in order.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "0001_initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "0002_jobs_table_names",
        include_str!("../migrations/0002_jobs_table_names.sql"),
    ),
    (3, "0003_oauth", include_str!("../migrations/0003_oauth.sql")),
    (4, "0004_security", include_str!("../migrations/0004_security.sql")),
    (5, "0005_trading", include_str!("../migrations/0005_trading.sql")),
    (
        6,
        "0006_audit_events",
        include_str!("../migrations/0006_audit_events.sql"),
    ),
    (
        7,
        "0007_decision_explanations",
        include_str!("../migrations/0007_decision_explanations.sql"),
    ),
    (8, "0008_job_logs", include_str!("../migrations/0008_job_logs.sql")),
    (
        9,
        "0009_backtests_by_strategy",
        include_str!("../migrations/0009_backtests_by_strategy.sql"),
    ),
];

/// A fixed key for the PostgreSQL advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x7472_6164_656c_6162; // "tradelab"

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let failed = |name: &str| {
        let name = name.to_string();
        move |source| StoreError::Migration { name, source }
    };
    // One transaction for all of it, holding a lock from the start: two
    // processes opening a new database at once apply each migration once,
    // so a migration need not be idempotent (a rename is not).
    let mut conn = store.pool.acquire().await.map_err(failed("tradelab_migrations"))?;
    match store.backend() {
        // IMMEDIATE takes SQLite's write lock now, not at the first write.
        Backend::Sqlite => conn.execute("BEGIN IMMEDIATE").await,
        Backend::Postgres => conn.execute("BEGIN").await,
    }
    .map_err(failed("tradelab_migrations"))?;
    let outcome = apply_all(store.backend(), &mut conn).await;
    let end = if outcome.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = conn.execute(end).await.map_err(failed("tradelab_migrations"));
    outcome?;
    ended?;
    Ok(())
}

async fn apply_all(backend: Backend, conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    let bookkeeping = |source| StoreError::Migration {
        name: "tradelab_migrations".into(),
        source,
    };
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(bookkeeping)?;
    }
    conn.execute(
        "CREATE TABLE IF NOT EXISTS tradelab_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
    )
    .await
    .map_err(bookkeeping)?;
    for (version, name, sql) in MIGRATIONS {
        let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM tradelab_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(bookkeeping)?;
        if applied.is_some() {
            continue;
        }
        let failed = |source| StoreError::Migration {
            name: name.to_string(),
            source,
        };
        let serial = match backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        };
        let sql = dialect(&sql.replace("{{serial}}", serial), backend);
        // Comments go first, so a `;` inside one does not split a statement.
        let sql = strip_comments(&sql);
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            conn.execute(statement).await.map_err(failed)?;
        }
        sqlx::query("INSERT INTO tradelab_migrations (version, name, applied_ms) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(*name)
            .bind(now_ms())
            .execute(&mut *conn)
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// The tokens a migration writes for what the two databases spell apart:
/// `{{partition_key:COL}}` (`, COL` on PostgreSQL, whose partitioned
/// tables must hold the partition column in their key; nothing on SQLite)
/// and `{{partition_by:COL}}` (`PARTITION BY RANGE (COL)` on PostgreSQL,
/// partitions made by month as rows arrive; nothing on SQLite).
fn dialect(sql: &str, backend: Backend) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("{{partition_") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let token = &rest[start + 2..start + len];
        let (kind, column) = token.split_once(':').unwrap_or((token, ""));
        match (kind, backend) {
            (_, Backend::Sqlite) => {}
            ("partition_key", Backend::Postgres) => out.push_str(&format!(", {column}")),
            ("partition_by", Backend::Postgres) => out.push_str(&format!(" PARTITION BY RANGE ({column})")),
            _ => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
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

#[cfg(test)]
mod dialect_tests {
    use super::*;

    #[test]
    fn partition_tokens_are_spelt_per_database() {
        let sql = "CREATE TABLE t (a BIGINT, PRIMARY KEY (a{{partition_key:at}})){{partition_by:at}}";
        assert_eq!(
            dialect(sql, Backend::Sqlite),
            "CREATE TABLE t (a BIGINT, PRIMARY KEY (a))"
        );
        assert_eq!(
            dialect(sql, Backend::Postgres),
            "CREATE TABLE t (a BIGINT, PRIMARY KEY (a, at)) PARTITION BY RANGE (at)"
        );
    }
}
