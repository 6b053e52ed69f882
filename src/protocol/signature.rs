//! Request signatures of Alibaba Cloud RPC APIs, recomputed from a received request.
//!
//! V3 (`ACS3-HMAC-SHA256`, the SDK's default, or `ACS3-HMAC-SM3`, the SDK's
//! `signature_algorithm='ACS3-HMAC-SM3'`) signs the method, the query, the headers named in
//! `SignedHeaders` and the hash of the body, hashing and keying the MAC with SHA-256 or SM3. V1 (`HMAC-SHA1`, `signature_algorithm='v2'` in the
//! SDK) signs every query and form-body parameter. A [`Signature`] has no `==`: comparing two only
//! compiles through [`Signature::matches`], which runs in constant time.

use std::borrow::Cow;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sm3::Sm3;
use subtle::ConstantTimeEq;

use super::{percent_encode, push_percent_encoded};

/// A V3 signature algorithm: the hash of the body and of the canonical request, and the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V3Algorithm {
    /// `ACS3-HMAC-SHA256`, the SDKs' default.
    HmacSha256,
    /// `ACS3-HMAC-SM3`, the Chinese national standard hash (GB/T 32905).
    HmacSm3,
}

impl V3Algorithm {
    /// The name in the `Authorization` header and the string to sign.
    pub fn name(self) -> &'static str {
        match self {
            V3Algorithm::HmacSha256 => "ACS3-HMAC-SHA256",
            V3Algorithm::HmacSm3 => "ACS3-HMAC-SM3",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [V3Algorithm::HmacSha256, V3Algorithm::HmacSm3].into_iter().find(|a| a.name() == name)
    }

    /// Lower-case hex hash of a request body: V3's `HashedPayload`, sent as `x-acs-content-sha256`
    /// whatever the algorithm.
    pub fn hashed_payload(self, body: &[u8]) -> String {
        match self {
            V3Algorithm::HmacSha256 => lower_hex(&Sha256::digest(body)),
            V3Algorithm::HmacSm3 => lower_hex(&Sm3::digest(body)),
        }
    }

    /// The string to sign: the algorithm and the hex hash of the canonical request.
    pub fn string_to_sign(self, canonical_request: &str) -> String {
        format!("{}\n{}", self.name(), self.hashed_payload(canonical_request.as_bytes()))
    }

    /// The signature: the HMAC of the string to sign keyed with the AccessKey secret.
    pub fn sign(self, secret: &str, string_to_sign: &str) -> Signature {
        fn hmac<M: Mac + hmac::digest::KeyInit>(secret: &str, string_to_sign: &str) -> Signature {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
            mac.update(string_to_sign.as_bytes());
            Signature(mac.finalize().into_bytes().to_vec())
        }
        match self {
            V3Algorithm::HmacSha256 => hmac::<Hmac<Sha256>>(secret, string_to_sign),
            V3Algorithm::HmacSm3 => hmac::<Hmac<Sm3>>(secret, string_to_sign),
        }
    }
}

/// A signature as raw MAC bytes. Deliberately not `PartialEq`.
pub struct Signature(Vec<u8>);

impl Signature {
    /// Decodes a V3 signature (lower-case hex).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = vec![0; text.len() / 2];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Signature(bytes))
    }

    /// Decodes a V1 signature (standard base64).
    pub fn from_base64(text: &str) -> Option<Self> {
        base64::engine::general_purpose::STANDARD.decode(text).ok().map(Signature)
    }

    /// Compares in constant time.
    pub fn matches(&self, other: &Signature) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The V3 wire form (lower-case hex).
    pub fn to_hex(&self) -> String {
        lower_hex(&self.0)
    }

    /// The V1 wire form (base64).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signature(..)")
    }
}

/// Lower-case hex of `bytes`, in one allocation (`hex::encode` collects its string a char at a time).
fn lower_hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut out).expect("the buffer holds two digits per byte");
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// The parts of a V3 `Authorization` header.
#[derive(Debug)]
pub struct V3Authorization<'a> {
    /// The algorithm named before the parts.
    pub algorithm: V3Algorithm,
    /// The AccessKey id from `Credential=`.
    pub access_key_id: String,
    /// Lower-case header names from `SignedHeaders=`, in the order given (borrowed from the
    /// header when it already is lower-case, as the SDK sends it).
    pub signed_headers: Vec<Cow<'a, str>>,
    /// The claimed signature.
    pub signature: Signature,
}

/// Why an `Authorization` header could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedAuthorization {
    /// The algorithm is neither `ACS3-HMAC-SHA256` nor `ACS3-HMAC-SM3`.
    #[error("the signature algorithm {0:?} is not supported; use ACS3-HMAC-SHA256 or ACS3-HMAC-SM3")]
    UnsupportedAlgorithm(String),
    /// A part is missing or cannot be decoded.
    #[error("the Authorization header lacks a valid {0}")]
    Missing(&'static str),
}

