//! Provisioned products: the caller's own (administrators may list everyone's), one product's
//! status, outputs and tasks, and the update and terminate changes.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde_json::Value;

use super::catalog::{parameter_fields, parameters_from_form, tags_from_form};
use super::html::{action_button, csrf_input, error_box, filter_form, page, pager, seg, status};
use super::session::Session;
use super::{call, list, respond, s, see_other, total, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::SharedState;

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console/provisioned", get(index))
        .route("/console/provisioned/{id}", get(detail))
        .route("/console/provisioned/{id}/update", get(update_form).post(update))
        .route("/console/provisioned/{id}/terminate", post(terminate))
}

async fn index(State(state): State<SharedState>, session: Session, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let query = Form::query(query.as_deref());
    let (q, page_number) = (query.text("q"), query.page());
    let account = query.get("scope") == Some("account");
    let mut params = vec![("PageNumber".to_string(), page_number.to_string()), ("PageSize".into(), PAGE_SIZE.to_string())];
    if account {
        params.push(("AccessLevelFilter".into(), "Account".into()));
    }
    if !q.is_empty() {
        params.extend([("Filters.1.Key".into(), "FullTextSearch".into()), ("Filters.1.Value".into(), q.to_string())]);
    }
    let answer = call(&state, &session, Action::ListProvisionedProducts, params).await?;
    let scope = if account { "account" } else { "" };
    let body = html! {
        (filter_form("/console/provisioned", "Search", q, &[("scope", scope)]))
        (table(list(&answer, "/ProvisionedProductDetails"), account))
        (pager("/console/provisioned", &[("q", q), ("scope", scope)], page_number, PAGE_SIZE, total(&answer)))
    };
    let title = if account { "All provisioned products" } else { "My provisioned products" };
    Ok(respond(StatusCode::OK, page(title, Some(&session), body)))
}

fn table(products: &[Value], with_owner: bool) -> Markup {
    html! {
        @if products.is_empty() { p { "Nothing is provisioned yet. " a href="/console/catalog" { "Launch a product from the catalog." } } }
        @else {
            table {
                thead { tr { th { "Name" } th { "Product" } th { "Version" } th { "Status" } @if with_owner { th { "Owner" } } th { "Created" } } }
                tbody {
                    @for p in products {
                        tr {
                            td { a href={ "/console/provisioned/" (seg(s(p, "/ProvisionedProductId"))) } { (s(p, "/ProvisionedProductName")) } }
                            td { (s(p, "/ProductName")) }
                            td { (s(p, "/ProductVersionName")) }
                            td { (status(s(p, "/Status"))) }
                            @if with_owner { td { (s(p, "/OwnerPrincipalId")) } }
                            td { (s(p, "/CreateTime")) }
                        }
                    }
                }
            }
        }
    }
}

/// A definition list of a task's outputs.
pub(super) fn outputs(task: &Value) -> Markup {
    html! {
        @let outputs = list(task, "/Outputs");
        @if outputs.is_empty() { p.muted { "No outputs." } }
        @else {
            dl.outputs {
                @for o in outputs {
                    dt { (s(o, "/OutputKey")) }
                    dd { code { (s(o, "/OutputValue")) } @if !s(o, "/Description").is_empty() { br; small { (s(o, "/Description")) } } }
                }
            }
        }
    }
}

