//! Product versions and their templates: the version actions of administrators and those end
//! users share (seeing only active versions of products their grants reach), `CreateTemplate`
//! and `GetTemplate`, the `TemplateUrl` of a version turned back into its stored template, and a
//! version as provisioning sees it — its stored template parsed and its parameters derived.
//! Launch, update and plan validation call [`launchable_version`]; the workers can call
//! [`version_template`] to rebuild a workspace.

use serde::{Deserialize, Serialize};

use super::error::DomainError;
use super::parameters::{self, ParameterConstraint};
use super::template::{self, ParsedTemplate, TerraformVariable, TERRAFORM};
use super::wire::format_time;
use super::Catalog;
use crate::fetch::{self, Location, TemplateSource};
use crate::store::product::{Deletion, ProductVersion, VersionUpdate};
use crate::store::template::StoredTemplate;
use crate::store::{new_id, now_ms, Store};

/// A version whose template can be provisioned.
#[derive(Debug, Clone)]
pub struct LaunchableVersion {
    pub version: ProductVersion,
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

/// The fields of a new version: `CreateProductVersion`'s, and `CreateProduct`'s
/// `ProductVersionParameters` (where name and URL may be missing; defaults filled by the spec).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionFields {
    pub product_version_name: Option<String>,
    pub template_type: Option<String>,
    pub template_url: Option<String>,
    pub description: Option<String>,
    pub guidance: String,
    pub active: bool,
}

/// `CreateProductVersion`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewVersion {
    pub product_id: String,
    #[serde(flatten)]
    pub fields: VersionFields,
}

/// `UpdateProductVersion`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionChange {
    pub product_version_id: String,
    pub product_version_name: String,
    pub description: Option<String>,
    pub guidance: Option<String>,
    pub active: Option<bool>,
}

/// The request naming one version, and the answer of create and update.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionRef {
    pub product_version_id: String,
}

/// `CreateTemplate`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewTemplate {
    pub template_type: String,
    pub template_body: String,
    #[serde(default)]
    pub terraform_variables: Vec<TerraformVariable>,
}

/// `GetTemplate`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateRef {
    pub product_id: String,
    pub product_version_id: String,
}

/// `CreateTemplate`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateUrl {
    pub template_url: String,
}

/// `GetTemplate`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplateBody {
    pub template_body: String,
}

/// The `ProductVersionDetail` object, with our `Launchable` extension (false for versions this
/// server cannot provision: native ROS templates), our `TemplateSource` extension (where a
/// template fetched from a Git or HTTP(S) `TemplateUrl` came from) and, from
/// `GetProductVersion`, our `ParameterConstraints` extension.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionDetail {
    pub product_version_id: String,
    pub product_version_name: String,
    pub product_id: String,
    pub description: String,
    pub active: bool,
    pub guidance: String,
    pub template_type: String,
    pub template_url: String,
    pub create_time: String,
    pub launchable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_source: Option<TemplateSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter_constraints: Option<Vec<ParameterConstraint>>,
}

impl From<&ProductVersion> for VersionDetail {
    fn from(v: &ProductVersion) -> Self {
        VersionDetail {
            product_version_id: v.product_version_id.clone(),
            product_version_name: v.product_version_name.clone(),
            product_id: v.product_id.clone(),
            description: v.description.clone(),
            active: v.active,
            guidance: v.guidance.clone(),
            template_type: v.template_type.clone(),
            template_url: v.template_url.clone(),
            create_time: format_time(v.created_at),
            launchable: v.template_type == TERRAFORM,
            // Written by `new_version` from a `TemplateSource`.
            template_source: v.template_source.as_deref().and_then(|s| serde_json::from_str(s).ok()),
            parameter_constraints: None,
        }
    }
}

/// `GetProductVersion`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionView {
    pub product_version_detail: VersionDetail,
}

/// `ListProductVersions`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Versions {
    pub product_version_details: Vec<VersionDetail>,
}

const URL_SUFFIX: &str = "/template.json";

