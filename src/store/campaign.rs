//! Upgrade campaigns (an extension): a campaign (`upgrade_campaigns`) and one item per provisioned
//! product it selected (`upgrade_campaign_items`), each with the update plan previewing its
//! upgrade and, once started, the task executing that plan. An item's update starts in the
//! transaction that executes its plan ([`CampaignClaim`], through
//! [`Store::start_plan_execution`]): the item is marked `Updating` with the task's id only if it
//! is still `Planned` and its campaign `Running`, and the owner's `CampaignUpdateQueued` event is
//! written with it, so a node running the campaign's job again after another died never updates a
//! product twice. The rules (what to plan, when to start what) are the provisioning layer's.

use serde_json::json;

use super::provisioning::Task;
use super::sql::{insert, record, sql, Sql};
use super::webhook::{enqueue, Event};
use super::{now_ms, Page, Store, StoreResult};
use crate::model::{CampaignId, CampaignItemStatus, CampaignStatus, EventType, PlanId, ProvisionedProductId, TaskId};

record! {
    /// An upgrade campaign.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Campaign {
        pub campaign_id: CampaignId,
        pub product_id: String,
        /// The version the selected provisioned products are upgraded to.
        pub target_version_id: String,
        /// JSON array of the versions selected provisioned products run (all older than the
        /// target when none were named).
        pub source_version_ids: String,
        /// JSON object of the selection as asked: `{PortfolioIds, OwnerIds, Tags}`.
        pub selection: String,
        /// Provisioned products per wave.
        pub wave_size: i64,
        /// Most updates running at once.
        pub parallelism: i64,
        /// Failed updates (since the last start or resume) that stop it.
        pub failure_threshold: i64,
        pub status: CampaignStatus,
        /// Failed updates before the last start or resume (not counted against the threshold).
        pub failures_before: i64,
        /// The administrator who created it.
        pub created_by: String,
        /// ms since the epoch.
        pub created_at: i64,
        pub updated_at: i64,
    }
}

record! {
    /// One provisioned product of a campaign.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CampaignItem {
        pub campaign_id: CampaignId,
        /// Its place in the campaign (waves follow it).
        pub seq: i64,
        pub provisioned_product_id: ProvisionedProductId,
        pub provisioned_product_name: String,
        pub owner_principal_id: String,
        pub portfolio_id: String,
        /// The version it ran when selected.
        pub source_version_id: String,
        pub status: CampaignItemStatus,
        /// Why it was skipped, or how its plan or update failed.
        pub message: String,
        /// The update plan previewing its upgrade.
        pub plan_id: Option<PlanId>,
        /// The task executing that plan.
        pub task_id: Option<TaskId>,
        /// Resources its plan adds, changes in place, replaces and destroys.
        pub adds: i64,
        pub changes: i64,
        pub replaces: i64,
        pub destroys: i64,
        pub updated_at: i64,
    }
}

/// The claim on a campaign item that executing its plan makes, in the same transaction.
#[derive(Debug, Clone)]
pub struct CampaignClaim {
    pub campaign_id: CampaignId,
    pub provisioned_product_id: ProvisionedProductId,
    /// The owner's `CampaignUpdateQueued` event (the task's id is added to it).
    pub event: Event,
}

impl CampaignClaim {
    /// Marks the item `Updating` with `task`, if it is still `Planned` and its campaign
    /// `Running`, and writes the owner's event; false (nothing written)
    /// otherwise.
    pub(super) async fn claim(&self, tx: &mut super::Tx, task: &Task) -> StoreResult<bool> {
        let claimed = sql!(
            "UPDATE upgrade_campaign_items SET status = $1, task_id = $2, updated_at = $3 WHERE campaign_id = $4 \
             AND provisioned_product_id = $5 AND status = $6 AND task_id IS NULL \
             AND EXISTS (SELECT 1 FROM upgrade_campaigns c WHERE c.campaign_id = $4 AND c.status = $7)",
            CampaignItemStatus::Updating,
            &task.task_id,
            now_ms(),
            &self.campaign_id,
            &self.provisioned_product_id,
            CampaignItemStatus::Planned,
            CampaignStatus::Running
        )
        .execute(&mut **tx)
        .await?;
        if claimed != 1 {
            return Ok(false);
        }
        let mut event = self.event.clone();
        event.fields["TaskId"] = json!(task.task_id);
        enqueue(tx, &event).await?;
        Ok(true)
    }
}

