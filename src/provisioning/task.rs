//! Tasks as their readers see them. An administrator reads every task, an end user those of the
//! provisioned products it owns; any other task is as missing as one that does not exist. Here:
//! a task with its Terraform log grouped per command and stream, a provisioned product's tasks,
//! a principal's task history, and the log followed while a task runs (`GetTaskLog`, an
//! extension documented in the README).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::queue::Provisioner;
use crate::catalog::error::DomainError;
use crate::model::{TaskId, TaskStatus};
use crate::store::principal::Principal;
use crate::store::provisioning::{LogChunk, Task, TaskRecord};
use crate::store::{Page, SortOrder};

/// Most chunks one page of a log holds.
const CHUNKS: usize = 1000;

/// Longest wait for new output, in seconds.
const MAX_WAIT_SECONDS: i64 = 20;

/// The output of one Terraform command on one stream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TerraformLog<'a> {
    pub command: &'a str,
    pub stream: &'a str,
    pub content: Cow<'a, str>,
}

/// Log chunks grouped per (command, stream) in order of first appearance.
pub fn terraform_logs(chunks: &[LogChunk]) -> Vec<TerraformLog<'_>> {
    let mut groups: Vec<TerraformLog> = Vec::new();
    for c in chunks {
        match groups.iter_mut().find(|g| g.command == c.command && g.stream == c.stream) {
            Some(g) => g.content.to_mut().push_str(&c.content),
            None => groups.push(TerraformLog { command: &c.command, stream: &c.stream, content: Cow::Borrowed(&c.content) }),
        }
    }
    groups
}

/// A page of a task's log.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogPage {
    pub task_id: TaskId,
    pub status: TaskStatus,
    /// Whether the log is complete.
    pub finished: bool,
    /// The `AfterSeq` of the next page.
    pub next_seq: i64,
    pub chunks: Vec<LogChunk>,
}

/// Whether `principal` may read the tasks of a provisioned product owned by `owner`.
fn may_read(principal: &Principal, owner: Option<&str>) -> bool {
    principal.is_admin || owner == Some(principal.principal_id.as_str())
}

impl Provisioner<'_> {
    /// The task `id` with its log, if `principal` may read it.
    pub async fn task(&self, principal: &Principal, id: &str) -> Result<Option<Arc<TaskRecord>>, DomainError> {
        Ok(self.store.task_with_logs(id).await?.filter(|record| may_read(principal, record.owner.as_deref())))
    }

    /// A page of the tasks of the provisioned product `id`, if `principal` may read them.
    pub async fn tasks(&self, principal: &Principal, id: &str, order: SortOrder, page: Page) -> Result<(Vec<Task>, i64), DomainError> {
        if !principal.is_admin && !may_read(principal, self.store.task_owner(id).await?.as_deref()) {
            return Err(DomainError::not_found("ProvisionedProduct", id));
        }
        Ok(self.store.list_tasks(id, order, page).await?)
    }

    /// A page of `principal`'s task history: the tasks of the provisioned products it owns,
    /// terminated ones included (`account`: every task, administrators only).
    pub async fn task_history(
        &self,
        principal: &Principal,
        account: bool,
        order: SortOrder,
        page: Page,
    ) -> Result<(Vec<Task>, i64), DomainError> {
        if account {
            super::administrators_only(principal, "ListTasks", "Only administrators list the tasks of the whole account.".into())?;
        }
        let owner = (!account).then_some(principal.principal_id.as_str());
        Ok(self.store.list_owned_tasks(owner, order, page).await?)
    }

    /// The chunks of the task `id`'s log after `after`, waiting up to `wait_seconds` (at most
    /// 20) for new output while the task runs; `None` if `principal` may not read the task.
    pub async fn task_log(&self, principal: &Principal, id: &str, after: i64, wait_seconds: i64) -> Result<Option<LogPage>, DomainError> {
        let Some(task) = self.store.task(id).await? else { return Ok(None) };
        if !principal.is_admin && !may_read(principal, self.store.task_owner(&task.provisioned_product_id).await?.as_deref()) {
            return Ok(None);
        }
        let after = after.max(0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_seconds.clamp(0, MAX_WAIT_SECONDS) as u64);
        let mut finished = task.status != TaskStatus::InProgress;
        loop {
            let chunks = self.store.task_logs(&task.task_id, after, CHUNKS as i64).await?;
            if !chunks.is_empty() || finished || tokio::time::Instant::now() >= deadline {
                let status = match finished {
                    true => self.store.task(&task.task_id).await?.map_or(task.status, |t| t.status),
                    false => TaskStatus::InProgress,
                };
                let next_seq = chunks.last().map_or(after, |c| c.seq);
                let finished = finished && chunks.len() < CHUNKS;
                return Ok(Some(LogPage { task_id: task.task_id, status, finished, next_seq, chunks }));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            finished = self.store.task(&task.task_id).await?.is_some_and(|t| t.status != TaskStatus::InProgress);
        }
    }
}
