"""Scale-out on PostgreSQL: several `servicecatalog serve` (and `worker`) nodes on one database.

Skipped unless SERVICECATALOG_TEST_POSTGRES names a PostgreSQL server; every test makes its own fresh
database. Nodes share the master key and the administrator key through the environment, run with short
leases (`--lease-seconds 3`) and separate data directories. Everything is awaited by bounded polling;
times (e.g. how soon a task queued on one node starts on another) are measured and printed, never
asserted.

A network blip between a node and PostgreSQL is simulated with a small TCP proxy on loopback that
the test cuts and restores; the shared PostgreSQL server itself is never disturbed.
"""
from __future__ import annotations

import dataclasses
import os
import re
import secrets
import select
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

import sclib
from sclib import PgDatabases, ServerProcess, expect_error, uniq
from test_provisioning import (FILE_TF, HELLO_TF, SLOW_TF, create_portfolio, get_pp, get_task, grant, launch, make_product,
                               needs_provider, needs_terraform, outputs, sandbox_files, task_log, terminate, wait_apply_sleeping,
                               wait_task)

PG_URL = os.environ.get("SERVICECATALOG_TEST_POSTGRES")
pytestmark = pytest.mark.skipif(not PG_URL, reason="SERVICECATALOG_TEST_POSTGRES not set")

LEASE = 3  # seconds, every node
# Bound of every wait for a task: generous for slow CI machines, and many leases long.
DEADLINE = float(os.environ.get("SERVICECATALOG_TEST_TASK_DEADLINE", "120"))
STARTED_RE = re.compile(r"task started.*task_id=(\S+)")


# ----------------------------------------------------------------------------- cluster


