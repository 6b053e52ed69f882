//! The one place that queues tasks: launch, update and terminate, and the execution of a plan,
//! each validated ([`super::resolve`]), written with its task in one transaction, and announced
//! to the engine. Front ends (the API, the console) and, next, schedulers call these.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    pairs, parameters_from_json, parameters_json, resolve, same_parameters, stored, tag_pairs, tags_from_json, tags_json, Change,
    ChangeRequest, Parameter, Tag,
};
use crate::auth::secrets::SecretBox;
use crate::catalog::constraint::{ConstraintConfig, Remediation};
use crate::catalog::error::{administrators_only, DomainError};
use crate::catalog::parameters::{ParameterConstraint, MASK};
use crate::catalog::version::launchable_version;
use crate::engine::Engine;
use crate::model::{OperationType, ProvisionedProductId, ProvisionedProductStatus, Region, ScheduleKind, TaskId, TaskStatus, UpdatePolicy};
use crate::store::audit::{AuditEvent, Scheduled};
use crate::store::campaign::CampaignClaim;
use crate::store::dependency::{references_from_json, references_json};
use crate::store::expiry::ExpiryTermination;
use crate::store::plan::{ExecutionRefusal, Plan};
use crate::store::principal::Principal;
use crate::store::provisioning::{ChangeRefusal, NameHolder, ProvisionedProduct, ProvisionedProductQuery, Task};
use crate::store::{now_ms, Page, SortOrder, Store};

/// What a provisioning operation needs from the node.
pub struct Provisioner<'a> {
    /// Persistence.
    pub store: &'a Store,
    /// Seals the parameters tasks keep.
    pub secrets: &'a SecretBox,
    /// The regions this service offers.
    pub regions: &'a [Region],
    /// The account this service serves.
    pub account_id: &'a str,
    /// Woken when a task is queued.
    pub engine: &'a Engine,
    /// What the scheduler writes with each task or plan it queues through these operations, in
    /// the transaction that queues it: its audit record (the job's id added to its request id)
    /// and the drift check it remediates; `None` for front ends, whose request pipeline records
    /// the call.
    pub scheduled: Option<Scheduled>,
}

/// A queued task and the provisioned product it changes (serialized as the API answers them).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Queued {
    pub provisioned_product_id: ProvisionedProductId,
    pub task_id: TaskId,
}

/// `LaunchProduct`'s request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Launch {
    pub product_id: String,
    pub product_version_id: String,
    pub provisioned_product_name: String,
    pub stack_region_id: String,
    pub portfolio_id: Option<String>,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Extension: when the provisioned product expires (`2026-01-31T12:00:00Z`); without it, its
    /// `Expiry` constraint's default lifetime applies, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
    /// Extension: what updates the provisioned product besides its owner (default `Manual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<UpdatePolicy>,
}

/// `UpdateProvisionedProduct`'s request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Update {
    pub provisioned_product_id: String,
    pub product_id: String,
    pub product_version_id: String,
    pub portfolio_id: Option<String>,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// An update or terminate of a provisioned product, as asked.
