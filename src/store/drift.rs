//! Drift checks: a check is a task (`DetectProvisionedProductDrift`) that holds its provisioned
//! product `UnderChange` like an update (so that no other task runs beside it) and restores the
//! status it had when it ends; its result is the product's `drift_status` and a row of
//! `drift_checks` (the history), with the resources that changed outside Terraform — their
//! address, action and the names of the changed attributes, never their values — and the
//! remediation it asked for and what became of it.

use serde::{Deserialize, Serialize};

use super::audit::{JobId, Scheduled};
use super::provisioning::{insert_task, Task, TaskOutcome};
use super::sql::{insert, record, sql, Sql};
use super::{now_ms, Page, SortOrder, Store, StoreError, StoreResult};
use crate::model::{DriftStatus, EventType, OperationType, PlanId, PlanStatus, ProvisionedProductStatus, Remediation, TaskId};

/// A resource that changed outside Terraform, as a refresh-only plan found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DriftedResource {
    /// The resource's address (`sandbox_file.index`).
    pub address: String,
    /// `Modify` (changed) or `Remove` (gone).
    pub action: String,
    /// The names of the top-level attributes whose values changed (values are never kept).
    pub changed_attributes: Vec<String>,
}

/// What a drift check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftReport {
    /// `InSync` or `Drifted`.
    pub status: DriftStatus,
    /// The resources that changed (empty when in sync).
    pub resources: Vec<DriftedResource>,
}

record! {
    /// One drift check of a provisioned product.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DriftCheck {
        /// The check's task.
        pub task_id: TaskId,
        pub provisioned_product_id: String,
        /// `NeverChecked` while the check runs.
        pub drift_status: DriftStatus,
        /// When it ended (0 while it runs).
        pub checked_at: i64,
        /// JSON array of [`DriftedResource`].
        pub resources: String,
        /// Why the check failed, or what became of its remediation.
        pub message: String,
        /// What the check does when it finds drift, as it was queued.
        pub remediation: Remediation,
        /// The update its remediation queued.
        pub remediation_task_id: Option<TaskId>,
        /// The update plan its remediation created (`ReapplyWithApproval`).
        pub remediation_plan_id: Option<PlanId>,
        /// While a node carries out its remediation: when it claimed it (ms), else 0.
        pub remedy_claimed_at: i64,
    }
}

/// The message of a check whose remediation a node is carrying out.
pub const REMEDYING: &str = "Carrying out the remediation.";

/// How long a node's claim on a remediation holds (ms): past it, a node that died while carrying
/// it out is taken over. Queueing an update or creating a plan takes milliseconds.
pub const REMEDY_LEASE_MS: i64 = 60_000;

/// The checks whose remediation no node holds at `now`: never claimed, or claimed longer ago than
/// the lease (the claimer died before recording what it made).
fn push_unclaimed(sql: &mut Sql, column_prefix: &str, now: i64) {
    sql.push(&format!(" AND ({p}message = '' OR ({p}remedy_claimed_at > 0 AND {p}remedy_claimed_at < ", p = column_prefix));
    sql.int(now - REMEDY_LEASE_MS).push("))");
}

