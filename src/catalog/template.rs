//! Product templates as uploaded by `CreateTemplate`: the checks a body must pass and what a
//! `RosTerraformTemplate` declares. A Terraform template is a JSON object whose `Workspace` maps
//! relative `.tf` and `.tf.json` paths to file contents, laid out as Terraform reads them: the
//! files of the top directory are the root module, each subdirectory a module the root may call
//! by a relative `source`. Every file is parsed (hcl-rs for `.tf`, serde_json for `.tf.json`) so
//! that syntax errors are refused at upload; the `variable` and `output` blocks of the root
//! module — and of no other — are the parameter metadata and the outputs of the provisioning
//! engine. Pure: no store, no HTTP.
//!
//! Templates are code from outside: before anything parses a file its size and nesting depth are
//! bounded (see [`MAX_NESTING`]), and the parser runs on a thread of its own with a known stack, so
//! no template can exhaust the node's stack or memory. Nothing in a template may displace what the
//! engine writes into the working directory (its backend override, its variables file): backend
//! and `cloud` blocks and Terraform override files are refused, here at upload and again by the
//! engine before it runs a version stored before this rule.

use std::collections::BTreeMap;

use hcl::{Block, Body, Expression};
use serde_json::{Map, Value};

/// Template type of Terraform templates, the only kind this server provisions.
pub const TERRAFORM: &str = "RosTerraformTemplate";
/// Template type of native ROS templates: stored, never provisioned.
pub const ROS_STANDARD: &str = "RosStandardTemplate";

/// The only `ROSTemplateFormatVersion`.
const FORMAT_VERSION: &str = "2015-09-01";
/// Suffix of files in Terraform's JSON syntax (the others end `.tf`).
const JSON_SUFFIX: &str = ".tf.json";
/// Workspace limits.
const MAX_FILES: usize = 50;
const MAX_DEPTH: usize = 5;
const MAX_SEGMENT_CHARS: usize = 255;
/// Bytes of one Workspace file.
pub const MAX_FILE_BYTES: usize = 512 * 1024;
/// Bytes of all Workspace files together.
pub const MAX_WORKSPACE_BYTES: usize = 2 * 1024 * 1024;
/// Levels of nesting of a file as the parser recurses through them: brackets, blocks, function
/// calls, interpolations, template directives and operators in one chain. Real templates stay
/// far below; the JSON body's own nesting is bounded by serde_json's limit of 128.
pub const MAX_NESTING: usize = 100;
/// Stack of the parser's thread: [`MAX_NESTING`] levels need a fraction of it, unoptimised builds
/// included (the tests parse files at the limit on it).
const PARSER_STACK_BYTES: usize = 16 * 1024 * 1024;

use crate::model::Transform;
pub use crate::store::template::TerraformVariable;

/// A `variable` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// Block label.
    pub name: String,
    /// The `type` expression as written (`string`, `list(number)`, …), when given.
    pub type_expr: Option<String>,
    /// The `default` value when given (`Some(Null)` for `default = null`: optional, no value).
    pub default: Option<Value>,
    /// `description`, when given.
    pub description: Option<String>,
    /// `sensitive = true`.
    pub sensitive: bool,
    /// Whether the block has at least one `validation` block.
    pub has_validation: bool,
    /// File that declares it.
    pub file: String,
}

/// An `output` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Block label.
    pub name: String,
    /// `description`, when given.
    pub description: Option<String>,
    /// `sensitive = true`.
    pub sensitive: bool,
}

/// What a valid `RosTerraformTemplate` body holds.
#[derive(Debug, Clone)]
pub struct ParsedTemplate {
    /// The `Transform`: the tool and release line that runs the template.
    pub transform: Transform,
    /// `Description` of the body.
    pub description: Option<String>,
    /// Relative path → content, every path checked.
    pub workspace: BTreeMap<String, String>,
    /// The body's ROS-style `Parameters` section (name → `{Label, Description, AllowedValues}`).
    pub parameters: Map<String, Value>,
    /// Variables of the root module, sorted by name: the launch parameters.
    pub variables: Vec<Variable>,
    /// Outputs of the root module, sorted by name.
    pub outputs: Vec<Output>,
    /// Variables of the other modules (subdirectories), by file: never parameters, read only so
    /// that the engine keeps the defaults of sensitive ones out of logs.
    pub module_variables: Vec<Variable>,
    /// Why the template would displace the service's own settings (an override file, a backend
    /// or `cloud` block), if it would: refused at upload by [`validate`], and never run by the
    /// engine when a version stored before that rule has it.
    pub displaces_settings: Option<String>,
}

impl ParsedTemplate {
    /// The variable called `name`.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// The output called `name`.
    pub fn output(&self, name: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// Why a template is refused; each message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The body is not a JSON object.
    #[error("The template body is not a valid JSON object: {0}.")]
    NotJson(String),
    /// A structural rule is broken.
    #[error("{0}")]
    Invalid(String),
    /// A `.tf` file does not parse.
    #[error("The template file {file} has an HCL syntax error at line {line}, column {column}: {message}.")]
    Syntax {
        /// Workspace path.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Parser message.
        message: String,
    },
    /// A `.tf.json` file is not JSON.
    #[error("The template file {file} has a JSON syntax error at line {line}, column {column}: {message}.")]
    JsonSyntax {
        /// Workspace path.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Parser message.
        message: String,
    },
    /// A `TerraformVariables` entry names no declared variable, or is not allowed here.
    #[error("{0}")]
    Variables(String),
    /// The parser could not run (no thread could be started, or it failed): not the caller's fault.
    #[error("the template parser failed: {0}")]
    Internal(String),
}

impl TemplateError {
    /// The request parameter the error is about.
    pub fn parameter(&self) -> &'static str {
        match self {
            TemplateError::Variables(_) => "TerraformVariables",
            _ => "TemplateBody",
        }
    }
}

