"""ListRegions and the portfolio actions through the official SDKs (V3, V1, core)."""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import re

import pytest

from sclib import PORTFOLIO_ID_RE, expect_error, parse_time, uniq

NASTY = "a b&c=d/é~*"


def create(caller, name=None, provider="conformance", description=None, **extra) -> str:
    params = {"PortfolioName": name or uniq("pf-"), "ProviderName": provider}
    if description is not None:
        params["Description"] = description
    params.update(extra)
    r = caller.call("CreatePortfolio", params)
    assert r.get("RequestId")
    return r["PortfolioId"]


def get(caller, pid) -> dict:
    return caller.call("GetPortfolio", {"PortfolioId": pid})["PortfolioDetail"]


def list_ids(caller, **params) -> list[str]:
    return [p["PortfolioId"] for p in caller.call("ListPortfolios", params).get("PortfolioDetails") or []]


def by_text(token):
    return [{"Key": "FullTextSearch", "Value": token}]


# ----------------------------------------------------------------------------- ListRegions


def test_list_regions(admin):
    r = admin.call("ListRegions")
    assert r.get("RequestId")
    regions = r.get("Regions")
    assert isinstance(regions, list) and regions, r
    for reg in regions:
        for f in ("RegionId", "LocalName", "RegionEndpoint"):
            assert isinstance(reg.get(f), str) and reg[f], reg
    ids = [reg["RegionId"] for reg in regions]
    assert len(ids) == len(set(ids))


# ----------------------------------------------------------------------------- lifecycle


def test_portfolio_lifecycle(admin):
    name = uniq("lifecycle-")
    before = dt.datetime.now(dt.timezone.utc)
    pid = create(admin, name, provider="prov-1", description="first description")
    assert PORTFOLIO_ID_RE.match(pid), pid

    r = admin.call("GetPortfolio", {"PortfolioId": pid})
    assert r.get("RequestId")
    assert r.get("TagOptions") in (None, [])
    d = r["PortfolioDetail"]
    assert d["PortfolioId"] == pid
    assert d["PortfolioName"] == name
    assert d["ProviderName"] == "prov-1"
    assert d["Description"] == "first description"
    assert re.fullmatch(rf"acs:servicecatalog:[^:]+:[^:]+:portfolio/{pid}", d["PortfolioArn"]), d["PortfolioArn"]
    created = parse_time(d["CreateTime"])
    assert abs((created - before).total_seconds()) < 300, (created, before)

    u = admin.call("UpdatePortfolio", {"PortfolioId": pid, "PortfolioName": name + "-v2", "ProviderName": "prov-2",
                                       "Description": "second description"})
    assert u["PortfolioId"] == pid and u.get("RequestId")
    d2 = get(admin, pid)
    assert (d2["PortfolioName"], d2["ProviderName"], d2["Description"]) == (name + "-v2", "prov-2",
                                                                            "second description")
    assert d2["CreateTime"] == d["CreateTime"]
    assert d2["PortfolioArn"] == d["PortfolioArn"]

    listed = admin.call("ListPortfolios", {"Filters": [{"Key": "PortfolioName", "Value": name + "-v2"}]})
    assert listed["TotalCount"] == 1
    assert len(listed["PortfolioDetails"]) == 1
    item = listed["PortfolioDetails"][0]
    for f in ("PortfolioId", "PortfolioName", "ProviderName", "Description", "PortfolioArn", "CreateTime"):
        assert item[f] == d2[f], f

    assert admin.call("DeletePortfolio", {"PortfolioId": pid}).get("RequestId")
    expect_error(404, "EntityNotExists.Portfolio", admin.call, "GetPortfolio", {"PortfolioId": pid})
    expect_error(404, "EntityNotExists.Portfolio", admin.call, "DeletePortfolio", {"PortfolioId": pid})
    expect_error(404, "EntityNotExists.Portfolio", admin.call, "UpdatePortfolio",
                 {"PortfolioId": pid, "PortfolioName": "x", "ProviderName": "y"})
    assert list_ids(admin, Filters=[{"Key": "PortfolioName", "Value": name + "-v2"}]) == []


