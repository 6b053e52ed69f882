//! The API's actions: one variant per wire action, with who may call it and what it does to
//! state. The table is the single source for dispatch, authorisation, the audit trail, the task
//! quota and the command line's list of actions.

/// Who may call an action (resource-level checks happen in the handlers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Administrators only.
    Admin,
    /// Administrators and end users.
    EndUser,
}

/// What an action does to the service's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only.
    Read,
    /// Changes state (and is recorded in the audit trail).
    Change,
    /// Changes state and queues a task (counted against the caller's task quota).
    QueuesTask,
}

macro_rules! actions {
    ($($name:ident => $audience:ident $effect:ident,)*) => {
        /// A wire action of Service Catalog 2021-09-01.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action { $($name,)* }

        impl Action {
            /// Every action, in the table's order.
            pub const ALL: &'static [Action] = &[$(Action::$name,)*];

            /// The wire name.
            pub fn name(self) -> &'static str {
                match self { $(Action::$name => stringify!($name),)* }
            }

            /// The action with this exact wire name.
            pub fn from_name(name: &str) -> Option<Action> {
                match name { $(stringify!($name) => Some(Action::$name),)* _ => None }
            }

            /// Who may call it.
            pub fn audience(self) -> Audience {
                match self { $(Action::$name => Audience::$audience,)* }
            }

            /// What it does to state.
            pub fn effect(self) -> Effect {
                match self { $(Action::$name => Effect::$effect,)* }
            }
        }
    };
}

actions! {
    ApproveProvisionedProductPlan => EndUser Change,
    AssociatePrincipalWithPortfolio => Admin Change,
    AssociateProductWithPortfolio => Admin Change,
    AssociateTagOptionWithResource => Admin Change,
    CancelProvisionedProductPlan => EndUser Change,
    CopyProduct => Admin Change,
    CreateConstraint => Admin Change,
    CreatePortfolio => Admin Change,
    CreateProduct => Admin Change,
    CreateProductVersion => Admin Change,
    CreateProvisionedProductPlan => EndUser Change,
    CreateTagOption => Admin Change,
    CreateTemplate => Admin Change,
    DeleteConstraint => Admin Change,
    DeletePortfolio => Admin Change,
    DeleteProduct => Admin Change,
    DeleteProductVersion => Admin Change,
    DeleteProvisionedProductPlan => EndUser Change,
    DeleteTagOption => Admin Change,
    DisAssociateTagOptionFromResource => Admin Change,
    DisassociatePrincipalFromPortfolio => Admin Change,
    DisassociateProductFromPortfolio => Admin Change,
    ExecuteProvisionedProductPlan => EndUser QueuesTask,
    GetConstraint => Admin Read,
    GetPortfolio => Admin Read,
    GetProductAsAdmin => Admin Read,
    GetProductAsEndUser => EndUser Read,
    GetProductVersion => EndUser Read,
    GetProvisionedProduct => EndUser Read,
    GetProvisionedProductPlan => EndUser Read,
    GetTagOption => Admin Read,
    GetTask => EndUser Read,
    GetTemplate => EndUser Read,
    LaunchProduct => EndUser QueuesTask,
    ListLaunchOptions => EndUser Read,
    ListPortfolios => Admin Read,
    ListPrincipals => Admin Read,
    ListProductVersions => EndUser Read,
    ListProductsAsAdmin => Admin Read,
    ListProductsAsEndUser => EndUser Read,
    ListProvisionedProductPlanApprovers => EndUser Read,
    ListProvisionedProductPlans => EndUser Read,
    ListProvisionedProducts => EndUser Read,
    ListRegions => EndUser Read,
    ListResourcesForTagOption => Admin Read,
    ListTagOptions => Admin Read,
    ListTasks => EndUser Read,
    TerminateProvisionedProduct => EndUser QueuesTask,
    UpdateConstraint => Admin Change,
    UpdatePortfolio => Admin Change,
    UpdateProduct => Admin Change,
    UpdateProductVersion => Admin Change,
    UpdateProvisionedProduct => EndUser QueuesTask,
    UpdateProvisionedProductPlan => EndUser Change,
    UpdateTagOption => Admin Change,
    // Extensions (README, "Extensions"):
    DetectProvisionedProductDrift => EndUser QueuesTask,
    FollowRepositoryTags => Admin Change,
    GetTaskLog => EndUser Read,
    ListAuditEvents => Admin Read,
    ListConstraints => Admin Read,
    CreateWebhook => Admin Change,
    DeleteWebhook => Admin Change,
    ListWebhooks => Admin Read,
    ListWebhookDeliveries => Admin Read,
    ListProvisionedProductDriftChecks => EndUser Read,
    UpdateProvisionedProductExpiry => EndUser Change,
    UpdateProvisionedProductPolicy => EndUser Change,
    CreateUpgradeCampaign => Admin Change,
    GetUpgradeCampaign => Admin Read,
    ListUpgradeCampaigns => Admin Read,
    StartUpgradeCampaign => Admin Change,
    PauseUpgradeCampaign => Admin Change,
    ResumeUpgradeCampaign => Admin Change,
    CancelUpgradeCampaign => Admin Change,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_spec_exactly() {
        let spec = crate::api::spec::actions();
        assert_eq!(Action::ALL.len(), spec.len());
        for action in Action::ALL {
            assert!(spec.contains_key(action.name()), "{} is not in the spec", action.name());
            assert_eq!(Action::from_name(action.name()), Some(*action));
        }
        assert_eq!(Action::from_name("getTask"), None);
        assert_eq!((Action::GetTask.effect(), Action::ListTasks.effect()), (Effect::Read, Effect::Read));
        assert_eq!((Action::CreatePortfolio.effect(), Action::LaunchProduct.effect()), (Effect::Change, Effect::QueuesTask));
    }
}
