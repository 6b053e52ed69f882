//! Signature nonces recorded for replay protection. On PostgreSQL the table decides (its primary
//! key); on SQLite the database holds a copy of what memory decided, one row per write-behind
//! batch (migration 15).

use sqlx::Row;

use super::sql::{sql, Sql};

use super::{now_ms, Dialect, Store, StoreResult};

impl Store {
    /// Records a batch of nonces `(access key id, nonce, expires_at)` in one statement and one
    /// commit (PostgreSQL); for each, false when it was recorded already and has not expired by
    /// `now` (the caller's clock, ms; a nonce expires at its `expires_at`). The pairs must be
    /// distinct; sorted, so that batches of two nodes lock shared rows in the same order.
    pub async fn record_nonces(&self, batch: &[(&str, &str, i64)], now: i64) -> StoreResult<Vec<bool>> {
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_unstable_by_key(|&i| (batch[i].0, batch[i].1));
        let rows: Vec<_> = order.iter().map(|&i| batch[i]).collect();
        let recorded: std::collections::HashSet<(String, String)> = sql!(
            "INSERT INTO signature_nonces (access_key_id, nonce, expires_at) \
             SELECT n->>0, n->>1, CAST(n->>2 AS BIGINT) FROM json_array_elements(CAST($1 AS JSON)) AS n \
             ON CONFLICT (access_key_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at \
             WHERE signature_nonces.expires_at <= $2 RETURNING access_key_id, nonce",
            serde_json::to_string(&rows).expect("strings and numbers serialize"),
            now
        )
        .query()
        .fetch_all(self.writer())
        .await?
        .iter()
        .map(|row| Ok((row.try_get("access_key_id")?, row.try_get("nonce")?)))
        .collect::<Result<_, sqlx::Error>>()?;
        Ok(batch.iter().map(|(key, nonce, _)| recorded.contains(&(key.to_string(), nonce.to_string()))).collect())
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

    /// Forgets expired nonces (rows, and on SQLite batches); the rows deleted.
    pub async fn prune_nonces(&self) -> StoreResult<u64> {
        let now = now_ms();
        let mut pruned = sql!("DELETE FROM signature_nonces WHERE expires_at <= $1", now).execute(self.writer()).await?;
        if self.dialect() == Dialect::Sqlite {
            pruned += sql!("DELETE FROM signature_nonce_batches WHERE expires_at <= $1", now).execute(self.writer()).await?;
        }
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
