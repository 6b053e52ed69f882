//! A plan's preview as a job of the engine: `terraform plan -out` (with `-destroy` for a
//! terminate plan) against the provisioned product's current state, in a fresh directory, with
//! the same workspace, variables and environment its execution will have. The plan file is kept
//! sealed in the database with the state version it was computed from, so any node can execute
//! it; `terraform show -json` of it is read in memory only (it holds the state and sensitive
//! values in clear) and reduced to `ResourceChanges` and planned outputs. Nothing of a preview
//! is logged: its failure reaches the plan's `StatusMessage`.

use base64::Engine as _;
use serde_json::Value;
use tokio::sync::watch;

use super::job::Run;
use super::plan_summary::{planned_outputs, resource_changes};
use super::terraform::error_summary;
use super::{patiently, sandbox, Engine, EngineError};
use crate::model::OperationType;
use crate::store::plan::{Plan, PlanStatus, PreviewOutcome};

impl Engine {
    /// Computes the preview of `plan` (of `run`): its outcome, the plan file sealed.
    pub(super) async fn try_preview(
        &self,
        run: &Run<'_>,
        plan: &Plan,
        cancel: watch::Receiver<Option<String>>,
    ) -> Result<PreviewOutcome, EngineError> {
        let (state_version, state) =
            match patiently(&plan.plan_id, "read the Terraform state", || self.versioned_state(&plan.provisioned_product_id)).await? {
                Some((version, state)) => (version, Some(state)),
                None => (0, None),
            };
        let (inputs, tf, init) = self.prepare(run.job, run.slot, state.as_deref(), cancel, None).await?;
        let _prepared = self.init(&tf, init, &plan.plan_id).await?;
        let shown = async {
            super::plan(&tf, plan.operation_type == OperationType::TerminateProvisionedProduct).await?;
            tf.run(None, &["show", "-json", "-no-color", "tfplan"]).await
        }
        .await;
        // A launch plan's sandbox exists only once it is executed.
        let _ = std::fs::remove_dir(self.sandbox_dir(&plan.provisioned_product_id));
        let (finished, shown) = shown?;
        if !finished.status.success() {
            return Err(EngineError::Failed(format!("terraform show failed: {}", error_summary(&finished.stderr))));
        }
        let document: Value =
            serde_json::from_str(&shown).map_err(|e| EngineError::Failed(format!("terraform show -json printed no readable plan: {e}")))?;
        drop(shown);
        let mut changes = Value::Array(resource_changes(&document));
        let mut outputs = Value::Array(planned_outputs(&document, |name| inputs.output_description(name)));
        drop(document);
        tf.redactor.redact_json(&mut changes);
        tf.redactor.redact_json(&mut outputs);
        let (changes, outputs) = (changes.to_string(), outputs.to_string());
        let file =
            sandbox::read_job_file(&tf.dir.join("tfplan")).map_err(|e| EngineError::Failed(format!("Cannot read the plan file: {e}")))?;
        Ok(PreviewOutcome::Succeeded {
            resource_changes: changes,
            planned_outputs: outputs,
            plan_file_sealed: self.secrets.seal(&base64::engine::general_purpose::STANDARD.encode(file)),
            state_version,
            next: PlanStatus::after_preview(plan.approval_config.is_some()),
        })
    }
}
