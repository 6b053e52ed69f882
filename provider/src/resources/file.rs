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
use tf_provider::value::{Value, ValueString};
use tf_provider::{map, AttributePath, Diagnostics};

use super::SandboxResource;
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
impl SandboxResource for FileResource {
    type State<'a> = FileState<'a>;

    fn schema(&self) -> Schema {
        schema(
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
        )
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) {
        if let Value::Value(path) = &config.path {
            if let Err(error) = parse_relative(path) {
                diags.error("Invalid sandbox path", error.to_string(), AttributePath::new("path"));
            }
        }
    }

    async fn read<'a>(&self, diags: &mut Diagnostics, mut state: Self::State<'a>) -> Option<Self::State<'a>> {
        let Value::Value(path) = &state.path else {
            return Some(state);
        };
        // A read that fails for another reason than absence keeps the resource (see `Resource::read`).
        let Some(target) = self.locate(diags, path) else {
            return Some(state);
        };
        match std::fs::read(&target) {
            Ok(bytes) => {
                state.content = Value::Value(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()));
                state.checksum = Value::Value(Cow::Owned(checksum(&bytes)));
                Some(state)
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => {
                report::<()>(diags, "Cannot read the sandbox file", &target, Err(error));
                Some(state)
            }
        }
    }

    /// A new path replaces the file; a new content is written in place.
    fn plan<'a>(&self, prior: Option<&Self::State<'a>>, mut proposed: Self::State<'a>) -> (Self::State<'a>, Vec<AttributePath>) {
        let replace = match prior {
            Some(prior) if proposed.path != prior.path => vec![AttributePath::new("path")],
            _ => Vec::new(),
        };
        proposed.compute();
        (proposed, replace)
    }

    async fn create<'a>(&self, diags: &mut Diagnostics, mut planned: Self::State<'a>) -> Option<Self::State<'a>> {
        self.write(diags, &planned)?;
        planned.compute();
        Some(planned)
    }

    async fn update<'a>(&self, diags: &mut Diagnostics, planned: Self::State<'a>) -> Option<Self::State<'a>> {
        self.create(diags, planned).await
    }

    async fn destroy<'a>(&self, diags: &mut Diagnostics, prior: Self::State<'a>) -> Option<()> {
        let Value::Value(path) = &prior.path else {
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
