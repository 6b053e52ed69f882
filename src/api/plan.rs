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
use super::provisioning::{masked_parameters, pairs, refuse_under_change, region_ids, tag_pairs, KeyValue, Tag};
use super::{format_time, Ctx, Filter, Paging};
use crate::catalog::constraint::{ApprovalConfig, OperationType};
use crate::provisioning::plan::{allows, PlanOperation};
use crate::provisioning::{self, parameters_from_json, parameters_json, ChangeRequest};
use crate::store::plan::{ExecutionRefusal, Plan, PlanQuery, PlanRecord, PlanStatus};
use crate::store::principal::{Principal, RAM_USER};
use crate::store::provisioning::{ProvisionedProduct, ProvisionedProductQuery, Task, IN_PROGRESS, UNDER_CHANGE};
use crate::store::{new_id, now_ms, Page, SortOrder};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateRequest {
    plan_name: String,
    #[serde(default)]
    description: Option<String>,
    operation_type: String,
    product_id: String,
    product_version_id: String,
    #[serde(default)]
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
    #[serde(default)]
    description: Option<String>,
    product_id: String,
    product_version_id: String,
    #[serde(default)]
    portfolio_id: Option<String>,
    #[serde(default)]
    parameters: Option<Vec<KeyValue>>,
    #[serde(default)]
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
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRequest {
    #[serde(flatten)]
    paging: Paging,
    #[serde(default)]
    access_level_filter: Option<String>,
    #[serde(default)]
    approval_filter: Option<String>,
    #[serde(default)]
    provisioned_product_id: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ApproversRequest {
    #[serde(default)]
    access_level_filter: Option<String>,
    #[serde(default)]
    approval_filter: Option<String>,
    #[serde(default)]
    filters: Vec<Filter>,
}

/// The change a plan previews, validated.
struct PlanChange {
    portfolio_id: String,
    version_id: String,
    parameters: Vec<(String, String)>,
    sensitive: Vec<String>,
    tags: Vec<(String, String)>,
    task_tags: Vec<(String, String)>,
    launch_role: Option<String>,
    approval: Option<ApprovalConfig>,
}

fn operation_of(name: &str) -> Result<OperationType, ApiError> {
    serde_json::from_value(json!(name)).map_err(|_| {
        ApiError::invalid_parameter(
            "OperationType",
            format!("The OperationType {name:?} is not one of LaunchProduct, UpdateProvisionedProduct, TerminateProvisionedProduct."),
        )
    })
}

fn tags_json(tags: &[(String, String)]) -> String {
    Value::Array(tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect()).to_string()
}

fn tags_from_json(text: &str) -> Vec<(String, String)> {
    serde_json::from_str::<Vec<Value>>(text)
        .unwrap_or_default()
        .iter()
        .map(|t| (t["Key"].as_str().unwrap_or_default().to_string(), t["Value"].as_str().unwrap_or_default().to_string()))
        .collect()
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

/// Validates the change of an update or terminate plan on `pp`; `given` parameters are merged
/// over `previous` (the provisioned product's for a new plan, the plan's for an updated one).
#[allow(clippy::too_many_arguments)]
async fn resolve_on_product(
    ctx: &Ctx<'_>,
    operation: OperationType,
    pp: &ProvisionedProduct,
    version_id: &str,
    portfolio_id: Option<String>,
    previous: &[(String, String)],
    given: &[(String, String)],
    tags: Vec<(String, String)>,
) -> Result<PlanChange, ApiError> {
    if pp.status == UNDER_CHANGE {
        return Err(refuse_under_change(pp));
    }
    if operation == OperationType::TerminateProvisionedProduct {
        // As a direct terminate: no launch option needed, the product's own version and parameters.
        let approval = provisioning::approval_for(ctx.store(), &pp.portfolio_id, &pp.product_id, operation).await?;
        return Ok(PlanChange {
            portfolio_id: pp.portfolio_id.clone(),
            version_id: pp.product_version_id.clone(),
            parameters: previous.to_vec(),
            sensitive: provisioning::sensitive_parameters(ctx.store(), &pp.product_version_id).await?,
            tags: Vec::new(),
            task_tags: Vec::new(),
            launch_role: crate::catalog::constraint::launch_role_for(ctx.store(), &pp.portfolio_id, &pp.product_id).await?,
            approval,
        });
    }
    let version = crate::catalog::version::launchable_version(ctx.store(), &pp.product_id, version_id).await?;
    let parameters = provisioning::merge_parameters(previous, given, &version.parameters);
    resolve(
        ctx,
        operation,
        &pp.product_id,
        version_id,
        portfolio_id.or(Some(pp.portfolio_id.clone())),
        &pp.stack_region_id,
        parameters,
        tags,
    )
    .await
}

/// Validates a launch or update through [`provisioning::resolve_for_plan`].
#[allow(clippy::too_many_arguments)]
async fn resolve(
    ctx: &Ctx<'_>,
    operation: OperationType,
    product_id: &str,
    version_id: &str,
    portfolio_id: Option<String>,
    region: &str,
    parameters: Vec<(String, String)>,
    tags: Vec<(String, String)>,
) -> Result<PlanChange, ApiError> {
    let request = ChangeRequest {
        principal: ctx.principal,
        operation,
        product_id,
        version_id,
        portfolio_id: portfolio_id.as_deref(),
        region,
        parameters,
        tags: tags.clone(),
    };
    let (change, approval) = provisioning::resolve_for_plan(ctx.store(), &region_ids(ctx), request).await?;
    Ok(PlanChange {
        portfolio_id: change.portfolio_id,
        version_id: version_id.to_string(),
        parameters: change.parameters,
        sensitive: change.sensitive,
        tags,
        task_tags: change.tags,
        launch_role: change.launch_role,
        approval,
    })
}

fn same_parameters(a: &[(String, String)], b: &[(String, String)]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

pub(super) async fn create(ctx: &Ctx<'_>, req: CreateRequest) -> Result<Value, ApiError> {
    let operation = operation_of(&req.operation_type)?;
    let given = pairs(req.parameters);
    let tags = tag_pairs(req.tags);
    let (pp_id, stack_id, change) = match operation {
        OperationType::LaunchProduct => {
            let change =
                resolve(ctx, operation, &req.product_id, &req.product_version_id, req.portfolio_id, &req.stack_region_id, given, tags)
                    .await?;
            (new_id("pp"), uuid::Uuid::new_v4().to_string(), change)
        }
        _ => {
            let pp = target_by_name(ctx, &req.provisioned_product_name).await?;
            provisioning::check_owner(ctx.principal, &pp)?;
            if req.product_id != pp.product_id {
                return Err(ApiError::invalid_parameter(
                    "ProductId",
                    format!(
                        "The provisioned product {} was launched from product {}, not {}.",
                        pp.provisioned_product_id, pp.product_id, req.product_id
                    ),
                ));
            }
            if req.stack_region_id != pp.stack_region_id {
                return Err(ApiError::invalid_parameter(
                    "StackRegionId",
                    format!(
                        "The provisioned product {} is in {}, not {}.",
                        pp.provisioned_product_id, pp.stack_region_id, req.stack_region_id
                    ),
                ));
            }
            let previous = ctx.state.secrets.open(&pp.parameters_sealed).map(|p| parameters_from_json(&p)).unwrap_or_default();
            let change =
                resolve_on_product(ctx, operation, &pp, &req.product_version_id, req.portfolio_id, &previous, &given, tags).await?;
            if operation == OperationType::UpdateProvisionedProduct
                && change.version_id == pp.product_version_id
                && same_parameters(&change.parameters, &previous)
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
        plan_id: new_id("plan"),
        plan_name: req.plan_name,
        description: req.description.unwrap_or_default(),
        operation_type: provisioning::operation_name(operation).to_string(),
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
        parameters_sealed: ctx.state.secrets.seal(&parameters_json(&change.parameters)),
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
    let operation = operation_of(&plan.operation_type)?;
    let previous = ctx.state.secrets.open(&plan.parameters_sealed).map(|p| parameters_from_json(&p)).unwrap_or_default();
    let given = req.parameters.map(pairs).unwrap_or_default();
    let tags = req.tags.map(tag_pairs).unwrap_or_else(|| tags_from_json(&plan.tags));
    let portfolio = req.portfolio_id.or(Some(plan.portfolio_id.clone()));
    let change = match operation {
        OperationType::LaunchProduct => {
            let version = crate::catalog::version::launchable_version(ctx.store(), &plan.product_id, &req.product_version_id).await?;
            let parameters = provisioning::merge_parameters(&previous, &given, &version.parameters);
            resolve(ctx, operation, &plan.product_id, &req.product_version_id, portfolio, &plan.stack_region_id, parameters, tags).await?
        }
        _ => {
            let pp = ctx
                .store()
                .provisioned_product(&plan.provisioned_product_id)
                .await?
                .ok_or_else(|| ApiError::not_found("ProvisionedProduct", &plan.provisioned_product_id))?;
            resolve_on_product(ctx, operation, &pp, &req.product_version_id, portfolio, &previous, &given, tags).await?
        }
    };
    let replanned = Plan {
        description: req.description.unwrap_or_else(|| plan.description.clone()),
        product_version_id: change.version_id.clone(),
        portfolio_id: change.portfolio_id.clone(),
        parameters_sealed: ctx.state.secrets.seal(&parameters_json(&change.parameters)),
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
    let operation = operation_of(&plan.operation_type)?;
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
    let version = ctx
        .store()
        .product_version(&plan.product_version_id)
        .await?
        .ok_or_else(|| ApiError::not_found("ProductVersion", &plan.product_version_id))?;
    let now = now_ms();
    let task = Task {
        task_id: new_id("task"),
        task_type: plan.operation_type.clone(),
        provisioned_product_id: plan.provisioned_product_id.clone(),
        provisioned_product_name: plan.provisioned_product_name.clone(),
        product_id: plan.product_id.clone(),
        product_name: plan.product_name.clone(),
        product_version_id: plan.product_version_id.clone(),
        product_version_name: version.product_version_name.clone(),
        portfolio_id: plan.portfolio_id.clone(),
        stack_region_id: plan.stack_region_id.clone(),
        parameters_sealed: plan.parameters_sealed.clone(),
        sensitive_parameters: plan.sensitive_parameters.clone(),
        task_tags: plan.task_tags.clone(),
        launch_role: plan.launch_role.clone(),
        outputs: "[]".into(),
        status: IN_PROGRESS.into(),
        status_message: String::new(),
        created_at: now,
        updated_at: now,
    };
    let launch = (operation == OperationType::LaunchProduct).then(|| ProvisionedProduct {
        provisioned_product_id: plan.provisioned_product_id.clone(),
        provisioned_product_name: plan.provisioned_product_name.clone(),
        owner_principal_id: plan.owner_principal_id.clone(),
        owner_principal_type: plan.owner_principal_type.clone(),
        product_id: plan.product_id.clone(),
        product_version_id: plan.product_version_id.clone(),
        portfolio_id: plan.portfolio_id.clone(),
        stack_region_id: plan.stack_region_id.clone(),
        stack_id: plan.stack_id.clone(),
        status: UNDER_CHANGE.into(),
        status_message: String::new(),
        parameters_sealed: plan.parameters_sealed.clone(),
        last_task_id: Some(task.task_id.clone()),
        last_provisioning_task_id: Some(task.task_id.clone()),
        last_successful_provisioning_task_id: None,
        created_at: now,
        product_name: plan.product_name.clone(),
        product_version_name: version.product_version_name.clone(),
    });
    match ctx.store().start_plan_execution(&plan, plan.status, launch.as_ref(), &task).await? {
        Ok(()) => {}
        Err(ExecutionRefusal::Stale) => return Err(stale(&plan)),
        Err(ExecutionRefusal::Status) => {
            return Err(ApiError::invalid_status("Plan", format!("The plan {} changed meanwhile; read it again.", plan.plan_id)))
        }
        Err(ExecutionRefusal::UnderChange) => {
            return Err(match ctx.store().provisioned_product(&plan.provisioned_product_id).await? {
                Some(pp) => refuse_under_change(&pp),
                None => ApiError::not_found("ProvisionedProduct", &plan.provisioned_product_id),
            })
        }
    }
    ctx.state.engine.task_queued().await;
    Ok(json!({ "PlanId": plan.plan_id, "TaskId": task.task_id }))
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
        "Status": plan.status.name(),
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
            if decided_by_caller.as_ref().is_some_and(|ids| !ids.contains(&plan.plan_id)) {
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
    fn operation_types_and_filter_values_parse() {
        assert_eq!(operation_of("TerminateProvisionedProduct").unwrap(), OperationType::TerminateProvisionedProduct);
        assert_eq!(operation_of("Launch").unwrap_err().code(), "InvalidParameter.OperationType");
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
