//! Provisioned products, their tasks (a durable queue with leases), task logs and the versioned,
//! sealed Terraform state of each provisioned product.

use std::sync::Arc;

use super::audit::{record_queued, JobId, Scheduled};
use super::lease::{self, Leased};
use super::read::Row;
use super::sql::{contains_pattern, insert, record, sql, Sql, ToBind};
use super::{now_ms, Page, SortOrder, Store, StoreResult};
use crate::model::{
    DriftStatus, EventType, OperationType, PlanStatus, ProvisionedProductId, ProvisionedProductStatus, TaskId, TaskStatus, UpdatePolicy,
};

record! {
    /// A provisioned product (an instance of a product version).
    #[derive(Debug, Clone)]
    pub struct ProvisionedProduct {
        pub provisioned_product_id: ProvisionedProductId,
        pub provisioned_product_name: String,
        pub owner_principal_id: String,
        pub owner_principal_type: String,
        pub product_id: String,
        pub product_version_id: String,
        pub portfolio_id: String,
        pub stack_region_id: String,
        pub stack_id: String,
        pub status: ProvisionedProductStatus,
        pub status_message: String,
        /// Sealed JSON array of `{ParameterKey, ParameterValue}` last applied successfully.
        pub parameters_sealed: String,
        pub last_task_id: Option<TaskId>,
        pub last_provisioning_task_id: Option<TaskId>,
        pub last_successful_provisioning_task_id: Option<TaskId>,
        pub created_at: i64,
        /// When its expiry terminates it (ms since the epoch; an extension).
        pub expires_at: Option<i64>,
        /// What updates it besides its owner (an extension).
        pub update_policy: UpdatePolicy,
    }
    joined {
        /// Product and version names (joined in on reads).
        pub product_name: String,
        pub product_version_name: String,
        /// What its last drift check found (written by drift checks only).
        pub drift_status: DriftStatus,
        /// When its last drift check ended.
        pub drift_checked_at: Option<i64>,
        /// Its version's `Guidance` (empty when the version is gone).
        pub product_version_guidance: String,
        /// How many outputs its parameters read changed since they were resolved (an extension:
        /// [`super::dependency`]).
        pub stale_dependencies: i64,
    }
}

record! {
    /// A task: one launch, update or terminate.
    #[derive(Debug, Clone)]
    pub struct Task {
        pub task_id: TaskId,
        pub task_type: OperationType,
        pub provisioned_product_id: ProvisionedProductId,
        pub provisioned_product_name: String,
        pub product_id: String,
        pub product_name: String,
        pub product_version_id: String,
        pub product_version_name: String,
        pub portfolio_id: String,
        pub stack_region_id: String,
        /// Sealed JSON array of `{ParameterKey, ParameterValue}`.
        pub parameters_sealed: String,
        /// JSON array of the names of sensitive parameters (masked in responses).
        pub sensitive_parameters: String,
        /// JSON array of `{Key, Value}`.
        pub task_tags: String,
        /// Launch role whose variables Terraform gets.
        pub launch_role: Option<String>,
        /// JSON array of `{OutputKey, OutputValue, Description}` (sensitive values masked).
        pub outputs: String,
        pub status: TaskStatus,
        pub status_message: String,
        pub created_at: i64,
        pub updated_at: i64,
        /// JSON array of the parameters resolved from references (an extension:
        /// [`super::dependency::ParameterReference`]).
        pub parameter_references: String,
    }
}

/// One chunk of a task's Terraform output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogChunk {
    /// Position in the task's log, from 1.
    pub seq: i64,
    /// `version`, `init`, `plan`, `apply` or `destroy`.
    pub command: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub content: String,
}

impl ProvisionedProduct {
    /// The provisioned product a launch `task` creates, `UnderChange` with it as its last task.
    pub fn launched(task: &Task, owner_id: &str, owner_type: &str, stack_id: String) -> Self {
        Self {
            provisioned_product_id: task.provisioned_product_id.clone(),
            provisioned_product_name: task.provisioned_product_name.clone(),
            owner_principal_id: owner_id.to_string(),
            owner_principal_type: owner_type.to_string(),
            product_id: task.product_id.clone(),
            product_version_id: task.product_version_id.clone(),
            portfolio_id: task.portfolio_id.clone(),
            stack_region_id: task.stack_region_id.clone(),
            stack_id,
            status: ProvisionedProductStatus::UnderChange,
            status_message: String::new(),
            parameters_sealed: task.parameters_sealed.clone(),
            last_task_id: Some(task.task_id.clone()),
            last_provisioning_task_id: Some(task.task_id.clone()),
            last_successful_provisioning_task_id: None,
            created_at: task.created_at,
            expires_at: None,
            update_policy: UpdatePolicy::Manual,
            product_name: task.product_name.clone(),
            product_version_name: task.product_version_name.clone(),
            drift_status: DriftStatus::NeverChecked,
            drift_checked_at: None,
            product_version_guidance: String::new(),
            stale_dependencies: 0,
        }
    }
}

/// A task with the owner of its provisioned product and its whole log, in order.
#[derive(Debug)]
pub struct TaskRecord {
    pub task: Task,
    pub owner: Option<String>,
    pub log: Vec<LogChunk>,
}

impl TaskRecord {
    /// Roughly the memory the record holds, in bytes.
    pub(super) fn approximate_bytes(&self) -> usize {
        let t = &self.task;
        let text = [
            t.task_id.as_str(),
            t.provisioned_product_id.as_str(),
            &t.provisioned_product_name,
            &t.product_id,
            &t.product_name,
            &t.product_version_id,
            &t.product_version_name,
            &t.portfolio_id,
            &t.stack_region_id,
            &t.parameters_sealed,
            &t.sensitive_parameters,
            &t.task_tags,
            &t.outputs,
            &t.status_message,
        ]
        .iter()
        .map(|s| s.len())
        .sum::<usize>();
        let log: usize =
            self.log.iter().map(|c| std::mem::size_of::<LogChunk>() + c.command.len() + c.stream.len() + c.content.len()).sum();
        std::mem::size_of::<Self>()
            + text
            + t.launch_role.as_ref().map_or(0, String::len)
            + self.owner.as_ref().map_or(0, String::len)
            + log
    }
}

/// How a task ended.
#[derive(Debug, Clone)]
pub enum TaskOutcome {
    /// Succeeded with these outputs (JSON array).
    Succeeded { outputs: String },
    /// A drift check ended with this finding.
    Checked(super::drift::DriftReport),
    /// Failed with this message.
    Failed { message: String },
}

pub use super::lease::Fence;

/// What [`Store::save_state`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSaved {
    /// Stored as this version.
    Version(i64),
    /// Not stored: the fence is no longer current (another worker or a reaper took the task over).
    Fenced,
    /// Not stored: a state with a higher Terraform serial is stored already.
    Older,
}

/// Terraform's `serial` of a state document (`None` when it has none or does not parse).
pub fn state_serial(state: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(state).ok()?.get("serial")?.as_i64()
}

/// The webhook event of a task that ended with `status`.
fn task_event(task: &Task, status: TaskStatus, message: &str) -> super::webhook::Event {
    let event_type = if status == TaskStatus::Succeeded { EventType::TaskSucceeded } else { EventType::TaskFailed };
    super::webhook::Event {
        event_type,
        portfolio_id: task.portfolio_id.clone(),
        fields: serde_json::json!({
            "TaskId": task.task_id,
            "TaskType": task.task_type,
            "TaskStatus": status,
            "StatusMessage": message,
            "ProvisionedProductId": task.provisioned_product_id,
            "ProvisionedProductName": task.provisioned_product_name,
            "ProductId": task.product_id,
            "ProductVersionId": task.product_version_id,
        }),
    }
}

