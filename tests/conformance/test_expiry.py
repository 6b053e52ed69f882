"""Expiry of provisioned products (extensions): an `Expiry` constraint gives a product's provisioned
products a default and a maximum lifetime; LaunchProduct takes an `ExpiryTime`; UpdateProvisionedProductExpiry
moves it (the owner within the maximum, an administrator beyond it); GetProvisionedProduct and
ListProvisionedProducts carry `ExpiryTime`. At the expiry the scheduler terminates the product on behalf of
its owner, once, also across a cluster whose node holding the job dies; webhooks hear `ExpiryWarning` and
`Expired` once each.

Extension actions and parameters go through our own signer (the SDK has no method for them). Every wait
is bounded polling; no duration is asserted (times are printed).
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from sclib import expect_error
from test_console_audit import Console
from test_cluster import DEADLINE, psql, user_on
from test_cluster import cluster, pg  # noqa: F401  (fixtures)
from test_provisioning import (HELLO_TF, REGION, TASK_DEADLINE, get_task, launch, make_product, needs_provider, needs_terraform,
                               new_user, wait_pp_gone, wait_task)
from test_webhooks import Receiver

pytestmark = [needs_terraform, needs_provider]

PG_URL = os.environ.get("SERVICECATALOG_TEST_POSTGRES")


def stamp(when: datetime) -> str:
    """`when` as an ExpiryTime (whole seconds, UTC)."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def at(delta: timedelta) -> str:
    """An ExpiryTime `delta` from now."""
    return stamp(datetime.now(timezone.utc) + delta)


def parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def expiry_constraint(admin_raw, product, config: dict) -> str:
    return admin_raw.call("CreateConstraint", {"PortfolioId": product.portfolio_id, "ProductId": product.product_id,
                                               "ConstraintType": "Expiry", "Config": json.dumps(config)})["ConstraintId"]


def raw_pp(raw, pp_id: str) -> dict:
    return raw.call("GetProvisionedProduct", {"ProvisionedProductId": pp_id})["ProvisionedProductDetail"]


def set_expiry(raw, pp_id: str, when: str | None) -> dict:
    params = {"ProvisionedProductId": pp_id}
    if when is not None:
        params["ExpiryTime"] = when
    return raw.call("UpdateProvisionedProductExpiry", params)


@pytest.fixture(scope="module")
def expiry_server(server_factory):
    """A server whose webhooks may post to loopback endpoints."""
    return server_factory(args=["--webhook-targets", "http://127.0.0.1"])


