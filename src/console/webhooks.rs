//! The webhooks page for administrators: the registered endpoints (never their secrets), a form
//! that registers one and shows its signing secret once, a delete button each, and the latest
//! deliveries with every attempt (status code, error, time), filtered by webhook and status.
//! Changes go through `audited` like the API's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::html;

use super::html::{action_button, csrf_input, error_box, page, pager, seg, status};
use super::session::{Posted, Session};
use super::{audited, checked, respond, see_other, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::SharedState;
use crate::catalog::portfolio::PortfolioListing;
use crate::catalog::wire::Paging;
use crate::model::{DeliveryStatus, EventType};
use crate::provisioning::webhook::{CreatedWebhook, DeliveryListing, NewWebhook, WebhookRef};

const PATH: &str = "/console/admin/webhooks";

pub(super) fn routes() -> Router<SharedState> {
    Router::new().route(PATH, get(webhooks).post(create)).route("/console/admin/webhooks/{id}/delete", post(delete))
}

async fn webhooks(State(state): State<SharedState>, session: Session, query: Form) -> Result<Response, PageError> {
    render(&state, &session, &query, &Form::default(), None, None).await
}

/// The request of the create form: the checked event types, the portfolio when one is chosen.
fn new_webhook(form: &Form) -> NewWebhook {
    NewWebhook {
        url: form.text("url").trim().to_string(),
        portfolio_id: form.optional("portfolio"),
        event_types: EventType::ALL.iter().filter(|t| !form.text(&format!("event-{t}")).is_empty()).map(|t| t.to_string()).collect(),
        description: form.optional("description"),
    }
}

async fn create(State(state): State<SharedState>, Posted { session, form }: Posted) -> Result<Response, PageError> {
    let webhooks = state.webhooks(&session.principal);
    let created = audited(&state, &session, Action::CreateWebhook, new_webhook(&form), |r| webhooks.create(r)).await;
    match created {
        Ok(created) => render(&state, &session, &Form::default(), &Form::default(), Some(&created), None).await,
        Err(e) if e.status() == StatusCode::FORBIDDEN => Err(e.into()),
        Err(e) => render(&state, &session, &Form::default(), &form, None, Some(&e)).await,
    }
}

async fn delete(State(state): State<SharedState>, Path(id): Path<String>, Posted { session, .. }: Posted) -> Result<Response, PageError> {
    let webhooks = state.webhooks(&session.principal);
    audited(&state, &session, Action::DeleteWebhook, WebhookRef { webhook_id: id }, |r| webhooks.delete(r)).await?;
    Ok(see_other(PATH))
}

/// The page: `query` filters the deliveries, `form` keeps a refused creation's input beside its
/// `error`, `created` is the webhook just made (its secret shown this once).
async fn render(
    state: &SharedState,
    session: &Session,
    query: &Form,
    form: &Form,
    created: Option<&CreatedWebhook>,
    error: Option<&ApiError>,
) -> Result<Response, PageError> {
    let webhooks = state.webhooks(&session.principal);
    let listed = webhooks.list().await?.webhooks;
    let portfolios = PortfolioListing { paging: Paging::new(1, 100), filters: Vec::new(), scope: None, product_id: None };
    let portfolios = state.catalog(&session.principal).list_portfolios(checked(session, Action::ListPortfolios, portfolios)?).await?;
    let page_number = query.page();
    let listing = DeliveryListing {
        webhook_id: query.optional("webhook"),
        event_id: None,
        status: query.optional("status"),
        paging: Paging::new(page_number, PAGE_SIZE),
    };
    let deliveries = webhooks.deliveries(checked(session, Action::ListWebhookDeliveries, listing)?).await?;
    let invalid = |field: &str| error.filter(|e| e.code().ends_with(field)).map(|_| "true");
    let kept: Vec<(&str, &str)> = ["webhook", "status"].iter().map(|k| (*k, query.text(k))).collect();
    let body = html! {
        @if let Some(created) = created {
            div.notice role="status" {
                p { "The webhook " code { (created.webhook_id) } " was created. Check each delivery's "
                    code { "X-ServiceCatalog-Signature" } " with this secret; " strong { "it is shown only now" } "." }
                dl.pairs #new-secret { dt { "Signing secret" } dd { code { (created.secret) } } }
            }
        }
        @if listed.is_empty() { p { "No webhook is registered." } }
        @else {
            table {
                thead { tr { th { "Webhook" } th { "URL" } th { "Portfolio" } th { "Events" } th { "Description" } th { "Created" } th { span.visually-hidden { "Action" } } } }
                tbody {
                    @for w in &listed {
                        tr {
                            td { a href={ (PATH) "?webhook=" (seg(&w.webhook_id)) } { code { (w.webhook_id) } } }
                            td { code { (w.url) } }
                            td { @if w.portfolio_id.is_empty() { "Every portfolio" } @else { a href={ "/console/admin/portfolios/" (seg(&w.portfolio_id)) } { (w.portfolio_id) } } }
                            td { @if w.event_types.is_empty() { "Every event" } @else { (w.event_types.join(", ")) } }
                            td { (w.description) }
                            td { (w.create_time) }
                            td { (action_button(session, &format!("{PATH}/{}/delete", seg(&w.webhook_id)), &format!("Delete {}", w.webhook_id), Some("Delete this webhook and its deliveries?"))) }
                        }
                    }
                }
            }
        }
        h2 { "Register a webhook" }
        form.stack method="post" action=(PATH) {
            (csrf_input(session))
            label for="url" { "URL (required)" }
            input id="url" name="url" type="url" required value=(form.text("url")) aria-describedby="url-hint" aria-invalid=[invalid(".Url")];
            small id="url-hint" { "An " code { "http://" } " or " code { "https://" } " address the operator allows (" code { "--webhook-targets" } "). Each delivery is a signed JSON POST." }
            label for="portfolio" { "Portfolio" }
            select id="portfolio" name="portfolio" aria-invalid=[invalid(".Portfolio")] {
                option value="" { "Every portfolio" }
                @for p in &portfolios.portfolio_details {
                    option value=(p.portfolio_id) selected[form.text("portfolio") == p.portfolio_id.as_str()] { (p.portfolio_name) " (" (p.portfolio_id) ")" }
                }
            }
            fieldset aria-invalid=[invalid(".EventTypes")] {
                legend { "Events (none checked: every event)" }
                @for t in EventType::ALL {
                    @let name = format!("event-{t}");
                    label.check { input type="checkbox" name=(name) value="on" checked[!form.text(&name).is_empty()]; " " (t) }
                }
            }
            label for="description" { "Description" }
            input id="description" name="description" value=(form.text("description")) aria-invalid=[invalid(".Description")];
            (error_box(error.map(ApiError::message)))
            button type="submit" { "Register webhook" }
        }
        h2 #deliveries { "Deliveries" }
        form.filter method="get" action=(PATH) role="search" {
            label for="webhook" { "Webhook" }
            select id="webhook" name="webhook" {
                option value="" { "Any" }
                @for w in &listed { option value=(w.webhook_id) selected[query.text("webhook") == w.webhook_id.as_str()] { (w.webhook_id) } }
            }
            label for="status" { "Status" }
            select id="status" name="status" {
                option value="" { "Any" }
                @for s in DeliveryStatus::ALL { option value=(s) selected[query.text("status") == s.as_str()] { (s) } }
            }
            button type="submit" { "Filter" }
        }
        @if deliveries.deliveries.is_empty() { p { "No delivery matches." } }
        @else {
            table.deliveries {
                thead { tr { th { "Created (UTC)" } th { "Event" } th { "Webhook" } th { "Status" } th { "Attempts" } th { "Payload" } } }
                tbody {
                    @for d in &deliveries.deliveries {
                        tr {
                            td { (d.create_time) }
                            td { (d.event_type) br; code { (d.event_id) } }
                            td { code { (d.webhook_id) } }
                            td { (status(d.status.as_str())) @if let Some(next) = &d.next_attempt_time { br; small { "next " (next) } } }
                            td {
                                @if d.attempts.is_empty() { "none yet" }
                                ol.attempts {
                                    @for a in &d.attempts {
                                        li { (a.time) " · " @if a.status_code == 0 { "no answer" } @else { "HTTP " (a.status_code) } " · " (a.duration_ms) " ms"
                                            @if !a.error.is_empty() { " · " (a.error) } }
                                    }
                                }
                            }
                            td { details { summary { "Show" } pre { (serde_json::to_string_pretty(&d.payload).unwrap_or_default()) } } }
                        }
                    }
                }
            }
        }
        (pager(PATH, &kept, page_number, PAGE_SIZE, deliveries.paged.total_count))
    };
    let code = error.map_or(StatusCode::OK, ApiError::status);
    Ok(respond(code, page("Webhooks", Some(session), body)))
}
