#!/usr/bin/env python3
"""Server memory with many tasks in flight: a server with `--workers N` runs N launches of a slow
product (one `sandbox_sleep` of the bundled provider) at once; reports the server process's peak
RSS (VmHWM; Terraform and provider processes are not counted) idle and after the tasks, and how
many Terraform processes ran at once. Starts its own server.

    .venv/bin/python bench/task_memory.py [--tasks 64] [--sleep-ms 30000]
"""
import argparse, json, os, shutil, tempfile, time

from task_latency import start_server  # also puts the conformance helpers on the path
from sclib import SdkCaller  # noqa: E402

SLOW_TF = """terraform {
  required_providers {
    sandbox = { source = "servicecatalog.local/demo/sandbox", version = "0.1.0" }
  }
}

resource "sandbox_sleep" "slow" {
  duration_ms = %d
}
"""


def status_kb(pid, field):
    """A `VmXXX` line of /proc/PID/status, in kB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def children(pid):
    """Processes whose parent is `pid` (the Terraform commands of running tasks)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    count += int(f.read().rsplit(")", 1)[1].split()[1]) == pid
            except OSError:
                pass
    return count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=64)
    ap.add_argument("--sleep-ms", type=int, default=30000)
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for the last task")
    a = ap.parse_args()
    data = tempfile.mkdtemp()
    proc, port = start_server(data, "--workers", str(a.tasks))
    try:
        key = json.load(open(os.path.join(data, "root-credentials.json")))
        admin = SdkCaller(f"127.0.0.1:{port}", key["AccessKeyId"], key["AccessKeySecret"])
        idle_kb = status_kb(proc.pid, "VmHWM")
        body = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.0",
                "Workspace": {"main.tf": SLOW_TF % a.sleep_ms}}
        url = admin.call("CreateTemplate", {"TemplateType": "RosTerraformTemplate", "TemplateBody": json.dumps(body)})["TemplateUrl"]
        product = admin.call("CreateProduct", {
            "ProductName": "Slow", "ProviderName": "bench", "ProductType": "Ros", "TemplateType": "RosTerraformTemplate",
            "ProductVersionParameters": {"ProductVersionName": "v1", "TemplateUrl": url, "TemplateType": "RosTerraformTemplate"}})
        portfolio = admin.call("ListPortfolios", {"Filters": [{"Key": "PortfolioName", "Value": "Sample catalog"}]})["PortfolioDetails"][0]["PortfolioId"]
        admin.call("AssociateProductWithPortfolio", {"ProductId": product["ProductId"], "PortfolioId": portfolio})
        pending = set()
        for i in range(a.tasks):
            pending.add(admin.call("LaunchProduct", {
                "ProductId": product["ProductId"], "ProductVersionId": product["ProductVersionId"],
                "ProvisionedProductName": f"slow-{i}", "StackRegionId": "cn-hangzhou"})["ProvisionedProductId"])
        most_children, rss_max_kb, failed = 0, 0, []
        deadline = time.time() + a.timeout
        while pending and time.time() < deadline:
            time.sleep(0.5)
            most_children = max(most_children, children(proc.pid))
            rss_max_kb = max(rss_max_kb, status_kb(proc.pid, "VmRSS"))
            for page in range(1, 1 + (a.tasks + 99) // 100):
                for d in admin.call("ListProvisionedProducts", {"PageSize": 100, "PageNumber": page}).get("ProvisionedProductDetails", []):
                    if d["ProvisionedProductId"] in pending and d["Status"] != "UnderChange":
                        pending.discard(d["ProvisionedProductId"])
                        if d["Status"] != "Available":
                            failed.append(d.get("StatusMessage"))
        if pending or failed:
            raise SystemExit(f"{len(pending)} tasks unfinished, {len(failed)} failed: {failed[:1]}")
        peak_kb = status_kb(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    result = {"tasks": a.tasks, "workers": a.tasks, "idle_hwm_mb": round(idle_kb / 1024, 1),
              "in_flight_hwm_mb": round(peak_kb / 1024, 1), "sampled_rss_max_mb": round(rss_max_kb / 1024, 1),
              "most_terraform_children": most_children}
    print(f"server VmHWM idle {idle_kb / 1024:.1f} MB, with {a.tasks} tasks in flight {peak_kb / 1024:.1f} MB "
          f"(at most {most_children} Terraform processes at once)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
