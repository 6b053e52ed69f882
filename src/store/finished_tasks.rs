//! Finished tasks kept in memory, for `GetTask`. A task that has left `InProgress` never changes
//! again, whichever node reads it: `finish_task` is the last write to its row, `append_logs`
//! refuses a finished task (so its log is complete), and the owner of a provisioned product is
//! never changed. Clients poll a task until it ends and read it again afterwards; those reads are
//! answered from here without a database statement (on SQLite a read transaction and a join of
//! the task with its log rows, a third of a `GetTask`'s CPU). Tasks still running are always read.
//!
//! The memory is bounded in bytes; the entries stored first are dropped first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::provisioning::TaskRecord;
use crate::model::TaskId;

/// Bytes of task rows and logs kept at most.
const BUDGET_BYTES: usize = 8 << 20;
/// A record larger than this share of the budget is not kept (a task with a very long log would
/// push out many others).
const LARGEST_SHARE: usize = 8;

/// Finished tasks by id, in order of storing.
#[derive(Default)]
pub(super) struct FinishedTasks {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: HashMap<TaskId, Arc<TaskRecord>>,
    order: VecDeque<(TaskId, usize)>,
    bytes: usize,
}

impl FinishedTasks {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The finished task `task_id`, if it is kept.
    pub(super) fn get(&self, task_id: &str) -> Option<Arc<TaskRecord>> {
        self.state().records.get(task_id).cloned()
    }

    /// Keeps `record`, which must be of a finished task, dropping the oldest records over budget.
    pub(super) fn keep(&self, record: Arc<TaskRecord>) {
        let size = record.approximate_bytes();
        if size > BUDGET_BYTES / LARGEST_SHARE {
            return;
        }
        let mut state = self.state();
        if state.records.contains_key(&record.task.task_id) {
            return;
        }
        state.records.insert(record.task.task_id.clone(), Arc::clone(&record));
        state.order.push_back((record.task.task_id.clone(), size));
        state.bytes += size;
        while state.bytes > BUDGET_BYTES {
            let Some((id, size)) = state.order.pop_front() else { break };
            state.records.remove(&id);
            state.bytes -= size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskStatus;
    use crate::store::provisioning::tests::sample_task;
    use crate::store::provisioning::{LogChunk, Task};

    fn record(id: &str, log_bytes: usize) -> Arc<TaskRecord> {
        let task = Task { status: TaskStatus::Succeeded, ..sample_task(id) };
        let log = vec![LogChunk { seq: 1, command: "apply".into(), stream: "stdout".into(), content: "x".repeat(log_bytes) }];
        Arc::new(TaskRecord { task, owner: Some("1".into()), log })
    }

    #[test]
    fn the_oldest_records_go_first_when_the_budget_is_spent() {
        let kept = FinishedTasks::default();
        let share = BUDGET_BYTES / LARGEST_SHARE - 4096;
        for i in 0..LARGEST_SHARE {
            kept.keep(record(&format!("task-{i}"), share));
        }
        assert!(kept.get("task-0").is_some(), "{LARGEST_SHARE} records of a share each fit");
        kept.keep(record("task-new", share));
        assert!(kept.get("task-0").is_none(), "the first one kept made room");
        assert!(kept.get("task-1").is_some() && kept.get("task-new").is_some());
        assert!(kept.state().bytes <= BUDGET_BYTES);
    }

    #[test]
    fn a_record_larger_than_its_share_is_not_kept_and_a_second_copy_changes_nothing() {
        let kept = FinishedTasks::default();
        kept.keep(record("task-huge", BUDGET_BYTES / LARGEST_SHARE));
        assert!(kept.get("task-huge").is_none());
        let first = record("task-a", 10);
        kept.keep(Arc::clone(&first));
        kept.keep(record("task-a", 10));
        assert_eq!(kept.state().order.len(), 1);
        assert_eq!(kept.state().bytes, first.approximate_bytes());
    }
}
