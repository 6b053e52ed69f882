"""Who may use what: portfolio grants (direct, through a role, by name pattern), constraints and
launch options, tag options, and the roles / launch-roles commands — through the official SDK
against the real binary."""
from __future__ import annotations

import json

import pytest

from sclib import expect_error, parse_time, uniq
from test_catalog_products import create_portfolio, create_product


# ----------------------------------------------------------------------------- fixtures


def cli_json(server, *args):
    return json.loads(server.cli(*args, "--json").stdout)


def key_of(user):
    return user["AccessKeyId"], user["AccessKeySecret"]


@pytest.fixture
def listed(admin_v3):
    """A portfolio holding a fresh product: (portfolio_id, product_id)."""
    portfolio_id = create_portfolio(admin_v3)
    product_id, _ = create_product(admin_v3)
    admin_v3.call("AssociateProductWithPortfolio", {"PortfolioId": portfolio_id, "ProductId": product_id})
    return portfolio_id, product_id


@pytest.fixture
def launch_role(server):
    """A launch role registered with the CLI; its name."""
    name = uniq("lr-")
    server.cli("launch-roles", "create", name, "--env", "ALICLOUD_ACCESS_KEY=AKdemo", "--env", "ALICLOUD_SECRET_KEY=s3cr3t-value")
    return name


@pytest.fixture
def access_world(server, admin_v3, make_user, listed):
    """One product in one portfolio and four end users: granted directly, through a role, by a
    name pattern, and not at all."""
    portfolio_id, product_id = listed
    tag = uniq().lower()
    role = cli_json(server, "roles", "create", uniq("role-"))
    users = {
        "direct": make_user(),
        "role": server.create_user(uniq("member-"), role=role["RoleName"]),
        "pattern": make_user(name=f"pat-{tag}-carol"),
        "none": make_user(name=f"nopat-{tag}-dave"),
    }
    for params in (
        {"PrincipalType": "RamUser", "PrincipalId": users["direct"]["PrincipalId"]},
        {"PrincipalType": "RamRole", "PrincipalId": role["PrincipalId"]},
        {"PrincipalType": "RamUser", "PrincipalPattern": f"pat-{tag}-*"},
    ):
        admin_v3.call("AssociatePrincipalWithPortfolio", {"PortfolioId": portfolio_id, **params})
    return {"portfolio": portfolio_id, "product": product_id, "role": role, "users": users, "tag": tag}


def launch_options(server, user, product_id, flavor="v3"):
    return server.caller(flavor, key_of(user)).call("ListLaunchOptions", {"ProductId": product_id})["LaunchOptionSummaries"]


# ----------------------------------------------------------------------------- grants


@pytest.mark.parametrize("flavor", ["v3", "v1", "core"])
def test_access_matrix(server, access_world, flavor):
    w = access_world
    for who in ("direct", "role", "pattern"):
        options = launch_options(server, w["users"][who], w["product"], flavor)
        assert [o["PortfolioId"] for o in options] == [w["portfolio"]], who
        assert options[0]["PortfolioName"] and options[0]["ConstraintSummaries"] == [], who
    caller = server.caller(flavor, key_of(w["users"]["none"]))
    expect_error(404, "EntityNotExists.Product", caller.call, "ListLaunchOptions", {"ProductId": w["product"]})


def test_end_user_product_view_follows_grants(server, access_world):
    w = access_world
    for who, visible in (("direct", True), ("role", True), ("pattern", True), ("none", False)):
        c = server.caller("v3", key_of(w["users"][who]))
        ids = [p["ProductId"] for p in c.call("ListProductsAsEndUser", {"PageSize": 100})["ProductSummaries"]]
        assert (w["product"] in ids) == visible, who


def test_role_patterns_match_role_names(server, admin_v3, listed):
    portfolio_id, product_id = listed
    prefix = uniq("team-").lower()
    server.cli("roles", "create", f"{prefix}-east")
    member = server.create_user(uniq("m-"), role=f"{prefix}-east")
    outsider = server.create_user(uniq("o-"), role=uniq("other-"))
    admin_v3.call("AssociatePrincipalWithPortfolio",
                  {"PortfolioId": portfolio_id, "PrincipalType": "RamRole", "PrincipalPattern": f"{prefix}-*"})
    assert launch_options(server, member, product_id)[0]["PortfolioId"] == portfolio_id
    expect_error(404, "EntityNotExists.Product", server.caller("v3", key_of(outsider)).call,
                 "ListLaunchOptions", {"ProductId": product_id})


