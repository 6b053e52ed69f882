//! Plans: the caller's plans, an approver's inbox, and one plan's preview (resource changes,
//! planned outputs) with the moves its status allows: execute, cancel, delete, approve, reject.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use serde_json::Value;

use super::html::{action_button, csrf_input, page, pager, seg, status};
use super::session::Session;
use super::{call, list, respond, s, see_other, total, Form, PageError, PAGE_SIZE};
use crate::api::action::Action;
use crate::api::SharedState;

pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console/plans", get(index))
        .route("/console/plans/{id}", get(plan))
        .route("/console/plans/{id}/{operation}", post(operate))
}

async fn index(State(state): State<SharedState>, session: Session, RawQuery(query): RawQuery) -> Result<Response, PageError> {
    let query = Form::query(query.as_deref());
    let inbox = query.get("view") == Some("inbox");
    let page_number = query.page();
    let mut params = vec![("PageNumber".to_string(), page_number.to_string()), ("PageSize".into(), PAGE_SIZE.to_string())];
    if inbox {
        params.push(("ApprovalFilter".into(), "ReceivedRequests".into()));
    }
    let answer = call(&state, &session, Action::ListProvisionedProductPlans, params).await?;
    let view = if inbox { "inbox" } else { "" };
    let body = html! {
        nav.tabs aria-label="Plan views" {
            a href="/console/plans" aria-current=[(!inbox).then_some("page")] { "My plans" }
            a href="/console/plans?view=inbox" aria-current=[inbox.then_some("page")] { "Waiting for my approval" }
        }
        @let plans = list(&answer, "/PlanDetails");
        @if plans.is_empty() { p { "No plans here." } }
        @else {
            table {
                thead { tr { th { "Plan" } th { "Operation" } th { "Product" } th { "Status" } th { "Owner" } th { "Created" } } }
                tbody {
                    @for p in plans {
                        tr {
                            td { a href={ "/console/plans/" (seg(s(p, "/PlanId"))) } { (s(p, "/PlanName")) } }
                            td { (s(p, "/OperationType")) }
                            td { (s(p, "/ProductName")) }
                            td { (status(s(p, "/Status"))) }
                            td { (s(p, "/OwnerPrincipalName")) }
                            td { (s(p, "/CreateTime")) }
                        }
                    }
                }
            }
        }
        (pager("/console/plans", &[("view", view)], page_number, PAGE_SIZE, total(&answer)))
    };
    Ok(respond(StatusCode::OK, page(if inbox { "Approval inbox" } else { "Plans" }, Some(&session), body)))
}

async fn plan(State(state): State<SharedState>, session: Session, Path(id): Path<String>) -> Result<Response, PageError> {
    let answer = call(&state, &session, Action::GetProvisionedProductPlan, [("PlanId", id.as_str())]).await?;
    let plan = &answer["PlanDetail"];
    let plan_status = s(plan, "/Status");
    let mine = s(plan, "/OwnerPrincipalId") == session.principal.principal_id;
    let path = format!("/console/plans/{}", seg(&id));
    let body = html! {
        @if plan_status == "PreviewInProgress" || plan_status == "ExecuteInProgress" {
            meta http-equiv="refresh" content="3";
            p.muted { "Working… this page refreshes by itself." }
        }
        dl.facts {
            dt { "Status" } dd { (status(plan_status)) }
            @if !s(plan, "/StatusMessage").is_empty() { dt { "Message" } dd { pre.message { (s(plan, "/StatusMessage")) } } }
            dt { "Operation" } dd { (s(plan, "/OperationType")) }
            dt { "Product" } dd { (s(plan, "/ProductName")) " " (s(&answer, "/ProductVersionDetail/ProductVersionName")) }
            dt { "Provisioned product" } dd { a href={ "/console/provisioned/" (seg(s(plan, "/ProvisionedProductId"))) } { (s(plan, "/ProvisionedProductName")) } }
            dt { "Owner" } dd { (s(plan, "/OwnerPrincipalName")) }
            @if !s(plan, "/TaskId").is_empty() { dt { "Task" } dd { a href={ "/console/tasks/" (seg(s(plan, "/TaskId"))) } { (s(plan, "/TaskId")) } } }
        }
        h2 { "Resource changes" }
        @let changes = list(&answer, "/ResourceChanges");
        @if changes.is_empty() { p.muted { "No resource changes (yet)." } }
        @else {
            table {
                thead { tr { th { "Action" } th { "Resource" } th { "Type" } th { "Replacement" } } }
                tbody { @for c in changes { tr { td { (s(c, "/Action")) } td { code { (s(c, "/LogicalResourceId")) } } td { (s(c, "/ResourceType")) } td { (s(c, "/Replacement")) } } } }
            }
        }
        h2 { "Planned outputs" }
        (super::provisioned::outputs(plan))
        h2 { "Parameters" }
        dl.pairs { @for p in list(plan, "/Parameters") { dt { (s(p, "/ParameterKey")) } dd { code { (s(p, "/ParameterValue")) } } } }
        @let records = list(plan, "/ApprovalDetail/OperationRecords");
        @if !records.is_empty() {
            h2 { "Approval history" }
            ul { @for r in records { li { (s(r, "/CreateTime")) ": " (s(r, "/Operator/PrincipalName")) " — " (s(r, "/ApprovalAction")) @if !s(r, "/Comment").is_empty() { ": " (s(r, "/Comment")) } } } }
        }
        div.buttons {
            @if mine && matches!(plan_status, "PreviewSuccess" | "ApplicationApproved") {
                (action_button(&session, &format!("{path}/execute"), "Execute", None))
            }
            @if mine && matches!(plan_status, "PreviewSuccess" | "PreviewFailed" | "ApplicationInProgress" | "ApplicationApproved" | "ApplicationRejected") {
                (action_button(&session, &format!("{path}/cancel"), "Cancel", Some("Cancel this plan?")))
            }
            @if mine && !matches!(plan_status, "PreviewInProgress" | "ExecuteInProgress") {
                (action_button(&session, &format!("{path}/delete"), "Delete", Some("Delete this plan?")))
            }
        }
        @if plan_status == "ApplicationInProgress" && !mine {
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
    Ok(respond(StatusCode::OK, page(&format!("Plan {}", s(plan, "/PlanName")), Some(&session), body)))
}

async fn operate(
    State(state): State<SharedState>,
    session: Session,
    Path((id, operation)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = Form::parse(&body);
    session.check_csrf(&form)?;
    let plan = [("PlanId", id.as_str())];
    let location = format!("/console/plans/{}", seg(&id));
    let answer: Value = match operation.as_str() {
        "execute" => call(&state, &session, Action::ExecuteProvisionedProductPlan, plan).await?,
        "cancel" => call(&state, &session, Action::CancelProvisionedProductPlan, plan).await?,
        "delete" => {
            call(&state, &session, Action::DeleteProvisionedProductPlan, plan).await?;
            return Ok(see_other("/console/plans"));
        }
        "decide" => {
            let params = [("PlanId", id.as_str()), ("ApprovalAction", form.text("decision")), ("Comment", form.text("comment"))];
            call(&state, &session, Action::ApproveProvisionedProductPlan, params.into_iter().filter(|(_, v)| !v.is_empty())).await?
        }
        _ => return Err(PageError::Api(crate::api::error::ApiError::new(StatusCode::NOT_FOUND, "NotFound", "There is no such page."))),
    };
    Ok(match s(&answer, "/TaskId") {
        "" => see_other(&location),
        task => see_other(&format!("/console/tasks/{}", seg(task))),
    })
}
