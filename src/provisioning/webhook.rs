//! Webhooks (extension actions `CreateWebhook`, `ListWebhooks`, `DeleteWebhook` and
//! `ListWebhookDeliveries`, for administrators): endpoints told when a task succeeds or fails and
//! when a plan waits for approval or is decided, for every portfolio or one. The secret that
//! signs deliveries is made here, answered once, and kept sealed. The events are written by the
//! store with the change that makes them; `ops::notify` delivers them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::secrets::SecretBox;
use crate::catalog::error::{administrators_only, DomainError};
use crate::catalog::wire::{format_time, Paged, Paging};
use crate::model::{DeliveryStatus, EventType, WebhookId};
use crate::ops::notify::WebhookPolicy;
use crate::store::principal::Principal;
use crate::store::webhook::{Attempt, Delivery, DeliveryQuery, Webhook};
use crate::store::{now_ms, Store};

/// Longest webhook URL.
const MAX_URL: usize = 1024;
/// Longest description.
const MAX_DESCRIPTION: usize = 256;

/// The webhooks as one administrator manages them.
pub struct Webhooks<'a> {
    pub store: &'a Store,
    /// Seals the secrets.
    pub secrets: &'a SecretBox,
    pub caller: &'a Principal,
    /// Which URLs webhooks may name.
    pub policy: &'a WebhookPolicy,
}

/// `CreateWebhook`'s request.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewWebhook {
    pub url: String,
    /// Only this portfolio's events; every portfolio's when absent.
    pub portfolio_id: Option<String>,
    /// Only these event types; every type when absent or empty.
    #[serde(default)]
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

/// `CreateWebhook`'s answer: the id, and the signing secret (answered this once).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreatedWebhook {
    pub webhook_id: WebhookId,
    pub secret: String,
}

/// `DeleteWebhook`'s request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookRef {
    pub webhook_id: String,
}

/// A webhook as listed (never its secret).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookView {
    pub webhook_id: WebhookId,
    pub url: String,
    /// Empty when the webhook hears every portfolio.
    pub portfolio_id: String,
    /// Empty when the webhook hears every type.
    pub event_types: Vec<String>,
    pub description: String,
    pub create_time: String,
}

/// `ListWebhooks`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// `ListWebhookDeliveries`' request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryListing {
    pub webhook_id: Option<String>,
    pub event_id: Option<String>,
    pub status: Option<String>,
    #[serde(flatten)]
    pub paging: Paging,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttemptView {
    pub attempt: i64,
    pub time: String,
    /// 0 when no HTTP answer came back.
    pub status_code: i64,
    pub error: String,
    pub duration_ms: i64,
}

/// A delivery as listed: the event it carries, where it stands, and its attempts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryView {
    pub delivery_id: String,
    pub webhook_id: WebhookId,
    pub event_id: String,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_time: Option<String>,
    pub create_time: String,
    /// The body posted.
    pub payload: Value,
    pub attempts: Vec<AttemptView>,
}

/// `ListWebhookDeliveries`' answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
    #[serde(flatten)]
    pub paged: Paged,
}

