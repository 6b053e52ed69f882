//! Provisioned product plans and their approval records. A plan's preview is a queued job like a
//! task (claimed with a lease on the plan row itself); its result (derived resource changes,
//! planned outputs, the sealed plan file and the state version it was computed from) is written
//! back only while the previewing worker still holds the lease. Executing a plan queues an
//! ordinary task in the same transaction that moves the plan to `ExecuteInProgress`.

use super::audit::{JobId, Scheduled};
use super::lease::{Fence, Leased};
use super::provisioning::{claim_name, insert_provisioned_product, insert_task, mark_under_change, NameHolder, ProvisionedProduct, Task};
use super::sql::{contains_pattern, insert, record, sql, Sql};
pub use crate::model::PlanStatus;
use crate::model::{EventType, OperationType, PlanId, ProvisionedProductId, TaskId};

use super::{now_ms, SortOrder, Store, StoreResult};

record! {
    /// A plan: the change it previews, its status and the preview's results.
    #[derive(Debug, Clone)]
    pub struct Plan {
        pub plan_id: PlanId,
        pub plan_name: String,
        pub description: String,
        pub operation_type: OperationType,
        pub owner_principal_id: String,
        pub owner_principal_type: String,
        pub owner_principal_name: String,
        pub product_id: String,
        pub product_version_id: String,
        pub portfolio_id: String,
        /// Pre-allocated for a launch plan; the provisioned product is created at execution.
        pub provisioned_product_id: ProvisionedProductId,
        pub provisioned_product_name: String,
        pub stack_id: String,
        pub stack_region_id: String,
        /// Sealed JSON array of `{ParameterKey, ParameterValue}` (complete, as the task will get them).
        pub parameters_sealed: String,
        /// JSON array of the names of sensitive parameters.
        pub sensitive_parameters: String,
        /// JSON array of the caller's `{Key, Value}` tags.
        pub tags: String,
        /// JSON array of `{Key, Value}`: tag options merged with the caller's tags.
        pub task_tags: String,
        pub launch_role: Option<String>,
        /// The `Approval` constraint's Config covering the operation, when one does (canonical JSON).
        pub approval_config: Option<String>,
        pub status: PlanStatus,
        pub status_message: String,
        /// JSON array of `ResourceChanges` entries derived from the plan.
        pub resource_changes: String,
        /// JSON array of `{OutputKey, OutputValue?, Description}` the plan promises.
        pub planned_outputs: String,
        /// The Terraform plan file, base64 then sealed.
        pub plan_file_sealed: Option<String>,
        /// Version of the provisioned product's state the preview was computed from (0: none).
        pub state_version: i64,
        pub execute_task_id: Option<TaskId>,
        pub created_at: i64,
        pub updated_at: i64,
        /// JSON array of the parameters resolved from references (an extension:
        /// [`super::dependency::ParameterReference`]).
        pub parameter_references: String,
    }
    joined {
        /// Product name (joined in on reads).
        pub product_name: String,
    }
}

/// One entry of `ApprovalDetail.OperationRecords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    /// `Submit`, `Cancel`, `Approve` or `Reject`.
    pub approval_action: String,
    pub operator_principal_id: String,
    pub operator_principal_type: String,
    pub operator_principal_name: String,
    pub comment: String,
    pub created_at: i64,
}

/// The webhook event of a plan that moved to `status` (by `record`'s operator, when decided).
fn plan_event(plan: &Plan, event_type: EventType, status: PlanStatus, record: Option<&PlanRecord>) -> super::webhook::Event {
    let mut fields = serde_json::json!({
        "PlanId": plan.plan_id,
        "PlanName": plan.plan_name,
        "PlanStatus": status.as_str(),
        "OperationType": plan.operation_type,
        "OwnerPrincipalId": plan.owner_principal_id,
        "ProvisionedProductId": plan.provisioned_product_id,
        "ProvisionedProductName": plan.provisioned_product_name,
        "ProductId": plan.product_id,
        "ProductVersionId": plan.product_version_id,
    });
    if let Some(record) = record {
        fields["OperatorPrincipalName"] = record.operator_principal_name.clone().into();
        fields["Comment"] = record.comment.clone().into();
    }
    super::webhook::Event { event_type, portfolio_id: plan.portfolio_id.clone(), fields }
}