def test_create_without_description(admin_v3):
    pid = create(admin_v3, description=None)
    assert get(admin_v3, pid).get("Description") in (None, "")


def test_ids_are_unique(admin_v3):
    ids = {create(admin_v3) for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("action", ["GetPortfolio", "DeletePortfolio"])
def test_unknown_portfolio_is_404(admin, action):
    expect_error(404, "EntityNotExists.Portfolio", admin.call, action, {"PortfolioId": "port-0000000000none"})


def test_update_unknown_portfolio_is_404(admin_v3):
    expect_error(404, "EntityNotExists.Portfolio", admin_v3.call, "UpdatePortfolio",
                 {"PortfolioId": "port-0000000000none", "PortfolioName": "n", "ProviderName": "p"})


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("action,params,missing", [
    ("CreatePortfolio", {"ProviderName": "p"}, "PortfolioName"),
    ("CreatePortfolio", {"PortfolioName": "n"}, "ProviderName"),
    ("GetPortfolio", {}, "PortfolioId"),
    ("DeletePortfolio", {}, "PortfolioId"),
    ("UpdatePortfolio", {"PortfolioName": "n", "ProviderName": "p"}, "PortfolioId"),
    ("UpdatePortfolio", {"PortfolioId": "port-0000000000none", "ProviderName": "p"}, "PortfolioName"),
    ("UpdatePortfolio", {"PortfolioId": "port-0000000000none", "PortfolioName": "n"}, "ProviderName"),
])
def test_missing_required_parameter(admin, action, params, missing):
    e = expect_error(400, f"MissingParameter.{missing}", admin.call, action, params)
    assert missing in e.message


def test_empty_required_parameter_is_rejected(admin_v3):
    e = None
    try:
        admin_v3.call("CreatePortfolio", {"PortfolioName": "", "ProviderName": "p"})
    except Exception as exc:  # noqa: BLE001
        e = exc
    assert e is not None and getattr(e, "status", None) == 400, e
    assert e.code in ("MissingParameter.PortfolioName", "InvalidParameter.PortfolioName"), e


@pytest.mark.parametrize("field", ["PortfolioName", "ProviderName", "Description"])
def test_create_length_limits(admin, field):
    base = {"PortfolioName": uniq("len-"), "ProviderName": "p", "Description": "d"}
    ok = dict(base, **{field: (base[field] + "x" * 128)[:128]})
    pid = admin.call("CreatePortfolio", ok)["PortfolioId"]
    assert len(get(admin, pid)[field]) == 128
    too_long = dict(base, **{field: "y" * 129})
    e = expect_error(400, f"InvalidParameter.{field}", admin.call, "CreatePortfolio", too_long)
    assert field in e.message


def test_length_is_counted_in_characters_not_bytes(admin_v3):
    name = "é" * 64 + "語" * 64   # 128 characters, 320 UTF-8 bytes
    pid = create(admin_v3, name, description="🚀" * 128)
    d = get(admin_v3, pid)
    assert d["PortfolioName"] == name and d["Description"] == "🚀" * 128
    expect_error(400, "InvalidParameter.PortfolioName", admin_v3.call, "CreatePortfolio",
                 {"PortfolioName": "é" * 129, "ProviderName": "p"})


def test_update_length_limit(admin_v3):
    pid = create(admin_v3)
    e = expect_error(400, "InvalidParameter.PortfolioName", admin_v3.call, "UpdatePortfolio",
                     {"PortfolioId": pid, "PortfolioName": "n" * 129, "ProviderName": "p"})
    assert "PortfolioName" in e.message
    assert get(admin_v3, pid)["PortfolioName"] != "n" * 129


@pytest.mark.parametrize("param,value", [
    ("PageSize", 0), ("PageSize", 101), ("PageSize", -1), ("PageSize", "abc"), ("PageSize", "1.5"),
    ("PageNumber", 0), ("PageNumber", "x"),
    ("SortOrder", "Sideways"), ("SortBy", "Name"), ("Scope", "Galaxy"),
])
def test_list_portfolios_invalid_parameters(admin, param, value):
    e = expect_error(400, f"InvalidParameter.{param}", admin.call, "ListPortfolios", {param: value})
    assert param in e.message


@pytest.mark.parametrize("size", [1, 100])
def test_list_portfolios_page_size_bounds_accepted(admin_v3, size):
    r = admin_v3.call("ListPortfolios", {"PageSize": size})
    assert r["PageSize"] == size
    assert len(r["PortfolioDetails"]) <= size


# ----------------------------------------------------------------------------- paging, sorting, filters


@pytest.fixture(scope="module")
def seven(admin_v3):
    """Seven portfolios created in order, findable by a unique token."""
    tok = uniq("tok")
    ids = [create(admin_v3, f"paging-{tok}-{i}", description=f"seven {tok}") for i in range(7)]
    return tok, ids


def test_list_paging(admin, seven):
    tok, ids = seven
    seen = []
    for page, expected_len in ((1, 3), (2, 3), (3, 1), (4, 0)):
        r = admin.call("ListPortfolios", {"Filters": by_text(tok), "PageSize": 3, "PageNumber": page,
                                          "SortBy": "CreateTime", "SortOrder": "Asc"})
        assert (r["PageNumber"], r["PageSize"], r["TotalCount"]) == (page, 3, 7), r
        details = r.get("PortfolioDetails") or []
        assert len(details) == expected_len, (page, details)
        seen += [p["PortfolioId"] for p in details]
    assert seen == ids  # ascending creation order, no duplicates or gaps across pages


def test_list_sort_order(admin_v3, seven):
    tok, ids = seven
    asc = list_ids(admin_v3, Filters=by_text(tok), SortBy="CreateTime", SortOrder="Asc")
    desc = list_ids(admin_v3, Filters=by_text(tok), SortBy="CreateTime", SortOrder="Desc")
    default = list_ids(admin_v3, Filters=by_text(tok))
    assert asc == ids
    assert desc == ids[::-1]
    assert default == desc  # SortOrder defaults to Desc


def test_list_defaults(admin_v3, seven):
    # enough portfolios for more than one default page
    for _ in range(4):
        create(admin_v3)
    r = admin_v3.call("ListPortfolios", {})
    assert r["PageNumber"] == 1 and r["PageSize"] == 10
    assert r["TotalCount"] >= 11
    details = r["PortfolioDetails"]
    assert len(details) == 10
    times = [parse_time(p["CreateTime"]) for p in details]
    assert times == sorted(times, reverse=True)


def test_filter_portfolio_name_exact_case_insensitive(admin):
    tok = uniq("exact")
    name = f"Exact-{tok}-Name"
    pid = create(admin, name)
    create(admin, name + "-longer")
    assert list_ids(admin, Filters=[{"Key": "PortfolioName", "Value": name}]) == [pid]
    assert list_ids(admin, Filters=[{"Key": "PortfolioName", "Value": name.lower()}]) == [pid]
    assert list_ids(admin, Filters=[{"Key": "PortfolioName", "Value": name.upper()}]) == [pid]
    assert list_ids(admin, Filters=[{"Key": "PortfolioName", "Value": f"Exact-{tok}"}]) == []


def test_filter_full_text_search(admin_v3):
    tok = uniq("fts")
    in_name = create(admin_v3, f"alpha{tok}beta", provider="p", description="d")
    in_provider = create(admin_v3, uniq("n-"), provider=f"prov {tok} x", description="d")
    in_description = create(admin_v3, uniq("n-"), provider="p", description=f"about {tok}.")
    create(admin_v3, uniq("n-"), provider="p", description="unrelated")
    found = set(list_ids(admin_v3, Filters=by_text(tok), PageSize=100))
    assert found == {in_name, in_provider, in_description}
    r = admin_v3.call("ListPortfolios", {"Filters": by_text(tok)})
    assert r["TotalCount"] == 3


def test_filter_full_text_search_is_case_insensitive(admin_v3):
    tok = uniq("fts")
    pid = create(admin_v3, f"Case{tok}")
    assert list_ids(admin_v3, Filters=by_text(tok.upper())) == [pid]


def test_filters_combine_with_and(admin_v3):
    tok = uniq("and")
    a = create(admin_v3, f"one-{tok}", description=tok)
    create(admin_v3, f"two-{tok}", description=tok)
    got = list_ids(admin_v3, Filters=[{"Key": "FullTextSearch", "Value": tok},
                                      {"Key": "PortfolioName", "Value": f"one-{tok}"}])
    assert got == [a]
    assert list_ids(admin_v3, Filters=[{"Key": "FullTextSearch", "Value": uniq("nothing")},
                                       {"Key": "PortfolioName", "Value": f"one-{tok}"}]) == []


def test_scope(admin, seven):
    tok, ids = seven
    f = by_text(tok)
    assert set(list_ids(admin, Filters=f, Scope="Local", PageSize=100)) == set(ids)
    assert set(list_ids(admin, Filters=f, Scope="All", PageSize=100)) == set(ids)
    assert list_ids(admin, Filters=f, Scope="Import", PageSize=100) == []
    assert set(list_ids(admin, Filters=f, PageSize=100)) == set(ids)  # default scope includes local ones


# ----------------------------------------------------------------------------- encoding


def test_reserved_and_non_ascii_round_trip(admin):
    tok = uniq()
    name = f"{NASTY} {tok}"
    provider = "prov é/&=+%"
    description = f"描述 {NASTY} 100% + 'q' \"dq\" <x> #frag ?q=1 🚀 {tok}"
    pid = create(admin, name, provider=provider, description=description)
    d = get(admin, pid)
    assert (d["PortfolioName"], d["ProviderName"], d["Description"]) == (name, provider, description)
    # the same strings travel in the query string of ListPortfolios
    assert list_ids(admin, Filters=[{"Key": "PortfolioName", "Value": name}]) == [pid]
    assert list_ids(admin, Filters=by_text(f"{NASTY} {tok}")) == [pid]
    new_name = f"{tok} ~*'()!;:@$,[] ü"
    admin.call("UpdatePortfolio", {"PortfolioId": pid, "PortfolioName": new_name, "ProviderName": provider,
                                   "Description": "x=1&y=2"})
    d = get(admin, pid)
    assert (d["PortfolioName"], d["Description"]) == (new_name, "x=1&y=2")


# ----------------------------------------------------------------------------- concurrency


def test_concurrent_creates(server, admin_key):
    import sclib

    tok = uniq("conc")
    callers = [sclib.make_caller("v3", server.endpoint, *admin_key) for _ in range(4)]

    def one(i):
        return callers[i % 4].call("CreatePortfolio", {"PortfolioName": f"{tok}-{i}", "ProviderName": "p",
                                                       "Description": tok})["PortfolioId"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(one, range(24)))
    assert len(set(ids)) == 24
    r = callers[0].call("ListPortfolios", {"Filters": by_text(tok), "PageSize": 100})
    assert r["TotalCount"] == 24
    assert {p["PortfolioId"] for p in r["PortfolioDetails"]} == set(ids)


@pytest.mark.parametrize("field", ["ProviderName", "Description"])
def test_update_length_limits_other_fields(admin_v3, field):
    pid = create(admin_v3, description="d")
    params = {"PortfolioId": pid, "PortfolioName": "n", "ProviderName": "p", field: "z" * 129}
    e = expect_error(400, f"InvalidParameter.{field}", admin_v3.call, "UpdatePortfolio", params)
    assert field in e.message
    assert get(admin_v3, pid)[field] != "z" * 129


def test_arn_names_a_known_region_and_one_account(admin_v3):
    regions = {r["RegionId"] for r in admin_v3.call("ListRegions")["Regions"]}
    arns = [get(admin_v3, create(admin_v3))["PortfolioArn"] for _ in range(2)]
    parts = [a.split(":") for a in arns]
    assert all(len(p) == 5 and p[:2] == ["acs", "servicecatalog"] for p in parts), arns
    assert parts[0][2] in regions, (arns, regions)
    assert parts[0][3] and parts[0][3] == parts[1][3], arns
