//! Tasks as their readers see them. An administrator reads every task, an end user those of the
//! provisioned products it owns; any other task is as missing as one that does not exist. Here:
//! a task with its Terraform log grouped per command and stream, a provisioned product's tasks,
//! a principal's task history, and the log followed while a task runs (`GetTaskLog`, an
//! extension documented in the README).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::queue::Provisioner;
use crate::catalog::error::{administrators_only, DomainError};
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

/// Most log text one `ListTasks` answer carries over all its tasks: a page of 100 tasks whose logs
/// each reach the per-task cap would otherwise answer hundreds of MiB.
pub const LISTED_LOG_BYTES: usize = 1 << 20;

/// The logs of listed tasks (`records`, in order), each grouped as [`terraform_logs`] does, while
/// their text stays within `budget` bytes in all: past it a log is cut at a character boundary
/// and its last entry says so (later tasks' entries keep their command and stream, emptied).
pub fn listed_logs(records: &[TaskRecord], budget: usize) -> Vec<Vec<TerraformLog<'_>>> {
    let mut left = budget;
    let mut listed = Vec::with_capacity(records.len());
    for record in records {
        let mut logs = terraform_logs(&record.log);
        let mut cut = false;
        for log in &mut logs {
            if log.content.len() <= left {
                left -= log.content.len();
                continue;
            }
            let mut end = left;
            while !log.content.is_char_boundary(end) {
                end -= 1;
            }
            log.content.to_mut().truncate(end);
            left = 0;
            cut = true;
        }
        if let Some(last) = logs.last_mut().filter(|_| cut) {
            last.content.to_mut().push_str(&format!(
                "\n[cut: this listing's logs reached {budget} bytes; GetTask or GetTaskLog returns task {}'s whole log]",
                record.task.task_id
            ));
        }
        listed.push(logs);
    }
    listed
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

    /// The listed `tasks` with their logs (read in one statement; the listing checked who may read them).
    pub async fn with_logs(&self, tasks: Vec<Task>) -> Result<Vec<TaskRecord>, DomainError> {
        let ids: Vec<&str> = tasks.iter().map(|task| task.task_id.as_str()).collect();
        let mut logs: HashMap<String, Vec<LogChunk>> = HashMap::new();
        for (id, chunk) in self.store.logs_of_tasks(&ids).await? {
            logs.entry(id).or_default().push(chunk);
        }
        Ok(tasks
            .into_iter()
            .map(|task| {
                let log = logs.remove(task.task_id.as_str()).unwrap_or_default();
                TaskRecord { task, owner: None, log }
            })
            .collect())
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
            administrators_only(principal, "ListTasks", "Only administrators list the tasks of the whole account.".into())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::provisioning::tests::sample_task;

    fn record(id: &str, chunks: &[(&str, &str)]) -> TaskRecord {
        let log = chunks
            .iter()
            .enumerate()
            .map(|(i, (command, content))| LogChunk {
                seq: i as i64 + 1,
                command: command.to_string(),
                stream: "stdout".into(),
                content: content.to_string(),
            })
            .collect();
        TaskRecord { task: sample_task(id), owner: None, log }
    }

    #[test]
    fn a_listing_carries_whole_logs_until_its_budget_then_cuts_and_says_so() {
        let records = [
            record("task-a", &[("init", "ab"), ("apply", "cd")]),
            record("task-b", &[("init", "éé"), ("apply", "gh")]),
            record("task-c", &[("plan", "ij")]),
        ];
        let listed = listed_logs(&records, 6);
        let texts: Vec<(String, String)> = listed[0].iter().map(|l| (l.command.to_string(), l.content.to_string())).collect();
        assert_eq!(texts, [("init".into(), "ab".into()), ("apply".into(), "cd".into())], "within the budget: whole");
        // Two bytes are left for task-b: the first "é" (two bytes) fits, the second does not.
        assert_eq!(listed[1][0].content, "é");
        assert_eq!(listed[1][1].command, "apply");
        assert!(listed[1][1].content.starts_with("\n[cut: this listing's logs reached 6 bytes; GetTask or GetTaskLog returns task task-b"));
        assert!(listed[2][0].content.starts_with("\n[cut:"), "past the budget: emptied, and said");
        let whole = listed_logs(&records, LISTED_LOG_BYTES);
        assert_eq!(whole.iter().flatten().map(|l| l.content.len()).sum::<usize>(), 12, "nothing cut under the real budget");
    }
}
