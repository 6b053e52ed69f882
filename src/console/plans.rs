//! Plans: the caller's plans, an approver's inbox, and one plan's preview (resource changes,
//! planned outputs) with the moves its status allows: execute, cancel, delete, approve, reject.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use serde::Serialize;

use super::html::{action_button, csrf_input, page, pager, seg, status};
use super::provisioned::{outputs, page_of};
use super::session::{Posted, Session};
use super::tasks::{is_live, product_link};
use super::{authorised, respond, see_other, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::error::ApiError;
use crate::api::{format_time, SharedState};
use crate::model::PlanStatus::{self, *};
use crate::model::{OperationType, ProvisionedProductId, TaskId};
use crate::protocol::params::Params;
use crate::provisioning::plan::{PlanFilter, PlanScope, ResourceChange};
use crate::provisioning::stored;
use crate::store::SortOrder;

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console/plans", get(index))
        .route("/console/plans/{id}", get(plan))
        .route("/console/plans/{id}/{operation}", post(operate))
}

async fn index(State(state): State<SharedState>, session: Session, query: Form) -> Result<Response, PageError> {
    let inbox = query.get("view") == Some("inbox");
    let page_number = query.page();
    let filter = PlanFilter { scope: if inbox { PlanScope::ReceivedRequests } else { PlanScope::Own }, ..PlanFilter::default() };
    let (plans, total) = state.provisioner().plans(&session.principal, filter, SortOrder::Desc, page_of(page_number)).await?;
    let view = if inbox { "inbox" } else { "" };
    let body = html! {
        nav.tabs aria-label="Plan views" {
            a href="/console/plans" aria-current=[(!inbox).then_some("page")] { "My plans" }
            a href="/console/plans?view=inbox" aria-current=[inbox.then_some("page")] { "Waiting for my approval" }
        }
        @if plans.is_empty() { p { "No plans here." } }
        @else {
            table {
                thead { tr { th { "Plan" } th { "Operation" } th { "Product" } th { "Status" } th { "Owner" } th { "Created" } } }
                tbody {
                    @for (p, _) in &plans {
                        tr {
                            td { a href={ "/console/plans/" (seg(&p.plan_id)) } { (p.plan_name) } }
                            td { (p.operation_type.as_str()) }
                            td { (p.product_name) }
                            td { (status(p.status.as_str())) }
                            td { (p.owner_principal_name) }
                            td { (format_time(p.created_at)) }
                        }
                    }
                }
            }
        }
        (pager("/console/plans", &[("view", view)], page_number, PAGE_SIZE, total))
    };
    Ok(respond(StatusCode::OK, page(if inbox { "Approval inbox" } else { "Plans" }, Some(&session), body)))
}

