//! A job's log: the lines its process printed and its worker's notes, as
//! the dashboard and `GET /v1/jobs/{id}/logs` show them. Numbered per job
//! from 1 in the order written, across attempts, so a reader follows it
//! by asking for the lines after the last one it has.

use sqlx::Row;

use crate::error::StoreError;
use crate::Store;

/// Where a log line came from.
pub mod stream {
    /// The job process's standard output.
    pub const STDOUT: &str = "stdout";
    /// The job process's standard error (warnings, the error).
    pub const STDERR: &str = "stderr";
    /// The worker running it (started, ended, why).
    pub const WORKER: &str = "worker";
}

/// Lines stored by one statement at most (4 parameters each).
pub const APPEND_BATCH: usize = 200;

/// The longest line kept, in bytes; longer lines are cut and marked.
pub const MAX_LINE_BYTES: usize = 4_000;

/// One line of a job's log.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLogLine {
    /// Its number in the job's log, from 1.
    pub seq: i64,
    /// The attempt that wrote it (more than 1 after a worker died).
    pub attempt: i64,
    /// When it was read, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// One of [`stream`]'s names.
    pub stream: String,
    /// The text, without its line break.
    pub line: String,
}

/// `line` cut to [`MAX_LINE_BYTES`] at a character boundary, marked when cut.
fn bounded(line: &str) -> String {
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [cut: {} bytes]", &line[..end], line.len())
}

impl Store {
    /// Appends `lines` (`(at_ms, stream, text)`) to job `job_id`'s log as
    /// written by `attempt`, numbered after the lines already there.
    ///
    /// One `INSERT … SELECT` per [`APPEND_BATCH`] lines, numbering them from
    /// the log's last line in the same statement: a statement that writes
    /// from its start takes SQLite's write lock under the busy timeout, where
    /// a transaction that read the last number first could not upgrade its
    /// lock while the job's own process writes to the same file.
    pub async fn append_job_log(
        &self,
        job_id: &str,
        attempt: i64,
        lines: &[(i64, &str, &str)],
    ) -> Result<(), StoreError> {
        for chunk in lines.chunks(APPEND_BATCH) {
            // VALUES columns are named column1.. on both databases.
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = 3 + 4 * i;
                    format!("(${p}, ${}, ${}, ${})", p + 1, p + 2, p + 3)
                })
                .collect();
            let sql = format!(
                "INSERT INTO tradelab_job_logs (job_id, seq, attempt, at_ms, stream, line) \
                 SELECT $1, last.n + v.column1, $2, v.column2, v.column3, v.column4 \
                 FROM (SELECT COALESCE(MAX(seq), 0) AS n FROM tradelab_job_logs WHERE job_id = $1) AS last, \
                 (VALUES {}) AS v",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(job_id).bind(attempt);
            for (i, (at_ms, stream, text)) in chunk.iter().enumerate() {
                query = query.bind(i as i64 + 1).bind(*at_ms).bind(*stream).bind(bounded(text));
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Up to `limit` lines of job `job_id`'s log after line `after` (0:
    /// from the start), oldest first. A job with no log yet has none.
    pub async fn job_log(&self, job_id: &str, after: i64, limit: i64) -> Result<Vec<JobLogLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, attempt, at_ms, stream, line FROM tradelab_job_logs WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(job_id)
        .bind(after)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobLogLine {
                    seq: r.try_get("seq")?,
                    attempt: r.try_get("attempt")?,
                    at_ms: r.try_get("at_ms")?,
                    stream: r.try_get("stream")?,
                    line: r.try_get("line")?,
                })
            })
            .collect()
    }
}
