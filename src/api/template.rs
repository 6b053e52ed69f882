//! Template actions: `CreateTemplate` checks and stores a body and answers its `TemplateUrl`;
//! `GetTemplate` returns the body of a product version. Also turns the `TemplateUrl` given to a
//! product version back into the stored template.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::product::visible_version;
use super::Ctx;
use crate::catalog::template::{self, TerraformVariable};
use crate::store::template::StoredTemplate;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateRequest {
    template_type: String,
    template_body: String,
    #[serde(default)]
    terraform_variables: Vec<TerraformVariable>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetRequest {
    product_id: String,
    product_version_id: String,
}

/// `oss://servicecatalog-<region>/<account>/terraform/template/` — the vendor's URL shape,
/// kept so that clients parsing it keep working; the template id names our stored row.
fn url_prefix(ctx: &Ctx<'_>) -> String {
    format!("oss://servicecatalog-{}/{}/terraform/template/", ctx.state.config.region, ctx.state.config.account_id)
}

const URL_SUFFIX: &str = "/template.json";

pub(super) async fn create(ctx: &Ctx<'_>, req: CreateRequest) -> Result<Value, ApiError> {
    template::validate(&req.template_type, &req.template_body, &req.terraform_variables)?;
    let id = ctx.store().put_template(&req.template_type, &req.template_body, &req.terraform_variables).await?;
    Ok(json!({ "TemplateUrl": format!("{}{id}{URL_SUFFIX}", url_prefix(ctx)) }))
}

pub(super) async fn get(ctx: &Ctx<'_>, req: GetRequest) -> Result<Value, ApiError> {
    let version = visible_version(ctx, &req.product_version_id).await?;
    if version.product_id != req.product_id {
        return Err(ApiError::not_found("ProductVersion", &req.product_version_id));
    }
    let template = match &version.template_id {
        Some(id) => ctx.store().template(id).await?,
        None => None,
    };
    let template = template.ok_or_else(|| ApiError::internal(format!("version {} has no stored template", version.product_version_id)))?;
    Ok(json!({ "TemplateBody": template.body }))
}

/// The stored template a product version's `TemplateUrl` names; `parameter` is the wire name
/// the caller used (`TemplateUrl` or `ProductVersionParameters.TemplateUrl`).
pub(super) async fn resolve_url(ctx: &Ctx<'_>, parameter: &str, url: &str, template_type: &str) -> Result<StoredTemplate, ApiError> {
    let prefix = url_prefix(ctx);
    let id =
        url.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(URL_SUFFIX)).filter(|id| id.starts_with("tpl-") && !id.contains('/'));
    let stored = match id {
        Some(id) => ctx.store().template(id).await?,
        None => None,
    };
    let stored = stored.ok_or_else(|| {
        ApiError::invalid_parameter(
            parameter,
            format!(
                "The parameter {parameter} {url:?} does not name a template of this service; upload the template with \
                 CreateTemplate and pass the TemplateUrl it returns ({prefix}tpl-…{URL_SUFFIX})."
            ),
        )
    })?;
    if stored.template_type != template_type {
        let name = parameter.replace("TemplateUrl", "TemplateType");
        return Err(ApiError::invalid_parameter(
            &name,
            format!("The template at {url} is a {}, but {name} is {template_type}.", stored.template_type),
        ));
    }
    Ok(stored)
}
