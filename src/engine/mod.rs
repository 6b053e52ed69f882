//! The task engine: a pool of workers that claim queued tasks from the store, hold a lease on
//! each while Terraform runs (renewed by heartbeat), and record logs, state and outputs. Workers
//! wake at once when a task is queued on this node; a slow poll covers tasks queued elsewhere. A
//! reaper fails the tasks whose lease expired (their worker died) so that no task stays
//! `InProgress` and no product stays `UnderChange`, salvaging the state a killed Terraform left.
//! Plans' previews ([`preview`]) are jobs of the same workers under the same lease machinery; a
//! task executing a plan applies the plan's saved file instead of planning afresh.

mod logs;
mod plan_summary;
mod preview;
pub mod redact;
pub mod runner;
pub mod sandbox;
pub mod terraform;
mod workspace;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::auth::secrets::SecretBox;
use crate::model::OperationType;
use crate::store::plan::Plan;
use crate::store::provisioning::{state_serial, Fence, StateSaved, Task, TaskOutcome};
use crate::store::{Store, StoreError};
pub use logs::TaskLog;
use terraform::{error_summary, RunError, Terraform};
pub use workspace::{typed_variable, InputError, TaskInputs};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Number of tasks run at once on this node (0: API-only node).
    pub workers: usize,
    /// Terraform binary; else `terraform`, then `tofu`, on PATH.
    pub terraform: Option<PathBuf>,
    /// GOGC of Terraform's Go runtime (the child's environment).
    pub terraform_gogc: u32,
    /// Data directory: task working directories, provider mirror, sandboxes live below it.
    pub data_dir: PathBuf,
    /// Time limit of one task.
    pub task_timeout: Duration,
    /// Lease length; a task whose worker stops renewing is failed after this long.
    pub lease: Duration,
    /// Largest log kept per task.
    pub log_cap_bytes: usize,
    /// Where finished tasks are counted.
    pub metrics: Arc<crate::ops::metrics::Metrics>,
    /// How Terraform is isolated from the host.
    pub sandbox: sandbox::Sandbox,
}

/// A future the engine awaits from the layer above it.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the engine asks the domain for a job (implemented over the catalog by the provisioning
/// services): the engine knows Terraform, working directories and leases, not products.
pub trait JobSource: Send + Sync {
    /// The inputs of a change of `version_id` with these (sealed) parameters and launch role.
    fn inputs<'a>(
        &'a self,
        version_id: &'a str,
        parameters_sealed: &'a str,
        launch_role: Option<&'a str>,
    ) -> BoxFuture<'a, Result<TaskInputs, InputError>>;

    /// Whether the jobs of the (portfolio, product) launch option may reach the network.
    fn network_allowed<'a>(&'a self, portfolio_id: &'a str, product_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// The worker pool of one node.
pub struct Engine {
    store: Store,
    source: Arc<dyn JobSource>,
    secrets: SecretBox,
    config: EngineConfig,
    wake: Notify,
    node_id: String,
    provider_mirror: Option<PathBuf>,
    /// `terraform version`'s text for the binary it was read from.
    version_text: std::sync::Mutex<Option<(BinaryStamp, String)>>,
    phase: watch::Sender<Phase>,
    workers: tokio::sync::Mutex<JoinSet<()>>,
    busy: AtomicUsize,
}

/// Where a node's engine is in its life: shutting down drains, then aborts what still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Workers claim jobs.
    Running,
    /// Workers claim nothing more; running jobs go on.
    Draining,
    /// Running jobs are interrupted: Terraform stops, its state is saved, the task fails.
    Aborting,
}

/// `StatusMessage` of a task interrupted because its server shut down.
pub const SHUTDOWN_MESSAGE: &str = "The server shut down before the task finished: Terraform was interrupted and the state \
                                    it saved is kept. Retry with UpdateProvisionedProduct or clean up with \
                                    TerminateProvisionedProduct.";

/// How often the state file of a running apply is checked for changes to store.
const STATE_FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// How long the state left by a finished apply, and a task's outcome, wait for an unreachable
/// (or full) database.
const STORE_PATIENCE: Duration = Duration::from_secs(120);

