//! Drift detection's rules: who may check a provisioned product for drift (as who may update
//! it: its owner or an administrator), which remediation a check carries (the `Drift` constraint
//! of its product and portfolio), a check's history as callers read it, and the re-apply a check
//! that found drift asks for, queued on behalf of the owner through the one queueing place.

use serde::{Deserialize, Serialize};

use super::queue::{Provisioner, Queued};
use crate::catalog::constraint::{ConstraintConfig, DriftConfig, Remediation};
use crate::catalog::error::DomainError;
use crate::catalog::wire::{format_time, Paged, Paging};
use crate::model::{DriftStatus, ProvisionedProductStatus, TaskId};
use crate::store::drift::{DriftCheck, DriftedResource};
use crate::store::principal::Principal;
use crate::store::provisioning::ProvisionedProduct;
use crate::store::Store;

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
    pub remediation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation_task_id: Option<TaskId>,
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

/// `StatusMessage` of a re-apply not queued because its provisioned product is gone.
const GONE: &str = "The provisioned product was terminated before its re-apply was queued.";

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

    /// Queues the re-apply of each check that found drift and asked for one, on behalf of the
    /// provisioned product's owner; one whose product is busy waits for the next round. Returns
    /// the re-applies queued, each with its check's task id and the owner's id.
    pub async fn remediate(&self) -> Result<Vec<(TaskId, Queued, String)>, DomainError> {
        let mut queued = Vec::new();
        for check in self.store.pending_remediations().await? {
            let Some(pp) = self.store.provisioned_product(&check.provisioned_product_id).await? else {
                self.store.settle_remediation(&check.task_id, GONE).await?;
                continue;
            };
            if pp.status == ProvisionedProductStatus::UnderChange {
                continue;
            }
            // Claimed first, so that of the nodes seeing it pending only one queues it.
            if !self.store.settle_remediation(&check.task_id, REAPPLYING).await? {
                continue;
            }
            let outcome = match self.owner(&pp).await? {
                Some(owner) => self.reapply(&owner, &pp).await,
                None => Err(DomainError::not_found("Principal", &pp.owner_principal_id)),
            };
            match outcome {
                Ok(update) => {
                    self.store.record_remediation(&check.task_id, Some(&update.task_id), "").await?;
                    queued.push((check.task_id, update, pp.owner_principal_id.clone()));
                }
                Err(e) => {
                    let message = format!("The re-apply was not queued: {e}");
                    self.store.record_remediation(&check.task_id, None, &message).await?;
                }
            }
        }
        Ok(queued)
    }

    /// The owner of `pp`, as the scheduler acts for them; `None` when they were deleted.
    pub async fn owner(&self, pp: &ProvisionedProduct) -> Result<Option<Principal>, DomainError> {
        Ok(self.store.principal_by_id(&pp.owner_principal_type, &pp.owner_principal_id).await?)
    }
}

/// The message of a check whose re-apply a node is queueing.
const REAPPLYING: &str = "Queueing the re-apply.";
