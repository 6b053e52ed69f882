//! Administrators' pages: portfolios (with their products, grants and constraints), constraints
//! (listed with their Config laid out, edited, deleted), products and their versions (created from a pasted or uploaded template, whose errors are shown at their
//! line), and tag options. Each page passes administrators' actions through [`checked`], so an
//! end user gets the API's 403 here too.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::html::{action_button, csrf_input, error_box, filter_form, page, pager, seg, status};
use super::identity::{principal_names, principal_picker};
use super::session::{Posted, Session};
use super::{audited, checked, no_such_page, respond, see_other, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::SharedState;
use crate::catalog::constraint::{example_config, ConstraintType};
use crate::catalog::launch_option::{ConstraintChange, ConstraintListing, ConstraintRef, ListedConstraint, NewConstraint};
use crate::catalog::portfolio::{GrantRequest, PortfolioFields, PortfolioListing, PortfolioRef, PortfolioUpdate, Portfolios};
use crate::catalog::product::{NewProduct, ProductInPortfolio, ProductListing, ProductRef, Products};
use crate::catalog::tag_option::{NewTagOption, TagOptionFilters, TagOptionLink, TagOptionListing, TagOptionRef};
use crate::catalog::template::TERRAFORM;
use crate::catalog::version::{NewTemplate, NewVersion, VersionFields, VersionRef};
use crate::catalog::wire::{Filter, Paging};
use crate::catalog::Catalog;
use crate::model::Transform;
use crate::store::provisioning::ProvisionedProductQuery;
use crate::store::{Page, SortOrder};

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console/admin/portfolios", get(portfolios).post(create_portfolio))
        .route("/console/admin/portfolios/{id}", get(portfolio))
        .route("/console/admin/portfolios/{id}/{operation}", post(change_portfolio))
        .route("/console/admin/products", get(products).post(create_product))
        .route("/console/admin/products/{id}", get(product))
        .route("/console/admin/products/{id}/{operation}", post(change_product))
        .route("/console/admin/constraints/{id}", get(constraint))
        .route("/console/admin/constraints/{id}/{operation}", post(change_constraint))
        .route("/console/admin/tag-options", get(tag_options))
        .route("/console/admin/tag-options/{operation}", post(change_tag_options))
}

/// The page of a list page's query, with its full-text filter.
fn paging(query: &Form) -> (Paging, Vec<Filter>) {
    (Paging::new(query.page(), PAGE_SIZE), Filter::full_text(query.text("q")))
}

/// The first 100 products, of one portfolio or all.
fn first_products(portfolio_id: Option<String>) -> ProductListing {
    ProductListing { paging: Paging::new(1, 100), filters: Vec::new(), scope: None, portfolio_id }
}

async fn list_portfolios(catalog: &Catalog<'_>, session: &Session, query: &Form) -> Result<Portfolios, ApiError> {
    let (paging, filters) = paging(query);
    let listing = PortfolioListing { paging, filters, scope: None, product_id: None };
    Ok(catalog.list_portfolios(checked(session, Action::ListPortfolios, listing)?).await?)
}

async fn list_products(catalog: &Catalog<'_>, session: &Session, query: &Form) -> Result<Products, ApiError> {
    let (paging, filters) = paging(query);
    let listing = ProductListing { paging, filters, scope: None, portfolio_id: None };
    Ok(catalog.list_products(checked(session, Action::ListProductsAsAdmin, listing)?).await?)
}

/// The portfolio fields of a form.
fn portfolio_input(form: &Form) -> PortfolioFields {
    PortfolioFields {
        portfolio_name: form.text("name").to_string(),
        provider_name: form.text("provider").to_string(),
        description: form.optional("description"),
    }
}

// ---- Portfolios ----

async fn portfolios(State(state): State<SharedState>, session: Session, query: Form) -> Result<Response, PageError> {
    let answer = list_portfolios(&state.catalog(&session.principal), &session, &query).await?;
    Ok(render_portfolios(&session, &query, &answer, &Form::default(), None))
}

fn render_portfolios(session: &Session, query: &Form, answer: &Portfolios, form: &Form, error: Option<&ApiError>) -> Response {
    let body = html! {
        @let rows = answer.portfolio_details.iter().map(|p| [&p.portfolio_id, &p.portfolio_name, &p.provider_name, &p.description, &p.create_time]);
        (listing("/console/admin/portfolios", "Portfolio", query, answer.page.total_count, rows))
        h2 #create { "Create a portfolio" }
        (error_box(error.map(ApiError::message)))
        form.stack method="post" action="/console/admin/portfolios" {
            (csrf_input(session))
            (portfolio_fields(form.text("name"), form.text("provider"), form.text("description")))
            button type="submit" { "Create portfolio" }
        }
    };
    respond(error.map_or(StatusCode::OK, ApiError::status), page("Portfolios", Some(session), body))
}

