"""Provisioned product plans through the official SDK against the real binary, a real `terraform`
and the bundled sandbox provider: previews with real ResourceChanges, the approval flow of an
Approval constraint (submit on preview, approve/reject by an approver only, execution by the
owner only once approved), plans of the three operation types, cancellation, rejection, stale
plans, listing filters. Plans and tasks are awaited by bounded polling.
"""
from __future__ import annotations

import json
import time

import pytest

from sclib import expect_error, parse_time, uniq
from test_provisioning import (
    REGION, SANDBOX_HEADER, TASK_DEADLINE, get_pp, get_task, grant, kv, launch, launched_product, make_product,
    needs_provider, needs_terraform, outputs, parameters, sandbox_files, terraform_logs, wait_pp_gone, wait_task,
)

pytestmark = [needs_terraform, needs_provider]

SITE_TF = SANDBOX_HEADER + """
variable "dir" {
  type    = string
  default = "site"
}

variable "content" {
  type    = string
  default = "hello"
}

variable "token" {
  type      = string
  default   = "not-a-secret-default"
  sensitive = true
}

resource "sandbox_file" "page" {
  path    = "${var.dir}/page.txt"
  content = var.content
}

resource "sandbox_file" "extra" {
  path    = "extra.txt"
  content = "extra-${var.content}"
}

output "page" {
  description = "Path of the page."
  value       = sandbox_file.page.id
}

output "greeting" {
  description = "Derived from the content."
  value       = "hi ${var.content}"
}

output "token" {
  description = "Secret."
  value       = var.token
  sensitive   = true
}
"""

BROKEN_TF = SANDBOX_HEADER + """
resource "sandbox_sleep" "bad" {
  duration_ms = -5
}
"""

FINAL = {"PreviewSuccess", "PreviewFailed", "ApplicationInProgress", "ApplicationApproved", "ApplicationRejected",
         "ExecuteSuccess", "ExecuteFailed", "Canceled"}


# ----------------------------------------------------------------------------- helpers


def user(srv):
    """A new end user: (info, SDK caller, raw caller). The raw caller sees the extension fields
    (`TaskId`, `Outputs`) the SDK's models drop."""
    info = srv.create_user()
    key = (info["AccessKeyId"], info["AccessKeySecret"])
    return info, srv.caller("v3", key), srv.caller("raw-v3", key)


def approval(admin, product, operations, approvers) -> None:
    admin.call("CreateConstraint", {"PortfolioId": product.portfolio_id, "ProductId": product.product_id,
                                    "ConstraintType": "Approval",
                                    "Config": json.dumps({"OperationTypes": operations, "Approvers": approvers})})


def create_plan(caller, product, operation="LaunchProduct", params=None, name=None, **extra) -> tuple[str, str]:
    req = {"PlanName": uniq("plan-"), "PlanType": "Ros", "OperationType": operation,
           "ProductId": product.product_id, "ProductVersionId": product.version_id,
           "ProvisionedProductName": name or uniq("pp-"), "StackRegionId": REGION, "Parameters": kv(params)}
    req.update(extra)
    r = caller.call("CreateProvisionedProductPlan", req)
    return r["PlanId"], r["ProvisionedProductId"]


def get_plan(caller, plan_id: str) -> dict:
    return caller.call("GetProvisionedProductPlan", {"PlanId": plan_id})


def wait_plan(caller, plan_id: str, deadline: float = TASK_DEADLINE) -> dict:
    """Polls GetProvisionedProductPlan until the plan is in a status no job changes any more."""
    end = time.monotonic() + deadline
    while True:
        r = get_plan(caller, plan_id)
        if r["PlanDetail"]["Status"] in FINAL:
            return r
        assert time.monotonic() < end, f"plan {plan_id} still {r['PlanDetail']['Status']} after {deadline}s"
        time.sleep(0.1)


def execute(raw, plan_id: str) -> str:
    """ExecuteProvisionedProductPlan through the raw caller -> the task's id (extension)."""
    r = raw.call("ExecuteProvisionedProductPlan", {"PlanId": plan_id})
    assert r["PlanId"] == plan_id
    return r["TaskId"]


