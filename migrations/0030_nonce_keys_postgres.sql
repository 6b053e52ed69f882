-- PostgreSQL only. Signature nonces are kept by their 16-byte key (auth::nonce: the first 16
-- bytes of SHA-256 over "AccessKeyId\nnonce", the key SQLite's copy already stores) instead of
-- the two texts: a smaller primary key to insert into and compare, and batches bound as one
-- byte string instead of JSON. Expiry is found through a BRIN index (nonces are inserted in
-- order of expiry, so it costs an insert almost nothing, where the B-tree cost a second index
-- insert per nonce). The live rows of the old table are copied, so a request signed before the
-- upgrade is still refused a second time after it. The old table stays for nodes not yet
-- upgraded and is pruned as before. Written to run again harmlessly (a test re-applies it).
CREATE TABLE IF NOT EXISTS signature_nonce_keys (
    nonce_key BYTEA PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS signature_nonce_keys_expiry ON signature_nonce_keys USING brin (expires_at);
INSERT INTO signature_nonce_keys (nonce_key, expires_at)
SELECT substring(sha256(convert_to(access_key_id || E'\n' || nonce, 'UTF8')) FROM 1 FOR 16), MAX(expires_at)
FROM signature_nonces
WHERE expires_at > CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)
GROUP BY 1
ON CONFLICT (nonce_key) DO NOTHING;
