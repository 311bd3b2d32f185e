-- Group-buy (拼团) and bargain (砍价). An activity's quota per SKU caps what it sells
-- (`taken` moves with the orders, conditionally); the units themselves are reserved from the
-- SKU's stock with each order, like any order's.
CREATE TABLE group_buys (
    tenant_id         UUID    NOT NULL REFERENCES tenants (id),
    id                UUID    NOT NULL,
    name              TEXT    NOT NULL,
    starts_at         BIGINT  NOT NULL,
    ends_at           BIGINT  NOT NULL,
    capacity          BIGINT  NOT NULL,
    valid_hours       BIGINT  NOT NULL,
    per_user          BIGINT  NOT NULL,
    virtual_bp        BIGINT ,
    new_joiners_only  BOOLEAN NOT NULL,
    timeout_secs      BIGINT  NOT NULL,
    status            TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE group_buy_skus (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    activity_id  UUID    NOT NULL,
    sku_id       UUID    NOT NULL,
    price_fen    BIGINT  NOT NULL CHECK (price_fen >= 1),
    quota        BIGINT  NOT NULL CHECK (quota >= 1),
    taken        BIGINT  NOT NULL DEFAULT 0 CHECK (taken >= 0 AND taken <= quota),
    PRIMARY KEY (tenant_id, activity_id, sku_id),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES group_buys (tenant_id, id)
);
CREATE INDEX ix_group_buy_skus_sku ON group_buy_skus (tenant_id, sku_id);
-- One group: its size and deadline copied at opening (GB-1, GB-2); `seats` counts held and
-- paid members together, so `seats <= capacity` is the over-fill guard (GB-3).
CREATE TABLE buy_groups (
    tenant_id        UUID    NOT NULL REFERENCES tenants (id),
    id               UUID    NOT NULL,
    activity_id      UUID    NOT NULL,
    leader_id        UUID    NOT NULL,
    capacity         BIGINT  NOT NULL,
    seats            BIGINT  NOT NULL CHECK (seats >= 0 AND seats <= capacity),
    paid             BIGINT  NOT NULL CHECK (paid >= 0 AND paid <= seats),
    virtual_members  BIGINT  NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL,
    opened_at        BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    closed_at        BIGINT ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES group_buys (tenant_id, id)
);
CREATE INDEX ix_buy_groups_due ON buy_groups (status, expires_at);
CREATE INDEX ix_buy_groups_activity ON buy_groups (tenant_id, activity_id, status);
-- A buyer is in a group at most once (GB-9); a released or departed member may come back.
CREATE TABLE group_members (
    tenant_id  UUID    NOT NULL REFERENCES tenants (id),
    group_id   UUID    NOT NULL,
    buyer_id   UUID    NOT NULL,
    order_id   UUID    NOT NULL,
    status     TEXT    NOT NULL,
    joined_at  BIGINT  NOT NULL,
    paid_at    BIGINT ,
    PRIMARY KEY (tenant_id, group_id, buyer_id)
);
CREATE UNIQUE INDEX ux_group_members_order ON group_members (tenant_id, order_id);
CREATE TABLE group_buyers (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    activity_id  UUID    NOT NULL,
    buyer_id     UUID    NOT NULL,
    bought       BIGINT  NOT NULL CHECK (bought >= 0),
    PRIMARY KEY (tenant_id, activity_id, buyer_id)
);
ALTER TABLE orders ADD COLUMN group_id UUID;

CREATE TABLE bargains (
    tenant_id          UUID    NOT NULL REFERENCES tenants (id),
    id                 UUID    NOT NULL,
    name               TEXT    NOT NULL,
    sku_id             UUID    NOT NULL,
    price_fen          BIGINT  NOT NULL,
    floor_fen          BIGINT  NOT NULL,
    helpers            BIGINT  NOT NULL,
    help_limit         BIGINT  NOT NULL,
    quota              BIGINT  NOT NULL,
    taken              BIGINT  NOT NULL DEFAULT 0 CHECK (taken >= 0 AND taken <= quota),
    starts_at          BIGINT  NOT NULL,
    ends_at            BIGINT  NOT NULL,
    purchase_deadline  BIGINT  NOT NULL,
    cut_lo_bp          BIGINT  NOT NULL,
    cut_hi_bp          BIGINT  NOT NULL,
    new_user_bp        BIGINT ,
    buy_at_current     BOOLEAN NOT NULL,
    timeout_secs       BIGINT  NOT NULL,
    status             TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_bargains_sku ON bargains (tenant_id, sku_id);
-- One bargain per buyer and activity (start_limit 1); BG-2 holds in the checks.
CREATE TABLE bargain_records (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    id           UUID    NOT NULL,
    bargain_id   UUID    NOT NULL,
    buyer_id     UUID    NOT NULL,
    price_fen    BIGINT  NOT NULL,
    floor_fen    BIGINT  NOT NULL,
    current_fen  BIGINT  NOT NULL,
    helpers      BIGINT  NOT NULL DEFAULT 0,
    required     BIGINT  NOT NULL,
    order_id     UUID,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (floor_fen <= current_fen AND current_fen <= price_fen AND helpers <= required)
);
CREATE UNIQUE INDEX ux_bargain_records_buyer ON bargain_records (tenant_id, bargain_id, buyer_id);
CREATE TABLE bargain_helps (
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    record_id   UUID    NOT NULL,
    helper_id   UUID    NOT NULL,
    cut_fen     BIGINT  NOT NULL CHECK (cut_fen >= 1),
    seq         BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, record_id, helper_id)
);
CREATE TABLE bargain_helpers (
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    bargain_id  UUID    NOT NULL,
    helper_id   UUID    NOT NULL,
    helps       BIGINT  NOT NULL CHECK (helps >= 0),
    PRIMARY KEY (tenant_id, bargain_id, helper_id)
);
ALTER TABLE orders ADD COLUMN bargain_record_id UUID;
