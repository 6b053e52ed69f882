//! The durable scheduler's jobs (`scheduled_jobs`): recurring work of a [`ScheduleKind`] about a
//! subject, due at a time on the database's clock. A node claims a due job with a lease and a
//! fencing epoch, as workers claim tasks ([`super::lease`]); when the job has run, the node that
//! still holds it sets its next due time and releases it. A job whose node died stays claimed
//! until its lease expires, then is due again and any node claims it. The rules (what a job does,
//! when it is next due) are the provisioning layer's.

use super::sql::{insert, record, sql, Sql};
use super::{now_ms, Store, StoreResult};
use crate::model::ScheduleKind;

record! {
    /// A recurring job of the scheduler.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ScheduledJob {
        pub job_id: String,
        pub kind: ScheduleKind,
        /// What the job is about (for `DriftCheck`, a `Drift` constraint's id).
        pub subject: String,
        /// When it is due (ms since the epoch, on the database's clock).
        pub due_at: i64,
        /// Its interval, in ms.
        pub interval_ms: i64,
        /// When it last ran (on the database's clock).
        pub last_run_at: Option<i64>,
        /// When it was first scheduled (on the node's clock).
        pub created_at: i64,
    }
}

/// A node's claim on a due job: every write for the job after the claim is conditional on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleFence {
    /// The job.
    pub job_id: String,
    /// The lease owner (a node's scheduler).
    pub owner: String,
    /// The job's `lease_epoch` at the claim.
    pub epoch: i64,
}

impl Store {
    /// Schedules the job of `kind` about `subject` every `interval_ms`, first due `first_delay_ms`
    /// from now; a job that exists already takes the new interval, and the earlier of its due time
    /// and the new one.
    pub async fn schedule(&self, kind: ScheduleKind, subject: &str, interval_ms: i64, first_delay_ms: i64) -> StoreResult<()> {
        let clock: i64 = Sql::new(&format!("SELECT {}", self.dialect().clock())).one(self.writer()).await?;
        let job = ScheduledJob {
            job_id: super::new_id("job"),
            kind,
            subject: subject.to_string(),
            due_at: clock + first_delay_ms,
            interval_ms,
            last_run_at: None,
            created_at: now_ms(),
        };
        let mut sql = insert("scheduled_jobs", ScheduledJob::COLUMNS, [&job], |job, sql| job.bind_values(sql));
        sql.push(
            " ON CONFLICT (kind, subject) DO UPDATE SET interval_ms = excluded.interval_ms, due_at = CASE WHEN excluded.due_at < \
             scheduled_jobs.due_at THEN excluded.due_at ELSE scheduled_jobs.due_at END",
        );
        self.write(sql).await?;
        Ok(())
    }

    /// Removes the job of `kind` about `subject` (held or not: a node running it finds its fence
    /// gone and writes nothing more).
    pub async fn unschedule(&self, kind: ScheduleKind, subject: &str) -> StoreResult<()> {
        self.write(sql!("DELETE FROM scheduled_jobs WHERE kind = $1 AND subject = $2", kind, subject)).await?;
        Ok(())
    }

    /// The job of `kind` about `subject`.
    pub async fn scheduled_job(&self, kind: ScheduleKind, subject: &str) -> StoreResult<Option<ScheduledJob>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM scheduled_jobs WHERE kind = ", ScheduledJob::columns("")));
        sql.text(kind).push(" AND subject = ").text(subject);
        self.fetch_optional(&sql, ScheduledJob::from_row).await
    }

    /// Every job of `kind`.
    pub async fn scheduled_jobs(&self, kind: ScheduleKind) -> StoreResult<Vec<ScheduledJob>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM scheduled_jobs WHERE kind = ", ScheduledJob::columns("")));
        sql.text(kind).push(" ORDER BY subject");
        self.fetch_all(&sql, ScheduledJob::from_row).await
    }

    /// Claims the job due first (on the database's clock) for `owner` with a lease of
    /// `lease_ms`: one whose due time has come and that no live lease holds. Exactly one node
    /// gets it ([`super::Dialect::claim`]).
    pub async fn claim_due_job(&self, owner: &str, lease_ms: i64) -> StoreResult<Option<(ScheduledJob, ScheduleFence)>> {
        let clock = self.dialect().clock();
        let free = format!("due_at <= {clock} AND (lease_owner IS NULL OR lease_expires_at < {clock})");
        let queued = format!("SELECT job_id FROM scheduled_jobs WHERE {free} ORDER BY due_at, job_id LIMIT 1");
        let claim = |target: &dyn Fn(&mut Sql)| {
            let mut sql = Sql::new("UPDATE scheduled_jobs SET lease_owner = ");
            sql.text(owner).push(&format!(", lease_epoch = lease_epoch + 1, lease_expires_at = {clock} + ")).int(lease_ms);
            sql.push(" WHERE job_id = ");
            target(&mut sql);
            sql.push(&format!(" AND {free} RETURNING {}, lease_epoch", ScheduledJob::columns("")));
            sql
        };
        let Some(row) = self.dialect().claim(self, &queued, claim).await? else { return Ok(None) };
        let row = super::read::Row::Any(&row);
        let job = ScheduledJob::from_row(&row)?;
        let fence = ScheduleFence { job_id: job.job_id.clone(), owner: owner.into(), epoch: row.get("lease_epoch")? };
        Ok(Some((job, fence)))
    }

    /// Releases a job that ran, due again `next_delay_ms` from now (on the database's clock),
    /// if `fence` still holds it; false (nothing written) when it does not.
    pub async fn finish_scheduled_job(&self, fence: &ScheduleFence, next_delay_ms: i64) -> StoreResult<bool> {
        Ok(self.write(release(self.dialect(), fence, Due::After(next_delay_ms))).await? == 1)
    }

    /// Releases a job that ran, due again at `due_at` (ms, the database's clock), if `fence`
    /// still holds it; false (nothing written) when it does not.
    pub async fn finish_scheduled_job_at(&self, fence: &ScheduleFence, due_at: i64) -> StoreResult<bool> {
        Ok(self.write(release(self.dialect(), fence, Due::At(due_at))).await? == 1)
    }
}

