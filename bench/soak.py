#!/usr/bin/env python3
"""Soak: mixed API calls and launches for a bounded time against one server with a rate limit in
force, loopback only. Counts answers by status and code, checks that no 5xx was answered and that
every launch ended (none lost, none stuck UnderChange), and samples the server's RSS to show
whether memory stays flat (growth over the first and the second half of the run).

    .venv/bin/python bench/soak.py [--seconds 180] [--threads 6] [--rate 30] [--burst 60]
"""
import argparse, collections, json, os, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from task_latency import client, launch, sample_version, start_server  # noqa: E402
from task_memory import status_kb  # noqa: E402
from alibabacloud_servicecatalog20210901 import models as m  # noqa: E402
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--rate", type=int, default=30)
    ap.add_argument("--burst", type=int, default=60)
    a = ap.parse_args()
    data = tempfile.mkdtemp()
    proc, port = start_server(data, "--rate-limit", str(a.rate), "--rate-burst", str(a.burst))
    outcomes = collections.Counter()
    launched, lock = [], threading.Lock()
    stop_at = time.time() + a.seconds
    try:
        admin = client(data, port)
        product_id, version_id = sample_version(admin, "Hello outputs")

        def worker(n):
            c = client(data, port)
            i = 0
            while time.time() < stop_at:
                i += 1
                try:
                    if i % 25 == 0:
                        pp = launch(c, product_id, version_id, f"soak-{n}-{i}")
                        with lock:
                            launched.append(pp)
                    elif i % 5 == 0:
                        c.create_portfolio(m.CreatePortfolioRequest(portfolio_name=f"soak-{n}-{i}", provider_name="soak"))
                    elif i % 2 == 0:
                        c.list_portfolios(m.ListPortfoliosRequest(page_size=20))
                    else:
                        c.list_products_as_end_user(m.ListProductsAsEndUserRequest())
                    outcomes["200"] += 1
                except AlibabaCloudException as e:
                    outcomes[f"{e.status_code} {e.code}"] += 1
                    if getattr(e, "retry_after", None):
                        time.sleep(min(float(e.retry_after), 1.0))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(a.threads)]
        rss = []
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            rss.append((time.time(), status_kb(proc.pid, "VmRSS")))
            time.sleep(1)
        for t in threads:
            t.join()
        # every launch must end: Available (or Error with a message), never UnderChange, none lost
        deadline = time.time() + 120
        ended = collections.Counter()
        for pp in launched:
            while True:
                try:
                    d = admin.get_provisioned_product(m.GetProvisionedProductRequest(provisioned_product_id=pp)).body.provisioned_product_detail
                except AlibabaCloudException as e:  # the rate limit applies to this check too
                    time.sleep(min(float(getattr(e, "retry_after", None) or 1), 1.0))
                    continue
                if d.status != "UnderChange" or time.time() > deadline:
                    ended[d.status] += 1
                    break
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait()
    half = len(rss) // 2
    first = (rss[half][1] - rss[0][1]) / 1024 if half else 0
    second = (rss[-1][1] - rss[half][1]) / 1024 if half else 0
    server_errors = sum(n for k, n in outcomes.items() if k.startswith("5"))
    result = {"seconds": a.seconds, "threads": a.threads, "rate_limit": a.rate, "burst": a.burst,
              "answers": dict(outcomes), "server_errors": server_errors, "launches": len(launched),
              "launches_ended": dict(ended), "rss_start_mb": round(rss[0][1] / 1024, 1), "rss_end_mb": round(rss[-1][1] / 1024, 1),
              "rss_growth_first_half_mb": round(first, 1), "rss_growth_second_half_mb": round(second, 1)}
    for k, v in result.items():
        print(f"{k:<28}{v}")
    print(json.dumps(result))
    if server_errors or ended.get("UnderChange") or sum(ended.values()) != len(launched):
        raise SystemExit("soak failed: 5xx answers or launches that did not end")


if __name__ == "__main__":
    main()
