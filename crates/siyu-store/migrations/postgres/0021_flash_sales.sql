-- Flash sales (秒杀): a sale's quota per SKU is carved out of the SKU's stock (held in its
-- `reserved`) and split into bucket rows that requests decrement conditionally; each buyer's
-- units are counted in the same transaction.
CREATE TABLE flash_sales (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    id            UUID    NOT NULL,
    name          TEXT    NOT NULL,
    starts_at     BIGINT  NOT NULL,
    ends_at       BIGINT  NOT NULL,
    per_order     BIGINT  NOT NULL,
    per_user      BIGINT  NOT NULL,
    timeout_secs  BIGINT  NOT NULL,
    buckets       BIGINT  NOT NULL,
    status        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE flash_sale_skus (
    tenant_id  UUID    NOT NULL REFERENCES tenants (id),
    sale_id    UUID    NOT NULL,
    sku_id     UUID    NOT NULL,
    price_fen  BIGINT  NOT NULL CHECK (price_fen >= 1),
    quota      BIGINT  NOT NULL CHECK (quota >= 1),
    PRIMARY KEY (tenant_id, sale_id, sku_id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES flash_sales (tenant_id, id)
);
CREATE INDEX ix_flash_sale_skus_sku ON flash_sale_skus (tenant_id, sku_id);
CREATE TABLE flash_buckets (
    tenant_id  UUID    NOT NULL REFERENCES tenants (id),
    sale_id    UUID    NOT NULL,
    sku_id     UUID    NOT NULL,
    bucket     BIGINT  NOT NULL,
    remaining  BIGINT  NOT NULL CHECK (remaining >= 0),
    PRIMARY KEY (tenant_id, sale_id, sku_id, bucket)
);
CREATE TABLE flash_buyers (
    tenant_id  UUID    NOT NULL REFERENCES tenants (id),
    sale_id    UUID    NOT NULL,
    buyer_id   UUID    NOT NULL,
    bought     BIGINT  NOT NULL CHECK (bought >= 0),
    PRIMARY KEY (tenant_id, sale_id, buyer_id)
);
