//! Provisioned product plans: create and update (each queues a preview that the engine runs),
//! read, list, cancel, delete, approve or reject, and execute. A plan is validated like the
//! direct operation it previews (launch options, constraints, parameters, tags), except that an
//! `Approval` constraint covering the operation does not refuse it: it makes its execution wait
//! for an approver's `Approve` (see [`crate::provisioning::plan`] for the status machine).
//!
//! Who sees a plan: its owner, administrators, and its approvers while it needs an approval.
//! Only the owner (or an administrator) changes, cancels, deletes or executes it; only an
//! approver named by the Approval constraint approves or rejects it. Update and terminate plans
//! find their provisioned product by `ProvisionedProductName` among the caller's (the request
//! has no `ProvisionedProductId`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::provisioning::{masked_parameters, pairs, region_ids, tag_pairs, KeyValue, Tag};
use super::{format_time, Ctx, Filter, Paging};
use crate::catalog::constraint::ApprovalConfig;
use crate::model::{OperationType, PlanId, ProvisionedProductId};
use crate::provisioning::plan::{allows, PlanOperation};
use crate::provisioning::queue::{tags_from_json, tags_json};
use crate::provisioning::{self, parameters_from_json, ChangeRequest, ProductChange};
use crate::store::plan::{ExecutionRefusal, Plan, PlanQuery, PlanRecord, PlanStatus};
use crate::store::principal::{Principal, RAM_USER};
use crate::store::provisioning::{ProvisionedProduct, ProvisionedProductQuery};
use crate::store::{now_ms, Page, SortOrder};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateRequest {
    plan_name: String,
    description: Option<String>,
    operation_type: String,
    product_id: String,
    product_version_id: String,
    portfolio_id: Option<String>,
    provisioned_product_name: String,
    stack_region_id: String,
    #[serde(default)]
    parameters: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateRequest {
    plan_id: String,
    description: Option<String>,
    product_id: String,
    product_version_id: String,
    portfolio_id: Option<String>,
    parameters: Option<Vec<KeyValue>>,
    tags: Option<Vec<Tag>>,
}

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

/// The caller's live provisioned product named `name` (any user's for administrators).
async fn target_by_name(ctx: &Ctx<'_>, name: &str) -> Result<ProvisionedProduct, ApiError> {
    let query = ProvisionedProductQuery {
        owner_principal_id: (!ctx.principal.is_admin).then(|| ctx.principal.principal_id.clone()),
        name: Some(name.to_string()),
        full_text: None,
    };
    let (found, total) = ctx.store().list_provisioned_products(&query, SortOrder::Desc, Page { number: 1, size: 2 }).await?;
    match found.as_slice() {
        [pp] if total == 1 => Ok(pp.clone()),
        [] => Err(ApiError::not_found("ProvisionedProduct", name)),
        _ => Err(ApiError::invalid_parameter(
            "ProvisionedProductName",
            format!("{total} provisioned products are named {name:?}; rename one so that the plan's target is unambiguous."),
        )),
    }
}

pub(super) async fn create(ctx: &Ctx<'_>, req: CreateRequest) -> Result<Value, ApiError> {
    let operation: OperationType = req.operation_type.parse().map_err(|e| ApiError::invalid_parameter("OperationType", e))?;
    let given = pairs(req.parameters);
    let tags = tag_pairs(req.tags);
    let regions = region_ids(ctx);
    let (pp_id, stack_id, change) = match operation {
        OperationType::LaunchProduct => {
            let request = ChangeRequest {
                principal: ctx.principal,
                operation,
                product_id: &req.product_id,
                version_id: &req.product_version_id,
                portfolio_id: req.portfolio_id.as_deref(),
                region: &req.stack_region_id,
                parameters: given,
                tags,
            };
            (ProvisionedProductId::new(), uuid::Uuid::new_v4().to_string(), provisioning::resolve(ctx.store(), &regions, request).await?)
        }
        _ => {
            let pp = target_by_name(ctx, &req.provisioned_product_name).await?;
            provisioning::check_owner(ctx.principal, &pp)?;
            provisioning::check_product(&pp, &req.product_id)?;
            if req.stack_region_id != pp.stack_region_id {
                return Err(ApiError::invalid_parameter(
                    "StackRegionId",
                    format!(
                        "The provisioned product {} is in {}, not {}.",
                        pp.provisioned_product_id, pp.stack_region_id, req.stack_region_id
                    ),
                ));
            }
            let previous = ctx.state.provisioner().parameters_of(&pp);
            let asked = ProductChange {
                operation,
                version_id: &req.product_version_id,
                portfolio_id: req.portfolio_id,
                previous: &previous,
                given: &given,
                tags,
            };
            let change = provisioning::resolve_on_product(ctx.store(), &regions, ctx.principal, &pp, asked).await?;
            if operation == OperationType::UpdateProvisionedProduct
                && change.version_id == pp.product_version_id
                && provisioning::same_parameters(&change.parameters, &previous)
            {
                return Err(ApiError::invalid_parameter(
                    "Parameters",
                    "The update changes neither the product version nor any parameter; there is nothing to plan.",
                ));
            }
            (pp.provisioned_product_id.clone(), pp.stack_id.clone(), change)
        }
    };
    let now = now_ms();
    let plan = Plan {
        plan_id: PlanId::new(),
        plan_name: req.plan_name,
        description: req.description.unwrap_or_default(),
        operation_type: operation,
        owner_principal_id: ctx.principal.principal_id.clone(),
        owner_principal_type: ctx.principal.principal_type.clone(),
        owner_principal_name: ctx.principal.name.clone(),
        product_id: req.product_id,
        product_version_id: change.version_id.clone(),
        portfolio_id: change.portfolio_id.clone(),
        provisioned_product_id: pp_id,
        provisioned_product_name: req.provisioned_product_name,
        stack_id,
        stack_region_id: req.stack_region_id,
        parameters_sealed: ctx.state.provisioner().seal(&change),
        sensitive_parameters: json!(change.sensitive).to_string(),
        tags: tags_json(&change.tags),
        task_tags: tags_json(&change.task_tags),
        launch_role: change.launch_role,
        approval_config: change.approval.as_ref().map(|a| serde_json::to_string(a).expect("configs serialise")),
        status: PlanStatus::PreviewInProgress,
        status_message: String::new(),
        resource_changes: "[]".into(),
        planned_outputs: "[]".into(),
        plan_file_sealed: None,
        state_version: 0,
        execute_task_id: None,
        created_at: now,
        updated_at: now,
        product_name: String::new(),
    };
    ctx.store().insert_plan(&plan).await?;
    ctx.state.engine.task_queued().await;
    Ok(json!({ "PlanId": plan.plan_id, "ProvisionedProductId": plan.provisioned_product_id }))
}

/// How the caller relates to a plan it may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// The owner or an administrator: may change it.
    Owner,
    /// An approver of a plan that needs approval: may read and decide.
    Approver,
}

