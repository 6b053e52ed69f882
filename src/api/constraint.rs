//! Constraints of a (portfolio, product) launch option: create, read, update, delete. The Config
//! is parsed by [`crate::catalog::constraint`]; here its references are checked against the
//! installation (the launch role, approvers given by id, configured regions).

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::{format_time, Ctx};
use crate::catalog::constraint::{ConstraintConfig, ConstraintType};
use crate::store::constraint::{Constraint, ConstraintInsert};
use crate::store::{new_id, now_ms};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateRequest {
    config: String,
    constraint_type: String,
    description: Option<String>,
    portfolio_id: String,
    product_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateRequest {
    config: String,
    constraint_id: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct IdRequest {
    constraint_id: String,
}

fn invalid_config(message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_parameter("Config", format!("The parameter Config is invalid: {message}."))
}

/// Parses `text` as the Config of a `kind` constraint and checks what it refers to exists.
async fn parse_config(ctx: &Ctx<'_>, kind: ConstraintType, text: &str) -> Result<ConstraintConfig, ApiError> {
    let config = ConstraintConfig::parse(kind, text).map_err(invalid_config)?;
    match &config {
        ConstraintConfig::Launch(c) => {
            if !ctx.store().launch_role_exists(&c.local_role_name).await? {
                return Err(invalid_config(format_args!(
                    "the launch role {:?} does not exist (an administrator creates it with `servicecatalog launch-roles create`)",
                    c.local_role_name
                )));
            }
        }
        ConstraintConfig::Approval(c) => {
            for approver in &c.approvers {
                let Some(id) = &approver.id else { continue };
                if ctx.store().principal_by_id(&approver.principal_type, id).await?.is_none() {
                    return Err(invalid_config(format_args!("the approver {} {id:?} does not exist", approver.principal_type)));
                }
            }
        }
        ConstraintConfig::StackRegion(c) => {
            let offered = &ctx.state.config.regions;
            if let Some(region) = c.stack_regions.iter().find(|r| !offered.iter().any(|o| &o.region_id == *r)) {
                return Err(invalid_config(format_args!("the region {region:?} is not offered here (see ListRegions)")));
            }
        }
        ConstraintConfig::Template(_) | ConstraintConfig::Sandbox(_) => {}
    }
    Ok(config)
}

pub(super) async fn create(ctx: &Ctx<'_>, req: CreateRequest) -> Result<Value, ApiError> {
    let kind: ConstraintType = req.constraint_type.parse().map_err(|e| ApiError::invalid_parameter("ConstraintType", e))?;
    let config = parse_config(ctx, kind, &req.config).await?;
    ctx.store().portfolio(&req.portfolio_id).await?.ok_or_else(|| ApiError::not_found("Portfolio", &req.portfolio_id))?;
    ctx.store().product(&req.product_id).await?.ok_or_else(|| ApiError::not_found("Product", &req.product_id))?;
    let constraint = Constraint {
        constraint_id: new_id("cons"),
        constraint_type: kind.as_str().to_string(),
        portfolio_id: req.portfolio_id,
        product_id: req.product_id,
        config: config.to_json(),
        description: req.description.unwrap_or_default(),
        created_at: now_ms(),
    };
    match ctx.store().insert_constraint(&constraint).await? {
        ConstraintInsert::Created => Ok(json!({ "ConstraintId": constraint.constraint_id })),
        ConstraintInsert::NotAssociated => Err(ApiError::invalid_status(
            "Product",
            format!(
                "The product {:?} is not associated with the portfolio {:?}; associate it first.",
                constraint.product_id, constraint.portfolio_id
            ),
        )),
        ConstraintInsert::Duplicate(existing) => Err(ApiError::invalid_status(
            "Constraint",
            format!("The product and portfolio already have a {} constraint ({existing}); update or delete it.", kind.as_str()),
        )),
    }
}

pub(super) async fn get(ctx: &Ctx<'_>, req: IdRequest) -> Result<Value, ApiError> {
    let c = ctx.store().constraint(&req.constraint_id).await?.ok_or_else(|| ApiError::not_found("Constraint", &req.constraint_id))?;
    let product_name = ctx.store().product(&c.product_id).await?.map(|p| p.product_name).unwrap_or_default();
    Ok(json!({ "ConstraintDetail": {
        "ConstraintId": c.constraint_id,
        "ConstraintType": c.constraint_type,
        "Config": c.config,
        "Description": c.description,
        "PortfolioId": c.portfolio_id,
        "ProductId": c.product_id,
        "ProductName": product_name,
        "CreateTime": format_time(c.created_at),
    }}))
}

pub(super) async fn update(ctx: &Ctx<'_>, req: UpdateRequest) -> Result<Value, ApiError> {
    let c = ctx.store().constraint(&req.constraint_id).await?.ok_or_else(|| ApiError::not_found("Constraint", &req.constraint_id))?;
    let kind: ConstraintType = c.constraint_type.parse().map_err(ApiError::internal)?;
    let config = parse_config(ctx, kind, &req.config).await?;
    if !ctx.store().update_constraint(&c.constraint_id, &config.to_json(), req.description.as_deref()).await? {
        return Err(ApiError::not_found("Constraint", &req.constraint_id));
    }
    Ok(json!({ "ConstraintId": c.constraint_id }))
}

pub(super) async fn delete(ctx: &Ctx<'_>, req: IdRequest) -> Result<Value, ApiError> {
    if !ctx.store().delete_constraint(&req.constraint_id).await? {
        return Err(ApiError::not_found("Constraint", &req.constraint_id));
    }
    Ok(json!({}))
}
