//! The RPC API: the action table, parameter decoding against the spec, authorisation, and one
//! `match` from action to handler. Handlers are grouped by resource and return the response
//! object without `RequestId`, which [`rpc`] adds.

pub mod action;
mod audit;
mod constraint;
mod enduser;
pub mod error;
mod launch_option;
mod metrics;
mod plan;
mod portfolio;
mod principal;
mod provisioning;
mod product;
mod region;
pub mod rpc;
pub mod spec;
mod tag_option;
mod template;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::auth::Authenticator;
use crate::store::principal::Principal;
use crate::store::{Page, SortOrder, Store};
use action::{Action, Audience};
use error::ApiError;

/// A region this installation offers.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Region {
    /// e.g. `cn-hangzhou`.
    pub region_id: String,
    /// Display name.
    pub local_name: String,
    /// Endpoint serving the region.
    pub region_endpoint: String,
}

/// Settings the API needs.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Region used in ARNs and template URLs.
    pub region: String,
    /// Account id used in ARNs (generated once per installation).
    pub account_id: String,
    /// Regions `ListRegions` reports.
    pub regions: Vec<Region>,
    /// Request limits.
    pub limits: crate::ops::limits::Limits,
}

/// Everything a request handler can reach.
pub struct AppState {
    /// Persistence.
    pub store: Store,
    /// Request authentication.
    pub auth: Authenticator,
    /// Settings.
    pub config: ApiConfig,
    /// Seals secrets at rest (task parameters).
    pub secrets: crate::auth::secrets::SecretBox,
    /// The task engine, woken when a task is queued.
    pub engine: Arc<crate::engine::Engine>,
    /// This node's metrics.
    pub metrics: Arc<crate::ops::metrics::Metrics>,
    /// Per-caller request rate.
    pub rate: crate::ops::limits::RateLimiter,
}

/// One authenticated call.
pub struct Ctx<'a> {
    /// Shared state.
    pub state: &'a AppState,
    /// The caller.
    pub principal: &'a Principal,
}

impl Ctx<'_> {
    /// The store.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// `acs:servicecatalog:{region}:{account}:{kind}/{id}`.
    pub fn arn(&self, kind: &str, id: &str) -> String {
        format!("acs:servicecatalog:{}:{}:{kind}/{id}", self.state.config.region, self.state.config.account_id)
    }
}

/// Refuses callers the action's audience excludes.
pub fn authorize(action: Action, principal: &Principal) -> Result<(), ApiError> {
    if action.audience() == Audience::Admin && !principal.is_admin {
        return Err(ApiError::forbidden(
            "AdministratorOnly",
            format!("The action {} is allowed to administrators only.", action.name()),
            json!({
                "AuthAction": format!("servicecatalog:{}", action.name()),
                "AuthPrincipalType": principal.principal_type,
                "AuthPrincipalDisplayName": principal.name,
                "NoPermissionType": "ImplicitDeny",
                "PolicyType": "AccountLevelIdentityBasedPolicy",
            }),
        ));
    }
    Ok(())
}

