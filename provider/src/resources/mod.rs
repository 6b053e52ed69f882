//! The resources of the provider, one module each.

/// Implements [`tf_provider::Resource`] for `$resource` with state `$state`, a resource that keeps
/// nothing but what was planned: its `id` is computed on create, a change of `$replaced_by`
/// replaces it, a read returns the state as it is, an update takes the plan and a destroy has
/// nothing to remove. The tokens after the header are its own `schema`, `validate` and `create`.
macro_rules! replaced_on_change {
    ($resource:ty, $state:ident, replaced_by: $replaced_by:literal, $($methods:tt)*) => {
        #[async_trait::async_trait]
        impl tf_provider::Resource for $resource {
            type State<'a> = $state<'a>;
            type PrivateState<'a> = tf_provider::value::ValueEmpty;
            type ProviderMetaState<'a> = tf_provider::value::ValueEmpty;

            $($methods)*

            async fn read<'a>(
                &self,
                _diags: &mut tf_provider::Diagnostics,
                state: Self::State<'a>,
                private_state: Self::PrivateState<'a>,
                _provider_meta_state: Self::ProviderMetaState<'a>,
            ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
                Some((state, private_state))
            }

            async fn plan_create<'a>(
                &self,
                _diags: &mut tf_provider::Diagnostics,
                mut proposed_state: Self::State<'a>,
                _config_state: Self::State<'a>,
                _provider_meta_state: Self::ProviderMetaState<'a>,
            ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
                proposed_state.id = tf_provider::value::Value::Unknown;
                Some((proposed_state, Default::default()))
            }

            async fn plan_update<'a>(
                &self,
                _diags: &mut tf_provider::Diagnostics,
                _prior_state: Self::State<'a>,
                proposed_state: Self::State<'a>,
                _config_state: Self::State<'a>,
                prior_private_state: Self::PrivateState<'a>,
                _provider_meta_state: Self::ProviderMetaState<'a>,
            ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<tf_provider::AttributePath>)> {
                Some((proposed_state, prior_private_state, vec![tf_provider::AttributePath::new($replaced_by)]))
            }

            async fn plan_destroy<'a>(
                &self,
                _diags: &mut tf_provider::Diagnostics,
                _prior_state: Self::State<'a>,
                prior_private_state: Self::PrivateState<'a>,
                _provider_meta_state: Self::ProviderMetaState<'a>,
            ) -> Option<Self::PrivateState<'a>> {
                Some(prior_private_state)
            }

            async fn update<'a>(
                &self,
                _diags: &mut tf_provider::Diagnostics,
                _prior_state: Self::State<'a>,
                planned_state: Self::State<'a>,
                _config_state: Self::State<'a>,
                planned_private_state: Self::PrivateState<'a>,
                _provider_meta_state: Self::ProviderMetaState<'a>,
            ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
                Some((planned_state, planned_private_state))
            }

            async fn destroy<'a>(
                &self,
                _diags: &mut tf_provider::Diagnostics,
                _prior_state: Self::State<'a>,
                _planned_private_state: Self::PrivateState<'a>,
                _provider_meta_state: Self::ProviderMetaState<'a>,
            ) -> Option<()> {
                Some(())
            }
        }
    };
}

mod failure;
mod file;
mod sleep;

pub use failure::FailureResource;
pub use file::FileResource;
pub use sleep::SleepResource;
