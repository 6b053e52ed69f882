//! The web console at `/console`: server-rendered pages over the same actions as the API.
//! A visitor signs in with an AccessKey pair and gets a session (see [`session`]); every page
//! then acts as that principal after the API's authorisation ([`crate::api::authorize`]) and
//! parameter validation ([`crate::api::spec`]): catalog pages build an action's typed request,
//! [`checked`] passes it, and they call the domain services ([`crate::catalog::Catalog`],
//! [`crate::provisioning::queue::Provisioner`]) and render their typed answers. So the console
//! can do exactly what the caller's key could do on the API and nothing more.
//! Every change is a POST carrying the session's CSRF token. Pages are grouped by area; the
//! stylesheet and the small script (live task logs, template upload, confirmations) are built in,
//! served from the console's own origin: every console response carries a Content-Security-Policy
//! that allows no inline script or style and no framing, with `Referrer-Policy: no-referrer` and
//! `X-Content-Type-Options: nosniff`. Failed sign-ins are throttled (`api::sign_in`, kept with the API's state).

mod admin;
mod audit;
mod campaigns;
mod catalog;
mod html;
mod identity;
mod plans;
mod provisioned;
pub mod session;
mod signin;
mod tasks;
mod webhooks;

use std::convert::Infallible;

use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::Router;
use maud::html;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::{authorize, decode, spec, SharedState};
use crate::catalog::error::DomainError;
use crate::protocol::params::Params;
use session::Session;

/// Where the console lives.
pub const PATH: &str = "/console";

const CSS: &str = include_str!("static/console.css");
const JS: &str = include_str!("static/console.js");
const FAVICON: &str = include_str!("static/favicon.svg");

/// The console's routes.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/static/console.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS) }))
        .route("/console/static/console.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], JS) }))
        .route("/console/static/favicon.svg", get(|| async { ([(header::CONTENT_TYPE, "image/svg+xml")], FAVICON) }))
        .route("/console/sign-in", get(signin::form).post(signin::submit))
        .route("/console/sign-out", post(signin::sign_out))
        .merge(catalog::routes())
        .merge(provisioned::routes())
        .merge(tasks::routes())
        .merge(plans::routes())
        .merge(admin::routes())
        .merge(audit::routes())
        .merge(webhooks::routes())
        .merge(campaigns::routes())
        .merge(identity::routes())
        .route("/console/{*rest}", any(|| async { PageError::not_found() }))
        .layer(DefaultBodyLimit::max(crate::api::rpc::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), navigable))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The console's Content-Security-Policy: its own scripts, styles and requests only, nothing
/// inline, no plugins, never framed, forms posted back to it only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the security headers to every console response.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    response
}

async fn home(session: Result<Session, PageError>) -> Redirect {
    match session {
        Ok(_) => Redirect::to("/console/catalog"),
        Err(_) => Redirect::to("/console/sign-in"),
    }
}

/// The console's page for a path beside [`PATH`] that no route serves (`/console…` paths
/// under it have the catch-all route, which shows the page with the visitor's navigation).
pub fn not_found() -> Response {
    PageError::not_found().into_response()
}

/// The console as the API's router mounts it beside the API.
pub fn pages(state: SharedState) -> crate::api::rpc::Pages {
    crate::api::rpc::Pages { router: router(state), at: PATH, not_found }
}

/// Why a page could not be shown.
pub enum PageError {
    /// No valid session: go and sign in.
    SignIn,
    /// A POST without this session's CSRF token.
    Csrf,
    /// An action refused or failed.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError::Api(error)
    }
}

impl From<DomainError> for PageError {
    fn from(error: DomainError) -> Self {
        PageError::Api(error.into())
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(error: crate::store::StoreError) -> Self {
        PageError::Api(error.into())
    }
}

impl From<crate::auth::AuthError> for PageError {
    fn from(error: crate::auth::AuthError) -> Self {
        PageError::Api(error.into())
    }
}

impl PageError {
    /// A path or operation of the console that does not exist.
    pub fn not_found() -> PageError {
        PageError::Api(no_such_page())
    }
}

/// The refusal of a path or operation of the console that does not exist.
pub fn no_such_page() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "There is no such page.")
}

