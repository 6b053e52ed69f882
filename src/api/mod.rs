//! The RPC API: the action table, parameter decoding against the spec, authorisation, and one
//! `match` from action to handler. Handlers are grouped by resource and return the response
//! object without `RequestId`, which [`rpc`] adds.

pub mod action;
mod audit;
pub mod error;
pub mod limits;
mod metrics;
mod plan;
mod provisioning;
mod region;
pub mod rpc;
pub mod sign_in;
pub mod spec;
pub mod trail;

pub use provisioning::task_not_found;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::auth::Authenticator;
pub use crate::catalog::wire::{filter_value, format_time, Filter, Paged, Paging};
use crate::catalog::Catalog;
use crate::store::principal::Principal;
use crate::store::{CountMark, Store};
use action::{Action, Audience, Effect};
use error::ApiError;

pub use crate::model::Region;

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
    /// Outside template sources (`TemplateUrl`s of Git repositories and HTTP(S) files).
    pub sources: crate::fetch::SourcePolicy,
    /// Which URLs webhooks may post to.
    pub webhooks: crate::ops::notify::WebhookPolicy,
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
            regions: &self.config.regions,
            account_id: &self.config.account_id,
            engine: &self.engine,
            scheduled: None,
        }
    }

    /// The webhooks as `caller` manages them.
    pub fn webhooks<'a>(&'a self, caller: &'a Principal) -> crate::provisioning::webhook::Webhooks<'a> {
        crate::provisioning::webhook::Webhooks { store: &self.store, secrets: &self.secrets, caller, policy: &self.config.webhooks }
    }

    /// The catalog as `caller` sees it.
    pub fn catalog<'a>(&'a self, caller: &'a Principal) -> Catalog<'a> {
        let config = &self.config;
        Catalog {
            store: &self.store,
            caller,
            region: &config.region,
            account_id: &config.account_id,
            regions: &config.regions,
            binaries: self.engine.binaries(),
            sources: &config.sources,
        }
    }
}

