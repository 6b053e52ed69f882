//! Provisioned products and tasks: launch, update, terminate, their reads and lists, and the
//! task-log extension (`GetTaskLog`, documented in the README) that the CLI and console follow.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::{filter_value, format_time, Answer, Ctx, Filter, Paging};
use crate::model::{ProvisionedProductStatus, TaskStatus};
use crate::provisioning::parameters_from_json;
use crate::provisioning::queue::{Launch, Update};
use crate::store::provisioning::{ProvisionedProduct, ProvisionedProductQuery, Task};

/// Masked value of sensitive parameters and outputs.
pub const MASK: &str = "******";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct KeyValue {
    parameter_key: Option<String>,
    parameter_value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Tag {
    key: Option<String>,
    value: Option<String>,
}

pub(super) fn pairs(parameters: Vec<KeyValue>) -> Vec<(String, String)> {
    parameters.into_iter().filter_map(|p| Some((p.parameter_key?, p.parameter_value.unwrap_or_default()))).collect()
}

pub(super) fn tag_pairs(tags: Vec<Tag>) -> Vec<(String, String)> {
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
    tags: Vec<Tag>,
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
    tags: Vec<Tag>,
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

pub(super) fn region_ids(ctx: &Ctx<'_>) -> Vec<String> {
    ctx.state.config.regions.iter().map(|r| r.region_id.clone()).collect()
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
    Ok(json!({ "ProvisionedProductId": queued.provisioned_product_id, "TaskId": queued.task_id }))
}

/// The live provisioned product `id`, if the caller may see it.
pub(super) async fn visible_pp(ctx: &Ctx<'_>, id: &str) -> Result<ProvisionedProduct, ApiError> {
    Ok(ctx.state.provisioner().visible(ctx.principal, id).await?)
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
    Ok(json!({ "ProvisionedProductId": queued.provisioned_product_id, "TaskId": queued.task_id }))
}

pub(super) async fn terminate(ctx: &Ctx<'_>, req: ProvisionedProductIdRequest) -> Result<Value, ApiError> {
    let queued = ctx.state.provisioner().terminate(ctx.principal, &req.provisioned_product_id).await?;
    Ok(json!({ "TaskId": queued.task_id }))
}

/// The `ProvisionedProductDetail` object.
fn pp_detail(ctx: &Ctx<'_>, pp: &ProvisionedProduct) -> Value {
    let mut d = json!({
        "ProvisionedProductId": pp.provisioned_product_id,
        "ProvisionedProductName": pp.provisioned_product_name,
        "ProvisionedProductArn": ctx.arn("provisionedproduct", &pp.provisioned_product_id),
        "ProvisionedProductType": "RosStack",
        "OwnerPrincipalId": pp.owner_principal_id,
        "OwnerPrincipalType": pp.owner_principal_type,
        "ProductId": pp.product_id,
        "ProductName": pp.product_name,
        "ProductVersionId": pp.product_version_id,
        "ProductVersionName": pp.product_version_name,
        "PortfolioId": pp.portfolio_id,
        "StackId": pp.stack_id,
        "StackRegionId": pp.stack_region_id,
        "Status": pp.status,
        "CreateTime": format_time(pp.created_at),
        "LastTaskId": pp.last_task_id,
        "LastProvisioningTaskId": pp.last_provisioning_task_id,
        "LastSuccessfulProvisioningTaskId": pp.last_successful_provisioning_task_id,
    });
    if pp.status == ProvisionedProductStatus::Error {
        d["StatusMessage"] = Value::String(pp.status_message.clone());
    }
    d
}

pub(super) async fn get(ctx: &Ctx<'_>, req: ProvisionedProductIdRequest) -> Result<Value, ApiError> {
    let pp = visible_pp(ctx, &req.provisioned_product_id).await?;
    Ok(json!({ "ProvisionedProductDetail": pp_detail(ctx, &pp) }))
}

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Value, ApiError> {
    let account = req.access_level_filter.as_deref() == Some("Account");
    if account && !ctx.principal.is_admin {
        return Err(ApiError::forbidden(
            "AdministratorOnly",
            "AccessLevelFilter=Account lists every user's provisioned products and is allowed to administrators only.",
            json!({"AuthAction": "servicecatalog:ListProvisionedProducts", "AuthPrincipalDisplayName": ctx.principal.name, "NoPermissionType": "ImplicitDeny"}),
        ));
    }
    let query = ProvisionedProductQuery {
        owner_principal_id: (!account).then(|| ctx.principal.principal_id.clone()),
        name: filter_value(&req.filters, "ProvisionedProductName"),
        full_text: filter_value(&req.filters, "FullTextSearch"),
    };
    let (pps, total) = ctx.store().list_provisioned_products(&query, req.paging.order(), req.paging.page()).await?;
    let mut out = req.paging.response(total);
    out.insert("ProvisionedProductDetails".into(), pps.iter().map(|pp| pp_detail(ctx, pp)).collect());
    Ok(Value::Object(out))
}

/// The task `id`, if the caller owns its provisioned product (or is an administrator).
/// A task the caller may see: an administrator sees every task, an end user those of the
/// provisioned products it owns; any other is as missing as one that does not exist.
async fn visible_task(ctx: &Ctx<'_>, id: &str) -> Result<Task, ApiError> {
    let task = ctx.store().task(id).await?.ok_or_else(task_not_found)?;
    if !ctx.principal.is_admin {
        let owner = ctx.store().task_owner(&task.provisioned_product_id).await?;
        may_see_task(ctx, owner.as_deref())?;
    }
    Ok(task)
}

fn may_see_task(ctx: &Ctx<'_>, owner: Option<&str>) -> Result<(), ApiError> {
    if ctx.principal.is_admin || owner == Some(ctx.principal.principal_id.as_str()) {
        Ok(())
    } else {
        Err(task_not_found())
    }
}

fn task_not_found() -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "InvalidTask.NotFound", "The specified task does not exist.")
}

