-- Inventory (fabctl/inventory.py): resin lots with their expiry, and printer calibration / maintenance due
-- dates. Dates are ISO-8601 (YYYY-MM-DD) TEXT; a printer's due date is its latest entry of each kind.
CREATE TABLE resin_lots (
    resin_id    TEXT NOT NULL,
    lot         TEXT NOT NULL,
    expires_on  TEXT NOT NULL,
    added_utc   TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    PRIMARY KEY (resin_id, lot)
);
CREATE TABLE printer_dues (
    entry_id      BIGINT PRIMARY KEY,
    printer_id    TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('calibration', 'maintenance')),
    due_on        TEXT NOT NULL,
    recorded_utc  TEXT NOT NULL,
    recorded_by   TEXT NOT NULL
);
