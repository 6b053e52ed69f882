//! A signed HTTP client of the API. Requests are shaped and V3-signed like the official SDK's
//! (PROTOCOL.md §2, §4.1) with the signature functions the server verifies with: the action in
//! `x-acs-action`, parameters RFC 3986-encoded in the query for GET and in a form body for POST,
//! every header the client sets signed. HTTPS endpoints are verified with rustls against the
//! system's trust store plus the certificates of `--ca-bundle`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::config::Resolved;
use super::Failure;
use crate::api::action::Action;
use crate::api::rpc::API_VERSION;
use crate::api::spec::{self, ActionSpec};
use crate::protocol::percent_encode;
use crate::protocol::signature::{v3_canonical_request, V3Algorithm};

/// How the command line signs: the SDKs' default.
const ALGORITHM: V3Algorithm = V3Algorithm::HmacSha256;

/// Longest wait for an answer: above `GetTaskLog`'s longest long-poll (20 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one endpoint with one AccessKey.
pub struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    access_key_id: String,
    access_key_secret: String,
}

/// A request as signed: what goes on the wire.
#[derive(Debug)]
struct SignedRequest {
    method: &'static str,
    /// Encoded query string, empty when none.
    query: String,
    /// Headers as (lower-case name, value), `authorization` last.
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

/// An endpoint as `host:port` and whether it speaks HTTPS.
#[derive(Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Whether the endpoint is `https://`.
    pub https: bool,
    /// `host:port` (or `host`).
    pub host: String,
}

impl Endpoint {
    /// Parses `host:port`, `http://host:port` or `https://host:port`.
    pub fn parse(endpoint: &str) -> Result<Endpoint, Failure> {
        let trimmed = endpoint.trim().trim_end_matches('/');
        let (https, host) = match trimmed.split_once("://") {
            None => (false, trimmed),
            Some(("http", host)) => (false, host),
            Some(("https", host)) => (true, host),
            Some((scheme, _)) => {
                return Err(Failure::Usage(format!(
                    "the endpoint {endpoint:?} has an unknown scheme {scheme:?}; use host:port or https://host:port"
                )))
            }
        };
        if host.is_empty() || host.contains(['/', '?', '#', ' ', '@']) {
            return Err(Failure::Usage(format!(
                "the endpoint {endpoint:?} is not of the form host:port, http://host:port or https://host:port"
            )));
        }
        Ok(Endpoint { https, host: host.to_string() })
    }

    fn url(&self) -> String {
        format!("{}://{}/", if self.https { "https" } else { "http" }, self.host)
    }
}

