-- Short links (短链): a global case-sensitive code per link; every hit is kept (client class,
-- referrer, and the visitor only as a keyed hash of address and day) for PV and UV.
CREATE TABLE short_links (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    id           BLOB    NOT NULL,
    code         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    config       TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX uq_short_links_code ON short_links (code);

CREATE TABLE short_link_hits (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    id           BLOB    NOT NULL,
    link_id      BLOB    NOT NULL,
    at           INTEGER NOT NULL,
    day          INTEGER NOT NULL,
    client       TEXT    NOT NULL,
    referrer     TEXT,
    visitor      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_short_link_hits_link ON short_link_hits (tenant_id, link_id, day);