/// One authenticated call.
pub struct Ctx<'a> {
    /// Shared state.
    pub state: &'a AppState,
    /// The caller.
    pub principal: &'a Principal,
    /// Where the request stood among the readings of the catalog's change count when it arrived:
    /// its listings may use any reading begun since ([`Store::since`]).
    pub arrived: CountMark,
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

    /// The catalog as the caller sees it.
    pub fn catalog(&self) -> Catalog<'_> {
        self.state.catalog(self.principal)
    }

    /// The webhooks, as the caller manages them.
    pub fn webhooks(&self) -> crate::provisioning::webhook::Webhooks<'_> {
        self.state.webhooks(self.principal)
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
    let catalog = ctx.catalog();
    let answer: Answer = match action {
        ListRegions => region::list_regions(ctx)?.into(),
        CreatePortfolio => typed(action, catalog.create_portfolio(decode(params)?).await?)?,
        GetPortfolio => typed(action, catalog.get_portfolio(decode(params)?).await?)?,
        UpdatePortfolio => typed(action, catalog.update_portfolio(decode(params)?).await?)?,
        DeletePortfolio => typed(action, catalog.delete_portfolio(decode(params)?).await?)?,
        ListPortfolios => typed(action, Store::since(ctx.arrived, catalog.list_portfolios(decode(params)?)).await?)?,
        CreateTemplate => typed(action, catalog.create_template(decode(params)?).await?)?,
        GetTemplate => typed(action, catalog.get_template(decode(params)?).await?)?,
        CreateProduct => typed(action, catalog.create_product(decode(params)?).await?)?,
        GetProductAsAdmin => typed(action, catalog.get_product(decode(params)?).await?)?,
        UpdateProduct => typed(action, catalog.update_product(decode(params)?).await?)?,
        DeleteProduct => typed(action, catalog.delete_product(decode(params)?).await?)?,
        ListProductsAsAdmin => typed(action, catalog.list_products(decode(params)?).await?)?,
        CopyProduct => typed(action, catalog.copy_product(decode(params)?).await?)?,
        CreateProductVersion => typed(action, catalog.create_version(decode(params)?).await?)?,
        GetProductVersion => typed(action, catalog.get_version(decode(params)?).await?)?,
        UpdateProductVersion => typed(action, catalog.update_version(decode(params)?).await?)?,
        DeleteProductVersion => typed(action, catalog.delete_version(decode(params)?).await?)?,
        ListProductVersions => typed(action, catalog.versions(decode(params)?).await?)?,
        AssociateProductWithPortfolio => typed(action, catalog.associate_product(decode(params)?).await?)?,
        DisassociateProductFromPortfolio => typed(action, catalog.disassociate_product(decode(params)?).await?)?,
        ListProductsAsEndUser => typed(action, Store::since(ctx.arrived, catalog.end_user_products(decode(params)?)).await?)?,
        GetProductAsEndUser => typed(action, catalog.end_user_product(decode(params)?).await?)?,
        LaunchProduct => provisioning::launch(ctx, decode(params)?).await?.into(),
        UpdateProvisionedProduct => provisioning::update(ctx, decode(params)?).await?.into(),
        TerminateProvisionedProduct => provisioning::terminate(ctx, decode(params)?).await?.into(),
        GetProvisionedProduct => provisioning::get(ctx, decode(params)?).await?,
        ListProvisionedProducts => provisioning::list(ctx, decode(params)?).await?,
        GetTask => provisioning::get_task(ctx, decode(params)?).await?,
        ListTasks => provisioning::list_tasks(ctx, decode(params)?).await?,
        GetTaskLog => provisioning::get_task_log(ctx, decode(params)?).await?,
        ListAuditEvents => audit::list(ctx, decode(params)?).await?,
        ListConstraints => typed(action, catalog.constraints(decode(params)?).await?)?,
        FollowRepositoryTags => typed(action, catalog.follow_tags(decode(params)?).await?)?,
        CreateWebhook => typed(action, ctx.webhooks().create(decode(params)?).await?)?,
        DeleteWebhook => typed(action, ctx.webhooks().delete(decode(params)?).await?)?,
        ListWebhooks => typed(action, ctx.webhooks().list().await?)?,
        ListWebhookDeliveries => typed(action, ctx.webhooks().deliveries(decode(params)?).await?)?,
        DetectProvisionedProductDrift => typed(action, ctx.state.provisioner().detect(ctx.principal, decode(params)?).await?)?,
        ListProvisionedProductDriftChecks => typed(action, ctx.state.provisioner().drift_checks(ctx.principal, decode(params)?).await?)?,
        UpdateProvisionedProductExpiry => typed(action, ctx.state.provisioner().update_expiry(ctx.principal, decode(params)?).await?)?,
        UpdateProvisionedProductPolicy => typed(action, ctx.state.provisioner().update_policy(ctx.principal, decode(params)?).await?)?,
        CreateUpgradeCampaign => typed(action, ctx.state.provisioner().create_campaign(ctx.principal, decode(params)?).await?)?,
        GetUpgradeCampaign => typed(action, ctx.state.provisioner().get_campaign(decode(params)?).await?)?,
        ListUpgradeCampaigns => typed(action, ctx.state.provisioner().list_campaigns(decode(params)?).await?)?,
        StartUpgradeCampaign => typed(action, ctx.state.provisioner().start_campaign(decode(params)?).await?)?,
        PauseUpgradeCampaign => typed(action, ctx.state.provisioner().pause_campaign(decode(params)?).await?)?,
        ResumeUpgradeCampaign => typed(action, ctx.state.provisioner().resume_campaign(decode(params)?).await?)?,
        CancelUpgradeCampaign => typed(action, ctx.state.provisioner().cancel_campaign(decode(params)?).await?)?,
        CreateProvisionedProductPlan => plan::create(ctx, decode(params)?).await?.into(),
        UpdateProvisionedProductPlan => plan::update(ctx, decode(params)?).await?.into(),
        DeleteProvisionedProductPlan => plan::delete(ctx, decode(params)?).await?.into(),
        GetProvisionedProductPlan => plan::get(ctx, decode(params)?).await?,
        ListProvisionedProductPlans => plan::list(ctx, decode(params)?).await?,
        ExecuteProvisionedProductPlan => plan::execute(ctx, decode(params)?).await?.into(),
        CancelProvisionedProductPlan => plan::cancel(ctx, decode(params)?).await?.into(),
        ApproveProvisionedProductPlan => plan::approve(ctx, decode(params)?).await?.into(),
        ListProvisionedProductPlanApprovers => plan::list_approvers(ctx, decode(params)?).await?,
        AssociatePrincipalWithPortfolio => typed(action, catalog.grant(decode(params)?).await?)?,
        DisassociatePrincipalFromPortfolio => typed(action, catalog.revoke(decode(params)?).await?)?,
        ListPrincipals => typed(action, catalog.principals(decode(params)?).await?)?,
        CreateConstraint => typed(action, catalog.create_constraint(decode(params)?).await?)?,
        GetConstraint => typed(action, catalog.get_constraint(decode(params)?).await?)?,
        UpdateConstraint => typed(action, catalog.update_constraint(decode(params)?).await?)?,
        DeleteConstraint => typed(action, catalog.delete_constraint(decode(params)?).await?)?,
        ListLaunchOptions => typed(action, catalog.launch_options(decode(params)?).await?)?,
        CreateTagOption => typed(action, catalog.create_tag_option(decode(params)?).await?)?,
        GetTagOption => typed(action, catalog.get_tag_option(decode(params)?).await?)?,
        UpdateTagOption => typed(action, catalog.update_tag_option(decode(params)?).await?)?,
        DeleteTagOption => typed(action, catalog.delete_tag_option(decode(params)?).await?)?,
        ListTagOptions => typed(action, catalog.list_tag_options(decode(params)?).await?)?,
        AssociateTagOptionWithResource => typed(action, catalog.associate_tag_option(decode(params)?).await?)?,
        DisAssociateTagOptionFromResource => typed(action, catalog.disassociate_tag_option(decode(params)?).await?)?,
        ListResourcesForTagOption => typed(action, catalog.tag_option_resources(decode(params)?).await?)?,
    };
    Ok(answer)
}

/// A typed answer: serialized straight to text for reads, kept as a `Value` for changes (the
/// audit trail reads the id a change created from it); `()` answers `{}`.
fn typed(action: Action, answer: impl Serialize) -> Result<Answer, ApiError> {
    match action.effect() {
        Effect::Read => Answer::serialize(&answer),
        Effect::Change | Effect::QueuesTask => serde_json::to_value(&answer).map(Answer::Value).map_err(ApiError::internal),
    }
}

/// Turns the validated parameter object into an action's typed request.
pub fn decode<T: DeserializeOwned>(params: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(params)).map_err(|e| {
        ApiError::new(axum::http::StatusCode::BAD_REQUEST, "InvalidParameter", format!("The request parameters are invalid: {e}."))
    })
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
}
