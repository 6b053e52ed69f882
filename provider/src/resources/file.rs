//! `sandbox_file`: a text file inside the sandbox.
//!
//! `path` forces replacement, `content` is updated in place; `id` (the path) and `checksum` (SHA-256 of the
//! content) are computed at plan time when their inputs are known. Read reports the file as it is on disk,
//! so a hand-edited file plans an update and a deleted one plans a create. Destroy also removes the
//! directories left empty.

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint, AttributeType, Schema};
use tf_provider::value::{Value, ValueEmpty, ValueString};
use tf_provider::{map, AttributePath, Diagnostics, Resource};

use crate::provider::{attribute, schema, ConfiguredSandbox};
use crate::sandbox::{checksum, parse_relative};

/// Attributes of `sandbox_file`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileState<'a> {
    pub id: ValueString<'a>,
    pub path: ValueString<'a>,
    pub content: ValueString<'a>,
    pub checksum: ValueString<'a>,
}

impl FileState<'_> {
    /// Fills the computed attributes from `path` and `content` (unknown while they are).
    fn compute(&mut self) {
        self.id = self.path.clone();
        self.checksum = self.content.as_ref().map(|content| Cow::Owned(checksum(content.as_bytes())));
    }
}

/// The `sandbox_file` resource type.
pub struct FileResource {
    sandbox: ConfiguredSandbox,
}

impl FileResource {
    pub fn new(sandbox: ConfiguredSandbox) -> Self {
        Self { sandbox }
    }

    /// Writes the file described by `state`, creating its directories.
    fn write(&self, diags: &mut Diagnostics, state: &FileState<'_>) -> Option<()> {
        let (Value::Value(path), Value::Value(content)) = (&state.path, &state.content) else {
            diags.root_error_short("`path` and `content` must be known to write a sandbox file");
            return None;
        };
        let target = self.locate(diags, path)?;
        let written = match target.parent() {
            Some(parent) => std::fs::create_dir_all(parent),
            None => Ok(()),
        }
        .and_then(|()| std::fs::write(&target, content.as_bytes()));
        report(diags, "Cannot write the sandbox file", &target, written)
    }

    /// Resolves `path` inside the configured sandbox, with a diagnostic on `path` when it cannot be.
    fn locate(&self, diags: &mut Diagnostics, path: &str) -> Option<PathBuf> {
        match self.sandbox.get(diags)?.resolve(path) {
            Ok(target) => Some(target),
            Err(error) => {
                diags.error("Invalid sandbox path", error.to_string(), AttributePath::new("path"));
                None
            }
        }
    }
}

/// Turns an I/O outcome into a diagnostic naming the file.
fn report<T>(diags: &mut Diagnostics, summary: &'static str, target: &Path, outcome: io::Result<T>) -> Option<T> {
    outcome.map_err(|error| diags.root_error(summary, format!("{}: {error}", target.display()))).ok()
}

#[async_trait]
impl Resource for FileResource {
    type State<'a> = FileState<'a>;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(schema(
            "A text file inside the sandbox.",
            map! {
                "id" => attribute(AttributeType::String, AttributeConstraint::Computed, "The path."),
                "path" => attribute(
                    AttributeType::String,
                    AttributeConstraint::Required,
                    "Path relative to the sandbox root; no `..`, no absolute path. Changing it replaces the file.",
                ),
                "content" => attribute(AttributeType::String, AttributeConstraint::Required, "Text content, updated in place."),
                "checksum" => attribute(AttributeType::String, AttributeConstraint::Computed, "SHA-256 of the content, hex-encoded."),
            },
        ))
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        if let Value::Value(path) = &config.path {
            if let Err(error) = parse_relative(path) {
                diags.error("Invalid sandbox path", error.to_string(), AttributePath::new("path"));
            }
        }
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        mut state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let Value::Value(path) = &state.path else {
            return Some((state, private_state));
        };
        // A read that fails for another reason than absence keeps the resource (see `Resource::read`).
        let Some(target) = self.locate(diags, path) else {
            return Some((state, private_state));
        };
        match std::fs::read(&target) {
            Ok(bytes) => {
                state.content = Value::Value(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()));
                state.checksum = Value::Value(Cow::Owned(checksum(&bytes)));
                Some((state, private_state))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => {
                report::<()>(diags, "Cannot read the sandbox file", &target, Err(error));
                Some((state, private_state))
            }
        }
    }

    async fn plan_create<'a>(
        &self,
        _diags: &mut Diagnostics,
        mut proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        proposed_state.compute();
        Some((proposed_state, ValueEmpty::default()))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        mut proposed_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        let mut replace = Vec::new();
        if proposed_state.path != prior_state.path {
            replace.push(AttributePath::new("path"));
        }
        proposed_state.compute();
        Some((proposed_state, prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        mut planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        self.write(diags, &planned_state)?;
        planned_state.compute();
        Some((planned_state, planned_private_state))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        mut planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        self.write(diags, &planned_state)?;
        planned_state.compute();
        Some((planned_state, planned_private_state))
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        let Value::Value(path) = &prior_state.path else {
            return Some(());
        };
        let sandbox = self.sandbox.get(diags)?;
        let target = self.locate(diags, path)?;
        match std::fs::remove_file(&target) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            outcome => report(diags, "Cannot delete the sandbox file", &target, outcome)?,
        }
        sandbox.remove_empty_parents(&target);
        Some(())
    }
}
