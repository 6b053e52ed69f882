"""Running the server in production, through the official SDK against the real binary: graceful
shutdown around a running Terraform apply, limits, the audit trail, backups, metrics and logs.
Everything is awaited by bounded polling; nothing asserts how fast anything runs.
"""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest

from sclib import expect_error, uniq
from test_provisioning import (
    FILE_TF, MASK, SECRET_TF, SLOW_TF, full_task_log, get_pp, launch, make_product, needs_provider,
    needs_terraform, new_user, outputs, sandbox_files, terminate, update, user_product, wait_apply_sleeping, wait_task,
)

SHUTDOWN_MESSAGE = "The server shut down before the task finished"

def signal_and_wait(srv, signals: int = 1, timeout: float = 120) -> int:
    """Sends SIGTERM `signals` times and waits for the server to exit; returns its exit code."""
    srv.expected_exit = True
    for _ in range(signals):
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    try:
        return srv.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        raise AssertionError(f"the server did not exit within {timeout}s of SIGTERM\n{srv.log_tail()}")


def slow_launch(srv, duration_ms: int):
    """A launch of the slow product, returned once its apply is sleeping: (caller, pp id, task id)."""
    admin = srv.caller("v3")
    user, caller, raw = new_user(srv)
    product = make_product(admin, SLOW_TF, users=[user])
    pp_id, task_id = launch(caller, product, {"duration_ms": str(duration_ms)})
    wait_apply_sleeping(raw, task_id)
    return user, pp_id, task_id


def restarted_caller(srv, user):
    srv.start()
    return srv.caller("v3", (user["AccessKeyId"], user["AccessKeySecret"]))


# ============================================================================= graceful shutdown


@needs_terraform
@needs_provider
def test_sigterm_lets_a_running_apply_finish_and_keeps_its_state(fresh_server):
    srv = fresh_server(args=["--shutdown-grace-seconds", "120", "--workers", "1"])
    user, pp_id, task_id = slow_launch(srv, 4000)
    assert signal_and_wait(srv) == 0
    log = srv.log_path.read_text()
    assert "waiting for running tasks to finish" in log

    caller = restarted_caller(srv, user)
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    assert get_pp(caller, pp_id)["Status"] == "Available"
    assert sandbox_files(srv, pp_id) == {"slow/first.txt": "made before the sleep (a)"}
    # the saved state knows the file: terminate removes it
    assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"
    assert sandbox_files(srv, pp_id) == {}


@needs_terraform
@needs_provider
@pytest.mark.parametrize("grace, signals", [(1, 1), (600, 2)], ids=["grace-over", "second-signal"])
def test_a_task_still_running_after_the_grace_fails_with_the_shutdown_message(fresh_server, grace, signals):
    srv = fresh_server(args=["--shutdown-grace-seconds", str(grace), "--workers", "1"])
    user, pp_id, task_id = slow_launch(srv, 300000)
    assert signal_and_wait(srv, signals) == 0

    caller = restarted_caller(srv, user)
    task = wait_task(caller, task_id)
    assert task["Status"] == "Failed", task
    assert SHUTDOWN_MESSAGE in task["StatusMessage"], task["StatusMessage"]
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Error", pp
    # the state saved at the interruption holds the file made before the sleep: terminate removes it
    assert sandbox_files(srv, pp_id) == {"slow/first.txt": "made before the sleep (a)"}
    assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"
    assert sandbox_files(srv, pp_id) == {}


# ============================================================================= limits


