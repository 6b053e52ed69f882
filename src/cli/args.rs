//! The words after an action name, `--Param value` and `--Param=value`, turned into the wire
//! parameters of `api::spec`: names checked against the action's spec, flattened arrays taken as
//! `--Name.N.Field value` or as one JSON array (`--Name '[{"Field":"v"}]'`, flattened here),
//! JSON-encoded parameters passed through as text. Lower-case options (`--profile`, …) belong
//! to the client and cannot clash with the PascalCase wire names.

use std::collections::BTreeSet;

use serde_json::Value;

use super::config::Connection;
use super::output::{self, Output};
use super::Failure;
use crate::api::action::{Action, Audience};
use crate::api::spec::{self, ActionSpec, ParamSpec};

/// An action call as typed.
pub struct CallArgs {
    /// The action.
    pub action: &'static ActionSpec,
    /// Wire parameters in the order given.
    pub params: Vec<(String, String)>,
    /// `--profile`, `--endpoint` and `--ca-bundle`.
    pub connection: Connection,
    /// `--output`.
    pub output: Output,
    /// `--query`: a JMESPath expression applied to the answer.
    pub query: Option<String>,
    /// `--all` (formerly `--pager`): fetch every page of a paged list.
    pub all: bool,
    /// `--help`: describe the action instead of calling it.
    pub help: bool,
}

/// The client's own options of an action call (completion offers them too).
pub const CLIENT_OPTIONS: [&str; 7] = ["--profile", "--endpoint", "--ca-bundle", "--output", "--query", "--all", "--help"];

