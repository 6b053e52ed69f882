//! Expiry's rules (an extension): the `Expiry` constraint of a product and portfolio gives its
//! provisioned products a default lifetime and a maximum one, counted from the launch. A launch
//! may ask for an `ExpiryTime` within the maximum (an administrator's may be later); without one
//! the default applies. `UpdateProvisionedProductExpiry` moves it: its owner within the maximum,
//! an administrator beyond it (the administrator's call is the approval) or removes it. The
//! scheduler's job of each expiring provisioned product ([`next_step`]) warns before the expiry,
//! then queues its terminate on behalf of its owner, and retries a failed terminate with
//! exponential backoff ([`retry_delay_ms`]) for as long as it fails.

use serde::{Deserialize, Serialize};

use super::queue::Provisioner;
use crate::catalog::constraint::{ConstraintConfig, ExpiryConfig};
use crate::catalog::error::DomainError;
use crate::catalog::wire::format_time;
use crate::model::{ProvisionedProductId, ProvisionedProductStatus, ScheduleKind, TaskStatus};
use crate::store::expiry::ExpiryState;
use crate::store::principal::Principal;
use crate::store::provisioning::Task;
use crate::store::Store;

/// How a time is spelt in `ExpiryTime`.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// How long an expiry job waits before it looks again at a provisioned product whose terminate
/// runs (or that another task holds).
pub const RECHECK_MS: i64 = 10_000;

/// The first retry of a failed expiry terminate waits this long; each next one twice as long.
const FIRST_RETRY_MS: i64 = 60_000;

/// The longest wait between two retries of a failed expiry terminate.
const MAX_RETRY_MS: i64 = 3_600_000;

/// `UpdateProvisionedProductExpiry`'s request (an extension).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateExpiry {
    pub provisioned_product_id: String,
    /// The new expiry; absent or empty removes it.
    pub expiry_time: Option<String>,
}

/// `UpdateProvisionedProductExpiry`'s answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExpiryAnswer {
    pub provisioned_product_id: ProvisionedProductId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
}

/// The `Expiry` constraint of a (portfolio, product) pair, if it has one.
pub async fn expiry_policy(store: &Store, portfolio_id: &str, product_id: &str) -> Result<Option<ExpiryConfig>, DomainError> {
    Ok(crate::catalog::constraint::configs(store, portfolio_id, product_id).await?.into_iter().find_map(|c| match c {
        ConstraintConfig::Expiry(c) => Some(c),
        _ => None,
    }))
}

/// An `ExpiryTime` as given (`2026-01-31T12:00:00Z`); empty is none.
pub fn parse_expiry_time(text: Option<&str>) -> Result<Option<i64>, DomainError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => {
            chrono::NaiveDateTime::parse_from_str(text, TIME_FORMAT).map(|t| Some(t.and_utc().timestamp_millis())).map_err(|_| {
                DomainError::invalid_parameter("ExpiryTime", "The parameter ExpiryTime must look like 2026-01-31T12:00:00Z (UTC).")
            })
        }
    }
}

/// Checks the expiry `asked` (ms; `None`: none) of a provisioned product launched at
/// `launched_at` under `policy`, set at `now` by `principal`: in the future, and for all but
/// administrators within the policy's maximum lifetime (nor removed while a policy applies).
pub fn check_expiry(
    principal: &Principal,
    policy: Option<&ExpiryConfig>,
    launched_at: i64,
    asked: Option<i64>,
    now: i64,
) -> Result<(), DomainError> {
    let refuse = |why: String| Err(DomainError::invalid_parameter("ExpiryTime", why));
    match (asked, policy) {
        (Some(at), _) if at <= now => refuse(format!("The ExpiryTime {} is not in the future.", format_time(at))),
        (Some(at), Some(policy)) if !principal.is_admin && at > launched_at + policy.max_ms() => refuse(format!(
            "The ExpiryTime {} is beyond the longest lifetime this product allows ({} minutes from the launch: {}); \
             ask an administrator to set a later one.",
            format_time(at),
            policy.max_minutes.0 / 60_000,
            format_time(launched_at + policy.max_ms())
        )),
        (None, Some(_)) if !principal.is_admin => {
            refuse("An Expiry constraint covers this product: only an administrator may remove its expiry.".into())
        }
        _ => Ok(()),
    }
}

/// The expiry of a provisioned product `principal` launches at `now` under `policy`: the one
/// asked for (checked), else the policy's default, else none.
pub fn launch_expiry(
    principal: &Principal,
    policy: Option<&ExpiryConfig>,
    asked: Option<i64>,
    now: i64,
) -> Result<Option<i64>, DomainError> {
    if asked.is_none() {
        return Ok(policy.map(|p| now + p.default_ms()));
    }
    check_expiry(principal, policy, now, asked, now)?;
    Ok(asked)
}

/// How long after its `failures`-th failure (from 1) a failed expiry terminate is tried again:
/// a minute, doubling each time, at most an hour.
pub fn retry_delay_ms(failures: usize) -> i64 {
    let doublings = failures.saturating_sub(1).min(20) as u32;
    FIRST_RETRY_MS.saturating_mul(1 << doublings).min(MAX_RETRY_MS)
}

