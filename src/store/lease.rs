//! Job leases, written once for the two kinds of job the engine runs under a lease: tasks (rows
//! of `tasks`) and plan previews (rows of `plans`). A worker claims the oldest queued job with a
//! lease on the database's clock and renews it while it runs; a node's reaper takes over a job
//! whose lease expired. Every claim and every take-over increments the job's epoch, and every
//! write for a job is conditional on its [`Fence`]: a worker paused past its lease, whose job
//! another node has since taken over, writes nothing.

use super::plan::{self, Plan};
use super::provisioning::Task;
use super::read::Row;
use super::sql::Sql;
use super::{now_ms, Store, StoreResult};
use crate::model::{PlanStatus, TaskStatus};

/// A table of jobs, as the lease statements see it.
#[derive(Debug, PartialEq, Eq)]
pub struct JobTable {
    table: &'static str,
    /// The id column.
    id: &'static str,
    /// The `status` of a job queued or running.
    in_progress: &'static str,
    /// Whether a claim sets `updated_at` (a task's does; a plan's tells the owner's last change).
    claim_updates: bool,
}

/// Tasks: launches, updates and terminations.
static TASKS: JobTable = JobTable { table: "tasks", id: "task_id", in_progress: TaskStatus::InProgress.as_str(), claim_updates: true };

/// Plans, whose previews are jobs.
static PREVIEWS: JobTable =
    JobTable { table: "plans", id: "plan_id", in_progress: PlanStatus::PreviewInProgress.as_str(), claim_updates: false };

/// A row that is a job: its table and how it reads.
pub(crate) trait Leased: Sized {
    /// Its table.
    const TABLE: &'static JobTable;

    /// Its columns as a select list over its table (not aliased).
    fn select_list() -> String;

    /// Decodes the row of [`Leased::select_list`].
    fn decode(row: &Row<'_>) -> StoreResult<Self>;
}

impl Leased for Task {
    const TABLE: &'static JobTable = &TASKS;

    fn select_list() -> String {
        Task::columns("")
    }

    fn decode(row: &Row<'_>) -> StoreResult<Self> {
        Task::from_row(row)
    }
}

impl Leased for Plan {
    const TABLE: &'static JobTable = &PREVIEWS;

    fn select_list() -> String {
        plan::select_list()
    }

    fn decode(row: &Row<'_>) -> StoreResult<Self> {
        Plan::from_row(row)
    }
}

/// A worker's claim on a job: the lease owner it claimed as and the job's epoch. Every write a
/// worker makes for the job is conditional on this token still being current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The job's table.
    pub job: &'static JobTable,
    /// The task id, or the plan id of a preview.
    pub job_id: String,
    /// The lease owner (a worker, or a node's reaper).
    pub owner: String,
    /// The job's `lease_epoch` when it was claimed.
    pub epoch: i64,
}

impl JobTable {
    /// Appends ` WHERE` the job `id` is in progress, and held under `fence` when one is given.
    pub(super) fn push_in_progress(&self, sql: &mut Sql, id: &str, fence: Option<&Fence>) {
        sql.push(&format!(" WHERE {} = ", self.id)).text(id).push(&format!(" AND status = '{}'", self.in_progress));
        if let Some(fence) = fence {
            sql.push(" AND lease_owner = ").text(fence.owner.as_str()).push(" AND lease_epoch = ").int(fence.epoch);
        }
    }
}

impl Fence {
    /// Appends ` WHERE` the job is in progress and this fence is current on it.
    pub(super) fn push_held(&self, sql: &mut Sql) {
        self.job.push_in_progress(sql, &self.job_id, Some(self));
    }
}

/// Makes the job's row part of `tx` if `fence` is still current on it; false otherwise. On
/// PostgreSQL the row stays locked until `tx` ends, which orders the caller's writes with any
/// take-over.
pub(super) async fn hold(tx: &mut super::Tx, fence: &Fence) -> StoreResult<bool> {
    let mut sql = Sql::new(&format!("UPDATE {} SET lease_epoch = lease_epoch", fence.job.table));
    fence.push_held(&mut sql);
    Ok(sql.execute(&mut **tx).await? == 1)
}

