//! What operators watch and limit: the task queue, tasks in progress per principal, and the
//! database pools.

use super::sql::Sql;
use super::{now_ms, Store, StoreResult};

impl Store {
    /// Tasks queued and not yet claimed, and the creation time (ms) of the oldest of them.
    pub async fn queue_stats(&self) -> StoreResult<(i64, Option<i64>)> {
        let sql =
            Sql::new("SELECT COUNT(*) AS queued, MIN(created_at) AS oldest FROM tasks WHERE status = 'InProgress' AND lease_owner IS NULL");
        let row = self.fetch_optional(&sql, |row| Ok((row.get("queued")?, row.get("oldest")?))).await?;
        Ok(row.unwrap_or((0, None)))
    }

    /// Tasks in progress (queued or running) on the provisioned products `principal_id` owns.
    pub async fn tasks_in_progress_of(&self, principal_id: &str) -> StoreResult<i64> {
        let mut sql = Sql::new(
            "SELECT COUNT(*) FROM tasks t JOIN provisioned_products p ON p.provisioned_product_id = t.provisioned_product_id \
             WHERE t.status = 'InProgress' AND p.owner_principal_id = ",
        );
        sql.text(principal_id);
        self.fetch_count(&sql).await
    }

    /// Age in seconds of a queue whose oldest task was created at `oldest` (ms).
    pub fn queue_age_seconds(oldest: Option<i64>) -> i64 {
        oldest.map_or(0, |created| (now_ms() - created).max(0) / 1000)
    }

    /// Per sqlx pool: (name, open connections, idle connections, maximum). There is one
    /// ([`super::Dialect::pool`]): SQLite's reads run inline.
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, u32, u32)> {
        let pool = self.writer();
        vec![(self.dialect().pool().0, pool.size(), pool.num_idle() as u32, pool.options().get_max_connections())]
    }
}
