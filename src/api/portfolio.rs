//! Portfolio actions: create, read, update, delete and list.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::{filter_value, format_time, Ctx, Filter, Paging};
use crate::store::portfolio::{Portfolio, PortfolioDeletion, PortfolioQuery};
use crate::store::{new_id, now_ms};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateRequest {
    portfolio_name: String,
    provider_name: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct IdRequest {
    portfolio_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateRequest {
    portfolio_id: String,
    portfolio_name: String,
    provider_name: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRequest {
    #[serde(flatten)]
    paging: Paging,
    #[serde(default)]
    filters: Vec<Filter>,
    scope: Option<String>,
    product_id: Option<String>,
}

/// The `PortfolioDetail` object.
fn detail(ctx: &Ctx<'_>, p: &Portfolio) -> Value {
    json!({
        "PortfolioId": p.portfolio_id,
        "PortfolioArn": ctx.arn("portfolio", &p.portfolio_id),
        "PortfolioName": p.portfolio_name,
        "ProviderName": p.provider_name,
        "Description": p.description,
        "CreateTime": format_time(p.created_at),
    })
}

pub(super) async fn create(ctx: &Ctx<'_>, req: CreateRequest) -> Result<Value, ApiError> {
    let portfolio = Portfolio {
        portfolio_id: new_id("port"),
        portfolio_name: req.portfolio_name,
        provider_name: req.provider_name,
        description: req.description.unwrap_or_default(),
        created_at: now_ms(),
    };
    ctx.store().insert_portfolio(&portfolio).await?;
    Ok(json!({ "PortfolioId": portfolio.portfolio_id }))
}

pub(super) async fn get(ctx: &Ctx<'_>, req: IdRequest) -> Result<Value, ApiError> {
    let portfolio = ctx.store().portfolio(&req.portfolio_id).await?.ok_or_else(|| ApiError::not_found("Portfolio", &req.portfolio_id))?;
    let tag_options = super::tag_option::of_resource(ctx, &portfolio.portfolio_id).await?;
    Ok(json!({ "PortfolioDetail": detail(ctx, &portfolio), "TagOptions": tag_options }))
}

pub(super) async fn update(ctx: &Ctx<'_>, req: UpdateRequest) -> Result<Value, ApiError> {
    let found =
        ctx.store().update_portfolio(&req.portfolio_id, &req.portfolio_name, &req.provider_name, req.description.as_deref()).await?;
    if !found {
        return Err(ApiError::not_found("Portfolio", &req.portfolio_id));
    }
    Ok(json!({ "PortfolioId": req.portfolio_id }))
}

pub(super) async fn delete(ctx: &Ctx<'_>, req: IdRequest) -> Result<Value, ApiError> {
    match ctx.store().delete_portfolio(&req.portfolio_id).await? {
        PortfolioDeletion::Deleted => Ok(json!({})),
        PortfolioDeletion::NotFound => Err(ApiError::not_found("Portfolio", &req.portfolio_id)),
        PortfolioDeletion::InUse(what) => Err(ApiError::invalid_status(
            "Portfolio",
            format!("The portfolio {} still has {what}; remove them before deleting it.", req.portfolio_id),
        )),
    }
}

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Value, ApiError> {
    let query = PortfolioQuery {
        name: filter_value(&req.filters, "PortfolioName"),
        full_text: filter_value(&req.filters, "FullTextSearch"),
        product_id: req.product_id,
    };
    // Every portfolio of this installation is local: importing from other accounts does not exist.
    let listing = if req.scope.as_deref() == Some("Import") {
        Arc::new((Vec::new(), 0))
    } else {
        ctx.store().list_portfolios(&query, req.paging.order(), req.paging.page()).await?
    };
    let (portfolios, total) = &*listing;
    let mut out = req.paging.response(*total);
    out.insert("PortfolioDetails".into(), portfolios.iter().map(|p| detail(ctx, p)).collect());
    Ok(Value::Object(out))
}