/// Checks a body of `template_type` with its `TerraformVariables`; returns the parsed template
/// of a Terraform body, `None` for a native ROS body (only checked to be a JSON object).
pub fn validate(template_type: &str, body: &str, variables: &[TerraformVariable]) -> Result<Option<ParsedTemplate>, TemplateError> {
    if template_type != TERRAFORM {
        json_object(body)?;
        if !variables.is_empty() {
            return Err(TemplateError::Variables(format!("TerraformVariables apply to {TERRAFORM} templates only.")));
        }
        return Ok(None);
    }
    let parsed = parse(body)?;
    if let Some(why) = &parsed.displaces_settings {
        return Err(TemplateError::Invalid(why.clone()));
    }
    check_variables(&parsed, variables)?;
    Ok(Some(parsed))
}

/// Refuses `TerraformVariables` entries that name no declared variable or repeat one.
pub fn check_variables(parsed: &ParsedTemplate, variables: &[TerraformVariable]) -> Result<(), TemplateError> {
    for (i, v) in variables.iter().enumerate() {
        if parsed.variable(&v.variable_name).is_none() {
            let declared: Vec<&str> = parsed.variables.iter().map(|v| v.name.as_str()).collect();
            return Err(TemplateError::Variables(format!(
                "The variable {:?} of TerraformVariables is not declared in the template (declared: {}).",
                v.variable_name,
                if declared.is_empty() { "none".to_string() } else { declared.join(", ") }
            )));
        }
        if variables[..i].iter().any(|w| w.variable_name == v.variable_name) {
            return Err(TemplateError::Variables(format!("The variable {:?} appears twice in TerraformVariables.", v.variable_name)));
        }
    }
    Ok(())
}

/// The `Transform` of a `RosTerraformTemplate` body, read without parsing its files.
pub fn transform(body: &str) -> Result<Transform, TemplateError> {
    transform_of(&json_object(body)?)
}

fn transform_of(root: &Map<String, Value>) -> Result<Transform, TemplateError> {
    match root.get("Transform") {
        Some(Value::String(t)) => t.parse().map_err(TemplateError::Invalid),
        other => Err(TemplateError::Invalid(format!("Transform must be {}, not {}.", Transform::SPELLING, shown(other)))),
    }
}

/// Parses and checks a `RosTerraformTemplate` body.
pub fn parse(body: &str) -> Result<ParsedTemplate, TemplateError> {
    let mut root = json_object(body)?;
    let invalid = |m: String| Err(TemplateError::Invalid(m));
    match root.get("ROSTemplateFormatVersion") {
        Some(Value::String(v)) if v == FORMAT_VERSION => {}
        other => return invalid(format!("ROSTemplateFormatVersion must be \"{FORMAT_VERSION}\", not {}.", shown(other))),
    }
    let transform = transform_of(&root)?;
    let description = match root.remove("Description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d),
        Some(_) => return invalid("Description must be a string.".into()),
    };
    let mut sections = Vec::new();
    for key in ["Parameters", "Outputs"] {
        match root.remove(key) {
            None | Some(Value::Null) => sections.push(Map::new()),
            Some(Value::Object(section)) => sections.push(section),
            Some(_) => return invalid(format!("{key} must be a JSON object.")),
        }
    }
    let parameters = sections.swap_remove(0);
    let workspace = workspace(root.remove("Workspace"))?;
    if !workspace.keys().any(|path| !path.contains('/')) {
        return invalid(
            "The Workspace has no file in its top directory: Terraform reads the root module from the top directory's .tf \
             and .tf.json files (subdirectories are modules it calls, e.g. module \"net\" { source = \"./modules/net\" }); \
             add at least one, e.g. main.tf."
                .into(),
        );
    }

    // hcl-rs recurses per nesting level: the files were bounded by `workspace`, and are parsed
    // on a stack sized for that bound, whatever the calling thread's.
    let (root_module, mut module_variables, backend) = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("template-parser".into())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, || read_files(&workspace))
            .map_err(|e| TemplateError::Internal(format!("cannot start the parser thread: {e}")))?
            .join()
            .map_err(|_| TemplateError::Internal("the parser thread panicked".into()))?
    })?;
    let Module { mut variables, mut outputs } = root_module;
    variables.sort_by(|a, b| a.name.cmp(&b.name));
    outputs.sort_by(|a, b| a.name.cmp(&b.name));
    module_variables.sort_by(|a, b| (&a.file, &a.name).cmp(&(&b.file, &b.name)));
    let displaces_settings = workspace.keys().find_map(|path| displacing_path(path)).or(backend);
    Ok(ParsedTemplate { transform, description, workspace, parameters, variables, outputs, module_variables, displaces_settings })
}

