//! Portfolios — create, read, update, delete, list — and their grants to principals
//! (`AssociatePrincipalWithPortfolio`, `DisassociatePrincipalFromPortfolio`, `ListPrincipals`).
//! A grant names a user or role by id (which must exist) or, with `PrincipalPattern`, every user
//! or role whose name matches a `*` pattern (resolved at each call by `Store::portfolios_granted_to`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::DomainError;
use super::tag_option::TagOptionDetail;
use super::wire::{format_time, name_filter, Filter, Paged, Paging};
use super::Catalog;
use crate::store::grant::Grant;
use crate::store::portfolio::{Portfolio, PortfolioDeletion, PortfolioQuery};
use crate::store::{new_id, now_ms};

/// `CreatePortfolio`, and the fields `UpdatePortfolio` sets.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortfolioFields {
    pub portfolio_name: String,
    pub provider_name: String,
    pub description: Option<String>,
}

/// `UpdatePortfolio`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortfolioUpdate {
    pub portfolio_id: String,
    #[serde(flatten)]
    pub fields: PortfolioFields,
}

/// The request naming one portfolio, and the answer of create and update.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortfolioRef {
    pub portfolio_id: String,
}

/// `ListPortfolios`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortfolioListing {
    #[serde(flatten)]
    pub paging: Paging,
    #[serde(default)]
    pub filters: Vec<Filter>,
    pub scope: Option<String>,
    pub product_id: Option<String>,
}

/// The `PortfolioDetail` object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortfolioDetail {
    pub portfolio_id: String,
    pub portfolio_arn: String,
    pub portfolio_name: String,
    pub provider_name: String,
    pub description: String,
    pub create_time: String,
}

/// `GetPortfolio`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortfolioView {
    pub portfolio_detail: PortfolioDetail,
    pub tag_options: Vec<TagOptionDetail>,
}

/// `ListPortfolios`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Portfolios {
    #[serde(flatten)]
    pub page: Paged,
    pub portfolio_details: Vec<PortfolioDetail>,
}

/// The grant requests: exactly one of `PrincipalId` and `PrincipalPattern`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantRequest {
    pub portfolio_id: String,
    pub principal_type: String,
    pub principal_id: Option<String>,
    pub principal_pattern: Option<String>,
}

/// One entry of `ListPrincipals`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrincipalGrant {
    pub principal_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_pattern: Option<String>,
}

/// `ListPrincipals`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Principals {
    pub principals: Vec<PrincipalGrant>,
}

impl GrantRequest {
    /// The grant asked for.
    fn grant(&self) -> Result<Grant, DomainError> {
        let (key, is_pattern) = match (&self.principal_id, &self.principal_pattern) {
            (Some(id), None) => (id.clone(), false),
            (None, Some(pattern)) => {
                if !pattern.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@*".contains(c)) {
                    return Err(DomainError::invalid_parameter(
                        "PrincipalPattern",
                        "The parameter PrincipalPattern may hold letters, digits, '-', '_', '.', '@' and the wildcard '*'.",
                    ));
                }
                (pattern.clone(), true)
            }
            (None, None) => return Err(DomainError::missing_parameter("PrincipalId")),
            (Some(_), Some(_)) => {
                return Err(DomainError::invalid_parameter("PrincipalPattern", "Specify either PrincipalId or PrincipalPattern, not both."))
            }
        };
        Ok(Grant { principal_type: self.principal_type.clone(), principal_key: key, is_pattern })
    }
}

fn principal_not_found(kind: &str, id: &str, what: &str) -> DomainError {
    DomainError::Absent { kind: "Principal", message: format!("The specified {kind} {id:?} {what}.") }
}

