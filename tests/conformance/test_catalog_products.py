"""Templates, products, product versions, portfolio associations and the end-user product view,
through the official SDKs (V3, V1, core) and, for our extensions, the raw signer."""
from __future__ import annotations

import json
import re

import pytest

from sclib import ApiError, expect_error, parse_time, uniq

PRODUCT_ID_RE = re.compile(r"^prod-[0-9a-z]{14}$")
VERSION_ID_RE = re.compile(r"^pv-[0-9a-z]{14}$")
URL_RE = re.compile(r"^oss://servicecatalog-[^/]+/[^/]+/terraform/template/tpl-[0-9a-z]{14}/template.json$")

MAIN_TF = """
variable "size" {
  type        = string
  default     = "small"
  description = "Instance size"
}
variable "name" {
  type = string
  validation {
    condition     = length(var.name) > 0
    error_message = "empty"
  }
}
output "greeting" {
  value       = "hello ${var.name}"
  description = "A greeting"
}
"""


def tf_body(files: dict | None = None, transform: str = "Aliyun::Terraform-v1.5", **extra) -> str:
    body = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": transform,
            "Workspace": files if files is not None else {"main.tf": MAIN_TF + f"# {uniq()}\n"}}
    body.update(extra)
    return json.dumps(body)


def create_template(caller, body: str | None = None, template_type="RosTerraformTemplate", variables=None) -> str:
    params = {"TemplateType": template_type, "TemplateBody": body or tf_body()}
    if variables is not None:
        params["TerraformVariables"] = variables
    return caller.call("CreateTemplate", params)["TemplateUrl"]


def version_parameters(caller, params: dict):
    """ProductVersionParameters: a model for the SDK, one JSON string on the wire for the others."""
    return params if caller.flavor in ("v3", "v1") else json.dumps(params)


def create_product(caller, name=None, url=None, version_name="1.0", **extra) -> tuple[str, str | None]:
    params = {"ProductName": name or uniq("prod-"), "ProviderName": "conformance", "ProductType": "Ros"}
    if url is not False:
        params["ProductVersionParameters"] = version_parameters(
            caller, {"ProductVersionName": version_name, "TemplateUrl": url or create_template(caller),
                     "TemplateType": "RosTerraformTemplate"})
    params.update(extra)
    r = caller.call("CreateProduct", params)
    return r["ProductId"], r.get("ProductVersionId")


def create_portfolio(caller) -> str:
    return caller.call("CreatePortfolio", {"PortfolioName": uniq("pf-"), "ProviderName": "conformance"})["PortfolioId"]


def grant(caller, portfolio_id: str, principal_id: str) -> None:
    try:
        caller.call("AssociatePrincipalWithPortfolio",
                    {"PortfolioId": portfolio_id, "PrincipalId": principal_id, "PrincipalType": "RamUser"})
    except ApiError as e:
        if e.code == "UnsupportedOperation":
            pytest.skip("AssociatePrincipalWithPortfolio is not implemented yet")
        raise


# ----------------------------------------------------------------------------- templates


def test_templates_are_content_addressed_and_readable(admin):
    body = tf_body()
    url = create_template(admin, body)
    assert URL_RE.match(url), url
    assert create_template(admin, body) == url
    assert create_template(admin, tf_body()) != url
    product_id, version_id = create_product(admin, url=url)
    assert PRODUCT_ID_RE.match(product_id) and VERSION_ID_RE.match(version_id)
    r = admin.call("GetTemplate", {"ProductId": product_id, "ProductVersionId": version_id})
    assert r.get("RequestId") and json.loads(r["TemplateBody"]) == json.loads(body)
    other, _ = create_product(admin)
    expect_error(404, "EntityNotExists.ProductVersion", admin.call, "GetTemplate",
                 {"ProductId": other, "ProductVersionId": version_id})


def test_terraform_variables_must_be_declared(admin):
    body = tf_body()
    url = create_template(admin, body, variables=[{"VariableName": "size", "Description": "How big"}])
    assert URL_RE.match(url)
    e = expect_error(400, "InvalidParameter.TerraformVariables", create_template, admin, body,
                     variables=[{"VariableName": "colour", "Description": "x"}])
    assert "colour" in e.message


