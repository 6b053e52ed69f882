-- Signature nonces seen within the timestamp window, so a captured request cannot be replayed
-- after a restart or on another node.
CREATE TABLE signature_nonces (
    access_key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (access_key_id, nonce)
);
CREATE INDEX signature_nonces_expiry ON signature_nonces (expires_at);
