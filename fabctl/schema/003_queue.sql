-- The printer queue (fabctl/jobstore.py): jobs with their state, and printer leases held by the daemon (or a
-- direct `fabctl print`) that owns a printer. Every state change of a job is also a `job.state` event in the
-- trace, written in the same transaction. Lease expiry is wall-clock UTC (hosts sharing a store run NTP).
CREATE TABLE jobs (
    job_no            BIGINT  PRIMARY KEY,
    job_id            TEXT    NOT NULL UNIQUE,
    kind              TEXT    NOT NULL CHECK (kind IN ('case', 'file')),
    case_id           TEXT    NOT NULL,
    printer_id        TEXT    NOT NULL,
    resin_id          TEXT,
    lot               TEXT,
    job_file          TEXT,
    state             TEXT    NOT NULL CHECK (state IN ('queued', 'preparing', 'sending', 'printing', 'done',
                                                        'failed', 'cancelled', 'interrupted')),
    owner             TEXT,
    created_by        TEXT    NOT NULL,
    created_utc       TEXT    NOT NULL,
    updated_utc       TEXT    NOT NULL,
    reason            TEXT,
    last_line         BIGINT,
    last_layer        INTEGER,
    requeue_of        TEXT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    cancel_by         TEXT
);
CREATE INDEX jobs_state_printer ON jobs (state, printer_id, job_no);
CREATE INDEX jobs_case ON jobs (case_id);
CREATE TABLE printer_leases (
    printer_id    TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    acquired_utc  TEXT NOT NULL,
    renewed_utc   TEXT NOT NULL,
    expires_utc   TEXT NOT NULL
);
