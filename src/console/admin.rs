//! Administrators' pages: portfolios (with their products, grants and constraints), products and
//! their versions (created from a pasted or uploaded template, whose errors are shown at their
//! line), and tag options. Each page calls administrators' actions, so an end user gets the
//! API's 403 here too.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::html::{action_button, csrf_input, error_box, filter_form, page, pager, seg};
use super::session::Session;
use super::{call, list, respond, s, see_other, total, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::SharedState;
use crate::catalog::constraint::ConstraintType;

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console/admin/portfolios", get(portfolios).post(create_portfolio))
        .route("/console/admin/portfolios/{id}", get(portfolio))
        .route("/console/admin/portfolios/{id}/{operation}", post(change_portfolio))
        .route("/console/admin/products", get(products).post(create_product))
        .route("/console/admin/products/{id}", get(product))
        .route("/console/admin/products/{id}/{operation}", post(change_product))
        .route("/console/admin/tag-options", get(tag_options))
        .route("/console/admin/tag-options/{operation}", post(change_tag_options))
}

/// Paging and a full-text filter as list parameters.
fn list_params(query: &Form) -> Vec<(String, String)> {
    let mut params = vec![("PageNumber".to_string(), query.page().to_string()), ("PageSize".into(), PAGE_SIZE.to_string())];
    if !query.text("q").is_empty() {
        params.extend([("Filters.1.Key".into(), "FullTextSearch".into()), ("Filters.1.Value".into(), query.text("q").to_string())]);
    }
    params
}

/// Form fields as action parameters, leaving out empty ones.
fn fields<'a>(form: &'a Form, names: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    names.iter().map(|(wire, field)| (*wire, form.text(field))).filter(|(_, v)| !v.is_empty()).collect()
}

// ---- Portfolios ----

async fn portfolios(State(state): State<SharedState>, session: Session, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let query = Form::query(query.as_deref());
    let answer = call(&state, &session, Action::ListPortfolios, list_params(&query)).await?;
    Ok(render_portfolios(&session, &query, &answer, &Form::default(), None))
}

