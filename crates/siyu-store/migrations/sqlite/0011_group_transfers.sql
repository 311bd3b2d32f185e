-- Customer-group transfers (scrm-rules C-54, C-62). A batch of the transfers table moves
-- either a member's customers or the groups they own; each group item is one chat's move.
-- WeCom's answer is final for a group, so items end done or failed; at most one open item
-- per chat, and sent_at (set when the chat is claimed for a call) feeds the 300-per-day and
-- 2-per-90-days limits.

ALTER TABLE transfers ADD COLUMN subject TEXT NOT NULL DEFAULT 'customers';

CREATE TABLE group_transfer_items (
    tenant_id        BLOB    NOT NULL REFERENCES tenants (id),
    id               BLOB    NOT NULL,
    transfer_id      BLOB    NOT NULL,
    chat_id          TEXT    NOT NULL,
    handover_userid  TEXT    NOT NULL,
    takeover_userid  TEXT,
    status           TEXT    NOT NULL,
    reason           TEXT,
    errcode          INTEGER,
    sent_at          INTEGER,
    finished_at      INTEGER,
    rerouted_to      BLOB,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, transfer_id) REFERENCES transfers (tenant_id, id)
);
CREATE INDEX ix_group_transfer_items_batch ON group_transfer_items (tenant_id, transfer_id, id);
CREATE INDEX ix_group_transfer_items_chat ON group_transfer_items (tenant_id, chat_id, sent_at);
CREATE INDEX ix_group_transfer_items_pair ON group_transfer_items (tenant_id, handover_userid, takeover_userid, sent_at);
CREATE UNIQUE INDEX ux_group_transfer_items_open ON group_transfer_items (tenant_id, chat_id)
    WHERE status IN ('planned', 'sending');
