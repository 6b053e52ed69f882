-- Fencing tokens. Every claim of a task or of a plan's preview increments its lease_epoch; a
-- worker's writes for the job (state versions, log lines, outcome, plan file) are conditional on
-- its (lease_owner, lease_epoch) still being current, so a worker that was paused past its lease
-- writes nothing once another node has taken the job over.
ALTER TABLE tasks ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE plans ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
-- Terraform's own `serial` of each stored state (NULL when unreadable): a state never replaces
-- one with a higher serial.
ALTER TABLE terraform_states ADD COLUMN serial BIGINT;
