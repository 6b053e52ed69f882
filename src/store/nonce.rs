//! Signature nonces recorded for replay protection. On PostgreSQL the table decides (its primary
//! key); on SQLite it is the copy of what memory decided (no key: rows append, migration 12).

use super::sql::Sql;
use std::sync::Arc;

use super::{now_ms, Store, StoreError, StoreResult};

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

    /// Appends many nonces at once (SQLite's copy of what memory decided), in one transaction,
    /// on a blocking thread through a prepared statement (store::read::SqliteFile::append).
    pub async fn record_nonces(&self, nonces: Arc<[(String, String, i64)]>) -> StoreResult<()> {
        if nonces.is_empty() {
            return Ok(());
        }
        let Some(file) = self.sqlite.clone() else {
            return Err(StoreError::Database("the nonce copy is kept on SQLite only".into()));
        };
        tokio::task::spawn_blocking(move || {
            file.append("INSERT INTO signature_nonces (access_key_id, nonce, expires_at) VALUES (?1, ?2, ?3)", &nonces, |statement, (key, nonce, expires)| {
                statement.raw_bind_parameter(1, key.as_str())?;
                statement.raw_bind_parameter(2, nonce.as_str())?;
                statement.raw_bind_parameter(3, expires)
            })
        })
        .await
        .map_err(|e| StoreError::Database(e.into()))?
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
        store.record_nonces(batch.into()).await.unwrap();
        store.record_nonces(vec![("AK".into(), "old".into(), now_ms() - 1)].into()).await.unwrap();
        assert_eq!(store.live_nonces().await.unwrap().len(), 120, "all of the batch, not the expired one");
        assert_eq!(store.prune_nonces().await.unwrap(), 1);
    }
}
