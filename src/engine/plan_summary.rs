//! What a plan's preview tells the caller, derived from `terraform show -json` of the plan file:
//! `ResourceChanges` and the planned outputs. That document holds the state and every variable
//! in clear (sensitive ones too), so it is parsed in memory and dropped: only these derived,
//! masked summaries are kept. A task's outputs, read from its final state, have the same shape.

use serde_json::{json, Value};

use super::redact::MASK;

/// The `ResourceChanges` of a plan from its `terraform show -json` document: one entry per
/// managed resource instance. `create` → Add, `delete` → Remove, `update` → Modify (Replacement
/// False), delete+create in either order → Modify with Replacement True, or Conditional when every
/// attribute forcing the replacement is still unknown (the replacement happens only if its value
/// turns out different at apply time), `no-op` → None. Data sources are left out.
/// `PhysicalResourceId` (the prior object's `id`) is given for Modify and Remove.
pub fn resource_changes(plan: &Value) -> Vec<Value> {
    let Some(changes) = plan["resource_changes"].as_array() else { return Vec::new() };
    changes
        .iter()
        .filter(|rc| rc["mode"].as_str() != Some("data"))
        .filter_map(|rc| {
            let change = &rc["change"];
            let actions: Vec<&str> = change["actions"].as_array()?.iter().filter_map(Value::as_str).collect();
            let (action, replacement) = match actions.as_slice() {
                ["create"] => ("Add", None),
                ["delete"] => ("Remove", None),
                ["update"] => ("Modify", Some("False")),
                ["delete", "create"] | ["create", "delete"] => ("Modify", Some(replacement_kind(change))),
                ["no-op"] | ["read"] => ("None", None),
                _ => return None,
            };
            let mut entry = json!({
                "Action": action,
                "LogicalResourceId": rc["address"].as_str().unwrap_or_default(),
                "ResourceType": rc["type"].as_str().unwrap_or_default(),
            });
            if let Some(replacement) = replacement {
                entry["Replacement"] = json!(replacement);
            }
            if matches!(action, "Modify" | "Remove") {
                if let Some(id) = change["before"]["id"].as_str() {
                    // A provider may mark the id sensitive (it then holds a secret).
                    let sensitive =
                        change["before_sensitive"] == Value::Bool(true) || change["before_sensitive"]["id"] == Value::Bool(true);
                    entry["PhysicalResourceId"] = json!(if sensitive { MASK } else { id });
                }
            }
            Some(entry)
        })
        .collect()
}

/// `True`, or `Conditional` when every `replace_paths` entry points at an unknown planned value.
fn replacement_kind(change: &Value) -> &'static str {
    let paths = change["replace_paths"].as_array().filter(|p| !p.is_empty());
    let all_unknown = paths.is_some_and(|paths| {
        paths.iter().all(|path| {
            let steps = path.as_array().map(Vec::as_slice).unwrap_or_default();
            let unknown = steps.iter().try_fold(&change["after_unknown"], |node, step| match step {
                Value::String(key) => node.get(key.as_str()),
                Value::Number(n) => n.as_u64().and_then(|i| node.get(i as usize)),
                _ => None,
            });
            unknown == Some(&Value::Bool(true))
        })
    });
    if all_unknown {
        "Conditional"
    } else {
        "True"
    }
}

/// The outputs the plan promises, as `{OutputKey, OutputValue, Description}` (the task's
/// `Outputs` shape): sensitive values masked, values unknown until apply without `OutputValue`,
/// outputs the plan removes left out. `describe` gives the template's description of an output.
pub fn planned_outputs(plan: &Value, describe: impl Fn(&str) -> String) -> Vec<Value> {
    let Some(outputs) = plan["output_changes"].as_object() else { return Vec::new() };
    outputs
        .iter()
        .filter(|(_, change)| change["actions"].as_array().is_none_or(|a| a.iter().all(|x| x != "delete")))
        .map(|(name, change)| {
            let sensitive = change["after_sensitive"] != Value::Bool(false) && !change["after_sensitive"].is_null();
            output(name, (change["after_unknown"] != Value::Bool(true)).then_some(&change["after"]), sensitive, describe(name))
        })
        .collect()
}

/// The JSON `Outputs` list of a task from its Terraform state (the root module's `outputs`, as
/// `terraform output -json` prints them); sensitive values masked.
pub fn state_outputs(state: &str, describe: impl Fn(&str) -> String) -> Value {
    let parsed: Value = serde_json::from_str(state).unwrap_or_default();
    let outputs = parsed["outputs"].as_object().into_iter().flatten();
    outputs.map(|(name, o)| output(name, Some(&o["value"]), o["sensitive"].as_bool().unwrap_or(false), describe(name))).collect()
}

