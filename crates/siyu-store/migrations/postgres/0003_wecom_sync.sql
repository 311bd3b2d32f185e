-- WeCom state as siyu last saw it (WeCom is the truth for relationships, groups and corp tags;
-- rule R-1), kept current by callbacks and repaired by reconciliation, with per-entity sync
-- health. Staff are synced into the existing staff table by wecom_userid.

CREATE TABLE wecom_contacts (
    tenant_id        UUID    NOT NULL REFERENCES tenants (id),
    external_userid  TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    avatar           TEXT,
    kind             BIGINT NOT NULL,
    gender           BIGINT NOT NULL,
    unionid          TEXT,
    corp_name        TEXT,
    last_synced_at   BIGINT NOT NULL,
    last_source      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, external_userid)
);
CREATE INDEX ix_wecom_contacts_unionid ON wecom_contacts (tenant_id, unionid);

CREATE TABLE wecom_relationships (
    tenant_id        UUID    NOT NULL REFERENCES tenants (id),
    external_userid  TEXT    NOT NULL,
    userid           TEXT    NOT NULL,
    remark           TEXT    NOT NULL DEFAULT '',
    description      TEXT    NOT NULL DEFAULT '',
    add_time         BIGINT NOT NULL,
    add_way          BIGINT NOT NULL,
    state            TEXT,
    status           TEXT    NOT NULL,
    corp_tag_ids     JSONB    NOT NULL,
    remark_mobiles   JSONB    NOT NULL,
    status_changed_at BIGINT NOT NULL,
    status_reason    TEXT,
    last_synced_at   BIGINT NOT NULL,
    last_source      TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, external_userid, userid)
);
CREATE INDEX ix_wecom_relationships_user ON wecom_relationships (tenant_id, userid, status);
CREATE INDEX ix_wecom_relationships_state ON wecom_relationships (tenant_id, state);

CREATE TABLE wecom_corp_tags (
    tenant_id       UUID    NOT NULL REFERENCES tenants (id),
    id              TEXT    NOT NULL,
    group_id        TEXT    NOT NULL,
    group_name      TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    sort_order      BIGINT NOT NULL,
    deleted         BOOLEAN NOT NULL DEFAULT FALSE,
    last_synced_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE wecom_groups (
    tenant_id       UUID    NOT NULL REFERENCES tenants (id),
    chat_id         TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    member_count    BIGINT NOT NULL,
    member_version  TEXT    NOT NULL,
    dismissed       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    last_synced_at  BIGINT NOT NULL,
    last_source     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, chat_id)
);
CREATE INDEX ix_wecom_groups_owner ON wecom_groups (tenant_id, owner);

CREATE TABLE wecom_sync_state (
    tenant_id      UUID    NOT NULL REFERENCES tenants (id),
    app_id         UUID    NOT NULL,
    entity         TEXT    NOT NULL,
    last_run_at    BIGINT,
    last_ok_at     BIGINT,
    seen           BIGINT NOT NULL DEFAULT 0,
    drift          BIGINT NOT NULL DEFAULT 0,
    total_drift    BIGINT NOT NULL DEFAULT 0,
    last_error     TEXT,
    PRIMARY KEY (tenant_id, app_id, entity)
);
