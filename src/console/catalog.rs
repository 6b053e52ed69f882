//! The end user's catalog: the products they were granted, a product's versions and guidance,
//! and the launch form built from the version's `ParameterConstraints` (also used to update a
//! provisioned product, and to create a plan instead of launching at once).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde_json::Value;

use super::html::{csrf_input, error_box, filter_form, page, pager, seg, url};
use super::plans::PlanIds;
use super::session::{Posted, Session};
use super::{audited_unless, changed, checked, respond, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::{Region, SharedState};
use crate::catalog::error::DomainError;
use crate::catalog::launch_option::LaunchOption;
use crate::catalog::parameters::ParameterConstraint;
use crate::catalog::product::{ProductDetail, ProductListing, ProductRef};
use crate::catalog::version::{VersionDetail, VersionRef};
use crate::catalog::wire::{Filter, Paging};
use crate::catalog::Catalog;
use crate::model::{OperationType, UpdatePolicy};
use crate::provisioning::plan::NewPlan;
use crate::provisioning::queue::Launch;
use crate::provisioning::{Parameter, Tag};

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console/catalog", get(catalog))
        .route("/console/products/{id}", get(product))
        .route("/console/products/{id}/launch", get(launch_form).post(launch))
}

async fn catalog(State(state): State<SharedState>, session: Session, query: Form) -> Result<Response, PageError> {
    let (q, page_number) = (query.text("q"), query.page());
    let listing =
        ProductListing { paging: Paging::new(page_number, PAGE_SIZE), filters: Filter::full_text(q), scope: None, portfolio_id: None };
    let answer = state.catalog(&session.principal).end_user_products(checked(&session, Action::ListProductsAsEndUser, listing)?).await?;
    let body = html! {
        (filter_form("/console/catalog", "Search products", q, &[]))
        @let products = &answer.product_summaries;
        @if products.is_empty() { p { "No product is available to you" @if !q.is_empty() { " with these words" } "." } }
        ul.cards {
            @for p in products {
                li.card {
                    h2 { a href={ "/console/products/" (seg(&p.product_id)) } { (p.product_name) } }
                    p { (p.description) }
                    p.muted { "Provided by " (p.provider_name) }
                }
            }
        }
        (pager("/console/catalog", &[("q", q)], page_number, PAGE_SIZE, answer.page.total_count))
    };
    Ok(respond(StatusCode::OK, page("Catalog", Some(&session), body)))
}

