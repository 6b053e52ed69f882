//! The machine-readable description of every action's request parameters (`spec/` in the
//! repository: extracted from the official SDK, with `overlay.json` adding limits the SDK's doc
//! comments lack and `descriptions.json` a one-line English description of every action and
//! request parameter, translated from the vendor's API metadata). One generic decoder turns a request's flat parameters into a JSON object,
//! checking presence, type, length, range, allowed values and array sizes on the way, so every
//! action validates its input the same way and names the offending parameter.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use super::error::ApiError;
use crate::protocol::params::{parse_bool, Params};

const SPEC: &str = include_str!("../../spec/servicecatalog-2021-09-01.json");
const OVERLAY: &str = include_str!("../../spec/overlay.json");
const EXTENSIONS: &str = include_str!("../../spec/extensions.json");
const DESCRIPTIONS: &str = include_str!("../../spec/descriptions.json");

/// Number of actions of the official API (the rest are this server's extensions).
pub const OFFICIAL_ACTIONS: usize = 55;

/// One request parameter, or one field of an array item or JSON object.
#[derive(Debug, Clone, Deserialize)]
pub struct ParamSpec {
    /// Wire name.
    pub name: String,
    /// `string`, `integer`, `boolean`, `array` or `object`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `scalar`, `flat` (arrays as `Name.N.Field`) or `json` (one JSON string).
    pub encoding: Option<String>,
    /// What the caller may send (the part of a parameter the overlay patches).
    #[serde(flatten)]
    pub limits: Limits,
    /// Fields of a JSON-encoded object.
    #[serde(default)]
    pub fields: Vec<ParamSpec>,
    /// Item description of an array.
    items: Option<ItemSpec>,
    /// What it is, in one line (from `descriptions.json`).
    #[serde(skip)]
    pub description: String,
}

impl ParamSpec {
    /// Fields of the object items of an array (empty for scalar items and non-arrays).
    pub fn item_fields(&self) -> &[ParamSpec] {
        self.items.as_ref().map_or(&[], |i| &i.fields)
    }

    /// Largest allowed value of an integer.
    pub fn maximum(&self) -> Option<i64> {
        self.limits.maximum
    }
}

#[derive(Debug, Clone, Deserialize)]
struct ItemSpec {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    fields: Vec<ParamSpec>,
}

/// One action of the API as the SDK sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionSpec {
    /// Wire name.
    pub name: String,
    /// `GET` or `POST` as the SDK uses it.
    pub http_method: String,
    /// Request parameters.
    pub request: Vec<ParamSpec>,
    /// What it does, in one line (from `descriptions.json`).
    #[serde(skip)]
    pub summary: String,
}

#[derive(Deserialize)]
struct SpecFile {
    actions: Vec<ActionSpec>,
    /// Extension parameters of official actions, by action (`extensions.json` only); the
    /// `_comment` entry is not an action.
    #[serde(default)]
    parameters: HashMap<String, Value>,
}

/// `descriptions.json`: by action, its summary and its parameters' descriptions.
#[derive(Deserialize)]
struct DescriptionFile {
    actions: HashMap<String, Described>,
}

#[derive(Deserialize)]
struct Described {
    summary: String,
    parameters: HashMap<String, String>,
}

/// Every action's spec, by wire name, loaded once.
pub fn actions() -> &'static HashMap<String, ActionSpec> {
    static ACTIONS: OnceLock<HashMap<String, ActionSpec>> = OnceLock::new();
    ACTIONS.get_or_init(|| {
        let file: SpecFile = serde_json::from_str(SPEC).expect("the embedded API spec is valid JSON");
        let extensions: SpecFile = serde_json::from_str(EXTENSIONS).expect("the embedded extensions spec is valid JSON");
        let overlay: Map<String, Value> = serde_json::from_str(OVERLAY).expect("the embedded overlay is valid JSON");
        let mut descriptions: DescriptionFile = serde_json::from_str(DESCRIPTIONS).expect("the embedded descriptions are valid JSON");
        let mut added = extensions.parameters;
        added.remove("_comment");
        let actions: HashMap<String, ActionSpec> = file
            .actions
            .into_iter()
            .chain(extensions.actions)
            .map(|mut action| {
                if let Some(params) = added.remove(&action.name) {
                    let params: Vec<ParamSpec> = serde_json::from_value(params).expect("extension parameters are well-formed");
                    action.request.extend(params);
                }
                if let Some(Value::Object(patches)) = overlay.get(&action.name) {
                    apply_overlay(&mut action, patches);
                }
                if let Some(described) = descriptions.actions.remove(&action.name) {
                    describe(&mut action, described);
                }
                (action.name.clone(), action)
            })
            .collect();
        if let Some(name) = descriptions.actions.keys().next() {
            panic!("descriptions.json describes unknown action {name}");
        }
        if let Some(name) = added.keys().next() {
            panic!("extensions.json adds parameters to unknown action {name}");
        }
        actions
    })
}

