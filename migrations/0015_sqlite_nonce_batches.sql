-- SQLite only. The nonce copy becomes one row per write-behind batch: the batch's 16-byte memory
-- keys (auth::nonce, the first 16 bytes of SHA-256 over "AccessKeyId\nnonce") laid end to end,
-- with the last expiry of the batch. A row per nonce cost thousands of inserts ten times a second
-- under load, a burst that delayed the requests served meanwhile (the GetTask p99 at c = 64,
-- docs/benchmarks.md). Rows of signature_nonces written before this keep being loaded at start
-- until they expire and the prune deletes them.
CREATE TABLE signature_nonce_batches (
    expires_at BIGINT NOT NULL,
    memory_keys BLOB NOT NULL
);
CREATE INDEX signature_nonce_batches_expiry ON signature_nonce_batches (expires_at);
