"""Deprecation and dependencies (extensions).

Deprecation: a version whose Guidance is Deprecated cannot be launched nor updated to
(409 InvalidStatus.ProductVersion); GetProvisionedProduct and ListProvisionedProducts carry
`ProductVersionDeprecated`, ListProvisionedProducts filters on `Deprecated`; webhooks hear
`VersionDeprecated` once per provisioned product running a version that becomes Deprecated.

Dependencies: a parameter value may read an output of another provisioned product,
`${provisioned-product:pp-….output:Name}`, resolved when the task is queued (the task's Parameters
hold the value, its `ParameterReferences` the reference). When the upstream's output changes the
dependent is marked stale (`DependencyStale`, a `DependencyStale` event) and, when its update policy
is FollowRecommended, updated by the scheduler. Cycles, self references, unreadable products,
missing and sensitive outputs are refused; terminating an upstream is refused unless forced.

Extension fields are read through our own signer (the SDK drops them). Every wait is bounded polling.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from sclib import ApiError, expect_error, uniq
from test_console_audit import Console
from test_provisioning import (HELLO_TF, SECRET_TF, TASK_DEADLINE, get_task, launch, make_product, needs_provider,
                               needs_terraform, new_user, outputs, parameters, update, wait_pp_gone, wait_task)
from test_webhooks import Receiver

pytestmark = [needs_terraform, needs_provider]


@pytest.fixture(scope="module")
def deps_server(server_factory):
    """A server whose webhooks may post to loopback endpoints."""
    return server_factory(args=["--webhook-targets", "http://127.0.0.1"])


def ref(pp_id: str, output: str) -> str:
    return "${provisioned-product:" + pp_id + ".output:" + output + "}"


def raw_pp(raw, pp_id: str) -> dict:
    return raw.call("GetProvisionedProduct", {"ProvisionedProductId": pp_id})["ProvisionedProductDetail"]


def raw_task(raw, task_id: str) -> dict:
    return raw.call("GetTask", {"TaskId": task_id})["TaskDetail"]


def launched(caller, product, params: dict) -> str:
    pp_id, task_id = launch(caller, product, params)
    assert wait_task(caller, task_id)["Status"] == "Succeeded"
    return pp_id


def set_policy(raw, pp_id: str, policy: str) -> None:
    raw.call("UpdateProvisionedProductPolicy", {"ProvisionedProductId": pp_id, "UpdatePolicy": policy})


def wait_new_task(raw, pp_id: str, after: str, deadline: float = TASK_DEADLINE) -> str:
    """The id of the task after `after` that the provisioned product runs (bounded polling)."""
    end = time.monotonic() + deadline
    while True:
        last = raw_pp(raw, pp_id)["LastTaskId"]
        if last != after:
            return last
        assert time.monotonic() < end, f"{pp_id} ran no task after {after}"
        time.sleep(0.2)


def test_a_dependent_is_updated_after_its_upstreams_output_changes(deps_server):
    me, caller, raw = new_user(deps_server)
    admin_raw = deps_server.caller("raw-v3")
    product = make_product(deps_server.caller("v3"), HELLO_TF, users=[me])
    receiver = Receiver()
    admin_raw.call("CreateWebhook", {"Url": receiver.url, "PortfolioId": product.portfolio_id, "EventTypes": ["DependencyStale"]})

    network = launched(caller, product, {"owner": "net", "name": "net-1"})
    # Text around the reference stays; `$${` is a literal `${`.
    given = "db@" + ref(network, "greeting") + " $${provisioned-product:x}"
    follower = launched(caller, product, {"owner": given})
    manual = launched(caller, product, {"owner": ref(network, "greeting")})
    first = raw_pp(raw, follower)["LastTaskId"]
    task = raw_task(raw, first)
    assert parameters(task)["owner"] == "db@Hello, net-1! ${provisioned-product:x}"
    assert task["ParameterReferences"] == [{"ParameterKey": "owner", "ParameterValue": given}]
    assert outputs(task)["owner_size"]["OutputValue"] == "db@Hello, net-1! ${provisioned-product:x}/small"
    detail = raw_pp(raw, follower)
    assert detail["DependencyStale"] is False and detail["ProductVersionDeprecated"] is False
    set_policy(raw, follower, "FollowRecommended")

    # An output the dependents do not read changes: nothing is stale.
    assert wait_task(caller, update(caller, network, product, {"size": "large"}))["Status"] == "Succeeded"
    assert raw_pp(raw, manual)["DependencyStale"] is False
    # The output they read changes: both are marked stale, the follower is updated on its owner's behalf.
    assert wait_task(caller, update(caller, network, product, {"name": "net-2"}))["Status"] == "Succeeded"
    second = wait_new_task(raw, follower, first)
    done = wait_task(caller, second)
    assert (done["Status"], done["TaskType"]) == ("Succeeded", "UpdateProvisionedProduct"), done
    assert outputs(done)["owner_size"]["OutputValue"] == "db@Hello, net-2! ${provisioned-product:x}/small"
    assert raw_task(raw, second)["ParameterReferences"] == [{"ParameterKey": "owner", "ParameterValue": given}]
    assert raw_pp(raw, follower)["DependencyStale"] is False
    # The Manual one is only marked; its owner's update (giving nothing) resolves it again.
    assert raw_pp(raw, manual)["DependencyStale"] is True
    console = Console(deps_server, me["AccessKeyId"], me["AccessKeySecret"])
    page = console.http.get(f"{console.base}/console/provisioned/{manual}", timeout=30).text
    assert "status-stale" in page and network in page, page[:3000]
    page = console.http.get(f"{console.base}/console/provisioned/{network}", timeout=30).text
    assert "Read by" in page and manual in page and follower in page
    events = receiver.wait_for(lambda e: {x["ProvisionedProductId"] for x in e} >= {follower, manual}, "DependencyStale events")
    assert all(e["UpstreamProvisionedProductId"] == network and e["OutputKeys"] == ["greeting"] for e in events), events
    refreshed = wait_task(caller, update(caller, manual, product, {}))
    assert parameters(refreshed)["owner"] == "Hello, net-2!"
    assert raw_pp(raw, manual)["DependencyStale"] is False
    audit = admin_raw.call("ListAuditEvents", {"PrincipalName": "system", "ResourceId": follower})["AuditEvents"]
    assert [e["Action"] for e in audit] == ["UpdateProvisionedProduct"], audit
    assert audit[0]["Parameters"]["OnBehalfOf"] == me["PrincipalId"], audit
    receiver.close()


def test_bad_references_and_cycles_are_refused(deps_server):
    me, caller, raw = new_user(deps_server)
    _, other_caller, _ = new_user(deps_server)
    admin = deps_server.caller("v3")
    product = make_product(admin, HELLO_TF, users=[me])
    secret_product = make_product(admin, SECRET_TF, users=[me])
    upstream = launched(caller, product, {"owner": "up"})
    secret = launched(caller, secret_product, {"password": "hunter2"})
    dependent = launched(caller, product, {"owner": ref(upstream, "greeting")})

    other_product = make_product(admin, HELLO_TF, users=[_other := deps_server.create_user()])
    theirs = launched(deps_server.caller("v3", (_other["AccessKeyId"], _other["AccessKeySecret"])), other_product, {"owner": "x"})
    for value, words in ((ref("pp-doesnotexist", "greeting"), "does not exist"),
                         (ref(theirs, "greeting"), "does not exist"),
                         (ref(upstream, "nope"), "has no output"),
                         (ref(secret, "secret"), "sensitive"),
                         ("${provisioned-product:" + upstream + "}", "does not name an output"),
                         ("${provisioned-product:" + upstream + ".output:greeting", "not closed")):
        e = expect_error(400, "InvalidParameter.Parameters", launch, caller, product, {"owner": value})
        assert words in e.message, (value, e.message)
    # A sensitive parameter takes no reference.
    e = expect_error(400, "InvalidParameter.Parameters", launch, caller, secret_product, {"password": ref(upstream, "greeting")})
    assert "sensitive" in e.message
    # Self reference, and a cycle: upstream reading dependent, which reads upstream.
    e = expect_error(400, "InvalidParameter.Parameters", update, caller, dependent, product, {"name": ref(dependent, "greeting")})
    assert "its own outputs" in e.message
    e = expect_error(400, "InvalidParameter.Parameters", update, caller, upstream, product, {"name": ref(dependent, "greeting")})
    assert f"cycle: {upstream} → {dependent} → {upstream}" in e.message, e.message
    assert raw_pp(raw, upstream)["Status"] == "Available"
    # The other user cannot read ours either.
    expect_error(400, "InvalidParameter.Parameters", launch, other_caller, product, {"owner": ref(upstream, "greeting")})


def test_updates_sent_together_cannot_close_a_cycle_between_them(deps_server):
    """Each update alone closes nothing; together they would (a reads b, b reads c, c reads a). The check is made
    again in the transaction that queues each update, so one of them is refused and writes nothing."""
    me, _, raw = new_user(deps_server)
    product = make_product(deps_server.caller("v3"), HELLO_TF, users=[me])
    key = (me["AccessKeyId"], me["AccessKeySecret"])
    first = deps_server.caller("v3", key)
    ids = [launched(first, product, {"owner": name}) for name in ("a", "b", "c")]
    outcomes: list = [None] * 3
    start = threading.Barrier(3)

    def send(i):
        caller = deps_server.caller("v3", key)
        start.wait()
        try:
            outcomes[i] = ("queued", update(caller, ids[i], product, {"owner": ref(ids[(i + 1) % 3], "greeting")}))
        except ApiError as e:
            outcomes[i] = ("refused", e)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [(i, o[1]) for i, o in enumerate(outcomes) if o[0] == "refused"]
    assert len(refused) == 1, outcomes
    i, e = refused[0]
    assert (e.status, e.code) == (400, "InvalidParameter.Parameters") and "cycle" in e.message, e
    assert raw_pp(raw, ids[i])["Status"] == "Available", "the refused update queued nothing"
    for j, (kind, task_id) in enumerate(outcomes):
        if kind == "queued":
            assert wait_task(first, task_id)["Status"] == "Succeeded", j


def test_terminating_an_upstream_is_refused_unless_forced(deps_server):
    me, caller, raw = new_user(deps_server)
    product = make_product(deps_server.caller("v3"), HELLO_TF, users=[me])
    upstream = launched(caller, product, {"owner": "up"})
    name = uniq("reader-")
    dependent, task_id = launch(caller, product, {"owner": ref(upstream, "greeting")}, name=name)
    assert wait_task(caller, task_id)["Status"] == "Succeeded"
    e = expect_error(409, "InvalidStatus.ProvisionedProduct", caller.call, "TerminateProvisionedProduct",
                     {"ProvisionedProductId": upstream})
    assert dependent in e.message and name in e.message and "Force=true" in e.message
    assert raw_pp(raw, upstream)["Status"] == "Available"
    raw.call("TerminateProvisionedProduct", {"ProvisionedProductId": upstream, "Force": True})
    wait_pp_gone(caller, upstream)
    # A terminated dependent no longer holds its upstream.
    second = launched(caller, product, {"owner": "up2"})
    reader = launched(caller, product, {"owner": ref(second, "greeting")})
    caller.call("TerminateProvisionedProduct", {"ProvisionedProductId": reader})
    wait_pp_gone(caller, reader)
    caller.call("TerminateProvisionedProduct", {"ProvisionedProductId": second})
    wait_pp_gone(caller, second)


def test_a_deprecated_version_is_refused_flagged_listed_and_told(deps_server):
    me, caller, raw = new_user(deps_server)
    admin = deps_server.caller("v3")
    admin_raw = deps_server.caller("raw-v3")
    product = make_product(admin, HELLO_TF, users=[me])
    receiver = Receiver()
    admin_raw.call("CreateWebhook", {"Url": receiver.url, "PortfolioId": product.portfolio_id, "EventTypes": ["VersionDeprecated"]})
    template = admin.call("GetTemplate", {"ProductId": product.product_id, "ProductVersionId": product.version_id})
    url = admin.call("CreateTemplate", {"TemplateType": "RosTerraformTemplate", "TemplateBody": template["TemplateBody"]})["TemplateUrl"]
    v2 = admin.call("CreateProductVersion", {"ProductId": product.product_id, "ProductVersionName": "v2",
                                             "TemplateType": "RosTerraformTemplate", "TemplateUrl": url})["ProductVersionId"]
    admin.call("UpdateProductVersion", {"ProductVersionId": v2, "ProductVersionName": "v2", "Guidance": "Deprecated"})
    deprecated = dataclasses.replace(product, version_id=v2)
    e = expect_error(409, "InvalidStatus.ProductVersion", launch, caller, deprecated, {"owner": "x"})
    assert "Deprecated" in e.message
    pp_id = launched(caller, product, {"owner": "x"})
    expect_error(409, "InvalidStatus.ProductVersion", update, caller, pp_id, deprecated, {"owner": "y"})
    assert raw_pp(raw, pp_id)["ProductVersionDeprecated"] is False

    # v1 becomes Deprecated: flagged, listed, told once; its products may still change parameters.
    admin.call("UpdateProductVersion", {"ProductVersionId": product.version_id, "ProductVersionName": "v1", "Guidance": "Deprecated"})
    admin.call("UpdateProductVersion", {"ProductVersionId": product.version_id, "ProductVersionName": "v1", "Guidance": "Deprecated"})
    assert raw_pp(raw, pp_id)["ProductVersionDeprecated"] is True
    listed = admin_raw.call("ListProvisionedProducts", {"AccessLevelFilter": "Account", "PageSize": 100,
                                                        "Filters": [{"Key": "Deprecated", "Value": "true"}]})
    assert pp_id in {p["ProvisionedProductId"] for p in listed["ProvisionedProductDetails"]}
    assert all(p["ProductVersionDeprecated"] for p in listed["ProvisionedProductDetails"])
    current = admin_raw.call("ListProvisionedProducts", {"AccessLevelFilter": "Account", "PageSize": 100,
                                                         "Filters": [{"Key": "Deprecated", "Value": "false"}]})
    assert pp_id not in {p["ProvisionedProductId"] for p in current["ProvisionedProductDetails"]}
    expect_error(400, "InvalidParameter.Filters", raw.call, "ListProvisionedProducts",
                 {"Filters": [{"Key": "Deprecated", "Value": "maybe"}]})
    events = receiver.wait_for(lambda e: any(x["ProvisionedProductId"] == pp_id for x in e), "a VersionDeprecated event")
    time.sleep(0.5)
    told = [x for x in receiver.events("VersionDeprecated") if x["ProvisionedProductId"] == pp_id]
    assert len(told) == 1 and told[0]["OwnerPrincipalId"] == me["PrincipalId"], events
    assert wait_task(caller, update(caller, pp_id, product, {"owner": "z"}))["Status"] == "Succeeded"
    receiver.close()
    # The console: a badge for the owner, a count and a list for administrators.
    mine = Console(deps_server, me["AccessKeyId"], me["AccessKeySecret"])
    page = mine.http.get(f"{mine.base}/console/provisioned/{pp_id}", timeout=30).text
    assert "status-deprecated" in page, page[:2000]
    admin_console = Console(deps_server, *deps_server.admin_key())
    page = admin_console.http.get(f"{admin_console.base}/console/admin/products/{product.product_id}", timeout=30).text
    assert "1 provisioned product runs a Deprecated version" in page, page[:3000]
    listed = admin_console.http.get(f"{admin_console.base}/console/provisioned",
                                    params={"scope": "account", "deprecated": "true", "product": product.product_id}, timeout=30).text
    assert pp_id in listed and "on Deprecated versions" in listed
