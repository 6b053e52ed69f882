//! All persistence. One set of SQL statements serves SQLite (the default, in the data directory)
//! and PostgreSQL (for several nodes); what differs between them is in [`dialect`]. On SQLite,
//! transactions go through a single-connection pool so that they never contend inside the
//! process, single-statement writes commit in groups that take their turn on that connection
//! ([`write`]), and reads run on the calling thread on connections of their own (WAL lets them
//! run alongside; see [`read`]).

pub mod audit;
mod auth_cache;
pub mod campaign;
mod catalog_cache;
pub mod console_session;
pub mod constraint;
pub mod dependency;
mod dialect;
pub mod drift;
pub mod expiry;
mod finished_tasks;
pub mod grant;
pub mod launch_role;
mod lease;
mod migrate;
mod nonce;
mod ops;
pub mod plan;
pub mod portfolio;
pub mod principal;
pub mod product;
pub mod provisioning;
mod read;
pub mod rekey;
pub mod role;
pub mod schedule;
mod sql;
pub mod tag_option;
pub mod template;
pub mod webhook;
mod write;

pub use crate::model::new_id;
pub use catalog_cache::CountMark;
pub use dialect::Dialect;
pub(crate) use lease::Leased;
pub use lease::{Fence, JobTable};
pub use sql::NameFilter;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

use sql::{sql, Sql};

/// How long a statement waits for a connection (or for one to open) before failing as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The cause of a [`StoreError`], from whichever driver raised it.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// The store's errors: the database could not be reached (safe to retry), its storage is full
/// (safe to retry once space is freed), or it failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection-level failure: the database is down, unreachable, restarting or dropped the connection.
    #[error("database unavailable: {0}")]
    Unavailable(Cause),
    /// The database could not write for lack of space (SQLITE_FULL, PostgreSQL's disk_full).
    #[error("database storage full: {0}")]
    Full(Cause),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(Cause),
}

impl StoreError {
    /// Whether the same operation may succeed later without anything changing in the request:
    /// the database was unreachable or out of space.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Full(_))
    }

    /// The same error (its cause as text), for each of the callers that shared one statement.
    pub fn copied(&self) -> StoreError {
        match self {
            StoreError::Unavailable(cause) => StoreError::Unavailable(cause.to_string().into()),
            StoreError::Full(cause) => StoreError::Full(cause.to_string().into()),
            StoreError::Database(cause) => StoreError::Database(cause.to_string().into()),
        }
    }
}

/// What a database error code says about the database, by PostgreSQL SQLSTATE (five characters,
/// often all digits) or SQLite extended result code (a number below 10000).
fn classify(code: &str) -> Option<fn(Cause) -> StoreError> {
    if let Some(sqlite) = code.parse::<i64>().ok().filter(|_| code.len() < 5) {
        // Primary result codes: 13 SQLITE_FULL; 5 BUSY, 6 LOCKED, 10 IOERR, 14 CANTOPEN.
        return match sqlite & 0xff {
            13 => Some(StoreError::Full),
            5 | 6 | 10 | 14 => Some(StoreError::Unavailable),
            _ => None,
        };
    }
    match code {
        "53100" => Some(StoreError::Full),
        // connection exceptions, admin/crash shutdown, cannot connect now, too many connections, out of memory
        _ if code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "53200" => Some(StoreError::Unavailable),
        _ => None,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let class = match &error {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                Some(StoreError::Unavailable as fn(Cause) -> StoreError)
            }
            sqlx::Error::Database(db) => db.code().as_deref().and_then(classify),
            _ => None,
        };
        let error = match class {
            Some(class) => class(error.into()),
            None => StoreError::Database(error.into()),
        };
        if matches!(error, StoreError::Full(_)) {
            write_health::failed();
        }
        error
    }
}

/// Whether the store is failing writes for lack of space: set by the first write that fails so,
/// cleared by a write that succeeds (see [`Store::health`]). One store per process.
mod write_health {
    use std::sync::atomic::{AtomicBool, Ordering};

    static FAILING: AtomicBool = AtomicBool::new(false);

    pub(super) fn failed() {
        FAILING.store(true, Ordering::Relaxed);
    }

    pub(super) fn recovered() {
        FAILING.store(false, Ordering::Relaxed);
    }

    pub(super) fn failing() -> bool {
        FAILING.load(Ordering::Relaxed)
    }
}

