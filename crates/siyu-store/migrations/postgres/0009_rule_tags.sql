-- Rule tags (scrm-rules C-25): a tag whose holders are exactly the customers matching a
-- segment expression, kept so by a daily job and on every change of the rule. Kind `rule`;
-- nobody tags or untags them by hand.
ALTER TABLE tags ADD COLUMN rule_expr TEXT;
ALTER TABLE tags ADD COLUMN rule_refreshed_at BIGINT;
