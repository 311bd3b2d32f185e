-- Order promotions (满减, 每满减, 满折): a rule, a scope and a half-open window. Checkout
-- applies those running at the moment of the order.
CREATE TABLE promotions (
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    id          UUID    NOT NULL,
    name        TEXT    NOT NULL,
    rule        JSONB   NOT NULL,
    scope       JSONB   NOT NULL,
    starts_at   BIGINT  NOT NULL,
    ends_at     BIGINT  NOT NULL,
    status      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_promotions_window ON promotions (tenant_id, status, ends_at);
