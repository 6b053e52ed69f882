//! Webhook delivery: the operator's [`WebhookPolicy`] (which URLs webhooks may name — none by
//! default, since a server that posts wherever it is told can be made to reach internal
//! services — and the limits of an attempt), the signature every delivery carries
//! ([`signature`]), and the [`Dispatcher`] each API node runs: it claims due deliveries from the
//! outbox (`store::webhook`), posts them, records each attempt and retries failures with
//! exponential backoff until they are delivered or out of attempts. Deliveries are at least
//! once: a node that dies between a post and its record leaves the delivery to be posted again
//! after its lease, with the same `X-ServiceCatalog-Delivery` id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::auth::secrets::SecretBox;
use crate::model::DeliveryStatus;
use crate::store::webhook::{Attempt, Delivery};
use crate::store::{now_ms, Store};

/// How often an idle dispatcher looks for due deliveries.
const POLL: Duration = Duration::from_secs(1);
/// Attempts one node makes at once.
const PARALLEL: usize = 8;
/// The longest wait between two attempts.
const LONGEST_WAIT: Duration = Duration::from_secs(3600);
/// Bytes of an endpoint's error kept with an attempt.
const ERROR_BYTES: usize = 300;

/// The flags of `serve` that set the policy.
#[derive(clap::Args, Debug, Clone)]
pub struct WebhookArgs {
    /// URL prefixes webhooks may post to, comma-separated (e.g. https://hooks.example.com/);
    /// `*` allows every URL. Default: none, CreateWebhook is refused.
    #[arg(long, env = "SERVICECATALOG_WEBHOOK_TARGETS", value_delimiter = ',')]
    pub webhook_targets: Vec<String>,
    /// Time limit of one delivery attempt, in seconds.
    #[arg(long, env = "SERVICECATALOG_WEBHOOK_TIMEOUT", default_value_t = 10)]
    pub webhook_timeout: u64,
    /// Attempts of a delivery before it is given up (status Failed).
    #[arg(long, env = "SERVICECATALOG_WEBHOOK_ATTEMPTS", default_value_t = 8)]
    pub webhook_attempts: i64,
    /// Wait before the first retry, in milliseconds; doubled after each failure, at most an hour.
    #[arg(long, env = "SERVICECATALOG_WEBHOOK_RETRY_MS", default_value_t = 10_000)]
    pub webhook_retry_ms: u64,
}

impl WebhookArgs {
    /// The policy these flags set.
    pub fn policy(&self) -> WebhookPolicy {
        WebhookPolicy {
            allow: self.webhook_targets.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
            timeout: Duration::from_secs(self.webhook_timeout.max(1)),
            attempts: self.webhook_attempts.max(1),
            first_retry: Duration::from_millis(self.webhook_retry_ms.max(1)),
        }
    }
}

/// Where webhooks may post, and how hard deliveries are tried.
#[derive(Debug, Clone)]
pub struct WebhookPolicy {
    /// URL prefixes allowed (`*`: all); empty: webhooks are disabled.
    pub allow: Vec<String>,
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// Attempts before a delivery fails.
    pub attempts: i64,
    /// Wait before the first retry.
    pub first_retry: Duration,
}

impl Default for WebhookPolicy {
    /// Webhooks disabled.
    fn default() -> Self {
        WebhookArgs { webhook_targets: Vec::new(), webhook_timeout: 10, webhook_attempts: 8, webhook_retry_ms: 10_000 }.policy()
    }
}