def launched_site(admin, end_user, content: str) -> tuple:
    """The end user's launch of a new SITE_TF product with `content`, succeeded
    -> (their SDK caller, their raw caller, the product, the provisioned product's name, its id)."""
    name = uniq("site-")
    caller, product, pp_id, _ = launched_product(admin, end_user, SITE_TF, {"content": content}, name=name)
    return caller, end_user[1]("raw-v3"), product, name, pp_id


def changes(plan: dict) -> dict:
    return {c["LogicalResourceId"]: c for c in plan.get("ResourceChanges") or []}


def records(plan: dict) -> list[tuple[str, str, str]]:
    recs = plan["PlanDetail"]["ApprovalDetail"]["OperationRecords"]
    return [(r["ApprovalAction"], r["Operator"]["PrincipalName"], r.get("Comment", "")) for r in recs]


def plan_ids(caller, **params) -> set[str]:
    r = caller.call("ListProvisionedProductPlans", {"PageSize": 100, **params})
    return {p["PlanId"] for p in r.get("PlanDetails") or []}


@pytest.fixture
def approval_world(server, admin_v3):
    """A sandbox product granted to an owner, an approver and a colleague, whose launches need
    the approver's approval."""
    owner, approver, colleague = user(server), user(server), user(server)
    product = make_product(admin_v3, SITE_TF, users=[owner[0], approver[0], colleague[0]])
    approval(admin_v3, product, ["LaunchProduct", "TerminateProvisionedProduct"],
             [{"Type": "RamUser", "Id": approver[0]["PrincipalId"]}])
    return {"product": product, "owner": owner, "approver": approver, "colleague": colleague}


# ============================================================================= acceptance


