//! The audit trail: changes requested through the API, recorded once per request, listed by
//! administrators with filters, pruned after the retention period.
//!
//! A request's record is committed with its change ([`carried`]): the request pipeline drafts
//! the record before the handler runs, and the first write of the handler that commits (a
//! statement of [`Store::write`] or a transaction of [`Store::begin`]) writes the draft with
//! it. So no node's death leaves a change without its record, and a change costs one commit,
//! not two. Once the handler has answered, the pipeline compares the record it would write now
//! with the one committed, and amends that one if they differ (a failure after the write, a
//! created resource the draft did not know).

use std::future::Future;
use std::sync::Mutex;

use super::sql::{insert, record, sql, Sql};
use super::{now_ms, Page, SortOrder, Store, StoreResult};
use crate::model::{PlanId, TaskId};

record! {
    /// One recorded change.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AuditEvent {
        /// `audit-…`: the time in hexadecimal, then random characters.
        pub event_id: String,
        /// When it was answered, ms since the epoch.
        pub occurred_at: i64,
        /// The request's `RequestId`.
        pub request_id: String,
        /// Wire action name.
        pub action: String,
        /// The caller.
        pub principal_id: String,
        /// The caller's name.
        pub principal_name: String,
        /// The resource changed (empty when none is known).
        pub resource_id: String,
        /// The request's parameters as a JSON object, sensitive values masked.
        pub parameters: String,
        /// HTTP status of the answer.
        pub http_status: i64,
        /// `Success` or the error `Code`.
        pub result_code: String,
    }
}

/// Filters of [`Store::list_audit_events`]; `None` matches everything.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    /// Exact action name.
    pub action: Option<String>,
    /// Exact principal name.
    pub principal_name: Option<String>,
    /// Exact resource id.
    pub resource_id: Option<String>,
    /// From this time (ms, inclusive).
    pub since: Option<i64>,
    /// Until this time (ms, exclusive).
    pub until: Option<i64>,
    /// Only changes that succeeded (`Some(true)`) or only those refused or failed (`Some(false)`).
    pub succeeded: Option<bool>,
}

impl AuditEvent {
    /// This event with its id and time set now. The id begins with the time, so that ids come in
    /// order and each insert adds to the last page of their index rather than to a random one.
    fn stamped(&self) -> AuditEvent {
        let occurred_at = now_ms();
        let unique = super::new_id("");
        AuditEvent { event_id: format!("audit-{occurred_at:011x}{}", &unique[1..7]), occurred_at, ..self.clone() }
    }

    /// The statement that records this event as it is.
    pub(super) fn insert(&self) -> Sql {
        insert("audit_events", AuditEvent::COLUMNS, [self], |e, sql| e.bind_values(sql))
    }

    /// `statement` preceded by this event's insert, so that both commit or neither (PostgreSQL's
    /// data-modifying `WITH`; the rows changed are still the statement's), or `None` when
    /// `statement` has a `WITH` of its own.
    pub(super) fn ahead_of(&self, statement: &Sql) -> Option<Sql> {
        if statement.as_str().trim_start().get(..4).is_some_and(|w| w.eq_ignore_ascii_case("WITH")) {
            return None;
        }
        let columns = AuditEvent::COLUMNS.join(", ");
        let mut sql =
            Sql::bound(&format!("WITH audit_record AS (INSERT INTO audit_events ({columns}) VALUES ("), statement.binds().to_vec());
        self.bind_values(&mut sql);
        sql.push(")) ").push(statement.as_str());
        Some(sql)
    }

    /// Whether `other` records the same outcome of the same change (ids and times aside).
    pub fn same_record(&self, other: &AuditEvent) -> bool {
        (&self.request_id, &self.action, &self.principal_id, &self.resource_id, &self.parameters, self.http_status, &self.result_code)
            == (
                &other.request_id,
                &other.action,
                &other.principal_id,
                &other.resource_id,
                &other.parameters,
                other.http_status,
                &other.result_code,
            )
    }
}

