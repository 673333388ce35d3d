-- SQLite: the trace is append-only against accidental edits.
CREATE TRIGGER trace_events_no_update BEFORE UPDATE ON trace_events
    BEGIN SELECT RAISE(ABORT, 'trace_events is append-only'); END;
CREATE TRIGGER trace_events_no_delete BEFORE DELETE ON trace_events
    BEGIN SELECT RAISE(ABORT, 'trace_events is append-only'); END;
