//! Signing in with an AccessKey pair (the same principals as the API), throttled per AccessKey ID
//! and client address (`api::sign_in`), and signing out.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::html;

use super::html::{error_box, page};
use super::session::{self, Posted};
use super::{respond, Form, PageError};
use crate::api::sign_in::Throttled;
use crate::api::SharedState;
use crate::store::now_ms;

fn render(access_key_id: &str, error: Option<&str>) -> maud::Markup {
    page(
        "Sign in",
        None,
        html! {
            p { "Sign in with your AccessKey pair: the same key you use with the API, the SDK or the command line." }
            (error_box(error))
            form.stack method="post" action="/console/sign-in" {
                label for="access_key_id" { "AccessKey ID" }
                input id="access_key_id" name="access_key_id" required autocomplete="username" value=(access_key_id) autofocus;
                label for="access_key_secret" { "AccessKey secret" }
                input id="access_key_secret" name="access_key_secret" type="password" required autocomplete="current-password";
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub(super) async fn form() -> Response {
    respond(StatusCode::OK, render("", None))
}

pub(super) async fn submit(
    State(state): State<SharedState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    let id = form.text("access_key_id").trim();
    let address = peer.map(|Extension(ConnectInfo(peer))| peer.ip());
    let now = Instant::now();
    // Refused before the secret is looked at: while throttled, guessing learns nothing.
    if let Err(throttled) = state.sign_in.check(id, address, now) {
        tracing::info!(access_key_id = id, ?address, ?throttled, "console sign-in throttled");
        let why = match throttled {
            Throttled::AccessKey(_) => "Too many failed sign-ins with this AccessKey ID",
            Throttled::Address(_) => "Too many failed sign-ins from your address",
        };
        let wait = throttled.retry_after();
        let message = format!("{why}: try again in {wait} second{}.", if wait == 1 { "" } else { "s" });
        let mut response = respond(StatusCode::TOO_MANY_REQUESTS, render(id, Some(&message)));
        response.headers_mut().insert(header::RETRY_AFTER, wait.into());
        return Ok(response);
    }
    let principal = state.auth.verify_key_pair(id, form.text("access_key_secret")).await?;
    if principal.is_none() {
        state.sign_in.failed(id, address, now);
        tracing::info!(access_key_id = id, ?address, "console sign-in refused");
        return Ok(respond(StatusCode::UNAUTHORIZED, render(id, Some("The AccessKey ID or secret is not valid."))));
    }
    state.sign_in.succeeded(id);
    let now = now_ms();
    let token = session::new_token();
    state.store.purge_console_sessions(now).await?;
    state.store.create_console_session(&session::token_hash(&token), id, now, session::expires_at(now)).await?;
    let secure = headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    Ok(([(header::SET_COOKIE, session::set_cookie(&token, secure))], super::see_other("/console/catalog")).into_response())
}

pub(super) async fn sign_out(State(state): State<SharedState>, Posted { session, .. }: Posted) -> Result<Response, PageError> {
    state.store.delete_console_session(&session.hash()).await?;
    Ok(([(header::SET_COOKIE, session::clear_cookie())], super::see_other("/console/sign-in")).into_response())
}