def test_launch_plan_approved_then_executed_by_its_owner(server, approval_world):
    w = approval_world
    product = w["product"]
    (owner, owner_c, owner_raw), (approver, approver_c, approver_raw), (_, colleague_c, _) = \
        w["owner"], w["approver"], w["colleague"]

    # The direct launch is refused and says what to do instead.
    e = expect_error(403, "Forbidden.ApprovalRequired", launch, owner_c, product, {"content": "v1"})
    assert "CreateProvisionedProductPlan" in e.message

    name = uniq("site-")
    plan_id, pp_id = create_plan(owner_c, product, params={"content": "v1", "token": "t0p-s3cret"}, name=name,
                                 Description="first site", Tags=[{"Key": "team", "Value": "blue"}])
    assert plan_id.startswith("plan-") and pp_id.startswith("pp-")
    wait_plan(owner_c, plan_id)
    r = get_plan(owner_raw, plan_id)
    d = r["PlanDetail"]
    assert d["Status"] == "ApplicationInProgress", d
    assert (d["PlanType"], d["OperationType"], d["ProvisionedProductId"], d["ProvisionedProductName"]) == \
        ("Ros", "LaunchProduct", pp_id, name)
    assert (d["OwnerPrincipalId"], d["OwnerPrincipalName"]) == (owner["PrincipalId"], owner["UserName"])
    assert d["Description"] == "first site" and {"Key": "team", "Value": "blue"} in d["Tags"]
    assert parse_time(d["CreateTime"]) <= parse_time(d["UpdateTime"])
    assert {p["ParameterKey"]: p["ParameterValue"] for p in d["Parameters"]} == {"content": "v1", "token": "******"}
    assert "t0p-s3cret" not in json.dumps(r)
    assert changes(r) == {
        "sandbox_file.page": {"Action": "Add", "LogicalResourceId": "sandbox_file.page", "ResourceType": "sandbox_file"},
        "sandbox_file.extra": {"Action": "Add", "LogicalResourceId": "sandbox_file.extra", "ResourceType": "sandbox_file"},
    }
    promised = {o["OutputKey"]: o for o in d["Outputs"]}
    assert promised["greeting"] == {"OutputKey": "greeting", "OutputValue": "hi v1", "Description": "Derived from the content."}
    assert promised["page"]["OutputValue"] == "site/page.txt" and promised["token"]["OutputValue"] == "******"
    assert r["ProductDetail"]["ProductId"] == product.product_id
    assert r["ProductVersionDetail"]["ProductVersionId"] == product.version_id
    assert d["AssignedApprovers"] == [{"PrincipalName": approver["UserName"], "PrincipalType": "RamUser"}]
    assert records(r) == [("Submit", owner["UserName"], "")]
    [todo] = d["ApprovalDetail"]["TodoTaskActivities"]
    assert [t["Operator"]["PrincipalName"] for t in todo["Tasks"]] == [approver["UserName"]]
    # Nothing exists before execution.
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, owner_c, pp_id)

    # Not yet approved: the owner cannot execute; neither the owner nor a colleague can approve.
    expect_error(403, "Forbidden.ApprovalRequired", execute, owner_raw, plan_id)
    expect_error(403, "Forbidden.NotApprover", owner_c.call, "ApproveProvisionedProductPlan",
                 {"PlanId": plan_id, "ApprovalAction": "Approve"})
    # the colleague may not even see the plan: it is as missing as one that does not exist
    expect_error(404, "EntityNotExists.Plan", colleague_c.call, "ApproveProvisionedProductPlan",
                 {"PlanId": plan_id, "ApprovalAction": "Approve"})
    expect_error(404, "EntityNotExists.Plan", get_plan, colleague_c, plan_id)

    # The approver sees it waiting for them, reads it, approves it.
    assert plan_id in plan_ids(approver_c, ApprovalFilter="ReceivedRequests")
    assert plan_id not in plan_ids(colleague_c, ApprovalFilter="ReceivedRequests")
    assert plan_id not in plan_ids(approver_c)  # AccessLevelFilter=User: the caller's own plans
    assert get_plan(approver_c, plan_id)["PlanDetail"]["PlanId"] == plan_id
    approver_c.call("ApproveProvisionedProductPlan", {"PlanId": plan_id, "ApprovalAction": "Approve", "Comment": "ok, go"})
    r = get_plan(owner_c, plan_id)
    assert r["PlanDetail"]["Status"] == "ApplicationApproved"
    assert records(r) == [("Submit", owner["UserName"], ""), ("Approve", approver["UserName"], "ok, go")]
    assert r["PlanDetail"]["ApprovalDetail"]["TodoTaskActivities"] == []
    assert plan_id not in plan_ids(approver_c, ApprovalFilter="ReceivedRequests")
    assert plan_id in plan_ids(approver_c, ApprovalFilter="ApprovalHistory")
    expect_error(409, "InvalidStatus.Plan", approver_c.call, "ApproveProvisionedProductPlan",
                 {"PlanId": plan_id, "ApprovalAction": "Reject"})

    # Only the owner executes; the provisioned product is created then, with what was promised.
    expect_error(403, "Forbidden.NotOwner", execute, approver_raw, plan_id)
    task_id = execute(owner_raw, plan_id)
    task = wait_task(owner_c, task_id)
    assert task["Status"] == "Succeeded", task
    assert (task["TaskType"], task["ProvisionedProductId"]) == ("LaunchProduct", pp_id)
    assert parameters(task) == {"content": "v1", "token": "******"}
    assert {t["Key"]: t["Value"] for t in task["TaskTags"]}["team"] == "blue"
    assert "apply" in [entry["Command"] for entry in task["Log"]["TerraformLogs"]]
    assert "plan" not in [entry["Command"] for entry in task["Log"]["TerraformLogs"]], "the saved plan is applied"
    assert "2 added" in terraform_logs(task, "apply")
    assert {k: {"OutputKey": k, "OutputValue": o["OutputValue"], "Description": o["Description"]}
            for k, o in outputs(task).items()} == promised
    pp = get_pp(owner_c, pp_id)
    assert pp["Status"] == "Available" and pp["ProvisionedProductName"] == name and pp["LastTaskId"] == task_id
    assert sandbox_files(server, pp_id) == {"site/page.txt": "v1", "extra.txt": "extra-v1"}
    wait_plan(owner_c, plan_id)
    d = get_plan(owner_raw, plan_id)["PlanDetail"]
    assert (d["Status"], d["TaskId"]) == ("ExecuteSuccess", task_id)
    expect_error(409, "InvalidStatus.Plan", execute, owner_raw, plan_id)

    # Terminate is covered too: directly refused, through an approved plan accepted.
    expect_error(403, "Forbidden.ApprovalRequired", owner_c.call, "TerminateProvisionedProduct",
                 {"ProvisionedProductId": pp_id})
    plan_id, same_pp = create_plan(owner_c, product, "TerminateProvisionedProduct", name=name)
    assert same_pp == pp_id
    r = wait_plan(owner_c, plan_id)
    assert r["PlanDetail"]["Status"] == "ApplicationInProgress"
    assert "t0p-s3cret" not in json.dumps(get_plan(owner_raw, plan_id))
    assert {k: (c["Action"], c.get("PhysicalResourceId")) for k, c in changes(r).items()} == {
        "sandbox_file.page": ("Remove", "site/page.txt"), "sandbox_file.extra": ("Remove", "extra.txt")}
    approver_c.call("ApproveProvisionedProductPlan", {"PlanId": plan_id, "ApprovalAction": "Approve"})
    task = wait_task(owner_c, execute(owner_raw, plan_id))
    assert (task["Status"], task["TaskType"]) == ("Succeeded", "TerminateProvisionedProduct"), task
    assert parameters(task) == {"content": "v1", "token": "******"}
    wait_pp_gone(owner_c, pp_id)
    assert sandbox_files(server, pp_id) == {}
    assert wait_plan(owner_c, plan_id)["PlanDetail"]["Status"] == "ExecuteSuccess"