/// The owner's event that an update of `item` to `target_version_id` by its campaign is queued.
pub fn update_queued_event(item: &CampaignItem, product_id: &str, target_version_id: &str) -> Event {
    Event {
        event_type: EventType::CampaignUpdateQueued,
        portfolio_id: item.portfolio_id.clone(),
        fields: json!({
            "CampaignId": item.campaign_id,
            "ProvisionedProductId": item.provisioned_product_id,
            "ProvisionedProductName": item.provisioned_product_name,
            "OwnerPrincipalId": item.owner_principal_id,
            "ProductId": product_id,
            "SourceProductVersionId": item.source_version_id,
            "ProductVersionId": target_version_id,
            "PlanId": item.plan_id,
        }),
    }
}

impl Store {
    /// Records a new campaign with its items.
    pub async fn create_campaign(&self, campaign: &Campaign, items: &[CampaignItem]) -> StoreResult<()> {
        super::audit::created(&campaign.campaign_id);
        let mut tx = self.begin().await?;
        insert("upgrade_campaigns", Campaign::COLUMNS, [campaign], |c, sql| c.bind_values(sql)).execute(&mut *tx).await?;
        for chunk in items.chunks(50) {
            insert("upgrade_campaign_items", CampaignItem::COLUMNS, chunk, |i, sql| i.bind_values(sql)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One campaign.
    pub async fn campaign(&self, id: &str) -> StoreResult<Option<Campaign>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM upgrade_campaigns WHERE campaign_id = ", Campaign::columns("")));
        sql.text(id);
        self.fetch_optional(&sql, Campaign::from_row).await
    }

    /// One page of campaigns, newest first, and their count.
    pub async fn list_campaigns(&self, page: Page) -> StoreResult<(Vec<Campaign>, i64)> {
        let mut select = Sql::new(&format!("SELECT {} FROM upgrade_campaigns", Campaign::columns("")));
        select.push(" ORDER BY created_at DESC, campaign_id DESC LIMIT ").int(page.size).push(" OFFSET ").int(page.offset());
        self.fetch_page(&select, &Sql::new("SELECT COUNT(*) FROM upgrade_campaigns"), page, Campaign::from_row).await
    }

    /// Ids of the campaigns with work under way: planning or running, or with a preview or an
    /// update whose outcome is not noted yet.
    pub async fn campaigns_to_advance(&self) -> StoreResult<Vec<CampaignId>> {
        let sql = sql!(
            "SELECT campaign_id FROM upgrade_campaigns c WHERE status IN ($1, $2) OR EXISTS (SELECT 1 FROM upgrade_campaign_items i \
             WHERE i.campaign_id = c.campaign_id AND i.status IN ($3, $4)) ORDER BY campaign_id",
            CampaignStatus::Planning,
            CampaignStatus::Running,
            CampaignItemStatus::Planning,
            CampaignItemStatus::Updating
        );
        self.fetch_all(&sql, |row| row.first()).await
    }

    /// A campaign's items, in order.
    pub async fn campaign_items(&self, id: &str) -> StoreResult<Vec<CampaignItem>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM upgrade_campaign_items WHERE campaign_id = ", CampaignItem::columns("")));
        sql.text(id).push(" ORDER BY seq");
        self.fetch_all(&sql, CampaignItem::from_row).await
    }

    /// Moves a campaign from one of `from` to `to` (setting `failures_before` when given); false
    /// (nothing written) when it is in none of them.
    pub async fn move_campaign(
        &self,
        id: &str,
        from: &[CampaignStatus],
        to: CampaignStatus,
        failures_before: Option<i64>,
    ) -> StoreResult<bool> {
        let mut sql = Sql::new("UPDATE upgrade_campaigns SET status = ");
        sql.text(to).push(", updated_at = ").int(now_ms());
        if let Some(failures) = failures_before {
            sql.push(", failures_before = ").int(failures);
        }
        sql.push(" WHERE campaign_id = ").text(id).push(" AND status IN (");
        sql.list(from.iter().map(super::sql::ToBind::to_bind)).push(")");
        Ok(self.write(sql).await? == 1)
    }

    /// Writes `item` (its status, message, plan, task and counts) if it is still in `from`; false
    /// (nothing written) when it is not.
    pub async fn save_campaign_item(&self, item: &CampaignItem, from: CampaignItemStatus) -> StoreResult<bool> {
        let saved = sql!(
            "UPDATE upgrade_campaign_items SET status = $1, message = $2, plan_id = $3, task_id = $4, adds = $5, changes = $6, \
             replaces = $7, destroys = $8, updated_at = $9 WHERE campaign_id = $10 AND provisioned_product_id = $11 AND status = $12",
            item.status,
            &item.message,
            &item.plan_id,
            &item.task_id,
            item.adds,
            item.changes,
            item.replaces,
            item.destroys,
            now_ms(),
            &item.campaign_id,
            &item.provisioned_product_id,
            from
        );
        Ok(self.write(saved).await? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::provisioning::tests::sample_task;
    use crate::store::testing;

    fn campaign(id: &str) -> Campaign {
        Campaign {
            campaign_id: id.into(),
            product_id: "prod-1".into(),
            target_version_id: "pv-2".into(),
            source_version_ids: "[\"pv-1\"]".into(),
            selection: "{}".into(),
            wave_size: 5,
            parallelism: 2,
            failure_threshold: 1,
            status: CampaignStatus::Planned,
            failures_before: 0,
            created_by: "admin".into(),
            created_at: now_ms(),
            updated_at: now_ms(),
        }
    }

    fn item(campaign: &str, seq: i64, status: CampaignItemStatus) -> CampaignItem {
        CampaignItem {
            campaign_id: campaign.into(),
            seq,
            provisioned_product_id: format!("pp-{seq}").into(),
            provisioned_product_name: format!("n{seq}"),
            owner_principal_id: "1".into(),
            portfolio_id: "port-1".into(),
            source_version_id: "pv-1".into(),
            status,
            message: String::new(),
            plan_id: Some(format!("plan-{seq}").into()),
            task_id: None,
            adds: 0,
            changes: 1,
            replaces: 0,
            destroys: 0,
            updated_at: now_ms(),
        }
    }

    #[tokio::test]
    async fn an_item_is_claimed_once_and_only_while_its_campaign_runs() {
        testing::each_store(|store| async move {
            let items = [item("c-1", 0, CampaignItemStatus::Planned), item("c-1", 1, CampaignItemStatus::Skipped)];
            store.create_campaign(&campaign("c-1"), &items).await.unwrap();
            assert_eq!(store.campaign_items("c-1").await.unwrap(), items);
            let claim = CampaignClaim {
                campaign_id: "c-1".into(),
                provisioned_product_id: "pp-0".into(),
                event: update_queued_event(&items[0], "prod-1", "pv-2"),
            };
            let task = sample_task("task-1");
            let try_claim = |task: Task| {
                let (store, claim) = (store.clone(), claim.clone());
                async move {
                    let mut tx = store.begin().await.unwrap();
                    let claimed = claim.claim(&mut tx, &task).await.unwrap();
                    tx.commit().await.unwrap();
                    claimed
                }
            };
            assert!(!try_claim(task.clone()).await, "a Planned campaign starts no update");
            assert!(store.move_campaign("c-1", &[CampaignStatus::Planned], CampaignStatus::Running, Some(0)).await.unwrap());
            assert!(!store.move_campaign("c-1", &[CampaignStatus::Planned], CampaignStatus::Running, None).await.unwrap());
            assert!(try_claim(task.clone()).await);
            assert!(!try_claim(sample_task("task-2")).await, "claimed once");
            let claimed = &store.campaign_items("c-1").await.unwrap()[0];
            assert_eq!((claimed.status, claimed.task_id.as_deref()), (CampaignItemStatus::Updating, Some("task-1")));

            let done = CampaignItem { status: CampaignItemStatus::Succeeded, ..claimed.clone() };
            assert!(!store.save_campaign_item(&done, CampaignItemStatus::Planned).await.unwrap());
            assert!(store.save_campaign_item(&done, CampaignItemStatus::Updating).await.unwrap());
            assert_eq!(store.campaigns_to_advance().await.unwrap(), vec![CampaignId::from("c-1")]);
            assert!(store.move_campaign("c-1", &[CampaignStatus::Running], CampaignStatus::Paused, None).await.unwrap());
            assert!(store.campaigns_to_advance().await.unwrap().is_empty(), "paused, nothing under way");
            let (listed, total) = store.list_campaigns(Page { number: 1, size: 10 }).await.unwrap();
            assert_eq!((listed[0].status, total), (CampaignStatus::Paused, 1));
        })
        .await;
    }
}
