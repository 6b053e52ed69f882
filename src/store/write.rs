//! Writes of one statement outside a transaction ([`Store::write`]), committed in groups: the
//! statements that arrive while a group is being written are written together as the next group,
//! with one sync of the log to disk, and each caller is answered once its group is on disk, so an
//! answered write is durable. Through the pool, every statement was a commit of its own that
//! synced the disk: most of a write's CPU, on both databases (docs/benchmarks.md).
//!
//! - SQLite: one transaction per group, on a connection of our own (rusqlite, run where the
//!   writer task is, without a hop to sqlx's connection thread). The group holds sqlx's single
//!   writer connection meanwhile, so it never contends with a transaction ([`Store::begin`]) in
//!   the process: both take their turn in the pool's queue. A statement that fails (a constraint,
//!   say) fails alone, since SQLite undoes a failed statement and keeps its transaction; an error
//!   that ends the transaction (no space, I/O) or a failed commit fails the whole group.
//! - PostgreSQL: each statement commits on its own (so it fails alone) on a connection of our own
//!   whose commits do not wait for the disk (`synchronous_commit = off`); then one small
//!   transaction that does wait (its commit is flushed with all the log before it, and so with
//!   the group's commits) answers the group. Another node may see a row of the group during that
//!   flush, before its writer is answered, as with any commit under way.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Executor};
use tokio::sync::oneshot;

use super::audit::{self, AuditEvent};
use super::read::bind_all;
use super::sql::Sql;
use super::{Store, StoreError, StoreResult};

/// A statement waiting for the next group, the audit record it carries, and where its outcome
/// goes: the rows it changed and whether the record was written with it.
struct Pending {
    sql: Sql,
    audit: Option<AuditEvent>,
    answer: oneshot::Sender<StoreResult<(u64, bool)>>,
}

/// The statements waiting for the next group, and whether a group writer runs.
#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    writing: bool,
}

/// Group commit: the queue and the connection the groups are written on.
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    engine: Engine,
}

/// Where groups are written.
enum Engine {
    /// A SQLite file and our connection to it (opened when first needed).
    Sqlite { path: PathBuf, conn: Arc<Mutex<Option<rusqlite::Connection>>> },
    /// Our PostgreSQL connection.
    Postgres(OwnConnection),
}

/// A PostgreSQL connection of our own whose commits do not wait for the disk
/// (`synchronous_commit = off`), opened when first needed and again after a failure.
pub(crate) struct OwnConnection {
    url: String,
    /// Session settings run when it opens.
    settings: &'static str,
    slot: Mutex<Option<AnyConnection>>,
}

/// What every own connection sets.
const NO_WAIT: &str = "SET synchronous_commit = off";

impl OwnConnection {
    /// A connection to the database at `url`, not opened yet.
    pub(crate) fn new(url: &str) -> Self {
        OwnConnection { url: url.to_string(), settings: NO_WAIT, slot: Mutex::default() }
    }

    /// The same, whose prepared statements always run their generic plan: for one statement that
    /// runs for every request, whose plan does not depend on its arguments, but whose custom plan
    /// PostgreSQL would otherwise keep choosing (and paying a planning for each run) because its
    /// row estimate from the arguments is lower than the generic plan's.
    pub(crate) fn generic_plans(url: &str) -> Self {
        OwnConnection { settings: "SET synchronous_commit = off; SET plan_cache_mode = force_generic_plan", ..OwnConnection::new(url) }
    }

    /// The kept connection, or a new one. Give it back with [`OwnConnection::keep`] unless it failed.
    pub(crate) async fn take(&self) -> StoreResult<AnyConnection> {
        let kept = self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        match kept {
            Some(conn) => Ok(conn),
            None => connect(&self.url, self.settings).await,
        }
    }

    /// Keeps `conn` for the next [`OwnConnection::take`].
    pub(crate) fn keep(&self, conn: AnyConnection) {
        *self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(conn);
    }
}

/// Commits with a wait for the disk, so that the log before it (the group's commits) is on disk too.
const FLUSH: &str = "BEGIN; SET LOCAL synchronous_commit = on; SELECT txid_current(); COMMIT";

impl GroupCommit {
    /// Group commit into the SQLite file at `path`.
    pub(crate) fn sqlite(path: PathBuf) -> Self {
        GroupCommit { queue: Mutex::default(), engine: Engine::Sqlite { path, conn: Arc::default() } }
    }

    /// Group commit into the PostgreSQL database at `url`.
    pub(crate) fn postgres(url: &str) -> Self {
        GroupCommit { queue: Mutex::default(), engine: Engine::Postgres(OwnConnection::new(url)) }
    }
}

/// Fails what waits and lets the next write start a writer if a group writer ends by a panic.
struct WriterSlot(Option<Arc<GroupCommit>>);

