//! `servicecatalog backup FILE` and `restore FILE` for the embedded SQLite database.
//! A backup is `VACUUM INTO` a temporary file beside FILE, a consistent snapshot even while a
//! server writes (WAL), checked with `PRAGMA integrity_check` and renamed into place. A restore
//! refuses while a server holds the data directory (servers hold a shared lock on
//! `servicecatalog.lock`), checks the file the same way, and replaces the database atomically,
//! dropping the old write-ahead log. PostgreSQL is backed up with `pg_dump` instead.
//! The master key is not in the database: keep `master.key` (or `SERVICECATALOG_MASTER_KEY`)
//! safe separately; a restored database opens only with the key its secrets were sealed with.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::data::DataOptions;
use crate::store::Store;

/// Name of the lock file in the data directory.
const LOCK_FILE: &str = "servicecatalog.lock";

/// Holds the data directory for a running server; released when dropped.
pub fn hold_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    let file = lock_file(data_dir)?;
    file.try_lock_shared().map_err(|_| anyhow::anyhow!("a restore is under way in {}", data_dir.display()))?;
    Ok(file)
}

fn lock_file(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join(LOCK_FILE);
    File::options().create(true).truncate(false).write(true).open(&path).with_context(|| format!("cannot open {}", path.display()))
}

/// The SQLite database file of `data`, or an error pointing PostgreSQL users to `pg_dump`.
fn database_file(data: &DataOptions) -> anyhow::Result<PathBuf> {
    let url = data.database.clone().unwrap_or_else(|| Store::sqlite_url(&data.data_dir));
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        bail!(
            "backup and restore handle the embedded SQLite database; back PostgreSQL up with pg_dump and pg_restore (docs/operations.md)"
        );
    };
    Ok(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
}

/// Checks a database file: SQLite's integrity check, and a servicecatalog schema. Returns its
/// schema version.
async fn check(path: &Path) -> anyhow::Result<i64> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .disable_statement_logging()
        .connect()
        .await
        .with_context(|| format!("cannot open {} as a SQLite database", path.display()))?;
    let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&mut conn).await.context("integrity check failed")?;
    if verdict != ["ok"] {
        bail!("{} fails SQLite's integrity check: {}", path.display(), verdict.join("; "));
    }
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not a servicecatalog database", path.display()))?;
    conn.close().await?;
    version.with_context(|| format!("{} is not a servicecatalog database", path.display()))
}

/// Writes a consistent copy of the live database to `file` (replaced atomically if it exists).
pub async fn backup(data: &DataOptions, file: &Path) -> anyhow::Result<()> {
    let source = database_file(data)?;
    if !source.is_file() {
        bail!("there is no database at {}", source.display());
    }
    let tmp = sibling(file, ".tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", source.display()))?
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(30))
        .disable_statement_logging()
        .connect()
        .await
        .with_context(|| format!("cannot open {}", source.display()))?;
    sqlx::query("VACUUM INTO $1").bind(tmp.display().to_string()).execute(&mut conn).await.context("VACUUM INTO failed")?;
    conn.close().await?;
    let version = match check(&tmp).await {
        Ok(version) => version,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    install(&tmp, file)?;
    println!("backed up {} (schema {version}) to {}", source.display(), file.display());
    Ok(())
}

/// Replaces the database with `file`, refused while a server uses the data directory.
pub async fn restore(data: &DataOptions, file: &Path) -> anyhow::Result<()> {
    let target = database_file(data)?;
    std::fs::create_dir_all(&data.data_dir).with_context(|| format!("cannot create {}", data.data_dir.display()))?;
    let lock = lock_file(&data.data_dir)?;
    if lock.try_lock().is_err() {
        bail!("a server is running on {}: stop it before restoring", data.data_dir.display());
    }
    let version = check(file).await?;
    let tmp = sibling(&target, ".restore.tmp");
    std::fs::copy(file, &tmp).with_context(|| format!("cannot copy {} to {}", file.display(), tmp.display()))?;
    // A write-ahead log left by the old database must never be replayed onto the restored one.
    for suffix in ["-wal", "-shm"] {
        let path = sibling(&target, suffix);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    install(&tmp, &target)?;
    println!("restored {} (schema {version}) to {}", file.display(), target.display());
    Ok(())
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Syncs `tmp` and renames it over `target` (atomic on one filesystem), then syncs the directory.
fn install(tmp: &Path, target: &Path) -> anyhow::Result<()> {
    File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, target).with_context(|| format!("cannot move {} to {}", tmp.display(), target.display()))?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path) -> DataOptions {
        DataOptions { data_dir: dir.to_path_buf(), database: None, master_key: None }
    }

    #[tokio::test]
    async fn a_backup_restores_and_garbage_or_a_held_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(dir.path())).await.unwrap();
        store.setting_or_insert("x", || "before".into()).await.unwrap();
        let file = dir.path().join("backup.db");
        backup(&options(dir.path()), &file).await.unwrap();
        drop(store);

        let other = tempfile::tempdir().unwrap();
        restore(&options(other.path()), &file).await.unwrap();
        let restored = Store::open(&Store::sqlite_url(other.path())).await.unwrap();
        assert_eq!(restored.setting("x").await.unwrap().as_deref(), Some("before"));

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"not a database at all, not at all").unwrap();
        assert!(restore(&options(other.path()), &garbage).await.is_err());

        let _held = hold_data_dir(other.path()).unwrap();
        let refused = restore(&options(other.path()), &file).await.unwrap_err();
        assert!(refused.to_string().contains("server is running"), "{refused}");
        let pg = DataOptions { database: Some("postgres://u@h/db".into()), ..options(other.path()) };
        assert!(backup(&pg, &file).await.unwrap_err().to_string().contains("pg_dump"));
    }
}
