"""Security of the request path, tried as an attacker would (issue: safe to hand the keys to):

- the signature covers the action: the action and version come only from what the signature
  covers (V1: the signed parameters, in the query or a form body; V3: the signed x-acs-action /
  x-acs-version headers), and any disagreement with the other place is refused, changing nothing;
- every error outside the console is the vendor's JSON envelope (unknown paths, methods, bodies
  too large or too slow);
- control characters are refused in names, descriptions and tags on both databases;
- another principal's object answers exactly like a missing one;
- console pages forbid inline script, framing and referrers, and sign-in failures are throttled per
  AccessKey and per client address.
"""
from __future__ import annotations

import socket

import pytest

import sclib
from sclib import expect_error, uniq
from test_provisioning import HELLO_TF, REGION, kv, make_product


def _portfolio(admin) -> str:
    return admin.call("CreatePortfolio", {"PortfolioName": uniq("sec-"), "ProviderName": "p"})["PortfolioId"]


def _still_there(admin, portfolio_id: str) -> None:
    assert admin.call("GetPortfolio", {"PortfolioId": portfolio_id})["PortfolioDetail"]["PortfolioId"] == portfolio_id


def _error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert body["Code"] == code, body
    assert body["RequestId"] and body["Message"] and "Recommend" in body and "HostId" in body, body
    return body


# ----------------------------------------------------------------------------- the signature covers the action


@pytest.mark.parametrize("placement", ["query", "body"])
def test_v1_action_comes_from_the_signed_parameters(server, admin_key, admin_v3, placement):
    """A V1-signed read with an added, unsigned x-acs-action header naming a destructive action is
    refused, whether the signed parameters travel in the query or in a form body."""
    raw_v1 = sclib.make_caller("raw-v1", server.endpoint, *admin_key)
    portfolio_id = _portfolio(admin_v3)
    req = raw_v1.build("GetPortfolio", {"PortfolioId": portfolio_id}, placement=placement)
    req.headers["x-acs-action"] = "DeletePortfolio"
    body = _error(req.send(), 400, "InvalidParameter.Action")
    assert "DeletePortfolio" in body["Message"] and "GetPortfolio" in body["Message"]
    _still_there(admin_v3, portfolio_id)
    # without the header, or with the same action in it, the signed call is served
    for header in (None, "GetPortfolio"):
        req = raw_v1.build("GetPortfolio", {"PortfolioId": portfolio_id}, placement=placement)
        if header is None:
            req.headers.pop("x-acs-action")
        else:
            req.headers["x-acs-action"] = header
        assert sclib.check_raw(req.send())["PortfolioDetail"]["PortfolioId"] == portfolio_id


def test_v1_version_header_must_agree(server, admin_key):
    raw_v1 = sclib.make_caller("raw-v1", server.endpoint, *admin_key)
    req = raw_v1.build("ListRegions")
    req.headers["x-acs-version"] = "2014-01-01"
    _error(req.send(), 400, "InvalidParameter.Version")


@pytest.mark.parametrize("placement", ["query", "body"])
def test_v3_action_parameter_must_agree_with_the_signed_header(raw, admin_v3, placement):
    """V3 takes the action from the signed x-acs-action header; an Action parameter saying
    something else (even a signed one) is refused, and so the signed read destroys nothing."""
    portfolio_id = _portfolio(admin_v3)
    req = raw.build("GetPortfolio", {"PortfolioId": portfolio_id, "Action": "DeletePortfolio"}, placement=placement)
    body = _error(req.send(), 400, "InvalidParameter.Action")
    assert "DeletePortfolio" in body["Message"]
    _still_there(admin_v3, portfolio_id)
    # the same action repeated as a parameter is fine; none at all is the SDK's way
    ok = raw.build("GetPortfolio", {"PortfolioId": portfolio_id, "Action": "GetPortfolio"}, placement=placement)
    assert sclib.check_raw(ok.send())["PortfolioDetail"]["PortfolioId"] == portfolio_id
    assert raw.call("GetPortfolio", {"PortfolioId": portfolio_id}, placement=placement)["PortfolioDetail"]


def test_v3_version_parameter_must_agree(raw):
    _error(raw.build("ListRegions", {"Version": "2014-01-01"}, placement="query").send(), 400, "InvalidParameter.Version")


@pytest.mark.parametrize("header", ["x-acs-action", "x-acs-version"])
def test_v3_action_and_version_headers_must_be_signed(raw, admin_v3, header):
    portfolio_id = _portfolio(admin_v3)
    req = raw.build("GetPortfolio", {"PortfolioId": portfolio_id}, unsigned=[header])
    _error(req.send(), 400, "IncompleteSignature")
    # an unsigned header swapped for another action is refused the same way
    req.headers["x-acs-action"] = "DeletePortfolio"
    assert req.send().status_code == 400
    _still_there(admin_v3, portfolio_id)


def test_v3_without_the_action_header_is_refused(raw, admin_v3):
    portfolio_id = _portfolio(admin_v3)
    req = raw.build("GetPortfolio", {"PortfolioId": portfolio_id, "Action": "DeletePortfolio"}, placement="query")
    req.headers.pop("x-acs-action")
    assert req.send().status_code == 400
    _still_there(admin_v3, portfolio_id)


