//! `GET /metrics`: the node's Prometheus metrics, with the queue read from the store at scrape
//! time. Unauthenticated like `/healthz` (nothing in it is secret): restrict it by network.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::SharedState;
use crate::ops::metrics::{Snapshot, CONTENT_TYPE};
use crate::store::Store;

/// Renders the metrics; `503` when the store cannot be read.
pub async fn scrape(State(state): State<SharedState>) -> Response {
    let (workers_busy, workers_total) = state.engine.utilisation();
    let mut snapshot = Snapshot { workers_busy, workers_total, pools: state.store.pool_stats(), ..Snapshot::default() };
    snapshot.store_writes_failing = state.store.health().await.writes_failing;
    match state.store.queue_stats().await {
        Ok((depth, oldest)) => {
            snapshot.queue_depth = depth;
            snapshot.queue_oldest_seconds = Store::queue_age_seconds(oldest);
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the task queue");
            return (StatusCode::SERVICE_UNAVAILABLE, "the database is unavailable\n").into_response();
        }
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics.render(&snapshot)).into_response()
}
