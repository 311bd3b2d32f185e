-- Customer imports (CSV/XLSX). A file is validated whole at upload: with any bad row it is
-- `rejected` with its row-level report and nothing is written; otherwise its validated rows
-- wait, sealed (they hold names and phones), for the import job, which writes them in one
-- transaction (`running` → `done`, or `failed` with nothing written) and then drops them.

CREATE TABLE customer_imports (
    tenant_id     UUID    NOT NULL REFERENCES tenants (id),
    id            UUID    NOT NULL,
    file_name     TEXT    NOT NULL,
    format        TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    total         BIGINT NOT NULL,
    created       BIGINT NOT NULL DEFAULT 0,
    existing      BIGINT NOT NULL DEFAULT 0,
    error_count   BIGINT NOT NULL DEFAULT 0,
    errors        TEXT    NOT NULL,
    failure       TEXT,
    rows_sealed   TEXT,
    created_by    TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    finished_at   BIGINT,
    PRIMARY KEY (tenant_id, id)
);
