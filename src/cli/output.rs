//! How answers are printed: pretty JSON as the server sent it, or the list of a `List*` answer as
//! aligned columns (`--output table`, `--output cols=A,B`), after an optional JMESPath `--query`;
//! a warning when a table shows one page of several; and `--all`, which fetches every page of a
//! paged list and merges them into one answer.

use std::str::FromStr;

use serde_json::{Map, Value};

use super::{Client, Failure};
use crate::api::spec::ActionSpec;

/// `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The answer as pretty JSON.
    Json,
    /// The list's objects as columns, one per scalar field, ids and names first.
    Table,
    /// The list's objects as the named columns.
    Columns(Vec<String>),
}

impl FromStr for Output {
    type Err = Failure;

    fn from_str(text: &str) -> Result<Self, Failure> {
        match text {
            "json" => Ok(Output::Json),
            "table" => Ok(Output::Table),
            _ => match text.strip_prefix("cols=") {
                Some(cols) if !cols.trim().is_empty() => {
                    Ok(Output::Columns(cols.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()))
                }
                _ => Err(Failure::Usage(format!("--output takes json, table or cols=A,B, not {text:?}"))),
            },
        }
    }
}

/// Fields a table folds into one `Flags` column: the badge shown when the field is `true`.
const FLAGS: &[(&str, &str)] = &[("ProductVersionDeprecated", "Deprecated"), ("DependencyStale", "Stale")];

/// Name of the column holding the badges of [`FLAGS`].
const FLAGS_COLUMN: &str = "Flags";

/// The answer as text in the chosen form.
pub fn render(answer: &Value, output: &Output) -> Result<String, Failure> {
    let columns = match output {
        Output::Json => return Ok(serde_json::to_string_pretty(answer).expect("JSON values serialise")),
        Output::Table => None,
        Output::Columns(columns) => Some(columns.clone()),
    };
    let items = match answer {
        Value::Array(items) => items,
        _ => list_field(answer).ok_or_else(|| Failure::Usage("the answer has no list to show as a table; use --output json".into()))?.1,
    };
    let objects: Vec<&Map<String, Value>> = items.iter().filter_map(Value::as_object).collect();
    if let Some(columns) = &columns {
        let mut available: Vec<&String> = objects.iter().flat_map(|object| object.keys()).collect();
        available.sort();
        available.dedup();
        if let Some(unknown) = columns.iter().find(|c| !objects.is_empty() && !available.contains(c)) {
            let names: Vec<&str> = available.iter().map(|c| c.as_str()).collect();
            return Err(Failure::Usage(format!("the list has no column {unknown:?}; its columns are {}", names.join(", "))));
        }
    }
    let columns = columns.unwrap_or_else(|| {
        let mut names: Vec<String> = Vec::new();
        for object in &objects {
            for (key, value) in *object {
                if !value.is_array() && !value.is_object() && !names.contains(key) && !FLAGS.iter().any(|(flag, _)| flag == key) {
                    names.push(key.clone());
                }
            }
        }
        if objects.iter().any(|object| !badges(object).is_empty()) {
            names.push(FLAGS_COLUMN.into());
        }
        // Identifiers and names first: they are what a reader scans a list for.
        names.sort_by_key(|n| {
            if n.ends_with("Id") {
                0
            } else if n.ends_with("Name") {
                1
            } else {
                2
            }
        });
        names
    });
    let value = |object: &Map<String, Value>, column: &str| match object.get(column) {
        None if column == FLAGS_COLUMN => badges(object),
        given => cell(given),
    };
    let rows: Vec<Vec<String>> = objects.iter().map(|object| columns.iter().map(|c| value(object, c)).collect()).collect();
    Ok(table(&columns, &rows))
}

/// The badges of the [`FLAGS`] an item has `true`, separated by commas.
fn badges(object: &Map<String, Value>) -> String {
    let on: Vec<&str> = FLAGS.iter().filter(|(flag, _)| object.get(*flag) == Some(&Value::Bool(true))).map(|(_, badge)| *badge).collect();
    on.join(",")
}

