-- What the forensics workers made of each decision in audit_events: its
-- attributions, the model's internals and a plain-language summary (the
-- JSON document and the paragraph), with the weights that explained it.
-- Derived from the decision's event and the model, so one per decision:
-- a worker that explains a decision again keeps the first.
CREATE TABLE decision_explanations (
    session_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    model TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL,
    explanation TEXT NOT NULL,
    summary TEXT NOT NULL,
    explained_ms BIGINT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE INDEX decision_explanations_time ON decision_explanations (at_ms);
