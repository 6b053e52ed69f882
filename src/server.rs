//! `servicecatalog serve`: opens the store, makes sure an administrator key exists, and serves
//! the API until SIGTERM or Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::api::{self, ApiConfig, AppState, Region};
use crate::auth::secrets::SecretBox;
use crate::auth::Authenticator;
use crate::engine::sandbox::{Isolation, Sandbox};
use crate::engine::{Engine, EngineConfig};
use crate::ops::limits::RateLimiter;
use crate::ops::metrics::Metrics;
use crate::ops::shutdown::Signals;
use crate::store::Store;

/// Where the data lives; shared by `serve` and the `users` commands.
#[derive(Debug, Clone)]
pub struct DataOptions {
    /// Data directory (SQLite database, master key, root credentials).
    pub data_dir: PathBuf,
    /// Database URL; the SQLite file in the data directory when absent.
    pub database: Option<String>,
    /// Master key (64 hex digits) instead of the key file in the data directory.
    pub master_key: Option<String>,
}

impl DataOptions {
    /// Creates the data directory (0700) and opens the store and the secret box, refusing a
    /// master key other than the one the database's secrets were sealed with.
    pub async fn open(&self) -> anyhow::Result<(Store, SecretBox)> {
        create_private_dir(&self.data_dir)?;
        let url = self.database.clone().unwrap_or_else(|| Store::sqlite_url(&self.data_dir));
        let store = Store::open(&url).await.with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
        let mut secrets = SecretBox::load_or_create(&self.data_dir, self.master_key.as_deref())?;
        let check = store.setting_or_insert("master_key_check", || secrets.seal(MASTER_KEY_CHECK)).await?;
        if secrets.open(&check).as_deref() != Some(MASTER_KEY_CHECK) && self.master_key.is_none() {
            // A rotation that stopped between its commit and replacing the key file left the
            // new key beside the old one.
            if let Some(next) = adopt_next_key(&self.data_dir, &check)? {
                secrets = next;
            }
        }
        if secrets.open(&check).as_deref() != Some(MASTER_KEY_CHECK) {
            anyhow::bail!(
                "the master key of {} is not the one this database's secrets were sealed with: every node of one \
                 database needs the same key (set SERVICECATALOG_MASTER_KEY, or copy master.key)",
                self.data_dir.display()
            );
        }
        Ok((store, secrets))
    }
}

/// Plain text sealed once per database to check the master key at start.
const MASTER_KEY_CHECK: &str = "servicecatalog master key check";

/// Where `master-key rotate` writes the new key file before the database changes.
fn next_key_file(data_dir: &Path) -> PathBuf {
    SecretBox::key_file(data_dir).with_extension("key.next")
}

/// The key of `master.key.next` when it opens `check` (a rotation committed but did not replace
/// the key file): it becomes `master.key`.
fn adopt_next_key(data_dir: &Path, check: &str) -> anyhow::Result<Option<SecretBox>> {
    let next_file = next_key_file(data_dir);
    let Ok(text) = std::fs::read_to_string(&next_file) else { return Ok(None) };
    let next = SecretBox::from_hex(&text)?;
    if next.open(check).as_deref() != Some(MASTER_KEY_CHECK) {
        return Ok(None);
    }
    std::fs::rename(&next_file, SecretBox::key_file(data_dir)).with_context(|| format!("cannot replace the master key with {}", next_file.display()))?;
    tracing::warn!("a master key rotation had not replaced the key file: the new key is now in use");
    Ok(Some(next))
}

/// `master-key rotate`: seals every secret of the database under a new master key, in one
/// transaction, with every node stopped (a running node keeps the old key and could not open what
/// is sealed under the new one). The new key is `new_key` (64 hex digits) or a random one. With the
/// key in the data directory, it is written beside the old one first (`master.key.next`), the
/// database changes, then it replaces `master.key`: a stop at any point leaves a key file that
/// opens the database (start-up adopts `master.key.next` when it is the one). With
/// `SERVICECATALOG_MASTER_KEY`, the new key is printed for the operator to set on every node.
pub async fn rotate_master_key(data: &DataOptions, new_key: Option<&str>) -> anyhow::Result<()> {
    let (store, old) = data.open().await?;
    let hex = match new_key {
        Some(hex) => hex.trim().to_string(),
        None => SecretBox::generate_hex(),
    };
    let new = SecretBox::from_hex(&hex)?;
    let next_file = next_key_file(&data.data_dir);
    if data.master_key.is_none() {
        crate::fs::write_private(&next_file, hex.as_bytes()).with_context(|| format!("cannot write {}", next_file.display()))?;
    }
    let changed = store.reseal_all(|sealed| old.open(sealed).map(|plain| new.seal(&plain))).await?;
    if data.master_key.is_none() {
        let key_file = SecretBox::key_file(&data.data_dir);
        std::fs::rename(&next_file, &key_file).with_context(|| format!("cannot replace {}", key_file.display()))?;
        println!("re-sealed {changed} secrets; the new master key is in {}", key_file.display());
    } else {
        println!("re-sealed {changed} secrets; set SERVICECATALOG_MASTER_KEY on every node to the new key:");
        println!("{hex}");
    }
    Ok(())
}

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
    pub limits: crate::ops::limits::Limits,
    /// How long audit events are kept (zero: forever).
    pub audit_retention: std::time::Duration,
}

