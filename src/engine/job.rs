//! The life cycle every job of the engine shares — claim, renew, run, finish, reap — for its two
//! kinds: a task (apply or destroy, [`super::task`]) and a plan's preview ([`super::preview`]).
//! One worker loop claims both, one heartbeat renews their leases, one reaper fails those whose
//! worker died.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{patiently, terraform, Engine, EngineError, Phase, TaskLog, LOST_CONTACT_MESSAGE, SHUTDOWN_MESSAGE};
use crate::model::OperationType;
use crate::store::plan::{Plan, PreviewOutcome};
use crate::store::provisioning::{Fence, LogChunk, Task, TaskOutcome};
use crate::store::{JobTable, Leased, StoreError};

/// A job a worker runs under a lease.
pub(super) enum Job {
    /// A task: apply or destroy a provisioned product.
    Task(Box<Task>),
    /// A plan's preview.
    Preview(Box<Plan>),
}

/// What a job runs: the fields tasks and plans share.
pub struct Site<'a> {
    /// The job's id, which names its working directory.
    pub work_id: &'a str,
    /// The provisioned product changed.
    pub provisioned_product_id: &'a str,
    /// The launch option's portfolio.
    pub portfolio_id: &'a str,
    /// The product.
    pub product_id: &'a str,
    /// The product version run.
    pub version_id: &'a str,
    /// The parameters, sealed.
    pub parameters_sealed: &'a str,
    /// The launch role, if the launch option has one.
    pub launch_role: Option<&'a str>,
    /// The region.
    pub region: &'a str,
}

/// What every step of a claimed job works with.
pub(super) struct Run<'r> {
    /// The job.
    pub job: &'r Job,
    /// Its lease, which fences its writes.
    pub fence: &'r Fence,
    /// The worker slot running it.
    pub slot: usize,
    /// Its log (a preview's stays empty).
    pub log: &'r TaskLog,
}

/// A job's outcome, with the job, to record.
pub(super) enum Finished<'a> {
    Task(&'a Task, TaskOutcome),
    Preview(&'a Plan, PreviewOutcome),
}

impl Job {
    /// What the job runs on.
    pub(super) fn site(&self) -> Site<'_> {
        macro_rules! site {
            ($job:ident, $id:ident) => {
                Site {
                    work_id: &$job.$id,
                    provisioned_product_id: &$job.provisioned_product_id,
                    portfolio_id: &$job.portfolio_id,
                    product_id: &$job.product_id,
                    version_id: &$job.product_version_id,
                    parameters_sealed: &$job.parameters_sealed,
                    launch_role: $job.launch_role.as_deref(),
                    region: &$job.stack_region_id,
                }
            };
        }
        match self {
            Job::Task(task) => site!(task, task_id),
            Job::Preview(plan) => site!(plan, plan_id),
        }
    }

    /// The job's table, for its lease.
    fn table(&self) -> &'static JobTable {
        match self {
            Job::Task(_) => Task::TABLE,
            Job::Preview(_) => Plan::TABLE,
        }
    }

    /// The job when it is a task that may write the state (not a drift check).
    fn changes_state(&self) -> Option<&Task> {
        match self {
            Job::Task(task) if task.task_type != OperationType::DetectProvisionedProductDrift => Some(task),
            _ => None,
        }
    }

    fn noun(&self) -> &'static str {
        match self {
            Job::Task(_) => "task",
            Job::Preview(_) => "plan preview",
        }
    }
}

