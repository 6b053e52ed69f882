//! Prometheus metrics of one node, served as text at `GET /metrics`: requests by action and
//! code with their latency, tasks by type and outcome with their duration (counted here), and
//! gauges read at scrape time: the task queue (from the store, so every node of a cluster
//! reports the shared queue), this node's workers and its database pools.

use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

/// Latency buckets of API requests, in seconds.
const REQUEST_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Duration buckets of tasks, in seconds (Terraform runs take seconds to hours).
const TASK_BUCKETS: &[f64] = &[1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0];

/// The metrics of one node.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    tasks: IntCounterVec,
    task_seconds: HistogramVec,
    queue_depth: IntGauge,
    queue_oldest_seconds: IntGauge,
    workers_busy: IntGauge,
    workers_total: IntGauge,
    pool_connections: IntGaugeVec,
    store_writes_failing: IntGauge,
    task_isolation: IntGaugeVec,
}

/// What a scrape reads from the store and the engine.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Tasks queued and not yet claimed.
    pub queue_depth: i64,
    /// Age of the oldest of them, in seconds (0 when none).
    pub queue_oldest_seconds: i64,
    /// Workers of this node running a job.
    pub workers_busy: usize,
    /// Workers of this node.
    pub workers_total: usize,
    /// Per database pool: (name, open connections, idle connections, maximum).
    pub pools: Vec<(&'static str, u32, u32, u32)>,
    /// The database fails writes for lack of space.
    pub store_writes_failing: bool,
}

impl Metrics {
    /// Registers every metric in a registry of its own.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("registered once");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels).expect("valid metric");
            registry.register(Box::new(h.clone())).expect("registered once");
            h
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("registered once");
            g
        };
        let pool_connections = IntGaugeVec::new(
            Opts::new("servicecatalog_db_pool_connections", "Database connections of this node by pool and state (in_use, idle, max)."),
            &["pool", "state"],
        )
        .expect("valid metric");
        registry.register(Box::new(pool_connections.clone())).expect("registered once");
        let task_isolation = IntGaugeVec::new(
            Opts::new(
                "servicecatalog_task_isolation",
                "1 for the isolation Terraform runs under on this node (bwrap, or none: unsandboxed).",
            ),
            &["mode"],
        )
        .expect("valid metric");
        registry.register(Box::new(task_isolation.clone())).expect("registered once");
        Metrics {
            task_isolation,
            requests: counter(
                "servicecatalog_requests_total",
                "API requests by action and answer code (Success or the error Code).",
                &["action", "code"],
            ),
            request_seconds: histogram(
                "servicecatalog_request_duration_seconds",
                "API request latency by action.",
                &["action"],
                REQUEST_BUCKETS,
            ),
            tasks: counter("servicecatalog_tasks_total", "Tasks run on this node by type and outcome.", &["type", "outcome"]),
            task_seconds: histogram(
                "servicecatalog_task_duration_seconds",
                "Duration of tasks run on this node by type.",
                &["type"],
                TASK_BUCKETS,
            ),
            queue_depth: gauge("servicecatalog_task_queue_depth", "Tasks queued and not yet claimed by a worker (all nodes)."),
            queue_oldest_seconds: gauge("servicecatalog_task_queue_oldest_age_seconds", "Age of the oldest queued task (0 when none)."),
            workers_busy: gauge("servicecatalog_workers_busy", "Workers of this node running a task or a plan preview."),
            workers_total: gauge("servicecatalog_workers", "Workers of this node."),
            store_writes_failing: gauge(
                "servicecatalog_store_writes_failing",
                "1 while the database fails writes for lack of space, else 0.",
            ),
            pool_connections,
            registry,
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, action: &str, code: &str, elapsed: Duration) {
        self.requests.with_label_values(&[action, code]).inc();
        self.request_seconds.with_label_values(&[action]).observe(elapsed.as_secs_f64());
    }

    /// Records the isolation Terraform runs under on this node.
    pub fn set_task_isolation(&self, mode: &str) {
        self.task_isolation.reset();
        self.task_isolation.with_label_values(&[mode]).set(1);
    }

    /// Counts one finished task.
    pub fn observe_task(&self, task_type: &str, outcome: &str, elapsed: Duration) {
        self.tasks.with_label_values(&[task_type, outcome]).inc();
        self.task_seconds.with_label_values(&[task_type]).observe(elapsed.as_secs_f64());
    }

    /// The text exposition with the scrape-time gauges set from `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        self.queue_depth.set(snapshot.queue_depth);
        self.queue_oldest_seconds.set(snapshot.queue_oldest_seconds);
        self.workers_busy.set(snapshot.workers_busy as i64);
        self.workers_total.set(snapshot.workers_total as i64);
        self.store_writes_failing.set(i64::from(snapshot.store_writes_failing));
        for (pool, open, idle, max) in &snapshot.pools {
            self.pool_connections.with_label_values(&[pool, "in_use"]).set(i64::from(open.saturating_sub(*idle)));
            self.pool_connections.with_label_values(&[pool, "idle"]).set(i64::from(*idle));
            self.pool_connections.with_label_values(&[pool, "max"]).set(i64::from(*max));
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_has_every_family_with_its_labels() {
        let m = Metrics::new();
        m.observe_request("LaunchProduct", "Success", Duration::from_millis(3));
        m.observe_request("GetTask", "EntityNotExists.Task", Duration::from_millis(1));
        m.observe_task("LaunchProduct", "Succeeded", Duration::from_secs(4));
        let text = m.render(&Snapshot {
            queue_depth: 2,
            queue_oldest_seconds: 7,
            workers_busy: 1,
            workers_total: 4,
            pools: vec![("write", 1, 0, 1)],
            store_writes_failing: true,
        });
        assert!(text.contains("servicecatalog_store_writes_failing 1"), "{text}");
        assert!(text.contains(r#"servicecatalog_requests_total{action="LaunchProduct",code="Success"} 1"#), "{text}");
        assert!(text.contains(r#"servicecatalog_request_duration_seconds_bucket{action="GetTask",le="0.001"} 1"#), "{text}");
        assert!(text.contains(r#"servicecatalog_tasks_total{outcome="Succeeded",type="LaunchProduct"} 1"#), "{text}");
        assert!(text.contains("servicecatalog_task_queue_depth 2"));
        assert!(text.contains("servicecatalog_task_queue_oldest_age_seconds 7"));
        assert!(text.contains("servicecatalog_workers_busy 1") && text.contains("servicecatalog_workers 4"));
        assert!(text.contains(r#"servicecatalog_db_pool_connections{pool="write",state="in_use"} 1"#), "{text}");
    }
}