async fn plan(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    let provisioner = state.provisioner();
    let plan = provisioner.plan(&session.principal, &id).await?;
    let (records, plan) = (plan.records, plan.plan);
    let version = state.store.product_version(&plan.product_version_id).await?.map(|v| v.product_version_name).unwrap_or_default();
    let changes: Vec<ResourceChange> = stored(&plan.resource_changes);
    let mine = plan.owner_principal_id == session.principal.principal_id;
    let live = is_live(&state, &plan.provisioned_product_id).await?;
    let path = format!("/console/plans/{}", seg(&id));
    let can = |statuses: &[PlanStatus]| mine && statuses.contains(&plan.status);
    let body = html! {
        @if matches!(plan.status, PreviewInProgress | ExecuteInProgress) {
            meta http-equiv="refresh" content="3";
            p.muted { "Working… this page refreshes by itself." }
        }
        dl.facts {
            dt { "Status" } dd { (status(plan.status.as_str())) }
            @if matches!(plan.status, PreviewFailed | ExecuteFailed) && !plan.status_message.is_empty() { dt { "Message" } dd { pre.message { (plan.status_message) } } }
            dt { "Operation" } dd { (plan.operation_type.as_str()) }
            dt { "Product" } dd { (plan.product_name) " " (version) }
            dt { "Provisioned product" } dd {
                @if live || plan.execute_task_id.is_some() || plan.operation_type != OperationType::LaunchProduct {
                    (product_link(&plan.provisioned_product_name, &plan.provisioned_product_id, live))
                } @else { (plan.provisioned_product_name) " " span.muted { "(launched when the plan is executed)" } }
            }
            dt { "Owner" } dd { (plan.owner_principal_name) }
            @if let Some(task) = &plan.execute_task_id { dt { "Task" } dd { a href={ "/console/tasks/" (seg(task)) } { (task) } } }
        }
        h2 { "Resource changes" }
        @if changes.is_empty() { p.muted { "No resource changes (yet)." } }
        @else {
            table {
                thead { tr { th { "Action" } th { "Resource" } th { "Type" } th { "Replacement" } } }
                tbody { @for c in &changes { tr { td { (c.action) } td { code { (c.logical_resource_id) } } td { (c.resource_type) } td { (c.replacement) } } } }
            }
        }
        h2 { "Planned outputs" }
        (outputs(&stored(&plan.planned_outputs)))
        h2 { "Parameters" }
        dl.pairs { @for p in provisioner.masked(&plan.parameters_sealed, &plan.sensitive_parameters) { dt { (p.parameter_key) } dd { code { (p.parameter_value) } } } }
        @if !records.is_empty() {
            h2 { "Approval history" }
            ul { @for r in &records { li { (format_time(r.created_at)) ": " (r.operator_principal_name) " — " (r.approval_action) @if !r.comment.is_empty() { ": " (r.comment) } } } }
        }
        div.buttons {
            @if can(&[PreviewSuccess, ApplicationApproved]) {
                (action_button(&session, &format!("{path}/execute"), "Execute", None))
            }
            @if can(&[PreviewSuccess, PreviewFailed, ApplicationInProgress, ApplicationApproved, ApplicationRejected]) {
                (action_button(&session, &format!("{path}/cancel"), "Cancel", Some("Cancel this plan?")))
            }
            @if mine && !matches!(plan.status, PreviewInProgress | ExecuteInProgress) {
                (action_button(&session, &format!("{path}/delete"), "Delete", Some("Delete this plan?")))
            }
        }
        @if plan.status == ApplicationInProgress && !mine {
            h2 { "Decide" }
            form.stack method="post" action={ (path) "/decide" } {
                (csrf_input(&session))
                label for="comment" { "Comment (optional)" }
                textarea id="comment" name="comment" rows="2" {}
                div.buttons {
                    button type="submit" name="decision" value="Approve" { "Approve" }
                    button.secondary type="submit" name="decision" value="Reject" { "Reject" }
                }
            }
        }
    };
    Ok(respond(StatusCode::OK, page(&format!("Plan {}", plan.plan_name), Some(&session), body)))
}

/// The ids a change of a plan answers, as the API answers them (the audit trail reads them).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PlanIds {
    pub plan_id: String,
    pub provisioned_product_id: Option<ProvisionedProductId>,
    pub task_id: Option<TaskId>,
}

async fn operate(
    State(state): State<SharedState>,
    Path((id, operation)): Path<(String, String)>,
    Posted { session, form }: Posted,
) -> Result<Response, PageError> {
    let (provisioner, principal) = (state.provisioner(), &session.principal);
    let (action, mut params) = match operation.as_str() {
        "execute" => (Action::ExecuteProvisionedProductPlan, vec![]),
        "cancel" => (Action::CancelProvisionedProductPlan, vec![]),
        "delete" => (Action::DeleteProvisionedProductPlan, vec![]),
        "decide" => {
            (Action::ApproveProvisionedProductPlan, vec![("ApprovalAction", form.text("decision")), ("Comment", form.text("comment"))])
        }
        _ => return Err(PageError::not_found()),
    };
    params.push(("PlanId", &id));
    let params = Params::from_pairs(params);
    let run = || async {
        let task = match action {
            Action::ExecuteProvisionedProductPlan => Some(provisioner.execute(principal, &id).await?.task_id),
            Action::CancelProvisionedProductPlan => provisioner.cancel_plan(principal, &id).await.map(|()| None)?,
            Action::DeleteProvisionedProductPlan => provisioner.delete_plan(principal, &id).await.map(|()| None)?,
            _ => provisioner
                .decide_plan(principal, &id, form.text("decision").parse()?, form.text("comment").to_string())
                .await
                .map(|()| None)?,
        };
        Ok::<_, ApiError>(PlanIds { plan_id: id.clone(), provisioned_product_id: None, task_id: task })
    };
    let done = authorised(&state, &session, action, &params, run).await?;
    if let Some(task) = done.task_id {
        return Ok(see_other(&format!("/console/tasks/{}", seg(&task))));
    }
    if action == Action::DeleteProvisionedProductPlan {
        return Ok(see_other("/console/plans"));
    }
    Ok(see_other(&format!("/console/plans/{}", seg(&id))))
}