/// `[{ParameterKey, ParameterValue}]` from sealed parameters, the values of the parameters named
/// in `sensitive_json` (a JSON array of names) masked.
/// A `ParameterKey`/`ParameterValue` pair of an answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ParameterView {
    parameter_key: String,
    parameter_value: String,
}

/// The parameters sealed in a task or plan, with the template's sensitive ones masked.
pub(super) fn masked_parameters(ctx: &Ctx<'_>, parameters_sealed: &str, sensitive_json: &str) -> Vec<ParameterView> {
    let sensitive: Vec<String> = serde_json::from_str(sensitive_json).unwrap_or_default();
    ctx.state
        .secrets
        .open(parameters_sealed)
        .map(|p| parameters_from_json(&p))
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let parameter_value = if sensitive.contains(&k) { MASK.to_string() } else { v };
            ParameterView { parameter_key: k, parameter_value }
        })
        .collect()
}

/// JSON text stored by the engine (outputs, tags), or `[]` if it is not JSON.
fn stored_json(text: &str) -> &RawValue {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::from_str("[]").expect("[] is JSON"))
}

/// The `TaskDetail` object, serialized as it is (GetTask answers it without building a `Value`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TaskDetail<'a> {
    task_id: &'a str,
    task_type: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    provisioned_product_id: &'a str,
    provisioned_product_name: &'a str,
    product_id: &'a str,
    product_name: &'a str,
    product_version_id: &'a str,
    product_version_name: &'a str,
    portfolio_id: &'a str,
    parameters: Vec<ParameterView>,
    outputs: &'a RawValue,
    task_tags: &'a RawValue,
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

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TerraformLog<'a> {
    command: &'a str,
    stream: &'a str,
    content: Cow<'a, str>,
}

