"""Terraform runs in a sandbox (issue 18): a template's `local-exec` probes the host the way an
attacker would — the master key, the credentials, the database, the other jobs' directories, the
server's processes and environment, writing outside its directories, forking, allocating and
writing without bound, reaching the network — and everything it must not do is refused, while
the task itself succeeds and the node goes on serving. The probe reports through the task log:
each line `PROBE <name> ALLOWED|DENIED` says whether the attempt succeeded."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest
import requests

from sclib import expect_error, uniq
from test_provisioning import (SANDBOX_HEADER, get_task, launch, make_product, needs_provider, needs_terraform,
                               new_user, terraform_logs, wait_task)

pytestmark = [needs_terraform, needs_provider]

CANARY = "sandbox-canary-" + uniq()
AS_ROOT = os.geteuid() == 0

# `probe NAME COMMAND`: runs COMMAND (a shell snippet) and reports whether it succeeded.
PROBE_TF = SANDBOX_HEADER + r'''
variable "script" {
  type = string
}

variable "env" {
  type    = map(string)
  default = {}
}

resource "sandbox_file" "probe" {
  path    = "probe.txt"
  content = "probed"

  provisioner "local-exec" {
    interpreter = ["/bin/sh", "-c"]
    environment = var.env
    command     = <<-EOT
      probe() { if sh -c "$2" >/dev/null 2>&1; then echo "PROBE $1 ALLOWED"; else echo "PROBE $1 DENIED"; fi; }
      ${var.script}
      echo "PROBE done"
    EOT
  }
}
'''

HOST_PROBES = r'''
probe read-master-key 'cat "$DATA/master.key"'
probe read-credentials 'cat "$DATA/root-credentials.json"'
probe read-database 'cat "$DATA/servicecatalog.db"'
echo "PROBE data-dir-holds $(ls -A "$DATA" | tr '\n' ' ')"
echo "PROBE work-dir-holds $(ls -A "$DATA/work" | tr '\n' ' ')"
probe read-other-product 'cat "$DATA/sandbox/$OTHER/secret.txt"'
probe see-server-process 'test -e "/proc/$SERVER_PID/environ" && grep -q servicecatalog "/proc/$SERVER_PID/cmdline"'
probe see-server-environment 'grep -rqs SANDBOX_CANARY= /proc/*/environ'
probe inherit-server-environment 'env | grep -q ^SANDBOX_CANARY='

probe write-data-dir 'touch "$DATA/planted"'
probe write-usr 'touch /usr/planted'
probe write-etc 'touch /etc/planted'
probe write-root 'touch /planted'
probe write-own-dir 'touch ./mine'
probe write-product-dir 'touch "$SANDBOX_ROOT/mine"'
probe write-tmp 'touch /tmp/mine'
echo "PROBE uid $(id -u)"
echo "PROBE processes $(ls /proc | grep -c '^[0-9]')"
'''

LIMIT_PROBES = r'''
perl -e 'exit 0 if fork; open STDOUT, ">/dev/null"; open STDERR, ">/dev/null"; setpgrp(0, 0); $0 = "sandbox-orphan"; sleep 300'
perl -e 'my @kids; for (1 .. 600) { my $p = fork; last unless defined $p; if ($p == 0) { open STDOUT, ">/dev/null"; open STDERR, ">/dev/null"; $0 = "sandbox-forker"; sleep 300; exit 0 } push @kids, $p } print "PROBE forked ", scalar(@kids), "\n"; kill "KILL", @kids; waitpid($_, 0) for @kids'
probe allocate-2GiB 'perl -e "my \$x = q(a) x (2048 * 1024 * 1024); exit 0"'
probe allocate-64MiB 'perl -e "my \$x = q(a) x (64 * 1024 * 1024); exit 0"'
probe write-16MiB-file 'head -c 16777216 /dev/zero > big.bin'
probe write-1MiB-file 'head -c 1048576 /dev/zero > small.bin'
'''

NETWORK_PROBE = r'''
probe connect-api 'perl -MIO::Socket::INET -e "exit(IO::Socket::INET->new(PeerAddr => q(127.0.0.1), PeerPort => $PORT, Timeout => 5) ? 0 : 1)"'
'''


def probes(task: dict) -> dict[str, str]:
    """`PROBE name VERDICT` lines of the task's log -> {name: verdict}."""
    found = {}
    for line in terraform_logs(task).splitlines():
        m = re.search(r"\(local-exec\): PROBE (\S+) ?(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    assert "done" in found, terraform_logs(task)
    return found


def run_probe(srv, script: str, env: dict | None = None, product=None):
    """Launches the probe template with `script` as an end user; returns (task, verdicts, product)."""
    admin = srv.caller("v3")
    user, caller, _ = new_user(srv)
    if product is None:
        product = make_product(admin, PROBE_TF, users=[user])
    else:
        admin.call("AssociatePrincipalWithPortfolio", {"PortfolioId": product.portfolio_id, "PrincipalType": "RamUser",
                                                       "PrincipalId": user["PrincipalId"]})
    params = {"script": script, "env": json.dumps(env or {})}
    _, task_id = launch(caller, product, params)
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    return task, probes(task), product


@pytest.fixture(scope="module")
def probed_server(server_factory):
    return server_factory(env={"SANDBOX_CANARY": CANARY})


def test_a_template_cannot_reach_the_host(probed_server):
    srv = probed_server
    other = "pp-" + uniq()
    (srv.data_dir / "sandbox" / other).mkdir(parents=True)
    (srv.data_dir / "sandbox" / other / "secret.txt").write_text("another team's file")
    env = {"DATA": str(srv.data_dir.resolve()), "OTHER": other, "SERVER_PID": str(srv.proc.pid)}
    task, verdict, _ = run_probe(srv, HOST_PROBES, env)
    denied = ["read-master-key", "read-credentials", "read-database", "read-other-product", "see-server-process", "see-server-environment", "inherit-server-environment",
              "write-data-dir", "write-usr", "write-etc", "write-root"]
    assert {name: verdict[name] for name in denied} == {name: "DENIED" for name in denied}, verdict
    # What a template legitimately does still works.
    allowed = ["write-own-dir", "write-product-dir", "write-tmp"]
    assert {name: verdict[name] for name in allowed} == {name: "ALLOWED" for name in allowed}, verdict
    # Of the data directory, only the job's own directories exist (and the read-only provider mirror).
    assert set(verdict["data-dir-holds"].split()) <= {"work", "sandbox", "providers"}, verdict
    assert verdict["work-dir-holds"].split() == [task["TaskId"]], verdict
    # Its own PID namespace: a handful of processes, never the server's.
    assert int(verdict["processes"]) < 20, verdict
    if AS_ROOT:
        assert int(verdict["uid"]) >= 70000, verdict
    assert not (srv.data_dir / "planted").exists()
    key = (srv.data_dir / "master.key").read_text().strip()
    assert key and key not in terraform_logs(task)
    # the node serves on
    assert srv.alive(), srv.log_tail()
    srv.caller("v3").call("ListPortfolios", {})


@pytest.mark.skipif(not AS_ROOT, reason="the process limit needs a user per worker: the server must run as root")
def test_forking_allocating_and_writing_without_bound_are_refused(fresh_server):
    srv = fresh_server(args=["--task-processes", "64", "--task-memory-mib", "1024", "--task-file-size-mib", "8",
                             "--workers", "1"])
    task, verdict, _ = run_probe(srv, LIMIT_PROBES)
    assert int(verdict["forked"]) < 64, verdict
    assert verdict["allocate-2GiB"] == "DENIED" and verdict["allocate-64MiB"] == "ALLOWED", verdict
    assert verdict["write-16MiB-file"] == "DENIED" and verdict["write-1MiB-file"] == "ALLOWED", verdict
    # A process that left Terraform's process group died with the sandbox when Terraform finished.
    assert subprocess.run(["pgrep", "-f", "sandbox-orphan|sandbox-forker"], capture_output=True).stdout == b""
    assert srv.alive(), srv.log_tail()
    srv.caller("v3").call("ListPortfolios", {})


def test_the_network_is_on_by_default_and_a_product_can_turn_it_off(probed_server):
    srv = probed_server
    admin = srv.caller("v3")
    env = {"PORT": str(srv.port)}
    _, verdict, product = run_probe(srv, NETWORK_PROBE, env)
    assert verdict["connect-api"] == "ALLOWED", verdict
    constraint = {"PortfolioId": product.portfolio_id, "ProductId": product.product_id, "ConstraintType": "Sandbox"}
    e = expect_error(400, "InvalidParameter.Config", admin.call, "CreateConstraint",
                     {**constraint, "Config": '{"Network": "Sometimes"}'})
    assert "Sandbox" in e.message, e.message
    constraint_id = admin.call("CreateConstraint", {**constraint, "Config": '{"Network": "Off"}'})["ConstraintId"]
    got = admin.call("GetConstraint", {"ConstraintId": constraint_id})["ConstraintDetail"]
    assert (got["ConstraintType"], got["Config"]) == ("Sandbox", '{"Network":"Off"}'), got
    _, verdict, _ = run_probe(srv, NETWORK_PROBE, env, product=product)
    assert verdict["connect-api"] == "DENIED", verdict


def test_the_operator_can_turn_the_network_off(fresh_server):
    srv = fresh_server(args=["--task-network", "off", "--workers", "1"])
    _, verdict, _ = run_probe(srv, NETWORK_PROBE, {"PORT": str(srv.port)})
    assert verdict["connect-api"] == "DENIED", verdict


def test_without_a_sandbox_the_server_refuses_to_run_tasks_unless_told(fresh_server, tmp_path):
    # A PATH without bubblewrap (the server's own tools only).
    bare = tmp_path / "bin"
    bare.mkdir()
    with pytest.raises(RuntimeError) as refused:
        fresh_server(env={"PATH": str(bare)})
    assert "--task-isolation none" in str(refused.value) and "bubblewrap" in str(refused.value), refused.value
    srv = fresh_server(env={"PATH": str(bare)}, args=["--task-isolation", "none"])
    assert 'servicecatalog_task_isolation{mode="none"} 1' in requests.get(f"http://{srv.endpoint}/metrics", timeout=10).text
    assert "Terraform runs unsandboxed" in srv.log_tail(200)
    # An API-only node runs no Terraform: it needs no sandbox.
    fresh_server(env={"PATH": str(bare)}, args=["--workers", "0"])


def test_metrics_show_the_sandbox(probed_server):
    text = requests.get(f"http://{probed_server.endpoint}/metrics", timeout=10).text
    assert 'servicecatalog_task_isolation{mode="bwrap"} 1' in text
