//! Pages of the most read catalog listings (`ListPortfolios`, `ListProductsAsEndUser`) kept in
//! memory while the catalog does not change. Triggers (migrations 0016 SQLite, 0017 PostgreSQL)
//! count every change to portfolios, products and their associations in the one-row table
//! `catalog_generation`, whoever makes it. Each listing reads that count — one small statement
//! instead of a join, a sort and the rows — and is answered from memory when the same page was
//! read under the same count; otherwise it reads the page and keeps it under that count. A page
//! is read after its count, so it is never older than the count it is kept under: a change made
//! on any node, or by another process, is in every listing that starts after it committed.
//!
//! On PostgreSQL the count is a round trip, so listings that ask at the same time share one
//! reading ([`SharedCount`]): each waits for a reading that began after it asked — the one under
//! way may have begun before, so it waits for the next — which keeps the guarantee above while
//! a burst of listings costs one statement. An API request asks when it arrives
//! ([`Store::since`]), and the nonce batch that admits it reads the count too
//! ([`Store::record_nonce_keys`]): so its listing finds a reading begun after it arrived already
//! done, and costs no statement of its own. A change committed before the request arrived is
//! in its answer.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::sql::Sql;
use super::{Dialect, Store, StoreError, StoreResult};

/// Pages kept per count before they are all dropped: a bound on memory (a page holds at most 100
/// portfolios or products; the pages read between two changes of a catalog are few in practice).
const MAX_PAGES: usize = 256;

/// Reads the count.
pub(super) const GENERATION: &str = "SELECT generation FROM catalog_generation WHERE id = 1";

tokio::task_local! {
    /// The number of the last reading begun when the request being served arrived ([`Store::since`]).
    static ARRIVED: u64;
}

/// Where a request stands among the readings of the count: its listings may use any reading
/// begun after it.
#[derive(Debug, Clone, Copy)]
pub struct CountMark(u64);

/// Pages read under one count, by statement and binds.
#[derive(Default)]
pub(super) struct CatalogCache {
    state: Mutex<State>,
    count: SharedCount,
}

/// Readings of the count shared by the listings waiting at the same time (PostgreSQL).
#[derive(Default)]
struct SharedCount {
    readings: Mutex<Readings>,
    finished: Notify,
}

/// Readings are numbered from 1 in the order they begin.
#[derive(Default)]
struct Readings {
    begun: u64,
    under_way: bool,
    /// The number and outcome of the last reading that finished.
    last: Option<(u64, StoreResult<i64>)>,
}

#[derive(Default)]
struct State {
    generation: i64,
    pages: HashMap<String, Arc<dyn Any + Send + Sync>>,
}

impl SharedCount {
    fn lock(&self) -> std::sync::MutexGuard<'_, Readings> {
        self.readings.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Numbers a reading that begins now.
    fn begin(readings: &mut Readings) -> u64 {
        readings.begun += 1;
        readings.begun
    }

    /// Records the outcome of reading `number` unless a later one finished already; then wake the waiters.
    fn record(readings: &mut Readings, number: u64, outcome: StoreResult<i64>) {
        if readings.last.as_ref().is_none_or(|(last, _)| *last < number) {
            readings.last = Some((number, outcome));
        }
    }
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
    /// The readings of the catalog's count begun so far: the mark of a request arriving now.
    /// SQLite reads the count inline and never shares a reading: no mark, no lock.
    pub fn catalog_count_mark(&self) -> CountMark {
        match self.dialect() {
            Dialect::Sqlite => CountMark(0),
            Dialect::Postgres => CountMark(self.catalog_cache.count.lock().begun),
        }
    }

    /// Runs `work`, a request that arrived at `mark`: its listings may use a reading of the
    /// catalog's count begun since then instead of one begun when they ask.
    pub async fn since<F: Future>(mark: CountMark, work: F) -> F::Output {
        ARRIVED.scope(mark.0, work).await
    }

    /// Numbers a reading of the catalog's count made by another statement that begins now
    /// (PostgreSQL's nonce batches); report it with [`Store::finish_catalog_reading`].
    pub(super) fn begin_catalog_reading(&self) -> u64 {
        SharedCount::begin(&mut self.catalog_cache.count.lock())
    }

