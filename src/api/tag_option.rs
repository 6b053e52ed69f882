//! Tag options: create, read, update, delete, list, associate with products and portfolios, and
//! list the resources of one. Their key/value rules live in [`crate::catalog::tag`].

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::{format_time, Ctx, Paging};
use crate::catalog::tag::{key_problem, value_problem};
use crate::store::tag_option::{TagOption, TagOptionQuery, TagOptionWrite, TaggedResource};
use crate::store::{new_id, now_ms};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateRequest {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UpdateRequest {
    tag_option_id: String,
    value: Option<String>,
    active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct IdRequest {
    tag_option_id: String,
}

/// `ListTagOptions.Filters`: one JSON object, not a list.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListFilters {
    key: Option<String>,
    value: Option<String>,
    active: Option<bool>,
    full_text_search: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRequest {
    #[serde(flatten)]
    paging: Paging,
    filters: Option<ListFilters>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ResourceRequest {
    resource_id: String,
    tag_option_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ResourcesRequest {
    #[serde(flatten)]
    paging: Paging,
    resource_type: String,
    tag_option_id: String,
}

/// The `TagOptionDetail` object.
pub(super) fn detail(t: &TagOption) -> Value {
    json!({ "TagOptionId": t.tag_option_id, "Key": t.key, "Value": t.value, "Active": t.active, "Owner": t.owner })
}

/// The `TagOptions` of a product or portfolio response.
pub(super) async fn of_resource(ctx: &Ctx<'_>, resource_id: &str) -> Result<Value, ApiError> {
    let options = ctx.store().resource_tag_options(resource_id).await?;
    Ok(options
        .into_iter()
        .map(|t| json!({ "TagOptionId": t.tag_option_id, "Key": t.key, "Value": t.value, "Active": t.active, "Owner": t.owner }))
        .collect())
}

fn check(name: &str, problem: Option<&str>) -> Result<(), ApiError> {
    match problem {
        Some(why) => Err(ApiError::invalid_parameter(name, format!("The parameter {name} {why}."))),
        None => Ok(()),
    }
}

async fn require(ctx: &Ctx<'_>, id: &str) -> Result<TagOption, ApiError> {
    ctx.store().tag_option(id).await?.ok_or_else(|| ApiError::not_found("TagOption", id))
}

fn written(outcome: TagOptionWrite, id: &str) -> Result<(), ApiError> {
    match outcome {
        TagOptionWrite::Done => Ok(()),
        TagOptionWrite::NotFound => Err(ApiError::not_found("TagOption", id)),
        TagOptionWrite::Conflict(why) => Err(ApiError::invalid_status("TagOption", why)),
    }
}

pub(super) async fn create(ctx: &Ctx<'_>, req: CreateRequest) -> Result<Value, ApiError> {
    check("Key", key_problem(&req.key))?;
    check("Value", value_problem(&req.value))?;
    let option = TagOption {
        tag_option_id: new_id("tag"),
        key: req.key,
        value: req.value,
        active: true,
        owner: ctx.state.config.account_id.clone(),
        created_at: now_ms(),
    };
    if !ctx.store().insert_tag_option(&option).await? {
        return Err(ApiError::invalid_status(
            "TagOption",
            format!("A tag option with key {:?} and value {:?} exists already.", option.key, option.value),
        ));
    }
    Ok(json!({ "TagOptionDetail": detail(&option) }))
}

pub(super) async fn get(ctx: &Ctx<'_>, req: IdRequest) -> Result<Value, ApiError> {
    Ok(json!({ "TagOptionDetail": detail(&require(ctx, &req.tag_option_id).await?) }))
}

pub(super) async fn update(ctx: &Ctx<'_>, req: UpdateRequest) -> Result<Value, ApiError> {
    if let Some(value) = &req.value {
        check("Value", value_problem(value))?;
    }
    written(ctx.store().update_tag_option(&req.tag_option_id, req.value.as_deref(), req.active).await?, &req.tag_option_id)?;
    Ok(json!({ "TagOptionDetail": detail(&require(ctx, &req.tag_option_id).await?) }))
}

pub(super) async fn delete(ctx: &Ctx<'_>, req: IdRequest) -> Result<Value, ApiError> {
    written(ctx.store().delete_tag_option(&req.tag_option_id).await?, &req.tag_option_id)?;
    Ok(json!({}))
}

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Value, ApiError> {
    let filters = req.filters.unwrap_or_default();
    let query = TagOptionQuery {
        key: filters.key,
        value: filters.value,
        // `Active` defaults to true as documented, also when no Filters are sent.
        active: Some(filters.active.unwrap_or(true)),
        full_text: filters.full_text_search.filter(|t| !t.is_empty()),
    };
    let (options, total) = ctx.store().list_tag_options(&query, req.paging.order(), req.paging.page()).await?;
    let mut out = req.paging.response(total);
    out.insert("TagOptionDetails".into(), options.iter().map(detail).collect());
    Ok(Value::Object(out))
}

/// The kind of `resource_id` (by prefix), checked to exist.
async fn resource_kind(ctx: &Ctx<'_>, resource_id: &str) -> Result<TaggedResource, ApiError> {
    let kind = TaggedResource::of_id(resource_id).ok_or_else(|| {
        ApiError::invalid_parameter(
            "ResourceId",
            format!("The parameter ResourceId {resource_id:?} names neither a product (prod-…) nor a portfolio (port-…)."),
        )
    })?;
    let exists = match kind {
        TaggedResource::Product => ctx.store().product(resource_id).await?.is_some(),
        TaggedResource::Portfolio => ctx.store().portfolio(resource_id).await?.is_some(),
    };
    if !exists {
        return Err(ApiError::not_found(kind.name(), resource_id));
    }
    Ok(kind)
}

pub(super) async fn associate(ctx: &Ctx<'_>, req: ResourceRequest) -> Result<Value, ApiError> {
    let kind = resource_kind(ctx, &req.resource_id).await?;
    written(ctx.store().associate_tag_option(&req.tag_option_id, kind, &req.resource_id).await?, &req.tag_option_id)?;
    Ok(json!({}))
}

pub(super) async fn disassociate(ctx: &Ctx<'_>, req: ResourceRequest) -> Result<Value, ApiError> {
    require(ctx, &req.tag_option_id).await?;
    if !ctx.store().disassociate_tag_option(&req.tag_option_id, &req.resource_id).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "EntityNotExists.TagOption",
            format!("The tag option {:?} is not associated with the resource {:?}.", req.tag_option_id, req.resource_id),
        ));
    }
    Ok(json!({}))
}

pub(super) async fn list_resources(ctx: &Ctx<'_>, req: ResourcesRequest) -> Result<Value, ApiError> {
    // The SDK documents `product` and `Portfolio`; any spelling of either is accepted.
    let kind = match req.resource_type.to_ascii_lowercase().as_str() {
        "product" => TaggedResource::Product,
        "portfolio" => TaggedResource::Portfolio,
        _ => {
            return Err(ApiError::invalid_parameter(
                "ResourceType",
                format!("The parameter ResourceType must be product or Portfolio, not {:?}.", req.resource_type),
            ))
        }
    };
    require(ctx, &req.tag_option_id).await?;
    let (resources, total) = ctx.store().tag_option_resources(&req.tag_option_id, kind, req.paging.page()).await?;
    let arn_kind = kind.name().to_ascii_lowercase();
    let details: Vec<Value> = resources
        .iter()
        .map(|r| {
            json!({
                "ResourceId": r.resource_id,
                "ResourceArn": ctx.arn(&arn_kind, &r.resource_id),
                "ResourceName": r.name,
                "Description": r.description,
                "CreateTime": format_time(r.created_at),
            })
        })
        .collect();
    let mut out = req.paging.response(total);
    out.insert("ResourceDetails".into(), details.into());
    Ok(Value::Object(out))
}
