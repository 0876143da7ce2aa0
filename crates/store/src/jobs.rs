//! Background jobs as rows: kind, payload, status, progress, and who runs
//! them under what lease.
//!
//! The queue that delivers jobs to workers (apalis) may deliver one twice:
//! after a worker dies its jobs are re-enqueued, and a worker starting up
//! re-enqueues running jobs whose worker it has not seen this instant. The
//! lease here makes running a job exclusive regardless: a worker must
//! [`claim`](Store::claim_job) it, keeps the claim by heartbeats, and a
//! claim whose heartbeats stopped for longer than the lease passes to the
//! next worker that asks.

use serde_json::Value;
use sqlx::Row;

use crate::error::StoreError;
use crate::{new_id, now_ms, Store};

/// A job's lifecycle: queued → running → finished | failed | cancelled;
/// a cancel request on a running job passes through `cancel_requested`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for a worker to claim it.
    Queued,
    /// A worker has claimed it and holds the lease.
    Running,
    /// Running, and asked to stop; its worker ends it as cancelled.
    CancelRequested,
    /// Ended normally (terminal).
    Finished,
    /// Ended by an error (terminal).
    Failed,
    /// Stopped before it finished (terminal).
    Cancelled,
}

impl JobStatus {
    /// The snake-case name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::CancelRequested => "cancel_requested",
            JobStatus::Finished => "finished",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// The status named by [`as_str`](Self::as_str)'s text;
    /// [`StoreError::Invalid`] for any other.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "cancel_requested" => JobStatus::CancelRequested,
            "finished" => JobStatus::Finished,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown job status `{other}` in the database"
                )))
            }
        })
    }

    /// Finished, failed or cancelled: nothing more will happen.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Finished | JobStatus::Failed | JobStatus::Cancelled)
    }
}

/// A stored job with its lease state.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// The job's random hex id.
    pub id: String,
    /// What sort of job it is (`train`, `backtest`); the payload's schema
    /// depends on it.
    pub kind: String,
    /// Where the job stands.
    pub status: JobStatus,
    /// What to do, as enqueued (a JSON document).
    pub payload: Value,
    /// The latest progress its worker reported; `{}` until the first report.
    pub progress: Value,
    /// What the job produced (run id, model version, backtest id).
    pub result: Option<Value>,
    /// Why the job failed, if it did.
    pub error: Option<String>,
    /// The worker holding (or last holding) the job.
    pub worker: Option<String>,
    /// The worker's last heartbeat, milliseconds since the Unix epoch; the
    /// lease lapses when it is older than the lease length.
    pub heartbeat_ms: Option<i64>,
    /// How many times a worker claimed it (more than 1 after a worker died).
    pub attempts: i64,
    /// When it was enqueued, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When its status or progress last changed, milliseconds since the
    /// Unix epoch.
    pub updated_ms: i64,
}

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This worker runs it now; `attempt` counts from 1.
    Claimed {
        /// Which claim this is: 1 on the first, more after a worker died.
        attempt: i64,
    },
    /// Another worker holds a live lease.
    Busy,
    /// Nothing to run: the job ended (or was cancelled before it started).
    Ended(JobStatus),
}

fn parse_json(t: &str) -> Result<Value, StoreError> {
    serde_json::from_str(t).map_err(|e| StoreError::Invalid(format!("stored JSON is damaged: {e}")))
}

const JOB_COLUMNS: &str = "SELECT j.id, j.kind, j.status, j.payload, j.progress, j.created_ms, j.updated_ms, \
     s.worker, s.heartbeat_ms, s.attempts, s.result, s.error \
     FROM tradelab_jobs j LEFT JOIN tradelab_job_state s ON s.job_id = j.id";

