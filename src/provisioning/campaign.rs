//! Upgrade campaigns (an extension): an administrator upgrades the provisioned products of a
//! product that run some older versions (selected by portfolio, owner and tags) to a target
//! version. The campaign first previews each one's update as an update plan of its owner (the
//! plan machinery's `ResourceChanges`, summed into adds, changes, replaces and destroys), then,
//! once started, executes those plans in waves of `WaveSize`, at most `Parallelism` at once, each
//! an ordinary `UpdateProvisionedProduct` task on behalf of the owner; it stops when
//! `FailureThreshold` updates failed since it was started or resumed. `Pinned` provisioned products
//! are skipped, and so are those whose updates an `Approval` constraint covers (a campaign does
//! not stand in for their approvers).
//!
//! The scheduler's `UpgradeCampaign` job of each campaign ([`Provisioner::advance_campaign`])
//! does the work: it notes the outcome of each preview and update, and starts the next updates.
//! Each update starts in the transaction that executes its plan and marks its item
//! ([`crate::store::campaign::CampaignClaim`]), so a job run again after its node died updates no
//! product twice.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::plan::ResourceChange;
use super::queue::Provisioner;
use super::schedule::on_behalf;
use super::{tag_pairs, tags_from_json, Tag};
use crate::catalog::error::DomainError;
use crate::catalog::wire::{format_time, Paged, Paging};
use crate::model::{CampaignId, CampaignItemStatus, CampaignStatus, PlanId, ProvisionedProductId, ScheduleKind, TaskId, UpdatePolicy};
use crate::model::{PlanStatus, ProvisionedProductStatus, TaskStatus};
use crate::store::campaign::{update_queued_event, Campaign, CampaignClaim, CampaignItem};
use crate::store::now_ms;
use crate::store::plan::ExecutionRefusal;
use crate::store::principal::Principal;
use crate::store::provisioning::ProvisionedProduct;

/// Default `WaveSize`.
const DEFAULT_WAVE_SIZE: i64 = 10;

/// Default `Parallelism`.
const DEFAULT_PARALLELISM: i64 = 5;

/// Default `FailureThreshold`.
const DEFAULT_FAILURE_THRESHOLD: i64 = 1;

/// How long a campaign's job waits before it looks again at previews and updates under way.
pub const POLL_MS: i64 = 2_000;

/// `CreateUpgradeCampaign`'s request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateCampaign {
    pub product_id: String,
    pub target_product_version_id: String,
    /// The versions to upgrade from; empty: every version created before the target.
    #[serde(default)]
    pub source_product_version_ids: Vec<String>,
    /// Only provisioned products launched through these portfolios (empty: any).
    #[serde(default)]
    pub portfolio_ids: Vec<String>,
    /// Only these owners' provisioned products (empty: anyone's).
    #[serde(default)]
    pub owner_ids: Vec<String>,
    /// Only provisioned products whose last successful launch or update carried every one of these tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave_size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i64>,
}

/// The request of the actions naming one campaign.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CampaignIdRequest {
    pub campaign_id: String,
}

/// `ListUpgradeCampaigns`' request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCampaigns {
    #[serde(flatten)]
    pub paging: Paging,
}

/// A campaign's id and status: what creating it and moving it answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CampaignState {
    pub campaign_id: CampaignId,
    pub status: CampaignStatus,
}

/// What a campaign's plans and updates come to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CampaignSummary {
    /// Provisioned products the campaign selected.
    pub selected: usize,
    /// How many are in each item status (only the statuses some item has).
    pub statuses: std::collections::BTreeMap<String, usize>,
    /// Resources the previewed updates add, change in place, replace and destroy, in total.
    pub add: i64,
    pub change: i64,
    pub replace: i64,
    pub destroy: i64,
    /// The provisioned products whose update destroys or replaces resources.
    pub destroying: Vec<ProvisionedProductId>,
    /// Failed updates since the campaign was last started or resumed (it stops at `FailureThreshold`).
    pub failures: i64,
}

/// One provisioned product of a campaign, as answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CampaignItemDetail {
    pub provisioned_product_id: ProvisionedProductId,
    pub provisioned_product_name: String,
    pub owner_principal_id: String,
    pub portfolio_id: String,
    pub source_product_version_id: String,
    pub status: CampaignItemStatus,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Its wave (from 1), when it is upgraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<PlanId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    pub add: i64,
    pub change: i64,
    pub replace: i64,
    pub destroy: i64,
}

