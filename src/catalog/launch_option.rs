//! Launch options — the (portfolio, product) pairs through which the caller may launch a product,
//! those granted to the caller that hold it (`ListLaunchOptions`) — and the constraints on them:
//! create, read, update, delete. The Config is parsed by [`super::constraint`]; here its references
//! are checked against the installation (the launch role, approvers given by id, offered regions).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::constraint::{ConfigError, ConstraintConfig, ConstraintType};
use super::error::{administrators_only, DomainError};
use super::product::ProductRef;
use super::wire::format_time;
use super::Catalog;
use crate::store::constraint::{Constraint, ConstraintInsert};
use crate::store::{new_id, now_ms};

/// `CreateConstraint`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewConstraint {
    pub config: String,
    /// `Launch`, `Template`, `Approval`, `StackRegion` or `Sandbox`.
    pub constraint_type: String,
    pub description: Option<String>,
    pub portfolio_id: String,
    pub product_id: String,
}

/// `UpdateConstraint`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConstraintChange {
    pub config: String,
    pub constraint_id: String,
    pub description: Option<String>,
}

/// The request naming one constraint, and the answer of create and update.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConstraintRef {
    pub constraint_id: String,
}

/// The `ConstraintDetail` object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConstraintDetail {
    pub constraint_id: String,
    pub constraint_type: String,
    pub config: String,
    pub description: String,
    pub portfolio_id: String,
    pub product_id: String,
    pub product_name: String,
    pub create_time: String,
}

/// A constraint as an administrator's listing shows it: its detail and its portfolio's name.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListedConstraint {
    #[serde(flatten)]
    pub detail: ConstraintDetail,
    pub portfolio_name: String,
}

/// `ListConstraints`' request (an extension): the constraints of a portfolio, of a product, of
/// one pair, or all.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConstraintListing {
    pub portfolio_id: Option<String>,
    pub product_id: Option<String>,
}

/// `ListConstraints`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Constraints {
    pub constraint_details: Vec<ListedConstraint>,
}

/// `GetConstraint`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConstraintView {
    pub constraint_detail: ConstraintDetail,
}

/// One `ConstraintSummaries` entry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConstraintSummary {
    pub constraint_type: String,
    pub description: String,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// One `LaunchOptionSummaries` entry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LaunchOption {
    pub portfolio_id: String,
    pub portfolio_name: String,
    pub constraint_summaries: Vec<ConstraintSummary>,
}

/// `ListLaunchOptions`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LaunchOptions {
    pub launch_option_summaries: Vec<LaunchOption>,
}

/// The `ConstraintDetail` of a stored constraint.
fn detail(c: Constraint, product_name: String) -> ConstraintDetail {
    ConstraintDetail {
        constraint_id: c.constraint_id,
        constraint_type: c.constraint_type,
        config: c.config,
        description: c.description,
        portfolio_id: c.portfolio_id,
        product_id: c.product_id,
        product_name,
        create_time: format_time(c.created_at),
    }
}

fn invalid_config(message: impl std::fmt::Display) -> DomainError {
    DomainError::invalid_parameter("Config", format!("The parameter Config is invalid: {message}."))
}