pub(super) struct ProductChange {
    pub operation: OperationType,
    pub version_id: String,
    /// The portfolio to go through (the provisioned product's when absent).
    pub portfolio_id: Option<String>,
    /// The parameters the given ones are merged over: a plan's, or the provisioned product's own
    /// when absent (then an update that changes nothing of them is refused).
    pub previous: Option<Vec<(String, String)>>,
    pub given: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

impl ProductChange {
    /// `operation` of `pp` with its own version and parameters (a terminate, a drift check).
    fn as_it_is(operation: OperationType, pp: &ProvisionedProduct) -> Self {
        ProductChange {
            operation,
            version_id: pp.product_version_id.clone(),
            portfolio_id: None,
            previous: None,
            given: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// An update of `pp` to `version_id` with its own parameters (what upgrades run).
    pub(super) fn upgrading(pp: &ProvisionedProduct, version_id: &str) -> Self {
        ProductChange { version_id: version_id.to_string(), ..ProductChange::as_it_is(OperationType::UpdateProvisionedProduct, pp) }
    }
}

/// Where a task runs: its provisioned product, by id, name and region.
struct Target<'a> {
    id: &'a ProvisionedProductId,
    name: &'a str,
    region: &'a str,
}

/// The task row of `change` on `target`, queued; its parameters as sealed.
fn task(target: &Target<'_>, change: &Change, parameters_sealed: String) -> Task {
    let now = now_ms();
    Task {
        task_id: TaskId::new(),
        task_type: change.operation,
        provisioned_product_id: target.id.clone(),
        provisioned_product_name: target.name.to_string(),
        product_id: change.product_id.clone(),
        product_name: change.product_name.clone(),
        product_version_id: change.version_id.clone(),
        product_version_name: change.version_name.clone(),
        portfolio_id: change.portfolio_id.clone(),
        stack_region_id: target.region.to_string(),
        parameters_sealed,
        sensitive_parameters: json!(change.sensitive).to_string(),
        task_tags: tags_json(&change.task_tags),
        launch_role: change.launch_role.clone(),
        outputs: "[]".into(),
        status: TaskStatus::InProgress,
        status_message: String::new(),
        created_at: now,
        updated_at: now,
        parameter_references: references_json(&change.references),
    }
}

/// Longest `ProvisionedProductName`.
const MAX_NAME_CHARS: usize = 128;

/// The refusal of `name` for a new provisioned product, which `holder` holds.
pub(super) fn name_taken(name: &str, holder: &NameHolder) -> DomainError {
    let why = match holder {
        NameHolder::ProvisionedProduct(_) => format!("You already have a provisioned product named {name:?}; choose another name."),
        NameHolder::Plan(plan_id) => format!("Your launch plan {plan_id} reserves the name {name:?}; choose another name."),
    };
    DomainError::invalid_parameter("ProvisionedProductName", why)
}

impl<'a> Provisioner<'a> {
    /// The live provisioned product `id`, if `principal` may see it.
    pub async fn visible(&self, principal: &Principal, id: &str) -> Result<ProvisionedProduct, DomainError> {
        let pp = self.store.provisioned_product(id).await?.ok_or_else(|| DomainError::not_found("ProvisionedProduct", id))?;
        super::check_owner(principal, &pp)?;
        Ok(pp)
    }

    /// Live provisioned products: the caller's own, or (`account`, administrators only) every
    /// user's; by exact name, a substring of it, or drift status (`filters`, whose owner is set here).
    pub async fn list(
        &self,
        principal: &Principal,
        account: bool,
        filters: ProvisionedProductQuery,
        order: SortOrder,
        page: Page,
    ) -> Result<(Vec<ProvisionedProduct>, i64), DomainError> {
        if account {
            administrators_only(
                principal,
                "ListProvisionedProducts",
                "AccessLevelFilter=Account lists every user's provisioned products and is allowed to administrators only.".into(),
            )?;
        }
        let query = ProvisionedProductQuery { owner_principal_id: (!account).then(|| principal.principal_id.clone()), ..filters };
        Ok(self.store.list_provisioned_products(&query, order, page).await?)
    }

    /// The parameters sealed in a task or plan, the sensitive ones (`sensitive_json`, a JSON
    /// array of names) masked.
    pub fn masked(&self, parameters_sealed: &str, sensitive_json: &str) -> Vec<Parameter> {
        let sensitive: Vec<String> = stored(sensitive_json);
        let parameters: Vec<Parameter> = self.secrets.open(parameters_sealed).map(|p| stored(&p)).unwrap_or_default();
        parameters
            .into_iter()
            .map(|p| match sensitive.contains(&p.parameter_key) {
                true => Parameter { parameter_value: MASK.to_string(), ..p },
                false => p,
            })
            .collect()
    }

