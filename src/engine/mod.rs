//! The task engine: a pool of workers that claim queued tasks from the store, hold a lease on
//! each while Terraform runs (renewed by heartbeat), and record logs, state and outputs. Workers
//! wake at once when a task is queued on this node; a slow poll covers tasks queued elsewhere. A
//! reaper fails the tasks whose lease expired (their worker died) so that no task stays
//! `InProgress` and no product stays `UnderChange`, salvaging the state a killed Terraform left.
//! Tasks ([`task`]) and plans' previews ([`preview`]) are the two kinds of [`job`], under the same
//! lease machinery; a job's failure is an [`EngineError`], whose text is its `StatusMessage`.
//! Each job runs on the binary its template's `Transform` selects among the node's [`binaries`].

pub mod binaries;
mod drift;
mod job;
mod logs;
mod plan_summary;
mod prepared;
mod preview;
pub mod redact;
pub mod runner;
pub mod sandbox;
mod task;
pub mod terraform;
mod workspace;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::auth::secrets::SecretBox;
use crate::store::provisioning::{state_serial, Fence, StateSaved, Task};
use crate::store::{Store, StoreError};
use binaries::BinaryStamp;
use job::Job;
pub use job::Site;
pub use logs::TaskLog;
use prepared::Init;
use terraform::Terraform;
pub use workspace::{typed_variable, TaskInputs};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Number of tasks run at once on this node (0: API-only node).
    pub workers: usize,
    /// The Terraform binaries and which one runs a template.
    pub binaries: Arc<binaries::Binaries>,
    /// GOGC of Terraform's Go runtime (the child's environment).
    pub terraform_gogc: u32,
    /// Data directory: task working directories, provider mirror, prepared inits, sandboxes live below it.
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
    /// The inputs of a job at `site`, or why it cannot run.
    fn inputs<'a>(&'a self, site: &'a Site<'a>) -> BoxFuture<'a, Result<TaskInputs, EngineError>>;
}