/// The plan's Approval constraint Config, if it needs approval.
fn approval_of(plan: &Plan) -> Result<Option<ApprovalConfig>, ApiError> {
    plan.approval_config
        .as_deref()
        .map(|text| serde_json::from_str(text).map_err(|e| ApiError::internal(format!("plan {} approval config: {e}", plan.plan_id))))
        .transpose()
}

/// Whether the caller is one of the approvers of `approval`.
async fn is_approver(ctx: &Ctx<'_>, approval: &ApprovalConfig) -> Result<bool, ApiError> {
    let roles = match ctx.principal.principal_type.as_str() {
        RAM_USER => ctx.store().roles_of(&ctx.principal.principal_id).await?,
        _ => Vec::new(),
    };
    Ok(approval.is_approver(ctx.principal, &roles))
}

/// The plan `id` and how the caller may use it; `404` for plans the caller may not see.
async fn visible_plan(ctx: &Ctx<'_>, id: &str) -> Result<(Plan, Access), ApiError> {
    let not_found = || ApiError::not_found("Plan", id);
    let plan = ctx.store().plan(id).await?.ok_or_else(not_found)?;
    if ctx.principal.is_admin || plan.owner_principal_id == ctx.principal.principal_id {
        return Ok((plan, Access::Owner));
    }
    match approval_of(&plan)? {
        Some(approval) if is_approver(ctx, &approval).await? => Ok((plan, Access::Approver)),
        _ => Err(not_found()),
    }
}

