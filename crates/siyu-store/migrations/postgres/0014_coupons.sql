-- Coupons (commerce-rules §5.4): templates with their issued count, per-customer claim
-- counters, and instances. The database holds CP-1 and CP-2 itself: a template never issues
-- more than its total (CHECK) and an instance is bound to at most one order.

CREATE TABLE coupon_templates (
    tenant_id      UUID    NOT NULL REFERENCES tenants (id),
    id             UUID    NOT NULL,
    name           TEXT    NOT NULL,
    kind           JSONB   NOT NULL,
    scope          JSONB   NOT NULL,
    validity       JSONB   NOT NULL,
    total          BIGINT  NOT NULL,
    issued         BIGINT  NOT NULL DEFAULT 0,
    per_user       BIGINT  NOT NULL,
    code           TEXT,
    status         TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT ck_coupon_templates_issued CHECK (issued >= 0 AND issued <= total)
);
CREATE UNIQUE INDEX ux_coupon_templates_code ON coupon_templates (tenant_id, code) WHERE code IS NOT NULL;

CREATE TABLE coupon_claims (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    template_id  UUID    NOT NULL,
    buyer_id     UUID    NOT NULL,
    n            BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, template_id, buyer_id)
);

CREATE TABLE user_coupons (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    id           UUID    NOT NULL,
    template_id  UUID    NOT NULL,
    buyer_id     UUID    NOT NULL,
    status       TEXT    NOT NULL,
    order_id     UUID,
    valid_start  BIGINT  NOT NULL,
    valid_end    BIGINT  NOT NULL,
    claimed_at   BIGINT  NOT NULL,
    used_at      BIGINT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, template_id) REFERENCES coupon_templates (tenant_id, id)
);
CREATE INDEX ix_user_coupons_buyer ON user_coupons (tenant_id, buyer_id, status);
CREATE UNIQUE INDEX ux_user_coupons_order ON user_coupons (tenant_id, order_id) WHERE order_id IS NOT NULL;

ALTER TABLE orders ADD COLUMN coupon_id UUID;