impl Drop for WriterSlot {
    fn drop(&mut self) {
        let Some(group) = self.0.take() else { return };
        let waiting = {
            let mut queue = group.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.writing = false;
            std::mem::take(&mut queue.waiting)
        };
        for pending in waiting {
            let _ = pending.answer.send(Err(StoreError::Database("the group writer stopped".into())));
        }
    }
}

impl Store {
    /// Runs one statement that changes rows, outside any transaction, in the next group commit,
    /// and returns how many rows it changed. Within a request, the statement carries the
    /// request's audit record if no write has yet ([`audit::carried`]). Never call it while
    /// holding a transaction of [`Store::begin`]: on SQLite the group waits for that
    /// transaction's connection.
    pub(crate) async fn write(&self, sql: Sql) -> StoreResult<u64> {
        let audit = audit::take();
        let carried = audit.clone();
        let outcome = self.write_group_member(sql, audit).await;
        if let Some(event) = carried {
            audit::settle(event, matches!(outcome, Ok((_, true))));
        }
        outcome.map(|(rows, _)| rows)
    }

    /// [`Store::write`] of `sql`, with `audit` written in the same commit when it succeeds.
    async fn write_group_member(&self, sql: Sql, audit: Option<AuditEvent>) -> StoreResult<(u64, bool)> {
        let group = &self.group_commit;
        let (answer, outcome) = oneshot::channel();
        let start = {
            let mut queue = group.queue.lock().expect("group commit lock");
            queue.waiting.push(Pending { sql, audit, answer });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            // A task of its own, so that a caller dropped while it waits does not stop the group.
            tokio::spawn(self.clone().write_groups(Arc::clone(group)));
        }
        outcome.await.unwrap_or_else(|_| Err(StoreError::Database("the group writer stopped".into())))
    }

    /// Writes group after group until nothing waits.
    async fn write_groups(self, group: Arc<GroupCommit>) {
        let mut slot = WriterSlot(Some(Arc::clone(&group)));
        loop {
            let batch = {
                let mut queue = group.queue.lock().expect("group commit lock");
                if queue.waiting.is_empty() {
                    queue.writing = false;
                    slot.0 = None;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            match &group.engine {
                Engine::Sqlite { path, conn } => self.write_sqlite_group(path, conn, batch).await,
                Engine::Postgres(conn) => write_postgres_group(conn, batch).await,
            }
        }
    }

    /// Writes a group on SQLite, holding sqlx's only writer connection meanwhile: transactions wait for it.
    async fn write_sqlite_group(&self, path: &Path, conn: &Arc<Mutex<Option<rusqlite::Connection>>>, batch: Vec<Pending>) {
        let turn = match self.writer().acquire().await {
            Ok(turn) => turn,
            Err(e) => return fail_all(batch, e.into()),
        };
        let (path, conn) = (path.to_path_buf(), Arc::clone(conn));
        let write = move || write_group(&path, &mut conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner()), batch);
        // On the runtime's own thread, which hands its other work on meanwhile (no thread hop),
        // else on a blocking thread.
        let written = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(write);
                Ok(())
            }
            _ => tokio::task::spawn_blocking(write).await,
        };
        drop(turn);
        if let Err(e) = written {
            tracing::error!(error = %e, "a SQLite group commit failed");
        }
    }
}

/// Answers every statement of `batch` with `error`.
fn fail_all(batch: Vec<Pending>, error: StoreError) {
    batch.into_iter().for_each(|pending| drop(pending.answer.send(Err(error.copied()))));
}

