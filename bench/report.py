#!/usr/bin/env python3
"""Merges the parts bench/run wrote into one results file, checks the targets and prints a table.

    bench/report.py PARTS_DIR [--quick 0|1] [--out bench/results.json]
"""
import argparse, datetime, json, os, subprocess

API_ACTIONS = ("GetTask", "ListPortfolios", "ListProductsAsEndUser")


def load(parts, name):
    with open(os.path.join(parts, name + ".json")) as f:
        return json.load(f)


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "free_h": free, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("parts")
    ap.add_argument("--quick", default="0")
    ap.add_argument("--out", default="bench/results.json")
    a = ap.parse_args()
    api = load(a.parts, "api")["results"]
    scale = load(a.parts, "scale_c1")["results"] + load(a.parts, "scale_c16")["results"]
    mem_api, seed, size = load(a.parts, "memory_api"), load(a.parts, "seed"), load(a.parts, "scale_size")
    latency, throughput, memory = load(a.parts, "task_latency"), load(a.parts, "task_throughput"), load(a.parts, "task_memory")
    floor = {r["concurrency"]: r["rps"] for r in api if r["case"] == "ping"}
    for r in api:
        r["of_floor"] = round(r["rps"] / floor[r["concurrency"]], 3)

    def api_at(case, c):
        return next(r for r in api if r["case"] == case and r["concurrency"] == c)

    def worst(case, key):
        return max(r[key] for r in scale if r["case"].startswith(case) and r["concurrency"] == 1)

    targets = [("API " + n + " throughput of floor at c=64", api_at(n, 64)["of_floor"], ">=", 0.5) for n in API_ACTIONS]
    targets += [
        ("GetTask p99 at c=16 (ms)", api_at("GetTask", 16)["p99_ms"], "<=", 5),
        ("GetTask p99 at c=64 (ms)", api_at("GetTask", 64)["p99_ms"], "<=", 5),
        ("server CPU per GetTask at c=64 (us)", api_at("GetTask", 64)["server_cpu_us_per_request"], "<=", 100),
        ("task latency ratio (bare workflow)", latency["ratio"], "<=", 1.3),
        ("task latency ratio (bare engine processes)", latency["ratio_engine_commands"], "<=", 1.3),
        ("sandbox cost per task (ms)", latency["sandbox_cost_ms"], "<=", 10),
        ("task throughput ratio (bare workflow x N / workers)", throughput["ratio"], "<=", 1.25),
        ("task throughput ratio (engine processes x N / workers)", throughput["ratio_engine_commands"], "<=", 1.25),
        ("task throughput ratio (engine processes, workers at a time)", throughput["ratio_bare_parallel"], "<=", 1.25),
        (f"{seed['tasks']:,} tasks: GetTask p99 at c=1 (ms)", worst("GetTask", "p99_ms"), "<=", 2),
        (f"{seed['tasks']:,} tasks: ListTasks p99 at c=1 (ms)", worst("ListTasks", "p99_ms"), "<=", 20),
        (f"{seed['tasks']:,} tasks: ListProvisionedProducts by name p99 at c=1 (ms)", worst("ListProvisionedProducts (Account, name)", "p99_ms"), "<=", 20),
        (f"{seed['tasks']:,} tasks: ListProvisionedProducts full text p99 at c=1 (ms)", worst("ListProvisionedProducts (Account, full text)", "p99_ms"), "<=", 20),
        (f"{seed['tasks']:,} tasks: ListProvisionedProducts pages p99 at c=1 (ms)", worst("ListProvisionedProducts (Account, pages", "p99_ms"), "<=", 20),
        ("idle RSS (MB)", round(mem_api["idle_hwm_kb"] / 1024, 1), "<=", 40),
        ("RSS with 64 tasks in flight (MB)", memory["in_flight_hwm_mb"], "<=", 200),
    ]
    checks = [{"name": n, "value": v, "target": f"{op} {t}", "met": v is not None and (v >= t if op == ">=" else v <= t)}
              for n, v, op, t in targets]
    results = {"machine": machine(), "quick": a.quick == "1", "api": api, "memory_api": mem_api, "seed": seed,
               "scale": scale, "database_bytes": size["database_bytes"], "task_latency": latency,
               "task_throughput": throughput, "task_memory": memory, "targets": checks}
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2)

    print(f"\nAPI (loopback, V3-signed, keep-alive; floor = the GetTask request signed, sent to /ping)\n{'case':<28}{'c':>4}{'req/s':>10}{'of floor':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}")
    for r in api:
        print(f"{r['case']:<28}{r['concurrency']:>4}{r['rps']:>10.0f}{r['of_floor']:>10.2f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['server_cpu_us_per_request'] or 0:>12.1f}")
    print(f"\nData scale: {seed['provisioned_products']:,} provisioned products, {seed['tasks']:,} tasks, seeded in {seed['seed_seconds']} s, "
          f"database {size['database_bytes'] / 2**20:.0f} MiB\n{'case':<46}{'c':>4}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}")
    for r in scale:
        print(f"{r['case']:<46}{r['concurrency']:>4}{r['rps']:>9.0f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['server_cpu_us_per_request'] or 0:>12.1f}")
    print(f"\nTasks: latency {latency['launch_to_succeeded_median_s']} s vs bare workflow {latency['bare_terraform_median_s']} s, "
          f"bare engine processes {latency['bare_engine_commands_median_s']} s, "
          f"unsandboxed {latency['unsandboxed_median_s']} s (sandbox {latency['sandbox_cost_ms']} ms per task); "
          f"{throughput['launches']} launches on {throughput['workers']} workers in {throughput['wall_seconds']} s vs ideal {throughput['ideal_seconds']} s "
          f"(engine processes {throughput['ideal_engine_commands_seconds']} s), "
          f"vs engine processes {throughput['workers']} at a time {throughput['bare_parallel_seconds']} s")
    print(f"Memory (server VmHWM): idle {mem_api['idle_hwm_kb'] / 1024:.1f} MB, after API load {mem_api['after_api_load_hwm_kb'] / 1024:.1f} MB, "
          f"{memory['tasks']} tasks in flight {memory['in_flight_hwm_mb']} MB (at most {memory['most_terraform_children']} Terraform processes)")
    print(f"\n{'target':<66}{'value':>10}  {'goal':<8}")
    for c in checks:
        print(f"{c['name']:<66}{c['value']:>10}  {c['target']:<8}  {'met' if c['met'] else 'MISSED'}")
    print(f"\nwritten to {a.out}")


if __name__ == "__main__":
    main()
