"""The suite's own signer must agree with PROTOCOL.md's captured vectors and the pinned SDKs.

These tests need no server: they keep the raw/replay tests honest.
"""
from __future__ import annotations

import hashlib
import http.server
import json

import pytest

import acs_sign
import sclib

SECRET = "fake-secret-for-docs"
AK = "LTAI-FAKE-ACCESS-KEY-ID"
EP = "127.0.0.1:18080"
UA = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"

LAUNCH_PARAMS = {
    "Parameters.1.ParameterKey": "InstanceType", "Parameters.1.ParameterValue": "ecs.g6.large",
    "Parameters.2.ParameterKey": "Note", "Parameters.2.ParameterValue": "a b&c=d/é~*",
    "PortfolioId": "port-1", "ProductId": "prod-1", "ProductVersionId": "pv-1",
    "ProvisionedProductName": "my instance", "StackRegionId": "cn-hangzhou",
    "Tags.1.Key": "env", "Tags.1.Value": "dev", "Tags.2.Key": "team", "Tags.2.Value": "core",
}
LIST_TASKS_PARAMS = {"PageNumber": 2, "PageSize": 5, "ProvisionedProductId": "pp-1", "SortBy": "CreateTime",
                     "SortOrder": "Asc"}

# (name, action, params, placement, method, date, nonce, body sha256 or None, signature) - PROTOCOL.md §6
V3_VECTORS = [
    ("6.1 GetTask", "GetTask", {"TaskId": "task-bp1xxxx"}, "body", "POST", "2026-11-29T09:26:19Z",
     "9f37efbb63ace663824b545054cc068c", "b5eded4dbe7e0ff927fb39b27e4e82629ec02f402b256cbd94265516ffbb4edd",
     "bcc6302f2cf9c6319ea8d267eae6d357f6d86396fdafeb78aef0ffd23b80ee9d"),
    ("6.2 LaunchProduct", "LaunchProduct", LAUNCH_PARAMS, "body", "POST", "2026-11-29T09:26:19Z",
     "b29e089484d4b7deece95a8a8511c6a6", "c857ad0949e1e89f46d94396322137e7b8f21ba247b0bbb8f0bbd0c087837f68",
     "25f4ea5b40ba14c9ca515fdb8672e9ee34a99bdba7db3279b48349a6b972617f"),
    ("6.3 ListTasks", "ListTasks", LIST_TASKS_PARAMS, "query", "POST", "2026-11-29T09:26:19Z",
     "897ff18aa3f2d35e005950711db88099", acs_sign.EMPTY_SHA256,
     "1569f3383e8de440911bd42b08777ec6595fbf3ee3ff75250a2460e74f56481e"),
    ("6.5 ListTagOptions", "ListTagOptions",
     {"Filters": '{"Active":true,"Key":"env","Value":"dev"}', "PageSize": 20}, "query", "GET",
     "2026-11-29T09:26:19Z", "86c9021301d05c12147b6027d4c6cf92", acs_sign.EMPTY_SHA256,
     "744f1e9266fdc9f1bd19d618c4fccf433c735d83264fbfb797a1600bf7e5f595"),
]

V1_VECTORS = [
    ("6.11 LaunchProduct", "LaunchProduct", LAUNCH_PARAMS, "body", "2026-11-29T09:26:19Z",
     "ff2b44493f916ca771ba187f72e2d134", "DrNxWJpWIHtF0aTqLzJSGIErSbc="),
    ("6.12 ListTasks", "ListTasks", LIST_TASKS_PARAMS, "query", "2026-11-29T09:26:20Z",
     "5e802cfcb31841ce43d5731d04968115", "rrj0LGwW3I1H/47G6pVyzMqOSxY="),
]