def test_expiry_is_set_at_launch_within_the_maximum_and_extended_by_owner_or_administrator(expiry_server):
    me, caller, raw = new_user(expiry_server)
    admin_raw = expiry_server.caller("raw-v3")
    product = make_product(expiry_server.caller("v3"), HELLO_TF, users=[me])
    # Without an Expiry constraint a provisioned product never expires.
    plain_id, plain_task = launch(raw, product, {"owner": "plain"})
    assert "ExpiryTime" not in raw_pp(raw, plain_id)

    for bad in ({"DefaultMinutes": 0, "MaxMinutes": 10}, {"DefaultMinutes": 20, "MaxMinutes": 10},
                {"DefaultMinutes": 1, "MaxMinutes": 10, "WarningMinutes": [2, 2]}, {"MaxMinutes": 10}):
        expect_error(400, "InvalidParameter.Config", expiry_constraint, admin_raw, product, bad)
    expiry_constraint(admin_raw, product, {"DefaultMinutes": 60, "MaxMinutes": 120, "WarningMinutes": [30]})

    # The default lifetime, or an ExpiryTime within the maximum; beyond it nothing is launched.
    before = datetime.now(timezone.utc)
    default_id, default_task = launch(raw, product, {"owner": "default"})
    expires = parse(raw_pp(raw, default_id)["ExpiryTime"])
    assert timedelta(minutes=59) < expires - before < timedelta(minutes=61), expires
    listed = raw.call("ListProvisionedProducts", {"PageSize": 100})["ProvisionedProductDetails"]
    assert {p["ProvisionedProductId"]: p.get("ExpiryTime") for p in listed}[default_id] == raw_pp(raw, default_id)["ExpiryTime"]
    count = raw.call("ListProvisionedProducts", {"PageSize": 100})["TotalCount"]
    e = expect_error(400, "InvalidParameter.ExpiryTime", launch, raw, product, {"owner": "x"}, ExpiryTime=at(timedelta(hours=3)))
    assert "longest lifetime" in e.message, e
    expect_error(400, "InvalidParameter.ExpiryTime", launch, raw, product, {"owner": "x"}, ExpiryTime="next week")
    expect_error(400, "InvalidParameter.ExpiryTime", launch, raw, product, {"owner": "x"}, ExpiryTime=at(-timedelta(minutes=1)))
    assert raw.call("ListProvisionedProducts", {"PageSize": 100})["TotalCount"] == count, "a refused launch leaves nothing"
    asked = at(timedelta(minutes=90))
    pp_id, launched = launch(raw, product, {"owner": "asked"}, ExpiryTime=asked)
    assert raw_pp(raw, pp_id)["ExpiryTime"] == asked
    for task in (plain_task, default_task, launched):
        assert wait_task(caller, task)["Status"] == "Succeeded"

    # The owner extends within the maximum (counted from the launch), not beyond it, and cannot remove it.
    created = parse(raw_pp(raw, pp_id)["CreateTime"])
    within = stamp(created + timedelta(minutes=115))
    assert set_expiry(raw, pp_id, within)["ExpiryTime"] == within
    assert raw_pp(raw, pp_id)["ExpiryTime"] == within
    expect_error(400, "InvalidParameter.ExpiryTime", set_expiry, raw, pp_id, at(timedelta(hours=5)))
    expect_error(400, "InvalidParameter.ExpiryTime", set_expiry, raw, pp_id, None)
    assert raw_pp(raw, pp_id)["ExpiryTime"] == within, "a refused extension changes nothing"
    # An administrator's call is the approval: beyond the maximum, or removed.
    beyond = at(timedelta(days=3))
    assert set_expiry(admin_raw, pp_id, beyond)["ExpiryTime"] == beyond
    assert raw_pp(raw, pp_id)["ExpiryTime"] == beyond
    assert "ExpiryTime" not in set_expiry(admin_raw, default_id, None)
    assert "ExpiryTime" not in raw_pp(raw, default_id)
    # Others see nothing; unknown products are unknown.
    _, _, other_raw = new_user(expiry_server)
    expect_error(404, "EntityNotExists.ProvisionedProduct", set_expiry, other_raw, pp_id, within)
    expect_error(404, "EntityNotExists.ProvisionedProduct", set_expiry, raw, "pp-nonexistent", within)
    expect_error(400, "InvalidParameter.ExpiryTime", set_expiry, raw, pp_id, "soon")
    # Audited like every change.
    audit = admin_raw.call("ListAuditEvents", {"AuditAction": "UpdateProvisionedProductExpiry", "ResourceId": pp_id})["AuditEvents"]
    assert [e["PrincipalId"] for e in audit].count(me["PrincipalId"]) >= 1 and len(audit) >= 2, audit


def test_the_console_launches_with_an_expiry_shows_it_and_extends_it(expiry_server):
    me, caller, raw = new_user(expiry_server)
    product = make_product(expiry_server.caller("v3"), HELLO_TF, users=[me])
    expiry_constraint(expiry_server.caller("raw-v3"), product, {"DefaultMinutes": 60, "MaxMinutes": 120})
    console = Console(expiry_server, me["AccessKeyId"], me["AccessKeySecret"])
    launch_path = f"/console/products/{product.product_id}/launch"
    r = console.post(launch_path, name="console-expiry", region=REGION, expiry=at(timedelta(hours=5)), **{"param.owner": "c"})
    assert r.status_code == 400 and "longest lifetime" in r.text, (r.status_code, r.text[:300])
    asked = at(timedelta(minutes=45))
    r = console.post(launch_path, name="console-expiry", region=REGION, expiry=asked, **{"param.owner": "c"})
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert wait_task(caller, r.headers["location"].rsplit("/", 1)[1])["Status"] == "Succeeded"
    pp_id = next(p["ProvisionedProductId"] for p in raw.call("ListProvisionedProducts", {"PageSize": 100})["ProvisionedProductDetails"]
                 if p["ProvisionedProductName"] == "console-expiry")
    assert raw_pp(raw, pp_id)["ExpiryTime"] == asked
    page = console.http.get(f"{console.base}/console/provisioned/{pp_id}", timeout=30).text
    assert asked in page and 'action="/console/provisioned/' + pp_id + '/expiry"' in page, page[:2000]
    later = at(timedelta(minutes=100))
    r = console.post(f"/console/provisioned/{pp_id}/expiry", expiry=later)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    assert raw_pp(raw, pp_id)["ExpiryTime"] == later
    r = console.post(f"/console/provisioned/{pp_id}/expiry", expiry=at(timedelta(days=2)))
    assert r.status_code == 400 and raw_pp(raw, pp_id)["ExpiryTime"] == later, r.status_code