/// Gives `action` and its parameters their descriptions (one an action lacks stays empty, which
/// a test refuses; one it does not take is a mistake in the file).
fn describe(action: &mut ActionSpec, mut described: Described) {
    action.summary = described.summary;
    for param in &mut action.request {
        param.description = described.parameters.remove(&param.name).unwrap_or_default();
    }
    if let Some(name) = described.parameters.keys().next() {
        panic!("descriptions.json describes unknown parameter {}.{name}", action.name);
    }
}

fn apply_overlay(action: &mut ActionSpec, patches: &Map<String, Value>) {
    for (path, patch) in patches {
        let (param, field) = path.split_once('.').map_or((path.as_str(), None), |(p, f)| (p, Some(f)));
        let Some(spec) = action.request.iter_mut().find(|p| p.name == param) else {
            panic!("overlay names unknown parameter {}.{path}", action.name)
        };
        let target = match field {
            None => spec,
            Some(field) => spec
                .items
                .as_mut()
                .map(|i| &mut i.fields)
                .unwrap_or(&mut spec.fields)
                .iter_mut()
                .find(|f| f.name == field)
                .unwrap_or_else(|| panic!("overlay names unknown field {}.{path}", action.name)),
        };
        let mut merged = serde_json::to_value(&target.limits).expect("spec serialises");
        for (k, v) in patch.as_object().expect("overlay patches are objects") {
            merged[k] = v.clone();
        }
        target.limits = serde_json::from_value(merged).expect("overlay patch is well-formed");
    }
}

/// The limits of a parameter: whether it is required, what values and sizes it takes, its default.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct Limits {
    /// Whether the caller must send it.
    #[serde(default)]
    pub required: bool,
    /// Allowed values.
    #[serde(rename = "enum", default)]
    pub allowed: Option<Vec<String>>,
    #[serde(rename = "minLength")]
    min_length: Option<usize>,
    #[serde(rename = "maxLength")]
    max_length: Option<usize>,
    minimum: Option<i64>,
    maximum: Option<i64>,
    #[serde(rename = "maxItems")]
    max_items: Option<usize>,
    /// Value used when the caller sends none.
    pub default: Option<Value>,
}

/// Decodes and validates the parameters of `action` into a JSON object keyed by wire name, with
/// integers as numbers, booleans as booleans, arrays rebuilt and JSON-encoded parameters parsed.
/// Parameters the action does not take (protocol ones such as `Action`) are left out.
pub fn decode(action: &ActionSpec, params: &Params) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for spec in &action.request {
        let value = match (spec.kind.as_str(), spec.encoding.as_deref()) {
            ("array", Some("flat")) => decode_flat_array(spec, params)?,
            (_, Some("json")) => match params.get(&spec.name).filter(|v| !v.is_empty()) {
                None => None,
                Some(text) => {
                    let value: Value = serde_json::from_str(text).map_err(|e| {
                        ApiError::invalid_parameter(&spec.name, format!("The parameter {} is not valid JSON: {e}.", spec.name))
                    })?;
                    Some(check_json(spec, &spec.name, value)?)
                }
            },
            _ => match params.get(&spec.name) {
                None => None,
                Some("") if spec.limits.required => None,
                Some(text) => Some(scalar(spec, &spec.name, &spec.name, text)?),
            },
        };
        match value {
            Some(v) => {
                out.insert(spec.name.clone(), v);
            }
            None if spec.limits.required => return Err(ApiError::missing_parameter(&spec.name)),
            None => {
                if let Some(default) = &spec.limits.default {
                    out.insert(spec.name.clone(), default.clone());
                }
            }
        }
    }
    Ok(out)
}

