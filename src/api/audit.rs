//! Extension `ListAuditEvents`: the audit trail for administrators, newest first unless
//! `SortOrder=Asc`, filtered by action, principal name, resource id and a time range
//! (`StartTime` inclusive, `EndTime` exclusive, `yyyy-MM-ddTHH:mm:ssZ`).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::{format_time, Ctx, Paging};
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

pub(super) async fn list(ctx: &Ctx<'_>, req: ListRequest) -> Result<Value, ApiError> {
    let query = AuditQuery {
        action: req.audit_action,
        principal_name: req.principal_name,
        resource_id: req.resource_id,
        since: parse_time("StartTime", req.start_time.as_deref())?,
        until: parse_time("EndTime", req.end_time.as_deref())?,
    };
    let (events, total) = ctx.store().list_audit_events(&query, req.paging.order(), req.paging.page()).await?;
    let mut out: Map<String, Value> = req.paging.response(total);
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "EventId": e.event_id,
                "EventTime": format_time(e.occurred_at),
                "RequestId": e.request_id,
                "Action": e.action,
                "PrincipalId": e.principal_id,
                "PrincipalName": e.principal_name,
                "ResourceId": e.resource_id,
                "Parameters": serde_json::from_str::<Value>(&e.parameters).unwrap_or(Value::Null),
                "HttpStatus": e.http_status,
                "ResultCode": e.result_code,
            })
        })
        .collect();
    out.insert("AuditEvents".into(), Value::Array(events));
    Ok(Value::Object(out))
}
