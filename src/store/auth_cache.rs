//! What every request reads before it does anything — the owner and sealed secret of its
//! AccessKey, and for end-user actions the portfolios granted to the caller — kept in memory
//! between changes. Triggers (migrations 0013 and 0014) count every change to principals,
//! AccessKeys, role memberships and grants in the one-row table `auth_generation`, whoever makes
//! it: this server, another node, or the `users` and `roles` commands writing the database
//! directly. Each lookup reads the count first; when it differs from the count the cached answers
//! were read under, they are dropped. So a revoked key or grant is refused by the next request,
//! as without the cache, and an answer is never older than the count read before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::principal::Principal;
use super::sql::Sql;
use super::{Store, StoreResult};

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
    generation: Option<i64>,
    keys: HashMap<String, (Principal, String)>,
    grants: HashMap<String, Arc<[String]>>,
}

impl State {
    /// Drops everything if it was read under another count than `generation`.
    fn at(&mut self, generation: i64) -> &mut State {
        if self.generation != Some(generation) {
            *self = State { generation: Some(generation), ..State::default() };
        }
        self
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

    fn key(&self, generation: i64, access_key_id: &str) -> Option<(Principal, String)> {
        self.state().at(generation).keys.get(access_key_id).cloned()
    }

    /// Keeps an answer read after the count `generation` was read, unless the count moved since.
    fn put_key(&self, generation: i64, access_key_id: &str, found: &(Principal, String)) {
        let mut state = self.state();
        if state.generation == Some(generation) {
            remember(&mut state.keys, access_key_id, found.clone());
        }
    }

    fn grants(&self, generation: i64, principal_id: &str) -> Option<Arc<[String]>> {
        self.state().at(generation).grants.get(principal_id).cloned()
    }

    fn put_grants(&self, generation: i64, principal_id: &str, portfolios: &Arc<[String]>) {
        let mut state = self.state();
        if state.generation == Some(generation) {
            remember(&mut state.grants, principal_id, portfolios.clone());
        }
    }
}

impl Store {
    /// The count of changes to principals, keys, memberships and grants.
    async fn auth_generation(&self) -> StoreResult<i64> {
        self.fetch_count(&Sql::new("SELECT generation FROM auth_generation WHERE id = 1")).await
    }

    /// The principal owning `access_key_id` and the key's sealed secret.
    pub async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<(Principal, String)>> {
        let generation = self.auth_generation().await?;
        if let Some(hit) = self.auth_cache.key(generation, access_key_id) {
            return Ok(Some(hit));
        }
        let found = self.read_access_key(access_key_id).await?;
        if let Some(found) = &found {
            self.auth_cache.put_key(generation, access_key_id, found);
        }
        Ok(found)
    }

    /// Ids of the portfolios granted to `principal` (a user: directly, through its roles or by a
    /// pattern; a role: directly or by a pattern on its name), sorted and without duplicates.
    pub async fn portfolios_granted_to(&self, principal: &Principal) -> StoreResult<Arc<[String]>> {
        let generation = self.auth_generation().await?;
        if let Some(hit) = self.auth_cache.grants(generation, &principal.principal_id) {
            return Ok(hit);
        }
        let granted: Arc<[String]> = self.read_portfolios_granted_to(principal).await?.into();
        self.auth_cache.put_grants(generation, &principal.principal_id, &granted);
        Ok(granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn a_change_from_another_process_is_seen_by_the_next_lookup() {
        let (store, _dir) = testing::sqlite().await;
        // Another process: its own connections to the same file, and its own cache.
        let other = Store::open(store.url()).await.unwrap();
        other.create_user("alice", false, "AK-alice", "sealed-1").await.unwrap().unwrap();
        let (alice, sealed) = store.access_key("AK-alice").await.unwrap().unwrap();
        assert_eq!((alice.name.as_str(), sealed.as_str()), ("alice", "sealed-1"));
        assert!(store.portfolios_granted_to(&alice).await.unwrap().is_empty());

        let portfolio = "port-shared".to_string();
        sqlx::query("INSERT INTO portfolios (portfolio_id, portfolio_name, provider_name, description, created_at, updated_at) VALUES ($1, $1, 'p', '', 1, 1)")
            .bind(&portfolio)
            .execute(other.writer())
            .await
            .unwrap();
        let grant = crate::store::grant::Grant { principal_type: "RamUser".into(), principal_key: "ali*".into(), is_pattern: true };
        assert!(other.insert_grant(&portfolio, &grant).await.unwrap());
        assert_eq!(&*store.portfolios_granted_to(&alice).await.unwrap(), [portfolio.as_str()], "a new grant is seen at once");

        assert!(other.delete_user("alice").await.unwrap());
        assert!(store.access_key("AK-alice").await.unwrap().is_none(), "a deleted user's key is refused at once");
    }

    #[tokio::test]
    async fn an_answer_read_under_an_older_count_is_not_kept() {
        let cache = AuthCache::default();
        let principal = Principal {
            principal_id: "1".into(),
            principal_type: "RamUser".into(),
            name: "a".into(),
            is_admin: false,
            created_at: 0,
        };
        assert!(cache.key(1, "AK").is_none());
        cache.put_key(1, "AK", &(principal.clone(), "s".into()));
        assert_eq!(cache.key(1, "AK").unwrap().1, "s");
        // The count moved while an answer was being read under the old one.
        assert!(cache.key(2, "AK").is_none(), "a new count drops what the old one cached");
        cache.put_key(1, "AK", &(principal, "stale".into()));
        assert!(cache.key(2, "AK").is_none(), "an answer read under count 1 is not kept under count 2");
    }
}