/// What a finished preview produced.
#[derive(Debug, Clone)]
pub enum PreviewOutcome {
    /// The plan was computed: move to `next` (`PreviewSuccess`, or `ApplicationInProgress` with
    /// the owner's `Submit` record).
    Succeeded { resource_changes: String, planned_outputs: String, plan_file_sealed: String, state_version: i64, next: PlanStatus },
    /// The preview failed with this message.
    Failed { message: String },
}

/// Why a plan's execution could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionRefusal {
    /// The plan left the expected status meanwhile.
    Status,
    /// The provisioned product is `UnderChange` (or gone).
    UnderChange,
    /// The provisioned product's state changed since the preview.
    Stale,
    /// The campaign claim it was to make was refused (the item or its campaign moved on).
    Claimed,
    /// The update's references would now close a cycle of dependencies.
    Cycle,
}

/// Which plans a list returns (filters expressible in SQL; approver filters are the caller's).
#[derive(Debug, Clone, Default)]
pub struct PlanQuery {
    /// Only this owner's.
    pub owner_principal_id: Option<String>,
    /// Only plans of this provisioned product.
    pub provisioned_product_id: Option<String>,
    /// Only plans in one of these statuses (empty: any).
    pub statuses: Vec<PlanStatus>,
    /// Only plans that need an approval.
    pub needs_approval: bool,
    /// Exact plan name, case-insensitively.
    pub name: Option<String>,
    /// Substring of the plan name, case-insensitively.
    pub full_text: Option<String>,
    /// Exact name of the provisioned product, case-insensitively.
    pub provisioned_product_name: Option<String>,
}

/// A plan's columns and its product's name, as a select list over `plans`.
pub(super) fn select_list() -> String {
    format!(
        "{}, COALESCE((SELECT product_name FROM products p WHERE p.product_id = plans.product_id), '') AS product_name",
        Plan::columns("")
    )
}

