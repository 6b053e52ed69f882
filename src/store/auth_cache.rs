//! What every request reads before it does anything — the owner and sealed secret of its
//! AccessKey, and for end-user actions the portfolios granted to the caller — kept in memory
//! between changes. Triggers (migrations 0013 and 0014) count every change to principals,
//! AccessKeys, role memberships and grants in the one-row table `auth_generation`, whoever makes
//! it: this server, another node, or the `users` and `roles` commands writing the database
//! directly. The cache holds answers read under one count and drops them when the count moves.
//!
//! Reading the count is itself a statement (on SQLite a read transaction and its WAL locks: a
//! tenth of a `GetTask`), so it is re-read at most every [`RECHECK`], and at once after this
//! process changed what the count covers ([`AuthCache::forget`] in every such store method).
//! A change made through this server is therefore in force for the next request; one made by
//! another process or node within [`RECHECK`] — the `users` and `roles` commands wait that long
//! ([`Store::settle_auth_changes`]) so that it is in force when they return.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::principal::Principal;
use super::sql::Sql;
use super::{Store, StoreResult};

/// How long a count read from the database is trusted without reading it again.
pub const RECHECK: Duration = Duration::from_millis(100);

/// Entries kept per map before it is emptied (the maps hold what exists, so this only bounds
/// memory if a store holds more principals than any installation should).
const MAX_ENTRIES: usize = 100_000;

/// Cached answers and the `auth_generation` count they were read under.
#[derive(Default)]
pub(super) struct AuthCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by [`AuthCache::forget`]: a lookup that began before cannot use or fill the cache.
    epoch: u64,
    generation: Option<i64>,
    checked: Option<Instant>,
    keys: HashMap<String, (Principal, String)>,
    grants: HashMap<String, Arc<[String]>>,
}

/// The epoch and count a lookup runs under.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    epoch: u64,
    generation: i64,
}

impl State {
    fn valid(&self, ticket: Ticket) -> bool {
        self.epoch == ticket.epoch && self.generation == Some(ticket.generation)
    }
}

fn remember<V>(map: &mut HashMap<String, V>, key: &str, value: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key.to_string(), value);
}

impl AuthCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A ticket without reading the count, if it was read less than [`RECHECK`] ago and nothing
    /// was forgotten since; otherwise the epoch to read it under.
    fn fresh(&self, now: Instant) -> Result<Ticket, u64> {
        let state = self.state();
        match (state.generation, state.checked) {
            (Some(generation), Some(checked)) if now.duration_since(checked) < RECHECK => Ok(Ticket { epoch: state.epoch, generation }),
            _ => Err(state.epoch),
        }
    }

    /// Records a count read under `epoch` at `now`, dropping the answers of another count.
    fn checked(&self, epoch: u64, generation: i64, now: Instant) -> Ticket {
        let mut state = self.state();
        if state.epoch == epoch {
            if state.generation != Some(generation) {
                *state = State { epoch, generation: Some(generation), ..State::default() };
            }
            state.checked = Some(now);
        }
        Ticket { epoch, generation }
    }

    /// This process changed principals, keys, memberships or grants: the next lookup reads the
    /// count again, and lookups under way neither use nor fill the cache.
    pub(super) fn forget(&self) {
        let mut state = self.state();
        state.epoch += 1;
        state.checked = None;
    }

    fn key(&self, ticket: Ticket, access_key_id: &str) -> Option<(Principal, String)> {
        let state = self.state();
        state.valid(ticket).then(|| state.keys.get(access_key_id).cloned()).flatten()
    }

    fn put_key(&self, ticket: Ticket, access_key_id: &str, found: &(Principal, String)) {
        let mut state = self.state();
        if state.valid(ticket) {
            remember(&mut state.keys, access_key_id, found.clone());
        }
    }

    fn grants(&self, ticket: Ticket, principal_id: &str) -> Option<Arc<[String]>> {
        let state = self.state();
        state.valid(ticket).then(|| state.grants.get(principal_id).cloned()).flatten()
    }

    fn put_grants(&self, ticket: Ticket, principal_id: &str, portfolios: &Arc<[String]>) {
        let mut state = self.state();
        if state.valid(ticket) {
            remember(&mut state.grants, principal_id, portfolios.clone());
        }
    }
}

impl Store {
    /// The ticket a lookup runs under: the count of changes to principals, keys, memberships and
    /// grants, read from the database when the last reading is older than [`RECHECK`].
    async fn auth_ticket(&self) -> StoreResult<Ticket> {
        let now = Instant::now();
        match self.auth_cache.fresh(now) {
            Ok(ticket) => Ok(ticket),
            Err(epoch) => {
                let generation = self.fetch_count(&Sql::new("SELECT generation FROM auth_generation WHERE id = 1")).await?;
                Ok(self.auth_cache.checked(epoch, generation, now))
            }
        }
    }