/// The plan `id` if the caller may change it (owner or administrator).
async fn owned_plan(ctx: &Ctx<'_>, id: &str) -> Result<Plan, ApiError> {
    match visible_plan(ctx, id).await? {
        (plan, Access::Owner) => Ok(plan),
        (plan, Access::Approver) => Err(ApiError::forbidden(
            "NotOwner",
            format!("The plan {} belongs to another user; its approvers may only approve or reject it.", plan.plan_id),
            json!({"AuthPrincipalDisplayName": ctx.principal.name, "NoPermissionType": "ImplicitDeny"}),
        )),
    }
}

fn refuse_status(plan: &Plan, operation: &str) -> ApiError {
    let why = match plan.status {
        PlanStatus::Canceled | PlanStatus::ApplicationRejected => " A cancelled or rejected plan is final: create a new plan.",
        PlanStatus::ExecuteSuccess | PlanStatus::ExecuteFailed => " An executed plan is final: create a new plan.",
        PlanStatus::PreviewInProgress => " Wait for its preview to finish.",
        PlanStatus::ExecuteInProgress => " Wait for its execution to finish.",
        PlanStatus::PreviewFailed => " Fix the cause and run a new preview with UpdateProvisionedProductPlan.",
        _ => "",
    };
    ApiError::invalid_status("Plan", format!("The plan {} is {}; it cannot be {operation}.{why}", plan.plan_id, plan.status))
}

fn stale(plan: &Plan) -> ApiError {
    ApiError::invalid_status(
        "Plan",
        format!(
            "The plan {} is stale: the provisioned product {} changed since the plan was previewed. Refresh the plan with \
             UpdateProvisionedProductPlan (it is previewed again{}).",
            plan.plan_id,
            plan.provisioned_product_id,
            if plan.approval_config.is_some() { " and needs a new approval" } else { "" }
        ),
    )
}

pub(super) async fn update(ctx: &Ctx<'_>, req: UpdateRequest) -> Result<Value, ApiError> {
    let plan = owned_plan(ctx, &req.plan_id).await?;
    if !allows(plan.status, PlanOperation::Update, plan.approval_config.is_some()) {
        return Err(refuse_status(&plan, "updated"));
    }
    if req.product_id != plan.product_id {
        return Err(ApiError::invalid_parameter(
            "ProductId",
            format!("The plan {} is a plan of product {}, not {}.", plan.plan_id, plan.product_id, req.product_id),
        ));
    }
    let previous = ctx.state.secrets.open(&plan.parameters_sealed).map(|p| parameters_from_json(&p)).unwrap_or_default();
    let given = req.parameters.map(pairs).unwrap_or_default();
    let tags = req.tags.map(tag_pairs).unwrap_or_else(|| tags_from_json(&plan.tags));
    let portfolio = req.portfolio_id.or(Some(plan.portfolio_id.clone()));
    let regions = region_ids(ctx);
    let change = match plan.operation_type {
        OperationType::LaunchProduct => {
            let version = crate::catalog::version::launchable_version(ctx.store(), &plan.product_id, &req.product_version_id).await?;
            let request = ChangeRequest {
                principal: ctx.principal,
                operation: plan.operation_type,
                product_id: &plan.product_id,
                version_id: &req.product_version_id,
                portfolio_id: portfolio.as_deref(),
                region: &plan.stack_region_id,
                parameters: provisioning::merge_parameters(&previous, &given, &version.parameters),
                tags,
            };
            provisioning::resolve(ctx.store(), &regions, request).await?
        }
        operation => {
            let pp = ctx
                .store()
                .provisioned_product(&plan.provisioned_product_id)
                .await?
                .ok_or_else(|| ApiError::not_found("ProvisionedProduct", &plan.provisioned_product_id))?;
            let asked = ProductChange {
                operation,
                version_id: &req.product_version_id,
                portfolio_id: portfolio,
                previous: &previous,
                given: &given,
                tags,
            };
            provisioning::resolve_on_product(ctx.store(), &regions, ctx.principal, &pp, asked).await?
        }
    };
    let replanned = Plan {
        description: req.description.unwrap_or_else(|| plan.description.clone()),
        product_version_id: change.version_id.clone(),
        portfolio_id: change.portfolio_id.clone(),
        parameters_sealed: ctx.state.provisioner().seal(&change),
        sensitive_parameters: json!(change.sensitive).to_string(),
        tags: tags_json(&change.tags),
        task_tags: tags_json(&change.task_tags),
        launch_role: change.launch_role.clone(),
        approval_config: change.approval.as_ref().map(|a| serde_json::to_string(a).expect("configs serialise")),
        ..plan.clone()
    };
    if !ctx.store().replan(&replanned, plan.status).await? {
        return Err(ApiError::invalid_status("Plan", format!("The plan {} changed meanwhile; read it again.", plan.plan_id)));
    }
    ctx.state.engine.task_queued().await;
    Ok(json!({ "PlanId": plan.plan_id, "ProvisionedProductId": plan.provisioned_product_id }))
}

