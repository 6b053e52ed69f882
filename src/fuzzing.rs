//! Entry points of the fuzz targets (`fuzz/`), shared with the stable regression test that
//! replays their corpus (`tests/fuzz_corpus.rs`). Each must return for any input, never panic.

use crate::api::spec;
use crate::protocol::params::RequestParams;
use crate::protocol::signature;

/// A raw HTTP request as the captures in `src/protocol/testdata` hold it.
struct RawRequest<'a> {
    method: &'a str,
    query: Option<&'a str>,
    headers: Vec<(String, String)>,
    body: &'a [u8],
}

fn split_request(data: &[u8]) -> Option<RawRequest<'_>> {
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| data.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2)));
    let (head_end, body_start) = end.unwrap_or((data.len(), data.len()));
    let head = std::str::from_utf8(&data[..head_end]).ok()?;
    let mut lines = head.lines();
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?;
    let target = request_line.next().unwrap_or("/");
    let query = target.split_once('?').map(|(_, q)| q);
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    Some(RawRequest { method, query, headers, body: &data[body_start..] })
}

/// Parameter decoding: query and form body, then the spec's decoding for the action the request
/// names (else every action in turn, cheaply, by the first byte).
pub fn params(data: &[u8]) {
    let Some(request) = split_request(data) else { return };
    let Ok(params) = RequestParams::decode(request.query, Some(request.body)) else { return };
    let merged = params.merged();
    let actions = spec::actions();
    let named = request.headers.iter().find(|(k, _)| k == "x-acs-action").map(|(_, v)| v.as_str()).or_else(|| params.get("Action"));
    let action = named.and_then(|n| actions.get(n)).or_else(|| {
        let mut names: Vec<&String> = actions.keys().collect();
        names.sort();
        names.get(usize::from(data.first().copied().unwrap_or(0)) % names.len().max(1)).and_then(|n| actions.get(*n))
    });
    if let Some(action) = action {
        let _ = spec::decode(action, &merged);
    }
}

/// Both signature verifiers' parsing and canonicalisation: the V3 `Authorization` header, its
/// canonical request and string to sign; the V1 string to sign over every parameter.
pub fn signatures(data: &[u8]) {
    let Some(request) = split_request(data) else { return };
    let Ok(params) = RequestParams::decode(request.query, Some(request.body)) else { return };
    if let Some((_, header)) = request.headers.iter().find(|(k, _)| k == "authorization") {
        if let Ok(auth) = signature::parse_v3_authorization(header) {
            let canonical = signature::v3_canonical_request(
                request.method,
                &params.query,
                &request.headers,
                &auth.signed_headers,
                &auth.algorithm.hashed_payload(request.body),
            );
            let _ = auth.algorithm.sign("secret", &auth.algorithm.string_to_sign(&canonical)).matches(&auth.signature);
        }
    }
    let all: Vec<(String, String)> = params.query.iter().chain(&params.body).cloned().collect();
    let _ = signature::v1_sign("secret", &signature::v1_string_to_sign(request.method, &all));
}

/// The template parser on any UTF-8 text.
pub fn template(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::catalog::template::parse(text);
    }
}
