//! `sandbox_failure`: a resource whose creation always fails with the given `message`, to test partial
//! applies. It never reaches the state, so the other lifecycle calls are trivial.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint, AttributeType, Schema};
use tf_provider::value::{Value, ValueString};
use tf_provider::{map, AttributePath, Diagnostics};

use super::SandboxResource;
use crate::provider::{attribute, schema};

/// Attributes of `sandbox_failure`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureState<'a> {
    pub id: ValueString<'a>,
    pub message: ValueString<'a>,
}

/// The `sandbox_failure` resource type.
pub struct FailureResource;

#[async_trait]
impl SandboxResource for FailureResource {
    type State<'a> = FailureState<'a>;

    fn schema(&self) -> Schema {
        schema(
            "Fails on create with `message`, to test partial applies.",
            map! {
                "id" => attribute(AttributeType::String, AttributeConstraint::Computed, "Never set: creation fails."),
                "message" => attribute(AttributeType::String, AttributeConstraint::Required, "The error message of the failed create."),
            },
        )
    }

    fn plan<'a>(&self, prior: Option<&Self::State<'a>>, mut proposed: Self::State<'a>) -> (Self::State<'a>, Vec<AttributePath>) {
        if prior.is_none() {
            proposed.id = Value::Unknown;
        }
        (proposed, vec![AttributePath::new("message")])
    }

    async fn create<'a>(&self, diags: &mut Diagnostics, planned: Self::State<'a>) -> Option<Self::State<'a>> {
        let message = match planned.message {
            Value::Value(message) => message.into_owned(),
            _ => "sandbox_failure failed".to_owned(),
        };
        diags.error(message, "sandbox_failure always fails on create.", AttributePath::new("message"));
        None
    }
}
