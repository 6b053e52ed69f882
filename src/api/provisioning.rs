//! Provisioned products and tasks on the wire: launch, update, terminate, their reads and lists,
//! and the task-log extension (`GetTaskLog`, documented in the README) that the CLI and console
//! follow. The rules live in [`crate::provisioning`]; here requests are decoded and answers named.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::{filter_value, format_time, Answer, Ctx, Filter, Paged, Paging};
use crate::model::{DriftStatus, OperationType, ProvisionedProductId, ProvisionedProductStatus, TaskId, TaskStatus, UpdatePolicy};
use crate::provisioning::queue::{Launch, Update};
use crate::provisioning::task::{listed_logs, terraform_logs, TerraformLog, LISTED_LOG_BYTES};
use crate::provisioning::{stored, Output, Parameter, Tag};
use crate::store::dependency::references_from_json;
use crate::store::product::DEPRECATED;
use crate::store::provisioning::{ProvisionedProduct, ProvisionedProductQuery, Task};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ProvisionedProductIdRequest {
    provisioned_product_id: String,
}

/// `TerminateProvisionedProduct`'s request; `Force` (an extension) terminates a provisioned
/// product others depend on.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TerminateRequest {
    provisioned_product_id: String,
    #[serde(default)]
    force: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRequest {
    #[serde(flatten)]
    paging: Paging,
    access_level_filter: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TaskIdRequest {
    task_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListTasksRequest {
    provisioned_product_id: String,
    #[serde(flatten)]
    paging: Paging,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TaskLogRequest {
    task_id: String,
    after_seq: Option<i64>,
    wait_seconds: Option<i64>,
}

/// The ids a change answers (each action those it has), as a `Value`: the audit trail reads
/// the created resource's id from it.
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Ids {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<crate::model::PlanId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned_product_id: Option<ProvisionedProductId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
}

impl Ids {
    pub(super) fn answer(self) -> Result<Value, ApiError> {
        serde_json::to_value(self).map_err(ApiError::internal)
    }
}

pub(super) async fn launch(ctx: &Ctx<'_>, req: Launch) -> Result<Value, ApiError> {
    let queued = ctx.state.provisioner().launch(ctx.principal, req).await?;
    Ids { provisioned_product_id: Some(queued.provisioned_product_id), task_id: Some(queued.task_id), ..Ids::default() }.answer()
}

pub(super) async fn update(ctx: &Ctx<'_>, req: Update) -> Result<Value, ApiError> {
    let queued = ctx.state.provisioner().update(ctx.principal, req).await?;
    Ids { provisioned_product_id: Some(queued.provisioned_product_id), task_id: Some(queued.task_id), ..Ids::default() }.answer()
}

pub(super) async fn terminate(ctx: &Ctx<'_>, req: TerminateRequest) -> Result<Value, ApiError> {
    let force = req.force.unwrap_or(false);
    let queued = ctx.state.provisioner().terminate(ctx.principal, &req.provisioned_product_id, force).await?;
    Ids { task_id: Some(queued.task_id), ..Ids::default() }.answer()
}

/// The `ProvisionedProductDetail` object.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProvisionedProductDetail<'a> {
    provisioned_product_id: &'a ProvisionedProductId,
    provisioned_product_name: &'a str,
    provisioned_product_arn: String,
    provisioned_product_type: &'static str,
    owner_principal_id: &'a str,
    owner_principal_type: &'a str,
    product_id: &'a str,
    product_name: &'a str,
    product_version_id: &'a str,
    product_version_name: &'a str,
    portfolio_id: &'a str,
    stack_id: &'a str,
    stack_region_id: &'a str,
    status: ProvisionedProductStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    create_time: String,
    last_task_id: &'a Option<TaskId>,
    last_provisioning_task_id: &'a Option<TaskId>,
    last_successful_provisioning_task_id: &'a Option<TaskId>,
    /// Extension: what the last drift check found.
    drift_status: DriftStatus,
    /// Extension: when the last drift check ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    drift_checked_time: Option<String>,
    /// Extension: when its expiry terminates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    expiry_time: Option<String>,
    /// Extension: what updates it besides its owner.
    update_policy: UpdatePolicy,
    /// Extension: whether its version's `Guidance` is `Deprecated`.
    product_version_deprecated: bool,
    /// Extension: whether an output its parameters read changed since they were resolved.
    dependency_stale: bool,
}

fn pp_detail<'a>(ctx: &Ctx<'_>, pp: &'a ProvisionedProduct) -> ProvisionedProductDetail<'a> {
    ProvisionedProductDetail {
        provisioned_product_id: &pp.provisioned_product_id,
        provisioned_product_name: &pp.provisioned_product_name,
        provisioned_product_arn: ctx.arn("provisionedproduct", &pp.provisioned_product_id),
        provisioned_product_type: "RosStack",
        owner_principal_id: &pp.owner_principal_id,
        owner_principal_type: &pp.owner_principal_type,
        product_id: &pp.product_id,
        product_name: &pp.product_name,
        product_version_id: &pp.product_version_id,
        product_version_name: &pp.product_version_name,
        portfolio_id: &pp.portfolio_id,
        stack_id: &pp.stack_id,
        stack_region_id: &pp.stack_region_id,
        status: pp.status,
        status_message: (pp.status == ProvisionedProductStatus::Error).then_some(pp.status_message.as_str()),
        create_time: format_time(pp.created_at),
        last_task_id: &pp.last_task_id,
        last_provisioning_task_id: &pp.last_provisioning_task_id,
        last_successful_provisioning_task_id: &pp.last_successful_provisioning_task_id,
        drift_status: pp.drift_status,
        drift_checked_time: pp.drift_checked_at.map(format_time),
        expiry_time: pp.expires_at.map(format_time),
        update_policy: pp.update_policy,
        product_version_deprecated: pp.product_version_guidance == DEPRECATED,
        dependency_stale: pp.stale_dependencies > 0,
    }
}

pub(super) async fn get(ctx: &Ctx<'_>, req: ProvisionedProductIdRequest) -> Result<Answer, ApiError> {
    let pp = ctx.state.provisioner().visible(ctx.principal, &req.provisioned_product_id).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct GetAnswer<'a> {
        provisioned_product_detail: ProvisionedProductDetail<'a>,
    }
    Answer::serialize(&GetAnswer { provisioned_product_detail: pp_detail(ctx, &pp) })
}

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Answer, ApiError> {
    let account = req.access_level_filter.as_deref() == Some("Account");
    let drift_status = filter_value(&req.filters, "DriftStatus")
        .map(|value| value.parse::<DriftStatus>())
        .transpose()
        .map_err(|e| ApiError::invalid_parameter("Filters", e))?;
    let deprecated = match filter_value(&req.filters, "Deprecated").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid_parameter("Filters", format!("The Filter Deprecated is true or false, not {other:?}.")))
        }
    };
    let filters = ProvisionedProductQuery {
        name: filter_value(&req.filters, "ProvisionedProductName"),
        full_text: filter_value(&req.filters, "FullTextSearch"),
        drift_status,
        deprecated,
        ..ProvisionedProductQuery::default()
    };
    let (pps, total) = ctx.state.provisioner().list(ctx.principal, account, filters, req.paging.order(), req.paging.page()).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ListAnswer<'a> {
        #[serde(flatten)]
        page: Paged,
        provisioned_product_details: Vec<ProvisionedProductDetail<'a>>,
    }
    let provisioned_product_details = pps.iter().map(|pp| pp_detail(ctx, pp)).collect();
    Answer::serialize(&ListAnswer { page: req.paging.answer(total), provisioned_product_details })
}