    /// The parameters of a version as a change through `portfolio_id` may set them: narrowed by
    /// the (product, portfolio)'s `Template` constraints.
    pub async fn constrained(
        &self,
        product_id: &str,
        portfolio_id: &str,
        mut parameters: Vec<ParameterConstraint>,
    ) -> Result<Vec<ParameterConstraint>, DomainError> {
        for config in crate::catalog::constraint::configs(self.store, portfolio_id, product_id).await? {
            if let ConstraintConfig::Template(c) = config {
                crate::catalog::parameters::apply_template_constraint(&mut parameters, &c);
            }
        }
        Ok(parameters)
    }

    /// The parameters `pp` last applied.
    pub fn parameters_of(&self, pp: &ProvisionedProduct) -> Vec<(String, String)> {
        self.secrets.open(&pp.parameters_sealed).map(|p| parameters_from_json(&p)).unwrap_or_default()
    }

    /// Refuses the name of a new provisioned product that is too long, or that one of the caller's
    /// live provisioned products has, or that a launch plan of theirs reserves (names are unique
    /// per owner, case-insensitively, among what is not terminated). The store claims the name
    /// again when it writes the launch or the plan, so that two requests cannot both take it.
    pub(super) async fn check_new_name(&self, principal: &Principal, name: &str) -> Result<(), DomainError> {
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(DomainError::invalid_parameter(
                "ProvisionedProductName",
                format!("The parameter ProvisionedProductName must be at most {MAX_NAME_CHARS} characters long."),
            ));
        }
        match self.store.name_holder(&principal.principal_id, name).await? {
            Some(holder) => Err(name_taken(name, &holder)),
            None => Ok(()),
        }
    }

    /// Launches a product: a new provisioned product and its task, and its expiry (asked for, or
    /// its `Expiry` constraint's default) scheduled.
    pub async fn launch(&self, principal: &Principal, req: Launch) -> Result<Queued, DomainError> {
        self.check_new_name(principal, &req.provisioned_product_name).await?;
        let asked = super::expiry::parse_expiry_time(req.expiry_time.as_deref())?;
        let given = self.dereference(principal, None, pairs(req.parameters)).await?;
        let request = ChangeRequest {
            principal,
            operation: OperationType::LaunchProduct,
            product_id: &req.product_id,
            version_id: &req.product_version_id,
            portfolio_id: req.portfolio_id.as_deref(),
            region: &req.stack_region_id,
            parameters: given.parameters,
            tags: tag_pairs(req.tags),
            references: given.references,
        };
        let change = resolve(self.store, self.regions, request).await?.direct()?;
        let policy = super::expiry::expiry_policy(self.store, &change.portfolio_id, &change.product_id).await?;
        let id = ProvisionedProductId::new();
        let target = Target { id: &id, name: &req.provisioned_product_name, region: &req.stack_region_id };
        let task = task(&target, &change, self.seal(&change));
        let mut pp =
            ProvisionedProduct::launched(&task, &principal.principal_id, &principal.principal_type, uuid::Uuid::new_v4().to_string());
        pp.expires_at = super::expiry::launch_expiry(principal, policy.as_ref(), asked, task.created_at)?;
        pp.update_policy = req.update_policy.unwrap_or(UpdatePolicy::Manual);
        if let Some(holder) = self.store.create_launch(&pp, &task).await? {
            return Err(name_taken(&req.provisioned_product_name, &holder));
        }
        if pp.expires_at.is_some() {
            // Due now: the job works out when to warn and expire (each node's scheduler also
            // schedules expiring products it finds without a job).
            self.store.schedule(ScheduleKind::Expiry, &id, 0, 0).await?;
        }
        self.engine.task_queued().await;
        Ok(Queued { provisioned_product_id: id, task_id: task.task_id })
    }

