-- Customer operations (issue 4): one row per person (OneID) with its identities, tags,
-- channels, custom fields, lifecycle, RFM and timeline; saved segments.
--
-- `customers.num` is a dense per-tenant number: the segment index keys its bitmaps by it.
-- `customers.change_seq` orders changes per tenant. Both come from the tenant's row in
-- customer_counters, updated in the same transaction as the change; that row lock makes
-- change_seq commit-ordered, so any process can catch its index up with one indexed probe
-- (`change_seq > last seen`) without missing a change.

CREATE TABLE customer_counters (
    tenant_id    UUID   PRIMARY KEY REFERENCES tenants (id),
    next_num     BIGINT NOT NULL,
    change_seq   BIGINT NOT NULL
);

CREATE TABLE customers (
    tenant_id        UUID    NOT NULL REFERENCES tenants (id),
    id               UUID    NOT NULL,
    num              BIGINT  NOT NULL,
    name             TEXT    NOT NULL,
    -- Personal data (PIPL): the phone is sealed (AES-256-GCM), found by a keyed blind index,
    -- and shown masked unless the viewer may see it.
    phone_sealed     TEXT,
    phone_index      TEXT,
    phone_masked     TEXT,
    gender           BIGINT  NOT NULL DEFAULT 0,
    lifecycle        TEXT    NOT NULL,
    lifecycle_locked_until BIGINT,
    owner_staff_id   UUID,
    store_id         UUID,
    source           TEXT    NOT NULL,
    orders_count     BIGINT  NOT NULL DEFAULT 0,
    spend_fen        BIGINT  NOT NULL DEFAULT 0,
    first_order_at   BIGINT,
    last_order_at    BIGINT,
    last_order_day   BIGINT,
    rfm_r            BIGINT,
    rfm_f            BIGINT,
    rfm_m            BIGINT,
    rfm_segment      TEXT,
    rfm_ref_day      BIGINT,
    status           TEXT    NOT NULL DEFAULT 'active',
    merged_into      UUID,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    change_seq       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_customers_num ON customers (tenant_id, num);
CREATE INDEX ix_customers_change ON customers (tenant_id, change_seq);
CREATE INDEX ix_customers_owner ON customers (tenant_id, owner_staff_id, id);
CREATE INDEX ix_customers_phone ON customers (tenant_id, phone_index);

-- OneID links: kind is external_userid, unionid, openid or phone (whose value is the blind
-- index, never the number); namespace is the corp or appid where the kind needs one.
CREATE TABLE customer_identities (
    tenant_id    UUID   NOT NULL REFERENCES tenants (id),
    kind         TEXT   NOT NULL,
    namespace    TEXT   NOT NULL DEFAULT '',
    value        TEXT   NOT NULL,
    customer_id  UUID   NOT NULL,
    source       TEXT   NOT NULL,
    strength     TEXT   NOT NULL,
    observed_at  BIGINT NOT NULL,
    actor        TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, kind, namespace, value)
);
CREATE INDEX ix_customer_identities_customer ON customer_identities (tenant_id, customer_id);

CREATE TABLE tag_groups (
    tenant_id       UUID   NOT NULL REFERENCES tenants (id),
    id              UUID   NOT NULL,
    name            TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    wecom_group_id  TEXT,
    sort_order      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_tag_groups_name ON tag_groups (tenant_id, kind, name);

CREATE TABLE tags (
    tenant_id     UUID   NOT NULL REFERENCES tenants (id),
    id            UUID   NOT NULL,
    group_id      UUID   NOT NULL,
    name          TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    wecom_tag_id  TEXT,
    sort_order    BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES tag_groups (tenant_id, id)
);
CREATE UNIQUE INDEX ux_tags_name ON tags (tenant_id, group_id, name);
CREATE UNIQUE INDEX ux_tags_wecom ON tags (tenant_id, wecom_tag_id);

-- Membership rows carry the customer's dense number too, so the segment index loads them with
-- a plain scan instead of a join (numbers never change).
-- Effective tag membership. Internal tags are written here directly; corp tags are projected
-- from the customer's active WeCom relationships (WeCom is their truth, rule R-1).
CREATE TABLE customer_tags (
    tenant_id    UUID   NOT NULL REFERENCES tenants (id),
    tag_id       UUID   NOT NULL,
    customer_id  UUID   NOT NULL,
    customer_num BIGINT NOT NULL,
    source       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, tag_id, customer_id)
);
CREATE INDEX ix_customer_tags_customer ON customer_tags (tenant_id, customer_id);

