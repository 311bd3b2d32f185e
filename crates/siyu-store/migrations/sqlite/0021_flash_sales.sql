-- Flash sales (秒杀): a sale's quota per SKU is carved out of the SKU's stock (held in its
-- `reserved`) and split into bucket rows that requests decrement conditionally; each buyer's
-- units are counted in the same transaction.
CREATE TABLE flash_sales (
    tenant_id     BLOB    NOT NULL REFERENCES tenants (id),
    id            BLOB    NOT NULL,
    name          TEXT    NOT NULL,
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL,
    per_order     INTEGER NOT NULL,
    per_user      INTEGER NOT NULL,
    timeout_secs  INTEGER NOT NULL,
    buckets       INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE flash_sale_skus (
    tenant_id  BLOB    NOT NULL REFERENCES tenants (id),
    sale_id    BLOB    NOT NULL,
    sku_id     BLOB    NOT NULL,
    price_fen  INTEGER NOT NULL CHECK (price_fen >= 1),
    quota      INTEGER NOT NULL CHECK (quota >= 1),
    PRIMARY KEY (tenant_id, sale_id, sku_id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES flash_sales (tenant_id, id)
);
CREATE INDEX ix_flash_sale_skus_sku ON flash_sale_skus (tenant_id, sku_id);
CREATE TABLE flash_buckets (
    tenant_id  BLOB    NOT NULL REFERENCES tenants (id),
    sale_id    BLOB    NOT NULL,
    sku_id     BLOB    NOT NULL,
    bucket     INTEGER NOT NULL,
    remaining  INTEGER NOT NULL CHECK (remaining >= 0),
    PRIMARY KEY (tenant_id, sale_id, sku_id, bucket)
);
CREATE TABLE flash_buyers (
    tenant_id  BLOB    NOT NULL REFERENCES tenants (id),
    sale_id    BLOB    NOT NULL,
    buyer_id   BLOB    NOT NULL,
    bought     INTEGER NOT NULL CHECK (bought >= 0),
    PRIMARY KEY (tenant_id, sale_id, buyer_id)
);
