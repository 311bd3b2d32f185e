-- Group-buy (拼团) and bargain (砍价). An activity's quota per SKU caps what it sells
-- (`taken` moves with the orders, conditionally); the units themselves are reserved from the
-- SKU's stock with each order, like any order's.
CREATE TABLE group_buys (
    tenant_id         BLOB    NOT NULL REFERENCES tenants (id),
    id                BLOB    NOT NULL,
    name              TEXT    NOT NULL,
    starts_at         INTEGER NOT NULL,
    ends_at           INTEGER NOT NULL,
    capacity          INTEGER NOT NULL,
    valid_hours       INTEGER NOT NULL,
    per_user          INTEGER NOT NULL,
    virtual_bp        INTEGER,
    new_joiners_only  BOOLEAN NOT NULL,
    timeout_secs      INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE group_buy_skus (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    activity_id  BLOB    NOT NULL,
    sku_id       BLOB    NOT NULL,
    price_fen    INTEGER NOT NULL CHECK (price_fen >= 1),
    quota        INTEGER NOT NULL CHECK (quota >= 1),
    taken        INTEGER NOT NULL DEFAULT 0 CHECK (taken >= 0 AND taken <= quota),
    PRIMARY KEY (tenant_id, activity_id, sku_id),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES group_buys (tenant_id, id)
);
CREATE INDEX ix_group_buy_skus_sku ON group_buy_skus (tenant_id, sku_id);
-- One group: its size and deadline copied at opening (GB-1, GB-2); `seats` counts held and
-- paid members together, so `seats <= capacity` is the over-fill guard (GB-3).
CREATE TABLE buy_groups (
    tenant_id        BLOB    NOT NULL REFERENCES tenants (id),
    id               BLOB    NOT NULL,
    activity_id      BLOB    NOT NULL,
    leader_id        BLOB    NOT NULL,
    capacity         INTEGER NOT NULL,
    seats            INTEGER NOT NULL CHECK (seats >= 0 AND seats <= capacity),
    paid             INTEGER NOT NULL CHECK (paid >= 0 AND paid <= seats),
    virtual_members  INTEGER NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL,
    opened_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    closed_at        INTEGER,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES group_buys (tenant_id, id)
);
CREATE INDEX ix_buy_groups_due ON buy_groups (status, expires_at);
CREATE INDEX ix_buy_groups_activity ON buy_groups (tenant_id, activity_id, status);
-- A buyer is in a group at most once (GB-9); a released or departed member may come back.
CREATE TABLE group_members (
    tenant_id  BLOB    NOT NULL REFERENCES tenants (id),
    group_id   BLOB    NOT NULL,
    buyer_id   BLOB    NOT NULL,
    order_id   BLOB    NOT NULL,
    status     TEXT    NOT NULL,
    joined_at  INTEGER NOT NULL,
    paid_at    INTEGER,
    PRIMARY KEY (tenant_id, group_id, buyer_id)
);
CREATE UNIQUE INDEX ux_group_members_order ON group_members (tenant_id, order_id);
CREATE TABLE group_buyers (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    activity_id  BLOB    NOT NULL,
    buyer_id     BLOB    NOT NULL,
    bought       INTEGER NOT NULL CHECK (bought >= 0),
    PRIMARY KEY (tenant_id, activity_id, buyer_id)
);
ALTER TABLE orders ADD COLUMN group_id BLOB;

CREATE TABLE bargains (
    tenant_id          BLOB    NOT NULL REFERENCES tenants (id),
    id                 BLOB    NOT NULL,
    name               TEXT    NOT NULL,
    sku_id             BLOB    NOT NULL,
    price_fen          INTEGER NOT NULL,
    floor_fen          INTEGER NOT NULL,
    helpers            INTEGER NOT NULL,
    help_limit         INTEGER NOT NULL,
    quota              INTEGER NOT NULL,
    taken              INTEGER NOT NULL DEFAULT 0 CHECK (taken >= 0 AND taken <= quota),
    starts_at          INTEGER NOT NULL,
    ends_at            INTEGER NOT NULL,
    purchase_deadline  INTEGER NOT NULL,
    cut_lo_bp          INTEGER NOT NULL,
    cut_hi_bp          INTEGER NOT NULL,
    new_user_bp        INTEGER,
    buy_at_current     BOOLEAN NOT NULL,
    timeout_secs       INTEGER NOT NULL,
    status             TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_bargains_sku ON bargains (tenant_id, sku_id);
-- One bargain per buyer and activity (start_limit 1); BG-2 holds in the checks.
CREATE TABLE bargain_records (
    tenant_id    BLOB    NOT NULL REFERENCES tenants (id),
    id           BLOB    NOT NULL,
    bargain_id   BLOB    NOT NULL,
    buyer_id     BLOB    NOT NULL,
    price_fen    INTEGER NOT NULL,
    floor_fen    INTEGER NOT NULL,
    current_fen  INTEGER NOT NULL,
    helpers      INTEGER NOT NULL DEFAULT 0,
    required     INTEGER NOT NULL,
    order_id     BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (floor_fen <= current_fen AND current_fen <= price_fen AND helpers <= required)
);
CREATE UNIQUE INDEX ux_bargain_records_buyer ON bargain_records (tenant_id, bargain_id, buyer_id);
CREATE TABLE bargain_helps (
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id),
    record_id   BLOB    NOT NULL,
    helper_id   BLOB    NOT NULL,
    cut_fen     INTEGER NOT NULL CHECK (cut_fen >= 1),
    seq         INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, record_id, helper_id)
);
CREATE TABLE bargain_helpers (
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id),
    bargain_id  BLOB    NOT NULL,
    helper_id   BLOB    NOT NULL,
    helps       INTEGER NOT NULL CHECK (helps >= 0),
    PRIMARY KEY (tenant_id, bargain_id, helper_id)
);
ALTER TABLE orders ADD COLUMN bargain_record_id BLOB;
