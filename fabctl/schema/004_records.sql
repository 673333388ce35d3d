-- Records after the print (fabctl/records): users and their credentials, devices and builds, sterilization
-- loads and their contents, release signatures. Post-processing and inspection live in the trace only.
-- No column holds a person's name, a birth date or a patient identifier: ids are pseudonymous.
CREATE TABLE users (
    user_id      TEXT    PRIMARY KEY,
    role         TEXT    NOT NULL CHECK (role IN ('technician', 'qa', 'admin')),
    kdf          TEXT    NOT NULL,
    kdf_n        INTEGER NOT NULL,
    kdf_r        INTEGER NOT NULL,
    kdf_p        INTEGER NOT NULL,
    salt_hex     TEXT    NOT NULL,
    hash_hex     TEXT    NOT NULL,
    created_utc  TEXT    NOT NULL,
    created_by   TEXT    NOT NULL
);
-- A build is one job on one printer's platform (build_id = the job id); it may carry several cases.
CREATE TABLE builds (
    build_id       TEXT    NOT NULL,
    case_id        TEXT    NOT NULL,
    printer_id     TEXT    NOT NULL,
    quantity_made  INTEGER NOT NULL CHECK (quantity_made >= 1),
    created_utc    TEXT    NOT NULL,
    PRIMARY KEY (build_id, case_id)
);
CREATE TABLE devices (
    serial       TEXT    PRIMARY KEY,
    serial_no    BIGINT  NOT NULL UNIQUE,
    case_id      TEXT    NOT NULL,
    build_id     TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('made', 'quarantined', 'released', 'scrapped')),
    created_utc  TEXT    NOT NULL,
    status_utc   TEXT    NOT NULL
);
CREATE TABLE sterilization_loads (
    load_id        TEXT    PRIMARY KEY,
    method         TEXT    NOT NULL,
    temp_c         DOUBLE PRECISION NOT NULL,
    hold_min       DOUBLE PRECISION NOT NULL,
    sterilizer_id  TEXT    NOT NULL,
    cycle_no       INTEGER NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('open', 'processed', 'quarantined', 'released')),
    ci             TEXT,
    bi             TEXT,
    created_utc    TEXT    NOT NULL,
    created_by     TEXT    NOT NULL,
    result_utc     TEXT,
    result_by      TEXT,
    released_utc   TEXT,
    released_by    TEXT,
    UNIQUE (sterilizer_id, cycle_no)
);
CREATE TABLE load_items (
    load_id    TEXT NOT NULL REFERENCES sterilization_loads (load_id),
    serial     TEXT NOT NULL REFERENCES devices (serial),
    case_id    TEXT NOT NULL,
    added_utc  TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    PRIMARY KEY (load_id, serial)
);
CREATE TABLE signatures (
    signature_id   BIGINT  PRIMARY KEY,
    user_id        TEXT    NOT NULL REFERENCES users (user_id),
    meaning        TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    signed_utc     TEXT    NOT NULL,
    record_sha256  TEXT    NOT NULL,
    record         TEXT    NOT NULL
);
