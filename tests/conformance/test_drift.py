"""Drift detection (extensions): DetectProvisionedProductDrift queues a refresh-only plan of a
provisioned product as a task; ListProvisionedProductDriftChecks lists what each check found;
GetProvisionedProduct and ListProvisionedProducts carry DriftStatus and DriftCheckedTime (the
official SDK ignores them; the raw caller reads them), and ListProvisionedProducts filters by
DriftStatus. A `Drift` constraint schedules checks and sets the remediation (`Reapply`, `ReapplyWithApproval`).

Extension actions go through our own signer (the SDK has no method for them). Every wait is
bounded polling; the scheduler's minimum interval is lowered with --drift-min-interval-seconds.
"""
from __future__ import annotations

import json
import time

import pytest

from sclib import expect_error, uniq
from test_webhooks import Receiver
from test_provisioning import (FILE_TF, TASK_DEADLINE, get_pp, get_task, launch, make_product, needs_provider,
                               needs_terraform, new_user, sample_product, sandbox_files, terraform_logs, wait_task)

pytestmark = [needs_terraform, needs_provider]


@pytest.fixture(scope="module")
def drift_server(server_factory):
    """The sample catalog, with scheduled checks allowed every second and webhooks to loopback."""
    return server_factory(args=["--sample-catalog", "--drift-min-interval-seconds", "1", "--webhook-targets", "http://127.0.0.1"])


def detect(raw, pp_id: str) -> str:
    r = raw.call("DetectProvisionedProductDrift", {"ProvisionedProductId": pp_id})
    assert r["ProvisionedProductId"] == pp_id, r
    return r["TaskId"]


def checks(raw, pp_id: str) -> list[dict]:
    return raw.call("ListProvisionedProductDriftChecks", {"ProvisionedProductId": pp_id, "PageSize": 100})["DriftChecks"]


def raw_pp(raw, pp_id: str) -> dict:
    return raw.call("GetProvisionedProduct", {"ProvisionedProductId": pp_id})["ProvisionedProductDetail"]


def drifted_ids(raw, status: str) -> set[str]:
    r = raw.call("ListProvisionedProducts", {"Filters": [{"Key": "DriftStatus", "Value": status}], "PageSize": 100})
    return {p["ProvisionedProductId"] for p in r["ProvisionedProductDetails"]}


def poll(what: str, fn, deadline: float = TASK_DEADLINE):
    """Calls fn until it returns something truthy (bounded)."""
    end = time.monotonic() + deadline
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline}s")
        time.sleep(0.2)


