-- Channel live codes (渠道活码) in exact mode: siyu picks the member for each scan. `state` is
-- never reused (a serial per tenant, rows are never deleted). Counters per code, member and
-- local day move conditionally (`used` = adds plus live reservations; the row with an empty
-- userid is the whole code's), so caps hold under any concurrency.
CREATE TABLE live_codes (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    id           BLOB    NOT NULL,
    serial       INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    app_id       BLOB    NOT NULL,
    config       TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX uq_live_codes_state ON live_codes (tenant_id, state);
CREATE UNIQUE INDEX uq_live_codes_serial ON live_codes (tenant_id, serial);

CREATE TABLE live_code_members (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    code_id      BLOB    NOT NULL,
    userid       TEXT    NOT NULL,
    config_id    TEXT    NOT NULL,
    qr_code      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, code_id, userid),
    FOREIGN KEY (tenant_id, code_id) REFERENCES live_codes (tenant_id, id)
);

CREATE TABLE live_code_days (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    code_id      BLOB    NOT NULL,
    userid       TEXT    NOT NULL,
    day          INTEGER NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    adds         INTEGER NOT NULL DEFAULT 0,
    over_cap     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, code_id, userid, day)
);

CREATE TABLE live_code_reservations (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    id           BLOB    NOT NULL,
    code_id      BLOB    NOT NULL,
    userid       TEXT    NOT NULL,
    day          INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_live_code_reservations_live ON live_code_reservations (tenant_id, code_id, userid, status, created_at);
CREATE INDEX ix_live_code_reservations_due ON live_code_reservations (status, expires_at);

CREATE TABLE live_code_scans (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    id           BLOB    NOT NULL,
    code_id      BLOB    NOT NULL,
    at           INTEGER NOT NULL,
    day          INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,
    userid       TEXT,
    tier         TEXT,
    source       TEXT,
    user_agent   TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_live_code_scans_code ON live_code_scans (tenant_id, code_id, day);

CREATE TABLE live_code_adds (
    tenant_id        BLOB    NOT NULL REFERENCES tenants (id),
    code_id          BLOB    NOT NULL,
    userid           TEXT    NOT NULL,
    external_userid  TEXT    NOT NULL,
    day              INTEGER NOT NULL,
    at               INTEGER NOT NULL,
    over_cap         BOOLEAN NOT NULL,
    welcome          TEXT,
    PRIMARY KEY (tenant_id, code_id, userid, external_userid, day)
);
