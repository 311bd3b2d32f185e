-- Commerce core: the catalogue, two-phase stock, orders with their per-unit allocations,
-- mall buyers, WeChat Pay settings, prepays, payments, notifications, refunds, and the
-- outbox that side effects are written to in the same transaction as the state change.
--
-- Invariants held by the database itself, so a bug elsewhere fails instead of overselling:
-- 0 <= reserved <= on_hand per SKU (CHECK); one reservation per (order, SKU, pool) (INV-3);
-- one payment per transaction id (PAY-3); one refund per out_refund_no (REF-2); one open
-- prepay per order (PAY-1); one order per buyer and client key (ORD-3).

CREATE TABLE product_categories (
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    id          UUID    NOT NULL,
    parent_id   UUID,
    name        TEXT    NOT NULL,
    sort        BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_product_categories_name ON product_categories (tenant_id, name);

CREATE TABLE shipping_templates (
    tenant_id      UUID    NOT NULL REFERENCES tenants (id),
    id             UUID    NOT NULL,
    name           TEXT    NOT NULL,
    fee_fen        BIGINT  NOT NULL CHECK (fee_fen >= 0),
    free_from_fen  BIGINT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_shipping_templates_name ON shipping_templates (tenant_id, name);

CREATE TABLE products (
    tenant_id             UUID    NOT NULL REFERENCES tenants (id),
    id                    UUID    NOT NULL,
    category_id           UUID,
    shipping_template_id  UUID,
    title                 TEXT    NOT NULL,
    subtitle              TEXT,
    images                JSONB   NOT NULL,
    detail                TEXT,
    status                TEXT    NOT NULL,
    spec_names            JSONB   NOT NULL,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES product_categories (tenant_id, id),
    FOREIGN KEY (tenant_id, shipping_template_id) REFERENCES shipping_templates (tenant_id, id)
);
CREATE INDEX ix_products_status ON products (tenant_id, status, id);
CREATE INDEX ix_products_category ON products (tenant_id, category_id);

CREATE TABLE skus (
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    id          UUID    NOT NULL,
    product_id  UUID    NOT NULL,
    spec        JSONB   NOT NULL,
    code        TEXT,
    price_fen   BIGINT  NOT NULL CHECK (price_fen > 0),
    on_hand     BIGINT  NOT NULL DEFAULT 0,
    reserved    BIGINT  NOT NULL DEFAULT 0,
    sold        BIGINT  NOT NULL DEFAULT 0,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    position    BIGINT  NOT NULL DEFAULT 0,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
    CONSTRAINT ck_skus_stock CHECK (reserved >= 0 AND reserved <= on_hand)
);
CREATE INDEX ix_skus_product ON skus (tenant_id, product_id, position);
CREATE UNIQUE INDEX ux_skus_code ON skus (tenant_id, code) WHERE code IS NOT NULL;

CREATE TABLE mall_buyers (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    id           UUID    NOT NULL,
    openid       TEXT    NOT NULL,
    unionid      TEXT,
    customer_id  UUID,
    nickname     TEXT,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_mall_buyers_openid ON mall_buyers (tenant_id, openid);

CREATE TABLE mall_sessions (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    buyer_id    UUID    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);

CREATE TABLE orders (
    tenant_id        UUID    NOT NULL REFERENCES tenants (id),
    id               UUID    NOT NULL,
    no               TEXT    NOT NULL,
    buyer_id         UUID    NOT NULL,
    customer_id      UUID,
    kind             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    list_fen         BIGINT  NOT NULL,
    goods_fen        BIGINT  NOT NULL,
    shipping_fen     BIGINT  NOT NULL,
    payable_fen      BIGINT  NOT NULL CHECK (payable_fen >= 0),
    paid_fen         BIGINT  NOT NULL DEFAULT 0,
    refunded_fen     BIGINT  NOT NULL DEFAULT 0,
    points_used      BIGINT  NOT NULL DEFAULT 0,
    quote            JSONB   NOT NULL,
    address          JSONB,
    note             TEXT,
    client_key       TEXT,
    transaction_id   TEXT,
    created_at       BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    paid_at          BIGINT,
    cancelled_at     BIGINT,
    cancel_reason    TEXT,
    shipped_at       BIGINT,
    carrier          TEXT,
    tracking_no      TEXT,
    received_at      BIGINT,
    completed_at     BIGINT,
    updated_at       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT ck_orders_refund CHECK (refunded_fen >= 0 AND refunded_fen <= paid_fen)
);
CREATE UNIQUE INDEX ux_orders_no ON orders (tenant_id, no);
CREATE UNIQUE INDEX ux_orders_client_key ON orders (tenant_id, buyer_id, client_key) WHERE client_key IS NOT NULL;
CREATE INDEX ix_orders_buyer ON orders (tenant_id, buyer_id, id);
CREATE INDEX ix_orders_status ON orders (tenant_id, status, id);
CREATE INDEX ix_orders_due ON orders (status, expires_at);

CREATE TABLE order_lines (
    tenant_id       UUID    NOT NULL REFERENCES tenants (id),
    order_id        UUID    NOT NULL,
    line_no         BIGINT  NOT NULL,
    sku_id          UUID    NOT NULL,
    product_id      UUID    NOT NULL,
    title           TEXT    NOT NULL,
    spec            TEXT    NOT NULL,
    qty             BIGINT  NOT NULL CHECK (qty > 0),
    unit_list_fen   BIGINT  NOT NULL,
    unit_price_fen  BIGINT  NOT NULL,
    paid_fen        BIGINT  NOT NULL,
    units           JSONB   NOT NULL,
    shares          JSONB   NOT NULL,
    gift            BOOLEAN NOT NULL DEFAULT FALSE,
    refunded_qty    BIGINT  NOT NULL DEFAULT 0,
    refunded_fen    BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, order_id, line_no),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id),
    CONSTRAINT ck_order_lines_refund CHECK (refunded_qty <= qty AND refunded_fen <= paid_fen)
);
CREATE INDEX ix_order_lines_sku ON order_lines (tenant_id, sku_id);

CREATE TABLE stock_reservations (
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    order_id    UUID    NOT NULL,
    sku_id      UUID    NOT NULL,
    pool_id     TEXT    NOT NULL DEFAULT '',
    qty         BIGINT  NOT NULL CHECK (qty > 0),
    status      TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, order_id, sku_id, pool_id)
);