impl Catalog<'_> {
    /// The `PortfolioDetail` of `p`.
    pub fn portfolio_detail(&self, p: &Portfolio) -> PortfolioDetail {
        PortfolioDetail {
            portfolio_id: p.portfolio_id.clone(),
            portfolio_arn: self.arn("portfolio", &p.portfolio_id),
            portfolio_name: p.portfolio_name.clone(),
            provider_name: p.provider_name.clone(),
            description: p.description.clone(),
            create_time: format_time(p.created_at),
        }
    }

    /// Portfolio `id`, or `EntityNotExists.Portfolio`.
    pub(super) async fn portfolio(&self, id: &str) -> Result<Portfolio, DomainError> {
        self.store.portfolio(id).await?.ok_or_else(|| DomainError::not_found("Portfolio", id))
    }

    /// `CreatePortfolio`.
    pub async fn create_portfolio(&self, req: PortfolioFields) -> Result<PortfolioRef, DomainError> {
        let portfolio = Portfolio {
            portfolio_id: new_id("port"),
            portfolio_name: req.portfolio_name,
            provider_name: req.provider_name,
            description: req.description.unwrap_or_default(),
            created_at: now_ms(),
        };
        self.store.insert_portfolio(&portfolio).await?;
        Ok(PortfolioRef { portfolio_id: portfolio.portfolio_id })
    }

    /// `GetPortfolio`.
    pub async fn get_portfolio(&self, req: PortfolioRef) -> Result<PortfolioView, DomainError> {
        let portfolio = self.portfolio(&req.portfolio_id).await?;
        let tag_options = self.tag_options_of(&portfolio.portfolio_id).await?;
        Ok(PortfolioView { portfolio_detail: self.portfolio_detail(&portfolio), tag_options })
    }

    /// `UpdatePortfolio`.
    pub async fn update_portfolio(&self, req: PortfolioUpdate) -> Result<PortfolioRef, DomainError> {
        let PortfolioFields { portfolio_name, provider_name, description } = &req.fields;
        if !self.store.update_portfolio(&req.portfolio_id, portfolio_name, provider_name, description.as_deref()).await? {
            return Err(DomainError::not_found("Portfolio", &req.portfolio_id));
        }
        Ok(PortfolioRef { portfolio_id: req.portfolio_id })
    }

    /// `DeletePortfolio`.
    pub async fn delete_portfolio(&self, req: PortfolioRef) -> Result<(), DomainError> {
        match self.store.delete_portfolio(&req.portfolio_id).await? {
            PortfolioDeletion::Deleted => Ok(()),
            PortfolioDeletion::NotFound => Err(DomainError::not_found("Portfolio", &req.portfolio_id)),
            PortfolioDeletion::InUse(what) => Err(DomainError::invalid_status(
                "Portfolio",
                format!("The portfolio {} still has {what}; remove them before deleting it.", req.portfolio_id),
            )),
        }
    }

    /// `ListPortfolios`.
    pub async fn list_portfolios(&self, req: PortfolioListing) -> Result<Portfolios, DomainError> {
        let query = PortfolioQuery { names: name_filter(&req.filters, "PortfolioName"), product_id: req.product_id };
        // Every portfolio of this installation is local: importing from other accounts does not exist.
        let listing = if req.scope.as_deref() == Some("Import") {
            Arc::new((Vec::new(), 0))
        } else {
            self.store.list_portfolios(&query, req.paging.order(), req.paging.page()).await?
        };
        let (portfolios, total) = &*listing;
        Ok(Portfolios { page: req.paging.answer(*total), portfolio_details: portfolios.iter().map(|p| self.portfolio_detail(p)).collect() })
    }

    /// `AssociatePrincipalWithPortfolio`.
    pub async fn grant(&self, req: GrantRequest) -> Result<(), DomainError> {
        let grant = req.grant()?;
        self.portfolio(&req.portfolio_id).await?;
        if !grant.is_pattern && self.store.principal_by_id(&grant.principal_type, &grant.principal_key).await?.is_none() {
            return Err(principal_not_found(&grant.principal_type, &grant.principal_key, "does not exist"));
        }
        // Granting twice is not an error: the grant exists afterwards either way.
        self.store.insert_grant(&req.portfolio_id, &grant).await?;
        Ok(())
    }

    /// `DisassociatePrincipalFromPortfolio`.
    pub async fn revoke(&self, req: GrantRequest) -> Result<(), DomainError> {
        let grant = req.grant()?;
        self.portfolio(&req.portfolio_id).await?;
        if !self.store.delete_grant(&req.portfolio_id, &grant).await? {
            let what = format!("is not associated with the portfolio {:?}", req.portfolio_id);
            let kind = if grant.is_pattern { format!("{} pattern", grant.principal_type) } else { grant.principal_type.clone() };
            return Err(principal_not_found(&kind, &grant.principal_key, &what));
        }
        Ok(())
    }

    /// `ListPrincipals`.
    pub async fn principals(&self, req: PortfolioRef) -> Result<Principals, DomainError> {
        self.portfolio(&req.portfolio_id).await?;
        let grants = self.store.grants_of(&req.portfolio_id).await?;
        let principals = grants
            .into_iter()
            .map(|g| {
                let (id, pattern) = if g.is_pattern { (None, Some(g.principal_key)) } else { (Some(g.principal_key), None) };
                PrincipalGrant { principal_type: g.principal_type, principal_id: id, principal_pattern: pattern }
            })
            .collect();
        Ok(Principals { principals })
    }
}
