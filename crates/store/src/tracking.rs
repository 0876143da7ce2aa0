//! Experiment tracking: experiments group runs; a run has parameters, tags,
//! a status and metric time series `(key, step, time, value)`.

use serde_json::Value;
use sqlx::Row;

use crate::error::StoreError;
use crate::{new_id, now_ms, Store};

/// A run's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Started and not yet ended (what [`Store::start_run`] records).
    Running,
    /// Ended normally.
    Finished,
    /// Ended by an error.
    Failed,
    /// Stopped before its end, neither finished nor failed (MLflow's
    /// `KILLED`).
    Killed,
}

impl RunStatus {
    /// The lower-case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "running" => RunStatus::Running,
            "finished" => RunStatus::Finished,
            "failed" => RunStatus::Failed,
            "killed" => RunStatus::Killed,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown run status `{other}` in the database"
                )))
            }
        })
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The run's random hex id.
    pub id: String,
    /// The name of the experiment it belongs to.
    pub experiment: String,
    /// The run's name (not unique).
    pub name: String,
    /// Where the run stands.
    pub status: RunStatus,
    /// The run's parameters, a JSON object.
    pub params: Value,
    /// The run's tags, a JSON object.
    pub tags: Value,
    /// When it started, milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// When it ended, milliseconds since the Unix epoch; `None` while running.
    pub ended_ms: Option<i64>,
}

/// One value of a metric's time series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// The step (update, epoch...) the caller logged it at.
    pub step: i64,
    /// When it was stored, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The value (always finite).
    pub value: f64,
}

const RUN_COLUMNS: &str =
    "SELECT r.id, e.name AS experiment, r.name, r.status, r.params, r.tags, r.started_ms, r.ended_ms \
     FROM runs r JOIN experiments e ON e.id = r.experiment_id";

fn run_record(r: &sqlx::any::AnyRow) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: r.try_get("id")?,
        experiment: r.try_get("experiment")?,
        name: r.try_get("name")?,
        status: RunStatus::parse(&r.try_get::<String, _>("status")?)?,
        params: json(&r.try_get::<String, _>("params")?)?,
        tags: json(&r.try_get::<String, _>("tags")?)?,
        started_ms: r.try_get("started_ms")?,
        ended_ms: r.try_get("ended_ms")?,
    })
}

fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Invalid(format!("stored JSON is damaged: {e}")))
}

impl Store {
    /// The id of the experiment called `name`, created on first use.
    pub async fn experiment(&self, name: &str) -> Result<String, StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("an experiment needs a name".into()));
        }
        sqlx::query("INSERT INTO experiments (id, name, created_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(new_id())
            .bind(name)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT id FROM experiments WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Starts a run of experiment `experiment` (by name). `params` and `tags`
    /// are JSON objects.
    pub async fn start_run(
        &self,
        experiment: &str,
        name: &str,
        params: &Value,
        tags: &Value,
    ) -> Result<String, StoreError> {
        if !params.is_object() || !tags.is_object() {
            return Err(StoreError::Invalid(
                "run parameters and tags must be JSON objects".into(),
            ));
        }
        let experiment_id = self.experiment(experiment).await?;
        let id = new_id();
        sqlx::query(
            "INSERT INTO runs (id, experiment_id, name, status, params, tags, started_ms, ended_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&id)
        .bind(&experiment_id)
        .bind(name)
        .bind(RunStatus::Running.as_str())
        .bind(params.to_string())
        .bind(tags.to_string())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Appends metric points `(key, step, value)` stamped now, atomically:
    /// one multi-row INSERT (a single round trip, no explicit transaction)
    /// per thousand points.
    pub async fn log_metrics(&self, run: &str, points: &[(&str, i64, f64)]) -> Result<(), StoreError> {
        if let Some((key, _, v)) = points.iter().find(|(_, _, v)| !v.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "metric `{key}` is {v}; only finite values are stored"
            )));
        }
        if points.is_empty() {
            return Ok(());
        }
        let time = now_ms();
        // Chunks keep the bind parameters under SQLite's and PostgreSQL's limits.
        const CHUNK: usize = 1000;
        if points.len() <= CHUNK {
            return self.insert_metrics(&self.metrics_pool, run, time, points).await;
        }
        let mut tx = self.metrics_pool.begin().await?;
        for chunk in points.chunks(CHUNK) {
            self.insert_metrics(&mut *tx, run, time, chunk).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_metrics<'e, E>(
        &self,
        db: E,
        run: &str,
        time: i64,
        points: &[(&str, i64, f64)],
    ) -> Result<(), StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let mut sql = String::from("INSERT INTO metrics (run_id, key, step, time_ms, value) VALUES ");
        for i in 0..points.len() {
            let b = 5 * i;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5));
        }
        let mut q = sqlx::query(&sql);
        for (key, step, value) in points {
            q = q.bind(run).bind(*key).bind(*step).bind(time).bind(*value);
        }
        q.execute(db).await?;
        Ok(())
    }

    /// Ends a run with `status`.
    pub async fn finish_run(&self, run: &str, status: RunStatus) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE runs SET status = $1, ended_ms = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(run)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no run `{run}`")));
        }
        Ok(())
    }

    /// The run with id `id`; [`StoreError::NotFound`] if there is none.
    pub async fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        self.runs_where("r.id = $1", id)
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("no run `{id}`")))
    }

    /// An experiment's runs, oldest first.
    pub async fn runs(&self, experiment: &str) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_where("e.name = $1", experiment).await
    }

    /// The `limit` most recent runs of every experiment, newest first.
    pub async fn recent_runs(&self, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!("{RUN_COLUMNS} ORDER BY r.started_ms DESC, r.id DESC LIMIT $1");
        let rows = sqlx::query(&sql).bind(limit.max(0)).fetch_all(&self.pool).await?;
        rows.iter().map(run_record).collect()
    }

    /// The keys a run has metrics for, sorted.
    pub async fn metric_keys(&self, run: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT key FROM metrics WHERE run_id = $1 ORDER BY key")
                .bind(run)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn runs_where(&self, condition: &str, value: &str) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!("{RUN_COLUMNS} WHERE {condition} ORDER BY r.started_ms, r.id");
        let rows = sqlx::query(&sql).bind(value).fetch_all(&self.pool).await?;
        rows.iter().map(run_record).collect()
    }

    /// A metric's series for a run, by step.
    pub async fn metric_history(&self, run: &str, key: &str) -> Result<Vec<MetricPoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT step, time_ms, value FROM metrics WHERE run_id = $1 AND key = $2 ORDER BY step, time_ms",
        )
        .bind(run)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MetricPoint {
                    step: r.try_get("step")?,
                    time_ms: r.try_get("time_ms")?,
                    value: r.try_get("value")?,
                })
            })
            .collect()
    }
}
