"""Issue acceptance for the catalog: a catalog of 3 portfolios and 5 products with 2 versions
each, granted to a user, a role and a name pattern; every principal's ListProductsAsEndUser and
ListLaunchOptions are checked exactly (a private server, so nothing else is granted)."""
from __future__ import annotations

import json

import pytest

from sclib import expect_error, uniq
from test_catalog_products import create_portfolio, create_product, create_template, version_parameters


@pytest.fixture
def catalog(fresh_server):
    srv = fresh_server()
    admin = srv.caller("v3")
    portfolios = {name: create_portfolio(admin) for name in ("P1", "P2", "P3")}
    products, versions = {}, {}
    for name in "ABCDE":
        product_id, v1 = create_product(admin, name=f"product-{name}-{uniq()}")
        v2 = admin.call("CreateProductVersion", {"ProductId": product_id, "ProductVersionName": "2.0",
                                                 "TemplateType": "RosTerraformTemplate",
                                                 "TemplateUrl": create_template(admin)})["ProductVersionId"]
        products[name], versions[name] = product_id, (v1, v2)
    # B's second version is withdrawn: end users must not see it.
    admin.call("UpdateProductVersion", {"ProductVersionId": versions["B"][1], "ProductVersionName": "2.0", "Active": False})
    for portfolio, names in (("P1", "AB"), ("P2", "BCD"), ("P3", "E")):
        for name in names:
            admin.call("AssociateProductWithPortfolio", {"PortfolioId": portfolios[portfolio], "ProductId": products[name]})
    role = json.loads(srv.cli("roles", "create", uniq("team-"), "--json").stdout)
    tag = uniq().lower()
    users = {
        "direct": srv.create_user(uniq("direct-")),                       # P1 directly
        "member": srv.create_user(uniq("member-"), role=role["RoleName"]),  # P2 through the role
        "both": srv.create_user(uniq("both-"), role=role["RoleName"]),      # P1 directly and P2 through the role
        "pattern": srv.create_user(f"pat-{tag}-x"),                         # P1 and P3 by pattern
        "nobody": srv.create_user(uniq("nobody-")),
    }
    grants = [
        ("P1", {"PrincipalType": "RamUser", "PrincipalId": users["direct"]["PrincipalId"]}),
        ("P1", {"PrincipalType": "RamUser", "PrincipalId": users["both"]["PrincipalId"]}),
        ("P2", {"PrincipalType": "RamRole", "PrincipalId": role["PrincipalId"]}),
        ("P1", {"PrincipalType": "RamUser", "PrincipalPattern": f"pat-{tag}-*"}),
        ("P3", {"PrincipalType": "RamUser", "PrincipalPattern": f"pat-{tag}-*"}),
    ]
    for portfolio, principal in grants:
        admin.call("AssociatePrincipalWithPortfolio", {"PortfolioId": portfolios[portfolio], **principal})
    return srv, portfolios, products, versions, users


# who → {product: launch-option portfolios}
EXPECTED = {
    "direct": {"A": ["P1"], "B": ["P1"]},
    "member": {"B": ["P2"], "C": ["P2"], "D": ["P2"]},
    "both": {"A": ["P1"], "B": ["P1", "P2"], "C": ["P2"], "D": ["P2"]},
    "pattern": {"A": ["P1"], "B": ["P1"], "E": ["P3"]},
    "nobody": {},
}


@pytest.mark.parametrize("flavor", ["v3", "v1", "core"])
def test_each_principal_sees_exactly_its_grants(catalog, flavor):
    srv, portfolios, products, versions, users = catalog
    name_of = {v: k for k, v in products.items()}
    portfolio_name_of = {v: k for k, v in portfolios.items()}
    for who, expected in EXPECTED.items():
        user = users[who]
        caller = srv.caller(flavor, (user["AccessKeyId"], user["AccessKeySecret"]))
        listed = caller.call("ListProductsAsEndUser", {"PageSize": 100})
        seen = {name_of[p["ProductId"]]: p["HasDefaultLaunchOption"] for p in listed["ProductSummaries"]}
        assert set(seen) == set(expected), (who, seen)
        assert listed["TotalCount"] == len(expected), who
        for name, options in expected.items():
            assert seen[name] == (len(options) == 1), (who, name)
            got = caller.call("ListLaunchOptions", {"ProductId": products[name]})["LaunchOptionSummaries"]
            assert sorted(portfolio_name_of[o["PortfolioId"]] for o in got) == options, (who, name)
            summary = caller.call("GetProductAsEndUser", {"ProductId": products[name]})["ProductSummary"]
            assert summary["HasDefaultLaunchOption"] == (len(options) == 1), (who, name)
        for name in set(products) - set(expected):
            expect_error(404, "EntityNotExists.Product", caller.call, "ListLaunchOptions", {"ProductId": products[name]})
            expect_error(404, "EntityNotExists.Product", caller.call, "GetProductAsEndUser", {"ProductId": products[name]})


def test_end_users_see_only_active_versions(catalog):
    srv, _, products, versions, users = catalog
    user = users["direct"]
    caller = srv.caller("v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    listed = caller.call("ListProductVersions", {"ProductId": products["B"]})["ProductVersionDetails"]
    assert [v["ProductVersionId"] for v in listed] == [versions["B"][0]]
    admin = srv.caller("v3")
    all_versions = admin.call("ListProductVersions", {"ProductId": products["B"]})["ProductVersionDetails"]
    assert {v["ProductVersionId"] for v in all_versions} == set(versions["B"])