def test_list_principals_and_disassociate(server, admin_v3, access_world):
    w = access_world
    principals = admin_v3.call("ListPrincipals", {"PortfolioId": w["portfolio"]})["Principals"]
    assert {"PrincipalType": "RamUser", "PrincipalId": w["users"]["direct"]["PrincipalId"]} in principals
    assert {"PrincipalType": "RamRole", "PrincipalId": w["role"]["PrincipalId"]} in principals
    assert {"PrincipalType": "RamUser", "PrincipalPattern": f"pat-{w['tag']}-*"} in principals
    assert len(principals) == 3

    params = {"PortfolioId": w["portfolio"], "PrincipalType": "RamUser", "PrincipalId": w["users"]["direct"]["PrincipalId"]}
    admin_v3.call("DisassociatePrincipalFromPortfolio", params)
    expect_error(404, "EntityNotExists.Product", server.caller("v3", key_of(w["users"]["direct"])).call,
                 "ListLaunchOptions", {"ProductId": w["product"]})
    expect_error(404, "EntityNotExists.Principal", admin_v3.call, "DisassociatePrincipalFromPortfolio", params)
    pattern = {"PortfolioId": w["portfolio"], "PrincipalType": "RamUser", "PrincipalPattern": f"pat-{w['tag']}-*"}
    admin_v3.call("DisassociatePrincipalFromPortfolio", pattern)
    assert len(admin_v3.call("ListPrincipals", {"PortfolioId": w["portfolio"]})["Principals"]) == 1


def test_associate_principal_is_idempotent_and_validated(server, admin_v3, make_user):
    portfolio_id = create_portfolio(admin_v3)
    user = make_user()
    role = cli_json(server, "roles", "create", uniq("r-"))
    ok = {"PortfolioId": portfolio_id, "PrincipalType": "RamUser", "PrincipalId": user["PrincipalId"]}
    admin_v3.call("AssociatePrincipalWithPortfolio", ok)
    admin_v3.call("AssociatePrincipalWithPortfolio", ok)
    assert len(admin_v3.call("ListPrincipals", {"PortfolioId": portfolio_id})["Principals"]) == 1

    call = admin_v3.call
    expect_error(404, "EntityNotExists.Principal", call, "AssociatePrincipalWithPortfolio", {**ok, "PrincipalId": "1234567890123456"})
    expect_error(404, "EntityNotExists.Principal", call, "AssociatePrincipalWithPortfolio", {**ok, "PrincipalId": role["PrincipalId"]})
    expect_error(404, "EntityNotExists.Portfolio", call, "AssociatePrincipalWithPortfolio", {**ok, "PortfolioId": "port-doesnotexist00"})
    expect_error(400, "InvalidParameter.PrincipalType", call, "AssociatePrincipalWithPortfolio", {**ok, "PrincipalType": "Group"})
    expect_error(400, "InvalidParameter.PrincipalPattern", call, "AssociatePrincipalWithPortfolio", {**ok, "PrincipalPattern": "dev-*"})
    no_id = {k: v for k, v in ok.items() if k != "PrincipalId"}
    expect_error(400, "MissingParameter.PrincipalId", call, "AssociatePrincipalWithPortfolio", no_id)
    expect_error(400, "InvalidParameter.PrincipalPattern", call, "AssociatePrincipalWithPortfolio", {**no_id, "PrincipalPattern": "a b"})
    expect_error(404, "EntityNotExists.Portfolio", call, "ListPrincipals", {"PortfolioId": "port-doesnotexist00"})


