"""Upgrades of provisioned products (extensions): each provisioned product's update policy (`Manual` by
default, `FollowRecommended`, `Pinned`), taken by LaunchProduct and set by UpdateProvisionedProductPolicy
(its owner or an administrator), carried by GetProvisionedProduct and ListProvisionedProducts.

Extension actions and parameters go through our own signer (the SDK has no method for them). Every wait
is bounded polling; no duration is asserted (times are printed).
"""
from __future__ import annotations

from sclib import expect_error
from test_provisioning import HELLO_TF, launch, make_product, needs_provider, needs_terraform, new_user

pytestmark = [needs_terraform, needs_provider]


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

