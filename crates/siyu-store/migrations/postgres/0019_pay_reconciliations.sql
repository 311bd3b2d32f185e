-- The daily reconciliation of WeChat Pay's trade bill against payments and refunds (PAY-7):
-- one run per tenant and bill date, with what did not match.
CREATE TABLE pay_reconciliations (
    tenant_id   UUID    NOT NULL REFERENCES tenants (id),
    bill_date   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    lines       BIGINT  NOT NULL DEFAULT 0,
    matched     BIGINT  NOT NULL DEFAULT 0,
    problems    JSONB   NOT NULL DEFAULT '[]',
    detail      TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, bill_date)
);
