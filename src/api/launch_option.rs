//! `ListLaunchOptions`: the portfolios through which the caller may launch a product — those
//! granted to the caller that hold it — each with a summary of its constraints.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::Ctx;
use crate::catalog::constraint::{ConfigError, ConstraintConfig, ConstraintType};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRequest {
    product_id: String,
}

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Value, ApiError> {
    let store = ctx.store();
    let granted = store.portfolios_granted_to(ctx.principal).await?;
    let links = store.product_portfolios(std::slice::from_ref(&req.product_id), &granted).await?;
    // A product the caller cannot launch is answered like a missing one, as GetProductAsEndUser does.
    if links.is_empty() {
        return Err(ApiError::not_found("Product", &req.product_id));
    }
    let mut options = Vec::with_capacity(links.len());
    for (_, portfolio_id) in links {
        let Some(portfolio) = store.portfolio(&portfolio_id).await? else { continue };
        let mut summaries = Vec::new();
        for c in store.constraints_for(&portfolio_id, &req.product_id).await? {
            let config = c
                .constraint_type
                .parse::<ConstraintType>()
                .map_err(ConfigError)
                .and_then(|kind| ConstraintConfig::parse(kind, &c.config))
                .map_err(|e| ApiError::internal(format!("stored constraint {} does not parse: {e}", c.constraint_id)))?;
            let mut summary = config.summary_fields();
            summary.insert("ConstraintType".into(), c.constraint_type.into());
            summary.insert("Description".into(), c.description.into());
            summaries.push(Value::Object(summary));
        }
        options.push(json!({
            "PortfolioId": portfolio.portfolio_id,
            "PortfolioName": portfolio.portfolio_name,
            "ConstraintSummaries": summaries,
        }));
    }
    Ok(json!({ "LaunchOptionSummaries": options }))
}
