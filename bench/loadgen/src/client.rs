//! One keep-alive HTTP/1.1 connection to the server that sends RPC calls signed with V3
//! (`ACS3-HMAC-SHA256`) the way the official SDK signs them: the same headers, all of them
//! signed, a new nonce and date on every request.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rand::Rng;
use servicecatalog::protocol::percent_encode;
use servicecatalog::protocol::signature;

/// The API version every call names.
const VERSION: &str = "2021-09-01";
/// How the load generator signs: the SDKs' default.
const ALGORITHM: signature::V3Algorithm = signature::V3Algorithm::HmacSha256;
/// What the Python SDK sends (PROTOCOL.md §6).
const USER_AGENT: &str = "AlibabaCloud (Linux; x86_64) servicecatalog-loadgen/0.1 TeaDSL/2";

/// An AccessKey pair.
#[derive(Clone)]
pub struct Credentials {
    pub id: String,
    pub secret: String,
}

impl Credentials {
    /// Reads `{AccessKeyId, AccessKeySecret}` (the server's `root-credentials.json`).
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?)?;
        let field = |name: &str| json[name].as_str().map(str::to_string).with_context(|| format!("{} lacks {name}", path.display()));
        Ok(Credentials { id: field("AccessKeyId")?, secret: field("AccessKeySecret")? })
    }
}

/// What a request asks for: an RPC action with its query parameters, signed, sent to `/` (the
/// API) or to `/ping` (the floor: the same request and client work, a static answer); or the
/// bare unsigned `GET /ping`.
#[derive(Clone, Debug)]
pub enum Call {
    Ping,
    Rpc { action: String, params: Vec<(String, String)> },
    SignedPing { action: String, params: Vec<(String, String)> },
}

/// A status and body.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON, or an error naming the status and body.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        anyhow::ensure!(self.status == 200, "HTTP {}: {}", self.status, String::from_utf8_lossy(&self.body));
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// One connection.
pub struct Connection {
    host: String,
    credentials: Credentials,
    sender: SendRequest<Empty<Bytes>>,
}

impl Connection {
    /// Connects to `host` (`IP:PORT`) with Nagle off.
    pub async fn open(host: &str, credentials: &Credentials) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(host).await.with_context(|| format!("cannot connect to {host}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Connection { host: host.to_string(), credentials: credentials.clone(), sender })
    }

    /// Sends one call and reads the whole answer.
    pub async fn send(&mut self, call: &Call) -> anyhow::Result<Answer> {
        let request = match call {
            Call::Ping => Request::get("/ping").header("host", &self.host).body(Empty::new())?,
            Call::Rpc { action, params } => self.signed("/", action, params)?,
            Call::SignedPing { action, params } => self.signed("/ping", action, params)?,
        };
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer { status, body })
    }

    /// A POST to `path` with the parameters in the query and an empty body, signed like the SDK.
    fn signed(&self, path: &str, action: &str, params: &[(String, String)]) -> anyhow::Result<Request<Empty<Bytes>>> {
        let nonce: String = hex_nonce();
        let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let payload = ALGORITHM.hashed_payload(b"");
        let mut headers: Vec<(String, String)> = [
            ("accept", "application/json"),
            ("host", self.host.as_str()),
            ("user-agent", USER_AGENT),
            ("x-acs-action", action),
            ("x-acs-content-sha256", payload.as_str()),
            ("x-acs-credentials-provider", "static_ak"),
            ("x-acs-date", date.as_str()),
            ("x-acs-signature-nonce", nonce.as_str()),
            ("x-acs-version", VERSION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        let canonical = signature::v3_canonical_request("POST", params, &headers, &signed, &payload);
        let mac = ALGORITHM.sign(&self.credentials.secret, &ALGORITHM.string_to_sign(&canonical));
        headers.push((
            "authorization".into(),
            format!(
                "{} Credential={},SignedHeaders={},Signature={}",
                ALGORITHM.name(),
                self.credentials.id,
                signed.join(";"),
                mac.to_hex()
            ),
        ));
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
        let mut request = Request::post(format!("{path}?{}", query.join("&")));
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        Ok(request.header("content-length", "0").body(Empty::new())?)
    }
}

/// 32 random lower-case hex digits, as the SDK's nonces.
fn hex_nonce() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(name, value)` pairs from `&[("A", "1")]`.
pub fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