fn decode_flat_array(spec: &ParamSpec, params: &Params) -> Result<Option<Value>, ApiError> {
    if !params.has_array(&spec.name) {
        return Ok(None);
    }
    let item = spec.items.as_ref();
    let values: Vec<Value> = if item.is_some_and(|i| i.kind == "object") {
        let fields = &item.expect("checked").fields;
        let items = params
            .object_array(&spec.name)
            .map_err(|key| ApiError::invalid_parameter(&spec.name, format!("The parameter {key} does not have a valid 1-based index.")))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut object = Map::new();
                for field in fields {
                    let path = format!("{}.{}.{}", spec.name, i + 1, field.name);
                    match item.get(&field.name) {
                        Some(text) => {
                            object.insert(field.name.clone(), scalar(field, &spec.name, &path, text)?);
                        }
                        None if field.limits.required => return Err(ApiError::missing_parameter(&path)),
                        None => {}
                    }
                }
                Ok(Value::Object(object))
            })
            .collect::<Result<_, ApiError>>()?
    } else {
        let items = params
            .scalar_array(&spec.name)
            .map_err(|key| ApiError::invalid_parameter(&spec.name, format!("The parameter {key} does not have a valid 1-based index.")))?;
        items.into_iter().map(Value::String).collect()
    };
    check_items(spec, values.len())?;
    Ok(Some(Value::Array(values)))
}

fn check_items(spec: &ParamSpec, count: usize) -> Result<(), ApiError> {
    match spec.limits.max_items {
        Some(max) if count > max => Err(ApiError::invalid_parameter(
            &spec.name,
            format!("The parameter {} has {count} items; at most {max} are allowed.", spec.name),
        )),
        _ => Ok(()),
    }
}

/// Validates a scalar sent as text; `code_name` names the error code, `path` the message.
fn scalar(spec: &ParamSpec, code_name: &str, path: &str, text: &str) -> Result<Value, ApiError> {
    let invalid = |why: String| ApiError::invalid_parameter(code_name, format!("The parameter {path} {why}."));
    let value = match spec.kind.as_str() {
        "integer" => {
            let n: i64 = text.trim().parse().map_err(|_| invalid(format!("must be an integer, not {text:?}")))?;
            check_range(spec, n).map_err(invalid)?;
            Value::Number(Number::from(n))
        }
        "boolean" => Value::Bool(parse_bool(text).ok_or_else(|| invalid(format!("must be true or false, not {text:?}")))?),
        _ => {
            check_text(spec, text).map_err(invalid)?;
            Value::String(text.to_string())
        }
    };
    Ok(value)
}

fn check_range(spec: &ParamSpec, n: i64) -> Result<(), String> {
    match (spec.limits.minimum, spec.limits.maximum) {
        (Some(min), _) if n < min => Err(range_message(spec)),
        (_, Some(max)) if n > max => Err(range_message(spec)),
        _ => Ok(()),
    }
}

fn range_message(spec: &ParamSpec) -> String {
    match (spec.limits.minimum, spec.limits.maximum) {
        (Some(min), Some(max)) => format!("must be between {min} and {max}"),
        (Some(min), None) => format!("must be at least {min}"),
        (None, Some(max)) => format!("must be at most {max}"),
        (None, None) => unreachable!("only called when a bound exists"),
    }
}

fn check_text(spec: &ParamSpec, text: &str) -> Result<(), String> {
    control_problem(&spec.name, text)?;
    let length = text.chars().count();
    if let Some(min) = spec.limits.min_length.filter(|min| length < *min) {
        return Err(format!("must be at least {min} characters long"));
    }
    if let Some(max) = spec.limits.max_length.filter(|max| length > *max) {
        return Err(format!("must be at most {max} characters long (got {length})"));
    }
    if let Some(allowed) = spec.limits.allowed.as_ref().filter(|a| !a.iter().any(|v| v == text)) {
        return Err(format!("must be one of {}, not {text:?}", allowed.join(", ")));
    }
    Ok(())
}

/// Control characters a text may not hold, by its parameter's name: names, keys and values of
/// tags none at all; descriptions and comments none but tab and line breaks (people write them in
/// text areas); any other text (template bodies, launch parameter values) no NUL, which
/// PostgreSQL cannot store and no text needs.
fn control_problem(name: &str, text: &str) -> Result<(), String> {
    let free_text = name.ends_with("Description") || name == "Comment";
    let label = name.ends_with("Name") || name.ends_with("Key") || (name.ends_with("Value") && name != "ParameterValue");
    let refused = |c: char| match c {
        '\0' => true,
        '\t' | '\n' | '\r' => label,
        c => (label || free_text) && c.is_control(),
    };
    match text.char_indices().find(|(_, c)| refused(*c)) {
        Some((at, c)) => {
            Err(format!("must not contain the control character U+{:04X} (at character {})", c as u32, text[..at].chars().count() + 1))
        }
        None => Ok(()),
    }
}

