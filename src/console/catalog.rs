//! The end user's catalog: the products they were granted, a product's versions and guidance,
//! and the launch form built from the version's `ParameterConstraints` (also used to update a
//! provisioned product, and to create a plan instead of launching at once).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde_json::Value;

use super::html::{csrf_input, error_box, filter_form, page, pager, seg, url};
use super::session::Session;
use super::{call, checked, respond, s, see_other, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::{Region, SharedState};
use crate::catalog::launch_option::LaunchOption;
use crate::catalog::product::{ProductDetail, ProductListing, ProductRef};
use crate::catalog::version::{VersionDetail, VersionRef};
use crate::catalog::wire::{Filter, Paging};

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console/catalog", get(catalog))
        .route("/console/products/{id}", get(product))
        .route("/console/products/{id}/launch", get(launch_form).post(launch))
}

async fn catalog(State(state): State<SharedState>, session: Session, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let query = Form::query(query.as_deref());
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
    regions: Vec<Region>,
    options: Vec<LaunchOption>,
}

async fn launch_context(state: &SharedState, session: &Session, product_id: &str, version_id: &str) -> Result<LaunchContext, ApiError> {
    let catalog = state.catalog(&session.principal);
    let this = || ProductRef { product_id: product_id.to_string() };
    let product = catalog.end_user_product(checked(session, Action::GetProductAsEndUser, this())?).await?.product_summary;
    let product_version_id = match version_id {
        "" => default_version(&catalog.versions(checked(session, Action::ListProductVersions, this())?).await?.product_version_details),
        id => id.to_string(),
    };
    let version = catalog.get_version(checked(session, Action::GetProductVersion, VersionRef { product_version_id })?).await?;
    crate::api::authorize(Action::ListRegions, &session.principal)?;
    let options = catalog.launch_options(checked(session, Action::ListLaunchOptions, this())?).await?.launch_option_summaries;
    Ok(LaunchContext { product, version: version.product_version_detail, regions: state.config.regions.clone(), options })
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
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Form::query(query.as_deref());
    let context = launch_context(&state, &session, &id, query.text("version")).await?;
    Ok(render_launch(&session, &id, &context, &Form::default(), None, StatusCode::OK))
}

async fn launch(State(state): State<SharedState>, session: Session, Path(id): Path<String>, body: Bytes) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let context = launch_context(&state, &session, &id, form.text("version")).await?;
    let version_id = context.version.product_version_id.as_str();
    let mut params: Vec<(String, String)> = [
        ("ProductId", id.as_str()),
        ("ProductVersionId", version_id),
        ("ProvisionedProductName", form.text("name")),
        ("StackRegionId", form.text("region")),
        ("PortfolioId", form.text("portfolio")),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.extend(parameters_from_form(&form));
    params.extend(tags_from_form(&form));
    let planning = form.get("intent") == Some("plan");
    let result = if planning {
        params.extend([
            ("PlanName".into(), form.text("name").to_string()),
            ("PlanType".into(), "Ros".into()),
            ("OperationType".into(), "LaunchProduct".into()),
        ]);
        call(&state, &session, Action::CreateProvisionedProductPlan, params).await
    } else {
        call(&state, &session, Action::LaunchProduct, params).await
    };
    match result {
        Ok(answer) if planning => Ok(see_other(&format!("/console/plans/{}", seg(s(&answer, "/PlanId"))))),
        Ok(answer) => Ok(see_other(&format!("/console/tasks/{}", seg(s(&answer, "/TaskId"))))),
        Err(e) if e.status() == StatusCode::BAD_REQUEST || e.status() == StatusCode::CONFLICT => {
            Ok(render_launch(&session, &id, &context, &form, Some(&e), e.status()))
        }
        Err(e) => Err(e.into()),
    }
}

