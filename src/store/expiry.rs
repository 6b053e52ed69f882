//! Expiry of provisioned products (an extension): each live provisioned product's expiry time
//! (`expires_at`), the latest warning told of for it (`expiry_warned_at`) and the first terminate
//! its expiry queued (`expiry_task_id`). A warning is written with the release of the scheduler's
//! job that tells it, and the first terminate with the `Expired` event, each in one transaction,
//! so a job run again after its node died tells nothing twice and queues no second terminate.
//! The rules (when to warn, when to retry) are the provisioning layer's.

use serde_json::json;

use super::audit::Scheduled;
use super::provisioning::{insert_task, mark_under_change, ChangeRefusal, ProvisionedProduct, Task};
use super::schedule::{release, Due, ScheduleFence};
use super::sql::{sql, Sql};
use super::webhook::{enqueue, Event};
use super::{Store, StoreResult};
use crate::model::{format_time, EventType, OperationType, ProvisionedProductStatus, TaskId};

/// Where a provisioned product's expiry stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryState {
    /// When it expires (ms since the epoch); `None`: never.
    pub expires_at: Option<i64>,
    /// The latest warning time told of for this expiry.
    pub warned_at: Option<i64>,
    /// The first terminate its expiry queued.
    pub task_id: Option<TaskId>,
}

/// The terminate an expiry queues: the first one records itself and tells webhooks (`Expired`);
/// a retry does neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryTermination {
    /// The expiry it carries out (ms since the epoch).
    pub expires_at: i64,
    /// Whether it is the first terminate of this expiry.
    pub first: bool,
}

