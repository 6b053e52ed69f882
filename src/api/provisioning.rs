//! Provisioned products and tasks on the wire: launch, update, terminate, their reads and lists,
//! and the task-log extension (`GetTaskLog`, documented in the README) that the CLI and console
//! follow. The rules live in [`crate::provisioning`]; here requests are decoded and answers named.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::{filter_value, format_time, Answer, Ctx, Filter, Paging};
use crate::model::{OperationType, ProvisionedProductId, ProvisionedProductStatus, TaskId, TaskStatus};
use crate::provisioning::queue::{Launch, Update};
use crate::provisioning::task::{terraform_logs, TerraformLog};
use crate::provisioning::{stored, Output, Parameter, Tag};
use crate::store::provisioning::{ProvisionedProduct, Task};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeyValue {
    parameter_key: Option<String>,
    parameter_value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TagRequest {
    key: Option<String>,
    value: Option<String>,
}

pub(super) fn pairs(parameters: Vec<KeyValue>) -> Vec<(String, String)> {
    parameters.into_iter().filter_map(|p| Some((p.parameter_key?, p.parameter_value.unwrap_or_default()))).collect()
}

pub(super) fn tag_pairs(tags: Vec<TagRequest>) -> Vec<(String, String)> {
    tags.into_iter().map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct LaunchRequest {
    product_id: String,
    product_version_id: String,
    provisioned_product_name: String,
    stack_region_id: String,
    portfolio_id: Option<String>,
    #[serde(default)]
    parameters: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<TagRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateRequest {
    provisioned_product_id: String,
    product_id: String,
    product_version_id: String,
    portfolio_id: Option<String>,
    #[serde(default)]
    parameters: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<TagRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ProvisionedProductIdRequest {
    provisioned_product_id: String,
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

/// A list answer: the paging fields and the page's items under `key`.
pub(super) fn page_of(paging: &Paging, total: i64, key: &str, items: impl Serialize) -> Result<Value, ApiError> {
    let mut out = paging.response(total);
    out.insert(key.into(), serde_json::to_value(items).map_err(ApiError::internal)?);
    Ok(Value::Object(out))
}

pub(super) async fn launch(ctx: &Ctx<'_>, req: LaunchRequest) -> Result<Value, ApiError> {
    let launch = Launch {
        product_id: req.product_id,
        version_id: req.product_version_id,
        name: req.provisioned_product_name,
        region: req.stack_region_id,
        portfolio_id: req.portfolio_id,
        parameters: pairs(req.parameters),
        tags: tag_pairs(req.tags),
    };
    let queued = ctx.state.provisioner().launch(ctx.principal, launch).await?;
    Ids { provisioned_product_id: Some(queued.provisioned_product_id), task_id: Some(queued.task_id), ..Ids::default() }.answer()
}

pub(super) async fn update(ctx: &Ctx<'_>, req: UpdateRequest) -> Result<Value, ApiError> {
    let update = Update {
        provisioned_product_id: req.provisioned_product_id,
        product_id: req.product_id,
        version_id: req.product_version_id,
        portfolio_id: req.portfolio_id,
        parameters: pairs(req.parameters),
        tags: tag_pairs(req.tags),
    };
    let queued = ctx.state.provisioner().update(ctx.principal, update).await?;
    Ids { provisioned_product_id: Some(queued.provisioned_product_id), task_id: Some(queued.task_id), ..Ids::default() }.answer()
}

pub(super) async fn terminate(ctx: &Ctx<'_>, req: ProvisionedProductIdRequest) -> Result<Value, ApiError> {
    let queued = ctx.state.provisioner().terminate(ctx.principal, &req.provisioned_product_id).await?;
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

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Value, ApiError> {
    let account = req.access_level_filter.as_deref() == Some("Account");
    let name = filter_value(&req.filters, "ProvisionedProductName");
    let full_text = filter_value(&req.filters, "FullTextSearch");
    let (pps, total) = ctx.state.provisioner().list(ctx.principal, account, name, full_text, req.paging.order(), req.paging.page()).await?;
    page_of(&req.paging, total, "ProvisionedProductDetails", pps.iter().map(|pp| pp_detail(ctx, pp)).collect::<Vec<_>>())
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
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<TaskLog<'a>>,
}

/// `Log.TerraformLogs`: one entry per command and stream.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TaskLog<'a> {
    terraform_logs: Vec<TerraformLog<'a>>,
}

/// The `TaskDetail` of `task`; `logs` fills `Log.TerraformLogs`.
fn task_detail<'a>(ctx: &Ctx<'_>, task: &'a Task, logs: Option<Vec<TerraformLog<'a>>>) -> TaskDetail<'a> {
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
        log: logs.map(|terraform_logs| TaskLog { terraform_logs }),
    }
}

pub(super) async fn get_task(ctx: &Ctx<'_>, req: TaskIdRequest) -> Result<Answer, ApiError> {
    let record = ctx.state.provisioner().task(ctx.principal, &req.task_id).await?.ok_or_else(task_not_found)?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct GetTaskAnswer<'a> {
        task_detail: TaskDetail<'a>,
    }
    Answer::serialize(&GetTaskAnswer { task_detail: task_detail(ctx, &record.task, Some(terraform_logs(&record.log))) })
}

pub(super) async fn list_tasks(ctx: &Ctx<'_>, req: ListTasksRequest) -> Result<Value, ApiError> {
    let (tasks, total) =
        ctx.state.provisioner().tasks(ctx.principal, &req.provisioned_product_id, req.paging.order(), req.paging.page()).await?;
    page_of(&req.paging, total, "TaskDetails", tasks.iter().map(|t| task_detail(ctx, t, None)).collect::<Vec<_>>())
}

/// Extension: the chunks of a task's log after `AfterSeq`, waiting up to `WaitSeconds` (≤ 20)
/// for new output while the task runs. `Finished` says the log is complete.
pub(super) async fn get_task_log(ctx: &Ctx<'_>, req: TaskLogRequest) -> Result<Answer, ApiError> {
    let provisioner = ctx.state.provisioner();
    let after = req.after_seq.unwrap_or(0);
    let page = provisioner.task_log(ctx.principal, &req.task_id, after, req.wait_seconds.unwrap_or(0)).await?;
    Answer::serialize(&page.ok_or_else(task_not_found)?)
}
