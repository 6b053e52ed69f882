//! Product and product version actions for administrators, the version actions end users share
//! (seeing only active versions of products their grants reach), and the association of
//! products with portfolios.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::ApiError;
use super::{filter_value, format_time, template as template_api, Ctx, Filter, Paging};
use crate::catalog::error::DomainError;
use crate::catalog::template::TERRAFORM;
use crate::catalog::version::version_template;
use crate::store::product::{Deletion, Product, ProductQuery, ProductVersion, VersionUpdate};
use crate::store::{new_id, now_ms};

/// The only product type.
const PRODUCT_TYPE: &str = "Ros";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateRequest {
    product_name: String,
    provider_name: String,
    description: Option<String>,
    template_type: Option<String>,
    product_version_parameters: Option<VersionParameters>,
}

/// `ProductVersionParameters` of `CreateProduct` (defaults filled by the spec decoder).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct VersionParameters {
    product_version_name: Option<String>,
    template_url: Option<String>,
    template_type: Option<String>,
    description: Option<String>,
    guidance: String,
    active: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ProductIdRequest {
    product_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateRequest {
    product_id: String,
    product_name: String,
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
    portfolio_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CopyRequest {
    source_product_arn: String,
    target_product_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateVersionRequest {
    product_id: String,
    product_version_name: String,
    template_type: String,
    template_url: String,
    description: Option<String>,
    guidance: String,
    active: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateVersionRequest {
    product_version_id: String,
    product_version_name: String,
    description: Option<String>,
    guidance: Option<String>,
    active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct VersionIdRequest {
    product_version_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct AssociationRequest {
    portfolio_id: String,
    product_id: String,
}

/// The `ProductDetail` (admin) or `ProductSummary` (end user) object.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ProductView<'a> {
    product_id: &'a str,
    product_arn: String,
    product_name: &'a str,
    product_type: &'a str,
    provider_name: &'a str,
    description: &'a str,
    template_type: &'a str,
    create_time: String,
    /// End users only: whether exactly one granted portfolio holds the product.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) has_default_launch_option: Option<bool>,
}

/// The `ProductDetail` of `p`.
pub(super) fn detail<'a>(ctx: &Ctx<'_>, p: &'a Product) -> ProductView<'a> {
    ProductView {
        product_id: &p.product_id,
        product_arn: ctx.arn("product", &p.product_id),
        product_name: &p.product_name,
        product_type: &p.product_type,
        provider_name: &p.provider_name,
        description: &p.description,
        template_type: &p.template_type,
        create_time: format_time(p.created_at),
        has_default_launch_option: None,
    }
}

/// The `ProductVersionDetail` object, with our `Launchable` extension: false for versions this
/// server cannot provision (native ROS templates).
pub(super) fn version_detail(v: &ProductVersion) -> Value {
    json!({
        "ProductVersionId": v.product_version_id,
        "ProductVersionName": v.product_version_name,
        "ProductId": v.product_id,
        "Description": v.description,
        "Active": v.active,
        "Guidance": v.guidance,
        "TemplateType": v.template_type,
        "TemplateUrl": v.template_url,
        "CreateTime": format_time(v.created_at),
        "Launchable": v.template_type == TERRAFORM,
    })
}

async fn product_or_404(ctx: &Ctx<'_>, id: &str) -> Result<Product, ApiError> {
    ctx.store().product(id).await?.ok_or_else(|| ApiError::not_found("Product", id))
}

/// Refuses end users a product none of their granted portfolios holds (as if it did not exist).
pub(super) async fn check_reachable(ctx: &Ctx<'_>, product_id: &str) -> Result<(), ApiError> {
    if ctx.principal.is_admin {
        return Ok(());
    }
    let granted = ctx.store().portfolios_granted_to(ctx.principal).await?;
    if ctx.store().product_portfolios(&[product_id.to_string()], &granted).await?.is_empty() {
        return Err(ApiError::not_found("Product", product_id));
    }
    Ok(())
}

/// A version the caller may see: any for administrators, an active version of a reachable
/// product for end users.
pub(super) async fn visible_version(ctx: &Ctx<'_>, id: &str) -> Result<ProductVersion, ApiError> {
    let version = ctx
        .store()
        .product_version(id)
        .await?
        .filter(|v| v.active || ctx.principal.is_admin)
        .ok_or_else(|| ApiError::not_found("ProductVersion", id))?;
    check_reachable(ctx, &version.product_id).await.map_err(|_| ApiError::not_found("ProductVersion", id))?;
    Ok(version)
}

/// A new version row from checked parameters; `parameter` prefixes wire names in errors.
#[allow(clippy::too_many_arguments)]
async fn new_version(
    ctx: &Ctx<'_>,
    prefix: &str,
    product_id: &str,
    name: String,
    template_type: &str,
    template_url: String,
    description: Option<String>,
    guidance: String,
    active: bool,
) -> Result<ProductVersion, ApiError> {
    let stored = template_api::resolve_url(ctx, &format!("{prefix}TemplateUrl"), &template_url, template_type).await?;
    Ok(ProductVersion {
        product_version_id: new_id("pv"),
        product_id: product_id.to_string(),
        product_version_name: name,
        description: description.unwrap_or_default(),
        active,
        guidance,
        template_type: template_type.to_string(),
        template_url,
        template_id: Some(stored.template_id),
        created_at: now_ms(),
    })
}

pub(super) async fn create(ctx: &Ctx<'_>, req: CreateRequest) -> Result<Value, ApiError> {
    let version_type = req.product_version_parameters.as_ref().and_then(|p| p.template_type.clone());
    let template_type = match (req.template_type, version_type) {
        (Some(product), Some(version)) if product != version => {
            return Err(ApiError::invalid_parameter(
                "ProductVersionParameters.TemplateType",
                format!("ProductVersionParameters.TemplateType {version} differs from the product's TemplateType {product}."),
            ))
        }
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => TERRAFORM.to_string(),
    };
    let product = Product {
        product_id: new_id("prod"),
        product_name: req.product_name,
        provider_name: req.provider_name,
        description: req.description.unwrap_or_default(),
        product_type: PRODUCT_TYPE.to_string(),
        template_type: template_type.clone(),
        created_at: now_ms(),
    };
    let mut versions = Vec::new();
    if let Some(p) = req.product_version_parameters {
        const PREFIX: &str = "ProductVersionParameters.";
        let name = p.product_version_name.ok_or_else(|| ApiError::missing_parameter(&format!("{PREFIX}ProductVersionName")))?;
        let url = p.template_url.ok_or_else(|| ApiError::missing_parameter(&format!("{PREFIX}TemplateUrl")))?;
        let version = new_version(ctx, PREFIX, &product.product_id, name, &template_type, url, p.description, p.guidance, p.active).await?;
        versions.push(version);
    }
    ctx.store().insert_product(&product, &versions).await?;
    let mut out = json!({ "ProductId": product.product_id });
    if let Some(v) = versions.first() {
        out["ProductVersionId"] = json!(v.product_version_id);
    }
    Ok(out)
}

pub(super) async fn get_as_admin(ctx: &Ctx<'_>, req: ProductIdRequest) -> Result<Value, ApiError> {
    let product = product_or_404(ctx, &req.product_id).await?;
    let tag_options: Vec<Value> = ctx
        .store()
        .resource_tag_options(&product.product_id)
        .await?
        .into_iter()
        .map(|t| json!({"TagOptionId": t.tag_option_id, "Key": t.key, "Value": t.value, "Active": t.active, "Owner": t.owner}))
        .collect();
    Ok(json!({ "ProductDetail": detail(ctx, &product), "TagOptions": tag_options }))
}

pub(super) async fn update(ctx: &Ctx<'_>, req: UpdateRequest) -> Result<Value, ApiError> {
    let found = ctx.store().update_product(&req.product_id, &req.product_name, &req.provider_name, req.description.as_deref()).await?;
    if !found {
        return Err(ApiError::not_found("Product", &req.product_id));
    }
    Ok(json!({ "ProductId": req.product_id }))
}

pub(super) async fn delete(ctx: &Ctx<'_>, req: ProductIdRequest) -> Result<Value, ApiError> {
    match ctx.store().delete_product(&req.product_id).await? {
        Deletion::Deleted => Ok(json!({})),
        Deletion::NotFound => Err(ApiError::not_found("Product", &req.product_id)),
        Deletion::InUse(used) | Deletion::LastVersion(used) => {
            Err(ApiError::invalid_status("Product", format!("The product {} cannot be deleted: {used}.", req.product_id)))
        }
    }
}

pub(super) async fn list_as_admin(ctx: &Ctx<'_>, req: ListRequest) -> Result<Value, ApiError> {
    if let Some(portfolio) = &req.portfolio_id {
        ctx.store().portfolio(portfolio).await?.ok_or_else(|| ApiError::not_found("Portfolio", portfolio))?;
    }
    let query = ProductQuery {
        name: filter_value(&req.filters, "ProductName"),
        full_text: filter_value(&req.filters, "FullTextSearch"),
        portfolio_id: req.portfolio_id,
    };
    // Every product of this installation is local: products shared from other accounts do not exist.
    let (products, total) = if req.scope.as_deref() == Some("Import") {
        (Vec::new(), 0)
    } else {
        ctx.store().list_products(&query, req.paging.order(), req.paging.page()).await?
    };
    let mut out = req.paging.response(total);
    out.insert(
        "ProductDetails".into(),
        serde_json::to_value(products.iter().map(|p| detail(ctx, p)).collect::<Vec<_>>()).map_err(ApiError::internal)?,
    );
    Ok(Value::Object(out))
}

/// The product id of `acs:servicecatalog:<region>:<account>:product/<id>` when the ARN is one
/// of this installation's.
fn product_id_of_arn(ctx: &Ctx<'_>, arn: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::invalid_parameter(
            "SourceProductArn",
            format!("The parameter SourceProductArn {arn:?} is not a product ARN (acs:servicecatalog:<region>:<account>:product/<id>)."),
        )
    };
    let id = arn.rsplit_once(":product/").map(|(_, id)| id).filter(|id| !id.is_empty()).ok_or_else(invalid)?;
    if arn != ctx.arn("product", id) {
        if arn.split(':').count() != 5 || !arn.starts_with("acs:servicecatalog:") {
            return Err(invalid());
        }
        // Another region or account: nothing is shared into this installation.
        return Err(ApiError::not_found("Product", arn));
    }
    Ok(id.to_string())
}

pub(super) async fn copy(ctx: &Ctx<'_>, req: CopyRequest) -> Result<Value, ApiError> {
    let source_id = product_id_of_arn(ctx, &req.source_product_arn)?;
    let source = product_or_404(ctx, &source_id).await?;
    let now = now_ms();
    let product = Product {
        product_id: new_id("prod"),
        product_name: req.target_product_name.unwrap_or_else(|| source.product_name.clone()),
        created_at: now,
        ..source
    };
    let versions: Vec<ProductVersion> = ctx
        .store()
        .product_versions(&source_id, false)
        .await?
        .into_iter()
        .zip(0..)
        // One millisecond apart: the copies list in the source's order.
        .map(|(v, i)| ProductVersion { product_version_id: new_id("pv"), product_id: product.product_id.clone(), created_at: now + i, ..v })
        .collect();
    ctx.store().insert_product(&product, &versions).await?;
    Ok(json!({}))
}

pub(super) async fn create_version(ctx: &Ctx<'_>, req: CreateVersionRequest) -> Result<Value, ApiError> {
    let product = product_or_404(ctx, &req.product_id).await?;
    if req.template_type != product.template_type {
        return Err(ApiError::invalid_parameter(
            "TemplateType",
            format!("The product {} holds {} versions, not {}.", product.product_id, product.template_type, req.template_type),
        ));
    }
    let version = new_version(
        ctx,
        "",
        &product.product_id,
        req.product_version_name,
        &req.template_type,
        req.template_url,
        req.description,
        req.guidance,
        req.active,
    )
    .await?;
    ctx.store().insert_product_version(&version).await?;
    Ok(json!({ "ProductVersionId": version.product_version_id }))
}

pub(super) async fn update_version(ctx: &Ctx<'_>, req: UpdateVersionRequest) -> Result<Value, ApiError> {
    let update = VersionUpdate { name: req.product_version_name, description: req.description, guidance: req.guidance, active: req.active };
    if !ctx.store().update_product_version(&req.product_version_id, &update).await? {
        return Err(ApiError::not_found("ProductVersion", &req.product_version_id));
    }
    Ok(json!({ "ProductVersionId": req.product_version_id }))
}

pub(super) async fn delete_version(ctx: &Ctx<'_>, req: VersionIdRequest) -> Result<Value, ApiError> {
    match ctx.store().delete_product_version(&req.product_version_id).await? {
        Deletion::Deleted => Ok(json!({})),
        Deletion::NotFound => Err(ApiError::not_found("ProductVersion", &req.product_version_id)),
        Deletion::InUse(used) => Err(ApiError::invalid_status(
            "ProductVersion",
            format!("The product version {} cannot be deleted: {used}.", req.product_version_id),
        )),
        Deletion::LastVersion(used) => Err(ApiError::invalid_status(
            "ProductVersion",
            format!("The product version {} is the last version of its product, which is in use: {used}.", req.product_version_id),
        )),
    }
}

/// `GetProductVersion`, with our `ParameterConstraints` extension: the version's parameters as
/// its template declares them (empty for native ROS templates).
pub(super) async fn get_version(ctx: &Ctx<'_>, req: VersionIdRequest) -> Result<Value, ApiError> {
    let version = visible_version(ctx, &req.product_version_id).await?;
    // A version whose template is now refused is still shown (to be deactivated or deleted);
    // launching it says why it cannot run.
    let parameters = match version_template(ctx.store(), &version).await {
        Ok(Some((_, parameters))) => parameters.iter().map(|p| p.to_json()).collect(),
        Ok(None) => Vec::new(),
        Err(DomainError::InvalidStatus { kind: crate::catalog::version::REFUSED_KIND, .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut detail = version_detail(&version);
    detail["ParameterConstraints"] = Value::Array(parameters);
    Ok(json!({ "ProductVersionDetail": detail }))
}

pub(super) async fn list_versions(ctx: &Ctx<'_>, req: ProductIdRequest) -> Result<Value, ApiError> {
    product_or_404(ctx, &req.product_id).await?;
    check_reachable(ctx, &req.product_id).await?;
    let versions = ctx.store().product_versions(&req.product_id, !ctx.principal.is_admin).await?;
    Ok(json!({ "ProductVersionDetails": versions.iter().map(version_detail).collect::<Vec<_>>() }))
}

pub(super) async fn associate(ctx: &Ctx<'_>, req: AssociationRequest) -> Result<Value, ApiError> {
    product_or_404(ctx, &req.product_id).await?;
    ctx.store().portfolio(&req.portfolio_id).await?.ok_or_else(|| ApiError::not_found("Portfolio", &req.portfolio_id))?;
    ctx.store().associate_product(&req.portfolio_id, &req.product_id).await?;
    Ok(json!({}))
}

pub(super) async fn disassociate(ctx: &Ctx<'_>, req: AssociationRequest) -> Result<Value, ApiError> {
    product_or_404(ctx, &req.product_id).await?;
    ctx.store().portfolio(&req.portfolio_id).await?.ok_or_else(|| ApiError::not_found("Portfolio", &req.portfolio_id))?;
    if !ctx.store().disassociate_product(&req.portfolio_id, &req.product_id).await? {
        return Err(ApiError::invalid_status(
            "Product",
            format!(
                "The product {} cannot leave portfolio {}: constraints of the pair remain; delete them first.",
                req.product_id, req.portfolio_id
            ),
        ));
    }
    Ok(json!({}))
}
