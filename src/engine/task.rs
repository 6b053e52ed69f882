//! A task as a job of the engine: `terraform version`, `init`, then `plan -out` (with `-destroy`
//! for a terminate) — or, for a task executing a plan, the plan's saved file — and `apply`, while
//! the state Terraform writes is followed into the database; the outputs are read from the final
//! state.

use std::path::Path;

use tokio::sync::watch;

use super::job::Run;
use super::terraform::Terraform;
use super::{patiently, plan, redact, step, BinaryStamp, Engine, EngineError, TaskLog};
use crate::model::OperationType;
use crate::store::plan::Plan;
use crate::store::provisioning::Task;

impl Engine {
    /// Runs the Terraform commands of `task` (of `run`): its outputs (a JSON list).
    pub(super) async fn try_execute(
        &self,
        run: &Run<'_>,
        task: &Task,
        cancel: watch::Receiver<Option<String>>,
    ) -> Result<String, EngineError> {
        let (fence, log) = (run.fence, run.log);
        let terminate = task.task_type == OperationType::TerminateProvisionedProduct;
        let state = patiently(&task.task_id, "read the Terraform state", || self.versioned_state(&task.provisioned_product_id))
            .await?
            .map(|(_, state)| state);
        if terminate && state.is_none() {
            // No apply ever wrote state (e.g. the launch failed validation): nothing exists.
            log.push("destroy", "stdout", "No Terraform state exists for this provisioned product: there is nothing to destroy.\n");
            return Ok("[]".into());
        }
        let (inputs, tf, init) = self.prepare(run.job, run.slot, state.as_deref(), cancel, Some(log)).await?;
        let dir = &tf.dir;
        self.version_step(&tf, log).await?;
        let _prepared = self.init(&tf, init, &task.task_id).await?;
        match patiently(&task.task_id, "read the task's plan", || self.store.plan_of_task(&task.task_id)).await? {
            Some(plan) => self.restore_plan_file(&plan, dir).await?,
            None => plan(&tf, terminate).await?,
        }
        let apply =
            step(&tf, if terminate { "destroy" } else { "apply" }, &["apply", "-input=false", "-no-color", "-auto-approve", "tfplan"]);
        // Terraform writes its state after every resource: the database's copy follows it while
        // the apply runs, so that when this node dies mid-apply, the node that fails the task (any
        // node of a cluster) still knows every resource made so far.
        let mut saved = state.clone();
        let applied = tokio::select! {
            applied = apply => applied,
            never = self.follow_state(task, fence, dir, &mut saved) => match never {},
        };
        let final_state = self.collect_state(task, fence, dir, saved.as_deref()).await?;
        // The sensitive outputs the apply made are known only now: masked in what is not stored yet.
        let learned = final_state.as_deref().and_then(|state| tf.redactor.extended(redact::sensitive_outputs(state)));
        if let Some(learned) = &learned {
            log.redact_pending(learned).await;
        }
        let redactor = learned.as_ref().unwrap_or(&tf.redactor);
        applied.map_err(|e| e.redacted(redactor))?;
        if terminate {
            return Ok("[]".into());
        }
        // What `terraform output -json` would print: the root module's outputs in the state.
        let mut outputs = inputs.outputs(final_state.as_deref().unwrap_or_default());
        redactor.redact_json(&mut outputs);
        Ok(outputs.to_string())
    }

    /// The `version` step: `terraform version` of the task's binary, logged. Before `init` its
    /// text depends only on the binary (it would also list the providers of a dependency lock
    /// file, but a template holds only `.tf` files): so it runs once per binary (path, size,
    /// modification time) — at start, when the binaries are found — and tasks log the same text
    /// without starting Terraform again; a binary replaced since runs it again in the task's
    /// directory.
    pub(super) async fn version_step(&self, tf: &Terraform<'_>, log: &TaskLog) -> Result<(), EngineError> {
        let stamp = BinaryStamp::of(&tf.binary);
        if let Some(stamp) = &stamp {
            let cached = self.version_text.lock().expect("version cache lock");
            if let Some((_, text)) = cached.get(&tf.binary).filter(|(known, _)| known == stamp) {
                log.push("version", "stdout", text);
                return Ok(());
            }
        }
        let (finished, stdout) = tf.run(None, &["version", "-no-color"]).await?;
        log.push("version", "stdout", &stdout);
        log.push("version", "stderr", &finished.stderr);
        finished.check("version")?;
        if let Some(stamp) = stamp.filter(|_| finished.stderr.is_empty()) {
            self.version_text.lock().expect("version cache lock").insert(tf.binary.clone(), (stamp, stdout));
        }
        Ok(())
    }

    /// Writes the saved plan file of `plan` into `dir`, refusing it when the provisioned
    /// product's state is no longer the version the plan was computed from.
    async fn restore_plan_file(&self, plan: &Plan, dir: &Path) -> Result<(), EngineError> {
        if self.store.state_version(&plan.provisioned_product_id).await? != plan.state_version {
            return Err(EngineError::Refused(format!(
                "The plan {} is stale: the provisioned product's state changed since its preview. Refresh it with \
                 UpdateProvisionedProductPlan.",
                plan.plan_id
            )));
        }
        let file = plan
            .plan_file_sealed
            .as_deref()
            .and_then(|sealed| self.secrets.open(sealed))
            .and_then(|encoded| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).ok())
            .ok_or_else(|| EngineError::Internal(format!("the plan file of {} cannot be opened", plan.plan_id)))?;
        std::fs::write(dir.join("tfplan"), file).map_err(|e| EngineError::Failed(format!("Cannot write the plan file: {e}")))
    }
}