/// The engine settings `serve` takes.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Workers on this node (0: API only).
    pub workers: usize,
    /// Terraform binary.
    pub terraform: Option<PathBuf>,
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

/// Name of the file holding a generated administrator key.
pub const ROOT_CREDENTIALS_FILE: &str = "root-credentials.json";

/// Runs the server until a shutdown signal.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let sandbox = sandbox(&options.engine)?;
    let signals = Signals::listen()?;
    let (store, secrets) = options.data.open().await?;
    let _held = crate::ops::backup::hold_data_dir(&options.data.data_dir)?;
    ensure_root_key(&store, &secrets, &options.data.data_dir, options.root_key.as_ref()).await?;
    let account_id = store.setting_or_insert("account_id", crate::store::principal::new_principal_id).await?;
    let listener = tokio::net::TcpListener::bind(&options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = listener.local_addr()?;
    let config = ApiConfig {
        region: options.region.clone(),
        account_id,
        regions: options.regions.iter().map(|id| region(id, &address.to_string())).collect(),
        limits: options.limits.clone(),
    };
    let metrics = Arc::new(Metrics::new());
    let engine = start_engine(&store, &secrets, &options.data, &options.engine, sandbox, &metrics);
    let auth = Authenticator::new(store.clone(), secrets.clone()).await?;
    let rate = RateLimiter::new(&config.limits);
    let state = Arc::new(AppState { auth, store, rate, config, secrets, engine, metrics, sign_in: Default::default() });
    let nonce_state = Arc::clone(&state);
    let nonce_writer = tokio::spawn(async move { nonce_state.auth.nonces.maintain().await });
    tokio::spawn(crate::ops::audit::prune(state.store.clone(), options.audit_retention));
    if options.sample_catalog {
        crate::sample::load(&state).await.context("cannot load the sample catalog")?;
    }
    tracing::info!(%address, "servicecatalog listening");
    println!("listening on http://{address}");
    // Stop taking connections and finish those in flight while the engine drains beside it.
    // The peer address reaches handlers that need it (the console's sign-in throttle).
    let app = api::rpc::router(Arc::clone(&state)).into_make_service_with_connect_info::<std::net::SocketAddr>();
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
    let (store, secrets) = data.open().await?;
    let signals = Signals::listen()?;
    let engine = start_engine(&store, &secrets, data, &settings, sandbox, &Arc::new(Metrics::new()));
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

fn start_engine(
    store: &Store,
    secrets: &SecretBox,
    data: &DataOptions,
    settings: &EngineSettings,
    sandbox: Sandbox,
    metrics: &Arc<Metrics>,
) -> Arc<Engine> {
    metrics.set_task_isolation(sandbox.isolation().name());
    let engine = Engine::new(
        store.clone(),
        secrets.clone(),
        EngineConfig {
            workers: settings.workers,
            terraform: settings.terraform.clone(),
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

/// A new AccessKey pair: `LTAI` + 20 characters, and a 30-character secret.
pub fn new_access_key() -> (String, String) {
    use rand::distributions::{Alphanumeric, DistString};
    let mut rng = rand::thread_rng();
    (format!("LTAI{}", Alphanumeric.sample_string(&mut rng, 20)), Alphanumeric.sample_string(&mut rng, 30))
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

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    Ok(())
}

/// The URL without its password, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(super::redact_url("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redact_url("sqlite:///x/y.db"), "sqlite:///x/y.db");
    }

    #[test]
    fn access_keys_look_like_the_vendors() {
        let (id, secret) = super::new_access_key();
        assert!(id.starts_with("LTAI") && id.len() == 24);
        assert_eq!(secret.len(), 30);
    }
}