/// `InvalidTask.NotFound`: the task does not exist, or the caller may not read it.
pub fn task_not_found() -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "InvalidTask.NotFound", "The specified task does not exist.")
}

/// The `TaskDetail` object.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TaskDetail<'a> {
    task_id: &'a TaskId,
    task_type: OperationType,
    status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    provisioned_product_id: &'a ProvisionedProductId,
    provisioned_product_name: &'a str,
    product_id: &'a str,
    product_name: &'a str,
    product_version_id: &'a str,
    product_version_name: &'a str,
    portfolio_id: &'a str,
    parameters: Vec<Parameter>,
    outputs: Vec<Output>,
    task_tags: Vec<Tag>,
    create_time: String,
    update_time: String,
    log: TaskLog<'a>,
    /// Extension: the parameters whose values were resolved from references, as given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    parameter_references: Vec<Parameter>,
}

/// `Log.TerraformLogs`: one entry per command and stream.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TaskLog<'a> {
    terraform_logs: Vec<TerraformLog<'a>>,
}

/// The `TaskDetail` of `task`; `terraform_logs` fills `Log.TerraformLogs`.
fn task_detail<'a>(ctx: &Ctx<'_>, task: &'a Task, terraform_logs: Vec<TerraformLog<'a>>) -> TaskDetail<'a> {
    TaskDetail {
        task_id: &task.task_id,
        task_type: task.task_type,
        status: task.status,
        status_message: (task.status == TaskStatus::Failed).then_some(task.status_message.as_str()),
        provisioned_product_id: &task.provisioned_product_id,
        provisioned_product_name: &task.provisioned_product_name,
        product_id: &task.product_id,
        product_name: &task.product_name,
        product_version_id: &task.product_version_id,
        product_version_name: &task.product_version_name,
        portfolio_id: &task.portfolio_id,
        parameters: ctx.state.provisioner().masked(&task.parameters_sealed, &task.sensitive_parameters),
        outputs: stored(&task.outputs),
        task_tags: stored(&task.task_tags),
        create_time: format_time(task.created_at),
        update_time: format_time(task.updated_at),
        log: TaskLog { terraform_logs },
        parameter_references: references_from_json(&task.parameter_references)
            .into_iter()
            .map(|r| Parameter { parameter_key: r.parameter_key, parameter_value: r.parameter_value })
            .collect(),
    }
}

