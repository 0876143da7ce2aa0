//! Background jobs as rows: kind, status, payload and progress. The queue
//! that runs them (workers, retries) builds on this table.

use serde_json::Value;
use sqlx::Row;

use crate::error::StoreError;
use crate::{new_id, now_ms, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub payload: Value,
    pub progress: Value,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl Store {
    /// Adds a queued job.
    pub async fn enqueue_job(&self, kind: &str, payload: &Value) -> Result<String, StoreError> {
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO jobs (id, kind, status, payload, progress, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(kind)
        .bind("queued")
        .bind(payload.to_string())
        .bind("{}")
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Sets a job's status and progress document.
    pub async fn update_job(&self, id: &str, status: &str, progress: &Value) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE jobs SET status = $1, progress = $2, updated_ms = $3 WHERE id = $4")
            .bind(status)
            .bind(progress.to_string())
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no job `{id}`")));
        }
        Ok(())
    }

    pub async fn job(&self, id: &str) -> Result<JobRecord, StoreError> {
        let r =
            sqlx::query("SELECT id, kind, status, payload, progress, created_ms, updated_ms FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("no job `{id}`")))?;
        let parse = |t: String| {
            serde_json::from_str(&t).map_err(|e| StoreError::Invalid(format!("stored JSON is damaged: {e}")))
        };
        Ok(JobRecord {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            status: r.try_get("status")?,
            payload: parse(r.try_get("payload")?)?,
            progress: parse(r.try_get("progress")?)?,
            created_ms: r.try_get("created_ms")?,
            updated_ms: r.try_get("updated_ms")?,
        })
    }
}
