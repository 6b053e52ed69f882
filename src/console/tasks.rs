//! The task page: status, parameters, outputs, tags and each Terraform command's output. A
//! finished task renders completely on the server; while one runs, the page's script long-polls
//! `GetTaskLog` through [`log`] (the session's JSON endpoint) and appends output as it arrives.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use maud::html;
use serde_json::json;

use super::html::{page, seg, status};
use super::provisioned::outputs;
use super::session::Session;
use super::{respond, Form, PageError};
use crate::api::error::ApiError;
use crate::api::{format_time, task_not_found, SharedState};
use crate::model::TaskStatus;
use crate::provisioning::task::terraform_logs;
use crate::provisioning::{stored, Parameter, Tag};

pub(super) fn routes() -> Router<SharedState> {
    Router::new().route("/console/tasks/{id}", get(task)).route("/console/tasks/{id}/log", get(log))
}

async fn task(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    let provisioner = state.provisioner();
    let record = provisioner.task(&session.principal, &id).await?.ok_or_else(task_not_found)?;
    let task = &record.task;
    let running = task.status == TaskStatus::InProgress;
    let (created, updated) = (format_time(task.created_at), format_time(task.updated_at));
    let parameters = provisioner.masked(&task.parameters_sealed, &task.sensitive_parameters);
    let tags: Vec<Tag> = stored(&task.task_tags);
    let body = html! {
        dl.facts {
            dt { "Status" } dd #task-status { (status(task.status.as_str())) }
            @if task.status == TaskStatus::Failed && !task.status_message.is_empty() { dt { "Message" } dd { pre.message { (task.status_message) } } }
            dt { "Type" } dd { (task.task_type.as_str()) }
            dt { "Provisioned product" } dd { a href={ "/console/provisioned/" (seg(&task.provisioned_product_id)) } { (task.provisioned_product_name) } }
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
async fn log(
    State(state): State<SharedState>,
    session: Result<Session, PageError>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(session) = session else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"Message": "Your session has ended: sign in again."}))).into_response();
    };
    let after = Form::query(query.as_deref()).get("after").and_then(|a| a.parse::<i64>().ok()).unwrap_or(0);
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