/// What the files of one module directory declare.
#[derive(Default)]
struct Module {
    variables: Vec<Variable>,
    outputs: Vec<Output>,
}

/// What a bounded workspace declares: the root module's variables and outputs, the variables of
/// the other modules, and the first backend or `cloud` block found in any file, which would
/// displace the service's own backend.
type Files = (Module, Vec<Variable>, Option<String>);

/// Parses every file of a bounded workspace. Each directory is a module whose declarations must
/// be unique within it; the top directory is the root module.
fn read_files(workspace: &BTreeMap<String, String>) -> Result<Files, TemplateError> {
    let mut modules: BTreeMap<&str, Module> = BTreeMap::new();
    let mut backend = None;
    for (path, content) in workspace {
        let file = if path.ends_with(JSON_SUFFIX) { json_file(path, content)? } else { hcl_file(path, content)? };
        let module = modules.entry(path.rsplit_once('/').map_or("", |(dir, _)| dir)).or_default();
        for variable in file.variables {
            if let Some(first) = module.variables.iter().find(|v| v.name == variable.name) {
                return Err(TemplateError::Invalid(format!(
                    "The variable {:?} is declared twice ({} and {path}).",
                    variable.name, first.file
                )));
            }
            module.variables.push(variable);
        }
        for output in file.outputs {
            if module.outputs.iter().any(|o| o.name == output.name) {
                return Err(TemplateError::Invalid(format!("The output {:?} is declared twice (in {path}).", output.name)));
            }
            module.outputs.push(output);
        }
        backend = backend.or(file.backend);
    }
    let root = modules.remove("").unwrap_or_default();
    let module_variables = modules.into_values().flat_map(|m| m.variables).collect();
    Ok((root, module_variables, backend))
}

/// What one file declares.
struct File {
    variables: Vec<Variable>,
    outputs: Vec<Output>,
    /// Why its `backend` or `cloud` block is refused, if it has one.
    backend: Option<String>,
}

/// The refusal of a `backend` or `cloud` block (`block`) in the file `path`.
fn backend_refusal(path: &str, block: &str) -> String {
    format!(
        "The template file {path} declares a {block} block in its terraform block: this service keeps the state of every \
         provisioned product itself and sets the backend; remove the block."
    )
}

/// Reads a file of Terraform's native syntax.
fn hcl_file(path: &str, content: &str) -> Result<File, TemplateError> {
    let hcl = hcl::edit::parser::parse_body(content).map_err(|e| TemplateError::Syntax {
        file: path.to_string(),
        line: e.location().line(),
        column: e.location().column(),
        message: e.message().to_string(),
    })?;
    let hcl: Body = hcl.into();
    let mut file = File { variables: Vec::new(), outputs: Vec::new(), backend: None };
    for block in hcl.blocks() {
        match block.identifier() {
            "variable" => file.variables.push(variable(path, block)?),
            "output" => {
                let attrs = block.body();
                file.outputs.push(Output {
                    name: single_label(path, block)?,
                    description: string_attr(attrs, "description"),
                    sensitive: bool_attr(path, attrs, "sensitive")?,
                });
            }
            "terraform" if file.backend.is_none() => {
                file.backend = block
                    .body()
                    .blocks()
                    .find(|b| matches!(b.identifier(), "backend" | "cloud"))
                    .map(|inner| backend_refusal(path, inner.identifier()));
            }
            _ => {}
        }
    }
    Ok(file)
}