/// A write transaction of [`Store::begin`], used as its connection; dropped uncommitted, it
/// rolls back. Within a request, its commit writes the request's audit record with it if no
/// write has yet ([`audit::carried`]).
pub(crate) struct Tx(sqlx::Transaction<'static, sqlx::Any>, Dialect);

impl std::ops::Deref for Tx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Tx {
    /// The database it writes to.
    pub(crate) fn dialect(&self) -> Dialect {
        self.1
    }

    /// Holds `key` until the transaction ends: of the transactions that take one key, one runs
    /// at a time from there on, so a check made after it sees what the others committed.
    /// PostgreSQL takes a transaction-level advisory lock on the key's hash; SQLite runs one
    /// write transaction at a time already.
    pub(crate) async fn hold(&mut self, key: &str) -> StoreResult<()> {
        if self.1 == Dialect::Postgres {
            sql!("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key).execute(&mut *self.0).await?;
        }
        Ok(())
    }

    /// Commits, with the request's audit record when it carries it.
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        let Some(event) = audit::take() else {
            return Ok(self.0.commit().await?);
        };
        let outcome = match event.insert().execute(&mut *self.0).await {
            Ok(_) => self.0.commit().await,
            Err(e) => Err(e),
        };
        audit::settle(event, outcome.is_ok());
        Ok(outcome?)
    }
}

/// The store's health as `/healthz` and `/metrics` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// The database answered a query.
    pub reachable: bool,
    /// Writes fail for lack of space.
    pub writes_failing: bool,
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// The database handle shared by the API and the workers.
#[derive(Clone)]
pub struct Store {
    /// Every write, and PostgreSQL's reads (SQLite's go through `sqlite`).
    pool: AnyPool,
    sqlite: Option<std::sync::Arc<read::SqliteFile>>,
    dialect: Dialect,
    url: std::sync::Arc<str>,
    auth_cache: std::sync::Arc<auth_cache::AuthCache>,
    finished_tasks: std::sync::Arc<finished_tasks::FinishedTasks>,
    catalog_cache: std::sync::Arc<catalog_cache::CatalogCache>,
    /// Group commit of single-statement writes ([`write`]).
    group_commit: std::sync::Arc<write::GroupCommit>,
    /// Where signature nonce batches commit without waiting for the disk (PostgreSQL, [`nonce`]).
    nonce_connection: Option<std::sync::Arc<write::OwnConnection>>,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)?;
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(dialect.pool().1)
            .test_before_acquire(dialect.checks_connections())
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if let Some(setup) = dialect.connection_setup() {
                        conn.execute(setup).await?;
                    }
                    Ok(())
                })
            })
            // A transaction whose COMMIT failed (SQLite rolls back by itself on SQLITE_FULL, so
            // the driver's ROLLBACK fails too) leaves the connection counted inside it, and every
            // later BEGIN on it fails: such a connection is closed instead of reused. The ping
            // lets a rollback queued by a dropped transaction run before the depth is read.
            .after_release(|conn, _| {
                Box::pin(async move {
                    if conn.is_in_transaction() {
                        conn.ping().await?;
                    }
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(options)
            .await?;
        let sqlite = dialect.inline_reader(url)?.map(std::sync::Arc::new);
        let group_commit = std::sync::Arc::new(match &sqlite {
            Some(file) => write::GroupCommit::sqlite(file.path.clone()),
            None => write::GroupCommit::postgres(url),
        });
        let nonce_connection = sqlite.is_none().then(|| std::sync::Arc::new(write::OwnConnection::generic_plans(url)));
        let store = Store {
            pool,
            sqlite,
            dialect,
            url: url.into(),
            auth_cache: Default::default(),
            finished_tasks: Default::default(),
            catalog_cache: Default::default(),
            group_commit,
            nonce_connection,
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    /// The SQLite URL of the default database inside a data directory.
    pub fn sqlite_url(data_dir: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join("servicecatalog.db").display())
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL the store was opened with (for PostgreSQL's LISTEN connection).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Our own connections to the SQLite file, on SQLite.
    fn sqlite_file(&self) -> Option<&read::SqliteFile> {
        self.sqlite.as_deref()
    }

    /// sqlx's pool: every write, and reads on PostgreSQL (SQLite's run inline, [`read`]).
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction ([`Dialect::begin`]).
    pub(crate) async fn begin(&self) -> StoreResult<Tx> {
        Ok(Tx(self.pool.begin_with(self.dialect.begin()).await?, self.dialect))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        self.fetch_count(&Sql::new("SELECT 1")).await?;
        Ok(())
    }

    /// Whether the database answers and takes writes. Writes are tried only while they have been
    /// failing for lack of space (a small upsert of one setting), so that the store recovers its
    /// health as soon as space returns.
    pub async fn health(&self) -> Health {
        let reachable = self.ping().await.is_ok();
        if reachable && write_health::failing() {
            let probe = sql!(
                "INSERT INTO settings (name, value) VALUES ('write_probe', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                now_ms().to_string()
            )
            .query()
            .execute(&self.pool)
            .await;
            if probe.is_ok() {
                write_health::recovered();
            }
        }
        Health { reachable, writes_failing: write_health::failing() }
    }

    /// A stored setting.
    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        self.fetch_value(Sql::new("SELECT value FROM settings WHERE name = ").text(name)).await
    }

    /// Returns the setting `name`, storing `make()` first if it has none (first writer wins).
    pub async fn setting_or_insert(&self, name: &str, make: impl FnOnce() -> String) -> StoreResult<String> {
        sql!("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, make()).execute(&self.pool).await?;
        sql!("SELECT value FROM settings WHERE name = $1", name).one(&self.pool).await
    }
}

/// Milliseconds since the Unix epoch, the store's time unit. Strictly increasing within the
/// process, so rows created in one burst still list in creation order (ties would otherwise be
/// broken by their random ids); the clock runs ahead by at most the burst's length.
pub fn now_ms() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp_millis();
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(now.max(last + 1)))
        .expect("the update closure always returns Some");
    now.max(previous + 1)
}

/// Sort direction of list queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

impl SortOrder {
    /// The SQL keyword.
    pub fn sql(self) -> &'static str {
        match self {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        }
    }
}

/// One page of a list query: 1-based page number and page size.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// 1-based page number.
    pub number: i64,
    /// Items per page.
    pub size: i64,
}

impl Page {
    /// Rows to skip.
    pub fn offset(self) -> i64 {
        (self.number - 1).saturating_mul(self.size)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh store per test: SQLite in a temporary directory, and PostgreSQL in a fresh schema
    //! too when `SERVICECATALOG_TEST_POSTGRES` is set (to the database's URL).
    use std::future::Future;

    use sqlx::{Connection, Executor};

    use super::Store;

    /// Applies migration `version` again (written to run again harmlessly): what it does to rows
    /// written before it.
    pub async fn reapply_migration(store: &Store, version: i64) {
        super::sql!("DELETE FROM schema_migrations WHERE version = $1", version)
            .execute(store.writer())
            .await
            .expect("forget the migration");
        super::migrate::run(store).await.expect("migrate again");
    }

    /// Opens a fresh SQLite store; the directory lives as long as the returned guard.
    pub async fn sqlite() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&Store::sqlite_url(dir.path())).await.expect("open store");
        (store, dir)
    }

    /// Runs `test` on a fresh SQLite store, then, when `SERVICECATALOG_TEST_POSTGRES` is set, on
    /// a fresh PostgreSQL store: in a schema of its own (its connections' search path, so the
    /// migrations run into it), dropped afterwards whether the test passed or not.
    pub async fn each_store<T, F>(test: T)
    where
        T: Fn(Store) -> F + Send + 'static,
        F: Future<Output = ()> + Send,
    {
        let (store, _dir) = sqlite().await;
        test(store).await;
        let Ok(url) = std::env::var("SERVICECATALOG_TEST_POSTGRES") else { return };
        let schema = super::new_id("t").replace('-', "_");
        let mut admin = sqlx::AnyConnection::connect(&url).await.expect("connect to SERVICECATALOG_TEST_POSTGRES");
        admin.execute(&*format!("CREATE SCHEMA {schema}")).await.expect("create the test's schema");
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
        // Spawned, so that a panic comes back here as an error and the schema is dropped all the same.
        let outcome = tokio::spawn(async move {
            let store = Store::open(&url).await.expect("open the store");
            test(store).await
        })
        .await;
        admin.execute(&*format!("DROP SCHEMA {schema} CASCADE")).await.expect("drop the test's schema");
        if let Err(failed) = outcome {
            eprintln!("(the test failed on PostgreSQL)");
            std::panic::resume_unwind(failed.into_panic());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_never_repeat() {
        let times: Vec<i64> = (0..1000).map(|_| now_ms()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn database_error_codes_say_unavailable_or_full() {
        let class = |code: &str| classify(code).map(|class| class("x".into()));
        assert!(matches!(class("13"), Some(StoreError::Full(_))), "SQLITE_FULL");
        assert!(matches!(class("778"), Some(StoreError::Unavailable(_))), "SQLITE_IOERR_WRITE");
        assert!(matches!(class("53100"), Some(StoreError::Full(_))), "PostgreSQL disk_full");
        for code in ["57P01", "57P03", "08006", "53300"] {
            assert!(matches!(class(code), Some(StoreError::Unavailable(_))), "{code}");
        }
        assert!(class("23505").is_none() && class("19").is_none(), "constraint violations are not transient");
    }

    #[tokio::test]
    async fn settings_keep_the_first_value() {
        testing::each_store(|store| async move {
            assert_eq!(store.setting("x").await.unwrap(), None);
            assert_eq!(store.setting_or_insert("x", || "1".into()).await.unwrap(), "1");
            assert_eq!(store.setting_or_insert("x", || "2".into()).await.unwrap(), "1");
        })
        .await;
    }

    #[tokio::test]
    async fn opening_twice_does_not_rerun_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let url = Store::sqlite_url(dir.path());
        Store::open(&url).await.unwrap();
        Store::open(&url).await.unwrap();
    }
}
