-- Upgrade campaigns (an extension): a campaign upgrades the selected provisioned products of a
-- product to a target version in waves; each selected provisioned product is one item with the
-- update plan previewing its upgrade and the task executing it. An item's task id is written in
-- the transaction that queues the task, so a campaign never updates a product twice.
CREATE TABLE upgrade_campaigns (
    campaign_id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL,
    target_version_id TEXT NOT NULL,
    source_version_ids TEXT NOT NULL,
    selection TEXT NOT NULL,
    wave_size BIGINT NOT NULL,
    parallelism BIGINT NOT NULL,
    failure_threshold BIGINT NOT NULL,
    status TEXT NOT NULL,
    failures_before BIGINT NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX upgrade_campaigns_status ON upgrade_campaigns (status);
CREATE TABLE upgrade_campaign_items (
    campaign_id TEXT NOT NULL REFERENCES upgrade_campaigns (campaign_id),
    seq BIGINT NOT NULL,
    provisioned_product_id TEXT NOT NULL,
    provisioned_product_name TEXT NOT NULL,
    owner_principal_id TEXT NOT NULL,
    portfolio_id TEXT NOT NULL,
    source_version_id TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    plan_id TEXT,
    task_id TEXT,
    adds BIGINT NOT NULL DEFAULT 0,
    changes BIGINT NOT NULL DEFAULT 0,
    replaces BIGINT NOT NULL DEFAULT 0,
    destroys BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, provisioned_product_id)
);
-- The scheduler's FollowRecommended job reads the provisioned products by update policy.
CREATE INDEX provisioned_products_update_policy ON provisioned_products (update_policy);
