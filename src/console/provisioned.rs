//! Provisioned products: the caller's own (administrators may list everyone's), one product's
//! status, outputs and tasks, and the update, terminate, expiry and update policy changes.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use super::catalog::{change_fields, parameters_from_form, policy_from_form, policy_select, tags_from_form, version_detail, versions};
use super::html::{action_button, csrf_input, error_box, filter_form, page, pager, seg, status};
use super::identity::principal_names;
use super::session::{Posted, Session};
use super::{audited_unless, authorised, changed, respond, see_other, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::{format_time, SharedState};
use crate::catalog::parameters::ParameterConstraint;
use crate::catalog::version::VersionDetail;
use crate::catalog::wire::Paging;
use crate::model::{english_region_name, ProvisionedProductStatus};
use crate::protocol::params::Params;
use crate::provisioning::drift::{DetectDrift, DriftCheckDetail, ListDriftChecks};
use crate::provisioning::expiry::UpdateExpiry;
use crate::provisioning::queue::Update;
use crate::provisioning::update_policy::SetUpdatePolicy;
use crate::provisioning::{stored, Output};
use crate::store::product::DEPRECATED;
use crate::store::provisioning::{ProvisionedProduct, ProvisionedProductQuery};
use crate::store::{Page, SortOrder};

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console/provisioned", get(index))
        .route("/console/provisioned/{id}", get(detail))
        .route("/console/provisioned/{id}/update", get(update_form).post(update))
        .route("/console/provisioned/{id}/expiry", post(update_expiry))
        .route("/console/provisioned/{id}/policy", post(update_policy))
        .route("/console/provisioned/{id}/{operation}", post(queue_task))
}

/// The first page of a console list, or the one asked for.
pub(super) fn page_of(number: i64) -> Page {
    Page { number, size: PAGE_SIZE }
}

async fn index(State(state): State<SharedState>, session: Session, query: Form) -> Result<Response, PageError> {
    let (q, page_number) = (query.text("q"), query.page());
    let account = query.get("scope") == Some("account");
    let full_text = (!q.is_empty()).then(|| q.to_string());
    // `deprecated=true` (and `product=ID`): those running a Deprecated version (of that product).
    let deprecated = query.get("deprecated") == Some("true");
    let product = query.text("product");
    let filters = ProvisionedProductQuery {
        full_text,
        deprecated: deprecated.then_some(true),
        product_id: (!product.is_empty()).then(|| product.to_string()),
        ..Default::default()
    };
    let (products, total) = state.provisioner().list(&session.principal, account, filters, SortOrder::Desc, page_of(page_number)).await?;
    let scope = if account { "account" } else { "" };
    let only = if deprecated { "true" } else { "" };
    let owners = if account { principal_names(&state).await? } else { HashMap::new() };
    let kept = [("scope", scope), ("deprecated", only), ("product", product)];
    let body = html! {
        (filter_form("/console/provisioned", "Search", q, &kept))
        (table(&products, account.then_some(&owners)))
        (pager("/console/provisioned", &[("q", q), ("scope", scope), ("deprecated", only), ("product", product)], page_number, PAGE_SIZE, total))
    };
    let title = match (account, deprecated) {
        (true, true) => "All provisioned products on Deprecated versions",
        (true, false) => "All provisioned products",
        (false, true) => "My provisioned products on Deprecated versions",
        (false, false) => "My provisioned products",
    };
    Ok(respond(StatusCode::OK, page(title, Some(&session), body)))
}