/// An expiry event about `pp`, with its own `fields` added.
fn expiry_event(event_type: EventType, pp: &ProvisionedProduct, expires_at: i64, fields: serde_json::Value) -> Event {
    let mut body = json!({
        "ProvisionedProductId": pp.provisioned_product_id,
        "ProvisionedProductName": pp.provisioned_product_name,
        "ProductId": pp.product_id,
        "OwnerPrincipalId": pp.owner_principal_id,
        "ExpiryTime": format_time(expires_at),
    });
    if let (Some(body), serde_json::Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    Event { event_type, portfolio_id: pp.portfolio_id.clone(), fields: body }
}

impl Store {
    /// The database's clock: ms since the epoch (what scheduled jobs are due on).
    pub async fn clock_ms(&self) -> StoreResult<i64> {
        Sql::new(&format!("SELECT {}", self.dialect().clock())).one(self.writer()).await
    }

    /// Sets (`Some`) or removes (`None`) the expiry of the live provisioned product `id` unless it
    /// is `UnderChange`, forgetting the warnings told of the previous one; false (nothing written)
    /// when it is `UnderChange`, gone, or its expiry already queued a terminate.
    pub async fn set_expiry(&self, id: &str, expires_at: Option<i64>) -> StoreResult<bool> {
        let set = sql!(
            "UPDATE provisioned_products SET expires_at = $1, expiry_warned_at = NULL WHERE provisioned_product_id = $2 \
             AND terminated = 0 AND status <> $3 AND expiry_task_id IS NULL",
            expires_at,
            id,
            ProvisionedProductStatus::UnderChange
        );
        Ok(self.write(set).await? == 1)
    }

    /// Ids of the live provisioned products that have an expiry.
    pub async fn expiring_products(&self) -> StoreResult<Vec<String>> {
        let sql = Sql::new("SELECT provisioned_product_id FROM provisioned_products WHERE expires_at IS NOT NULL AND terminated = 0");
        self.fetch_all(&sql, |row| row.get("provisioned_product_id")).await
    }

    /// The expiry of the live provisioned product `id`.
    pub async fn expiry_state(&self, id: &str) -> StoreResult<Option<ExpiryState>> {
        let mut sql = Sql::new(
            "SELECT expires_at, expiry_warned_at, expiry_task_id FROM provisioned_products WHERE terminated = 0 AND provisioned_product_id = ",
        );
        sql.text(id);
        self.fetch_optional(&sql, |row| {
            Ok(ExpiryState {
                expires_at: row.get("expires_at")?,
                warned_at: row.get("expiry_warned_at")?,
                task_id: row.get("expiry_task_id")?,
            })
        })
        .await
    }

    /// Tells webhooks that `pp` expires at `expires_at` (`ExpiryWarning`), records `warning_at`
    /// as told, and releases the job `fence` holds due at `next_due` (ms, the database's clock),
    /// all in one transaction; false (nothing written) when the fence no longer holds the job or
    /// the expiry changed meanwhile.
    pub async fn warn_of_expiry(
        &self,
        fence: &ScheduleFence,
        pp: &ProvisionedProduct,
        expires_at: i64,
        warning_at: i64,
        next_due: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        if release(self.dialect(), fence, Due::At(next_due)).execute(&mut *tx).await? != 1 {
            return Ok(false);
        }
        let warned = sql!(
            "UPDATE provisioned_products SET expiry_warned_at = $1 WHERE provisioned_product_id = $2 AND expires_at = $3",
            warning_at,
            &pp.provisioned_product_id,
            expires_at
        )
        .execute(&mut *tx)
        .await?;
        if warned != 1 {
            return Ok(false);
        }
        let event = expiry_event(EventType::ExpiryWarning, pp, expires_at, json!({}));
        enqueue(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Queues the terminate `task` of `pp`'s expiry if `pp` is not `UnderChange`. The first
    /// records itself as the expiry's and tells webhooks (`Expired`, with its `TaskId`) in the
    /// same transaction. Refused, with nothing written, when `pp` is `UnderChange` or gone, or,
    /// for a first, when its expiry queued one already. What the scheduler writes with the
    /// terminate (`scheduled`) is written with it.
    pub async fn start_expiry_termination(
        &self,
        task: &Task,
        pp: &ProvisionedProduct,
        expiry: ExpiryTermination,
        scheduled: Option<&Scheduled>,
    ) -> StoreResult<Result<(), ChangeRefusal>> {
        let mut tx = self.begin().await?;
        if !mark_under_change(&mut tx, task).await? {
            return Ok(Err(ChangeRefusal::UnderChange));
        }
        if expiry.first {
            let first = sql!(
                "UPDATE provisioned_products SET expiry_task_id = $1 WHERE provisioned_product_id = $2 AND expiry_task_id IS NULL",
                &task.task_id,
                &task.provisioned_product_id
            )
            .execute(&mut *tx)
            .await?;
            if first != 1 {
                return Ok(Err(ChangeRefusal::ExpiryQueued));
            }
            let event = expiry_event(EventType::Expired, pp, expiry.expires_at, json!({"TaskId": task.task_id}));
            enqueue(&mut tx, &event).await?;
        }
        insert_task(&mut tx, task, scheduled).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// The terminates of the provisioned product `id` from its expiry's first (`first`) on,
    /// oldest first.
    pub async fn expiry_terminations(&self, id: &str, first: &TaskId) -> StoreResult<Vec<Task>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM tasks WHERE provisioned_product_id = ", Task::columns("")));
        sql.text(id).push(" AND task_type = ").text(OperationType::TerminateProvisionedProduct);
        sql.push(" AND created_at >= (SELECT created_at FROM tasks WHERE task_id = ").text(first.as_str());
        sql.push(") ORDER BY created_at, task_id");
        self.fetch_all(&sql, Task::from_row).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ScheduleKind;
    use crate::store::provisioning::tests::{sample_task, seed_task};
    use crate::store::provisioning::TaskOutcome;
    use crate::store::testing;

    #[tokio::test]
    async fn an_expiry_warns_once_and_queues_its_first_terminate_once() {
        testing::each_store(|store| async move {
            let launch = seed_task(&store, "task-x").await;
            let id = launch.provisioned_product_id.as_str().to_string();
            assert!(!store.set_expiry(&id, Some(5_000)).await.unwrap(), "UnderChange: refused");
            store.finish_task(&launch, None, &TaskOutcome::Succeeded { outputs: "[]".into() }, &[]).await.unwrap();
            assert!(store.set_expiry(&id, Some(5_000)).await.unwrap());
            assert_eq!(store.expiring_products().await.unwrap(), vec![id.clone()]);
            let pp = store.provisioned_product(&id).await.unwrap().unwrap();
            assert_eq!(pp.expires_at, Some(5_000));

            // A warning is written with the release of the job that tells it, once per fence.
            store.schedule(ScheduleKind::Expiry, &id, 0, -1).await.unwrap();
            let (_, fence) = store.claim_due_job("node-a", 60_000).await.unwrap().expect("due");
            assert!(store.warn_of_expiry(&fence, &pp, 5_000, 4_000, 4_500).await.unwrap());
            assert!(!store.warn_of_expiry(&fence, &pp, 5_000, 4_000, 4_500).await.unwrap(), "released: the fence writes nothing");
            let state = store.expiry_state(&id).await.unwrap().unwrap();
            assert_eq!((state.expires_at, state.warned_at, state.task_id), (Some(5_000), Some(4_000), None));
            let job = store.scheduled_job(ScheduleKind::Expiry, &id).await.unwrap().unwrap();
            assert_eq!(job.due_at, 4_500, "due at the time given, not after a delay");

            // The first terminate records itself; a second first is refused, even once the first ended.
            let mut first = sample_task("task-t1");
            first.task_type = OperationType::TerminateProvisionedProduct;
            first.provisioned_product_id = launch.provisioned_product_id.clone();
            let expiry = ExpiryTermination { expires_at: 5_000, first: true };
            assert_eq!(store.start_expiry_termination(&first, &pp, expiry, None).await.unwrap(), Ok(()));
            assert!(!store.set_expiry(&id, Some(9_000)).await.unwrap(), "expired: its expiry no longer changes");
            store.finish_task(&first, None, &TaskOutcome::Failed { message: "boom".into() }, &[]).await.unwrap();
            let mut again = sample_task("task-t2");
            again.task_type = OperationType::TerminateProvisionedProduct;
            again.provisioned_product_id = launch.provisioned_product_id.clone();
            let refused = store.start_expiry_termination(&again, &pp, expiry, None).await.unwrap();
            assert_eq!(refused, Err(ChangeRefusal::ExpiryQueued));
            let retry = ExpiryTermination { first: false, ..expiry };
            assert_eq!(store.start_expiry_termination(&again, &pp, retry, None).await.unwrap(), Ok(()));
            let state = store.expiry_state(&id).await.unwrap().unwrap();
            assert_eq!(state.task_id, Some(first.task_id.clone()));
            let tasks = store.expiry_terminations(&id, &first.task_id).await.unwrap();
            assert_eq!(tasks.iter().map(|t| t.task_id.as_str()).collect::<Vec<_>>(), vec!["task-t1", "task-t2"]);
        })
        .await;
    }
}