    /// Commits a transaction that changed principals, keys, memberships or grants, and makes this
    /// process's next lookup see it.
    pub(super) async fn commit_auth_change(&self, tx: super::Tx) -> StoreResult<()> {
        tx.commit().await?;
        self.auth_cache.forget();
        Ok(())
    }

    /// Waits until every server sharing this database has re-read the change count, so that a
    /// change this process made (a deleted user, a revoked grant) is in force everywhere.
    pub async fn settle_auth_changes(&self) {
        tokio::time::sleep(RECHECK).await;
    }

    /// The principal owning `access_key_id` and the key's sealed secret.
    pub async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<(Principal, String)>> {
        let ticket = self.auth_ticket().await?;
        if let Some(hit) = self.auth_cache.key(ticket, access_key_id) {
            return Ok(Some(hit));
        }
        let found = self.read_access_key(access_key_id).await?;
        if let Some(found) = &found {
            self.auth_cache.put_key(ticket, access_key_id, found);
        }
        Ok(found)
    }

    /// Ids of the portfolios granted to `principal` (a user: directly, through its roles or by a
    /// pattern; a role: directly or by a pattern on its name), sorted and without duplicates.
    pub async fn portfolios_granted_to(&self, principal: &Principal) -> StoreResult<Arc<[String]>> {
        let ticket = self.auth_ticket().await?;
        if let Some(hit) = self.auth_cache.grants(ticket, &principal.principal_id) {
            return Ok(hit);
        }
        let granted: Arc<[String]> = self.read_portfolios_granted_to(principal).await?.into();
        self.auth_cache.put_grants(ticket, &principal.principal_id, &granted);
        Ok(granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn a_change_by_this_process_is_seen_at_once_and_by_another_within_the_recheck() {
        testing::each_store(|store| async move {
            // Another process: its own connections to the same file, and its own cache.
            let other = Store::open(store.url()).await.unwrap();
            store.create_user("alice", false, "AK-alice", "sealed-1").await.unwrap().unwrap();
            let (alice, sealed) = other.access_key("AK-alice").await.unwrap().unwrap();
            assert_eq!((alice.name.as_str(), sealed.as_str()), ("alice", "sealed-1"));
            assert!(other.portfolios_granted_to(&alice).await.unwrap().is_empty());

            let portfolio = "port-shared".to_string();
            sqlx::query("INSERT INTO portfolios (portfolio_id, portfolio_name, provider_name, description, created_at, updated_at) VALUES ($1, $1, 'p', '', 1, 1)")
                .bind(&portfolio)
                .execute(store.writer())
                .await
                .unwrap();
            let grant = crate::store::grant::Grant { principal_type: "RamUser".into(), principal_key: "ali*".into(), is_pattern: true };
            assert!(store.insert_grant(&portfolio, &grant).await.unwrap());
            assert_eq!(&*store.portfolios_granted_to(&alice).await.unwrap(), [portfolio.as_str()], "this process sees its change at once");
            store.settle_auth_changes().await;
            assert_eq!(&*other.portfolios_granted_to(&alice).await.unwrap(), [portfolio.as_str()], "another sees it after the recheck");

            assert!(store.delete_user("alice").await.unwrap());
            assert!(store.access_key("AK-alice").await.unwrap().is_none(), "a deleted user's key is refused at once");
            store.settle_auth_changes().await;
            assert!(other.access_key("AK-alice").await.unwrap().is_none(), "and by another process after the recheck");
        })
        .await;
    }

    #[test]
    fn a_lookup_begun_before_a_change_neither_uses_nor_fills_the_cache() {
        let cache = AuthCache::default();
        let principal =
            Principal { principal_id: "1".into(), principal_type: "RamUser".into(), name: "a".into(), is_admin: false, created_at: 0 };
        let now = Instant::now();
        let epoch = cache.fresh(now).unwrap_err();
        let before = cache.checked(epoch, 1, now);
        cache.put_key(before, "AK", &(principal.clone(), "s".into()));
        assert_eq!(cache.key(cache.fresh(now).unwrap(), "AK").unwrap().1, "s");
        assert!(cache.fresh(now + RECHECK).is_err(), "the count is read again after RECHECK");

        cache.forget();
        assert!(cache.key(before, "AK").is_none(), "a ticket from before the change is refused");
        cache.put_key(before, "AK", &(principal, "stale".into()));
        let epoch = cache.fresh(now).unwrap_err();
        let same = cache.checked(epoch, 1, now);
        assert_eq!(cache.key(same, "AK").unwrap().1, "s", "the same count keeps its answers");
        let moved = cache.checked(epoch, 2, now);
        assert!(cache.key(moved, "AK").is_none(), "another count drops them");
    }
}
