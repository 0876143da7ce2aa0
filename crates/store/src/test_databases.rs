//! Throwaway PostgreSQL databases for tests, on the server
//! `TRADELAB_TEST_POSTGRES_URL` names (`.ci/run` sets it after checking the
//! server answers). A database rather than a schema where the code under
//! test keeps tables in fixed schemas (apalis's queue): the command-line
//! tests run child processes against one. Compiled for this crate's tests
//! and, through the `testing` feature, for other crates' tests only.

use sqlx::any::install_default_drivers;
use sqlx::{AnyPool, Executor};

use crate::StoreError;

/// The test server's URL, if tests should use one.
pub fn postgres_url() -> Option<String> {
    std::env::var("TRADELAB_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Creates the empty database `name` on the server at `base` (dropping one
/// a failed run left behind) and returns its URL.
pub async fn create_database(base: &str, name: &str) -> Result<String, StoreError> {
    check_name(name);
    install_default_drivers();
    let admin = AnyPool::connect(base).await.map_err(|e| connect_error(base, e))?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.execute(sql.as_str()).await.map_err(|e| connect_error(base, e))?;
    }
    admin.close().await;
    Ok(database_url(base, name))
}

/// Drops the database `name`, disconnecting whoever still uses it; errors
/// are ignored (a test's cleanup must not mask its failure).
pub async fn drop_database(base: &str, name: &str) {
    check_name(name);
    install_default_drivers();
    if let Ok(admin) = AnyPool::connect(base).await {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
        admin.close().await;
    }
}

/// `base` with its database (the last path segment) replaced by `name`,
/// keeping any query string.
pub fn database_url(base: &str, name: &str) -> String {
    let (url, query) = base.split_once('?').map_or((base, None), |(u, q)| (u, Some(q)));
    let prefix = url.rsplit_once('/').map_or(url, |(p, _)| p);
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

fn check_name(name: &str) {
    // Interpolated into SQL: test code chooses it, but keep it an identifier.
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "a test database name is letters, digits and underscores: {name}"
    );
}

fn connect_error(base: &str, e: sqlx::Error) -> StoreError {
    StoreError::Connect {
        url: crate::redact(base),
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_the_last_path_segment() {
        assert_eq!(database_url("postgres://u@h:5432/test", "t1"), "postgres://u@h:5432/t1");
        assert_eq!(
            database_url("postgres://u@h/test?sslmode=require", "t1"),
            "postgres://u@h/t1?sslmode=require"
        );
    }

    #[tokio::test]
    async fn a_created_database_opens_as_a_store_and_is_dropped() {
        let Some(base) = postgres_url() else {
            eprintln!("skipped: TRADELAB_TEST_POSTGRES_URL is not set");
            return;
        };
        let name = format!("tradelab_store_t_{}", std::process::id());
        let url = create_database(&base, &name).await.unwrap();
        let store = crate::Store::open(&url).await.unwrap();
        store.close().await;
        drop_database(&base, &name).await;
        assert!(crate::Store::open(&url).await.is_err(), "the database is gone");
    }
}
