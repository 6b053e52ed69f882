"""Authentication, request framing, error bodies and the admin/end-user split."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

import acs_sign
import sclib
from sclib import check_raw, expect_error, uniq

ALL_FLAVORS = ("v3", "v1", "sm3", "core", "raw-v3", "raw-v1")


def _send(req):
    resp = req.send()
    return resp, resp.json()


def _raw_error(resp, status, code):
    body = resp.json()
    assert (resp.status_code, body.get("Code")) == (status, code), (resp.status_code, body)
    return body


# ----------------------------------------------------------------------------- credentials


@pytest.mark.parametrize("flavor", ALL_FLAVORS)
def test_wrong_secret(server, admin_key, flavor):
    c = sclib.make_caller(flavor, server.endpoint, admin_key[0], admin_key[1] + "-wrong")
    expect_error(400, "SignatureDoesNotMatch", c.call, "ListRegions")


@pytest.mark.parametrize("flavor", ALL_FLAVORS)
def test_unknown_access_key(server, flavor):
    c = sclib.make_caller(flavor, server.endpoint, uniq("LTAInope"), "whatever-secret")
    expect_error(404, "InvalidAccessKeyId.NotFound", c.call, "ListRegions")


def test_admin_key_works_with_every_flavor(server, admin_key):
    for flavor in ALL_FLAVORS:
        r = sclib.make_caller(flavor, server.endpoint, *admin_key).call("ListRegions")
        assert r.get("Regions"), flavor


def test_sm3_signed_calls_read_and_write(server, admin_key):
    """The official SDK's ACS3-HMAC-SM3: a form-body write, query-string reads, an update and a delete."""
    sm3 = sclib.make_caller("sm3", server.endpoint, *admin_key)
    name = uniq("sm3-")
    pid = sm3.call("CreatePortfolio", {"PortfolioName": name, "ProviderName": "platform", "Description": "signed with SM3"})["PortfolioId"]
    assert sm3.call("GetPortfolio", {"PortfolioId": pid})["PortfolioDetail"]["PortfolioName"] == name
    listed = sm3.call("ListPortfolios", {"Filters": [{"Key": "FullTextSearch", "Value": name}], "PageSize": 10})
    assert [p["PortfolioId"] for p in listed["PortfolioDetails"]] == [pid]
    sm3.call("UpdatePortfolio", {"PortfolioId": pid, "PortfolioName": name, "ProviderName": "platform", "Description": "still SM3"})
    assert sm3.call("GetPortfolio", {"PortfolioId": pid})["PortfolioDetail"]["Description"] == "still SM3"
    sm3.call("DeletePortfolio", {"PortfolioId": pid})
    expect_error(404, "EntityNotExists.Portfolio", sm3.call, "GetPortfolio", {"PortfolioId": pid})


# ----------------------------------------------------------------------------- replay and clock


def test_replayed_v3_request_is_rejected(raw):
    req = raw.build("ListRegions")
    first = req.send()
    assert first.status_code == 200, first.text
    second = req.send()
    _raw_error(second, 400, "SignatureNonceUsed")


def test_replayed_create_does_not_create_twice(raw):
    tok = uniq("replay")
    req = raw.build("CreatePortfolio", {"PortfolioName": tok, "ProviderName": "p"})
    check_raw(req.send())
    _raw_error(req.send(), 400, "SignatureNonceUsed")
    r = raw.call("ListPortfolios", {"Filters": [{"Key": "PortfolioName", "Value": tok}]})
    assert r["TotalCount"] == 1


def test_replayed_v1_request_is_rejected(raw_v1):
    req = raw_v1.build("ListRegions")
    assert req.send().status_code == 200
    _raw_error(req.send(), 400, "SignatureNonceUsed")


def test_reused_nonce_with_fresh_signature_is_rejected(raw):
    nonce = acs_sign.new_nonce()
    assert raw.build("ListRegions", nonce=nonce).send().status_code == 200
    other = raw.build("ListPortfolios", {"PageSize": 5}, nonce=nonce)
    _raw_error(other.send(), 400, "SignatureNonceUsed")


@pytest.mark.parametrize("skew_minutes", [-60, -24 * 60])
def test_stale_x_acs_date_is_rejected(raw, skew_minutes):
    t = acs_sign.utc_now() + dt.timedelta(minutes=skew_minutes)
    _raw_error(raw.build("ListRegions", date=acs_sign.acs_time(t)).send(), 400, "InvalidTimeStamp.Expired")


