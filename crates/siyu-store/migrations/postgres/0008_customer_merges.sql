-- Manual merges of two persons (scrm-rules C-13..C-15). The snapshot lists exactly what moved
-- from the absorbed person to the survivor (identities, tags, channels, copied fields, the
-- phone, and the ids of timeline entries, follow-ups, purchases, alerts and transfers), so an
-- undo puts each back. The absorbed row stays, `merged` with `merged_into` set.

CREATE TABLE customer_merges (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    id            UUID    NOT NULL,
    survivor_id   UUID    NOT NULL,
    absorbed_id   UUID    NOT NULL,
    snapshot      TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    undone_at     BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_customer_merges_survivor ON customer_merges (tenant_id, survivor_id);
CREATE INDEX ix_customer_merges_absorbed ON customer_merges (tenant_id, absorbed_id);
