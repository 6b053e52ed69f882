-- Provisioning: provisioned products, their tasks, task logs and versioned Terraform state.
CREATE TABLE provisioned_products (
    provisioned_product_id TEXT PRIMARY KEY,
    provisioned_product_name TEXT NOT NULL,
    owner_principal_id TEXT NOT NULL,
    owner_principal_type TEXT NOT NULL,
    product_id TEXT NOT NULL,
    product_version_id TEXT NOT NULL,
    portfolio_id TEXT NOT NULL,
    stack_region_id TEXT NOT NULL,
    stack_id TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL DEFAULT '',
    parameters_sealed TEXT NOT NULL,
    last_task_id TEXT,
    last_provisioning_task_id TEXT,
    last_successful_provisioning_task_id TEXT,
    terminated BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX provisioned_products_owner ON provisioned_products (owner_principal_id, terminated, created_at);
CREATE INDEX provisioned_products_live ON provisioned_products (terminated, created_at);
CREATE INDEX provisioned_products_product ON provisioned_products (product_id, terminated);

-- A task is queued while status = 'InProgress' and lease_owner IS NULL; a worker claims it by
-- setting lease_owner and lease_expires_at, and renews the lease while Terraform runs.
CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY,
    task_type TEXT NOT NULL,
    provisioned_product_id TEXT NOT NULL REFERENCES provisioned_products (provisioned_product_id),
    provisioned_product_name TEXT NOT NULL,
    product_id TEXT NOT NULL,
    product_name TEXT NOT NULL,
    product_version_id TEXT NOT NULL,
    product_version_name TEXT NOT NULL,
    portfolio_id TEXT NOT NULL,
    stack_region_id TEXT NOT NULL,
    parameters_sealed TEXT NOT NULL,
    sensitive_parameters TEXT NOT NULL DEFAULT '[]',
    task_tags TEXT NOT NULL DEFAULT '[]',
    launch_role TEXT,
    outputs TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    status_message TEXT NOT NULL DEFAULT '',
    lease_owner TEXT,
    lease_expires_at BIGINT,
    log_bytes BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tasks_product ON tasks (provisioned_product_id, created_at);
CREATE INDEX tasks_queue ON tasks (status, lease_owner, created_at);

CREATE TABLE task_logs (
    task_id TEXT NOT NULL REFERENCES tasks (task_id),
    seq BIGINT NOT NULL,
    command TEXT NOT NULL,
    stream TEXT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
);

-- Every state Terraform left behind, sealed; the highest version is the truth.
CREATE TABLE terraform_states (
    provisioned_product_id TEXT NOT NULL REFERENCES provisioned_products (provisioned_product_id),
    version BIGINT NOT NULL,
    task_id TEXT NOT NULL,
    state_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provisioned_product_id, version)
);