@pytest.mark.parametrize("files, needle", [
    ({"main.tf": 'variable "a" {\n  default = \n}\n'}, "main.tf"),
    ({"/abs.tf": ""}, "relative"),
    ({"../up.tf": ""}, ".."),
    ({"notes.md": ""}, ".tf"),
    ({"a/b/c/d/e/deep.tf": ""}, "levels"),
    ({f"f{i}.tf": "" for i in range(51)}, "50"),
    ({}, "50"),
])
def test_bad_template_bodies_are_refused(admin, files, needle):
    e = expect_error(400, "InvalidParameter.TemplateBody", create_template, admin, tf_body(files))
    assert needle in e.message, e.message


def test_syntax_errors_name_file_and_line(raw):
    body = tf_body({"ok.tf": "", "net/bad.tf": 'resource "x" "y" {\n  a = 1\n  b = = 2\n}\n'})
    e = expect_error(400, "InvalidParameter.TemplateBody", raw.call, "CreateTemplate",
                     {"TemplateType": "RosTerraformTemplate", "TemplateBody": body})
    assert "net/bad.tf" in e.message and "line 3" in e.message, e.message


@pytest.mark.parametrize("body, needle", [
    ("not json", "JSON"),
    (json.dumps({"ROSTemplateFormatVersion": "2014-01-01", "Transform": "Aliyun::Terraform-v1.5",
                 "Workspace": {"a.tf": ""}}), "ROSTemplateFormatVersion"),
    (json.dumps({"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Terraform",
                 "Workspace": {"a.tf": ""}}), "Transform"),
])
def test_template_envelopes_are_checked(raw, body, needle):
    e = expect_error(400, "InvalidParameter.TemplateBody", raw.call, "CreateTemplate",
                     {"TemplateType": "RosTerraformTemplate", "TemplateBody": body})
    assert needle in e.message, e.message


def test_template_urls_must_come_from_create_template(admin):
    for url in ("oss://elsewhere/template.json", create_template(admin).replace("tpl-", "tpl-x")):
        e = expect_error(400, "InvalidParameter.ProductVersionParameters", create_product, admin, url=url)
        assert "CreateTemplate" in e.message
    product_id, _ = create_product(admin)
    e = expect_error(400, "InvalidParameter.TemplateUrl", admin.call, "CreateProductVersion",
                     {"ProductId": product_id, "ProductVersionName": "2", "TemplateType": "RosTerraformTemplate",
                      "TemplateUrl": "https://example.invalid/t.json"})
    assert "CreateTemplate" in e.message


def test_native_ros_templates_are_stored_but_not_launchable(raw):
    url = create_template(raw, json.dumps({"ROSTemplateFormatVersion": "2015-09-01", "Resources": {}, "n": uniq()}),
                          template_type="RosStandardTemplate")
    product = raw.call("CreateProduct", {"ProductName": uniq("ros-"), "ProviderName": "c", "ProductType": "Ros",
                                         "TemplateType": "RosStandardTemplate"})["ProductId"]
    version = raw.call("CreateProductVersion", {"ProductId": product, "ProductVersionName": "1",
                                                "TemplateType": "RosStandardTemplate", "TemplateUrl": url})
    detail = raw.call("GetProductVersion", {"ProductVersionId": version["ProductVersionId"]})["ProductVersionDetail"]
    assert detail["TemplateType"] == "RosStandardTemplate"
    assert detail["Launchable"] is False and detail["ParameterConstraints"] == []
    # A Terraform product does not take a native ROS template.
    tf_product, _ = create_product(raw, url=False)
    expect_error(400, "InvalidParameter.TemplateType", raw.call, "CreateProductVersion",
                 {"ProductId": tf_product, "ProductVersionName": "1", "TemplateType": "RosStandardTemplate",
                  "TemplateUrl": url})


# ----------------------------------------------------------------------------- products


