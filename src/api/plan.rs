//! Provisioned product plans on the wire: create, update, read, list, cancel, delete, approve or
//! reject, execute, and list approvers. The rules (who sees and changes a plan, its status
//! machine, its approval) live in [`crate::provisioning::plan`]; here requests are decoded and
//! answers named.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::provisioning::Ids;
use super::{filter_value, format_time, Answer, Ctx, Filter, Paged, Paging};
use crate::model::{OperationType, PlanId, PlanStatus, ProvisionedProductId, TaskId};
use crate::provisioning::plan::{Approver, NewPlan, PlanFilter, PlanScope, Replan};
use crate::provisioning::{stored, Output, Parameter, Tag};
use crate::store::plan::Plan;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PlanIdRequest {
    plan_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ApproveRequest {
    plan_id: String,
    approval_action: String,
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRequest {
    #[serde(flatten)]
    paging: Paging,
    access_level_filter: Option<String>,
    approval_filter: Option<String>,
    provisioned_product_id: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ApproversRequest {
    access_level_filter: Option<String>,
    approval_filter: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
}

pub(super) async fn create(ctx: &Ctx<'_>, req: NewPlan) -> Result<Value, ApiError> {
    let plan = ctx.state.provisioner().create_plan(ctx.principal, req).await?;
    Ids { plan_id: Some(plan.plan_id), provisioned_product_id: Some(plan.provisioned_product_id), task_id: None }.answer()
}

pub(super) async fn update(ctx: &Ctx<'_>, req: Replan) -> Result<Value, ApiError> {
    let plan = ctx.state.provisioner().update_plan(ctx.principal, req).await?;
    Ids { plan_id: Some(plan.plan_id), provisioned_product_id: Some(plan.provisioned_product_id), task_id: None }.answer()
}

pub(super) async fn delete(ctx: &Ctx<'_>, req: PlanIdRequest) -> Result<Value, ApiError> {
    ctx.state.provisioner().delete_plan(ctx.principal, &req.plan_id).await?;
    Ids::default().answer()
}

pub(super) async fn cancel(ctx: &Ctx<'_>, req: PlanIdRequest) -> Result<Value, ApiError> {
    ctx.state.provisioner().cancel_plan(ctx.principal, &req.plan_id).await?;
    Ids::default().answer()
}

pub(super) async fn approve(ctx: &Ctx<'_>, req: ApproveRequest) -> Result<Value, ApiError> {
    let decision = req.approval_action.parse()?;
    ctx.state.provisioner().decide_plan(ctx.principal, &req.plan_id, decision, req.comment.unwrap_or_default()).await?;
    Ids::default().answer()
}

pub(super) async fn execute(ctx: &Ctx<'_>, req: PlanIdRequest) -> Result<Value, ApiError> {
    let queued = ctx.state.provisioner().execute(ctx.principal, &req.plan_id).await?;
    Ids { plan_id: Some(PlanId::from(req.plan_id)), task_id: Some(queued.task_id), provisioned_product_id: None }.answer()
}

/// The `PlanDetail` object (also the items of `PlanDetails`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PlanDetail<'a> {
    plan_id: &'a PlanId,
    plan_name: &'a str,
    plan_type: &'static str,
    description: &'a str,
    operation_type: OperationType,
    owner_principal_id: &'a str,
    owner_principal_type: &'a str,
    owner_principal_name: &'a str,
    uid: &'a str,
    portfolio_id: &'a str,
    product_id: &'a str,
    product_name: &'a str,
    product_version_id: &'a str,
    provisioned_product_id: &'a ProvisionedProductId,
    provisioned_product_name: &'a str,
    stack_id: &'a str,
    stack_region_id: &'a str,
    parameters: Vec<Parameter>,
    tags: Vec<Tag>,
    status: PlanStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    assigned_approvers: &'a [Approver],
    create_time: String,
    update_time: String,
    outputs: Vec<Output>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<&'a TaskId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_detail: Option<ApprovalDetail>,
}

/// `ApprovalDetail`: who did what, and who is expected to.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApprovalDetail {
    operation_records: Vec<Value>,
    todo_task_activities: Vec<Value>,
}

fn plan_detail<'a>(ctx: &'a Ctx<'_>, plan: &'a Plan, approvers: &'a [Approver]) -> PlanDetail<'a> {
    PlanDetail {
        plan_id: &plan.plan_id,
        plan_name: &plan.plan_name,
        plan_type: "Ros",
        description: &plan.description,
        operation_type: plan.operation_type,
        owner_principal_id: &plan.owner_principal_id,
        owner_principal_type: &plan.owner_principal_type,
        owner_principal_name: &plan.owner_principal_name,
        uid: &ctx.state.config.account_id,
        portfolio_id: &plan.portfolio_id,
        product_id: &plan.product_id,
        product_name: &plan.product_name,
        product_version_id: &plan.product_version_id,
        provisioned_product_id: &plan.provisioned_product_id,
        provisioned_product_name: &plan.provisioned_product_name,
        stack_id: &plan.stack_id,
        stack_region_id: &plan.stack_region_id,
        parameters: ctx.state.provisioner().masked(&plan.parameters_sealed, &plan.sensitive_parameters),
        tags: stored(&plan.tags),
        status: plan.status,
        status_message: matches!(plan.status, PlanStatus::PreviewFailed | PlanStatus::ExecuteFailed)
            .then_some(plan.status_message.as_str()),
        assigned_approvers: approvers,
        create_time: format_time(plan.created_at),
        update_time: format_time(plan.updated_at),
        outputs: stored(&plan.planned_outputs),
        task_id: plan.execute_task_id.as_ref(),
        approval_detail: None,
    }
}

pub(super) async fn get(ctx: &Ctx<'_>, req: PlanIdRequest) -> Result<Answer, ApiError> {
    let view = ctx.state.provisioner().plan(ctx.principal, &req.plan_id).await?;
    let (plan, approvers) = (&view.plan, &view.approvers);
    let records = view
        .records
        .iter()
        .map(|r| {
            serde_json::json!({
                "ApprovalAction": r.approval_action,
                "Comment": r.comment,
                "CreateTime": format_time(r.created_at),
                "Operator": {"PrincipalId": r.operator_principal_id, "PrincipalName": r.operator_principal_name,
                             "PrincipalType": r.operator_principal_type},
            })
        })
        .collect();
    let todo = match plan.status {
        PlanStatus::ApplicationInProgress => {
            let tasks: Vec<Value> = approvers.iter().map(|a| serde_json::json!({"Operator": a})).collect();
            vec![serde_json::json!({"ActivityName": "Approval", "Tasks": tasks})]
        }
        _ => Vec::new(),
    };
    let mut detail = plan_detail(ctx, plan, approvers);
    detail.approval_detail = Some(ApprovalDetail { operation_records: records, todo_task_activities: todo });
    let product = ctx.store().product(&plan.product_id).await?;
    let version = ctx.store().product_version(&plan.product_version_id).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct GetAnswer<'a> {
        plan_detail: PlanDetail<'a>,
        product_detail: Option<crate::catalog::product::ProductDetail>,
        product_version_detail: Option<crate::catalog::version::VersionDetail>,
        resource_changes: Value,
    }
    Answer::serialize(&GetAnswer {
        plan_detail: detail,
        product_detail: product.as_ref().map(|p| ctx.catalog().product_detail(p)),
        product_version_detail: version.as_ref().map(Into::into),
        resource_changes: serde_json::from_str(&plan.resource_changes).unwrap_or(Value::Array(vec![])),
    })
}

