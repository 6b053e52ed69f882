//! The scheduler's rules: which recurring jobs exist (one `DriftCheck` job per `Drift`
//! constraint, kept in step with the constraints), what a due job does (queues a drift check of
//! each live provisioned product of its constraint's product and portfolio, on behalf of its
//! owner, through the one queueing place), when it is next due (its interval, never below the
//! node's minimum, plus up to a tenth of it of jitter so that checks spread out), and the
//! re-applies that checks which found drift ask for; and one `Expiry` job per provisioned product
//! with an expiry, which warns before it and then terminates the product ([`super::expiry`]);
//! one `UpgradeCampaign` job per upgrade campaign with work under way, which previews and upgrades
//! its provisioned products ([`super::campaign`]); and one `FollowRecommended` job, which updates
//! the provisioned products whose policy follows their product's `Recommended` version
//! ([`super::update_policy`]); and one `DependencyUpdate` job per stale provisioned product whose
//! policy follows its upstreams ([`super::dependency`]).
//! Every node running workers runs one
//! [`Scheduler`]; the store's claim ([`crate::store::schedule`]) makes exactly one node run each
//! due job, and a job whose node died is run by another once its lease expires. Each task it
//! queues is audited with `system` as the actor, on behalf of the owner.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::json;

use super::campaign::{CampaignNext, POLL_MS};
use super::dependency::DependentStep;
use super::drift::{Made, Remediated};
use super::expiry::{expiry_policy, next_step, ExpiryStep, RECHECK_MS};
use super::queue::Provisioner;
use crate::auth::secrets::SecretBox;
use crate::catalog::constraint::{ConstraintConfig, ConstraintType, DriftConfig};
use crate::catalog::error::DomainError;
use crate::engine::Engine;
use crate::model::{format_time, Region, ScheduleKind, UpdatePolicy};
use crate::store::audit::AuditEvent;
use crate::store::expiry::ExpiryTermination;
use crate::store::provisioning::ProvisionedProduct;
use crate::store::schedule::{ScheduleFence, ScheduledJob};
use crate::store::{Store, StoreError};

/// How often a node looks for due jobs and pending re-applies.
const TICK: Duration = Duration::from_secs(1);

/// How often a node brings the jobs in step with the `Drift` constraints (in ticks).
const RECONCILE_TICKS: u32 = 5;

/// How long a `DependencyUpdate` job whose update could not be queued waits before it tries again.
const DEPENDENCY_RETRY_MS: i64 = 60_000;

/// Longest jitter added to a job's interval.
const MAX_JITTER_MS: i64 = 5 * 60_000;

/// How often the provisioned products following their product's `Recommended` version are
/// brought to it.
const FOLLOW_INTERVAL_MS: i64 = 5_000;

/// The subject of the one `FollowRecommended` job.
const FOLLOW_SUBJECT: &str = "all";

/// The audit record of `action` on the provisioned product `id`, done by the scheduler
/// ([`SYSTEM`]) on behalf of its `owner` in the request `request_id` (its node, and what it made
/// when that is known already): `ProvisionedProductId`, `OnBehalfOf`, then the `extra` parameters.
pub(super) fn on_behalf(request_id: String, action: &str, id: &str, owner: &str, extra: serde_json::Value) -> AuditEvent {
    let mut parameters = json!({"ProvisionedProductId": id, "OnBehalfOf": owner});
    if let (Some(all), serde_json::Value::Object(extra)) = (parameters.as_object_mut(), extra) {
        all.extend(extra);
    }
    AuditEvent {
        event_id: String::new(),
        occurred_at: 0,
        request_id,
        action: action.into(),
        principal_id: SYSTEM.into(),
        principal_name: SYSTEM.into(),
        resource_id: id.into(),
        parameters: parameters.to_string(),
        http_status: 200,
        result_code: "Success".into(),
    }
}

/// The actor the audit trail names for what the scheduler does.
pub const SYSTEM: &str = "system";

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// The shortest interval between two drift checks of a provisioned product (a `Drift`
    /// constraint asking for less gets this).
    pub min_drift_interval: Duration,
    /// How long a node holds a due job before another node may run it.
    pub lease: Duration,
    /// For tests only: how long a node sleeps holding an expiry job before it queues the
    /// terminate (so that a test can kill it while it holds the job); zero in service.
    pub expiry_hold: Duration,
}

