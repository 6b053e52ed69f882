//! Plans: create and update (each queues a preview that the engine runs), read, list, cancel,
//! delete, approve or reject, and execute; and which operation each status allows (the status
//! machine of `PlanDetail.Status`; a successful preview's next status is
//! [`PlanStatus::after_preview`]). What a preview tells the caller is derived by the engine
//! (`engine::plan_summary`). A plan is validated like the direct operation it previews.
//!
//! Who sees a plan: its owner, administrators, and its approvers while it needs an approval.
//! Only the owner (or an administrator) changes, cancels, deletes or executes it; only an
//! approver named by the Approval constraint approves or rejects it. Update and terminate plans
//! find their provisioned product by name among the caller's.
//!
//! Approval: a plan whose (product, portfolio) has an `Approval` constraint covering its operation
//! is submitted for approval by the preview itself (`PreviewSuccess` is skipped: the plan moves to
//! `ApplicationInProgress` with its owner's `Submit` record), an approver's `Approve` makes it
//! `ApplicationApproved`, and only then can its owner execute it. Without such a constraint a plan
//! is executable in `PreviewSuccess`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::queue::{ProductChange, Provisioner, Queued};
use super::{check_owner, check_product, pairs, resolve, tag_pairs, tags_from_json, tags_json};
use super::{Change, ChangeRequest, Parameter, Tag};
use crate::catalog::constraint::ApprovalConfig;
use crate::catalog::error::{administrators_only, DomainError};
use crate::model::{OperationType, PlanId, ProvisionedProductId, TaskId};
use crate::store::dependency::{references_from_json, references_json};
use crate::store::plan::{ExecutionRefusal, Plan, PlanQuery, PlanRecord, PlanStatus};
use crate::store::principal::{Principal, RAM_USER};
use crate::store::provisioning::{ProvisionedProduct, ProvisionedProductQuery};
use crate::store::{now_ms, Page, SortOrder};

/// What a caller can do to a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanOperation {
    /// `UpdateProvisionedProductPlan`: a new preview.
    Update,
    /// `ExecuteProvisionedProductPlan`.
    Execute,
    /// `CancelProvisionedProductPlan`.
    Cancel,
    /// `ApproveProvisionedProductPlan` (Approve or Reject).
    Decide,
    /// `DeleteProvisionedProductPlan`.
    Delete,
}

/// Whether `operation` is allowed in `status` (for `Execute`: given whether the plan needs an
/// approval). Cancelled, rejected and executed plans are final: they can only be deleted.
pub fn allows(status: PlanStatus, operation: PlanOperation, needs_approval: bool) -> bool {
    use PlanOperation::*;
    use PlanStatus::*;
    match operation {
        Update => matches!(status, PreviewSuccess | PreviewFailed | ApplicationInProgress | ApplicationApproved),
        Execute if needs_approval => status == ApplicationApproved,
        Execute => status == PreviewSuccess,
        Cancel => matches!(status, PreviewInProgress | PreviewSuccess | PreviewFailed | ApplicationInProgress | ApplicationApproved),
        Decide => status == ApplicationInProgress,
        Delete => !matches!(status, PreviewInProgress | ExecuteInProgress),
    }
}

/// `CreateProvisionedProductPlan`'s request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewPlan {
    pub plan_name: String,
    /// Always `Ros` (the spec checks it).
    pub plan_type: String,
    pub description: Option<String>,
    pub operation_type: OperationType,
    pub product_id: String,
    pub product_version_id: String,
    pub portfolio_id: Option<String>,
    /// The name of the provisioned product to launch, or of the caller's one to change.
    pub provisioned_product_name: String,
    pub stack_region_id: String,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// `UpdateProvisionedProductPlan`'s request: given parameters merge over the plan's, absent
