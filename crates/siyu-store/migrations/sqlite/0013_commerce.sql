-- Commerce core: the catalogue, two-phase stock, orders with their per-unit allocations,
-- mall buyers, WeChat Pay settings, prepays, payments, notifications, refunds, and the
-- outbox that side effects are written to in the same transaction as the state change.
--
-- Invariants held by the database itself, so a bug elsewhere fails instead of overselling:
-- 0 <= reserved <= on_hand per SKU (CHECK); one reservation per (order, SKU, pool) (INV-3);
-- one payment per transaction id (PAY-3); one refund per out_refund_no (REF-2); one open
-- prepay per order (PAY-1); one order per buyer and client key (ORD-3).

CREATE TABLE product_categories (
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id),
    id          BLOB    NOT NULL,
    parent_id   BLOB,
    name        TEXT    NOT NULL,
    sort        INTEGER  NOT NULL DEFAULT 0,
    created_at  INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_product_categories_name ON product_categories (tenant_id, name);

CREATE TABLE shipping_templates (
    tenant_id      BLOB    NOT NULL REFERENCES tenants (id),
    id             BLOB    NOT NULL,
    name           TEXT    NOT NULL,
    fee_fen        INTEGER  NOT NULL CHECK (fee_fen >= 0),
    free_from_fen  INTEGER,
    created_at     INTEGER  NOT NULL,
    updated_at     INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_shipping_templates_name ON shipping_templates (tenant_id, name);

CREATE TABLE products (
    tenant_id             BLOB    NOT NULL REFERENCES tenants (id),
    id                    BLOB    NOT NULL,
    category_id           BLOB,
    shipping_template_id  BLOB,
    title                 TEXT    NOT NULL,
    subtitle              TEXT,
    images                TEXT    NOT NULL,
    detail                TEXT,
    status                TEXT    NOT NULL,
    spec_names            TEXT    NOT NULL,
    created_at            INTEGER  NOT NULL,
    updated_at            INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES product_categories (tenant_id, id),
    FOREIGN KEY (tenant_id, shipping_template_id) REFERENCES shipping_templates (tenant_id, id)
);
CREATE INDEX ix_products_status ON products (tenant_id, status, id);
CREATE INDEX ix_products_category ON products (tenant_id, category_id);

CREATE TABLE skus (
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id),
    id          BLOB    NOT NULL,
    product_id  BLOB    NOT NULL,
    spec        TEXT    NOT NULL,
    code        TEXT,
    price_fen   INTEGER  NOT NULL CHECK (price_fen > 0),
    on_hand     INTEGER  NOT NULL DEFAULT 0,
    reserved    INTEGER  NOT NULL DEFAULT 0,
    sold        INTEGER  NOT NULL DEFAULT 0,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    position    INTEGER  NOT NULL DEFAULT 0,
    updated_at  INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id),
    CONSTRAINT ck_skus_stock CHECK (reserved >= 0 AND reserved <= on_hand)
);
CREATE INDEX ix_skus_product ON skus (tenant_id, product_id, position);
CREATE UNIQUE INDEX ux_skus_code ON skus (tenant_id, code) WHERE code IS NOT NULL;

CREATE TABLE mall_buyers (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    id           BLOB    NOT NULL,
    openid       TEXT    NOT NULL,
    unionid      TEXT,
    customer_id  BLOB,
    nickname     TEXT,
    created_at   INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_mall_buyers_openid ON mall_buyers (tenant_id, openid);

CREATE TABLE mall_sessions (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id),
    buyer_id    BLOB    NOT NULL,
    created_at  INTEGER  NOT NULL,
    expires_at  INTEGER  NOT NULL
);

CREATE TABLE orders (
    tenant_id        BLOB    NOT NULL REFERENCES tenants (id),
    id               BLOB    NOT NULL,
    no               TEXT    NOT NULL,
    buyer_id         BLOB    NOT NULL,
    customer_id      BLOB,
    kind             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    list_fen         INTEGER  NOT NULL,
    goods_fen        INTEGER  NOT NULL,
    shipping_fen     INTEGER  NOT NULL,
    payable_fen      INTEGER  NOT NULL CHECK (payable_fen >= 0),
    paid_fen         INTEGER  NOT NULL DEFAULT 0,
    refunded_fen     INTEGER  NOT NULL DEFAULT 0,
    points_used      INTEGER  NOT NULL DEFAULT 0,
    quote            TEXT    NOT NULL,
    address          TEXT ,
    note             TEXT,
    client_key       TEXT,
    transaction_id   TEXT,
    created_at       INTEGER  NOT NULL,
    expires_at       INTEGER  NOT NULL,
    paid_at          INTEGER,
    cancelled_at     INTEGER,
    cancel_reason    TEXT,
    shipped_at       INTEGER,
    carrier          TEXT,
    tracking_no      TEXT,
    received_at      INTEGER,
    completed_at     INTEGER,
    updated_at       INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT ck_orders_refund CHECK (refunded_fen >= 0 AND refunded_fen <= paid_fen)
);
CREATE UNIQUE INDEX ux_orders_no ON orders (tenant_id, no);
CREATE UNIQUE INDEX ux_orders_client_key ON orders (tenant_id, buyer_id, client_key) WHERE client_key IS NOT NULL;
CREATE INDEX ix_orders_buyer ON orders (tenant_id, buyer_id, id);
CREATE INDEX ix_orders_status ON orders (tenant_id, status, id);
CREATE INDEX ix_orders_due ON orders (status, expires_at);

