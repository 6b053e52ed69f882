"""ListConstraints, the extension the vendor lacks: an administrator lists the constraints of a
portfolio, of a product or of one pair with their Config (the console's pages use it); end users
are refused."""

from __future__ import annotations

import json

from sclib import expect_error, uniq
from test_provisioning import SECRET_TF, make_product, new_user


def test_list_constraints_lists_a_portfolios_and_a_products_constraints_for_administrators_only(server):
    """ListConstraints (an extension: not in the SDK), with our own signer."""
    admin = server.caller("raw-v3")
    portfolio = admin.call("CreatePortfolio", {"PortfolioName": uniq("lc-"), "ProviderName": "lc"})["PortfolioId"]
    other = admin.call("CreatePortfolio", {"PortfolioName": uniq("lc-other-"), "ProviderName": "lc"})["PortfolioId"]
    product = make_product(server.caller("v3"), SECRET_TF, portfolio_id=portfolio)
    admin.call("AssociateProductWithPortfolio", {"ProductId": product.product_id, "PortfolioId": other})
    made = [admin.call("CreateConstraint", {"PortfolioId": p, "ProductId": product.product_id, "ConstraintType": "StackRegion",
                                             "Config": '{"StackRegions": ["cn-hangzhou"]}', "Description": p})["ConstraintId"]
            for p in (portfolio, other)]
    by_portfolio = admin.call("ListConstraints", {"PortfolioId": portfolio})["ConstraintDetails"]
    assert [c["ConstraintId"] for c in by_portfolio] == made[:1], by_portfolio
    c = by_portfolio[0]
    assert (c["ConstraintType"], c["PortfolioId"], c["ProductId"], c["Description"]) == \
        ("StackRegion", portfolio, product.product_id, portfolio), c
    assert c["ProductName"] and c["PortfolioName"].startswith("lc-") and c["CreateTime"].endswith("Z"), c
    assert json.loads(c["Config"]) == {"StackRegions": ["cn-hangzhou"]}, c
    by_product = admin.call("ListConstraints", {"ProductId": product.product_id})["ConstraintDetails"]
    assert sorted(c["ConstraintId"] for c in by_product) == sorted(made), by_product
    pair = admin.call("ListConstraints", {"PortfolioId": other, "ProductId": product.product_id})["ConstraintDetails"]
    assert [c["ConstraintId"] for c in pair] == made[1:], pair
    assert admin.call("ListConstraints", {"PortfolioId": "port-missing0000000"})["ConstraintDetails"] == []
    _, _, user_raw = new_user(server)
    expect_error(403, "Forbidden.AdministratorOnly", user_raw.call, "ListConstraints", {"ProductId": product.product_id})
