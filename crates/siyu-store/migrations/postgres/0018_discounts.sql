-- Item promotions: 限时折扣 (SKU prices in a window) and 第二件半价 (among products). An
-- item is a SKU with its price, or a product.
CREATE TABLE discounts (
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    id          UUID    NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    starts_at   BIGINT  NOT NULL,
    ends_at     BIGINT  NOT NULL,
    status      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE discount_items (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    discount_id  UUID    NOT NULL,
    ref_id       UUID    NOT NULL,
    price_fen    BIGINT,
    PRIMARY KEY (tenant_id, discount_id, ref_id),
    FOREIGN KEY (tenant_id, discount_id) REFERENCES discounts (tenant_id, id),
    CONSTRAINT ck_discount_items_price CHECK (price_fen IS NULL OR price_fen >= 1)
);
CREATE INDEX ix_discount_items_ref ON discount_items (tenant_id, ref_id);