fn render_portfolios(session: &Session, query: &Form, answer: &Value, form: &Form, error: Option<&ApiError>) -> Response {
    let body = html! {
        (filter_form("/console/admin/portfolios", "Search portfolios", query.text("q"), &[]))
        table {
            thead { tr { th { "Portfolio" } th { "Provider" } th { "Description" } th { "Created" } } }
            tbody {
                @for p in list(answer, "/PortfolioDetails") {
                    tr {
                        td { a href={ "/console/admin/portfolios/" (seg(s(p, "/PortfolioId"))) } { (s(p, "/PortfolioName")) } }
                        td { (s(p, "/ProviderName")) }
                        td { (s(p, "/Description")) }
                        td { (s(p, "/CreateTime")) }
                    }
                }
            }
        }
        (pager("/console/admin/portfolios", &[("q", query.text("q"))], query.page(), PAGE_SIZE, total(answer)))
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

fn portfolio_fields(name: &str, provider: &str, description: &str) -> Markup {
    html! {
        label for="name" { "Name (required)" } input id="name" name="name" required value=(name);
        label for="provider" { "Provider (required)" } input id="provider" name="provider" required value=(provider);
        label for="description" { "Description" } textarea id="description" name="description" rows="2" { (description) }
    }
}

async fn create_portfolio(State(state): State<SharedState>, session: Session, body: Bytes) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let params = fields(&form, &[("PortfolioName", "name"), ("ProviderName", "provider"), ("Description", "description")]);
    match call(&state, &session, Action::CreatePortfolio, params).await {
        Ok(answer) => Ok(see_other(&format!("/console/admin/portfolios/{}", seg(s(&answer, "/PortfolioId"))))),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let answer = call(&state, &session, Action::ListPortfolios, list_params(&Form::default())).await?;
            Ok(render_portfolios(&session, &Form::default(), &answer, &form, Some(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn portfolio(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    let id = id.as_str();
    let portfolio = call(&state, &session, Action::GetPortfolio, [("PortfolioId", id)]).await?;
    let detail = &portfolio["PortfolioDetail"];
    let products = call(&state, &session, Action::ListProductsAsAdmin, [("PortfolioId", id), ("PageSize", "100")]).await?;
    let all_products = call(&state, &session, Action::ListProductsAsAdmin, [("PageSize", "100")]).await?;
    let principals = call(&state, &session, Action::ListPrincipals, [("PortfolioId", id)]).await?;
    let path = format!("/console/admin/portfolios/{}", seg(id));
    let in_portfolio = list(&products, "/ProductDetails");
    let body = html! {
        h2 { "Details" }
        form.stack method="post" action={ (path) "/edit" } {
            (csrf_input(&session))
            (portfolio_fields(s(detail, "/PortfolioName"), s(detail, "/ProviderName"), s(detail, "/Description")))
            button type="submit" { "Save" }
        }
        h2 { "Products" }
        table {
            thead { tr { th { "Product" } th { "Provider" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for p in in_portfolio {
                    tr {
                        td { a href={ "/console/admin/products/" (seg(s(p, "/ProductId"))) } { (s(p, "/ProductName")) } }
                        td { (s(p, "/ProviderName")) }
                        td {
                            form.inline method="post" action={ (path) "/remove-product" } {
                                (csrf_input(&session)) input type="hidden" name="product" value=(s(p, "/ProductId"));
                                button type="submit" { "Remove " (s(p, "/ProductName")) }
                            }
                        }
                    }
                }
            }
        }
        form.filter method="post" action={ (path) "/add-product" } {
            (csrf_input(&session))
            label for="product" { "Add a product" }
            select id="product" name="product" {
                @for p in list(&all_products, "/ProductDetails") { option value=(s(p, "/ProductId")) { (s(p, "/ProductName")) } }
            }
            button type="submit" { "Add" }
        }
        h2 { "Grants" }
        p { "Users and roles granted this portfolio may launch its products. A pattern grants every name it matches (" code { "*" } " is everyone)." }
        table {
            thead { tr { th { "Type" } th { "Principal or pattern" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for g in list(&principals, "/Principals") {
                    @let (field, key) = if g.get("PrincipalPattern").is_some() { ("pattern", s(g, "/PrincipalPattern")) } else { ("principal", s(g, "/PrincipalId")) };
                    tr {
                        td { (s(g, "/PrincipalType")) }
                        td { code { (key) } }
                        td {
                            form.inline method="post" action={ (path) "/revoke" } {
                                (csrf_input(&session))
                                input type="hidden" name="type" value=(s(g, "/PrincipalType"));
                                input type="hidden" name=(field) value=(key);
                                button type="submit" { "Revoke " (key) }
                            }
                        }
                    }
                }
            }
        }
        form.stack method="post" action={ (path) "/grant" } {
            (csrf_input(&session))
            label for="type" { "Principal type" }
            select id="type" name="type" { option value="RamUser" { "User (RamUser)" } option value="RamRole" { "Role (RamRole)" } }
            label for="principal" { "Principal id" }
            input id="principal" name="principal" aria-describedby="principal-hint";
            small id="principal-hint" { "Or give a pattern instead:" }
            label for="pattern" { "Name pattern" }
            input id="pattern" name="pattern" placeholder="e.g. dev-*";
            button type="submit" { "Grant" }
        }
        h2 { "Constraints" }
        p { "A constraint applies to one product of this portfolio. " a href="/console/admin/products" { "Each product's page" } " lists the constraints in force." }
        form.stack method="post" action={ (path) "/constraint" } {
            (csrf_input(&session))
            label for="c-product" { "Product" }
            select id="c-product" name="product" { @for p in in_portfolio { option value=(s(p, "/ProductId")) { (s(p, "/ProductName")) } } }
            label for="c-type" { "Type" }
            select id="c-type" name="type" { @for t in ConstraintType::ALL { option value=(t.as_str()) { (t.as_str()) } } }
            label for="c-config" { "Config (JSON)" }
            textarea id="c-config" name="config" rows="4" required placeholder=r#"{"AllowedRegions": ["cn-hangzhou"]}"# {}
            label for="c-description" { "Description" }
            input id="c-description" name="description";
            button type="submit" { "Create constraint" }
        }
        h2 { "Delete" }
        (action_button(&session, &format!("{path}/delete"), "Delete portfolio", Some("Delete this portfolio?")))
    };
    Ok(respond(StatusCode::OK, page(s(detail, "/PortfolioName"), Some(&session), body)))
}

async fn change_portfolio(
    State(state): State<SharedState>,
    session: Session,
    Path((id, operation)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let id = id.as_str();
    let portfolio = [("PortfolioId", id)];
    let (action, mut params) = match operation.as_str() {
        "edit" => (
            Action::UpdatePortfolio,
            fields(&form, &[("PortfolioName", "name"), ("ProviderName", "provider"), ("Description", "description")]),
        ),
        "delete" => (Action::DeletePortfolio, vec![]),
        "add-product" => (Action::AssociateProductWithPortfolio, fields(&form, &[("ProductId", "product")])),
        "remove-product" => (Action::DisassociateProductFromPortfolio, fields(&form, &[("ProductId", "product")])),
        "grant" => (
            Action::AssociatePrincipalWithPortfolio,
            fields(&form, &[("PrincipalType", "type"), ("PrincipalId", "principal"), ("PrincipalPattern", "pattern")]),
        ),
        "revoke" => (
            Action::DisassociatePrincipalFromPortfolio,
            fields(&form, &[("PrincipalType", "type"), ("PrincipalId", "principal"), ("PrincipalPattern", "pattern")]),
        ),
        "constraint" => (
            Action::CreateConstraint,
            fields(&form, &[("ProductId", "product"), ("ConstraintType", "type"), ("Config", "config"), ("Description", "description")]),
        ),
        _ => return Err(not_found()),
    };
    params.extend(portfolio);
    call(&state, &session, action, params).await?;
    Ok(see_other(
        if action == Action::DeletePortfolio {
            "/console/admin/portfolios".into()
        } else {
            format!("/console/admin/portfolios/{}", seg(id))
        }
        .as_str(),
    ))
}

fn not_found() -> PageError {
    PageError::Api(ApiError::new(StatusCode::NOT_FOUND, "NotFound", "There is no such page."))
}

// ---- Products and versions ----

async fn products(State(state): State<SharedState>, session: Session, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let query = Form::query(query.as_deref());
    let answer = call(&state, &session, Action::ListProductsAsAdmin, list_params(&query)).await?;
    Ok(render_products(&session, &query, &answer, &Form::default(), None))
}

fn render_products(session: &Session, query: &Form, answer: &Value, form: &Form, error: Option<&ApiError>) -> Response {
    let body = html! {
        (filter_form("/console/admin/products", "Search products", query.text("q"), &[]))
        table {
            thead { tr { th { "Product" } th { "Provider" } th { "Description" } th { "Created" } } }
            tbody {
                @for p in list(answer, "/ProductDetails") {
                    tr {
                        td { a href={ "/console/admin/products/" (seg(s(p, "/ProductId"))) } { (s(p, "/ProductName")) } }
                        td { (s(p, "/ProviderName")) }
                        td { (s(p, "/Description")) }
                        td { (s(p, "/CreateTime")) }
                    }
                }
            }
        }
        (pager("/console/admin/products", &[("q", query.text("q"))], query.page(), PAGE_SIZE, total(answer)))
        h2 #create { "Publish a product" }
        form.stack method="post" action="/console/admin/products" {
            (csrf_input(session))
            label for="name" { "Name (required)" } input id="name" name="name" required value=(form.text("name"));
            label for="provider" { "Provider (required)" } input id="provider" name="provider" required value=(form.text("provider"));
            label for="description" { "Description" } textarea id="description" name="description" rows="2" { (form.text("description")) }
            (version_fields(form, error))
            button type="submit" { "Publish product" }
        }
    };
    respond(error.map_or(StatusCode::OK, ApiError::status), page("Products", Some(session), body))
}

/// The fields of a new version: its name, guidance and template (pasted, or read from a file by
/// the page's script); a template error is shown with the template, its line marked.
fn version_fields(form: &Form, error: Option<&ApiError>) -> Markup {
    let template = form.text("template");
    let bad_line = error.and_then(|e| error_line(e.message()));
    html! {
        label for="version" { "Version name (required)" } input id="version" name="version" required value=(if form.get("version").is_some() { form.text("version") } else { "v1" });
        label for="guidance" { "Guidance" }
        select id="guidance" name="guidance" { @for g in ["Default", "Recommended", "Latest", "Deprecated"] { option value=(g) selected[form.text("guidance") == g] { (g) } } }
        label for="template" { "Terraform template (required)" }
        small id="template-hint" { "Paste main.tf, or a whole template body as JSON ({\"Workspace\": {…}}). Or choose a file:" }
        input type="file" id="template-file" accept=".tf,.json,text/plain,application/json" data-fill="template" aria-label="Template file";
        textarea.code id="template" name="template" rows="14" required aria-describedby="template-hint" aria-invalid=[error.map(|_| "true")] { (template) }
        (error_box(error.map(ApiError::message)))
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

/// The `TemplateBody` of pasted text: JSON bodies as they are, HCL as the workspace's `main.tf`.
fn template_body(text: &str) -> String {
    if text.trim_start().starts_with('{') {
        return text.to_string();
    }
    json!({"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.0", "Workspace": {"main.tf": text}}).to_string()
}

/// Uploads the form's template; the `TemplateUrl` of the new template.
async fn upload_template(state: &SharedState, session: &Session, form: &Form) -> Result<String, ApiError> {
    let template = form.text("template");
    if template.trim().is_empty() {
        return Err(ApiError::missing_parameter("TemplateBody"));
    }
    let answer = call(
        state,
        session,
        Action::CreateTemplate,
        [("TemplateType", "RosTerraformTemplate".to_string()), ("TemplateBody", template_body(template))],
    )
    .await?;
    Ok(s(&answer, "/TemplateUrl").to_string())
}

async fn create_product(State(state): State<SharedState>, session: Session, body: Bytes) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let created = async {
        let template_url = upload_template(&state, &session, &form).await?;
        let version = json!({
            "ProductVersionName": form.text("version"),
            "TemplateType": "RosTerraformTemplate",
            "TemplateUrl": template_url,
            "Guidance": form.text("guidance"),
            "Active": true,
        })
        .to_string();
        let mut params: Vec<(String, String)> =
            fields(&form, &[("ProductName", "name"), ("ProviderName", "provider"), ("Description", "description")])
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        params.extend([
            ("ProductType".into(), "Ros".into()),
            ("TemplateType".into(), "RosTerraformTemplate".into()),
            ("ProductVersionParameters".into(), version),
        ]);
        call(&state, &session, Action::CreateProduct, params).await
    };
    match created.await {
        Ok(answer) => Ok(see_other(&format!("/console/admin/products/{}", seg(s(&answer, "/ProductId"))))),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let answer = call(&state, &session, Action::ListProductsAsAdmin, list_params(&Form::default())).await?;
            Ok(render_products(&session, &Form::default(), &answer, &form, Some(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn product(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    render_product(&state, &session, &id, &Form::default(), None).await
}

async fn render_product(
    state: &SharedState,
    session: &Session,
    id: &str,
    form: &Form,
    error: Option<&ApiError>,
) -> Result<Response, PageError> {
    let product = call(state, session, Action::GetProductAsAdmin, [("ProductId", id)]).await?;
    let detail = &product["ProductDetail"];
    let versions = call(state, session, Action::ListProductVersions, [("ProductId", id)]).await?;
    let portfolios = call(state, session, Action::ListPortfolios, [("ProductId", id), ("PageSize", "100")]).await?;
    // Launch options exist only through portfolios (the action refuses a product in none).
    let options = match list(&portfolios, "/PortfolioDetails").is_empty() {
        true => Value::Null,
        false => call(state, session, Action::ListLaunchOptions, [("ProductId", id)]).await?,
    };
    let path = format!("/console/admin/products/{}", seg(id));
    let body = html! {
        p { (s(detail, "/Description")) }
        p.muted { "Provided by " (s(detail, "/ProviderName")) " · " code { (id) } }
        h2 { "Versions" }
        table {
            thead { tr { th { "Version" } th { "Guidance" } th { "Active" } th { "Created" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for v in list(&versions, "/ProductVersionDetails") {
                    tr {
                        td { (s(v, "/ProductVersionName")) }
                        td { (s(v, "/Guidance")) }
                        td { (if v["Active"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                        td { (s(v, "/CreateTime")) }
                        td {
                            form.inline method="post" action={ (path) "/delete-version" } data-confirm="Delete this version?" {
                                (csrf_input(session)) input type="hidden" name="version_id" value=(s(v, "/ProductVersionId"));
                                button type="submit" { "Delete " (s(v, "/ProductVersionName")) }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Portfolios" }
        @let in_portfolios = list(&portfolios, "/PortfolioDetails");
        @if in_portfolios.is_empty() { p { "In no portfolio yet: add it to one from the " a href="/console/admin/portfolios" { "portfolio's page" } " so that it can be granted." } }
        ul { @for p in in_portfolios { li { a href={ "/console/admin/portfolios/" (seg(s(p, "/PortfolioId"))) } { (s(p, "/PortfolioName")) } } } }
        h2 { "Constraints" }
        @for o in list(&options, "/LaunchOptionSummaries") {
            h3 { (s(o, "/PortfolioName")) }
            @let summaries = list(o, "/ConstraintSummaries");
            @if summaries.is_empty() { p.muted { "None." } }
            ul { @for c in summaries { li { strong { (s(c, "/ConstraintType")) } " " (s(c, "/Description")) " " code { (c.to_string()) } } } }
        }
        h2 #new-version { "Add a version" }
        form.stack method="post" action={ (path) "/add-version" } {
            (csrf_input(session))
            (version_fields(form, error))
            button type="submit" { "Add version" }
        }
        h2 { "Delete" }
        (action_button(session, &format!("{path}/delete"), "Delete product", Some("Delete this product?")))
    };
    Ok(respond(error.map_or(StatusCode::OK, ApiError::status), page(s(detail, "/ProductName"), Some(session), body)))
}

async fn change_product(
    State(state): State<SharedState>,
    session: Session,
    Path((id, operation)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let location = format!("/console/admin/products/{}", seg(&id));
    match operation.as_str() {
        "delete" => {
            call(&state, &session, Action::DeleteProduct, [("ProductId", id.as_str())]).await?;
            Ok(see_other("/console/admin/products"))
        }
        "delete-version" => {
            call(&state, &session, Action::DeleteProductVersion, [("ProductVersionId", form.text("version_id"))]).await?;
            Ok(see_other(&location))
        }
        "add-version" => {
            let added = async {
                let url = upload_template(&state, &session, &form).await?;
                let params = [
                    ("ProductId", id.as_str()),
                    ("ProductVersionName", form.text("version")),
                    ("Guidance", form.text("guidance")),
                    ("TemplateType", "RosTerraformTemplate"),
                    ("TemplateUrl", url.as_str()),
                    ("Active", "true"),
                ];
                call(&state, &session, Action::CreateProductVersion, params).await
            };
            match added.await {
                Ok(_) => Ok(see_other(&location)),
                Err(e) if e.status() == StatusCode::BAD_REQUEST => render_product(&state, &session, &id, &form, Some(&e)).await,
                Err(e) => Err(e.into()),
            }
        }
        _ => Err(not_found()),
    }
}

// ---- Tag options ----

async fn tag_options(State(state): State<SharedState>, session: Session, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let query = Form::query(query.as_deref());
    let q = query.text("q");
    let mut params = vec![("PageNumber".to_string(), query.page().to_string()), ("PageSize".into(), PAGE_SIZE.to_string())];
    if !q.is_empty() {
        params.push(("Filters".into(), json!({"FullTextSearch": q}).to_string()));
    }
    let answer = call(&state, &session, Action::ListTagOptions, params).await?;
    let body = html! {
        (filter_form("/console/admin/tag-options", "Search tag options", q, &[]))
        table {
            thead { tr { th { "Key" } th { "Value" } th { "Id" } th { span.visually-hidden { "Action" } } } }
            tbody {
                @for t in list(&answer, "/TagOptionDetails") {
                    tr {
                        td { (s(t, "/Key")) }
                        td { (s(t, "/Value")) }
                        td { code { (s(t, "/TagOptionId")) } }
                        td {
                            form.inline method="post" action="/console/admin/tag-options/delete" data-confirm="Delete this tag option?" {
                                (csrf_input(&session)) input type="hidden" name="id" value=(s(t, "/TagOptionId"));
                                button type="submit" { "Delete " (s(t, "/Key")) "=" (s(t, "/Value")) }
                            }
                        }
                    }
                }
            }
        }
        (pager("/console/admin/tag-options", &[("q", q)], query.page(), PAGE_SIZE, total(&answer)))
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
    session: Session,
    Path(operation): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let (action, params) = match operation.as_str() {
        "create" => (Action::CreateTagOption, fields(&form, &[("Key", "key"), ("Value", "value")])),
        "delete" => (Action::DeleteTagOption, fields(&form, &[("TagOptionId", "id")])),
        "associate" => (Action::AssociateTagOptionWithResource, fields(&form, &[("TagOptionId", "id"), ("ResourceId", "resource")])),
        _ => return Err(not_found()),
    };
    call(&state, &session, action, params).await?;
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
        let body: Value = serde_json::from_str(&template_body("variable \"a\" {}\n")).unwrap();
        assert_eq!(body["Workspace"]["main.tf"], "variable \"a\" {}\n");
        assert_eq!(template_body(" {\"Workspace\": {}}"), " {\"Workspace\": {}}");
    }
}