/// tags keep the plan's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Replan {
    pub plan_id: String,
    pub description: Option<String>,
    pub product_id: String,
    pub product_version_id: String,
    pub portfolio_id: Option<String>,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    pub tags: Option<Vec<Tag>>,
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl std::str::FromStr for Decision {
    type Err = DomainError;

    fn from_str(action: &str) -> Result<Self, DomainError> {
        match action {
            "Approve" => Ok(Decision::Approve),
            "Reject" => Ok(Decision::Reject),
            other => {
                Err(DomainError::invalid_parameter("ApprovalAction", format!("The ApprovalAction {other:?} is not Approve or Reject.")))
            }
        }
    }
}

/// An approver named by a plan's Approval constraint (a pattern stands for its name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Approver {
    pub principal_name: String,
    pub principal_type: String,
}

/// One of the resource changes a preview found (the console shows these fields).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceChange {
    pub action: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub resource_type: String,
    /// `True`, `False` or `Conditional` for a modification.
    #[serde(default)]
    pub replacement: String,
}

/// A plan as its readers see it: the plan, its approvers and its operation records.
pub struct PlanView {
    pub plan: Plan,
    pub approvers: Vec<Approver>,
    pub records: Vec<PlanRecord>,
}

/// Whose plans a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlanScope {
    /// The caller's own.
    #[default]
    Own,
    /// Everyone's (administrators only).
    Account,
    /// Those waiting for the caller's approval.
    ReceivedRequests,
    /// Those the caller approved or rejected.
    ApprovalHistory,
    /// Everyone's that need approval (administrators only).
    AccountRequests,
}

