//! The `servicecatalog` command: the server, its administration commands and the API client.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use std::time::Duration;

use servicecatalog::engine::binaries::{BinarySettings, Declared, Matching};
use servicecatalog::engine::sandbox::{Isolation, Network, SandboxSettings};
use servicecatalog::ops::data::{self, DataOptions};
use servicecatalog::server::{self, EngineSettings, ServeOptions};
use servicecatalog::{roles, users};

#[derive(Parser)]
#[command(name = "servicecatalog", version, about = "A self-hosted service catalog speaking the Alibaba Cloud Service Catalog API")]
struct Cli {
    /// Configuration file (TOML; keys are the long flags): flags > environment > file > defaults.
    #[arg(long, env = servicecatalog::ops::config::ENV, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DataArgs {
    /// Data directory: SQLite database, master key, generated administrator credentials.
    #[arg(long, env = "SERVICECATALOG_DATA_DIR", default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// Database URL (sqlite://PATH or postgres://…); default: a SQLite file in the data directory.
    #[arg(long, env = "SERVICECATALOG_DATABASE", global = true)]
    database: Option<String>,
}

impl DataArgs {
    fn options(&self) -> DataOptions {
        DataOptions {
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            master_key: std::env::var("SERVICECATALOG_MASTER_KEY").ok().filter(|k| !k.is_empty()),
        }
    }
}

#[derive(Args, Clone)]
struct EngineArgs {
    /// Task workers on this node (0: API only); default: the number of cores.
    #[arg(long, env = "SERVICECATALOG_WORKERS")]
    workers: Option<usize>,
    /// Terraform (or OpenTofu) binary: PATH, whose version is read at start and which alone runs
    /// every template; or VERSION=PATH (repeatable, comma-separated in the environment), each
    /// running the templates whose Transform names its major.minor. Default: terraform, else
    /// tofu, on PATH.
    #[arg(long, env = "SERVICECATALOG_TERRAFORM", value_name = "[VERSION=]PATH", value_delimiter = ',')]
    terraform: Vec<Declared>,
    /// A directory of terraform-<version> and tofu-<version> executables (e.g. terraform-1.0.3),
    /// each running the templates whose Transform names its major.minor.
    #[arg(long, env = "SERVICECATALOG_TERRAFORM_DIR", value_name = "DIR")]
    terraform_dir: Option<PathBuf>,
    /// Which declared binary runs a template whose Transform names major.minor: exact (the newest
    /// major.minor.x) or compatible (the newest of the same major with a minor at least that).
    #[arg(long, env = "SERVICECATALOG_TERRAFORM_MATCH", value_enum, default_value_t = Matching::Exact)]
    terraform_match: Matching,
    /// Go's GOGC for Terraform and the Go providers it starts: how far a heap grows between
    /// collections, in per cent of the live heap (Go's own default is 100). Terraform runs are
    /// short and allocate most while starting, so fewer collections make each run faster; lower
    /// it where their memory matters more (large providers, very large states).
    #[arg(long, env = "SERVICECATALOG_TERRAFORM_GOGC", default_value_t = 400, value_parser = clap::value_parser!(u32).range(25..))]
    terraform_gogc: u32,
    /// Time limit of one task, in seconds.
    #[arg(long, env = "SERVICECATALOG_TASK_TIMEOUT", default_value_t = 3600)]
    task_timeout: u64,
    /// Task lease in seconds: a task whose node stops renewing it fails after this long.
    #[arg(long, env = "SERVICECATALOG_LEASE_SECONDS", default_value_t = 30)]
    lease_seconds: u64,
    /// Largest Terraform log kept per task, in bytes.
    #[arg(long, env = "SERVICECATALOG_TASK_LOG_LIMIT", default_value_t = 4 * 1024 * 1024)]
    task_log_limit: usize,
    /// At shutdown (SIGTERM), seconds running tasks may go on before Terraform is interrupted.
    #[arg(long, env = "SERVICECATALOG_SHUTDOWN_GRACE_SECONDS", default_value_t = 60)]
    shutdown_grace_seconds: u64,
    /// How Terraform is isolated from the host: bwrap (namespaces, an unprivileged user, limits;
    /// the server refuses to start workers where it cannot) or none (unsandboxed: only where the
    /// host cannot sandbox, and shown in /metrics).
    #[arg(long, env = "SERVICECATALOG_TASK_ISOLATION", value_enum, default_value_t = Isolation::Bwrap)]
    task_isolation: Isolation,
    /// Whether Terraform reaches the network (off: loopback only); a product's Sandbox
    /// constraint can also turn it off.
    #[arg(long, env = "SERVICECATALOG_TASK_NETWORK", value_enum, default_value_t = Network::On)]
    task_network: Network,
    /// Largest heap (data segment) of each Terraform or provider process, in MiB.
    #[arg(long, env = "SERVICECATALOG_TASK_MEMORY_MIB", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(64..))]
    task_memory_mib: u64,
    /// Most processes one task may run at once (when the server runs as root: each worker has a
    /// user of its own).
    #[arg(long, env = "SERVICECATALOG_TASK_PROCESSES", default_value_t = 512, value_parser = clap::value_parser!(u64).range(16..))]
    task_processes: u64,
    /// Largest file a task may write, in MiB.
    #[arg(long, env = "SERVICECATALOG_TASK_FILE_SIZE_MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    task_file_size_mib: u64,
    /// First user id of the workers' sandbox users (worker N runs as this plus N) when the
    /// server runs as root.
    #[arg(long, env = "SERVICECATALOG_TASK_UID_BASE", default_value_t = 70000, value_parser = clap::value_parser!(u32).range(1000..))]
    task_uid_base: u32,
}

