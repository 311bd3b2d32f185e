-- Presales with a deposit (预售 / 定金膨胀): windows, terms per SKU with a quota, and the two
-- payments of a presale order (deposit, then balance).
CREATE TABLE presales (
    tenant_id        UUID    NOT NULL REFERENCES tenants (id),
    id               UUID    NOT NULL,
    name             TEXT    NOT NULL,
    product_id       UUID    NOT NULL,
    deposit_start    BIGINT  NOT NULL,
    deposit_end      BIGINT  NOT NULL,
    final_start      BIGINT  NOT NULL,
    final_end        BIGINT  NOT NULL,
    ship_from        BIGINT  NOT NULL,
    deposit_forfeit  BOOLEAN NOT NULL,
    status           TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE presale_skus (
    tenant_id          UUID    NOT NULL REFERENCES tenants (id),
    presale_id         UUID    NOT NULL,
    sku_id             UUID    NOT NULL,
    price_fen          BIGINT  NOT NULL,
    deposit_fen        BIGINT  NOT NULL,
    deposit_value_fen  BIGINT  NOT NULL,
    quota              BIGINT  NOT NULL,
    taken              BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, presale_id, sku_id),
    FOREIGN KEY (tenant_id, presale_id) REFERENCES presales (tenant_id, id),
    CONSTRAINT ck_presale_skus_terms CHECK (deposit_fen >= 1 AND deposit_value_fen >= deposit_fen
        AND price_fen - deposit_value_fen >= 1),
    CONSTRAINT ck_presale_skus_quota CHECK (taken >= 0 AND taken <= quota)
);
CREATE INDEX ix_presale_skus_sku ON presale_skus (tenant_id, sku_id);
ALTER TABLE orders ADD COLUMN presale_id UUID;
ALTER TABLE orders ADD COLUMN deposit_fen BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN deposit_paid_at BIGINT;
CREATE INDEX ix_orders_presale ON orders (tenant_id, presale_id) WHERE presale_id IS NOT NULL;
-- Which of an order's payments a prepay is for: `full`, `deposit` or `balance`.
ALTER TABLE pay_prepays ADD COLUMN phase TEXT NOT NULL DEFAULT 'full';
-- A refund of a presale order spread over its two payments: the deposit's part points at the
-- balance's part, and the two are decided together.
ALTER TABLE refunds ADD COLUMN part_of UUID;