/// Which plans a list shows.
#[derive(Debug, Default)]
pub struct PlanFilter {
    pub scope: PlanScope,
    pub provisioned_product_id: Option<String>,
    /// Exact plan name, and a substring of it.
    pub name: Option<String>,
    pub full_text: Option<String>,
    /// Only these statuses (all when empty).
    pub statuses: Vec<PlanStatus>,
    /// Owners' account ids (plans exist in this account only).
    pub owner_uids: Vec<String>,
    /// Approvers as `Type:Name`, and substrings of approver names.
    pub approvers: Vec<String>,
    pub approver_names: Vec<String>,
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
fn approval_of(plan: &Plan) -> Result<Option<ApprovalConfig>, DomainError> {
    plan.approval_config
        .as_deref()
        .map(|text| serde_json::from_str(text).map_err(|e| DomainError::Internal(format!("plan {} approval config: {e}", plan.plan_id))))
        .transpose()
}

fn refuse_status(plan: &Plan, operation: &str) -> DomainError {
    let why = match plan.status {
        PlanStatus::Canceled | PlanStatus::ApplicationRejected => " A cancelled or rejected plan is final: create a new plan.",
        PlanStatus::ExecuteSuccess | PlanStatus::ExecuteFailed => " An executed plan is final: create a new plan.",
        PlanStatus::PreviewInProgress => " Wait for its preview to finish.",
        PlanStatus::ExecuteInProgress => " Wait for its execution to finish.",
        PlanStatus::PreviewFailed => " Fix the cause and run a new preview with UpdateProvisionedProductPlan.",
        _ => "",
    };
    DomainError::invalid_status("Plan", format!("The plan {} is {}; it cannot be {operation}.{why}", plan.plan_id, plan.status))
}

fn changed_meanwhile(plan: &Plan) -> DomainError {
    DomainError::invalid_status("Plan", format!("The plan {} changed meanwhile; read it again.", plan.plan_id))
}

fn stale(plan: &Plan) -> DomainError {
    DomainError::invalid_status(
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

/// `403 Forbidden.ApprovalRequired` for executing a plan that waits for an approval.
fn approval_required(message: String) -> DomainError {
    DomainError::Forbidden {
        reason: "ApprovalRequired",
        message,
        detail: json!({"AuthAction": "servicecatalog:ExecuteProvisionedProductPlan", "NoPermissionType": "ApprovalRequired"}),
    }
}

/// An operation record by `principal`.
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

/// Whether `name` contains one of `wanted` (lower-case), or `wanted` is empty.
fn named(wanted: &[String], name: &str) -> bool {
    let name = name.to_lowercase();
    wanted.is_empty() || wanted.iter().any(|w| name.contains(&w.to_lowercase()))
}

impl Provisioner<'_> {
    /// The caller's live provisioned product named `name` (any user's for administrators).
    async fn target_by_name(&self, principal: &Principal, name: &str) -> Result<ProvisionedProduct, DomainError> {
        let query = ProvisionedProductQuery {
            owner_principal_id: (!principal.is_admin).then(|| principal.principal_id.clone()),
            name: Some(name.to_string()),
            ..ProvisionedProductQuery::default()
        };
        let (found, total) = self.store.list_provisioned_products(&query, SortOrder::Desc, Page { number: 1, size: 2 }).await?;
        match found.as_slice() {
            [pp] if total == 1 => Ok(pp.clone()),
            [] => Err(DomainError::not_found("ProvisionedProduct", name)),
            _ => Err(DomainError::invalid_parameter(
                "ProvisionedProductName",
                format!("{total} provisioned products are named {name:?}; rename one so that the plan's target is unambiguous."),
            )),
        }
    }

    /// `plan` previewing `change`: its version, portfolio, parameters, tags, launch role and approval.
    fn previewing(&self, plan: Plan, change: Change) -> Plan {
        Plan {
            product_version_id: change.version_id.clone(),
            portfolio_id: change.portfolio_id.clone(),
            parameters_sealed: self.seal(&change),
            sensitive_parameters: json!(change.sensitive).to_string(),
            tags: tags_json(&change.tags),
            task_tags: tags_json(&change.task_tags),
            approval_config: change.approval.as_ref().map(|a| serde_json::to_string(a).expect("configs serialise")),
            launch_role: change.launch_role,
            parameter_references: references_json(&change.references),
            ..plan
        }
    }

    /// Creates a plan and queues its preview. An `Approval` constraint covering the operation
    /// does not refuse it: the plan waits for an approver after its preview.
    pub async fn create_plan(&self, principal: &Principal, req: NewPlan) -> Result<Plan, DomainError> {
        let (provisioned_product_id, stack_id, change) = match req.operation_type {
            OperationType::LaunchProduct => {
                self.check_new_name(principal, &req.provisioned_product_name).await?;
                let given = self.dereference(principal, None, pairs(req.parameters.clone())).await?;
                let request = ChangeRequest {
                    principal,
                    operation: req.operation_type,
                    product_id: &req.product_id,
                    version_id: &req.product_version_id,
                    portfolio_id: req.portfolio_id.as_deref(),
                    region: &req.stack_region_id,
                    parameters: given.parameters,
                    tags: tag_pairs(req.tags.clone()),
                    references: given.references,
                };
                (ProvisionedProductId::new(), uuid::Uuid::new_v4().to_string(), resolve(self.store, self.regions, request).await?)
            }
            operation => {
                let pp = self.target_by_name(principal, &req.provisioned_product_name).await?;
                check_owner(principal, &pp)?;
                if operation == OperationType::TerminateProvisionedProduct {
                    self.check_no_dependents(&pp, false).await?;
                }
                check_product(&pp, &req.product_id)?;
                if req.stack_region_id != pp.stack_region_id {
                    return Err(DomainError::invalid_parameter(
                        "StackRegionId",
                        format!(
                            "The provisioned product {} is in {}, not {}.",
                            pp.provisioned_product_id, pp.stack_region_id, req.stack_region_id
                        ),
                    ));
                }
                let asked = ProductChange {
                    operation,
                    version_id: req.product_version_id.clone(),
                    portfolio_id: req.portfolio_id.clone(),
                    previous: None,
                    given: pairs(req.parameters.clone()),
                    tags: tag_pairs(req.tags.clone()),
                };
                let change = self.on_product(principal, &pp, asked).await?;
                (pp.provisioned_product_id, pp.stack_id, change)
            }
        };
        self.insert_new_plan(principal, req, provisioned_product_id, stack_id, change).await
    }

    /// An update plan re-applying `pp` as it is (its version and parameters) for its `owner`:
    /// what a drift check's `ReapplyWithApproval` remediation creates, named after the check.
    pub async fn remediation_plan(&self, owner: &Principal, pp: &ProvisionedProduct, check: &TaskId) -> Result<Plan, DomainError> {
        let change = self.on_product(owner, pp, self.reapplying(pp)).await?;
        let description = format!("Re-applies {} after the drift check {check} found drift.", pp.provisioned_product_name);
        self.insert_update_plan(owner, pp, &pp.product_version_id, format!("drift-remediation-{check}"), description, change).await
    }

    /// An update plan of `pp` to `version_id` with its own parameters for its `owner`: what an
    /// upgrade campaign previews, named after it; `None` when an `Approval` constraint covers
    /// the update (a campaign does not stand in for its approvers).
    pub async fn upgrade_plan(
        &self,
        owner: &Principal,
        pp: &ProvisionedProduct,
        version_id: &str,
        campaign: &str,
    ) -> Result<Option<Plan>, DomainError> {
        let change = self.on_product(owner, pp, ProductChange::upgrading(pp, version_id)).await?;
        if change.approval.is_some() {
            return Ok(None);
        }
        let description = format!("Upgrades {} for the upgrade campaign {campaign}.", pp.provisioned_product_name);
        Ok(Some(self.insert_update_plan(owner, pp, version_id, format!("upgrade-{campaign}"), description, change).await?))
    }

    /// Stores for `owner` the update plan `name` of `pp` to `version_id` that `description`
    /// explains, and queues its preview of `change` (which holds its parameters and tags).
    async fn insert_update_plan(
        &self,
        owner: &Principal,
        pp: &ProvisionedProduct,
        version_id: &str,
        name: String,
        description: String,
        change: Change,
    ) -> Result<Plan, DomainError> {
        let req = NewPlan {
            plan_name: name,
            plan_type: "Ros".into(),
            description: Some(description),
            operation_type: OperationType::UpdateProvisionedProduct,
            product_id: pp.product_id.clone(),
            product_version_id: version_id.to_string(),
            portfolio_id: None,
            provisioned_product_name: pp.provisioned_product_name.clone(),
            stack_region_id: pp.stack_region_id.clone(),
            parameters: Vec::new(),
            tags: Vec::new(),
        };
        self.insert_new_plan(owner, req, pp.provisioned_product_id.clone(), pp.stack_id.clone(), change).await
    }

    /// Stores the plan `req` of `change` for `principal` and queues its preview.
    async fn insert_new_plan(
        &self,
        principal: &Principal,
        req: NewPlan,
        provisioned_product_id: ProvisionedProductId,
        stack_id: String,
        change: Change,
    ) -> Result<Plan, DomainError> {
        let now = now_ms();
        let plan = Plan {
            plan_id: PlanId::new(),
            plan_name: req.plan_name,
            description: req.description.unwrap_or_default(),
            operation_type: req.operation_type,
            owner_principal_id: principal.principal_id.clone(),
            owner_principal_type: principal.principal_type.clone(),
            owner_principal_name: principal.name.clone(),
            product_id: req.product_id,
            product_version_id: String::new(),
            portfolio_id: String::new(),
            provisioned_product_id,
            provisioned_product_name: req.provisioned_product_name,
            stack_id,
            stack_region_id: req.stack_region_id,
            parameters_sealed: String::new(),
            sensitive_parameters: String::new(),
            tags: String::new(),
            task_tags: String::new(),
            launch_role: None,
            approval_config: None,
            status: PlanStatus::PreviewInProgress,
            status_message: String::new(),
            resource_changes: "[]".into(),
            planned_outputs: "[]".into(),
            plan_file_sealed: None,
            state_version: 0,
            execute_task_id: None,
            created_at: now,
            updated_at: now,
            parameter_references: "[]".into(),
            product_name: String::new(),
        };
        let plan = self.previewing(plan, change);
        if let Some(holder) = self.store.insert_plan(&plan, self.scheduled.as_ref()).await? {
            return Err(super::queue::name_taken(&plan.provisioned_product_name, &holder));
        }
        self.engine.task_queued().await;
        Ok(plan)
    }

    /// Whether `principal` is one of the approvers of `approval`.
    async fn is_approver(&self, principal: &Principal, approval: &ApprovalConfig) -> Result<bool, DomainError> {
        let roles = match principal.principal_type.as_str() {
            RAM_USER => self.store.roles_of(&principal.principal_id).await?,
            _ => Vec::new(),
        };
        Ok(approval.is_approver(principal, &roles))
    }

    /// The plan `id` and how the caller may use it; not found for plans the caller may not see.
    async fn visible_plan(&self, principal: &Principal, id: &str) -> Result<(Plan, Access), DomainError> {
        let not_found = || DomainError::not_found("Plan", id);
        let plan = self.store.plan(id).await?.ok_or_else(not_found)?;
        if principal.is_admin || plan.owner_principal_id == principal.principal_id {
            return Ok((plan, Access::Owner));
        }
        match approval_of(&plan)? {
            Some(approval) if self.is_approver(principal, &approval).await? => Ok((plan, Access::Approver)),
            _ => Err(not_found()),
        }
    }

    /// The plan `id` if the caller may change it (owner or administrator).
    async fn owned_plan(&self, principal: &Principal, id: &str) -> Result<Plan, DomainError> {
        match self.visible_plan(principal, id).await? {
            (plan, Access::Owner) => Ok(plan),
            (plan, Access::Approver) => Err(DomainError::Forbidden {
                reason: "NotOwner",
                message: format!("The plan {} belongs to another user; its approvers may only approve or reject it.", plan.plan_id),
                detail: json!({"AuthPrincipalDisplayName": principal.name, "NoPermissionType": "ImplicitDeny"}),
            }),
        }
    }

    /// Previews a plan again with a version, parameters and tags (its approval starts over).
    pub async fn update_plan(&self, principal: &Principal, req: Replan) -> Result<Plan, DomainError> {
        let plan = self.owned_plan(principal, &req.plan_id).await?;
        if !allows(plan.status, PlanOperation::Update, plan.approval_config.is_some()) {
            return Err(refuse_status(&plan, "updated"));
        }
        if req.product_id != plan.product_id {
            return Err(DomainError::invalid_parameter(
                "ProductId",
                format!("The plan {} is a plan of product {}, not {}.", plan.plan_id, plan.product_id, req.product_id),
            ));
        }
        let previous = self.secrets.open(&plan.parameters_sealed).map(|p| super::parameters_from_json(&p)).unwrap_or_default();
        let tags = req.tags.map_or_else(|| tags_from_json(&plan.tags), tag_pairs);
        let portfolio = req.portfolio_id.or(Some(plan.portfolio_id.clone()));
        let change = match plan.operation_type {
            OperationType::LaunchProduct => {
                let version = crate::catalog::version::launchable_version(self.store, &plan.product_id, &req.product_version_id).await?;
                // A parameter not given keeps the plan's references, resolved again.
                let mut given = pairs(req.parameters);
                for kept in references_from_json(&plan.parameter_references) {
                    if !given.iter().any(|(k, _)| *k == kept.parameter_key) {
                        given.push((kept.parameter_key, kept.parameter_value));
                    }
                }
                let given = self.dereference(principal, None, given).await?;
                let request = ChangeRequest {
                    principal,
                    operation: plan.operation_type,
                    product_id: &plan.product_id,
                    version_id: &req.product_version_id,
                    portfolio_id: portfolio.as_deref(),
                    region: &plan.stack_region_id,
                    parameters: super::merge_parameters(&previous, &given.parameters, &version.parameters),
                    tags,
                    references: given.references,
                };
                resolve(self.store, self.regions, request).await?
            }
            operation => {
                let pp = self
                    .store
                    .provisioned_product(&plan.provisioned_product_id)
                    .await?
                    .ok_or_else(|| DomainError::not_found("ProvisionedProduct", &plan.provisioned_product_id))?;
                let asked = ProductChange {
                    operation,
                    version_id: req.product_version_id,
                    portfolio_id: portfolio,
                    previous: Some(previous),
                    given: pairs(req.parameters),
                    tags,
                };
                self.on_product(principal, &pp, asked).await?
            }
        };
        let description = req.description.unwrap_or_else(|| plan.description.clone());
        let replanned = self.previewing(Plan { description, ..plan.clone() }, change);
        if !self.store.replan(&replanned, plan.status).await? {
            return Err(changed_meanwhile(&plan));
        }
        self.engine.task_queued().await;
        Ok(replanned)
    }

    /// Deletes a plan that is not running.
    pub async fn delete_plan(&self, principal: &Principal, id: &str) -> Result<(), DomainError> {
        let plan = self.owned_plan(principal, id).await?;
        if !allows(plan.status, PlanOperation::Delete, plan.approval_config.is_some())
            || !self.store.delete_plan(&plan.plan_id, plan.status).await?
        {
            return Err(refuse_status(&plan, "deleted"));
        }
        Ok(())
    }

    /// Cancels a plan (final).
    pub async fn cancel_plan(&self, principal: &Principal, id: &str) -> Result<(), DomainError> {
        let plan = self.owned_plan(principal, id).await?;
        let record = record_by(principal, "Cancel", String::new());
        if !allows(plan.status, PlanOperation::Cancel, plan.approval_config.is_some())
            || !self.store.transition_plan(&plan, plan.status, PlanStatus::Canceled, &record).await?
        {
            return Err(refuse_status(&plan, "cancelled"));
        }
        Ok(())
    }

    /// Approves or rejects a plan. Whoever may see the plan (its owner, an administrator) but is
    /// not an approver is refused with `Forbidden.NotApprover`, so that they learn why; anyone
    /// else gets the not found of a plan that does not exist.
    pub async fn decide_plan(&self, principal: &Principal, id: &str, decision: Decision, comment: String) -> Result<(), DomainError> {
        let (plan, _) = self.visible_plan(principal, id).await?;
        let not_approver = |why: &str| DomainError::Forbidden {
            reason: "NotApprover",
            message: format!("You are not an approver of the plan {}: {why}", plan.plan_id),
            detail: json!({"AuthAction": "servicecatalog:ApproveProvisionedProductPlan", "AuthPrincipalDisplayName": principal.name,
                           "NoPermissionType": "ImplicitDeny"}),
        };
        let Some(approval) = approval_of(&plan)? else {
            return Err(not_approver("no Approval constraint covers its operation, so it needs no approval."));
        };
        if !self.is_approver(principal, &approval).await? {
            return Err(not_approver("only the approvers named by the portfolio's Approval constraint may approve or reject it."));
        }
        let (action, to, done) = match decision {
            Decision::Approve => ("Approve", PlanStatus::ApplicationApproved, "approved"),
            Decision::Reject => ("Reject", PlanStatus::ApplicationRejected, "rejected"),
        };
        let record = record_by(principal, action, comment);
        if !allows(plan.status, PlanOperation::Decide, true) || !self.store.transition_plan(&plan, plan.status, to, &record).await? {
            return Err(refuse_status(&plan, done));
        }
        Ok(())
    }

    /// Executes a plan: queues its task (once approved, when it needs an approval).
    pub async fn execute(&self, principal: &Principal, id: &str) -> Result<Queued, DomainError> {
        let plan = self.owned_plan(principal, id).await?;
        let needs_approval = plan.approval_config.is_some();
        if needs_approval && plan.status == PlanStatus::ApplicationInProgress {
            return Err(approval_required(format!(
                "The plan {} is waiting for an approver's approval; it can be executed once approved.",
                plan.plan_id
            )));
        }
        if !allows(plan.status, PlanOperation::Execute, needs_approval) {
            return Err(refuse_status(&plan, "executed"));
        }
        // An Approval constraint added after the preview applies too.
        if !needs_approval && super::approval_for(self.store, &plan.portfolio_id, &plan.product_id, plan.operation_type).await?.is_some() {
            return Err(approval_required(format!(
                "An Approval constraint now covers {}: refresh the plan {} with UpdateProvisionedProductPlan to submit it for approval.",
                plan.operation_type, plan.plan_id
            )));
        }
        if self.store.state_version(&plan.provisioned_product_id).await? != plan.state_version {
            return Err(stale(&plan));
        }
        match self.queue_plan(&plan, None).await? {
            Ok(queued) => Ok(queued),
            Err(ExecutionRefusal::Stale) => Err(stale(&plan)),
            Err(ExecutionRefusal::Cycle) => Err(super::dependency::cycle_formed(&plan.provisioned_product_id)),
            Err(ExecutionRefusal::Status | ExecutionRefusal::Claimed) => Err(changed_meanwhile(&plan)),
            Err(ExecutionRefusal::UnderChange) => Err(match self.store.provisioned_product(&plan.provisioned_product_id).await? {
                Some(pp) => super::refuse_under_change(&pp),
                None => DomainError::not_found("ProvisionedProduct", &plan.provisioned_product_id),
            }),
        }
    }

    /// The approvers of `plan`, if it needs approval.
    async fn approvers(&self, plan: &Plan) -> Result<Vec<Approver>, DomainError> {
        let Some(approval) = approval_of(plan)? else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for approver in approval.approvers {
            let principal_name = match (approver.id, approver.pattern) {
                (Some(id), _) => self.store.principal_by_id(&approver.principal_type, &id).await?.map_or(id, |p| p.name),
                (None, Some(pattern)) => pattern,
                (None, None) => continue,
            };
            out.push(Approver { principal_name, principal_type: approver.principal_type });
        }
        Ok(out)
    }

    /// The plan `id` with its approvers and operation records, if the caller may see it.
    pub async fn plan(&self, principal: &Principal, id: &str) -> Result<PlanView, DomainError> {
        let (plan, _) = self.visible_plan(principal, id).await?;
        let approvers = self.approvers(&plan).await?;
        let records = self.store.plan_records(&plan.plan_id).await?;
        Ok(PlanView { plan, approvers, records })
    }

    /// A page of the plans `filter` selects, each with its approvers, and how many there are.
    pub async fn plans(
        &self,
        principal: &Principal,
        filter: PlanFilter,
        order: SortOrder,
        page: Page,
    ) -> Result<(Vec<(Plan, Vec<Approver>)>, i64), DomainError> {
        let mut query = PlanQuery {
            provisioned_product_id: filter.provisioned_product_id,
            name: filter.name,
            full_text: filter.full_text,
            statuses: filter.statuses,
            ..PlanQuery::default()
        };
        let mut decided_by_caller = None;
        match filter.scope {
            PlanScope::Own => query.owner_principal_id = Some(principal.principal_id.clone()),
            PlanScope::Account => administrators_only(
                principal,
                "ListProvisionedProductPlans",
                "AccessLevelFilter=Account is allowed to administrators only.".into(),
            )?,
            PlanScope::ReceivedRequests => {
                query.needs_approval = true;
                query.statuses = vec![PlanStatus::ApplicationInProgress];
            }
            PlanScope::ApprovalHistory => decided_by_caller = Some(self.store.plans_decided_by(&principal.principal_id).await?),
            PlanScope::AccountRequests => {
                administrators_only(
                    principal,
                    "ListProvisionedProductPlans",
                    "ApprovalFilter=AccountRequests is allowed to administrators only.".into(),
                )?;
                query.needs_approval = true;
            }
        }
        let mut matched = Vec::new();
        if filter.owner_uids.iter().all(|uid| uid == self.account_id) {
            for plan in self.store.list_plans(&query, order).await? {
                if decided_by_caller.as_ref().is_some_and(|ids| !ids.iter().any(|id| plan.plan_id == **id)) {
                    continue;
                }
                if filter.scope == PlanScope::ReceivedRequests {
                    let Some(approval) = approval_of(&plan)? else { continue };
                    if !self.is_approver(principal, &approval).await? {
                        continue;
                    }
                }
                let approvers = self.approvers(&plan).await?;
                let key = |a: &Approver| format!("{}:{}", a.principal_type, a.principal_name);
                if !filter.approvers.is_empty() && !approvers.iter().any(|a| filter.approvers.contains(&key(a))) {
                    continue;
                }
                if !filter.approver_names.is_empty() && !approvers.iter().any(|a| named(&filter.approver_names, &a.principal_name)) {
                    continue;
                }
                matched.push((plan, approvers));
            }
        }
        let total = matched.len() as i64;
        let skip = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        Ok((matched.into_iter().skip(skip).take(usize::try_from(page.size).unwrap_or(0)).collect(), total))
    }

    /// The approvers of the plans that need approval: of the caller's, or of everyone's
    /// (`account`, administrators only); with a name containing one of `names`, if any.
    pub async fn plan_approvers(&self, principal: &Principal, account: bool, names: &[String]) -> Result<Vec<Approver>, DomainError> {
        let mut query = PlanQuery { needs_approval: true, ..PlanQuery::default() };
        if account {
            administrators_only(
                principal,
                "ListProvisionedProductPlanApprovers",
                "Listing the approvers of every plan is allowed to administrators only.".into(),
            )?;
        } else {
            query.owner_principal_id = Some(principal.principal_id.clone());
        }
        let mut approvers: Vec<Approver> = Vec::new();
        for plan in self.store.list_plans(&query, SortOrder::Asc).await? {
            for approver in self.approvers(&plan).await? {
                if named(names, &approver.principal_name) && !approvers.contains(&approver) {
                    approvers.push(approver);
                }
            }
        }
        Ok(approvers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PlanOperation::*;
    use PlanStatus::*;

    #[test]
    fn the_status_machine_follows_preview_approval_and_execution() {
        assert_eq!(PlanStatus::after_preview(false), PreviewSuccess);
        assert_eq!(PlanStatus::after_preview(true), ApplicationInProgress);
        // Without approval: executable once previewed.
        assert!(allows(PreviewSuccess, Execute, false));
        assert!(!allows(PreviewInProgress, Execute, false));
        assert!(!allows(PreviewFailed, Execute, false));
        // With approval: only once approved.
        assert!(!allows(PreviewSuccess, Execute, true));
        assert!(!allows(ApplicationInProgress, Execute, true));
        assert!(allows(ApplicationApproved, Execute, true));
        assert!(allows(ApplicationInProgress, Decide, true));
        assert!(!allows(ApplicationApproved, Decide, true));
        // Cancelled and rejected plans are final.
        for done in [Canceled, ApplicationRejected, ExecuteSuccess, ExecuteFailed] {
            for op in [Update, Execute, Cancel, Decide] {
                assert!(!allows(done, op, true) && !allows(done, op, false), "{done} allows {op:?}");
            }
            assert!(allows(done, Delete, false));
        }
        // A running preview or execution cannot be deleted; a preview can be cancelled.
        assert!(!allows(PreviewInProgress, Delete, false) && !allows(ExecuteInProgress, Delete, false));
        assert!(allows(PreviewInProgress, Cancel, false) && !allows(ExecuteInProgress, Cancel, false));
        assert!(!allows(PreviewInProgress, Update, false) && allows(ApplicationApproved, Update, true));
    }
}
