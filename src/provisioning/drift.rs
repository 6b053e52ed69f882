//! Drift detection's rules: who may check a provisioned product for drift (as who may update
//! it: its owner or an administrator), which remediation a check carries (the `Drift` constraint
//! of its product and portfolio), a check's history as callers read it, and the remediation a
//! check that found drift asks for, carried out on behalf of the owner through the one queueing
//! place: a re-apply, or an update plan executed once approved.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::queue::{Provisioner, Queued};
use super::schedule::on_behalf;
use crate::catalog::constraint::{ConstraintConfig, DriftConfig, Remediation};
use crate::catalog::error::DomainError;
use crate::catalog::wire::{format_time, Paged, Paging};
use crate::model::{DriftStatus, PlanId, ProvisionedProductStatus, TaskId};
use crate::store::audit::AuditEvent;
use crate::store::drift::{DriftCheck, DriftedResource};
use crate::store::principal::Principal;
use crate::store::provisioning::ProvisionedProduct;
use crate::store::{now_ms, Store};

/// `DetectProvisionedProductDrift`'s request (an extension).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DetectDrift {
    pub provisioned_product_id: String,
}

/// `ListProvisionedProductDriftChecks`' request (an extension).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListDriftChecks {
    pub provisioned_product_id: String,
    #[serde(flatten)]
    pub paging: Paging,
}

/// One drift check as `ListProvisionedProductDriftChecks` answers it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DriftCheckDetail {
    pub task_id: TaskId,
    /// `NeverChecked` while the check runs.
    pub drift_status: DriftStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_time: Option<String>,
    pub drifted_resources: Vec<DriftedResource>,
    /// Why the check failed, or why its remediation was not queued.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub remediation: Remediation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation_task_id: Option<TaskId>,
    /// The update plan of a `ReapplyWithApproval` remediation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation_plan_id: Option<PlanId>,
}

/// `ListProvisionedProductDriftChecks`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DriftChecks {
    #[serde(flatten)]
    pub page: Paged,
    pub drift_checks: Vec<DriftCheckDetail>,
}

impl From<DriftCheck> for DriftCheckDetail {
    fn from(check: DriftCheck) -> Self {
        DriftCheckDetail {
            task_id: check.task_id,
            drift_status: check.drift_status,
            checked_time: (check.checked_at > 0).then(|| format_time(check.checked_at)),
            drifted_resources: serde_json::from_str(&check.resources).unwrap_or_default(),
            message: check.message,
            remediation: check.remediation,
            remediation_task_id: check.remediation_task_id,
            remediation_plan_id: check.remediation_plan_id,
        }
    }
}

/// The `Drift` constraint of a (portfolio, product) pair, if it has one.
pub async fn drift_policy(store: &Store, portfolio_id: &str, product_id: &str) -> Result<Option<DriftConfig>, DomainError> {
    Ok(crate::catalog::constraint::configs(store, portfolio_id, product_id).await?.into_iter().find_map(|c| match c {
        ConstraintConfig::Drift(c) => Some(c),
        _ => None,
    }))
}

/// The message of a remediation not carried out because its provisioned product is gone.
const GONE: &str = "The provisioned product was terminated before its remediation was carried out.";

