//! Who is calling: verifies a request's V3 or V1 signature against the AccessKey's secret, the
//! timestamp window and the nonce, and yields the calling [`Principal`].

pub mod nonce;
pub mod secrets;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::protocol::params::RequestParams;
use crate::protocol::signature::{self, MalformedAuthorization, Signature};
use crate::store::principal::Principal;
use crate::store::{Store, StoreError};
use nonce::NonceGuard;
use secrets::SecretBox;

/// How far a request's timestamp may be from the server's clock.
pub const TIMESTAMP_WINDOW_MS: i64 = 15 * 60 * 1000;

/// A received request, as much of it as the signatures cover.
pub struct SignedRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// Decoded query and form-body parameters.
    pub params: &'a RequestParams,
    /// Every header as (lower-case name, value).
    pub headers: &'a [(&'a str, &'a str)],
    /// The raw body.
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// The signature scheme the request claims: an `Authorization` header is V3 (whatever else it
    /// carries), a `Signature` parameter V1.
    pub fn scheme(&self) -> Scheme {
        if self.header("authorization").is_some() {
            Scheme::V3
        } else if self.params.get("Signature").is_some() {
            Scheme::V1
        } else {
            Scheme::Unsigned
        }
    }
}

/// How a request is signed, which decides where its action and version may come from: only from
/// what that signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: ACS3-HMAC-SHA256 …`: covers the headers in `SignedHeaders` (which must
    /// include `x-acs-action` and `x-acs-version`), the query and the body.
    V3,
    /// `Signature` parameter (HMAC-SHA1): covers the query and form-body parameters, no header.
    V1,
    /// Neither: refused by [`Authenticator::authenticate`].
    Unsigned,
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No signature, or one that cannot be read.
    #[error("{0}")]
    Incomplete(String),
    /// The AccessKey id is unknown.
    #[error("the AccessKey id {0:?} does not exist")]
    UnknownAccessKey(String),
    /// The signature (or the body hash) does not match.
    #[error("{0}")]
    SignatureMismatch(String),
    /// The timestamp cannot be parsed.
    #[error("the timestamp {0:?} is not of the form yyyy-MM-ddTHH:mm:ssZ")]
    BadTimestamp(String),
    /// The timestamp is outside the window.
    #[error("the timestamp {0} is more than 15 minutes away from the server's time")]
    Expired(String),
    /// The nonce was already used.
    #[error("the signature nonce {0:?} has been used already")]
    NonceUsed(String),
    /// The stored secret cannot be opened: the master key is not the one it was sealed with.
    #[error("an AccessKey secret cannot be opened with the configured master key")]
    SecretUnreadable,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies requests.
pub struct Authenticator {
    store: Store,
    secrets: SecretBox,
    /// Replay protection (its write-behind runs beside the server).
    pub nonces: NonceGuard,
}

/// What a scheme extracted from the request before the secret is known.
struct Claim<'a> {
    access_key_id: String,
    timestamp: &'a str,
    nonce: &'a str,
    signature: Signature,
    string_to_sign: String,
    /// The V3 algorithm; `None` for V1 (HMAC-SHA1).
    algorithm: Option<signature::V3Algorithm>,
}

impl Authenticator {
    /// An authenticator over the store's AccessKeys.
    pub async fn new(store: Store, secrets: SecretBox) -> Result<Self, StoreError> {
        let nonces = NonceGuard::new(store.clone()).await?;
        Ok(Authenticator { store, secrets, nonces })
    }

    /// Authenticates a request signed with V3 (`Authorization: ACS3-HMAC-SHA256 …` or `ACS3-HMAC-SM3 …`) or V1
    /// (`Signature` parameter).
    pub async fn authenticate(&self, request: &SignedRequest<'_>, now: DateTime<Utc>) -> Result<Principal, AuthError> {
        let claim = match request.scheme() {
            Scheme::V3 => v3_claim(request, request.header("authorization").unwrap_or_default())?,
            Scheme::V1 => v1_claim(request)?,
            Scheme::Unsigned => {
                return Err(AuthError::Incomplete(
                    "The request is not signed: send an ACS3-HMAC-SHA256 Authorization header or V1 signature parameters.".into(),
                ))
            }
        };
        let timestamp = NaiveDateTime::parse_from_str(claim.timestamp, "%Y-%m-%dT%H:%M:%SZ")
            .map_err(|_| AuthError::BadTimestamp(claim.timestamp.to_string()))?
            .and_utc();
        let Some((principal, sealed)) = self.store.access_key(&claim.access_key_id).await? else {
            return Err(AuthError::UnknownAccessKey(claim.access_key_id));
        };
        let secret = self.secrets.open(&sealed).ok_or(AuthError::SecretUnreadable)?;
        let expected = match claim.algorithm {
            Some(algorithm) => algorithm.sign(&secret, &claim.string_to_sign),
            None => signature::v1_sign(&secret, &claim.string_to_sign),
        };
        if !expected.matches(&claim.signature) {
            return Err(AuthError::SignatureMismatch(format!(
                "The request signature does not match. The server's string to sign was: {}",
                claim.string_to_sign.replace('\n', "\\n")
            )));
        }
        if (now - timestamp).num_milliseconds().abs() > TIMESTAMP_WINDOW_MS {
            return Err(AuthError::Expired(claim.timestamp.to_string()));
        }
        if !self.nonces.first_use(&claim.access_key_id, claim.nonce, now.timestamp_millis(), 2 * TIMESTAMP_WINDOW_MS).await? {
            return Err(AuthError::NonceUsed(claim.nonce.to_string()));
        }
        Ok(principal)
    }