-- Channel states of the customer's relationships (projected from WeCom).
CREATE TABLE customer_channels (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    customer_id  UUID NOT NULL,
    customer_num BIGINT NOT NULL,
    state        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, state)
);
CREATE INDEX ix_customer_channels_state ON customer_channels (tenant_id, state);

CREATE TABLE customer_field_defs (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    key          TEXT    NOT NULL,
    label        TEXT    NOT NULL,
    sensitive    BOOLEAN NOT NULL DEFAULT FALSE,
    sort_order   BIGINT  NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- Custom profile fields. A sensitive field keeps only `value_sealed` and is not segmentable.
CREATE TABLE customer_fields (
    tenant_id     UUID NOT NULL REFERENCES tenants (id),
    customer_id   UUID NOT NULL,
    customer_num  BIGINT NOT NULL,
    key           TEXT NOT NULL,
    value         TEXT,
    value_sealed  TEXT,
    PRIMARY KEY (tenant_id, customer_id, key)
);
CREATE INDEX ix_customer_fields_value ON customer_fields (tenant_id, key, value);

CREATE TABLE lifecycle_stages (
    tenant_id   UUID   NOT NULL REFERENCES tenants (id),
    key         TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    sort_order  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE segments (
    tenant_id    UUID   NOT NULL REFERENCES tenants (id),
    id           UUID   NOT NULL,
    name         TEXT   NOT NULL,
    description  TEXT   NOT NULL DEFAULT '',
    expr         JSONB  NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_segments_name ON segments (tenant_id, name);

-- Everything that happened with a customer, with its source (scrm-rules C-34).
CREATE TABLE customer_timeline (
    tenant_id    UUID   NOT NULL REFERENCES tenants (id),
    customer_id  UUID   NOT NULL,
    id           UUID   NOT NULL,
    at           BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    source       TEXT   NOT NULL,
    actor        TEXT   NOT NULL,
    summary      TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, id)
);

CREATE TABLE follow_ups (
    tenant_id    UUID   NOT NULL REFERENCES tenants (id),
    id           UUID   NOT NULL,
    customer_id  UUID   NOT NULL,
    staff_id     UUID,
    kind         TEXT   NOT NULL,
    content      TEXT   NOT NULL,
    next_at      BIGINT,
    done_at      BIGINT,
    created_by   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_follow_ups_customer ON follow_ups (tenant_id, customer_id, id);
CREATE INDEX ix_follow_ups_due ON follow_ups (tenant_id, done_at, next_at);

-- Effective-order ledger per customer: what RFM, lifecycle and segment metrics are computed
-- from. Commerce appends paid orders and their refunds here; imports and the demo load
-- purchase history. order_ref is unique per tenant, so replays change nothing.
CREATE TABLE customer_purchases (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    order_ref     TEXT    NOT NULL,
    customer_id   UUID    NOT NULL,
    paid_at       BIGINT  NOT NULL,
    paid_fen      BIGINT  NOT NULL,
    refunded_fen  BIGINT  NOT NULL DEFAULT 0,
    source        TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, order_ref)
);
CREATE INDEX ix_customer_purchases_customer ON customer_purchases (tenant_id, customer_id, paid_at);

-- Per-tenant RFM configuration (analytics.md §8): window (NULL = all history), centre
-- ('mean' or 'fixed' thresholds) and a fixed reference date for historical data (NULL = today).
CREATE TABLE customer_settings (
    tenant_id        UUID    PRIMARY KEY REFERENCES tenants (id),
    rfm_window_days  BIGINT,
    rfm_centre       TEXT    NOT NULL DEFAULT 'mean',
    rfm_r_days       BIGINT,
    rfm_f            BIGINT,
    rfm_m_fen        BIGINT,
    rfm_ref_date     TEXT,
    updated_at       BIGINT  NOT NULL
);

-- Loss alerts (scrm-rules C-40..C-42): a customer deleting a member, or a member deleting a
-- customer. At most one open alert per relationship and kind.
CREATE TABLE customer_alerts (
    tenant_id        UUID    NOT NULL REFERENCES tenants (id),
    id               UUID    NOT NULL,
    customer_id      UUID,
    kind             TEXT    NOT NULL,
    external_userid  TEXT    NOT NULL,
    userid           TEXT    NOT NULL,
    staff_id         UUID,
    reason           TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    resolved_at      BIGINT,
    resolved_by      TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX ux_customer_alerts_open ON customer_alerts (tenant_id, kind, external_userid, userid) WHERE resolved_at IS NULL;
CREATE INDEX ix_customer_alerts_staff ON customer_alerts (tenant_id, staff_id, id);
