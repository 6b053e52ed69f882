//! Downloads over HTTP(S): within the size limit, following redirects only to allowed URLs, with
//! the operator's credentials for the URL (never sent on to another host).

use sha2::{Digest, Sha256};

use super::{FetchError, FetchResult, SourcePolicy};

/// Most redirects followed.
const MAX_REDIRECTS: usize = 5;

/// The body at `url` (at most `policy.max_bytes`) and its sha256 in hex.
pub(super) async fn download(policy: &SourcePolicy, url: &str) -> FetchResult<(Vec<u8>, String)> {
    let failed = |why: String| FetchError(format!("{url} could not be fetched: {why}."));
    let allowed = policy.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if let Err(e) = allowed.check_allowed(attempt.url().as_str()) {
            attempt.error(e.0)
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .redirect(redirects)
        .timeout(policy.timeout)
        .user_agent(concat!("servicecatalog/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut request = client.get(url);
    if let Some(authorization) = policy.authorization(url) {
        // reqwest drops it when a redirect leads to another host.
        let mut value = reqwest::header::HeaderValue::from_str(authorization)
            .map_err(|_| failed("the configured credential is not a valid header value".into()))?;
        value.set_sensitive(true);
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    let mut response = request.send().await.map_err(|e| failed(describe(&e)))?;
    if !response.status().is_success() {
        return Err(failed(format!("the server answered HTTP {}", response.status())));
    }
    let too_big = || failed(format!("it is larger than {} bytes", policy.max_bytes));
    if response.content_length().is_some_and(|n| n > policy.max_bytes) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(describe(&e)))? {
        if (body.len() + chunk.len()) as u64 > policy.max_bytes {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    let sha256 = hex::encode(Sha256::digest(&body));
    Ok((body, sha256))
}

/// A reqwest error with its causes.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
