//! What is kept how long: every hour each node deletes audit events older than the audit
//! retention, and, older than the history retention, finished webhook deliveries (with their
//! attempts) and drift checks other than each provisioned product's latest. A zero retention
//! keeps forever. The deletes are idempotent, so nodes of a cluster may run them side by side.

use std::time::Duration;

use crate::store::{now_ms, Store, StoreResult};

/// How long each kind of record is kept (zero: forever).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Audit events.
    pub audit: Duration,
    /// Drift checks and finished webhook deliveries.
    pub history: Duration,
}

/// The flags of `serve` that set the retention, in days.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct RetentionArgs {
    /// Days the audit trail is kept (0: forever).
    #[arg(long, env = "SERVICECATALOG_AUDIT_RETENTION_DAYS", default_value_t = 90)]
    audit_retention_days: u64,
    /// Days drift checks (except each provisioned product's latest) and finished webhook
    /// deliveries are kept (0: forever).
    #[arg(long, env = "SERVICECATALOG_HISTORY_RETENTION_DAYS", default_value_t = 90)]
    history_retention_days: u64,
}

impl RetentionArgs {
    /// The retention the flags ask for.
    pub fn retention(&self) -> Retention {
        let days = |n: u64| Duration::from_secs(n * 86_400);
        Retention { audit: days(self.audit_retention_days), history: days(self.history_retention_days) }
    }
}

/// Deletes what is past its retention now and then every hour.
pub async fn run(store: Store, retention: Retention) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        prune_once(&store, retention, now_ms()).await;
    }
}

/// One round of deletes, as of `now` (ms).
async fn prune_once(store: &Store, retention: Retention, now: i64) {
    if let Some(before) = cutoff(now, retention.audit) {
        report("audit events", store.prune_audit_events(before).await);
    }
    if let Some(before) = cutoff(now, retention.history) {
        report("drift checks", store.prune_drift_checks(before).await);
        report("webhook deliveries", store.prune_webhook_deliveries(before).await);
    }
}

/// The time before which records kept for `retention` go; `None` when they are kept forever.
fn cutoff(now: i64, retention: Duration) -> Option<i64> {
    (!retention.is_zero()).then(|| now - retention.as_millis() as i64)
}

fn report(what: &str, deleted: StoreResult<u64>) {
    match deleted {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, what, "pruned records past their retention"),
        Err(e) => tracing::warn!(error = %e, what, "cannot prune records past their retention"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_keeps_forever() {
        assert_eq!(cutoff(10_000, Duration::ZERO), None);
        assert_eq!(cutoff(10_000, Duration::from_secs(3)), Some(7_000));
    }
}
