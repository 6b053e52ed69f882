"""Nothing lost under faults: a node paused past its lease (alone, and with its Terraform), database
backends terminated during launches, a node with a skewed clock, and a full disk.

The cluster scenarios need PostgreSQL (SERVICECATALOG_TEST_POSTGRES) and skip without it; the full
disk needs a tmpfs mount (root) and skips with a message where mounting is refused. Every wait is
bounded polling; each test asserts what the service keeps: the task outcomes, the provisioned
product, the stored Terraform state (versions and serials) and what a later terminate removes.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import sclib
from sclib import ServerProcess, uniq
from test_cluster import DEADLINE, Cluster, psql, stored_states, user_on
from test_provisioning import (SANDBOX_HEADER, HELLO_TF, get_pp, get_task, launch, make_product, needs_provider,
                               needs_terraform, outputs, sandbox_files, terminate, update, wait_apply_sleeping,
                               wait_pp_gone, wait_task)

PG_URL = os.environ.get("SERVICECATALOG_TEST_POSTGRES")
needs_postgres = pytest.mark.skipif(not PG_URL, reason="SERVICECATALOG_TEST_POSTGRES not set")

# A file named by a variable, then a sleep: the launch and the update own different files, so a
# state gone backwards shows as a file a terminate leaves behind.
DIR_SLOW_TF = SANDBOX_HEADER + """
variable "dir" {
  type    = string
  default = "a"
}

variable "duration_ms" {
  type    = number
  default = 4000
}

resource "sandbox_file" "page" {
  path    = "${var.dir}/page.txt"
  content = "made by ${var.dir}"
}

resource "sandbox_sleep" "slow" {
  duration_ms = var.duration_ms
  depends_on  = [sandbox_file.page]
}