/// One `{OutputKey, OutputValue, Description}` entry; no `OutputValue` when `value` is unknown.
fn output(name: &str, value: Option<&Value>, sensitive: bool, description: String) -> Value {
    let mut entry = json!({"OutputKey": name, "Description": description});
    if let Some(value) = value {
        entry["OutputValue"] = json!(match value {
            _ if sensitive => MASK.to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like `terraform show -json` of a plan over the sandbox provider (Terraform 1.11).
    fn document(resource_changes: Value, output_changes: Value) -> Value {
        json!({
            "format_version": "1.2",
            "variables": {"secret": {"value": "hunter2"}},
            "resource_changes": resource_changes,
            "output_changes": output_changes,
            "prior_state": {"values": {}},
        })
    }

    #[test]
    fn actions_map_to_add_modify_remove_and_none() {
        let plan = document(
            json!([
                {"address": "sandbox_file.new", "mode": "managed", "type": "sandbox_file", "name": "new",
                 "change": {"actions": ["create"], "before": null, "after": {"path": "a"}, "after_unknown": {"id": true}}},
                {"address": "sandbox_file.other", "mode": "managed", "type": "sandbox_file", "name": "other",
                 "change": {"actions": ["update"], "before": {"id": "other.txt"}, "after": {"id": "other.txt"}, "after_unknown": {}}},
                {"address": "sandbox_file.page", "mode": "managed", "type": "sandbox_file", "name": "page",
                 "action_reason": "replace_because_cannot_update",
                 "change": {"actions": ["delete", "create"], "before": {"id": "a/page.txt"}, "after": {"path": "b/page.txt"},
                            "after_unknown": {}, "replace_paths": [["path"]]}},
                {"address": "module.m.sandbox_file.gone[0]", "mode": "managed", "type": "sandbox_file", "name": "gone",
                 "change": {"actions": ["delete"], "before": {"id": "gone.txt"}, "after": null}},
                {"address": "sandbox_file.secret", "mode": "managed", "type": "sandbox_file", "name": "secret",
                 "change": {"actions": ["delete"], "before": {"id": "hunter2"}, "after": null, "before_sensitive": {"id": true}}},
                {"address": "sandbox_sleep.same", "mode": "managed", "type": "sandbox_sleep", "name": "same",
                 "change": {"actions": ["no-op"], "before": {"id": "s"}, "after": {"id": "s"}}},
                {"address": "data.sandbox_x.read", "mode": "data", "type": "sandbox_x", "name": "read",
                 "change": {"actions": ["read"]}},
            ]),
            json!({}),
        );
        let changes = resource_changes(&plan);
        assert_eq!(
            changes,
            vec![
                json!({"Action": "Add", "LogicalResourceId": "sandbox_file.new", "ResourceType": "sandbox_file"}),
                json!({"Action": "Modify", "Replacement": "False", "LogicalResourceId": "sandbox_file.other",
                       "ResourceType": "sandbox_file", "PhysicalResourceId": "other.txt"}),
                json!({"Action": "Modify", "Replacement": "True", "LogicalResourceId": "sandbox_file.page",
                       "ResourceType": "sandbox_file", "PhysicalResourceId": "a/page.txt"}),
                json!({"Action": "Remove", "LogicalResourceId": "module.m.sandbox_file.gone[0]", "ResourceType": "sandbox_file",
                       "PhysicalResourceId": "gone.txt"}),
                json!({"Action": "Remove", "LogicalResourceId": "sandbox_file.secret", "ResourceType": "sandbox_file",
                       "PhysicalResourceId": MASK}),
                json!({"Action": "None", "LogicalResourceId": "sandbox_sleep.same", "ResourceType": "sandbox_sleep"}),
            ]
        );
        // The derived summary carries nothing of the document's values.
        assert!(!serde_json::to_string(&changes).unwrap().contains("hunter2"));
    }

    #[test]
    fn a_replacement_forced_only_by_unknown_values_is_conditional() {
        let replace = |after_unknown: Value, paths: Value| {
            let plan = document(
                json!([{"address": "x.y", "mode": "managed", "type": "x", "name": "y",
                        "change": {"actions": ["create", "delete"], "before": {"id": "1"}, "after_unknown": after_unknown,
                                   "replace_paths": paths}}]),
                json!({}),
            );
            resource_changes(&plan)[0]["Replacement"].clone()
        };
        assert_eq!(replace(json!({"path": true}), json!([["path"]])), json!("Conditional"));
        assert_eq!(replace(json!({"list": [false, true]}), json!([["list", 1]])), json!("Conditional"));
        assert_eq!(replace(json!({"path": true}), json!([["path"], ["content"]])), json!("True"));
        assert_eq!(replace(json!({}), json!([])), json!("True"));
        assert_eq!(replace(json!({}), Value::Null), json!("True"));
    }

    #[test]
    fn planned_outputs_mask_secrets_and_omit_unknown_values() {
        let plan = document(
            json!([]),
            json!({
                "greeting": {"actions": ["create"], "after": "hi x", "after_unknown": false, "after_sensitive": false},
                "count": {"actions": ["update"], "after": 3, "after_unknown": false, "after_sensitive": false},
                "pw": {"actions": ["create"], "after": "hunter2", "after_unknown": false, "after_sensitive": true},
                "later": {"actions": ["create"], "after": null, "after_unknown": true, "after_sensitive": false},
                "gone": {"actions": ["delete"], "before": "x", "after": null, "after_unknown": false, "after_sensitive": false},
            }),
        );
        let outputs = planned_outputs(&plan, |name| format!("about {name}"));
        assert_eq!(
            outputs,
            vec![
                json!({"OutputKey": "count", "OutputValue": "3", "Description": "about count"}),
                json!({"OutputKey": "greeting", "OutputValue": "hi x", "Description": "about greeting"}),
                json!({"OutputKey": "later", "Description": "about later"}),
                json!({"OutputKey": "pw", "OutputValue": "******", "Description": "about pw"}),
            ]
        );
        assert!(planned_outputs(&json!({"resource_changes": []}), |_| String::new()).is_empty());
    }
}