async fn product(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    let catalog = state.catalog(&session.principal);
    let this = || ProductRef { product_id: id.clone() };
    let summary = catalog.end_user_product(checked(&session, Action::GetProductAsEndUser, this())?).await?.product_summary;
    let versions = catalog.versions(checked(&session, Action::ListProductVersions, this())?).await?.product_version_details;
    let body = html! {
        p { (summary.description) }
        p.muted { "Provided by " (summary.provider_name) }
        h2 { "Versions" }
        table {
            thead { tr { th { "Version" } th { "Guidance" } th { "Description" } th { "Created" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for v in &versions {
                    tr {
                        td { (v.product_version_name) }
                        td { (v.guidance) }
                        td { (v.description) }
                        td { (v.create_time) }
                        td {
                            @if v.launchable {
                                a.button href=(url(&format!("/console/products/{}/launch", seg(&id)), &[("version", &v.product_version_id)])) { "Launch " (v.product_version_name) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, page(&summary.product_name, Some(&session), body)))
}

/// What a launch needs besides the form's values.
struct LaunchContext {
    product: ProductDetail,
    version: VersionDetail,
    /// The version's parameters, narrowed by the Template constraints of the launch option
    /// chosen (or the only one).
    parameters: Vec<ParameterConstraint>,
    regions: Vec<Region>,
    options: Vec<LaunchOption>,
}

async fn launch_context(state: &SharedState, session: &Session, product_id: &str, form: &Form) -> Result<LaunchContext, ApiError> {
    let catalog = state.catalog(&session.principal);
    let this = || ProductRef { product_id: product_id.to_string() };
    let product = catalog.end_user_product(checked(session, Action::GetProductAsEndUser, this())?).await?.product_summary;
    let version = match form.text("version") {
        "" => default_version(&versions(&catalog, session, product_id).await?),
        id => id.to_string(),
    };
    let version = version_detail(&catalog, session, version).await?;
    crate::api::authorize(Action::ListRegions, &session.principal)?;
    let options = catalog.launch_options(checked(session, Action::ListLaunchOptions, this())?).await?.launch_option_summaries;
    let parameters = version.parameter_constraints.clone().unwrap_or_default();
    let parameters =
        match options.iter().find(|o| o.portfolio_id == form.text("portfolio")).or(options.first().filter(|_| options.len() == 1)) {
            Some(option) => state.provisioner().constrained(product_id, &option.portfolio_id, parameters).await?,
            None => parameters,
        };
    Ok(LaunchContext { product, version, parameters, regions: state.config.regions.clone(), options })
}

/// The versions of a product, as `ListProductVersions` answers them to the caller.
pub(super) async fn versions(catalog: &Catalog<'_>, session: &Session, product_id: &str) -> Result<Vec<VersionDetail>, ApiError> {
    let product = ProductRef { product_id: product_id.to_string() };
    Ok(catalog.versions(checked(session, Action::ListProductVersions, product)?).await?.product_version_details)
}

/// A version with its parameters, as `GetProductVersion` answers it to the caller.
pub(super) async fn version_detail(catalog: &Catalog<'_>, session: &Session, id: String) -> Result<VersionDetail, ApiError> {
    let version = VersionRef { product_version_id: id };
    Ok(catalog.get_version(checked(session, Action::GetProductVersion, version)?).await?.product_version_detail)
}

/// The recommended version, else the first.
fn default_version(versions: &[VersionDetail]) -> String {
    let pick = versions.iter().find(|v| v.guidance == "Recommended").or(versions.first());
    pick.map(|v| v.product_version_id.clone()).unwrap_or_default()
}

async fn launch_form(
    State(state): State<SharedState>,
    session: Session,
    Path(id): Path<String>,
    query: Form,
) -> Result<Response, PageError> {
    let context = launch_context(&state, &session, &id, &query).await?;
    Ok(render_launch(&session, &id, &context, &Form::default(), None))
}

async fn launch(State(state): State<SharedState>, Path(id): Path<String>, Posted { session, form }: Posted) -> Result<Response, PageError> {
    let context = launch_context(&state, &session, &id, &form).await?;
    let (provisioner, principal) = (state.provisioner(), &session.principal);
    let (name, region, portfolio_id) = (form.text("name").to_string(), form.text("region").to_string(), form.optional("portfolio"));
    let (product_id, product_version_id) = (id.clone(), context.version.product_version_id.clone());
    let parameters = parameters_from_form(&form);
    let queued = async {
        let (tags, malformed) = tags_from_form(&form);
        let (update_policy, bad_policy) = policy_from_form(&form);
        let malformed = malformed.or(bad_policy);
        if form.get("intent") == Some("plan") {
            let plan = NewPlan {
                plan_name: name.clone(),
                plan_type: "Ros".into(),
                description: None,
                operation_type: OperationType::LaunchProduct,
                product_id,
                product_version_id,
                portfolio_id,
                provisioned_product_name: name,
                stack_region_id: region,
                parameters,
                tags,
            };
            let created = |r| async move {
                let plan = provisioner.create_plan(principal, r).await?;
                Ok::<_, DomainError>(PlanIds {
                    plan_id: plan.plan_id.to_string(),
                    provisioned_product_id: Some(plan.provisioned_product_id),
                    task_id: None,
                })
            };
            let plan = audited_unless(&state, &session, Action::CreateProvisionedProductPlan, plan, malformed, created).await?;
            return Ok(format!("/console/plans/{}", seg(&plan.plan_id)));
        }
        let launch = Launch {
            product_id,
            product_version_id,
            provisioned_product_name: name,
            stack_region_id: region,
            portfolio_id,
            parameters,
            tags,
            expiry_time: form.optional("expiry"),
            update_policy,
        };
        let queued =
            audited_unless(&state, &session, Action::LaunchProduct, launch, malformed, |r| provisioner.launch(principal, r)).await?;
        Ok(format!("/console/tasks/{}", seg(&queued.task_id)))
    };
    changed(queued.await, |e| render_launch(&session, &id, &context, &form, Some(e)))
}

fn render_launch(session: &Session, product_id: &str, context: &LaunchContext, form: &Form, error: Option<&ApiError>) -> Response {
    let version = &context.version;
    let options = &context.options;
    let field_error = |code: &str| error.filter(|e| e.code() == code).map(ApiError::message);
    let body = html! {
        p { "Version " strong { (version.product_version_name) } " (" (version.guidance) "). " (version.description) }
        (error_box(error.map(ApiError::message)))
        form.stack method="post" action={ "/console/products/" (seg(product_id)) "/launch" } {
            (csrf_input(session))
            input type="hidden" name="version" value=(version.product_version_id);
            (text_field("name", "Name of the provisioned product", form.text("name"), true, Some("Unique among your provisioned products."), field_error("InvalidParameter.ProvisionedProductName").or(field_error("MissingParameter.ProvisionedProductName"))))
            label for="region" { "Region" }
            select id="region" name="region" {
                @for r in &context.regions {
                    option value=(r.region_id) selected[form.text("region") == r.region_id] { (r.english_name()) " (" (r.region_id) ")" }
                }
            }
            @if options.len() > 1 {
                label for="portfolio" { "Portfolio (launch option)" }
                select id="portfolio" name="portfolio" required {
                    option value="" { "Choose…" }
                    @for o in options {
                        option value=(o.portfolio_id) selected[form.text("portfolio") == o.portfolio_id] { (o.portfolio_name) }
                    }
                }
            }
            (change_fields(&context.parameters, form, &[], error))
            (text_field("expiry", "Expiry (optional)", form.text("expiry"), false, Some("UTC, like 2026-01-31T12:00:00Z: when it is terminated. Empty: the product's default lifetime, if it has one."), field_error("InvalidParameter.ExpiryTime")))
            (policy_select(update_policy_or_default(form)))
            div.buttons {
                button type="submit" name="intent" value="launch" { "Launch" }
                button.secondary type="submit" name="intent" value="plan" { "Preview as a plan" }
            }
        }
    };
    respond(error.map_or(StatusCode::OK, ApiError::status), page(&format!("Launch {}", context.product.product_name), Some(session), body))
}

fn text_field(name: &str, label: &str, value: &str, required: bool, hint: Option<&str>, error: Option<&str>) -> Markup {
    let described = format!("{name}-hint");
    html! {
        label for=(name) { (label) @if required { " (required)" } }
        input id=(name) name=(name) value=(value) required[required] aria-invalid=[error.map(|_| "true")] aria-describedby=[hint.map(|_| described.as_str())];
        @if let Some(hint) = hint { small id=(described) { (hint) } }
        @if let Some(error) = error { p.field-error { (error) } }
    }
}

/// Prefix of the form fields holding template parameters.
const PARAM: &str = "param.";

/// The inputs of a change's parameters and tags: `current` holds the parameter values in force
/// (an update), the form the values just submitted. Sensitive values are never written back
/// into the page.
pub(super) fn change_fields(
    constraints: &[ParameterConstraint],
    form: &Form,
    current: &[(String, String)],
    error: Option<&ApiError>,
) -> Markup {
    html! {
        @if !constraints.is_empty() { h2 { "Parameters" } }
        @for c in constraints {
            @let key = c.name.as_str();
            @let id = format!("{PARAM}{key}");
            @let required = c.required() && current.is_empty();
            @let kind = c.type_expr.as_deref().unwrap_or("any");
            @let default = c.default_text().unwrap_or_default();
            @let given = form.get(&id).or_else(|| current.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()));
            @let value = if c.sensitive { "" } else { given.unwrap_or(&default) };
            @let hint = format!("{id}-hint");
            @let field_error = error.filter(|e| e.code().ends_with(".Parameters") && e.message().contains(&format!("{key:?}"))).map(ApiError::message);
            div.field {
                label for=(id) { (label_of(c)) " " code { (kind) } @if required { " (required)" } }
                @if let Some(allowed) = &c.allowed_values {
                    select id=(id) name=(id) aria-describedby=(hint) {
                        @if !required { option value="" { "(default" @if !default.is_empty() { ": " (default) } ")" } }
                        @for a in allowed {
                            option value=(a) selected[given == Some(a.as_str())] { (a) }
                        }
                    }
                } @else if kind == "bool" {
                    select id=(id) name=(id) aria-describedby=(hint) {
                        @for b in ["true", "false"] { option value=(b) selected[value == b] { (b) } }
                    }
                } @else if c.sensitive {
                    input id=(id) name=(id) type="password" autocomplete="off" required[required] aria-describedby=(hint)
                        placeholder=[(!current.is_empty()).then_some("leave empty to keep the current value")];
                } @else if ["list", "map", "object", "set", "tuple"].iter().any(|k| kind.starts_with(k)) {
                    textarea id=(id) name=(id) rows="3" required[required] aria-describedby=(hint) { (value) }
                } @else {
                    input id=(id) name=(id) value=(value) required[required] aria-describedby=(hint)
                        type=(if kind == "number" { "number" } else { "text" }) step=[(kind == "number").then_some("any")]
                        aria-invalid=[field_error.map(|_| "true")];
                }
                small id=(hint) {
                    (c.description.as_deref().unwrap_or_default())
                    @if c.sensitive { " Sensitive: never shown again." }
                    @if c.has_validation { " Checked by the template when the change is planned." }
                }
                @if let Some(message) = field_error { p.field-error { (message) } }
            }
        }
        @let tags_error = error.filter(|e| e.code().ends_with(".Tags")).map(ApiError::message);
        label for="tags" { "Tags (one key=value a line, optional)" }
        textarea id="tags" name="tags" rows="2" aria-invalid=[tags_error.map(|_| "true")] { (form.text("tags")) }
        @if let Some(message) = tags_error { p.field-error { (message) } }
    }
}

/// A parameter's label: its `Label` (text, or the English/first text of a `{locale: text}`), else its key.
fn label_of(constraint: &ParameterConstraint) -> &str {
    match &constraint.label {
        Some(Value::String(text)) => text,
        Some(Value::Object(by_locale)) => {
            by_locale.get("en").or_else(|| by_locale.values().next()).and_then(Value::as_str).unwrap_or(&constraint.name)
        }
        _ => &constraint.name,
    }
}

/// The non-empty parameter fields of a form (empty ones are left out: the default, or the value
/// in force, applies).
pub(super) fn parameters_from_form(form: &Form) -> Vec<Parameter> {
    let given = form.prefixed(PARAM).filter(|(_, v)| !v.is_empty());
    given.map(|(k, v)| Parameter { parameter_key: k.to_string(), parameter_value: v.to_string() }).collect()
}

/// The `key=value` lines of a form's tags field (blank lines skipped), and the refusal
/// (`InvalidParameter.Tags`) of the first line without `=`, which has no wire form: the change is
/// refused with it through [`audited_unless`], so the trail records it like the API's refusals.
pub(super) fn tags_from_form(form: &Form) -> (Vec<Tag>, Option<ApiError>) {
    let mut tags = Vec::new();
    let mut refusal = None;
    for (i, line) in form.text("tags").lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        match line.split_once('=') {
            Some((k, v)) => tags.push(Tag { key: k.trim().to_string(), value: v.trim().to_string() }),
            None => {
                let message = format!("Line {} of the tags, {:?}, is not key=value.", i + 1, line.trim());
                refusal = refusal.or(Some(ApiError::invalid_parameter("Tags", message)));
            }
        }
    }
    (tags, refusal)
}

/// The update policy a form asks for (`policy`; absent or empty: none), and the refusal
/// (`InvalidParameter.UpdatePolicy`) of one that is not a policy.
pub(super) fn policy_from_form(form: &Form) -> (Option<UpdatePolicy>, Option<ApiError>) {
    match form.optional("policy").map(|text| text.parse::<UpdatePolicy>()) {
        None => (None, None),
        Some(Ok(policy)) => (Some(policy), None),
        Some(Err(why)) => (None, Some(ApiError::invalid_parameter("UpdatePolicy", why))),
    }
}

/// The update policy a form shows: the one it holds, else `Manual`.
fn update_policy_or_default(form: &Form) -> UpdatePolicy {
    policy_from_form(form).0.unwrap_or(UpdatePolicy::Manual)
}

/// A choice of update policy (`policy`), `current` selected.
pub(super) fn policy_select(current: UpdatePolicy) -> Markup {
    html! {
        label for="policy" { "Update policy" }
        select id="policy" name="policy" aria-describedby="policy-hint" {
            @for policy in UpdatePolicy::ALL {
                option value=(policy.as_str()) selected[*policy == current] { (policy.as_str()) }
            }
        }
        small id="policy-hint" { "Manual: you or an administrator's upgrade campaign update it. FollowRecommended: also updated to the product's Recommended version when it changes. Pinned: nothing automatic; campaigns skip it." }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn submitted_parameters_and_tags_are_read() {
        let form = Form::parse(b"param.a=1&param.b=&param.c=x&tags=env%3Ddev%0A%0Ateam+%3D+ops");
        let parameters: Vec<_> = parameters_from_form(&form).into_iter().map(|p| (p.parameter_key, p.parameter_value)).collect();
        assert_eq!(parameters, [("a".to_string(), "1".to_string()), ("c".into(), "x".into())]);
        let (tags, refusal) = tags_from_form(&form);
        assert!(refusal.is_none());
        assert_eq!(tags[1], Tag { key: "team".into(), value: "ops".into() });
        let (tags, refusal) = tags_from_form(&Form::parse(b"tags=env%3Ddev%0Abad%0Aworse"));
        assert_eq!(tags, [Tag { key: "env".into(), value: "dev".into() }], "the well-formed lines are kept");
        let bad = refusal.unwrap();
        assert_eq!((bad.code(), bad.message()), ("InvalidParameter.Tags", "Line 2 of the tags, \"bad\", is not key=value."));
    }

    #[test]
    fn fields_follow_the_constraints_and_hide_sensitive_values() {
        let constraint = |name: &str, kind: &str, default: Option<Value>| ParameterConstraint {
            name: name.into(),
            type_expr: Some(kind.into()),
            default,
            label: None,
            description: None,
            sensitive: false,
            allowed_values: None,
            has_validation: false,
        };
        let constraints = [
            ParameterConstraint {
                allowed_values: Some(vec!["s".into(), "m".into()]),
                description: Some("<b>Size</b>".into()),
                ..constraint("size", "string", Some(json!("s")))
            },
            ParameterConstraint { sensitive: true, ..constraint("password", "string", None) },
            constraint("count", "number", Some(json!(2))),
        ];
        let form = Form::parse(b"param.password=hunter2&param.size=m");
        let html = change_fields(&constraints, &form, &[], None).into_string();
        assert!(html.contains("<option value=\"m\" selected>m</option>"), "{html}");
        assert!(html.contains("&lt;b&gt;Size&lt;/b&gt;"));
        assert!(html.contains("type=\"password\"") && !html.contains("hunter2"), "{html}");
        assert!(html.contains("type=\"number\"") && html.contains("value=\"2\""));
    }
}