impl WebhookPolicy {
    /// Refuses a URL that is not `http(s)://` or that no allowed prefix covers.
    pub fn check(&self, url: &str) -> Result<(), String> {
        if self.allow.is_empty() {
            return Err("this server sends no webhooks (the operator allows endpoints with --webhook-targets).".into());
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("the URL {url:?} is not valid: {e}."))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!("the URL {url:?} is not an http:// or https:// URL."));
        }
        if !self.allow.iter().any(|prefix| crate::fetch::under(url, prefix)) {
            return Err(format!("the URL {url} is not under a prefix this server may post webhooks to (--webhook-targets)."));
        }
        Ok(())
    }

    /// The wait before attempt `made + 1`, `made` attempts having failed: the first retry's wait,
    /// doubled after each failure, at most an hour, less up to a tenth at random (so that
    /// deliveries failed together do not retry together).
    fn wait_after(&self, made: i64) -> Duration {
        let doubled = self.first_retry.saturating_mul(1u32 << made.clamp(1, 20).saturating_sub(1));
        let wait = doubled.min(LONGEST_WAIT);
        wait.saturating_sub(wait.mul_f64(rand::thread_rng().gen_range(0.0..0.1)))
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `<timestamp>.<body>` under the webhook's secret, sent as
/// `X-ServiceCatalog-Signature` with the timestamp (seconds since the epoch) as
/// `X-ServiceCatalog-Timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers the outbox of every node's events from this node.
pub struct Dispatcher {
    store: Store,
    secrets: SecretBox,
    policy: WebhookPolicy,
    client: reqwest::Client,
    /// The lease owner this node claims as.
    owner: String,
}

impl Dispatcher {
    /// A dispatcher over `store`; redirects are not followed (an allowed URL cannot send the
    /// delivery elsewhere).
    pub fn new(store: Store, secrets: SecretBox, policy: WebhookPolicy) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(policy.timeout)
            .user_agent(concat!("servicecatalog-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Dispatcher { store, secrets, policy, client, owner: crate::model::new_id("notify") })
    }

    /// Claims and posts due deliveries, [`PARALLEL`] at a time, for ever.
    pub async fn run(self) {
        let this = Arc::new(self);
        let slots = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let lease_ms = (this.policy.timeout + Duration::from_secs(30)).as_millis() as i64;
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
            match this.store.claim_delivery(&this.owner, lease_ms).await {
                Ok(Some(delivery)) => {
                    let this = Arc::clone(&this);
                    tokio::spawn(async move {
                        this.attempt(delivery).await;
                        drop(slot);
                    });
                }
                Ok(None) => tokio::time::sleep(POLL).await,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim webhook deliveries");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Posts one delivery and records the attempt.
    async fn attempt(&self, delivery: Delivery) {
        let started = Instant::now();
        let result = self.post(&delivery).await;
        let made = delivery.attempts + 1;
        let (status_code, error) = match &result {
            Ok(code) if (200..300).contains(code) => (*code, String::new()),
            Ok(code) => (*code, format!("the endpoint answered HTTP {code}")),
            Err(e) => (0, e.clone()),
        };
        let status = match (error.is_empty(), made >= self.policy.attempts) {
            (true, _) => DeliveryStatus::Delivered,
            (false, true) => DeliveryStatus::Failed,
            (false, false) => DeliveryStatus::Pending,
        };
        let wait = if status == DeliveryStatus::Pending { self.policy.wait_after(made).as_millis() as i64 } else { 0 };
        let attempt = Attempt {
            delivery_id: delivery.delivery_id.clone(),
            attempt: made,
            attempted_at: now_ms(),
            status_code,
            error: error.chars().take(ERROR_BYTES).collect(),
            duration_ms: started.elapsed().as_millis() as i64,
        };
        let (webhook, event) = (delivery.webhook_id.as_str(), delivery.event_id.as_str());
        match self.store.finish_attempt(&self.owner, &attempt, status, wait).await {
            Ok(true) if status == DeliveryStatus::Failed => {
                tracing::warn!(webhook, event, attempts = made, error = %attempt.error, "webhook delivery given up")
            }
            Ok(true) => tracing::debug!(webhook, event, attempt = made, ?status, "webhook delivery attempted"),
            Ok(false) => tracing::info!(webhook, event, "webhook delivery taken over by another node before its attempt was recorded"),
            Err(e) => tracing::warn!(webhook, event, error = %e, "cannot record a webhook delivery attempt"),
        }
    }

    /// Posts the delivery: the endpoint's HTTP status, or why none came back.
    async fn post(&self, delivery: &Delivery) -> Result<i64, String> {
        let webhook = self
            .store
            .webhook(&delivery.webhook_id)
            .await
            .map_err(|e| format!("the webhook cannot be read: {e}"))?
            .ok_or("the webhook was deleted")?;
        // Checked again at each attempt: an operator who narrows --webhook-targets stops the
        // webhooks registered under the old list.
        self.policy.check(&webhook.url)?;
        let secret = self.secrets.open(&webhook.secret_sealed).ok_or("the webhook's secret cannot be opened with the master key")?;
        let timestamp = now_ms() / 1000;
        let response = self
            .client
            .post(&webhook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-ServiceCatalog-Event", delivery.event_type.as_str())
            .header("X-ServiceCatalog-Delivery", &delivery.delivery_id)
            .header("X-ServiceCatalog-Timestamp", timestamp.to_string())
            .header("X-ServiceCatalog-Signature", signature(&secret, timestamp, &delivery.payload))
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        Ok(i64::from(response.status().as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> WebhookPolicy {
        WebhookPolicy { allow: allow.iter().map(|s| s.to_string()).collect(), ..WebhookPolicy::default() }
    }

    #[test]
    fn urls_are_checked_against_the_allowed_prefixes() {
        assert!(policy(&[]).check("https://hooks.example.com/x").unwrap_err().contains("--webhook-targets"));
        let p = policy(&["https://hooks.example.com"]);
        assert!(p.check("https://hooks.example.com/x").is_ok());
        assert!(p.check("https://hooks.example.com.attacker.net/x").is_err());
        assert!(p.check("https://hooks.example.com@attacker.net/x").is_err());
        assert!(policy(&["*"]).check("ftp://hooks.example.com/x").unwrap_err().contains("http://"));
        assert!(policy(&["*"]).check("not a url").is_err());
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let p = WebhookPolicy { first_retry: Duration::from_secs(10), ..policy(&["*"]) };
        let first = p.wait_after(1);
        assert!(first <= Duration::from_secs(10) && first >= Duration::from_secs(9), "{first:?}");
        let third = p.wait_after(3);
        assert!(third <= Duration::from_secs(40) && third >= Duration::from_secs(36), "{third:?}");
        assert!(p.wait_after(40) <= LONGEST_WAIT);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_and_body() {
        // Python: hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(signature("key", 1_700_000_000, "{}"), "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae");
    }
}