def test_future_x_acs_date_is_rejected(raw):
    t = acs_sign.utc_now() + dt.timedelta(hours=2)
    resp = raw.build("ListRegions", date=acs_sign.acs_time(t)).send()
    assert resp.status_code == 400, resp.text
    assert resp.json()["Code"].startswith("InvalidTimeStamp"), resp.text


def test_slightly_skewed_date_is_accepted(raw):
    t = acs_sign.utc_now() - dt.timedelta(minutes=2)
    assert raw.build("ListRegions", date=acs_sign.acs_time(t)).send().status_code == 200


def test_stale_v1_timestamp_is_rejected(raw_v1):
    t = acs_sign.utc_now() - dt.timedelta(hours=1)
    _raw_error(raw_v1.build("ListRegions", timestamp=acs_sign.acs_time(t)).send(), 400, "InvalidTimeStamp.Expired")


# ----------------------------------------------------------------------------- malformed / tampered


def test_missing_authorization_is_incomplete_signature(raw):
    req = raw.build("ListRegions")
    del req.headers["Authorization"]
    _raw_error(req.send(), 400, "IncompleteSignature")


@pytest.mark.parametrize("auth", [
    "garbage",
    "ACS3-HMAC-SHA256",
    "ACS3-HMAC-SHA256 Credential=",
    "ACS3-HMAC-SHA256 SignedHeaders=host,Signature=00",
])
def test_garbled_authorization_is_incomplete_signature(raw, auth):
    req = raw.build("ListRegions")
    req.headers["Authorization"] = auth
    _raw_error(req.send(), 400, "IncompleteSignature")


def test_unsigned_request_without_any_signature(server):
    import requests

    s = requests.Session()
    s.trust_env = False
    resp = s.post(f"http://{server.endpoint}/", headers={"x-acs-action": "ListRegions",
                                                          "x-acs-version": "2021-09-01"}, timeout=30)
    _raw_error(resp, 400, "IncompleteSignature")


def test_tampered_body_is_rejected(raw):
    req = raw.build("CreatePortfolio", {"PortfolioName": uniq("tamper-"), "ProviderName": "p"})
    req.body = req.body.replace(b"ProviderName=p", b"ProviderName=q")
    _raw_error(req.send(), 400, "SignatureDoesNotMatch")


def test_tampered_body_with_matching_hash_header_is_rejected(raw):
    req = raw.build("CreatePortfolio", {"PortfolioName": uniq("tamper-"), "ProviderName": "p"})
    req.body = req.body.replace(b"ProviderName=p", b"ProviderName=q")
    req.headers["x-acs-content-sha256"] = hashlib.sha256(req.body).hexdigest()
    _raw_error(req.send(), 400, "SignatureDoesNotMatch")


def test_tampered_query_is_rejected(raw):
    req = raw.build("ListPortfolios", {"PageSize": 5})
    req.query = [("PageSize", "6")]
    _raw_error(req.send(), 400, "SignatureDoesNotMatch")


def test_tampered_signed_header_is_rejected(raw):
    req = raw.build("GetPortfolio", {"PortfolioId": "port-0000000000none"})
    req.headers["x-acs-action"] = "DeletePortfolio"
    _raw_error(req.send(), 400, "SignatureDoesNotMatch")


def test_unsigned_extra_header_is_ignored(raw):
    req = raw.build("ListRegions")
    req.headers["X-Not-Signed"] = "anything"
    assert req.send().status_code == 200


def test_parameters_in_query_instead_of_body_are_accepted(raw):
    """Other SDK generations place parameters differently: the server merges query and body."""
    name = uniq("inquery-")
    r = raw.call("CreatePortfolio", {"PortfolioName": name, "ProviderName": "p"}, placement="query")
    d = raw.call("GetPortfolio", {"PortfolioId": r["PortfolioId"]}, placement="body")["PortfolioDetail"]
    assert d["PortfolioName"] == name


# ----------------------------------------------------------------------------- action / version


@pytest.mark.parametrize("flavor", ["raw-v3", "raw-v1", "core"])
def test_unknown_action(server, admin_key, flavor):
    c = sclib.make_caller(flavor, server.endpoint, *admin_key)
    expect_error(404, "InvalidAction.NotFound", c.call, "DescribeNothingAtAll", {})