def test_a_short_expiry_warns_then_terminates_once_despite_an_approval_constraint(expiry_server):
    me, caller, raw = new_user(expiry_server)
    admin_raw = expiry_server.caller("raw-v3")
    product = make_product(expiry_server.caller("v3"), HELLO_TF, users=[me])
    receiver = Receiver()
    admin_raw.call("CreateWebhook", {"Url": receiver.url, "PortfolioId": product.portfolio_id,
                                     "EventTypes": ["ExpiryWarning", "Expired", "TaskSucceeded"]})
    # The administrator who set the Expiry constraint approved its terminates in advance.
    admin_raw.call("CreateConstraint", {"PortfolioId": product.portfolio_id, "ProductId": product.product_id,
                                        "ConstraintType": "Approval", "Config": json.dumps({
                                            "OperationTypes": ["TerminateProvisionedProduct"],
                                            "Approvers": [{"Type": "RamUser", "Pattern": "*"}]})})
    expiry_constraint(admin_raw, product, {"DefaultMinutes": 1, "MaxMinutes": 1, "WarningMinutes": [0.25]})
    pp_id, launched = launch(raw, product, {"owner": "short"}, ExpiryTime=at(timedelta(seconds=25)))
    expires = parse(raw_pp(raw, pp_id)["ExpiryTime"])
    assert wait_task(caller, launched)["Status"] == "Succeeded"
    wait_pp_gone(caller, pp_id, deadline=TASK_DEADLINE + 30)
    gone = datetime.now(timezone.utc)
    events = receiver.wait_for(lambda e: any(x["EventType"] == "TaskSucceeded" and x.get("TaskType") == "TerminateProvisionedProduct"
                                             for x in e), "the expiry's terminate told")
    time.sleep(3)  # anything told twice would arrive by now
    events = [e for e in receiver.events() if e.get("ProvisionedProductId") == pp_id]
    receiver.close()
    kinds = [e["EventType"] for e in events]
    assert kinds.count("ExpiryWarning") == 1 and kinds.count("Expired") == 1, kinds
    warning = next(e for e in events if e["EventType"] == "ExpiryWarning")
    expired = next(e for e in events if e["EventType"] == "Expired")
    assert warning["ExpiryTime"] == expired["ExpiryTime"] == stamp(expires), (warning, expired)
    assert kinds.index("ExpiryWarning") < kinds.index("Expired")
    task = get_task(caller, expired["TaskId"])
    assert (task["TaskType"], task["Status"]) == ("TerminateProvisionedProduct", "Succeeded"), task
    terminates = [e for e in events if e["EventType"] == "TaskSucceeded" and e["TaskType"] == "TerminateProvisionedProduct"]
    assert [e["TaskId"] for e in terminates] == [expired["TaskId"]], "exactly one terminate"
    audit = admin_raw.call("ListAuditEvents", {"PrincipalName": "system", "ResourceId": pp_id})["AuditEvents"]
    assert [e["Action"] for e in audit] == ["TerminateProvisionedProduct"], audit
    assert audit[0]["Parameters"]["OnBehalfOf"] == me["PrincipalId"], audit
    print(f"\nexpired at {expires:%H:%M:%S}, gone {(gone - expires).total_seconds():.1f} s later")