/// Matches of a FullTextSearch text from which the trigram index no longer pays: each match is a
/// primary key look-up (about 4 µs), where comparing all of 100,000 names takes 10 to 70 ms.
const INDEXED_MATCHES: i64 = 1000;

/// Which provisioned products a list returns.
#[derive(Debug, Clone, Default)]
pub struct ProvisionedProductQuery {
    /// Only this owner's (AccessLevelFilter=User).
    pub owner_principal_id: Option<String>,
    /// Exact name, case-insensitively.
    pub name: Option<String>,
    /// Substring of the name, case-insensitively.
    pub full_text: Option<String>,
    /// Only those whose last drift check found this.
    pub drift_status: Option<DriftStatus>,
    /// Only those whose version's `Guidance` is (`true`) or is not (`false`) `Deprecated`.
    pub deprecated: Option<bool>,
    /// Only those of this product.
    pub product_id: Option<String>,
}

/// A provisioned product's columns, its product's and version's names, its version's guidance
/// and its count of stale dependencies.
pub(super) fn pp_columns() -> String {
    format!(
        "{}, COALESCE(p.product_name, '') AS product_name, COALESCE(v.product_version_name, '') AS product_version_name, \
         pp.drift_status, pp.drift_checked_at, COALESCE(v.guidance, '') AS product_version_guidance, \
         (SELECT COUNT(*) FROM provisioned_product_dependencies d WHERE d.dependent_id = pp.provisioned_product_id \
         AND d.stale = 1) AS stale_dependencies",
        ProvisionedProduct::columns("pp.")
    )
}

pub(super) const PP_FROM: &str = " FROM provisioned_products pp LEFT JOIN products p ON p.product_id = pp.product_id \
    LEFT JOIN product_versions v ON v.product_version_id = pp.product_version_id";

/// The bytes of log text in `chunks` (what a task's `log_bytes` counts).
fn log_bytes(chunks: &[LogChunk]) -> i64 {
    chunks.iter().map(|c| c.content.len() as i64).sum()
}

