#!/usr/bin/env python3
"""Merges the parts bench/run wrote into one results file, checks the targets and prints a table.

    bench/report.py PARTS_DIR [--quick 0|1] [--out bench/results.json]
"""
import argparse, datetime, json, os, subprocess

API_ACTIONS = ("GetTask", "ListPortfolios", "ListProductsAsEndUser")


def load(parts, name):
    """A part bench/run wrote, or None when that part did not run (--pg-only, no PostgreSQL)."""
    path = os.path.join(parts, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "free_h": free, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def with_floor(api):
    """Each API row with its share of the floor (the signed /ping at the same concurrency)."""
    floor = {r["concurrency"]: r["rps"] for r in api if r["case"] == "ping"}
    for r in api:
        r["of_floor"] = round(r["rps"] / floor[r["concurrency"]], 3) if r["concurrency"] in floor else None
    return api


def row(rows, case, c):
    return next(r for r in rows if r["case"] == case and r["concurrency"] == c)


def cpu(r, key):
    return r.get(key) or 0


def database_targets(db, api, write, scale, seed, latency, throughput):
    """The targets measured on one database (`db`: "SQLite" or "PostgreSQL")."""
    pg = db == "PostgreSQL"
    targets = [(f"{db}: API {n} throughput of floor at c=64", row(api, n, 64)["of_floor"], ">=", 0.5) for n in API_ACTIONS]
    targets += [(f"{db}: GetTask p99 at c=16 (ms)", row(api, "GetTask", 16)["p99_ms"], "<=", 5)]
    targets += [(f"{db}: {n} p99 at c=64 (ms)", row(api, n, 64)["p99_ms"], "<=", 5) for n in (API_ACTIONS if pg else API_ACTIONS[:1])]
    if pg:
        targets += [(f"{db}: server CPU per {n} at c=64 (us)", row(api, n, 64)["server_cpu_us_per_request"], "<=", 60) for n in API_ACTIONS]
        targets += [(f"{db}: PostgreSQL CPU per {n} at c=64 (us)", row(api, n, 64)["postgres_cpu_us_per_request"], "<=", 60) for n in API_ACTIONS]
        w = row(write, "CreatePortfolio", 16)
        targets += [(f"{db}: server + PostgreSQL CPU per CreatePortfolio at c=16 (us)",
                     round(cpu(w, "server_cpu_us_per_request") + cpu(w, "postgres_cpu_us_per_request"), 1), "<=", 150)]
    else:
        targets += [(f"{db}: server CPU per GetTask at c=64 (us)", row(api, "GetTask", 64)["server_cpu_us_per_request"], "<=", 100)]
        targets += [(f"{db}: server CPU per CreatePortfolio at c=16 (us)", row(write, "CreatePortfolio", 16)["server_cpu_us_per_request"], "<=", 100)]
    if latency:
        targets += [
            (f"{db}: task latency ratio (bare workflow)", latency["ratio"], "<=", 1.3),
            # Faster than running init, plan and apply by hand, since init is reused (issue 21).
            (f"{db}: task latency ratio (bare engine processes)", latency["ratio_engine_commands"], "<=", 0.8),
            (f"{db}: sandbox cost per task (ms)", latency["sandbox_cost_ms"], "<=", 10),
        ]
    if throughput:
        targets += [
            (f"{db}: task throughput ratio (bare workflow x N / workers)", throughput["ratio"], "<=", 1.25),
            (f"{db}: task throughput ratio (engine processes x N / workers)", throughput["ratio_engine_commands"], "<=", 1.25),
            (f"{db}: task throughput ratio (engine processes, workers at a time)", throughput["ratio_bare_parallel"], "<=", 1.1),
        ]
    if scale:
        def worst(case):
            return max(r["p99_ms"] for r in scale if r["case"].startswith(case) and r["concurrency"] == 1)
        n = f"{db}: {seed['tasks']:,} tasks:"
        targets += [
            (f"{n} GetTask p99 at c=1 (ms)", worst("GetTask"), "<=", 2),
            (f"{n} ListTasks p99 at c=1 (ms)", worst("ListTasks"), "<=", 20),
            (f"{n} ListProvisionedProducts by name p99 at c=1 (ms)", worst("ListProvisionedProducts (Account, name)"), "<=", 20),
            (f"{n} ListProvisionedProducts full text p99 at c=1 (ms)", worst("ListProvisionedProducts (Account, full text)"), "<=", 20),
            (f"{n} ListProvisionedProducts pages p99 at c=1 (ms)", worst("ListProvisionedProducts (Account, pages"), "<=", 20),
        ]
    return targets


def print_api(title, rows):
    print(f"\n{title}\n{'case':<28}{'c':>4}{'req/s':>10}{'of floor':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}{'PG us/req':>11}")
    for r in rows:
        of_floor = f"{r['of_floor']:>10.2f}" if r.get("of_floor") is not None else f"{'':>10}"
        print(f"{r['case']:<28}{r['concurrency']:>4}{r['rps']:>10.0f}{of_floor}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
              f"{cpu(r, 'server_cpu_us_per_request'):>12.1f}{cpu(r, 'postgres_cpu_us_per_request'):>11.1f}")


def print_scale(db, seed, scale, size):
    db_size = f", database {size['database_bytes'] / 2**20:.0f} MiB" if size else ""
    analyzed = f", VACUUM (ANALYZE) in {seed['vacuum_analyze_seconds']} s" if seed.get("vacuum_analyze_seconds") is not None else ""
    print(f"\n{db} data scale: {seed['provisioned_products']:,} provisioned products, {seed['tasks']:,} tasks, seeded in {seed['seed_seconds']} s{analyzed}{db_size}"
          f"\n{'case':<46}{'c':>4}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}{'PG us/req':>11}")
    for r in scale:
        print(f"{r['case']:<46}{r['concurrency']:>4}{r['rps']:>9.0f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}"
              f"{cpu(r, 'server_cpu_us_per_request'):>12.1f}{cpu(r, 'postgres_cpu_us_per_request'):>11.1f}")


def print_tasks(db, latency, throughput):
    print(f"\n{db} tasks: latency {latency['launch_to_succeeded_median_s']} s vs bare workflow {latency['bare_terraform_median_s']} s, "
          f"bare engine processes {latency['bare_engine_commands_median_s']} s, "
          f"unsandboxed {latency['unsandboxed_median_s']} s (sandbox {latency['sandbox_cost_ms']} ms per task); "
          f"{throughput['launches']} launches on {throughput['workers']} workers in {throughput['wall_seconds']} s vs ideal {throughput['ideal_seconds']} s "
          f"(engine processes {throughput['ideal_engine_commands_seconds']} s), "
          f"vs engine processes {throughput['workers']} at a time {throughput['bare_parallel_seconds']} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("parts")
    ap.add_argument("--quick", default="0")
    ap.add_argument("--out", default="bench/results.json")
    a = ap.parse_args()
    part = lambda name: load(a.parts, name)  # noqa: E731
    results = {"machine": machine(), "quick": a.quick == "1"}
    targets = []
    for db, prefix in (("SQLite", ""), ("PostgreSQL", "pg_")):
        api = part(prefix + "api")
        if api is None:
            continue
        api = with_floor(api["results"])
        write = part(prefix + "write")["results"]
        seed = part(prefix + "seed")
        scale = part(prefix + "scale_c1")["results"] + part(prefix + "scale_c16")["results"] if seed else None
        latency, throughput = part(prefix + "task_latency"), part(prefix + "task_throughput")
        targets += database_targets(db, api, write, scale, seed, latency, throughput)
        results[prefix + "api"], results[prefix + "write"] = api, write
        results[prefix + "seed"], results[prefix + "scale"] = seed, scale
        results[prefix + "task_latency"], results[prefix + "task_throughput"] = latency, throughput
        print_api(f"{db} API (loopback, V3-signed, keep-alive; floor = the GetTask request signed, sent to /ping)", api + write)
        if seed:
            print_scale(db, seed, scale, part(prefix + "scale_size"))
        if latency and throughput:
            print_tasks(db, latency, throughput)
    pair = part("pg_pair")
    if pair:
        one = pair["one"]["results"][0]["rps"]
        both = sum(node["results"][0]["rps"] for node in pair["both"])
        ratio = round(both / one, 2)
        results["pg_pair"] = {"one_node_rps": one, "two_nodes_rps": both, "ratio": ratio}
        targets += [("PostgreSQL: two nodes' GetTask throughput / one node's, c=64 in all", ratio, ">=", 1.6)]
        print(f"\nPostgreSQL, two nodes on one database: GetTask {both:,.0f} req/s (c=32 on each) vs one node {one:,.0f} (c=64): {ratio}")
    mem_api, memory = part("memory_api"), part("task_memory")
    if mem_api and memory:
        targets += [
            ("idle RSS (MB)", round(mem_api["idle_hwm_kb"] / 1024, 1), "<=", 40),
            ("RSS with 64 tasks in flight (MB)", memory["in_flight_hwm_mb"], "<=", 200),
        ]
        results["memory_api"], results["task_memory"] = mem_api, memory
        results["database_bytes"] = part("scale_size")["database_bytes"]
        print(f"Memory (server VmHWM): idle {mem_api['idle_hwm_kb'] / 1024:.1f} MB, after API load {mem_api['after_api_load_hwm_kb'] / 1024:.1f} MB, "
              f"{memory['tasks']} tasks in flight {memory['in_flight_hwm_mb']} MB (at most {memory['most_terraform_children']} Terraform processes)")
    checks = [{"name": n, "value": v, "target": f"{op} {t}", "met": v is not None and (v >= t if op == ">=" else v <= t)}
              for n, v, op, t in targets]
    results["targets"] = checks
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\n{'target':<80}{'value':>10}  {'goal':<8}")
    for c in checks:
        print(f"{c['name']:<80}{c['value']:>10}  {c['target']:<8}  {'met' if c['met'] else 'MISSED'}")
    print(f"\nwritten to {a.out}")


if __name__ == "__main__":
    main()
