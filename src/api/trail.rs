//! The audit trail's recording: every change requested through the API (actions other than
//! `Get*`/`List*`), once its caller is known and authorised or refused, is written from the
//! request pipeline with its outcome, committed with the change itself ([`recorded`]); the
//! console writes its changes through the same function. Parameters are kept with secrets masked: values of
//! secret-named parameters (password, secret, token, …), values of template-sensitive
//! `Parameters` entries (all of them when sensitivity cannot be known, e.g. a refused launch),
//! and long values (template bodies) reduced to their length. Signature parameters are dropped.

use std::future::Future;

use serde_json::{Map, Value};

use super::error::ApiError;
use super::Answer;
pub use crate::catalog::parameters::MASK;
use crate::protocol::params::Params;
use crate::store::audit::{carried, AuditEvent};
use crate::store::principal::Principal;
use crate::store::Store;

/// Values longer than this are recorded as their length only.
const LONGEST_VALUE: usize = 1024;

/// Protocol parameters, not the action's: left out of the record.
const PROTOCOL_PARAMETERS: &[&str] =
    &["AccessKeyId", "Action", "Format", "Signature", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp", "Version"];

/// Fragments of parameter names whose values are secret, compared case-insensitively.
const SECRET_NAMES: &[&str] = &["password", "passwd", "secret", "token", "credential", "privatekey", "private_key", "accesskey"];

/// Id parameters naming the resource a change is about, most specific first.
const RESOURCE_IDS: &[&str] = &[
    "ProvisionedProductId",
    "CampaignId",
    "PlanId",
    "ConstraintId",
    "TagOptionId",
    "ProductVersionId",
    "PortfolioId",
    "ProductId",
    "TemplateUrl",
    "TaskId",
    "WebhookId",
    "RoleName",
    "UserName",
];

/// A change requested: of `action` (an API action's name, or one of the console's identity
/// changes), by `principal`, with the wire parameters it stands for.
pub struct Change<'a> {
    /// The request's `RequestId`.
    pub request_id: &'a str,
    /// What was asked.
    pub action: &'a str,
    /// Who asked.
    pub principal: &'a Principal,
    /// The wire parameters.
    pub params: &'a Params,
}

/// Records the outcome of `change`; `outcome` is the answer (when it was built as a value) or
/// the refusal. A failure to record is logged, never answered.
pub async fn record(store: &Store, change: &Change<'_>, outcome: Result<Option<&Value>, &ApiError>) {
    let sensitive = sensitive_names(store, change.params, outcome.ok().flatten()).await;
    let event = event(change, outcome, masked(change.params, sensitive.as_deref()).to_string());
    if let Err(e) = store.record_audit_event(&event).await {
        tracing::error!(request_id = change.request_id, action = change.action, error = %e, "cannot record the audit event");
    }
}