/// Writes a group on PostgreSQL: each statement commits without waiting for the disk, then one
/// commit waits for it; the connection is kept unless it failed.
async fn write_postgres_group(own: &OwnConnection, batch: Vec<Pending>) {
    let mut conn = match own.take().await {
        Ok(conn) => conn,
        Err(e) => return fail_all(batch, e),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for pending in &batch {
        let with_audit = pending.audit.as_ref().and_then(|audit| audit.ahead_of(&pending.sql));
        let audited = with_audit.is_some();
        let sql = with_audit.as_ref().unwrap_or(&pending.sql);
        outcomes.push(conn.execute(sql.query()).await.map(|done| (done.rows_affected(), audited)).map_err(StoreError::from));
    }
    let flushed = match outcomes.iter().any(Result::is_ok) {
        // Without arguments: the simple query protocol, which runs several statements.
        true => conn.execute(FLUSH).await.map(drop).map_err(StoreError::from),
        false => Ok(()),
    };
    let failed = flushed.is_err() || outcomes.iter().any(|outcome| matches!(outcome, Err(e) if e.is_transient()));
    match flushed {
        Err(e) => fail_all(batch, e),
        Ok(()) => batch.into_iter().zip(outcomes).for_each(|(pending, outcome)| drop(pending.answer.send(outcome))),
    }
    if !failed {
        own.keep(conn);
    }
}

/// A PostgreSQL connection with the session `settings` of an [`OwnConnection`]. An attempt is
/// given up after the pool's acquire timeout, so that a write fails as `Unavailable` within the
/// same bound as one through the pool (docs/cluster.md).
async fn connect(url: &str, settings: &str) -> StoreResult<AnyConnection> {
    let options = AnyConnectOptions::from_str(url).map_err(StoreError::from)?.disable_statement_logging();
    let Ok(connected) = tokio::time::timeout(super::ACQUIRE_TIMEOUT, options.connect()).await else {
        return Err(StoreError::Unavailable("timed out connecting to the database".into()));
    };
    let mut conn = connected?;
    conn.execute(settings).await?;
    Ok(conn)
}

/// Writes `batch` in one transaction on `conn` (opened if `None`) and answers each statement.
fn write_group(path: &Path, conn: &mut Option<rusqlite::Connection>, batch: Vec<Pending>) {
    if conn.is_none() {
        match open(path) {
            Ok(opened) => *conn = Some(opened),
            Err(e) => return fail_all(batch, e.into()),
        }
    }
    let db = conn.as_ref().expect("opened above");
    if let Err(e) = db.execute_batch("BEGIN IMMEDIATE") {
        return fail_all(batch, e.into());
    }
    let mut outcomes: Vec<StoreResult<(u64, bool)>> = Vec::with_capacity(batch.len());
    for pending in &batch {
        // The record fails alone too: the statement is then answered as not carrying it.
        let outcome = run(db, &pending.sql).and_then(|rows| match &pending.audit {
            Some(audit) => {
                run(db, &audit.insert()).map(|_| (rows, true)).or_else(|e| if db.is_autocommit() { Err(e) } else { Ok((rows, false)) })
            }
            None => Ok((rows, false)),
        });
        if db.is_autocommit() {
            // An error ended the transaction (no space, I/O): nothing of the group was kept.
            let error = outcome.err().unwrap_or_else(|| StoreError::Database("the group's transaction ended".into()));
            return fail_all(batch, error);
        }
        outcomes.push(outcome);
    }
    if let Err(e) = db.execute_batch("COMMIT") {
        if !db.is_autocommit() {
            let _ = db.execute_batch("ROLLBACK");
        }
        return fail_all(batch, e.into());
    }
    for (pending, outcome) in batch.into_iter().zip(outcomes) {
        let _ = pending.answer.send(outcome);
    }
}

/// Runs one statement; the rows it changed.
fn run(db: &rusqlite::Connection, sql: &Sql) -> StoreResult<u64> {
    let mut statement = db.prepare_cached(sql.as_str())?;
    bind_all(&mut statement, sql)?;
    Ok(statement.raw_execute()? as u64)
}

/// The group writer's SQLite connection: enforces foreign keys, as sqlx's writer does.
fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let conn = super::read::open(path)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::sql::sql;
    use super::super::testing;
    use super::*;

    fn insert(name: &str) -> Sql {
        sql!("INSERT INTO settings (name, value) VALUES ($1, 'v')", name)
    }

    async fn count(store: &Store) -> i64 {
        store.fetch_count(&Sql::new("SELECT COUNT(*) FROM settings WHERE value = 'v'")).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_committed_and_a_failing_one_fails_alone() {
        testing::each_store(|store| async move {
            store.write(insert("dup")).await.unwrap();
            let mut writes = tokio::task::JoinSet::new();
            for i in 0..64 {
                let store = store.clone();
                // Every eighth write repeats a name: a constraint violation inside a group.
                let name = if i % 8 == 0 { "dup".to_string() } else { format!("n{i}") };
                writes.spawn(async move { store.write(insert(&name)).await });
            }
            let outcomes = writes.join_all().await;
            assert_eq!(outcomes.iter().filter(|o| matches!(o, Ok(1))).count(), 56, "{outcomes:?}");
            assert!(outcomes.iter().filter(|o| o.is_err()).all(|o| matches!(o, Err(StoreError::Database(_)))), "{outcomes:?}");
            assert_eq!(count(&store).await, 57);
            assert_eq!(store.write(sql!("UPDATE settings SET value = 'w' WHERE name LIKE 'n%'")).await.unwrap(), 56);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_waits_for_an_open_transaction() {
        let (store, _dir) = testing::sqlite().await;
        let mut tx = store.begin().await.unwrap();
        insert("in-tx").execute(&mut *tx).await.unwrap();
        let writer = tokio::spawn({
            let store = store.clone();
            async move { store.write(insert("after")).await }
        });
        // The write cannot finish while the transaction holds the writer connection.
        assert!(tokio::time::timeout(Duration::from_millis(200), async {
            while !writer.is_finished() {
                tokio::task::yield_now().await
            }
        })
        .await
        .is_err());
        tx.commit().await.unwrap();
        assert_eq!(writer.await.unwrap().unwrap(), 1);
        assert_eq!(count(&store).await, 2);
    }
}
