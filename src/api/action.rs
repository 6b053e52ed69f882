//! The API's actions: one variant per wire action, with who may call it. The table is the single
//! source for dispatch, authorisation and the command line's list of actions.

/// Who may call an action (resource-level checks happen in the handlers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Administrators only.
    Admin,
    /// Administrators and end users.
    EndUser,
}

macro_rules! actions {
    ($($name:ident => $audience:ident,)*) => {
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
        }
    };
}

actions! {
    ApproveProvisionedProductPlan => EndUser,
    AssociatePrincipalWithPortfolio => Admin,
    AssociateProductWithPortfolio => Admin,
    AssociateTagOptionWithResource => Admin,
    CancelProvisionedProductPlan => EndUser,
    CopyProduct => Admin,
    CreateConstraint => Admin,
    CreatePortfolio => Admin,
    CreateProduct => Admin,
    CreateProductVersion => Admin,
    CreateProvisionedProductPlan => EndUser,
    CreateTagOption => Admin,
    CreateTemplate => Admin,
    DeleteConstraint => Admin,
    DeletePortfolio => Admin,
    DeleteProduct => Admin,
    DeleteProductVersion => Admin,
    DeleteProvisionedProductPlan => EndUser,
    DeleteTagOption => Admin,
    DisAssociateTagOptionFromResource => Admin,
    DisassociatePrincipalFromPortfolio => Admin,
    DisassociateProductFromPortfolio => Admin,
    ExecuteProvisionedProductPlan => EndUser,
    GetConstraint => Admin,
    GetPortfolio => Admin,
    GetProductAsAdmin => Admin,
    GetProductAsEndUser => EndUser,
    GetProductVersion => EndUser,
    GetProvisionedProduct => EndUser,
    GetProvisionedProductPlan => EndUser,
    GetTagOption => Admin,
    GetTask => EndUser,
    GetTemplate => EndUser,
    LaunchProduct => EndUser,
    ListLaunchOptions => EndUser,
    ListPortfolios => Admin,
    ListPrincipals => Admin,
    ListProductVersions => EndUser,
    ListProductsAsAdmin => Admin,
    ListProductsAsEndUser => EndUser,
    ListProvisionedProductPlanApprovers => EndUser,
    ListProvisionedProductPlans => EndUser,
    ListProvisionedProducts => EndUser,
    ListRegions => EndUser,
    ListResourcesForTagOption => Admin,
    ListTagOptions => Admin,
    ListTasks => EndUser,
    TerminateProvisionedProduct => EndUser,
    UpdateConstraint => Admin,
    UpdatePortfolio => Admin,
    UpdateProduct => Admin,
    UpdateProductVersion => Admin,
    UpdateProvisionedProduct => EndUser,
    UpdateProvisionedProductPlan => EndUser,
    UpdateTagOption => Admin,
    // Extensions (README, "Extensions"):
    GetTaskLog => EndUser,
    ListAuditEvents => Admin,
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
    }
}