/// Runs the handler of `action` on its decoded parameters.
pub async fn dispatch(ctx: &Ctx<'_>, action: Action, params: Map<String, Value>) -> Result<Value, ApiError> {
    use Action::*;
    match action {
        ListRegions => region::list_regions(ctx),
        CreatePortfolio => portfolio::create(ctx, decode(params)?).await,
        GetPortfolio => portfolio::get(ctx, decode(params)?).await,
        UpdatePortfolio => portfolio::update(ctx, decode(params)?).await,
        DeletePortfolio => portfolio::delete(ctx, decode(params)?).await,
        ListPortfolios => portfolio::list(ctx, decode(params)?).await,
        CreateTemplate => template::create(ctx, decode(params)?).await,
        GetTemplate => template::get(ctx, decode(params)?).await,
        CreateProduct => product::create(ctx, decode(params)?).await,
        GetProductAsAdmin => product::get_as_admin(ctx, decode(params)?).await,
        UpdateProduct => product::update(ctx, decode(params)?).await,
        DeleteProduct => product::delete(ctx, decode(params)?).await,
        ListProductsAsAdmin => product::list_as_admin(ctx, decode(params)?).await,
        CopyProduct => product::copy(ctx, decode(params)?).await,
        CreateProductVersion => product::create_version(ctx, decode(params)?).await,
        GetProductVersion => product::get_version(ctx, decode(params)?).await,
        UpdateProductVersion => product::update_version(ctx, decode(params)?).await,
        DeleteProductVersion => product::delete_version(ctx, decode(params)?).await,
        ListProductVersions => product::list_versions(ctx, decode(params)?).await,
        AssociateProductWithPortfolio => product::associate(ctx, decode(params)?).await,
        DisassociateProductFromPortfolio => product::disassociate(ctx, decode(params)?).await,
        ListProductsAsEndUser => enduser::list(ctx, decode(params)?).await,
        GetProductAsEndUser => enduser::get(ctx, decode(params)?).await,
        LaunchProduct => provisioning::launch(ctx, decode(params)?).await,
        UpdateProvisionedProduct => provisioning::update(ctx, decode(params)?).await,
        TerminateProvisionedProduct => provisioning::terminate(ctx, decode(params)?).await,
        GetProvisionedProduct => provisioning::get(ctx, decode(params)?).await,
        ListProvisionedProducts => provisioning::list(ctx, decode(params)?).await,
        GetTask => provisioning::get_task(ctx, decode(params)?).await,
        ListTasks => provisioning::list_tasks(ctx, decode(params)?).await,
        GetTaskLog => provisioning::get_task_log(ctx, decode(params)?).await,
        ListAuditEvents => audit::list(ctx, decode(params)?).await,
        CreateProvisionedProductPlan => plan::create(ctx, decode(params)?).await,
        UpdateProvisionedProductPlan => plan::update(ctx, decode(params)?).await,
        DeleteProvisionedProductPlan => plan::delete(ctx, decode(params)?).await,
        GetProvisionedProductPlan => plan::get(ctx, decode(params)?).await,
        ListProvisionedProductPlans => plan::list(ctx, decode(params)?).await,
        ExecuteProvisionedProductPlan => plan::execute(ctx, decode(params)?).await,
        CancelProvisionedProductPlan => plan::cancel(ctx, decode(params)?).await,
        ApproveProvisionedProductPlan => plan::approve(ctx, decode(params)?).await,
        ListProvisionedProductPlanApprovers => plan::list_approvers(ctx, decode(params)?).await,
        AssociatePrincipalWithPortfolio => principal::associate(ctx, decode(params)?).await,
        DisassociatePrincipalFromPortfolio => principal::disassociate(ctx, decode(params)?).await,
        ListPrincipals => principal::list(ctx, decode(params)?).await,
        CreateConstraint => constraint::create(ctx, decode(params)?).await,
        GetConstraint => constraint::get(ctx, decode(params)?).await,
        UpdateConstraint => constraint::update(ctx, decode(params)?).await,
        DeleteConstraint => constraint::delete(ctx, decode(params)?).await,
        ListLaunchOptions => launch_option::list(ctx, decode(params)?).await,
        CreateTagOption => tag_option::create(ctx, decode(params)?).await,
        GetTagOption => tag_option::get(ctx, decode(params)?).await,
        UpdateTagOption => tag_option::update(ctx, decode(params)?).await,
        DeleteTagOption => tag_option::delete(ctx, decode(params)?).await,
        ListTagOptions => tag_option::list(ctx, decode(params)?).await,
        AssociateTagOptionWithResource => tag_option::associate(ctx, decode(params)?).await,
        DisAssociateTagOptionFromResource => tag_option::disassociate(ctx, decode(params)?).await,
        ListResourcesForTagOption => tag_option::list_resources(ctx, decode(params)?).await,
    }
}

/// Turns the validated parameter object into an action's typed request.
fn decode<T: DeserializeOwned>(params: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(params))
        .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_REQUEST, "InvalidParameter", format!("The request parameters are invalid: {e}.")))
}

/// Paging and sorting parameters shared by list actions (defaults come from the spec).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Paging {
    #[serde(default = "first_page")]
    page_number: i64,
    #[serde(default = "default_page_size")]
    page_size: i64,
    #[serde(default)]
    sort_order: Option<String>,
}

fn first_page() -> i64 {
    1
}

fn default_page_size() -> i64 {
    10
}

impl Paging {
    /// The page asked for.
    pub fn page(&self) -> Page {
        Page { number: self.page_number, size: self.page_size }
    }

    /// The order asked for (newest first unless `Asc`).
    pub fn order(&self) -> SortOrder {
        match self.sort_order.as_deref() {
            Some("Asc") => SortOrder::Asc,
            _ => SortOrder::Desc,
        }
    }

    /// The paging fields of a list response.
    pub fn response(&self, total: i64) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("PageNumber".into(), self.page_number.into());
        out.insert("PageSize".into(), self.page_size.into());
        out.insert("TotalCount".into(), total.into());
        out
    }
}

/// A `Filters` entry of list actions.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    /// Filter name.
    #[serde(default)]
    pub key: Option<String>,
    /// Filter value.
    #[serde(default)]
    pub value: Option<String>,
}

/// The value of the last filter named `key`.
pub fn filter_value(filters: &[Filter], key: &str) -> Option<String> {
    filters.iter().rev().find(|f| f.key.as_deref() == Some(key)).and_then(|f| f.value.clone())
}

/// `yyyy-MM-ddTHH:mm:ssZ` from ms since the epoch.
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Shared state behind an `Arc`, as the router holds it.
pub type SharedState = Arc<AppState>;
