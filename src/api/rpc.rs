//! The HTTP face of the API: `/` takes RPC calls by GET or POST, `/healthz` reports readiness,
//! `/ping` answers without touching the database (the floor of the benchmarks); a browser opening
//! `/` is redirected to the web console, which the router also serves.
//! A call is decoded (query + form body), routed by `x-acs-action`/`Action`, version-checked,
//! authenticated, authorised, validated against the spec and dispatched; the answer is JSON with
//! a `RequestId` either way, and one log line records it (never its parameters).

use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::action::{Action, Effect};
use super::error::ApiError;
use super::trail as audit;
use super::{authorize, dispatch, spec, Answer, Ctx, SharedState};
use crate::auth::{Scheme, SignedRequest};
use crate::protocol::params::{Params, RequestParams};

/// The only API version served.
pub const API_VERSION: &str = "2021-09-01";

/// Default largest request body (templates travel in bodies); `--max-body-bytes` sets it.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// A front end serving HTML pages under one path (the web console), mounted beside the API.
pub struct Pages {
    /// Its routes.
    pub router: Router,
    /// The path its pages live under; a browser visiting `/` is sent there.
    pub at: &'static str,
    /// Its page for a path under `at` that no route serves.
    pub not_found: fn() -> Response,
}

/// The HTTP application: the API and health endpoints beside `pages`. Every error outside the
/// pages is the API's JSON envelope.
pub fn router(state: SharedState, pages: Pages) -> Router {
    let Pages { router: page_routes, at, not_found } = pages;
    let call = move |state, request| rpc(state, request, at);
    Router::new()
        .route("/", get(call).post(call))
        .route("/healthz", get(healthz))
        .route("/ping", get(ping).post(ping))
        .route("/metrics", get(super::metrics::scrape))
        .with_state(state)
        .merge(page_routes)
        .fallback(move |uri: axum::http::Uri| async move {
            if uri.path().starts_with(at) {
                not_found()
            } else {
                unknown_path(&uri)
            }
        })
        .layer(axum::middleware::map_response(json_errors))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
}

/// A handler that panicked answers `500 InternalError` (the panic is logged) and the node serves on.
fn panicked(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = cause.downcast_ref::<&str>().copied().or_else(|| cause.downcast_ref::<String>().map(String::as_str));
    error_response(&ApiError::internal(format_args!("a request handler panicked: {}", what.unwrap_or("(no message)"))))
}

/// A path no route serves (outside the pages).
fn unknown_path(uri: &axum::http::Uri) -> Response {
    let message = format!("There is nothing at {}: the API takes its calls at POST /.", uri.path());
    error_response(&ApiError::new(StatusCode::NOT_FOUND, "InvalidPath.NotFound", message))
}

/// Every error answer is the API's JSON envelope or a console page: what the router or an
/// extractor answers on its own (a method a path does not take, a console form over the body
/// limit, …) has no body or plain text, and gets the envelope with a code for its status.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let typed = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if !(status.is_client_error() || status.is_server_error())
        || typed.is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"))
    {
        return response;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            ("MethodNotAllowed", "The method is not allowed here: the API takes its calls by GET or POST on /.")
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("RequestBodyTooLarge", "The request body is too large."),
        StatusCode::REQUEST_TIMEOUT => ("RequestTimeout", "The request did not arrive in time."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("UnsupportedMediaType", "The request's Content-Type is not one this path takes."),
        status if status.is_server_error() => ("InternalError", "A system error occurred."),
        _ => ("InvalidRequest", "The request cannot be read."),
    };
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), "an error answered outside the API's error path");
    }
    error_response(&ApiError::new(status, code, message))
}

/// `error` as the API's JSON answer, under a new request id.
fn error_response(error: &ApiError) -> Response {
    let request_id = new_request_id();
    let body = error.body(&request_id, "servicecatalog").to_string();
    json_response(error.status(), body, &request_id, error.retry_after())
}

/// A request id as the vendor writes them: an upper-case UUID.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// A JSON answer with its request id (and retry delay) in the headers.
fn json_response(status: StatusCode, body: String, request_id: &str, retry_after: Option<u64>) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-acs-request-id", id);
    }
    if let Some(seconds) = retry_after {
        headers.insert("x-acs-retry-after", HeaderValue::from(seconds));
    }
    response
}

