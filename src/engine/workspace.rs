//! A task's inputs and working directory: the version's Workspace files, an override that keeps
//! state in a local file (which the engine loads from and saves to the database), the current
//! state, and the parameters as a JSON variables file (values taken literally: no HCL is built
//! from user input). The domain assembles the inputs ([`super::JobSource`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::redact;
use crate::model::Transform;

/// The variables file passed with `-var-file`.
pub const VARIABLES_FILE: &str = "servicecatalog.tfvars.json";

/// Forces the local backend whatever the template declares: state is ours.
const BACKEND_OVERRIDE: &str = "terraform {\n  backend \"local\" {\n    path = \"terraform.tfstate\"\n  }\n}\n";

/// Everything a job needs besides the state (assembled by the domain, [`super::JobSource`]).
pub struct TaskInputs {
    /// The Workspace files.
    pub workspace: BTreeMap<String, String>,
    /// The variables, typed with [`typed_variable`].
    pub variables: BTreeMap<String, Value>,
    /// The template's description of each output.
    pub output_descriptions: BTreeMap<String, String>,
    /// Environment variables of the launch role.
    pub launch_env: Vec<(String, String)>,
    /// What Terraform must not be let to show: values of the template's sensitive variables
    /// (given, else their defaults) and of the launch role's variables.
    pub secrets: Vec<String>,
    /// Whether the job's sandbox may reach the network (the product's `Sandbox` constraint).
    pub network: bool,
    /// The template's `Transform`: which binary runs it.
    pub transform: Transform,
}

impl TaskInputs {
    /// The redactor of a job on these inputs, given the state it starts from (whose sensitive
    /// outputs are secrets too).
    pub fn redactor(&self, state: Option<&str>) -> redact::Redactor {
        redact::Redactor::new(self.secrets.iter().cloned().chain(state.map(redact::sensitive_outputs).unwrap_or_default()))
    }

    /// The template's description of output `name`.
    pub fn output_description(&self, name: &str) -> String {
        self.output_descriptions.get(name).cloned().unwrap_or_default()
    }

    /// Lays out a fresh working directory: files, backend override, variables and state.
    pub fn write(&self, dir: &Path, state: Option<&str>) -> std::io::Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        for (path, content) in &self.workspace {
            let relative = Path::new(path);
            if relative.is_absolute() || relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                return Err(std::io::Error::other(format!("the Workspace path {path:?} leaves the working directory")));
            }
            let target = dir.join(relative);
            std::fs::create_dir_all(target.parent().expect("joined path has a parent"))?;
            std::fs::write(target, content)?;
        }
        std::fs::write(dir.join("zzz_servicecatalog_override.tf"), BACKEND_OVERRIDE)?;
        std::fs::write(dir.join(VARIABLES_FILE), serde_json::to_vec(&self.variables)?)?;
        if let Some(state) = state {
            std::fs::write(dir.join("terraform.tfstate"), state)?;
        }
        Ok(())
    }

    /// The task's `Outputs` from its final Terraform state, with descriptions from the template.
    pub fn outputs(&self, state: &str) -> Value {
        super::plan_summary::state_outputs(state, |name| self.output_description(name))
    }
}

/// A parameter's value as Terraform should receive it in the JSON variables file: strings stay
/// strings (Terraform converts them to numbers and booleans itself); collection and structural
/// types (and untyped variables given JSON collections) are parsed from JSON text.
pub fn typed_variable(declared_type: Option<&str>, raw: &str) -> Value {
    let structural = match declared_type.map(str::trim) {
        Some(t) => ["list", "map", "set", "object", "tuple"].iter().any(|k| t.starts_with(k)) || t == "any",
        None => raw.trim_start().starts_with(['[', '{']),
    };
    if structural {
        if let Ok(value) = serde_json::from_str::<Value>(raw) {
            return value;
        }
    }
    Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_by_the_declared_type() {
        assert_eq!(typed_variable(Some("string"), "[1]"), Value::String("[1]".into()));
        assert_eq!(typed_variable(Some("number"), "3"), Value::String("3".into()));
        assert_eq!(typed_variable(Some("list(string)"), "[\"a\"]"), serde_json::json!(["a"]));
        assert_eq!(typed_variable(None, "{\"a\":1}"), serde_json::json!({"a": 1}));
        assert_eq!(typed_variable(Some("map(string)"), "not json"), Value::String("not json".into()));
    }

    fn inputs(files: &[(&str, &str)]) -> TaskInputs {
        TaskInputs {
            workspace: files.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect(),
            variables: BTreeMap::new(),
            output_descriptions: BTreeMap::new(),
            launch_env: Vec::new(),
            secrets: Vec::new(),
            network: false,
            transform: Transform::terraform(1, 0),
        }
    }

    #[test]
    fn a_workspace_path_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        assert!(inputs(&[("../evil.tf", "")]).write(&dir.path().join("w"), None).is_err());
    }

    #[test]
    fn modules_are_laid_out_beside_the_root_module() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("w");
        inputs(&[("main.tf", "root"), ("vars.tf.json", "{}"), ("modules/net/main.tf", "net")]).write(&work, None).unwrap();
        assert_eq!(std::fs::read_to_string(work.join("modules/net/main.tf")).unwrap(), "net");
        assert_eq!(std::fs::read_to_string(work.join("vars.tf.json")).unwrap(), "{}");
        assert!(work.join("zzz_servicecatalog_override.tf").is_file() && !work.join("modules/net/zzz_servicecatalog_override.tf").exists());
    }
}
