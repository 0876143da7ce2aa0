-- Issue 21: trading sessions. A session holds its account by a heartbeat
-- lease (a second session on the same account is refused while the first
-- is alive); its checkpoint is the state it resumes from after a kill.
CREATE TABLE trading_sessions (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    model TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL,
    ended_ms BIGINT,
    reason TEXT,
    checkpoint TEXT
);
CREATE INDEX trading_sessions_account ON trading_sessions (account, status);

-- Every order the session meant to send, written before it is sent: the
-- client order id makes sending it again after a restart harmless.
CREATE TABLE trading_orders (
    client_order_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES trading_sessions (id),
    instrument TEXT NOT NULL,
    bar_ts BIGINT NOT NULL,
    action TEXT NOT NULL,
    qty DOUBLE PRECISION,
    status TEXT NOT NULL,
    detail TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX trading_orders_session ON trading_orders (session_id, bar_ts);

-- What happened in a session, in order: fills, breaker trips and recoveries,
-- component restarts, reconciliation.
CREATE TABLE trading_events (
    session_id TEXT NOT NULL REFERENCES trading_sessions (id),
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    bar_ts BIGINT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
