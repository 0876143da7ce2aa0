-- What a job printed: each line of its process's standard output and
-- error, and the worker's own notes (started, ended, why), numbered per
-- job in the order they were written, across attempts.
CREATE TABLE tradelab_job_logs (
    job_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    stream TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
