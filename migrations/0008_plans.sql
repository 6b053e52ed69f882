-- Provisioned product plans: a previewed change (launch, update or terminate) awaiting approval
-- and execution, and the approval records of each plan.
--
-- A preview is queued while status = 'PreviewInProgress' and lease_owner IS NULL; a worker
-- claims it like a task (lease_owner, lease_expires_at) and renews the lease while Terraform
-- plans. The plan file and the Terraform state version it was computed from are kept so that
-- any node can execute exactly what was previewed.
CREATE TABLE plans (
    plan_id TEXT PRIMARY KEY,
    plan_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    operation_type TEXT NOT NULL,
    owner_principal_id TEXT NOT NULL,
    owner_principal_type TEXT NOT NULL,
    owner_principal_name TEXT NOT NULL,
    product_id TEXT NOT NULL,
    product_version_id TEXT NOT NULL,
    portfolio_id TEXT NOT NULL,
    provisioned_product_id TEXT NOT NULL,
    provisioned_product_name TEXT NOT NULL,
    stack_id TEXT NOT NULL,
    stack_region_id TEXT NOT NULL,
    parameters_sealed TEXT NOT NULL,
    sensitive_parameters TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    task_tags TEXT NOT NULL DEFAULT '[]',
    launch_role TEXT,
    approval_config TEXT,
    status TEXT NOT NULL,
    status_message TEXT NOT NULL DEFAULT '',
    resource_changes TEXT NOT NULL DEFAULT '[]',
    planned_outputs TEXT NOT NULL DEFAULT '[]',
    plan_file_sealed TEXT,
    state_version BIGINT NOT NULL DEFAULT 0,
    execute_task_id TEXT,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX plans_owner ON plans (owner_principal_id, created_at);
CREATE INDEX plans_queue ON plans (status, lease_owner, created_at);
CREATE INDEX plans_task ON plans (execute_task_id);
CREATE INDEX plans_provisioned_product ON plans (provisioned_product_id);

CREATE TABLE plan_records (
    plan_id TEXT NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    approval_action TEXT NOT NULL,
    operator_principal_id TEXT NOT NULL,
    operator_principal_type TEXT NOT NULL,
    operator_principal_name TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (plan_id, seq)
);