/// `StatusMessage` of a task whose worker could not renew its lease for a whole lease.
const LOST_CONTACT_MESSAGE: &str = "The worker could not reach the database to renew its lease, so it stopped Terraform: \
                                    the state it saved is kept. Retry with UpdateProvisionedProduct or clean up with \
                                    TerminateProvisionedProduct.";

/// Provider source address of the bundled sandbox provider.
pub const SANDBOX_PROVIDER: &str = "servicecatalog.local/demo/sandbox";
const SANDBOX_PROVIDER_VERSION: &str = "0.1.0";

impl Engine {
    /// An engine over the store, taking its jobs' inputs from `source`; prepares the provider
    /// mirror.
    pub fn new(store: Store, secrets: SecretBox, source: Arc<dyn JobSource>, config: EngineConfig) -> Arc<Self> {
        let provider_mirror = prepare_provider_mirror(&config.data_dir);
        Arc::new(Engine {
            store,
            source,
            secrets,
            wake: Notify::new(),
            node_id: crate::store::new_id("node"),
            provider_mirror,
            version_text: std::sync::Mutex::new(None),
            config,
            phase: watch::Sender::new(Phase::Running),
            workers: tokio::sync::Mutex::new(JoinSet::new()),
            busy: AtomicUsize::new(0),
        })
    }

    /// Workers on this node: (busy, total).
    pub fn utilisation(&self) -> (usize, usize) {
        (self.busy.load(Ordering::Relaxed), self.config.workers)
    }

    /// Stops this node's workers: none claims another job; running jobs get `grace` to finish
    /// (cut short when `force` completes), then Terraform is interrupted, its state saved and
    /// the task failed with [`SHUTDOWN_MESSAGE`]. Returns when every worker has stopped.
    pub async fn shutdown(&self, grace: Duration, force: impl Future<Output = ()>) {
        self.phase.send_replace(Phase::Draining);
        self.wake.notify_waiters();
        let mut workers = self.workers.lock().await;
        let busy = self.busy.load(Ordering::Relaxed);
        if busy > 0 {
            tracing::info!(busy, grace_seconds = grace.as_secs(), "waiting for running tasks to finish");
        }
        let drained = tokio::select! {
            _ = async { while workers.join_next().await.is_some() {} } => true,
            _ = tokio::time::sleep(grace) => false,
            _ = force => false,
        };
        if !drained {
            tracing::warn!(busy = self.busy.load(Ordering::Relaxed), "interrupting the tasks still running");
            self.phase.send_replace(Phase::Aborting);
            // Bounded: Terraform is killed after its interrupt grace, then the outcome is written.
            let stopped =
                tokio::time::timeout(terraform::INTERRUPT_GRACE * 6, async { while workers.join_next().await.is_some() {} }).await;
            if stopped.is_err() {
                tracing::error!("workers did not stop; their leases will expire and the reaper fails their tasks");
            }
        }
    }

    /// A task was queued: wakes an idle worker here and, on PostgreSQL, on every node.
    pub async fn task_queued(&self) {
        self.wake.notify_one();
        if let Err(e) = self.store.notify_task_queued().await {
            tracing::warn!(error = %e, "cannot announce a queued task; other nodes will find it within seconds");
        }
    }

