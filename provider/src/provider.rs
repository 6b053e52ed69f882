//! The `sandbox` provider: its configuration (the sandbox root) and the list of its resources.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{Attribute, AttributeConstraint, AttributeType, Block, Description, Schema};
use tf_provider::value::{Value, ValueEmpty, ValueString};
use tf_provider::{map, AttributePath, Diagnostics, DynamicResource, Provider};
use tokio_util::sync::CancellationToken;

use crate::resources::{FailureResource, FileResource, Sandboxed, SleepResource};
use crate::sandbox::Sandbox;

/// Environment variable read when the provider block sets no `root`.
const ROOT_ENV: &str = "SANDBOX_ROOT";

/// Builds an attribute of a schema.
pub fn attribute(kind: AttributeType, constraint: AttributeConstraint, description: &str) -> Attribute {
    Attribute { attr_type: kind, description: Description::plain(description.to_owned()), constraint, ..Default::default() }
}

/// Builds a schema from its attributes.
pub fn schema(description: &str, attributes: HashMap<String, Attribute>) -> Schema {
    Schema {
        version: 0,
        block: Block { version: 0, attributes, description: Description::plain(description.to_owned()), ..Default::default() },
    }
}

/// The sandbox chosen by `ConfigureProvider`, shared with the resources created before it.
#[derive(Debug, Clone, Default)]
pub struct ConfiguredSandbox(Arc<OnceLock<Sandbox>>);

impl ConfiguredSandbox {
    /// The sandbox, or an error diagnostic when the provider was not configured.
    pub fn get(&self, diags: &mut Diagnostics) -> Option<&Sandbox> {
        let sandbox = self.0.get();
        if sandbox.is_none() {
            diags.root_error_short("The sandbox provider was used before it was configured");
        }
        sandbox
    }
}

/// The provider block: `provider "sandbox" { root = "/some/dir" }`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Config<'a> {
    pub root: ValueString<'a>,
}

/// The provider, holding what its resources share.
pub struct SandboxProvider {
    sandbox: ConfiguredSandbox,
    /// Cancelled when the process receives SIGINT; long operations stop early on it.
    interrupted: CancellationToken,
}

impl SandboxProvider {
    pub fn new(interrupted: CancellationToken) -> Self {
        Self { sandbox: ConfiguredSandbox::default(), interrupted }
    }
}

#[async_trait]
impl Provider for SandboxProvider {
    type Config<'a> = Config<'a>;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(schema(
            "Resources confined to one sandbox directory, for tests and samples.",
            map! {
                "root" => attribute(
                    AttributeType::String,
                    AttributeConstraint::Optional,
                    "Sandbox directory, created when missing. Defaults to the SANDBOX_ROOT environment variable.",
                ),
            },
        ))
    }

    async fn configure<'a>(&self, diags: &mut Diagnostics, _terraform_version: String, config: Self::Config<'a>) -> Option<()> {
        let root = match config.root {
            Value::Value(root) => PathBuf::from(root.as_ref()),
            Value::Null => match std::env::var_os(ROOT_ENV) {
                Some(root) => PathBuf::from(root),
                None => {
                    diags.root_error(
                        "No sandbox root",
                        format!("Set `root` in the provider \"sandbox\" block or the {ROOT_ENV} environment variable."),
                    );
                    return Some(());
                }
            },
            Value::Unknown => {
                diags.error_short("The sandbox root must be known before apply", AttributePath::new("root"));
                return Some(());
            }
        };
        if root.as_os_str().is_empty() {
            diags.error_short("The sandbox root is empty", AttributePath::new("root"));
            return Some(());
        }
        match Sandbox::open(&root) {
            Ok(sandbox) => {
                if self.sandbox.0.set(sandbox).is_err() {
                    diags.root_error_short("The sandbox provider was configured twice");
                }
            }
            Err(error) => diags.error("Cannot use the sandbox root", format!("{}: {error}", root.display()), AttributePath::new("root")),
        }
        Some(())
    }

    fn get_resources(&self, _diags: &mut Diagnostics) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        Some(map! {
            "file" => Sandboxed(FileResource::new(self.sandbox.clone())),
            "failure" => Sandboxed(FailureResource),
            "sleep" => Sandboxed(SleepResource::new(self.interrupted.clone())),
        })
    }
}
