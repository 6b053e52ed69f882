//! What the engine asks the domain for a job ([`JobSource`]): its inputs, assembled from the
//! catalog — the version's template (refused when a rule added since its upload refuses it), the
//! parameters typed by the variables they set, the launch role's environment, and the secrets
//! Terraform's text must not show — and whether its sandbox may reach the network (the
//! product's `Sandbox` constraint).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::auth::secrets::SecretBox;
use crate::catalog::constraint::{self, ConstraintConfig};
use crate::catalog::error::DomainError;
use crate::catalog::template::Variable;
use crate::engine::{self, BoxFuture, EngineError, JobSource, Site, TaskInputs};
use crate::store::Store;

use super::Parameter;

/// The catalog as the engine's source of jobs.
pub struct CatalogJobs {
    store: Store,
    secrets: SecretBox,
}

impl CatalogJobs {
    /// Jobs read from `store`, their sealed data opened with `secrets`.
    pub fn new(store: Store, secrets: SecretBox) -> Self {
        CatalogJobs { store, secrets }
    }
}

impl JobSource for CatalogJobs {
    fn inputs<'a>(&'a self, site: &'a Site<'a>) -> BoxFuture<'a, Result<TaskInputs, EngineError>> {
        Box::pin(inputs(&self.store, &self.secrets, site))
    }
}

/// The inputs of a job at `site`: of a change of its version with its (sealed) parameters and
/// launch role, in a sandbox that reaches the network unless the product's `Sandbox` constraint
/// says no.
async fn inputs(store: &Store, secrets: &SecretBox, site: &Site<'_>) -> Result<TaskInputs, EngineError> {
    let version_id = site.version_id;
    let version = store
        .product_version(version_id)
        .await?
        .ok_or_else(|| EngineError::Refused(format!("The product version {version_id} no longer exists.")))?;
    let (template, _) = crate::catalog::version::version_template(store, &version)
        .await
        .map_err(|e| match e {
            // A template stored before a check that now refuses it: never run it.
            DomainError::InvalidStatus { kind: crate::catalog::version::REFUSED_KIND, message } => EngineError::Refused(message),
            DomainError::Store(e) => EngineError::Store(e),
            other => EngineError::Internal(other.to_string()),
        })?
        .ok_or_else(|| {
            EngineError::Refused(format!(
                "Product version {version_id} has a {}, which this service cannot provision; only RosTerraformTemplate is supported.",
                version.template_type
            ))
        })?;
    // The same rule as at upload, for versions stored before it: never run a template that
    // would move the state out of the service.
    if let Some(why) = &template.displaces_settings {
        return Err(EngineError::Refused(format!("The template of product version {version_id} cannot be run: {why}")));
    }
    let parameters: Vec<Parameter> = secrets
        .open(site.parameters_sealed)
        .and_then(|p| serde_json::from_str(&p).ok())
        .ok_or_else(|| EngineError::Internal("the task's parameters cannot be opened".into()))?;
    let variables = parameters
        .into_iter()
        .map(|p| {
            let declared = template.variable(&p.parameter_key).and_then(|v| v.type_expr.as_deref());
            let value = engine::typed_variable(declared, &p.parameter_value);
            (p.parameter_key, value)
        })
        .collect();
    let launch_env = match site.launch_role {
        None => Vec::new(),
        Some(role) => {
            let sealed = store
                .launch_role_env_sealed(role)
                .await?
                .ok_or_else(|| EngineError::Refused(format!("The launch role {role:?} of the Launch constraint no longer exists.")))?;
            let env: BTreeMap<String, String> = secrets
                .open(&sealed)
                .and_then(|e| serde_json::from_str(&e).ok())
                .ok_or_else(|| EngineError::Internal("the launch role's variables cannot be opened".into()))?;
            env.into_iter().collect()
        }
    };
    let output_descriptions = template.outputs.iter().map(|o| (o.name.clone(), o.description.clone().unwrap_or_default())).collect();
    let mut secrets = secrets_of(&template.variables, &variables, &launch_env);
    // A module's sensitive defaults are hidden too; its variables never take parameters.
    for default in template.module_variables.iter().filter(|v| v.sensitive).filter_map(|v| v.default.as_ref()) {
        engine::redact::secret_leaves(default, &mut secrets);
    }
    let configs = constraint::configs(store, site.portfolio_id, site.product_id).await?;
    let network = configs.iter().all(|c| !matches!(c, ConstraintConfig::Sandbox(s) if !s.network_on()));
    Ok(TaskInputs {
        workspace: template.workspace,
        variables,
        output_descriptions,
        launch_env,
        secrets,
        network,
        transform: template.transform,
    })
}

/// The secret values of a change: each sensitive variable's value (its default when no parameter
/// gives one: the template's author marked it sensitive, so Terraform's text must not show it
/// either) and every value of the launch role, which holds provider credentials.
fn secrets_of(declared: &[Variable], variables: &BTreeMap<String, Value>, launch_env: &[(String, String)]) -> Vec<String> {
    let mut secrets: Vec<String> = launch_env.iter().map(|(_, value)| value.clone()).collect();
    for variable in declared.iter().filter(|v| v.sensitive) {
        if let Some(value) = variables.get(&variable.name).or(variable.default.as_ref()) {
            crate::engine::redact::secret_leaves(value, &mut secrets);
        }
    }
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