/// One node's scheduler.
pub struct Scheduler {
    store: Store,
    secrets: SecretBox,
    regions: Vec<Region>,
    account_id: String,
    engine: Arc<Engine>,
    config: ScheduleConfig,
    node: String,
}

impl Scheduler {
    /// A scheduler working as `provisioner` does, queueing its tasks through `engine`'s node (the
    /// provisioner's).
    pub fn new(provisioner: &Provisioner<'_>, engine: Arc<Engine>, config: ScheduleConfig) -> Self {
        let (store, secrets) = (provisioner.store.clone(), provisioner.secrets.clone());
        let (regions, account_id) = (provisioner.regions.to_vec(), provisioner.account_id.to_string());
        Scheduler { store, secrets, regions, account_id, engine, config, node: crate::store::new_id("scheduler") }
    }

    fn provisioner(&self) -> Provisioner<'_> {
        Provisioner {
            store: &self.store,
            secrets: &self.secrets,
            regions: &self.regions,
            account_id: &self.account_id,
            engine: &self.engine,
            scheduled: None,
        }
    }

    /// The same, each task it queues audited as `action` on `pp` by `system` on behalf of its
    /// owner, with the `extra` parameters, in the transaction that queues it.
    fn audited(&self, action: &str, pp: &ProvisionedProduct, extra: serde_json::Value) -> Provisioner<'_> {
        self.provisioner().audited(on_behalf(self.node.to_string(), action, &pp.provisioned_product_id, &pp.owner_principal_id, extra))
    }

    /// Runs for as long as the process does: keeps the jobs in step with the constraints, runs
    /// the due jobs this node claims, and queues pending re-applies.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for round in 0u32.. {
            tick.tick().await;
            if round % RECONCILE_TICKS == 0 {
                if let Err(e) = self.reconcile().await {
                    tracing::warn!(error = %e, "cannot bring the scheduled jobs in step with the Drift constraints");
                }
                if let Err(e) = self.reconcile_expiries().await {
                    tracing::warn!(error = %e, "cannot bring the scheduled jobs in step with the expiring provisioned products");
                }
                if let Err(e) = self.reconcile_upgrades().await {
                    tracing::warn!(error = %e, "cannot bring the scheduled jobs in step with the upgrade campaigns");
                }
                if let Err(e) = self.reconcile_dependents().await {
                    tracing::warn!(error = %e, "cannot bring the scheduled jobs in step with the stale dependents");
                }
            }
            if let Err(e) = self.run_due().await {
                tracing::warn!(error = %e, "cannot run the due scheduled jobs");
            }
            match self.provisioner().remediate(&self.node).await {
                Ok(done) => {
                    for remediated in done {
                        self.log_remediation(remediated);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot carry out the pending remediations"),
            }
        }
    }

    /// The interval of a `Drift` constraint on this node, in ms.
    fn interval_ms(&self, config: &DriftConfig) -> i64 {
        (config.interval_minutes.0 as i64).max(self.config.min_drift_interval.as_millis() as i64)
    }

    /// One job per `Drift` constraint, at its interval; the jobs of deleted constraints removed.
    /// A new job is first due an interval (and jitter) from now.
    async fn reconcile(&self) -> Result<(), StoreError> {
        let jobs = self.store.scheduled_jobs(ScheduleKind::DriftCheck).await?;
        let constraints = self.store.constraints_of_type(ConstraintType::Drift.as_str()).await?;
        for (id, text) in &constraints {
            let Ok(ConstraintConfig::Drift(config)) = ConstraintConfig::parse(ConstraintType::Drift, text) else { continue };
            let interval = self.interval_ms(&config);
            if !jobs.iter().any(|job| &job.subject == id && job.interval_ms == interval) {
                self.store.schedule(ScheduleKind::DriftCheck, id, interval, interval + jitter(interval)).await?;
            }
        }
        for job in jobs.iter().filter(|job| !constraints.iter().any(|(id, _)| id == &job.subject)) {
            self.store.unschedule(job.kind, &job.subject).await?;
        }
        Ok(())
    }

    /// Runs every job due now that this node claims.
    async fn run_due(&self) -> Result<(), StoreError> {
        let lease_ms = self.config.lease.as_millis() as i64;
        while let Some((job, fence)) = self.store.claim_due_job(&self.node, lease_ms).await? {
            match job.kind {
                ScheduleKind::DriftCheck => self.check_drift(&job, &fence).await?,
                ScheduleKind::Expiry => self.expire(&job, &fence).await?,
                ScheduleKind::DependencyUpdate => self.update_dependent(&job, &fence).await?,
                ScheduleKind::UpgradeCampaign => self.advance_campaign(&job, &fence).await?,
                ScheduleKind::FollowRecommended => self.follow_recommended(&fence).await?,
            }
        }
        Ok(())
    }

    /// A due `DriftCheck` job: a drift check of each live provisioned product of its constraint's
    /// pair, unless one was queued since the job fell due (a node that died after queueing some
    /// does not have them queued twice); then due again an interval later.
    async fn check_drift(&self, job: &ScheduledJob, fence: &ScheduleFence) -> Result<(), StoreError> {
        let Some(constraint) = self.store.constraint(&job.subject).await? else {
            self.store.unschedule(job.kind, &job.subject).await?;
            return Ok(());
        };
        let config = match ConstraintConfig::parse(ConstraintType::Drift, &constraint.config) {
            Ok(ConstraintConfig::Drift(config)) => config,
            _ => {
                self.store.unschedule(job.kind, &job.subject).await?;
                return Ok(());
            }
        };
        for pp in self.store.provisioned_products_of(Some(&constraint.portfolio_id), &constraint.product_id).await? {
            if self.store.drift_check_queued_since(&pp.provisioned_product_id, job.due_at).await? {
                continue;
            }
            let provisioner = self.audited("DetectProvisionedProductDrift", &pp, json!({}));
            let queued = match provisioner.owner(&pp).await {
                Ok(Some(owner)) => provisioner.detect_drift(&owner, &pp, config.remediation).await,
                Ok(None) => Err(DomainError::not_found("Principal", &pp.owner_principal_id)),
                Err(e) => Err(e),
            };
            if let Err(e) = queued {
                tracing::info!(provisioned_product_id = %pp.provisioned_product_id, reason = %e, "scheduled drift check not queued")
            }
        }
        let interval = self.interval_ms(&config);
        if !self.store.finish_scheduled_job(fence, interval + jitter(interval)).await? {
            tracing::warn!(job_id = %job.job_id, "a scheduled job was taken over before it finished");
        }
        Ok(())
    }

    /// One `Expiry` job per live provisioned product with an expiry (due at once: it works out
    /// its own next time); the jobs of the others removed.
    async fn reconcile_expiries(&self) -> Result<(), StoreError> {
        let jobs = self.store.scheduled_jobs(ScheduleKind::Expiry).await?;
        let expiring = self.store.expiring_products().await?;
        for id in expiring.iter().filter(|id| !jobs.iter().any(|job| &job.subject == *id)) {
            self.store.schedule(ScheduleKind::Expiry, id, 0, 0).await?;
        }
        for job in jobs.iter().filter(|job| !expiring.contains(&job.subject)) {
            self.store.unschedule(job.kind, &job.subject).await?;
        }
        Ok(())
    }

    /// A due `Expiry` job: tells the warning due, or queues the terminate (the first, or the
    /// retry of a failed one once its backoff passed) on behalf of the owner, then sets itself
    /// due when there is next something to do. What it wrote with the job's release or with the
    /// terminate is never written twice by a node running the job again after this one died.
    async fn expire(&self, job: &ScheduledJob, fence: &ScheduleFence) -> Result<(), StoreError> {
        let id = job.subject.as_str();
        let (Some(pp), Some(state)) = (self.store.provisioned_product(id).await?, self.store.expiry_state(id).await?) else {
            self.store.unschedule(job.kind, id).await?;
            return Ok(());
        };
        let policy = expiry_policy(&self.store, &pp.portfolio_id, &pp.product_id).await.unwrap_or_else(|e| {
            tracing::warn!(provisioned_product_id = id, error = %e, "cannot read the Expiry constraint: no warnings");
            None
        });
        let warnings = match (policy, state.expires_at) {
            (Some(policy), Some(expires_at)) => policy.warning_times(expires_at),
            _ => Vec::new(),
        };
        let terminations = match &state.task_id {
            Some(first) => self.store.expiry_terminations(id, first).await?,
            None => Vec::new(),
        };
        let now = self.store.clock_ms().await?;
        let expires_at = state.expires_at.unwrap_or(now);
        let released = match next_step(now, &state, &warnings, pp.status, &terminations) {
            ExpiryStep::Forget => {
                self.store.unschedule(job.kind, id).await?;
                true
            }
            ExpiryStep::Warn { at, next_due } => self.store.warn_of_expiry(fence, &pp, expires_at, at, next_due).await?,
            ExpiryStep::Wait { until } => self.store.finish_scheduled_job_at(fence, until).await?,
            ExpiryStep::Terminate { first } => {
                if !self.config.expiry_hold.is_zero() {
                    tracing::info!(provisioned_product_id = id, job_id = %job.job_id, "holding an expiry job (test delay)");
                    tokio::time::sleep(self.config.expiry_hold).await;
                }
                let provisioner = self.audited("TerminateProvisionedProduct", &pp, json!({"ExpiryTime": format_time(expires_at)}));
                let queued = match provisioner.owner(&pp).await {
                    Ok(Some(owner)) => provisioner.expire(&owner, &pp, ExpiryTermination { expires_at, first }).await,
                    Ok(None) => Err(DomainError::not_found("Principal", &pp.owner_principal_id)),
                    Err(e) => Err(e),
                };
                match queued {
                    Ok(queued) => {
                        tracing::info!(provisioned_product_id = id, task_id = %queued.task_id, first, "queued the terminate of an expired provisioned product");
                    }
                    Err(e) => {
                        tracing::warn!(provisioned_product_id = id, reason = %e, "the terminate of an expired provisioned product was not queued")
                    }
                }
                self.store.finish_scheduled_job_at(fence, now + RECHECK_MS).await?
            }
        };
        if !released {
            tracing::warn!(job_id = %job.job_id, "a scheduled job was taken over (or its expiry changed) before it finished");
        }
        Ok(())
    }

    /// One `UpgradeCampaign` job per campaign with work under way (a job that went while an
    /// administrator moved its campaign comes back), and the one `FollowRecommended` job.
    async fn reconcile_upgrades(&self) -> Result<(), StoreError> {
        let jobs = self.store.scheduled_jobs(ScheduleKind::UpgradeCampaign).await?;
        for id in self.store.campaigns_to_advance().await? {
            if !jobs.iter().any(|job| job.subject == id.as_str()) {
                self.store.schedule(ScheduleKind::UpgradeCampaign, &id, POLL_MS, 0).await?;
            }
        }
        self.store.schedule(ScheduleKind::FollowRecommended, FOLLOW_SUBJECT, FOLLOW_INTERVAL_MS, FOLLOW_INTERVAL_MS).await
    }

    /// A due `UpgradeCampaign` job: advances its campaign; each update it queued is audited as
    /// `UpdateProvisionedProduct` by `system` on behalf of the owner. The job goes when the
    /// campaign has nothing under way.
    async fn advance_campaign(&self, job: &ScheduledJob, fence: &ScheduleFence) -> Result<(), StoreError> {
        let next = match self.provisioner().advance_campaign(&job.subject, &self.node).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(campaign_id = %job.subject, error = %e, "cannot advance an upgrade campaign");
                CampaignNext::Poll
            }
        };
        match next {
            CampaignNext::Poll if !self.store.finish_scheduled_job(fence, POLL_MS).await? => {
                tracing::warn!(job_id = %job.job_id, "a scheduled job was taken over before it finished");
            }
            CampaignNext::Poll => {}
            CampaignNext::Idle => self.store.unschedule(job.kind, &job.subject).await?,
        }
        Ok(())
    }

    /// The due `FollowRecommended` job: updates each provisioned product following its
    /// product's `Recommended` version that runs another one, on behalf of its owner (audited
    /// as `system`); then due again an interval later.
    async fn follow_recommended(&self, fence: &ScheduleFence) -> Result<(), StoreError> {
        match self.provisioner().follow_recommended(&self.node).await {
            Ok(updates) => {
                for followed in updates {
                    tracing::info!(provisioned_product_id = %followed.provisioned_product.provisioned_product_id, task_id = %followed.queued.task_id, version_id = %followed.version_id, "queued the update of a provisioned product to its Recommended version");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot follow the Recommended versions"),
        }
        if !self.store.finish_scheduled_job(fence, FOLLOW_INTERVAL_MS).await? {
            tracing::warn!(job_id = %fence.job_id, "a scheduled job was taken over before it finished");
        }
        Ok(())
    }

    /// A `DependencyUpdate` job due now for each stale provisioned product whose policy follows
    /// and that has none (one whose policy changed to `FollowRecommended` after it went stale,
    /// say); a job waiting or retrying keeps its time.
    async fn reconcile_dependents(&self) -> Result<(), StoreError> {
        let jobs = self.store.scheduled_jobs(ScheduleKind::DependencyUpdate).await?;
        for id in self.store.stale_followers().await? {
            if !jobs.iter().any(|job| job.subject == id) {
                self.store.schedule(ScheduleKind::DependencyUpdate, &id, 0, 0).await?;
            }
        }
        Ok(())
    }

    /// A due `DependencyUpdate` job: the stale provisioned product it is about is updated on
    /// behalf of its owner (its references resolved again) when its update policy follows and
    /// neither it nor an upstream of it is changing or about to be updated; until then the job
    /// looks again every [`RECHECK_MS`]. The job goes once the update is queued (the task clears
    /// the staleness as it replaces the product's dependencies), or when there is nothing to do.
    async fn update_dependent(&self, job: &ScheduledJob, fence: &ScheduleFence) -> Result<(), StoreError> {
        let id = job.subject.as_str();
        let Some(pp) = self.store.provisioned_product(id).await? else {
            self.store.unschedule(job.kind, id).await?;
            return Ok(());
        };
        let provisioner = self.provisioner();
        let released = match provisioner.dependent_step(&pp, follows_upstreams).await {
            Ok(DependentStep::Forget) => {
                self.store.unschedule(job.kind, id).await?;
                true
            }
            Ok(DependentStep::Wait) => self.store.finish_scheduled_job(fence, RECHECK_MS).await?,
            Ok(DependentStep::Update) => {
                let provisioner = self.audited("UpdateProvisionedProduct", &pp, json!({"Reason": "DependencyStale"}));
                let queued = match provisioner.owner(&pp).await {
                    Ok(Some(owner)) => provisioner.reapply(&owner, &pp).await,
                    Ok(None) => Err(DomainError::not_found("Principal", &pp.owner_principal_id)),
                    Err(e) => Err(e),
                };
                match queued {
                    Ok(queued) => {
                        tracing::info!(provisioned_product_id = id, task_id = %queued.task_id, "queued the update of a provisioned product whose upstream outputs changed");
                        self.store.unschedule(job.kind, id).await?;
                        true
                    }
                    Err(e) => {
                        tracing::warn!(provisioned_product_id = id, reason = %e, "the update of a stale dependent was not queued; retrying later");
                        self.store.finish_scheduled_job(fence, DEPENDENCY_RETRY_MS).await?
                    }
                }
            }
            Err(e) => {
                tracing::warn!(provisioned_product_id = id, error = %e, "cannot work out the update of a stale dependent");
                self.store.finish_scheduled_job(fence, DEPENDENCY_RETRY_MS).await?
            }
        };
        if !released {
            tracing::warn!(job_id = %job.job_id, "a scheduled job was taken over before it finished");
        }
        Ok(())
    }

    /// Logs what a drift check's remediation did (audited with its task or plan).
    fn log_remediation(&self, done: Remediated) {
        match &done.made {
            Made::Update(update) => {
                tracing::info!(check_task_id = %done.check, task_id = %update.task_id, "queued the re-apply of a drifted provisioned product");
            }
            Made::Plan(plan_id) => {
                tracing::info!(check_task_id = %done.check, plan_id = %plan_id, "created the remediation plan of a drifted provisioned product");
            }
            Made::Execution { plan_id, update } => {
                tracing::info!(check_task_id = %done.check, plan_id = %plan_id, task_id = %update.task_id, "executed an approved remediation plan");
            }
        }
    }
}

/// Up to a tenth of `interval_ms` (at most [`MAX_JITTER_MS`]), at random.
fn jitter(interval_ms: i64) -> i64 {
    rand::thread_rng().gen_range(0..=(interval_ms / 10).min(MAX_JITTER_MS))
}

/// Whether the scheduler updates `pp` when an output its parameters read changes: only under
/// `FollowRecommended` (`Manual` and `Pinned` products are marked stale, nothing more).
fn follows_upstreams(pp: &ProvisionedProduct) -> bool {
    pp.update_policy == UpdatePolicy::FollowRecommended
}
