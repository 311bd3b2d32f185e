-- Order promotions (满减, 每满减, 满折): a rule, a scope and a half-open window. Checkout
-- applies those running at the moment of the order.
CREATE TABLE promotions (
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id),
    id          BLOB    NOT NULL,
    name        TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    starts_at   INTEGER  NOT NULL,
    ends_at     INTEGER  NOT NULL,
    status      TEXT    NOT NULL,
    created_at  INTEGER  NOT NULL,
    updated_at  INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_promotions_window ON promotions (tenant_id, status, ends_at);
