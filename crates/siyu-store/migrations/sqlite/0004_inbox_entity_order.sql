-- Events of one entity are processed in order (scrm-rules S-5): finding an earlier unprocessed
-- row of the same entity must be an index probe.
CREATE INDEX ix_wecom_inbox_entity ON wecom_inbox (tenant_id, entity, id);
