-- A node carrying out a drift check's remediation claims it for a while: when it claimed it
-- (ms since the epoch; 0 when no node holds it). A claim older than the lease is taken over.
ALTER TABLE drift_checks ADD COLUMN remedy_claimed_at BIGINT NOT NULL DEFAULT 0;
