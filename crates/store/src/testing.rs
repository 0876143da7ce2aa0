//! Test databases: a fresh SQLite file always, and a fresh PostgreSQL
//! schema when `TRADELAB_TEST_POSTGRES_URL` is set (`.ci/run` sets it after
//! checking the server answers).

use sqlx::any::install_default_drivers;
use sqlx::{AnyPool, Executor};

use crate::Store;

pub(crate) struct TestDb {
    pub store: Store,
    pub name: &'static str,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL schema to drop when done.
    cleanup: Option<(String, String)>,
}

impl TestDb {
    /// Drops the test's PostgreSQL schema (SQLite files go with the
    /// temporary directory).
    pub async fn finish(self) {
        self.store.close().await;
        if let Some((base, schema)) = self.cleanup {
            drop_schema(&base, &schema).await;
        }
    }
}

/// Drops a test schema and everything in it.
pub(crate) async fn drop_schema(base: &str, schema: &str) {
    if let Ok(admin) = AnyPool::connect(base).await {
        let _ = admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await;
        admin.close().await;
    }
}

pub(crate) use crate::test_databases::postgres_url;

pub(crate) async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tradelab.db").display());
    TestDb {
        store: Store::open(&url).await.unwrap(),
        name: "sqlite",
        _dir: Some(dir),
        cleanup: None,
    }
}

/// A URL for a new, empty schema on the test server, and the schema.
pub(crate) async fn postgres_schema_url(base: &str) -> (String, String) {
    install_default_drivers();
    let schema = format!("t_{}", crate::new_id());
    let admin = AnyPool::connect(base)
        .await
        .expect("the test PostgreSQL server answers");
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    (format!("{base}{sep}options=-c%20search_path%3D{schema}"), schema)
}

/// SQLite, and PostgreSQL when configured.
pub(crate) async fn databases() -> Vec<TestDb> {
    let mut dbs = vec![sqlite().await];
    if let Some(base) = postgres_url() {
        let (url, schema) = postgres_schema_url(&base).await;
        dbs.push(TestDb {
            store: Store::open(&url).await.unwrap(),
            name: "postgres",
            _dir: None,
            cleanup: Some((base, schema)),
        });
    } else {
        eprintln!("skipped: PostgreSQL store tests (set TRADELAB_TEST_POSTGRES_URL)");
    }
    dbs
}