impl Provisioner<'_> {
    /// `DetectProvisionedProductDrift`: queues a drift check of a provisioned product the caller
    /// may update, with the remediation its `Drift` constraint sets (none without one).
    pub async fn detect(&self, principal: &Principal, req: DetectDrift) -> Result<Queued, DomainError> {
        let pp = self.visible(principal, &req.provisioned_product_id).await?;
        let remediation = drift_policy(self.store, &pp.portfolio_id, &pp.product_id).await?.map_or(Remediation::None, |p| p.remediation);
        self.detect_drift(principal, &pp, remediation).await
    }

    /// `ListProvisionedProductDriftChecks`: a provisioned product's drift checks, newest first
    /// (one still running first of all), with the resources each found.
    pub async fn drift_checks(&self, principal: &Principal, req: ListDriftChecks) -> Result<DriftChecks, DomainError> {
        let pp = self.visible(principal, &req.provisioned_product_id).await?;
        let (checks, total) = self.store.drift_checks(&pp.provisioned_product_id, req.paging.page()).await?;
        Ok(DriftChecks { page: req.paging.answer(total), drift_checks: checks.into_iter().map(DriftCheckDetail::from).collect() })
    }

    /// Carries out the remediation of each check that found drift and asked for one, on behalf of
    /// the provisioned product's owner: a `Reapply` queues an update, a `ReapplyWithApproval`
    /// creates an update plan, and an approved remediation plan is executed. A product that is
    /// busy waits for the next round. An update, plan or execution is audited (`system`, the
    /// request id naming `node`) and recorded on its check (once only, whichever nodes try) in
    /// the transaction that queues it. Returns what was done.
    pub async fn remediate(&self, node: &str) -> Result<Vec<Remediated>, DomainError> {
        let mut done = Vec::new();
        let now = now_ms();
        for check in self.store.pending_remediations(now).await? {
            let Some(pp) = self.store.provisioned_product(&check.provisioned_product_id).await? else {
                self.store.settle_remediation(&check.task_id, GONE, now).await?;
                continue;
            };
            if pp.status == ProvisionedProductStatus::UnderChange {
                continue;
            }
            // Claimed first, so that of the nodes seeing it pending only one carries it out.
            if !self.store.claim_remediation(&check.task_id, now).await? {
                continue;
            }
            let outcome = match self.owner(&pp).await? {
                Some(owner) if check.remediation == Remediation::ReapplyWithApproval => {
                    let audit = remediation_record(node, "CreateProvisionedProductPlan", &pp, &check.task_id, None);
                    let remedying = self.remedying(&check.task_id, audit);
                    remedying.remediation_plan(&owner, &pp, &check.task_id).await.map(|plan| Made::Plan(plan.plan_id))
                }
                Some(owner) => {
                    let audit = remediation_record(node, "UpdateProvisionedProduct", &pp, &check.task_id, None);
                    self.remedying(&check.task_id, audit).reapply(&owner, &pp).await.map(Made::Update)
                }
                None => Err(DomainError::not_found("Principal", &pp.owner_principal_id)),
            };
            done.extend(self.record(check.task_id, now, outcome, "The remediation was not carried out").await?);
        }
        for check in self.store.approved_remediations(now).await? {
            let Some(plan_id) = check.remediation_plan_id.clone() else { continue };
            let Some(pp) = self.store.provisioned_product(&check.provisioned_product_id).await? else {
                self.store.settle_remediation(&check.task_id, GONE, now).await?;
                continue;
            };
            if pp.status == ProvisionedProductStatus::UnderChange || !self.store.claim_remediation(&check.task_id, now).await? {
                continue;
            }
            let outcome = match self.owner(&pp).await? {
                Some(owner) => {
                    let audit = remediation_record(node, "ExecuteProvisionedProductPlan", &pp, &check.task_id, Some(&plan_id));
                    self.remedying(&check.task_id, audit).execute(&owner, &plan_id).await.map(|update| Made::Execution { plan_id, update })
                }
                None => Err(DomainError::not_found("Principal", &pp.owner_principal_id)),
            };
            done.extend(self.record(check.task_id, now, outcome, "The approved remediation plan was not executed").await?);
        }
        Ok(done)
    }

    /// What the remediation of `check`, claimed at `claimed` (ms), made; or, recorded on the
    /// check, why it made nothing. What it made was recorded on the check as it was queued.
    async fn record(
        &self,
        check: TaskId,
        claimed: i64,
        outcome: Result<Made, DomainError>,
        failed: &str,
    ) -> Result<Option<Remediated>, DomainError> {
        match outcome {
            Ok(made) => Ok(Some(Remediated { check, made })),
            Err(e) => {
                self.store.fail_remediation(&check, claimed, &format!("{failed}: {e}")).await?;
                Ok(None)
            }
        }
    }

    /// The owner of `pp`, as the scheduler acts for them; `None` when they were deleted.
    pub async fn owner(&self, pp: &ProvisionedProduct) -> Result<Option<Principal>, DomainError> {
        Ok(self.store.principal_by_id(&pp.owner_principal_type, &pp.owner_principal_id).await?)
    }
}

/// What a drift check's remediation made.
#[derive(Debug, Clone)]
pub enum Made {
    /// The update of a `Reapply`.
    Update(Queued),
    /// The update plan of a `ReapplyWithApproval`, waiting for its approval.
    Plan(PlanId),
    /// The update of an approved remediation plan.
    Execution { plan_id: PlanId, update: Queued },
}

/// A remediation carried out.
#[derive(Debug, Clone)]
pub struct Remediated {
    /// The check that asked for it.
    pub check: TaskId,
    pub made: Made,
}

/// The audit record of `action`, a remediation of `pp` that its drift `check` asked for, by the
/// scheduler on `node` (the record of an execution names its `plan`).
fn remediation_record(node: &str, action: &str, pp: &ProvisionedProduct, check: &TaskId, plan: Option<&PlanId>) -> AuditEvent {
    let mut extra = json!({"DriftCheckTaskId": check});
    if let Some(plan) = plan {
        extra["PlanId"] = json!(plan);
    }
    on_behalf(node.to_string(), action, &pp.provisioned_product_id, &pp.owner_principal_id, extra)
}