def test_a_caller_over_its_rate_is_throttled_with_retry_after(fresh_server):
    from alibabacloud_tea_openapi.exceptions import ThrottlingException

    srv = fresh_server(args=["--rate-limit", "0.2", "--rate-burst", "3"])
    user = srv.create_user()
    sdk = srv.caller("v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    for _ in range(3):
        sdk.call("ListRegions")
    with pytest.raises(ThrottlingException) as raised:
        sdk.client.list_regions()
    assert raised.value.retry_after >= 1 and raised.value.status_code == 400
    assert raised.value.code == "Throttling.User"
    # callers have buckets of their own
    srv.caller("v3").call("ListRegions")


def test_parameter_count_length_and_body_size_are_limited(fresh_server):
    srv = fresh_server(args=["--max-parameters", "40", "--max-parameter-bytes", "100", "--max-body-bytes", "2000"])
    admin = srv.caller("v3")
    expect_error(400, "InvalidParameter.PortfolioName", admin.call, "CreatePortfolio",
                 {"PortfolioName": "p" * 101, "ProviderName": "ops"})
    raw = srv.caller("raw-v3")
    expect_error(400, "TooManyParameters", raw.call, "ListPortfolios", {f"X{i}": "y" for i in range(41)})
    expect_error(413, "RequestBodyTooLarge", raw.call, "CreatePortfolio",
                 {"PortfolioName": "p", "ProviderName": "ops", **{f"X{i}": "y" * 90 for i in range(25)}})
    admin.call("CreatePortfolio", {"PortfolioName": "p" * 100, "ProviderName": "ops"})


@needs_terraform
@needs_provider
def test_tasks_in_progress_per_principal_are_limited(fresh_server):
    srv = fresh_server(args=["--max-tasks-per-principal", "1", "--workers", "1"])
    caller, raw, product = user_product(srv, SLOW_TF)
    pp_id, task_id = launch(caller, product, {"duration_ms": "3000"})
    e = expect_error(400, "QuotaExceeded.ConcurrentTasks", launch, caller, product, {"duration_ms": "1"})
    assert "limit is 1" in e.message
    assert wait_task(caller, task_id)["Status"] == "Succeeded"
    _, second = launch(caller, product, {"duration_ms": "1", "label": "b"})
    assert wait_task(caller, second)["Status"] == "Succeeded"


# ============================================================================= metrics


def test_metrics_count_requests_tasks_and_read_the_queue(server, admin_v3):
    import requests

    admin_v3.call("ListPortfolios", {})
    expect_error(404, "InvalidTask.NotFound", admin_v3.call, "GetTask", {"TaskId": "t-nothere"})
    r = requests.get(f"http://{server.endpoint}/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for family in ("servicecatalog_requests_total", "servicecatalog_request_duration_seconds_bucket",
                   "servicecatalog_task_queue_depth", "servicecatalog_task_queue_oldest_age_seconds",
                   "servicecatalog_workers_busy", "servicecatalog_workers ", "servicecatalog_db_pool_connections"):
        assert family in text, family
    assert 'servicecatalog_requests_total{action="ListPortfolios",code="Success"}' in text
    assert 'servicecatalog_requests_total{action="GetTask",code="InvalidTask.NotFound"}' in text


# ============================================================================= audit trail and secrets


def audit_events(admin_raw, **filters) -> list[dict]:
    """ListAuditEvents (an extension: not in the SDK) with our own signer."""
    return admin_raw.call("ListAuditEvents", {"PageSize": 100, **filters})["AuditEvents"]


@needs_terraform
def test_a_full_flow_is_audited_and_no_secret_reaches_the_log_or_the_database(fresh_server):
    srv = fresh_server(args=["--log-json"])
    admin_key = srv.admin_key()
    admin = srv.caller("v3")
    user, caller, raw = new_user(srv)
    product = make_product(admin, SECRET_TF, users=[user])
    secret, secret2 = uniq("pw-launch-"), uniq("pw-update-")
    pp_id, task_id = launch(caller, product, {"password": secret, "name": "visible"})
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    assert outputs(task)["secret"]["OutputValue"] == MASK
    assert wait_task(caller, update(caller, pp_id, product, {"password": secret2}))["Status"] == "Succeeded"
    full_task_log(raw, task_id)
    expect_error(404, "EntityNotExists.Portfolio", admin.call, "DeletePortfolio", {"PortfolioId": "port-missing0000000"})

    # the audit trail: who, what, on which resource, the outcome, secrets masked
    admin = srv.caller("raw-v3")
    launched = audit_events(admin, AuditAction="LaunchProduct", PrincipalName=user["UserName"])
    assert len(launched) == 1, launched
    event = launched[0]
    assert event["ResourceId"] == pp_id and event["ResultCode"] == "Success" and event["HttpStatus"] == 200
    assert event["PrincipalId"] == user["PrincipalId"]
    values = {event["Parameters"][k.replace("Key", "Value")]: v for k, v in event["Parameters"].items()
              if k.endswith(".ParameterKey")}
    assert values == {MASK: "password", "visible": "name"}, event["Parameters"]
    assert [e["Action"] for e in audit_events(admin, ResourceId=pp_id, SortOrder="Asc")] == \
        ["LaunchProduct", "UpdateProvisionedProduct"]
    refused = audit_events(admin, AuditAction="DeletePortfolio")
    assert refused[0]["ResultCode"] == "EntityNotExists.Portfolio" and refused[0]["HttpStatus"] == 404
    assert not audit_events(admin, AuditAction="GetTask"), "reads are not audited"
    assert audit_events(admin, AuditAction="LaunchProduct", EndTime="2000-01-01T00:00:00Z") == []
    assert len(audit_events(admin, AuditAction="LaunchProduct", StartTime="2000-01-01T00:00:00Z")) == 1
    expect_error(403, "Forbidden.AdministratorOnly", raw.call, "ListAuditEvents", {})

    # the request log has its fields; no secret is in the server's log or the database files
    srv.stop()
    lines = [json.loads(line) for line in srv.log_path.read_text().splitlines() if line.startswith("{")]
    requests_logged = [line["fields"] for line in lines if line.get("fields", {}).get("message") == "request"]
    launch_line = next(f for f in requests_logged if f["action"] == "LaunchProduct")
    assert {"request_id", "principal", "status", "elapsed_us", "code"} <= set(launch_line), launch_line
    assert launch_line["principal"] == user["UserName"]
    secrets = [secret, secret2, user["AccessKeySecret"], admin_key[1]]
    log_text = srv.log_path.read_text(errors="replace")
    stored = b"".join(p.read_bytes() for p in srv.data_dir.glob("servicecatalog.db*"))
    for value in secrets:
        assert value not in log_text, "a secret reached the server log"
        assert value.encode() not in stored, "a secret is stored in clear"


# ============================================================================= backups


@needs_terraform
@needs_provider
def test_a_backup_taken_under_load_restores_every_product_and_its_state(fresh_server, backend, tmp_path):
    if backend != "sqlite":
        pytest.skip("backup/restore handle SQLite; PostgreSQL uses pg_dump")
    srv = fresh_server()
    admin = srv.caller("v3")
    user, caller, _ = new_user(srv)
    product = make_product(admin, FILE_TF, users=[user])
    kept = {}
    for n in range(3):
        pp_id, task_id = launch(caller, product, {"dir": f"d{n}", "content": f"content {n}"})
        assert wait_task(caller, task_id)["Status"] == "Succeeded"
        kept[pp_id] = {f"d{n}/page.txt": f"content {n}"}

    # other requests run while the backup is taken
    stop, errors, calls = threading.Event(), [], [0]

    def load():
        busy = srv.caller("v3")
        while not stop.is_set() and calls[0] < 2000:
            try:
                busy.call("CreatePortfolio", {"PortfolioName": uniq("load-"), "ProviderName": "ops"})
                calls[0] += 1
            except Exception as e:  # noqa: BLE001 - any failure fails the test below
                errors.append(e)
                return

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    backup = tmp_path / "catalog.db"
    out = srv.cli("backup", str(backup)).stdout
    assert "backed up" in out
    stop.set()
    for w in workers:
        w.join(60)
    assert not errors, errors
    late_pp, late_task = launch(caller, product, {"dir": "late", "content": "after the backup"})
    assert wait_task(caller, late_task)["Status"] == "Succeeded"

    refused = srv.cli("restore", str(backup), check=False)
    assert refused.returncode != 0 and "stop it before restoring" in refused.stderr, refused.stderr
    srv.stop()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    assert srv.cli("restore", str(garbage), check=False).returncode != 0
    assert "restored" in srv.cli("restore", str(backup)).stdout

    caller = restarted_caller(srv, user)
    for pp_id, files in kept.items():
        assert get_pp(caller, pp_id)["Status"] == "Available"
        assert sandbox_files(srv, pp_id) == files
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, caller, late_pp)
    # the restored state knows the files: terminate removes them
    for pp_id in kept:
        assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"
        assert sandbox_files(srv, pp_id) == {}


