//! A drift check as a job of the engine: `terraform plan -refresh-only` of a provisioned product,
//! with its kept state, its version's template and its parameters, in the same sandbox and with
//! the same launch role as its tasks. A plan never writes the state: the check changes nothing.
//! `terraform show -json` of the plan is read in memory only (it holds values in clear) and
//! reduced to the resources that changed outside Terraform: address, action and the names of the
//! attributes that changed, never their values.

use serde_json::Value;
use tokio::sync::watch;

use super::job::Run;
use super::terraform::error_summary;
use super::{patiently, step, workspace, Engine, EngineError};
use crate::model::DriftStatus;
use crate::store::drift::{DriftReport, DriftedResource};
use crate::store::provisioning::Task;

impl Engine {
    /// Runs the drift check `task` (of `run`): what it found.
    pub(super) async fn try_check(
        &self,
        run: &Run<'_>,
        task: &Task,
        cancel: watch::Receiver<Option<String>>,
    ) -> Result<DriftReport, EngineError> {
        let log = run.log;
        let state = patiently(&task.task_id, "read the Terraform state", || self.versioned_state(&task.provisioned_product_id))
            .await?
            .map(|(_, state)| state);
        if state.is_none() {
            log.push("plan", "stdout", "No Terraform state exists for this provisioned product: nothing exists that could drift.\n");
            return Ok(DriftReport { status: DriftStatus::InSync, resources: Vec::new() });
        }
        let (_inputs, tf, init) = self.prepare(run.job, run.slot, state.as_deref(), cancel, Some(log)).await?;
        self.version_step(&tf, log).await?;
        let _prepared = self.init(&tf, init, &task.task_id).await?;
        let var_file = format!("-var-file={}", workspace::VARIABLES_FILE);
        step(&tf, "plan", &["plan", "-refresh-only", "-input=false", "-no-color", "-out=tfplan", var_file.as_str()]).await?;
        let (finished, shown) = tf.run(None, &["show", "-json", "-no-color", "tfplan"]).await?;
        if !finished.status.success() {
            return Err(EngineError::Failed(format!("terraform show failed: {}", error_summary(&finished.stderr))));
        }
        let document: Value =
            serde_json::from_str(&shown).map_err(|e| EngineError::Failed(format!("terraform show -json printed no readable plan: {e}")))?;
        let resources = drifted_resources(&document);
        let status = if resources.is_empty() { DriftStatus::InSync } else { DriftStatus::Drifted };
        let summary = match resources.len() {
            0 => "No drift: every resource is as Terraform left it.\n".to_string(),
            n => format!("Drift: {n} resource(s) changed outside Terraform: {}.\n", addresses(&resources)),
        };
        log.push("plan", "stdout", &summary);
        Ok(DriftReport { status, resources })
    }
}

fn addresses(resources: &[DriftedResource]) -> String {
    resources.iter().map(|r| r.address.as_str()).collect::<Vec<_>>().join(", ")
}

/// The managed resources a refresh-only plan's `terraform show -json` document reports in
/// `resource_drift`: `update` → Modify, `delete` → Remove (gone), with the names of the top-level
/// attributes whose values differ between the state and what exists.
pub fn drifted_resources(plan: &Value) -> Vec<DriftedResource> {
    let Some(drift) = plan["resource_drift"].as_array() else { return Vec::new() };
    drift
        .iter()
        .filter(|rc| rc["mode"].as_str() != Some("data"))
        .filter_map(|rc| {
            let change = &rc["change"];
            let actions: Vec<&str> = change["actions"].as_array()?.iter().filter_map(Value::as_str).collect();
            let action = match actions.as_slice() {
                ["update"] => "Modify",
                ["delete"] => "Remove",
                ["delete", "create"] | ["create", "delete"] => "Modify",
                _ => return None,
            };
            let (before, after) = (change["before"].as_object(), change["after"].as_object());
            let mut changed: Vec<String> = before
                .into_iter()
                .chain(after)
                .flat_map(|object| object.keys())
                .filter(|key| change["before"].get(key.as_str()) != change["after"].get(key.as_str()))
                .cloned()
                .collect();
            changed.sort();
            changed.dedup();
            Some(DriftedResource {
                address: rc["address"].as_str().unwrap_or_default().to_string(),
                action: action.to_string(),
                changed_attributes: changed,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn drift_names_resources_and_changed_attributes_never_values() {
        let plan = json!({
            "resource_drift": [
                {"address": "sandbox_file.index", "mode": "managed", "change": {"actions": ["update"],
                    "before": {"path": "site/index.html", "content": "old secret", "checksum": "a"},
                    "after": {"path": "site/index.html", "content": "new secret", "checksum": "b"}}},
                {"address": "sandbox_file.about", "mode": "managed", "change": {"actions": ["delete"],
                    "before": {"path": "site/about.html", "content": "x"}, "after": null}},
                {"address": "data.x.y", "mode": "data", "change": {"actions": ["update"], "before": {}, "after": {"a": 1}}}
            ],
            "resource_changes": []
        });
        let found = drifted_resources(&plan);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].address.as_str(), found[0].action.as_str()), ("sandbox_file.index", "Modify"));
        assert_eq!(found[0].changed_attributes, ["checksum", "content"]);
        assert_eq!((found[1].action.as_str(), found[1].changed_attributes.clone()), ("Remove", vec!["content".to_string(), "path".into()]));
        assert!(!serde_json::to_string(&found).unwrap().contains("secret"), "values are never kept");
        assert!(drifted_resources(&json!({"resource_changes": []})).is_empty());
    }
}