# ============================================================================= without approval


def test_update_and_terminate_plans_execute_after_preview(server, admin_v3, end_user):
    caller, raw, product, name, pp_id = launched_site(admin_v3, end_user, "one")

    # An update that changes nothing is refused, as the direct update is.
    e = expect_error(400, "InvalidParameter.Parameters", create_plan, caller, product, "UpdateProvisionedProduct",
                     {"content": "one"}, name=name)
    assert "nothing" in e.message
    expect_error(404, "EntityNotExists.ProvisionedProduct", create_plan, caller, product,
                 "UpdateProvisionedProduct", {"content": "two"}, name=uniq("nope-"))

    plan_id, same_pp = create_plan(caller, product, "UpdateProvisionedProduct", {"dir": "moved", "content": "two"}, name=name)
    assert same_pp == pp_id
    r = wait_plan(caller, plan_id)
    assert r["PlanDetail"]["Status"] == "PreviewSuccess", r
    assert r["PlanDetail"]["AssignedApprovers"] == [] and records(r) == []
    assert changes(r) == {
        "sandbox_file.page": {"Action": "Modify", "Replacement": "True", "LogicalResourceId": "sandbox_file.page",
                              "ResourceType": "sandbox_file", "PhysicalResourceId": "site/page.txt"},
        "sandbox_file.extra": {"Action": "Modify", "Replacement": "False", "LogicalResourceId": "sandbox_file.extra",
                               "ResourceType": "sandbox_file", "PhysicalResourceId": "extra.txt"},
    }
    # The preview changed nothing.
    assert sandbox_files(server, pp_id) == {"site/page.txt": "one", "extra.txt": "extra-one"}
    task = wait_task(caller, execute(raw, plan_id))
    assert (task["Status"], task["TaskType"]) == ("Succeeded", "UpdateProvisionedProduct"), task
    assert outputs(task)["page"]["OutputValue"] == "moved/page.txt"
    assert sandbox_files(server, pp_id) == {"moved/page.txt": "two", "extra.txt": "extra-two"}
    assert parameters(task) == {"dir": "moved", "content": "two"}
    assert wait_plan(caller, plan_id)["PlanDetail"]["Status"] == "ExecuteSuccess"
    assert plan_id in plan_ids(caller, ProvisionedProductId=pp_id)

    plan_id, _ = create_plan(caller, product, "TerminateProvisionedProduct", name=name)
    r = wait_plan(caller, plan_id)
    assert r["PlanDetail"]["Status"] == "PreviewSuccess"
    assert sorted(c["Action"] for c in r["ResourceChanges"]) == ["Remove", "Remove"]
    task = wait_task(caller, execute(raw, plan_id))
    assert task["Status"] == "Succeeded", task
    wait_pp_gone(caller, pp_id)


