"""Everything a change asks for is validated before a task is queued (issue 22): values that do
not fit the declared Terraform types, Template-constraint values, names a caller already uses,
and tags are refused with a field-level error, and the refusal writes nothing (no provisioned
product, no task, no plan).
"""
from __future__ import annotations

import threading

import pytest

from sclib import ApiError, expect_error, uniq
from test_catalog_access import create_constraint
from test_plans import wait_plan
from test_provisioning import (REGION, get_pp, kv, launch, make_product, needs_terraform, terminate, wait_pp_gone,
                               wait_task)

TYPES_TF = """
variable "count_of" {
  type    = number
  default = 1
}
variable "enabled" {
  type    = bool
  default = true
}
variable "names" {
  type    = list(string)
  default = []
}
variable "sizes" {
  type    = map(number)
  default = {}
}
variable "server" {
  type    = object({ name = string, size = optional(number) })
  default = { name = "a" }
}
variable "pair" {
  type    = tuple([string, number])
  default = ["a", 1]
}
variable "size" {
  type    = string
  default = "small"
}
output "count_of" {
  value = var.count_of
}
"""

GOOD = {"count_of": "2.5", "enabled": "false", "names": '["a", "b"]', "sizes": '{"a": 1, "b": "2"}',
        "server": '{"name": "web", "size": 2}', "pair": '["x", 3]'}

BAD = [
    ("count_of", "abc", "is not a number"),
    ("enabled", "yes", "is not a bool"),
    ("names", "a,b", "must be JSON text"),
    ("names", '[["a"]]', "[0]"),
    ("sizes", '{"a": "big"}', '"a"'),
    ("server", '{"size": 1}', '"name" is missing'),
    ("pair", '["x"]', "is not a tuple"),
]


def own_products(caller) -> list[dict]:
    return caller.call("ListProvisionedProducts", {"PageSize": 100})["ProvisionedProductDetails"]


def own_plans(caller) -> list[dict]:
    return caller.call("ListProvisionedProductPlans", {"PageSize": 100})["PlanDetails"]


def launch_plan(caller, product, name: str, params: dict | None = None, **extra) -> str:
    return caller.call("CreateProvisionedProductPlan", {
        "PlanName": uniq("plan-"), "PlanType": "Ros", "OperationType": "LaunchProduct",
        "ProductId": product.product_id, "ProductVersionId": product.version_id,
        "ProvisionedProductName": name, "StackRegionId": REGION, "Parameters": kv(params), **extra})["PlanId"]


@pytest.fixture
def typed(admin_v3, end_user):
    info, caller = end_user
    return make_product(admin_v3, TYPES_TF, users=[info]), caller()


@pytest.mark.parametrize("key,value,why", BAD)
def test_values_that_do_not_fit_the_declared_type_are_refused_before_anything_is_queued(typed, key, value, why):
    product, caller = typed
    for attempt in (lambda: launch(caller, product, {key: value}), lambda: launch_plan(caller, product, uniq("pp-"), {key: value})):
        e = expect_error(400, "InvalidParameter.Parameters", attempt)
        assert f'"{key}"' in e.message and why in e.message, e.message
    assert own_products(caller) == [] and own_plans(caller) == []


@needs_terraform
def test_values_that_fit_are_launched_and_an_update_is_checked_the_same_way(typed):
    product, caller = typed
    pp_id, task_id = launch(caller, product, GOOD)
    assert wait_task(caller, task_id)["Status"] == "Succeeded"
    e = expect_error(400, "InvalidParameter.Parameters", caller.call, "UpdateProvisionedProduct", {
        "ProvisionedProductId": pp_id, "ProductId": product.product_id, "ProductVersionId": product.version_id,
        "Parameters": kv({"count_of": "many"})})
    assert '"count_of"' in e.message and "is not a number" in e.message
    pp = get_pp(caller, pp_id)
    assert (pp["Status"], pp["LastTaskId"]) == ("Available", task_id), "the refused update queued nothing"


def test_template_constraint_values_are_refused_before_anything_is_queued(admin_v3, typed):
    product, caller = typed
    create_constraint(admin_v3, product.portfolio_id, product.product_id, "Template",
                      {"Parameters": {"size": {"AllowedValues": ["small", "large"]}}})
    e = expect_error(400, "InvalidParameter.Parameters", launch, caller, product, {"size": "medium"})
    assert '"size"' in e.message and "small, large" in e.message
    expect_error(400, "InvalidParameter.Parameters", launch_plan, caller, product, uniq("pp-"), {"size": "medium"})
    assert own_products(caller) == [] and own_plans(caller) == []
    launch(caller, product, {"size": "large"})


