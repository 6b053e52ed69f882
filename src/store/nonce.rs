//! Signature nonces recorded for replay protection.

use super::sql::Sql;
use super::{now_ms, Store, StoreResult};

impl Store {
    /// Records a nonce; false when it was recorded already and has not expired.
    pub async fn record_nonce(&self, access_key_id: &str, nonce: &str, expires_at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO signature_nonces (access_key_id, nonce, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (access_key_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at \
             WHERE signature_nonces.expires_at < $4",
        )
        .bind(access_key_id)
        .bind(nonce)
        .bind(expires_at)
        .bind(now_ms())
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records many nonces at once (already checked elsewhere), in one transaction.
    pub async fn record_nonces(&self, nonces: &[(String, String, i64)]) -> StoreResult<()> {
        if nonces.is_empty() {
            return Ok(());
        }
        /// Rows per INSERT: sqlx resolves each `$N` by a linear search of the statement's
        /// parameters, quadratic in their number (300 rows cost more than six times 50).
        const ROWS: usize = 50;
        let mut tx = self.begin().await?;
        for chunk in nonces.chunks(ROWS) {
            let mut sql = Sql::new("INSERT INTO signature_nonces (access_key_id, nonce, expires_at) VALUES ");
            for (i, (key, nonce, expires)) in chunk.iter().enumerate() {
                sql.push(if i == 0 { "(" } else { ", (" }).text(key.clone()).push(", ").text(nonce.clone()).push(", ").int(*expires).push(")");
            }
            sql.push(" ON CONFLICT (access_key_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at");
            sql.query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Nonces that have not expired, for loading at start.
    pub async fn live_nonces(&self) -> StoreResult<Vec<(String, String, i64)>> {
        let mut sql = Sql::new("SELECT access_key_id, nonce, expires_at FROM signature_nonces WHERE expires_at > ");
        sql.int(now_ms());
        self.fetch_all(&sql, |row| Ok((row.get("access_key_id")?, row.get("nonce")?, row.get("expires_at")?))).await
    }

    /// Forgets expired nonces.
    pub async fn prune_nonces(&self) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM signature_nonces WHERE expires_at <= $1").bind(now_ms()).execute(self.writer()).await?.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{now_ms, testing};

    #[tokio::test]
    async fn a_nonce_is_recorded_once_until_it_expires() {
        let (store, _dir) = testing::sqlite().await;
        let later = now_ms() + 60_000;
        assert!(store.record_nonce("AK", "n", later).await.unwrap());
        assert!(!store.record_nonce("AK", "n", later).await.unwrap());
        assert!(store.record_nonce("AK", "expired", now_ms() - 1).await.unwrap());
        assert!(store.record_nonce("AK", "expired", later).await.unwrap(), "an expired nonce may be reused");
        store.record_nonces(&[("AK".into(), "b1".into(), later), ("AK".into(), "n".into(), later)]).await.unwrap();
        assert_eq!(store.live_nonces().await.unwrap().len(), 3);
    }
}