/// Appends a record to a plan's `OperationRecords` inside `tx`.
async fn insert_record(tx: &mut super::Tx, plan_id: &str, record: &PlanRecord) -> StoreResult<()> {
    let seq: i64 = sql!("SELECT COALESCE(MAX(seq), 0) + 1 FROM plan_records WHERE plan_id = $1", plan_id).one(&mut **tx).await?;
    sql!(
        "INSERT INTO plan_records (plan_id, seq, approval_action, operator_principal_id, operator_principal_type, \
         operator_principal_name, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        plan_id,
        seq,
        &record.approval_action,
        &record.operator_principal_id,
        &record.operator_principal_type,
        &record.operator_principal_name,
        &record.comment,
        record.created_at
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The owner's `Submit` record of a plan.
pub fn submit_record(plan: &Plan) -> PlanRecord {
    PlanRecord {
        approval_action: "Submit".into(),
        operator_principal_id: plan.owner_principal_id.clone(),
        operator_principal_type: plan.owner_principal_type.clone(),
        operator_principal_name: plan.owner_principal_name.clone(),
        comment: String::new(),
        created_at: now_ms(),
    }
}

/// Moves the plan executed by `task_id` to `ExecuteSuccess` or `ExecuteFailed` inside the
/// transaction that finishes the task.
pub(super) async fn finish_execution(tx: &mut super::Tx, task_id: &str, failure: Option<&str>) -> StoreResult<()> {
    let (status, message) = match failure {
        None => (PlanStatus::ExecuteSuccess, ""),
        Some(message) => (PlanStatus::ExecuteFailed, message),
    };
    sql!(
        "UPDATE plans SET status = $1, status_message = $2, updated_at = $3 WHERE execute_task_id = $4 AND status = $5",
        status.as_str(),
        message,
        now_ms(),
        task_id,
        PlanStatus::ExecuteInProgress.as_str()
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Records a new plan (its preview queued), with what the scheduler writes with it in the
    /// same transaction when the scheduler makes it ([`super::audit::record_queued`]). A launch
    /// plan reserves its provisioned product's name, provided it is free
    /// ([`super::provisioning::claim_name`]); else what holds it, and nothing is written.
    pub async fn insert_plan(&self, p: &Plan, scheduled: Option<&Scheduled>) -> StoreResult<Option<NameHolder>> {
        super::audit::created(&p.plan_id);
        let statement = insert("plans", Plan::COLUMNS, [p], |p, sql| p.bind_values(sql));
        let launch = p.operation_type == OperationType::LaunchProduct;
        if scheduled.is_none() && !launch {
            self.write(statement).await?;
            return Ok(None);
        }
        let mut tx = self.begin().await?;
        if launch {
            if let Some(holder) = claim_name(&mut tx, &p.owner_principal_id, &p.provisioned_product_name).await? {
                return Ok(Some(holder));
            }
        }
        statement.execute(&mut *tx).await?;
        super::audit::record_queued(&mut tx, scheduled, JobId::Plan(&p.plan_id)).await?;
        tx.commit().await?;
        Ok(None)
    }

    /// One plan.
    pub async fn plan(&self, id: &str) -> StoreResult<Option<Plan>> {
        sql!(&format!("SELECT {} FROM plans WHERE plan_id = $1", select_list()), id).row(self.writer(), Plan::from_row).await
    }

    /// The plan whose execution is the task `task_id`, if any.
    pub async fn plan_of_task(&self, task_id: &str) -> StoreResult<Option<Plan>> {
        sql!(&format!("SELECT {} FROM plans WHERE execute_task_id = $1", select_list()), task_id).row(self.writer(), Plan::from_row).await
    }

    /// Every plan matching `query`, ordered by creation time. Lists page in the caller, after
    /// the approver filters that SQL cannot express.
    pub async fn list_plans(&self, query: &PlanQuery, order: SortOrder) -> StoreResult<Vec<Plan>> {
        let mut select = Sql::new(&format!("SELECT {} FROM plans WHERE 1 = 1", select_list()));
        if let Some(owner) = &query.owner_principal_id {
            select.push(" AND owner_principal_id = ").text(owner.clone());
        }
        if let Some(pp) = &query.provisioned_product_id {
            select.push(" AND provisioned_product_id = ").text(pp.clone());
        }
        if !query.statuses.is_empty() {
            select.push(" AND status IN (");
            for (i, status) in query.statuses.iter().enumerate() {
                if i > 0 {
                    select.push(", ");
                }
                select.text(status.as_str());
            }
            select.push(")");
        }
        if query.needs_approval {
            select.push(" AND approval_config IS NOT NULL");
        }
        if let Some(name) = &query.name {
            select.push(" AND LOWER(plan_name) = LOWER(").text(name.clone()).push(")");
        }
        if let Some(text) = &query.full_text {
            select.push(" AND LOWER(plan_name) LIKE LOWER(").text(contains_pattern(text)).push(") ESCAPE '\\'");
        }
        if let Some(name) = &query.provisioned_product_name {
            select.push(" AND LOWER(provisioned_product_name) = LOWER(").text(name.clone()).push(")");
        }
        let dir = order.sql();
        select.push(&format!(" ORDER BY created_at {dir}, plan_id {dir}"));
        self.fetch_all(&select, Plan::from_row).await
    }

    /// Ids of the plans on which `principal_id` recorded an `Approve` or `Reject`.
    pub async fn plans_decided_by(&self, principal_id: &str) -> StoreResult<Vec<String>> {
        let mut sql = Sql::new("SELECT DISTINCT plan_id FROM plan_records WHERE operator_principal_id = ");
        sql.text(principal_id).push(" AND approval_action IN ('Approve', 'Reject')");
        self.fetch_all(&sql, |row| row.first()).await
    }

    /// A plan's operation records, oldest first.
    pub async fn plan_records(&self, plan_id: &str) -> StoreResult<Vec<PlanRecord>> {
        let mut sql = Sql::new(
            "SELECT approval_action, operator_principal_id, operator_principal_type, operator_principal_name, comment, created_at \
             FROM plan_records WHERE plan_id = ",
        );
        sql.text(plan_id).push(" ORDER BY seq");
        self.fetch_all(&sql, |row| {
            Ok(PlanRecord {
                approval_action: row.get("approval_action")?,
                operator_principal_id: row.get("operator_principal_id")?,
                operator_principal_type: row.get("operator_principal_type")?,
                operator_principal_name: row.get("operator_principal_name")?,
                comment: row.get("comment")?,
                created_at: row.get("created_at")?,
            })
        })
        .await
    }

    /// Replaces the change a plan previews and queues a new preview, if the plan is still in
    /// `from`; the previous results are dropped. False when the status moved meanwhile.
    pub async fn replan(&self, p: &Plan, from: PlanStatus) -> StoreResult<bool> {
        let done = self
            .write(sql!(
                "UPDATE plans SET description = $1, product_version_id = $2, portfolio_id = $3, parameters_sealed = $4, \
             sensitive_parameters = $5, tags = $6, task_tags = $7, launch_role = $8, approval_config = $9, status = $10, \
             status_message = '', resource_changes = '[]', planned_outputs = '[]', plan_file_sealed = NULL, state_version = 0, \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = $11, parameter_references = $12 WHERE plan_id = $13 \
             AND status = $14",
                &p.description,
                &p.product_version_id,
                &p.portfolio_id,
                &p.parameters_sealed,
                &p.sensitive_parameters,
                &p.tags,
                &p.task_tags,
                &p.launch_role,
                &p.approval_config,
                PlanStatus::PreviewInProgress.as_str(),
                now_ms(),
                &p.parameter_references,
                &p.plan_id,
                from.as_str()
            ))
            .await?;
        Ok(done == 1)
    }

    /// Moves a plan from `from` to `to`, appending `record`, atomically. False when the plan was
    /// no longer in `from`.
    pub async fn transition_plan(&self, plan: &Plan, from: PlanStatus, to: PlanStatus, record: &PlanRecord) -> StoreResult<bool> {
        let plan_id = plan.plan_id.as_str();
        let mut tx = self.begin().await?;
        let moved = sql!(
            "UPDATE plans SET status = $1, lease_owner = NULL, lease_expires_at = NULL, updated_at = $2 WHERE plan_id = $3 AND status = $4",
            to.as_str(),
            now_ms(),
            plan_id,
            from.as_str()
        )
        .execute(&mut *tx)
        .await?;
        if moved != 1 {
            return Ok(false);
        }
        insert_record(&mut tx, plan_id, record).await?;
        let decided = match to {
            PlanStatus::ApplicationApproved => Some(EventType::PlanApproved),
            PlanStatus::ApplicationRejected => Some(EventType::PlanRejected),
            _ => None,
        };
        if let Some(event_type) = decided {
            super::webhook::enqueue(&mut tx, &plan_event(plan, event_type, to, Some(record))).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a plan and its records if it is still in `from`.
    pub async fn delete_plan(&self, plan_id: &str, from: PlanStatus) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let status: Option<String> = sql!("SELECT status FROM plans WHERE plan_id = $1", plan_id).value(&mut *tx).await?;
        if status.as_deref() != Some(from.as_str()) {
            return Ok(false);
        }
        sql!("DELETE FROM plan_records WHERE plan_id = $1", plan_id).execute(&mut *tx).await?;
        sql!("DELETE FROM plans WHERE plan_id = $1", plan_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a preview's outcome (with its plan file) if `fence` is still current. False when
    /// nothing changed.
    pub async fn finish_preview(&self, plan: &Plan, fence: &Fence, outcome: &PreviewOutcome) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let mut update = Sql::new("UPDATE plans SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ");
        update.int(now_ms());
        let submit = match outcome {
            PreviewOutcome::Succeeded { resource_changes, planned_outputs, plan_file_sealed, state_version, next } => {
                update.push(", status = ").text(next.as_str()).push(", status_message = ''");
                update.push(", resource_changes = ").text(resource_changes.as_str());
                update.push(", planned_outputs = ").text(planned_outputs.as_str());
                update.push(", plan_file_sealed = ").text(plan_file_sealed.as_str());
                update.push(", state_version = ").int(*state_version);
                *next == PlanStatus::ApplicationInProgress
            }
            PreviewOutcome::Failed { message } => {
                update.push(", status = ").text(PlanStatus::PreviewFailed.as_str()).push(", status_message = ").text(message.as_str());
                false
            }
        };
        Plan::TABLE.push_in_progress(&mut update, &plan.plan_id, Some(fence));
        if update.execute(&mut *tx).await? != 1 {
            return Ok(false);
        }
        if submit {
            insert_record(&mut tx, &plan.plan_id, &submit_record(plan)).await?;
            let waiting = plan_event(plan, EventType::PlanAwaitingApproval, PlanStatus::ApplicationInProgress, None);
            super::webhook::enqueue(&mut tx, &waiting).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Starts executing a plan that is in `from`: moves it to `ExecuteInProgress` and queues
    /// `task` on its provisioned product (created from `launch` for a launch plan, else moved to
    /// `UnderChange`), provided the product's state is still the previewed version; an upgrade
    /// campaign's execution also makes its `claim` on the campaign's item, and what the scheduler
    /// writes with the execution (`scheduled`) is written with it. Atomic.
    pub async fn start_plan_execution(
        &self,
        plan: &Plan,
        from: PlanStatus,
        launch: Option<&ProvisionedProduct>,
        task: &Task,
        claim: Option<&super::campaign::CampaignClaim>,
        scheduled: Option<&Scheduled>,
    ) -> StoreResult<Result<(), ExecutionRefusal>> {
        let mut tx = self.begin().await?;
        if super::dependency::closes_cycle(&mut tx, task).await? {
            return Ok(Err(ExecutionRefusal::Cycle));
        }
        let moved = sql!(
            "UPDATE plans SET status = $1, execute_task_id = $2, updated_at = $3 WHERE plan_id = $4 AND status = $5",
            PlanStatus::ExecuteInProgress.as_str(),
            &task.task_id,
            now_ms(),
            &plan.plan_id,
            from.as_str()
        )
        .execute(&mut *tx)
        .await?;
        if moved != 1 {
            return Ok(Err(ExecutionRefusal::Status));
        }
        match launch {
            Some(pp) => insert_provisioned_product(&mut tx, pp).await?,
            None if !mark_under_change(&mut tx, task).await? => return Ok(Err(ExecutionRefusal::UnderChange)),
            None => {}
        }
        // Checked after the product is held: no other task can write its state now.
        let version: i64 =
            sql!("SELECT COALESCE(MAX(version), 0) FROM terraform_states WHERE provisioned_product_id = $1", &plan.provisioned_product_id)
                .one(&mut *tx)
                .await?;
        if version != plan.state_version {
            return Ok(Err(ExecutionRefusal::Stale));
        }
        if let Some(claim) = claim {
            if !claim.claim(&mut tx, task).await? {
                return Ok(Err(ExecutionRefusal::Claimed));
            }
        }
        insert_task(&mut tx, task, scheduled).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// The newest state version of a provisioned product (0: none).
    pub async fn state_version(&self, provisioned_product_id: &str) -> StoreResult<i64> {
        sql!("SELECT COALESCE(MAX(version), 0) FROM terraform_states WHERE provisioned_product_id = $1", provisioned_product_id)
            .one(self.writer())
            .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::testing;

    /// A launch plan previewing, with an approval.
    pub(crate) fn sample_plan(id: &str) -> Plan {
        let now = now_ms();
        Plan {
            plan_id: id.into(),
            plan_name: format!("name-{id}"),
            description: String::new(),
            operation_type: OperationType::LaunchProduct,
            owner_principal_id: "1".into(),
            owner_principal_type: "RamUser".into(),
            owner_principal_name: "alice".into(),
            product_id: "prod-1".into(),
            product_version_id: "pv-1".into(),
            portfolio_id: "port-1".into(),
            provisioned_product_id: format!("pp-{id}").into(),
            provisioned_product_name: format!("demo-{id}"),
            stack_id: "stack".into(),
            stack_region_id: "cn-hangzhou".into(),
            parameters_sealed: "sealed".into(),
            sensitive_parameters: "[]".into(),
            tags: "[]".into(),
            task_tags: "[]".into(),
            launch_role: None,
            approval_config: Some("{}".into()),
            status: PlanStatus::PreviewInProgress,
            status_message: String::new(),
            resource_changes: "[]".into(),
            planned_outputs: "[]".into(),
            plan_file_sealed: None,
            state_version: 0,
            execute_task_id: None,
            created_at: now,
            updated_at: now,
            parameter_references: "[]".into(),
            product_name: String::new(),
        }
    }

    fn success(next: PlanStatus) -> PreviewOutcome {
        PreviewOutcome::Succeeded {
            resource_changes: r#"[{"Action":"Add"}]"#.into(),
            planned_outputs: "[]".into(),
            plan_file_sealed: "file".into(),
            state_version: 0,
            next,
        }
    }

    #[tokio::test]
    async fn a_plan_the_scheduler_makes_is_audited_with_it_and_only_then() {
        testing::each_store(|store| async move {
            let audit = super::super::audit::AuditEvent {
                request_id: "node-a".into(),
                ..super::super::audit::sample("CreateProvisionedProductPlan", "system", "pp-r")
            };
            let scheduled = Scheduled::from(audit);
            store.insert_plan(&sample_plan("plan-r"), Some(&scheduled)).await.unwrap();
            let again = store.insert_plan(&sample_plan("plan-r"), Some(&scheduled)).await;
            assert!(!matches!(again, Ok(None)), "the same plan twice: {again:?}");
            let query = super::super::audit::AuditQuery { resource_id: Some("pp-r".into()), ..Default::default() };
            let page = super::super::Page { number: 1, size: 10 };
            let (audited, _) = store.list_audit_events(&query, SortOrder::Asc, page).await.unwrap();
            assert_eq!(audited.iter().map(|e| e.request_id.as_str()).collect::<Vec<_>>(), ["node-a/plan-r"]);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_launch_plan_reserves_its_name_until_it_is_executed() {
        testing::each_store(|store| async move {
            let plan = Plan { provisioned_product_name: "Web".into(), ..sample_plan("plan-a") };
            assert_eq!(store.insert_plan(&plan, None).await.unwrap(), None);
            let second = Plan { provisioned_product_name: "web".into(), ..sample_plan("plan-b") };
            assert_eq!(store.insert_plan(&second, None).await.unwrap(), Some(NameHolder::Plan("plan-a".into())));
            assert!(store.plan("plan-b").await.unwrap().is_none(), "nothing written");
            let task = super::super::provisioning::tests::sample_task("task-l");
            let launch = ProvisionedProduct {
                provisioned_product_name: "WEB".into(),
                ..ProvisionedProduct::launched(&task, "1", "RamUser", "s".into())
            };
            assert_eq!(store.create_launch(&launch, &task).await.unwrap(), Some(NameHolder::Plan("plan-a".into())));
            // An update plan reserves nothing.
            let update = Plan { operation_type: OperationType::UpdateProvisionedProduct, ..second.clone() };
            assert_eq!(store.insert_plan(&update, None).await.unwrap(), None);
        })
        .await;
    }

    #[tokio::test]
    async fn a_preview_is_claimed_once_and_its_result_needs_the_lease() {
        testing::each_store(|store| async move {
            let plan = sample_plan("plan-a");
            store.insert_plan(&plan, None).await.unwrap();
            let (claimed, fence) = store.claim::<Plan>("w1", 60_000).await.unwrap().unwrap();
            assert_eq!((claimed.plan_id.as_str(), fence.epoch), ("plan-a", 1));
            assert!(store.claim::<Plan>("w2", 60_000).await.unwrap().is_none());
            assert!(store.renew_lease(&fence, 60_000).await.unwrap());
            let other = Fence { owner: "w2".into(), ..fence.clone() };
            assert!(!store.finish_preview(&plan, &other, &success(PlanStatus::PreviewSuccess)).await.unwrap());
            let stale = Fence { epoch: 0, ..fence.clone() };
            assert!(!store.finish_preview(&plan, &stale, &success(PlanStatus::PreviewSuccess)).await.unwrap());
            assert!(store.finish_preview(&plan, &fence, &success(PlanStatus::ApplicationInProgress)).await.unwrap());
            let done = store.plan("plan-a").await.unwrap().unwrap();
            assert_eq!(done.status, PlanStatus::ApplicationInProgress);
            assert_eq!(done.plan_file_sealed.as_deref(), Some("file"));
            let records = store.plan_records("plan-a").await.unwrap();
            assert_eq!(records.iter().map(|r| r.approval_action.as_str()).collect::<Vec<_>>(), ["Submit"]);
            assert_eq!(records[0].operator_principal_name, "alice");
        })
        .await;
    }

    #[tokio::test]
    async fn a_replan_writes_the_new_change_only_from_the_status_read() {
        testing::each_store(|store| async move {
            let plan = sample_plan("plan-r");
            store.insert_plan(&plan, None).await.unwrap();
            let replanned = Plan { description: "again".into(), parameter_references: "[{\"ParameterKey\":\"k\"}]".into(), ..plan };
            assert!(!store.replan(&replanned, PlanStatus::PreviewSuccess).await.unwrap(), "not in that status");
            assert!(store.replan(&replanned, PlanStatus::PreviewInProgress).await.unwrap());
            let read = store.plan("plan-r").await.unwrap().unwrap();
            assert_eq!((read.description.as_str(), read.parameter_references.as_str()), ("again", "[{\"ParameterKey\":\"k\"}]"));
        })
        .await;
    }

    #[tokio::test]
    async fn a_cancelled_preview_keeps_its_status_and_an_expired_one_fails() {
        testing::each_store(|store| async move {
            let plan = sample_plan("plan-b");
            store.insert_plan(&plan, None).await.unwrap();
            let (_, fence) = store.claim::<Plan>("w1", 60_000).await.unwrap().unwrap();
            let cancel = PlanRecord { approval_action: "Cancel".into(), ..submit_record(&plan) };
            assert!(store.transition_plan(&plan, PlanStatus::PreviewInProgress, PlanStatus::Canceled, &cancel).await.unwrap());
            assert!(!store.renew_lease(&fence, 60_000).await.unwrap());
            assert!(!store.finish_preview(&plan, &fence, &success(PlanStatus::PreviewSuccess)).await.unwrap());
            assert_eq!(store.plan("plan-b").await.unwrap().unwrap().status, PlanStatus::Canceled);

            let plan = sample_plan("plan-c");
            store.insert_plan(&plan, None).await.unwrap();
            let (_, dead) = store.claim::<Plan>("dead", -1).await.unwrap().unwrap();
            assert_eq!(store.expired::<Plan>().await.unwrap().len(), 1);
            let reaper = store.take_over(Plan::TABLE, "plan-c", "reaper").await.unwrap().unwrap();
            assert!(store.finish_preview(&plan, &reaper, &PreviewOutcome::Failed { message: "interrupted".into() }).await.unwrap());
            assert!(!store.finish_preview(&plan, &dead, &success(PlanStatus::PreviewSuccess)).await.unwrap(), "taken over");
            let failed = store.plan("plan-c").await.unwrap().unwrap();
            assert_eq!((failed.status, failed.status_message.as_str()), (PlanStatus::PreviewFailed, "interrupted"));
        })
        .await;
    }

    #[tokio::test]
    async fn execution_is_refused_when_the_state_moved_and_its_task_ends_the_plan() {
        testing::each_store(|store| async move {
            let task = crate::store::provisioning::tests::seed_task(&store, "task-1").await;
            let (_, fence) = store.claim::<Task>("w1", 60_000).await.unwrap().unwrap();
            store.save_state(&task.provisioned_product_id, &fence, "s1", None).await.unwrap();
            let outcome = crate::store::provisioning::TaskOutcome::Succeeded { outputs: "[]".into() };
            assert!(store.finish_task(&task, Some(&fence), &outcome, &[]).await.unwrap());
            let mut plan = sample_plan("plan-d");
            plan.operation_type = OperationType::UpdateProvisionedProduct;
            plan.provisioned_product_id = task.provisioned_product_id.clone();
            plan.status = PlanStatus::PreviewSuccess;
            store.insert_plan(&plan, None).await.unwrap();
            let mut update = task.clone();
            update.task_id = "task-2".into();
            update.task_type = OperationType::UpdateProvisionedProduct;
            let refused = store.start_plan_execution(&plan, PlanStatus::PreviewSuccess, None, &update, None, None).await.unwrap();
            assert_eq!(refused, Err(ExecutionRefusal::Stale));
            assert_eq!(store.plan("plan-d").await.unwrap().unwrap().status, PlanStatus::PreviewSuccess);
            assert!(store.task("task-2").await.unwrap().is_none());

            plan.state_version = 1;
            assert_eq!(store.start_plan_execution(&plan, PlanStatus::PreviewSuccess, None, &update, None, None).await.unwrap(), Ok(()));
            assert_eq!(store.plan_of_task("task-2").await.unwrap().unwrap().status, PlanStatus::ExecuteInProgress);
            let failed = crate::store::provisioning::TaskOutcome::Failed { message: "boom".into() };
            assert!(store.finish_task(&update, None, &failed, &[]).await.unwrap());
            let ended = store.plan("plan-d").await.unwrap().unwrap();
            assert_eq!((ended.status, ended.status_message.as_str()), (PlanStatus::ExecuteFailed, "boom"));
        })
        .await;
    }
}