/// A plain browser visit to `/` (GET, no action, asking for HTML): it is sent to the pages (the
/// web console); every API call names its action, so none is ever redirected.
fn browser_visit(request: &Request) -> bool {
    let headers = request.headers();
    request.method() == axum::http::Method::GET
        && !headers.contains_key("x-acs-action")
        && headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"))
        && !request.uri().query().is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "Action"))
}

/// Liveness only: no database, no authentication, whatever the request carries (the benchmarks'
/// floor sends it the API's signed requests).
async fn ping() -> axum::Json<Value> {
    axum::Json(json!({"Status": "ok"}))
}

/// Readiness as JSON: `Status` (`ok`, or `unavailable` with 503) and the database's state:
/// `Reachable` (it answers) and `WritesFailing` (writes fail for lack of space).
async fn healthz(State(state): State<SharedState>) -> Response {
    let health = state.store.health().await;
    let ok = health.reachable && !health.writes_failing;
    if !ok {
        tracing::warn!(reachable = health.reachable, writes_failing = health.writes_failing, "health check failed");
    }
    let body = json!({
        "Status": if ok { "ok" } else { "unavailable" },
        "Database": {"Dialect": state.store.dialect().name(), "Reachable": health.reachable, "WritesFailing": health.writes_failing},
    });
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, axum::Json(body)).into_response()
}

/// What the log line of a call records.
#[derive(Default)]
struct CallInfo {
    action: Option<Action>,
    principal: Option<String>,
}

/// An API call; a browser's plain visit is sent to the pages at `home`.
async fn rpc(State(state): State<SharedState>, request: Request, home: &'static str) -> Response {
    if browser_visit(&request) {
        return axum::response::Redirect::to(home).into_response();
    }
    let started = Instant::now();
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    let host_id = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("servicecatalog").to_string();
    let mut info = CallInfo::default();
    let result = call(&state, &parts.method, parts.uri.query(), &parts.headers, body, &request_id, &mut info).await;
    let action = info.action.map_or("-", Action::name);
    let principal = info.principal.as_deref().unwrap_or("-");
    let (status, code, body, retry_after) = match result {
        Ok(answer) => (StatusCode::OK, "Success".into(), answer.into_body(&request_id), None),
        Err(error) => (error.status(), error.code().to_string(), error.body(&request_id, &host_id).to_string(), error.retry_after()),
    };
    let elapsed = started.elapsed();
    let elapsed_us = elapsed.as_micros() as u64;
    state.metrics.observe_request(action, &code, elapsed);
    // Ids, action names and codes are plain words: written as they are (`%`), not quoted.
    if status.is_server_error() {
        tracing::warn!(request_id = %request_id, action = %action, principal, status = status.as_u16(), elapsed_us, code = %code, "request");
    } else {
        tracing::info!(request_id = %request_id, action = %action, principal, status = status.as_u16(), elapsed_us, code = %code, "request");
    }
    json_response(status, body, &request_id, retry_after)
}