impl Webhooks<'_> {
    fn administrators_only(&self, action: &str) -> Result<(), DomainError> {
        administrators_only(self.caller, action, "Only administrators manage webhooks.".into())
    }

    /// `CreateWebhook`.
    pub async fn create(&self, req: NewWebhook) -> Result<CreatedWebhook, DomainError> {
        self.administrators_only("CreateWebhook")?;
        if req.url.len() > MAX_URL {
            return Err(DomainError::invalid_parameter("Url", format!("The URL is longer than {MAX_URL} characters.")));
        }
        self.policy.check(&req.url).map_err(|e| DomainError::invalid_parameter("Url", format!("The Url is refused: {e}")))?;
        let description = req.description.unwrap_or_default();
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(DomainError::invalid_parameter(
                "Description",
                format!("The Description is longer than {MAX_DESCRIPTION} characters."),
            ));
        }
        let mut types = Vec::new();
        for name in &req.event_types {
            let event_type: EventType = name.parse().map_err(|e: String| DomainError::invalid_parameter("EventTypes", e))?;
            if !types.contains(&event_type) {
                types.push(event_type);
            }
        }
        if let Some(id) = &req.portfolio_id {
            if self.store.portfolio(id).await?.is_none() {
                return Err(DomainError::not_found("Portfolio", id));
            }
        }
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let webhook = Webhook {
            webhook_id: WebhookId::new(),
            url: req.url,
            secret_sealed: self.secrets.seal(&secret),
            portfolio_id: req.portfolio_id,
            event_types: serde_json::to_string(&types).map_err(|e| DomainError::Internal(e.to_string()))?,
            description,
            created_by: self.caller.principal_id.clone(),
            created_at: now_ms(),
        };
        self.store.insert_webhook(&webhook).await?;
        Ok(CreatedWebhook { webhook_id: webhook.webhook_id, secret })
    }

    /// `ListWebhooks`.
    pub async fn list(&self) -> Result<WebhookList, DomainError> {
        self.administrators_only("ListWebhooks")?;
        let webhooks = self.store.list_webhooks().await?.into_iter().map(view).collect();
        Ok(WebhookList { webhooks })
    }

    /// `DeleteWebhook`: with its deliveries, pending or not.
    pub async fn delete(&self, req: WebhookRef) -> Result<(), DomainError> {
        self.administrators_only("DeleteWebhook")?;
        if !self.store.delete_webhook(&req.webhook_id).await? {
            return Err(DomainError::not_found("Webhook", &req.webhook_id));
        }
        Ok(())
    }

    /// `ListWebhookDeliveries`: newest first, with their attempts.
    pub async fn deliveries(&self, req: DeliveryListing) -> Result<DeliveryList, DomainError> {
        self.administrators_only("ListWebhookDeliveries")?;
        let status = match &req.status {
            Some(s) => Some(s.parse::<DeliveryStatus>().map_err(|e| DomainError::invalid_parameter("Status", e))?),
            None => None,
        };
        let query = DeliveryQuery { webhook_id: req.webhook_id, event_id: req.event_id, status };
        let (deliveries, total) = self.store.list_deliveries(&query, req.paging.page()).await?;
        let ids: Vec<&str> = deliveries.iter().map(|d| d.delivery_id.as_str()).collect();
        let attempts = self.store.delivery_attempts(&ids).await?;
        let deliveries = deliveries
            .into_iter()
            .map(|d| {
                let mine = attempts.iter().filter(|a| a.delivery_id == d.delivery_id).cloned().collect();
                delivery_view(d, mine)
            })
            .collect();
        Ok(DeliveryList { deliveries, paged: req.paging.answer(total) })
    }
}

fn view(w: Webhook) -> WebhookView {
    WebhookView {
        webhook_id: w.webhook_id,
        url: w.url,
        portfolio_id: w.portfolio_id.unwrap_or_default(),
        event_types: serde_json::from_str(&w.event_types).unwrap_or_default(),
        description: w.description,
        create_time: format_time(w.created_at),
    }
}

fn delivery_view(d: Delivery, attempts: Vec<Attempt>) -> DeliveryView {
    DeliveryView {
        next_attempt_time: (d.status == DeliveryStatus::Pending).then(|| format_time(d.next_attempt_at)),
        create_time: format_time(d.created_at),
        payload: serde_json::from_str(&d.payload).unwrap_or(Value::Null),
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                time: format_time(a.attempted_at),
                status_code: a.status_code,
                error: a.error,
                duration_ms: a.duration_ms,
            })
            .collect(),
        delivery_id: d.delivery_id,
        webhook_id: d.webhook_id,
        event_id: d.event_id,
        event_type: d.event_type,
        status: d.status,
    }
}
