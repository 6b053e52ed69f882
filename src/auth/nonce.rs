//! Replay protection: a signature nonce may be used once per AccessKey within the timestamp
//! window, across restarts and nodes. Nonces expire after twice the window (a request dated at
//! one edge can arrive until the other edge).
//!
//! On PostgreSQL (several nodes) the database decides, by group commit: the nonces of the
//! requests that arrive while a batch is being written are written together as the next batch,
//! one statement and one commit, and each request is answered when its batch has committed. So a
//! nonce used on one node is refused on every other. The commit does not wait for the disk; the
//! change a request then makes does, and so makes its nonce durable too
//! ([`Store::record_nonce_keys`]). On SQLite (one
//! node) memory decides and the database keeps a copy, written behind ten times a second and at
//! shutdown as one row per batch (the batch's memory keys end to end), and loaded at start — so
//! the hot path neither waits for a disk sync nor allocates, and the copy costs one insert per
//! batch. A `kill -9` may forget the nonces of the last batch interval.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::store::{Dialect, Store, StoreError, StoreResult};

/// How often remembered nonces are written behind on SQLite.
const WRITE_BEHIND_EVERY: Duration = Duration::from_millis(100);

/// A nonce in memory: the first 16 bytes of SHA-256 over the AccessKey id and the nonce (a
/// chance collision, refusing a fresh request, is 1 in 2^64 even at billions of nonces). It keeps
/// the memory of 30 minutes of requests at about 60 bytes each instead of two copies of the text.
/// The SQLite copy stores these keys, so their derivation ([`memory_key`]) is a stored format.
type MemoryKey = [u8; 16];

/// Nonces seen recently, with the time (ms) after which each may be forgotten, and the same in
/// order of recording so that forgetting costs O(1) per nonce whatever the map's size (a sweep
/// of the whole map grew with the request rate times the window).
#[derive(Default)]
struct Memory {
    seen: HashMap<MemoryKey, i64>,
    by_expiry: VecDeque<(i64, MemoryKey)>,
}

impl Memory {
    fn remember(&mut self, key: MemoryKey, expires: i64) {
        self.by_expiry.push_back((expires, key));
        self.seen.insert(key, expires);
    }

    /// Forgets the nonces recorded first while they have expired (expiry grows with recording
    /// time, so the rest of the queue is not older).
    fn forget_expired(&mut self, now_ms: i64) {
        while let Some((expires, _)) = self.by_expiry.front() {
            if *expires > now_ms {
                break;
            }
            let (expires, key) = self.by_expiry.pop_front().expect("front exists");
            if self.seen.get(&key) == Some(&expires) {
                self.seen.remove(&key);
            }
        }
    }
}

/// Nonces remembered since the last write behind (SQLite): their keys end to end and the last
/// expiry among them.
#[derive(Default)]
struct Unwritten {
    memory_keys: Vec<u8>,
    expires_at: i64,
}

impl Unwritten {
    fn add(&mut self, keys: &[u8], expires_at: i64) {
        self.memory_keys.extend_from_slice(keys);
        self.expires_at = self.expires_at.max(expires_at);
    }
}

/// A request waiting for its nonce's batch (PostgreSQL).
struct Waiting {
    key: MemoryKey,
    now_ms: i64,
    expires: i64,
    answer: oneshot::Sender<StoreResult<bool>>,
}

/// Batches written at once at most (PostgreSQL). One: the larger batches cost the database less
/// per nonce than the flushes several batches in flight share (alternated runs at c = 64: 1 writer
/// 25,000 GetTask/s and 17 µs of PostgreSQL CPU each, 4 writers 20,000–22,000 and 26 µs).
const WRITERS: usize = 1;

/// The nonces waiting for the next batch, and how many batch writers run (PostgreSQL).
#[derive(Default)]
struct GroupCommit {
    waiting: Vec<Waiting>,
    writers: usize,
}

/// Decides whether a nonce is fresh.
pub struct NonceGuard {
    store: Store,
    memory: Mutex<Memory>,
    unwritten: Mutex<Unwritten>,
    group: Arc<Mutex<GroupCommit>>,
}

impl NonceGuard {
    /// A guard over the store; on SQLite it loads the nonces that have not expired.
    pub async fn new(store: Store) -> StoreResult<Self> {
        let guard = NonceGuard { store, memory: Mutex::default(), unwritten: Mutex::default(), group: Arc::default() };
        if guard.store.dialect() == Dialect::Sqlite {
            let mut live: Vec<(i64, MemoryKey)> =
                guard.store.live_nonces().await?.iter().map(|(key, nonce, expires)| (*expires, memory_key(key, nonce))).collect();
            for (expires, keys) in guard.store.live_nonce_batches().await? {
                live.extend(keys.chunks_exact(16).map(|key| (expires, key.try_into().expect("16-byte chunks"))));
            }
            live.sort_unstable();
            let mut memory = guard.memory.lock().expect("nonce memory lock");
            for (expires, key) in live {
                memory.remember(key, expires);
            }
        }
        Ok(guard)
    }