def test_product_lifecycle(admin):
    name = uniq("life-")
    product_id, version_id = create_product(admin, name=name, Description="first")
    r = admin.call("GetProductAsAdmin", {"ProductId": product_id})
    assert r.get("TagOptions") in (None, [])
    d = r["ProductDetail"]
    assert (d["ProductId"], d["ProductName"], d["ProviderName"], d["Description"]) == (product_id, name, "conformance",
                                                                                         "first")
    assert (d["ProductType"], d["TemplateType"]) == ("Ros", "RosTerraformTemplate")
    assert re.fullmatch(rf"acs:servicecatalog:[^:]+:[^:]+:product/{product_id}", d["ProductArn"])
    parse_time(d["CreateTime"])

    u = admin.call("UpdateProduct", {"ProductId": product_id, "ProductName": name + "-2", "ProviderName": "p2"})
    assert u["ProductId"] == product_id
    d2 = admin.call("GetProductAsAdmin", {"ProductId": product_id})["ProductDetail"]
    assert (d2["ProductName"], d2["ProviderName"], d2["Description"]) == (name + "-2", "p2", "first")

    admin.call("DeleteProduct", {"ProductId": product_id})
    expect_error(404, "EntityNotExists.Product", admin.call, "GetProductAsAdmin", {"ProductId": product_id})
    expect_error(404, "EntityNotExists.ProductVersion", admin.call, "GetProductVersion",
                 {"ProductVersionId": version_id})
    expect_error(404, "EntityNotExists.Product", admin.call, "DeleteProduct", {"ProductId": product_id})


def test_create_product_validation(admin):
    expect_error(400, "MissingParameter.ProductName", admin.call, "CreateProduct",
                 {"ProviderName": "p", "ProductType": "Ros"})
    expect_error(400, "InvalidParameter.ProductType", admin.call, "CreateProduct",
                 {"ProductName": "n", "ProviderName": "p", "ProductType": "Terraform"})
    expect_error(400, "InvalidParameter.ProductName", admin.call, "CreateProduct",
                 {"ProductName": "x" * 129, "ProviderName": "p", "ProductType": "Ros"})
    product_id, version_id = create_product(admin, url=False)
    assert version_id is None and PRODUCT_ID_RE.match(product_id)


def test_versions_lifecycle(admin):
    product_id, first = create_product(admin)
    r = admin.call("CreateProductVersion", {"ProductId": product_id, "ProductVersionName": "2.0",
                                            "TemplateType": "RosTerraformTemplate",
                                            "TemplateUrl": create_template(admin), "Description": "second",
                                            "Guidance": "Latest", "Active": False})
    second = r["ProductVersionId"]
    d = admin.call("GetProductVersion", {"ProductVersionId": second})["ProductVersionDetail"]
    assert (d["ProductId"], d["ProductVersionName"], d["Description"], d["Guidance"], d["Active"]) == (
        product_id, "2.0", "second", "Latest", False)
    assert URL_RE.match(d["TemplateUrl"]) and d["TemplateType"] == "RosTerraformTemplate"

    admin.call("UpdateProductVersion", {"ProductVersionId": second, "ProductVersionName": "2.1", "Guidance": "Recommended"})
    d = admin.call("GetProductVersion", {"ProductVersionId": second})["ProductVersionDetail"]
    assert (d["ProductVersionName"], d["Guidance"], d["Active"], d["Description"]) == ("2.1", "Recommended", False,
                                                                                        "second")
    versions = admin.call("ListProductVersions", {"ProductId": product_id})["ProductVersionDetails"]
    assert [v["ProductVersionId"] for v in versions] == [first, second]

    admin.call("DeleteProductVersion", {"ProductVersionId": second})
    expect_error(404, "EntityNotExists.ProductVersion", admin.call, "DeleteProductVersion",
                 {"ProductVersionId": second})
    expect_error(400, "InvalidParameter.Guidance", admin.call, "UpdateProductVersion",
                 {"ProductVersionId": first, "ProductVersionName": "x", "Guidance": "Best"})
    expect_error(404, "EntityNotExists.Product", admin.call, "CreateProductVersion",
                 {"ProductId": "prod-missing", "ProductVersionName": "1", "TemplateType": "RosTerraformTemplate",
                  "TemplateUrl": create_template(admin)})