/// Parses `ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…` (or `ACS3-HMAC-SM3 …`).
pub fn parse_v3_authorization(header: &str) -> Result<V3Authorization<'_>, MalformedAuthorization> {
    let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let algorithm = V3Algorithm::from_name(algorithm).ok_or_else(|| MalformedAuthorization::UnsupportedAlgorithm(algorithm.to_string()))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let access_key_id = credential.filter(|c| !c.is_empty()).ok_or(MalformedAuthorization::Missing("Credential"))?;
    let signed = signed.filter(|s| !s.is_empty()).ok_or(MalformedAuthorization::Missing("SignedHeaders"))?;
    let signature = signature.and_then(Signature::from_hex).ok_or(MalformedAuthorization::Missing("Signature"))?;
    Ok(V3Authorization {
        algorithm,
        access_key_id: access_key_id.to_string(),
        signed_headers: signed
            .split(';')
            .map(str::trim)
            .map(|h| if h.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(h.to_ascii_lowercase()) } else { Cow::Borrowed(h) })
            .collect(),
        signature,
    })
}

/// Sorted `enc(name)=enc(value)` pairs joined by `&`: the canonical query of V3 and the
/// canonicalized parameters of V1.
fn canonical_pairs<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> String {
    let mut out = String::new();
    push_canonical_pairs(&mut out, pairs);
    out
}

/// Appends what [`canonical_pairs`] returns.
fn push_canonical_pairs<'a>(out: &mut String, pairs: impl Iterator<Item = &'a (String, String)>) {
    let mut pairs: Vec<&(String, String)> = pairs.collect();
    pairs.sort();
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_percent_encoded(out, name);
        out.push('=');
        push_percent_encoded(out, value);
    }
}

/// V3 canonical request. `headers` are the received headers as (lower-case name, value); a name
/// that occurs several times contributes its trimmed values sorted and joined by `,`.
pub fn v3_canonical_request<N: AsRef<str>, V: AsRef<str>, S: AsRef<str>>(
    method: &str,
    query: &[(String, String)],
    headers: &[(N, V)],
    signed_headers: &[S],
    hashed_payload: &str,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(method);
    out.push_str("\n/\n");
    push_canonical_pairs(&mut out, query.iter());
    out.push('\n');
    for name in signed_headers.iter().map(AsRef::as_ref) {
        out.push_str(name);
        out.push(':');
        let mut values = headers.iter().filter(|(k, _)| k.as_ref() == name).map(|(_, v)| v.as_ref().trim());
        match (values.next(), values.next()) {
            (None, _) => {}
            (Some(only), None) => out.push_str(only),
            (Some(first), Some(second)) => {
                let mut all: Vec<&str> = [first, second].into_iter().chain(values).collect();
                all.sort_unstable();
                out.push_str(&all.join(","));
            }
        }
        out.push('\n');
    }
    out.push('\n');
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name.as_ref());
    }
    out.push('\n');
    out.push_str(hashed_payload);
    out
}

/// V1 string to sign from every query and body parameter except `Signature`.
pub fn v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let canonical = canonical_pairs(params.iter().filter(|(k, _)| k != "Signature"));
    format!("{method}&{}&{}", percent_encode("/"), percent_encode(&canonical))
}

