//! The audit page for administrators: the trail of `ListAuditEvents` (every change requested
//! through the API or the console, with who, what, the masked parameters and the outcome), newest first, paged,
//! filtered by action, principal name, a time range and the outcome. A filter that does not
//! parse is shown beside its field with the others kept.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use maud::html;

use super::html::{error_box, page, pager};
use super::identity::IDENTITY_ACTIONS;
use super::provisioned::page_of;
use super::session::Session;
use super::{respond, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::{authorize, format_time, SharedState};
use crate::store::audit::AuditQuery;
use crate::store::SortOrder;

pub(super) fn routes() -> Router<SharedState> {
    Router::new().route("/console/admin/audit", get(audit))
}

/// The outcome filter's values in the page's query, with their labels.
const OUTCOMES: [(&str, &str); 3] = [("", "Any"), ("success", "Succeeded"), ("failure", "Refused or failed")];

/// A time of a `datetime-local` field (`2026-01-31T12:00`, seconds optional), read as UTC, in ms.
fn parse_time(field: &str, label: &str, text: &str) -> Result<Option<i64>, ApiError> {
    if text.is_empty() {
        return Ok(None);
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| Some(t.and_utc().timestamp_millis()))
        .ok_or_else(|| ApiError::invalid_parameter(field, format!("The {label} time must look like 2026-01-31T12:00 (UTC).")))
}

/// The store's query of the page's filters.
fn query_of(form: &Form) -> Result<AuditQuery, ApiError> {
    Ok(AuditQuery {
        action: form.optional("action"),
        principal_name: form.optional("principal"),
        resource_id: form.optional("resource"),
        since: parse_time("StartTime", "start", form.text("start"))?,
        until: parse_time("EndTime", "end", form.text("end"))?,
        succeeded: match form.text("outcome") {
            "success" => Some(true),
            "failure" => Some(false),
            _ => None,
        },
    })
}

async fn audit(State(state): State<SharedState>, session: Session, form: Form) -> Result<Response, PageError> {
    authorize(Action::ListAuditEvents, &session.principal)?;
    let page_number = form.page();
    let (events, total, error) = match query_of(&form) {
        Ok(query) => {
            let (events, total) = state.store.list_audit_events(&query, SortOrder::Desc, page_of(page_number)).await?;
            (events, total, None)
        }
        Err(e) => (Vec::new(), 0, Some(e)),
    };
    let invalid = |field: &str| error.as_ref().filter(|e| e.code().ends_with(field)).map(|_| "true");
    let kept: Vec<(&str, &str)> =
        ["action", "principal", "resource", "start", "end", "outcome"].iter().map(|k| (*k, form.text(k))).collect();
    let body = html! {
        form.filter.audit method="get" action="/console/admin/audit" role="search" {
            label for="action" { "Action" }
            input id="action" name="action" list="actions" value=(form.text("action"));
            datalist id="actions" { @for a in Action::ALL.iter().map(|a| a.name()).chain(IDENTITY_ACTIONS) { option value=(a) {} } }
            label for="principal" { "Principal name" }
            input id="principal" name="principal" value=(form.text("principal"));
            label for="resource" { "Resource id" }
            input id="resource" name="resource" value=(form.text("resource"));
            label for="start" { "From (UTC)" }
            input id="start" name="start" type="datetime-local" value=(form.text("start")) aria-invalid=[invalid("StartTime")];
            label for="end" { "Until (UTC)" }
            input id="end" name="end" type="datetime-local" value=(form.text("end")) aria-invalid=[invalid("EndTime")];
            label for="outcome" { "Outcome" }
            select id="outcome" name="outcome" {
                @for (value, label) in OUTCOMES { option value=(value) selected[form.text("outcome") == value] { (label) } }
            }
            button type="submit" { "Filter" }
        }
        (error_box(error.as_ref().map(ApiError::message)))
        @if events.is_empty() && error.is_none() { p { "No recorded change matches." } }
        @if !events.is_empty() {
            table {
                thead { tr { th { "Time (UTC)" } th { "Action" } th { "Principal" } th { "Resource" } th { "Outcome" } th { "Parameters" } } }
                tbody {
                    @for e in &events {
                        tr {
                            td { (format_time(e.occurred_at)) }
                            td { (e.action) }
                            td { (e.principal_name) }
                            td { code { (e.resource_id) } }
                            td {
                                @if e.result_code == "Success" { span.status.status-succeeded { "Success" } }
                                @else { span.status.status-failed { (e.http_status) " " (e.result_code) } }
                            }
                            td { details { summary { "Show" } pre { (pretty(&e.parameters)) } } }
                        }
                    }
                }
            }
        }
        (pager("/console/admin/audit", &kept, page_number, PAGE_SIZE, total))
    };
    let status = error.as_ref().map_or(StatusCode::OK, ApiError::status);
    Ok(respond(status, page("Audit trail", Some(&session), body)))
}

/// Stored parameters (a JSON object, sensitive values already masked) indented for reading.
fn pretty(parameters: &str) -> String {
    serde_json::from_str::<serde_json::Value>(parameters)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| parameters.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_times_as_utc_and_refuse_others_by_field() {
        let form = Form::parse(b"action=LaunchProduct&start=2026-01-31T12%3A00&end=&outcome=failure");
        let query = query_of(&form).unwrap();
        assert_eq!(query.action.as_deref(), Some("LaunchProduct"));
        assert_eq!(query.since, Some(1_769_860_800_000));
        assert_eq!((query.until, query.succeeded, query.principal_name), (None, Some(false), None));
        let bad = query_of(&Form::parse(b"end=yesterday")).unwrap_err();
        assert_eq!(bad.code(), "InvalidParameter.EndTime");
    }
}
