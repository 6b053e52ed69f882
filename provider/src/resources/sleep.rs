//! `sandbox_sleep`: waits `duration_ms` milliseconds on create, to test slow applies, timeouts,
//! cancellation and crashes. A SIGINT to the provider (Terraform sends one to its whole process group on
//! Ctrl-C or cancellation) ends the wait early with an error, so the resource is not created.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint, AttributeType, Schema};
use tf_provider::value::{Value, ValueNumber, ValueString};
use tf_provider::{map, AttributePath, Diagnostics};
use tokio_util::sync::CancellationToken;

use super::SandboxResource;
use crate::provider::{attribute, schema};

/// Attributes of `sandbox_sleep`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SleepState<'a> {
    pub id: ValueString<'a>,
    pub duration_ms: ValueNumber,
}

/// The `sandbox_sleep` resource type.
pub struct SleepResource {
    interrupted: CancellationToken,
}

impl SleepResource {
    pub fn new(interrupted: CancellationToken) -> Self {
        Self { interrupted }
    }
}

#[async_trait]
impl SandboxResource for SleepResource {
    type State<'a> = SleepState<'a>;

    fn schema(&self) -> Schema {
        schema(
            "Waits on create, to test slow applies; a SIGINT cuts the wait short with an error.",
            map! {
                "id" => attribute(AttributeType::String, AttributeConstraint::Computed, "The duration, as `<n>ms`."),
                "duration_ms" => attribute(
                    AttributeType::Number,
                    AttributeConstraint::Required,
                    "Milliseconds to wait on create (0 or more). Changing it replaces the resource, so it waits again.",
                ),
            },
        )
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) {
        if matches!(config.duration_ms, Value::Value(ms) if ms < 0) {
            diags.error_short("`duration_ms` must be 0 or more", AttributePath::new("duration_ms"));
        }
    }

    /// The id is known once the wait is over; a new duration waits again.
    fn plan<'a>(&self, prior: Option<&Self::State<'a>>, mut proposed: Self::State<'a>) -> (Self::State<'a>, Vec<AttributePath>) {
        if prior.is_none() {
            proposed.id = Value::Unknown;
        }
        (proposed, vec![AttributePath::new("duration_ms")])
    }

    async fn create<'a>(&self, diags: &mut Diagnostics, mut planned: Self::State<'a>) -> Option<Self::State<'a>> {
        let Value::Value(ms) = planned.duration_ms else {
            diags.error_short("`duration_ms` must be known", AttributePath::new("duration_ms"));
            return None;
        };
        let started = Instant::now();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms.max(0).unsigned_abs())) => {}
            () = self.interrupted.cancelled() => {
                diags.error(
                    "Sleep interrupted",
                    format!("SIGINT received after {} ms of {ms} ms.", started.elapsed().as_millis()),
                    AttributePath::new("duration_ms"),
                );
                return None;
            }
        }
        planned.id = Value::Value(Cow::Owned(format!("{ms}ms")));
        Some(planned)
    }
}