pub(super) async fn delete(ctx: &Ctx<'_>, req: PlanIdRequest) -> Result<Value, ApiError> {
    let plan = owned_plan(ctx, &req.plan_id).await?;
    if !allows(plan.status, PlanOperation::Delete, plan.approval_config.is_some())
        || !ctx.store().delete_plan(&plan.plan_id, plan.status).await?
    {
        return Err(refuse_status(&plan, "deleted"));
    }
    Ok(json!({}))
}

/// An operation record by the caller.
fn record_by(principal: &Principal, action: &str, comment: String) -> PlanRecord {
    PlanRecord {
        approval_action: action.to_string(),
        operator_principal_id: principal.principal_id.clone(),
        operator_principal_type: principal.principal_type.clone(),
        operator_principal_name: principal.name.clone(),
        comment,
        created_at: now_ms(),
    }
}

pub(super) async fn cancel(ctx: &Ctx<'_>, req: PlanIdRequest) -> Result<Value, ApiError> {
    let plan = owned_plan(ctx, &req.plan_id).await?;
    let record = record_by(ctx.principal, "Cancel", String::new());
    if !allows(plan.status, PlanOperation::Cancel, plan.approval_config.is_some())
        || !ctx.store().transition_plan(&plan.plan_id, plan.status, PlanStatus::Canceled, &record).await?
    {
        return Err(refuse_status(&plan, "cancelled"));
    }
    Ok(json!({}))
}

/// Approve or Reject. Whoever may see the plan (its owner, an administrator) but is not an
/// approver is refused with 403, so that they learn why; anyone else gets the 404 of a plan that
/// does not exist.
pub(super) async fn approve(ctx: &Ctx<'_>, req: ApproveRequest) -> Result<Value, ApiError> {
    let (plan, _) = visible_plan(ctx, &req.plan_id).await?;
    let not_approver = |why: &str| {
        ApiError::forbidden(
            "NotApprover",
            format!("You are not an approver of the plan {}: {why}", plan.plan_id),
            json!({"AuthAction": "servicecatalog:ApproveProvisionedProductPlan", "AuthPrincipalDisplayName": ctx.principal.name,
                   "NoPermissionType": "ImplicitDeny"}),
        )
    };
    let Some(approval) = approval_of(&plan)? else {
        return Err(not_approver("no Approval constraint covers its operation, so it needs no approval."));
    };
    if !is_approver(ctx, &approval).await? {
        return Err(not_approver("only the approvers named by the portfolio's Approval constraint may approve or reject it."));
    }
    let (action, to) = match req.approval_action.as_str() {
        "Approve" => ("Approve", PlanStatus::ApplicationApproved),
        "Reject" => ("Reject", PlanStatus::ApplicationRejected),
        other => {
            return Err(ApiError::invalid_parameter("ApprovalAction", format!("The ApprovalAction {other:?} is not Approve or Reject.")))
        }
    };
    let record = record_by(ctx.principal, action, req.comment.unwrap_or_default());
    if !allows(plan.status, PlanOperation::Decide, true) || !ctx.store().transition_plan(&plan.plan_id, plan.status, to, &record).await? {
        return Err(refuse_status(&plan, if to == PlanStatus::ApplicationApproved { "approved" } else { "rejected" }));
    }
    Ok(json!({}))
}