fn render_launch(
    session: &Session,
    product_id: &str,
    context: &LaunchContext,
    form: &Form,
    error: Option<&ApiError>,
    status: StatusCode,
) -> Response {
    let version = &context.version;
    let options = &context.options;
    let constraints: Vec<Value> = version.parameter_constraints.iter().flatten().map(|c| c.to_json()).collect();
    let message = error.map(ApiError::message);
    let field_error = |code: &str| error.filter(|e| e.code() == code).map(ApiError::message);
    let body = html! {
        p { "Version " strong { (version.product_version_name) } " (" (version.guidance) "). " (version.description) }
        (error_box(message))
        form.stack method="post" action={ "/console/products/" (seg(product_id)) "/launch" } {
            (csrf_input(session))
            input type="hidden" name="version" value=(version.product_version_id);
            (text_field("name", "Name of the provisioned product", form.text("name"), true, Some("Unique among your provisioned products."), field_error("InvalidParameter.ProvisionedProductName").or(field_error("MissingParameter.ProvisionedProductName"))))
            label for="region" { "Region" }
            select id="region" name="region" {
                @for r in &context.regions {
                    option value=(r.region_id) selected[form.text("region") == r.region_id] { (r.local_name) " (" (r.region_id) ")" }
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
            (parameter_fields(&constraints, form, &[], error))
            label for="tags" { "Tags (one key=value a line, optional)" }
            textarea id="tags" name="tags" rows="2" { (form.text("tags")) }
            div.buttons {
                button type="submit" name="intent" value="launch" { "Launch" }
                button.secondary type="submit" name="intent" value="plan" { "Preview as a plan" }
            }
        }
    };
    respond(status, page(&format!("Launch {}", context.product.product_name), Some(session), body))
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
pub(super) const PARAM: &str = "param.";

/// The inputs of a version's parameters: `current` holds the values in force (an update), the
/// form the values just submitted. Sensitive values are never written back into the page.
pub(super) fn parameter_fields(constraints: &[Value], form: &Form, current: &[(String, String)], error: Option<&ApiError>) -> Markup {
    html! {
        @if !constraints.is_empty() { h2 { "Parameters" } }
        @for c in constraints {
            @let key = s(c, "/ParameterKey");
            @let id = format!("{PARAM}{key}");
            @let sensitive = c["Sensitive"].as_bool().unwrap_or(false);
            @let required = c["Required"].as_bool().unwrap_or(false) && current.is_empty();
            @let kind = s(c, "/Type");
            @let default = s(c, "/DefaultValue");
            @let given = form.get(&id).or_else(|| current.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()));
            @let value = if sensitive { "" } else { given.unwrap_or(default) };
            @let hint = format!("{id}-hint");
            @let field_error = error.filter(|e| e.code().ends_with(".Parameters") && e.message().contains(&format!("{key:?}"))).map(ApiError::message);
            div.field {
                label for=(id) { (label_of(c, key)) " " code { (kind) } @if required { " (required)" } }
                @if let Some(allowed) = c["AllowedValues"].as_array() {
                    select id=(id) name=(id) aria-describedby=(hint) {
                        @if !required { option value="" { "(default" @if !default.is_empty() { ": " (default) } ")" } }
                        @for a in allowed {
                            @let a = a.as_str().unwrap_or_default();
                            option value=(a) selected[given == Some(a)] { (a) }
                        }
                    }
                } @else if kind == "bool" {
                    select id=(id) name=(id) aria-describedby=(hint) {
                        @for b in ["true", "false"] { option value=(b) selected[value == b] { (b) } }
                    }
                } @else if sensitive {
                    input id=(id) name=(id) type="password" autocomplete="off" required[required] aria-describedby=(hint)
                        placeholder=[(!current.is_empty()).then_some("leave empty to keep the current value")];
                } @else if kind.starts_with("list") || kind.starts_with("map") || kind.starts_with("object") || kind.starts_with("set") || kind.starts_with("tuple") {
                    textarea id=(id) name=(id) rows="3" required[required] aria-describedby=(hint) { (value) }
                } @else {
                    input id=(id) name=(id) value=(value) required[required] aria-describedby=(hint)
                        type=(if kind == "number" { "number" } else { "text" }) step=[(kind == "number").then_some("any")]
                        aria-invalid=[field_error.map(|_| "true")];
                }
                small id=(hint) {
                    (s(c, "/Description"))
                    @if sensitive { " Sensitive: never shown again." }
                    @if c["HasValidation"].as_bool().unwrap_or(false) { " Checked by the template when the change is planned." }
                }
                @if let Some(message) = field_error { p.field-error { (message) } }
            }
        }
    }
}

/// A parameter's label: its `Label` (text, or the English/first text of a `{locale: text}`), else its key.
fn label_of(constraint: &Value, key: &str) -> String {
    match &constraint["Label"] {
        Value::String(text) => text.clone(),
        Value::Object(by_locale) => {
            by_locale.get("en").or_else(|| by_locale.values().next()).and_then(Value::as_str).unwrap_or(key).to_string()
        }
        _ => key.to_string(),
    }
}

/// `Parameters.N.*` of the submitted parameter fields; empty ones are left out (the default, or
/// the value in force, applies).
pub(super) fn parameters_from_form(form: &Form) -> Vec<(String, String)> {
    numbered("Parameters", "ParameterKey", "ParameterValue", super::provisioned::parameters_from_form(form))
}

/// `Tags.N.*` of the `key=value` lines of the tags field.
pub(super) fn tags_from_form(form: &Form) -> Vec<(String, String)> {
    numbered("Tags", "Key", "Value", super::provisioned::tags_from_form(form))
}

/// Pairs as the wire's flattened array `{list}.N.{key}` / `{list}.N.{value}`, numbered from 1.
fn numbered(list: &str, key: &str, value: &str, pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.into_iter().zip(1..).flat_map(|((k, v), i)| [(format!("{list}.{i}.{key}"), k), (format!("{list}.{i}.{value}"), v)]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn submitted_parameters_and_tags_become_wire_arrays() {
        let form = Form::parse(b"param.a=1&param.b=&param.c=x&tags=env%3Ddev%0Abad%0Ateam+%3D+ops");
        assert_eq!(
            parameters_from_form(&form),
            [
                ("Parameters.1.ParameterKey".to_string(), "a".to_string()),
                ("Parameters.1.ParameterValue".into(), "1".into()),
                ("Parameters.2.ParameterKey".into(), "c".into()),
                ("Parameters.2.ParameterValue".into(), "x".into()),
            ]
        );
        assert_eq!(tags_from_form(&form)[2..], [("Tags.2.Key".to_string(), "team".to_string()), ("Tags.2.Value".into(), "ops".into())]);
    }

    #[test]
    fn fields_follow_the_constraints_and_hide_sensitive_values() {
        let constraints = [
            json!({"ParameterKey": "size", "Type": "string", "Required": false, "DefaultValue": "s", "AllowedValues": ["s", "m"], "Description": "<b>Size</b>"}),
            json!({"ParameterKey": "password", "Type": "string", "Required": true, "Sensitive": true}),
            json!({"ParameterKey": "count", "Type": "number", "Required": false, "DefaultValue": "2"}),
        ];
        let form = Form::parse(b"param.password=hunter2&param.size=m");
        let html = parameter_fields(&constraints, &form, &[], None).into_string();
        assert!(html.contains("<option value=\"m\" selected>m</option>"), "{html}");
        assert!(html.contains("&lt;b&gt;Size&lt;/b&gt;"));
        assert!(html.contains("type=\"password\"") && !html.contains("hunter2"), "{html}");
        assert!(html.contains("type=\"number\"") && html.contains("value=\"2\""));
    }
}