class WorkerProcess(ServerProcess):
    """`servicecatalog worker`: no API; ready when its log says the workers run."""

    def start(self, port: int | None = None) -> "WorkerProcess":
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.spawn("worker")
        deadline = time.monotonic() + self.READY_TIMEOUT
        while "worker running" not in self.log_path.read_bytes()[offset:].decode(errors="replace"):
            if self.proc.poll() is not None:
                self.expected_exit = True
                raise RuntimeError(f"worker exited with {self.proc.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop(9)
                raise RuntimeError(f"worker not running within {self.READY_TIMEOUT}s\n{self.log_tail()}")
            time.sleep(0.05)
        return self


class Cluster:
    """Nodes on one fresh database with one master key and one administrator key."""

    def __init__(self, database: str, tmp: Path):
        self.database = database
        self.tmp = tmp
        self.master_key = secrets.token_hex(32)
        self.root_key = ("LTAIcluster" + uniq(), "secret-" + uniq() + uniq())
        self.nodes: list[ServerProcess] = []

    def node(self, *args: str, kind=ServerProcess, start: bool = True, database: str | None = None,
             root_key: bool = True, master_key: str | None = None) -> ServerProcess:
        data_dir = self.tmp / f"node{len(self.nodes)}" / "data"
        srv = kind(data_dir, database=database or self.database,
                   env={"SERVICECATALOG_MASTER_KEY": master_key or self.master_key},
                   root_key=self.root_key if root_key else None,
                   args=["--lease-seconds", str(LEASE), *args])
        self.nodes.append(srv)
        return srv.start() if start else srv

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


@pytest.fixture(scope="module")
def pg():
    dbs = PgDatabases(PG_URL)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def cluster(pg, tmp_path):
    c = Cluster(pg.create(), tmp_path)
    yield c
    c.stop()
    crashed = [n for n in c.nodes if n.died_unexpectedly()]
    assert not crashed, "a node died:\n" + "\n\n".join(n.log_tail() for n in crashed)


def psql(database: str, sql: str) -> str:
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", database, "-c", sql], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()


def started_tasks(node: ServerProcess, since: int = 0) -> set[str]:
    """Ids of the tasks this node's workers started (from its log, after byte `since`)."""
    try:
        text = node.log_path.read_bytes()[since:].decode(errors="replace")
    except OSError:
        return set()
    return set(STARTED_RE.findall(text))


def log_size(node: ServerProcess) -> int:
    return node.log_path.stat().st_size if node.log_path.exists() else 0


def user_on(nodes, info: dict):
    key = (info["AccessKeyId"], info["AccessKeySecret"])
    return [n.caller("v3", key) for n in nodes]

def wait_all(caller, task_ids, deadline: float = DEADLINE, during=None) -> dict[str, dict]:
    """Polls GetTask until every task left InProgress (bounded); `during()` runs between rounds."""
    end = time.monotonic() + deadline
    done: dict[str, dict] = {}
    while True:
        for t in [t for t in task_ids if t not in done]:
            task = get_task(caller, t)
            if task["Status"] != "InProgress":
                done[t] = task
        if len(done) == len(task_ids):
            return done
        if time.monotonic() > end:
            raise AssertionError(f"tasks still InProgress after {deadline}s: {set(task_ids) - set(done)}")
        if during:
            during()
        time.sleep(0.2)


def stored_states(database: str, pp_id: str) -> int:
    return int(psql(database, f"SELECT COUNT(*) FROM terraform_states WHERE provisioned_product_id = '{pp_id}'"))


def under_change(caller) -> list[str]:
    r = caller.call("ListProvisionedProducts", {"AccessLevelFilter": "Account", "PageSize": 100})
    assert r["TotalCount"] <= 100
    return [d["ProvisionedProductId"] for d in r.get("ProvisionedProductDetails") or [] if d["Status"] == "UnderChange"]


# ----------------------------------------------------------------------------- scale-out


@needs_terraform
@needs_provider
def test_two_nodes_share_launches_and_survive_the_loss_of_one(cluster):
    a, b = cluster.node("--workers", "2"), cluster.node("--workers", "2")
    admin_a, admin_b = a.caller("v3"), b.caller("v3")
    user = a.create_user()
    on_a, on_b = user_on([a, b], user)
    hello = make_product(admin_a, HELLO_TF, users=[user])
    slow = make_product(admin_b, SLOW_TF, users=[user])

    # 40 launches, alternately through each node; each awaited through the other node
    launched = [(i, *launch((on_a, on_b)[i % 2], hello, {"owner": f"o{i}"})) for i in range(40)]
    tasks = wait_all(on_b, [t for _, _, t in launched])
    for i, pp_id, task_id in launched:
        assert tasks[task_id]["Status"] == "Succeeded", tasks[task_id]
        assert outputs(tasks[task_id])["owner_size"]["OutputValue"] == f"o{i}/small"
        assert get_pp((on_a, on_b)[(i + 1) % 2], pp_id)["Status"] == "Available"
    ran_a, ran_b = started_tasks(a), started_tasks(b)
    assert not ran_a & ran_b, "a task ran on both nodes"
    assert ran_a | ran_b == set(tasks), "a task started nowhere (or twice)"
    assert ran_a and ran_b, f"one node ran everything: {len(ran_a)} on A, {len(ran_b)} on B"
    print(f"\n40 launches: {len(ran_a)} ran on A, {len(ran_b)} on B")

    # four slow applies fill the four workers (two per node); two more launches wait in the queue
    raw_a = a.caller("raw-v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    slow_tasks = [launch((on_a, on_b)[i % 2], slow, {"duration_ms": "15000", "label": f"s{i}"})[1] for i in range(4)]
    for t in slow_tasks:
        wait_apply_sleeping(raw_a, t)
    on_node_a = started_tasks(a) & set(slow_tasks)
    assert len(on_node_a) == 2, f"expected two slow applies on each node, A runs {on_node_a}"
    queued = [launch(on_a, hello, {"owner": f"q{i}"}) for i in range(2)]
    # the file each apply made before its sleep is in the database's copy of the state while the
    # apply still runs: whichever node fails the task later knows of it
    killed_pps = [get_task(on_a, t)["ProvisionedProductId"] for t in on_node_a]
    end = time.monotonic() + DEADLINE
    while not all(stored_states(cluster.database, pp) for pp in killed_pps):
        assert time.monotonic() < end, "the state of a running apply never reached the database"
        time.sleep(0.2)

    a.kill9()

    # the survivor answers throughout; A's applies fail after the lease, B's and the queue finish
    def survivor_serves():
        assert admin_b.call("ListPortfolios", {"PageSize": 10})["TotalCount"] >= 2
        assert b.caller("raw-v3").send("ListRegions").status_code == 200

    ended = wait_all(on_b, slow_tasks + [t for _, t in queued], during=survivor_serves)
    for t in slow_tasks:
        if t in on_node_a:
            assert ended[t]["Status"] == "Failed", ended[t]
            assert "interrupted" in ended[t]["StatusMessage"], ended[t]
        else:
            assert ended[t]["Status"] == "Succeeded", ended[t]
    for _, t in queued:
        assert ended[t]["Status"] == "Succeeded", ended[t]
    assert under_change(admin_b) == []
    for t in on_node_a:
        pp_id = ended[t]["ProvisionedProductId"]
        assert get_pp(on_b, pp_id)["Status"] == "Error"

    # A comes back and takes its share again: four short applies need all four workers at once
    since = log_size(a)
    a.start()
    on_a = user_on([a], user)[0]
    again = [launch((on_a, on_b)[i % 2], slow, {"duration_ms": "3000", "label": f"r{i}"})[1] for i in range(4)]
    done = wait_all(on_a, again)
    assert all(t["Status"] == "Succeeded" for t in done.values()), done
    assert started_tasks(a, since) & set(again), "the restarted node ran none of the new tasks"
    # the failed products are usable again from either node
    for t in on_node_a:
        pp_id = ended[t]["ProvisionedProductId"]
        assert wait_task(on_b, terminate(on_a, pp_id))["Status"] == "Succeeded"
    assert under_change(a.caller("v3")) == []


@needs_terraform
def test_a_task_queued_on_an_api_only_node_runs_on_another(cluster):
    api = cluster.node("--workers", "0")
    worker = cluster.node("--workers", "1")
    admin = api.caller("v3")
    user = api.create_user()
    caller = user_on([api], user)[0]
    raw = api.caller("raw-v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    hello = make_product(admin, HELLO_TF, users=[user])
    waits = []
    for i in range(5):
        t0 = time.monotonic()
        _, task_id = launch(caller, hello, {"owner": f"n{i}"})
        end = t0 + DEADLINE
        while not task_log(raw, task_id, 0, wait=10)["Chunks"]:  # long poll: returns with the first chunk
            assert time.monotonic() < end, f"task {task_id} never started"
        waits.append(time.monotonic() - t0)
        assert wait_task(caller, task_id)["Status"] == "Succeeded"
        assert task_id in started_tasks(worker) and task_id not in started_tasks(api)
    waits.sort()
    print(f"\nLaunchProduct on the API-only node -> first log chunk from the other node: "
          f"median {waits[len(waits) // 2] * 1000:.0f} ms, max {waits[-1] * 1000:.0f} ms")


def test_catalog_listings_on_one_node_show_a_change_made_on_another_at_once(cluster):
    # each node keeps listing pages in memory under the catalog's change count (store::catalog_cache)
    a, b = cluster.node("--workers", "0"), cluster.node("--workers", "0")
    admin_a, admin_b = a.caller("v3"), b.caller("v3")
    user = a.create_user()
    user_b = user_on([b], user)[0]
    portfolio = create_portfolio(admin_a)
    grant(admin_a, portfolio, user=user)
    time.sleep(0.3)  # grants reach another node's key-and-grant cache within 0.1 s (docs/cluster.md)

    def portfolio_names():
        return {p["PortfolioId"]: p["PortfolioName"] for p in admin_b.call("ListPortfolios", {"PageSize": 100})["PortfolioDetails"]}

    def offered():
        return [p["ProductId"] for p in user_b.call("ListProductsAsEndUser", {"PageSize": 100}).get("ProductSummaries") or []]

    for _ in range(2):  # the second call of each is answered from B's memory
        assert offered() == []
        assert portfolio in portfolio_names()
    product = make_product(admin_a, HELLO_TF, portfolio_id=portfolio)
    assert offered() == [product.product_id]
    admin_a.call("UpdatePortfolio", {"PortfolioId": portfolio, "PortfolioName": "renamed on A", "ProviderName": "conformance"})
    assert portfolio_names()[portfolio] == "renamed on A"
    admin_a.call("DisassociateProductFromPortfolio", {"PortfolioId": portfolio, "ProductId": product.product_id})
    assert offered() == []


def test_a_request_replayed_to_another_node_is_refused(cluster):
    a, b = cluster.node("--workers", "0"), cluster.node("--workers", "0")
    for flavor in ("raw-v3", "raw-v1"):
        for first, second in ((a, b), (b, a)):
            req = first.caller(flavor).build("ListPortfolios", {"PageSize": 10})
            assert req.send().status_code == 200
            req.endpoint = second.endpoint  # the Host header stays the signed one
            resp = req.send()
            assert (resp.status_code, resp.json().get("Code")) == (400, "SignatureNonceUsed"), resp.text


def test_a_request_replayed_to_both_nodes_at_once_is_answered_once(cluster):
    """Copies of signed requests sent to two nodes at the same moment, alongside fresh requests that
    fill the nodes' nonce batches: every signed request is answered once, whichever batches its
    copies joined, and refused everywhere else."""
    a, b = cluster.node("--workers", "0"), cluster.node("--workers", "0")
    replayed = [a.caller("raw-v3").build("ListPortfolios", {"PageSize": 10}) for _ in range(10)]
    fresh = [(node, node.caller("raw-v3").build("ListPortfolios", {"PageSize": 10})) for node in (a, b) for _ in range(10)]
    sends = []
    for req in replayed:
        # the Host header stays the signed one
        sends += [(req, dataclasses.replace(req, endpoint=node.endpoint)) for node in (a, b, a, b)]
    sends += [(req, req) for _, req in fresh]
    answers = {}
    lock = threading.Lock()

    def send(pair):
        signed, copy = pair
        with requests.Session() as session:
            resp = copy.send(session)
        with lock:
            answers.setdefault(id(signed), []).append((resp.status_code, resp.json().get("Code")))

    threads = [threading.Thread(target=send, args=(pair,)) for pair in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for req in replayed:
        got = sorted(answers[id(req)], key=lambda x: x[0])
        assert got == [(200, None)] + [(400, "SignatureNonceUsed")] * 3, got
    for _, req in fresh:
        assert answers[id(req)] == [(200, None)]


@needs_terraform
@needs_provider
def test_a_worker_only_node_runs_the_tasks(cluster):
    api = cluster.node("--workers", "0")
    worker = cluster.node("--workers", "1", kind=WorkerProcess)
    admin = api.caller("v3")
    user = api.create_user()
    caller = user_on([api], user)[0]
    files = make_product(admin, FILE_TF, users=[user])
    pp_id, task_id = launch(caller, files, {"dir": "w", "content": "from the worker node"})
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    assert task_id in started_tasks(worker)
    assert sandbox_files(worker, pp_id) == {"w/page.txt": "from the worker node"}
    assert sandbox_files(api, pp_id) == {}
    # a worker node refuses to run without workers
    res = subprocess.run([str(worker.binary), "worker", "--workers", "0", *worker.storage_args()],
                         env=worker.env(), capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "at least one worker" in res.stderr + res.stdout


def test_nodes_starting_together_migrate_once_and_agree_on_one_root_key(cluster):
    nodes = [cluster.node("--workers", "1", start=False, root_key=False) for _ in range(3)]
    errors = []

    def start(n):
        try:
            n.start()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(ServerProcess.READY_TIMEOUT + 30)
    assert not errors, errors
    versions = psql(cluster.database, "SELECT version FROM schema_migrations ORDER BY version").split()
    assert versions and len(versions) == len(set(versions))
    written = [n.credentials_file for n in nodes if n.credentials_file.exists()]
    assert len(written) == 1, f"{len(written)} nodes wrote an administrator key"
    key = nodes[0].admin_key() if nodes[0].credentials_file.exists() else None
    key = key or next(n for n in nodes if n.credentials_file.exists()).admin_key()
    for n in nodes:
        assert sclib.make_caller("v3", n.endpoint, *key).call("ListRegions")["Regions"]
    # a restart generates nothing new
    for n in nodes:
        n.restart()
    assert [n.credentials_file for n in nodes if n.credentials_file.exists()] == written
    assert sclib.make_caller("v3", nodes[2].endpoint, *key).call("ListRegions")["Regions"]


def test_a_node_with_another_master_key_refuses_to_start(cluster):
    cluster.node("--workers", "0")
    other = cluster.node("--workers", "0", start=False, master_key=secrets.token_hex(32))
    with pytest.raises(RuntimeError, match="master key"):
        other.start()


# ----------------------------------------------------------------------------- database outage


class TcpProxy:
    """A loopback TCP proxy to PostgreSQL that the test cuts (every connection closed, new ones
    refused) and restores. Threads are daemons; everything stops with `close()`."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = sclib.free_port()
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.listener: socket.socket | None = None
        self.closed = False
        self.restore()

    def restore(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.settimeout(0.2)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self.listener is listener and not self.closed:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self.closed:
                ready, _, _ = select.select([a, b], [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):  # closed by cut()
            return
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        listener, self.listener = self.listener, None
        if listener:
            listener.close()
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.cut()
        self.closed = True


@pytest.fixture
def proxy():
    u = urlsplit(PG_URL)
    p = TcpProxy((u.hostname or "127.0.0.1", u.port or 5432))
    yield p
    p.close()


def through(proxy: TcpProxy, database: str) -> str:
    u = urlsplit(database)
    netloc = (u.netloc.rsplit("@", 1)[0] + "@" if "@" in u.netloc else "") + f"127.0.0.1:{proxy.port}"
    return urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))


@needs_terraform
@needs_provider
def test_a_database_blip_answers_503_and_loses_no_task(cluster, proxy):
    node = cluster.node("--workers", "2", database=through(proxy, cluster.database))
    admin = node.caller("v3")
    raw = node.caller("raw-v3")
    user = node.create_user()
    caller = user_on([node], user)[0]
    hello = make_product(admin, HELLO_TF, users=[user])
    slow = make_product(admin, SLOW_TF, users=[user])
    # one apply in flight and one launch queued behind the two workers when the link goes down
    running = [launch(caller, slow, {"duration_ms": "6000", "label": f"b{i}"})[1] for i in range(2)]
    user_raw = node.caller("raw-v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    for t in running:
        wait_apply_sleeping(user_raw, t)
    queued_pp, queued = launch(caller, hello, {"owner": "before the blip"})

    proxy.cut()
    answers, timings = [], []
    calls = ((raw, "ListPortfolios", {"PageSize": 10}), (user_raw, "GetTask", {"TaskId": queued}),
             (user_raw, "LaunchProduct", {"ProductId": hello.product_id, "ProductVersionId": hello.version_id,
                                          "ProvisionedProductName": uniq("blip-"), "StackRegionId": "cn-hangzhou",
                                          "Parameters": [{"ParameterKey": "owner", "ParameterValue": "during"}]}))
    for who, action, params in calls:
        t0 = time.monotonic()
        resp = who.build(action, params).send(timeout=60)  # the pool's acquire timeout is far below
        timings.append(time.monotonic() - t0)
        answers.append((action, resp.status_code, resp.json().get("Code")))
    health = sclib.acs_sign._session().get(f"http://{node.endpoint}/healthz", timeout=60)
    print(f"\nduring the blip: {answers}, seconds {[round(t, 2) for t in timings]}, healthz {health.status_code}")
    for action, status, code in answers:
        assert (status, code) == (503, "ServiceUnavailable"), (action, status, code)
    assert health.status_code == 503
    assert node.alive()

    proxy.restore()
    # the node recovers by itself: bounded polling until a signed call answers again
    end = time.monotonic() + DEADLINE
    while raw.build("ListRegions").send(timeout=60).status_code != 200:
        assert time.monotonic() < end, "the node did not recover after the database came back"
        time.sleep(0.2)
    ended = wait_all(caller, running + [queued])
    for t in running:
        assert ended[t]["Status"] in ("Succeeded", "Failed"), ended[t]
        if ended[t]["Status"] == "Failed":
            assert ended[t]["StatusMessage"], ended[t]
    assert ended[queued]["Status"] == "Succeeded", ended[queued]
    print("tasks in flight during the blip:", [(ended[t]["Status"], ended[t].get("StatusMessage")) for t in running])
    # whatever their outcome, the file each apply made is in the stored state (saved once the database is back)
    for t in running:
        assert stored_states(cluster.database, ended[t]["ProvisionedProductId"]), f"the state of {t} was lost"
    # the launch refused during the blip left nothing behind; new work runs
    names = [d["ProvisionedProductName"] for d in
             admin.call("ListProvisionedProducts", {"AccessLevelFilter": "Account", "PageSize": 100})
             .get("ProvisionedProductDetails") or []]
    assert not [n for n in names if n.startswith("blip-")], names
    _, after = launch(caller, hello, {"owner": "after the blip"})
    assert wait_task(caller, after)["Status"] == "Succeeded"
    assert under_change(admin) == []


@needs_terraform
@needs_provider
def test_two_nodes_run_each_scheduled_drift_check_once_and_one_takes_over_from_a_dead_one(cluster):
    a = cluster.node("--workers", "1", "--drift-min-interval-seconds", "1")
    b = cluster.node("--workers", "1", "--drift-min-interval-seconds", "1")
    admin = a.caller("raw-v3")
    user = a.create_user()
    on_a, on_b = user_on([a, b], user)
    # No resources: a sandbox file lives in one node's data directory, which the other node's checks
    # would find missing (a cloud resource is the same from every node).
    product = make_product(a.caller("v3"), HELLO_TF, users=[user])
    pp_id, launched = launch(on_a, product, {"owner": "drift"})
    assert wait_task(on_b, launched)["Status"] == "Succeeded"
    interval_ms = 6000
    admin.call("CreateConstraint", {"PortfolioId": product.portfolio_id, "ProductId": product.product_id,
                                    "ConstraintType": "Drift", "Config": '{"IntervalMinutes": 0.1}'})

    def check_times() -> list[int]:
        out = psql(cluster.database, "SELECT created_at FROM tasks WHERE task_type = 'DetectProvisionedProductDrift' "
                                     f"AND provisioned_product_id = '{pp_id}' ORDER BY created_at")
        return [int(t) for t in out.split()] if out else []

    def wait_checks(count: int) -> list[int]:
        end = time.monotonic() + DEADLINE + count * interval_ms / 1000
        while len(check_times()) < count:
            assert time.monotonic() < end, f"fewer than {count} scheduled checks: {check_times()}"
            time.sleep(0.5)
        return check_times()

    wait_checks(2)
    a.kill9()  # whatever A held (the job, a running check) is taken over after its lease
    times = wait_checks(5)
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    # One check per due time: consecutive checks are an interval apart (jitter adds up to a tenth),
    # never two for one due time.
    assert min(gaps) >= interval_ms - 1000, f"two checks for one due time: gaps {gaps} ms"
    statuses = psql(cluster.database, f"SELECT drift_status FROM drift_checks WHERE provisioned_product_id = '{pp_id}' "
                                      "AND checked_at > 0 ORDER BY checked_at").split()
    assert statuses and statuses[-1] == "InSync", statuses
    actors = psql(cluster.database, "SELECT COUNT(*) FROM audit_events WHERE principal_name = 'system' "
                                    f"AND action = 'DetectProvisionedProductDrift' AND resource_id = '{pp_id}'")
    assert int(actors) == len(check_times()), "each scheduled check is audited once, by the system"
    print(f"\nscheduled drift checks {interval_ms} ms apart: gaps {gaps} ms")