impl Store {
    /// Claims the oldest queued job of its kind for `owner` with a lease of `lease_ms` (on the
    /// database's clock), returning it with the claim's [`Fence`] ([`super::Dialect::claim`]).
    /// The job is read back by the claiming statement itself: a connection lost after it cannot
    /// leave a job claimed but unknown to its worker.
    pub(crate) async fn claim<T: Leased>(&self, owner: &str, lease_ms: i64) -> StoreResult<Option<(T, Fence)>> {
        let (job, clock) = (T::TABLE, self.dialect.clock());
        let (table, id, in_progress) = (job.table, job.id, job.in_progress);
        let queued =
            format!("SELECT {id} FROM {table} WHERE status = '{in_progress}' AND lease_owner IS NULL ORDER BY created_at, {id} LIMIT 1");
        let claim = |target: &dyn Fn(&mut Sql)| {
            let mut sql = Sql::new(&format!("UPDATE {table} SET lease_owner = "));
            sql.text(owner).push(&format!(", lease_epoch = lease_epoch + 1, lease_expires_at = {clock} + ")).int(lease_ms);
            if job.claim_updates {
                sql.push(", updated_at = ").int(now_ms());
            }
            sql.push(&format!(" WHERE {id} = "));
            target(&mut sql);
            sql.push(&format!(" AND lease_owner IS NULL AND status = '{in_progress}' RETURNING {}, lease_epoch", T::select_list()));
            sql
        };
        let Some(row) = self.dialect.claim(self, &queued, claim).await? else { return Ok(None) };
        let row = Row::Any(&row);
        let fence = Fence { job, job_id: row.get(id)?, owner: owner.into(), epoch: row.get("lease_epoch")? };
        Ok(Some((T::decode(&row)?, fence)))
    }

    /// Extends a held lease to `lease_ms` from now on the database's clock; false when the lease
    /// was lost (taken over, or the job finished or was cancelled).
    pub async fn renew_lease(&self, fence: &Fence, lease_ms: i64) -> StoreResult<bool> {
        let mut sql = Sql::new(&format!("UPDATE {} SET lease_expires_at = {} + ", fence.job.table, self.dialect.clock()));
        sql.int(lease_ms);
        fence.push_held(&mut sql);
        Ok(self.write(sql).await? == 1)
    }

    /// Jobs of a kind whose lease expired (on the database's clock: their worker died).
    pub(crate) async fn expired<T: Leased>(&self) -> StoreResult<Vec<T>> {
        let JobTable { table, in_progress, .. } = T::TABLE;
        let clock = self.dialect.clock();
        let sql = format!(
            "SELECT {} FROM {table} WHERE status = '{in_progress}' AND lease_owner IS NOT NULL AND lease_expires_at < {clock}",
            T::select_list()
        );
        self.fetch_all(&Sql::new(&sql), T::decode).await
    }

    /// Takes over the job `job_id` of `job` whose lease expired (on the database's clock),
    /// unless its worker renewed the lease meanwhile: `owner` (a node's reaper) holds it from then
    /// on with a new epoch, so that the worker it was taken from can write nothing more for it.
    /// The caller salvages what it can and fails the job with the returned fence; until it does,
    /// the job stays expired and may be taken over again.
    pub async fn take_over(&self, job: &'static JobTable, job_id: &str, owner: &str) -> StoreResult<Option<Fence>> {
        let mut sql = Sql::new(&format!("UPDATE {} SET lease_owner = ", job.table));
        sql.text(owner).push(", lease_epoch = lease_epoch + 1");
        job.push_in_progress(&mut sql, job_id, None);
        sql.push(&format!(" AND lease_expires_at < {} RETURNING lease_epoch", self.dialect.clock()));
        let epoch = sql.value(self.writer()).await?;
        Ok(epoch.map(|epoch| Fence { job, job_id: job_id.into(), owner: owner.into(), epoch }))
    }
}
