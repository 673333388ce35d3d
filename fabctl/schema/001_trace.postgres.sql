-- PostgreSQL: the trace is append-only against accidental edits (as 001_trace.sqlite.sql on SQLite).
-- fabctl_refuse() raises the message given as the trigger's argument; later migrations reuse it for their own
-- append-only tables, e.g.
--   CREATE TRIGGER t_no_delete BEFORE DELETE ON t FOR EACH ROW EXECUTE FUNCTION fabctl_refuse('t is append-only');
CREATE FUNCTION fabctl_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE TRIGGER trace_events_no_update BEFORE UPDATE ON trace_events
    FOR EACH ROW EXECUTE FUNCTION fabctl_refuse('trace_events is append-only');
CREATE TRIGGER trace_events_no_delete BEFORE DELETE ON trace_events
    FOR EACH ROW EXECUTE FUNCTION fabctl_refuse('trace_events is append-only');
CREATE TRIGGER trace_events_no_truncate BEFORE TRUNCATE ON trace_events
    FOR EACH STATEMENT EXECUTE FUNCTION fabctl_refuse('trace_events is append-only');
