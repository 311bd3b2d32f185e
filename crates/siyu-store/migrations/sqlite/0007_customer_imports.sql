-- Customer imports (CSV/XLSX). A file is validated whole at upload: with any bad row it is
-- `rejected` with its row-level report and nothing is written; otherwise its validated rows
-- wait, sealed (they hold names and phones), for the import job, which writes them in one
-- transaction (`running` → `done`, or `failed` with nothing written) and then drops them.

CREATE TABLE customer_imports (
    tenant_id     BLOB    NOT NULL REFERENCES tenants (id),
    id            BLOB    NOT NULL,
    file_name     TEXT    NOT NULL,
    format        TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    total         INTEGER NOT NULL,
    created       INTEGER NOT NULL DEFAULT 0,
    existing      INTEGER NOT NULL DEFAULT 0,
    error_count   INTEGER NOT NULL DEFAULT 0,
    errors        TEXT    NOT NULL,
    failure       TEXT,
    rows_sealed   TEXT,
    created_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    PRIMARY KEY (tenant_id, id)
);
