-- Campaign tags (活动标签): kind 'campaign', applied only between the first and last local day
-- of the campaign, and let go of by every holder keep_days after it (never when NULL).
ALTER TABLE tags ADD COLUMN campaign_first_day INTEGER;
ALTER TABLE tags ADD COLUMN campaign_last_day INTEGER;
ALTER TABLE tags ADD COLUMN campaign_keep_days INTEGER;
