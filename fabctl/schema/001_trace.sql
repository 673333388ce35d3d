-- The trace: per-case hash-chained events (fabctl/trace/log.py) and each case's head.
CREATE TABLE trace_events (
    seq       BIGINT  PRIMARY KEY,
    case_id   TEXT    NOT NULL,
    case_seq  INTEGER NOT NULL,
    type      TEXT    NOT NULL,
    at_utc    TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    payload   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL,
    UNIQUE (case_id, case_seq)
);
CREATE TABLE trace_heads (
    case_id  TEXT PRIMARY KEY,
    case_seq INTEGER NOT NULL,
    hash     TEXT    NOT NULL
);
