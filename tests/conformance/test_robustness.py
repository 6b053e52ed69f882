"""Odd but well-signed input must give a clean 4xx (or a sane 200), never a 5xx or a crash."""
from __future__ import annotations

import pytest
import requests

import acs_sign
from sclib import check_raw, uniq


def _client_error(resp):
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert body.get("Code") and body.get("RequestId"), body
    return body


@pytest.mark.parametrize("params", [
    {"PageNumber": 10 ** 15},
    {"PageNumber": 2 ** 63},
    {"PageSize": 2 ** 64},
    {"PageNumber": 2 ** 31, "PageSize": 100},
])
def test_huge_paging_numbers(raw, params):
    resp = raw.send("ListPortfolios", params)
    if resp.status_code == 200:
        assert resp.json().get("PortfolioDetails") in ([], None)
    else:
        code = _client_error(resp)["Code"]
        assert code.startswith("InvalidParameter."), code


def test_very_long_portfolio_id(raw):
    resp = raw.send("GetPortfolio", {"PortfolioId": "port-" + "x" * 20000})
    _client_error(resp)


def test_invalid_utf8_in_body(raw):
    """%FF%FE is not UTF-8: refuse it rather than storing U+FFFD replacement characters."""
    req = raw.build("CreatePortfolio", {"PortfolioName": "x", "ProviderName": "p"})
    req.body = b"PortfolioName=%FF%FEabc&ProviderName=p"
    _client_error(req.resign_v3(raw.access_key_id, raw.secret).send())


def test_large_body_is_refused_cleanly(raw, server):
    big = "x" * (8 * 1024 * 1024)
    try:
        resp = raw.send("CreatePortfolio", {"PortfolioName": "n", "ProviderName": "p", "Description": big})
        _client_error(resp)
    except requests.ConnectionError:
        pass  # closing the connection on an oversized body is acceptable
    assert raw.call("ListRegions")["Regions"]  # still serving


def test_sparse_filter_indexes(raw):
    """Array indexes are 1-based and may have gaps (PROTOCOL.md §7)."""
    tok = uniq("sparse")
    a = raw.call("CreatePortfolio", {"PortfolioName": f"a-{tok}", "ProviderName": "p", "Description": tok})
    raw.call("CreatePortfolio", {"PortfolioName": f"b-{tok}", "ProviderName": "p", "Description": tok})
    req = acs_sign.build_v3(raw.endpoint, raw.access_key_id, raw.secret, "ListPortfolios",
                            {"Filters.1.Key": "FullTextSearch", "Filters.1.Value": tok,
                             "Filters.3.Key": "PortfolioName", "Filters.3.Value": f"a-{tok}"}, placement="query")
    r = check_raw(req.send())
    assert [p["PortfolioId"] for p in r["PortfolioDetails"]] == [a["PortfolioId"]]


def test_unknown_parameters_are_ignored(raw):
    """The core SDK adds RegionId, SignatureType= etc.; other clients add their own."""
    r = raw.call("CreatePortfolio", {"PortfolioName": uniq("extra-"), "ProviderName": "p", "RegionId": "cn-hangzhou",
                                     "SomethingNew": "1"})
    assert r["PortfolioId"]


def test_server_still_healthy(server):
    s = requests.Session()
    s.trust_env = False
    assert s.get(f"http://{server.endpoint}/healthz", timeout=10).status_code == 200
    assert server.alive()
