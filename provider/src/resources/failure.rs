//! `sandbox_failure`: a resource whose creation always fails with the given `message`, to test partial
//! applies. It never reaches the state, so the other lifecycle calls are trivial.

use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint, AttributeType, Schema};
use tf_provider::value::{Value, ValueString};
use tf_provider::{map, AttributePath, Diagnostics};

use crate::provider::{attribute, schema};

/// Attributes of `sandbox_failure`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureState<'a> {
    pub id: ValueString<'a>,
    pub message: ValueString<'a>,
}

/// The `sandbox_failure` resource type.
pub struct FailureResource;

replaced_on_change! {
    FailureResource, FailureState, replaced_by: "message",

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(schema(
            "Fails on create with `message`, to test partial applies.",
            map! {
                "id" => attribute(AttributeType::String, AttributeConstraint::Computed, "Never set: creation fails."),
                "message" => attribute(AttributeType::String, AttributeConstraint::Required, "The error message of the failed create."),
            },
        ))
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let message = match planned_state.message {
            Value::Value(message) => message.into_owned(),
            _ => "sandbox_failure failed".to_owned(),
        };
        diags.error(message, "sandbox_failure always fails on create.", AttributePath::new("message"));
        None
    }
}
