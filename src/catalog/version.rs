//! A product version as provisioning sees it: its stored template parsed and its parameters
//! derived. Launch, update and plan validation call [`launchable_version`]; the workers can call
//! [`version_template`] to rebuild a workspace.

use super::error::DomainError;
use super::parameters::{self, ParameterConstraint};
use super::template::{self, ParsedTemplate};
use crate::store::product::ProductVersion;
use crate::store::Store;

/// A version whose template can be provisioned.
#[derive(Debug, Clone)]
pub struct LaunchableVersion {
    /// The version row.
    pub version: ProductVersion,
    /// Its Terraform template.
    pub template: ParsedTemplate,
    /// Its parameters (before any `Template` constraint narrows them).
    pub parameters: Vec<ParameterConstraint>,
}

/// `InvalidStatus.<kind>` of a version whose stored template breaks a rule added after its upload.
pub const REFUSED_KIND: &str = "ProductVersion";

/// The parsed template of a version and its parameters; `None` for a native ROS template.
/// A stored template the checks now refuse is `409 InvalidStatus.ProductVersion` with the reason.
pub async fn version_template(
    store: &Store,
    version: &ProductVersion,
) -> Result<Option<(ParsedTemplate, Vec<ParameterConstraint>)>, DomainError> {
    if version.template_type != template::TERRAFORM {
        return Ok(None);
    }
    let id = version.template_id.as_deref().unwrap_or_default();
    let stored = store
        .template(id)
        .await?
        .ok_or_else(|| DomainError::Internal(format!("template {id:?} of version {} is missing", version.product_version_id)))?;
    // Checked at upload; failing now means a rule was added since (e.g. override files are
    // refused): the version is never run, and says why.
    let parsed = template::parse(&stored.body).map_err(|e| match e {
        template::TemplateError::Internal(_) => DomainError::from(e),
        e => DomainError::invalid_status(
            REFUSED_KIND,
            format!(
                "The template of product version {} cannot be provisioned: {e} Publish a corrected template as a new version.",
                version.product_version_id
            ),
        ),
    })?;
    let parameters = parameters::derive(&parsed, &stored.terraform_variables);
    Ok(Some((parsed, parameters)))
}

/// The version `version_id` of `product_id`, refused unless it is active and provisionable:
/// `404 EntityNotExists.ProductVersion` when missing or of another product, `409
/// InvalidStatus.ProductVersion` when inactive, a `RosStandardTemplate`, or a template stored before
/// a rule that now refuses it.
pub async fn launchable_version(store: &Store, product_id: &str, version_id: &str) -> Result<LaunchableVersion, DomainError> {
    let version = store
        .product_version(version_id)
        .await?
        .filter(|v| v.product_id == product_id)
        .ok_or_else(|| DomainError::not_found("ProductVersion", version_id))?;
    if !version.active {
        return Err(DomainError::invalid_status("ProductVersion", format!("The product version {version_id} is not active.")));
    }
    match version_template(store, &version).await? {
        Some((template, _)) if template.displaces_settings.is_some() => Err(DomainError::invalid_status(
            REFUSED_KIND,
            format!(
                "The template of product version {version_id} cannot be provisioned: {} Publish a corrected template as a new version.",
                template.displaces_settings.unwrap_or_default()
            ),
        )),
        Some((template, parameters)) => Ok(LaunchableVersion { version, template, parameters }),
        None => Err(DomainError::invalid_status(
            "ProductVersion",
            format!(
                "The product version {version_id} uses a {} template, which this server cannot provision; only {} \
                 versions can be launched.",
                version.template_type,
                template::TERRAFORM
            ),
        )),
    }
}