/// Where a request's draft record waits for the write that carries it.
enum Slot {
    /// Not written yet.
    Draft(AuditEvent),
    /// Taken by a write under way.
    Taken,
    /// Committed, as written.
    Written(AuditEvent),
}

tokio::task_local! {
    /// The record of the request this task serves.
    static TRAIL: Mutex<Slot>;
}

/// Runs `change` (a request's handler) with `draft` as its record, to be committed by its first
/// write; returns its output and the record as committed, if a write carried it.
pub async fn carried<F: Future>(draft: AuditEvent, change: F) -> (F::Output, Option<AuditEvent>) {
    TRAIL
        .scope(Mutex::new(Slot::Draft(draft)), async {
            let output = change.await;
            let written = TRAIL.with(|slot| match std::mem::replace(&mut *lock(slot), Slot::Taken) {
                Slot::Written(event) => Some(event),
                Slot::Draft(_) | Slot::Taken => None,
            });
            (output, written)
        })
        .await
}

fn lock(slot: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The draft of the request this task serves, stamped, for a write to carry; `None` outside a
/// request or once taken. Give it back with [`settle`].
pub(super) fn take() -> Option<AuditEvent> {
    TRAIL
        .try_with(|slot| {
            let mut slot = lock(slot);
            match std::mem::replace(&mut *slot, Slot::Taken) {
                Slot::Draft(draft) => Some(draft.stamped()),
                other => {
                    *slot = other;
                    None
                }
            }
        })
        .ok()
        .flatten()
}

/// Gives back what [`take`] took: committed with its write, or a draft again when the write failed.
pub(super) fn settle(event: AuditEvent, committed: bool) {
    let _ = TRAIL.try_with(|slot| *lock(slot) = if committed { Slot::Written(event) } else { Slot::Draft(event) });
}

/// Names `id`, the resource the request creates, as what its draft record is about.
pub(super) fn created(id: &str) {
    let _ = TRAIL.try_with(|slot| {
        if let Slot::Draft(draft) = &mut *lock(slot) {
            draft.resource_id = id.to_string();
        }
    });
}

/// What the scheduler writes with a job (a task or a plan) it queues, in the transaction that
/// queues it: so that no node's death leaves the job unaudited or, for a drift remediation,
/// unknown to its check (whose remediation another node would then carry out again).
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The audit record of the job; its id is added to the record's request id.
    pub audit: AuditEvent,
    /// The drift check whose remediation the job is.
    pub remedies: Option<TaskId>,
}

impl From<AuditEvent> for Scheduled {
    /// A job audited with `audit`, no drift check's remediation.
    fn from(audit: AuditEvent) -> Self {
        Scheduled { audit, remedies: None }
    }
}

/// A job the scheduler queues.
#[derive(Debug, Clone, Copy)]
pub enum JobId<'a> {
    /// A task (for a drift remediation, an update: a `Reapply` or an approved plan's execution).
    Task(&'a TaskId),
    /// A plan (for a drift remediation, a `ReapplyWithApproval` update plan).
    Plan(&'a PlanId),
}

impl JobId<'_> {
    pub(super) fn as_str(&self) -> &str {
        match self {
            JobId::Task(id) => id.as_str(),
            JobId::Plan(id) => id.as_str(),
        }
    }
}

/// Writes what the scheduler's `scheduled` job `job` comes with, when there is something, in `tx`:
/// its audit record, and its link from the drift check it remediates.
pub(super) async fn record_queued(tx: &mut super::Tx, scheduled: Option<&Scheduled>, job: JobId<'_>) -> StoreResult<()> {
    let Some(Scheduled { audit, remedies }) = scheduled else { return Ok(()) };
    let record = AuditEvent { request_id: format!("{}/{}", audit.request_id, job.as_str()), ..audit.stamped() };
    record.insert().execute(&mut **tx).await?;
    match remedies {
        Some(check) => super::drift::link_remediation(tx, check, job).await,
        None => Ok(()),
    }
}