impl Engine {
    /// Worker `slot`'s loop: claims and runs jobs until the engine drains.
    pub(super) async fn work(self: Arc<Self>, slot: usize) {
        let worker = format!("{}/{slot}", self.node_id);
        let mut phase = self.phase.subscribe();
        while *phase.borrow_and_update() == Phase::Running {
            if let Some((job, fence)) = self.claim(&worker).await {
                self.busy.fetch_add(1, Ordering::Relaxed);
                self.run(job, fence, slot).await;
                self.busy.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            // Woken at once for tasks queued here and at shutdown; the timeout covers other nodes and errors.
            tokio::select! {
                _ = tokio::time::timeout(Duration::from_secs(2), self.wake.notified()) => {}
                _ = phase.changed() => {}
            }
        }
    }

    /// Claims a queued task, else a queued preview, for `worker`.
    async fn claim(&self, worker: &str) -> Option<(Job, Fence)> {
        let lease_ms = self.config.lease.as_millis() as i64;
        match self.store.claim::<Task>(worker, lease_ms).await {
            Ok(Some((task, fence))) => return Some((Job::Task(Box::new(task)), fence)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot claim tasks"),
        }
        match self.store.claim::<Plan>(worker, lease_ms).await {
            Ok(claimed) => claimed.map(|(plan, fence)| (Job::Preview(Box::new(plan)), fence)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim plan previews");
                None
            }
        }
    }

    /// Runs one claimed job to its end, then records the outcome if `fence` is still current
    /// (waiting out a database outage, bounded, as for its state). Once the job is taken over,
    /// its Terraform is killed and nothing more is written.
    async fn run(&self, job: Job, fence: Fence, slot: usize) {
        match &job {
            Job::Task(task) => tracing::info!(task_id = %task.task_id, task_type = %task.task_type, "task started"),
            Job::Preview(plan) => tracing::info!(plan_id = %plan.plan_id, operation = %plan.operation_type, "plan preview started"),
        }
        let (id, noun) = (job.site().work_id, job.noun());
        let started = std::time::Instant::now();
        let (cancel_tx, cancel_rx) = watch::channel(None);
        let heartbeat = self.heartbeat(&fence, cancel_tx);
        tokio::pin!(heartbeat);
        // Nothing of a preview is logged: its log stays empty.
        let log = TaskLog::new(self.store.clone(), fence.clone(), self.config.log_cap_bytes);
        let flusher = log.flush_in_background();
        let finished = tokio::select! {
            finished = self.execute(&job, Run { job: &job, fence: &fence, slot, log: &log }, cancel_rx) => Some(finished),
            () = &mut heartbeat => None,
        };
        flusher.stop().await;
        let dir = self.work_dir(id);
        let Some(finished) = finished else {
            let _ = std::fs::remove_dir_all(&dir);
            tracing::warn!(job_id = %id, "the {noun} was taken over by another worker: its Terraform was stopped and nothing more is written");
            return;
        };
        let last_log = log.take_pending();
        if let Finished::Task(task, outcome) = &finished {
            let outcome = if matches!(outcome, TaskOutcome::Failed { .. }) { "Failed" } else { "Succeeded" };
            self.config.metrics.observe_task(task.task_type.as_str(), outcome, started.elapsed());
        }
        // The lease is renewed until the outcome is recorded.
        let recorded = tokio::select! {
            recorded = patiently(id, "record the job's outcome", || self.record(&finished, &fence, &last_log)) => recorded,
            () = &mut heartbeat => Ok(false),
        };
        match recorded {
            Ok(true) => tracing::info!(job_id = %id, "{noun} finished"),
            Ok(false) => {
                tracing::warn!(job_id = %id, chunks = last_log.len(), "{noun} outcome not recorded: the lease was lost, or the plan was cancelled")
            }
            Err(e) => {
                // The working directory stays: when the lease expires, the reaper salvages its state.
                tracing::error!(job_id = %id, error = %e, "cannot record the {noun} outcome; its lease will expire");
                return;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Runs a claimed job: its outcome, a failure's message included.
    async fn execute<'j>(&self, job: &'j Job, run: Run<'_>, cancel: watch::Receiver<Option<String>>) -> Finished<'j> {
        match job {
            Job::Task(task) => Finished::Task(
                task,
                match self.try_task(&run, task, cancel).await {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        let message = e.message();
                        run.log.push("servicecatalog", "stderr", &format!("{message}\n"));
                        TaskOutcome::Failed { message }
                    }
                },
            ),
            Job::Preview(plan) => Finished::Preview(
                plan,
                self.try_preview(&run, plan, cancel).await.unwrap_or_else(|e| PreviewOutcome::Failed { message: e.message() }),
            ),
        }
    }

    /// Runs a claimed task: a drift check, or an apply or destroy.
    async fn try_task(&self, run: &Run<'_>, task: &Task, cancel: watch::Receiver<Option<String>>) -> Result<TaskOutcome, EngineError> {
        if task.task_type == OperationType::DetectProvisionedProductDrift {
            return Ok(TaskOutcome::Checked(self.try_check(run, task, cancel).await?));
        }
        let outputs = self.try_execute(run, task, cancel).await?;
        Ok(TaskOutcome::Succeeded { outputs })
    }

    /// Records a finished job's outcome (with a task's last log lines) while `fence` is current.
    async fn record(&self, finished: &Finished<'_>, fence: &Fence, last_log: &[LogChunk]) -> Result<bool, StoreError> {
        match finished {
            Finished::Task(task, outcome) => self.store.finish_task(task, Some(fence), outcome, last_log).await,
            Finished::Preview(plan, outcome) => self.store.finish_preview(plan, fence, outcome).await,
        }
    }

    /// Renews the lease of a job (on the database's clock) until it is taken over: then kills the
    /// job's Terraform process group at once, signals cancellation and returns. When no renewal
    /// has succeeded for a whole lease (the database is unreachable, or this process was paused),
    /// another node may be taking the job over: Terraform is killed at once and the job stops,
    /// while renewals go on. Signals cancellation (a graceful interrupt) when the engine aborts at
    /// shutdown, and goes on renewing while the job stops.
    async fn heartbeat(&self, fence: &Fence, cancel: watch::Sender<Option<String>>) {
        let lease_ms = self.config.lease.as_millis() as i64;
        let mut tick = tokio::time::interval(self.config.lease / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut phase = self.phase.subscribe();
        let mut aborted = false;
        let mut stopped = false;
        // The lease was set by the claim, before this instant.
        let mut renewed = tokio::time::Instant::now();
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = phase.wait_for(|p| *p == Phase::Aborting), if !aborted => {
                    aborted = true;
                    let _ = cancel.send(Some(SHUTDOWN_MESSAGE.into()));
                    continue;
                }
            }
            if !stopped && renewed.elapsed() >= self.config.lease {
                stopped = true;
                terraform::kill_leftover_group(&self.work_dir(&fence.job_id));
                let _ = cancel.send(Some(LOST_CONTACT_MESSAGE.into()));
                tracing::warn!(job_id = %fence.job_id, "no lease renewal for a whole lease: Terraform was killed");
            }
            let sent = tokio::time::Instant::now();
            match self.store.renew_lease(fence, lease_ms).await {
                Ok(true) => renewed = sent,
                Ok(false) => {
                    terraform::kill_leftover_group(&self.work_dir(&fence.job_id));
                    let _ = cancel.send(Some("The worker lost its lease on the job.".into()));
                    return;
                }
                Err(e) => tracing::warn!(job_id = %fence.job_id, error = %e, "cannot renew a lease"),
            }
        }
    }

    /// Fails the jobs whose worker died, killing what they left running on this node. A task is
    /// taken over first (so that its worker, should it come back, writes nothing) and the state
    /// it left salvaged; one whose salvaged state cannot be saved yet stays expired, its directory
    /// kept, and is taken over again at the next round.
    pub(super) async fn reap(self: Arc<Self>) {
        let reaper = format!("{}/reaper", self.node_id);
        let mut tick = tokio::time::interval(self.config.lease / 2);
        loop {
            tick.tick().await;
            let previews =
                self.store.expired::<Plan>().await.map(|plans| plans.into_iter().map(|plan| Job::Preview(Box::new(plan))).collect());
            let tasks = self.store.expired::<Task>().await.map(|tasks| tasks.into_iter().map(|task| Job::Task(Box::new(task))).collect());
            for (expired, noun) in [(previews, "previews"), (tasks, "tasks")] {
                let expired = expired.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot look for expired {noun}");
                    Vec::new()
                });
                for job in expired {
                    let (id, dir) = (job.site().work_id, self.work_dir(job.site().work_id));
                    match self.reap_job(&job, &reaper, &dir).await {
                        Ok(true) => {
                            tracing::warn!(job_id = %id, "failed a {} whose worker died", job.noun());
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(job_id = %id, error = %e, "cannot fail an expired {} yet; retrying later", job.noun()),
                    }
                }
            }
        }
    }

    /// Fails one expired job left in `dir`: whether this reaper failed it. The job is taken over
    /// first, then what it left running is killed and a task's state salvaged.
    async fn reap_job(&self, job: &Job, reaper: &str, dir: &Path) -> Result<bool, StoreError> {
        let Some(fence) = self.store.take_over(job.table(), job.site().work_id, reaper).await? else {
            return Ok(false);
        };
        if dir.exists() {
            terraform::kill_leftover_group(dir);
            // A drift check's plan never writes the state: there is nothing to salvage.
            if let Some(task) = job.changes_state() {
                let before = self.versioned_state(&task.provisioned_product_id).await?.map(|(_, state)| state);
                self.collect_state(task, &fence, dir, before.as_deref()).await?;
            }
            // Gone before the failure is recorded: whoever sees the job failed finds it cleaned up.
            let _ = std::fs::remove_dir_all(dir);
        }
        let finished = match job {
            Job::Preview(plan) => {
                let message = "The preview was interrupted: the server running it stopped before it finished (its lease expired). \
                               Run it again with UpdateProvisionedProductPlan.";
                Finished::Preview(plan, PreviewOutcome::Failed { message: message.into() })
            }
            Job::Task(task) => {
                let message = "The task was interrupted: the server running it stopped before it finished (its lease expired). \
                               The Terraform state saved by its last command is kept; retry with UpdateProvisionedProduct \
                               or clean up with TerminateProvisionedProduct.";
                Finished::Task(task, TaskOutcome::Failed { message: message.into() })
            }
        };
        self.record(&finished, &fence, &[]).await
    }
}