/// Values of every filter named `key` (one value may list several, comma-separated).
fn filter_values(filters: &[Filter], key: &str) -> Vec<String> {
    filters
        .iter()
        .filter(|f| f.key.as_deref() == Some(key))
        .filter_map(|f| f.value.as_deref())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        .collect()
}

fn unsupported_approval_filter(other: &str) -> ApiError {
    ApiError::invalid_parameter("ApprovalFilter", format!("The ApprovalFilter {other:?} is not supported."))
}

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Answer, ApiError> {
    let mut statuses = Vec::new();
    for status in filter_values(&req.filters, "ProvisionedProductPlanStatus") {
        statuses.push(
            status.parse().map_err(|e: String| {
                ApiError::invalid_parameter("Filters", format!("The filter ProvisionedProductPlanStatus has an {e}."))
            })?,
        );
    }
    // ApprovalFilter, when given, decides; AccessLevelFilter (User by default) otherwise.
    let scope = match (req.approval_filter.as_deref(), req.access_level_filter.as_deref().unwrap_or("User")) {
        (Some("ReceivedRequests"), _) => PlanScope::ReceivedRequests,
        (Some("ApprovalHistory"), _) => PlanScope::ApprovalHistory,
        (Some("AccountRequests"), _) => PlanScope::AccountRequests,
        (Some(other), _) => return Err(unsupported_approval_filter(other)),
        (None, "User") => PlanScope::Own,
        (None, "Account") => PlanScope::Account,
        (None, other) => {
            return Err(ApiError::invalid_parameter(
                "AccessLevelFilter",
                format!("The AccessLevelFilter {other:?} is not supported here (no resource directory); use User or Account."),
            ))
        }
    };
    let filter = PlanFilter {
        scope,
        provisioned_product_id: req.provisioned_product_id.clone(),
        name: filter_value(&req.filters, "ProvisionedProductPlanName"),
        full_text: filter_value(&req.filters, "FullTextSearch"),
        statuses,
        owner_uids: filter_values(&req.filters, "ProvisionedProductPlanOwnerUid"),
        approvers: filter_values(&req.filters, "ProvisionedProductPlanApprover"),
        approver_names: filter_values(&req.filters, "ProvisionedProductPlanApproverName"),
    };
    let (plans, total) = ctx.state.provisioner().plans(ctx.principal, filter, req.paging.order(), req.paging.page()).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ListAnswer<'a> {
        #[serde(flatten)]
        page: Paged,
        plan_details: Vec<PlanDetail<'a>>,
    }
    let plan_details = plans.iter().map(|(plan, approvers)| plan_detail(ctx, plan, approvers)).collect();
    Answer::serialize(&ListAnswer { page: req.paging.answer(total), plan_details })
}

