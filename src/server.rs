//! `servicecatalog serve`: opens the store, makes sure an administrator key exists, and serves
//! the API until SIGTERM or Ctrl-C.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::api::limits::RateLimiter;
use crate::api::{self, ApiConfig, AppState, Region};
use crate::auth::secrets::SecretBox;
use crate::auth::{new_access_key, Authenticator};
use crate::engine::binaries::Binaries;
use crate::engine::sandbox::{Isolation, Sandbox};
use crate::engine::{Engine, EngineConfig};
use crate::ops::data::{DataOptions, ROOT_CREDENTIALS_FILE};
use crate::ops::metrics::Metrics;
use crate::ops::shutdown::Signals;
use crate::provisioning::schedule::{ScheduleConfig, Scheduler};
use crate::store::Store;

/// Options of `serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Data location.
    pub data: DataOptions,
    /// Region of ARNs and template URLs.
    pub region: String,
    /// Region ids `ListRegions` reports.
    pub regions: Vec<String>,
    /// Administrator key pair from the environment.
    pub root_key: Option<(String, String)>,
    /// Task engine settings.
    pub engine: EngineSettings,
    /// Load the bundled sample catalog at start (idempotent).
    pub sample_catalog: bool,
    /// Request limits.
    pub limits: crate::api::limits::Limits,
    /// Outside template sources.
    pub sources: crate::fetch::SourcePolicy,
    /// How long audit events, drift checks and finished webhook deliveries are kept.
    pub retention: crate::ops::retention::Retention,
    /// Where webhooks may post, and how deliveries are tried.
    pub webhooks: crate::ops::notify::WebhookPolicy,
    /// The shortest interval between two scheduled drift checks of a provisioned product.
    pub drift_min_interval: std::time::Duration,
    /// For tests only: how long the scheduler holds an expiry job before it terminates.
    pub expiry_hold: std::time::Duration,
}

/// The engine settings `serve` takes.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Workers on this node (0: API only).
    pub workers: usize,
    /// The Terraform binaries the operator configured.
    pub terraform: crate::engine::binaries::BinarySettings,
    /// GOGC of Terraform's Go runtime.
    pub terraform_gogc: u32,
    /// Time limit of a task.
    pub task_timeout: std::time::Duration,
    /// Task lease.
    pub lease: std::time::Duration,
    /// Largest log per task.
    pub log_cap_bytes: usize,
    /// At shutdown, how long running tasks may go on before they are interrupted.
    pub shutdown_grace: std::time::Duration,
    /// How Terraform is isolated from the host.
    pub sandbox: crate::engine::sandbox::SandboxSettings,
}

/// Runs the server until a shutdown signal.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let sandbox = sandbox(&options.engine)?;
    let binaries = binaries(&options.engine).await?;
    let signals = Signals::listen()?;
    let (store, secrets) = options.data.open().await?;
    let _held = crate::ops::backup::hold_data_dir(&options.data.data_dir)?;
    ensure_root_key(&store, &secrets, &options.data.data_dir, options.root_key.as_ref()).await?;
    let account_id = store.setting_or_insert("account_id", crate::store::principal::new_principal_id).await?;
    let listener = tokio::net::TcpListener::bind(&options.listen).await.with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = listener.local_addr()?;
    let config = ApiConfig {
        region: options.region.clone(),
        account_id,
        regions: options.regions.iter().map(|id| region(id, &address.to_string())).collect(),
        limits: options.limits.clone(),
        sources: options.sources.clone(),
        webhooks: options.webhooks.clone(),
    };
    let metrics = Arc::new(Metrics::new());
    let engine = start_engine(&store, &secrets, &options.data, &options.engine, sandbox, binaries, &metrics);
    let auth = Authenticator::new(store.clone(), secrets.clone()).await?;
    let rate = RateLimiter::new(&config.limits);
    let state = Arc::new(AppState { auth, store, rate, config, secrets, engine, metrics, sign_in: Default::default() });
    let nonce_state = Arc::clone(&state);
    let nonce_writer = tokio::spawn(async move { nonce_state.auth.nonces.maintain().await });
    tokio::spawn(crate::ops::retention::run(state.store.clone(), options.retention));
    let dispatcher = crate::ops::notify::Dispatcher::new(state.store.clone(), state.secrets.clone(), options.webhooks.clone())?;
    tokio::spawn(dispatcher.run());
    if options.sample_catalog {
        crate::sample::load(&state).await.context("cannot load the sample catalog")?;
    }
    if options.engine.workers > 0 {
        // The scheduler runs beside the workers: the tasks it queues run on any node's.
        let config = ScheduleConfig {
            min_drift_interval: options.drift_min_interval,
            lease: options.engine.lease,
            expiry_hold: options.expiry_hold,
        };
        let scheduler = Scheduler::new(&state.provisioner(), Arc::clone(&state.engine), config);
        tokio::spawn(scheduler.run());
    }
    tracing::info!(%address, "servicecatalog listening");
    println!("listening on http://{address}");
    // Stop taking connections and finish those in flight while the engine drains beside it.
    // The peer address reaches handlers that need it (the console's sign-in throttle).
    let app = api::rpc::router(Arc::clone(&state), crate::console::pages(Arc::clone(&state)))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let http = axum::serve(listener, app).with_graceful_shutdown(signals.clone().requested());
    let engine = stop_engine(&state.engine, &signals, options.engine.shutdown_grace);
    let (served, ()) = tokio::join!(async { http.await }, engine);
    served?;
    nonce_writer.abort();
    state.auth.nonces.flush().await?;
    Ok(())
}

