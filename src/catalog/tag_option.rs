//! Tag options: create, read, update, delete, list, associate with products and portfolios, and
//! list the resources of one. Their key/value rules live in [`super::tag`].

use serde::{Deserialize, Serialize};

use super::error::DomainError;
use super::tag::{key_problem, value_problem};
use super::wire::{format_time, Paged, Paging};
use super::Catalog;
use crate::store::tag_option::{TagOption, TagOptionQuery, TagOptionWrite, TaggedResource};
use crate::store::{new_id, now_ms};

/// `CreateTagOption`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewTagOption {
    pub key: String,
    pub value: String,
}

/// `UpdateTagOption`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOptionUpdate {
    pub tag_option_id: String,
    pub value: Option<String>,
    pub active: Option<bool>,
}

/// The request naming one tag option.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOptionRef {
    pub tag_option_id: String,
}

/// `ListTagOptions.Filters`: one JSON object, not a list.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOptionFilters {
    pub key: Option<String>,
    pub value: Option<String>,
    pub active: Option<bool>,
    pub full_text_search: Option<String>,
}

/// `ListTagOptions`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOptionListing {
    #[serde(flatten)]
    pub paging: Paging,
    pub filters: Option<TagOptionFilters>,
}

/// `AssociateTagOptionWithResource` and `DisAssociateTagOptionFromResource`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOptionLink {
    pub resource_id: String,
    pub tag_option_id: String,
}

/// `ListResourcesForTagOption`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceListing {
    #[serde(flatten)]
    pub paging: Paging,
    pub resource_type: String,
    pub tag_option_id: String,
}

/// The `TagOptionDetail` object (also each of a product's or portfolio's `TagOptions`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOptionDetail {
    pub tag_option_id: String,
    pub key: String,
    pub value: String,
    pub active: bool,
    pub owner: String,
}

impl From<TagOption> for TagOptionDetail {
    fn from(t: TagOption) -> Self {
        TagOptionDetail { tag_option_id: t.tag_option_id, key: t.key, value: t.value, active: t.active, owner: t.owner }
    }
}

/// The answer of create, get and update.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOptionView {
    pub tag_option_detail: TagOptionDetail,
}

/// `ListTagOptions`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagOptions {
    #[serde(flatten)]
    pub page: Paged,
    pub tag_option_details: Vec<TagOptionDetail>,
}

/// One resource of a tag option.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceDetail {
    pub resource_id: String,
    pub resource_arn: String,
    pub resource_name: String,
    pub description: String,
    pub create_time: String,
}

/// `ListResourcesForTagOption`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaggedResources {
    #[serde(flatten)]
    pub page: Paged,
    pub resource_details: Vec<ResourceDetail>,
}

fn check(name: &str, problem: Option<&str>) -> Result<(), DomainError> {
    match problem {
        Some(why) => Err(DomainError::invalid_parameter(name, format!("The parameter {name} {why}."))),
        None => Ok(()),
    }
}

fn written(outcome: TagOptionWrite, id: &str) -> Result<(), DomainError> {
    match outcome {
        TagOptionWrite::Done => Ok(()),
        TagOptionWrite::NotFound => Err(DomainError::not_found("TagOption", id)),
        TagOptionWrite::Conflict(why) => Err(DomainError::invalid_status("TagOption", why)),
    }
}

