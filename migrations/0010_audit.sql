-- Audit trail: one row per change requested through the API (any outcome once the caller is
-- known), with its parameters masked. Pruned after the configured retention.
CREATE TABLE audit_events (
    event_id TEXT PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    action TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    principal_name TEXT NOT NULL,
    resource_id TEXT NOT NULL DEFAULT '',
    parameters TEXT NOT NULL,
    http_status BIGINT NOT NULL,
    result_code TEXT NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (occurred_at);
CREATE INDEX audit_events_principal ON audit_events (principal_name, occurred_at);
CREATE INDEX audit_events_resource ON audit_events (resource_id, occurred_at);