/// A campaign as answered: its settings, status and summary, and (`GetUpgradeCampaign`) its items.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CampaignDetail {
    pub campaign_id: CampaignId,
    pub product_id: String,
    pub target_product_version_id: String,
    pub source_product_version_ids: Vec<String>,
    pub portfolio_ids: Vec<String>,
    pub owner_ids: Vec<String>,
    pub tags: Vec<Tag>,
    pub wave_size: i64,
    pub parallelism: i64,
    pub failure_threshold: i64,
    pub status: CampaignStatus,
    pub created_by: String,
    pub create_time: String,
    pub update_time: String,
    pub summary: CampaignSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<CampaignItemDetail>>,
}

/// `GetUpgradeCampaign`'s answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetCampaignAnswer {
    pub upgrade_campaign: CampaignDetail,
}

/// `ListUpgradeCampaigns`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCampaignsAnswer {
    #[serde(flatten)]
    pub page: Paged,
    pub upgrade_campaigns: Vec<CampaignDetail>,
}

/// The selection a campaign was created with, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Selection {
    portfolio_ids: Vec<String>,
    owner_ids: Vec<String>,
    tags: Vec<Tag>,
}

/// What a campaign's job leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignNext {
    /// Run again in [`POLL_MS`].
    Poll,
    /// Nothing to watch until an administrator moves the campaign: the job goes.
    Idle,
}

/// Items whose upgrade is part of the campaign's waves.
fn in_waves(status: CampaignItemStatus) -> bool {
    !matches!(status, CampaignItemStatus::Skipped | CampaignItemStatus::PlanFailed | CampaignItemStatus::Canceled)
}

/// Items that are done.
fn ended(status: CampaignItemStatus) -> bool {
    !matches!(
        status,
        CampaignItemStatus::Pending | CampaignItemStatus::Planning | CampaignItemStatus::Planned | CampaignItemStatus::Updating
    )
}

/// The wave (from 0) of each item that is upgraded, by position in `items`.
fn waves(items: &[CampaignItem], wave_size: i64) -> Vec<Option<usize>> {
    let size = wave_size.max(1) as usize;
    let mut next = 0;
    items
        .iter()
        .map(|item| {
            in_waves(item.status).then(|| {
                next += 1;
                (next - 1) / size
            })
        })
        .collect()
}

/// The failed updates of `items`.
fn failures(items: &[CampaignItem]) -> i64 {
    items.iter().filter(|i| i.status == CampaignItemStatus::Failed).count() as i64
}

/// Sums `items` up for `campaign`.
pub fn summarize(campaign: &Campaign, items: &[CampaignItem]) -> CampaignSummary {
    let mut summary = CampaignSummary { selected: items.len(), ..CampaignSummary::default() };
    for item in items {
        *summary.statuses.entry(item.status.to_string()).or_default() += 1;
        summary.add += item.adds;
        summary.change += item.changes;
        summary.replace += item.replaces;
        summary.destroy += item.destroys;
        if item.destroys > 0 || item.replaces > 0 {
            summary.destroying.push(item.provisioned_product_id.clone());
        }
    }
    summary.failures = failures(items) - campaign.failures_before;
    summary
}

/// (adds, in-place changes, replaces, destroys) of a plan's `ResourceChanges` (a JSON array);
/// a `Conditional` replacement counts as a replacement.
pub fn count_changes(resource_changes: &str) -> (i64, i64, i64, i64) {
    let changes: Vec<ResourceChange> = serde_json::from_str(resource_changes).unwrap_or_default();
    changes.iter().fold((0, 0, 0, 0), |(add, change, replace, destroy), c| match (c.action.as_str(), c.replacement.as_str()) {
        ("Add", _) => (add + 1, change, replace, destroy),
        ("Remove", _) => (add, change, replace, destroy + 1),
        ("Modify", "True" | "Conditional") => (add, change, replace + 1, destroy),
        ("Modify", _) => (add, change + 1, replace, destroy),
        _ => (add, change, replace, destroy),
    })
}

/// `409 InvalidStatus.UpgradeCampaign`.
fn refuse_status(campaign: &Campaign, action: &str, why: &str) -> DomainError {
    DomainError::invalid_status(
        "UpgradeCampaign",
        format!("The upgrade campaign {} is {}; it cannot be {action}.{why}", campaign.campaign_id, campaign.status),
    )
}

/// A count parameter: at least 1 and at most `max`, else `default` when absent.
fn count(name: &str, value: Option<i64>, default: i64, max: i64) -> Result<i64, DomainError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(DomainError::invalid_parameter(name, format!("The parameter {name} must be between 1 and {max}, not {n}."))),
    }
}

