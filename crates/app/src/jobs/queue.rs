//! The queue that carries jobs to workers: apalis's SQL storage in the
//! store's own database (SQLite by default, PostgreSQL when configured).
//! A queued message is only a ticket naming a row of the store's `jobs`
//! table, which holds the job's payload, status and progress.

use std::time::Duration;

use anyhow::{Context, Result};
use apalis::prelude::Storage;
use apalis_sql::postgres::PostgresStorage;
use apalis_sql::sqlite::SqliteStorage;
use apalis_sql::Config;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use tradelab_store::{redact, Backend, Store};

use super::spec::JobSpec;

/// What apalis carries: the id of a row in `jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// The row of the store's `jobs` table the ticket stands for.
    pub job_id: String,
}

/// The apalis namespace (job type) tradelab's tickets use.
pub const NAMESPACE: &str = "tradelab::job";

/// The job queue in the store's database, on whichever backend the URL names.
#[derive(Clone)]
pub enum Queue {
    /// The embedded default.
    Sqlite(SqliteStorage<Ticket>),
    /// Several workers on several machines share it.
    Postgres(PostgresStorage<Ticket>),
}

/// How often an idle worker looks for work, and how long a worker may go
/// unseen before apalis hands its running jobs to another. apalis's own
/// heartbeat is every 30 s, so this must be comfortably longer.
fn config() -> Config {
    Config::new(NAMESPACE)
        .set_poll_interval(Duration::from_millis(250))
        .set_reenqueue_orphaned_after(Duration::from_secs(90))
        // One ticket fetched at a time: a busy worker does not hoard queued jobs.
        .set_buffer_size(1)
}

impl Queue {
    /// Opens the queue in the database at `url` and creates its tables.
    pub async fn open(url: &str) -> Result<Queue> {
        // The same URL checks the store makes before it connects.
        let backend = Backend::of_url(url)?;
        if backend == Backend::Sqlite {
            // Private like the store's file, whichever of the two opens it first.
            tradelab_store::secure_sqlite_file(url)?;
            let path = tradelab_store::sqlite_file(url).map_or(":memory:".into(), |p| p.display().to_string());
            let options = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .with_context(|| format!("opening the job queue in {path}"))?;
            SqliteStorage::setup(&pool)
                .await
                .context("creating the job queue's tables")?;
            Ok(Queue::Sqlite(SqliteStorage::new_with_config(pool, config())))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .connect(url)
                .await
                .with_context(|| format!("opening the job queue in PostgreSQL at {}", redact(url)))?;
            PostgresStorage::setup(&pool)
                .await
                .context("creating the job queue's tables")?;
            Ok(Queue::Postgres(PostgresStorage::new_with_config(pool, config())))
        }
    }

    /// Records the job in the store, then queues its ticket. Returns the job id.
    pub async fn submit(&self, store: &Store, spec: &JobSpec) -> Result<String> {
        let payload = serde_json::to_value(spec)?;
        let job_id = store.enqueue_job(spec.kind(), &payload).await?;
        let ticket = Ticket { job_id: job_id.clone() };
        let pushed = match self.clone() {
            Queue::Sqlite(mut s) => s.push(ticket).await.map(|_| ()),
            Queue::Postgres(mut s) => s.push(ticket).await.map(|_| ()),
        };
        if let Err(e) = pushed {
            // Without a ticket no worker would ever see the row: mark it.
            let _ = store.request_cancel(&job_id).await;
            return Err(anyhow::Error::new(e).context("queueing the job"));
        }
        Ok(job_id)
    }
}

/// What the server and the workers both open: the store and the job queue
/// in the configured database (`TRADELAB_DATABASE_URL` or `store.url`).
pub async fn open_platform(settings: &crate::settings::Settings) -> Result<(Store, Queue)> {
    let url = settings.store.database_url();
    let store = Store::open(&url).await.with_context(|| {
        format!(
            "opening the store (set store.url or {})",
            tradelab_store::DATABASE_URL_ENV
        )
    })?;
    let queue = Queue::open(&url).await?;
    Ok((store, queue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_refuses_what_the_store_refuses_before_connecting() {
        let e = Queue::open("mysql://u:secret@db/x").await.err().unwrap();
        assert!(format!("{e:#}").contains("not a database URL"), "{e:#}");
        assert!(!format!("{e:#}").contains("secret"), "{e:#}");
        let e = Queue::open("postgres://u@127.0.0.1:1/x?channel_binding=require")
            .await
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("channel_binding"), "{e:#}");
    }

    #[tokio::test]
    async fn a_submitted_job_is_a_queued_row_in_the_store_beside_its_ticket() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::testing::sqlite_settings(dir.path());
        let (store, queue) = open_platform(&settings).await.unwrap();
        let spec = JobSpec::Backtest(super::super::spec::BacktestJob {
            strategy: "momentum".into(),
            symbols: vec!["nvda-1999-2014".into()],
            fill: None,
            settings: Vec::new(),
        });
        let id = queue.submit(&store, &spec).await.unwrap();
        let row = store.job(&id).await.unwrap();
        assert_eq!(row.kind, "backtest");
        assert_eq!(row.status, tradelab_store::jobs::JobStatus::Queued);
        assert_eq!(row.payload, serde_json::to_value(&spec).unwrap());
        // A second queue on the same file (another worker) opens the same tables.
        assert!(matches!(
            Queue::open(&settings.store.url).await.unwrap(),
            Queue::Sqlite(_)
        ));
    }
}
