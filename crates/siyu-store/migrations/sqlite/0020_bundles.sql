-- 组合套餐: a discount of kind bundle has a price, and each of its products a quantity.
ALTER TABLE discounts ADD COLUMN price_fen INTEGER;
ALTER TABLE discount_items ADD COLUMN qty INTEGER NOT NULL DEFAULT 1;