pub(super) async fn execute(ctx: &Ctx<'_>, req: PlanIdRequest) -> Result<Value, ApiError> {
    let plan = owned_plan(ctx, &req.plan_id).await?;
    let operation = plan.operation_type;
    let needs_approval = plan.approval_config.is_some();
    if needs_approval && plan.status == PlanStatus::ApplicationInProgress {
        return Err(ApiError::forbidden(
            "ApprovalRequired",
            format!("The plan {} is waiting for an approver's approval; it can be executed once approved.", plan.plan_id),
            json!({"AuthAction": "servicecatalog:ExecuteProvisionedProductPlan", "NoPermissionType": "ApprovalRequired"}),
        ));
    }
    if !allows(plan.status, PlanOperation::Execute, needs_approval) {
        return Err(refuse_status(&plan, "executed"));
    }
    // An Approval constraint added after the preview applies too.
    if !needs_approval && provisioning::approval_for(ctx.store(), &plan.portfolio_id, &plan.product_id, operation).await?.is_some() {
        return Err(ApiError::forbidden(
            "ApprovalRequired",
            format!(
                "An Approval constraint now covers {}: refresh the plan {} with UpdateProvisionedProductPlan to submit it for approval.",
                plan.operation_type, plan.plan_id
            ),
            json!({"AuthAction": "servicecatalog:ExecuteProvisionedProductPlan", "NoPermissionType": "ApprovalRequired"}),
        ));
    }
    if ctx.store().state_version(&plan.provisioned_product_id).await? != plan.state_version {
        return Err(stale(&plan));
    }
    let queued = match ctx.state.provisioner().execute_plan(&plan).await? {
        Ok(queued) => queued,
        Err(ExecutionRefusal::Stale) => return Err(stale(&plan)),
        Err(ExecutionRefusal::Status) => {
            return Err(ApiError::invalid_status("Plan", format!("The plan {} changed meanwhile; read it again.", plan.plan_id)))
        }
        Err(ExecutionRefusal::UnderChange) => {
            return Err(match ctx.store().provisioned_product(&plan.provisioned_product_id).await? {
                Some(pp) => provisioning::refuse_under_change(&pp).into(),
                None => ApiError::not_found("ProvisionedProduct", &plan.provisioned_product_id),
            })
        }
    };
    Ok(json!({ "PlanId": plan.plan_id, "TaskId": queued.task_id }))
}

/// `{PrincipalName, PrincipalType}` of each approver entry (a pattern stands for its name).
async fn assigned_approvers(ctx: &Ctx<'_>, approval: &ApprovalConfig) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for approver in &approval.approvers {
        let name = match (&approver.id, &approver.pattern) {
            (Some(id), _) => ctx.store().principal_by_id(&approver.principal_type, id).await?.map_or_else(|| id.clone(), |p| p.name),
            (None, Some(pattern)) => pattern.clone(),
            (None, None) => continue,
        };
        out.push(json!({"PrincipalName": name, "PrincipalType": approver.principal_type}));
    }
    Ok(out)
}

/// The `PlanDetail` object (also the items of `PlanDetails`); `approvers` are its assigned ones.
fn plan_detail(ctx: &Ctx<'_>, plan: &Plan, approvers: &[Value]) -> Value {
    let parameters = masked_parameters(ctx, &plan.parameters_sealed, &plan.sensitive_parameters);
    let mut d = json!({
        "PlanId": plan.plan_id,
        "PlanName": plan.plan_name,
        "PlanType": "Ros",
        "Description": plan.description,
        "OperationType": plan.operation_type,
        "OwnerPrincipalId": plan.owner_principal_id,
        "OwnerPrincipalType": plan.owner_principal_type,
        "OwnerPrincipalName": plan.owner_principal_name,
        "Uid": ctx.state.config.account_id,
        "PortfolioId": plan.portfolio_id,
        "ProductId": plan.product_id,
        "ProductName": plan.product_name,
        "ProductVersionId": plan.product_version_id,
        "ProvisionedProductId": plan.provisioned_product_id,
        "ProvisionedProductName": plan.provisioned_product_name,
        "StackId": plan.stack_id,
        "StackRegionId": plan.stack_region_id,
        "Parameters": parameters,
        "Tags": serde_json::from_str::<Value>(&plan.tags).unwrap_or(Value::Array(vec![])),
        "Status": plan.status,
        "AssignedApprovers": approvers,
        "CreateTime": format_time(plan.created_at),
        "UpdateTime": format_time(plan.updated_at),
        "Outputs": serde_json::from_str::<Value>(&plan.planned_outputs).unwrap_or(Value::Array(vec![])),
    });
    if matches!(plan.status, PlanStatus::PreviewFailed | PlanStatus::ExecuteFailed) {
        d["StatusMessage"] = json!(plan.status_message);
    }
    if let Some(task_id) = &plan.execute_task_id {
        d["TaskId"] = json!(task_id);
    }
    d
}