    /// Updates a provisioned product to a version and parameters (merged over its own).
    pub async fn update(&self, principal: &Principal, req: Update) -> Result<Queued, DomainError> {
        let pp = self.visible(principal, &req.provisioned_product_id).await?;
        if pp.status == ProvisionedProductStatus::UnderChange {
            return Err(super::refuse_under_change(&pp));
        }
        super::check_product(&pp, &req.product_id)?;
        let asked = ProductChange {
            operation: OperationType::UpdateProvisionedProduct,
            version_id: req.product_version_id,
            portfolio_id: req.portfolio_id,
            previous: None,
            given: pairs(req.parameters),
            tags: tag_pairs(req.tags),
        };
        let change = self.on_product(principal, &pp, asked).await?;
        let sealed = self.seal(&change);
        self.change(&pp, change.direct()?, sealed, None).await
    }

    /// Terminates a provisioned product (its owner can always remove what they launched),
    /// unless others read its outputs and it is not `force`d.
    pub async fn terminate(&self, principal: &Principal, id: &str, force: bool) -> Result<Queued, DomainError> {
        let pp = self.visible(principal, id).await?;
        self.check_no_dependents(&pp, force).await?;
        let asked = ProductChange::as_it_is(OperationType::TerminateProvisionedProduct, &pp);
        let change = self.on_product(principal, &pp, asked).await?.direct()?;
        self.change(&pp, change, pp.parameters_sealed.clone(), None).await
    }

    /// Terminates an expired provisioned product on behalf of its `owner`. An `Approval`
    /// constraint covering terminates does not hold it: the administrator who set the `Expiry`
    /// constraint approved its terminates in advance.
    pub async fn expire(&self, owner: &Principal, pp: &ProvisionedProduct, expiry: ExpiryTermination) -> Result<Queued, DomainError> {
        let asked = ProductChange::as_it_is(OperationType::TerminateProvisionedProduct, pp);
        let change = Change { approval: None, ..self.on_product(owner, pp, asked).await? };
        self.change(pp, change, pp.parameters_sealed.clone(), Some(expiry)).await
    }

    /// An update of `pp` to what it is: its version and parameters, through its own portfolio.
    pub(super) fn reapplying(&self, pp: &ProvisionedProduct) -> ProductChange {
        ProductChange { previous: Some(self.parameters_of(pp)), ..ProductChange::as_it_is(OperationType::UpdateProvisionedProduct, pp) }
    }

    /// Validates an update or terminate of `pp` (which must not be `UnderChange`). A terminate
    /// needs no launch option: it runs the product's own version and parameters.
    pub(super) async fn on_product(
        &self,
        principal: &Principal,
        pp: &ProvisionedProduct,
        req: ProductChange,
    ) -> Result<Change, DomainError> {
        if pp.status == ProvisionedProductStatus::UnderChange {
            return Err(super::refuse_under_change(pp));
        }
        let own = req.previous.is_none();
        let previous = req.previous.unwrap_or_else(|| self.parameters_of(pp));
        // A terminate and a drift check run the product's own version and parameters.
        if matches!(req.operation, OperationType::TerminateProvisionedProduct | OperationType::DetectProvisionedProductDrift) {
            let store = self.store;
            return Ok(Change {
                operation: req.operation,
                portfolio_id: pp.portfolio_id.clone(),
                product_id: pp.product_id.clone(),
                product_name: pp.product_name.clone(),
                version_id: pp.product_version_id.clone(),
                version_name: pp.product_version_name.clone(),
                parameters: previous,
                sensitive: super::sensitive_parameters(store, &pp.product_version_id).await?,
                tags: Vec::new(),
                task_tags: Vec::new(),
                launch_role: crate::catalog::constraint::launch_role_for(store, &pp.portfolio_id, &pp.product_id).await?,
                approval: super::approval_for(store, &pp.portfolio_id, &pp.product_id, req.operation).await?,
                references: Vec::new(),
            });
        }
        let version = launchable_version(self.store, &pp.product_id, &req.version_id).await?;
        if req.version_id != pp.product_version_id {
            super::refuse_deprecated(&version.version)?;
        }
        // A parameter not given keeps its references: they are resolved again.
        let mut given = req.given;
        for kept in self.references_of(pp).await? {
            if !given.iter().any(|(k, _)| *k == kept.parameter_key) && version.parameters.iter().any(|p| p.name == kept.parameter_key) {
                given.push((kept.parameter_key, kept.parameter_value));
            }
        }
        let given = self.dereference(principal, Some(&pp.provisioned_product_id), given).await?;
        let portfolio = req.portfolio_id.unwrap_or_else(|| pp.portfolio_id.clone());
        let request = ChangeRequest {
            principal,
            operation: req.operation,
            product_id: &pp.product_id,
            version_id: &req.version_id,
            portfolio_id: Some(&portfolio),
            region: &pp.stack_region_id,
            parameters: super::merge_parameters(&previous, &given.parameters, &version.parameters),
            tags: req.tags,
            references: given.references,
        };
        let change = resolve(self.store, self.regions, request).await?;
        // A product in Error may be re-applied as it is (to retry an interrupted or failed task).
        if own
            && pp.status != ProvisionedProductStatus::Error
            && change.version_id == pp.product_version_id
            && same_parameters(&change.parameters, &previous)
        {
            return Err(DomainError::invalid_parameter(
                "Parameters",
                "The update changes neither the product version nor any parameter; there is nothing to do.",
            ));
        }
        Ok(change)
    }

