//! `seed`: fills a data directory with provisioned products and their finished tasks through
//! the store's bulk insert, as a server that ran them for a long time would hold them, and
//! writes `seed.json` beside it: a sample of ids and names for the `scale` workloads. On PostgreSQL
//! it then vacuums and analyses the two tables it filled.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use servicecatalog::model::{
    new_id, DriftStatus, OperationType, ProvisionedProductId, ProvisionedProductStatus, TaskId, TaskStatus, UpdatePolicy,
};
use servicecatalog::ops::data::DataOptions;
use servicecatalog::store::now_ms;
use servicecatalog::store::provisioning::{ProvisionedProduct, Task};

/// Provisioned products inserted per transaction.
const BATCH: usize = 1000;
/// Distinct owners and products the provisioned products are spread over.
const OWNERS: usize = 100;
const PRODUCTS: usize = 10;
/// Provisioned product ids and names kept in `seed.json` (task ids: two of every product).
const SAMPLE: usize = 1000;

/// Name of the sample file written in the data directory.
pub const SAMPLE_FILE: &str = "seed.json";

/// Options of `seed`.
pub struct SeedOptions {
    pub data_dir: PathBuf,
    /// The database URL (default: SQLite in the data directory).
    pub database: Option<String>,
    pub products: usize,
    pub tasks_per_product: usize,
}

/// The name of the `i`-th provisioned product.
fn name(i: usize) -> String {
    format!("app-{i:06}")
}

/// Seeds and reports what it did.
pub async fn seed(options: &SeedOptions) -> anyhow::Result<serde_json::Value> {
    let began = Instant::now();
    let data = DataOptions { data_dir: options.data_dir.clone(), database: options.database.clone(), master_key: None };
    let (store, secrets) = data.open().await?;
    let owners: Vec<String> = (0..OWNERS).map(|_| servicecatalog::store::principal::new_principal_id()).collect();
    let products: Vec<(String, String)> = (0..PRODUCTS).map(|_| (new_id("prod"), new_id("pv"))).collect();
    let portfolio_id = new_id("port");
    let every = (options.products / SAMPLE).max(1);
    let (mut sample_tasks, mut sample_pps, mut sample_names) = (Vec::new(), Vec::new(), Vec::new());
    // Oldest first, one product a second, its tasks a minute apart.
    let start = now_ms() - (options.products as i64) * 1000 - 3_600_000;
    for first in (0..options.products).step_by(BATCH) {
        let mut batch = Vec::with_capacity(BATCH);
        for i in first..(first + BATCH).min(options.products) {
            let (product_id, version_id) = &products[i % PRODUCTS];
            let name = name(i);
            let pp_id = ProvisionedProductId::new();
            let created = start + i as i64 * 1000;
            let parameters = secrets.seal(&json!([{"ParameterKey": "name", "ParameterValue": name}]).to_string());
            let outputs =
                json!([{"OutputKey": "greeting", "OutputValue": format!("Hello, {name}!"), "Description": "The greeting, repeated."}])
                    .to_string();
            let tasks: Vec<Task> = (0..options.tasks_per_product)
                .map(|j| Task {
                    task_id: TaskId::new(),
                    task_type: if j == 0 { OperationType::LaunchProduct } else { OperationType::UpdateProvisionedProduct },
                    provisioned_product_id: pp_id.clone(),
                    provisioned_product_name: name.clone(),
                    product_id: product_id.clone(),
                    product_name: "Hello outputs".into(),
                    product_version_id: version_id.clone(),
                    product_version_name: "v1".into(),
                    portfolio_id: portfolio_id.clone(),
                    stack_region_id: "cn-hangzhou".into(),
                    parameters_sealed: parameters.clone(),
                    sensitive_parameters: "[]".into(),
                    task_tags: "[]".into(),
                    launch_role: None,
                    outputs: outputs.clone(),
                    status: TaskStatus::Succeeded,
                    status_message: String::new(),
                    created_at: created + j as i64 * 60_000,
                    updated_at: created + j as i64 * 60_000 + 900,
                    parameter_references: "[]".into(),
                })
                .collect();
            let last = tasks.last().map(|t| t.task_id.clone());
            // Every product's first and last task: GetTask reads each at most once per server
            // (the server keeps finished tasks in memory after the first read; the scale
            // workloads measure the database).
            sample_tasks.extend(tasks.iter().map(|t| t.task_id.clone()).take(1).chain(last.clone()));
            if i % every == 0 {
                sample_pps.push(pp_id.clone());
                sample_names.push(name.clone());
            }
            let pp = ProvisionedProduct {
                provisioned_product_id: pp_id,
                provisioned_product_name: name,
                owner_principal_id: owners[i % OWNERS].clone(),
                owner_principal_type: "RamUser".into(),
                product_id: product_id.clone(),
                product_version_id: version_id.clone(),
                portfolio_id: portfolio_id.clone(),
                stack_region_id: "cn-hangzhou".into(),
                stack_id: new_id("stack"),
                status: ProvisionedProductStatus::Available,
                status_message: String::new(),
                parameters_sealed: parameters,
                last_task_id: last.clone(),
                last_provisioning_task_id: last.clone(),
                last_successful_provisioning_task_id: last,
                created_at: created,
                expires_at: None,
                update_policy: UpdatePolicy::Manual,
                product_name: String::new(),
                product_version_name: String::new(),
                drift_status: DriftStatus::NeverChecked,
                drift_checked_at: None,
                product_version_guidance: String::new(),
                stale_dependencies: 0,
            };
            batch.push((pp, tasks));
        }
        store.seed_provisioned_products(&batch).await?;
    }
    let seeded = began.elapsed();
    let analyzed = match options.database.as_deref().filter(|url| url.starts_with("postgres")) {
        Some(url) => {
            analyze_postgres(url).await?;
            Some(tenths(began.elapsed() - seeded))
        }
        None => None,
    };
    let sample = json!({"task_ids": sample_tasks, "provisioned_product_ids": sample_pps, "names": sample_names});
    std::fs::write(options.data_dir.join(SAMPLE_FILE), serde_json::to_vec(&sample)?)?;
    Ok(json!({
        "provisioned_products": options.products,
        "tasks": options.products * options.tasks_per_product,
        "seed_seconds": tenths(seeded),
        "vacuum_analyze_seconds": analyzed,
    }))
}

/// Seconds, rounded to tenths.
fn tenths(elapsed: std::time::Duration) -> f64 {
    (elapsed.as_secs_f64() * 10.0).round() / 10.0
}

/// `VACUUM (ANALYZE)` of what the seed wrote, as autovacuum would in time on a live server: the
/// planner gets statistics of a million rows (without them it plans for a few hundred), the
/// visibility map lets a count read only an index, and no first read pays for setting the rows'
/// hint bits. SQLite is left as it is: its queries are written for a database without statistics.
async fn analyze_postgres(url: &str) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(url).await?;
    conn.execute("VACUUM (ANALYZE) provisioned_products, tasks").await?;
    conn.close().await?;
    Ok(())
}
