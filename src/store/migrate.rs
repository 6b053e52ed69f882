//! Embedded, versioned schema migrations, applied in order at start-up, each in its own
//! transaction. On PostgreSQL an advisory lock keeps nodes that start together from racing.

use sqlx::Connection;

use super::{now_ms, Dialect, Store};

/// (version, SQL) in order; the SQL is portable between SQLite and PostgreSQL.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_foundation.sql")),
    (2, include_str!("../../migrations/0002_catalog.sql")),
    (3, include_str!("../../migrations/0003_provisioning.sql")),
    (6, include_str!("../../migrations/0006_nonces.sql")),
    (7, include_str!("../../migrations/0007_bench_indexes.sql")),
    (8, include_str!("../../migrations/0008_plans.sql")),
    (9, include_str!("../../migrations/0009_console_sessions.sql")),
    (10, include_str!("../../migrations/0010_audit.sql")),
];

/// Arbitrary key of the PostgreSQL advisory lock held while migrating.
const ADVISORY_LOCK_KEY: i64 = 0x5343_4d49_4752; // "SCMIGR"

pub(super) async fn run(store: &Store) -> anyhow::Result<()> {
    let mut conn = store.writer().acquire().await?;
    if store.dialect() == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(ADVISORY_LOCK_KEY).execute(&mut *conn).await?;
    }
    let result = apply_pending(&mut conn).await;
    if store.dialect() == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(ADVISORY_LOCK_KEY).execute(&mut *conn).await?;
    }
    result
}

async fn apply_pending(conn: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(&mut *conn).await?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        let mut tx = conn.begin().await?;
        for statement in statements(sql) {
            sqlx::query(&statement)
                .execute(&mut *tx)
                .await
                .map_err(|e| anyhow::anyhow!("migration {version} failed at {statement:?}: {e}"))?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
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
    #[test]
    fn statements_split_at_line_ends() {
        let s = super::statements("-- c\nCREATE TABLE a (x TEXT);\nCREATE INDEX i\n  ON a (x);\n");
        assert_eq!(s, ["CREATE TABLE a (x TEXT)", "CREATE INDEX i\n  ON a (x)"]);
    }
}