/// `servicecatalog worker`: runs task workers on the shared database until a shutdown signal.
pub async fn work(data: &DataOptions, settings: EngineSettings) -> anyhow::Result<()> {
    if settings.workers == 0 {
        anyhow::bail!("a worker node needs at least one worker (--workers)");
    }
    let sandbox = sandbox(&settings)?;
    let binaries = binaries(&settings).await?;
    let (store, secrets) = data.open().await?;
    let signals = Signals::listen()?;
    let engine = start_engine(&store, &secrets, data, &settings, sandbox, binaries, &Arc::new(Metrics::new()));
    tracing::info!(workers = settings.workers, "servicecatalog worker running");
    stop_engine(&engine, &signals, settings.shutdown_grace).await;
    Ok(())
}

/// At the first signal, lets running tasks finish for `grace` (or until a second signal), then
/// interrupts the rest.
async fn stop_engine(engine: &Engine, signals: &Signals, grace: std::time::Duration) {
    signals.clone().requested().await;
    engine.shutdown(grace, signals.clone().forced()).await;
}

/// The sandbox of this node's workers, checked before anything else starts: a node whose
/// workers would run Terraform unsandboxed without the operator saying so refuses to start.
fn sandbox(settings: &EngineSettings) -> anyhow::Result<Sandbox> {
    let sandbox = Sandbox::new(settings.sandbox.clone(), settings.workers > 0)?;
    if sandbox.isolation() == Isolation::None {
        tracing::warn!("--task-isolation none: Terraform runs unsandboxed, as the server's user, and sees what the server sees");
    }
    Ok(sandbox)
}

/// The Terraform binaries of this node, each one's version read and checked before anything
/// else starts: a declared version a binary does not report refuses the start.
async fn binaries(settings: &EngineSettings) -> anyhow::Result<Arc<Binaries>> {
    let binaries = Binaries::discover(&settings.terraform).await?;
    for binary in binaries.all() {
        let serves = if binaries.declared() { binary.transform().to_string() } else { "every Transform".into() };
        tracing::info!(path = %binary.path.display(), version = %binary.version, serves, "Terraform binary");
    }
    if binaries.all().is_empty() {
        tracing::warn!("no Terraform binary: configure --terraform or put terraform or tofu on PATH; tasks fail until then");
    }
    Ok(Arc::new(binaries))
}

fn start_engine(
    store: &Store,
    secrets: &SecretBox,
    data: &DataOptions,
    settings: &EngineSettings,
    sandbox: Sandbox,
    binaries: Arc<Binaries>,
    metrics: &Arc<Metrics>,
) -> Arc<Engine> {
    metrics.set_task_isolation(sandbox.isolation().name());
    let engine = Engine::new(
        store.clone(),
        secrets.clone(),
        Arc::new(crate::provisioning::job::CatalogJobs::new(store.clone(), secrets.clone())),
        EngineConfig {
            workers: settings.workers,
            binaries,
            terraform_gogc: settings.terraform_gogc,
            // Terraform runs in the task's directory: paths handed to it must be absolute.
            data_dir: std::path::absolute(&data.data_dir).unwrap_or_else(|_| data.data_dir.clone()),
            task_timeout: settings.task_timeout,
            lease: settings.lease,
            log_cap_bytes: settings.log_cap_bytes,
            metrics: Arc::clone(metrics),
            sandbox,
        },
    );
    engine.start();
    engine
}

/// Makes sure the administrator can sign in: the key from the environment, or a generated one
/// written to `<data-dir>/root-credentials.json` (0600) on first start. The secret is never logged.
async fn ensure_root_key(store: &Store, secrets: &SecretBox, data_dir: &Path, from_env: Option<&(String, String)>) -> anyhow::Result<()> {
    if let Some((id, secret)) = from_env {
        store.replace_root_key(id, &secrets.seal(secret)).await?;
        tracing::info!(access_key_id = %id, "administrator key taken from the environment");
        return Ok(());
    }
    let path = data_dir.join(ROOT_CREDENTIALS_FILE);
    if store.root_access_keys().await?.is_empty() {
        // Nodes starting together on one database: each writes its candidate aside, and the one
        // whose claim commits (claim and key in one transaction) keeps it; the others drop theirs.
        let (id, secret) = new_access_key();
        let json = serde_json::json!({ "AccessKeyId": id, "AccessKeySecret": secret });
        let pending = path.with_extension("pending");
        crate::fs::write_private(&pending, serde_json::to_string_pretty(&json)?.as_bytes())
            .with_context(|| format!("cannot write {}", pending.display()))?;
        if store.claim_generated_root_key(&id, &secrets.seal(&secret)).await? {
            std::fs::rename(&pending, &path).with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated the administrator key");
            println!("administrator credentials written to {}", path.display());
            return Ok(());
        }
        let _ = std::fs::remove_file(&pending);
        tracing::info!("another node of this database generated the administrator key");
    }
    if path.exists() {
        println!("administrator credentials are in {}", path.display());
    }
    Ok(())
}

fn region(id: &str, endpoint: &str) -> Region {
    let local_name = match id {
        "cn-hangzhou" => "华东1（杭州）",
        "cn-shanghai" => "华东2（上海）",
        "cn-beijing" => "华北2（北京）",
        "cn-shenzhen" => "华南1（深圳）",
        "cn-hongkong" => "中国香港",
        "ap-southeast-1" => "新加坡",
        "us-west-1" => "美国（硅谷）",
        "eu-central-1" => "德国（法兰克福）",
        other => other,
    };
    Region { region_id: id.to_string(), local_name: local_name.to_string(), region_endpoint: endpoint.to_string() }
}
