//! Replay protection: a signature nonce may be used once per AccessKey within the timestamp
//! window, across restarts and nodes. Nonces expire after twice the window (a request dated at
//! one edge can arrive until the other edge).
//!
//! On PostgreSQL (several nodes) the database decides: one insert per request. On SQLite (one
//! node) memory decides and the database keeps a copy, written behind in batches a few times a
//! second and at shutdown, and loaded at start — so the hot path does not wait for a disk sync.
//! A `kill -9` may forget the nonces of the last batch interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::store::{Dialect, Store, StoreResult};

/// How often remembered nonces are written behind on SQLite.
const WRITE_BEHIND_EVERY: Duration = Duration::from_millis(100);

/// Nonces seen recently, with the time (ms) after which each may be forgotten.
#[derive(Default)]
struct Memory {
    seen: HashMap<String, i64>,
    inserts_since_prune: usize,
}

/// Decides whether a nonce is fresh.
pub struct NonceGuard {
    store: Store,
    memory: Mutex<Memory>,
    unwritten: Mutex<Vec<(String, String, i64)>>,
}

impl NonceGuard {
    /// A guard over the store; on SQLite it loads the nonces that have not expired.
    pub async fn new(store: Store) -> StoreResult<Self> {
        let guard = NonceGuard { store, memory: Mutex::default(), unwritten: Mutex::default() };
        if guard.store.dialect() == Dialect::Sqlite {
            let live = guard.store.live_nonces().await?;
            let mut memory = guard.memory.lock().expect("nonce memory lock");
            for (key, nonce, expires) in live {
                memory.seen.insert(memory_key(&key, &nonce), expires);
            }
        }
        Ok(guard)
    }

    /// Records `nonce` for `access_key_id`; false when it was already used and has not expired.
    pub async fn first_use(&self, access_key_id: &str, nonce: &str, now_ms: i64, keep_ms: i64) -> StoreResult<bool> {
        let expires = now_ms + keep_ms;
        if self.store.dialect() == Dialect::Postgres {
            return self.store.record_nonce(access_key_id, nonce, expires).await;
        }
        let mut memory = self.memory.lock().expect("nonce memory lock");
        memory.inserts_since_prune += 1;
        if memory.inserts_since_prune >= 1024 {
            memory.seen.retain(|_, e| *e > now_ms);
            memory.inserts_since_prune = 0;
        }
        let key = memory_key(access_key_id, nonce);
        if memory.seen.get(&key).is_some_and(|e| *e > now_ms) {
            return Ok(false);
        }
        memory.seen.insert(key, expires);
        self.unwritten.lock().expect("nonce queue lock").push((access_key_id.to_string(), nonce.to_string(), expires));
        Ok(true)
    }

    /// Writes remembered nonces to the database (SQLite).
    pub async fn flush(&self) -> StoreResult<()> {
        let batch = std::mem::take(&mut *self.unwritten.lock().expect("nonce queue lock"));
        if let Err(e) = self.store.record_nonces(&batch).await {
            self.unwritten.lock().expect("nonce queue lock").extend(batch);
            return Err(e);
        }
        Ok(())
    }

    /// Writes behind and prunes expired rows until the process ends.
    pub async fn maintain(&self) {
        let mut tick = tokio::time::interval(WRITE_BEHIND_EVERY);
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            ticks += 1;
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "cannot record signature nonces");
            }
            if ticks.is_multiple_of(600) {
                if let Err(e) = self.store.prune_nonces().await {
                    tracing::warn!(error = %e, "cannot prune signature nonces");
                }
            }
        }
    }
}

fn memory_key(access_key_id: &str, nonce: &str) -> String {
    format!("{access_key_id}\n{nonce}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{now_ms, testing};

    #[tokio::test]
    async fn a_nonce_is_accepted_once_per_key_and_remembered_across_restarts() {
        let (store, _dir) = testing::sqlite().await;
        let now = now_ms();
        let guard = NonceGuard::new(store.clone()).await.unwrap();
        assert!(guard.first_use("AK", "n1", now, 100_000).await.unwrap());
        assert!(!guard.first_use("AK", "n1", now + 50, 100_000).await.unwrap());
        assert!(guard.first_use("AK2", "n1", now + 50, 100_000).await.unwrap());
        assert!(guard.first_use("AK", "short", now, 10).await.unwrap());
        assert!(guard.first_use("AK", "short", now + 11, 10).await.unwrap(), "expired nonces may be reused");
        guard.flush().await.unwrap();
        let restarted = NonceGuard::new(store).await.unwrap();
        assert!(!restarted.first_use("AK", "n1", now_ms(), 100_000).await.unwrap());
    }
}
