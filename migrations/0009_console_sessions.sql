-- Web console sessions, shared by every node of one database. Only a SHA-256 hash of the
-- session token is stored; a session ends with its AccessKey.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    access_key_id TEXT NOT NULL REFERENCES access_keys (access_key_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