impl IntoResponse for PageError {
    /// The error page without navigation, carrying its [`Failure`] so that [`navigable`] renders
    /// it again for the visitor's session.
    fn into_response(self) -> Response {
        let failure = match self {
            PageError::SignIn => return Redirect::to("/console/sign-in").into_response(),
            PageError::Csrf => Failure {
                status: StatusCode::FORBIDDEN,
                message: "The form did not carry this session's security token (it may come from another site, or an old page). Go back, reload the page and try again.".to_string(),
            },
            PageError::Api(e) => Failure { status: e.status(), message: e.message().to_string() },
        };
        let mut response = failure.page(None);
        response.extensions_mut().insert(failure);
        response
    }
}

/// What an error page says: kept on its response until [`navigable`] renders it for the visitor.
#[derive(Clone)]
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    /// The error page, with the navigation of `session` so that it is no dead end; a visitor
    /// without a session is offered to sign in.
    fn page(&self, session: Option<&Session>) -> Response {
        let body = html! {
            (html::error_box(Some(&self.message)))
            p {
                @if session.is_some() { a href="/console/catalog" { "Back to the catalog" } }
                @else { a href="/console/sign-in" { "Sign in" } }
            }
        };
        respond(self.status, html::page(title_of(self.status), session, body))
    }
}

/// Renders an error page a handler answered again with the navigation of the request's session
/// (looked up only then: the pages that succeed have theirs already).
async fn navigable(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let token = session::token_of(request.headers());
    let response = next.run(request).await;
    let Some(failure) = response.extensions().get::<Failure>().cloned() else { return response };
    let session = match token {
        Some(token) => Session::of_token(&state, token).await.ok(),
        None => None,
    };
    failure.page(session.as_ref())
}

/// A readable heading for an error status.
fn title_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "Check the values",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Not possible now",
        413 => "Too large",
        503 => "Service unavailable",
        _ => "Something went wrong",
    }
}

/// A page's HTML with a status.
pub fn respond(status: StatusCode, markup: maud::Markup) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], axum::response::Html(markup.into_string())).into_response()
}

/// The redirect after a successful change (303: the browser follows with GET).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// After a change: the redirect to the page it leads to, or, when the input was refused (400) or
/// the change is not possible now (409), the form `again` with the error beside its field.
pub fn changed(result: Result<String, ApiError>, again: impl FnOnce(&ApiError) -> Response) -> Result<Response, PageError> {
    match result {
        Ok(location) => Ok(see_other(&location)),
        Err(e) if e.status() == StatusCode::BAD_REQUEST || e.status() == StatusCode::CONFLICT => Ok(again(&e)),
        Err(e) => Err(e.into()),
    }
}

/// `request` for `action` once it passed what the API checks of the signed-in principal: the
/// authorisation, then the spec's validation (the request takes the wire's form on the way, so
/// the messages and the defaults are the API's).
pub fn checked<T: Serialize + DeserializeOwned>(session: &Session, action: Action, request: T) -> Result<T, ApiError> {
    let params = wire_params(&request)?;
    checked_params(session, action, &params)
}

/// The request `params` stand for, once `action` passed the checks of [`checked`].
fn checked_params<T: DeserializeOwned>(session: &Session, action: Action, params: &Params) -> Result<T, ApiError> {
    authorize(action, &session.principal)?;
    decode(spec::decode(&spec::actions()[action.name()], params)?)
}

/// The change `action` made from the console as the API makes it: `request` passes [`checked`],
/// `run` does it, and the outcome (done or refused, with the parameters masked) goes to the audit
/// trail as the API's pipeline writes it.
pub async fn audited<T, R, E, F>(
    state: &SharedState,
    session: &Session,
    action: Action,
    request: T,
    run: impl FnOnce(T) -> F,
) -> Result<R, ApiError>
where
    T: Serialize + DeserializeOwned,
    R: Serialize,
    E: Into<ApiError>,
    F: std::future::Future<Output = Result<R, E>>,
{
    audited_unless(state, session, action, request, None, run).await
}

/// [`audited`] for a form with a field that has no wire form (a malformed tag line): its
/// `refusal`, if any, refuses the change once the API's checks passed, and goes to the audit
/// trail as the API records refused calls, with the parameters the rest of the form stands for.
pub async fn audited_unless<T, R, E, F>(
    state: &SharedState,
    session: &Session,
    action: Action,
    request: T,
    refusal: Option<ApiError>,
    run: impl FnOnce(T) -> F,
) -> Result<R, ApiError>
where
    T: Serialize + DeserializeOwned,
    R: Serialize,
    E: Into<ApiError>,
    F: std::future::Future<Output = Result<R, E>>,
{
    let params = wire_params(&request)?;
    let result = match checked_params(session, action, &params).and_then(|request| refusal.map_or(Ok(request), Err)) {
        Ok(request) => run(request).await.map_err(Into::into),
        Err(e) => Err(e),
    };
    record(state, session, action.name(), &params, result.as_ref()).await;
    result
}

