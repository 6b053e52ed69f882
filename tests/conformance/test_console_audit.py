"""The console's changes are in the audit trail as the API's are: the same action names (the
console's identity pages under their own: CreateUser, DeleteUser, CreateRole, DeleteRole,
AddUserToRole, RemoveUserFromRole), the signed-in principal, the resource, the outcome (refusals
included) and the parameters with secrets masked. A user created in the console has its secret
shown once and never recorded."""

from __future__ import annotations

import json
import re

import requests

from sclib import uniq
from test_operations import audit_events
from test_provisioning import MASK, REGION, SECRET_TF, make_product, needs_terraform, new_user, wait_task


class Console:
    """A signed-in console session (cookie and CSRF token) of one AccessKey."""

    def __init__(self, server, key_id: str, secret: str):
        self.base = f"http://{server.endpoint}"
        self.http = requests.Session()
        self.http.trust_env = False
        r = self.http.post(f"{self.base}/console/sign-in", data={"access_key_id": key_id, "access_key_secret": secret},
                           allow_redirects=False, timeout=30)
        assert r.status_code == 303, (r.status_code, r.text[:300])
        page = self.http.get(f"{self.base}/console/provisioned", timeout=30)
        self.csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    def post(self, path: str, **fields) -> requests.Response:
        return self.http.post(f"{self.base}{path}", data={"csrf": self.csrf, **fields}, allow_redirects=False, timeout=60)


def one(events: list[dict]) -> dict:
    assert len(events) == 1, events
    return events[0]


def test_console_catalog_changes_and_refusals_are_audited(server, admin_key):
    admin = server.caller("raw-v3")
    console = Console(server, *admin_key)
    name = uniq("console-portfolio-")
    r = console.post("/console/admin/portfolios", name=name, provider="console", description="from the console")
    assert r.status_code == 303, (r.status_code, r.text[:500])
    portfolio_id = r.headers["location"].rsplit("/", 1)[1]
    event = one([e for e in audit_events(admin, AuditAction="CreatePortfolio", ResourceId=portfolio_id)])
    assert event["ResultCode"] == "Success" and event["HttpStatus"] == 200, event
    api_made = admin.call("CreatePortfolio", {"PortfolioName": uniq("api-portfolio-"), "ProviderName": "api"})["PortfolioId"]
    by_api = one(audit_events(admin, AuditAction="CreatePortfolio", ResourceId=api_made))
    assert (event["PrincipalName"], event["PrincipalId"]) == (by_api["PrincipalName"], by_api["PrincipalId"]), event
    assert event["Parameters"]["PortfolioName"] == name and event["Parameters"]["ProviderName"] == "console", event
    assert re.fullmatch(r"[0-9A-F-]{36}", event["RequestId"]), event

    # A refused change (the name is required) is recorded with its code, and changes nothing.
    before = admin.call("ListPortfolios", {"PageSize": 100})["TotalCount"]
    r = console.post("/console/admin/portfolios", name="", provider="console")
    assert r.status_code == 400, r.status_code
    assert admin.call("ListPortfolios", {"PageSize": 100})["TotalCount"] == before
    refused = [e for e in audit_events(admin, AuditAction="CreatePortfolio") if e["HttpStatus"] == 400]
    assert refused and refused[0]["ResultCode"].startswith(("MissingParameter", "InvalidParameter")), refused[:1]

    # Moves of the portfolio page are the API's actions.
    assert console.post(f"/console/admin/portfolios/{portfolio_id}/edit", name=name + "-2", provider="console").status_code == 303
    assert console.post(f"/console/admin/portfolios/{portfolio_id}/delete").status_code == 303
    actions = [e["Action"] for e in audit_events(admin, ResourceId=portfolio_id, SortOrder="Asc")]
    assert actions == ["CreatePortfolio", "UpdatePortfolio", "DeletePortfolio"], actions


def test_an_end_users_refused_console_change_is_audited(server):
    user, _, _ = new_user(server)
    console = Console(server, user["AccessKeyId"], user["AccessKeySecret"])
    r = console.post("/console/admin/portfolios", name=uniq("nope-"), provider="console")
    assert r.status_code == 403, r.status_code
    event = audit_events(server.caller("raw-v3"), AuditAction="CreatePortfolio", PrincipalName=user["UserName"])[0]
    assert event["HttpStatus"] == 403 and event["ResultCode"].startswith("Forbidden"), event
    assert event["PrincipalId"] == user["PrincipalId"], event


