//! Grants of portfolios to principals: `AssociatePrincipalWithPortfolio`,
//! `DisassociatePrincipalFromPortfolio` and `ListPrincipals`. A grant names a user or role by id
//! (which must exist) or, with `PrincipalPattern`, every user or role whose name matches a `*`
//! pattern (resolved at each call by `Store::portfolios_granted_to`).

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::Ctx;
use crate::store::grant::Grant;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GrantRequest {
    portfolio_id: String,
    principal_type: String,
    principal_id: Option<String>,
    principal_pattern: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRequest {
    portfolio_id: String,
}

impl GrantRequest {
    /// The grant asked for: exactly one of `PrincipalId` and `PrincipalPattern`.
    fn grant(&self) -> Result<Grant, ApiError> {
        let (key, is_pattern) = match (&self.principal_id, &self.principal_pattern) {
            (Some(id), None) => (id.clone(), false),
            (None, Some(pattern)) => {
                if !pattern.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@*".contains(c)) {
                    return Err(ApiError::invalid_parameter(
                        "PrincipalPattern",
                        "The parameter PrincipalPattern may hold letters, digits, '-', '_', '.', '@' and the wildcard '*'.",
                    ));
                }
                (pattern.clone(), true)
            }
            (None, None) => return Err(ApiError::missing_parameter("PrincipalId")),
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_parameter("PrincipalPattern", "Specify either PrincipalId or PrincipalPattern, not both."))
            }
        };
        Ok(Grant { principal_type: self.principal_type.clone(), principal_key: key, is_pattern })
    }
}

async fn require_portfolio(ctx: &Ctx<'_>, id: &str) -> Result<(), ApiError> {
    match ctx.store().portfolio(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("Portfolio", id)),
    }
}

fn principal_not_found(kind: &str, id: &str, what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "EntityNotExists.Principal", format!("The specified {kind} {id:?} {what}."))
}

pub(super) async fn associate(ctx: &Ctx<'_>, req: GrantRequest) -> Result<Value, ApiError> {
    let grant = req.grant()?;
    require_portfolio(ctx, &req.portfolio_id).await?;
    if !grant.is_pattern && ctx.store().principal_by_id(&grant.principal_type, &grant.principal_key).await?.is_none() {
        return Err(principal_not_found(&grant.principal_type, &grant.principal_key, "does not exist"));
    }
    // Granting twice is not an error: the grant exists afterwards either way.
    ctx.store().insert_grant(&req.portfolio_id, &grant).await?;
    Ok(json!({}))
}

pub(super) async fn disassociate(ctx: &Ctx<'_>, req: GrantRequest) -> Result<Value, ApiError> {
    let grant = req.grant()?;
    require_portfolio(ctx, &req.portfolio_id).await?;
    if !ctx.store().delete_grant(&req.portfolio_id, &grant).await? {
        let what = format!("is not associated with the portfolio {:?}", req.portfolio_id);
        let kind = if grant.is_pattern { format!("{} pattern", grant.principal_type) } else { grant.principal_type.clone() };
        return Err(principal_not_found(&kind, &grant.principal_key, &what));
    }
    Ok(json!({}))
}

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Value, ApiError> {
    require_portfolio(ctx, &req.portfolio_id).await?;
    let principals: Vec<Value> = ctx
        .store()
        .grants_of(&req.portfolio_id)
        .await?
        .into_iter()
        .map(|g| {
            let field = if g.is_pattern { "PrincipalPattern" } else { "PrincipalId" };
            json!({ "PrincipalType": g.principal_type, field: g.principal_key })
        })
        .collect();
    Ok(json!({ "Principals": principals }))
}