/// V1 signature: HMAC-SHA1 keyed with the secret followed by `&`.
pub fn v1_sign(secret: &str, string_to_sign: &str) -> Signature {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    Signature(mac.finalize().into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::params::RequestParams;

    const SECRET: &str = "fake-secret-for-docs";

    /// A request captured from the official Python SDK (PROTOCOL.md §6).
    struct Capture {
        method: String,
        query: Option<String>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn capture(raw: &str) -> Capture {
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
        let mut lines = head.lines();
        let mut request_line = lines.next().unwrap().split(' ');
        let method = request_line.next().unwrap().to_string();
        let target = request_line.next().unwrap();
        let headers: Vec<(String, String)> =
            lines.map(|l| l.split_once(':').unwrap()).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
        let length: usize = headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
        Capture {
            method,
            query: target.split_once('?').map(|(_, q)| q.to_string()),
            headers,
            body: body.as_bytes()[..length.min(body.len())].to_vec(),
        }
    }

    fn header<'a>(c: &'a Capture, name: &str) -> Option<&'a str> {
        c.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn verify(raw: &str, secret: &str) -> bool {
        let c = capture(raw);
        let form = header(&c, "content-type").filter(|t| t.starts_with("application/x-www-form-urlencoded"));
        let params = RequestParams::decode(c.query.as_deref(), form.map(|_| c.body.as_slice())).unwrap();
        if let Some(auth) = header(&c, "authorization") {
            let auth = parse_v3_authorization(auth).unwrap();
            let payload = auth.algorithm.hashed_payload(&c.body);
            if header(&c, "x-acs-content-sha256") != Some(payload.as_str()) {
                return false;
            }
            let canonical = v3_canonical_request(&c.method, &params.query, &c.headers, &auth.signed_headers, &payload);
            auth.algorithm.sign(secret, &auth.algorithm.string_to_sign(&canonical)).matches(&auth.signature)
        } else {
            let all: Vec<_> = params.query.iter().chain(params.body.iter()).cloned().collect();
            let sent = Signature::from_base64(params.get("Signature").unwrap()).unwrap();
            v1_sign(secret, &v1_string_to_sign(&c.method, &all)).matches(&sent)
        }
    }

    const CAPTURES: [(&str, &str); 14] = [
        ("GetTask V3", include_str!("testdata/capture-6-1.http")),
        ("LaunchProduct V3", include_str!("testdata/capture-6-2.http")),
        ("ListTasks V3 query", include_str!("testdata/capture-6-3.http")),
        ("ListProvisionedProducts V3 filters", include_str!("testdata/capture-6-4.http")),
        ("ListTagOptions V3 GET", include_str!("testdata/capture-6-5.http")),
        ("ListTagOptions async", include_str!("testdata/capture-6-6.http")),
        ("CreateProduct V3 JSON param", include_str!("testdata/capture-6-7.http")),
        ("UpdateTagOption V3 boolean", include_str!("testdata/capture-6-8.http")),
        ("GetTask V3 404", include_str!("testdata/capture-6-9.http")),
        ("GetTask V3 STS", include_str!("testdata/capture-6-10.http")),
        ("LaunchProduct V1", include_str!("testdata/capture-6-11.http")),
        ("ListTasks V1", include_str!("testdata/capture-6-12.http")),
        ("GetTask V3 SM3", include_str!("testdata/capture-sm3-1.http")),
        ("LaunchProduct V3 SM3", include_str!("testdata/capture-sm3-2.http")),
    ];

    #[test]
    fn every_captured_sdk_request_verifies() {
        for (name, raw) in CAPTURES {
            assert!(verify(raw, SECRET), "{name} did not verify");
        }
    }

    #[test]
    fn a_wrong_secret_never_verifies() {
        for (name, raw) in CAPTURES {
            assert!(!verify(raw, "another-secret"), "{name} verified with a wrong secret");
        }
    }

    #[test]
    fn a_tampered_body_or_query_never_verifies() {
        let tampered = CAPTURES[1].1.replace("Tags.2.Value=core", "Tags.2.Value=cor3");
        assert!(!verify(&tampered, SECRET));
        let tampered = CAPTURES[2].1.replace("PageSize=5", "PageSize=6");
        assert!(!verify(&tampered, SECRET));
        let tampered = CAPTURES[10].1.replace("ProvisionedProductName=my+instance", "ProvisionedProductName=other");
        assert!(!verify(&tampered, SECRET));
        let tampered = CAPTURES[13].1.replace("ParameterValue=v+1", "ParameterValue=v+2");
        assert!(!verify(&tampered, SECRET));
    }

    #[test]
    fn an_sm3_signature_is_not_a_sha256_one() {
        // GB/T 32905's example: SM3("abc").
        assert_eq!(V3Algorithm::HmacSm3.hashed_payload(b"abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
        let relabelled = CAPTURES[12].1.replace("Authorization: ACS3-HMAC-SM3", "Authorization: ACS3-HMAC-SHA256");
        assert!(!verify(&relabelled, SECRET));
    }

    #[test]
    fn intermediate_strings_match_the_documented_example() {
        let c = capture(CAPTURES[4].1);
        let params = RequestParams::decode(c.query.as_deref(), None).unwrap();
        let auth = parse_v3_authorization(header(&c, "authorization").unwrap()).unwrap();
        let canonical =
            v3_canonical_request("GET", &params.query, &c.headers, &auth.signed_headers, &V3Algorithm::HmacSha256.hashed_payload(b""));
        assert!(canonical.starts_with(
            "GET\n/\nFilters=%7B%22Active%22%3Atrue%2C%22Key%22%3A%22env%22%2C%22Value%22%3A%22dev%22%7D&PageSize=20\naccept:application/json\n"
        ));
        assert_eq!(
            V3Algorithm::HmacSha256.string_to_sign(&canonical),
            "ACS3-HMAC-SHA256\n72f2279142e24bbc94708f966d09d5cd744561f8e804f6299011499d5e6910e2"
        );
    }

    #[test]
    fn malformed_authorization_headers_are_named() {
        assert_eq!(
            parse_v3_authorization("ACS3-RSA-SHA256 Credential=a,SignedHeaders=host,Signature=00").unwrap_err(),
            MalformedAuthorization::UnsupportedAlgorithm("ACS3-RSA-SHA256".into())
        );
        assert_eq!(
            parse_v3_authorization("ACS3-HMAC-SHA256 SignedHeaders=host,Signature=00").unwrap_err(),
            MalformedAuthorization::Missing("Credential")
        );
        assert_eq!(
            parse_v3_authorization("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=zz").unwrap_err(),
            MalformedAuthorization::Missing("Signature")
        );
    }
}
