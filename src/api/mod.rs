//! The RPC API: the action table, parameter decoding against the spec, authorisation, and one
//! `match` from action to handler. Handlers are grouped by resource and return the response
//! object without `RequestId`, which [`rpc`] adds.

pub mod action;
mod audit;
mod constraint;
mod enduser;
pub mod error;
mod launch_option;
pub mod limits;
mod metrics;
mod plan;
mod portfolio;
mod principal;
mod product;
mod provisioning;
mod region;
pub mod rpc;
pub mod sign_in;
pub mod spec;
mod tag_option;
mod template;
pub mod trail;

pub use provisioning::task_not_found;

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
    pub limits: limits::Limits,
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
    pub rate: limits::RateLimiter,
    /// Failed console sign-ins per AccessKey ID and client address.
    pub sign_in: sign_in::SignInThrottle,
}

impl AppState {
    /// The provisioning operations, over this node's store, secrets, regions and engine.
    pub fn provisioner(&self) -> crate::provisioning::queue::Provisioner<'_> {
        crate::provisioning::queue::Provisioner {
            store: &self.store,
            secrets: &self.secrets,
            regions: self.config.regions.iter().map(|r| r.region_id.clone()).collect(),
            account_id: &self.config.account_id,
            engine: &self.engine,
        }
    }
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

/// What a handler answers: a JSON object built as a `Value`, or one serialized straight from a
/// typed struct (the hot reads: building a `Value` tree and walking it again cost a `GetTask`
/// a tenth of its CPU; docs/benchmarks.md).
pub enum Answer {
    /// An object built as a `Value`.
    Value(Value),
    /// An object's JSON text.
    Serialized(String),
}

impl Answer {
    /// Serializes a typed answer.
    pub fn serialize(answer: &impl serde::Serialize) -> Result<Answer, ApiError> {
        serde_json::to_string(answer).map(Answer::Serialized).map_err(ApiError::internal)
    }

    /// The answer as a `Value` (for the console and the sample catalog, which read answers).
    pub fn into_value(self) -> Value {
        match self {
            Answer::Value(value) => value,
            Answer::Serialized(text) => serde_json::from_str(&text).unwrap_or_default(),
        }
    }

    /// The answer's `Value`, if it was built as one.
    pub fn as_value(&self) -> Option<&Value> {
        match self {
            Answer::Value(value) => Some(value),
            Answer::Serialized(_) => None,
        }
    }

    /// The response body: the object (`{}` if the handler answered anything else) with
    /// `RequestId` added.
    pub fn into_body(self, request_id: &str) -> String {
        let text = match self {
            Answer::Value(value) if value.is_object() => serde_json::to_string(&value).unwrap_or_else(|_| "{}".into()),
            Answer::Value(_) => "{}".into(),
            Answer::Serialized(text) => text,
        };
        let id = Value::String(request_id.to_string());
        match text.strip_prefix('{').map(str::trim_start) {
            Some(rest) if rest.starts_with('}') => format!("{{\"RequestId\":{id}}}"),
            Some(rest) => format!("{{\"RequestId\":{id},{rest}"),
            None => format!("{{\"RequestId\":{id}}}"),
        }
    }
}

impl From<Value> for Answer {
    fn from(value: Value) -> Self {
        Answer::Value(value)
    }
}