impl Catalog<'_> {
    /// Parses `text` as the Config of a `kind` constraint and checks what it refers to exists.
    async fn parse_config(&self, kind: ConstraintType, text: &str) -> Result<ConstraintConfig, DomainError> {
        let config = ConstraintConfig::parse(kind, text).map_err(invalid_config)?;
        match &config {
            ConstraintConfig::Launch(c) => {
                if !self.store.launch_role_exists(&c.local_role_name).await? {
                    return Err(invalid_config(format_args!(
                        "the launch role {:?} does not exist (an administrator creates it with `servicecatalog launch-roles create`)",
                        c.local_role_name
                    )));
                }
            }
            ConstraintConfig::Approval(c) => {
                for approver in &c.approvers {
                    let Some(id) = &approver.id else { continue };
                    if self.store.principal_by_id(&approver.principal_type, id).await?.is_none() {
                        return Err(invalid_config(format_args!("the approver {} {id:?} does not exist", approver.principal_type)));
                    }
                }
            }
            ConstraintConfig::StackRegion(c) => {
                if let Some(region) = c.stack_regions.iter().find(|r| !self.regions.iter().any(|offered| offered.region_id == **r)) {
                    return Err(invalid_config(format_args!("the region {region:?} is not offered here (see ListRegions)")));
                }
            }
            ConstraintConfig::Template(_) | ConstraintConfig::Sandbox(_) | ConstraintConfig::Drift(_) | ConstraintConfig::Expiry(_) => {}
        }
        Ok(config)
    }

    async fn constraint(&self, id: &str) -> Result<Constraint, DomainError> {
        self.store.constraint(id).await?.ok_or_else(|| DomainError::not_found("Constraint", id))
    }

    /// `CreateConstraint`.
    pub async fn create_constraint(&self, req: NewConstraint) -> Result<ConstraintRef, DomainError> {
        let kind: ConstraintType = req.constraint_type.parse().map_err(|e| DomainError::invalid_parameter("ConstraintType", e))?;
        let config = self.parse_config(kind, &req.config).await?;
        self.portfolio(&req.portfolio_id).await?;
        self.product(&req.product_id).await?;
        let constraint = Constraint {
            constraint_id: new_id("cons"),
            constraint_type: kind.as_str().to_string(),
            portfolio_id: req.portfolio_id,
            product_id: req.product_id,
            config: config.to_json(),
            description: req.description.unwrap_or_default(),
            created_at: now_ms(),
        };
        match self.store.insert_constraint(&constraint).await? {
            ConstraintInsert::Created => Ok(ConstraintRef { constraint_id: constraint.constraint_id }),
            ConstraintInsert::NotAssociated => Err(DomainError::invalid_status(
                "Product",
                format!(
                    "The product {:?} is not associated with the portfolio {:?}; associate it first.",
                    constraint.product_id, constraint.portfolio_id
                ),
            )),
            ConstraintInsert::Duplicate(existing) => Err(DomainError::invalid_status(
                "Constraint",
                format!("The product and portfolio already have a {} constraint ({existing}); update or delete it.", kind.as_str()),
            )),
        }
    }

    /// `GetConstraint`.
    pub async fn get_constraint(&self, req: ConstraintRef) -> Result<ConstraintView, DomainError> {
        let c = self.constraint(&req.constraint_id).await?;
        let product_name = self.store.product(&c.product_id).await?.map(|p| p.product_name).unwrap_or_default();
        Ok(ConstraintView { constraint_detail: detail(c, product_name) })
    }

    /// `ListConstraints` (an extension the vendor lacks): the constraints of a portfolio, of a
    /// product, or of one pair, whoever the portfolios are granted to (`ListLaunchOptions` shows
    /// only the caller's, and no Config), by portfolio, product and type. Like `GetConstraint`,
    /// for administrators only.
    pub async fn constraints(&self, req: ConstraintListing) -> Result<Constraints, DomainError> {
        administrators_only(self.caller, "ListConstraints", "Only administrators list the constraints of a catalog.".into())?;
        let found = self.store.constraints_where(req.portfolio_id.as_deref(), req.product_id.as_deref()).await?;
        let listed =
            found.into_iter().map(|c| ListedConstraint { detail: detail(c.constraint, c.product_name), portfolio_name: c.portfolio_name });
        Ok(Constraints { constraint_details: listed.collect() })
    }

    /// `UpdateConstraint`.
    pub async fn update_constraint(&self, req: ConstraintChange) -> Result<ConstraintRef, DomainError> {
        let c = self.constraint(&req.constraint_id).await?;
        let kind: ConstraintType = c.constraint_type.parse().map_err(DomainError::Internal)?;
        let config = self.parse_config(kind, &req.config).await?;
        if !self.store.update_constraint(&c.constraint_id, &config.to_json(), req.description.as_deref()).await? {
            return Err(DomainError::not_found("Constraint", &req.constraint_id));
        }
        Ok(ConstraintRef { constraint_id: c.constraint_id })
    }

    /// `DeleteConstraint`.
    pub async fn delete_constraint(&self, req: ConstraintRef) -> Result<(), DomainError> {
        if !self.store.delete_constraint(&req.constraint_id).await? {
            return Err(DomainError::not_found("Constraint", &req.constraint_id));
        }
        Ok(())
    }

    /// `ListLaunchOptions`: a product the caller cannot launch is answered like a missing one, as
    /// `GetProductAsEndUser` does.
    pub async fn launch_options(&self, req: ProductRef) -> Result<LaunchOptions, DomainError> {
        let links = self.store.product_portfolios(std::slice::from_ref(&req.product_id), &self.granted().await?).await?;
        if links.is_empty() {
            return Err(DomainError::not_found("Product", &req.product_id));
        }
        let mut options = Vec::with_capacity(links.len());
        for (_, portfolio_id) in links {
            let Some(portfolio) = self.store.portfolio(&portfolio_id).await? else { continue };
            let mut summaries = Vec::new();
            for c in self.store.constraints_for(&portfolio_id, &req.product_id).await? {
                let config = c
                    .constraint_type
                    .parse::<ConstraintType>()
                    .map_err(ConfigError)
                    .and_then(|kind| ConstraintConfig::parse(kind, &c.config))
                    .map_err(|e| DomainError::Internal(format!("stored constraint {} does not parse: {e}", c.constraint_id)))?;
                summaries.push(ConstraintSummary {
                    constraint_type: c.constraint_type,
                    description: c.description,
                    fields: config.summary_fields(),
                });
            }
            options.push(LaunchOption {
                portfolio_id: portfolio.portfolio_id,
                portfolio_name: portfolio.portfolio_name,
                constraint_summaries: summaries,
            });
        }
        Ok(LaunchOptions { launch_option_summaries: options })
    }
}
