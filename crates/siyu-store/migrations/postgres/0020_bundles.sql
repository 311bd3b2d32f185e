-- 组合套餐: a discount of kind bundle has a price, and each of its products a quantity.
ALTER TABLE discounts ADD COLUMN price_fen BIGINT;
ALTER TABLE discount_items ADD COLUMN qty BIGINT NOT NULL DEFAULT 1;