CREATE TABLE pay_settings (
    tenant_id                UUID    NOT NULL PRIMARY KEY REFERENCES tenants (id),
    appid                    TEXT    NOT NULL,
    mchid                    TEXT    NOT NULL,
    merchant_serial          TEXT    NOT NULL,
    merchant_key_sealed      TEXT    NOT NULL,
    apiv3_key_sealed         TEXT    NOT NULL,
    platform_key_id          TEXT,
    platform_public_key_pem  TEXT,
    platform_certs           JSONB   NOT NULL,
    base_url                 TEXT    NOT NULL,
    notify_base              TEXT    NOT NULL,
    order_timeout_secs       BIGINT  NOT NULL,
    updated_at               BIGINT  NOT NULL
);

CREATE TABLE pay_prepays (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    out_trade_no  TEXT    NOT NULL,
    order_id      UUID    NOT NULL,
    prepay_id     TEXT,
    status        TEXT    NOT NULL,
    amount_fen    BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, out_trade_no)
);
CREATE UNIQUE INDEX ux_pay_prepays_open ON pay_prepays (tenant_id, order_id) WHERE status = 'open';

CREATE TABLE payments (
    tenant_id       UUID    NOT NULL REFERENCES tenants (id),
    id              UUID    NOT NULL,
    order_id        UUID    NOT NULL,
    out_trade_no    TEXT    NOT NULL,
    transaction_id  TEXT    NOT NULL,
    amount_fen      BIGINT  NOT NULL,
    disposition     TEXT    NOT NULL,
    payer_openid    TEXT,
    success_time    TEXT,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_payments_transaction ON payments (tenant_id, transaction_id);
CREATE INDEX ix_payments_order ON payments (tenant_id, order_id);

CREATE TABLE pay_notifications (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    id            TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    out_trade_no  TEXT,
    outcome       TEXT    NOT NULL,
    detail        TEXT,
    received_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_pay_notifications_time ON pay_notifications (tenant_id, received_at);

CREATE TABLE refunds (
    tenant_id      UUID    NOT NULL REFERENCES tenants (id),
    id             UUID    NOT NULL,
    order_id       UUID    NOT NULL,
    payment_id     UUID    NOT NULL,
    out_refund_no  TEXT    NOT NULL,
    amount_fen     BIGINT  NOT NULL CHECK (amount_fen > 0),
    kind           TEXT    NOT NULL,
    reason         TEXT,
    status         TEXT    NOT NULL,
    lines          JSONB   NOT NULL,
    refund_id      TEXT,
    detail         TEXT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    succeeded_at   BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_refunds_no ON refunds (tenant_id, out_refund_no);
CREATE INDEX ix_refunds_order ON refunds (tenant_id, order_id);
CREATE INDEX ix_refunds_status ON refunds (status, updated_at);

CREATE TABLE commerce_outbox (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    id            UUID    NOT NULL,
    kind          TEXT    NOT NULL,
    aggregate_id  UUID    NOT NULL,
    version       BIGINT  NOT NULL,
    payload       JSONB   NOT NULL,
    created_at    BIGINT  NOT NULL,
    processed_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_commerce_outbox_event ON commerce_outbox (tenant_id, kind, aggregate_id, version);
