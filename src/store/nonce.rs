//! Signature nonces recorded for replay protection. On PostgreSQL the table decides (its primary
//! key); on SQLite the database holds a copy of what memory decided, one row per write-behind
//! batch (migration 15).

use std::collections::HashSet;

use sqlx::Row;

use super::catalog_cache::GENERATION;
use super::sql::{sql, Sql};
use super::{now_ms, Dialect, Store, StoreError, StoreResult};

impl Store {
    /// Records a batch of nonce keys (auth::nonce's 16-byte keys, distinct) kept until `expires_at`,
    /// in one statement and one commit (PostgreSQL); for each, false when it was recorded already
    /// and has not expired by `now` (the caller's clock, ms). Rows are written in key order, so
    /// that batches of two nodes lock shared rows in the same order. The statement also reads the
    /// catalog's change count, a reading the requests it admits may use ([`Store::since`]).
    ///
    /// The commit does not wait for the disk (a WAL flush per batch was most of a read's
    /// latency). It is visible to every node once it returns, and a change the request then
    /// makes commits after it and waits for the disk, which flushes the log up to there, this
    /// batch included: an acknowledged change's nonce is durable. Only the nonce of a request
    /// that changed nothing can be lost, and only if PostgreSQL itself stops before its WAL
    /// writer flushes (within three `wal_writer_delay`s, 0.6 s by default; docs/security.md).
    pub async fn record_nonce_keys(&self, keys: &[[u8; 16]], expires_at: i64, now: i64) -> StoreResult<Vec<bool>> {
        let Some(own) = &self.nonce_connection else {
            return Err(StoreError::Database("nonce keys are recorded on PostgreSQL only".into()));
        };
        let mut sorted: Vec<&[u8; 16]> = keys.iter().collect();
        sorted.sort_unstable();
        let bytes: Vec<u8> = sorted.into_iter().flatten().copied().collect();
        let mut conn = own.take().await?;
        let reading = self.begin_catalog_reading();
        let statement = format!(
            "WITH fresh AS (INSERT INTO signature_nonce_keys (nonce_key, expires_at) \
             SELECT substring($1 FROM i * 16 + 1 FOR 16), $2 FROM generate_series(0, CAST($3 AS INTEGER) - 1) AS i \
             ON CONFLICT (nonce_key) DO UPDATE SET expires_at = EXCLUDED.expires_at \
             WHERE signature_nonce_keys.expires_at <= $4 RETURNING nonce_key) \
             SELECT COALESCE(string_agg(nonce_key, CAST('' AS BYTEA)), CAST('' AS BYTEA)) AS fresh, ({GENERATION}) AS catalog_generation \
             FROM fresh"
        );
        let recorded = sqlx::query(&statement)
            .bind(bytes)
            .bind(expires_at)
            .bind(keys.len() as i64)
            .bind(now)
            .fetch_one(&mut conn)
            .await
            .map_err(StoreError::from)
            .and_then(|row| Ok((row.try_get::<Vec<u8>, _>("fresh")?, row.try_get::<i64, _>("catalog_generation")?)));
        match &recorded {
            Err(e) if e.is_transient() => drop(conn),
            _ => own.keep(conn),
        }
        let (recorded, generation) = recorded?;
        self.finish_catalog_reading(reading, generation);
        let fresh: HashSet<&[u8]> = recorded.chunks_exact(16).collect();
        Ok(keys.iter().map(|key| fresh.contains(&key[..])).collect())
    }

    /// Appends one write-behind batch of nonces (SQLite's copy of what memory decided): their
    /// memory keys laid end to end, kept until `expires_at`, the last expiry among them. One row.
    pub async fn record_nonce_batch(&self, expires_at: i64, memory_keys: &[u8]) -> StoreResult<()> {
        sqlx::query("INSERT INTO signature_nonce_batches (expires_at, memory_keys) VALUES ($1, $2)")
            .bind(expires_at)
            .bind(memory_keys)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Batches whose nonces have not all expired, as `(expires_at, memory keys)`, for loading at
    /// start (SQLite).
    pub async fn live_nonce_batches(&self) -> StoreResult<Vec<(i64, Vec<u8>)>> {
        let mut sql = Sql::new("SELECT expires_at, memory_keys FROM signature_nonce_batches WHERE expires_at > ");
        sql.int(now_ms());
        self.fetch_all(&sql, |row| Ok((row.get("expires_at")?, row.get("memory_keys")?))).await
    }

    /// Nonces that have not expired in the table of one row per nonce, for loading at start: on
    /// SQLite, the copy written before migration 15.
    pub async fn live_nonces(&self) -> StoreResult<Vec<(String, String, i64)>> {
        let mut sql = Sql::new("SELECT access_key_id, nonce, expires_at FROM signature_nonces WHERE expires_at > ");
        sql.int(now_ms());
        self.fetch_all(&sql, |row| Ok((row.get("access_key_id")?, row.get("nonce")?, row.get("expires_at")?))).await
    }

    /// Forgets expired nonces (rows of the table of one row per nonce, and on SQLite batches, on
    /// PostgreSQL keys); the rows deleted.
    pub async fn prune_nonces(&self) -> StoreResult<u64> {
        let now = now_ms();
        let mut pruned = sql!("DELETE FROM signature_nonces WHERE expires_at <= $1", now).execute(self.writer()).await?;
        pruned += match self.dialect() {
            Dialect::Sqlite => sql!("DELETE FROM signature_nonce_batches WHERE expires_at <= $1", now),
            Dialect::Postgres => sql!("DELETE FROM signature_nonce_keys WHERE expires_at <= $1", now),
        }
        .execute(self.writer())
        .await?;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{now_ms, testing};

    #[tokio::test]
    async fn sqlite_keeps_live_nonce_batches_and_prunes_expired_ones() {
        let (store, _dir) = testing::sqlite().await;
        let later = now_ms() + 60_000;
        store.record_nonce_batch(later, &[7; 16 * 120]).await.unwrap();
        store.record_nonce_batch(now_ms() - 1, &[8; 16]).await.unwrap();
        assert_eq!(
            store.live_nonce_batches().await.unwrap(),
            vec![(later, vec![7; 16 * 120])],
            "the live batch, whole; not the expired one"
        );
        assert_eq!(store.prune_nonces().await.unwrap(), 1);
        assert_eq!(store.live_nonce_batches().await.unwrap().len(), 1);
    }
}