impl Store {
    /// Queues the drift check `task` (with its `remediation`) if its provisioned product is not
    /// `UnderChange`: the product goes `UnderChange`, keeping the status to restore; false (and
    /// nothing written) when it is `UnderChange` already, or gone. The scheduler's `audit` record
    /// of the check is written with it.
    pub async fn start_drift_check(&self, task: &Task, remediation: Remediation, scheduled: Option<&Scheduled>) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let moved = sql!(
            "UPDATE provisioned_products SET status_before_check = status, status = $1, last_task_id = $2, updated_at = $3 \
             WHERE provisioned_product_id = $4 AND status <> $1 AND terminated = 0",
            ProvisionedProductStatus::UnderChange,
            &task.task_id,
            now_ms(),
            &task.provisioned_product_id
        )
        .execute(&mut *tx)
        .await?;
        if moved != 1 {
            return Ok(false);
        }
        insert_task(&mut tx, task, scheduled).await?;
        let check = DriftCheck {
            task_id: task.task_id.clone(),
            provisioned_product_id: task.provisioned_product_id.as_str().to_string(),
            drift_status: DriftStatus::NeverChecked,
            checked_at: 0,
            resources: "[]".into(),
            message: String::new(),
            remediation,
            remediation_task_id: None,
            remediation_plan_id: None,
            remedy_claimed_at: 0,
        };
        insert("drift_checks", DriftCheck::COLUMNS, [&check], |c, sql| c.bind_values(sql)).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A page of the drift checks of a provisioned product, newest first, and their count.
    pub async fn drift_checks(&self, provisioned_product_id: &str, page: Page) -> StoreResult<(Vec<DriftCheck>, i64)> {
        let mut filter = Sql::new(" FROM drift_checks WHERE provisioned_product_id = ");
        filter.text(provisioned_product_id);
        let mut select = filter.behind(&format!("SELECT {}", DriftCheck::columns("")));
        let dir = SortOrder::Desc.sql();
        select.push(&format!(" ORDER BY checked_at = 0 {dir}, checked_at {dir}, task_id {dir}")).page(page);
        self.fetch_page(&select, &filter.behind("SELECT COUNT(*)"), page, DriftCheck::from_row).await
    }

    /// Whether a drift check of the provisioned product was queued at or after `since` (ms).
    pub async fn drift_check_queued_since(&self, provisioned_product_id: &str, since: i64) -> StoreResult<bool> {
        let mut sql = Sql::new("SELECT COUNT(*) FROM tasks WHERE provisioned_product_id = ");
        sql.text(provisioned_product_id).push(" AND task_type = ").text(OperationType::DetectProvisionedProductDrift);
        sql.push(" AND created_at >= ").int(since);
        Ok(self.fetch_count(&sql).await? > 0)
    }

    /// The checks that found drift and asked for a remediation not yet made and held by no node
    /// at `now` (ms), oldest first.
    pub async fn pending_remediations(&self, now: i64) -> StoreResult<Vec<DriftCheck>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM drift_checks WHERE remediation <> ", DriftCheck::columns("")));
        sql.text(Remediation::None).push(" AND drift_status = ").text(DriftStatus::Drifted);
        sql.push(" AND remediation_task_id IS NULL AND remediation_plan_id IS NULL");
        push_unclaimed(&mut sql, "", now);
        self.fetch_all(sql.push(" ORDER BY checked_at"), DriftCheck::from_row).await
    }

    /// The checks whose remediation plan an approver approved, not yet executed and held by no
    /// node at `now` (ms), oldest first.
    pub async fn approved_remediations(&self, now: i64) -> StoreResult<Vec<DriftCheck>> {
        let mut sql = Sql::new(&format!(
            "SELECT {} FROM drift_checks d JOIN plans p ON p.plan_id = d.remediation_plan_id WHERE p.status = ",
            DriftCheck::columns("d.")
        ));
        sql.text(PlanStatus::ApplicationApproved);
        sql.push(" AND d.remediation_task_id IS NULL");
        push_unclaimed(&mut sql, "d.", now);
        self.fetch_all(sql.push(" ORDER BY d.checked_at"), DriftCheck::from_row).await
    }

    /// Claims the remediation of check `task_id` for this node at `now` (ms), with the message
    /// [`REMEDYING`]: true for the one node that gets it while no other holds it.
    pub async fn claim_remediation(&self, task_id: &str, now: i64) -> StoreResult<bool> {
        self.settle(task_id, REMEDYING, now, now).await
    }

    /// Ends the remediation of check `task_id` with `message` (why nothing is done) unless a node
    /// holds it at `now` (ms): false when one does.
    pub async fn settle_remediation(&self, task_id: &str, message: &str, now: i64) -> StoreResult<bool> {
        self.settle(task_id, message, 0, now).await
    }

    async fn settle(&self, task_id: &str, message: &str, claimed_at: i64, now: i64) -> StoreResult<bool> {
        let mut settle = sql!(
            "UPDATE drift_checks SET message = $1, remedy_claimed_at = $2 WHERE task_id = $3 AND remediation_task_id IS NULL",
            message,
            claimed_at,
            task_id
        );
        push_unclaimed(&mut settle, "", now);
        Ok(self.write(settle).await? == 1)
    }

    /// Deletes the checks that ended before `before` (ms), except each provisioned product's
    /// latest; the number deleted.
    pub async fn prune_drift_checks(&self, before: i64) -> StoreResult<u64> {
        self.write(sql!(
            "DELETE FROM drift_checks WHERE checked_at > 0 AND checked_at < $1 AND checked_at < \
             (SELECT MAX(latest.checked_at) FROM drift_checks latest WHERE latest.provisioned_product_id = drift_checks.provisioned_product_id)",
            before
        ))
        .await
    }

    /// Records why the remediation of check `task_id`, claimed at `claimed` (ms), made nothing
    /// (`message`), unless another node has taken it over since or it was carried out.
    pub async fn fail_remediation(&self, task_id: &str, claimed: i64, message: &str) -> StoreResult<()> {
        self.write(sql!(
            "UPDATE drift_checks SET message = $1, remedy_claimed_at = 0 \
             WHERE task_id = $2 AND remedy_claimed_at = $3 AND remediation_task_id IS NULL",
            message,
            task_id,
            claimed
        ))
        .await?;
        Ok(())
    }
}

