-- apalis (the job queue) keeps its own table called Jobs in the same
-- database, and SQLite's table names ignore case: ours moves aside.
ALTER TABLE jobs RENAME TO tradelab_jobs;

-- Who is running a job, the lease that proves it is alive, and how it ended.
CREATE TABLE tradelab_job_state (
    job_id TEXT PRIMARY KEY REFERENCES tradelab_jobs (id),
    worker TEXT,
    heartbeat_ms BIGINT,
    attempts BIGINT NOT NULL,
    result TEXT,
    error TEXT
);
