-- SQLite: a device serial is never reused, so device rows and signatures are never deleted.
CREATE TRIGGER devices_no_delete BEFORE DELETE ON devices
    BEGIN SELECT RAISE(ABORT, 'device serials are never deleted or reused'); END;
CREATE TRIGGER signatures_no_update BEFORE UPDATE ON signatures
    BEGIN SELECT RAISE(ABORT, 'signatures are append-only'); END;
CREATE TRIGGER signatures_no_delete BEFORE DELETE ON signatures
    BEGIN SELECT RAISE(ABORT, 'signatures are append-only'); END;
