//! `servicecatalog-loadgen`: the load generator and data seeder behind `bench/run`.
//!
//! - `api`: RPC calls signed like the SDK (V3) against a running server, beside the same signed
//!   request sent to `/ping` of the same server (the floor: a static answer, no authentication),
//!   at several concurrencies; the bare unsigned `GET /ping` is measured too. Reads, and one
//!   write (CreatePortfolio) when `--only` names it.
//! - `seed`: provisioned products and tasks written through the store's bulk insert.
//! - `scale`: reads against a seeded data directory.
//!
//! Each prints one JSON document on stdout (progress on stderr). Every loop is bounded by time
//! and by a request count.

mod client;
mod load;
mod seed;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use client::{params, Call, Connection, Credentials};
use load::{Budget, Case, PgBackends};

#[derive(Parser)]
#[command(version, about = "Load generator and data seeder of the servicecatalog benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// GetTask, ListPortfolios, ListProductsAsEndUser and the /ping floor (launches one sample
    /// product first, for a task to read).
    Api(LoadArgs),
    /// GetTask, ListTasks and ListProvisionedProducts against data written by `seed`.
    Scale {
        #[command(flatten)]
        load: LoadArgs,
        /// The `seed.json` that `seed` wrote.
        #[arg(long)]
        sample: PathBuf,
    },
    /// Writes provisioned products and their tasks into a data directory.
    Seed {
        #[arg(long)]
        data_dir: PathBuf,
        /// Database URL (default: SQLite in the data directory).
        #[arg(long)]
        database: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        products: usize,
        #[arg(long, default_value_t = 10)]
        tasks_per_product: usize,
    },
}

#[derive(Args)]
struct LoadArgs {
    /// Server address, `IP:PORT`.
    #[arg(long)]
    host: String,
    /// JSON file with `AccessKeyId` and `AccessKeySecret` (an administrator's).
    #[arg(long)]
    credentials: PathBuf,
    /// Server process id, for its CPU time per request.
    #[arg(long)]
    pid: Option<u32>,
    /// Concurrencies to run each case at.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Seconds per case and concurrency (upper bound).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Requests per case and concurrency (upper bound).
    #[arg(long, default_value_t = 200_000)]
    max_requests: u64,
    /// Only the cases whose name starts with one of these (comma-separated); default: every
    /// read. The write case (CreatePortfolio) runs only when named.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// URL of the server's PostgreSQL database, to find the backends serving the server in
    /// `pg_stat_activity` and report their CPU time per request.
    #[arg(long, requires = "postgres_application")]
    postgres: Option<String>,
    /// The `application_name` the server's database URL sets (its connections' mark).
    #[arg(long)]
    postgres_application: Option<String>,
}

impl LoadArgs {
    async fn budget(&self) -> anyhow::Result<Budget> {
        let postgres = match (&self.postgres, &self.postgres_application) {
            (Some(url), Some(application)) => Some(PgBackends {
                pool: sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?,
                application: application.clone(),
            }),
            _ => None,
        };
        Ok(Budget {
            host: self.host.clone(),
            credentials: Credentials::from_file(&self.credentials)?,
            pid: self.pid,
            duration: Duration::from_secs_f64(self.seconds),
            max_requests: self.max_requests,
            postgres,
        })
    }