def test_names_are_unique_per_owner_among_live_products_and_launch_plans(admin_v3, server, make_user):
    alice, bob = make_user(), make_user()
    product = make_product(admin_v3, TYPES_TF, users=[alice, bob])
    a, b = (server.caller("v3", (u["AccessKeyId"], u["AccessKeySecret"])) for u in (alice, bob))
    name = uniq("Web-")
    launch(a, product, name=name)
    for attempt in (lambda: launch(a, product, name=name.lower()), lambda: launch_plan(a, product, name.upper())):
        e = expect_error(400, "InvalidParameter.ProvisionedProductName", attempt)
        assert "already have a provisioned product" in e.message
    assert len(own_products(a)) == 1 and own_plans(a) == []
    launch(b, product, name=name)  # another owner may use the name

    planned = uniq("planned-")
    plan_id = launch_plan(a, product, planned)
    e = expect_error(400, "InvalidParameter.ProvisionedProductName", launch, a, product, name=planned)
    assert plan_id in e.message, "the launch plan reserves its name"
    expect_error(400, "InvalidParameter.ProvisionedProductName", launch_plan, a, product, planned)
    assert len(own_products(a)) == 1 and len(own_plans(a)) == 1
    wait_plan(a, plan_id)  # a plan is cancelled once its preview is done
    a.call("CancelProvisionedProductPlan", {"PlanId": plan_id})
    launch(a, product, name=planned)  # a cancelled plan no longer reserves it


def test_one_name_asked_for_at_once_goes_to_one_launch_or_plan(admin_v3, server, make_user):
    """Launches and launch plans of one name sent together: the name check and the write are one step, so exactly
    one of them takes the name and every other is refused, with nothing of it written."""
    user = make_user()
    product = make_product(admin_v3, TYPES_TF, users=[user])
    name = uniq("race-")
    callers = [server.caller("v3", (user["AccessKeyId"], user["AccessKeySecret"])) for _ in range(8)]
    attempts = [(lambda c=c: launch(c, product, name=name)) if i % 2 else (lambda c=c: launch_plan(c, product, name.upper()))
                for i, c in enumerate(callers)]
    outcomes: list = [None] * len(attempts)
    start = threading.Barrier(len(attempts))

    def attempt(i):
        start.wait()
        try:
            outcomes[i] = ("ok", attempts[i]())
        except ApiError as e:
            outcomes[i] = ("refused", e)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(attempts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [o for o in outcomes if o[0] == "ok"]
    assert len(accepted) == 1, outcomes
    for kind, e in outcomes:
        if kind == "refused":
            assert (e.status, e.code) == (400, "InvalidParameter.ProvisionedProductName"), e
    assert len(own_products(callers[0])) + len(own_plans(callers[0])) == 1


@needs_terraform
def test_a_terminated_products_name_is_free_again(admin_v3, typed):
    product, caller = typed
    name = uniq("again-")
    pp_id, task_id = launch(caller, product, name=name)
    assert wait_task(caller, task_id)["Status"] == "Succeeded"
    wait_task(caller, terminate(caller, pp_id))
    wait_pp_gone(caller, pp_id)
    launch(caller, product, name=name)


@pytest.mark.parametrize("tags,field", [
    ([{"Key": "env", "Value": "a"}, {"Key": "env", "Value": "b"}], "Tags.2.Key"),
    ([{"Key": "acs:env", "Value": "a"}], "Tags.1.Key"),
    ([{"Key": "env", "Value": "https://example.com"}], "Tags.1.Value"),
    ([{"Key": f"k{i}", "Value": "v"} for i in range(21)], "Tags"),
])
def test_tags_are_refused_before_anything_is_queued(typed, tags, field):
    product, caller = typed
    e = expect_error(400, "InvalidParameter.Tags", launch, caller, product, Tags=tags)
    assert field in e.message, e.message
    expect_error(400, "InvalidParameter.Tags", launch_plan, caller, product, uniq("pp-"), Tags=tags)
    assert own_products(caller) == [] and own_plans(caller) == []
