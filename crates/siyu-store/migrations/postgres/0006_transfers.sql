-- Customer transfers (在职转接 / 离职继承, scrm-rules C-50..C-62). A batch moves one handover
-- member's customers; each item is one customer's transfer with its WeCom state. WeCom's
-- answer only starts a takeover, so items stay open (planned, sending, waiting) until
-- transfer_result reports them final; at most one open item per customer and handover member.

CREATE TABLE transfers (
    tenant_id        UUID    NOT NULL REFERENCES tenants (id),
    id               UUID    NOT NULL,
    app_id           UUID    NOT NULL,
    kind             TEXT    NOT NULL,
    origin           TEXT    NOT NULL,
    handover_userid  TEXT    NOT NULL,
    message          TEXT,
    created_by       TEXT    NOT NULL,
    created_at       BIGINT NOT NULL,
    executed_at      BIGINT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ix_transfers_handover ON transfers (tenant_id, handover_userid, id);

CREATE TABLE transfer_items (
    tenant_id        UUID    NOT NULL REFERENCES tenants (id),
    id               UUID    NOT NULL,
    transfer_id      UUID    NOT NULL,
    external_userid  TEXT    NOT NULL,
    customer_id      UUID,
    handover_userid  TEXT    NOT NULL,
    takeover_userid  TEXT,
    status           TEXT    NOT NULL,
    reason           TEXT,
    errcode          BIGINT,
    sent_at          BIGINT,
    expected_at      BIGINT,
    finished_at      BIGINT,
    rerouted_to      UUID,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, transfer_id) REFERENCES transfers (tenant_id, id)
);
CREATE INDEX ix_transfer_items_batch ON transfer_items (tenant_id, transfer_id, id);
CREATE INDEX ix_transfer_items_sent ON transfer_items (tenant_id, external_userid, sent_at);
CREATE INDEX ix_transfer_items_status ON transfer_items (tenant_id, status, handover_userid, takeover_userid);
CREATE UNIQUE INDEX ux_transfer_items_open ON transfer_items (tenant_id, external_userid, handover_userid)
    WHERE status IN ('planned', 'sending', 'waiting');

-- What happens when a member leaves (off, plan for approval, or plan and send) and the
-- default message shown to customers of in-service transfers.
CREATE TABLE transfer_settings (
    tenant_id        UUID    PRIMARY KEY REFERENCES tenants (id),
    auto_mode        TEXT    NOT NULL,
    message          TEXT,
    updated_at       BIGINT NOT NULL
);

-- After a transfer completes the receiver owns the customer even when an older relationship
-- exists (C-52); the projection prefers this member while the relationship is live.
ALTER TABLE customers ADD COLUMN owner_userid_pref TEXT;
