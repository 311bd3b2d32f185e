-- The daily reconciliation of WeChat Pay's trade bill against payments and refunds (PAY-7):
-- one run per tenant and bill date, with what did not match.
CREATE TABLE pay_reconciliations (
    tenant_id   BLOB    NOT NULL REFERENCES tenants (id),
    bill_date   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    lines       INTEGER NOT NULL DEFAULT 0,
    matched     INTEGER NOT NULL DEFAULT 0,
    problems    TEXT    NOT NULL DEFAULT '[]',
    detail      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, bill_date)
);
