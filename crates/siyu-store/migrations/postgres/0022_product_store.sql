-- The store (门店) a product belongs to: where it is sold and shipped from, if not the brand's.
ALTER TABLE products ADD COLUMN store_id UUID;