/// Runs `handler`, which makes `change`, so that its first write commits the record of its
/// success with it (`store::audit::carried`); once it has answered, records its outcome as
/// [`record`] does, by amending the committed record where it differs. The parameters are
/// masked again only when the answer changed which of them are sensitive.
pub async fn recorded<F>(store: &Store, change: &Change<'_>, handler: F) -> F::Output
where
    F: Future<Output = Result<Answer, ApiError>>,
{
    let drafted = sensitive_names(store, change.params, None).await;
    let parameters = masked(change.params, drafted.as_deref()).to_string();
    let (result, written) = carried(event(change, Ok(None), parameters.clone()), handler).await;
    let outcome = result.as_ref().map(Answer::as_value);
    let sensitive = sensitive_names(store, change.params, outcome.ok().flatten()).await;
    let parameters = if sensitive == drafted { parameters } else { masked(change.params, sensitive.as_deref()).to_string() };
    let event = event(change, outcome, parameters);
    let recorded = match written {
        Some(written) if written.same_record(&event) => Ok(()),
        Some(written) => store.amend_audit_event(&written.event_id, &event).await,
        None => store.record_audit_event(&event).await,
    };
    if let Err(e) = recorded {
        tracing::error!(request_id = change.request_id, action = change.action, error = %e, "cannot record the audit event");
    }
    result
}

/// The record of `change` with `outcome` ([`record`]) and its `parameters` as [`masked`], its id
/// and time not yet set.
fn event(change: &Change<'_>, outcome: Result<Option<&Value>, &ApiError>, parameters: String) -> AuditEvent {
    let Change { request_id, action, principal, params } = *change;
    let (http_status, result_code) = match outcome {
        Ok(_) => (200, "Success".to_string()),
        Err(e) => (i64::from(e.status().as_u16()), e.code().to_string()),
    };
    AuditEvent {
        event_id: String::new(),
        occurred_at: 0,
        request_id: request_id.to_string(),
        action: action.to_string(),
        principal_id: principal.principal_id.clone(),
        principal_name: principal.name.clone(),
        resource_id: resource_id(params, outcome.ok().flatten()),
        parameters,
        http_status,
        result_code,
    }
}

/// Names of the template-sensitive parameters of the task or plan the change made or touched;
/// `None` when unknown.
async fn sensitive_names(store: &Store, params: &Params, response: Option<&Value>) -> Option<Vec<String>> {
    let id = |name: &str| response.and_then(|r| r[name].as_str()).or_else(|| params.get(name)).map(str::to_string);
    let listed = if let Some(task_id) = response.and_then(|r| r["TaskId"].as_str()) {
        store.task(task_id).await.ok().flatten().map(|t| t.sensitive_parameters)
    } else if let Some(plan_id) = id("PlanId") {
        store.plan(&plan_id).await.ok().flatten().map(|p| p.sensitive_parameters)
    } else {
        None
    };
    listed.and_then(|json| serde_json::from_str(&json).ok())
}

/// The id of the resource a change is about: from the answer (a created id), else the request.
fn resource_id(params: &Params, response: Option<&Value>) -> String {
    let from_response = RESOURCE_IDS.iter().find_map(|name| response.and_then(|r| r[*name].as_str()));
    from_response.or_else(|| RESOURCE_IDS.iter().find_map(|name| params.get(name))).unwrap_or_default().to_string()
}

fn secret_name(name: &str) -> bool {
    let name = name.as_bytes();
    SECRET_NAMES.iter().any(|secret| name.windows(secret.len()).any(|part| part.eq_ignore_ascii_case(secret.as_bytes())))
}

/// The request's parameters as a JSON object with secrets masked (`sensitive`: the
/// template-sensitive parameter keys; `None` masks every `ParameterValue`).
pub fn masked(params: &Params, sensitive: Option<&[String]>) -> Value {
    let is_sensitive = |key: &str| secret_name(key) || sensitive.is_none_or(|names| names.iter().any(|n| n == key));
    let mut out = Map::new();
    for (name, value) in params.iter().filter(|(name, _)| !PROTOCOL_PARAMETERS.contains(name)) {
        // A flattened entry `X.N.ParameterValue` is secret when its `X.N.ParameterKey` is.
        let entry_key = name.strip_suffix(".ParameterValue").and_then(|entry| params.get(&format!("{entry}.ParameterKey")));
        let masked =
            if secret_name(name) || entry_key.is_some_and(is_sensitive) || (name.ends_with(".ParameterValue") && entry_key.is_none()) {
                Value::String(MASK.into())
            } else if value.starts_with(['[', '{']) {
                match serde_json::from_str::<Value>(value) {
                    Ok(mut json) => {
                        mask_json(&mut json, &is_sensitive);
                        shorten(json.to_string())
                    }
                    Err(_) => shorten(value.to_string()),
                }
            } else {
                shorten(value.to_string())
            };
        out.insert(name.to_string(), masked);
    }
    Value::Object(out)
}

/// Masks a parameter sent as JSON: secret-named fields and sensitive `ParameterValue`s.
fn mask_json(value: &mut Value, is_sensitive: &dyn Fn(&str) -> bool) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| mask_json(v, is_sensitive)),
        Value::Object(map) => {
            let key = map.get("ParameterKey").and_then(Value::as_str).map(str::to_string);
            for (name, v) in map.iter_mut() {
                let entry_secret = name == "ParameterValue" && key.as_deref().is_none_or(is_sensitive);
                if secret_name(name) || entry_secret {
                    *v = Value::String(MASK.into());
                } else {
                    mask_json(v, is_sensitive);
                }
            }
        }
        _ => {}
    }
}

fn shorten(value: String) -> Value {
    if value.len() > LONGEST_VALUE {
        Value::String(format!("({} bytes)", value.len()))
    } else {
        Value::String(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_sensitive_entries_and_long_values_are_masked() {
        let params = Params::from_pairs([
            ("Action", "LaunchProduct"),
            ("Signature", "sig"),
            ("ProvisionedProductName", "web"),
            ("Parameters.1.ParameterKey", "db_password"),
            ("Parameters.1.ParameterValue", "hunter2"),
            ("Parameters.2.ParameterKey", "api_key"),
            ("Parameters.2.ParameterValue", "k-123"),
            ("Parameters.3.ParameterKey", "size"),
            ("Parameters.3.ParameterValue", "small"),
            ("AdminToken", "t0k"),
            ("TemplateBody", &"x".repeat(2000)),
        ]);
        let sensitive = vec!["api_key".to_string()];
        let m = masked(&params, Some(&sensitive));
        assert_eq!(m["Parameters.1.ParameterValue"], MASK);
        assert_eq!(m["Parameters.2.ParameterValue"], MASK);
        assert_eq!(m["Parameters.3.ParameterValue"], "small");
        assert_eq!(m["AdminToken"], MASK);
        assert_eq!(m["TemplateBody"], "(2000 bytes)");
        assert_eq!(m["ProvisionedProductName"], "web");
        assert!(m.get("Action").is_none() && m.get("Signature").is_none());
        // sensitivity unknown: every value is masked
        assert_eq!(masked(&params, None)["Parameters.3.ParameterValue"], MASK);
    }

    #[test]
    fn parameters_sent_as_json_are_masked_inside() {
        let params = Params::from_pairs([(
            "Parameters",
            r#"[{"ParameterKey":"api_key","ParameterValue":"k-1"},{"ParameterKey":"size","ParameterValue":"s"}]"#,
        )]);
        let text = masked(&params, Some(&["api_key".to_string()]))["Parameters"].as_str().unwrap().to_string();
        assert!(!text.contains("k-1") && text.contains(r#""ParameterValue":"s""#), "{text}");
    }

    #[test]
    fn the_resource_is_the_created_id_else_the_requested_one() {
        let params = Params::from_pairs([("ProductId", "prod-1"), ("PortfolioId", "port-1")]);
        assert_eq!(resource_id(&params, None), "port-1");
        let created = serde_json::json!({"ProvisionedProductId": "pp-1", "TaskId": "t-1"});
        assert_eq!(resource_id(&params, Some(&created)), "pp-1");
    }
}
