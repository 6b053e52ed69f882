#!/usr/bin/env python3
"""Cluster benchmark on PostgreSQL (not a test: it prints figures and writes JSON, asserts nothing).

1. Throughput: launches per minute of the sample "Hello outputs" with 1 node, then with 2 nodes on one
   fresh database (same master key and administrator key, launches sent alternately to each node), and
   the ratio 2-node / 1-node. Every node has the same worker count (default: the number of cores), and
   all nodes share this machine's cores: on a small machine Terraform is CPU-bound and the ratio says
   how much the second node costs rather than how much it adds.
2. Cross-node pickup: node A with `--workers 0` takes LaunchProduct, idle node B (one worker) runs the
   task. Median of N of (a) the time from the task's row being written (`tasks.created_at`) to B's
   "task started" log line (the claim: LISTEN/NOTIFY wake-up + SKIP LOCKED claim), and (b) the time the
   client sees from calling LaunchProduct on A to the first log chunk through GetTaskLog on A (which adds
   `terraform version` and the log flush interval).

Loopback only; every wait is bounded. Needs `psql` and a PostgreSQL URL whose user may create databases:

    .venv/bin/python bench/cluster.py [--postgres postgres://postgres@127.0.0.1:5432/test]
        [--launches 60] [--workers N] [--pickups 9] [--out bench/cluster.json]
"""
import argparse, datetime, json, os, re, secrets, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "conformance"))
import sclib  # noqa: E402
from sclib import PgDatabases, ServerProcess, uniq  # noqa: E402

sclib.unset_proxies()
PRODUCT = "Hello outputs"


class Cluster:
    def __init__(self, pg: PgDatabases, tmp: Path, workers: int):
        self.database = pg.create()
        self.tmp, self.workers = tmp, workers
        self.env = {"SERVICECATALOG_MASTER_KEY": secrets.token_hex(32)}
        self.root_key = ("LTAIbench" + uniq(), "secret-" + uniq() + uniq())
        self.nodes: list[ServerProcess] = []

    def node(self, *args: str, workers: int | None = None) -> ServerProcess:
        data = self.tmp / uniq("node-") / "data"
        w = self.workers if workers is None else workers
        srv = ServerProcess(data, database=self.database, env=self.env, root_key=self.root_key,
                            args=["--log-json", "--workers", str(w), *args])
        self.nodes.append(srv)
        return srv.start()

    def stop(self):
        for n in self.nodes:
            n.stop()


def sample(caller) -> tuple[str, str]:
    summaries = caller.call("ListProductsAsEndUser", {"PageSize": 100})["ProductSummaries"]
    product_id = next(p["ProductId"] for p in summaries if p["ProductName"] == PRODUCT)
    versions = caller.call("ListProductVersions", {"ProductId": product_id})["ProductVersionDetails"]
    return product_id, versions[0]["ProductVersionId"]


def launch(caller, product, name) -> str:
    return caller.call("LaunchProduct", {"ProductId": product[0], "ProductVersionId": product[1],
                                         "ProvisionedProductName": name, "StackRegionId": "cn-hangzhou"}
                       )["ProvisionedProductId"]


def started(node: ServerProcess) -> dict[str, float]:
    """task id -> epoch seconds of this node's "task started" log line (JSON log)."""
    out = {}
    for line in node.log_path.read_text(errors="replace").splitlines():
        if '"task started"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        fields = entry.get("fields", entry)
        ts = entry.get("timestamp", "")
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", ts)
        if not m or "task_id" not in fields:
            continue
        base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
        out[fields["task_id"]] = base.timestamp() + float(m.group(2) or 0)
    return out


def throughput(pg, tmp, n_nodes, launches, workers, timeout) -> dict:
    c = Cluster(pg, tmp, workers)
    try:
        nodes = [c.node("--sample-catalog")] + [c.node() for _ in range(n_nodes - 1)]
        callers = [n.caller("v3") for n in nodes]
        product = sample(callers[0])
        launch(callers[0], product, uniq("warm-"))  # first run on a fresh node: provider mirror, caches
        time.sleep(2)
        t0 = time.perf_counter()
        pending = {launch(callers[i % n_nodes], product, f"tp-{i}-{uniq()}") for i in range(launches)}
        queued = time.perf_counter() - t0
        failed, last, deadline = [], t0, t0 + timeout
        while pending and time.perf_counter() < deadline:  # bounded
            time.sleep(0.1)
            page = 1
            while True:
                body = callers[0].call("ListProvisionedProducts", {"AccessLevelFilter": "Account", "PageSize": 100,
                                                                   "PageNumber": page})
                details = body.get("ProvisionedProductDetails") or []
                for d in details:
                    if d["ProvisionedProductId"] in pending and d["Status"] != "UnderChange":
                        pending.discard(d["ProvisionedProductId"])
                        last = time.perf_counter()
                        if d["Status"] != "Available":
                            failed.append(d.get("StatusMessage"))
                if page * 100 >= body["TotalCount"] or not details:
                    break
                page += 1
        if pending or failed:
            raise SystemExit(f"{len(pending)} launches unfinished, {len(failed)} failed: {failed[:1]}")
        wall = last - t0
        per_node = [len(started(n)) for n in nodes]
        return {"nodes": n_nodes, "workers_per_node": workers, "launches": launches, "queue_seconds": round(queued, 3),
                "wall_seconds": round(wall, 3), "launches_per_minute": round(launches / wall * 60, 1),
                "tasks_started_per_node": per_node}
    finally:
        c.stop()