@pytest.mark.parametrize("vec", V3_VECTORS, ids=[v[0] for v in V3_VECTORS])
def test_v3_signer_reproduces_protocol_vectors(vec):
    _, action, params, placement, method, date, nonce, body_sha, sig = vec
    req = acs_sign.build_v3(EP, AK, SECRET, action, params, placement=placement, method=method, date=date,
                            nonce=nonce, user_agent=UA)
    assert req.headers["x-acs-content-sha256"] == body_sha
    assert req.headers["Authorization"].endswith(f",Signature={sig}")
    assert req.headers["Authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={AK},SignedHeaders=accept;")
    # and the verifier accepts it, but not with another secret
    assert acs_sign.verify_v3(method, req.url.split(EP, 1)[1], req.headers, req.body, SECRET)
    assert not acs_sign.verify_v3(method, req.url.split(EP, 1)[1], req.headers, req.body, SECRET + "x")


def test_v3_canonical_request_matches_worked_example():
    req = acs_sign.build_v3(EP, AK, SECRET, "ListTagOptions",
                            {"Filters": '{"Active":true,"Key":"env","Value":"dev"}', "PageSize": 20},
                            placement="query", method="GET", date="2026-11-29T09:26:19Z",
                            nonce="86c9021301d05c12147b6027d4c6cf92", user_agent=UA)
    signed = req.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    canon = acs_sign.v3_canonical_request("GET", "/", req.query, req.headers, signed, acs_sign.EMPTY_SHA256)
    assert canon.splitlines()[2] == ("Filters=%7B%22Active%22%3Atrue%2C%22Key%22%3A%22env%22%2C%22Value%22"
                                     "%3A%22dev%22%7D&PageSize=20")
    assert hashlib.sha256(canon.encode()).hexdigest() == \
        "72f2279142e24bbc94708f966d09d5cd744561f8e804f6299011499d5e6910e2"


@pytest.mark.parametrize("vec", V1_VECTORS, ids=[v[0] for v in V1_VECTORS])
def test_v1_signer_reproduces_protocol_vectors(vec):
    _, action, params, placement, ts, nonce, sig = vec
    req = acs_sign.build_v1(EP, AK, SECRET, action, params, placement=placement, timestamp=ts, nonce=nonce)
    assert dict(req.query)["Signature"] == sig
    target = req.url.split(EP, 1)[1]
    assert acs_sign.verify_v1("POST", target, req.headers, req.body, SECRET)
    assert not acs_sign.verify_v1("POST", target, req.headers, req.body, "other-secret")


# ---------------------------------------------------------------- against the pinned SDKs, on loopback


class _Capture(http.server.BaseHTTPRequestHandler):
    captured: list = []

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Capture.captured.append((self.command, self.path, dict(self.headers.items()), body))
        out = json.dumps({"RequestId": "req-1", "Regions": [], "PortfolioId": "port-1",
                          "PortfolioDetails": [], "TotalCount": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _handle

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def capture_server():
    srv = sclib.serve(_Capture)
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


NASTY = "a b&c=d/é~*"


@pytest.mark.parametrize("flavor", sclib.FLAVORS)
@pytest.mark.parametrize("action,params", [
    ("ListRegions", None),
    ("CreatePortfolio", {"PortfolioName": NASTY, "ProviderName": "p", "Description": "日本語 +%"}),
    ("ListPortfolios", {"Filters": [{"Key": "PortfolioName", "Value": NASTY}], "PageSize": 5,
                        "SortOrder": "Asc"}),
])
def test_sdk_requests_verify_with_our_signer(capture_server, flavor, action, params):
    """Whatever the pinned SDKs put on the wire, our verifier re-derives the same signature."""
    _Capture.captured.clear()
    caller = sclib.make_caller(flavor, capture_server, AK, SECRET)
    caller.call(action, params)
    assert len(_Capture.captured) == 1
    method, target, headers, body = _Capture.captured[0]
    lower = {k.lower(): v for k, v in headers.items()}
    if flavor == "v3":
        assert lower["x-acs-action"] == action
        assert acs_sign.verify_v3(method, target, headers, body, SECRET)
        assert not acs_sign.verify_v3(method, target, headers, body, SECRET + "!")
    else:
        assert "Signature=" in target
        assert acs_sign.verify_v1(method, target, headers, body, SECRET)
        assert not acs_sign.verify_v1(method, target, headers, body, SECRET + "!")