/// Records in `tx`, which queues `job`, that `job` is the remediation of the drift check
/// `check`, and tells webhooks (`DriftRemediationQueued`). Fails, so that `tx` is rolled back,
/// when the check has its remediation already: another node made it after this one's claim
/// expired.
pub(super) async fn link_remediation(tx: &mut super::Tx, check: &TaskId, job: JobId<'_>) -> StoreResult<()> {
    let (set, unmade, field) = match job {
        JobId::Task(_) => ("remediation_task_id", "remediation_task_id IS NULL", "RemediationTaskId"),
        JobId::Plan(_) => ("remediation_plan_id", "remediation_task_id IS NULL AND remediation_plan_id IS NULL", "RemediationPlanId"),
    };
    let made_id = job.as_str();
    let linked = sql!(
        &format!("UPDATE drift_checks SET {set} = $1, message = '', remedy_claimed_at = 0 WHERE task_id = $2 AND {unmade}"),
        made_id,
        check
    )
    .execute(&mut **tx)
    .await?;
    if linked != 1 {
        return Err(StoreError::Database(format!("the remediation of drift check {check} was made by another node").into()));
    }
    let found = sql!(
        "SELECT d.provisioned_product_id, p.portfolio_id, d.remediation FROM drift_checks d \
         JOIN provisioned_products p ON p.provisioned_product_id = d.provisioned_product_id WHERE d.task_id = $1",
        check
    )
    .row(&mut **tx, |row| {
        Ok((row.get::<String>("provisioned_product_id")?, row.get::<String>("portfolio_id")?, row.get::<Remediation>("remediation")?))
    })
    .await?;
    if let Some((provisioned_product_id, portfolio_id, remediation)) = found {
        let fields = serde_json::json!({
            "TaskId": check,
            field: made_id,
            "ProvisionedProductId": provisioned_product_id,
            "Remediation": remediation,
        });
        let event = super::webhook::Event { event_type: EventType::DriftRemediationQueued, portfolio_id, fields };
        super::webhook::enqueue(tx, &event).await?;
    }
    Ok(())
}

