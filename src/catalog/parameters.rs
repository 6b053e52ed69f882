//! Parameter metadata of a product version (our `ParameterConstraints` extension) and the check
//! of launch parameters against it. A parameter is a declared Terraform variable; its
//! description and allowed values come, in order of precedence, from the version's
//! `TerraformVariables` entry, the body's `Parameters` section and the `variable` block; a
//! `Template` constraint narrows the allowed values further for one (product, portfolio).

use serde_json::{json, Map, Value};

use super::constraint::TemplateConfig;
use super::template::{ParsedTemplate, TerraformVariable};

pub use crate::engine::redact::MASK;

/// What a launch may pass for one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterConstraint {
    /// Variable name (`ParameterKey` at launch).
    pub name: String,
    /// Terraform type expression, when declared.
    pub type_expr: Option<String>,
    /// Default value; `None` makes the parameter required.
    pub default: Option<Value>,
    /// Display label (text or `{locale: text}`), when given.
    pub label: Option<Value>,
    /// Description.
    pub description: Option<String>,
    /// Whether Terraform treats the value as sensitive.
    pub sensitive: bool,
    /// The only values allowed, when restricted.
    pub allowed_values: Option<Vec<String>>,
    /// Whether the variable has `validation` blocks (checked by Terraform at plan time).
    pub has_validation: bool,
}

impl serde::Serialize for ParameterConstraint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl ParameterConstraint {
    /// A parameter without default must be given at launch.
    pub fn required(&self) -> bool {
        self.default.is_none()
    }

    /// The `ParameterConstraints` entry: `DefaultValue` is the text a caller would send
    /// (strings as they are, other values as JSON); absent when there is no default or it is null.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "ParameterKey": self.name,
            "Type": self.type_expr.as_deref().unwrap_or("any"),
            "Required": self.required(),
            "Sensitive": self.sensitive,
            "HasValidation": self.has_validation,
        });
        let default = match &self.default {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let fields = [
            ("DefaultValue", default.map(Value::String)),
            ("Label", self.label.clone()),
            ("Description", self.description.clone().map(Value::String)),
            ("AllowedValues", self.allowed_values.clone().map(Value::from)),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                out[key] = value;
            }
        }
        out
    }
}

/// The settings a description carries: `{Label, Description, AllowedValues}` when it is a JSON
/// object (the vendor's documented format for `TerraformVariables`), else plain text.
#[derive(Default)]
struct Annotation {
    label: Option<Value>,
    description: Option<String>,
    allowed_values: Option<Vec<String>>,
}

impl Annotation {
    fn from_object(object: &Map<String, Value>) -> Annotation {
        Annotation {
            label: object.get("Label").filter(|l| !l.is_null()).cloned(),
            description: object.get("Description").and_then(Value::as_str).map(str::to_string),
            allowed_values: object.get("AllowedValues").and_then(Value::as_array).map(|a| a.iter().map(value_text).collect()),
        }
    }

    fn from_text(text: &str) -> Annotation {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => Annotation::from_object(&object),
            _ if text.is_empty() => Annotation::default(),
            _ => Annotation { description: Some(text.to_string()), ..Annotation::default() },
        }
    }
}

/// A JSON scalar as the text a caller would send.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The parameters of a version whose template is `parsed` and whose `TerraformVariables` are
/// `variables`, sorted by name.
pub fn derive(parsed: &ParsedTemplate, variables: &[TerraformVariable]) -> Vec<ParameterConstraint> {
    parsed
        .variables
        .iter()
        .map(|v| {
            let given = variables.iter().find(|t| t.variable_name == v.name).map(|t| Annotation::from_text(&t.description));
            let section = parsed.parameters.get(&v.name).and_then(Value::as_object).map(Annotation::from_object);
            let layers = [given, section].into_iter().flatten().collect::<Vec<_>>();
            ParameterConstraint {
                name: v.name.clone(),
                type_expr: v.type_expr.clone(),
                default: v.default.clone(),
                label: layers.iter().find_map(|a| a.label.clone()),
                description: layers.iter().find_map(|a| a.description.clone()).or_else(|| v.description.clone()),
                sensitive: v.sensitive,
                allowed_values: layers.iter().find_map(|a| a.allowed_values.clone()),
                has_validation: v.has_validation,
            }
        })
        .collect()
}

/// Narrows the allowed values by a `Template` constraint: a parameter the template already
/// restricts keeps only the values both allow. Names the template lacks are ignored (the
/// constraint covers every version of the product).
pub fn apply_template_constraint(constraints: &mut [ParameterConstraint], config: &TemplateConfig) {
    for (name, rule) in &config.parameters {
        if let Some(c) = constraints.iter_mut().find(|c| &c.name == name) {
            c.allowed_values = Some(match c.allowed_values.take() {
                Some(existing) => existing.into_iter().filter(|v| rule.allowed_values.contains(v)).collect(),
                None => rule.allowed_values.clone(),
            });
        }
    }
}

/// Why launch parameters are refused (answered as `400 InvalidParameter.Parameters`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParameterError(pub String);