def test_console_identity_changes_are_audited_and_the_new_secret_never_recorded(server, admin_key):
    admin = server.caller("raw-v3")
    console = Console(server, *admin_key)
    user_name, role = uniq("console-user-"), uniq("console-role-")
    assert console.post("/console/admin/roles", name=role).status_code == 303
    r = console.post("/console/admin/users", name=user_name, roles="")
    assert r.status_code == 200, r.status_code
    secret = re.search(r"AccessKey secret</dt><dd><code>([^<]{16,})</code>", r.text).group(1)
    assert console.post(f"/console/admin/roles/{role}/add-member", user=user_name).status_code == 303
    assert console.post(f"/console/admin/roles/{role}/remove-member", user=user_name).status_code == 303
    # Removing a user who is not a member is refused (409), shown on the page, and recorded.
    r = console.post(f"/console/admin/roles/{role}/remove-member", user=user_name)
    assert r.status_code == 409 and "is not a member" in r.text, r.status_code
    assert console.post(f"/console/admin/users/{user_name}/delete").status_code == 303
    assert console.post(f"/console/admin/roles/{role}/delete").status_code == 303

    created = one(audit_events(admin, AuditAction="CreateUser", ResourceId=user_name))
    assert created["ResultCode"] == "Success" and created["Parameters"]["UserName"] == user_name, created
    membership = [(e["Action"], e["ResultCode"]) for e in audit_events(admin, ResourceId=role, SortOrder="Asc")]
    assert membership == [("CreateRole", "Success"), ("AddUserToRole", "Success"), ("RemoveUserFromRole", "Success"),
                          ("RemoveUserFromRole", "InvalidStatus.User"), ("DeleteRole", "Success")], membership
    assert one(audit_events(admin, AuditAction="DeleteUser", ResourceId=user_name))["ResultCode"] == "Success"
    assert secret not in json.dumps(audit_events(admin)), "the new user's secret is in the audit trail"


def console_launch(server, **form) -> tuple:
    """A new user's console launch of SECRET_TF with a new secret password and a visible name, and `form`
    -> (the user, their SDK caller, their console, the password, the provisioned product's name, the answer)."""
    user, caller, _ = new_user(server)
    product = make_product(server.caller("v3"), SECRET_TF, users=[user])
    console = Console(server, user["AccessKeyId"], user["AccessKeySecret"])
    password, name = uniq("pw-console-"), uniq("pp-console-")
    r = console.post(f"/console/products/{product.product_id}/launch", name=name, region=REGION,
                     **form, **{"param.password": password, "param.name": "visible"})
    return user, caller, console, password, name, r


@needs_terraform
def test_console_launch_and_terminate_are_audited_with_secrets_masked(server):
    user, caller, console, password, _, r = console_launch(server)
    assert r.status_code == 303, (r.status_code, r.text[:500])
    task_id = r.headers["location"].rsplit("/", 1)[1]
    assert wait_task(caller, task_id)["Status"] == "Succeeded"
    launched = one(audit_events(server.caller("raw-v3"), AuditAction="LaunchProduct", PrincipalName=user["UserName"]))
    pp_id = launched["ResourceId"]
    assert pp_id.startswith("pp-") and launched["ResultCode"] == "Success", launched
    values = {launched["Parameters"][k.replace("Key", "Value")]: v for k, v in launched["Parameters"].items()
              if k.endswith(".ParameterKey")}
    assert values == {MASK: "password", "visible": "name"}, launched["Parameters"]

    r = console.post(f"/console/provisioned/{pp_id}/terminate")
    assert r.status_code == 303, r.status_code
    assert wait_task(caller, r.headers["location"].rsplit("/", 1)[1])["Status"] == "Succeeded"
    trail = audit_events(server.caller("raw-v3"), ResourceId=pp_id, SortOrder="Asc")
    assert [e["Action"] for e in trail] == ["LaunchProduct", "TerminateProvisionedProduct"], trail
    assert password not in json.dumps(audit_events(server.caller("raw-v3"), PrincipalName=user["UserName"]))



def test_a_console_launch_refused_for_a_malformed_tag_line_is_audited_and_launches_nothing(server):
    user, caller, _, password, name, r = console_launch(server, tags="env=dev\nnot a tag")
    assert r.status_code == 400, (r.status_code, r.text[:500])
    assert "Line 2 of the tags" in r.text and "not a tag" in r.text, r.text[:2000]
    assert caller.call("ListProvisionedProducts", {})["TotalCount"] == 0
    refused = one(audit_events(server.caller("raw-v3"), AuditAction="LaunchProduct", PrincipalName=user["UserName"]))
    assert (refused["HttpStatus"], refused["ResultCode"]) == (400, "InvalidParameter.Tags"), refused
    # The parameters the rest of the form stands for, the well-formed tag included, secrets masked.
    assert refused["Parameters"]["ProvisionedProductName"] == name, refused
    assert (refused["Parameters"]["Tags.1.Key"], refused["Parameters"]["Tags.1.Value"]) == ("env", "dev"), refused
    assert "Tags.2.Key" not in refused["Parameters"], refused
    assert password not in json.dumps(refused), refused
