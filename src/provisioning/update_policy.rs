//! Update policies (an extension): what, besides its owner, updates a provisioned product.
//! `Manual` (the default): an administrator's upgrade campaign; `FollowRecommended`: also the
//! scheduler, to its product's `Recommended` version whenever that changes; `Pinned`: nothing
//! automatic, and campaigns skip it. `LaunchProduct` takes one; `UpdateProvisionedProductPolicy`
//! changes it (the owner or an administrator). The scheduler's `FollowRecommended` job
//! ([`Provisioner::follow_recommended`]) carries out the second.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::queue::{Provisioner, Queued};
use super::schedule::on_behalf;
use crate::catalog::error::DomainError;
use crate::model::{OperationType, ProvisionedProductId, TaskStatus, UpdatePolicy};
use crate::store::principal::Principal;
use crate::store::provisioning::ProvisionedProduct;

/// A product version's `Guidance` that `FollowRecommended` follows.
const RECOMMENDED: &str = "Recommended";

/// An update the scheduler queued to follow a product's `Recommended` version.
#[derive(Debug, Clone)]
pub struct Followed {
    /// The provisioned product, as it was.
    pub provisioned_product: ProvisionedProduct,
    /// Its update.
    pub queued: Queued,
    /// The version it is updated to.
    pub version_id: String,
}

/// `UpdateProvisionedProductPolicy`'s request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetUpdatePolicy {
    pub provisioned_product_id: String,
    pub update_policy: UpdatePolicy,
}

/// `UpdateProvisionedProductPolicy`'s answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdatePolicyAnswer {
    pub provisioned_product_id: ProvisionedProductId,
    pub update_policy: UpdatePolicy,
}

impl Provisioner<'_> {
    /// `UpdateProvisionedProductPolicy`: sets the update policy of a provisioned product the
    /// caller owns (or any, for an administrator), whatever its status: a task running now is
    /// not affected, the next automatic update follows the new policy.
    pub async fn update_policy(&self, principal: &Principal, req: SetUpdatePolicy) -> Result<UpdatePolicyAnswer, DomainError> {
        let pp = self.visible(principal, &req.provisioned_product_id).await?;
        if !self.store.set_update_policy(&pp.provisioned_product_id, req.update_policy).await? {
            return Err(DomainError::not_found("ProvisionedProduct", &pp.provisioned_product_id));
        }
        Ok(UpdatePolicyAnswer { provisioned_product_id: pp.provisioned_product_id, update_policy: req.update_policy })
    }

    /// Queues, on behalf of its owner, the update of each live provisioned product whose policy
    /// is `FollowRecommended` to its product's `Recommended` version (the newest active one, when
    /// several are), when it runs another version and no task holds it. One whose last task was
    /// a failed update to that version is left to its owner (no retry loop). Answers each update
    /// queued, each audited (`system`, the request id naming `node`) in the transaction that
    /// queues it. An update refused (an `Approval` constraint covers it, its parameters do not
    /// fit the version) is logged and tried again next time.
    pub async fn follow_recommended(&self, node: &str) -> Result<Vec<Followed>, DomainError> {
        let mut recommended: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
        let mut queued = Vec::new();
        for pp in self.store.provisioned_products_with_policy(UpdatePolicy::FollowRecommended).await? {
            if !recommended.contains_key(&pp.product_id) {
                let versions = self.store.product_versions(&pp.product_id, true).await?;
                let newest =
                    versions.into_iter().filter(|v| v.guidance == RECOMMENDED).max_by_key(|v| (v.created_at, v.product_version_id.clone()));
                recommended.insert(pp.product_id.clone(), newest.map(|v| v.product_version_id));
            }
            let Some(Some(target)) = recommended.get(&pp.product_id).cloned() else { continue };
            if pp.product_version_id == target || self.failed_to_reach(&pp, &target).await? {
                continue;
            }
            let Some(owner) = self.owner(&pp).await? else { continue };
            let extra = json!({"UpdatePolicy": UpdatePolicy::FollowRecommended, "ProductVersionId": target});
            let audit = on_behalf(node.to_string(), "UpdateProvisionedProduct", &pp.provisioned_product_id, &pp.owner_principal_id, extra);
            match self.audited(audit).upgrade(&owner, &pp, &target).await {
                Ok(update) => queued.push(Followed { provisioned_product: pp, queued: update, version_id: target }),
                Err(e @ (DomainError::Internal(_) | DomainError::Store(_))) => return Err(e),
                Err(e) => {
                    tracing::debug!(provisioned_product_id = %pp.provisioned_product_id, reason = %e, "not updated to the Recommended version")
                }
            }
        }
        Ok(queued)
    }

    /// Whether `pp`'s last task was a failed update to `version_id`.
    async fn failed_to_reach(&self, pp: &ProvisionedProduct, version_id: &str) -> Result<bool, DomainError> {
        let Some(id) = &pp.last_task_id else { return Ok(false) };
        Ok(self.store.task(id).await?.is_some_and(|t| {
            t.task_type == OperationType::UpdateProvisionedProduct && t.status == TaskStatus::Failed && t.product_version_id == version_id
        }))
    }
}
