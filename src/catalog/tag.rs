//! The rules tag keys and values follow (tag options and the `Tags` of launches alike): a key does
//! not start with `acs:` or `aliyun`, a value does not start with `acs:`, neither holds a URL,
//! both are at most 128 characters and a key is not empty.

/// Longest key or value, in characters.
pub const MAX_LENGTH: usize = 128;

fn has_url(s: &str) -> bool {
    s.contains("http://") || s.contains("https://")
}

/// Why `key` is not a valid tag key, if it is not.
pub fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("must not be empty")
    } else if key.chars().count() > MAX_LENGTH {
        Some("must be at most 128 characters long")
    } else if key.starts_with("acs:") || key.starts_with("aliyun") {
        Some("must not start with acs: or aliyun")
    } else if has_url(key) {
        Some("must not contain http:// or https://")
    } else {
        None
    }
}

/// Why `value` is not a valid tag value, if it is not.
pub fn value_problem(value: &str) -> Option<&'static str> {
    if value.chars().count() > MAX_LENGTH {
        Some("must be at most 128 characters long")
    } else if value.starts_with("acs:") {
        Some("must not start with acs:")
    } else if has_url(value) {
        Some("must not contain http:// or https://")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_follow_the_tag_rules() {
        assert_eq!(key_problem("env"), None);
        assert_eq!(key_problem("acs:env"), Some("must not start with acs: or aliyun"));
        assert_eq!(key_problem("aliyunX"), Some("must not start with acs: or aliyun"));
        assert_eq!(key_problem("x-https://y"), Some("must not contain http:// or https://"));
        assert_eq!(key_problem(""), Some("must not be empty"));
        assert_eq!(key_problem(&"é".repeat(128)), None);
        assert!(key_problem(&"k".repeat(129)).is_some());
        assert_eq!(value_problem("aliyun"), None, "only keys are barred from starting with aliyun");
        assert_eq!(value_problem("acs:x"), Some("must not start with acs:"));
        assert_eq!(value_problem("see http://x"), Some("must not contain http:// or https://"));
        assert_eq!(value_problem(""), None);
    }
}