    /// The count that reading `number` found.
    pub(super) fn finish_catalog_reading(&self, number: u64, generation: i64) {
        let shared = &self.catalog_cache.count;
        SharedCount::record(&mut shared.lock(), number, Ok(generation));
        shared.finished.notify_waiters();
    }

    /// The catalog's change count, read after this call began, or after the request it serves
    /// arrived ([`Store::since`]); shared with the calls waiting at the same time on PostgreSQL.
    async fn catalog_generation(&self) -> StoreResult<i64> {
        if self.dialect() == Dialect::Sqlite {
            return self.fetch_count(&Sql::new(GENERATION)).await;
        }
        let shared = &self.catalog_cache.count;
        let needed = ARRIVED.try_with(|arrived| *arrived).unwrap_or_else(|_| shared.lock().begun) + 1;
        loop {
            let finished = shared.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            {
                let mut readings = shared.lock();
                match &readings.last {
                    Some((number, outcome)) if *number >= needed => return outcome.as_ref().copied().map_err(StoreError::copied),
                    _ => {}
                }
                if !readings.under_way {
                    readings.under_way = true;
                    let (number, store) = (SharedCount::begin(&mut readings), self.clone());
                    // A task of its own, so that a listing dropped while it reads (its client
                    // gone) does not leave the others waiting.
                    tokio::spawn(async move {
                        let outcome = store.fetch_count(&Sql::new(GENERATION)).await;
                        let shared = &store.catalog_cache.count;
                        let mut readings = shared.lock();
                        readings.under_way = false;
                        SharedCount::record(&mut readings, number, outcome);
                        drop(readings);
                        shared.finished.notify_waiters();
                    });
                }
            }
            finished.await;
        }
    }

    /// The page `select` reads (with `read`), from memory when it was read under the catalog's
    /// current change count.
    pub(super) async fn catalog_page<T, F>(&self, select: &Sql, read: F) -> StoreResult<Arc<T>>
    where
        T: Send + Sync + 'static,
        F: Future<Output = StoreResult<T>>,
    {
        let generation = self.catalog_generation().await?;
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
            assert_eq!(names(store.clone()).await, ["y"]);
            // Listings started together share readings of the count (PostgreSQL): every one
            // started after a change sees it, whichever reading it shared.
            for round in 0..5 {
                let name = format!("z{round}");
                sqlx::query("UPDATE portfolios SET portfolio_name = $1").bind(&name).execute(other.writer()).await.unwrap();
                let listings: Vec<_> = (0..20).map(|_| tokio::spawn(names(store.clone()))).collect();
                for listing in listings {
                    assert_eq!(listing.await.unwrap(), [name.as_str()]);
                }
            }
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_lists_from_its_nonce_batchs_reading_and_sees_what_committed_before_it_arrived() {
        testing::each_store(|store| async move {
            if store.dialect() == Dialect::Sqlite {
                return; // SQLite reads the count inline
            }
            let other = Store::open(store.url()).await.unwrap();
            let all = Page { number: 1, size: 100 };
            assert!(store.list_portfolios(&PortfolioQuery::default(), SortOrder::Asc, all).await.unwrap().0.is_empty());
            sqlx::query("INSERT INTO portfolios (portfolio_id, portfolio_name, provider_name, description, created_at, updated_at) VALUES ('port-x', 'x', 'p', '', 1, 1)")
                .execute(other.writer())
                .await
                .unwrap();
            let arrived = store.catalog_count_mark();
            assert_eq!(store.record_nonce_keys(&[[7; 16]], crate::store::now_ms() + 60_000, crate::store::now_ms()).await.unwrap(), [true]);
            let after_batch = store.catalog_count_mark();
            let listed = Store::since(arrived, store.list_portfolios(&PortfolioQuery::default(), SortOrder::Asc, all)).await.unwrap();
            assert_eq!(listed.0.iter().map(|p| p.portfolio_name.as_str()).collect::<Vec<_>>(), ["x"], "committed before the request arrived");
            assert_eq!(store.catalog_count_mark().0, after_batch.0, "no reading of its own: the batch's served");
            // Marked after the batch, a listing reads the count itself.
            Store::since(after_batch, store.list_portfolios(&PortfolioQuery::default(), SortOrder::Asc, all)).await.unwrap();
            assert_eq!(store.catalog_count_mark().0, after_batch.0 + 1);
        })
        .await;
    }
}
