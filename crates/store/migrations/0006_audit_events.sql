-- The audit trail of trading sessions: every event the bus carried
-- (decisions with their full inputs, orders, fills, risk verdicts, breaker
-- transitions, model changes), as published: hash-chained per session. The
-- key is the session and the event's number, so a copy delivered twice is
-- stored once (on PostgreSQL with the time too, which a copy shares: a
-- partitioned table's key holds its partition column). The columns beside
-- the event are for filtering. On PostgreSQL the table is partitioned by
-- month (partitions made as rows arrive), so retention drops whole months.
CREATE TABLE audit_events (
    session_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    bar_ts BIGINT,
    instrument TEXT,
    model TEXT,
    action TEXT,
    event TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (session_id, seq{{partition_key:at_ms}})
){{partition_by:at_ms}};
CREATE INDEX audit_events_time ON audit_events (at_ms, session_id, seq);
CREATE INDEX audit_events_kind_time ON audit_events (kind, at_ms);

-- What `tradelab audit retain` moved out of audit_events: each session's
-- archived prefix (events 1 to through_seq), the hash of its last event
-- (where the stored remainder's chain starts), and the file that holds it.
CREATE TABLE audit_archives (
    session_id TEXT NOT NULL,
    through_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    events BIGINT NOT NULL,
    archived_ms BIGINT NOT NULL,
    PRIMARY KEY (session_id, through_seq)
);