pub(super) async fn get(ctx: &Ctx<'_>, req: PlanIdRequest) -> Result<Value, ApiError> {
    let (plan, _) = visible_plan(ctx, &req.plan_id).await?;
    let approvers = match approval_of(&plan)? {
        Some(approval) => assigned_approvers(ctx, &approval).await?,
        None => Vec::new(),
    };
    let records: Vec<Value> = ctx
        .store()
        .plan_records(&plan.plan_id)
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "ApprovalAction": r.approval_action,
                "Comment": r.comment,
                "CreateTime": format_time(r.created_at),
                "Operator": {"PrincipalId": r.operator_principal_id, "PrincipalName": r.operator_principal_name,
                             "PrincipalType": r.operator_principal_type},
            })
        })
        .collect();
    let todo: Vec<Value> = if plan.status == PlanStatus::ApplicationInProgress {
        let tasks: Vec<Value> = approvers.iter().map(|a| json!({"Operator": a})).collect();
        vec![json!({"ActivityName": "Approval", "Tasks": tasks})]
    } else {
        Vec::new()
    };
    let mut detail = plan_detail(ctx, &plan, &approvers);
    detail["ApprovalDetail"] = json!({"OperationRecords": records, "TodoTaskActivities": todo});
    let product = ctx.store().product(&plan.product_id).await?;
    let version = ctx.store().product_version(&plan.product_version_id).await?;
    Ok(json!({
        "PlanDetail": detail,
        "ProductDetail": product.as_ref().map(|p| super::product::detail(ctx, p)),
        "ProductVersionDetail": version.as_ref().map(super::product::version_detail),
        "ResourceChanges": serde_json::from_str::<Value>(&plan.resource_changes).unwrap_or(Value::Array(vec![])),
    }))
}