/// `--query`: the JMESPath expression's result on the answer.
pub fn query(answer: &Value, expression: &str) -> Result<Value, Failure> {
    let invalid = |e: jmespath::JmespathError| Failure::Usage(format!("--query {expression:?}: {e}"));
    let result = jmespath::compile(expression).map_err(invalid)?.search(answer).map_err(invalid)?;
    Ok(serde_json::to_value(&*result).expect("JMESPath results serialise"))
}

/// A warning for a table that shows one page of a longer list: how many rows there are and how
/// to get them; `None` when the list is whole.
pub fn cut_warning(answer: &Value) -> Option<String> {
    let shown = list_field(answer)?.1.len();
    let total = answer.get("TotalCount")?.as_u64()?;
    let page = answer.get("PageNumber").and_then(Value::as_u64).unwrap_or(1);
    (total > shown as u64)
        .then(|| format!("Warning: showing {shown} of {total} rows (page {page}): --all fetches every page, --PageNumber N another one"))
}

/// The first array field of an answer: the list of a `List*` action.
fn list_field(answer: &Value) -> Option<(&String, &Vec<Value>)> {
    answer.as_object()?.iter().find_map(|(key, value)| value.as_array().map(|items| (key, items)))
}

/// The text of a table cell: strings bare, other values as JSON, nothing for null.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Rows under a header, each column as wide as its widest cell, separated by two spaces.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    std::iter::once(line(header)).chain(rows.iter().map(|row| line(row))).collect::<Vec<_>>().join("\n")
}

