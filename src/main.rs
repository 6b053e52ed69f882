//! The `servicecatalog` command: the server and its administration commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use servicecatalog::server::{self, DataOptions, ServeOptions};
use servicecatalog::users;

#[derive(Parser)]
#[command(name = "servicecatalog", version, about = "A self-hosted service catalog speaking the Alibaba Cloud Service Catalog API")]
struct Cli {
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
        #[arg(long, env = "SERVICECATALOG_REGIONS", value_delimiter = ',', default_value = "cn-hangzhou,cn-shanghai,cn-beijing,cn-shenzhen,cn-hongkong,ap-southeast-1")]
        regions: Vec<String>,
        /// Log as JSON lines.
        #[arg(long, env = "SERVICECATALOG_LOG_JSON")]
        log_json: bool,
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

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SERVICECATALOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { listen, region, regions, log_json, data } => {
            init_logging(log_json);
            let root_key = match (std::env::var("SERVICECATALOG_ROOT_ACCESS_KEY_ID"), std::env::var("SERVICECATALOG_ROOT_ACCESS_KEY_SECRET")) {
                (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Some((id, secret)),
                _ => None,
            };
            server::serve(ServeOptions { listen, data: data.options(), region, regions, root_key }).await
        }
        Command::Users { command, data } => {
            init_logging(false);
            let data = data.options();
            match command {
                UsersCommand::Create { name, admin, json } => users::create(&data, &name, admin, json).await,
                UsersCommand::List { json } => users::list(&data, json).await,
                UsersCommand::Delete { name } => users::delete(&data, &name).await,
            }
        }
    }
}
