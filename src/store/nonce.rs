//! Signature nonces recorded for replay protection. On PostgreSQL the table decides (its primary
//! key); on SQLite the database holds a copy of what memory decided, one row per write-behind
//! batch (migration 15).

use std::collections::HashSet;
use std::sync::LazyLock;

use sqlx::{AnyConnection, Row};

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
        let recorded = record_keys(&mut conn, bytes, expires_at, keys.len(), now).await;
        match &recorded {
            Err(e) if e.is_transient() => drop(conn),
            _ => own.keep(conn),
        }
        let (fresh, generation) = recorded?;
        self.finish_catalog_reading(reading, generation);
        Ok(match fresh {
            Fresh::All => vec![true; keys.len()],
            Fresh::These(recorded) => {
                let fresh: HashSet<&[u8]> = recorded.chunks_exact(16).collect();
                keys.iter().map(|key| fresh.contains(&key[..])).collect()
            }
        })
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

/// Which keys of a batch were fresh.
enum Fresh {
    /// All of them (no key was recorded before).
    All,
    /// These, laid end to end.
    These(Vec<u8>),
}

/// Inserts `count` keys laid end to end in `bytes` and reads the catalog's change count. A batch
/// of keys never seen (nearly every batch: a key is only seen again when a request is replayed)
/// is a plain insert; only when one of them exists already (the unique violation undoes the
/// whole statement) is the batch written again as an upsert that tells which were fresh and
/// takes over the expired ones. The plain insert spares PostgreSQL the upsert's separate search
/// of the key index for each row before its insert (a fifth of a read's database CPU) and the
/// fresh keys' return.
async fn record_keys(conn: &mut AnyConnection, bytes: Vec<u8>, expires_at: i64, count: usize, now: i64) -> StoreResult<(Fresh, i64)> {
    static INSERT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH inserted AS (INSERT INTO signature_nonce_keys (nonce_key, expires_at) {KEYS}) \
             SELECT ({GENERATION}) AS catalog_generation"
        )
    });
    static UPSERT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH fresh AS (INSERT INTO signature_nonce_keys (nonce_key, expires_at) {KEYS} \
             ON CONFLICT (nonce_key) DO UPDATE SET expires_at = EXCLUDED.expires_at \
             WHERE signature_nonce_keys.expires_at <= $4 RETURNING nonce_key) \
             SELECT COALESCE(string_agg(nonce_key, CAST('' AS BYTEA)), CAST('' AS BYTEA)) AS fresh, ({GENERATION}) AS catalog_generation \
             FROM fresh"
        )
    });
    let inserted = sqlx::query(&INSERT).bind(bytes.as_slice()).bind(expires_at).bind(count as i64).fetch_one(&mut *conn).await;
    match inserted {
        Ok(row) => return Ok((Fresh::All, row.try_get::<i64, _>("catalog_generation")?)),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNIQUE_VIOLATION) => {}
        Err(e) => return Err(e.into()),
    }
    let row = sqlx::query(&UPSERT).bind(bytes).bind(expires_at).bind(count as i64).bind(now).fetch_one(conn).await?;
    Ok((Fresh::These(row.try_get::<Vec<u8>, _>("fresh")?), row.try_get::<i64, _>("catalog_generation")?))
}

/// The rows of a batch's keys, from the bound byte string `$1`, kept until `$2`, `$3` of them.
const KEYS: &str = "SELECT substring($1 FROM i * 16 + 1 FOR 16), $2 FROM generate_series(0, CAST($3 AS INTEGER) - 1) AS i";

/// PostgreSQL's SQLSTATE for a unique violation.
const UNIQUE_VIOLATION: &str = "23505";

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
