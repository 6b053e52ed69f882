//! The upgrade campaigns pages for administrators: the campaigns with their status and summary, a
//! form that creates one (product, target and source versions, selection, waves), and one
//! campaign's page with its summary (what its updates add, change, replace and destroy; which
//! destroy), its rows, and the buttons that start, pause, resume and cancel it. Changes go through
//! `audited` like the API's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use super::catalog::tags_from_form;
use super::html::{action_button, csrf_input, error_box, page, pager, seg, status};
use super::session::{Posted, Session};
use super::{audited, audited_unless, checked, respond, see_other, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::SharedState;
use crate::catalog::wire::Paging;
use crate::model::CampaignStatus;
use crate::provisioning::campaign::{CampaignDetail, CampaignIdRequest, CampaignSummary, CreateCampaign, ListCampaigns};

const PATH: &str = "/console/admin/campaigns";

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route(PATH, get(campaigns).post(create))
        .route("/console/admin/campaigns/{id}", get(detail))
        .route("/console/admin/campaigns/{id}/{change}", post(change))
}

async fn campaigns(State(state): State<SharedState>, session: Session, query: Form) -> Result<Response, PageError> {
    render(&state, &session, query.page(), &Form::default(), None).await
}

/// The identifiers of a comma- or space-separated field.
fn ids(form: &Form, name: &str) -> Vec<String> {
    form.text(name).split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A count field: absent when empty, refused by the API's checks when not a number.
fn number(form: &Form, name: &str) -> Result<Option<i64>, ApiError> {
    form.optional(name)
        .map(|text| text.trim().parse().map_err(|_| ApiError::invalid_parameter(name, format!("The parameter {name} must be a number."))))
        .transpose()
}

async fn create(State(state): State<SharedState>, Posted { session, form }: Posted) -> Result<Response, PageError> {
    let (tags, malformed) = tags_from_form(&form);
    let counts = (number(&form, "WaveSize"), number(&form, "Parallelism"), number(&form, "FailureThreshold"));
    let (wave_size, parallelism, failure_threshold) = match counts {
        (Ok(w), Ok(p), Ok(f)) => (w, p, f),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return render(&state, &session, 1, &form, Some(&e)).await,
    };
    let request = CreateCampaign {
        product_id: form.text("product").trim().to_string(),
        target_product_version_id: form.text("target").trim().to_string(),
        source_product_version_ids: ids(&form, "sources"),
        portfolio_ids: ids(&form, "portfolios"),
        owner_ids: ids(&form, "owners"),
        tags,
        wave_size,
        parallelism,
        failure_threshold,
    };
    let provisioner = state.provisioner();
    let created = audited_unless(&state, &session, Action::CreateUpgradeCampaign, request, malformed, |r| {
        provisioner.create_campaign(&session.principal, r)
    })
    .await;
    match created {
        Ok(created) => Ok(see_other(&format!("{PATH}/{}", seg(&created.campaign_id)))),
        Err(e) if e.status() == StatusCode::FORBIDDEN => Err(e.into()),
        Err(e) => render(&state, &session, 1, &form, Some(&e)).await,
    }
}

/// One line of a summary: how many rows are in each status, and what the updates do.
fn summary_line(summary: &CampaignSummary) -> Markup {
    html! {
        (summary.selected) " selected"
        @for (status, count) in &summary.statuses { " · " (count) " " (status) }
        br;
        small { "+" (summary.add) " add · ~" (summary.change) " change · ±" (summary.replace) " replace · −" (summary.destroy) " destroy" }
    }
}

/// The list and the create form (`form` keeps a refused creation's input beside its `error`).
async fn render(
    state: &SharedState,
    session: &Session,
    page_number: i64,
    form: &Form,
    error: Option<&ApiError>,
) -> Result<Response, PageError> {
    let listing = ListCampaigns { paging: Paging::new(page_number, PAGE_SIZE) };
    let listed = state.provisioner().list_campaigns(checked(session, Action::ListUpgradeCampaigns, listing)?).await?;
    let invalid = |field: &str| error.filter(|e| e.code().ends_with(field)).map(|_| "true");
    let body = html! {
        p { "A campaign previews the update of a product's provisioned products to a version, then, once started, upgrades them in waves on behalf of their owners. Pinned ones are skipped. See the upgrades documentation." }
        @if listed.upgrade_campaigns.is_empty() { p { "No upgrade campaign yet." } }
        @else {
            table.campaigns {
                thead { tr { th { "Campaign" } th { "Product" } th { "Target version" } th { "Status" } th { "Rows" } th { "Created (UTC)" } } }
                tbody {
                    @for c in &listed.upgrade_campaigns {
                        tr {
                            td { a href={ (PATH) "/" (seg(&c.campaign_id)) } { code { (c.campaign_id) } } }
                            td { a href={ "/console/admin/products/" (seg(&c.product_id)) } { (c.product_id) } }
                            td { code { (c.target_product_version_id) } }
                            td { (status(c.status.as_str())) }
                            td { (summary_line(&c.summary)) }
                            td { (c.create_time) }
                        }
                    }
                }
            }
        }
        (pager(PATH, &[], page_number, PAGE_SIZE, listed.page.total_count))
        h2 { "Create a campaign" }
        form.stack method="post" action=(PATH) {
            (csrf_input(session))
            label for="product" { "Product id (required)" }
            input id="product" name="product" required value=(form.text("product")) aria-invalid=[invalid(".Product")];
            label for="target" { "Target version id (required)" }
            input id="target" name="target" required value=(form.text("target")) aria-invalid=[invalid(".ProductVersion")];
            label for="sources" { "Source version ids" }
            input id="sources" name="sources" value=(form.text("sources")) aria-describedby="sources-hint" aria-invalid=[invalid(".SourceProductVersionIds")];
            small id="sources-hint" { "Separated by commas. Empty: every version created before the target." }
            label for="portfolios" { "Only through portfolios" }
            input id="portfolios" name="portfolios" value=(form.text("portfolios")) aria-describedby="portfolios-hint";
            small id="portfolios-hint" { "Portfolio ids separated by commas. Empty: any." }
            label for="owners" { "Only of owners" }
            input id="owners" name="owners" value=(form.text("owners")) aria-describedby="owners-hint";
            small id="owners-hint" { "Principal ids separated by commas. Empty: anyone's." }
            label for="tags" { "Only with tags" }
            textarea id="tags" name="tags" rows="2" aria-describedby="tags-hint" aria-invalid=[invalid(".Tags")] { (form.text("tags")) }
            small id="tags-hint" { "One key=value a line, each carried by the last successful launch or update." }
            label for="WaveSize" { "Wave size (default 10)" }
            input id="WaveSize" name="WaveSize" inputmode="numeric" value=(form.text("WaveSize")) aria-invalid=[invalid(".WaveSize")];
            label for="Parallelism" { "Parallelism (default 5)" }
            input id="Parallelism" name="Parallelism" inputmode="numeric" value=(form.text("Parallelism")) aria-invalid=[invalid(".Parallelism")];
            label for="FailureThreshold" { "Failures that stop it (default 1)" }
            input id="FailureThreshold" name="FailureThreshold" inputmode="numeric" value=(form.text("FailureThreshold")) aria-invalid=[invalid(".FailureThreshold")];
            (error_box(error.map(ApiError::message)))
            button type="submit" { "Create and preview" }
        }
    };
    let code = error.map_or(StatusCode::OK, ApiError::status);
    Ok(respond(code, page("Upgrade campaigns", Some(session), body)))
}

/// The buttons of the changes `campaign`'s status allows.
fn buttons(session: &Session, campaign: &CampaignDetail) -> Markup {
    let path = format!("{PATH}/{}", seg(&campaign.campaign_id));
    let s = campaign.status;
    html! {
        div.buttons {
            @if s == CampaignStatus::Planned { (action_button(session, &format!("{path}/start"), "Start", Some("Start upgrading these provisioned products?"))) }
            @if s == CampaignStatus::Running { (action_button(session, &format!("{path}/pause"), "Pause", None)) }
            @if matches!(s, CampaignStatus::Paused | CampaignStatus::Stopped) { (action_button(session, &format!("{path}/resume"), "Resume", None)) }
            @if !matches!(s, CampaignStatus::Completed | CampaignStatus::Canceled) {
                (action_button(session, &format!("{path}/cancel"), "Cancel campaign", Some("Cancel this campaign? Updates not started never will.")))
            }
        }
    }
}

async fn detail(State(state): State<SharedState>, Path(id): Path<String>, session: Session) -> Result<Response, PageError> {
    let request = checked(&session, Action::GetUpgradeCampaign, CampaignIdRequest { campaign_id: id })?;
    let campaign = state.provisioner().get_campaign(request).await?.upgrade_campaign;
    let summary = &campaign.summary;
    let body = html! {
        dl.facts {
            dt { "Status" } dd.campaign-status { (status(campaign.status.as_str())) }
            dt { "Product" } dd { a href={ "/console/admin/products/" (seg(&campaign.product_id)) } { (campaign.product_id) } }
            dt { "Target version" } dd { code { (campaign.target_product_version_id) } }
            dt { "From versions" } dd { (campaign.source_product_version_ids.join(", ")) }
            dt { "Waves" } dd { (campaign.wave_size) " per wave, " (campaign.parallelism) " at once; stops at " (campaign.failure_threshold) " failure(s) (" (summary.failures) " since started or resumed)" }
            dt { "Summary" } dd.summary { (summary_line(summary)) }
            @if !summary.destroying.is_empty() {
                dt { "Would destroy or replace" } dd.destroying { @for id in &summary.destroying { code { (id) } " " } }
            }
        }
        (buttons(&session, &campaign))
        table.campaign-items {
            thead { tr { th { "Provisioned product" } th { "Owner" } th { "From" } th { "Wave" } th { "Status" } th { "Plan" } th { "Task" } th { "Changes" } } }
            tbody {
                @for item in campaign.items.iter().flatten() {
                    tr {
                        td { (item.provisioned_product_name) br; small { code { (item.provisioned_product_id) } } }
                        td { code { (item.owner_principal_id) } }
                        td { code { (item.source_product_version_id) } }
                        td { @if let Some(wave) = item.wave { (wave) } }
                        td { (status(item.status.as_str())) @if !item.message.is_empty() { br; small { (item.message) } } }
                        td { @if let Some(plan) = &item.plan_id { a href={ "/console/plans/" (seg(plan)) } { code { (plan) } } } }
                        td { @if let Some(task) = &item.task_id { a href={ "/console/tasks/" (seg(task)) } { code { (task) } } } }
                        td { "+" (item.add) " ~" (item.change) " ±" (item.replace) " −" (item.destroy) }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, page(&format!("Upgrade campaign {}", campaign.campaign_id), Some(&session), body)))
}

async fn change(
    State(state): State<SharedState>,
    Path((id, change)): Path<(String, String)>,
    Posted { session, .. }: Posted,
) -> Result<Response, PageError> {
    let provisioner = state.provisioner();
    let request = CampaignIdRequest { campaign_id: id.clone() };
    match change.as_str() {
        "start" => audited(&state, &session, Action::StartUpgradeCampaign, request, |r| provisioner.start_campaign(r)).await?,
        "pause" => audited(&state, &session, Action::PauseUpgradeCampaign, request, |r| provisioner.pause_campaign(r)).await?,
        "resume" => audited(&state, &session, Action::ResumeUpgradeCampaign, request, |r| provisioner.resume_campaign(r)).await?,
        "cancel" => audited(&state, &session, Action::CancelUpgradeCampaign, request, |r| provisioner.cancel_campaign(r)).await?,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "InvalidAction.NotFound", "No such change of a campaign.").into()),
    };
    Ok(see_other(&format!("{PATH}/{}", seg(&id))))
}