/// Validates a JSON-encoded parameter against its declared fields.
fn check_json(spec: &ParamSpec, path: &str, value: Value) -> Result<Value, ApiError> {
    let invalid = |why: String| ApiError::invalid_parameter(&spec.name, format!("The parameter {path} {why}."));
    match spec.kind.as_str() {
        "object" => {
            let Value::Object(mut object) = value else { return Err(invalid("must be a JSON object".into())) };
            for field in &spec.fields {
                let field_path = format!("{path}.{}", field.name);
                match object.get(&field.name) {
                    None | Some(Value::Null) if field.limits.required => return Err(ApiError::missing_parameter(&field_path)),
                    None | Some(Value::Null) => {
                        if let Some(default) = &field.limits.default {
                            object.insert(field.name.clone(), default.clone());
                        }
                    }
                    Some(v) => {
                        let field_invalid =
                            |why: String| ApiError::invalid_parameter(&spec.name, format!("The parameter {field_path} {why}."));
                        match (field.kind.as_str(), v) {
                            ("string", Value::String(s)) => check_text(field, s).map_err(field_invalid)?,
                            ("boolean", Value::Bool(_)) => {}
                            ("integer", Value::Number(n)) if n.is_i64() => {
                                check_range(field, n.as_i64().expect("checked")).map_err(field_invalid)?
                            }
                            (kind, _) => return Err(field_invalid(format!("must be of type {kind}"))),
                        }
                    }
                }
            }
            Ok(Value::Object(object))
        }
        "array" if value.is_array() => Ok(value),
        kind => Err(invalid(format!("must be a JSON {kind}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_action(action: &str, pairs: &[(&str, &str)]) -> Result<Map<String, Value>, ApiError> {
        decode(&actions()[action], &Params::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn all_55_actions_and_the_extensions_are_described() {
        let official: SpecFile = serde_json::from_str(SPEC).unwrap();
        assert_eq!(official.actions.len(), OFFICIAL_ACTIONS);
        assert!(actions().contains_key("GetTaskLog"));
    }

    #[test]
    fn extension_parameters_of_official_actions_are_decoded() {
        let base = [("ProductId", "p"), ("ProductVersionId", "v"), ("ProvisionedProductName", "n"), ("StackRegionId", "r")];
        let with = [&base[..], &[("ExpiryTime", "2026-01-31T12:00:00Z")]].concat();
        assert_eq!(decode_action("LaunchProduct", &with).unwrap()["ExpiryTime"], "2026-01-31T12:00:00Z");
        assert!(!decode_action("LaunchProduct", &base).unwrap().contains_key("ExpiryTime"));
        let long = [&base[..], &[("ExpiryTime", "2026-01-31T12:00:00.000000Z")]].concat();
        assert_eq!(decode_action("LaunchProduct", &long).unwrap_err().code(), "InvalidParameter.ExpiryTime");
    }

    #[test]
    fn every_action_and_request_parameter_is_described() {
        for action in actions().values() {
            assert!(!action.summary.trim().is_empty(), "{} has no summary in descriptions.json", action.name);
            for param in &action.request {
                assert!(!param.description.trim().is_empty(), "{}.{} has no description in descriptions.json", action.name, param.name);
                assert!(!param.description.contains('\n'), "{}.{}: a description is one line", action.name, param.name);
            }
        }
        assert_eq!(actions()["GetPortfolio"].request[0].description, "ID of the portfolio.");
    }

    #[test]
    fn required_parameters_are_named_when_missing() {
        let err = decode_action("CreatePortfolio", &[("ProviderName", "me")]).unwrap_err();
        assert_eq!(err.code(), "MissingParameter.PortfolioName");
        let err = decode_action("CreatePortfolio", &[("ProviderName", "me"), ("PortfolioName", "")]).unwrap_err();
        assert_eq!(err.code(), "MissingParameter.PortfolioName");
    }

    #[test]
    fn control_characters_are_refused_in_names_descriptions_and_tags() {
        let bad = |action: &str, pairs: &[(&str, &str)]| decode_action(action, pairs).unwrap_err();
        let e = bad("CreatePortfolio", &[("PortfolioName", "a\u{0}b"), ("ProviderName", "p")]);
        assert_eq!(e.code(), "InvalidParameter.PortfolioName");
        assert!(e.message().contains("U+0000 (at character 2)"), "{}", e.message());
        assert_eq!(bad("CreatePortfolio", &[("PortfolioName", "a\nb"), ("ProviderName", "p")]).code(), "InvalidParameter.PortfolioName");
        assert_eq!(
            bad("CreatePortfolio", &[("PortfolioName", "n"), ("ProviderName", "p\u{1b}[31m")]).code(),
            "InvalidParameter.ProviderName"
        );
        let e = bad("CreatePortfolio", &[("PortfolioName", "n"), ("ProviderName", "p"), ("Description", "x\u{7f}")]);
        assert_eq!(e.code(), "InvalidParameter.Description");
        assert_eq!(bad("CreateTagOption", &[("Key", "k\u{85}"), ("Value", "v")]).code(), "InvalidParameter.Key");
        assert_eq!(bad("CreateTagOption", &[("Key", "k"), ("Value", "v\t")]).code(), "InvalidParameter.Value");
        // Descriptions keep line breaks and tabs; other texts anything but NUL.
        decode_action("CreatePortfolio", &[("PortfolioName", "n"), ("ProviderName", "p"), ("Description", "two\r\nlines\tok")]).unwrap();
        let template = &[("TemplateType", "RosTerraformTemplate"), ("TemplateBody", "{\"a\":\"\u{1}\\n\"}")];
        decode_action("CreateTemplate", template).unwrap();
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        let long = "é".repeat(128);
        assert!(decode_action("CreatePortfolio", &[("ProviderName", "me"), ("PortfolioName", &long)]).is_ok());
        let too_long = "a".repeat(129);
        let err = decode_action("CreatePortfolio", &[("ProviderName", "me"), ("PortfolioName", &too_long)]).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter.PortfolioName");
        assert!(err.message().contains("PortfolioName"));
    }

    #[test]
    fn integers_booleans_enums_and_defaults() {
        let out = decode_action("ListPortfolios", &[("PageSize", "20")]).unwrap();
        assert_eq!(out["PageSize"], 20);
        assert_eq!(out["PageNumber"], 1);
        assert_eq!(out["SortOrder"], "Desc");
        assert_eq!(decode_action("ListPortfolios", &[("PageSize", "101")]).unwrap_err().code(), "InvalidParameter.PageSize");
        assert_eq!(decode_action("ListPortfolios", &[("PageSize", "x")]).unwrap_err().code(), "InvalidParameter.PageSize");
        assert_eq!(decode_action("ListPortfolios", &[("SortOrder", "Up")]).unwrap_err().code(), "InvalidParameter.SortOrder");
        let out = decode_action("UpdateTagOption", &[("TagOptionId", "tag-1"), ("Active", "False")]).unwrap();
        assert_eq!(out["Active"], false);
    }

    #[test]
    fn flat_arrays_are_rebuilt_and_checked() {
        let out = decode_action(
            "LaunchProduct",
            &[
                ("ProductId", "prod-1"),
                ("ProductVersionId", "pv-1"),
                ("ProvisionedProductName", "x"),
                ("StackRegionId", "cn-hangzhou"),
                ("Tags.1.Key", "env"),
                ("Tags.1.Value", "dev"),
                ("Parameters.1.ParameterKey", "k"),
            ],
        )
        .unwrap();
        assert_eq!(out["Tags"][0]["Key"], "env");
        assert_eq!(out["Parameters"][0], serde_json::json!({"ParameterKey": "k"}));
        let filters: Vec<(String, String)> = (1..=6).map(|i| (format!("Filters.{i}.Key"), "PortfolioName".to_string())).collect();
        let pairs: Vec<(&str, &str)> = filters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(decode_action("ListPortfolios", &pairs).unwrap_err().code(), "InvalidParameter.Filters");
        let err = decode_action("ListPortfolios", &[("Filters.1.Key", "Bogus")]).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter.Filters");
        assert!(err.message().contains("Filters.1.Key"));
    }

    #[test]
    fn json_parameters_are_parsed_with_field_defaults() {
        let out = decode_action("ListTagOptions", &[("Filters", r#"{"Key":"env"}"#)]).unwrap();
        assert_eq!(out["Filters"]["Active"], true);
        assert_eq!(decode_action("ListTagOptions", &[("Filters", "{")]).unwrap_err().code(), "InvalidParameter.Filters");
        assert_eq!(decode_action("ListTagOptions", &[("Filters", "[1]")]).unwrap_err().code(), "InvalidParameter.Filters");
        let err = decode_action("ListTagOptions", &[("Filters", r#"{"Active":"yes"}"#)]).unwrap_err();
        assert!(err.message().contains("Filters.Active"));
    }
}