# ============================================================================= rejection, cancellation


def test_a_rejected_plan_can_never_execute(approval_world):
    w = approval_world
    (owner, owner_c, owner_raw), (approver, approver_c, _) = w["owner"], w["approver"]
    plan_id, pp_id = create_plan(owner_c, w["product"], params={"content": "nope"})
    assert wait_plan(owner_c, plan_id)["PlanDetail"]["Status"] == "ApplicationInProgress"
    expect_error(400, "InvalidParameter.ApprovalAction", approver_c.call, "ApproveProvisionedProductPlan",
                 {"PlanId": plan_id, "ApprovalAction": "Maybe"})
    approver_c.call("ApproveProvisionedProductPlan", {"PlanId": plan_id, "ApprovalAction": "Reject", "Comment": "too big"})
    r = get_plan(owner_c, plan_id)
    assert r["PlanDetail"]["Status"] == "ApplicationRejected"
    assert records(r)[-1] == ("Reject", approver["UserName"], "too big")
    for call in (lambda: execute(owner_raw, plan_id),
                 lambda: approver_c.call("ApproveProvisionedProductPlan", {"PlanId": plan_id, "ApprovalAction": "Approve"}),
                 lambda: owner_c.call("UpdateProvisionedProductPlan", {"PlanId": plan_id, "ProductId": w["product"].product_id,
                                                                       "ProductVersionId": w["product"].version_id}),
                 lambda: owner_c.call("CancelProvisionedProductPlan", {"PlanId": plan_id})):
        e = expect_error(409, "InvalidStatus.Plan", call)
        assert "ApplicationRejected" in e.message
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, owner_c, pp_id)
    owner_c.call("DeleteProvisionedProductPlan", {"PlanId": plan_id})
    expect_error(404, "EntityNotExists.Plan", get_plan, owner_c, plan_id)


def test_a_cancelled_plan_can_never_execute(server, admin_v3, approval_world):
    w = approval_world
    (owner, owner_c, owner_raw), (_, approver_c, _) = w["owner"], w["approver"]
    # Cancelled while awaiting approval: the approver can no longer approve.
    plan_id, _ = create_plan(owner_c, w["product"])
    assert wait_plan(owner_c, plan_id)["PlanDetail"]["Status"] == "ApplicationInProgress"
    expect_error(403, "Forbidden.NotOwner", approver_c.call, "CancelProvisionedProductPlan", {"PlanId": plan_id})
    owner_c.call("CancelProvisionedProductPlan", {"PlanId": plan_id})
    r = get_plan(owner_c, plan_id)
    assert r["PlanDetail"]["Status"] == "Canceled"
    assert [a for a, _, _ in records(r)] == ["Submit", "Cancel"]
    expect_error(409, "InvalidStatus.Plan", approver_c.call, "ApproveProvisionedProductPlan",
                 {"PlanId": plan_id, "ApprovalAction": "Approve"})
    expect_error(409, "InvalidStatus.Plan", execute, owner_raw, plan_id)
    assert plan_id not in plan_ids(approver_c, ApprovalFilter="ReceivedRequests")

    # Cancelled after a preview that needs no approval, and cancelled while still previewing.
    info, caller, raw = user(server)
    product = make_product(admin_v3, SITE_TF, users=[info])
    plan_id, _ = create_plan(caller, product)
    assert wait_plan(caller, plan_id)["PlanDetail"]["Status"] == "PreviewSuccess"
    caller.call("CancelProvisionedProductPlan", {"PlanId": plan_id})
    expect_error(409, "InvalidStatus.Plan", execute, raw, plan_id)
    plan_id, pp_id = create_plan(caller, product)
    caller.call("CancelProvisionedProductPlan", {"PlanId": plan_id})
    time.sleep(1)
    assert get_plan(caller, plan_id)["PlanDetail"]["Status"] == "Canceled"
    expect_error(409, "InvalidStatus.Plan", execute, raw, plan_id)
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, caller, pp_id)


