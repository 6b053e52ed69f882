//! The flat parameter map of an RPC request. Query and form-body parameters are merged (the SDK
//! puts an action's parameters in one or the other; other SDKs may differ), and arrays of objects
//! are rebuilt from their flattened `Name.N.Field` keys.

use std::collections::BTreeMap;

/// Decoded request parameters, name → value, in byte order of the names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

/// The parameters of an RPC request in their two places, kept apart because the V3 signature
/// covers only the query while V1 covers both.
#[derive(Debug, Default, Clone)]
pub struct RequestParams {
    /// Decoded query-string pairs in wire order (duplicates kept; the signature needs them).
    pub query: Vec<(String, String)>,
    /// Decoded form-body pairs in wire order.
    pub body: Vec<(String, String)>,
}

impl RequestParams {
    /// Decodes the raw query string and, when `form_body` is given, the
    /// `application/x-www-form-urlencoded` body. A name or value that is not UTF-8 once decoded
    /// is refused (its raw text is the error) rather than mangled into replacement characters.
    pub fn decode(query: Option<&str>, form_body: Option<&[u8]>) -> Result<Self, String> {
        Ok(RequestParams {
            query: query.map(|q| decode_form(q.as_bytes())).transpose()?.unwrap_or_default(),
            body: form_body.map(decode_form).transpose()?.unwrap_or_default(),
        })
    }

    /// Looks a parameter up in the query, then in the body.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.query.iter().chain(self.body.iter()).find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Merges both places into one map; a body value wins over a query value of the same name.
    pub fn merged(&self) -> Params {
        Params(self.query.iter().chain(self.body.iter()).cloned().collect())
    }
}

impl Params {
    /// Builds a parameter map from pairs (used by tests and the command line).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Params(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// The value of a scalar parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Rebuilds an array of objects sent as `Name.N.Field=value` (1-based, possibly sparse indexes),
    /// in index order. Entries whose index is not a positive integer are reported as `Err(key)`.
    pub fn object_array(&self, name: &str) -> Result<Vec<BTreeMap<String, String>>, String> {
        let prefix = format!("{name}.");
        let mut items: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for (key, value) in self.0.range(prefix.clone()..) {
            let Some(rest) = key.strip_prefix(&prefix) else { break };
            let (index, field) = rest.split_once('.').ok_or_else(|| key.clone())?;
            let index: u32 = index.parse().ok().filter(|i| *i > 0).ok_or_else(|| key.clone())?;
            items.entry(index).or_default().insert(field.to_string(), value.clone());
        }
        Ok(items.into_values().collect())
    }

    /// Rebuilds a plain array sent as `Name.N=value`, in index order.
    pub fn scalar_array(&self, name: &str) -> Result<Vec<String>, String> {
        let prefix = format!("{name}.");
        let mut items = BTreeMap::new();
        for (key, value) in self.0.range(prefix.clone()..) {
            let Some(index) = key.strip_prefix(&prefix) else { break };
            let index: u32 = index.parse().ok().filter(|i| *i > 0).ok_or_else(|| key.clone())?;
            items.insert(index, value.clone());
        }
        Ok(items.into_values().collect())
    }

    /// Every parameter, in byte order of the names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether any key belongs to the array `name` (`name.…`).
    pub fn has_array(&self, name: &str) -> bool {
        let prefix = format!("{name}.");
        self.0.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix))
    }
}

/// `application/x-www-form-urlencoded` pairs, strictly UTF-8.
fn decode_form(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = |raw: &[u8]| -> Result<String, String> {
        let plus_as_space: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
        let decoded: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
        String::from_utf8(decoded).map_err(|_| String::from_utf8_lossy(raw).into_owned())
    };
    bytes
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = parts.next().unwrap_or_default();
            let value = parts.next().unwrap_or_default();
            Ok((text(name)?, text(value)?))
        })
        .collect()
}

/// Parses a boolean the way the SDKs send it: Python `True`/`False`, others `true`/`false`.
pub fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_query_and_body_and_decodes_plus_as_space() {
        let raw = RequestParams::decode(
            Some("PageSize=5&Filters.1.Key=ProvisionedProductName&Filters.1.Value=inst+1"),
            Some(b"Parameters.2.ParameterValue=a+b%26c%3Dd%2F%C3%A9~%2A&Parameters.2.ParameterKey=Note&Parameters.1.ParameterKey=K"),
        )
        .unwrap();
        let params = raw.merged();
        assert_eq!(params.get("PageSize"), Some("5"));
        let filters = params.object_array("Filters").unwrap();
        assert_eq!(filters.len(), 1);
        assert_eq!(filters[0]["Value"], "inst 1");
        let parameters = params.object_array("Parameters").unwrap();
        assert_eq!(parameters.len(), 2);
        assert_eq!(parameters[0]["ParameterKey"], "K");
        assert!(!parameters[0].contains_key("ParameterValue"));
        assert_eq!(parameters[1]["ParameterValue"], "a b&c=d/é~*");
    }

    #[test]
    fn invalid_utf8_is_refused_and_empty_values_kept() {
        assert_eq!(RequestParams::decode(None, Some(b"A=%FF%FEabc&B=1")).unwrap_err(), "%FF%FEabc");
        let p = RequestParams::decode(Some("A=&B&&C=%2B+"), None).unwrap();
        assert_eq!(p.query, [("A".into(), "".into()), ("B".into(), "".into()), ("C".into(), "+ ".into())]);
    }

    #[test]
    fn sparse_indexes_keep_their_order_and_bad_indexes_are_reported() {
        let params = Params::from_pairs([("Tags.10.Key", "b"), ("Tags.2.Key", "a")]);
        let tags = params.object_array("Tags").unwrap();
        assert_eq!(tags.iter().map(|t| t["Key"].as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let bad = Params::from_pairs([("Tags.x.Key", "b")]);
        assert_eq!(bad.object_array("Tags"), Err("Tags.x.Key".to_string()));
        let zero = Params::from_pairs([("Tags.0.Key", "b")]);
        assert!(zero.object_array("Tags").is_err());
    }

    #[test]
    fn other_arrays_with_a_shared_prefix_are_not_mixed_in() {
        let params = Params::from_pairs([("Tag.1.Key", "x"), ("Tags.1.Key", "y"), ("TagsX", "z")]);
        assert_eq!(params.object_array("Tags").unwrap().len(), 1);
        assert!(params.has_array("Tag"));
        assert!(!params.has_array("Filters"));
    }

    #[test]
    fn booleans_are_case_insensitive() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