# ----------------------------------------------------------------------------- the vendor's error envelope


def _http(server, method: str, path: str, **kw):
    import requests

    s = requests.Session()
    s.trust_env = False
    return s.request(method, f"http://{server.endpoint}{path}", timeout=30, allow_redirects=False, **kw)


@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/no/such/path", 404, "InvalidPath.NotFound"),
    ("POST", "/v1/portfolios", 404, "InvalidPath.NotFound"),
    ("PUT", "/", 405, "MethodNotAllowed"),
    ("DELETE", "/", 405, "MethodNotAllowed"),
    ("PATCH", "/healthz", 405, "MethodNotAllowed"),
    ("OPTIONS", "/", 405, "MethodNotAllowed"),
    ("PUT", "/console/sign-in", 405, "MethodNotAllowed"),
])
def test_every_error_is_the_json_envelope(server, method, path, status, code):
    _error(_http(server, method, path), status, code)


def test_body_too_large_is_the_json_envelope(fresh_server):
    srv = fresh_server(args=["--max-body-bytes", "1024"])
    _error(_http(srv, "POST", "/", data=b"x" * 4096, headers={"content-type": "application/x-www-form-urlencoded"}),
           413, "RequestBodyTooLarge")


def test_a_body_that_never_arrives_is_a_json_timeout(fresh_server):
    srv = fresh_server(args=["--body-timeout", "1"])
    host, port = srv.endpoint.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100\r\n\r\nAction=List")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"application/json" in head.lower() and b'"Code":"RequestTimeout"' in body, answer
    assert srv.alive()


def test_console_pages_stay_html(server):
    r = _http(server, "GET", "/console/no-such-page")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), r.headers


# ----------------------------------------------------------------------------- input hygiene


@pytest.mark.parametrize("value", ["nul\x00name", "esc\x1b[31m", "line\nbreak", "tab\tname", "del\x7f", "c1\x85"])
def test_control_characters_are_refused_in_names(admin_v3, value):
    before = admin_v3.call("ListPortfolios", {"PageSize": 100})["TotalCount"]
    expect_error(400, "InvalidParameter.PortfolioName", admin_v3.call, "CreatePortfolio",
                 {"PortfolioName": value, "ProviderName": "p"})
    expect_error(400, "InvalidParameter.ProviderName", admin_v3.call, "CreatePortfolio",
                 {"PortfolioName": uniq("ok-"), "ProviderName": value})
    assert admin_v3.call("ListPortfolios", {"PageSize": 100})["TotalCount"] == before


def test_control_characters_are_refused_in_descriptions_and_tags(admin_v3):
    expect_error(400, "InvalidParameter.Description", admin_v3.call, "CreatePortfolio",
                 {"PortfolioName": uniq("d-"), "ProviderName": "p", "Description": "bell\x07"})
    expect_error(400, "InvalidParameter.Description", admin_v3.call, "CreatePortfolio",
                 {"PortfolioName": uniq("d-"), "ProviderName": "p", "Description": "nul\x00"})
    key = uniq("k-")
    expect_error(400, "InvalidParameter.Key", admin_v3.call, "CreateTagOption", {"Key": key + "\x00", "Value": "v"})
    expect_error(400, "InvalidParameter.Value", admin_v3.call, "CreateTagOption", {"Key": key, "Value": "v\n"})
    assert not admin_v3.call("ListTagOptions", {"Filters": {"Key": key}})["TagOptionDetails"]
    # a description may hold line breaks and tabs: people write them in text areas
    pid = admin_v3.call("CreatePortfolio", {"PortfolioName": uniq("d-"), "ProviderName": "p",
                                            "Description": "two\r\nlines\tand a tab"})["PortfolioId"]
    detail = admin_v3.call("GetPortfolio", {"PortfolioId": pid})["PortfolioDetail"]
    assert detail["Description"] == "two\r\nlines\tand a tab"


def test_control_characters_are_refused_in_launch_tags_and_names(admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, HELLO_TF, users=[user])
    base = {"ProductId": product.product_id, "ProductVersionId": product.version_id, "StackRegionId": REGION,
            "Parameters": kv({"owner": "o"})}
    expect_error(400, "InvalidParameter.ProvisionedProductName", caller.call, "LaunchProduct",
                 {**base, "ProvisionedProductName": "pp\x00"})
    expect_error(400, "InvalidParameter.Tags", caller.call, "LaunchProduct",
                 {**base, "ProvisionedProductName": uniq("pp-"), "Tags": [{"Key": "k\x01", "Value": "v"}]})
    assert not caller.call("ListProvisionedProducts", {})["ProvisionedProductDetails"]


# ----------------------------------------------------------------------------- no existence oracle