# ============================================================================= staleness, refresh


def test_a_stale_plan_is_refused_until_refreshed(server, admin_v3, end_user):
    caller, raw, product, name, pp_id = launched_site(admin_v3, end_user, "base")
    first, _ = create_plan(caller, product, "UpdateProvisionedProduct", {"content": "first"}, name=name)
    second, _ = create_plan(caller, product, "UpdateProvisionedProduct", {"content": "second"}, name=name)
    assert wait_plan(caller, first)["PlanDetail"]["Status"] == "PreviewSuccess"
    assert wait_plan(caller, second)["PlanDetail"]["Status"] == "PreviewSuccess"
    assert wait_task(caller, execute(raw, first))["Status"] == "Succeeded"

    e = expect_error(409, "InvalidStatus.Plan", execute, raw, second)
    assert "stale" in e.message and "UpdateProvisionedProductPlan" in e.message
    assert get_plan(caller, second)["PlanDetail"]["Status"] == "PreviewSuccess"
    assert sandbox_files(server, pp_id)["site/page.txt"] == "first"

    # A refresh previews again against the new state, with new parameters merged over the plan's.
    r = caller.call("UpdateProvisionedProductPlan", {"PlanId": second, "ProductId": product.product_id,
                                                     "ProductVersionId": product.version_id,
                                                     "Parameters": kv({"dir": "again"}), "Description": "refreshed"})
    assert (r["PlanId"], r["ProvisionedProductId"]) == (second, pp_id)
    r = wait_plan(caller, second)
    assert r["PlanDetail"]["Status"] == "PreviewSuccess" and r["PlanDetail"]["Description"] == "refreshed"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in r["PlanDetail"]["Parameters"]} == {"content": "second", "dir": "again"}
    assert changes(r)["sandbox_file.page"]["Replacement"] == "True"
    assert wait_task(caller, execute(raw, second))["Status"] == "Succeeded"
    assert sandbox_files(server, pp_id) == {"again/page.txt": "second", "extra.txt": "extra-second"}


def test_an_updated_plan_needs_a_new_approval(approval_world):
    w = approval_world
    (owner, owner_c, owner_raw), (approver, approver_c, _) = w["owner"], w["approver"]
    product = w["product"]
    plan_id, _ = create_plan(owner_c, product, params={"content": "a"})
    assert wait_plan(owner_c, plan_id)["PlanDetail"]["Status"] == "ApplicationInProgress"
    approver_c.call("ApproveProvisionedProductPlan", {"PlanId": plan_id, "ApprovalAction": "Approve"})
    owner_c.call("UpdateProvisionedProductPlan", {"PlanId": plan_id, "ProductId": product.product_id,
                                                  "ProductVersionId": product.version_id, "Parameters": kv({"content": "b"})})
    r = wait_plan(owner_c, plan_id)
    assert r["PlanDetail"]["Status"] == "ApplicationInProgress"
    assert [a for a, _, _ in records(r)] == ["Submit", "Approve", "Submit"]
    expect_error(403, "Forbidden.ApprovalRequired", execute, owner_raw, plan_id)
    approver_c.call("ApproveProvisionedProductPlan", {"PlanId": plan_id, "ApprovalAction": "Approve"})
    task = wait_task(owner_c, execute(owner_raw, plan_id))
    assert task["Status"] == "Succeeded" and outputs(task)["greeting"]["OutputValue"] == "hi b"


# ============================================================================= failures, roles, lists


