//! The end user's view of products: only products held by a portfolio granted to the caller —
//! administrators included, who see the whole catalog through the admin actions instead. A
//! product reached through exactly one granted portfolio has a default launch option.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::product::{detail, ProductView};
use super::{filter_value, Answer, Ctx, Filter, Paging};
use crate::store::product::{Product, ProductQuery};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRequest {
    #[serde(flatten)]
    paging: Paging,
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetRequest {
    product_id: String,
}

/// The `ProductSummary` of a product reached through `portfolios` granted portfolios.
fn summary<'a>(ctx: &Ctx<'_>, product: &'a Product, portfolios: usize) -> ProductView<'a> {
    let mut summary = detail(ctx, product);
    summary.has_default_launch_option = Some(portfolios == 1);
    summary
}

/// The answer of `ListProductsAsEndUser`, serialized as it is.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListAnswer<'a> {
    page_number: i64,
    page_size: i64,
    total_count: i64,
    product_summaries: Vec<ProductView<'a>>,
}

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Answer, ApiError> {
    let granted = ctx.store().portfolios_granted_to(ctx.principal).await?;
    let query = ProductQuery {
        name: filter_value(&req.filters, "ProductName"),
        full_text: filter_value(&req.filters, "FullTextSearch"),
        portfolio_id: None,
    };
    let listing = ctx.store().list_products_in(&granted, &query, req.paging.order(), req.paging.page()).await?;
    let (products, total) = &*listing;
    let page = req.paging.page();
    Answer::serialize(&ListAnswer {
        page_number: page.number,
        page_size: page.size,
        total_count: *total,
        product_summaries: products.iter().map(|(product, holders)| summary(ctx, product, *holders as usize)).collect(),
    })
}

pub(super) async fn get(ctx: &Ctx<'_>, req: GetRequest) -> Result<Value, ApiError> {
    let granted = ctx.store().portfolios_granted_to(ctx.principal).await?;
    let product = ctx.store().product(&req.product_id).await?.ok_or_else(|| ApiError::not_found("Product", &req.product_id))?;
    let links = ctx.store().product_portfolios(std::slice::from_ref(&product.product_id), &granted).await?;
    if links.is_empty() {
        return Err(ApiError::not_found("Product", &req.product_id));
    }
    Ok(serde_json::json!({ "ProductSummary": summary(ctx, &product, links.len()) }))
}