/// Checks launch parameters `(key, value)`: each names a declared parameter once, with an allowed
/// value, and every parameter without default is given.
pub fn check_launch_parameters(constraints: &[ParameterConstraint], parameters: &[(String, String)]) -> Result<(), ParameterError> {
    for (i, (key, value)) in parameters.iter().enumerate() {
        let Some(c) = constraints.iter().find(|c| &c.name == key) else {
            return Err(ParameterError(format!("The parameter {key:?} is not declared by the product version's template.")));
        };
        if parameters[..i].iter().any(|(k, _)| k == key) {
            return Err(ParameterError(format!("The parameter {key:?} is given more than once.")));
        }
        if let Some(allowed) = c.allowed_values.as_ref().filter(|a| !a.contains(value)) {
            let shown = if c.sensitive { String::new() } else { format!(" {value:?}") };
            return Err(ParameterError(format!(
                "The value{shown} of parameter {key:?} is not allowed; allowed values: {}.",
                allowed.join(", ")
            )));
        }
    }
    if let Some(missing) = constraints.iter().find(|c| c.required() && !parameters.iter().any(|(k, _)| k == &c.name)) {
        return Err(ParameterError(format!("The parameter {:?} is required: the template gives it no default.", missing.name)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::template::parse;

    const MAIN: &str = r#"
variable "size" {
  type        = string
  default     = "small"
  description = "from hcl"
}
variable "name" {
  type      = string
  sensitive = true
  validation {
    condition     = length(var.name) > 2
    error_message = "too short"
  }
}
variable "count_of" {
  type    = number
  default = null
}
"#;

    fn parsed(parameters: Value) -> ParsedTemplate {
        let body = json!({
            "ROSTemplateFormatVersion": "2015-09-01",
            "Transform": "Aliyun::Terraform-v1.5",
            "Workspace": {"main.tf": MAIN},
            "Parameters": parameters,
        });
        parse(&body.to_string()).unwrap()
    }

    fn by_name<'a>(all: &'a [ParameterConstraint], name: &str) -> &'a ParameterConstraint {
        all.iter().find(|c| c.name == name).unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn descriptions_take_precedence_in_order() {
        let template = parsed(json!({"size": {"Description": "from section", "AllowedValues": ["small", "large"]}}));
        let all = derive(&template, &[]);
        assert_eq!(by_name(&all, "size").description.as_deref(), Some("from section"));
        let given = [TerraformVariable { variable_name: "size".into(), description: "from variables".into() }];
        let all = derive(&template, &given);
        let size = by_name(&all, "size");
        assert_eq!(size.description.as_deref(), Some("from variables"));
        assert_eq!(size.allowed_values.as_deref(), Some(&["small".to_string(), "large".to_string()][..]));
        assert!(!size.required());
        let name = by_name(&all, "name");
        assert!(name.required() && name.sensitive && name.has_validation);
        assert_eq!(name.type_expr.as_deref(), Some("string"));
        let count = by_name(&all, "count_of");
        assert!(!count.required());
        assert!(count.to_json().get("DefaultValue").is_none());
        assert_eq!(size.to_json()["DefaultValue"], "small");
    }

    #[test]
    fn json_descriptions_carry_label_and_allowed_values() {
        let given = [TerraformVariable {
            variable_name: "size".into(),
            description: r#"{"Label": {"en": "Size"}, "AllowedValues": ["small", 2]}"#.into(),
        }];
        let all = derive(&parsed(json!({})), &given);
        let size = by_name(&all, "size");
        assert_eq!(size.label, Some(json!({"en": "Size"})));
        assert_eq!(size.allowed_values.as_deref(), Some(&["small".to_string(), "2".to_string()][..]));
        assert_eq!(size.description.as_deref(), Some("from hcl"));
    }

    #[test]
    fn launch_parameters_are_checked() {
        let all = derive(&parsed(json!({"size": {"AllowedValues": ["small", "large"]}})), &[]);
        assert!(check_launch_parameters(&all, &pairs(&[("name", "abc")])).is_ok());
        assert!(check_launch_parameters(&all, &pairs(&[("name", "abc"), ("size", "large"), ("count_of", "3")])).is_ok());
        let err = check_launch_parameters(&all, &[]).unwrap_err();
        assert!(err.0.contains("\"name\" is required"), "{err}");
        let err = check_launch_parameters(&all, &pairs(&[("name", "a"), ("nope", "1")])).unwrap_err();
        assert!(err.0.contains("\"nope\" is not declared"), "{err}");
        let err = check_launch_parameters(&all, &pairs(&[("name", "a"), ("size", "huge")])).unwrap_err();
        assert!(err.0.contains("\"size\"") && err.0.contains("small, large"), "{err}");
        let err = check_launch_parameters(&all, &pairs(&[("name", "a"), ("name", "b")])).unwrap_err();
        assert!(err.0.contains("more than once"), "{err}");
    }

    #[test]
    fn template_constraints_narrow_allowed_values() {
        let mut all = derive(&parsed(json!({"size": {"AllowedValues": ["small", "large"]}})), &[]);
        let config = json!({"Parameters": {"size": {"AllowedValues": ["large", "huge"]}, "name": {"AllowedValues": ["x", "1"]}, "gone": {"AllowedValues": ["z"]}}});
        apply_template_constraint(&mut all, &serde_json::from_value(config).unwrap());
        assert_eq!(by_name(&all, "size").allowed_values.as_deref(), Some(&["large".to_string()][..]));
        assert_eq!(by_name(&all, "name").allowed_values.as_deref(), Some(&["x".to_string(), "1".to_string()][..]));
        let err = check_launch_parameters(&all, &pairs(&[("name", "y")])).unwrap_err();
        assert!(!err.0.contains("\"y\""), "sensitive values stay out of messages: {err}");
    }
}
