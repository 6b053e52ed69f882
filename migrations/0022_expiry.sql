-- Expiry (an extension): when a provisioned product is terminated by the scheduler (ms since the
-- epoch, UTC; NULL: never), the latest warning time already told of for that expiry (NULL: none
-- yet), and the first terminate its expiry queued (NULL until then: a job run again after its
-- node died finds it set and queues no second one).
ALTER TABLE provisioned_products ADD COLUMN expires_at BIGINT;
ALTER TABLE provisioned_products ADD COLUMN expiry_warned_at BIGINT;
ALTER TABLE provisioned_products ADD COLUMN expiry_task_id TEXT;
CREATE INDEX provisioned_products_expiry ON provisioned_products (expires_at);