    /// Records `nonce` for `access_key_id`; false when it was already used and has not expired.
    pub async fn first_use(&self, access_key_id: &str, nonce: &str, now_ms: i64, keep_ms: i64) -> StoreResult<bool> {
        let expires = now_ms + keep_ms;
        if self.store.dialect() == Dialect::Postgres {
            return self.group_commit(memory_key(access_key_id, nonce), now_ms, expires).await;
        }
        let mut memory = self.memory.lock().expect("nonce memory lock");
        memory.forget_expired(now_ms);
        let key = memory_key(access_key_id, nonce);
        if memory.seen.get(&key).is_some_and(|e| *e > now_ms) {
            return Ok(false);
        }
        memory.remember(key, expires);
        self.unwritten.lock().expect("nonce queue lock").add(&key, expires);
        Ok(true)
    }

    /// Queues the nonce for the next batch, starting a batch writer if fewer than [`WRITERS`] run, and waits
    /// for the batch's outcome (PostgreSQL). A writer is a task of its own, so that a request
    /// dropped while it waits (its client gone) does not stop the batch of the others.
    async fn group_commit(&self, key: MemoryKey, now_ms: i64, expires: i64) -> StoreResult<bool> {
        let (answer, outcome) = oneshot::channel();
        let start = {
            let mut group = self.group.lock().expect("nonce group lock");
            group.waiting.push(Waiting { key, now_ms, expires, answer });
            let start = group.writers < WRITERS;
            group.writers += usize::from(start);
            start
        };
        if start {
            tokio::spawn(write_batches(self.store.clone(), Arc::clone(&self.group)));
        }
        outcome.await.unwrap_or_else(|_| Err(StoreError::Database("the nonce batch writer stopped".into())))
    }

    /// Writes remembered nonces to the database (SQLite).
    pub async fn flush(&self) -> StoreResult<()> {
        let batch = std::mem::take(&mut *self.unwritten.lock().expect("nonce queue lock"));
        if batch.memory_keys.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.record_nonce_batch(batch.expires_at, &batch.memory_keys).await {
            // Kept for the next flush.
            self.unwritten.lock().expect("nonce queue lock").add(&batch.memory_keys, batch.expires_at);
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

/// Writes the waiting nonces batch after batch until none is left (PostgreSQL): each batch holds
/// what arrived while the writers were busy.
async fn write_batches(store: Store, group: Arc<Mutex<GroupCommit>>) {
    let _slot = WriterSlot(Arc::clone(&group));
    loop {
        let batch = {
            let mut group = group.lock().expect("nonce group lock");
            if group.waiting.is_empty() {
                group.writers -= 1;
                return;
            }
            std::mem::take(&mut group.waiting)
        };
        write_batch(&store, batch).await;
    }
}

/// A batch writer's place, given back if the writer panics (its batch's requests are answered with
/// an error as their senders drop), so that the next request starts another instead of waiting for
/// a writer that is gone. A writer that ends normally gives it back itself, under the lock.
struct WriterSlot(Arc<Mutex<GroupCommit>>);

impl Drop for WriterSlot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(mut group) = self.0.lock() {
                group.writers -= 1;
            }
        }
    }
}

/// Records one batch and answers its requests. A nonce twice in one batch is written once; the
/// later requests are refused (unless the write fails, which they share).
async fn write_batch(store: &Store, batch: Vec<Waiting>) {
    let mut first: HashMap<MemoryKey, usize> = HashMap::with_capacity(batch.len());
    let mut rows = Vec::with_capacity(batch.len());
    let mut row_of = Vec::with_capacity(batch.len());
    for w in &batch {
        row_of.push(*first.entry(w.key).or_insert_with(|| {
            rows.push(w.key);
            rows.len() - 1
        }));
    }
    // The earliest clock of the batch: a nonce expiring within the batch's spread of arrival
    // times (a few ms) is still refused, never one accepted early. Its keys are kept until the
    // latest expiry among them (a few ms longer for the others).
    let now = batch.iter().map(|w| w.now_ms).min().unwrap_or_default();
    let expires = batch.iter().map(|w| w.expires).max().unwrap_or_default();
    let outcome = store.record_nonce_keys(&rows, expires, now).await;
    let mut answered = vec![false; rows.len()];
    for (w, row) in batch.into_iter().zip(row_of) {
        let answer = match &outcome {
            Ok(fresh) => Ok(fresh[row] && !std::mem::replace(&mut answered[row], true)),
            Err(e) => Err(e.copied()),
        };
        // A request that stopped waiting has nobody to answer.
        let _ = w.answer.send(answer);
    }
}

