//! Webhooks and their outbox. A webhook names an endpoint, the events it wants (all, or some
//! types, of every portfolio or one) and its signing secret, sealed. An event becomes one delivery
//! row per matching webhook inside the transaction that makes it happen ([`enqueue`]), so an
//! event is never lost nor told of a change that did not commit; any node then claims due
//! deliveries under a lease on the database's clock, records each attempt, and settles or
//! reschedules them.

use serde_json::{json, Value};

use super::sql::{insert, record, sql, Sql};
use super::{new_id, now_ms, Page, Store, StoreResult};
use crate::model::{DeliveryStatus, EventType, WebhookId};

record! {
    /// A stored webhook.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Webhook {
        pub webhook_id: WebhookId,
        /// Where deliveries are posted.
        pub url: String,
        /// The signing secret, sealed with the master key.
        pub secret_sealed: String,
        /// Only this portfolio's events (`None`: every portfolio's).
        pub portfolio_id: Option<String>,
        /// A JSON array of event type names; `[]` for every type.
        pub event_types: String,
        pub description: String,
        /// The administrator who created it.
        pub created_by: String,
        /// ms since the epoch.
        pub created_at: i64,
    }
}

record! {
    /// One event to deliver to one webhook.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Delivery {
        /// `<event id>.<webhook id>`.
        pub delivery_id: String,
        pub webhook_id: WebhookId,
        /// `evt-…`: the same for every webhook told of the event.
        pub event_id: String,
        pub event_type: EventType,
        /// The JSON body posted.
        pub payload: String,
        pub status: DeliveryStatus,
        /// Attempts made so far.
        pub attempts: i64,
        /// When the next attempt is due (ms since the epoch, the database's clock).
        pub next_attempt_at: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

record! {
    /// One attempt of a delivery.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Attempt {
        pub delivery_id: String,
        /// 1 for the first.
        pub attempt: i64,
        /// ms since the epoch.
        pub attempted_at: i64,
        /// The endpoint's HTTP status; 0 when none came back.
        pub status_code: i64,
        /// Why it failed (empty when it succeeded).
        pub error: String,
        pub duration_ms: i64,
    }
}

/// Something that happened, for the webhooks that want it.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_type: EventType,
    /// The portfolio it happened in (webhooks of one portfolio match on it).
    pub portfolio_id: String,
    /// The event's own fields (ids, statuses), merged into the body after the common ones.
    pub fields: Value,
}

/// Writes the deliveries of `event`, one per matching webhook, in `tx` (none: nothing is
/// written but the look-up of the webhooks).
pub(super) async fn enqueue(tx: &mut super::Tx, event: &Event) -> StoreResult<()> {
    let webhooks: Vec<WebhookId> = sql!(
        "SELECT webhook_id FROM webhooks WHERE (portfolio_id IS NULL OR portfolio_id = $1) AND (event_types = '[]' OR event_types LIKE $2)",
        &event.portfolio_id,
        format!("%\"{}\"%", event.event_type)
    )
    .values(&mut **tx)
    .await?;
    if webhooks.is_empty() {
        return Ok(());
    }
    let event_id = new_id("evt");
    let now = now_ms();
    let mut body = json!({
        "EventId": event_id,
        "EventType": event.event_type,
        "EventTime": crate::model::format_time(now),
        "PortfolioId": event.portfolio_id,
    });
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), &event.fields) {
        body.extend(fields.clone());
    }
    let payload = body.to_string();
    let deliveries = webhooks.into_iter().map(|webhook_id| Delivery {
        delivery_id: format!("{event_id}.{webhook_id}"),
        webhook_id,
        event_id: event_id.clone(),
        event_type: event.event_type,
        payload: payload.clone(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
        updated_at: now,
    });
    insert("webhook_deliveries", Delivery::COLUMNS, deliveries, |d, sql| d.bind_values(sql)).execute(&mut **tx).await?;
    // Due now on the database's clock, the one claims compare with (this node's may differ).
    let due_now = format!("UPDATE webhook_deliveries SET next_attempt_at = {} WHERE event_id = $1", tx.dialect().clock());
    sql!(&due_now, &event_id).execute(&mut **tx).await?;
    Ok(())
}

/// Which deliveries a list returns.
#[derive(Debug, Default, Clone)]
pub struct DeliveryQuery {
    pub webhook_id: Option<String>,
    pub event_id: Option<String>,
    pub status: Option<DeliveryStatus>,
}

