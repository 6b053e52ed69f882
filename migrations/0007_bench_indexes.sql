-- Indexes found missing by bench/run with 100,000 provisioned products and 1,000,000 tasks.
-- ListProvisionedProducts with a ProvisionedProductName filter: the name equality (lower-cased,
-- as the query compares it) and the list's order in one index, so that a page reads only its rows.
CREATE INDEX provisioned_products_name ON provisioned_products (terminated, LOWER(provisioned_product_name), created_at, provisioned_product_id);