/// The certificates of a PEM bundle, each a root the client trusts.
fn ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, Failure> {
    let unusable = |why: String| Failure::Usage(format!("cannot use the CA bundle {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| unusable(error_chain(&e)))?;
    if certificates.is_empty() {
        return Err(unusable("it holds no PEM certificate".into()));
    }
    Ok(certificates)
}

impl Client {
    /// A client for the resolved endpoint and AccessKey.
    pub fn new(resolved: &Resolved) -> Result<Self, Failure> {
        let endpoint = Endpoint::parse(&resolved.endpoint)?;
        let mut builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).timeout(REQUEST_TIMEOUT);
        for certificate in resolved.ca_bundle.as_deref().map(ca_certificates).transpose()?.into_iter().flatten() {
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder.build().map_err(|e| Failure::Connection(format!("cannot set up the HTTP client: {}", error_chain(&e))))?;
        Ok(Client { http, endpoint, access_key_id: resolved.access_key_id.clone(), access_key_secret: resolved.access_key_secret.clone() })
    }

    /// Calls `action` with string parameters, for the helpers.
    pub async fn invoke(&self, action: Action, params: &[(&str, &str)]) -> Result<Value, Failure> {
        let params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.call(&spec::actions()[action.name()], &params).await
    }

    /// Calls `action` with wire parameters and returns the JSON answer; 4xx/5xx answers become
    /// [`Failure::Api`].
    pub async fn call(&self, action: &ActionSpec, params: &[(String, String)]) -> Result<Value, Failure> {
        let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let host = &self.endpoint.host;
        let signed = sign(action, params, host, &self.access_key_id, &self.access_key_secret, &date, &nonce);
        let mut url = self.endpoint.url();
        if !signed.query.is_empty() {
            url = format!("{url}?{}", signed.query);
        }
        let method = if signed.method == "GET" { reqwest::Method::GET } else { reqwest::Method::POST };
        let mut request = self.http.request(method, &url);
        for (name, value) in &signed.headers {
            request = request.header(name, value);
        }
        if let Some(body) = signed.body {
            request = request.body(body);
        }
        let unreachable = |e: reqwest::Error| {
            let chain = error_chain(&e);
            // rustls names the failed check ("invalid peer certificate: UnknownIssuer"), not the way out.
            let hint = if chain.contains("certificate") {
                "; if the server's certificate is signed by a private CA, pass that CA with --ca-bundle PATH"
            } else {
                ""
            };
            Failure::Connection(format!("cannot call {}: {chain}{hint}", self.endpoint.url()))
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(unreachable)?;
        answer(status, &body)
    }
}

/// Shapes and signs one call (pure, for tests): the SDK's header set, sorted parameters.
fn sign(
    action: &ActionSpec,
    params: &[(String, String)],
    host: &str,
    access_key_id: &str,
    secret: &str,
    date: &str,
    nonce: &str,
) -> SignedRequest {
    let mut params = params.to_vec();
    params.sort();
    let get = action.http_method.eq_ignore_ascii_case("GET");
    let encode = |pairs: &[(String, String)]| {
        pairs.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
    };
    let (query_pairs, body) = if get || params.is_empty() { (params, None) } else { (Vec::new(), Some(encode(&params).into_bytes())) };
    let payload_hash = ALGORITHM.hashed_payload(body.as_deref().unwrap_or_default());
    let mut headers: Vec<(String, String)> = vec![
        ("accept".into(), "application/json".into()),
        ("host".into(), host.into()),
        ("user-agent".into(), format!("servicecatalog-cli/{}", env!("CARGO_PKG_VERSION"))),
        ("x-acs-action".into(), action.name.clone()),
        ("x-acs-content-sha256".into(), payload_hash.clone()),
        ("x-acs-date".into(), date.into()),
        ("x-acs-signature-nonce".into(), nonce.into()),
        ("x-acs-version".into(), API_VERSION.into()),
    ];
    if body.is_some() {
        headers.push(("content-type".into(), "application/x-www-form-urlencoded".into()));
    }
    headers.sort();
    let signed_headers: Vec<String> = headers.iter().map(|(name, _)| name.clone()).collect();
    let canonical = v3_canonical_request(if get { "GET" } else { "POST" }, &query_pairs, &headers, &signed_headers, &payload_hash);
    let signature = ALGORITHM.sign(secret, &ALGORITHM.string_to_sign(&canonical)).to_hex();
    headers.push((
        "authorization".into(),
        format!("{} Credential={access_key_id},SignedHeaders={},Signature={signature}", ALGORITHM.name(), signed_headers.join(";")),
    ));
    let query = encode(&query_pairs);
    SignedRequest { method: if get { "GET" } else { "POST" }, query, headers, body }
}

/// The JSON answer, or the failure an HTTP status and body stand for.
fn answer(status: u16, body: &[u8]) -> Result<Value, Failure> {
    let json: Option<Value> = serde_json::from_slice(body).ok().filter(Value::is_object);
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    match json {
        Some(value) if status < 400 => Ok(value),
        Some(value) if value.get("Code").is_some() => Err(Failure::Api {
            status,
            code: text(&value, "Code"),
            message: text(&value, "Message"),
            request_id: text(&value, "RequestId"),
        }),
        _ => {
            let snippet: String = String::from_utf8_lossy(body).chars().take(200).collect();
            Err(Failure::Connection(format!("the endpoint answered HTTP {status} with a body that is not an API answer: {snippet:?}")))
        }
    }
}

/// An error and its causes on one line (reqwest's own message hides the cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::params::RequestParams;
    use crate::protocol::signature::parse_v3_authorization;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Re-verifies a signed request the way the server does, from the wire form.
    fn verifies(request: &SignedRequest, secret: &str) -> bool {
        let header = |name: &str| request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let params =
            RequestParams::decode(Some(&request.query).filter(|q| !q.is_empty()).map(String::as_str), request.body.as_deref()).unwrap();
        let auth = parse_v3_authorization(header("authorization").unwrap()).unwrap();
        let payload = auth.algorithm.hashed_payload(request.body.as_deref().unwrap_or_default());
        assert_eq!(header("x-acs-content-sha256"), Some(payload.as_str()));
        let canonical = v3_canonical_request(request.method, &params.query, &request.headers, &auth.signed_headers, &payload);
        auth.algorithm.sign(secret, &auth.algorithm.string_to_sign(&canonical)).matches(&auth.signature)
    }

    #[test]
    fn post_parameters_travel_in_a_signed_form_body() {
        let action = &spec::actions()["LaunchProduct"];
        let params = pairs(&[
            ("ProvisionedProductName", "my instance"),
            ("Parameters.1.ParameterKey", "Note"),
            ("Parameters.1.ParameterValue", "a+b&c=d/é~*"),
        ]);
        let request = sign(action, &params, "127.0.0.1:8080", "LTAIid", "s3cret", "2026-11-29T09:26:19Z", "00ff");
        assert_eq!(request.method, "POST");
        assert!(request.query.is_empty());
        let body = String::from_utf8(request.body.clone().unwrap()).unwrap();
        assert!(body.starts_with("Parameters.1.ParameterKey=Note&Parameters.1.ParameterValue=a%2Bb%26c%3Dd%2F%C3%A9~%2A&"), "{body}");
        let auth = &request.headers.last().unwrap().1;
        assert!(
            auth.starts_with("ACS3-HMAC-SHA256 Credential=LTAIid,SignedHeaders=accept;content-type;host;user-agent;x-acs-action;"),
            "{auth}"
        );
        assert!(verifies(&request, "s3cret"));
        assert!(!verifies(&request, "other"));
    }

    #[test]
    fn get_parameters_travel_in_the_query_and_empty_calls_have_no_body() {
        let request = sign(
            &spec::actions()["ListTagOptions"],
            &pairs(&[("PageSize", "20"), ("Filters", r#"{"Key":"a b"}"#)]),
            "h:1",
            "id",
            "k",
            "2026-11-29T09:26:19Z",
            "01",
        );
        assert_eq!(request.method, "GET");
        assert_eq!(request.query, "Filters=%7B%22Key%22%3A%22a%20b%22%7D&PageSize=20");
        assert!(request.body.is_none() && verifies(&request, "k"));
        let request = sign(&spec::actions()["ListRegions"], &[], "h:1", "id", "k", "2026-11-29T09:26:19Z", "02");
        assert!(request.body.is_none() && !request.headers.iter().any(|(k, _)| k == "content-type"));
        assert!(verifies(&request, "k"));
    }

    #[test]
    fn endpoints_are_host_port_over_http_or_https() {
        let endpoint = |https, host: &str| Endpoint { https, host: host.to_string() };
        assert_eq!(Endpoint::parse("http://127.0.0.1:8080/").unwrap(), endpoint(false, "127.0.0.1:8080"));
        assert_eq!(Endpoint::parse("localhost:9").unwrap(), endpoint(false, "localhost:9"));
        assert_eq!(Endpoint::parse("https://sc.example.com").unwrap().url(), "https://sc.example.com/");
        assert!(matches!(Endpoint::parse("ftp://x"), Err(Failure::Usage(_))));
        assert!(matches!(Endpoint::parse("http://x/path"), Err(Failure::Usage(_))));
    }

    #[test]
    fn answers_map_to_failures_by_status() {
        assert!(answer(200, br#"{"RequestId":"r"}"#).is_ok());
        match answer(404, br#"{"Code":"EntityNotExists.Portfolio","Message":"gone","RequestId":"r1"}"#) {
            Err(Failure::Api { status: 404, code, .. }) => assert_eq!(code, "EntityNotExists.Portfolio"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(answer(502, b"<html>bad gateway</html>"), Err(Failure::Connection(_))));
        assert!(matches!(answer(200, b"not json"), Err(Failure::Connection(_))));
    }
}