CREATE TABLE order_lines (
    tenant_id       BLOB    NOT NULL REFERENCES tenants (id),
    order_id        BLOB    NOT NULL,
    line_no         INTEGER  NOT NULL,
    sku_id          BLOB    NOT NULL,
    product_id      BLOB    NOT NULL,
    title           TEXT    NOT NULL,
    spec            TEXT    NOT NULL,
    qty             INTEGER  NOT NULL CHECK (qty > 0),
    unit_list_fen   INTEGER  NOT NULL,
    unit_price_fen  INTEGER  NOT NULL,
    paid_fen        INTEGER  NOT NULL,
    units           TEXT    NOT NULL,
    shares          TEXT    NOT NULL,
    gift            BOOLEAN NOT NULL DEFAULT FALSE,
    refunded_qty    INTEGER  NOT NULL DEFAULT 0,
    refunded_fen    INTEGER  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, order_id, line_no),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id),
    CONSTRAINT ck_order_lines_refund CHECK (refunded_qty <= qty AND refunded_fen <= paid_fen)
);
CREATE INDEX ix_order_lines_sku ON order_lines (tenant_id, sku_id);

CREATE TABLE stock_reservations (
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id),
    order_id    BLOB    NOT NULL,
    sku_id      BLOB    NOT NULL,
    pool_id     TEXT    NOT NULL DEFAULT '',
    qty         INTEGER  NOT NULL CHECK (qty > 0),
    status      TEXT    NOT NULL,
    updated_at  INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, order_id, sku_id, pool_id)
);

CREATE TABLE pay_settings (
    tenant_id                BLOB    NOT NULL PRIMARY KEY REFERENCES tenants (id),
    appid                    TEXT    NOT NULL,
    mchid                    TEXT    NOT NULL,
    merchant_serial          TEXT    NOT NULL,
    merchant_key_sealed      TEXT    NOT NULL,
    apiv3_key_sealed         TEXT    NOT NULL,
    platform_key_id          TEXT,
    platform_public_key_pem  TEXT,
    platform_certs           TEXT    NOT NULL,
    base_url                 TEXT    NOT NULL,
    notify_base              TEXT    NOT NULL,
    order_timeout_secs       INTEGER  NOT NULL,
    updated_at               INTEGER  NOT NULL
);

CREATE TABLE pay_prepays (
    tenant_id     BLOB    NOT NULL REFERENCES tenants (id),
    out_trade_no  TEXT    NOT NULL,
    order_id      BLOB    NOT NULL,
    prepay_id     TEXT,
    status        TEXT    NOT NULL,
    amount_fen    INTEGER  NOT NULL,
    created_at    INTEGER  NOT NULL,
    expires_at    INTEGER  NOT NULL,
    updated_at    INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, out_trade_no)
);
CREATE UNIQUE INDEX ux_pay_prepays_open ON pay_prepays (tenant_id, order_id) WHERE status = 'open';

CREATE TABLE payments (
    tenant_id       BLOB    NOT NULL REFERENCES tenants (id),
    id              BLOB    NOT NULL,
    order_id        BLOB    NOT NULL,
    out_trade_no    TEXT    NOT NULL,
    transaction_id  TEXT    NOT NULL,
    amount_fen      INTEGER  NOT NULL,
    disposition     TEXT    NOT NULL,
    payer_openid    TEXT,
    success_time    TEXT,
    created_at      INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_payments_transaction ON payments (tenant_id, transaction_id);
CREATE INDEX ix_payments_order ON payments (tenant_id, order_id);

CREATE TABLE pay_notifications (
    tenant_id     BLOB    NOT NULL REFERENCES tenants (id),
    id            TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    out_trade_no  TEXT,
    outcome       TEXT    NOT NULL,
    detail        TEXT,
    received_at   INTEGER  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_pay_notifications_time ON pay_notifications (tenant_id, received_at);

CREATE TABLE refunds (
    tenant_id      BLOB    NOT NULL REFERENCES tenants (id),
    id             BLOB    NOT NULL,
    order_id       BLOB    NOT NULL,
    payment_id     BLOB    NOT NULL,
    out_refund_no  TEXT    NOT NULL,
    amount_fen     INTEGER  NOT NULL CHECK (amount_fen > 0),
    kind           TEXT    NOT NULL,
    reason         TEXT,
    status         TEXT    NOT NULL,
    lines          TEXT    NOT NULL,
    refund_id      TEXT,
    detail         TEXT,
    created_at     INTEGER  NOT NULL,
    updated_at     INTEGER  NOT NULL,
    succeeded_at   INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_refunds_no ON refunds (tenant_id, out_refund_no);
CREATE INDEX ix_refunds_order ON refunds (tenant_id, order_id);
CREATE INDEX ix_refunds_status ON refunds (status, updated_at);

CREATE TABLE commerce_outbox (
    tenant_id     BLOB    NOT NULL REFERENCES tenants (id),
    id            BLOB    NOT NULL,
    kind          TEXT    NOT NULL,
    aggregate_id  BLOB    NOT NULL,
    version       INTEGER  NOT NULL,
    payload       TEXT    NOT NULL,
    created_at    INTEGER  NOT NULL,
    processed_at  INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_commerce_outbox_event ON commerce_outbox (tenant_id, kind, aggregate_id, version);