impl EngineArgs {
    fn settings(&self) -> EngineSettings {
        EngineSettings {
            workers: self.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            terraform: BinarySettings { declared: self.terraform.clone(), dir: self.terraform_dir.clone(), matching: self.terraform_match },
            terraform_gogc: self.terraform_gogc,
            task_timeout: Duration::from_secs(self.task_timeout.max(1)),
            lease: Duration::from_secs(self.lease_seconds.max(3)),
            log_cap_bytes: self.task_log_limit,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            sandbox: SandboxSettings {
                isolation: self.task_isolation,
                network: self.task_network == Network::On,
                memory_mib: self.task_memory_mib,
                processes: self.task_processes,
                file_size_mib: self.task_file_size_mib,
                uid_base: self.task_uid_base,
            },
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SERVICECATALOG_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Region used in ARNs.
        #[arg(long, env = "SERVICECATALOG_REGION", default_value = "cn-hangzhou")]
        region: String,
        /// Regions reported by ListRegions (comma-separated).
        #[arg(
            long,
            env = "SERVICECATALOG_REGIONS",
            value_delimiter = ',',
            default_value = "cn-hangzhou,cn-shanghai,cn-beijing,cn-shenzhen,cn-hongkong,ap-southeast-1"
        )]
        regions: Vec<String>,
        /// Log as JSON lines.
        #[arg(long, env = "SERVICECATALOG_LOG_JSON")]
        log_json: bool,
        #[command(flatten)]
        engine: EngineArgs,
        /// Load the bundled sample catalog (idempotent).
        #[arg(long, env = "SERVICECATALOG_SAMPLE_CATALOG")]
        sample_catalog: bool,
        #[command(flatten)]
        limits: servicecatalog::api::limits::LimitArgs,
        #[command(flatten)]
        sources: servicecatalog::fetch::SourceArgs,
        #[command(flatten)]
        webhooks: Box<servicecatalog::ops::notify::WebhookArgs>,
        /// Print the effective configuration (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
        #[command(flatten)]
        retention: Box<servicecatalog::ops::retention::RetentionArgs>,
        /// Shortest interval between two scheduled drift checks of a provisioned product, in
        /// seconds: a Drift constraint asking for less gets this (every node of a cluster should
        /// say the same).
        #[arg(long, env = "SERVICECATALOG_DRIFT_MIN_INTERVAL_SECONDS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
        drift_min_interval_seconds: u64,
        /// For tests only: seconds the scheduler sleeps holding an expiry job before it queues
        /// the terminate, so that a test can kill the node while it holds the job. Keep 0.
        #[arg(long, default_value_t = 0, hide = true)]
        test_expiry_hold_seconds: u16,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Run task workers only (no API): a worker node of a cluster on one PostgreSQL database.
    Worker {
        /// Log as JSON lines.
        #[arg(long, env = "SERVICECATALOG_LOG_JSON")]
        log_json: bool,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write a consistent copy of the SQLite database to FILE, while the server runs.
    Backup {
        /// Where the copy goes (replaced atomically).
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Replace the SQLite database with a backup (the server must be stopped).
    Restore {
        /// The backup to bring back.
        file: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Manage the master key that seals secrets at rest.
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Manage users and their AccessKeys.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Manage RAM roles (granted portfolios like users; users are their members).
    Roles {
        #[command(subcommand)]
        command: RolesCommand,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Manage launch roles: named sets of environment variables for Terraform (Launch constraints).
    LaunchRoles {
        #[command(subcommand)]
        command: LaunchRolesCommand,
        #[command(flatten)]
        data: DataArgs,
    },
    #[command(flatten)]
    Client(servicecatalog::cli::Command),
    /// An API action: `servicecatalog <Action> --Param value …` (`servicecatalog actions` lists them).
    #[command(external_subcommand)]
    Action(Vec<String>),
}

#[derive(Subcommand)]
enum RolesCommand {
    /// Create a role.
    Create {
        /// Role name.
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List roles and their members.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a role, its memberships and its portfolio grants.
    Delete {
        /// Role name.
        name: String,
    },
}

#[derive(Subcommand)]
enum LaunchRolesCommand {
    /// Create or replace a launch role (values are stored encrypted and never shown again).
    Create {
        /// Launch role name (the LocalRoleName of Launch constraints).
        name: String,
        /// An environment variable, KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
    },
    /// List launch roles with their variable names (never values).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a launch role no constraint uses.
    Delete {
        /// Launch role name.
        name: String,
    },
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Seal every secret of the database under a new master key (stop every node first; with the
    /// key in the data directory the file is replaced, with SERVICECATALOG_MASTER_KEY the new key
    /// is printed for you to set on every node).
    Rotate {
        /// The new key (64 hex digits); default: a random one.
        #[arg(long, env = "SERVICECATALOG_NEW_MASTER_KEY", hide_env_values = true)]
        new_key: Option<String>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user with an AccessKey pair (printed once).
    Create {
        /// User name.
        name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Make the user a member of this role, created if needed (repeatable).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user and its keys.
    Delete {
        /// User name.
        name: String,
    },
}

/// Logs go to stderr through `ops::log_writer`: lines wait in memory for at most 20 ms and leave
/// together. The flusher writes what waits when dropped.
fn init_logging(json: bool) -> servicecatalog::ops::log_writer::LogFlusher {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SERVICECATALOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let (writer, flusher) = servicecatalog::ops::log_writer::log_writer(std::io::stderr());
    // Colours only for a person at a terminal: a log file or collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(move || writer.clone());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    flusher
}

/// mimalloc: per-thread heaps, so memory freed on another runtime thread takes no global lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // A job's runner, in its sandbox: no runtime, no configuration, nothing but the commands.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == servicecatalog::engine::runner::RUNNER_ARG) {
        let terraform = PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("the runner needs the Terraform binary"))?);
        return Ok(servicecatalog::engine::runner::serve(&terraform)?);
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

/// The command line's command.
async fn run() -> anyhow::Result<()> {
    servicecatalog::memory::init();
    let (cli, loaded) = servicecatalog::ops::config::parse::<Cli>()?;
    match cli.command {
        Command::Serve {
            listen,
            region,
            regions,
            log_json,
            engine,
            sample_catalog,
            limits,
            sources,
            webhooks,
            retention,
            drift_min_interval_seconds,
            test_expiry_hold_seconds,
            print_config,
            data,
        } => {
            if print_config {
                print!("{}", loaded.print("serve"));
                return Ok(());
            }
            let _logs = init_logging(log_json);
            let root_key =
                match (std::env::var("SERVICECATALOG_ROOT_ACCESS_KEY_ID"), std::env::var("SERVICECATALOG_ROOT_ACCESS_KEY_SECRET")) {
                    (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Some((id, secret)),
                    _ => None,
                };
            server::serve(ServeOptions {
                listen,
                data: data.options(),
                region,
                regions,
                root_key,
                engine: engine.settings(),
                sample_catalog,
                limits: limits.limits(),
                sources: sources.policy()?,
                retention: retention.retention(),
                webhooks: webhooks.policy(),
                drift_min_interval: Duration::from_secs(drift_min_interval_seconds),
                expiry_hold: Duration::from_secs(test_expiry_hold_seconds.into()),
            })
            .await
        }
        Command::Worker { log_json, engine, data } => {
            let _logs = init_logging(log_json);
            server::work(&data.options(), engine.settings()).await
        }
        Command::Backup { file, data } => {
            let _logs = init_logging(false);
            servicecatalog::ops::backup::backup(&data.options(), &file).await
        }
        Command::Restore { file, data } => {
            let _logs = init_logging(false);
            servicecatalog::ops::backup::restore(&data.options(), &file).await
        }
        Command::MasterKey { command: MasterKeyCommand::Rotate { new_key }, data } => {
            let _logs = init_logging(false);
            data::rotate_master_key(&data.options(), new_key.as_deref()).await
        }
        Command::Users { command, data } => {
            let _logs = init_logging(false);
            let data = data.options();
            match command {
                UsersCommand::Create { name, admin, roles, json } => users::create(&data, &name, admin, &roles, json).await,
                UsersCommand::List { json } => users::list(&data, json).await,
                UsersCommand::Delete { name } => users::delete(&data, &name).await,
            }
        }
        Command::Roles { command, data } => {
            let _logs = init_logging(false);
            let data = data.options();
            match command {
                RolesCommand::Create { name, json } => roles::create(&data, &name, json).await,
                RolesCommand::List { json } => roles::list(&data, json).await,
                RolesCommand::Delete { name } => roles::delete(&data, &name).await,
            }
        }
        Command::LaunchRoles { command, data } => {
            let _logs = init_logging(false);
            let data = data.options();
            match command {
                LaunchRolesCommand::Create { name, env } => roles::create_launch_role(&data, &name, &env).await,
                LaunchRolesCommand::List { json } => roles::list_launch_roles(&data, json).await,
                LaunchRolesCommand::Delete { name } => roles::delete_launch_role(&data, &name).await,
            }
        }
        Command::Client(command) => std::process::exit(servicecatalog::cli::run(command, <Cli as clap::CommandFactory>::command()).await),
        Command::Action(words) => std::process::exit(servicecatalog::cli::run_action(words).await),
    }
}