    /// The principal owning the AccessKey pair typed into the web console's sign-in form, if the
    /// secret matches (compared in constant time); an unknown id is refused like a wrong secret.
    pub async fn verify_key_pair(&self, access_key_id: &str, secret: &str) -> Result<Option<Principal>, AuthError> {
        let Some((principal, sealed)) = self.store.access_key(access_key_id).await? else {
            return Ok(None);
        };
        let stored = self.secrets.open(&sealed).ok_or(AuthError::SecretUnreadable)?;
        Ok(bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), secret.as_bytes())).then_some(principal))
    }
}

/// V3 headers that must be signed so that a captured request cannot be altered, replayed or
/// turned into another action.
pub const V3_REQUIRED_SIGNED: [&str; 5] = ["host", "x-acs-date", "x-acs-signature-nonce", "x-acs-action", "x-acs-version"];

fn v3_claim<'a>(request: &'a SignedRequest<'_>, header: &str) -> Result<Claim<'a>, AuthError> {
    let auth = signature::parse_v3_authorization(header).map_err(|e| match e {
        MalformedAuthorization::UnsupportedAlgorithm(_) | MalformedAuthorization::Missing(_) => AuthError::Incomplete(format!("{e}.")),
    })?;
    for name in V3_REQUIRED_SIGNED {
        if !auth.signed_headers.iter().any(|h| h == name) {
            return Err(AuthError::Incomplete(format!("The header {name} must be present and listed in SignedHeaders.")));
        }
    }
    let payload = auth.algorithm.hashed_payload(request.body);
    if let Some(sent) = request.header("x-acs-content-sha256") {
        if !sent.eq_ignore_ascii_case(&payload) {
            return Err(AuthError::SignatureMismatch(format!(
                "The x-acs-content-sha256 header does not match the {} hash of the body.",
                auth.algorithm.name()
            )));
        }
    }
    let canonical = signature::v3_canonical_request(request.method, &request.params.query, request.headers, &auth.signed_headers, &payload);
    Ok(Claim {
        access_key_id: auth.access_key_id,
        timestamp: request.header("x-acs-date").unwrap_or_default(),
        nonce: request.header("x-acs-signature-nonce").unwrap_or_default(),
        signature: auth.signature,
        string_to_sign: auth.algorithm.string_to_sign(&canonical),
        algorithm: Some(auth.algorithm),
    })
}

fn v1_claim<'a>(request: &'a SignedRequest<'_>) -> Result<Claim<'a>, AuthError> {
    let params = request.params;
    let required = |name: &'static str| {
        params
            .get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AuthError::Incomplete(format!("The V1 signature parameter {name} is missing.")))
    };
    let method = required("SignatureMethod")?;
    if method != "HMAC-SHA1" {
        return Err(AuthError::Incomplete(format!("The signature method {method:?} is not supported; use HMAC-SHA1.")));
    }
    let version = required("SignatureVersion")?;
    if version != "1.0" {
        return Err(AuthError::Incomplete(format!("The signature version {version:?} is not supported; use 1.0.")));
    }
    let signature = Signature::from_base64(required("Signature")?)
        .ok_or_else(|| AuthError::Incomplete("The Signature parameter is not valid base64.".into()))?;
    let all: Vec<(String, String)> = params.query.iter().chain(params.body.iter()).cloned().collect();
    Ok(Claim {
        access_key_id: required("AccessKeyId")?.to_string(),
        timestamp: required("Timestamp")?,
        nonce: required("SignatureNonce")?,
        signature,
        string_to_sign: signature::v1_string_to_sign(request.method, &all),
        algorithm: None,
    })
}

/// The rule user and role names follow, for messages.
pub const PRINCIPAL_NAME_RULE: &str = "1-64 characters of letters, digits, '-', '_', '.', '@'";

/// Whether `name` follows [`PRINCIPAL_NAME_RULE`].
pub fn valid_principal_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

/// A new AccessKey pair: `LTAI` + 20 characters, and a 30-character secret.
pub fn new_access_key() -> (String, String) {
    use rand::distributions::{Alphanumeric, DistString};
    let mut rng = rand::thread_rng();
    (format!("LTAI{}", Alphanumeric.sample_string(&mut rng, 20)), Alphanumeric.sample_string(&mut rng, 30))
}

#[cfg(test)]
mod tests {
    #[test]
    fn access_keys_look_like_the_vendors() {
        let (id, secret) = super::new_access_key();
        assert!(id.starts_with("LTAI") && id.len() == 24);
        assert_eq!(secret.len(), 30);
    }
}
