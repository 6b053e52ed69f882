"""Upgrades of provisioned products (extensions): each provisioned product's update policy (`Manual` by
default, `FollowRecommended`, `Pinned`), taken by LaunchProduct and set by UpdateProvisionedProductPolicy
(its owner or an administrator), carried by GetProvisionedProduct and ListProvisionedProducts; and
upgrade campaigns: an administrator previews the update of a product's provisioned products to a new
version, then upgrades them in waves (each an ordinary update task on behalf of the owner, audited as the
system, told to webhooks), stopping at a failure threshold, paused, resumed, cancelled; pinned products are
skipped.

Extension actions and parameters go through our own signer (the SDK has no method for them). Every wait
is bounded polling; no duration is asserted (times are printed).
"""
from __future__ import annotations

import json
import os
import time

import pytest

from sclib import expect_error
from test_cluster import psql
from test_cluster import cluster, pg  # noqa: F401  (fixtures)
from test_console_audit import Console
from test_provisioning import (HELLO_TF, REGION, SANDBOX_HEADER, TASK_DEADLINE, Product, get_pp, launch, make_product,
                               needs_provider, needs_terraform, new_user, tf_body, wait_task)
from test_webhooks import Receiver

pytestmark = [needs_terraform, needs_provider]

PG_URL = os.environ.get("SERVICECATALOG_TEST_POSTGRES")


def raw_pp(raw, pp_id: str) -> dict:
    return raw.call("GetProvisionedProduct", {"ProvisionedProductId": pp_id})["ProvisionedProductDetail"]


def set_policy(raw, pp_id: str, policy: str) -> dict:
    return raw.call("UpdateProvisionedProductPolicy", {"ProvisionedProductId": pp_id, "UpdatePolicy": policy})


def test_the_update_policy_is_set_at_launch_changed_by_owner_or_administrator_and_listed(server):
    me, _, raw = new_user(server)
    admin_raw = server.caller("raw-v3")
    product = make_product(server.caller("v3"), HELLO_TF, users=[me])
    manual_id, _ = launch(raw, product, {"owner": "manual"})
    pinned_id, _ = launch(raw, product, {"owner": "pinned"}, UpdatePolicy="Pinned")
    assert raw_pp(raw, manual_id)["UpdatePolicy"] == "Manual"
    assert raw_pp(raw, pinned_id)["UpdatePolicy"] == "Pinned"
    expect_error(400, "InvalidParameter.UpdatePolicy", launch, raw, product, {"owner": "x"}, UpdatePolicy="Sometimes")

    answer = set_policy(raw, manual_id, "FollowRecommended")
    assert (answer["ProvisionedProductId"], answer["UpdatePolicy"]) == (manual_id, "FollowRecommended"), answer
    assert raw_pp(raw, manual_id)["UpdatePolicy"] == "FollowRecommended"
    assert set_policy(admin_raw, pinned_id, "Manual")["UpdatePolicy"] == "Manual"
    listed = raw.call("ListProvisionedProducts", {"PageSize": 100})["ProvisionedProductDetails"]
    assert {p["ProvisionedProductId"]: p["UpdatePolicy"] for p in listed} == {manual_id: "FollowRecommended", pinned_id: "Manual"}

    # Bad values, others' products and unknown ones change nothing.
    expect_error(400, "InvalidParameter.UpdatePolicy", set_policy, raw, manual_id, "Never")
    expect_error(400, "MissingParameter.UpdatePolicy", raw.call, "UpdateProvisionedProductPolicy", {"ProvisionedProductId": manual_id})
    _, _, other_raw = new_user(server)
    expect_error(404, "EntityNotExists.ProvisionedProduct", set_policy, other_raw, manual_id, "Pinned")
    expect_error(404, "EntityNotExists.ProvisionedProduct", set_policy, raw, "pp-nonexistent", "Pinned")
    assert raw_pp(raw, manual_id)["UpdatePolicy"] == "FollowRecommended"
    # Audited like every change.
    audit = admin_raw.call("ListAuditEvents", {"AuditAction": "UpdateProvisionedProductPolicy", "ResourceId": manual_id})["AuditEvents"]
    assert me["PrincipalId"] in [e["PrincipalId"] for e in audit], audit