# ============================================================================= configuration file


def test_the_configuration_file_sits_below_flags_and_environment(tmp_path):
    import os
    import sclib

    config = tmp_path / "servicecatalog.toml"
    config.write_text('workers = 7\nrate-limit = 5\ntask-timeout = 99\nregions = ["cn-hangzhou", "cn-beijing"]\n'
                      'database = "postgres://sc:hunter2@127.0.0.1:5432/sc"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECATALOG_")}
    env.update({"SERVICECATALOG_CONFIG_FILE": str(config), "SERVICECATALOG_TASK_TIMEOUT": "42"})
    run = lambda *args: subprocess.run([str(sclib.server_binary()), *args], capture_output=True, text=True, env=env,
                                       timeout=60)
    printed = run("serve", "--print-config", "--workers", "3").stdout
    assert "workers = 3  # flag" in printed
    assert "task-timeout = 42  # environment" in printed
    assert "rate-limit = 5  # file" in printed and 'regions = "cn-hangzhou,cn-beijing"  # file' in printed
    assert "shutdown-grace-seconds = 60  # default" in printed
    assert "hunter2" not in printed and "postgres://sc:***@127.0.0.1:5432/sc" in printed

    config.write_text('workers = 2\nlisten-address = "x"\n')
    refused = run("serve", "--print-config")
    assert refused.returncode != 0 and 'unknown key "listen-address"' in refused.stderr, refused.stderr
