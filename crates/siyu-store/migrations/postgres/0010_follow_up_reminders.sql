-- Follow-up reminders (scrm-rules C-33): when the next action falls due the member gets a
-- WeCom app message (reminded_at); still open 24 hours later, it escalates (escalated_at).
ALTER TABLE follow_ups ADD COLUMN reminded_at BIGINT;
ALTER TABLE follow_ups ADD COLUMN escalated_at BIGINT;
