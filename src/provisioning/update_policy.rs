//! Update policies (an extension): what, besides its owner, updates a provisioned product.
//! `Manual` (the default): an administrator's upgrade campaign; `FollowRecommended`: also the
//! scheduler, to its product's `Recommended` version whenever that changes; `Pinned`: nothing
//! automatic, and campaigns skip it. `LaunchProduct` takes one; `UpdateProvisionedProductPolicy`
//! changes it (the owner or an administrator).

use serde::{Deserialize, Serialize};

use super::queue::Provisioner;
use crate::catalog::error::DomainError;
use crate::model::{ProvisionedProductId, UpdatePolicy};
use crate::store::principal::Principal;

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
}