def test_drift_is_detected_named_and_reapplied(drift_server):
    me, caller, raw = new_user(drift_server)
    web = sample_product(drift_server, caller, "Static website")
    pp_id, launched = launch(caller, web, {"title": "Drift"})
    assert wait_task(caller, launched)["Status"] == "Succeeded"
    before = raw_pp(raw, pp_id)
    assert before["DriftStatus"] == "NeverChecked" and "DriftCheckedTime" not in before, before
    receiver = Receiver()
    drift_server.caller("raw-v3").call("CreateWebhook", {"Url": receiver.url, "PortfolioId": web.portfolio_id,
                                                        "EventTypes": ["DriftDetected", "DriftRemediationQueued"]})
    assert get_pp(caller, pp_id)["Status"] == "Available", "the SDK reads the detail with its extension fields"

    first = wait_task(caller, detect(raw, pp_id))
    assert (first["Status"], first["TaskType"]) == ("Succeeded", "DetectProvisionedProductDrift"), first
    assert "-refresh-only" not in terraform_logs(first, "apply") and "No drift" in terraform_logs(first, "plan"), first
    assert raw_pp(raw, pp_id)["DriftStatus"] == "InSync"

    # Changed outside Terraform: the check names the resource and its changed attributes, never values.
    index = drift_server.data_dir / "sandbox" / pp_id / "site" / "index.html"
    index.write_text("defaced-by-hand\n")
    found = wait_task(caller, detect(raw, pp_id))
    assert found["Status"] == "Succeeded", found
    detail = raw_pp(raw, pp_id)
    assert (detail["Status"], detail["DriftStatus"]) == ("Available", "Drifted"), detail
    assert detail["DriftCheckedTime"].endswith("Z"), detail
    assert detail["LastSuccessfulProvisioningTaskId"] == launched, "a check is no provisioning"
    latest = checks(raw, pp_id)[0]
    assert (latest["TaskId"], latest["DriftStatus"], latest["Remediation"]) == (found["TaskId"], "Drifted", "None"), latest
    resources = {r["Address"]: r for r in latest["DriftedResources"]}
    assert set(resources) == {"sandbox_file.index"}, latest
    assert resources["sandbox_file.index"]["Action"] == "Modify"
    assert "content" in resources["sandbox_file.index"]["ChangedAttributes"], resources
    assert "defaced" not in json.dumps(checks(raw, pp_id)), "values are never kept"
    assert index.read_text() == "defaced-by-hand\n", "a check changes nothing"
    assert pp_id in drifted_ids(raw, "Drifted") and pp_id not in drifted_ids(raw, "InSync")
    expect_error(400, "InvalidParameter.Filters", raw.call, "ListProvisionedProducts",
                 {"Filters": [{"Key": "DriftStatus", "Value": "Sideways"}]})

    # Only who may update it may check it.
    _, _, other_raw = new_user(drift_server)
    expect_error(404, "EntityNotExists.ProvisionedProduct", other_raw.call, "DetectProvisionedProductDrift",
                 {"ProvisionedProductId": pp_id})
    expect_error(404, "EntityNotExists.ProvisionedProduct", other_raw.call, "ListProvisionedProductDriftChecks",
                 {"ProvisionedProductId": pp_id})

    # The Reapply policy: the next check that finds drift queues an update on the owner's behalf.
    admin_raw = drift_server.caller("raw-v3")
    admin_raw.call("CreateConstraint", {"PortfolioId": web.portfolio_id, "ProductId": web.product_id, "ConstraintType": "Drift",
                                        "Config": json.dumps({"IntervalMinutes": 1440, "Remediation": "Reapply"})})
    checked = wait_task(caller, detect(raw, pp_id))
    assert checked["Status"] == "Succeeded", checked
    remediated = poll("the re-apply queued", lambda: checks(raw, pp_id)[0].get("RemediationTaskId"))
    update = wait_task(caller, remediated)
    assert (update["Status"], update["TaskType"]) == ("Succeeded", "UpdateProvisionedProduct"), update
    assert "defaced" not in sandbox_files(drift_server, pp_id)["site/index.html"]
    assert "Drift" in sandbox_files(drift_server, pp_id)["site/index.html"], "the same parameters"
    assert wait_task(caller, detect(raw, pp_id))["Status"] == "Succeeded"
    assert raw_pp(raw, pp_id)["DriftStatus"] == "InSync"
    # Webhooks were told of each drift found (with the resources, never values) and of the re-apply.
    events = receiver.wait_for(lambda e: len(e) >= 3, "two drifts found and one re-apply")
    receiver.close()
    assert sorted((e["EventType"], e["TaskId"]) for e in events) == sorted(
        [("DriftDetected", found["TaskId"]), ("DriftDetected", checked["TaskId"]), ("DriftRemediationQueued", checked["TaskId"])]), events
    detected = next(e for e in events if e["TaskId"] == found["TaskId"])
    assert [r["Address"] for r in detected["DriftedResources"]] == ["sandbox_file.index"], detected
    assert next(e for e in events if e["EventType"] == "DriftRemediationQueued")["RemediationTaskId"] == remediated
    assert "defaced" not in json.dumps(events)
    audit = admin_raw.call("ListAuditEvents", {"PrincipalName": "system", "ResourceId": pp_id})["AuditEvents"]
    assert [e["Action"] for e in audit] == ["UpdateProvisionedProduct"], audit
    assert audit[0]["Parameters"]["OnBehalfOf"] == me["PrincipalId"], audit


def test_a_drift_constraint_schedules_checks_by_itself(drift_server):
    me, caller, raw = new_user(drift_server)
    admin = drift_server.caller("v3")
    product = make_product(admin, FILE_TF, users=[me])
    pp_id, launched = launch(caller, product)
    assert wait_task(caller, launched)["Status"] == "Succeeded"
    admin_raw = drift_server.caller("raw-v3")
    expect_error(400, "InvalidParameter.Config", admin_raw.call, "CreateConstraint",
                 {"PortfolioId": product.portfolio_id, "ProductId": product.product_id, "ConstraintType": "Drift",
                  "Config": json.dumps({"IntervalMinutes": 0})})
    constraint = admin_raw.call("CreateConstraint", {
        "PortfolioId": product.portfolio_id, "ProductId": product.product_id, "ConstraintType": "Drift",
        "Config": json.dumps({"IntervalMinutes": 0.05})})["ConstraintId"]
    done = poll("a scheduled check", lambda: [c for c in checks(raw, pp_id) if c["DriftStatus"] != "NeverChecked"])
    assert done[-1]["DriftStatus"] == "InSync", done
    task = get_task(caller, done[-1]["TaskId"])
    assert (task["TaskType"], task["Status"]) == ("DetectProvisionedProductDrift", "Succeeded"), task
    audit = admin_raw.call("ListAuditEvents", {"PrincipalName": "system", "ResourceId": pp_id})["AuditEvents"]
    assert "DetectProvisionedProductDrift" in [e["Action"] for e in audit], audit
    admin_raw.call("DeleteConstraint", {"ConstraintId": constraint})


