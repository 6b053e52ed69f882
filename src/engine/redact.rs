//! Secrets out of Terraform's text: a [`Redactor`] is built from the secrets a task or a plan's
//! preview knows (values of the template's sensitive variables, the launch role's variables,
//! sensitive outputs of the state) and replaces each of them by [`MASK`] in every text Terraform
//! or a provider prints before it is logged, stored or answered.
//!
//! A secret is looked for as written and as Terraform and Go quote it: JSON-escaped (the
//! variables file Terraform quotes in its errors), Go's JSON (`<`, `>`, `&` as `\u003c`…) and
//! HCL-escaped (`\"`, `\\`, `\n`, `$${`, `%%{`). Terraform prints line by line and wraps long
//! messages at spaces, so a secret holding whitespace is also looked for word by word: each of
//! its words of at least [`MIN_SUBSTRING`] characters is masked on its own wherever it stands.
//! A secret (or an escaped form) shorter than [`MIN_SUBSTRING`] characters is masked only where it
//! stands alone (no letter, digit or `_` right before or after it): masking every `7` of a log
//! would leave nothing readable, and such a short value is no secret to anyone who tries.

use std::borrow::Cow;
use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

/// What a secret value is shown as, wherever it would appear.
pub const MASK: &str = "******";

/// Secrets (and escaped forms, and words of secrets) at least this many characters long are
/// masked wherever they occur; shorter ones only where they stand alone.
pub const MIN_SUBSTRING: usize = 4;

/// Replaces known secrets by [`MASK`].
#[derive(Debug, Default)]
pub struct Redactor {
    /// The secrets it was built from, to extend it.
    secrets: BTreeSet<String>,
    /// Every pattern of [`MIN_SUBSTRING`] characters or more, longest match first.
    long: Option<AhoCorasick>,
    /// Shorter patterns, masked where they stand alone.
    short: Vec<String>,
}

impl Redactor {
    /// A redactor of these secret values (empty ones are ignored).
    pub fn new<S: Into<String>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let secrets: BTreeSet<String> = secrets.into_iter().map(Into::into).filter(|s: &String| !s.is_empty()).collect();
        let mut patterns = BTreeSet::new();
        for secret in &secrets {
            patterns.extend(forms(secret));
            if secret.contains(char::is_whitespace) {
                let words = secret.split(char::is_whitespace).filter(|w| w.chars().count() >= MIN_SUBSTRING);
                patterns.extend(words.flat_map(forms));
            }
        }
        let (long, short): (Vec<String>, Vec<String>) = patterns.into_iter().partition(|p| p.chars().count() >= MIN_SUBSTRING);
        let long = (!long.is_empty())
            .then(|| AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&long).expect("literal patterns always build"));
        Redactor { secrets, long, short }
    }

    /// This redactor with more secrets; `None` when they are all known already.
    pub fn extended<S: Into<String>>(&self, more: impl IntoIterator<Item = S>) -> Option<Self> {
        let more: Vec<String> = more.into_iter().map(Into::into).filter(|s| !s.is_empty() && !self.secrets.contains(s)).collect();
        (!more.is_empty()).then(|| Redactor::new(self.secrets.iter().cloned().chain(more)))
    }

    /// Whether it knows no secret (and changes nothing).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret masked.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        if let Some(long) = &self.long {
            if long.is_match(text.as_ref()) {
                let mut masked = String::with_capacity(text.len());
                long.replace_all_with(&text, &mut masked, |_, _, out| {
                    out.push_str(MASK);
                    true
                });
                text = Cow::Owned(masked);
            }
        }
        for pattern in &self.short {
            if text.contains(pattern.as_str()) {
                text = Cow::Owned(mask_standalone(&text, pattern));
            }
        }
        text
    }

    /// Masks secrets in every string value of a JSON document (its keys are our field names).
    pub fn redact_json(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(masked) = self.redact(s) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// A secret as written and as Terraform, Go and our variables file quote it.
fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).expect("a string serialises");
    let json = json[1..json.len() - 1].to_string();
    let go_json = json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    let mut hcl = String::with_capacity(secret.len());
    let mut chars = secret.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => hcl.push_str("\\\\"),
            '"' => hcl.push_str("\\\""),
            '\n' => hcl.push_str("\\n"),
            '\r' => hcl.push_str("\\r"),
            '\t' => hcl.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                hcl.push(c);
                hcl.push(c);
            }
            c => hcl.push(c),
        }
    }
    vec![secret.to_string(), json, go_json, hcl]
}

