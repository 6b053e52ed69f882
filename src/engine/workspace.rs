//! A task's inputs and working directory: the version's Workspace files, an override that keeps
//! state in a local file (which the engine loads from and saves to the database), the current
//! state, and the parameters as a JSON variables file (values taken literally: no HCL is built
//! from user input).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::redact;
use crate::auth::secrets::SecretBox;
use crate::catalog::template::Variable;
use crate::store::provisioning::Task;
use crate::store::Store;

/// The variables file passed with `-var-file`.
pub const VARIABLES_FILE: &str = "servicecatalog.tfvars.json";

/// Forces the local backend whatever the template declares: state is ours.
const BACKEND_OVERRIDE: &str = "terraform {\n  backend \"local\" {\n    path = \"terraform.tfstate\"\n  }\n}\n";

/// Everything a task needs besides the state.
pub struct TaskInputs {
    workspace: BTreeMap<String, String>,
    variables: BTreeMap<String, Value>,
    output_descriptions: BTreeMap<String, String>,
    /// Environment variables of the launch role.
    pub launch_env: Vec<(String, String)>,
    /// What Terraform must not be let to show: values of the template's sensitive variables
    /// (given, else their defaults) and of the launch role's variables.
    pub secrets: Vec<String>,
}

/// Why inputs could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The version's template is gone or not a Terraform template.
    #[error("{0}")]
    Template(String),
    /// Stored data could not be opened (the detail, for the log).
    #[error("stored data cannot be opened: {0}")]
    Internal(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl InputError {
    /// The job's `StatusMessage`: an internal error's detail goes to the log only.
    pub fn into_message(self) -> String {
        match self {
            InputError::Template(message) => message,
            other => super::internal_message(&other),
        }
    }
}

impl TaskInputs {
    /// Loads the template of the task's version, its parameters and the launch role's variables.
    pub async fn load(store: &Store, secrets: &SecretBox, task: &Task) -> Result<TaskInputs, InputError> {
        Self::load_for(store, secrets, &task.product_version_id, &task.parameters_sealed, task.launch_role.as_deref()).await
    }

    /// Loads the inputs of a change of `version_id` with these (sealed) parameters and launch role.
    pub async fn load_for(
        store: &Store,
        secrets: &SecretBox,
        version_id: &str,
        parameters_sealed: &str,
        launch_role: Option<&str>,
    ) -> Result<TaskInputs, InputError> {
        let version = store
            .product_version(version_id)
            .await?
            .ok_or_else(|| InputError::Template(format!("The product version {version_id} no longer exists.")))?;
        let (template, _) = crate::catalog::version::version_template(store, &version)
            .await
            .map_err(|e| match e.code().strip_prefix("InvalidStatus.") {
                // A template stored before a check that now refuses it: never run it.
                Some(crate::catalog::version::REFUSED_KIND) => InputError::Template(e.message().to_string()),
                _ => InputError::Internal(e.message().to_string()),
            })?
            .ok_or_else(|| {
                InputError::Template(format!(
                    "Product version {version_id} has a {}, which this service cannot provision; only RosTerraformTemplate is supported.",
                    version.template_type
                ))
            })?;
        // The same rule as at upload, for versions stored before it: never run a template that
        // would move the state out of the service.
        if let Some(why) = &template.displaces_settings {
            return Err(InputError::Template(format!("The template of product version {version_id} cannot be run: {why}")));
        }
        let parameters: Vec<Value> = secrets
            .open(parameters_sealed)
            .and_then(|p| serde_json::from_str(&p).ok())
            .ok_or_else(|| InputError::Internal("the task's parameters cannot be opened".into()))?;
        let variables = parameters
            .iter()
            .filter_map(|p| {
                let key = p["ParameterKey"].as_str()?;
                let raw = p["ParameterValue"].as_str().unwrap_or_default();
                let declared = template.variable(key).and_then(|v| v.type_expr.as_deref());
                Some((key.to_string(), typed_variable(declared, raw)))
            })
            .collect();
        let launch_env = match launch_role {
            None => Vec::new(),
            Some(role) => {
                let sealed = store
                    .launch_role_env_sealed(role)
                    .await?
                    .ok_or_else(|| InputError::Template(format!("The launch role {role:?} of the Launch constraint no longer exists.")))?;
                let env: BTreeMap<String, String> = secrets
                    .open(&sealed)
                    .and_then(|e| serde_json::from_str(&e).ok())
                    .ok_or_else(|| InputError::Internal("the launch role's variables cannot be opened".into()))?;
                env.into_iter().collect()
            }
        };
        let output_descriptions =
            template.outputs.iter().map(|o| (o.name.clone(), o.description.clone().unwrap_or_default())).collect();
        let secrets = secrets_of(&template.variables, &variables, &launch_env);
        Ok(TaskInputs { workspace: template.workspace, variables, output_descriptions, launch_env, secrets })
    }

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
        super::outputs_of_state(state, |name| self.output_description(name))
    }
}

/// The secret values of a change: each sensitive variable's value (its default when no parameter
/// gives one: the template's author marked it sensitive, so Terraform's text must not show it
/// either) and every value of the launch role, which holds provider credentials.
fn secrets_of(declared: &[Variable], variables: &BTreeMap<String, Value>, launch_env: &[(String, String)]) -> Vec<String> {
    let mut secrets: Vec<String> = launch_env.iter().map(|(_, value)| value.clone()).collect();
    for variable in declared.iter().filter(|v| v.sensitive) {
        if let Some(value) = variables.get(&variable.name).or(variable.default.as_ref()) {
            redact::secret_leaves(value, &mut secrets);
        }
    }
    secrets
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

    #[test]
    fn secrets_are_sensitive_values_given_or_default_and_the_launch_roles() {
        let variable = |name: &str, sensitive, default: Option<Value>| Variable {
            name: name.into(),
            type_expr: None,
            default,
            description: None,
            sensitive,
            has_validation: false,
            file: "main.tf".into(),
        };
        let declared = [
            variable("pw", true, Some(Value::String("default-pw".into()))),
            variable("keys", true, None),
            variable("fallback", true, Some(Value::String("default-only".into()))),
            variable("name", false, Some(Value::String("not-secret".into()))),
        ];
        let given = BTreeMap::from([
            ("pw".to_string(), Value::String("given-pw".into())),
            ("keys".to_string(), serde_json::json!(["k-one", "k-two"])),
            ("name".to_string(), Value::String("visible".into())),
        ]);
        let mut secrets = secrets_of(&declared, &given, &[("ALICLOUD_SECRET_KEY".into(), "role-secret".into())]);
        secrets.sort();
        assert_eq!(secrets, ["default-only", "given-pw", "k-one", "k-two", "role-secret"]);
    }

    #[test]
    fn a_workspace_path_cannot_escape() {
        let inputs = TaskInputs {
            workspace: BTreeMap::from([("../evil.tf".to_string(), String::new())]),
            variables: BTreeMap::new(),
            output_descriptions: BTreeMap::new(),
            launch_env: Vec::new(),
            secrets: Vec::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        assert!(inputs.write(&dir.path().join("w"), None).is_err());
    }
}
