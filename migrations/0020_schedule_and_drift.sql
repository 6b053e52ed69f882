-- The durable scheduler: one row per recurring job (a kind and the subject it is about), due at
-- due_at (the database's clock, ms) and every interval_ms after. A node claims a due job with a
-- lease (lease_owner, lease_expires_at) and a fencing epoch, as tasks are claimed; a job whose
-- lease expired (its node died) is due again and another node claims it.
CREATE TABLE scheduled_jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    lease_owner TEXT,
    lease_epoch BIGINT NOT NULL DEFAULT 0,
    lease_expires_at BIGINT,
    last_run_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX scheduled_jobs_subject ON scheduled_jobs (kind, subject);
CREATE INDEX scheduled_jobs_due ON scheduled_jobs (due_at);
-- Drift: each provisioned product's last result, and the status a drift check keeps to restore
-- when it ends (a check holds the product UnderChange, as an update does, but changes nothing).
ALTER TABLE provisioned_products ADD COLUMN drift_status TEXT NOT NULL DEFAULT 'NeverChecked';
ALTER TABLE provisioned_products ADD COLUMN drift_checked_at BIGINT;
ALTER TABLE provisioned_products ADD COLUMN status_before_check TEXT;
-- Every drift check's result: the resources that changed outside Terraform (address, action and
-- the names of the changed attributes, never their values), and the remediation it queued.
CREATE TABLE drift_checks (
    task_id TEXT PRIMARY KEY REFERENCES tasks (task_id),
    provisioned_product_id TEXT NOT NULL,
    drift_status TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    resources TEXT NOT NULL DEFAULT '[]',
    message TEXT NOT NULL DEFAULT '',
    remediation TEXT NOT NULL DEFAULT 'None',
    remediation_task_id TEXT
);
CREATE INDEX drift_checks_product ON drift_checks (provisioned_product_id, checked_at);
