//! The API client on the command line, in the style of the `aliyun` CLI: any action of the
//! action table is called as `servicecatalog <Action> --Param value …` with the wire names of
//! `api::spec`, signed with V3 like the SDK and answered with the server's JSON. Around it sit
//! profiles (`configure`), helpers (`launch`, `update`, `terminate`, `tasks watch`,
//! `follow-tags`), table output,
//! JMESPath queries and paging of list actions, and shell completion generated from the same
//! table. Every failure maps to one exit code ([`Failure::exit_code`]), documented in
//! `docs/cli.md`; a closed standard output ends a command quietly.

mod args;
mod client;
mod completion;
mod config;
mod output;
mod provision;
mod watch;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use client::Client;
pub use config::Connection;

/// Exit code of an error answer from the API (HTTP 4xx/5xx).
pub const EXIT_API_ERROR: i32 = 1;
/// Exit code of a usage or local configuration error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the server cannot be reached or does not answer like the API.
pub const EXIT_CONNECTION: i32 = 3;
/// Exit code when a followed task ends Failed.
pub const EXIT_TASK_FAILED: i32 = 4;

/// The client's subcommands, flattened into the top-level command; API actions come as the
/// top-level command's external subcommand ([`run_action`]), because a flattened enum cannot
/// carry one.
#[derive(Subcommand)]
pub enum Command {
    /// Store an endpoint and AccessKey in a profile (~/.servicecatalog/config.json), or show it.
    Configure(ConfigureArgs),
    /// Launch a product (by id or exact name) and print the ProvisionedProductId.
    Launch(provision::LaunchArgs),
    /// Update a provisioned product (by id or exact name): a new version or new parameters.
    Update(provision::UpdateArgs),
    /// Terminate a provisioned product (by id or exact name).
    Terminate(provision::TerminateArgs),
    /// Create a version of a product for each tag of a Git repository that matches a glob and
    /// has no version yet (the FollowRepositoryTags action): idempotent, to run after each
    /// release or from cron. Prints one line per matching tag.
    FollowTags(FollowTagsArgs),
    /// Follow provisioning tasks.
    Tasks {
        #[command(subcommand)]
        command: TasksCommand,
    },
    /// List the API actions; call one as `servicecatalog <Action> --Param value …`.
    Actions,
    /// Print a shell completion script for the actions, their parameters and the subcommands.
    Completion {
        /// Shell to complete in.
        shell: completion::Shell,
    },
    /// Values for the completion scripts, one per line.
    #[command(name = "__complete", hide = true)]
    Complete {
        /// What to list.
        kind: completion::Dynamic,
    },
}

/// `configure`: without a subcommand, updates the given fields of a profile (current when no
/// profile is).
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ConfigureArgs {
    #[command(subcommand)]
    command: Option<ConfigureCommand>,
    /// Profile to write (default: the current profile, else "default").
    #[arg(long)]
    profile: Option<String>,
    /// Endpoint: host:port or http://host:port.
    #[arg(long)]
    endpoint: Option<String>,
    /// AccessKey id.
    #[arg(long)]
    access_key_id: Option<String>,
    /// AccessKey secret; `-` reads it from standard input.
    #[arg(long)]
    access_key_secret: Option<String>,
    /// PEM file of CA certificates to trust for an HTTPS endpoint besides the system's.
    #[arg(long, value_name = "PATH")]
    ca_bundle: Option<PathBuf>,
}

/// `follow-tags`.
#[derive(Args)]
pub struct FollowTagsArgs {
    /// Product id.
    product_id: String,
    /// The repository, as git::URL or git::URL//subdir (without ?ref=).
    repository_url: String,
    /// Glob over tag names, e.g. 'v*'.
    #[arg(long, default_value = "*")]
    pattern: String,
    /// Create the new versions inactive (hidden from end users until activated).
    #[arg(long)]
    inactive: bool,
    #[command(flatten)]
    connection: Connection,
}

/// Runs `follow-tags`: `created TAG VERSION-ID COMMIT`, `exists TAG` and `refused TAG: WHY` lines.
async fn follow_tags(args: FollowTagsArgs) -> Result<(), Failure> {
    let client = Client::new(&args.connection.resolve()?)?;
    let active = if args.inactive { "false" } else { "true" };
    let params = [
        ("ProductId", args.product_id.as_str()),
        ("RepositoryUrl", &args.repository_url),
        ("TagPattern", &args.pattern),
        ("Active", active),
    ];
    let answer = client.invoke(crate::api::action::Action::FollowRepositoryTags, &params).await?;
    let items = |key: &str| answer[key].as_array().cloned().unwrap_or_default();
    let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    let mut lines = Vec::new();
    for created in items("CreatedProductVersions") {
        lines.push(format!("created {} {} {}", text(&created, "Tag"), text(&created, "ProductVersionId"), text(&created, "Commit")));
    }
    lines.extend(items("ExistingTags").iter().map(|tag| format!("exists {}", tag.as_str().unwrap_or_default())));
    lines.extend(items("RefusedTags").iter().map(|r| format!("refused {}: {}", text(r, "Tag"), text(r, "Message"))));
    if lines.is_empty() {
        lines.push(format!("no tag matches {}", args.pattern));
    }
    print_out(&lines.join("\n"))
}

#[derive(Subcommand)]
enum ConfigureCommand {
    /// Import the administrator key of a local server from <data-dir>/root-credentials.json.
    ImportRoot {
        /// The server's data directory.
        #[arg(long, env = "SERVICECATALOG_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// Endpoint of that server (default: the profile's, else http://127.0.0.1:8080).
        #[arg(long)]
        endpoint: Option<String>,
        /// Profile to write (default: "default").
        #[arg(long)]
        profile: Option<String>,
    },
    /// List the profiles (secrets masked).
    List,
    /// Make a profile the current one.
    Switch {
        /// Profile name.
        profile: String,
    },
}