def test_end_users_get_403_on_admin_catalog_actions(end_user, listed):
    _, caller = end_user
    c = caller("v3")
    portfolio_id, product_id = listed
    for action, params in [
        ("AssociatePrincipalWithPortfolio", {"PortfolioId": portfolio_id, "PrincipalType": "RamUser", "PrincipalPattern": "*"}),
        ("DisassociatePrincipalFromPortfolio", {"PortfolioId": portfolio_id, "PrincipalType": "RamUser", "PrincipalPattern": "*"}),
        ("ListPrincipals", {"PortfolioId": portfolio_id}),
        ("CreateConstraint", {"PortfolioId": portfolio_id, "ProductId": product_id, "ConstraintType": "Launch",
                              "Config": json.dumps({"LocalRoleName": "x"})}),
        ("GetConstraint", {"ConstraintId": "cons-x"}),
        ("UpdateConstraint", {"ConstraintId": "cons-x", "Config": "{}"}),
        ("DeleteConstraint", {"ConstraintId": "cons-x"}),
        ("CreateTagOption", {"Key": "k", "Value": "v"}),
        ("ListTagOptions", {}),
        ("GetTagOption", {"TagOptionId": "tag-x"}),
        ("AssociateTagOptionWithResource", {"TagOptionId": "tag-x", "ResourceId": product_id}),
        ("ListResourcesForTagOption", {"TagOptionId": "tag-x", "ResourceType": "product"}),
    ]:
        expect_error(403, "Forbidden.AdministratorOnly", c.call, action, params)


# ----------------------------------------------------------------------------- constraints


def create_constraint(admin, portfolio_id, product_id, kind, config, **extra):
    params = {"PortfolioId": portfolio_id, "ProductId": product_id, "ConstraintType": kind, "Config": json.dumps(config), **extra}
    return admin.call("CreateConstraint", params)["ConstraintId"]


def test_launch_constraint_lifecycle(admin_v3, listed, launch_role, server):
    portfolio_id, product_id = listed
    cid = create_constraint(admin_v3, portfolio_id, product_id, "Launch", {"LocalRoleName": launch_role}, Description="creds")
    assert cid.startswith("cons-")
    d = admin_v3.call("GetConstraint", {"ConstraintId": cid})["ConstraintDetail"]
    assert d["ConstraintType"] == "Launch" and d["PortfolioId"] == portfolio_id and d["ProductId"] == product_id
    assert json.loads(d["Config"]) == {"LocalRoleName": launch_role}
    assert d["Description"] == "creds" and d["ProductName"]
    parse_time(d["CreateTime"])
    assert "s3cr3t" not in json.dumps(d)

    expect_error(409, "InvalidStatus.Constraint", create_constraint, admin_v3, portfolio_id, product_id, "Launch",
                 {"LocalRoleName": launch_role})
    other = uniq("lr-")
    server.cli("launch-roles", "create", other, "--env", "A=1")
    admin_v3.call("UpdateConstraint", {"ConstraintId": cid, "Config": json.dumps({"LocalRoleName": other})})
    d = admin_v3.call("GetConstraint", {"ConstraintId": cid})["ConstraintDetail"]
    assert json.loads(d["Config"])["LocalRoleName"] == other and d["Description"] == "creds"
    expect_error(400, "InvalidParameter.Config", admin_v3.call, "UpdateConstraint",
                 {"ConstraintId": cid, "Config": json.dumps({"StackRegions": ["cn-hangzhou"]})})

    refused = server.cli("launch-roles", "delete", other, check=False)
    assert refused.returncode != 0 and cid in refused.stderr
    admin_v3.call("DeleteConstraint", {"ConstraintId": cid})
    expect_error(404, "EntityNotExists.Constraint", admin_v3.call, "GetConstraint", {"ConstraintId": cid})
    expect_error(404, "EntityNotExists.Constraint", admin_v3.call, "DeleteConstraint", {"ConstraintId": cid})
    expect_error(404, "EntityNotExists.Constraint", admin_v3.call, "UpdateConstraint",
                 {"ConstraintId": cid, "Config": json.dumps({"LocalRoleName": other})})
    server.cli("launch-roles", "delete", other)


@pytest.mark.parametrize("kind,config,needle", [
    ("Launch", {"LocalRoleName": "no-such-launch-role"}, "does not exist"),
    ("Launch", {"LocalRoleName": "x", "Extra": 1}, "Extra"),
    ("Launch", ["x"], "JSON object"),
    ("Template", {"Parameters": {}}, "Parameters"),
    ("Template", {"Parameters": {"size": {"AllowedValues": []}}}, "AllowedValues"),
    ("Approval", {"OperationTypes": ["Launch"], "Approvers": [{"Type": "RamUser", "Pattern": "*"}]}, "Launch"),
    ("Approval", {"OperationTypes": ["LaunchProduct"], "Approvers": []}, "Approvers"),
    ("Approval", {"OperationTypes": ["LaunchProduct"], "Approvers": [{"Type": "RamUser", "Id": "1234567890123456"}]},
     "does not exist"),
    ("Approval", {"OperationTypes": ["LaunchProduct"], "Approvers": [{"Type": "RamUser"}]}, "exactly one"),
    ("StackRegion", {"StackRegions": ["mars-north-1"]}, "not offered"),
    ("StackRegion", {"StackRegions": []}, "StackRegions"),
])
def test_invalid_configs_are_refused(admin_v3, listed, kind, config, needle):
    portfolio_id, product_id = listed
    e = expect_error(400, "InvalidParameter.Config", create_constraint, admin_v3, portfolio_id, product_id, kind, config)
    assert needle in e.message, e.message


