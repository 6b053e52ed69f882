//! Extension `ListAuditEvents`: the audit trail for administrators, newest first unless
//! `SortOrder=Asc`, filtered by action, principal name, resource id and a time range
//! (`StartTime` inclusive, `EndTime` exclusive, `yyyy-MM-ddTHH:mm:ssZ`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::{format_time, Answer, Ctx, Paged, Paging};
use crate::store::audit::AuditQuery;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListRequest {
    #[serde(flatten)]
    paging: Paging,
    audit_action: Option<String>,
    principal_name: Option<String>,
    resource_id: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
}

fn parse_time(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%SZ")
                .map(|t| t.and_utc().timestamp_millis())
                .map_err(|_| ApiError::invalid_parameter(name, format!("The parameter {name} must look like 2026-01-31T12:00:00Z.")))
        })
        .transpose()
}

/// An entry of `AuditEvents`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AuditEvent {
    event_id: String,
    event_time: String,
    request_id: String,
    action: String,
    principal_id: String,
    principal_name: String,
    resource_id: String,
    parameters: Value,
    http_status: i64,
    result_code: String,
}

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Answer, ApiError> {
    let query = AuditQuery {
        action: req.audit_action,
        principal_name: req.principal_name,
        resource_id: req.resource_id,
        since: parse_time("StartTime", req.start_time.as_deref())?,
        until: parse_time("EndTime", req.end_time.as_deref())?,
        succeeded: None,
    };
    let (events, total) = ctx.store().list_audit_events(&query, req.paging.order(), req.paging.page()).await?;
    let audit_events = events
        .into_iter()
        .map(|e| AuditEvent {
            event_id: e.event_id,
            event_time: format_time(e.occurred_at),
            request_id: e.request_id,
            action: e.action,
            principal_id: e.principal_id,
            principal_name: e.principal_name,
            resource_id: e.resource_id,
            parameters: serde_json::from_str(&e.parameters).unwrap_or(Value::Null),
            http_status: e.http_status,
            result_code: e.result_code,
        })
        .collect();
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ListAnswer {
        #[serde(flatten)]
        page: Paged,
        audit_events: Vec<AuditEvent>,
    }
    Answer::serialize(&ListAnswer { page: req.paging.answer(total), audit_events })
}