/// Ends a drift check inside `tx` (its task row already ended): the provisioned product gets its
/// status back and the result, and the check's row the resources found or why it failed.
pub(super) async fn finish_check(tx: &mut super::Tx, task: &Task, outcome: &TaskOutcome) -> StoreResult<()> {
    let now = now_ms();
    let (status, resources, message) = match outcome {
        TaskOutcome::Checked(report) => {
            (report.status, serde_json::to_string(&report.resources).expect("resources serialise"), String::new())
        }
        TaskOutcome::Succeeded { .. } => (DriftStatus::InSync, "[]".into(), String::new()),
        TaskOutcome::Failed { message } => (DriftStatus::CheckFailed, "[]".into(), message.clone()),
    };
    sql!(
        "UPDATE provisioned_products SET status = COALESCE(status_before_check, $1), status_before_check = NULL, \
         drift_status = $2, drift_checked_at = $3, updated_at = $3 WHERE provisioned_product_id = $4",
        ProvisionedProductStatus::Available,
        status,
        now,
        &task.provisioned_product_id
    )
    .execute(&mut **tx)
    .await?;
    sql!(
        "UPDATE drift_checks SET drift_status = $1, checked_at = $2, resources = $3, message = $4 WHERE task_id = $5",
        status,
        now,
        &resources,
        message,
        &task.task_id
    )
    .execute(&mut **tx)
    .await?;
    if status == DriftStatus::Drifted {
        let fields = serde_json::json!({
            "TaskId": task.task_id,
            "ProvisionedProductId": task.provisioned_product_id,
            "ProvisionedProductName": task.provisioned_product_name,
            "ProductId": task.product_id,
            "DriftStatus": status,
            "DriftedResources": serde_json::from_str::<serde_json::Value>(&resources).unwrap_or_default(),
        });
        let event = super::webhook::Event { event_type: EventType::DriftDetected, portfolio_id: task.portfolio_id.clone(), fields };
        super::webhook::enqueue(tx, &event).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::AuditEvent;
    use crate::store::plan::tests::sample_plan;
    use crate::store::plan::{submit_record, Plan, PlanRecord};
    use crate::store::provisioning::tests::{sample_task, seed_task};
    use crate::store::testing;

    /// A launch ended with `launched`, and the drift check `task-c` of its product queued.
    async fn checking(store: &Store, launched: TaskOutcome, remediation: Remediation) -> (Task, Task) {
        let launch = seed_task(store, "task-l").await;
        store.finish_task(&launch, None, &launched, &[]).await.unwrap();
        let check = Task { task_type: OperationType::DetectProvisionedProductDrift, ..sample_task("task-c") };
        let check = Task { provisioned_product_id: launch.provisioned_product_id.clone(), ..check };
        assert!(store.start_drift_check(&check, remediation, None).await.unwrap());
        (launch, check)
    }

    #[tokio::test]
    async fn a_check_holds_its_product_then_restores_its_status_and_keeps_the_result() {
        testing::each_store(|store| async move {
            let (launch, check) = checking(&store, TaskOutcome::Succeeded { outputs: "[]".into() }, Remediation::Reapply).await;
            let pp = store.provisioned_product(&launch.provisioned_product_id).await.unwrap().unwrap();
            assert_eq!((pp.status, pp.drift_status), (ProvisionedProductStatus::UnderChange, DriftStatus::NeverChecked));
            let again = Task { task_id: "task-c2".into(), ..check.clone() };
            assert!(!store.start_drift_check(&again, Remediation::Reapply, None).await.unwrap(), "one task at a time");
            let resources = vec![DriftedResource {
                address: "sandbox_file.index".into(),
                action: "Modify".into(),
                changed_attributes: vec!["checksum".into(), "content".into()],
            }];
            let report = DriftReport { status: DriftStatus::Drifted, resources: resources.clone() };
            assert!(store.finish_task(&check, None, &TaskOutcome::Checked(report), &[]).await.unwrap());
            let pp = store.provisioned_product(&launch.provisioned_product_id).await.unwrap().unwrap();
            assert_eq!((pp.status, pp.drift_status), (ProvisionedProductStatus::Available, DriftStatus::Drifted));
            assert!(pp.drift_checked_at.is_some());
            assert_eq!(pp.last_successful_provisioning_task_id.as_ref().map(|t| t.as_str()), Some("task-l"), "a check is no provisioning");
            let (history, total) = store.drift_checks(&launch.provisioned_product_id, Page { number: 1, size: 10 }).await.unwrap();
            assert_eq!(total, 1);
            assert_eq!(serde_json::from_str::<Vec<DriftedResource>>(&history[0].resources).unwrap(), resources);
            assert!(store.drift_check_queued_since(&launch.provisioned_product_id, check.created_at).await.unwrap());
            assert!(!store.drift_check_queued_since(&launch.provisioned_product_id, now_ms() + 1000).await.unwrap());
            // Its re-apply is pending until one node settles it.
            assert_eq!(store.pending_remediations(now_ms()).await.unwrap().len(), 1);
            assert!(store.claim_remediation("task-c", now_ms()).await.unwrap());
            assert!(!store.claim_remediation("task-c", now_ms()).await.unwrap(), "one node settles it");
            assert!(store.pending_remediations(now_ms()).await.unwrap().is_empty());
            assert!(!store.settle_remediation("task-c", "gone", now_ms()).await.unwrap(), "a held claim is not ended by another node");
            // A node that died holding it is taken over once its claim is older than the lease.
            let later = now_ms() + REMEDY_LEASE_MS + 1;
            assert_eq!(store.pending_remediations(later).await.unwrap().len(), 1);
            assert!(store.claim_remediation("task-c", later).await.unwrap());
            assert!(!store.claim_remediation("task-c", later).await.unwrap(), "one node takes it over");
            store.fail_remediation("task-c", now_ms(), "the first node's failure").await.unwrap();
            // The update is recorded on the check in the transaction that queues it, once only.
            let scheduled = |node: &str| Scheduled {
                audit: AuditEvent { request_id: node.into(), ..crate::store::audit::sample("UpdateProvisionedProduct", "system", "pp-r") },
                remedies: Some(TaskId::from("task-c")),
            };
            let update = |id: &str| Task { task_id: id.into(), task_type: OperationType::UpdateProvisionedProduct, ..launch.clone() };
            assert_eq!(store.start_change(&update("task-u"), Some(&scheduled("node-a"))).await.unwrap(), Ok(()));
            let (history, _) = store.drift_checks(&launch.provisioned_product_id, Page { number: 1, size: 10 }).await.unwrap();
            assert_eq!(history[0].remediation_task_id.as_ref().map(|t| t.as_str()), Some("task-u"));
            assert_eq!(history[0].message, "", "a failure of a node whose claim was taken over is not recorded");
            assert!(store.pending_remediations(later).await.unwrap().is_empty(), "made: never pending again");
            // As if the update had ended, so that only the check's link refuses the next one.
            let ended = sql!(
                "UPDATE provisioned_products SET status = 'Available' WHERE provisioned_product_id = $1",
                &launch.provisioned_product_id
            );
            store.write(ended).await.unwrap();
            assert!(store.start_change(&update("task-v"), Some(&scheduled("node-b"))).await.is_err(), "a second remediation is refused");
            assert!(store.task("task-v").await.unwrap().is_none(), "and nothing of it written");
            let query = crate::store::audit::AuditQuery { resource_id: Some("pp-r".into()), ..Default::default() };
            let (audited, _) = store.list_audit_events(&query, SortOrder::Asc, Page { number: 1, size: 10 }).await.unwrap();
            assert_eq!(audited.iter().map(|e| e.request_id.as_str()).collect::<Vec<_>>(), ["node-a/task-u"]);
        })
        .await;
    }

    #[tokio::test]
    async fn a_remediation_plan_is_executed_once_approved() {
        testing::each_store(|store| async move {
            let (launch, check) = checking(&store, TaskOutcome::Succeeded { outputs: "[]".into() }, Remediation::ReapplyWithApproval).await;
            let report = DriftReport { status: DriftStatus::Drifted, resources: Vec::new() };
            assert!(store.finish_task(&check, None, &TaskOutcome::Checked(report), &[]).await.unwrap());
            assert!(store.claim_remediation("task-c", now_ms()).await.unwrap());
            let plan = Plan {
                status: PlanStatus::ApplicationInProgress,
                operation_type: crate::model::OperationType::UpdateProvisionedProduct,
                ..sample_plan("plan-r")
            };
            let scheduled = Scheduled {
                audit: crate::store::audit::sample("CreateProvisionedProductPlan", "system", "pp-r"),
                remedies: Some(TaskId::from("task-c")),
            };
            store.insert_plan(&plan, Some(&scheduled)).await.unwrap();
            let other = Plan { plan_id: "plan-s".into(), ..plan.clone() };
            assert!(store.insert_plan(&other, Some(&scheduled)).await.is_err(), "one plan per check");
            assert!(store.pending_remediations(now_ms()).await.unwrap().is_empty(), "its plan is made");
            assert!(store.approved_remediations(now_ms()).await.unwrap().is_empty(), "not approved yet");
            let approve = PlanRecord { approval_action: "Approve".into(), ..submit_record(&plan) };
            let approved = PlanStatus::ApplicationApproved;
            assert!(store.transition_plan(&plan, PlanStatus::ApplicationInProgress, approved, &approve).await.unwrap());
            let due = store.approved_remediations(now_ms()).await.unwrap();
            assert_eq!(due.iter().map(|c| c.task_id.as_str()).collect::<Vec<_>>(), ["task-c"]);
            assert_eq!(due[0].remediation_plan_id.as_ref(), Some(&plan.plan_id));
            assert!(store.claim_remediation("task-c", now_ms()).await.unwrap());
            assert!(!store.claim_remediation("task-c", now_ms()).await.unwrap(), "one node executes it");
            let mut tx = store.begin().await.unwrap();
            link_remediation(&mut tx, &TaskId::from("task-c"), JobId::Task(&TaskId::from("task-u"))).await.unwrap();
            tx.commit().await.unwrap();
            assert!(store.approved_remediations(now_ms()).await.unwrap().is_empty(), "executed once");
            let (history, _) = store.drift_checks(&launch.provisioned_product_id, Page { number: 1, size: 10 }).await.unwrap();
            assert_eq!(history[0].remediation_plan_id.as_ref(), Some(&plan.plan_id), "the plan is kept beside the update");
            assert_eq!(history[0].remediation_task_id.as_ref().map(|t| t.as_str()), Some("task-u"));
        })
        .await;
    }

    #[tokio::test]
    async fn pruning_keeps_each_products_latest_check() {
        testing::each_store(|store| async move {
            let (launch, check) = checking(&store, TaskOutcome::Succeeded { outputs: "[]".into() }, Remediation::None).await;
            assert!(store.finish_task(&check, None, &TaskOutcome::Succeeded { outputs: "[]".into() }, &[]).await.unwrap());
            let later = Task { task_id: "task-c2".into(), ..check.clone() };
            assert!(store.start_drift_check(&later, Remediation::None, None).await.unwrap());
            assert!(store.finish_task(&later, None, &TaskOutcome::Succeeded { outputs: "[]".into() }, &[]).await.unwrap());
            store.write(sql!("UPDATE drift_checks SET checked_at = 1000 WHERE task_id = 'task-c'")).await.unwrap();
            store.write(sql!("UPDATE drift_checks SET checked_at = 2000 WHERE task_id = 'task-c2'")).await.unwrap();
            assert_eq!(store.prune_drift_checks(1000).await.unwrap(), 0, "none ended before");
            assert_eq!(store.prune_drift_checks(now_ms()).await.unwrap(), 1);
            let (history, total) = store.drift_checks(&launch.provisioned_product_id, Page { number: 1, size: 10 }).await.unwrap();
            assert_eq!((total, history[0].task_id.as_str()), (1, "task-c2"), "the latest stays");
        })
        .await;
    }

    #[tokio::test]
    async fn a_failed_check_leaves_the_product_as_it_was() {
        testing::each_store(|store| async move {
            let (launch, check) = checking(&store, TaskOutcome::Failed { message: "apply failed".into() }, Remediation::None).await;
            let outcome = TaskOutcome::Failed { message: "terraform plan failed".into() };
            store.finish_task(&check, None, &outcome, &[]).await.unwrap();
            let pp = store.provisioned_product(&launch.provisioned_product_id).await.unwrap().unwrap();
            assert_eq!((pp.status, pp.drift_status), (ProvisionedProductStatus::Error, DriftStatus::CheckFailed));
            assert_eq!(pp.status_message, "apply failed", "the product's own failure is kept");
            let (history, _) = store.drift_checks(&launch.provisioned_product_id, Page { number: 1, size: 10 }).await.unwrap();
            assert_eq!(history[0].message, "terraform plan failed");
            assert!(store.pending_remediations(now_ms()).await.unwrap().is_empty());
        })
        .await;
    }
}