/// What a provisioned product's expiry job does when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryStep {
    /// It has no expiry (any more): the job goes.
    Forget,
    /// Tell of the warning due at `at`; then run again at `next_due`.
    Warn { at: i64, next_due: i64 },
    /// Nothing to do before `until`.
    Wait { until: i64 },
    /// Queue its terminate (`first`: the expiry's first, told as `Expired`; else a retry).
    Terminate { first: bool },
}

/// The step of an expiry job at `now` (the database's clock): `state` is the provisioned
/// product's expiry, `warnings` its warning times, `status` its status, and `terminations` the
/// terminates since its expiry's first, oldest first.
pub fn next_step(now: i64, state: &ExpiryState, warnings: &[i64], status: ProvisionedProductStatus, terminations: &[Task]) -> ExpiryStep {
    let Some(expires_at) = state.expires_at else { return ExpiryStep::Forget };
    if now < expires_at {
        let told = state.warned_at.unwrap_or(i64::MIN);
        let next_due = warnings.iter().copied().filter(|t| *t > now).min().unwrap_or(expires_at).min(expires_at);
        return match warnings.iter().copied().filter(|t| *t <= now && *t > told).max() {
            Some(at) => ExpiryStep::Warn { at, next_due },
            None => ExpiryStep::Wait { until: next_due },
        };
    }
    if status == ProvisionedProductStatus::UnderChange {
        return ExpiryStep::Wait { until: now + RECHECK_MS };
    }
    if state.task_id.is_none() {
        return ExpiryStep::Terminate { first: true };
    }
    match terminations.last() {
        Some(last) if last.status == TaskStatus::Failed => {
            let retry_at = last.updated_at + retry_delay_ms(terminations.len());
            if now >= retry_at {
                ExpiryStep::Terminate { first: false }
            } else {
                ExpiryStep::Wait { until: retry_at }
            }
        }
        _ => ExpiryStep::Wait { until: now + RECHECK_MS },
    }
}

