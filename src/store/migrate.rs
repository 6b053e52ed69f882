//! Embedded, versioned schema migrations, applied in order at start-up, each in its own
//! transaction. On PostgreSQL an advisory lock keeps nodes that start together from racing.
//!
//! Most migrations are portable SQL. One written for a single database (say an SQLite full-text
//! index) names it: elsewhere its version is recorded as applied and nothing runs, so versions
//! stay one sequence on both databases.

use sqlx::Connection;

use super::sql::{sql, Sql};
use super::{now_ms, Dialect, Store};

/// (version, the only database it runs on or `None` for both, SQL) in order.
const MIGRATIONS: &[(i64, Option<Dialect>, &str)] = &[
    (1, None, include_str!("../../migrations/0001_foundation.sql")),
    (2, None, include_str!("../../migrations/0002_catalog.sql")),
    (3, None, include_str!("../../migrations/0003_provisioning.sql")),
    (6, None, include_str!("../../migrations/0006_nonces.sql")),
    (7, None, include_str!("../../migrations/0007_bench_indexes.sql")),
    (8, None, include_str!("../../migrations/0008_plans.sql")),
    (9, None, include_str!("../../migrations/0009_console_sessions.sql")),
    (10, None, include_str!("../../migrations/0010_audit.sql")),
    (11, Some(Dialect::Sqlite), include_str!("../../migrations/0011_provisioned_product_names.sql")),
    (12, Some(Dialect::Sqlite), include_str!("../../migrations/0012_sqlite_nonce_log.sql")),
    (13, Some(Dialect::Sqlite), include_str!("../../migrations/0013_auth_generation_sqlite.sql")),
    (14, Some(Dialect::Postgres), include_str!("../../migrations/0014_auth_generation_postgres.sql")),
    (15, Some(Dialect::Sqlite), include_str!("../../migrations/0015_sqlite_nonce_batches.sql")),
    (16, Some(Dialect::Sqlite), include_str!("../../migrations/0016_catalog_generation_sqlite.sql")),
    (17, Some(Dialect::Postgres), include_str!("../../migrations/0017_catalog_generation_postgres.sql")),
    (18, None, include_str!("../../migrations/0018_fencing.sql")),
    (19, None, include_str!("../../migrations/0019_template_sources.sql")),
    (20, None, include_str!("../../migrations/0020_schedule_and_drift.sql")),
    (21, None, include_str!("../../migrations/0021_webhooks.sql")),
    (22, None, include_str!("../../migrations/0022_expiry.sql")),
    (23, Some(Dialect::Postgres), include_str!("../../migrations/0023_provisioned_product_names_trgm_postgres.sql")),
    (24, None, include_str!("../../migrations/0024_drift_remediation_plans.sql")),
    (25, None, include_str!("../../migrations/0025_update_policy.sql")),
    (26, None, include_str!("../../migrations/0026_dependencies.sql")),
    (27, None, include_str!("../../migrations/0027_upgrade_campaigns.sql")),
    (29, None, include_str!("../../migrations/0029_drift_remediation_claims.sql")),
    (30, Some(Dialect::Postgres), include_str!("../../migrations/0030_nonce_keys_postgres.sql")),
];

pub(super) async fn run(store: &Store) -> anyhow::Result<()> {
    let mut conn = store.writer().acquire().await?;
    let lock = store.dialect().migration_lock();
    if let Some((lock, _)) = &lock {
        lock.execute(&mut *conn).await?;
    }
    let result = apply_pending(&mut conn, store.dialect()).await;
    if let Some((_, unlock)) = &lock {
        unlock.execute(&mut *conn).await?;
    }
    result
}

async fn apply_pending(conn: &mut sqlx::AnyConnection, dialect: Dialect) -> anyhow::Result<()> {
    Sql::new("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let applied: Vec<i64> = sql!("SELECT version FROM schema_migrations").values(&mut *conn).await?;
    for (version, only, sql) in MIGRATIONS.iter().filter(|(v, _, _)| !applied.contains(v)) {
        let mut tx = conn.begin().await?;
        // A migration for the other database is recorded as applied without running.
        let runs_here = only.is_none_or(|d| d == dialect);
        for statement in if runs_here { statements(sql) } else { Vec::new() } {
            Sql::new(&statement)
                .execute(&mut *tx)
                .await
                .map_err(|e| anyhow::anyhow!("migration {version} failed at {statement:?}: {e}"))?;
        }
        sql!("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", version, now_ms()).execute(&mut *tx).await?;
        tx.commit().await?;
        tracing::info!(version, skipped = !runs_here, "applied schema migration");
    }
    Ok(())
}

/// Splits a migration into statements at `;` ending a line, dropping `--` comment lines.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines().filter(|l| !l.trim_start().starts_with("--")) {
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            out.push(std::mem::take(&mut current).trim().trim_end_matches(';').to_string());
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::{apply_pending, sql, MIGRATIONS};
    use crate::store::Dialect;

    #[tokio::test]
    async fn a_migration_for_the_other_database_is_recorded_without_running() {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await.unwrap();
        apply_pending(&mut conn, Dialect::Sqlite).await.unwrap();
        let versions: Vec<i64> = sql!("SELECT version FROM schema_migrations ORDER BY version").values(&mut conn).await.unwrap();
        assert_eq!(versions, MIGRATIONS.iter().map(|(v, _, _)| *v).collect::<Vec<_>>());
        // 0013 is SQLite's and ran; 0014 is PostgreSQL's (in SQL SQLite cannot run) and did not.
        for (trigger, made) in [("principals_insert_auth_generation", 1), ("principals_auth_generation", 0)] {
            let count: i64 = sql!("SELECT COUNT(*) FROM sqlite_master WHERE name = $1", trigger).one(&mut conn).await.unwrap();
            assert_eq!(count, made, "{trigger}");
        }
    }

    #[test]
    fn statements_split_at_line_ends() {
        let s = super::statements("-- c\nCREATE TABLE a (x TEXT);\nCREATE INDEX i\n  ON a (x);\n");
        assert_eq!(s, ["CREATE TABLE a (x TEXT)", "CREATE INDEX i\n  ON a (x)"]);
    }
}