pub(super) async fn get_task(ctx: &Ctx<'_>, req: TaskIdRequest) -> Result<Answer, ApiError> {
    let record = ctx.state.provisioner().task(ctx.principal, &req.task_id).await?.ok_or_else(task_not_found)?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct GetTaskAnswer<'a> {
        task_detail: TaskDetail<'a>,
    }
    Answer::serialize(&GetTaskAnswer { task_detail: task_detail(ctx, &record.task, terraform_logs(&record.log)) })
}

pub(super) async fn list_tasks(ctx: &Ctx<'_>, req: ListTasksRequest) -> Result<Answer, ApiError> {
    let provisioner = ctx.state.provisioner();
    let (tasks, total) = provisioner.tasks(ctx.principal, &req.provisioned_product_id, req.paging.order(), req.paging.page()).await?;
    let records = provisioner.with_logs(tasks).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ListAnswer<'a> {
        #[serde(flatten)]
        page: Paged,
        task_details: Vec<TaskDetail<'a>>,
    }
    Answer::serialize(&ListAnswer {
        page: req.paging.answer(total),
        task_details: records
            .iter()
            .zip(listed_logs(&records, LISTED_LOG_BYTES))
            .map(|(record, logs)| task_detail(ctx, &record.task, logs))
            .collect(),
    })
}

/// Extension: the chunks of a task's log after `AfterSeq`, waiting up to `WaitSeconds` (≤ 20)
/// for new output while the task runs. `Finished` says the log is complete.
pub(super) async fn get_task_log(ctx: &Ctx<'_>, req: TaskLogRequest) -> Result<Answer, ApiError> {
    let provisioner = ctx.state.provisioner();
    let after = req.after_seq.unwrap_or(0);
    let page = provisioner.task_log(ctx.principal, &req.task_id, after, req.wait_seconds.unwrap_or(0)).await?;
    Answer::serialize(&page.ok_or_else(task_not_found)?)
}