    /// Queues a drift check of `pp` for `principal` (its owner, an administrator, or the
    /// scheduler on the owner's behalf), which re-applies it when it finds drift if `remediation`
    /// is `Reapply`; refused while `pp` is `UnderChange`.
    pub async fn detect_drift(
        &self,
        principal: &Principal,
        pp: &ProvisionedProduct,
        remediation: Remediation,
    ) -> Result<Queued, DomainError> {
        let asked = ProductChange::as_it_is(OperationType::DetectProvisionedProductDrift, pp);
        let change = self.on_product(principal, pp, asked).await?.direct()?;
        let target = Target { id: &pp.provisioned_product_id, name: &pp.provisioned_product_name, region: &pp.stack_region_id };
        let task = task(&target, &change, pp.parameters_sealed.clone());
        if !self.store.start_drift_check(&task, remediation, self.scheduled.as_ref()).await? {
            return Err(super::refuse_under_change(pp));
        }
        self.engine.task_queued().await;
        Ok(Queued { provisioned_product_id: task.provisioned_product_id, task_id: task.task_id })
    }

    /// Re-applies `pp` as it is (its version and parameters) for `principal`: an
    /// `UpdateProvisionedProduct` that may change nothing of them, through its own portfolio.
    pub async fn reapply(&self, principal: &Principal, pp: &ProvisionedProduct) -> Result<Queued, DomainError> {
        let change = self.on_product(principal, pp, self.reapplying(pp)).await?;
        let sealed = self.seal(&change);
        self.change(pp, change.direct()?, sealed, None).await
    }

    /// Updates `pp` to `version_id` with its own parameters for `principal` (its owner, on whose
    /// behalf the scheduler follows its product's `Recommended` version).
    pub async fn upgrade(&self, principal: &Principal, pp: &ProvisionedProduct, version_id: &str) -> Result<Queued, DomainError> {
        let change = self.on_product(principal, pp, ProductChange::upgrading(pp, version_id)).await?;
        let sealed = self.seal(&change);
        self.change(pp, change.direct()?, sealed, None).await
    }

    /// The same operations, each task or plan they queue audited with `record`, written in the
    /// transaction that queues it.
    pub fn audited(&self, record: AuditEvent) -> Provisioner<'a> {
        Provisioner { scheduled: Some(record.into()), ..*self }
    }

