-- PostgreSQL: a device serial is never reused, so device rows and signatures are never deleted
-- (as 004_records.sqlite.sql on SQLite); fabctl_refuse() comes from 001_trace.postgres.sql.
CREATE TRIGGER devices_no_delete BEFORE DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION fabctl_refuse('device serials are never deleted or reused');
CREATE TRIGGER devices_no_truncate BEFORE TRUNCATE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION fabctl_refuse('device serials are never deleted or reused');
CREATE TRIGGER signatures_no_update BEFORE UPDATE ON signatures
    FOR EACH ROW EXECUTE FUNCTION fabctl_refuse('signatures are append-only');
CREATE TRIGGER signatures_no_delete BEFORE DELETE ON signatures
    FOR EACH ROW EXECUTE FUNCTION fabctl_refuse('signatures are append-only');