# ----------------------------------------------------------------------------- upgrade campaigns

# Version 2 adds a file to every provisioned product; the one whose owner is "doomed" also gets a
# resource whose creation fails (the plan previews it; the apply fails).
V2_TF = SANDBOX_HEADER + HELLO_TF + """
resource "sandbox_file" "v2" {
  path    = "v2/${var.owner}.txt"
  content = "upgraded"
}

resource "sandbox_failure" "doomed" {
  count   = var.owner == "doomed" ? 1 : 0
  message = "doomed-by-design"
}
"""


def campaign(raw, campaign_id: str) -> dict:
    return raw.call("GetUpgradeCampaign", {"CampaignId": campaign_id})["UpgradeCampaign"]


def wait_campaign(raw, campaign_id: str, done, what: str, deadline: float = 6 * TASK_DEADLINE) -> dict:
    """Polls the campaign until `done(campaign)`; fails after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        c = campaign(raw, campaign_id)
        if done(c):
            return c
        assert time.monotonic() < end, f"campaign not {what} in time: {c['Status']} {c['Summary']}"
        time.sleep(0.5)


def by_status(c: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for item in c["Items"]:
        out.setdefault(item["Status"], []).append(item)
    return out


def new_version(admin, product: Product, name: str, main_tf: str) -> str:
    url = admin.call("CreateTemplate", {"TemplateType": "RosTerraformTemplate", "TemplateBody": tf_body(main_tf)})["TemplateUrl"]
    return admin.call("CreateProductVersion", {"ProductId": product.product_id, "ProductVersionName": name,
                                               "TemplateUrl": url, "TemplateType": "RosTerraformTemplate"})["ProductVersionId"]


@pytest.fixture(scope="module")
def campaign_server(server_factory):
    """A server with four workers whose webhooks may post to loopback endpoints."""
    return server_factory(args=["--webhook-targets", "http://127.0.0.1", "--workers", "4"])


def test_a_campaign_upgrades_twenty_products_in_waves_stops_at_a_failure_and_resumes_to_completion(campaign_server):
    srv = campaign_server
    admin_raw = srv.caller("raw-v3")
    me, _, raw = new_user(srv)
    other, _, other_raw = new_user(srv)
    product = make_product(srv.caller("v3"), HELLO_TF, users=[me, other])
    receiver = Receiver()
    admin_raw.call("CreateWebhook", {"Url": receiver.url, "EventTypes.1": "CampaignUpdateQueued"})
    began = time.monotonic()
    # 20 provisioned products (the 8th, in the second wave, doomed), and one pinned.
    launched = [launch(raw if i % 2 else other_raw, product, {"owner": "doomed" if i == 7 else f"o{i}"}) for i in range(20)]
    pinned_id, pinned_task = launch(raw, product, {"owner": "pinned"}, UpdatePolicy="Pinned")
    for (pp_id, task_id) in launched + [(pinned_id, pinned_task)]:
        assert wait_task(admin_raw, task_id)["Status"] == "Succeeded"
    ids = [pp_id for pp_id, _ in launched]
    doomed = ids[7]
    print(f"\n21 launches: {time.monotonic() - began:.1f} s")

    v2 = new_version(srv.caller("v3"), product, "v2", V2_TF)
    created = admin_raw.call("CreateUpgradeCampaign", {
        "ProductId": product.product_id, "TargetProductVersionId": v2, "SourceProductVersionIds.1": product.version_id,
        "WaveSize": 5, "Parallelism": 5, "FailureThreshold": 1})
    campaign_id = created["CampaignId"]
    began = time.monotonic()
    planned = wait_campaign(admin_raw, campaign_id, lambda c: c["Status"] == "Planned", "planned")
    print(f"21 previews: {time.monotonic() - began:.1f} s")
    # The summary: every product previewed, the pinned one skipped and said so; nothing destroyed.
    items = by_status(planned)
    assert {s: len(i) for s, i in items.items()} == {"Planned": 20, "Skipped": 1}, planned["Summary"]
    assert items["Skipped"][0]["ProvisionedProductId"] == pinned_id and "Pinned" in items["Skipped"][0]["Message"]
    summary = planned["Summary"]
    assert (summary["Selected"], summary["Add"], summary["Change"], summary["Replace"], summary["Destroy"]) == (21, 21, 0, 0, 0), summary
    assert summary["Destroying"] == []
    assert [i["ProvisionedProductId"] for i in planned["Items"] if i["Status"] == "Planned"] == ids
    assert [i["Wave"] for i in items["Planned"]] == [w for w in (1, 2, 3, 4) for _ in range(5)]
    assert all(i["PlanId"] and "TaskId" not in i for i in items["Planned"])
    # Nothing is updated before the campaign starts.
    assert {get_pp(admin_raw, pp_id)["ProductVersionId"] for pp_id in ids} == {product.version_id}

    began = time.monotonic()
    assert admin_raw.call("StartUpgradeCampaign", {"CampaignId": campaign_id})["Status"] == "Running"
    stopped = wait_campaign(admin_raw, campaign_id, lambda c: c["Status"] == "Stopped"
                            and "Updating" not in c["Summary"]["Statuses"], "stopped")
    print(f"stopped after the failure: {time.monotonic() - began:.1f} s")
    items = by_status(stopped)
    # The first wave, and the second with its failure (its five ran together); waves 3 and 4 untouched.
    assert [i["ProvisionedProductId"] for i in items["Failed"]] == [doomed]
    assert "doomed-by-design" in items["Failed"][0]["Message"]
    assert sorted(i["Wave"] for i in items["Succeeded"]) == [1] * 5 + [2] * 4
    assert [i["Wave"] for i in items["Planned"]] == [3] * 5 + [4] * 5
    assert stopped["Summary"]["Failures"] == 1
    assert all(get_pp(admin_raw, pp_id)["ProductVersionId"] == product.version_id for pp_id in ids[10:])

    began = time.monotonic()
    assert admin_raw.call("ResumeUpgradeCampaign", {"CampaignId": campaign_id})["Status"] == "Running"
    done = wait_campaign(admin_raw, campaign_id, lambda c: c["Status"] == "Completed", "completed")
    print(f"resumed to completion: {time.monotonic() - began:.1f} s")
    counts = {s: len(i) for s, i in by_status(done).items()}
    assert counts == {"Succeeded": 19, "Failed": 1, "Skipped": 1}, counts
    assert done["Summary"]["Failures"] == 0, "failures before the resume no longer count"
    # Each product updated once, by an ordinary task on behalf of its owner, audited as the system.
    for pp_id in ids:
        pp = get_pp(admin_raw, pp_id)
        tasks = admin_raw.call("ListTasks", {"ProvisionedProductId": pp_id, "PageSize": 100})["TaskDetails"]
        updates = [t for t in tasks if t["TaskType"] == "UpdateProvisionedProduct"]
        assert len(updates) == 1, (pp_id, tasks)
        assert updates[0]["ProductVersionId"] == v2
        assert (pp["Status"], pp["ProductVersionId"]) == (("Error", product.version_id) if pp_id == doomed else ("Available", v2))
    assert get_pp(raw, pinned_id)["ProductVersionId"] == product.version_id
    audit = admin_raw.call("ListAuditEvents", {"AuditAction": "UpdateProvisionedProduct", "ResourceId": ids[0]})["AuditEvents"]
    assert [e["PrincipalName"] for e in audit] == ["system"], audit
    parameters = json.loads(audit[0]["Parameters"]) if isinstance(audit[0]["Parameters"], str) else audit[0]["Parameters"]
    assert (parameters["OnBehalfOf"], parameters["CampaignId"]) == (other["PrincipalId"], campaign_id), parameters
    # Owners are told of each update queued for them, once.
    end = time.monotonic() + 30
    while len(receiver.events("CampaignUpdateQueued")) < 20 and time.monotonic() < end:
        time.sleep(0.2)
    events = receiver.events("CampaignUpdateQueued")
    assert sorted(e["ProvisionedProductId"] for e in events) == sorted(ids)
    assert all(e["CampaignId"] == campaign_id and e["TaskId"] and e["ProductVersionId"] == v2 for e in events)
    assert {e["ProvisionedProductId"]: e["OwnerPrincipalId"] for e in events}[ids[0]] == other["PrincipalId"]
    listed = admin_raw.call("ListUpgradeCampaigns", {})["UpgradeCampaigns"]
    assert campaign_id in [c["CampaignId"] for c in listed] and "Items" not in listed[0]


def test_campaign_refusals_pause_and_cancel(campaign_server):
    srv = campaign_server
    admin_raw = srv.caller("raw-v3")
    me, _, raw = new_user(srv)
    product = make_product(srv.caller("v3"), HELLO_TF, users=[me])
    ids = [launch(raw, product, {"owner": f"c{i}"}) for i in range(2)]
    for _, task_id in ids:
        assert wait_task(raw, task_id)["Status"] == "Succeeded"
    v2 = new_version(srv.caller("v3"), product, "v2", HELLO_TF.replace("Owner and size.", "Owner and size (v2)."))
    create = lambda **extra: admin_raw.call("CreateUpgradeCampaign", {"ProductId": product.product_id,  # noqa: E731
                                                                      "TargetProductVersionId": v2, **extra})
    expect_error(400, "InvalidParameter.WaveSize", create, WaveSize=0)
    expect_error(400, "InvalidParameter.SourceProductVersionIds", create, **{"SourceProductVersionIds.1": v2})
    expect_error(400, "InvalidParameter.SourceProductVersionIds", create, **{"SourceProductVersionIds.1": "pv-nonexistent"})
    expect_error(404, "EntityNotExists.ProductVersion", admin_raw.call, "CreateUpgradeCampaign",
                 {"ProductId": product.product_id, "TargetProductVersionId": "pv-nonexistent"})
    expect_error(403, "Forbidden.AdministratorOnly", raw.call, "CreateUpgradeCampaign",
                 {"ProductId": product.product_id, "TargetProductVersionId": v2})
    expect_error(404, "EntityNotExists.UpgradeCampaign", admin_raw.call, "GetUpgradeCampaign", {"CampaignId": "campaign-nonexistent"})
    assert admin_raw.call("ListUpgradeCampaigns", {"PageSize": 100})["TotalCount"] >= 0

    # Selections: another owner's, or a tag nobody has, selects nothing; all older versions by default.
    empty = create(**{"OwnerIds.1": "nobody"})["CampaignId"]
    assert wait_campaign(admin_raw, empty, lambda c: c["Status"] == "Planned", "planned")["Summary"]["Selected"] == 0
    campaign_id = create()["CampaignId"]
    planned = wait_campaign(admin_raw, campaign_id, lambda c: c["Status"] == "Planned", "planned")
    assert planned["SourceProductVersionIds"] == [product.version_id]
    assert planned["Summary"]["Change"] == 0 and len(by_status(planned)["Planned"]) == 2, planned
    expect_error(409, "InvalidStatus.UpgradeCampaign", admin_raw.call, "PauseUpgradeCampaign", {"CampaignId": campaign_id})
    expect_error(409, "InvalidStatus.UpgradeCampaign", admin_raw.call, "ResumeUpgradeCampaign", {"CampaignId": campaign_id})
    assert admin_raw.call("CancelUpgradeCampaign", {"CampaignId": campaign_id})["Status"] == "Canceled"
    cancelled = campaign(admin_raw, campaign_id)
    assert {i["Status"] for i in cancelled["Items"]} == {"Canceled"}
    plans = [raw.call("GetProvisionedProductPlan", {"PlanId": i["PlanId"]})["PlanDetail"]["Status"] for i in cancelled["Items"]]
    assert plans == ["Canceled", "Canceled"]
    expect_error(409, "InvalidStatus.UpgradeCampaign", admin_raw.call, "StartUpgradeCampaign", {"CampaignId": campaign_id})
    expect_error(409, "InvalidStatus.UpgradeCampaign", admin_raw.call, "CancelUpgradeCampaign", {"CampaignId": campaign_id})
    # Audited like every change.
    audit = admin_raw.call("ListAuditEvents", {"AuditAction": "CancelUpgradeCampaign", "ResourceId": campaign_id})["AuditEvents"]
    assert len(audit) == 2, audit


def test_products_following_the_recommended_version_are_updated_to_it_and_others_are_not(server):
    me, _, raw = new_user(server)
    admin = server.caller("v3")
    product = make_product(admin, HELLO_TF, users=[me])
    follower, follower_task = launch(raw, product, {"owner": "follower"}, UpdatePolicy="FollowRecommended")
    manual, manual_task = launch(raw, product, {"owner": "manual"})
    for task_id in (follower_task, manual_task):
        assert wait_task(raw, task_id)["Status"] == "Succeeded"
    v2 = new_version(admin, product, "v2", HELLO_TF.replace("Owner and size.", "Owner and size (v2)."))
    time.sleep(6)  # more than the scheduler's interval: a version merely created is not followed
    assert get_pp(raw, follower)["ProductVersionId"] == product.version_id
    admin.call("UpdateProductVersion", {"ProductVersionId": v2, "ProductVersionName": "v2", "Guidance": "Recommended"})
    end = time.monotonic() + TASK_DEADLINE
    while not (get_pp(raw, follower)["ProductVersionId"] == v2 and get_pp(raw, follower)["Status"] == "Available"):
        assert time.monotonic() < end, get_pp(raw, follower)
        time.sleep(0.5)
    assert get_pp(raw, manual)["ProductVersionId"] == product.version_id
    tasks = raw.call("ListTasks", {"ProvisionedProductId": follower, "PageSize": 100})["TaskDetails"]
    assert [t["TaskType"] for t in tasks].count("UpdateProvisionedProduct") == 1, tasks
    audit = server.caller("raw-v3").call("ListAuditEvents", {"AuditAction": "UpdateProvisionedProduct", "ResourceId": follower})["AuditEvents"]
    assert [e["PrincipalName"] for e in audit] == ["system"], audit


def test_the_console_sets_policies_and_runs_a_campaign(server, admin_key):
    me, _, raw = new_user(server)
    admin_raw = server.caller("raw-v3")
    product = make_product(server.caller("v3"), HELLO_TF, users=[me])
    user_console = Console(server, me["AccessKeyId"], me["AccessKeySecret"])
    r = user_console.post(f"/console/products/{product.product_id}/launch", name="console-policy", region=REGION,
                          policy="Pinned", **{"param.owner": "c"})
    assert r.status_code == 303, (r.status_code, r.text[:300])
    pp_id = next(p["ProvisionedProductId"] for p in raw.call("ListProvisionedProducts", {"PageSize": 100})["ProvisionedProductDetails"]
                 if p["ProvisionedProductName"] == "console-policy")
    assert raw_pp(raw, pp_id)["UpdatePolicy"] == "Pinned"
    assert wait_task(raw, raw_pp(raw, pp_id)["LastTaskId"])["Status"] == "Succeeded"
    page = user_console.http.get(f"{user_console.base}/console/provisioned/{pp_id}", timeout=30).text
    assert 'action="/console/provisioned/' + pp_id + '/policy"' in page and "Pinned" in page, page[:2000]
    r = user_console.post(f"/console/provisioned/{pp_id}/policy", policy="Sometimes")
    assert r.status_code == 400 and raw_pp(raw, pp_id)["UpdatePolicy"] == "Pinned", r.status_code
    assert user_console.post(f"/console/provisioned/{pp_id}/policy", policy="Manual").status_code == 303
    assert raw_pp(raw, pp_id)["UpdatePolicy"] == "Manual"

    v2 = new_version(server.caller("v3"), product, "v2", HELLO_TF.replace("Owner and size.", "Owner and size (v2)."))
    console = Console(server, *admin_key)
    r = console.post("/console/admin/campaigns", product=product.product_id, target=v2, WaveSize="0")
    assert r.status_code == 400 and "WaveSize" in r.text, r.status_code
    r = console.post("/console/admin/campaigns", product=product.product_id, target=v2, owners=me["PrincipalId"])
    assert r.status_code == 303, (r.status_code, r.text[:300])
    campaign_path = r.headers["location"]
    campaign_id = campaign_path.rsplit("/", 1)[1]
    wait_campaign(admin_raw, campaign_id, lambda c: c["Status"] == "Planned", "planned")
    page = console.http.get(f"{console.base}{campaign_path}", timeout=30).text
    assert pp_id in page and f'action="{campaign_path}/start"' in page, page[:3000]
    assert console.post(f"{campaign_path}/start").status_code == 303
    done = wait_campaign(admin_raw, campaign_id, lambda c: c["Status"] == "Completed", "completed")
    assert [i["Status"] for i in done["Items"]] == ["Succeeded"] and raw_pp(raw, pp_id)["ProductVersionId"] == v2
    assert campaign_id in console.http.get(f"{console.base}/console/admin/campaigns", timeout=30).text
    # End users have no campaign pages.
    assert user_console.http.get(f"{user_console.base}/console/admin/campaigns", timeout=30).status_code == 403


# Version 2 of the cluster test's product: each update sleeps, so that a node can be killed mid-wave.
SLOW_V2_TF = SANDBOX_HEADER + HELLO_TF + """
resource "sandbox_sleep" "upgrade" {
  duration_ms = 1500
}
"""


@pytest.mark.skipif(not PG_URL, reason="SERVICECATALOG_TEST_POSTGRES not set")
def test_a_node_killed_mid_wave_loses_nothing_and_updates_no_product_twice(cluster):  # noqa: F811
    a = cluster.node("--workers", "2")
    b = cluster.node("--workers", "2")
    user = a.create_user()
    raw_a = a.caller("raw-v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    admin_b = b.caller("raw-v3")
    product = make_product(a.caller("v3"), HELLO_TF, users=[user])
    launched = [launch(raw_a, product, {"owner": f"k{i}"}) for i in range(10)]
    for _, task_id in launched:
        assert wait_task(raw_a, task_id)["Status"] == "Succeeded"
    v2 = new_version(a.caller("v3"), product, "v2", SLOW_V2_TF)
    campaign_id = a.caller("raw-v3").call("CreateUpgradeCampaign", {
        "ProductId": product.product_id, "TargetProductVersionId": v2, "WaveSize": 5, "Parallelism": 4,
        "FailureThreshold": 10})["CampaignId"]
    wait_campaign(admin_b, campaign_id, lambda c: c["Status"] == "Planned", "planned")
    admin_b.call("StartUpgradeCampaign", {"CampaignId": campaign_id})
    wait_campaign(admin_b, campaign_id, lambda c: "Updating" in c["Summary"]["Statuses"], "updating")
    a.kill9()  # whatever A held (the campaign's job, running updates) is taken over after its lease
    done = wait_campaign(admin_b, campaign_id, lambda c: c["Status"] == "Completed", "completed")
    statuses = [i["Status"] for i in done["Items"]]
    assert set(statuses) <= {"Succeeded", "Failed"} and statuses.count("Succeeded") >= 6, done["Items"]
    for item in done["Items"]:
        pp_id = item["ProvisionedProductId"]
        updates = psql(cluster.database, "SELECT task_id FROM tasks WHERE task_type = 'UpdateProvisionedProduct' "
                                         f"AND provisioned_product_id = '{pp_id}'").split()
        assert updates == [item["TaskId"]], (pp_id, updates, item)
        audited = psql(cluster.database, "SELECT COUNT(*) FROM audit_events WHERE principal_name = 'system' "
                                         f"AND action = 'UpdateProvisionedProduct' AND resource_id = '{pp_id}'")
        assert audited == "1", (pp_id, audited)