pub(super) async fn list_approvers(ctx: &Ctx<'_>, req: ApproversRequest) -> Result<Answer, ApiError> {
    let account = match (req.approval_filter.as_deref(), req.access_level_filter.as_deref().unwrap_or("User")) {
        (Some("AccountRequests"), _) | (None, "Account") => true,
        (Some(other), _) => return Err(unsupported_approval_filter(other)),
        (None, "User") => false,
        (None, other) => {
            return Err(ApiError::invalid_parameter(
                "AccessLevelFilter",
                format!("The AccessLevelFilter {other:?} is not supported; use User or Account."),
            ))
        }
    };
    let names = filter_values(&req.filters, "ProvisionedProductPlanApproverName");
    let approvers = ctx.state.provisioner().plan_approvers(ctx.principal, account, &names).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ApproversAnswer {
        approvers: Vec<Approver>,
    }
    Answer::serialize(&ApproversAnswer { approvers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_parse() {
        let f = |k: &str, v: &str| Filter { key: Some(k.into()), value: Some(v.into()) };
        let filters = [
            f("ProvisionedProductPlanStatus", "Canceled, PreviewSuccess"),
            f("Other", "x"),
            f("ProvisionedProductPlanStatus", "ExecuteSuccess"),
        ];
        assert_eq!(filter_values(&filters, "ProvisionedProductPlanStatus"), ["Canceled", "PreviewSuccess", "ExecuteSuccess"]);
    }
}
