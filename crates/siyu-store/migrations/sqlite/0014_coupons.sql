-- Coupons (commerce-rules §5.4): templates with their issued count, per-customer claim
-- counters, and instances. The database holds CP-1 and CP-2 itself: a template never issues
-- more than its total (CHECK) and an instance is bound to at most one order.

CREATE TABLE coupon_templates (
    tenant_id      BLOB    NOT NULL REFERENCES tenants (id),
    id             BLOB    NOT NULL,
    name           TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    validity       TEXT    NOT NULL,
    total          INTEGER  NOT NULL,
    issued         INTEGER  NOT NULL DEFAULT 0,
    per_user       INTEGER  NOT NULL,
    code           TEXT,
    status         TEXT    NOT NULL,
    created_at     INTEGER  NOT NULL,
    updated_at     INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT ck_coupon_templates_issued CHECK (issued >= 0 AND issued <= total)
);
CREATE UNIQUE INDEX ux_coupon_templates_code ON coupon_templates (tenant_id, code) WHERE code IS NOT NULL;

CREATE TABLE coupon_claims (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    template_id  BLOB    NOT NULL,
    buyer_id     BLOB    NOT NULL,
    n            INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, template_id, buyer_id)
);

CREATE TABLE user_coupons (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    id           BLOB    NOT NULL,
    template_id  BLOB    NOT NULL,
    buyer_id     BLOB    NOT NULL,
    status       TEXT    NOT NULL,
    order_id     BLOB,
    valid_start  INTEGER  NOT NULL,
    valid_end    INTEGER  NOT NULL,
    claimed_at   INTEGER  NOT NULL,
    used_at      INTEGER,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, template_id) REFERENCES coupon_templates (tenant_id, id)
);
CREATE INDEX ix_user_coupons_buyer ON user_coupons (tenant_id, buyer_id, status);
CREATE UNIQUE INDEX ux_user_coupons_order ON user_coupons (tenant_id, order_id) WHERE order_id IS NOT NULL;

ALTER TABLE orders ADD COLUMN coupon_id BLOB;