def test_reapply_with_approval_plans_the_reapply_and_runs_it_once_approved(drift_server):
    from test_plans import approval, get_plan, wait_plan

    owner, owner_c, owner_raw = new_user(drift_server)
    approver, _, approver_raw = new_user(drift_server)
    admin = drift_server.caller("v3")
    admin_raw = drift_server.caller("raw-v3")
    product = make_product(admin, FILE_TF, users=[owner, approver])
    pp_id, launched = launch(owner_c, product, {"content": "as launched"})
    assert wait_task(owner_c, launched)["Status"] == "Succeeded"
    approval(admin, product, ["UpdateProvisionedProduct"], [{"Type": "RamUser", "Id": approver["PrincipalId"]}])
    admin_raw.call("CreateConstraint", {"PortfolioId": product.portfolio_id, "ProductId": product.product_id,
                                        "ConstraintType": "Drift",
                                        "Config": json.dumps({"IntervalMinutes": 1440, "Remediation": "ReapplyWithApproval"})})
    receiver = Receiver()
    admin_raw.call("CreateWebhook", {"Url": receiver.url, "PortfolioId": product.portfolio_id,
                                     "EventTypes": ["DriftRemediationQueued", "PlanAwaitingApproval"]})

    page = drift_server.data_dir / "sandbox" / pp_id / "one" / "page.txt"
    page.write_text("edited by hand")
    checked = wait_task(owner_c, detect(owner_raw, pp_id))
    assert checked["Status"] == "Succeeded", checked
    plan_id = poll("the remediation plan", lambda: checks(owner_raw, pp_id)[0].get("RemediationPlanId"))
    plan = wait_plan(owner_raw, plan_id)["PlanDetail"]
    # The plan is the owner's, re-applies the same version and parameters, and waits for the approver.
    assert (plan["Status"], plan["OperationType"], plan["OwnerPrincipalId"]) == \
        ("ApplicationInProgress", "UpdateProvisionedProduct", owner["PrincipalId"]), plan
    assert plan["PlanName"] == f"drift-remediation-{checked['TaskId']}", plan
    assert {p["ParameterKey"]: p["ParameterValue"] for p in plan["Parameters"]}["content"] == "as launched", plan
    assert page.read_text() == "edited by hand", "nothing runs before the approval"
    assert "RemediationTaskId" not in checks(owner_raw, pp_id)[0]

    # Approved: the scheduler executes it on the owner's behalf, and the drift is gone.
    approver_raw.call("ApproveProvisionedProductPlan", {"PlanId": plan_id, "ApprovalAction": "Approve"})
    update_id = poll("the approved plan executed", lambda: checks(owner_raw, pp_id)[0].get("RemediationTaskId"))
    update = wait_task(owner_c, update_id)
    assert (update["Status"], update["TaskType"]) == ("Succeeded", "UpdateProvisionedProduct"), update
    assert page.read_text() == "as launched"
    assert get_plan(owner_raw, plan_id)["PlanDetail"]["Status"] == "ExecuteSuccess"
    assert wait_task(owner_c, detect(owner_raw, pp_id))["Status"] == "Succeeded"
    assert raw_pp(owner_raw, pp_id)["DriftStatus"] == "InSync"

    events = receiver.wait_for(lambda e: len(e) >= 3, "the plan made, awaiting approval, then executed")
    receiver.close()
    assert sorted(e["EventType"] for e in events) == ["DriftRemediationQueued", "DriftRemediationQueued", "PlanAwaitingApproval"]
    made = [e for e in events if e["EventType"] == "DriftRemediationQueued"]
    assert {e.get("RemediationPlanId") for e in made} == {plan_id, None}, made
    assert {e.get("RemediationTaskId") for e in made} == {update_id, None}, made
    audit = admin_raw.call("ListAuditEvents", {"PrincipalName": "system", "ResourceId": pp_id})["AuditEvents"]
    assert sorted(e["Action"] for e in audit) == ["CreateProvisionedProductPlan", "ExecuteProvisionedProductPlan"], audit
    assert all(e["Parameters"]["OnBehalfOf"] == owner["PrincipalId"] for e in audit), audit
    assert all(e["Parameters"]["DriftCheckTaskId"] == checked["TaskId"] for e in audit), audit
    # Each record names what it queued: the plan, then the execution's task.
    by_action = {e["Action"]: e["RequestId"] for e in audit}
    assert by_action["CreateProvisionedProductPlan"].endswith("/" + plan_id), audit
    assert by_action["ExecuteProvisionedProductPlan"].endswith("/" + update_id), audit
