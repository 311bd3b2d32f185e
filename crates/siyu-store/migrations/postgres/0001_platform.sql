-- Platform foundation: tenants, console users, sessions, API tokens, stores, staff, audit,
-- idempotency keys, login throttling and the jobs queue.
-- Conventions (both backends): ids are UUIDv7 (UUID here, BLOB in SQLite); instants are
-- UTC microseconds in BIGINT; JSON is JSONB here and TEXT in SQLite. Tenant tables lead
-- every primary key and index with tenant_id.

CREATE TABLE tenants (
    id              UUID    NOT NULL PRIMARY KEY,
    slug            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    timezone        TEXT    NOT NULL,
    default_locale  TEXT    NOT NULL DEFAULT 'zh-CN',
    contact_email   TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX uq_tenants_slug ON tenants (slug);

CREATE TABLE stores (
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    id          UUID    NOT NULL,
    code        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    city        TEXT,
    address     TEXT,
    phone       TEXT,
    status      TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX uq_stores_code ON stores (tenant_id, code);

CREATE TABLE staff (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    id            UUID    NOT NULL,
    name          TEXT    NOT NULL,
    wecom_userid  TEXT,
    mobile        TEXT,
    store_id      UUID,
    title         TEXT,
    status        TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id)
);
CREATE UNIQUE INDEX uq_staff_wecom_userid ON staff (tenant_id, wecom_userid);
CREATE INDEX ix_staff_store ON staff (tenant_id, store_id);

CREATE TABLE users (
    tenant_id      UUID    NOT NULL REFERENCES tenants (id),
    id             UUID    NOT NULL,
    login          TEXT    NOT NULL,
    display_name   TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    staff_id       UUID,
    password_hash  TEXT    NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id)
);
CREATE UNIQUE INDEX uq_users_login ON users (tenant_id, login);
CREATE UNIQUE INDEX uq_users_staff ON users (tenant_id, staff_id);

CREATE TABLE sessions (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    secret_hash   TEXT    NOT NULL,
    user_id       UUID    NOT NULL,
    csrf_token    TEXT    NOT NULL,
    ip            TEXT,
    user_agent    TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, secret_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX ix_sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE api_tokens (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    id            UUID    NOT NULL,
    name          TEXT    NOT NULL,
    prefix        TEXT    NOT NULL,
    secret_hash   TEXT    NOT NULL,
    scopes        JSONB    NOT NULL,
    created_by    UUID,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX uq_api_tokens_secret ON api_tokens (tenant_id, secret_hash);

CREATE TABLE audit_log (
    tenant_id    UUID    NOT NULL REFERENCES tenants (id),
    id           UUID    NOT NULL,
    at           BIGINT NOT NULL,
    actor_kind   TEXT    NOT NULL,
    actor_id     TEXT,
    actor_name   TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    entity_type  TEXT    NOT NULL,
    entity_id    TEXT    NOT NULL,
    before       JSONB,
    after        JSONB,
    request_id   TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_audit_entity ON audit_log (tenant_id, entity_type, entity_id);

CREATE TABLE idempotency_keys (
    tenant_id      UUID    NOT NULL REFERENCES tenants (id),
    actor_key      TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    request_hash   TEXT    NOT NULL,
    status_code    INTEGER,
    response_body  BYTEA,
    content_type   TEXT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, actor_key, key)
);

CREATE TABLE login_failures (
    tenant_id  UUID    NOT NULL REFERENCES tenants (id),
    login      TEXT    NOT NULL,
    id         UUID    NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, login, id)
);

-- The jobs queue is installation infrastructure rather than tenant data: workers claim across
-- all tenants by due time, so it is keyed by job id (ARCHITECTURE.md names this exception).
CREATE TABLE jobs (
    id            UUID    NOT NULL PRIMARY KEY,
    tenant_id     UUID,
    kind          TEXT    NOT NULL,
    payload       JSONB    NOT NULL,
    dedupe_key    TEXT,
    status        TEXT    NOT NULL,
    run_at        BIGINT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    locked_by     TEXT,
    locked_until  BIGINT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE UNIQUE INDEX uq_jobs_dedupe ON jobs (dedupe_key);
CREATE INDEX ix_jobs_due ON jobs (status, run_at);

-- Effects of the built-in `system.probe` job, keyed by job id so a re-run cannot apply twice.
CREATE TABLE job_probe_results (
    job_id        UUID    NOT NULL PRIMARY KEY,
    worker        TEXT    NOT NULL,
    completed_at  BIGINT NOT NULL
);
CREATE INDEX ix_jobs_tenant ON jobs (tenant_id, id);
