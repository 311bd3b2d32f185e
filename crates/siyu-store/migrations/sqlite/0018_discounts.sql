-- Item promotions: 限时折扣 (SKU prices in a window) and 第二件半价 (among products). An
-- item is a SKU with its price, or a product.
CREATE TABLE discounts (
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id),
    id          BLOB    NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE discount_items (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    discount_id  BLOB    NOT NULL,
    ref_id       BLOB    NOT NULL,
    price_fen    INTEGER,
    PRIMARY KEY (tenant_id, discount_id, ref_id),
    FOREIGN KEY (tenant_id, discount_id) REFERENCES discounts (tenant_id, id),
    CONSTRAINT ck_discount_items_price CHECK (price_fen IS NULL OR price_fen >= 1)
);
CREATE INDEX ix_discount_items_ref ON discount_items (tenant_id, ref_id);