/// Makes the job of `kind` about `subject` due now (on the database's clock) inside `tx`: a new
/// one-off job (interval 0), or the existing one due at the earlier of its time and now.
pub(super) async fn schedule_now(tx: &mut super::Tx, kind: ScheduleKind, subject: &str) -> StoreResult<()> {
    let text = format!(
        "INSERT INTO scheduled_jobs (job_id, kind, subject, due_at, interval_ms, created_at) VALUES ($1, $2, $3, {}, 0, $4) \
         ON CONFLICT (kind, subject) DO UPDATE SET due_at = CASE WHEN excluded.due_at < scheduled_jobs.due_at THEN \
         excluded.due_at ELSE scheduled_jobs.due_at END",
        tx.dialect().clock()
    );
    sql!(&text, super::new_id("job"), kind, subject, now_ms()).execute(&mut **tx).await?;
    Ok(())
}

/// When a released job is due again.
#[derive(Debug, Clone, Copy)]
pub(super) enum Due {
    /// This many ms from now (the database's clock).
    After(i64),
    /// At this time (ms since the epoch, the database's clock).
    At(i64),
}

/// The statement releasing the job `fence` holds, due again as `due` says; it changes no row
/// when the fence no longer holds the job.
pub(super) fn release(dialect: super::Dialect, fence: &ScheduleFence, due: Due) -> Sql {
    let clock = dialect.clock();
    let mut sql =
        Sql::new(&format!("UPDATE scheduled_jobs SET lease_owner = NULL, lease_expires_at = NULL, last_run_at = {clock}, due_at = "));
    match due {
        Due::After(delay) => sql.push(&format!("{clock} + ")).int(delay),
        Due::At(at) => sql.int(at),
    };
    sql.push(" WHERE job_id = ").text(fence.job_id.as_str());
    sql.push(" AND lease_owner = ").text(fence.owner.as_str()).push(" AND lease_epoch = ").int(fence.epoch);
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn a_due_job_is_claimed_once_until_it_is_released_or_its_lease_expires() {
        testing::each_store(|store| async move {
            store.schedule(ScheduleKind::DriftCheck, "c-1", 60_000, 0).await.unwrap();
            store.schedule(ScheduleKind::DriftCheck, "c-later", 60_000, 3_600_000).await.unwrap();
            let (job, fence) = store.claim_due_job("node-a", 60_000).await.unwrap().expect("due");
            assert_eq!((job.subject.as_str(), job.interval_ms, job.last_run_at), ("c-1", 60_000, None));
            assert!(store.claim_due_job("node-b", 60_000).await.unwrap().is_none(), "held, and the other is not due");
            // Released: due again an interval later, so nobody claims it now.
            assert!(store.finish_scheduled_job(&fence, 60_000).await.unwrap());
            assert!(!store.finish_scheduled_job(&fence, 60_000).await.unwrap(), "released: the fence no longer holds it");
            let after = store.scheduled_job(ScheduleKind::DriftCheck, "c-1").await.unwrap().unwrap();
            assert!(after.last_run_at.is_some() && after.due_at > job.due_at);
            assert!(store.claim_due_job("node-b", 60_000).await.unwrap().is_none());
            // Made due again at once; node-a dies holding it (a lease of 0 ms expires at once).
            store.schedule(ScheduleKind::DriftCheck, "c-1", 60_000, -1).await.unwrap();
            let (_, dead) = store.claim_due_job("node-a", -1).await.unwrap().expect("due again");
            let (taken, fence_b) = store.claim_due_job("node-b", 60_000).await.unwrap().expect("the lease expired: taken over");
            assert_eq!(taken.subject, "c-1");
            assert_eq!(fence_b.epoch, dead.epoch + 1);
            assert!(!store.finish_scheduled_job(&dead, 1).await.unwrap(), "the dead node's fence writes nothing");
            assert!(store.finish_scheduled_job(&fence_b, 60_000).await.unwrap());
            store.unschedule(ScheduleKind::DriftCheck, "c-1").await.unwrap();
            assert!(store.scheduled_job(ScheduleKind::DriftCheck, "c-1").await.unwrap().is_none());
        })
        .await;
    }

    #[tokio::test]
    async fn rescheduling_keeps_the_earlier_due_time() {
        testing::each_store(|store| async move {
            store.schedule(ScheduleKind::DriftCheck, "c", 60_000, 3_600_000).await.unwrap();
            let first = store.scheduled_job(ScheduleKind::DriftCheck, "c").await.unwrap().unwrap();
            store.schedule(ScheduleKind::DriftCheck, "c", 120_000, 7_200_000).await.unwrap();
            let second = store.scheduled_job(ScheduleKind::DriftCheck, "c").await.unwrap().unwrap();
            assert_eq!((second.job_id, second.due_at, second.interval_ms), (first.job_id, first.due_at, 120_000));
            store.schedule(ScheduleKind::DriftCheck, "c", 120_000, 0).await.unwrap();
            let third = store.scheduled_job(ScheduleKind::DriftCheck, "c").await.unwrap().unwrap();
            assert!(third.due_at < first.due_at);
        })
        .await;
    }
}