def test_constraint_preconditions(admin_v3, listed, launch_role):
    portfolio_id, product_id = listed
    loose_product, _ = create_product(admin_v3)
    config = {"LocalRoleName": launch_role}
    expect_error(409, "InvalidStatus.Product", create_constraint, admin_v3, portfolio_id, loose_product, "Launch", config)
    expect_error(404, "EntityNotExists.Portfolio", create_constraint, admin_v3, "port-doesnotexist00", product_id, "Launch", config)
    expect_error(404, "EntityNotExists.Product", create_constraint, admin_v3, portfolio_id, "prod-doesnotexist00", "Launch", config)
    expect_error(400, "InvalidParameter.ConstraintType", create_constraint, admin_v3, portfolio_id, product_id, "Quota", config)
    e = expect_error(400, "InvalidParameter.Config", admin_v3.call, "CreateConstraint",
                     {"PortfolioId": portfolio_id, "ProductId": product_id, "ConstraintType": "Launch", "Config": "{"})
    assert "JSON" in e.message


def test_launch_options_summarise_constraints(server, admin_v3, access_world, launch_role):
    w = access_world
    approver = w["users"]["direct"]["PrincipalId"]
    kinds = {
        "Launch": {"LocalRoleName": launch_role},
        "Template": {"Parameters": {"size": {"AllowedValues": ["small", "large"]}}},
        "Approval": {"OperationTypes": ["LaunchProduct", "TerminateProvisionedProduct"],
                     "Approvers": [{"Type": "RamUser", "Id": approver}, {"Type": "RamRole", "Pattern": "ops-*"}]},
        "StackRegion": {"StackRegions": ["cn-hangzhou", "cn-beijing"]},
    }
    for kind, config in kinds.items():
        create_constraint(admin_v3, w["portfolio"], w["product"], kind, config, Description=f"{kind} rule")
    [option] = launch_options(server, w["users"]["role"], w["product"])
    by_type = {s["ConstraintType"]: s for s in option["ConstraintSummaries"]}
    assert set(by_type) == set(kinds)
    assert by_type["Approval"]["OperationTypes"] == ["LaunchProduct", "TerminateProvisionedProduct"]
    assert by_type["StackRegion"]["StackRegions"] == ["cn-hangzhou", "cn-beijing"]
    assert by_type["Launch"]["Description"] == "Launch rule"
    assert "OperationTypes" not in by_type["Launch"] and "StackRegions" not in by_type["Template"]
    expect_error(409, "InvalidStatus.Portfolio", admin_v3.call, "DeletePortfolio", {"PortfolioId": w["portfolio"]})


# ----------------------------------------------------------------------------- launch roles and roles (CLI)


def test_launch_roles_never_show_values(server, launch_role):
    listing = server.cli("launch-roles", "list").stdout
    assert launch_role in listing and "ALICLOUD_SECRET_KEY" in listing and "s3cr3t-value" not in listing
    rows = cli_json(server, "launch-roles", "list")
    row = next(r for r in rows if r["LocalRoleName"] == launch_role)
    assert row["VariableNames"] == ["ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY"]
    assert "s3cr3t-value" not in json.dumps(rows)
    assert server.cli("launch-roles", "create", uniq("lr-"), "--env", "NOEQUALS", check=False).returncode != 0
    assert server.cli("launch-roles", "create", "bad name", "--env", "A=1", check=False).returncode != 0
    # What the engine sets, or what changes how Terraform runs, is not a launch role's to set.
    for reserved in ("PATH=/tmp", "TF_CLI_ARGS_apply=-lock=false", "TF_LOG=TRACE", "TF_CLI_CONFIG_FILE=/tmp/rc", "ALICLOUD_REGION=x"):
        refused = server.cli("launch-roles", "create", uniq("lr-"), "--env", "A=1", "--env", reserved, check=False)
        assert refused.returncode != 0 and "a launch role cannot set it" in refused.stderr, refused.stderr
    server.cli("launch-roles", "delete", launch_role)
    assert server.cli("launch-roles", "delete", launch_role, check=False).returncode != 0