#[derive(Subcommand)]
pub enum TasksCommand {
    /// Follow a task's Terraform log as it is written; exit non-zero if the task fails.
    Watch {
        /// Task id.
        task_id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Why a client command failed; each kind has its own exit code.
#[derive(Debug)]
pub enum Failure {
    /// The API answered with an error.
    Api {
        /// HTTP status.
        status: u16,
        /// Error code, e.g. `EntityNotExists.Portfolio`.
        code: String,
        /// Error message.
        message: String,
        /// Request id of the answer.
        request_id: String,
    },
    /// Bad arguments or an unusable configuration.
    Usage(String),
    /// The server could not be reached or did not answer like the API.
    Connection(String),
    /// A followed task ended Failed, with its status message.
    TaskFailed(String),
    /// Standard output was closed (`… | head`): the command stops without a word.
    OutputClosed,
}

impl Failure {
    /// The process exit code of this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Api { .. } => EXIT_API_ERROR,
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Connection(_) => EXIT_CONNECTION,
            Failure::TaskFailed(_) => EXIT_TASK_FAILED,
            Failure::OutputClosed => 0,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Api { status, code, message, request_id } => {
                write!(f, "{code}: {message} (HTTP {status}, RequestId {request_id})")
            }
            Failure::Usage(message) | Failure::Connection(message) => f.write_str(message),
            Failure::TaskFailed(message) => write!(f, "the task failed: {message}"),
            Failure::OutputClosed => f.write_str("standard output is closed"),
        }
    }
}

/// Runs a client command and returns the process exit code; `root` is the whole command line
/// definition, for completion. Errors are printed to standard error.
pub async fn run(command: Command, root: clap::Command) -> i32 {
    let result = match command {
        Command::Configure(configure) => run_configure(configure),
        Command::Launch(launch) => provision::launch(launch).await,
        Command::Update(update) => provision::update(update).await,
        Command::Terminate(terminate) => provision::terminate(terminate).await,
        Command::FollowTags(args) => follow_tags(args).await,
        Command::Tasks { command: TasksCommand::Watch { task_id, connection } } => {
            async {
                let client = Client::new(&connection.resolve()?)?;
                watch::watch(&client, &task_id).await
            }
            .await
        }
        Command::Actions => print_out(&args::action_list()),
        Command::Completion { shell } => print_out(&completion::script(shell, &root)),
        Command::Complete { kind } => async { print_out(&completion::values(kind).await?) }.await,
    };
    exit_code(result)
}

/// Calls an API action, `words` being the action name and its arguments (the top-level
/// command's external subcommand), and returns the process exit code.
pub async fn run_action(words: Vec<String>) -> i32 {
    exit_code(call(&words).await)
}

/// Prints a failure to standard error and gives its exit code.
fn exit_code(result: Result<(), Failure>) -> i32 {
    match result {
        Ok(()) | Err(Failure::OutputClosed) => 0,
        Err(failure) => {
            print_err(&format!("Error: {failure}"));
            failure.exit_code()
        }
    }
}

/// `servicecatalog <Action> --Param value …`.
async fn call(words: &[String]) -> Result<(), Failure> {
    let call = args::parse(words)?;
    if call.help {
        return print_out(&args::action_help(call.action));
    }
    let client = Client::new(&call.connection.resolve()?)?;
    let response = if call.all {
        output::fetch_all_pages(&client, call.action, &call.params).await?
    } else {
        client.call(call.action, &call.params).await?
    };
    let warning = if call.output == output::Output::Json { None } else { output::cut_warning(&response) };
    let shown = match &call.query {
        Some(expression) => output::query(&response, expression)?,
        None => response,
    };
    print_out(&output::render(&shown, &call.output)?)?;
    if let Some(warning) = warning {
        print_err(&warning);
    }
    Ok(())
}

fn run_configure(configure: ConfigureArgs) -> Result<(), Failure> {
    let path = config::path()?;
    let text = match configure.command {
        Some(ConfigureCommand::ImportRoot { data_dir, endpoint, profile }) => config::import_root(&path, &data_dir, endpoint, profile)?,
        Some(ConfigureCommand::List) => config::list(&path)?,
        Some(ConfigureCommand::Switch { profile }) => config::switch(&path, &profile)?,
        None => {
            let secret = match configure.access_key_secret.as_deref() {
                Some("-") => Some(read_secret_from_stdin()?),
                _ => configure.access_key_secret,
            };
            let update = config::ProfileUpdate {
                endpoint: configure.endpoint,
                access_key_id: configure.access_key_id,
                access_key_secret: secret,
                ca_bundle: configure.ca_bundle,
            };
            config::configure(&path, configure.profile, update)?
        }
    };
    print_out(&text)
}

fn read_secret_from_stdin() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| Failure::Usage(format!("cannot read the secret from standard input: {e}")))?;
    Ok(line.trim().to_string())
}

/// Prints `text` (plus a newline unless it has one) to standard output at once; a closed pipe
/// (`servicecatalog ListPortfolios | head`) is [`Failure::OutputClosed`].
fn print_out(text: &str) -> Result<(), Failure> {
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    write_flush(&mut std::io::stdout().lock(), &format!("{text}{newline}"))
}

/// Prints a line to standard error, which may be closed too.
fn print_err(line: &str) {
    let _ = write_flush(&mut std::io::stderr().lock(), &format!("{line}\n"));
}

/// Writes and flushes, so that a reader sees output as it arrives.
fn write_flush(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|_| Failure::OutputClosed)
}
