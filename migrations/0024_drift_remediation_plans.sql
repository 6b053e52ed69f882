-- A drift check whose remediation is ReapplyWithApproval creates an update plan for approval
-- instead of queueing an update: the plan it made.
ALTER TABLE drift_checks ADD COLUMN remediation_plan_id TEXT;