    /// On PostgreSQL, wakes a worker here for every task queued on any node.
    async fn listen(self: Arc<Self>) {
        loop {
            match sqlx::postgres::PgListener::connect(self.store.url()).await {
                Ok(mut listener) => {
                    if let Err(e) = listener.listen(crate::store::provisioning::TASK_CHANNEL).await {
                        tracing::warn!(error = %e, "cannot LISTEN for queued tasks");
                    } else {
                        // `recv` reconnects by itself after a lost connection.
                        while let Ok(_notification) = listener.recv().await {
                            self.wake.notify_one();
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot connect to LISTEN for queued tasks"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Starts the workers and the lease reaper.
    pub fn start(self: &Arc<Self>) {
        let mut workers = self.workers.try_lock().expect("the engine starts once");
        for slot in 0..self.config.workers {
            let engine = Arc::clone(self);
            workers.spawn(async move { engine.work(slot).await });
        }
        let engine = Arc::clone(self);
        tokio::spawn(async move { engine.reap().await });
        if self.config.workers > 0 && self.store.dialect() == crate::store::Dialect::Postgres {
            let engine = Arc::clone(self);
            tokio::spawn(async move { engine.listen().await });
        }
    }

    /// Worker `slot`'s loop: claims and runs jobs until the engine drains.
    async fn work(self: Arc<Self>, slot: usize) {
        let worker = format!("{}/{slot}", self.node_id);
        let lease_ms = self.config.lease.as_millis() as i64;
        let mut phase = self.phase.subscribe();
        while *phase.borrow_and_update() == Phase::Running {
            match self.store.claim_task(&worker, lease_ms).await {
                Ok(Some((task, fence))) => {
                    self.busy.fetch_add(1, Ordering::Relaxed);
                    self.run(task, fence, slot).await;
                    self.busy.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim tasks"),
            }
            match self.store.claim_preview(&worker, lease_ms).await {
                Ok(Some((plan, fence))) => {
                    self.busy.fetch_add(1, Ordering::Relaxed);
                    self.preview(plan, fence, slot).await;
                    self.busy.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim plan previews"),
            }
            // Woken at once for tasks queued here and at shutdown; the timeout covers other nodes and errors.
            tokio::select! {
                _ = tokio::time::timeout(Duration::from_secs(2), self.wake.notified()) => {}
                _ = phase.changed() => {}
            }
        }
    }

    /// Runs one claimed task to its end, then records the outcome if `fence` is still current
    /// (waiting out a database outage, bounded, as for its state). Once the task is taken over,
    /// its Terraform is killed and nothing more is written.
    async fn run(&self, task: Task, fence: Fence, slot: usize) {
        tracing::info!(task_id = %task.task_id, task_type = %task.task_type, "task started");
        let started = std::time::Instant::now();
        let (cancel_tx, cancel_rx) = watch::channel(None);
        let heartbeat = self.heartbeat(Lease::Task(&fence), cancel_tx);
        tokio::pin!(heartbeat);
        let log = TaskLog::new(self.store.clone(), fence.clone(), self.config.log_cap_bytes);
        let flusher = log.flush_in_background();
        let outcome = tokio::select! {
            outcome = self.execute(&task, &fence, slot, &log, cancel_rx) => Some(outcome),
            () = &mut heartbeat => None,
        };
        flusher.stop().await;
        let dir = self.work_dir(&task.task_id);
        let Some(outcome) = outcome else {
            let _ = std::fs::remove_dir_all(&dir);
            tracing::warn!(task_id = %task.task_id, "the task was taken over by another worker: its Terraform was stopped and nothing more is written");
            return;
        };
        let last_log = log.take_pending();
        self.config.metrics.observe_task(task.task_type.as_str(), outcome_name(&outcome), started.elapsed());
        // The lease is renewed until the outcome is recorded.
        let recorded = tokio::select! {
            recorded = patiently(&task.task_id, "record the task outcome", || self.store.finish_task(&task, Some(&fence), &outcome, &last_log)) => recorded,
            () = &mut heartbeat => Ok(false),
        };
        match recorded {
            Ok(true) => tracing::info!(task_id = %task.task_id, outcome = ?outcome_name(&outcome), "task finished"),
            Ok(false) => {
                tracing::warn!(task_id = %task.task_id, chunks = last_log.len(), "task outcome and last log lines not recorded: the lease was lost")
            }
            Err(e) => {
                // The working directory stays: when the lease expires, the reaper salvages its state.
                tracing::error!(task_id = %task.task_id, error = %e, "cannot record the task outcome; its lease will expire");
                return;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Renews the lease of a job (on the database's clock) until it is taken over: then kills the
    /// job's Terraform process group at once, signals cancellation and returns. When no renewal
    /// has succeeded for a whole lease (the database is unreachable, or this process was paused),
    /// another node may be taking the job over: Terraform is killed at once and the job stops,
    /// while renewals go on. Signals cancellation (a graceful interrupt) when the engine aborts at
    /// shutdown, and goes on renewing while the job stops.
    async fn heartbeat(&self, lease: Lease<'_>, cancel: watch::Sender<Option<String>>) {
        let lease_ms = self.config.lease.as_millis() as i64;
        let fence = lease.fence();
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
                tracing::warn!(?lease, "no lease renewal for a whole lease: Terraform was killed");
            }
            let sent = tokio::time::Instant::now();
            let result = match lease {
                Lease::Task(fence) => self.store.renew_lease(fence, lease_ms).await,
                Lease::Preview(fence) => self.store.renew_preview_lease(fence, lease_ms).await,
            };
            match result {
                Ok(true) => renewed = sent,
                Ok(false) => {
                    terraform::kill_leftover_group(&self.work_dir(&fence.job_id));
                    let _ = cancel.send(Some("The worker lost its lease on the job.".into()));
                    return;
                }
                Err(e) => tracing::warn!(?lease, error = %e, "cannot renew a lease"),
            }
        }
    }

    fn work_dir(&self, task_id: &str) -> PathBuf {
        self.config.data_dir.join("work").join(task_id)
    }

    async fn execute(
        &self,
        task: &Task,
        fence: &Fence,
        slot: usize,
        log: &TaskLog,
        cancel: watch::Receiver<Option<String>>,
    ) -> TaskOutcome {
        match self.try_execute(task, fence, slot, log, cancel).await {
            Ok(outputs) => TaskOutcome::Succeeded { outputs },
            Err(message) => {
                log.push("servicecatalog", "stderr", &format!("{message}\n"));
                TaskOutcome::Failed { message }
            }
        }
    }

    async fn try_execute(
        &self,
        task: &Task,
        fence: &Fence,
        slot: usize,
        log: &TaskLog,
        cancel: watch::Receiver<Option<String>>,
    ) -> Result<String, String> {
        let terminate = task.task_type == OperationType::TerminateProvisionedProduct;
        let state = patiently(&task.task_id, "read the Terraform state", || self.current_state(&task.provisioned_product_id))
            .await
            .map_err(internal)?;
        if terminate && state.is_none() {
            // No apply ever wrote state (e.g. the launch failed validation): nothing exists.
            log.push("destroy", "stdout", "No Terraform state exists for this provisioned product: there is nothing to destroy.\n");
            return Ok("[]".into());
        }
        let binary = terraform::find_binary(self.config.terraform.as_deref())
            .ok_or("No Terraform binary was found: configure --terraform or put terraform or tofu on PATH.")?;
        let inputs = load_inputs(&task.task_id, || {
            self.source.inputs(&task.product_version_id, &task.parameters_sealed, task.launch_role.as_deref())
        })
        .await?;
        let redactor = inputs.redactor(state.as_deref());
        let site = Site {
            work_id: &task.task_id,
            provisioned_product_id: &task.provisioned_product_id,
            portfolio_id: &task.portfolio_id,
            product_id: &task.product_id,
            region: &task.stack_region_id,
        };
        let prepared = self.prepare(&site, slot, &binary, &inputs, state.as_deref()).await?;
        let dir = &prepared.dir;
        let tf = self.terraform(&binary, &prepared, cancel, Some(log), &redactor);
        self.version_step(&tf, log).await?;
        step(&tf, "init", &["init", "-input=false", "-no-color"]).await?;
        match patiently(&task.task_id, "read the task's plan", || self.store.plan_of_task(&task.task_id)).await.map_err(internal)? {
            Some(plan) => self.restore_plan_file(&plan, dir).await?,
            None => {
                let var_file = format!("-var-file={}", workspace::VARIABLES_FILE);
                let mut plan = vec!["plan", "-input=false", "-no-color", "-out=tfplan", var_file.as_str()];
                if terminate {
                    plan.push("-destroy");
                }
                step(&tf, "plan", &plan).await?;
            }
        }
        let apply =
            step(&tf, if terminate { "destroy" } else { "apply" }, &["apply", "-input=false", "-no-color", "-auto-approve", "tfplan"]);
        // Terraform writes its state after every resource: the database's copy follows it while
        // the apply runs, so that when this node dies mid-apply, the node that fails the task (any
        // node of a cluster) still knows every resource made so far.
        let mut saved = state.clone();
        let applied = tokio::select! {
            applied = apply => applied,
            never = self.follow_state(task, fence, dir, &mut saved) => match never {},
        };
        let final_state = self.collect_state(task, fence, dir, saved.as_deref()).await.map_err(internal)?;
        // The sensitive outputs the apply made are known only now: masked in what is not stored yet.
        let learned = final_state.as_deref().and_then(|state| redactor.extended(redact::sensitive_outputs(state)));
        if let Some(learned) = &learned {
            log.redact_pending(learned).await;
        }
        let redactor = learned.as_ref().unwrap_or(&redactor);
        applied.map_err(|message| redactor.redact(&message).into_owned())?;
        if terminate {
            return Ok("[]".into());
        }
        // What `terraform output -json` would print: the root module's outputs in the state.
        let mut outputs = inputs.outputs(final_state.as_deref().unwrap_or_default());
        redactor.redact_json(&mut outputs);
        Ok(outputs.to_string())
    }

    /// The `version` step: `terraform version` in the task's directory, logged. Before `init` its
    /// text depends only on the binary (it would also list the providers of a dependency lock
    /// file, but a template holds only `.tf` files): so it runs once per binary (path, size,
    /// modification time) and later tasks log the same text without starting Terraform again.
    async fn version_step(&self, tf: &Terraform<'_>, log: &TaskLog) -> Result<(), String> {
        let stamp = BinaryStamp::of(tf.binary);
        if let Some(stamp) = &stamp {
            let cached = self.version_text.lock().expect("version cache lock");
            if let Some((_, text)) = cached.as_ref().filter(|(known, _)| known == stamp) {
                log.push("version", "stdout", text);
                return Ok(());
            }
        }
        let (finished, stdout) = tf.run(None, &["version", "-no-color"]).await.map_err(|e: RunError| e.to_string())?;
        log.push("version", "stdout", &stdout);
        log.push("version", "stderr", &finished.stderr);
        succeeded("version", &finished)?;
        if let Some(stamp) = stamp.filter(|_| finished.stderr.is_empty()) {
            *self.version_text.lock().expect("version cache lock") = Some((stamp, stdout));
        }
        Ok(())
    }

    /// Writes the saved plan file of `plan` into `dir`, refusing it when the provisioned
    /// product's state is no longer the version the plan was computed from.
    async fn restore_plan_file(&self, plan: &Plan, dir: &Path) -> Result<(), String> {
        if self.store.state_version(&plan.provisioned_product_id).await.map_err(internal)? != plan.state_version {
            return Err(format!(
                "The plan {} is stale: the provisioned product's state changed since its preview. Refresh it with \
                 UpdateProvisionedProductPlan.",
                plan.plan_id
            ));
        }
        let file = plan
            .plan_file_sealed
            .as_deref()
            .and_then(|sealed| self.secrets.open(sealed))
            .and_then(|encoded| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).ok())
            .ok_or_else(|| internal_message(&format!("the plan file of {} cannot be opened", plan.plan_id)))?;
        std::fs::write(dir.join("tfplan"), file).map_err(|e| format!("Cannot write the plan file: {e}"))
    }

    /// Lays out the working directory of a job (template, variables, state) and returns it with
    /// the environment and the sandbox Terraform runs in there: what a task and a plan preview
    /// both start from. Worker `slot` runs the job.
    async fn prepare(
        &self,
        site: &Site<'_>,
        slot: usize,
        binary: &Path,
        inputs: &TaskInputs,
        state: Option<&str>,
    ) -> Result<Prepared, String> {
        let network = patiently(site.work_id, "read the product's sandbox settings", || {
            self.source.network_allowed(site.portfolio_id, site.product_id)
        })
        .await
        .map_err(internal)?;
        let dir = self.work_dir(site.work_id);
        inputs.write(&dir, state).map_err(|e| format!("Cannot prepare the working directory: {e}"))?;
        let product_dir = self.sandbox_dir(site.provisioned_product_id);
        std::fs::create_dir_all(&product_dir).map_err(|e| format!("Cannot create the sandbox directory: {e}"))?;
        let jail = self.config.sandbox.jail(slot, &dir, &product_dir, binary, self.provider_mirror.as_deref(), network);
        for owned in [&dir, &product_dir] {
            jail.adopt(owned).map_err(|e| format!("Cannot hand the job's directories to its sandbox user: {e}"))?;
        }
        let env = self.environment(site.region, &dir, &product_dir, &inputs.launch_env);
        Ok(Prepared { dir, env, jail })
    }

    /// The Terraform session of a prepared job, with the node's time limit.
    fn terraform<'a>(
        &self,
        binary: &'a Path,
        prepared: &'a Prepared,
        cancel: watch::Receiver<Option<String>>,
        log: Option<&'a TaskLog>,
        redactor: &'a redact::Redactor,
    ) -> Terraform<'a> {
        Terraform {
            binary,
            dir: &prepared.dir,
            jail: &prepared.jail,
            env: &prepared.env,
            deadline: tokio::time::Instant::now() + self.config.task_timeout,
            timeout: self.config.task_timeout,
            cancel,
            log,
            redactor,
            runner: Default::default(),
        }
    }

    /// The sandbox directory of a provisioned product.
    fn sandbox_dir(&self, provisioned_product_id: &str) -> PathBuf {
        self.config.data_dir.join("sandbox").join(provisioned_product_id)
    }

    fn environment(&self, region: &str, dir: &Path, sandbox: &Path, launch_env: &[(String, String)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())),
            ("HOME".into(), dir.display().to_string()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("TF_INPUT".into(), "0".into()),
            ("TF_FORK".into(), "0".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("GOGC".into(), self.config.terraform_gogc.to_string()),
            ("RUST_LIB_BACKTRACE".into(), "0".into()),
            ("ALICLOUD_REGION".into(), region.to_string()),
            ("ALIBABA_CLOUD_REGION".into(), region.to_string()),
            ("SANDBOX_ROOT".into(), sandbox.display().to_string()),
        ];
        if let Some(mirror) = &self.provider_mirror {
            env.push(("TF_CLI_CONFIG_FILE".into(), mirror.join("terraform.rc").display().to_string()));
        }
        env.extend(launch_env.iter().cloned());
        env
    }

    async fn current_state(&self, provisioned_product_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.versioned_state(provisioned_product_id).await?.map(|(_, state)| state))
    }

    /// The newest state of a provisioned product, opened, with its version.
    async fn versioned_state(&self, provisioned_product_id: &str) -> Result<Option<(i64, String)>, StoreError> {
        match self.store.latest_state(provisioned_product_id).await? {
            Some((version, sealed)) => {
                let state = self
                    .secrets
                    .open(&sealed)
                    .ok_or_else(|| StoreError::Database("a Terraform state cannot be opened with the master key".into()))?;
                Ok(Some((version, state)))
            }
            None => Ok(None),
        }
    }

    /// Saves `terraform.tfstate` of `dir` every second while it changes (a complete JSON document
    /// only: Terraform may be writing it); `saved` is the last version stored. Never returns.
    async fn follow_state(&self, task: &Task, fence: &Fence, dir: &Path, saved: &mut Option<String>) -> std::convert::Infallible {
        let mut tick = tokio::time::interval(STATE_FOLLOW_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(current) = sandbox::read_job_file(&dir.join("terraform.tfstate")).ok().and_then(|b| String::from_utf8(b).ok()) else {
                continue;
            };
            if saved.as_deref() == Some(current.as_str()) || serde_json::from_str::<Value>(&current).is_err() {
                continue;
            }
            match self.store.save_state(&task.provisioned_product_id, fence, &self.secrets.seal(&current), state_serial(&current)).await {
                Ok(StateSaved::Version(version)) => {
                    tracing::debug!(task_id = %task.task_id, version, "saved Terraform state during the apply");
                    *saved = Some(current);
                }
                Ok(refused) => tracing::warn!(task_id = %task.task_id, ?refused, "Terraform state not saved during the apply"),
                Err(e) => tracing::warn!(task_id = %task.task_id, error = %e, "cannot save Terraform state during the apply"),
            }
        }
    }

    /// Saves the state Terraform left in `dir` when it differs from `before` (an `errored.tfstate`
    /// wins; an empty file, as a killed Terraform may leave, never replaces a good version), and
    /// returns it. Written only while `fence` is current, and never over a newer state.
    async fn collect_state(&self, task: &Task, fence: &Fence, dir: &Path, before: Option<&str>) -> Result<Option<String>, StoreError> {
        let read = |name: &str| {
            sandbox::read_job_file(&dir.join(name)).ok().and_then(|b| String::from_utf8(b).ok()).filter(|s| !s.trim().is_empty())
        };
        let state = read("errored.tfstate").or_else(|| read("terraform.tfstate"));
        if let Some(state) = &state {
            if Some(state.as_str()) != before {
                let sealed = self.secrets.seal(state);
                // The only copy is in the working directory, removed after the task: wait out a
                // database outage (bounded) rather than lose what Terraform made.
                let serial = state_serial(state);
                match patiently(&task.task_id, "save Terraform state", || {
                    self.store.save_state(&task.provisioned_product_id, fence, &sealed, serial)
                })
                .await?
                {
                    StateSaved::Version(version) => tracing::info!(task_id = %task.task_id, version, "saved Terraform state"),
                    refused => {
                        tracing::warn!(task_id = %task.task_id, ?refused, "Terraform state not saved: the task was taken over, or a newer state is stored")
                    }
                }
            }
        }
        Ok(state)
    }

    /// Fails the tasks whose worker died: takes each over (so that its worker, should it come
    /// back, writes nothing), salvages what it left on this node, then records the failure. A
    /// task whose salvaged state cannot be saved yet stays expired, its directory kept, and is
    /// taken over again at the next round.
    async fn reap(self: Arc<Self>) {
        let reaper = format!("{}/reaper", self.node_id);
        let mut tick = tokio::time::interval(self.config.lease / 2);
        loop {
            tick.tick().await;
            self.reap_previews(&reaper).await;
            let expired = match self.store.expired_tasks().await {
                Ok(expired) => expired,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for expired tasks");
                    continue;
                }
            };
            for task in expired {
                let fence = match self.store.take_over_expired_task(&task, &reaper).await {
                    Ok(Some(fence)) => fence,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(task_id = %task.task_id, error = %e, "cannot take over an expired task");
                        continue;
                    }
                };
                let dir = self.work_dir(&task.task_id);
                if dir.exists() {
                    terraform::kill_leftover_group(&dir);
                    let salvaged = match self.current_state(&task.provisioned_product_id).await {
                        Ok(before) => self.collect_state(&task, &fence, &dir, before.as_deref()).await.map(drop),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = salvaged {
                        tracing::warn!(task_id = %task.task_id, error = %e, "cannot salvage the state of an interrupted task yet; retrying later");
                        continue;
                    }
                }
                let outcome = TaskOutcome::Failed {
                    message: "The task was interrupted: the server running it stopped before it finished (its lease expired). \
                              The Terraform state saved by its last command is kept; retry with UpdateProvisionedProduct \
                              or clean up with TerminateProvisionedProduct."
                        .into(),
                };
                match self.store.finish_task(&task, Some(&fence), &outcome, &[]).await {
                    Ok(true) => {
                        let _ = std::fs::remove_dir_all(&dir);
                        tracing::warn!(task_id = %task.task_id, "failed a task whose worker died");
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(task_id = %task.task_id, error = %e, "cannot fail an expired task"),
                }
            }
        }
    }
}

/// Loads a job's inputs, waiting out a transient database error; a failure becomes the job's
/// `StatusMessage`.
async fn load_inputs<F, Fut>(job_id: &str, load: F) -> Result<TaskInputs, String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<TaskInputs, workspace::InputError>>,
{
    let loaded = patiently(job_id, "read the job's inputs", || async {
        match load().await {
            Err(workspace::InputError::Store(e)) => Err(e),
            other => Ok(other),
        }
    })
    .await;
    match loaded {
        Ok(inputs) => inputs.map_err(workspace::InputError::into_message),
        Err(e) => Err(internal(e)),
    }
}

/// Runs a store operation, retrying it (once a second, for at most [`STORE_PATIENCE`]) while the
/// database is unreachable or full: what a job has done is not lost to a transient error.
async fn patiently<T, F, Fut>(job_id: &str, what: &str, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let patience = tokio::time::Instant::now() + STORE_PATIENCE;
    loop {
        match op().await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() < patience => {
                tracing::warn!(job_id, error = %e, "cannot {what} yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            done => return done,
        }
    }
}

/// Which binary a file path holds: its path, size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BinaryStamp(PathBuf, u64, std::time::SystemTime);

impl BinaryStamp {
    fn of(binary: &Path) -> Option<Self> {
        let meta = std::fs::metadata(binary).ok()?;
        Some(BinaryStamp(binary.to_path_buf(), meta.len(), meta.modified().ok()?))
    }
}

/// Runs one Terraform command, turning a failure into the task's `StatusMessage`.
async fn step(tf: &Terraform<'_>, label: &str, args: &[&str]) -> Result<(), String> {
    let (finished, _) = tf.run(Some(label), args).await.map_err(|e: RunError| e.to_string())?;
    succeeded(label, &finished)
}

/// A finished command's failure as the task's `StatusMessage`.
fn succeeded(label: &str, finished: &terraform::Finished) -> Result<(), String> {
    if finished.status.success() {
        Ok(())
    } else {
        Err(format!("terraform {label} failed ({}): {}", finished.status, error_summary(&finished.stderr)))
    }
}

fn internal(e: StoreError) -> String {
    internal_message(&e)
}

/// Logs the cause and returns the message a job's caller sees.
fn internal_message(cause: &dyn std::fmt::Display) -> String {
    tracing::error!(error = %cause, "job failed on an internal error");
    "An internal error stopped the task.".into()
}

/// Where a job runs: its working directory's name, its provisioned product and launch option,
/// its region.
struct Site<'a> {
    work_id: &'a str,
    provisioned_product_id: &'a str,
    portfolio_id: &'a str,
    product_id: &'a str,
    region: &'a str,
}

/// A job's working directory laid out, with the environment and the sandbox Terraform runs in.
struct Prepared {
    dir: PathBuf,
    env: Vec<(String, String)>,
    jail: sandbox::Jail,
}

/// The job whose lease a worker holds, with its claim.
#[derive(Debug, Clone, Copy)]
enum Lease<'a> {
    /// A task.
    Task(&'a Fence),
    /// A plan's preview.
    Preview(&'a Fence),
}

impl Lease<'_> {
    fn fence(&self) -> &Fence {
        match self {
            Lease::Task(fence) | Lease::Preview(fence) => fence,
        }
    }
}

fn outcome_name(outcome: &TaskOutcome) -> &'static str {
    match outcome {
        TaskOutcome::Succeeded { .. } => "Succeeded",
        TaskOutcome::Failed { .. } => "Failed",
    }
}

/// Lays out a read-only filesystem mirror with the bundled sandbox provider (found next to this
/// executable) and a CLI configuration that installs from it; `None` when the provider is absent.
fn prepare_provider_mirror(data_dir: &Path) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let provider = exe.parent()?.join("terraform-provider-sandbox");
    if !provider.is_file() {
        tracing::info!("the sandbox provider is not installed next to the server; templates cannot use it");
        return None;
    }
    let mirror = data_dir.join("providers");
    let target = mirror
        .join(SANDBOX_PROVIDER)
        .join(SANDBOX_PROVIDER_VERSION)
        .join("linux_amd64")
        .join(format!("terraform-provider-sandbox_v{SANDBOX_PROVIDER_VERSION}"));
    let result = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(target.parent().expect("has a parent"))?;
        let tmp = target.with_extension("tmp");
        std::fs::copy(&provider, &tmp)?;
        std::fs::rename(&tmp, &target)?;
        let rc = format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = {path}\n    include = [\"servicecatalog.local/*/*\"]\n  }}\n  direct {{\n    exclude = [\"servicecatalog.local/*/*\"]\n  }}\n}}\n",
            path = json!(mirror.display().to_string())
        );
        std::fs::write(mirror.join("terraform.rc"), rc)
    })();
    match result {
        Ok(()) => Some(mirror),
        Err(e) => {
            tracing::warn!(error = %e, "cannot prepare the provider mirror");
            None
        }
    }
}

/// The JSON `Outputs` list of a task from its Terraform state (the root module's `outputs`, as
/// `terraform output -json` prints them); sensitive values masked.
fn outputs_of_state(state: &str, describe: impl Fn(&str) -> String) -> Value {
    let parsed: Value = serde_json::from_str(state).unwrap_or_default();
    let list: Vec<Value> = parsed["outputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, o)| {
            let value = if o["sensitive"].as_bool().unwrap_or(false) {
                "******".to_string()
            } else {
                match &o["value"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            };
            json!({"OutputKey": name, "OutputValue": value, "Description": describe(name)})
        })
        .collect();
    Value::Array(list)
}
