//! Request limits, each refusal a documented 4xx: body size (`413 RequestBodyTooLarge`, checked
//! where the body is read), parameter count (`400 TooManyParameters`) and length
//! (`400 InvalidParameter.<Name>`), a per-caller request rate (`400 Throttling.User` with
//! `x-acs-retry-after`, which the SDK raises as `ThrottlingException`), and tasks in progress per
//! principal (`400 QuotaExceeded.ConcurrentTasks`), and the time a body may take to arrive
//! (`408 RequestTimeout`). Zero turns a limit off (the body time is at least a second).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::StatusCode;

use super::action::{Action, Effect};
use super::error::ApiError;
use crate::protocol::params::RequestParams;
use crate::store::Store;

/// The configured limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most parameters in one request (query and body; flattened array entries count one each).
    pub max_parameters: usize,
    /// Longest parameter value, in bytes.
    pub max_parameter_bytes: usize,
    /// Sustained requests per second per caller (0: unlimited).
    pub rate_per_second: f64,
    /// Requests a caller may send at once above the sustained rate.
    pub rate_burst: u32,
    /// Tasks in progress per principal (0: unlimited).
    pub max_tasks_per_principal: u32,
    /// Longest a client may take to send a request's body (`408 RequestTimeout`).
    pub body_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: super::rpc::MAX_BODY_BYTES,
            max_parameters: 1000,
            max_parameter_bytes: 1024 * 1024,
            rate_per_second: 0.0,
            rate_burst: 50,
            max_tasks_per_principal: 0,
            body_timeout: std::time::Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// Refuses requests with too many parameters or a parameter too long.
    pub fn check_parameters(&self, params: &RequestParams) -> Result<(), ApiError> {
        let count = params.query.len() + params.body.len();
        if self.max_parameters > 0 && count > self.max_parameters {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "TooManyParameters",
                format!("The request has {count} parameters; the limit is {}.", self.max_parameters),
            ));
        }
        if self.max_parameter_bytes > 0 {
            if let Some((name, value)) = params.query.iter().chain(&params.body).find(|(_, v)| v.len() > self.max_parameter_bytes) {
                return Err(ApiError::invalid_parameter(
                    name,
                    format!("The parameter {name} is {} bytes long; the limit is {} bytes.", value.len(), self.max_parameter_bytes),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a change that would queue a task while its caller already has the most tasks in
    /// progress. Counted before the task is queued: concurrent requests may overshoot by their number.
    pub async fn check_tasks(&self, store: &Store, action: Action, principal_id: &str) -> Result<(), ApiError> {
        if self.max_tasks_per_principal == 0 || action.effect() != Effect::QueuesTask {
            return Ok(());
        }
        let running = store.tasks_in_progress_of(principal_id).await?;
        if running >= i64::from(self.max_tasks_per_principal) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "QuotaExceeded.ConcurrentTasks",
                format!(
                    "You have {running} tasks in progress; the limit is {}. Retry when one has finished (GetTask).",
                    self.max_tasks_per_principal
                ),
            ));
        }
        Ok(())
    }
}

/// The limits' command-line flags (`serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Largest request body, in bytes.
    #[arg(long, env = "SERVICECATALOG_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Most parameters in one request (0: unlimited).
    #[arg(long, env = "SERVICECATALOG_MAX_PARAMETERS", default_value_t = Limits::default().max_parameters)]
    pub max_parameters: usize,
    /// Longest parameter value, in bytes (0: unlimited).
    #[arg(long, env = "SERVICECATALOG_MAX_PARAMETER_BYTES", default_value_t = Limits::default().max_parameter_bytes)]
    pub max_parameter_bytes: usize,
    /// Sustained requests per second per caller (0: unlimited).
    #[arg(long, env = "SERVICECATALOG_RATE_LIMIT", default_value_t = Limits::default().rate_per_second)]
    pub rate_limit: f64,
    /// Requests a caller may send in a burst above the sustained rate.
    #[arg(long, env = "SERVICECATALOG_RATE_BURST", default_value_t = Limits::default().rate_burst)]
    pub rate_burst: u32,
    /// Tasks in progress per principal; more launches, updates and terminations are refused (0: unlimited).
    #[arg(long, env = "SERVICECATALOG_MAX_TASKS_PER_PRINCIPAL", default_value_t = Limits::default().max_tasks_per_principal)]
    pub max_tasks_per_principal: u32,
    /// Seconds a client may take to send a request's body before `408 RequestTimeout`.
    #[arg(long, env = "SERVICECATALOG_BODY_TIMEOUT", default_value_t = Limits::default().body_timeout.as_secs())]
    pub body_timeout: u64,
}

impl LimitArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: self.max_body_bytes,
            max_parameters: self.max_parameters,
            max_parameter_bytes: self.max_parameter_bytes,
            rate_per_second: self.rate_limit,
            rate_burst: self.rate_burst,
            max_tasks_per_principal: self.max_tasks_per_principal,
            body_timeout: std::time::Duration::from_secs(self.body_timeout.max(1)),
        }
    }
}

/// Token buckets per caller, in memory (each node limits on its own).
pub struct RateLimiter {
    buckets: Option<TokenBuckets<String>>,
}

impl RateLimiter {
    /// A limiter of `per_second` sustained requests with bursts of `burst` (0: unlimited).
    pub fn new(limits: &Limits) -> RateLimiter {
        let buckets = (limits.rate_per_second > 0.0).then(|| TokenBuckets::new(limits.rate_per_second, limits.rate_burst, usize::MAX));
        RateLimiter { buckets }
    }