/// Calls a paged list action page after page (the largest page the spec allows unless
/// `PageSize` is given) and returns the first answer with the list holding every item and
/// without `PageNumber`/`PageSize`.
pub async fn fetch_all_pages(client: &Client, action: &ActionSpec, params: &[(String, String)]) -> Result<Value, Failure> {
    let size_spec = action.request.iter().find(|p| p.name == "PageSize");
    let size = match params.iter().find(|(k, _)| k == "PageSize") {
        Some((_, v)) => v.parse::<usize>().map_err(|_| Failure::Usage(format!("--PageSize must be a number, not {v:?}")))?,
        None => size_spec.and_then(|p| p.maximum()).or_else(|| size_spec?.limits.default.as_ref()?.as_i64()).unwrap_or(10) as usize,
    }
    .max(1);
    let base: Vec<(String, String)> = params.iter().filter(|(k, _)| k != "PageNumber" && k != "PageSize").cloned().collect();
    let mut merged: Option<(Value, String)> = None;
    let mut items: Vec<Value> = Vec::new();
    for page in 1.. {
        let mut page_params = base.clone();
        page_params.push(("PageNumber".into(), page.to_string()));
        page_params.push(("PageSize".into(), size.to_string()));
        let answer = client.call(action, &page_params).await?;
        let Some((field, page_items)) = list_field(&answer) else { return Ok(answer) };
        let (field, count) = (field.clone(), page_items.len());
        items.extend(page_items.iter().cloned());
        let total = answer.get("TotalCount").and_then(Value::as_u64).map(|t| t as usize);
        merged.get_or_insert((answer, field));
        if count < size || count == 0 || total.is_some_and(|t| items.len() >= t) {
            break;
        }
    }
    let (mut answer, field) = merged.expect("the loop runs at least once");
    if let Some(object) = answer.as_object_mut() {
        object.insert(field, Value::Array(items));
        object.remove("PageNumber");
        object.remove("PageSize");
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn output_forms_parse() {
        assert_eq!("json".parse::<Output>().unwrap(), Output::Json);
        assert_eq!("cols=A, B".parse::<Output>().unwrap(), Output::Columns(vec!["A".into(), "B".into()]));
        assert!("yaml".parse::<Output>().is_err() && "cols=".parse::<Output>().is_err());
    }

    #[test]
    fn a_field_only_some_items_have_is_a_column() {
        let answer = json!({"ProvisionedProductDetails": [
            {"ProvisionedProductId": "pp-1", "Status": "Available"},
            {"ProvisionedProductId": "pp-2", "Status": "Available", "ExpiryTime": "2026-01-31T12:00:00Z"}
        ]});
        let text = render(&answer, &Output::Table).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("ExpiryTime"), "{text}");
        assert!(lines.iter().any(|l| l.contains("pp-2") && l.contains("2026-01-31T12:00:00Z")), "{text}");
    }

    #[test]
    fn flags_show_as_badges_in_one_column() {
        let answer = json!({"ProvisionedProductDetails": [
            {"ProvisionedProductId": "pp-1", "ProductVersionDeprecated": false, "DependencyStale": false},
            {"ProvisionedProductId": "pp-2", "ProductVersionDeprecated": true, "DependencyStale": true},
            {"ProvisionedProductId": "pp-3", "ProductVersionDeprecated": true, "DependencyStale": false}
        ]});
        let text = render(&answer, &Output::Table).unwrap();
        assert_eq!(text, "ProvisionedProductId  Flags\npp-1\npp-2                  Deprecated,Stale\npp-3                  Deprecated");
        let calm = json!({"Items": [{"Id": "pp-1", "ProductVersionDeprecated": false}]});
        assert_eq!(render(&calm, &Output::Table).unwrap(), "Id\npp-1");
        // Named columns show the fields as they are.
        let named = render(&answer, &Output::Columns(vec!["ProvisionedProductId".into(), "DependencyStale".into()])).unwrap();
        assert!(named.ends_with("pp-3                  false"), "{named}");
    }

    #[test]
    fn tables_align_the_lists_scalar_fields() {
        let answer = json!({
            "PageNumber": 1,
            "PortfolioDetails": [
                {"PortfolioId": "port-1", "PortfolioName": "A long name", "Tags": [1]},
                {"PortfolioId": "port-22", "PortfolioName": "B", "Description": null},
            ],
            "RequestId": "r",
        });
        let text = render(&answer, &Output::Table).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["PortfolioId", "PortfolioName", "Description"]);
        assert_eq!(lines[1], "port-1       A long name");
        assert_eq!(lines[2], "port-22      B");
        let text = render(&answer, &Output::Columns(vec!["PortfolioName".into(), "Tags".into()])).unwrap();
        assert_eq!(text, "PortfolioName  Tags\nA long name    [1]\nB");
        assert!(matches!(render(&json!({"RequestId": "r"}), &Output::Table), Err(Failure::Usage(_))));
        assert!(render(&answer, &Output::Json).unwrap().contains("\n  \"PageNumber\": 1,"));
        match render(&answer, &Output::Columns(vec!["Foo".into()])) {
            Err(Failure::Usage(m)) => {
                assert_eq!(m, r#"the list has no column "Foo"; its columns are Description, PortfolioId, PortfolioName, Tags"#)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn queries_select_from_the_answer_and_tables_show_a_selected_list() {
        let answer = json!({"Items": [{"Id": "a", "N": 1}, {"Id": "b", "N": 2}], "TotalCount": 5, "PageNumber": 1});
        assert_eq!(query(&answer, "Items[?N > `1`].Id").unwrap(), json!(["b"]));
        assert_eq!(render(&query(&answer, "Items[].{I: Id}").unwrap(), &Output::Table).unwrap(), "I\na\nb");
        assert!(matches!(query(&answer, "Items[?"), Err(Failure::Usage(m)) if m.starts_with("--query")));
        assert_eq!(
            cut_warning(&answer).unwrap(),
            "Warning: showing 2 of 5 rows (page 1): --all fetches every page, --PageNumber N another one"
        );
        assert_eq!(cut_warning(&json!({"Items": [1], "TotalCount": 1})), None);
    }
}