/// Reads a file of Terraform's JSON syntax: an object whose properties are block types; a
/// block's labels are nested objects (or arrays of them) down to its body.
fn json_file(path: &str, content: &str) -> Result<File, TemplateError> {
    let invalid = |m: String| TemplateError::Invalid(m);
    let root: Value = serde_json::from_str(content).map_err(|e| TemplateError::JsonSyntax {
        file: path.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let Value::Object(root) = root else {
        return Err(invalid(format!("The template file {path} must hold a JSON object whose properties are block types.")));
    };
    let mut file = File { variables: Vec::new(), outputs: Vec::new(), backend: None };
    for (kind, value) in &root {
        match kind.as_str() {
            "variable" | "output" => {
                for (name, body) in json_labelled(path, kind, value)? {
                    if kind == "variable" {
                        file.variables.push(json_variable(path, name, body)?);
                    } else {
                        file.outputs.push(Output {
                            name: name.to_string(),
                            description: body.get("description").map(json_text),
                            sensitive: json_bool(path, body, "sensitive")?,
                        });
                    }
                }
            }
            "terraform" if file.backend.is_none() => {
                let bodies = match value {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                file.backend = bodies
                    .into_iter()
                    .filter_map(Value::as_object)
                    .find_map(|body| ["backend", "cloud"].into_iter().find(|b| body.contains_key(*b)))
                    .map(|block| backend_refusal(path, block));
            }
            _ => {}
        }
    }
    Ok(file)
}

/// A one-label block written in JSON: its label and its body.
type JsonBlock<'a> = (&'a str, &'a Map<String, Value>);

/// The (label, body) pairs of one-label blocks of type `kind` written in JSON: an object keyed
/// by label, or an array of such objects; each body an object.
fn json_labelled<'a>(path: &str, kind: &str, value: &'a Value) -> Result<Vec<JsonBlock<'a>>, TemplateError> {
    let shape = || TemplateError::Invalid(format!("The {kind} blocks in {path} must be a JSON object keyed by {kind} name."));
    let groups = match value {
        Value::Array(items) => items.iter().map(|item| item.as_object().ok_or_else(shape)).collect::<Result<Vec<_>, _>>()?,
        Value::Object(group) => vec![group],
        _ => return Err(shape()),
    };
    let mut blocks = Vec::new();
    for (name, body) in groups.into_iter().flatten() {
        let Value::Object(body) = body else {
            return Err(TemplateError::Invalid(format!("The {kind} {name:?} in {path} must be a JSON object.")));
        };
        blocks.push((name.as_str(), body));
    }
    Ok(blocks)
}

/// A `variable` block written in JSON: its `type` is a string holding the type expression, its
/// `default` a literal JSON value.
fn json_variable(file: &str, name: &str, body: &Map<String, Value>) -> Result<Variable, TemplateError> {
    let type_expr = match body.get("type") {
        None => None,
        Some(Value::String(t)) => Some(t.trim().to_string()),
        Some(other) => {
            return Err(TemplateError::Invalid(format!(
                "The type of variable {name:?} in {file} must be a string holding a type expression (e.g. \"list(string)\"), not {other}."
            )))
        }
    };
    Ok(Variable {
        name: name.to_string(),
        type_expr,
        default: body.get("default").cloned(),
        description: body.get("description").map(json_text),
        sensitive: json_bool(file, body, "sensitive")?,
        has_validation: body.contains_key("validation"),
        file: file.to_string(),
    })
}

/// A text property; any other JSON value is kept as written.
fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_bool(file: &str, body: &Map<String, Value>, key: &str) -> Result<bool, TemplateError> {
    match body.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(TemplateError::Invalid(format!("The attribute {key} in {file} must be true or false, not {other}."))),
    }
}

fn json_object(body: &str) -> Result<Map<String, Value>, TemplateError> {
    match serde_json::from_str(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(TemplateError::NotJson("the body is not an object".into())),
        Err(e) => Err(TemplateError::NotJson(e.to_string())),
    }
}

/// A short rendering of a JSON value for messages.
fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "missing".to_string(), |v| v.to_string())
}

fn workspace(value: Option<Value>) -> Result<BTreeMap<String, String>, TemplateError> {
    let invalid = |m: String| TemplateError::Invalid(m);
    let files = match value {
        Some(Value::Object(files)) => files,
        None | Some(Value::Null) => {
            return Err(invalid("Workspace is missing: it maps relative .tf and .tf.json paths to file contents.".into()))
        }
        Some(_) => return Err(invalid("Workspace must be a JSON object mapping relative .tf and .tf.json paths to file contents.".into())),
    };
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(invalid(format!("Workspace must hold 1 to {MAX_FILES} files, not {}.", files.len())));
    }
    let mut total = 0;
    files
        .into_iter()
        .map(|(path, content)| {
            check_path(&path).map_err(|why| invalid(format!("The Workspace path {path:?} {why}.")))?;
            let Value::String(content) = content else {
                return Err(invalid(format!("The content of Workspace file {path:?} must be a string.")));
            };
            if content.len() > MAX_FILE_BYTES {
                return Err(invalid(format!(
                    "The template file {path} is {} bytes long; at most {MAX_FILE_BYTES} are allowed per file.",
                    content.len()
                )));
            }
            total += content.len();
            if total > MAX_WORKSPACE_BYTES {
                return Err(invalid(format!(
                    "The Workspace files hold more than {MAX_WORKSPACE_BYTES} bytes together (the limit was passed at {path})."
                )));
            }
            if let Some(line) = super::nesting::too_deep(&content, MAX_NESTING) {
                return Err(invalid(format!(
                    "The template file {path} nests brackets, blocks, calls, interpolations or operators more than {MAX_NESTING} \
                     levels deep (at line {line})."
                )));
            }
            Ok((path, content))
        })
        .collect()
}

/// Checks one Workspace path: relative, `/`-separated, ending `.tf` or `.tf.json`, at most
/// [`MAX_DEPTH`] segments of at most [`MAX_SEGMENT_CHARS`] characters, none of them empty, `.` or
/// `..`; no Terraform override file and nothing under `.terraform/` (both would displace the
/// engine's own files: see [`displacing_path`]). Only configuration files are accepted, so
/// `*.tfvars`, `*.auto.tfvars(.json)` (which Terraform would load over the caller's parameters),
/// state and CLI configuration files are refused.
fn check_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') || path.contains('\\') || path.contains(':') {
        return Err("must be a relative path with / separators".into());
    }
    if !path.ends_with(".tf") && !path.ends_with(JSON_SUFFIX) {
        return Err("must end with .tf or .tf.json".into());
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > MAX_DEPTH {
        return Err(format!("is more than {MAX_DEPTH} levels deep"));
    }
    for segment in segments {
        match segment {
            "" | "." => return Err("has an empty or \".\" segment".into()),
            ".." => return Err("must not contain \"..\"".into()),
            s if s.chars().count() > MAX_SEGMENT_CHARS => return Err(format!("has a segment longer than {MAX_SEGMENT_CHARS} characters")),
            _ => {}
        }
    }
    Ok(())
}