    /// Takes a token from `caller`'s bucket, or refuses with the seconds until one is there.
    pub fn check(&self, caller: &str) -> Result<(), ApiError> {
        self.take(caller, Instant::now()).map_err(|wait| {
            ApiError::new(StatusCode::BAD_REQUEST, "Throttling.User", "Request was denied due to user flow control: retry later.")
                .with_retry_after(wait)
        })
    }

    /// `Err(seconds to wait)` when the bucket is empty at `now`.
    fn take(&self, caller: &str, now: Instant) -> Result<(), u64> {
        match &self.buckets {
            None => Ok(()),
            Some(buckets) => buckets.take(caller.to_string(), now),
        }
    }
}

/// Token buckets by key, refilled at `per_second` up to `burst`, in memory. Full buckets are
/// forgotten (a full bucket is the same as none) once [`SWEEP_AT`] keys are tracked; beyond
/// `max_keys` the bucket used least recently is dropped, so memory stays bounded whatever keys
/// callers invent.
pub struct TokenBuckets<K> {
    per_second: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Keys tracked before full buckets are forgotten.
const SWEEP_AT: usize = 10_000;

impl<K: std::hash::Hash + Eq + Clone> TokenBuckets<K> {
    /// Buckets of `burst` tokens (at least 1) refilled at `per_second`, for at most `max_keys` keys.
    pub fn new(per_second: f64, burst: u32, max_keys: usize) -> Self {
        TokenBuckets { per_second, burst: f64::from(burst.max(1)), max_keys: max_keys.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// `key`'s bucket brought up to `now`, created full when new.
    fn refilled<'a>(&self, buckets: &'a mut HashMap<K, Bucket>, key: K, now: Instant) -> &'a mut Bucket {
        if !buckets.contains_key(&key) && buckets.len() >= SWEEP_AT.min(self.max_keys) {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= self.max_keys {
                let oldest = buckets.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| k.clone());
                oldest.map(|k| buckets.remove(&k));
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: self.burst, at: now });
        bucket.tokens = (bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second).min(self.burst);
        bucket.at = now;
        bucket
    }

    fn wait(&self, tokens: f64) -> u64 {
        ((1.0 - tokens) / self.per_second).ceil().max(1.0) as u64
    }

    /// Takes a token from `key`'s bucket, or `Err(seconds until one is there)`.
    pub fn take(&self, key: K, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = self.refilled(&mut buckets, key, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait(bucket.tokens))
        }
    }

    /// Seconds until `key`'s bucket holds a token at `now` (`None`: it holds one), taking nothing.
    pub fn empty_for(&self, key: &K, now: Instant) -> Option<u64> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.get(key)?;
        let tokens = bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second;
        (tokens < 1.0).then(|| self.wait(tokens))
    }

    /// Forgets `key`'s bucket (it is full again).
    pub fn forget(&self, key: &K) {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(&Limits { rate_per_second: per_second, rate_burst: burst, ..Limits::default() })
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let l = limiter(2.0, 3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| l.take("a", t0).is_ok()));
        assert_eq!(l.take("a", t0), Err(1));
        assert!(l.take("b", t0).is_ok(), "callers have buckets of their own");
        assert!(l.take("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(l.take("a", t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn a_slow_rate_asks_for_a_longer_wait() {
        let l = limiter(0.1, 1);
        let t0 = Instant::now();
        assert!(l.take("a", t0).is_ok());
        assert_eq!(l.take("a", t0), Err(10));
    }

    #[test]
    fn zero_is_unlimited_and_full_buckets_are_forgotten() {
        let off = limiter(0.0, 1);
        assert!((0..100).all(|_| off.take("a", Instant::now()).is_ok()));
        let l = limiter(1000.0, 1);
        let t0 = Instant::now();
        for n in 0..SWEEP_AT + 10 {
            let _ = l.take(&n.to_string(), t0);
        }
        let _ = l.take("late", t0 + Duration::from_secs(1));
        assert!(l.buckets.as_ref().unwrap().len() < SWEEP_AT);
    }

    #[test]
    fn keys_are_bounded_and_the_least_recent_goes_first() {
        let b = TokenBuckets::new(1.0 / 60.0, 2, 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        for (n, key) in ["a", "b", "c"].into_iter().enumerate() {
            assert!(b.take(key, at(n as u64)).is_ok());
        }
        assert_eq!(b.empty_for(&"a", at(3)), None, "one token left");
        assert!(b.take("a", at(3)).is_ok());
        // 0.05 tokens left: a whole one in 57 s.
        assert_eq!(b.empty_for(&"a", at(3)), Some(57));
        assert_eq!(b.take("a", at(3)), Err(57));
        // A fourth key evicts the least recently used ("b"), never more than three are kept.
        assert!(b.take("d", at(4)).is_ok());
        assert_eq!(b.len(), 3);
        assert_eq!(b.empty_for(&"a", at(4)), Some(56), "a is still throttled");
        b.forget(&"a");
        assert_eq!(b.empty_for(&"a", at(4)), None);
    }

    #[test]
    fn parameters_are_counted_and_measured() {
        let limits = Limits { max_parameters: 2, max_parameter_bytes: 4, ..Limits::default() };
        let ok = RequestParams::decode(Some("A=1"), Some(b"B=1234")).unwrap();
        assert!(limits.check_parameters(&ok).is_ok());
        let many = RequestParams::decode(Some("A=1&B=2&C=3"), None).unwrap();
        assert_eq!(limits.check_parameters(&many).unwrap_err().code(), "TooManyParameters");
        let long = RequestParams::decode(None, Some(b"Tags.1.Value=12345")).unwrap();
        assert_eq!(limits.check_parameters(&long).unwrap_err().code(), "InvalidParameter.Tags");
    }
}
