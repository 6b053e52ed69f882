//! A product following a Git repository (extension `FollowRepositoryTags`, and the `follow-tags`
//! command that calls it): one new version per tag matching a glob that the product has no
//! version of yet, named like the tag and fetched from it like any Git `TemplateUrl`. Running it
//! again creates only the versions of tags pushed since; a tag whose template is refused is
//! reported and left for the next run.

use globset::Glob;
use serde::{Deserialize, Serialize};

use super::error::DomainError;
use super::template::TERRAFORM;
use super::version::VersionFields;
use super::Catalog;
use crate::fetch::{self, Location};

/// Longest `ProductVersionName`, as the API's spec says.
const MAX_NAME_CHARS: usize = 128;

/// `FollowRepositoryTags`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FollowTags {
    pub product_id: String,
    /// `git::URL[//subdir]`, without `?ref=`.
    pub repository_url: String,
    /// Glob over tag names (`*` when absent).
    pub tag_pattern: Option<String>,
    /// Whether the new versions are active (default true).
    pub active: Option<bool>,
}

/// A version created for a tag.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FollowedTag {
    pub tag: String,
    pub product_version_id: String,
    pub commit: Option<String>,
}

/// A matching tag left without a version, and why.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RefusedTag {
    pub tag: String,
    pub message: String,
}

/// `FollowRepositoryTags`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FollowedTags {
    /// Versions created by this call, in tag order.
    pub created_product_versions: Vec<FollowedTag>,
    /// Matching tags the product already has a version of.
    pub existing_tags: Vec<String>,
    /// Matching tags whose template was refused (nothing stored for them).
    pub refused_tags: Vec<RefusedTag>,
}

impl Catalog<'_> {
    /// `FollowRepositoryTags`.
    pub async fn follow_tags(&self, req: FollowTags) -> Result<FollowedTags, DomainError> {
        let product = self.product(&req.product_id).await?;
        if product.template_type != TERRAFORM {
            return Err(DomainError::invalid_parameter(
                "ProductId",
                format!(
                    "The product {} holds {} versions; only {TERRAFORM} products can follow a repository.",
                    product.product_id, product.template_type
                ),
            ));
        }
        let invalid_url = |why: String| DomainError::invalid_parameter("RepositoryUrl", format!("RepositoryUrl: {why}"));
        let (repository, subdir) = match fetch::parse(&req.repository_url).map_err(|e| invalid_url(e.0))? {
            Location::Git { repository, subdir, reference: None } => (repository, subdir),
            _ => {
                return Err(invalid_url(
                    "it must name a Git repository as git::URL[//subdir], without ?ref= (the tags are the references).".into(),
                ))
            }
        };
        let pattern = req.tag_pattern.as_deref().unwrap_or("*");
        let matcher = Glob::new(pattern)
            .map_err(|e| DomainError::invalid_parameter("TagPattern", format!("TagPattern {pattern:?} is not a valid glob: {e}.")))?
            .compile_matcher();
        let mut tags = fetch::tags(self.sources, &repository).await.map_err(|e| invalid_url(e.0))?;
        tags.retain(|tag| matcher.is_match(tag));
        tags.sort();
        let existing: Vec<String> =
            self.store.product_versions(&product.product_id, false).await?.into_iter().map(|v| v.product_version_name).collect();
        let mut answer = FollowedTags { created_product_versions: Vec::new(), existing_tags: Vec::new(), refused_tags: Vec::new() };
        for tag in tags {
            if existing.contains(&tag) {
                answer.existing_tags.push(tag);
                continue;
            }
            if tag.chars().count() > MAX_NAME_CHARS {
                let message = format!("the tag is longer than the {MAX_NAME_CHARS} characters of a ProductVersionName.");
                answer.refused_tags.push(RefusedTag { tag, message });
                continue;
            }
            let reference: String = form_urlencoded::byte_serialize(tag.as_bytes()).collect();
            let subdir = if subdir.is_empty() { String::new() } else { format!("//{subdir}") };
            let fields = VersionFields {
                product_version_name: Some(tag.clone()),
                template_type: Some(TERRAFORM.into()),
                template_url: Some(format!("git::{repository}{subdir}?ref={reference}")),
                description: None,
                guidance: "Default".into(),
                active: req.active.unwrap_or(true),
            };
            match self.new_version("", &product.product_id, TERRAFORM, fields).await {
                Ok(version) => {
                    self.store.insert_product_version(&version).await?;
                    let commit = version
                        .template_source
                        .as_deref()
                        .and_then(|s| serde_json::from_str::<fetch::TemplateSource>(s).ok())
                        .and_then(|s| s.commit);
                    answer.created_product_versions.push(FollowedTag { tag, product_version_id: version.product_version_id, commit });
                }
                Err(DomainError::InvalidParameter { message, .. }) => answer.refused_tags.push(RefusedTag { tag, message }),
                Err(e) => return Err(e),
            }
        }
        Ok(answer)
    }
}