/// Inserts log chunks of a task (its byte count, [`log_bytes`], is the caller's).
async fn insert_log_chunks(tx: &mut super::Tx, task_id: &str, chunks: &[LogChunk]) -> StoreResult<()> {
    for chunk in chunks {
        sql!(
            "INSERT INTO task_logs (task_id, seq, command, stream, content) VALUES ($1, $2, $3, $4, $5)",
            task_id,
            chunk.seq,
            &chunk.command,
            &chunk.stream,
            &chunk.content
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Inserts a queued task inside `tx`, with what the scheduler writes with it when the scheduler
/// queued it (`scheduled`; a launch's or update's replaces its provisioned product's dependencies
/// with those its references name).
pub(super) async fn insert_task(tx: &mut super::Tx, t: &Task, scheduled: Option<&Scheduled>) -> StoreResult<()> {
    insert("tasks", Task::COLUMNS, [t], |t, sql| t.bind_values(sql)).execute(&mut **tx).await?;
    record_queued(tx, scheduled, JobId::Task(&t.task_id)).await?;
    super::dependency::replace_edges(tx, t).await
}

/// Inserts a provisioned product as it is (a launch's is `UnderChange` with its task as its last).
pub(super) async fn insert_provisioned_product(tx: &mut super::Tx, pp: &ProvisionedProduct) -> StoreResult<()> {
    insert_provisioned_products(tx, &[pp]).await
}

/// Inserts provisioned products as they are, in one statement (`updated_at`: their creation).
async fn insert_provisioned_products(tx: &mut super::Tx, pps: &[&ProvisionedProduct]) -> StoreResult<()> {
    let columns = [ProvisionedProduct::COLUMNS, &["updated_at"]].concat();
    let insert = insert("provisioned_products", &columns, pps, |pp, sql| {
        pp.bind_values(sql);
        sql.push(", ").int(pp.created_at);
    });
    insert.execute(&mut **tx).await?;
    Ok(())
}

/// Moves the task's live provisioned product to `UnderChange` with `task` as its last task;
/// false when it is `UnderChange` already, or gone.
pub(super) async fn mark_under_change(tx: &mut super::Tx, task: &Task) -> StoreResult<bool> {
    let moved = sql!(
        "UPDATE provisioned_products SET status = $1, last_task_id = $2, last_provisioning_task_id = $2, updated_at = $3 \
         WHERE provisioned_product_id = $4 AND status <> $1 AND terminated = 0",
        ProvisionedProductStatus::UnderChange,
        &task.task_id,
        now_ms(),
        &task.provisioned_product_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(moved == 1)
}

/// Why an update or terminate could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRefusal {
    /// The provisioned product is `UnderChange`, or gone.
    UnderChange,
    /// The update's references would close a cycle of dependencies.
    Cycle,
    /// The first terminate of the provisioned product's expiry was queued already.
    ExpiryQueued,
}

/// What holds a provisioned product's name among its owner's. Names are unique per owner,
/// case-insensitively, among the live provisioned products and the launch plans that reserve
/// them ([`PlanStatus::RESERVING_NAME`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameHolder {
    /// A live provisioned product (its id).
    ProvisionedProduct(String),
    /// A launch plan (its id).
    Plan(String),
}

/// The statement finding what holds `name` among `owner`'s ([`NameHolder`]).
fn name_holder_query(owner: &str, name: &str) -> Sql {
    let mut sql = Sql::new(
        "SELECT 'pp' AS holder, provisioned_product_id AS id FROM provisioned_products \
         WHERE terminated = 0 AND owner_principal_id = ",
    );
    sql.text(owner).push(" AND LOWER(provisioned_product_name) = LOWER(").text(name).push(")");
    sql.push(" UNION ALL SELECT 'plan', plan_id FROM plans WHERE owner_principal_id = ").text(owner);
    sql.push(" AND LOWER(provisioned_product_name) = LOWER(").text(name).push(")");
    sql.push(" AND operation_type = ").text(OperationType::LaunchProduct.as_str()).push(" AND status IN (");
    sql.list(PlanStatus::RESERVING_NAME.iter().map(|status| status.as_str().to_bind())).push(")");
    sql
}

/// Decodes a row of [`name_holder_query`].
fn name_holder(row: &Row<'_>) -> StoreResult<NameHolder> {
    let id = row.get("id")?;
    Ok(match row.get::<String>("holder")?.as_str() {
        "pp" => NameHolder::ProvisionedProduct(id),
        _ => NameHolder::Plan(id),
    })
}

/// Claims `name` for a new provisioned product or launch plan of `owner` in `tx`: what holds it
/// already, or `None` when it is free. The claim holds the owner's names until the transaction
/// ends ([`super::Tx::hold`]), so that two launches of one name cannot both find it free. (The
/// owner, not the name: which names are the same is the database's `LOWER`.)
pub(super) async fn claim_name(tx: &mut super::Tx, owner: &str, name: &str) -> StoreResult<Option<NameHolder>> {
    tx.hold(&format!("provisioned product names\n{owner}")).await?;
    name_holder_query(owner, name).row(&mut **tx, name_holder).await
}

impl Store {
    /// What holds `name` among `owner`'s provisioned products and launch plans, if anything.
    pub async fn name_holder(&self, owner: &str, name: &str) -> StoreResult<Option<NameHolder>> {
        self.fetch_optional(&name_holder_query(owner, name), name_holder).await
    }

    /// Records a launch: the provisioned product `UnderChange` and its queued task, atomically,
    /// provided its name is free among its owner's ([`claim_name`]); else what holds it, and
    /// nothing is written.
    pub async fn create_launch(&self, pp: &ProvisionedProduct, task: &Task) -> StoreResult<Option<NameHolder>> {
        let mut tx = self.begin().await?;
        if let Some(holder) = claim_name(&mut tx, &pp.owner_principal_id, &pp.provisioned_product_name).await? {
            return Ok(Some(holder));
        }
        insert_provisioned_product(&mut tx, pp).await?;
        insert_task(&mut tx, task, None).await?;
        tx.commit().await?;
        Ok(None)
    }

    /// Bulk insert of provisioned products with their tasks, as they are (status included), in
    /// one transaction of multi-row INSERTs: for seeding large data sets (benchmarks).
    pub async fn seed_provisioned_products(&self, items: &[(ProvisionedProduct, Vec<Task>)]) -> StoreResult<()> {
        /// Rows per INSERT. More is not faster: SQLite resolves each `$N` by a linear search
        /// of the statement's parameters, quadratic in their number.
        const ROWS: usize = 50;
        let mut tx = self.begin().await?;
        let pps: Vec<&ProvisionedProduct> = items.iter().map(|(pp, _)| pp).collect();
        for chunk in pps.chunks(ROWS) {
            insert_provisioned_products(&mut tx, chunk).await?;
        }
        let tasks: Vec<&Task> = items.iter().flat_map(|(_, tasks)| tasks).collect();
        for chunk in tasks.chunks(ROWS) {
            insert("tasks", Task::COLUMNS, chunk, |t, sql| t.bind_values(sql)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queues an update or terminate task (with what the scheduler writes with it, when the
    /// scheduler queues it) if the provisioned product is not `UnderChange` and an update's
    /// references close no cycle ([`super::dependency::closes_cycle`]); else why not, and
    /// nothing is written.
    pub async fn start_change(&self, task: &Task, scheduled: Option<&Scheduled>) -> StoreResult<Result<(), ChangeRefusal>> {
        let mut tx = self.begin().await?;
        if super::dependency::closes_cycle(&mut tx, task).await? {
            return Ok(Err(ChangeRefusal::Cycle));
        }
        if !mark_under_change(&mut tx, task).await? {
            return Ok(Err(ChangeRefusal::UnderChange));
        }
        insert_task(&mut tx, task, scheduled).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Sets the update policy of the live provisioned product `id`; false when it is gone.
    pub async fn set_update_policy(&self, id: &str, policy: UpdatePolicy) -> StoreResult<bool> {
        let set =
            sql!("UPDATE provisioned_products SET update_policy = $1 WHERE provisioned_product_id = $2 AND terminated = 0", policy, id);
        Ok(self.write(set).await? == 1)
    }

    /// A live (not terminated) provisioned product.
    pub async fn provisioned_product(&self, id: &str) -> StoreResult<Option<ProvisionedProduct>> {
        let mut sql = Sql::new(&format!("SELECT {}{PP_FROM} WHERE pp.provisioned_product_id = ", pp_columns()));
        sql.text(id).push(" AND pp.terminated = 0");
        self.fetch_optional(&sql, ProvisionedProduct::from_row).await
    }

    /// One page of live provisioned products and the total count.
    pub async fn list_provisioned_products(
        &self,
        query: &ProvisionedProductQuery,
        order: SortOrder,
        page: Page,
    ) -> StoreResult<(Vec<ProvisionedProduct>, i64)> {
        let (select, count) = self.provisioned_products_statements(query, order, page).await?;
        self.fetch_page(&select, &count, page, ProvisionedProduct::from_row).await
    }

    /// The page and count statements of [`Store::list_provisioned_products`]. A FullTextSearch
    /// is `LOWER(name) LIKE`, which PostgreSQL answers from its trigram index (migration 23) when
    /// the text is rare, or through SQLite's trigram index (migration 11) when that pays.
    async fn provisioned_products_statements(
        &self,
        query: &ProvisionedProductQuery,
        order: SortOrder,
        page: Page,
    ) -> StoreResult<(Sql, Sql)> {
        let phrase = match &query.full_text {
            Some(text) => self.indexed_name_search(text).await?,
            None => None,
        };
        // With the index, the few matching ids drive the query: `+` keeps SQLite (which has no
        // statistics) from reading an index of live products instead and probing every row.
        // Without it, the count needs no join: it reads only the provisioned products' index.
        let plus = if phrase.is_some() { "+" } else { "" };
        let mut filter = Sql::new(&format!(" WHERE {plus}pp.terminated = 0"));
        if let Some(owner) = &query.owner_principal_id {
            filter.push(&format!(" AND {plus}pp.owner_principal_id = ")).text(owner.clone());
        }
        if let Some(name) = &query.name {
            filter.push(" AND LOWER(pp.provisioned_product_name) = LOWER(").text(name.clone()).push(")");
        }
        if let Some(drift) = query.drift_status {
            filter.push(" AND pp.drift_status = ").text(drift);
        }
        if let Some(product) = &query.product_id {
            filter.push(" AND pp.product_id = ").text(product.clone());
        }
        if let Some(deprecated) = query.deprecated {
            let op = if deprecated { "IN" } else { "NOT IN" };
            filter.push(&format!(" AND pp.product_version_id {op} (SELECT product_version_id FROM product_versions WHERE guidance = "));
            filter.text(super::product::DEPRECATED).push(")");
        }
        if let Some(phrase) = phrase {
            filter
                .push(
                    " AND pp.provisioned_product_id IN (SELECT provisioned_product_id FROM provisioned_product_names \
                WHERE provisioned_product_names MATCH ",
                )
                .text(phrase)
                .push(")");
        } else if let Some(text) = &query.full_text {
            filter.push(" AND LOWER(pp.provisioned_product_name) LIKE LOWER(").text(contains_pattern(text)).push(") ESCAPE '\\'");
        }
        let mut select = filter.behind(&format!("SELECT {}{PP_FROM}", pp_columns()));
        let dir = order.sql();
        select.push(&format!(" ORDER BY pp.created_at {dir}, pp.provisioned_product_id {dir}")).page(page);
        Ok((select, filter.behind("SELECT COUNT(*) FROM provisioned_products pp")))
    }

    /// The FTS5 phrase for a FullTextSearch `text` when the trigram index of lower-cased names
    /// (migration 11, SQLite only) should answer it: when the text is a trigram or longer and
    /// fewer than [`INDEXED_MATCHES`] names hold it. Otherwise comparing every name is as fast.
    async fn indexed_name_search(&self, text: &str) -> StoreResult<Option<String>> {
        // Folded as SQLite's LOWER folds the names the index holds: ASCII letters only.
        let lower = text.to_ascii_lowercase();
        if !self.dialect.has_name_index() || lower.chars().count() < 3 {
            return Ok(None);
        }
        // Quoted with inner quotes doubled: a literal substring, whatever FTS5 syntax it holds.
        let phrase = format!("\"{}\"", lower.replace('"', "\"\""));
        let mut probe = Sql::new("SELECT COUNT(*) FROM (SELECT 1 FROM provisioned_product_names WHERE provisioned_product_names MATCH ");
        probe.text(phrase.clone()).push(" LIMIT ").int(INDEXED_MATCHES).push(")");
        Ok((self.fetch_count(&probe).await? < INDEXED_MATCHES).then_some(phrase))
    }

    /// The live provisioned products of a product (launched through `portfolio_id`, when given),
    /// oldest first.
    pub async fn provisioned_products_of(&self, portfolio_id: Option<&str>, product_id: &str) -> StoreResult<Vec<ProvisionedProduct>> {
        let mut sql = Sql::new(&format!("SELECT {}{PP_FROM} WHERE pp.product_id = ", pp_columns()));
        sql.text(product_id);
        if let Some(portfolio_id) = portfolio_id {
            sql.push(" AND pp.portfolio_id = ").text(portfolio_id);
        }
        sql.push(" AND pp.terminated = 0 ORDER BY pp.created_at, pp.provisioned_product_id");
        self.fetch_all(&sql, ProvisionedProduct::from_row).await
    }

    /// The live provisioned products with update policy `policy` that no task holds, oldest first.
    pub async fn provisioned_products_with_policy(&self, policy: UpdatePolicy) -> StoreResult<Vec<ProvisionedProduct>> {
        let mut sql = Sql::new(&format!("SELECT {}{PP_FROM} WHERE pp.update_policy = ", pp_columns()));
        sql.text(policy).push(" AND pp.terminated = 0 AND pp.status <> ").text(ProvisionedProductStatus::UnderChange);
        sql.push(" ORDER BY pp.created_at, pp.provisioned_product_id");
        self.fetch_all(&sql, ProvisionedProduct::from_row).await
    }

    /// Whether any live provisioned product uses the product (deletion guard).
    pub async fn product_has_provisioned_products(&self, product_id: &str) -> StoreResult<bool> {
        let mut sql = Sql::new("SELECT COUNT(*) FROM provisioned_products WHERE product_id = ");
        sql.text(product_id).push(" AND terminated = 0");
        Ok(self.fetch_count(&sql).await? > 0)
    }

    /// One task.
    pub async fn task(&self, id: &str) -> StoreResult<Option<Task>> {
        self.fetch_optional(Sql::new(&format!("SELECT {} FROM tasks WHERE task_id = ", Task::columns(""))).text(id), Task::from_row).await
    }

    /// Owner of the provisioned product a task belongs to (terminated ones included).
    pub async fn task_owner(&self, provisioned_product_id: &str) -> StoreResult<Option<String>> {
        self.fetch_value(
            Sql::new("SELECT owner_principal_id FROM provisioned_products WHERE provisioned_product_id = ").text(provisioned_product_id),
        )
        .await
    }

    /// One page of a provisioned product's tasks and the total count.
    pub async fn list_tasks(&self, provisioned_product_id: &str, order: SortOrder, page: Page) -> StoreResult<(Vec<Task>, i64)> {
        let mut filter = Sql::new(" FROM tasks WHERE provisioned_product_id = ");
        filter.text(provisioned_product_id);
        let dir = order.sql();
        let mut select = filter.behind(&format!("SELECT {}", Task::columns("")));
        select.push(&format!(" ORDER BY created_at {dir}, task_id {dir}")).page(page);
        self.fetch_page(&select, &filter.behind("SELECT COUNT(*)"), page, Task::from_row).await
    }

    /// One page of the tasks of the provisioned products `owner` owns (every task when `None`),
    /// terminated products included, newest first unless `order` says otherwise, and the total.
    pub async fn list_owned_tasks(&self, owner: Option<&str>, order: SortOrder, page: Page) -> StoreResult<(Vec<Task>, i64)> {
        let mut filter = Sql::new(" FROM tasks t");
        if let Some(owner) = owner {
            filter
                .push(" JOIN provisioned_products p ON p.provisioned_product_id = t.provisioned_product_id WHERE p.owner_principal_id = ")
                .text(owner);
        }
        let dir = order.sql();
        let mut select = filter.behind(&format!("SELECT {}", Task::columns("t.")));
        select.push(&format!(" ORDER BY t.created_at {dir}, t.task_id {dir}")).page(page);
        self.fetch_page(&select, &filter.behind("SELECT COUNT(*)"), page, Task::from_row).await
    }

    /// The logs of the tasks `ids`, as (task id, chunk) in order of task id and position, in one statement.
    pub async fn logs_of_tasks(&self, ids: &[&str]) -> StoreResult<Vec<(String, LogChunk)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("SELECT task_id, seq, command, stream, content FROM task_logs WHERE task_id IN (");
        sql.list(ids.iter().map(ToBind::to_bind)).push(") ORDER BY task_id, seq");
        self.fetch_all(&sql, |row| {
            let chunk =
                LogChunk { seq: row.get("seq")?, command: row.get("command")?, stream: row.get("stream")?, content: row.get("content")? };
            Ok((row.get("task_id")?, chunk))
        })
        .await
    }

    /// A task with the owner of its provisioned product and its whole log, in one statement (the
    /// task's columns repeat on each log row; they are decoded once). A finished task is read once
    /// and then kept in memory (store::finished_tasks).
    pub async fn task_with_logs(&self, id: &str) -> StoreResult<Option<Arc<TaskRecord>>> {
        if let Some(record) = self.finished_tasks.get(id) {
            return Ok(Some(record));
        }
        let mut sql = Sql::new(&format!(
            "SELECT t.*, p.owner_principal_id, l.seq, l.command, l.stream, l.content FROM (SELECT {} FROM tasks WHERE task_id = ",
            Task::columns("")
        ));
        sql.text(id).push(
            ") t LEFT JOIN provisioned_products p ON p.provisioned_product_id = t.provisioned_product_id \
             LEFT JOIN task_logs l ON l.task_id = t.task_id ORDER BY l.seq",
        );
        let mut found: Option<(Task, Option<String>)> = None;
        let mut log = Vec::new();
        self.fetch_all(&sql, |row| {
            if found.is_none() {
                found = Some((Task::from_row(row)?, row.get("owner_principal_id")?));
            }
            if let Some(seq) = row.get::<Option<i64>>("seq")? {
                log.push(LogChunk { seq, command: row.get("command")?, stream: row.get("stream")?, content: row.get("content")? });
            }
            Ok(())
        })
        .await?;
        let Some((task, owner)) = found else { return Ok(None) };
        let record = Arc::new(TaskRecord { task, owner, log });
        if record.task.status != TaskStatus::InProgress {
            self.finished_tasks.keep(Arc::clone(&record));
        }
        Ok(Some(record))
    }

    /// Log chunks of a task after `after_seq`, in order, at most `limit`.
    pub async fn task_logs(&self, task_id: &str, after_seq: i64, limit: i64) -> StoreResult<Vec<LogChunk>> {
        let mut sql = Sql::new("SELECT seq, command, stream, content FROM task_logs WHERE task_id = ");
        sql.text(task_id).push(" AND seq > ").int(after_seq).push(" ORDER BY seq LIMIT ").int(limit);
        self.fetch_all(&sql, |r| {
            Ok(LogChunk { seq: r.get("seq")?, command: r.get("command")?, stream: r.get("stream")?, content: r.get("content")? })
        })
        .await
    }

    /// Appends log chunks to a task in progress, keeping its byte count, if `fence` is still
    /// current. False, and nothing written, when it is not: the task finished (a finished task's
    /// log is complete, and store::finished_tasks relies on it) or another worker took it over.
    pub async fn append_logs(&self, fence: &Fence, chunks: &[LogChunk]) -> StoreResult<bool> {
        if chunks.is_empty() {
            return Ok(true);
        }
        let mut tx = self.begin().await?;
        // First, so that on PostgreSQL the row lock orders this with finish_task's update.
        let mut held = sql!("UPDATE tasks SET log_bytes = log_bytes + $1", log_bytes(chunks));
        fence.push_held(&mut held);
        if held.execute(&mut *tx).await? != 1 {
            return Ok(false);
        }
        insert_log_chunks(&mut tx, &fence.job_id, chunks).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The newest sealed state of a provisioned product.
    pub async fn latest_state(&self, provisioned_product_id: &str) -> StoreResult<Option<(i64, String)>> {
        sql!(
            "SELECT version, state_sealed FROM terraform_states WHERE provisioned_product_id = $1 ORDER BY version DESC LIMIT 1",
            provisioned_product_id
        )
        .row(self.writer(), |row| Ok((row.get("version")?, row.get("state_sealed")?)))
        .await
    }

    /// Stores a new state version written by the task `fence` holds; older versions are kept.
    /// Nothing is stored when the fence is no longer current ([`StateSaved::Fenced`]), or when a
    /// stored state has a higher Terraform serial than `state`'s `serial` ([`StateSaved::Older`]):
    /// a state never goes backwards.
    pub async fn save_state(
        &self,
        provisioned_product_id: &str,
        fence: &Fence,
        state_sealed: &str,
        serial: Option<i64>,
    ) -> StoreResult<StateSaved> {
        let mut tx = self.begin().await?;
        if !lease::hold(&mut tx, fence).await? {
            return Ok(StateSaved::Fenced);
        }
        let next = sql!(
            "SELECT COALESCE(MAX(version), 0) + 1 AS version, MAX(serial) AS serial FROM terraform_states WHERE provisioned_product_id = $1",
            provisioned_product_id
        );
        let (version, newest_serial): (i64, Option<i64>) =
            next.row(&mut *tx, |row| Ok((row.get("version")?, row.get("serial")?))).await?.unwrap_or_default();
        if serial.zip(newest_serial).is_some_and(|(serial, newest)| serial < newest) {
            return Ok(StateSaved::Older);
        }
        sql!("INSERT INTO terraform_states (provisioned_product_id, version, task_id, state_sealed, created_at, serial) VALUES ($1, $2, $3, $4, $5, $6)", provisioned_product_id, version, &fence.job_id, state_sealed, now_ms(), serial)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(StateSaved::Version(version))
    }

    /// Ends a task, writes the last lines of its log (`last_log`, not yet appended) and moves its
    /// provisioned product out of `UnderChange`, atomically: one commit, one disk sync. With a
    /// `fence`, only if it is still current. False when nothing was changed.
    pub async fn finish_task(&self, task: &Task, fence: Option<&Fence>, outcome: &TaskOutcome, last_log: &[LogChunk]) -> StoreResult<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let (status, message, outputs) = match outcome {
            TaskOutcome::Succeeded { outputs } => (TaskStatus::Succeeded, "", outputs.as_str()),
            TaskOutcome::Checked(_) => (TaskStatus::Succeeded, "", "[]"),
            TaskOutcome::Failed { message } => (TaskStatus::Failed, message.as_str(), "[]"),
        };
        let mut update = Sql::new("UPDATE tasks SET status = ");
        update.text(status).push(", status_message = ").text(message).push(", outputs = ").text(outputs);
        update.push(", log_bytes = log_bytes + ").int(log_bytes(last_log));
        update.push(", lease_owner = NULL, lease_expires_at = NULL, updated_at = ").int(now);
        Task::TABLE.push_in_progress(&mut update, &task.task_id, fence);
        if update.execute(&mut *tx).await? != 1 {
            return Ok(false);
        }
        insert_log_chunks(&mut tx, &task.task_id, last_log).await?;
        if task.task_type == OperationType::DetectProvisionedProductDrift {
            super::drift::finish_check(&mut tx, task, outcome).await?;
            tx.commit().await?;
            return Ok(true);
        }
        let failure = match outcome {
            TaskOutcome::Succeeded { .. } | TaskOutcome::Checked(_) => None,
            TaskOutcome::Failed { message } => Some(message.as_str()),
        };
        super::plan::finish_execution(&mut tx, &task.task_id, failure).await?;
        let (id, done) = (&task.provisioned_product_id, ProvisionedProductStatus::Available);
        match outcome {
            TaskOutcome::Failed { message } => sql!(
                "UPDATE provisioned_products SET status = $1, status_message = $2, last_task_id = $3, updated_at = $4 \
                 WHERE provisioned_product_id = $5",
                ProvisionedProductStatus::Error,
                message,
                &task.task_id,
                now,
                id
            ),
            TaskOutcome::Succeeded { .. } if task.task_type == OperationType::TerminateProvisionedProduct => sql!(
                "UPDATE provisioned_products SET terminated = 1, status = $1, status_message = '', \
                 last_successful_provisioning_task_id = $2, updated_at = $3 WHERE provisioned_product_id = $4",
                done,
                &task.task_id,
                now,
                id
            ),
            TaskOutcome::Succeeded { .. } | TaskOutcome::Checked(_) => sql!(
                "UPDATE provisioned_products SET status = $1, status_message = '', last_successful_provisioning_task_id = $2, \
                 updated_at = $3, product_version_id = $4, portfolio_id = $5, parameters_sealed = $6 WHERE provisioned_product_id = $7",
                done,
                &task.task_id,
                now,
                &task.product_version_id,
                &task.portfolio_id,
                &task.parameters_sealed,
                id
            ),
        }
        .execute(&mut *tx)
        .await?;
        super::webhook::enqueue(&mut tx, &task_event(task, status, message)).await?;
        if let TaskOutcome::Succeeded { outputs } = outcome {
            if task.task_type != OperationType::TerminateProvisionedProduct {
                super::dependency::mark_dependents_stale(&mut tx, task, outputs).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The sealed environment (a JSON object) of a launch role.
    pub async fn launch_role_env_sealed(&self, role_name: &str) -> StoreResult<Option<String>> {
        self.fetch_value(Sql::new("SELECT env_sealed FROM launch_roles WHERE role_name = ").text(role_name)).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::testing;

    /// A queued launch task `task_id` of the provisioned product `pp-{task_id}`.
    pub(crate) fn sample_task(task_id: &str) -> Task {
        let now = now_ms();
        Task {
            task_id: task_id.into(),
            task_type: OperationType::LaunchProduct,
            provisioned_product_id: format!("pp-{task_id}").into(),
            provisioned_product_name: format!("demo-{task_id}"),
            product_id: "prod-1".into(),
            product_name: "p".into(),
            product_version_id: "pv-1".into(),
            product_version_name: "v1".into(),
            portfolio_id: "port-1".into(),
            stack_region_id: "cn-hangzhou".into(),
            parameters_sealed: "sealed".into(),
            sensitive_parameters: "[]".into(),
            task_tags: "[]".into(),
            launch_role: None,
            outputs: "[]".into(),
            status: TaskStatus::InProgress,
            status_message: String::new(),
            created_at: now,
            updated_at: now,
            parameter_references: "[]".into(),
        }
    }

    /// Inserts a provisioned product with one queued launch task `task_id`.
    pub(crate) async fn seed_task(store: &Store, task_id: &str) -> Task {
        let task = sample_task(task_id);
        let pp = ProvisionedProduct::launched(&task, "1", "RamUser", "stack".into());
        assert_eq!(store.create_launch(&pp, &task).await.unwrap(), None, "the name is free");
        task
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn launches_of_one_name_at_once_make_one_provisioned_product() {
        testing::each_store(|store| async move {
            let mut launches = tokio::task::JoinSet::new();
            for i in 0..8 {
                let store = store.clone();
                // One owner, one name in different cases.
                let name = if i % 2 == 0 { "Web" } else { "WEB" };
                launches.spawn(async move {
                    let task = sample_task(&format!("task-{i}"));
                    let pp = ProvisionedProduct {
                        provisioned_product_name: name.into(),
                        ..ProvisionedProduct::launched(&task, "1", "RamUser", "stack".into())
                    };
                    (store.create_launch(&pp, &task).await.unwrap(), pp.provisioned_product_id)
                });
            }
            let outcomes = launches.join_all().await;
            let made: Vec<_> = outcomes.iter().filter(|(holder, _)| holder.is_none()).map(|(_, id)| id.clone()).collect();
            assert_eq!(made.len(), 1, "{outcomes:?}");
            let winner = NameHolder::ProvisionedProduct(made[0].to_string());
            assert!(outcomes.iter().all(|(holder, _)| holder.is_none() || holder.as_ref() == Some(&winner)), "{outcomes:?}");
            let (live, total) = store
                .list_provisioned_products(&ProvisionedProductQuery::default(), SortOrder::Asc, Page { number: 1, size: 10 })
                .await
                .unwrap();
            assert_eq!((live.len(), total), (1, 1), "nothing of the refused launches was written");
            assert_eq!(store.list_tasks(made[0].as_str(), SortOrder::Asc, Page { number: 1, size: 10 }).await.unwrap().1, 1);
            // Another owner may use the name; the owner may once it is terminated.
            let task = sample_task("task-other");
            let other = ProvisionedProduct {
                provisioned_product_name: "web".into(),
                ..ProvisionedProduct::launched(&task, "2", "RamUser", "s".into())
            };
            assert_eq!(store.create_launch(&other, &task).await.unwrap(), None);
            assert_eq!(store.name_holder("1", "wEb").await.unwrap(), Some(winner));
            sql!("UPDATE provisioned_products SET terminated = 1 WHERE provisioned_product_id = $1", made[0].as_str())
                .execute(store.writer())
                .await
                .unwrap();
            assert_eq!(store.name_holder("1", "web").await.unwrap(), None);
            // A name with letters beyond ASCII is found as it is written on either database
            // (SQLite's LOWER folds ASCII letters only; both sides are folded by the database).
            let task = sample_task("task-u");
            let umlaut = ProvisionedProduct {
                provisioned_product_name: "Ärger-Straße".into(),
                ..ProvisionedProduct::launched(&task, "1", "RamUser", "s".into())
            };
            assert_eq!(store.create_launch(&umlaut, &task).await.unwrap(), None);
            let held = Some(NameHolder::ProvisionedProduct(umlaut.provisioned_product_id.to_string()));
            assert_eq!(store.name_holder("1", "Ärger-Straße").await.unwrap(), held);
            assert_eq!(store.name_holder("1", "ärger-strasse").await.unwrap(), None);
            assert_eq!(store.name_holder("1", "ärger-straße").await.unwrap().is_some(), store.dialect() == crate::store::Dialect::Postgres);
            let named = ProvisionedProductQuery { name: Some("Ärger-Straße".into()), ..Default::default() };
            assert_eq!(store.list_provisioned_products(&named, SortOrder::Asc, Page { number: 1, size: 10 }).await.unwrap().1, 1);
        })
        .await;
    }

    #[tokio::test]
    async fn seeded_products_and_tasks_read_back() {
        testing::each_store(|store| async move {
            let template = seed_task(&store, "task-t").await;
            let pp = store.provisioned_product("pp-task-t").await.unwrap().unwrap();
            let items: Vec<(ProvisionedProduct, Vec<Task>)> = (0..600)
                .map(|i| {
                    let pp = ProvisionedProduct { provisioned_product_id: format!("pp-{i}").into(), ..pp.clone() };
                    let tasks = (0..2)
                        .map(|j| Task {
                            task_id: format!("t-{i}-{j}").into(),
                            provisioned_product_id: pp.provisioned_product_id.clone(),
                            ..template.clone()
                        })
                        .collect();
                    (pp, tasks)
                })
                .collect();
            store.seed_provisioned_products(&items).await.unwrap();
            assert_eq!(store.task("t-599-1").await.unwrap().unwrap().provisioned_product_id, "pp-599");
            let (tasks, total) = store.list_tasks("pp-42", SortOrder::Asc, Page { number: 1, size: 10 }).await.unwrap();
            assert_eq!((tasks.len(), total), (2, 2));
            let all = ProvisionedProductQuery::default();
            assert_eq!(store.list_provisioned_products(&all, SortOrder::Desc, Page { number: 1, size: 1 }).await.unwrap().1, 601);
            // A task history: an owner's tasks, all when no owner is named, none of a stranger.
            let first = Page { number: 1, size: 5 };
            let (owned, total) = store.list_owned_tasks(Some("1"), SortOrder::Desc, first).await.unwrap();
            assert_eq!((owned.len(), total), (5, 1201));
            assert_eq!(store.list_owned_tasks(None, SortOrder::Desc, first).await.unwrap().1, 1201);
            assert_eq!(store.list_owned_tasks(Some("2"), SortOrder::Desc, first).await.unwrap().1, 0);
        })
        .await;
    }

    /// Provisioned products named `names`, with ids `pp-0`, `pp-1`, …, besides `pp-task-names`
    /// named `demo`.
    async fn seed_names(store: &Store, names: &[&str]) {
        seed_task(store, "task-names").await;
        let pp = store.provisioned_product("pp-task-names").await.unwrap().unwrap();
        let items: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    ProvisionedProduct {
                        provisioned_product_id: format!("pp-{i}").into(),
                        provisioned_product_name: name.to_string(),
                        ..pp.clone()
                    },
                    Vec::new(),
                )
            })
            .collect();
        store.seed_provisioned_products(&items).await.unwrap();
    }

    /// Ids of the live provisioned products whose name holds `text`, sorted.
    async fn full_text(store: &Store, text: &str) -> Vec<String> {
        let query = ProvisionedProductQuery { full_text: Some(text.into()), ..Default::default() };
        let (found, total) = store.list_provisioned_products(&query, SortOrder::Asc, Page { number: 1, size: 2000 }).await.unwrap();
        assert_eq!(found.len() as i64, total, "{text:?}: the count and the page disagree");
        let mut ids: Vec<String> = found.into_iter().map(|pp| pp.provisioned_product_id.into()).collect();
        ids.sort();
        ids
    }

    /// The plan PostgreSQL makes for `sql` (EXPLAIN), one line per row.
    async fn postgres_plan(store: &Store, sql: &Sql) -> String {
        let explain = sql.behind("EXPLAIN ");
        store.fetch_all(&explain, |row| row.first::<String>()).await.unwrap().join("\n")
    }

    #[tokio::test]
    async fn postgres_answers_a_rare_full_text_from_the_trigram_index() {
        testing::each_store(|store| async move {
            if store.dialect() != crate::store::Dialect::Postgres {
                return;
            }
            let names: Vec<String> = (0..5000).map(|i| format!("app-{i:06}")).collect();
            seed_names(&store, &names.iter().map(String::as_str).collect::<Vec<_>>()).await;
            Sql::new("ANALYZE provisioned_products").execute(store.writer()).await.unwrap();
            let page = Page { number: 1, size: 10 };
            // The statements the server sends for a text that 11 of the 5,000 names hold.
            let rare = ProvisionedProductQuery { full_text: Some("00123".into()), ..Default::default() };
            let (select, count) = store.provisioned_products_statements(&rare, SortOrder::Desc, page).await.unwrap();
            for sql in [&select, &count] {
                let plan = postgres_plan(&store, sql).await;
                assert!(plan.contains("provisioned_products_name_trgm"), "{plan}");
            }
            let (found, total) = store.list_provisioned_products(&rare, SortOrder::Desc, page).await.unwrap();
            assert_eq!((found.len(), total), (10, 11), "app-000123 and app-001230 to app-001239");
        })
        .await;
    }

    #[tokio::test]
    async fn full_text_search_through_the_index_finds_what_like_finds() {
        testing::each_store(|store| async move {
            let mut names = vec![
                "App-001234",
                "app-012345",
                "Web 50% off",
                "web_50_off",
                "say \"hi\"",
                "it's",
                "MiXeD CaSe",
                "ÉCOLE",
                "école",
                "a\\b%c",
            ];
            let bulk: Vec<String> = (0..INDEXED_MATCHES).map(|i| format!("bulk-{i}")).collect();
            names.extend(bulk.iter().map(String::as_str));
            seed_names(&store, &names).await;
            let texts = [
                "a",
                "pp",
                "APP",
                "0123",
                "01234",
                "-0",
                "50%",
                "50_",
                "0%",
                "_50",
                "\"hi\"",
                "\"",
                "y \"h",
                "'s",
                "t's",
                "mixed case",
                "XED C",
                "éco",
                "ÉCO",
                "cole",
                "\\b%",
                "b%c",
                "AND",
                "NOT app",
                "app*",
                "^app",
                "nothing",
                "",
                "BULK",
                "ulk-99",
            ];
            for text in texts {
                let mut like =
                    Sql::new("SELECT provisioned_product_id FROM provisioned_products WHERE LOWER(provisioned_product_name) LIKE LOWER(");
                like.text(contains_pattern(text)).push(") ESCAPE '\\' ORDER BY provisioned_product_id");
                let expected = store.fetch_all(&like, |row| row.first::<String>()).await.unwrap();
                assert_eq!(full_text(&store, text).await, expected, "{text:?}");
            }
            assert_eq!(full_text(&store, "APP").await, ["pp-0", "pp-1"]);
            assert_eq!(full_text(&store, "50%").await, ["pp-2"]);
            assert_eq!(full_text(&store, "\"hi\"").await, ["pp-4"]);
            // SQLite's LOWER folds ASCII letters only, PostgreSQL's every letter.
            let sqlite = store.dialect() == crate::store::Dialect::Sqlite;
            assert_eq!(full_text(&store, "éco").await, if sqlite { &["pp-8"][..] } else { &["pp-7", "pp-8"] });
            assert_eq!(full_text(&store, "ÉCO").await, if sqlite { &["pp-7"][..] } else { &["pp-7", "pp-8"] }, "as written");
            assert_eq!(full_text(&store, "bulk").await.len() as i64, INDEXED_MATCHES);
            // The index (SQLite's) answers uncommon trigrams; common and short texts compare every name.
            assert_eq!(store.indexed_name_search("ULK-99").await.unwrap().as_deref(), sqlite.then_some("\"ulk-99\""));
            assert_eq!(store.indexed_name_search("y \"h").await.unwrap().as_deref(), sqlite.then_some("\"y \"\"h\""));
            assert_eq!(store.indexed_name_search("bulk").await.unwrap(), None);
            assert_eq!(store.indexed_name_search("pp").await.unwrap(), None);
            // The other filters still apply.
            let page = Page { number: 1, size: 10 };
            let query = |owner: &str, name: Option<&str>| ProvisionedProductQuery {
                owner_principal_id: Some(owner.into()),
                name: name.map(str::to_string),
                full_text: Some("APP-0".into()),
                ..ProvisionedProductQuery::default()
            };
            assert_eq!(store.list_provisioned_products(&query("1", None), SortOrder::Asc, page).await.unwrap().1, 2);
            assert_eq!(store.list_provisioned_products(&query("2", None), SortOrder::Asc, page).await.unwrap().1, 0);
            let (found, total) = store.list_provisioned_products(&query("1", Some("APP-012345")), SortOrder::Asc, page).await.unwrap();
            assert_eq!((found[0].provisioned_product_id.as_str(), total), ("pp-1", 1));
        })
        .await;
    }

    #[tokio::test]
    async fn the_name_index_holds_names_from_before_its_migration_and_new_ones() {
        let (store, dir) = testing::sqlite().await;
        seed_names(&store, &["alpha-1", "beta-1"]).await;
        // Back to the schema before migration 11, rows and all; opening again applies it.
        for statement in [
            "DROP TRIGGER provisioned_product_names_insert",
            "DROP TABLE provisioned_product_names",
            "DELETE FROM schema_migrations WHERE version = 11",
        ] {
            Sql::new(statement).execute(store.writer()).await.unwrap();
        }
        let store = Store::open(&Store::sqlite_url(dir.path())).await.unwrap();
        assert_eq!(full_text(&store, "HA-1").await, ["pp-0"]);
        seed_task(&store, "task-new").await;
        assert_eq!(full_text(&store, "emo").await, ["pp-task-names", "pp-task-new"]);
    }

    #[tokio::test]
    async fn a_task_reads_with_its_owner_and_whole_log_in_order() {
        testing::each_store(|store| async move {
            let task = seed_task(&store, "task-l").await;
            let read = store.task_with_logs("task-l").await.unwrap().unwrap();
            assert_eq!((read.task.task_id.as_str(), read.owner.as_deref(), read.log.len()), (task.task_id.as_str(), Some("1"), 0));
            let chunk = |seq: i64, command: &str| LogChunk {
                seq,
                command: command.into(),
                stream: "stdout".into(),
                content: format!("{command}\n"),
            };
            let (_, fence) = store.claim::<Task>("w", 60_000).await.unwrap().unwrap();
            assert!(store.append_logs(&fence, &[chunk(2, "plan"), chunk(1, "init")]).await.unwrap());
            assert!(store.append_logs(&fence, &[chunk(3, "apply")]).await.unwrap());
            let read = store.task_with_logs("task-l").await.unwrap().unwrap();
            assert_eq!(read.log, vec![chunk(1, "init"), chunk(2, "plan"), chunk(3, "apply")], "a task in progress is read again");
            assert_eq!(read.log, store.task_logs("task-l", 0, i64::MAX).await.unwrap());
            assert!(store.task_with_logs("task-none").await.unwrap().is_none());
        })
        .await;
    }

    #[tokio::test]
    async fn a_finished_task_takes_no_more_log_and_is_read_once() {
        testing::each_store(|store| async move {
            let task = seed_task(&store, "task-f").await;
            let chunk = |seq: i64| LogChunk { seq, command: "apply".into(), stream: "stdout".into(), content: format!("line {seq}\n") };
            let (_, fence) = store.claim::<Task>("w", 60_000).await.unwrap().unwrap();
            assert!(store.append_logs(&fence, &[chunk(1)]).await.unwrap());
            let before = store.task_with_logs("task-f").await.unwrap().unwrap();
            assert!(store.finish_task(&task, Some(&fence), &TaskOutcome::Succeeded { outputs: "[]".into() }, &[chunk(2)]).await.unwrap());
            assert!(!store.append_logs(&fence, &[chunk(3)]).await.unwrap(), "a finished task's log is complete");
            assert_eq!(
                store.task_logs("task-f", 0, i64::MAX).await.unwrap(),
                vec![chunk(1), chunk(2)],
                "the last lines came with the outcome"
            );
            let first = store.task_with_logs("task-f").await.unwrap().unwrap();
            assert!(!Arc::ptr_eq(&before, &first), "read again: it was in progress");
            assert_eq!((first.task.status, first.log.len()), (TaskStatus::Succeeded, 2));
            let again = store.task_with_logs("task-f").await.unwrap().unwrap();
            assert!(Arc::ptr_eq(&first, &again), "kept once finished");
            let log_bytes: i64 = sql!("SELECT log_bytes FROM tasks WHERE task_id = 'task-f'").one(store.writer()).await.unwrap();
            assert_eq!(log_bytes, (chunk(1).content.len() + chunk(2).content.len()) as i64, "the refused chunk is not counted");
        })
        .await;
    }

    #[tokio::test]
    async fn a_task_is_claimed_once_and_its_outcome_frees_the_product() {
        testing::each_store(|store| async move {
            let task = seed_task(&store, "task-a").await;
            let (claimed, fence) = store.claim::<Task>("w1", 60_000).await.unwrap().unwrap();
            assert_eq!((claimed.task_id.as_str(), claimed.parameters_sealed.as_str(), fence.epoch), ("task-a", "sealed", 1));
            assert!(store.claim::<Task>("w2", 60_000).await.unwrap().is_none());
            assert!(store.renew_lease(&fence, 60_000).await.unwrap());
            let other = Fence { owner: "w2".into(), ..fence.clone() };
            let stale = Fence { epoch: 0, ..fence.clone() };
            assert!(!store.renew_lease(&other, 60_000).await.unwrap());
            assert!(!store.renew_lease(&stale, 60_000).await.unwrap());
            let line = LogChunk { seq: 1, command: "apply".into(), stream: "stdout".into(), content: "w2\n".into() };
            for wrong in [&other, &stale] {
                assert!(!store.append_logs(wrong, std::slice::from_ref(&line)).await.unwrap());
                assert_eq!(store.save_state("pp-task-a", wrong, "s", None).await.unwrap(), StateSaved::Fenced);
                assert!(!store
                    .finish_task(&task, Some(wrong), &TaskOutcome::Failed { message: "x".into() }, std::slice::from_ref(&line))
                    .await
                    .unwrap());
            }
            assert!(store.task_logs("task-a", 0, i64::MAX).await.unwrap().is_empty(), "nothing of a worker without the lease");
            assert!(store.latest_state("pp-task-a").await.unwrap().is_none());
            let outputs = r#"[{"OutputKey":"a","OutputValue":"1","Description":""}]"#.to_string();
            assert!(store.finish_task(&task, Some(&fence), &TaskOutcome::Succeeded { outputs }, &[]).await.unwrap());
            let pp = store.provisioned_product("pp-task-a").await.unwrap().unwrap();
            assert_eq!(pp.status, ProvisionedProductStatus::Available);
            assert_eq!(pp.last_successful_provisioning_task_id.as_deref(), Some("task-a"));
            assert_eq!(store.task("task-a").await.unwrap().unwrap().status, TaskStatus::Succeeded);
        })
        .await;
    }

    #[tokio::test]
    async fn an_expired_lease_fails_the_task_and_the_product_leaves_under_change() {
        testing::each_store(|store| async move {
            let task = seed_task(&store, "task-b").await;
            let (_, dead) = store.claim::<Task>("dead-worker", -1).await.unwrap().unwrap();
            let expired = store.expired::<Task>().await.unwrap();
            assert_eq!(expired.len(), 1);
            let reaper = store.take_over(Task::TABLE, "task-b", "reaper-1").await.unwrap().unwrap();
            assert_eq!(reaper.epoch, dead.epoch + 1);
            assert!(!store.renew_lease(&dead, 60_000).await.unwrap(), "the dead worker lost its lease");
            assert_eq!(store.save_state("pp-task-b", &reaper, "salvaged", None).await.unwrap(), StateSaved::Version(1));
            let outcome = TaskOutcome::Failed { message: "interrupted".into() };
            assert!(!store.finish_task(&task, Some(&dead), &outcome, &[]).await.unwrap());
            assert!(store.finish_task(&task, Some(&reaper), &outcome, &[]).await.unwrap());
            assert!(store.take_over(Task::TABLE, "task-b", "reaper-2").await.unwrap().is_none());
            let pp = store.provisioned_product("pp-task-b").await.unwrap().unwrap();
            assert_eq!(pp.status, ProvisionedProductStatus::Error);
            assert_eq!(pp.status_message, "interrupted");
            assert_eq!(store.task("task-b").await.unwrap().unwrap().status, TaskStatus::Failed);
        })
        .await;
    }

    #[tokio::test]
    async fn a_change_is_refused_while_under_change_and_states_are_versioned() {
        testing::each_store(|store| async move {
            let task = seed_task(&store, "task-c").await;
            let mut update = task.clone();
            update.task_id = "task-d".into();
            update.task_type = OperationType::UpdateProvisionedProduct;
            assert_eq!(store.start_change(&update, None).await.unwrap(), Err(ChangeRefusal::UnderChange));
            let (_, fence) = store.claim::<Task>("w", 60_000).await.unwrap().unwrap();
            assert_eq!(store.save_state("pp-task-c", &fence, "s1", Some(3)).await.unwrap(), StateSaved::Version(1));
            assert_eq!(store.save_state("pp-task-c", &fence, "s2", Some(5)).await.unwrap(), StateSaved::Version(2));
            assert_eq!(
                store.save_state("pp-task-c", &fence, "older", Some(4)).await.unwrap(),
                StateSaved::Older,
                "a state never goes backwards"
            );
            assert_eq!(store.save_state("pp-task-c", &fence, "s3", Some(5)).await.unwrap(), StateSaved::Version(3));
            assert_eq!(store.latest_state("pp-task-c").await.unwrap(), Some((3, "s3".into())));
            assert_eq!(state_serial(r#"{"version": 4, "serial": 7}"#), Some(7));
            assert_eq!(state_serial(""), None);
        })
        .await;
    }

    #[tokio::test]
    async fn a_scheduled_change_is_audited_with_its_task_and_only_when_queued() {
        testing::each_store(|store| async move {
            let launch = seed_task(&store, "task-g").await;
            let audit = Scheduled::from(super::super::audit::AuditEvent {
                request_id: "node-a".into(),
                ..super::super::audit::sample("UpdateProvisionedProduct", "system", "pp-task-g")
            });
            let update = |id: &str| Task { task_id: id.into(), task_type: OperationType::UpdateProvisionedProduct, ..launch.clone() };
            assert_eq!(
                store.start_change(&update("task-h"), Some(&audit)).await.unwrap(),
                Err(ChangeRefusal::UnderChange),
                "the launch holds the product"
            );
            let (_, fence) = store.claim::<Task>("w", 60_000).await.unwrap().unwrap();
            assert!(store.finish_task(&launch, Some(&fence), &TaskOutcome::Succeeded { outputs: "[]".into() }, &[]).await.unwrap());
            assert_eq!(store.start_change(&update("task-i"), Some(&audit)).await.unwrap(), Ok(()));
            let query = super::super::audit::AuditQuery { resource_id: Some("pp-task-g".into()), ..Default::default() };
            let (audited, _) = store.list_audit_events(&query, SortOrder::Asc, Page { number: 1, size: 10 }).await.unwrap();
            assert_eq!(
                audited.iter().map(|e| (e.request_id.as_str(), e.principal_name.as_str())).collect::<Vec<_>>(),
                [("node-a/task-i", "system")],
                "one record, written with the task it names"
            );
        })
        .await;
    }
}