/// The provisioned products; `owners` (names by principal id) adds an Owner column.
fn table(products: &[ProvisionedProduct], owners: Option<&HashMap<String, String>>) -> Markup {
    let with_owner = owners.is_some();
    html! {
        @if products.is_empty() { p { "Nothing is provisioned yet. " a href="/console/catalog" { "Launch a product from the catalog." } } }
        @else {
            table {
                thead { tr { th { "Name" } th { "Product" } th { "Version" } th { "Status" } @if with_owner { th { "Owner" } } th { "Created" } } }
                tbody {
                    @for p in products {
                        tr {
                            td { (link_to(p)) }
                            td { (p.product_name) }
                            td { (p.product_version_name) (badges(p)) }
                            td { (status(p.status.as_str())) }
                            @if let Some(owners) = owners { td { (owners.get(&p.owner_principal_id).unwrap_or(&p.owner_principal_id)) } }
                            td { (format_time(p.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// A link to the page of `pp`, by its name.
fn link_to(pp: &ProvisionedProduct) -> Markup {
    html! { a href={ "/console/provisioned/" (seg(&pp.provisioned_product_id)) } { (pp.provisioned_product_name) } }
}

/// The badges of a provisioned product running a Deprecated version, or whose upstream outputs
/// changed since its parameters read them.
fn badges(pp: &ProvisionedProduct) -> Markup {
    html! {
        @if pp.product_version_guidance == DEPRECATED { " " (status("Deprecated")) }
        @if pp.stale_dependencies > 0 { " " span title="An output its parameters read changed since" { (status("Stale")) } }
    }
}

/// A definition list of a task's outputs, or a plan's planned ones.
pub(super) fn outputs(outputs: &[Output]) -> Markup {
    html! {
        @if outputs.is_empty() { p.muted { "No outputs." } }
        @else {
            dl.outputs {
                @for o in outputs {
                    dt { (o.output_key) }
                    dd { code { (o.output_value.as_deref().unwrap_or_default()) } @if !o.description.is_empty() { br; small { (o.description) } } }
                }
            }
        }
    }
}

async fn detail(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    let provisioner = state.provisioner();
    let pp = provisioner.visible(&session.principal, &id).await?;
    let (tasks, _) = provisioner.tasks(&session.principal, &id, SortOrder::Desc, page_of(1)).await?;
    let outputs_task = match &pp.last_successful_provisioning_task_id {
        Some(task_id) => provisioner.task(&session.principal, task_id).await?,
        None => None,
    };
    let listing = ListDriftChecks { provisioned_product_id: id.clone(), paging: Paging::new(1, DRIFT_CHECKS_SHOWN) };
    let drift = provisioner.drift_checks(&session.principal, listing).await?.drift_checks;
    let changing = pp.status == ProvisionedProductStatus::UnderChange;
    let (upstreams, dependents) = provisioner.dependencies(&session.principal, &pp).await?;
    let path = format!("/console/provisioned/{}", seg(&id));
    let body = html! {
        dl.facts {
            dt { "Status" } dd { (status(pp.status.as_str())) }
            @if pp.status == ProvisionedProductStatus::Error && !pp.status_message.is_empty() { dt { "Message" } dd { (pp.status_message) } }
            dt { "Product" } dd.version { (pp.product_name) " " (pp.product_version_name) (badges(&pp)) }
            @if !upstreams.is_empty() {
                dt { "Reads outputs of" }
                dd.upstreams { @for (i, u) in upstreams.iter().enumerate() { @if i > 0 { ", " } code { (u.upstream_id) } "." (u.output_key) } }
            }
            @if !dependents.is_empty() {
                dt { "Read by" }
                dd.dependents { @for (i, d) in dependents.iter().enumerate() { @if i > 0 { ", " } (link_to(d)) } }
            }
            dt { "Region" } dd { (english_region_name(&pp.stack_region_id)) " (" (pp.stack_region_id) ")" }
            dt { "Id" } dd { code { (id) } }
            dt { "Created" } dd { (format_time(pp.created_at)) }
            @if let Some(task) = &pp.last_task_id { dt { "Last task" } dd { a href={ "/console/tasks/" (seg(task)) } { (task) } } }
            dt { "Drift" } dd.drift-status {
                (status(pp.drift_status.as_str()))
                @if let Some(at) = pp.drift_checked_at { " checked " (format_time(at)) }
            }
            dt { "Expires" } dd.expiry { @if let Some(at) = pp.expires_at { (format_time(at)) } @else { "never" } }
            dt { "Update policy" } dd.update-policy { (pp.update_policy.as_str()) }
        }
        @if !changing {
            div.buttons {
                a.button href={ (path) "/update" } { "Update" }
                (action_button(&session, &format!("{path}/terminate"), "Terminate", Some("Terminate this provisioned product and destroy its resources?")))
                (action_button(&session, &format!("{path}/drift"), "Check drift", None))
            }
            form.inline method="post" action={ (path) "/expiry" } {
                (csrf_input(&session))
                label for="expiry" { "Expiry (UTC, like 2026-01-31T12:00:00Z; empty: none)" }
                input id="expiry" name="expiry" value=(pp.expires_at.map(format_time).unwrap_or_default());
                button type="submit" { "Set expiry" }
            }
        } @else { p.muted { "A change is under way; update and terminate are possible once it ends." } }
        form.inline method="post" action={ (path) "/policy" } {
            (csrf_input(&session))
            (policy_select(pp.update_policy))
            button type="submit" { "Set policy" }
        }
        h2 { "Outputs" }
        @if let Some(record) = &outputs_task { (outputs(&stored(&record.task.outputs))) } @else { p.muted { "No successful launch yet." } }
        h2 { "Drift checks" }
        (drift_checks(&drift))
        h2 { "Tasks" }
        table {
            thead { tr { th { "Task" } th { "Type" } th { "Status" } th { "Created" } } }
            tbody {
                @for t in &tasks {
                    tr {
                        td { a href={ "/console/tasks/" (seg(&t.task_id)) } { (t.task_id) } }
                        td { (t.task_type.as_str()) }
                        td { (status(t.status.as_str())) }
                        td { (format_time(t.created_at)) }
                    }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, page(&pp.provisioned_product_name, Some(&session), body)))
}

/// Drift checks a provisioned product's page shows (the newest).
const DRIFT_CHECKS_SHOWN: i64 = 5;

/// The newest drift checks, each with the resources it found changed and the attributes that changed.
fn drift_checks(checks: &[DriftCheckDetail]) -> Markup {
    html! {
        @if checks.is_empty() { p.muted { "Never checked. A check is a refresh-only plan: it changes nothing." } } @else {
            table.drift {
                thead { tr { th { "Check" } th { "Drift" } th { "Checked" } th { "Changed outside Terraform" } th { "Remediation" } } }
                tbody {
                    @for c in checks {
                        tr {
                            td { a href={ "/console/tasks/" (seg(&c.task_id)) } { (c.task_id) } }
                            td { (status(c.drift_status.as_str())) }
                            td { (c.checked_time.as_deref().unwrap_or("running")) }
                            td {
                                @for r in &c.drifted_resources {
                                    div.drifted { code { (r.address) } " " (r.action) ": " (r.changed_attributes.join(", ")) }
                                }
                                @if !c.message.is_empty() { div.muted { (c.message) } }
                            }
                            td {
                                (c.remediation.as_str())
                                @if let Some(plan) = &c.remediation_plan_id { " " a href={ "/console/plans/" (seg(plan)) } { (plan) } }
                                @if let Some(task) = &c.remediation_task_id { " " a href={ "/console/tasks/" (seg(task)) } { (task) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The provisioned product, its product's versions, the chosen version and the parameters in force.
struct UpdateContext {
    pp: ProvisionedProduct,
    versions: Vec<VersionDetail>,
    version: VersionDetail,
    /// The version's parameters, narrowed by the Template constraints of the product's portfolio.
    parameters: Vec<ParameterConstraint>,
    current: Vec<(String, String)>,
}

async fn update_context(state: &SharedState, session: &Session, id: &str, version_id: &str) -> Result<UpdateContext, PageError> {
    let (provisioner, catalog) = (state.provisioner(), state.catalog(&session.principal));
    let pp = provisioner.visible(&session.principal, id).await?;
    let versions = versions(&catalog, session, &pp.product_id).await?;
    let version = version_detail(&catalog, session, if version_id.is_empty() { &pp.product_version_id } else { version_id }.into()).await?;
    let current = match &pp.last_provisioning_task_id {
        Some(task_id) => match provisioner.task(&session.principal, task_id).await? {
            Some(record) => provisioner.masked(&record.task.parameters_sealed, &record.task.sensitive_parameters),
            None => return Err(crate::api::task_not_found().into()),
        },
        None => Vec::new(),
    };
    let current = current.into_iter().map(|p| (p.parameter_key, p.parameter_value)).collect();
    let parameters = version.parameter_constraints.clone().unwrap_or_default();
    let parameters = provisioner.constrained(&pp.product_id, &pp.portfolio_id, parameters).await?;
    Ok(UpdateContext { pp, versions, version, parameters, current })
}

async fn update_form(
    State(state): State<SharedState>,
    session: Session,
    Path(id): Path<String>,
    query: Form,
) -> Result<Response, PageError> {
    let context = update_context(&state, &session, &id, query.text("version")).await?;
    Ok(render_update(&session, &id, &context, &Form::default(), None))
}

async fn update(State(state): State<SharedState>, Path(id): Path<String>, Posted { session, form }: Posted) -> Result<Response, PageError> {
    let context = update_context(&state, &session, &id, form.text("version")).await?;
    let queued = async {
        let (tags, malformed) = tags_from_form(&form);
        let update = Update {
            provisioned_product_id: id.clone(),
            product_id: context.pp.product_id.clone(),
            product_version_id: context.version.product_version_id.clone(),
            portfolio_id: None,
            parameters: parameters_from_form(&form),
            tags,
        };
        let provisioner = state.provisioner();
        let update_it = |r| provisioner.update(&session.principal, r);
        let queued = audited_unless(&state, &session, Action::UpdateProvisionedProduct, update, malformed, update_it).await?;
        Ok(format!("/console/tasks/{}", seg(&queued.task_id)))
    };
    changed(queued.await, |e| render_update(&session, &id, &context, &form, Some(e)))
}

fn render_update(session: &Session, id: &str, context: &UpdateContext, form: &Form, error: Option<&ApiError>) -> Response {
    let chosen = &context.version.product_version_id;
    let path = format!("/console/provisioned/{}/update", seg(id));
    let body = html! {
        (error_box(error.map(ApiError::message)))
        form.filter method="get" action=(path) {
            label for="version" { "Product version" }
            select id="version" name="version" {
                @for v in &context.versions {
                    option value=(v.product_version_id) selected[&v.product_version_id == chosen] { (v.product_version_name) " (" (v.guidance) ")" }
                }
            }
            button type="submit" { "Choose" }
        }
        form.stack method="post" action=(path) {
            (csrf_input(session))
            input type="hidden" name="version" value=(chosen);
            p { "Empty fields keep the value in force." }
            (change_fields(&context.parameters, form, &context.current, error))
            button type="submit" { "Update" }
        }
    };
    let status = error.map_or(StatusCode::OK, ApiError::status);
    respond(status, page(&format!("Update {}", context.pp.provisioned_product_name), Some(session), body))
}

/// A change that queues a task of the provisioned product `id` (`terminate`, `drift`: a drift
/// check), then the task's page.
async fn queue_task(
    State(state): State<SharedState>,
    Path((id, operation)): Path<(String, String)>,
    Posted { session, .. }: Posted,
) -> Result<Response, PageError> {
    let (provisioner, principal) = (state.provisioner(), &session.principal);
    let params = Params::from_pairs([("ProvisionedProductId", id.as_str())]);
    let queued = match operation.as_str() {
        "terminate" => {
            let terminate = || provisioner.terminate(principal, &id, false);
            authorised(&state, &session, Action::TerminateProvisionedProduct, &params, terminate).await?
        }
        "drift" => {
            let detect = || provisioner.detect(principal, DetectDrift { provisioned_product_id: id.clone() });
            authorised(&state, &session, Action::DetectProvisionedProductDrift, &params, detect).await?
        }
        _ => return Err(PageError::not_found()),
    };
    Ok(see_other(&format!("/console/tasks/{}", seg(&queued.task_id))))
}

async fn update_expiry(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Posted { session, form }: Posted,
) -> Result<Response, PageError> {
    let expiry_time = form.optional("expiry");
    let params = Params::from_pairs([("ProvisionedProductId", id.as_str()), ("ExpiryTime", expiry_time.as_deref().unwrap_or(""))]);
    let (provisioner, request) = (state.provisioner(), UpdateExpiry { provisioned_product_id: id.clone(), expiry_time });
    let update = || provisioner.update_expiry(&session.principal, request);
    authorised(&state, &session, Action::UpdateProvisionedProductExpiry, &params, update).await?;
    Ok(see_other(&format!("/console/provisioned/{}", seg(&id))))
}

async fn update_policy(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Posted { session, form }: Posted,
) -> Result<Response, PageError> {
    let (policy, malformed) = policy_from_form(&form);
    let params = Params::from_pairs([("ProvisionedProductId", id.as_str()), ("UpdatePolicy", form.text("policy"))]);
    let update = || async {
        if let Some(refusal) = malformed {
            return Err(refusal);
        }
        let policy = policy.ok_or_else(|| ApiError::missing_parameter("UpdatePolicy"))?;
        let request = SetUpdatePolicy { provisioned_product_id: id.clone(), update_policy: policy };
        Ok(state.provisioner().update_policy(&session.principal, request).await?)
    };
    authorised(&state, &session, Action::UpdateProvisionedProductPolicy, &params, update).await?;
    Ok(see_other(&format!("/console/provisioned/{}", seg(&id))))
}