/// Whether `tags` holds every one of `wanted`.
fn has_tags(tags: &[(String, String)], wanted: &[(String, String)]) -> bool {
    wanted.iter().all(|w| tags.contains(w))
}

impl Provisioner<'_> {
    /// `CreateUpgradeCampaign`: selects the provisioned products to upgrade and schedules the
    /// previews of their updates. Administrators only (the action table says so).
    pub async fn create_campaign(&self, principal: &Principal, req: CreateCampaign) -> Result<CampaignState, DomainError> {
        let wave_size = count("WaveSize", req.wave_size, DEFAULT_WAVE_SIZE, 1000)?;
        let parallelism = count("Parallelism", req.parallelism, DEFAULT_PARALLELISM, 100)?;
        let failure_threshold = count("FailureThreshold", req.failure_threshold, DEFAULT_FAILURE_THRESHOLD, 10_000)?;
        self.store.product(&req.product_id).await?.ok_or_else(|| DomainError::not_found("Product", &req.product_id))?;
        let target =
            crate::catalog::version::launchable_version(self.store, &req.product_id, &req.target_product_version_id).await?.version;
        let versions = self.store.product_versions(&req.product_id, false).await?;
        let sources: Vec<String> = if req.source_product_version_ids.is_empty() {
            versions.iter().filter(|v| v.created_at < target.created_at).map(|v| v.product_version_id.clone()).collect()
        } else {
            for id in &req.source_product_version_ids {
                if id == &target.product_version_id || !versions.iter().any(|v| &v.product_version_id == id) {
                    return Err(DomainError::invalid_parameter(
                        "SourceProductVersionIds",
                        format!("The source version {id} is not another version of the product {}.", req.product_id),
                    ));
                }
            }
            req.source_product_version_ids.clone()
        };
        let wanted_tags = tag_pairs(req.tags.clone());
        let now = now_ms();
        let campaign_id = CampaignId::new();
        let mut items = Vec::new();
        for pp in self.store.provisioned_products_of(None, &req.product_id).await? {
            let selected = sources.contains(&pp.product_version_id)
                && (req.portfolio_ids.is_empty() || req.portfolio_ids.contains(&pp.portfolio_id))
                && (req.owner_ids.is_empty() || req.owner_ids.contains(&pp.owner_principal_id))
                && (wanted_tags.is_empty() || has_tags(&self.last_tags(&pp).await?, &wanted_tags));
            if !selected {
                continue;
            }
            let pinned = pp.update_policy == UpdatePolicy::Pinned;
            items.push(CampaignItem {
                campaign_id: campaign_id.clone(),
                seq: items.len() as i64,
                provisioned_product_id: pp.provisioned_product_id,
                provisioned_product_name: pp.provisioned_product_name,
                owner_principal_id: pp.owner_principal_id,
                portfolio_id: pp.portfolio_id,
                source_version_id: pp.product_version_id,
                status: if pinned { CampaignItemStatus::Skipped } else { CampaignItemStatus::Pending },
                message: if pinned { PINNED.into() } else { String::new() },
                plan_id: None,
                task_id: None,
                adds: 0,
                changes: 0,
                replaces: 0,
                destroys: 0,
                updated_at: now,
            });
        }
        let selection = Selection { portfolio_ids: req.portfolio_ids, owner_ids: req.owner_ids, tags: req.tags };
        let campaign = Campaign {
            campaign_id: campaign_id.clone(),
            product_id: req.product_id,
            target_version_id: target.product_version_id,
            source_version_ids: json!(sources).to_string(),
            selection: serde_json::to_string(&selection).map_err(|e| DomainError::Internal(e.to_string()))?,
            wave_size,
            parallelism,
            failure_threshold,
            status: CampaignStatus::Planning,
            failures_before: 0,
            created_by: principal.principal_id.clone(),
            created_at: now,
            updated_at: now,
        };
        self.store.create_campaign(&campaign, &items).await?;
        self.store.schedule(ScheduleKind::UpgradeCampaign, &campaign_id, POLL_MS, 0).await?;
        Ok(CampaignState { campaign_id, status: CampaignStatus::Planning })
    }

    /// The tags of `pp`'s last successful launch or update.
    async fn last_tags(&self, pp: &ProvisionedProduct) -> Result<Vec<(String, String)>, DomainError> {
        let Some(id) = &pp.last_successful_provisioning_task_id else { return Ok(Vec::new()) };
        Ok(self.store.task(id).await?.map(|t| tags_from_json(&t.task_tags)).unwrap_or_default())
    }

    /// The campaign `id`.
    async fn campaign(&self, id: &str) -> Result<Campaign, DomainError> {
        self.store.campaign(id).await?.ok_or_else(|| DomainError::not_found("UpgradeCampaign", id))
    }

    /// A campaign as answered, with its items when `with_items`.
    async fn campaign_detail(&self, campaign: Campaign, with_items: bool) -> Result<CampaignDetail, DomainError> {
        let items = self.store.campaign_items(&campaign.campaign_id).await?;
        let summary = summarize(&campaign, &items);
        let waves = waves(&items, campaign.wave_size);
        let details = with_items.then(|| {
            items
                .into_iter()
                .zip(waves)
                .map(|(item, wave)| CampaignItemDetail {
                    provisioned_product_id: item.provisioned_product_id,
                    provisioned_product_name: item.provisioned_product_name,
                    owner_principal_id: item.owner_principal_id,
                    portfolio_id: item.portfolio_id,
                    source_product_version_id: item.source_version_id,
                    status: item.status,
                    message: item.message,
                    wave: wave.map(|w| w + 1),
                    plan_id: item.plan_id,
                    task_id: item.task_id,
                    add: item.adds,
                    change: item.changes,
                    replace: item.replaces,
                    destroy: item.destroys,
                })
                .collect()
        });
        let selection: Selection = serde_json::from_str(&campaign.selection).unwrap_or_default();
        Ok(CampaignDetail {
            campaign_id: campaign.campaign_id,
            product_id: campaign.product_id,
            target_product_version_id: campaign.target_version_id,
            source_product_version_ids: serde_json::from_str(&campaign.source_version_ids).unwrap_or_default(),
            portfolio_ids: selection.portfolio_ids,
            owner_ids: selection.owner_ids,
            tags: selection.tags,
            wave_size: campaign.wave_size,
            parallelism: campaign.parallelism,
            failure_threshold: campaign.failure_threshold,
            status: campaign.status,
            created_by: campaign.created_by,
            create_time: format_time(campaign.created_at),
            update_time: format_time(campaign.updated_at),
            summary,
            items: details,
        })
    }

    /// `GetUpgradeCampaign`: a campaign with its summary and items.
    pub async fn get_campaign(&self, req: CampaignIdRequest) -> Result<GetCampaignAnswer, DomainError> {
        let campaign = self.campaign(&req.campaign_id).await?;
        Ok(GetCampaignAnswer { upgrade_campaign: self.campaign_detail(campaign, true).await? })
    }

    /// `ListUpgradeCampaigns`: campaigns with their summaries, newest first.
    pub async fn list_campaigns(&self, req: ListCampaigns) -> Result<ListCampaignsAnswer, DomainError> {
        let (campaigns, total) = self.store.list_campaigns(req.paging.page()).await?;
        let mut upgrade_campaigns = Vec::with_capacity(campaigns.len());
        for campaign in campaigns {
            upgrade_campaigns.push(self.campaign_detail(campaign, false).await?);
        }
        Ok(ListCampaignsAnswer { page: req.paging.answer(total), upgrade_campaigns })
    }

    /// Moves a campaign from one of `from` to `to` (the failures so far no longer counted when
    /// it runs again) and has its job look at it at once.
    async fn move_campaign(
        &self,
        req: CampaignIdRequest,
        from: &[CampaignStatus],
        to: CampaignStatus,
        action: &str,
        why: &str,
    ) -> Result<CampaignState, DomainError> {
        let campaign = self.campaign(&req.campaign_id).await?;
        let failures_before = (to == CampaignStatus::Running).then_some(failures(&self.store.campaign_items(&req.campaign_id).await?));
        if !from.contains(&campaign.status) || !self.store.move_campaign(&campaign.campaign_id, from, to, failures_before).await? {
            return Err(refuse_status(&campaign, action, why));
        }
        self.store.schedule(ScheduleKind::UpgradeCampaign, &campaign.campaign_id, POLL_MS, 0).await?;
        Ok(CampaignState { campaign_id: campaign.campaign_id, status: to })
    }

    /// `StartUpgradeCampaign`: starts the updates of a campaign whose previews are done.
    pub async fn start_campaign(&self, req: CampaignIdRequest) -> Result<CampaignState, DomainError> {
        let why = " Start it once its plans are previewed (Planned); a paused or stopped campaign is resumed.";
        self.move_campaign(req, &[CampaignStatus::Planned], CampaignStatus::Running, "started", why).await
    }

    /// `PauseUpgradeCampaign`: no update starts until it is resumed (those running finish).
    pub async fn pause_campaign(&self, req: CampaignIdRequest) -> Result<CampaignState, DomainError> {
        self.move_campaign(req, &[CampaignStatus::Running], CampaignStatus::Paused, "paused", " Only a running campaign is paused.").await
    }

    /// `ResumeUpgradeCampaign`: runs a paused or stopped campaign again; the failures so far no
    /// longer count against its threshold.
    pub async fn resume_campaign(&self, req: CampaignIdRequest) -> Result<CampaignState, DomainError> {
        let from = [CampaignStatus::Paused, CampaignStatus::Stopped];
        self.move_campaign(req, &from, CampaignStatus::Running, "resumed", " Only a paused or stopped campaign is resumed.").await
    }

    /// `CancelUpgradeCampaign`: ends a campaign for good. Updates not started never will (their
    /// plans are cancelled); those running finish.
    pub async fn cancel_campaign(&self, req: CampaignIdRequest) -> Result<CampaignState, DomainError> {
        let from =
            [CampaignStatus::Planning, CampaignStatus::Planned, CampaignStatus::Running, CampaignStatus::Paused, CampaignStatus::Stopped];
        let state =
            self.move_campaign(req, &from, CampaignStatus::Canceled, "cancelled", " A completed or cancelled campaign is final.").await?;
        for item in self.store.campaign_items(&state.campaign_id).await? {
            if matches!(item.status, CampaignItemStatus::Pending | CampaignItemStatus::Planning | CampaignItemStatus::Planned) {
                self.drop_item(item, CampaignItemStatus::Canceled, "The campaign was cancelled before its update started.").await?;
            }
        }
        Ok(state)
    }

    /// Ends `item` in `status` with `message`, and cancels its plan if it has one still open.
    async fn drop_item(&self, item: CampaignItem, status: CampaignItemStatus, message: &str) -> Result<(), DomainError> {
        let from = item.status;
        if let Some(plan) = &item.plan_id {
            if let Some(plan) = self.store.plan(plan).await? {
                let record = crate::store::plan::PlanRecord {
                    approval_action: "Cancel".into(),
                    operator_principal_id: super::schedule::SYSTEM.into(),
                    operator_principal_type: super::schedule::SYSTEM.into(),
                    operator_principal_name: super::schedule::SYSTEM.into(),
                    comment: format!("Upgrade campaign {}: {message}", item.campaign_id),
                    created_at: now_ms(),
                };
                if super::plan::allows(plan.status, super::plan::PlanOperation::Cancel, plan.approval_config.is_some()) {
                    self.store.transition_plan(&plan, plan.status, PlanStatus::Canceled, &record).await?;
                }
            }
        }
        let dropped = CampaignItem { status, message: message.to_string(), ..item };
        self.store.save_campaign_item(&dropped, from).await?;
        Ok(())
    }

    /// Runs the `UpgradeCampaign` job of the campaign `id` once: notes the outcome of each
    /// preview and update under way, previews the items not planned yet, and, while the campaign
    /// runs, stops it at its failure threshold, completes it when every wave is done, or starts
    /// the next updates of the current wave, each audited as `UpdateProvisionedProduct` by the
    /// scheduler on `node` ([`super::schedule::SYSTEM`]) on behalf of the owner. Answers what the job does next.
    pub async fn advance_campaign(&self, id: &str, node: &str) -> Result<CampaignNext, DomainError> {
        let Some(campaign) = self.store.campaign(id).await? else { return Ok(CampaignNext::Idle) };
        let live = matches!(campaign.status, CampaignStatus::Planning | CampaignStatus::Running);
        for item in self.store.campaign_items(id).await? {
            match item.status {
                CampaignItemStatus::Pending if live => self.plan_item(&campaign, item).await?,
                CampaignItemStatus::Planning => self.note_preview(item).await?,
                CampaignItemStatus::Updating => self.note_update(item).await?,
                _ => {}
            }
        }
        let items = self.store.campaign_items(id).await?;
        let watching = items.iter().any(|i| matches!(i.status, CampaignItemStatus::Planning | CampaignItemStatus::Updating));
        let mut queued = 0;
        match campaign.status {
            CampaignStatus::Planning
                if !items.iter().any(|i| matches!(i.status, CampaignItemStatus::Pending | CampaignItemStatus::Planning)) =>
            {
                self.store.move_campaign(id, &[CampaignStatus::Planning], CampaignStatus::Planned, None).await?;
                return Ok(CampaignNext::Idle);
            }
            CampaignStatus::Running => {
                if failures(&items) - campaign.failures_before >= campaign.failure_threshold {
                    self.store.move_campaign(id, &[CampaignStatus::Running], CampaignStatus::Stopped, None).await?;
                } else if items.iter().all(|i| ended(i.status)) {
                    self.store.move_campaign(id, &[CampaignStatus::Running], CampaignStatus::Completed, None).await?;
                    return Ok(CampaignNext::Idle);
                } else {
                    queued = self.start_wave(&campaign, &items, node).await?;
                }
            }
            _ => {}
        }
        Ok(if live || watching || queued > 0 { CampaignNext::Poll } else { CampaignNext::Idle })
    }

    /// Queues the preview of `item`'s update as an update plan of its owner, or skips it.
    async fn plan_item(&self, campaign: &Campaign, item: CampaignItem) -> Result<(), DomainError> {
        let Some(pp) = self.store.provisioned_product(&item.provisioned_product_id).await? else {
            return self.drop_item(item, CampaignItemStatus::Skipped, "It was terminated.").await;
        };
        if pp.update_policy == UpdatePolicy::Pinned {
            return self.drop_item(item, CampaignItemStatus::Skipped, PINNED).await;
        }
        if pp.product_version_id == campaign.target_version_id {
            return self.drop_item(item, CampaignItemStatus::Skipped, ON_TARGET).await;
        }
        if pp.status == ProvisionedProductStatus::UnderChange {
            return Ok(()); // Planned once its task ends.
        }
        let Some(owner) = self.owner(&pp).await? else {
            return self.drop_item(item, CampaignItemStatus::PlanFailed, "Its owner no longer exists.").await;
        };
        let from = item.status;
        let item = match self.upgrade_plan(&owner, &pp, &campaign.target_version_id, &campaign.campaign_id).await {
            Ok(Some(plan)) => CampaignItem { status: CampaignItemStatus::Planning, plan_id: Some(plan.plan_id), ..item },
            Ok(None) => CampaignItem { status: CampaignItemStatus::Skipped, message: APPROVAL.into(), ..item },
            Err(e @ (DomainError::Internal(_) | DomainError::Store(_))) => return Err(e),
            Err(e) => CampaignItem { status: CampaignItemStatus::PlanFailed, message: e.to_string(), ..item },
        };
        self.store.save_campaign_item(&item, from).await?;
        Ok(())
    }

    /// Notes the outcome of `item`'s preview, when it has one.
    async fn note_preview(&self, item: CampaignItem) -> Result<(), DomainError> {
        let plan = match &item.plan_id {
            Some(id) => self.store.plan(id).await?,
            None => None,
        };
        let noted = match plan {
            Some(plan) if plan.status == PlanStatus::PreviewInProgress => return Ok(()),
            Some(plan) if plan.status == PlanStatus::PreviewSuccess => {
                let (adds, changes, replaces, destroys) = count_changes(&plan.resource_changes);
                CampaignItem {
                    status: CampaignItemStatus::Planned,
                    message: String::new(),
                    adds,
                    changes,
                    replaces,
                    destroys,
                    ..item.clone()
                }
            }
            Some(plan) if plan.status == PlanStatus::PreviewFailed => {
                CampaignItem { status: CampaignItemStatus::PlanFailed, message: plan.status_message, ..item.clone() }
            }
            Some(plan) if plan.approval_config.is_some() => return self.drop_item(item, CampaignItemStatus::Skipped, APPROVAL).await,
            _ => CampaignItem {
                status: CampaignItemStatus::PlanFailed,
                message: "Its plan was cancelled or deleted by its owner.".into(),
                ..item.clone()
            },
        };
        self.store.save_campaign_item(&noted, item.status).await?;
        Ok(())
    }

    /// Notes the outcome of `item`'s update, when it has one.
    async fn note_update(&self, item: CampaignItem) -> Result<(), DomainError> {
        let Some(task) = (match &item.task_id {
            Some(id) => self.store.task(id).await?,
            None => None,
        }) else {
            return Ok(());
        };
        let noted = match task.status {
            TaskStatus::InProgress => return Ok(()),
            TaskStatus::Succeeded => CampaignItem { status: CampaignItemStatus::Succeeded, ..item.clone() },
            TaskStatus::Failed => CampaignItem { status: CampaignItemStatus::Failed, message: task.status_message, ..item.clone() },
        };
        self.store.save_campaign_item(&noted, item.status).await?;
        Ok(())
    }

    /// Starts the next updates of the current wave (the first with items not ended), keeping at
    /// most `Parallelism` running; how many it started.
    async fn start_wave(&self, campaign: &Campaign, items: &[CampaignItem], node: &str) -> Result<usize, DomainError> {
        let waves = waves(items, campaign.wave_size);
        let current = items.iter().zip(&waves).filter(|(item, _)| !ended(item.status)).find_map(|(_, wave)| *wave);
        let Some(current) = current else { return Ok(0) };
        let wave: Vec<&CampaignItem> = items.iter().zip(&waves).filter(|(_, w)| **w == Some(current)).map(|(i, _)| i).collect();
        let running = wave.iter().filter(|i| i.status == CampaignItemStatus::Updating).count() as i64;
        let mut free = campaign.parallelism - running;
        let mut queued = 0;
        for item in wave.into_iter().filter(|i| i.status == CampaignItemStatus::Planned) {
            if free <= 0 {
                break;
            }
            if self.start_update(campaign, item.clone(), node).await? {
                queued += 1;
                free -= 1;
            }
        }
        Ok(queued)
    }

    /// Executes `item`'s plan on behalf of its owner, marking the item `Updating` in the same
    /// transaction; a plan the product's changes made stale is previewed again, a product that
    /// became `Pinned` (or whose updates now need an approval) is skipped.
    /// Whether it queued the update, audited (as by the scheduler on `node`) in that transaction too.
    async fn start_update(&self, campaign: &Campaign, item: CampaignItem, node: &str) -> Result<bool, DomainError> {
        let (Some(pp), Some(plan_id)) = (self.store.provisioned_product(&item.provisioned_product_id).await?, item.plan_id.clone()) else {
            self.drop_item(item, CampaignItemStatus::Skipped, "It was terminated.").await?;
            return Ok(false);
        };
        if pp.update_policy == UpdatePolicy::Pinned || pp.product_version_id == campaign.target_version_id {
            let why = if pp.update_policy == UpdatePolicy::Pinned { PINNED } else { ON_TARGET };
            self.drop_item(item, CampaignItemStatus::Skipped, why).await?;
            return Ok(false);
        }
        let (Some(owner), Some(plan)) = (self.owner(&pp).await?, self.store.plan(&plan_id).await?) else {
            self.drop_item(item, CampaignItemStatus::Failed, "Its owner or its plan no longer exists.").await?;
            return Ok(false);
        };
        if plan.status != PlanStatus::PreviewSuccess {
            // Its owner executed, cancelled or previewed it again meanwhile: the update is theirs.
            let message = format!("Its plan {} is {}: its owner acted on it.", plan.plan_id, plan.status);
            self.drop_item(item, CampaignItemStatus::Skipped, &message).await?;
            return Ok(false);
        }
        if super::approval_for(self.store, &plan.portfolio_id, &plan.product_id, plan.operation_type).await?.is_some() {
            self.drop_item(item, CampaignItemStatus::Skipped, APPROVAL).await?;
            return Ok(false);
        }
        let claim = CampaignClaim {
            campaign_id: campaign.campaign_id.clone(),
            provisioned_product_id: item.provisioned_product_id.clone(),
            event: update_queued_event(&item, &campaign.product_id, &campaign.target_version_id),
        };
        let extra = json!({"CampaignId": campaign.campaign_id, "PlanId": plan_id, "ProductVersionId": campaign.target_version_id});
        let audit = on_behalf(node.to_string(), "UpdateProvisionedProduct", &item.provisioned_product_id, &owner.principal_id, extra);
        match self.audited(audit).queue_plan(&plan, Some(&claim)).await? {
            Ok(_) => Ok(true),
            Err(ExecutionRefusal::Stale) => {
                self.refresh_plan(&owner, &pp, &plan.plan_id, item).await?;
                Ok(false)
            }
            // Another task holds the product, or the campaign was paused meanwhile: next time.
            Err(ExecutionRefusal::UnderChange | ExecutionRefusal::Claimed) => Ok(false),
            Err(ExecutionRefusal::Status) => {
                let message = format!("Its plan {} left {}: its owner acted on it.", plan.plan_id, plan.status);
                self.drop_item(item, CampaignItemStatus::Skipped, &message).await?;
                Ok(false)
            }
            Err(ExecutionRefusal::Cycle) => {
                let message = format!("Its plan {} reads outputs of provisioned products that now depend on it.", plan.plan_id);
                self.drop_item(item, CampaignItemStatus::Skipped, &message).await?;
                Ok(false)
            }
        }
    }

    /// Previews `item`'s plan again (its product changed since the preview).
    async fn refresh_plan(&self, owner: &Principal, pp: &ProvisionedProduct, plan_id: &str, item: CampaignItem) -> Result<(), DomainError> {
        let replan = super::plan::Replan {
            plan_id: plan_id.to_string(),
            description: None,
            product_id: pp.product_id.clone(),
            product_version_id: self.store.plan(plan_id).await?.map(|p| p.product_version_id).unwrap_or_default(),
            portfolio_id: None,
            parameters: Vec::new(),
            tags: None,
        };
        let from = item.status;
        let item = match self.update_plan(owner, replan).await {
            Ok(_) => CampaignItem { status: CampaignItemStatus::Planning, ..item },
            Err(e @ (DomainError::Internal(_) | DomainError::Store(_))) => return Err(e),
            Err(e) => CampaignItem { status: CampaignItemStatus::Failed, message: e.to_string(), ..item },
        };
        self.store.save_campaign_item(&item, from).await?;
        Ok(())
    }
}