/// The `TaskDetail` of `task`; `logs` fills `Log.TerraformLogs`.
fn task_detail<'a>(ctx: &Ctx<'_>, task: &'a Task, logs: Option<Vec<TerraformLog<'a>>>) -> TaskDetail<'a> {
    TaskDetail {
        task_id: &task.task_id,
        task_type: task.task_type.as_str(),
        status: task.status.as_str(),
        status_message: (task.status == TaskStatus::Failed).then_some(task.status_message.as_str()),
        provisioned_product_id: &task.provisioned_product_id,
        provisioned_product_name: &task.provisioned_product_name,
        product_id: &task.product_id,
        product_name: &task.product_name,
        product_version_id: &task.product_version_id,
        product_version_name: &task.product_version_name,
        portfolio_id: &task.portfolio_id,
        parameters: masked_parameters(ctx, &task.parameters_sealed, &task.sensitive_parameters),
        outputs: stored_json(&task.outputs),
        task_tags: stored_json(&task.task_tags),
        create_time: format_time(task.created_at),
        update_time: format_time(task.updated_at),
        log: logs.map(|terraform_logs| TaskLog { terraform_logs }),
    }
}

/// Log chunks grouped per (command, stream) in order of first appearance.
fn terraform_logs(chunks: &[crate::store::provisioning::LogChunk]) -> Vec<TerraformLog<'_>> {
    let mut groups: Vec<TerraformLog> = Vec::new();
    for c in chunks {
        match groups.iter_mut().find(|g| g.command == c.command && g.stream == c.stream) {
            Some(g) => g.content.to_mut().push_str(&c.content),
            None => groups.push(TerraformLog { command: &c.command, stream: &c.stream, content: Cow::Borrowed(&c.content) }),
        }
    }
    groups
}

pub(super) async fn get_task(ctx: &Ctx<'_>, req: TaskIdRequest) -> Result<Answer, ApiError> {
    let record = ctx.store().task_with_logs(&req.task_id).await?.ok_or_else(task_not_found)?;
    may_see_task(ctx, record.owner.as_deref())?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct GetTaskAnswer<'a> {
        task_detail: TaskDetail<'a>,
    }
    Answer::serialize(&GetTaskAnswer { task_detail: task_detail(ctx, &record.task, Some(terraform_logs(&record.log))) })
}

pub(super) async fn list_tasks(ctx: &Ctx<'_>, req: ListTasksRequest) -> Result<Value, ApiError> {
    if !ctx.principal.is_admin {
        let owner = ctx.store().task_owner(&req.provisioned_product_id).await?;
        if owner.as_deref() != Some(ctx.principal.principal_id.as_str()) {
            return Err(ApiError::not_found("ProvisionedProduct", &req.provisioned_product_id));
        }
    }
    let (tasks, total) = ctx.store().list_tasks(&req.provisioned_product_id, req.paging.order(), req.paging.page()).await?;
    let mut out: Map<String, Value> = req.paging.response(total);
    out.insert(
        "TaskDetails".into(),
        serde_json::to_value(tasks.iter().map(|t| task_detail(ctx, t, None)).collect::<Vec<_>>()).map_err(ApiError::internal)?,
    );
    Ok(Value::Object(out))
}

/// Extension: the chunks of a task's log after `AfterSeq`, waiting up to `WaitSeconds` (≤ 20)
/// for new output while the task runs. `Finished` says the log is complete.
pub(super) async fn get_task_log(ctx: &Ctx<'_>, req: TaskLogRequest) -> Result<Value, ApiError> {
    let task = visible_task(ctx, &req.task_id).await?;
    let after = req.after_seq.unwrap_or(0).max(0);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(req.wait_seconds.unwrap_or(0).clamp(0, 20) as u64);
    let mut finished = task.status != TaskStatus::InProgress;
    loop {
        let chunks = ctx.store().task_logs(&task.task_id, after, 1000).await?;
        if !chunks.is_empty() || finished || tokio::time::Instant::now() >= deadline {
            let next = chunks.last().map_or(after, |c| c.seq);
            let status =
                if finished { ctx.store().task(&task.task_id).await?.map_or(task.status, |t| t.status) } else { TaskStatus::InProgress };
            return Ok(json!({
                "TaskId": task.task_id,
                "Status": status,
                "Finished": finished && chunks.len() < 1000,
                "NextSeq": next,
                "Chunks": chunks.iter().map(|c| json!({"Seq": c.seq, "Command": c.command, "Stream": c.stream, "Content": c.content})).collect::<Vec<_>>(),
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        finished = ctx.store().task(&task.task_id).await?.is_some_and(|t| t.status != TaskStatus::InProgress);
    }
}