impl Provisioner<'_> {
    /// `UpdateProvisionedProductExpiry`: sets or removes the expiry of a provisioned product the
    /// caller may change (its owner within its `Expiry` constraint's maximum; an administrator
    /// any future time), `Available` or `Error`, and not expired.
    pub async fn update_expiry(&self, principal: &Principal, req: UpdateExpiry) -> Result<ExpiryAnswer, DomainError> {
        let pp = self.visible(principal, &req.provisioned_product_id).await?;
        let asked = parse_expiry_time(req.expiry_time.as_deref())?;
        if pp.status == ProvisionedProductStatus::UnderChange {
            return Err(super::refuse_under_change(&pp));
        }
        let now = self.store.clock_ms().await?;
        if pp.expires_at.is_some_and(|at| at <= now) {
            return Err(DomainError::invalid_status(
                "ProvisionedProduct",
                format!("The provisioned product {} expired; its terminate is queued or retried.", pp.provisioned_product_id),
            ));
        }
        let policy = expiry_policy(self.store, &pp.portfolio_id, &pp.product_id).await?;
        check_expiry(principal, policy.as_ref(), pp.created_at, asked, now)?;
        if !self.store.set_expiry(&pp.provisioned_product_id, asked).await? {
            return Err(super::refuse_under_change(&pp));
        }
        match asked {
            // Due now: the job works out its warnings and its next time from the new expiry.
            Some(_) => self.store.schedule(ScheduleKind::Expiry, &pp.provisioned_product_id, 0, 0).await?,
            None => self.store.unschedule(ScheduleKind::Expiry, &pp.provisioned_product_id).await?,
        }
        Ok(ExpiryAnswer { provisioned_product_id: pp.provisioned_product_id, expiry_time: asked.map(format_time) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::constraint::ConstraintType;
    use crate::model::OperationType;
    use crate::store::principal::RAM_USER;
    use crate::store::provisioning::tests::sample_task;

    fn policy() -> ExpiryConfig {
        let text = r#"{"DefaultMinutes": 60, "MaxMinutes": 120, "WarningMinutes": [30, 10]}"#;
        match ConstraintConfig::parse(ConstraintType::Expiry, text).unwrap() {
            ConstraintConfig::Expiry(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn user(is_admin: bool) -> Principal {
        Principal { principal_id: "1".into(), principal_type: RAM_USER.into(), name: "u".into(), is_admin, created_at: 0 }
    }

    const MIN: i64 = 60_000;

    #[test]
    fn a_launch_gets_the_default_or_an_expiry_within_the_maximum() {
        let (p, now) = (policy(), 1_000 * MIN);
        assert_eq!(launch_expiry(&user(false), Some(&p), None, now).unwrap(), Some(now + 60 * MIN));
        assert_eq!(launch_expiry(&user(false), None, None, now).unwrap(), None);
        assert_eq!(launch_expiry(&user(false), Some(&p), Some(now + 120 * MIN), now).unwrap(), Some(now + 120 * MIN));
        let over = launch_expiry(&user(false), Some(&p), Some(now + 121 * MIN), now).unwrap_err();
        assert!(over.to_string().contains("beyond the longest lifetime"), "{over}");
        assert_eq!(launch_expiry(&user(true), Some(&p), Some(now + 500 * MIN), now).unwrap(), Some(now + 500 * MIN));
        assert!(launch_expiry(&user(true), Some(&p), Some(now), now).unwrap_err().to_string().contains("not in the future"));
        assert_eq!(launch_expiry(&user(false), None, Some(now + 9_999 * MIN), now).unwrap(), Some(now + 9_999 * MIN));
    }

    #[test]
    fn an_extension_counts_the_maximum_from_the_launch_and_only_administrators_remove_it() {
        let (p, launched, now) = (policy(), 1_000 * MIN, 1_100 * MIN);
        assert!(check_expiry(&user(false), Some(&p), launched, Some(launched + 120 * MIN), now).is_ok());
        assert!(check_expiry(&user(false), Some(&p), launched, Some(launched + 121 * MIN), now).is_err());
        assert!(check_expiry(&user(true), Some(&p), launched, Some(launched + 900 * MIN), now).is_ok());
        assert!(check_expiry(&user(false), Some(&p), launched, None, now).unwrap_err().to_string().contains("administrator"));
        assert!(check_expiry(&user(true), Some(&p), launched, None, now).is_ok());
        assert!(check_expiry(&user(false), None, launched, None, now).is_ok());
    }

    #[test]
    fn expiry_times_parse_as_utc() {
        assert_eq!(parse_expiry_time(Some("1970-01-01T00:01:00Z")).unwrap(), Some(MIN));
        assert_eq!(parse_expiry_time(Some("")).unwrap(), None);
        assert_eq!(parse_expiry_time(None).unwrap(), None);
        assert!(parse_expiry_time(Some("tomorrow")).is_err());
    }

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let delays: Vec<i64> = (1..=8).map(retry_delay_ms).collect();
        assert_eq!(delays, vec![MIN, 2 * MIN, 4 * MIN, 8 * MIN, 16 * MIN, 32 * MIN, 60 * MIN, 60 * MIN]);
        assert_eq!(retry_delay_ms(10_000), 60 * MIN);
    }

    #[test]
    fn the_job_warns_each_warning_once_then_terminates_then_retries_failures() {
        let expires_at = 1_000 * MIN;
        let warnings = policy().warning_times(expires_at);
        let state = |warned_at: Option<i64>, task: Option<&str>| ExpiryState {
            expires_at: Some(expires_at),
            warned_at,
            task_id: task.map(Into::into),
        };
        let available = ProvisionedProductStatus::Available;
        let step = |now: i64, state: &ExpiryState, terminations: &[Task]| next_step(now, state, &warnings, available, terminations);
        assert_eq!(step(0, &state(None, None), &[]), ExpiryStep::Wait { until: expires_at - 30 * MIN });
        assert_eq!(
            step(975 * MIN, &state(None, None), &[]),
            ExpiryStep::Warn { at: expires_at - 30 * MIN, next_due: expires_at - 10 * MIN }
        );
        let told = state(Some(expires_at - 30 * MIN), None);
        assert_eq!(step(975 * MIN, &told, &[]), ExpiryStep::Wait { until: expires_at - 10 * MIN });
        // Both warnings passed while nobody ran the job: only the later one is told.
        assert_eq!(step(995 * MIN, &state(None, None), &[]), ExpiryStep::Warn { at: expires_at - 10 * MIN, next_due: expires_at });
        assert_eq!(step(expires_at, &told, &[]), ExpiryStep::Terminate { first: true });
        assert_eq!(
            next_step(expires_at, &told, &warnings, ProvisionedProductStatus::UnderChange, &[]),
            ExpiryStep::Wait { until: expires_at + RECHECK_MS }
        );
        assert_eq!(step(expires_at, &ExpiryState { expires_at: None, ..told }, &[]), ExpiryStep::Forget);

        let mut failed = sample_task("task-1");
        (failed.task_type, failed.status, failed.updated_at) = (OperationType::TerminateProvisionedProduct, TaskStatus::Failed, expires_at);
        let queued = state(None, Some("task-1"));
        let error = ProvisionedProductStatus::Error;
        assert_eq!(next_step(expires_at + 1, &queued, &warnings, error, &[failed.clone()]), ExpiryStep::Wait { until: expires_at + MIN });
        assert_eq!(next_step(expires_at + MIN, &queued, &warnings, error, &[failed.clone()]), ExpiryStep::Terminate { first: false });
        let twice = [failed.clone(), failed.clone()];
        assert_eq!(next_step(expires_at + MIN, &queued, &warnings, error, &twice), ExpiryStep::Wait { until: expires_at + 2 * MIN });
        let mut running = failed;
        running.status = TaskStatus::InProgress;
        assert_eq!(next_step(expires_at, &queued, &warnings, error, &[running]), ExpiryStep::Wait { until: expires_at + RECHECK_MS });
    }
}