/// Why a `Pinned` provisioned product is skipped.
const PINNED: &str = "Its update policy is Pinned: campaigns leave it on its version.";

/// Why a provisioned product its owner updated to the target version meanwhile is skipped.
const ON_TARGET: &str = "It already runs the target version (its owner updated it).";

/// Why a provisioned product whose updates need an approval is skipped.
const APPROVAL: &str = "An Approval constraint covers its updates: its owner updates it through an approved plan.";

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: i64, status: CampaignItemStatus) -> CampaignItem {
        CampaignItem {
            campaign_id: "c".into(),
            seq,
            provisioned_product_id: format!("pp-{seq}").into(),
            provisioned_product_name: String::new(),
            owner_principal_id: "1".into(),
            portfolio_id: "port".into(),
            source_version_id: "pv-1".into(),
            status,
            message: String::new(),
            plan_id: None,
            task_id: None,
            adds: 1,
            changes: 0,
            replaces: seq % 2,
            destroys: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn waves_count_only_the_items_upgraded() {
        use CampaignItemStatus::*;
        let items: Vec<_> = [Planned, Skipped, Planned, PlanFailed, Succeeded, Failed, Planned]
            .iter()
            .enumerate()
            .map(|(i, s)| item(i as i64, *s))
            .collect();
        assert_eq!(waves(&items, 2), vec![Some(0), None, Some(0), None, Some(1), Some(1), Some(2)]);
        assert_eq!(waves(&items, 10), vec![Some(0), None, Some(0), None, Some(0), Some(0), Some(0)]);
    }

    #[test]
    fn plans_are_summed_and_replacements_count_as_destroying() {
        let changes = r#"[{"Action":"Add","LogicalResourceId":"a"},{"Action":"Modify","LogicalResourceId":"b","Replacement":"False"},
            {"Action":"Modify","LogicalResourceId":"c","Replacement":"True"},{"Action":"Modify","LogicalResourceId":"d","Replacement":"Conditional"},
            {"Action":"Remove","LogicalResourceId":"e"},{"Action":"None","LogicalResourceId":"f"}]"#;
        assert_eq!(count_changes(changes), (1, 1, 2, 1));
        assert_eq!(count_changes("[]"), (0, 0, 0, 0));
        let items = [item(0, CampaignItemStatus::Failed), item(1, CampaignItemStatus::Failed), item(2, CampaignItemStatus::Planned)];
        let campaign = crate::store::campaign::Campaign {
            campaign_id: "c".into(),
            product_id: "prod".into(),
            target_version_id: "pv-2".into(),
            source_version_ids: "[]".into(),
            selection: "{}".into(),
            wave_size: 1,
            parallelism: 1,
            failure_threshold: 1,
            status: CampaignStatus::Stopped,
            failures_before: 1,
            created_by: "a".into(),
            created_at: 0,
            updated_at: 0,
        };
        let summary = summarize(&campaign, &items);
        assert_eq!((summary.selected, summary.add, summary.replace, summary.failures), (3, 3, 1, 1));
        assert_eq!(summary.destroying, vec![ProvisionedProductId::from("pp-1")]);
        assert_eq!(summary.statuses.get("Failed"), Some(&2));
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(count("WaveSize", None, 10, 1000).unwrap(), 10);
        assert_eq!(count("WaveSize", Some(1000), 10, 1000).unwrap(), 1000);
        assert_eq!(
            count("WaveSize", Some(0), 10, 1000).unwrap_err().to_string(),
            "The parameter WaveSize must be between 1 and 1000, not 0."
        );
    }
}
