//! Reads. Every `SELECT` outside a transaction goes through here: on PostgreSQL through sqlx's
//! pool, on SQLite on the calling thread through rusqlite. sqlx runs each SQLite connection on a
//! thread of its own and hands every statement and every row across threads; on a 2-core machine
//! those hand-offs were most of an API call's CPU (docs/benchmarks.md). A read from SQLite's page
//! cache takes microseconds, so running it where the request already is costs less than waking
//! anything. The price: a read that scans (an unindexed filter over a large table) holds its
//! runtime thread for as long as it runs, while the other runtime threads serve. Decoders see one
//! [`Row`] type whichever database answered.

use std::path::PathBuf;
use std::sync::Mutex;

use sqlx::any::AnyRow;

use super::sql::{Bind, Sql};
use super::{Page, Store, StoreError, StoreResult};

/// Idle SQLite read connections kept for reuse (more are opened when threads read at once).
const IDLE_CONNECTIONS: usize = 8;
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 128;

/// One result row, from either database.
pub(crate) enum Row<'r> {
    Any(&'r AnyRow),
    /// A rusqlite row and its statement's column names: rusqlite finds a column by name by asking
    /// SQLite for every column's name on each lookup, a cost quadratic in the columns per row.
    Sqlite(&'r rusqlite::Row<'r>, &'r [String]),
}

/// A column type both databases decode.
pub(crate) trait Column: Sized {
    fn from_any(row: &AnyRow, index: ColumnRef<'_>) -> Result<Self, sqlx::Error>;
    fn from_sqlite(row: &rusqlite::Row<'_>, index: ColumnRef<'_>) -> rusqlite::Result<Self>;
}

/// A column by name or by position.
#[derive(Clone, Copy)]
pub(crate) enum ColumnRef<'a> {
    Name(&'a str),
    Position(usize),
}

impl<T> Column for T
where
    T: for<'d> sqlx::Decode<'d, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql,
{
    fn from_any(row: &AnyRow, index: ColumnRef<'_>) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        match index {
            ColumnRef::Name(name) => row.try_get(name),
            ColumnRef::Position(position) => row.try_get(position),
        }
    }

    fn from_sqlite(row: &rusqlite::Row<'_>, index: ColumnRef<'_>) -> rusqlite::Result<Self> {
        match index {
            ColumnRef::Name(name) => row.get(name),
            ColumnRef::Position(position) => row.get(position),
        }
    }
}

impl Row<'_> {
    /// The column `name`.
    pub(crate) fn get<T: Column>(&self, name: &str) -> StoreResult<T> {
        self.column(ColumnRef::Name(name))
    }

    /// The first column (a `COUNT(*)` or a single selected value).
    pub(crate) fn first<T: Column>(&self) -> StoreResult<T> {
        self.column(ColumnRef::Position(0))
    }

    fn column<T: Column>(&self, index: ColumnRef<'_>) -> StoreResult<T> {
        match self {
            Row::Any(row) => Ok(T::from_any(row, index)?),
            Row::Sqlite(row, names) => {
                let index = match index {
                    ColumnRef::Name(name) => match names.iter().position(|column| column == name) {
                        Some(position) => ColumnRef::Position(position),
                        None => ColumnRef::Name(name),
                    },
                    position => position,
                };
                Ok(T::from_sqlite(row, index)?)
            }
        }
    }
}

/// Read connections of our own to one SQLite file, used on the calling thread.
pub(crate) struct SqliteFile {
    pub(super) path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl SqliteFile {
    /// Reads the file of a `sqlite://PATH[?options]` URL (opened lazily).
    pub(crate) fn new(url: &str) -> anyhow::Result<SqliteFile> {
        let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path.starts_with(":memory:") || rest.contains("mode=memory") {
            anyhow::bail!("an in-memory SQLite database cannot be shared by the server's connections: give a file, sqlite://PATH");
        }
        Ok(SqliteFile { path: PathBuf::from(path), idle: Mutex::new(Vec::new()) })
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = open(&self.path)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    /// Runs `read` on an idle connection (or a new one), then keeps the connection.
    fn with<T>(&self, read: impl FnOnce(&rusqlite::Connection) -> StoreResult<T>) -> StoreResult<T> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let out = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
        out
    }

    /// Calls `each` on every row of `sql`.
    fn rows(&self, sql: &Sql, mut each: impl FnMut(&Row<'_>) -> StoreResult<()>) -> StoreResult<()> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql.as_str())?;
            bind_all(&mut statement, sql)?;
            let names: Vec<String> = statement.column_names().into_iter().map(String::from).collect();
            let mut rows = statement.raw_query();
            while let Some(row) = rows.next()? {
                each(&Row::Sqlite(row, &names))?;
            }
            Ok(())
        })
    }
}

/// A connection of our own to the SQLite file at `path`, with the settings of sqlx's writer
/// ([`super::Dialect`]: lock wait, and full sync for the checkpoint a closing connection may run).
pub(super) fn open(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Binds the values of `sql` to its prepared `statement`.
pub(super) fn bind_all(statement: &mut rusqlite::Statement<'_>, sql: &Sql) -> rusqlite::Result<()> {
    for (i, bind) in sql.binds().iter().enumerate() {
        match bind {
            Bind::Text(text) => statement.raw_bind_parameter(i + 1, text.as_deref())?,
            Bind::Int(int) => statement.raw_bind_parameter(i + 1, int)?,
        }
    }
    Ok(())
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, NotADatabase, SystemIoFailure};
        match error.sqlite_error_code() {
            Some(CannotOpen | DatabaseBusy | DatabaseLocked | NotADatabase | SystemIoFailure) => StoreError::Unavailable(error.into()),
            Some(DiskFull) => {
                super::write_health::failed();
                StoreError::Full(error.into())
            }
            _ => StoreError::Database(error.into()),
        }
    }
}