/// Why a Workspace path would displace a file the engine writes, if it would: Terraform override
/// files (merged over the engine's backend override whatever their order) and `.terraform/`.
fn displacing_path(path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.strip_suffix(JSON_SUFFIX).or_else(|| name.strip_suffix(".tf")).unwrap_or(name);
    if stem == "override" || stem.ends_with("_override") {
        return Some(format!(
            "The Workspace path {path:?} is a Terraform override file, which would be merged over the settings this service \
             writes (its backend and variables): override files are not accepted; put the settings in an ordinary file."
        ));
    }
    path.split('/')
        .any(|segment| segment == ".terraform")
        .then(|| format!("The Workspace path {path:?} is inside .terraform/, the directory Terraform keeps for itself."))
}

fn single_label(file: &str, block: &Block) -> Result<String, TemplateError> {
    match block.labels() {
        [label] => Ok(label.as_str().to_string()),
        _ => Err(TemplateError::Invalid(format!("A {} block in {file} must have exactly one label.", block.identifier()))),
    }
}

fn variable(file: &str, block: &Block) -> Result<Variable, TemplateError> {
    let body = block.body();
    let attr = |key: &str| body.attributes().find(|a| a.key() == key).map(|a| a.expr().clone());
    Ok(Variable {
        name: single_label(file, block)?,
        type_expr: attr("type").map(|t| t.to_string()),
        default: attr("default").map(|d| serde_json::to_value(hcl::Value::from(d)).unwrap_or(Value::Null)),
        description: string_attr(body, "description"),
        sensitive: bool_attr(file, body, "sensitive")?,
        has_validation: body.blocks().any(|b| b.identifier() == "validation"),
        file: file.to_string(),
    })
}