fn job_record(r: &sqlx::any::AnyRow) -> Result<JobRecord, StoreError> {
    let result: Option<String> = r.try_get("result")?;
    Ok(JobRecord {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        status: JobStatus::parse(&r.try_get::<String, _>("status")?)?,
        payload: parse_json(&r.try_get::<String, _>("payload")?)?,
        progress: parse_json(&r.try_get::<String, _>("progress")?)?,
        result: result.as_deref().map(parse_json).transpose()?,
        error: r.try_get("error")?,
        worker: r.try_get("worker")?,
        heartbeat_ms: r.try_get("heartbeat_ms")?,
        attempts: r.try_get::<Option<i64>, _>("attempts")?.unwrap_or(0),
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

impl Store {
    /// Adds a queued job.
    pub async fn enqueue_job(&self, kind: &str, payload: &Value) -> Result<String, StoreError> {
        let id = new_id();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO tradelab_jobs (id, kind, status, payload, progress, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(kind)
        .bind(JobStatus::Queued.as_str())
        .bind(payload.to_string())
        .bind("{}")
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// The job with id `id`; [`StoreError::NotFound`] if there is none.
    pub async fn job(&self, id: &str) -> Result<JobRecord, StoreError> {
        let row = sqlx::query(&format!("{JOB_COLUMNS} WHERE j.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no job `{id}`")))?;
        job_record(&row)
    }

    /// The `limit` most recent jobs, newest first.
    pub async fn recent_jobs(&self, limit: i64) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!("{JOB_COLUMNS} ORDER BY j.created_ms DESC, j.id DESC LIMIT $1"))
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_record).collect()
    }

    /// How many jobs are in each status.
    pub async fn job_counts(&self) -> Result<Vec<(JobStatus, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM tradelab_jobs GROUP BY status ORDER BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((JobStatus::parse(&r.try_get::<String, _>("status")?)?, r.try_get("n")?)))
            .collect()
    }

    /// Jobs a worker is running now (including those asked to stop).
    pub async fn running_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{JOB_COLUMNS} WHERE j.status IN ($1, $2) ORDER BY j.created_ms"
        ))
        .bind(JobStatus::Running.as_str())
        .bind(JobStatus::CancelRequested.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_record).collect()
    }

    /// Replaces a job's progress document (whoever runs it reports here).
    pub async fn set_job_progress(&self, id: &str, progress: &Value) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE tradelab_jobs SET progress = $1, updated_ms = $2 WHERE id = $3")
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

    /// Records what a job produced.
    pub async fn set_job_result(&self, id: &str, result: &Value) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE tradelab_job_state SET result = $1 WHERE job_id = $2")
            .bind(result.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("job `{id}` is not claimed by any worker")));
        }
        Ok(())
    }

    /// Claims job `id` for `worker`. A job is claimable when queued, or
    /// running under a lease not renewed for `lease_ms`. The claim is one
    /// conditional upsert on the job's lease row, so of two workers asking
    /// at once exactly one wins, on SQLite and PostgreSQL alike.
    pub async fn claim_job(&self, id: &str, worker: &str, lease_ms: i64) -> Result<Claim, StoreError> {
        let status = self.job(id).await?.status;
        if status.is_terminal() {
            return Ok(Claim::Ended(status));
        }
        let now = now_ms();
        let attempt: Option<i64> = sqlx::query_scalar(
            "INSERT INTO tradelab_job_state (job_id, worker, heartbeat_ms, attempts) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (job_id) DO UPDATE SET worker = $2, heartbeat_ms = $3, attempts = tradelab_job_state.attempts + 1 \
             WHERE tradelab_job_state.worker = $2 OR tradelab_job_state.worker IS NULL OR tradelab_job_state.heartbeat_ms < $4 \
             RETURNING attempts",
        )
        .bind(id)
        .bind(worker)
        .bind(now)
        .bind(now - lease_ms)
        .fetch_optional(&self.pool)
        .await?;
        let Some(attempt) = attempt else {
            return Ok(Claim::Busy);
        };
        // A cancel that arrived while the job waited, or while its dead
        // worker held it, ends it here.
        if status == JobStatus::CancelRequested {
            self.finish_job(id, worker, JobStatus::Cancelled, None).await?;
            return Ok(Claim::Ended(JobStatus::Cancelled));
        }
        let started =
            sqlx::query("UPDATE tradelab_jobs SET status = $1, updated_ms = $2 WHERE id = $3 AND status IN ($4, $1)")
                .bind(JobStatus::Running.as_str())
                .bind(now)
                .bind(id)
                .bind(JobStatus::Queued.as_str())
                .execute(&self.pool)
                .await?;
        if started.rows_affected() == 0 {
            // Cancelled or ended between the read and the claim.
            let status = self.job(id).await?.status;
            if status == JobStatus::CancelRequested {
                self.finish_job(id, worker, JobStatus::Cancelled, None).await?;
                return Ok(Claim::Ended(JobStatus::Cancelled));
            }
            return Ok(Claim::Ended(status));
        }
        Ok(Claim::Claimed { attempt })
    }

    /// Renews `worker`'s lease on job `id`. Returns the job's status, or
    /// `None` when the lease passed to another worker (stop working on it).
    pub async fn heartbeat_job(&self, id: &str, worker: &str) -> Result<Option<JobStatus>, StoreError> {
        let done = sqlx::query("UPDATE tradelab_job_state SET heartbeat_ms = $1 WHERE job_id = $2 AND worker = $3")
            .bind(now_ms())
            .bind(id)
            .bind(worker)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(self.job(id).await?.status))
    }

    /// Ends job `id` with a terminal `status`, if `worker` holds it.
    /// Returns false when another worker took it over.
    pub async fn finish_job(
        &self,
        id: &str,
        worker: &str,
        status: JobStatus,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        if !status.is_terminal() {
            return Err(StoreError::Invalid(format!("`{}` does not end a job", status.as_str())));
        }
        // An error is for reading: its end (where the cause is) and a
        // bounded size, whatever a failing job printed (issue 19 finding 19).
        let error = error.map(bounded_error);
        let mut tx = self.pool.begin().await?;
        let owned = sqlx::query("UPDATE tradelab_job_state SET error = $1 WHERE job_id = $2 AND worker = $3")
            .bind(error)
            .bind(id)
            .bind(worker)
            .execute(&mut *tx)
            .await?;
        if owned.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE tradelab_jobs SET status = $1, updated_ms = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Asks for a job to stop: a queued job is cancelled at once, a running
    /// one is marked for its worker to stop. Returns the new status.
    pub async fn request_cancel(&self, id: &str) -> Result<JobStatus, StoreError> {
        let now = now_ms();
        sqlx::query("UPDATE tradelab_jobs SET status = $1, updated_ms = $2 WHERE id = $3 AND status = $4")
            .bind(JobStatus::Cancelled.as_str())
            .bind(now)
            .bind(id)
            .bind(JobStatus::Queued.as_str())
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE tradelab_jobs SET status = $1, updated_ms = $2 WHERE id = $3 AND status = $4")
            .bind(JobStatus::CancelRequested.as_str())
            .bind(now)
            .bind(id)
            .bind(JobStatus::Running.as_str())
            .execute(&self.pool)
            .await?;
        Ok(self.job(id).await?.status)
    }
}

/// The most of a job's error message the store keeps.
pub const MAX_ERROR_BYTES: usize = 8 * 1024;

/// `error` cut to its last [`MAX_ERROR_BYTES`] (the cause comes last in
/// an error chain), on a character boundary, marked where cut.
fn bounded_error(error: &str) -> String {
    if error.len() <= MAX_ERROR_BYTES {
        return error.to_string();
    }
    let mut start = error.len() - MAX_ERROR_BYTES;
    while !error.is_char_boundary(start) {
        start += 1;
    }
    format!("[{} bytes cut] ...{}", start, &error[start..])
}