impl Catalog<'_> {
    /// The `TagOptions` of a product or portfolio.
    pub(super) async fn tag_options_of(&self, resource_id: &str) -> Result<Vec<TagOptionDetail>, DomainError> {
        let options = self.store.resource_tag_options(resource_id).await?;
        Ok(options
            .into_iter()
            .map(|t| TagOptionDetail { tag_option_id: t.tag_option_id, key: t.key, value: t.value, active: t.active, owner: t.owner })
            .collect())
    }

    async fn tag_option(&self, id: &str) -> Result<TagOption, DomainError> {
        self.store.tag_option(id).await?.ok_or_else(|| DomainError::not_found("TagOption", id))
    }

    /// `CreateTagOption`.
    pub async fn create_tag_option(&self, req: NewTagOption) -> Result<TagOptionView, DomainError> {
        check("Key", key_problem(&req.key))?;
        check("Value", value_problem(&req.value))?;
        let option = TagOption {
            tag_option_id: new_id("tag"),
            key: req.key,
            value: req.value,
            active: true,
            owner: self.account_id.to_string(),
            created_at: now_ms(),
        };
        if !self.store.insert_tag_option(&option).await? {
            return Err(DomainError::invalid_status(
                "TagOption",
                format!("A tag option with key {:?} and value {:?} exists already.", option.key, option.value),
            ));
        }
        Ok(TagOptionView { tag_option_detail: option.into() })
    }

    /// `GetTagOption`.
    pub async fn get_tag_option(&self, req: TagOptionRef) -> Result<TagOptionView, DomainError> {
        Ok(TagOptionView { tag_option_detail: self.tag_option(&req.tag_option_id).await?.into() })
    }

    /// `UpdateTagOption`.
    pub async fn update_tag_option(&self, req: TagOptionUpdate) -> Result<TagOptionView, DomainError> {
        if let Some(value) = &req.value {
            check("Value", value_problem(value))?;
        }
        written(self.store.update_tag_option(&req.tag_option_id, req.value.as_deref(), req.active).await?, &req.tag_option_id)?;
        Ok(TagOptionView { tag_option_detail: self.tag_option(&req.tag_option_id).await?.into() })
    }

    /// `DeleteTagOption`.
    pub async fn delete_tag_option(&self, req: TagOptionRef) -> Result<(), DomainError> {
        written(self.store.delete_tag_option(&req.tag_option_id).await?, &req.tag_option_id)
    }

    /// `ListTagOptions`.
    pub async fn list_tag_options(&self, req: TagOptionListing) -> Result<TagOptions, DomainError> {
        let filters = req.filters.unwrap_or_default();
        let query = TagOptionQuery {
            key: filters.key,
            value: filters.value,
            // `Active` defaults to true as documented, also when no Filters are sent.
            active: Some(filters.active.unwrap_or(true)),
            full_text: filters.full_text_search.filter(|t| !t.is_empty()),
        };
        let (options, total) = self.store.list_tag_options(&query, req.paging.order(), req.paging.page()).await?;
        Ok(TagOptions { page: req.paging.answer(total), tag_option_details: options.into_iter().map(Into::into).collect() })
    }

    /// `AssociateTagOptionWithResource`: the kind of resource is read from its id's prefix.
    pub async fn associate_tag_option(&self, req: TagOptionLink) -> Result<(), DomainError> {
        let id = &req.resource_id;
        let kind = TaggedResource::of_id(id).ok_or_else(|| {
            DomainError::invalid_parameter(
                "ResourceId",
                format!("The parameter ResourceId {id:?} names neither a product (prod-…) nor a portfolio (port-…)."),
            )
        })?;
        match kind {
            TaggedResource::Product => self.product(id).await.map(drop)?,
            TaggedResource::Portfolio => self.portfolio(id).await.map(drop)?,
        }
        written(self.store.associate_tag_option(&req.tag_option_id, kind, id).await?, &req.tag_option_id)
    }

    /// `DisAssociateTagOptionFromResource`.
    pub async fn disassociate_tag_option(&self, req: TagOptionLink) -> Result<(), DomainError> {
        self.tag_option(&req.tag_option_id).await?;
        if !self.store.disassociate_tag_option(&req.tag_option_id, &req.resource_id).await? {
            let message = format!("The tag option {:?} is not associated with the resource {:?}.", req.tag_option_id, req.resource_id);
            return Err(DomainError::Absent { kind: "TagOption", message });
        }
        Ok(())
    }

    /// `ListResourcesForTagOption`.
    pub async fn tag_option_resources(&self, req: ResourceListing) -> Result<TaggedResources, DomainError> {
        // The SDK documents `product` and `Portfolio`; any spelling of either is accepted.
        let kind = match req.resource_type.to_ascii_lowercase().as_str() {
            "product" => TaggedResource::Product,
            "portfolio" => TaggedResource::Portfolio,
            _ => {
                return Err(DomainError::invalid_parameter(
                    "ResourceType",
                    format!("The parameter ResourceType must be product or Portfolio, not {:?}.", req.resource_type),
                ))
            }
        };
        self.tag_option(&req.tag_option_id).await?;
        let (resources, total) = self.store.tag_option_resources(&req.tag_option_id, kind, req.paging.page()).await?;
        let arn_kind = kind.name().to_ascii_lowercase();
        let resource_details = resources
            .into_iter()
            .map(|r| ResourceDetail {
                resource_arn: self.arn(&arn_kind, &r.resource_id),
                resource_id: r.resource_id,
                resource_name: r.name,
                description: r.description,
                create_time: format_time(r.created_at),
            })
            .collect();
        Ok(TaggedResources { page: req.paging.answer(total), resource_details })
    }
}