@pytest.mark.parametrize("flavor", ["raw-v3", "raw-v1", "core"])
def test_wrong_version(server, admin_key, flavor):
    c = sclib.make_caller(flavor, server.endpoint, *admin_key)
    expect_error(400, "InvalidVersion", c.call, "ListRegions", {}, version="2014-05-26")


# ----------------------------------------------------------------------------- response shape


def test_error_body_shape(raw):
    resp = raw.send("DescribeNothingAtAll")
    assert resp.status_code == 404
    assert resp.headers.get("Content-Type", "").startswith("application/json")
    body = resp.json()
    for f in ("RequestId", "HostId", "Code", "Message", "Recommend"):
        assert isinstance(body.get(f), str) and body[f], (f, body)
    assert body["Code"] == "InvalidAction.NotFound"


def test_sdk_sees_error_fields(admin_v3):
    e = expect_error(404, "EntityNotExists.Portfolio", admin_v3.call, "GetPortfolio",
                     {"PortfolioId": "port-0000000000none"})
    assert e.request_id and e.request_id != "None"
    for f in ("RequestId", "HostId", "Code", "Message", "Recommend"):
        assert e.data.get(f), (f, e.data)


def test_request_ids_are_unique(raw):
    ids = {raw.call("ListRegions")["RequestId"] for _ in range(5)}
    assert len(ids) == 5


def test_success_is_json(raw):
    resp = raw.send("ListRegions")
    assert resp.status_code == 200
    assert resp.headers.get("Content-Type", "").startswith("application/json")
    assert json.loads(resp.text)["RequestId"]


def test_healthz_needs_no_signature(server):
    import requests

    s = requests.Session()
    s.trust_env = False
    assert s.get(f"http://{server.endpoint}/healthz", timeout=10).status_code == 200


def test_ping_needs_no_signature(server):
    import requests

    s = requests.Session()
    s.trust_env = False
    resp = s.get(f"http://{server.endpoint}/ping", timeout=10)
    assert resp.status_code == 200 and resp.json() == {"Status": "ok"}


# ----------------------------------------------------------------------------- users and roles


def test_users_create_output(make_user):
    name = uniq("u-")
    user = make_user(name=name)
    assert set(user) == {"UserName", "PrincipalId", "PrincipalType", "AccessKeyId", "AccessKeySecret"}
    assert user["UserName"] == name
    for v in user.values():
        assert isinstance(v, str) and v


def test_end_user_may_list_regions(end_user):
    _, caller = end_user
    for flavor in ("v3", "v1", "core"):
        assert caller(flavor).call("ListRegions").get("Regions"), flavor


@pytest.mark.parametrize("flavor", ["v3", "v1", "core"])
def test_end_user_cannot_create_portfolio(end_user, flavor):
    _, caller = end_user
    e = expect_error(403, "Forbidden.AdministratorOnly", caller(flavor).call, "CreatePortfolio",
                     {"PortfolioName": uniq("eu-"), "ProviderName": "p"})
    if flavor in ("v3", "v1"):
        assert e.access_denied_detail, e.data


def test_end_user_forbidden_body_has_access_denied_detail(server, end_user):
    user, _ = end_user
    raw = sclib.make_caller("raw-v3", server.endpoint, user["AccessKeyId"], user["AccessKeySecret"])
    resp = raw.send("CreatePortfolio", {"PortfolioName": uniq("eu-"), "ProviderName": "p"})
    body = _raw_error(resp, 403, "Forbidden.AdministratorOnly")
    assert isinstance(body.get("AccessDeniedDetail"), dict) and body["AccessDeniedDetail"], body
    for f in ("RequestId", "HostId", "Message", "Recommend"):
        assert body.get(f), (f, body)


def test_end_user_cannot_touch_portfolios(admin_v3, end_user):
    _, caller = end_user
    c = caller("v3")
    pid = admin_v3.call("CreatePortfolio", {"PortfolioName": uniq("eu-"), "ProviderName": "p"})["PortfolioId"]
    for action, params in [
        ("GetPortfolio", {"PortfolioId": pid}),
        ("ListPortfolios", {}),
        ("UpdatePortfolio", {"PortfolioId": pid, "PortfolioName": "hacked", "ProviderName": "p"}),
        ("DeletePortfolio", {"PortfolioId": pid}),
    ]:
        expect_error(403, "Forbidden.AdministratorOnly", c.call, action, params)
    d = admin_v3.call("GetPortfolio", {"PortfolioId": pid})["PortfolioDetail"]
    assert d["PortfolioName"] != "hacked"