def test_roles_commands(server, admin_v3):
    name = uniq("role-")
    role = cli_json(server, "roles", "create", name)
    assert role["PrincipalType"] == "RamRole" and role["PrincipalId"].isdigit()
    assert server.cli("roles", "create", name, check=False).returncode != 0
    user = server.create_user(uniq("u-"), role=name)
    listed = next(r for r in cli_json(server, "roles", "list") if r["RoleName"] == name)
    assert listed["Members"] == [user["UserName"]]
    portfolio_id = create_portfolio(admin_v3)
    admin_v3.call("AssociatePrincipalWithPortfolio",
                  {"PortfolioId": portfolio_id, "PrincipalType": "RamRole", "PrincipalId": role["PrincipalId"]})
    server.cli("roles", "delete", name)
    assert name not in server.cli("roles", "list").stdout
    assert admin_v3.call("ListPrincipals", {"PortfolioId": portfolio_id})["Principals"] == []
    assert server.cli("roles", "delete", name, check=False).returncode != 0


# ----------------------------------------------------------------------------- tag options


def create_tag_option(admin, key=None, value="v"):
    return admin.call("CreateTagOption", {"Key": key or uniq("k-"), "Value": value})["TagOptionDetail"]


def test_tag_option_lifecycle(admin_v3, server):
    key = uniq("env-")
    d = create_tag_option(admin_v3, key, "dev")
    assert d["TagOptionId"].startswith("tag-") and d["Key"] == key and d["Value"] == "dev" and d["Active"] is True
    assert d["Owner"]
    assert admin_v3.call("GetTagOption", {"TagOptionId": d["TagOptionId"]})["TagOptionDetail"] == d
    expect_error(409, "InvalidStatus.TagOption", create_tag_option, admin_v3, key, "dev")
    other = create_tag_option(admin_v3, key, "prod")
    expect_error(409, "InvalidStatus.TagOption", admin_v3.call, "UpdateTagOption", {"TagOptionId": other["TagOptionId"], "Value": "dev"})
    u = admin_v3.call("UpdateTagOption", {"TagOptionId": other["TagOptionId"], "Active": False})["TagOptionDetail"]
    assert u["Active"] is False and u["Value"] == "prod"
    u = admin_v3.call("UpdateTagOption", {"TagOptionId": other["TagOptionId"], "Value": "stage"})["TagOptionDetail"]
    assert u["Active"] is False and u["Value"] == "stage", "Active is unchanged when not sent"
    admin_v3.call("DeleteTagOption", {"TagOptionId": other["TagOptionId"]})
    expect_error(404, "EntityNotExists.TagOption", admin_v3.call, "GetTagOption", {"TagOptionId": other["TagOptionId"]})
    expect_error(404, "EntityNotExists.TagOption", admin_v3.call, "DeleteTagOption", {"TagOptionId": other["TagOptionId"]})


@pytest.mark.parametrize("key,value,bad", [
    ("acs:env", "v", "Key"), ("aliyun-env", "v", "Key"), ("see-http://x", "v", "Key"), ("k" * 129, "v", "Key"),
    ("env", "acs:v", "Value"), ("env", "https://x", "Value"), ("env", "v" * 129, "Value"),
])
def test_tag_option_rules(admin_v3, key, value, bad):
    expect_error(400, f"InvalidParameter.{bad}", admin_v3.call, "CreateTagOption", {"Key": key, "Value": value})