def test_parameter_constraints_extension(raw):
    url = create_template(raw, variables=[{"VariableName": "size",
                                           "Description": json.dumps({"AllowedValues": ["small", "large"],
                                                                      "Description": "Pick one"})}])
    product_id, version_id = create_product(raw, url=url)
    d = raw.call("GetProductVersion", {"ProductVersionId": version_id})["ProductVersionDetail"]
    assert d["Launchable"] is True
    params = {p["ParameterKey"]: p for p in d["ParameterConstraints"]}
    assert set(params) == {"name", "size"}
    size, name = params["size"], params["name"]
    assert (size["Type"], size["DefaultValue"], size["Description"], size["AllowedValues"], size["Required"]) == (
        "string", "small", "Pick one", ["small", "large"], False)
    assert name["Required"] is True and name["HasValidation"] is True and "DefaultValue" not in name


def test_list_products_as_admin(admin):
    token = uniq("lst")
    ids = [create_product(admin, name=f"{token}-{i}", url=False)[0] for i in range(3)]
    r = admin.call("ListProductsAsAdmin", {"Filters": [{"Key": "FullTextSearch", "Value": token}],
                                           "SortOrder": "Asc", "PageSize": 2})
    assert r["TotalCount"] == 3 and [p["ProductId"] for p in r["ProductDetails"]] == ids[:2]
    r = admin.call("ListProductsAsAdmin", {"Filters": [{"Key": "FullTextSearch", "Value": token}],
                                           "SortOrder": "Asc", "PageSize": 2, "PageNumber": 2})
    assert [p["ProductId"] for p in r["ProductDetails"]] == ids[2:]
    r = admin.call("ListProductsAsAdmin", {"Filters": [{"Key": "ProductName", "Value": f"{token}-1".upper()}]})
    assert [p["ProductId"] for p in r["ProductDetails"]] == [ids[1]]
    portfolio = create_portfolio(admin)
    admin.call("AssociateProductWithPortfolio", {"PortfolioId": portfolio, "ProductId": ids[0]})
    r = admin.call("ListProductsAsAdmin", {"PortfolioId": portfolio})
    assert [p["ProductId"] for p in r["ProductDetails"]] == [ids[0]]
    r = admin.call("ListProductsAsAdmin", {"Scope": "Import"})
    assert r["TotalCount"] == 0
    expect_error(400, "InvalidParameter.Filters", admin.call, "ListProductsAsAdmin",
                 {"Filters": [{"Key": "Colour", "Value": "x"}]})


def test_copy_product_copies_versions(admin):
    source, _ = create_product(admin)
    admin.call("CreateProductVersion", {"ProductId": source, "ProductVersionName": "2.0",
                                        "TemplateType": "RosTerraformTemplate", "TemplateUrl": create_template(admin)})
    arn = admin.call("GetProductAsAdmin", {"ProductId": source})["ProductDetail"]["ProductArn"]
    target = uniq("copy-")
    r = admin.call("CopyProduct", {"SourceProductArn": arn, "TargetProductName": target})
    assert set(r) <= {"RequestId"}
    found = admin.call("ListProductsAsAdmin", {"Filters": [{"Key": "ProductName", "Value": target}]})["ProductDetails"]
    assert len(found) == 1 and found[0]["ProductId"] != source
    names = [v["ProductVersionName"] for v in
             admin.call("ListProductVersions", {"ProductId": found[0]["ProductId"]})["ProductVersionDetails"]]
    assert names == ["1.0", "2.0"]
    expect_error(400, "InvalidParameter.SourceProductArn", admin.call, "CopyProduct", {"SourceProductArn": "nonsense"})
    expect_error(404, "EntityNotExists.Product", admin.call, "CopyProduct",
                 {"SourceProductArn": arn.replace(source, "prod-missing")})


# ----------------------------------------------------------------------------- associations