fn memory_key(access_key_id: &str, nonce: &str) -> MemoryKey {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(access_key_id).chain_update(b"\n").chain_update(nonce).finalize();
    digest[..16].try_into().expect("SHA-256 is longer than 16 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{now_ms, testing};

    #[tokio::test]
    async fn a_nonce_is_accepted_once_per_key_and_remembered_across_restarts() {
        testing::each_store(|store| async move {
            let now = now_ms();
            let guard = NonceGuard::new(store.clone()).await.unwrap();
            assert!(guard.first_use("AK", "n1", now, 100_000).await.unwrap());
            assert!(!guard.first_use("AK", "n1", now + 50, 100_000).await.unwrap());
            assert!(guard.first_use("AK2", "n1", now + 50, 100_000).await.unwrap());
            assert!(guard.first_use("AK", "short", now, 10).await.unwrap());
            assert!(guard.first_use("AK", "short", now + 11, 10).await.unwrap(), "expired nonces may be reused");
            assert!(guard.first_use("AK", "edge", now, 10).await.unwrap());
            assert!(!guard.first_use("AK", "edge", now + 9, 10).await.unwrap());
            assert!(guard.first_use("AK", "edge", now + 10, 10).await.unwrap(), "a nonce expires at its expiry");
            guard.flush().await.unwrap();
            let restarted = NonceGuard::new(store).await.unwrap();
            assert!(!restarted.first_use("AK", "n1", now_ms(), 100_000).await.unwrap());
            assert!(!restarted.first_use("AK2", "n1", now_ms(), 100_000).await.unwrap(), "every key of the batch");
            assert!(restarted.first_use("AK", "n2", now_ms(), 100_000).await.unwrap());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_uses_of_one_nonce_on_two_nodes_are_accepted_once() {
        testing::each_store(|store| async move {
            if store.dialect() == Dialect::Sqlite {
                return; // one node only; memory decides
            }
            let other = Store::open(store.url()).await.unwrap();
            let (a, b) = (Arc::new(NonceGuard::new(store).await.unwrap()), Arc::new(NonceGuard::new(other).await.unwrap()));
            let now = now_ms();
            // Batches in flight on both nodes at once: each node gets fresh nonces and the
            // same shared ones, some twice within one batch.
            let uses: Vec<_> = (0..200)
                .map(|i| {
                    let guard = Arc::clone(if i % 2 == 0 { &a } else { &b });
                    let nonce = if i % 4 < 2 { format!("shared-{}", i / 8) } else { format!("fresh-{i}") };
                    tokio::spawn(async move { (nonce.clone(), guard.first_use("AK", &nonce, now, 100_000).await.unwrap()) })
                })
                .collect();
            let mut accepted: HashMap<String, usize> = HashMap::new();
            for used in uses {
                let (nonce, fresh) = used.await.unwrap();
                *accepted.entry(nonce).or_default() += usize::from(fresh);
            }
            assert_eq!(accepted.len(), 25 + 100);
            assert!(accepted.values().all(|n| *n == 1), "every nonce accepted exactly once: {accepted:?}");
            assert!(!a.first_use("AK", "fresh-3", now + 1, 100_000).await.unwrap(), "b's nonce is refused on a");
        })
        .await;
    }

    #[tokio::test]
    async fn nonces_recorded_a_row_each_before_are_still_remembered() {
        testing::each_store(|store| async move {
            sqlx::query("INSERT INTO signature_nonces (access_key_id, nonce, expires_at) VALUES ('AK', 'row', $1)")
                .bind(now_ms() + 100_000)
                .execute(store.writer())
                .await
                .unwrap();
            if store.dialect() == Dialect::Postgres {
                // PostgreSQL's rows of before migration 30 are copied as keys by it.
                testing::reapply_migration(&store, 30).await;
            }
            let guard = NonceGuard::new(store).await.unwrap();
            assert!(!guard.first_use("AK", "row", now_ms(), 100_000).await.unwrap());
            assert!(guard.first_use("AK", "other", now_ms(), 100_000).await.unwrap());
        })
        .await;
    }

    #[test]
    fn expired_nonces_are_forgotten_in_order_and_a_renewed_one_is_kept() {
        let mut memory = Memory::default();
        let (a, b) = (memory_key("AK", "a"), memory_key("AK", "b"));
        memory.remember(a, 10);
        memory.remember(b, 20);
        memory.remember(a, 30);
        memory.forget_expired(15);
        assert_eq!(memory.seen.get(&a), Some(&30), "a's renewal outlives its first expiry");
        assert!(memory.seen.contains_key(&b));
        memory.forget_expired(30);
        assert!(memory.seen.is_empty() && memory.by_expiry.is_empty());
    }
}