/// Parses `Action --Param value …`.
pub fn parse(words: &[String]) -> Result<CallArgs, Failure> {
    let (name, rest) = words.split_first().ok_or_else(|| Failure::Usage("no action given".into()))?;
    let action = lookup(name)?;
    let mut call = CallArgs {
        action,
        params: Vec::new(),
        connection: Connection::default(),
        output: Output::Json,
        query: None,
        all: false,
        help: false,
    };
    let mut words = rest.iter();
    while let Some(word) = words.next() {
        let Some(option) = word.strip_prefix("--") else {
            return Err(Failure::Usage(format!("unexpected argument {word:?}: parameters are given as --Name value")));
        };
        let (key, inline) = option.split_once('=').map_or((option, None), |(k, v)| (k, Some(v.to_string())));
        match key {
            "all" | "pager" => call.all = true,
            "help" => call.help = true,
            _ => {
                let value = match inline {
                    Some(value) => value,
                    None => words.next().cloned().ok_or_else(|| Failure::Usage(format!("--{key} needs a value")))?,
                };
                match key {
                    "profile" => call.connection.profile = Some(value),
                    "endpoint" => call.connection.endpoint = Some(value),
                    "ca-bundle" => call.connection.ca_bundle = Some(value.into()),
                    "output" => call.output = value.parse()?,
                    "query" => call.query = Some(value),
                    _ => parameter(action, key, &value, &mut call.params)?,
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    if let Some((key, _)) = call.params.iter().find(|(key, _)| !seen.insert(key.as_str())) {
        return Err(Failure::Usage(format!("{key} is given twice")));
    }
    if call.all && !action.request.iter().any(|p| p.name == "PageNumber") {
        return Err(Failure::Usage(format!("--all needs a paged list action; {} takes no PageNumber", action.name)));
    }
    if !matches!(call.output, Output::Json) && !action.name.starts_with("List") {
        return Err(Failure::Usage(format!("--output table and cols=… need a List action, not {}", action.name)));
    }
    Ok(call)
}

/// The spec of the action named exactly `name`, or a usage error naming close ones.
fn lookup(name: &str) -> Result<&'static ActionSpec, Failure> {
    if let Some(action) = Action::from_name(name) {
        return Ok(&spec::actions()[action.name()]);
    }
    let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
    let close = close_names(name, &names);
    let hint =
        if close.is_empty() { "`servicecatalog actions` lists them".to_string() } else { format!("did you mean {}?", close.join(", ")) };
    Err(Failure::Usage(format!("unknown action or command {name:?}: {hint}")))
}

/// Adds the wire pairs of `--key value`.
fn parameter(action: &ActionSpec, key: &str, value: &str, out: &mut Vec<(String, String)>) -> Result<(), Failure> {
    let mut path = key.split('.');
    let top = path.next().unwrap_or_default();
    let Some(spec) = action.request.iter().find(|p| p.name == top) else {
        let names: Vec<&str> = action.request.iter().map(|p| p.name.as_str()).collect();
        let close = close_names(top, &names);
        let hint = match (close.is_empty(), names.is_empty()) {
            (_, true) => format!("{} takes no parameters", action.name),
            (false, _) => format!("did you mean --{}?", close.join(", --")),
            (true, _) => format!("it takes --{}", names.join(", --")),
        };
        return Err(Failure::Usage(format!("{} has no parameter --{top}: {hint}", action.name)));
    };
    let flat = spec.kind == "array" && spec.encoding.as_deref() == Some("flat");
    let rest: Vec<&str> = path.collect();
    match (flat, rest.as_slice()) {
        (true, []) => flatten_json(spec, value, out),
        (true, [index]) if spec.item_fields().is_empty() => indexed(spec, index, None, value, out),
        (true, [index, field]) => indexed(spec, index, Some(field), value, out),
        (true, _) => Err(Failure::Usage(format!("--{key}: {} items are given as {}", spec.name, item_form(spec)))),
        (false, []) => {
            out.push((key.to_string(), value.to_string()));
            Ok(())
        }
        (false, _) => Err(Failure::Usage(format!("--{key}: {top} is not a list; give it as --{top} value"))),
    }
}

/// `Name.N` or `Name.N.Field`, as the usage text shows it.
fn item_form(spec: &ParamSpec) -> String {
    match spec.item_fields() {
        [] => format!("--{}.N value", spec.name),
        fields => format!("--{}.N.{{{}}} value", spec.name, fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(",")),
    }
}

fn indexed(spec: &ParamSpec, index: &str, field: Option<&str>, value: &str, out: &mut Vec<(String, String)>) -> Result<(), Failure> {
    if !index.parse::<u32>().is_ok_and(|n| n >= 1) {
        return Err(Failure::Usage(format!("--{}.{index}: the index must be a number from 1", spec.name)));
    }
    let key = match field {
        None => format!("{}.{index}", spec.name),
        Some(field) => {
            check_field(spec, field)?;
            format!("{}.{index}.{field}", spec.name)
        }
    };
    out.push((key, value.to_string()));
    Ok(())
}

fn check_field(spec: &ParamSpec, field: &str) -> Result<(), Failure> {
    let fields: Vec<&str> = spec.item_fields().iter().map(|f| f.name.as_str()).collect();
    if fields.contains(&field) {
        return Ok(());
    }
    Err(Failure::Usage(format!("{} items have no field {field}: they have {}", spec.name, fields.join(", "))))
}

/// The JSON form of a flattened array: `[{"Key":"k","Value":"v"}]` → `Name.1.Key=k&Name.1.Value=v`.
fn flatten_json(spec: &ParamSpec, value: &str, out: &mut Vec<(String, String)>) -> Result<(), Failure> {
    let usage = || Failure::Usage(format!("--{} takes a JSON array, or items as {}", spec.name, item_form(spec)));
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(value) else { return Err(usage()) };
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("{}.{}", spec.name, i + 1);
        match item {
            Value::Object(fields) if !spec.item_fields().is_empty() => {
                for (field, v) in fields {
                    check_field(spec, field)?;
                    if let Some(text) = scalar_text(v).ok_or_else(usage)? {
                        out.push((format!("{prefix}.{field}"), text));
                    }
                }
            }
            scalar if spec.item_fields().is_empty() => {
                if let Some(text) = scalar_text(scalar).ok_or_else(usage)? {
                    out.push((prefix, text));
                }
            }
            _ => return Err(usage()),
        }
    }
    Ok(())
}

/// The wire text of a JSON scalar (`None` for null, which is left out); `Err` for nested values.
fn scalar_text(value: &Value) -> Option<Option<String>> {
    match value {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        Value::Number(n) => Some(Some(n.to_string())),
        Value::Bool(b) => Some(Some(b.to_string())),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Up to five of `names` close to `typed`: same letters ignoring case, a common prefix or
/// substring, or a small edit distance.
pub fn close_names<'a>(typed: &str, names: &[&'a str]) -> Vec<&'a str> {
    let lower = typed.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .filter_map(|name| {
            let candidate = name.to_ascii_lowercase();
            let score = if candidate == lower {
                0
            } else if lower.len() >= 3 && (candidate.contains(&lower) || lower.contains(&candidate)) {
                1
            } else {
                let distance = edit_distance(&lower, &candidate);
                (distance <= 3.max(lower.len() / 4)).then_some(distance + 1)?
            };
            Some((score, *name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, name)| name).collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// `servicecatalog actions`: every action with its audience and what it does.
pub fn action_list() -> String {
    let rows: Vec<Vec<String>> = Action::ALL
        .iter()
        .map(|a| {
            let audience = match a.audience() {
                Audience::Admin => "administrators",
                Audience::EndUser => "administrators, end users",
            };
            vec![a.name().to_string(), audience.to_string(), spec::actions()[a.name()].summary.clone()]
        })
        .collect();
    let table = output::table(&["Action".to_string(), "Callers".to_string(), "Summary".to_string()], &rows);
    format!("{table}\nCall one as `servicecatalog <Action> --Param value …`; `servicecatalog <Action> --help` lists its parameters.")
}

/// `servicecatalog <Action> --help`: what the action does, and its parameters with their forms
/// and descriptions.
pub fn action_help(action: &ActionSpec) -> String {
    let mut text =
        format!("servicecatalog {} [--Param value …] [--profile P] [--endpoint E] [--ca-bundle PATH] [--query EXPR]", action.name);
    if action.name.starts_with("List") {
        text.push_str(" [--output table|json|cols=A,B]");
    }
    if action.request.iter().any(|p| p.name == "PageNumber") {
        text.push_str(" [--all]");
    }
    text.push_str(&format!("\n\n{} (HTTP {}): {}\n", action.name, action.http_method, action.summary));
    if action.request.is_empty() {
        text.push_str("\nNo parameters.\n");
    }
    for param in &action.request {
        let required = if param.limits.required { ", required" } else { "" };
        let form = match (param.kind.as_str(), param.encoding.as_deref()) {
            ("array", Some("flat")) => format!("list: {} or a JSON array", item_form(param)),
            (kind, Some("json")) => format!("JSON {kind}, passed as text"),
            (kind, _) => kind.to_string(),
        };
        let allowed = param.limits.allowed.as_ref().map(|a| format!(" ({})", a.join("|"))).unwrap_or_default();
        let default = param.limits.default.as_ref().map(|d| format!(", default {}", output::cell(Some(d)))).unwrap_or_default();
        text.push_str(&format!("  --{:<28} {form}{required}{default}{allowed}\n      {}\n", param.name, param.description));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn params(items: &[&str]) -> Vec<(String, String)> {
        match parse(&words(items)) {
            Ok(call) => call.params,
            Err(e) => panic!("{e}"),
        }
    }

    fn usage(items: &[&str]) -> String {
        match parse(&words(items)) {
            Err(Failure::Usage(message)) => message,
            Err(other) => panic!("not a usage error: {other}"),
            Ok(_) => panic!("{items:?} parsed"),
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn scalars_take_the_next_word_or_an_equals_sign() {
        assert_eq!(params(&["GetPortfolio", "--PortfolioId", "port-1"]), pairs(&[("PortfolioId", "port-1")]));
        assert_eq!(params(&["GetTaskLog", "--TaskId=t=1", "--AfterSeq", "-1"]), pairs(&[("TaskId", "t=1"), ("AfterSeq", "-1")]));
    }

    #[test]
    fn flattened_arrays_are_taken_as_typed_or_from_json() {
        let typed =
            params(&["LaunchProduct", "--Parameters.1.ParameterKey", "k", "--Parameters.1.ParameterValue", "v", "--Tags.1.Key", "env"]);
        assert_eq!(typed, pairs(&[("Parameters.1.ParameterKey", "k"), ("Parameters.1.ParameterValue", "v"), ("Tags.1.Key", "env")]));
        let json = params(&[
            "LaunchProduct",
            "--Parameters",
            r#"[{"ParameterKey":"k","ParameterValue":"v"},{"ParameterKey":"n","ParameterValue":3}]"#,
        ]);
        assert_eq!(
            json,
            pairs(&[
                ("Parameters.1.ParameterKey", "k"),
                ("Parameters.1.ParameterValue", "v"),
                ("Parameters.2.ParameterKey", "n"),
                ("Parameters.2.ParameterValue", "3")
            ])
        );
        assert!(usage(&["LaunchProduct", "--Parameters", "k=v"]).contains("JSON array"));
        assert!(usage(&["LaunchProduct", "--Parameters", r#"[{"Bogus":"x"}]"#]).contains("no field Bogus"));
        assert!(usage(&["LaunchProduct", "--Parameters.0.ParameterKey", "k"]).contains("index"));
        assert!(usage(&["LaunchProduct", "--Parameters.1.Key", "k"]).contains("ParameterKey"));
        assert!(usage(&["LaunchProduct", "--Tags.1.Key", "a", "--Tags", r#"[{"Key":"b"}]"#]).contains("twice"));
    }

    #[test]
    fn json_encoded_parameters_pass_through_as_text() {
        let filters = r#"{"Key":"env","Active":true}"#;
        assert_eq!(params(&["ListTagOptions", "--Filters", filters]), pairs(&[("Filters", filters)]));
        assert!(usage(&["ListTagOptions", "--Filters.1.Key", "env"]).contains("not a list"));
    }

    #[test]
    fn client_options_are_not_parameters() {
        let call =
            parse(&words(&["ListPortfolios", "--profile", "p", "--endpoint=h:1", "--output", "cols=PortfolioId", "--all", "--query", "A"]))
                .unwrap();
        assert!(call.params.is_empty() && call.all && call.query.as_deref() == Some("A"));
        assert_eq!((call.connection.profile.as_deref(), call.connection.endpoint.as_deref()), (Some("p"), Some("h:1")));
        assert!(matches!(call.output, Output::Columns(ref c) if c == &["PortfolioId"]));
        assert!(
            parse(&words(&["ListPortfolios", "--pager", "--ca-bundle", "ca.pem"])).is_ok_and(|c| c.all && c.connection.ca_bundle.is_some())
        );
        assert!(usage(&["GetPortfolio", "--all"]).contains("paged"));
        assert!(usage(&["GetPortfolio", "--output", "table"]).contains("List action"));
    }

    #[test]
    fn unknown_names_get_close_suggestions() {
        assert!(usage(&["GetPortfolo"]).contains("GetPortfolio"));
        assert!(usage(&["getportfolio"]).contains("GetPortfolio"));
        assert!(usage(&["Frobnicate"]).contains("servicecatalog actions"));
        assert!(usage(&["GetPortfolio", "--PortfolioID", "x"]).contains("--PortfolioId"));
        assert!(usage(&["GetPortfolio", "PortfolioId"]).contains("--Name value"));
        assert!(usage(&["GetPortfolio", "--PortfolioId"]).contains("needs a value"));
    }

    #[test]
    fn help_lists_every_parameter_with_its_form() {
        let help = action_help(&spec::actions()["LaunchProduct"]);
        assert!(help.contains("--Parameters") && help.contains("--Parameters.N.{ParameterKey,ParameterValue}"), "{help}");
        assert!(action_help(&spec::actions()["CreateProduct"]).contains("JSON object, passed as text"));
        assert!(action_list().contains("ListRegions"));
    }

    #[test]
    fn help_and_the_action_list_describe_actions_and_parameters() {
        let help = action_help(&spec::actions()["LaunchProduct"]);
        assert!(help.contains("LaunchProduct (HTTP POST): Launches a product"), "{help}");
        assert!(help.contains("--StackRegionId") && help.contains("\n      ID of the region of the ROS"), "{help}");
        assert!(help.contains("at most 20 (N up to 20)"), "limits from the vendor's metadata: {help}");
        let list = action_list();
        assert!(list.contains("Summary") && list.contains("Extension: lists the constraints of a portfolio"), "{list}");
    }
}