impl Store {
    /// Records one event (its id and time are set here).
    pub async fn record_audit_event(&self, event: &AuditEvent) -> StoreResult<()> {
        self.write(event.stamped().insert()).await?;
        Ok(())
    }

    /// Rewrites the outcome of the recorded event `event_id` to `event`'s ([`carried`]).
    pub async fn amend_audit_event(&self, event_id: &str, event: &AuditEvent) -> StoreResult<()> {
        self.write(sql!(
            "UPDATE audit_events SET resource_id = $1, parameters = $2, http_status = $3, result_code = $4 WHERE event_id = $5",
            event.resource_id,
            event.parameters,
            event.http_status,
            event.result_code,
            event_id
        ))
        .await?;
        Ok(())
    }

    /// One page of the events matching `query`, by time, and their total count.
    pub async fn list_audit_events(&self, query: &AuditQuery, order: SortOrder, page: Page) -> StoreResult<(Vec<AuditEvent>, i64)> {
        let mut filter = Sql::new(" FROM audit_events WHERE 1 = 1");
        for (column, value) in [("action", &query.action), ("principal_name", &query.principal_name), ("resource_id", &query.resource_id)] {
            if let Some(value) = value {
                filter.push(&format!(" AND {column} = ")).text(value.clone());
            }
        }
        if let Some(since) = query.since {
            filter.push(" AND occurred_at >= ").int(since);
        }
        if let Some(until) = query.until {
            filter.push(" AND occurred_at < ").int(until);
        }
        match query.succeeded {
            Some(true) => filter.push(" AND result_code = 'Success'"),
            Some(false) => filter.push(" AND result_code <> 'Success'"),
            None => &mut filter,
        };
        let dir = order.sql();
        let mut select = filter.behind(&format!("SELECT {}", AuditEvent::columns("")));
        select.push(&format!(" ORDER BY occurred_at {dir}, event_id {dir}")).page(page);
        self.fetch_page(&select, &filter.behind("SELECT COUNT(*)"), page, AuditEvent::from_row).await
    }

    /// Deletes the events older than `before` (ms); returns how many.
    pub async fn prune_audit_events(&self, before: i64) -> StoreResult<u64> {
        self.write(sql!("DELETE FROM audit_events WHERE occurred_at < $1", before)).await
    }
}