async fn call(
    state: &SharedState,
    method: &axum::http::Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
    info: &mut CallInfo,
) -> Result<Answer, ApiError> {
    // Before the nonce batch that admits the request, which reads the catalog's change count.
    let arrived = state.store.catalog_count_mark();
    let limits = &state.config.limits;
    let body = tokio::time::timeout(limits.body_timeout, to_bytes(body, limits.max_body_bytes))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                format!("The request body did not arrive within {} seconds.", limits.body_timeout.as_secs()),
            )
        })?
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestBodyTooLarge",
                format!("The request body exceeds {} bytes.", limits.max_body_bytes),
            )
        })?;
    let is_form =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let params = RequestParams::decode(query, is_form.then_some(&body[..])).map_err(|raw| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameter.Encoding",
            format!("The request parameter {raw:?} is not valid UTF-8 once percent-decoded."),
        )
    })?;
    limits.check_parameters(&params)?;
    let header_pairs: Vec<(&str, &str)> = headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))).collect();
    let header = |name: &str| header_pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);

    let signed = SignedRequest { method: method.as_str(), params: &params, headers: &header_pairs, body: &body };
    let scheme = signed.scheme();
    let action_name = signed_name(scheme, "Action", header("x-acs-action"), params.get("Action"))?;
    let action = Action::from_name(action_name).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "InvalidAction.NotFound", format!("The specified action {action_name:?} is not valid."))
    })?;
    info.action = Some(action);
    let version = signed_name(scheme, "Version", header("x-acs-version"), params.get("Version"))?;
    if version != API_VERSION {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidVersion",
            format!("The specified version {version:?} is not valid; this server speaks {API_VERSION}."),
        ));
    }

    let principal = state.auth.authenticate(&signed, chrono::Utc::now()).await?;
    info.principal = Some(principal.name.clone());
    state.rate.check(&principal.principal_id)?;
    let params = params.merged();
    let ctx = Ctx { state, principal: &principal, arrived };
    // On the heap: the handlers' futures take kilobytes, and a future passed by value is held
    // again by each one that wraps it (the audit trail's two), which made this function's future
    // about 50 KB, copied whole twice per request when the router boxed it.
    let call = Box::pin(authorized_call(&ctx, action, &params));
    match action.effect() {
        Effect::Read => call.await,
        _ => {
            let change = audit::Change { request_id, action: action.name(), principal: &principal, params: &params };
            audit::recorded(&state.store, &change, call).await
        }
    }
}

/// The action or version (`what`) a request names, taken only from what its signature covers: V3
/// signs the `x-acs-action`/`x-acs-version` headers (authentication refuses them unsigned), V1 the
/// parameters. The other place may repeat the same value (the SDKs send both); a different one
/// is refused, since anyone on the path could have added it. An unsigned request (refused by
/// authentication) may use either.
fn signed_name<'a>(scheme: Scheme, what: &str, header: Option<&'a str>, param: Option<&'a str>) -> Result<&'a str, ApiError> {
    let header_name = format!("x-acs-{}", what.to_lowercase());
    let (covered, other) = match scheme {
        Scheme::V3 => (header, param),
        Scheme::V1 => (param, header),
        Scheme::Unsigned => (header.or(param), None),
    };
    match (covered, other) {
        (Some(covered), Some(other)) if covered != other => Err(ApiError::invalid_parameter(
            what,
            format!(
                "The {header_name} header ({:?}) and the {what} parameter ({:?}) differ; a request names one {}.",
                header.unwrap_or_default(),
                param.unwrap_or_default(),
                what.to_lowercase()
            ),
        )),
        (Some(covered), _) => Ok(covered),
        (None, _) if scheme == Scheme::V3 => Err(ApiError::missing_parameter_because(
            what,
            format!("A V3-signed request names its {} in the signed {header_name} header.", what.to_lowercase()),
        )),
        (None, _) if scheme == Scheme::V1 => Err(ApiError::missing_parameter_because(
            what,
            format!("A V1-signed request names its {} in the signed {what} parameter.", what.to_lowercase()),
        )),
        (None, _) => Err(ApiError::missing_parameter(what)),
    }
}

/// An authenticated call from authorisation to its handler (what the audit trail records).
async fn authorized_call(ctx: &Ctx<'_>, action: Action, params: &Params) -> Result<Answer, ApiError> {
    authorize(action, ctx.principal)?;
    let decoded = spec::decode(&spec::actions()[action.name()], params)?;
    ctx.state.config.limits.check_tasks(ctx.store(), action, &ctx.principal.principal_id).await?;
    dispatch(ctx, action, decoded).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_answers_the_internal_error_envelope() {
        let response = panicked(Box::new("boom"));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert!(response.headers().contains_key("x-acs-request-id"));
    }

    #[tokio::test]
    async fn bodiless_errors_get_the_envelope_and_pages_stay_as_they_are() {
        let bare = json_errors(StatusCode::METHOD_NOT_ALLOWED.into_response()).await;
        assert_eq!(
            (bare.status(), &bare.headers()[header::CONTENT_TYPE]),
            (StatusCode::METHOD_NOT_ALLOWED, &HeaderValue::from_static("application/json"))
        );
        let body = to_bytes(bare.into_body(), 4096).await.unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["Code"], "MethodNotAllowed");
        let page = json_errors((StatusCode::NOT_FOUND, axum::response::Html("<p>no</p>")).into_response()).await;
        assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    }
}