impl Catalog<'_> {
    /// A version the caller may see: any for administrators, an active version of a reachable
    /// product for end users.
    pub async fn visible_version(&self, id: &str) -> Result<ProductVersion, DomainError> {
        let version = self
            .store
            .product_version(id)
            .await?
            .filter(|v| v.active || self.caller.is_admin)
            .ok_or_else(|| DomainError::not_found("ProductVersion", id))?;
        self.check_reachable(&version.product_id).await.map_err(|_| DomainError::not_found("ProductVersion", id))?;
        Ok(version)
    }

    /// A new version row from checked fields; `prefix` prefixes wire names in errors.
    pub(super) async fn new_version(
        &self,
        prefix: &str,
        product_id: &str,
        template_type: &str,
        fields: VersionFields,
    ) -> Result<ProductVersion, DomainError> {
        let missing = |name: &str| DomainError::missing_parameter(&format!("{prefix}{name}"));
        let name = fields.product_version_name.ok_or_else(|| missing("ProductVersionName"))?;
        let template_url = fields.template_url.ok_or_else(|| missing("TemplateUrl"))?;
        let parameter = format!("{prefix}TemplateUrl");
        let (template_id, source) = if fetch::is_source(&template_url) {
            let refused = |e: fetch::FetchError| DomainError::invalid_parameter(&parameter, format!("{parameter}: {e}"));
            self.sources.check_enabled().map_err(refused)?;
            let location = fetch::parse(&template_url).map_err(refused)?;
            let (id, source) = self.fetch_template(&parameter, &template_url, &location, template_type).await?;
            (id, Some(source))
        } else {
            let stored = self.resolve_url(&parameter, &template_url, template_type).await?;
            if template_type == TERRAFORM {
                self.check_served(&parameter, &stored.body)?;
            }
            (stored.template_id, None)
        };
        Ok(ProductVersion {
            product_version_id: new_id("pv"),
            product_id: product_id.to_string(),
            product_version_name: name,
            description: fields.description.unwrap_or_default(),
            active: fields.active,
            guidance: fields.guidance,
            template_type: template_type.to_string(),
            template_url,
            template_id: Some(template_id),
            template_source: source.map(|s| serde_json::to_string(&s).expect("a source serialises")),
            created_at: now_ms(),
        })
    }

    /// `CreateProductVersion`.
    pub async fn create_version(&self, req: NewVersion) -> Result<VersionRef, DomainError> {
        let product = self.product(&req.product_id).await?;
        let template_type = req.fields.template_type.clone().unwrap_or_default();
        if template_type != product.template_type {
            return Err(DomainError::invalid_parameter(
                "TemplateType",
                format!("The product {} holds {} versions, not {template_type}.", product.product_id, product.template_type),
            ));
        }
        let version = self.new_version("", &product.product_id, &template_type, req.fields).await?;
        self.store.insert_product_version(&version).await?;
        Ok(VersionRef { product_version_id: version.product_version_id })
    }

    /// `UpdateProductVersion`.
    pub async fn update_version(&self, req: VersionChange) -> Result<VersionRef, DomainError> {
        let update =
            VersionUpdate { name: req.product_version_name, description: req.description, guidance: req.guidance, active: req.active };
        if !self.store.update_product_version(&req.product_version_id, &update).await? {
            return Err(DomainError::not_found("ProductVersion", &req.product_version_id));
        }
        Ok(VersionRef { product_version_id: req.product_version_id })
    }

    /// `DeleteProductVersion`.
    pub async fn delete_version(&self, req: VersionRef) -> Result<(), DomainError> {
        let id = &req.product_version_id;
        match self.store.delete_product_version(id).await? {
            Deletion::Deleted => Ok(()),
            Deletion::NotFound => Err(DomainError::not_found("ProductVersion", id)),
            Deletion::InUse(used) => {
                Err(DomainError::invalid_status("ProductVersion", format!("The product version {id} cannot be deleted: {used}.")))
            }
            Deletion::LastVersion(used) => Err(DomainError::invalid_status(
                "ProductVersion",
                format!("The product version {id} is the last version of its product, which is in use: {used}."),
            )),
        }
    }

    /// `GetProductVersion`, with the version's parameters (empty for native ROS templates).
    pub async fn get_version(&self, req: VersionRef) -> Result<VersionView, DomainError> {
        let version = self.visible_version(&req.product_version_id).await?;
        // A version whose template is now refused is still shown (to be deactivated or deleted);
        // launching it says why it cannot run.
        let parameters = match version_template(self.store, &version).await {
            Ok(Some((_, parameters))) => parameters,
            Ok(None) | Err(DomainError::InvalidStatus { kind: REFUSED_KIND, .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let product_version_detail = VersionDetail { parameter_constraints: Some(parameters), ..VersionDetail::from(&version) };
        Ok(VersionView { product_version_detail })
    }

    /// `ListProductVersions`: only active versions for end users.
    pub async fn versions(&self, req: super::product::ProductRef) -> Result<Versions, DomainError> {
        self.product(&req.product_id).await?;
        self.check_reachable(&req.product_id).await?;
        let versions = self.store.product_versions(&req.product_id, !self.caller.is_admin).await?;
        Ok(Versions { product_version_details: versions.iter().map(VersionDetail::from).collect() })
    }

    /// `oss://servicecatalog-<region>/<account>/terraform/template/` — the vendor's URL shape,
    /// kept so that clients parsing it keep working; the template id names our stored row.
    fn url_prefix(&self) -> String {
        format!("oss://servicecatalog-{}/{}/terraform/template/", self.region, self.account_id)
    }

    /// `CreateTemplate`: checks and stores a body.
    pub async fn create_template(&self, req: NewTemplate) -> Result<TemplateUrl, DomainError> {
        template::validate(&req.template_type, &req.template_body, &req.terraform_variables)?;
        let id = self.store.put_template(&req.template_type, &req.template_body, &req.terraform_variables).await?;
        Ok(TemplateUrl { template_url: format!("{}{id}{URL_SUFFIX}", self.url_prefix()) })
    }

    /// `GetTemplate`: the body of a version the caller may see.
    pub async fn get_template(&self, req: TemplateRef) -> Result<TemplateBody, DomainError> {
        let version = self.visible_version(&req.product_version_id).await?;
        if version.product_id != req.product_id {
            return Err(DomainError::not_found("ProductVersion", &req.product_version_id));
        }
        let template = match &version.template_id {
            Some(id) => self.store.template(id).await?,
            None => None,
        };
        let template =
            template.ok_or_else(|| DomainError::Internal(format!("version {} has no stored template", version.product_version_id)))?;
        Ok(TemplateBody { template_body: template.body })
    }

    /// Refuses a template whose `Transform` no binary of this node runs (`parameter` names its
    /// URL): a version is only created for a template it can provision.
    fn check_served(&self, parameter: &str, body: &str) -> Result<(), DomainError> {
        let transform = template::transform(body)?;
        self.binaries
            .check(transform)
            .map_err(|e| DomainError::invalid_parameter(parameter, format!("The template at {parameter} cannot be provisioned here: {e}.")))
    }

    /// Fetches the template at `location` (the `TemplateUrl` `url`, of wire name `parameter`),
    /// checks it like an uploaded one (its files become the Workspace of a body with the
    /// operator's `Transform`, else the one pasted templates get) and stores it: its id and where it came from. Nothing is stored
    /// when any step fails.
    pub(super) async fn fetch_template(
        &self,
        parameter: &str,
        url: &str,
        location: &Location,
        template_type: &str,
    ) -> Result<(String, TemplateSource), DomainError> {
        if template_type != TERRAFORM {
            let name = parameter.replace("TemplateUrl", "TemplateType");
            return Err(DomainError::invalid_parameter(
                &name,
                format!("Only {TERRAFORM} templates can be fetched from a Git or HTTP(S) TemplateUrl, not {template_type}."),
            ));
        }
        let fetched = fetch::fetch(self.sources, url, location)
            .await
            .map_err(|e| DomainError::invalid_parameter(parameter, format!("{parameter}: {e}")))?;
        let transform = self.sources.transform.clone().unwrap_or_else(|| self.default_transform().to_string());
        let body = serde_json::json!({
            "ROSTemplateFormatVersion": "2015-09-01",
            "Transform": transform,
            "Workspace": fetched.files,
        })
        .to_string();
        template::validate(TERRAFORM, &body, &[]).map_err(|e| match e {
            template::TemplateError::Internal(_) => DomainError::from(e),
            e => DomainError::invalid_parameter(parameter, format!("{parameter}: the template fetched from {url} is refused: {e}")),
        })?;
        self.check_served(parameter, &body)?;
        let id = self.store.put_template(TERRAFORM, &body, &[]).await?;
        Ok((id, fetched.source))
    }

    /// The stored template a product version's `TemplateUrl` names; `parameter` is the wire name
    /// the caller used (`TemplateUrl` or `ProductVersionParameters.TemplateUrl`).
    async fn resolve_url(&self, parameter: &str, url: &str, template_type: &str) -> Result<StoredTemplate, DomainError> {
        let prefix = self.url_prefix();
        let id = url
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(URL_SUFFIX))
            .filter(|id| id.starts_with("tpl-") && !id.contains('/'));
        let stored = match id {
            Some(id) => self.store.template(id).await?,
            None => None,
        };
        let stored = stored.ok_or_else(|| {
            DomainError::invalid_parameter(
                parameter,
                format!(
                    "The parameter {parameter} {url:?} does not name a template of this service; upload the template with \
                     CreateTemplate and pass the TemplateUrl it returns ({prefix}tpl-…{URL_SUFFIX}), or, where the operator \
                     allows it, name a Git repository (git::https://host/repo.git//dir?ref=TAG) or an HTTP(S) .tf, .tf.json, \
                     .zip or .tar.gz file."
                ),
            )
        })?;
        if stored.template_type != template_type {
            let name = parameter.replace("TemplateUrl", "TemplateType");
            return Err(DomainError::invalid_parameter(
                &name,
                format!("The template at {url} is a {}, but {name} is {template_type}.", stored.template_type),
            ));
        }
        Ok(stored)
    }
}
