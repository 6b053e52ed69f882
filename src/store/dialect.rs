//! What differs between SQLite and PostgreSQL, in one place: which URL names which, the
//! connections' settings and pool, how a write transaction starts, the database's clock, how a
//! queued job is claimed, how the nodes hear of a queued task, which indexes exist and the lock
//! around migrations. The rest of the store writes its SQL once for both.

use std::time::Duration;

use sqlx::any::AnyRow;

use super::read::SqliteFile;
use super::sql::{sql, Sql};
use super::{Store, StoreResult};

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (embedded, one node).
    Sqlite,
    /// PostgreSQL (shared by several nodes).
    Postgres,
}

/// PostgreSQL channel on which queued tasks are announced.
const TASK_CHANNEL: &str = "servicecatalog_tasks";

/// Arbitrary key of the PostgreSQL advisory lock held while migrating.
const ADVISORY_LOCK_KEY: i64 = 0x5343_4d49_4752; // "SCMIGR"

impl Dialect {
    /// The database `url` names.
    pub(super) fn of_url(url: &str) -> anyhow::Result<Dialect> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Dialect::Postgres)
        } else {
            anyhow::bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE")
        }
    }

    /// The database's name as `/healthz` reports it.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// What every new connection runs first: SQLite's journal, durability, lock wait and foreign keys.
    pub(super) fn connection_setup(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => {
                Some("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
            }
            Dialect::Postgres => None,
        }
    }

    /// sqlx's pool, by its name in the metrics and its size: on SQLite a single writer, so that
    /// transactions never contend inside the process; on PostgreSQL one pool for everything.
    pub(super) fn pool(self) -> (&'static str, u32) {
        match self {
            Dialect::Sqlite => ("write", 1),
            Dialect::Postgres => ("shared", 16),
        }
    }

    /// Whether the pool checks a connection before handing it out: a PostgreSQL connection can be
    /// cut by the server or the network; a SQLite file opened by the process cannot, and the check
    /// would cost every write a hop to sqlx's connection thread.
    pub(super) fn checks_connections(self) -> bool {
        self == Dialect::Postgres
    }

    /// Connections of our own for reads on the calling thread, on SQLite ([`super::read`]);
    /// PostgreSQL reads through the pool.
    pub(super) fn inline_reader(self, url: &str) -> anyhow::Result<Option<SqliteFile>> {
        match self {
            Dialect::Sqlite => Ok(Some(SqliteFile::new(url)?)),
            Dialect::Postgres => Ok(None),
        }
    }

    /// The statement that starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`) so that another process (the `users` command) waits instead of failing
    /// half-way.
    pub(super) fn begin(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// SQL for the database's clock, in milliseconds since the Unix epoch. Leases are set and
    /// compared with it, never with a node's own clock: on PostgreSQL every node uses the
    /// server's `now()`; on SQLite (one node) it is that machine's clock.
    pub(super) fn clock(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)",
        }
    }

    /// Whether the FTS5 trigram table of lower-cased provisioned product names exists (migration 11;
    /// PostgreSQL's trigram index, migration 23, serves `LIKE` itself and needs no separate query).
    pub(super) fn has_name_index(self) -> bool {
        self == Dialect::Sqlite
    }

    /// The statements that take and release the lock that keeps nodes starting together from
    /// migrating at once: PostgreSQL's advisory lock; none on SQLite (one node).
    pub(super) fn migration_lock(self) -> Option<(Sql, Sql)> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => {
                Some((sql!("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY), sql!("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)))
            }
        }
    }

    /// Claims the next queued job with `claim`, an `UPDATE … RETURNING` to which it hands the
    /// writer of the target row's id. `queued` selects that id. PostgreSQL claims in one statement
    /// whose target is `queued` skipping the rows other nodes are claiming. SQLite (one writer)
    /// runs `queued` on a read connection, so that idle workers never take the write lock, and
    /// claims the id found with a conditional update: a lost race claims nothing, and the next
    /// queued job is tried.
    pub(super) async fn claim(self, store: &Store, queued: &str, claim: impl Fn(&dyn Fn(&mut Sql)) -> Sql) -> StoreResult<Option<AnyRow>> {
        match self {
            Dialect::Postgres => {
                let sql = claim(&|sql| {
                    sql.push(&format!("({queued} FOR UPDATE SKIP LOCKED)"));
                });
                Ok(sql.query().fetch_optional(store.writer()).await?)
            }
            Dialect::Sqlite => loop {
                let Some(id) = store.fetch_value::<String>(&Sql::new(queued)).await? else { return Ok(None) };
                let row = claim(&|sql| {
                    sql.text(id.as_str());
                })
                .query()
                .fetch_optional(store.writer())
                .await?;
                if row.is_some() {
                    return Ok(row);
                }
            },
        }
    }
}

impl Store {
    /// Tells every node a task was queued (PostgreSQL `NOTIFY`; nothing to do on SQLite, whose
    /// only node wakes its workers in memory).
    pub async fn notify_task_queued(&self) -> StoreResult<()> {
        if self.dialect() == Dialect::Postgres {
            sql!("SELECT pg_notify($1, '')", TASK_CHANNEL).execute(self.writer()).await?;
        }
        Ok(())
    }

    /// Calls `wake` for every task queued on any node, for as long as the process runs
    /// (PostgreSQL's `LISTEN`, connecting again after a failure). Returns at once on SQLite,
    /// whose only node wakes its workers in memory.
    pub async fn listen_for_queued_tasks(&self, wake: impl Fn()) {
        if self.dialect() != Dialect::Postgres {
            return;
        }
        loop {
            match sqlx::postgres::PgListener::connect(self.url()).await {
                Ok(mut listener) => {
                    if let Err(e) = listener.listen(TASK_CHANNEL).await {
                        tracing::warn!(error = %e, "cannot LISTEN for queued tasks");
                    } else {
                        // `recv` reconnects by itself after a lost connection.
                        while let Ok(_notification) = listener.recv().await {
                            wake();
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot connect to LISTEN for queued tasks"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