/// A console change whose form has no typed request for [`checked`]: `action` is authorised for
/// the signed-in principal, `run` does it, and the outcome goes to the audit trail with `params`.
pub async fn authorised<R, E, F>(
    state: &SharedState,
    session: &Session,
    action: Action,
    params: &Params,
    run: impl FnOnce() -> F,
) -> Result<R, ApiError>
where
    R: Serialize,
    E: Into<ApiError>,
    F: std::future::Future<Output = Result<R, E>>,
{
    let result = match authorize(action, &session.principal) {
        Ok(()) => run().await.map_err(Into::into),
        Err(e) => Err(e),
    };
    record(state, session, action.name(), params, result.as_ref()).await;
    result
}

/// Writes the outcome of the console change `action` that `params` stand for to the audit trail,
/// under a new request id, as the API writes its changes (see [`crate::api::trail`]).
pub async fn record<R: Serialize>(state: &SharedState, session: &Session, action: &str, params: &Params, outcome: Result<&R, &ApiError>) {
    let answer = outcome.ok().and_then(|r| serde_json::to_value(r).ok());
    let outcome = outcome.map(|_| answer.as_ref());
    let request_id = crate::api::rpc::new_request_id();
    let change = crate::api::trail::Change { request_id: &request_id, action, principal: &session.principal, params };
    crate::api::trail::record(&state.store, &change, outcome).await;
}

/// The wire parameters of a typed request.
fn wire_params<T: Serialize>(request: &T) -> Result<Params, ApiError> {
    let mut pairs = Vec::new();
    if let Value::Object(fields) = serde_json::to_value(request).map_err(ApiError::internal)? {
        for (name, value) in fields {
            wire_pairs(name, value, &mut pairs);
        }
    }
    Ok(Params::from_pairs(pairs))
}

/// The wire parameters of one request field: arrays flattened (`Name.N.Field`), objects as JSON
/// text without their empty fields.
fn wire_pairs(name: String, value: Value, pairs: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::String(text) => pairs.push((name, text)),
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::Object(fields) => fields.into_iter().for_each(|(k, v)| wire_pairs(format!("{name}.{}.{k}", i + 1), v, pairs)),
                    item => wire_pairs(format!("{name}.{}", i + 1), item, pairs),
                }
            }
        }
        Value::Object(mut fields) => {
            fields.retain(|_, v| !v.is_null());
            pairs.push((name, Value::Object(fields).to_string()));
        }
        scalar => pairs.push((name, scalar.to_string())),
    }
}

/// Form fields or query parameters, in order (a name may repeat).
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

/// A page's query parameters (none: an empty form).
impl<S: Send + Sync> FromRequestParts<S> for Form {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Form::query(parts.uri.query()))
    }
}

impl Form {
    /// Decodes `application/x-www-form-urlencoded` text.
    pub fn parse(text: &[u8]) -> Form {
        Form(form_urlencoded::parse(text).into_owned().collect())
    }

    /// Decodes a query string, if any.
    fn query(query: Option<&str>) -> Form {
        Form::parse(query.unwrap_or_default().as_bytes())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    /// The first value of `name`, unless empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// Fields whose name starts with `prefix`, with the prefix removed.
    pub fn prefixed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0.iter().filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
    }

    /// The page number asked for (1 when absent or invalid).
    pub fn page(&self) -> i64 {
        self.get("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1)
    }
}

/// Rows of a list page.
pub const PAGE_SIZE: i64 = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_keep_order_and_decode() {
        let form = Form::parse(b"a=1&p.x=%3Cb%3E&p.y=2&a=3&page=0");
        assert_eq!(form.get("a"), Some("1"));
        assert_eq!(form.text("missing"), "");
        assert_eq!(form.prefixed("p.").collect::<Vec<_>>(), [("x", "<b>"), ("y", "2")]);
        assert_eq!(form.page(), 1);
        assert_eq!(Form::query(Some("page=3")).page(), 3);
    }
}