    /// Whether the case `name` runs (`write`: it changes data, so it runs only when named).
    fn selects(&self, name: &str, write: bool) -> bool {
        if self.only.is_empty() {
            return !write;
        }
        self.only.iter().any(|only| name.starts_with(only.as_str()))
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One client thread: the server keeps the rest of the machine, and every case (the floor
    // included) pays the same client cost.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let output = runtime.block_on(async {
        match cli.command {
            Command::Api(args) => api(&args).await,
            Command::Scale { load, sample } => scale(&load, &sample).await,
            Command::Seed { data_dir, database, products, tasks_per_product } => {
                seed::seed(&seed::SeedOptions { data_dir, database, products, tasks_per_product }).await
            }
        }
    })?;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

fn rpc(action: &str, pairs: &[(&str, &str)]) -> Call {
    Call::Rpc { action: action.into(), params: params(pairs) }
}

/// Runs every case at every concurrency.
async fn run_cases(cases: &[Case], args: &LoadArgs) -> anyhow::Result<Vec<Value>> {
    let budget = args.budget().await?;
    let mut results = Vec::new();
    for case in cases.iter().filter(|c| args.selects(&c.name, c.write)) {
        for &concurrency in &args.concurrency {
            let result = load::run(case, concurrency, &budget).await?;
            eprintln!(
                "  {:<40} c={concurrency:<3} {:>9} req/s  p50 {} ms  p99 {} ms  server {} us/req  postgres {} us/req",
                case.name,
                result["rps"],
                result["p50_ms"],
                result["p99_ms"],
                result["server_cpu_us_per_request"],
                result["postgres_cpu_us_per_request"]
            );
            results.push(result);
        }
    }
    Ok(results)
}

async fn api(args: &LoadArgs) -> anyhow::Result<Value> {
    let task_id = launch_sample(args).await?;
    let get_task = params(&[("TaskId", &task_id)]);
    let cases = [
        // The floor: GetTask's signed request, answered by /ping without authentication.
        Case::read("ping", vec![Call::SignedPing { action: "GetTask".into(), params: get_task.clone() }]),
        Case::read("ping (unsigned GET)", vec![Call::Ping]),
        Case::read("GetTask", vec![Call::Rpc { action: "GetTask".into(), params: get_task }]),
        Case::read("ListPortfolios", vec![rpc("ListPortfolios", &[])]),
        Case::read("ListProductsAsEndUser", vec![rpc("ListProductsAsEndUser", &[])]),
        // Each request adds a portfolio (and its audit record); run after the reads.
        Case {
            name: "CreatePortfolio".into(),
            calls: vec![rpc(
                "CreatePortfolio",
                &[("PortfolioName", "loadgen"), ("ProviderName", "bench"), ("Description", "written by the load generator")],
            )],
            write: true,
        },
    ];
    Ok(json!({ "task_id": task_id, "results": run_cases(&cases, args).await? }))
}

/// Launches the sample "Hello outputs" and waits (at most a minute) for its task to succeed.
async fn launch_sample(args: &LoadArgs) -> anyhow::Result<String> {
    let budget = args.budget().await?;
    let mut c = Connection::open(&budget.host, &budget.credentials).await?;
    let products = c.send(&rpc("ListProductsAsEndUser", &[("PageSize", "100")])).await?.json()?;
    let product_id = products["ProductSummaries"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["ProductName"] == "Hello outputs"))
        .and_then(|p| p["ProductId"].as_str())
        .ok_or_else(|| anyhow::anyhow!("the sample product \"Hello outputs\" is missing (start the server with --sample-catalog)"))?
        .to_string();
    let versions = c.send(&rpc("ListProductVersions", &[("ProductId", &product_id)])).await?.json()?;
    let version_id = versions["ProductVersionDetails"][0]["ProductVersionId"].as_str().unwrap_or_default().to_string();
    let name = format!("loadgen-{}", chrono::Utc::now().timestamp_millis());
    let launch = [
        ("ProductId", product_id.as_str()),
        ("ProductVersionId", &version_id),
        ("ProvisionedProductName", &name),
        ("StackRegionId", "cn-hangzhou"),
    ];
    let launched = c.send(&rpc("LaunchProduct", &launch)).await?.json()?;
    let task_id = launched["TaskId"].as_str().ok_or_else(|| anyhow::anyhow!("LaunchProduct returned no TaskId: {launched}"))?.to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let task = c.send(&rpc("GetTask", &[("TaskId", &task_id)])).await?.json()?;
        match task["TaskDetail"]["Status"].as_str() {
            Some("Succeeded") => return Ok(task_id),
            Some("InProgress") => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => anyhow::bail!("the sample launch did not succeed: {task}"),
        }
    }
    anyhow::bail!("the sample launch did not finish within a minute")
}

async fn scale(args: &LoadArgs, sample: &std::path::Path) -> anyhow::Result<Value> {
    let sample: Value = serde_json::from_slice(&std::fs::read(sample)?)?;
    let list = |key: &str| -> Vec<String> {
        sample[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
    };
    let (tasks, pps, names) = (list("task_ids"), list("provisioned_product_ids"), list("names"));
    anyhow::ensure!(!tasks.is_empty() && !pps.is_empty() && !names.is_empty(), "the sample file holds no ids");
    let account = |filter: &[(&str, &str)], page: &str| {
        let mut pairs = vec![("AccessLevelFilter", "Account"), ("PageSize", "10"), ("PageNumber", page)];
        pairs.extend_from_slice(filter);
        rpc("ListProvisionedProducts", &pairs)
    };
    let cases = [
        Case::read("GetTask", tasks.iter().map(|t| rpc("GetTask", &[("TaskId", t)])).collect()),
        Case::read(
            "ListTasks (PageSize 5, pages 1-2)",
            pps.iter()
                .enumerate()
                .map(|(i, pp)| {
                    rpc("ListTasks", &[("ProvisionedProductId", pp), ("PageSize", "5"), ("PageNumber", if i % 2 == 0 { "1" } else { "2" })])
                })
                .collect(),
        ),
        Case::read(
            "ListProvisionedProducts (Account, name)",
            names.iter().map(|n| account(&[("Filters.1.Key", "ProvisionedProductName"), ("Filters.1.Value", n)], "1")).collect(),
        ),
        Case::read(
            "ListProvisionedProducts (Account, full text)",
            // "app-001234" → "01234": matches that product and the ten named app-01234x.
            names.iter().map(|n| account(&[("Filters.1.Key", "FullTextSearch"), ("Filters.1.Value", &n[5..])], "1")).collect(),
        ),
        Case::read("ListProvisionedProducts (Account, pages 1-10)", (1..=10).map(|p| account(&[], &p.to_string())).collect()),
    ];
    Ok(json!({ "results": run_cases(&cases, args).await? }))
}