impl Store {
    /// Every row of `sql`, decoded.
    pub(crate) async fn fetch_all<T>(&self, sql: &Sql, mut decode: impl FnMut(&Row<'_>) -> StoreResult<T>) -> StoreResult<Vec<T>> {
        match self.sqlite_file() {
            Some(reader) => {
                let mut out = Vec::new();
                reader.rows(sql, |row| {
                    out.push(decode(row)?);
                    Ok(())
                })?;
                Ok(out)
            }
            None => sql.query().fetch_all(self.writer()).await?.iter().map(|row| decode(&Row::Any(row))).collect(),
        }
    }

    /// The first row of `sql`, decoded, if there is one.
    pub(crate) async fn fetch_optional<T>(&self, sql: &Sql, mut decode: impl FnMut(&Row<'_>) -> StoreResult<T>) -> StoreResult<Option<T>> {
        match self.sqlite_file() {
            Some(reader) => {
                let mut out = None;
                reader.rows(sql, |row| {
                    if out.is_none() {
                        out = Some(decode(row)?);
                    }
                    Ok(())
                })?;
                Ok(out)
            }
            None => sql.query().fetch_optional(self.writer()).await?.as_ref().map(|row| decode(&Row::Any(row))).transpose(),
        }
    }

    /// The first column of the first row of `sql`, if there is a row.
    pub(crate) async fn fetch_value<T: Column>(&self, sql: &Sql) -> StoreResult<Option<T>> {
        self.fetch_optional(sql, |row| row.first()).await
    }

    /// One page (`select`, its LIMIT and OFFSET from `page`) and the total (`count`). The count
    /// runs only when the page cannot tell it: a page shorter than its size ends the list, so
    /// the total is its offset plus its rows (unless it is empty past the first page).
    pub(crate) async fn fetch_page<T>(
        &self,
        select: &Sql,
        count: &Sql,
        page: Page,
        decode: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<(Vec<T>, i64)> {
        let rows = self.fetch_all(select, decode).await?;
        let shown = rows.len() as i64;
        let total =
            if shown < page.size && (shown > 0 || page.offset() == 0) { page.offset() + shown } else { self.fetch_count(count).await? };
        Ok((rows, total))
    }

    /// The first column of the one row `sql` returns (a `COUNT(*)`).
    pub(crate) async fn fetch_count(&self, sql: &Sql) -> StoreResult<i64> {
        self.fetch_value(sql).await?.ok_or_else(|| StoreError::Database("a count returned no row".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn sqlite_reads_see_committed_writes_and_decode_like_sqlx() {
        let (store, _dir) = testing::sqlite().await;
        store.setting_or_insert("answer", || "42".into()).await.unwrap();
        let mut sql = Sql::new("SELECT name, value, LENGTH(value) AS n, NULL AS missing FROM settings WHERE name = ");
        sql.text("answer");
        let decode = |row: &Row<'_>| -> StoreResult<(String, String, i64, Option<String>)> {
            Ok((row.get("name")?, row.get("value")?, row.get("n")?, row.get("missing")?))
        };
        let inline = store.fetch_optional(&sql, decode).await.unwrap();
        assert_eq!(inline, Some(("answer".into(), "42".into(), 2, None)));
        let through_sqlx = sql.query().fetch_optional(store.writer()).await.unwrap().map(|row| decode(&Row::Any(&row)).unwrap());
        assert_eq!(inline, through_sqlx);
        assert_eq!(store.fetch_count(&Sql::new("SELECT COUNT(*) FROM settings WHERE name = 'answer'")).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_page_counts_only_when_it_cannot_tell_the_total() {
        testing::each_store(|store| async move {
            for name in ["a", "b", "c"] {
                store.setting_or_insert(name, || "v".into()).await.unwrap();
            }
            let store = &store;
            let page = |number: i64, size: i64| async move {
                let mut select = Sql::new("SELECT name FROM settings WHERE value = 'v' ORDER BY name LIMIT ");
                select.int(size).push(" OFFSET ").int((number - 1) * size);
                // A count that disagrees with the rows shows when it was run.
                let count = Sql::new("SELECT 99");
                store.fetch_page(&select, &count, Page { number, size }, |row| row.get::<String>("name")).await.unwrap()
            };
            assert_eq!(page(1, 10).await, (vec!["a".into(), "b".into(), "c".into()], 3), "short first page: its rows are the total");
            assert_eq!(page(2, 2).await, (vec!["c".into()], 3), "short last page: offset plus rows");
            assert_eq!(page(1, 3).await.1, 99, "a full page cannot tell what follows");
            assert_eq!(page(3, 2).await, (vec![], 99), "an empty page past the end cannot tell where the end was");
        })
        .await;
    }

    #[tokio::test]
    async fn a_wrong_column_is_a_database_error_not_a_panic() {
        testing::each_store(|store| async move {
            store.setting_or_insert("x", || "1".into()).await.unwrap();
            let err = store.fetch_all(&Sql::new("SELECT value FROM settings"), |row| row.get::<String>("nope")).await.unwrap_err();
            assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn sqlite_reads_are_read_only() {
        let (store, _dir) = testing::sqlite().await;
        let err = store.fetch_all(&Sql::new("DELETE FROM settings RETURNING name"), |row| row.get::<String>("name")).await.unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    }

    #[test]
    fn in_memory_databases_are_refused() {
        assert!(SqliteFile::new("sqlite::memory:").is_err());
        assert!(SqliteFile::new("sqlite://x.db?mode=memory").is_err());
        assert_eq!(SqliteFile::new("sqlite:///d/servicecatalog.db?mode=rwc").unwrap().path, PathBuf::from("/d/servicecatalog.db"));
    }
}
