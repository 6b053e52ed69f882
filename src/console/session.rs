//! Console sessions: a random token in an HttpOnly, SameSite=Strict cookie, stored only as its
//! SHA-256 hash (with the AccessKey it was opened with and an expiry) so every node of one
//! database shares it. The CSRF token of a session is derived from its token, so a page can carry
//! it without a second secret being stored; it is checked in constant time on every POST.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Form, PageError};
use crate::api::error::ApiError;
use crate::api::SharedState;
use crate::store::principal::Principal;

/// Name of the session cookie.
pub const COOKIE: &str = "sc_console";

/// Lifetime of a session.
pub const TTL_MS: i64 = 8 * 60 * 60 * 1000;

/// Name of the form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// A new session token: 32 random bytes, base64url.
pub fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// When a session opened at `now` expires.
pub fn expires_at(now: i64) -> i64 {
    now + TTL_MS
}

/// Whether a session expiring at `expires_at` is still valid at `now`.
pub fn is_live(expires_at: i64, now: i64) -> bool {
    now < expires_at
}

/// The CSRF token of the session `token`.
pub fn csrf_token(token: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"servicecatalog console csrf\0");
    digest.update(token.as_bytes());
    hex::encode(digest.finalize())
}

/// Whether `given` is the CSRF token of the session `token` (constant time).
pub fn csrf_matches(token: &str, given: Option<&str>) -> bool {
    given.is_some_and(|given| bool::from(csrf_token(token).as_bytes().ct_eq(given.as_bytes())))
}

/// The `Set-Cookie` value opening a session (`Secure` behind an HTTPS proxy).
pub fn set_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}", TTL_MS / 1000)
}

/// The `Set-Cookie` value ending a session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session token of a request's cookies.
pub fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

/// A signed-in visitor.
pub struct Session {
    /// Who is signed in (the same principal as the AccessKey's on the API).
    pub principal: Principal,
    token: String,
}

impl Session {
    /// The CSRF token forms of this session carry.
    pub fn csrf(&self) -> String {
        csrf_token(&self.token)
    }

    /// Refuses a POST whose form lacks this session's CSRF token.
    fn check_csrf(&self, form: &Form) -> Result<(), PageError> {
        if csrf_matches(&self.token, form.get(CSRF_FIELD)) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    /// The hash under which the session is stored.
    pub fn hash(&self) -> String {
        token_hash(&self.token)
    }
}

impl FromRequestParts<SharedState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, PageError> {
        Session::of_token(state, token_of(&parts.headers).ok_or(PageError::SignIn)?).await
    }
}

impl Session {
    /// The live session of `token`, if there is one.
    pub async fn of_token(state: &SharedState, token: String) -> Result<Session, PageError> {
        let (principal, expires) =
            state.store.console_session(&token_hash(&token)).await.map_err(|e| PageError::Api(e.into()))?.ok_or(PageError::SignIn)?;
        if !is_live(expires, crate::store::now_ms()) {
            return Err(PageError::SignIn);
        }
        Ok(Session { principal, token })
    }
}

/// A form posted by a signed-in session, once it carried the session's CSRF token: what every
/// change of the console starts from.
pub struct Posted {
    pub session: Session,
    pub form: Form,
}

impl FromRequest<SharedState> for Posted {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|refused| PageError::Api(ApiError::new(refused.status(), "InvalidParameter", refused.body_text())))?;
        let form = Form::parse(&body);
        session.check_csrf(&form)?;
        Ok(Posted { session, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_only_as_hashes() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_eq!(token_hash(&a).len(), 64);
        assert!(!token_hash(&a).contains(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn sessions_expire_after_their_lifetime() {
        let opened = 1_000_000;
        let end = expires_at(opened);
        assert!(is_live(end, opened));
        assert!(is_live(end, end - 1));
        assert!(!is_live(end, end));
        assert!(!is_live(end, end + TTL_MS));
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let token = new_token();
        let csrf = csrf_token(&token);
        assert!(csrf_matches(&token, Some(&csrf)));
        assert!(!csrf_matches(&token, None));
        assert!(!csrf_matches(&token, Some("")));
        assert!(!csrf_matches(&token, Some(&csrf[..10])));
        assert!(!csrf_matches(&new_token(), Some(&csrf)));
        assert_ne!(csrf, token_hash(&token), "the CSRF token does not reveal the stored hash");
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped() {
        let cookie = set_cookie("tok", false);
        assert!(cookie.starts_with("sc_console=tok;"));
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=28800"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(set_cookie("tok", true).ends_with("; Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; sc_console=tok; b=2".parse().unwrap());
        assert_eq!(token_of(&headers).as_deref(), Some("tok"));
        headers.insert(header::COOKIE, "sc_console=".parse().unwrap());
        assert_eq!(token_of(&headers), None);
    }
}
