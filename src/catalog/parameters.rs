//! Parameter metadata of a product version (our `ParameterConstraints` extension) and the check
//! of launch parameters against it. A parameter is a declared Terraform variable; its
//! description and allowed values come, in order of precedence, from the version's
//! `TerraformVariables` entry, the body's `Parameters` section and the `variable` block; a
//! `Template` constraint narrows the allowed values further for one (product, portfolio).

use hcl::expr::{Expression, ObjectKey};
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

    /// The default as the text a caller would send (strings as they are, other values as JSON);
    /// none when there is no default or it is null.
    pub fn default_text(&self) -> Option<String> {
        self.default.as_ref().filter(|d| !d.is_null()).map(value_text)
    }

    /// The `ParameterConstraints` entry, `DefaultValue` as [`Self::default_text`].
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "ParameterKey": self.name,
            "Type": self.type_expr.as_deref().unwrap_or("any"),
            "Required": self.required(),
            "Sensitive": self.sensitive,
            "HasValidation": self.has_validation,
        });
        let fields = [
            ("DefaultValue", self.default_text().map(Value::String)),
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
        let shown = if c.sensitive { String::new() } else { format!(" {value:?}") };
        if let Some(allowed) = c.allowed_values.as_ref().filter(|a| !a.contains(value)) {
            return Err(ParameterError(format!(
                "The value{shown} of parameter {key:?} is not allowed; allowed values: {}.",
                allowed.join(", ")
            )));
        }
        if let Some(problem) = c.type_expr.as_deref().and_then(|t| type_problem(t, value)) {
            return Err(ParameterError(format!("The value{shown} of parameter {key:?} {problem}.")));
        }
    }
    if let Some(missing) = constraints.iter().find(|c| c.required() && !parameters.iter().any(|(k, _)| k == &c.name)) {
        return Err(ParameterError(format!("The parameter {:?} is required: the template gives it no default.", missing.name)));
    }
    Ok(())
}

/// Why Terraform would refuse `raw` for a variable of type `type_expr`, if it would: values of
/// collection and structural types are JSON text (as the engine passes them), primitives plain
/// text that converts (`3.5` for a number, `true` for a bool). A type this check does not know
/// is left to Terraform.
pub fn type_problem(type_expr: &str, raw: &str) -> Option<String> {
    let body = hcl::parse(&format!("t = {type_expr}")).ok()?;
    let ty = body.attributes().next()?.expr().clone();
    let value = match &ty {
        Expression::FuncCall(_) => match serde_json::from_str(raw) {
            Ok(value) => value,
            Err(_) => return Some(format!("must be JSON text of type {type_expr}")),
        },
        _ => Value::String(raw.to_string()),
    };
    conforms(&ty, &value).err().map(|why| format!("does not fit its type {type_expr}: {why}"))
}

/// Whether `value` converts to type `ty`, as Terraform converts values (primitives from text,
/// extra object attributes dropped); `Err` says where it does not.
fn conforms(ty: &Expression, value: &Value) -> Result<(), String> {
    match (ty, value) {
        (_, Value::Null) => Ok(()),
        (Expression::Variable(v), _) => match (v.as_str(), value) {
            ("any", _) | ("string", Value::String(_) | Value::Number(_) | Value::Bool(_)) => Ok(()),
            ("number", Value::Number(_)) | ("bool", Value::Bool(_)) => Ok(()),
            ("number", Value::String(s)) if s.parse::<f64>().is_ok_and(f64::is_finite) => Ok(()),
            ("bool", Value::String(s)) if matches!(s.as_str(), "true" | "false") => Ok(()),
            ("string" | "number" | "bool", _) => Err(format!("{value} is not a {}", v.as_str())),
            _ => Ok(()),
        },
        (Expression::FuncCall(f), _) => match (f.name.name.as_str(), f.args.as_slice(), value) {
            ("list" | "set", [element], Value::Array(items)) => each(items.iter().enumerate().map(|(i, v)| (format!("[{i}]"), element, v))),
            ("map", [element], Value::Object(entries)) => each(entries.iter().map(|(k, v)| (format!("{k:?}"), element, v))),
            ("tuple", [Expression::Array(types)], Value::Array(items)) if types.len() == items.len() => {
                each(types.iter().zip(items).enumerate().map(|(i, (t, v))| (format!("[{i}]"), t, v)))
            }
            ("object", [Expression::Object(attributes)], Value::Object(entries)) => attributes.iter().try_for_each(|(key, t)| {
                let name = match key {
                    ObjectKey::Identifier(name) => name.to_string(),
                    ObjectKey::Expression(e) => e.to_string().trim_matches('"').to_string(),
                    _ => return Ok(()),
                };
                let (t, optional) = match t {
                    Expression::FuncCall(o) if o.name.name.as_str() == "optional" && !o.args.is_empty() => (&o.args[0], true),
                    t => (t, false),
                };
                match entries.get(&name) {
                    Some(v) => conforms(t, v).map_err(|why| format!("{name:?}: {why}")),
                    None if optional => Ok(()),
                    None => Err(format!("the attribute {name:?} is missing")),
                }
            }),
            ("list" | "set" | "map" | "tuple" | "object", _, _) => Err(format!("{value} is not a {ty}")),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Whether each `(where, type, value)` conforms; the first that does not says where.
fn each<'a>(mut items: impl Iterator<Item = (String, &'a Expression, &'a Value)>) -> Result<(), String> {
    items.try_for_each(|(at, ty, value)| conforms(ty, value).map_err(|why| format!("{at}: {why}")))
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
    fn values_must_fit_the_declared_type() {
        let fits = |ty: &str, raw: &str| type_problem(ty, raw).map_or(Ok(()), Err);
        assert!(fits("number", "3.5").is_ok() && fits("number", "-2").is_ok());
        assert!(fits("number", "abc").unwrap_err().contains("\"abc\" is not a number"));
        assert!(fits("bool", "true").is_ok() && fits("bool", "yes").is_err());
        assert!(fits("string", "anything").is_ok() && fits("any", "x").is_ok());
        assert!(fits("list(number)", "[1, \"2\"]").is_ok());
        assert!(fits("list(number)", "[1, \"x\"]").unwrap_err().contains("[1]"));
        assert!(fits("list(string)", "a,b").unwrap_err().contains("JSON"));
        assert!(fits("map(string)", "{\"a\": \"b\"}").is_ok() && fits("map(string)", "[1]").is_err());
        assert!(fits("set(string)", "[\"a\"]").is_ok());
        assert!(fits("tuple([string, number])", "[\"a\", 1]").is_ok() && fits("tuple([string, number])", "[\"a\"]").is_err());
        let object = "object({ name = string, size = optional(number) })";
        assert!(fits(object, "{\"name\": \"a\", \"extra\": 1}").is_ok());
        assert!(fits(object, "{\"size\": 1}").unwrap_err().contains("\"name\" is missing"));
        assert!(fits(object, "{\"name\": \"a\", \"size\": \"big\"}").unwrap_err().contains("\"size\""));
        assert!(fits("map(list(string))", "{\"a\": [\"x\"]}").is_ok());
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
