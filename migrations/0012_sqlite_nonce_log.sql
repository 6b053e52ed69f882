-- SQLite only. On SQLite the server's memory decides whether a nonce is fresh (one node) and the
-- table is a copy for restarts, written behind in batches. With the primary key, every batch
-- inserted random keys into a B-tree and rewrote a page per nonce (a tenth of the API's CPU
-- under load); without it rows append, and expiry order keeps the index append-only too.
CREATE TABLE signature_nonces_copy (
    access_key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO signature_nonces_copy (access_key_id, nonce, expires_at) SELECT access_key_id, nonce, expires_at FROM signature_nonces;
DROP TABLE signature_nonces;
ALTER TABLE signature_nonces_copy RENAME TO signature_nonces;
CREATE INDEX signature_nonces_expiry ON signature_nonces (expires_at);