def pickup(pg, tmp, runs, timeout) -> dict:
    c = Cluster(pg, tmp, 1)
    try:
        api = c.node("--sample-catalog", workers=0)
        worker = c.node(workers=1)
        admin = api.caller("v3")
        raw = api.caller("raw-v3")
        product = sample(admin)
        first_chunk, tasks = [], []
        for i in range(runs + 1):  # the first is a warm-up
            t0 = time.perf_counter()
            pp = launch(admin, product, f"pickup-{i}-{uniq()}")
            task_id = admin.call("GetProvisionedProduct", {"ProvisionedProductId": pp})["ProvisionedProductDetail"]["LastTaskId"]
            end = t0 + timeout
            while not raw.call("GetTaskLog", {"TaskId": task_id, "AfterSeq": 0, "WaitSeconds": 10})["Chunks"]:
                if time.perf_counter() > end:
                    raise SystemExit(f"task {task_id} never started")
            if i:
                first_chunk.append(time.perf_counter() - t0)
                tasks.append(task_id)
            while admin.call("GetTask", {"TaskId": task_id})["TaskDetail"]["Status"] == "InProgress":
                if time.perf_counter() > end:
                    raise SystemExit(f"task {task_id} never ended")
                time.sleep(0.05)
        ids = ",".join(f"'{t}'" for t in tasks)
        rows = subprocess.run(["psql", "-X", "-At", "-F", " ", c.database, "-c",
                               f"SELECT task_id, created_at FROM tasks WHERE task_id IN ({ids})"],
                              check=True, capture_output=True, text=True, timeout=60).stdout.split("\n")
        created = {r.split()[0]: int(r.split()[1]) / 1000 for r in rows if r.strip()}
        claimed = started(worker)
        assert not started(api), "the API-only node ran a task"
        claim = [claimed[t] - created[t] for t in tasks]
        return {"runs": runs, "claim_median_ms": round(statistics.median(claim) * 1000, 1),
                "claim_max_ms": round(max(claim) * 1000, 1),
                "first_chunk_median_ms": round(statistics.median(first_chunk) * 1000, 1),
                "first_chunk_max_ms": round(max(first_chunk) * 1000, 1)}
    finally:
        c.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--postgres", default=os.environ.get("SERVICECATALOG_TEST_POSTGRES",
                                                         "postgres://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--launches", type=int, default=60)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="workers per node")
    ap.add_argument("--pickups", type=int, default=9)
    ap.add_argument("--timeout", type=float, default=600, help="bound of every wait, seconds")
    ap.add_argument("--out", default=str(ROOT / "bench" / "cluster.json"))
    a = ap.parse_args()
    pg = PgDatabases(a.postgres)
    tmp = Path(tempfile.mkdtemp(prefix="sc-cluster-bench-"))
    try:
        one = throughput(pg, tmp, 1, a.launches, a.workers, a.timeout)
        print(f"1 node : {one['launches']} launches in {one['wall_seconds']:.2f} s = {one['launches_per_minute']} /min "
              f"({a.workers} workers)", flush=True)
        two = throughput(pg, tmp, 2, a.launches, a.workers, a.timeout)
        print(f"2 nodes: {two['launches']} launches in {two['wall_seconds']:.2f} s = {two['launches_per_minute']} /min "
              f"({a.workers} workers each; tasks started per node {two['tasks_started_per_node']})", flush=True)
        ratio = round(two["launches_per_minute"] / one["launches_per_minute"], 3)
        print(f"ratio 2 nodes / 1 node: {ratio} (machine: {os.cpu_count()} cores shared by every node)", flush=True)
        p = pickup(pg, tmp, a.pickups, a.timeout)
        print(f"LaunchProduct on an API-only node -> task claimed on another node: median {p['claim_median_ms']} ms "
              f"(max {p['claim_max_ms']}); -> first log chunk seen by the client: median {p['first_chunk_median_ms']} ms "
              f"(max {p['first_chunk_max_ms']}), n={p['runs']}", flush=True)
    finally:
        pg.drop_all()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    result = {"cores": os.cpu_count(), "one_node": one, "two_nodes": two, "ratio": ratio, "pickup": p}
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
