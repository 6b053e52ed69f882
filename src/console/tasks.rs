//! The task history (the caller's tasks, outliving terminated products) and the task page:
//! status, parameters, outputs, tags and each Terraform command's output. A
//! finished task renders completely on the server; while one runs, the page's script long-polls
//! `GetTaskLog` through [`log`] (the session's JSON endpoint) and appends output as it arrives.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashSet;

use maud::{html, Markup};
use serde_json::json;

use super::html::{page, pager, seg, status};
use super::provisioned::{outputs, page_of};
use super::session::Session;
use super::{respond, Form, PageError, PAGE_SIZE};
use crate::api::error::ApiError;
use crate::api::{format_time, task_not_found, SharedState};
use crate::model::TaskStatus;
use crate::provisioning::task::terraform_logs;
use crate::provisioning::{stored, Parameter, Tag};
use crate::store::SortOrder;

pub(super) fn routes() -> Router<SharedState> {
    Router::new().route("/console/tasks", get(index)).route("/console/tasks/{id}", get(task)).route("/console/tasks/{id}/log", get(log))
}

/// The caller's task history, newest first: the tasks of every provisioned product it owns,
/// terminated ones included (`?scope=account`: everyone's, administrators only).
async fn index(State(state): State<SharedState>, session: Session, query: Form) -> Result<Response, PageError> {
    let account = query.get("scope") == Some("account");
    let page_number = query.page();
    let (tasks, total) = state.provisioner().task_history(&session.principal, account, SortOrder::Desc, page_of(page_number)).await?;
    let mut live = HashSet::new();
    for t in &tasks {
        if !live.contains(t.provisioned_product_id.as_str()) && is_live(&state, &t.provisioned_product_id).await? {
            live.insert(t.provisioned_product_id.to_string());
        }
    }
    let scope = if account { "account" } else { "" };
    let body = html! {
        @if session.principal.is_admin {
            nav.tabs aria-label="Task views" {
                a href="/console/tasks" aria-current=[(!account).then_some("page")] { "My tasks" }
                a href="/console/tasks?scope=account" aria-current=[account.then_some("page")] { "All tasks" }
            }
        }
        @if tasks.is_empty() { p { "No tasks yet. " a href="/console/catalog" { "Launch a product from the catalog." } } }
        @else {
            table {
                thead { tr { th { "Task" } th { "Type" } th { "Provisioned product" } th { "Product" } th { "Status" } th { "Created" } } }
                tbody {
                    @for t in &tasks {
                        tr {
                            td { a href={ "/console/tasks/" (seg(&t.task_id)) } { (t.task_id) } }
                            td { (t.task_type.as_str()) }
                            td { (product_link(&t.provisioned_product_name, &t.provisioned_product_id, live.contains(t.provisioned_product_id.as_str()))) }
                            td { (t.product_name) " " (t.product_version_name) }
                            td { (status(t.status.as_str())) }
                            td { (format_time(t.created_at)) }
                        }
                    }
                }
            }
        }
        (pager("/console/tasks", &[("scope", scope)], page_number, PAGE_SIZE, total))
    };
    Ok(respond(StatusCode::OK, page(if account { "All tasks" } else { "Task history" }, Some(&session), body)))
}

/// Whether the provisioned product `id` still exists (it is not terminated).
pub(super) async fn is_live(state: &SharedState, id: &str) -> Result<bool, PageError> {
    Ok(state.store.provisioned_product(id).await?.is_some())
}

/// A provisioned product's name, linked to its page while it exists: a terminated one has none.
pub(super) fn product_link(name: &str, id: &str, live: bool) -> Markup {
    html! {
        @if live { a href={ "/console/provisioned/" (seg(id)) } { (name) } }
        @else { (name) " " span.muted { "(terminated)" } }
    }
}