/// `text` with each occurrence of `pattern` that no letter, digit or `_` touches masked.
fn mask_standalone(text: &str, pattern: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (at, _) in text.match_indices(pattern) {
        if at < rest {
            continue;
        }
        let end = at + pattern.len();
        if !word(text[..at].chars().next_back()) && !word(text[end..].chars().next()) {
            out.push_str(&text[rest..at]);
            out.push_str(MASK);
            rest = end;
        }
    }
    out.push_str(&text[rest..]);
    out
}

/// The secret values a JSON value holds: its strings and numbers (a structured sensitive value
/// is printed by parts).
pub fn secret_leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| secret_leaves(v, out)),
        Value::Object(map) => map.values().for_each(|v| secret_leaves(v, out)),
        Value::Null | Value::Bool(_) => {}
    }
}

/// The values of the sensitive outputs of a Terraform state (JSON text).
pub fn sensitive_outputs(state: &str) -> Vec<String> {
    let parsed: Value = serde_json::from_str(state).unwrap_or_default();
    let mut out = Vec::new();
    for output in parsed["outputs"].as_object().into_iter().flat_map(|o| o.values()) {
        if output["sensitive"].as_bool() == Some(true) {
            secret_leaves(&output["value"], &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secret_is_masked_raw_and_in_each_quoting() {
        let secret = "p\"w\\1\n${x}<&>";
        let r = Redactor::new([secret]);
        for (text, expected) in [
            (format!("raw {secret} end"), format!("raw {MASK} end")),
            (r#"1: {"pw":"p\"w\\1\n${x}<&>"}"#.to_string(), format!(r#"1: {{"pw":"{MASK}"}}"#)),
            (r#"var.pw is "p\"w\\1\n$${x}<&>""#.to_string(), format!(r#"var.pw is "{MASK}""#)),
            (r#""after": "p\"w\\1\n${x}\u003c\u0026\u003e""#.to_string(), format!(r#""after": "{MASK}""#)),
        ] {
            assert_eq!(r.redact(&text), expected);
        }
    }

    #[test]
    fn a_secret_spread_over_lines_or_wrapped_is_masked_word_by_word() {
        let r = Redactor::new(["first-line\nsecond line-of-it"]);
        let lines = ["bad value first-line\n", "second line-of-it\n"];
        let masked: Vec<String> = lines.iter().map(|l| r.redact(l).into_owned()).collect();
        assert_eq!(masked, [format!("bad value {MASK}\n"), format!("{MASK} {MASK}\n")]);
        // Words shorter than MIN_SUBSTRING are not masked on their own.
        assert_eq!(Redactor::new(["ab cdefg"]).redact("ab cdefg / ab / cdefg"), format!("{MASK} / ab / {MASK}"));
    }

    #[test]
    fn short_secrets_are_masked_only_where_they_stand_alone() {
        let r = Redactor::new(["42"]);
        assert_eq!(r.redact("n = 42, count 1420, x42, 42_1, \"42\""), format!("n = {MASK}, count 1420, x42, 42_1, \"{MASK}\""));
        assert_eq!(Redactor::new(["7"]).redact("Apply complete! Resources: 7 added"), format!("Apply complete! Resources: {MASK} added"));
        assert_eq!(Redactor::new([""]).redact("nothing"), "nothing");
    }

    #[test]
    fn longer_secrets_are_masked_anywhere_and_the_longest_wins() {
        let r = Redactor::new(["hunter2", "hunter2hunter2"]);
        assert_eq!(r.redact("xhunter2hunter2y hunter2"), format!("x{MASK}y {MASK}"));
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_documents_are_masked_in_every_string_value() {
        let r = Redactor::new(["s3cret-value"]);
        let mut doc = json!([{"OutputKey": "k", "OutputValue": "x s3cret-value y", "n": [1, null, "s3cret-value"]}]);
        r.redact_json(&mut doc);
        assert_eq!(doc, json!([{"OutputKey": "k", "OutputValue": format!("x {MASK} y"), "n": [1, null, MASK]}]));
    }

    #[test]
    fn extending_adds_only_new_secrets() {
        let r = Redactor::new(["alpha-secret"]);
        assert!(r.extended(["alpha-secret", ""]).is_none());
        let more = r.extended(["beta-secret"]).unwrap();
        assert_eq!(more.redact("alpha-secret beta-secret"), format!("{MASK} {MASK}"));
        assert!(Redactor::default().is_empty());
    }

    #[test]
    fn sensitive_outputs_come_from_the_state() {
        let state = json!({"outputs": {
            "pw": {"sensitive": true, "value": "out-secret", "type": "string"},
            "nums": {"sensitive": true, "value": {"a": [12345, "deep-secret"]}},
            "plain": {"sensitive": false, "value": "visible"},
        }});
        let mut found = sensitive_outputs(&state.to_string());
        found.sort();
        assert_eq!(found, ["12345", "deep-secret", "out-secret"]);
        assert!(sensitive_outputs("not json").is_empty());
    }
}
