//! The resources of the provider, one module each. Each is written as a [`SandboxResource`]: only
//! the calls in which the resources differ. [`Sandboxed`] makes one a Terraform [`Resource`], with
//! empty private and provider-meta states.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::value::ValueEmpty;
use tf_provider::{AttributePath, Diagnostics, Resource};

mod failure;
mod file;
mod sleep;

pub use failure::FailureResource;
pub use file::FileResource;
pub use sleep::SleepResource;

/// A resource of the sandbox provider, in the calls that differ between resources.
#[async_trait]
pub trait SandboxResource: Send + Sync {
    /// Its attributes.
    type State<'a>: Serialize + Deserialize<'a> + Send;

    /// Its schema.
    fn schema(&self) -> Schema;

    /// Checks a configuration, with diagnostics for what is wrong; the default accepts any.
    async fn validate<'a>(&self, _diags: &mut Diagnostics, _config: Self::State<'a>) {}

    /// The resource as it is now, `None` once it is gone; the default keeps the state as it is.
    async fn read<'a>(&self, _diags: &mut Diagnostics, state: Self::State<'a>) -> Option<Self::State<'a>> {
        Some(state)
    }

    /// The planned state of a create (`prior` is `None`) or an update, with the attributes whose
    /// change replaces the resource.
    fn plan<'a>(&self, prior: Option<&Self::State<'a>>, proposed: Self::State<'a>) -> (Self::State<'a>, Vec<AttributePath>);

    /// Creates it: its state, or `None` with a diagnostic.
    async fn create<'a>(&self, diags: &mut Diagnostics, planned: Self::State<'a>) -> Option<Self::State<'a>>;

    /// Updates it in place; the default takes the plan.
    async fn update<'a>(&self, _diags: &mut Diagnostics, planned: Self::State<'a>) -> Option<Self::State<'a>> {
        Some(planned)
    }

    /// Deletes it; the default has nothing to delete.
    async fn destroy<'a>(&self, _diags: &mut Diagnostics, _prior: Self::State<'a>) -> Option<()> {
        Some(())
    }
}

/// A [`SandboxResource`] as a Terraform [`Resource`].
pub struct Sandboxed<R>(pub R);

#[async_trait]
impl<R: SandboxResource> Resource for Sandboxed<R> {
    type State<'a> = R::State<'a>;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(self.0.schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        self.0.validate(diags, config).await;
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: ValueEmpty,
        _provider_meta_state: ValueEmpty,
    ) -> Option<(Self::State<'a>, ValueEmpty)> {
        Some((self.0.read(diags, state).await?, private_state))
    }

    async fn plan_create<'a>(
        &self,
        _diags: &mut Diagnostics,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _provider_meta_state: ValueEmpty,
    ) -> Option<(Self::State<'a>, ValueEmpty)> {
        Some((self.0.plan(None, proposed_state).0, ValueEmpty::default()))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        prior_private_state: ValueEmpty,
        _provider_meta_state: ValueEmpty,
    ) -> Option<(Self::State<'a>, ValueEmpty, Vec<AttributePath>)> {
        let (planned, replace) = self.0.plan(Some(&prior_state), proposed_state);
        Some((planned, prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: ValueEmpty,
        _provider_meta_state: ValueEmpty,
    ) -> Option<ValueEmpty> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: ValueEmpty,
        _provider_meta_state: ValueEmpty,
    ) -> Option<(Self::State<'a>, ValueEmpty)> {
        Some((self.0.create(diags, planned_state).await?, planned_private_state))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: ValueEmpty,
        _provider_meta_state: ValueEmpty,
    ) -> Option<(Self::State<'a>, ValueEmpty)> {
        Some((self.0.update(diags, planned_state).await?, planned_private_state))
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        _planned_private_state: ValueEmpty,
        _provider_meta_state: ValueEmpty,
    ) -> Option<()> {
        self.0.destroy(diags, prior_state).await
    }
}
