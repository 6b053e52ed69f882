//! Signature nonces recorded for replay protection. On PostgreSQL the table decides (its primary
//! key); on SQLite it is the copy of what memory decided (no key: rows append, migration 12).

use super::sql::Sql;
use super::{now_ms, Store, StoreResult};

impl Store {
    /// Records a nonce; false when it was recorded already and has not expired (PostgreSQL).
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

    /// Appends many nonces at once (SQLite's copy of what memory decided), in one transaction.
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
    async fn sqlite_keeps_a_copy_of_live_nonces_and_prunes_expired_ones() {
        let (store, _dir) = testing::sqlite().await;
        let later = now_ms() + 60_000;
        let batch: Vec<(String, String, i64)> = (0..120).map(|i| ("AK".into(), format!("n{i}"), later)).collect();
        store.record_nonces(&batch).await.unwrap();
        store.record_nonces(&[("AK".into(), "old".into(), now_ms() - 1)]).await.unwrap();
        assert_eq!(store.live_nonces().await.unwrap().len(), 120, "all of a batch larger than one INSERT, not the expired one");
        assert_eq!(store.prune_nonces().await.unwrap(), 1);
    }
}