/// The worker pool of one node.
pub struct Engine {
    store: Store,
    source: Arc<dyn JobSource>,
    secrets: SecretBox,
    config: EngineConfig,
    wake: Notify,
    node_id: String,
    provider_mirror: Option<ProviderMirror>,
    /// `init`s done once and reused by the jobs with the same inputs.
    inits: prepared::PreparedInits,
    /// `terraform version`'s text of each binary, and the file it was read from.
    version_text: std::sync::Mutex<HashMap<PathBuf, (BinaryStamp, String)>>,
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
            inits: prepared::PreparedInits::new(&config.data_dir),
            version_text: std::sync::Mutex::new(
                config.binaries.all().iter().filter_map(|b| Some((b.path.clone(), (b.stamp.clone()?, b.version_text.clone())))).collect(),
            ),
            config,
            phase: watch::Sender::new(Phase::Running),
            workers: tokio::sync::Mutex::new(JoinSet::new()),
            busy: AtomicUsize::new(0),
        })
    }

    /// The binaries this node runs templates with.
    pub fn binaries(&self) -> &binaries::Binaries {
        &self.config.binaries
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

    /// Starts the workers and the lease reaper.
    pub fn start(self: &Arc<Self>) {
        let mut workers = self.workers.try_lock().expect("the engine starts once");
        for slot in 0..self.config.workers {
            let engine = Arc::clone(self);
            workers.spawn(async move { engine.work(slot).await });
        }
        let engine = Arc::clone(self);
        tokio::spawn(async move { engine.reap().await });
        if self.config.workers > 0 {
            // Wakes a worker here for every task queued on any node (PostgreSQL's; SQLite's only node wakes in memory).
            let engine = Arc::clone(self);
            tokio::spawn(async move { engine.store.listen_for_queued_tasks(|| engine.wake.notify_one()).await });
        }
    }

    fn work_dir(&self, task_id: &str) -> PathBuf {
        self.config.data_dir.join("work").join(task_id)
    }

    /// Lays out the working directory of a job (template, variables, `state`) and returns the
    /// job's inputs and its Terraform session there (sandbox, environment, redactor, the node's
    /// time limit, logging to `log`): what a task and a plan preview both start from. Worker
    /// `slot` runs the job.
    async fn prepare<'a>(
        &self,
        job: &Job,
        slot: usize,
        state: Option<&str>,
        cancel: watch::Receiver<Option<String>>,
        log: Option<&'a TaskLog>,
    ) -> Result<(TaskInputs, Terraform<'a>, Option<Init>), EngineError> {
        let site = job.site();
        // A transient database error is waited out; a refusal becomes the job's `StatusMessage`.
        let inputs = patiently(site.work_id, "read the job's inputs", || async {
            match self.source.inputs(&site).await {
                Err(EngineError::Store(e)) => Err(e),
                other => Ok(other),
            }
        })
        .await??;
        // Never another version than the one the template names: a version stored before its
        // binary was removed fails, saying what is served.
        let binary = match self.config.binaries.select(inputs.transform) {
            Ok(binary) => binary.path.clone(),
            Err(e @ binaries::Unserved::NoBinary) => return Err(EngineError::Failed(e.to_string())),
            Err(e) => return Err(EngineError::Refused(format!("The template of product version {} cannot run: {e}.", site.version_id))),
        };
        let redactor = inputs.redactor(state);
        let dir = self.work_dir(site.work_id);
        inputs.write(&dir, state).map_err(|e| EngineError::Failed(format!("Cannot prepare the working directory: {e}")))?;
        let init = self.claim_init(&binary, &inputs, &dir).await?;
        let product_dir = self.sandbox_dir(site.provisioned_product_id);
        std::fs::create_dir_all(&product_dir).map_err(|e| EngineError::Failed(format!("Cannot create the sandbox directory: {e}")))?;
        let mut read_only: Vec<&Path> = self.provider_mirror.iter().map(|m| m.dir.as_path()).collect();
        if let Some(Init::Reuse(reuse)) = &init {
            read_only.push(reuse.dir());
        }
        let jail = self.config.sandbox.jail(slot, &dir, &product_dir, &binary, &read_only, inputs.network);
        for owned in [&dir, &product_dir] {
            jail.adopt(owned).map_err(|e| EngineError::Failed(format!("Cannot hand the job's directories to its sandbox user: {e}")))?;
        }
        let env = self.environment(site.region, &dir, &product_dir, &inputs.launch_env);
        let (deadline, timeout) = (tokio::time::Instant::now() + self.config.task_timeout, self.config.task_timeout);
        let tf = Terraform { binary, dir, jail, env, deadline, timeout, cancel, log, redactor, runner: Default::default() };
        Ok((inputs, tf, init))
    }

    /// How the job in `dir` does its `init` ([`prepared`]): with a prepared directory, its
    /// `.terraform/` is laid out from it; else, when the template requires the bundled provider,
    /// the dependency lock file gets its checksum first. `None`: the binary cannot be identified,
    /// so nothing is reused or kept.
    async fn claim_init(&self, binary: &Path, inputs: &TaskInputs, dir: &Path) -> Result<Option<Init>, EngineError> {
        let Some(stamp) = BinaryStamp::of(binary) else { return Ok(None) };
        let mirror = self.provider_mirror.as_ref();
        let key = prepared::InitKey::new(&format!("{stamp:?}"), mirror.map(|m| m.h1.as_str()), &inputs.workspace, &inputs.launch_env);
        let init = self.inits.claim(key).await;
        let laid_out = match &init {
            Init::Reuse(reuse) => reuse.lay_out(dir),
            Init::Build(_) => {
                match mirror.and_then(|m| prepared::lock_seed(&inputs.workspace, SANDBOX_PROVIDER, SANDBOX_PROVIDER_VERSION, &m.h1)) {
                    Some(seed) => std::fs::write(dir.join(".terraform.lock.hcl"), seed),
                    None => Ok(()),
                }
            }
        };
        laid_out.map_err(|e| EngineError::Failed(format!("Cannot prepare the working directory: {e}")))?;
        Ok(Some(init))
    }

    /// The `init` step of the job `job_id`: reused (the log says from what; the returned hold
    /// keeps the prepared directory while the job runs), or run, and what it made kept for later
    /// jobs.
    async fn init(&self, tf: &Terraform<'_>, init: Option<Init>, job_id: &str) -> Result<Option<prepared::Reuse>, EngineError> {
        let build = match init {
            Some(Init::Reuse(reuse)) => {
                if let Some(log) = tf.log {
                    log.push("init", "stdout", &reuse.note());
                }
                return Ok(Some(reuse));
            }
            Some(Init::Build(build)) => Some(build),
            None => None,
        };
        step(tf, "init", &["init", "-input=false", "-no-color"]).await?;
        if let Some(build) = build {
            let stamp = BinaryStamp::of(&tf.binary);
            let version = self
                .version_text
                .lock()
                .expect("version cache lock")
                .get(&tf.binary)
                .and_then(|(known, text)| (Some(known) == stamp.as_ref()).then(|| text.lines().next().unwrap_or_default().to_string()));
            match build.publish(&tf.dir, job_id, &tf.binary.display().to_string(), version.as_deref()) {
                Ok(note) => {
                    if let Some(log) = tf.log {
                        log.push("init", "stdout", &note);
                    }
                    self.inits.sweep();
                }
                Err(e) => tracing::warn!(job_id, error = %e, "cannot keep what terraform init made for later jobs"),
            }
        }
        Ok(None)
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
            env.push(("TF_CLI_CONFIG_FILE".into(), mirror.dir.join("terraform.rc").display().to_string()));
        }
        with_launch_env(env, launch_env)
    }

    /// The newest state of a provisioned product, opened, with its version.
    async fn versioned_state(&self, provisioned_product_id: &str) -> Result<Option<(i64, String)>, StoreError> {
        let Some((version, sealed)) = self.store.latest_state(provisioned_product_id).await? else { return Ok(None) };
        let state = self
            .secrets
            .open(&sealed)
            .ok_or_else(|| StoreError::Database("a Terraform state cannot be opened with the master key".into()))?;
        Ok(Some((version, state)))
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

/// Runs one Terraform command; a failure is the job's.
async fn step(tf: &Terraform<'_>, label: &'static str, args: &[&str]) -> Result<(), EngineError> {
    tf.run(Some(label), args).await?.0.check(label)
}

/// The `plan` step, saving `tfplan` (with `-destroy` for a terminate).
async fn plan(tf: &Terraform<'_>, destroy: bool) -> Result<(), EngineError> {
    let var_file = format!("-var-file={}", workspace::VARIABLES_FILE);
    let mut args = vec!["plan", "-input=false", "-no-color", "-out=tfplan", var_file.as_str()];
    if destroy {
        args.push("-destroy");
    }
    step(tf, "plan", &args).await
}

/// Why a job failed. Its text is the job's `StatusMessage` (and a task's last log line): Terraform's
/// words in it are redacted, and an internal error's detail goes to the server's log only.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A Terraform command exited with an error: the summary of its stderr.
    #[error("terraform {label} failed ({status}): {summary}")]
    Step { label: &'static str, status: std::process::ExitStatus, summary: String },
    /// Terraform (or the job's runner) could not be started, or the runner stopped.
    #[error("cannot start {binary}: {source}")]
    Spawn { binary: String, source: std::io::Error },
    /// The job's deadline passed; Terraform was interrupted.
    #[error("the task exceeded its time limit of {0} seconds and Terraform was stopped")]
    TimedOut(u64),
    /// The worker lost its lease or is shutting down (the reason); Terraform was interrupted.
    #[error("{0}")]
    Cancelled(String),
    /// The job's inputs are refused: its template is gone or refused, its plan is stale.
    #[error("{0}")]
    Refused(String),
    /// The job could not be carried out: no Terraform binary, a file that cannot be written or
    /// read, a plan Terraform cannot show.
    #[error("{0}")]
    Failed(String),
    /// The database failed.
    #[error("An internal error stopped the task.")]
    Store(#[from] StoreError),
    /// Stored data cannot be opened, or another internal failure (its detail).
    #[error("An internal error stopped the task.")]
    Internal(String),
}

impl EngineError {
    /// The job's `StatusMessage`; an internal error's cause is logged.
    fn message(&self) -> String {
        if let EngineError::Store(_) | EngineError::Internal(_) = self {
            tracing::error!(error = ?self, "job failed on an internal error");
        }
        self.to_string()
    }

    /// The error with the secrets `redactor` knows masked in Terraform's words.
    fn redacted(self, redactor: &redact::Redactor) -> Self {
        match self {
            EngineError::Step { label, status, summary } => {
                EngineError::Step { label, status, summary: redactor.redact(&summary).into_owned() }
            }
            other => other,
        }
    }
}

/// The filesystem mirror holding the bundled sandbox provider.
struct ProviderMirror {
    dir: PathBuf,
    /// Terraform's checksum of the provider's package there.
    h1: String,
}

/// Lays out a read-only filesystem mirror with the bundled sandbox provider (found next to this
/// executable) and a CLI configuration that installs from it; `None` when the provider is absent.
fn prepare_provider_mirror(data_dir: &Path) -> Option<ProviderMirror> {
    let exe = std::env::current_exe().ok()?;
    let provider = exe.parent()?.join("terraform-provider-sandbox");
    if !provider.is_file() {
        tracing::info!("the sandbox provider is not installed next to the server; templates cannot use it");
        return None;
    }
    let mirror = data_dir.join("providers");
    let name = format!("terraform-provider-sandbox_v{SANDBOX_PROVIDER_VERSION}");
    let target = mirror.join(SANDBOX_PROVIDER).join(SANDBOX_PROVIDER_VERSION).join("linux_amd64").join(&name);
    let result = (|| -> std::io::Result<String> {
        std::fs::create_dir_all(target.parent().expect("has a parent"))?;
        let tmp = target.with_extension("tmp");
        std::fs::copy(&provider, &tmp)?;
        let h1 = prepared::package_h1(&name, &std::fs::read(&tmp)?);
        std::fs::rename(&tmp, &target)?;
        let rc = format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = {path}\n    include = [\"servicecatalog.local/*/*\"]\n  }}\n  direct {{\n    exclude = [\"servicecatalog.local/*/*\"]\n  }}\n}}\n",
            path = json!(mirror.display().to_string())
        );
        std::fs::write(mirror.join("terraform.rc"), rc)?;
        Ok(h1)
    })();
    match result {
        Ok(h1) => Some(ProviderMirror { dir: mirror, h1 }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot prepare the provider mirror");
            None
        }
    }
}

/// Variables the engine sets for Terraform, or that change how it runs (arguments added to every
/// command, where it keeps its data, plugins, logs and configuration, which region it targets):
/// a launch role may not set them.
const RESERVED_VARIABLES: &[&str] = &[
    "PATH",
    "HOME",
    "TF_IN_AUTOMATION",
    "TF_INPUT",
    "TF_FORK",
    "CHECKPOINT_DISABLE",
    "GOGC",
    "RUST_LIB_BACKTRACE",
    "ALICLOUD_REGION",
    "ALIBABA_CLOUD_REGION",
    "SANDBOX_ROOT",
    "TF_CLI_CONFIG_FILE",
    "TERRAFORM_CONFIG",
    "TF_DATA_DIR",
    "TF_PLUGIN_CACHE_DIR",
    "TF_WORKSPACE",
];

/// Whether a launch role may not set the variable `name` ([`RESERVED_VARIABLES`], `TF_CLI_ARGS*`
/// and `TF_LOG*`).
pub fn reserved_variable(name: &str) -> bool {
    RESERVED_VARIABLES.contains(&name) || name.starts_with("TF_CLI_ARGS") || name.starts_with("TF_LOG")
}

/// The engine's environment `env` with a launch role's variables added, except those it reserves
/// (a role stored before they were refused at creation cannot override them either).
fn with_launch_env(mut env: Vec<(String, String)>, launch_env: &[(String, String)]) -> Vec<(String, String)> {
    for (name, value) in launch_env {
        if reserved_variable(name) {
            tracing::warn!(variable = %name, "a launch role variable the engine reserves is ignored");
        } else {
            env.push((name.clone(), value.clone()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_launch_role_cannot_override_what_the_engine_sets() {
        let engine = vec![("PATH".to_string(), "/usr/bin".to_string()), ("SANDBOX_ROOT".to_string(), "/data/sandbox/pp".to_string())];
        let role: Vec<(String, String)> =
            [("PATH", "/tmp/evil"), ("TF_CLI_ARGS_plan", "-state=x"), ("TF_LOG", "TRACE"), ("ALICLOUD_ACCESS_KEY", "AK")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let env = super::with_launch_env(engine, &role);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["PATH", "SANDBOX_ROOT", "ALICLOUD_ACCESS_KEY"]);
        assert_eq!(env[0].1, "/usr/bin");
        assert!(
            super::reserved_variable("TF_CLI_ARGS") && super::reserved_variable("TF_LOG_PATH") && !super::reserved_variable("TF_VAR_x")
        );
    }
}