/// A text attribute; a non-literal expression is kept as written.
fn string_attr(body: &Body, key: &str) -> Option<String> {
    body.attributes().find(|a| a.key() == key).map(|a| match a.expr() {
        Expression::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn bool_attr(file: &str, body: &Body, key: &str) -> Result<bool, TemplateError> {
    match body.attributes().find(|a| a.key() == key).map(|a| a.expr()) {
        None => Ok(false),
        Some(Expression::Bool(b)) => Ok(*b),
        Some(other) => Err(TemplateError::Invalid(format!("The attribute {key} in {file} must be true or false, not {other}."))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(workspace: Value) -> String {
        json!({"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.5", "Workspace": workspace}).to_string()
    }

    fn invalid(body: &str) -> String {
        parse(body).unwrap_err().to_string()
    }

    #[test]
    fn variables_and_outputs_are_extracted() {
        let main = r#"
variable "region" {
  type        = string
  default     = "cn-hangzhou"
  description = "Where"
}
variable "tags" {
  type    = map(list(string))
  default = { a = ["x"] }
}
variable "secret" {
  sensitive = true
  validation {
    condition     = length(var.secret) > 3
    error_message = "short"
  }
}
output "url" {
  value       = "x"
  description = "The URL"
  sensitive   = true
}
"#;
        let parsed = parse(&body(json!({"main.tf": main, "modules/net/outputs.tf": "output \"id\" { value = 1 }"}))).unwrap();
        assert_eq!(parsed.transform, Transform::terraform(1, 5));
        let names: Vec<&str> = parsed.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["region", "secret", "tags"]);
        let region = parsed.variable("region").unwrap();
        assert_eq!(region.type_expr.as_deref(), Some("string"));
        assert_eq!(region.default, Some(json!("cn-hangzhou")));
        assert_eq!(region.description.as_deref(), Some("Where"));
        let tags = parsed.variable("tags").unwrap();
        assert_eq!(tags.type_expr.as_deref(), Some("map(list(string))"));
        assert_eq!(tags.default, Some(json!({"a": ["x"]})));
        let secret = parsed.variable("secret").unwrap();
        assert!(secret.sensitive && secret.has_validation && secret.default.is_none() && secret.type_expr.is_none());
        let url = parsed.output("url").unwrap();
        assert_eq!((url.description.as_deref(), url.sensitive), (Some("The URL"), true));
        // The module's output is the module's: not the template's.
        assert!(parsed.output("id").is_none());
        assert_eq!(parsed.outputs.len(), 1);
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let err = parse(&body(json!({"ok.tf": "", "bad.tf": "variable \"a\" {\n  type = string\n  default = \n}\n"}))).unwrap_err();
        match &err {
            TemplateError::Syntax { file, line, .. } => assert_eq!((file.as_str(), *line), ("bad.tf", 3)),
            other => panic!("not a syntax error: {other}"),
        }
        assert!(err.to_string().contains("bad.tf") && err.to_string().contains("line 3"), "{err}");
        assert_eq!(err.parameter(), "TemplateBody");
    }

    #[test]
    fn the_envelope_is_checked() {
        assert!(invalid("not json").contains("not a valid JSON object"));
        assert!(invalid("[]").contains("not a valid JSON object"));
        let no_version = json!({"Transform": "Aliyun::Terraform-v1.5", "Workspace": {"a.tf": ""}}).to_string();
        assert!(invalid(&no_version).contains("ROSTemplateFormatVersion"));
        for transform in ["Aliyun::Terraform-v1", "Aliyun::Terraform-1.5", "Aliyun::Terraform-v1.5.7", "x"] {
            let b = json!({"ROSTemplateFormatVersion": "2015-09-01", "Transform": transform, "Workspace": {"a.tf": ""}});
            assert!(invalid(&b.to_string()).contains("Transform"), "{transform}");
        }
        let no_workspace = json!({"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v0.12"});
        assert!(invalid(&no_workspace.to_string()).contains("Workspace is missing"));
        assert!(invalid(&body(json!({}))).contains("1 to 50 files"));
        assert!(invalid(&body(json!({"a.tf": 1}))).contains("must be a string"));
    }

    #[test]
    fn workspace_paths_are_checked() {
        let refused = [
            ("/etc/main.tf", "relative"),
            ("C:/main.tf", "relative"),
            ("a\\main.tf", "relative"),
            ("README.md", "end with .tf or .tf.json"),
            ("main.json", "end with .tf or .tf.json"),
            ("../main.tf", "\"..\""),
            ("a/../main.tf", "\"..\""),
            ("a//main.tf", "empty"),
            ("./main.tf", "empty"),
            ("a/b/c/d/e/main.tf", "5 levels"),
        ];
        for (path, why) in refused {
            let message = invalid(&body(json!({ path: "" })));
            assert!(message.contains(why) && message.contains(path.replace('\\', "\\\\").as_str()), "{path}: {message}");
        }
        let long = format!("{}.tf", "a".repeat(252));
        assert!(parse(&body(json!({ long: "" }))).is_ok());
        let too_long = format!("{}.tf", "a".repeat(253));
        assert!(invalid(&body(json!({ too_long: "" }))).contains("longer than 255"));
        assert!(parse(&body(json!({"main.tf": "", "a/b/c/d/main.tf": "", "a/b/c/d/x.tf.json": "{}"}))).is_ok());
    }

    #[test]
    fn at_most_50_files() {
        let files = |n: usize| Value::Object((0..n).map(|i| (format!("f{i}.tf"), json!(""))).collect());
        assert!(parse(&body(files(50))).is_ok());
        assert!(invalid(&body(files(51))).contains("1 to 50 files, not 51"));
    }

    /// A kind of nesting and a file nesting it `n` levels.
    type Nesting = (&'static str, fn(usize) -> String);

    /// Generators of files nesting `n` levels of each kind the parser recurses on.
    fn nestings() -> Vec<Nesting> {
        vec![
            ("lists", |n| format!("x = {}1{}", "[".repeat(n), "]".repeat(n))),
            ("parentheses", |n| format!("x = {}1{}", "(".repeat(n), ")".repeat(n))),
            ("objects", |n| format!("x = {}1{}", "{a = ".repeat(n), "}".repeat(n))),
            ("blocks", |n| format!("{}\n{}", "a {\n".repeat(n), "}\n".repeat(n))),
            ("calls", |n| format!("x = {}1{}", "max(1, ".repeat(n), ")".repeat(n))),
            ("interpolations", |n| format!("x = {}1{}", "\"${".repeat(n), "}\"".repeat(n))),
            ("directives", |n| format!("x = \"{}a{}\"", "%{if true}".repeat(n), "%{endif}".repeat(n))),
            ("negations", |n| format!("x = {}true", "!".repeat(n))),
            ("sums", |n| format!("x = 1{}", " + 1".repeat(n))),
            ("conditionals", |n| format!("x = {}1", "true ? 0 : ".repeat(n))),
            ("heredocs", |n| format!("x = {}1{}", "<<E\n${".repeat(n), "}\nE\n".repeat(n))),
        ]
    }

    #[test]
    fn files_nested_up_to_the_limit_parse_and_deeper_ones_are_refused() {
        for (kind, nest) in nestings() {
            let deepest = (1..).take_while(|&n| crate::catalog::nesting::too_deep(&nest(n), MAX_NESTING).is_none()).last().unwrap();
            assert!(deepest >= MAX_NESTING / 4, "{kind}: only {deepest} levels accepted");
            // The deepest accepted file parses (on the parser's thread, whatever this one's stack)...
            let parsed = parse(&body(json!({"main.tf": format!("variable \"v\" {{}}\n{}\n", nest(deepest))})));
            assert!(parsed.is_ok(), "{kind} at {deepest}: {}", parsed.unwrap_err());
            // ...and thousands of levels are refused before parsing, naming file, line and limit.
            let message = invalid(&body(json!({"ok.tf": "", "deep.tf": format!("\n{}", nest(5000))})));
            assert!(message.contains("deep.tf") && message.contains("more than 100 levels deep (at line "), "{kind}: {message}");
        }
    }

    #[test]
    fn deep_json_bodies_are_refused() {
        let deep = format!("{{\"Parameters\": {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(invalid(&deep).contains("recursion limit"), "{}", invalid(&deep));
    }

    #[test]
    fn file_sizes_are_bounded() {
        let file = |bytes: usize| format!("# {}\n", "x".repeat(bytes - 3));
        assert!(parse(&body(json!({"a.tf": file(MAX_FILE_BYTES)}))).is_ok());
        let message = invalid(&body(json!({"a.tf": file(MAX_FILE_BYTES + 1)})));
        assert!(message.contains("a.tf is 524289 bytes long; at most 524288"), "{message}");
        let four =
            json!({"a.tf": file(MAX_FILE_BYTES), "b.tf": file(MAX_FILE_BYTES), "c.tf": file(MAX_FILE_BYTES), "d.tf": file(MAX_FILE_BYTES)});
        assert!(parse(&body(four.clone())).is_ok());
        let mut five = four;
        five["e.tf"] = json!("x = 1");
        assert!(invalid(&body(five)).contains("more than 2097152 bytes together (the limit was passed at e.tf)"));
    }

    #[test]
    fn nothing_may_displace_the_services_settings() {
        let refused = [
            ("override.tf", "override file"),
            ("zzzz_override.tf", "override file"),
            ("modules/net/main_override.tf", "override file"),
            (".terraform/modules/x.tf", ".terraform/"),
            ("terraform.tfvars", "end with .tf"),
            ("x.auto.tfvars", "end with .tf"),
            ("x.auto.tfvars.json", "end with .tf"),
            ("override.tf.json", "override file"),
            ("modules/net/main_override.tf.json", "override file"),
            ("terraform.tfstate", "end with .tf"),
            (".terraformrc", "end with .tf"),
            ("terraform.rc", "end with .tf"),
        ];
        let refusal = |b: &str| validate(TERRAFORM, b, &[]).unwrap_err().to_string();
        for (path, why) in refused {
            let content = if path.ends_with(JSON_SUFFIX) { "{}" } else { "x = 1" };
            let message = refusal(&body(json!({"main.tf": "", path: content})));
            assert!(message.contains(why) && message.contains(path), "{path}: {message}");
        }
        let fine = parse(&body(json!({"overrides.tf": "", "my_override_vars.tf": "", "a/terraform.tf": ""}))).unwrap();
        assert_eq!(fine.displaces_settings, None);
        for (block, text) in [
            ("backend", "terraform {\n  required_version = \">= 1.0\"\n  backend \"s3\" {\n    bucket = \"x\"\n  }\n}\n"),
            ("cloud", "terraform {\n  cloud {\n    organization = \"x\"\n  }\n}\n"),
        ] {
            let b = body(json!({"main.tf": "", "modules/state.tf": text}));
            let message = refusal(&b);
            // Stored before the rule, the template still parses, for the engine to refuse it.
            assert_eq!(parse(&b).unwrap().displaces_settings.as_deref(), Some(message.as_str()));
            assert!(message.contains(&format!("modules/state.tf declares a {block} block")), "{message}");
        }
        assert!(parse(&body(json!({"main.tf": "terraform {\n  required_providers {}\n}\n"}))).is_ok());
        // The same blocks in JSON syntax, in the root or in a module, as an object or in an array.
        for (path, text, block) in [
            ("backend.tf.json", json!({"terraform": {"backend": {"s3": {"bucket": "x"}}}}), "backend"),
            ("modules/net/state.tf.json", json!({"terraform": [{"required_version": ">= 1.0"}, {"cloud": {}}]}), "cloud"),
        ] {
            let message = refusal(&body(json!({"main.tf": "", path: text.to_string()})));
            assert!(message.contains(&format!("{path} declares a {block} block")), "{message}");
        }
        let fine = json!({"terraform": {"required_providers": {"s": {"source": "a/b/s"}}}, "locals": {"backend": "x"}});
        assert!(validate(TERRAFORM, &body(json!({"main.tf.json": fine.to_string()})), &[]).is_ok());
    }

    #[test]
    fn modules_are_checked_but_never_parameters() {
        let module =
            "variable \"cidr\" {}\nvariable \"key\" {\n  sensitive = true\n  default = \"hidden\"\n}\noutput \"id\" { value = 1 }\n";
        let root =
            "variable \"cidr\" {\n  default = \"10.0.0.0/8\"\n}\nmodule \"net\" {\n  source = \"./modules/net\"\n  cidr = var.cidr\n}\n";
        let parsed = parse(&body(json!({
            "main.tf": root,
            "modules/net/main.tf": module,
            "modules/other/vars.tf": "variable \"cidr\" {}",
        })))
        .unwrap();
        // The root's variable only: the module's, of the same name and required, is no parameter.
        assert_eq!(parsed.variables.len(), 1);
        assert_eq!(parsed.variable("cidr").unwrap().file, "main.tf");
        assert!(parsed.variable("key").is_none() && parsed.outputs.is_empty());
        let modules: Vec<(&str, &str)> = parsed.module_variables.iter().map(|v| (v.file.as_str(), v.name.as_str())).collect();
        assert_eq!(modules, [("modules/net/main.tf", "cidr"), ("modules/net/main.tf", "key"), ("modules/other/vars.tf", "cidr")]);
        // Within one module, a name is still declared once.
        let twice = invalid(&body(json!({"main.tf": "", "m/a.tf": "variable \"x\" {}", "m/b.tf.json": r#"{"variable": {"x": {}}}"#})));
        assert!(twice.contains("declared twice (m/a.tf and m/b.tf.json)"), "{twice}");
    }

    #[test]
    fn syntax_errors_in_modules_name_the_file() {
        let err = parse(&body(json!({"main.tf": "", "modules/net/main.tf": "variable \"a\" {\n  default = \n}\n"}))).unwrap_err();
        assert!(matches!(&err, TemplateError::Syntax { file, line: 2, .. } if file == "modules/net/main.tf"), "{err}");
        let err = parse(&body(json!({"main.tf": "", "modules/net/vars.tf.json": "{\n  \"variable\": {,}\n}"}))).unwrap_err();
        assert!(matches!(&err, TemplateError::JsonSyntax { file, line: 2, .. } if file == "modules/net/vars.tf.json"), "{err}");
        assert!(err.to_string().contains("modules/net/vars.tf.json has a JSON syntax error at line 2"), "{err}");
        assert_eq!(err.parameter(), "TemplateBody");
    }

    #[test]
    fn json_files_declare_variables_and_outputs() {
        let vars = json!({
            "//": "variables in JSON",
            "variable": {
                "zones": {"type": "list(string)", "default": ["a", "b"], "description": "Where"},
                "token": {"sensitive": true, "validation": {"condition": "${length(var.token) > 3}", "error_message": "short"}},
            },
            "output": [{"zone": {"value": "${var.zones[0]}", "description": "The first"}}, {"secret": {"value": "${var.token}", "sensitive": true}}],
        });
        let parsed = parse(&body(json!({"main.tf": "variable \"name\" {}", "vars.tf.json": vars.to_string()}))).unwrap();
        let names: Vec<&str> = parsed.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["name", "token", "zones"]);
        let zones = parsed.variable("zones").unwrap();
        assert_eq!((zones.type_expr.as_deref(), zones.default.as_ref()), (Some("list(string)"), Some(&json!(["a", "b"]))));
        assert_eq!((zones.description.as_deref(), zones.file.as_str()), (Some("Where"), "vars.tf.json"));
        let token = parsed.variable("token").unwrap();
        assert!(token.sensitive && token.has_validation && token.default.is_none() && token.type_expr.is_none());
        assert_eq!(parsed.output("zone").unwrap().description.as_deref(), Some("The first"));
        assert!(parsed.output("secret").unwrap().sensitive);
        // A name declared in both syntaxes is declared twice.
        let twice = invalid(&body(json!({"a.tf": "variable \"x\" {}", "b.tf.json": r#"{"variable": {"x": {}}}"#})));
        assert!(twice.contains("declared twice (a.tf and b.tf.json)"), "{twice}");
        for (text, why) in [
            ("[]", "must hold a JSON object"),
            (r#"{"variable": ["x"]}"#, "keyed by variable name"),
            (r#"{"variable": {"x": 1}}"#, "variable \"x\" in a.tf.json must be a JSON object"),
            (r#"{"variable": {"x": {"type": 1}}}"#, "must be a string holding a type expression"),
            (r#"{"output": {"x": {"sensitive": "yes"}}}"#, "true or false"),
        ] {
            let message = invalid(&body(json!({"a.tf.json": text})));
            assert!(message.contains(why), "{text}: {message}");
        }
    }

    #[test]
    fn a_workspace_needs_a_root_module() {
        let message = invalid(&body(json!({"modules/net/main.tf": "", "modules/net/vars.tf.json": "{}"})));
        assert!(message.contains("no file in its top directory") && message.contains("root module"), "{message}");
        assert!(parse(&body(json!({"main.tf.json": "{}", "modules/net/main.tf": ""}))).is_ok());
    }

    #[test]
    fn duplicate_declarations_are_refused() {
        let message = invalid(&body(json!({"a.tf": "variable \"x\" {}", "b.tf": "variable \"x\" {}"})));
        assert!(message.contains("declared twice (a.tf and b.tf)"), "{message}");
        assert!(invalid(&body(json!({"a.tf": "variable {}"}))).contains("exactly one label"));
        assert!(invalid(&body(json!({"a.tf": "variable \"x\" { sensitive = \"yes\" }"}))).contains("true or false"));
    }

    #[test]
    fn terraform_variables_must_be_declared() {
        let b = body(json!({"main.tf": "variable \"size\" {}"}));
        let var = |name: &str| TerraformVariable { variable_name: name.into(), description: "d".into() };
        assert!(validate(TERRAFORM, &b, &[var("size")]).unwrap().is_some());
        let err = validate(TERRAFORM, &b, &[var("colour")]).unwrap_err();
        assert_eq!(err.parameter(), "TerraformVariables");
        assert!(err.to_string().contains("\"colour\"") && err.to_string().contains("declared: size"), "{err}");
        assert!(validate(TERRAFORM, &b, &[var("size"), var("size")]).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn native_ros_templates_are_only_json_checked() {
        assert!(validate(ROS_STANDARD, r#"{"ROSTemplateFormatVersion": "2015-09-01", "Resources": {}}"#, &[]).unwrap().is_none());
        assert_eq!(validate(ROS_STANDARD, "{", &[]).unwrap_err().parameter(), "TemplateBody");
        let var = TerraformVariable { variable_name: "x".into(), description: String::new() };
        assert_eq!(validate(ROS_STANDARD, "{}", &[var]).unwrap_err().parameter(), "TerraformVariables");
    }
}