def test_end_user_wrong_secret_is_signature_error_not_forbidden(server, end_user):
    user, _ = end_user
    c = sclib.make_caller("v3", server.endpoint, user["AccessKeyId"], user["AccessKeySecret"] + "x")
    expect_error(400, "SignatureDoesNotMatch", c.call, "CreatePortfolio", {"PortfolioName": "n", "ProviderName": "p"})


def test_admin_user_may_manage_portfolios(server, make_user):
    user = make_user(admin=True)
    c = server.caller("v1", (user["AccessKeyId"], user["AccessKeySecret"]))
    pid = c.call("CreatePortfolio", {"PortfolioName": uniq("adm-"), "ProviderName": "p"})["PortfolioId"]
    assert c.call("GetPortfolio", {"PortfolioId": pid})["PortfolioDetail"]["PortfolioId"] == pid
    c.call("DeletePortfolio", {"PortfolioId": pid})


def test_users_list_and_delete(server, make_user):
    user = make_user()
    assert user["UserName"] in server.cli("users", "list").stdout
    c = server.caller("v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    assert c.call("ListRegions")["Regions"]
    server.cli("users", "delete", user["UserName"])
    assert user["UserName"] not in server.cli("users", "list").stdout
    expect_error(404, "InvalidAccessKeyId.NotFound", c.call, "ListRegions")


# ----------------------------------------------------------------------------- what must be signed


@pytest.mark.parametrize("header", ["x-acs-signature-nonce", "x-acs-date", "x-acs-action", "host"])
def test_security_relevant_headers_must_be_signed(raw, header):
    """Leaving the nonce/date/action/host out of SignedHeaders would allow replaying or
    re-targeting a captured request without knowing the secret."""
    req = raw.build("ListRegions", unsigned=[header])
    resp = req.send()
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert resp.json()["Code"] in ("IncompleteSignature", "SignatureDoesNotMatch", "InvalidParameter.SignedHeaders"), \
        resp.text


def test_unsigned_nonce_cannot_be_swapped(raw):
    req = raw.build("ListRegions", unsigned=["x-acs-signature-nonce"])
    first = req.send()
    req.headers["x-acs-signature-nonce"] = acs_sign.new_nonce()
    second = req.send()
    assert not (first.status_code == 200 and second.status_code == 200), "captured request replayed with a new nonce"


# ----------------------------------------------------------------------------- other client shapes


def test_get_method_with_query_parameters(raw, admin_v3):
    pid = admin_v3.call("CreatePortfolio", {"PortfolioName": uniq("get-"), "ProviderName": "p"})["PortfolioId"]
    r = raw.call("GetPortfolio", {"PortfolioId": pid}, method="GET", placement="query")
    assert r["PortfolioDetail"]["PortfolioId"] == pid


def test_form_body_with_charset_parameter(raw):
    """Java/Go SDKs send 'application/x-www-form-urlencoded; charset=UTF-8'."""
    name = uniq("charset-é-")
    req = raw.build("CreatePortfolio", {"PortfolioName": name, "ProviderName": "p"},
                    extra_headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"})
    pid = check_raw(req.send())["PortfolioId"]
    assert raw.call("GetPortfolio", {"PortfolioId": pid})["PortfolioDetail"]["PortfolioName"] == name


def test_users_create_with_role(make_user):
    user = make_user(role="ProvisioningRole")
    assert set(user) == {"UserName", "PrincipalId", "PrincipalType", "AccessKeyId", "AccessKeySecret"}


def test_users_create_duplicate_name_fails(server, make_user):
    user = make_user()
    res = server.cli("users", "create", user["UserName"], "--json", check=False)
    assert res.returncode != 0, res.stdout
    assert server.caller("v3", (user["AccessKeyId"], user["AccessKeySecret"])).call("ListRegions")["Regions"]


def test_users_delete_unknown_fails(server):
    assert server.cli("users", "delete", uniq("nobody-"), check=False).returncode != 0