/// A searchable, paged table of portfolios or products under `base` (`kind` heads the name
/// column): each row `[id, name, provider, description, created]`, its name linked to its page.
fn listing<'a>(base: &str, kind: &str, query: &Form, total: i64, rows: impl Iterator<Item = [&'a String; 5]>) -> Markup {
    html! {
        (filter_form(base, &format!("Search {}s", kind.to_lowercase()), query.text("q"), &[]))
        table {
            thead { tr { th { (kind) } th { "Provider" } th { "Description" } th { "Created" } } }
            tbody {
                @for [id, name, provider, description, created] in rows {
                    tr { td { a href={ (base) "/" (seg(id)) } { (name) } } td { (provider) } td { (description) } td { (created) } }
                }
            }
        }
        (pager(base, &[("q", query.text("q"))], query.page(), PAGE_SIZE, total))
    }
}

/// The name, provider and description fields of a portfolio or product.
fn portfolio_fields(name: &str, provider: &str, description: &str) -> Markup {
    html! {
        label for="name" { "Name (required)" } input id="name" name="name" required value=(name);
        label for="provider" { "Provider (required)" } input id="provider" name="provider" required value=(provider);
        label for="description" { "Description" } textarea id="description" name="description" rows="2" { (description) }
    }
}

async fn create_portfolio(State(state): State<SharedState>, Posted { session, form }: Posted) -> Result<Response, PageError> {
    let catalog = state.catalog(&session.principal);
    let created = audited(&state, &session, Action::CreatePortfolio, portfolio_input(&form), |r| catalog.create_portfolio(r));
    match created.await {
        Ok(created) => Ok(see_other(&format!("/console/admin/portfolios/{}", seg(&created.portfolio_id)))),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let answer = list_portfolios(&catalog, &session, &Form::default()).await?;
            Ok(render_portfolios(&session, &Form::default(), &answer, &form, Some(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn portfolio(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    render_portfolio(&state, &session, &id, &Form::default(), None).await
}

/// A portfolio's page; after a refused change, `failed` names the change (the form's operation)
/// and its error, shown beside that form, whose input `form` keeps.
async fn render_portfolio(
    state: &SharedState,
    session: &Session,
    id: &str,
    form: &Form,
    failed: Option<(&str, &ApiError)>,
) -> Result<Response, PageError> {
    let catalog = &state.catalog(&session.principal);
    let this = || PortfolioRef { portfolio_id: id.to_string() };
    let detail = catalog.get_portfolio(checked(session, Action::GetPortfolio, this())?).await?.portfolio_detail;
    let products = catalog.list_products(checked(session, Action::ListProductsAsAdmin, first_products(Some(id.to_string())))?).await?;
    let all_products = catalog.list_products(checked(session, Action::ListProductsAsAdmin, first_products(None))?).await?;
    let principals = catalog.principals(checked(session, Action::ListPrincipals, this())?).await?;
    let listing = ConstraintListing { portfolio_id: Some(id.to_string()), product_id: None };
    let constraints = catalog.constraints(checked(session, Action::ListConstraints, listing)?).await?.constraint_details;
    let (names, picker) = (principal_names(state).await?, principal_picker(state, "principals").await?);
    let path = format!("/console/admin/portfolios/{}", seg(id));
    let in_portfolio = &products.product_details;
    let error_of = |operation: &str| failed.filter(|(o, _)| *o == operation).map(|(_, e)| e);
    let kept = |operation: &str, field: &str| if error_of(operation).is_some() { form.text(field).to_string() } else { String::new() };
    let chosen_type =
        error_of("constraint").and_then(|_| form.text("type").parse::<ConstraintType>().ok()).unwrap_or(ConstraintType::Launch);
    let (name, provider, description) = match error_of("edit") {
        Some(_) => (form.text("name"), form.text("provider"), form.text("description")),
        None => (detail.portfolio_name.as_str(), detail.provider_name.as_str(), detail.description.as_str()),
    };
    let body = html! {
        h2 { "Details" }
        (error_box(error_of("edit").map(ApiError::message)))
        form.stack method="post" action={ (path) "/edit" } {
            (csrf_input(session))
            (portfolio_fields(name, provider, description))
            button type="submit" { "Save" }
        }
        h2 { "Products" }
        table {
            thead { tr { th { "Product" } th { "Provider" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for p in in_portfolio {
                    tr {
                        td { a href={ "/console/admin/products/" (seg(&p.product_id)) } { (p.product_name) } }
                        td { (p.provider_name) }
                        td {
                            form.inline method="post" action={ (path) "/remove-product" } data-confirm="Remove this product from the portfolio?" {
                                (csrf_input(session)) input type="hidden" name="product" value=(p.product_id);
                                button.danger type="submit" { "Remove " (p.product_name) }
                            }
                        }
                    }
                }
            }
        }
        (error_box(error_of("add-product").or(error_of("remove-product")).map(ApiError::message)))
        form.filter method="post" action={ (path) "/add-product" } {
            (csrf_input(session))
            label for="product" { "Add a product" }
            select id="product" name="product" {
                @for p in &all_products.product_details { option value=(p.product_id) { (p.product_name) } }
            }
            button type="submit" { "Add" }
        }
        h2 { "Grants" }
        p { "Users and roles granted this portfolio may launch its products. A pattern grants every name it matches (" code { "*" } " is everyone)." }
        table {
            thead { tr { th { "Type" } th { "Principal or pattern" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for g in &principals.principals {
                    @let (field, key) = match &g.principal_pattern { Some(pattern) => ("pattern", pattern), None => ("principal", g.principal_id.as_ref().unwrap_or(&g.principal_type)) };
                    tr {
                        td { (g.principal_type) }
                        td { code { (key) } @if let Some(name) = g.principal_id.as_ref().and_then(|id| names.get(id)) { " " (name) } }
                        td {
                            form.inline method="post" action={ (path) "/revoke" } data-confirm="Revoke this grant?" {
                                (csrf_input(session))
                                input type="hidden" name="type" value=(g.principal_type);
                                input type="hidden" name=(field) value=(key);
                                button.danger type="submit" { "Revoke " (key) }
                            }
                        }
                    }
                }
            }
        }
        (error_box(error_of("revoke").map(ApiError::message)))
        form.stack #grant method="post" action={ (path) "/grant" } {
            (csrf_input(session))
            label for="type" { "Principal type" }
            select id="type" name="type" {
                @for (value, label) in [("RamUser", "User (RamUser)"), ("RamRole", "Role (RamRole)")] {
                    option value=(value) selected[kept("grant", "type") == value] { (label) }
                }
            }
            label for="principal" { "Principal id" }
            (picker)
            input id="principal" name="principal" list="principals" aria-describedby="principal-hint" value=(kept("grant", "principal"))
                aria-invalid=[error_of("grant").filter(|_| !form.text("principal").is_empty()).map(|_| "true")];
            small id="principal-hint" { "Type a user's or role's name to pick it; or give a pattern instead:" }
            label for="pattern" { "Name pattern" }
            input id="pattern" name="pattern" placeholder="e.g. dev-*" value=(kept("grant", "pattern"));
            (field_error(error_of("grant")))
            button type="submit" { "Grant" }
        }
        h2 { "Constraints" }
        (constraints_table(session, &constraints, Column::Product))
        h3 { "Add a constraint" }
        p { "A constraint applies to one product of this portfolio, one of each type." }
        form.stack #constraint method="post" action={ (path) "/constraint" } {
            (csrf_input(session))
            label for="c-product" { "Product" }
            select id="c-product" name="product" {
                @for p in in_portfolio { option value=(p.product_id) selected[kept("constraint", "product") == p.product_id] { (p.product_name) } }
            }
            label for="c-type" { "Type" }
            select id="c-type" name="type" data-examples="c-config" {
                @for t in ConstraintType::ALL {
                    option value=(t.as_str()) data-example=(example_config(*t)) selected[*t == chosen_type] { (t.as_str()) }
                }
            }
            label for="c-config" { "Config (JSON)" }
            textarea.code id="c-config" name="config" rows="4" required placeholder=(example_config(chosen_type))
                aria-invalid=[error_of("constraint").map(|_| "true")] { (kept("constraint", "config")) }
            (field_error(error_of("constraint")))
            label for="c-description" { "Description" }
            input id="c-description" name="description" value=(kept("constraint", "description"));
            button type="submit" { "Create constraint" }
        }
        h2 { "Delete" }
        (error_box(error_of("delete").map(ApiError::message)))
        (action_button(session, &format!("{path}/delete"), "Delete portfolio", Some("Delete this portfolio?")))
    };
    let status = failed.map_or(StatusCode::OK, |(_, e)| e.status());
    Ok(respond(status, page(&detail.portfolio_name, Some(session), body)))
}

/// An error shown under the field it concerns, announced to screen readers.
fn field_error(error: Option<&ApiError>) -> Markup {
    html! { @if let Some(e) = error { p.field-error role="alert" { (e.message()) } } }
}

/// Whether a refused change is shown on the page it came from rather than an error page: bad
/// input (400), a change not possible now (409), or a principal that does not exist.
fn shown_inline(error: &ApiError) -> bool {
    matches!(error.status(), StatusCode::BAD_REQUEST | StatusCode::CONFLICT) || error.code() == "EntityNotExists.Principal"
}

async fn change_portfolio(
    State(state): State<SharedState>,
    Path((id, operation)): Path<(String, String)>,
    Posted { session, form }: Posted,
) -> Result<Response, PageError> {
    let catalog = state.catalog(&session.principal);
    let portfolio_id = id.clone();
    let product = || ProductInPortfolio { portfolio_id: id.clone(), product_id: form.text("product").to_string() };
    let grant = || GrantRequest {
        portfolio_id: id.clone(),
        principal_type: form.text("type").to_string(),
        principal_id: form.optional("principal"),
        principal_pattern: form.optional("pattern"),
    };
    let changed: Result<(), ApiError> = async {
        match operation.as_str() {
            "edit" => {
                let update = PortfolioUpdate { portfolio_id, fields: portfolio_input(&form) };
                audited(&state, &session, Action::UpdatePortfolio, update, |r| catalog.update_portfolio(r)).await.map(drop)
            }
            "delete" => {
                audited(&state, &session, Action::DeletePortfolio, PortfolioRef { portfolio_id }, |r| catalog.delete_portfolio(r)).await
            }
            "add-product" => {
                audited(&state, &session, Action::AssociateProductWithPortfolio, product(), |r| catalog.associate_product(r)).await
            }
            "remove-product" => {
                audited(&state, &session, Action::DisassociateProductFromPortfolio, product(), |r| catalog.disassociate_product(r)).await
            }
            "grant" => audited(&state, &session, Action::AssociatePrincipalWithPortfolio, grant(), |r| catalog.grant(r)).await,
            "revoke" => audited(&state, &session, Action::DisassociatePrincipalFromPortfolio, grant(), |r| catalog.revoke(r)).await,
            "constraint" => {
                let constraint = NewConstraint {
                    config: form.text("config").to_string(),
                    constraint_type: form.text("type").to_string(),
                    description: form.optional("description"),
                    portfolio_id,
                    product_id: form.text("product").to_string(),
                };
                audited(&state, &session, Action::CreateConstraint, constraint, |r| catalog.create_constraint(r)).await.map(drop)
            }
            _ => return Err(no_such_page()),
        }?;
        Ok(())
    }
    .await;
    match changed {
        Ok(()) if operation == "delete" => Ok(see_other("/console/admin/portfolios")),
        Ok(()) => Ok(see_other(&format!("/console/admin/portfolios/{}", seg(&id)))),
        Err(e) if shown_inline(&e) => render_portfolio(&state, &session, &id, &form, Some((operation.as_str(), &e))).await,
        Err(e) => Err(e.into()),
    }
}

// ---- Constraints ----

/// Which other side of a constraint a table names: the product (on a portfolio's page) or the
/// portfolio (on a product's).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    Product,
    Portfolio,
}

/// A table of constraints with their Config laid out, each with Edit and Delete.
fn constraints_table(session: &Session, constraints: &[ListedConstraint], column: Column) -> Markup {
    html! {
        @if constraints.is_empty() { p.muted { "No constraints." } }
        @else {
            table.constraints {
                thead { tr { th { (if column == Column::Product { "Product" } else { "Portfolio" }) } th { "Type" } th { "Config" } th { "Description" } th { span.visually-hidden { "Action" } } } }
                tbody {
                    @for c in constraints {
                        @let d = &c.detail;
                        @let path = format!("/console/admin/constraints/{}", seg(&d.constraint_id));
                        tr {
                            td {
                                @if column == Column::Product { a href={ "/console/admin/products/" (seg(&d.product_id)) } { (d.product_name) } }
                                @else { a href={ "/console/admin/portfolios/" (seg(&d.portfolio_id)) } { (c.portfolio_name) } }
                            }
                            td { (d.constraint_type) }
                            td { (config_view(&d.config)) }
                            td { (d.description) }
                            td {
                                div.buttons {
                                    a.button href=(path) aria-label={ "Edit the " (d.constraint_type) " constraint" } { "Edit" }
                                    (action_button(session, &format!("{path}/delete"), &format!("Delete {}", d.constraint_type), Some("Delete this constraint?")))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A Config laid out as `path: value` lines (lists of values joined), not raw JSON.
fn config_view(config: &str) -> Markup {
    let mut lines = Vec::new();
    match serde_json::from_str::<Value>(config) {
        Ok(value) => config_lines(&value, String::new(), &mut lines),
        Err(_) => lines.push((String::new(), config.to_string())),
    }
    html! { dl.config { @for (path, value) in &lines { dt { (path) } dd { code { (value) } } } } }
}

/// The leaves of `value` under `path`: `Parameters › size › AllowedValues` = `small, large`.
fn config_lines(value: &Value, path: String, lines: &mut Vec<(String, String)>) {
    let under = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path} › {key}") };
    match value {
        Value::Object(fields) => fields.iter().for_each(|(k, v)| config_lines(v, under(k), lines)),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            lines.push((path, items.iter().map(scalar).collect::<Vec<_>>().join(", ")))
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| config_lines(v, under(&(i + 1).to_string()), lines)),
        other => lines.push((path, scalar(other))),
    }
}

/// A JSON scalar as text (strings without their quotes).
fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

async fn constraint(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    render_constraint(&state.catalog(&session.principal), &session, &id, None, None).await
}

/// A constraint's page: its Config to edit (`form` keeps what was sent when `error` refused it).
async fn render_constraint(
    catalog: &Catalog<'_>,
    session: &Session,
    id: &str,
    form: Option<&Form>,
    error: Option<&ApiError>,
) -> Result<Response, PageError> {
    let reference = ConstraintRef { constraint_id: id.to_string() };
    let detail = catalog.get_constraint(checked(session, Action::GetConstraint, reference)?).await?.constraint_detail;
    let pretty = serde_json::from_str::<Value>(&detail.config)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| detail.config.clone());
    let (config, description) = match form {
        Some(form) => (form.text("config"), form.text("description")),
        None => (pretty.as_str(), detail.description.as_str()),
    };
    let path = format!("/console/admin/constraints/{}", seg(id));
    let example = detail.constraint_type.parse().map(example_config).unwrap_or_default();
    let body = html! {
        dl.facts {
            dt { "Type" } dd { (detail.constraint_type) }
            dt { "Portfolio" } dd { a href={ "/console/admin/portfolios/" (seg(&detail.portfolio_id)) } { code { (detail.portfolio_id) } } }
            dt { "Product" } dd { a href={ "/console/admin/products/" (seg(&detail.product_id)) } { (detail.product_name) } }
            dt { "Created" } dd { (detail.create_time) }
        }
        h2 { "Config" }
        (config_view(&detail.config))
        h2 { "Edit" }
        form.stack method="post" action={ (path) "/edit" } {
            (csrf_input(session))
            label for="config" { "Config (JSON)" }
            textarea.code id="config" name="config" rows="8" required placeholder=(example) aria-invalid=[error.map(|_| "true")] { (config) }
            (field_error(error))
            label for="description" { "Description" }
            input id="description" name="description" value=(description);
            button type="submit" { "Save" }
        }
        h2 { "Delete" }
        (action_button(session, &format!("{path}/delete"), "Delete constraint", Some("Delete this constraint?")))
    };
    let status = error.map_or(StatusCode::OK, ApiError::status);
    Ok(respond(status, page(&format!("{} constraint", detail.constraint_type), Some(session), body)))
}

async fn change_constraint(
    State(state): State<SharedState>,
    Path((id, operation)): Path<(String, String)>,
    Posted { session, form }: Posted,
) -> Result<Response, PageError> {
    let catalog = state.catalog(&session.principal);
    let reference = || ConstraintRef { constraint_id: id.clone() };
    let detail = catalog.get_constraint(checked(&session, Action::GetConstraint, reference())?).await?.constraint_detail;
    let back = format!("/console/admin/portfolios/{}", seg(&detail.portfolio_id));
    match operation.as_str() {
        "delete" => {
            audited(&state, &session, Action::DeleteConstraint, reference(), |r| catalog.delete_constraint(r)).await?;
            Ok(see_other(&back))
        }
        "edit" => {
            let change = ConstraintChange {
                config: form.text("config").to_string(),
                constraint_id: id.clone(),
                // Empty keeps the description (the action takes none shorter than 1 character).
                description: form.optional("description"),
            };
            let updated = async { audited(&state, &session, Action::UpdateConstraint, change, |r| catalog.update_constraint(r)).await };
            match updated.await {
                Ok(_) => Ok(see_other(&back)),
                Err(e) if shown_inline(&e) => render_constraint(&catalog, &session, &id, Some(&form), Some(&e)).await,
                Err(e) => Err(e.into()),
            }
        }
        _ => Err(PageError::not_found()),
    }
}

// ---- Products and versions ----

async fn products(State(state): State<SharedState>, session: Session, query: Form) -> Result<Response, PageError> {
    let answer = list_products(&state.catalog(&session.principal), &session, &query).await?;
    Ok(render_products(&session, &query, &answer, &Form::default(), None))
}

fn render_products(session: &Session, query: &Form, answer: &Products, form: &Form, error: Option<&ApiError>) -> Response {
    let body = html! {
        @let rows = answer.product_details.iter().map(|p| [&p.product_id, &p.product_name, &p.provider_name, &p.description, &p.create_time]);
        (listing("/console/admin/products", "Product", query, answer.page.total_count, rows))
        h2 #create { "Publish a product" }
        form.stack method="post" action="/console/admin/products" {
            (csrf_input(session))
            (portfolio_fields(form.text("name"), form.text("provider"), form.text("description")))
            (version_fields(form, error))
            button type="submit" { "Publish product" }
        }
    };
    respond(error.map_or(StatusCode::OK, ApiError::status), page("Products", Some(session), body))
}

/// The fields of a new version: its name, guidance and template: pasted (or read from a file by
/// the page's script), or named by a URL the server fetches (a Git repository or an HTTP(S)
/// file, where the operator allows it). An error of the URL is shown at its field; one of a
/// pasted template with the template, its line marked.
fn version_fields(form: &Form, error: Option<&ApiError>) -> Markup {
    let (template, url) = (form.text("template"), form.text("template_url"));
    // An error naming the TemplateUrl of a typed URL is about it (a pasted template's travels
    // under a TemplateUrl too, the one its upload returned).
    let (url_error, template_error) = match error {
        Some(e) if !url.trim().is_empty() && (e.code().ends_with("TemplateUrl") || e.message().contains("TemplateUrl")) => {
            (Some(e.message()), None)
        }
        other => (None, other.map(ApiError::message)),
    };
    let bad_line = template_error.and_then(error_line).filter(|_| !template.is_empty());
    html! {
        label for="version" { "Version name (required)" } input id="version" name="version" required value=(if form.get("version").is_some() { form.text("version") } else { "v1" });
        label for="guidance" { "Guidance" }
        select id="guidance" name="guidance" { @for g in ["Default", "Recommended", "Latest", "Deprecated"] { option value=(g) selected[form.text("guidance") == g] { (g) } } }
        label for="template" { "Terraform template" }
        small id="template-hint" { "Paste main.tf, or a whole template body as JSON ({\"Workspace\": {…}}). Or choose a file:" }
        input type="file" id="template-file" accept=".tf,.json,text/plain,application/json" data-fill="template" aria-label="Template file";
        textarea.code id="template" name="template" rows="14" aria-describedby="template-hint" aria-invalid=[template_error.map(|_| "true")] { (template) }
        label for="template-url" { "Or the template's URL" }
        small id="template-url-hint" { "A Git repository (git::https://host/repo.git//dir?ref=v1) or an https:// .tf, .tf.json, .zip or .tar.gz, fetched once now, where the operator allows it." }
        input id="template-url" name="template_url" value=(url) aria-describedby="template-url-hint" aria-invalid=[url_error.map(|_| "true")];
        @if let Some(message) = url_error { p.field-error role="alert" { (message) } }
        (error_box(template_error))
        @if let Some(line) = bad_line {
            ol.source aria-label="Template with the error's line marked" {
                @for (n, text) in template.lines().enumerate() {
                    li.bad[n + 1 == line] id={ "line-" (n + 1) } { code { (text) } }
                }
            }
        }
    }
}

/// The line number an HCL error names ("… at line N, …").
fn error_line(message: &str) -> Option<usize> {
    let rest = &message[message.find("at line ")? + 8..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The `TemplateBody` of pasted text: JSON bodies as they are, HCL as the workspace's `main.tf`
/// run by `transform`.
fn template_body(text: &str, transform: Transform) -> String {
    if text.trim_start().starts_with('{') {
        return text.to_string();
    }
    let transform = transform.to_string();
    json!({"ROSTemplateFormatVersion": "2015-09-01", "Transform": transform, "Workspace": {"main.tf": text}}).to_string()
}

/// The new version's fields from the form: its `TemplateUrl` as typed, or that of its pasted
/// template once uploaded (`CreateTemplate`). The catalog fetches and checks a typed URL like
/// the API's.
async fn template_fields(state: &SharedState, catalog: &Catalog<'_>, session: &Session, form: &Form) -> Result<VersionFields, ApiError> {
    let (template, url) = (form.text("template"), form.text("template_url").trim());
    let template_url = match (template.trim().is_empty(), url.is_empty()) {
        (true, true) => {
            let message = "Paste the template (or choose its file), or give its URL.";
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "MissingParameter.TemplateBody", message));
        }
        (false, false) => {
            return Err(ApiError::invalid_parameter("TemplateUrl", "Give the template or its URL, not both: clear one of them."));
        }
        (true, false) => url.to_string(),
        (false, true) => {
            let upload = NewTemplate {
                template_type: TERRAFORM.into(),
                template_body: template_body(template, catalog.default_transform()),
                terraform_variables: Vec::new(),
            };
            audited(state, session, Action::CreateTemplate, upload, |r| catalog.create_template(r)).await?.template_url
        }
    };
    Ok(VersionFields {
        product_version_name: Some(form.text("version").to_string()),
        template_type: Some(TERRAFORM.into()),
        template_url: Some(template_url),
        guidance: form.text("guidance").to_string(),
        active: true,
        ..VersionFields::default()
    })
}

async fn create_product(State(state): State<SharedState>, Posted { session, form }: Posted) -> Result<Response, PageError> {
    let catalog = state.catalog(&session.principal);
    let created = async {
        let product = NewProduct {
            product_name: form.text("name").to_string(),
            provider_name: form.text("provider").to_string(),
            description: form.optional("description"),
            product_type: Some("Ros".into()),
            template_type: Some(TERRAFORM.into()),
            product_version_parameters: Some(template_fields(&state, &catalog, &session, &form).await?),
        };
        audited(&state, &session, Action::CreateProduct, product, |r| catalog.create_product(r)).await
    };
    match created.await {
        Ok(created) => Ok(see_other(&format!("/console/admin/products/{}", seg(&created.product_id)))),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let answer = list_products(&catalog, &session, &Form::default()).await?;
            Ok(render_products(&session, &Form::default(), &answer, &form, Some(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn product(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    render_product(&state, &state.catalog(&session.principal), &session, &id, &Form::default(), None).await
}

async fn render_product(
    state: &SharedState,
    catalog: &Catalog<'_>,
    session: &Session,
    id: &str,
    form: &Form,
    error: Option<&ApiError>,
) -> Result<Response, PageError> {
    let this = || ProductRef { product_id: id.to_string() };
    let detail = catalog.get_product(checked(session, Action::GetProductAsAdmin, this())?).await?.product_detail;
    let versions = catalog.versions(checked(session, Action::ListProductVersions, this())?).await?.product_version_details;
    let listing = PortfolioListing { paging: Paging::new(1, 100), filters: Vec::new(), scope: None, product_id: Some(id.to_string()) };
    let in_portfolios = catalog.list_portfolios(checked(session, Action::ListPortfolios, listing)?).await?.portfolio_details;
    // Every portfolio's constraints, granted to the administrator or not (`ListLaunchOptions`
    // would show only the granted ones, and refuses a product in none).
    let listing = ConstraintListing { portfolio_id: None, product_id: Some(id.to_string()) };
    let constraints = catalog.constraints(checked(session, Action::ListConstraints, listing)?).await?.constraint_details;
    let path = format!("/console/admin/products/{}", seg(id));
    // How many of its provisioned products run a Deprecated version (of everyone's).
    let on_deprecated =
        ProvisionedProductQuery { deprecated: Some(true), product_id: Some(id.to_string()), ..ProvisionedProductQuery::default() };
    let (_, deprecated) =
        state.provisioner().list(&session.principal, true, on_deprecated, SortOrder::Desc, Page { number: 1, size: 1 }).await?;
    let body = html! {
        p { (detail.description) }
        p.muted { "Provided by " (detail.provider_name) " · " code { (id) } }
        h2 { "Versions" }
        table {
            thead { tr { th { "Version" } th { "Guidance" } th { "Active" } th { "Created" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for v in &versions {
                    tr {
                        td { (v.product_version_name) }
                        td { (v.guidance) }
                        td { (if v.active { "yes" } else { "no" }) }
                        td { (v.create_time) }
                        td {
                            form.inline method="post" action={ (path) "/delete-version" } data-confirm="Delete this version?" {
                                (csrf_input(session)) input type="hidden" name="version_id" value=(v.product_version_id);
                                button.danger type="submit" { "Delete " (v.product_version_name) }
                            }
                        }
                    }
                }
            }
        }
        @if deprecated > 0 {
            p.deprecated {
                (status("Deprecated")) " "
                a href={ "/console/provisioned?scope=account&deprecated=true&product=" (seg(id)) } {
                    (deprecated) " provisioned " (if deprecated == 1 { "product runs" } else { "products run" }) " a Deprecated version"
                }
                "."
            }
        }
        h2 { "Portfolios" }
        @if in_portfolios.is_empty() { p { "In no portfolio yet: add it to one from the " a href="/console/admin/portfolios" { "portfolio's page" } " so that it can be granted." } }
        ul { @for p in &in_portfolios { li { a href={ "/console/admin/portfolios/" (seg(&p.portfolio_id)) } { (p.portfolio_name) } } } }
        h2 { "Constraints" }
        (constraints_table(session, &constraints, Column::Portfolio))
        h2 #new-version { "Add a version" }
        form.stack method="post" action={ (path) "/add-version" } {
            (csrf_input(session))
            (version_fields(form, error))
            button type="submit" { "Add version" }
        }
        h2 { "Delete" }
        (action_button(session, &format!("{path}/delete"), "Delete product", Some("Delete this product?")))
    };
    Ok(respond(error.map_or(StatusCode::OK, ApiError::status), page(&detail.product_name, Some(session), body)))
}

async fn change_product(
    State(state): State<SharedState>,
    Path((id, operation)): Path<(String, String)>,
    Posted { session, form }: Posted,
) -> Result<Response, PageError> {
    let catalog = state.catalog(&session.principal);
    let location = format!("/console/admin/products/{}", seg(&id));
    match operation.as_str() {
        "delete" => {
            audited(&state, &session, Action::DeleteProduct, ProductRef { product_id: id }, |r| catalog.delete_product(r)).await?;
            Ok(see_other("/console/admin/products"))
        }
        "delete-version" => {
            let version = VersionRef { product_version_id: form.text("version_id").to_string() };
            audited(&state, &session, Action::DeleteProductVersion, version, |r| catalog.delete_version(r)).await?;
            Ok(see_other(&location))
        }
        "add-version" => {
            let added = async {
                let version = NewVersion { product_id: id.clone(), fields: template_fields(&state, &catalog, &session, &form).await? };
                audited(&state, &session, Action::CreateProductVersion, version, |r| catalog.create_version(r)).await
            };
            match added.await {
                Ok(_) => Ok(see_other(&location)),
                Err(e) if e.status() == StatusCode::BAD_REQUEST => render_product(&state, &catalog, &session, &id, &form, Some(&e)).await,
                Err(e) => Err(e.into()),
            }
        }
        _ => Err(PageError::not_found()),
    }
}

// ---- Tag options ----

async fn tag_options(State(state): State<SharedState>, session: Session, query: Form) -> Result<Response, PageError> {
    let q = query.text("q");
    let filters = (!q.is_empty()).then(|| TagOptionFilters { full_text_search: Some(q.to_string()), ..TagOptionFilters::default() });
    let listing = TagOptionListing { paging: Paging::new(query.page(), PAGE_SIZE), filters };
    let answer = state.catalog(&session.principal).list_tag_options(checked(&session, Action::ListTagOptions, listing)?).await?;
    let body = html! {
        (filter_form("/console/admin/tag-options", "Search tag options", q, &[]))
        table {
            thead { tr { th { "Key" } th { "Value" } th { "Id" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for t in &answer.tag_option_details {
                    tr {
                        td { (t.key) }
                        td { (t.value) }
                        td { code { (t.tag_option_id) } }
                        td {
                            form.inline method="post" action="/console/admin/tag-options/delete" data-confirm="Delete this tag option?" {
                                (csrf_input(&session)) input type="hidden" name="id" value=(t.tag_option_id);
                                button.danger type="submit" { "Delete " (t.key) "=" (t.value) }
                            }
                        }
                    }
                }
            }
        }
        (pager("/console/admin/tag-options", &[("q", q)], query.page(), PAGE_SIZE, answer.page.total_count))
        h2 { "Create a tag option" }
        form.stack method="post" action="/console/admin/tag-options/create" {
            (csrf_input(&session))
            label for="key" { "Key" } input id="key" name="key" required;
            label for="value" { "Value" } input id="value" name="value" required;
            button type="submit" { "Create" }
        }
        h2 { "Attach a tag option" }
        form.stack method="post" action="/console/admin/tag-options/associate" {
            (csrf_input(&session))
            label for="tag" { "Tag option id" } input id="tag" name="id" required;
            label for="resource" { "Product or portfolio id" } input id="resource" name="resource" required placeholder="prod-… or port-…";
            button type="submit" { "Attach" }
        }
    };
    Ok(respond(StatusCode::OK, page("Tag options", Some(&session), body)))
}

async fn change_tag_options(
    State(state): State<SharedState>,
    Path(operation): Path<String>,
    Posted { session, form }: Posted,
) -> Result<Response, PageError> {
    let catalog = state.catalog(&session.principal);
    let id = form.text("id").to_string();
    match operation.as_str() {
        "create" => {
            let option = NewTagOption { key: form.text("key").to_string(), value: form.text("value").to_string() };
            audited(&state, &session, Action::CreateTagOption, option, |r| catalog.create_tag_option(r)).await.map(drop)
        }
        "delete" => {
            audited(&state, &session, Action::DeleteTagOption, TagOptionRef { tag_option_id: id }, |r| catalog.delete_tag_option(r)).await
        }
        "associate" => {
            let link = TagOptionLink { resource_id: form.text("resource").to_string(), tag_option_id: id };
            audited(&state, &session, Action::AssociateTagOptionWithResource, link, |r| catalog.associate_tag_option(r)).await
        }
        _ => return Err(PageError::not_found()),
    }?;
    Ok(see_other("/console/admin/tag-options"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_errors_name_their_line() {
        assert_eq!(error_line("The template file main.tf has an HCL syntax error at line 3, column 5: x."), Some(3));
        assert_eq!(error_line("no line here"), None);
    }

    #[test]
    fn pasted_hcl_becomes_the_workspace_main_file() {
        let body: serde_json::Value = serde_json::from_str(&template_body("variable \"a\" {}\n", Transform::terraform(1, 0))).unwrap();
        assert_eq!(body["Workspace"]["main.tf"], "variable \"a\" {}\n");
        assert_eq!(template_body(" {\"Workspace\": {}}", Transform::terraform(1, 0)), " {\"Workspace\": {}}");
    }
}