def _same_as_missing(fn, existing: str, missing: str) -> None:
    """`fn(id)` fails for another principal's `existing` exactly as for a `missing` id."""

    def refusal(id_: str, answered: str) -> sclib.ApiError:
        try:
            fn(id_)
        except sclib.ApiError as e:
            return e
        raise AssertionError(f"{id_} {answered}")

    got = refusal(existing, "answered to a principal who may not see it")
    want = refusal(missing, "does not exist but answered")
    assert (got.status, got.code) == (want.status, want.code) == (404, want.code), (got, want)
    assert got.message.replace(existing, "ID") == want.message.replace(missing, "ID"), (got.message, want.message)


def test_a_product_not_granted_answers_like_a_missing_one(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    hidden = make_product(admin_v3, HELLO_TF)  # in a portfolio not granted to the user

    def launch_(product_id):
        caller.call("LaunchProduct", {"ProductId": product_id, "ProductVersionId": hidden.version_id,
                                      "ProvisionedProductName": uniq("pp-"), "StackRegionId": REGION,
                                      "Parameters": kv({"owner": "o"})})

    def plan_(product_id):
        caller.call("CreateProvisionedProductPlan", {
            "PlanName": uniq("plan-"), "PlanType": "Ros", "OperationType": "LaunchProduct", "ProductId": product_id,
            "ProductVersionId": hidden.version_id, "ProvisionedProductName": uniq("pp-"), "StackRegionId": REGION,
            "Parameters": kv({"owner": "o"})})

    missing = "prod-" + "0" * 15 if hidden.product_id.startswith("prod-") else hidden.product_id + "x"
    for call in (launch_, plan_,
                 lambda pid: caller.call("ListLaunchOptions", {"ProductId": pid}),
                 lambda pid: caller.call("GetProductAsEndUser", {"ProductId": pid})):
        _same_as_missing(call, hidden.product_id, missing)


def test_another_users_plan_answers_like_a_missing_one(server, admin_v3, make_user):
    alice, bob = make_user(), make_user()
    a = server.caller("v3", (alice["AccessKeyId"], alice["AccessKeySecret"]))
    b = server.caller("v3", (bob["AccessKeyId"], bob["AccessKeySecret"]))
    product = make_product(admin_v3, HELLO_TF, users=[alice, bob])
    plan_id = a.call("CreateProvisionedProductPlan", {
        "PlanName": uniq("plan-"), "PlanType": "Ros", "OperationType": "LaunchProduct",
        "ProductId": product.product_id, "ProductVersionId": product.version_id,
        "ProvisionedProductName": uniq("pp-"), "StackRegionId": REGION, "Parameters": kv({"owner": "o"})})["PlanId"]
    missing = plan_id[:-4] + "zzzz"
    for action, extra in [("GetProvisionedProductPlan", {}), ("ApproveProvisionedProductPlan", {"ApprovalAction": "Approve"}),
                          ("CancelProvisionedProductPlan", {}), ("ExecuteProvisionedProductPlan", {}),
                          ("DeleteProvisionedProductPlan", {})]:
        _same_as_missing(lambda pid: b.call(action, {"PlanId": pid, **extra}), plan_id, missing)
    assert a.call("GetProvisionedProductPlan", {"PlanId": plan_id})["PlanDetail"]["PlanId"] == plan_id


# ----------------------------------------------------------------------------- console hardening


def test_console_pages_forbid_inline_script_framing_and_referrers(server):
    r = _http(server, "GET", "/console/sign-in")
    assert r.status_code == 200, r.status_code
    csp = r.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert "'unsafe-inline'" not in directives.get("script-src", directives.get("default-src", [])), csp
    assert directives["frame-ancestors"] == ["'none'"], csp
    assert r.headers["referrer-policy"] in ("no-referrer", "same-origin", "strict-origin-when-cross-origin"), r.headers
    assert r.headers["x-content-type-options"] == "nosniff", r.headers


def _sign_in(srv, key_id: str, secret: str):
    return _http(srv, "POST", "/console/sign-in", data={"access_key_id": key_id, "access_key_secret": secret})


def test_console_sign_in_failures_are_throttled_per_key_then_per_address(fresh_server):
    srv = fresh_server()
    alice, bob = srv.create_user(), srv.create_user()
    for _ in range(5):
        assert _sign_in(srv, alice["AccessKeyId"], "wrong").status_code == 401
    # The key is throttled: even its right secret waits, and says how long.
    r = _sign_in(srv, alice["AccessKeyId"], alice["AccessKeySecret"])
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0, (r.status_code, r.headers)
    assert "Too many failed sign-ins with this AccessKey ID" in r.text
    # Another key from the same address is not.
    assert _sign_in(srv, bob["AccessKeyId"], bob["AccessKeySecret"]).status_code == 303
    # Guessing across many keys from one address throttles the address.
    codes = [_sign_in(srv, f"LTAI{uniq()}", "wrong").status_code for _ in range(25)]
    assert codes[0] == 401 and codes[-1] == 429, codes
    r = _sign_in(srv, bob["AccessKeyId"], bob["AccessKeySecret"])
    assert r.status_code == 429 and "from your address" in r.text, r.status_code
    # The API is not the console: the same keys still sign API requests.
    assert "ProductSummaries" in srv.caller("v3", (bob["AccessKeyId"], bob["AccessKeySecret"])).call("ListProductsAsEndUser", {})
