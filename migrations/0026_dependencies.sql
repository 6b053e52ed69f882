-- Dependencies between provisioned products (an extension): a parameter value may take its value
-- from an output of another provisioned product through a reference. Each task and plan records
-- the references its parameters were resolved from (JSON array; '[]': none), and each dependent
-- provisioned product one edge per (upstream, output) it reads: the SHA-256 of the value it
-- resolved, and whether the upstream's outputs changed since (stale = 1). The edges of a
-- dependent are replaced, in the same transaction, by each launch or update task queued for it.
ALTER TABLE tasks ADD COLUMN parameter_references TEXT NOT NULL DEFAULT '[]';
ALTER TABLE plans ADD COLUMN parameter_references TEXT NOT NULL DEFAULT '[]';
CREATE TABLE provisioned_product_dependencies (
    dependent_id TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    output_key TEXT NOT NULL,
    value_hash TEXT NOT NULL,
    stale BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (dependent_id, upstream_id, output_key)
);
CREATE INDEX provisioned_product_dependencies_upstream ON provisioned_product_dependencies (upstream_id);
