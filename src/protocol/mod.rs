//! The wire protocol of Alibaba Cloud RPC APIs, as the official SDKs speak it: decoding the flat
//! parameter map from the query string and form body, and the V3 (`ACS3-HMAC-SHA256`) and V1
//! (`HMAC-SHA1`) request signatures. Pure functions only: no database, no HTTP framework types.

pub mod params;
pub mod signature;

/// RFC 3986 percent-encoding as both signature schemes use it: only `A-Za-z0-9-_.~` stay literal.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_percent_encoded(&mut out, value);
    out
}

/// Appends `value` percent-encoded as [`percent_encode`] does.
pub fn push_percent_encoded(out: &mut String, value: &str) {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const RESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    out.extend(utf8_percent_encode(value, RESERVED));
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn encodes_like_rfc3986() {
        assert_eq!(percent_encode("a b&c=d/é~*"), "a%20b%26c%3Dd%2F%C3%A9~%2A");
        assert_eq!(percent_encode("Abc-_.~09"), "Abc-_.~09");
    }
}
