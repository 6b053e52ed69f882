//! The audit trail: changes requested through the API, recorded once per request, listed by
//! administrators with filters, pruned after the retention period.

use super::provisioning::Task;
use super::sql::{insert, record, sql, Sql};
use super::{now_ms, Page, SortOrder, Store, StoreResult};

record! {
    /// One recorded change.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AuditEvent {
        /// `audit-…`.
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
    /// The statement that records this event, its id and time set now.
    pub(super) fn insert(&self) -> Sql {
        let event = AuditEvent { event_id: super::new_id("audit"), occurred_at: now_ms(), ..self.clone() };
        insert("audit_events", AuditEvent::COLUMNS, [&event], |e, sql| e.bind_values(sql))
    }
}

/// Writes `audit`, when there is one, in `tx` as the record of what queued `task`, the task's id
/// added to its request id: a task the scheduler queues is audited in the transaction that queues
/// it, so that no node's death leaves it unaudited.
pub(super) async fn record_queued(tx: &mut sqlx::AnyConnection, audit: Option<&AuditEvent>, task: &Task) -> StoreResult<()> {
    if let Some(audit) = audit {
        let record = AuditEvent { request_id: format!("{}/{}", audit.request_id, task.task_id), ..audit.clone() };
        record.insert().execute(tx).await?;
    }
    Ok(())
}

impl Store {
    /// Records one event (its id and time are set here).
    pub async fn record_audit_event(&self, event: &AuditEvent) -> StoreResult<()> {
        self.write(event.insert()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn event(action: &str, principal: &str, resource: &str) -> AuditEvent {
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
}