/// A successful change `action` of `resource` by `principal`, request `R`, for tests.
#[cfg(test)]
pub(super) fn sample(action: &str, principal: &str, resource: &str) -> AuditEvent {
    AuditEvent {
        event_id: String::new(),
        occurred_at: 0,
        request_id: "R".into(),
        action: action.into(),
        principal_id: "1".into(),
        principal_name: principal.into(),
        resource_id: resource.into(),
        parameters: "{}".into(),
        http_status: 200,
        result_code: "Success".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    use super::sample as event;

    #[tokio::test]
    async fn events_are_filtered_paged_and_pruned() {
        testing::each_store(|store| async move {
            store.record_audit_event(&event("CreatePortfolio", "alice", "port-1")).await.unwrap();
            store.record_audit_event(&event("LaunchProduct", "bob", "pp-1")).await.unwrap();
            store.record_audit_event(&event("LaunchProduct", "alice", "pp-2")).await.unwrap();
            let page = Page { number: 1, size: 10 };
            let q = AuditQuery { action: Some("LaunchProduct".into()), ..AuditQuery::default() };
            let (events, total) = store.list_audit_events(&q, SortOrder::Asc, page).await.unwrap();
            assert_eq!((events.len(), total), (2, 2));
            let q = AuditQuery { principal_name: Some("alice".into()), resource_id: Some("pp-2".into()), ..AuditQuery::default() };
            assert_eq!(store.list_audit_events(&q, SortOrder::Asc, page).await.unwrap().0[0].action, "LaunchProduct");
            let (first, total) =
                store.list_audit_events(&AuditQuery::default(), SortOrder::Asc, Page { number: 2, size: 2 }).await.unwrap();
            assert_eq!((first.len(), total), (1, 3));
            let q = AuditQuery { until: Some(0), ..AuditQuery::default() };
            assert_eq!(store.list_audit_events(&q, SortOrder::Asc, page).await.unwrap().1, 0);
            let refused =
                AuditEvent { http_status: 404, result_code: "EntityNotExists.Product".into(), ..event("LaunchProduct", "carol", "") };
            store.record_audit_event(&refused).await.unwrap();
            let q = AuditQuery { succeeded: Some(false), ..AuditQuery::default() };
            assert_eq!(store.list_audit_events(&q, SortOrder::Asc, page).await.unwrap().0[0].principal_name, "carol");
            let q = AuditQuery { succeeded: Some(true), action: Some("LaunchProduct".into()), ..AuditQuery::default() };
            assert_eq!(store.list_audit_events(&q, SortOrder::Asc, page).await.unwrap().1, 2);
            assert_eq!(store.prune_audit_events(now_ms() + 1).await.unwrap(), 4);
        })
        .await;
    }

    fn portfolio(id: &str) -> crate::store::portfolio::Portfolio {
        crate::store::portfolio::Portfolio {
            portfolio_id: id.into(),
            portfolio_name: "p".into(),
            provider_name: "q".into(),
            description: String::new(),
            created_at: now_ms(),
        }
    }

    async fn recorded(store: &Store) -> Vec<AuditEvent> {
        store.list_audit_events(&AuditQuery::default(), SortOrder::Asc, Page { number: 1, size: 50 }).await.unwrap().0
    }

    #[tokio::test]
    async fn a_request_record_commits_with_its_first_write_only() {
        testing::each_store(|store| async move {
            // A statement that commits carries the draft, named after the resource it creates.
            let ((), written) = carried(event("CreatePortfolio", "alice", ""), async {
                store.insert_portfolio(&portfolio("port-a")).await.unwrap();
                store.update_portfolio("port-a", "p2", "q", None).await.unwrap();
            })
            .await;
            let written = written.expect("carried by the insert");
            assert_eq!(recorded(&store).await, vec![written.clone()]);
            assert_eq!((written.resource_id.as_str(), written.request_id.as_str()), ("port-a", "R"));
            assert!(written.event_id.starts_with("audit-") && written.occurred_at > 0, "{written:?}");

            // A failing statement carries nothing: a later transaction carries the draft.
            let ((), written) = carried(event("CreatePortfolio", "bob", ""), async {
                assert!(store.insert_portfolio(&portfolio("port-a")).await.is_err());
                assert_eq!(recorded(&store).await.len(), 1);
                let tx = store.begin().await.unwrap();
                tx.commit().await.unwrap();
            })
            .await;
            assert_eq!(written.expect("carried by the commit").principal_name, "bob");

            // A transaction dropped uncommitted carries nothing; outside a request nothing is carried.
            let ((), written) = carried(event("DeletePortfolio", "carol", "port-a"), async {
                drop(store.begin().await.unwrap());
            })
            .await;
            assert_eq!(written, None);
            store.insert_portfolio(&portfolio("port-b")).await.unwrap();
            assert_eq!(recorded(&store).await.len(), 2);

            // An amended record takes the outcome the request answered.
            let first = &recorded(&store).await[0];
            let refused = AuditEvent { http_status: 400, result_code: "InvalidParameter".into(), ..first.clone() };
            assert!(!first.same_record(&refused));
            store.amend_audit_event(&first.event_id, &refused).await.unwrap();
            assert!(recorded(&store).await[0].same_record(&refused));
        })
        .await;
    }
}
