-- Short links (短链): a global case-sensitive code per link; every hit is kept (client class,
-- referrer, and the visitor only as a keyed hash of address and day) for PV and UV.
CREATE TABLE short_links (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    id           UUID    NOT NULL,
    code         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    config       JSONB   NOT NULL,
    status       TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX uq_short_links_code ON short_links (code);

CREATE TABLE short_link_hits (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    id           UUID    NOT NULL,
    link_id      UUID    NOT NULL,
    at           BIGINT  NOT NULL,
    day          BIGINT  NOT NULL,
    client       TEXT    NOT NULL,
    referrer     TEXT,
    visitor      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_short_link_hits_link ON short_link_hits (tenant_id, link_id, day);
