//! Pages of the most read catalog listings (`ListPortfolios`, `ListProductsAsEndUser`) kept in
//! memory while the catalog does not change. Triggers (migrations 0016 SQLite, 0017 PostgreSQL)
//! count every change to portfolios, products and their associations in the one-row table
//! `catalog_generation`, whoever makes it. Each listing reads that count — one small statement
//! instead of a join, a sort and the rows — and is answered from memory when the same page was
//! read under the same count; otherwise it reads the page and keeps it under that count. A page
//! is read after its count, so it is never older than the count it is kept under: a change made
//! on any node, or by another process, is in every listing that starts after it committed.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::sql::Sql;
use super::{Store, StoreResult};

/// Pages kept per count before they are all dropped: a bound on memory (a page holds at most 100
/// portfolios or products; the pages read between two changes of a catalog are few in practice).
const MAX_PAGES: usize = 256;

/// Pages read under one count, by statement and binds.
#[derive(Default)]
pub(super) struct CatalogCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    generation: i64,
    pages: HashMap<String, Arc<dyn Any + Send + Sync>>,
}

impl CatalogCache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The page `key` if it was kept under `generation`.
    fn get<T: Send + Sync + 'static>(&self, generation: i64, key: &str) -> Option<Arc<T>> {
        let state = self.state();
        if state.generation != generation {
            return None;
        }
        state.pages.get(key).cloned().and_then(|page| page.downcast().ok())
    }

    /// Keeps `page`, read under `generation`; a later count drops every page of earlier ones,
    /// and a page read under an earlier count than the one kept is not kept.
    fn keep<T: Send + Sync + 'static>(&self, generation: i64, key: String, page: Arc<T>) {
        let mut state = self.state();
        if generation < state.generation {
            return;
        }
        if generation > state.generation || state.pages.len() >= MAX_PAGES {
            *state = State { generation, pages: HashMap::new() };
        }
        state.pages.insert(key, page);
    }
}

impl Store {
    /// The page `select` reads (with `read`), from memory when it was read under the catalog's
    /// current change count.
    pub(super) async fn catalog_page<T, F>(&self, select: &Sql, read: F) -> StoreResult<Arc<T>>
    where
        T: Send + Sync + 'static,
        F: Future<Output = StoreResult<T>>,
    {
        let generation = self.fetch_count(&Sql::new("SELECT generation FROM catalog_generation WHERE id = 1")).await?;
        let key = format!("{select:?}");
        if let Some(page) = self.catalog_cache.get(generation, &key) {
            return Ok(page);
        }
        let page = Arc::new(read.await?);
        self.catalog_cache.keep(generation, key, Arc::clone(&page));
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::portfolio::PortfolioQuery;
    use crate::store::{testing, Page, SortOrder};

    #[test]
    fn a_page_is_served_under_its_count_only_and_a_late_reader_keeps_nothing() {
        let cache = CatalogCache::default();
        cache.keep(3, "a".into(), Arc::new(1u32));
        assert_eq!(cache.get::<u32>(3, "a").as_deref(), Some(&1));
        assert!(cache.get::<u32>(4, "a").is_none(), "a later count");
        assert!(cache.get::<String>(3, "a").is_none(), "another type is a miss");
        cache.keep(2, "b".into(), Arc::new(2u32));
        assert!(cache.get::<u32>(2, "b").is_none() && cache.get::<u32>(3, "a").is_some(), "read under an older count: not kept");
        cache.keep(5, "c".into(), Arc::new(3u32));
        assert!(cache.get::<u32>(5, "a").is_none(), "pages of earlier counts are dropped");
    }

    #[tokio::test]
    async fn a_change_by_any_process_is_in_the_next_listing() {
        testing::each_store(|store| async move {
            let other = Store::open(store.url()).await.unwrap();
            let all = Page { number: 1, size: 100 };
            let names = |store: Store| async move {
                let page = store.list_portfolios(&PortfolioQuery::default(), SortOrder::Asc, all).await.unwrap();
                page.0.iter().map(|p| p.portfolio_name.clone()).collect::<Vec<_>>()
            };
            assert!(names(store.clone()).await.is_empty());
            let first = store.list_portfolios(&PortfolioQuery::default(), SortOrder::Asc, all).await.unwrap();
            let again = store.list_portfolios(&PortfolioQuery::default(), SortOrder::Asc, all).await.unwrap();
            assert!(Arc::ptr_eq(&first, &again), "unchanged: from memory");
            sqlx::query("INSERT INTO portfolios (portfolio_id, portfolio_name, provider_name, description, created_at, updated_at) VALUES ('port-x', 'x', 'p', '', 1, 1)")
                .execute(other.writer())
                .await
                .unwrap();
            assert_eq!(names(store.clone()).await, ["x"], "written by another process");
            sqlx::query("UPDATE portfolios SET portfolio_name = 'y'").execute(other.writer()).await.unwrap();
            assert_eq!(names(store).await, ["y"]);
        })
        .await;
    }
}