async fn task(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    let provisioner = state.provisioner();
    let record = provisioner.task(&session.principal, &id).await?.ok_or_else(task_not_found)?;
    let task = &record.task;
    let running = task.status == TaskStatus::InProgress;
    let (created, updated) = (format_time(task.created_at), format_time(task.updated_at));
    let parameters = provisioner.masked(&task.parameters_sealed, &task.sensitive_parameters);
    let tags: Vec<Tag> = stored(&task.task_tags);
    let live = is_live(&state, &task.provisioned_product_id).await?;
    let body = html! {
        dl.facts {
            dt { "Status" } dd #task-status { (status(task.status.as_str())) }
            @if task.status == TaskStatus::Failed && !task.status_message.is_empty() { dt { "Message" } dd { pre.message { (task.status_message) } } }
            dt { "Type" } dd { (task.task_type.as_str()) }
            dt { "Provisioned product" } dd { (product_link(&task.provisioned_product_name, &task.provisioned_product_id, live)) }
            dt { "Product" } dd { (task.product_name) " " (task.product_version_name) }
            dt { "Started" } dd { time datetime=(created) { (created) } }
            dt { "Elapsed" } dd #task-elapsed data-start=(created) data-end=[(!running).then_some(&updated)] { (elapsed(&created, &updated)) }
        }
        // The log comes first while the task runs (it is what one watches), right after the
        // outputs once it has finished; parameters and tags, seldom read, come last.
        @if !running { h2 { "Outputs" } (outputs(&stored(&task.outputs))) }
        h2 { "Terraform" }
        @if running {
            noscript { p { "The task is running: " a href="" { "reload" } " to see its progress." } }
            div #task-log.log aria-live="polite" data-log=(format!("/console/tasks/{}/log", seg(&id))) {}
        } @else {
            div.log {
                @for l in terraform_logs(&record.log) {
                    details open {
                        summary { "terraform " (l.command) " · " (l.stream) }
                        pre { (l.content) }
                    }
                }
            }
        }
        h2 { "Parameters" }
        (pairs(parameters.iter().map(|p: &Parameter| (p.parameter_key.as_str(), p.parameter_value.as_str()))))
        h2 { "Tags" }
        (pairs(tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))))
    };
    Ok(respond(StatusCode::OK, page(&format!("Task {id}"), Some(&session), body)))
}

/// `m min s s` between two `yyyy-MM-ddTHH:mm:ssZ` times.
fn elapsed(start: &str, end: &str) -> String {
    let parse = |t: &str| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ").ok();
    match (parse(start), parse(end)) {
        (Some(a), Some(b)) => {
            let seconds = (b - a).num_seconds().max(0);
            if seconds >= 60 {
                format!("{} min {} s", seconds / 60, seconds % 60)
            } else {
                format!("{seconds} s")
            }
        }
        _ => "-".into(),
    }
}

fn pairs<'a>(items: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> maud::Markup {
    html! {
        @if items.len() == 0 { p.muted { "None." } }
        @else { dl.pairs { @for (key, value) in items { dt { (key) } dd { code { (value) } } } } }
    }
}

/// The session's view of `GetTaskLog`: chunks after `after`, waiting up to 15 s for new output.
async fn log(State(state): State<SharedState>, session: Result<Session, PageError>, Path(id): Path<String>, query: Form) -> Response {
    let Ok(session) = session else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"Message": "Your session has ended: sign in again."}))).into_response();
    };
    let after = query.get("after").and_then(|a| a.parse::<i64>().ok()).unwrap_or(0);
    match state.provisioner().task_log(&session.principal, &id, after, 15).await.map_err(ApiError::from) {
        Ok(Some(page)) => (StatusCode::OK, Json(page)).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, Json(json!({"Message": task_not_found().message()}))).into_response(),
        Err(e) => (e.status(), Json(json!({"Message": e.message()}))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn elapsed_time_reads_well() {
        assert_eq!(super::elapsed("2024-01-01T00:00:00Z", "2024-01-01T00:00:07Z"), "7 s");
        assert_eq!(super::elapsed("2024-01-01T00:00:00Z", "2024-01-01T00:02:05Z"), "2 min 5 s");
        assert_eq!(super::elapsed("", "x"), "-");
    }
}
