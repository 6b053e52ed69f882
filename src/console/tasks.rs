//! The task page: status, parameters, outputs, tags and each Terraform command's output. A
//! finished task renders completely on the server; while one runs, the page's script long-polls
//! `GetTaskLog` through [`log`] (the session's JSON endpoint) and appends output as it arrives.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use maud::html;
use serde_json::{json, Value};

use super::html::{page, seg, status};
use super::provisioned::outputs;
use super::session::Session;
use super::{call, list, respond, s, Form, PageError};
use crate::api::action::Action;
use crate::api::SharedState;

pub(super) fn routes() -> Router<SharedState> {
    Router::new().route("/console/tasks/{id}", get(task)).route("/console/tasks/{id}/log", get(log))
}

async fn task(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    let answer = call(&state, &session, Action::GetTask, [("TaskId", id.as_str())]).await?;
    let task = &answer["TaskDetail"];
    let running = s(task, "/Status") == "InProgress";
    let body = html! {
        dl.facts {
            dt { "Status" } dd #task-status { (status(s(task, "/Status"))) }
            @if !s(task, "/StatusMessage").is_empty() { dt { "Message" } dd { pre.message { (s(task, "/StatusMessage")) } } }
            dt { "Type" } dd { (s(task, "/TaskType")) }
            dt { "Provisioned product" } dd { a href={ "/console/provisioned/" (seg(s(task, "/ProvisionedProductId"))) } { (s(task, "/ProvisionedProductName")) } }
            dt { "Product" } dd { (s(task, "/ProductName")) " " (s(task, "/ProductVersionName")) }
            dt { "Started" } dd { time datetime=(s(task, "/CreateTime")) { (s(task, "/CreateTime")) } }
            dt { "Elapsed" } dd #task-elapsed data-start=(s(task, "/CreateTime")) data-end=[(!running).then(|| s(task, "/UpdateTime"))] { (elapsed(s(task, "/CreateTime"), s(task, "/UpdateTime"))) }
        }
        h2 { "Parameters" }
        (pairs(list(task, "/Parameters"), "/ParameterKey", "/ParameterValue"))
        h2 { "Tags" }
        (pairs(list(task, "/TaskTags"), "/Key", "/Value"))
        h2 { "Outputs" }
        @if running { p.muted { "Outputs appear when the task has finished." } } @else { (outputs(task)) }
        h2 { "Terraform" }
        @if running {
            noscript { p { "The task is running: " a href="" { "reload" } " to see its progress." } }
            div #task-log.log aria-live="polite" data-log=(format!("/console/tasks/{}/log", seg(&id))) {}
        } @else {
            div.log {
                @for l in list(task, "/Log/TerraformLogs") {
                    details open {
                        summary { "terraform " (s(l, "/Command")) " · " (s(l, "/Stream")) }
                        pre { (s(l, "/Content")) }
                    }
                }
            }
        }
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

fn pairs(items: &[Value], key: &str, value: &str) -> maud::Markup {
    html! {
        @if items.is_empty() { p.muted { "None." } }
        @else { dl.pairs { @for i in items { dt { (s(i, key)) } dd { code { (s(i, value)) } } } } }
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
    let after = Form::query(query.as_deref()).get("after").and_then(|a| a.parse::<i64>().ok()).unwrap_or(0).to_string();
    match call(&state, &session, Action::GetTaskLog, [("TaskId", id.as_str()), ("AfterSeq", after.as_str()), ("WaitSeconds", "15")]).await {
        Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
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