output "dir" {
  description = "The directory."
  value       = var.dir
}
"""


@pytest.fixture
def cluster(tmp_path):
    if not PG_URL:
        pytest.skip("SERVICECATALOG_TEST_POSTGRES not set")
    dbs = sclib.PgDatabases(PG_URL)
    c = Cluster(dbs.create(), tmp_path)
    yield c
    for n in c.nodes:
        if n.proc is not None and n.proc.poll() is None:
            os.kill(n.proc.pid, signal.SIGCONT)
    c.stop()
    dbs.drop_all()


def wait_log(node: ServerProcess, needles: tuple[str, ...], since: int = 0) -> str:
    end = time.monotonic() + DEADLINE
    while True:
        text = node.log_path.read_bytes()[since:].decode(errors="replace")
        found = [n for n in needles if n in text]
        if found:
            return found[0]
        assert time.monotonic() < end, f"none of {needles} in the log of {node.log_path}:\n{node.log_tail()}"
        time.sleep(0.2)


def sleeping_launch(cluster, duration_ms: str) -> tuple:
    """A new node A (one worker) and a user whose launch of DIR_SLOW_TF on A is sleeping in its apply
    -> (A, the user, the product, the provisioned product's id, the launch task's id)."""
    a = cluster.node("--workers", "1")
    user = a.create_user()
    (on_a,) = user_on([a], user)
    raw_a = a.caller("raw-v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    product = make_product(a.caller("v3"), DIR_SLOW_TF, users=[user])
    pp_id, task_id = launch(on_a, product, {"dir": "a", "duration_ms": duration_ms})
    wait_apply_sleeping(raw_a, task_id)
    return a, user, product, pp_id, task_id


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@needs_postgres
@needs_terraform
@needs_provider
@pytest.mark.parametrize("pause", ["server", "server-and-terraform"])
def test_a_node_paused_past_its_lease_writes_nothing_when_it_resumes(cluster, pause):
    a, user, product, pp_id, launch_task = sleeping_launch(cluster, "5000")
    end = time.monotonic() + DEADLINE
    while not stored_states(cluster.database, pp_id):  # the file made before the sleep is in the database
        assert time.monotonic() < end
        time.sleep(0.1)
    pgid = int((a.data_dir / "work" / f"{launch_task}.pgid").read_text())
    os.kill(a.proc.pid, signal.SIGSTOP)
    if pause == "server-and-terraform":
        os.killpg(pgid, signal.SIGSTOP)
    try:
        # B fails the launch once A's lease expired, then an update through B succeeds
        b = cluster.node("--workers", "1")
        (on_b,) = user_on([b], user)
        failed = wait_task(on_b, launch_task, deadline=DEADLINE)
        assert failed["Status"] == "Failed" and "interrupted" in failed["StatusMessage"], failed
        update_task = update(on_b, pp_id, product, {"dir": "b", "duration_ms": "100"})
        updated = wait_task(on_b, update_task, deadline=DEADLINE)
        assert updated["Status"] == "Succeeded", updated
        if pause == "server":
            time.sleep(5)  # A's Terraform finishes its apply while A is stopped
    finally:
        since = a.log_path.stat().st_size
        if pause == "server-and-terraform":
            os.killpg(pgid, signal.SIGCONT)
        os.kill(a.proc.pid, signal.SIGCONT)
    wait_log(a, ("taken over by another worker", "not recorded: the lease was lost"), since)
    if pause == "server-and-terraform":
        end = time.monotonic() + 10
        while group_alive(pgid):
            assert time.monotonic() < end, "A's Terraform still runs after A found its lease lost"
            time.sleep(0.1)
    assert a.alive()

    # the state, the outputs and the task outcomes agree: B's update is the last word
    rows = [r.split("|") for r in psql(cluster.database, "SELECT version, task_id, COALESCE(serial, -1) FROM terraform_states "
                                       f"WHERE provisioned_product_id = '{pp_id}' ORDER BY version").splitlines()]
    assert rows[-1][1] == update_task, rows
    serials = [int(r[2]) for r in rows]
    assert serials == sorted(serials), f"the state's serial went backwards: {rows}"
    first_update = next(i for i, r in enumerate(rows) if r[1] == update_task)
    assert all(r[1] != launch_task for r in rows[first_update:]), f"A saved state after B's update: {rows}"
    assert get_task(on_b, launch_task)["Status"] == "Failed"
    assert get_task(on_b, update_task)["Status"] == "Succeeded"
    pp = get_pp(on_b, pp_id)
    assert (pp["Status"], pp["LastSuccessfulProvisioningTaskId"]) == ("Available", update_task), pp
    assert outputs(get_task(on_b, update_task))["dir"]["OutputValue"] == "b"
    assert sandbox_files(b, pp_id) == {"b/page.txt": "made by b"}

    # a terminate through B removes what B's state holds: nothing is left behind. A stops first:
    # the sandbox provider's files are local to the node that ran the task, and A's idle worker
    # could otherwise claim the terminate and destroy in its own sandbox.
    a.stop()
    done = wait_task(on_b, terminate(on_b, pp_id), deadline=DEADLINE)
    assert done["Status"] == "Succeeded", done
    wait_pp_gone(on_b, pp_id)
    assert sandbox_files(b, pp_id) == {}

def retrying(fn, *args, **kwargs):
    """Calls fn, retrying while it answers the documented retryable 503 ServiceUnavailable (bounded)."""
    end = time.monotonic() + DEADLINE
    while True:
        try:
            return fn(*args, **kwargs)
        except sclib.ApiError as e:
            assert (e.status, e.code) == (503, "ServiceUnavailable"), e
            assert time.monotonic() < end, e
            time.sleep(0.2)


@needs_postgres
@needs_terraform
def test_database_backends_terminated_during_launches_fail_no_successful_apply(cluster):
    node = cluster.node("--workers", "2")
    admin = node.caller("v3")
    user = node.create_user()
    (caller,) = user_on([node], user)
    hello = make_product(admin, HELLO_TF, users=[user])
    stop = threading.Event()
    killed = []

    def terminate_backends():
        while not stop.is_set():
            out = psql(PG_URL, "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               f"WHERE datname = '{cluster.database.rsplit('/', 1)[1]}' AND pid <> pg_backend_pid()")
            killed.append(int(out or 0))
            time.sleep(0.3)

    killer = threading.Thread(target=terminate_backends, daemon=True)
    killer.start()
    try:
        for i in range(40):
            retrying(caller.call, "LaunchProduct", {
                "ProductId": hello.product_id, "ProductVersionId": hello.version_id, "ProvisionedProductName": uniq(f"blip{i}-"),
                "StackRegionId": "cn-hangzhou", "Parameters": [{"ParameterKey": "owner", "ParameterValue": f"o{i}"}]})
        end = time.monotonic() + DEADLINE * 2
        while True:
            listed = retrying(caller.call, "ListProvisionedProducts", {"PageSize": 100})
            details = listed.get("ProvisionedProductDetails") or []
            if details and all(d["Status"] != "UnderChange" for d in details):
                break
            assert time.monotonic() < end, "launches still UnderChange"
            time.sleep(0.5)
    finally:
        stop.set()
        killer.join(10)
    assert sum(killed) > 0, "no backend was terminated"
    assert len(details) >= 40
    failed = []
    for d in details:
        task = retrying(get_task, caller, d["LastTaskId"])
        if task["Status"] != "Succeeded":
            failed.append(task)
        else:
            assert d["Status"] == "Available" and "owner_size" in outputs(task), (d, task)
    print(f"\n{len(details)} launches, {sum(killed)} backends terminated, {len(failed)} failed")
    assert not failed, f"launches failed under backend terminations: {[(t['TaskId'], t['StatusMessage']) for t in failed]}"


def faketime_env(offset: str) -> dict | None:
    lib = next((p for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
                            "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1") if Path(p).exists()), None)
    if lib is None:
        return None
    return {"LD_PRELOAD": lib, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1"}


@needs_postgres
@needs_terraform
@needs_provider
def test_a_node_with_a_skewed_clock_cannot_fail_another_nodes_task(cluster):
    env = faketime_env("+60s")
    if env is None:
        pytest.skip("libfaketime is not installed (Debian package faketime; scripts/setup installs it)")
    probe = subprocess.run(["date", "+%s"], env={**os.environ, **env}, capture_output=True, text=True, timeout=10)
    if abs(int(probe.stdout.strip()) - time.time() - 60) > 5:
        pytest.skip("libfaketime does not skew this machine's clock")
    a, user, product, pp_id, task_id = sleeping_launch(cluster, "8000")
    # a node whose clock runs 60 s ahead joins while A's task runs: its reaper runs every 1.5 s
    skewed = cluster.node("--workers", "1", start=False)
    skewed.extra_env.update(env)
    skewed.start()
    (on_skewed,) = user_on([skewed], user)
    done = wait_task(on_skewed, task_id, deadline=DEADLINE)
    assert done["Status"] == "Succeeded", done
    assert "failed a task whose worker died" not in skewed.log_path.read_text(errors="replace")
    assert get_pp(on_skewed, pp_id)["Status"] == "Available"
    # the skewed node runs work of its own: a lease it takes is on the database's clock
    a.stop()
    update_task = update(on_skewed, pp_id, product, {"dir": "c", "duration_ms": "100"})
    assert wait_task(on_skewed, update_task, deadline=DEADLINE)["Status"] == "Succeeded"


# ----------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip() or res.returncode}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def health(srv) -> tuple[int, dict]:
    import requests
    r = requests.get(f"http://{srv.endpoint}/healthz", timeout=10)
    return r.status_code, r.json()


@needs_terraform
@needs_provider
def test_a_full_disk_answers_a_clear_code_and_work_resumes_once_space_returns(small_disk, tmp_path):
    srv = ServerProcess(tmp_path / "data", database=f"sqlite://{small_disk}/servicecatalog.db?mode=rwc",
                        args=["--workers", "1", "--lease-seconds", "5"])
    srv.start()
    try:
        admin = srv.caller("v3")
        user = srv.create_user()
        caller = srv.caller("v3", (user["AccessKeyId"], user["AccessKeySecret"]))
        raw = srv.caller("raw-v3", (user["AccessKeyId"], user["AccessKeySecret"]))
        product = make_product(admin, DIR_SLOW_TF, users=[user])
        assert health(srv) == (200, {"Status": "ok", "Database": {"Dialect": "sqlite", "Reachable": True, "WritesFailing": False}})
        # a launch in flight when the disk fills
        pp_id, task_id = launch(caller, product, {"dir": "a", "duration_ms": "3000"})
        wait_apply_sleeping(raw, task_id)
        filler = fill(small_disk)
        # a large template (under the 512 KiB a file may hold): SQLite's write-ahead log may still have room for small writes
        for attempt in range(8):
            body = DIR_SLOW_TF + "\n" + "\n".join(f"# {attempt} " + "#" * 1000 for _ in range(400))
            try:
                make_product(admin, body, users=[user])
            except sclib.ApiError as e:
                assert (e.status, e.code) == (503, "ServiceUnavailable.StorageFull"), e
                assert "storage is full" in e.message
                break
        else:
            raise AssertionError("writes kept succeeding on a full disk")
        status, body = health(srv)
        assert (status, body["Status"], body["Database"]["WritesFailing"]) == (503, "unavailable", True), body
        import requests
        assert "servicecatalog_store_writes_failing 1" in requests.get(f"http://{srv.endpoint}/metrics", timeout=10).text
        time.sleep(4)  # the apply ends while the disk is full
        filler.unlink()
        end = time.monotonic() + 30
        while health(srv)[0] != 200:
            assert time.monotonic() < end, health(srv)
            time.sleep(0.2)
        assert "servicecatalog_store_writes_failing 0" in requests.get(f"http://{srv.endpoint}/metrics", timeout=10).text
        # the task in flight kept its state and succeeded; new work runs without a restart
        done = wait_task(caller, task_id)
        assert done["Status"] == "Succeeded", done
        pp2, task2 = launch(caller, product, {"dir": "x", "duration_ms": "10"})
        assert wait_task(caller, task2)["Status"] == "Succeeded"
        assert wait_task(caller, update(caller, pp_id, product, {"dir": "b", "duration_ms": "10"}))["Status"] == "Succeeded"
        for pp in (pp_id, pp2):
            assert wait_task(caller, terminate(caller, pp))["Status"] == "Succeeded"
            assert sandbox_files(srv, pp) == {}
    finally:
        srv.stop()
        assert not srv.died_unexpectedly()