    /// The same operations as the remediation of the drift check `check`, audited with `record`:
    /// the task or plan they queue is linked to the check in the transaction that queues it.
    pub fn remedying(&self, check: &TaskId, record: AuditEvent) -> Provisioner<'a> {
        Provisioner { scheduled: Some(Scheduled { audit: record, remedies: Some(check.clone()) }), ..*self }
    }

    /// Queues `change` of `pp` with its parameters `sealed`, unless `pp` went `UnderChange`
    /// meanwhile (or, for the first terminate of its `expiry`, its expiry queued one already).
    async fn change(
        &self,
        pp: &ProvisionedProduct,
        change: Change,
        sealed: String,
        expiry: Option<ExpiryTermination>,
    ) -> Result<Queued, DomainError> {
        let target = Target { id: &pp.provisioned_product_id, name: &pp.provisioned_product_name, region: &pp.stack_region_id };
        let task = task(&target, &change, sealed);
        let started = match expiry {
            Some(expiry) => self.store.start_expiry_termination(&task, pp, expiry, self.scheduled.as_ref()).await?,
            None => self.store.start_change(&task, self.scheduled.as_ref()).await?,
        };
        match started {
            Ok(()) => {}
            Err(ChangeRefusal::UnderChange | ChangeRefusal::ExpiryQueued) => return Err(super::refuse_under_change(pp)),
            Err(ChangeRefusal::Cycle) => return Err(super::dependency::cycle_formed(&pp.provisioned_product_id)),
        }
        self.engine.task_queued().await;
        Ok(Queued { provisioned_product_id: task.provisioned_product_id, task_id: task.task_id })
    }

    /// Queues the task of a plan ready to execute (its status and approval checked by the
    /// caller), moving the plan to `ExecuteInProgress` (and making an upgrade campaign's `claim`)
    /// in the same transaction.
    pub(super) async fn queue_plan(
        &self,
        plan: &Plan,
        claim: Option<&CampaignClaim>,
    ) -> Result<Result<Queued, ExecutionRefusal>, DomainError> {
        let version = self
            .store
            .product_version(&plan.product_version_id)
            .await?
            .ok_or_else(|| DomainError::not_found("ProductVersion", &plan.product_version_id))?;
        let change = Change {
            operation: plan.operation_type,
            portfolio_id: plan.portfolio_id.clone(),
            product_id: plan.product_id.clone(),
            product_name: plan.product_name.clone(),
            version_id: plan.product_version_id.clone(),
            version_name: version.product_version_name,
            parameters: Vec::new(),
            sensitive: serde_json::from_str(&plan.sensitive_parameters).unwrap_or_default(),
            tags: Vec::new(),
            task_tags: tags_from_json(&plan.task_tags),
            launch_role: plan.launch_role.clone(),
            approval: None,
            references: references_from_json(&plan.parameter_references),
        };
        let target = Target { id: &plan.provisioned_product_id, name: &plan.provisioned_product_name, region: &plan.stack_region_id };
        let task = task(&target, &change, plan.parameters_sealed.clone());
        let mut launch = (plan.operation_type == OperationType::LaunchProduct)
            .then(|| ProvisionedProduct::launched(&task, &plan.owner_principal_id, &plan.owner_principal_type, plan.stack_id.clone()));
        if let Some(pp) = &mut launch {
            // A plan's launch gets its Expiry constraint's default lifetime.
            let policy = super::expiry::expiry_policy(self.store, &plan.portfolio_id, &plan.product_id).await?;
            pp.expires_at = policy.map(|p| task.created_at + p.default_ms());
        }
        if let Err(refusal) =
            self.store.start_plan_execution(plan, plan.status, launch.as_ref(), &task, claim, self.scheduled.as_ref()).await?
        {
            return Ok(Err(refusal));
        }
        if launch.as_ref().is_some_and(|pp| pp.expires_at.is_some()) {
            self.store.schedule(ScheduleKind::Expiry, &task.provisioned_product_id, 0, 0).await?;
        }
        self.engine.task_queued().await;
        Ok(Ok(Queued { provisioned_product_id: task.provisioned_product_id, task_id: task.task_id }))
    }

    /// The change's parameters, sealed as tasks and plans keep them.
    pub fn seal(&self, change: &Change) -> String {
        self.secrets.seal(&parameters_json(&change.parameters))
    }
}