def test_a_failed_preview_reports_terraforms_error(admin_v3, end_user):
    info, caller_of = end_user
    caller, raw = caller_of("v3"), caller_of("raw-v3")
    product = make_product(admin_v3, BROKEN_TF, users=[info])
    plan_id, _ = create_plan(caller, product)
    d = wait_plan(caller, plan_id)["PlanDetail"]
    assert d["Status"] == "PreviewFailed", d
    assert "duration_ms" in d["StatusMessage"] and "terraform plan failed" in d["StatusMessage"]
    expect_error(409, "InvalidStatus.Plan", execute, raw, plan_id)
    # Validation happens before anything is queued, as for a direct launch.
    expect_error(400, "InvalidParameter.Parameters", create_plan, caller, product, params={"nope": "1"})
    expect_error(400, "InvalidParameter.OperationType", create_plan, caller, product, "Launch")


def test_approvers_given_by_role_pattern(server, admin_v3):
    role = uniq("approvers-")
    server.cli("roles", "create", role)
    approver = server.create_user(role=role)
    approver_c = server.caller("v3", (approver["AccessKeyId"], approver["AccessKeySecret"]))
    owner, owner_c, owner_raw = user(server)
    product = make_product(admin_v3, SITE_TF, users=[owner])
    approval(admin_v3, product, ["LaunchProduct"], [{"Type": "RamRole", "Pattern": "approvers-*"}])
    plan_id, pp_id = create_plan(owner_c, product)
    r = wait_plan(owner_c, plan_id)
    assert r["PlanDetail"]["AssignedApprovers"] == [{"PrincipalName": "approvers-*", "PrincipalType": "RamRole"}]
    assert plan_id in plan_ids(approver_c, ApprovalFilter="ReceivedRequests")
    approvers = owner_c.call("ListProvisionedProductPlanApprovers", {})["Approvers"]
    assert {"PrincipalName": "approvers-*", "PrincipalType": "RamRole"} in approvers
    approver_c.call("ApproveProvisionedProductPlan", {"PlanId": plan_id, "ApprovalAction": "Approve"})
    assert wait_task(owner_c, execute(owner_raw, plan_id))["Status"] == "Succeeded"
    assert get_pp(owner_c, pp_id)["Status"] == "Available"


def test_plans_are_listed_by_owner_status_and_name(server, admin_v3):
    (a, a_c, _), (b, b_c, _) = user(server), user(server)
    product = make_product(admin_v3, SITE_TF, users=[a, b])
    name = uniq("listed-")
    mine, _ = create_plan(a_c, product, PlanName=name)
    other, _ = create_plan(a_c, product)
    theirs, _ = create_plan(b_c, product)
    for caller, plan_id in ((a_c, mine), (a_c, other), (b_c, theirs)):
        wait_plan(caller, plan_id)
    a_c.call("CancelProvisionedProductPlan", {"PlanId": other})
    assert {mine, other} <= plan_ids(a_c) and theirs not in plan_ids(a_c)
    assert plan_ids(a_c, Filters=[{"Key": "ProvisionedProductPlanName", "Value": name.upper()}]) == {mine}
    assert plan_ids(a_c, Filters=[{"Key": "FullTextSearch", "Value": name[3:]}]) == {mine}
    assert plan_ids(a_c, Filters=[{"Key": "ProvisionedProductPlanStatus", "Value": "Canceled"}]) == {other}
    expect_error(403, "Forbidden.AdministratorOnly", a_c.call, "ListProvisionedProductPlans", {"AccessLevelFilter": "Account"})
    assert {mine, other, theirs} <= plan_ids(admin_v3, AccessLevelFilter="Account")
    page = a_c.call("ListProvisionedProductPlans", {"PageSize": 1, "PageNumber": 2, "SortOrder": "Asc"})
    assert page["TotalCount"] >= 2 and len(page["PlanDetails"]) == 1 and page["PageNumber"] == 2
    expect_error(404, "EntityNotExists.Plan", get_plan, b_c, mine)
    expect_error(404, "EntityNotExists.Plan", b_c.call, "DeleteProvisionedProductPlan", {"PlanId": mine})