def test_products_in_use_cannot_be_deleted(admin):
    product_id, version_id = create_product(admin)
    portfolio = create_portfolio(admin)
    admin.call("AssociateProductWithPortfolio", {"PortfolioId": portfolio, "ProductId": product_id})
    admin.call("AssociateProductWithPortfolio", {"PortfolioId": portfolio, "ProductId": product_id})
    listed = admin.call("ListPortfolios", {"ProductId": product_id})["PortfolioDetails"]
    assert [p["PortfolioId"] for p in listed] == [portfolio]

    e = expect_error(409, "InvalidStatus.Product", admin.call, "DeleteProduct", {"ProductId": product_id})
    assert portfolio in e.message
    expect_error(409, "InvalidStatus.ProductVersion", admin.call, "DeleteProductVersion",
                 {"ProductVersionId": version_id})
    expect_error(409, "InvalidStatus.Portfolio", admin.call, "DeletePortfolio", {"PortfolioId": portfolio})

    admin.call("DisassociateProductFromPortfolio", {"PortfolioId": portfolio, "ProductId": product_id})
    assert admin.call("ListPortfolios", {"ProductId": product_id}).get("PortfolioDetails") in (None, [])
    admin.call("DeleteProductVersion", {"ProductVersionId": version_id})
    admin.call("DeleteProduct", {"ProductId": product_id})
    admin.call("DeletePortfolio", {"PortfolioId": portfolio})
    expect_error(404, "EntityNotExists.Portfolio", admin.call, "AssociateProductWithPortfolio",
                 {"PortfolioId": portfolio, "ProductId": create_product(admin, url=False)[0]})


# ----------------------------------------------------------------------------- end users


def test_end_users_see_only_granted_products(admin_v3, end_user):
    user, caller_for = end_user
    me = caller_for("v3")
    visible, visible_version = create_product(admin_v3)
    hidden, hidden_version = create_product(admin_v3)
    inactive = admin_v3.call("CreateProductVersion", {"ProductId": visible, "ProductVersionName": "off",
                                                      "TemplateType": "RosTerraformTemplate",
                                                      "TemplateUrl": create_template(admin_v3),
                                                      "Active": False})["ProductVersionId"]
    first, second = create_portfolio(admin_v3), create_portfolio(admin_v3)
    admin_v3.call("AssociateProductWithPortfolio", {"PortfolioId": first, "ProductId": visible})
    admin_v3.call("AssociateProductWithPortfolio", {"PortfolioId": second, "ProductId": hidden})
    grant(admin_v3, first, user["PrincipalId"])

    listed = me.call("ListProductsAsEndUser", {"PageSize": 100})
    assert [p["ProductId"] for p in listed["ProductSummaries"]] == [visible]
    assert listed["ProductSummaries"][0]["HasDefaultLaunchOption"] is True
    summary = me.call("GetProductAsEndUser", {"ProductId": visible})["ProductSummary"]
    assert summary["HasDefaultLaunchOption"] is True and summary["ProductId"] == visible
    expect_error(404, "EntityNotExists.Product", me.call, "GetProductAsEndUser", {"ProductId": hidden})
    versions = me.call("ListProductVersions", {"ProductId": visible})["ProductVersionDetails"]
    assert [v["ProductVersionId"] for v in versions] == [visible_version]
    expect_error(404, "EntityNotExists.ProductVersion", me.call, "GetProductVersion", {"ProductVersionId": inactive})
    expect_error(404, "EntityNotExists.ProductVersion", me.call, "GetProductVersion",
                 {"ProductVersionId": hidden_version})
    assert me.call("GetTemplate", {"ProductId": visible, "ProductVersionId": visible_version})["TemplateBody"]

    # Reachable through two granted portfolios: no default launch option.
    admin_v3.call("AssociateProductWithPortfolio", {"PortfolioId": second, "ProductId": visible})
    grant(admin_v3, second, user["PrincipalId"])
    summary = me.call("GetProductAsEndUser", {"ProductId": visible})["ProductSummary"]
    assert summary["HasDefaultLaunchOption"] is False
    expect_error(403, "Forbidden.AdministratorOnly", me.call, "ListProductsAsAdmin", {})


def test_administrators_see_only_their_grants_as_end_users(admin_v3):
    product_id, _ = create_product(admin_v3)
    portfolio = create_portfolio(admin_v3)
    admin_v3.call("AssociateProductWithPortfolio", {"PortfolioId": portfolio, "ProductId": product_id})
    expect_error(404, "EntityNotExists.Product", admin_v3.call, "GetProductAsEndUser", {"ProductId": product_id})