async fn detail(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    let pp = call(&state, &session, Action::GetProvisionedProduct, [("ProvisionedProductId", id.as_str())]).await?;
    let pp = &pp["ProvisionedProductDetail"];
    let tasks = call(&state, &session, Action::ListTasks, [("ProvisionedProductId", id.as_str()), ("PageSize", "20")]).await?;
    let last_good = s(pp, "/LastSuccessfulProvisioningTaskId");
    let outputs_task = match last_good {
        "" => None,
        task_id => Some(call(&state, &session, Action::GetTask, [("TaskId", task_id)]).await?),
    };
    let changing = s(pp, "/Status") == "UnderChange";
    let path = format!("/console/provisioned/{}", seg(&id));
    let body = html! {
        dl.facts {
            dt { "Status" } dd { (status(s(pp, "/Status"))) }
            @if !s(pp, "/StatusMessage").is_empty() { dt { "Message" } dd { (s(pp, "/StatusMessage")) } }
            dt { "Product" } dd { (s(pp, "/ProductName")) " " (s(pp, "/ProductVersionName")) }
            dt { "Region" } dd { (s(pp, "/StackRegionId")) }
            dt { "Id" } dd { code { (id) } }
            dt { "Created" } dd { (s(pp, "/CreateTime")) }
            @if !s(pp, "/LastTaskId").is_empty() { dt { "Last task" } dd { a href={ "/console/tasks/" (seg(s(pp, "/LastTaskId"))) } { (s(pp, "/LastTaskId")) } } }
        }
        @if !changing {
            div.buttons {
                a.button href={ (path) "/update" } { "Update" }
                (action_button(&session, &format!("{path}/terminate"), "Terminate", Some("Terminate this provisioned product and destroy its resources?")))
            }
        } @else { p.muted { "A change is under way; update and terminate are possible once it ends." } }
        h2 { "Outputs" }
        @if let Some(task) = &outputs_task { (outputs(&task["TaskDetail"])) } @else { p.muted { "No successful launch yet." } }
        h2 { "Tasks" }
        table {
            thead { tr { th { "Task" } th { "Type" } th { "Status" } th { "Created" } } }
            tbody {
                @for t in list(&tasks, "/TaskDetails") {
                    tr {
                        td { a href={ "/console/tasks/" (seg(s(t, "/TaskId"))) } { (s(t, "/TaskId")) } }
                        td { (s(t, "/TaskType")) }
                        td { (status(s(t, "/Status"))) }
                        td { (s(t, "/CreateTime")) }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, page(s(pp, "/ProvisionedProductName"), Some(&session), body)))
}

/// The provisioned product, its product's versions, the chosen version and the parameters in force.
struct UpdateContext {
    pp: Value,
    versions: Value,
    version: Value,
    current: Vec<(String, String)>,
}

async fn update_context(state: &SharedState, session: &Session, id: &str, version_id: &str) -> Result<UpdateContext, ApiError> {
    let pp = call(state, session, Action::GetProvisionedProduct, [("ProvisionedProductId", id)]).await?["ProvisionedProductDetail"].take();
    let versions = call(state, session, Action::ListProductVersions, [("ProductId", s(&pp, "/ProductId"))]).await?;
    let version_id = if version_id.is_empty() { s(&pp, "/ProductVersionId") } else { version_id };
    let version = call(state, session, Action::GetProductVersion, [("ProductVersionId", version_id)]).await?;
    let task_id = s(&pp, "/LastProvisioningTaskId");
    let current = if task_id.is_empty() {
        Vec::new()
    } else {
        let task = call(state, session, Action::GetTask, [("TaskId", task_id)]).await?;
        list(&task, "/TaskDetail/Parameters")
            .iter()
            .map(|p| (s(p, "/ParameterKey").to_string(), s(p, "/ParameterValue").to_string()))
            .collect()
    };
    Ok(UpdateContext { pp, versions, version, current })
}

async fn update_form(
    State(state): State<SharedState>,
    session: Session,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let query = Form::query(query.as_deref());
    let context = update_context(&state, &session, &id, query.text("version")).await?;
    Ok(render_update(&session, &id, &context, &Form::default(), None, StatusCode::OK))
}

async fn update(State(state): State<SharedState>, session: Session, Path(id): Path<String>, body: Bytes) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let context = update_context(&state, &session, &id, form.text("version")).await?;
    let mut params = vec![
        ("ProvisionedProductId".to_string(), id.clone()),
        ("ProductId".into(), s(&context.pp, "/ProductId").to_string()),
        ("ProductVersionId".into(), s(&context.version, "/ProductVersionDetail/ProductVersionId").to_string()),
    ];
    params.extend(parameters_from_form(&form));
    params.extend(tags_from_form(&form));
    match call(&state, &session, Action::UpdateProvisionedProduct, params).await {
        Ok(answer) => Ok(see_other(&format!("/console/tasks/{}", seg(s(&answer, "/TaskId"))))),
        Err(e) if e.status() == StatusCode::BAD_REQUEST || e.status() == StatusCode::CONFLICT => {
            Ok(render_update(&session, &id, &context, &form, Some(&e), e.status()))
        }
        Err(e) => Err(e.into()),
    }
}

fn render_update(
    session: &Session,
    id: &str,
    context: &UpdateContext,
    form: &Form,
    error: Option<&ApiError>,
    status: StatusCode,
) -> Response {
    let version = &context.version["ProductVersionDetail"];
    let chosen = s(version, "/ProductVersionId");
    let path = format!("/console/provisioned/{}/update", seg(id));
    let body = html! {
        (error_box(error.map(ApiError::message)))
        form.filter method="get" action=(path) {
            label for="version" { "Product version" }
            select id="version" name="version" {
                @for v in list(&context.versions, "/ProductVersionDetails") {
                    option value=(s(v, "/ProductVersionId")) selected[s(v, "/ProductVersionId") == chosen] { (s(v, "/ProductVersionName")) " (" (s(v, "/Guidance")) ")" }
                }
            }
            button type="submit" { "Choose" }
        }
        form.stack method="post" action=(path) {
            (csrf_input(session))
            input type="hidden" name="version" value=(chosen);
            p { "Empty fields keep the value in force." }
            (parameter_fields(list(version, "/ParameterConstraints"), form, &context.current, error))
            label for="tags" { "Tags (one key=value a line, optional)" }
            textarea id="tags" name="tags" rows="2" { (form.text("tags")) }
            button type="submit" { "Update" }
        }
    };
    respond(status, page(&format!("Update {}", s(&context.pp, "/ProvisionedProductName")), Some(session), body))
}

async fn terminate(State(state): State<SharedState>, session: Session, Path(id): Path<String>, body: Bytes) -> Result<Response, PageError> {
    session.check_csrf(&Form::parse(&body))?;
    let answer = call(&state, &session, Action::TerminateProvisionedProduct, [("ProvisionedProductId", id.as_str())]).await?;
    Ok(see_other(&format!("/console/tasks/{}", seg(s(&answer, "/TaskId")))))
}
