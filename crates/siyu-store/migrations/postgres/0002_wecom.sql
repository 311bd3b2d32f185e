-- WeCom gateway: per-tenant app settings (secrets sealed with the master key), the durable
-- callback inbox, replay memory, and the typed domain events the inbox is processed into.

CREATE TABLE wecom_apps (
    tenant_id                UUID    NOT NULL REFERENCES tenants (id),
    id                       UUID    NOT NULL,
    name                     TEXT    NOT NULL,
    corp_id                  TEXT    NOT NULL,
    agent_id                 TEXT    NOT NULL,
    base_url                 TEXT    NOT NULL,
    secret_sealed            TEXT    NOT NULL,
    callback_token_sealed    TEXT    NOT NULL,
    encoding_aes_key_sealed  TEXT    NOT NULL,
    callback_verified_at     BIGINT,
    last_event_at            BIGINT,
    last_check_at            BIGINT,
    last_check               JSONB,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX uq_wecom_apps_agent ON wecom_apps (tenant_id, corp_id, agent_id);

CREATE TABLE wecom_inbox (
    tenant_id      UUID    NOT NULL REFERENCES tenants (id),
    id             UUID    NOT NULL,
    app_id         UUID    NOT NULL,
    dedupe_key     TEXT    NOT NULL,
    received_at    BIGINT NOT NULL,
    envelope       TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    event_kind     TEXT    NOT NULL,
    entity         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    processed_at   BIGINT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, app_id) REFERENCES wecom_apps (tenant_id, id)
);
CREATE UNIQUE INDEX uq_wecom_inbox_dedupe ON wecom_inbox (tenant_id, app_id, dedupe_key);
CREATE INDEX ix_wecom_inbox_status ON wecom_inbox (tenant_id, status, id);

CREATE TABLE wecom_nonces (
    tenant_id  UUID    NOT NULL REFERENCES tenants (id),
    app_id     UUID    NOT NULL,
    timestamp  BIGINT NOT NULL,
    nonce      TEXT    NOT NULL,
    seen_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, app_id, timestamp, nonce)
);

CREATE TABLE wecom_events (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    id           UUID    NOT NULL,
    app_id       UUID    NOT NULL,
    inbox_id     UUID    NOT NULL,
    kind         TEXT    NOT NULL,
    entity       TEXT    NOT NULL,
    payload      JSONB    NOT NULL,
    occurred_at  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX uq_wecom_events_inbox ON wecom_events (tenant_id, inbox_id);
CREATE INDEX ix_wecom_events_entity ON wecom_events (tenant_id, entity, id);