def test_list_tag_options_filters_and_paging(admin_v3, raw):
    key = uniq("team-")
    ids = [create_tag_option(admin_v3, key, v)["TagOptionId"] for v in ("a", "b", "c")]
    admin_v3.call("UpdateTagOption", {"TagOptionId": ids[2], "Active": False})

    r = admin_v3.call("ListTagOptions", {"Filters": {"Key": key}, "SortOrder": "Asc", "PageSize": 1, "PageNumber": 2})
    assert (r["TotalCount"], r["PageSize"], r["PageNumber"]) == (2, 1, 2)
    assert [t["TagOptionId"] for t in r["TagOptionDetails"]] == [ids[1]]
    r = admin_v3.call("ListTagOptions", {"Filters": {"Key": key, "Active": False}})
    assert [t["TagOptionId"] for t in r["TagOptionDetails"]] == [ids[2]]
    r = admin_v3.call("ListTagOptions", {"Filters": {"Key": key, "Value": "a"}})
    assert [t["TagOptionId"] for t in r["TagOptionDetails"]] == [ids[0]]
    r = admin_v3.call("ListTagOptions", {"Filters": {"FullTextSearch": key.upper()}, "SortOrder": "Desc"})
    assert [t["TagOptionId"] for t in r["TagOptionDetails"]] == [ids[1], ids[0]]
    r = raw.call("ListTagOptions", {"Filters": json.dumps({"Key": key}), "PageSize": "100"})
    assert r["TotalCount"] == 2, "Active defaults to true"
    resp = raw.send("ListTagOptions", {"Filters": json.dumps([{"Key": "Key", "Value": key}])})
    assert resp.status_code == 400 and resp.json()["Code"] == "InvalidParameter.Filters", resp.text


def test_tag_option_associations(admin_v3, listed):
    portfolio_id, product_id = listed
    t = create_tag_option(admin_v3, uniq("cost-"), "42")
    for resource in (portfolio_id, product_id):
        admin_v3.call("AssociateTagOptionWithResource", {"TagOptionId": t["TagOptionId"], "ResourceId": resource})
    admin_v3.call("AssociateTagOptionWithResource", {"TagOptionId": t["TagOptionId"], "ResourceId": product_id})
    tag_options = admin_v3.call("GetPortfolio", {"PortfolioId": portfolio_id})["TagOptions"]
    assert [o["TagOptionId"] for o in tag_options] == [t["TagOptionId"]]

    for resource_type, expected in (("product", product_id), ("Portfolio", portfolio_id), ("PRODUCT", product_id)):
        r = admin_v3.call("ListResourcesForTagOption", {"TagOptionId": t["TagOptionId"], "ResourceType": resource_type})
        assert r["TotalCount"] == 1 and [d["ResourceId"] for d in r["ResourceDetails"]] == [expected], resource_type
        d = r["ResourceDetails"][0]
        assert d["ResourceName"] and d["ResourceArn"].endswith(expected)
        parse_time(d["CreateTime"])
    expect_error(400, "InvalidParameter.ResourceType", admin_v3.call, "ListResourcesForTagOption",
                 {"TagOptionId": t["TagOptionId"], "ResourceType": "stack"})

    same_key = create_tag_option(admin_v3, t["Key"], "43")
    expect_error(409, "InvalidStatus.TagOption", admin_v3.call, "AssociateTagOptionWithResource",
                 {"TagOptionId": same_key["TagOptionId"], "ResourceId": product_id})
    expect_error(400, "InvalidParameter.ResourceId", admin_v3.call, "AssociateTagOptionWithResource",
                 {"TagOptionId": t["TagOptionId"], "ResourceId": "stack-1"})
    expect_error(404, "EntityNotExists.Portfolio", admin_v3.call, "AssociateTagOptionWithResource",
                 {"TagOptionId": t["TagOptionId"], "ResourceId": "port-doesnotexist00"})
    expect_error(404, "EntityNotExists.TagOption", admin_v3.call, "AssociateTagOptionWithResource",
                 {"TagOptionId": "tag-doesnotexist000", "ResourceId": product_id})
    expect_error(409, "InvalidStatus.TagOption", admin_v3.call, "DeleteTagOption", {"TagOptionId": t["TagOptionId"]})

    for resource in (portfolio_id, product_id):
        admin_v3.call("DisAssociateTagOptionFromResource", {"TagOptionId": t["TagOptionId"], "ResourceId": resource})
    expect_error(404, "EntityNotExists.TagOption", admin_v3.call, "DisAssociateTagOptionFromResource",
                 {"TagOptionId": t["TagOptionId"], "ResourceId": product_id})
    assert admin_v3.call("GetPortfolio", {"PortfolioId": portfolio_id})["TagOptions"] == []
    admin_v3.call("DeleteTagOption", {"TagOptionId": t["TagOptionId"]})
