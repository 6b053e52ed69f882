//! Closed-loop load: `concurrency` workers, each on its own keep-alive connection, send calls
//! back to back until the time or request budget is spent. Reports requests/s, latency
//! percentiles, the server's CPU time per request from `/proc/PID/stat`, and on PostgreSQL the
//! CPU time of the database backends serving the server ([`PgBackends`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::client::{Call, Connection, Credentials};

/// A named workload: its calls are sent in turn (so that ids vary from one request to the next).
pub struct Case {
    pub name: String,
    pub calls: Vec<Call>,
    /// It changes data (run only when asked for).
    pub write: bool,
}

impl Case {
    /// A case that changes nothing.
    pub fn read(name: &str, calls: Vec<Call>) -> Self {
        Case { name: name.into(), calls, write: false }
    }
}

/// Where and how long to load.
pub struct Budget {
    pub host: String,
    pub credentials: Credentials,
    /// Server process whose CPU time is read.
    pub pid: Option<u32>,
    /// Upper bound of the measured phase.
    pub duration: Duration,
    /// Upper bound of the requests sent (all workers together).
    pub max_requests: u64,
    /// The PostgreSQL backends serving the server, when it runs on PostgreSQL.
    pub postgres: Option<PgBackends>,
}

/// The PostgreSQL backend processes of the server's connections: those whose `application_name`
/// (set in the server's database URL) is `application`, found through `pg_stat_activity` on a
/// connection of the load generator's own (another name, so it is not counted).
pub struct PgBackends {
    pub pool: sqlx::PgPool,
    pub application: String,
}

impl PgBackends {
    /// CPU ticks (utime + stime) of each backend serving the server now.
    async fn ticks(&self) -> anyhow::Result<HashMap<u32, u64>> {
        let pids: Vec<i32> = sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
            .bind(&self.application)
            .fetch_all(&self.pool)
            .await?;
        // A backend that ended between the query and the read is skipped.
        Ok(pids.into_iter().filter_map(|pid| Some((pid as u32, cpu_ticks(pid as u32).ok()?))).collect())
    }
}

/// Ticks spent between two readings: a backend started in between counts whole (its start is
/// part of the load); one that ended in between is lost (the pools keep theirs open under load).
fn ticks_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> u64 {
    after.iter().map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0))).sum()
}

/// Runs `case` at `concurrency` and returns its figures as a JSON object.
pub async fn run(case: &Case, concurrency: usize, budget: &Budget) -> anyhow::Result<Value> {
    let calls = Arc::new(case.calls.clone());
    let sent = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(concurrency + 1));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut connection = Connection::open(&budget.host, &budget.credentials).await?;
        // One warm-up call per connection, outside the measurement.
        connection.send(&calls[0]).await?.json()?;
        let (calls, sent, start, max, duration) =
            (Arc::clone(&calls), Arc::clone(&sent), Arc::clone(&start), budget.max_requests, budget.duration);
        workers.push(tokio::spawn(async move {
            let mut latencies_us: Vec<u32> = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            start.wait().await;
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                if n >= max {
                    break;
                }
                let began = Instant::now();
                match connection.send(&calls[n as usize % calls.len()]).await {
                    Ok(answer) if answer.status == 200 => latencies_us.push(began.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    Ok(answer) => errors.push(format!("HTTP {}: {}", answer.status, String::from_utf8_lossy(&answer.body))),
                    Err(e) => {
                        errors.push(e.to_string());
                        break;
                    }
                }
            }
            (latencies_us, errors)
        }));
    }
    start.wait().await;
    let cpu_before = budget.pid.map(cpu_ticks).transpose()?;
    let pg_before = match &budget.postgres {
        Some(pg) => Some(pg.ticks().await?),
        None => None,
    };
    let began = Instant::now();
    let mut latencies: Vec<u32> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for worker in workers {
        let (l, e) = worker.await?;
        latencies.extend(l);
        errors.extend(e);
    }
    let elapsed = began.elapsed().as_secs_f64();
    let cpu_after = budget.pid.map(cpu_ticks).transpose()?;
    let pg_ticks = match (&budget.postgres, pg_before) {
        (Some(pg), Some(before)) => Some(ticks_between(&before, &pg.ticks().await?)),
        _ => None,
    };
    latencies.sort_unstable();
    let served = (latencies.len() + errors.len()) as f64;
    let cpu_us = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) if served > 0.0 => Some((a - b) as f64 * 1e6 / USER_HZ / served),
        _ => None,
    };
    let postgres_cpu_us = pg_ticks.filter(|_| served > 0.0).map(|t| t as f64 * 1e6 / USER_HZ / served);
    Ok(json!({
        "case": case.name,
        "concurrency": concurrency,
        "requests": latencies.len(),
        "errors": errors.len(),
        "first_error": errors.first(),
        "seconds": round(elapsed, 3),
        "rps": round(latencies.len() as f64 / elapsed, 1),
        "p50_ms": percentile_ms(&latencies, 0.50),
        "p99_ms": percentile_ms(&latencies, 0.99),
        "max_ms": percentile_ms(&latencies, 1.0),
        "server_cpu_us_per_request": cpu_us.map(|c| round(c, 1)),
        "postgres_cpu_us_per_request": postgres_cpu_us.map(|c| round(c, 1)),
    }))
}

/// The `q` quantile (nearest rank) of sorted microseconds, in milliseconds.
fn percentile_ms(sorted_us: &[u32], q: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    Some(round(f64::from(sorted_us[rank - 1]) / 1000.0, 3))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default().split_whitespace().collect();
    let field =
        |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| anyhow::anyhow!("unreadable /proc/{pid}/stat"));
    Ok(field(14)? + field(15)?)
}

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on every Linux architecture that
/// runs this).
const USER_HZ: f64 = 100.0;
