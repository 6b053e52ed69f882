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

use super::plan_summary::{planned_outputs, resource_changes};
use super::terraform::{self, error_summary};
use super::{internal, load_inputs, patiently, sandbox, step, workspace, Engine, Lease, Site};
use crate::model::OperationType;
use crate::store::plan::{Plan, PlanStatus, PreviewOutcome};
use crate::store::provisioning::Fence;

impl Engine {
    /// Runs one claimed preview to its end, then records the outcome (with the plan file) if
    /// `fence` is still current; once the preview is taken over, its Terraform is killed and
    /// nothing is written.
    pub(super) async fn preview(&self, plan: Plan, fence: Fence, slot: usize) {
        tracing::info!(plan_id = %plan.plan_id, operation = %plan.operation_type, "plan preview started");
        let (cancel_tx, cancel_rx) = watch::channel(None);
        let heartbeat = self.heartbeat(Lease::Preview(&fence), cancel_tx);
        tokio::pin!(heartbeat);
        let outcome = tokio::select! {
            outcome = self.try_preview(&plan, slot, cancel_rx) => outcome.unwrap_or_else(|message| PreviewOutcome::Failed { message }),
            () = &mut heartbeat => {
                let _ = std::fs::remove_dir_all(self.work_dir(&plan.plan_id));
                tracing::warn!(plan_id = %plan.plan_id, "the preview was taken over: its Terraform was stopped and nothing is written");
                return;
            }
        };
        let _ = std::fs::remove_dir_all(self.work_dir(&plan.plan_id));
        let recorded = tokio::select! {
            recorded = patiently(&plan.plan_id, "record the preview's outcome", || self.store.finish_preview(&plan, &fence, &outcome)) => recorded,
            () = &mut heartbeat => Ok(false),
        };
        match recorded {
            Ok(true) => {
                tracing::info!(plan_id = %plan.plan_id, failed = matches!(outcome, PreviewOutcome::Failed { .. }), "plan preview finished")
            }
            Ok(false) => tracing::info!(plan_id = %plan.plan_id, "plan preview outcome not recorded: cancelled, or the lease was lost"),
            Err(e) => tracing::error!(plan_id = %plan.plan_id, error = %e, "cannot record a preview's outcome; its lease will expire"),
        }
    }

    async fn try_preview(&self, plan: &Plan, slot: usize, cancel: watch::Receiver<Option<String>>) -> Result<PreviewOutcome, String> {
        let binary = terraform::find_binary(self.config.terraform.as_deref())
            .ok_or("No Terraform binary was found: configure --terraform or put terraform or tofu on PATH.")?;
        let inputs = load_inputs(&plan.plan_id, || {
            self.source.inputs(&plan.product_version_id, &plan.parameters_sealed, plan.launch_role.as_deref())
        })
        .await?;
        let (state_version, state) =
            match patiently(&plan.plan_id, "read the Terraform state", || self.versioned_state(&plan.provisioned_product_id))
                .await
                .map_err(internal)?
            {
                Some((version, state)) => (version, Some(state)),
                None => (0, None),
            };
        let redactor = inputs.redactor(state.as_deref());
        let site = Site {
            work_id: &plan.plan_id,
            provisioned_product_id: &plan.provisioned_product_id,
            portfolio_id: &plan.portfolio_id,
            product_id: &plan.product_id,
            region: &plan.stack_region_id,
        };
        let prepared = self.prepare(&site, slot, &binary, &inputs, state.as_deref()).await?;
        let dir = &prepared.dir;
        let tf = self.terraform(&binary, &prepared, cancel, None, &redactor);
        let var_file = format!("-var-file={}", workspace::VARIABLES_FILE);
        let mut args = vec!["plan", "-input=false", "-no-color", "-out=tfplan", var_file.as_str()];
        if plan.operation_type == OperationType::TerminateProvisionedProduct {
            args.push("-destroy");
        }
        step(&tf, "init", &["init", "-input=false", "-no-color"]).await?;
        let planned = step(&tf, "plan", &args).await;
        let shown = match planned {
            Ok(()) => tf.run(None, &["show", "-json", "-no-color", "tfplan"]).await.map_err(|e| e.to_string()),
            Err(message) => Err(message),
        };
        // A launch plan's sandbox exists only once it is executed.
        let _ = std::fs::remove_dir(self.sandbox_dir(&plan.provisioned_product_id));
        let (finished, shown) = shown?;
        if !finished.status.success() {
            return Err(format!("terraform show failed: {}", error_summary(&finished.stderr)));
        }
        let document: Value = serde_json::from_str(&shown).map_err(|e| format!("terraform show -json printed no readable plan: {e}"))?;
        drop(shown);
        let mut changes = Value::Array(resource_changes(&document));
        let mut outputs = Value::Array(planned_outputs(&document, |name| inputs.output_description(name)));
        drop(document);
        redactor.redact_json(&mut changes);
        redactor.redact_json(&mut outputs);
        let (changes, outputs) = (changes.to_string(), outputs.to_string());
        let file = sandbox::read_job_file(&dir.join("tfplan")).map_err(|e| format!("Cannot read the plan file: {e}"))?;
        Ok(PreviewOutcome::Succeeded {
            resource_changes: changes,
            planned_outputs: outputs,
            plan_file_sealed: self.secrets.seal(&base64::engine::general_purpose::STANDARD.encode(file)),
            state_version,
            next: PlanStatus::after_preview(plan.approval_config.is_some()),
        })
    }

    /// Fails the previews whose worker died, killing what they left running on this node.
    pub(super) async fn reap_previews(&self, reaper: &str) {
        let expired = match self.store.expired_previews().await {
            Ok(expired) => expired,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for expired previews");
                return;
            }
        };
        for plan in expired {
            let dir = self.work_dir(&plan.plan_id);
            if dir.exists() {
                terraform::kill_leftover_group(&dir);
            }
            let message = "The preview was interrupted: the server running it stopped before it finished (its lease expired). \
                           Run it again with UpdateProvisionedProductPlan.";
            match self.store.fail_expired_preview(&plan, reaper, message).await {
                Ok(true) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    tracing::warn!(plan_id = %plan.plan_id, "failed a preview whose worker died");
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(plan_id = %plan.plan_id, error = %e, "cannot fail an expired preview"),
            }
        }
    }
}