fn admin_only(ctx: &Ctx<'_>, action: &str, what: &str) -> Result<(), ApiError> {
    if ctx.principal.is_admin {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "AdministratorOnly",
        format!("{what} is allowed to administrators only."),
        json!({"AuthAction": format!("servicecatalog:{action}"), "AuthPrincipalDisplayName": ctx.principal.name, "NoPermissionType": "ImplicitDeny"}),
    ))
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

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Value, ApiError> {
    const ACTION: &str = "ListProvisionedProductPlans";
    let mut query = PlanQuery {
        provisioned_product_id: req.provisioned_product_id.clone(),
        name: super::filter_value(&req.filters, "ProvisionedProductPlanName"),
        full_text: super::filter_value(&req.filters, "FullTextSearch"),
        ..PlanQuery::default()
    };
    for status in filter_values(&req.filters, "ProvisionedProductPlanStatus") {
        let status = status
            .parse()
            .map_err(|e: String| ApiError::invalid_parameter("Filters", format!("The filter ProvisionedProductPlanStatus has an {e}.")))?;
        query.statuses.push(status);
    }
    // ApprovalFilter, when given, decides; AccessLevelFilter (User by default) otherwise.
    let mut approver_only = false;
    let mut decided_by_caller = None;
    match req.approval_filter.as_deref() {
        Some("ReceivedRequests") => {
            query.needs_approval = true;
            query.statuses = vec![PlanStatus::ApplicationInProgress];
            approver_only = true;
        }
        Some("ApprovalHistory") => decided_by_caller = Some(ctx.store().plans_decided_by(&ctx.principal.principal_id).await?),
        Some("AccountRequests") => {
            admin_only(ctx, ACTION, "ApprovalFilter=AccountRequests")?;
            query.needs_approval = true;
        }
        Some(other) => {
            return Err(ApiError::invalid_parameter("ApprovalFilter", format!("The ApprovalFilter {other:?} is not supported.")))
        }
        None => match req.access_level_filter.as_deref().unwrap_or("User") {
            "User" => query.owner_principal_id = Some(ctx.principal.principal_id.clone()),
            "Account" => admin_only(ctx, ACTION, "AccessLevelFilter=Account")?,
            other => {
                return Err(ApiError::invalid_parameter(
                    "AccessLevelFilter",
                    format!("The AccessLevelFilter {other:?} is not supported here (no resource directory); use User or Account."),
                ))
            }
        },
    }
    let owner_uids = filter_values(&req.filters, "ProvisionedProductPlanOwnerUid");
    let approver_keys = filter_values(&req.filters, "ProvisionedProductPlanApprover");
    let approver_names: Vec<String> =
        filter_values(&req.filters, "ProvisionedProductPlanApproverName").iter().map(|n| n.to_lowercase()).collect();
    let mut matched = Vec::new();
    if owner_uids.iter().all(|uid| *uid == ctx.state.config.account_id) {
        for plan in ctx.store().list_plans(&query, req.paging.order()).await? {
            if decided_by_caller.as_ref().is_some_and(|ids| !ids.iter().any(|id| plan.plan_id == **id)) {
                continue;
            }
            let approval = approval_of(&plan)?;
            if approver_only {
                let Some(approval) = &approval else { continue };
                if !is_approver(ctx, approval).await? {
                    continue;
                }
            }
            let approvers = match &approval {
                Some(approval) => assigned_approvers(ctx, approval).await?,
                None => Vec::new(),
            };
            let key = |a: &Value| {
                format!("{}:{}", a["PrincipalType"].as_str().unwrap_or_default(), a["PrincipalName"].as_str().unwrap_or_default())
            };
            if !approver_keys.is_empty() && !approvers.iter().any(|a| approver_keys.contains(&key(a))) {
                continue;
            }
            let named = |a: &Value| a["PrincipalName"].as_str().unwrap_or_default().to_lowercase();
            if !approver_names.is_empty() && !approvers.iter().any(|a| approver_names.iter().any(|n| named(a).contains(n.as_str()))) {
                continue;
            }
            matched.push((plan, approvers));
        }
    }
    let page = req.paging.page();
    let mut out = req.paging.response(matched.len() as i64);
    let details: Vec<Value> = matched
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.size).unwrap_or(0))
        .map(|(plan, approvers)| plan_detail(ctx, plan, approvers))
        .collect();
    out.insert("PlanDetails".into(), Value::Array(details));
    Ok(Value::Object(out))
}

pub(super) async fn list_approvers(ctx: &Ctx<'_>, req: ApproversRequest) -> Result<Value, ApiError> {
    const ACTION: &str = "ListProvisionedProductPlanApprovers";
    let mut query = PlanQuery { needs_approval: true, ..PlanQuery::default() };
    match (req.approval_filter.as_deref(), req.access_level_filter.as_deref().unwrap_or("User")) {
        (Some("AccountRequests"), _) | (None, "Account") => admin_only(ctx, ACTION, "Listing the approvers of every plan")?,
        (Some(other), _) => {
            return Err(ApiError::invalid_parameter("ApprovalFilter", format!("The ApprovalFilter {other:?} is not supported.")))
        }
        (None, "User") => query.owner_principal_id = Some(ctx.principal.principal_id.clone()),
        (None, other) => {
            return Err(ApiError::invalid_parameter(
                "AccessLevelFilter",
                format!("The AccessLevelFilter {other:?} is not supported; use User or Account."),
            ))
        }
    }
    let wanted: Vec<String> = filter_values(&req.filters, "ProvisionedProductPlanApproverName").iter().map(|n| n.to_lowercase()).collect();
    let mut approvers: Vec<Value> = Vec::new();
    for plan in ctx.store().list_plans(&query, SortOrder::Asc).await? {
        let Some(approval) = approval_of(&plan)? else { continue };
        for approver in assigned_approvers(ctx, &approval).await? {
            let name = approver["PrincipalName"].as_str().unwrap_or_default().to_lowercase();
            if (wanted.is_empty() || wanted.iter().any(|w| name.contains(w.as_str()))) && !approvers.contains(&approver) {
                approvers.push(approver);
            }
        }
    }
    Ok(json!({ "Approvers": approvers }))
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
        assert_eq!(tags_from_json(&tags_json(&[("a".into(), "1".into())])), [("a".to_string(), "1".to_string())]);
    }
}