/// Runs the handler of `action` on its decoded parameters.
pub async fn dispatch(ctx: &Ctx<'_>, action: Action, params: Map<String, Value>) -> Result<Answer, ApiError> {
    use Action::*;
    let answer: Answer = match action {
        ListRegions => region::list_regions(ctx)?.into(),
        CreatePortfolio => portfolio::create(ctx, decode(params)?).await?.into(),
        GetPortfolio => portfolio::get(ctx, decode(params)?).await?.into(),
        UpdatePortfolio => portfolio::update(ctx, decode(params)?).await?.into(),
        DeletePortfolio => portfolio::delete(ctx, decode(params)?).await?.into(),
        ListPortfolios => portfolio::list(ctx, decode(params)?).await?.into(),
        CreateTemplate => template::create(ctx, decode(params)?).await?.into(),
        GetTemplate => template::get(ctx, decode(params)?).await?.into(),
        CreateProduct => product::create(ctx, decode(params)?).await?.into(),
        GetProductAsAdmin => product::get_as_admin(ctx, decode(params)?).await?.into(),
        UpdateProduct => product::update(ctx, decode(params)?).await?.into(),
        DeleteProduct => product::delete(ctx, decode(params)?).await?.into(),
        ListProductsAsAdmin => product::list_as_admin(ctx, decode(params)?).await?.into(),
        CopyProduct => product::copy(ctx, decode(params)?).await?.into(),
        CreateProductVersion => product::create_version(ctx, decode(params)?).await?.into(),
        GetProductVersion => product::get_version(ctx, decode(params)?).await?.into(),
        UpdateProductVersion => product::update_version(ctx, decode(params)?).await?.into(),
        DeleteProductVersion => product::delete_version(ctx, decode(params)?).await?.into(),
        ListProductVersions => product::list_versions(ctx, decode(params)?).await?.into(),
        AssociateProductWithPortfolio => product::associate(ctx, decode(params)?).await?.into(),
        DisassociateProductFromPortfolio => product::disassociate(ctx, decode(params)?).await?.into(),
        ListProductsAsEndUser => enduser::list(ctx, decode(params)?).await?,
        GetProductAsEndUser => enduser::get(ctx, decode(params)?).await?.into(),
        LaunchProduct => provisioning::launch(ctx, decode(params)?).await?.into(),
        UpdateProvisionedProduct => provisioning::update(ctx, decode(params)?).await?.into(),
        TerminateProvisionedProduct => provisioning::terminate(ctx, decode(params)?).await?.into(),
        GetProvisionedProduct => provisioning::get(ctx, decode(params)?).await?,
        ListProvisionedProducts => provisioning::list(ctx, decode(params)?).await?.into(),
        GetTask => provisioning::get_task(ctx, decode(params)?).await?,
        ListTasks => provisioning::list_tasks(ctx, decode(params)?).await?.into(),
        GetTaskLog => provisioning::get_task_log(ctx, decode(params)?).await?,
        ListAuditEvents => audit::list(ctx, decode(params)?).await?.into(),
        CreateProvisionedProductPlan => plan::create(ctx, decode(params)?).await?.into(),
        UpdateProvisionedProductPlan => plan::update(ctx, decode(params)?).await?.into(),
        DeleteProvisionedProductPlan => plan::delete(ctx, decode(params)?).await?.into(),
        GetProvisionedProductPlan => plan::get(ctx, decode(params)?).await?,
        ListProvisionedProductPlans => plan::list(ctx, decode(params)?).await?.into(),
        ExecuteProvisionedProductPlan => plan::execute(ctx, decode(params)?).await?.into(),
        CancelProvisionedProductPlan => plan::cancel(ctx, decode(params)?).await?.into(),
        ApproveProvisionedProductPlan => plan::approve(ctx, decode(params)?).await?.into(),
        ListProvisionedProductPlanApprovers => plan::list_approvers(ctx, decode(params)?).await?,
        AssociatePrincipalWithPortfolio => principal::associate(ctx, decode(params)?).await?.into(),
        DisassociatePrincipalFromPortfolio => principal::disassociate(ctx, decode(params)?).await?.into(),
        ListPrincipals => principal::list(ctx, decode(params)?).await?.into(),
        CreateConstraint => constraint::create(ctx, decode(params)?).await?.into(),
        GetConstraint => constraint::get(ctx, decode(params)?).await?.into(),
        UpdateConstraint => constraint::update(ctx, decode(params)?).await?.into(),
        DeleteConstraint => constraint::delete(ctx, decode(params)?).await?.into(),
        ListLaunchOptions => launch_option::list(ctx, decode(params)?).await?.into(),
        CreateTagOption => tag_option::create(ctx, decode(params)?).await?.into(),
        GetTagOption => tag_option::get(ctx, decode(params)?).await?.into(),
        UpdateTagOption => tag_option::update(ctx, decode(params)?).await?.into(),
        DeleteTagOption => tag_option::delete(ctx, decode(params)?).await?.into(),
        ListTagOptions => tag_option::list(ctx, decode(params)?).await?.into(),
        AssociateTagOptionWithResource => tag_option::associate(ctx, decode(params)?).await?.into(),
        DisAssociateTagOptionFromResource => tag_option::disassociate(ctx, decode(params)?).await?.into(),
        ListResourcesForTagOption => tag_option::list_resources(ctx, decode(params)?).await?.into(),
    };
    Ok(answer)
}

/// Turns the validated parameter object into an action's typed request.
fn decode<T: DeserializeOwned>(params: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(params)).map_err(|e| {
        ApiError::new(axum::http::StatusCode::BAD_REQUEST, "InvalidParameter", format!("The request parameters are invalid: {e}."))
    })
}

/// Paging and sorting parameters shared by list actions (defaults come from the spec).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Paging {
    #[serde(default = "first_page")]
    page_number: i64,
    #[serde(default = "default_page_size")]
    page_size: i64,
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
    pub key: Option<String>,
    /// Filter value.
    pub value: Option<String>,
}

/// The value of the last filter named `key`.
pub fn filter_value(filters: &[Filter], key: &str) -> Option<String> {
    filters.iter().rev().find(|f| f.key.as_deref() == Some(key)).and_then(|f| f.value.clone())
}

/// `yyyy-MM-ddTHH:mm:ssZ` from ms since the epoch.
pub fn format_time(ms: i64) -> String {
    // RFC 3339 in whole seconds with `Z` is exactly `yyyy-MM-ddTHH:mm:ssZ`, without parsing a format.
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Shared state behind an `Arc`, as the router holds it.
pub type SharedState = Arc<AppState>;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Answer;

    #[test]
    fn bodies_lead_with_the_request_id_whatever_the_answer() {
        let body = |answer: Answer| serde_json::from_str::<serde_json::Value>(&answer.into_body("R-1")).unwrap();
        assert_eq!(body(json!({"A": 1}).into()), json!({"RequestId": "R-1", "A": 1}));
        assert_eq!(body(json!({}).into()), json!({"RequestId": "R-1"}));
        assert_eq!(body(json!(null).into()), json!({"RequestId": "R-1"}));
        assert_eq!(body(Answer::serialize(&json!({"B": [1]})).unwrap()), json!({"RequestId": "R-1", "B": [1]}));
        assert_eq!(body(Answer::Serialized("{ }".into())), json!({"RequestId": "R-1"}));
        assert!(Answer::into_body(json!({"A": 1}).into(), "R-1").starts_with(r#"{"RequestId":"R-1","#));
    }

    #[test]
    fn times_are_whole_utc_seconds_with_z() {
        assert_eq!(super::format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_time(1_764_432_812_999), "2025-11-29T16:13:32Z");
    }
}