# ----------------------------------------------------------------------------- cluster (PostgreSQL)


def terminate_tasks(database: str, pp_id: str) -> list[str]:
    out = psql(database, "SELECT task_id FROM tasks WHERE task_type = 'TerminateProvisionedProduct' "
                         f"AND provisioned_product_id = '{pp_id}'")
    return out.split()


def system_terminates(database: str, pp_id: str) -> int:
    return int(psql(database, "SELECT COUNT(*) FROM audit_events WHERE principal_name = 'system' "
                              f"AND action = 'TerminateProvisionedProduct' AND resource_id = '{pp_id}'"))


def one_minute_product(node, user):
    product = make_product(node.caller("v3"), HELLO_TF, users=[user])
    expiry_constraint(node.caller("raw-v3"), product, {"DefaultMinutes": 1, "MaxMinutes": 1})
    return product


@pytest.mark.skipif(not PG_URL, reason="SERVICECATALOG_TEST_POSTGRES not set")
def test_two_nodes_terminate_a_one_minute_expiry_exactly_once(cluster):  # noqa: F811
    a = cluster.node("--workers", "1")
    b = cluster.node("--workers", "1")
    user = a.create_user()
    on_a, on_b = user_on([a, b], user)
    product = one_minute_product(a, user)
    pp_id, launched = launch(on_a, product, {"owner": "expiry"})
    assert wait_task(on_b, launched)["Status"] == "Succeeded"
    expires = parse(raw_pp(b.caller("raw-v3"), pp_id)["ExpiryTime"])
    wait_pp_gone(on_b, pp_id, deadline=60 + DEADLINE)
    late = (datetime.now(timezone.utc) - expires).total_seconds()
    time.sleep(3)
    assert len(terminate_tasks(cluster.database, pp_id)) == 1, terminate_tasks(cluster.database, pp_id)
    assert system_terminates(cluster.database, pp_id) == 1
    end = time.monotonic() + DEADLINE
    while psql(cluster.database, f"SELECT COUNT(*) FROM scheduled_jobs WHERE subject = '{pp_id}'") != "0":
        assert time.monotonic() < end, "the expiry job of a terminated product stays"
        time.sleep(0.5)
    print(f"\na one-minute expiry on two nodes: gone {late:.1f} s after its ExpiryTime")


@pytest.mark.skipif(not PG_URL, reason="SERVICECATALOG_TEST_POSTGRES not set")
def test_an_expiry_job_held_by_a_killed_node_terminates_once_on_another(cluster):  # noqa: F811
    # A holds the expiry job at the expiry (a test-only delay) until it is killed; B takes it over.
    a = cluster.node("--workers", "1", "--test-expiry-hold-seconds", "600")
    user = a.create_user()
    product = one_minute_product(a, user)
    (on_a,) = user_on([a], user)
    pp_id, launched = launch(on_a, product, {"owner": "held"})
    assert wait_task(on_a, launched)["Status"] == "Succeeded"
    end = time.monotonic() + 60 + DEADLINE
    while "holding an expiry job" not in a.log_path.read_bytes().decode(errors="replace"):
        assert time.monotonic() < end, "A never held the expiry job"
        time.sleep(0.2)
    owner = psql(cluster.database, f"SELECT lease_owner FROM scheduled_jobs WHERE kind = 'Expiry' AND subject = '{pp_id}'")
    assert owner, "A holds the job"
    assert terminate_tasks(cluster.database, pp_id) == [], "nothing queued while A holds the job"
    a.kill9()
    killed = time.monotonic()
    b = cluster.node("--workers", "1")
    (on_b,) = user_on([b], user)
    wait_pp_gone(on_b, pp_id, deadline=DEADLINE)
    print(f"\nthe expiry job taken over from a killed node: gone {time.monotonic() - killed:.1f} s after the kill")
    time.sleep(3)
    assert len(terminate_tasks(cluster.database, pp_id)) == 1, terminate_tasks(cluster.database, pp_id)
    assert system_terminates(cluster.database, pp_id) == 1