impl Store {
    /// Stores a new webhook.
    pub async fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        super::audit::created(&webhook.webhook_id);
        self.write(insert("webhooks", Webhook::COLUMNS, [webhook], |w, sql| w.bind_values(sql))).await?;
        Ok(())
    }

    /// A webhook by id.
    pub async fn webhook(&self, id: &str) -> StoreResult<Option<Webhook>> {
        let mut sql = Sql::new(&format!("SELECT {} FROM webhooks WHERE webhook_id = ", Webhook::columns("")));
        sql.text(id);
        self.fetch_optional(&sql, Webhook::from_row).await
    }

    /// Every webhook, oldest first.
    pub async fn list_webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let sql = Sql::new(&format!("SELECT {} FROM webhooks ORDER BY created_at, webhook_id", Webhook::columns("")));
        self.fetch_all(&sql, Webhook::from_row).await
    }

    /// Deletes a webhook with its deliveries and their attempts; false when there is none.
    pub async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        sql!("DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries WHERE webhook_id = $1)", id)
            .execute(&mut *tx)
            .await?;
        sql!("DELETE FROM webhook_deliveries WHERE webhook_id = $1", id).execute(&mut *tx).await?;
        let deleted = sql!("DELETE FROM webhooks WHERE webhook_id = $1", id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// Deletes the deliveries that ended (delivered, or out of attempts) before `before` (ms),
    /// with their attempts; the number of deliveries deleted.
    pub async fn prune_webhook_deliveries(&self, before: i64) -> StoreResult<u64> {
        let ended = "SELECT delivery_id FROM webhook_deliveries WHERE status <> $1 AND updated_at < $2";
        let mut tx = self.begin().await?;
        sql!(&format!("DELETE FROM webhook_attempts WHERE delivery_id IN ({ended})"), DeliveryStatus::Pending, before)
            .execute(&mut *tx)
            .await?;
        let deleted = sql!(&format!("DELETE FROM webhook_deliveries WHERE delivery_id IN ({ended})"), DeliveryStatus::Pending, before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// One page of deliveries, newest first, and their total.
    pub async fn list_deliveries(&self, query: &DeliveryQuery, page: Page) -> StoreResult<(Vec<Delivery>, i64)> {
        let mut filter = Sql::new(" FROM webhook_deliveries WHERE 1 = 1");
        if let Some(id) = &query.webhook_id {
            filter.push(" AND webhook_id = ").text(id.as_str());
        }
        if let Some(id) = &query.event_id {
            filter.push(" AND event_id = ").text(id.as_str());
        }
        if let Some(status) = query.status {
            filter.push(" AND status = ").text(status.as_str());
        }
        let mut select = filter.behind(&format!("SELECT {}", Delivery::columns("")));
        select.push(" ORDER BY created_at DESC, delivery_id DESC").page(page);
        self.fetch_page(&select, &filter.behind("SELECT COUNT(*)"), page, Delivery::from_row).await
    }

    /// The attempts of the deliveries `ids`, in order.
    pub async fn delivery_attempts(&self, ids: &[&str]) -> StoreResult<Vec<Attempt>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(&format!("SELECT {} FROM webhook_attempts WHERE delivery_id IN (", Attempt::columns("")));
        sql.list(ids.iter().map(super::sql::ToBind::to_bind));
        sql.push(") ORDER BY delivery_id, attempt");
        self.fetch_all(&sql, Attempt::from_row).await
    }

    /// Claims the delivery due longest ago for `owner` for `lease_ms` (the database's clock): a
    /// pending one whose next attempt is due and which no live lease holds.
    pub async fn claim_delivery(&self, owner: &str, lease_ms: i64) -> StoreResult<Option<Delivery>> {
        let clock = self.dialect.clock();
        let free = format!("(lease_owner IS NULL OR lease_expires_at < {clock})");
        let due = format!(
            "SELECT delivery_id FROM webhook_deliveries WHERE status = '{}' AND next_attempt_at <= {clock} AND {free} \
             ORDER BY next_attempt_at, delivery_id LIMIT 1",
            DeliveryStatus::Pending.as_str()
        );
        let claim = |target: &dyn Fn(&mut Sql)| {
            let mut sql = Sql::new("UPDATE webhook_deliveries SET lease_owner = ");
            sql.text(owner).push(&format!(", lease_expires_at = {clock} + ")).int(lease_ms).push(" WHERE delivery_id = ");
            target(&mut sql);
            sql.push(&format!(" AND {free} AND status = '{}' RETURNING {}", DeliveryStatus::Pending.as_str(), Delivery::columns("")));
            sql
        };
        let Some(row) = self.dialect.claim(self, &due, claim).await? else { return Ok(None) };
        Ok(Some(Delivery::from_row(&super::read::Row::Any(&row))?))
    }

    /// Records an attempt of a delivery `owner` holds and settles it: `status` (`Pending` again
    /// with `retry_in_ms` to wait, or final). False when the lease was lost meanwhile (another
    /// node took the delivery over): nothing is written.
    pub async fn finish_attempt(&self, owner: &str, attempt: &Attempt, status: DeliveryStatus, retry_in_ms: i64) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let settled = sql!(
            &format!(
                "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = {} + $3, lease_owner = NULL, \
                 lease_expires_at = NULL, updated_at = $4 WHERE delivery_id = $5 AND lease_owner = $6 AND attempts = $7",
                self.dialect.clock()
            ),
            status,
            attempt.attempt,
            retry_in_ms,
            now_ms(),
            &attempt.delivery_id,
            owner,
            attempt.attempt - 1
        )
        .execute(&mut *tx)
        .await?;
        if settled != 1 {
            return Ok(false);
        }
        insert("webhook_attempts", Attempt::COLUMNS, [attempt], |a, sql| a.bind_values(sql)).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn webhook(id: &str, portfolio: Option<&str>, types: &str) -> Webhook {
        Webhook {
            webhook_id: id.into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret_sealed: "sealed".into(),
            portfolio_id: portfolio.map(String::from),
            event_types: types.into(),
            description: String::new(),
            created_by: "admin".into(),
            created_at: now_ms(),
        }
    }

    async fn emit(store: &Store, event_type: EventType, portfolio: &str) {
        let mut tx = store.begin().await.unwrap();
        let event = Event { event_type, portfolio_id: portfolio.into(), fields: json!({"TaskId": "task-1"}) };
        enqueue(&mut tx, &event).await.unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn events_fan_out_to_matching_webhooks_and_are_claimed_once() {
        testing::each_store(|store| async move {
            store.insert_webhook(&webhook("wh-all", None, "[]")).await.unwrap();
            store.insert_webhook(&webhook("wh-port", Some("port-a"), "[]")).await.unwrap();
            store.insert_webhook(&webhook("wh-failed", None, "[\"TaskFailed\"]")).await.unwrap();
            emit(&store, EventType::TaskSucceeded, "port-b").await;
            let page = Page { number: 1, size: 50 };
            let (all, total) = store.list_deliveries(&DeliveryQuery::default(), page).await.unwrap();
            assert_eq!((all.len(), total), (1, 1), "only the webhook of every portfolio and type: {all:?}");
            assert_eq!(all[0].webhook_id, "wh-all");
            let body: Value = serde_json::from_str(&all[0].payload).unwrap();
            assert_eq!((body["EventType"].as_str(), body["TaskId"].as_str()), (Some("TaskSucceeded"), Some("task-1")));
            emit(&store, EventType::TaskFailed, "port-a").await;
            assert_eq!(store.list_deliveries(&DeliveryQuery::default(), page).await.unwrap().1, 4);

            let claimed = store.claim_delivery("node-a", 60_000).await.unwrap().unwrap();
            let mut others = Vec::new();
            while let Some(d) = store.claim_delivery("node-b", 60_000).await.unwrap() {
                others.push(d.delivery_id);
            }
            assert_eq!(others.len(), 3);
            assert!(!others.contains(&claimed.delivery_id), "a held delivery is not claimed twice");

            let attempt = |n: i64| Attempt {
                delivery_id: claimed.delivery_id.clone(),
                attempt: n,
                attempted_at: now_ms(),
                status_code: 500,
                error: "HTTP 500".into(),
                duration_ms: 1,
            };
            assert!(!store.finish_attempt("node-b", &attempt(1), DeliveryStatus::Pending, 0).await.unwrap(), "not its lease");
            assert!(store.finish_attempt("node-a", &attempt(1), DeliveryStatus::Pending, 0).await.unwrap());
            let again = store.claim_delivery("node-b", 60_000).await.unwrap().unwrap();
            assert_eq!((again.delivery_id.as_str(), again.attempts), (claimed.delivery_id.as_str(), 1));
            assert!(!store.finish_attempt("node-a", &attempt(2), DeliveryStatus::Delivered, 0).await.unwrap(), "lease moved on");
            assert!(store.finish_attempt("node-b", &attempt(2), DeliveryStatus::Delivered, 0).await.unwrap());
            let attempts = store.delivery_attempts(&[claimed.delivery_id.as_str()]).await.unwrap();
            assert_eq!(attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2]);
            let delivered = DeliveryQuery { status: Some(DeliveryStatus::Delivered), ..DeliveryQuery::default() };
            assert_eq!(store.list_deliveries(&delivered, page).await.unwrap().1, 1);
            // Past the retention only what ended goes, with its attempts; pending deliveries stay.
            assert_eq!(store.prune_webhook_deliveries(now_ms() - 60_000).await.unwrap(), 0, "ended too recently");
            assert_eq!(store.prune_webhook_deliveries(now_ms() + 60_000).await.unwrap(), 1);
            assert!(store.delivery_attempts(&[claimed.delivery_id.as_str()]).await.unwrap().is_empty());
            assert_eq!(store.list_deliveries(&DeliveryQuery::default(), page).await.unwrap().1, 3, "the pending ones are kept");

            assert!(store.delete_webhook("wh-all").await.unwrap());
            assert!(!store.delete_webhook("wh-all").await.unwrap());
            assert_eq!(store.list_deliveries(&DeliveryQuery::default(), page).await.unwrap().1, 2);
        })
        .await;
    }
}
